//! `validate_report.txt`: validate.py's lines, in its order, with its labels and value
//! formats (Python reprs), then our extra lines (warnings, cross-check, the error) before
//! the closing banner.

use super::py;
use super::{ValidateReport, ValidationResponse, WarningKind};
use crate::verdict::Verdict;

/// validate.py's verdict words, computed as it does from the node's answer alone: what
/// the `verdict:` line says (an error or a skipped validation is `validation skipped`
/// there; the cause is in the report's `error`).
pub fn file_word(response: Option<&ValidationResponse>) -> &'static str {
    match response {
        None => Verdict::Skipped.headline(),
        Some(r) => Verdict::of_answer(r.fraud_detected, r.n_mismatch).headline(),
    }
}

/// The banner line: 70 `=`.
pub fn banner() -> String {
    "=".repeat(70)
}

/// The whole text report (with a trailing newline).
pub fn render(r: &ValidateReport) -> String {
    let c = &r.config;
    let resp = r.validation.response.as_ref();
    let verdict = file_word(resp);
    let mut l: Vec<String> = vec![banner(), "MLNode PoC validation report".into(), banner()];
    l.push(format!("verdict:      {verdict}"));
    l.push(format!("timestamp:    {}", c.timestamp));
    l.push(format!("mlnode:       {}", c.mlnode_url));
    l.push(format!("model:        {}", c.reference.model));
    l.push(format!("reference:    {}", c.reference.path));
    l.push(format!(
        "              ({} pre-computed nonces; source: {})",
        c.reference.n_vectors,
        c.reference.source.as_deref().unwrap_or("unknown")
    ));
    l.push(format!("experiment:   {}", r.experiment_dir));
    l.push(String::new());
    let p = &c.poc_params;
    l.push("PoC params (from reference unless noted):".into());
    l.push(format!(
        "  seq_len={}  k_dim={}  block_hash={}  public_key={}",
        p.round.seq_len,
        p.round.k_dim,
        py::str_repr(&p.round.block_hash),
        py::str_repr(&p.round.public_key)
    ));
    l.push(format!(
        "  node_id={}  node_count={}  throughput_batch_size={}  validation_batch_size={}",
        p.round.node_id,
        p.round.node_count,
        batch(p.throughput_batch_size),
        batch(p.validation_batch_size)
    ));
    l.push(format!("Deploy config ({}):", c.deploy_config.source));
    l.push(format!(
        "  dtype={}  additional_args={}",
        c.deploy_config.dtype,
        py::str_list(&c.deploy_config.additional_args)
    ));
    l.push("Stat test (server-default -> artifact -> cli):".into());
    l.push(format!("  {}", stat_test(&c.stat_test)));
    l.push(String::new());

    match &r.download {
        Some(d) => l.push(format!(
            "[download] {} (elapsed {:.1}s; final status: {})",
            word(&d.action),
            d.elapsed_s,
            word(&d.last_status.status)
        )),
        None => l.push("[download] skipped".into()),
    }
    match &r.deploy {
        Some(d) => {
            let mut line = format!("[deploy] {} (elapsed {:.1}s)", word(&d.action), d.elapsed_s);
            if d.action == super::DeployAction::AlreadyRunning {
                line.push_str("  (vLLM was already up; the deploy config above was NOT applied)");
            }
            l.push(line);
        }
        None => l.push("[deploy] skipped".into()),
    }
    match &r.throughput {
        Some(t) => {
            let s = &t.summary;
            l.push(format!(
                "[throughput] backends={}  avg sum rate = {:.2} nonces/s ({:.0} nonces/min)  min/max = {:.2}/{:.2}",
                s.n_backends,
                s.avg_sum_nonces_per_second,
                s.avg_sum_nonces_per_min,
                s.min_sum_nonces_per_second,
                s.max_sum_nonces_per_second
            ));
            if s.n_backends > 1 {
                if let Some(last) = t.samples.last() {
                    let rates: Vec<String> = last
                        .per_backend_nonces_per_second
                        .iter()
                        .map(|x| format!("{x:.2}"))
                        .collect();
                    l.push(format!(
                        "  per-backend nonces/s (last sample): [{}]",
                        rates.join(", ")
                    ));
                }
            }
        }
        None => l.push("[throughput] skipped".into()),
    }
    match resp {
        Some(v) => {
            l.push(format!(
                "[validate] n_total={}  n_mismatch={}  p_value={}  fraud_detected={}  -> {verdict}",
                v.n_total,
                v.n_mismatch,
                py::float(v.p_value),
                py::bool_str(v.fraud_detected)
            ));
            if !v.mismatch_nonces.is_empty() {
                let first = &v.mismatch_nonces[..v.mismatch_nonces.len().min(20)];
                l.push(format!(
                    "           mismatch_nonces: {}{}",
                    py::int_list(first),
                    if v.mismatch_nonces.len() > 20 {
                        " ..."
                    } else {
                        ""
                    }
                ));
            }
        }
        None => l.push("[validate] skipped".into()),
    }
    // ---- ours ------------------------------------------------------------------
    for w in &r.warnings {
        if w.kind != WarningKind::DeployConfigNotApplied {
            l.push(format!("[warning] {}", w.message));
        }
    }
    if let Some(x) = &r.cross_check {
        l.push(format!(
            "[cross-check] local n_mismatch={}  p_value={}  fraud_detected={}  node fraud_detected={}  -> {}",
            x.local.n_mismatch,
            py::float(x.local.p_value),
            py::bool_str(x.local.fraud_detected),
            py::bool_str(x.node_fraud_detected),
            if x.disagree { "DISAGREE" } else { "agree" }
        ));
    }
    if let Some(e) = &r.error {
        l.push(format!("[error] {e}"));
    }
    if r.verdict.headline() != verdict {
        l.push(format!(
            "[verdict] {} (exit {})",
            r.verdict.headline(),
            r.exit_code
        ));
    }
    l.push(banner());
    l.join("\n") + "\n"
}

/// `dist_threshold=0.2 (artifact), p_mismatch=0.001 (server-default), ...` as validate.py's
/// `format_stat_test`.
pub fn stat_test(st: &mlnode_protocol::ResolvedStatTest) -> String {
    let (v, s) = (&st.values, &st.source);
    format!(
        "dist_threshold={} ({}), p_mismatch={} ({}), fraud_threshold={} ({})",
        py::float(v.dist_threshold),
        s.dist_threshold,
        py::float(v.p_mismatch),
        s.p_mismatch,
        py::float(v.fraud_threshold),
        s.fraud_threshold
    )
}

fn batch(b: Option<u32>) -> String {
    match b {
        Some(n) => format!("{n} (cli)"),
        None => "unset (server default)".into(),
    }
}

/// A unit enum's serde word (`already_running`, `DOWNLOADED`).
fn word(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}
