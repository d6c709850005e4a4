//! Hostile clients: out-of-range parameters, slowloris, oversized headers, half-closed
//! connections, connection floods, admin abuse, fuzzed bodies. The node answers 4xx JSON,
//! bounds what it holds, and keeps every machinery running.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use mlnode_sim::config::NodeConfig;
use mlnode_sim::{ServeLimits, Sim, SimOptions};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::util::*;

async fn start_with(cfg: NodeConfig, options: SimOptions) -> mlnode_sim::SimHandle {
    let node = mlnode_sim::build_node(cfg, None).unwrap();
    mlnode_sim::spawn_sim(Sim::new(node, options))
        .await
        .unwrap()
}

fn limits(max_connections: usize, header_ms: u64) -> SimOptions {
    SimOptions {
        limits: Some(ServeLimits {
            max_connections,
            header_read_timeout: Duration::from_millis(header_ms),
            max_header_bytes: 16 * 1024,
            ..ServeLimits::default()
        }),
        ..SimOptions::default()
    }
}

fn raw(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Read until EOF (or the 5 s read timeout); the bytes read.
fn read_all(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn deployed_cfg() -> NodeConfig {
    NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..cfg()
    }
}

/// `k_dim` past the generator's width (it used to panic and kill the callback task) and
/// `seq_len` 0: 422 naming the field; afterwards queued jobs and callbacks still work.
#[tokio::test]
async fn out_of_range_params_are_422_and_the_node_stays_whole() {
    let h = start(deployed_cfg()).await;
    let c = C::new(&h);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = axum::Router::new().fallback(move |axum::Json(v): axum::Json<Value>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(v);
            "ok"
        }
    });
    let cb = receiver(app).await;
    for (field, params) in [
        ("k_dim", json!({"model": QWEN, "seq_len": 128, "k_dim": 65})),
        ("k_dim", json!({"model": QWEN, "seq_len": 128, "k_dim": 0})),
        ("seq_len", json!({"model": QWEN, "seq_len": 0, "k_dim": 12})),
    ] {
        for wait in [true, false] {
            let body = json!({"block_hash": "b", "block_height": 1, "public_key": "p", "node_id": 0,
                "node_count": 1, "nonces": [1, 2], "params": params, "wait": wait,
                "url": format!("http://{cb}/cb")});
            let (code, v) = c.post("/api/v1/inference/pow/generate", body).await;
            assert_eq!(code, 422, "{v}");
            assert_eq!(
                v["detail"][0]["loc"],
                json!(["body", "params", field]),
                "{v}"
            );
        }
        let mut init = init_body(QWEN);
        init["params"] = params.clone();
        init["url"] = json!(format!("http://{cb}/cb"));
        let (code, _) = c.post("/api/v1/inference/pow/init/generate", init).await;
        assert_eq!(code, 422);
    }
    // The node still queues, computes and calls back.
    let body = json!({"block_hash": "b", "block_height": 1, "public_key": "p", "node_id": 0,
        "node_count": 1, "nonces": [1, 2], "params": {"model": QWEN, "seq_len": 128}, "wait": false,
        "url": format!("http://{cb}/cb")});
    let (code, v) = c.post("/api/v1/inference/pow/generate", body).await;
    assert_eq!(code, 200, "{v}");
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    assert!(
        got.is_ok_and(|v| v.is_some()),
        "the job's callback still arrives"
    );
    let (code, v) = c.get("/health").await;
    assert_eq!((code, v["status"].as_str()), (200, Some("healthy")));
}

/// Slowloris: a client that never finishes its header is cut at the header timeout,
/// while others are served.
// Blocking socket I/O below: the server needs a worker of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_are_cut_at_the_timeout() {
    let h = start_with(cfg(), limits(64, 200)).await;
    let mut slow = raw(h.addr);
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let t0 = Instant::now();
    let (code, _) = C::new(&h).get("/health").await;
    assert_eq!(code, 200, "others are served meanwhile");
    let rest = read_all(slow);
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "cut after {:?}",
        t0.elapsed()
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains(" 200 "),
        "no answer to half a request"
    );
}

