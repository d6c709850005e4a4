//! Transport faults (Toxiproxy/WireMock parity), per endpoint, each with a probability,
//! drawn from the scenario seed: added latency (fixed, uniform, lognormal), connection
//! reset, empty reply, truncated body, garbage bytes, slow body (dribble), hang, and an
//! HTTP error status in place of the answer.
//!
//! Next to the probability, a fault can be a *sequence*: `skip = N` lets the first N
//! matching calls through ("succeed N, then fail"), `times = M` disarms it after M
//! firings ("fail the first M, then succeed"); both count per fault, per node.
//!
//! Latencies are in simulated milliseconds (scaled by the node's clock like every other
//! duration) and never block other requests. Reset and empty reply need the TCP
//! connection itself: the serving loop (`serve.rs`) attaches a [`ConnKill`] to every
//! request (in `sim::Attached`), the middleware hands it to [`apply`], and firing it cuts
//! the connection (RST, or FIN with no bytes).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::clock::SimClock;

/// What the middleware calls on: the matched route (any infallible request service).
pub trait Route:
    tower::Service<Request, Response = Response, Error = std::convert::Infallible> + Send + 'static
{
}

impl<S> Route for S where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Send
        + 'static
{
}

/// Call the route once.
async fn run(route: impl Route, req: Request) -> Response {
    use tower::ServiceExt;
    route.oneshot(req).await.unwrap_or_else(|e| match e {})
}

/// A latency law in simulated milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Latency {
    Fixed { ms: f64 },
    Uniform { min_ms: f64, max_ms: f64 },
    Lognormal { median_ms: f64, sigma: f64 },
}

/// What the fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultKind {
    Latency {
        latency: Latency,
    },
    /// TCP RST, no response.
    Reset,
    /// Connection closed without a byte ("Empty reply from server").
    Empty,
    /// Headers announce the full length, half the body is sent, the connection closes.
    Truncate,
    /// 200 with random bytes instead of the body.
    Garbage,
    /// The body trickles out `chunk_bytes` every `interval_ms`.
    Dribble {
        chunk_bytes: usize,
        interval_ms: f64,
    },
    /// Never answer (until the client gives up).
    Hang,
    /// Answer `status` with `{"detail": detail}` instead of calling the handler.
    Status {
        status: u16,
        detail: String,
    },
}

impl FaultKind {
    /// The kind's name as fault files spell it (`kind = "..."`), for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Latency { .. } => "latency",
            FaultKind::Reset => "reset",
            FaultKind::Empty => "empty",
            FaultKind::Truncate => "truncate",
            FaultKind::Garbage => "garbage",
            FaultKind::Dribble { .. } => "dribble",
            FaultKind::Hang => "hang",
            FaultKind::Status { .. } => "status",
        }
    }
}

/// Every kind's name, in metrics order.
pub const KIND_NAMES: [&str; 8] = [
    "latency", "reset", "empty", "truncate", "garbage", "dribble", "hang", "status",
];

/// One injected fault: `{"path", "probability", "kind", ...kind parameters}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawFault")]
pub struct TransportFault {
    /// Exact path, or a prefix ending in `*` (`/api/v1/*`); `*` alone matches all.
    pub path: String,
    pub probability: f64,
    /// Matching calls let through before the fault is armed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skip: u64,
    /// Firings after which the fault disarms (`None`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    #[serde(flatten)]
    pub kind: FaultKind,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The wire form, strict about keys (`flatten` cannot be).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    path: String,
    #[serde(default = "one")]
    probability: f64,
    kind: String,
    #[serde(default)]
    latency: Option<Latency>,
    #[serde(default)]
    chunk_bytes: Option<usize>,
    #[serde(default)]
    interval_ms: Option<f64>,
    #[serde(default)]
    skip: u64,
    #[serde(default)]
    times: Option<u64>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    detail: Option<String>,
}

impl TryFrom<RawFault> for TransportFault {
    type Error = String;

