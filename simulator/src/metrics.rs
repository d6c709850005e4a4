//! `GET /api/v1/metrics`: the node's Prometheus exposition (text format 0.0.4), through
//! the `prometheus` crate.
//!
//! The real MLNode (G-METRICS, schema v1) exports `gonka_metrics_schema_info`,
//! `mlnode_version_info`, `mlnode_config_info`, per-GPU `mlnode_gpu_*` series and the
//! vLLM replicas' own `vllm:*` series labelled by `replica`. The simulator answers the
//! same families from its state, plus its own under `mlnode_sim_*`: requests per
//! endpoint, method and status, faults injected per kind, and per-replica PoC progress.
//!
//! The request counter lives as long as the [`crate::Sim`] (it is counted in the one
//! middleware); every other family is a snapshot built at scrape time, so an idle node
//! keeps no metric state and runs no timer.

use mlnode_protocol::vllm_args::{self, VllmOption};
use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::node::Node;
use crate::transport::Faults;

/// The schema version `gonka_metrics_schema_info` reports.
pub const SCHEMA_VERSION: &str = "1";

/// The content type of the answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One request counter: its labels and its count.
#[derive(Debug, Clone)]
struct Counted {
    port: &'static str,
    endpoint: String,
    method: String,
    status: u16,
    count: u64,
}

/// Counters that outlive a scrape.
///
/// Requests are counted in a small map keyed by the route template's address (axum
/// shares one `Arc<str>` per route, so the address names the route), the method and the
/// status: three integers to hash per request. Going through the `prometheus` crate's
/// label lookup (four strings hashed, a read lock, an `Arc` clone) per request cost a
/// measurable share of `/pow/status`; the crate renders the counters at scrape time.
/// The map hashes with foldhash: the keys are our own integers, not attacker-chosen
/// strings, so SipHash's flooding resistance buys nothing here.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: std::sync::Mutex<RequestCounts>,
    /// Requests that came with a version segment, by port and version (at most
    /// [`MAX_VERSIONS`] distinct versions; the rest counted as `other`).
    versions: std::sync::Mutex<std::collections::BTreeMap<(&'static str, String), u64>>,
}

/// Distinct version labels kept: a client cannot grow the metrics without bound.
pub const MAX_VERSIONS: usize = 64;

