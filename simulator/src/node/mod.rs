//! The simulated MLNode: model cache, inference startup, replicas and PoC semantics.
//!
//! All state sits behind one mutex and is advanced lazily from the [`SimClock`]: a
//! download "finishes" when someone looks after its end time, a replica's progress is a
//! function of time. A background ticker ([`Node::tick`], driven by `Sim`) only exists to
//! push callbacks and to take the node down/up for the process-exit fault. Methods speak in
//! wire types and [`ApiError`]s; the `api` modules only route.
//!
//! | module | `impl Node` for |
//! |---|---|
//! | this file | construction, replica controls, time (`advance`, `tick`, mining callbacks) |
//! | `models` | `/api/v1/models/*` |
//! | `inference` | `/api/v1/inference/up*`, `/down` |
//! | `pow` | `/api/v1/inference/pow/*` |
//! | `state` | `/state`, `/versions`, `/health`, `/readyz`, inference gating |
//! | `sources` | the node's vectors per request, and explicit-nonce compute |

mod inference;
mod models;
mod pow;
mod sink;
mod sources;
mod state;

pub use sink::{Delivery, SinkSummary};
pub use sources::VectorSource;
pub use state::{DeployView, ReplicaView};

use std::collections::{BTreeMap, HashMap};

use mlnode_protocol::vllm_args;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::StatusCode;
use mlnode_protocol::partition::NonceGroup;
use mlnode_protocol::wire::*;
use serde_json::Value;

use crate::callbacks::{Callback, CallbackSink};
use crate::clock::SimClock;
use crate::config::{DeployFault, NodeConfig};
use crate::error::ApiError;
use crate::fixtures::{Catalog, Profile};
use crate::refs::RefStore;
use crate::replica::{Mining, Replica, CALLBACK_INTERVAL_SECONDS, CALLBACK_MAX_ARTIFACTS};

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
    /// The hardware profile this deploy runs at.
    profile: Profile,
    replicas: Vec<Replica>,
    /// The first healthy replica's `/pow/versions`, kept after the first success as the
    /// MLNode does (a new deploy starts without it).
    versions: Option<ReplicaVersions>,
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
    /// The first internal error (a caught panic): the node reports itself unhealthy
    /// instead of silently losing a background task.
    internal_error: Mutex<Option<String>>,
    /// Poked by every request: an idle node's ticker sleeps until something happens.
    wake: tokio::sync::Notify,
    /// The clock's scale as the `x-sim-time-scale` header value, rendered once (every
    /// answer carries it).
    pub scale_header: axum::http::HeaderValue,
    /// The latest deploy's vLLM args, kept apart from `inner` so that vector sources can
    /// read them while `inner` is held.
    deploy_args: Mutex<Vec<String>>,
    /// `http://<poc addr>/api/v1/inference/pow/local-sink`, once bound.
    local_sink: std::sync::OnceLock<String>,
    sink: Mutex<SinkSummary>,
    /// The encrypted-inference identity (`encrypted_identity = true`), else the node
    /// answers as one without a key provider.
    pub encrypted: Option<crate::encrypted::Identity>,
}