/// A header larger than the per-connection buffer is refused (431), not buffered.
// Blocking socket I/O below: the server needs a worker of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused() {
    let h = start_with(cfg(), limits(64, 2000)).await;
    let mut s = raw(h.addr);
    let big = "a".repeat(256 * 1024);
    let req = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let _ = s.write_all(req.as_bytes());
    let answer = String::from_utf8_lossy(&read_all(s)).to_string();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer:.80}"
    );
    let (code, _) = C::new(&h).get("/health").await;
    assert_eq!(code, 200);
}

/// HTTP/1.1: a client that shuts its write side right after a complete request still gets
/// the answer, on every kind of endpoint.
// Blocking socket I/O below: the server needs a worker of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_connections_get_their_answer() {
    let h = start(deployed_cfg()).await;
    for (method, path, body) in [
        ("GET", "/health", ""),
        ("GET", "/api/v1/inference/pow/status", ""),
        (
            "POST",
            "/api/v1/models/status",
            r#"{"hf_repo":"Qwen/Qwen3-32B-FP8","hf_commit":null}"#,
        ),
    ] {
        let mut s = raw(h.addr);
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let answer = String::from_utf8_lossy(&read_all(s)).to_string();
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer:.120}");
    }
}

/// At the connection cap, new clients wait (in the backlog, not in memory) and are served
/// once a connection closes.
// Blocking socket I/O below: the server needs a worker of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_and_releases() {
    let h = start_with(cfg(), limits(4, 5000)).await;
    let held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = raw(h.addr);
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            s
        })
        .collect();
    let c = C::new(&h);
    let waiting = tokio::time::timeout(Duration::from_millis(300), c.get("/health")).await;
    assert!(
        waiting.is_err(),
        "a 5th connection is not served while 4 are held"
    );
    drop(held);
    let served = tokio::time::timeout(Duration::from_secs(5), c.get("/health")).await;
    assert_eq!(served.map(|r| r.0).ok(), Some(200));
}

