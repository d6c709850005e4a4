//! Command-line flags: every flag of validate.py with its default (validator.md), plus
//! ours (`--json`, `--junit`, `--cross-check`, `--time-scale`, `--artifacts-dir`).
//! Seconds accept fractions; integers keep working.

use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

/// Validate an MLNode end to end: download → deploy → throughput → validate.
///
/// A drop-in replacement for the Gonka repository's validate.py: the same flags, phases,
/// report files (validate_config.json, validate_report.json, validate_report.txt) and
/// exit codes. All durations are in seconds (fractions allowed).
#[derive(Debug, Clone, Parser, Serialize)]
#[command(
    name = "mlnode-validate",
    version = mlnode_support::cli::LONG_VERSION,
    args_override_self = true,
    after_long_help = AFTER_HELP,
    after_help = "Exit codes: 0 pass / skipped, 2 fraud, 1 error, 130/143/129 signal. --help for examples."
)]
pub struct ValidateArgs {
    /// MLNode base URL (http://host:port), or `sim:<scenario>` for an embedded simulated
    /// node (see --list-scenarios).
    #[arg(long, help_heading = "Inputs", value_parser = crate::endpoint::parse_url_arg, required_unless_present_any = ["list_scenarios", "inventory"], default_value = "")]
    pub mlnode_url: String,
    /// Full HuggingFace model id, e.g. Qwen/Qwen3-32B-FP8 (selects the reference).
    #[arg(
        long,
        help_heading = "Inputs",
        required_unless_present_any = ["list_scenarios", "inventory"],
        default_value = ""
    )]
    pub model: String,
    /// Golden reference file [default: <artifacts dir>/<safe id>.json]. Legacy alias:
    /// --artifact. Repeat it to validate against several references in one run (download,
    /// deploy and throughput once; one validation and one report folder per reference).
    #[arg(long, alias = "artifact", help_heading = "Inputs", action = clap::ArgAction::Append)]
    pub reference: Vec<PathBuf>,
    /// Every shipped reference whose `model` is --model (e.g. Qwen3-235B: default and
    /// DeepGEMM-2000), each validated as with repeated --reference.
    #[arg(long, help_heading = "Inputs", conflicts_with = "reference")]
    pub all_references: bool,
    /// The deploy config from a node-config file (deploy/join/node-config-*.json): the
    /// node entry's `args` for --model become the deploy's additional_args (the reference
    /// then supplies vectors, PoC params and stat test only); `model_override` is what the
    /// node downloads.
    #[arg(long, help_heading = "Inputs")]
    pub node_config: Option<PathBuf>,
    /// The node of --node-config (needed when the file lists several).
    #[arg(long, help_heading = "Inputs", requires = "node_config")]
    pub node_id: Option<String>,
    /// Validate a whole fleet: every node × model of this node-config list (URL from each
    /// node's host and poc_port), concurrently; one report folder per node under --exp-dir
    /// and fleet_report.json. --model restricts the run to that model. A file, or an
    /// http(s) URL (a simulator's GET /sim/v1/inventory; --auth-token and the TLS flags
    /// apply); repeat it to gather several (ids that clash get `@<host>` appended).
    #[arg(long, value_name = "FILE|URL", help_heading = "Fleet", action = clap::ArgAction::Append, conflicts_with_all = ["node_config", "node_id"])]
    #[serde(serialize_with = "null_when_empty")]
    pub inventory: Vec<String>,
    /// URL scheme for --inventory nodes.
    #[arg(long, default_value = "http", help_heading = "Fleet")]
    pub inventory_scheme: String,
    /// Nodes validated at once with --inventory.
    #[arg(long, default_value_t = 8, help_heading = "Fleet", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub jobs: u32,
    /// Directory of golden references [env: MLNODE_ARTIFACTS_DIR; default: ./artifacts, else the repository's].
    #[arg(long, help_heading = "Inputs")]
    pub artifacts_dir: Option<PathBuf>,
    /// Print the embedded simulator's scenarios (for `--mlnode-url sim:<name>`) and exit.
    #[arg(long, help_heading = "Inputs")]
    pub list_scenarios: bool,

    /// Skip phase 1 (model download/verify); use only when the model is cached.
    #[arg(long, help_heading = "Phases")]
    pub skip_download: bool,
    /// Skip phase 2's deploy; vLLM must already be running (its status is still read).
    #[arg(long, help_heading = "Phases")]
    pub skip_deploy: bool,
    /// Skip phase 3 (throughput measurement).
    #[arg(long, help_heading = "Phases")]
    pub skip_throughput: bool,
    /// Skip phase 4 (validation): the verdict is "validation skipped", exit 0.
    #[arg(long, help_heading = "Phases")]
    pub skip_validate: bool,

    /// vLLM --dtype for /inference/up/async.
    #[arg(long, default_value = "auto", help_heading = "Deploy")]
    pub dtype: String,
    /// Add or update `--tensor-parallel-size N` in the deploy args.
    #[arg(long, help_heading = "Deploy")]
    pub tp_size: Option<u32>,
    /// Add or update `--max-model-len N` in the deploy args.
    #[arg(long, help_heading = "Deploy")]
    pub max_model_len: Option<u64>,
    /// Append one raw vLLM token to the deploy args (repeatable).
    #[arg(long = "extra-arg", allow_hyphen_values = true, help_heading = "Deploy", action = clap::ArgAction::Append)]
    pub extra_arg: Vec<String>,

    /// PoC batch size for the throughput phase [default: unset = the node's default].
    /// A reference baked at one batch size shows a few % mismatches at another.
    #[arg(long, help_heading = "PoC params")]
    pub batch_size: Option<u32>,
    /// PoC batch size for the validation request [default: unset = the node's default].
    #[arg(long, help_heading = "PoC params")]
    pub validation_batch_size: Option<u32>,

    /// L2 distance gate per nonce (dist_threshold) [default: the reference's, else 0.02].
    #[arg(long, help_heading = "Stat test")]
    pub threshold: Option<f64>,
    /// Per-nonce probability of a benign mismatch [default: reference stat_test, else 0.001].
    #[arg(long, help_heading = "Stat test")]
    pub p_mismatch: Option<f64>,
    /// p-value below which fraud is detected [default: reference stat_test, else 0.01].
    #[arg(long, help_heading = "Stat test")]
    pub fraud_threshold: Option<f64>,

    /// Seconds to wait for the model to be DOWNLOADED.
    #[arg(long, default_value_t = 7200.0, help_heading = "Timing")]
    pub download_timeout: f64,
    /// Seconds to wait for vLLM to come up.
    #[arg(long, default_value_t = 1800.0, help_heading = "Timing")]
    pub deploy_timeout: f64,
    /// Seconds for the validation request.
    #[arg(long, default_value_t = 900.0, help_heading = "Timing")]
    pub validation_timeout: f64,
    /// Seconds of mining before the first throughput sample window.
    #[arg(long, default_value_t = 30.0, help_heading = "Timing")]
    pub warmup_seconds: f64,
    /// Seconds of throughput measurement.
    #[arg(long, default_value_t = 60.0, help_heading = "Timing")]
    pub measure_seconds: f64,
    /// Seconds between throughput samples (the first one is one interval in).
    #[arg(long, default_value_t = 10.0, help_heading = "Timing")]
    pub sample_interval: f64,
    /// Simulated seconds per wall second for every wait [default: 1; 1000 for `sim:`;
    /// learnt from an mlnode-sim node's x-sim-time-scale header].
    #[arg(long, help_heading = "Timing")]
    pub time_scale: Option<f64>,

    /// Bearer token, CA bundle and client certificate for a node behind a gateway or TLS.
    #[command(flatten)]
    #[serde(skip)]
    pub access: crate::access::Access,

    /// Run directory for the three report files [default: data/experiments/<exp-name>_<YYYY-MM-DD_HHMMSS>].
    #[arg(long, help_heading = "Output")]
    pub exp_dir: Option<PathBuf>,
    /// Experiment name [default: mlnode_validate_<safe id>].
    #[arg(long, help_heading = "Output")]
    pub exp_name: Option<String>,
    /// Print one JSON summary on stdout (the transcript goes to stderr).
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Also write a JUnit XML file: one test case per phase, plus the verdict.
    #[arg(long, help_heading = "Output")]
    pub junit: Option<PathBuf>,
    /// Also fetch the node's own vectors and recompute the verdict locally; a node whose
    /// verdict disagrees exits 2.
    #[arg(long, help_heading = "Output")]
    pub cross_check: bool,
    /// Warnings (slow/stalled/failed replica, deploy config not applied, explicit batch
    /// size) fail the run with exit 1.
    #[arg(long, help_heading = "Output")]
    pub strict: bool,
    /// Only the verdict, errors and report paths.
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,
    /// Colour: auto (a terminal and no NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = WhenArg::Auto, help_heading = "Output")]
    pub color: WhenArg,
    /// Live progress bars on stderr: auto (a terminal and CI unset), always, never.
    #[arg(long, value_enum, default_value_t = WhenArg::Auto, help_heading = "Output")]
    pub progress: WhenArg,
}

