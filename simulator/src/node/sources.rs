//! The node's vectors: per-request sources (reference-backed, generated, moved by
//! mismatch rules) and explicit-nonce compute (artifacts or a verdict).

use mlnode_protocol::verdict::VerdictError;
use mlnode_protocol::wire::{
    Artifact, ArtifactsResult, Encoding, GenerateRequest, JobResult, PoCParams, ValidationResult,
    DEFAULT_BATCH_SIZE,
};
use mlnode_protocol::{vectors, verdict, StatTest, Vector};
use serde_json::Value;

use super::Node;
use crate::deviation::{rule_rng, BatchPosition, Deviation};
use crate::error::ApiError;

impl Node {
    /// Everything per request a vector depends on, resolved once: the hashed round, the
    /// reference round (if any) and the mismatch-rule round id.
    pub fn source<'a>(
        &'a self,
        params: &PoCParams,
        block_hash: &str,
        public_key: &str,
        stronger_rng: bool,
        batch_size: u32,
    ) -> VectorSource<'a> {
        VectorSource {
            node: self,
            round: vectors::Round::new(
                &params.model,
                params.seq_len,
                params.k_dim,
                block_hash,
                public_key,
            ),
            refs: if stronger_rng {
                Vec::new()
            } else {
                self.refs.round(
                    &params.model,
                    params.seq_len,
                    params.k_dim,
                    block_hash,
                    public_key,
                    &self.deploy_args(),
                )
            },
            rule_round: format!("{}\u{1f}{}\u{1f}{}", params.model, block_hash, public_key),
            stronger_rng,
            batch_size,
        }
    }

    /// Artifacts or a verdict for an explicit-nonce request.
    pub(super) fn compute(
        &self,
        req: &GenerateRequest,
        st: &StatTest,
    ) -> Result<JobResult, ApiError> {
        let src = self.source(
            &req.params,
            &req.block_hash,
            &req.public_key,
            req.poc_stronger_rng,
            req.batch_size_or(DEFAULT_BATCH_SIZE),
        );
        match &req.validation {
            None => Ok(JobResult::Artifacts(ArtifactsResult {
                artifacts: req
                    .nonces
                    .iter()
                    .enumerate()
                    .map(|(i, &nonce)| Artifact {
                        nonce,
                        vector_b64: src.vector(i, nonce).encode(),
                    })
                    .collect(),
                encoding: Encoding::f16_le(req.params.k_dim),
            })),
            Some(v) => {
                if self.cfg.faults.lying_validation {
                    return Ok(JobResult::Validation(ValidationResult {
                        n_total: req.nonces.len() as u64,
                        n_mismatch: 0,
                        mismatch_nonces: vec![],
                        p_value: 1.0,
                        fraud_detected: false,
                    }));
                }
                verdict::validate_with(
                    &req.nonces,
                    &v.artifacts,
                    |i, n, out| src.fill_f32(i, n, out),
                    st,
                )
                .map(JobResult::Validation)
                .map_err(|e| match e {
                    VerdictError::Decode { nonce, source } => ApiError::value_error(
                        &["body", "validation", "artifacts"],
                        format!("vector_b64 for nonce {nonce} cannot be decoded: {source}"),
                        Value::Null,
                    ),
                    VerdictError::StatTest(e) => {
                        ApiError::value_error(&["body", "stat_test"], e.to_string(), Value::Null)
                    }
                })
            }
        }
    }
}

/// A request's view of the node's vectors (see [`Node::source`]).
pub struct VectorSource<'a> {
    node: &'a Node,
    round: vectors::Round,
    /// Reference recordings of the round, preferred first.
    refs: Vec<&'a crate::refs::Recording>,
    rule_round: String,
    stronger_rng: bool,
    batch_size: u32,
}

/// The node's vector before f16 rounding, or the reference's exact one.
enum Own<'a> {
    Exact(&'a Vector),
    Unit(usize),
}

impl VectorSource<'_> {
    fn own(
        &self,
        index: usize,
        nonce: i64,
        unit: &mut [f64; mlnode_protocol::codec::MAX_FAST_K],
    ) -> Own<'_> {
        let k = self.round.k_dim().min(unit.len());
        let base = self.refs.iter().find_map(|r| r.vectors.get(&nonce));
        let pos = BatchPosition {
            index,
            batch_size: self.batch_size,
            default_batch_size: self.node.cfg.default_batch_size,
        };
        for (i, rule) in self.node.cfg.faults.mismatch.iter().enumerate() {
            let mut rng = rule_rng(self.node.cfg.seed, i, &self.rule_round, nonce);
            if let Some(dev) = rule.apply(&mut rng, nonce, pos) {
                let start: Vec<f64> = match base {
                    Some(v) => {
                        let mut x: Vec<f64> = v.to_f32().into_iter().map(f64::from).collect();
                        let n = x.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
                        x.iter_mut().for_each(|a| *a /= n);
                        x
                    }
                    None => {
                        let mut x = vec![0.0; k];
                        self.round.unit_into(nonce, self.stronger_rng, &mut x);
                        x
                    }
                };
                let moved = match dev {
                    Deviation::Distance(d) => vectors::perturb(&start, d, &mut rng),
                    Deviation::Forged => vectors::random_unit(start.len(), &mut rng),
                };
                let k = moved.len().min(unit.len());
                unit[..k].copy_from_slice(&moved[..k]);
                return Own::Unit(k);
            }
        }
        match base {
            Some(v) => Own::Exact(v),
            None => {
                self.round
                    .unit_into(nonce, self.stronger_rng, &mut unit[..k]);
                Own::Unit(k)
            }
        }
    }

    /// The vector the node serves for this nonce at this position.
    pub fn vector(&self, index: usize, nonce: i64) -> Vector {
        let mut unit = [0.0f64; mlnode_protocol::codec::MAX_FAST_K];
        match self.own(index, nonce, &mut unit) {
            Own::Exact(v) => v.clone(),
            Own::Unit(k) => vectors::to_f16(&unit[..k]),
        }
    }

    /// The same vector as exact f32 values of its f16 components, with no allocation on
    /// the honest path. Returns the length.
    pub fn fill_f32(&self, index: usize, nonce: i64, out: &mut [f32]) -> Option<usize> {
        let mut unit = [0.0f64; mlnode_protocol::codec::MAX_FAST_K];
        Some(match self.own(index, nonce, &mut unit) {
            Own::Exact(v) => {
                let k = v.len().min(out.len());
                for (o, h) in out.iter_mut().zip(&v.0).take(k) {
                    *o = mlnode_protocol::codec::f16_bits_to_f32(h.to_bits());
                }
                k
            }
            Own::Unit(k) => {
                let k = k.min(out.len());
                vectors::round_to_f16_values(&unit[..k], &mut out[..k]);
                k
            }
        })
    }
}
