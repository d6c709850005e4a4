//! PoC v2 through the MLNode proxy, `/api/v1/inference/pow/*` (mlnode-api §4.3).

use std::sync::Arc;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{
    GenerateRequest, GenerateResponse, InitGenerateRequest, InitGenerateResponse, JobPollResponse,
    PowStatusResponse, StopResponse,
};

use super::extract::Json;
use crate::error::ApiError;
use crate::sim::{Current, Sim};

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/api/v1/inference/pow/init/generate", post(init_generate))
        .route("/api/v1/inference/pow/status", get(status))
        .route("/api/v1/inference/pow/stop", post(stop))
        .route("/api/v1/inference/pow/generate", post(generate))
        .route("/api/v1/inference/pow/generate/{request_id}", get(poll))
}

async fn init_generate(
    Current(node): Current,
    Json(req): Json<InitGenerateRequest>,
) -> Result<axum::Json<InitGenerateResponse>, ApiError> {
    Ok(axum::Json(node.pow_init(&req)?))
}

async fn status(Current(node): Current) -> axum::Json<PowStatusResponse> {
    axum::Json(node.pow_status())
}

/// The body is ignored (DAPI sends `{}`).
async fn stop(Current(node): Current) -> axum::Json<StopResponse> {
    axum::Json(node.pow_stop())
}

async fn generate(
    Current(node): Current,
    Json(req): Json<GenerateRequest>,
) -> Result<axum::Json<GenerateResponse>, ApiError> {
    Ok(axum::Json(node.pow_generate(req).await?))
}

async fn poll(
    Current(node): Current,
    Path(request_id): Path<String>,
) -> Result<axum::Json<JobPollResponse>, ApiError> {
    Ok(axum::Json(node.pow_poll(&request_id)?))
}