/// `auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WhenArg {
    Auto,
    Always,
    Never,
}

impl From<WhenArg> for mlnode_support::ColorChoice {
    fn from(w: WhenArg) -> Self {
        match w {
            WhenArg::Auto => mlnode_support::ColorChoice::Auto,
            WhenArg::Always => mlnode_support::ColorChoice::Always,
            WhenArg::Never => mlnode_support::ColorChoice::Never,
        }
    }
}

impl From<WhenArg> for crate::console::ProgressMode {
    fn from(w: WhenArg) -> Self {
        match w {
            WhenArg::Auto => crate::console::ProgressMode::Auto,
            WhenArg::Always => crate::console::ProgressMode::Always,
            WhenArg::Never => crate::console::ProgressMode::Never,
        }
    }
}

const AFTER_HELP: &str = "\
Exit codes:
  0    PASS, PASS (with mismatches within stat-test tolerance), or validation skipped
  2    FAIL (fraud_detected), or --cross-check found the node's verdict wrong
  1    any error before a verdict (the three reports are still written), or --strict warnings
  130  SIGINT, 143 SIGTERM, 129 SIGHUP: generation stopped, partial report written

Examples:
  # an embedded simulated node (no GPU):
  mlnode-validate --mlnode-url sim:honest --model Qwen/Qwen3-32B-FP8
  # a real node, reports into a chosen folder:
  mlnode-validate --mlnode-url http://10.0.0.5:8080 --model MiniMaxAI/MiniMax-M2.7 --exp-dir runs/minimax
