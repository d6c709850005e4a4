//! The node-facing routes of the incumbent mock (network-node §4.3), one state machine
//! per Host (the PoC routes that send webhooks are in `poc`). Each is also served under one version segment (`/v3.0.8/...`), which the
//! serving loop strips; `train/start`, `/status` and `/files/*` are plain only, as there.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{empty, host_of, Host, Mock, ModelState, PowState, TooManyHosts};

pub(super) fn routes() -> Router<Arc<Mock>> {
    Router::new()
        .route("/api/v1/state", get(state))
        .route("/health", get(health))
        .route("/api/v1/stop", post(stop))
        .route("/api/v1/inference/up", post(inference_up))
        .route("/api/v1/train/start", post(train_start))
        .route("/api/v1/inference/pow/status", get(pow_status))
        .route("/api/v1/inference/pow/stop", post(pow_stop))
        .route("/api/v1/pow/init/validate", post(v1_init_validate))
        .route("/api/v1/pow/status", get(v1_status))
        .route("/status", get(status))
        .route("/files/{*path}", get(files))
}

/// Whether the request came with a version segment (routes the incumbent registers
/// plain only answer 404 then).
pub(super) fn versioned(req: &Request) -> bool {
    req.extensions()
        .get::<crate::gateway::VersionPrefix>()
        .is_some()
}

/// Run `f` on the request's host, or answer the too-many-hosts error.
pub(super) fn with_host<T>(
    mock: &Mock,
    headers: &HeaderMap,
    f: impl FnOnce(&mut Host) -> T,
) -> Result<T, TooManyHosts> {
    let h = mock.host(&host_of(headers))?;
    let mut g = h.lock().unwrap_or_else(|e| e.into_inner());
    Ok(f(&mut g))
}

fn answer(r: Result<Response, TooManyHosts>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn state(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    answer(with_host(&mock, &headers, |h| {
        Json(json!({"state": h.model.name()})).into_response()
    }))
}

async fn health(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    answer(with_host(&mock, &headers, |h| {
        empty(if h.model == ModelState::Inference {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        })
    }))
}

async fn stop(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    answer(with_host(&mock, &headers, |h| {
        h.model = ModelState::Stopped;
        h.pow = PowState::Stopped;
        empty(StatusCode::OK)
    }))
}

async fn inference_up(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    answer(with_host(&mock, &headers, |h| {
        if h.model == ModelState::Stopped {
            h.model = ModelState::Inference;
            empty(StatusCode::OK)
        } else {
            bad("Invalid state for inference up")
        }
    }))
}

async fn train_start(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    if versioned(&req) {
        return empty(StatusCode::NOT_FOUND);
    }
    answer(with_host(&mock, req.headers(), |h| {
        if h.model == ModelState::Stopped {
            h.model = ModelState::Train;
            empty(StatusCode::OK)
        } else {
            bad("Invalid state for train start")
        }
    }))
}

/// The incumbent's 400: `{"error": text}`.
pub(super) fn bad(text: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": text}))).into_response()
}

async fn pow_status(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    answer(with_host(&mock, &headers, |h| {
        // VALIDATING reads as IDLE, as the incumbent's does.
        let s = if h.pow == PowState::Generating {
            "GENERATING"
        } else {
            "IDLE"
        };
        Json(json!({"status": s, "backends": [{"port": 5001, "status": s}]})).into_response()
    }))
}

async fn pow_stop(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    answer(with_host(&mock, &headers, |h| {
        h.model = ModelState::Stopped;
        h.pow = PowState::Stopped;
        Json(json!({"status": "OK", "results": [{"port": 5001, "status": "stopped"}], "errors": null}))
            .into_response()
    }))
}

/// The fixed text of the legacy v1 state errors.
pub(super) const V1_STATE_ERROR: &str =
    "Invalid state for validation. state = POW. powState = POW_GENERATING";

async fn v1_init_validate(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    answer(with_host(&mock, &headers, |h| {
        if h.model == ModelState::Pow && h.pow == PowState::Generating {
            h.pow = PowState::Validating;
            empty(StatusCode::OK)
        } else {
            bad(V1_STATE_ERROR)
        }
    }))
}

async fn v1_status(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    answer(with_host(&mock, &headers, |h| {
        Json(json!({"status": h.pow.name(), "is_model_initialized": false})).into_response()
    }))
}

async fn status(req: Request) -> Response {
    if versioned(&req) {
        return empty(StatusCode::NOT_FOUND);
    }
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Json(json!({"status": "ok", "version": "1.0.1", "timestamp": ms})).into_response()
}

/// `GET /files/<path>` from `--files-dir` (query ignored); no directory, a missing
/// file or a path that leaves the directory: 404.
async fn files(
    State(mock): State<Arc<Mock>>,
    axum::extract::Path(path): axum::extract::Path<String>,
    req: Request,
) -> Response {
    if versioned(&req) {
        return empty(StatusCode::NOT_FOUND);
    }
    let Some(dir) = &mock.opts.files_dir else {
        return empty(StatusCode::NOT_FOUND);
    };
    let rel = std::path::Path::new(&path);
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return empty(StatusCode::NOT_FOUND);
    }
    let full = dir.join(rel);
    match tokio::fs::metadata(&full).await {
        Ok(m) if m.is_file() => {}
        _ => return empty(StatusCode::NOT_FOUND),
    }
    match tokio::fs::File::open(&full).await {
        Ok(f) => {
            let ctype = content_type(&full);
            let body = axum::body::Body::from_stream(tokio_util_stream(f));
            ([(axum::http::header::CONTENT_TYPE, ctype)], body).into_response()
        }
        Err(_) => empty(StatusCode::NOT_FOUND),
    }
}

/// A file as a byte stream (64 KiB chunks): a large binary is never held in memory.
fn tokio_util_stream(
    f: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}

fn content_type(p: &std::path::Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "txt" => "text/plain",
        "js" => "text/javascript",
        "css" => "text/css",
        "gz" | "tgz" => "application/gzip",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}
