//! Model cache management, `/api/v1/models/*` (mlnode-api §4.1).

use serde::{Deserialize, Serialize};

/// A HuggingFace repo at a revision (`null` = latest).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Model {
    pub hf_repo: String,
    #[serde(default)]
    pub hf_commit: Option<String>,
}

impl Model {
    pub fn latest(repo: impl Into<String>) -> Self {
        Model {
            hf_repo: repo.into(),
            hf_commit: None,
        }
    }

    /// `"{hf_repo}:{hf_commit}"`, or `"{hf_repo}:latest"`: the download task id.
    pub fn task_id(&self) -> String {
        format!(
            "{}:{}",
            self.hf_repo,
            self.hf_commit.as_deref().unwrap_or("latest")
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModelStatus {
    Downloaded,
    Downloading,
    NotFound,
    Partial,
    Error,
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DownloadProgress {
    pub start_time: f64,
    pub elapsed_seconds: f64,
}

/// `POST /api/v1/models/status` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelStatusResponse {
    pub model: Model,
    pub status: ModelStatus,
    #[serde(default)]
    pub progress: Option<DownloadProgress>,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// `POST /api/v1/models/download` response (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DownloadStartResponse {
    pub task_id: String,
    pub status: ModelStatus,
    pub model: Model,
}

/// `DELETE /api/v1/models` response: `status` is `cancelled` or `deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteModelResponse {
    pub status: String,
    pub model: Model,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelListEntry {
    pub model: Model,
    pub status: ModelStatus,
}

/// `GET /api/v1/models/list` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelListResponse {
    pub models: Vec<ModelListEntry>,
}

/// `GET /api/v1/models/space` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpaceResponse {
    pub cache_size_gb: f64,
    pub available_gb: f64,
    pub cache_path: String,
}
