//! Shared set-up: arguments, a run through the library, simulated nodes on port 0.

use std::path::{Path, PathBuf};

use clap::Parser;
use mlnode_sim::config::NodeConfig;
use mlnode_validator::console::Console;
use mlnode_validator::{run, Outcome, Signal, ValidateArgs};
use serde_json::Value;

pub const QWEN: &str = "Qwen/Qwen3-32B-FP8";
pub const MINIMAX: &str = "MiniMaxAI/MiniMax-M2.7";
pub const SCALE: &str = "2000";

pub fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts")
}

pub fn args(url: &str, model: &str, dir: &Path, extra: &[&str]) -> ValidateArgs {
    let mut with_scale = vec!["--time-scale", SCALE];
    with_scale.extend_from_slice(extra);
    unscaled_args(url, model, dir, &with_scale)
}

/// [`args`] without `--time-scale`: the run learns the scale from the node.
pub fn unscaled_args(url: &str, model: &str, dir: &Path, extra: &[&str]) -> ValidateArgs {
    let mut v: Vec<String> = vec![
        "mlnode-validate".into(),
        "--mlnode-url".into(),
        url.into(),
        "--model".into(),
        model.into(),
        "--exp-dir".into(),
        dir.display().to_string(),
        "--artifacts-dir".into(),
        artifacts().display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    ValidateArgs::try_parse_from(v).unwrap()
}

/// A run through the library that is never cancelled: outcome, transcript, report dir.
pub async fn validate(
    url: &str,
    model: &str,
    extra: &[&str],
) -> (Outcome, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = validate_in(dir.path(), url, model, extra, std::future::pending()).await;
    (out, text, dir)
}

/// A run into `dir`, cancelled when `cancel` resolves.
pub async fn validate_in(
    dir: &Path,
    url: &str,
    model: &str,
    extra: &[&str],
    cancel: impl std::future::Future<Output = Signal>,
) -> (Outcome, String) {
    run_with(args(url, model, dir, extra), cancel).await
}

/// A run of `args` through the library, cancelled when `cancel` resolves: outcome and
/// transcript.
pub async fn run_with(
    args: ValidateArgs,
    cancel: impl std::future::Future<Output = Signal>,
) -> (Outcome, String) {
    let (console, buf) = Console::buffer();
    let out = run(args, console, cancel).await;
    let text = buf.lock().unwrap().clone();
    (out, text)
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The report a run wrote, as JSON.
pub fn report_json(out: &Outcome) -> Value {
    read_json(&out.reports.as_ref().expect("reports written").report)
}

/// A node from `cfg` at the suite's time scale, serving the repository's references.
pub async fn spawn_sim(cfg: NodeConfig) -> mlnode_sim::SimServer {
    sim_builder(cfg).start().await.unwrap()
}

/// The builder [`spawn_sim`] starts (for options: token, TLS, admin).
pub fn sim_builder(cfg: NodeConfig) -> mlnode_sim::SimServerBuilder {
    mlnode_sim::SimServer::builder()
        .config(cfg)
        .time_scale(SCALE.parse().unwrap())
        .references(artifacts())
}

/// A node with the Qwen reference model deployed (phases 1–2 are instant).
pub fn deployed() -> NodeConfig {
    NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..NodeConfig::default()
    }
}

/// Run a binary of this crate with `args`, off the async runtime.
pub async fn run_bin(name: &'static str, args: Vec<String>) -> std::process::Output {
    let exe = match name {
        "mlnode-validate" => env!("CARGO_BIN_EXE_mlnode-validate"),
        _ => env!("CARGO_BIN_EXE_mlnode-make-artifact"),
    };
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
