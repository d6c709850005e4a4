//! `enum Phase`: the four phases of validate.py as one type — name, number, skip flag,
//! header line. The loop that runs them is [`crate::phases::run_these`]; the reports name
//! phases with this type.

use serde::Serialize;

use crate::args::ValidateArgs;

/// One phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Download,
    Deploy,
    Throughput,
    Validate,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Download,
        Phase::Deploy,
        Phase::Throughput,
        Phase::Validate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Download => "download",
            Phase::Deploy => "deploy",
            Phase::Throughput => "throughput",
            Phase::Validate => "validate",
        }
    }

    /// 1-based, for `[i/4]`.
    pub fn number(self) -> usize {
        match self {
            Phase::Download => 1,
            Phase::Deploy => 2,
            Phase::Throughput => 3,
            Phase::Validate => 4,
        }
    }

    pub fn skip_flag(self) -> &'static str {
        match self {
            Phase::Download => "--skip-download",
            Phase::Deploy => "--skip-deploy",
            Phase::Throughput => "--skip-throughput",
            Phase::Validate => "--skip-validate",
        }
    }

    pub fn is_skipped(self, a: &ValidateArgs) -> bool {
        match self {
            Phase::Download => a.skip_download,
            Phase::Deploy => a.skip_deploy,
            Phase::Throughput => a.skip_throughput,
            Phase::Validate => a.skip_validate,
        }
    }

    /// `[i/4] <phase>: <text>`.
    pub fn header(self, text: &str) -> String {
        format!(
            "[{}/{}] {}: {text}",
            self.number(),
            Self::ALL.len(),
            self.name()
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
