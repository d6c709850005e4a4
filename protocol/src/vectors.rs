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
use sha2::digest::generic_array::{typenum::U64, GenericArray};

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

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Bytes a nonce adds to the round's message: the nonce (8) and the `stronger_rng` flag (1).
const NONCE_BYTES: usize = 9;

/// One PoC round: everything but the nonce, hashed once.
///
/// The round's canonical encoding is compressed block by block when the round is made;
/// per nonce only the last one or two padded blocks are built on the stack and
/// compressed from that midstate (`sha2::compress256`, SHA-NI where the CPU has it).
/// The digest is SHA-256 of the whole message, byte for byte (tested against `Sha256`
/// for every tail length); what this saves is the hasher's clone, buffering and
/// finalisation per nonce, about a third of the seed's cost.
#[derive(Clone)]
pub struct Round {
    /// The SHA-256 state after the round's complete 64-byte blocks.
    mid: [u32; 8],
    /// The round's bytes after those blocks (`tail_len < 64`), then zeros.
    tail: GenericArray<u8, U64>,
    tail_len: usize,
    /// Length of the round's encoding in bytes (for the padding's bit count).
    len: u64,
    k_dim: usize,
    /// The normal sampler's layer table (see [`ziggurat_x`]).
    zig: &'static [f64; 257],
}

impl Round {
    pub fn new(model: &str, seq_len: u32, k_dim: u32, block_hash: &str, public_key: &str) -> Self {
        let mut msg = Vec::with_capacity(128);
        put_str(&mut msg, "mlnode-sim/poc-v2-vector/1");
        put_str(&mut msg, model);
        msg.extend_from_slice(&seq_len.to_le_bytes());
        msg.extend_from_slice(&k_dim.to_le_bytes());
        put_str(&mut msg, block_hash);
        put_str(&mut msg, public_key);
        let full = msg.len() / 64 * 64;
        let mut mid = SHA256_IV;
        let blocks: Vec<_> = msg[..full]
            .chunks_exact(64)
            .map(|b| *GenericArray::from_slice(b))
            .collect();
        sha2::compress256(&mut mid, &blocks);
        let mut tail = GenericArray::<u8, U64>::default();
        tail[..msg.len() - full].copy_from_slice(&msg[full..]);
        Round {
            mid,
            tail,
            tail_len: msg.len() - full,
            len: msg.len() as u64,
            k_dim: k_dim as usize,
            zig: ziggurat_x(),
        }
    }

    pub fn k_dim(&self) -> usize {
        self.k_dim
    }

    /// SHA-256 of the canonical encoding (domain-separated, length-prefixed, little-endian).
    pub fn seed(&self, nonce: i64, stronger_rng: bool) -> [u8; 32] {
        let (blocks, n) = self.last_blocks(nonce, stronger_rng);
        let mut st = self.mid;
        sha2::compress256(&mut st, &blocks[..n]);
        digest_bytes(st)
    }

    /// The message's last one or two blocks for this nonce, padded, and how many there are.
    fn last_blocks(&self, nonce: i64, stronger_rng: bool) -> ([GenericArray<u8, U64>; 2], usize) {
        let mut blocks = [self.tail, GenericArray::<u8, U64>::default()];
        let t = self.tail_len;
        let mut put = |i: usize, byte: u8| blocks[i / 64][i % 64] = byte;
        for (i, byte) in nonce.to_le_bytes().into_iter().enumerate() {
            put(t + i, byte);
        }
        put(t + 8, u8::from(stronger_rng));
        put(t + NONCE_BYTES, 0x80);
        // The padding: 0x80, zeros, then the message length in bits, big-endian, ending
        // a block; one block if the 0x80 and the length fit after the tail, else two.
        let n = if t + NONCE_BYTES + 1 + 8 <= 64 { 1 } else { 2 };
        let bits = (self.len + NONCE_BYTES as u64) * 8;
        blocks[n - 1][56..].copy_from_slice(&bits.to_be_bytes());
        (blocks, n)
    }

    /// The honest unit vector into `out[..k_dim]` (f64, before f16 rounding), no allocation.
    /// The per-nonce SHA-256 digest seeds xoshiro256++ (all the entropy is in the digest;
    /// a ChaCha20 refill would make 256 bytes to use 96), and normals come from the
    /// Ziggurat method (table lookups, no trigonometry on the fast path).
    pub fn unit_into(&self, nonce: i64, stronger_rng: bool, out: &mut [f64]) {
        let out = &mut out[..self.k_dim];
        normals_into(self.seed(nonce, stronger_rng), self.zig, out);
        normalise(out);
    }

