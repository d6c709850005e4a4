//! The golden reference ("artifact") file (poc-math §4, validator.md "make-artifact").
//!
//! Loading checks everything `validate.py` checks and more, with errors that name the
//! key or the nonce: missing required key, wrong type, empty `artifacts`, a vector that
//! is not base64, decodes to the wrong length or holds non-finite values, and duplicate
//! nonces. Unknown keys are kept and written back. Saving uses `make_artifact.py`'s key
//! order, `indent=2` and a trailing newline.

use std::collections::HashSet;
use std::path::Path;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use serde_json::{Map, Value};

use crate::codec::{DecodeError, Vector};
use crate::wire::{Artifact, Encoding, StatTestOverrides};

/// A reference that could not be used, naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("top level must be a JSON object")]
    NotAnObject,
    #[error("missing required key '{0}'")]
    MissingKey(&'static str),
    #[error("key '{key}' must be {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("'artifacts' is empty: a reference needs at least one vector")]
    EmptyArtifacts,
    #[error("artifacts[{index}]: {reason}")]
    BadArtifact { index: usize, reason: String },
    #[error("bad vector at nonce {nonce}: {source}")]
    BadVector { nonce: i64, source: DecodeError },
    #[error("bad vector at nonce {nonce}: non-finite component (NaN or Inf)")]
    NonFinite { nonce: i64 },
    #[error("duplicate nonce {0}")]
    DuplicateNonce(i64),
}

/// A golden reference, in `make_artifact.py`'s key order: serde writes the fields in
/// declaration order (the order is spelled once, here), `stat_test`, `notes` and unknown
/// keys follow `encoding`, and `artifacts` comes last. Optional keys keep their absence
/// (`None`), so a file round-trips.
///
/// Reading is a hand-written map visitor ([`Deserialize`] below), not a derive: a derive
/// with `#[serde(flatten)]` for `extra` buffers the whole document as an untyped tree
/// before it builds the struct, which at 20,000 vectors was most of the validator's time
/// and memory. The visitor streams each key straight into its typed field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reference {
    pub model: String,
    pub seq_len: u32,
    pub k_dim: u32,
    pub block_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_height: Option<i64>,
    pub public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dist_threshold: Option<f64>,
    /// `Some(None)` is an explicit `null` (make_artifact.py without `--batch-size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_batch_size: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// The raw `stat_test` object (hand-added in committed references); its values must be
    /// numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat_test: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Value>,
    /// Keys this format does not know, in file order.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    pub artifacts: Vec<Artifact>,
}

/// A positive `u32` (the check runs inside the value, so an error names its key).
struct Positive(u32);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v == 0 {
            return Err(D::Error::custom("must be positive"));
        }
        Ok(Positive(v))
    }
}

/// A positive `u32` or `null`.
struct BatchSize(Option<u32>);

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Option::<u32>::deserialize(d)?;
        if v == Some(0) {
            return Err(D::Error::custom("must be positive"));
        }
        Ok(BatchSize(v))
    }
}

/// The `stat_test` object: its known values must be numbers.
struct StatTestBlock(Map<String, Value>);

impl<'de> Deserialize<'de> for StatTestBlock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Map::<String, Value>::deserialize(d)?;
        for key in ["p_mismatch", "fraud_threshold", "dist_threshold"] {
            if m.get(key).is_some_and(|v| !v.is_number()) {
                return Err(D::Error::custom("values must be numbers"));
            }
        }
        Ok(StatTestBlock(m))
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ReferenceVisitor)
    }
}

struct ReferenceVisitor;

