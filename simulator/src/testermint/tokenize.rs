//! `/tokenize` (plain, or under one segment): cl100k_base for every model, as the
//! incumbent; `count` is what the network node reads. The tokenizer (≈ 2 MB of ranks)
//! is loaded on the first call, so a mock that is never asked pays nothing.

use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::Mock;

pub(super) fn routes() -> Router<Arc<Mock>> {
    Router::new().route("/tokenize", post(tokenize))
}

#[derive(Deserialize)]
struct Body {
    model: String,
    prompt: String,
}

/// The incumbent's `max_model_len` table (4096 for any other model).
pub fn max_model_len(model: &str) -> u32 {
    match model {
        "Qwen/Qwen2.5-7B-Instruct" => 32768,
        "gpt-3.5-turbo" => 4096,
        "gpt-4" => 8192,
        "gpt-4-turbo" => 128_000,
        "claude-3-opus" | "claude-3-sonnet" | "claude-3-haiku" => 200_000,
        _ => 4096,
    }
}

fn bpe() -> Option<&'static tiktoken_rs::CoreBPE> {
    static BPE: OnceLock<Option<tiktoken_rs::CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
}

fn invalid() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "Invalid request format or processing error"})),
    )
        .into_response()
}

/// Tokens of `prompt` (a blank prompt: none).
pub fn tokens(prompt: &str) -> Option<Vec<u32>> {
    if prompt.trim().is_empty() {
        return Some(Vec::new());
    }
    Some(bpe()?.encode_with_special_tokens(prompt))
}

async fn tokenize(body: axum::body::Bytes) -> Response {
    let Ok(b) = serde_json::from_slice::<Body>(&body) else {
        return invalid();
    };
    // Encoding a long prompt is CPU work: off the async workers.
    let prompt = b.prompt;
    let Ok(Some(tokens)) = tokio::task::spawn_blocking(move || tokens(&prompt)).await else {
        return invalid();
    };
    Json(json!({"count": tokens.len(), "max_model_len": max_model_len(&b.model), "tokens": tokens}))
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cl100k_counts() {
        assert_eq!(super::tokens("hello world").unwrap().len(), 2);
        assert!(super::tokens("   ").unwrap().is_empty());
        assert_eq!(super::max_model_len("Qwen/Qwen2.5-7B-Instruct"), 32768);
        assert_eq!(super::max_model_len("other"), 4096);
    }
}
