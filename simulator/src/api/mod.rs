//! The HTTP surface: `fn app(node) -> Router`, one module per endpoint group.
//!
//! One router per process ([`shared`], [`shared_inference`]) serves every node: the
//! serving loop attaches the node's `Arc<Sim>` to each request and the handlers take it
//! with the `Current` / `SimState` extractors; [`router`] attaches one for `oneshot` use.
//!
//! | module | routes |
//! |---|---|
//! | [`models`] | `/api/v1/models/{status,download,list,space}`, `DELETE /api/v1/models` |
//! | [`inference`] | `/api/v1/inference/{up,up/async,up/status,down}` |
//! | [`pow`] | `/api/v1/inference/pow/{init/generate,status,stop,generate,generate/{id},local-sink}` |
//! | [`node`] | `/health`, `/livez`, `/readyz`, `/openapi.json`, `/api/v1/{state,versions,stop,clock,metrics,gpu/*}` |
//! | [`openai`] | `/v1/models`, `/v1/chat/completions`, `/v1/completions` (gated while mining) |
//! | [`encrypted`] | `/api/v1/encrypted/{identity,chat/completions}`, `/api/v1/embed` |
//! | [`extract`] | the FastAPI-style JSON extractor and the per-node body limit |
//!
//! [`inference_port_router`] is the second listener's surface (the compat proxy).

pub mod encrypted;
pub mod extract;
pub mod inference;
pub mod models;
pub mod node;
pub mod openai;
pub mod pow;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::sim::Sim;
use crate::transport::Route;

/// vLLM's own `/health`: an empty 200.
#[utoipa::path(get, path = "/health", tag = "inference-port",
    responses((status = 200, description = "Empty body: the replica is up")))]
pub(crate) async fn inference_port_health() -> StatusCode {
    StatusCode::OK
}

/// A replica's `/api/v1/pow/versions` (the first healthy one; 503 as the plugin answers
/// without an engine).
#[utoipa::path(get, path = "/api/v1/pow/versions", tag = "inference-port",
    responses((status = 200, description = "The replica's feature handshake", body = mlnode_protocol::wire::ReplicaVersions),
        (status = 503, description = "Engine not available", body = mlnode_protocol::wire::ErrorBody)))]
pub(crate) async fn replica_versions(crate::sim::Current(node): crate::sim::Current) -> Response {
    match node.pow_versions() {
        Some(v) => axum::Json(v).into_response(),
        None => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Engine not available").into_response()
        }
    }
}

/// The one middleware, as a tower layer over every route: transport faults inside, the
/// journal and the request counters around them (one layer, not two: every layer costs
/// a boxed future and a service clone per request). Written as a `Layer` rather than
/// `axum::middleware::from_fn`, which per request also boxes a `Next` around the route
/// and takes the request apart for its extractors.
#[derive(Clone, Copy)]
pub(crate) struct Observe;

impl<S> tower::Layer<S> for Observe {
    type Service = Observed<S>;
    fn layer(&self, inner: S) -> Observed<S> {
        Observed(inner)
    }
}

/// A route behind [`Observe`].
#[derive(Clone)]
pub(crate) struct Observed<S>(S);

impl<S: Route + Clone> tower::Service<Request> for Observed<S>
where
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service that was polled ready goes with the request; its clone stays.
        let ready = self.0.clone();
        let ready = std::mem::replace(&mut self.0, ready);
        Box::pin(async move { Ok(observe(req, ready).await) })
    }
}

async fn observe<S: Route>(req: Request, next: S) -> Response {
    let sim = match crate::sim::sim_of(req.extensions()) {
        Ok(sim) => sim,
        Err(e) => return e.into_response(),
    };
    let endpoint = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let port = req
        .extensions()
        .get::<crate::port::Port>()
        .copied()
        .unwrap_or(crate::port::Port::Poc);
    let version = req
        .extensions()
        .get::<crate::gateway::VersionPrefix>()
        .map(|v| v.0.clone());
    if let Some(v) = &version {
        sim.metrics.observe_version(port, v);
    }
    let method = req.method().clone();
    if sim.journal.capacity() == 0 {
        let resp = gate_then_route(&sim, port, req, next).await;
        count(&sim, port, endpoint.as_ref(), &method, &resp);
        return resp;
    }
    // The path as the client sent it: the version segment back in front.
    let path = crate::gateway::path_as_sent(version.as_deref(), req.uri().path());
    let bytes = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let t0 = Instant::now();
    let resp = gate_then_route(&sim, port, req, next).await;
    count(&sim, port, endpoint.as_ref(), &method, &resp);
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    sim.journal.record_versioned(
        method.as_str(),
        path,
        version.as_deref(),
        resp.status().as_u16(),
        ms,
        bytes,
    );
    resp
}

