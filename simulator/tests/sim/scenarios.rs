//! Scenarios as a client sees them: mismatch models, download/deploy/replica faults.

use std::time::Duration;

use serde_json::{json, Value};

use crate::util::*;

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
