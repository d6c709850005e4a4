//! PoC v2 through the MLNode proxy, `/api/v1/inference/pow/*` (mlnode-api §4.3).

use mlnode_protocol::paths;
use std::sync::Arc;

use std::net::SocketAddr;

use crate::api::extract::PathParam;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
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
        .route(paths::POW_LOCAL_SINK, get(sink_summary))
        .route(paths::POW_LOCAL_SINK_PATH, post(sink_receive))
}

/// An empty `url` is rewritten to the node's local sink, as the MLNode does.
async fn init_generate(
    Current(node): Current,
    Json(mut req): Json<InitGenerateRequest>,
) -> Result<Json<InitGenerateResponse>, ApiError> {
    req.url = node.callback_url(req.url.take());
    Ok(Json(node.pow_init(&req)?))
}

/// The sink takes loopback clients only: a callback from elsewhere is refused.
fn loopback_only(peer: Option<&ConnectInfo<SocketAddr>>) -> Result<(), ApiError> {
    match peer {
        Some(ConnectInfo(a)) if a.ip().is_loopback() => Ok(()),
        Some(ConnectInfo(a)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the local sink accepts loopback clients only (got {})",
                a.ip()
            ),
        )),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the local sink accepts loopback clients only (peer unknown)",
        )),
    }
}

async fn sink_receive(
    Current(node): Current,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    PathParam(path): PathParam<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    loopback_only(peer.as_ref().map(|e| &e.0))?;
    node.sink_receive(&path, &body);
    Ok(Json(serde_json::json!({"status": "OK"})))
}

async fn sink_summary(
    Current(node): Current,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
) -> Result<Json<crate::node::SinkSummary>, ApiError> {
    loopback_only(peer.as_ref().map(|e| &e.0))?;
    Ok(Json(node.sink_summary()))
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

/// `wait=false` with no `url`: the results go to the local sink.
async fn generate(
    Current(node): Current,
    Json(mut req): Json<GenerateRequest>,
) -> Result<Json<GenerateResponse>, ApiError> {
    if !req.wait {
        req.url = node.callback_url(req.url.take());
    }
    Ok(Json(node.pow_generate(req).await?))
}

async fn poll(
    Current(node): Current,
    PathParam(request_id): PathParam<String>,
) -> Result<Json<JobPollResponse>, ApiError> {
    Ok(Json(node.pow_poll(&request_id)?))
}
