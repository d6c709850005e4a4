//! # mlnode-protocol — every fact about the PoC v2 wire format, and nothing else
//!
//! A pure library (no tokio, no HTTP, no file I/O beyond [`artifact::Reference::load`])
//! shared by the simulator, the validator and the conformance suite, so that all three
//! agree with the real node by construction.
//!
//! | module | what it holds | spec |
//! |---|---|---|
//! | [`wire`] | serde types for every request, response and callback body | mlnode-api §4, §5 |
//! | [`codec`] | f16 little-endian base64 vectors | poc-math §1.6 |
//! | [`mismatch`] | the per-nonce L2 rule (strict `>`, skip/length/non-finite) | poc-math §2 |
//! | [`fraud`] | the one-sided binomial tail and the fraud decision | poc-math §3.1 |
//! | [`stat_test`] | server defaults and per-key resolution with provenance | validator.md |
//! | [`artifact`] | the golden-reference file: load with named errors, save in key order | poc-math §4 |
//! | [`safe_id`] | model id → reference file name | validator.md |
//! | [`paths`] | every API path, spelled once for client and simulator | mlnode-api §4 |
//! | [`node_config`] | the operators' node-config list (`deploy/join/node-config-*.json`) | skill |
//! | [`partition`] | the frozen nonce partition across nodes and replicas | mlnode-api §6.2 |
//! | [`vectors`] | deterministic stand-in vectors and distance-exact perturbation | mlnode-api §7.1 |
//! | [`verdict`] | validate a request's artifacts against computed vectors | mlnode-api §7.2 |
//! | [`vllm_args`] | vLLM args → tensor/pipeline parallel size and replicas, newest and shipped rules | network-node §3.6 |

pub mod artifact;
pub mod codec;
pub mod fraud;
pub mod mismatch;
pub mod node_config;
pub mod partition;
pub mod paths;
pub mod safe_id;
pub mod stat_test;
pub mod vectors;
pub mod verdict;
pub mod vllm_args;
pub mod wire;

pub use artifact::{Reference, ReferenceError};
pub use codec::{DecodeError, Vector, DEFAULT_K_DIM};
pub use fraud::{binomial_upper_tail, fraud_test, FraudVerdict, StatTestError};
pub use stat_test::{ResolvedStatTest, Source, StatTest, SERVER_DEFAULTS};
