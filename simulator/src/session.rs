//! Record a real node once, replay it in CI: `mlnode-sim record --upstream URL --out DIR`
//! is a proxy in front of a node that writes every exchange, in order, to
//! `DIR/session.jsonl`; `mlnode-sim --replay DIR` answers the same sequence.
//!
//! * **Format**: one JSON object per line ([`Exchange`]): method, path with query,
//!   request body, status, the response's content type, response body, wall-clock
//!   duration and offset from the session start (ms). Bodies that are not UTF-8 are
//!   stored base64 (`*_b64`). Secrets are never written: `Authorization`, `Cookie`,
//!   `X-Admin-Token` and anything named like a token or key are dropped from the
//!   recorded request headers (only `content-type` is kept at all).
//! * **Replay is stateful**: answers are queued per `(method, path)`; the n-th
//!   `GET /api/v1/inference/pow/status` gets the n-th recorded answer, and once a queue
//!   is exhausted its last answer repeats (a poller that asks once more than the
//!   recording did still gets the node's final state). A request that was never
//!   recorded gets `501 {"detail": "not in the recording: GET /x (recorded: ...)"}`.
//! * **Timing**: each answer waits its recorded duration divided by `--time-scale`, and
//!   carries `x-sim-time-scale` so a validator runs its own clock at the same scale.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The session file inside a recording directory.
pub const SESSION_FILE: &str = "session.jsonl";

/// Request headers never written to a recording.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "cookie",
    "x-admin-token",
    "proxy-authorization",
    "x-api-key",
];

/// One recorded request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Position in the session (0-based).
    pub seq: u64,
    /// Milliseconds from the session start to the request.
    pub at_ms: f64,
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_content_type: Option<String>,
    /// The request body as text (absent when empty or not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body_b64: Option<String>,
    /// Names of the request headers left out as secrets (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_headers: Vec<String>,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_b64: Option<String>,
    /// How long the upstream took to answer (wall ms).
    pub duration_ms: f64,
}

/// Why a recording could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not an exchange: {reason}")]
    Bad {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: the recording is empty")]
    Empty { path: String },
}

fn text_or_b64(bytes: &[u8]) -> (Option<String>, Option<String>) {
    if bytes.is_empty() {
        return (None, None);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (Some(s.to_owned()), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

fn bytes_of(text: &Option<String>, b64: &Option<String>) -> Vec<u8> {
    match (text, b64) {
        (Some(t), _) => t.clone().into_bytes(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Load `DIR/session.jsonl` (or a file path), naming the line of any bad entry.
pub fn load(dir: &Path) -> Result<Vec<Exchange>, SessionError> {
    let path = if dir.is_dir() {
        dir.join(SESSION_FILE)
    } else {
        dir.to_path_buf()
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| SessionError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str::<Exchange>(line).map_err(|e| SessionError::Bad {
                path: shown.clone(),
                line: i + 1,
                reason: e.to_string(),
            })?,
        );
    }
    if out.is_empty() {
        return Err(SessionError::Empty { path: shown });
    }
    Ok(out)
}

/// A request's path with its query, the key both the recording and the replay use.
fn path_and_query(req: &Request) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned())
}

// ------------------------------------------------------------------ record

/// The recording proxy's state.
pub struct Recorder {
    upstream: String,
    http: reqwest::Client,
    file: Mutex<(std::fs::File, u64)>,
    started: Instant,
    /// Largest request body forwarded.
    limit: usize,
}

impl Recorder {
    /// A proxy to `upstream` writing to `out/session.jsonl` (created, truncated).
    pub fn new(upstream: &str, out: &Path) -> Result<Arc<Self>, SessionError> {
        std::fs::create_dir_all(out).map_err(|source| SessionError::Io {
            path: out.display().to_string(),
            source,
        })?;
        let path: PathBuf = out.join(SESSION_FILE);
        let file = std::fs::File::create(&path).map_err(|source| SessionError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Arc::new(Recorder {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            file: Mutex::new((file, 0)),
            started: Instant::now(),
            limit: 256 * 1024 * 1024,
        }))
    }

    fn write(&self, mut e: Exchange) {
        let mut g = self.file.lock().unwrap_or_else(|p| p.into_inner());
        e.seq = g.1;
        g.1 += 1;
        if let Ok(line) = serde_json::to_string(&e) {
            // One line per exchange, flushed: a recording cut short stays readable.
            let _ = writeln!(g.0, "{line}");
            let _ = g.0.flush();
        }
    }
}

/// The recording proxy: every request goes upstream as is (minus hop-by-hop headers),
/// the answer comes back as is, and the exchange is appended to the session.
pub fn record_app(rec: Arc<Recorder>) -> Router {
    Router::new().fallback(forward).with_state(rec)
}

async fn forward(State(rec): State<Arc<Recorder>>, req: Request) -> Response {
    let at_ms = rec.started.elapsed().as_secs_f64() * 1000.0;
    let method = req.method().clone();
    let path = path_and_query(&req);
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), rec.limit).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the request body: {e}"),
            )
            .into_response()
        }
    };
    let redacted: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_ascii_lowercase())
        .filter(|k| {
            SECRET_HEADERS.contains(&k.as_str()) || k.contains("token") || k.contains("secret")
        })
        .collect();
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut up = rec
        .http
        .request(method.clone(), format!("{}{path}", rec.upstream));
    for (k, v) in &headers {
        let name = k.as_str();
        if !matches!(
            name,
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            up = up.header(k, v);
        }
    }
    let t0 = Instant::now();
    let answer = up.body(body.clone()).send().await;
    let (status, ctype, resp_body) = match answer {
        Ok(r) => {
            let status = r.status().as_u16();
            let ctype = r
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match r.bytes().await {
                Ok(b) => (status, ctype, b),
                Err(e) => (
                    502,
                    Some("application/json".into()),
                    Bytes::from(
                        serde_json::json!({"detail": format!("upstream body failed: {e}")})
                            .to_string(),
                    ),
                ),
            }
        }
        Err(e) => (
            502,
            Some("application/json".into()),
            Bytes::from(
                serde_json::json!({"detail": format!("upstream unreachable: {e}")}).to_string(),
            ),
        ),
    };
    let duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let (request_body, request_body_b64) = text_or_b64(&body);
    let (body_text, body_b64) = text_or_b64(&resp_body);
    rec.write(Exchange {
        seq: 0,
        at_ms,
        method: method.to_string(),
        path,
        request_content_type: content_type,
        request_body,
        request_body_b64,
        redacted_headers: redacted,
        status,
        content_type: ctype.clone(),
        body: body_text,
        body_b64,
        duration_ms,
    });
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        resp_body,
    )
        .into_response();
    if let Some(c) = ctype.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, c);
    }
    resp
}

