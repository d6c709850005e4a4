//! PoC in the testermint mode (network-node §4.5): the routes that schedule webhooks,
//! with real vectors and real verdicts where the incumbent sends a byte pattern and an
//! always-honest answer.
//!
//! * `init/generate` (v2): one POST of exactly W artifacts to `{url}/generated` about
//!   1 s later; W per Host from `/api/v1/responses/poc` (else any host, else 10); nonces
//!   `base … base+W-1` from the process-wide counter; each vector the real unit vector
//!   of the request's round (model, seq_len, k_dim, block_hash, public_key, nonce), moved
//!   by the host's fraud rules if it has any.
//! * `generate` (v2 validation): one POST to `{url}/validated` about 5 s later with the
//!   verdict of recomputing every nonce honestly and comparing the received artifacts
//!   (the real per-nonce L2 rule and binomial test, the request's `stat_test`).
//! * the legacy v1 routes keep the incumbent's behaviour (dead paths in the network node).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mlnode_protocol::wire::{Artifact, StatTestOverrides};
use mlnode_protocol::{vectors, StatTest, DEFAULT_K_DIM, SERVER_DEFAULTS};
use serde_json::{json, Value};

use super::routes::{bad, with_host, V1_STATE_ERROR};
use super::{empty, host_of, Fraud, Mock, ModelState, PowState, VALIDATIONS_KEPT};
use crate::deviation::{rule_rng, BatchPosition, Deviation};

/// The PoC routes that schedule webhooks (§4.3 rows 6, 7, 10, 12).
pub(super) fn routes() -> axum::Router<Arc<Mock>> {
    use axum::routing::post;
    axum::Router::new()
        .route("/api/v1/inference/pow/init/generate", post(init_generate))
        .route("/api/v1/inference/pow/generate", post(generate))
        .route("/api/v1/pow/init/generate", post(v1_init_generate))
        .route("/api/v1/pow/validate", post(v1_validate))
}

/// The scenario name weights are set under by default (`ModelState`).
pub const DEFAULT_SCENARIO: &str = "ModelState";
/// Artifacts per init when no weight is set.
pub const DEFAULT_WEIGHT: i64 = 10;
/// Delays of the incumbent's webhooks, in simulated seconds.
const GENERATED_DELAY: f64 = 1.0;
const VALIDATED_DELAY: f64 = 5.0;

