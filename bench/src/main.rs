//! `mlnode-bench`: the system-level benchmarks of BENCHMARKS.md, each taken side by side
//! with its baseline in the same run, as medians of several runs with min and max.
//!
//! Build everything in release first: `cargo build --release --bins`, then run
//! `target/release/mlnode-bench` (it starts `mlnode-sim`, `mlnode-validate` from the same
//! directory). Servers are pinned to core 0 with `taskset`, the load generator to core 1.

use mlnode_protocol::paths;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::response::IntoResponse;
use clap::{Parser, Subcommand};
use mlnode_protocol::vectors::Round;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(name = "mlnode-bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Seconds per load measurement.
    #[arg(long, default_value_t = 5.0, global = true)]
    seconds: f64,
    /// Runs per figure (median, min, max).
    #[arg(long, default_value_t = 3, global = true)]
    runs: usize,
    /// Write the table of ratios into this file between its
    /// `<!-- mlnode-bench:table:start/end -->` markers (BENCHMARKS.md).
    #[arg(long, global = true)]
    write_table: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything (default).
    All,
    /// 1. /pow/status with 4 replicas mining vs a bare axum "hello".
    Status,
    /// 2. Validation throughput (1,000 and 10,000 artifacts per request).
    Validation,
    /// 4. A validate-only run of the 200-vector MiniMax reference: wall time and peak RSS.
    Validator,
    /// 5. Simulator RSS before and after 1,000,000 mixed requests.
    Memory {
        #[arg(long, default_value_t = 1_000_000)]
        requests: u64,
    },
    /// 6. The accelerated drill matrix over every scenario.
    Matrix,
    /// Item 7, fleets: one mlnode-sim process with N nodes (start-up, RSS, idle CPU), and one
    /// fleet validation over them (wall, peak RSS) against one node's run.
    Fleet {
        #[arg(long, value_delimiter = ',', default_values_t = [100u32, 1000])]
        nodes: Vec<u32>,
        /// Seconds of idle CPU measurement.
        #[arg(long, default_value_t = 10.0)]
        idle_seconds: f64,
        #[arg(long, default_value_t = 8)]
        jobs: u32,
    },
    /// Item 8, `--compat testermint`: N distinct Hosts in one mock (creation wall and
    /// RSS) against the same requests to one Host.
    Testermint {
        #[arg(long, default_value_t = 10_000)]
        hosts: u32,
    },
    /// (internal) serve a bare axum hello on 127.0.0.1:0.
    HelloServer,
    /// (internal) serve the minimal artifact endpoint (the validation baseline) on
    /// 127.0.0.1:0.
    ArtifactServer,
}

fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::current_exe()?
        .parent()
        .context("no exe dir")?
        .to_path_buf();
    let p = dir.join(name);
    if !p.exists() {
        bail!(
            "{} not found: run `cargo build --release --bins` first",
            p.display()
        );
    }
    Ok(p)
}

fn pinned(core: u32, program: &Path) -> Command {
    if Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("/usr/bin/taskset");
        c.arg("-c").arg(core.to_string()).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A server child that prints its URL first; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(mut cmd: Command) -> anyhow::Result<Server> {
    use std::io::BufRead;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let out = child.stdout.take().context("stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    let url = line.trim().trim_start_matches("http://").to_owned();
    Ok(Server {
        child,
        addr: url
            .parse()
            .with_context(|| format!("bad first line {line:?}"))?,
    })
}

fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>())
        })
        .context("no VmRSS")?
        .map_err(Into::into)
}

/// Closed-loop HTTP/1.1 keep-alive load: `conns` connections, each sending `request`
/// and reading the whole response, until `dur` is over. Returns completed responses.
async fn load(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    conns: usize,
    dur: Duration,
) -> anyhow::Result<u64> {
    load_many(&[addr], requests, conns, dur).await
}

/// [`load`] spread over several servers: connection `c` talks to `addrs[c % len]`.
async fn load_many(
    addrs: &[SocketAddr],
    requests: Arc<Vec<Vec<u8>>>,
    conns: usize,
    dur: Duration,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let requests = requests.clone();
        let addr = addrs[c % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            let mut buf = vec![0u8; 1 << 16];
            let mut done = 0u64;
            let mut i = c;
            while Instant::now() < deadline {
                s.write_all(&requests[i % requests.len()]).await?;
                i += 1;
                // Read the head, then Content-Length bytes of body.
                let mut have = 0usize;
                let (head_end, len) = loop {
                    let n = s.read(&mut buf[have..]).await?;
                    if n == 0 {
                        anyhow::bail!("server closed the connection");
                    }
                    have += n;
                    if let Some(p) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = std::str::from_utf8(&buf[..p]).unwrap_or("");
                        if !head.starts_with("HTTP/1.1 2") {
                            anyhow::bail!("non-2xx answer: {}", head.lines().next().unwrap_or(""));
                        }
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())
                                    .flatten()
                            })
                            .unwrap_or(0);
                        break (p + 4, len);
                    }
                    if have == buf.len() {
                        buf.resize(buf.len() * 2, 0);
                    }
                };
                let mut body = have - head_end;
                while body < len {
                    let want = (len - body).min(buf.len());
                    let n = s.read(&mut buf[..want]).await?;
                    if n == 0 {
                        anyhow::bail!("short body");
                    }
                    body += n;
                }
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
}

fn post(path: &str, body: &Value) -> Vec<u8> {
    let b = body.to_string();
    format!("POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()).into_bytes()
}

/// Median, min, max.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn show(name: &str, unit: &str, (med, min, max): (f64, f64, f64)) -> Value {
    println!("{name:<58} median {med:>12.1} {unit}  (min {min:.1}, max {max:.1})");
    json!({"name": name, "unit": unit, "median": med, "min": min, "max": max})
}

/// How a ratio is read against its target.
#[derive(Clone, Copy)]
enum Goal {
    /// ratio = ours / baseline in %, at least this.
    PercentAtLeast(f64),
    /// ratio = baseline / ours (× better), at least this.
    TimesAtLeast(f64),
    /// ratio = ours / baseline (×), at most this.
    TimesAtMost(f64),
}

