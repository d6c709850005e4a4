//! `/api/v1/models/*` (mlnode-api §4.1).

use mlnode_protocol::paths;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{
    DeleteModelResponse, DownloadStartResponse, Model, ModelListResponse, ModelStatusResponse,
    SpaceResponse,
};

use super::extract::Json;
use crate::error::ApiError;
use crate::sim::{Current, Sim};

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route(paths::MODELS_STATUS, post(status))
        .route(paths::MODELS_DOWNLOAD, post(download))
        .route(paths::MODELS, axum::routing::delete(delete))
        .route(paths::MODELS_LIST, get(list))
        .route(paths::MODELS_SPACE, get(space))
}

async fn status(Current(node): Current, Json(model): Json<Model>) -> Json<ModelStatusResponse> {
    Json(node.models_status(&model))
}

async fn download(
    Current(node): Current,
    Json(model): Json<Model>,
) -> Result<(StatusCode, Json<DownloadStartResponse>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(node.models_download(&model)?)))
}

async fn delete(
    Current(node): Current,
    Json(model): Json<Model>,
) -> Result<Json<DeleteModelResponse>, ApiError> {
    Ok(Json(node.models_delete(&model)?))
}

async fn list(Current(node): Current) -> Json<ModelListResponse> {
    Json(node.models_list())
}

async fn space(Current(node): Current) -> Json<SpaceResponse> {
    Json(node.models_space())
}
