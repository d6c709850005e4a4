//! PoC v2 through the MLNode proxy, `/api/v1/inference/pow/*` (mlnode-api §4.3, §4.6).

use serde::{Deserialize, Serialize};

fn default_k_dim() -> u32 {
    12
}

/// The MLNode-level default `batch_size` (pydantic default, always forwarded).
pub const DEFAULT_BATCH_SIZE: u32 = 32;

/// `params` (`PoCParamsModel`, `extra="forbid"`): an unknown key is a 422.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PoCParams {
    pub model: String,
    pub seq_len: u32,
    #[serde(default = "default_k_dim")]
    pub k_dim: u32,
}

/// The largest `k_dim` a vector may have: the generator draws into fixed 64-wide buffers
/// (real nodes take k_dim ≪ the hidden size; 12 is the protocol's).
pub const MAX_K_DIM: u32 = 64;
/// The longest `seq_len` accepted (the longest context of any shipped model is far below).
pub const MAX_SEQ_LEN: u32 = 1 << 20;

impl PoCParams {
    /// The first field out of range, as `(field, message)`: a node answers 422 for it
    /// instead of failing inside the generator.
    pub fn out_of_range(&self) -> Option<(&'static str, String)> {
        if !(1..=MAX_K_DIM).contains(&self.k_dim) {
            return Some((
                "k_dim",
                format!(
                    "Input should be between 1 and {MAX_K_DIM}, got {}",
                    self.k_dim
                ),
            ));
        }
        if !(1..=MAX_SEQ_LEN).contains(&self.seq_len) {
            return Some((
                "seq_len",
                format!(
                    "Input should be between 1 and {MAX_SEQ_LEN}, got {}",
                    self.seq_len
                ),
            ));
        }
        None
    }
}

/// `{"dtype":"f16","k_dim":12,"endian":"le"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Encoding {
    pub dtype: String,
    pub k_dim: u32,
    pub endian: String,
}

impl Encoding {
    pub fn f16_le(k_dim: u32) -> Self {
        Encoding {
            dtype: "f16".into(),
            k_dim,
            endian: "le".into(),
        }
    }
}

/// `POST /api/v1/inference/pow/init/generate` body. `group_id`/`n_groups` from the client
/// are ignored (the MLNode injects them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InitGenerateRequest {
    pub block_hash: String,
    pub block_height: i64,
    pub public_key: String,
    pub node_id: i64,
    pub node_count: i64,
    /// `None` = absent: the node applies its default (clients that follow the newest skill
    /// leave it out; a reference baked at one batch size drifts at another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    pub params: PoCParams,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub poc_stronger_rng: bool,
}

impl InitGenerateRequest {
    /// The batch size, or `default` when absent.
    pub fn batch_size_or(&self, default: u32) -> u32 {
        self.batch_size.unwrap_or(default)
    }
}

/// What a replica receives: the MLNode body plus its group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaInitGenerateRequest {
    #[serde(flatten)]
    pub base: InitGenerateRequest,
    pub group_id: u32,
    pub n_groups: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortResult {
    pub port: u16,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortError {
    pub port: u16,
    pub error: String,
}

/// `init/generate` 200 body (also returned on partial failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InitGenerateResponse {
    pub status: String,
    pub backends: u32,
    pub n_groups: u32,
    pub results: Vec<PortResult>,
    pub errors: Option<Vec<PortError>>,
}

/// A replica's mining configuration as `/pow/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MiningConfig {
    pub block_hash: String,
    pub block_height: i64,
    pub public_key: String,
    pub node_id: i64,
    pub node_count: i64,
    pub group_id: u32,
    pub n_groups: u32,
    pub seq_len: u32,
    pub k_dim: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MiningStats {
    pub total_processed: u64,
    pub nonces_per_second: f64,
}

/// One entry of `backends` in `/pow/status`: `GENERATING`, `IDLE` or `ERROR` (+ `detail`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendStatus {
    pub port: u16,
    pub status: String,
    #[serde(default)]
    pub config: Option<MiningConfig>,
    #[serde(default)]
    pub stats: Option<MiningStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AggregateStatus {
    NoBackends,
    Generating,
    Idle,
    Mixed,
}

impl AggregateStatus {
    /// all `GENERATING` → `GENERATING`; some → `MIXED`; all `IDLE` → `IDLE`; else `MIXED`.
    pub fn of<'a>(statuses: impl IntoIterator<Item = &'a str>) -> Self {
        let (mut n, mut gen, mut idle) = (0usize, 0usize, 0usize);
        for s in statuses {
            n += 1;
            match s {
                "GENERATING" => gen += 1,
                "IDLE" => idle += 1,
                _ => {}
            }
        }
        if n == 0 {
            AggregateStatus::NoBackends
        } else if gen == n {
            AggregateStatus::Generating
        } else if gen > 0 {
            AggregateStatus::Mixed
        } else if idle == n {
            AggregateStatus::Idle
        } else {
            AggregateStatus::Mixed
        }
    }
}

