//! The API body by body: the four phases, the error contract, downloads, deploys, queues,
//! health and the pre-rendered status.

use std::time::Duration;

use mlnode_protocol::wire::*;
use mlnode_sim::config::NodeConfig;
use serde_json::{json, Value};

use crate::util::*;

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
        "inference_healthy": true, "loaded_model": QWEN, "poc_validation_inference": true})
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
    // The default limit is the node's (64 MiB), not axum's 2 MB: a 3 MB body reaches the
    // parser (and, being only whitespace, is a 422, not a 413).
    let h = start(cfg()).await;
    let c = C::new(&h);
    let (code, _) = c.raw("/api/v1/models/status", vec![b' '; 3 << 20]).await;
    assert_eq!(code, 422);
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
