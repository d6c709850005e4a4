//! Which of a node's two listeners a request came in on.

/// A node's listener: the real MLNode serves its management / PoC API on `poc_port` and
/// the OpenAI-compatible compat proxy on `inference_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// `poc_port`: the management and PoC API (and the `/v1` proxy).
    Poc,
    /// `inference_port`: the OpenAI-compatible compat proxy, up only while a replica
    /// is healthy.
    Inference,
}
