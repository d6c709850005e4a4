//! The newest skill's operator workflow: deploy config from the caller's node-config,
//! every real golden reference, several references per run, a whole fleet in one command.

use std::path::{Path, PathBuf};

use clap::Parser;
use mlnode_protocol::node_config::NodeConfig;
use mlnode_sim::config::NodeConfig as SimConfig;
use mlnode_validator::ValidateArgs;
use serde_json::{json, Value};

use crate::util::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Every real node-config file parses; placeholders are recognised as such.
#[test]
fn every_real_node_config_parses() {
    let mut n = 0;
    for e in std::fs::read_dir(fixtures().join("deploy-join")).unwrap() {
        let p = e.unwrap().path();
        let cfg = NodeConfig::parse(&std::fs::read_to_string(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let node = cfg.node(None).unwrap();
        assert_eq!(
            (node.poc_port, node.inference_port),
            (8080, 5000),
            "{}",
            p.display()
        );
        for (model, m) in &node.models {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(
                mlnode_protocol::node_config::NodeEntry::is_placeholder(model),
                name.contains("release-candidate") && !name.contains("B200"),
                "{name}: {model}"
            );
            assert!(!m.args.is_empty(), "{name}");
            assert_eq!(m.model_override.is_some(), name.contains("nvfp4"), "{name}");
        }
        n += 1;
    }
    assert_eq!(n, 26);
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

/// The deploy config comes from the node entry; the report and the text say so.
#[tokio::test]
async fn deploy_config_from_the_node_config_with_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--tensor-parallel-size",
        "2",
        "--max-model-len",
        "32768",
        "--enforce-eager",
    ];
    let cfg = write(
        tmp.path(),
        "node-config-qwen32b.json",
        &json!([{"id": "gpu-a", "host": "127.0.0.1", "inference_port": 5000, "poc_port": 8080,
                 "max_concurrent": 500, "models": {QWEN: {"args": args}}}]),
    );
    let (out, text, _d) = validate(
        "sim:honest",
        QWEN,
        &[
            "--node-config",
            cfg.to_str().unwrap(),
            "--skip-throughput",
            "--tp-size",
            "4",
        ],
    )
    .await;
    assert_eq!(out.exit_code, 0, "{text}");
    let rep = report_json(&out);
    let want = json!([
        "--max-model-len",
        "32768",
        "--enforce-eager",
        "--tensor-parallel-size",
        "4"
    ]);
    assert_eq!(
        rep["deploy_config"]["additional_args"], want,
        "node args, then --tp-size add-or-update"
    );
    assert_eq!(rep["deploy"]["additional_args"], want, "what was sent");
    let source = rep["deploy_config"]["source"].as_str().unwrap();
    assert!(
        source.starts_with("node-config ") && source.contains("node 'gpu-a'"),
        "{source}"
    );
    let txt = std::fs::read_to_string(&out.reports.unwrap().txt).unwrap();
    let line = txt
        .lines()
        .find(|l| l.starts_with("Deploy config ("))
        .unwrap();
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(&regex::escape(&tmp.path().display().to_string()), "[TMP]");
    s.bind(|| insta::assert_snapshot!("node_config_provenance", line));
}

#[tokio::test]
async fn node_config_errors_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let two = write(
        tmp.path(),
        "two.json",
        &json!([
            {"id": "a", "host": "h", "inference_port": 5000, "poc_port": 8080, "models": {QWEN: {"args": []}}},
            {"id": "b", "host": "h", "inference_port": 5001, "poc_port": 8081, "models": {"X/Y": {"args": []}}}
        ]),
    );
    for (extra, word) in [
        (vec![], "lists 2 nodes (a, b): choose one with --node-id"),
        (
            vec!["--node-id", "b"],
            "node 'b' does not serve 'Qwen/Qwen3-32B-FP8' (its models: X/Y)",
        ),
        (vec!["--node-id", "c"], "no node 'c'"),
    ] {
        let mut a = vec!["--node-config", two.to_str().unwrap()];
        a.extend(extra);
        let (out, _, _d) = validate("http://127.0.0.1:9", QWEN, &a).await;
        assert_eq!(out.exit_code, 1);
        let e = out.error.unwrap();
        assert!(e.contains(word), "{e}");
        assert!(
            out.reports.is_none(),
            "a usage error makes no report folder"
        );
    }
    let bad = write(
        tmp.path(),
        "bad.json",
        &json!([{"id": "a", "host": "h", "inference_port": "x", "poc_port": 1, "models": {}}]),
    );
    let (out, _, _d) = validate(
        "http://127.0.0.1:9",
        QWEN,
        &["--node-config", bad.to_str().unwrap()],
    )
    .await;
    assert!(out.error.unwrap().contains("[0].inference_port"));
}

