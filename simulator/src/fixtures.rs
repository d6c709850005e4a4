//! Data shipped with the simulator: hardware profiles, the HF catalogue, scenarios and
//! the golden references. All are compiled in (so `--scenario honest` works from any
//! directory) and can be replaced by files on disk.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, Faults, NodeConfig};

/// A per-instance throughput profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub model: Option<String>,
    pub gpu: String,
    pub gpus_per_instance: u32,
    pub batch_size: u32,
    pub nonces_per_min: f64,
    pub source: String,
}

impl Profile {
    pub fn nonces_per_second(&self) -> f64 {
        self.nonces_per_min / 60.0
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    profile: Vec<Profile>,
}

/// The simulated HuggingFace catalogue: repo → size in GB.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub models: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    default_size_gb: f64,
    model: Vec<CatalogEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogEntry {
    hf_repo: String,
    size_gb: f64,
}

/// What a scenario file says a validator should conclude.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `PASS`, `PASS (with mismatches within stat-test tolerance)`, `FAIL (fraud_detected)`
    /// or `ERROR`.
    pub verdict: String,
    pub exit_code: i32,
    /// The model to validate with (a reference in `artifacts/`).
    pub model: String,
    /// Text the validator's error must contain (hard failures).
    #[serde(default)]
    pub error_contains: Option<String>,
    /// Extra validator flags the expectation holds for (e.g. an explicit batch size).
    #[serde(default)]
    pub args: Vec<String>,
}

/// A scenario: a node and its faults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Required for shipped scenarios; optional in a `--config` file.
    #[serde(default)]
    pub expect: Option<Expectation>,
    #[serde(default)]
    pub node: NodeConfig,
    #[serde(default)]
    pub faults: Faults,
}

/// A data file that cannot be used: which file, and why.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("unknown scenario '{name}'; shipped scenarios: {available}")]
    UnknownScenario { name: String, available: String },
    #[error("unknown hardware profile '{name}'; profiles: {available}")]
    UnknownProfile { name: String, available: String },
}

macro_rules! scenarios {
    ($($name:literal),* $(,)?) => {
        /// Every shipped scenario, `(name, file text)`.
        pub const SCENARIOS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../fixtures/scenarios/", $name, ".toml")))),*
        ];
    };
}

scenarios!(
    "honest",
    "honest-deployed",
    "honest-4-replicas",
    "tolerated-mismatches",
    "fraud-int4",
    "fraud-forged",
    "cross-topology",
    "batch-size-drift",
    "download-not-found",
    "download-partial",
    "download-stuck",
    "deploy-oom",
    "deploy-timeout",
    "deploy-crash-after-start",
    "node-exits-on-failed-deploy",
    "no-backends",
    "partial-init",
    "stale-generating",
    "slow-replica",
    "stalled-replica",
    "validation-proxy-timeout",
    "lying-node",
    "flaky-transport",
    "network-blip",
);

const PROFILES: &str = include_str!("../../fixtures/profiles.toml");
const CATALOG: &str = include_str!("../../fixtures/catalog.toml");

pub use mlnode_support::paths::default_artifacts_dir;
/// The golden references shipped in `artifacts/`, compiled in as a fallback.
pub use mlnode_support::paths::EMBEDDED_REFERENCES as REFERENCES;

fn invalid(file: &str, reason: impl std::fmt::Display) -> FixtureError {
    FixtureError::Invalid {
        file: file.into(),
        reason: reason.to_string(),
    }
}

/// Load the compiled-in hardware profiles.
pub fn profiles() -> Result<Vec<Profile>, FixtureError> {
    let f: ProfilesFile =
        toml::from_str(PROFILES).map_err(|e| invalid("fixtures/profiles.toml", e))?;
    for p in &f.profile {
        if !(p.nonces_per_min.is_finite() && p.nonces_per_min > 0.0) || p.batch_size == 0 {
            return Err(invalid(
                "fixtures/profiles.toml",
                format!("profile '{}': rate and batch size must be positive", p.name),
            ));
        }
    }
    Ok(f.profile)
}