/// The body as JSON whatever the content type (the network node sends none), or null.
fn lenient(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// The round of a request (`params.model`, `params.seq_len`, `params.k_dim` or 12).
pub(crate) struct RoundOf {
    pub model: String,
    pub seq_len: u32,
    pub k_dim: u32,
    pub block_hash: String,
    pub public_key: String,
}

impl RoundOf {
    fn of(v: &Value) -> Self {
        let p = &v["params"];
        RoundOf {
            model: p["model"].as_str().unwrap_or("").to_owned(),
            seq_len: p["seq_len"]
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .unwrap_or(0),
            k_dim: p["k_dim"]
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .filter(|k| (1..=mlnode_protocol::codec::MAX_FAST_K as u32).contains(k))
                .unwrap_or(DEFAULT_K_DIM as u32),
            block_hash: v["block_hash"].as_str().unwrap_or("").to_owned(),
            public_key: v["public_key"].as_str().unwrap_or("").to_owned(),
        }
    }

    fn round(&self) -> vectors::Round {
        vectors::Round::new(
            &self.model,
            self.seq_len,
            self.k_dim,
            &self.block_hash,
            &self.public_key,
        )
    }
}

/// The vector a host generates for `nonce`: honest, or moved by its fraud rules.
pub(crate) fn generated(
    round: &vectors::Round,
    r: &RoundOf,
    fraud: Option<&Fraud>,
    seed: u64,
    index: usize,
    nonce: i64,
) -> mlnode_protocol::Vector {
    let mut unit = vec![0.0f64; r.k_dim as usize];
    round.unit_into(nonce, false, &mut unit);
    if let Some(f) = fraud {
        let rule_round = format!("{}\u{1f}{}\u{1f}{}", r.model, r.block_hash, r.public_key);
        let pos = BatchPosition {
            index,
            batch_size: 32,
            default_batch_size: 32,
        };
        for (i, rule) in f.rules.iter().enumerate() {
            let mut rng = rule_rng(seed, i, &rule_round, nonce);
            if let Some(dev) = rule.apply(&mut rng, nonce, pos) {
                unit = match dev {
                    Deviation::Distance(d) => vectors::perturb(&unit, d, &mut rng),
                    Deviation::Forged => vectors::random_unit(unit.len(), &mut rng),
                };
                break;
            }
        }
    }
    vectors::to_f16(&unit)
}

/// `{url}/{what}` when `url` already holds `/v2/poc-batches`, else `{url}/v2/poc-batches/{what}`.
fn target(url: &str, what: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.contains("/v2/poc-batches") {
        format!("{url}/{what}")
    } else {
        format!("{url}/v2/poc-batches/{what}")
    }
}

/// One POST after `delay` simulated seconds, no retry (failures are logged).
fn deliver(mock: &Arc<Mock>, delay: f64, url: String, body: Value) {
    let mock = mock.clone();
    tokio::spawn(async move {
        mock.clock.sleep(delay).await;
        match mock.http.post(&url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(url, status = r.status().as_u16(), "webhook delivered")
            }
            Ok(r) => tracing::warn!(url, status = r.status().as_u16(), "webhook answered"),
            Err(e) => tracing::warn!(url, error = %e, "webhook failed"),
        }
    });
}

/// The artifact count for `host`: its own weight, else any host's, else 10.
fn weight(mock: &Mock, host: &str) -> i64 {
    let w = mock.weights.lock().unwrap_or_else(|e| e.into_inner());
    w.get(&(Some(host.to_owned()), DEFAULT_SCENARIO.to_owned()))
        .or_else(|| w.get(&(None, DEFAULT_SCENARIO.to_owned())))
        .copied()
        .unwrap_or(DEFAULT_WEIGHT)
        .max(0)
}

/// Route #6.
async fn init_generate(
    State(mock): State<Arc<Mock>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let host = host_of(&headers);
    let already = match with_host(&mock, &headers, |h| {
        if h.pow == PowState::Generating {
            return (true, None);
        }
        h.model = ModelState::Pow;
        h.pow = PowState::Generating;
        (false, h.fraud.clone())
    }) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if already.0 {
        return Json(
            json!({"status": "OK", "backends": 1, "n_groups": 1, "message": "Already generating"}),
        )
        .into_response();
    }
    let v = lenient(&body);
    let url = v["url"].as_str().filter(|u| !u.is_empty());
    let complete = url.is_some()
        && v["public_key"].is_string()
        && v["block_hash"].is_string()
        && !v["block_height"].is_null();
    if let (true, Some(url)) = (complete, url) {
        let w = weight(&mock, &host);
        let base = mock.nonce.fetch_add(w, Ordering::SeqCst);
        let r = RoundOf::of(&v);
        let round = r.round();
        let artifacts: Vec<Artifact> = (0..w)
            .map(|i| {
                let nonce = base + i;
                Artifact {
                    nonce,
                    vector_b64: generated(
                        &round,
                        &r,
                        already.1.as_ref(),
                        mock.opts.seed,
                        i as usize,
                        nonce,
                    )
                    .encode(),
                }
            })
            .collect();
        let body = json!({
            "public_key": v["public_key"], "node_id": v["node_id"].as_i64().unwrap_or(0),
            "block_hash": v["block_hash"], "block_height": v["block_height"],
            "artifacts": artifacts,
            "encoding": {"dtype": "f16", "k_dim": r.k_dim, "endian": "le"},
        });
        deliver(&mock, GENERATED_DELAY, target(url, "generated"), body);
    }
    Json(json!({"status": "OK", "backends": 1, "n_groups": 1})).into_response()
}

