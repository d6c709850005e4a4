//! Writing the report files: each atomically (temp file + rename), so a reader never sees
//! half a report, on every path — errors and interruptions included.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{txt, ValidateReport};

/// Paths of the three files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportPaths {
    pub config: PathBuf,
    pub report: PathBuf,
    pub txt: PathBuf,
}

impl ReportPaths {
    pub fn in_dir(dir: &Path) -> Self {
        ReportPaths {
            config: dir.join("validate_config.json"),
            report: dir.join("validate_report.json"),
            txt: dir.join("validate_report.txt"),
        }
    }
}

/// Write `contents` to `path` atomically.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

/// Indented JSON (2 spaces) with a trailing newline, as `json.dumps(indent=2)` + "\n".
pub fn pretty(v: &impl Serialize) -> std::io::Result<String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(std::io::Error::other)
}

/// Check, before any network call, that `dir` can hold the reports: create it and write
/// and remove a probe file. An unwritable `--exp-dir` is found in milliseconds, not after
/// four phases.
pub fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".mlnode-validate-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// Write all three files into `dir` (created if needed).
pub fn write_all(dir: &Path, report: &ValidateReport) -> std::io::Result<ReportPaths> {
    std::fs::create_dir_all(dir)?;
    let paths = ReportPaths::in_dir(dir);
    write_atomic(&paths.config, &pretty(&report.config)?)?;
    write_atomic(&paths.report, &pretty(report)?)?;
    write_atomic(&paths.txt, &txt::render(report))?;
    Ok(paths)
}
