//! `--mlnode-url sim:<scenario>`: a simulated node started in-process on 127.0.0.1:0.

use mlnode_sim::{fixtures, SimHandle};

/// The default acceleration for an embedded node: a 30 s warm-up + 60 s measure takes
/// 90 ms of wall time, while every figure stays in simulated seconds.
pub const EMBEDDED_TIME_SCALE: f64 = 1000.0;

/// If `url` is `sim:<scenario>`, the scenario name or path.
pub fn scenario_of(url: &str) -> Option<&str> {
    url.strip_prefix("sim:")
}

/// What the embedded node has deployed at start, beyond what its scenario says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploy<'a> {
    /// Exactly the scenario (the validator's download and deploy phases do the work).
    Scenario,
    /// This model, unless the scenario deploys one itself.
    Model(&'a str),
    /// The model the scenario's expectation names, unless it deploys one itself.
    ExpectedModel,
}

/// Where requests go: the URL as given, or an embedded node (kept alive by `sim`).
pub struct Endpoint {
    pub url: String,
    /// Simulated seconds per wall second for the client's clock.
    pub scale: f64,
    pub sim: Option<SimHandle>,
}

/// `url` as given (time scale `time_scale`, default 1), or for `sim:<scenario>` that
/// scenario's node started in-process (default 1000×); references come from
/// `artifacts_dir` so the node serves the same golden vectors the tools check.
pub async fn connect(
    url: &str,
    time_scale: Option<f64>,
    artifacts_dir: &std::path::Path,
    deploy: Deploy<'_>,
) -> Result<Endpoint, EmbeddedError> {
    let Some(scenario) = scenario_of(url) else {
        return Ok(Endpoint {
            url: url.trim_end_matches('/').to_owned(),
            scale: time_scale.unwrap_or(1.0),
            sim: None,
        });
    };
    let scale = time_scale.unwrap_or(EMBEDDED_TIME_SCALE);
    let mut s = fixtures::load_scenario(scenario)?;
    s.node.time_scale = scale;
    let model = match deploy {
        Deploy::Scenario => None,
        Deploy::Model(m) => Some(m.to_owned()),
        Deploy::ExpectedModel => s.expect.as_ref().map(|e| e.model.clone()),
    };
    s.node.deployed_model = s.node.deployed_model.or(model);
    let refs = artifacts_dir.is_dir().then_some(artifacts_dir);
    let node = mlnode_sim::build_node(s.node, refs)?;
    let h = mlnode_sim::spawn(node).await?;
    Ok(Endpoint {
        url: h.url(),
        scale,
        sim: Some(h),
    })
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
