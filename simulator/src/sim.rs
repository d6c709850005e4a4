//! A served simulator: the current [`Node`] (swappable: load a scenario, reset to the
//! start), the request journal, transport faults and the admin settings.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::config::NodeConfig;
use crate::journal::Journal;
use crate::node::Node;
use crate::transport;
use crate::BuildError;

/// Serving options that are not part of a node's scenario.
#[derive(Clone, Default)]
pub struct SimOptions {
    /// Mount `/sim/v1/*`.
    pub admin: bool,
    /// Required on every admin call when set (`Authorization: Bearer …` or `X-Admin-Token`).
    pub admin_token: Option<String>,
    /// Journal capacity (0 = off); `None` = the default 1,000.
    pub journal_size: Option<usize>,
    /// Serving limits; `None` = [`ServeLimits::default`] (sized from the fd limit).
    pub limits: Option<ServeLimits>,
    /// The other nodes of a fleet in this process (for `/sim/v1/nodes`).
    pub peers: Option<Arc<Peers>>,
    /// A managed endpoint's gateway token: every route but `/sim/v1/*` answers 401
    /// without `Authorization: Bearer <token>` (see `gateway`).
    pub auth_token: Option<Arc<str>>,
    /// TLS (and mTLS) on both ports (see `tls`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for SimOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        f.debug_struct("SimOptions")
            .field("admin", &self.admin)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("journal_size", &self.journal_size)
            .field("limits", &self.limits)
            .field("peers", &self.peers)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A node of a fleet served by this process.
#[derive(Clone)]
pub struct Peer {
    pub id: String,
    pub addr: std::net::SocketAddr,
    /// The inference port's listener, when served apart.
    pub inference_addr: Option<std::net::SocketAddr>,
    pub sim: Arc<Sim>,
}

/// One line of `GET /sim/v1/nodes`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerInfo {
    pub id: String,
    pub url: String,
    pub inference_url: Option<String>,
    pub seed: u64,
    pub deployed_model: Option<String>,
    pub profile: String,
    pub time_scale: f64,
}

/// The fleet's registry, shared by every node's admin API.
#[derive(Default)]
pub struct Peers {
    members: RwLock<Vec<Peer>>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("nodes", &self.members().len())
            .finish()
    }
}

impl Peers {
    pub fn add(&self, p: Peer) {
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
    }

    pub fn members(&self) -> Vec<Peer> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self, id: &str) -> Option<Peer> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|m| m.id == id)
            .cloned()
    }

    pub fn list(&self) -> Vec<PeerInfo> {
        self.members()
            .iter()
            .map(|m| {
                let n = m.sim.node();
                PeerInfo {
                    id: m.id.clone(),
                    url: format!("http://{}", m.addr),
                    inference_url: m.inference_addr.map(|a| format!("http://{a}")),
                    seed: n.cfg.seed,
                    deployed_model: n.cfg.deployed_model.clone(),
                    profile: n.profile.name.clone(),
                    time_scale: n.clock.scale(),
                }
            })
            .collect()
    }
}

/// Limits of the serving loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServeLimits {
    /// Connections served at once; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// A client must send a complete request head within this (wall) time.
    pub header_read_timeout: Duration,
    /// Read buffer cap per connection: bounds what an unfinished header can hold.
    pub max_header_bytes: usize,
    /// First and last pause after a failed `accept`.
    pub accept_backoff: (Duration, Duration),
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: connections_for_fd_limit(fd_limit()),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            accept_backoff: (Duration::from_millis(10), Duration::from_secs(1)),
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process (1,024 where it cannot be read).
pub fn fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc == 0 && lim.rlim_cur > 0 {
        lim.rlim_cur
    } else {
        1024
    }
}

/// Leave room for the listener, log files, callback clients and the runtime: three
/// quarters of what is left after 64 descriptors, at least 16, at most 65,536.
pub fn connections_for_fd_limit(fds: u64) -> usize {
    let usable = (fds.saturating_sub(64) / 4).saturating_mul(3);
    usable.clamp(16, 65_536) as usize
}

/// The served state.
pub struct Sim {
    node: RwLock<Arc<Node>>,
    /// The config the current node was built from (what `reset` returns to).
    start: RwLock<NodeConfig>,
    pub options: SimOptions,
    pub journal: Journal,
    pub transport: transport::Faults,
    /// Request counters for `/api/v1/metrics` (kept across admin `load`/`reset`, as a
    /// process's counters are).
    pub metrics: crate::metrics::Metrics,
    addrs: std::sync::OnceLock<(std::net::SocketAddr, Option<std::net::SocketAddr>)>,
    down_tx: tokio::sync::watch::Sender<bool>,
}

impl Sim {
    pub fn new(node: Arc<Node>, options: SimOptions) -> Arc<Self> {
        let (down_tx, _) = tokio::sync::watch::channel(false);
        Arc::new(Sim {
            start: RwLock::new(node.cfg.clone()),
            transport: transport::Faults::new(node.cfg.faults.transport.clone(), node.cfg.seed),
            journal: Journal::new(
                options
                    .journal_size
                    .unwrap_or(crate::journal::DEFAULT_CAPACITY),
            ),
            node: RwLock::new(node),
            options,
            metrics: crate::metrics::Metrics::new(),
            addrs: std::sync::OnceLock::new(),
            down_tx,
        })
    }

