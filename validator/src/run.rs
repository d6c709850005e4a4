//! One validation run: resolve the inputs (before any network call), connect, run the
//! phases (a signal stops generation and keeps what was learnt), decide the verdict, write
//! the reports — the verdict decides the exit code, the headline, `--json` and JUnit alike.

use std::future::Future;
use std::path::{Path, PathBuf};

use mlnode_protocol::node_config::NodeConfig;
use mlnode_protocol::wire::{Model, StatTestOverrides};
use mlnode_protocol::{Reference, ResolvedStatTest, Source};

use crate::args::{compose_deploy_args, ValidateArgs};
use crate::console::Console;
use crate::endpoint::{self, Deploy};
use crate::outcome::Outcome;
use crate::phase::Phase;
use crate::phases::{self, Ctx, Records};
use crate::reference;
use crate::report::{
    self, py, ClockInfo, DeployConfig, PocParams, ReferenceInfo, Round, ToolInfo, ValidateConfig,
    ValidateReport, ValidationRecord, Warning, WarningKind,
};
use crate::verdict::{Signal, Verdict};

/// One golden reference of a run, resolved.
#[derive(Debug, Clone)]
pub struct RefInput {
    pub reference: Reference,
    pub path: PathBuf,
    pub source: reference::ReferenceSource,
    pub stat_test: ResolvedStatTest,
    /// The report folder of this reference.
    pub exp_dir: PathBuf,
}

/// Everything resolved before the first network call.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// One or more references; the first supplies the PoC params of phases 1–3.
    pub refs: Vec<RefInput>,
    pub deploy_args: Vec<String>,
    /// Where the deploy config came from (the report's `deploy_config.source`).
    pub deploy_source: String,
    /// What phase 1 makes sure is cached.
    pub download: Model,
    /// `--exp-dir` (several references: each gets a folder below it).
    pub exp_dir: PathBuf,
}

fn now_iso() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// The largest node-config file read.
pub(crate) const MAX_NODE_CONFIG_BYTES: u64 = 16 << 20;