// ------------------------------------------------------------------ replay

/// The replaying node's state: per `(method, path)` the answers still to give.
pub struct Replayer {
    queues: Mutex<HashMap<(String, String), VecDeque<Exchange>>>,
    time_scale: f64,
    scale_header: HeaderValue,
    /// What was recorded, for the 501's hint.
    recorded: Vec<String>,
}

impl Replayer {
    pub fn new(session: Vec<Exchange>, time_scale: f64) -> Arc<Self> {
        let mut queues: HashMap<(String, String), VecDeque<Exchange>> = HashMap::new();
        let mut recorded = Vec::new();
        for e in session {
            let key = (e.method.clone(), e.path.clone());
            let name = format!("{} {}", e.method, e.path);
            if !recorded.contains(&name) {
                recorded.push(name);
            }
            queues.entry(key).or_default().push_back(e);
        }
        Arc::new(Replayer {
            queues: Mutex::new(queues),
            time_scale: time_scale.max(1e-9),
            scale_header: HeaderValue::from_str(&time_scale.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("1")),
            recorded,
        })
    }

    /// The next answer for `method path`: the queue's front, except that its last answer
    /// stays and repeats.
    fn next(&self, method: &Method, path: &str) -> Option<Exchange> {
        let key = (method.to_string(), path.to_owned());
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let q = queues.get_mut(&key)?;
        if q.len() > 1 {
            q.pop_front()
        } else {
            q.front().cloned()
        }
    }
}

/// The replaying node: the recorded answers in order, 501 for anything never recorded.
pub fn replay_app(rep: Arc<Replayer>) -> Router {
    Router::new().fallback(replay_one).with_state(rep)
}

async fn replay_one(State(rep): State<Arc<Replayer>>, req: Request) -> Response {
    let path = path_and_query(&req);
    let method = req.method().clone();
    let Some(e) = rep.next(&method, &path) else {
        let shown: Vec<&str> = rep.recorded.iter().take(12).map(String::as_str).collect();
        let mut r = ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "not in the recording: {method} {path} (recorded: {}{})",
                shown.join(", "),
                if rep.recorded.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
        )
        .into_response();
        r.headers_mut()
            .insert(crate::api::TIME_SCALE_HEADER, rep.scale_header.clone());
        return r;
    };
    let wait = e.duration_ms / 1000.0 / rep.time_scale;
    if wait > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(wait.min(600.0))).await;
    }
    let mut resp = (
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        bytes_of(&e.body, &e.body_b64),
    )
        .into_response();
    if let Some(c) = e
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, c);
    }
    resp.headers_mut()
        .insert(crate::api::TIME_SCALE_HEADER, rep.scale_header.clone());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(method: &str, path: &str, status: u16, body: &str) -> Exchange {
        Exchange {
            seq: 0,
            at_ms: 0.0,
            method: method.into(),
            path: path.into(),
            request_content_type: None,
            request_body: None,
            request_body_b64: None,
            redacted_headers: Vec::new(),
            status,
            content_type: Some("application/json".into()),
            body: Some(body.into()),
            body_b64: None,
            duration_ms: 0.0,
        }
    }

    #[test]
    fn answers_in_order_then_repeat_the_last() {
        let r = Replayer::new(
            vec![
                ex("GET", "/s", 200, "1"),
                ex("GET", "/s", 200, "2"),
                ex("POST", "/s", 201, "p"),
            ],
            1.0,
        );
        let get = Method::GET;
        let bodies: Vec<Option<String>> = (0..4)
            .map(|_| r.next(&get, "/s").and_then(|e| e.body))
            .collect();
        assert_eq!(
            bodies,
            [
                Some("1".into()),
                Some("2".into()),
                Some("2".into()),
                Some("2".into())
            ]
        );
        assert_eq!(r.next(&Method::POST, "/s").map(|e| e.status), Some(201));
        assert!(r.next(&get, "/never").is_none());
    }

    #[test]
    fn bodies_round_trip_text_and_binary() {
        let (t, b) = text_or_b64(b"{\"a\":1}");
        assert_eq!((t.as_deref(), b), (Some("{\"a\":1}"), None));
        let (t, b) = text_or_b64(&[0xff, 0x00, 0x10]);
        assert!(t.is_none());
        assert_eq!(bytes_of(&None, &b), vec![0xff, 0x00, 0x10]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SESSION_FILE), "{\"seq\":0}\n").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("session.jsonl:1"), "{e}");
        std::fs::write(dir.path().join(SESSION_FILE), "\n").unwrap();
        assert!(load(dir.path()).unwrap_err().to_string().contains("empty"));
    }
}
