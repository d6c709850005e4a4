//! One validation run: resolve inputs, run the phases, decide, write the reports.

use std::cell::RefCell;
use std::future::Future;
use std::path::PathBuf;

use mlnode_protocol::wire::{StatTestOverrides, ValidationResult};
use mlnode_protocol::{Reference, ResolvedStatTest, Source};
use mlnode_sim::SimClock;
use serde_json::{json, Value};

use crate::args::{compose_deploy_args, ValidateArgs};
use crate::client::Client;
use crate::console::Console;
use crate::phases::{self, Ctx, PhaseResult};
use crate::reference;
use crate::report::{self, ReportPaths};
use crate::{embedded, junit};

/// Exit codes (validator.md): 0 pass or skipped, 2 fraud, 1 error; 130 after Ctrl-C.
pub const EXIT_PASS: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_FRAUD: i32 = 2;
pub const EXIT_INTERRUPTED: i32 = 130;

/// What a phase did, for `--json` and `--junit`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    Passed,
    Failed(String),
    Skipped(String),
    NotRun,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit_code: i32,
    pub verdict: String,
    pub error: Option<String>,
    pub exp_dir: PathBuf,
    pub reports: Option<ReportPaths>,
    /// `[download, deploy, throughput, validate]`.
    pub phases: [(&'static str, PhaseState); 4],
    pub report: Value,
}

impl Outcome {
    /// The `--json` summary object.
    pub fn summary(&self) -> Value {
        json!({
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "error": self.error,
            "experiment_dir": self.exp_dir,
            "reports": self.reports,
            "phases": self.phases.iter().map(|(n, s)| (n.to_string(), serde_json::to_value(s).unwrap_or(Value::Null))).collect::<serde_json::Map<_, _>>(),
            "validation": self.report["validation"]["response"],
            "throughput": self.report["throughput"]["summary"],
            "flags": self.report["throughput"]["flags"],
            "cross_check": self.report["cross_check"],
        })
    }
}

#[derive(Default)]
struct State {
    reference: Option<Reference>,
    ref_path: Option<PathBuf>,
    stat_test: Option<ResolvedStatTest>,
    deploy_args: Vec<String>,
    download: Option<Value>,
    deploy: Option<Value>,
    throughput: Option<Value>,
    validation: Option<Value>,
    result: Option<ValidationResult>,
    cross_check: Option<Value>,
    cross_disagree: bool,
    error: Option<String>,
    phases: Vec<(&'static str, PhaseState)>,
}

const PHASES: [&str; 4] = ["download", "deploy", "throughput", "validate"];

fn header(console: &Console, i: usize, text: &str) {
    console.line(format!("[{}/4] {}: {}", i + 1, PHASES[i], text));
}

/// Run the validator. `cancel` resolving means Ctrl-C: stop generation, write the partial
/// report, exit 130.
pub async fn run(
    args: ValidateArgs,
    console: Console,
    cancel: impl Future<Output = ()>,
) -> Outcome {
    let timestamp = chrono::Local::now();
    let ts = timestamp.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let exp_name = args
        .exp_name
        .clone()
        .unwrap_or_else(|| reference::default_exp_name(&args.model));
    let exp_dir = args.exp_dir.clone().unwrap_or_else(|| {
        PathBuf::from("data/experiments").join(format!(
            "{exp_name}_{}",
            timestamp.format("%Y-%m-%d_%H%M%S")
        ))
    });
    let artifacts_dir = args
        .artifacts_dir
        .clone()
        .unwrap_or_else(mlnode_sim::fixtures::default_artifacts_dir);
    let st = RefCell::new(State::default());
    let mut sim = None;
    let mut client = None;
    let mut interrupted = false;

    let setup: Result<(), String> = async {
        args.check()?;
        let (path, src) = reference::expected_path(&args.model, args.reference.as_deref(), &artifacts_dir);
        st.borrow_mut().ref_path = Some(path.clone());
        let r = reference::resolve(&args.model, &path, &artifacts_dir).map_err(|e| e.to_string())?;
        let cli = StatTestOverrides {
            dist_threshold: args.threshold,
            p_mismatch: args.p_mismatch,
            fraud_threshold: args.fraud_threshold,
        };
        let resolved = ResolvedStatTest::resolve(&[(Source::Artifact, &r.stat_test_overrides()), (Source::Cli, &cli)])
            .map_err(|e| format!("invalid stat test: {e}"))?;
        let deploy_args = compose_deploy_args(
            r.additional_args.as_deref().unwrap_or(&[]),
            args.tp_size,
            args.max_model_len,
            &args.extra_arg,
        );
        let ep = embedded::connect(&args.mlnode_url, args.time_scale, &artifacts_dir, embedded::Deploy::Scenario)
            .await
            .map_err(|e| e.to_string())?;
        let (url, scale) = (ep.url, ep.scale);
        sim = ep.sim;
        client = Some(Client::new(&url, SimClock::new(scale)));
        console.line(format!("mlnode:        {}{}", args.mlnode_url, if sim.is_some() { format!(" (embedded simulator at {url}, time scale {scale}x)") } else { String::new() }));
        console.line(format!("model:         {}", args.model));
        console.line(format!("reference:     {} ({}; {} vectors; source: {})", path.display(), src.as_str(), r.artifacts.len(), r.source.as_deref().unwrap_or("-")));
        console.line(format!("experiment:    {}", exp_dir.display()));
        console.line(format!("poc params:    seq_len={} k_dim={} block_hash={} public_key={} node_id={} node_count={} batch={} validation_batch={}",
            r.seq_len, r.k_dim, r.block_hash, r.public_key, r.node_id_or_default(), r.node_count_or_default(), args.batch_size, args.validation_batch_size));
        console.line(format!("deploy config: dtype={} additional_args={:?}", args.dtype, deploy_args));
        let v = resolved.values;
        let s = resolved.source;
        console.line(format!("stat test:     dist_threshold={} ({})  p_mismatch={} ({})  fraud_threshold={} ({})",
            v.dist_threshold, s.dist_threshold, v.p_mismatch, s.p_mismatch, v.fraud_threshold, s.fraud_threshold));
        let mut g = st.borrow_mut();
        g.reference = Some(r);
        g.stat_test = Some(resolved);
        g.deploy_args = deploy_args;
        Ok(())
    }
    .await;

    if let Err(e) = setup {
        st.borrow_mut().error = Some(e);
    } else if let Some(c) = client.clone() {
        let phases_fut = run_phases(&args, &c, &console, &st);
        tokio::select! {
            _ = phases_fut => {}
            _ = cancel => {
                interrupted = true;
                console.line("interrupted: stopping generation");
                let _ = c.post_raw("/api/v1/inference/pow/stop", &json!({}), 10.0).await;
                st.borrow_mut().error = Some("interrupted (Ctrl-C); partial report written".into());
            }
        }
    }
    if let Some(h) = sim.take() {
        h.shutdown().await;
    }
    let mut g = st.into_inner();
    let verdict = match (&g.error, &g.result) {
        (Some(_), _) => report::ERROR.to_string(),
        (None, None) => report::SKIPPED.to_string(),
        (None, Some(r)) if r.fraud_detected => report::FAIL.to_string(),
        (None, Some(r)) if r.n_mismatch > 0 => report::PASS_WITH_MISMATCHES.to_string(),
        (None, Some(_)) => report::PASS.to_string(),
    };
    let exit_code = if interrupted {
        EXIT_INTERRUPTED
    } else if g.error.is_some() {
        EXIT_ERROR
    } else if g.result.as_ref().is_some_and(|r| r.fraud_detected) || g.cross_disagree {
        EXIT_FRAUD
    } else {
        EXIT_PASS
    };
    // Phases never reached.
    let mut phases: [(&'static str, PhaseState); 4] = PHASES.map(|p| (p, PhaseState::NotRun));
    for (name, s) in g.phases.drain(..) {
        if let Some(slot) = phases.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = s;
        }
    }
    let (config, rep) = build_reports(&args, &ts, &exp_dir, &g, &verdict, exit_code);
    let txt = report::render_txt(&rep, &verdict);
    if let Some(e) = &g.error {
        console.line(format!("ERROR: {e}"));
    }
    for l in txt.lines() {
        console.line(l);
    }
    let reports = match report::write_all(&exp_dir, &config, &rep, &txt) {
        Ok(p) => {
            console.line(format!("config: {}", p.config.display()));
            console.line(format!("report: {}", p.report.display()));
            console.line(format!("text:   {}", p.txt.display()));
            Some(p)
        }
        Err(e) => {
            console.line(format!(
                "ERROR: cannot write reports to {}: {e}",
                exp_dir.display()
            ));
            None
        }
    };
    let outcome = Outcome {
        exit_code: if reports.is_none() && exit_code == EXIT_PASS {
            EXIT_ERROR
        } else {
            exit_code
        },
        verdict,
        error: g.error.clone(),
        exp_dir,
        reports,
        phases,
        report: rep,
    };
    if let Some(path) = &args.junit {
        if let Err(e) = junit::write(path, &outcome) {
            console.line(format!(
                "ERROR: cannot write JUnit file {}: {e}",
                path.display()
            ));
        }
    }
    outcome
}

async fn run_phases(args: &ValidateArgs, c: &Client, console: &Console, st: &RefCell<State>) {
    let (reference, stat_test, deploy_args) = {
        let g = st.borrow();
        match (&g.reference, &g.stat_test) {
            (Some(r), Some(s)) => (r.clone(), *s, g.deploy_args.clone()),
            _ => return,
        }
    };
    let ctx = Ctx {
        args,
        client: c,
        console,
        reference: &reference,
        deploy_args: &deploy_args,
        stat_test: &stat_test,
    };
    let fail = |name: &'static str, e: String| {
        let mut g = st.borrow_mut();
        g.phases.push((name, PhaseState::Failed(e.clone())));
        g.error = Some(e);
    };
    // 1. download
    if args.skip_download {
        header(console, 0, "skipped (--skip-download)");
        st.borrow_mut()
            .phases
            .push(("download", PhaseState::Skipped("--skip-download".into())));
    } else {
        header(
            console,
            0,
            &format!("POST /api/v1/models/status {}", args.model),
        );
        let PhaseResult { report, error } = phases::download::run(&ctx).await;
        st.borrow_mut().download = Some(report);
        if let Some(e) = error {
            return fail("download", e);
        }
        st.borrow_mut()
            .phases
            .push(("download", PhaseState::Passed));
    }
    // 2. deploy (with --skip-deploy the status is still read)
    header(
        console,
        1,
        if args.skip_deploy {
            "skipped (--skip-deploy); checking vLLM is running"
        } else {
            "GET /api/v1/inference/up/status"
        },
    );
    let PhaseResult { report, error } = phases::deploy::run(&ctx, args.skip_deploy).await;
    if !args.skip_deploy {
        st.borrow_mut().deploy = Some(report);
    }
    if let Some(e) = error {
        return fail("deploy", e);
    }
    st.borrow_mut().phases.push((
        "deploy",
        if args.skip_deploy {
            PhaseState::Skipped("--skip-deploy".into())
        } else {
            PhaseState::Passed
        },
    ));
    // 3. throughput
    if args.skip_throughput {
        header(console, 2, "skipped (--skip-throughput)");
        st.borrow_mut().phases.push((
            "throughput",
            PhaseState::Skipped("--skip-throughput".into()),
        ));
    } else {
        header(
            console,
            2,
            &format!(
                "init/generate, warm-up {}s, measure {}s every {}s",
                args.warmup_seconds, args.measure_seconds, args.sample_interval
            ),
        );
        let (PhaseResult { mut report, error }, flags) = phases::throughput::run(&ctx).await;
        if let Some(obj) = report.as_object_mut() {
            obj.insert("flags".into(), json!({"slow_replicas": flags.slow, "stalled_replicas": flags.stalled, "no_backends": flags.no_backends}));
        }
        let s = &report["summary"];
        if !s.is_null() {
            console.line(format!(
                "  backends={}  avg sum rate = {:.2} nonces/s ({:.1} nonces/min)",
                s["n_backends"],
                s["avg_sum_nonces_per_second"].as_f64().unwrap_or(0.0),
                s["avg_sum_nonces_per_min"].as_f64().unwrap_or(0.0)
            ));
        }
        if flags.no_backends {
            console.line("  WARNING: backends=0 / NO_BACKENDS: the deploy crashed");
        }
        for p in &flags.slow {
            console.line(format!(
                "  WARNING: backend {p} is below 50% of the median rate"
            ));
        }
        for p in &flags.stalled {
            console.line(format!(
                "  WARNING: backend {p} total_processed did not grow between samples (stalled)"
            ));
        }
        st.borrow_mut().throughput = Some(report);
        if let Some(e) = error {
            return fail("throughput", e);
        }
        st.borrow_mut()
            .phases
            .push(("throughput", PhaseState::Passed));
    }
    // 4. validate
    if args.skip_validate {
        header(console, 3, "skipped (--skip-validate)");
        st.borrow_mut()
            .phases
            .push(("validate", PhaseState::Skipped("--skip-validate".into())));
        return;
    }
    header(
        console,
        3,
        &format!(
            "POST /api/v1/inference/pow/generate ({} vectors, batch {})",
            reference.artifacts.len(),
            args.validation_batch_size
        ),
    );
    let (PhaseResult { report, error }, result) = phases::validate::run(&ctx).await;
    st.borrow_mut().validation = Some(report);
    if let Some(e) = error {
        return fail("validate", e);
    }
    if let Some(r) = &result {
        console.line(format!(
            "  n_total={}  n_mismatch={}  p_value={}  fraud_detected={}",
            r.n_total, r.n_mismatch, r.p_value, r.fraud_detected
        ));
    }
    st.borrow_mut().result = result.clone();
    if args.cross_check {
        console.line("  cross-check: fetching the node's own vectors and recomputing locally");
        match phases::validate::cross_check(&ctx).await {
            Ok((local, extra)) => {
                let node_fraud = result.as_ref().is_some_and(|r| r.fraud_detected);
                let disagree = !node_fraud && local.fraud_detected;
                console.line(format!(
                    "  local: n_mismatch={} p_value={} fraud_detected={}{}",
                    local.n_mismatch,
                    local.p_value,
                    local.fraud_detected,
                    if disagree {
                        "  -> node self-verdict disagrees with local recomputation"
                    } else {
                        ""
                    }
                ));
                let mut g = st.borrow_mut();
                g.cross_check = Some(
                    json!({"local": local, "node": result, "disagree": disagree, "detail": extra,
                    "message": if disagree { Value::from("node self-verdict disagrees with local recomputation") } else { Value::Null }}),
                );
                g.cross_disagree = disagree;
            }
            Err(e) => return fail("validate", format!("cross-check failed: {e}")),
        }
    }
    st.borrow_mut()
        .phases
        .push(("validate", PhaseState::Passed));
}

fn build_reports(
    args: &ValidateArgs,
    ts: &str,
    exp_dir: &std::path::Path,
    g: &State,
    verdict: &str,
    exit_code: i32,
) -> (Value, Value) {
    let r = g.reference.as_ref();
    let reference = r.map_or(Value::Null, |r| json!({
        "path": g.ref_path.as_ref().map(|p| p.display().to_string()),
        "model": r.model, "seq_len": r.seq_len, "k_dim": r.k_dim, "block_hash": r.block_hash,
        "public_key": r.public_key, "node_id": r.node_id_or_default(), "node_count": r.node_count_or_default(),
        "n_vectors": r.artifacts.len(), "source": r.source, "additional_args": r.additional_args.clone().unwrap_or_default(),
    }));
    let cli_deploy =
        args.tp_size.is_some() || args.max_model_len.is_some() || !args.extra_arg.is_empty();
    let deploy_config = r.map_or(Value::Null, |_| {
        json!({
            "dtype": args.dtype, "additional_args": g.deploy_args,
            "source": if cli_deploy { "artifact+cli" } else { "artifact" },
        })
    });
    let poc_params = r.map_or(Value::Null, |r| json!({
        "seq_len": r.seq_len, "k_dim": r.k_dim, "block_hash": r.block_hash, "public_key": r.public_key,
        "node_id": r.node_id_or_default(), "node_count": r.node_count_or_default(),
        "throughput_batch_size": args.batch_size, "validation_batch_size": args.validation_batch_size,
        "source": "artifact",
    }));
    let stat_test = g.stat_test.map_or(Value::Null, |s| {
        serde_json::to_value(s).unwrap_or(Value::Null)
    });
    let mut config = report::obj();
    report::put(&mut config, "timestamp", json!(ts));
    report::put(&mut config, "mlnode_url", json!(args.mlnode_url));
    report::put(&mut config, "model", json!(args.model));
    report::put(&mut config, "reference", reference);
    report::put(&mut config, "deploy_config", deploy_config);
    report::put(&mut config, "poc_params", poc_params);
    report::put(&mut config, "stat_test", stat_test);
    report::put(&mut config, "args", report::args_json(args));
    let mut rep = config.clone();
    rep.insert("download".into(), g.download.clone().unwrap_or(Value::Null));
    rep.insert("deploy".into(), g.deploy.clone().unwrap_or(Value::Null));
    rep.insert(
        "throughput".into(),
        g.throughput.clone().unwrap_or(Value::Null),
    );
    let validation = g.validation.clone().map_or(Value::Null, |mut v| {
        let passed = g.result.as_ref().map(|r| !r.fraud_detected);
        let has = g.result.as_ref().map(|r| r.n_mismatch > 0);
        if let Some(o) = v.as_object_mut() {
            o.insert("passed".into(), json!(passed));
            o.insert("has_mismatches".into(), json!(has));
        }
        v
    });
    rep.insert("validation".into(), validation);
    rep.insert(
        "cross_check".into(),
        g.cross_check.clone().unwrap_or(Value::Null),
    );
    rep.insert("verdict".into(), json!(verdict));
    rep.insert("exit_code".into(), json!(exit_code));
    rep.insert("error".into(), json!(g.error));
    rep.insert(
        "experiment_dir".into(),
        json!(exp_dir.display().to_string()),
    );
    (Value::Object(config), Value::Object(rep))
}
