//! Node state, versions, health and readiness (mlnode-api §4.4).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceState {
    Pow,
    Inference,
    Train,
    Stopped,
}

/// `GET /api/v1/state` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateResponse {
    pub state: ServiceState,
    pub version: String,
    pub poc_status: Option<String>,
    pub inference_healthy: Option<bool>,
    pub loaded_model: Option<String>,
    pub poc_validation_inference: bool,
}

/// A replica's `GET /api/v1/pow/versions` body (the gonka-poc plugin's feature
/// handshake; the MLNode copies it from its first healthy replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaVersions {
    pub vllm_version: String,
    pub gonka_poc_version: String,
    /// `/generate` validation runs alongside live inference (no abort of chat requests).
    pub poc_validation_inference: bool,
}

/// `GET /api/v1/versions` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionsResponse {
    pub version: String,
    pub vllm_version: Option<String>,
    pub poc_validation_inference: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    pub total_memory_mb: Option<u64>,
    pub free_memory_mb: Option<u64>,
    pub used_memory_mb: Option<u64>,
    pub utilization_percent: Option<u32>,
    pub temperature_c: Option<u32>,
    pub is_available: bool,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuInfo {
    pub available: bool,
    pub count: u32,
    pub devices: Vec<GpuDevice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManagerHealth {
    pub running: bool,
    pub healthy: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Managers {
    pub inference: ManagerHealth,
    pub train: ManagerHealth,
}

/// `GET /health` and `/livez` body (200 healthy, 503 unhealthy with the same body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    pub status: String,
    pub service_state: ServiceState,
    pub gpu: GpuInfo,
    pub managers: Managers,
}

/// `GET /readyz` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadyResponse {
    pub ready: bool,
}

/// `GET /api/v1/gpu/devices` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuDevicesResponse {
    pub devices: Vec<GpuDevice>,
    pub count: usize,
}

/// `GET /api/v1/gpu/driver` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuDriverResponse {
    pub driver_version: String,
    pub cuda_driver_version: String,
    pub nvml_version: String,
}
