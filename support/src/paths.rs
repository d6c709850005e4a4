//! Where the golden references live when no flag says.

use std::path::{Path, PathBuf};

/// The environment variable that names the artifacts directory.
pub const ARTIFACTS_DIR_ENV: &str = "MLNODE_ARTIFACTS_DIR";

/// `$MLNODE_ARTIFACTS_DIR`, else `./artifacts` when it exists, else the repository's
/// `artifacts/` as seen at build time (so `cargo run` works from any folder of a checkout).
pub fn default_artifacts_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(ARTIFACTS_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("artifacts");
    if local.is_dir() {
        return local;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    repo.canonicalize().unwrap_or(repo)
}
