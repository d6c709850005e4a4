//! A hostile node: a test server per test (port 0) that answers the first phases like a
//! healthy node and then plays one bad answer. The validator must exit 1 naming the
//! inconsistency — the node's answer is evidence, not truth — and still write its reports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::util::*;

/// A canned answer.
type Answer = fn() -> Response;

/// What the hostile node answers.
#[derive(Clone)]
struct Play {
    /// `/pow/status` body.
    pow_status: Value,
    /// `/pow/generate` answer.
    generate: Answer,
    /// Wall milliseconds before `/pow/generate` answers.
    delay_ms: u64,
    hits: Arc<AtomicUsize>,
}

fn honest_status() -> Value {
    json!({"status": "GENERATING", "backends": [
        {"port": 5001, "status": "GENERATING", "stats": {"total_processed": 320, "nonces_per_second": 20.0}}]})
}

fn verdict(v: Value) -> Response {
    let mut body = json!({"status": "completed", "request_id": "r1"});
    for (k, x) in v.as_object().unwrap() {
        body[k] = x.clone();
    }
    axum::Json(body).into_response()
}

async fn serve(play: Play) -> String {
    let app = Router::new()
        .route(
            "/api/v1/models/status",
            post(|| async {
                axum::Json(json!({"model": {"hf_repo": QWEN, "hf_commit": null}, "status": "DOWNLOADED", "progress": null, "error_message": null}))
            }),
        )
        .route(
            "/api/v1/inference/up/status",
            get(|| async {
                axum::Json(json!({"status": "completed", "is_starting": false, "is_running": true, "elapsed_seconds": 1.0, "error": null}))
            }),
        )
        .route(
            "/api/v1/inference/pow/init/generate",
            post(|| async {
                axum::Json(json!({"status": "OK", "backends": 1, "n_groups": 1, "results": [{"port": 5001, "status": "OK"}], "errors": null}))
            }),
        )
        .route("/api/v1/inference/pow/stop", post(|| async { axum::Json(json!({"status": "OK", "results": [], "errors": null})) }))
        .route("/api/v1/inference/pow/status", {
            let s = play.pow_status.clone();
            get(move || async move { axum::Json(s) })
        })
        .route("/api/v1/inference/pow/generate", {
            let play = play.clone();
            post(move || async move {
                play.hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(play.delay_ms)).await;
                (play.generate)()
            })
        });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

async fn against(
    play: Play,
    extra: &[&str],
) -> (mlnode_validator::Outcome, String, tempfile::TempDir) {
    let url = serve(play).await;
    let mut a = vec![
        "--skip-download",
        "--warmup-seconds",
        "0",
        "--measure-seconds",
        "2",
        "--sample-interval",
        "1",
    ];
    a.extend_from_slice(extra);
    validate(&url, QWEN, &a).await
}

fn play(generate: fn() -> Response) -> Play {
    Play {
        pow_status: honest_status(),
        generate,
        delay_ms: 0,
        hits: Arc::new(AtomicUsize::new(0)),
    }
}

fn assert_rejected(out: &mlnode_validator::Outcome, text: &str, word: &str) {
    assert_eq!(out.exit_code, 1, "{text}");
    let e = out.error.clone().unwrap_or_default();
    assert!(e.contains(word), "error {e:?} should name {word:?}");
    let rep = report_json(out);
    assert_eq!(rep["verdict"], "ERROR");
    assert!(text.contains(&format!("ERROR: {e}")), "{text}");
}

