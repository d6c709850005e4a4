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

/// Vectors by round and nonce. Cheap to clone (shared): a fleet of nodes holds one copy.
#[derive(Debug, Default, Clone)]
pub struct RefStore {
    rounds: std::sync::Arc<HashMap<RoundKey, HashMap<i64, Vector>>>,
    models: Vec<String>,
}

impl RefStore {
    /// Add one reference (its vectors are already checked by `Reference::parse`).
    pub fn add(&mut self, r: &Reference) {
        let key = (
            r.model.clone(),
            r.seq_len,
            r.k_dim,
            r.block_hash.clone(),
            r.public_key.clone(),
        );
        let round = std::sync::Arc::make_mut(&mut self.rounds)
            .entry(key)
            .or_default();
        for a in &r.artifacts {
            if let Ok(v) = Vector::decode(&a.vector_b64, r.k_dim as usize) {
                round.insert(a.nonce, v);
            }
        }
        if !self.models.contains(&r.model) {
            self.models.push(r.model.clone());
        }
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
                Ok(r) => store.add(&r),
                Err(e) => tracing::warn!(file = %p.display(), error = %e, "skipping reference"),
            }
        }
        Ok(store)
    }

    /// The compiled-in references.
    pub fn embedded() -> Self {
        let mut store = RefStore::default();
        for (_, text) in crate::fixtures::REFERENCES {
            if let Ok(r) = Reference::parse(text) {
                store.add(&r);
            }
        }
        store
    }

    /// The vectors of one round, looked up once per request. `poc_stronger_rng` changes
    /// the inputs, so callers skip the lookup for it (a reference never covers it).
    pub fn round(
        &self,
        model: &str,
        seq_len: u32,
        k_dim: u32,
        block_hash: &str,
        public_key: &str,
    ) -> Option<&HashMap<i64, Vector>> {
        if self.rounds.is_empty() {
            return None;
        }
        self.rounds.get(&(
            model.to_owned(),
            seq_len,
            k_dim,
            block_hash.to_owned(),
            public_key.to_owned(),
        ))
    }

    /// Models of the loaded references (added to the simulated HF catalogue).
    pub fn models(&self) -> &[String] {
        &self.models
    }
}