    /// The honest vector, rounded to f16.
    pub fn vector(&self, nonce: i64, stronger_rng: bool) -> Vector {
        let mut buf = vec![0.0f64; self.k_dim];
        self.unit_into(nonce, stronger_rng, &mut buf);
        to_f16(&buf)
    }
}

/// The SHA-256 digest of a final state: its words, big-endian.
fn digest_bytes(st: [u32; 8]) -> [u8; 32] {
    let mut digest = [0u8; 32];
    for (d, w) in digest.chunks_exact_mut(4).zip(st) {
        d.copy_from_slice(&w.to_be_bytes());
    }
    digest
}

/// `out[i]` = `unit[i]` rounded to f32, then to f16, as an (exact) f32: the components
/// [`to_f16`] would encode.
pub fn round_to_f16_values(unit: &[f64], out: &mut [f32]) {
    let k = unit.len().min(out.len());
    for (o, x) in out.iter_mut().zip(&unit[..k]) {
        *o = *x as f32;
    }
    crate::codec::round_f32_to_f16_slice(&mut out[..k]);
}

/// `out.len()` standard normals from the generator seeded with `seed`, exactly as
/// `rand_distr::StandardNormal` draws them one after another.
///
/// The Ziggurat's fast path (taken by ~99 % of draws: one `u64`, one table lookup, one
/// multiply, one compare) is written out here so the generator's state stays in
/// registers for the whole vector; it is the library's own arithmetic on the library's
/// own table. The first draw the fast path would reject sends the rest of the vector
/// to the library: the generator is re-seeded and advanced past the draws already made
/// (each fast draw consumes exactly one `u64`), so the library continues from the
/// identical state. Tested draw for draw against the library.
fn normals_into(seed: [u8; 32], x_tab: &[f64; 257], out: &mut [f64]) {
    let mut rng = Xoshiro256pp::from_seed(seed);
    for j in 0..out.len() {
        let bits = rng.next_u64();
        let i = (bits & 0xff) as usize;
        // rand's `into_float_with_exponent(1)`: a value in [2, 4), minus 3 → [-1, 1).
        let u = f64::from_bits((bits >> 12) | (1024u64 << 52)) - 3.0;
        let x = u * x_tab[i];
        if x.abs() < x_tab[i + 1] {
            out[j] = x;
            continue;
        }
        let mut rng = Xoshiro256pp::from_seed(seed);
        for _ in 0..j {
            rng.next_u64();
        }
        for o in &mut out[j..] {
            *o = rng.sample(rand_distr::StandardNormal);
        }
        return;
    }
}

