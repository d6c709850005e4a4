//! PoC v2 through the MLNode proxy, `/api/v1/inference/pow/*` (mlnode-api §4.3).

use mlnode_protocol::paths;

use std::net::SocketAddr;

use crate::api::extract::PathParam;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{
    ErrorBody, GenerateRequest, GenerateResponse, InitGenerateRequest, InitGenerateResponse,
    JobPollResponse, StopResponse,
};

use super::extract::Json;
use crate::error::ApiError;
use crate::sim::Current;

pub fn routes() -> Router {
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
#[utoipa::path(post, path = "/api/v1/inference/pow/init/generate", tag = "pow", request_body = InitGenerateRequest,
    responses((status = 200, description = "Mining started on the healthy replicas (partial failures in `errors`)", body = InitGenerateResponse),
        (status = 502, description = "Every replica failed (`detail.errors`)", body = ErrorBody), (status = 503, description = "No vLLM backends available", body = ErrorBody), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn init_generate(
    Current(node): Current,
    Json(mut req): Json<InitGenerateRequest>,
) -> Result<Json<InitGenerateResponse>, ApiError> {
    req.url = node.callback_url(req.url.take());
    Ok(Json(node.pow_init(&req)?))
}

/// Handler argument: the client's address, if known ([`crate::sim::Attached::peer_of`]).
pub(crate) struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(crate::sim::Attached::peer_of(&parts.extensions)))
    }
}

/// The sink takes loopback clients only: a callback from elsewhere is refused.
fn loopback_only(peer: Option<SocketAddr>) -> Result<(), ApiError> {
    match peer {
        Some(a) if a.ip().is_loopback() => Ok(()),
        Some(a) => Err(ApiError::new(
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

#[utoipa::path(post, path = "/api/v1/inference/pow/local-sink/{path}", tag = "pow",
    params(("path" = String, Path, description = "`generated` or `validated`")),
    request_body(content = Object, description = "A callback body"),
    responses((status = 200, description = "Recorded", body = Object),
        (status = 403, description = "Not a loopback client", body = ErrorBody), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn sink_receive(
    Current(node): Current,
    Peer(peer): Peer,
    PathParam(path): PathParam<String>,
    Json(body): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    loopback_only(peer)?;
    node.sink_receive(&path, &serde_json::Value::Object(body));
    Ok(Json(serde_json::json!({"status": "OK"})))
}

#[utoipa::path(get, path = "/api/v1/inference/pow/local-sink", tag = "pow",
    responses((status = 200, description = "What the node's local callback sink received", body = crate::node::SinkSummary),
        (status = 403, description = "Not a loopback client", body = ErrorBody)))]
pub(crate) async fn sink_summary(
    Current(node): Current,
    Peer(peer): Peer,
) -> Result<Json<crate::node::SinkSummary>, ApiError> {
    loopback_only(peer)?;
    Ok(Json(node.sink_summary()))
}

/// Pre-rendered (see `Node::pow_status_json`): the endpoint every client polls.
#[utoipa::path(get, path = "/api/v1/inference/pow/status", tag = "pow",
    responses((status = 200, description = "Aggregate and per-replica mining status", body = mlnode_protocol::wire::PowStatusResponse)))]
pub(crate) async fn status(Current(node): Current) -> axum::response::Response {
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
#[utoipa::path(post, path = "/api/v1/inference/pow/stop", tag = "pow",
    responses((status = 200, description = "Mining stopped on every replica", body = StopResponse)))]
pub(crate) async fn stop(Current(node): Current) -> Json<StopResponse> {
    Json(node.pow_stop())
}

/// `wait=false` with no `url`: the results go to the local sink.
#[utoipa::path(post, path = "/api/v1/inference/pow/generate", tag = "pow", request_body = GenerateRequest,
    responses((status = 200, description = "A verdict or artifacts (`wait=true`), or a queued job", body = GenerateResponse),
        (status = 400, description = "Nonce set and artifacts disagree", body = ErrorBody), (status = 409, description = "Params differ from the mining session", body = ErrorBody),
        (status = 429, description = "Queue full", body = ErrorBody), (status = 502, description = "Replica failed or the 60 s proxy timeout", body = ErrorBody), (status = 503, description = "No vLLM backends available", body = ErrorBody), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn generate(
    Current(node): Current,
    Json(mut req): Json<GenerateRequest>,
) -> Result<Json<GenerateResponse>, ApiError> {
    if !req.wait {
        req.url = node.callback_url(req.url.take());
    }
    Ok(Json(node.pow_generate(req).await?))
}

#[utoipa::path(get, path = "/api/v1/inference/pow/generate/{request_id}", tag = "pow",
    params(("request_id" = String, Path, description = "Composite `port:uuid` id from a queued answer")),
    responses((status = 200, description = "The job", body = JobPollResponse),
        (status = 400, description = "Not a `port:uuid` id", body = ErrorBody), (status = 404, description = "Unknown or expired job", body = ErrorBody), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn poll(
    Current(node): Current,
    PathParam(request_id): PathParam<String>,
) -> Result<Json<JobPollResponse>, ApiError> {
    Ok(Json(node.pow_poll(&request_id)?))
}
