//! A JSON body extractor that behaves like FastAPI/pydantic.
//!
//! - The body is parsed as JSON whatever the `Content-Type` (DAPI historically sent none;
//!   the newest MLNode injects `application/json`).
//! - Schema errors are `422 {"detail": [{"type", "loc", "msg", "input"}]}` with `loc`
//!   starting at `"body"`, e.g. an unknown key inside `params` is
//!   `{"type": "extra_forbidden", "loc": ["body", "params", "scheme"], ...}`.
//! - A body over the limit is `413 {"detail": ...}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::ApiError;

/// An axum parts extractor whose rejection is FastAPI's JSON `{"detail": ...}` 422
/// (axum's own is plain text), e.g. for a path segment that is not valid UTF-8 or not a
/// number, or a malformed query string.
macro_rules! json_rejecting {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $what:literal) => {
        $(#[$doc])*
        pub struct $name<T>(pub T);

        impl<S, T> axum::extract::FromRequestParts<S> for $name<T>
        where
            S: Send + Sync,
            T: DeserializeOwned + Send,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                axum::extract::$inner::<T>::from_request_parts(parts, state)
                    .await
                    .map(|x| $name(x.0))
                    .map_err(|e| ApiError::unprocessable(format!(concat!($what, ": {}"), e.body_text())))
            }
        }
    };
}

json_rejecting!(
    /// `Path<T>` with a JSON rejection.
    PathParam,
    Path,
    "invalid path parameter"
);
json_rejecting!(
    /// `Query<T>` with a JSON rejection.
    QueryParam,
    Query,
    "invalid query string"
);

/// `Json<T>` for request bodies, with FastAPI's error shapes.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = body(req).await?;
        parse(&bytes).map(Json)
    }
}

/// The body limit when no node is attached to the request.
const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The request body, up to the attached node's `body_limit_bytes` (413 past it, as the
/// node's proxy answers; the router itself has no limit, one router serving every node).
pub async fn body(req: Request) -> Result<Bytes, ApiError> {
    let limit = crate::sim::Attached::of(req.extensions())
        .and_then(|a| a.sim.as_ref())
        .map_or(DEFAULT_BODY_LIMIT, |s| s.node().cfg.body_limit_bytes);
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("Cannot read request body: {inner}"),
                )
            }
        })
}

/// Responses: serialized into a `Vec` with a remembered size hint, then sent as one
/// buffer. (`axum::Json` writes through a `BytesMut` that starts at 128 bytes and
/// regrows; on `/pow/status` that was the largest cost per request.)
impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static HINT: AtomicUsize = AtomicUsize::new(512);
        let mut buf = Vec::with_capacity(HINT.load(Ordering::Relaxed));
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => {
                HINT.store(buf.len().clamp(256, 1 << 16), Ordering::Relaxed);
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/json"),
                    )],
                    buf,
                )
                    .into_response()
            }
            Err(e) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot serialize response: {e}"),
            )
            .into_response(),
        }
    }
}

fn item(kind: &str, loc: Vec<Value>, msg: &str, input: Value) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg, "input": input})
}

/// Parse a body the way the node does, or produce its 422. The happy path is one serde
/// pass over the bytes; only a failing body is re-read as a `Value` to build pydantic's
/// `loc`/`input` details.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(t) => Ok(t),
        Err(_) => Err(explain::<T>(bytes)),
    }
}

fn explain<T: DeserializeOwned>(bytes: &[u8]) -> ApiError {
    match parse_slow::<T>(bytes) {
        Err(e) => e,
        // Parses through a Value but not directly (e.g. integer-valued floats): say so.
        Ok(_) => ApiError::unprocessable(json!([item(
            "value_error",
            vec![json!("body")],
            "Invalid request body",
            Value::Null
        )])),
    }
}

