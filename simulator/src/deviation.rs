//! Mismatch models: how a simulated node's vectors differ from the honest ones
//! (poc-math §5).
//!
//! Each rule decides, per nonce and deterministically from the scenario seed, whether
//! the node's vector is moved and by what L2 distance; the move is
//! [`mlnode_protocol::vectors::perturb`] (exact distance before f16 rounding), or a fresh
//! random unit vector for forgery. Rules are tried in order and the first that fires
//! wins, so an explicit nonce list can sit in front of a noise floor.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One mismatch model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MismatchRule {
    /// These nonces, at this distance.
    Explicit { nonces: Vec<i64>, distance: f64 },
    /// Honest topology noise: lognormal around `median`, kept under the gate, except a
    /// `tail_fraction` of nonces drawn uniformly from just past `gate` to 2.5×`gate`.
    HonestNoise {
        median: f64,
        gate: f64,
        tail_fraction: f64,
    },
    /// A distance law `LogNormal(ln median, sigma)` on a `fraction` of nonces
    /// (quantised weights: median 0.24–0.38; pruning: larger median).
    Lognormal {
        median: f64,
        sigma: f64,
        #[serde(default = "one")]
        fraction: f64,
    },
    /// Fabricated vectors: a random unit vector (L2 ≈ 1.41) on a `fraction` of nonces.
    Forged {
        #[serde(default = "one")]
        fraction: f64,
    },
    /// The first nonce of every batch (position % batch_size == 0) is garbage.
    FirstInBatch {
        #[serde(default = "first_in_batch_distance")]
        distance: f64,
    },
    /// Vectors are bit-exact only at the node's default batch size; at any other size the
    /// honest-noise law applies.
    BatchSize {
        median: f64,
        gate: f64,
        tail_fraction: f64,
    },
}

fn one() -> f64 {
    1.0
}

fn first_in_batch_distance() -> f64 {
    1.15
}

fn prob(name: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("{name} must be in [0, 1], got {p}"))
    }
}

fn dist(name: &str, d: f64) -> Result<(), String> {
    if d.is_finite() && (0.0..=2.0).contains(&d) {
        Ok(())
    } else {
        Err(format!("{name} must be an L2 distance in [0, 2], got {d}"))
    }
}

impl MismatchRule {
    pub fn check(&self) -> Result<(), String> {
        match self {
            MismatchRule::Explicit { distance, .. } => dist("distance", *distance),
            MismatchRule::HonestNoise {
                median,
                gate,
                tail_fraction,
            }
            | MismatchRule::BatchSize {
                median,
                gate,
                tail_fraction,
            } => {
                dist("median", *median)?;
                dist("gate", *gate)?;
                prob("tail_fraction", *tail_fraction)?;
                if median >= gate {
                    return Err("median must be below gate".into());
                }
                Ok(())
            }
            MismatchRule::Lognormal {
                median,
                sigma,
                fraction,
            } => {
                dist("median", *median)?;
                if !(sigma.is_finite() && *sigma >= 0.0) {
                    return Err(format!("sigma must be >= 0, got {sigma}"));
                }
                prob("fraction", *fraction)
            }
            MismatchRule::Forged { fraction } => prob("fraction", *fraction),
            MismatchRule::FirstInBatch { distance } => dist("distance", *distance),
        }
    }
}

/// What a rule did to one nonce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Deviation {
    /// Move the vector by this L2 distance.
    Distance(f64),
    /// Replace it with a random unit vector.
    Forged,
}

/// Where in a request a nonce is computed (for batch-dependent rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPosition {
    pub index: usize,
    pub batch_size: u32,
    pub default_batch_size: u32,
}

