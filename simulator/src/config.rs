//! What a simulated node *is*: its hardware, its timings and its faults.
//!
//! A [`NodeConfig`] is read from a scenario file (`fixtures/scenarios/*.toml`, section
//! `[node]` and `[faults]`) or a `--config` file, then CLI flags override single keys.
//! Unknown keys are errors that name the key, so a typo in a drill fails at start
//! instead of silently simulating an honest node.

use serde::Deserialize;

use crate::deviation::MismatchRule;

/// Node hardware and timings. Every duration is in simulated seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// vLLM instances. `None` = `max(1, gpus / (tp·pp))` from the deploy args, as the node does.
    pub replicas: Option<u32>,
    /// GPUs on the host. `None` = the profile's GPUs per instance × replicas (or 1).
    pub gpus: Option<u32>,
    /// Hardware profile name from `fixtures/profiles.toml`.
    pub profile: String,
    /// Seed for every random choice of the scenario (mismatch draws, transport faults).
    pub seed: u64,
    /// The node's own default batch size: vectors are bit-exact only at this size when a
    /// `batch-size` mismatch rule is present.
    pub default_batch_size: u32,
    /// Download speed; download time = catalogue size / speed.
    pub download_gb_per_s: f64,
    /// Time from `/inference/up` to the first replica healthy (replica i adds 5·i s).
    pub deploy_seconds: f64,
    /// Repos already in the HF cache at start.
    pub cached_models: Vec<String>,
    /// Start with this model deployed and running (implies cached).
    pub deployed_model: Option<String>,
    /// `version` in `/state` and `/versions`.
    pub version: String,
    /// What every replica's `/api/v1/pow/versions` reports (per replica overridable in
    /// `[[faults.replicas]]`); the MLNode's `/versions` and `/state` copy the first
    /// healthy replica's answer.
    pub vllm_version: String,
    pub gonka_poc_version: String,
    /// Validation runs alongside live inference (newest plugin: always true; gonka-poc
    /// 0.1.6 reported false for GLM).
    pub poc_validation_inference: bool,
    /// Request body limit (bytes); larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Simulated seconds per wall second.
    pub time_scale: f64,
    /// Serve golden references' own vectors for the nonces they cover.
    pub reference_backed: bool,
    /// How the node reads tensor/pipeline parallel sizes from the vLLM args (and so its
    /// replica count): `newest` (aliases, `--x=v`, `_` folded, last wins) or `shipped`
    /// (the 3.0.x images: exact token, first occurrence).
    pub arg_rule: mlnode_protocol::vllm_args::ArgRule,
    /// Serve an encrypted-inference identity (a deterministic X25519 key from the seed)
    /// instead of the 503 of a node without a key provider.
    pub encrypted_identity: bool,
    /// Set from the scenario's `[faults]` table, not from `[node]`.
    #[serde(skip)]
    pub faults: Faults,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            replicas: None,
            gpus: None,
            profile: DEFAULT_PROFILE.into(),
            seed: 42,
            default_batch_size: 32,
            download_gb_per_s: 2.0,
            deploy_seconds: 60.0,
            cached_models: Vec::new(),
            deployed_model: None,
            version: "3.0.12-sim".into(),
            vllm_version: "0.28.0".into(),
            gonka_poc_version: "0.1.6".into(),
            poc_validation_inference: true,
            body_limit_bytes: 64 * 1024 * 1024,
            time_scale: 1.0,
            reference_backed: true,
            arg_rule: mlnode_protocol::vllm_args::ArgRule::Newest,
            encrypted_identity: false,
            faults: Faults::default(),
        }
    }
}

/// How a download goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownloadFault {
    /// The task fails and its record vanishes: status goes back to `NOT_FOUND`.
    NotFound,
    /// The task fails with `PARTIAL` + a network error message.
    Partial,
    /// `DOWNLOADING` forever.
    Stuck,
}

/// How a deploy goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployFault {
    /// `failed` with a CUDA out-of-memory text.
    Oom,
    /// `in_progress` forever.
    Timeout,
    /// `completed`, then every replica process dies after `crash_after_seconds`.
    CrashAfterStart,
    /// `failed`, then the whole MLNode exits (connection refused for `down_seconds`)
    /// and comes back with `not_started`.
    ExitOnFailure,
}

