//! Many nodes in one process: independent state, per-node admin by id, the inventory in
//! node-config format, and idle nodes that need no timers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::util::*;

struct Fleet {
    child: Child,
    urls: Vec<String>,
    inventory: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_fleet(args: &[&str], n: usize) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlnode-sim"))
        .args([
            "--port",
            "0",
            "--admin",
            "--time-scale",
            "2000",
            "--inventory-out",
        ])
        .arg(&inventory)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let urls: Vec<String> = (0..n).map(|_| lines.next().unwrap().unwrap()).collect();
    // The inventory is written after the last listener is bound.
    for _ in 0..200 {
        if inventory.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Fleet {
        child,
        urls,
        inventory,
        _dir: dir,
    }
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Two nodes of one fleet share nothing: deploy on one, the other stays idle; fault one,
/// the other answers; the admin API reaches each by id; the inventory lists them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_independent_and_addressable_by_id() {
    let f = start_fleet(&["--nodes", "3", "--cached-model", QWEN], 3);
    let (a, b) = (&f.urls[0], &f.urls[1]);
    let (code, _) = post(
        &format!("{a}/api/v1/inference/up/async"),
        json!({"model": QWEN, "dtype": "auto"}),
    )
    .await;
    assert_eq!(code, 200);
    let st_a = get(&format!("{a}/api/v1/inference/up/status")).await;
    let st_b = get(&format!("{b}/api/v1/inference/up/status")).await;
    assert_ne!(st_a["status"], "not_started");
    assert_eq!(st_b["status"], "not_started", "the other node stays idle");
    // The fleet list, from any node.
    let list = get(&format!("{b}/sim/v1/nodes")).await;
    let ids: Vec<&str> = list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["node-01", "node-02", "node-03"]);
    let seeds: std::collections::HashSet<u64> = list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds.len(), 3, "every node its own seed");
    // A transport fault on node-02 through node-01's admin API: node-02 resets, node-01 answers.
    let (code, _) = post(
        &format!("{a}/sim/v1/nodes/node-02/faults"),
        json!({"path": "/health", "probability": 1.0, "kind": "reset"}),
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        reqwest::get(format!("{b}/health")).await.is_err(),
        "node-02 is faulted"
    );
    assert!(reqwest::get(format!("{a}/health"))
        .await
        .unwrap()
        .status()
        .is_success());
    let journal = get(&format!("{a}/sim/v1/nodes/node-03/journal")).await;
    assert!(journal["entries"].is_array());
    let (code, v) = post(&format!("{a}/sim/v1/nodes/nope/reset"), json!({})).await;
    assert_eq!(code, 404, "{v}");
    // The inventory round-trips through the validator's parser, one entry per node.
    let inv = mlnode_protocol::node_config::NodeConfig::parse(
        &std::fs::read_to_string(&f.inventory).unwrap(),
    )
    .unwrap();
    assert_eq!(inv.0.len(), 3);
    assert_eq!(inv.0[1].poc_url("http"), *b);
    assert!(inv.0[0].models.contains_key(QWEN));
}

/// A fleet file: groups with their scenarios, ids and seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_file_starts_its_groups() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fleets/mixed.toml");
    let f = start_fleet(&["--fleet", path.to_str().unwrap()], 10);
    let list = get(&format!("{}/sim/v1/nodes", f.urls[0])).await;
    let nodes = list["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 10);
    assert_eq!(nodes[6]["id"], "int4-01");
    // A no-backends node answers 503 where an honest one starts mining.
    let honest = &f.urls[0];
    let nob = &f.urls[8];
    let (code, _) = post(
        &format!("{nob}/api/v1/inference/pow/init/generate"),
        init_body(QWEN),
    )
    .await;
    assert_eq!(code, 503);
    let (code, _) = post(
        &format!("{honest}/api/v1/inference/pow/init/generate"),
        init_body(QWEN),
    )
    .await;
    assert_eq!(code, 200);
}

/// Idle costs nothing: a node with nothing to do unprompted needs no timer; mining with a
/// callback url does.
#[tokio::test]
async fn idle_nodes_need_no_timers() {
    let h = start(mlnode_sim::NodeConfig {
        deployed_model: Some(QWEN.into()),
        ..cfg()
    })
    .await;
    let node = h.sim.node();
    assert!(!node.needs_ticks(), "a deployed, idle node");
    let c = C::new(&h);
    let mut body = init_body(QWEN);
    body["url"] = json!("http://127.0.0.1:9/cb");
    let (code, _) = c.post("/api/v1/inference/pow/init/generate", body).await;
    assert_eq!(code, 200);
    assert!(node.needs_ticks(), "mining with callbacks to deliver");
    let (code, _) = c.post("/api/v1/inference/pow/stop", json!({})).await;
    assert_eq!(code, 200);
    assert!(!node.needs_ticks());
}

