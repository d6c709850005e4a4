//! `mlnode-make-artifact`: bake a golden reference from a trusted node that already
//! serves the model (it never deploys). Flags, calls and output as make_artifact.py.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;
use mlnode_protocol::wire::{Artifact, Encoding, GenerateRequest, PoCParams};
use mlnode_protocol::Reference;

use crate::console::Console;
use crate::endpoint;

/// Bake a golden reference (honest vectors for nonces 0..N-1) from a trusted MLNode.
#[derive(Debug, Clone, Parser)]
#[command(name = "mlnode-make-artifact", version)]
pub struct MakeArtifactArgs {
    /// MLNode base URL (or `sim:<scenario>` with the model deployed by the scenario).
    #[arg(long)]
    pub mlnode_url: String,
    #[arg(long)]
    pub model: String,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1024)]
    pub seq_len: u32,
    #[arg(long, default_value_t = 12)]
    pub k_dim: u32,
    #[arg(long, default_value = "TEST_BLOCK")]
    pub block_hash: String,
    #[arg(long, default_value_t = 100)]
    pub block_height: i64,
    #[arg(long, default_value = "test_pub_keys")]
    pub public_key: String,
    #[arg(long, default_value_t = 0)]
    pub node_id: i64,
    #[arg(long, default_value_t = 1)]
    pub node_count: i64,
    /// Bakes nonces 0..N-1.
    #[arg(long, default_value_t = 32)]
    pub num_nonces: u32,
    /// Omitted from the request when unset, so the node's default applies.
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Seconds for the generate call.
    #[arg(long, default_value_t = 900.0)]
    pub timeout: f64,
    /// Recorded only.
    #[arg(long, default_value_t = 0.2)]
    pub dist_threshold: f64,
    #[arg(long, default_value = "locally generated via mlnode-make-artifact")]
    pub source: String,
    /// JSON list of strings, recorded only.
    #[arg(long)]
    pub additional_args: Option<String>,
    /// Simulated seconds per wall second (default 1; 1000 for `sim:`).
    #[arg(long)]
    pub time_scale: Option<f64>,
}

/// Why no reference was written.
#[derive(Debug, thiserror::Error)]
pub enum MakeArtifactError {
    #[error("--additional-args must be a JSON list of strings: {0}")]
    AdditionalArgs(String),
    #[error("{0}")]
    Call(#[from] crate::client::CallError),
    #[error("vLLM is not running on {url} (make-artifact never deploys); up/status: {status}")]
    NotRunning { url: String, status: String },
    #[error("the node did not return nonce(s) {0:?}")]
    MissingNonces(Vec<i64>),
    #[error(transparent)]
    Connect(#[from] endpoint::ConnectError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Bake and write the reference; returns it.
pub async fn run(
    args: &MakeArtifactArgs,
    console: &Console,
) -> Result<Reference, MakeArtifactError> {
    let additional_args: Vec<String> = match &args.additional_args {
        None => Vec::new(),
        Some(s) => {
            serde_json::from_str(s).map_err(|e| MakeArtifactError::AdditionalArgs(e.to_string()))?
        }
    };
    let c = endpoint::connect(
        &args.mlnode_url,
        args.time_scale,
        &mlnode_support::paths::default_artifacts_dir(),
        endpoint::Deploy::Scenario,
    )
    .await?
    .client;
    let st = c.up_status().await?;
    if !st.is_running {
        return Err(MakeArtifactError::NotRunning {
            url: args.mlnode_url.clone(),
            status: serde_json::to_string(&st).unwrap_or_default(),
        });
    }
    let nonces: Vec<i64> = (0..i64::from(args.num_nonces)).collect();
    let req = GenerateRequest {
        block_hash: args.block_hash.clone(),
        block_height: args.block_height,
        public_key: args.public_key.clone(),
        node_id: args.node_id,
        node_count: args.node_count,
        nonces: nonces.clone(),
        params: PoCParams {
            model: args.model.clone(),
            seq_len: args.seq_len,
            k_dim: args.k_dim,
        },
        // Left out when unset, so the node's default applies.
        batch_size: args.batch_size,
        wait: true,
        url: None,
        validation: None,
        stat_test: None,
        poc_stronger_rng: false,
    };
    console.line(format!(
        "requesting {} nonces from {}",
        nonces.len(),
        args.mlnode_url
    ));
    let res = c.generate_artifacts(&req, args.timeout).await?;
    drop(c); // stops an embedded node
    let by_nonce: HashMap<i64, String> = res
        .artifacts
        .into_iter()
        .map(|a| (a.nonce, a.vector_b64))
        .collect();
    let missing: Vec<i64> = nonces
        .iter()
        .copied()
        .filter(|n| !by_nonce.contains_key(n))
        .collect();
    if !missing.is_empty() {
        return Err(MakeArtifactError::MissingNonces(missing));
    }
    let artifacts = nonces
        .iter()
        .map(|n| Artifact {
            nonce: *n,
            vector_b64: by_nonce[n].clone(),
        })
        .collect();
    let reference = Reference {
        model: args.model.clone(),
        seq_len: args.seq_len,
        k_dim: args.k_dim,
        block_hash: args.block_hash.clone(),
        block_height: Some(args.block_height),
        public_key: args.public_key.clone(),
        node_id: Some(args.node_id),
        node_count: Some(args.node_count),
        dist_threshold: Some(args.dist_threshold),
        stat_test: None,
        collection_batch_size: Some(args.batch_size),
        additional_args: Some(additional_args),
        source: Some(args.source.clone()),
        notes: None,
        generated_at: Some(
            chrono::Local::now()
                .format("%Y-%m-%dT%H:%M:%S%.6f")
                .to_string(),
        ),
        encoding: Some(if res.encoding.dtype.is_empty() {
            Encoding::f16_le(args.k_dim)
        } else {
            res.encoding
        }),
        artifacts,
        extra: Default::default(),
    };
    if let Some(dir) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| MakeArtifactError::Write {
            path: dir.display().to_string(),
            source,
        })?;
    }
    crate::report::write_atomic(&args.out, &reference.to_json_pretty()).map_err(|source| {
        MakeArtifactError::Write {
            path: args.out.display().to_string(),
            source,
        }
    })?;
    console.line(format!(
        "wrote {} ({} vectors)",
        args.out.display(),
        reference.artifacts.len()
    ));
    Ok(reference)
}
