//! The nodes a simulator serves, in the operators' node-config format (what
//! `mlnode-validate --inventory` reads and the network node's admin API takes).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mlnode_protocol::node_config::{NodeEntry, NodeModel};

use crate::node::Node;

/// The entry for `node` served at `addr` (and its inference port at `inference`, else
/// the same listener): the deployed model (else the cached ones).
pub fn entry(id: &str, addr: SocketAddr, inference: Option<SocketAddr>, node: &Node) -> NodeEntry {
    let mut models = BTreeMap::new();
    let cfg = &node.cfg;
    let names: Vec<&String> = match &cfg.deployed_model {
        Some(m) => vec![m],
        None => cfg.cached_models.iter().collect(),
    };
    for m in names {
        models.insert(
            m.clone(),
            NodeModel {
                args: Vec::new(),
                model_override: None,
            },
        );
    }
    NodeEntry {
        id: id.to_owned(),
        host: addr.ip().to_string(),
        // Without a separate inference listener, the PoC port's `/v1` proxy serves it.
        inference_port: inference.map_or(addr.port(), |a| a.port()),
        poc_port: addr.port(),
        max_concurrent: Some(500),
        models,
    }
}
