//! `--junit FILE`: one test case per phase (skipped phases marked skipped, failures with
//! the error message).

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::run::{Outcome, PhaseState};

pub fn write(path: &Path, outcome: &Outcome) -> std::io::Result<()> {
    let mut report = Report::new("mlnode-validate");
    let mut suite = TestSuite::new("mlnode-validate");
    for (name, state) in &outcome.phases {
        let status = match state {
            PhaseState::Passed => TestCaseStatus::success(),
            PhaseState::Failed(msg) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(msg.clone());
                s
            }
            PhaseState::Skipped(why) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(why.clone());
                s
            }
            PhaseState::NotRun => {
                let mut s = TestCaseStatus::skipped();
                s.set_message("not run: an earlier step failed");
                s
            }
        };
        suite.add_test_case(TestCase::new(*name, status));
    }
    // The verdict itself is a test case: fraud and disagreement fail it.
    let verdict_status = match outcome.exit_code {
        0 => TestCaseStatus::success(),
        _ => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(
                outcome
                    .error
                    .clone()
                    .unwrap_or_else(|| outcome.verdict.clone()),
            );
            s
        }
    };
    suite.add_test_case(TestCase::new("verdict", verdict_status));
    report.add_test_suite(suite);
    let xml = report
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    crate::report::write_atomic(path, &xml)
}
