//! The FastAPI error envelope as an axum response: every failure is `{"detail": ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An HTTP error with a FastAPI-style body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<Value>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    /// The MLNode's error pass-through: a replica's non-200 becomes the same status with
    /// `detail` = the replica's whole JSON body *as a string* (mlnode-api §4.3.4).
    pub fn passthrough(status: StatusCode, replica_detail: Value) -> Self {
        ApiError::new(status, json!({ "detail": replica_detail }).to_string())
    }

    pub fn unprocessable(detail: impl Into<Value>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// A pydantic-style single-item 422.
    pub fn value_error(loc: &[&str], msg: impl Into<String>, input: Value) -> Self {
        let loc: Vec<Value> = loc.iter().map(|s| Value::from(*s)).collect();
        ApiError::unprocessable(json!([{
            "type": "value_error", "loc": loc, "msg": msg.into(), "input": input
        }]))
    }

    pub fn no_backends() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "No vLLM backends available",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "detail": self.detail }))).into_response()
    }
}

impl ApiError {
    /// The detail as text (a string detail as is, anything else as JSON).
    pub fn detail_text(&self) -> String {
        match &self.detail {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}
