//! Integration tests for `mlnode-validate` and `mlnode-make-artifact`: the binaries and
//! the library against simulated nodes on 127.0.0.1:0 with an accelerated clock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use mlnode_sim::config::NodeConfig;
use mlnode_validator::console::Console;
use mlnode_validator::{run, ValidateArgs};
use serde_json::Value;

const QWEN: &str = "Qwen/Qwen3-32B-FP8";
const MINIMAX: &str = "MiniMaxAI/MiniMax-M2.7";
const SCALE: &str = "2000";

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts")
}

fn args(url: &str, model: &str, dir: &Path, extra: &[&str]) -> ValidateArgs {
    let mut v: Vec<String> = vec![
        "mlnode-validate".into(),
        "--mlnode-url".into(),
        url.into(),
        "--model".into(),
        model.into(),
        "--exp-dir".into(),
        dir.display().to_string(),
        "--time-scale".into(),
        SCALE.into(),
        "--artifacts-dir".into(),
        artifacts().display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    ValidateArgs::try_parse_from(v).unwrap()
}

async fn validate(
    url: &str,
    model: &str,
    extra: &[&str],
) -> (mlnode_validator::Outcome, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (console, buf) = Console::buffer();
    let out = run(
        args(url, model, dir.path(), extra),
        console,
        std::future::pending(),
    )
    .await;
    let text = buf.lock().unwrap().clone();
    (out, text, dir)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

async fn spawn_sim(cfg: NodeConfig) -> mlnode_sim::SimHandle {
    let node = mlnode_sim::build_node(
        NodeConfig {
            time_scale: SCALE.parse().unwrap(),
            ..cfg
        },
        Some(&artifacts()),
    )
    .unwrap();
    mlnode_sim::spawn(node).await.unwrap()
}

/// Every shipped scenario, through the library: the exit code, verdict and error the
/// scenario file declares.
#[tokio::test]
async fn every_scenario_reaches_its_declared_verdict() {
    for s in mlnode_sim::fixtures::all_scenarios().unwrap() {
        let e = s.expect.clone().unwrap();
        let (out, text, _d) = validate(
            &format!("sim:{}", s.name),
            &e.model,
            &["--download-timeout", "600", "--deploy-timeout", "600"],
        )
        .await;
        assert_eq!(
            out.exit_code,
            e.exit_code,
            "{}: {}\n{text}",
            s.name,
            out.error.clone().unwrap_or_default()
        );
        assert_eq!(out.verdict, e.verdict, "{}", s.name);
        if let Some(want) = &e.error_contains {
            let err = out.error.clone().unwrap_or_default();
            assert!(
                err.contains(want.as_str()),
                "{}: error {err:?} lacks {want:?}",
                s.name
            );
        }
        assert!(
            out.reports.is_some(),
            "{}: reports written on every path",
            s.name
        );
        // The transcript carries the verdict line and the ERROR line on failures.
        assert!(
            text.contains(&format!("verdict:      {}", e.verdict)),
            "{}",
            s.name
        );
        if e.exit_code == 1 {
            assert!(text.contains("ERROR: "), "{}", s.name);
        }
        // Replica findings land in the report.
        let flags = &out.report["throughput"]["flags"];
        match s.name.as_str() {
            "slow-replica" => {
                assert_eq!(flags["slow_replicas"], serde_json::json!([5003]), "{text}")
            }
            "stalled-replica" => assert_eq!(
                flags["stalled_replicas"],
                serde_json::json!([5002]),
                "{text}"
            ),
            "honest-4-replicas" => {
                assert_eq!(out.report["throughput"]["summary"]["n_backends"], 4);
                let rate = out.report["throughput"]["summary"]["avg_sum_nonces_per_min"]
                    .as_f64()
                    .unwrap();
                assert!(
                    (4000.0..=4992.0 * 1.01).contains(&rate),
                    "4 × 1248/min: {rate}"
                );
            }
            "partial-init" => assert!(text.contains("WARNING: init failed on port 5002"), "{text}"),
            _ => {}
        }
    }
}

/// Both real references validate PASS against a reference-backed simulator, through the
/// real binary against a node on its own port.
#[tokio::test]
async fn binary_validates_both_real_references_pass() {
    for model in [QWEN, MINIMAX] {
        let h = spawn_sim(NodeConfig::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let url = h.url();
        let art = artifacts();
        let exp = dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_mlnode-validate"))
                .args([
                    "--mlnode-url",
                    &url,
                    "--model",
                    model,
                    "--time-scale",
                    SCALE,
                    "--exp-dir",
                ])
                .arg(&exp)
                .arg("--artifacts-dir")
                .arg(&art)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{model}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("verdict:      PASS\n"), "{stdout}");
        for h in [
            "[1/4] download: ",
            "[2/4] deploy: ",
            "[3/4] throughput: ",
            "[4/4] validate: ",
        ] {
            assert!(stdout.contains(h), "missing {h}");
        }
        let rep = read_json(&dir.path().join("validate_report.json"));
        assert_eq!(rep["validation"]["passed"], true);
        assert_eq!(rep["validation"]["has_mismatches"], false);
        assert_eq!(rep["download"]["action"], "downloaded");
        assert_eq!(rep["deploy"]["action"], "deployed");
        if model == MINIMAX {
            assert_eq!(rep["stat_test"]["values"]["dist_threshold"], 0.75);
            assert_eq!(rep["stat_test"]["source"]["p_mismatch"], "artifact");
            assert_eq!(
                rep["deploy_config"]["additional_args"]
                    .as_array()
                    .unwrap()
                    .len(),
                18
            );
        }
        h.shutdown().await;
    }
}

/// validator.md's key lists: a missing key fails CI.
#[tokio::test]
async fn report_key_sets_match_validator_md() {
    let (out, _, dir) = validate("sim:honest", QWEN, &[]).await;
    assert_eq!(out.exit_code, 0);
    let config = read_json(&dir.path().join("validate_config.json"));
    let report = read_json(&dir.path().join("validate_report.json"));
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let has = |v: &Value, ks: &[&str], what: &str| {
        for k in ks {
            assert!(v.get(*k).is_some(), "{what} lacks '{k}': {v}");
        }
    };
    assert_eq!(
        keys(&config),
        [
            "timestamp",
            "mlnode_url",
            "model",
            "reference",
            "deploy_config",
            "poc_params",
            "stat_test",
            "args"
        ]
    );
    has(
        &config["reference"],
        &[
            "path",
            "model",
            "seq_len",
            "k_dim",
            "block_hash",
            "public_key",
            "node_id",
            "node_count",
            "n_vectors",
            "source",
            "additional_args",
        ],
        "reference",
    );
    has(
        &config["deploy_config"],
        &["dtype", "additional_args", "source"],
        "deploy_config",
    );
    has(
        &config["poc_params"],
        &[
            "seq_len",
            "k_dim",
            "block_hash",
            "public_key",
            "node_id",
            "node_count",
            "throughput_batch_size",
            "validation_batch_size",
            "source",
        ],
        "poc_params",
    );
    has(&config["stat_test"], &["values", "source"], "stat_test");
    has(
        &config["stat_test"]["values"],
        &["dist_threshold", "p_mismatch", "fraud_threshold"],
        "stat_test.values",
    );
    has(
        &config["args"],
        &[
            "mlnode_url",
            "model",
            "reference",
            "exp_dir",
            "exp_name",
            "skip_download",
            "skip_deploy",
            "skip_throughput",
            "skip_validate",
            "dtype",
            "tp_size",
            "max_model_len",
            "extra_arg",
            "threshold",
            "p_mismatch",
            "fraud_threshold",
            "download_timeout",
            "deploy_timeout",
            "validation_timeout",
            "warmup_seconds",
            "measure_seconds",
            "sample_interval",
            "batch_size",
            "validation_batch_size",
        ],
        "args",
    );
    for k in keys(&config) {
        assert_eq!(report[&k], config[&k], "report repeats config key {k}");
    }
    has(
        &report,
        &["download", "deploy", "throughput", "validation"],
        "report",
    );
    has(
        &report["download"],
        &["action", "elapsed_s", "last_status"],
        "download",
    );
    has(
        &report["deploy"],
        &["action", "elapsed_s", "status", "additional_args", "dtype"],
        "deploy",
    );
    has(&report["throughput"], &["samples", "summary"], "throughput");
    has(
        &report["throughput"]["summary"],
        &[
            "n_backends",
            "n_samples",
            "avg_sum_nonces_per_second",
            "avg_sum_nonces_per_min",
            "min_sum_nonces_per_second",
            "max_sum_nonces_per_second",
            "final_per_backend_total_processed",
        ],
        "summary",
    );
    assert_eq!(
        report["throughput"]["summary"]["n_samples"], 6,
        "60 s every 10 s"
    );
    has(
        &report["validation"],
        &["request", "response", "passed", "has_mismatches"],
        "validation",
    );
    assert_eq!(report["validation"]["request"]["n_total"], 32);
    let txt = std::fs::read_to_string(dir.path().join("validate_report.txt")).unwrap();
    let lines: Vec<&str> = txt.lines().collect();
    assert_eq!(lines[0], "=".repeat(70));
    assert_eq!(lines[1], "MLNode PoC validation report");
    assert_eq!(lines[2], "=".repeat(70));
    assert_eq!(lines[3], "verdict:      PASS");
    for p in [
        "[download] ",
        "[deploy] ",
        "[throughput] backends=1  avg sum rate = ",
        "[validate] n_total=32  n_mismatch=0  p_value=1.0  fraud_detected=false  -> PASS",
    ] {
        assert!(txt.contains(p), "txt lacks {p:?}:\n{txt}");
    }
    assert_eq!(*lines.last().unwrap(), "=".repeat(70));
}

#[tokio::test]
async fn reference_errors_exit_1_and_still_write_reports() {
    // Missing: message names the model, the path, the sorted list and the bake command.
    let (out, text, dir) = validate("sim:honest", "Nobody/None-7B", &[]).await;
    assert_eq!(out.exit_code, 1);
    let e = out.error.clone().unwrap();
    assert!(
        e.contains("no golden reference for model 'Nobody/None-7B'"),
        "{e}"
    );
    assert!(e.contains("nobody-none-7b.json"));
    assert!(
        e.contains("minimaxai-minimax-m2.7.json, qwen-qwen3-32b-fp8.json"),
        "{e}"
    );
    assert!(e.contains("mlnode-make-artifact --mlnode-url <trusted_mlnode_url> --model 'Nobody/None-7B' --num-nonces 32 --out "), "{e}");
    assert!(text.contains("ERROR: no golden reference"));
    assert!(dir.path().join("validate_report.json").exists());
    assert_eq!(
        read_json(&dir.path().join("validate_report.json"))["reference"],
        Value::Null
    );

    // Model mismatch: both ids.
    let qwen_path = artifacts().join("qwen-qwen3-32b-fp8.json");
    let (out, _, _d) = validate(
        "sim:honest",
        MINIMAX,
        &["--reference", qwen_path.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.exit_code, 1);
    let e = out.error.unwrap();
    assert!(
        e.contains("'Qwen/Qwen3-32B-FP8'") && e.contains("'MiniMaxAI/MiniMax-M2.7'"),
        "{e}"
    );

    // Invalid: the nonce and the reason, before any network call (the URL is unreachable).
    let tmp = tempfile::tempdir().unwrap();
    let mut v: Value = read_json(&qwen_path);
    v["artifacts"][7]["vector_b64"] = Value::from("AAAA");
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let (out, _, _d) = validate(
        "http://127.0.0.1:9",
        QWEN,
        &["--artifact", bad.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.exit_code, 1);
    let e = out.error.unwrap();
    assert!(e.contains("bad vector at nonce 7"), "{e}");
    v["artifacts"][7] = v["artifacts"][6].clone();
    std::fs::write(&bad, v.to_string()).unwrap();
    let (out, _, _d) = validate(
        "http://127.0.0.1:9",
        QWEN,
        &["--artifact", bad.to_str().unwrap()],
    )
    .await;
    assert!(out.error.unwrap().contains("duplicate nonce 6"));
}

#[tokio::test]
async fn cli_overrides_skips_and_unreachable_node() {
    // CLI stat test wins with provenance; skip everything but validation on a deployed node.
    let h = spawn_sim(NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..NodeConfig::default()
    })
    .await;
    let (out, text, _d) = validate(
        &h.url(),
        QWEN,
        &[
            "--skip-download",
            "--skip-deploy",
            "--skip-throughput",
            "--p-mismatch",
            "0.05",
        ],
    )
    .await;
    assert_eq!(out.exit_code, 0, "{text}");
    assert!(text.contains("[1/4] download: skipped (--skip-download)"));
    assert!(text.contains("[3/4] throughput: skipped (--skip-throughput)"));
    assert_eq!(out.report["stat_test"]["source"]["p_mismatch"], "cli");
    assert_eq!(out.report["download"], Value::Null);
    assert_eq!(out.report["throughput"], Value::Null);
    // --skip-validate → "validation skipped", exit 0.
    let (out, _, _d) = validate(
        &h.url(),
        QWEN,
        &[
            "--skip-download",
            "--skip-deploy",
            "--skip-throughput",
            "--skip-validate",
        ],
    )
    .await;
    assert_eq!(
        (out.exit_code, out.verdict.as_str()),
        (0, "validation skipped")
    );
    // --skip-deploy against a node with nothing running is an error.
    let h2 = spawn_sim(NodeConfig::default()).await;
    let (out, _, _d) = validate(&h2.url(), QWEN, &["--skip-download", "--skip-deploy"]).await;
    assert_eq!(out.exit_code, 1);
    assert!(out.error.unwrap().contains("--skip-deploy"));
    // Nobody listening: exit 1 with the cause.
    let (out, _, dir) = validate("http://127.0.0.1:9", QWEN, &[]).await;
    assert_eq!(out.exit_code, 1);
    assert!(out.error.unwrap().contains("/api/v1/models/status"));
    assert!(dir.path().join("validate_report.txt").exists());
}

#[test]
fn json_and_junit_output() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_mlnode-validate"))
        .args([
            "--mlnode-url",
            "sim:fraud-forged",
            "--model",
            QWEN,
            "--json",
            "--time-scale",
            SCALE,
            "--junit",
        ])
        .arg(&junit)
        .arg("--exp-dir")
        .arg(dir.path().join("exp"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let summary: Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON object");
    assert_eq!(summary["verdict"], "FAIL (fraud_detected)");
    assert_eq!(summary["exit_code"], 2);
    assert_eq!(summary["phases"]["download"], "passed");
    assert_eq!(summary["validation"]["fraud_detected"], true);
    assert!(String::from_utf8_lossy(&out.stderr).contains("verdict:      FAIL (fraud_detected)"));
    let xml = std::fs::read_to_string(&junit).unwrap();
    for name in ["download", "deploy", "throughput", "validate", "verdict"] {
        assert!(xml.contains(&format!("name=\"{name}\"")), "{xml}");
    }
    assert!(xml.contains("<failure"), "fraud fails the verdict case");
    // Skipped phases are marked skipped.
    let out = Command::new(env!("CARGO_BIN_EXE_mlnode-validate"))
        .args([
            "--mlnode-url",
            "sim:honest",
            "--model",
            QWEN,
            "--skip-throughput",
            "--time-scale",
            SCALE,
            "--junit",
        ])
        .arg(&junit)
        .arg("--exp-dir")
        .arg(dir.path().join("exp2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&junit)
        .unwrap()
        .contains("<skipped"));
}

#[tokio::test]
async fn cross_check_catches_a_lying_node() {
    let (out, text, _d) = validate("sim:lying-node", QWEN, &["--cross-check"]).await;
    assert_eq!(out.exit_code, 2, "{text}");
    assert!(
        text.contains("node self-verdict disagrees with local recomputation"),
        "{text}"
    );
    assert_eq!(out.report["cross_check"]["disagree"], true);
    assert_eq!(out.report["cross_check"]["node"]["fraud_detected"], false);
    // On an honest node both agree.
    let (out, _, _d) = validate("sim:honest", QWEN, &["--cross-check", "--skip-throughput"]).await;
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.report["cross_check"]["disagree"], false);
    assert_eq!(out.report["cross_check"]["local"]["n_mismatch"], 0);
}

#[tokio::test]
async fn ctrl_c_stops_generation_and_writes_partial_report() {
    let h = spawn_sim(NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..NodeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (console, _buf) = Console::buffer();
    // A warm-up of 10^6 simulated seconds: the run is inside the throughput phase when cancelled.
    let a = args(
        &h.url(),
        QWEN,
        dir.path(),
        &["--skip-download", "--warmup-seconds", "1000000"],
    );
    let out = run(a, console, tokio::time::sleep(Duration::from_millis(300))).await;
    assert_eq!(out.exit_code, 130);
    assert!(out.error.unwrap().contains("interrupted"));
    let rep = read_json(&dir.path().join("validate_report.json"));
    assert_eq!(rep["deploy"]["action"], "already_running");
    // Generation was stopped.
    let st: Value = reqwest::get(format!("{}/api/v1/inference/pow/status", h.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "IDLE");
}

#[tokio::test]
async fn make_artifact_output_validates_pass_against_the_same_node() {
    let h = spawn_sim(NodeConfig {
        deployed_model: Some("Qwen/Qwen3-0.6B".into()),
        ..NodeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("refs").join("qwen-qwen3-0.6b.json");
    let url = h.url();
    let o = out_path.clone();
    let res = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mlnode-make-artifact"))
            .args([
                "--mlnode-url",
                &url,
                "--model",
                "Qwen/Qwen3-0.6B",
                "--num-nonces",
                "16",
                "--seq-len",
                "256",
                "--additional-args",
                r#"["--max-model-len","4096"]"#,
                "--out",
            ])
            .arg(&o)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.ends_with("}\n"));
    let v: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "model",
            "seq_len",
            "k_dim",
            "block_hash",
            "block_height",
            "public_key",
            "node_id",
            "node_count",
            "dist_threshold",
            "collection_batch_size",
            "additional_args",
            "source",
            "generated_at",
            "encoding",
            "artifacts"
        ]
    );
    assert_eq!(v["collection_batch_size"], Value::Null);
    assert_eq!(v["artifacts"].as_array().unwrap().len(), 16);
    assert_eq!(
        v["encoding"],
        serde_json::json!({"dtype": "f16", "k_dim": 12, "endian": "le"})
    );
    // Validate it against the same node: PASS.
    let (out, text, _d) = validate(
        &h.url(),
        "Qwen/Qwen3-0.6B",
        &[
            "--reference",
            out_path.to_str().unwrap(),
            "--skip-throughput",
        ],
    )
    .await;
    assert_eq!(out.exit_code, 0, "{text}");
    assert_eq!(out.verdict, "PASS");
    assert_eq!(
        out.report["deploy_config"]["additional_args"],
        serde_json::json!(["--max-model-len", "4096"])
    );

    // Errors: malformed --additional-args; a node that does not serve anything.
    let url = h.url();
    let o = dir.path().join("x.json");
    let res = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mlnode-make-artifact"))
            .args([
                "--mlnode-url",
                &url,
                "--model",
                "m",
                "--additional-args",
                "[1,2]",
                "--out",
            ])
            .arg(&o)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr)
        .contains("--additional-args must be a JSON list of strings"));
    let h2 = spawn_sim(NodeConfig::default()).await;
    let url = h2.url();
    let o = dir.path().join("y.json");
    let res = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mlnode-make-artifact"))
            .args(["--mlnode-url", &url, "--model", QWEN, "--out"])
            .arg(&o)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("vLLM is not running"));
}