";

impl ValidateArgs {
    /// Reject flag values that cannot work, naming the flag.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("--download-timeout", self.download_timeout),
            ("--deploy-timeout", self.deploy_timeout),
            ("--validation-timeout", self.validation_timeout),
            ("--warmup-seconds", self.warmup_seconds),
            ("--measure-seconds", self.measure_seconds),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a number of seconds >= 0, got {v}"));
            }
        }
        if !(self.sample_interval.is_finite() && self.sample_interval > 0.0) {
            return Err(format!(
                "--sample-interval must be > 0, got {}",
                self.sample_interval
            ));
        }
        if self.batch_size == Some(0) || self.validation_batch_size == Some(0) {
            return Err("--batch-size and --validation-batch-size must be >= 1".into());
        }
        if let Some(s) = self.time_scale {
            if !(s.is_finite() && s > 0.0) {
                return Err(format!("--time-scale must be > 0, got {s}"));
            }
        }
        Ok(())
    }
}

/// Compose the deploy args: the reference's, then `--tp-size` / `--max-model-len` as
/// add-or-update (every existing `flag value` pair removed, the new pair appended), then
/// each `--extra-arg` token appended.
pub fn compose_deploy_args(
    reference_args: &[String],
    tp_size: Option<u32>,
    max_model_len: Option<u64>,
    extra: &[String],
) -> Vec<String> {
    let mut args = reference_args.to_vec();
    let mut upsert = |flag: &str, value: String| {
        let mut out = Vec::with_capacity(args.len() + 2);
        let mut i = 0;
        while i < args.len() {
            if args[i] == flag {
                i += 2; // drop the flag and its value
                continue;
            }
            out.push(args[i].clone());
            i += 1;
        }
        out.push(flag.to_owned());
        out.push(value);
        args = out;
    };
    if let Some(tp) = tp_size {
        upsert("--tensor-parallel-size", tp.to_string());
    }
    if let Some(len) = max_model_len {
        upsert("--max-model-len", len.to_string());
    }
    args.extend(extra.iter().cloned());
    args
}

