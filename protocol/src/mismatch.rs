//! The per-nonce mismatch rule (poc-math §2), exactly as the node applies it.
//!
//! For each nonce the validator computed itself:
//! 1. missing / empty received vector → **skipped** (not a mismatch, still in `n_total`);
//! 2. received length ≠ `k_dim` → mismatch;
//! 3. any received component non-finite → mismatch;
//! 4. otherwise `d = ‖computed − received‖₂` in f32 on the raw decoded vectors;
//!    mismatch iff `d > dist_threshold` (strict).

use crate::codec::{DecodeError, Vector};

/// What one nonce contributed to the verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum NonceOutcome {
    /// Nothing was received for this nonce: not counted as a mismatch.
    Skipped,
    /// Within the gate.
    Match { distance: f32 },
    /// Past the gate.
    Mismatch { reason: MismatchReason },
}

impl NonceOutcome {
    pub fn is_mismatch(&self) -> bool {
        matches!(self, NonceOutcome::Mismatch { .. })
    }
}

/// Why a nonce counts as a mismatch.
#[derive(Debug, Clone, PartialEq)]
pub enum MismatchReason {
    Distance(f32),
    WrongLength { got: usize, expected: usize },
    NonFinite,
}

/// Plain Euclidean distance of two decoded vectors, in f32 (numpy `dot` then `sqrt`).
/// Returns `None` when the lengths differ.
pub fn l2_distance(a: &Vector, b: &Vector) -> Option<f32> {
    if a.len() != b.len() {
        return None;
    }
    let f = |h: &half::f16| crate::codec::f16_bits_to_f32(h.to_bits());
    let mut acc = 0.0f32;
    for (x, y) in a.0.iter().zip(&b.0) {
        let d = f(x) - f(y);
        acc += d * d;
    }
    Some(acc.sqrt())
}

/// Apply the rule to an already decoded received vector.
pub fn judge(computed: &Vector, received: Option<&Vector>, dist_threshold: f64) -> NonceOutcome {
    let Some(received) = received else {
        return NonceOutcome::Skipped;
    };
    if received.is_empty() {
        return NonceOutcome::Skipped;
    }
    if received.len() != computed.len() {
        return NonceOutcome::Mismatch {
            reason: MismatchReason::WrongLength {
                got: received.len(),
                expected: computed.len(),
            },
        };
    }
    if !received.all_finite() {
        return NonceOutcome::Mismatch {
            reason: MismatchReason::NonFinite,
        };
    }
    // Lengths are equal here, so the distance exists.
    let d = l2_distance(computed, received).unwrap_or(f32::INFINITY);
    if f64::from(d) > dist_threshold {
        NonceOutcome::Mismatch {
            reason: MismatchReason::Distance(d),
        }
    } else {
        NonceOutcome::Match { distance: d }
    }
}

/// The rule on a received base64 string against the node's own vector as f32 — the
/// allocation-free path of validation (same outcome as [`judge_b64`]).
pub fn judge_b64_f32(
    own: &[f32],
    received_b64: &str,
    dist_threshold: f64,
) -> Result<NonceOutcome, DecodeError> {
    if received_b64.is_empty() {
        return Ok(NonceOutcome::Skipped);
    }
    let mut buf = [0.0f32; crate::codec::MAX_FAST_K];
    let n = match crate::codec::decode_into(received_b64, &mut buf) {
        Ok(n) => n,
        // Longer than the stack buffer: certainly the wrong length, if it decodes at all.
        Err(DecodeError::InvalidBase64(_))
            if received_b64.len() > crate::codec::MAX_FAST_K * 8 / 3 + 4 =>
        {
            let v = Vector::decode_any(received_b64)?;
            return Ok(NonceOutcome::Mismatch {
                reason: MismatchReason::WrongLength {
                    got: v.len(),
                    expected: own.len(),
                },
            });
        }
        Err(e) => return Err(e),
    };
    let received = &buf[..n];
    if n == 0 {
        return Ok(NonceOutcome::Skipped);
    }
    if n != own.len() {
        return Ok(NonceOutcome::Mismatch {
            reason: MismatchReason::WrongLength {
                got: n,
                expected: own.len(),
            },
        });
    }
    if !received.iter().all(|x| x.is_finite()) {
        return Ok(NonceOutcome::Mismatch {
            reason: MismatchReason::NonFinite,
        });
    }
    let mut acc = 0.0f32;
    for (a, b) in own.iter().zip(received) {
        let d = a - b;
        acc += d * d;
    }
    let d = acc.sqrt();
    Ok(if f64::from(d) > dist_threshold {
        NonceOutcome::Mismatch {
            reason: MismatchReason::Distance(d),
        }
    } else {
        NonceOutcome::Match { distance: d }
    })
}