/// One HTTP client for every node's callbacks in this process: a client with TLS
/// support parses the whole root store when built (≈ 27 KB a node, measured on a
/// 1,000-node fleet), and a clone shares its pool and config.
fn callback_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new).clone()
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Node {
    /// Whether anything must happen without a request: callbacks to deliver (mining with a
    /// url, queued jobs, the outbox), a deploy under way, a process-exit window. Time is
    /// otherwise computed on request, so an idle node needs no timer at all.
    pub fn needs_ticks(&self) -> bool {
        let g = self.lock();
        g.down.is_some()
            || !g.outbox.is_empty()
            || matches!(g.startup, Startup::InProgress { .. })
            || g.runner.as_ref().is_some_and(|r| {
                r.replicas.iter().any(|x| {
                    !x.queue.is_empty()
                        || x.mining.as_ref().is_some_and(|m| m.request.url.is_some())
                })
            })
    }

    /// The running deploy's vLLM args (empty when nothing is deployed with args).
    pub fn deploy_args(&self) -> Vec<String> {
        self.deploy_args
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The reference recordings this node serves for `model`'s rounds with its current
    /// deploy, preferred first.
    pub fn served_references(&self, model: &str) -> Vec<crate::refs::ServedRound> {
        self.refs.served_for(model, &self.deploy_args())
    }

    /// A request arrived: an idle ticker looks again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next [`Node::wake`].
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Record a caught panic (the first one is kept; later ones are logged only).
    pub fn record_internal_error(&self, what: &str, message: &str) {
        tracing::error!(
            what,
            message,
            "internal error caught; node marked unhealthy"
        );
        let mut e = self
            .internal_error
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        e.get_or_insert_with(|| format!("{what}: {message}"));
    }

    /// The first internal error, if any.
    pub fn internal_error(&self) -> Option<String> {
        self.internal_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

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
            http: callback_client(),
            sinks: Mutex::new(HashMap::new()),
            internal_error: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            scale_header: axum::http::HeaderValue::from_str(&clock.scale().to_string())
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("1")),
            deploy_args: Mutex::new(Vec::new()),
            local_sink: std::sync::OnceLock::new(),
            sink: Mutex::new(SinkSummary::default()),
            encrypted: cfg
                .encrypted_identity
                .then(|| crate::encrypted::Identity::from_seed(cfg.seed)),
            cfg,
        });
        if let Some(model) = node.cfg.deployed_model.clone() {
            let mut g = node.lock();
            let n = node.replica_count(&model, &[]);
            g.startup = Startup::Completed { started: 0.0 };
            g.runner = Some(node.make_runner(model, Vec::new(), n, 0.0));
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
        let base = self.lock().runner.as_ref().map_or_else(
            || self.profile.nonces_per_second(),
            |r| r.profile.nonces_per_second(),
        );
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

    /// The hardware profile a deploy runs at: the configured one when it was chosen
    /// (`--profile`, a scenario), else the shipped profile recorded for this model with
    /// the deploy's GPUs per instance (tp·pp; no args: the profile's own), else the first
    /// one for the model, else the generic one.
    pub fn profile_for(&self, model: &str, args: &[String]) -> Profile {
        if self.profile.name != crate::config::DEFAULT_PROFILE {
            return self.profile.clone();
        }
        let all = crate::fixtures::profiles().unwrap_or_default();
        let mine: Vec<&Profile> = all
            .iter()
            .filter(|p| p.model.as_deref() == Some(model))
            .collect();
        let tp = self.parallel_size(args);
        mine.iter()
            .find(|p| args.is_empty() || p.gpus_per_instance == tp)
            .or(mine.first())
            .map_or_else(|| self.profile.clone(), |p| (*p).clone())
    }

    /// Tensor × pipeline parallel size of `args`, read by this node's rule.
    fn parallel_size(&self, args: &[String]) -> u32 {
        let (tp, pp) = vllm_args::parallel(args, self.cfg.arg_rule);
        tp.saturating_mul(pp)
    }

    /// Replicas of a deploy: `--replicas` when given; else `max(1, gpus / (tp·pp))` read
    /// by the node's argument rule (a deploy without args runs at its profile's GPUs per
    /// instance).
    fn replica_count(&self, model: &str, args: &[String]) -> u32 {
        if let Some(n) = self.cfg.replicas {
            return n;
        }
        let profile = self.profile_for(model, args);
        let gpus = self.cfg.gpus.unwrap_or(profile.gpus_per_instance);
        if args.is_empty() {
            return (gpus / profile.gpus_per_instance.max(1)).clamp(1, vllm_args::MAX_INSTANCES);
        }
        vllm_args::replicas(args, gpus, self.cfg.arg_rule)
    }

    fn make_runner(&self, model: String, args: Vec<String>, n: u32, ready_at: f64) -> Runner {
        args.clone_into(&mut self.deploy_args.lock().unwrap_or_else(|e| e.into_inner()));
        let profile = self.profile_for(&model, &args);
        if profile.name != self.profile.name {
            tracing::info!(model, profile = %profile.name, replicas = n, "deploy runs at the model's hardware profile");
        }
        for r in self.refs.served_for(&model, &args) {
            tracing::info!(
                model,
                reference = %r.serves,
                block_hash = %r.block_hash,
                seq_len = r.seq_len,
                fallbacks = ?r.fallbacks,
                "serving reference vectors for this round"
            );
        }
        let base_rate = profile.nonces_per_second();
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
                    ReplicaVersions {
                        vllm_version: fault
                            .and_then(|f| f.vllm_version.clone())
                            .unwrap_or_else(|| self.cfg.vllm_version.clone()),
                        gonka_poc_version: self.cfg.gonka_poc_version.clone(),
                        poc_validation_inference: fault
                            .and_then(|f| f.poc_validation_inference)
                            .unwrap_or(self.cfg.poc_validation_inference),
                    },
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
                        batch_size: Some(self.cfg.default_batch_size),
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
        Runner {
            model,
            profile,
            replicas,
            versions: None,
        }
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
                    match self.compute(&job.request, &job.stat_test) {
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
                if let Some(path) = self.local_sink_url().and_then(|s| cb.url.strip_prefix(s)) {
                    self.sink_receive(path, &cb.body);
                    continue;
                }
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
        if self.is_own_sink(&url) {
            // Counted, not encoded: nobody reads the vectors of a node's own sink.
            self.sink_record(sink::Delivery {
                path: "generated".into(),
                at: now,
                artifacts: (done - from) as usize,
                request_id: None,
                fraud_detected: None,
            });
            return None;
        }
        let req = &m.request;
        let src = self.source(
            &req.params,
            &req.block_hash,
            &req.public_key,
            req.poc_stronger_rng,
            req.batch_size_or(DEFAULT_BATCH_SIZE),
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
