//! The admin API under `/sim/v1/` (mounted only with `--admin`): scenarios, faults,
//! replica health, reset and the request journal. With `--admin-token`, every call needs
//! `Authorization: Bearer <token>` (or `X-Admin-Token`): missing → 401, wrong → 403.
//!
//! | route | does |
//! |---|---|
//! | `GET /sim/v1/scenarios` | list shipped scenarios |
//! | `POST /sim/v1/scenario` `{"name": ...}` | load a scenario (fresh node) |
//! | `POST /sim/v1/reset` | back to the current scenario's start |
//! | `GET/POST/DELETE /sim/v1/faults` | list (with `seen`/`fired` counters) / add `{path, probability, skip?, times?, kind, ...}` / clear transport faults |
//! | `POST /sim/v1/replicas/{i}/health` `{"healthy": bool}` | fail or restore health probes (3-probe damping) |
//! | `POST /sim/v1/replicas/{i}/fault` `{"rate"?, "stall_after_seconds"?, "init_error"?}` | per-replica faults |
//! | `GET /sim/v1/journal?limit=N` | the newest journal entries |
//! | `GET /sim/v1/node` | this node: deploy, replicas and their versions, the reference served per round, local sink, faults |
//! | `GET /sim/v1/inventory` | the served nodes in the node-config format (read-only: also without `--admin`) |
//! | `GET /sim/v1/nodes` | the nodes of this process's fleet (id, url, seed, model, profile) |
//! | `ANY /sim/v1/nodes/{id}/...` | node `id`'s own `/sim/v1/...` (load, reset, faults, journal) |

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::extract::{Json, PathParam, QueryParam};
use crate::error::ApiError;
use crate::fixtures;
use crate::sim::SimState;
use crate::transport::TransportFault;
use mlnode_protocol::wire::ErrorBody;

/// The admin routes (in every node's router; `auth` answers 404 on a node without
/// `--admin`, as if they were not there).
pub fn routes() -> Router {
    Router::new()
        .route("/sim/v1/scenarios", get(scenarios))
        .route("/sim/v1/scenario", post(load))
        .route("/sim/v1/reset", post(reset))
        .route(
            "/sim/v1/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
        .route("/sim/v1/replicas/{index}/health", post(replica_health))
        .route("/sim/v1/replicas/{index}/fault", post(replica_fault))
        .route("/sim/v1/journal", get(journal))
        .route("/sim/v1/node", get(node_view))
        .route("/sim/v1/nodes", get(nodes))
        .route("/sim/v1/nodes/{id}/{*rest}", axum::routing::any(to_node))
        .layer(axum::middleware::from_fn(auth))
}

/// This node now: its deploy and replicas (with their `/pow/versions`), the reference
/// recording it serves for each round of the deployed model, its local sink and its
/// faults with their sequence counters.
#[utoipa::path(get, path = "/sim/v1/node", tag = "admin",
    responses((status = 200, description = "This node: deploy, replicas, references served, local sink, faults", body = Object), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody)))]
pub(crate) async fn node_view(SimState(sim): SimState) -> axum::Json<Value> {
    let node = sim.node();
    let deploy = node.deploy_view();
    let references = deploy
        .as_ref()
        .map(|d| node.served_references(&d.model))
        .unwrap_or_default();
    let (poc, inference) = sim.addresses().map_or((None, None), |(p, i)| (Some(p), i));
    axum::Json(json!({
        "url": poc.map(|a| format!("http://{a}")),
        "inference_url": inference.map(|a| format!("http://{a}")),
        "profile": node.profile.name,
        "time_scale": node.clock.scale(),
        "deploy": deploy,
        "references": references,
        "local_sink": node.sink_summary(),
        "faults": sim.transport.states(),
    }))
}

/// The nodes this process serves, in the node-config format `mlnode-validate
/// --inventory URL` reads. Read-only, so served without `--admin` too (a validation Job
/// gathers a fleet from its pods). Nodes bound to an unspecified address (`--host
/// 0.0.0.0`) are listed under the host name the client used to reach this one.
#[utoipa::path(get, path = "/sim/v1/inventory", tag = "admin",
    responses((status = 200, description = "The served nodes in the node-config format: a list of {id, host, inference_port, poc_port, max_concurrent, models}", body = Vec<Object>)))]
