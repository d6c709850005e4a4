//! `mlnode-sim --compat testermint`: a drop-in for the network's integration-test mock
//! (testermint's Ktor `inference-mock-server`, network-node §4), on one port, with every
//! node keyed by the request's `Host` header.
//!
//! The incumbent's routes, status codes and JSON shapes, its control API
//! (`/api/v1/responses/*`) and its process-wide nonce counter are kept as the network's
//! tests use them; where the incumbent fakes, this mode is real:
//!
//! * PoC v2 artifacts are the simulator's real unit vectors for the request's round, and
//!   a validation recomputes them with the real mismatch rule and fraud test — honest
//!   artifacts come back honest, those of a host made fraudulent
//!   (`POST /api/v1/responses/poc/fraud`, any shipped fraud scenario) come back
//!   `fraud_detected: true`;
//! * every request is journaled with its Host and version segment
//!   (`GET /api/v1/responses/requests`), so "did a request hit the versioned path" is a
//!   question with an answer; every verdict a host sent is kept
//!   (`GET /api/v1/responses/poc/validations`);
//! * faults per host and path (`POST /api/v1/responses/fault`).
//!
//! | module | what it holds |
//! |---|---|
//! | `routes` | the 17 node-facing routes (state machine per Host, files, status) |
//! | `poc` | PoC webhooks: W real artifacts per init, real verdicts |
//! | `chat` | chat completions: configs by path + model + Host, SSE, errors, the default |
//! | `control` | `/api/v1/responses/*`: the incumbent's setters plus journal, verdicts, fraud, faults |
//! | `tokenize` | `/tokenize` with cl100k_base |

mod chat;
mod control;
mod poc;
mod routes;
mod tokenize;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::deviation::MismatchRule;
use mlnode_support::SimClock;

/// The incumbent's node state (`ModelState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ModelState {
    Pow,
    Inference,
    Train,
    Stopped,
}

impl ModelState {
    fn name(self) -> &'static str {
        match self {
            ModelState::Pow => "POW",
            ModelState::Inference => "INFERENCE",
            ModelState::Train => "TRAIN",
            ModelState::Stopped => "STOPPED",
        }
    }
}

/// The incumbent's PoC state (only three of its seven values are ever set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowState {
    Generating,
    Validating,
    Stopped,
}

impl PowState {
    fn name(self) -> &'static str {
        match self {
            PowState::Generating => "POW_GENERATING",
            PowState::Validating => "POW_VALIDATING",
            PowState::Stopped => "POW_STOPPED",
        }
    }
}

/// A host made fraudulent: the mismatch rules its generated vectors go through.
#[derive(Debug, Clone)]
pub(crate) struct Fraud {
    /// The scenario it came from, or `custom`.
    pub profile: String,
    pub rules: Vec<MismatchRule>,
}

/// An injected answer for a host's requests to a path.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostFault {
    /// Exact path without the version segment (`/api/v1/state`), or a prefix ending in `*`.
    pub path: String,
    /// Status answered instead of the route's.
    pub status: u16,
    /// JSON body (default `{"error": "injected fault"}`).
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Times it fires before it disarms (default: every time).
    #[serde(default)]
    pub times: Option<u64>,
}

impl HostFault {
    fn matches(&self, path: &str) -> bool {
        match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => self.path == path,
        }
    }
}

/// One node: what the incumbent keeps per Host, plus ours.
#[derive(Debug)]
pub(crate) struct Host {
    pub model: ModelState,
    pub pow: PowState,
    pub fraud: Option<Fraud>,
    pub faults: Vec<HostFault>,
    /// Verdicts this host sent (newest last, at most [`VALIDATIONS_KEPT`]).
    pub validations: VecDeque<serde_json::Value>,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            model: ModelState::Stopped,
            pow: PowState::Stopped,
            fraud: None,
            faults: Vec::new(),
            validations: VecDeque::new(),
        }
    }
}

/// Verdicts kept per host.
pub const VALIDATIONS_KEPT: usize = 64;
/// Journal entries kept (all hosts).
pub const JOURNAL_KEPT: usize = 10_000;
/// Default bound on distinct Host values.
pub const DEFAULT_MAX_HOSTS: usize = 10_000;

/// One journaled request.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Request {
    pub seq: u64,
    pub host: String,
    pub method: String,
    /// As sent, version segment included.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub status: u16,
}

/// A chat config key: exact request path, model, Host.
pub(crate) type ChatKey = (String, Option<String>, Option<String>);

/// Settings of the mode.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Simulated seconds per wall second (webhook and chat delays).
    pub time_scale: f64,
    /// Seed of the fraud rules' draws.
    pub seed: u64,
    /// `GET /files/<path>` serves `<files_dir>/<path>` (the incumbent: `/app/files/__files`).
    pub files_dir: Option<PathBuf>,
    /// The default validation callback host: `http://{key_name}-api:9100/...`.
    pub key_name: String,
    /// Distinct Host values served.
    pub max_hosts: usize,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            time_scale: 1.0,
            seed: 42,
            files_dir: None,
            key_name: std::env::var("KEY_NAME").unwrap_or_else(|_| "localhost".into()),
            max_hosts: DEFAULT_MAX_HOSTS,
        }
    }
}

