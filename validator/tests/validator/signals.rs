//! Every signal leaves a report and a stopped node: SIGINT, SIGTERM and SIGHUP in each
//! phase stop generation, write the partial report with the phase marked interrupted,
//! and exit 128 + signal.

use std::time::Duration;

use mlnode_sim::config::NodeConfig;
use mlnode_validator::Signal;
use serde_json::Value;

use crate::util::*;

async fn after(ms: u64, s: Signal) -> Signal {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    s
}

async fn pow_idle(url: &str) -> bool {
    let st: Value = reqwest::get(format!("{url}/api/v1/inference/pow/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    st["status"] == "IDLE" || st["status"] == "NO_BACKENDS"
}

/// One run per phase, each cut by a signal while that phase is under way.
#[tokio::test]
async fn a_signal_in_each_phase_writes_a_partial_report() {
    // Simulated durations far beyond the 300 ms the run gets (at 2000×: ~10^6 s).
    let slow_download = NodeConfig {
        download_gb_per_s: 1e-6,
        ..NodeConfig::default()
    };
    let slow_deploy = NodeConfig {
        cached_models: vec![QWEN.into()],
        deploy_seconds: 1e7,
        ..NodeConfig::default()
    };
    let cases: Vec<(NodeConfig, Vec<&str>, &str, Signal)> = vec![
        (slow_download, vec![], "download", Signal::Sigint),
        (
            slow_deploy,
            vec!["--deploy-timeout", "1e9"],
            "deploy",
            Signal::Sigterm,
        ),
        (
            deployed(),
            vec!["--skip-download", "--warmup-seconds", "1000000"],
            "throughput",
            Signal::Sighup,
        ),
    ];
    for (cfg, extra, phase, sig) in cases {
        let h = spawn_sim(cfg).await;
        let dir = tempfile::tempdir().unwrap();
        let (out, text) = validate_in(dir.path(), &h.uri(), QWEN, &extra, after(300, sig)).await;
        assert_eq!(out.exit_code, 128 + sig.number(), "{phase}: {text}");
        assert!(text.contains("Interrupted"), "{text}");
        let rep = read_json(&dir.path().join("validate_report.json"));
        assert_eq!(rep["verdict"], "INTERRUPTED");
        let p = rep["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == phase)
            .unwrap();
        assert_eq!(p["state"], "interrupted", "{phase}: {rep}");
        assert!(dir.path().join("validate_report.txt").exists());
        assert!(pow_idle(&h.uri()).await, "{phase}: generation stopped");
        h.shutdown().await;
    }
}

/// A signal while validating: the node is asked to stop, the report says interrupted.
#[tokio::test]
async fn a_signal_during_validation() {
    // Node and validator in real time: the node's 60 s proxy timeout must not fire first.
    let h = sim_builder(NodeConfig {
        faults: mlnode_sim::config::Faults {
            generate_delay_seconds: Some(1e6),
            ..Default::default()
        },
        ..deployed()
    })
    .time_scale(1.0)
    .start()
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = validate_in(
        dir.path(),
        &h.uri(),
        QWEN,
        // Real time: the node's 60 s proxy timeout must not fire before the signal.
        &[
            "--skip-download",
            "--skip-throughput",
            "--validation-timeout",
            "1e9",
            "--time-scale",
            "1",
        ],
        after(300, Signal::Sigterm),
    )
    .await;
    assert_eq!(out.exit_code, 143, "{text}");
    let rep = read_json(&dir.path().join("validate_report.json"));
    assert_eq!(rep["phases"][3]["state"], "interrupted");
    assert_eq!(rep["validation"]["response"], Value::Null);
    h.shutdown().await;
}

/// The real binary: SIGTERM and SIGHUP are handled as SIGINT is (no default death).
#[tokio::test]
async fn the_binary_handles_sigterm_and_sighup() {
    for (sig, name, code) in [
        (libc_sig::TERM, "TERM", 143),
        (libc_sig::HUP, "HUP", 129),
        (libc_sig::INT, "INT", 130),
    ] {
        let h = spawn_sim(deployed()).await;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlnode-validate"))
            .args([
                "--mlnode-url",
                &h.uri(),
                "--model",
                QWEN,
                "--skip-download",
                "--warmup-seconds",
                "1e9",
                "--time-scale",
                SCALE,
            ])
            .arg("--exp-dir")
            .arg(dir.path())
            .arg("--artifacts-dir")
            .arg(artifacts())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the run is mining (the node says GENERATING), then signal it.
        let t0 = std::time::Instant::now();
        while pow_idle(&h.uri()).await {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the run never started mining"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code_got = tokio::task::spawn_blocking(move || child.wait().unwrap().code())
            .await
            .unwrap();
        assert_eq!(code_got, Some(code), "SIG{name} ({sig})");
        assert!(
            dir.path().join("validate_report.json").exists(),
            "SIG{name}: report written"
        );
        assert!(pow_idle(&h.uri()).await, "SIG{name}: generation stopped");
        h.shutdown().await;
    }
}

/// Signal numbers, for messages.
mod libc_sig {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const TERM: i32 = 15;
}