/// `model_override`: the node is asked to download `hf_repo@hf_commit`.
#[tokio::test]
async fn model_override_is_what_the_node_downloads() {
    let cfg = fixtures().join("deploy-join/node-config-deepseekv4flash0731-B200-nvfp4.json");
    let h = spawn_sim(SimConfig::default()).await;
    // A reference for the model id (the vectors do not matter: the download must fail first).
    let tmp = tempfile::tempdir().unwrap();
    let mut r: Value = read_json(&artifacts().join("qwen-qwen3-32b-fp8.json"));
    r["model"] = json!("deepseek-ai/DeepSeek-V4-Flash-0731");
    let rp = write(tmp.path(), "ds.json", &r);
    let (out, text, _d) = validate(
        &h.uri(),
        "deepseek-ai/DeepSeek-V4-Flash-0731",
        &[
            "--node-config",
            cfg.to_str().unwrap(),
            "--reference",
            rp.to_str().unwrap(),
            "--download-timeout",
            "120",
        ],
    )
    .await;
    assert_eq!(out.exit_code, 1, "{text}");
    assert!(
        text.contains("MJPansa/DeepSeek-V4-Flash-0731-NVFP4"),
        "{text}"
    );
    let rep = report_json(&out);
    assert_eq!(
        rep["partial"]["download"]["last_status"]["model"],
        json!({"hf_repo": "MJPansa/DeepSeek-V4-Flash-0731-NVFP4", "hf_commit": "64d64cd89bc63a66aa46506da89d7821f7491c62"})
    );
    assert!(rep["deploy_config"]["source"]
        .as_str()
        .unwrap()
        .contains("model_override MJPansa/"));
}

