//! Stat-test values and their resolution with provenance (validator.md "Stat test").
//!
//! Lowest to highest precedence: `server-default` (0.02 / 0.001 / 0.01) → `artifact`
//! (top-level `dist_threshold`, `stat_test.p_mismatch`, `stat_test.fraud_threshold`) →
//! `cli`. Every value carries the layer it came from, so reports can say why a threshold
//! is what it is.

use serde::{Deserialize, Serialize};

use crate::fraud::{check_dist_threshold, check_params, StatTestError};
use crate::wire::StatTestOverrides;

/// The three numbers of the test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatTest {
    pub dist_threshold: f64,
    pub p_mismatch: f64,
    pub fraud_threshold: f64,
}

/// The node's own defaults (`vllm/poc/data.py`, MLNode `StatTestModel`, `validate.py`).
pub const SERVER_DEFAULTS: StatTest = StatTest {
    dist_threshold: 0.02,
    p_mismatch: 0.001,
    fraud_threshold: 0.01,
};

impl Default for StatTest {
    fn default() -> Self {
        SERVER_DEFAULTS
    }
}

impl StatTest {
    /// Overlay the keys present in `o` (what the node does with a request's `stat_test`).
    pub fn merged(self, o: &StatTestOverrides) -> StatTest {
        StatTest {
            dist_threshold: o.dist_threshold.unwrap_or(self.dist_threshold),
            p_mismatch: o.p_mismatch.unwrap_or(self.p_mismatch),
            fraud_threshold: o.fraud_threshold.unwrap_or(self.fraud_threshold),
        }
    }

    /// Reject values the test cannot use.
    pub fn check(&self) -> Result<(), StatTestError> {
        check_dist_threshold(self.dist_threshold)?;
        check_params(self.p_mismatch, self.fraud_threshold)
    }

    /// All three keys, explicitly, as the validator always sends them.
    pub fn to_overrides(self) -> StatTestOverrides {
        StatTestOverrides {
            dist_threshold: Some(self.dist_threshold),
            p_mismatch: Some(self.p_mismatch),
            fraud_threshold: Some(self.fraud_threshold),
        }
    }
}

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    ServerDefault,
    Artifact,
    Cli,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::ServerDefault => "server-default",
            Source::Artifact => "artifact",
            Source::Cli => "cli",
        })
    }
}

/// The source of each of the three values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatTestSources {
    pub dist_threshold: Source,
    pub p_mismatch: Source,
    pub fraud_threshold: Source,
}

/// A stat test with provenance: `{"values": {...}, "source": {...}}` in the reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResolvedStatTest {
    pub values: StatTest,
    pub source: StatTestSources,
}

impl ResolvedStatTest {
    /// Resolve per key over `layers`, later layers winning, starting from the server defaults.
    /// The result is validated.
    pub fn resolve(layers: &[(Source, &StatTestOverrides)]) -> Result<Self, StatTestError> {
        let mut values = SERVER_DEFAULTS;
        let mut source = StatTestSources {
            dist_threshold: Source::ServerDefault,
            p_mismatch: Source::ServerDefault,
            fraud_threshold: Source::ServerDefault,
        };
        for (layer, o) in layers {
            if let Some(v) = o.dist_threshold {
                values.dist_threshold = v;
                source.dist_threshold = *layer;
            }
            if let Some(v) = o.p_mismatch {
                values.p_mismatch = v;
                source.p_mismatch = *layer;
            }
            if let Some(v) = o.fraud_threshold {
                values.fraud_threshold = v;
                source.fraud_threshold = *layer;
            }
        }
        values.check()?;
        Ok(ResolvedStatTest { values, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_provenance() {
        let artifact = StatTestOverrides {
            dist_threshold: Some(0.75),
            p_mismatch: Some(0.1),
            fraud_threshold: None,
        };
        let cli = StatTestOverrides {
            p_mismatch: Some(0.2),
            ..Default::default()
        };
        let r = ResolvedStatTest::resolve(&[(Source::Artifact, &artifact), (Source::Cli, &cli)])
            .unwrap();
        assert_eq!(
            r.values,
            StatTest {
                dist_threshold: 0.75,
                p_mismatch: 0.2,
                fraud_threshold: 0.01
            }
        );
        assert_eq!(r.source.dist_threshold, Source::Artifact);
        assert_eq!(r.source.p_mismatch, Source::Cli);
        assert_eq!(r.source.fraud_threshold, Source::ServerDefault);
        let json = serde_json::to_value(r).unwrap();
        assert_eq!(json["source"]["fraud_threshold"], "server-default");
        assert_eq!(json["values"]["dist_threshold"], 0.75);
    }

    #[test]
    fn bad_values_are_rejected() {
        let bad = StatTestOverrides {
            p_mismatch: Some(1.5),
            ..Default::default()
        };
        assert!(ResolvedStatTest::resolve(&[(Source::Cli, &bad)]).is_err());
        let bad = StatTestOverrides {
            dist_threshold: Some(-1.0),
            ..Default::default()
        };
        assert!(ResolvedStatTest::resolve(&[(Source::Cli, &bad)]).is_err());
    }

    #[test]
    fn merged_overlays_only_present_keys() {
        let o = StatTestOverrides {
            fraud_threshold: Some(0.05),
            ..Default::default()
        };
        let m = SERVER_DEFAULTS.merged(&o);
        assert_eq!(
            (m.dist_threshold, m.p_mismatch, m.fraud_threshold),
            (0.02, 0.001, 0.05)
        );
    }
}
