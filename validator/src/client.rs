//! The MLNode API as typed calls, over JSON-over-HTTP with timeouts in simulated seconds.
//!
//! A node's answers are evidence, not truth, and a hostile or broken node must not be
//! able to steer the client: redirects are never followed (a 307 would resend the
//! reference to another host), every body is read up to a per-call size cap, and every
//! failure says its cause — timeout after N s, connection refused, reset, a truncated
//! body — instead of reqwest's "error sending request".

use std::time::Duration;

use mlnode_protocol::paths;
use mlnode_protocol::wire::{
    ArtifactsResult, DownloadStartResponse, GenerateRequest, GenerateResponse,
    InferenceInitRequest, InitGenerateRequest, JobResult, Model, ModelStatusResponse,
    PowStatusResponse, StartupStatus,
};
use mlnode_support::SimClock;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Size caps per kind of answer. A status answer is a few hundred bytes; a validation
/// verdict lists at most every nonce sent; artifacts are ~60 bytes a nonce.
pub mod caps {
    pub const STATUS: usize = 1 << 20;
    pub const VERDICT: usize = 16 << 20;
    pub const ARTIFACTS: usize = 256 << 20;
}

/// A call that did not produce the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{method} {path}: {cause}")]
    Transport {
        method: &'static str,
        path: String,
        /// Whether a retry of an idempotent call may help.
        transient: bool,
        cause: String,
    },
    #[error("{method} {path} returned HTTP {status}: {detail}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        detail: String,
    },
    #[error("{method} {path}: unexpected body ({reason}): {body}")]
    Body {
        method: &'static str,
        path: String,
        reason: String,
        body: String,
    },
}

impl CallError {
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Tries of an idempotent status poll before a transport failure is an error.
pub const POLL_ATTEMPTS: u32 = 5;

/// A raw answer: status and JSON body (a string when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
}

/// At most `n` characters of a text, with an ellipsis.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// The FastAPI `detail` as text, or the whole body, clipped to 300 characters.
pub fn detail_of(body: &Value) -> String {
    let text = match body.get("detail") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => match body {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    clip(&text, 300)
}

/// The cause chain of a reqwest error, named: what a person can act on.
fn describe(e: &reqwest::Error, timeout: Duration) -> (String, bool) {
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !chain.contains(&t) {
            chain.push(t);
        }
        src = s.source();
    }
    let detail = chain.join(": ");
    let lower = detail.to_lowercase();
    if e.is_timeout() {
        return (
            format!(
                "timed out after {:.1} s (no complete answer)",
                timeout.as_secs_f64()
            ),
            true,
        );
    }
    if e.is_connect() {
        let hint = if lower.contains("refused") {
            "connection refused — is the node running? check host:port"
        } else if lower.contains("dns") || lower.contains("resolve") || lower.contains("lookup") {
            "the host name does not resolve — check the URL"
        } else {
            "cannot connect — is the node running? check host:port"
        };
        return (format!("{hint} ({detail})"), true);
    }
    let what = if lower.contains("reset") {
        "connection reset by the node"
    } else if lower.contains("closed before message completed")
        || lower.contains("incomplete message")
    {
        "the node closed the connection without a complete answer"
    } else if lower.contains("parse") || lower.contains("invalid") {
        "the node's answer is not valid HTTP"
    } else if e.is_body() || e.is_decode() {
        "the answer's body was cut off or unreadable"
    } else {
        "transport error"
    };
    (
        if detail.is_empty() {
            format!("{what} ({e})")
        } else {
            format!("{what} ({detail})")
        },
        true,
    )
}

/// A ready client for one node: the base URL, the clock every wait and timeout is in,
/// and (for `sim:`) the embedded node it keeps alive.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub clock: SimClock,
    #[cfg(feature = "embedded-sim")]
    _embedded: Option<std::sync::Arc<mlnode_sim::SimHandle>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("scale", &self.clock.scale())
            .finish()
    }
}

impl Client {
    /// A client for `base` (no trailing `/`) with `clock`, no access settings.
    pub fn new(base: &str, clock: SimClock) -> Self {
        let http = crate::access::Access::default()
            .client()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self::with_http(base, clock, http)
    }

