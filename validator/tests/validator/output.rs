//! Output modes: `--json`, `--junit`, the headline and the exit code agree on every
//! verdict (a `--cross-check` disagreement included); `-q`; `--help`; usage errors.

use serde_json::Value;

use crate::util::*;

fn bin_args(scenario: &str, dir: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v = strings(&[
        "--mlnode-url",
        &format!("sim:{scenario}"),
        "--model",
        QWEN,
        "--time-scale",
        SCALE,
        "--artifacts-dir",
        artifacts().to_str().unwrap(),
        "--exp-dir",
        dir.join("exp").to_str().unwrap(),
    ]);
    v.extend(strings(extra));
    v
}

/// Headline, `--json`, JUnit and exit code are derived from one verdict.
#[tokio::test]
async fn json_junit_headline_and_exit_code_agree() {
    for (scenario, extra, code, headline) in [
        ("honest", vec![], 0, "PASS"),
        ("fraud-forged", vec![], 2, "FAIL (fraud_detected)"),
        ("deploy-oom", vec![], 1, "ERROR"),
        (
            "lying-node",
            vec!["--cross-check"],
            2,
            "FAIL (cross-check: the node's verdict disagrees with the local recomputation)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let junit = dir.path().join("junit.xml");
        let mut a = extra.clone();
        a.extend(["--json", "--junit", junit.to_str().unwrap()]);
        let out = run_bin("mlnode-validate", bin_args(scenario, dir.path(), &a)).await;
        assert_eq!(out.status.code(), Some(code), "{scenario}");
        let s: Value =
            serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON object");
        assert_eq!(s["verdict"], headline, "{scenario}");
        assert_eq!(s["exit_code"], code);
        assert_eq!(s["schema_version"], 1);
        assert_eq!(s["tool"]["name"], "mlnode-validate");
        assert_eq!(s["model"], QWEN);
        assert!(s["started_at"].is_string() && s["finished_at"].is_string());
        assert_eq!(s["phases"].as_array().unwrap().len(), 4);
        assert!(s["phases"][0]["duration_s"].is_number());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.ends_with(&format!("verdict: {headline}\n")),
            "{stderr}"
        );
        let xml = std::fs::read_to_string(&junit).unwrap();
        for name in ["download", "deploy", "throughput", "validate", "verdict"] {
            assert!(xml.contains(&format!("name=\"{name}\"")), "{xml}");
        }
        assert!(
            xml.contains("time=\""),
            "test cases carry their time: {xml}"
        );
        assert_eq!(xml.contains("<failure"), code != 0, "{scenario}: {xml}");
        if code != 0 {
            assert!(xml.contains(headline.split(" (").next().unwrap()), "{xml}");
        }
    }
}

#[tokio::test]
async fn a_failed_junit_write_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("no-such-dir").join("junit.xml");
    let out = run_bin(
        "mlnode-validate",
        bin_args("honest", dir.path(), &["--junit", bad.to_str().unwrap()]),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ERROR: cannot write JUnit file"));
}

#[tokio::test]
async fn quiet_prints_the_verdict_and_errors_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_bin("mlnode-validate", bin_args("honest", dir.path(), &["-q"])).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "verdict: PASS\n");
}

#[tokio::test]
async fn help_and_usage_errors() {
    let out = run_bin("mlnode-validate", strings(&["--help"])).await;
    let help = String::from_utf8_lossy(&out.stdout);
    for h in [
        "Inputs:",
        "Phases:",
        "PoC params:",
        "Stat test:",
        "Timing:",
        "Output:",
        "Exit codes:",
        "Examples:",
        "--skip-download",
        "[default: 7200]",
    ] {
        assert!(help.contains(h), "--help lacks {h}:\n{help}");
    }
    // A URL without a scheme is caught at parsing, with the fix.
    let out = run_bin(
        "mlnode-validate",
        strings(&["--mlnode-url", "localhost:8080", "--model", QWEN]),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "argparse-style usage error");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("did you mean http://localhost:8080"), "{e}");
    let out = run_bin(
        "mlnode-validate",
        strings(&["--mlnode-url", "sim:fraud_int4", "--model", QWEN]),
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean sim:fraud-int4"));
    let out = run_bin("mlnode-validate", strings(&["--list-scenarios"])).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sim:honest"));
    let out = run_bin("mlnode-validate", strings(&["--model", QWEN])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mlnode-url"));
}
