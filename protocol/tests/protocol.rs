//! Integration tests for `mlnode-protocol`: wire round trips with the spec's exact
//! example bodies, and the binomial tail against statrs as an oracle.

use mlnode_protocol::wire::*;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Parse the spec's body, re-serialise, and require the same JSON value.
fn round_trip<T: DeserializeOwned + Serialize>(body: Value) -> T {
    let t: T = serde_json::from_value(body.clone()).expect("parses");
    assert_eq!(
        serde_json::to_value(&t).unwrap(),
        body,
        "round trip changed the body"
    );
    t
}

#[test]
fn models_bodies() {
    round_trip::<Model>(
        json!({"hf_repo": "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8", "hf_commit": null}),
    );
    let m: Model = serde_json::from_value(json!({"hf_repo": "a/b"})).unwrap();
    assert_eq!(m.task_id(), "a/b:latest");
    let s = round_trip::<ModelStatusResponse>(json!({
        "model": {"hf_repo": "a/b", "hf_commit": null}, "status": "DOWNLOADING",
        "progress": {"start_time": 1700000000.5, "elapsed_seconds": 12.0}, "error_message": null}));
    assert_eq!(s.status, ModelStatus::Downloading);
    round_trip::<ModelStatusResponse>(json!({
        "model": {"hf_repo": "x/y", "hf_commit": null}, "status": "PARTIAL",
        "progress": null, "error_message": "Repository not found: x/y"}));
    round_trip::<DownloadStartResponse>(json!({"task_id": "a/b:latest", "status": "IGNORED",
        "model": {"hf_repo": "a/b", "hf_commit": null}}));
    round_trip::<DeleteModelResponse>(
        json!({"status": "deleted", "model": {"hf_repo": "a/b", "hf_commit": "abc"}}),
    );
    round_trip::<ModelListResponse>(
        json!({"models": [{"model": {"hf_repo": "a/b", "hf_commit": "abc"}, "status": "DOWNLOADED"}]}),
    );
    round_trip::<SpaceResponse>(
        json!({"cache_size_gb": 12.5, "available_gb": 100.25, "cache_path": "/root/.cache/huggingface/hub"}),
    );
}

#[test]
fn inference_bodies() {
    round_trip::<InferenceInitRequest>(json!({"model": "m", "dtype": "auto",
        "additional_args": ["--tensor-parallel-size", "4", "--max-model-len", "240000"]}));
    let missing_dtype = serde_json::from_value::<InferenceInitRequest>(json!({"model": "m"}));
    assert!(missing_dtype.is_err(), "dtype is required");
    let r: InferenceInitRequest =
        serde_json::from_value(json!({"model": "m", "dtype": "auto", "hf_revision": "x"})).unwrap();
    assert!(
        r.additional_args.is_empty(),
        "unknown top-level keys are ignored"
    );
    round_trip::<StartupStatus>(
        json!({"status":"not_started","is_starting":false,"is_running":false,"elapsed_seconds":null,"error":null}),
    );
    round_trip::<StartupStatus>(
        json!({"status":"in_progress","is_starting":true,"is_running":false,"elapsed_seconds":41.7,"error":null}),
    );
    round_trip::<StartupStatus>(
        json!({"status":"cancelled","is_starting":false,"is_running":false,"elapsed_seconds":null,"error":"Startup was cancelled"}),
    );
    round_trip::<StatusMessage>(
        json!({"status":"starting","message":"Inference startup initiated in background"}),
    );
    round_trip::<StatusMessage>(json!({"status":"OK"}));
}

