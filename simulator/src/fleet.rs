//! Many nodes in one process: `--fleet FILE` (groups of nodes as data) or `--nodes N`.
//!
//! Every node is fully independent — its own state machines, replicas, faults, journal,
//! clock position and listener — and costs nothing while idle (time is computed on
//! request; a node's ticker sleeps until a request gives it background work). The golden
//! references are loaded once and shared. The admin API of any node lists the fleet
//! (`GET /sim/v1/nodes`) and reaches any node by id (`/sim/v1/nodes/{id}/...` is that
//! node's `/sim/v1/...`).
//!
//! ```toml
//! # fixtures/fleets/mixed.toml
//! [[group]]
//! scenario = "honest"        # a shipped scenario name (or a path); default: a plain node
//! count = 8
//! id_prefix = "honest"       # ids honest-01 .. honest-08
//! seed = 7                   # each node's seed is derived from this and its index
//! deployed_model = "Qwen/Qwen3-32B-FP8"
//! ```

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::NodeConfig;
use crate::fixtures::{self, FixtureError};
use crate::sim::Peers;

/// One group of a fleet file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// A shipped scenario name or a scenario file; `None` = a plain node.
    #[serde(default)]
    pub scenario: Option<String>,
    /// How many nodes.
    pub count: u32,
    /// Node ids are `<id_prefix>-<NN>`.
    #[serde(default = "default_prefix")]
    pub id_prefix: String,
    /// The group's seed; node `i` gets `seed_of(seed, i)`.
    #[serde(default)]
    pub seed: u64,
    /// Start with this model deployed (unless the scenario deploys one).
    #[serde(default)]
    pub deployed_model: Option<String>,
    /// vLLM instances per node.
    #[serde(default)]
    pub replicas: Option<u32>,
}

fn default_prefix() -> String {
    "node".into()
}

/// A fleet file: `[[group]]` tables.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
}

/// The most nodes one process serves (each holds a listener and a few tasks).
pub const MAX_NODES: u32 = 10_000;

/// A node to start: its id and config.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: String,
    pub cfg: NodeConfig,
}

/// Node `index`'s seed in a group seeded `seed`: independent streams per node.
pub fn seed_of(seed: u64, index: u32) -> u64 {
    let d = Sha256::new()
        .chain_update(b"mlnode-sim/fleet-seed/1")
        .chain_update(seed.to_le_bytes())
        .chain_update(index.to_le_bytes())
        .finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

fn invalid(file: &str, reason: impl Into<String>) -> FixtureError {
    FixtureError::Invalid {
        file: file.into(),
        reason: reason.into(),
    }
}

/// Parse a fleet file, naming the file and the problem.
pub fn parse(file: &str, text: &str) -> Result<FleetFile, FixtureError> {
    let f: FleetFile = toml::from_str(text).map_err(|e| invalid(file, e.to_string()))?;
    let total: u64 = f.groups.iter().map(|g| u64::from(g.count)).sum();
    if f.groups.is_empty() || total == 0 {
        return Err(invalid(
            file,
            "a fleet needs at least one [[group]] with count >= 1",
        ));
    }
    if total > u64::from(MAX_NODES) {
        return Err(invalid(
            file,
            format!("{total} nodes: at most {MAX_NODES} per process"),
        ));
    }
    Ok(f)
}

/// The nodes of `fleet`, each with its own seed; `base` is what the command line says
/// (time scale, body limit...), a group's scenario replaces it.
pub fn expand(fleet: &FleetFile, base: &NodeConfig) -> Result<Vec<NodeSpec>, FixtureError> {
    let mut out = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for g in &fleet.groups {
        let mut cfg = match &g.scenario {
            Some(s) => {
                let mut c = fixtures::load_scenario(s)?.node;
                c.time_scale = base.time_scale;
                c.body_limit_bytes = base.body_limit_bytes;
                c
            }
            None => base.clone(),
        };
        if g.deployed_model.is_some() {
            cfg.deployed_model = cfg.deployed_model.or(g.deployed_model.clone());
        }
        if g.replicas.is_some() {
            cfg.replicas = g.replicas;
        }
        let width = g.count.to_string().len().max(2);
        for i in 0..g.count {
            let id = format!("{}-{:0width$}", g.id_prefix, i + 1);
            if !ids.insert(id.clone()) {
                return Err(invalid(
                    "fleet",
                    format!("node id {id} twice: give the groups distinct id_prefix"),
                ));
            }
            let mut c = cfg.clone();
            c.seed = seed_of(g.seed, i);
            out.push(NodeSpec { id, cfg: c });
        }
    }
    Ok(out)
}

/// `--nodes N`: N copies of `base`, ids `node-NN`, seeds derived from `base.seed`.
pub fn copies(n: u32, base: &NodeConfig) -> Vec<NodeSpec> {
    let fleet = FleetFile {
        groups: vec![Group {
            scenario: None,
            count: n,
            id_prefix: "node".into(),
            seed: base.seed,
            deployed_model: None,
            replicas: None,
        }],
    };
    expand(&fleet, base).unwrap_or_default()
}

/// The fleet in the operators' node-config format.
pub fn inventory(peers: &Peers) -> mlnode_protocol::node_config::NodeConfig {
    mlnode_protocol::node_config::NodeConfig(
        peers
            .members()
            .iter()
            .map(|m| crate::inventory::entry(&m.id, m.addr, m.inference_addr, &m.sim.node()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expand_with_their_own_seeds() {
        let f = parse(
            "t.toml",
            r#"
            [[group]]
            scenario = "honest"
            count = 3
            id_prefix = "h"
            seed = 1
            [[group]]
            scenario = "fraud-int4"
            count = 2
            id_prefix = "f"
            "#,
        )
        .unwrap();
        let nodes = expand(&f, &NodeConfig::default()).unwrap();
        let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["h-01", "h-02", "h-03", "f-01", "f-02"]);
        let seeds: std::collections::HashSet<u64> = nodes.iter().map(|n| n.cfg.seed).collect();
        assert_eq!(seeds.len(), 5, "every node its own seed");
        assert_eq!(seed_of(1, 0), nodes[0].cfg.seed);
        assert!(parse("t.toml", "[[group]]\ncount = 0").is_err());
        let e = parse("t.toml", "[[group]]\ncount = 2\nbogus = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml") && e.contains("bogus"), "{e}");
        assert_eq!(copies(4, &NodeConfig::default()).len(), 4);
    }
}