/// (route address, route length ^ method, port, status) → its counter.
type RequestCounts =
    std::collections::HashMap<(usize, usize, u8, u16), Counted, foldhash::fast::FixedState>;

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one answered request. `endpoint` is the route template (`/api/v1/x/{id}`),
    /// so ids do not explode the label set.
    pub fn observe(
        &self,
        port: crate::port::Port,
        endpoint: &str,
        method: &axum::http::Method,
        status: u16,
    ) {
        let (port_id, port) = match port {
            crate::port::Port::Poc => (0, "poc"),
            crate::port::Port::Inference => (1, "inference"),
        };
        let key = (
            endpoint.as_ptr() as usize,
            endpoint.len() ^ method_bit(method),
            port_id,
            status,
        );
        let mut g = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        g.entry(key)
            .or_insert_with(|| Counted {
                port,
                endpoint: endpoint.to_owned(),
                method: method.as_str().to_owned(),
                status,
                count: 0,
            })
            .count += 1;
    }

    /// Count one request that came with the version segment `version`.
    pub fn observe_version(&self, port: crate::port::Port, version: &str) {
        let port = match port {
            crate::port::Port::Poc => "poc",
            crate::port::Port::Inference => "inference",
        };
        let mut g = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let key = (port, version.to_owned());
        if let Some(n) = g.get_mut(&key) {
            *n += 1;
            return;
        }
        let key = if g.len() >= MAX_VERSIONS {
            (port, "other".to_owned())
        } else {
            key
        };
        *g.entry(key).or_insert(0) += 1;
    }

    /// The version-prefix counter family.
    fn versions_family(&self) -> Result<IntCounterVec, prometheus::Error> {
        let v = IntCounterVec::new(
            Opts::new(
                "mlnode_sim_version_prefix_requests_total",
                "Requests that came with a version segment before the route (as the network node sends them), by port and version.",
            ),
            &["port", "version"],
        )?;
        let g = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        for ((port, version), n) in g.iter() {
            v.with_label_values(&[*port, version.as_str()]).inc_by(*n);
        }
        Ok(v)
    }

    /// The request counter family, rendered from the map.
    fn requests_family(&self) -> Result<IntCounterVec, prometheus::Error> {
        let v = IntCounterVec::new(
            Opts::new(
                "mlnode_sim_requests_total",
                "HTTP requests answered, by port, route template, method and status.",
            ),
            &["port", "endpoint", "method", "status"],
        )?;
        let g = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for c in g.values() {
            let mut buf = itoa_buf();
            v.with_label_values(&[
                c.port,
                &c.endpoint,
                &c.method,
                fmt_status(c.status, &mut buf),
            ])
            .inc_by(c.count);
        }
        Ok(v)
    }

    /// The exposition text for `node` with `faults`' injection counts.
    pub fn render(&self, node: &Node, faults: &Faults) -> Result<String, prometheus::Error> {
        let reg = Registry::new();
        reg.register(Box::new(self.requests_family()?))?;
        reg.register(Box::new(self.versions_family()?))?;

        let info = |name: &str, help: &str, labels: &[(&str, &str)]| {
            let keys: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
            let vals: Vec<&str> = labels.iter().map(|(_, v)| *v).collect();
            let g = IntGaugeVec::new(Opts::new(name, help), &keys)?;
            g.with_label_values(&vals).set(1);
            reg.register(Box::new(g))
        };
        info(
            "gonka_metrics_schema_info",
            "Metrics schema version.",
            &[("version", SCHEMA_VERSION)],
        )?;
        info(
            "mlnode_version_info",
            "MLNode API version.",
            &[("version", &node.cfg.version)],
        )?;

        let deploy = node.deploy_view();
        if let Some(d) = &deploy {
            let arg = |flag: &str| {
                d.args
                    .iter()
                    .position(|a| a == flag)
                    .and_then(|i| d.args.get(i + 1))
                    .cloned()
                    .unwrap_or_default()
            };
            // Numeric labels as the node's argument reader sees them ("" when absent).
            let int = |opt| {
                vllm_args::int_value(&d.args, opt, node.cfg.arg_rule)
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            let replicas = d.replicas.len().to_string();
            info(
                "mlnode_config_info",
                "The running deploy (empty value: the argument was not passed).",
                &[
                    ("model_name", &d.model),
                    ("dtype", &arg("--dtype")),
                    ("replicas", &replicas),
                    ("max_num_seqs", &arg("--max-num-seqs")),
                    ("max_model_len", &int(VllmOption::MaxModelLen)),
                    ("tensor_parallel_size", &int(VllmOption::TensorParallelSize)),
                    (
                        "pipeline_parallel_size",
                        &int(VllmOption::PipelineParallelSize),
                    ),
                ],
            )?;
        }

        let gpu = ["gpu_index", "gpu_model"];
        let used = GaugeVec::new(
            Opts::new("mlnode_gpu_memory_used_bytes", "VRAM in use."),
            &gpu,
        )?;
        let free = GaugeVec::new(
            Opts::new("mlnode_gpu_memory_free_bytes", "VRAM free."),
            &gpu,
        )?;
        let temp = GaugeVec::new(
            Opts::new("mlnode_gpu_temp_core_celsius", "GPU core temperature."),
            &gpu,
        )?;
        for d in node.gpu_devices() {
            let idx = d.index.to_string();
            let l = [idx.as_str(), d.name.as_str()];
            let mb = |v: Option<u64>| v.unwrap_or(0) as f64 * 1024.0 * 1024.0;
            used.with_label_values(&l).set(mb(d.used_memory_mb));
            free.with_label_values(&l).set(mb(d.free_memory_mb));
            if let Some(t) = d.temperature_c {
                temp.with_label_values(&l).set(f64::from(t));
            }
        }
        for g in [used, free, temp] {
            reg.register(Box::new(g))?;
        }

        if let Some(d) = &deploy {
            let vl = ["model_name", "replica"];
            let running = IntGaugeVec::new(
                Opts::new(
                    "vllm:num_requests_running",
                    "Requests running on the replica.",
                ),
                &vl,
            )?;
            let waiting = IntGaugeVec::new(
                Opts::new(
                    "vllm:num_requests_waiting",
                    "Requests waiting on the replica.",
                ),
                &vl,
            )?;
            let rl = ["replica"];
            let healthy = IntGaugeVec::new(
                Opts::new(
                    "mlnode_sim_replica_healthy",
                    "1 when the proxy sees the replica healthy.",
                ),
                &rl,
            )?;
            let generating = IntGaugeVec::new(
                Opts::new("mlnode_sim_pow_generating", "1 while the replica mines."),
                &rl,
            )?;
            let processed = IntGaugeVec::new(
                Opts::new(
                    "mlnode_sim_pow_nonces_processed",
                    "Nonces mined in the replica's current session.",
                ),
                &rl,
            )?;
            for r in &d.replicas {
                let i = r.index.to_string();
                running
                    .with_label_values(&[&d.model, &i])
                    .set(r.jobs_running as i64);
                waiting
                    .with_label_values(&[&d.model, &i])
                    .set(r.jobs_queued as i64);
                healthy.with_label_values(&[&i]).set(i64::from(r.healthy));
                generating
                    .with_label_values(&[&i])
                    .set(i64::from(r.generating));
                processed
                    .with_label_values(&[&i])
                    .set(i64::try_from(r.nonces_processed).unwrap_or(i64::MAX));
            }
            for g in [running, waiting, healthy, generating, processed] {
                reg.register(Box::new(g))?;
            }
        }

        let injected = IntCounterVec::new(
            Opts::new(
                "mlnode_sim_faults_injected_total",
                "Transport faults injected, by kind.",
            ),
            &["kind"],
        )?;
        for (kind, n) in faults.injected() {
            injected.with_label_values(&[kind]).inc_by(n);
        }
        reg.register(Box::new(injected))?;
        let scale = prometheus::Gauge::new(
            "mlnode_sim_time_scale",
            "Simulated seconds per wall second.",
        )?;
        scale.set(node.clock.scale());
        reg.register(Box::new(scale))?;

        let mut out = Vec::new();
        TextEncoder::new().encode(&reg.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// A high bit per method, so a second method on one route gets its own entry.
fn method_bit(m: &axum::http::Method) -> usize {
    use axum::http::Method;
    let i = [
        Method::GET,
        Method::POST,
        Method::DELETE,
        Method::PUT,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ]
    .iter()
    .position(|x| x == m)
    .unwrap_or(7);
    1 << (56 + i)
}

type StatusBuf = [u8; 3];

fn itoa_buf() -> StatusBuf {
    [b'0'; 3]
}

/// An HTTP status as three ASCII digits without allocating (every status is 100..=999).
fn fmt_status(status: u16, buf: &mut StatusBuf) -> &str {
    let s = status.clamp(100, 999);
    buf[0] = b'0' + (s / 100) as u8;
    buf[1] = b'0' + (s / 10 % 10) as u8;
    buf[2] = b'0' + (s % 10) as u8;
    std::str::from_utf8(buf).unwrap_or("000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_digits() {
        let mut b = itoa_buf();
        assert_eq!(fmt_status(503, &mut b), "503");
        assert_eq!(fmt_status(200, &mut b), "200");
        assert_eq!(fmt_status(42, &mut b), "100");
    }
}
