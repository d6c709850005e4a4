//! `--inventory FILE`: a whole fleet in one command. Every node × model of a node-config
//! list is validated as its own run (URL from the node's host and `poc_port`, deploy
//! config from its entry), `--jobs` at a time; one report folder per node under
//! `--exp-dir`, `fleet_report.json` there, a table, JUnit with a test case per node, exit
//! code the worst. A node that is unreachable or fails does not stop the others; a signal
//! stops generation on every node that started it.

use std::future::Future;
use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt};
use mlnode_protocol::node_config::{NodeConfig, NodeEntry};
use mlnode_protocol::safe_id::safe_id;
use serde::Serialize;
use tokio::sync::watch;

use crate::args::ValidateArgs;
use crate::console::Console;
use crate::outcome::worse;
use crate::report::{self, ToolInfo};
use crate::run::load_node_config;
use crate::verdict::{Signal, EXIT_ERROR};

/// One node × model of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetNode {
    pub node_id: String,
    pub host: String,
    pub url: String,
    pub model: String,
    pub verdict: &'static str,
    pub verdict_code: &'static str,
    pub exit_code: i32,
    pub error: Option<String>,
    pub n_backends: Option<usize>,
    pub avg_sum_nonces_per_second: Option<f64>,
    pub n_total: Option<u64>,
    pub n_mismatch: Option<u64>,
    pub p_value: Option<f64>,
    pub warnings: Vec<String>,
    pub experiment_dir: Option<PathBuf>,
    /// Wall seconds the node's run took.
    pub wall_s: f64,
}

/// Counts by verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetSummary {
    pub nodes: usize,
    pub pass: usize,
    pub pass_with_mismatches: usize,
    pub fraud: usize,
    pub error: usize,
    pub skipped: usize,
    pub interrupted: usize,
    pub with_warnings: usize,
}

/// `fleet_report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub tool: ToolInfo,
    pub inventory: String,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub summary: FleetSummary,
    pub nodes: Vec<FleetNode>,
}

/// What a fleet run ends with.
#[derive(Debug, Clone)]
pub struct FleetOutcome {
    pub exit_code: i32,
    pub report: Option<FleetReport>,
    pub report_path: Option<PathBuf>,
    pub error: Option<String>,
}

fn now_iso() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// The runs of a fleet: (node, model), placeholders skipped, `--model` restricting.
fn jobs<'a>(nodes: &'a [NodeEntry], model: &str) -> Vec<(&'a NodeEntry, String)> {
    let mut out = Vec::new();
    for n in nodes {
        for m in n.models.keys() {
            if NodeEntry::is_placeholder(m) || (!model.is_empty() && m != model) {
                continue;
            }
            out.push((n, m.clone()));
        }
    }
    out
}

/// One inventory: a node-config file, or an http(s) URL (an `mlnode-sim`'s
/// `GET /sim/v1/inventory`), read through the run's access settings and size-capped.
async fn load_inventory(
    source: &str,
    access: &crate::access::Access,
) -> Result<NodeConfig, String> {
    if !(source.starts_with("http://") || source.starts_with("https://")) {
        return load_node_config(std::path::Path::new(source));
    }
    let http = access.client().map_err(|e| e.to_string())?;
    let mut resp = http
        .get(source)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("inventory {source}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "inventory {source}: HTTP {}",
            resp.status().as_u16()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("inventory {source}: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > crate::run::MAX_NODE_CONFIG_BYTES {
            return Err(format!(
                "inventory {source}: over {} MiB",
                crate::run::MAX_NODE_CONFIG_BYTES >> 20
            ));
        }
    }
    let text = String::from_utf8(body).map_err(|_| format!("inventory {source}: not UTF-8"))?;
    NodeConfig::parse(&text).map_err(|e| format!("inventory {source}: {e}"))
}

/// Every `--inventory` merged, in order; a node id seen before gets `@<host>` appended
/// (pods of one Deployment number their nodes alike).
async fn gather(sources: &[String], access: &crate::access::Access) -> Result<NodeConfig, String> {
    let mut all: Vec<NodeEntry> = Vec::new();
    for s in sources {
        for mut n in load_inventory(s, access).await?.0 {
            if all.iter().any(|m| m.id == n.id) {
                n.id = format!("{}@{}", n.id, n.host);
            }
            all.push(n);
        }
    }
    Ok(NodeConfig(all))
}