/// The mock's whole state (one per process, as the incumbent's).
pub struct Mock {
    hosts: RwLock<HashMap<String, Arc<Mutex<Host>>>>,
    pub opts: MockOptions,
    pub(crate) clock: SimClock,
    /// The process-wide nonce counter (initial 1; not reset by `/responses/reset`).
    pub(crate) nonce: AtomicI64,
    /// Artifact counts per (Host or any, scenario name).
    pub(crate) weights: Mutex<HashMap<(Option<String>, String), i64>>,
    pub(crate) chat: Mutex<HashMap<ChatKey, chat::ChatConfig>>,
    pub(crate) last_request: Mutex<Option<String>>,
    journal: Mutex<(u64, VecDeque<Request>)>,
    pub(crate) http: reqwest::Client,
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock")
            .field("hosts", &self.host_count())
            .field("opts", &self.opts)
            .finish()
    }
}

/// Why a Host could not be served.
#[derive(Debug, thiserror::Error)]
#[error("this mock already serves {0} distinct Host values (--max-hosts); a new Host is refused — raise --max-hosts or reuse host names")]
pub struct TooManyHosts(pub usize);

impl IntoResponse for TooManyHosts {
    fn into_response(self) -> Response {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": self.to_string()})),
        )
            .into_response()
    }
}

impl Mock {
    pub fn new(opts: MockOptions) -> Arc<Self> {
        Arc::new(Mock {
            hosts: RwLock::new(HashMap::new()),
            clock: SimClock::new(opts.time_scale),
            opts,
            nonce: AtomicI64::new(1),
            weights: Mutex::new(HashMap::new()),
            chat: Mutex::new(HashMap::new()),
            last_request: Mutex::new(None),
            journal: Mutex::new((0, VecDeque::new())),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        })
    }

    /// The host's state, created (STOPPED) on first sight.
    pub(crate) fn host(&self, name: &str) -> Result<Arc<Mutex<Host>>, TooManyHosts> {
        if let Some(h) = self
            .hosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(h.clone());
        }
        let mut g = self.hosts.write().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = g.get(name) {
            return Ok(h.clone());
        }
        if g.len() >= self.opts.max_hosts {
            return Err(TooManyHosts(self.opts.max_hosts));
        }
        let h = Arc::new(Mutex::new(Host::default()));
        g.insert(name.to_owned(), h.clone());
        Ok(h)
    }

    /// A host's state if it was ever seen.
    pub(crate) fn existing(&self, name: &str) -> Option<Arc<Mutex<Host>>> {
        self.hosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Distinct hosts seen.
    pub fn host_count(&self) -> usize {
        self.hosts.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn record(&self, mut r: Request) {
        let mut g = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        r.seq = g.0;
        g.0 += 1;
        if g.1.len() == JOURNAL_KEPT {
            g.1.pop_front();
        }
        g.1.push_back(r);
    }

    /// Journaled requests of `host` (all hosts when `None`) whose path starts with `path`.
    pub(crate) fn requests(&self, host: Option<&str>, path: Option<&str>) -> Vec<Request> {
        let g = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        g.1.iter()
            .filter(|r| host.is_none_or(|h| r.host == h))
            .filter(|r| path.is_none_or(|p| r.path.starts_with(p)))
            .cloned()
            .collect()
    }
}

/// The Host a request names (the incumbent's key: host **and** port; none → `localhost`).
pub(crate) fn host_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned()
}

/// A status with an empty body (Ktor's `call.respond(HttpStatusCode.X)`).
pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// The router of the mode: the node-facing routes (each also under one version
/// segment, stripped by the serving loop), the control API, `/tokenize`, `/status`,
/// `/files/*` — behind the journal and the per-host faults.
pub fn app(mock: Arc<Mock>) -> axum::Router {
    routes::routes()
        .merge(poc::routes())
        .merge(control::routes())
        .merge(chat::routes())
        .merge(tokenize::routes())
        .fallback(|| async { empty(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async { empty(StatusCode::METHOD_NOT_ALLOWED) })
        .layer(axum::middleware::from_fn_with_state(mock.clone(), observe))
        .with_state(mock)
}

/// Journal every request; answer a host's armed fault instead of the route.
async fn observe(
    axum::extract::State(mock): axum::extract::State<Arc<Mock>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = host_of(req.headers());
    let version = req
        .extensions()
        .get::<crate::gateway::VersionPrefix>()
        .map(|v| v.0.to_string());
    let path = req.uri().path().to_owned();
    let method = req.method().to_string();
    let control = path.starts_with("/api/v1/responses");
    if control && version.is_some() {
        // The control API is registered unprefixed only.
        return empty(StatusCode::NOT_FOUND);
    }
    let fault = if control {
        None
    } else {
        mock.existing(&host).and_then(|h| {
            let mut g = h.lock().unwrap_or_else(|e| e.into_inner());
            let i = g.faults.iter().position(|f| f.matches(&path))?;
            let f = g.faults[i].clone();
            match f.times {
                Some(1) => {
                    g.faults.remove(i);
                }
                Some(n) => g.faults[i].times = Some(n - 1),
                None => {}
            }
            Some(f)
        })
    };
    let resp = match fault {
        Some(f) => {
            let status =
                StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = f.body.unwrap_or_else(|| json!({"error": "injected fault"}));
            (status, axum::Json(body)).into_response()
        }
        None => next.run(req).await,
    };
    if !control {
        mock.record(Request {
            seq: 0,
            host,
            method,
            path: crate::gateway::path_as_sent(version.as_deref(), &path),
            version,
            status: resp.status().as_u16(),
        });
    }
    resp
}

/// Serve the mode on `listener` until `shutdown` (the same accept loop, limits and
/// version-segment stripping as every other server of this crate).
pub async fn serve(
    listener: tokio::net::TcpListener,
    mock: Arc<Mock>,
    limits: crate::ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    crate::serve::serve_router(listener, app(mock), limits, shutdown).await
}