#[test]
fn pow_bodies() {
    let init = json!({"block_hash":"h","block_height":100,"public_key":"pk","node_id":0,"node_count":1,
        "batch_size":32,"params":{"model":"m","seq_len":1024,"k_dim":12},"url":null,"poc_stronger_rng":false});
    round_trip::<InitGenerateRequest>(init);
    // Defaults: batch_size absent (the node applies 32), k_dim 12; an absent batch size
    // stays absent when the request is sent on.
    let r: InitGenerateRequest =
        serde_json::from_value(json!({"block_hash":"h","block_height":1,"public_key":"p",
        "node_id":0,"node_count":1,"params":{"model":"m","seq_len":8}}))
        .unwrap();
    assert_eq!(
        (
            r.batch_size_or(DEFAULT_BATCH_SIZE),
            r.params.k_dim,
            r.poc_stronger_rng
        ),
        (32, 12, false)
    );
    assert!(serde_json::to_value(&r)
        .unwrap()
        .get("batch_size")
        .is_none());
    // Unknown key in params is rejected.
    let bad = serde_json::from_value::<InitGenerateRequest>(
        json!({"block_hash":"h","block_height":1,"public_key":"p",
        "node_id":0,"node_count":1,"params":{"model":"m","seq_len":8,"scheme":"decode"}}),
    );
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("unknown field `scheme`"));

    round_trip::<InitGenerateResponse>(json!({"status":"OK","backends":2,"n_groups":2,
        "results":[{"port":5001,"status":"OK"},{"port":5002,"status":"OK"}],"errors":null}));
    round_trip::<InitGenerateResponse>(json!({"status":"OK","backends":1,"n_groups":2,
        "results":[{"port":5001,"status":"OK"}],"errors":[{"port":5002,"error":"{\"detail\":\"Already generating\"}"}]}));
    let st = round_trip::<PowStatusResponse>(json!({"status":"MIXED","backends":[
        {"port":5001,"status":"GENERATING",
         "config":{"block_hash":"...","block_height":100,"public_key":"...","node_id":0,"node_count":1,
                   "group_id":0,"n_groups":2,"seq_len":1024,"k_dim":12},
         "stats":{"total_processed":4096,"nonces_per_second":27.3}},
        {"port":5002,"status":"IDLE","config":null,"stats":null}]}));
    assert_eq!(st.status, AggregateStatus::Mixed);
    round_trip::<PowStatusResponse>(json!({"status":"NO_BACKENDS","backends":[]}));
    round_trip::<PowStatusResponse>(json!({"status":"MIXED","backends":[
        {"port":5001,"status":"ERROR","config":null,"stats":null,"detail":"boom"}]}));

    let s = round_trip::<StopResponse>(json!({"status":"OK","message":"No backends to stop"}));
    assert!(matches!(s, StopResponse::NoBackends { .. }));
    let s = round_trip::<StopResponse>(
        json!({"status":"OK","results":[{"port":5001,"status":"stopped"}],"errors":null}),
    );
    assert!(matches!(s, StopResponse::Fanout { .. }));

    let gen = round_trip::<GenerateRequest>(
        json!({"block_hash":"h","block_height":100,"public_key":"pk","node_id":0,
        "node_count":1,"nonces":[0,1],"params":{"model":"m","seq_len":1024,"k_dim":12},"batch_size":64,"wait":true,
        "validation":{"artifacts":[{"nonce":0,"vector_b64":"AAAA"},{"nonce":1,"vector_b64":"BBBB"}]},
        "stat_test":{"dist_threshold":0.02,"p_mismatch":0.001,"fraud_threshold":0.01},"poc_stronger_rng":false}),
    );
    assert!(gen.wait);
    // DAPI's p_value_threshold is silently ignored.
    let g: GenerateRequest =
        serde_json::from_value(json!({"block_hash":"h","block_height":1,"public_key":"p",
        "node_id":0,"node_count":1,"nonces":[],"params":{"model":"m","seq_len":8},
        "stat_test":{"p_value_threshold":0.05}}))
        .unwrap();
    assert_eq!(g.stat_test, Some(StatTestOverrides::default()));
    assert!(!g.wait);

    let q = round_trip::<GenerateResponse>(
        json!({"status":"queued","request_id":"5002:3f0c-uuid","queued_count":3}),
    );
    assert!(matches!(q, GenerateResponse::Queued { .. }));
    let a = round_trip::<GenerateResponse>(json!({"status":"completed","request_id":"u",
        "artifacts":[{"nonce":0,"vector_b64":"2jYFL4s4LLU4K7exsizfNKu3xq4Wp/gq"}],
        "encoding":{"dtype":"f16","k_dim":12,"endian":"le"}}));
    assert!(matches!(
        a,
        GenerateResponse::Completed {
            result: JobResult::Artifacts(_),
            ..
        }
    ));
    let v = round_trip::<GenerateResponse>(json!({"status":"completed","request_id":"u",
        "n_total":32,"n_mismatch":1,"mismatch_nonces":[17],"p_value":0.0315,"fraud_detected":false}));
    assert!(matches!(
        v,
        GenerateResponse::Completed {
            result: JobResult::Validation(_),
            ..
        }
    ));

    round_trip::<JobPollResponse>(json!({"status":"queued","request_id":"5001:u"}));
    round_trip::<JobPollResponse>(json!({"status":"failed","request_id":"5001:u","error":"boom"}));
    round_trip::<JobPollResponse>(json!({"status":"completed","request_id":"5001:u",
        "n_total":2,"n_mismatch":0,"mismatch_nonces":[],"p_value":1.0,"fraud_detected":false}));
}

