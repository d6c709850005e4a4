//! `--junit FILE`: one test case per phase (with its wall time; skipped phases marked
//! skipped, failures with the cause), plus the verdict as a test case of its own.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::report::{PhaseOutcome, PhaseState};
use crate::verdict::Verdict;

/// What the JUnit file reports: the run's phases and its verdict.
pub struct JunitRun<'a> {
    pub model: &'a str,
    pub phases: &'a [PhaseOutcome],
    pub verdict: Verdict,
    pub exit_code: i32,
    pub error: Option<&'a str>,
}

fn failure(msg: &str) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
    s.set_message(msg.to_owned());
    s
}

fn skipped(msg: &str) -> TestCaseStatus {
    let mut s = TestCaseStatus::skipped();
    s.set_message(msg.to_owned());
    s
}

pub fn write(path: &Path, outcome: &JunitRun<'_>) -> std::io::Result<()> {
    let mut report = Report::new("mlnode-validate");
    let mut suite = TestSuite::new(format!("mlnode-validate {}", outcome.model));
    let phases = outcome.phases;
    let mut total = 0.0;
    for p in phases {
        let msg = p.message.as_deref().unwrap_or("");
        let status = match p.state {
            PhaseState::Passed => TestCaseStatus::success(),
            PhaseState::Failed | PhaseState::Interrupted => failure(msg),
            PhaseState::Skipped | PhaseState::NotRun => skipped(msg),
        };
        let mut case = TestCase::new(p.phase.name(), status);
        case.set_time(Duration::from_secs_f64(p.wall_s.max(0.0)));
        total += p.wall_s.max(0.0);
        suite.add_test_case(case);
    }
    // The verdict: it fails exactly when the exit code is not 0.
    let status = if outcome.exit_code == 0 {
        TestCaseStatus::success()
    } else {
        let cause = outcome.error.unwrap_or(outcome.verdict.headline());
        failure(&format!(
            "{} (exit {}): {cause}",
            outcome.verdict.headline(),
            outcome.exit_code
        ))
    };
    suite.add_test_case(TestCase::new("verdict", status));
    suite.set_time(Duration::from_secs_f64(total));
    report.add_test_suite(suite);
    let xml = report
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    crate::report::write_atomic(path, &xml)
}
