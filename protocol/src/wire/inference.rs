//! Inference lifecycle, `/api/v1/inference/up*`, `/down` (mlnode-api §4.2).

use serde::{Deserialize, Serialize};

/// Body of `/inference/up` and `/inference/up/async`. `dtype` is required (422 if missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceInitRequest {
    pub model: String,
    pub dtype: String,
    #[serde(default)]
    pub additional_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StartupState {
    NotStarted,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

/// `GET /api/v1/inference/up/status` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartupStatus {
    pub status: StartupState,
    pub is_starting: bool,
    pub is_running: bool,
    pub elapsed_seconds: Option<f64>,
    pub error: Option<String>,
}
