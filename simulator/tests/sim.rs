//! Integration tests for `mlnode-sim`: a real server per test on 127.0.0.1:0 with an
//! accelerated clock, driven over HTTP like validate.py and DAPI drive a node.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlnode_protocol::wire::*;
use mlnode_protocol::Reference;
use mlnode_sim::config::NodeConfig;
use mlnode_sim::{build_node, spawn, SimHandle};
use serde_json::{json, Value};

const QWEN: &str = "Qwen/Qwen3-32B-FP8";
const SCALE: f64 = 2000.0;

fn cfg() -> NodeConfig {
    NodeConfig {
        time_scale: SCALE,
        ..NodeConfig::default()
    }
}

async fn start(cfg: NodeConfig) -> SimHandle {
    spawn(build_node(cfg, None).expect("node builds"))
        .await
        .expect("binds")
}

async fn scenario(name: &str) -> SimHandle {
    let mut s = mlnode_sim::fixtures::load_scenario(name).unwrap();
    s.node.time_scale = SCALE;
    start(s.node).await
}

struct C {
    http: reqwest::Client,
    base: String,
}

impl C {
    fn new(h: &SimHandle) -> Self {
        C {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: h.url(),
        }
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }
    async fn raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        // No Content-Type header at all, as DAPI's old Go helper sent.
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }
    /// Poll until `pred` holds on GET `path` (bounded).
    async fn wait_get(&self, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..2000 {
            let (_, v) = self.get(path).await;
            if pred(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("condition on {path} never held");
    }
    /// Download `model` and wait until it is cached.
    async fn download(&self, model: &str) {
        let (code, _) = self
            .post("/api/v1/models/download", json!({"hf_repo": model}))
            .await;
        assert_eq!(code, 202);
        self.wait_get("/api/v1/models/list", |v| {
            v["models"]
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x["model"]["hf_repo"] == model))
        })
        .await;
    }

    /// Download, then start a deploy without waiting for it.
    async fn download_and_start(&self, model: &str) {
        self.download(model).await;
        let (code, v) = self
            .post(
                "/api/v1/inference/up/async",
                json!({"model": model, "dtype": "auto"}),
            )
            .await;
        assert_eq!(code, 200, "{v}");
    }

    async fn download_and_deploy(&self, model: &str, args: Value) {
        let (code, _) = self
            .post("/api/v1/models/download", json!({"hf_repo": model}))
            .await;
        assert_eq!(code, 202);
        for _ in 0..2000 {
            let (_, v) = self
                .post("/api/v1/models/status", json!({"hf_repo": model}))
                .await;
            if v["status"] == "DOWNLOADED" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (code, v) = self
            .post(
                "/api/v1/inference/up/async",
                json!({"model": model, "dtype": "auto", "additional_args": args}),
            )
            .await;
        assert_eq!(code, 200, "{v}");
        self.wait_get("/api/v1/inference/up/status", |v| v["is_running"] == true)
            .await;
    }
}

/// Serve a callback receiver on 127.0.0.1:0 for the test's lifetime.
async fn receiver(app: axum::Router) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

fn init_body(model: &str) -> Value {
    json!({"block_hash": "TEST_BLOCK", "block_height": 100, "public_key": "test_pub_keys",
           "node_id": 0, "node_count": 1, "params": {"model": model, "seq_len": 128}})
}

fn qwen_ref() -> Reference {
    Reference::parse(include_str!("../../artifacts/qwen-qwen3-32b-fp8.json")).unwrap()
}

fn validation_body(r: &Reference, artifacts: &[Artifact], st: Value) -> Value {
    json!({"block_hash": r.block_hash, "block_height": 100, "public_key": r.public_key,
           "node_id": 0, "node_count": 1, "nonces": r.nonces(),
           "params": {"model": r.model, "seq_len": r.seq_len, "k_dim": r.k_dim},
           "batch_size": 64, "wait": true, "validation": {"artifacts": artifacts}, "stat_test": st})
}

