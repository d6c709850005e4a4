//! Phase 1: make sure the model is in the node's HF cache.
//!
//! `POST /models/status`; `DOWNLOADED` → `already_downloaded`. Otherwise `POST
//! /models/download` (200/202; a `DOWNLOADED` body → `verified`; 409 "already
//! downloading" is benign) and poll every 5 s until `DOWNLOADED` (`downloaded`).
//! `NOT_FOUND` more than 30 s into polling is a failure, as in validate.py. Going beyond
//! it, `PARTIAL` with an `error_message` fails at once instead of waiting out the 2 h cap.

use mlnode_protocol::wire::{DownloadStartResponse, Model, ModelStatus, ModelStatusResponse};
use serde_json::json;

use super::{r3, Ctx, PhaseResult, POLL_SECONDS, STATUS_TIMEOUT};
use crate::client::Client;
use crate::console::Progress;

fn status_word(s: ModelStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub async fn run(ctx: &Ctx<'_>) -> PhaseResult {
    let c = ctx.client;
    let model = Model::latest(ctx.args.model.clone());
    let t0 = c.clock.now();
    let report = |action: &str, last: &str| json!({"action": action, "elapsed_s": r3(c.clock.now() - t0), "last_status": last});
    let body = json!(model);
    let status = || {
        c.poll::<ModelStatusResponse>("POST", "/api/v1/models/status", Some(&body), STATUS_TIMEOUT)
    };
    let st = match status().await {
        Ok(s) => s,
        Err(e) => return PhaseResult::failed(report("error", "unknown"), e.to_string()),
    };
    if st.status == ModelStatus::Downloaded {
        ctx.console
            .line(format!("  {} already downloaded", model.hf_repo));
        return PhaseResult::ok(report("already_downloaded", "DOWNLOADED"));
    }
    ctx.console.line(format!(
        "  status {}; starting download",
        status_word(st.status)
    ));
    let a = match c
        .post_raw("/api/v1/models/download", &model, STATUS_TIMEOUT)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            return PhaseResult::failed(report("error", &status_word(st.status)), e.to_string())
        }
    };
    if a.status == 409 {
        ctx.console.line(format!(
            "  download already in progress: {}",
            crate::client::detail_of(&a.body)
        ));
    } else {
        match Client::expect::<DownloadStartResponse>(
            "POST",
            "/api/v1/models/download",
            a,
            &[200, 202],
        ) {
            Ok(d) if d.status == ModelStatus::Downloaded => {
                ctx.console
                    .line("  download verified: already complete in the cache");
                return PhaseResult::ok(report("verified", "DOWNLOADED"));
            }
            Ok(_) => {}
            Err(e) => {
                return PhaseResult::failed(report("error", &status_word(st.status)), e.to_string())
            }
        }
    }
    let progress = Progress::start(format!("downloading {}", model.hf_repo));
    let poll_start = c.clock.now();
    let mut last = status_word(st.status);
    let mut last_print = f64::NEG_INFINITY;
    loop {
        let waited = c.clock.now() - poll_start;
        if waited > ctx.args.download_timeout {
            return PhaseResult::failed(
                report("timeout", &last),
                format!(
                    "model download did not complete in {}s; last status: {last}",
                    ctx.args.download_timeout
                ),
            );
        }
        c.clock
            .sleep(POLL_SECONDS.min(ctx.args.download_timeout.max(0.001)))
            .await;
        let st = match status().await {
            Ok(s) => s,
            Err(e) => return PhaseResult::failed(report("error", &last), e.to_string()),
        };
        last = status_word(st.status);
        let elapsed = st.progress.as_ref().map(|p| p.elapsed_seconds);
        progress.set(format!(
            "downloading {}: {last} {:.0}s",
            model.hf_repo,
            elapsed.unwrap_or(waited)
        ));
        if c.clock.now() - last_print >= 10.0 {
            last_print = c.clock.now();
            ctx.console.line(format!(
                "  ... {last}{}",
                elapsed
                    .map(|e| format!(" (server elapsed {e:.1}s)"))
                    .unwrap_or_default()
            ));
        }
        match st.status {
            ModelStatus::Downloaded => return PhaseResult::ok(report("downloaded", &last)),
            ModelStatus::NotFound if c.clock.now() - poll_start > 30.0 => {
                return PhaseResult::failed(
                    report("failed", &last),
                    "model download failed (status went to NOT_FOUND)",
                )
            }
            ModelStatus::Partial if st.error_message.is_some() => {
                return PhaseResult::failed(
                    report("failed", &last),
                    format!(
                        "model download failed: {}",
                        st.error_message.unwrap_or_default()
                    ),
                )
            }
            _ => {}
        }
    }
}
