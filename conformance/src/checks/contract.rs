//! Schema and status-code conformance of the read-only endpoints, and the error contract.

use mlnode_protocol::paths;
use mlnode_protocol::wire::*;
use mlnode_validator::client::Client;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::request;
use crate::outcome::CheckResult;
use crate::target::Target;

async fn get_as<T: DeserializeOwned>(
    t: &Target,
    name: &str,
    path: &str,
    ok: &[u16],
) -> CheckResult {
    match t.client.get_raw(path, 30.0).await {
        Err(e) => CheckResult::fail(name, e.to_string()),
        Ok(a) => {
            let code = a.status;
            match Client::expect::<T>("GET", path, a, ok) {
                Ok(_) => CheckResult::pass(name, format!("GET {path} → {code}, body parses")),
                Err(e) => CheckResult::fail(name, e.to_string()),
            }
        }
    }
}

/// A read-only endpoint's answer against the OpenAPI document, field by field.
async fn against_doc(t: &Target, doc: &Value, name: &str, path: &str) -> CheckResult {
    let name = format!("openapi/{name}");
    let a = match t.client.get_raw(path, 30.0).await {
        Err(e) => return CheckResult::fail(&name, e.to_string()),
        Ok(a) => a,
    };
    let Some(schema) = crate::contract_doc::response_schema(doc, "GET", path, a.status) else {
        return CheckResult::fail(
            &name,
            format!(
                "GET {path} → {}: a status the document does not list",
                a.status
            ),
        );
    };
    let d = crate::contract_doc::check(doc, schema, &a.body);
    let extra = if d.unknown.is_empty() {
        String::new()
    } else {
        format!(
            "; fields not in the document (tolerated): {}",
            d.unknown.join(", ")
        )
    };
    if d.errors.is_empty() {
        CheckResult::pass(
            &name,
            format!("GET {path} → {} matches the document{extra}", a.status),
        )
    } else {
        CheckResult::fail(
            &name,
            format!("GET {path} → {}: {}{extra}", a.status, d.errors.join("; ")),
        )
    }
}

/// Every read-only endpoint answers with its documented status and body shape: as the
/// protocol types parse it (`schema/*`) and against the OpenAPI document the simulator
/// serves (`openapi/*`).
pub async fn schema(t: &Target) -> Vec<CheckResult> {
    let mut out = vec![
        get_as::<StateResponse>(t, "schema/state", paths::STATE, &[200]).await,
        get_as::<VersionsResponse>(t, "schema/versions", paths::VERSIONS, &[200]).await,
        get_as::<HealthResponse>(t, "schema/health", "/health", &[200, 503]).await,
        get_as::<StartupStatus>(t, "schema/up-status", paths::UP_STATUS, &[200]).await,
        get_as::<PowStatusResponse>(t, "schema/pow-status", paths::POW_STATUS, &[200]).await,
    ];
    let repo = t
        .model
        .clone()
        .unwrap_or_else(|| "conformance/probe".into());
    let path = paths::MODELS_STATUS;
    out.push(
        match t.client.post_raw(path, &Model::latest(repo), 30.0).await {
            Err(e) => CheckResult::fail("schema/models-status", e.to_string()),
            Ok(a) => match Client::expect::<ModelStatusResponse>("POST", path, a, &[200]) {
                Ok(s) => CheckResult::pass(
                    "schema/models-status",
                    format!("POST {path} → 200, status {:?}", s.status),
                ),
                Err(e) => CheckResult::fail("schema/models-status", e.to_string()),
            },
        },
    );
    let doc = crate::contract_doc::document();
    for (name, path) in [
        ("state", paths::STATE),
        ("versions", paths::VERSIONS),
        ("health", paths::HEALTH),
        ("readyz", paths::READYZ),
        ("up-status", paths::UP_STATUS),
        ("pow-status", paths::POW_STATUS),
        ("models-list", paths::MODELS_LIST),
        ("models-space", paths::MODELS_SPACE),
        ("gpu-devices", paths::GPU_DEVICES),
        ("gpu-driver", paths::GPU_DRIVER),
    ] {
        out.push(against_doc(t, &doc, name, path).await);
    }
    out
}

fn detail(v: &Value) -> String {
    mlnode_validator::client::detail_of(v)
}

/// 422 for an unknown key in `params`, 400 for a nonce-set mismatch, 409 with the nested
/// detail for a params mismatch. All three are rejected before any compute.
pub async fn errors(t: &Target, model: &str) -> Vec<CheckResult> {
    let path = paths::POW_GENERATE;
    let base = serde_json::to_value(request(t, model)).unwrap_or(Value::Null);
    let mut out = Vec::new();

    let mut body = base.clone();
    body["params"]["conformance_unknown_key"] = json!(1);
    out.push(match t.client.post_raw(path, &body, 30.0).await {
        Ok(a) => CheckResult::expect(
            "errors/unknown-param-422",
            a.status == 422,
            format!("unknown key in params → HTTP {} {}", a.status, a.body),
        ),
        Err(e) => CheckResult::fail("errors/unknown-param-422", e.to_string()),
    });

    let mut body = base.clone();
    body["validation"] = json!({"artifacts": [{"nonce": 0, "vector_b64": "AAAA"}]});
    out.push(match t.client.post_raw(path, &body, 30.0).await {
        Ok(a) => CheckResult::expect(
            "errors/nonce-set-400",
            a.status == 400,
            format!(
                "1 artifact for 32 nonces → HTTP {}: {}",
                a.status,
                detail(&a.body)
            ),
        ),
        Err(e) => CheckResult::fail("errors/nonce-set-400", e.to_string()),
    });

    let mut body = base;
    body["params"]["model"] = json!("conformance/not-served-model");
    out.push(match t.client.post_raw(path, &body, 30.0).await {
        Ok(a) => {
            // The MLNode embeds the replica's JSON as a string; accept an object too.
            let d = detail(&a.body);
            let nested: Value = serde_json::from_str(&d).unwrap_or(a.body["detail"].clone());
            let inner = nested.get("detail").unwrap_or(&nested);
            let ok = a.status == 409
                && inner["error"] == "params mismatch"
                && inner.get("requested").is_some();
            CheckResult::expect(
                "errors/params-mismatch-409",
                ok,
                format!("unserved model → HTTP {}: {d}", a.status),
            )
        }
        Err(e) => CheckResult::fail("errors/params-mismatch-409", e.to_string()),
    });
    out
}
