//! The node's local callback sink (`/api/v1/inference/pow/local-sink/{path}`).
//!
//! A PoC request that names no callback `url` (`/init/generate`, or `/generate` with
//! `wait=false`) has its callbacks sent to the node itself instead of nowhere: the
//! MLNode rewrites the empty url to this sink, which accepts loopback clients only
//! (403 otherwise) and keeps a summary of what arrived.
//!
//! The node's own callbacks are recorded in-process (no vectors are encoded for them and
//! no HTTP request is made): what an operator can observe — counts, last arrivals — is
//! the same, and a thousand idle-url fleet nodes do not spend a core posting to
//! themselves.

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::Value;

use super::Node;

/// How many recent deliveries the sink remembers.
pub const RECENT: usize = 32;

/// One delivery, as `GET /api/v1/inference/pow/local-sink` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// `generated` or `validated` (the path after the sink's).
    pub path: String,
    /// Simulated seconds since the node started.
    pub at: f64,
    pub artifacts: usize,
    pub request_id: Option<String>,
    pub fraud_detected: Option<bool>,
}

/// What the sink received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SinkSummary {
    pub deliveries: u64,
    pub artifacts: u64,
    /// Newest last, at most [`RECENT`].
    #[schema(value_type = Vec<Delivery>)]
    pub recent: VecDeque<Delivery>,
}

impl SinkSummary {
    fn push(&mut self, d: Delivery) {
        self.deliveries += 1;
        self.artifacts += d.artifacts as u64;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(d);
    }
}

impl Node {
    /// The url empty callback urls are rewritten to (set once the node is bound).
    pub fn local_sink_url(&self) -> Option<&str> {
        self.local_sink.get().map(String::as_str)
    }

    /// Tell the node where it listens (its callbacks may target its own sink).
    pub fn set_address(&self, poc: std::net::SocketAddr) {
        let _ = self.local_sink.set(format!(
            "http://{poc}{}",
            mlnode_protocol::paths::POW_LOCAL_SINK
        ));
    }

    /// `url` as the MLNode forwards it: an empty or missing one becomes the local sink.
    pub fn callback_url(&self, url: Option<String>) -> Option<String> {
        match url {
            Some(u) if !u.trim().is_empty() => Some(u),
            _ => self.local_sink_url().map(str::to_owned),
        }
    }

    /// Whether a callback to `url` lands in this node's own sink.
    pub(super) fn is_own_sink(&self, url: &str) -> bool {
        self.local_sink_url()
            .and_then(|s| url.strip_prefix(s))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Record a delivery of `body` to `{sink}/{path}`.
    pub fn sink_receive(&self, path: &str, body: &Value) {
        let d = Delivery {
            path: path.trim_matches('/').to_owned(),
            at: self.clock.now(),
            artifacts: body
                .get("artifacts")
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
            request_id: body
                .get("request_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            fraud_detected: body
                .get("result")
                .and_then(|r| r.get("fraud_detected"))
                .or_else(|| body.get("fraud_detected"))
                .and_then(Value::as_bool),
        };
        self.sink_record(d);
    }

    /// Record an own callback without its body (mining batches: only the count matters).
    pub(super) fn sink_record(&self, d: Delivery) {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).push(d);
    }

    /// What the sink received so far.
    pub fn sink_summary(&self) -> SinkSummary {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
