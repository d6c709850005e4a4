//! Transport faults (Toxiproxy/WireMock parity), per endpoint, each with a probability,
//! drawn from the scenario seed: added latency (fixed, uniform, lognormal), connection
//! reset, empty reply, truncated body, garbage bytes, slow body (dribble), and hang.
//!
//! Latencies are in simulated milliseconds (scaled by the node's clock like every other
//! duration) and never block other requests. Reset and empty reply need the TCP
//! connection itself: [`ConnKill`] is put into every request by the accept loop in
//! `lib.rs`, and firing it cuts the connection (RST, or FIN with no bytes).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::clock::SimClock;

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
}

/// One injected fault: `{"path", "probability", "kind", ...kind parameters}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawFault")]
pub struct TransportFault {
    /// Exact path, or a prefix ending in `*` (`/api/v1/*`); `*` alone matches all.
    pub path: String,
    pub probability: f64,
    #[serde(flatten)]
    pub kind: FaultKind,
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
}

impl TryFrom<RawFault> for TransportFault {
    type Error = String;

    fn try_from(r: RawFault) -> Result<Self, String> {
        let extra = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "kind '{}' takes no latency/chunk_bytes/interval_ms",
                    r.kind
                ))
            }
        };
        let plain = r.latency.is_none() && r.chunk_bytes.is_none() && r.interval_ms.is_none();
        let kind = match r.kind.as_str() {
            "latency" => {
                extra(r.chunk_bytes.is_none() && r.interval_ms.is_none())?;
                FaultKind::Latency { latency: r.latency.ok_or("kind 'latency' needs a 'latency' object")? }
            }
            "dribble" => {
                extra(r.latency.is_none())?;
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
            other => {
                return Err(format!(
                    "unknown fault kind '{other}' (latency, reset, empty, truncate, garbage, dribble, hang)"
                ))
            }
        };
        let f = TransportFault {
            path: r.path,
            probability: r.probability,
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
            _ => Ok(()),
        }
    }
}

/// The active faults and their seeded RNG.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<(Vec<TransportFault>, ChaCha20Rng)>,
    /// How many faults are set: requests skip the lock when there are none.
    count: std::sync::atomic::AtomicUsize,
}

impl Faults {
    pub fn new(faults: Vec<TransportFault>, seed: u64) -> Self {
        Faults {
            count: std::sync::atomic::AtomicUsize::new(faults.len()),
            state: Mutex::new((faults, ChaCha20Rng::seed_from_u64(seed ^ 0x7472_616e_7370))),
        }
    }

    pub fn list(&self) -> Vec<TransportFault> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    pub fn set(&self, faults: Vec<TransportFault>) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = faults;
        self.count
            .store(g.0.len(), std::sync::atomic::Ordering::Release);
    }

    pub fn add(&self, f: TransportFault) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0.push(f);
        self.count
            .store(g.0.len(), std::sync::atomic::Ordering::Release);
    }

    /// The first matching fault that fires for this request, with a resolved latency.
    pub fn decide(&self, path: &str) -> Option<(FaultKind, f64)> {
        if self.count.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return None;
        }
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (faults, rng) = &mut *g;
        for f in faults.iter() {
            if f.matches(path) && rng.random::<f64>() < f.probability {
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
                return Some((f.kind.clone(), ms));
            }
        }
        None
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
pub async fn apply(faults: &Faults, clock: SimClock, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/sim/v1/") {
        return next.run(req).await; // the admin API must stay reachable to clear faults
    }
    let Some((kind, ms)) = faults.decide(path) else {
        return next.run(req).await;
    };
    match kind {
        FaultKind::Latency { .. } => {
            clock.sleep(ms / 1000.0).await;
            next.run(req).await
        }
        FaultKind::Reset | FaultKind::Empty => {
            let cut = if kind == FaultKind::Reset {
                Cut::Reset
            } else {
                Cut::Empty
            };
            match req.extensions().get::<ConnKill>() {
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
        FaultKind::Truncate => {
            let resp = next.run(req).await;
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
            let resp = next.run(req).await;
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
            let resp = next.run(req).await;
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
