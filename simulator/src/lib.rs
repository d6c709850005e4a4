//! # mlnode-sim — a simulated Gonka MLNode
//!
//! An axum server that answers the MLNode HTTP API (mlnode-api.md) closely enough that
//! the real `validate.py`, `make_artifact.py` and DAPI client cannot tell it from a GPU
//! node: deterministic PoC vectors, N vLLM replicas with the real nonce partition,
//! virtual throughput from real hardware profiles, the real mismatch rule and fraud test,
//! callbacks, and faults as data.
//!
//! | module | what it holds |
//! |---|---|
//! | [`api`] | `fn app(node) -> Router`, one module per endpoint group, the 422 extractor |
//! | [`sim`] | the served state: swappable node, journal, transport faults, admin options |
//! | [`admin`] | `/sim/v1/*`: scenarios, faults, replica health, reset, journal |
//! | [`transport`] | transport faults: latency, reset, empty reply, truncate, garbage, dribble, hang |
//! | [`journal`] | the bounded request journal |
//! | [`node`] | the node's state machines, one submodule per endpoint group (models, inference, pow, state) + vector sources |
//! | [`replica`] | one vLLM replica: health damping, virtual mining, job queue |
//! | [`callbacks`] | `{url}/generated` / `{url}/validated` delivery with retries |
//! | [`mismatch`] | mismatch models (noise floors, quantisation, forgery, batch effects) |
//! | [`refs`] | reference-backed honesty: serve golden references' own vectors |
//! | [`config`] | `NodeConfig` and `Faults`: what a node is, as data |
//! | [`fixtures`] | shipped profiles, catalogue, scenarios and references (compiled in) |
//! | [`clock`] | the scaled simulated clock shared with the validator |
//! | [`error`] | the FastAPI `{"detail": ...}` error response |
//!
//! Embedding: [`build_node`] + [`spawn`] start a node on `127.0.0.1:0` in-process.

pub mod admin;
pub mod api;
pub mod callbacks;
pub mod clock;
pub mod config;
pub mod error;
pub mod fixtures;
pub mod journal;
pub mod mismatch;
pub mod node;
pub mod refs;
pub mod replica;
pub mod sim;
pub mod transport;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

pub use api::{app, router};
pub use clock::SimClock;
pub use config::NodeConfig;
pub use node::Node;
pub use sim::{Sim, SimOptions};

/// Logs to stderr, filtered by `RUST_LOG` (else `default_filter`): the same setup for
/// every binary of the workspace.
pub fn init_logging(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .init();
}

/// Why a node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Fixture(#[from] fixtures::FixtureError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot read references dir {dir}: {source}")]
    References { dir: String, source: std::io::Error },
}

/// Build a node. `references`: a directory of golden references to back honest vectors
/// (`None` = the compiled-in ones).
pub fn build_node(cfg: NodeConfig, references: Option<&Path>) -> Result<Arc<Node>, BuildError> {
    cfg.check()?;
    let profile = fixtures::profile(&cfg.profile)?;
    let refs = match references {
        Some(dir) => refs::RefStore::load_dir(dir).map_err(|source| BuildError::References {
            dir: dir.display().to_string(),
            source,
        })?,
        None => refs::RefStore::embedded(),
    };
    let catalog = fixtures::catalog(refs.models())?;
    Ok(Node::new(cfg, profile, catalog, refs))
}

/// Serve a node with default options (see [`serve_sim`]).
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_sim(listener, Sim::new(node, SimOptions::default()), shutdown).await
}

/// Serve `sim` on `listener` until `shutdown` resolves, then drain connections
/// (at most 2 s).
///
/// Our own accept loop (hyper-util, HTTP/1.1) rather than `axum::serve`, because faults
/// need the TCP connection: every request carries a [`transport::ConnKill`] that cuts
/// its connection (RST or FIN-without-reply). While the node is "down" (process-exit
/// fault) the listener is closed and every connection dropped, so clients get connection
/// refused; the same address is bound again when the node returns.
pub async fn serve_sim(
    listener: TcpListener,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let ticker = tokio::spawn(sim.clone().run_ticker());
    let mut down = sim.down_watch();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut listener = Some(listener);
    let result = 'outer: loop {
        let l = match listener.take() {
            Some(l) => l,
            None => match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => break Err(e),
            },
        };
        let router = router(sim.clone());
        let (close_tx, close_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    let _ = close_tx.send(true);
                    let drain = async { while conns.join_next().await.is_some() {} };
                    if tokio::time::timeout(Duration::from_secs(2), drain).await.is_err() {
                        conns.abort_all();
                    }
                    break 'outer Ok(());
                }
                _ = async { let _ = down.wait_for(|d| *d).await; } => break,
                accepted = l.accept() => match accepted {
                    Ok((stream, _)) => {
                        conns.spawn(connection(stream, router.clone(), close_rx.clone()));
                    }
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        tracing::warn!("simulated MLNode process exited (watcher os._exit); refusing connections");
        drop(l);
        conns.abort_all();
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = async { let _ = down.wait_for(|d| !*d).await; } => {
                tracing::info!("simulated MLNode restarted");
            }
        }
    };
    ticker.abort();
    result
}

/// Serve one connection; honour a [`transport::ConnKill`] and graceful close.
async fn connection(
    stream: tokio::net::TcpStream,
    router: axum::Router,
    mut close: watch::Receiver<bool>,
) {
    use hyper_util::rt::TokioIo;
    use tower::ServiceExt;
    let _ = stream.set_nodelay(true);
    // A second handle on the socket, to cut it (RST via SO_LINGER 0, or FIN) on demand.
    let handle = stream
        .into_std()
        .and_then(|s| s.try_clone().map(|d| (s, d)));
    let Ok((std_stream, dup)) = handle else {
        return;
    };
    let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
        return;
    };
    let (kill, kill_rx) = transport::ConnKill::new();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(kill.clone());
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        cut = kill_rx => {
            let sock = socket2::SockRef::from(&dup);
            match cut {
                Ok(transport::Cut::Reset) => { let _ = sock.set_linger(Some(Duration::ZERO)); }
                _ => { let _ = dup.shutdown(std::net::Shutdown::Both); }
            }
        }
        _ = async { let _ = close.wait_for(|c| *c).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A node served in the background on `127.0.0.1:0`.
pub struct SimHandle {
    pub addr: SocketAddr,
    /// The node served at start (the admin API may swap it: see `sim`).
    pub node: Arc<Node>,
    pub sim: Arc<Sim>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving and wait for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Serve `node` on `127.0.0.1:0` in the background (default options).
pub async fn spawn(node: Arc<Node>) -> std::io::Result<SimHandle> {
    spawn_sim(Sim::new(node, SimOptions::default())).await
}

/// Serve `sim` on `127.0.0.1:0` in the background.
pub async fn spawn_sim(sim: Arc<Sim>) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let node = sim.node();
    let task = tokio::spawn(serve_sim(listener, sim.clone(), async move {
        let _ = rx.await;
    }));
    Ok(SimHandle {
        addr,
        node,
        sim,
        stop: Some(tx),
        task: Some(task),
    })
}