/// Find a profile by name.
pub fn profile(name: &str) -> Result<Profile, FixtureError> {
    let all = profiles()?;
    all.iter()
        .find(|p| p.name == name)
        .cloned()
        .ok_or_else(|| FixtureError::UnknownProfile {
            name: name.into(),
            available: all
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The catalogue: `catalog.toml`, plus every profile's model and every reference's model.
pub fn catalog(reference_models: &[String]) -> Result<Catalog, FixtureError> {
    let f: CatalogFile =
        toml::from_str(CATALOG).map_err(|e| invalid("fixtures/catalog.toml", e))?;
    let mut models: BTreeMap<String, f64> = f
        .model
        .into_iter()
        .map(|m| (m.hf_repo, m.size_gb))
        .collect();
    for m in profiles()?.into_iter().filter_map(|p| p.model) {
        models.entry(m).or_insert(f.default_size_gb);
    }
    for m in reference_models {
        models.entry(m.clone()).or_insert(f.default_size_gb);
    }
    Ok(Catalog { models })
}

/// Parse and check a scenario file's text. `file` names it in errors.
pub fn parse_scenario(file: &str, text: &str) -> Result<Scenario, FixtureError> {
    let mut s: Scenario = toml::from_str(text).map_err(|e| invalid(file, e))?;
    s.node.faults = s.faults.clone();
    s.node
        .check()
        .map_err(|ConfigError { key, reason }| invalid(file, format!("{key}: {reason}")))?;
    profile(&s.node.profile).map_err(|e| invalid(file, e))?;
    Ok(s)
}

/// Load a scenario by shipped name, or by path (anything with `/` or ending in `.toml`).
pub fn load_scenario(name_or_path: &str) -> Result<Scenario, FixtureError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
        let text = std::fs::read_to_string(name_or_path)
            .map_err(|e| invalid(name_or_path, format!("cannot read: {e}")))?;
        return parse_scenario(name_or_path, &text);
    }
    shipped_scenario(name_or_path)
}

/// A shipped scenario by name (never a file).
pub fn shipped_scenario(name_or_path: &str) -> Result<Scenario, FixtureError> {
    let (_, text) = SCENARIOS
        .iter()
        .find(|(n, _)| *n == name_or_path)
        .ok_or_else(|| FixtureError::UnknownScenario {
            name: name_or_path.into(),
            available: SCENARIOS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    parse_scenario(&format!("fixtures/scenarios/{name_or_path}.toml"), text)
}

/// The names of the shipped scenarios, in file order.
pub fn scenario_names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(n, _)| *n).collect()
}

/// Every shipped scenario, parsed.
pub fn all_scenarios() -> Result<Vec<Scenario>, FixtureError> {
    SCENARIOS.iter().map(|(n, _)| load_scenario(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_parses_and_is_compiled_in() {
        let all = all_scenarios().unwrap();
        assert_eq!(all.len(), SCENARIOS.len());
        for (s, (n, _)) in all.iter().zip(SCENARIOS) {
            assert_eq!(&s.name, n, "scenario name must match its file name");
            assert!(
                s.expect.is_some(),
                "{n}: shipped scenarios state their expected verdict"
            );
            assert!(!s.description.is_empty(), "{n}: needs a description");
        }
        // Every file on disk is compiled in.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let stem = name.trim_end_matches(".toml");
            assert!(
                SCENARIOS.iter().any(|(n, _)| *n == stem),
                "{name} is not in the scenarios! list"
            );
        }
    }

    #[test]
    fn bad_scenarios_name_file_key_and_reason() {
        let e = parse_scenario(
            "x.toml",
            "name='x'\ndescription='d'\nexpect={verdict='PASS',exit_code=0,model='m'}\n[node]\nreplica=3\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("x.toml: ") && e.contains("unknown field `replica`"),
            "{e}"
        );
        let e = parse_scenario(
            "y.toml",
            "name='y'\ndescription='d'\nexpect={verdict='PASS',exit_code=0,model='m'}\n[node]\nreplicas=0\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "y.toml: replicas: must be >= 1");
        let e = parse_scenario(
            "z.toml",
            "name='z'\ndescription='d'\nexpect={verdict='PASS',exit_code=0,model='m'}\n[[faults.mismatch]]\nmodel='forged'\nfraction=2.0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("faults.mismatch[0]") && e.contains("fraction"),
            "{e}"
        );
        let e = load_scenario("nope").unwrap_err().to_string();
        assert!(
            e.contains("unknown scenario 'nope'") && e.contains("honest"),
            "{e}"
        );
        let e = parse_scenario(
            "p.toml",
            "name='p'\ndescription='d'\nexpect={verdict='PASS',exit_code=0,model='m'}\n[node]\nprofile='h9000'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown hardware profile 'h9000'"), "{e}");
    }

    #[test]
    fn catalog_includes_profiles_and_references() {
        let c = catalog(&["Some/Ref".to_string()]).unwrap();
        assert!(c.models.contains_key("Some/Ref"));
        assert!(c.models.contains_key("deepseek-ai/DeepSeek-V4-Flash-0731"));
        assert_eq!(c.models.get("Qwen/Qwen3-32B-FP8"), Some(&34.0));
    }
}
