//! Reference-backed honesty: serve golden references' own vectors.
//!
//! A real reference was baked on real GPUs; our generator cannot reproduce it. So for
//! the rounds a reference covers — same model, `seq_len`, `k_dim`, `block_hash` and
//! `public_key` — the simulator answers with the reference's vectors, and the real
//! references validate PASS against an honest simulated node. Faults apply on top.

use std::collections::HashMap;
use std::path::Path;

use mlnode_protocol::{Reference, Vector};

type RoundKey = (String, u32, u32, String, String);

/// One reference's vectors of a round, and the deploy it was recorded with.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The reference file's name (what logs and the admin API show).
    pub name: String,
    /// Its `additional_args`.
    pub args: Vec<String>,
    pub vectors: HashMap<i64, Vector>,
}

/// A round a node can serve from references, and which recording it serves.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServedRound {
    pub seq_len: u32,
    pub k_dim: u32,
    pub block_hash: String,
    pub public_key: String,
    /// The reference file whose vectors are served first.
    pub serves: String,
    /// Its `additional_args`.
    pub recorded_with: Vec<String>,
    /// Other recordings of the round, for nonces the first lacks.
    pub fallbacks: Vec<String>,
}

/// Vectors by round and nonce. Cheap to clone (shared): a fleet of nodes holds one copy.
/// Several references can cover one round (Qwen3-235B: default 32 and DeepGEMM 2000,
/// recorded on different hardware): a node serves the recording made with the deploy it
/// runs first, the others for nonces that one lacks.
#[derive(Debug, Default, Clone)]
pub struct RefStore {
    rounds: std::sync::Arc<HashMap<RoundKey, Vec<Recording>>>,
    models: Vec<String>,
}

/// The tensor-parallel size a recording or a deploy names (newest rule).
fn tp(args: &[String]) -> Option<i64> {
    use mlnode_protocol::vllm_args::{int_value, ArgRule, VllmOption};
    int_value(args, VllmOption::TensorParallelSize, ArgRule::Newest)
}

impl RefStore {
    /// Add one reference (its vectors are already checked by `Reference::parse`).
    pub fn add_named(&mut self, name: &str, r: &Reference) {
        let key = (
            r.model.clone(),
            r.seq_len,
            r.k_dim,
            r.block_hash.clone(),
            r.public_key.clone(),
        );
        let vectors = r
            .artifacts
            .iter()
            .filter_map(|a| {
                Some((
                    a.nonce,
                    Vector::decode(&a.vector_b64, r.k_dim as usize).ok()?,
                ))
            })
            .collect();
        std::sync::Arc::make_mut(&mut self.rounds)
            .entry(key)
            .or_default()
            .push(Recording {
                name: name.to_owned(),
                args: r.additional_args.clone().unwrap_or_default(),
                vectors,
            });
        if !self.models.contains(&r.model) {
            self.models.push(r.model.clone());
        }
    }

    pub fn add(&mut self, r: &Reference) {
        self.add_named(&r.model, r)
    }

    /// Load every `*.json` in `dir` that parses as a reference; others are skipped with a
    /// warning (a broken file must not stop a node from starting).
    pub fn load_dir(dir: &Path) -> std::io::Result<Self> {
        let mut store = RefStore::default();
        let mut entries: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        for p in entries {
            match Reference::load(&p) {
                Ok(r) => store.add_named(&p.file_name().unwrap_or_default().to_string_lossy(), &r),
                Err(e) => tracing::warn!(file = %p.display(), error = %e, "skipping reference"),
            }
        }
        Ok(store)
    }

    /// The compiled-in references.
    pub fn embedded() -> Self {
        let mut store = RefStore::default();
        for (name, text) in crate::fixtures::REFERENCES {
            if let Ok(r) = Reference::parse(text) {
                store.add_named(name, &r);
            }
        }
        store
    }

    /// The recordings of one round, the one made with `deploy_args` first (same args,
    /// else the same tensor-parallel size), looked up once per request. `poc_stronger_rng`
    /// changes the inputs, so callers skip the lookup for it (a reference never covers it).
    pub fn round(
        &self,
        model: &str,
        seq_len: u32,
        k_dim: u32,
        block_hash: &str,
        public_key: &str,
        deploy_args: &[String],
    ) -> Vec<&Recording> {
        if self.rounds.is_empty() {
            return Vec::new();
        }
        let Some(recs) = self.rounds.get(&(
            model.to_owned(),
            seq_len,
            k_dim,
            block_hash.to_owned(),
            public_key.to_owned(),
        )) else {
            return Vec::new();
        };
        let score = |r: &Recording| {
            if r.args == deploy_args {
                0
            } else if tp(&r.args).is_some() && tp(&r.args) == tp(deploy_args) {
                1
            } else {
                2
            }
        };
        let mut out: Vec<&Recording> = recs.iter().collect();
        out.sort_by_key(|r| score(r));
        out
    }

    /// Every round of `model` and the recording a node deployed with `deploy_args`
    /// serves first for it (what the log and the admin API say).
    pub fn served_for(&self, model: &str, deploy_args: &[String]) -> Vec<ServedRound> {
        let mut out: Vec<ServedRound> = self
            .rounds
            .keys()
            .filter(|k| k.0 == model)
            .filter_map(|(m, seq_len, k_dim, block_hash, public_key)| {
                let recs = self.round(m, *seq_len, *k_dim, block_hash, public_key, deploy_args);
                let (first, rest) = recs.split_first()?;
                Some(ServedRound {
                    seq_len: *seq_len,
                    k_dim: *k_dim,
                    block_hash: block_hash.clone(),
                    public_key: public_key.clone(),
                    serves: first.name.clone(),
                    recorded_with: first.args.clone(),
                    fallbacks: rest.iter().map(|r| r.name.clone()).collect(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.block_hash, a.seq_len).cmp(&(&b.block_hash, b.seq_len)));
        out
    }

    /// Models of the loaded references (added to the simulated HF catalogue).
    pub fn models(&self) -> &[String] {
        &self.models
    }
}
