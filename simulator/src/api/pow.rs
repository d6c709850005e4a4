//! PoC v2 through the MLNode proxy, `/api/v1/inference/pow/*` (mlnode-api §4.3).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{
    GenerateRequest, GenerateResponse, InitGenerateRequest, InitGenerateResponse, JobPollResponse,
    PowStatusResponse, StopResponse,
};

use super::extract::Json;
use crate::error::ApiError;
use crate::node::Node;

pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/api/v1/inference/pow/init/generate", post(init_generate))
        .route("/api/v1/inference/pow/status", get(status))
        .route("/api/v1/inference/pow/stop", post(stop))
        .route("/api/v1/inference/pow/generate", post(generate))
        .route("/api/v1/inference/pow/generate/{request_id}", get(poll))
}

async fn init_generate(
    State(node): State<Arc<Node>>,
    Json(req): Json<InitGenerateRequest>,
) -> Result<axum::Json<InitGenerateResponse>, ApiError> {
    Ok(axum::Json(node.pow_init(&req)?))
}

async fn status(State(node): State<Arc<Node>>) -> axum::Json<PowStatusResponse> {
    axum::Json(node.pow_status())
}

/// The body is ignored (DAPI sends `{}`).
async fn stop(State(node): State<Arc<Node>>) -> axum::Json<StopResponse> {
    axum::Json(node.pow_stop())
}

async fn generate(
    State(node): State<Arc<Node>>,
    Json(req): Json<GenerateRequest>,
) -> Result<axum::Json<GenerateResponse>, ApiError> {
    Ok(axum::Json(node.pow_generate(req).await?))
}

async fn poll(
    State(node): State<Arc<Node>>,
    Path(request_id): Path<String>,
) -> Result<axum::Json<JobPollResponse>, ApiError> {
    Ok(axum::Json(node.pow_poll(&request_id)?))
}
