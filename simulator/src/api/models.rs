//! `/api/v1/models/*` (mlnode-api §4.1).

use mlnode_protocol::paths;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{
    DeleteModelResponse, DownloadStartResponse, ErrorBody, Model, ModelListResponse,
    ModelStatusResponse, SpaceResponse,
};

use super::extract::Json;
use crate::error::ApiError;
use crate::sim::Current;

pub fn routes() -> Router {
    Router::new()
        .route(paths::MODELS_STATUS, post(status))
        .route(paths::MODELS_DOWNLOAD, post(download))
        .route(paths::MODELS, axum::routing::delete(delete))
        .route(paths::MODELS_LIST, get(list))
        .route(paths::MODELS_SPACE, get(space))
}

#[utoipa::path(post, path = "/api/v1/models/status", tag = "models", request_body = Model,
    responses((status = 200, description = "The model's cache/download state", body = ModelStatusResponse), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn status(
    Current(node): Current,
    Json(model): Json<Model>,
) -> Json<ModelStatusResponse> {
    Json(node.models_status(&model))
}

#[utoipa::path(post, path = "/api/v1/models/download", tag = "models", request_body = Model,
    responses((status = 202, description = "Download started (or already cached)", body = DownloadStartResponse),
        (status = 409, description = "Already downloading", body = ErrorBody), (status = 429, description = "Too many concurrent downloads", body = ErrorBody), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn download(
    Current(node): Current,
    Json(model): Json<Model>,
) -> Result<(StatusCode, Json<DownloadStartResponse>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(node.models_download(&model)?)))
}

#[utoipa::path(delete, path = "/api/v1/models", tag = "models", request_body = Model,
    responses((status = 200, description = "Deleted (or a download cancelled)", body = DeleteModelResponse),
        (status = 404, description = "Not in the cache", body = ErrorBody), (status = 409, description = "In use by the running deploy", body = ErrorBody), (status = 422, description = "Request schema violation (FastAPI/pydantic list of errors)", body = ErrorBody)))]
pub(crate) async fn delete(
    Current(node): Current,
    Json(model): Json<Model>,
) -> Result<Json<DeleteModelResponse>, ApiError> {
    Ok(Json(node.models_delete(&model)?))
}

#[utoipa::path(get, path = "/api/v1/models/list", tag = "models",
    responses((status = 200, description = "Cached models", body = ModelListResponse)))]
pub(crate) async fn list(Current(node): Current) -> Json<ModelListResponse> {
    Json(node.models_list())
}

#[utoipa::path(get, path = "/api/v1/models/space", tag = "models",
    responses((status = 200, description = "HF cache disk space", body = SpaceResponse)))]
pub(crate) async fn space(Current(node): Current) -> Json<SpaceResponse> {
    Json(node.models_space())
}
