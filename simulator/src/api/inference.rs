//! `/api/v1/inference/up*` and `/down` (mlnode-api §4.2).

use mlnode_protocol::paths;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{InferenceInitRequest, StartupStatus, StatusMessage};

use super::extract::Json;
use crate::error::ApiError;
use crate::sim::{Current, Sim};

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route(paths::UP, post(up))
        .route(paths::UP_ASYNC, post(up_async))
        .route(paths::UP_STATUS, get(status))
        .route(paths::DOWN, post(down))
}

/// Synchronous: blocks until the startup ends (what DAPI uses).
async fn up(
    Current(node): Current,
    Json(req): Json<InferenceInitRequest>,
) -> Result<Json<StatusMessage>, ApiError> {
    Ok(Json(node.inference_up_sync(&req).await?))
}

/// 200 (not 202) with `{"status":"starting",...}`.
async fn up_async(
    Current(node): Current,
    Json(req): Json<InferenceInitRequest>,
) -> Result<Json<StatusMessage>, ApiError> {
    Ok(Json(node.inference_up(&req)?))
}

async fn status(Current(node): Current) -> Json<StartupStatus> {
    Json(node.up_status())
}

async fn down(Current(node): Current) -> Json<StatusMessage> {
    Json(node.inference_down())
}
