//! The simulated MLNode: model cache, inference startup, replicas and PoC semantics.
//!
//! All state sits behind one mutex and is advanced lazily from the [`SimClock`]: a
//! download "finishes" when someone looks after its end time, a replica's progress is a
//! function of time. A background ticker ([`Node::run_ticker`]) only exists to push
//! callbacks and to take the node down/up for the process-exit fault. Methods here speak
//! in wire types and [`ApiError`]s; the `api` modules only route.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::StatusCode;
use mlnode_protocol::partition::NonceGroup;
use mlnode_protocol::vectors;
use mlnode_protocol::verdict::{self, VerdictError};
use mlnode_protocol::wire::*;
use mlnode_protocol::{StatTest, Vector, SERVER_DEFAULTS};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::callbacks::{Callback, CallbackSink};
use crate::clock::SimClock;
use crate::config::{DeployFault, DownloadFault, NodeConfig};
use crate::error::ApiError;
use crate::fixtures::{Catalog, Profile};
use crate::mismatch::{rule_rng, BatchPosition, Deviation};
use crate::refs::RefStore;
use crate::replica::{
    Job, Mining, Replica, CALLBACK_INTERVAL_SECONDS, CALLBACK_MAX_ARTIFACTS, MAX_QUEUED_NONCES,
};

/// The MLNode→replica call timeout (G-PROXY `call_backend`).
pub const PROXY_TIMEOUT_SECONDS: f64 = 60.0;
/// Max concurrent downloads.
pub const MAX_DOWNLOADS: usize = 3;
/// What httpx says when a replica is not there.
const CONNECT_ERROR: &str = "All connection attempts failed";

#[derive(Debug, Clone)]
enum DownloadOutcome {
    Ok,
    Partial(String),
    Vanish,
    Stuck,
}

#[derive(Debug, Clone)]
struct DownloadTask {
    model: Model,
    started: f64,
    ends: f64,
    outcome: DownloadOutcome,
    cancelled: bool,
}

#[derive(Debug, Clone)]
enum DeployOutcome {
    Ok,
    Fail(String),
}

#[derive(Debug, Clone)]
enum Startup {
    NotStarted,
    InProgress {
        started: f64,
        ends: Option<f64>,
        outcome: DeployOutcome,
    },
    Completed {
        started: f64,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug)]
struct Runner {
    model: String,
    replicas: Vec<Replica>,
}

#[derive(Debug)]
struct Inner {
    cache: BTreeMap<String, f64>,
    downloads: HashMap<String, DownloadTask>,
    startup: Startup,
    runner: Option<Runner>,
    /// The process is "down" in `[from, until)` (process-exit fault).
    down: Option<(f64, f64)>,
    outbox: Vec<(u32, Callback)>,
}

/// A simulated MLNode.
pub struct Node {
    pub clock: SimClock,
    pub cfg: NodeConfig,
    pub profile: Profile,
    pub catalog: Catalog,
    refs: RefStore,
    inner: Mutex<Inner>,
    rr: AtomicUsize,
    http: reqwest::Client,
    sinks: Mutex<HashMap<u32, CallbackSink>>,
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `--tensor-parallel-size` × `--pipeline-parallel-size` from vLLM args (default 1 each).
pub fn parallel_size(args: &[String]) -> u32 {
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&v| v > 0)
            .unwrap_or(1)
    };
    get("--tensor-parallel-size") * get("--pipeline-parallel-size")
}

