//! # mlnode-conformance — contract checks for any MLNode, and the verdict matrix
//!
//! Two deliverables:
//! - `mlnode-conformance --mlnode-url URL`: a contract checker that can be pointed at any
//!   node — the simulator or a real GPU node — and tests the node's honesty machinery
//!   itself, not only one verdict (schema, error contract, determinism, independence,
//!   self-consistency, a negative control, stat-test honesty, the partition).
//! - `tests/conformance.rs`: the insta snapshot matrix of validator verdicts over every
//!   scenario in `fixtures/scenarios/`, and cross-crate property tests.
//!
//! | module | what it holds |
//! |---|---|
//! | [`target`] | which node, which model, which PoC round the checks use |
//! | [`checks`] | the checks, one module per group |
//! | [`contract_doc`] | answers against the simulator's OpenAPI document, field by field |
//! | [`outcome`] | check results, the table, `--json`, `--junit`, the exit code |

pub mod checks;
pub mod contract_doc;
pub mod outcome;
pub mod target;

pub use checks::run_all;
pub use outcome::{CheckResult, Status};
pub use target::Target;
