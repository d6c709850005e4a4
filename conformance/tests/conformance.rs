//! The conformance suite: the verdict snapshot matrix over every scenario, CLI
//! transcripts of the real binaries, the contract checker against good and bad nodes,
//! and property tests that span crates.
//!
//! Snapshots live in `tests/snapshots/` and are reviewed like code: a changed verdict
//! fails CI. Time-dependent values (timestamps, ports, paths, elapsed times, rates) are
//! filtered or redacted; the assertions themselves are never loosened.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use mlnode_validator::console::Console;
use mlnode_validator::ValidateArgs;
use serde_json::{json, Value};

const SCALE: &str = "2000";

/// The tests that run many accelerated-clock runs take turns: at 1000x, a millisecond of
/// CPU contention is a simulated second, enough to move a drill's crash across a phase.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The turn of a test that does not run on a runtime.
fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    HEAVY.blocking_lock()
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../artifacts")
        .canonicalize()
        .unwrap()
}

fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Filters and redactions for everything time-, port- or path-dependent.
fn settings(tmp: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(&escape(&tmp.display().to_string()), "[TMP]");
    s.add_filter(&escape(&artifacts().display().to_string()), "[ARTIFACTS]");
    s.add_filter(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:[PORT]");
    s.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+", "[TIMESTAMP]");
    s.add_filter(r"elapsed=[0-9.]+s", "elapsed=[ELAPSED]s");
    s.add_filter(r"server elapsed [0-9.]+s", "server elapsed [ELAPSED]s");
    s.add_filter(
        r#"\\?"elapsed_seconds\\?":[0-9.]+"#,
        "\"elapsed_seconds\":[ELAPSED]",
    );
    s.add_filter(
        r"avg sum rate = [0-9.]+ nonces/s \([0-9.]+ nonces/min\)(  min/max = [0-9.]+/[0-9.]+)?",
        "avg sum rate = [RATE]",
    );
    s.add_filter(
        r": [0-9.]+ nonces/s  total_processed=\d+",
        ": [RATE] nonces/s  total_processed=[N]",
    );
    s.add_filter(r"(?m)^  \.\.\. .*\n", "");
    // Progress lines: how many land in a window depends on scheduling.
    s.add_filter(r"(?m)^  \[\s*\d+s\] .*\n", "");
    s.add_filter(r"\(elapsed [0-9.]+s", "(elapsed [E]s");
    s.add_filter(r#"\\?"start_time\\?":[0-9.]+"#, "\"start_time\":[T]");
    s.add_filter(r"-> (downloaded|deployed) in [0-9.]+s", "-> $1 in [E]s");
    s.add_filter(
        r"per-backend nonces/s \(last sample\): \[[0-9., ]+\]",
        "per-backend nonces/s (last sample): [RATES]",
    );
    s.add_filter(
        r"mines [0-9.]+ nonces/s, below 50% of the median [0-9.]+",
        "mines [RATE] nonces/s, below 50% of the median [RATE]",
    );
    for sel in [
        ".timestamp",
        ".experiment_dir",
        ".reference.path",
        ".args.exp_dir",
        ".args.artifacts_dir",
        ".download.elapsed_s",
        ".deploy.elapsed_s",
        ".deploy.status.elapsed_seconds",
        ".throughput.samples",
        ".throughput.summary.avg_sum_nonces_per_second",
        ".throughput.summary.avg_sum_nonces_per_min",
        ".throughput.summary.min_sum_nonces_per_second",
        ".throughput.summary.max_sum_nonces_per_second",
        ".throughput.summary.final_per_backend_total_processed.*",
        ".validation.response.request_id",
        ".finished_at",
        ".phases[].duration_s",
        ".phases[].wall_s",
        ".partial.*.elapsed_s",
        ".partial.deploy.last_status.elapsed_seconds",
        ".partial.download.last_status.progress",
        ".partial.throughput.samples",
        ".tool.version",
    ] {
        s.add_redaction(sel, "[redacted]");
    }
    s
}

/// The matrix — the one place every shipped scenario runs through the validator: the exit
/// code, verdict and error the scenario declares, reports on every path, replica flags,
/// and a snapshot of the text and JSON reports. Pass, PASS-with-mismatches, fraud and
/// every hard failure each appear.
#[tokio::test]
async fn verdict_matrix() {
    let _turn = HEAVY.lock().await;
    let t0 = Instant::now();
    let mut verdicts = std::collections::BTreeSet::new();
    for scenario in mlnode_sim::fixtures::all_scenarios().unwrap() {
        let e = scenario.expect.clone().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("exp");
        let url = format!("sim:{}", scenario.name);
        let art = artifacts();
        let mut argv: Vec<&str> = vec![
            "mlnode-validate",
            "--mlnode-url",
            &url,
            "--model",
            &e.model,
            "--time-scale",
            SCALE,
            "--download-timeout",
            "600",
            "--deploy-timeout",
            "600",
            "--artifacts-dir",
            art.to_str().unwrap(),
            "--exp-dir",
            exp.to_str().unwrap(),
        ];
        argv.extend(e.args.iter().map(String::as_str));
        let args = ValidateArgs::try_parse_from(argv).unwrap();
        let (console, buf) = Console::buffer();
        let out = mlnode_validator::run(args, console, std::future::pending()).await;
        let text = buf.lock().unwrap().clone();
        let name = &scenario.name;
        assert_eq!(
            out.exit_code, e.exit_code,
            "{name}: {:?}\n{text}",
            out.error
        );
        assert_eq!(out.verdict.headline(), e.verdict, "{name}");
        verdicts.insert(out.verdict.headline().to_string());
        if let Some(want) = &e.error_contains {
            let err = out.error.clone().unwrap_or_default();
            assert!(
                err.contains(want.as_str()),
                "{name}: error {err:?} lacks {want:?}"
            );
        }
        assert!(
            out.reports.is_some(),
            "{name}: reports written on every path"
        );
        assert!(
            text.ends_with(&format!("verdict: {}\n", e.verdict)),
            "{name}: {text}"
        );
        if e.exit_code == 1 {
            assert!(text.contains("ERROR: "), "{name}");
        }
        let txt = std::fs::read_to_string(exp.join("validate_report.txt")).unwrap();
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(exp.join("validate_report.json")).unwrap(),
        )
        .unwrap();
        // Replica findings land in the report.
        let flags = &report["throughput"]["flags"];
        match name.as_str() {
            "slow-replica" => assert_eq!(flags["slow"], json!([5003]), "{text}"),
            "stalled-replica" => assert_eq!(flags["stalled"], json!([5002]), "{text}"),
            "partial-init" => assert_eq!(flags["init_failed"], json!([5002]), "{text}"),
            "honest-4-replicas" => {
                assert_eq!(report["throughput"]["summary"]["n_backends"], 4);
                let rate = report["throughput"]["summary"]["avg_sum_nonces_per_min"]
                    .as_f64()
                    .unwrap();
                assert!(
                    (4992.0 * 0.98..=4992.0 * 1.02).contains(&rate),
                    "4 × 1248/min: {rate}"
                );
            }
            _ => {}
        }
        settings(tmp.path()).bind(|| {
            insta::assert_snapshot!(
                format!("{name}__txt"),
                format!("exit_code: {}\n{txt}", out.exit_code)
            );
            insta::assert_json_snapshot!(format!("{name}__report"), report);
        });
    }
    for v in [
        "PASS",
        "PASS (with mismatches within stat-test tolerance)",
        "FAIL (fraud_detected)",
        "ERROR",
    ] {
        assert!(verdicts.contains(v), "the matrix lacks a {v} case");
    }
    eprintln!(
        "conformance: verdict matrix over {} scenarios took {:?}",
        mlnode_sim::fixtures::SCENARIOS.len(),
        t0.elapsed()
    );
}

/// A binary of another workspace crate: next to this test's own `deps/` directory, built
/// on demand when only this crate's tests were compiled.
fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let path = dir.join(name);
    if !path.exists() {
        let package = match name {
            "mlnode-sim" => "mlnode-sim",
            "mlnode-conformance" => "mlnode-conformance",
            _ => "mlnode-validator",
        };
        let status = Command::new(env!("CARGO"))
            .args(["build", "--locked", "-p", package, "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build {name}");
    }
    assert!(path.exists(), "{} not found", path.display());
    path
}

/// One run of each verdict (and of the usage error) through the real binary, without a
/// terminal: the whole CLI transcript — exit code, stdout, stderr — filtered.
#[test]
fn binary_transcripts() {
    let _turn = heavy();
    const QWEN: &str = "Qwen/Qwen3-32B-FP8";
    for (name, scenario, model, extra) in [
        ("honest", "honest", QWEN, &[][..]),
        (
            "pass-with-mismatches",
            "tolerated-mismatches",
            QWEN,
            &[][..],
        ),
        (
            "fraud-int4",
            "fraud-int4",
            "MiniMaxAI/MiniMax-M2.7",
            &[][..],
        ),
        ("deploy-oom", "deploy-oom", QWEN, &[][..]),
        ("skipped", "honest", QWEN, &["--skip-validate"][..]),
        ("disagree", "lying-node", QWEN, &["--cross-check"][..]),
        (
            "strict-slow-replica",
            "slow-replica",
            QWEN,
            &["--strict"][..],
        ),
        ("usage-error", "fraud_int4", QWEN, &[][..]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(workspace_bin("mlnode-validate"))
            .args([
                "--mlnode-url",
                &format!("sim:{scenario}"),
                "--model",
                model,
                "--time-scale",
                SCALE,
                "--artifacts-dir",
                artifacts().to_str().unwrap(),
                "--exp-dir",
                tmp.path().join("exp").to_str().unwrap(),
            ])
            .args(extra)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let scenario = name;
        let transcript = format!(
            "exit_code: {}\n--- stdout\n{}--- stderr\n{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        settings(tmp.path())
            .bind(|| insta::assert_snapshot!(format!("cli_{scenario}"), transcript));
    }
}

/// `mlnode-conformance` passes on the honest simulator and fails with a named check on a
/// forging node and on a lying node.
#[test]
fn contract_checker_on_good_and_bad_nodes() {
    let _turn = heavy();
    for (scenario, exit, failing) in [
        ("honest", 0, vec![]),
        ("honest-4-replicas", 0, vec![]),
        ("fraud-forged", 1, vec!["reference"]),
        ("lying-node", 1, vec!["negative-control", "stat-test"]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mlnode-conformance"))
            .args([
                "--mlnode-url",
                &format!("sim:{scenario}"),
                "--allow-disruptive",
                "--json",
                "--time-scale",
                SCALE,
                "--artifacts-dir",
                artifacts().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{scenario}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let failed: Vec<&str> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(failed, failing, "{scenario}");
        let skipped = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "skip")
            .count();
        assert_eq!(skipped, 0, "{scenario}: every check ran");
    }
    // Unreachable node: exit 2. Disruptive checks are skipped without the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_mlnode-conformance"))
        .args(["--mlnode-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_mlnode-conformance"))
        .args([
            "--mlnode-url",
            "sim:honest",
            "--time-scale",
            SCALE,
            "--artifacts-dir",
            artifacts().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("SKIP  partition"), "{table}");
    assert!(
        table.contains("checks: 28 pass / 0 fail / 1 skip"),
        "{table}"
    );
}

/// The checker reaches a node the way the network node does: a version segment in the
/// URL, a gateway's bearer token, mTLS with a pinned client certificate — and every
/// check still runs and passes; without the token the node is unreachable (exit 2).
#[tokio::test(flavor = "multi_thread")]
async fn contract_checker_behind_prefix_token_and_mtls() {
    let _turn = HEAVY.lock().await;
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = mlnode_sim::test_pki::generate(pki_dir.path()).unwrap();
    let h = mlnode_sim::SimServer::builder()
        .time_scale(SCALE.parse().unwrap())
        .deployed_model("Qwen/Qwen3-32B-FP8")
        .config({
            let mut c = mlnode_sim::fixtures::load_scenario("honest").unwrap().node;
            c.encrypted_identity = true;
            c
        })
        .references(artifacts())
        .auth_token("tok")
        .tls(&pki.server(true))
        .unwrap()
        .start()
        .await
        .unwrap();
    let url = format!("{}/v3.0.8", h.uri());
    let run = |extra: Vec<String>| {
        let url = url.clone();
        let pki = pki.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "--mlnode-url".to_owned(),
                url,
                "--allow-disruptive".into(),
                "--json".into(),
                "--time-scale".into(),
                SCALE.into(),
                "--artifacts-dir".into(),
                artifacts().display().to_string(),
                "--ca-cert".into(),
                pki.ca.display().to_string(),
                "--client-cert".into(),
                pki.client_cert.display().to_string(),
                "--client-key".into(),
                pki.client_key.display().to_string(),
            ];
            args.extend(extra);
            Command::new(env!("CARGO_BIN_EXE_mlnode-conformance"))
                .args(args)
                .env_remove("MLNODE_AUTH_TOKEN")
                .output()
                .unwrap()
        })
    };
    let out = run(vec!["--auth-token".into(), "tok".into()])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["status"] == "pass"), "{stdout}");
    assert!(checks
        .iter()
        .any(|c| c["name"] == "network/encrypted-identity"
            && c["evidence"].as_str().unwrap_or("").starts_with("200")));
    assert!(
        h.journal()
            .iter()
            .all(|e| e.version.as_deref() == Some("v3.0.8")),
        "every call went through the version segment"
    );
    let out = run(vec![]).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "no token: 401 on /state");
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

mod properties {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use mlnode_protocol::vectors::{honest_unit, honest_vector, perturb, to_f16, VectorKey};
    use mlnode_protocol::wire::Artifact;
    use mlnode_sim::config::NodeConfig;
    use mlnode_sim::deviation::MismatchRule;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use tower::ServiceExt;

    const MODEL: &str = "Qwen/Qwen3-32B-FP8";

    fn key(nonce: i64) -> VectorKey<'static> {
        VectorKey {
            model: MODEL,
            seq_len: 64,
            k_dim: 12,
            block_hash: "PROP_BLOCK",
            public_key: "prop_key",
            nonce,
            stronger_rng: false,
        }
    }

    /// A deployed node whose `/generate` takes one simulated second whatever its size, so
    /// the faithful 60 s proxy timeout never interferes with these properties.
    fn node(mut cfg: NodeConfig) -> axum::Router {
        cfg.faults.generate_delay_seconds = Some(1.0);
        let cfg = NodeConfig {
            time_scale: 1000.0,
            deployed_model: Some(MODEL.into()),
            ..cfg
        };
        mlnode_sim::app(mlnode_sim::build_node(cfg, None).unwrap())
    }

    fn call(app: &axum::Router, method: &str, path: &str, body: Value) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::from(body.to_string()))
                .unwrap();
            let resp = tokio::time::timeout(Duration::from_secs(20), app.clone().oneshot(req))
                .await
                .unwrap()
                .unwrap();
            let b = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            serde_json::from_slice(&b).unwrap()
        })
    }

    fn validation(nonces: &[i64], artifacts: &[Artifact], st: Value) -> Value {
        json!({"block_hash": "PROP_BLOCK", "block_height": 1, "public_key": "prop_key", "node_id": 0, "node_count": 1,
               "nonces": nonces, "params": {"model": MODEL, "seq_len": 64}, "wait": true, "batch_size": 32,
               "validation": {"artifacts": artifacts}, "stat_test": st})
    }

    fn honest_artifacts(n: i64) -> Vec<Artifact> {
        (0..n)
            .map(|i| Artifact {
                nonce: i,
                vector_b64: honest_vector(&key(i)).encode(),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// The server's verdict equals protocol's for any counts and thresholds.
        #[test]
        fn server_verdict_equals_protocol(n_total in 1i64..2000, frac in 0.0f64..1.0, p in 0.0f64..0.5, alpha in 0.0f64..0.2) {
            let n_mismatch = ((n_total as f64) * frac * 0.2).round() as i64;
            let mut arts = honest_artifacts(n_total);
            for a in arts.iter_mut().take(n_mismatch as usize) {
                let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(a.nonce as u64);
                a.vector_b64 = to_f16(&perturb(&honest_unit(&key(a.nonce)), 1.0, &mut rng)).encode();
            }
            let nonces: Vec<i64> = (0..n_total).collect();
            let app = node(NodeConfig::default());
            let v = call(&app, "POST", "/api/v1/inference/pow/generate",
                validation(&nonces, &arts, json!({"dist_threshold": 0.5, "p_mismatch": p, "fraud_threshold": alpha})));
            let expected = mlnode_protocol::fraud_test(n_mismatch as u64, n_total as u64, p, alpha).unwrap();
            prop_assert_eq!(v["n_mismatch"].as_i64(), Some(n_mismatch), "{}", v);
            prop_assert_eq!(v["n_total"].as_i64(), Some(n_total));
            prop_assert_eq!(v["p_value"].as_f64(), Some(expected.p_value));
            prop_assert_eq!(v["fraud_detected"].as_bool(), Some(expected.fraud_detected));
        }

        /// Injected mismatches: the node's n_mismatch is exactly the count of injected
        /// nonces whose distance is past the gate (distances kept 0.01 away from it).
        #[test]
        fn injected_mismatches_are_counted(gate in 0.05f64..1.0, picks in proptest::collection::btree_map(0i64..64, 0.0f64..2.0, 0..20), seed in any::<u64>()) {
            let picks: Vec<(i64, f64)> = picks.into_iter().filter(|(_, d)| (d - gate).abs() > 0.01).collect();
            let mut cfg = NodeConfig { seed, ..NodeConfig::default() };
            for (n, d) in &picks {
                cfg.faults.mismatch.push(MismatchRule::Explicit { nonces: vec![*n], distance: *d });
            }
            let app = node(cfg);
            let nonces: Vec<i64> = (0..64).collect();
            let v = call(&app, "POST", "/api/v1/inference/pow/generate",
                validation(&nonces, &honest_artifacts(64), json!({"dist_threshold": gate})));
            let expected: std::collections::BTreeSet<i64> = picks.iter().filter(|(_, d)| *d > gate).map(|(n, _)| *n).collect();
            let got: std::collections::BTreeSet<i64> = serde_json::from_value(v["mismatch_nonces"].clone()).unwrap();
            prop_assert_eq!(got, expected);
        }

        /// Vectors served over HTTP round-trip through the codec bit for bit.
        #[test]
        fn served_vectors_round_trip(nonces in proptest::collection::vec(-1000i64..1_000_000, 1..40)) {
            let app = node(NodeConfig::default());
            let v = call(&app, "POST", "/api/v1/inference/pow/generate",
                json!({"block_hash": "PROP_BLOCK", "block_height": 1, "public_key": "prop_key", "node_id": 0, "node_count": 1,
                       "nonces": nonces, "params": {"model": MODEL, "seq_len": 64}, "wait": true}));
            let arts = v["artifacts"].as_array().unwrap_or_else(|| panic!("{v}"));
            for a in arts {
                let b64 = a["vector_b64"].as_str().unwrap();
                let vec = mlnode_protocol::Vector::decode(b64, 12).unwrap();
                prop_assert_eq!(vec.encode(), b64);
                prop_assert_eq!(vec, honest_vector(&key(a["nonce"].as_i64().unwrap())));
            }
        }

        /// The fan-out's groups, read back from /pow/status, partition the node's nonces:
        /// disjoint, and their union is dense.
        #[test]
        fn fanout_partition_is_disjoint_and_dense(node_count in 1i64..6, node_pick in 0i64..6, replicas in 1u32..5) {
            let node_id = node_pick % node_count;
            let app = node(NodeConfig { replicas: Some(replicas), ..NodeConfig::default() });
            let init = call(&app, "POST", "/api/v1/inference/pow/init/generate",
                json!({"block_hash": "B", "block_height": 1, "public_key": "K", "node_id": node_id, "node_count": node_count,
                       "params": {"model": MODEL, "seq_len": 64}}));
            prop_assert_eq!(init["n_groups"].as_u64(), Some(u64::from(replicas)));
            let st = call(&app, "GET", "/api/v1/inference/pow/status", Value::Null);
            let mut all = std::collections::BTreeSet::new();
            let xs = 25u64;
            for b in st["backends"].as_array().unwrap() {
                let c = &b["config"];
                let g = mlnode_protocol::partition::NonceGroup::new(
                    c["node_id"].as_i64().unwrap(), c["node_count"].as_i64().unwrap(),
                    c["group_id"].as_u64().unwrap(), c["n_groups"].as_u64().unwrap()).unwrap();
                for n in g.nonces(0, xs) {
                    prop_assert!(all.insert(n), "nonce {} twice", n);
                }
            }
            let expected: std::collections::BTreeSet<u64> = (0..xs * u64::from(replicas))
                .map(|j| node_id as u64 + j * node_count as u64).collect();
            prop_assert_eq!(all, expected);
        }
    }
}

/// Every README shell block marked `<!-- runnable -->` runs as written (with `bash -e`,
/// in a scratch directory holding the repository's `artifacts/` and `fixtures/`),
/// `cargo run [--release] --bin X --` and `target/debug/X` standing for the built
/// binaries, and port 8080 for a free port the OS picked.
#[test]
fn readme_commands_work_as_written() {
    let _turn = heavy();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "<!-- runnable -->" {
            assert_eq!(
                lines.next().map(str::trim),
                Some("```sh"),
                "a runnable marker precedes a ```sh block"
            );
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(body.join("\n"));
        }
    }
    assert!(
        blocks.len() >= 6,
        "the README marks its runnable blocks ({} found)",
        blocks.len()
    );
    // A scratch checkout: the repository's inputs, and `data/` (reports) kept out of it.
    let cwd = tempfile::tempdir().unwrap();
    for dir in ["artifacts", "fixtures"] {
        std::os::unix::fs::symlink(root.join(dir), cwd.path().join(dir)).unwrap();
    }
    for block in blocks {
        let mut script = block.clone();
        for bin in [
            "mlnode-validate",
            "mlnode-make-artifact",
            "mlnode-sim",
            "mlnode-conformance",
        ] {
            let path = workspace_bin(bin).display().to_string();
            for form in [
                format!("target/debug/{bin}"),
                format!("cargo run --release --bin {bin} --"),
                format!("cargo run --bin {bin} --"),
            ] {
                script = script.replace(&form, &path);
            }
        }
        // `cargo build --bins` is what the binaries above already are.
        script = script
            .replace("cargo build --bins", "true")
            .replace("8080", &port.to_string());
        let t0 = std::time::Instant::now();
        let out = Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", &script])
            .current_dir(cwd.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block failed ({:?}):\n{block}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "README block ok in {:?}: {}",
            t0.elapsed(),
            block.lines().next().unwrap_or("")
        );
    }
}
