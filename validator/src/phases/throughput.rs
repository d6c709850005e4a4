//! Phase 3: measure PoC throughput, as validate.py does.
//!
//! `POST /pow/init/generate` (503 retried 12 × 5 s), warm up, then sample `/pow/status`
//! one interval after the measurement starts and every interval after that until the
//! measure time is over (`ceil(measure / interval)` samples, the last one at the end),
//! recording each backend's rate as the node reports it; **always** `POST /pow/stop` at
//! the end. The samples sit on a fixed grid (`start + k·interval`), so request latency
//! cannot drop one.
//!
//! Beyond validate.py: the answers are checked (a negative, non-finite or impossible rate,
//! a `total_processed` that goes backwards, or no backend in any sample is an error), and
//! replicas under 50 % of the median rate, replicas whose `total_processed` stopped
//! growing, and replicas that failed `init/generate` are flagged — from rates and totals
//! of the samples themselves, so a zero warm-up changes nothing.

use mlnode_protocol::wire::{
    AggregateStatus, InitGenerateRequest, InitGenerateResponse, PowStatusResponse,
    DEFAULT_BATCH_SIZE,
};

use super::{Ctx, Failure, Phase};
use crate::client::{detail_of, Client};
use crate::report::{
    Partial, ReplicaFlags, Sample, ThroughputRecord, ThroughputSummary, Warning, WarningKind,
};

/// 503 retries of init/generate, 5 s apart (validate.py).
pub const INIT_TRIES: u32 = 12;
/// No GPU mines a million nonces a second: a rate above this is not a measurement.
pub const MAX_PLAUSIBLE_RATE: f64 = 1e6;

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

/// Slow replicas (last sample, < 50 % of the median rate), stalled ones (see below) and
/// restarted ones (a total that went backwards).
pub fn flag(samples: &[Sample], batch_size: u32) -> ReplicaFlags {
    let mut flags = ReplicaFlags::default();
    let Some(last) = samples.last() else {
        return flags;
    };
    let rates = &last.per_backend_nonces_per_second;
    if rates.len() > 1 {
        let m = median(rates.clone());
        flags.slow = last
            .per_backend_ports
            .iter()
            .zip(rates)
            .filter(|(_, &r)| r < 0.5 * m)
            .map(|(&p, _)| p)
            .collect();
    }
    // Stalled: the total has not moved over a trailing run of samples long enough that,
    // at the rate the replica reported when the run began, it should have finished two
    // batches. (Not "did not grow between two samples": a slow replica between batches
    // does that too.)
    for (i, &port) in last.per_backend_ports.iter().enumerate() {
        let total = last.per_backend_total_processed[i];
        let at = |s: &Sample| {
            s.per_backend_ports
                .iter()
                .position(|&p| p == port)
                .map(|j| {
                    (
                        s.per_backend_total_processed[j],
                        s.per_backend_nonces_per_second[j],
                    )
                })
        };
        let mut start = samples.len() - 1;
        while start > 0 && at(&samples[start - 1]).is_some_and(|(t, _)| t == total) {
            start -= 1;
        }
        if start == samples.len() - 1 {
            continue;
        }
        let flat_for = last.elapsed_s - samples[start].elapsed_s;
        let rate = at(&samples[start]).map_or(0.0, |(_, r)| r);
        if rate * flat_for >= 2.0 * f64::from(batch_size) {
            flags.stalled.push(port);
        }
    }
    // A total that went backwards between two samples where the backend was mining both
    // times: the replica restarted. (A backend in ERROR reports no stats at all.)
    let mining = |s: &Sample, i: usize| {
        s.per_backend_status
            .get(i)
            .is_some_and(|st| st == "GENERATING")
    };
    for w in samples.windows(2) {
        for (i, &port) in w[1].per_backend_ports.iter().enumerate() {
            let before = w[0].per_backend_ports.iter().position(|&p| p == port);
            if before.is_some_and(|j| {
                mining(&w[0], j)
                    && mining(&w[1], i)
                    && w[1].per_backend_total_processed[i] < w[0].per_backend_total_processed[j]
            }) && !flags.restarted.contains(&port)
            {
                flags.restarted.push(port);
            }
        }
    }
    flags
}

