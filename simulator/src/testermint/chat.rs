//! Chat completions in the testermint mode (network-node §4.4): served in any state;
//! the raw body recorded as the last request on arrival (before any delay); a config
//! looked up by (exact path, model, Host) → (path, –, Host) → (path, model, –) →
//! (path, –, –); success configs sent verbatim (SSE split on logprobs for streaming),
//! error configs as OpenAI error bodies, and the default response otherwise. Configs are
//! sticky: replaced only by a later set for the same key, or by reset.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{host_of, Mock};

pub(super) fn routes() -> Router<Arc<Mock>> {
    Router::new().route("/v1/chat/completions", post(completion))
}

/// What a key answers.
#[derive(Debug, Clone)]
pub(crate) enum ChatConfig {
    Success {
        body: String,
        delay_ms: u64,
        stream_delay_ms: u64,
    },
    Error {
        status: u16,
        message: Option<String>,
        kind: Option<String>,
        delay_ms: u64,
    },
}

/// The config for a request, by the four-step fallback.
fn lookup(mock: &Mock, path: &str, model: Option<&str>, host: &str) -> Option<ChatConfig> {
    let g = mock.chat.lock().unwrap_or_else(|e| e.into_inner());
    let key = |m: Option<&str>, h: Option<&str>| {
        (path.to_owned(), m.map(str::to_owned), h.map(str::to_owned))
    };
    [
        key(model, Some(host)),
        key(None, Some(host)),
        key(model, None),
        key(None, None),
    ]
    .iter()
    .find_map(|k| g.get(k).cloned())
}

/// The default message of an error status.
fn default_message(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn default_type(status: u16) -> &'static str {
    match status {
        400..=499 => "invalid_request_error",
        500..=599 => "server_error",
        _ => "error",
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The incumbent's default response.
fn default_response() -> Value {
    let ms = now_ms();
    json!({
        "choices": [{"message": {"content": "This is a default response from the mock server.", "role": "assistant"},
            "finish_reason": "stop", "index": 0}],
        "created": (ms / 1000) as u64, "id": format!("mock-{ms}"), "model": "mock-model",
        "object": "chat.completion",
        "usage": {"completion_tokens": 10, "prompt_tokens": 10, "total_tokens": 20}
    })
}

async fn completion(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    let host = host_of(req.headers());
    // The exact path the client used, version segment included: configs are keyed on it.
    let path = crate::gateway::path_as_sent(
        req.extensions()
            .get::<crate::gateway::VersionPrefix>()
            .map(|v| &*v.0),
        req.uri().path(),
    );
    let body = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let raw = String::from_utf8_lossy(&body).into_owned();
    *mock.last_request.lock().unwrap_or_else(|e| e.into_inner()) = Some(raw);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let model = parsed
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let streaming = parsed
        .as_ref()
        .and_then(|v| v.get("stream"))
        .and_then(Value::as_bool)
        == Some(true);
    match lookup(&mock, &path, model.as_deref(), &host) {
        Some(ChatConfig::Error {
            status,
            message,
            kind,
            delay_ms,
        }) => {
            mock.clock.sleep(delay_ms as f64 / 1000.0).await;
            let body = json!({"error": {
                "message": message.as_deref().unwrap_or(default_message(status)),
                "type": kind.as_deref().unwrap_or(default_type(status)),
                "code": status,
            }});
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, axum::Json(body)).into_response()
        }
        Some(ChatConfig::Success {
            body,
            delay_ms,
            stream_delay_ms,
        }) => {
            mock.clock.sleep(delay_ms as f64 / 1000.0).await;
            if streaming {
                sse(mock.clone(), &body, stream_delay_ms)
            } else {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    body,
                )
                    .into_response()
            }
        }
        None => {
            let v = default_response();
            if streaming {
                sse(mock.clone(), &v.to_string(), 0)
            } else {
                axum::Json(v).into_response()
            }
        }
    }
}