impl Node {
    /// Build a node from its config. `refs` backs honest vectors with golden references.
    pub fn new(cfg: NodeConfig, profile: Profile, catalog: Catalog, refs: RefStore) -> Arc<Self> {
        let clock = SimClock::new(cfg.time_scale);
        let mut cache: BTreeMap<String, f64> = BTreeMap::new();
        for m in cfg.cached_models.iter().chain(cfg.deployed_model.iter()) {
            cache.insert(m.clone(), catalog.models.get(m).copied().unwrap_or(60.0));
        }
        let node = Arc::new(Node {
            clock,
            profile,
            catalog,
            refs: if cfg.reference_backed {
                refs
            } else {
                RefStore::default()
            },
            inner: Mutex::new(Inner {
                cache,
                downloads: HashMap::new(),
                startup: Startup::NotStarted,
                runner: None,
                down: None,
                outbox: Vec::new(),
            }),
            rr: AtomicUsize::new(0),
            http: reqwest::Client::new(),
            sinks: Mutex::new(HashMap::new()),
            cfg,
        });
        if let Some(model) = node.cfg.deployed_model.clone() {
            let mut g = node.lock();
            let n = node.replica_count(&[]);
            g.startup = Startup::Completed { started: 0.0 };
            g.runner = Some(node.make_runner(model, n, 0.0));
        }
        node
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug; keep serving with the last state.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh node from `cfg`, with this node's references and catalogue.
    pub fn rebuild(&self, cfg: NodeConfig) -> Result<Arc<Node>, crate::BuildError> {
        cfg.check()?;
        let profile = crate::fixtures::profile(&cfg.profile)?;
        Ok(Node::new(
            cfg,
            profile,
            self.catalog.clone(),
            self.refs.clone(),
        ))
    }

    fn with_replica<T>(
        &self,
        index: u32,
        f: impl FnOnce(&mut Replica, f64) -> T,
    ) -> Result<T, ApiError> {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        g.runner
            .as_mut()
            .and_then(|r| r.replicas.iter_mut().find(|x| x.index == index))
            .map(|r| f(r, now))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("No replica {index} (is a model deployed?)"),
                )
            })
    }

    /// Fail (or restore) a replica's health probes. Failing flips the proxy's view after
    /// 3 probes (6 s); a good probe restores it at once.
    pub fn set_replica_health(&self, index: u32, healthy: bool) -> Result<(), ApiError> {
        self.with_replica(index, |r, now| {
            r.failing_since = if healthy {
                None
            } else {
                Some(r.failing_since.unwrap_or(now))
            };
        })
    }

    /// Change a replica's rate multiplier (of the profile), stall time and init error.
    pub fn set_replica_fault(
        &self,
        index: u32,
        rate: Option<f64>,
        stall_after: Option<f64>,
        init_error: Option<String>,
    ) -> Result<(), ApiError> {
        let base = self.profile.nonces_per_second();
        self.with_replica(index, |r, now| {
            if let Some(m) = rate {
                r.rate = base * m;
                if let Some(mining) = r.mining.as_mut() {
                    // Keep what was done; continue at the new rate from now.
                    let done = mining.processed(now) as f64;
                    mining.rate = r.rate;
                    mining.started = now - if r.rate > 0.0 { done / r.rate } else { 0.0 };
                }
            }
            if stall_after.is_some() {
                r.stall_after = stall_after;
                if let Some(mining) = r.mining.as_mut() {
                    mining.stall_at = stall_after.map(|s| now + s);
                }
            }
            if init_error.is_some() {
                r.init_error = init_error.filter(|e| !e.is_empty());
            }
        })
    }

    fn replica_count(&self, args: &[String]) -> u32 {
        if let Some(n) = self.cfg.replicas {
            return n;
        }
        let gpus = self.cfg.gpus.unwrap_or(self.profile.gpus_per_instance);
        (gpus / parallel_size(args)).clamp(1, 128)
    }

    fn make_runner(&self, model: String, n: u32, ready_at: f64) -> Runner {
        let base_rate = self.profile.nonces_per_second();
        let faults = &self.cfg.faults;
        let replicas = (0..n)
            .map(|i| {
                let fault = faults.replicas.iter().find(|f| f.replica == i);
                let mut r = Replica::new(
                    i,
                    if faults.no_backends {
                        f64::INFINITY
                    } else {
                        ready_at
                    },
                    base_rate * fault.map_or(1.0, |f| f.rate),
                );
                r.stall_after = fault.and_then(|f| f.stall_after_seconds);
                r.init_error = fault.and_then(|f| f.init_error.clone());
                if faults.deploy == Some(DeployFault::CrashAfterStart) {
                    r.dead_at = Some(ready_at + faults.crash_after_seconds);
                }
                if faults.stale_generating {
                    let stale = InitGenerateRequest {
                        block_hash: "STALE_BLOCK".into(),
                        block_height: 1,
                        public_key: "stale_session".into(),
                        node_id: 0,
                        node_count: 1,
                        batch_size: self.cfg.default_batch_size,
                        params: PoCParams {
                            model: model.clone(),
                            seq_len: 1024,
                            k_dim: 12,
                        },
                        url: None,
                        poc_stronger_rng: false,
                    };
                    r.mining =
                        NonceGroup::new(0, 1, u64::from(i), u64::from(n))
                            .ok()
                            .map(|group| {
                                Mining::new(
                                    stale,
                                    group,
                                    i,
                                    n,
                                    ready_at,
                                    r.rate,
                                    r.stall_after.map(|s| ready_at + s),
                                )
                            });
                }
                r
            })
            .collect();
        Runner { model, replicas }
    }

    // ------------------------------------------------------------------ time

    /// Bring every lazy state machine up to `now`.
    fn advance(&self, g: &mut Inner, now: f64) {
        // Startup transitions.
        if let Startup::InProgress {
            started,
            ends: Some(ends),
            outcome,
        } = g.startup.clone()
        {
            if now >= ends {
                match outcome {
                    DeployOutcome::Ok => g.startup = Startup::Completed { started },
                    DeployOutcome::Fail(error) => {
                        g.startup = Startup::Failed { error };
                        g.runner = None;
                        if self.cfg.faults.deploy == Some(DeployFault::ExitOnFailure) {
                            // Watcher: N strikes × 2 s, then os._exit(1).
                            let from = ends + self.cfg.faults.exit_after_seconds;
                            g.down = Some((from, from + self.cfg.faults.down_seconds));
                        }
                    }
                }
            }
        }
        // Process exit and restart: memory state is gone.
        if let Some((_, until)) = g.down {
            if now >= until {
                g.down = None;
                g.startup = Startup::NotStarted;
                g.runner = None;
                g.downloads.clear();
            }
        }
        // Downloads that finished move into the cache.
        let mut finished = Vec::new();
        for (id, t) in &g.downloads {
            if now >= t.ends && !t.cancelled {
                match t.outcome {
                    DownloadOutcome::Ok => finished.push((id.clone(), true)),
                    DownloadOutcome::Vanish => finished.push((id.clone(), false)),
                    _ => {}
                }
            }
        }
        for (id, ok) in finished {
            if let Some(t) = g.downloads.get(&id) {
                if ok {
                    let size = self
                        .catalog
                        .models
                        .get(&t.model.hf_repo)
                        .copied()
                        .unwrap_or(0.0);
                    g.cache.insert(t.model.hf_repo.clone(), size);
                } else {
                    g.downloads.remove(&id);
                }
            }
        }
        // Replica job queues.
        let mut outbox = Vec::new();
        if let Some(runner) = g.runner.as_mut() {
            for r in runner.replicas.iter_mut() {
                self.advance_jobs(r, now, &mut outbox);
            }
        }
        g.outbox.extend(outbox);
    }

    fn advance_jobs(&self, r: &mut Replica, now: f64, outbox: &mut Vec<(u32, Callback)>) {
        while let Some((status, enqueued, n, ends)) = r
            .queue
            .front()
            .map(|j| (j.status, j.enqueued, j.request.nonces.len(), j.ends))
        {
            match status {
                JobStatus::Queued => {
                    if r.mining.is_some() || !r.alive(now) {
                        break;
                    }
                    let start = r.free_since.max(enqueued);
                    if start > now {
                        break;
                    }
                    let secs = self.generate_seconds(r, n);
                    if let Some(job) = r.queue.front_mut() {
                        job.status = JobStatus::Running;
                        job.ends = Some(start + secs);
                    }
                }
                JobStatus::Running => {
                    let ends = ends.unwrap_or(now);
                    if ends > now {
                        break;
                    }
                    let Some(mut job) = r.queue.pop_front() else {
                        break;
                    };
                    match self.compute(&job.request) {
                        Ok(result) => {
                            job.status = JobStatus::Completed;
                            if let Some(url) = job.request.url.clone() {
                                outbox.push((
                                    r.index,
                                    job_callback(&url, &job.id, &job.request, &result),
                                ));
                            }
                            job.result = Some(result);
                        }
                        Err(e) => {
                            job.status = JobStatus::Failed;
                            job.error = Some(e.detail_text());
                        }
                    }
                    job.finished_at = Some(ends);
                    r.free_since = ends;
                    r.results.insert(job.id.clone(), job);
                    r.purge(now);
                }
                _ => {
                    r.queue.pop_front();
                }
            }
        }
    }

    /// Simulated compute time of a `/generate` of `n` nonces on `r`.
    fn generate_seconds(&self, r: &Replica, n: usize) -> f64 {
        self.cfg
            .faults
            .generate_delay_seconds
            .unwrap_or_else(|| r.compute_seconds(n))
    }

    /// One background step: advance, flush mining callbacks, deliver the outbox. Returns
    /// whether the node process is "down" now.
    pub fn tick(self: &Arc<Self>) -> bool {
        let now = self.clock.now();
        let (outbox, down) = {
            let mut g = self.lock();
            self.advance(&mut g, now);
            let mut mining_out = Vec::new();
            if let Some(runner) = g.runner.as_mut() {
                for r in runner.replicas.iter_mut() {
                    if let Some(cb) = self.flush_mining(r, now) {
                        mining_out.push((r.index, cb));
                    }
                }
            }
            let mut out = std::mem::take(&mut g.outbox);
            out.extend(mining_out);
            let down = g
                .down
                .is_some_and(|(from, until)| now >= from && now < until);
            (out, down)
        };
        if !outbox.is_empty() {
            let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
            for (idx, cb) in outbox {
                sinks
                    .entry(idx)
                    .or_insert_with(|| CallbackSink::spawn(self.http.clone(), self.clock))
                    .send(cb);
            }
        }
        down
    }

    fn flush_mining(&self, r: &mut Replica, now: f64) -> Option<Callback> {
        let alive = r.alive(now);
        let m = r.mining.as_mut()?;
        let url = m.request.url.clone()?;
        if !alive || now - m.last_flush < CALLBACK_INTERVAL_SECONDS {
            return None;
        }
        m.last_flush = now;
        let done = m.processed(now);
        if done <= m.sent_x {
            return None;
        }
        let from = m.sent_x.max(done.saturating_sub(CALLBACK_MAX_ARTIFACTS));
        m.sent_x = done;
        let req = &m.request;
        let src = self.source(
            &req.params,
            &req.block_hash,
            &req.public_key,
            req.poc_stronger_rng,
            req.batch_size,
        );
        let artifacts: Vec<Artifact> = (from..done)
            .enumerate()
            .map(|(i, x)| {
                let nonce = m.group.nonce(x) as i64;
                Artifact {
                    nonce,
                    vector_b64: src.vector(i, nonce).encode(),
                }
            })
            .collect();
        let body = GeneratedCallback {
            request_id: None,
            public_key: req.public_key.clone(),
            block_hash: req.block_hash.clone(),
            block_height: req.block_height,
            node_id: req.node_id,
            artifacts,
            encoding: Encoding::f16_le(req.params.k_dim),
        };
        Some(Callback {
            url: format!("{}/generated", url.trim_end_matches('/')),
            body: serde_json::to_value(body).unwrap_or(Value::Null),
        })
    }

    // --------------------------------------------------------------- vectors

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
                None
            } else {
                self.refs.round(
                    &params.model,
                    params.seq_len,
                    params.k_dim,
                    block_hash,
                    public_key,
                )
            },
            rule_round: format!("{}\u{1f}{}\u{1f}{}", params.model, block_hash, public_key),
            stronger_rng,
            batch_size,
        }
    }

    /// This node's vector for a nonce: the reference's (if one covers the round) or the
    /// generator's, then moved by the first mismatch rule that fires.
    pub fn node_vector(
        &self,
        params: &PoCParams,
        block_hash: &str,
        public_key: &str,
        nonce: i64,
        stronger_rng: bool,
        pos: BatchPosition,
    ) -> Vector {
        self.source(params, block_hash, public_key, stronger_rng, pos.batch_size)
            .vector(pos.index, nonce)
    }

    /// Artifacts or a verdict for an explicit-nonce request.
    fn compute(&self, req: &GenerateRequest) -> Result<JobResult, ApiError> {
        let src = self.source(
            &req.params,
            &req.block_hash,
            &req.public_key,
            req.poc_stronger_rng,
            req.batch_size,
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
                let st =
                    SERVER_DEFAULTS.merged(req.stat_test.as_ref().unwrap_or(&Default::default()));
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
                    &st,
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

    // ---------------------------------------------------------------- models

    fn model_status_locked(&self, g: &Inner, model: &Model, now: f64) -> ModelStatusResponse {
        let mut resp = ModelStatusResponse {
            model: model.clone(),
            status: ModelStatus::NotFound,
            progress: None,
            error_message: None,
        };
        if let Some(t) = g.downloads.get(&model.task_id()) {
            if t.cancelled {
                resp.status = ModelStatus::Partial;
                resp.error_message = Some("Download cancelled".into());
                return resp;
            }
            let running = now < t.ends || matches!(t.outcome, DownloadOutcome::Stuck);
            if running {
                resp.status = ModelStatus::Downloading;
                resp.progress = Some(DownloadProgress {
                    start_time: self.clock.unix() - (now - t.started),
                    elapsed_seconds: now - t.started,
                });
                return resp;
            }
            match &t.outcome {
                DownloadOutcome::Ok => resp.status = ModelStatus::Downloaded,
                DownloadOutcome::Partial(msg) => {
                    resp.status = ModelStatus::Partial;
                    resp.error_message = Some(msg.clone());
                }
                // The record is dropped as the task fails: back to NOT_FOUND.
                DownloadOutcome::Vanish | DownloadOutcome::Stuck => {}
            }
            return resp;
        }
        if g.cache.contains_key(&model.hf_repo) {
            resp.status = ModelStatus::Downloaded;
        }
        resp
    }

    /// `POST /api/v1/models/status`.
    pub fn models_status(&self, model: &Model) -> ModelStatusResponse {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        self.model_status_locked(&g, model, now)
    }

    fn downloading(&self, g: &Inner, now: f64) -> usize {
        g.downloads
            .values()
            .filter(|t| {
                !t.cancelled && (now < t.ends || matches!(t.outcome, DownloadOutcome::Stuck))
            })
            .count()
    }

    /// `POST /api/v1/models/download` (202).
    pub fn models_download(&self, model: &Model) -> Result<DownloadStartResponse, ApiError> {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let id = model.task_id();
        let st = self.model_status_locked(&g, model, now);
        if st.status == ModelStatus::Downloading {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("Model {id} is already downloading"),
            ));
        }
        if self.downloading(&g, now) >= MAX_DOWNLOADS {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Maximum concurrent downloads ({MAX_DOWNLOADS}) reached"),
            ));
        }
        let cached = g.cache.contains_key(&model.hf_repo);
        let (ends, outcome) = if cached {
            (now, DownloadOutcome::Ok)
        } else {
            match self.catalog.models.get(&model.hf_repo) {
                None => (
                    now + 2.0,
                    DownloadOutcome::Partial(format!("Repository not found: {}", model.hf_repo)),
                ),
                Some(size) => {
                    let secs = size / self.cfg.download_gb_per_s;
                    match self.cfg.faults.download {
                        None => (now + secs, DownloadOutcome::Ok),
                        Some(DownloadFault::Stuck) => (now + secs, DownloadOutcome::Stuck),
                        Some(DownloadFault::NotFound) => (now + secs.min(10.0), DownloadOutcome::Vanish),
                        Some(DownloadFault::Partial) => (
                            now + secs.min(15.0),
                            DownloadOutcome::Partial(
                                "Network error after 5 retry attempts: 429 Client Error: Too Many Requests for url: https://huggingface.co/api/models".into(),
                            ),
                        ),
                    }
                }
            }
        };
        g.downloads.insert(
            id.clone(),
            DownloadTask {
                model: model.clone(),
                started: now,
                ends,
                outcome,
                cancelled: false,
            },
        );
        Ok(DownloadStartResponse {
            task_id: id,
            status: if cached {
                ModelStatus::Downloaded
            } else {
                ModelStatus::Downloading
            },
            model: model.clone(),
        })
    }

    /// `DELETE /api/v1/models`.
    pub fn models_delete(&self, model: &Model) -> Result<DeleteModelResponse, ApiError> {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let id = model.task_id();
        if self.model_status_locked(&g, model, now).status == ModelStatus::Downloading {
            g.downloads.remove(&id);
            return Ok(DeleteModelResponse {
                status: "cancelled".into(),
                model: model.clone(),
            });
        }
        if g.cache.remove(&model.hf_repo).is_some() {
            g.downloads.remove(&id);
            return Ok(DeleteModelResponse {
                status: "deleted".into(),
                model: model.clone(),
            });
        }
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            match &model.hf_commit {
                Some(c) => format!("Revision {c} not found"),
                None => format!("Model {} not found in cache", model.hf_repo),
            },
        ))
    }

    /// `GET /api/v1/models/list`.
    pub fn models_list(&self) -> ModelListResponse {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        ModelListResponse {
            models: g
                .cache
                .keys()
                .map(|repo| ModelListEntry {
                    model: Model {
                        hf_repo: repo.clone(),
                        hf_commit: Some(revision_hash(repo)),
                    },
                    status: ModelStatus::Downloaded,
                })
                .collect(),
        }
    }

    /// `GET /api/v1/models/space`.
    pub fn models_space(&self) -> SpaceResponse {
        let g = self.lock();
        let used: f64 = g.cache.values().sum();
        SpaceResponse {
            cache_size_gb: (used * 100.0).round() / 100.0,
            available_gb: ((2000.0 - used).max(0.0) * 100.0).round() / 100.0,
            cache_path: "/root/.cache/huggingface/hub".into(),
        }
    }

    // ------------------------------------------------------------- inference

    fn is_running(&self, g: &Inner, now: f64) -> bool {
        matches!(g.startup, Startup::Completed { .. })
            && g.runner
                .as_ref()
                .is_some_and(|r| r.replicas.iter().all(|x| x.alive(now)))
    }

    /// `POST /api/v1/inference/up/async`.
    pub fn inference_up(&self, req: &InferenceInitRequest) -> Result<StatusMessage, ApiError> {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        if self.is_running(&g, now) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "VLLM is already running. Use /inference/down to stop it first.",
            ));
        }
        if matches!(g.startup, Startup::InProgress { .. }) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "VLLM startup is already in progress. Use /inference/up/status to check status.",
            ));
        }
        let n = self.replica_count(&req.additional_args);
        let ready_at = now + self.cfg.deploy_seconds + 5.0 * f64::from(n.saturating_sub(1));
        let (ends, outcome) = if !g.cache.contains_key(&req.model) {
            (
                Some(now + 5.0),
                DeployOutcome::Fail(format!(
                    "vLLM process exited prematurely: OSError: {} is not in the local HuggingFace cache and HF_HUB_OFFLINE=1 (download it first with POST /api/v1/models/download)",
                    req.model
                )),
            )
        } else {
            match self.cfg.faults.deploy {
                Some(DeployFault::Oom) | Some(DeployFault::ExitOnFailure) => (
                    Some(now + self.cfg.deploy_seconds * 0.5),
                    DeployOutcome::Fail(
                        "vLLM process exited prematurely: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.06 GiB is free.".into(),
                    ),
                ),
                Some(DeployFault::Timeout) => (None, DeployOutcome::Ok),
                _ => (Some(ready_at), DeployOutcome::Ok),
            }
        };
        g.startup = Startup::InProgress {
            started: now,
            ends,
            outcome,
        };
        g.runner = Some(self.make_runner(req.model.clone(), n, ready_at));
        Ok(StatusMessage {
            status: "starting".into(),
            message: Some("Inference startup initiated in background".into()),
        })
    }

    /// `POST /api/v1/inference/up` (synchronous): start, then wait for the outcome.
    pub async fn inference_up_sync(
        &self,
        req: &InferenceInitRequest,
    ) -> Result<StatusMessage, ApiError> {
        self.inference_up(req)?;
        loop {
            let st = self.up_status();
            match st.status {
                StartupState::InProgress => self.clock.sleep(1.0).await,
                StartupState::Completed => return Ok(StatusMessage::ok()),
                _ => {
                    return Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        st.error
                            .unwrap_or_else(|| "vLLM startup did not complete".into()),
                    ))
                }
            }
        }
    }

    /// `GET /api/v1/inference/up/status`.
    pub fn up_status(&self) -> StartupStatus {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let running = self.is_running(&g, now);
        match &g.startup {
            Startup::NotStarted => StartupStatus {
                status: StartupState::NotStarted,
                is_starting: false,
                is_running: false,
                elapsed_seconds: None,
                error: None,
            },
            Startup::InProgress { started, .. } => StartupStatus {
                status: StartupState::InProgress,
                is_starting: true,
                is_running: false,
                elapsed_seconds: Some(now - started),
                error: None,
            },
            Startup::Completed { started } => StartupStatus {
                status: StartupState::Completed,
                is_starting: false,
                is_running: running,
                elapsed_seconds: Some(now - started),
                error: None,
            },
            Startup::Failed { error } => StartupStatus {
                status: StartupState::Failed,
                is_starting: false,
                is_running: false,
                elapsed_seconds: None,
                error: Some(error.clone()),
            },
        }
    }

    /// `POST /api/v1/inference/down` and `POST /api/v1/stop`: idempotent.
    pub fn inference_down(&self) -> StatusMessage {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        g.runner = None;
        g.startup = Startup::NotStarted;
        StatusMessage::ok()
    }

    // -------------------------------------------------------------------- PoC

    /// Healthy replica indices, sorted by port.
    fn healthy(g: &Inner, now: f64) -> Vec<usize> {
        g.runner.as_ref().map_or_else(Vec::new, |r| {
            r.replicas
                .iter()
                .enumerate()
                .filter(|(_, x)| x.healthy(now))
                .map(|(i, _)| i)
                .collect()
        })
    }

    fn params_mismatch(requested: &PoCParams, served: &str) -> ApiError {
        ApiError::passthrough(
            StatusCode::CONFLICT,
            json!({"error": "params mismatch",
                   "requested": {"model": requested.model, "seq_len": requested.seq_len, "k_dim": requested.k_dim},
                   "deployed": {"model": [served], "seq_len": null, "k_dim": null}}),
        )
    }

    /// `POST /api/v1/inference/pow/init/generate`.
    pub fn pow_init(&self, req: &InitGenerateRequest) -> Result<InitGenerateResponse, ApiError> {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let healthy = Self::healthy(&g, now);
        if healthy.is_empty() {
            return Err(ApiError::no_backends());
        }
        let n_groups = healthy.len() as u32;
        let default_batch = self.cfg.default_batch_size;
        let Some(runner) = g.runner.as_mut() else {
            return Err(ApiError::no_backends());
        };
        let served = runner.model.clone();
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for (group_id, &idx) in healthy.iter().enumerate() {
            let r = &mut runner.replicas[idx];
            let fail = if !r.alive(now) {
                Some(CONNECT_ERROR.to_string())
            } else if let Some(e) = &r.init_error {
                Some(json!({ "detail": e }).to_string())
            } else if req.params.model != served {
                Some(Self::params_mismatch(&req.params, &served).detail_text())
            } else if r.mining.is_some() {
                Some(json!({"detail": "Already generating"}).to_string())
            } else {
                None
            };
            if let Some(error) = fail {
                errors.push(PortError {
                    port: r.port,
                    error,
                });
                continue;
            }
            let group = NonceGroup::new(
                req.node_id,
                req.node_count,
                group_id as u64,
                u64::from(n_groups),
            )
            .map_err(|e| ApiError::value_error(&["body", "node_id"], e.to_string(), Value::Null))?;
            let mut request = req.clone();
            if request.batch_size == 0 {
                request.batch_size = default_batch;
            }
            r.mining = Some(Mining::new(
                request,
                group,
                group_id as u32,
                n_groups,
                now,
                r.rate,
                r.stall_after.map(|s| now + s),
            ));
            results.push(PortResult {
                port: r.port,
                status: "OK".into(),
            });
        }
        if results.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                json!({ "errors": errors }),
            ));
        }
        Ok(InitGenerateResponse {
            status: "OK".into(),
            backends: results.len() as u32,
            n_groups,
            results,
            errors: (!errors.is_empty()).then_some(errors),
        })
    }

    /// `GET /api/v1/inference/pow/status`.
    pub fn pow_status(&self) -> PowStatusResponse {
        self.pow_status_at(self.clock.now())
    }

    /// [`Node::pow_status`] at a given simulated time (for tests).
    pub fn pow_status_at(&self, now: f64) -> PowStatusResponse {
        let mut g = self.lock();
        self.advance(&mut g, now);
        let healthy = Self::healthy(&g, now);
        let mut backends = Vec::new();
        if let Some(runner) = g.runner.as_ref() {
            for &idx in &healthy {
                let r = &runner.replicas[idx];
                backends.push(if !r.alive(now) {
                    BackendStatus {
                        port: r.port,
                        status: "ERROR".into(),
                        config: None,
                        stats: None,
                        detail: Some(CONNECT_ERROR.into()),
                    }
                } else if let Some(m) = &r.mining {
                    BackendStatus {
                        port: r.port,
                        status: "GENERATING".into(),
                        config: Some(m.config()),
                        stats: Some(m.stats(now)),
                        detail: None,
                    }
                } else {
                    BackendStatus {
                        port: r.port,
                        status: "IDLE".into(),
                        config: None,
                        stats: None,
                        detail: None,
                    }
                });
            }
        }
        PowStatusResponse {
            status: AggregateStatus::of(backends.iter().map(|b| b.status.as_str())),
            backends,
        }
    }

    /// `GET /api/v1/inference/pow/status` rendered straight to JSON bytes, equal to
    /// `serde_json::to_vec(&self.pow_status())`. DAPI and validators poll this endpoint;
    /// each mining session's `config` is serialized once (`Mining::config_json`) instead
    /// of on every poll, which was most of the per-request cost.
    pub fn pow_status_json(&self) -> Vec<u8> {
        self.pow_status_json_at(self.clock.now())
    }

    /// [`Node::pow_status_json`] at a given simulated time (for tests).
    pub fn pow_status_json_at(&self, now: f64) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut g = self.lock();
        self.advance(&mut g, now);
        let healthy = Self::healthy(&g, now);
        let mut statuses = Vec::with_capacity(healthy.len());
        let mut body = String::with_capacity(160 + 320 * healthy.len());
        body.push_str("\"backends\":[");
        if let Some(runner) = g.runner.as_ref() {
            for (n, &idx) in healthy.iter().enumerate() {
                let r = &runner.replicas[idx];
                if n > 0 {
                    body.push(',');
                }
                if !r.alive(now) {
                    statuses.push("ERROR");
                    let _ = write!(body, "{{\"port\":{},\"status\":\"ERROR\",\"config\":null,\"stats\":null,\"detail\":\"{CONNECT_ERROR}\"}}", r.port);
                } else if let Some(m) = &r.mining {
                    statuses.push("GENERATING");
                    let st = m.stats(now);
                    let rate = serde_json::to_string(&st.nonces_per_second)
                        .unwrap_or_else(|_| "0.0".into());
                    let _ = write!(
                        body,
                        "{{\"port\":{},\"status\":\"GENERATING\",\"config\":{},\"stats\":{{\"total_processed\":{},\"nonces_per_second\":{rate}}}}}",
                        r.port, m.config_json, st.total_processed
                    );
                } else {
                    statuses.push("IDLE");
                    let _ = write!(
                        body,
                        "{{\"port\":{},\"status\":\"IDLE\",\"config\":null,\"stats\":null}}",
                        r.port
                    );
                }
            }
        }
        body.push_str("]}");
        let agg = serde_json::to_string(&AggregateStatus::of(statuses.iter().copied()))
            .unwrap_or_default();
        format!("{{\"status\":{agg},{body}").into_bytes()
    }

    /// `POST /api/v1/inference/pow/stop`.
    pub fn pow_stop(&self) -> StopResponse {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let healthy = Self::healthy(&g, now);
        let Some(runner) = g.runner.as_mut().filter(|_| !healthy.is_empty()) else {
            return StopResponse::NoBackends {
                status: "OK".into(),
                message: "No backends to stop".into(),
            };
        };
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for &idx in &healthy {
            let r = &mut runner.replicas[idx];
            if !r.alive(now) {
                errors.push(PortError {
                    port: r.port,
                    error: CONNECT_ERROR.into(),
                });
                continue;
            }
            r.stop(now);
            results.push(PortResult {
                port: r.port,
                status: "stopped".into(),
            });
        }
        StopResponse::Fanout {
            status: "OK".into(),
            results,
            errors: (!errors.is_empty()).then_some(errors),
        }
    }

    /// Replica-side checks of a `/generate`, then the round-robin choice.
    fn route_generate(
        &self,
        g: &Inner,
        req: &GenerateRequest,
        now: f64,
    ) -> Result<usize, ApiError> {
        let healthy = Self::healthy(g, now);
        if healthy.is_empty() {
            return Err(ApiError::no_backends());
        }
        let idx = healthy[self.rr.fetch_add(1, Ordering::Relaxed) % healthy.len()];
        let Some(runner) = g.runner.as_ref() else {
            return Err(ApiError::no_backends());
        };
        if !runner.replicas[idx].alive(now) {
            return Err(ApiError::new(StatusCode::BAD_GATEWAY, CONNECT_ERROR));
        }
        if let Some(v) = &req.validation {
            // Same order (what validators send) proves set equality without hashing.
            let same_order = v.artifacts.len() == req.nonces.len()
                && v.artifacts
                    .iter()
                    .zip(&req.nonces)
                    .all(|(a, n)| a.nonce == *n);
            let same_set = same_order || {
                let a: std::collections::HashSet<i64> =
                    v.artifacts.iter().map(|a| a.nonce).collect();
                let b: std::collections::HashSet<i64> = req.nonces.iter().copied().collect();
                a == b
            };
            if !same_set {
                return Err(ApiError::passthrough(
                    StatusCode::BAD_REQUEST,
                    "validation.artifacts nonces must match nonces field".into(),
                ));
            }
        }
        if req.params.model != runner.model {
            return Err(Self::params_mismatch(&req.params, &runner.model));
        }
        if let Some(st) = &req.stat_test {
            SERVER_DEFAULTS.merged(st).check().map_err(|e| {
                ApiError::value_error(&["body", "stat_test"], e.to_string(), Value::Null)
            })?;
        }
        Ok(idx)
    }

    /// `POST /api/v1/inference/pow/generate`.
    pub async fn pow_generate(&self, req: GenerateRequest) -> Result<GenerateResponse, ApiError> {
        if req.batch_size == 0 {
            return Err(ApiError::value_error(
                &["body", "batch_size"],
                "Input should be greater than 0",
                json!(0),
            ));
        }
        let t0 = self.clock.now();
        let (idx, port) = {
            let mut g = self.lock();
            self.advance(&mut g, t0);
            let idx = self.route_generate(&g, &req, t0)?;
            let Some(runner) = g.runner.as_mut() else {
                return Err(ApiError::no_backends());
            };
            let r = &mut runner.replicas[idx];
            if !req.wait {
                let queued = r.queued_nonces();
                if queued + req.nonces.len() > MAX_QUEUED_NONCES {
                    return Err(ApiError::passthrough(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("Queue full: {queued} nonces queued, limit is {MAX_QUEUED_NONCES}")
                            .into(),
                    ));
                }
                let id = uuid();
                r.queue.push_back(Job {
                    id: id.clone(),
                    request: req,
                    status: JobStatus::Queued,
                    enqueued: t0,
                    ends: None,
                    finished_at: None,
                    result: None,
                    error: None,
                });
                let queued_count = r.queue.len() as u64;
                let port = r.port;
                self.advance(&mut g, t0);
                return Ok(GenerateResponse::Queued {
                    status: "queued".into(),
                    request_id: format!("{port}:{id}"),
                    queued_count,
                });
            }
            (idx, r.port)
        };
        // wait=true: spin while the replica mines, then compute; the MLNode gives up at 60 s.
        let deadline = t0 + PROXY_TIMEOUT_SECONDS;
        let timeout = || ApiError::new(StatusCode::BAD_GATEWAY, "ReadTimeout: timed out");
        loop {
            let busy = {
                let g = self.lock();
                g.runner
                    .as_ref()
                    .and_then(|r| r.replicas.get(idx))
                    .filter(|r| r.port == port)
                    .map(|r| r.mining.is_some())
            };
            match busy {
                None => return Err(ApiError::new(StatusCode::BAD_GATEWAY, CONNECT_ERROR)),
                Some(false) => break,
                Some(true) => {
                    if self.clock.now() >= deadline {
                        return Err(timeout());
                    }
                    self.clock.sleep(1.0).await;
                }
            }
        }
        let secs = {
            let g = self.lock();
            g.runner
                .as_ref()
                .and_then(|r| r.replicas.get(idx))
                .map_or(0.0, |r| self.generate_seconds(r, req.nonces.len()))
        };
        let now = self.clock.now();
        if now + secs > deadline {
            self.clock.sleep(deadline - now).await;
            return Err(timeout());
        }
        self.clock.sleep(secs).await;
        let result = self.compute(&req)?;
        Ok(GenerateResponse::Completed {
            status: "completed".into(),
            request_id: uuid(),
            result,
        })
    }

    /// `GET /api/v1/inference/pow/generate/{request_id}`.
    pub fn pow_poll(&self, request_id: &str) -> Result<JobPollResponse, ApiError> {
        let Some((port, id)) = request_id.split_once(':') else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "Invalid request_id format (expected port:uuid)",
            ));
        };
        let port: u16 = port
            .parse()
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "Invalid port in request_id"))?;
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let replica = g
            .runner
            .as_mut()
            .and_then(|r| r.replicas.iter_mut().find(|x| x.port == port))
            .filter(|r| r.alive(now))
            .ok_or_else(|| ApiError::new(StatusCode::BAD_GATEWAY, CONNECT_ERROR))?;
        replica.purge(now);
        let job = replica
            .queue
            .iter()
            .find(|j| j.id == id)
            .or_else(|| replica.results.get(id))
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Request not found"))?;
        Ok(JobPollResponse {
            status: job.status,
            request_id: request_id.to_owned(),
            result: job.result.clone(),
            error: job.error.clone(),
        })
    }

    // ------------------------------------------------------------------ state

    /// `GET /api/v1/state`.
    pub fn state(&self) -> StateResponse {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let inference = match &g.startup {
            Startup::InProgress { .. } => g.runner.is_some(),
            Startup::Completed { .. } => self.is_running(&g, now),
            _ => false,
        };
        if !inference {
            return StateResponse {
                state: ServiceState::Stopped,
                version: self.cfg.version.clone(),
                poc_status: None,
                inference_healthy: None,
                loaded_model: None,
                poc_validation_inference: false,
            };
        }
        let healthy = Self::healthy(&g, now);
        let runner = g.runner.as_ref();
        let statuses: Vec<&str> = healthy
            .iter()
            .filter_map(|&i| runner.map(|r| &r.replicas[i]))
            .map(|r| {
                if r.is_generating() {
                    "GENERATING"
                } else {
                    "IDLE"
                }
            })
            .collect();
        let poc_status = if statuses.is_empty() {
            "NO_BACKENDS"
        } else if statuses.iter().all(|s| *s == "GENERATING") {
            "GENERATING"
        } else if statuses.contains(&"GENERATING") {
            "MIXED"
        } else {
            "IDLE"
        };
        StateResponse {
            state: ServiceState::Inference,
            version: self.cfg.version.clone(),
            poc_status: Some(poc_status.into()),
            inference_healthy: Some(!healthy.is_empty()),
            loaded_model: (!healthy.is_empty())
                .then(|| runner.map(|r| r.model.clone()))
                .flatten(),
            poc_validation_inference: false,
        }
    }

    /// `GET /api/v1/versions`.
    pub fn versions(&self) -> VersionsResponse {
        let now = self.clock.now();
        let g = self.lock();
        VersionsResponse {
            version: self.cfg.version.clone(),
            vllm_version: (!Self::healthy(&g, now).is_empty()).then(|| "0.28.0+sim".to_string()),
            poc_validation_inference: false,
        }
    }

    fn gpu_count(&self) -> u32 {
        self.cfg
            .gpus
            .unwrap_or_else(|| self.profile.gpus_per_instance * self.cfg.replicas.unwrap_or(1))
    }

    /// GPU devices as `/health` and `/gpu/devices` show them.
    pub fn gpu_devices(&self) -> Vec<GpuDevice> {
        (0..self.gpu_count())
            .map(|i| GpuDevice {
                index: i,
                name: self.profile.gpu.clone(),
                total_memory_mb: Some(81559),
                free_memory_mb: Some(80000),
                used_memory_mb: Some(1559),
                utilization_percent: Some(0),
                temperature_c: Some(31),
                is_available: true,
                error_message: None,
            })
            .collect()
    }

    /// `GET /health` body and whether it is healthy (503 otherwise).
    pub fn health(&self) -> HealthResponse {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let running = g.runner.is_some() && !matches!(g.startup, Startup::Failed { .. });
        let healthy = !running
            || g.runner
                .as_ref()
                .is_some_and(|r| r.replicas.iter().all(|x| x.alive(now)));
        let service_state = if running && healthy {
            ServiceState::Inference
        } else {
            ServiceState::Stopped
        };
        drop(g);
        HealthResponse {
            status: if healthy { "healthy" } else { "unhealthy" }.into(),
            service_state,
            gpu: GpuInfo {
                available: true,
                count: self.gpu_count(),
                devices: self.gpu_devices(),
            },
            managers: Managers {
                inference: ManagerHealth { running, healthy },
                train: ManagerHealth {
                    running: false,
                    healthy: true,
                },
            },
        }
    }

    /// `GET /readyz`.
    pub fn ready(&self) -> bool {
        let st = self.state();
        !(st.state == ServiceState::Inference && st.inference_healthy == Some(false))
    }

    /// The served model and whether a healthy replica is mining (for `/v1/*` gating).
    pub fn inference_target(&self) -> Option<(String, bool)> {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let healthy = Self::healthy(&g, now);
        let runner = g.runner.as_ref()?;
        let i = *healthy.first()?;
        Some((runner.model.clone(), runner.replicas[i].is_generating()))
    }
}