/// What answers before the route: the gateway's token (every route but the
/// simulator's own `/sim/v1/*`), and on the inference port the compat proxy's 503 on a
/// connection that outlived the last healthy replica (network-node §3.7: new
/// connections are refused by the serving loop; one already open must not hear 200).
async fn gate_then_route(
    sim: &Arc<Sim>,
    port: crate::port::Port,
    req: Request,
    next: impl Route,
) -> Response {
    let path = req.uri().path();
    if let Some(token) = &sim.options.auth_token {
        if !path.starts_with("/sim/") {
            if let Some(refused) = crate::gateway::check_token(token, req.headers()) {
                return refused;
            }
        }
    }
    if port == crate::port::Port::Inference
        && path != mlnode_protocol::paths::OPENAPI
        && sim.node().inference_target().is_none()
    {
        return crate::gateway::no_backend();
    }
    guarded(sim, req, next).await
}

fn count(
    sim: &Sim,
    port: crate::port::Port,
    endpoint: Option<&axum::extract::MatchedPath>,
    method: &axum::http::Method,
    resp: &Response,
) {
    sim.metrics.observe(
        port,
        endpoint.map_or("unmatched", |e| e.as_str()),
        method,
        resp.status().as_u16(),
    );
}

/// Transport faults and the routes, with a panic in a handler turned into a JSON 500 and
/// recorded on the node (which then reports itself unhealthy) instead of a dropped
/// connection.
async fn guarded(sim: &Arc<Sim>, req: Request, next: impl Route) -> Response {
    use futures_util::FutureExt;
    // Named only if a handler panics; the clone shares the request's bytes.
    let uri = req.uri().clone();
    let attached = req.extensions().get::<Arc<crate::sim::Attached>>().cloned();
    let kill = attached.as_ref().and_then(|a| a.kill.as_ref());
    let mut resp = match std::panic::AssertUnwindSafe(crate::transport::apply(
        &sim.transport,
        sim.node().clock,
        kill,
        req,
        next,
    ))
    .catch_unwind()
    .await
    {
        Ok(resp) => resp,
        Err(p) => {
            let msg = crate::sim::panic_message(&*p);
            let path = uri.path();
            sim.node().record_internal_error(path, &msg);
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error while handling {path}: {msg}"),
            )
            .into_response()
        }
    };
    // After the handler: whatever it started (mining with callbacks, a queued job) is
    // what an idle ticker must now look at.
    let node = sim.node();
    node.wake();
    // Tell clients the clock: a validator pointed at this node learns the scale.
    resp.headers_mut()
        .insert(TIME_SCALE, node.scale_header.clone());
    resp
}

/// The header on every answer that says the simulated clock's scale.
pub const TIME_SCALE_HEADER: &str = "x-sim-time-scale";

/// [`TIME_SCALE_HEADER`] as a ready header name (not parsed again per response).
const TIME_SCALE: axum::http::HeaderName = axum::http::HeaderName::from_static(TIME_SCALE_HEADER);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimOptions;
    use axum::Router;
    use tower::ServiceExt;

    /// A panicking handler is a JSON 500, the node reports itself unhealthy, and the next
    /// request is served.
    #[tokio::test]
    async fn a_panic_is_a_json_500_and_marks_the_node_unhealthy() {
        let node = crate::build_node(crate::NodeConfig::default(), None).unwrap();
        let sim = Sim::new(node.clone(), SimOptions::default());
        let app = Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    let empty: Vec<String> = Vec::new();
                    empty[1].clone()
                }),
            )
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .layer(Observe)
            .layer(axum::Extension(crate::app::attach(sim)));
        let req = |p: &str| {
            Request::builder()
                .uri(p)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let resp = app.clone().oneshot(req("/boom")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["detail"].as_str().unwrap().contains("/boom"), "{v}");
        assert!(node.internal_error().is_some());
        assert!(node.health().status == "unhealthy");
        let resp = app.oneshot(req("/ok")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// The shared router used without the serving loop or `app::router` (no node
    /// attached): a JSON 500 that says so, from the middleware, not a panic.
    #[tokio::test]
    async fn a_request_without_a_node_is_a_json_500() {
        let req = Request::builder()
            .uri(mlnode_protocol::paths::POW_STATUS)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = crate::app::shared().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["detail"], "no simulated node attached to this request");
    }
}
