//! The three report files: `validate_config.json`, `validate_report.json`,
//! `validate_report.txt` — every key and line of validator.md — written atomically
//! (temp file + rename) on every path, errors included.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The verdict texts (validator.md).
pub const PASS: &str = "PASS";
pub const PASS_WITH_MISMATCHES: &str = "PASS (with mismatches within stat-test tolerance)";
pub const FAIL: &str = "FAIL (fraud_detected)";
pub const SKIPPED: &str = "validation skipped";
pub const ERROR: &str = "ERROR";

/// Paths of the three files.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportPaths {
    pub config: PathBuf,
    pub report: PathBuf,
    pub txt: PathBuf,
}

/// Write `contents` to `path` atomically.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

/// Write all three files into `dir` (created if needed).
pub fn write_all(
    dir: &Path,
    config: &Value,
    report: &Value,
    txt: &str,
) -> std::io::Result<ReportPaths> {
    std::fs::create_dir_all(dir)?;
    let paths = ReportPaths {
        config: dir.join("validate_config.json"),
        report: dir.join("validate_report.json"),
        txt: dir.join("validate_report.txt"),
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    write_atomic(&paths.config, &pretty(config))?;
    write_atomic(&paths.report, &pretty(report))?;
    write_atomic(&paths.txt, txt)?;
    Ok(paths)
}

fn fmt_num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => format!("{x}"),
        None => v.to_string(),
    }
}

fn label(k: &str, v: impl AsRef<str>) -> String {
    format!("{:<14}{}", format!("{k}:"), v.as_ref())
}