/// `GET /api/v1/inference/pow/status` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PowStatusResponse {
    pub status: AggregateStatus,
    pub backends: Vec<BackendStatus>,
}

/// `POST /api/v1/inference/pow/stop` body: either no backends, or the fan-out result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum StopResponse {
    Fanout {
        status: String,
        results: Vec<PortResult>,
        errors: Option<Vec<PortError>>,
    },
    NoBackends {
        status: String,
        message: String,
    },
}

/// One artifact: a nonce and its base64 vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Artifact {
    pub nonce: i64,
    pub vector_b64: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationPayload {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Artifact>))]
    pub artifacts: ArtifactList,
}

/// A request's artifacts, stored compactly: every `vector_b64` is appended to one buffer as
/// it is parsed (borrowed from the body where possible), so a 10,000-artifact validation
/// costs a few growing allocations instead of 10,000 `String`s. Serializes back to the
/// same JSON list of `{"nonce", "vector_b64"}` objects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArtifactList {
    nonces: Vec<i64>,
    ends: Vec<usize>,
    text: String,
}

impl ArtifactList {
    pub fn with_capacity(n: usize) -> Self {
        ArtifactList {
            nonces: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
            text: String::with_capacity(n * 32),
        }
    }

    pub fn push(&mut self, nonce: i64, vector_b64: &str) {
        self.text.push_str(vector_b64);
        self.nonces.push(nonce);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.nonces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nonces.is_empty()
    }

    /// The nonces, in order.
    pub fn nonces(&self) -> &[i64] {
        &self.nonces
    }

    /// The i-th artifact.
    pub fn get(&self, i: usize) -> (i64, &str) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (self.nonces[i], &self.text[start..self.ends[i]])
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, &str)> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

impl<'a> FromIterator<&'a Artifact> for ArtifactList {
    fn from_iter<I: IntoIterator<Item = &'a Artifact>>(it: I) -> Self {
        let mut l = ArtifactList::default();
        for a in it {
            l.push(a.nonce, &a.vector_b64);
        }
        l
    }
}

impl From<Vec<Artifact>> for ArtifactList {
    fn from(v: Vec<Artifact>) -> Self {
        v.iter().collect()
    }
}

impl Serialize for ArtifactList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        #[derive(Serialize)]
        struct Item<'a> {
            nonce: i64,
            vector_b64: &'a str,
        }
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for (nonce, vector_b64) in self.iter() {
            seq.serialize_element(&Item { nonce, vector_b64 })?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ArtifactList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Item<'a> {
            nonce: i64,
            #[serde(borrow)]
            vector_b64: std::borrow::Cow<'a, str>,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ArtifactList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of {nonce, vector_b64}")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ArtifactList, A::Error> {
                let mut l = ArtifactList::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(Item { nonce, vector_b64 }) = seq.next_element::<Item<'de>>()? {
                    l.push(nonce, &vector_b64);
                }
                Ok(l)
            }
        }
        d.deserialize_seq(Visitor)
    }
}

/// `stat_test` as sent: every key optional, unknown keys (e.g. `p_value_threshold`) ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatTestOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dist_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_mismatch: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraud_threshold: Option<f64>,
}

/// `POST /api/v1/inference/pow/generate` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerateRequest {
    pub block_hash: String,
    pub block_height: i64,
    pub public_key: String,
    pub node_id: i64,
    pub node_count: i64,
    pub nonces: Vec<i64>,
    pub params: PoCParams,
    /// `None` = absent: the node applies its default (clients that follow the newest skill
    /// leave it out; a reference baked at one batch size drifts at another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationPayload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat_test: Option<StatTestOverrides>,
    #[serde(default)]
    pub poc_stronger_rng: bool,
}

impl GenerateRequest {
    /// The batch size, or `default` when absent.
    pub fn batch_size_or(&self, default: u32) -> u32 {
        self.batch_size.unwrap_or(default)
    }
}

/// The five verdict fields of a validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationResult {
    pub n_total: u64,
    pub n_mismatch: u64,
    pub mismatch_nonces: Vec<i64>,
    pub p_value: f64,
    pub fraud_detected: bool,
}

/// Artifacts computed for explicit nonces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArtifactsResult {
    pub artifacts: Vec<Artifact>,
    pub encoding: Encoding,
}

/// The result part of a completed job: a validation verdict or artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum JobResult {
    Validation(ValidationResult),
    Artifacts(ArtifactsResult),
}

/// `POST /api/v1/inference/pow/generate` 200 body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum GenerateResponse {
    Completed {
        status: String,
        request_id: String,
        #[serde(flatten)]
        result: JobResult,
    },
    Queued {
        status: String,
        request_id: String,
        queued_count: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// `GET /api/v1/inference/pow/generate/{request_id}` 200 body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobPollResponse {
    pub status: JobStatus,
    pub request_id: String,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
