//! `/api/v1/inference/up*` and `/down` (mlnode-api §4.2).

use mlnode_protocol::paths;

use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{ErrorBody, InferenceInitRequest, StartupStatus, StatusMessage};

use super::extract::Json;
use crate::error::ApiError;
use crate::sim::Current;

pub fn routes() -> Router {
    Router::new()
        .route(paths::UP, post(up))
        .route(paths::UP_ASYNC, post(up_async))
        .route(paths::UP_STATUS, get(status))
        .route(paths::DOWN, post(down))
}

/// Synchronous: blocks until the startup ends (what DAPI uses).
#[utoipa::path(post, path = "/api/v1/inference/up", tag = "inference", request_body = InferenceInitRequest,
    responses((status = 200, description = "vLLM started", body = StatusMessage),
        (status = 400, description = "Model not in the cache", body = ErrorBody), (status = 409, description = "Already running or starting", body = ErrorBody), (status = 500, description = "Startup failed", body = ErrorBody), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn up(
    Current(node): Current,
    Json(req): Json<InferenceInitRequest>,
) -> Result<Json<StatusMessage>, ApiError> {
    Ok(Json(node.inference_up_sync(&req).await?))
}

/// 200 (not 202) with `{"status":"starting",...}`.
#[utoipa::path(post, path = "/api/v1/inference/up/async", tag = "inference", request_body = InferenceInitRequest,
    responses((status = 200, description = "Startup initiated in the background", body = StatusMessage),
        (status = 400, description = "Model not in the cache", body = ErrorBody), (status = 409, description = "Already running or starting", body = ErrorBody), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn up_async(
    Current(node): Current,
    Json(req): Json<InferenceInitRequest>,
) -> Result<Json<StatusMessage>, ApiError> {
    Ok(Json(node.inference_up(&req)?))
}

#[utoipa::path(get, path = "/api/v1/inference/up/status", tag = "inference",
    responses((status = 200, description = "Startup progress", body = StartupStatus)))]
pub(crate) async fn status(Current(node): Current) -> Json<StartupStatus> {
    Json(node.up_status())
}

#[utoipa::path(post, path = "/api/v1/inference/down", tag = "inference",
    responses((status = 200, description = "Stopped (asynchronously)", body = StatusMessage)))]
pub(crate) async fn down(Current(node): Current) -> Json<StatusMessage> {
    Json(node.inference_down())
}
