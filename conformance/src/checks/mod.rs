//! The checks, one module per group:
//!
//! | module | checks |
//! |---|---|
//! | [`contract`] | `schema/*` (read-only endpoints parse as `protocol` types), `openapi/*` (the same answers against the simulator's OpenAPI document, field by field), `errors/*` (422, 400, 409) |
//! | [`vectors`] | `determinism`, `independence`, `self-consistency`, `reference` |
//! | [`honesty`] | `negative-control`, `stat-test` |
//! | [`partition`] | `partition` (disruptive: init/generate + stop) |
//! | [`network`] | `network/*`: the newest routes as the network node's client decodes them (encrypted identity, embed, the unmounted pow/versions) |

pub mod contract;
pub mod honesty;
pub mod network;
pub mod partition;
pub mod vectors;

use mlnode_protocol::paths;
use mlnode_protocol::wire::{
    Artifact, GenerateRequest, GenerateResponse, JobResult, StatTestOverrides, ValidationPayload,
    ValidationResult,
};

use crate::outcome::CheckResult;
use crate::target::{Target, N_NONCES, ROUND_BLOCK_HASH, ROUND_PUBLIC_KEY};

/// Seconds for one wait=true generate.
pub const GENERATE_TIMEOUT: f64 = 900.0;

/// A wait=true generate for the check round.
pub fn request(t: &Target, model: &str) -> GenerateRequest {
    GenerateRequest {
        block_hash: ROUND_BLOCK_HASH.into(),
        block_height: 100,
        public_key: ROUND_PUBLIC_KEY.into(),
        node_id: 0,
        node_count: 1,
        nonces: (0..N_NONCES).collect(),
        params: t.params(model),
        batch_size: Some(32),
        wait: true,
        url: None,
        validation: None,
        stat_test: None,
        poc_stronger_rng: false,
    }
}

/// Fetch artifacts (no validation).
pub async fn artifacts(t: &Target, req: &GenerateRequest) -> Result<Vec<Artifact>, String> {
    let r: GenerateResponse = t
        .client
        .post(paths::POW_GENERATE, req, GENERATE_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    match r {
        GenerateResponse::Completed {
            result: JobResult::Artifacts(a),
            ..
        } => Ok(a.artifacts),
        other => Err(format!("expected artifacts, got {other:?}")),
    }
}

/// Ask the node to validate `artifacts` for `req`'s nonces.
pub async fn validate(
    t: &Target,
    req: &GenerateRequest,
    artifacts: Vec<Artifact>,
    st: StatTestOverrides,
) -> Result<ValidationResult, String> {
    let mut v = req.clone();
    v.validation = Some(ValidationPayload {
        artifacts: artifacts.into(),
    });
    v.stat_test = Some(st);
    let r: GenerateResponse = t
        .client
        .post(paths::POW_GENERATE, &v, GENERATE_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    match r {
        GenerateResponse::Completed {
            result: JobResult::Validation(v),
            ..
        } => Ok(v),
        other => Err(format!("expected a validation result, got {other:?}")),
    }
}

/// Run every check in order.
pub async fn run_all(t: &Target) -> Vec<CheckResult> {
    let mut out = contract::schema(t).await;
    out.extend(network::run(t).await);
    let Some(model) = t.model.clone() else {
        for name in [
            "errors",
            "determinism",
            "independence",
            "self-consistency",
            "reference",
            "negative-control",
            "stat-test",
            "partition",
        ] {
            out.push(CheckResult::skip(
                name,
                "no model served (deploy one, or pass --model)",
            ));
        }
        return out;
    };
    out.extend(contract::errors(t, &model).await);
    let (checks, own) = vectors::run(t, &model).await;
    out.extend(checks);
    out.extend(honesty::run(t, &model, own).await);
    out.push(partition::run(t, &model).await);
    out
}
