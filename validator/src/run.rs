//! One validation run: resolve the inputs (before any network call), connect, run the
//! phases (a signal stops generation and keeps what was learnt), decide the verdict, write
//! the reports — the verdict decides the exit code, the headline, `--json` and JUnit alike.

use std::future::Future;
use std::path::PathBuf;

use mlnode_protocol::wire::StatTestOverrides;
use mlnode_protocol::{Reference, ResolvedStatTest, Source};

use crate::args::{compose_deploy_args, ValidateArgs};
use crate::console::Console;
use crate::endpoint::{self, Deploy};
use crate::outcome::Outcome;
use crate::phases::{self, Ctx, Records};
use crate::reference;
use crate::report::{
    self, py, ClockInfo, DeployConfig, PocParams, ReferenceInfo, Round, ToolInfo, ValidateConfig,
    ValidateReport, ValidationRecord, Warning, WarningKind,
};
use crate::verdict::{Signal, Verdict};

/// Everything resolved before the first network call.
struct Inputs {
    reference: Reference,
    ref_path: PathBuf,
    ref_source: reference::ReferenceSource,
    stat_test: ResolvedStatTest,
    deploy_args: Vec<String>,
    exp_dir: PathBuf,
}

fn now_iso() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Usage and reference problems: found before any network call, no report folder made.
fn resolve(
    args: &ValidateArgs,
    started: &chrono::DateTime<chrono::Local>,
) -> Result<Inputs, String> {
    args.check()?;
    let artifacts_dir = args
        .artifacts_dir
        .clone()
        .unwrap_or_else(mlnode_support::paths::default_artifacts_dir);
    let (ref_path, ref_source) =
        reference::expected_path(&args.model, args.reference.as_deref(), &artifacts_dir);
    let r =
        reference::resolve(&args.model, &ref_path, &artifacts_dir).map_err(|e| e.to_string())?;
    let cli = StatTestOverrides {
        dist_threshold: args.threshold,
        p_mismatch: args.p_mismatch,
        fraud_threshold: args.fraud_threshold,
    };
    let stat_test = ResolvedStatTest::resolve(&[
        (Source::Artifact, &r.stat_test_overrides()),
        (Source::Cli, &cli),
    ])
    .map_err(|e| format!("invalid stat test: {e}"))?;
    let deploy_args = compose_deploy_args(
        r.additional_args.as_deref().unwrap_or(&[]),
        args.tp_size,
        args.max_model_len,
        &args.extra_arg,
    );
    let exp_dir = args.exp_dir.clone().unwrap_or_else(|| {
        let name = args
            .exp_name
            .clone()
            .unwrap_or_else(|| reference::default_exp_name(&args.model));
        PathBuf::from("data/experiments")
            .join(format!("{name}_{}", started.format("%Y-%m-%d_%H%M%S")))
    });
    report::files::check_writable(&exp_dir)
        .map_err(|e| format!("cannot write reports to {}: {e}", exp_dir.display()))?;
    Ok(Inputs {
        reference: r,
        ref_path,
        ref_source,
        stat_test,
        deploy_args,
        exp_dir,
    })
}

fn config(args: &ValidateArgs, inputs: &Inputs, timestamp: String) -> ValidateConfig {
    let r = &inputs.reference;
    ValidateConfig {
        timestamp,
        mlnode_url: args.mlnode_url.clone(),
        model: args.model.clone(),
        reference: ReferenceInfo {
            path: inputs.ref_path.display().to_string(),
            model: r.model.clone(),
            round: Round::of(r),
            n_vectors: r.artifacts.len(),
            source: r.source.clone(),
            additional_args: r.additional_args.clone().unwrap_or_default(),
        },
        deploy_config: DeployConfig {
            dtype: args.dtype.clone(),
            additional_args: inputs.deploy_args.clone(),
            source: "reference.additional_args + CLI overrides; --tp-size / --max-model-len add-or-update".into(),
        },
        poc_params: PocParams {
            round: Round::of(r),
            throughput_batch_size: args.batch_size,
            validation_batch_size: args.validation_batch_size,
            source: "PoC params come from the reference JSON; batch sizes come from CLI (unset = server default)".into(),
        },
        stat_test: inputs.stat_test,
        args: args.clone(),
    }
}

/// The inputs, printed before the phases (validate.py's preamble).
fn preamble(
    console: &Console,
    c: &ValidateConfig,
    inputs: &Inputs,
    embedded: Option<&str>,
    clock: &ClockInfo,
) {
    let r = &c.reference;
    console.line(format!(
        "MLNode:           {}{}",
        c.mlnode_url,
        embedded
            .map(|u| format!(" (embedded simulator at {u})"))
            .unwrap_or_default()
    ));
    console.line(format!("Model:            {}", c.model));
    console.line(format!(
        "Reference:        {} ({})",
        r.path,
        inputs.ref_source.as_str()
    ));
    console.line(format!(
        "  source:         {}",
        r.source.as_deref().unwrap_or("unknown")
    ));
    console.line(format!(
        "  vectors:        {} pre-computed nonces",
        r.n_vectors
    ));
    console.line(format!("Experiment dir:   {}", inputs.exp_dir.display()));
    console.line(format!(
        "PoC params:       seq_len={}  k_dim={}  block_hash={}  public_key={}  node_id={}  node_count={}",
        r.round.seq_len,
        r.round.k_dim,
        py::str_repr(&r.round.block_hash),
        py::str_repr(&r.round.public_key),
        r.round.node_id,
        r.round.node_count
    ));
    console.line(format!(
        "Deploy config:    dtype={}  additional_args={}",
        c.deploy_config.dtype,
        py::str_list(&c.deploy_config.additional_args)
    ));
    console.line(format!("  source:         {}", c.deploy_config.source));
    console.line(format!(
        "Stat test:        {}",
        report::txt::stat_test(&c.stat_test)
    ));
    console.line(format!(
        "Clock:            {}× ({}); durations are simulated seconds",
        clock.time_scale, clock.time_scale_source
    ));
    console.line("");
}

