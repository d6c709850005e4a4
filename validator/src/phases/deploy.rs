//! Phase 2: make sure vLLM serves the model.
//!
//! `GET /inference/up/status`; running → `already_running` (the deploy config was NOT
//! applied: a warning); starting → wait; else `POST /inference/up/async` (409 benign) and
//! poll every 5 s until `is_running` (`deployed`). `failed`/`cancelled` and the timeout
//! are errors. With `--skip-deploy` the status is still read ([`check_running`]).

use mlnode_protocol::wire::{InferenceInitRequest, StartupState, StartupStatus};

use super::{Ctx, Failure, Phase, POLL_SECONDS};
use crate::report::{DeployAction, DeployRecord, Partial, Warning, WarningKind};

fn status_json(s: &StartupStatus) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `--skip-deploy`: vLLM must already be running.
pub async fn check_running(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let st = ctx.client.up_status().await?;
    if st.is_running {
        Ok(())
    } else {
        Err(Failure::new(
            format!(
                "vLLM is not running and --skip-deploy was passed: {}",
                status_json(&st)
            ),
            Some(Partial::Deploy {
                elapsed_s: 0.0,
                last_status: Some(st),
            }),
        ))
    }
}

pub async fn run(ctx: &Ctx<'_>) -> Result<(DeployRecord, Vec<Warning>), Failure> {
    let c = ctx.client;
    ctx.console.line(Phase::Deploy.header(&format!(
        "model={} dtype={} additional_args={}",
        ctx.args.model,
        ctx.args.dtype,
        crate::report::py::str_list(ctx.deploy_args)
    )));
    let t0 = c.clock.now();
    let record = |action, status| DeployRecord {
        action,
        elapsed_s: crate::r3(c.clock.now() - t0),
        status,
        additional_args: ctx.deploy_args.to_vec(),
        dtype: ctx.args.dtype.clone(),
    };
    let fail = |msg: String, last: Option<&StartupStatus>| {
        Failure::new(
            msg,
            Some(Partial::Deploy {
                elapsed_s: crate::r3(c.clock.now() - t0),
                last_status: last.cloned(),
            }),
        )
    };
    let st = c.up_status().await.map_err(|e| fail(e.to_string(), None))?;
    if st.is_running {
        ctx.console
            .line("  -> already_running in 0.0s (the deploy config was NOT applied)");
        let mut rec = record(DeployAction::AlreadyRunning, st);
        rec.elapsed_s = 0.0; // as validate.py: nothing was waited for
        let warning = Warning {
            kind: WarningKind::DeployConfigNotApplied,
            message: format!(
                "vLLM was already running: the deploy config (dtype={} additional_args={}) was NOT applied; \
                 the node may be running other args (restart it with /api/v1/inference/down to apply them)",
                ctx.args.dtype,
                crate::report::py::str_list(ctx.deploy_args)
            ),
        };
        return Ok((rec, vec![warning]));
    }
    if st.is_starting {
        ctx.console
            .line("  vLLM startup already in progress; waiting...");
    } else {
        let req = InferenceInitRequest {
            model: ctx.args.model.clone(),
            dtype: ctx.args.dtype.clone(),
            additional_args: ctx.deploy_args.to_vec(),
        };
        if let Some(detail) = c
            .up_async(&req)
            .await
            .map_err(|e| fail(e.to_string(), Some(&st)))?
        {
            ctx.console.line(format!(
                "  /inference/up/async returned 409 (benign): {detail}"
            ));
        }
    }
    let progress = ctx
        .console
        .progress("deploying", Some(ctx.args.deploy_timeout));
    let mut last = st;
    let mut last_print = 0.0;
    loop {
        let elapsed = c.clock.now() - t0;
        if elapsed > ctx.args.deploy_timeout {
            return Err(fail(
                format!(
                    "vLLM did not become ready within {}s; last status: {}",
                    ctx.args.deploy_timeout,
                    status_json(&last)
                ),
                Some(&last),
            ));
        }
        c.clock.sleep(POLL_SECONDS).await;
        last = c
            .up_status()
            .await
            .map_err(|e| fail(e.to_string(), Some(&last)))?;
        let elapsed = c.clock.now() - t0;
        progress.at(elapsed);
        progress.set(format!(
            "deploying: {} (server elapsed {:.0} s simulated)",
            serde_json::to_value(last.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            last.elapsed_seconds.unwrap_or(0.0)
        ));
        if last.is_running {
            drop(progress);
            ctx.console.line(format!("  -> deployed in {elapsed:.1}s"));
            return Ok((record(DeployAction::Deployed, last), Vec::new()));
        }
        if matches!(last.status, StartupState::Failed | StartupState::Cancelled) {
            return Err(fail(
                format!("vLLM startup failed: {}", status_json(&last)),
                Some(&last),
            ));
        }
        if elapsed - last_print >= 30.0 {
            last_print = elapsed;
            ctx.console.line(format!(
                "  [{:>4}s] still starting (server elapsed: {})",
                elapsed as i64,
                last.elapsed_seconds
                    .map_or("None".into(), crate::report::py::float)
            ));
        }
    }
}
