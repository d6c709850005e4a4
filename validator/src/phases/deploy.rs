//! Phase 2: make sure vLLM serves the model.
//!
//! `GET /inference/up/status`; running → `already_running` (the deploy config was NOT
//! applied); starting → wait; else `POST /inference/up/async` (409 benign) and poll every
//! 5 s until `is_running` (`deployed`). `failed`/`cancelled` and the timeout are errors.

use mlnode_protocol::wire::{StartupState, StartupStatus};
use serde_json::{json, Value};

use super::{r3, Ctx, PhaseResult, POLL_SECONDS, STATUS_TIMEOUT};
use crate::client::Client;
use crate::console::Progress;

pub async fn run(ctx: &Ctx<'_>, skip: bool) -> PhaseResult {
    let c = ctx.client;
    let t0 = c.clock.now();
    let report = |action: &str, status: &Value| {
        json!({"action": action, "elapsed_s": r3(c.clock.now() - t0), "status": status,
               "additional_args": ctx.deploy_args, "dtype": ctx.args.dtype})
    };
    let st: StartupStatus = match c
        .poll("GET", "/api/v1/inference/up/status", None, STATUS_TIMEOUT)
        .await
    {
        Ok(s) => s,
        Err(e) => return PhaseResult::failed(report("error", &Value::Null), e.to_string()),
    };
    let st_json = serde_json::to_value(&st).unwrap_or(Value::Null);
    if st.is_running {
        ctx.console
            .line("  vLLM already running: deploy config NOT applied");
        return PhaseResult::ok(report("already_running", &st_json));
    }
    if skip {
        return PhaseResult::failed(
            report("skipped", &st_json),
            format!("vLLM is not running and --skip-deploy was given; status: {st_json}"),
        );
    }
    if st.is_starting {
        ctx.console
            .line("  vLLM startup already in progress; waiting");
    } else {
        let body = json!({"model": ctx.args.model, "dtype": ctx.args.dtype, "additional_args": ctx.deploy_args});
        match c
            .post_raw("/api/v1/inference/up/async", &body, STATUS_TIMEOUT)
            .await
        {
            Ok(a) if a.status == 200 => ctx.console.line("  startup initiated"),
            Ok(a) if a.status == 409 => ctx.console.line(format!(
                "  409 (benign): {}",
                crate::client::detail_of(&a.body)
            )),
            Ok(a) => {
                let e = Client::expect::<Value>("POST", "/api/v1/inference/up/async", a, &[200])
                    .unwrap_err();
                return PhaseResult::failed(report("error", &st_json), e.to_string());
            }
            Err(e) => return PhaseResult::failed(report("error", &st_json), e.to_string()),
        }
    }
    let progress = Progress::start("deploying");
    let mut last = st_json;
    loop {
        if c.clock.now() - t0 > ctx.args.deploy_timeout {
            return PhaseResult::failed(
                report("timeout", &last),
                format!(
                    "vLLM did not become ready within {}s; last status: {last}",
                    ctx.args.deploy_timeout
                ),
            );
        }
        c.clock.sleep(POLL_SECONDS).await;
        let st: StartupStatus = match c
            .poll("GET", "/api/v1/inference/up/status", None, STATUS_TIMEOUT)
            .await
        {
            Ok(s) => s,
            Err(e) => return PhaseResult::failed(report("error", &last), e.to_string()),
        };
        last = serde_json::to_value(&st).unwrap_or(Value::Null);
        progress.set(format!(
            "deploying: {} (server elapsed {:.0}s)",
            last["status"].as_str().unwrap_or("?"),
            st.elapsed_seconds.unwrap_or(0.0)
        ));
        if st.is_running {
            ctx.console.line(format!(
                "  vLLM running (server elapsed {:.1}s)",
                st.elapsed_seconds.unwrap_or(0.0)
            ));
            return PhaseResult::ok(report("deployed", &last));
        }
        if matches!(st.status, StartupState::Failed | StartupState::Cancelled) {
            return PhaseResult::failed(
                report("failed", &last),
                format!("vLLM startup failed: {last}"),
            );
        }
    }
}