/// One row of the BENCHMARKS.md table: ours against its baseline measured in the same
/// run, the ratio from the medians (or the median of per-round ratios when given), and
/// whether the target holds.
fn pair(
    what: &str,
    unit: &str,
    ours: (f64, f64, f64),
    baseline_name: &str,
    baseline: (f64, f64, f64),
    per_round_ratio: Option<(f64, f64, f64)>,
    goal: Goal,
) -> Value {
    let (ratio, shown, met, target) = match goal {
        Goal::PercentAtLeast(t) => {
            let r = per_round_ratio.map_or(100.0 * ours.0 / baseline.0, |r| r.0);
            (r, format!("{r:.1} %"), r >= t, format!("≥ {t} %"))
        }
        Goal::TimesAtLeast(t) => {
            let r = per_round_ratio.map_or(baseline.0 / ours.0, |r| r.0);
            (r, format!("{r:.1}× better"), r >= t, format!("≥ {t}×"))
        }
        Goal::TimesAtMost(t) => {
            let r = per_round_ratio.map_or(ours.0 / baseline.0, |r| r.0);
            (r, format!("{r:.2}×"), r <= t, format!("≤ {t}×"))
        }
    };
    json!({"pair": true, "what": what, "unit": unit,
        "ours": ours.0, "ours_min": ours.1, "ours_max": ours.2,
        "baseline_name": baseline_name, "baseline": baseline.0,
        "ratio": ratio, "ratio_text": shown, "target": target, "met": met})
}

/// The markdown table of every pair, stamped with the machine and the date.
fn table(results: &[Value], which: &str, runs: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    // Not available_parallelism: the bench runs pinned to one core.
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let mut t = format!(
        "Generated by `mlnode-bench {which} --runs {runs}` on {date}: {cores} cores, {cpu}. \
         Medians of {runs} rounds (min–max); servers pinned to core 0, the load generator to core 1.\n\n\
         | what | ours | baseline (same run) | ours / baseline | target | |\n|---|---|---|---|---|---|\n"
    );
    for r in results.iter().filter(|r| r["pair"] == true) {
        let n = |k: &str| human(r[k].as_f64().unwrap_or(f64::NAN));
        t.push_str(&format!(
            "| {} | **{} {}** ({}–{}) | {}: {} {} | {} | {} | {} |\n",
            r["what"].as_str().unwrap_or(""),
            n("ours"),
            r["unit"].as_str().unwrap_or(""),
            n("ours_min"),
            n("ours_max"),
            r["baseline_name"].as_str().unwrap_or(""),
            n("baseline"),
            r["unit"].as_str().unwrap_or(""),
            r["ratio_text"].as_str().unwrap_or(""),
            r["target"].as_str().unwrap_or(""),
            if r["met"] == true { "✅" } else { "❌" },
        ));
    }
    t
}

/// 1.8 M, 52.5 k, 11.3: a figure as a reader takes it in.
fn human(x: f64) -> String {
    if x.abs() >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x.abs() >= 1e4 {
        format!("{:.1} k", x / 1e3)
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

const TABLE_START: &str = "<!-- mlnode-bench:table:start -->";
const TABLE_END: &str = "<!-- mlnode-bench:table:end -->";

/// Replace the table between the markers in `path` (BENCHMARKS.md).
fn write_table(path: &Path, table: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (Some(a), Some(b)) = (text.find(TABLE_START), text.find(TABLE_END)) else {
        bail!(
            "{} has no {TABLE_START} ... {TABLE_END} markers",
            path.display()
        );
    };
    let out = format!("{}{TABLE_START}\n{table}{}", &text[..a], &text[b..]);
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

fn sim_cmd(scenario: &Path) -> anyhow::Result<Command> {
    let mut c = pinned(0, &bin("mlnode-sim")?);
    c.args(["--port", "0", "--config"]).arg(scenario);
    Ok(c)
}

fn scenario_file(dir: &Path, name: &str, toml: &str) -> anyhow::Result<PathBuf> {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, toml)?;
    Ok(p)
}

const MODEL: &str = "Qwen/Qwen3-32B-FP8";

/// Start a simulator with 4 replicas mining, `extra` flags, and `auth` sent on the init.
async fn mining_sim(cfg: &Path, extra: &[&str], auth: Option<&str>) -> anyhow::Result<Server> {
    let mut cmd = sim_cmd(cfg)?;
    cmd.args(extra);
    let sim = start(cmd)?;
    let init = json!({"block_hash": "B", "block_height": 1, "public_key": "K", "node_id": 0, "node_count": 1, "params": {"model": MODEL, "seq_len": 1024}});
    let mut req = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/inference/pow/init/generate",
            sim.addr
        ))
        .json(&init);
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    let v: Value = req.send().await?.json().await?;
    if v["backends"] != 4 {
        bail!("expected 4 mining replicas: {v}");
    }
    Ok(sim)
}

/// Per-round ratios `100 · a / b`.
fn ratios(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    stats(a.iter().zip(b).map(|(a, b)| 100.0 * a / b).collect())
}

async fn bench_status(cli: &Cli, tmp: &Path) -> anyhow::Result<Vec<Value>> {
    let cfg = scenario_file(
        tmp,
        "status",
        &format!("name = \"bench-status\"\n[node]\nreplicas = 4\ndeployed_model = \"{MODEL}\"\n"),
    )?;
    let (mut sim_rates, mut hello_rates) = (Vec::new(), Vec::new());
    let (mut prefix_rates, mut auth_rates) = (Vec::new(), Vec::new());
    let dur = Duration::from_secs_f64(cli.seconds);
    let versioned = format!("/v3.0.8{}", paths::POW_STATUS);
    for _ in 0..cli.runs {
        let sim = mining_sim(&cfg, &[], None).await?;
        let n = load(sim.addr, Arc::new(vec![get(paths::POW_STATUS)]), 64, dur).await?;
        sim_rates.push(n as f64 / cli.seconds);
        // The network node's form: the same route behind one version segment.
        let n = load(sim.addr, Arc::new(vec![get(&versioned)]), 64, dur).await?;
        prefix_rates.push(n as f64 / cli.seconds);
        drop(sim);
        // Behind a gateway token: every request carries and is checked for it.
        let sim = mining_sim(&cfg, &["--auth-token", "bench-token"], Some("bench-token")).await?;
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer bench-token\r\n\r\n",
            paths::POW_STATUS
        )
        .into_bytes();
        let n = load(sim.addr, Arc::new(vec![req]), 64, dur).await?;
        auth_rates.push(n as f64 / cli.seconds);
        drop(sim);
        let mut h = pinned(0, &std::env::current_exe()?);
        h.arg("hello-server");
        let hello = start(h)?;
        let n = load(hello.addr, Arc::new(vec![get("/")]), 64, dur).await?;
        hello_rates.push(n as f64 / cli.seconds);
    }
    let s = stats(sim_rates.clone());
    let h = stats(hello_rates.clone());
    let ratio = ratios(&sim_rates, &hello_rates);
    let p = stats(prefix_rates.clone());
    let a = stats(auth_rates.clone());
    Ok(vec![
        show(
            "1. GET /pow/status, 4 replicas mining (1 server core)",
            "req/s",
            s,
        ),
        show(
            "1. baseline: bare axum \"hello\" (1 server core)",
            "req/s",
            h,
        ),
        show("1. ratio status/hello (target >= 75 %)", "%", ratio),
        show(
            "1. GET /v3.0.8/.../pow/status (version segment)",
            "req/s",
            p,
        ),
        show(
            "1. GET /pow/status with a bearer token (--auth-token)",
            "req/s",
            a,
        ),
        pair(
            "`GET /pow/status`, 4 replicas mining, 64 conns",
            "req/s",
            s,
            "bare axum hello, same runtime",
            h,
            Some(ratio),
            Goal::PercentAtLeast(75.0),
        ),
        pair(
            "`GET /v3.0.8/api/v1/inference/pow/status` (the network node's form)",
            "req/s",
            p,
            "the same route without the segment, same server",
            s,
            Some(ratios(&prefix_rates, &sim_rates)),
            Goal::PercentAtLeast(95.0),
        ),
        pair(
            "`GET /pow/status` behind `--auth-token` (bearer checked per request)",
            "req/s",
            a,
            "the same route without a token",
            s,
            Some(ratios(&auth_rates, &sim_rates)),
            Goal::PercentAtLeast(95.0),
        ),
    ])
}

