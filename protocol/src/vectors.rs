//! Deterministic stand-in PoC vectors and the distance-exact perturbation.
//!
//! A real node runs a forward pass; a simulator needs something with the same *shape*:
//! a pure function of `(model, seq_len, k_dim, block_hash, public_key, nonce,
//! poc_stronger_rng)` — never of `node_id`, `group_id`, `block_height` or the replica —
//! that yields a unit vector rounded to f16. We hash a canonical, length-prefixed
//! encoding of the inputs with SHA-256, seed ChaCha20 with the digest, draw `k_dim`
//! Gaussians (Box–Muller) and normalise. Same inputs → same bytes on every machine:
//! only integer ops and IEEE `ln`/`sqrt`/`sin_cos` of the Box–Muller step touch floats,
//! and the f16 rounding absorbs last-ulp libm differences in all but astronomically
//! rare cases.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::codec::Vector;

/// Everything a vector depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VectorKey<'a> {
    pub model: &'a str,
    pub seq_len: u32,
    pub k_dim: u32,
    pub block_hash: &'a str,
    pub public_key: &'a str,
    pub nonce: i64,
    pub stronger_rng: bool,
}

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

impl VectorKey<'_> {
    /// SHA-256 of the canonical encoding (domain-separated, length-prefixed, little-endian).
    pub fn seed(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        put_str(&mut h, "mlnode-sim/poc-v2-vector/1");
        put_str(&mut h, self.model);
        h.update(self.seq_len.to_le_bytes());
        h.update(self.k_dim.to_le_bytes());
        put_str(&mut h, self.block_hash);
        put_str(&mut h, self.public_key);
        h.update(self.nonce.to_le_bytes());
        h.update([u8::from(self.stronger_rng)]);
        h.finalize().into()
    }
}

/// A standard normal variate from two uniform draws (Box–Muller, f64).
pub fn gaussian(rng: &mut impl RngCore) -> f64 {
    // 53-bit uniforms in (0, 1]; u1 > 0 keeps ln finite.
    let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn normalise(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The honest unit vector (f64, before f16 rounding).
pub fn honest_unit(key: &VectorKey<'_>) -> Vec<f64> {
    let mut rng = ChaCha20Rng::from_seed(key.seed());
    let mut v: Vec<f64> = (0..key.k_dim).map(|_| gaussian(&mut rng)).collect();
    normalise(&mut v);
    v
}

/// The honest vector, rounded to f16.
pub fn honest_vector(key: &VectorKey<'_>) -> Vector {
    to_f16(&honest_unit(key))
}

/// Round an f64 vector to f16 via f32.
pub fn to_f16(v: &[f64]) -> Vector {
    Vector::from_f32(&v.iter().map(|&x| x as f32).collect::<Vec<_>>())
}

/// A unit vector at chord distance `d` (clamped to [0, 2]) from the unit vector `v`, in a
/// random direction drawn from `rng`: `w = cos θ·v + sin θ·u` with `u ⊥ v` and
/// `θ = 2·asin(d/2)`. This is `normalize(v + σ·g)` with σ chosen so that the distance is
/// exactly the one drawn from a distance law (before f16 rounding).
pub fn perturb(v: &[f64], d: f64, rng: &mut impl RngCore) -> Vec<f64> {
    let d = d.clamp(0.0, 2.0);
    if v.len() < 2 || d == 0.0 {
        return v.to_vec();
    }
    let mut u: Vec<f64> = (0..v.len()).map(|_| gaussian(rng)).collect();
    let dot: f64 = u.iter().zip(v).map(|(a, b)| a * b).sum();
    u.iter_mut().zip(v).for_each(|(a, b)| *a -= dot * b);
    normalise(&mut u);
    let theta = 2.0 * (d / 2.0).asin();
    let (s, c) = theta.sin_cos();
    v.iter().zip(&u).map(|(a, b)| c * a + s * b).collect()
}

/// A uniformly random unit vector (a forged vector sits at L2 ≈ √2 from anything).
pub fn random_unit(k_dim: usize, rng: &mut impl Rng) -> Vec<f64> {
    let mut v: Vec<f64> = (0..k_dim).map(|_| gaussian(rng)).collect();
    normalise(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mismatch::l2_distance;

    fn key(nonce: i64) -> VectorKey<'static> {
        VectorKey {
            model: "Qwen/Qwen3-32B-FP8",
            seq_len: 128,
            k_dim: 12,
            block_hash: "TEST_BLOCK",
            public_key: "test_pub_keys",
            nonce,
            stronger_rng: false,
        }
    }

    /// Golden encodings: a change to the generator changes every simulated node's output.
    #[test]
    fn pinned_encodings() {
        let got: Vec<String> = (0..3).map(|n| honest_vector(&key(n)).encode()).collect();
        assert_eq!(got, GOLDEN, "vector generator changed");
    }

    const GOLDEN: [&str; 3] = [
        "1rMfMHU08K4JsfMzYLX/OLCzNbIMMai1",
        "wiiopomwLrTtMRw4+iLwsJQy9bhQtues",
        "+jE7ulyoUC61s5cwx67/MTQ1m7GHtA8t",
    ];

    #[test]
    fn unit_norm_and_input_sensitivity() {
        let a = honest_vector(&key(0));
        assert_eq!(a.len(), 12);
        assert!((a.norm() - 1.0).abs() < 2e-3);
        assert_eq!(a, honest_vector(&key(0)));
        assert_ne!(a, honest_vector(&key(1)));
        let mut k = key(0);
        k.stronger_rng = true;
        assert_ne!(a, honest_vector(&k));
        let mut k = key(0);
        k.model = "other";
        assert_ne!(a, honest_vector(&k));
    }

    #[test]
    fn perturb_hits_the_distance() {
        let v = honest_unit(&key(5));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for d in [0.01, 0.1, 0.3, 0.75, 1.41, 1.99] {
            let w = perturb(&v, d, &mut rng);
            let dist: f64 = v
                .iter()
                .zip(&w)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!((dist - d).abs() < 1e-9, "{dist} vs {d}");
            let n: f64 = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((n - 1.0).abs() < 1e-12);
            // After f16 rounding the distance moves by at most ~1e-3.
            let l2 = l2_distance(&to_f16(&v), &to_f16(&w)).unwrap();
            assert!((f64::from(l2) - d).abs() < 2e-3);
        }
    }
}
