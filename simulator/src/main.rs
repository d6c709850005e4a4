//! `mlnode-sim`: serve a simulated MLNode. A thin shell over the `mlnode_sim` library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use mlnode_sim::fixtures;

/// A simulated Gonka MLNode (PoC v2): the node's HTTP API without a GPU.
#[derive(Debug, Parser)]
#[command(name = "mlnode-sim", version = mlnode_support::cli::LONG_VERSION, args_conflicts_with_subcommands = true,
    after_help = "Exit codes: 0 stopped by SIGINT/SIGTERM (or a listing printed); 1 usage error or cannot start (bind, files, TLS).")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind; 0 picks one. The bound URL is printed on stdout as the first line.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// A shipped scenario name (see --list-scenarios) or a path to a scenario TOML file.
    #[arg(long)]
    scenario: Option<String>,
    /// A TOML config file in the scenario format ([node], [faults]); flags win over it.
    #[arg(long, conflicts_with = "scenario")]
    config: Option<PathBuf>,
    /// vLLM instances (default: GPUs / (tp·pp) of the deploy, as the node computes it).
    #[arg(long)]
    replicas: Option<u32>,
    /// GPUs on the simulated host.
    #[arg(long)]
    gpus: Option<u32>,
    /// Seed for every random choice of the scenario.
    #[arg(long)]
    seed: Option<u64>,
    /// Hardware profile (see --list-profiles).
    #[arg(long)]
    profile: Option<String>,
    /// A repo already in the simulated HF cache (repeatable).
    #[arg(long = "cached-model")]
    cached_models: Vec<String>,
    /// Start with this model deployed and running.
    #[arg(long)]
    deployed_model: Option<String>,
    /// Download speed in GB per simulated second.
    #[arg(long)]
    download_gb_per_s: Option<f64>,
    /// Simulated seconds from /inference/up to ready.
    #[arg(long)]
    deploy_seconds: Option<f64>,
    /// The node's default PoC batch size.
    #[arg(long)]
    default_batch_size: Option<u32>,
    /// Simulated seconds per wall second (e.g. 100 makes a 60 s deploy take 0.6 s).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Request body limit in bytes (413 above it).
    #[arg(long)]
    body_limit: Option<usize>,
    /// Directory of golden references whose vectors the node serves (default: artifacts/).
    #[arg(long)]
    references: Option<PathBuf>,
    /// Do not serve reference vectors; use only the generator.
    #[arg(long)]
    no_reference_backed: bool,
    /// Mount the admin API under /sim/v1/ (scenarios, faults, replica health, journal).
    #[arg(long)]
    admin: bool,
    /// Token required on every admin call (Authorization: Bearer <token> or X-Admin-Token).
    #[arg(long, requires = "admin")]
    admin_token: Option<String>,
    /// Allow the admin API without --admin-token on an address other than loopback
    /// (anyone who can reach the port can then load scenarios and inject faults).
    #[arg(long, requires = "admin")]
    admin_insecure: bool,
    /// Connections served at once (default: sized from the open-file limit).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Seconds a client has to send a complete request head.
    #[arg(long, default_value_t = 10.0)]
    header_read_timeout: f64,
    /// The node's own version (`version` in /api/v1/state, /api/v1/versions and
    /// metrics). Clients may put any one version segment before a route
    /// (`/v3.0.8/api/v1/state`): it is stripped as the host's nginx does.
    #[arg(long, value_name = "VERSION")]
    node_version: Option<String>,
    /// How the node reads tensor/pipeline parallel sizes from vLLM args: `newest`
    /// (aliases -tp/-pp, --x=v, _ folded, the last wins) or `shipped` (the 3.0.x images:
    /// exact token, first occurrence). Decides the replica count of a deploy.
    #[arg(long, value_enum)]
    arg_rule: Option<ArgRuleFlag>,
    /// Serve GET /api/v1/encrypted/identity with a deterministic X25519 key (from the
    /// seed) and open HPKE envelopes on /api/v1/encrypted/chat/completions; without
    /// it both answer 503 as a node without a key provider does.
    #[arg(long)]
    encrypted_identity: bool,
    /// Require `Authorization: Bearer TOKEN` on every route (401 JSON otherwise), as the
    /// gateway of a managed endpoint does (the MLNode itself checks none); /readyz is the
    /// health probe clients use in that mode. /sim/v1/* keeps --admin-token. Never printed.
    #[arg(
        long,
        env = "MLNODE_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    auth_token: Option<String>,
    /// Serve TLS on both ports with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// mTLS: clients must present a certificate signed by this PEM CA bundle (a client
    /// without one, or with a foreign one, is refused at the handshake).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Colour in logs: auto (terminal and no NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Write the node served in the operators' node-config format (`[{id, host,
    /// inference_port, poc_port, max_concurrent, models}]`), for `mlnode-validate
    /// --inventory FILE`.
    #[arg(long)]
    inventory_out: Option<PathBuf>,
    /// The node id (single node) written by --inventory-out and listed by /sim/v1/nodes.
    #[arg(long, default_value = "node1")]
    node_id: String,
    /// Serve many nodes in one process from a fleet file (TOML `[[group]]`s: scenario,
    /// count, id_prefix, seed, deployed_model, replicas); one listener per node, from
    /// --port upward (or each chosen by the OS with --port 0), one URL per line.
    #[arg(long, conflicts_with_all = ["scenario", "config", "nodes"])]
    fleet: Option<PathBuf>,
    /// Serve N independent nodes, each with the scenario and flags given, seeds derived
    /// from --seed.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    nodes: Option<u32>,
    /// Serve every node of --nodes/--fleet on ONE listener (--port), each request going to
    /// the node its `Host` header names (`Host: node-0007:8080`), as the network's test
    /// mock keys nodes; --inventory-out then lists each node with its id as host name
    /// (resolve those names to this machine, e.g. with the test net's DNS rewrite).
    #[arg(long, conflicts_with_all = ["inference_port", "tls_cert"])]
    host_routing: bool,
    /// Serve the inference port (the OpenAI-compatible compat proxy, `inference_port`
    /// in node-config) on its own listener: this port (a fleet counts upward from it;
    /// 0 = chosen by the OS). Without it the PoC port's `/v1` routes serve inference.
    #[arg(long)]
    inference_port: Option<u16>,
    /// Request journal capacity (0 = off).
    #[arg(long, default_value_t = mlnode_sim::journal::DEFAULT_CAPACITY)]
    journal_size: usize,
    /// Replay a recording (`mlnode-sim record --out DIR`): the same answers in the same
    /// order per method and path, 501 for what was never recorded, waits scaled by
    /// --time-scale.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["scenario", "config", "fleet", "nodes"])]
    replay: Option<PathBuf>,
    /// Serve as a drop-in for another mock: `testermint` is the network's
    /// integration-test mock (inference-mock-server): every distinct Host header is a
    /// node (STOPPED at first sight) on this one port, with its control API
    /// (/api/v1/responses/*), real PoC vectors and verdicts. Node flags do not apply;
    /// --time-scale scales its webhook and chat delays, --seed its fraud draws.
    #[arg(long, value_enum, value_name = "MOCK", env = "MLNODE_SIM_COMPAT", conflicts_with_all = ["scenario", "config", "fleet", "nodes", "replay", "admin"])]
    compat: Option<Compat>,
    /// (--compat testermint) serve GET /files/<path> from this directory (the
    /// incumbent's /app/files/__files).
    #[arg(long, value_name = "DIR", requires = "compat")]
    files_dir: Option<PathBuf>,
    /// (--compat testermint) distinct Host values served; a new Host past it is refused
    /// with a 503 that says so.
    #[arg(long, default_value_t = mlnode_sim::testermint::DEFAULT_MAX_HOSTS as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_hosts: u64,
    /// Print the OpenAPI 3.1 document of the PoC port (or, with `inference`, of the
    /// inference port) and exit.
    #[arg(long, value_enum, value_name = "PORT", num_args = 0..=1, default_missing_value = "poc")]
    openapi: Option<DocPort>,
    /// List the shipped scenarios and exit.
    #[arg(long)]
    list_scenarios: bool,
    /// List the hardware profiles and exit.
    #[arg(long)]
    list_profiles: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Probe a running simulator (for container health checks, no curl in the image):
    /// exit 0 when URL answers 2xx within the timeout, 1 otherwise.
    Healthcheck {
        /// What to probe (`/status` for --compat testermint).
        #[arg(long, default_value = "http://127.0.0.1:8080/livez")]
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
    },
    /// A recording proxy in front of a real node: every exchange (method, path, body,
    /// status, answer, timing) goes to DIR/session.jsonl in order, secrets (auth headers)
    /// left out. Prints its URL first on stdout.
    Record {
        /// The node to record, e.g. http://10.0.0.5:8080.
        #[arg(long)]
        upstream: String,
        /// Directory for session.jsonl (created).
        #[arg(long)]
        out: PathBuf,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to bind; 0 picks one.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DocPort {
    Poc,
    Inference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Compat {
    /// testermint's Ktor inference-mock-server.
    Testermint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ArgRuleFlag {
    Newest,
    Shipped,
}

impl From<ArgRuleFlag> for mlnode_protocol::vllm_args::ArgRule {
    fn from(r: ArgRuleFlag) -> Self {
        match r {
            ArgRuleFlag::Newest => Self::Newest,
            ArgRuleFlag::Shipped => Self::Shipped,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl From<Color> for mlnode_sim::ColorChoice {
    fn from(c: Color) -> Self {
        match c {
            Color::Auto => mlnode_sim::ColorChoice::Auto,
            Color::Always => mlnode_sim::ColorChoice::Always,
            Color::Never => mlnode_sim::ColorChoice::Never,
        }
    }
}

/// Whether `host` only accepts connections from this machine.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One error prefix for every binary, the cause chain on one line, no backtrace for a
/// user error.
fn main() {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ERROR: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run()) {
        eprintln!("ERROR: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    mlnode_support::cli::generate_and_exit_if_asked(Cli::command);
    let cli = mlnode_support::cli::parse_or_exit::<Cli>();
    mlnode_sim::init_logging("info", cli.color.into());
    if cli.admin && cli.admin_token.is_none() && !is_loopback(&cli.host) && !cli.admin_insecure {
        anyhow::bail!(
            "--admin on {} without --admin-token: anyone who reaches the port could load scenarios \
             and inject faults. Give --admin-token TOKEN, bind 127.0.0.1, or pass --admin-insecure",
            cli.host
        );
    }
    if !(cli.header_read_timeout.is_finite()
        && cli.header_read_timeout > 0.0
        && cli.header_read_timeout <= 3600.0)
    {
        anyhow::bail!(
            "--header-read-timeout must be in (0, 3600] seconds, got {}",
            cli.header_read_timeout
        );
    }
    if let Some(Command::Healthcheck { url, timeout }) = &cli.command {
        if !(timeout.is_finite() && *timeout > 0.0 && *timeout <= 3600.0) {
            anyhow::bail!("--timeout must be in (0, 3600] seconds, got {timeout}");
        }
        let r = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs_f64(*timeout))
            .build()?
            .get(url)
            .send()
            .await
            .with_context(|| format!("{url}: no answer"))?;
        if !r.status().is_success() {
            anyhow::bail!("{url}: HTTP {}", r.status().as_u16());
        }
        println!("{url}: HTTP {}", r.status().as_u16());
        return Ok(());
    }
    if let Some(Command::Record {
        upstream,
        out,
        host,
        port,
    }) = &cli.command
    {
        if !(upstream.starts_with("http://") || upstream.starts_with("https://")) {
            anyhow::bail!("--upstream must be an http(s) URL, got '{upstream}'");
        }
        let rec = mlnode_sim::session::Recorder::new(upstream, out)?;
        let listener = tokio::net::TcpListener::bind((host.as_str(), *port))
            .await
            .with_context(|| format!("cannot bind {host}:{port}"))?;
        println!("http://{}", listener.local_addr()?);
        tracing::info!(upstream, out = %out.display(), "recording");
        mlnode_sim::serve_router(
            listener,
            mlnode_sim::session::record_app(rec),
            mlnode_sim::ServeLimits::default(),
            shutdown_signal(),
        )
        .await?;
        return Ok(());
    }
    if let Some(dir) = &cli.replay {
        let session = mlnode_sim::session::load(dir)?;
        let scale = cli.time_scale.unwrap_or(1.0);
        if !(scale.is_finite() && scale > 0.0) {
            anyhow::bail!("--time-scale must be > 0, got {scale}");
        }
        let n = session.len();
        let listener = tokio::net::TcpListener::bind((cli.host.as_str(), cli.port))
            .await
            .with_context(|| format!("cannot bind {}:{}", cli.host, cli.port))?;
        println!("http://{}", listener.local_addr()?);
        tracing::info!(dir = %dir.display(), exchanges = n, time_scale = scale, "replaying");
        mlnode_sim::serve_router(
            listener,
            mlnode_sim::session::replay_app(mlnode_sim::session::Replayer::new(session, scale)),
            mlnode_sim::ServeLimits::default(),
            shutdown_signal(),
        )
        .await?;
        return Ok(());
    }
    if let Some(Compat::Testermint) = cli.compat {
        let scale = cli.time_scale.unwrap_or(1.0);
        if !(scale.is_finite() && scale > 0.0) {
            anyhow::bail!("--time-scale must be > 0, got {scale}");
        }
        if let Some(d) = cli.files_dir.as_ref().filter(|d| !d.is_dir()) {
            // The network's extra mock containers mount no files: serve 404s, as the
            // incumbent does, rather than refuse to start.
            tracing::warn!(dir = %d.display(), "--files-dir is not a directory (yet): GET /files/* answers 404 until it exists");
        }
        let mock = mlnode_sim::testermint::Mock::new(mlnode_sim::testermint::MockOptions {
            time_scale: scale,
            seed: cli.seed.unwrap_or(42),
            files_dir: cli.files_dir.clone(),
            max_hosts: cli.max_hosts as usize,
            ..mlnode_sim::testermint::MockOptions::default()
        });
        let listener = tokio::net::TcpListener::bind((cli.host.as_str(), cli.port))
            .await
            .with_context(|| format!("cannot bind {}:{}", cli.host, cli.port))?;
        println!("http://{}", listener.local_addr()?);
        tracing::info!(addr = %listener.local_addr()?, key_name = %mock.opts.key_name,
            max_hosts = cli.max_hosts, "mlnode-sim listening as testermint's inference-mock-server");
        mlnode_sim::testermint::serve(
            listener,
            mock,
            mlnode_sim::ServeLimits::default(),
            shutdown_signal(),
        )
        .await?;
        return Ok(());
    }
    if let Some(port) = cli.openapi {
        let doc = match port {
            DocPort::Poc => mlnode_sim::openapi::poc_port(),
            DocPort::Inference => mlnode_sim::openapi::inference_port(),
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if cli.list_scenarios {
        for s in fixtures::all_scenarios()? {
            println!("{:<28} {}", s.name, s.description);
        }
        return Ok(());
    }
    if cli.list_profiles {
        for p in fixtures::profiles()? {
            println!(
                "{:<26} {:>6.0} nonces/min  {}×{}  ({})",
                p.name, p.nonces_per_min, p.gpus_per_instance, p.gpu, p.source
            );
        }
        return Ok(());
    }
    let mut cfg = match (&cli.scenario, &cli.config) {
        (Some(s), _) => fixtures::load_scenario(s)?.node,
        (None, Some(path)) => fixtures::load_scenario(&path.display().to_string())?.node,
        (None, None) => mlnode_sim::NodeConfig::default(),
    };
    if let Some(v) = cli.replicas {
        cfg.replicas = Some(v);
    }
    if let Some(v) = cli.gpus {
        cfg.gpus = Some(v);
    }
    if let Some(v) = cli.seed {
        cfg.seed = v;
    }
    if let Some(v) = cli.profile {
        cfg.profile = v;
    }
    cfg.cached_models.extend(cli.cached_models);
    if let Some(v) = cli.deployed_model {
        cfg.deployed_model = Some(v);
    }
    if let Some(v) = cli.download_gb_per_s {
        cfg.download_gb_per_s = v;
    }
    if let Some(v) = cli.deploy_seconds {
        cfg.deploy_seconds = v;
    }
    if let Some(v) = cli.default_batch_size {
        cfg.default_batch_size = v;
    }
    if let Some(v) = cli.time_scale {
        cfg.time_scale = v;
    }
    if let Some(v) = cli.body_limit {
        cfg.body_limit_bytes = v;
    }
    if cli.no_reference_backed {
        cfg.reference_backed = false;
    }
    if let Some(v) = &cli.node_version {
        cfg.version.clone_from(v);
    }
    if let Some(r) = cli.arg_rule {
        cfg.arg_rule = r.into();
    }
    if cli.encrypted_identity {
        cfg.encrypted_identity = true;
    }
    if cli.auth_token.as_deref() == Some("") {
        anyhow::bail!("--auth-token (or MLNODE_AUTH_TOKEN) is empty: give a token, or leave it unset for no auth");
    }
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(mlnode_sim::tls::acceptor(&mlnode_sim::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: cli.tls_client_ca.clone(),
        })?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let refs_dir = cli
        .references
        .clone()
        .unwrap_or_else(mlnode_support::paths::default_artifacts_dir);
    // Loaded once, shared by every node of a fleet.
    let refs = mlnode_sim::load_references(refs_dir.is_dir().then_some(refs_dir.as_path()))?;
    let specs = match (&cli.fleet, cli.nodes) {
        (Some(path), _) => {
            let name = path.display().to_string();
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
            mlnode_sim::fleet::expand(&mlnode_sim::fleet::parse(&name, &text)?, &cfg)?
        }
        (None, Some(n)) => mlnode_sim::fleet::copies(n, &cfg),
        (None, None) => vec![mlnode_sim::fleet::NodeSpec {
            id: cli.node_id.clone(),
            cfg,
        }],
    };
    let peers = Arc::new(mlnode_sim::sim::Peers::default());
    let limits = mlnode_sim::ServeLimits {
        max_connections: cli.max_connections.map_or_else(
            || mlnode_sim::ServeLimits::default().max_connections,
            |n| n as usize,
        ),
        header_read_timeout: std::time::Duration::from_secs_f64(cli.header_read_timeout),
        ..mlnode_sim::ServeLimits::default()
    };
    let fleet = specs.len() > 1;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    let options = |peers: &std::sync::Arc<mlnode_sim::sim::Peers>| mlnode_sim::SimOptions {
        admin: cli.admin,
        admin_token: cli.admin_token.clone(),
        journal_size: Some(cli.journal_size),
        limits: Some(limits),
        peers: Some(peers.clone()),
        auth_token: cli.auth_token.as_deref().map(std::sync::Arc::from),
        tls: tls.clone(),
    };
    let specs = if cli.host_routing {
        let listener = tokio::net::TcpListener::bind((cli.host.as_str(), cli.port))
            .await
            .with_context(|| format!("cannot bind {}:{}", cli.host, cli.port))?;
        let addr = listener.local_addr()?;
        let mut nodes = std::collections::HashMap::new();
        for spec in specs {
            let sim = mlnode_sim::Sim::new(
                mlnode_sim::build_node_with(spec.cfg, &refs)?,
                options(&peers),
            );
            peers.add(mlnode_sim::sim::Peer {
                id: spec.id.clone(),
                addr,
                inference_addr: None,
                sim: sim.clone(),
            });
            nodes.insert(spec.id, sim);
        }
        println!("{scheme}://{addr}");
        tracing::info!(%addr, nodes = nodes.len(), "mlnode-sim listening, one node per Host header");
        let mut stop = stop_rx.clone();
        servers.spawn(mlnode_sim::serve::serve_by_host(
            listener,
            nodes,
            limits,
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ));
        Vec::new()
    } else {
        specs
    };
    for (i, spec) in specs.into_iter().enumerate() {
        let node = mlnode_sim::build_node_with(spec.cfg, &refs)?;
        let port = if cli.port == 0 {
            0
        } else {
            cli.port.saturating_add(i as u16)
        };
        let listener = tokio::net::TcpListener::bind((cli.host.as_str(), port))
            .await
            .with_context(|| format!("cannot bind {}:{port}", cli.host))?;
        let addr = listener.local_addr()?;
        let inference = match cli.inference_port {
            None => None,
            Some(p) => {
                let port = if p == 0 {
                    0
                } else {
                    p.saturating_add(i as u16)
                };
                Some(
                    tokio::net::TcpListener::bind((cli.host.as_str(), port))
                        .await
                        .with_context(|| {
                            format!("cannot bind inference port {}:{port}", cli.host)
                        })?,
                )
            }
        };
        let inference_addr = inference.as_ref().map(|l| l.local_addr()).transpose()?;
        // stdout stays one URL per node (scripts read it); the inference port is in the
        // log and in --inventory-out.
        println!("{scheme}://{addr}");
        if !fleet {
            tracing::info!(%addr, inference = ?inference_addr, replicas = ?node.cfg.replicas, profile = %node.profile.name,
                time_scale = node.clock.scale(), admin = cli.admin, "mlnode-sim listening");
        }
        let sim = mlnode_sim::Sim::new(node, options(&peers));
        peers.add(mlnode_sim::sim::Peer {
            id: spec.id,
            addr,
            inference_addr,
            sim: sim.clone(),
        });
        let mut stop = stop_rx.clone();
        servers.spawn(mlnode_sim::serve_sim_ports(
            listener,
            inference,
            sim,
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ));
    }
    if fleet {
        tracing::info!(
            nodes = peers.members().len(),
            admin = cli.admin,
            "mlnode-sim fleet listening"
        );
    }
    if let Some(path) = &cli.inventory_out {
        let mut inv = mlnode_sim::fleet::inventory(&peers);
        if cli.host_routing {
            // One listener: the node is the host name.
            for n in &mut inv.0 {
                n.host.clone_from(&n.id);
            }
        }
        let text = serde_json::to_string_pretty(&inv)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    while let Some(r) = servers.join_next().await {
        r??;
    }
    tracing::info!("mlnode-sim stopped");
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