fn validation_body(n: usize) -> Value {
    let round = Round::new(MODEL, 1024, 12, "BENCH_BLOCK", "bench_key");
    let artifacts: Vec<Value> = (0..n as i64)
        .map(|i| json!({"nonce": i, "vector_b64": round.vector(i, false).encode()}))
        .collect();
    json!({"block_hash": "BENCH_BLOCK", "block_height": 1, "public_key": "bench_key", "node_id": 0, "node_count": 1,
           "nonces": (0..n as i64).collect::<Vec<_>>(), "params": {"model": MODEL, "seq_len": 1024, "k_dim": 12},
           "batch_size": 64, "wait": true, "validation": {"artifacts": artifacts},
           "stat_test": {"dist_threshold": 0.02, "p_mismatch": 0.001, "fraud_threshold": 0.01}})
}

async fn bench_validation(cli: &Cli, tmp: &Path) -> anyhow::Result<Vec<Value>> {
    // No simulated compute time: this measures the simulator's own CPU cost.
    let cfg = scenario_file(tmp, "validation", &format!("name = \"bench-validation\"\n[node]\ndeployed_model = \"{MODEL}\"\n[faults]\ngenerate_delay_seconds = 0.0\n"))?;
    let mut out = Vec::new();
    for n in [1_000usize, 10_000] {
        let body = validation_body(n);
        let req = Arc::new(vec![post(paths::POW_GENERATE, &body)]);
        let (mut rates, mut base_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..cli.runs {
            let mut bc = pinned(0, &std::env::current_exe()?);
            bc.arg("artifact-server");
            let base = start(bc)?;
            let done = load(
                base.addr,
                req.clone(),
                2,
                Duration::from_secs_f64(cli.seconds),
            )
            .await?;
            let base_rate = done as f64 * n as f64 / cli.seconds;
            base_rates.push(base_rate);
            drop(base);
            let sim = start(sim_cmd(&cfg)?)?;
            // Check the answer once: every artifact matches.
            let v: Value = reqwest::Client::new()
                .post(format!("http://{}/api/v1/inference/pow/generate", sim.addr))
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            if v["n_total"] != n || v["n_mismatch"] != 0 {
                bail!("unexpected verdict: {v}");
            }
            let done = load(
                sim.addr,
                req.clone(),
                2,
                Duration::from_secs_f64(cli.seconds),
            )
            .await?;
            let rate = done as f64 * n as f64 / cli.seconds;
            rates.push(rate);
            ratios.push(rate / base_rate * 100.0);
        }
        out.push(show(
            &format!("2. validation, {n} artifacts/request (1 server core)"),
            "artifacts/s",
            stats(rates.clone()),
        ));
        out.push(show(
            &format!("2. baseline: minimal artifact endpoint, {n} artifacts/request"),
            "artifacts/s",
            stats(base_rates.clone()),
        ));
        let ratio = stats(ratios);
        out.push(show(
            &format!("2. ... simulator as % of the minimal endpoint, {n}/request (target >= 80)"),
            "%",
            ratio,
        ));
        out.push(pair(
            &format!("validation, `wait=true`, {n} artifacts/request"),
            "artifacts/s",
            stats(rates.clone()),
            "minimal artifact endpoint",
            stats(base_rates.clone()),
            Some(ratio),
            Goal::PercentAtLeast(80.0),
        ));
    }
    Ok(out)
}

async fn bench_validator(cli: &Cli, tmp: &Path) -> anyhow::Result<Vec<Value>> {
    let model = "MiniMaxAI/MiniMax-M2.7";
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../artifacts/minimaxai-minimax-m2.7.json")
        .canonicalize()
        .context("the shipped MiniMax reference")?;
    // The node answers at once: this measures the validator's own cost.
    let cfg = scenario_file(tmp, "validator", &format!("name = \"bench-validator\"\n[node]\ndeployed_model = \"{model}\"\n[faults]\ngenerate_delay_seconds = 0.0\n"))?;
    let sim = start(sim_cmd(&cfg)?)?;
    let url = format!("http://{}", sim.addr);
    let validate = bin("mlnode-validate")?;
    let runs = against_python(cli, tmp, "200", &validate, &url, model, &reference)?;
    let mut out = Vec::from(wall_and_rss(
        "`mlnode-validate` validate-only, 200-vector MiniMax reference, zero-delay node: wall",
        "... peak RSS",
        "python3 + requests, same exchange",
        &runs,
    ));
    let [ours_ms, ours_mb, py_ms, py_mb] = runs;
    out.extend([
        show(
            "4. validate-only run, 200-vector MiniMax reference: wall",
            "ms",
            stats(ours_ms),
        ),
        show("4. validate-only run: peak RSS", "MB", stats(ours_mb)),
        show(
            "4. baseline: python3 + requests, same exchange: wall",
            "ms",
            stats(py_ms),
        ),
        show(
            "4. baseline: python3 + requests: peak RSS",
            "MB",
            stats(py_mb),
        ),
    ]);
    out.extend(process_floors(cli, &validate)?);
    out.extend(bench_validator_20k(cli, tmp).await?);
    Ok(out)
}

/// `mlnode-validate` validate-only with `reference` against `python3` + `requests` doing
/// the same exchange ([`PY_CLIENT`]), alternating so that a slow moment of the machine hits
/// both sides: walls (ms) and peak RSS (MB), ours then python's.
fn against_python(
    cli: &Cli,
    tmp: &Path,
    tag: &str,
    validate: &Path,
    url: &str,
    model: &str,
    reference: &Path,
) -> anyhow::Result<[Vec<f64>; 4]> {
    let reference = reference.to_str().context("path")?;
    let py_path = tmp.join("client.py");
    std::fs::write(&py_path, PY_CLIENT)?;
    let python = Path::new("/usr/bin/env");
    let mut out: [Vec<f64>; 4] = Default::default();
    for i in 0..cli.runs.max(5) {
        let exp = tmp.join(format!("exp-{tag}-{i}"));
        let (w, r, code, text) = timed(
            validate,
            &[
                "--mlnode-url",
                url,
                "--model",
                model,
                "--reference",
                reference,
                "--skip-download",
                "--skip-deploy",
                "--skip-throughput",
                "--progress",
                "never",
                "--exp-dir",
                exp.to_str().context("path")?,
            ],
        )?;
        if code != 0 {
            bail!("mlnode-validate ({tag}) exited {code}: {text}");
        }
        out[0].push(w);
        out[1].push(r);
        let (w, r, code, text) = timed(
            python,
            &["python3", py_path.to_str().context("path")?, url, reference],
        )?;
        if code != 0 || text.trim() != "0" {
            bail!("python client ({tag}) exited {code}: {text}");
        }
        out[2].push(w);
        out[3].push(r);
    }
    Ok(out)
}

/// What each side pays before any work: `mlnode-validate --version` (exec, dynamic
/// loading, the runtime, argument parsing) against `python3 -c "import requests"`. The
/// run's ratios cannot beat these; the difference between a floor and its run is the
/// run's own work.
fn process_floors(cli: &Cli, validate: &Path) -> anyhow::Result<Vec<Value>> {
    let python = Path::new("/usr/bin/env");
    let mut runs: [Vec<f64>; 4] = Default::default();
    for _ in 0..cli.runs.max(5) {
        let (w, r, code, _) = timed(validate, &["--version"])?;
        if code != 0 {
            bail!("mlnode-validate --version exited {code}");
        }
        runs[0].push(w);
        runs[1].push(r);
        let (w, r, code, _) = timed(python, &["python3", "-c", "import requests"])?;
        if code != 0 {
            bail!("python3 -c 'import requests' exited {code}");
        }
        runs[2].push(w);
        runs[3].push(r);
    }
    Ok(Vec::from(wall_and_rss(
        "... the floors: `mlnode-validate --version`: wall",
        "... the floors: peak RSS",
        "`python3 -c \"import requests\"`",
        &runs,
    )))
}

/// The two rows of one ours-against-python comparison, from [`against_python`]'s order
/// (our walls, our peak RSS, python's walls, python's peak RSS): the wall (target 50×
/// less) and the peak RSS (target 5× less).
fn wall_and_rss(wall: &str, rss: &str, baseline: &str, runs: &[Vec<f64>; 4]) -> [Value; 2] {
    let [ours_ms, ours_mb, py_ms, py_mb] = runs;
    [
        pair(
            wall,
            "ms",
            stats(ours_ms.clone()),
            baseline,
            stats(py_ms.clone()),
            None,
            Goal::TimesAtLeast(50.0),
        ),
        pair(
            rss,
            "MB",
            stats(ours_mb.clone()),
            baseline,
            stats(py_mb.clone()),
            None,
            Goal::TimesAtLeast(5.0),
        ),
    ]
}

/// A program under `/usr/bin/time -v`: (wall ms, peak RSS MB, exit code, stdout).
fn timed(program: &Path, args: &[&str]) -> anyhow::Result<(f64, f64, i32, String)> {
    let mut c = Command::new("/usr/bin/time");
    c.arg("-v").arg(program).args(args);
    let t0 = Instant::now();
    let o = c.output()?;
    let wall = t0.elapsed().as_secs_f64() * 1000.0;
    let err = String::from_utf8_lossy(&o.stderr);
    let rss = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .context("no peak RSS from /usr/bin/time")?
        .trim()
        .parse::<f64>()?
        / 1024.0;
    Ok((
        wall,
        rss,
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    ))
}

/// The floor any Python client pays: import `requests`, read the reference, send the
/// same validation request, read the verdict.
const PY_CLIENT: &str = r#"
import json, sys, requests
ref = json.load(open(sys.argv[2]))
body = {"block_hash": ref["block_hash"], "block_height": 100, "public_key": ref["public_key"],
        "node_id": 0, "node_count": 1, "nonces": [a["nonce"] for a in ref["artifacts"]],
        "params": {"model": ref["model"], "seq_len": ref["seq_len"], "k_dim": ref["k_dim"]},
        "wait": True, "validation": {"artifacts": ref["artifacts"]}}
r = requests.post(sys.argv[1] + "/api/v1/inference/pow/generate", json=body, timeout=600)
v = r.json()
assert v["n_total"] == len(ref["artifacts"]) and v["fraud_detected"] is False, v
print(v["n_mismatch"])
"#;

/// 4b. Validate-only at 20,000 vectors (a generated reference the node answers honestly):
/// `mlnode-validate` against `python3` + `requests` doing the same exchange, alternating.
async fn bench_validator_20k(cli: &Cli, tmp: &Path) -> anyhow::Result<Vec<Value>> {
    let n = 20_000i64;
    let round = Round::new(MODEL, 1024, 12, "BENCH_20K", "bench_key");
    let reference = json!({"model": MODEL, "seq_len": 1024, "k_dim": 12,
        "block_hash": "BENCH_20K", "public_key": "bench_key",
        "artifacts": (0..n).map(|i| json!({"nonce": i, "vector_b64": round.vector(i, false).encode()})).collect::<Vec<_>>()});
    let ref_path = tmp.join("bench-20k.json");
    std::fs::write(&ref_path, serde_json::to_string(&reference)?)?;
    let cfg = scenario_file(tmp, "validator20k", &format!("name = \"bench-validator-20k\"\n[node]\ndeployed_model = \"{MODEL}\"\nreference_backed = false\n[faults]\ngenerate_delay_seconds = 0.0\n"))?;
    let sim = start(sim_cmd(&cfg)?)?;
    let url = format!("http://{}", sim.addr);
    let validate = bin("mlnode-validate")?;
    let runs = against_python(cli, tmp, "20k", &validate, &url, MODEL, &ref_path)?;
    // The floor under both walls: the node answering the same request, sent from this
    // process over a warm connection (no process start, no client work but the send).
    let body = json!({"block_hash": "BENCH_20K", "block_height": 100, "public_key": "bench_key",
        "node_id": 0, "node_count": 1, "nonces": (0..n).collect::<Vec<_>>(),
        "params": {"model": MODEL, "seq_len": 1024, "k_dim": 12}, "wait": true,
        "validation": {"artifacts": reference["artifacts"]}});
    let bytes = serde_json::to_vec(&body)?;
    let http = reqwest::Client::new();
    let mut node_ms = Vec::new();
    for _ in 0..cli.runs.max(5) + 1 {
        let t0 = Instant::now();
        let v: Value = http
            .post(format!("{url}{}", paths::POW_GENERATE))
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await?
            .json()
            .await?;
        node_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        if v["n_total"] != n || v["n_mismatch"] != 0 {
            bail!("unexpected verdict at 20k vectors: {v}");
        }
    }
    node_ms.remove(0); // the first one opened the connection
    let [wall, rss] = wall_and_rss(
        "`mlnode-validate` validate-only, 20,000 vectors (generated reference), zero-delay node: wall",
        "... peak RSS",
        "python3 + requests, same exchange",
        &runs,
    );
    let [ours_ms, ours_mb, py_ms, py_mb] = runs;
    let (om, pm) = (stats(ours_ms.clone()).0, stats(py_ms.clone()).0);
    let (or, pr) = (stats(ours_mb.clone()).0, stats(py_mb.clone()).0);
    let one = |name: &str, unit: &str, x: f64| show(name, unit, (x, x, x));
    Ok(vec![
        wall,
        pair(
            "... the node alone answering that request (in-process client): wall",
            "ms",
            stats(node_ms.clone()),
            "python3 + requests",
            stats(py_ms.clone()),
            None,
            Goal::TimesAtLeast(50.0),
        ),
        rss,
        pair(
            "... peak RSS against the absolute target",
            "MB",
            stats(ours_mb.clone()),
            "target",
            (12.0, 12.0, 12.0),
            None,
            Goal::TimesAtMost(1.0),
        ),
        show(
            "4b. mlnode-validate validate-only, 20,000 vectors: wall",
            "ms",
            stats(ours_ms),
        ),
        show(
            "4b. baseline: python3 + requests, same exchange: wall",
            "ms",
            stats(py_ms),
        ),
        one("4b. ... python wall / ours (target >= 50)", "x", pm / om),
        show(
            "4b. mlnode-validate, 20,000 vectors: peak RSS (target <= 12)",
            "MB",
            stats(ours_mb),
        ),
        show(
            "4b. baseline: python3 + requests: peak RSS",
            "MB",
            stats(py_mb),
        ),
        one("4b. ... python RSS / ours (target >= 5)", "x", pr / or),
    ])
}

async fn bench_memory(tmp: &Path, requests: u64) -> anyhow::Result<Vec<Value>> {
    let cfg = scenario_file(tmp, "memory", &format!("name = \"bench-memory\"\n[node]\nreplicas = 4\ndeployed_model = \"{MODEL}\"\n[faults]\ngenerate_delay_seconds = 0.0\n"))?;
    let sim = start(sim_cmd(&cfg)?)?;
    // An idle node: queued jobs would be retained for the real 300 s TTL (retention,
    // not a leak), and wait=true behind a mining session would hit the 60 s proxy timeout.
    let gen = json!({"block_hash": "B2", "block_height": 1, "public_key": "K", "node_id": 0, "node_count": 1, "nonces": (0..32).collect::<Vec<i64>>(),
                     "params": {"model": MODEL, "seq_len": 1024}, "wait": true});
    let reqs = Arc::new(vec![
        get(paths::POW_STATUS),
        get(paths::STATE),
        get(paths::UP_STATUS),
        post(paths::MODELS_STATUS, &json!({"hf_repo": MODEL})),
        get("/health"),
        get(paths::VERSIONS),
        post(paths::POW_GENERATE, &gen),
        get(paths::MODELS_LIST),
    ]);
    load(sim.addr, reqs.clone(), 8, Duration::from_secs(2)).await?;
    let before = rss_kb(sim.child.id())? as f64 / 1024.0;
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < requests {
        sent += load(sim.addr, reqs.clone(), 8, Duration::from_secs(2)).await?;
    }
    let after = rss_kb(sim.child.id())? as f64 / 1024.0;
    println!(
        "5. {sent} mixed requests in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(vec![
        show("5. simulator RSS before", "MB", (before, before, before)),
        show(
            &format!("5. simulator RSS after {sent} mixed requests"),
            "MB",
            (after, after, after),
        ),
        show(
            "5. growth (target <= 5 MB; total <= 30 MB)",
            "MB",
            (after - before, after - before, after - before),
        ),
    ])
}

