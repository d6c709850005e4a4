//! The reports are drop-in: every key path and JSON type of validate.py's (the fixtures
//! in `fixtures/report-shape/`, derived from validate-report-shape.md), its text report
//! line for line, and a throughput figure that matches what the node is configured to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mlnode_sim::config::NodeConfig;
use serde_json::Value;

use crate::util::*;

fn shape_fixture(name: &str) -> Vec<(String, BTreeSet<String>)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/report-shape")
        .join(name);
    std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (path, types) = l.split_once(": ").unwrap();
            (
                path.to_owned(),
                types.split('|').map(str::to_owned).collect(),
            )
        })
        .collect()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key path of `v` (lists as `[]`) with the JSON types seen there; `args` is not
/// descended into (the shape file leaves it out: it mirrors the flags).
fn shape(v: &Value, path: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
    let here = if path.is_empty() { "$" } else { path };
    out.entry(here.to_owned())
        .or_default()
        .insert(json_type(v).to_owned());
    match v {
        Value::Object(m) if path != "args" => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                shape(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// The ancestors of a key path, nearest first (`a.b[].c` → `a.b[]`, `a.b`, `a`).
fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = path.to_owned();
    loop {
        let cut = match (p.rfind('.'), p.ends_with("[]")) {
            (_, true) => p.len() - 2,
            (Some(i), false) => i,
            (None, false) => break,
        };
        p.truncate(cut);
        out.push(p.clone());
    }
    out
}

/// Check a report against a shape fixture: each path is there with an allowed type, or
/// sits under a value that is `null` (allowed there) or an empty list.
fn check_shape(report: &Value, fixture: &str, run: &str) {
    let mut ours = BTreeMap::new();
    shape(report, "", &mut ours);
    let want = shape_fixture(fixture);
    let allowed: BTreeMap<&str, &BTreeSet<String>> =
        want.iter().map(|(p, t)| (p.as_str(), t)).collect();
    for (path, types) in &want {
        match ours.get(path) {
            Some(got) => assert!(
                got.is_subset(types),
                "{run}: {path} is {got:?}, validate.py writes {types:?}"
            ),
            None => {
                let covered = ancestors(path).iter().any(|a| {
                    ours.get(a).is_some_and(|t| {
                        (t.contains("null")
                            && allowed.get(a.as_str()).is_some_and(|x| x.contains("null")))
                            || (t.contains("array") && !ours.contains_key(&format!("{a}[]")))
                    })
                });
                assert!(
                    covered,
                    "{run}: {path} ({types:?}) is missing from our report"
                );
            }
        }
    }
}

fn shape_text(v: &Value) -> String {
    let mut ours = BTreeMap::new();
    shape(v, "", &mut ours);
    ours.iter()
        .map(|(p, t)| format!("{p}: {}", t.iter().cloned().collect::<Vec<_>>().join("|")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// A success, the PASS-with-mismatches and fraud cases, and each error kind: the same key
/// paths and types as validate.py's reports; our whole shape snapshotted.
#[tokio::test]
async fn report_shapes_are_validate_py_shapes() {
    let runs: &[(&str, &str, &str)] = &[
        ("honest-4-replicas", QWEN, "report-success.txt"),
        ("tolerated-mismatches", QWEN, "report-success.txt"),
        ("fraud-int4", QWEN, "report-success.txt"),
        ("partial-init", QWEN, "report-success.txt"),
        ("download-not-found", QWEN, "report-error.txt"),
        ("deploy-oom", QWEN, "report-error.txt"),
        ("no-backends", QWEN, "report-error.txt"),
        ("stale-generating", QWEN, "report-error.txt"),
        ("validation-proxy-timeout", QWEN, "report-error.txt"),
    ];
    for (scenario, model, fixture) in runs {
        let (out, text, _d) = validate(
            &format!("sim:{scenario}"),
            model,
            &["--download-timeout", "600", "--deploy-timeout", "600"],
        )
        .await;
        let paths = out
            .reports
            .clone()
            .unwrap_or_else(|| panic!("{scenario}: no reports\n{text}"));
        let report = read_json(&paths.report);
        let config = read_json(&paths.config);
        check_shape(&report, fixture, scenario);
        check_shape(&config, "config.txt", scenario);
        snapshot_settings().bind(|| {
            insta::assert_snapshot!(format!("shape__{scenario}"), shape_text(&report));
        });
        // The config is the report's first keys, repeated exactly.
        for (k, v) in config.as_object().unwrap() {
            if k != "timestamp" {
                assert_eq!(&report[k], v, "{scenario}: report repeats config key {k}");
            }
        }
        if *fixture == "report-error.txt" {
            assert_eq!(report["validation"]["response"], Value::Null, "{scenario}");
            assert_eq!(report["validation"]["passed"], Value::Null, "{scenario}");
            assert!(
                report["error"].is_string(),
                "{scenario}: the cause is in the report"
            );
            assert!(text.contains("ERROR: "), "{scenario}: and on the console");
        }
    }
}

/// Mask what differs between two runs of the same scenario (times, paths, ports, rates),
/// keeping every label and format.
fn mask(txt: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (r"(?m)^(timestamp:\s+).*$", "${1}[TS]"),
        (r"(?m)^(mlnode:\s+).*$", "${1}[URL]"),
        (r"(?m)^(reference:\s+).*$", "${1}[PATH]"),
        (r"(?m)^(experiment:\s+).*$", "${1}[DIR]"),
        (r"elapsed [0-9.]+s", "elapsed [E]s"),
        (
            r"= [0-9.]+ nonces/s \([0-9]+ nonces/min\)  min/max = [0-9.]+/[0-9.]+",
            "= [RATE]",
        ),
        (r"(?m)\[[0-9., ]+\]$", "[RATES]"),
        (
            r"n_mismatch=\d+  p_value=\S+",
            "n_mismatch=[N]  p_value=[P]",
        ),
        (
            r"mismatch_nonces: \[[0-9, ]+\]",
            "mismatch_nonces: [NONCES]",
        ),
    ];
    let mut s = txt.to_owned();
    for (re, with) in rules {
        s = regex_lite(re, with, &s);
    }
    s
}

fn regex_lite(re: &str, with: &str, s: &str) -> String {
    regex::Regex::new(re)
        .unwrap()
        .replace_all(s, with)
        .into_owned()
}

/// Our `validate_report.txt` is validate.py's, line for line, against the real files in
/// the shape spec (values that differ run to run masked on both sides).
#[tokio::test]
async fn text_report_is_validate_py_line_for_line() {
    for (scenario, fixture) in [
        ("honest-4-replicas", "py-honest-4-replicas-qwen.txt"),
        ("fraud-int4", "py-fraud-int4-qwen.txt"),
        ("no-backends", "py-no-backends-qwen.txt"),
    ] {
        // validate.py @50f0725e sent batch sizes 32 / 64; so do we here.
        let (out, text, _d) = validate(
            &format!("sim:{scenario}"),
            QWEN,
            &["--batch-size", "32", "--validation-batch-size", "64"],
        )
        .await;
        let ours = std::fs::read_to_string(&out.reports.unwrap().txt).unwrap();
        let theirs = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/report-shape")
                .join(fixture),
        )
        .unwrap();
        // Our extra lines (warnings, the error) come after validate.py's, before the banner.
        let ours_py: Vec<&str> = ours
            .lines()
            .filter(|l| {
                !l.starts_with("[warning]")
                    && !l.starts_with("[error]")
                    && !l.starts_with("[verdict]")
            })
            .collect();
        assert_eq!(
            mask(&ours_py.join("\n")),
            mask(theirs.trim_end()),
            "{scenario}\n{text}"
        );
    }
}

/// On the same node, the throughput average is the node's configured rate (the first
/// sample one interval in, not at t = 0), on 1 and on 4 replicas.
#[tokio::test]
async fn throughput_average_is_the_configured_rate() {
    for replicas in [1u32, 4] {
        let h = spawn_sim(NodeConfig {
            replicas: Some(replicas),
            ..deployed()
        })
        .await;
        let want = h.sim().node().profile.nonces_per_second() * f64::from(replicas);
        // The default window, and a longer one; then short ones (rate checked > 0 only:
        // whole batches make a lifetime average lag by up to batch / (rate · t)).
        for (warmup, measure, interval) in [
            ("30", "60", "10"),
            ("60", "120", "20"),
            ("0", "20", "5"),
            ("2", "2", "1"),
        ] {
            let (out, text, _d) = validate(
                &h.uri(),
                QWEN,
                &[
                    "--skip-download",
                    "--skip-validate",
                    "--warmup-seconds",
                    warmup,
                    "--measure-seconds",
                    measure,
                    "--sample-interval",
                    interval,
                ],
            )
            .await;
            assert_eq!(out.exit_code, 0, "{text}");
            let rep = report_json(&out);
            let s = &rep["throughput"]["summary"];
            let n: f64 = measure.parse::<f64>().unwrap() / interval.parse::<f64>().unwrap();
            assert_eq!(s["n_samples"], n as u64, "measure/interval samples");
            let got = s["avg_sum_nonces_per_second"].as_f64().unwrap();
            let short = warmup == "0" || warmup == "2";
            assert!(
                if short { got > 0.5 * want } else { (got - want).abs() <= 0.02 * want },
                "{replicas} replicas, {warmup}/{measure}/{interval}: {got} vs configured {want}\n{text}"
            );
            let first = rep["throughput"]["samples"][0]["elapsed_s"]
                .as_f64()
                .unwrap();
            assert!(
                first > 0.0,
                "the first sample is one interval in, not at t = 0"
            );
        }
        h.shutdown().await;
    }
}

/// Both real references shipped in artifacts/ validate PASS through the real binary
/// against a node on its own port.
#[tokio::test]
async fn binary_validates_real_references_pass() {
    for model in [QWEN, MINIMAX] {
        let h = spawn_sim(NodeConfig::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let out = run_bin(
            "mlnode-validate",
            vec![
                "--mlnode-url".into(),
                h.uri(),
                "--model".into(),
                model.into(),
                "--time-scale".into(),
                SCALE.into(),
                "--exp-dir".into(),
                dir.path().display().to_string(),
                "--artifacts-dir".into(),
                artifacts().display().to_string(),
            ],
        )
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{model}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("verdict:      PASS\n"), "{stdout}");
        assert!(stdout.ends_with("verdict: PASS\n"), "{stdout}");
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
        assert_eq!(rep["download"]["last_status"]["status"], "DOWNLOADED");
        assert_eq!(rep["deploy"]["action"], "deployed");
        assert_eq!(rep["poc_params"]["throughput_batch_size"], Value::Null);
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