    /// A client for `base` over `http` (built by [`crate::access::Access::client`]:
    /// token, CA, client certificate). `base` may end in a version segment
    /// (`http://host:8080/v3.0.8`): every path is appended to it.
    pub fn with_http(base: &str, clock: SimClock, http: reqwest::Client) -> Self {
        Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            clock,
            #[cfg(feature = "embedded-sim")]
            _embedded: None,
        }
    }

    /// Keep an embedded node alive as long as this client (and its clones) live.
    #[cfg(feature = "embedded-sim")]
    pub fn with_embedded(mut self, h: mlnode_sim::SimHandle) -> Self {
        self._embedded = Some(std::sync::Arc::new(h));
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client behind every call (its connection pool is the run's).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// One request; `body` is JSON already encoded (a request is serialized once,
    /// straight from its type: a 20,000-vector validation never becomes a `Value` tree).
    async fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        timeout_s: f64,
        cap: usize,
    ) -> Result<Answer, CallError> {
        let url = format!("{}{}", self.base, path);
        let mut req = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        };
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let timeout = self.clock.network_timeout(timeout_s);
        let transport = |e: &reqwest::Error| {
            let (cause, transient) = describe(e, timeout);
            CallError::Transport {
                method,
                path: path.into(),
                transient,
                cause,
            }
        };
        let mut resp = req
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|s| clip(s, 200));
        if let Some(len) = resp.content_length() {
            if len as usize > cap {
                return Err(CallError::Transport {
                    method,
                    path: path.into(),
                    transient: false,
                    cause: format!(
                        "the answer announces {len} bytes, over this call's cap of {cap}"
                    ),
                });
            }
        }
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&e))? {
            if buf.len() + chunk.len() > cap {
                return Err(CallError::Transport {
                    method,
                    path: path.into(),
                    transient: false,
                    cause: format!("the answer is over this call's cap of {cap} bytes"),
                });
            }
            buf.extend_from_slice(&chunk);
        }
        let body = serde_json::from_slice(&buf)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&buf).into_owned()));
        Ok(Answer {
            status,
            body,
            location,
        })
    }

    /// GET, any status.
    pub async fn get_raw(&self, path: &str, timeout_s: f64) -> Result<Answer, CallError> {
        self.send("GET", path, None, timeout_s, caps::STATUS).await
    }

    /// POST JSON, any status, with a size cap for the answer.
    pub async fn post_capped(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout_s: f64,
        cap: usize,
    ) -> Result<Answer, CallError> {
        let v = serde_json::to_vec(body).map_err(|e| CallError::Body {
            method: "POST",
            path: path.into(),
            reason: format!("cannot encode the request: {e}"),
            body: String::new(),
        })?;
        self.send("POST", path, Some(v), timeout_s, cap).await
    }

    /// POST JSON, any status (status-sized answer).
    pub async fn post_raw(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout_s: f64,
    ) -> Result<Answer, CallError> {
        self.post_capped(path, body, timeout_s, caps::STATUS).await
    }

    /// Parse an answer that must be one of `ok` statuses.
    pub fn expect<T: DeserializeOwned>(
        method: &'static str,
        path: &str,
        a: Answer,
        ok: &[u16],
    ) -> Result<T, CallError> {
        if !ok.contains(&a.status) {
            let mut detail = detail_of(&a.body);
            if (300..400).contains(&a.status) {
                detail = format!(
                    "redirect to {} refused (redirects are never followed: the request would be resent to another server)",
                    a.location.as_deref().unwrap_or("(no Location)")
                );
            }
            return Err(CallError::Status {
                method,
                path: path.into(),
                status: a.status,
                detail,
            });
        }
        serde_json::from_value(a.body.clone()).map_err(|e| CallError::Body {
            method,
            path: path.into(),
            reason: clip(&e.to_string(), 200),
            body: clip(&a.body.to_string(), 200),
        })
    }

    /// Status polls are idempotent: a transport error or an unparseable body is retried
    /// (up to [`POLL_ATTEMPTS`] tries, 1 simulated second apart), where validate.py dies on
    /// the first reset. HTTP error statuses are not retried: they are answers.
    pub async fn poll<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        timeout_s: f64,
    ) -> Result<T, CallError> {
        let mut attempt = 1;
        loop {
            let res = self
                .send(
                    method,
                    path,
                    body.map(|b| b.to_string().into_bytes()),
                    timeout_s,
                    caps::STATUS,
                )
                .await
                .and_then(|a| Self::expect::<T>(method, path, a, &[200]));
            match res {
                Err(
                    e @ (CallError::Transport {
                        transient: true, ..
                    }
                    | CallError::Body { .. }),
                ) if attempt < POLL_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "transient failure on a status poll; retrying");
                    attempt += 1;
                    self.clock.sleep(1.0).await;
                }
                other => return other,
            }
        }
    }

    /// GET a 200 body of type `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout_s: f64,
    ) -> Result<T, CallError> {
        let a = self.get_raw(path, timeout_s).await?;
        Self::expect("GET", path, a, &[200])
    }

    /// POST JSON, a 200 body of type `T` (answers up to the artifacts cap).
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout_s: f64,
    ) -> Result<T, CallError> {
        let a = self
            .post_capped(path, body, timeout_s, caps::ARTIFACTS)
            .await?;
        Self::expect("POST", path, a, &[200])
    }

    // ---- typed calls --------------------------------------------------------------

    /// `POST /api/v1/models/status` (polled).
    pub async fn model_status(&self, model: &Model) -> Result<ModelStatusResponse, CallError> {
        let body = serde_json::to_value(model).unwrap_or(Value::Null);
        self.poll("POST", paths::MODELS_STATUS, Some(&body), STATUS_TIMEOUT)
            .await
    }

    /// `POST /api/v1/models/download`: `Ok(None)` for a benign 409 "already downloading"
    /// (with its detail in the error slot of the tuple).
    pub async fn start_download(
        &self,
        model: &Model,
    ) -> Result<Result<DownloadStartResponse, String>, CallError> {
        let a = self
            .post_raw(paths::MODELS_DOWNLOAD, model, STATUS_TIMEOUT)
            .await?;
        if a.status == 409 {
            return Ok(Err(detail_of(&a.body)));
        }
        Self::expect("POST", paths::MODELS_DOWNLOAD, a, &[200, 202]).map(Ok)
    }

    /// `GET /api/v1/inference/up/status` (polled).
    pub async fn up_status(&self) -> Result<StartupStatus, CallError> {
        self.poll("GET", paths::UP_STATUS, None, STATUS_TIMEOUT)
            .await
    }

    /// `POST /api/v1/inference/up/async`: `Ok(Some(detail))` for a benign 409.
    pub async fn up_async(&self, req: &InferenceInitRequest) -> Result<Option<String>, CallError> {
        let a = self.post_raw(paths::UP_ASYNC, req, STATUS_TIMEOUT).await?;
        if a.status == 409 {
            return Ok(Some(detail_of(&a.body)));
        }
        Self::expect::<Value>("POST", paths::UP_ASYNC, a, &[200]).map(|_| None)
    }

    /// `POST /api/v1/inference/pow/init/generate`, any status (the caller retries 503).
    pub async fn init_generate(&self, req: &InitGenerateRequest) -> Result<Answer, CallError> {
        self.post_raw(paths::POW_INIT_GENERATE, req, STATUS_TIMEOUT)
            .await
    }

    /// `GET /api/v1/inference/pow/status` (polled).
    pub async fn pow_status(&self) -> Result<PowStatusResponse, CallError> {
        self.poll("GET", paths::POW_STATUS, None, STATUS_TIMEOUT)
            .await
    }

    /// `POST /api/v1/inference/pow/stop` (errors are the caller's to ignore).
    pub async fn pow_stop(&self) -> Result<Answer, CallError> {
        self.post_raw(paths::POW_STOP, &serde_json::json!({}), STOP_TIMEOUT)
            .await
    }

    /// `POST /api/v1/inference/pow/generate` with `wait: true` and no validation: the
    /// node's own vectors.
    pub async fn generate_artifacts(
        &self,
        req: &GenerateRequest,
        timeout_s: f64,
    ) -> Result<ArtifactsResult, CallError> {
        let a = self
            .post_capped(paths::POW_GENERATE, req, timeout_s, caps::ARTIFACTS)
            .await?;
        match Self::expect::<GenerateResponse>("POST", paths::POW_GENERATE, a, &[200])? {
            GenerateResponse::Completed {
                result: JobResult::Artifacts(r),
                ..
            } => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// `POST /api/v1/inference/pow/generate` with `wait: true` and `validation`: the
    /// node's verdict, with the job's `status` and `request_id`.
    pub async fn validate(
        &self,
        req: &GenerateRequest,
        timeout_s: f64,
    ) -> Result<(String, String, mlnode_protocol::wire::ValidationResult), CallError> {
        let a = self
            .post_capped(paths::POW_GENERATE, req, timeout_s, caps::VERDICT)
            .await?;
        match Self::expect::<GenerateResponse>("POST", paths::POW_GENERATE, a, &[200])? {
            GenerateResponse::Completed {
                status,
                request_id,
                result: JobResult::Validation(v),
            } => Ok((status, request_id, v)),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(r: GenerateResponse) -> CallError {
    let (what, body) = match &r {
        GenerateResponse::Completed { .. } => ("the other kind of result", r.clone()),
        GenerateResponse::Queued { .. } => ("a queued job although wait=true was sent", r.clone()),
    };
    CallError::Body {
        method: "POST",
        path: paths::POW_GENERATE.into(),
        reason: what.into(),
        body: clip(&serde_json::to_string(&body).unwrap_or_default(), 200),
    }
}

/// Seconds for status-style calls (they answer at once on a healthy node).
pub const STATUS_TIMEOUT: f64 = 30.0;
/// Seconds for `/pow/stop` (validate.py's 60).
pub const STOP_TIMEOUT: f64 = 60.0;
