//! The newest MLNode routes (network-node §3.1–3.3): the encrypted-inference identity,
//! HPKE-sealed chat completions, and text embeddings.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mlnode_protocol::paths;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::Json;
use crate::encrypted::{EncryptedRequest, EncryptedResponse, EnvelopeError, IdentityResponse};
use crate::error::ApiError;
use crate::sim::Current;

pub fn routes() -> Router {
    Router::new()
        .route(paths::ENCRYPTED_IDENTITY, get(identity))
        .route(paths::ENCRYPTED_CHAT, post(chat))
        .route(paths::EMBED, post(embed))
}

const DISABLED: &str = "encrypted endpoint is not enabled on this node";

/// The node's X25519 identity, or 503 without a key provider (the default).
#[utoipa::path(get, path = "/api/v1/encrypted/identity", tag = "encrypted",
    responses((status = 200, description = "The node's encryption identity", body = IdentityResponse),
        (status = 503, description = "No key provider on this node", body = mlnode_protocol::wire::ErrorBody)))]
pub(crate) async fn identity(Current(node): Current) -> Response {
    match &node.encrypted {
        Some(id) => Json(id.describe()).into_response(),
        None => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, DISABLED).into_response(),
    }
}

/// Pydantic's field constraints of `EncryptedRequest` (after the types): 422 items.
fn constraints(req: &EncryptedRequest) -> Option<ApiError> {
    if req.version < 1 {
        return Some(ApiError::value_error(
            &["body", "version"],
            "Input should be greater than or equal to 1",
            Value::from(req.version),
        ));
    }
    if req.nonce < 0 {
        return Some(ApiError::value_error(
            &["body", "nonce"],
            "Input should be greater than or equal to 0",
            Value::from(req.nonce),
        ));
    }
    let id = &req.recipient_key_id;
    if id.chars().count() != 16 || !id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Some(ApiError::value_error(
            &["body", "recipient_key_id"],
            "String should be 16 lowercase hex characters (sha256(public_key)[:8])",
            Value::from(id.clone()),
        ));
    }
    None
}

/// Open an HPKE envelope, run the chat completion on a replica, seal the answer.
/// Statuses in the real check order: 503 disabled, 422 schema, 421 wrong recipient,
/// 400 corrupt / version / suite, 409 replay, 400 plaintext, 503 no backend, the
/// replica's own error status.
#[utoipa::path(post, path = "/api/v1/encrypted/chat/completions", tag = "encrypted",
    request_body = EncryptedRequest,
    responses((status = 200, description = "The sealed completion", body = EncryptedResponse),
        (status = 400, description = "Corrupt envelope, unsupported version/suite, or a bad plaintext", body = mlnode_protocol::wire::ErrorBody),
        (status = 409, description = "Nonce replay", body = mlnode_protocol::wire::ErrorBody),
        (status = 421, description = "Envelope for another node's key", body = mlnode_protocol::wire::ErrorBody),
        (status = 422, description = "Schema violation", body = Object),
        (status = 503, description = "Not enabled, or no vLLM backend", body = mlnode_protocol::wire::ErrorBody)))]
pub(crate) async fn chat(Current(node): Current, req: axum::extract::Request) -> Response {
    let Some(id) = &node.encrypted else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, DISABLED).into_response();
    };
    let env = match super::extract::body(req).await {
        Ok(b) => match super::extract::parse::<EncryptedRequest>(&b) {
            Ok(e) => e,
            Err(e) => return e.into_response(),
        },
        Err(e) => return e.into_response(),
    };
    if let Some(e) = constraints(&env) {
        return e.into_response();
    }
    let (plaintext, key) = match id.open(&env) {
        Ok(x) => x,
        Err(e) => {
            let status = match e {
                EnvelopeError::WrongRecipient { .. } => StatusCode::MISDIRECTED_REQUEST,
                EnvelopeError::Replay { .. } => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            return ApiError::new(status, e.to_string()).into_response();
        }
    };
    let body: Value = match serde_json::from_slice(&plaintext) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("plaintext is not valid JSON: {e}"),
            )
            .into_response()
        }
    };
    let Some(obj) = body.as_object() else {
        return ApiError::new(StatusCode::BAD_REQUEST, "plaintext must be a JSON object")
            .into_response();
    };
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "stream=true is not supported on the encrypted endpoint yet",
        )
        .into_response();
    }
    let answer = match node.inference_target() {
        None => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no vLLM backend available")
                .into_response()
        }
        // A mining replica's gate: vLLM's status, its body as the detail.
        Some((_, true)) => return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"poc_generation_active","reason":"init-generate","retry_after_ms":1000}"#,
        )
        .into_response(),
        Some((model, false)) => super::openai::canned_chat(&model),
    };
    let bytes = serde_json::to_vec(&answer).unwrap_or_default();
    Json(crate::encrypted::seal_response(
        &key,
        &env.session_id,
        env.nonce,
        &bytes,
    ))
    .into_response()
}

/// `POST /api/v1/embed` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct EmbedRequest {
    text: String,
}

/// `POST /api/v1/embed` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EmbedResponse {
    embedding: Vec<f32>,
    dimensions: usize,
    model: &'static str,
}

/// The real node's embedding model (fastembed, CPU).
pub const EMBED_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// Its dimension.
pub const EMBED_DIMENSIONS: usize = 384;

/// A deterministic unit vector per text (the same text, the same vector, in any node),
/// served in every state like the real route.
#[utoipa::path(post, path = "/api/v1/embed", tag = "encrypted",
    request_body = EmbedRequest,
    responses((status = 200, description = "A 384-dimension unit vector", body = EmbedResponse),
        (status = 400, description = "Empty text", body = mlnode_protocol::wire::ErrorBody),
        (status = 422, description = "Missing or non-string text", body = Object)))]
pub(crate) async fn embed(Json(req): Json<EmbedRequest>) -> Response {
    if req.text.is_empty() {
        return ApiError::new(StatusCode::BAD_REQUEST, "text must not be empty").into_response();
    }
    Json(EmbedResponse {
        embedding: embedding(&req.text),
        dimensions: EMBED_DIMENSIONS,
        model: EMBED_MODEL,
    })
    .into_response()
}

/// Gaussian draws seeded by SHA-256 of the text, normalised to length 1.
pub(crate) fn embedding(text: &str) -> Vec<f32> {
    use rand_distr::Distribution;
    use sha2::Digest;
    let seed: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    let v: Vec<f64> = (0..EMBED_DIMENSIONS)
        .map(|_| rand_distr::StandardNormal.sample(&mut rng))
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    v.iter().map(|x| (x / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = super::embedding("hello");
        assert_eq!(a.len(), 384);
        assert_eq!(a, super::embedding("hello"));
        assert_ne!(a, super::embedding("hello!"));
        let n: f64 = a.iter().map(|x| f64::from(*x) * f64::from(*x)).sum();
        assert!((n - 1.0).abs() < 1e-5, "{n}");
    }
}
