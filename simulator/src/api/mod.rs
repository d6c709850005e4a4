//! The HTTP surface: `fn app(node) -> Router`, one module per endpoint group.
//!
//! | module | routes |
//! |---|---|
//! | [`models`] | `/api/v1/models/{status,download,list,space}`, `DELETE /api/v1/models` |
//! | [`inference`] | `/api/v1/inference/{up,up/async,up/status,down}` |
//! | [`pow`] | `/api/v1/inference/pow/{init/generate,status,stop,generate,generate/{id}}` |
//! | [`node`] | `/health`, `/livez`, `/readyz`, `/api/v1/{state,versions,stop,clock,gpu/*}` |
//! | [`openai`] | `/v1/models`, `/v1/chat/completions`, `/v1/completions` (gated while mining) |
//! | [`extract`] | the FastAPI-style JSON extractor |

pub mod extract;
pub mod inference;
pub mod models;
pub mod node;
pub mod openai;
pub mod pow;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;

use crate::error::ApiError;
use crate::node::Node;

/// The whole MLNode API for one simulated node.
pub fn app(node: Arc<Node>) -> Router {
    let limit = node.cfg.body_limit_bytes;
    Router::new()
        .merge(models::routes())
        .merge(inference::routes())
        .merge(pow::routes())
        .merge(node::routes())
        .merge(openai::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(node)
}
