//! Phase 1: make sure the model is in the node's HF cache.
//!
//! `POST /models/status`; `DOWNLOADED` → `already_downloaded`. Otherwise `POST
//! /models/download` (200/202; a `DOWNLOADED` body → `verified`; 409 "already
//! downloading" is benign) and poll every 5 s until `DOWNLOADED` (`downloaded`).
//! `NOT_FOUND` more than 30 s into polling is a failure, as in validate.py. Going beyond
//! it, `PARTIAL` with an `error_message` fails at once instead of waiting out the 2 h cap.
//! The record keeps the last `/models/status` body whole, as validate.py does.

use mlnode_protocol::wire::{ModelStatus, ModelStatusResponse};

use super::{Ctx, Failure, POLL_SECONDS};
use crate::report::{DownloadAction, DownloadRecord, Partial};

fn word(s: ModelStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub async fn run(ctx: &Ctx<'_>) -> Result<DownloadRecord, Failure> {
    let c = ctx.client;
    let model = ctx.download.clone();
    ctx.console.line(super::Phase::Download.header(&format!(
        "ensuring '{}' is cached on the MLNode",
        model.hf_repo
    )));
    let t0 = c.clock.now();
    // validate.py reports 0.0 for the two answers that waited for nothing.
    let record = |action, last_status| DownloadRecord {
        action,
        elapsed_s: if action == DownloadAction::Downloaded {
            crate::r3(c.clock.now() - t0)
        } else {
            0.0
        },
        last_status,
    };
    let fail = |msg: String, last: Option<&ModelStatusResponse>| {
        Failure::new(
            msg,
            Some(Partial::Download {
                elapsed_s: crate::r3(c.clock.now() - t0),
                last_status: last.cloned(),
            }),
        )
    };
    let st = c
        .model_status(&model)
        .await
        .map_err(|e| fail(e.to_string(), None))?;
    if st.status == ModelStatus::Downloaded {
        ctx.console
            .line("  -> already_downloaded (status: DOWNLOADED)");
        return Ok(record(DownloadAction::AlreadyDownloaded, st));
    }
    ctx.console.line(format!(
        "  initial status: {} -- requesting download",
        word(st.status)
    ));
    match c
        .start_download(&model)
        .await
        .map_err(|e| fail(e.to_string(), Some(&st)))?
    {
        Err(detail) => ctx.console.line(format!(
            "  download already in progress (409, benign): {detail}"
        )),
        Ok(d) if d.status == ModelStatus::Downloaded => {
            ctx.console
                .line("  -> verified: already complete in the cache");
            let last = ModelStatusResponse {
                model: d.model,
                status: d.status,
                progress: None,
                error_message: None,
            };
            return Ok(record(DownloadAction::Verified, last));
        }
        Ok(_) => {}
    }
    let progress = ctx
        .console
        .progress(format!("downloading {}", model.hf_repo), None);
    let poll_start = c.clock.now();
    let mut last = st;
    let mut last_print = f64::NEG_INFINITY;
    loop {
        let waited = c.clock.now() - poll_start;
        if waited > ctx.args.download_timeout {
            let msg = format!(
                "model download did not complete in {}s; last status: {}",
                ctx.args.download_timeout,
                serde_json::to_string(&last).unwrap_or_default()
            );
            return Err(fail(msg, Some(&last)));
        }
        c.clock
            .sleep(POLL_SECONDS.min(ctx.args.download_timeout.max(0.001)))
            .await;
        last = c
            .model_status(&model)
            .await
            .map_err(|e| fail(e.to_string(), Some(&last)))?;
        let server_elapsed = last.progress.as_ref().map(|p| p.elapsed_seconds);
        progress.set(format!(
            "downloading {}: {} (server elapsed {:.0} s simulated)",
            model.hf_repo,
            word(last.status),
            server_elapsed.unwrap_or(waited)
        ));
        let now = c.clock.now();
        if now - last_print >= 10.0 {
            last_print = now;
            ctx.console.line(format!(
                "  [{:>4}s] {} (server elapsed: {})",
                (now - poll_start) as i64,
                word(last.status),
                server_elapsed.map_or("None".into(), crate::report::py::float)
            ));
        }
        match last.status {
            ModelStatus::Downloaded => {
                drop(progress);
                ctx.console.line(format!(
                    "  -> downloaded in {:.1}s (status: DOWNLOADED)",
                    c.clock.now() - t0
                ));
                return Ok(record(DownloadAction::Downloaded, last));
            }
            ModelStatus::NotFound if c.clock.now() - poll_start > 30.0 => {
                return Err(fail(
                    "model download failed (status went to NOT_FOUND)".into(),
                    Some(&last),
                ))
            }
            ModelStatus::Partial if last.error_message.is_some() => {
                let msg = format!(
                    "model download failed: {}",
                    last.error_message.as_deref().unwrap_or_default()
                );
                return Err(fail(msg, Some(&last)));
            }
            _ => {}
        }
    }
}
