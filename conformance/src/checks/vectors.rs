//! Vector checks: determinism, independence from node metadata, self-consistency, and
//! agreement with the golden reference.

use mlnode_protocol::wire::Artifact;
use mlnode_protocol::SERVER_DEFAULTS;

use super::{artifacts, request, validate};
use crate::outcome::CheckResult;
use crate::target::Target;

/// The vector checks, and the node's own vectors for the check round (fetched once here,
/// reused by the honesty checks), or why they could not be fetched.
pub async fn run(t: &Target, model: &str) -> (Vec<CheckResult>, Result<Vec<Artifact>, String>) {
    let mut out = Vec::new();
    let req = request(t, model);
    let first = match artifacts(t, &req).await {
        Ok(a) => a,
        Err(e) => {
            for n in ["determinism", "independence", "self-consistency"] {
                out.push(CheckResult::fail(n, format!("cannot fetch vectors: {e}")));
            }
            out.push(reference(t, model).await);
            return (out, Err(e));
        }
    };
    let complete = first.len() == req.nonces.len();
    // Determinism: the same request twice.
    out.push(match artifacts(t, &req).await {
        Ok(second) => CheckResult::expect(
            "determinism",
            complete && second == first,
            format!(
                "{} nonces asked twice at batch {}: {}",
                req.nonces.len(),
                req.batch_size
                    .map_or("the node default".to_string(), |b| b.to_string()),
                if second == first {
                    "identical".to_string()
                } else {
                    format!("{} differ", diff(&first, &second))
                }
            ),
        ),
        Err(e) => CheckResult::fail("determinism", e),
    });
    // Independence: node_id, node_count, block_height are metadata.
    let mut other = req.clone();
    other.node_id = 3;
    other.node_count = 7;
    other.block_height = 987_654;
    out.push(match artifacts(t, &other).await {
        Ok(v) => CheckResult::expect(
            "independence",
            v == first,
            format!(
                "node_id 3/7, block_height 987654: {}",
                if v == first {
                    "identical".to_string()
                } else {
                    format!("{} differ", diff(&first, &v))
                }
            ),
        ),
        Err(e) => CheckResult::fail("independence", e),
    });
    // Self-consistency: the node accepts its own vectors with zero mismatches.
    out.push(
        match validate(t, &req, first.clone(), SERVER_DEFAULTS.to_overrides()).await {
            Ok(v) => CheckResult::expect(
                "self-consistency",
                v.n_mismatch == 0 && !v.fraud_detected,
                format!(
                    "own vectors: n_mismatch={} fraud_detected={}",
                    v.n_mismatch, v.fraud_detected
                ),
            ),
            Err(e) => CheckResult::fail("self-consistency", e),
        },
    );
    out.push(reference(t, model).await);
    (out, Ok(first))
}

fn diff(a: &[Artifact], b: &[Artifact]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len())
}

/// The node validates the golden reference (its own stat test) as honest.
async fn reference(t: &Target, model: &str) -> CheckResult {
    let Some(r) = &t.reference else {
        return CheckResult::skip(
            "reference",
            "no golden reference for this model (pass --reference)",
        );
    };
    let st = match mlnode_protocol::ResolvedStatTest::resolve(&[(
        mlnode_protocol::Source::Artifact,
        &r.stat_test_overrides(),
    )]) {
        Ok(s) => s.values,
        Err(e) => return CheckResult::fail("reference", format!("reference stat test: {e}")),
    };
    let mut req = request(t, model);
    req.block_hash = r.block_hash.clone();
    req.public_key = r.public_key.clone();
    req.block_height = r.block_height_or_default();
    req.node_id = r.node_id_or_default();
    req.node_count = r.node_count_or_default();
    req.nonces = r.nonces();
    req.batch_size = Some(r.collection_batch_size.flatten().unwrap_or(64));
    match validate(t, &req, r.artifacts.clone(), st.to_overrides()).await {
        Ok(v) => CheckResult::expect(
            "reference",
            !v.fraud_detected,
            format!(
                "golden reference ({} vectors): n_mismatch={} p_value={:.3e} fraud_detected={}",
                r.artifacts.len(),
                v.n_mismatch,
                v.p_value,
                v.fraud_detected
            ),
        ),
        Err(e) => CheckResult::fail("reference", e),
    }
}
