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
//! | [`api`] | one module per endpoint group, the middleware, the 422 extractor |
//! | [`app`] | the assembled routers (`fn app(node) -> Router`), one per process, shared by every node |
//! | [`port`] | which listener (PoC or inference port) a request came in on |
//! | [`sim`] | the served state: swappable node, journal, transport faults, admin options |
//! | [`admin`] | `/sim/v1/*`: scenarios, faults, replica health, reset, journal |
//! | [`transport`] | transport faults: latency, reset, empty reply, truncate, garbage, dribble, hang |
//! | [`journal`] | the bounded request journal |
//! | [`openapi`] | the OpenAPI 3.1 documents of both ports (utoipa, from the handlers and wire types) |
//! | [`metrics`] | `GET /api/v1/metrics`: Prometheus text, the node's families and the simulator's own |
//! | [`node`] | the node's state machines, one submodule per endpoint group (models, inference, pow, state) + vector sources |
//! | [`replica`] | one vLLM replica: health damping, virtual mining, job queue |
//! | [`callbacks`] | `{url}/generated` / `{url}/validated` delivery with retries |
//! | [`deviation`] | how a node deviates from honest vectors: the mismatch models (noise floors, quantisation, forgery, batch effects) |
//! | [`refs`] | reference-backed honesty: serve golden references' own vectors |
//! | [`config`] | `NodeConfig` and `Faults`: what a node is, as data |
//! | [`fleet`] | many nodes in one process: fleet files, `--nodes N`, per-node seeds, the inventory  |
//! | [`inventory`] | the served nodes in the operators' node-config format (`--inventory-out`) |
//! | [`fixtures`] | shipped profiles, catalogue, scenarios and references (compiled in) |
//! | [`session`] | record a node through a proxy (`mlnode-sim record`), replay the session (`--replay DIR`) |
//! | `gateway` | what stands in front of a real node: the version prefix nginx strips, a gateway's bearer token, the inference port's no-backend 503 |
//! | `test_pki` | (feature `test-pki`) throw-away CA, server and client certificates for TLS tests |
//! | [`testermint`] | `--compat testermint`: the network's integration-test mock, per-Host nodes on one port, its control API, real vectors and verdicts |
//! | [`tls`] | TLS and mTLS on both ports (rustls) |
//! | [`server`] | [`SimServer`]: the embedding builder (start, `uri()`, faults, journal, reset, drop = shut down) |
//! | [`serve`] | the accept loop: connection limits, timeouts, back-off, faults that cut the TCP connection, shutdown |
//! | [`clock`] | (re-export of `mlnode-support`) the scaled clock shared with the validator |
//! | [`encrypted`] | the encrypted-inference envelope: X25519 identity, HPKE open/seal, replay store |
//! | [`error`] | the FastAPI `{"detail": ...}` error response |
//!
//! Embedding: [`SimServer::builder`] — `.scenario("fraud-int4").time_scale(1000.0)
//! .start().await` → [`SimServer::uri`], faults, journal, reset; dropped, it shuts down
//! (wiremock-rs style). [`build_node`] + [`spawn_sim`] are the parts it is made of.

pub mod admin;
pub mod api;
pub mod app;
pub mod callbacks;
pub mod config;
pub mod deviation;
pub mod encrypted;
pub mod error;
pub mod fixtures;
pub mod fleet;
pub(crate) mod gateway;
pub mod inventory;
pub mod journal;
pub mod metrics;
pub mod node;
pub mod openapi;
pub mod port;
pub mod refs;
pub mod replica;
pub mod serve;
pub mod server;
pub mod session;
pub mod sim;
#[cfg(feature = "test-pki")]
pub mod test_pki;
pub mod testermint;
pub mod tls;
pub mod transport;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use app::{app, router};
pub use config::NodeConfig;
pub use mlnode_support::clock::{self, SimClock};
pub use mlnode_support::{init_logging, ColorChoice};
pub use node::Node;
pub use serve::{serve, serve_router, serve_sim, serve_sim_ports};
pub use server::{SimServer, SimServerBuilder};
pub use sim::ServeLimits;
pub use sim::{Sim, SimOptions};

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

/// Load the golden references that back honest vectors: a directory, or (`None`) the
/// compiled-in ones. Load once and share across the nodes of a fleet.
pub fn load_references(references: Option<&Path>) -> Result<refs::RefStore, BuildError> {
    match references {
        Some(dir) => refs::RefStore::load_dir(dir).map_err(|source| BuildError::References {
            dir: dir.display().to_string(),
            source,
        }),
        None => Ok(refs::RefStore::embedded()),
    }
}

/// Build a node. `references`: a directory of golden references to back honest vectors
/// (`None` = the compiled-in ones).
pub fn build_node(cfg: NodeConfig, references: Option<&Path>) -> Result<Arc<Node>, BuildError> {
    build_node_with(cfg, &load_references(references)?)
}

/// Build a node on already loaded references (shared, not copied).
pub fn build_node_with(cfg: NodeConfig, refs: &refs::RefStore) -> Result<Arc<Node>, BuildError> {
    cfg.check()?;
    let profile = fixtures::profile(&cfg.profile)?;
    let catalog = fixtures::catalog(refs.models())?;
    Ok(Node::new(cfg, profile, catalog, refs.clone()))
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