    fn try_from(r: RawFault) -> Result<Self, String> {
        let extra = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "kind '{}' takes no latency/chunk_bytes/interval_ms/status/detail",
                    r.kind
                ))
            }
        };
        let no_status = r.status.is_none() && r.detail.is_none();
        let plain =
            r.latency.is_none() && r.chunk_bytes.is_none() && r.interval_ms.is_none() && no_status;
        let kind = match r.kind.as_str() {
            "latency" => {
                extra(r.chunk_bytes.is_none() && r.interval_ms.is_none() && no_status)?;
                FaultKind::Latency { latency: r.latency.ok_or("kind 'latency' needs a 'latency' object")? }
            }
            "dribble" => {
                extra(r.latency.is_none() && no_status)?;
                FaultKind::Dribble {
                    chunk_bytes: r.chunk_bytes.ok_or("kind 'dribble' needs chunk_bytes")?,
                    interval_ms: r.interval_ms.ok_or("kind 'dribble' needs interval_ms")?,
                }
            }
            "reset" => extra(plain).map(|_| FaultKind::Reset)?,
            "empty" => extra(plain).map(|_| FaultKind::Empty)?,
            "truncate" => extra(plain).map(|_| FaultKind::Truncate)?,
            "garbage" => extra(plain).map(|_| FaultKind::Garbage)?,
            "hang" => extra(plain).map(|_| FaultKind::Hang)?,
            "status" => {
                extra(r.latency.is_none() && r.chunk_bytes.is_none() && r.interval_ms.is_none())?;
                let status = r.status.ok_or("kind 'status' needs status (400..=599)")?;
                FaultKind::Status {
                    status,
                    detail: r
                        .detail
                        .unwrap_or_else(|| format!("simulated failure (HTTP {status})")),
                }
            }
            other => {
                return Err(format!(
                    "unknown fault kind '{other}' (latency, reset, empty, truncate, garbage, dribble, hang, status)"
                ))
            }
        };
        let f = TransportFault {
            path: r.path,
            probability: r.probability,
            skip: r.skip,
            times: r.times,
            kind,
        };
        f.check()?;
        Ok(f)
    }
}

fn one() -> f64 {
    1.0
}

impl TransportFault {
    pub fn matches(&self, path: &str) -> bool {
        match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => self.path == path,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!(
                "probability must be in [0, 1], got {}",
                self.probability
            ));
        }
        let bad = |v: f64| !(v.is_finite() && v >= 0.0);
        match &self.kind {
            FaultKind::Latency { latency } => match latency {
                Latency::Fixed { ms } if bad(*ms) => Err("ms must be >= 0".into()),
                Latency::Uniform { min_ms, max_ms }
                    if bad(*min_ms) || bad(*max_ms) || min_ms > max_ms =>
                {
                    Err("need 0 <= min_ms <= max_ms".into())
                }
                Latency::Lognormal { median_ms, sigma } if bad(*median_ms) || bad(*sigma) => {
                    Err("median_ms and sigma must be >= 0".into())
                }
                _ => Ok(()),
            },
            FaultKind::Dribble {
                chunk_bytes,
                interval_ms,
            } if *chunk_bytes == 0 || bad(*interval_ms) => {
                Err("dribble needs chunk_bytes >= 1 and interval_ms >= 0".into())
            }
            FaultKind::Status { status, .. } if !(400..=599).contains(status) => {
                Err(format!("status must be in 400..=599, got {status}"))
            }
            _ if self.times == Some(0) => Err("times must be >= 1 (omit it for no limit)".into()),
            _ => Ok(()),
        }
    }
}

/// A fault and its sequence counters.
#[derive(Debug, Clone)]
struct Armed {
    fault: TransportFault,
    /// Matching calls seen.
    seen: u64,
    /// Times it fired.
    fired: u64,
}

/// A fault as the admin API lists it: the spec and how often it matched and fired.
#[derive(Debug, Clone, Serialize)]
pub struct FaultState {
    #[serde(flatten)]
    pub fault: TransportFault,
    pub seen: u64,
    pub fired: u64,
}

/// The active faults, their seeded RNG, and how many of each kind were injected.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<(Vec<Armed>, ChaCha20Rng)>,
    /// How many faults are set: requests skip the lock when there are none.
    count: std::sync::atomic::AtomicUsize,
    /// Injections per kind since start (in [`KIND_NAMES`] order; never reset, as a
    /// Prometheus counter must not be).
    injected: [std::sync::atomic::AtomicU64; KIND_NAMES.len()],
}

fn armed(faults: Vec<TransportFault>) -> Vec<Armed> {
    faults
        .into_iter()
        .map(|fault| Armed {
            fault,
            seen: 0,
            fired: 0,
        })
        .collect()
}

impl Faults {
    pub fn new(faults: Vec<TransportFault>, seed: u64) -> Self {
        Faults {
            count: std::sync::atomic::AtomicUsize::new(faults.len()),
            state: Mutex::new((
                armed(faults),
                ChaCha20Rng::seed_from_u64(seed ^ 0x7472_616e_7370),
            )),
            injected: Default::default(),
        }
    }

    pub fn list(&self) -> Vec<TransportFault> {
        self.states().into_iter().map(|s| s.fault).collect()
    }