/// A deploy runs at the shipped profile of its model and GPUs per instance (the generic
/// one stays for unknown models); each real reference's own deploy args pick its profile.
#[test]
fn the_profile_follows_the_model_and_its_tensor_parallel_size() {
    let node = mlnode_sim::build_node(cfg(), None).unwrap();
    let arts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(arts).unwrap() {
        let r = mlnode_protocol::Reference::load(&e.unwrap().path()).unwrap();
        let args = r.additional_args.clone().unwrap_or_default();
        let p = node.profile_for(&r.model, &args);
        seen.push(format!(
            "{} {:?} -> {}",
            r.model,
            args.iter()
                .skip_while(|a| *a != "--tensor-parallel-size")
                .nth(1),
            p.name
        ));
        if p.name != "generic" {
            assert_eq!(p.model.as_deref(), Some(r.model.as_str()));
        }
    }
    seen.sort();
    let s: String = seen.join("\n");
    assert!(s.contains("Qwen/Qwen3-32B-FP8 None -> generic"), "{s}");
    // Qwen3-235B: tp 2 (the DeepGEMM recording, 4×B200) → the 2-GPU B200 profile.
    assert!(
        s.contains("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8 Some(\"2\") -> qwen235b-fp8-2xb200"),
        "{s}"
    );
    let tp2 = vec!["--tensor-parallel-size".to_string(), "2".into()];
    assert_eq!(node.profile_for("Nobody/Unknown", &tp2).name, "generic");
    // An explicitly chosen profile wins.
    let fixed = mlnode_sim::build_node(
        mlnode_sim::NodeConfig {
            profile: "qwen235b-fp8-4xh100".into(),
            ..cfg()
        },
        None,
    )
    .unwrap();
    assert_eq!(
        fixed
            .profile_for("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8", &tp2)
            .name,
        "qwen235b-fp8-4xh100"
    );
}

/// Qwen3-235B tp=2 on 4 GPUs: 2 replicas at the B200 profile; the DeepGEMM recording (tp 2)
/// is served first, so it validates clean, where the default (tp 4) one meets the other
/// hardware class's numerics.
#[tokio::test]
async fn the_node_serves_the_recording_of_its_deploy() {
    let model = "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8";
    let arts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    let node = mlnode_sim::build_node(
        mlnode_sim::NodeConfig {
            gpus: Some(4),
            cached_models: vec![model.into()],
            ..cfg()
        },
        Some(&arts),
    )
    .unwrap();
    let h = mlnode_sim::spawn(node.clone()).await.unwrap();
    let c = C::new(&h);
    c.download_and_deploy(
        model,
        json!(["--tensor-parallel-size", "2", "--max-model-len", "240000"]),
    )
    .await;
    let st = c.get("/api/v1/inference/pow/status").await.1;
    assert_eq!(st["backends"].as_array().unwrap().len(), 2, "4 GPUs / tp 2");
    let served = node.served_references(model);
    let round = served
        .iter()
        .find(|r| r.block_hash == "TEST_BLOCK" && r.seq_len == 1024)
        .expect("the TEST_BLOCK round is served");
    assert_eq!(
        round.serves, "qwen-qwen3-235b-a22b-instruct-2507-fp8-deepgemm.json",
        "{served:?}"
    );
    assert!(
        !round.fallbacks.is_empty(),
        "the other recordings back it up"
    );
}

/// `--inference-port`: every node of a fleet gets its own inference listener, written to
/// the inventory as `inference_port`, and serving the compat proxy there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_nodes_get_their_own_inference_ports() {
    let f = start_fleet(
        &[
            "--nodes",
            "2",
            "--inference-port",
            "0",
            "--deployed-model",
            QWEN,
        ],
        2,
    );
    let inv = mlnode_protocol::node_config::NodeConfig::parse(
        &std::fs::read_to_string(&f.inventory).unwrap(),
    )
    .unwrap();
    assert_eq!(inv.0.len(), 2);
    let mut ports = std::collections::BTreeSet::new();
    for (e, url) in inv.0.iter().zip(&f.urls) {
        assert_eq!(e.poc_url("http"), *url);
        assert_ne!(e.inference_port, e.poc_port);
        ports.insert(e.inference_port);
        let models = get(&format!("http://{}:{}/v1/models", e.host, e.inference_port)).await;
        assert_eq!(models["data"][0]["id"], QWEN);
    }
    assert_eq!(ports.len(), 2, "one inference port per node");
    let list = get(&format!("{}/sim/v1/nodes", f.urls[0])).await;
    assert!(list["nodes"][1]["inference_url"]
        .as_str()
        .is_some_and(|u| u.ends_with(&inv.0[1].inference_port.to_string())));
}

/// A fleet on one listener, keyed by the `Host` header (as the network's test mock keys
/// its nodes): each node its own state and journal; an unknown host is a 404 naming ids.
#[tokio::test]
async fn a_fleet_on_one_listener_keyed_by_host() {
    use std::collections::HashMap;
    let mut nodes = HashMap::new();
    for (id, deployed) in [("node-a", true), ("node-b", false)] {
        let cfg = mlnode_sim::NodeConfig {
            deployed_model: deployed.then(|| QWEN.to_owned()),
            ..cfg()
        };
        let sim = mlnode_sim::Sim::new(
            mlnode_sim::build_node(cfg, None).unwrap(),
            mlnode_sim::SimOptions::default(),
        );
        nodes.insert(id.to_owned(), sim);
    }
    let a = nodes["node-a"].clone();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mlnode_sim::serve::serve_by_host(
        l,
        nodes,
        mlnode_sim::ServeLimits::default(),
        async {
            let _ = rx.await;
        },
    ));
    let http = reqwest::Client::new();
    let state = |host: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http
                .get(format!("{url}/v3.0.8/api/v1/state"))
                .header("host", format!("{host}:8080"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(state("node-a").await.1["state"], "INFERENCE");
    assert_eq!(state("node-b").await.1["state"], "STOPPED");
    let (code, v) = state("node-z").await;
    assert_eq!(code, 404);
    let d = v["detail"].as_str().unwrap();
    assert!(d.contains("node-z") && d.contains("node-a"), "{d}");
    assert_eq!(a.journal.tail(10).len(), 1, "only node-a's own request");
    drop(tx);
}
