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
    assert_eq!(
        out.status.code(),
        Some(1),
        "a usage error is 1, never fraud's 2"
    );
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
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mlnode-url"));
    for bad in [
        &[
            "--mlnode-url",
            "sim:honest",
            "--model",
            QWEN,
            "--threshold",
            "abc",
        ][..],
        &["--no-such-flag"][..],
        &[][..],
    ] {
        let out = run_bin("mlnode-validate", strings(bad)).await;
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
    }
    let out = run_bin("mlnode-make-artifact", strings(&["--num-nonces", "x"])).await;
    assert_eq!(out.status.code(), Some(1));
    let out = run_bin("mlnode-validate", strings(&["--help"])).await;
    assert_eq!(out.status.code(), Some(0));
}

/// The terminal width the test sets (`stty cols`) and emulates.
const COLS: usize = 240;

/// The final screen of a `COLS`-wide terminal that received `bytes`: a small VT100 subset
/// (the sequences indicatif and console draw with: CR, LF, cursor up/down, clear line,
/// clear to end of line / screen, line wrap at the width; others ignored).
fn final_screen(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\n' => {
                row += 1;
                col = 0;
                if lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            '\r' => col = 0,
            '\u{1b}' => {
                if it.peek() != Some(&'[') {
                    continue;
                }
                it.next();
                let mut arg = String::new();
                let mut fin = ' ';
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        fin = d;
                        break;
                    }
                    arg.push(d);
                }
                let n: usize = arg.trim_start_matches('?').parse().unwrap_or(1).max(1);
                match fin {
                    'A' => row = row.saturating_sub(n),
                    'B' => {
                        row += n;
                        while lines.len() <= row {
                            lines.push(Vec::new());
                        }
                    }
                    'K' if arg == "2" => lines[row].clear(),
                    'K' => lines[row].truncate(col),
                    'J' => {
                        lines[row].truncate(col);
                        lines.truncate(row + 1);
                    }
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                if col >= COLS {
                    row += 1;
                    col = 0;
                    if lines.len() <= row {
                        lines.push(Vec::new());
                    }
                }
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_owned())
        .collect()
}

/// On a real pseudo-terminal with progress bars on, the final screen holds the phase
/// lines and the verdict, and no stale spinner or bar line.
#[tokio::test]
async fn the_final_screen_has_no_stale_progress_line() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: no /usr/bin/script for a pseudo-terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "stty cols {COLS} rows 60; {} --mlnode-url sim:honest --model {QWEN} --time-scale 200 --progress always --artifacts-dir {} --exp-dir {}",
        env!("CARGO_BIN_EXE_mlnode-validate"),
        artifacts().display(),
        dir.path().join("exp").display()
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("/usr/bin/script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env("NO_COLOR", "1")
            .env_remove("CI")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let raw = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        raw.contains("\u{1b}["),
        "progress was drawn on the terminal"
    );
    let screen: Vec<String> = final_screen(&out.stdout)
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        screen.last().map(String::as_str),
        Some("verdict: PASS"),
        "{screen:#?}"
    );
    for l in &screen {
        for stale in [
            "downloading ",
            "deploying",
            "warm-up ",
            "measuring:",
            "validating ",
            "eta ",
        ] {
            assert!(
                !l.contains(stale),
                "stale progress line {l:?} on the final screen:\n{}",
                screen.join("\n")
            );
        }
    }
    for h in [
        "[1/4] download:",
        "[2/4] deploy:",
        "[3/4] throughput:",
        "[4/4] validate:",
    ] {
        assert!(
            screen.iter().any(|l| l.starts_with(h)),
            "{h} missing:\n{}",
            screen.join("\n")
        );
    }
}