/// Answers no honest node gives. (A total that goes backwards is a restart, flagged.)
fn check_sample(s: &Sample) -> Result<(), String> {
    for (i, &r) in s.per_backend_nonces_per_second.iter().enumerate() {
        let port = s.per_backend_ports[i];
        if !r.is_finite() || r < 0.0 {
            return Err(format!(
                "backend {port} reported nonces_per_second={r}: a rate must be a finite number >= 0"
            ));
        }
        if r > MAX_PLAUSIBLE_RATE {
            return Err(format!(
                "backend {port} reported nonces_per_second={r}: over {MAX_PLAUSIBLE_RATE} nonces/s is not a real measurement"
            ));
        }
    }
    Ok(())
}

fn sample(elapsed: f64, st: &PowStatusResponse) -> Sample {
    let rate = |b: &mlnode_protocol::wire::BackendStatus| {
        b.stats.as_ref().map_or(0.0, |s| s.nonces_per_second)
    };
    let per: Vec<f64> = st.backends.iter().map(rate).collect();
    Sample {
        elapsed_s: crate::r3(elapsed),
        agg_status: st.status,
        n_backends: st.backends.len(),
        // from +0.0: an empty f64 sum is -0.0, which would print as "-0.00".
        sum_nonces_per_second: per.iter().fold(0.0, |a, b| a + b),
        per_backend_nonces_per_second: per,
        per_backend_total_processed: st
            .backends
            .iter()
            .map(|b| b.stats.as_ref().map_or(0, |s| s.total_processed))
            .collect(),
        per_backend_ports: st.backends.iter().map(|b| b.port).collect(),
        per_backend_status: st.backends.iter().map(|b| b.status.clone()).collect(),
    }
}

async fn init(ctx: &Ctx<'_>, req: &InitGenerateRequest) -> Result<InitGenerateResponse, Failure> {
    let c = ctx.client;
    let path = mlnode_protocol::paths::POW_INIT_GENERATE;
    let mut tries = 0;
    loop {
        tries += 1;
        let a = c.init_generate(req).await?;
        if a.status == 503 && tries < INIT_TRIES {
            ctx.console.line(format!(
                "  init/generate 503 ({}); retry in 5s ({tries}/{INIT_TRIES})",
                detail_of(&a.body)
            ));
            c.clock.sleep(5.0).await;
            continue;
        }
        return Client::expect::<InitGenerateResponse>("POST", path, a, &[200]).map_err(|e| {
            let mut msg = e.to_string();
            if e.status() == Some(503) {
                msg.push_str(&format!(" (gave up after {INIT_TRIES} tries)"));
            }
            if msg.contains("Already generating") {
                msg.push_str(" (a stale mining session: POST /api/v1/inference/pow/stop on the node, then retry)");
            }
            Failure::new(msg, None)
        });
    }
}

