//! The end of a run: the report printed and written, `--junit` written, the `--json`
//! summary — all from the one [`ValidateReport`], so they agree with the exit code.

use std::path::PathBuf;

use serde::Serialize;

use crate::args::ValidateArgs;
use crate::console::Console;
use crate::report::{
    self, CrossCheck, PhaseOutcome, ReportPaths, ThroughputSummary, ToolInfo, ValidateReport,
    ValidationResponse, Warning,
};
use crate::verdict::{Verdict, EXIT_ERROR};

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub exit_code: i32,
    pub error: Option<String>,
    /// `None` for a usage error (nothing was created).
    pub exp_dir: Option<PathBuf>,
    pub reports: Option<ReportPaths>,
    pub report: Option<ValidateReport>,
    pub started_at: String,
    /// `--mlnode-url` and `--model` as given.
    pub mlnode_url: String,
    pub model: String,
}

/// `--json`: one object on stdout.
#[derive(Debug, Serialize)]
pub struct JsonSummary<'a> {
    pub schema_version: u32,
    pub tool: ToolInfo,
    pub model: &'a str,
    pub mlnode_url: &'a str,
    pub reference: Option<&'a str>,
    pub started_at: &'a str,
    pub finished_at: Option<&'a str>,
    pub verdict: &'static str,
    pub verdict_code: &'static str,
    pub exit_code: i32,
    pub error: Option<&'a str>,
    pub experiment_dir: Option<&'a PathBuf>,
    pub reports: Option<&'a ReportPaths>,
    pub phases: &'a [PhaseOutcome],
    pub validation: Option<&'a ValidationResponse>,
    pub throughput: Option<&'a ThroughputSummary>,
    pub warnings: &'a [Warning],
    pub cross_check: Option<&'a CrossCheck>,
}

/// The `--json` schema's version: bumped when a key changes meaning or type.
pub const JSON_SCHEMA_VERSION: u32 = 1;

impl Outcome {
    /// A problem found before any network call: no report folder.
    pub fn usage_error(args: &ValidateArgs, error: String, started_at: String) -> Self {
        Outcome {
            verdict: Verdict::Error,
            exit_code: EXIT_ERROR,
            error: Some(error),
            exp_dir: None,
            reports: None,
            report: None,
            started_at,
            mlnode_url: args.mlnode_url.clone(),
            model: args.model.clone(),
        }
    }

    /// Print the report, write the files and the JUnit file; a failed write is exit 1.
    pub fn finish(
        args: &ValidateArgs,
        console: &Console,
        report: ValidateReport,
        exp_dir: PathBuf,
        started_at: String,
    ) -> Self {
        let mut exit_code = report.verdict.exit_code();
        if let Some(e) = &report.error {
            console.always(format!("ERROR: {e}"));
        }
        console.line("");
        for l in report::txt::render(&report).lines() {
            console.line(l);
        }
        console.line("");
        let reports = match report::write_all(&exp_dir, &report) {
            Ok(p) => {
                console.line(format!("experiment dir: {}", exp_dir.display()));
                console.line(format!("  config (json): {}", p.config.display()));
                console.line(format!("  report (json): {}", p.report.display()));
                console.line(format!("  report (txt):  {}", p.txt.display()));
                Some(p)
            }
            Err(e) => {
                console.always(format!(
                    "ERROR: cannot write reports to {}: {e}",
                    exp_dir.display()
                ));
                exit_code = exit_code.max(EXIT_ERROR);
                None
            }
        };
        let mut outcome = Outcome {
            verdict: report.verdict,
            exit_code,
            error: report.error.clone(),
            exp_dir: Some(exp_dir),
            reports,
            report: Some(report),
            started_at,
            mlnode_url: args.mlnode_url.clone(),
            model: args.model.clone(),
        };
        if let Some(path) = &args.junit {
            let run = crate::junit::JunitRun {
                model: &outcome.model,
                phases: outcome.report.as_ref().map_or(&[][..], |r| &r.phases),
                verdict: outcome.verdict,
                exit_code: outcome.exit_code,
                error: outcome.error.as_deref(),
            };
            if let Err(e) = crate::junit::write(path, &run) {
                console.always(format!(
                    "ERROR: cannot write JUnit file {}: {e}",
                    path.display()
                ));
                outcome.exit_code = outcome.exit_code.max(EXIT_ERROR);
            }
        }
        console.always(format!("verdict: {}", outcome.verdict.headline()));
        outcome
    }

    /// The `--json` summary.
    pub fn summary(&self) -> JsonSummary<'_> {
        let r = self.report.as_ref();
        JsonSummary {
            schema_version: JSON_SCHEMA_VERSION,
            tool: ToolInfo::VALIDATE,
            model: &self.model,
            mlnode_url: &self.mlnode_url,
            reference: r.map(|r| r.config.reference.path.as_str()),
            started_at: &self.started_at,
            finished_at: r.map(|r| r.finished_at.as_str()),
            verdict: self.verdict.headline(),
            verdict_code: self.verdict.code(),
            exit_code: self.exit_code,
            error: self.error.as_deref(),
            experiment_dir: self.exp_dir.as_ref(),
            reports: self.reports.as_ref(),
            phases: r.map_or(&[][..], |r| &r.phases),
            validation: r.and_then(|r| r.validation.response.as_ref()),
            throughput: r.and_then(|r| r.throughput.as_ref().map(|t| &t.summary)),
            warnings: r.map_or(&[][..], |r| &r.warnings),
            cross_check: r.and_then(|r| r.cross_check.as_ref()),
        }
    }
}