/// A request's view of the node's vectors (see [`Node::source`]).
pub struct VectorSource<'a> {
    node: &'a Node,
    round: vectors::Round,
    refs: Option<&'a HashMap<i64, Vector>>,
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
        let base = self.refs.and_then(|r| r.get(&nonce));
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
                for (o, x) in out.iter_mut().zip(&unit[..k]) {
                    *o = mlnode_protocol::codec::f16_bits_to_f32(
                        half::f16::from_f32(*x as f32).to_bits(),
                    );
                }
                k
            }
        })
    }
}

fn revision_hash(repo: &str) -> String {
    let d = Sha256::digest(repo.as_bytes());
    d.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

fn job_callback(url: &str, id: &str, req: &GenerateRequest, result: &JobResult) -> Callback {
    let base = url.trim_end_matches('/');
    match result {
        JobResult::Validation(v) => Callback {
            url: format!("{base}/validated"),
            body: serde_json::to_value(ValidatedCallback {
                request_id: id.into(),
                block_hash: req.block_hash.clone(),
                block_height: req.block_height,
                public_key: req.public_key.clone(),
                node_id: req.node_id,
                result: v.clone(),
            })
            .unwrap_or(Value::Null),
        },
        JobResult::Artifacts(a) => Callback {
            url: format!("{base}/generated"),
            body: serde_json::to_value(GeneratedCallback {
                request_id: Some(id.into()),
                public_key: req.public_key.clone(),
                block_hash: req.block_hash.clone(),
                block_height: req.block_height,
                node_id: req.node_id,
                artifacts: a.artifacts.clone(),
                encoding: a.encoding.clone(),
            })
            .unwrap_or(Value::Null),
        },
    }
}

/// Convenience for tests and embedding: the default stat test the node applies.
pub fn server_stat_test() -> StatTest {
    SERVER_DEFAULTS
}