fn parse_slow<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unprocessable(json!([item(
            "missing",
            vec![json!("body")],
            "Field required",
            Value::Null
        )])));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::unprocessable(json!([{
            "type": "json_invalid",
            "loc": ["body", e.column()],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": e.to_string()}
        }]))
    })?;
    if !value.is_object() {
        return Err(ApiError::unprocessable(json!([item(
            "model_attributes_type",
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            value
        )])));
    }
    serde_path_to_error::deserialize::<_, T>(&value).map_err(|e| {
        let mut loc: Vec<Value> = vec![json!("body")];
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => loc.push(json!(index)),
                serde_path_to_error::Segment::Map { key } => loc.push(json!(key)),
                serde_path_to_error::Segment::Enum { variant } => loc.push(json!(variant)),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let msg = e.inner().to_string();
        let input = lookup(&value, &loc[1..]).cloned().unwrap_or(Value::Null);
        let (kind, text) = classify(&msg, &mut loc);
        let input = if kind == "missing" || kind == "extra_forbidden" {
            lookup(&value, &loc[1..]).cloned().unwrap_or(input)
        } else {
            input
        };
        ApiError::unprocessable(json!([item(kind, loc, &text, input)]))
    })
}

fn lookup<'a>(v: &'a Value, path: &[Value]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Value::String(k) => cur.get(k.as_str()),
        Value::Number(n) => cur.get(n.as_u64()? as usize),
        _ => None,
    })
}

fn field_name(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_string())
}

/// Map a serde message onto pydantic's error type and message.
fn classify(msg: &str, loc: &mut Vec<Value>) -> (&'static str, String) {
    let push_field = |loc: &mut Vec<Value>| {
        if let Some(f) = field_name(msg) {
            if loc.last() != Some(&json!(f)) {
                loc.push(json!(f));
            }
        }
    };
    if msg.starts_with("missing field") {
        push_field(loc);
        return ("missing", "Field required".into());
    }
    if msg.starts_with("unknown field") {
        push_field(loc);
        return ("extra_forbidden", "Extra inputs are not permitted".into());
    }
    let expected = msg.split("expected ").nth(1).unwrap_or("");
    let (kind, text) = if ["u8", "u16", "u32", "u64", "i32", "i64", "usize", "integer"]
        .iter()
        .any(|t| expected.contains(t))
    {
        (
            "int_parsing",
            "Input should be a valid integer (in range for this field)",
        )
    } else if expected.contains("f64") || expected.contains("f32") || expected.contains("number") {
        ("float_parsing", "Input should be a valid number")
    } else if expected.contains("a string") {
        ("string_type", "Input should be a valid string")
    } else if expected.contains("a boolean") {
        ("bool_type", "Input should be a valid boolean")
    } else if expected.contains("sequence") {
        ("list_type", "Input should be a valid list")
    } else if expected.contains("struct") || expected.contains("map") {
        (
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )
    } else {
        ("value_error", "")
    };
    if text.is_empty() {
        (kind, msg.to_string())
    } else {
        (kind, text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlnode_protocol::wire::InitGenerateRequest;

    fn err(body: &str) -> Value {
        parse::<InitGenerateRequest>(body.as_bytes())
            .unwrap_err()
            .detail
    }

    #[test]
    fn pydantic_shapes() {
        let d = err("");
        assert_eq!(d[0]["type"], "missing");
        assert_eq!(d[0]["loc"], json!(["body"]));
        let d = err("{not json");
        assert_eq!(d[0]["type"], "json_invalid");
        let d = err("[1,2]");
        assert_eq!(d[0]["type"], "model_attributes_type");
        let d = err(
            r#"{"block_hash":"h","block_height":1,"public_key":"p","node_id":0,"node_count":1,"params":{"model":"m","seq_len":8,"scheme":"decode"}}"#,
        );
        assert_eq!(d[0]["type"], "extra_forbidden");
        assert_eq!(d[0]["loc"], json!(["body", "params", "scheme"]));
        assert_eq!(d[0]["input"], "decode");
        let d = err(
            r#"{"block_height":1,"public_key":"p","node_id":0,"node_count":1,"params":{"model":"m","seq_len":8}}"#,
        );
        assert_eq!(d[0]["type"], "missing");
        assert_eq!(d[0]["loc"], json!(["body", "block_hash"]));
        let d = err(
            r#"{"block_hash":"h","block_height":"x","public_key":"p","node_id":0,"node_count":1,"params":{"model":"m","seq_len":8}}"#,
        );
        assert_eq!(d[0]["type"], "int_parsing");
        assert_eq!(d[0]["loc"], json!(["body", "block_height"]));
        assert_eq!(d[0]["input"], "x");
        let d = err(
            r#"{"block_hash":"h","block_height":1,"public_key":"p","node_id":0,"node_count":1,"batch_size":-4,"params":{"model":"m","seq_len":8}}"#,
        );
        assert_eq!(d[0]["loc"], json!(["body", "batch_size"]));
    }
}
