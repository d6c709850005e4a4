//! Callbacks the replicas POST to `{url}/generated` and `{url}/validated` (mlnode-api §5).

use serde::{Deserialize, Serialize};

use super::pow::{Artifact, Encoding, ValidationResult};

/// `POST {url}/generated`: a mining batch (no `request_id`) or a queued job's artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GeneratedCallback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub public_key: String,
    pub block_hash: String,
    pub block_height: i64,
    pub node_id: i64,
    pub artifacts: Vec<Artifact>,
    pub encoding: Encoding,
}

/// `POST {url}/validated`: a queued validation's verdict (`request_id` = replica uuid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatedCallback {
    pub request_id: String,
    pub block_hash: String,
    pub block_height: i64,
    pub public_key: String,
    pub node_id: i64,
    #[serde(flatten)]
    pub result: ValidationResult,
}
