//! Record a validator run of each verdict through `mlnode-sim record`'s proxy in front of
//! a simulated node, replay the session, and the validator reaches the same verdict, exit
//! code and validation report — without the node.

use mlnode_sim::session::{load, record_app, replay_app, Recorder, Replayer};
use serde_json::Value;

use crate::util::*;

/// Serve `app` on 127.0.0.1:0 in the background; the URL and a stop switch.
async fn serve(app: axum::Router) -> (String, tokio::sync::oneshot::Sender<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mlnode_sim::serve_router(
        l,
        app,
        mlnode_sim::ServeLimits::default(),
        async {
            let _ = rx.await;
        },
    ));
    (url, tx)
}

fn essentials(report: &Value) -> Value {
    serde_json::json!({
        "verdict": report["verdict"],
        "exit_code": report["exit_code"],
        "failed_phase": report["failed_phase"],
        "error": report["error"],
        "validation": report["validation"],
        "deploy_ok": report["deploy"].is_object(),
        "throughput_ok": report["throughput"].is_object(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_replays_to_the_same_verdict() {
    for (scenario, model) in [
        ("honest", QWEN),
        ("fraud-int4", "MiniMaxAI/MiniMax-M2.7"),
        ("deploy-oom", QWEN),
    ] {
        let node = spawn_sim(mlnode_sim::fixtures::load_scenario(scenario).unwrap().node).await;
        let rec_dir = tempfile::tempdir().unwrap();
        let rec = Recorder::new(&node.uri(), rec_dir.path()).unwrap();
        let (proxy, stop) = serve(record_app(rec)).await;
        let (first, _, _d1) = validate(&proxy, model, &[]).await;
        let _ = stop.send(());
        node.shutdown().await;

        let session = load(rec_dir.path()).unwrap();
        assert!(session.len() > 3, "{scenario}: {} exchanges", session.len());
        assert!(
            session.windows(2).all(|w| w[0].seq + 1 == w[1].seq),
            "ordered"
        );
        let (replayed, stop) =
            serve(replay_app(Replayer::new(session, SCALE.parse().unwrap()))).await;
        let (second, text, _d2) = validate(&replayed, model, &[]).await;
        let _ = stop.send(());

        assert_eq!(
            first.exit_code, second.exit_code,
            "{scenario}: exit code\n{text}"
        );
        assert_eq!(
            essentials(&report_json(&first)),
            essentials(&report_json(&second)),
            "{scenario}: the replay reaches the same report"
        );
    }
}

/// A request the recording never saw is a 501 naming it; secrets are not recorded.
#[tokio::test]
async fn unrecorded_requests_are_named_and_secrets_are_left_out() {
    let node = spawn_sim(deployed()).await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, stop) = serve(record_app(Recorder::new(&node.uri(), dir.path()).unwrap())).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{proxy}/api/v1/state"))
        .header("Authorization", "Bearer very-secret")
        .header("X-Admin-Token", "also-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = stop.send(());
    let text = std::fs::read_to_string(dir.path().join(mlnode_sim::session::SESSION_FILE)).unwrap();
    assert!(
        !text.contains("very-secret") && !text.contains("also-secret"),
        "{text}"
    );
    assert!(
        text.contains("authorization") && text.contains("x-admin-token"),
        "names kept: {text}"
    );

    let (replayed, stop) = serve(replay_app(Replayer::new(load(dir.path()).unwrap(), 1.0))).await;
    let ok = http
        .get(format!("{replayed}/api/v1/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let v: Value = ok.json().await.unwrap();
    assert_eq!(v["state"], "INFERENCE");
    let miss = http
        .get(format!("{replayed}/api/v1/versions"))
        .send()
        .await
        .unwrap();
    assert_eq!(miss.status(), 501);
    let v: Value = miss.json().await.unwrap();
    let d = v["detail"].as_str().unwrap();
    assert!(
        d.contains("GET /api/v1/versions") && d.contains("GET /api/v1/state"),
        "{d}"
    );
    let _ = stop.send(());
}
