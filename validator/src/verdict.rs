//! The verdict of a run, from which the console headline, the report files, `--json`,
//! JUnit and the exit code are all derived — so they cannot disagree.

use serde::{Serialize, Serializer};

/// Exit codes (validator.md): 0 pass or skipped, 2 fraud, 1 error; 128 + signal after a
/// signal (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
pub const EXIT_PASS: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_FRAUD: i32 = 2;

/// The signal that ended a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    Sigint,
    Sigterm,
    Sighup,
}

impl Signal {
    pub fn number(self) -> i32 {
        match self {
            Signal::Sighup => 1,
            Signal::Sigint => 2,
            Signal::Sigterm => 15,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Sigint => "SIGINT",
            Signal::Sigterm => "SIGTERM",
            Signal::Sighup => "SIGHUP",
        }
    }
}

/// What a run concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The node validated the reference with no mismatch.
    Pass,
    /// Mismatches, within the stat test's tolerance.
    PassWithMismatches,
    /// The fraud test fired.
    Fail,
    /// `--skip-validate`: no verdict asked for.
    Skipped,
    /// A hard error before a verdict (the cause is in the report's `error`).
    Error,
    /// A signal ended the run; generation was stopped and a partial report written.
    Interrupted(Signal),
    /// `--cross-check`: the node said "no fraud", the local recomputation says fraud.
    Disagree,
}

impl Verdict {
    /// From the node's (checked) answer: its fraud flag and mismatch count.
    pub fn of_answer(fraud_detected: bool, n_mismatch: u64) -> Self {
        if fraud_detected {
            Verdict::Fail
        } else if n_mismatch > 0 {
            Verdict::PassWithMismatches
        } else {
            Verdict::Pass
        }
    }

    /// The console headline and the report's `verdict` key.
    pub fn headline(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::PassWithMismatches => "PASS (with mismatches within stat-test tolerance)",
            Verdict::Fail => "FAIL (fraud_detected)",
            Verdict::Skipped => "validation skipped",
            Verdict::Error => "ERROR",
            Verdict::Interrupted(_) => "INTERRUPTED",
            Verdict::Disagree => {
                "FAIL (cross-check: the node's verdict disagrees with the local recomputation)"
            }
        }
    }

    /// A short machine word (`--json`'s `verdict_code`, JUnit).
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::PassWithMismatches => "pass_with_mismatches",
            Verdict::Fail => "fraud",
            Verdict::Skipped => "skipped",
            Verdict::Error => "error",
            Verdict::Interrupted(_) => "interrupted",
            Verdict::Disagree => "cross_check_disagree",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass | Verdict::PassWithMismatches | Verdict::Skipped => EXIT_PASS,
            Verdict::Fail | Verdict::Disagree => EXIT_FRAUD,
            Verdict::Error => EXIT_ERROR,
            Verdict::Interrupted(s) => 128 + s.number(),
        }
    }

    /// Whether CI should count the run as passed.
    pub fn is_success(self) -> bool {
        self.exit_code() == EXIT_PASS
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.headline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Verdict::Pass.exit_code(), 0);
        assert_eq!(Verdict::PassWithMismatches.exit_code(), 0);
        assert_eq!(Verdict::Skipped.exit_code(), 0);
        assert_eq!(Verdict::Fail.exit_code(), 2);
        assert_eq!(Verdict::Disagree.exit_code(), 2);
        assert_eq!(Verdict::Error.exit_code(), 1);
        assert_eq!(Verdict::Interrupted(Signal::Sigint).exit_code(), 130);
        assert_eq!(Verdict::Interrupted(Signal::Sigterm).exit_code(), 143);
        assert_eq!(Verdict::Interrupted(Signal::Sighup).exit_code(), 129);
    }
}