/// Admin abuse: only shipped scenario names load (no file is opened, nothing echoed);
/// bad indexes and limits are JSON 422s; out-of-range numbers are named.
#[tokio::test]
async fn admin_abuse_is_refused_as_json() {
    let h = start_with(
        cfg(),
        SimOptions {
            admin: true,
            ..SimOptions::default()
        },
    )
    .await;
    let c = C::new(&h);
    for name in [
        "/etc/passwd",
        "/dev/zero",
        "../fixtures/scenarios/honest.toml",
    ] {
        let t0 = Instant::now();
        let (code, v) = c.post("/sim/v1/scenario", json!({"name": name})).await;
        assert_eq!(code, 400, "{v}");
        let d = v["detail"].as_str().unwrap();
        assert!(
            d.contains("unknown scenario") && !d.contains("root:"),
            "{d}"
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
    let (code, v) = c
        .post(
            "/sim/v1/scenario",
            json!({"name": "honest", "time_scale": 1e308}),
        )
        .await;
    assert_eq!(code, 400);
    assert!(v["detail"].as_str().unwrap().contains("time_scale"), "{v}");
    let (code, v) = c
        .post("/sim/v1/replicas/abc/health", json!({"healthy": false}))
        .await;
    assert_eq!(code, 422);
    assert!(v["detail"].is_string(), "{v}");
    let (code, v) = c.get("/sim/v1/journal?limit=-1").await;
    assert_eq!(code, 422);
    assert!(v["detail"].is_string(), "{v}");
    let (code, _) = c
        .post("/sim/v1/replicas/0/fault", json!({"rate": 1e308}))
        .await;
    assert_eq!(code, 422);
}

/// `--admin` reachable off loopback without a token refuses to start.
#[test]
fn admin_off_loopback_needs_a_token() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlnode-sim"))
        .args(["--host", "0.0.0.0", "--port", "0", "--admin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("--admin-token") && e.contains("--admin-insecure"),
        "{e}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlnode-sim"))
        .args(["--port", "0", "--time-scale", "1e308"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("time_scale"));
}

/// Bodies built from the wire types, then mutated (keys dropped, values retyped, numbers
/// pushed past their ranges): every answer is a 2xx or a 4xx with a JSON `detail`.
mod fuzz {
    use super::*;

    fn valid_generate(nonces: Vec<i64>, k_dim: u32, batch: Option<u32>, wait: bool) -> Value {
        let mut v = json!({"block_hash": "h", "block_height": 1, "public_key": "p", "node_id": 0, "node_count": 1,
            "nonces": nonces, "params": {"model": QWEN, "seq_len": 64, "k_dim": k_dim}, "wait": wait});
        if let Some(b) = batch {
            v["batch_size"] = json!(b);
        }
        v
    }

    fn weird() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            Just(json!(-1)),
            Just(json!(u64::MAX)),
            Just(json!(1e308)),
            Just(json!(-1e308)),
            Just(json!("")),
            Just(json!("x".repeat(300))),
            Just(json!([])),
            Just(json!({})),
            Just(json!(true)),
            any::<i64>().prop_map(|x| json!(x)),
        ]
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Drop(String),
        Set(Vec<String>, Value),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let keys = prop::sample::select(vec![
            "block_hash",
            "block_height",
            "public_key",
            "node_id",
            "node_count",
            "nonces",
            "params",
            "batch_size",
            "wait",
            "url",
            "validation",
            "stat_test",
        ]);
        let nested = prop::sample::select(vec![
            vec!["params", "k_dim"],
            vec!["params", "seq_len"],
            vec!["params", "model"],
            vec!["stat_test", "p_mismatch"],
            vec!["stat_test", "dist_threshold"],
            vec!["validation", "artifacts"],
            vec!["nonces"],
            vec!["batch_size"],
            vec!["node_count"],
        ]);
        prop_oneof![
            keys.prop_map(|k| Mutation::Drop(k.to_string())),
            (nested, weird())
                .prop_map(|(p, v)| Mutation::Set(p.iter().map(|s| s.to_string()).collect(), v)),
        ]
    }

    fn apply(mut v: Value, m: &Mutation) -> Value {
        match m {
            Mutation::Drop(k) => {
                v.as_object_mut().map(|o| o.remove(k));
            }
            Mutation::Set(path, x) => {
                let mut cur = &mut v;
                for (i, k) in path.iter().enumerate() {
                    if !cur.is_object() {
                        *cur = json!({});
                    }
                    if i + 1 == path.len() {
                        cur[k.as_str()] = x.clone();
                    } else {
                        cur = &mut cur[k.as_str()];
                    }
                }
            }
        }
        v
    }

    const PATHS: &[&str] = &[
        "/api/v1/inference/pow/generate",
        "/api/v1/inference/pow/init/generate",
        "/api/v1/models/status",
        "/api/v1/models/download",
        "/api/v1/inference/up/async",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]
        #[test]
        fn mutated_wire_bodies_get_4xx_json_never_5xx(
            nonces in prop::collection::vec(-5i64..50, 0..8),
            k_dim in 1u32..80,
            batch in prop::option::of(0u32..100),
            wait in any::<bool>(),
            muts in prop::collection::vec(mutation(), 0..4),
            path in prop::sample::select(PATHS),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let node = mlnode_sim::build_node(deployed_cfg(), None).unwrap();
                let app = mlnode_sim::app(node.clone());
                let mut body = valid_generate(nonces, k_dim, batch, wait);
                for m in &muts {
                    body = apply(body, m);
                }
                let req = Request::builder().method(Method::POST).uri(path)
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string())).unwrap();
                let resp = tokio::time::timeout(Duration::from_secs(20), app.oneshot(req)).await
                    .expect("answers in bounded time").unwrap();
                let code = resp.status().as_u16();
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
                prop_assert!(code < 500 || code == 502 || code == 503, "{path} {body} -> {code} {}", String::from_utf8_lossy(&bytes));
                if code >= 400 {
                    let v: Value = serde_json::from_slice(&bytes).expect("error bodies are JSON");
                    prop_assert!(v.get("detail").is_some(), "{v}");
                }
                prop_assert!(node.internal_error().is_none(), "no panic was caught");
                Ok(())
            })?;
        }
    }
}
