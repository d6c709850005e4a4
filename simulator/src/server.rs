//! [`SimServer`]: a simulated MLNode in your test, in the style of wiremock-rs's
//! `MockServer` — build, start on `127.0.0.1:0`, point a client at [`SimServer::uri`],
//! inject faults, read the journal, reset; dropped, it shuts down.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use mlnode_sim::SimServer;
//!
//! let node = SimServer::builder()
//!     .scenario("fraud-int4")
//!     .time_scale(1000.0)
//!     .deployed_model("Qwen/Qwen3-32B-FP8")
//!     .start()
//!     .await
//!     .expect("the node starts");
//! let state: serde_json::Value = reqwest::get(format!("{}/api/v1/state", node.uri()))
//!     .await
//!     .unwrap()
//!     .json()
//!     .await
//!     .unwrap();
//! assert_eq!(state["state"], "INFERENCE");
//! assert_eq!(node.journal().len(), 1);
//! # }
//! ```

use std::sync::Arc;

use crate::config::NodeConfig;
use crate::journal::Entry;
use crate::sim::{Sim, SimOptions};
use crate::transport::TransportFault;
use crate::{BuildError, SimHandle};

/// Why a [`SimServer`] did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Scenario(#[from] crate::fixtures::FixtureError),
    #[error("cannot bind 127.0.0.1:0: {0}")]
    Bind(#[from] std::io::Error),
}

/// Builds a [`SimServer`]: a scenario (or the default honest node), then single keys.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until .start()"]
pub struct SimServerBuilder {
    scenario: Option<String>,
    config: Option<NodeConfig>,
    time_scale: Option<f64>,
    deployed_model: Option<String>,
    replicas: Option<u32>,
    seed: Option<u64>,
    faults: Vec<TransportFault>,
    references: Option<std::path::PathBuf>,
    options: SimOptions,
}

impl SimServerBuilder {
    /// A shipped scenario by name (`honest`, `fraud-int4`, …) or a scenario file path.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let e = mlnode_sim::SimServer::builder().scenario("no-such").start().await.unwrap_err();
    /// assert!(e.to_string().contains("no-such"));
    /// # }
    /// ```
    pub fn scenario(mut self, name: &str) -> Self {
        self.scenario = Some(name.to_owned());
        self
    }

    /// A whole node config instead of a scenario (keys set on the builder still win).
    pub fn config(mut self, cfg: NodeConfig) -> Self {
        self.config = Some(cfg);
        self
    }

    /// Simulated seconds per wall second (1000: a 60 s deploy takes 60 ms).
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = Some(scale);
        self
    }

    /// Start with this model deployed and running.
    pub fn deployed_model(mut self, model: &str) -> Self {
        self.deployed_model = Some(model.to_owned());
        self
    }

    /// vLLM replicas of the deploy.
    pub fn replicas(mut self, n: u32) -> Self {
        self.replicas = Some(n);
        self
    }

    /// The scenario's seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// A transport fault from the start (more with [`SimServer::add_fault`]).
    pub fn fault(mut self, f: TransportFault) -> Self {
        self.faults.push(f);
        self
    }

    /// Golden references backing honest vectors (default: the compiled-in ones).
    pub fn references(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.references = Some(dir.into());
        self
    }

    /// Mount the admin API (`/sim/v1/*`).
    pub fn admin(mut self) -> Self {
        self.options.admin = true;
        self
    }

    /// Require `Authorization: Bearer <token>` on every route (a gateway's token).
    pub fn auth_token(mut self, token: &str) -> Self {
        self.options.auth_token = Some(Arc::from(token));
        self
    }

    /// Serve TLS (and mTLS with a client CA) with these files.
    pub fn tls(mut self, files: &crate::tls::TlsFiles) -> Result<Self, crate::tls::TlsError> {
        self.options.tls = Some(crate::tls::acceptor(files)?);
        Ok(self)
    }

    /// The node config this builder describes.
    pub fn node_config(&self) -> Result<NodeConfig, StartError> {
        let mut cfg = match (&self.config, &self.scenario) {
            (Some(c), _) => c.clone(),
            (None, Some(s)) => crate::fixtures::load_scenario(s)?.node,
            (None, None) => NodeConfig::default(),
        };
        if let Some(v) = self.time_scale {
            cfg.time_scale = v;
        }
        if let Some(v) = &self.deployed_model {
            cfg.deployed_model = Some(v.clone());
        }
        if let Some(v) = self.replicas {
            cfg.replicas = Some(v);
        }
        if let Some(v) = self.seed {
            cfg.seed = v;
        }
        cfg.faults.transport.extend(self.faults.iter().cloned());
        Ok(cfg)
    }

    /// Build the node and serve it on `127.0.0.1:0` in the background.
    pub async fn start(self) -> Result<SimServer, StartError> {
        let cfg = self.node_config()?;
        let node = crate::build_node(cfg, self.references.as_deref())?;
        let handle = crate::spawn_sim(Sim::new(node, self.options)).await?;
        Ok(SimServer { handle })
    }
}

/// A simulated MLNode served in the background on `127.0.0.1:0`; shut down on drop.
pub struct SimServer {
    handle: SimHandle,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("uri", &self.uri())
            .finish()
    }
}

impl SimServer {
    /// A builder (default: an honest node, real time).
    pub fn builder() -> SimServerBuilder {
        SimServerBuilder::default()
    }

    /// An honest node at real time.
    pub async fn start() -> Result<SimServer, StartError> {
        Self::builder().start().await
    }

    /// `http(s)://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        let scheme = if self.handle.sim.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.handle.addr)
    }

    /// The bound address.
    pub fn address(&self) -> std::net::SocketAddr {
        self.handle.addr
    }

    /// The served state (node, journal, faults, metrics).
    pub fn sim(&self) -> &Arc<Sim> {
        &self.handle.sim
    }

    /// Every request the node answered, oldest first (at most the journal's capacity).
    pub fn journal(&self) -> Vec<Entry> {
        self.handle.sim.journal.tail(usize::MAX)
    }

    /// Add a transport fault now.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use mlnode_sim::transport::TransportFault;
    /// let node = mlnode_sim::SimServer::start().await.unwrap();
    /// let f: TransportFault = serde_json::from_value(serde_json::json!(
    ///     {"path": "/api/v1/state", "kind": "status", "status": 503, "detail": "drill"}
    /// )).unwrap();
    /// node.add_fault(f);
    /// let r = reqwest::get(format!("{}/api/v1/state", node.uri())).await.unwrap();
    /// assert_eq!(r.status(), 503);
    /// node.clear_faults();
    /// let r = reqwest::get(format!("{}/api/v1/state", node.uri())).await.unwrap();
    /// assert_eq!(r.status(), 200);
    /// # }
    /// ```
    pub fn add_fault(&self, f: TransportFault) {
        self.handle.sim.transport.add(f);
    }

    /// Remove every transport fault.
    pub fn clear_faults(&self) {
        self.handle.sim.transport.set(Vec::new());
    }

    /// Back to the node as it started (state, caches, faults of the config).
    pub fn reset(&self) -> Result<(), BuildError> {
        self.handle.sim.reset()
    }

    /// Stop serving and wait for the server to finish (dropping does the same without
    /// waiting).
    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}
