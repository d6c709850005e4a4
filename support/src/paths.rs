//! Where the golden references live when no flag says — and, when no directory is
//! found (an installed binary, the clone moved away), the six real references compiled
//! into the binary.

use std::path::{Path, PathBuf};

/// The environment variable that names the artifacts directory.
pub const ARTIFACTS_DIR_ENV: &str = "MLNODE_ARTIFACTS_DIR";

/// The real golden references of `artifacts/`, compiled in: (file name, JSON).
pub const EMBEDDED_REFERENCES: &[(&str, &str)] = &[
    (
        "qwen-qwen3-32b-fp8.json",
        include_str!("../../artifacts/qwen-qwen3-32b-fp8.json"),
    ),
    (
        "minimaxai-minimax-m2.7.json",
        include_str!("../../artifacts/minimaxai-minimax-m2.7.json"),
    ),
    (
        "moonshotai-kimi-k2.6.json",
        include_str!("../../artifacts/moonshotai-kimi-k2.6.json"),
    ),
    (
        "qwen-qwen3-0.6b.json",
        include_str!("../../artifacts/qwen-qwen3-0.6b.json"),
    ),
    (
        "qwen-qwen3-235b-a22b-instruct-2507-fp8.json",
        include_str!("../../artifacts/qwen-qwen3-235b-a22b-instruct-2507-fp8.json"),
    ),
    (
        "qwen-qwen3-235b-a22b-instruct-2507-fp8-deepgemm.json",
        include_str!("../../artifacts/qwen-qwen3-235b-a22b-instruct-2507-fp8-deepgemm.json"),
    ),
];

/// Where an artifacts directory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactsSource {
    /// `--artifacts-dir`.
    Flag,
    /// `$MLNODE_ARTIFACTS_DIR`.
    Env,
    /// `./artifacts`.
    WorkingDir,
    /// The checkout the binary was built from.
    Checkout,
    /// None found: the compiled-in references, written to a cache directory.
    Embedded,
}

impl ArtifactsSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactsSource::Flag => "--artifacts-dir",
            ArtifactsSource::Env => ARTIFACTS_DIR_ENV,
            ArtifactsSource::WorkingDir => "./artifacts",
            ArtifactsSource::Checkout => "the checkout's artifacts/",
            ArtifactsSource::Embedded => "compiled-in references (no artifacts directory found)",
        }
    }
}

/// An artifacts directory and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactsDir {
    pub path: PathBuf,
    pub source: ArtifactsSource,
}

/// `flag`, else `$MLNODE_ARTIFACTS_DIR`, else `./artifacts` when it exists, else the
/// checkout's `artifacts/` as seen at build time when it still exists, else the
/// compiled-in references written once to a cache directory
/// (`$XDG_CACHE_HOME` or `~/.cache`, else the temp dir: `mlnode-harness/references-<version>`).
/// An explicit directory always wins, even a wrong one: its errors name it.
pub fn artifacts_dir(flag: Option<&Path>) -> ArtifactsDir {
    let found = |path: PathBuf, source| ArtifactsDir { path, source };
    if let Some(p) = flag {
        return found(p.to_path_buf(), ArtifactsSource::Flag);
    }
    if let Some(dir) = std::env::var_os(ARTIFACTS_DIR_ENV) {
        return found(PathBuf::from(dir), ArtifactsSource::Env);
    }
    let local = PathBuf::from("artifacts");
    if local.is_dir() {
        return found(local, ArtifactsSource::WorkingDir);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    if repo.is_dir() {
        return found(
            repo.canonicalize().unwrap_or(repo),
            ArtifactsSource::Checkout,
        );
    }
    found(embedded_dir(), ArtifactsSource::Embedded)
}

/// [`artifacts_dir`]`(None)`'s path.
pub fn default_artifacts_dir() -> PathBuf {
    artifacts_dir(None).path
}

/// The compiled-in references as files: written once per version (atomically, so two
/// runs at once never see half a file), then reused.
fn embedded_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base
        .join("mlnode-harness")
        .join(format!("references-{}", env!("CARGO_PKG_VERSION")));
    if write_embedded(&dir).is_ok() {
        return dir;
    }
    // A read-only home: the temp dir.
    let tmp = std::env::temp_dir()
        .join("mlnode-harness")
        .join(format!("references-{}", env!("CARGO_PKG_VERSION")));
    let _ = write_embedded(&tmp);
    tmp
}

fn write_embedded(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in EMBEDDED_REFERENCES {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|b| b == text.as_bytes()) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_references_are_written_once_and_complete() {
        let dir = std::env::temp_dir().join(format!("mlnode-embedded-test-{}", std::process::id()));
        write_embedded(&dir).unwrap();
        write_embedded(&dir).unwrap();
        for (name, text) in EMBEDDED_REFERENCES {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), *text);
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            EMBEDDED_REFERENCES.len()
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            artifacts_dir(Some(Path::new("/x"))).source,
            ArtifactsSource::Flag
        );
    }
}
