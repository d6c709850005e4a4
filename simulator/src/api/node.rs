//! Node state, health and utilities (mlnode-api §4.4).

use mlnode_protocol::paths;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::wire::{
    GpuDevicesResponse, GpuDriverResponse, HealthResponse, ReadyResponse, StateResponse,
    StatusMessage, VersionsResponse,
};
use serde_json::json;

use super::extract::Json;
use crate::sim::{Current, SimState};

pub fn routes() -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/livez", get(livez))
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

#[utoipa::path(get, path = "/health", tag = "state",
    responses((status = 200, description = "Healthy", body = HealthResponse), (status = 503, description = "Unhealthy (same body)", body = HealthResponse)))]
pub(crate) async fn health(Current(node): Current) -> Response {
    let h = node.health();
    let code = if h.status == "healthy" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(h)).into_response()
}

#[utoipa::path(get, path = "/livez", tag = "state",
    responses((status = 200, description = "Healthy", body = HealthResponse), (status = 503, description = "Unhealthy (same body)", body = HealthResponse)))]
pub(crate) async fn livez(node: Current) -> Response {
    health(node).await
}

#[utoipa::path(get, path = "/readyz", tag = "state",
    responses((status = 200, description = "Ready", body = ReadyResponse), (status = 503, description = "Not ready", body = ReadyResponse)))]
pub(crate) async fn ready(Current(node): Current) -> Response {
    let ready = node.ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(ReadyResponse { ready })).into_response()
}

#[utoipa::path(get, path = "/api/v1/state", tag = "state",
    responses((status = 200, description = "Service state", body = StateResponse)))]
pub(crate) async fn state(Current(node): Current) -> Json<StateResponse> {
    Json(node.state())
}

/// Prometheus text of this node (G-METRICS schema v1 families + the simulator's own).
#[utoipa::path(get, path = "/api/v1/metrics", tag = "state",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8")))]
pub(crate) async fn metrics(SimState(sim): SimState) -> Response {
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

#[utoipa::path(get, path = "/api/v1/versions", tag = "state",
    responses((status = 200, description = "Versions (the first healthy replica's, cached)", body = VersionsResponse)))]
pub(crate) async fn versions(Current(node): Current) -> Json<VersionsResponse> {
    Json(node.versions())
}

#[utoipa::path(post, path = "/api/v1/stop", tag = "state",
    responses((status = 200, description = "Everything stopped", body = StatusMessage)))]
pub(crate) async fn stop(Current(node): Current) -> Json<StatusMessage> {
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
#[utoipa::path(get, path = "/api/v1/clock", tag = "state",
    responses((status = 204, description = "Empty; X-Server-Recv-Ns / X-Server-Send-Ns headers (unix ns)")))]
pub(crate) async fn clock() -> Response {
    let mut h = HeaderMap::new();
    h.insert("X-Server-Recv-Ns", unix_ns());
    h.insert("X-Server-Send-Ns", unix_ns());
    (StatusCode::NO_CONTENT, h).into_response()
}

#[utoipa::path(get, path = "/api/v1/gpu/devices", tag = "state",
    responses((status = 200, description = "GPU devices", body = GpuDevicesResponse)))]
pub(crate) async fn gpu_devices(Current(node): Current) -> Json<GpuDevicesResponse> {
    let devices = node.gpu_devices();
    Json(GpuDevicesResponse {
        count: devices.len(),
        devices,
    })
}

#[utoipa::path(get, path = "/api/v1/gpu/driver", tag = "state",
    responses((status = 200, description = "Driver versions", body = GpuDriverResponse)))]
pub(crate) async fn gpu_driver() -> Json<GpuDriverResponse> {
    Json(GpuDriverResponse {
        driver_version: "550.54.15".into(),
        cuda_driver_version: "12.4".into(),
        nvml_version: "12.550.54.15".into(),
    })
}

/// Legacy PoC v1 status on the MLNode port (mlnode-api §4.7).
#[utoipa::path(get, path = "/api/v1/pow/status", tag = "state",
    responses((status = 200, description = "Legacy PoC v1 status (always idle)", body = Object)))]
pub(crate) async fn legacy_pow_status() -> Json<serde_json::Value> {
    Json(json!({"status": "IDLE", "is_model_initialized": false}))
}