/// The four phases as validator.md describes them, asserting each body.
#[tokio::test]
async fn four_phases_like_validate_py() {
    let h = start(cfg()).await;
    let c = C::new(&h);
    // 1. download
    let (code, v) = c
        .post(
            "/api/v1/models/status",
            json!({"hf_repo": QWEN, "hf_commit": null}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        v,
        json!({"model": {"hf_repo": QWEN, "hf_commit": null}, "status": "NOT_FOUND", "progress": null, "error_message": null})
    );
    let (code, v) = c
        .post(
            "/api/v1/models/download",
            json!({"hf_repo": QWEN, "hf_commit": null}),
        )
        .await;
    assert_eq!(code, 202);
    assert_eq!(
        v,
        json!({"task_id": format!("{QWEN}:latest"), "status": "DOWNLOADING", "model": {"hf_repo": QWEN, "hf_commit": null}})
    );
    let (_, v) = c
        .post("/api/v1/models/status", json!({"hf_repo": QWEN}))
        .await;
    if v["status"] == "DOWNLOADING" {
        assert!(v["progress"]["elapsed_seconds"].as_f64().unwrap() >= 0.0);
        assert!(v["progress"]["start_time"].as_f64().unwrap() > 1.7e9);
    }
    for _ in 0..2000 {
        let (_, v) = c
            .post("/api/v1/models/status", json!({"hf_repo": QWEN}))
            .await;
        if v["status"] == "DOWNLOADED" {
            assert_eq!(v["progress"], Value::Null);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Download of a cached model: 202 DOWNLOADED at once.
    let (code, v) = c
        .post("/api/v1/models/download", json!({"hf_repo": QWEN}))
        .await;
    assert_eq!((code, v["status"].clone()), (202, json!("DOWNLOADED")));

    // 2. deploy
    let (_, v) = c.get("/api/v1/inference/up/status").await;
    assert_eq!(
        v,
        json!({"status": "not_started", "is_starting": false, "is_running": false, "elapsed_seconds": null, "error": null})
    );
    let (_, st) = c.get("/api/v1/state").await;
    assert_eq!(st["state"], "STOPPED");
    let (code, v) = c
        .post(
            "/api/v1/inference/up/async",
            json!({"model": QWEN, "dtype": "auto", "additional_args": []}),
        )
        .await;
    assert_eq!(
        (code, v),
        (
            200,
            json!({"status": "starting", "message": "Inference startup initiated in background"})
        )
    );
    let (_, v) = c.get("/api/v1/inference/up/status").await;
    if v["status"] == "in_progress" {
        assert_eq!(
            (v["is_starting"].clone(), v["is_running"].clone()),
            (json!(true), json!(false))
        );
        let (code, e) = c
            .post(
                "/api/v1/inference/up/async",
                json!({"model": QWEN, "dtype": "auto"}),
            )
            .await;
        assert_eq!(code, 409);
        assert_eq!(
            e["detail"],
            "VLLM startup is already in progress. Use /inference/up/status to check status."
        );
        let (_, st) = c.get("/api/v1/state").await;
        assert_eq!(
            (st["state"].clone(), st["poc_status"].clone()),
            (json!("INFERENCE"), json!("NO_BACKENDS"))
        );
    }
    let v = c
        .wait_get("/api/v1/inference/up/status", |v| v["is_running"] == true)
        .await;
    assert_eq!(v["status"], "completed");
    assert!(
        v["elapsed_seconds"].as_f64().unwrap() >= 60.0,
        "simulated seconds: {v}"
    );
    let (code, e) = c
        .post(
            "/api/v1/inference/up/async",
            json!({"model": QWEN, "dtype": "auto"}),
        )
        .await;
    assert_eq!(
        (code, e["detail"].clone()),
        (
            409,
            json!("VLLM is already running. Use /inference/down to stop it first.")
        )
    );
    let (_, st) = c.get("/api/v1/state").await;
    assert_eq!(
        st,
        json!({"state": "INFERENCE", "version": "3.0.12-sim", "poc_status": "IDLE",
        "inference_healthy": true, "loaded_model": QWEN, "poc_validation_inference": false})
    );

    // 3. throughput
    let (code, v) = c
        .post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        v,
        json!({"status": "OK", "backends": 1, "n_groups": 1, "results": [{"port": 5001, "status": "OK"}], "errors": null})
    );
    tokio::time::sleep(Duration::from_millis(30)).await; // ≈ 60 simulated seconds
    let (_, v) = c.get("/api/v1/inference/pow/status").await;
    assert_eq!(v["status"], "GENERATING");
    let b = &v["backends"][0];
    assert_eq!(
        b["config"],
        json!({"block_hash": "TEST_BLOCK", "block_height": 100, "public_key": "test_pub_keys",
        "node_id": 0, "node_count": 1, "group_id": 0, "n_groups": 1, "seq_len": 128, "k_dim": 12})
    );
    let total = b["stats"]["total_processed"].as_u64().unwrap();
    assert!(total > 0 && total % 32 == 0, "whole batches: {total}");
    let rate = b["stats"]["nonces_per_second"].as_f64().unwrap();
    assert!(
        rate > 0.0 && rate <= 20.0 + 1e-9,
        "generic profile is 1200/min = 20/s: {rate}"
    );
    let (_, st) = c.get("/api/v1/state").await;
    assert_eq!(st["poc_status"], "GENERATING");
    let (_, v) = c.post("/api/v1/inference/pow/stop", json!({})).await;
    assert_eq!(
        v,
        json!({"status": "OK", "results": [{"port": 5001, "status": "stopped"}], "errors": null})
    );
    let (_, v) = c.get("/api/v1/inference/pow/status").await;
    assert_eq!(
        v,
        json!({"status": "IDLE", "backends": [{"port": 5001, "status": "IDLE", "config": null, "stats": null}]})
    );

    // 4. validate with the real reference: PASS.
    let r = qwen_ref();
    let (code, v) = c
        .post(
            "/api/v1/inference/pow/generate",
            validation_body(
                &r,
                &r.artifacts,
                json!({"dist_threshold": 0.2, "p_mismatch": 0.001, "fraud_threshold": 0.01}),
            ),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (
            v["status"].clone(),
            v["n_total"].clone(),
            v["n_mismatch"].clone()
        ),
        (json!("completed"), json!(32), json!(0))
    );
    assert_eq!(
        (
            v["p_value"].clone(),
            v["fraud_detected"].clone(),
            v["mismatch_nonces"].clone()
        ),
        (json!(1.0), json!(false), json!([]))
    );

    // down → not_started, STOPPED.
    let (_, v) = c.post("/api/v1/inference/down", json!({})).await;
    assert_eq!(v, json!({"status": "OK"}));
    let (_, v) = c.get("/api/v1/inference/up/status").await;
    assert_eq!(v["status"], "not_started");
    h.shutdown().await;
}

#[tokio::test]
async fn own_vectors_validate_clean_and_tampering_is_fraud() {
    let h = start(cfg()).await;
    let c = C::new(&h);
    c.download_and_deploy(QWEN, json!([])).await;
    let mut body = init_body(QWEN);
    body["block_hash"] = json!("OTHER_BLOCK"); // not covered by a reference: generator vectors
    let nonces: Vec<i64> = (0..32).collect();
    body["nonces"] = json!(nonces);
    body["wait"] = json!(true);
    let (code, v) = c.post("/api/v1/inference/pow/generate", body.clone()).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["encoding"],
        json!({"dtype": "f16", "k_dim": 12, "endian": "le"})
    );
    let artifacts: Vec<Artifact> = serde_json::from_value(v["artifacts"].clone()).unwrap();
    assert_eq!(
        artifacts.iter().map(|a| a.nonce).collect::<Vec<_>>(),
        nonces
    );

    let mut vbody = body.clone();
    vbody["validation"] = json!({"artifacts": artifacts});
    let (_, v) = c
        .post("/api/v1/inference/pow/generate", vbody.clone())
        .await;
    assert_eq!(
        (v["n_mismatch"].clone(), v["fraud_detected"].clone()),
        (json!(0), json!(false))
    );

    // Tamper with 10 of 32: fraud at the server defaults.
    let mut tampered = artifacts.clone();
    for a in tampered.iter_mut().take(10) {
        let mut x = vec![0.0f32; 12];
        x[(a.nonce % 12) as usize] = 1.0;
        a.vector_b64 = mlnode_protocol::Vector::from_f32(&x).encode();
    }
    vbody["validation"] = json!({"artifacts": tampered});
    let (_, v) = c.post("/api/v1/inference/pow/generate", vbody).await;
    assert_eq!(v["n_mismatch"], 10);
    assert_eq!(v["mismatch_nonces"], json!((0..10).collect::<Vec<i64>>()));
    assert_eq!(v["fraud_detected"], true);
    let expected = mlnode_protocol::binomial_upper_tail(10, 32, 0.001);
    assert!((v["p_value"].as_f64().unwrap() - expected).abs() <= 1e-12 * expected);
}

/// The node's vectors are a pure function of the round and the nonce: pinned encodings
/// (the same as protocol's golden test) through the HTTP API.
#[tokio::test]
async fn determinism_pins_encodings() {
    let h = start(NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..cfg()
    })
    .await;
    let c = C::new(&h);
    let mut body = init_body(QWEN);
    body["nonces"] = json!([0, 1, 2]);
    body["wait"] = json!(true);
    body["public_key"] = json!("another_key"); // not covered by the reference
                                               // node_id, node_count, block_height must not matter.
    let (_, a) = c.post("/api/v1/inference/pow/generate", body.clone()).await;
    body["node_id"] = json!(3);
    body["node_count"] = json!(7);
    body["block_height"] = json!(999);
    let (_, b) = c.post("/api/v1/inference/pow/generate", body.clone()).await;
    assert_eq!(a["artifacts"], b["artifacts"]);
    let expected: Vec<String> = (0..3)
        .map(|n| {
            mlnode_protocol::vectors::honest_vector(&mlnode_protocol::vectors::VectorKey {
                model: QWEN,
                seq_len: 128,
                k_dim: 12,
                block_hash: "TEST_BLOCK",
                public_key: "another_key",
                nonce: n,
                stronger_rng: false,
            })
            .encode()
        })
        .collect();
    let got: Vec<String> = a["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["vector_b64"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    // poc_stronger_rng changes the vectors.
    body["poc_stronger_rng"] = json!(true);
    let (_, s) = c.post("/api/v1/inference/pow/generate", body).await;
    assert_ne!(s["artifacts"], a["artifacts"]);
}

/// 3 replicas: init fans out with group_id 0,1,2 / n_groups 3; the mining callbacks carry
/// disjoint nonce sets whose union is dense.
#[tokio::test]
async fn three_replicas_partition_and_callbacks() {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/cb/generated",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let cb_addr = receiver(app).await;

    let h = start(NodeConfig {
        replicas: Some(3),
        deployed_model: Some(QWEN.into()),
        time_scale: 500.0,
        ..NodeConfig::default()
    })
    .await;
    let c = C::new(&h);
    let mut body = init_body(QWEN);
    body["url"] = json!(format!("http://{cb_addr}/cb"));
    body["batch_size"] = json!(8);
    let (code, v) = c.post("/api/v1/inference/pow/init/generate", body).await;
    assert_eq!(code, 200);
    assert_eq!(
        (v["backends"].clone(), v["n_groups"].clone()),
        (json!(3), json!(3))
    );
    let (_, st) = c.get("/api/v1/inference/pow/status").await;
    let groups: BTreeSet<u64> = st["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["config"]["group_id"].as_u64().unwrap())
        .collect();
    assert_eq!(groups, BTreeSet::from([0, 1, 2]));
    assert!(st["backends"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["config"]["n_groups"] == 3));
    // Wait for at least two callback rounds from every replica.
    for _ in 0..2000 {
        if received.lock().unwrap().len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = c.post("/api/v1/inference/pow/stop", json!({})).await;
    let batches = received.lock().unwrap().clone();
    assert!(batches.len() >= 6, "got {} callbacks", batches.len());
    let mut all = Vec::new();
    for b in &batches {
        assert_eq!(b["block_height"], 100);
        assert_eq!(b["encoding"]["k_dim"], 12);
        assert!(b.get("request_id").is_none());
        for a in b["artifacts"].as_array().unwrap() {
            all.push(a["nonce"].as_i64().unwrap());
        }
    }
    let set: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(set.len(), all.len(), "a nonce was mined twice");
    // Per replica the sent nonces are a prefix of its group, so group g holds g, g+3, ...
    for g in 0..3 {
        let mine: Vec<i64> = {
            let mut v: Vec<i64> = all.iter().copied().filter(|n| n % 3 == g).collect();
            v.sort();
            v
        };
        assert!(!mine.is_empty());
        for (x, n) in mine.iter().enumerate() {
            assert_eq!(*n, g + 3 * x as i64, "group {g} is dense");
        }
    }
}

#[tokio::test]
async fn error_contract() {
    let h = start(NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..cfg()
    })
    .await;
    let c = C::new(&h);
    // 422: unknown key in params, missing field, wrong type, empty body, garbage.
    let mut bad = init_body(QWEN);
    bad["params"]["scheme"] = json!("decode");
    let (code, v) = c.post("/api/v1/inference/pow/init/generate", bad).await;
    assert_eq!(code, 422);
    assert_eq!(v["detail"][0]["type"], "extra_forbidden");
    assert_eq!(v["detail"][0]["loc"], json!(["body", "params", "scheme"]));
    let (code, v) = c
        .post("/api/v1/inference/up/async", json!({"model": QWEN}))
        .await;
    assert_eq!(
        (code, v["detail"][0]["loc"].clone()),
        (422, json!(["body", "dtype"]))
    );
    let (code, _) = c.raw("/api/v1/models/status", vec![]).await;
    assert_eq!(code, 422);
    let (code, _) = c
        .raw("/api/v1/models/status", b"\x00\xff garbage".to_vec())
        .await;
    assert_eq!(code, 422);
    // JSON without a Content-Type is accepted.
    let (code, v) = c
        .raw(
            "/api/v1/models/status",
            serde_json::to_vec(&json!({"hf_repo": QWEN})).unwrap(),
        )
        .await;
    assert_eq!((code, v["status"].clone()), (200, json!("DOWNLOADED")));

    // 400: nonce set ≠ artifact set (pass-through: replica JSON as a string).
    let r = qwen_ref();
    let (code, v) = c
        .post(
            "/api/v1/inference/pow/generate",
            validation_body(&r, &r.artifacts[1..], json!({})),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        v["detail"],
        r#"{"detail":"validation.artifacts nonces must match nonces field"}"#
    );
    // 409: params mismatch with the nested detail.
    let mut body = validation_body(&r, &r.artifacts, json!({}));
    body["params"]["model"] = json!("Other/Model");
    let (code, v) = c.post("/api/v1/inference/pow/generate", body).await;
    assert_eq!(code, 409);
    let inner: Value = serde_json::from_str(v["detail"].as_str().unwrap()).unwrap();
    assert_eq!(inner["detail"]["error"], "params mismatch");
    assert_eq!(inner["detail"]["requested"]["model"], "Other/Model");
    assert_eq!(
        inner["detail"]["deployed"],
        json!({"model": [QWEN], "seq_len": null, "k_dim": null})
    );
    // 502: second init without stop (every replica already generating).
    let (code, _) = c
        .post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    assert_eq!(code, 200);
    let (code, v) = c
        .post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    assert_eq!(code, 502);
    assert_eq!(
        v["detail"],
        json!({"errors": [{"port": 5001, "error": "{\"detail\":\"Already generating\"}"}]})
    );
    c.post("/api/v1/inference/pow/stop", json!({})).await;
    // Poll id format errors and unknown ids.
    assert_eq!(c.get("/api/v1/inference/pow/generate/nocolon").await.0, 400);
    assert_eq!(
        c.get("/api/v1/inference/pow/generate/abc:def").await.1["detail"],
        "Invalid port in request_id"
    );
    assert_eq!(
        c.get("/api/v1/inference/pow/generate/5001:unknown").await,
        (404, json!({"detail": "Request not found"}))
    );
    // down → 503 No vLLM backends; status NO_BACKENDS; stop "No backends to stop".
    c.post("/api/v1/inference/down", json!({})).await;
    let (code, v) = c
        .post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    assert_eq!(
        (code, v),
        (503, json!({"detail": "No vLLM backends available"}))
    );
    assert_eq!(
        c.get("/api/v1/inference/pow/status").await.1,
        json!({"status": "NO_BACKENDS", "backends": []})
    );
    assert_eq!(
        c.post("/api/v1/inference/pow/stop", json!({})).await.1,
        json!({"status": "OK", "message": "No backends to stop"})
    );
    // Unknown repo fails like the real node.
    let (code, _) = c
        .post(
            "/api/v1/models/download",
            json!({"hf_repo": "nobody/nothing"}),
        )
        .await;
    assert_eq!(code, 202);
    for _ in 0..2000 {
        let (_, v) = c
            .post(
                "/api/v1/models/status",
                json!({"hf_repo": "nobody/nothing"}),
            )
            .await;
        if v["status"] == "PARTIAL" {
            assert_eq!(v["error_message"], "Repository not found: nobody/nothing");
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn downloads_409_and_429() {
    let h = start(NodeConfig {
        time_scale: 1.0, // downloads stay in flight for the whole test
        ..NodeConfig::default()
    })
    .await;
    let c = C::new(&h);
    let models = [
        "Qwen/Qwen3-32B-FP8",
        "MiniMaxAI/MiniMax-M2.7",
        "zai-org/GLM-5.3-Flash",
    ];
    for m in models {
        assert_eq!(
            c.post("/api/v1/models/download", json!({"hf_repo": m}))
                .await
                .0,
            202
        );
    }
    let (code, v) = c
        .post("/api/v1/models/download", json!({"hf_repo": models[0]}))
        .await;
    assert_eq!(
        (code, v),
        (
            409,
            json!({"detail": "Model Qwen/Qwen3-32B-FP8:latest is already downloading"})
        )
    );
    let (code, v) = c
        .post(
            "/api/v1/models/download",
            json!({"hf_repo": "Qwen/Qwen3-0.6B"}),
        )
        .await;
    assert_eq!(
        (code, v),
        (
            429,
            json!({"detail": "Maximum concurrent downloads (3) reached"})
        )
    );
    // Cancel one through DELETE; then a new one fits.
    let (code, v) = c
        .http
        .delete(format!("{}/api/v1/models", c.base))
        .json(&json!({"hf_repo": models[0]}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(v.json::<Value>().await.unwrap()["status"], "cancelled");
    assert_eq!(
        c.post(
            "/api/v1/models/download",
            json!({"hf_repo": "Qwen/Qwen3-0.6B"})
        )
        .await
        .0,
        202
    );
    // Deploying a model that is not in the cache fails like the real node.
    let (code, _) = c
        .post(
            "/api/v1/inference/up/async",
            json!({"model": "Qwen/Qwen3-0.6B", "dtype": "auto"}),
        )
        .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn deploy_of_uncached_model_fails() {
    let h = start(cfg()).await;
    let c = C::new(&h);
    c.post(
        "/api/v1/inference/up/async",
        json!({"model": QWEN, "dtype": "auto"}),
    )
    .await;
    let v = c
        .wait_get("/api/v1/inference/up/status", |v| {
            v["status"] != "in_progress"
        })
        .await;
    assert_eq!(v["status"], "failed");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("not in the local HuggingFace cache"));
}

#[tokio::test]
async fn body_limit_is_413_json() {
    let h = start(NodeConfig {
        body_limit_bytes: 1024,
        ..cfg()
    })
    .await;
    let c = C::new(&h);
    let (code, v) = c.raw("/api/v1/models/status", vec![b' '; 4096]).await;
    assert_eq!(code, 413);
    assert!(v["detail"].is_string());
    // Still up.
    assert_eq!(c.get("/api/v1/state").await.0, 200);
}

#[tokio::test]
async fn queued_generate_poll_and_validated_callback() {
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v2/poc-batches/{kind}",
        axum::routing::post(
            move |axum::extract::Path(kind): axum::extract::Path<String>,
                  axum::Json(v): axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push((kind, v));
                    "ok"
                }
            },
        ),
    );
    let cb = receiver(app).await;

    let h = start(NodeConfig {
        replicas: Some(2),
        deployed_model: Some(QWEN.into()),
        ..cfg()
    })
    .await;
    let c = C::new(&h);
    let r = qwen_ref();
    let mut body = validation_body(&r, &r.artifacts, json!({"dist_threshold": 0.2}));
    body["wait"] = json!(false);
    body["url"] = json!(format!("http://{cb}/v2/poc-batches"));
    let (code, v) = c.post("/api/v1/inference/pow/generate", body.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "queued");
    let id = v["request_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("5001:") || id.starts_with("5002:"), "{id}");
    let done = c
        .wait_get(&format!("/api/v1/inference/pow/generate/{id}"), |v| {
            v["status"] == "completed"
        })
        .await;
    assert_eq!(
        (done["request_id"].clone(), done["n_mismatch"].clone()),
        (json!(id), json!(0))
    );
    // Round robin: the next request lands on the other replica.
    let (_, v2) = c.post("/api/v1/inference/pow/generate", body).await;
    assert_ne!(v2["request_id"].as_str().unwrap()[..5], id[..5]);
    for _ in 0..2000 {
        if !got.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (kind, payload) = got.lock().unwrap()[0].clone();
    assert_eq!(kind, "validated");
    assert_eq!(payload["n_total"], 32);
    assert_eq!(
        payload["request_id"].as_str().unwrap(),
        id.split_once(':').unwrap().1,
        "replica uuid, not composite"
    );
    // stop wipes results.
    c.post("/api/v1/inference/pow/stop", json!({})).await;
    assert_eq!(
        c.get(&format!("/api/v1/inference/pow/generate/{id}"))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn health_state_and_misc_endpoints() {
    let h = start(cfg()).await;
    let c = C::new(&h);
    let (code, v) = c.get("/health").await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "healthy");
    assert_eq!(
        v["managers"]["train"],
        json!({"running": false, "healthy": true})
    );
    assert_eq!(c.get("/livez").await.0, 200);
    assert_eq!(c.get("/readyz").await, (200, json!({"ready": true})));
    let (_, v) = c.get("/api/v1/versions").await;
    assert_eq!(
        v,
        json!({"version": "3.0.12-sim", "vllm_version": null, "poc_validation_inference": false})
    );
    let r = c
        .http
        .get(format!("{}/api/v1/clock", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.headers().contains_key("x-server-recv-ns"));
    assert_eq!(
        c.post("/api/v1/stop", json!({})).await,
        (200, json!({"status": "OK"}))
    );
    assert_eq!(c.get("/api/v1/models/list").await.1, json!({"models": []}));
    let (_, v) = c.get("/api/v1/models/space").await;
    assert!(v["available_gb"].as_f64().unwrap() > 0.0);
    assert_eq!(c.get("/v1/models").await.0, 503);
}

#[tokio::test]
async fn sim_binary_starts_fast_on_port_zero() {
    use tokio::io::AsyncBufReadExt;
    let t0 = std::time::Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mlnode-sim"))
        .args(["--port", "0", "--scenario", "honest"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let r = reqwest::get(format!("{url}/api/v1/state")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    eprintln!("mlnode-sim answered after {:?}", t0.elapsed());
    child.kill().await.unwrap();
}

/// The pre-rendered /pow/status bytes equal serde's rendering in every state.
#[tokio::test]
async fn pow_status_fast_rendering_equals_serde() {
    let same = |node: &mlnode_sim::Node, what: &str| {
        let t = node.clock.now();
        let fast = node.pow_status_json_at(t);
        let slow = serde_json::to_vec(&node.pow_status_at(t)).unwrap();
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(slow).unwrap(),
            "{what}"
        );
    };
    // NO_BACKENDS, then IDLE, GENERATING and MIXED (partial init), then ERROR (crashed).
    let h = start(cfg()).await;
    same(&h.node, "no backends");
    let (h, c) = deploy_scenario("partial-init").await;
    same(&h.node, "idle");
    c.post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    same(&h.node, "mixed");
    let h = start(NodeConfig {
        replicas: Some(3),
        deployed_model: Some(QWEN.into()),
        ..cfg()
    })
    .await;
    let c = C::new(&h);
    c.post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    same(&h.node, "generating");
    let (h, c) = deploy_scenario("deploy-crash-after-start").await;
    c.post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    for _ in 0..200 {
        if c.get("/api/v1/inference/pow/status").await.1["backends"][0]["status"] == "ERROR" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    same(&h.node, "error/crashed");
}

// ------------------------------------------------------------- scenarios (node-visible)

async fn validate_ref(c: &C, r: &Reference, batch: u32) -> Value {
    let st = mlnode_protocol::ResolvedStatTest::resolve(&[(
        mlnode_protocol::Source::Artifact,
        &r.stat_test_overrides(),
    )])
    .unwrap();
    let mut body = validation_body(r, &r.artifacts, serde_json::to_value(st.values).unwrap());
    body["batch_size"] = json!(batch);
    let (code, v) = c.post("/api/v1/inference/pow/generate", body).await;
    assert_eq!(code, 200, "{v}");
    v
}

fn all_refs() -> Vec<Reference> {
    mlnode_sim::fixtures::REFERENCES
        .iter()
        .map(|(_, t)| Reference::parse(t).unwrap())
        .collect()
}

/// tolerated-mismatches: PASS-with-mismatches for every reference under its own stat
/// test; fraud-int4 and fraud-forged: fraud for every reference.
#[tokio::test]
async fn mismatch_scenarios_against_every_reference() {
    for (name, want_fraud) in [
        ("tolerated-mismatches", false),
        ("fraud-int4", true),
        ("fraud-forged", true),
        ("honest", false),
    ] {
        for r in all_refs() {
            let mut s = mlnode_sim::fixtures::load_scenario(name).unwrap();
            s.node.time_scale = SCALE;
            s.node.deployed_model = Some(r.model.clone());
            let h = start(s.node).await;
            let c = C::new(&h);
            let v = validate_ref(&c, &r, 64).await;
            assert_eq!(
                v["fraud_detected"], want_fraud,
                "{name} vs {}: {v}",
                r.model
            );
            let n = v["n_mismatch"].as_u64().unwrap();
            match name {
                "honest" => assert_eq!(n, 0),
                "tolerated-mismatches" => {
                    assert_eq!((n, v["mismatch_nonces"].clone()), (1, json!([17])))
                }
                // A random unit vector in 12-D lands inside a 0.75 gate now and then.
                "fraud-forged" => assert!(n as f64 >= 0.95 * r.artifacts.len() as f64, "{n}"),
                _ => assert!(n as f64 > 0.14 * r.artifacts.len() as f64, "{name}: {n}"),
            }
        }
    }
}

#[tokio::test]
async fn cross_topology_and_batch_size_drift_stay_clean_for_minimax() {
    let minimax = all_refs()
        .into_iter()
        .find(|r| r.model == "MiniMaxAI/MiniMax-M2.7")
        .unwrap();
    for name in ["cross-topology", "batch-size-drift"] {
        let mut s = mlnode_sim::fixtures::load_scenario(name).unwrap();
        s.node.time_scale = SCALE;
        s.node.deployed_model = Some(minimax.model.clone());
        let h = start(s.node).await;
        let c = C::new(&h);
        let v = validate_ref(&c, &minimax, 64).await;
        let frac = v["n_mismatch"].as_f64().unwrap() / 200.0;
        assert!(
            (0.02..=0.08).contains(&frac),
            "{name}: {frac} past the gate"
        );
        assert_eq!(v["fraud_detected"], false, "{name}");
        if name == "batch-size-drift" {
            let v = validate_ref(&c, &minimax, 32).await;
            assert_eq!(
                v["n_mismatch"], 0,
                "bit-exact at the node's default batch size"
            );
        }
    }
}

async fn deploy_scenario(name: &str) -> (SimHandle, C) {
    let h = scenario(name).await;
    let c = C::new(&h);
    if h.node.cfg.deployed_model.is_none() {
        c.download_and_deploy(QWEN, json!([])).await;
    }
    (h, c)
}

#[tokio::test]
async fn download_fault_scenarios() {
    for (name, want) in [
        ("download-partial", "PARTIAL"),
        ("download-not-found", "NOT_FOUND"),
        ("download-stuck", "DOWNLOADING"),
    ] {
        let h = scenario(name).await;
        let c = C::new(&h);
        assert_eq!(
            c.post("/api/v1/models/download", json!({"hf_repo": QWEN}))
                .await
                .0,
            202
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // 200 simulated seconds
        let (_, v) = c
            .post("/api/v1/models/status", json!({"hf_repo": QWEN}))
            .await;
        assert_eq!(v["status"], want, "{name}: {v}");
        if name == "download-partial" {
            assert!(v["error_message"]
                .as_str()
                .unwrap()
                .starts_with("Network error after 5 retry attempts"));
        }
    }
}

#[tokio::test]
async fn deploy_fault_scenarios() {
    // OOM: failed with the text.
    let h = scenario("deploy-oom").await;
    let c = C::new(&h);
    c.download_and_start(QWEN).await;
    let v = c
        .wait_get("/api/v1/inference/up/status", |v| {
            v["status"] != "in_progress"
        })
        .await;
    assert_eq!(v["status"], "failed");
    assert!(v["error"].as_str().unwrap().contains("CUDA out of memory"));
    assert_eq!(v["elapsed_seconds"], Value::Null);
    // Synchronous up reports the failure as 500 after a down.
    c.post("/api/v1/inference/down", json!({})).await;
    let (code, v) = c
        .post(
            "/api/v1/inference/up",
            json!({"model": QWEN, "dtype": "auto"}),
        )
        .await;
    assert_eq!(code, 500);
    assert!(v["detail"].as_str().unwrap().contains("CUDA out of memory"));

    // Timeout: in_progress forever, with growing elapsed_seconds.
    let h = scenario("deploy-timeout").await;
    let c = C::new(&h);
    c.download_and_start(QWEN).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, v) = c.get("/api/v1/inference/up/status").await;
    assert_eq!(v["status"], "in_progress");
    assert!(v["elapsed_seconds"].as_f64().unwrap() > 300.0);

    // Crash after start: completed, then is_running false and NO_BACKENDS.
    let (_h, c) = deploy_scenario("deploy-crash-after-start").await;
    tokio::time::sleep(Duration::from_millis(120)).await; // > 60 s + 6 s damping
    let (_, v) = c.get("/api/v1/inference/up/status").await;
    assert_eq!(
        (v["status"].clone(), v["is_running"].clone()),
        (json!("completed"), json!(false))
    );
    assert_eq!(
        c.get("/api/v1/inference/pow/status").await.1["status"],
        "NO_BACKENDS"
    );
    assert_eq!(c.get("/health").await.0, 503);
}

#[tokio::test]
async fn node_exits_on_failed_deploy_refuses_connections_then_returns() {
    let mut s = mlnode_sim::fixtures::load_scenario("node-exits-on-failed-deploy").unwrap();
    s.node.time_scale = 200.0;
    let h = start(s.node).await;
    let c = C::new(&h);
    c.download_and_start(QWEN).await;
    // Poll until a request fails at the transport level.
    let mut refused = false;
    for _ in 0..2000 {
        if c.http
            .get(format!("{}/api/v1/inference/up/status", c.base))
            .send()
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(refused, "the node never went away");
    // Back, with nothing started.
    let fresh = reqwest::Client::new();
    for _ in 0..4000 {
        if let Ok(r) = fresh
            .get(format!("{}/api/v1/inference/up/status", c.base))
            .send()
            .await
        {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["status"], "not_started");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the node never came back");
}

#[tokio::test]
async fn replica_fault_scenarios() {
    // no-backends: init 503.
    let (_h, c) = deploy_scenario("no-backends").await;
    assert_eq!(
        c.post("/api/v1/inference/pow/init/generate", init_body(QWEN))
            .await
            .0,
        503
    );
    assert_eq!(c.get("/api/v1/state").await.1["poc_status"], "NO_BACKENDS");

    // partial-init: 200 with errors.
    let (_h, c) = deploy_scenario("partial-init").await;
    let (code, v) = c
        .post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        (v["backends"].clone(), v["n_groups"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(v["errors"][0]["port"], 5002);
    assert!(v["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("illegal memory access"));
    assert_eq!(
        c.get("/api/v1/inference/pow/status").await.1["status"],
        "MIXED"
    );

    // stale-generating: the second init is 502 at once.
    let (_h, c) = deploy_scenario("stale-generating").await;
    assert_eq!(
        c.get("/api/v1/inference/pow/status").await.1["status"],
        "GENERATING"
    );
    let (code, v) = c
        .post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    assert_eq!(code, 502);
    assert!(v["detail"]["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("Already generating"));

    // slow-replica and stalled-replica: read the per-replica stats.
    for (name, port, check) in [
        ("slow-replica", 5003u16, "slow"),
        ("stalled-replica", 5002, "stalled"),
    ] {
        let (_h, c) = deploy_scenario(name).await;
        c.post("/api/v1/inference/pow/init/generate", init_body(QWEN))
            .await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (_, a) = c.get("/api/v1/inference/pow/status").await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (_, b) = c.get("/api/v1/inference/pow/status").await;
        let stat = |v: &Value, p: u16, k: &str| {
            v["backends"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["port"] == p)
                .unwrap()["stats"][k]
                .as_f64()
                .unwrap()
        };
        let other = 5001;
        if check == "slow" {
            let ratio = stat(&b, port, "nonces_per_second") / stat(&b, other, "nonces_per_second");
            assert!((0.3..0.5).contains(&ratio), "{ratio}");
        } else {
            assert_eq!(
                stat(&a, port, "total_processed"),
                stat(&b, port, "total_processed")
            );
            assert!(stat(&b, other, "total_processed") > stat(&a, other, "total_processed"));
        }
    }
}

#[tokio::test]
async fn validation_proxy_timeout_and_lying_node() {
    let (_h, c) = deploy_scenario("validation-proxy-timeout").await;
    let r = qwen_ref();
    let (code, v) = c
        .post(
            "/api/v1/inference/pow/generate",
            validation_body(&r, &r.artifacts, json!({})),
        )
        .await;
    assert_eq!(code, 502, "{v}");

    let (_h, c) = deploy_scenario("lying-node").await;
    let mut garbage = r.artifacts.clone();
    for a in garbage.iter_mut() {
        a.vector_b64 = mlnode_protocol::Vector::from_f32(&[0.0; 12]).encode();
    }
    let (_, v) = c
        .post(
            "/api/v1/inference/pow/generate",
            validation_body(&r, &garbage, json!({})),
        )
        .await;
    assert_eq!(
        (v["n_mismatch"].clone(), v["fraud_detected"].clone()),
        (json!(0), json!(false)),
        "it lies"
    );
}

// ---------------------------------------------------------- malformed input (oneshot)

mod malformed {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use proptest::prelude::*;
    use tower::ServiceExt;

    const POSTS: &[&str] = &[
        "/api/v1/models/status",
        "/api/v1/models/download",
        "/api/v1/inference/up",
        "/api/v1/inference/up/async",
        "/api/v1/inference/pow/init/generate",
        "/api/v1/inference/pow/generate",
        "/api/v1/inference/pow/stop",
        "/api/v1/inference/down",
    ];

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            Just(json!(u64::MAX)),
            Just(json!(-1)),
            "[a-z_]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("nonces".to_string()),
                        Just("params".to_string()),
                        Just("wait".to_string()),
                        Just("batch_size".to_string()),
                        Just("validation".to_string()),
                        Just("hf_repo".to_string()),
                        Just("model".to_string()),
                        Just("dtype".to_string()),
                        "[a-z_]{1,10}"
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A body that is almost valid: a real request with one field replaced.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let base = json!({"block_hash": "TEST_BLOCK", "block_height": 100, "public_key": "test_pub_keys",
            "node_id": 0, "node_count": 1, "nonces": [0, 1, 2], "batch_size": 4, "wait": true,
            "params": {"model": "Qwen/Qwen3-32B-FP8", "seq_len": 128, "k_dim": 12},
            "validation": {"artifacts": [{"nonce": 0, "vector_b64": "AAAA"}]},
            "hf_repo": "Qwen/Qwen3-32B-FP8", "model": "Qwen/Qwen3-32B-FP8", "dtype": "auto"});
        let keys: Vec<String> = base.as_object().unwrap().keys().cloned().collect();
        (proptest::sample::select(keys), json_value()).prop_map(move |(k, v)| {
            let mut b = base.clone();
            b[k.as_str()] = v;
            serde_json::to_vec(&b).unwrap()
        })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            mutated(),
            mutated(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2500, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn never_panics_and_answers_json(path in proptest::sample::select(POSTS), body in body()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (code, ct, bytes) = rt.block_on(async {
                let node = build_node(NodeConfig { time_scale: 1e6, deployed_model: Some(QWEN.into()), ..NodeConfig::default() }, None).unwrap();
                let app = mlnode_sim::app(node);
                let req = Request::builder().method(Method::POST).uri(path).body(Body::from(body)).unwrap();
                let resp = tokio::time::timeout(Duration::from_secs(10), app.oneshot(req)).await.expect("answers in time").unwrap();
                let code = resp.status().as_u16();
                let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
                let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
                (code, ct, bytes)
            });
            prop_assert!(code < 500 || code == 502 || code == 503, "{} on {}", code, path);
            prop_assert!(ct.starts_with("application/json"), "content-type {}", ct);
            let v: Value = serde_json::from_slice(&bytes).expect("JSON body");
            if code >= 400 {
                prop_assert!(v.get("detail").is_some(), "{}", v);
            }
        }
    }
}

// ------------------------------------------------------- admin API, transport, journal

mod admin {
    use super::*;
    use mlnode_sim::{spawn_sim, Sim, SimOptions};

    async fn start_admin(
        cfg: NodeConfig,
        token: Option<&str>,
        journal: Option<usize>,
    ) -> SimHandle {
        let node = build_node(cfg, None).unwrap();
        spawn_sim(Sim::new(
            node,
            SimOptions {
                admin: true,
                admin_token: token.map(str::to_owned),
                journal_size: journal,
                limits: None,
            },
        ))
        .await
        .unwrap()
    }

    async fn admin_post(c: &C, path: &str, body: Value, token: &str) -> (u16, Value) {
        let r = c
            .http
            .post(format!("{}{path}", c.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn off_by_default_and_token_checked() {
        let h = start(cfg()).await;
        assert_eq!(
            C::new(&h).get("/sim/v1/scenarios").await.0,
            404,
            "admin off → 404"
        );

        let h = start_admin(cfg(), Some("s3cret"), None).await;
        let c = C::new(&h);
        assert_eq!(
            c.get("/sim/v1/scenarios").await,
            (401, json!({"detail": "Missing admin token"}))
        );
        let r = c
            .http
            .get(format!("{}/sim/v1/scenarios", c.base))
            .header("X-Admin-Token", "nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        let r = c
            .http
            .get(format!("{}/sim/v1/scenarios", c.base))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let list: Value = r.json().await.unwrap();
        assert!(list
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "fraud-int4"));
        // The MLNode API itself needs no token.
        assert_eq!(c.get("/api/v1/state").await.0, 200);
    }

    #[tokio::test]
    async fn load_scenario_reset_and_replica_health() {
        let h = start_admin(
            NodeConfig {
                replicas: Some(2),
                deployed_model: Some(QWEN.into()),
                ..cfg()
            },
            Some("t"),
            None,
        )
        .await;
        let c = C::new(&h);
        // Replica 1 fails its probes: dropped after the 3-probe damping, restored at once.
        let (code, _) = admin_post(
            &c,
            "/sim/v1/replicas/1/health",
            json!({"healthy": false}),
            "t",
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(
            c.get("/api/v1/inference/pow/status").await.1["backends"]
                .as_array()
                .unwrap()
                .len(),
            2,
            "damping"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // > 6 simulated seconds
        let st = c.get("/api/v1/inference/pow/status").await.1;
        assert_eq!(st["backends"].as_array().unwrap().len(), 1);
        assert_eq!(st["backends"][0]["port"], 5001);
        let (_, init) = c
            .post("/api/v1/inference/pow/init/generate", init_body(QWEN))
            .await;
        assert_eq!(init["n_groups"], 1, "n_groups shrinks with the healthy set");
        c.post("/api/v1/inference/pow/stop", json!({})).await;
        admin_post(
            &c,
            "/sim/v1/replicas/1/health",
            json!({"healthy": true}),
            "t",
        )
        .await;
        assert_eq!(
            c.get("/api/v1/inference/pow/status").await.1["backends"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            admin_post(
                &c,
                "/sim/v1/replicas/9/health",
                json!({"healthy": true}),
                "t"
            )
            .await
            .0,
            404
        );
        // Per-replica fault at runtime: replica 0 at 25 % speed.
        admin_post(&c, "/sim/v1/replicas/0/fault", json!({"rate": 0.25}), "t").await;
        c.post("/api/v1/inference/pow/init/generate", init_body(QWEN))
            .await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let st = c.get("/api/v1/inference/pow/status").await.1;
        let rate = |p: u64| {
            st["backends"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["port"] == p)
                .unwrap()["stats"]["nonces_per_second"]
                .as_f64()
                .unwrap()
        };
        assert!(rate(5001) < 0.4 * rate(5002), "{st}");
        // Load a scenario: a fresh node (nothing deployed), forging vectors.
        let (code, v) =
            admin_post(&c, "/sim/v1/scenario", json!({"name": "fraud-forged"}), "t").await;
        assert_eq!((code, v["scenario"].clone()), (200, json!("fraud-forged")));
        assert_eq!(
            c.get("/api/v1/inference/up/status").await.1["status"],
            "not_started"
        );
        assert_eq!(
            admin_post(&c, "/sim/v1/scenario", json!({"name": "no-such"}), "t")
                .await
                .0,
            400
        );
        // Reset returns to the loaded scenario's start.
        c.download_and_deploy(QWEN, json!([])).await;
        assert_eq!(admin_post(&c, "/sim/v1/reset", json!({}), "t").await.0, 200);
        assert_eq!(
            c.get("/api/v1/inference/up/status").await.1["status"],
            "not_started"
        );
    }

    #[tokio::test]
    async fn transport_faults_on_a_real_socket() {
        let h = start_admin(cfg(), None, None).await;
        let c = C::new(&h);
        let set = |kind: Value| {
            let c = &c;
            async move {
                c.http
                    .delete(format!("{}/sim/v1/faults", c.base))
                    .send()
                    .await
                    .unwrap();
                let mut f = json!({"path": "/api/v1/state"});
                f.as_object_mut()
                    .unwrap()
                    .extend(kind.as_object().unwrap().clone());
                let (code, v) = c.post("/sim/v1/faults", f).await;
                assert_eq!(code, 200, "{v}");
            }
        };
        let url = format!("{}/api/v1/state", c.base);
        // A fresh client per probe: a cut connection must not poison the pool.
        let probe = || async {
            reqwest::Client::new()
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
        };

        set(json!({"kind": "reset"})).await;
        assert!(probe().await.is_err(), "reset");
        set(json!({"kind": "empty"})).await;
        assert!(probe().await.is_err(), "empty reply");
        set(json!({"kind": "truncate"})).await;
        let r = probe().await;
        assert!(
            r.is_err() || r.unwrap().bytes().await.is_err(),
            "truncated body"
        );
        set(json!({"kind": "garbage"})).await;
        let r = probe().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err(),
            "garbage is not JSON"
        );
        set(json!({"kind": "dribble", "chunk_bytes": 8, "interval_ms": 1000.0})).await;
        let r = probe().await.unwrap().json::<Value>().await.unwrap();
        assert_eq!(r["state"], "STOPPED", "a dribbled body arrives whole");
        set(json!({"kind": "latency", "latency": {"dist": "fixed", "ms": 4000.0}})).await;
        let t0 = std::time::Instant::now();
        assert_eq!(probe().await.unwrap().status().as_u16(), 200);
        assert!(
            t0.elapsed() >= Duration::from_millis(2),
            "4 simulated s at 2000× ≈ 2 ms"
        );
        // Hang: the client gives up, and other requests are still served meanwhile.
        set(json!({"kind": "hang"})).await;
        let hung = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_millis(300))
            .send();
        let other = c.get("/api/v1/inference/up/status");
        let (hung, other) = tokio::join!(hung, other);
        assert!(hung.is_err());
        assert_eq!(other.0, 200);
        // Probability 0 never fires; bad specs are rejected; clearing restores service.
        set(json!({"kind": "reset", "probability": 0.0})).await;
        assert_eq!(probe().await.unwrap().status().as_u16(), 200);
        assert_eq!(
            c.post(
                "/sim/v1/faults",
                json!({"path": "/x", "kind": "reset", "oops": 1})
            )
            .await
            .0,
            422
        );
        assert_eq!(
            c.post("/sim/v1/faults", json!({"path": "/x", "kind": "latency"}))
                .await
                .0,
            422
        );
        c.http
            .delete(format!("{}/sim/v1/faults", c.base))
            .send()
            .await
            .unwrap();
        assert_eq!(c.get("/sim/v1/faults").await.1, json!([]));
        assert_eq!(probe().await.unwrap().status().as_u16(), 200);
        // The journal saw the traffic.
        let j = c.get("/sim/v1/journal?limit=5").await.1;
        assert_eq!(j["entries"].as_array().unwrap().len(), 5);
        assert!(j["total"].as_u64().unwrap() > 10);
    }

    /// 100,000 requests through the journal: it keeps exactly its capacity, and its heap
    /// stays under a fixed bound however long the paths.
    #[test]
    fn journal_memory_is_flat_under_100k_requests() {
        use axum::body::Body;
        use axum::http::Request;
        use tower::ServiceExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sim = Sim::new(
                build_node(cfg(), None).unwrap(),
                SimOptions {
                    journal_size: Some(1000),
                    ..SimOptions::default()
                },
            );
            let app = mlnode_sim::router(sim.clone());
            let long = format!("/{}", "p".repeat(4000));
            let mut peak = 0;
            for i in 0..100_000u32 {
                let path = match i % 3 {
                    0 => "/api/v1/models/space",
                    1 => "/nope",
                    _ => long.as_str(),
                };
                let req = Request::builder().uri(path).body(Body::empty()).unwrap();
                let _ = app.clone().oneshot(req).await.unwrap();
                if i % 10_000 == 9_999 {
                    peak = peak.max(sim.journal.heap_bytes());
                }
            }
            assert_eq!(sim.journal.total(), 100_000);
            assert_eq!(sim.journal.len(), 1000);
            let bound = 1000
                * (std::mem::size_of::<mlnode_sim::journal::Entry>()
                    + mlnode_sim::journal::MAX_PATH
                    + 16);
            assert!(peak <= bound, "journal heap {peak} B > {bound} B");
        });
    }
}

/// `wait=false` past 100,000 queued nonces → 429 (pass-through). Jobs wait while the
/// replica mines, so the queue fills.
#[tokio::test]
async fn queue_limit_is_429() {
    let h = start(NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..cfg()
    })
    .await;
    let c = C::new(&h);
    c.post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    let mut body = init_body(QWEN);
    body["wait"] = json!(false);
    body["nonces"] = json!((0..100_000).collect::<Vec<i64>>());
    let (code, v) = c.post("/api/v1/inference/pow/generate", body.clone()).await;
    assert_eq!(
        (code, v["status"].clone(), v["queued_count"].clone()),
        (200, json!("queued"), json!(1))
    );
    body["nonces"] = json!([0]);
    let (code, v) = c.post("/api/v1/inference/pow/generate", body).await;
    assert_eq!(code, 429);
    assert_eq!(
        v["detail"],
        r#"{"detail":"Queue full: 100000 nonces queued, limit is 100000"}"#
    );
    // stop wipes the queue; room again.
    c.post("/api/v1/inference/pow/stop", json!({})).await;
    let mut body = init_body(QWEN);
    body["wait"] = json!(false);
    body["nonces"] = json!([1, 2]);
    assert_eq!(c.post("/api/v1/inference/pow/generate", body).await.0, 200);
}

/// A failing callback endpoint gets the same payload again with backoff, until it
/// accepts; nothing is lost and nothing is duplicated.
#[tokio::test]
async fn callbacks_are_retried_until_accepted() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let attempts = Arc::new(AtomicUsize::new(0));
    let accepted: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (a, acc) = (attempts.clone(), accepted.clone());
    let app = axum::Router::new().route(
        "/cb/generated",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let (a, acc) = (a.clone(), acc.clone());
            async move {
                // The first two attempts fail (500), the third is accepted.
                if a.fetch_add(1, Ordering::SeqCst) < 2 {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                acc.lock().unwrap().push(v);
                axum::http::StatusCode::OK
            }
        }),
    );
    let cb = receiver(app).await;
    let h = start(NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..cfg()
    })
    .await;
    let c = C::new(&h);
    let mut body = init_body(QWEN);
    body["wait"] = json!(false);
    body["nonces"] = json!([3, 4, 5]);
    body["url"] = json!(format!("http://{cb}/cb"));
    let (code, v) = c.post("/api/v1/inference/pow/generate", body).await;
    assert_eq!(code, 200, "{v}");
    for _ in 0..4000 {
        if !accepted.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let got = accepted.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "delivered exactly once");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    let nonces: Vec<i64> = got[0]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["nonce"].as_i64().unwrap())
        .collect();
    assert_eq!(nonces, vec![3, 4, 5]);
    assert!(got[0]["request_id"].is_string());
}

/// Without `--replicas`, the node runs `gpus / (tp·pp)` vLLM instances, as the real runner
/// does; the synchronous `/inference/up` blocks until ready and answers 200.
#[tokio::test]
async fn replica_count_follows_gpus_and_parallelism_and_sync_up_succeeds() {
    for (args, want) in [
        (json!(["--tensor-parallel-size", "2"]), 4),
        (
            json!([
                "--tensor-parallel-size",
                "2",
                "--pipeline-parallel-size",
                "2"
            ]),
            2,
        ),
        (json!([]), 8),
    ] {
        let h = start(NodeConfig {
            gpus: Some(8),
            cached_models: vec![QWEN.into()],
            ..cfg()
        })
        .await;
        let c = C::new(&h);
        let (code, v) = c
            .post(
                "/api/v1/inference/up",
                json!({"model": QWEN, "dtype": "auto", "additional_args": args}),
            )
            .await;
        assert_eq!((code, v), (200, json!({"status": "OK"})));
        let st = c.get("/api/v1/inference/pow/status").await.1;
        assert_eq!(st["backends"].as_array().unwrap().len(), want, "{args}");
        assert_eq!(c.get("/health").await.1["gpu"]["count"], 8);
    }
}
