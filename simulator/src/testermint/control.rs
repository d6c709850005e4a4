//! The control API of the testermint mode (network-node §4.6), unprefixed only: the
//! incumbent's setters with their snake_case fields, defaults and answers, and what it
//! lacks — the request journal per Host and path, the verdicts each Host sent, fraud
//! profiles and faults per Host.
//!
//! Bodies are JSON whatever the content type; one that does not bind (not JSON, a
//! missing required field, a wrong type, an unknown key) is the incumbent's 400
//! `{"status": "error", "message": "Failed to set …: <cause>"}`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::chat::ChatConfig;
use super::poc::DEFAULT_SCENARIO;
use super::{Fraud, HostFault, Mock};
use crate::deviation::MismatchRule;

pub(super) fn routes() -> Router<Arc<Mock>> {
    Router::new()
        .route("/api/v1/responses/reset", post(reset))
        .route(
            "/api/v1/responses/inference",
            post(set_inference).get(|| stub("Inference responses retrieved successfully")),
        )
        .route("/api/v1/responses/inference/error", post(set_error))
        .route(
            "/api/v1/responses/poc",
            post(set_poc).get(|| stub("POC responses retrieved successfully")),
        )
        .route("/api/v1/responses/poc/nonce", post(set_nonce))
        .route(
            "/api/v1/responses/last-inference-request",
            get(last_request),
        )
        .route("/api/v1/responses/requests", get(requests))
        .route("/api/v1/responses/poc/validations", get(validations))
        .route("/api/v1/responses/poc/fraud", post(set_fraud))
        .route("/api/v1/responses/fault", post(set_fault))
}

async fn stub(message: &'static str) -> Response {
    Json(json!({"status": "success", "message": message})).into_response()
}

/// The incumbent's 400 for a setter: `{"status": "error", "message": "Failed to set
/// <what>: <cause>"}`.
fn failed(what: &str, cause: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "error", "message": format!("Failed to set {what}: {cause}")})),
    )
        .into_response()
}

/// The body of a control request, or its 400 (`what` names the setter).
async fn bind<T: DeserializeOwned>(req: Request, what: &str) -> Result<T, Response> {
    let fail = |e: String| failed(what, e);
    let body = axum::body::to_bytes(req.into_body(), 16 << 20)
        .await
        .map_err(|e| fail(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))
}

fn ok(v: Value) -> Response {
    Json(v).into_response()
}

/// Clears chat configs, PoC weights, the last request, fraud profiles and faults. Like
/// the incumbent's, it leaves node states and the nonce counter alone. Answers 200 (the
/// incumbent writes no answer; its client only logs a non-200).
async fn reset(State(mock): State<Arc<Mock>>) -> Response {
    mock.chat.lock().unwrap_or_else(|e| e.into_inner()).clear();
    mock.weights
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    *mock.last_request.lock().unwrap_or_else(|e| e.into_inner()) = None;
    for h in mock
        .hosts
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
    {
        let mut g = h.lock().unwrap_or_else(|e| e.into_inner());
        g.fraud = None;
        g.faults.clear();
    }
    ok(json!({"status": "success", "message": "Mock responses reset"}))
}

