//! Shared set-up: a node per test on 127.0.0.1:0, an HTTP client, request bodies.

use std::time::Duration;

use mlnode_protocol::wire::*;
use mlnode_protocol::Reference;
use mlnode_sim::config::NodeConfig;
use mlnode_sim::{build_node, spawn, SimHandle};
use serde_json::{json, Value};

pub const QWEN: &str = "Qwen/Qwen3-32B-FP8";
pub const SCALE: f64 = 2000.0;

pub fn cfg() -> NodeConfig {
    NodeConfig {
        time_scale: SCALE,
        ..NodeConfig::default()
    }
}

pub async fn start(cfg: NodeConfig) -> SimHandle {
    spawn(build_node(cfg, None).expect("node builds"))
        .await
        .expect("binds")
}

pub async fn scenario(name: &str) -> SimHandle {
    let mut s = mlnode_sim::fixtures::load_scenario(name).unwrap();
    s.node.time_scale = SCALE;
    start(s.node).await
}

pub struct C {
    pub http: reqwest::Client,
    pub base: String,
}

impl C {
    pub fn new(h: &SimHandle) -> Self {
        C {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: h.url(),
        }
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
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
    pub async fn raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
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
    pub async fn wait_get(&self, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
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
    pub async fn download(&self, model: &str) {
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
    pub async fn download_and_start(&self, model: &str) {
        self.download(model).await;
        let (code, v) = self
            .post(
                "/api/v1/inference/up/async",
                json!({"model": model, "dtype": "auto"}),
            )
            .await;
        assert_eq!(code, 200, "{v}");
    }

    pub async fn download_and_deploy(&self, model: &str, args: Value) {
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
pub async fn receiver(app: axum::Router) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

pub fn init_body(model: &str) -> Value {
    json!({"block_hash": "TEST_BLOCK", "block_height": 100, "public_key": "test_pub_keys",
           "node_id": 0, "node_count": 1, "params": {"model": model, "seq_len": 128}})
}

pub fn qwen_ref() -> Reference {
    Reference::parse(include_str!("../../../artifacts/qwen-qwen3-32b-fp8.json")).unwrap()
}

pub fn validation_body(r: &Reference, artifacts: &[Artifact], st: Value) -> Value {
    json!({"block_hash": r.block_hash, "block_height": 100, "public_key": r.public_key,
           "node_id": 0, "node_count": 1, "nonces": r.nonces(),
           "params": {"model": r.model, "seq_len": r.seq_len, "k_dim": r.k_dim},
           "batch_size": 64, "wait": true, "validation": {"artifacts": artifacts}, "stat_test": st})
}

// ------------------------------------------------------------- scenarios (node-visible)

pub async fn validate_ref(c: &C, r: &Reference, batch: u32) -> Value {
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

/// The two small real references these tests were written around (Qwen3-32B, 32
/// vectors; MiniMax-M2.7, 200). The compiled-in set holds all six, among them the
/// 2,000-vector DeepGEMM one, which one replica cannot validate within the 60 s proxy
/// limit at the generic profile (a case of its own, in the validator's tests).
pub fn all_refs() -> Vec<Reference> {
    mlnode_sim::fixtures::REFERENCES
        .iter()
        .filter(|(name, _)| {
            ["qwen-qwen3-32b-fp8.json", "minimaxai-minimax-m2.7.json"].contains(name)
        })
        .map(|(_, t)| Reference::parse(t).unwrap())
        .collect()
}

pub async fn deploy_scenario(name: &str) -> (SimHandle, C) {
    let h = scenario(name).await;
    let c = C::new(&h);
    if h.node.cfg.deployed_model.is_none() {
        c.download_and_deploy(QWEN, json!([])).await;
    }
    (h, c)
}
