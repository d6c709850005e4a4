//! The network node's own client (`mlnodeclient`, network-node §2) in every form it
//! addresses a node: the version prefix on both ports, a gateway's bearer token, TLS and
//! mTLS — each call of its table replayed as it sends it (POST bodies without a
//! content type, `additional_args: null`), with its status rules. Plus the newest
//! routes (encrypted identity and chat, embed) and the inference port's health after
//! a stop on a kept-alive connection.

use std::sync::Arc;
use std::time::Duration;

use mlnode_sim::config::NodeConfig;
use mlnode_sim::{Sim, SimOptions};
use serde_json::{json, Value};

use crate::util::*;

/// A node on two listeners (PoC and inference port), served with `opts`.
struct Two {
    poc: String,
    inf: String,
    sim: Arc<Sim>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn two(cfg: NodeConfig, opts: SimOptions) -> Two {
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let sim = Sim::new(mlnode_sim::build_node(cfg, None).unwrap(), opts);
    let poc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inf = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (pa, ia) = (poc.local_addr().unwrap(), inf.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mlnode_sim::serve_sim_ports(
        poc,
        Some(inf),
        sim.clone(),
        async {
            let _ = rx.await;
        },
    ));
    Two {
        poc: format!("{scheme}://{pa}"),
        inf: format!("{scheme}://{ia}"),
        sim,
        _stop: tx,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One call as the Go client sends it: JSON POST bodies with no `Content-Type`.
async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url).header("content-type", "application/json"),
        _ => http.post(url),
    };
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every call of the client table, through `/{version}` on both ports: the statuses
/// the client accepts, the fields it decodes. Returns how many calls were made.
async fn every_client_call(http: &reqwest::Client, poc: &str, inf: &str) -> usize {
    let mut n = 0;
    let mut go = |m: &'static str, base: &str, path: &str, body: Option<Value>| {
        n += 1;
        let url = format!("{base}{path}");
        async move { call(http, m, &url, body).await }
    };
    let model = json!({"hf_repo": QWEN, "hf_commit": null});
    let (s, v) = go("POST", poc, "/api/v1/models/status", Some(model.clone())).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("NOT_FOUND")), "{v}");
    let (s, v) = go("POST", poc, "/api/v1/models/download", Some(model.clone())).await;
    assert!(s == 200 || s == 202, "{s} {v}");
    // Wait for the download (status polling, as the broker does).
    for _ in 0..2000 {
        let (_, v) = go("POST", poc, "/api/v1/models/status", Some(model.clone())).await;
        if v["status"] == "DOWNLOADED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (s, v) = go("GET", poc, "/api/v1/models/list", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["models"][0]["model"]["hf_repo"], QWEN);
    let (s, v) = go("GET", poc, "/api/v1/models/space", None).await;
    assert_eq!(s, 200);
    assert!(v["cache_size_gb"].as_f64().unwrap() > 0.0);
    let (s, v) = go("GET", poc, "/api/v1/gpu/devices", None).await;
    assert_eq!((s, v["count"].is_u64()), (200, true), "{v}");
    let (s, v) = go("GET", poc, "/api/v1/gpu/driver", None).await;
    assert_eq!((s, v["driver_version"].is_string()), (200, true));
    let (s, v) = go("GET", poc, "/api/v1/state", None).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("STOPPED")));
    assert_eq!(v["version"], "3.0.8-test");
    // InferenceUp: a model without args in the node config is a Go nil slice → JSON
    // null, which the node's pydantic model (`List[str] = []`) refuses; the client's
    // older lines ignore the status. With the args of the config (`[]`): 200.
    let (s, v) = go(
        "POST",
        poc,
        "/api/v1/inference/up",
        Some(json!({"model": QWEN, "dtype": "auto", "additional_args": null})),
    )
    .await;
    assert_eq!(
        (s, v["detail"][0]["type"].as_str()),
        (422, Some("list_type")),
        "{v}"
    );
    let (s, v) = go(
        "POST",
        poc,
        "/api/v1/inference/up",
        Some(json!({"model": QWEN, "dtype": "auto", "additional_args": []})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = go("GET", inf, "/health", None).await;
    assert_eq!(s, 200, "InferenceHealth: only 200 is healthy");
    let (s, v) = go("GET", inf, "/v1/models", None).await;
    assert_eq!((s, &v["data"][0]["id"]), (200, &json!(QWEN)));
    let (s, v) = go(
        "POST",
        inf,
        "/v1/chat/completions",
        Some(json!({"model": QWEN, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(v["choices"][0]["message"].is_object());
    let (s, v) = go("GET", poc, "/api/v1/versions", None).await;
    assert_eq!((s, v["poc_validation_inference"].is_boolean()), (200, true));
    let (s, _) = go("GET", poc, "/api/v1/inference/pow/versions", None).await;
    assert_eq!(s, 404, "not mounted on any MLNode (network-node §3.4)");
    let init = init_body(QWEN);
    let init = json!({
        "block_hash": init["block_hash"], "block_height": init["block_height"],
        "public_key": init["public_key"], "node_id": 0, "node_count": 1,
        "group_id": 0, "n_groups": 1, "params": init["params"]
    });
    let (s, v) = go(
        "POST",
        poc,
        "/api/v1/inference/pow/init/generate",
        Some(init),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["backends"].is_u64() && v["n_groups"].is_u64(), "{v}");
    let (s, v) = go("GET", poc, "/api/v1/inference/pow/status", None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("GENERATING")), "{v}");
    let (s, v) = go("POST", poc, "/api/v1/inference/pow/stop", Some(json!({}))).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("OK")), "{v}");
    let (s, v) = go(
        "POST",
        poc,
        "/api/v1/inference/pow/generate",
        Some(
            json!({"nonces": [0, 1], "params": init_body(QWEN)["params"],
            "block_hash": "h", "block_height": 1, "public_key": "k", "node_id": 0, "node_count": 1,
            "wait": true}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = go("GET", poc, "/api/v1/encrypted/identity", None).await;
    assert_eq!(
        (s, v["detail"].as_str()),
        (503, Some("encrypted endpoint is not enabled on this node"))
    );
    let (s, v) = go("POST", poc, "/api/v1/embed", Some(json!({"text": "hello"}))).await;
    assert_eq!((s, v["dimensions"].as_u64()), (200, Some(384)));
    let (s, _) = go("POST", poc, "/api/v1/stop", None).await;
    assert_eq!(s, 200);
    let (s, v) = go("DELETE", poc, "/api/v1/models", Some(model.clone())).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("deleted")), "{v}");
    n
}

fn versioned_cfg() -> NodeConfig {
    NodeConfig {
        version: "3.0.8-test".into(),
        gpus: Some(2),
        ..cfg()
    }
}

/// The production form: every call under `/v3.0.8/` on both ports succeeds, and the
/// journal and metrics say which version path was used.
#[tokio::test]
async fn every_call_works_under_a_version_prefix_and_the_journal_names_it() {
    let t = two(
        versioned_cfg(),
        SimOptions {
            admin: true,
            ..SimOptions::default()
        },
    )
    .await;
    let h = http();
    let n = every_client_call(
        &h,
        &format!("{}/v3.0.8", t.poc),
        &format!("{}/v3.0.10", t.inf),
    )
    .await;
    assert!(n >= 20, "{n} calls");
    let journal = t.sim.journal.tail(1000);
    assert!(journal.len() >= n);
    let poc_calls = journal
        .iter()
        .filter(|e| e.version.as_deref() == Some("v3.0.8"))
        .count();
    let inf_calls = journal
        .iter()
        .filter(|e| e.version.as_deref() == Some("v3.0.10"))
        .count();
    assert!(poc_calls > 10 && inf_calls == 3, "{poc_calls} {inf_calls}");
    assert!(journal
        .iter()
        .any(|e| e.path == "/v3.0.8/api/v1/state" && e.status == 200));
    // The admin API serves the journal with the version.
    let (_, j) = call(&h, "GET", &format!("{}/sim/v1/journal", t.poc), None).await;
    assert!(j.to_string().contains("\"version\":\"v3.0.8\""), "{j}");
    let (_, m) = call(&h, "GET", &format!("{}/api/v1/metrics", t.poc), None).await;
    let m = m.as_str().unwrap().to_owned();
    assert!(
        m.contains(
            r#"mlnode_sim_version_prefix_requests_total{port="inference",version="v3.0.10"} 3"#
        ),
        "{m}"
    );
    // Plain paths still work, and the metrics collector's unversioned form.
    assert_eq!(
        call(&h, "GET", &format!("{}/api/v1/state", t.poc), None)
            .await
            .0,
        200
    );
}

/// A prefix of two segments is a clear 404, not a silent miss; one segment of any value
/// is stripped (the test mock's `/{version}` rule).
#[tokio::test]
async fn two_segment_prefixes_are_a_clear_404() {
    let h = start(cfg()).await;
    let c = C::new(&h);
    let (s, v) = c.get("/v3.0.8/v3.0.9/api/v1/state").await;
    assert_eq!(s, 404);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("at most one version segment"),
        "{v}"
    );
    assert_eq!(c.get("/anything/api/v1/state").await.0, 200);
    assert_eq!(c.get("/v3.0.8/api/v1/nothing").await.0, 404);
}

/// After `/api/v1/stop`, a kept-alive connection to the inference port must not hear
/// 200 from `/health` (network-node §3.7): 503 `No vLLM backend available`, plain.
#[tokio::test]
async fn inference_health_never_lies_on_a_kept_alive_connection() {
    let t = two(
        NodeConfig {
            deployed_model: Some(QWEN.into()),
            replicas: Some(1),
            ..cfg()
        },
        SimOptions::default(),
    )
    .await;
    // One connection for everything on the inference port.
    let h = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = h.get(format!("{}/health", t.inf)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;
    assert_eq!(
        call(&h, "POST", &format!("{}/api/v1/stop", t.poc), None)
            .await
            .0,
        200
    );
    let r = h.get(format!("{}/health", t.inf)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("content-type").is_none());
    assert_eq!(r.text().await.unwrap(), "No vLLM backend available");
    // A new connection is refused.
    let fresh = http();
    assert!(fresh.get(format!("{}/health", t.inf)).send().await.is_err());
}

/// `--auth-token`: every route needs the bearer token (401 JSON otherwise), `/readyz`
/// is the probe; the simulator's own admin API keeps its own token rule.
#[tokio::test]
async fn a_gateway_token_guards_every_route() {
    let t = two(
        versioned_cfg(),
        SimOptions {
            admin: true,
            auth_token: Some(Arc::from("tok")),
            ..SimOptions::default()
        },
    )
    .await;
    let none = http();
    for path in [
        "/api/v1/state",
        "/readyz",
        "/v3.0.8/api/v1/state",
        "/nothing",
    ] {
        let (s, v) = call(&none, "GET", &format!("{}{path}", t.poc), None).await;
        assert_eq!(s, 401, "{path}");
        assert!(v["detail"].as_str().unwrap().contains("Bearer"), "{v}");
    }
    let wrong = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                "Bearer nope".parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let (s, v) = call(&wrong, "GET", &format!("{}/readyz", t.poc), None).await;
    assert_eq!(s, 401);
    assert!(v["detail"].as_str().unwrap().contains("does not match"));
    assert!(
        !v.to_string().contains("tok\""),
        "the token is never echoed"
    );
    let ok = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                "Bearer tok".parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // BaseURL mode: one base for PoC and inference, with the version.
    let base = format!("{}/v3.0.8", t.poc);
    let (s, v) = call(&ok, "GET", &format!("{base}/readyz"), None).await;
    assert_eq!((s, &v), (200, &json!({"ready": true})));
    every_client_call(&ok, &base, &format!("{}/v3.0.8", t.inf)).await;
    // The 401s are journaled like any answer.
    assert!(t.sim.journal.tail(1000).iter().any(|e| e.status == 401));
    // Admin: not behind the gateway token.
    assert_eq!(
        call(&none, "GET", &format!("{}/sim/v1/node", t.poc), None)
            .await
            .0,
        200
    );
}

fn tls_client(
    pki: &mlnode_sim::test_pki::Pki,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

/// TLS on both ports, then mTLS: the pinned client certificate works on every call;
/// none, or one from another CA, is refused at the handshake (`TestClientFactoryMTLS`).
#[tokio::test]
async fn tls_and_mtls_on_both_ports() {
    let dir = tempfile::tempdir().unwrap();
    let pki = mlnode_sim::test_pki::generate(dir.path()).unwrap();

    // TLS only.
    let t = two(
        versioned_cfg(),
        SimOptions {
            tls: Some(mlnode_sim::tls::acceptor(&pki.server(false)).unwrap()),
            ..SimOptions::default()
        },
    )
    .await;
    let c = tls_client(&pki, None);
    every_client_call(&c, &format!("{}/v3.0.8", t.poc), &t.inf).await;
    assert!(
        http()
            .get(format!("{}/api/v1/state", t.poc))
            .send()
            .await
            .is_err(),
        "a client that does not trust the CA fails"
    );

    // mTLS.
    let t = two(
        versioned_cfg(),
        SimOptions {
            tls: Some(mlnode_sim::tls::acceptor(&pki.server(true)).unwrap()),
            ..SimOptions::default()
        },
    )
    .await;
    let pinned = tls_client(&pki, Some((&pki.client_cert, &pki.client_key)));
    every_client_call(
        &pinned,
        &format!("{}/v3.0.8", t.poc),
        &format!("{}/v3.0.8", t.inf),
    )
    .await;
    let anonymous = tls_client(&pki, None);
    assert!(anonymous
        .get(format!("{}/api/v1/state", t.poc))
        .send()
        .await
        .is_err());
    let foreign = tls_client(&pki, Some((&pki.foreign_cert, &pki.foreign_key)));
    assert!(foreign
        .get(format!("{}/api/v1/state", t.poc))
        .send()
        .await
        .is_err());
    // The node is still up for the pinned client after the refusals.
    assert_eq!(
        call(&pinned, "GET", &format!("{}/api/v1/state", t.poc), None)
            .await
            .0,
        200
    );
    // Bad files are named with the flag.
    let e = mlnode_sim::tls::acceptor(&mlnode_sim::tls::TlsFiles {
        cert: pki.server_key.clone(),
        key: pki.server_key.clone(),
        client_ca: None,
    })
    .err()
    .unwrap()
    .to_string();
    assert!(e.starts_with("--tls-cert"), "{e}");
    let e = mlnode_sim::tls::acceptor(&mlnode_sim::tls::TlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.client_key.clone(),
        client_ca: None,
    })
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("does not fit the certificate"), "{e}");
}

/// The encrypted endpoint in the spec's check order, with a real HPKE client.
#[tokio::test]
async fn encrypted_chat_opens_real_hpke_envelopes() {
    use mlnode_sim::encrypted::{open_response, seal_request, EncryptedResponse};
    let h = start(NodeConfig {
        encrypted_identity: true,
        deployed_model: Some(QWEN.into()),
        replicas: Some(1),
        ..cfg()
    })
    .await;
    let c = C::new(&h);
    let (s, id) = c.get("/v3.0.8/api/v1/encrypted/identity").await;
    assert_eq!(s, 200);
    assert_eq!(id["envelope_version"], "v1");
    use base64::Engine as _;
    let pk = base64::engine::general_purpose::STANDARD
        .decode(id["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(pk.len(), 32);
    assert_eq!(
        id["key_id"].as_str().unwrap(),
        mlnode_sim::encrypted::key_id(&pk)
    );
    let body = json!({"model": QWEN, "messages": [{"role": "user", "content": "hi"}]});
    let (env, key) = seal_request(&pk, "sess", 1, body.to_string().as_bytes()).unwrap();
    let path = "/v3.0.8/api/v1/encrypted/chat/completions";
    let (s, v) = c.post(path, serde_json::to_value(&env).unwrap()).await;
    assert_eq!(s, 200, "{v}");
    let resp: EncryptedResponse = serde_json::from_value(v).unwrap();
    let plain: Value = serde_json::from_slice(&open_response(&key, &resp).unwrap()).unwrap();
    assert_eq!(plain["model"], QWEN);
    // Replay of the same envelope.
    let (s, _) = c.post(path, serde_json::to_value(&env).unwrap()).await;
    assert_eq!(s, 409);
    // Another node's key id.
    let mut other = env.clone();
    other.recipient_key_id = "0123456789abcdef".into();
    let (s, v) = c.post(path, serde_json::to_value(&other).unwrap()).await;
    assert_eq!(s, 421);
    assert!(v["detail"]
        .as_str()
        .unwrap()
        .contains("does not match this node's key_id"));
    // Schema: a key id that is not 16 hex characters.
    let mut bad = serde_json::to_value(&env).unwrap();
    bad["recipient_key_id"] = json!("XYZ");
    assert_eq!(c.post(path, bad).await.0, 422);
    // Tampered ciphertext.
    let (mut env2, _) = seal_request(&pk, "sess", 2, b"{}").unwrap();
    env2.prompt_hash = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
    let (s, v) = c.post(path, serde_json::to_value(&env2).unwrap()).await;
    assert_eq!(
        (s, v["detail"].as_str()),
        (400, Some("envelope failed to open (corrupt or tampered)"))
    );
    // Plaintext rules.
    for (n, pt, want) in [
        (3, &b"not json"[..], "plaintext is not valid JSON"),
        (4, &b"[1]"[..], "plaintext must be a JSON object"),
        (
            5,
            &br#"{"stream":true}"#[..],
            "stream=true is not supported",
        ),
    ] {
        let (e, _) = seal_request(&pk, "sess", n, pt).unwrap();
        let (s, v) = c.post(path, serde_json::to_value(&e).unwrap()).await;
        assert_eq!(s, 400);
        assert!(v["detail"].as_str().unwrap().starts_with(want), "{v}");
    }
    // No backend after stop.
    c.post("/api/v1/stop", json!({})).await;
    let (e, _) = seal_request(&pk, "sess", 6, b"{}").unwrap();
    let (s, v) = c.post(path, serde_json::to_value(&e).unwrap()).await;
    assert_eq!(
        (s, v["detail"].as_str()),
        (503, Some("no vLLM backend available"))
    );
    // Disabled node: 503 before anything else, even for a bad body.
    let off = start(cfg()).await;
    let (s, v) = C::new(&off).post(path, json!("junk")).await;
    assert_eq!(
        (s, v["detail"].as_str()),
        (503, Some("encrypted endpoint is not enabled on this node"))
    );
}

/// `/api/v1/embed`: a deterministic 384-dimension unit vector, in any state.
#[tokio::test]
async fn embed_is_deterministic_and_checks_its_text() {
    let h = start(cfg()).await;
    let c = C::new(&h);
    let (s, a) = c.post("/api/v1/embed", json!({"text": "hello"})).await;
    assert_eq!(s, 200);
    assert_eq!(a["model"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(a["embedding"].as_array().unwrap().len(), 384);
    assert_eq!(c.post("/api/v1/embed", json!({"text": "hello"})).await.1, a);
    let (s, v) = c.post("/api/v1/embed", json!({"text": ""})).await;
    assert_eq!(
        (s, v["detail"].as_str()),
        (400, Some("text must not be empty"))
    );
    assert_eq!(c.post("/api/v1/embed", json!({})).await.0, 422);
    assert_eq!(c.post("/api/v1/embed", json!({"text": 3})).await.0, 422);
}

/// The replica count follows the node's argument rule (network-node §3.6).
#[tokio::test]
async fn replicas_follow_the_argument_rule() {
    use mlnode_protocol::vllm_args::ArgRule;
    for (rule, args, want) in [
        (ArgRule::Newest, json!(["-tp", "2"]), 4),
        (ArgRule::Shipped, json!(["-tp", "2"]), 8),
        (ArgRule::Newest, json!(["--tensor-parallel-size=4"]), 2),
        (
            ArgRule::Shipped,
            json!(["--tensor-parallel-size", "2", "--tensor-parallel-size=4"]),
            4,
        ),
    ] {
        let h = start(NodeConfig {
            gpus: Some(8),
            arg_rule: rule,
            ..cfg()
        })
        .await;
        let c = C::new(&h);
        c.download_and_deploy(QWEN, args.clone()).await;
        let (_, v) = c.get("/api/v1/inference/pow/status").await;
        assert_eq!(
            v["backends"].as_array().map(Vec::len),
            Some(want),
            "{rule:?} {args}: {v}"
        );
    }
}

/// Small fidelity fixes the client exposed.
#[tokio::test]
async fn delete_missing_model_and_empty_cache_size() {
    let h = start(cfg()).await;
    let c = C::new(&h);
    let r = c
        .http
        .delete(format!("{}/api/v1/models", c.base))
        .json(&json!({"hf_repo": "nobody/none", "hf_commit": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"], "Model nobody/none:latest not found in cache");
    let text = c
        .http
        .get(format!("{}/api/v1/models/space", c.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"cache_size_gb\":0.0"), "{text}");
}
