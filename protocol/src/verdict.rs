//! A validation request end to end (mlnode-api §7.2): the per-nonce rule over every
//! nonce the node computed, then the fraud test with `n_total = len(nonces)`.

use std::collections::HashMap;

use crate::codec::{DecodeError, Vector};
use crate::fraud::{fraud_test, StatTestError};
use crate::mismatch::judge_b64_f32;
use crate::stat_test::StatTest;
use crate::wire::{Artifact, ArtifactList, ValidationResult};

/// Why a validation produced no verdict (the node's job fails).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerdictError {
    #[error("cannot decode vector for nonce {nonce}: {source}")]
    Decode { nonce: i64, source: DecodeError },
    #[error(transparent)]
    StatTest(#[from] StatTestError),
}

/// Received artifacts, by position: a reference's `[Artifact]` or a request's
/// [`ArtifactList`].
pub trait Artifacts {
    fn count(&self) -> usize;
    fn artifact(&self, i: usize) -> (i64, &str);
}

impl Artifacts for [Artifact] {
    fn count(&self) -> usize {
        self.len()
    }
    fn artifact(&self, i: usize) -> (i64, &str) {
        (self[i].nonce, self[i].vector_b64.as_str())
    }
}

impl Artifacts for Vec<Artifact> {
    fn count(&self) -> usize {
        self.len()
    }
    fn artifact(&self, i: usize) -> (i64, &str) {
        self.as_slice().artifact(i)
    }
}

impl Artifacts for ArtifactList {
    fn count(&self) -> usize {
        self.len()
    }
    fn artifact(&self, i: usize) -> (i64, &str) {
        self.get(i)
    }
}

/// Judge `received` against what the node computed for each of `nonces` (in order).
/// `computed(nonce)` returns `None` for a nonce the node produced nothing for (e.g. its
/// own NaN): silently not counted, still in `n_total`.
pub fn validate<A: Artifacts + ?Sized>(
    nonces: &[i64],
    received: &A,
    mut computed: impl FnMut(i64) -> Option<Vector>,
    stat_test: &StatTest,
) -> Result<ValidationResult, VerdictError> {
    validate_with(
        nonces,
        received,
        |_, nonce, out| {
            let v = computed(nonce)?;
            let f = v.to_f32();
            let n = f.len().min(out.len());
            out[..n].copy_from_slice(&f[..n]);
            Some(n)
        },
        stat_test,
    )
}

/// The allocation-free form: `computed(index, nonce, out)` writes the node's own vector
/// (as f32, the exact f16 values) into `out` and returns its length, or `None`.
/// Artifacts are paired by position when they come in the order of `nonces` (what
/// validators send), by nonce otherwise.
pub fn validate_with<A: Artifacts + ?Sized>(
    nonces: &[i64],
    received: &A,
    mut computed: impl FnMut(usize, i64, &mut [f32]) -> Option<usize>,
    stat_test: &StatTest,
) -> Result<ValidationResult, VerdictError> {
    stat_test.check()?;
    let n = received.count();
    let in_order = n == nonces.len() && (0..n).all(|i| received.artifact(i).0 == nonces[i]);
    let by_nonce: HashMap<i64, &str> = if in_order {
        HashMap::new()
    } else {
        (0..n).map(|i| received.artifact(i)).collect()
    };
    let mut own = [0.0f32; crate::codec::MAX_FAST_K];
    let mut mismatch_nonces = Vec::new();
    for (i, &nonce) in nonces.iter().enumerate() {
        let Some(k) = computed(i, nonce, &mut own) else {
            continue;
        };
        let got = if in_order {
            Some(received.artifact(i).1)
        } else {
            by_nonce.get(&nonce).copied()
        };
        let Some(b64) = got else { continue };
        let outcome = judge_b64_f32(&own[..k], b64, stat_test.dist_threshold)
            .map_err(|source| VerdictError::Decode { nonce, source })?;
        if outcome.is_mismatch() {
            mismatch_nonces.push(nonce);
        }
    }
    let n_total = nonces.len() as u64;
    let n_mismatch = mismatch_nonces.len() as u64;
    let v = fraud_test(
        n_mismatch,
        n_total,
        stat_test.p_mismatch,
        stat_test.fraud_threshold,
    )?;
    Ok(ValidationResult {
        n_total,
        n_mismatch,
        mismatch_nonces,
        p_value: v.p_value,
        fraud_detected: v.fraud_detected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stat_test::SERVER_DEFAULTS;

    fn unit(i: usize) -> Vector {
        let mut x = vec![0.0f32; 12];
        x[i % 12] = 1.0;
        Vector::from_f32(&x)
    }

    #[test]
    fn counts_in_computation_order_and_skips_missing() {
        let nonces: Vec<i64> = (0..32).collect();
        let mut received: Vec<Artifact> = nonces
            .iter()
            .map(|&n| Artifact {
                nonce: n,
                vector_b64: unit(n as usize).encode(),
            })
            .collect();
        received[17].vector_b64 = unit(18).encode();
        received[3].vector_b64 = String::new();
        let r = validate(
            &nonces,
            &received,
            |n| Some(unit(n as usize)),
            &SERVER_DEFAULTS,
        )
        .unwrap();
        assert_eq!(
            (r.n_total, r.n_mismatch, r.mismatch_nonces.clone()),
            (32, 1, vec![17])
        );
        assert!(!r.fraud_detected);
        assert!((r.p_value - 0.03150892424).abs() < 1e-9);

        received[20].vector_b64 = unit(0).encode();
        let r = validate(
            &nonces,
            &received,
            |n| Some(unit(n as usize)),
            &SERVER_DEFAULTS,
        )
        .unwrap();
        assert_eq!(r.mismatch_nonces, vec![17, 20]);
        assert!(r.fraud_detected);

        // Out of order: paired by nonce, same verdict.
        let mut shuffled = received.clone();
        shuffled.reverse();
        let r2 = validate(
            &nonces,
            &shuffled,
            |n| Some(unit(n as usize)),
            &SERVER_DEFAULTS,
        )
        .unwrap();
        assert_eq!(r2.mismatch_nonces, vec![17, 20]);

        // A nonce the node did not compute is not counted but stays in n_total.
        let r = validate(
            &nonces,
            &received,
            |n| (n != 17).then(|| unit(n as usize)),
            &SERVER_DEFAULTS,
        )
        .unwrap();
        assert_eq!((r.n_total, r.mismatch_nonces.clone()), (32, vec![20]));
    }

    #[test]
    fn undecodable_vector_fails_the_job() {
        let received = vec![Artifact {
            nonce: 0,
            vector_b64: "AAAA".into(),
        }];
        let e = validate(&[0], &received, |_| Some(unit(0)), &SERVER_DEFAULTS).unwrap_err();
        assert!(matches!(e, VerdictError::Decode { nonce: 0, .. }));
    }
}
