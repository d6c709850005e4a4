//! The FastAPI error envelope `{"detail": ...}`.

use serde::{Deserialize, Serialize};

/// Every non-2xx JSON body the node sends: `detail` is a string, an object or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub detail: serde_json::Value,
}

impl ErrorBody {
    pub fn text(detail: impl Into<String>) -> Self {
        ErrorBody {
            detail: serde_json::Value::String(detail.into()),
        }
    }

    /// The detail as text: the string itself, or the JSON of an object/list.
    pub fn detail_text(&self) -> String {
        match &self.detail {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// One entry of a 422 `detail` list, as pydantic v2 writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationErrorItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    pub input: serde_json::Value,
}