pub async fn run(ctx: &Ctx<'_>) -> Result<(ThroughputRecord, Vec<Warning>), Failure> {
    let c = ctx.client;
    let a = ctx.args;
    let r = ctx.reference;
    ctx.console
        .line(Phase::Throughput.header("starting init/generate"));
    let req = InitGenerateRequest {
        block_hash: r.block_hash.clone(),
        block_height: r.block_height_or_default(),
        public_key: r.public_key.clone(),
        node_id: r.node_id_or_default(),
        node_count: r.node_count_or_default(),
        batch_size: a.batch_size,
        params: super::poc_params(ctx),
        url: None,
        poc_stronger_rng: false,
    };
    let resp = init(ctx, &req).await?;
    ctx.console.line(format!(
        "  init/generate -> backends={} n_groups={}",
        resp.backends, resp.n_groups
    ));
    let mut warnings = Vec::new();
    let init_failed: Vec<u16> = resp.errors.iter().flatten().map(|e| e.port).collect();
    for e in resp.errors.iter().flatten() {
        warnings.push(Warning {
            kind: WarningKind::InitFailed,
            message: format!(
                "replica on port {} failed init/generate: {}",
                e.port,
                crate::client::clip(&e.error, 200)
            ),
        });
    }
    let mut samples: Vec<Sample> = Vec::new();
    let measured = measure(ctx, &mut samples).await;
    // Always stop, errors ignored.
    ctx.console.line("  stopping generation...");
    if let Err(e) = c.pow_stop().await {
        ctx.console
            .line(format!("  (pow/stop failed, ignored: {e})"));
    }
    let fail = |msg: String, samples: Vec<Sample>| {
        Failure::new(
            msg,
            Some(Partial::Throughput {
                init: Some(resp.clone()),
                samples,
            }),
        )
    };
    if let Err(msg) = measured {
        return Err(fail(msg, samples));
    }
    if !samples.is_empty()
        && samples
            .iter()
            .all(|s| s.n_backends == 0 || s.agg_status == AggregateStatus::NoBackends)
    {
        return Err(fail(
            "no backend in any /pow/status sample (NO_BACKENDS): the deploy crashed or vLLM died after init/generate".into(),
            samples,
        ));
    }
    let mut flags = flag(&samples, a.batch_size.unwrap_or(DEFAULT_BATCH_SIZE));
    flags.init_failed = init_failed;
    let last = samples.last();
    for &p in &flags.slow {
        let rates = last
            .map(|s| s.per_backend_nonces_per_second.clone())
            .unwrap_or_default();
        let rate = last
            .and_then(|s| s.per_backend_ports.iter().position(|&q| q == p))
            .map_or(0.0, |i| rates[i]);
        warnings.push(Warning {
            kind: WarningKind::SlowReplica,
            message: format!(
                "replica on port {p} mines {rate:.2} nonces/s, below 50% of the median {:.2}",
                median(rates)
            ),
        });
    }
    for &p in &flags.restarted {
        warnings.push(Warning {
            kind: WarningKind::ReplicaRestarted,
            message: format!("replica on port {p}: total_processed went backwards between samples (the replica restarted)"),
        });
    }
    for &p in &flags.stalled {
        warnings.push(Warning {
            kind: WarningKind::StalledReplica,
            message: format!("replica on port {p}: total_processed did not grow between the last two samples (stalled)"),
        });
    }
    for w in &warnings {
        ctx.console.line(format!("  WARNING: {}", w.message));
    }
    let summary = ThroughputSummary::of(&samples);
    ctx.console.line(format!(
        "  -> backends={}  avg sum rate = {:.2} nonces/s ({:.0} nonces/min)",
        summary.n_backends, summary.avg_sum_nonces_per_second, summary.avg_sum_nonces_per_min
    ));
    Ok((
        ThroughputRecord {
            samples,
            summary,
            init: resp,
            flags,
        },
        warnings,
    ))
}

