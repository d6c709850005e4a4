//! Malformed input through `oneshot`: every endpoint answers 4xx JSON, never panics.

use std::time::Duration;

use mlnode_sim::build_node;
use mlnode_sim::config::NodeConfig;
use serde_json::{json, Value};

use crate::util::*;
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
