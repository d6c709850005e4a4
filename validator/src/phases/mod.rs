//! The four phases of validate.py as one type, [`Phase`], run by one loop ([`run_these`]).
//!
//! Each phase module returns its typed record or a [`Failure`] (the message and, as
//! [`Partial`], what was learnt before it); the loop prints the header line, keeps the
//! record, times the phase and stops at the first failure. A new phase is a new variant:
//! the compiler points at every `match` that must handle it.

pub mod deploy;
pub mod download;
pub mod throughput;
pub mod validate;

use std::time::Instant;

use mlnode_protocol::{Reference, ResolvedStatTest};

use crate::args::ValidateArgs;
use crate::client::{CallError, Client};
use crate::console::Console;
use crate::report::{
    CrossCheck, DeployRecord, DownloadRecord, Partial, PhaseOutcome, PhaseState, ThroughputRecord,
    ValidationResponse, Warning,
};

pub use crate::phase::Phase;

/// Poll interval of the download and deploy phases (simulated seconds).
pub const POLL_SECONDS: f64 = 5.0;

/// Everything a phase needs.
pub struct Ctx<'a> {
    pub args: &'a ValidateArgs,
    pub client: &'a Client,
    pub console: &'a Console,
    pub reference: &'a Reference,
    pub deploy_args: &'a [String],
    pub stat_test: &'a ResolvedStatTest,
    /// What phase 1 makes sure is cached: `--model`, or the node-config's
    /// `model_override` (`hf_repo@hf_commit` served under the model id).
    pub download: &'a mlnode_protocol::wire::Model,
}

/// Why a phase failed, and what it had learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
    pub partial: Option<Partial>,
}

impl Failure {
    pub fn new(message: impl Into<String>, partial: Option<Partial>) -> Self {
        Failure {
            message: message.into(),
            partial,
        }
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        Failure::new(e.to_string(), None)
    }
}

/// What the phases learnt, filled in as they run (it survives an interruption: the loop
/// borrows it, and dropping the loop's future leaves it as far as it got).
#[derive(Debug, Default, Clone)]
pub struct Records {
    pub download: Option<DownloadRecord>,
    pub deploy: Option<DeployRecord>,
    pub throughput: Option<ThroughputRecord>,
    pub validation: Option<ValidationResponse>,
    pub cross_check: Option<CrossCheck>,
    pub warnings: Vec<Warning>,
    pub outcomes: Vec<PhaseOutcome>,
    pub failure: Option<(Phase, Failure)>,
    /// The phase running now: its start in simulated and wall time.
    pub current: Option<(Phase, f64, Instant)>,
}

impl Records {
    fn finish(&mut self, ctx: &Ctx<'_>, state: PhaseState, message: Option<String>) {
        if let Some((phase, t0, w0)) = self.current.take() {
            self.outcomes.push(PhaseOutcome {
                phase,
                state,
                message,
                duration_s: crate::r3(ctx.client.clock.now() - t0),
                wall_s: crate::r3(w0.elapsed().as_secs_f64()),
            });
        }
    }

    /// Outcomes for all four phases: the interrupted one marked, the rest not run.
    pub fn all_outcomes(&self, clock_now: f64, interrupted: bool) -> Vec<PhaseOutcome> {
        let mut out = self.outcomes.clone();
        if let Some((phase, t0, w0)) = self.current {
            out.push(PhaseOutcome {
                phase,
                state: if interrupted {
                    PhaseState::Interrupted
                } else {
                    PhaseState::NotRun
                },
                message: interrupted.then(|| "interrupted by a signal".to_string()),
                duration_s: crate::r3(clock_now - t0),
                wall_s: crate::r3(w0.elapsed().as_secs_f64()),
            });
        }
        for p in Phase::ALL {
            if !out.iter().any(|o| o.phase == p) {
                out.push(PhaseOutcome {
                    phase: p,
                    state: PhaseState::NotRun,
                    message: Some("not run: an earlier step failed or the run was stopped".into()),
                    duration_s: 0.0,
                    wall_s: 0.0,
                });
            }
        }
        out.sort_by_key(|o| o.phase.number());
        out
    }
}

/// Run `phases` in order, stopping at the first failure (several references share the
/// first three, then run `validate` each).
pub async fn run_these(ctx: &Ctx<'_>, rec: &mut Records, phases: &[Phase]) {
    for &phase in phases {
        rec.current = Some((phase, ctx.client.clock.now(), Instant::now()));
        let skipped = phase.is_skipped(ctx.args);
        if skipped {
            ctx.console
                .line(phase.header(&format!("skipped ({})", phase.skip_flag())));
        }
        let result = match (phase, skipped) {
            (Phase::Download, true) | (Phase::Throughput, true) | (Phase::Validate, true) => Ok(()),
            // With --skip-deploy the status is still read: a stopped vLLM is an error.
            (Phase::Deploy, true) => deploy::check_running(ctx).await,
            (Phase::Download, false) => download::run(ctx).await.map(|r| {
                rec.download = Some(r);
            }),
            (Phase::Deploy, false) => deploy::run(ctx).await.map(|(r, w)| {
                rec.deploy = Some(r);
                rec.warnings.extend(w);
            }),
            (Phase::Throughput, false) => throughput::run(ctx).await.map(|(r, w)| {
                rec.throughput = Some(r);
                rec.warnings.extend(w);
            }),
            (Phase::Validate, false) => match validate::run(ctx).await {
                Ok(v) => {
                    let cross = if ctx.args.cross_check {
                        validate::cross_check(ctx, &v).await.map(Some)
                    } else {
                        Ok(None)
                    };
                    rec.validation = Some(v);
                    cross.map(|c| rec.cross_check = c)
                }
                Err(f) => Err(f),
            },
        };
        match result {
            Ok(()) => rec.finish(
                ctx,
                if skipped {
                    PhaseState::Skipped
                } else {
                    PhaseState::Passed
                },
                skipped.then(|| phase.skip_flag().to_string()),
            ),
            Err(f) => {
                rec.finish(ctx, PhaseState::Failed, Some(f.message.clone()));
                rec.failure = Some((phase, f));
                return;
            }
        }
    }
}

/// The nonces-and-params part of every PoC request, from the reference.
pub fn poc_params(ctx: &Ctx<'_>) -> mlnode_protocol::wire::PoCParams {
    mlnode_protocol::wire::PoCParams {
        model: ctx.args.model.clone(),
        seq_len: ctx.reference.seq_len,
        k_dim: ctx.reference.k_dim,
    }
}