/// `rand_distr`'s Ziggurat layer table for the standard normal (the `x` of each of the
/// 256 layers, then 0), read out of the library itself once per process, so the fast
/// path in [`normals_into`] is the library's to the bit, whatever version is linked.
///
/// How it is read: a scripted generator hands the sampler a first draw whose layer is `i`
/// and whose uniform is exactly 0.5 (mantissa bits `0b11` then zeros: 3.5 − 3), and then
/// uniforms just below 1 for the rare acceptance test. The sampler returns
/// `0.5 · x[i]`, exact in binary floating point, so `x[i]` is twice the sample. (Layer 0
/// is accepted on the fast path, as 0.5 · x[0] < x[1]; layer 255 through the acceptance
/// test, as its density is above the layer's bottom.) The table's last entry is 0 by the
/// algorithm's definition. [`tests::ziggurat_table_is_the_librarys`] checks the result.
fn ziggurat_x() -> &'static [f64; 257] {
    static TABLE: std::sync::OnceLock<[f64; 257]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        struct Scripted {
            first: Option<u64>,
        }
        impl RngCore for Scripted {
            fn next_u32(&mut self) -> u32 {
                (self.next_u64() >> 32) as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.first.take().unwrap_or(u64::MAX)
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                dest.fill(0xff);
            }
        }
        let half_mantissa = 3u64 << 50; // 1.75 · 2 = 3.5 in [2, 4)
        let mut t = [0.0f64; 257];
        for (i, x) in t.iter_mut().take(256).enumerate() {
            let mut rng = Scripted {
                first: Some((half_mantissa << 12) | i as u64),
            };
            let s: f64 = rng.sample(rand_distr::StandardNormal);
            *x = 2.0 * s;
        }
        t
    })
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
    use crate::codec::MAX_FAST_K;
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

    /// The seed as SHA-256 of the whole message, the straightforward way.
    fn seed_by_hasher(
        model: &str,
        block_hash: &str,
        public_key: &str,
        nonce: i64,
        stronger: bool,
    ) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        fn put(h: &mut Sha256, s: &str) {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        let mut h = Sha256::new();
        put(&mut h, "mlnode-sim/poc-v2-vector/1");
        put(&mut h, model);
        h.update(128u32.to_le_bytes());
        h.update(12u32.to_le_bytes());
        put(&mut h, block_hash);
        put(&mut h, public_key);
        h.update(nonce.to_le_bytes());
        h.update([u8::from(stronger)]);
        h.finalize().into()
    }

    /// Every tail length (0..64 bytes after the round's full blocks), both the one- and
    /// the two-block padding, several blocks of prefix: the midstate seed is SHA-256.
    #[test]
    fn seed_is_sha256_of_the_message_for_every_tail_length() {
        for len in 0..200 {
            let model = "m".repeat(len);
            let r = Round::new(&model, 128, 12, "TEST_BLOCK", "test_pub_keys");
            for (nonce, stronger) in [(0, false), (-1, true), (i64::MAX, false), (42, true)] {
                let want = seed_by_hasher(&model, "TEST_BLOCK", "test_pub_keys", nonce, stronger);
                assert_eq!(
                    r.seed(nonce, stronger),
                    want,
                    "model length {len}, nonce {nonce}"
                );
            }
        }
    }

    #[test]
    fn ziggurat_table_is_the_librarys() {
        let t = ziggurat_x();
        // Marsaglia & Tsang's 256-layer normal table: x[0] = v / f(r), x[1] = r.
        assert!((t[0] - 3.910_757_959_537_09).abs() < 1e-12, "{}", t[0]);
        assert!((t[1] - 3.654_152_885_361_009).abs() < 1e-12, "{}", t[1]);
        assert!(t.windows(2).all(|w| w[0] > w[1]), "layers shrink");
        assert_eq!(t[256], 0.0);
    }

    /// The library, one draw after another: what [`normals_into`] must equal.
    fn normals_by_library(seed: [u8; 32], k: usize) -> Vec<f64> {
        let mut rng = Xoshiro256pp::from_seed(seed);
        (0..k)
            .map(|_| rng.sample(rand_distr::StandardNormal))
            .collect()
    }

    /// Draw for draw against `rand_distr`, over enough vectors that the fallback (the
    /// first rejected draw, ~1 % of draws, and the base strip's tail) is taken often.
    #[test]
    fn normals_equal_the_librarys_draw_for_draw() {
        let round = key(0).round();
        let mut fallbacks = 0;
        for nonce in 0..20_000 {
            let seed = round.seed(nonce, false);
            for k in [1usize, 12, 64] {
                let want = normals_by_library(seed, k);
                let mut got = vec![0.0; k];
                normals_into(seed, ziggurat_x(), &mut got);
                let got_bits: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
                let want_bits: Vec<u64> = want.iter().map(|x| x.to_bits()).collect();
                assert_eq!(got_bits, want_bits, "nonce {nonce}, k {k}");
            }
            // Count the vectors whose 64 draws include a rejection (the slow path).
            let mut rng = Xoshiro256pp::from_seed(seed);
            let t = ziggurat_x();
            fallbacks += usize::from((0..64).any(|_| {
                let bits = rng.next_u64();
                let i = (bits & 0xff) as usize;
                let u = f64::from_bits((bits >> 12) | (1024u64 << 52)) - 3.0;
                (u * t[i]).abs() >= t[i + 1]
            }));
        }
        assert!(fallbacks > 1000, "the fallback was taken {fallbacks} times");
    }

    #[test]
    fn f16_values_are_the_vectors_components() {
        for k_dim in [1u32, 7, 12, 64] {
            let mut k = key(0);
            k.k_dim = k_dim;
            let r = k.round();
            for n in 0..200 {
                let k = k_dim as usize;
                let mut unit = [0.0f64; MAX_FAST_K];
                r.unit_into(n, false, &mut unit);
                let mut out = [0.0f32; MAX_FAST_K];
                round_to_f16_values(&unit[..k], &mut out[..k]);
                assert_eq!(&out[..k], &r.vector(n, false).to_f32()[..]);
            }
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
