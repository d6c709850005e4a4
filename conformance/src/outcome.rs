//! Check results and their renderings.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;
use serde_json::{json, Value};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One check: its name, its status and the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    pub evidence: String,
}

impl CheckResult {
    pub fn pass(name: &str, evidence: impl Into<String>) -> Self {
        CheckResult {
            name: name.into(),
            status: Status::Pass,
            evidence: evidence.into(),
        }
    }
    pub fn fail(name: &str, evidence: impl Into<String>) -> Self {
        CheckResult {
            name: name.into(),
            status: Status::Fail,
            evidence: evidence.into(),
        }
    }
    pub fn skip(name: &str, evidence: impl Into<String>) -> Self {
        CheckResult {
            name: name.into(),
            status: Status::Skip,
            evidence: evidence.into(),
        }
    }
    /// Pass when `ok`, else fail, with the same evidence.
    pub fn expect(name: &str, ok: bool, evidence: impl Into<String>) -> Self {
        if ok {
            Self::pass(name, evidence)
        } else {
            Self::fail(name, evidence)
        }
    }
}

/// Exit code: 0 all pass (skips allowed), 1 any fail.
pub fn exit_code(results: &[CheckResult]) -> i32 {
    if results.iter().any(|r| r.status == Status::Fail) {
        1
    } else {
        0
    }
}

/// The human table.
pub fn table(results: &[CheckResult]) -> String {
    let w = results.iter().map(|r| r.name.len()).max().unwrap_or(10);
    let mut out = String::new();
    for r in results {
        let s = match r.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        };
        // The table keeps one line per check; `--json` carries the full evidence.
        let ev: String = if r.evidence.chars().count() > 160 {
            r.evidence.chars().take(157).collect::<String>() + "..."
        } else {
            r.evidence.clone()
        };
        out.push_str(&format!("{s}  {:<w$}  {ev}\n", r.name));
    }
    let count = |s| results.iter().filter(|r| r.status == s).count();
    // Not "N passed, N failed": CI tooling reads that shape as a test-runner tally.
    out.push_str(&format!(
        "checks: {} pass / {} fail / {} skip\n",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip)
    ));
    out
}

/// The `--json` summary.
pub fn summary(url: &str, results: &[CheckResult]) -> Value {
    json!({"mlnode_url": url, "exit_code": exit_code(results), "checks": results})
}

/// `--junit FILE`.
pub fn write_junit(path: &Path, results: &[CheckResult]) -> std::io::Result<()> {
    let mut report = Report::new("mlnode-conformance");
    let mut suite = TestSuite::new("mlnode-conformance");
    for r in results {
        let status = match r.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(r.evidence.clone());
                s
            }
            Status::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.evidence.clone());
                s
            }
        };
        suite.add_test_case(TestCase::new(r.name.clone(), status));
    }
    report.add_test_suite(suite);
    let xml = report
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::write(path, xml)
}