    /// The faults with their counters.
    pub fn states(&self) -> Vec<FaultState> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .iter()
            .map(|a| FaultState {
                fault: a.fault.clone(),
                seen: a.seen,
                fired: a.fired,
            })
            .collect()
    }

    /// Injections so far, per kind name.
    pub fn injected(&self) -> Vec<(&'static str, u64)> {
        KIND_NAMES
            .iter()
            .zip(&self.injected)
            .map(|(k, n)| (*k, n.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }

    pub fn set(&self, faults: Vec<TransportFault>) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = armed(faults);
        self.count
            .store(g.0.len(), std::sync::atomic::Ordering::Release);
    }

    pub fn add(&self, f: TransportFault) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0.extend(armed(vec![f]));
        self.count
            .store(g.0.len(), std::sync::atomic::Ordering::Release);
    }

    /// The first matching armed fault that fires for this request, with a resolved
    /// latency. Every matching fault counts the call, so sequences of several faults on
    /// one path stay in step.
    pub fn decide(&self, path: &str) -> Option<(FaultKind, f64)> {
        if self.count.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return None;
        }
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (faults, rng) = &mut *g;
        let mut chosen = None;
        for a in faults.iter_mut() {
            if !a.fault.matches(path) {
                continue;
            }
            a.seen += 1;
            if chosen.is_some()
                || a.seen <= a.fault.skip
                || a.fault.times.is_some_and(|t| a.fired >= t)
            {
                continue;
            }
            let f = &a.fault;
            if rng.random::<f64>() < f.probability {
                let ms = match &f.kind {
                    FaultKind::Latency { latency } => match latency {
                        Latency::Fixed { ms } => *ms,
                        Latency::Uniform { min_ms, max_ms } => {
                            min_ms + rng.random::<f64>() * (max_ms - min_ms)
                        }
                        Latency::Lognormal { median_ms, sigma } => (median_ms.max(1e-9).ln()
                            + sigma * mlnode_protocol::vectors::gaussian(rng))
                        .exp(),
                    },
                    _ => 0.0,
                };
                a.fired += 1;
                if let Some(i) = KIND_NAMES.iter().position(|k| *k == f.kind.name()) {
                    self.injected[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                chosen = Some((f.kind.clone(), ms));
            }
        }
        chosen
    }
}

/// How to cut a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Reset,
    Empty,
}

/// A per-connection switch the accept loop listens to.
#[derive(Debug, Clone)]
pub struct ConnKill(Arc<Mutex<Option<oneshot::Sender<Cut>>>>);

