//! The node under test and the PoC round the checks use.

use mlnode_protocol::paths;
use std::path::Path;

use mlnode_protocol::safe_id::reference_file_name;
use mlnode_protocol::wire::{PoCParams, StateResponse};
use mlnode_protocol::Reference;
use mlnode_validator::client::Client;

/// Everything the checks need to talk to one node.
pub struct Target {
    pub client: Client,
    /// The served model (`--model`, else `/state.loaded_model`), if any.
    pub model: Option<String>,
    /// The golden reference for the model, if one was given or found.
    pub reference: Option<Reference>,
    pub allow_disruptive: bool,
}

/// The round used when no reference is given (any round works for node-internal checks).
pub const ROUND_BLOCK_HASH: &str = "CONFORMANCE_BLOCK";
pub const ROUND_PUBLIC_KEY: &str = "conformance_pub_key";
/// Nonces per request in the vector checks.
pub const N_NONCES: i64 = 32;

impl Target {
    /// Resolve the model and the reference. `reference`: explicit path; otherwise
    /// `<artifacts_dir>/<safe id>.json` when it exists.
    pub async fn resolve(
        client: Client,
        model: Option<String>,
        reference: Option<&Path>,
        artifacts_dir: &Path,
        allow_disruptive: bool,
    ) -> Result<Self, String> {
        let state: StateResponse = client
            .get(paths::STATE, 30.0)
            .await
            .map_err(|e| format!("node unreachable or not an MLNode: {e}"))?;
        let model = model.or(state.loaded_model);
        let reference = match (reference, &model) {
            (Some(p), _) => Some(
                Reference::load(p)
                    .map_err(|e| format!("invalid reference {}: {e}", p.display()))?,
            ),
            (None, Some(m)) => {
                let p = artifacts_dir.join(reference_file_name(m));
                p.exists()
                    .then(|| Reference::load(&p))
                    .transpose()
                    .map_err(|e| format!("invalid reference {}: {e}", p.display()))?
            }
            (None, None) => None,
        };
        if let (Some(r), Some(m)) = (&reference, &model) {
            if &r.model != m {
                return Err(format!(
                    "reference is for '{}', the node serves '{m}'",
                    r.model
                ));
            }
        }
        Ok(Target {
            client,
            model,
            reference,
            allow_disruptive,
        })
    }

    /// PoC params of the checks' round.
    pub fn params(&self, model: &str) -> PoCParams {
        match &self.reference {
            Some(r) => PoCParams {
                model: model.into(),
                seq_len: r.seq_len,
                k_dim: r.k_dim,
            },
            None => PoCParams {
                model: model.into(),
                seq_len: 1024,
                k_dim: 12,
            },
        }
    }
}