/// The fields the incumbent requires to stream a configured body.
#[derive(Deserialize)]
#[allow(dead_code)]
struct OpenAiResponse {
    id: Value,
    object: Value,
    created: Value,
    model: Value,
    choices: Vec<Choice>,
    usage: Usage,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Choice {
    index: Value,
    message: Message,
    #[serde(default)]
    finish_reason: Value,
    #[serde(default)]
    logprobs: Option<Logprobs>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Message {
    content: Value,
    role: Value,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Usage {
    completion_tokens: Value,
    prompt_tokens: Value,
    total_tokens: Value,
}

#[derive(Deserialize)]
struct Logprobs {
    #[serde(default)]
    content: Option<Vec<Value>>,
}

/// The SSE events of a configured body: one chunk per logprob entry of the first
/// choice (with `stream_delay` between them), or the whole response as one event; then
/// `[DONE]`. A body that is not an OpenAI response: an error event, then `[DONE]`.
fn events(body: &str) -> Vec<String> {
    let parsed: Result<(Value, OpenAiResponse), String> = serde_json::from_str::<Value>(body)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            serde_json::from_value::<OpenAiResponse>(v.clone())
                .map(|r| (v, r))
                .map_err(|e| e.to_string())
        });
    let mut out = Vec::new();
    match parsed {
        Err(e) => out.push(json!({"error": e}).to_string()),
        Ok((v, r)) => {
            let first = r.choices.first();
            let entries = first
                .and_then(|c| c.logprobs.as_ref())
                .and_then(|l| l.content.clone())
                .unwrap_or_default();
            if let (Some(choice), false) = (first, entries.is_empty()) {
                let last = entries.len() - 1;
                for (i, entry) in entries.iter().enumerate() {
                    let is_last = i == last;
                    out.push(
                        json!({
                            "id": v["id"], "object": "chat.completion.chunk",
                            "created": v["created"], "model": v["model"],
                            "choices": [{
                                "index": choice.index,
                                "delta": {"content": entry["token"]},
                                "logprobs": {"content": [entry]},
                                "finish_reason": if is_last { choice.finish_reason.clone() } else { Value::Null },
                            }],
                            "usage": if is_last { v["usage"].clone() } else { Value::Null },
                        })
                        .to_string(),
                    );
                }
            } else {
                out.push(v.to_string());
            }
        }
    }
    out.push("[DONE]".into());
    out
}

fn sse(mock: Arc<Mock>, body: &str, stream_delay_ms: u64) -> Response {
    let events = events(body);
    let stream = futures_util::stream::unfold((0usize, events), move |(i, events)| {
        let mock = mock.clone();
        async move {
            let e = events.get(i)?.clone();
            // No delay before the first event, nor before [DONE]'s own line.
            if i > 0 && i + 1 < events.len() {
                mock.clock.sleep(stream_delay_ms as f64 / 1000.0).await;
            }
            Some((
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(format!("data: {e}\n\n"))),
                (i + 1, events),
            ))
        }
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONNECTION, HeaderValue::from_static("keep-alive")),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_split_into_chunks_and_bad_bodies_are_error_events() {
        let body = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"content": "ab", "role": "assistant"}, "finish_reason": "stop",
                "logprobs": {"content": [{"token": "a", "logprob": -0.1, "bytes": [97], "top_logprobs": []},
                                         {"token": "b", "logprob": -0.2, "bytes": [98], "top_logprobs": []}]}}],
            "usage": {"completion_tokens": 2, "prompt_tokens": 1, "total_tokens": 3}});
        let ev = events(&body.to_string());
        assert_eq!(ev.len(), 3);
        let first: Value = serde_json::from_str(&ev[0]).unwrap();
        assert_eq!(first["choices"][0]["delta"]["content"], "a");
        assert_eq!(first["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(first["usage"], Value::Null);
        let last: Value = serde_json::from_str(&ev[1]).unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert_eq!(last["usage"]["total_tokens"], 3);
        assert_eq!(ev[2], "[DONE]");
        let ev = events("This is invalid json!!!");
        assert!(ev[0].starts_with("{\"error\":"), "{ev:?}");
        assert_eq!(ev[1], "[DONE]");
        // No logprobs: the whole response as one event.
        let mut plain = body.clone();
        plain["choices"][0]["logprobs"] = Value::Null;
        assert_eq!(events(&plain.to_string()).len(), 2);
    }
}
