//! The f16 little-endian base64 vector codec (poc-math §1.6).
//!
//! A PoC v2 vector is `k_dim` IEEE-754 half floats, serialised little-endian and
//! encoded with the *standard* base64 alphabet with padding. With `k_dim = 12`
//! that is 24 bytes, i.e. exactly 32 base64 characters and no `=`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use half::f16;

/// Default vector dimension used by every production node.
pub const DEFAULT_K_DIM: usize = 12;

/// Why a base64 payload could not be turned into a vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid base64: {0}")]
    InvalidBase64(String),
    #[error("odd byte count {0}: an f16 vector needs an even number of bytes")]
    OddByteCount(usize),
    #[error("wrong length: decoded {got} f16 values, expected k_dim={expected}")]
    WrongLength { got: usize, expected: usize },
}

/// A decoded vector: its f16 components, kept exactly as they were on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector(pub Vec<f16>);

impl Vector {
    /// Round f32 components to f16 (round-to-nearest-even, like `numpy.astype('<f2')`).
    pub fn from_f32(values: &[f32]) -> Self {
        Vector(values.iter().map(|&v| f16::from_f32(v)).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Components widened to f32, as `decode_vector` does on the node.
    pub fn to_f32(&self) -> Vec<f32> {
        self.0.iter().map(|v| v.to_f32()).collect()
    }

    /// Little-endian f16 bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 2);
        for v in &self.0 {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Standard base64 (padded) of the little-endian f16 bytes.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.to_le_bytes())
    }

    /// Decode a payload of any even length (no `k_dim` check).
    pub fn decode_any(b64: &str) -> Result<Self, DecodeError> {
        let bytes = STANDARD
            .decode(b64)
            .map_err(|e| DecodeError::InvalidBase64(e.to_string()))?;
        Self::from_le_bytes(&bytes)
    }

    /// Decode and require exactly `k_dim` components.
    pub fn decode(b64: &str, k_dim: usize) -> Result<Self, DecodeError> {
        let v = Self::decode_any(b64)?;
        if v.len() != k_dim {
            return Err(DecodeError::WrongLength {
                got: v.len(),
                expected: k_dim,
            });
        }
        Ok(v)
    }

    /// Parse little-endian f16 bytes.
    pub fn from_le_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() % 2 != 0 {
            return Err(DecodeError::OddByteCount(bytes.len()));
        }
        Ok(Vector(
            bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ))
    }

    /// True when every component is finite (no NaN, no ±Inf: exponent ≠ 31).
    pub fn all_finite(&self) -> bool {
        self.0.iter().all(|v| v.is_finite())
    }

    /// Euclidean norm computed in f32.
    pub fn norm(&self) -> f32 {
        self.0
            .iter()
            .map(|v| {
                let x = v.to_f32();
                x * x
            })
            .sum::<f32>()
            .sqrt()
    }
}

/// Exact f16 → f32 from raw bits, branch-light (the `half` crate's portable path is
/// several times slower without F16C). Every f16 value, NaN payloads aside, converts to
/// the same f32 as `half::f16::to_f32`.
#[inline]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from(h >> 10) & 0x1f;
    let man = u32::from(h & 0x03ff);
    let bits = if exp == 0 {
        if man == 0 {
            sign
        } else {
            // Subnormal: value = man · 2^-24, exact in f32.
            return f32::from_bits(sign)
                + (man as f32) * f32::from_bits(0x3380_0000) * if sign != 0 { -1.0 } else { 1.0 };
        }
    } else if exp == 0x1f {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 112) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

/// `x` rounded to the nearest f16 (ties to even), as the exact f32 of that f16: the same
/// value as `half::f16::from_f32(x).to_f32()` for every f32 (checked over all 2³² of
/// them), in a few integer operations and no table. Without F16C in the compile target,
/// `half` converts one value per call through its runtime-detected path; this is the
/// simulator's per-component cost of rounding its own vectors.
#[inline]
pub fn round_f32_to_f16(x: f32) -> f32 {
    if x.abs() < 65504.0 {
        round_in_f16_range(x)
    } else {
        round_f32_to_f16_rare(x)
    }
}

/// [`round_f32_to_f16`] for `|x| < 65504`, branch-free (both ranges computed, one
/// selected) so that a loop over it vectorises.
#[inline]
fn round_in_f16_range(x: f32) -> f32 {
    let a = x.abs();
    // f16's normal range: keep 10 of f32's 23 mantissa bits, rounding to nearest even on
    // bit 13 (a carry into the exponent is the right answer).
    let b = x.to_bits();
    let normal = f32::from_bits((b + 0x0fff + ((b >> 13) & 1)) & !0x1fff);
    // f16's subnormals are the multiples of 2⁻²⁴, which is the spacing of f32 in
    // [0.5, 1): the addition rounds there (to nearest even), the subtraction is exact.
    let subnormal = ((a + 0.5) - 0.5).copysign(x);
    if a >= f32::from_bits(0x3880_0000) {
        normal
    } else {
        subnormal
    }
}