    /// The node currently served.
    pub fn node(&self) -> Arc<Node> {
        self.node.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Where this node listens: its PoC/management port and, when served, its inference
    /// port (set by the serving loop once bound).
    pub fn set_addresses(
        &self,
        poc: std::net::SocketAddr,
        inference: Option<std::net::SocketAddr>,
    ) {
        let _ = self.addrs.set((poc, inference));
        self.node().set_address(poc);
    }

    /// The bound addresses (`None` before serving).
    pub fn addresses(&self) -> Option<(std::net::SocketAddr, Option<std::net::SocketAddr>)> {
        self.addrs.get().copied()
    }

    /// Replace the node with a fresh one built from `cfg` (same references and catalogue).
    pub fn load(&self, cfg: NodeConfig) -> Result<(), BuildError> {
        let fresh = self.node().rebuild(cfg.clone())?;
        if let Some((poc, _)) = self.addresses() {
            fresh.set_address(poc);
        }
        self.transport.set(cfg.faults.transport.clone());
        *self.start.write().unwrap_or_else(|e| e.into_inner()) = cfg;
        *self.node.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Back to the start of the current scenario.
    pub fn reset(&self) -> Result<(), BuildError> {
        let cfg = self.start.read().unwrap_or_else(|e| e.into_inner()).clone();
        self.load(cfg)
    }

    /// `true` while the node process is "down" (process-exit fault).
    pub fn down_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.down_tx.subscribe()
    }

    /// Advance the current node, deliver callbacks, publish up/down — forever. The
    /// period is read from the node served *now* at every tick, so an admin `load` with
    /// another time scale ticks at the new rate.
    pub async fn run_ticker(self: Arc<Self>) {
        loop {
            let node = self.node();
            if node.needs_ticks() {
                tokio::time::sleep(node.clock.tick()).await;
            } else {
                // Idle: no timer work until a request (or, as a safety net, 5 s).
                tokio::select! {
                    _ = node.woken() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                }
            }
            // A panic here must not end the ticker (and with it every callback): catch
            // it, mark the node unhealthy, keep ticking.
            let tick = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.tick()));
            let down = match tick {
                Ok(down) => down,
                Err(p) => {
                    node.record_internal_error("background tick", &panic_message(&*p));
                    continue;
                }
            };
            self.down_tx.send_if_modified(|d| {
                let changed = *d != down;
                *d = down;
                changed
            });
        }
    }
}

/// What the serving loop attaches to every request of a connection, as one extension:
/// one allocation and one map entry per request (four separate extensions were a
/// measurable share of `/pow/status`). [`crate::app::router`] attaches one for `oneshot`
/// use, without a connection.
#[derive(Clone)]
pub struct Attached {
    /// The served node (`None` on the record/replay server).
    pub sim: Option<Arc<Sim>>,
    /// The router serving this request: the admin API's `/sim/v1/nodes/{id}/...`
    /// dispatches through it to another node of the fleet.
    pub router: axum::Router,
    /// Cuts this request's connection (transport faults).
    pub kill: Option<transport::ConnKill>,
    /// The client's address.
    pub peer: Option<std::net::SocketAddr>,
}

impl Attached {
    /// The attachment of a request, if any.
    pub fn of(ext: &axum::http::Extensions) -> Option<&Attached> {
        ext.get::<Arc<Attached>>().map(|a| &**a)
    }

    /// The client's address: the connection's, or an `axum::extract::ConnectInfo` a
    /// test put into a `oneshot` request.
    pub fn peer_of(ext: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
        Self::of(ext).and_then(|a| a.peer).or_else(|| {
            ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0)
        })
    }
}

/// The served simulator of this request. One router serves every node of a process:
/// the serving loop puts the node's `Arc<Sim>` into each request's [`Attached`] (a router
/// per node made a thousand route trees, and spreading load over them cost a third of the
/// throughput), and this extractor takes it out.
pub struct SimState(pub Arc<Sim>);

/// The node attached to a request (a 500 if none is: a router used without the serving
/// loop or [`crate::app::router`]).
pub(crate) fn sim_of(ext: &axum::http::Extensions) -> Result<Arc<Sim>, crate::error::ApiError> {
    Attached::of(ext)
        .and_then(|a| a.sim.clone())
        .ok_or_else(|| {
            crate::error::ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "no simulated node attached to this request",
            )
        })
}

impl<S: Send + Sync> FromRequestParts<S> for SimState {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        sim_of(&parts.extensions).map(SimState)
    }
}

/// Handler argument: the node currently served.
pub struct Current(pub Arc<Node>);

impl<S: Send + Sync> FromRequestParts<S> for Current {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        sim_of(&parts.extensions).map(|s| Current(s.node()))
    }
}

/// The text of a caught panic.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}