/// Read a node-config list (regular file, size-capped), naming the file in errors.
pub fn load_node_config(path: &Path) -> Result<NodeConfig, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read node-config {}: {e}", path.display()))?;
    if !meta.is_file() || meta.len() > MAX_NODE_CONFIG_BYTES {
        return Err(format!(
            "node-config {} must be a regular file of at most {} MiB",
            path.display(),
            MAX_NODE_CONFIG_BYTES >> 20
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read node-config {}: {e}", path.display()))?;
    NodeConfig::parse(&text).map_err(|e| format!("node-config {}: {e}", path.display()))
}

/// Usage and reference problems: found before any network call, no report folder made.
/// `node_config`: the `--node-config` file already parsed (a fleet parses its inventory
/// once, not once per node); `None` reads it from the flag's path.
pub fn resolve(
    args: &ValidateArgs,
    started: &chrono::DateTime<chrono::Local>,
    node_config: Option<&NodeConfig>,
) -> Result<Inputs, String> {
    args.check()?;
    let found = mlnode_support::paths::artifacts_dir(args.artifacts_dir.as_deref());
    let embedded = found.source == mlnode_support::paths::ArtifactsSource::Embedded;
    let artifacts_dir = found.path;
    // (path, where it came from, the reference when it is already loaded)
    type Wanted = (PathBuf, reference::ReferenceSource, Option<Reference>);
    let paths: Vec<Wanted> = if args.all_references {
        let all = reference::all_for_model(&args.model, &artifacts_dir);
        if all.is_empty() {
            // The missing-reference help, naming the default path.
            let (p, _) = reference::expected_path(&args.model, None, &artifacts_dir);
            return Err(reference::resolve(&args.model, &p, &artifacts_dir)
                .err()
                .map_or_else(|| "no reference".into(), |e| e.to_string()));
        }
        all.into_iter()
            .map(|(p, r)| (p, reference::ReferenceSource::AllReferences, Some(r)))
            .collect()
    } else if args.reference.is_empty() {
        let (p, s) = reference::expected_path(&args.model, None, &artifacts_dir);
        let s = if embedded {
            reference::ReferenceSource::Embedded
        } else {
            s
        };
        vec![(p, s, None)]
    } else {
        args.reference
            .iter()
            .map(|p| {
                let (p, s) = reference::expected_path(&args.model, Some(p), &artifacts_dir);
                (p, s, None)
            })
            .collect()
    };
    let exp_dir = args.exp_dir.clone().unwrap_or_else(|| {
        let name = args
            .exp_name
            .clone()
            .unwrap_or_else(|| reference::default_exp_name(&args.model));
        PathBuf::from("data/experiments")
            .join(format!("{name}_{}", started.format("%Y-%m-%d_%H%M%S")))
    });
    let multi = paths.len() > 1;
    let mut refs = Vec::new();
    for (i, (path, source, loaded)) in paths.into_iter().enumerate() {
        let r = match loaded {
            Some(r) => r,
            None => {
                reference::resolve(&args.model, &path, &artifacts_dir).map_err(|e| e.to_string())?
            }
        };
        let cli = StatTestOverrides {
            dist_threshold: args.threshold,
            p_mismatch: args.p_mismatch,
            fraud_threshold: args.fraud_threshold,
        };
        let stat_test = ResolvedStatTest::resolve(&[
            (Source::Artifact, &r.stat_test_overrides()),
            (Source::Cli, &cli),
        ])
        .map_err(|e| format!("invalid stat test in {}: {e}", path.display()))?;
        let stem = path.file_stem().map_or_else(
            || format!("reference-{i}"),
            |s| s.to_string_lossy().into_owned(),
        );
        refs.push(RefInput {
            exp_dir: if multi {
                exp_dir.join(stem)
            } else {
                exp_dir.clone()
            },
            reference: r,
            path,
            source,
            stat_test,
        });
    }
    let first = &refs[0].reference;
    let mut download = Model::latest(args.model.clone());
    let (base_args, deploy_source) = match &args.node_config {
        Some(path) => {
            let loaded;
            let cfg = match node_config {
                Some(c) => c,
                None => {
                    loaded = load_node_config(path)?;
                    &loaded
                }
            };
            let (node, m) = cfg
                .model(args.node_id.as_deref(), &args.model)
                .map_err(|e| format!("node-config {}: {e}", path.display()))?;
            if let Some(o) = &m.model_override {
                download = o.clone();
            }
            (
                m.args.clone(),
                format!(
                    "node-config {} node '{}' (models['{}'].args{}) + CLI overrides; --tp-size / --max-model-len add-or-update",
                    path.display(),
                    node.id,
                    args.model,
                    m.model_override
                        .as_ref()
                        .map(|o| format!("; model_override {}@{}", o.hf_repo, o.hf_commit.as_deref().unwrap_or("latest")))
                        .unwrap_or_default()
                ),
            )
        }
        None => (
            first.additional_args.clone().unwrap_or_default(),
            "reference.additional_args + CLI overrides; --tp-size / --max-model-len add-or-update"
                .into(),
        ),
    };
    let deploy_args = compose_deploy_args(
        &base_args,
        args.tp_size,
        args.max_model_len,
        &args.extra_arg,
    );
    for r in &refs {
        report::files::check_writable(&r.exp_dir)
            .map_err(|e| format!("cannot write reports to {}: {e}", r.exp_dir.display()))?;
    }
    Ok(Inputs {
        refs,
        deploy_args,
        deploy_source,
        download,
        exp_dir,
    })
}

fn config(
    args: &ValidateArgs,
    inputs: &Inputs,
    ri: &RefInput,
    timestamp: String,
) -> ValidateConfig {
    let r = &ri.reference;
    ValidateConfig {
        timestamp,
        mlnode_url: args.mlnode_url.clone(),
        model: args.model.clone(),
        reference: ReferenceInfo {
            path: ri.path.display().to_string(),
            model: r.model.clone(),
            round: Round::of(r),
            n_vectors: r.artifacts.len(),
            source: r.source.clone(),
            additional_args: r.additional_args.clone().unwrap_or_default(),
        },
        deploy_config: DeployConfig {
            dtype: args.dtype.clone(),
            additional_args: inputs.deploy_args.clone(),
            source: inputs.deploy_source.clone(),
        },
        poc_params: PocParams {
            round: Round::of(r),
            throughput_batch_size: args.batch_size,
            validation_batch_size: args.validation_batch_size,
            source: "PoC params come from the reference JSON; batch sizes come from CLI (unset = server default)".into(),
        },
        stat_test: ri.stat_test,
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
    let ri = &inputs.refs[0];
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
        ri.source.as_str()
    ));
    for other in &inputs.refs[1..] {
        console.line(format!(
            "                  {} ({})",
            other.path.display(),
            other.source.as_str()
        ));
    }
    console.line(format!(
        "  source:         {}",
        r.source.as_deref().unwrap_or("unknown")
    ));
    console.line(format!(
        "  vectors:        {} pre-computed nonces",
        r.n_vectors
    ));
    console.line(format!("Experiment dir:   {}", inputs.exp_dir.display()));
    if inputs.download.hf_repo != c.model {
        console.line(format!(
            "Download:         {}@{} (model_override)",
            inputs.download.hf_repo,
            inputs.download.hf_commit.as_deref().unwrap_or("latest")
        ));
    }
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
/// partial report, exit 128 + signal. With several references, phases 1–3 run once and
/// `validate` once per reference, each with its own report folder; the returned outcome
/// is the worst of them, with all of them in `references`.
pub async fn run(
    args: ValidateArgs,
    console: Console,
    cancel: impl Future<Output = Signal>,
) -> Outcome {
    run_with(args, console, cancel, None).await
}

/// [`run`] with the `--node-config` file already parsed (see [`resolve`]).
pub async fn run_with(
    args: ValidateArgs,
    console: Console,
    cancel: impl Future<Output = Signal>,
    node_config: Option<&NodeConfig>,
) -> Outcome {
    let started = chrono::Local::now();
    let started_at = started.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let inputs = match resolve(&args, &started, node_config) {
        Ok(i) => i,
        Err(e) => {
            console.always(format!("ERROR: {e}"));
            return Outcome::usage_error(&args, e, started_at);
        }
    };
    let artifacts_dir = args
        .artifacts_dir
        .clone()
        .unwrap_or_else(mlnode_support::paths::default_artifacts_dir);
    let mut shared = Records {
        warnings: input_warnings(&args),
        ..Records::default()
    };
    let mut cancel = std::pin::pin!(cancel);
    let mut signal = None;
    let mut connect_error = None;
    let connected = tokio::select! {
        c = endpoint::connect(&args.mlnode_url, args.time_scale, &artifacts_dir, Deploy::Scenario, &args.access) => Some(c),
        s = &mut cancel => { signal = Some(s); None }
    };
    let default_clock = ClockInfo {
        time_scale: 1.0,
        time_scale_source: "default",
        durations: "simulated seconds",
    };
    let (client, clock) = match connected {
        Some(Ok(c)) => {
            let clock = ClockInfo {
                time_scale: c.client.clock.scale(),
                time_scale_source: c.scale_source.as_str(),
                durations: "simulated seconds (wall seconds where a key says wall_)",
            };
            let cfg = config(&args, &inputs, &inputs.refs[0], started_at.clone());
            preamble(&console, &cfg, &inputs, c.embedded_url.as_deref(), &clock);
            (Some(c.client), clock)
        }
        Some(Err(e)) => {
            connect_error = Some(e.to_string());
            (None, default_clock)
        }
        None => (None, default_clock),
    };
    // Phases 1–3 once, with the first reference's PoC params.
    let first = &inputs.refs[0];
    if let Some(c) = &client {
        let ctx = ctx_for(&args, c, &console, &inputs, first);
        signal = signal.or(cut(
            phases::run_these(&ctx, &mut shared, &Phase::ALL[..3]),
            &mut cancel,
            c,
            &console,
        )
        .await);
    }
    // Phase 4 once per reference, each from the shared records.
    let mut recs = Vec::new();
    for ri in &inputs.refs {
        let mut rec = shared.clone();
        if let (Some(c), None, None) = (&client, &signal, &rec.failure) {
            let ctx = ctx_for(&args, c, &console, &inputs, ri);
            if inputs.refs.len() > 1 {
                console.line(format!("--- reference {} ---", ri.path.display()));
            }
            signal = cut(
                phases::run_these(&ctx, &mut rec, &[Phase::Validate]),
                &mut cancel,
                c,
                &console,
            )
            .await;
        }
        recs.push(rec);
    }
    let clock_now = client.as_ref().map_or(0.0, |c| c.clock.now());
    drop(client); // stops an embedded node
    let outcomes: Vec<Outcome> = inputs
        .refs
        .iter()
        .zip(recs)
        .map(|(ri, rec)| {
            let report = finish_report(
                &args,
                &inputs,
                ri,
                rec,
                signal,
                connect_error.clone(),
                clock,
                clock_now,
                &started_at,
            );
            Outcome::finish(
                &args,
                &console,
                report,
                ri.exp_dir.clone(),
                started_at.clone(),
            )
        })
        .collect();
    Outcome::combine(&args, &console, outcomes, &inputs.exp_dir)
}

fn ctx_for<'a>(
    args: &'a ValidateArgs,
    client: &'a crate::client::Client,
    console: &'a Console,
    inputs: &'a Inputs,
    ri: &'a RefInput,
) -> Ctx<'a> {
    Ctx {
        args,
        client,
        console,
        reference: &ri.reference,
        deploy_args: &inputs.deploy_args,
        stat_test: &ri.stat_test,
        download: &inputs.download,
    }
}

