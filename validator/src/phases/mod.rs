//! The four phases of validate.py, one module each. A phase returns its report object
//! (what `validate_report.json` holds for it) and, on failure, the error message; the
//! report is filled with what was learnt before the failure.

pub mod deploy;
pub mod download;
pub mod throughput;
pub mod validate;

use mlnode_protocol::{Reference, ResolvedStatTest};
use serde_json::Value;

use crate::args::ValidateArgs;
use crate::client::Client;
use crate::console::Console;

/// Everything a phase needs.
pub struct Ctx<'a> {
    pub args: &'a ValidateArgs,
    pub client: &'a Client,
    pub console: &'a Console,
    pub reference: &'a Reference,
    pub deploy_args: &'a [String],
    pub stat_test: &'a ResolvedStatTest,
}

/// A phase's report and its error, if it failed.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    pub report: Value,
    pub error: Option<String>,
}

impl PhaseResult {
    pub fn ok(report: Value) -> Self {
        PhaseResult {
            report,
            error: None,
        }
    }
    pub fn failed(report: Value, error: impl Into<String>) -> Self {
        PhaseResult {
            report,
            error: Some(error.into()),
        }
    }
}

/// Seconds for status-style calls (they answer at once on a healthy node).
pub const STATUS_TIMEOUT: f64 = 30.0;
/// Poll interval of the download and deploy phases.
pub const POLL_SECONDS: f64 = 5.0;

/// Round to 3 decimals for reports.
pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
