//! The inference data plane on the MLNode port (mlnode-api §4.5): enough for DAPI's
//! `/v1/models` check and for chat gating while mining.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::extract::Json;
use crate::sim::Current;

pub fn routes() -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(completion))
        .route("/v1/completions", post(text_completion))
}

fn no_backend() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "No vLLM backend available").into_response()
}

#[utoipa::path(get, path = "/v1/models", tag = "openai",
    responses((status = 200, description = "The served model (OpenAI list)", body = Object),
        (status = 503, description = "No vLLM backend available (plain text)", body = String, content_type = "text/plain")))]
pub(crate) async fn models(Current(node): Current) -> Response {
    match node.inference_target() {
        None => no_backend(),
        Some((model, _)) => Json(json!({
            "object": "list",
            "data": [{"id": model, "object": "model", "owned_by": "vllm", "root": model}]
        }))
        .into_response(),
    }
}

/// 503 with the plugin's gating body while mining; a canned completion otherwise.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", request_body(content = Object, description = "An OpenAI chat request"),
    responses((status = 200, description = "A canned completion", body = Object),
        (status = 422, description = "Not a JSON object (when not mining)", body = mlnode_protocol::wire::ErrorBody),
        (status = 503, description = "Mining: `poc_generation_active` (Retry-After: 1); no backend: plain text", body = Object)))]
pub(crate) async fn completion(Current(node): Current, req: axum::extract::Request) -> Response {
    let target = node.inference_target();
    // The gate answers before the body is read (a mining replica never sees it).
    let body = match target {
        Some((_, false)) => match super::extract::body(req).await {
            Ok(b) => b,
            Err(e) => return e.into_response(),
        },
        _ => axum::body::Bytes::new(),
    };
    match target {
        None => no_backend(),
        Some((_, true)) => {
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "poc_generation_active", "reason": "init-generate", "retry_after_ms": 1000})),
            )
                .into_response();
            r.headers_mut()
                .insert("Retry-After", HeaderValue::from_static("1"));
            r
        }
        // Not mining: vLLM parses the request (the gate answers before it, above).
        Some((_, false))
            if super::extract::parse::<serde_json::Map<String, serde_json::Value>>(&body)
                .is_err() =>
        {
            crate::error::ApiError::unprocessable(
                "The request body must be a JSON object (an OpenAI request)",
            )
            .into_response()
        }
        Some((model, false)) => Json(canned_chat(&model)).into_response(),
    }
}

/// The completion a replica answers (the encrypted endpoint seals the same one).
pub(crate) fn canned_chat(model: &str) -> serde_json::Value {
    json!({
        "id": "cmpl-sim", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "(simulated completion)"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    })
}

#[utoipa::path(post, path = "/v1/completions", tag = "openai", request_body(content = Object, description = "An OpenAI completion request"),
    responses((status = 200, description = "A canned completion", body = Object),
        (status = 422, description = "Not a JSON object (when not mining)", body = mlnode_protocol::wire::ErrorBody),
        (status = 503, description = "Mining: `poc_generation_active` (Retry-After: 1); no backend: plain text", body = Object)))]
pub(crate) async fn text_completion(node: Current, req: axum::extract::Request) -> Response {
    completion(node, req).await
}
