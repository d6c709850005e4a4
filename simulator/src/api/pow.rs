//! PoC v2 through the MLNode proxy, `/api/v1/inference/pow/*` (mlnode-api §4.3).

use mlnode_protocol::paths;
use std::sync::Arc;

use crate::api::extract::PathParam;
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{
    GenerateRequest, GenerateResponse, InitGenerateRequest, InitGenerateResponse, JobPollResponse,
    StopResponse,
};

use super::extract::Json;
use crate::error::ApiError;
use crate::sim::{Current, Sim};

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route(paths::POW_INIT_GENERATE, post(init_generate))
        .route(paths::POW_STATUS, get(status))
        .route(paths::POW_STOP, post(stop))
        .route(paths::POW_GENERATE, post(generate))
        .route(paths::POW_GENERATE_JOB, get(poll))
}

async fn init_generate(
    Current(node): Current,
    Json(req): Json<InitGenerateRequest>,
) -> Result<Json<InitGenerateResponse>, ApiError> {
    Ok(Json(node.pow_init(&req)?))
}

/// Pre-rendered (see `Node::pow_status_json`): the endpoint every client polls.
async fn status(Current(node): Current) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        node.pow_status_json(),
    )
        .into_response()
}

/// The body is ignored (DAPI sends `{}`).
async fn stop(Current(node): Current) -> Json<StopResponse> {
    Json(node.pow_stop())
}

async fn generate(
    Current(node): Current,
    Json(req): Json<GenerateRequest>,
) -> Result<Json<GenerateResponse>, ApiError> {
    Ok(Json(node.pow_generate(req).await?))
}

async fn poll(
    Current(node): Current,
    PathParam(request_id): PathParam<String>,
) -> Result<Json<JobPollResponse>, ApiError> {
    Ok(Json(node.pow_poll(&request_id)?))
}