/// Several references: phases 1–3 once, one validation and report folder each, exit the
/// worst (2 > 1 > 0).
#[tokio::test]
async fn several_references_exit_the_worst() {
    let tmp = tempfile::tempdir().unwrap();
    let good = artifacts().join("qwen-qwen3-32b-fp8.json");
    let base: Value = read_json(&good);
    // Fraud: 10 of 32 vectors swapped for other nonces' vectors.
    let mut forged = base.clone();
    for i in 0..10 {
        forged["artifacts"][i]["vector_b64"] = base["artifacts"][31 - i]["vector_b64"].clone();
    }
    let forged = write(tmp.path(), "forged.json", &forged);
    // Error: a round the node refuses (seq_len beyond its range: 422).
    let mut refused = base.clone();
    refused["seq_len"] = json!(4_000_000);
    let refused = write(tmp.path(), "refused.json", &refused);
    let h = spawn_sim(deployed()).await;
    for (refs, code) in [
        (vec![&good, &good], 0),
        (vec![&good, &forged], 2),
        (vec![&good, &refused], 1),
        (vec![&refused, &forged], 2),
    ] {
        let exp = tempfile::tempdir().unwrap();
        let mut a: Vec<String> = strings(&[
            "--skip-download",
            "--skip-throughput",
            "--exp-dir",
            exp.path().to_str().unwrap(),
        ]);
        for r in &refs {
            a.push("--reference".into());
            a.push(r.display().to_string());
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (out, text, _d) = validate(&h.uri(), QWEN, &a).await;
        assert_eq!(out.exit_code, code, "{refs:?}\n{text}");
        assert_eq!(out.references.len(), 2);
        let summary = read_json(&exp.path().join("summary.json"));
        assert_eq!(summary["exit_code"], code);
        assert_eq!(summary["references"].as_array().unwrap().len(), 2);
        let dirs = std::fs::read_dir(exp.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count();
        assert_eq!(
            dirs,
            if refs[0] == refs[1] { 1 } else { 2 },
            "one folder per reference"
        );
    }
    // --all-references: every shipped reference of the model (Qwen3-235B has two).
    let (out, text, _d) = validate(
        "sim:honest",
        "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
        &[
            "--all-references",
            "--skip-throughput",
            "--validation-timeout",
            "100000",
        ],
    )
    .await;
    assert_eq!(out.references.len(), 2, "{text}");
}

/// Each real golden reference validates PASS against a node that serves its vectors.
#[tokio::test]
async fn every_real_reference_validates_pass() {
    for e in std::fs::read_dir(artifacts()).unwrap() {
        let p = e.unwrap().path();
        let r: Value = read_json(&p);
        let model = r["model"].as_str().unwrap().to_owned();
        let mut cfg = SimConfig {
            deployed_model: Some(model.clone()),
            ..SimConfig::default()
        };
        if r["artifacts"].as_array().unwrap().len() > 1000 {
            // 2,000 vectors: the recording hardware validates them in about 30 s; the
            // simulated replica's mining rate would need 100 s, past the node's 60 s proxy
            // timeout (the realistic per-model profiles are the fleet issue's).
            cfg.faults.generate_delay_seconds = Some(30.0);
        }
        let h = spawn_sim(cfg).await;
        let (out, text, _d) = validate(
            &h.uri(),
            &model,
            &[
                "--reference",
                p.to_str().unwrap(),
                "--skip-download",
                "--skip-throughput",
            ],
        )
        .await;
        assert_eq!(out.exit_code, 0, "{}: {text}", p.display());
        h.shutdown().await;
    }
}

/// A 20-node fleet of mixed scenarios: honest, fraud, no backends, unreachable.
#[tokio::test]
async fn a_mixed_fleet_in_one_command() {
    let mut nodes = Vec::new();
    let mut handles = Vec::new();
    for i in 0..20 {
        let scenario = match i % 5 {
            0 | 1 => "honest",
            2 => "fraud-forged",
            3 => "no-backends",
            _ => "unreachable",
        };
        let port = if scenario == "unreachable" {
            // Bound and dropped: nobody listens there.
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            let mut cfg = mlnode_sim::fixtures::load_scenario(scenario).unwrap().node;
            cfg.deployed_model = Some(QWEN.into());
            let h = spawn_sim(cfg).await;
            let p = h.address().port();
            handles.push(h);
            p
        };
        nodes.push(
            json!({"id": format!("n{i:02}-{scenario}"), "host": "127.0.0.1", "inference_port": port,
            "poc_port": port, "max_concurrent": 500, "models": {QWEN: {"args": []}}}),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = write(tmp.path(), "inventory.json", &Value::Array(nodes));
    let exp = tmp.path().join("fleet");
    let junit = tmp.path().join("fleet.xml");
    let args = args(
        "",
        "",
        &exp,
        &[
            "--inventory",
            inv.to_str().unwrap(),
            "--jobs",
            "8",
            "--junit",
            junit.to_str().unwrap(),
            "--skip-download",
        ],
    );
    let (console, buf) = mlnode_validator::console::Console::buffer();
    let out = mlnode_validator::fleet::run(args, console, std::future::pending()).await;
    let text = buf.lock().unwrap().clone();
    assert_eq!(out.exit_code, 2, "fraud is the worst: {text}");
    let report = read_json(&exp.join("fleet_report.json"));
    let rows: Vec<String> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{} exit={} {}",
                n["node_id"].as_str().unwrap(),
                n["exit_code"],
                n["verdict"].as_str().unwrap()
            )
        })
        .collect();
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| {
        insta::assert_snapshot!(
            "fleet_summary",
            format!(
                "{}\n{}",
                serde_json::to_string_pretty(&report["summary"]).unwrap(),
                rows.join("\n")
            )
        );
    });
    for n in report["nodes"].as_array().unwrap() {
        let dir = n["experiment_dir"].as_str().unwrap();
        assert!(
            Path::new(dir).join("validate_report.json").exists(),
            "{dir}"
        );
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), 20);
    assert!(text.contains("fleet verdict: 8 of 20 pass"), "{text}");
    for h in handles {
        h.shutdown().await;
    }
}

