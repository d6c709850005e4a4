//! The emulated API as OpenAPI 3.1 documents, generated with utoipa from the handlers'
//! own `#[utoipa::path]` attributes and the wire types' `ToSchema` derives (the
//! `openapi` feature of `mlnode-protocol`): the document and the code cannot drift
//! apart silently — `tests/sim/openapi.rs` walks every `.route(...)` of the routers and
//! fails when one has no operation here, or an operation is not routed.
//!
//! Two documents, one per listener: [`poc_port`] (management, PoC v2 proxy, state and
//! health, the `/v1` proxy, and the admin API under its own tag) served at
//! `GET /openapi.json` and printed by `mlnode-sim --openapi`; [`inference_port`] (the
//! compat proxy) served at `GET /openapi.json` on the inference port and printed by
//! `mlnode-sim --openapi inference`.

use utoipa::OpenApi;

use crate::{admin, api};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MLNode API (mlnode-sim)",
        description = "The Gonka MLNode HTTP API as mlnode-sim serves it: models, inference, PoC v2, state and health, the OpenAI proxy, and the simulator's admin API. Errors are FastAPI's `{\"detail\": ...}`; 422 lists pydantic-style errors."
    ),
    paths(
        api::models::status,
        api::models::download,
        api::models::delete,
        api::models::list,
        api::models::space,
        api::inference::up,
        api::inference::up_async,
        api::inference::status,
        api::inference::down,
        api::pow::init_generate,
        api::pow::status,
        api::pow::stop,
        api::pow::generate,
        api::pow::poll,
        api::pow::sink_summary,
        api::pow::sink_receive,
        api::node::health,
        api::node::livez,
        api::node::ready,
        api::node::state,
        api::node::versions,
        api::node::metrics,
        api::node::stop,
        api::node::clock,
        api::node::gpu_devices,
        api::node::gpu_driver,
        api::node::legacy_pow_status,
        openapi_json,
        api::openai::models,
        api::openai::completion,
        api::openai::text_completion,
        api::encrypted::identity,
        api::encrypted::chat,
        api::encrypted::embed,
        admin::scenarios,
        admin::load,
        admin::reset,
        admin::faults,
        admin::add_fault,
        admin::clear_faults,
        admin::replica_health,
        admin::replica_fault,
        admin::journal,
        admin::node_view,
        admin::nodes,
        admin::inventory,
        admin::to_node,
    ),
    tags(
        (name = "models", description = "The HF model cache (mlnode-api §4.1)"),
        (name = "inference", description = "vLLM deploy (§4.2)"),
        (name = "pow", description = "PoC v2 through the MLNode proxy (§4.3)"),
        (name = "state", description = "State, versions, health, metrics, GPU (§4.4)"),
        (name = "openai", description = "The OpenAI-compatible proxy, gated while mining (§4.5)"),
        (name = "encrypted", description = "Encrypted inference (HPKE envelopes) and embeddings (network-node §3.1-3.3)"),
        (name = "admin", description = "The simulator's admin API (only with --admin)"),
    ),
    modifiers(&Gateway)
)]
struct PocPortDoc;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MLNode inference port (mlnode-sim)",
        description = "The `inference_port` compat proxy: what it forwards to a vLLM replica. Up only while a replica is healthy."
    ),
    paths(
        api::inference_port_health,
        api::replica_versions,
        api::openai::models,
        api::openai::completion,
        api::openai::text_completion,
    ),
    tags((name = "inference-port", description = "The compat proxy's own routes")),
    modifiers(&Gateway)
)]
struct InferencePortDoc;

/// What stands in front of a node in a deployment, stated in both documents: the
/// version segment the host's nginx strips (a second server, `/{version}`), and a
/// managed endpoint's bearer token (optional: only with `--auth-token`; the MLNode
/// itself checks none).
struct Gateway;

impl utoipa::Modify for Gateway {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        use utoipa::openapi::server::{ServerBuilder, ServerVariableBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "gatewayBearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A managed endpoint's gateway token (mlnode-sim --auth-token): every route answers 401 without it. Not checked by the MLNode itself.",
                    ))
                    .build(),
            ),
        );
        // Either no auth (a plain node) or the gateway's token.
        doc.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("gatewayBearer", Vec::<String>::new()),
        ]);
        doc.servers = Some(vec![
            ServerBuilder::new()
                .url("/")
                .description(Some("The node's routes as it serves them"))
                .build(),
            ServerBuilder::new()
                .url("/{version}")
                .description(Some(
                    "The same routes behind one version segment, as the network node addresses a node (stripped by the host's nginx; any one segment)",
                ))
                .parameter(
                    "version",
                    ServerVariableBuilder::new()
                        .default_value("v3.0.8")
                        .description(Some("The chain's MLNode version, e.g. v3.0.8"))
                        .build(),
                )
                .build(),
        ]);
    }
}

/// The PoC/management port's document.
pub fn poc_port() -> utoipa::openapi::OpenApi {
    PocPortDoc::openapi()
}

/// The inference port's document.
pub fn inference_port() -> utoipa::openapi::OpenApi {
    InferencePortDoc::openapi()
}

/// This port's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "state",
    responses((status = 200, description = "The OpenAPI 3.1 document of this port", body = Object)))]
pub(crate) async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(poc_port())
}

/// The inference port's document, served on that port.
pub(crate) async fn inference_openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(inference_port())
}
