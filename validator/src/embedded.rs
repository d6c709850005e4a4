//! `--mlnode-url sim:<scenario>`: a simulated node started in-process on 127.0.0.1:0.

use mlnode_sim::{fixtures, SimHandle};

/// The default acceleration for an embedded node: a 30 s warm-up + 60 s measure takes
/// 90 ms of wall time, while every figure stays in simulated seconds.
pub const EMBEDDED_TIME_SCALE: f64 = 1000.0;

/// If `url` is `sim:<scenario>`, the scenario name or path.
pub fn scenario_of(url: &str) -> Option<&str> {
    url.strip_prefix("sim:")
}

/// Start the scenario's node with the given time scale; references come from
/// `artifacts_dir` so the node serves the same golden vectors the validator checks.
pub async fn start(
    scenario: &str,
    time_scale: f64,
    artifacts_dir: &std::path::Path,
) -> Result<SimHandle, EmbeddedError> {
    let mut s = fixtures::load_scenario(scenario)?;
    s.node.time_scale = time_scale;
    let refs = artifacts_dir.is_dir().then_some(artifacts_dir);
    let node = mlnode_sim::build_node(s.node, refs)?;
    Ok(mlnode_sim::spawn(node).await?)
}

/// Why the embedded node did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("embedded node: {0}")]
    Scenario(#[from] fixtures::FixtureError),
    #[error("embedded node: {0}")]
    Build(#[from] mlnode_sim::BuildError),
    #[error("embedded node: cannot bind 127.0.0.1:0: {0}")]
    Io(#[from] std::io::Error),
}
