//! Finding and checking the golden reference, before any network call.

use std::path::{Path, PathBuf};

use mlnode_protocol::safe_id::{reference_file_name, safe_id};
use mlnode_protocol::Reference;

/// Why the run cannot start: each message is what the operator needs to act.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceLookupError {
    #[error("no golden reference for model '{model}'{hint}\n  expected: {expected}\n  available references in {dir}: {available}\n  bake one from a trusted node that already serves the model:\n    mlnode-make-artifact --mlnode-url <trusted_mlnode_url> --model '{model}' --num-nonces 32 --out {expected}")]
    Missing {
        model: String,
        /// ` — did you mean '<model>'?` for a near miss (case, a typo), else empty.
        hint: String,
        expected: String,
        dir: String,
        available: String,
    },
    #[error("reference {path} is for model '{found}', but --model is '{requested}'{}", if found.to_lowercase() == requested.to_lowercase() { " (model ids are case-sensitive: did you mean --model '".to_string() + found + "'?)" } else { String::new() })]
    ModelMismatch {
        path: String,
        found: String,
        requested: String,
    },
    #[error("invalid reference {path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The largest reference file read (20,000 vectors are ~1.3 MB; the largest real one is
/// well under 1 MB).
pub const MAX_REFERENCE_BYTES: u64 = 256 << 20;

/// Where the reference came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceSource {
    Flag,
    ArtifactsDir,
    AllReferences,
    /// No artifacts directory was found: the references compiled into the binary.
    Embedded,
}

impl ReferenceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceSource::Flag => "--reference",
            ReferenceSource::ArtifactsDir => "artifacts dir (by model id)",
            ReferenceSource::AllReferences => "--all-references",
            ReferenceSource::Embedded => {
                "compiled-in reference: no artifacts dir found (--artifacts-dir or MLNODE_ARTIFACTS_DIR win)"
            }
        }
    }
}

/// The path the reference is expected at.
pub fn expected_path(
    model: &str,
    flag: Option<&Path>,
    artifacts_dir: &Path,
) -> (PathBuf, ReferenceSource) {
    match flag {
        Some(p) => (p.to_path_buf(), ReferenceSource::Flag),
        None => (
            artifacts_dir.join(reference_file_name(model)),
            ReferenceSource::ArtifactsDir,
        ),
    }
}

fn available(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

/// Read a reference file, but only a regular file of a sane size: a FIFO would block,
/// `/dev/zero` would grow forever. Every reference the validator reads goes through here.
pub fn load_checked(path: &Path) -> Result<Reference, ReferenceLookupError> {
    let invalid = |reason: String| ReferenceLookupError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > MAX_REFERENCE_BYTES {
        return Err(invalid(format!(
            "{} bytes, over the {} MiB limit for a golden reference",
            meta.len(),
            MAX_REFERENCE_BYTES >> 20
        )));
    }
    Reference::load(path).map_err(|e| invalid(e.to_string()))
}

/// Every `*.json` in `dir` that loads (through [`load_checked`]) as a reference, sorted
/// by file name; others are skipped: they are not references.
fn loadable(dir: &Path) -> Vec<(PathBuf, Reference)> {
    let mut out: Vec<(PathBuf, Reference)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| load_checked(&p).ok().map(|r| (p, r)))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Load and check the reference for `model`. Never substitutes another model.
pub fn resolve(
    model: &str,
    path: &Path,
    artifacts_dir: &Path,
) -> Result<Reference, ReferenceLookupError> {
    if !path.exists() {
        return Err(ReferenceLookupError::Missing {
            model: model.into(),
            hint: near_miss(model, artifacts_dir)
                .map(|m| format!(" — did you mean '{m}'?"))
                .unwrap_or_default(),
            expected: path.display().to_string(),
            dir: artifacts_dir.display().to_string(),
            available: available(artifacts_dir),
        });
    }
    let r = load_checked(path)?;
    if r.model != model {
        return Err(ReferenceLookupError::ModelMismatch {
            path: path.display().to_string(),
            found: r.model.clone(),
            requested: model.into(),
        });
    }
    Ok(r)
}

/// Every reference in `dir` whose `model` is `model`, sorted by file name (files that do
/// not parse are skipped: they are not references of this model).
/// The references come back loaded (their model already matches), so they are not
/// parsed twice.
pub fn all_for_model(model: &str, dir: &Path) -> Vec<(PathBuf, Reference)> {
    loadable(dir)
        .into_iter()
        .filter(|(_, r)| r.model == model)
        .collect()
}

/// The model id of the shipped reference closest to `model` (same safe id up to case and
/// separators, or a near typo), when there is one.
fn near_miss(model: &str, dir: &Path) -> Option<String> {
    let models: Vec<String> = loadable(dir).into_iter().map(|(_, r)| r.model).collect();
    let wanted = safe_id(model);
    crate::endpoint::did_you_mean(
        &wanted,
        models.iter().map(String::as_str).filter(|m| *m != model),
    )
    .or_else(|| {
        models
            .iter()
            .map(String::as_str)
            .find(|m| safe_id(m) == wanted)
    })
    .map(str::to_owned)
    .filter(|m| m != model)
}

/// `mlnode_validate_<safe id>`.
pub fn default_exp_name(model: &str) -> String {
    format!("mlnode_validate_{}", safe_id(model))
}