/// A signal during a fleet run stops generation on every node that started it; every
/// node's partial report is written and the fleet exits 128 + signal.
#[tokio::test]
async fn a_signal_stops_every_node_of_a_fleet() {
    let mut nodes = Vec::new();
    let mut handles = Vec::new();
    for i in 0..3 {
        let h = spawn_sim(deployed()).await;
        nodes.push(
            json!({"id": format!("n{i}"), "host": "127.0.0.1", "inference_port": h.address().port(),
            "poc_port": h.address().port(), "models": {QWEN: {"args": []}}}),
        );
        handles.push(h);
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = write(tmp.path(), "inventory.json", &Value::Array(nodes));
    let exp = tmp.path().join("fleet");
    let a = args(
        "",
        "",
        &exp,
        &[
            "--inventory",
            inv.to_str().unwrap(),
            "--skip-download",
            "--warmup-seconds",
            "1e9",
        ],
    );
    let (console, _buf) = mlnode_validator::console::Console::buffer();
    let cancel = async {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        mlnode_validator::Signal::Sigterm
    };
    let out = mlnode_validator::fleet::run(a, console, cancel).await;
    assert_eq!(out.exit_code, 143);
    let report = read_json(&exp.join("fleet_report.json"));
    assert_eq!(report["summary"]["interrupted"], 3, "{report}");
    for h in &handles {
        let st: Value = reqwest::get(format!("{}/api/v1/inference/pow/status", h.uri()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(st["status"], "IDLE", "generation stopped on {}", h.uri());
    }
}

/// `--inventory` takes URLs too: each simulator's `GET /sim/v1/inventory` (served
/// without `--admin`), gathered from several processes, clashing ids renamed.
#[tokio::test]
async fn a_fleet_gathered_from_inventory_urls() {
    let a = spawn_sim(deployed()).await;
    let b = spawn_sim(deployed()).await;
    let inv: Value = reqwest::get(format!("{}/sim/v1/inventory", a.uri()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inv[0]["id"], "node1");
    assert_eq!(inv[0]["poc_port"], a.address().port());
    let tmp = tempfile::tempdir().unwrap();
    let args = ValidateArgs::try_parse_from([
        "mlnode-validate",
        "--inventory",
        &format!("{}/sim/v1/inventory", a.uri()),
        "--inventory",
        &format!("{}/sim/v1/inventory", b.uri()),
        "--time-scale",
        SCALE,
        "--skip-download",
        "--skip-deploy",
        "--artifacts-dir",
        artifacts().to_str().unwrap(),
        "--exp-dir",
        tmp.path().to_str().unwrap(),
        "--progress",
        "never",
    ])
    .unwrap();
    let (console, buf) = mlnode_validator::console::Console::buffer();
    let out = mlnode_validator::fleet::run(args, console, std::future::pending()).await;
    let text = buf.lock().unwrap().clone();
    assert_eq!(out.exit_code, 0, "{text}");
    let report = read_json(&tmp.path().join("fleet_report.json"));
    let ids: Vec<&str> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["node1", "node1@127.0.0.1"]);
    // A URL that is not an inventory: a clear error naming it.
    let args = ValidateArgs::try_parse_from([
        "mlnode-validate",
        "--inventory",
        &format!("{}/api/v1/state", a.uri()),
        "--exp-dir",
        tmp.path().to_str().unwrap(),
    ])
    .unwrap();
    let (console, buf) = mlnode_validator::console::Console::buffer();
    let out = mlnode_validator::fleet::run(args, console, std::future::pending()).await;
    assert_eq!(out.exit_code, 1);
    assert!(buf.lock().unwrap().contains("/api/v1/state"));
}