/// Render `validate_report.txt` from the report object.
pub fn render_txt(report: &Value, verdict: &str) -> String {
    let banner = "=".repeat(70);
    let mut out = vec![
        banner.clone(),
        "MLNode PoC validation report".into(),
        banner.clone(),
    ];
    out.push(label("verdict", verdict));
    out.push(label(
        "timestamp",
        report["timestamp"].as_str().unwrap_or(""),
    ));
    out.push(label("mlnode", report["mlnode_url"].as_str().unwrap_or("")));
    out.push(label("model", report["model"].as_str().unwrap_or("")));
    let r = &report["reference"];
    if r.is_null() {
        out.push(label("reference", "(none)"));
    } else {
        out.push(label(
            "reference",
            format!(
                "{}  ({} vectors, source: {})",
                r["path"].as_str().unwrap_or(""),
                fmt_num(&r["n_vectors"]),
                r["source"].as_str().unwrap_or("-")
            ),
        ));
    }
    out.push(label(
        "experiment",
        report["experiment_dir"].as_str().unwrap_or(""),
    ));
    let p = &report["poc_params"];
    if !p.is_null() {
        out.push(label(
            "poc params",
            format!(
                "seq_len={} k_dim={} block_hash={} public_key={} node_id={} node_count={} batch={} validation_batch={}",
                fmt_num(&p["seq_len"]), fmt_num(&p["k_dim"]), p["block_hash"].as_str().unwrap_or(""),
                p["public_key"].as_str().unwrap_or(""), fmt_num(&p["node_id"]), fmt_num(&p["node_count"]),
                fmt_num(&p["throughput_batch_size"]), fmt_num(&p["validation_batch_size"])
            ),
        ));
    }
    let d = &report["deploy_config"];
    if !d.is_null() {
        out.push(label(
            "deploy",
            format!(
                "dtype={} additional_args={}",
                d["dtype"].as_str().unwrap_or(""),
                d["additional_args"]
            ),
        ));
    }
    let st = &report["stat_test"];
    if !st.is_null() {
        let item = |k: &str| {
            format!(
                "{}={} ({})",
                k,
                fmt_num(&st["values"][k]),
                st["source"][k].as_str().unwrap_or("")
            )
        };
        out.push(label(
            "stat test",
            format!(
                "{}  {}  {}",
                item("dist_threshold"),
                item("p_mismatch"),
                item("fraud_threshold")
            ),
        ));
    }
    // Phases.
    let dl = &report["download"];
    out.push(if dl.is_null() {
        "[download] skipped".into()
    } else {
        format!(
            "[download] action={}  elapsed={}s  last_status={}",
            dl["action"].as_str().unwrap_or(""),
            fmt_num(&dl["elapsed_s"]),
            dl["last_status"].as_str().unwrap_or("")
        )
    });
    let dp = &report["deploy"];
    out.push(if dp.is_null() {
        "[deploy] skipped".into()
    } else {
        let mut s = format!(
            "[deploy] action={}  elapsed={}s  status={}",
            dp["action"].as_str().unwrap_or(""),
            fmt_num(&dp["elapsed_s"]),
            dp["status"]["status"].as_str().unwrap_or("?")
        );
        if dp["action"] == "already_running" {
            s.push_str("  WARNING: vLLM was already running; the deploy config was NOT applied");
        }
        s
    });
    let tp = &report["throughput"];
    if tp.is_null() {
        out.push("[throughput] skipped".into());
    } else {
        let s = &tp["summary"];
        if s.is_null() {
            out.push("[throughput] no samples".into());
        } else {
            out.push(format!(
                "[throughput] backends={}  avg sum rate = {:.2} nonces/s ({:.1} nonces/min)  min/max = {:.2}/{:.2}",
                fmt_num(&s["n_backends"]),
                s["avg_sum_nonces_per_second"].as_f64().unwrap_or(0.0),
                s["avg_sum_nonces_per_min"].as_f64().unwrap_or(0.0),
                s["min_sum_nonces_per_second"].as_f64().unwrap_or(0.0),
                s["max_sum_nonces_per_second"].as_f64().unwrap_or(0.0),
            ));
            let last = tp["samples"].as_array().and_then(|a| a.last());
            if let Some(per) = last
                .and_then(|l| l["per_backend"].as_array())
                .filter(|p| p.len() > 1)
            {
                for b in per {
                    out.push(format!(
                        "  backend {}: {:.2} nonces/s  total_processed={}",
                        fmt_num(&b["port"]),
                        b["nonces_per_second"].as_f64().unwrap_or(0.0),
                        fmt_num(&b["total_processed"])
                    ));
                }
            }
        }
        let f = &tp["flags"];
        if f["no_backends"] == true {
            out.push("  WARNING: backends=0 / NO_BACKENDS: the deploy crashed".into());
        }
        for p in f["slow_replicas"].as_array().into_iter().flatten() {
            out.push(format!(
                "  WARNING: backend {} is below 50% of the median rate",
                fmt_num(p)
            ));
        }
        for p in f["stalled_replicas"].as_array().into_iter().flatten() {
            out.push(format!(
                "  WARNING: backend {} total_processed did not grow between samples (stalled)",
                fmt_num(p)
            ));
        }
    }
    let v = &report["validation"];
    let resp = &v["response"];
    if v.is_null() {
        out.push("[validate] skipped".into());
    } else if resp.is_null() || resp.get("n_total").is_none() {
        out.push("[validate] no result".into());
    } else {
        out.push(format!(
            "[validate] n_total={}  n_mismatch={}  p_value={}  fraud_detected={}  -> {}",
            fmt_num(&resp["n_total"]),
            fmt_num(&resp["n_mismatch"]),
            resp["p_value"],
            resp["fraud_detected"],
            verdict
        ));
        if let Some(m) = resp["mismatch_nonces"].as_array().filter(|m| !m.is_empty()) {
            let first: Vec<String> = m.iter().take(20).map(fmt_num).collect();
            out.push(format!(
                "  mismatch_nonces (first {} of {}): [{}]",
                first.len(),
                m.len(),
                first.join(", ")
            ));
        }
    }
    let cc = &report["cross_check"];
    if !cc.is_null() {
        out.push(format!(
            "[cross-check] local n_mismatch={}  p_value={}  fraud_detected={}  node fraud_detected={}{}",
            fmt_num(&cc["local"]["n_mismatch"]), cc["local"]["p_value"], cc["local"]["fraud_detected"],
            cc["node"]["fraud_detected"],
            if cc["disagree"] == true { "  -> DISAGREE" } else { "  -> agree" }
        ));
    }
    if let Some(e) = report["error"].as_str() {
        out.push(format!("ERROR: {e}"));
    }
    out.push(banner);
    out.join("\n") + "\n"
}

/// Insert `k: v` keeping order.
pub fn put(m: &mut Map<String, Value>, k: &str, v: Value) {
    m.insert(k.to_owned(), v);
}

/// A null-safe `{}`.
pub fn obj() -> Map<String, Value> {
    Map::new()
}

/// The `args` block: every CLI option by its long name with `_`.
pub fn args_json(args: &impl serde::Serialize) -> Value {
    serde_json::to_value(args).unwrap_or(json!({}))
}
