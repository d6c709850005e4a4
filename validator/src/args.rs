//! Command-line flags: every flag of validate.py with its default (validator.md), plus
//! ours (`--json`, `--junit`, `--cross-check`, `--time-scale`, `--artifacts-dir`).
//! Seconds accept fractions; integers keep working.

use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

/// Validate an MLNode end to end: download → deploy → throughput → validate.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "mlnode-validate", version)]
pub struct ValidateArgs {
    /// MLNode base URL, or `sim:<scenario>` for an embedded simulated node.
    #[arg(long)]
    pub mlnode_url: String,
    /// Full HuggingFace model id, e.g. Qwen/Qwen3-32B-FP8.
    #[arg(long)]
    pub model: String,
    /// Golden reference file (default: <artifacts dir>/<safe id>.json).
    #[arg(long, alias = "artifact")]
    pub reference: Option<PathBuf>,
    /// Directory of golden references [env: MLNODE_ARTIFACTS_DIR; default: ./artifacts or the repo's].
    #[arg(long)]
    pub artifacts_dir: Option<PathBuf>,
    /// Run directory for the three report files.
    #[arg(long)]
    pub exp_dir: Option<PathBuf>,
    /// Experiment name (default mlnode_validate_<safe id>).
    #[arg(long)]
    pub exp_name: Option<String>,
    #[arg(long)]
    pub skip_download: bool,
    #[arg(long)]
    pub skip_deploy: bool,
    #[arg(long)]
    pub skip_throughput: bool,
    #[arg(long)]
    pub skip_validate: bool,
    /// vLLM dtype for the deploy.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
    /// Add or update `--tensor-parallel-size N` in the deploy args.
    #[arg(long)]
    pub tp_size: Option<u32>,
    /// Add or update `--max-model-len N` in the deploy args.
    #[arg(long)]
    pub max_model_len: Option<u64>,
    /// Append a raw vLLM token to the deploy args (repeatable).
    #[arg(long = "extra-arg", allow_hyphen_values = true)]
    pub extra_arg: Vec<String>,
    /// dist_threshold override.
    #[arg(long)]
    pub threshold: Option<f64>,
    #[arg(long)]
    pub p_mismatch: Option<f64>,
    #[arg(long)]
    pub fraud_threshold: Option<f64>,
    #[arg(long, default_value_t = 7200.0)]
    pub download_timeout: f64,
    #[arg(long, default_value_t = 1800.0)]
    pub deploy_timeout: f64,
    #[arg(long, default_value_t = 900.0)]
    pub validation_timeout: f64,
    #[arg(long, default_value_t = 30.0)]
    pub warmup_seconds: f64,
    #[arg(long, default_value_t = 60.0)]
    pub measure_seconds: f64,
    #[arg(long, default_value_t = 10.0)]
    pub sample_interval: f64,
    /// PoC batch size for the throughput phase.
    #[arg(long, default_value_t = 32)]
    pub batch_size: u32,
    #[arg(long, default_value_t = 64)]
    pub validation_batch_size: u32,
    /// Print one JSON summary on stdout (and nothing else there).
    #[arg(long)]
    pub json: bool,
    /// Write a JUnit XML file with one test case per phase.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Also fetch the node's own vectors and recompute the verdict locally.
    #[arg(long)]
    pub cross_check: bool,
    /// Simulated seconds per wall second for every wait (default: 1; 1000 for `sim:`).
    #[arg(long)]
    pub time_scale: Option<f64>,
}

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
        if self.batch_size == 0 || self.validation_batch_size == 0 {
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
            (32, 64, "auto")
        );
        let a = ValidateArgs::try_parse_from([
            "x",
            "--mlnode-url",
            "u",
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
        assert_eq!(a.reference, Some(PathBuf::from("r.json")));
        assert_eq!(a.warmup_seconds, 0.5);
        assert_eq!(a.extra_arg, s(&["--enforce-eager", "--foo"]));
        let a = ValidateArgs::try_parse_from([
            "x",
            "--mlnode-url",
            "u",
            "--model",
            "m",
            "--sample-interval",
            "0",
        ])
        .unwrap();
        assert!(a.check().unwrap_err().contains("--sample-interval"));
    }
}