impl ConnKill {
    pub fn new() -> (Self, oneshot::Receiver<Cut>) {
        let (tx, rx) = oneshot::channel();
        (ConnKill(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    fn fire(&self, cut: Cut) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some_and(|tx| tx.send(cut).is_ok())
    }
}

/// Apply the faults in `faults` to one request (called from the router's single
/// middleware); `clock` scales the latencies. Fault data and its application meet here
/// without this module knowing the served state.
pub async fn apply(
    faults: &Faults,
    clock: SimClock,
    kill: Option<&ConnKill>,
    req: Request,
    next: impl Route,
) -> Response {
    let path = req.uri().path();
    if path.starts_with("/sim/v1/") {
        return run(next, req).await; // the admin API must stay reachable to clear faults
    }
    let Some((kind, ms)) = faults.decide(path) else {
        return run(next, req).await;
    };
    match kind {
        FaultKind::Latency { .. } => {
            clock.sleep(ms / 1000.0).await;
            run(next, req).await
        }
        FaultKind::Reset | FaultKind::Empty => {
            let cut = if kind == FaultKind::Reset {
                Cut::Reset
            } else {
                Cut::Empty
            };
            match kill {
                Some(k) if k.fire(cut) => std::future::pending().await,
                // No connection to cut (e.g. `oneshot` in tests): the closest HTTP answer.
                _ => (
                    StatusCode::BAD_GATEWAY,
                    axum::Json(serde_json::json!({"detail": "simulated connection failure"})),
                )
                    .into_response(),
            }
        }
        FaultKind::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        FaultKind::Status { status, detail } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            axum::Json(serde_json::json!({ "detail": detail })),
        )
            .into_response(),
        FaultKind::Truncate => {
            let resp = run(next, req).await;
            let (mut parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            parts.headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(bytes.len().max(1)),
            );
            let half = bytes.slice(..bytes.len() / 2);
            Response::from_parts(parts, Body::from(half))
        }
        FaultKind::Garbage => {
            let resp = run(next, req).await;
            let (mut parts, body) = resp.into_parts();
            let n = axum::body::to_bytes(body, usize::MAX)
                .await
                .map(|b| b.len())
                .unwrap_or(32)
                .max(16);
            let mut junk = vec![0u8; n];
            rand::rng().fill_bytes(&mut junk);
            parts.status = StatusCode::OK;
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(junk))
        }
        FaultKind::Dribble {
            chunk_bytes,
            interval_ms,
        } => {
            let resp = run(next, req).await;
            let (mut parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            parts.headers.remove(header::CONTENT_LENGTH);
            let chunks: Vec<axum::body::Bytes> = bytes
                .chunks(chunk_bytes)
                .map(axum::body::Bytes::copy_from_slice)
                .collect();
            let stream = futures_util::stream::unfold(
                (chunks.into_iter(), true),
                move |(mut it, first)| async move {
                    let c = it.next()?;
                    if !first {
                        clock.sleep(interval_ms / 1000.0).await;
                    }
                    Some((Ok::<_, std::convert::Infallible>(c), (it, false)))
                },
            );
            Response::from_parts(parts, Body::from_stream(stream))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_probability() {
        let f = |path: &str, p: f64| TransportFault {
            path: path.into(),
            probability: p,
            skip: 0,
            times: None,
            kind: FaultKind::Reset,
        };
        assert!(f("/api/v1/*", 1.0).matches(mlnode_protocol::paths::STATE));
        assert!(!f(mlnode_protocol::paths::STATE, 1.0).matches("/api/v1/stateX"));
        assert!(f("*", 1.0).matches("/health"));
        let faults = Faults::new(vec![f("/a", 0.25)], 1);
        let hits = (0..4000).filter(|_| faults.decide("/a").is_some()).count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert!(faults.decide("/b").is_none());
        assert!(f("/a", 1.5).check().is_err());
    }

    #[test]
    fn sequences_fail_first_n_or_after_n() {
        let parse = |t: &str| toml::from_str::<TransportFault>(t).unwrap();
        // Fail the first 2 calls with a 503, then succeed.
        let first = Faults::new(
            vec![parse(
                "path = \"/a\"\nkind = \"status\"\nstatus = 503\ntimes = 2\n",
            )],
            1,
        );
        let fired: Vec<bool> = (0..5).map(|_| first.decide("/a").is_some()).collect();
        assert_eq!(fired, [true, true, false, false, false]);
        // Succeed 3, then fail every call; other paths are not counted.
        let after = Faults::new(
            vec![parse("path = \"/a\"\nkind = \"reset\"\nskip = 3\n")],
            1,
        );
        assert!(after.decide("/b").is_none());
        let fired: Vec<bool> = (0..6).map(|_| after.decide("/a").is_some()).collect();
        assert_eq!(fired, [false, false, false, true, true, true]);
        assert_eq!(
            after
                .injected()
                .iter()
                .find(|(k, _)| *k == "reset")
                .map(|x| x.1),
            Some(3)
        );
        let s = after.states();
        assert_eq!((s[0].seen, s[0].fired), (7 - 1, 3));
        // Named errors for sequences that cannot work.
        let err = |t: &str| toml::from_str::<TransportFault>(t).unwrap_err().to_string();
        assert!(err("path = \"/a\"\nkind = \"status\"\n").contains("needs status"));
        assert!(err("path = \"/a\"\nkind = \"status\"\nstatus = 200\n").contains("400..=599"));
        assert!(err("path = \"/a\"\nkind = \"reset\"\ntimes = 0\n").contains("times must be >= 1"));
        assert!(err("path = \"/a\"\nkind = \"reset\"\nstatus = 503\n").contains("takes no"));
    }

    #[test]
    fn fault_specs_parse_from_json_and_toml() {
        let j: TransportFault = serde_json::from_str(
            r#"{"path":"/health","probability":0.5,"kind":"latency","latency":{"dist":"uniform","min_ms":10,"max_ms":20}}"#,
        )
        .unwrap();
        assert!(matches!(
            j.kind,
            FaultKind::Latency {
                latency: Latency::Uniform { .. }
            }
        ));
        let t: TransportFault = toml::from_str(
            "path = \"/x\"\nkind = \"dribble\"\nchunk_bytes = 4\ninterval_ms = 5.0\n",
        )
        .unwrap();
        assert_eq!(t.probability, 1.0);
        assert!(serde_json::from_str::<TransportFault>(r#"{"path":"/x","kind":"nope"}"#).is_err());
        assert!(
            serde_json::from_str::<TransportFault>(r#"{"path":"/x","kind":"reset","typo":1}"#)
                .is_err()
        );
    }
}