impl<'de> serde::de::Visitor<'de> for ReferenceVisitor {
    type Value = Reference;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a reference object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Reference, A::Error> {
        use serde::de::Error as _;
        /// Set a field once; a second occurrence is an error, as a derive makes it.
        fn once<T, E: serde::de::Error>(
            slot: &mut Option<T>,
            key: &'static str,
            v: T,
        ) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::duplicate_field(key));
            }
            *slot = Some(v);
            Ok(())
        }
        let mut model = None;
        let mut seq_len = None;
        let mut k_dim = None;
        let mut block_hash = None;
        let mut block_height = None;
        let mut public_key = None;
        let mut node_id = None;
        let mut node_count = None;
        let mut dist_threshold = None;
        let mut collection_batch_size = None;
        let mut additional_args = None;
        let mut source = None;
        let mut generated_at = None;
        let mut encoding = None;
        let mut stat_test = None;
        let mut notes = None;
        let mut artifacts = None;
        let mut extra = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "model" => once(&mut model, "model", map.next_value::<String>()?)?,
                "seq_len" => once(&mut seq_len, "seq_len", map.next_value::<Positive>()?.0)?,
                "k_dim" => once(&mut k_dim, "k_dim", map.next_value::<Positive>()?.0)?,
                "block_hash" => once(&mut block_hash, "block_hash", map.next_value::<String>()?)?,
                "block_height" => once(
                    &mut block_height,
                    "block_height",
                    map.next_value::<Option<i64>>()?,
                )?,
                "public_key" => once(&mut public_key, "public_key", map.next_value::<String>()?)?,
                "node_id" => once(&mut node_id, "node_id", map.next_value::<Option<i64>>()?)?,
                "node_count" => once(
                    &mut node_count,
                    "node_count",
                    map.next_value::<Option<i64>>()?,
                )?,
                "dist_threshold" => once(
                    &mut dist_threshold,
                    "dist_threshold",
                    map.next_value::<Option<f64>>()?,
                )?,
                "collection_batch_size" => once(
                    &mut collection_batch_size,
                    "collection_batch_size",
                    map.next_value::<BatchSize>()?.0,
                )?,
                "additional_args" => once(
                    &mut additional_args,
                    "additional_args",
                    map.next_value::<Option<Vec<String>>>()?,
                )?,
                "source" => once(&mut source, "source", map.next_value::<Option<String>>()?)?,
                "generated_at" => once(
                    &mut generated_at,
                    "generated_at",
                    map.next_value::<Option<String>>()?,
                )?,
                "encoding" => once(
                    &mut encoding,
                    "encoding",
                    map.next_value::<Option<Encoding>>()?,
                )?,
                "stat_test" => once(
                    &mut stat_test,
                    "stat_test",
                    map.next_value::<StatTestBlock>()?.0,
                )?,
                "notes" => once(&mut notes, "notes", map.next_value::<Option<Value>>()?)?,
                "artifacts" => once(
                    &mut artifacts,
                    "artifacts",
                    map.next_value::<Vec<Artifact>>()?,
                )?,
                _ => {
                    let v = map.next_value::<Value>()?;
                    if extra.insert(key.clone(), v).is_some() {
                        return Err(A::Error::custom(format!("duplicate field `{key}`")));
                    }
                }
            }
        }
        Ok(Reference {
            model: model.ok_or_else(|| A::Error::missing_field("model"))?,
            seq_len: seq_len.ok_or_else(|| A::Error::missing_field("seq_len"))?,
            k_dim: k_dim.ok_or_else(|| A::Error::missing_field("k_dim"))?,
            block_hash: block_hash.ok_or_else(|| A::Error::missing_field("block_hash"))?,
            block_height: block_height.flatten(),
            public_key: public_key.ok_or_else(|| A::Error::missing_field("public_key"))?,
            node_id: node_id.flatten(),
            node_count: node_count.flatten(),
            dist_threshold: dist_threshold.flatten(),
            collection_batch_size,
            additional_args: additional_args.flatten(),
            source: source.flatten(),
            generated_at: generated_at.flatten(),
            encoding: encoding.flatten(),
            stat_test,
            notes: notes.flatten(),
            extra,
            artifacts: artifacts.ok_or_else(|| A::Error::missing_field("artifacts"))?,
        })
    }
}

/// What each key must be, for errors that name it.
const EXPECTED: [(&str, &str); 16] = [
    ("model", "a string"),
    ("seq_len", "a positive integer"),
    ("k_dim", "a positive integer"),
    ("block_hash", "a string"),
    ("block_height", "an integer"),
    ("public_key", "a string"),
    ("node_id", "an integer"),
    ("node_count", "an integer"),
    ("dist_threshold", "a number"),
    ("collection_batch_size", "a positive integer or null"),
    ("additional_args", "a list of strings"),
    ("source", "a string"),
    ("generated_at", "a string"),
    ("encoding", "an object {dtype, k_dim, endian}"),
    ("stat_test", "an object of numbers"),
    ("artifacts", "a list of {nonce, vector_b64}"),
];

/// The required keys, as validate.py lists them.
const REQUIRED: [&str; 6] = [
    "model",
    "seq_len",
    "k_dim",
    "block_hash",
    "public_key",
    "artifacts",
];