pub(crate) async fn inventory(
    SimState(sim): SimState,
    headers: axum::http::HeaderMap,
) -> axum::Json<mlnode_protocol::node_config::NodeConfig> {
    let mut inv = match &sim.options.peers {
        Some(p) if !p.members().is_empty() => crate::fleet::inventory(p),
        _ => mlnode_protocol::node_config::NodeConfig(
            sim.addresses()
                .map(|(poc, inf)| crate::inventory::entry("node1", poc, inf, &sim.node()))
                .into_iter()
                .collect(),
        ),
    };
    if let Some(name) = crate::gateway::host_name(&headers) {
        for n in &mut inv.0 {
            if n.host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified())
            {
                n.host.clone_from(&name);
            }
        }
    }
    axum::Json(inv)
}

/// The fleet this node belongs to (just itself when it serves alone).
#[utoipa::path(get, path = "/sim/v1/nodes", tag = "admin",
    responses((status = 200, description = "The nodes of this process's fleet", body = Object), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody)))]
pub(crate) async fn nodes(SimState(sim): SimState) -> axum::Json<Value> {
    match &sim.options.peers {
        Some(p) => axum::Json(json!({"nodes": p.list()})),
        None => axum::Json(json!({"nodes": []})),
    }
}

/// `/sim/v1/nodes/{id}/<rest>` is node `id`'s `/sim/v1/<rest>`.
#[utoipa::path(get, path = "/sim/v1/nodes/{id}/{rest}", tag = "admin",
    params(("id" = String, Path, description = "Node id"), ("rest" = String, Path, description = "The node's own /sim/v1/<rest>")),
    responses((status = 200, description = "That node's answer", body = Object), (status = 404, description = "No such node", body = ErrorBody), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody)))]
pub(crate) async fn to_node(
    SimState(sim): SimState,
    PathParam((id, rest)): PathParam<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    use tower::ServiceExt;
    let peer = sim
        .options
        .peers
        .as_ref()
        .and_then(|p| p.get(&id))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no node '{id}' in this fleet"),
            )
        })?;
    if !peer.sim.options.admin {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("node '{id}' has no admin API"),
        ));
    }
    let (mut parts, body) = req.into_parts();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    parts.uri = format!("/sim/v1/{rest}{query}")
        .parse()
        .map_err(|_| ApiError::unprocessable("invalid path"))?;
    let mut attached = crate::sim::Attached::of(&parts.extensions)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no router attached to this request",
            )
        })?;
    let app = attached.router.clone();
    attached.sim = Some(peer.sim.clone());
    parts.extensions.insert(std::sync::Arc::new(attached));
    let resp = app
        .oneshot(Request::from_parts(parts, body))
        .await
        .unwrap_or_else(|e| match e {});
    Ok(resp)
}

pub(crate) async fn auth(
    SimState(sim): SimState,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !sim.options.admin {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "Not Found"));
    }
    if let Some(token) = &sim.options.admin_token {
        let h = req.headers();
        let given = h
            .get("x-admin-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                h.get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
        match given {
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Missing admin token",
                ))
            }
            Some(t) if t != token => {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "Invalid admin token"))
            }
            Some(_) => {}
        }
    }
    Ok(next.run(req).await)
}

#[utoipa::path(get, path = "/sim/v1/scenarios", tag = "admin",
    responses((status = 200, description = "Shipped scenarios with their expected verdicts", body = [Object]), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody)))]
pub(crate) async fn scenarios() -> Result<axum::Json<Value>, ApiError> {
    let all = fixtures::all_scenarios()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(axum::Json(json!(all.iter().map(|s| json!({"name": s.name, "description": s.description, "expect": s.expect.as_ref().map(|e| json!({"verdict": e.verdict, "exit_code": e.exit_code, "model": e.model}))})).collect::<Vec<_>>())))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoadBody {
    name: String,
    #[serde(default)]
    time_scale: Option<f64>,
}

#[utoipa::path(post, path = "/sim/v1/scenario", tag = "admin", request_body = LoadBody,
    responses((status = 200, description = "Loaded (a fresh node)", body = Object), (status = 400, description = "Unknown scenario or bad time scale", body = ErrorBody), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody), (status = 422, description = "Request schema violation", body = ErrorBody)))]
pub(crate) async fn load(
    SimState(sim): SimState,
    Json(b): Json<LoadBody>,
) -> Result<axum::Json<Value>, ApiError> {
    // Shipped names only: the admin API never opens a file a caller names.
    let mut s = fixtures::shipped_scenario(&b.name)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    s.node.time_scale = b.time_scale.unwrap_or(sim.node().clock.scale());
    sim.load(s.node)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(axum::Json(json!({"status": "OK", "scenario": s.name})))
}

#[utoipa::path(post, path = "/sim/v1/reset", tag = "admin",
    responses((status = 200, description = "Back to the scenario's start", body = Object), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody)))]
