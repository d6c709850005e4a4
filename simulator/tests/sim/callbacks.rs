//! Callbacks: the fan-out partition seen through mining callbacks, queued jobs and their
//! `validated` callback, retries until accepted.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlnode_sim::config::NodeConfig;
use serde_json::{json, Value};

use crate::util::*;

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
