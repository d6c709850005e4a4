//! `mlnode-make-artifact`: the reference it bakes has make_artifact.py's key order and
//! validates PASS against the node it came from.

use mlnode_sim::config::NodeConfig;
use serde_json::Value;

use crate::util::*;

#[tokio::test]
async fn output_validates_pass_against_the_same_node() {
    let h = spawn_sim(NodeConfig {
        deployed_model: Some("Qwen/Qwen3-0.6B".into()),
        ..NodeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("refs").join("qwen-qwen3-0.6b.json");
    let res = run_bin(
        "mlnode-make-artifact",
        vec![
            "--mlnode-url".into(),
            h.uri(),
            "--model".into(),
            "Qwen/Qwen3-0.6B".into(),
            "--num-nonces".into(),
            "16".into(),
            "--seq-len".into(),
            "256".into(),
            "--additional-args".into(),
            r#"["--max-model-len","4096"]"#.into(),
            "--out".into(),
            out_path.display().to_string(),
        ],
    )
    .await;
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.ends_with("}\n"));
    let v: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "model",
            "seq_len",
            "k_dim",
            "block_hash",
            "block_height",
            "public_key",
            "node_id",
            "node_count",
            "dist_threshold",
            "collection_batch_size",
            "additional_args",
            "source",
            "generated_at",
            "encoding",
            "artifacts"
        ]
    );
    assert_eq!(v["collection_batch_size"], Value::Null);
    assert_eq!(v["artifacts"].as_array().unwrap().len(), 16);
    assert_eq!(
        v["encoding"],
        serde_json::json!({"dtype": "f16", "k_dim": 12, "endian": "le"})
    );
    let (out, text, _d) = validate(
        &h.uri(),
        "Qwen/Qwen3-0.6B",
        &[
            "--reference",
            out_path.to_str().unwrap(),
            "--skip-throughput",
        ],
    )
    .await;
    assert_eq!(out.exit_code, 0, "{text}");
    assert_eq!(out.verdict.headline(), "PASS");
    assert_eq!(
        report_json(&out)["deploy_config"]["additional_args"],
        serde_json::json!(["--max-model-len", "4096"])
    );

    // Errors: malformed --additional-args; a node that does not serve anything.
    let res = run_bin(
        "mlnode-make-artifact",
        strings(&[
            "--mlnode-url",
            &h.uri(),
            "--model",
            "m",
            "--additional-args",
            "[1,2]",
            "--out",
        ])
        .into_iter()
        .chain([dir.path().join("x.json").display().to_string()])
        .collect(),
    )
    .await;
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr)
        .contains("--additional-args must be a JSON list of strings"));
    let h2 = spawn_sim(NodeConfig::default()).await;
    let res = run_bin(
        "mlnode-make-artifact",
        strings(&["--mlnode-url", &h2.uri(), "--model", QWEN, "--out"])
            .into_iter()
            .chain([dir.path().join("y.json").display().to_string()])
            .collect(),
    )
    .await;
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("vLLM is not running"));
}

/// `--bake-from GOLDEN --node-config FILE`: the per-deployment reference of the skill —
/// golden vectors, params and stat test; the node entry's args; where they came from.
#[tokio::test]
async fn bake_from_a_golden_with_the_node_config_args() {
    let dir = tempfile::tempdir().unwrap();
    let golden = artifacts().join("qwen-qwen3-235b-a22b-instruct-2507-fp8.json");
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/deploy-join/node-config-qwen235B-B200.json");
    let out = dir.path().join("baked.json");
    let res = run_bin(
        "mlnode-make-artifact",
        vec![
            "--bake-from".into(),
            golden.display().to_string(),
            "--node-config".into(),
            cfg.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ],
    )
    .await;
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let baked = read_json(&out);
    let g = read_json(&golden);
    let node: Value = read_json(&cfg);
    let model = g["model"].as_str().unwrap();
    assert_eq!(baked["additional_args"], node[0]["models"][model]["args"]);
    assert_eq!(baked["artifacts"], g["artifacts"]);
    assert_eq!(baked["stat_test"], g["stat_test"]);
    assert!(baked["additional_args_source"]
        .as_str()
        .unwrap()
        .contains("node 'node1'"));
    // It is a valid reference, and the validator uses its args for the deploy.
    let (o, text, _d) = validate(
        "sim:honest",
        model,
        &["--reference", out.to_str().unwrap(), "--skip-throughput"],
    )
    .await;
    assert_eq!(o.exit_code, 0, "{text}");
    assert_eq!(
        report_json(&o)["deploy"]["additional_args"],
        node[0]["models"][model]["args"]
    );
}
