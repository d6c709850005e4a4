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
#[command(name = "mlnode-make-artifact", version = mlnode_support::cli::LONG_VERSION,
    after_help = "Exit codes: 0 reference written; 1 any error, usage errors included (nothing written).")]
pub struct MakeArtifactArgs {
    /// MLNode base URL (or `sim:<scenario>`: an embedded node with --model deployed).
    #[arg(long, required_unless_present = "bake_from", default_value = "")]
    pub mlnode_url: String,
    #[arg(long, required_unless_present = "bake_from", default_value = "")]
    pub model: String,
    /// Bake a per-deployment reference without any node: copy this golden reference and
    /// replace its `additional_args` with the node-config entry's args for its model
    /// (the newest skill's step), recording where they came from.
    #[arg(long, requires = "node_config")]
    pub bake_from: Option<PathBuf>,
    /// The node-config file for --bake-from.
    #[arg(long)]
    pub node_config: Option<PathBuf>,
    /// The node of --node-config (needed when the file lists several; `--node-id` is
    /// make_artifact.py's PoC node id here).
    #[arg(long)]
    pub config_node: Option<String>,
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
    /// Bearer token, CA bundle and client certificate for a node behind a gateway or TLS.
    #[command(flatten)]
    pub access: crate::access::Access,
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
    #[error("{0}")]
    Bake(String),
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
    if let Some(golden) = &args.bake_from {
        return bake(args, golden, console);
    }
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
        // An embedded node serves the model asked for (a trusted node already does).
        endpoint::Deploy::Model(&args.model),
        &args.access,
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
    write_reference(&args.out, &reference)?;
    console.line(format!(
        "wrote {} ({} vectors)",
        args.out.display(),
        reference.artifacts.len()
    ));
    Ok(reference)
}

/// `--bake-from GOLDEN --node-config FILE`: the golden's vectors, PoC params and stat test;
/// the node entry's args as `additional_args`; `additional_args_source` says where from.
fn bake(
    args: &MakeArtifactArgs,
    golden: &std::path::Path,
    console: &Console,
) -> Result<Reference, MakeArtifactError> {
    let bad = |e: String| MakeArtifactError::Bake(e);
    let mut r = Reference::load(golden).map_err(|e| {
        bad(format!(
            "invalid golden reference {}: {e}",
            golden.display()
        ))
    })?;
    let cfg_path = args
        .node_config
        .as_deref()
        .ok_or_else(|| bad("--bake-from needs --node-config".into()))?;
    let cfg = crate::run::load_node_config(cfg_path).map_err(bad)?;
    if !args.model.is_empty() && args.model != r.model {
        return Err(bad(format!(
            "--model '{}' differs from the golden reference's '{}'",
            args.model, r.model
        )));
    }
    let (node, m) = cfg
        .model(args.config_node.as_deref(), &r.model)
        .map_err(|e| bad(format!("node-config {}: {e}", cfg_path.display())))?;
    let golden_args = r
        .additional_args
        .replace(m.args.clone())
        .unwrap_or_default();
    let source = format!(
        "node-config {} node '{}' models['{}'].args (golden {} had {})",
        cfg_path.display(),
        node.id,
        r.model,
        golden.display(),
        serde_json::to_string(&golden_args).unwrap_or_default()
    );
    r.extra.insert(
        "additional_args_source".into(),
        serde_json::Value::from(source),
    );
    if let Some(o) = &m.model_override {
        r.extra.insert(
            "model_override".into(),
            serde_json::to_value(o).unwrap_or(serde_json::Value::Null),
        );
    }
    write_reference(&args.out, &r)?;
    console.line(format!(
        "wrote {} ({} vectors from {}, additional_args from node '{}')",
        args.out.display(),
        r.artifacts.len(),
        golden.display(),
        node.id
    ));
    Ok(r)
}

fn write_reference(out: &std::path::Path, r: &Reference) -> Result<(), MakeArtifactError> {
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| MakeArtifactError::Write {
            path: dir.display().to_string(),
            source,
        })?;
    }
    crate::report::write_atomic(out, &r.to_json_pretty()).map_err(|source| {
        MakeArtifactError::Write {
            path: out.display().to_string(),
            source,
        }
    })
}
