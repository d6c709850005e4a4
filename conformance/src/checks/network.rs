//! `network/*`: what the network node's client decodes from the newest routes
//! (network-node §2–§3), checked on any node: the encrypted identity (its key id must
//! be the real rule, or the client refuses it), the embedding answer, and the route the
//! client's older test expects but no MLNode mounts.

use base64::Engine as _;
use mlnode_protocol::paths;
use serde_json::{json, Value};
use sha2::Digest;

use crate::outcome::CheckResult;
use crate::target::Target;

/// The node's 503 text when it has no key provider.
const IDENTITY_DISABLED: &str = "encrypted endpoint is not enabled on this node";

/// The checks of this group.
pub async fn run(t: &Target) -> Vec<CheckResult> {
    vec![identity(t).await, embed(t).await, pow_versions(t).await]
}

async fn identity(t: &Target) -> CheckResult {
    let name = "network/encrypted-identity";
    let a = match t.client.get_raw(paths::ENCRYPTED_IDENTITY, 30.0).await {
        Ok(a) => a,
        Err(e) => return CheckResult::fail(name, e.to_string()),
    };
    match a.status {
        503 if a.body["detail"] == IDENTITY_DISABLED => CheckResult::pass(
            name,
            "503: no key provider (the client reports ErrEncryptedIdentityDisabled)",
        ),
        404 => CheckResult::skip(name, "404: this node version has no encrypted router"),
        200 => identity_body(&a.body).map_or_else(
            |why| CheckResult::fail(name, why),
            |ok| CheckResult::pass(name, ok),
        ),
        s => CheckResult::fail(
            name,
            format!("HTTP {s}: {}", mlnode_validator::client::detail_of(&a.body)),
        ),
    }
}

/// The 200 answer as the client decodes it: a 32-byte X25519 key in standard base64,
/// and (when present) a key id equal to hex(SHA-256(key)[..8]).
fn identity_body(v: &Value) -> Result<String, String> {
    let pk = v["public_key"]
        .as_str()
        .ok_or("public_key missing or not a string")?;
    let pk = base64::engine::general_purpose::STANDARD
        .decode(pk)
        .map_err(|e| format!("public_key is not standard base64: {e}"))?;
    if pk.len() != 32 {
        return Err(format!(
            "public_key has {} bytes, an X25519 key 32",
            pk.len()
        ));
    }
    let want: String = sha2::Sha256::digest(&pk)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let id = v["key_id"].as_str().unwrap_or("");
    if !id.is_empty() && id != want {
        return Err(format!(
            "key_id {id} is not sha256(public_key)[:8] = {want}: the client refuses it"
        ));
    }
    match v["envelope_version"].as_str() {
        None | Some("") | Some("v1") => {}
        Some(other) => return Err(format!("envelope_version {other}: the client speaks v1")),
    }
    Ok(format!(
        "200: provider {}, key_id {want}",
        v["provider"].as_str().unwrap_or("?")
    ))
}

async fn embed(t: &Target) -> CheckResult {
    let name = "network/embed";
    let a = match t
        .client
        .post_raw(paths::EMBED, &json!({"text": "conformance probe"}), 60.0)
        .await
    {
        Ok(a) => a,
        Err(e) => return CheckResult::fail(name, e.to_string()),
    };
    if a.status == 404 {
        return CheckResult::skip(name, "404: this node version has no /api/v1/embed");
    }
    if a.status != 200 {
        return CheckResult::fail(
            name,
            format!(
                "HTTP {}: {}",
                a.status,
                mlnode_validator::client::detail_of(&a.body)
            ),
        );
    }
    let Some(e) = a.body["embedding"].as_array() else {
        return CheckResult::fail(name, "embedding missing or not a list");
    };
    let values: Vec<f64> = e.iter().filter_map(Value::as_f64).collect();
    let dims = a.body["dimensions"].as_u64();
    let finite = values.iter().all(|x| x.is_finite());
    let ok = values.len() == e.len() && finite && dims == Some(e.len() as u64) && !e.is_empty();
    CheckResult::expect(
        name,
        ok,
        format!(
            "200: {} values (dimensions {}), model {}",
            e.len(),
            dims.map_or("missing".into(), |d| d.to_string()),
            a.body["model"].as_str().unwrap_or("?")
        ),
    )
}

async fn pow_versions(t: &Target) -> CheckResult {
    let name = "network/no-pow-versions-route";
    match t.client.get_raw("/api/v1/inference/pow/versions", 30.0).await {
        Ok(a) => CheckResult::expect(
            name,
            a.status == 404,
            format!(
                "GET /api/v1/inference/pow/versions → {} (no MLNode mounts it; versions live at /api/v1/versions)",
                a.status
            ),
        ),
        Err(e) => CheckResult::fail(name, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_id_rule() {
        let pk = [7u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(pk);
        let id: String = sha2::Sha256::digest(pk)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(identity_body(&json!({"public_key": b64, "key_id": id})).is_ok());
        assert!(
            identity_body(&json!({"public_key": b64, "key_id": "0000000000000000"}))
                .unwrap_err()
                .contains("refuses")
        );
        assert!(identity_body(&json!({"public_key": "AAAA"})).is_err());
        assert!(identity_body(&json!({"public_key": b64, "envelope_version": "v2"})).is_err());
    }
}