pub(crate) async fn reset(SimState(sim): SimState) -> Result<axum::Json<Value>, ApiError> {
    sim.reset()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(axum::Json(json!({"status": "OK"})))
}

#[utoipa::path(get, path = "/sim/v1/faults", tag = "admin",
    responses((status = 200, description = "Transport faults with their seen/fired counters", body = [Object]), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody)))]
pub(crate) async fn faults(
    SimState(sim): SimState,
) -> axum::Json<Vec<crate::transport::FaultState>> {
    axum::Json(sim.transport.states())
}

#[utoipa::path(post, path = "/sim/v1/faults", tag = "admin",
    request_body(content = Object, description = "`{path, probability?, skip?, times?, kind, ...}`: kind latency (latency {dist, ...}), reset, empty, truncate, garbage, dribble (chunk_bytes, interval_ms), hang, status (status, detail?)"),
    responses((status = 200, description = "The faults now set", body = [Object]), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody), (status = 422, description = "Request schema violation", body = ErrorBody)))]
pub(crate) async fn add_fault(
    SimState(sim): SimState,
    Json(f): Json<TransportFault>,
) -> Result<axum::Json<Vec<TransportFault>>, ApiError> {
    // Already checked: `TransportFault` deserializes through `TryFrom<RawFault>`.
    sim.transport.add(f);
    Ok(axum::Json(sim.transport.list()))
}

#[utoipa::path(delete, path = "/sim/v1/faults", tag = "admin",
    responses((status = 200, description = "Cleared", body = Object), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody)))]
pub(crate) async fn clear_faults(SimState(sim): SimState) -> axum::Json<Value> {
    sim.transport.set(Vec::new());
    axum::Json(json!({"status": "OK"}))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthBody {
    healthy: bool,
}

#[utoipa::path(post, path = "/sim/v1/replicas/{index}/health", tag = "admin",
    params(("index" = u32, Path, description = "Replica index")), request_body = HealthBody,
    responses((status = 200, description = "Set", body = Object), (status = 404, description = "No such replica", body = ErrorBody), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody), (status = 422, description = "Request schema violation", body = ErrorBody)))]
pub(crate) async fn replica_health(
    SimState(sim): SimState,
    PathParam(index): PathParam<u32>,
    Json(b): Json<HealthBody>,
) -> Result<axum::Json<Value>, ApiError> {
    sim.node().set_replica_health(index, b.healthy)?;
    Ok(axum::Json(
        json!({"status": "OK", "replica": index, "healthy": b.healthy}),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplicaFaultBody {
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    stall_after_seconds: Option<f64>,
    #[serde(default)]
    init_error: Option<String>,
}

#[utoipa::path(post, path = "/sim/v1/replicas/{index}/fault", tag = "admin",
    params(("index" = u32, Path, description = "Replica index")), request_body = ReplicaFaultBody,
    responses((status = 200, description = "Set", body = Object), (status = 404, description = "No such replica", body = ErrorBody), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody), (status = 422, description = "Request schema violation", body = ErrorBody)))]
pub(crate) async fn replica_fault(
    SimState(sim): SimState,
    PathParam(index): PathParam<u32>,
    Json(b): Json<ReplicaFaultBody>,
) -> Result<axum::Json<Value>, ApiError> {
    if let Some(r) = b.rate {
        if !(r.is_finite() && (0.0..=crate::config::MAX_RATE_FACTOR).contains(&r)) {
            return Err(ApiError::value_error(
                &["body", "rate"],
                format!("rate must be in [0, {}]", crate::config::MAX_RATE_FACTOR),
                json!(r),
            ));
        }
    }
    sim.node()
        .set_replica_fault(index, b.rate, b.stall_after_seconds, b.init_error)?;
    Ok(axum::Json(json!({"status": "OK", "replica": index})))
}

#[derive(Deserialize)]
pub(crate) struct JournalQuery {
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/sim/v1/journal", tag = "admin",
    params(("limit" = Option<usize>, Query, description = "Newest entries to return (default 100)")),
    responses((status = 200, description = "The request journal", body = Object), (status = 401, description = "Missing admin token (with --admin-token)", body = ErrorBody), (status = 403, description = "Wrong admin token", body = ErrorBody), (status = 422, description = "Request schema violation", body = ErrorBody)))]
pub(crate) async fn journal(
    SimState(sim): SimState,
    QueryParam(q): QueryParam<JournalQuery>,
) -> axum::Json<Value> {
    let entries = sim.journal.tail(q.limit.unwrap_or(100));
    axum::Json(
        json!({"capacity": sim.journal.capacity(), "total": sim.journal.total(), "entries": entries}),
    )
}
