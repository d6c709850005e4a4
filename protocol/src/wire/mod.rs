//! Wire types for every MLNode request and response body (mlnode-api §4, §5).
//!
//! One module per endpoint group. Field names are the node's, exactly. Request types
//! reject what FastAPI/pydantic rejects (missing required fields, unknown keys inside
//! `params`) and ignore unknown top-level keys, as the node does.

pub mod callbacks;
pub mod error;
pub mod inference;
pub mod models;
pub mod node;
pub mod pow;

pub use callbacks::*;
pub use error::*;
pub use inference::*;
pub use models::*;
pub use node::*;
pub use pow::*;

/// `{"status": "OK"}` and friends: a status word with an optional message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusMessage {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl StatusMessage {
    pub fn ok() -> Self {
        StatusMessage {
            status: "OK".into(),
            message: None,
        }
    }
}
