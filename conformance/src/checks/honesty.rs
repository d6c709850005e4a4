//! The node's honesty machinery: it must catch tampering (negative control) and compute
//! the binomial tail correctly (stat-test honesty).

use mlnode_protocol::vectors::{random_unit, to_f16};
use mlnode_protocol::wire::{Artifact, StatTestOverrides};
use mlnode_protocol::{binomial_upper_tail, SERVER_DEFAULTS};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{request, validate};
use crate::outcome::CheckResult;
use crate::target::Target;

/// Vectors flipped in the negative control.
pub const FLIPPED: usize = 10;
/// Vectors flipped in the stat-test check.
pub const STAT_FLIPPED: usize = 3;

/// Replace the first `n` vectors by random unit vectors (seeded: reproducible evidence).
pub fn tamper(own: &[Artifact], n: usize, k_dim: usize, seed: u64) -> Vec<Artifact> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    own.iter()
        .enumerate()
        .map(|(i, a)| {
            if i < n {
                Artifact {
                    nonce: a.nonce,
                    vector_b64: to_f16(&random_unit(k_dim, &mut rng)).encode(),
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// `own`: the node's vectors for the check round, as the vector checks fetched them.
pub async fn run(t: &Target, model: &str, own: Result<Vec<Artifact>, String>) -> Vec<CheckResult> {
    let req = request(t, model);
    let own = match own {
        Ok(a) if a.len() == req.nonces.len() => a,
        Ok(a) => {
            let e = format!("node returned {} of {} vectors", a.len(), req.nonces.len());
            return vec![
                CheckResult::fail("negative-control", e.clone()),
                CheckResult::fail("stat-test", e),
            ];
        }
        Err(e) => {
            return vec![
                CheckResult::fail("negative-control", e.clone()),
                CheckResult::fail("stat-test", e),
            ]
        }
    };
    let k = req.params.k_dim as usize;
    let mut out = Vec::new();
    // Negative control at the server defaults: 10 of 32 random vectors is fraud.
    let tampered = tamper(&own, FLIPPED, k, 7);
    out.push(match validate(t, &req, tampered, SERVER_DEFAULTS.to_overrides()).await {
        Ok(v) => CheckResult::expect(
            "negative-control",
            v.fraud_detected && v.n_mismatch >= FLIPPED as u64,
            format!("{FLIPPED}/{} vectors replaced by random unit vectors: n_mismatch={} fraud_detected={}{}",
                req.nonces.len(), v.n_mismatch, v.fraud_detected,
                if v.fraud_detected { "" } else { " — THE NODE PASSES TAMPERED VECTORS" }),
        ),
        Err(e) => CheckResult::fail("negative-control", e),
    });
    // Stat-test honesty: 3 flipped, p_mismatch 0.05; p_value must be the binomial tail.
    let st = StatTestOverrides {
        dist_threshold: Some(0.02),
        p_mismatch: Some(0.05),
        fraud_threshold: Some(0.01),
    };
    let tampered = tamper(&own, STAT_FLIPPED, k, 11);
    out.push(match validate(t, &req, tampered, st).await {
        Ok(v) => {
            let expected = binomial_upper_tail(v.n_mismatch, v.n_total, 0.05);
            let rel = (v.p_value - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
            let ok = v.n_mismatch == STAT_FLIPPED as u64 && v.n_total == req.nonces.len() as u64 && rel <= 1e-9
                && v.fraud_detected == (expected < 0.01);
            CheckResult::expect("stat-test", ok, format!(
                "{STAT_FLIPPED} flipped of {}, p_mismatch 0.05: n_mismatch={} p_value={:.12} expected {:.12} (rel err {rel:.1e})",
                v.n_total, v.n_mismatch, v.p_value, expected))
        }
        Err(e) => CheckResult::fail("stat-test", e),
    });
    out
}
