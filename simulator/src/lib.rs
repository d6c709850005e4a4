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
//! | [`node`] | the node's state machines: cache, startup, replicas, PoC semantics |
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

pub mod api;
pub mod callbacks;
pub mod clock;
pub mod config;
pub mod error;
pub mod fixtures;
pub mod mismatch;
pub mod node;
pub mod refs;
pub mod replica;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use api::app;
pub use clock::SimClock;
pub use config::NodeConfig;
pub use node::Node;

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

/// Serve `node` on `listener` until `shutdown` resolves.
///
/// While the node is "down" (the process-exit fault) the listener is closed, so clients
/// get connection refused; it is bound again on the same address when the node returns.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let ticker = tokio::spawn(node.clone().run_ticker());
    let mut down = node.down_watch();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut listener = Some(listener);
    let result = loop {
        let l = match listener.take() {
            Some(l) => l,
            None => match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => break Err(e),
            },
        };
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(l, app(node.clone()))
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .into_future(),
        );
        tokio::select! {
            _ = &mut shutdown => {
                let _ = stop_tx.send(());
                let _ = server.await;
                break Ok(());
            }
            _ = async { let _ = down.wait_for(|d| *d).await; } => {}
        }
        tracing::warn!("simulated MLNode process exited (watcher os._exit); refusing connections");
        // Close the listener and every keep-alive connection; requests still in flight get
        // a moment, then are cut, as a dying process cuts them.
        let _ = stop_tx.send(());
        let abort = server.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_millis(200), server)
            .await
            .is_err()
        {
            abort.abort();
        }
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

/// A node served in the background on `127.0.0.1:0`.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
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

/// Serve `node` on `127.0.0.1:0` in the background.
pub async fn spawn(node: Arc<Node>) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, node.clone(), async move {
        let _ = rx.await;
    }));
    Ok(SimHandle {
        addr,
        node,
        stop: Some(tx),
        task: Some(task),
    })
}