/// [`round_f32_to_f16`] over a slice, in place: one range check for the whole slice,
/// then the branch-free rounding per value (the rare values — 65504 and beyond, NaN —
/// send the slice through the scalar function).
pub fn round_f32_to_f16_slice(xs: &mut [f32]) {
    let in_range = xs.iter().fold(true, |ok, x| ok & (x.abs() < 65504.0));
    if in_range {
        xs.iter_mut().for_each(|x| *x = round_in_f16_range(*x));
    } else {
        xs.iter_mut().for_each(|x| *x = round_f32_to_f16(*x));
    }
}

/// 65504 and beyond (overflow to infinity), infinities and NaNs.
#[cold]
#[inline(never)]
fn round_f32_to_f16_rare(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// Largest `k_dim` the stack-buffer fast path handles.
pub const MAX_FAST_K: usize = 64;

const INVALID: u8 = 0xff;

/// Standard alphabet → 6-bit values.
const DECODE_TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Strict standard base64 for the common case: no padding, length a multiple of 4, every
/// symbol in the alphabet. Anything else returns `None` and takes the `base64` crate's
/// path, so accepted inputs and error messages are exactly the crate's.
#[inline]
fn decode_unpadded(input: &[u8], out: &mut [u8]) -> Option<usize> {
    if input.len() % 4 != 0 || input.len() / 4 * 3 > out.len() {
        return None;
    }
    let mut n = 0;
    for q in input.chunks_exact(4) {
        let a = DECODE_TABLE[q[0] as usize];
        let b = DECODE_TABLE[q[1] as usize];
        let c = DECODE_TABLE[q[2] as usize];
        let d = DECODE_TABLE[q[3] as usize];
        if (a | b | c | d) == INVALID || ((a | b | c | d) & 0xc0) != 0 {
            return None;
        }
        let v = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        out[n] = (v >> 16) as u8;
        out[n + 1] = (v >> 8) as u8;
        out[n + 2] = v as u8;
        n += 3;
    }
    Some(n)
}

/// Decode base64 f16 straight into `out` (f32) with no heap allocation. Returns the
/// number of components. `out` must hold at least `MAX_FAST_K` values.
pub fn decode_into(b64: &str, out: &mut [f32; MAX_FAST_K]) -> Result<usize, DecodeError> {
    let mut buf = [0u8; MAX_FAST_K * 2 + 3];
    let n = match decode_unpadded(b64.as_bytes(), &mut buf) {
        Some(n) => n,
        None => STANDARD
            .decode_slice(b64.as_bytes(), &mut buf)
            .map_err(|e| DecodeError::InvalidBase64(e.to_string()))?,
    };
    if n % 2 != 0 {
        return Err(DecodeError::OddByteCount(n));
    }
    for (i, c) in buf[..n].chunks_exact(2).enumerate() {
        out[i] = f16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
    Ok(n / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_half(bits: u32) {
        let x = f32::from_bits(bits);
        let want = f16::from_f32(x).to_f32();
        let got = round_f32_to_f16(x);
        if want.is_nan() {
            assert!(got.is_nan(), "{bits:#010x}");
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "{bits:#010x} ({x:e})");
        }
    }

    /// The cases where rounding can go wrong: every f16 value and every halfway point
    /// between neighbours, with the f32s a few ulps either side, and a stride through
    /// all f32 bit patterns.
    #[test]
    fn round_to_f16_is_halfs_at_every_boundary() {
        for h in 0..=u16::MAX {
            let v = f16::from_bits(h).to_f32();
            let next = f16::from_bits(h.wrapping_add(1)).to_f32();
            let mut centres = vec![v.to_bits()];
            if v.is_finite() && next.is_finite() && (next > v) == (v >= 0.0) {
                // The midpoint has 12 significant bits: exact in f32.
                centres.push((((f64::from(v) + f64::from(next)) / 2.0) as f32).to_bits());
            }
            for c in centres {
                for d in -3i32..=3 {
                    same_as_half(c.wrapping_add_signed(d));
                }
            }
        }
        for bits in (0..=u32::MAX).step_by(4099) {
            same_as_half(bits);
        }
    }

    #[test]
    fn round_to_f16_slice_is_the_scalar() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0usize, 1, 5, 12, 64] {
            for _ in 0..2000 {
                let v: Vec<f32> = (0..len)
                    .map(|_| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        f32::from_bits(rng as u32)
                    })
                    .collect();
                // Mostly in range (the vectorised path), sometimes not.
                let mut small: Vec<f32> = v.iter().map(|x| x % 2.0).collect();
                for xs in [&mut small, &mut v.clone()] {
                    let want: Vec<u32> =
                        xs.iter().map(|x| round_f32_to_f16(*x).to_bits()).collect();
                    round_f32_to_f16_slice(xs);
                    let got: Vec<u32> = xs.iter().map(|x| x.to_bits()).collect();
                    let same = want.iter().zip(&got).all(|(w, g)| {
                        w == g || (f32::from_bits(*w).is_nan() && f32::from_bits(*g).is_nan())
                    });
                    assert!(same, "{want:x?} vs {got:x?}");
                }
            }
        }
    }

    /// All 2³² f32 values; about 10 s in release: `cargo test --release -p
    /// mlnode-protocol -- --ignored round_to_f16_exhaustive`.
    #[test]
    #[ignore = "exhaustive, run in release"]
    fn round_to_f16_exhaustive() {
        for bits in 0..=u32::MAX {
            same_as_half(bits);
        }
    }

    #[test]
    fn fast_conversion_is_exact_for_every_f16() {
        for bits in 0..=u16::MAX {
            let want = f16::from_bits(bits).to_f32();
            let got = f16_bits_to_f32(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{bits:#06x}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn fast_base64_agrees_with_the_crate() {
        let mut out = [0u8; 200];
        for len in [0usize, 3, 6, 24, 30, 96] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let s = STANDARD.encode(&bytes);
            match decode_unpadded(s.as_bytes(), &mut out) {
                Some(n) => assert_eq!(&out[..n], &bytes[..]),
                None => assert!(s.ends_with('='), "only padded input leaves the fast path"),
            }
        }
        for bad in ["AB$D", "ABC=", "ABCDE", "AB\u{e9}D", "ABCD====", "AB-_"] {
            let fast = decode_unpadded(bad.as_bytes(), &mut out);
            assert!(fast.is_none(), "{bad}");
        }
    }

    #[test]
    fn decode_into_matches_decode() {
        let v = Vector::from_f32(&[0.5, -0.25, 1e-6, 3.0]);
        let mut out = [0.0f32; MAX_FAST_K];
        assert_eq!(decode_into(&v.encode(), &mut out).unwrap(), 4);
        assert_eq!(&out[..4], &v.to_f32()[..]);
        assert!(decode_into("AAAA", &mut out).is_err());
        let too_long = Vector::from_f32(&[0.0; MAX_FAST_K + 8]).encode();
        assert!(decode_into(&too_long, &mut out).is_err());
    }

    #[test]
    fn k12_is_24_bytes_and_32_chars_without_padding() {
        let v = Vector::from_f32(&[0.5; 12]);
        let s = v.encode();
        assert_eq!(s.len(), 32);
        assert!(!s.contains('='));
        assert_eq!(Vector::decode(&s, 12).unwrap(), v);
    }

    #[test]
    fn real_reference_vector_decodes_to_known_values() {
        // poc-math §4: Qwen-32B nonce 0.
        let v = Vector::decode("TivmNnywzLR7L8wuYqfXLwU4iDdPtqyx", 12).unwrap();
        let f = v.to_f32();
        let expected = [
            0.057068, 0.431152, -0.140137, -0.299805, 0.116882, 0.106201, -0.028839, 0.122498,
            0.502441, 0.470703, -0.394287, -0.177246,
        ];
        for (a, b) in f.iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!((v.norm() - 1.0).abs() < 1e-3);
    }

    #[test]
    fn little_endian_byte_order() {
        // 1.0 in f16 is 0x3C00 → bytes [0x00, 0x3C].
        let v = Vector::from_f32(&[1.0]);
        assert_eq!(v.to_le_bytes(), vec![0x00, 0x3C]);
        assert_eq!(v.encode(), "ADw=");
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(
            Vector::decode("!!!not base64!!!", 12),
            Err(DecodeError::InvalidBase64(_))
        ));
        assert_eq!(Vector::decode_any("AAA=").unwrap().len(), 1);
        assert_eq!(
            Vector::decode_any("AAAA"),
            Err(DecodeError::OddByteCount(3))
        );
        assert_eq!(
            Vector::decode("ADw=", 12),
            Err(DecodeError::WrongLength {
                got: 1,
                expected: 12
            })
        );
    }

    #[test]
    fn non_finite_is_detected() {
        let v = Vector(vec![f16::from_f32(0.1), f16::NAN]);
        assert!(!v.all_finite());
        let v = Vector(vec![f16::INFINITY]);
        assert!(!v.all_finite());
        assert!(Vector::from_f32(&[0.0, -0.0, 1e-7]).all_finite());
    }
}
