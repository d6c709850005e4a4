//! The golden reference ("artifact") file (poc-math §4, validator.md "make-artifact").
//!
//! Loading checks everything `validate.py` checks and more, with errors that name the
//! key or the nonce: missing required key, wrong type, empty `artifacts`, a vector that
//! is not base64, decodes to the wrong length or holds non-finite values, and duplicate
//! nonces. Unknown keys are kept and written back. Saving uses `make_artifact.py`'s key
//! order, `indent=2` and a trailing newline.

use std::collections::HashSet;
use std::path::Path;

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

/// A golden reference. Optional keys keep their absence (`None`), so a file round-trips.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub model: String,
    pub seq_len: u32,
    pub k_dim: u32,
    pub block_hash: String,
    pub block_height: Option<i64>,
    pub public_key: String,
    pub node_id: Option<i64>,
    pub node_count: Option<i64>,
    pub dist_threshold: Option<f64>,
    /// The raw `stat_test` object (hand-added in committed references).
    pub stat_test: Option<Map<String, Value>>,
    pub collection_batch_size: Option<Option<u32>>,
    pub additional_args: Option<Vec<String>>,
    pub source: Option<String>,
    pub notes: Option<Value>,
    pub generated_at: Option<String>,
    pub encoding: Option<Encoding>,
    pub artifacts: Vec<Artifact>,
    /// Keys this format does not know, in file order.
    pub extra: Map<String, Value>,
}

/// `make_artifact.py`'s key order.
const KEY_ORDER: [&str; 15] = [
    "model",
    "seq_len",
    "k_dim",
    "block_hash",
    "block_height",
    "public_key",
    "node_id",
    "node_count",
    "dist_threshold",
    "collection_batch_size",
    "additional_args",
    "source",
    "generated_at",
    "encoding",
    "artifacts",
];

fn req<'a>(m: &'a Map<String, Value>, key: &'static str) -> Result<&'a Value, ReferenceError> {
    m.get(key).ok_or(ReferenceError::MissingKey(key))
}

fn as_str(v: &Value, key: &'static str) -> Result<String, ReferenceError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or(ReferenceError::WrongType {
            key,
            expected: "a string",
        })
}

fn as_i64(v: &Value, key: &'static str) -> Result<i64, ReferenceError> {
    v.as_i64().ok_or(ReferenceError::WrongType {
        key,
        expected: "an integer",
    })
}

fn as_u32(v: &Value, key: &'static str) -> Result<u32, ReferenceError> {
    v.as_u64()
        .and_then(|x| u32::try_from(x).ok())
        .filter(|&x| x > 0)
        .ok_or(ReferenceError::WrongType {
            key,
            expected: "a positive integer",
        })
}