/// Run `phases` unless a signal comes first; on a signal, stop generation on the node.
async fn cut(
    phases: impl Future<Output = ()>,
    cancel: &mut std::pin::Pin<&mut impl Future<Output = Signal>>,
    c: &crate::client::Client,
    console: &Console,
) -> Option<Signal> {
    let interrupted = tokio::select! {
        _ = phases => None,
        s = cancel.as_mut() => Some(s),
    };
    if let Some(s) = interrupted {
        console.always(format!(
            "\nInterrupted ({}); stopping generation and writing partial report",
            s.name()
        ));
        if let Err(e) = c.pow_stop().await {
            console.line(format!("  (pow/stop failed: {e})"));
        }
    }
    interrupted
}

/// The verdict and the report of one reference.
#[allow(clippy::too_many_arguments)]
fn finish_report(
    args: &ValidateArgs,
    inputs: &Inputs,
    ri: &RefInput,
    mut rec: Records,
    signal: Option<Signal>,
    connect_error: Option<String>,
    clock: ClockInfo,
    clock_now: f64,
    started_at: &str,
) -> ValidateReport {
    let mut error = connect_error;
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
    let mut cfg = config(args, inputs, ri, started_at.to_owned());
    cfg.timestamp = now_iso();
    ValidateReport {
        config: cfg,
        download: rec.download.clone(),
        deploy: rec.deploy.clone(),
        throughput: rec.throughput.clone(),
        validation: ValidationRecord::new(ri.reference.artifacts.len(), rec.validation.clone()),
        verdict,
        exit_code: verdict.exit_code(),
        error,
        failed_phase,
        partial,
        warnings: rec.warnings.clone(),
        cross_check: rec.cross_check.clone(),
        phases: rec.all_outcomes(clock_now, signal.is_some()),
        clock,
        experiment_dir: ri.exp_dir.display().to_string(),
        finished_at: now_iso(),
        tool: ToolInfo::VALIDATE,
    }
}
