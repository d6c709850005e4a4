//! A small JSON-over-HTTP client for the MLNode API, with timeouts in simulated seconds.

use mlnode_sim::SimClock;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A call that did not produce the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{method} {path}: {source}")]
    Transport {
        method: &'static str,
        path: String,
        source: reqwest::Error,
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

/// A raw answer: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// At most 200 characters of a body in an error message.
fn clip(s: &str) -> String {
    if s.chars().count() <= 200 {
        s.to_owned()
    } else {
        s.chars().take(200).collect::<String>() + "…"
    }
}

/// The FastAPI `detail` as text, or the whole body.
pub fn detail_of(body: &Value) -> String {
    match body.get("detail") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => body.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub clock: SimClock,
}

impl Client {
    pub fn new(base: &str, clock: SimClock) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            clock,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        timeout_s: f64,
    ) -> Result<Answer, CallError> {
        let url = format!("{}{}", self.base, path);
        let mut req = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        };
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .timeout(self.clock.network_timeout(timeout_s))
            .send()
            .await
            .map_err(|source| CallError::Transport {
                method,
                path: path.into(),
                source,
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|source| CallError::Transport {
            method,
            path: path.into(),
            source,
        })?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// GET, any status.
    pub async fn get_raw(&self, path: &str, timeout_s: f64) -> Result<Answer, CallError> {
        self.send("GET", path, None, timeout_s).await
    }

    /// POST JSON, any status.
    pub async fn post_raw(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout_s: f64,
    ) -> Result<Answer, CallError> {
        let v = serde_json::to_value(body).unwrap_or(Value::Null);
        self.send("POST", path, Some(&v), timeout_s).await
    }

    /// Parse an answer that must be one of `ok` statuses.
    pub fn expect<T: DeserializeOwned>(
        method: &'static str,
        path: &str,
        a: Answer,
        ok: &[u16],
    ) -> Result<T, CallError> {
        if !ok.contains(&a.status) {
            return Err(CallError::Status {
                method,
                path: path.into(),
                status: a.status,
                detail: detail_of(&a.body),
            });
        }
        serde_json::from_value(a.body.clone()).map_err(|e| CallError::Body {
            method,
            path: path.into(),
            reason: clip(&e.to_string()),
            body: clip(&a.body.to_string()),
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
            let res = match method {
                "GET" => self.get_raw(path, timeout_s).await,
                _ => {
                    self.post_raw(path, &body.cloned().unwrap_or(Value::Null), timeout_s)
                        .await
                }
            }
            .and_then(|a| Self::expect::<T>(method, path, a, &[200]));
            match res {
                Err(e @ (CallError::Transport { .. } | CallError::Body { .. }))
                    if attempt < POLL_ATTEMPTS =>
                {
                    tracing::warn!(error = %e, attempt, "transient failure on a status poll; retrying");
                    attempt += 1;
                    self.clock.sleep(1.0).await;
                }
                other => return other,
            }
        }
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout_s: f64,
    ) -> Result<T, CallError> {
        let a = self.get_raw(path, timeout_s).await?;
        Self::expect("GET", path, a, &[200])
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout_s: f64,
    ) -> Result<T, CallError> {
        let a = self.post_raw(path, body, timeout_s).await?;
        Self::expect("POST", path, a, &[200])
    }
}