/// A replica that mines slower than its profile, or stops advancing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaFault {
    pub replica: u32,
    /// Rate multiplier (e.g. 0.4 = 40 % of the profile).
    #[serde(default = "one")]
    pub rate: f64,
    /// `total_processed` stops growing this many seconds after mining starts.
    #[serde(default)]
    pub stall_after_seconds: Option<f64>,
    /// `init/generate` on this replica fails with this text (HTTP 500 from the replica).
    #[serde(default)]
    pub init_error: Option<String>,
    /// This replica's `poc_validation_inference` (a mixed fleet of plugin builds).
    #[serde(default)]
    pub poc_validation_inference: Option<bool>,
    /// This replica's `vllm_version`.
    #[serde(default)]
    pub vllm_version: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// Everything that can go wrong, as data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    pub download: Option<DownloadFault>,
    pub deploy: Option<DeployFault>,
    pub crash_after_seconds: f64,
    /// Watcher delay from a failed startup to the process exit (3 strikes × 2 s = 6 s;
    /// `WATCHER_MAX_UNHEALTHY_COUNT` scales it).
    pub exit_after_seconds: f64,
    pub down_seconds: f64,
    /// Replicas deploy but never pass a health check (`NO_BACKENDS`).
    pub no_backends: bool,
    /// Replicas are already mining a stale session when deployed (second init → 502).
    pub stale_generating: bool,
    pub replicas: Vec<ReplicaFault>,
    /// Every `wait=true` generate takes this long on the replica (past 60 s → 502).
    pub generate_delay_seconds: Option<f64>,
    /// The validation endpoint always answers "no fraud" (a lying node).
    pub lying_validation: bool,
    /// Per-nonce mismatch models, first match wins (poc-math §5).
    pub mismatch: Vec<MismatchRule>,
    /// Transport faults per endpoint (latency, reset, empty, truncate, garbage, dribble, hang).
    pub transport: Vec<crate::transport::TransportFault>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            download: None,
            deploy: None,
            crash_after_seconds: 60.0,
            exit_after_seconds: 6.0,
            down_seconds: 20.0,
            no_backends: false,
            stale_generating: false,
            replicas: Vec::new(),
            generate_delay_seconds: None,
            lying_validation: false,
            mismatch: Vec::new(),
            transport: Vec::new(),
        }
    }
}

/// A config value that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid node config: {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The profile a node runs at unless told otherwise (a deploy of a model with shipped
/// profiles switches to the matching one).
pub const DEFAULT_PROFILE: &str = "generic";

/// The fastest a simulated clock may run: beyond it, simulated seconds per request
/// overflow the counters a node reports.
pub const MAX_TIME_SCALE: f64 = 1e6;
/// The largest per-replica speed factor (× the profile's rate).
pub const MAX_RATE_FACTOR: f64 = 1000.0;

impl NodeConfig {
    /// Reject values no node could have.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(0) = self.replicas {
            return Err(bad("replicas", "must be >= 1"));
        }
        if self.replicas.unwrap_or(1) > 128 {
            return Err(bad("replicas", "at most 128 (INFERENCE_MAX_INSTANCES)"));
        }
        if let Some(0) = self.gpus {
            return Err(bad("gpus", "must be >= 1"));
        }
        if self.default_batch_size == 0 {
            return Err(bad("default_batch_size", "must be >= 1"));
        }
        if !(self.download_gb_per_s.is_finite() && self.download_gb_per_s > 0.0) {
            return Err(bad("download_gb_per_s", "must be a positive number"));
        }
        for (key, v) in [
            ("deploy_seconds", self.deploy_seconds),
            (
                "faults.crash_after_seconds",
                self.faults.crash_after_seconds,
            ),
            ("faults.down_seconds", self.faults.down_seconds),
            ("faults.exit_after_seconds", self.faults.exit_after_seconds),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(key, "must be a finite number >= 0"));
            }
        }
        if !(self.time_scale.is_finite()
            && self.time_scale > 0.0
            && self.time_scale <= MAX_TIME_SCALE)
        {
            return Err(bad(
                "time_scale",
                format!("must be in (0, {MAX_TIME_SCALE}]"),
            ));
        }
        if self.download_gb_per_s > 1e6 {
            return Err(bad("download_gb_per_s", "at most 1e6"));
        }
        for (i, r) in self.faults.replicas.iter().enumerate() {
            if !(r.rate.is_finite() && (0.0..=MAX_RATE_FACTOR).contains(&r.rate)) {
                return Err(bad(
                    &format!("faults.replicas[{i}].rate"),
                    format!("must be in [0, {MAX_RATE_FACTOR}]"),
                ));
            }
        }
        for (i, t) in self.faults.transport.iter().enumerate() {
            t.check()
                .map_err(|reason| bad(&format!("faults.transport[{i}]"), reason))?;
        }
        for (i, m) in self.faults.mismatch.iter().enumerate() {
            m.check()
                .map_err(|reason| bad(&format!("faults.mismatch[{i}]"), reason))?;
        }
        Ok(())
    }
}