/// The per-nonce RNG of a rule: a pure function of the scenario seed, the rule's place,
/// the round (`block_hash`, `public_key`, model) and the nonce.
pub fn rule_rng(seed: u64, rule: usize, round: &str, nonce: i64) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"mlnode-sim/mismatch/1");
    h.update(seed.to_le_bytes());
    h.update((rule as u64).to_le_bytes());
    h.update((round.len() as u64).to_le_bytes());
    h.update(round.as_bytes());
    h.update(nonce.to_le_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

fn lognormal(rng: &mut ChaCha20Rng, median: f64, sigma: f64) -> f64 {
    (median.max(1e-9).ln() + sigma * mlnode_protocol::vectors::gaussian(rng)).exp()
}

fn honest_noise(rng: &mut ChaCha20Rng, median: f64, gate: f64, tail: f64) -> f64 {
    if rng.random::<f64>() < tail {
        // Clearly past the gate (the f16 rounding cannot pull it back).
        let lo = (gate * 1.1).min(1.99);
        let hi = (gate * 2.5).clamp(lo, 2.0);
        lo + rng.random::<f64>() * (hi - lo)
    } else {
        lognormal(rng, median, 0.4).min(gate * 0.9)
    }
}

impl MismatchRule {
    /// Decide this rule's effect on `nonce`, or `None` when it does not fire.
    pub fn apply(
        &self,
        rng: &mut ChaCha20Rng,
        nonce: i64,
        pos: BatchPosition,
    ) -> Option<Deviation> {
        match self {
            MismatchRule::Explicit { nonces, distance } => nonces
                .contains(&nonce)
                .then_some(Deviation::Distance(*distance)),
            MismatchRule::HonestNoise {
                median,
                gate,
                tail_fraction,
            } => Some(Deviation::Distance(honest_noise(
                rng,
                *median,
                *gate,
                *tail_fraction,
            ))),
            MismatchRule::Lognormal {
                median,
                sigma,
                fraction,
            } => (rng.random::<f64>() < *fraction)
                .then(|| Deviation::Distance(lognormal(rng, *median, *sigma).min(2.0))),
            MismatchRule::Forged { fraction } => {
                (rng.random::<f64>() < *fraction).then_some(Deviation::Forged)
            }
            MismatchRule::FirstInBatch { distance } => (pos.batch_size > 0
                && pos.index % pos.batch_size as usize == 0)
                .then_some(Deviation::Distance(*distance)),
            MismatchRule::BatchSize {
                median,
                gate,
                tail_fraction,
            } => (pos.batch_size != pos.default_batch_size)
                .then(|| Deviation::Distance(honest_noise(rng, *median, *gate, *tail_fraction))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POS: BatchPosition = BatchPosition {
        index: 1,
        batch_size: 32,
        default_batch_size: 32,
    };

    #[test]
    fn deterministic_per_seed_and_nonce() {
        let rule = MismatchRule::Lognormal {
            median: 0.36,
            sigma: 0.8,
            fraction: 1.0,
        };
        let a = rule.apply(&mut rule_rng(1, 0, "r", 7), 7, POS);
        let b = rule.apply(&mut rule_rng(1, 0, "r", 7), 7, POS);
        let c = rule.apply(&mut rule_rng(2, 0, "r", 7), 7, POS);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn honest_noise_tail_fraction_is_close_to_configured() {
        let rule = MismatchRule::HonestNoise {
            median: 0.07,
            gate: 0.2,
            tail_fraction: 0.05,
        };
        let n = 4000;
        let past = (0..n)
            .filter(|&i| {
                matches!(rule.apply(&mut rule_rng(9, 0, "r", i), i, POS),
                    Some(Deviation::Distance(d)) if d > 0.2)
            })
            .count();
        let frac = past as f64 / n as f64;
        assert!((0.035..0.065).contains(&frac), "{frac}");
    }

    #[test]
    fn batch_rules() {
        let fib = MismatchRule::FirstInBatch { distance: 1.15 };
        let at = |index, batch_size| BatchPosition {
            index,
            batch_size,
            default_batch_size: 32,
        };
        assert!(fib
            .apply(&mut rule_rng(0, 0, "", 0), 0, at(0, 16))
            .is_some());
        assert!(fib
            .apply(&mut rule_rng(0, 0, "", 0), 0, at(16, 16))
            .is_some());
        assert!(fib
            .apply(&mut rule_rng(0, 0, "", 0), 0, at(17, 16))
            .is_none());
        let bs = MismatchRule::BatchSize {
            median: 0.05,
            gate: 0.2,
            tail_fraction: 0.05,
        };
        assert!(bs.apply(&mut rule_rng(0, 0, "", 0), 0, at(3, 32)).is_none());
        assert!(bs.apply(&mut rule_rng(0, 0, "", 0), 0, at(3, 64)).is_some());
    }

    #[test]
    fn bad_rules_are_rejected() {
        assert!(MismatchRule::Forged { fraction: 1.5 }.check().is_err());
        assert!(MismatchRule::Explicit {
            nonces: vec![],
            distance: 3.0
        }
        .check()
        .is_err());
        assert!(MismatchRule::HonestNoise {
            median: 0.3,
            gate: 0.2,
            tail_fraction: 0.1
        }
        .check()
        .is_err());
    }
}
