//! Node state, health and utilities (mlnode-api §4.4).

use mlnode_protocol::paths;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{ReadyResponse, StateResponse, StatusMessage, VersionsResponse};
use serde_json::json;

use super::extract::Json;
use crate::sim::{Current, Sim};

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/health", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(ready))
        .route(paths::STATE, get(state))
        .route(paths::VERSIONS, get(versions))
        .route(paths::STOP, post(stop))
        .route(paths::CLOCK, get(clock))
        .route(paths::METRICS, get(metrics))
        .route(paths::GPU_DEVICES, get(gpu_devices))
        .route(paths::GPU_DRIVER, get(gpu_driver))
        .route(paths::POW_V1_STATUS, get(legacy_pow_status))
}

async fn health(Current(node): Current) -> Response {
    let h = node.health();
    let code = if h.status == "healthy" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(h)).into_response()
}

async fn ready(Current(node): Current) -> Response {
    let ready = node.ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(ReadyResponse { ready })).into_response()
}

async fn state(Current(node): Current) -> Json<StateResponse> {
    Json(node.state())
}

/// Prometheus text of this node (G-METRICS schema v1 families + the simulator's own).
async fn metrics(axum::extract::State(sim): axum::extract::State<Arc<Sim>>) -> Response {
    match sim.metrics.render(&sim.node(), &sim.transport) {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(e) => crate::error::ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics encoding failed: {e}"),
        )
        .into_response(),
    }
}

async fn versions(Current(node): Current) -> Json<VersionsResponse> {
    Json(node.versions())
}

async fn stop(Current(node): Current) -> Json<StatusMessage> {
    Json(node.inference_down())
}

fn unix_ns() -> HeaderValue {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    HeaderValue::from(ns as u64)
}

/// `204`, empty body, receive/send timestamps in unix ns.
async fn clock() -> Response {
    let mut h = HeaderMap::new();
    h.insert("X-Server-Recv-Ns", unix_ns());
    h.insert("X-Server-Send-Ns", unix_ns());
    (StatusCode::NO_CONTENT, h).into_response()
}

async fn gpu_devices(Current(node): Current) -> Json<serde_json::Value> {
    let devices = node.gpu_devices();
    Json(json!({ "count": devices.len(), "devices": devices }))
}

async fn gpu_driver() -> Json<serde_json::Value> {
    Json(
        json!({"driver_version": "550.54.15", "cuda_driver_version": "12.4", "nvml_version": "12.550.54.15"}),
    )
}

/// Legacy PoC v1 status on the MLNode port (mlnode-api §4.7).
async fn legacy_pow_status() -> Json<serde_json::Value> {
    Json(json!({"status": "IDLE", "is_model_initialized": false}))
}
