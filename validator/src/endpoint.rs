//! Where requests go: `--mlnode-url` checked at argument parsing, and turned into a ready
//! [`Client`] — for `sim:<scenario>` with the simulator started in-process (feature
//! `embedded-sim`, on by default).
//!
//! The clock: an embedded node runs 1000× (a 30 s warm-up + 60 s measurement takes 90 ms
//! of wall time, every figure stays in simulated seconds); `--time-scale` wins; against an
//! external `mlnode-sim`, the scale is learnt from its `x-sim-time-scale` header, so a
//! validator need not be told what the node was started with.

use std::path::Path;

use mlnode_protocol::paths;
use mlnode_support::SimClock;

use crate::client::Client;

/// The default acceleration for an embedded node.
pub const EMBEDDED_TIME_SCALE: f64 = 1000.0;

/// The header an `mlnode-sim` puts on every answer: its simulated seconds per wall second.
pub const TIME_SCALE_HEADER: &str = "x-sim-time-scale";

/// If `url` is `sim:<scenario>`, the scenario name or path.
pub fn scenario_of(url: &str) -> Option<&str> {
    url.strip_prefix("sim:")
}

/// The closest of `names` to `input` (Jaro-Winkler ≥ 0.8, or case/underscore-insensitive
/// equality), for "did you mean".
pub fn did_you_mean<'a>(input: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.to_lowercase().replace('_', "-");
    let wanted = norm(input);
    names
        .into_iter()
        .map(|n| {
            let score = if norm(n) == wanted {
                2.0
            } else {
                strsim::jaro_winkler(&wanted, &norm(n))
            };
            (n, score)
        })
        .filter(|(_, s)| *s >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(n, _)| n)
}

/// clap value parser for `--mlnode-url`: a scheme and host are required; a `sim:` name
/// must be a shipped scenario (or a path to a scenario file).
pub fn parse_url_arg(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    if let Some(name) = scenario_of(s) {
        return check_scenario(name).map(|_| s.to_owned());
    }
    let parsed = reqwest::Url::parse(s);
    match parsed {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(s.trim_end_matches('/').to_owned())
        }
        Ok(u) if u.scheme() != "http" && u.scheme() != "https" && !s.contains("://") => {
            Err(format!("'{s}' has no scheme: did you mean http://{s} ?"))
        }
        Ok(u) => Err(format!(
            "'{s}': the scheme must be http or https (got '{}'), or use sim:<scenario>",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "'{s}' is not a URL ({e}); expected http://host:port or sim:<scenario>{}",
            if s.contains("://") {
                ""
            } else {
                " — did you forget http:// ?"
            }
        )),
    }
}

#[cfg(feature = "embedded-sim")]
fn check_scenario(name: &str) -> Result<(), String> {
    use mlnode_sim::fixtures;
    if name.contains('/') || name.ends_with(".toml") {
        return fixtures::load_scenario(name)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let all = fixtures::scenario_names();
    if all.contains(&name) {
        return Ok(());
    }
    let hint = did_you_mean(name, all.iter().copied())
        .map(|n| format!(" — did you mean sim:{n}?"))
        .unwrap_or_default();
    Err(format!(
        "unknown scenario '{name}'{hint} (see --list-scenarios: {})",
        all.join(", ")
    ))
}

#[cfg(not(feature = "embedded-sim"))]
fn check_scenario(_name: &str) -> Result<(), String> {
    Err("this mlnode-validate was built without the embedded simulator (feature `embedded-sim`); give an http:// URL".into())
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

/// Where the time scale came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleSource {
    Cli,
    EmbeddedDefault,
    Node,
    Default,
}

impl ScaleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleSource::Cli => "cli",
            ScaleSource::EmbeddedDefault => "sim-default",
            ScaleSource::Node => "node",
            ScaleSource::Default => "default",
        }
    }
}

