//! The API's paths, spelled once: the client builds its URLs and the simulator mounts its
//! routes from the same constants (mlnode-api §4).

pub const MODELS: &str = "/api/v1/models";
pub const MODELS_STATUS: &str = "/api/v1/models/status";
pub const MODELS_DOWNLOAD: &str = "/api/v1/models/download";
pub const MODELS_LIST: &str = "/api/v1/models/list";
pub const MODELS_SPACE: &str = "/api/v1/models/space";

pub const UP: &str = "/api/v1/inference/up";
pub const UP_ASYNC: &str = "/api/v1/inference/up/async";
pub const UP_STATUS: &str = "/api/v1/inference/up/status";
pub const DOWN: &str = "/api/v1/inference/down";

pub const POW_INIT_GENERATE: &str = "/api/v1/inference/pow/init/generate";
pub const POW_STATUS: &str = "/api/v1/inference/pow/status";
pub const POW_STOP: &str = "/api/v1/inference/pow/stop";
pub const POW_GENERATE: &str = "/api/v1/inference/pow/generate";
/// `GET` a queued job: `{POW_GENERATE}/{request_id}`.
/// The node's own callback sink: where callbacks go when a request names no `url`
/// (loopback clients only).
pub const POW_LOCAL_SINK: &str = "/api/v1/inference/pow/local-sink";
/// `POST {POW_LOCAL_SINK}/{path}` (`generated`, `validated`).
pub const POW_LOCAL_SINK_PATH: &str = "/api/v1/inference/pow/local-sink/{*path}";
/// A replica's own feature handshake, reached through the inference port.
pub const REPLICA_POW_VERSIONS: &str = "/api/v1/pow/versions";
pub const POW_GENERATE_JOB: &str = "/api/v1/inference/pow/generate/{request_id}";
/// The legacy PoC v1 status stub.
pub const POW_V1_STATUS: &str = "/api/v1/pow/status";

pub const STATE: &str = "/api/v1/state";
pub const VERSIONS: &str = "/api/v1/versions";
pub const STOP: &str = "/api/v1/stop";
pub const CLOCK: &str = "/api/v1/clock";
/// The OpenAPI document of the port (the simulator's own).
pub const OPENAPI: &str = "/openapi.json";
/// Prometheus exposition (text format 0.0.4).
pub const METRICS: &str = "/api/v1/metrics";
pub const GPU_DEVICES: &str = "/api/v1/gpu/devices";
pub const GPU_DRIVER: &str = "/api/v1/gpu/driver";

pub const HEALTH: &str = "/health";
pub const LIVEZ: &str = "/livez";
pub const READYZ: &str = "/readyz";

/// The encrypted-inference identity (network-node §3.1).
pub const ENCRYPTED_IDENTITY: &str = "/api/v1/encrypted/identity";
/// HPKE-sealed chat completions (network-node §3.2).
pub const ENCRYPTED_CHAT: &str = "/api/v1/encrypted/chat/completions";
/// Text embeddings for the network node's semantic cache (network-node §3.3).
pub const EMBED: &str = "/api/v1/embed";