/// `"/" + segment.trim('/') + "/v1/chat/completions"`, or the plain path.
fn endpoint(segment: &str) -> String {
    let s = segment.trim_matches('/');
    if s.is_empty() {
        "/v1/chat/completions".into()
    } else {
        format!("/{s}/v1/chat/completions")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InferenceBody {
    response: String,
    #[serde(default)]
    delay: u64,
    #[serde(default)]
    stream_delay: u64,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    host_name: Option<String>,
}

async fn set_inference(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    let b: InferenceBody = match bind(req, "inference response").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let e = endpoint(&b.segment);
    mock.chat.lock().unwrap_or_else(|e| e.into_inner()).insert(
        (e.clone(), b.model, b.host_name),
        ChatConfig::Success {
            body: b.response,
            delay_ms: b.delay,
            stream_delay_ms: b.stream_delay,
        },
    );
    ok(
        json!({"status": "success", "message": "Inference response set successfully", "endpoint": e}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorBody {
    status_code: u16,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    delay: u64,
    /// Stored by the incumbent, never used.
    #[serde(default)]
    #[allow(dead_code)]
    stream_delay: u64,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    host_name: Option<String>,
}

async fn set_error(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    let b: ErrorBody = match bind(req, "inference error response").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let e = endpoint(&b.segment);
    mock.chat.lock().unwrap_or_else(|e| e.into_inner()).insert(
        (e.clone(), None, b.host_name),
        ChatConfig::Error {
            status: b.status_code,
            message: b.error_message,
            kind: b.error_type,
            delay_ms: b.delay,
        },
    );
    ok(
        json!({"status": "success", "message": "Inference error response set successfully",
        "endpoint": e, "statusCode": b.status_code}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PocBody {
    weight: i64,
    #[serde(default)]
    host_name: Option<String>,
    #[serde(default = "default_scenario")]
    scenario_name: String,
}

fn default_scenario() -> String {
    DEFAULT_SCENARIO.into()
}

async fn set_poc(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    let b: PocBody = match bind(req, "POC response").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    mock.weights
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((b.host_name, b.scenario_name.clone()), b.weight);
    ok(
        json!({"status": "success", "message": "POC response set successfully",
        "weight": b.weight, "scenarioName": b.scenario_name}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NonceBody {
    nonce: i64,
}

async fn set_nonce(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    let b: NonceBody = match bind(req, "PoC nonce counter").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    mock.nonce.store(b.nonce, Ordering::SeqCst);
    ok(
        json!({"status": "success", "message": format!("PoC nonce counter set to {}", b.nonce),
        "nonce": b.nonce}),
    )
}

async fn last_request(State(mock): State<Arc<Mock>>) -> Response {
    match mock
        .last_request
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        Some(r) => ok(json!({"status": "success",
            "message": "Last inference request retrieved successfully", "request": r})),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"status": "error", "message": "No inference request has been made yet"})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct RequestsQuery {
    host_name: Option<String>,
    /// A path prefix as sent (`/v3.0.8/` asks for every versioned request).
    path: Option<String>,
}

/// The journal: what each Host was asked, with the version segment it came with.
async fn requests(State(mock): State<Arc<Mock>>, Query(q): Query<RequestsQuery>) -> Response {
    let r = mock.requests(q.host_name.as_deref(), q.path.as_deref());
    ok(json!({"status": "success", "count": r.len(), "requests": r}))
}

#[derive(Deserialize)]
struct HostQuery {
    host_name: String,
}

/// The verdicts a Host sent to `{url}/validated` (newest last).
async fn validations(State(mock): State<Arc<Mock>>, Query(q): Query<HostQuery>) -> Response {
    let v: Vec<Value> = mock
        .existing(&q.host_name)
        .map(|h| {
            h.lock()
                .unwrap_or_else(|e| e.into_inner())
                .validations
                .iter()
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    ok(json!({"status": "success", "host_name": q.host_name, "validations": v}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FraudBody {
    host_name: String,
    /// A shipped scenario with mismatch rules (`fraud-int4`, `fraud-forged`, …);
    /// `null` (and no `mismatch`) makes the host honest again.
    #[serde(default)]
    profile: Option<String>,
    /// Explicit rules instead of a profile (the scenario format's `[[faults.mismatch]]`).
    #[serde(default)]
    mismatch: Option<Vec<MismatchRule>>,
}

/// Make a Host's generated vectors fraudulent (or honest again).
async fn set_fraud(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    let b: FraudBody = match bind(req, "fraud profile").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let fail = |m: String| failed("fraud profile", m);
    let fraud = match (b.profile, b.mismatch) {
        (Some(_), Some(_)) => return fail("give profile or mismatch, not both".into()),
        (None, None) => None,
        (None, Some(rules)) => Some(Fraud {
            profile: "custom".into(),
            rules,
        }),
        (Some(name), None) => match crate::fixtures::shipped_scenario(&name) {
            Ok(s) if !s.node.faults.mismatch.is_empty() => Some(Fraud {
                profile: name,
                rules: s.node.faults.mismatch,
            }),
            Ok(_) => {
                return fail(format!(
                    "scenario '{name}' has no mismatch rules (try fraud-int4 or fraud-forged)"
                ))
            }
            Err(e) => return fail(e.to_string()),
        },
    };
    if let Some(f) = &fraud {
        for (i, r) in f.rules.iter().enumerate() {
            if let Err(e) = r.check() {
                return fail(format!("mismatch[{i}]: {e}"));
            }
        }
    }
    let profile = fraud.as_ref().map(|f| f.profile.clone());
    let h = match mock.host(&b.host_name) {
        Ok(h) => h,
        Err(e) => return fail(e.to_string()),
    };
    h.lock().unwrap_or_else(|e| e.into_inner()).fraud = fraud;
    ok(
        json!({"status": "success", "message": "Fraud profile set successfully",
        "host_name": b.host_name, "profile": profile}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    host_name: String,
    path: String,
    status: u16,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    times: Option<u64>,
}

/// Answer `status` (and `body`) for a Host's requests to a path, `times` times or always.
async fn set_fault(State(mock): State<Arc<Mock>>, req: Request) -> Response {
    let b: FaultBody = match bind(req, "fault").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let fault = HostFault {
        path: b.path,
        status: b.status,
        body: b.body,
        times: b.times.filter(|&t| t > 0),
    };
    if StatusCode::from_u16(fault.status).is_err() || fault.status < 200 {
        return failed(
            "fault",
            format!("status {} is not an HTTP status (200-599)", fault.status),
        );
    }
    let h = match mock.host(&b.host_name) {
        Ok(h) => h,
        Err(e) => return failed("fault", e),
    };
    h.lock()
        .unwrap_or_else(|e| e.into_inner())
        .faults
        .push(fault.clone());
    ok(
        json!({"status": "success", "message": "Fault set successfully",
        "host_name": b.host_name, "fault": fault}),
    )
}
