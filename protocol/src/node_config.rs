//! The node-config format operators deploy with (`deploy/join/node-config-*.json`), and
//! the network node's `POST /admin/v1/nodes` body: a JSON list of nodes
//! `{id, host, inference_port, poc_port, max_concurrent, models: {<model id>: {args,
//! model_override?: {hf_repo, hf_commit}}}}`. A file may list several nodes (same or
//! different hosts, different ports); `model_override` means the node downloads and serves
//! `hf_repo@hf_commit` under the model id; release-candidate templates hold placeholder
//! ids (`REPLACE_WITH_…`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::Model;

/// One model a node serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeModel {
    /// vLLM arguments (the deploy's `additional_args`).
    #[serde(default)]
    pub args: Vec<String>,
    /// Serve this repo at this commit under the model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_override: Option<Model>,
}

/// One ML Node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub id: String,
    pub host: String,
    pub inference_port: u16,
    pub poc_port: u16,
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// Model id → how it is served (sorted by id; ids are unique).
    pub models: BTreeMap<String, NodeModel>,
}

impl NodeEntry {
    /// `{scheme}://{host}:{poc_port}`: where the management / PoC API answers.
    pub fn poc_url(&self, scheme: &str) -> String {
        format!("{scheme}://{}:{}", self.host, self.poc_port)
    }

    /// Whether a model id is a template placeholder.
    pub fn is_placeholder(model: &str) -> bool {
        model.starts_with("REPLACE_WITH_")
    }
}

/// Why a node-config file cannot be used, naming the key and position.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NodeConfigError {
    #[error("not valid node-config JSON at {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("the node-config lists no nodes")]
    Empty,
    #[error("node id '{0}' appears twice")]
    DuplicateId(String),
    #[error("no node '{wanted}' in the node-config (node ids: {ids})")]
    NoSuchNode { wanted: String, ids: String },
    #[error("the node-config lists {n} nodes ({ids}): choose one with --node-id")]
    Ambiguous { n: usize, ids: String },
    #[error("node '{node}' does not serve '{model}' (its models: {models})")]
    NoSuchModel {
        node: String,
        model: String,
        models: String,
    },
}

/// A parsed node-config list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeConfig(pub Vec<NodeEntry>);

impl NodeConfig {
    /// Parse and check (at least one node, unique ids); errors name the JSON path.
    pub fn parse(text: &str) -> Result<Self, NodeConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let cfg: NodeConfig =
            serde_path_to_error::deserialize(&mut de).map_err(|e| NodeConfigError::Invalid {
                path: {
                    let p = e.path().to_string();
                    if p == "." {
                        "the top level (a list of nodes)".into()
                    } else {
                        p
                    }
                },
                reason: e.inner().to_string(),
            })?;
        if cfg.0.is_empty() {
            return Err(NodeConfigError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        for n in &cfg.0 {
            if !seen.insert(n.id.as_str()) {
                return Err(NodeConfigError::DuplicateId(n.id.clone()));
            }
        }
        Ok(cfg)
    }

    fn ids(&self) -> String {
        self.0
            .iter()
            .map(|n| n.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The node `id`, or the only node when `id` is `None`.
    pub fn node(&self, id: Option<&str>) -> Result<&NodeEntry, NodeConfigError> {
        match id {
            Some(id) => {
                self.0
                    .iter()
                    .find(|n| n.id == id)
                    .ok_or_else(|| NodeConfigError::NoSuchNode {
                        wanted: id.into(),
                        ids: self.ids(),
                    })
            }
            None if self.0.len() == 1 => Ok(&self.0[0]),
            None => Err(NodeConfigError::Ambiguous {
                n: self.0.len(),
                ids: self.ids(),
            }),
        }
    }

    /// The node's entry for `model`.
    pub fn model<'a>(
        &'a self,
        id: Option<&str>,
        model: &str,
    ) -> Result<(&'a NodeEntry, &'a NodeModel), NodeConfigError> {
        let node = self.node(id)?;
        let m = node
            .models
            .get(model)
            .ok_or_else(|| NodeConfigError::NoSuchModel {
                node: node.id.clone(),
                model: model.into(),
                models: node.models.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        Ok((node, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"[
      {"id": "a", "host": "10.0.0.1", "inference_port": 5000, "poc_port": 8080, "max_concurrent": 500,
       "models": {"Qwen/Qwen3-32B-FP8": {"args": ["--tensor-parallel-size", "2"]}}},
      {"id": "b", "host": "10.0.0.1", "inference_port": 5001, "poc_port": 8081, "max_concurrent": 500,
       "models": {"X/Y": {"args": [], "model_override": {"hf_repo": "o/r", "hf_commit": "abc"}}}}
    ]"#;

    #[test]
    fn parse_select_and_name_errors() {
        let c = NodeConfig::parse(TWO).unwrap();
        assert_eq!(c.0.len(), 2);
        assert!(matches!(
            c.node(None),
            Err(NodeConfigError::Ambiguous { n: 2, .. })
        ));
        assert_eq!(
            c.node(None).unwrap_err().to_string(),
            "the node-config lists 2 nodes (a, b): choose one with --node-id"
        );
        let (n, m) = c.model(Some("b"), "X/Y").unwrap();
        assert_eq!(n.poc_url("http"), "http://10.0.0.1:8081");
        assert_eq!(
            m.model_override.as_ref().unwrap().hf_commit.as_deref(),
            Some("abc")
        );
        assert_eq!(
            c.model(Some("a"), "X/Y").unwrap_err().to_string(),
            "node 'a' does not serve 'X/Y' (its models: Qwen/Qwen3-32B-FP8)"
        );
        assert!(c
            .node(Some("z"))
            .unwrap_err()
            .to_string()
            .contains("node ids: a, b"));
        let e = NodeConfig::parse(
            r#"[{"id": "a", "host": "h", "inference_port": "x", "poc_port": 1, "models": {}}]"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("[0].inference_port"), "{e}");
        assert_eq!(NodeConfig::parse("[]").unwrap_err(), NodeConfigError::Empty);
        assert!(NodeConfig::parse("{}")
            .unwrap_err()
            .to_string()
            .contains("top level"));
    }
}