/// A ready client, and what was learnt connecting.
#[derive(Debug)]
pub struct Connected {
    pub client: Client,
    /// `Some(url)` of the embedded node.
    pub embedded_url: Option<String>,
    pub scale_source: ScaleSource,
}

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[cfg(feature = "embedded-sim")]
    #[error("embedded node: {0}")]
    Scenario(#[from] mlnode_sim::fixtures::FixtureError),
    #[cfg(feature = "embedded-sim")]
    #[error("embedded node: {0}")]
    Build(#[from] mlnode_sim::BuildError),
    #[error("embedded node: cannot bind 127.0.0.1:0: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Url(String),
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
}

/// `url` as given (time scale from `--time-scale`, else learnt from the node, else 1), or
/// for `sim:<scenario>` that scenario's node started in-process (default 1000×);
/// references come from `artifacts_dir` so the node serves the same golden vectors the
/// tools check.
pub async fn connect(
    url: &str,
    time_scale: Option<f64>,
    artifacts_dir: &Path,
    deploy: Deploy<'_>,
    access: &crate::access::Access,
) -> Result<Connected, ConnectError> {
    let http = access.client()?;
    let Some(scenario) = scenario_of(url) else {
        let base = parse_url_arg(url).map_err(ConnectError::Url)?;
        let mut client = Client::with_http(&base, SimClock::new(1.0), http);
        let (scale, source) = match time_scale {
            Some(s) => (s, ScaleSource::Cli),
            None => match learn_scale(&client).await {
                Some(s) => (s, ScaleSource::Node),
                None => (1.0, ScaleSource::Default),
            },
        };
        client.clock = SimClock::new(scale);
        return Ok(Connected {
            client,
            embedded_url: None,
            scale_source: source,
        });
    };
    if access.is_set() {
        return Err(ConnectError::Url(
            "--auth-token, --ca-cert and --client-cert are for a real node; the embedded sim: node needs none".into(),
        ));
    }
    embedded(scenario, time_scale, artifacts_dir, deploy).await
}

/// One quick `GET /health`: an `mlnode-sim` says its time scale in a header; a real node
/// says nothing (or is down: the phases will say so with the cause). Sent through the
/// run's own client, so the connection it opens is the one the phases reuse.
async fn learn_scale(client: &Client) -> Option<f64> {
    let resp = client
        .http()
        .get(format!("{}{}", client.base(), paths::HEALTH))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    resp.headers()
        .get(TIME_SCALE_HEADER)?
        .to_str()
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
}

#[cfg(feature = "embedded-sim")]
async fn embedded(
    scenario: &str,
    time_scale: Option<f64>,
    artifacts_dir: &Path,
    deploy: Deploy<'_>,
) -> Result<Connected, ConnectError> {
    let (scale, source) = match time_scale {
        Some(s) => (s, ScaleSource::Cli),
        None => (EMBEDDED_TIME_SCALE, ScaleSource::EmbeddedDefault),
    };
    let mut s = mlnode_sim::fixtures::load_scenario(scenario)?;
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
    let url = h.url();
    Ok(Connected {
        client: Client::new(&url, SimClock::new(scale)).with_embedded(h),
        embedded_url: Some(url),
        scale_source: source,
    })
}

#[cfg(not(feature = "embedded-sim"))]
async fn embedded(
    _scenario: &str,
    _time_scale: Option<f64>,
    _artifacts_dir: &Path,
    _deploy: Deploy<'_>,
) -> Result<Connected, ConnectError> {
    Err(ConnectError::Url(check_scenario("").unwrap_err()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_at_parsing() {
        assert_eq!(parse_url_arg("http://h:8080/").unwrap(), "http://h:8080");
        assert!(parse_url_arg("localhost:8080")
            .unwrap_err()
            .contains("did you mean http://localhost:8080"));
        assert!(parse_url_arg("ftp://h")
            .unwrap_err()
            .contains("http or https"));
        assert!(parse_url_arg("10.0.0.5").unwrap_err().contains("http://"));
    }

    #[test]
    fn did_you_mean_scenarios() {
        let names = ["fraud-int4", "fraud-forged", "honest"];
        assert_eq!(did_you_mean("fraud_int4", names), Some("fraud-int4"));
        assert_eq!(did_you_mean("honset", names), Some("honest"));
        assert_eq!(did_you_mean("zzz", names), None);
    }

    #[cfg(feature = "embedded-sim")]
    #[test]
    fn sim_names_are_checked() {
        assert!(parse_url_arg("sim:honest").is_ok());
        let e = parse_url_arg("sim:fraud_int4").unwrap_err();
        assert!(e.contains("did you mean sim:fraud-int4"), "{e}");
    }
}
