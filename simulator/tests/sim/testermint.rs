//! `--compat testermint`: what the network's integration tests do against their mock
//! (network-node §4.7), replayed against this mode — weights per host, the nonce
//! counter, webhooks, chat configs per versioned path, model and host, SSE, errors, the
//! last request, reset, tokenize, 101 hosts — plus every row of §4.3, §4.4 and §4.6 and
//! the fraud verdict per Host the incumbent cannot give.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use mlnode_sim::testermint::{Mock, MockOptions};
use serde_json::{json, Value};

/// A mock on 127.0.0.1:0 at 100× (webhooks after 10 ms / 50 ms).
struct T {
    base: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn mock_with(opts: MockOptions) -> T {
    let mock = Mock::new(opts);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mlnode_sim::testermint::serve(
        l,
        mock,
        mlnode_sim::ServeLimits::default(),
        async {
            let _ = rx.await;
        },
    ));
    T {
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        _stop: tx,
    }
}

async fn mock() -> T {
    mock_with(MockOptions {
        time_scale: 100.0,
        ..MockOptions::default()
    })
    .await
}

/// An answer: status, body text, parsed JSON (or null).
struct A {
    status: u16,
    text: String,
    json: Value,
}

impl T {
    /// A node-facing call as DAPI sends it: Host = the node's `host:port`, JSON without
    /// a content type.
    async fn node(&self, host: &str, method: &str, path: &str, body: Option<Value>) -> A {
        let url = format!("{}{path}", self.base);
        let mut rb = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        }
        .header("host", host);
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        A {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// A control call as the test client sends it (Host `localhost:<port>`).
    async fn control(&self, path: &str, body: Value) -> A {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        A {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn get(&self, path: &str) -> A {
        self.node("localhost", "GET", path, None).await
    }
}

/// The network node's callback server (`/v2/poc-batches/<model>/{generated,validated}`).
struct Dapi {
    url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn dapi() -> Dapi {
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/v2/poc-batches/{model}/{what}",
        post(
            move |axum::extract::Path((_, what)): axum::extract::Path<(String, String)>,
                  axum::Json(v): axum::Json<Value>| {
                let g = g.clone();
                async move {
                    g.lock().unwrap().push((what, v));
                    "ok"
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v2/poc-batches/Qwen%252FQwen2.5-7B-Instruct",
        l.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(l, app).await });
    Dapi { url, got }
}

impl Dapi {
    /// Wait until `n` callbacks arrived (bounded), then return them all.
    async fn wait(&self, n: usize) -> Vec<(String, Value)> {
        for _ in 0..400 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.got.lock().unwrap().clone()
    }
}

fn init(url: &str, node_id: i64) -> Value {
    json!({"block_hash": "BLOCK", "block_height": 7, "public_key": "pk-genesis", "node_id": node_id,
        "node_count": 2, "group_id": 0, "n_groups": 1,
        "params": {"model": "Qwen/Qwen2.5-7B-Instruct", "seq_len": 256}, "url": url})
}

const V: &str = "/v3.0.8";

/// §4.3 rows 1–5 and 13, per Host, with and without the version segment.
#[tokio::test]
async fn each_host_is_its_own_node_state_machine() {
    let t = mock().await;
    let (a, b) = ("ml-0000.genesis.test:8080", "ml-0001.genesis.test:8080");
    assert_eq!(
        t.node(a, "GET", &format!("{V}/api/v1/state"), None)
            .await
            .json,
        json!({"state": "STOPPED"})
    );
    let h = t.node(a, "GET", "/health", None).await;
    assert_eq!((h.status, h.text.as_str()), (503, ""));
    let up = t
        .node(
            a,
            "POST",
            &format!("{V}/api/v1/inference/up"),
            Some(json!({"model": "m"})),
        )
        .await;
    assert_eq!((up.status, up.text.as_str()), (200, ""));
    assert_eq!(
        t.node(a, "GET", &format!("{V}/health"), None).await.status,
        200
    );
    assert_eq!(
        t.node(b, "GET", "/api/v1/state", None).await.json["state"],
        "STOPPED",
        "the other host is untouched"
    );
    let again = t.node(a, "POST", "/api/v1/inference/up", None).await;
    assert_eq!(
        (again.status, again.json),
        (400, json!({"error": "Invalid state for inference up"}))
    );
    assert_eq!(t.node(a, "POST", "/api/v1/stop", None).await.status, 200);
    assert_eq!(
        t.node(a, "GET", "/api/v1/state", None).await.json["state"],
        "STOPPED"
    );
    // train/start: plain only.
    assert_eq!(
        t.node(b, "POST", &format!("{V}/api/v1/train/start"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        t.node(b, "POST", "/api/v1/train/start", None).await.status,
        200
    );
    let again = t.node(b, "POST", "/api/v1/train/start", None).await;
    assert_eq!(
        again.json,
        json!({"error": "Invalid state for train start"})
    );
    assert_eq!(
        t.node(b, "GET", "/api/v1/pow/status", None).await.json,
        json!({"status": "POW_STOPPED", "is_model_initialized": false})
    );
    // No Host header: "localhost". Unknown path: an empty 404.
    let nf = t.get("/api/v1/models/list").await;
    assert_eq!((nf.status, nf.text.as_str()), (404, ""));
    assert_eq!(t.get("/v1/models").await.status, 404);
    assert_eq!(t.get("/a/b/api/v1/state").await.status, 404);
}

/// §4.3 rows 6–9 and §4.5: weights per host (else any host, else 10), one process-wide
/// nonce counter, exactly one webhook per init with real, decodable vectors.
#[tokio::test]
async fn poc_generation_sends_w_real_artifacts_per_host() {
    let t = mock().await;
    let d = dapi().await;
    let (a, b, c) = (
        "ml-0001.join1.test:8080",
        "ml-0002.join1.test:8080",
        "ml-0003.join1.test:8080",
    );
    t.control(
        "/api/v1/responses/poc",
        json!({"weight": 5, "host_name": a}),
    )
    .await;
    let r = t
        .control(
            "/api/v1/responses/poc",
            json!({"weight": 0, "host_name": b}),
        )
        .await;
    assert_eq!(
        r.json,
        json!({"status": "success", "message": "POC response set successfully", "weight": 0, "scenarioName": "ModelState"})
    );
    // Confirmation PoC starts from INFERENCE: any state is fine.
    t.node(a, "POST", "/api/v1/inference/up", None).await;
    let r = t
        .node(
            a,
            "POST",
            &format!("{V}/api/v1/inference/pow/init/generate"),
            Some(init(&d.url, 3)),
        )
        .await;
    assert_eq!(
        r.json,
        json!({"status": "OK", "backends": 1, "n_groups": 1})
    );
    let r = t
        .node(
            a,
            "POST",
            &format!("{V}/api/v1/inference/pow/init/generate"),
            Some(init(&d.url, 3)),
        )
        .await;
    assert_eq!(r.json["message"], "Already generating");
    assert_eq!(
        t.node(a, "GET", &format!("{V}/api/v1/inference/pow/status"), None)
            .await
            .json,
        json!({"status": "GENERATING", "backends": [{"port": 5001, "status": "GENERATING"}]})
    );
    assert_eq!(
        t.node(a, "GET", "/api/v1/state", None).await.json["state"],
        "POW"
    );
    t.node(
        b,
        "POST",
        "/api/v1/inference/pow/init/generate",
        Some(init(&d.url, 4)),
    )
    .await;
    t.node(
        c,
        "POST",
        "/api/v1/inference/pow/init/generate",
        Some(init(&d.url, 5)),
    )
    .await;
    // No url: nothing is sent, the route still answers.
    let r = t
        .node(
            "ml-9.test:8080",
            "POST",
            "/api/v1/inference/pow/init/generate",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200);
    let got = d.wait(3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        d.got.lock().unwrap().len(),
        3,
        "one webhook per init, none for a repeat"
    );
    let mut by_node: Vec<(i64, Vec<i64>)> = got
        .iter()
        .map(|(what, v)| {
            assert_eq!(what, "generated");
            assert_eq!(
                v["encoding"],
                json!({"dtype": "f16", "k_dim": 12, "endian": "le"})
            );
            assert_eq!(
                (v["block_hash"].as_str(), v["block_height"].as_i64()),
                (Some("BLOCK"), Some(7))
            );
            for art in v["artifacts"].as_array().unwrap() {
                let vec = mlnode_protocol::Vector::decode(art["vector_b64"].as_str().unwrap(), 12)
                    .unwrap();
                assert!((vec.norm() - 1.0).abs() < 0.01, "a real unit vector");
            }
            (
                v["node_id"].as_i64().unwrap(),
                v["artifacts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["nonce"].as_i64().unwrap())
                    .collect(),
            )
        })
        .collect();
    by_node.sort();
    assert_eq!(by_node[0].0, 3);
    assert_eq!(by_node[0].1.len(), 5, "host a's weight");
    assert_eq!(by_node[1].1.len(), 0, "weight 0: an empty list");
    assert_eq!(by_node[2].1.len(), 10, "the default");
    let mut all: Vec<i64> = by_node.iter().flat_map(|(_, n)| n.clone()).collect();
    all.sort();
    assert_eq!(
        all,
        (1..=15).collect::<Vec<_>>(),
        "consecutive from 1, process-wide"
    );
    // pow/stop.
    let r = t
        .node(
            a,
            "POST",
            &format!("{V}/api/v1/inference/pow/stop"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        r.json,
        json!({"status": "OK", "results": [{"port": 5001, "status": "stopped"}], "errors": null})
    );
    // The counter is settable (PoCOffChainTests' porosity case) and survives reset.
    let r = t
        .control(
            "/api/v1/responses/poc/nonce",
            json!({"nonce": 1_000_000_000}),
        )
        .await;
    assert_eq!(r.json["message"], "PoC nonce counter set to 1000000000");
    t.control("/api/v1/responses/reset", json!({})).await;
    t.node(
        a,
        "POST",
        "/api/v1/inference/pow/init/generate",
        Some(init(&d.url, 3)),
    )
    .await;
    let got = d.wait(4).await;
    assert_eq!(got[3].1["artifacts"][0]["nonce"], 1_000_000_000);
    assert_eq!(
        got[3].1["artifacts"].as_array().unwrap().len(),
        10,
        "reset cleared the weights"
    );
}

/// §4.3 row 7 and §4.5 validation: the verdict is real — honest artifacts pass, a host
/// made fraudulent is caught — and kept per host.
#[tokio::test]
async fn validation_is_real_and_a_fraudulent_host_is_caught() {
    let t = mock().await;
    let d = dapi().await;
    let (honest, cheater, validator) = (
        "ml-0001.genesis.test:8080",
        "ml-0001.join2.test:8080",
        "ml-0000.join1.test:8080",
    );
    let r = t
        .control(
            "/api/v1/responses/poc/fraud",
            json!({"host_name": cheater, "profile": "fraud-forged"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["profile"].as_str()),
        (200, Some("fraud-forged"))
    );
    for (host, id) in [(honest, 0), (cheater, 1)] {
        let mut body = init(&d.url, id);
        body["public_key"] = json!(format!("pk-{id}"));
        t.node(
            host,
            "POST",
            "/api/v1/inference/pow/init/generate",
            Some(body),
        )
        .await;
    }
    let got = d.wait(2).await;
    for (_, batch) in &got {
        let nonces: Vec<i64> = batch["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["nonce"].as_i64().unwrap())
            .collect();
        let req = json!({"block_hash": "BLOCK", "block_height": 7, "public_key": batch["public_key"],
            "node_id": batch["node_id"], "node_count": 2, "nonces": nonces,
            "params": {"model": "Qwen/Qwen2.5-7B-Instruct", "seq_len": 256},
            "validation": {"artifacts": batch["artifacts"]},
            "stat_test": {"dist_threshold": 0.02, "p_mismatch": 0.001, "p_value_threshold": 0.01},
            "url": d.url});
        let r = t
            .node(
                validator,
                "POST",
                &format!("{V}/api/v1/inference/pow/generate"),
                Some(req),
            )
            .await;
        assert_eq!(
            r.json,
            json!({"status": "completed", "request_id": "mock-validation-request-id"})
        );
    }
    assert_eq!(
        t.node(validator, "GET", "/api/v1/inference/pow/status", None)
            .await
            .json["status"],
        "IDLE",
        "VALIDATING reads as IDLE"
    );
    let got = d.wait(4).await;
    let verdicts: Vec<&Value> = got
        .iter()
        .filter(|(w, _)| w == "validated")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(verdicts.len(), 2);
    let of = |pk: &str| {
        verdicts
            .iter()
            .find(|v| v["public_key"] == pk)
            .copied()
            .unwrap()
            .clone()
    };
    let h = of("pk-0");
    assert_eq!(
        (
            h["n_total"].as_u64(),
            h["n_mismatch"].as_u64(),
            h["fraud_detected"].as_bool()
        ),
        (Some(10), Some(0), Some(false))
    );
    let c = of("pk-1");
    assert_eq!(
        (c["n_mismatch"].as_u64(), c["fraud_detected"].as_bool()),
        (Some(10), Some(true)),
        "{c}"
    );
    assert_eq!(
        (c["block_height"].as_i64(), c["node_id"].as_i64()),
        (Some(7), Some(1))
    );
    let kept = t
        .get(&format!(
            "/api/v1/responses/poc/validations?host_name={validator}"
        ))
        .await;
    assert_eq!(kept.json["validations"].as_array().unwrap().len(), 2);
    // Bad fraud bodies: the incumbent's 400 shape.
    for bad in [
        json!({"host_name": cheater, "profile": "honest"}),
        json!({"host_name": cheater, "profile": "no-such"}),
        json!({"profile": "fraud-int4"}),
        json!({"host_name": cheater, "mismatch": [{"model": "forged", "fraction": 3.0}]}),
    ] {
        let r = t.control("/api/v1/responses/poc/fraud", bad.clone()).await;
        assert_eq!(
            (r.status, r.json["status"].as_str()),
            (400, Some("error")),
            "{bad}"
        );
        assert!(r.json["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to set fraud profile"));
    }
}

/// §4.4: configs by exact path + model + Host with the fallback, sticky; verbatim bodies;
/// errors with defaults; the default response; the last request on arrival.
#[tokio::test]
async fn chat_configs_by_versioned_path_model_and_host() {
    let t = mock().await;
    let host = "ml-0001.genesis.test:8080";
    let chat = |path: &str, model: &str| {
        let path = path.to_owned();
        let body =
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "seed": 7});
        (path, body)
    };
    // The default response before any config.
    let (p, b) = chat("/v1/chat/completions", "x");
    let r = t.node(host, "POST", &p, Some(b)).await;
    assert_eq!(
        r.json["choices"][0]["message"]["content"],
        "This is a default response from the mock server."
    );
    assert_eq!(r.json["model"], "mock-model");
    // UpgradeTests: one text per segment; the exact versioned path decides.
    for seg in ["", "v3.0.8", "v3.0.9", "/v3.0.10/"] {
        let r = t
            .control(
                "/api/v1/responses/inference",
                json!({"response": format!("text for '{seg}'"), "segment": seg}),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json["message"], "Inference response set successfully");
    }
    assert_eq!(
        t.control(
            "/api/v1/responses/inference",
            json!({"response": "r", "segment": "v3.0.9"})
        )
        .await
        .json["endpoint"],
        "/v3.0.9/v1/chat/completions"
    );
    t.control(
        "/api/v1/responses/inference",
        json!({"response": "text for 'v3.0.9'", "segment": "v3.0.9"}),
    )
    .await;
    for (path, want) in [
        ("/v1/chat/completions", "text for ''"),
        ("/v3.0.8/v1/chat/completions", "text for 'v3.0.8'"),
        ("/v3.0.9/v1/chat/completions", "text for 'v3.0.9'"),
        ("/v3.0.10/v1/chat/completions", "text for '/v3.0.10/'"),
    ] {
        let r = t
            .node(host, "POST", path, Some(json!({"model": "m"})))
            .await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (200, want),
            "{path}: verbatim, even not JSON"
        );
    }
    // MultiModelTests: per model and host, falling back to the path's any-model config.
    t.control("/api/v1/responses/inference", json!({"response": "{\"m\":\"A\"}", "segment": "v3.0.8", "model": "model-a", "host_name": host}))
        .await;
    t.control(
        "/api/v1/responses/inference",
        json!({"response": "{\"m\":\"B\"}", "segment": "v3.0.8", "model": "model-b"}),
    )
    .await;
    let ask = |h: &'static str, model: &'static str| {
        let t = &t;
        async move {
            t.node(
                h,
                "POST",
                "/v3.0.8/v1/chat/completions",
                Some(json!({"model": model})),
            )
            .await
            .text
        }
    };
    assert_eq!(ask(host, "model-a").await, "{\"m\":\"A\"}");
    assert_eq!(ask("other:8080", "model-a").await, "text for 'v3.0.8'");
    assert_eq!(ask("other:8080", "model-b").await, "{\"m\":\"B\"}");
    // InferenceRetryTests / ValidationTests: an error config for one host.
    let r = t
        .control(
            "/api/v1/responses/inference/error",
            json!({"status_code": 500, "segment": "v3.0.8", "host_name": "bad:8080"}),
        )
        .await;
    assert_eq!(r.json["statusCode"], 500);
    let r = t
        .node(
            "bad:8080",
            "POST",
            "/v3.0.8/v1/chat/completions",
            Some(json!({"model": "m", "stream": true})),
        )
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json,
        json!({"error": {"message": "Internal Server Error", "type": "server_error", "code": 500}})
    );
    t.control("/api/v1/responses/inference/error", json!({"status_code": 429, "error_message": "slow down", "segment": "v3.0.8", "host_name": "bad:8080"}))
        .await;
    let r = t
        .node(
            "bad:8080",
            "POST",
            "/v3.0.8/v1/chat/completions",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        r.json,
        json!({"error": {"message": "slow down", "type": "invalid_request_error", "code": 429}})
    );
    // The last request: the raw body; 404 shape before any.
    let last = t.get("/api/v1/responses/last-inference-request").await;
    assert_eq!(last.json["request"], "{}");
    t.control("/api/v1/responses/reset", json!({})).await;
    let r = t
        .node(
            host,
            "POST",
            "/v3.0.8/v1/chat/completions",
            Some(json!({"model": "model-a"})),
        )
        .await;
    assert_eq!(r.json["model"], "mock-model", "reset cleared every config");
    // Bad control bodies: 400 with the incumbent's message.
    let r = t
        .control("/api/v1/responses/inference", json!({"delay": 1}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .starts_with("Failed to set inference response: missing field `response`"));
    let r = t
        .control(
            "/api/v1/responses/inference/error",
            json!({"status_code": "x"}),
        )
        .await;
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .starts_with("Failed to set inference error response"));
    let r = t
        .control("/api/v1/responses/poc", json!({"host_name": "h"}))
        .await;
    assert_eq!((r.status, r.json["status"].as_str()), (400, Some("error")));
    let r = t.control("/api/v1/responses/poc/nonce", json!({})).await;
    assert_eq!(r.status, 400);
    // The control API is unprefixed only.
    let r = t.control("/v3.0.8/api/v1/responses/reset", json!({})).await;
    assert_eq!(r.status, 404);
    // GET stubs.
    assert_eq!(
        t.get("/api/v1/responses/poc").await.json,
        json!({"status": "success", "message": "POC responses retrieved successfully"})
    );
    assert_eq!(
        t.get("/api/v1/responses/inference").await.json["message"],
        "Inference responses retrieved successfully"
    );
}

/// InferenceAccountingTests: the request is recorded on arrival, before the delay.
#[tokio::test]
async fn the_last_request_is_recorded_before_the_delay() {
    let t = mock_with(MockOptions::default()).await; // real time: a 20 s delay really waits
    assert_eq!(
        t.get("/api/v1/responses/last-inference-request").await.json,
        json!({"status": "error", "message": "No inference request has been made yet"})
    );
    t.control(
        "/api/v1/responses/inference",
        json!({"response": "{}", "delay": 20000}),
    )
    .await;
    let base = t.base.clone();
    let slow = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/v1/chat/completions"))
            .body(r#"{"model":"m","seed":424242,"max_tokens":17}"#)
            .timeout(Duration::from_secs(1))
            .send()
            .await
    });
    let mut seen = Value::Null;
    for _ in 0..100 {
        let r = t.get("/api/v1/responses/last-inference-request").await;
        if r.status == 200 {
            seen = serde_json::from_str(r.json["request"].as_str().unwrap()).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen["seed"], 424242);
    assert_eq!(seen["max_tokens"], 17);
    assert!(
        slow.await.unwrap().is_err(),
        "the answer is still being delayed"
    );
}

/// StreamingInferenceTests: SSE split on logprobs, `stream_delay` between events.
#[tokio::test]
async fn streaming_splits_on_logprobs() {
    let t = mock().await;
    let entries: Vec<Value> = ["Hel", "lo", "!"]
        .iter()
        .map(|tok| json!({"token": tok, "logprob": -0.5, "bytes": [1], "top_logprobs": []}))
        .collect();
    let resp = json!({"id": "r1", "object": "chat.completion", "created": 5, "model": "m",
        "choices": [{"index": 0, "message": {"content": "Hello!", "role": "assistant"}, "finish_reason": "stop",
            "logprobs": {"content": entries}}],
        "usage": {"completion_tokens": 3, "prompt_tokens": 2, "total_tokens": 5}});
    t.control(
        "/api/v1/responses/inference",
        json!({"response": resp.to_string(), "stream_delay": 1000}),
    )
    .await;
    let t0 = std::time::Instant::now();
    let r = t
        .http
        .post(format!("{}/v1/chat/completions", t.base))
        .body(r#"{"model":"m","stream":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(20),
        "two 10 ms stream delays at 100x"
    );
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap())
        .collect();
    assert_eq!(events.len(), 4);
    let tokens: Vec<Value> = events[..3]
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e).unwrap()["choices"][0]["delta"]["content"].clone()
        })
        .collect();
    assert_eq!(tokens, vec![json!("Hel"), json!("lo"), json!("!")]);
    assert_eq!(events[3], "[DONE]");
    // A configured body that is not JSON, streamed: an error event, then [DONE].
    t.control(
        "/api/v1/responses/inference",
        json!({"response": "This is invalid json!!!"}),
    )
    .await;
    let text = t
        .http
        .post(format!("{}/v1/chat/completions", t.base))
        .body(r#"{"stream":true}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("data: {\"error\":"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

/// MultiNodeTests: 101 hosts on one mock, random weights, exact sums; the journal
/// answers "did a request hit the versioned path" per host.
#[tokio::test]
async fn a_hundred_and_one_hosts_and_the_request_journal() {
    let t = mock().await;
    let d = dapi().await;
    let mut want = std::collections::HashMap::new();
    for i in 0..=100 {
        let host = format!("ml-{i:04}.genesis.test:8080");
        let w = 1 + (i * 7) % 19;
        t.control(
            "/api/v1/responses/poc",
            json!({"weight": w, "host_name": host}),
        )
        .await;
        want.insert(i, w);
    }
    for i in 0..=100 {
        let host = format!("ml-{i:04}.genesis.test:8080");
        t.node(
            &host,
            "POST",
            "/v3.0.8/api/v1/inference/pow/init/generate",
            Some(init(&d.url, i)),
        )
        .await;
    }
    let got = d.wait(101).await;
    assert_eq!(got.len(), 101);
    let total: usize = got
        .iter()
        .map(|(_, v)| v["artifacts"].as_array().unwrap().len())
        .sum();
    assert_eq!(total as i64, want.values().sum::<i64>());
    for (_, v) in &got {
        let id = v["node_id"].as_i64().unwrap();
        assert_eq!(v["artifacts"].as_array().unwrap().len() as i64, want[&id]);
    }
    let r = t
        .get("/api/v1/responses/requests?host_name=ml-0042.genesis.test:8080&path=/v3.0.8/")
        .await;
    assert_eq!(r.json["count"], 1);
    assert_eq!(r.json["requests"][0]["version"], "v3.0.8");
    assert_eq!(
        r.json["requests"][0]["path"],
        "/v3.0.8/api/v1/inference/pow/init/generate"
    );
    let r = t.get("/api/v1/responses/requests?path=/v3.0.9/").await;
    assert_eq!(r.json["count"], 0);
}

/// §4.3 rows 15–17, the host bound, faults per host.
#[tokio::test]
async fn tokenize_status_files_bounds_and_faults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inferenced.zip"), b"PK\x03\x04binary").unwrap();
    let t = mock_with(MockOptions {
        time_scale: 100.0,
        files_dir: Some(dir.path().to_path_buf()),
        max_hosts: 3,
        ..MockOptions::default()
    })
    .await;
    let h = "ml-0000.genesis.test:8080";
    for path in ["/tokenize", "/v3.0.8/tokenize"] {
        let r = t
            .node(
                h,
                "POST",
                path,
                Some(json!({"model": "Qwen/Qwen2.5-7B-Instruct", "prompt": "hello world"})),
            )
            .await;
        assert_eq!(r.json["count"], 2, "{path}");
        assert_eq!(r.json["max_model_len"], 32768);
        assert_eq!(r.json["tokens"].as_array().unwrap().len(), 2);
    }
    let r = t
        .node(h, "POST", "/tokenize", Some(json!({"prompt": "x"})))
        .await;
    assert_eq!(
        (r.status, r.json),
        (
            400,
            json!({"error": "Invalid request format or processing error"})
        )
    );
    let s = t.get("/status").await;
    assert_eq!(
        (s.json["status"].as_str(), s.json["version"].as_str()),
        (Some("ok"), Some("1.0.1"))
    );
    assert!(s.json["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    let f = t.get("/files/inferenced.zip?checksum=sha256:abc").await;
    assert_eq!(
        (f.status, f.text.as_bytes()),
        (200, &b"PK\x03\x04binary"[..])
    );
    assert_eq!(t.get("/files/missing.zip").await.status, 404);
    assert_eq!(t.get("/files/../etc/passwd").await.status, 404);
    // A fault for one host and path, twice.
    let r = t
        .control(
            "/api/v1/responses/fault",
            json!({"host_name": h, "path": "/api/v1/state", "status": 503, "times": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        t.node(h, "GET", "/v3.0.8/api/v1/state", None).await.status,
        503
    );
    assert_eq!(t.node(h, "GET", "/api/v1/state", None).await.status, 503);
    assert_eq!(t.node(h, "GET", "/api/v1/state", None).await.status, 200);
    // localhost (control calls never create hosts) + h + two more = past the bound of 3.
    t.node("b:1", "GET", "/api/v1/state", None).await;
    t.node("c:1", "GET", "/api/v1/state", None).await;
    let r = t.node("d:1", "GET", "/api/v1/state", None).await;
    assert_eq!(r.status, 503);
    assert!(
        r.json["error"].as_str().unwrap().contains("--max-hosts"),
        "{}",
        r.text
    );
    assert_eq!(
        t.node(h, "GET", "/api/v1/state", None).await.status,
        200,
        "known hosts still served"
    );
}

/// §4.3 rows 10–12, the legacy v1 routes: their state rules, fixed error texts and
/// webhooks (dead paths in the network node, kept as the incumbent has them).
#[tokio::test]
async fn legacy_v1_pow_routes() {
    let t = mock().await;
    let d = dapi().await;
    let h = "ml-0005.genesis.test:8080";
    let err =
        json!({"error": "Invalid state for validation. state = POW. powState = POW_GENERATING"});
    let r = t.node(h, "POST", "/api/v1/pow/init/validate", None).await;
    assert_eq!(
        (r.status, r.json),
        (400, err.clone()),
        "needs POW + GENERATING"
    );
    let r = t.node(h, "POST", "/api/v1/pow/validate", None).await;
    assert_eq!(
        (r.status, r.json),
        (400, json!({"error": "Invalid state for batch validation"}))
    );
    t.control(
        "/api/v1/responses/poc",
        json!({"weight": 3, "host_name": h}),
    )
    .await;
    let r = t
        .node(
            h,
            "POST",
            &format!("{V}/api/v1/pow/init/generate"),
            Some(json!({"url": d.url, "public_key": "pk", "block_hash": "B", "block_height": 2})),
        )
        .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    assert_eq!(
        t.node(h, "GET", "/api/v1/pow/status", None).await.json["status"],
        "POW_GENERATING"
    );
    let again = t.node(h, "POST", "/api/v1/pow/init/generate", None).await;
    assert_eq!(
        (again.status, again.json),
        (400, err),
        "requires STOPPED + POW_STOPPED"
    );
    let got = d.wait(1).await;
    assert_eq!(got[0].1["nonces"], json!([1, 2, 3]));
    assert_eq!(got[0].1["dist"].as_array().unwrap().len(), 3);
    assert_eq!(got[0].1["node_id"], 1, "v1 default node_id");
    assert_eq!(
        t.node(h, "POST", "/api/v1/pow/init/validate", None)
            .await
            .status,
        200
    );
    assert_eq!(
        t.node(h, "GET", "/api/v1/pow/status", None).await.json["status"],
        "POW_VALIDATING"
    );
    assert_eq!(
        t.node(
            h,
            "POST",
            "/api/v1/pow/validate",
            Some(json!({"nonces": [1]}))
        )
        .await
        .status,
        200
    );
}