/// The verdict of a validation request: every nonce recomputed honestly, the received
/// artifacts judged with the real rule (no artifacts: an honest empty verdict).
pub(crate) fn verdict(v: &Value) -> Value {
    let nonces: Vec<i64> = v["nonces"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let artifacts: Vec<Artifact> =
        serde_json::from_value(v["validation"]["artifacts"].clone()).unwrap_or_default();
    let honest = |n_total: usize| json!({"n_total": n_total, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 1.0, "fraud_detected": false});
    if nonces.is_empty() {
        return honest(DEFAULT_WEIGHT as usize);
    }
    if artifacts.is_empty() {
        return honest(nonces.len());
    }
    let overrides: StatTestOverrides =
        serde_json::from_value(v["stat_test"].clone()).unwrap_or_default();
    let st: StatTest = SERVER_DEFAULTS.merged(&overrides);
    let r = RoundOf::of(v);
    let round = r.round();
    let k = r.k_dim as usize;
    let result = mlnode_protocol::verdict::validate_with(
        &nonces,
        &artifacts,
        |_, nonce, out| {
            let mut unit = vec![0.0f64; k];
            round.unit_into(nonce, false, &mut unit);
            let k = k.min(out.len());
            vectors::round_to_f16_values(&unit[..k], &mut out[..k]);
            Some(k)
        },
        &st,
    );
    match result {
        Ok(res) => serde_json::to_value(res).unwrap_or_else(|_| honest(nonces.len())),
        // An undecodable vector: every nonce counts as a mismatch (the artifacts are
        // not what an honest node sends), with the binomial test on that count.
        Err(e) => {
            tracing::warn!(error = %e, "validation artifacts cannot be judged");
            let n = nonces.len() as u64;
            let f = mlnode_protocol::fraud_test(n, n, st.p_mismatch, st.fraud_threshold);
            json!({"n_total": n, "n_mismatch": n, "mismatch_nonces": nonces,
                   "p_value": f.as_ref().map_or(0.0, |f| f.p_value),
                   "fraud_detected": f.map_or(true, |f| f.fraud_detected)})
        }
    }
}

/// Route #7.
async fn generate(
    State(mock): State<Arc<Mock>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let host = match mock.host(&host_of(&headers)) {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    {
        let mut g = host.lock().unwrap_or_else(|e| e.into_inner());
        g.model = ModelState::Pow;
        g.pow = PowState::Validating;
    }
    let v = lenient(&body);
    let url = match v["url"].as_str().filter(|u| !u.is_empty()) {
        Some(u) => target(u, "validated"),
        None => format!(
            "http://{}-api:9100/v2/poc-batches/validated",
            mock.opts.key_name
        ),
    };
    let mut out = verdict(&v);
    for key in ["public_key", "block_hash", "block_height"] {
        out[key] = v[key].clone();
    }
    out["node_id"] = json!(v["node_id"].as_i64().unwrap_or(0));
    // The verdict is computed without the host's lock held; the same host keeps it.
    {
        let mut g = host.lock().unwrap_or_else(|e| e.into_inner());
        if g.validations.len() == VALIDATIONS_KEPT {
            g.validations.pop_front();
        }
        g.validations.push_back(out.clone());
    }
    deliver(&mock, VALIDATED_DELAY, url, out);
    Json(json!({"status": "completed", "request_id": "mock-validation-request-id"})).into_response()
}

/// Route #10 (legacy v1): `{url}/generated` with consecutive nonces and a `dist` ramp.
async fn v1_init_generate(
    State(mock): State<Arc<Mock>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let host = host_of(&headers);
    let ok = match with_host(&mock, &headers, |h| {
        if h.model == ModelState::Stopped && h.pow == PowState::Stopped {
            h.model = ModelState::Pow;
            h.pow = PowState::Generating;
            true
        } else {
            false
        }
    }) {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
    if !ok {
        return bad(V1_STATE_ERROR);
    }
    let v = lenient(&body);
    if let Some(url) = v["url"].as_str().filter(|u| !u.is_empty()) {
        let w = weight(&mock, &host);
        let base = mock.nonce.fetch_add(w, Ordering::SeqCst);
        let nonces: Vec<i64> = (base..base + w).collect();
        let dist: Vec<f64> = (1..=w).map(|k| k as f64 / w as f64).collect();
        let body = json!({"public_key": v["public_key"], "block_hash": v["block_hash"],
            "block_height": v["block_height"], "node_id": v["node_id"].as_i64().unwrap_or(1),
            "nonces": nonces, "dist": dist, "received_dist": dist});
        deliver(
            &mock,
            GENERATED_DELAY,
            format!("{}/generated", url.trim_end_matches('/')),
            body,
        );
    }
    empty(StatusCode::OK)
}

/// Route #12 (legacy v1): the batch-validation callback, always honest as there.
async fn v1_validate(State(mock): State<Arc<Mock>>, req: axum::extract::Request) -> Response {
    let headers = req.headers().clone();
    let ok = match with_host(&mock, &headers, |h| {
        h.model == ModelState::Pow && h.pow == PowState::Validating
    }) {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
    if !ok {
        return bad("Invalid state for batch validation");
    }
    let body = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let v = lenient(&body);
    let out = json!({"public_key": v["public_key"], "block_hash": v["block_hash"],
        "block_height": v["block_height"], "nonces": v["nonces"], "dist": v["dist"],
        "received_dist": v["received_dist"], "r_target": 0.5, "fraud_threshold": 0.1,
        "n_invalid": 0, "probability_honest": 0.99, "fraud_detected": false});
    deliver(
        &mock,
        VALIDATED_DELAY,
        format!(
            "http://{}-api:9100/v1/poc-batches/validated",
            mock.opts.key_name
        ),
        out,
    );
    empty(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(artifacts: &[Artifact], nonces: &[i64]) -> Value {
        json!({"block_hash": "B", "public_key": "K", "block_height": 1, "node_id": 0,
            "params": {"model": "m", "seq_len": 128}, "nonces": nonces,
            "validation": {"artifacts": artifacts}})
    }

    fn gen(fraud: Option<&Fraud>, nonces: &[i64]) -> Vec<Artifact> {
        let r = RoundOf::of(&request(&[], &[]));
        let round = r.round();
        nonces
            .iter()
            .enumerate()
            .map(|(i, &n)| Artifact {
                nonce: n,
                vector_b64: generated(&round, &r, fraud, 42, i, n).encode(),
            })
            .collect()
    }

    #[test]
    fn honest_artifacts_are_honest_and_forged_ones_are_fraud() {
        let nonces: Vec<i64> = (1..=50).collect();
        let v = verdict(&request(&gen(None, &nonces), &nonces));
        assert_eq!(v["n_mismatch"], 0);
        assert_eq!(v["fraud_detected"], false);
        let forged = Fraud {
            profile: "fraud-forged".into(),
            rules: vec![crate::deviation::MismatchRule::Forged { fraction: 1.0 }],
        };
        let v = verdict(&request(&gen(Some(&forged), &nonces), &nonces));
        assert_eq!(v["n_mismatch"], 50);
        assert_eq!(v["fraud_detected"], true);
    }

    #[test]
    fn webhook_targets() {
        assert_eq!(
            target("http://a:9100/v2/poc-batches/Qwen%2FX", "generated"),
            "http://a:9100/v2/poc-batches/Qwen%2FX/generated"
        );
        assert_eq!(
            target("http://a:9100", "validated"),
            "http://a:9100/v2/poc-batches/validated"
        );
    }
}
