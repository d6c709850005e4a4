//! Node state, versions, health and readiness (mlnode-api §4.4).

use mlnode_protocol::wire::{
    GpuDevice, GpuInfo, HealthResponse, ManagerHealth, Managers, ReplicaVersions, ServiceState,
    StateResponse, VersionsResponse,
};

use super::{Inner, Node, Startup};

impl Node {
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
        let pvi = Self::replica_versions(&mut g, now).is_some_and(|v| v.poc_validation_inference);
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
            poc_validation_inference: pvi,
        }
    }

    /// The first healthy replica's `/api/v1/pow/versions`, cached on the deploy after the
    /// first success; `None` (the MLNode's fail-closed defaults) while none is healthy and
    /// nothing is cached.
    pub(super) fn replica_versions(g: &mut Inner, now: f64) -> Option<ReplicaVersions> {
        let healthy = Self::healthy(g, now);
        let runner = g.runner.as_mut()?;
        if runner.versions.is_none() {
            runner.versions = healthy
                .first()
                .map(|&i| runner.replicas[i].versions.clone());
        }
        runner.versions.clone()
    }

    /// A replica's own `/api/v1/pow/versions`, as the inference port's compat proxy
    /// reaches it (the first healthy replica); `None` when none is healthy.
    pub fn pow_versions(&self) -> Option<ReplicaVersions> {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let healthy = Self::healthy(&g, now);
        let runner = g.runner.as_ref()?;
        healthy
            .first()
            .map(|&i| runner.replicas[i].versions.clone())
    }

    /// `GET /api/v1/versions`.
    pub fn versions(&self) -> VersionsResponse {
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let v = Self::replica_versions(&mut g, now);
        VersionsResponse {
            version: self.cfg.version.clone(),
            vllm_version: v.as_ref().map(|v| v.vllm_version.clone()),
            poc_validation_inference: v.is_some_and(|v| v.poc_validation_inference),
        }
    }

    pub(super) fn gpu_count(&self) -> u32 {
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
        let healthy = self.internal_error().is_none()
            && (!running
                || g.runner
                    .as_ref()
                    .is_some_and(|r| r.replicas.iter().all(|x| x.alive(now))));
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

/// One replica as metrics and the admin API show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplicaView {
    pub index: u32,
    pub port: u16,
    pub healthy: bool,
    pub generating: bool,
    /// Nonces mined in the current session (0 when not mining).
    pub nonces_processed: u64,
    pub jobs_running: usize,
    pub jobs_queued: usize,
    pub versions: ReplicaVersions,
}

/// The running deploy as metrics and the admin API show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeployView {
    pub model: String,
    pub args: Vec<String>,
    pub profile: String,
    pub replicas: Vec<ReplicaView>,
}

impl Node {
    /// The running deploy and its replicas now (`None` when nothing is deployed).
    pub fn deploy_view(&self) -> Option<DeployView> {
        use mlnode_protocol::wire::JobStatus;
        let now = self.clock.now();
        let mut g = self.lock();
        self.advance(&mut g, now);
        let runner = g.runner.as_ref()?;
        Some(DeployView {
            model: runner.model.clone(),
            args: self.deploy_args(),
            profile: runner.profile.name.clone(),
            replicas: runner
                .replicas
                .iter()
                .map(|r| ReplicaView {
                    index: r.index,
                    port: r.port,
                    healthy: r.healthy(now),
                    generating: r.is_generating(),
                    nonces_processed: r.mining.as_ref().map_or(0, |m| m.processed(now)),
                    jobs_running: r
                        .queue
                        .iter()
                        .filter(|j| j.status == JobStatus::Running)
                        .count(),
                    jobs_queued: r
                        .queue
                        .iter()
                        .filter(|j| j.status == JobStatus::Queued)
                        .count(),
                    versions: r.versions.clone(),
                })
                .collect(),
        })
    }
}
