//! The assembled routers: every endpoint module, the admin API and the OpenAPI documents
//! behind the one middleware, built once per process and shared by every node.
//!
//! The serving loop (`serve`) attaches each connection's node (`Arc<Sim>`) to its
//! requests; [`router`] attaches one for `oneshot` use and embedding.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;

use crate::api::{
    encrypted, inference, inference_port_health, models, node, openai, pow, replica_versions,
    Observe,
};
use crate::error::ApiError;
use crate::node::Node;
use crate::sim::{Attached, Sim, SimOptions};

/// The MLNode API for one node, with default serving options (no admin API).
pub fn app(node: Arc<Node>) -> Router {
    router(Sim::new(node, SimOptions::default()))
}

/// The MLNode API for one served simulator (for `oneshot` tests and embedding): the
/// process-wide [`shared`] router with `sim` attached to every request.
pub fn router(sim: Arc<Sim>) -> Router {
    with_gateway(shared()).layer(axum::Extension(attach(sim)))
}

/// `router` behind the version-prefix stripping the serving loop applies before routing
/// (`gateway::dispatch`), for `oneshot` use.
fn with_gateway(router: Router) -> Router {
    Router::new().fallback_service(tower::service_fn(move |req| {
        crate::gateway::dispatch(router.clone(), req)
    }))
}

/// What a `oneshot` request carries in place of a connection's attachment.
pub(crate) fn attach(sim: Arc<Sim>) -> Arc<Attached> {
    Arc::new(Attached {
        sim: Some(sim),
        router: shared(),
        kill: None,
        peer: None,
    })
}

/// The inference port's router for one served simulator (see [`shared_inference`]).
pub fn inference_port_router(sim: Arc<Sim>) -> Router {
    with_gateway(shared_inference()).layer(axum::Extension(attach(sim)))
}

/// The MLNode API of every node of this process: journal → transport faults → routes
/// (one middleware, [`Observe`]), and `/sim/v1/*` (answering 404 on a node without
/// `--admin`; never subject to transport faults). Built once: the serving loop attaches
/// each connection's node (`Arc<Sim>`) to its requests, so a thousand nodes share one
/// route tree instead of each walking its own. Body limits are the node's own, applied
/// by the body extractors.
pub fn shared() -> Router {
    static ROUTER: std::sync::OnceLock<Router> = std::sync::OnceLock::new();
    ROUTER
        .get_or_init(|| {
            Router::new()
                .merge(models::routes())
                .merge(inference::routes())
                .merge(pow::routes())
                .merge(node::routes())
                .merge(openai::routes())
                .merge(encrypted::routes())
                .merge(crate::admin::routes())
                // Read-only: outside the admin gate.
                .route(
                    "/sim/v1/inventory",
                    axum::routing::get(crate::admin::inventory),
                )
                .route(
                    mlnode_protocol::paths::OPENAPI,
                    axum::routing::get(crate::openapi::openapi_json),
                )
                .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not Found") })
                .method_not_allowed_fallback(|| async {
                    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
                })
                // No `DefaultBodyLimit` layer (one more extension per request): no
                // handler uses axum's body extractors; `api::extract::body` applies the
                // node's own limit.
                .layer(Observe)
        })
        .clone()
}

/// The inference port's compat proxy (`inference_port`, :5000 on a real node): what it
/// forwards to a replica — vLLM's `/health` (empty 200), the OpenAI routes (gated while
/// mining, as on the PoC port) and the replica's `/api/v1/pow/versions`. Journal,
/// metrics and transport faults apply as on the PoC port; no admin API here. Shared by
/// every node like [`shared`].
pub fn shared_inference() -> Router {
    static ROUTER: std::sync::OnceLock<Router> = std::sync::OnceLock::new();
    ROUTER
        .get_or_init(|| {
            Router::new()
                .route("/health", axum::routing::get(inference_port_health))
                .route(
                    mlnode_protocol::paths::REPLICA_POW_VERSIONS,
                    axum::routing::get(replica_versions),
                )
                .route(
                    mlnode_protocol::paths::OPENAPI,
                    axum::routing::get(crate::openapi::inference_openapi_json),
                )
                .merge(openai::routes())
                .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not Found") })
                .layer(Observe)
                .layer(axum::Extension(crate::port::Port::Inference))
        })
        .clone()
}
