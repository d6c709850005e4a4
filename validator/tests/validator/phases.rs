//! Phase behaviour and the inputs before any network call: skips, CLI overrides with
//! provenance, reference problems and unusable report folders (exit 1, no report folder).

use mlnode_sim::config::NodeConfig;
use serde_json::Value;

use crate::util::*;

#[tokio::test]
async fn cli_overrides_and_skips() {
    let h = spawn_sim(deployed()).await;
    let (out, text, _d) = validate(
        &h.uri(),
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
    assert!(text.contains("[2/4] deploy: skipped (--skip-deploy)"));
    assert!(text.contains("[3/4] throughput: skipped (--skip-throughput)"));
    let rep = report_json(&out);
    assert_eq!(rep["stat_test"]["source"]["p_mismatch"], "cli");
    assert_eq!(rep["stat_test"]["values"]["p_mismatch"], 0.05);
    assert_eq!(rep["download"], Value::Null);
    assert_eq!(rep["deploy"], Value::Null);
    assert_eq!(rep["throughput"], Value::Null);
    // --skip-validate → "validation skipped", exit 0.
    let (out, _, _d) = validate(
        &h.uri(),
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
        (out.exit_code, out.verdict.headline()),
        (0, "validation skipped")
    );
    // --skip-deploy against a node with nothing running is an error.
    let h2 = spawn_sim(NodeConfig::default()).await;
    let (out, _, _d) = validate(&h2.uri(), QWEN, &["--skip-download", "--skip-deploy"]).await;
    assert_eq!(out.exit_code, 1);
    assert!(out.error.unwrap().contains("--skip-deploy"));
    // An already running vLLM: the deploy config was NOT applied, said in report and console.
    let (out, text, _d) = validate(&h.uri(), QWEN, &["--skip-download", "--skip-throughput"]).await;
    assert_eq!(out.exit_code, 0);
    let rep = report_json(&out);
    assert_eq!(rep["deploy"]["action"], "already_running");
    assert_eq!(rep["warnings"][0]["kind"], "deploy_config_not_applied");
    assert!(text.contains("NOT applied"), "{text}");
    let txt = std::fs::read_to_string(&out.reports.unwrap().txt).unwrap();
    assert!(txt.contains("[deploy] already_running (elapsed 0.0s)  (vLLM was already up; the deploy config above was NOT applied)"), "{txt}");
}

#[tokio::test]
async fn reference_problems_exit_1_before_any_network_call_and_make_no_folder() {
    let root = tempfile::tempdir().unwrap();
    let exp = root.path().join("never-made");
    let run = |model: &'static str, extra: Vec<String>| {
        let exp = exp.clone();
        async move {
            let mut a: Vec<&str> = extra.iter().map(String::as_str).collect();
            a.push("--exp-dir");
            let e = exp.display().to_string();
            a.push(&e);
            // Nobody listens on port 9: any network call would fail differently.
            validate("http://127.0.0.1:9", model, &a).await
        }
    };
    // Missing: message names the model, the path, the sorted list and the bake command.
    let (out, text, _d) = run("Nobody/None-7B", vec![]).await;
    assert_eq!(out.exit_code, 1);
    let e = out.error.clone().unwrap();
    assert!(
        e.contains("no golden reference for model 'Nobody/None-7B'"),
        "{e}"
    );
    assert!(e.contains("nobody-none-7b.json"));
    assert!(
        e.contains("minimaxai-minimax-m2.7.json") && e.contains("qwen-qwen3-32b-fp8.json"),
        "{e}"
    );
    assert!(e.contains("mlnode-make-artifact --mlnode-url <trusted_mlnode_url> --model 'Nobody/None-7B' --num-nonces 32 --out "), "{e}");
    assert!(text.contains("ERROR: no golden reference"));
    assert!(
        out.reports.is_none() && !exp.exists(),
        "no report folder for a usage error"
    );

    // Model mismatch: both ids.
    let qwen_path = artifacts().join("qwen-qwen3-32b-fp8.json");
    let (out, _, _d) = run(
        MINIMAX,
        strings(&["--reference", qwen_path.to_str().unwrap()]),
    )
    .await;
    assert_eq!(out.exit_code, 1);
    let e = out.error.unwrap();
    assert!(
        e.contains("'Qwen/Qwen3-32B-FP8'") && e.contains("'MiniMaxAI/MiniMax-M2.7'"),
        "{e}"
    );

    // Invalid: the nonce and the reason.
    let tmp = tempfile::tempdir().unwrap();
    let mut v: Value = read_json(&qwen_path);
    v["artifacts"][7]["vector_b64"] = Value::from("AAAA");
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let (out, _, _d) = run(QWEN, strings(&["--artifact", bad.to_str().unwrap()])).await;
    assert!(out.error.unwrap().contains("bad vector at nonce 7"));
    v["artifacts"][7] = v["artifacts"][6].clone();
    std::fs::write(&bad, v.to_string()).unwrap();
    let (out, _, _d) = run(QWEN, strings(&["--artifact", bad.to_str().unwrap()])).await;
    assert!(out.error.unwrap().contains("duplicate nonce 6"));

    // Not a regular file (a FIFO would block, /dev/zero grow forever), or too large.
    let (out, _, _d) = run(QWEN, strings(&["--reference", "/dev/zero"])).await;
    assert!(out.error.unwrap().contains("not a regular file"));
    let big = tmp.path().join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(300 << 20)
        .unwrap(); // sparse
    let (out, _, _d) = run(QWEN, strings(&["--reference", big.to_str().unwrap()])).await;
    assert!(out.error.unwrap().contains("MiB limit"));
    assert!(!exp.exists());
}

