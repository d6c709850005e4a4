//! The admin API, transport faults and the journal.

use std::time::Duration;

use mlnode_sim::config::NodeConfig;
use mlnode_sim::{build_node, SimHandle};
use serde_json::{json, Value};

use crate::util::*;
use mlnode_sim::{spawn_sim, Sim, SimOptions};

async fn start_admin(cfg: NodeConfig, token: Option<&str>, journal: Option<usize>) -> SimHandle {
    let node = build_node(cfg, None).unwrap();
    spawn_sim(Sim::new(
        node,
        SimOptions {
            admin: true,
            admin_token: token.map(str::to_owned),
            journal_size: journal,
            ..SimOptions::default()
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
            // 200x, not the suite's 2000x: the 3-probe damping window (6 simulated s) must
            // outlast the next request on a loaded CI machine (3 ms at 2000x did not).
            time_scale: 200.0,
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
    // Dropped once the damping window has passed (bounded poll, no fixed sleep).
    let st = c
        .wait_get("/api/v1/inference/pow/status", |v| {
            v["backends"].as_array().is_some_and(|b| b.len() == 1)
        })
        .await;
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
    let (code, v) = admin_post(&c, "/sim/v1/scenario", json!({"name": "fraud-forged"}), "t").await;
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