/// Apply the rule to a received base64 string.
///
/// An empty string is skipped. A payload of an even byte count but wrong length is a
/// mismatch (as on the node). An undecodable payload (invalid base64, odd byte count)
/// is an error: the node's job fails with no verdict.
pub fn judge_b64(
    computed: &Vector,
    received_b64: Option<&str>,
    dist_threshold: f64,
) -> Result<NonceOutcome, DecodeError> {
    match received_b64 {
        None | Some("") => Ok(NonceOutcome::Skipped),
        Some(s) => {
            let v = Vector::decode_any(s)?;
            Ok(judge(computed, Some(&v), dist_threshold))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    fn v(x: &[f32]) -> Vector {
        Vector::from_f32(x)
    }

    #[test]
    fn distance_equal_to_threshold_is_not_a_mismatch() {
        // 0.5 and 0.25 are exact in f16, distance exactly 0.25.
        let a = v(&[0.5, 0.0]);
        let b = v(&[0.25, 0.0]);
        assert_eq!(l2_distance(&a, &b), Some(0.25));
        assert!(!judge(&a, Some(&b), 0.25).is_mismatch(), "strict >");
        assert!(judge(&a, Some(&b), 0.2499).is_mismatch());
    }

    #[test]
    fn missing_or_empty_is_skipped() {
        let a = v(&[1.0, 0.0]);
        assert_eq!(judge(&a, None, 0.1), NonceOutcome::Skipped);
        assert_eq!(judge(&a, Some(&Vector(vec![])), 0.1), NonceOutcome::Skipped);
        assert_eq!(judge_b64(&a, Some(""), 0.1).unwrap(), NonceOutcome::Skipped);
        assert_eq!(judge_b64(&a, None, 0.1).unwrap(), NonceOutcome::Skipped);
    }

    #[test]
    fn wrong_length_and_non_finite_are_mismatches_even_with_huge_threshold() {
        let a = v(&[1.0, 0.0]);
        assert!(judge(&a, Some(&v(&[1.0])), 100.0).is_mismatch());
        let nan = Vector(vec![f16::NAN, f16::ZERO]);
        assert_eq!(
            judge(&a, Some(&nan), 100.0),
            NonceOutcome::Mismatch {
                reason: MismatchReason::NonFinite
            }
        );
        let inf = Vector(vec![f16::ZERO, f16::NEG_INFINITY]);
        assert!(judge(&a, Some(&inf), 100.0).is_mismatch());
    }

    #[test]
    fn raw_vectors_are_not_renormalised() {
        // Same direction, different norm: distance 0.5, not 0.
        let a = v(&[1.0, 0.0]);
        let b = v(&[0.5, 0.0]);
        assert!(judge(&a, Some(&b), 0.4).is_mismatch());
    }

    #[test]
    fn fast_path_agrees_with_the_reference_path() {
        use crate::vectors::{honest_vector, VectorKey};
        let key = |nonce| VectorKey {
            model: "m",
            seq_len: 8,
            k_dim: 12,
            block_hash: "b",
            public_key: "p",
            nonce,
            stronger_rng: false,
        };
        let own = honest_vector(&key(0));
        let own32 = own.to_f32();
        let mut cases: Vec<String> = (0..50).map(|n| honest_vector(&key(n)).encode()).collect();
        cases.push(String::new());
        cases.push(v(&[1.0]).encode());
        cases.push(Vector(vec![half::f16::NAN; 12]).encode());
        cases.push(Vector(vec![half::f16::ZERO; 100]).encode());
        for c in &cases {
            for t in [0.0, 0.2, 1.0, 1.5] {
                assert_eq!(
                    judge_b64_f32(&own32, c, t).unwrap(),
                    judge_b64(&own, Some(c), t).unwrap(),
                    "{c} at {t}"
                );
            }
        }
        assert!(judge_b64_f32(&own32, "AAAA", 0.1).is_err());
        assert!(judge_b64_f32(&own32, "%%%", 0.1).is_err());
    }

    #[test]
    fn undecodable_payload_is_an_error() {
        let a = v(&[1.0, 0.0]);
        assert!(judge_b64(&a, Some("%%%"), 0.1).is_err());
        assert!(judge_b64(&a, Some("AAAA"), 0.1).is_err());
    }
}