#[tokio::test]
async fn an_unusable_exp_dir_is_found_before_the_phases() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let h = spawn_sim(deployed()).await;
    let t0 = std::time::Instant::now();
    let (out, _, _d) = validate(
        &h.uri(),
        QWEN,
        &["--exp-dir", file.join("sub").to_str().unwrap()],
    )
    .await;
    assert_eq!(out.exit_code, 1);
    assert!(out.error.unwrap().contains("cannot write reports"));
    let journal = h.sim().journal.total();
    assert_eq!(journal, 0, "no request reached the node");
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_zero_warmup_still_flags_a_stalled_replica() {
    let (out, text, _d) = validate(
        "sim:stalled-replica",
        QWEN,
        &[
            "--warmup-seconds",
            "0",
            "--measure-seconds",
            "60",
            "--sample-interval",
            "10",
        ],
    )
    .await;
    assert_eq!(out.exit_code, 0, "{text}");
    let rep = report_json(&out);
    assert_eq!(
        rep["throughput"]["flags"]["stalled"],
        serde_json::json!([5002]),
        "{text}"
    );
    // --strict turns the warning into exit 1.
    let (out, _, _d) = validate("sim:slow-replica", QWEN, &["--strict"]).await;
    assert_eq!(out.exit_code, 1);
    assert!(out.error.unwrap().contains("--strict: 1 warning(s)"));
}

/// Run `validate` on a thread of its own, so that a run blocked inside a system call (as
/// on opening a FIFO) fails the test at the deadline instead of hanging it.
fn validate_within(
    secs: u64,
    url: String,
    model: &'static str,
    flags: Vec<String>,
) -> (mlnode_validator::Outcome, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (out, text, _d) = rt.block_on(validate(&url, model, &flags));
        let _ = tx.send((out, text));
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("the run finished in bounded time (nothing in the artifacts dir may block it)")
}

/// `--all-references` (and the did-you-mean hint) read every `*.json` of the artifacts dir
/// through the same guard as `--reference`: a FIFO there is skipped, not waited on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_references_skip_what_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        artifacts().join("qwen-qwen3-32b-fp8.json"),
        dir.path().join("qwen-qwen3-32b-fp8.json"),
    )
    .unwrap();
    let fifo = dir.path().join("zz-fifo.json");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let h = spawn_sim(deployed()).await;
    let arts = dir.path().display().to_string();
    let flags = strings(&[
        "--all-references",
        "--artifacts-dir",
        &arts,
        "--skip-download",
        "--skip-throughput",
    ]);
    let (url, a) = (h.uri(), flags.clone());
    let (out, text) = tokio::task::spawn_blocking(move || validate_within(20, url, QWEN, a))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{text}");
    let (url, a) = (h.uri(), strings(&["--artifacts-dir", &arts]));
    let (out, _) =
        tokio::task::spawn_blocking(move || validate_within(20, url, "Qwen/Qwen3-32B-FP9", a))
            .await
            .unwrap();
    assert!(out
        .error
        .unwrap()
        .contains("did you mean 'Qwen/Qwen3-32B-FP8'"));
}

/// Without `--time-scale`, the scale is learnt from the node's `x-sim-time-scale` header,
/// through the run's own client: the probe's connection is the one the phases reuse, so a
/// validate-only run (probe, `up/status`, the validation) opens exactly one. Counted by a
/// TCP relay in front of the node.
#[tokio::test]
async fn the_scale_is_learnt_from_the_node_over_the_runs_one_connection() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let h = spawn_sim(deployed()).await;
    let node_addr = h.uri().trim_start_matches("http://").to_owned();
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("http://{}", relay.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = relay.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let addr = node_addr.clone();
            tokio::spawn(async move {
                let mut node = tokio::net::TcpStream::connect(addr).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut node).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let args = unscaled_args(
        &relay_url,
        QWEN,
        dir.path(),
        &["--skip-download", "--skip-deploy", "--skip-throughput"],
    );
    let (out, text) = run_with(args, std::future::pending()).await;
    assert_eq!(out.exit_code, 0, "{text}");
    let rep = report_json(&out);
    assert_eq!(
        rep["clock"]["time_scale_source"], "node",
        "{}",
        rep["clock"]
    );
    assert_eq!(rep["clock"]["time_scale"], SCALE.parse::<f64>().unwrap());
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{text}");
}
