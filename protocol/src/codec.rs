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

#[cfg(test)]
mod tests {
    use super::*;

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
