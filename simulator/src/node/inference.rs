//! Inference startup behind `/api/v1/inference/up*`, `/down` (mlnode-api §4.2, §3.2).

use axum::http::StatusCode;
use mlnode_protocol::wire::{InferenceInitRequest, StartupState, StartupStatus, StatusMessage};

use super::{DeployOutcome, Inner, Node, Startup};
use crate::config::DeployFault;
use crate::error::ApiError;

impl Node {
    pub(super) fn is_running(&self, g: &Inner, now: f64) -> bool {
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
        let n = self.replica_count(&req.model, &req.additional_args);
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
        g.runner =
            Some(self.make_runner(req.model.clone(), req.additional_args.clone(), n, ready_at));
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
}