/// Warm up, then take the samples (pushed as they come, so a failure keeps them).
async fn measure(ctx: &Ctx<'_>, samples: &mut Vec<Sample>) -> Result<(), String> {
    let c = ctx.client;
    let a = ctx.args;
    let total = a.warmup_seconds + a.measure_seconds;
    let progress = ctx.console.progress(
        format!(
            "warm-up {} s, then measuring {} s (simulated)",
            a.warmup_seconds, a.measure_seconds
        ),
        Some(total),
    );
    if a.warmup_seconds > 0.0 {
        ctx.console.line(format!("  warmup: {}s", a.warmup_seconds));
        c.clock.sleep(a.warmup_seconds).await;
    }
    let start = c.clock.now();
    let n = if a.measure_seconds > 0.0 {
        (a.measure_seconds / a.sample_interval).ceil() as u64
    } else {
        0
    };
    for k in 1..=n {
        let due = (k as f64 * a.sample_interval).min(a.measure_seconds);
        let wait = start + due - c.clock.now();
        if wait > 0.0 {
            c.clock.sleep(wait).await;
        }
        let st = c
            .pow_status()
            .await
            .map_err(|e| format!("sampling failed: {e}"))?;
        let s = sample(c.clock.now() - start, &st);
        check_sample(&s).map_err(|e| format!("implausible /pow/status answer: {e}"))?;
        progress.at(a.warmup_seconds + s.elapsed_s);
        progress.set(format!(
            "measuring: {} backends, {:.2} nonces/s",
            s.n_backends, s.sum_nonces_per_second
        ));
        let rates: Vec<String> = s
            .per_backend_nonces_per_second
            .iter()
            .map(|x| format!("'{x:.2}'"))
            .collect();
        ctx.console.line(format!(
            "  [{:>3}s] backends={} sum_rate={:.2} n/s ({:.0} n/min) per_backend=[{}]",
            s.elapsed_s as i64,
            s.n_backends,
            s.sum_nonces_per_second,
            s.sum_nonces_per_second * 60.0,
            rates.join(", ")
        ));
        samples.push(s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, per: &[(u16, f64, u64)]) -> Sample {
        Sample {
            elapsed_s: t,
            agg_status: AggregateStatus::Generating,
            n_backends: per.len(),
            per_backend_nonces_per_second: per.iter().map(|p| p.1).collect(),
            per_backend_total_processed: per.iter().map(|p| p.2).collect(),
            sum_nonces_per_second: per.iter().map(|p| p.1).sum(),
            per_backend_ports: per.iter().map(|p| p.0).collect(),
            per_backend_status: per.iter().map(|_| "GENERATING".to_string()).collect(),
        }
    }

    #[test]
    fn slow_and_stalled() {
        let s = vec![
            sample(
                10.0,
                &[(5001, 20.0, 100), (5002, 20.0, 100), (5003, 8.0, 40)],
            ),
            sample(
                20.0,
                &[(5001, 20.0, 300), (5002, 20.0, 300), (5003, 8.0, 120)],
            ),
        ];
        let f = flag(&s, 32);
        assert_eq!((f.slow, f.stalled), (vec![5003], vec![]));
        let s = vec![
            sample(10.0, &[(5001, 20.0, 100), (5002, 19.0, 64)]),
            sample(20.0, &[(5001, 20.0, 300), (5002, 12.0, 64)]),
        ];
        assert_eq!(flag(&s, 32).stalled, vec![5002]);
        // One replica: stalled only if its own rate says two batches were due.
        let s = vec![
            sample(10.0, &[(5001, 20.0, 192)]),
            sample(20.0, &[(5001, 9.6, 192)]),
        ];
        assert_eq!(flag(&s, 32).stalled, vec![5001]);
        let s = vec![
            sample(10.0, &[(5001, 2.0, 32)]),
            sample(20.0, &[(5001, 1.6, 32)]),
        ];
        assert!(
            flag(&s, 32).stalled.is_empty(),
            "a slow honest replica between batches"
        );
        // At exactly 50 % of the median a replica is not flagged.
        let s = vec![sample(
            10.0,
            &[(5001, 20.0, 1), (5002, 20.0, 1), (5003, 10.0, 1)],
        )];
        assert!(flag(&s, 32).slow.is_empty());
    }

    #[test]
    fn impossible_answers_are_named() {
        let ok = sample(10.0, &[(5001, 20.0, 100)]);
        assert!(check_sample(&ok).is_ok());
        for (bad, word) in [
            (sample(10.0, &[(5001, -1.0, 100)]), "finite number >= 0"),
            (sample(10.0, &[(5001, f64::NAN, 100)]), "finite number >= 0"),
            (
                sample(10.0, &[(5001, 1e308, 100)]),
                "not a real measurement",
            ),
        ] {
            assert!(check_sample(&bad).unwrap_err().contains(word));
        }
        let back = sample(20.0, &[(5001, 20.0, 50)]);
        let f = flag(&[ok, back], 32);
        assert_eq!((f.restarted, f.stalled), (vec![5001], vec![]));
    }
}
