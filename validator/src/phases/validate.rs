//! Phase 4: ask the node to validate the reference's vectors — and check its answer.
//!
//! `POST /pow/generate` with the PoC params, the reference's nonces in order, the
//! validation batch size (left out when unset), `wait: true`, `validation.artifacts` and
//! the full stat test. The node's verdict is evidence, not truth: an answer no honest node
//! can give (more mismatches than nonces, nonces never sent, a p-value that is not the
//! binomial tail of its own counts, `fraud_detected` that contradicts its p-value, a job
//! that did not complete) is an error naming the inconsistency.
//!
//! With `--cross-check`, also fetch the node's own vectors for the same nonces and
//! recompute the verdict locally with `mlnode-protocol`.

use std::collections::{HashMap, HashSet};

use mlnode_protocol::wire::{GenerateRequest, ValidationPayload, ValidationResult};
use mlnode_protocol::{fraud_test, verdict, Vector};

use super::{Ctx, Failure, Phase};
use crate::report::{py, CrossCheck, Partial, ValidationResponse};

fn request(ctx: &Ctx<'_>, with_validation: bool) -> GenerateRequest {
    let r = ctx.reference;
    GenerateRequest {
        block_hash: r.block_hash.clone(),
        block_height: r.block_height_or_default(),
        public_key: r.public_key.clone(),
        node_id: r.node_id_or_default(),
        node_count: r.node_count_or_default(),
        nonces: r.nonces(),
        params: super::poc_params(ctx),
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

/// Whether two p-values are the same number, up to the rounding of two implementations.
fn same_p(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 + 1e-6 * a.abs().max(b.abs())
}

/// The inconsistencies of an answer, if any (the first one found).
pub fn check_answer(
    status: &str,
    v: &ValidationResult,
    sent: &[i64],
    stat: &mlnode_protocol::StatTest,
) -> Result<(), String> {
    if !status.eq_ignore_ascii_case("completed") {
        return Err(format!("the job's status is '{status}', not 'completed'"));
    }
    if v.n_total != sent.len() as u64 {
        return Err(format!(
            "n_total={} but {} nonces were sent",
            v.n_total,
            sent.len()
        ));
    }
    if v.n_mismatch > v.n_total {
        return Err(format!(
            "n_mismatch={} exceeds n_total={}",
            v.n_mismatch, v.n_total
        ));
    }
    if v.mismatch_nonces.len() as u64 != v.n_mismatch {
        return Err(format!(
            "n_mismatch={} but mismatch_nonces lists {}",
            v.n_mismatch,
            v.mismatch_nonces.len()
        ));
    }
    let sent_set: HashSet<i64> = sent.iter().copied().collect();
    let mut seen = HashSet::new();
    for n in &v.mismatch_nonces {
        if !sent_set.contains(n) {
            return Err(format!(
                "mismatch_nonces names nonce {n}, which was never sent"
            ));
        }
        if !seen.insert(*n) {
            return Err(format!("mismatch_nonces lists nonce {n} twice"));
        }
    }
    if !(v.p_value.is_finite() && (0.0..=1.0).contains(&v.p_value)) {
        return Err(format!(
            "p_value={} is not a probability in [0, 1]",
            py::float(v.p_value)
        ));
    }
    let expected = fraud_test(
        v.n_mismatch,
        v.n_total,
        stat.p_mismatch,
        stat.fraud_threshold,
    )
    .map_err(|e| format!("the stat test cannot be recomputed: {e}"))?;
    if !same_p(v.p_value, expected.p_value) {
        return Err(format!(
            "p_value={} is not the binomial tail P[X >= {}] for n={} at p_mismatch={} (that is {})",
            py::float(v.p_value),
            v.n_mismatch,
            v.n_total,
            py::float(stat.p_mismatch),
            py::float(expected.p_value)
        ));
    }
    let fraud_by_p = v.p_value < stat.fraud_threshold;
    if v.fraud_detected != fraud_by_p {
        return Err(format!(
            "fraud_detected={} contradicts p_value={} against fraud_threshold={} (it should be {})",
            py::bool_str(v.fraud_detected),
            py::float(v.p_value),
            py::float(stat.fraud_threshold),
            py::bool_str(fraud_by_p)
        ));
    }
    Ok(())
}

/// The node's verdict, checked.
pub async fn run(ctx: &Ctx<'_>) -> Result<ValidationResponse, Failure> {
    let n_total = ctx.reference.artifacts.len();
    let v = &ctx.stat_test.values;
    ctx.console.line(Phase::Validate.header(&format!(
        "sending {n_total} vectors  stat_test: {}",
        crate::report::txt::stat_test(ctx.stat_test)
    )));
    let _p = ctx
        .console
        .progress(format!("validating {n_total} vectors"), None);
    let req = request(ctx, true);
    let (status, request_id, result) = ctx
        .client
        .validate(&req, ctx.args.validation_timeout)
        .await?;
    let answer = || {
        Some(Partial::Validation {
            answer: Some(crate::client::clip(
                &serde_json::to_string(&result).unwrap_or_default(),
                2000,
            )),
        })
    };
    check_answer(&status, &result, &req.nonces, v).map_err(|e| {
        Failure::new(
            format!("the node's validation answer is inconsistent: {e}"),
            answer(),
        )
    })?;
    ctx.console.line(format!(
        "  response: n_total={} n_mismatch={} p_value={} fraud_detected={}",
        result.n_total,
        result.n_mismatch,
        py::float(result.p_value),
        py::bool_str(result.fraud_detected)
    ));
    Ok(ValidationResponse {
        status,
        request_id,
        n_total: result.n_total,
        n_mismatch: result.n_mismatch,
        mismatch_nonces: result.mismatch_nonces,
        p_value: result.p_value,
        fraud_detected: result.fraud_detected,
    })
}

/// Fetch the node's own vectors and judge the reference against them locally.
pub async fn cross_check(ctx: &Ctx<'_>, node: &ValidationResponse) -> Result<CrossCheck, Failure> {
    ctx.console
        .line("  cross-check: fetching the node's own vectors and recomputing locally");
    let res = ctx
        .client
        .generate_artifacts(&request(ctx, false), ctx.args.validation_timeout)
        .await
        .map_err(|e| Failure::new(format!("cross-check failed: {e}"), None))?;
    let k = ctx.reference.k_dim as usize;
    let own: HashMap<i64, String> = res
        .artifacts
        .into_iter()
        .map(|a| (a.nonce, a.vector_b64))
        .collect();
    let nonces = ctx.reference.nonces();
    let local = verdict::validate(
        &nonces,
        &ctx.reference.artifacts,
        |n| own.get(&n).and_then(|b| Vector::decode(b, k).ok()),
        &ctx.stat_test.values,
    )
    .map_err(|e| Failure::new(format!("cross-check failed: {e}"), None))?;
    let missing = nonces.iter().filter(|n| !own.contains_key(n)).count();
    let disagree = !node.fraud_detected && local.fraud_detected;
    ctx.console.line(format!(
        "  local: n_mismatch={} p_value={} fraud_detected={}{}",
        local.n_mismatch,
        py::float(local.p_value),
        py::bool_str(local.fraud_detected),
        if disagree {
            "  -> the node's verdict disagrees with the local recomputation"
        } else {
            ""
        }
    ));
    Ok(CrossCheck {
        local,
        node_fraud_detected: node.fraud_detected,
        disagree,
        node_vectors_missing: missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n_total: u64, n_mismatch: u64, nonces: Vec<i64>, p: f64, fraud: bool) -> ValidationResult {
        ValidationResult {
            n_total,
            n_mismatch,
            mismatch_nonces: nonces,
            p_value: p,
            fraud_detected: fraud,
        }
    }

    #[test]
    fn impossible_verdicts_are_named() {
        let st = mlnode_protocol::SERVER_DEFAULTS;
        let sent: Vec<i64> = (0..32).collect();
        let honest = v(32, 0, vec![], 1.0, false);
        assert!(check_answer("completed", &honest, &sent, &st).is_ok());
        let tail = fraud_test(27, 32, st.p_mismatch, st.fraud_threshold).unwrap();
        let fraud = v(32, 27, (0..27).collect(), tail.p_value, true);
        assert!(check_answer("completed", &fraud, &sent, &st).is_ok());
        for (status, bad, word) in [
            (
                "completed",
                v(32, 40, (0..40).collect(), 0.0, true),
                "exceeds",
            ),
            ("completed", v(31, 0, vec![], 1.0, false), "were sent"),
            ("completed", v(0, 0, vec![], 1.0, false), "were sent"),
            ("failed", honest.clone(), "not 'completed'"),
            (
                "completed",
                v(32, 1, vec![99], st.p_mismatch, false),
                "never sent",
            ),
            ("completed", v(32, 2, vec![3, 3], 0.0, false), "twice"),
            (
                "completed",
                v(32, 0, vec![], 1.5, false),
                "not a probability",
            ),
            (
                "completed",
                v(32, 0, vec![], f64::NAN, false),
                "not a probability",
            ),
            ("completed", v(32, 0, vec![], 1.0, true), "contradicts"),
            ("completed", v(32, 0, vec![], 0.5, false), "binomial tail"),
            ("completed", v(32, 1, vec![], 1.0, false), "lists 0"),
        ] {
            let e = check_answer(status, &bad, &sent, &st).unwrap_err();
            assert!(e.contains(word), "{e} should say {word}");
        }
    }
}
