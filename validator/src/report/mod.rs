//! The three report files as Rust types, serialized once.
//!
//! [`ValidateConfig`] is `validate_config.json`; [`ValidateReport`] is
//! `validate_report.json` (the config, flattened, then one record per phase, then our
//! added keys); [`txt::render`] writes `validate_report.txt` from the same report. Every
//! key path and JSON type validate.py writes (validate-report-shape.md) is a field here
//! with the same name and type — `null` where validate.py writes `null` (a phase that
//! failed, or did not run). Our additions come after validate.py's keys and never change
//! an existing key's type or meaning. A new key is one field; the compiler finds every
//! place that must fill it.

pub mod files;
pub mod py;
pub mod txt;

use mlnode_protocol::wire::{
    AggregateStatus, InitGenerateResponse, ModelStatusResponse, StartupStatus,
};
use mlnode_protocol::ResolvedStatTest;
use serde::Serialize;

use crate::args::ValidateArgs;
use crate::phase::Phase;
use crate::verdict::Verdict;

pub use files::{write_all, write_atomic, ReportPaths};

/// The PoC round a reference was recorded in (flattened into `reference` and
/// `poc_params`, keys in validate.py's order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    pub seq_len: u32,
    pub k_dim: u32,
    pub block_hash: String,
    pub public_key: String,
    pub node_id: i64,
    pub node_count: i64,
}

impl Round {
    pub fn of(r: &mlnode_protocol::Reference) -> Self {
        Round {
            seq_len: r.seq_len,
            k_dim: r.k_dim,
            block_hash: r.block_hash.clone(),
            public_key: r.public_key.clone(),
            node_id: r.node_id_or_default(),
            node_count: r.node_count_or_default(),
        }
    }
}

/// `reference`: what the golden reference says about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceInfo {
    pub path: String,
    pub model: String,
    #[serde(flatten)]
    pub round: Round,
    pub n_vectors: usize,
    pub source: Option<String>,
    pub additional_args: Vec<String>,
}

/// `deploy_config`: what `/inference/up/async` is sent, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployConfig {
    pub dtype: String,
    pub additional_args: Vec<String>,
    pub source: String,
}

/// `poc_params`: the PoC parameters of every PoC request. The batch sizes are `null`
/// when unset (the node's default applies), as the newest validate.py does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PocParams {
    #[serde(flatten)]
    pub round: Round,
    pub throughput_batch_size: Option<u32>,
    pub validation_batch_size: Option<u32>,
    pub source: String,
}

/// `validate_config.json`: inputs only.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateConfig {
    pub timestamp: String,
    pub mlnode_url: String,
    pub model: String,
    pub reference: ReferenceInfo,
    pub deploy_config: DeployConfig,
    pub poc_params: PocParams,
    pub stat_test: ResolvedStatTest,
    /// Every CLI option by its long name with `_`.
    pub args: ValidateArgs,
}

/// `download.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadAction {
    AlreadyDownloaded,
    Verified,
    Downloaded,
}

/// `download`: phase 1's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DownloadRecord {
    pub action: DownloadAction,
    /// Simulated seconds (see the report's `clock`).
    pub elapsed_s: f64,
    /// The last `/models/status` body, whole.
    pub last_status: ModelStatusResponse,
}

/// `deploy.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployAction {
    AlreadyRunning,
    Deployed,
}

/// `deploy`: phase 2's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployRecord {
    pub action: DeployAction,
    pub elapsed_s: f64,
    /// The last `/inference/up/status` body.
    pub status: StartupStatus,
    pub additional_args: Vec<String>,
    pub dtype: String,
}

/// One `/pow/status` sample (validate.py's keys, then ours).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the measurement started (after the warm-up).
    pub elapsed_s: f64,
    pub agg_status: AggregateStatus,
    pub n_backends: usize,
    pub per_backend_nonces_per_second: Vec<f64>,
    pub per_backend_total_processed: Vec<u64>,
    pub sum_nonces_per_second: f64,
    /// Ours: the port of each backend, in the same order.
    pub per_backend_ports: Vec<u16>,
    /// Ours: each backend's status (`GENERATING`, `IDLE`, `ERROR`), in the same order.
    pub per_backend_status: Vec<String>,
}

/// `throughput.summary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThroughputSummary {
    pub n_backends: usize,
    pub n_samples: usize,
    pub avg_sum_nonces_per_second: f64,
    pub avg_sum_nonces_per_min: f64,
    pub min_sum_nonces_per_second: f64,
    pub max_sum_nonces_per_second: f64,
    pub final_per_backend_total_processed: Vec<u64>,
}

impl ThroughputSummary {
    /// validate.py's summary of the samples (zeros when there are none).
    pub fn of(samples: &[Sample]) -> Self {
        let sums: Vec<f64> = samples.iter().map(|s| s.sum_nonces_per_second).collect();
        // from +0.0: an empty f64 sum is -0.0, which would print as "-0.00".
        let avg = if sums.is_empty() {
            0.0
        } else {
            sums.iter().fold(0.0, |a, b| a + b) / sums.len() as f64
        };
        let (min, max) = if sums.is_empty() {
            (0.0, 0.0)
        } else {
            (
                sums.iter().copied().fold(f64::INFINITY, f64::min),
                sums.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        };
        let last = samples.last();
        ThroughputSummary {
            n_backends: last.map_or(0, |s| s.n_backends),
            n_samples: samples.len(),
            avg_sum_nonces_per_second: avg,
            avg_sum_nonces_per_min: avg * 60.0,
            min_sum_nonces_per_second: min,
            max_sum_nonces_per_second: max,
            final_per_backend_total_processed: last
                .map(|s| s.per_backend_total_processed.clone())
                .unwrap_or_default(),
        }
    }
}

/// Replica findings (ours; the skill asks operators to raise them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaFlags {
    /// Ports below 50 % of the median rate.
    pub slow: Vec<u16>,
    /// Ports whose `total_processed` stopped growing while the others' grew.
    pub stalled: Vec<u16>,
    /// Ports that failed `init/generate`.
    pub init_failed: Vec<u16>,
    /// Ports whose `total_processed` went backwards (the replica restarted).
    pub restarted: Vec<u16>,
}

