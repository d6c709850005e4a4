//! Phase 3: measure PoC throughput.
//!
//! `POST /pow/init/generate` (503 retried 12 × 5 s), warm up, sample `/pow/status` every
//! interval until the measure time is over, and **always** `POST /pow/stop` at the end.
//! Beyond validate.py: replicas under 50 % of the median rate and replicas whose
//! `total_processed` did not grow are flagged; `NO_BACKENDS` is called a crashed deploy.

use std::collections::BTreeMap;

use mlnode_protocol::wire::{
    InitGenerateRequest, InitGenerateResponse, PoCParams, PowStatusResponse,
};
use serde_json::{json, Value};

use super::{r3, Ctx, PhaseResult, STATUS_TIMEOUT};
use crate::client::{detail_of, Client};
use crate::console::Progress;

/// 503 retries of init/generate, 5 s apart (validate.py).
pub const INIT_TRIES: u32 = 12;

/// Replica findings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    pub slow: Vec<u16>,
    pub stalled: Vec<u16>,
    pub no_backends: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Flag slow (< 50 % of the median rate, last sample) and stalled (no growth between the
/// first and the last sample) replicas.
pub fn flag(samples: &[Value]) -> Flags {
    let mut flags = Flags::default();
    let Some(last) = samples.last() else {
        return flags;
    };
    flags.no_backends = last["n_backends"] == 0;
    let rates: BTreeMap<u16, f64> = last["per_backend"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b["port"].as_u64()? as u16, b["nonces_per_second"].as_f64()?)))
        .collect();
    if rates.len() > 1 {
        let m = median(rates.values().copied().collect());
        flags.slow = rates
            .iter()
            .filter(|(_, &r)| r < 0.5 * m)
            .map(|(&p, _)| p)
            .collect();
    }
    if samples.len() >= 2 {
        let totals = |s: &Value| -> BTreeMap<u16, u64> {
            s["per_backend"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| Some((b["port"].as_u64()? as u16, b["total_processed"].as_u64()?)))
                .collect()
        };
        let first = totals(&samples[0]);
        let last = totals(last);
        flags.stalled = last
            .iter()
            .filter(|(p, t)| first.get(p).is_some_and(|f| f >= t))
            .map(|(&p, _)| p)
            .collect();
    }
    flags
}

