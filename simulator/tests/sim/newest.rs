//! The newest MLNode details: `/versions` from the first healthy replica, the local
//! callback sink, the inference port on its own listener, Prometheus metrics, fault
//! sequences, and which reference a node serves.

use std::sync::Arc;
use std::time::Duration;

use mlnode_sim::config::{NodeConfig, ReplicaFault};
use mlnode_sim::{Sim, SimOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::util::*;

fn deployed(replicas: u32) -> NodeConfig {
    NodeConfig {
        replicas: Some(replicas),
        deployed_model: Some(QWEN.into()),
        ..cfg()
    }
}

async fn admin_sim(cfg: NodeConfig) -> (mlnode_sim::SimHandle, C) {
    admin_sim_of(mlnode_sim::build_node(cfg, None).unwrap()).await
}

/// `node` served with the admin API on.
async fn admin_sim_of(node: Arc<mlnode_sim::Node>) -> (mlnode_sim::SimHandle, C) {
    let sim = Sim::new(
        node,
        SimOptions {
            admin: true,
            ..SimOptions::default()
        },
    );
    let h = mlnode_sim::spawn_sim(sim).await.unwrap();
    let c = C::new(&h);
    (h, c)
}

/// `/versions` and `/state` copy the first healthy replica's `/pow/versions` and keep it
/// (cached after the first success); nothing deployed → the fail-closed defaults.
#[tokio::test]
async fn versions_come_from_the_first_healthy_replica_and_are_cached() {
    let idle = start(cfg()).await;
    let v = C::new(&idle).get("/api/v1/versions").await.1;
    assert_eq!(
        v,
        json!({"version": "3.0.12-sim", "vllm_version": null, "poc_validation_inference": false})
    );

    let mut c = deployed(2);
    c.faults.replicas = vec![ReplicaFault {
        replica: 0,
        rate: 1.0,
        stall_after_seconds: None,
        init_error: None,
        poc_validation_inference: Some(false),
        vllm_version: Some("0.23.0".into()),
    }];
    let (h, c) = admin_sim(c).await;
    let v = c.get("/api/v1/versions").await.1;
    assert_eq!(
        v,
        json!({"version": "3.0.12-sim", "vllm_version": "0.23.0", "poc_validation_inference": false}),
        "replica 0 answers first"
    );
    assert_eq!(
        c.get("/api/v1/state").await.1["poc_validation_inference"],
        false
    );
    // Replica 0 drops out; the cached answer stays, as the MLNode's does.
    c.post("/sim/v1/replicas/0/health", json!({"healthy": false}))
        .await;
    c.wait_get("/api/v1/inference/pow/status", |v| {
        v["backends"].as_array().is_some_and(|b| b.len() == 1)
    })
    .await;
    assert_eq!(c.get("/api/v1/versions").await.1["vllm_version"], "0.23.0");
    // Each replica's own answer, in the admin view.
    let n = c.get("/sim/v1/node").await.1;
    let reps = n["deploy"]["replicas"].as_array().unwrap();
    assert_eq!(reps[0]["versions"]["poc_validation_inference"], false);
    assert_eq!(
        reps[1]["versions"],
        json!({"vllm_version": "0.28.0", "gonka_poc_version": "0.1.6", "poc_validation_inference": true})
    );
    drop(h);
}

/// No `url` on `/init/generate` (or `/generate` with `wait=false`): callbacks land in the
/// node's own sink, which a loopback client can read; anyone else gets 403.
#[tokio::test]
async fn an_empty_callback_url_goes_to_the_local_sink() {
    let h = start(deployed(2)).await;
    let c = C::new(&h);
    let mut body = init_body(QWEN);
    body["url"] = json!("");
    let (code, _) = c.post("/api/v1/inference/pow/init/generate", body).await;
    assert_eq!(code, 200);
    let sink = c
        .wait_get("/api/v1/inference/pow/local-sink", |v| {
            v["artifacts"].as_u64().unwrap_or(0) > 0
        })
        .await;
    assert_eq!(sink["recent"][0]["path"], "generated");
    c.post("/api/v1/inference/pow/stop", json!({})).await;

    let mut gen = init_body(QWEN);
    gen["nonces"] = json!([1, 2, 3]);
    gen["wait"] = json!(false);
    let (code, q) = c.post("/api/v1/inference/pow/generate", gen).await;
    assert_eq!((code, q["status"].as_str()), (200, Some("queued")), "{q}");
    let sink = c
        .wait_get("/api/v1/inference/pow/local-sink", |v| {
            v["recent"]
                .as_array()
                .is_some_and(|r| r.iter().any(|d| d["request_id"].is_string()))
        })
        .await;
    let job = sink["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["request_id"].is_string())
        .unwrap();
    assert_eq!(
        (job["path"].as_str(), job["artifacts"].as_u64()),
        (Some("generated"), Some(3))
    );

    // A loopback POST is taken and counted.
    let before = sink["deliveries"].as_u64().unwrap();
    let (code, _) = c
        .post(
            "/api/v1/inference/pow/local-sink/validated",
            json!({"request_id": "x", "result": {"fraud_detected": true}}),
        )
        .await;
    assert_eq!(code, 200);
    let after = c.get("/api/v1/inference/pow/local-sink").await.1;
    assert_eq!(after["deliveries"].as_u64(), Some(before + 1));
    assert_eq!(
        after["recent"].as_array().unwrap().last().unwrap()["fraud_detected"],
        true
    );

    // Not from loopback (or from an unknown peer): 403 with a detail naming why.
    for peer in [Some("10.1.2.3:5555"), None] {
        let mut req = axum::http::Request::post("/api/v1/inference/pow/local-sink/generated")
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{}"))
            .unwrap();
        if let Some(p) = peer {
            req.extensions_mut().insert(axum::extract::ConnectInfo(
                p.parse::<std::net::SocketAddr>().unwrap(),
            ));
        }
        let resp = mlnode_sim::router(h.sim.clone())
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        let b = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert!(v["detail"].as_str().unwrap().contains("loopback"), "{v}");
    }
}

/// Two listeners: the PoC port and the inference port. The inference port refuses
/// connections until a replica is healthy, then serves vLLM's `/health`, the OpenAI
/// routes (gated while mining) and the replica's `/api/v1/pow/versions` — and nothing of
/// the management API.
#[tokio::test]
async fn the_inference_port_is_its_own_listener() {
    let node = mlnode_sim::build_node(
        NodeConfig {
            cached_models: vec![QWEN.into()],
            ..cfg()
        },
        None,
    )
    .unwrap();
    let sim = Sim::new(node, SimOptions::default());
    let poc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inf = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (pa, ia) = (poc.local_addr().unwrap(), inf.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(mlnode_sim::serve_sim_ports(
        poc,
        Some(inf),
        sim.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let c = C {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        base: format!("http://{pa}"),
    };
    let i = C {
        http: c.http.clone(),
        base: format!("http://{ia}"),
    };
    // Nothing deployed: the compat server is down.
    let err = i
        .http
        .get(format!("{}/health", i.base))
        .send()
        .await
        .expect_err("no healthy replica: the inference port refuses");
    assert!(err.is_connect() || err.is_request(), "{err}");

    c.download_and_deploy(QWEN, json!([])).await;
    assert_eq!(sim.addresses(), Some((pa, Some(ia))));
    let r = i
        .http
        .get(format!("{}/health", i.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes().await.unwrap().is_empty(),
        "vLLM's /health is an empty 200"
    );
    assert_eq!(i.get("/v1/models").await.1["data"][0]["id"], QWEN);
    assert_eq!(
        i.get("/api/v1/pow/versions").await.1["gonka_poc_version"],
        "0.1.6"
    );
    assert_eq!(
        i.get("/api/v1/state").await.0,
        404,
        "management stays on the PoC port"
    );

    c.post("/api/v1/inference/pow/init/generate", init_body(QWEN))
        .await;
    let (code, v) = i
        .post(
            "/v1/chat/completions",
            json!({"model": QWEN, "messages": []}),
        )
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (503, Some("poc_generation_active"))
    );

    let metrics = c
        .http
        .get(format!("{}/api/v1/metrics", c.base))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            r#"endpoint="/v1/chat/completions",method="POST",port="inference",status="503""#
        ),
        "{text}"
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

/// Prometheus text 0.0.4 with the real node's families and the simulator's own, counters
/// that count.
#[tokio::test]
async fn metrics_expose_the_node_and_the_simulator() {
    let (h, c) = admin_sim(deployed(2)).await;
    c.get("/api/v1/state").await;
    c.get("/api/v1/state").await;
    c.post(
        "/sim/v1/faults",
        json!({"path": "/api/v1/versions", "kind": "status", "status": 503, "times": 1}),
    )
    .await;
    assert_eq!(c.get("/api/v1/versions").await.0, 503);
    let r = c
        .http
        .get(format!("{}/api/v1/metrics", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
    };
    assert_eq!(value(r#"gonka_metrics_schema_info{version="1"}"#), 1.0);
    assert_eq!(value(r#"mlnode_version_info{version="3.0.12-sim"}"#), 1.0);
    assert!(text.contains(r#"mlnode_config_info{dtype="",max_model_len="",max_num_seqs="",model_name="Qwen/Qwen3-32B-FP8",pipeline_parallel_size="",replicas="2""#), "{text}");
    assert_eq!(
        value(
            r#"mlnode_sim_requests_total{endpoint="/api/v1/state",method="GET",port="poc",status="200"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            r#"mlnode_sim_requests_total{endpoint="/api/v1/versions",method="GET",port="poc",status="503"}"#
        ),
        1.0
    );
    assert_eq!(
        value(r#"mlnode_sim_faults_injected_total{kind="status"}"#),
        1.0
    );
    assert_eq!(value(r#"mlnode_sim_replica_healthy{replica="1"}"#), 1.0);
    assert!(text
        .contains(r#"vllm:num_requests_running{model_name="Qwen/Qwen3-32B-FP8",replica="0"} 0"#));
    assert!(text.contains("# TYPE mlnode_sim_requests_total counter"));
    assert!(text.contains(r#"mlnode_gpu_memory_used_bytes{gpu_index="0""#));
    drop(h);
}

/// "Fail the first N, then succeed" and "succeed N, then fail", per endpoint and per node:
/// another node of the same fleet is not affected.
#[tokio::test]
async fn fault_sequences_count_per_endpoint_and_per_node() {
    let (h, c) = admin_sim(deployed(1)).await;
    let (h2, c2) = admin_sim(deployed(1)).await;
    let (code, _) = c
        .post(
            "/sim/v1/faults",
            json!({"path": "/api/v1/state", "kind": "status", "status": 503, "detail": "warming up", "times": 2}),
        )
        .await;
    assert_eq!(code, 200);
    c.post(
        "/sim/v1/faults",
        json!({"path": "/api/v1/versions", "kind": "status", "status": 500, "skip": 2}),
    )
    .await;
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(c.get("/api/v1/state").await.0);
        }
        v
    };
    assert_eq!(codes, [503, 503, 200, 200]);
    let mut later = Vec::new();
    for _ in 0..4 {
        later.push(c.get("/api/v1/versions").await.0);
    }
    assert_eq!(later, [200, 200, 500, 500]);
    assert_eq!(
        c2.get("/api/v1/state").await.0,
        200,
        "the other node is untouched"
    );
    let (_, first) = {
        let mut f = c.get("/api/v1/state").await;
        // The detail is the one given.
        f.1 = c.get("/sim/v1/faults").await.1;
        f
    };
    assert_eq!(first[0]["seen"], 5);
    assert_eq!(first[0]["fired"], 2);
    assert_eq!(first[1]["skip"], 2);
    // A sequence that cannot work is refused with the reason.
    let (code, e) = c
        .post(
            "/sim/v1/faults",
            json!({"path": "/x", "kind": "status", "status": 200}),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert!(e.to_string().contains("400..=599"), "{e}");
    drop((h, h2));
}

/// A status fault answers with the FastAPI error shape and the given detail.
#[tokio::test]
async fn a_status_fault_answers_like_fastapi() {
    let (_h, c) = admin_sim(deployed(1)).await;
    c.post(
        "/sim/v1/faults",
        json!({"path": "/api/v1/inference/pow/status", "kind": "status", "status": 502, "detail": "upstream gone", "times": 1}),
    )
    .await;
    let (code, v) = c.get("/api/v1/inference/pow/status").await;
    assert_eq!((code, v), (502, json!({"detail": "upstream gone"})));
    assert_eq!(c.get("/api/v1/inference/pow/status").await.0, 200);
}

/// The admin view names the reference recording served for each round, preferring the
/// one recorded with the node's deploy.
#[tokio::test]
async fn the_admin_api_names_the_reference_served() {
    let model = "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8";
    let arts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    let node = mlnode_sim::build_node(
        NodeConfig {
            gpus: Some(4),
            cached_models: vec![model.into()],
            ..cfg()
        },
        Some(&arts),
    )
    .unwrap();
    let (h, c) = admin_sim_of(node).await;
    assert_eq!(c.get("/sim/v1/node").await.1["references"], json!([]));
    c.download_and_deploy(model, json!(["--tensor-parallel-size", "2"]))
        .await;
    let v = c.get("/sim/v1/node").await.1;
    let round = v["references"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["block_hash"] == "TEST_BLOCK" && r["seq_len"] == 1024)
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(
        round["serves"],
        "qwen-qwen3-235b-a22b-instruct-2507-fp8-deepgemm.json"
    );
    assert_eq!(v["deploy"]["replicas"].as_array().unwrap().len(), 2);
    assert_eq!(v["url"], json!(h.url()));
}