#[test]
fn node_and_callback_bodies() {
    round_trip::<StateResponse>(
        json!({"state":"INFERENCE","version":"1.2.3","poc_status":"IDLE",
        "inference_healthy":true,"loaded_model":"m","poc_validation_inference":false}),
    );
    round_trip::<StateResponse>(
        json!({"state":"STOPPED","version":"1.2.3","poc_status":null,
        "inference_healthy":null,"loaded_model":null,"poc_validation_inference":false}),
    );
    round_trip::<VersionsResponse>(
        json!({"version":"1","vllm_version":null,"poc_validation_inference":false}),
    );
    round_trip::<HealthResponse>(json!({"status":"healthy","service_state":"INFERENCE",
        "gpu":{"available":true,"count":1,"devices":[{"index":0,"name":"NVIDIA H100 80GB HBM3","total_memory_mb":81559,
          "free_memory_mb":80000,"used_memory_mb":1559,"utilization_percent":0,"temperature_c":31,"is_available":true,"error_message":null}]},
        "managers":{"inference":{"running":true,"healthy":true},"train":{"running":false,"healthy":true}}}));
    round_trip::<ReadyResponse>(json!({"ready":true}));
    round_trip::<ErrorBody>(json!({"detail":"No vLLM backends available"}));
    let e = round_trip::<ErrorBody>(json!({"detail":{"errors":[{"port":5001,"error":"x"}]}}));
    assert_eq!(e.detail_text(), r#"{"errors":[{"port":5001,"error":"x"}]}"#);
    round_trip::<GeneratedCallback>(
        json!({"public_key":"pk","block_hash":"h","block_height":100,"node_id":0,
        "artifacts":[{"nonce":7,"vector_b64":"x"}],"encoding":{"dtype":"f16","k_dim":12,"endian":"le"}}),
    );
    round_trip::<GeneratedCallback>(
        json!({"request_id":"u","public_key":"pk","block_hash":"h","block_height":100,"node_id":0,
        "artifacts":[],"encoding":{"dtype":"f16","k_dim":12,"endian":"le"}}),
    );
    round_trip::<ValidatedCallback>(
        json!({"request_id":"u","block_hash":"h","block_height":100,"public_key":"pk",
        "node_id":0,"n_total":32,"n_mismatch":1,"mismatch_nonces":[17],"p_value":0.0315,"fraud_detected":false}),
    );
}

#[test]
fn aggregate_rule() {
    assert_eq!(AggregateStatus::of([]), AggregateStatus::NoBackends);
    assert_eq!(
        AggregateStatus::of(["GENERATING", "GENERATING"]),
        AggregateStatus::Generating
    );
    assert_eq!(
        AggregateStatus::of(["GENERATING", "IDLE"]),
        AggregateStatus::Mixed
    );
    assert_eq!(AggregateStatus::of(["IDLE", "IDLE"]), AggregateStatus::Idle);
    assert_eq!(
        AggregateStatus::of(["IDLE", "ERROR"]),
        AggregateStatus::Mixed
    );
}

proptest! {
    /// statrs as an oracle: P[X ≥ k] = sf(k − 1).
    #[test]
    fn tail_matches_statrs(n in 1u64..2000, kf in 0.0f64..1.0, p in 0.0001f64..0.9999) {
        use statrs::distribution::{Binomial, DiscreteCDF};
        let k = ((n as f64) * kf).round() as u64;
        let ours = mlnode_protocol::binomial_upper_tail(k, n, p);
        let oracle = if k == 0 { 1.0 } else { Binomial::new(p, n).unwrap().sf(k - 1) };
        if oracle > 1e-250 {
            prop_assert!((ours - oracle).abs() <= 1e-7 * oracle.max(1e-12) + 1e-13,
                "k={} n={} p={}: {} vs {}", k, n, p, ours, oracle);
        } else {
            prop_assert!(ours < 1e-240);
        }
    }

    /// The codec round-trips any finite f16 bits exactly.
    #[test]
    fn codec_round_trip(bits in proptest::collection::vec(any::<u16>(), 0..64)) {
        let v = mlnode_protocol::Vector(bits.iter().map(|&b| half::f16::from_bits(b)).collect());
        let back = mlnode_protocol::Vector::decode_any(&v.encode()).unwrap();
        prop_assert_eq!(v.to_le_bytes(), back.to_le_bytes());
    }
}
