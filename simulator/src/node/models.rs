//! Model cache management behind `/api/v1/models/*` (mlnode-api §4.1).

use axum::http::StatusCode;
use mlnode_protocol::wire::{
    DeleteModelResponse, DownloadProgress, DownloadStartResponse, Model, ModelListEntry,
    ModelListResponse, ModelStatus, ModelStatusResponse, SpaceResponse,
};
use sha2::{Digest, Sha256};

use super::{DownloadOutcome, DownloadTask, Inner, Node, MAX_DOWNLOADS};
use crate::config::DownloadFault;
use crate::error::ApiError;

impl Node {
    pub(super) fn model_status_locked(
        &self,
        g: &Inner,
        model: &Model,
        now: f64,
    ) -> ModelStatusResponse {
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

    pub(super) fn downloading(&self, g: &Inner, now: f64) -> usize {
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
        // The repo absent: the model's id (`repo:latest` without a commit); the repo
        // present at another revision: the revision.
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            match &model.hf_commit {
                Some(c) if g.cache.contains_key(&model.hf_repo) => {
                    format!("Revision {c} not found")
                }
                _ => format!("Model {id} not found in cache"),
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
        // `+ 0.0`: an empty sum is -0.0, which JSON would print as `-0.0`.
        let used: f64 = g.cache.values().sum::<f64>() + 0.0;
        SpaceResponse {
            cache_size_gb: (used * 100.0).round() / 100.0,
            available_gb: ((2000.0 - used).max(0.0) * 100.0).round() / 100.0,
            cache_path: "/root/.cache/huggingface/hub".into(),
        }
    }
}

fn revision_hash(repo: &str) -> String {
    let d = Sha256::digest(repo.as_bytes());
    d.iter().take(20).map(|b| format!("{b:02x}")).collect()
}
