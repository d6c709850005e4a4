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
    /// Several references: one line each (this outcome is the worst of them).
    pub references: Vec<RefSummary>,
    /// Several references: `summary.json`.
    pub summary_path: Option<PathBuf>,
}

/// One reference's result in a several-reference run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefSummary {
    pub reference: String,
    pub verdict: &'static str,
    pub exit_code: i32,
    pub n_total: Option<u64>,
    pub n_mismatch: Option<u64>,
    pub p_value: Option<f64>,
    pub error: Option<String>,
    pub experiment_dir: Option<PathBuf>,
}

/// `summary.json` of a several-reference run.
#[derive(Debug, Serialize)]
struct RunSummary<'a> {
    tool: ToolInfo,
    model: &'a str,
    mlnode_url: &'a str,
    exit_code: i32,
    references: &'a [RefSummary],
}

/// The worse of two exit codes: a signal, then fraud (2), then error (1), then 0.
pub fn worse(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
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
    /// Several references: one line each (the rest of this object is the worst one).
    pub references: &'a [RefSummary],
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
            references: Vec::new(),
            summary_path: None,
        }
    }

    /// One outcome as is; several: a table, `summary.json` in `exp_dir`, and the worst
    /// outcome (exit code the worst of them) carrying every line.
    pub fn combine(
        args: &ValidateArgs,
        console: &Console,
        mut all: Vec<Outcome>,
        exp_dir: &std::path::Path,
    ) -> Outcome {
        if all.len() <= 1 {
            return all.pop().unwrap_or_else(|| {
                Outcome::usage_error(args, "no reference".into(), String::new())
            });
        }
        let lines: Vec<RefSummary> = all
            .iter()
            .map(|o| {
                let v = o
                    .report
                    .as_ref()
                    .and_then(|r| r.validation.response.as_ref());
                RefSummary {
                    reference: o
                        .report
                        .as_ref()
                        .map(|r| r.config.reference.path.clone())
                        .unwrap_or_default(),
                    verdict: o.verdict.headline(),
                    exit_code: o.exit_code,
                    n_total: v.map(|v| v.n_total),
                    n_mismatch: v.map(|v| v.n_mismatch),
                    p_value: v.map(|v| v.p_value),
                    error: o.error.clone(),
                    experiment_dir: o.exp_dir.clone(),
                }
            })
            .collect();
        let exit = lines.iter().fold(0, |acc, l| worse(acc, l.exit_code));
        console.always("");
        console.always(format!(
            "{:<64} {:>6} {:>10} {:>12}  verdict",
            "reference", "exit", "mismatch", "p_value"
        ));
        for l in &lines {
            console.always(format!(
                "{:<64} {:>6} {:>10} {:>12}  {}",
                l.reference,
                l.exit_code,
                l.n_mismatch
                    .map_or("-".into(), |n| format!("{n}/{}", l.n_total.unwrap_or(0))),
                l.p_value.map_or("-".into(), |p| format!("{p:.3e}")),
                l.verdict
            ));
        }
        let summary = RunSummary {
            tool: ToolInfo::VALIDATE,
            model: &args.model,
            mlnode_url: &args.mlnode_url,
            exit_code: exit,
            references: &lines,
        };
        let path = exp_dir.join("summary.json");
        let written = report::files::pretty(&summary).and_then(|t| report::write_atomic(&path, &t));
        let idx = all.iter().position(|o| o.exit_code == exit).unwrap_or(0);
        let mut worst = all.swap_remove(idx);
        if let Err(e) = written {
            console.always(format!("ERROR: cannot write {}: {e}", path.display()));
            worst.exit_code = worse(exit, EXIT_ERROR);
        } else {
            console.line(format!("summary: {}", path.display()));
            worst.exit_code = exit;
            worst.summary_path = Some(path);
        }
        worst.references = lines;
        console.always(format!(
            "verdict (worst of {}): {}",
            worst.references.len(),
            worst.verdict.headline()
        ));
        worst
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
            references: Vec::new(),
            summary_path: None,
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
            references: &self.references,
        }
    }
}