/// An empty list as `null` (the report's `args` keep the type they had as an option).
fn null_when_empty<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        serde::Serialize::serialize(v, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn add_or_update() {
        let base = s(&[
            "--tensor-parallel-size",
            "2",
            "--trust-remote-code",
            "--max-model-len",
            "180000",
            "--tensor-parallel-size",
            "2",
        ]);
        assert_eq!(
            compose_deploy_args(&base, Some(4), Some(8192), &s(&["--enforce-eager"])),
            s(&[
                "--trust-remote-code",
                "--tensor-parallel-size",
                "4",
                "--max-model-len",
                "8192",
                "--enforce-eager"
            ])
        );
        assert_eq!(compose_deploy_args(&base, None, None, &[]), base);
        assert_eq!(
            compose_deploy_args(&[], Some(8), None, &[]),
            s(&["--tensor-parallel-size", "8"])
        );
    }

    #[test]
    fn flags_and_defaults() {
        let a =
            ValidateArgs::try_parse_from(["x", "--mlnode-url", "http://h:8080/", "--model", "a/b"])
                .unwrap();
        assert_eq!(
            (a.download_timeout, a.deploy_timeout, a.validation_timeout),
            (7200.0, 1800.0, 900.0)
        );
        assert_eq!(
            (a.warmup_seconds, a.measure_seconds, a.sample_interval),
            (30.0, 60.0, 10.0)
        );
        assert_eq!(
            (a.batch_size, a.validation_batch_size, a.dtype.as_str()),
            (None, None, "auto")
        );
        // A repeated flag takes its last value, as argparse does.
        let a = ValidateArgs::try_parse_from([
            "x",
            "--mlnode-url",
            "http://h:1",
            "--model",
            "m",
            "--measure-seconds",
            "2",
            "--measure-seconds",
            "3",
        ])
        .unwrap();
        assert_eq!(a.measure_seconds, 3.0);
        let a = ValidateArgs::try_parse_from([
            "x",
            "--mlnode-url",
            "http://u:1",
            "--model",
            "m",
            "--artifact",
            "r.json",
            "--warmup-seconds",
            "0.5",
            "--extra-arg",
            "--enforce-eager",
            "--extra-arg",
            "--foo",
        ])
        .unwrap();
        assert_eq!(a.reference, vec![PathBuf::from("r.json")]);
        assert_eq!(a.warmup_seconds, 0.5);
        assert_eq!(a.extra_arg, s(&["--enforce-eager", "--foo"]));
        let a = ValidateArgs::try_parse_from([
            "x",
            "--mlnode-url",
            "http://u:1",
            "--model",
            "m",
            "--sample-interval",
            "0",
        ])
        .unwrap();
        assert!(a.check().unwrap_err().contains("--sample-interval"));
    }
}