#[tokio::test]
async fn impossible_verdicts_are_errors() {
    let cases: &[(Answer, &str)] = &[
        (
            || {
                verdict(
                    json!({"n_total": 32, "n_mismatch": 40, "mismatch_nonces": [], "p_value": 0.0, "fraud_detected": true}),
                )
            },
            "exceeds n_total",
        ),
        (
            || {
                verdict(
                    json!({"n_total": 32, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 1.5, "fraud_detected": false}),
                )
            },
            "not a probability",
        ),
        (
            || {
                verdict(
                    json!({"n_total": 0, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 1.0, "fraud_detected": false}),
                )
            },
            "32 nonces were sent",
        ),
        (
            || {
                verdict(
                    json!({"n_total": 32, "n_mismatch": 1, "mismatch_nonces": [123456], "p_value": 0.0315, "fraud_detected": false}),
                )
            },
            "never sent",
        ),
        (
            || {
                verdict(
                    json!({"n_total": 32, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 1.0, "fraud_detected": true}),
                )
            },
            "contradicts",
        ),
        (
            || {
                verdict(
                    json!({"n_total": 32, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 0.5, "fraud_detected": false}),
                )
            },
            "binomial tail",
        ),
        (
            || {
                let mut r = verdict(
                    json!({"n_total": 32, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 1.0, "fraud_detected": false}),
                );
                let body = json!({"status": "failed", "request_id": "r1", "n_total": 32, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 1.0, "fraud_detected": false});
                *r.body_mut() = axum::body::Body::from(body.to_string());
                r
            },
            "not 'completed'",
        ),
    ];
    for (generate, word) in cases {
        let (out, text, _d) = against(play(*generate), &[]).await;
        assert_rejected(&out, &text, word);
        let rep = report_json(&out);
        assert_eq!(rep["failed_phase"], "validate");
        assert!(
            rep["partial"]["validation"]["answer"].is_string(),
            "the rejected answer is kept as evidence"
        );
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    // A second server that must never see the reference.
    let elsewhere = play(|| {
        verdict(
            json!({"n_total": 32, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 1.0, "fraud_detected": false}),
        )
    });
    let hits = elsewhere.hits.clone();
    let other = serve(elsewhere).await;
    let target: &'static str =
        Box::leak(format!("{other}/api/v1/inference/pow/generate").into_boxed_str());
    static TARGET: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    TARGET.set(target).unwrap();
    let (out, text, _d) = against(
        play(|| {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, *TARGET.get().unwrap())],
            )
                .into_response()
        }),
        &[],
    )
    .await;
    assert_rejected(&out, &text, "redirect to");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the reference went to another server"
    );
}

#[tokio::test]
async fn oversized_answers_are_capped() {
    let (out, text, _d) = against(
        play(|| {
            let junk = "x".repeat(20 << 20);
            axum::Json(json!({"status": "completed", "request_id": "r", "junk": junk}))
                .into_response()
        }),
        &[],
    )
    .await;
    assert_rejected(&out, &text, "cap of");
    let size = std::fs::metadata(&out.reports.unwrap().report)
        .unwrap()
        .len();
    assert!(
        size < 1 << 20,
        "the report does not carry the node's junk: {size} bytes"
    );
}

#[tokio::test]
async fn nonsense_throughput_is_an_error() {
    let honest_generate: fn() -> Response = || {
        verdict(
            json!({"n_total": 32, "n_mismatch": 0, "mismatch_nonces": [], "p_value": 1.0, "fraud_detected": false}),
        )
    };
    for (status, word) in [
        (
            json!({"status": "GENERATING", "backends": [{"port": 5001, "status": "GENERATING", "stats": {"total_processed": 10, "nonces_per_second": -5.0}}]}),
            "finite number >= 0",
        ),
        (
            json!({"status": "GENERATING", "backends": [{"port": 5001, "status": "GENERATING", "stats": {"total_processed": 10, "nonces_per_second": 1e308}}]}),
            "not a real measurement",
        ),
        (
            json!({"status": "NO_BACKENDS", "backends": []}),
            "NO_BACKENDS",
        ),
    ] {
        let p = Play {
            pow_status: status,
            ..play(honest_generate)
        };
        let (out, text, _d) = against(p, &[]).await;
        assert_rejected(&out, &text, word);
        assert_eq!(report_json(&out)["failed_phase"], "throughput");
        assert_eq!(
            report_json(&out)["throughput"],
            Value::Null,
            "validate.py writes a failed phase as null"
        );
    }
}

#[tokio::test]
async fn transport_failures_name_their_cause() {
    // Nobody listening.
    let (out, _, _d) = validate("http://127.0.0.1:9", QWEN, &[]).await;
    let e = out.error.unwrap();
    assert!(
        e.contains("connection refused") && e.contains("is the node running"),
        "{e}"
    );
    // A validation that never comes: a timeout, with its length.
    let p = Play {
        delay_ms: 30_000,
        ..play(|| verdict(json!({})))
    };
    let url = serve(p).await;
    let (out, _, _d) = validate(
        &url,
        QWEN,
        &[
            "--time-scale",
            "1",
            "--skip-download",
            "--skip-throughput",
            "--validation-timeout",
            "0.3",
        ],
    )
    .await;
    let e = out.error.unwrap();
    assert!(e.contains("timed out after 0.3 s"), "{e}");
    // Garbage instead of HTTP.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in l.incoming().take(16) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HELLO THERE\r\n\r\n");
        }
    });
    let (out, _, _d) = validate(&url, QWEN, &[]).await;
    let e = out.error.unwrap();
    assert!(
        e.contains("not valid HTTP") || e.contains("without a complete answer"),
        "{e}"
    );
}
