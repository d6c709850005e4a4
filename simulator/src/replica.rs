//! One simulated vLLM replica: its health, its mining session and its job queue.
//!
//! Progress is *virtual*: `total_processed` is a function of simulated time and the
//! replica's rate, in whole batches; vectors are computed only when someone asks for
//! them (a callback, a `/generate`). Jobs advance lazily whenever the node is touched.

use std::collections::{HashMap, VecDeque};

use mlnode_protocol::partition::NonceGroup;
use mlnode_protocol::wire::{
    GenerateRequest, InitGenerateRequest, JobResult, JobStatus, MiningConfig, MiningStats,
    ReplicaVersions, DEFAULT_BATCH_SIZE,
};

/// Seconds of failed probes before the proxy drops a replica (3 strikes × 2 s).
pub const HEALTH_DAMPING_SECONDS: f64 = 6.0;
/// `POC_GENERATE_RESULT_TTL_SEC`.
pub const RESULT_TTL_SECONDS: f64 = 300.0;
/// `POC_MAX_QUEUED_NONCES`.
pub const MAX_QUEUED_NONCES: usize = 100_000;
/// `POC_CALLBACK_INTERVAL_SEC`.
pub const CALLBACK_INTERVAL_SECONDS: f64 = 5.0;
/// `POC_CALLBACK_MAX_ARTIFACTS`: oldest dropped past this.
pub const CALLBACK_MAX_ARTIFACTS: u64 = 1_000_000;

/// A running mining session.
#[derive(Debug, Clone)]
pub struct Mining {
    pub request: InitGenerateRequest,
    pub group: NonceGroup,
    pub group_id: u32,
    pub n_groups: u32,
    pub started: f64,
    pub rate: f64,
    pub stall_at: Option<f64>,
    /// Mining-callback cursor: nonces with x < `sent_x` were already streamed.
    pub sent_x: u64,
    pub last_flush: f64,
    /// `config` as JSON, rendered once per session for the hot `/pow/status` path.
    pub config_json: String,
}

impl Mining {
    pub fn new(
        request: InitGenerateRequest,
        group: NonceGroup,
        group_id: u32,
        n_groups: u32,
        started: f64,
        rate: f64,
        stall_at: Option<f64>,
    ) -> Self {
        let mut m = Mining {
            request,
            group,
            group_id,
            n_groups,
            started,
            rate,
            stall_at,
            sent_x: 0,
            last_flush: started,
            config_json: String::new(),
        };
        m.config_json = serde_json::to_string(&m.config()).unwrap_or_else(|_| "null".into());
        m
    }

    /// Nonces completed by `now`, in whole batches.
    pub fn processed(&self, now: f64) -> u64 {
        let until = self.stall_at.map_or(now, |s| now.min(s));
        let elapsed = (until - self.started).max(0.0);
        let batch = u64::from(self.request.batch_size_or(DEFAULT_BATCH_SIZE).max(1));
        let batches = (elapsed * self.rate / batch as f64).floor() as u64;
        batches * batch
    }

    pub fn config(&self) -> MiningConfig {
        let r = &self.request;
        MiningConfig {
            block_hash: r.block_hash.clone(),
            block_height: r.block_height,
            public_key: r.public_key.clone(),
            node_id: r.node_id,
            node_count: r.node_count,
            group_id: self.group_id,
            n_groups: self.n_groups,
            seq_len: r.params.seq_len,
            k_dim: r.params.k_dim,
        }
    }

    /// Lifetime average, 0 before the first batch (as the replica reports it).
    pub fn stats(&self, now: f64) -> MiningStats {
        let total = self.processed(now);
        let elapsed = now - self.started;
        MiningStats {
            total_processed: total,
            nonces_per_second: if total == 0 || elapsed <= 0.0 {
                0.0
            } else {
                total as f64 / elapsed
            },
        }
    }
}

/// A `/generate` job on the replica's FIFO.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub request: GenerateRequest,
    /// The request's stat test, resolved when it was accepted.
    pub stat_test: mlnode_protocol::StatTest,
    pub status: JobStatus,
    pub enqueued: f64,
    pub ends: Option<f64>,
    pub finished_at: Option<f64>,
    pub result: Option<JobResult>,
    pub error: Option<String>,
}

/// One vLLM instance.
#[derive(Debug)]
pub struct Replica {
    pub index: u32,
    pub port: u16,
    /// First successful health probe (`INFINITY` = never).
    pub healthy_from: f64,
    /// The process died at this time.
    pub dead_at: Option<f64>,
    /// Health probes fail from this time (admin fault).
    pub failing_since: Option<f64>,
    pub rate: f64,
    pub stall_after: Option<f64>,
    pub init_error: Option<String>,
    pub mining: Option<Mining>,
    pub queue: VecDeque<Job>,
    pub results: HashMap<String, Job>,
    /// When the replica last became free to run a job.
    pub free_since: f64,
    /// Its `/api/v1/pow/versions` answer.
    pub versions: ReplicaVersions,
}

impl Replica {
    pub fn new(index: u32, healthy_from: f64, rate: f64, versions: ReplicaVersions) -> Self {
        Replica {
            index,
            port: 5001 + index as u16,
            healthy_from,
            dead_at: None,
            failing_since: None,
            rate,
            stall_after: None,
            init_error: None,
            mining: None,
            queue: VecDeque::new(),
            results: HashMap::new(),
            free_since: healthy_from,
            versions,
        }
    }

    pub fn alive(&self, now: f64) -> bool {
        self.dead_at.is_none_or(|d| now < d)
    }

    /// The MLNode proxy's view: healthy after the first good probe, until 3 consecutive
    /// probes failed (death or an injected health fault); a good probe restores at once.
    pub fn healthy(&self, now: f64) -> bool {
        if now < self.healthy_from {
            return false;
        }
        let failing = match (self.dead_at, self.failing_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        failing.is_none_or(|f| now < f + HEALTH_DAMPING_SECONDS)
    }

    /// `/api/v1/pow/status` state of this replica.
    pub fn is_generating(&self) -> bool {
        self.mining.is_some()
    }

    /// Nonces waiting in the queue.
    pub fn queued_nonces(&self) -> usize {
        self.queue
            .iter()
            .filter(|j| j.status == JobStatus::Queued)
            .map(|j| j.request.nonces.len())
            .sum()
    }

    /// Seconds of compute for `n` nonces at this replica's rate.
    pub fn compute_seconds(&self, n: usize) -> f64 {
        if self.rate <= 0.0 {
            f64::INFINITY
        } else {
            n as f64 / self.rate
        }
    }

    /// Stop mining and wipe the queue and the result store (`/pow/stop`).
    pub fn stop(&mut self, now: f64) {
        if self.mining.take().is_some() {
            self.free_since = now;
        }
        self.queue.clear();
        self.results.clear();
    }

    /// Purge results older than the TTL.
    pub fn purge(&mut self, now: f64) {
        self.results
            .retain(|_, j| j.finished_at.is_none_or(|t| now - t <= RESULT_TTL_SECONDS));
    }
}
