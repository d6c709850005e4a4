//! The OpenAPI documents against the routers: every `.route(...)` of every router module
//! has an operation per method in the document of its port, and every documented
//! operation is routed (it answers with something other than the fallback 404/405).

use std::collections::BTreeSet;

use mlnode_sim::{Sim, SimOptions};
use tower::ServiceExt;

use crate::util::*;

/// `paths::NAME` → its value, for the route scan.
fn path_const(name: &str) -> String {
    let src = include_str!("../../../protocol/src/paths.rs");
    let needle = format!("pub const {name}: &str = \"");
    let start = src
        .find(&needle)
        .unwrap_or_else(|| panic!("no paths::{name}"))
        + needle.len();
    src[start..src[start..].find('"').unwrap() + start].to_owned()
}

/// Every (METHOD, path) a router source registers with `.route(PATH, get(..).post(..))`;
/// axum's `{*rest}` is OpenAPI's `{rest}`.
fn routes_in(src: &str) -> BTreeSet<(String, String)> {
    let end = regex::Regex::new(r"\n\s*[.}]").unwrap();
    let method = regex::Regex::new(r"\b(get|post|delete|put|patch|any)\(").unwrap();
    let mut out = BTreeSet::new();
    for chunk in src.split(".route(").skip(1) {
        let chunk = &chunk[..end.find(chunk).map_or(chunk.len(), |m| m.start())];
        let (raw, handlers) = chunk.split_once(',').expect("route(path, handlers)");
        let raw = raw.trim();
        let path = if let Some(lit) = raw.strip_prefix('"') {
            lit.trim_end_matches('"').to_owned()
        } else {
            path_const(raw.rsplit("::").next().unwrap())
        };
        let path = path.replace("{*", "{");
        for m in method.captures_iter(handlers) {
            out.insert((m[1].to_uppercase(), path.clone()));
        }
    }
    out
}

/// The text of the function starting with `head` in `src`.
fn fn_body<'a>(src: &'a str, head: &str) -> &'a str {
    let body = &src[src.find(head).unwrap_or_else(|| panic!("no {head}"))..];
    &body[..body.find("\n}\n").unwrap()]
}

fn documented(doc: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
    let v = serde_json::to_value(doc).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in v["paths"].as_object().unwrap() {
        for m in ["get", "post", "delete", "put", "patch"] {
            if item.get(m).is_some() {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn assert_covered(routes: &BTreeSet<(String, String)>, doc: &BTreeSet<(String, String)>) {
    assert!(routes.len() > 3, "the scan found routes: {routes:?}");
    for (m, p) in routes {
        let ok = if m == "ANY" {
            doc.iter().any(|(_, q)| q == p)
        } else {
            doc.contains(&(m.clone(), p.clone()))
        };
        assert!(ok, "route {m} {p} has no operation in the OpenAPI document");
    }
}

#[test]
fn every_route_of_the_poc_port_is_documented() {
    let mut routes = BTreeSet::new();
    for src in [
        include_str!("../../src/api/models.rs"),
        include_str!("../../src/api/inference.rs"),
        include_str!("../../src/api/pow.rs"),
        include_str!("../../src/api/node.rs"),
        include_str!("../../src/api/openai.rs"),
        include_str!("../../src/admin.rs"),
        fn_body(include_str!("../../src/app.rs"), "pub fn shared()"),
    ] {
        routes.extend(routes_in(src));
    }
    let doc = documented(&mlnode_sim::openapi::poc_port());
    assert_covered(&routes, &doc);
    // Every protocol path constant the simulator serves is in the document.
    for name in [
        "MODELS_STATUS",
        "POW_GENERATE_JOB",
        "POW_LOCAL_SINK_PATH",
        "METRICS",
        "OPENAPI",
    ] {
        let p = path_const(name).replace("{*", "{");
        assert!(doc.iter().any(|(_, q)| *q == p), "{p} undocumented");
    }
}

#[test]
fn every_route_of_the_inference_port_is_documented() {
    let body = fn_body(
        include_str!("../../src/app.rs"),
        "pub fn shared_inference()",
    );
    let mut routes = routes_in(body);
    routes.extend(routes_in(include_str!("../../src/api/openai.rs")));
    routes.retain(|(_, p)| p != "/openapi.json");
    assert_covered(&routes, &documented(&mlnode_sim::openapi::inference_port()));
}

/// Every documented operation is routed: with the admin API on, none answers with the
/// router's fallback.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let node = mlnode_sim::build_node(cfg(), None).unwrap();
    let sim = Sim::new(
        node,
        SimOptions {
            admin: true,
            ..SimOptions::default()
        },
    );
    for (method, path) in documented(&mlnode_sim::openapi::poc_port()) {
        let concrete = path
            .replace("{request_id}", "5001:x")
            .replace("{index}", "0")
            .replace("{id}", "node1")
            .replace("{rest}", "faults")
            .replace("{path}", "generated");
        let req = axum::http::Request::builder()
            .method(method.as_str())
            .uri(&concrete)
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{}"))
            .unwrap();
        let resp = mlnode_sim::router(sim.clone()).oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let fallback = (status == 404 && body.as_ref() == br#"{"detail":"Not Found"}"#)
            || (status == 405 && body.as_ref() == br#"{"detail":"Method Not Allowed"}"#);
        assert!(!fallback, "{method} {path} is documented but not routed");
    }
}

/// The document is served, is OpenAPI 3.1, and names the FastAPI error shape.
#[tokio::test]
async fn the_document_is_served() {
    let h = start(cfg()).await;
    let c = C::new(&h);
    let (code, v) = c.get("/openapi.json").await;
    assert_eq!(code, 200);
    assert!(
        v["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        v["openapi"]
    );
    assert!(v["components"]["schemas"]["ErrorBody"].is_object());
    assert!(v["components"]["schemas"]["GenerateRequest"].is_object());
}
