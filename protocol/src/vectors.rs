//! Deterministic stand-in PoC vectors and the distance-exact perturbation.
//!
//! A real node runs a forward pass; a simulator needs something with the same *shape*:
//! a pure function of `(model, seq_len, k_dim, block_hash, public_key, nonce,
//! poc_stronger_rng)` — never of `node_id`, `group_id`, `block_height` or the replica —
//! that yields a unit vector rounded to f16. We hash a canonical, length-prefixed
//! encoding of the inputs with SHA-256 (the round's fields once per request, then the
//! nonce on a cloned midstate), seed xoshiro256++ with the digest, draw `k_dim` standard
//! normals (Ziggurat) and normalise. Same inputs → same bytes on every machine: the
//! Ziggurat fast path is table lookups and multiplications; its rare tail uses `exp`/`ln`,
//! whose last-ulp differences the f16 rounding absorbs in all but astronomically rare
//! cases. Golden encodings are pinned in the tests.

use rand::{Rng, RngCore, SeedableRng};
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

/// One PoC round: everything but the nonce, hashed once. Per nonce only the SHA-256
/// midstate is cloned and finished, so a request of N nonces hashes the round once.
#[derive(Clone)]
pub struct Round {
    prefix: Sha256,
    k_dim: usize,
}

impl Round {
    pub fn new(model: &str, seq_len: u32, k_dim: u32, block_hash: &str, public_key: &str) -> Self {
        let mut h = Sha256::new();
        put_str(&mut h, "mlnode-sim/poc-v2-vector/1");
        put_str(&mut h, model);
        h.update(seq_len.to_le_bytes());
        h.update(k_dim.to_le_bytes());
        put_str(&mut h, block_hash);
        put_str(&mut h, public_key);
        Round {
            prefix: h,
            k_dim: k_dim as usize,
        }
    }

    pub fn k_dim(&self) -> usize {
        self.k_dim
    }

    /// SHA-256 of the canonical encoding (domain-separated, length-prefixed, little-endian).
    pub fn seed(&self, nonce: i64, stronger_rng: bool) -> [u8; 32] {
        let mut h = self.prefix.clone();
        h.update(nonce.to_le_bytes());
        h.update([u8::from(stronger_rng)]);
        h.finalize().into()
    }

    /// The honest unit vector into `out[..k_dim]` (f64, before f16 rounding), no allocation.
    /// The per-nonce SHA-256 digest seeds xoshiro256++ (all the entropy is in the digest;
    /// a ChaCha20 refill would make 256 bytes to use 96), and normals come from the
    /// Ziggurat method (table lookups, no trigonometry on the fast path).
    pub fn unit_into(&self, nonce: i64, stronger_rng: bool, out: &mut [f64]) {
        let mut rng = Xoshiro256pp::from_seed(self.seed(nonce, stronger_rng));
        let out = &mut out[..self.k_dim];
        for x in out.iter_mut() {
            *x = rng.sample(rand_distr::StandardNormal);
        }
        normalise(out);
    }

    /// The honest vector, rounded to f16.
    pub fn vector(&self, nonce: i64, stronger_rng: bool) -> Vector {
        let mut buf = vec![0.0f64; self.k_dim];
        self.unit_into(nonce, stronger_rng, &mut buf);
        to_f16(&buf)
    }
}

impl VectorKey<'_> {
    pub fn round(&self) -> Round {
        Round::new(
            self.model,
            self.seq_len,
            self.k_dim,
            self.block_hash,
            self.public_key,
        )
    }

    /// SHA-256 of the canonical encoding of every input.
    pub fn seed(&self) -> [u8; 32] {
        self.round().seed(self.nonce, self.stronger_rng)
    }
}

/// xoshiro256++ (Blackman & Vigna, public domain): a tiny, fast generator for the few
/// dozen draws one vector needs, seeded from a SHA-256 digest.
#[derive(Debug, Clone)]
pub struct Xoshiro256pp {
    s: [u64; 4],
}

impl RngCore for Xoshiro256pp {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

impl SeedableRng for Xoshiro256pp {
    type Seed = [u8; 32];

    fn from_seed(seed: [u8; 32]) -> Self {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            s[0] = 0x9e37_79b9_7f4a_7c15; // the all-zero state is a fixed point
        }
        Xoshiro256pp { s }
    }
}

/// Standard normal variates, two per Box–Muller pair (cos and sin).
pub fn fill_gaussian(rng: &mut impl RngCore, out: &mut [f64]) {
    let mut chunks = out.chunks_exact_mut(2);
    for pair in &mut chunks {
        let (r, (s, c)) = box_muller(rng);
        pair[0] = r * c;
        pair[1] = r * s;
    }
    if let [last] = chunks.into_remainder() {
        *last = gaussian(rng);
    }
}

fn box_muller(rng: &mut impl RngCore) -> (f64, (f64, f64)) {
    // 53-bit uniforms; u1 in (0, 1] keeps ln finite.
    let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (
        (-2.0 * u1.ln()).sqrt(),
        (std::f64::consts::TAU * u2).sin_cos(),
    )
}

/// One standard normal variate (Box–Muller, f64).
pub fn gaussian(rng: &mut impl RngCore) -> f64 {
    let (r, (_, c)) = box_muller(rng);
    r * c
}

fn normalise(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The honest unit vector (f64, before f16 rounding).
pub fn honest_unit(key: &VectorKey<'_>) -> Vec<f64> {
    let mut v = vec![0.0f64; key.k_dim as usize];
    key.round().unit_into(key.nonce, key.stronger_rng, &mut v);
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
    let mut u = vec![0.0f64; v.len()];
    fill_gaussian(rng, &mut u);
    let dot: f64 = u.iter().zip(v).map(|(a, b)| a * b).sum();
    u.iter_mut().zip(v).for_each(|(a, b)| *a -= dot * b);
    normalise(&mut u);
    let theta = 2.0 * (d / 2.0).asin();
    let (s, c) = theta.sin_cos();
    v.iter().zip(&u).map(|(a, b)| c * a + s * b).collect()
}

/// A uniformly random unit vector (a forged vector sits at L2 ≈ √2 from anything).
pub fn random_unit(k_dim: usize, rng: &mut impl Rng) -> Vec<f64> {
    let mut v = vec![0.0f64; k_dim];
    fill_gaussian(rng, &mut v);
    normalise(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mismatch::l2_distance;
    use rand_chacha::ChaCha20Rng;

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
        "ByorsH247TEHswswWTABJ42zabR/NWA4",
        "pDKirw4yJTHOt0U11a5cObcy4a9/r7Wp",
        "VKyzsxmyxC40tBU0dzkIMFe1BDX0s9Qp",
    ];

    #[test]
    fn round_matches_key_and_is_reusable() {
        let r = key(0).round();
        for n in 0..5 {
            assert_eq!(r.vector(n, false), honest_vector(&key(n)));
            assert_eq!(r.seed(n, false), key(n).seed());
        }
    }

    #[test]
    fn xoshiro_reference_output() {
        // First outputs of xoshiro256++ from state {1, 2, 3, 4} (reference C implementation).
        let mut seed = [0u8; 32];
        for (i, v) in [1u64, 2, 3, 4].iter().enumerate() {
            seed[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        let mut r = Xoshiro256pp::from_seed(seed);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            vec![41943041, 58720359, 3588806011781223, 3591011842654386]
        );
    }

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