pub async fn run(ctx: &Ctx<'_>) -> (PhaseResult, Flags) {
    let c = ctx.client;
    let r = ctx.reference;
    let req = InitGenerateRequest {
        block_hash: r.block_hash.clone(),
        block_height: r.block_height_or_default(),
        public_key: r.public_key.clone(),
        node_id: r.node_id_or_default(),
        node_count: r.node_count_or_default(),
        batch_size: ctx.args.batch_size,
        params: PoCParams {
            model: ctx.args.model.clone(),
            seq_len: r.seq_len,
            k_dim: r.k_dim,
        },
        url: None,
        poc_stronger_rng: false,
    };
    let mut init = Value::Null;
    let mut samples: Vec<Value> = Vec::new();
    let report = |init: &Value, samples: &[Value]| json!({"init": init, "samples": samples, "summary": summarise(samples)});
    // init with 503 retries
    let mut tries = 0;
    let resp: InitGenerateResponse = loop {
        tries += 1;
        let a = match c
            .post_raw("/api/v1/inference/pow/init/generate", &req, STATUS_TIMEOUT)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                return (
                    PhaseResult::failed(report(&init, &samples), e.to_string()),
                    Flags::default(),
                )
            }
        };
        if a.status == 503 && tries < INIT_TRIES {
            ctx.console.line(format!(
                "  init/generate 503 ({}); retry {tries}/{INIT_TRIES} in 5s",
                detail_of(&a.body)
            ));
            c.clock.sleep(5.0).await;
            continue;
        }
        match Client::expect::<InitGenerateResponse>(
            "POST",
            "/api/v1/inference/pow/init/generate",
            a,
            &[200],
        ) {
            Ok(r) => break r,
            Err(e) => {
                let mut msg = e.to_string();
                if msg.contains("Already generating") {
                    msg.push_str(" (a stale mining session: POST /api/v1/inference/pow/stop on the node, then retry)");
                }
                return (
                    PhaseResult::failed(report(&init, &samples), msg),
                    Flags::default(),
                );
            }
        }
    };
    init = serde_json::to_value(&resp).unwrap_or(Value::Null);
    ctx.console.line(format!(
        "  init/generate: backends={} n_groups={}",
        resp.backends, resp.n_groups
    ));
    for e in resp.errors.iter().flatten() {
        ctx.console.line(format!(
            "  WARNING: init failed on port {}: {}",
            e.port, e.error
        ));
    }
    let progress = Progress::start(format!("warm-up {}s", ctx.args.warmup_seconds));
    c.clock.sleep(ctx.args.warmup_seconds).await;
    let start = c.clock.now();
    let mut error = None;
    // Samples sit on a fixed grid, start + k·interval, so request latency cannot drop one.
    let mut k = 0u64;
    loop {
        let due = k as f64 * ctx.args.sample_interval;
        if due >= ctx.args.measure_seconds {
            break;
        }
        let wait = start + due - c.clock.now();
        if wait > 0.0 {
            c.clock.sleep(wait).await;
        }
        k += 1;
        let elapsed = c.clock.now() - start;
        match c
            .poll::<PowStatusResponse>("GET", "/api/v1/inference/pow/status", None, STATUS_TIMEOUT)
            .await
        {
            Ok(st) => {
                let per: Vec<Value> = st
                    .backends
                    .iter()
                    .map(|b| {
                        json!({"port": b.port, "status": b.status,
                               "nonces_per_second": b.stats.as_ref().map_or(0.0, |s| s.nonces_per_second),
                               "total_processed": b.stats.as_ref().map_or(0, |s| s.total_processed)})
                    })
                    .collect();
                let sum: f64 = per
                    .iter()
                    .filter_map(|b| b["nonces_per_second"].as_f64())
                    // from +0.0: an empty f64 sum is -0.0, which would print as "-0.00".
                    .fold(0.0, |a, b| a + b);
                let status = serde_json::to_value(st.status).unwrap_or(Value::Null);
                progress.set(format!(
                    "measuring: {} backends, {:.2} nonces/s",
                    per.len(),
                    sum
                ));
                samples.push(
                    json!({"elapsed_s": r3(elapsed), "status": status, "n_backends": per.len(),
                                    "per_backend": per, "sum_nonces_per_second": sum}),
                );
            }
            Err(e) => {
                error = Some(format!("sampling failed: {e}"));
                break;
            }
        }
    }
    drop(progress);
    // Always stop, errors ignored.
    if let Err(e) = c
        .post_raw("/api/v1/inference/pow/stop", &json!({}), STATUS_TIMEOUT)
        .await
    {
        ctx.console
            .line(format!("  (pow/stop failed, ignored: {e})"));
    }
    let flags = flag(&samples);
    let rep = report(&init, &samples);
    match error {
        Some(e) => (PhaseResult::failed(rep, e), flags),
        None => (PhaseResult::ok(rep), flags),
    }
}

/// The summary block of validate.py.
pub fn summarise(samples: &[Value]) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    let sums: Vec<f64> = samples
        .iter()
        .filter_map(|s| s["sum_nonces_per_second"].as_f64())
        .collect();
    let avg = sums.iter().fold(0.0, |a, b| a + b) / sums.len().max(1) as f64;
    let last = &samples[samples.len() - 1];
    let finals: serde_json::Map<String, Value> = last["per_backend"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| (b["port"].to_string(), b["total_processed"].clone()))
        .collect();
    json!({
        "n_backends": last["n_backends"],
        "n_samples": samples.len(),
        "avg_sum_nonces_per_second": avg,
        "avg_sum_nonces_per_min": avg * 60.0,
        "min_sum_nonces_per_second": sums.iter().copied().fold(f64::INFINITY, f64::min),
        "max_sum_nonces_per_second": sums.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "final_per_backend_total_processed": finals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(per: &[(u16, f64, u64)]) -> Value {
        let per: Vec<Value> = per
            .iter()
            .map(|(p, r, t)| json!({"port": p, "nonces_per_second": r, "total_processed": t}))
            .collect();
        json!({"n_backends": per.len(), "per_backend": per, "sum_nonces_per_second": 0.0})
    }

    #[test]
    fn slow_and_stalled() {
        let s = vec![
            sample(&[(5001, 20.0, 100), (5002, 20.0, 100), (5003, 8.0, 40)]),
            sample(&[(5001, 20.0, 300), (5002, 20.0, 300), (5003, 8.0, 120)]),
        ];
        assert_eq!(
            flag(&s),
            Flags {
                slow: vec![5003],
                stalled: vec![],
                no_backends: false
            }
        );
        let s = vec![
            sample(&[(5001, 20.0, 100), (5002, 19.0, 64)]),
            sample(&[(5001, 20.0, 300), (5002, 12.0, 64)]),
        ];
        assert_eq!(flag(&s).stalled, vec![5002]);
        assert!(flag(&[sample(&[])]).no_backends);
        // At exactly 50 % of the median a replica is not flagged.
        let s = vec![sample(&[(5001, 20.0, 1), (5002, 20.0, 1), (5003, 10.0, 1)])];
        assert!(flag(&s).slow.is_empty());
    }
}