/// A serde error, named: the key (or the artifact's index) and what it must be.
fn named(e: serde_path_to_error::Error<serde_json::Error>) -> ReferenceError {
    use serde_path_to_error::Segment;
    let inner = e.inner();
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        return ReferenceError::Json(inner.to_string());
    }
    let segments: Vec<&Segment> = e.path().iter().collect();
    let msg = inner.to_string();
    match segments.as_slice() {
        [] => {
            if let Some(key) = REQUIRED
                .iter()
                .find(|k| msg.starts_with(&format!("missing field `{k}`")))
            {
                ReferenceError::MissingKey(key)
            } else if msg.starts_with("invalid type") {
                ReferenceError::NotAnObject
            } else {
                ReferenceError::Json(msg)
            }
        }
        [Segment::Map { key }, Segment::Seq { index }, rest @ ..] if key == "artifacts" => {
            let field = match rest.first() {
                Some(Segment::Map { key }) => format!("'{key}': "),
                _ => String::new(),
            };
            let reason = if msg.starts_with("missing field") {
                msg.replace('`', "'")
            } else {
                format!("{field}{}", msg.split(" at line").next().unwrap_or(&msg))
            };
            ReferenceError::BadArtifact {
                index: *index,
                reason,
            }
        }
        [Segment::Map { key }, ..] => match EXPECTED.iter().find(|(k, _)| k == key) {
            Some((key, expected)) => ReferenceError::WrongType { key, expected },
            None => ReferenceError::Json(msg),
        },
        _ => ReferenceError::Json(msg),
    }
}

impl Reference {
    /// Read and check a reference file.
    ///
    /// Streamed from the file (buffered), never held as one string: at 20,000 vectors the
    /// text would be a third of the validator's peak memory.
    pub fn load(path: &Path) -> Result<Self, ReferenceError> {
        let file = std::fs::File::open(path).map_err(|source| ReferenceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let reader = std::io::BufReader::with_capacity(64 * 1024, file);
        Self::from_deserializer(serde_json::Deserializer::from_reader(reader))
    }

    /// Parse and check a reference from JSON text.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        Self::from_deserializer(serde_json::Deserializer::from_str(text))
    }

    fn from_deserializer<'de, R: serde_json::de::Read<'de>>(
        mut de: serde_json::Deserializer<R>,
    ) -> Result<Self, ReferenceError> {
        let reference: Reference = serde_path_to_error::deserialize(&mut de).map_err(named)?;
        de.end().map_err(|e| ReferenceError::Json(e.to_string()))?;
        if reference.artifacts.is_empty() {
            return Err(ReferenceError::EmptyArtifacts);
        }
        reference.check_vectors()?;
        Ok(reference)
    }

    /// Every vector decodes to `k_dim` finite values, and no nonce appears twice.
    pub fn check_vectors(&self) -> Result<(), ReferenceError> {
        let mut seen = HashSet::with_capacity(self.artifacts.len());
        for a in &self.artifacts {
            let v = Vector::decode(&a.vector_b64, self.k_dim as usize).map_err(|source| {
                ReferenceError::BadVector {
                    nonce: a.nonce,
                    source,
                }
            })?;
            if !v.all_finite() {
                return Err(ReferenceError::NonFinite { nonce: a.nonce });
            }
            if !seen.insert(a.nonce) {
                return Err(ReferenceError::DuplicateNonce(a.nonce));
            }
        }
        Ok(())
    }

    pub fn block_height_or_default(&self) -> i64 {
        self.block_height.unwrap_or(100)
    }
    pub fn node_id_or_default(&self) -> i64 {
        self.node_id.unwrap_or(0)
    }
    pub fn node_count_or_default(&self) -> i64 {
        self.node_count.unwrap_or(1)
    }

    /// The stat-test layer this reference contributes: top-level `dist_threshold`,
    /// `stat_test.p_mismatch`, `stat_test.fraud_threshold`. `stat_test.dist_threshold` is
    /// ignored, as `validate.py` ignores it.
    pub fn stat_test_overrides(&self) -> StatTestOverrides {
        let get = |k: &str| {
            self.stat_test
                .as_ref()
                .and_then(|st| st.get(k))
                .and_then(Value::as_f64)
        };
        StatTestOverrides {
            dist_threshold: self.dist_threshold,
            p_mismatch: get("p_mismatch"),
            fraud_threshold: get("fraud_threshold"),
        }
    }

    /// The nonces in file order.
    pub fn nonces(&self) -> Vec<i64> {
        self.artifacts.iter().map(|a| a.nonce).collect()
    }