/// Validate every node of `args.inventory`.
pub async fn run(
    args: ValidateArgs,
    console: Console,
    cancel: impl Future<Output = Signal>,
) -> FleetOutcome {
    let started_at = now_iso();
    let fail = |e: String| {
        console.always(format!("ERROR: {e}"));
        FleetOutcome {
            exit_code: EXIT_ERROR,
            report: None,
            report_path: None,
            error: Some(e),
        }
    };
    if args.inventory.is_empty() {
        return fail("no --inventory".into());
    }
    let inventory = match gather(&args.inventory, &args.access).await {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let inv_path = PathBuf::from(args.inventory.join(", "));
    let runs = jobs(&inventory.0, &args.model);
    if runs.is_empty() {
        return fail(format!(
            "{}: no node serves {} (placeholder models are skipped)",
            inv_path.display(),
            if args.model.is_empty() {
                "any model"
            } else {
                args.model.as_str()
            }
        ));
    }
    let root = args.exp_dir.clone().unwrap_or_else(|| {
        PathBuf::from("data/experiments").join(format!(
            "mlnode_fleet_{}",
            chrono::Local::now().format("%Y-%m-%d_%H%M%S")
        ))
    });
    if let Err(e) = report::files::check_writable(&root) {
        return fail(format!("cannot write reports to {}: {e}", root.display()));
    }
    console.line(format!(
        "fleet: {} run(s) over {} node(s) from {}, {} at a time; reports under {}",
        runs.len(),
        inventory.0.len(),
        inv_path.display(),
        args.jobs,
        root.display()
    ));
    // One signal, fanned out to every run: each stops generation on its own node.
    let (tx, rx) = watch::channel::<Option<Signal>>(None);
    let total = runs.len();
    let per_model = runs.iter().filter(|(n, _)| n.models.len() > 1).count() > 0;
    let parsed = &inventory;
    let futures = runs.into_iter().enumerate().map(|(i, (node, model))| {
        let mut sub = args.clone();
        sub.inventory = Vec::new();
        sub.mlnode_url = node.poc_url(&args.inventory_scheme);
        sub.model = model.clone();
        sub.node_config = Some(inv_path.clone());
        sub.node_id = Some(node.id.clone());
        sub.junit = None;
        sub.json = false;
        sub.exp_dir = Some(root.join(if per_model {
            format!("{}__{}", node.id, safe_id(&model))
        } else {
            node.id.clone()
        }));
        let mut rx = rx.clone();
        let (node_id, host) = (node.id.clone(), node.host.clone());
        async move {
            let cancel = async move {
                match rx.wait_for(Option::is_some).await {
                    Ok(s) => s.unwrap_or(Signal::Sigint),
                    Err(_) => std::future::pending().await,
                }
            };
            let t0 = std::time::Instant::now();
            let (buf, _) = Console::buffer();
            let url = sub.mlnode_url.clone();
            // The inventory was parsed once above; each run takes it as is.
            let o = crate::run::run_with(sub, buf, cancel, Some(parsed)).await;
            let r = o.report.as_ref();
            let v = r.and_then(|r| r.validation.response.as_ref());
            let t = r.and_then(|r| r.throughput.as_ref());
            (
                i,
                FleetNode {
                    node_id,
                    host,
                    url,
                    model,
                    verdict: o.verdict.headline(),
                    verdict_code: o.verdict.code(),
                    exit_code: o.exit_code,
                    error: o.error.clone(),
                    n_backends: t.map(|t| t.summary.n_backends),
                    avg_sum_nonces_per_second: t.map(|t| t.summary.avg_sum_nonces_per_second),
                    n_total: v.map(|v| v.n_total),
                    n_mismatch: v.map(|v| v.n_mismatch),
                    p_value: v.map(|v| v.p_value),
                    warnings: r
                        .map(|r| r.warnings.iter().map(|w| w.message.clone()).collect())
                        .unwrap_or_default(),
                    experiment_dir: o.exp_dir.clone(),
                    wall_s: crate::r3(t0.elapsed().as_secs_f64()),
                },
            )
        }
    });
    let all = stream::iter(futures).buffer_unordered(args.jobs as usize);
    let mut all = std::pin::pin!(all);
    let mut cancel = std::pin::pin!(cancel);
    let mut nodes: Vec<(usize, FleetNode)> = Vec::with_capacity(total);
    let mut signalled = false;
    loop {
        tokio::select! {
            next = all.next() => match next {
                Some((i, n)) => {
                    console.line(format!(
                        "[{}/{total}] {} {} ({}): {} (exit {}){}",
                        nodes.len() + 1,
                        n.node_id,
                        n.model,
                        n.url,
                        n.verdict,
                        n.exit_code,
                        n.error.as_deref().map(|e| format!(" — {}", crate::client::clip(e, 160))).unwrap_or_default()
                    ));
                    nodes.push((i, n));
                }
                None => break,
            },
            s = &mut cancel, if !signalled => {
                signalled = true;
                console.always(format!("\nInterrupted ({}); stopping generation on every node that started it", s.name()));
                let _ = tx.send(Some(s));
            }
        }
    }
    nodes.sort_by_key(|(i, _)| *i);
    let nodes: Vec<FleetNode> = nodes.into_iter().map(|(_, n)| n).collect();
    let mut summary = FleetSummary {
        nodes: nodes.len(),
        ..FleetSummary::default()
    };
    for n in &nodes {
        match n.verdict_code {
            "pass" => summary.pass += 1,
            "pass_with_mismatches" => summary.pass_with_mismatches += 1,
            "fraud" | "cross_check_disagree" => summary.fraud += 1,
            "skipped" => summary.skipped += 1,
            "interrupted" => summary.interrupted += 1,
            _ => summary.error += 1,
        }
        if !n.warnings.is_empty() {
            summary.with_warnings += 1;
        }
    }
    let mut exit_code = nodes.iter().fold(0, |acc, n| worse(acc, n.exit_code));
    let report = FleetReport {
        tool: ToolInfo::VALIDATE,
        inventory: inv_path.display().to_string(),
        started_at,
        finished_at: now_iso(),
        exit_code,
        summary,
        nodes,
    };
    table(&console, &report);
    let path = root.join("fleet_report.json");
    let mut out = FleetOutcome {
        exit_code,
        report: None,
        report_path: None,
        error: None,
    };
    match report::files::pretty(&report).and_then(|t| report::write_atomic(&path, &t)) {
        Ok(()) => {
            console.line(format!("fleet report: {}", path.display()));
            out.report_path = Some(path);
        }
        Err(e) => {
            console.always(format!("ERROR: cannot write {}: {e}", path.display()));
            exit_code = worse(exit_code, EXIT_ERROR);
        }
    }
    if let Some(j) = &args.junit {
        if let Err(e) = junit(j, &report) {
            console.always(format!(
                "ERROR: cannot write JUnit file {}: {e}",
                j.display()
            ));
            exit_code = worse(exit_code, EXIT_ERROR);
        }
    }
    console.always(format!(
        "fleet verdict: {} of {} pass ({} with mismatches), {} fraud, {} error, {} interrupted — exit {exit_code}",
        report.summary.pass + report.summary.pass_with_mismatches,
        report.summary.nodes,
        report.summary.pass_with_mismatches,
        report.summary.fraud,
        report.summary.error,
        report.summary.interrupted
    ));
    out.exit_code = exit_code;
    out.report = Some(report);
    out
}

/// One row per node: verdict, rates, mismatches, warnings.
fn table(console: &Console, r: &FleetReport) {
    console.always("");
    console.always(format!(
        "{:<16} {:<40} {:>5} {:>9} {:>9}  {:<10} verdict",
        "node", "model", "exit", "nonces/s", "mismatch", "warnings"
    ));
    for n in &r.nodes {
        console.always(format!(
            "{:<16} {:<40} {:>5} {:>9} {:>9}  {:<10} {}",
            n.node_id,
            n.model,
            n.exit_code,
            n.avg_sum_nonces_per_second
                .map_or("-".into(), |x| format!("{x:.2}")),
            n.n_mismatch
                .map_or("-".into(), |m| format!("{m}/{}", n.n_total.unwrap_or(0))),
            n.warnings.len(),
            n.verdict
        ));
    }
}

/// JUnit: a test case per node × model, failing exactly when its exit code is not 0.
fn junit(path: &Path, r: &FleetReport) -> std::io::Result<()> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("mlnode-validate fleet");
    let mut suite = TestSuite::new(r.inventory.clone());
    for n in &r.nodes {
        let status = if n.exit_code == 0 {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!(
                "{} (exit {}){}",
                n.verdict,
                n.exit_code,
                n.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
            s
        };
        let mut case = TestCase::new(format!("{} {}", n.node_id, n.model), status);
        case.set_time(std::time::Duration::from_secs_f64(n.wall_s));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    let xml = report
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    report::write_atomic(path, &xml)
}
