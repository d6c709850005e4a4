//! Phase 4: ask the node to validate the reference's vectors.
//!
//! `POST /pow/generate` with the PoC params, the reference's nonces in order, the
//! validation batch size, `wait: true`, `validation.artifacts` and the full stat test.
//! With `--cross-check`, also fetch the node's own vectors for the same nonces and
//! recompute the verdict locally with `mlnode-protocol`.

use mlnode_protocol::verdict;
use mlnode_protocol::wire::{
    ArtifactsResult, GenerateRequest, GenerateResponse, JobResult, PoCParams, ValidationPayload,
    ValidationResult,
};
use mlnode_protocol::Vector;
use serde_json::{json, Value};

use super::{Ctx, PhaseResult};
use crate::console::Progress;

fn request(ctx: &Ctx<'_>, with_validation: bool) -> GenerateRequest {
    let r = ctx.reference;
    GenerateRequest {
        block_hash: r.block_hash.clone(),
        block_height: r.block_height_or_default(),
        public_key: r.public_key.clone(),
        node_id: r.node_id_or_default(),
        node_count: r.node_count_or_default(),
        nonces: r.nonces(),
        params: PoCParams {
            model: ctx.args.model.clone(),
            seq_len: r.seq_len,
            k_dim: r.k_dim,
        },
        batch_size: ctx.args.validation_batch_size,
        wait: true,
        url: None,
        validation: with_validation.then(|| ValidationPayload {
            artifacts: r.artifacts.iter().collect(),
        }),
        stat_test: with_validation.then(|| ctx.stat_test.values.to_overrides()),
        poc_stronger_rng: false,
    }
}

/// The node's verdict.
pub async fn run(ctx: &Ctx<'_>) -> (PhaseResult, Option<ValidationResult>) {
    let n_total = ctx.reference.artifacts.len();
    let _p = Progress::start(format!("validating {n_total} vectors"));
    let report = |resp: &Value| json!({"request": {"n_total": n_total}, "response": resp});
    let a = match ctx
        .client
        .post_raw(
            "/api/v1/inference/pow/generate",
            &request(ctx, true),
            ctx.args.validation_timeout,
        )
        .await
    {
        Ok(a) => a,
        Err(e) => {
            return (
                PhaseResult::failed(report(&Value::Null), e.to_string()),
                None,
            )
        }
    };
    let body = a.body.clone();
    match crate::client::Client::expect::<GenerateResponse>(
        "POST",
        "/api/v1/inference/pow/generate",
        a,
        &[200],
    ) {
        Ok(GenerateResponse::Completed {
            result: JobResult::Validation(v),
            ..
        }) => (PhaseResult::ok(report(&body)), Some(v)),
        Ok(_) => (
            PhaseResult::failed(
                report(&body),
                format!("pow/generate did not return a validation result: {body}"),
            ),
            None,
        ),
        Err(e) => (PhaseResult::failed(report(&body), e.to_string()), None),
    }
}

/// Fetch the node's own vectors and judge the reference against them locally.
pub async fn cross_check(ctx: &Ctx<'_>) -> Result<(ValidationResult, Value), String> {
    let resp: GenerateResponse = ctx
        .client
        .post(
            "/api/v1/inference/pow/generate",
            &request(ctx, false),
            ctx.args.validation_timeout,
        )
        .await
        .map_err(|e| e.to_string())?;
    let GenerateResponse::Completed {
        result: JobResult::Artifacts(ArtifactsResult { artifacts, .. }),
        ..
    } = resp
    else {
        return Err("pow/generate (no validation) did not return artifacts".into());
    };
    let k = ctx.reference.k_dim as usize;
    let own: std::collections::HashMap<i64, String> = artifacts
        .into_iter()
        .map(|a| (a.nonce, a.vector_b64))
        .collect();
    let result = verdict::validate(
        &ctx.reference.nonces(),
        &ctx.reference.artifacts,
        |n| own.get(&n).and_then(|b| Vector::decode(b, k).ok()),
        &ctx.stat_test.values,
    )
    .map_err(|e| e.to_string())?;
    let missing = ctx
        .reference
        .nonces()
        .iter()
        .filter(|n| !own.contains_key(n))
        .count();
    Ok((result, json!({"node_vectors_missing": missing})))
}