    /// The JSON object, in `make_artifact.py` key order (the struct's).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Pretty JSON (2-space indent) with a trailing newline, as `make_artifact.py` writes it.
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_value()).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN: &str = include_str!("../../artifacts/qwen-qwen3-32b-fp8.json");
    const MINIMAX: &str = include_str!("../../artifacts/minimaxai-minimax-m2.7.json");

    #[test]
    fn real_references_load() {
        let q = Reference::parse(QWEN).unwrap();
        assert_eq!(q.model, "Qwen/Qwen3-32B-FP8");
        assert_eq!((q.seq_len, q.k_dim, q.artifacts.len()), (128, 12, 32));
        assert_eq!(q.stat_test, None);
        assert_eq!(q.dist_threshold, Some(0.2));
        assert!(q.notes.is_some());
        let m = Reference::parse(MINIMAX).unwrap();
        assert_eq!(m.artifacts.len(), 200);
        assert_eq!(m.additional_args.as_ref().map(Vec::len), Some(18));
        let o = m.stat_test_overrides();
        assert_eq!(
            (o.dist_threshold, o.p_mismatch, o.fraud_threshold),
            (Some(0.75), Some(0.1), Some(0.05))
        );
        assert_eq!(m.public_key, "test_pub_keys_v2");
    }

    #[test]
    fn minimax_saves_byte_identical() {
        // The MiniMax file is make_artifact.py output (plus a hand-added stat_test placed
        // after dist_threshold); compare as JSON values and check the layout conventions.
        let m = Reference::parse(MINIMAX).unwrap();
        let again = Reference::parse(&m.to_json_pretty()).unwrap();
        assert_eq!(m, again);
        assert!(m.to_json_pretty().ends_with("}\n"));
    }

    fn with(f: impl Fn(&mut Map<String, Value>)) -> String {
        let mut v: Value = serde_json::from_str(QWEN).unwrap();
        f(v.as_object_mut().unwrap());
        v.to_string()
    }

    #[test]
    fn named_errors() {
        let e = Reference::parse(&with(|m| {
            m.remove("block_hash");
        }))
        .unwrap_err();
        assert_eq!(e.to_string(), "missing required key 'block_hash'");

        let e = Reference::parse(&with(|m| {
            m.insert("artifacts".into(), Value::Array(vec![]));
        }))
        .unwrap_err();
        assert!(matches!(e, ReferenceError::EmptyArtifacts));

        let e = Reference::parse(&with(|m| {
            m["artifacts"][3]["vector_b64"] = Value::from("%%%");
        }))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad vector at nonce 3: invalid base64"),
            "{e}"
        );

        let e = Reference::parse(&with(|m| {
            m["artifacts"][4]["vector_b64"] = Value::from("ADw=");
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad vector at nonce 4: wrong length: decoded 1 f16 values, expected k_dim=12"
        );

        let e = Reference::parse(&with(|m| {
            m["artifacts"][5]["nonce"] = Value::from(4);
        }))
        .unwrap_err();
        assert_eq!(e.to_string(), "duplicate nonce 4");

        // 0x7C00 = +Inf in f16.
        let inf = Vector(vec![half::f16::INFINITY; 12]).encode();
        let e = Reference::parse(&with(|m| {
            m["artifacts"][6]["vector_b64"] = Value::from(inf.clone());
        }))
        .unwrap_err();
        assert!(matches!(e, ReferenceError::NonFinite { nonce: 6 }));

        let e = Reference::parse(&with(|m| {
            m.insert("seq_len".into(), Value::from("128"));
        }))
        .unwrap_err();
        assert_eq!(e.to_string(), "key 'seq_len' must be a positive integer");

        assert!(matches!(
            Reference::parse("[1]"),
            Err(ReferenceError::NotAnObject)
        ));
        assert!(matches!(
            Reference::parse("{"),
            Err(ReferenceError::Json(_))
        ));
    }

    #[test]
    fn unknown_keys_are_kept_and_key_order_is_make_artifacts() {
        let text = with(|m| {
            m.insert("operator".into(), Value::from("me"));
        });
        let r = Reference::parse(&text).unwrap();
        assert_eq!(r.extra.get("operator"), Some(&Value::from("me")));
        let out = r.to_json_pretty();
        assert!(out.contains("\"operator\": \"me\""));
        let keys: Vec<String> = match serde_json::from_str::<Value>(&out).unwrap() {
            Value::Object(m) => m.keys().cloned().collect(),
            _ => unreachable!(),
        };
        assert_eq!(keys.first().map(String::as_str), Some("model"));
        assert_eq!(keys.last().map(String::as_str), Some("artifacts"));
        let pos = |k: &str| keys.iter().position(|x| x == k).unwrap();
        assert!(pos("seq_len") < pos("k_dim") && pos("k_dim") < pos("block_hash"));
        assert!(pos("node_count") < pos("dist_threshold"));
        assert!(pos("additional_args") < pos("source"));
    }
}
