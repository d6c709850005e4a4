//! PoC v2 proxy semantics behind `/api/v1/inference/pow/*` (mlnode-api §4.3, §6).

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use mlnode_protocol::partition::NonceGroup;
use mlnode_protocol::wire::{
    AggregateStatus, BackendStatus, GenerateRequest, GenerateResponse, InitGenerateRequest,
    InitGenerateResponse, JobPollResponse, JobStatus, PoCParams, PortError, PortResult,
    PowStatusResponse, StopResponse, DEFAULT_BATCH_SIZE,
};
use mlnode_protocol::{StatTest, SERVER_DEFAULTS};
use serde_json::{json, Value};

use super::{uuid, Inner, Node, CONNECT_ERROR, PROXY_TIMEOUT_SECONDS};
use crate::error::ApiError;
use crate::replica::{Job, Mining, MAX_QUEUED_NONCES};

impl Node {
    /// Healthy replica indices, sorted by port.
    pub(super) fn healthy(g: &Inner, now: f64) -> Vec<usize> {
        g.runner.as_ref().map_or_else(Vec::new, |r| {
            r.replicas
                .iter()
                .enumerate()
                .filter(|(_, x)| x.healthy(now))
                .map(|(i, _)| i)
                .collect()
        })
    }

    pub(super) fn params_mismatch(requested: &PoCParams, served: &str) -> ApiError {
        ApiError::passthrough(
            StatusCode::CONFLICT,
            json!({"error": "params mismatch",
                   "requested": {"model": requested.model, "seq_len": requested.seq_len, "k_dim": requested.k_dim},
                   "deployed": {"model": [served], "seq_len": null, "k_dim": null}}),
        )
    }

    /// `POST /api/v1/inference/pow/init/generate`.
    pub fn pow_init(&self, req: &InitGenerateRequest) -> Result<InitGenerateResponse, ApiError> {
        check_params(&req.params)?;
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
            request.batch_size = Some(match request.batch_size {
                None => DEFAULT_BATCH_SIZE,
                Some(0) => default_batch,
                Some(b) => b,
            });
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
        let mut g = self.lock();
        self.advance(&mut g, now);
        let replicas = g.runner.as_ref().map_or(&[][..], |r| &r.replicas[..]);
        let healthy = || replicas.iter().filter(|r| r.healthy(now));
        // The aggregate first (it leads the object), from the same states as the list.
        let agg = AggregateStatus::of(healthy().map(|r| {
            if !r.alive(now) {
                "ERROR"
            } else if r.mining.is_some() {
                "GENERATING"
            } else {
                "IDLE"
            }
        }));
        // One buffer, no intermediate strings and no `fmt` machinery (numbers go through
        // serde_json's integer and float writers); writes into a Vec cannot fail.
        let mut out = Vec::with_capacity(64 + 320 * replicas.len());
        out.extend_from_slice(b"{\"status\":");
        let _ = serde_json::to_writer(&mut out, &agg);
        out.extend_from_slice(b",\"backends\":[");
        for (n, r) in healthy().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"port\":");
            let _ = serde_json::to_writer(&mut out, &r.port);
            if !r.alive(now) {
                out.extend_from_slice(
                    b",\"status\":\"ERROR\",\"config\":null,\"stats\":null,\"detail\":\"",
                );
                out.extend_from_slice(CONNECT_ERROR.as_bytes());
                out.extend_from_slice(b"\"}");
            } else if let Some(m) = &r.mining {
                let st = m.stats(now);
                out.extend_from_slice(b",\"status\":\"GENERATING\",\"config\":");
                out.extend_from_slice(m.config_json.as_bytes());
                out.extend_from_slice(b",\"stats\":{\"total_processed\":");
                let _ = serde_json::to_writer(&mut out, &st.total_processed);
                out.extend_from_slice(b",\"nonces_per_second\":");
                let _ = serde_json::to_writer(&mut out, &st.nonces_per_second);
                out.extend_from_slice(b"}}");
            } else {
                out.extend_from_slice(b",\"status\":\"IDLE\",\"config\":null,\"stats\":null}");
            }
        }
        out.extend_from_slice(b"]}");
        out
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
    pub(super) fn route_generate(
        &self,
        g: &Inner,
        req: &GenerateRequest,
        now: f64,
    ) -> Result<(usize, StatTest), ApiError> {
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
            let same_order = v.artifacts.nonces() == req.nonces.as_slice();
            let same_set = same_order || {
                let a: std::collections::HashSet<i64> =
                    v.artifacts.nonces().iter().copied().collect();
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
        // The request's stat test, resolved once: the job carries it to `compute`.
        let st = SERVER_DEFAULTS.merged(req.stat_test.as_ref().unwrap_or(&Default::default()));
        if req.stat_test.is_some() {
            st.check().map_err(|e| {
                ApiError::value_error(&["body", "stat_test"], e.to_string(), Value::Null)
            })?;
        }
        Ok((idx, st))
    }

    /// `POST /api/v1/inference/pow/generate`.
    pub async fn pow_generate(&self, req: GenerateRequest) -> Result<GenerateResponse, ApiError> {
        check_params(&req.params)?;
        if req.batch_size == Some(0) {
            return Err(ApiError::value_error(
                &["body", "batch_size"],
                "Input should be greater than 0",
                json!(0),
            ));
        }
        let t0 = self.clock.now();
        let (idx, port, stat_test) = {
            let mut g = self.lock();
            self.advance(&mut g, t0);
            let (idx, stat_test) = self.route_generate(&g, &req, t0)?;
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
                    stat_test,
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
            (idx, r.port, stat_test)
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
        let result = self.compute(&req, &stat_test)?;
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
}

/// 422 for PoC params out of the range the node can compute.
fn check_params(p: &PoCParams) -> Result<(), ApiError> {
    match p.out_of_range() {
        None => Ok(()),
        Some((field, msg)) => {
            let input = if field == "k_dim" { p.k_dim } else { p.seq_len };
            Err(ApiError::value_error(
                &["body", "params", field],
                msg,
                json!(input),
            ))
        }
    }
}