async fn bench_matrix(cli: &Cli, tmp: &Path) -> anyhow::Result<Vec<Value>> {
    use clap::Parser as _;
    let mut walls = Vec::new();
    for run in 0..cli.runs {
        let t0 = Instant::now();
        for s in mlnode_sim::fixtures::all_scenarios()? {
            let e = s.expect.clone().context("expect")?;
            let exp = tmp.join(format!("m{run}-{}", s.name));
            let args = mlnode_validator::ValidateArgs::try_parse_from(
                [
                    "mlnode-validate",
                    "--mlnode-url",
                    &format!("sim:{}", s.name),
                    "--model",
                    &e.model,
                    "--time-scale",
                    "2000",
                    "--download-timeout",
                    "600",
                    "--deploy-timeout",
                    "600",
                    "--exp-dir",
                    exp.to_str().context("path")?,
                ]
                .into_iter()
                .map(str::to_owned)
                .chain(e.args.iter().cloned()),
            )?;
            let (console, _) = mlnode_validator::console::Console::buffer();
            let o = mlnode_validator::run(args, console, std::future::pending()).await;
            if o.exit_code != e.exit_code {
                bail!("{}: exit {} != {}", s.name, o.exit_code, e.exit_code);
            }
        }
        walls.push(t0.elapsed().as_secs_f64());
    }
    Ok(vec![show(
        &format!(
            "6. drill matrix, {} scenarios (target < 30 s)",
            mlnode_sim::fixtures::SCENARIOS.len()
        ),
        "s",
        stats(walls),
    )])
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::HelloServer) = cli.cmd {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return std::thread::spawn(move || {
            rt.block_on(async {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                println!("http://{}", l.local_addr()?);
                std::io::stdout().flush()?;
                axum::serve(
                    l,
                    axum::Router::new().route("/", axum::routing::get(|| async { "hello" })),
                )
                .await?;
                anyhow::Ok(())
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("hello server panicked"))?;
    }
    if let Some(Cmd::ArtifactServer) = cli.cmd {
        return serve_blocking(minimal_artifact_app());
    }
    // The load generator runs on core 1, the servers on core 0.
    if std::env::var_os("MLNODE_BENCH_PINNED").is_none() && Path::new("/usr/bin/taskset").exists() {
        let status = Command::new("/usr/bin/taskset")
            .arg("-c")
            .arg("1")
            .arg(std::env::current_exe()?)
            .args(std::env::args().skip(1))
            .env("MLNODE_BENCH_PINNED", "1")
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let tmp = tempfile::tempdir()?;
    let mut results = Vec::new();
    let which = cli.cmd.as_ref().map_or("all", |c| match c {
        Cmd::All => "all",
        Cmd::Status => "status",
        Cmd::Validation => "validation",
        Cmd::Validator => "validator",
        Cmd::Memory { .. } => "memory",
        Cmd::Matrix => "matrix",
        Cmd::Fleet { .. } => "fleet",
        Cmd::Testermint { .. } => "testermint",
        Cmd::HelloServer | Cmd::ArtifactServer => unreachable!(),
    });
    let requests = match cli.cmd {
        Some(Cmd::Memory { requests }) => requests,
        _ => 1_000_000,
    };
    if matches!(which, "all" | "status") {
        results.extend(bench_status(&cli, tmp.path()).await?);
    }
    if matches!(which, "all" | "validation") {
        results.extend(bench_validation(&cli, tmp.path()).await?);
    }
    if matches!(which, "all" | "validator") {
        results.extend(bench_validator(&cli, tmp.path()).await?);
    }
    if matches!(which, "all" | "memory") {
        results.extend(bench_memory(tmp.path(), requests).await?);
    }
    if matches!(which, "all" | "matrix") {
        results.extend(bench_matrix(&cli, tmp.path()).await?);
    }
    if matches!(which, "all" | "fleet") {
        let (nodes, idle, jobs) = match &cli.cmd {
            Some(Cmd::Fleet {
                nodes,
                idle_seconds,
                jobs,
            }) => (nodes.clone(), *idle_seconds, *jobs),
            _ => (vec![100, 1000], 10.0, 8),
        };
        for n in nodes {
            results.extend(bench_fleet(&cli, tmp.path(), n, idle, jobs).await?);
        }
    }
    if matches!(which, "all" | "testermint") {
        let hosts = match &cli.cmd {
            Some(Cmd::Testermint { hosts }) => *hosts,
            _ => 10_000,
        };
        results.extend(bench_testermint(&cli, hosts).await?);
    }
    let t = table(&results, which, cli.runs);
    println!("\n{t}");
    if let Some(path) = &cli.write_table {
        write_table(path, &t)?;
    }
    println!("{}", serde_json::to_string(&json!({"results": results}))?);
    Ok(())
}

/// `GET /api/v1/state` once per Host name in `hosts`, over 16 keep-alive connections:
/// the wall time.
async fn state_per_host(addr: SocketAddr, hosts: Arc<Vec<String>>) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..16usize {
        let hosts = hosts.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for h in hosts.iter().skip(c).step_by(16) {
                let r = http
                    .get(format!("http://{addr}/api/v1/state"))
                    .header("host", h)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("{h}: HTTP {}", r.status());
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Item 8: N Hosts in one `--compat testermint` process (the network's MultiNodeTests
/// puts 101 on one mock): creating them, against the same N requests to one Host, and
/// the RSS with N Hosts against the RSS with one.
async fn bench_testermint(cli: &Cli, n: u32) -> anyhow::Result<Vec<Value>> {
    let (mut many_wall, mut one_wall, mut many_rss, mut one_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let names: Arc<Vec<String>> = Arc::new(
        (0..n)
            .map(|i| format!("ml-{i:05}.genesis.test:8080"))
            .collect(),
    );
    let same: Arc<Vec<String>> = Arc::new(vec!["ml-0.genesis.test:8080".to_owned(); n as usize]);
    let mock = || -> anyhow::Result<Server> {
        let mut c = pinned(0, &bin("mlnode-sim")?);
        c.args(["--compat", "testermint", "--port", "0", "--max-hosts"])
            .arg((n + 1).to_string());
        start(c)
    };
    for _ in 0..cli.runs {
        let s = mock()?;
        one_wall.push(state_per_host(s.addr, same.clone()).await?);
        one_rss.push(rss_kb(s.child.id())? as f64 / 1024.0);
        drop(s);
        let s = mock()?;
        many_wall.push(state_per_host(s.addr, names.clone()).await?);
        many_rss.push(rss_kb(s.child.id())? as f64 / 1024.0);
    }
    let (mw, ow, mr, or) = (
        stats(many_wall),
        stats(one_wall),
        stats(many_rss),
        stats(one_rss),
    );
    Ok(vec![
        show(
            &format!("8. testermint: {n} Hosts created (one request each)"),
            "s",
            mw,
        ),
        show(
            &format!("8. baseline: the same {n} requests to one Host"),
            "s",
            ow,
        ),
        show(&format!("8. testermint: RSS with {n} Hosts"), "MB", mr),
        show("8. baseline: RSS with one Host", "MB", or),
        pair(
            &format!("`--compat testermint`: {n} distinct Hosts, first request each"),
            "s",
            mw,
            &format!("the same {n} requests to one Host"),
            ow,
            None,
            Goal::TimesAtMost(1.5),
        ),
        pair(
            &format!("`--compat testermint`: RSS holding {n} Hosts"),
            "MB",
            mr,
            "RSS after as many requests to one Host",
            or,
            None,
            Goal::TimesAtMost(2.0),
        ),
    ])
}

/// Serve `app` on 127.0.0.1:0 on a multi-thread runtime (the simulator's runtime
/// config), printing the URL first.
fn serve_blocking(app: axum::Router) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("http://{}", l.local_addr()?);
            std::io::stdout().flush()?;
            axum::serve(l, app).await?;
            anyhow::Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("server panicked"))?
}

/// The validation baseline: what any server answering `POST .../pow/generate` with a
/// verdict must do at least — parse the same body into the same wire type, decode every
/// vector and take one f16 L2 against a precomputed vector (through the same
/// allocation-free `judge_b64_f32` the simulator uses, so the two differ only in what the
/// simulator adds), the binomial test, the same JSON answer — and nothing of the
/// simulator (no node state, no reference lookup, no vector generation, no journal, no
/// middleware).
fn minimal_artifact_app() -> axum::Router {
    use mlnode_protocol::wire::{GenerateRequest, ValidationResult};
    let expected = Arc::new(
        Round::new(MODEL, 1024, 12, "BENCH_BLOCK", "bench_key")
            .vector(0, false)
            .to_f32(),
    );
    axum::Router::new().route(
        paths::POW_GENERATE,
        axum::routing::post(move |body: axum::body::Bytes| {
            let expected = expected.clone();
            async move {
                let req: GenerateRequest = match serde_json::from_slice(&body) {
                    Ok(r) => r,
                    Err(e) => {
                        return (axum::http::StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
                            .into_response()
                    }
                };
                let o = req.stat_test.clone().unwrap_or_default();
                let d = mlnode_protocol::SERVER_DEFAULTS;
                let (p_mismatch, fraud_threshold) = (
                    o.p_mismatch.unwrap_or(d.p_mismatch),
                    o.fraud_threshold.unwrap_or(d.fraud_threshold),
                );
                let arts = req.validation.map(|v| v.artifacts).unwrap_or_default();
                // The outcome is computed and kept (black_box) but, against one vector
                // for all nonces, not counted: a mismatch is an undecodable vector only,
                // so the answer is the simulator's (every artifact matches).
                let mut mismatch = Vec::new();
                for (nonce, b64) in arts.iter() {
                    match mlnode_protocol::mismatch::judge_b64_f32(&expected, b64, 0.2) {
                        Ok(outcome) => {
                            std::hint::black_box(outcome);
                        }
                        Err(_) => mismatch.push(nonce),
                    }
                }
                let n = arts.len() as u64;
                let verdict = mlnode_protocol::fraud_test(
                    mismatch.len() as u64,
                    n,
                    p_mismatch,
                    fraud_threshold,
                )
                .unwrap_or(mlnode_protocol::FraudVerdict {
                    p_value: 1.0,
                    fraud_detected: false,
                });
                axum::Json(ValidationResult {
                    n_total: n,
                    n_mismatch: mismatch.len() as u64,
                    mismatch_nonces: mismatch,
                    p_value: verdict.p_value,
                    fraud_detected: verdict.fraud_detected,
                })
                .into_response()
            }
        }),
    )
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = s.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).context("utime")?.parse::<f64>()? + f.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// `mlnode-validate --inventory FILE` under /usr/bin/time: (wall s, peak RSS MB, exit).
fn validate_fleet(inv: &Path, exp: &Path, jobs: u32) -> anyhow::Result<(f64, f64, i32)> {
    let mut c = Command::new("/usr/bin/time");
    c.arg("-v")
        .arg(bin("mlnode-validate")?)
        .arg("--inventory")
        .arg(inv)
        .args([
            "--time-scale",
            "1000",
            "--skip-download",
            "--progress",
            "never",
            "--jobs",
        ])
        .arg(jobs.to_string())
        .arg("--exp-dir")
        .arg(exp);
    let t0 = Instant::now();
    let o = c.output()?;
    let wall = t0.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&o.stderr);
    let rss = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .context("no peak RSS from /usr/bin/time")?
        .trim()
        .parse::<f64>()?
        / 1024.0;
    Ok((wall, rss, o.status.code().unwrap_or(-1)))
}

/// Runs `f` when dropped (a child to kill on every exit path).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct G<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for G<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    G(Some(f))
}

/// Start mining (4 replicas) on every node of `addrs`, a few requests at a time.
async fn mine_all(addrs: &[SocketAddr]) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let body = json!({"block_hash": "B", "block_height": 1, "public_key": "p", "node_id": 0,
        "node_count": 1, "params": {"model": MODEL, "seq_len": 128}});
    for chunk in addrs.chunks(32) {
        let calls = chunk.iter().map(|a| {
            http.post(format!("http://{a}{}", paths::POW_INIT_GENERATE))
                .json(&body)
                .send()
        });
        for r in futures_util::future::join_all(calls).await {
            let r = r?;
            if !r.status().is_success() {
                bail!("init/generate answered {}", r.status());
            }
        }
    }
    Ok(())
}

/// Aggregate `/pow/status` over a fleet of `n` mining nodes in one process against one
/// mining node alone, the same number of connections, alternating rounds.
async fn bench_fleet_status(cli: &Cli, n: u32) -> anyhow::Result<Vec<Value>> {
    let sim = bin("mlnode-sim")?;
    let common = [
        "--port",
        "0",
        "--replicas",
        "4",
        "--deployed-model",
        MODEL,
        "--journal-size",
        "0",
    ];
    let fleet_inv = tempfile::NamedTempFile::new()?;
    let mut fleet = pinned(0, &sim);
    fleet
        .args(common)
        .args(["--nodes", &n.to_string(), "--inventory-out"])
        .arg(fleet_inv.path());
    // stdout is not read: a fleet prints one URL per node, the inventory has them all.
    let mut fleet = fleet.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    // The inventory is written once every node listens.
    let t0 = Instant::now();
    let addrs: Vec<SocketAddr> = loop {
        if let Ok(text) = std::fs::read_to_string(fleet_inv.path()) {
            if let Ok(inv) = mlnode_protocol::node_config::NodeConfig::parse(&text) {
                break inv
                    .0
                    .iter()
                    .filter_map(|e| format!("{}:{}", e.host, e.poc_port).parse().ok())
                    .collect();
            }
        }
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("fleet inventory not written in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut single = pinned(0, &sim);
    single.args(common);
    let single = start(single)?;
    let _stop = scopeguard(move || {
        let _ = fleet.kill();
        let _ = fleet.wait();
    });
    mine_all(&addrs).await?;
    mine_all(&[single.addr]).await?;
    let conns = (n as usize).clamp(1, 256);
    let req = Arc::new(vec![get(paths::POW_STATUS)]);
    let dur = Duration::from_secs_f64(cli.seconds);
    let (mut agg, mut one, mut ratio, mut first) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..cli.runs {
        let o = load(single.addr, req.clone(), conns, dur).await? as f64 / cli.seconds;
        let a = load_many(&addrs, req.clone(), conns, dur).await? as f64 / cli.seconds;
        // Diagnostic: the same process, every connection to its first node (is the gap
        // the process or the spreading?).
        let f = load(addrs[0], req.clone(), conns, dur).await? as f64 / cli.seconds;
        one.push(o);
        agg.push(a);
        first.push(f);
        ratio.push(a / o * 100.0);
    }
    show(
        &format!("7. (diagnostic) fleet process, all {conns} conns to its first node"),
        "req/s",
        stats(first),
    );
    Ok(vec![
        show(
            &format!("7. /pow/status, 1 node x 4 replicas mining, {conns} conns"),
            "req/s",
            stats(one.clone()),
        ),
        show(
            &format!("7. /pow/status across {n} nodes x 4 replicas, {conns} conns"),
            "req/s",
            stats(agg.clone()),
        ),
        show(
            "7. ... fleet aggregate as % of one node (target >= 80)",
            "%",
            stats(ratio.clone()),
        ),
        pair(
            &format!(
                "`GET /pow/status` across {n} nodes × 4 replicas in one process, {conns} conns"
            ),
            "req/s",
            stats(agg),
            "one node alone, same conns",
            stats(one),
            Some(stats(ratio)),
            Goal::PercentAtLeast(80.0),
        ),
    ])
}

/// The baseline of one process per node: start `sample` single-node processes, measure
/// start-up (all listening), total RSS and idle CPU, and extrapolate to `n`.
fn bench_separate_processes(
    n: u32,
    sample: u32,
    idle_seconds: f64,
) -> anyhow::Result<(Vec<Value>, [f64; 3])> {
    let sim = bin("mlnode-sim")?;
    let t0 = Instant::now();
    let mut servers = Vec::new();
    for _ in 0..sample {
        let mut c = pinned(0, &sim);
        c.args([
            "--port",
            "0",
            "--replicas",
            "4",
            "--deployed-model",
            MODEL,
            "--time-scale",
            "1000",
        ]);
        servers.push(start(c)?);
    }
    let startup = t0.elapsed().as_secs_f64();
    let rss: f64 = servers
        .iter()
        .map(|s| rss_kb(s.child.id()).unwrap_or(0) as f64 / 1024.0)
        .sum();
    let c0: f64 = servers
        .iter()
        .map(|s| cpu_seconds(s.child.id()).unwrap_or(0.0))
        .sum();
    std::thread::sleep(Duration::from_secs_f64(idle_seconds));
    let c1: f64 = servers
        .iter()
        .map(|s| cpu_seconds(s.child.id()).unwrap_or(0.0))
        .sum();
    let k = f64::from(n) / f64::from(sample);
    let one_figure = |name: &str, unit: &str, x: f64| show(name, unit, (x, x, x));
    let figures = [startup * k, rss * k, (c1 - c0) / idle_seconds * 100.0 * k];
    Ok((
        vec![
            one_figure(
                &format!("7. baseline: {sample} processes x 1 node: start-up, x{k:.0} -> {n}"),
                "s",
                startup * k,
            ),
            one_figure(
                &format!("7. baseline: {sample} processes: RSS, x{k:.0} -> {n}"),
                "MB",
                rss * k,
            ),
            one_figure(
                &format!(
                "7. baseline: {sample} processes: idle CPU over {idle_seconds} s, x{k:.0} -> {n}"
            ),
                "% core",
                (c1 - c0) / idle_seconds * 100.0 * k,
            ),
        ],
        figures,
    ))
}

/// 7. A fleet of `n` honest nodes in one simulator process, validated in one command.
async fn bench_fleet(
    cli: &Cli,
    tmp: &Path,
    n: u32,
    idle_seconds: f64,
    jobs: u32,
) -> anyhow::Result<Vec<Value>> {
    let sample = n.min(50);
    let (mut out, [sep_start, sep_rss, _]) = bench_separate_processes(n, sample, idle_seconds)?;
    out.extend(bench_fleet_status(cli, n).await?);
    let (v, [start, rss, wall, budget]) = bench_fleet_validation(tmp, n, idle_seconds, jobs)?;
    out.extend(v);
    let one = |x: f64| (x, x, x);
    let base = format!("{sample} processes × {}", n / sample);
    out.push(pair(
        &format!("{n} nodes × 4 replicas in one process: start-up"),
        "s",
        one(start),
        &base,
        one(sep_start),
        None,
        Goal::TimesAtLeast(1.0),
    ));
    out.push(pair(
        &format!("{n} nodes × 4 replicas in one process: RSS"),
        "MB",
        one(rss),
        &base,
        one(sep_rss),
        None,
        Goal::TimesAtLeast(1.0),
    ));
    out.push(pair(
        &format!("`mlnode-validate --inventory`, {n} nodes, `--jobs {jobs}`: wall"),
        "s",
        one(wall),
        &format!("one node's wall × ⌈{n}/{jobs}⌉"),
        one(budget),
        None,
        Goal::TimesAtMost(2.0),
    ));
    Ok(out)
}

/// Item 7: the fleet in one process (start-up, RSS, idle CPU), and its validation in one
/// command against one node's.
fn bench_fleet_validation(
    tmp: &Path,
    n: u32,
    idle_seconds: f64,
    jobs: u32,
) -> anyhow::Result<(Vec<Value>, [f64; 4])> {
    let inv = tmp.join(format!("fleet-{n}.json"));
    let t0 = Instant::now();
    let mut child = pinned(0, &bin("mlnode-sim")?)
        .args([
            "--port",
            "0",
            "--time-scale",
            "1000",
            "--replicas",
            "4",
            "--deployed-model",
            MODEL,
            "--nodes",
        ])
        .arg(n.to_string())
        .arg("--inventory-out")
        .arg(&inv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    while !inv.exists() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            bail!("{n} nodes did not start in 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let startup = t0.elapsed().as_secs_f64();
    let pid = child.id();
    let rss = rss_kb(pid)? as f64 / 1024.0;
    let c0 = cpu_seconds(pid)?;
    std::thread::sleep(Duration::from_secs_f64(idle_seconds));
    let idle_pct = (cpu_seconds(pid)? - c0) / idle_seconds * 100.0;
    // Baseline: one node of the same fleet, alone.
    let all: Value = serde_json::from_str(&std::fs::read_to_string(&inv)?)?;
    let one = tmp.join(format!("fleet-{n}-one.json"));
    std::fs::write(&one, serde_json::to_string(&json!([all[0].clone()]))?)?;
    let (one_wall, one_rss, code) = validate_fleet(&one, &tmp.join(format!("f{n}-one")), jobs)?;
    if code != 0 {
        bail!("one-node fleet validation exited {code}");
    }
    let (wall, fleet_rss, code) = validate_fleet(&inv, &tmp.join(format!("f{n}")), jobs)?;
    let _ = child.kill();
    let _ = child.wait();
    if code != 0 {
        bail!("{n}-node fleet validation exited {code}");
    }
    let budget = one_wall * f64::from(n.div_ceil(jobs));
    let one_figure = |name: &str, unit: &str, x: f64| show(name, unit, (x, x, x));
    let figures = [startup, rss, wall, budget];
    Ok((
        vec![
            one_figure(
                &format!("7. sim, {n} nodes x 4 replicas: start-up"),
                "s",
                startup,
            ),
            one_figure(&format!("7. sim, {n} nodes: RSS"), "MB", rss),
            one_figure(
                &format!("7. sim, {n} nodes: idle CPU over {idle_seconds} s"),
                "% core",
                idle_pct,
            ),
            one_figure("7. validate --inventory, 1 node: wall", "s", one_wall),
            one_figure(
                &format!("7. validate --inventory, {n} nodes, --jobs {jobs}: wall"),
                "s",
                wall,
            ),
            one_figure(
                &format!("7. ... ratio to 1-node wall x ceil({n}/{jobs}) (target <= 2)"),
                "x",
                wall / budget,
            ),
            one_figure(
                &format!("7. validate --inventory, {n} nodes: peak RSS (1 node: {one_rss:.1} MB)"),
                "MB",
                fleet_rss,
            ),
        ],
        figures,
    ))
}