/// `throughput`: phase 3's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThroughputRecord {
    pub samples: Vec<Sample>,
    pub summary: ThroughputSummary,
    /// Ours: the `init/generate` answer.
    pub init: InitGenerateResponse,
    /// Ours: replicas flagged.
    pub flags: ReplicaFlags,
}

/// The node's validation answer, as checked (`validation.response`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationResponse {
    pub status: String,
    pub request_id: String,
    pub n_total: u64,
    pub n_mismatch: u64,
    pub mismatch_nonces: Vec<i64>,
    pub p_value: f64,
    pub fraud_detected: bool,
}

/// `validation.request`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ValidationRequestInfo {
    pub n_total: usize,
}

/// `validation`: always an object; `response`, `passed`, `has_mismatches` are `null`
/// when validation did not run or failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationRecord {
    pub request: ValidationRequestInfo,
    pub response: Option<ValidationResponse>,
    pub passed: Option<bool>,
    pub has_mismatches: Option<bool>,
}

impl ValidationRecord {
    pub fn new(n_total: usize, response: Option<ValidationResponse>) -> Self {
        ValidationRecord {
            request: ValidationRequestInfo { n_total },
            passed: response.as_ref().map(|r| !r.fraud_detected),
            has_mismatches: response.as_ref().map(|r| r.n_mismatch > 0),
            response,
        }
    }
}

/// `--cross-check`: the node's own vectors judged locally.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossCheck {
    pub local: mlnode_protocol::wire::ValidationResult,
    pub node_fraud_detected: bool,
    pub disagree: bool,
    /// Reference nonces the node returned no vector for (counted as mismatches).
    pub node_vectors_missing: usize,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// vLLM was already running: the deploy config was NOT applied.
    DeployConfigNotApplied,
    SlowReplica,
    StalledReplica,
    /// A replica failed `init/generate`.
    InitFailed,
    /// A replica's `total_processed` went backwards: it restarted.
    ReplicaRestarted,
    /// A batch size was passed explicitly (a reference baked at another batch size shows
    /// a few % mismatches).
    ExplicitBatchSize,
}

/// A finding the operator should raise; with `--strict` it fails the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    Passed,
    Failed,
    Skipped,
    Interrupted,
    NotRun,
}

/// One phase's outcome (ours: `phases`, `--json`, JUnit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseOutcome {
    pub phase: Phase,
    pub state: PhaseState,
    /// The failure, or why it was skipped.
    pub message: Option<String>,
    /// Simulated seconds the phase took.
    pub duration_s: f64,
    /// Wall seconds the phase took.
    pub wall_s: f64,
}

/// The failed phase's record as far as it got (validate.py writes that phase as `null`;
/// nothing learnt is lost, it is kept here).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Partial {
    Download {
        elapsed_s: f64,
        last_status: Option<ModelStatusResponse>,
    },
    Deploy {
        elapsed_s: f64,
        last_status: Option<StartupStatus>,
    },
    Throughput {
        init: Option<InitGenerateResponse>,
        samples: Vec<Sample>,
    },
    Validation {
        /// The node's answer that was rejected (clipped), if one came.
        answer: Option<String>,
    },
}

/// Which clock a duration is in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClockInfo {
    /// Simulated seconds per wall second for every wait (1 = real time).
    pub time_scale: f64,
    /// Where the scale came from: `cli`, `sim-default` (embedded node), `node` (learnt
    /// from a simulator's `x-sim-time-scale` header) or `default`.
    pub time_scale_source: &'static str,
    /// `elapsed_s` / `duration_s` fields are in this clock; `wall_s` fields in wall seconds.
    pub durations: &'static str,
}

/// `validate_report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    #[serde(flatten)]
    pub config: ValidateConfig,
    pub download: Option<DownloadRecord>,
    pub deploy: Option<DeployRecord>,
    pub throughput: Option<ThroughputRecord>,
    pub validation: ValidationRecord,
    // ---- ours, after validate.py's keys -------------------------------------------
    pub verdict: Verdict,
    pub exit_code: i32,
    pub error: Option<String>,
    pub failed_phase: Option<Phase>,
    pub partial: Option<Partial>,
    pub warnings: Vec<Warning>,
    pub cross_check: Option<CrossCheck>,
    pub phases: Vec<PhaseOutcome>,
    pub clock: ClockInfo,
    pub experiment_dir: String,
    pub finished_at: String,
    pub tool: ToolInfo,
}

/// Which program wrote a report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: &'static str,
}

impl ToolInfo {
    pub const VALIDATE: ToolInfo = ToolInfo {
        name: "mlnode-validate",
        version: env!("CARGO_PKG_VERSION"),
    };
}