fn opt<T>(
    m: &Map<String, Value>,
    key: &'static str,
    f: impl Fn(&Value, &'static str) -> Result<T, ReferenceError>,
) -> Result<Option<T>, ReferenceError> {
    m.get(key).map(|v| f(v, key)).transpose()
}

impl Reference {
    /// Read and check a reference file.
    pub fn load(path: &Path) -> Result<Self, ReferenceError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReferenceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parse and check a reference from JSON text.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ReferenceError::Json(e.to_string()))?;
        let Value::Object(mut m) = value else {
            return Err(ReferenceError::NotAnObject);
        };
        let artifacts = parse_artifacts(req(&m, "artifacts")?)?;
        let reference = Reference {
            model: as_str(req(&m, "model")?, "model")?,
            seq_len: as_u32(req(&m, "seq_len")?, "seq_len")?,
            k_dim: as_u32(req(&m, "k_dim")?, "k_dim")?,
            block_hash: as_str(req(&m, "block_hash")?, "block_hash")?,
            public_key: as_str(req(&m, "public_key")?, "public_key")?,
            block_height: opt(&m, "block_height", as_i64)?,
            node_id: opt(&m, "node_id", as_i64)?,
            node_count: opt(&m, "node_count", as_i64)?,
            dist_threshold: opt(&m, "dist_threshold", |v, key| {
                v.as_f64().ok_or(ReferenceError::WrongType {
                    key,
                    expected: "a number",
                })
            })?,
            stat_test: opt(&m, "stat_test", |v, key| {
                v.as_object().cloned().ok_or(ReferenceError::WrongType {
                    key,
                    expected: "an object",
                })
            })?,
            collection_batch_size: opt(&m, "collection_batch_size", |v, key| {
                if v.is_null() {
                    Ok(None)
                } else {
                    as_u32(v, key).map(Some)
                }
            })?,
            additional_args: opt(&m, "additional_args", |v, key| {
                serde_json::from_value::<Vec<String>>(v.clone()).map_err(|_| {
                    ReferenceError::WrongType {
                        key,
                        expected: "a list of strings",
                    }
                })
            })?,
            source: opt(&m, "source", as_str)?,
            notes: m.get("notes").cloned(),
            generated_at: opt(&m, "generated_at", as_str)?,
            encoding: opt(&m, "encoding", |v, key| {
                serde_json::from_value::<Encoding>(v.clone()).map_err(|_| {
                    ReferenceError::WrongType {
                        key,
                        expected: "an object {dtype, k_dim, endian}",
                    }
                })
            })?,
            artifacts,
            extra: Map::new(),
        };
        if let Some(st) = &reference.stat_test {
            for key in ["p_mismatch", "fraud_threshold", "dist_threshold"] {
                if let Some(v) = st.get(key) {
                    if !v.is_number() {
                        return Err(ReferenceError::WrongType {
                            key: "stat_test",
                            expected: "an object of numbers",
                        });
                    }
                }
            }
        }
        for key in KEY_ORDER.iter().chain(&["stat_test", "notes"]) {
            m.remove(*key);
        }
        let mut reference = reference;
        reference.extra = m;
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

    /// JSON object in `make_artifact.py` key order; `stat_test`, `notes` and unknown keys
    /// follow `encoding`, and `artifacts` comes last.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("model".into(), Value::from(self.model.clone()));
        m.insert("seq_len".into(), Value::from(self.seq_len));
        m.insert("k_dim".into(), Value::from(self.k_dim));
        m.insert("block_hash".into(), Value::from(self.block_hash.clone()));
        if let Some(v) = self.block_height {
            m.insert("block_height".into(), Value::from(v));
        }
        m.insert("public_key".into(), Value::from(self.public_key.clone()));
        if let Some(v) = self.node_id {
            m.insert("node_id".into(), Value::from(v));
        }
        if let Some(v) = self.node_count {
            m.insert("node_count".into(), Value::from(v));
        }
        if let Some(v) = self.dist_threshold {
            m.insert("dist_threshold".into(), Value::from(v));
        }
        if let Some(v) = self.collection_batch_size {
            m.insert(
                "collection_batch_size".into(),
                v.map_or(Value::Null, Value::from),
            );
        }
        if let Some(v) = &self.additional_args {
            m.insert("additional_args".into(), Value::from(v.clone()));
        }
        if let Some(v) = &self.source {
            m.insert("source".into(), Value::from(v.clone()));
        }
        if let Some(v) = &self.generated_at {
            m.insert("generated_at".into(), Value::from(v.clone()));
        }
        if let Some(v) = &self.encoding {
            m.insert(
                "encoding".into(),
                serde_json::to_value(v).unwrap_or(Value::Null),
            );
        }
        if let Some(v) = &self.stat_test {
            m.insert("stat_test".into(), Value::Object(v.clone()));
        }
        if let Some(v) = &self.notes {
            m.insert("notes".into(), v.clone());
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        m.insert(
            "artifacts".into(),
            serde_json::to_value(&self.artifacts).unwrap_or(Value::Null),
        );
        Value::Object(m)
    }

    /// Pretty JSON (2-space indent) with a trailing newline, as `make_artifact.py` writes it.
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_value()).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn parse_artifacts(v: &Value) -> Result<Vec<Artifact>, ReferenceError> {
    let list = v.as_array().ok_or(ReferenceError::WrongType {
        key: "artifacts",
        expected: "a list of {nonce, vector_b64}",
    })?;
    if list.is_empty() {
        return Err(ReferenceError::EmptyArtifacts);
    }
    list.iter()
        .enumerate()
        .map(|(index, item)| {
            let bad = |reason: &str| ReferenceError::BadArtifact {
                index,
                reason: reason.to_owned(),
            };
            let o = item.as_object().ok_or_else(|| bad("must be an object"))?;
            let nonce = o
                .get("nonce")
                .ok_or_else(|| bad("missing 'nonce'"))?
                .as_i64()
                .ok_or_else(|| bad("'nonce' must be an integer"))?;
            let vector_b64 = o
                .get("vector_b64")
                .ok_or_else(|| bad(&format!("missing 'vector_b64' (nonce {nonce})")))?
                .as_str()
                .ok_or_else(|| bad(&format!("'vector_b64' must be a string (nonce {nonce})")))?
                .to_owned();
            Ok(Artifact { nonce, vector_b64 })
        })
        .collect()
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