/// Warnings known from the inputs alone.
fn input_warnings(args: &ValidateArgs) -> Vec<Warning> {
    let mut w = Vec::new();
    for (flag, v) in [
        ("--batch-size", args.batch_size),
        ("--validation-batch-size", args.validation_batch_size),
    ] {
        if let Some(b) = v {
            w.push(Warning {
                kind: WarningKind::ExplicitBatchSize,
                message: format!(
                    "{flag} {b} passed explicitly: a reference baked at another batch size shows a few % mismatches (leave it unset for the node's default)"
                ),
            });
        }
    }
    w
}

/// Run the validator. `cancel` resolving (a signal) means: stop generation, write the
/// partial report, exit 128 + signal.
pub async fn run(
    args: ValidateArgs,
    console: Console,
    cancel: impl Future<Output = Signal>,
) -> Outcome {
    let started = chrono::Local::now();
    let started_at = started.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let inputs = match resolve(&args, &started) {
        Ok(i) => i,
        Err(e) => {
            console.always(format!("ERROR: {e}"));
            return Outcome::usage_error(&args, e, started_at);
        }
    };
    let mut cfg = config(&args, &inputs, started_at.clone());
    let artifacts_dir = args
        .artifacts_dir
        .clone()
        .unwrap_or_else(mlnode_support::paths::default_artifacts_dir);
    let mut rec = Records {
        warnings: input_warnings(&args),
        ..Records::default()
    };
    let mut cancel = std::pin::pin!(cancel);
    let mut signal = None;
    let mut error = None;
    let connected = tokio::select! {
        c = endpoint::connect(&args.mlnode_url, args.time_scale, &artifacts_dir, Deploy::Scenario) => Some(c),
        s = &mut cancel => { signal = Some(s); None }
    };
    let (client, clock) = match connected {
        Some(Ok(c)) => {
            let clock = ClockInfo {
                time_scale: c.client.clock.scale(),
                time_scale_source: c.scale_source.as_str(),
                durations: "simulated seconds (wall seconds where a key says wall_)",
            };
            preamble(&console, &cfg, &inputs, c.embedded_url.as_deref(), &clock);
            (Some(c.client), clock)
        }
        Some(Err(e)) => {
            error = Some(e.to_string());
            (
                None,
                ClockInfo {
                    time_scale: 1.0,
                    time_scale_source: "default",
                    durations: "simulated seconds",
                },
            )
        }
        None => (
            None,
            ClockInfo {
                time_scale: 1.0,
                time_scale_source: "default",
                durations: "simulated seconds",
            },
        ),
    };
    let clock_now = |c: &Option<crate::client::Client>| c.as_ref().map_or(0.0, |c| c.clock.now());
    if let Some(c) = &client {
        let ctx = Ctx {
            args: &args,
            client: c,
            console: &console,
            reference: &inputs.reference,
            deploy_args: &inputs.deploy_args,
            stat_test: &inputs.stat_test,
        };
        let interrupted = {
            let phases = phases::run_all(&ctx, &mut rec);
            tokio::select! {
                _ = phases => None,
                s = &mut cancel => Some(s),
            }
        };
        if let Some(s) = interrupted {
            signal = Some(s);
            console.always(format!(
                "\nInterrupted ({}); stopping generation and writing partial report",
                s.name()
            ));
            if let Err(e) = c.pow_stop().await {
                console.line(format!("  (pow/stop failed: {e})"));
            }
        }
    }
    let (failed_phase, partial) = match rec.failure.take() {
        Some((p, f)) => {
            error = Some(f.message);
            (Some(p), f.partial)
        }
        None => (None, None),
    };
    if let Some(s) = signal {
        error.get_or_insert_with(|| {
            format!(
                "interrupted by {} before the run finished; partial report written",
                s.name()
            )
        });
    }
    let mut verdict = match (signal, &error, &rec.validation) {
        (Some(s), _, _) => Verdict::Interrupted(s),
        (None, Some(_), _) => Verdict::Error,
        (None, None, None) => Verdict::Skipped,
        (None, None, Some(_)) if rec.cross_check.as_ref().is_some_and(|x| x.disagree) => {
            Verdict::Disagree
        }
        (None, None, Some(v)) => Verdict::of_answer(v.fraud_detected, v.n_mismatch),
    };
    if args.strict && verdict.is_success() && !rec.warnings.is_empty() {
        error = Some(format!(
            "--strict: {} warning(s): {}",
            rec.warnings.len(),
            rec.warnings
                .iter()
                .map(|w| w.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
        verdict = Verdict::Error;
    }
    cfg.timestamp = now_iso();
    let phases_out = rec.all_outcomes(clock_now(&client), signal.is_some());
    drop(client); // stops an embedded node
    let report = ValidateReport {
        config: cfg,
        download: rec.download,
        deploy: rec.deploy,
        throughput: rec.throughput,
        validation: ValidationRecord::new(inputs.reference.artifacts.len(), rec.validation),
        verdict,
        exit_code: verdict.exit_code(),
        error: error.clone(),
        failed_phase,
        partial,
        warnings: rec.warnings,
        cross_check: rec.cross_check,
        phases: phases_out,
        clock,
        experiment_dir: inputs.exp_dir.display().to_string(),
        finished_at: now_iso(),
        tool: ToolInfo::VALIDATE,
    };
    Outcome::finish(&args, &console, report, inputs.exp_dir, started_at)
}
