//! The encrypted-inference envelope (network-node §3.1–3.2): a node identity (X25519),
//! HPKE base mode with DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305,
//! the request and response AAD layouts, the response key exported from the HPKE
//! context, and a replay store per node.
//!
//! The simulator's identity is deterministic (derived from the node's seed), so a test
//! or a drill can pin it; the key id is the real rule: the first 8 bytes of
//! SHA-256(public key), in hex. [`seal_request`] / [`open_response`] are the client's
//! half, for tests and the contract checker.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305 as ResponseAead;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// HPKE suite ids (RFC 9180): DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
pub const KEM_ID: u16 = 0x0020;
pub const KDF_ID: u16 = 0x0001;
pub const AEAD_ID: u16 = 0x0003;
pub const ENVELOPE_VERSION: u32 = 1;
const HPKE_INFO: &[u8] = b"gonka/devshard/hpke-info/v1";
const AAD_REQUEST: &[u8] = b"gonka/devshard/req/v1";
const AAD_RESPONSE: &[u8] = b"gonka/devshard/resp/v1";
const EXPORT_RESPONSE: &[u8] = b"gonka/devshard/response-key/v1";
/// The provider name of the simulator's identity.
pub const PROVIDER: &str = "sim-deterministic";
/// (session, nonce) pairs remembered for replay detection per node.
pub const REPLAY_WINDOW: usize = 65_536;

type Kem = X25519HkdfSha256;

/// `GET /api/v1/encrypted/identity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdentityResponse {
    pub provider: String,
    pub envelope_version: String,
    /// Standard base64 of the 32-byte X25519 public key.
    pub public_key: String,
    /// Hex of the first 8 bytes of SHA-256(public key).
    pub key_id: String,
    pub quote: Option<String>,
    pub measurement: String,
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The request envelope (`EncryptedRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EncryptedRequest {
    #[serde(default = "one")]
    #[schema(minimum = 1)]
    pub version: i64,
    pub session_id: String,
    /// Per-session nonce, ≥ 0 (an int64 on the wire: the document's bound).
    #[schema(minimum = 0)]
    pub nonce: i64,
    /// Hex of the first 8 bytes of SHA-256 of the recipient node's public key.
    #[schema(pattern = "^[0-9a-f]{16}$", min_length = 16, max_length = 16)]
    pub recipient_key_id: String,
    #[serde(default = "kem")]
    pub kem_id: i64,
    #[serde(default = "kdf")]
    pub kdf_id: i64,
    #[serde(default = "aead")]
    pub aead_id: i64,
    pub enc: String,
    pub prompt_hash: String,
    pub ciphertext: String,
}

fn one() -> i64 {
    1
}
fn kem() -> i64 {
    i64::from(KEM_ID)
}
fn kdf() -> i64 {
    i64::from(KDF_ID)
}
fn aead() -> i64 {
    i64::from(AEAD_ID)
}

/// The response envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EncryptedResponse {
    pub version: u32,
    pub session_id: String,
    pub nonce: i64,
    pub aead_id: i64,
    /// Base64 of the 12-byte AEAD nonce.
    pub response_nonce: String,
    pub ciphertext: String,
}

/// Why an envelope was refused, in the real check order (after schema validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope recipient_key_id={given} does not match this node's key_id={mine}")]
    WrongRecipient { given: String, mine: String },
    #[error("unsupported envelope version: {0}")]
    Version(i64),
    #[error("unsupported HPKE suite (kem={kem}, kdf={kdf}, aead={aead})")]
    Suite { kem: i64, kdf: i64, aead: i64 },
    #[error("envelope failed to open (corrupt or tampered)")]
    Corrupt,
    #[error("nonce {nonce} was already used in session {session}: replay refused")]
    Replay { session: String, nonce: i64 },
}

/// A node's encrypted-inference identity and replay store.
pub struct Identity {
    sk: <Kem as hpke::Kem>::PrivateKey,
    pk: Vec<u8>,
    key_id: String,
    seen: Mutex<Seen>,
}

/// The (session, nonce) pairs seen, with their arrival order for eviction.
type Seen = (HashSet<(String, i64)>, VecDeque<(String, i64)>);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// The key id of a public key: hex of SHA-256(pk)[..8].
pub fn key_id(pk: &[u8]) -> String {
    Sha256::digest(pk)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn request_aad(session: &str, nonce: i64, prompt_hash: &[u8]) -> Vec<u8> {
    [AAD_REQUEST, session.as_bytes(), &be(nonce), prompt_hash].join(&0u8)
}

fn response_aad(session: &str, nonce: i64) -> Vec<u8> {
    [AAD_RESPONSE, session.as_bytes(), &be(nonce)].join(&0u8)
}

/// The nonce as 8 big-endian bytes (unsigned on the wire; a negative nonce is refused
/// by the schema check before it gets here).
fn be(nonce: i64) -> [u8; 8] {
    nonce.to_be_bytes()
}

impl Identity {
    /// The identity of the node with `seed` (same seed, same key).
    pub fn from_seed(seed: u64) -> Self {
        let mut ikm = Sha256::new();
        ikm.update(b"mlnode-sim encrypted identity");
        ikm.update(seed.to_le_bytes());
        let (sk, pk) = Kem::derive_keypair(&ikm.finalize());
        let pk = pk.to_bytes().to_vec();
        Identity {
            key_id: key_id(&pk),
            sk,
            pk,
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_key(&self) -> &[u8] {
        &self.pk
    }

    /// The identity answer.
    pub fn describe(&self) -> IdentityResponse {
        IdentityResponse {
            provider: PROVIDER.into(),
            envelope_version: "v1".into(),
            public_key: B64.encode(&self.pk),
            key_id: self.key_id.clone(),
            quote: None,
            measurement: String::new(),
            extra: serde_json::Map::new(),
        }
    }

    /// Open a request envelope: recipient, version and suite, the HPKE open, then the
    /// replay check (a failed open does not burn the nonce). Returns the plaintext and
    /// the response key.
    pub fn open(&self, req: &EncryptedRequest) -> Result<(Vec<u8>, [u8; 32]), EnvelopeError> {
        if req.recipient_key_id != self.key_id {
            return Err(EnvelopeError::WrongRecipient {
                given: req.recipient_key_id.clone(),
                mine: self.key_id.clone(),
            });
        }
        if req.version != i64::from(ENVELOPE_VERSION) {
            return Err(EnvelopeError::Version(req.version));
        }
        if (req.kem_id, req.kdf_id, req.aead_id) != (kem(), kdf(), aead()) {
            return Err(EnvelopeError::Suite {
                kem: req.kem_id,
                kdf: req.kdf_id,
                aead: req.aead_id,
            });
        }
        let decode = |s: &str| B64.decode(s).map_err(|_| EnvelopeError::Corrupt);
        let enc = decode(&req.enc)?;
        let ct = decode(&req.ciphertext)?;
        let ph = decode(&req.prompt_hash)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc)
            .map_err(|_| EnvelopeError::Corrupt)?;
        let mut ctx = hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.sk,
            &enc,
            HPKE_INFO,
        )
        .map_err(|_| EnvelopeError::Corrupt)?;
        let plaintext = ctx
            .open(&ct, &request_aad(&req.session_id, req.nonce, &ph))
            .map_err(|_| EnvelopeError::Corrupt)?;
        let mut key = [0u8; 32];
        ctx.export(EXPORT_RESPONSE, &mut key)
            .map_err(|_| EnvelopeError::Corrupt)?;
        self.remember(&req.session_id, req.nonce)?;
        Ok((plaintext, key))
    }

    fn remember(&self, session: &str, nonce: i64) -> Result<(), EnvelopeError> {
        let mut g = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = (session.to_owned(), nonce);
        if g.0.contains(&key) {
            return Err(EnvelopeError::Replay {
                session: session.to_owned(),
                nonce,
            });
        }
        if g.1.len() >= REPLAY_WINDOW {
            if let Some(old) = g.1.pop_front() {
                g.0.remove(&old);
            }
        }
        g.0.insert(key.clone());
        g.1.push_back(key);
        Ok(())
    }
}

/// Seal `plaintext` (a JSON body) as the response to (`session`, `nonce`).
pub fn seal_response(
    key: &[u8; 32],
    session: &str,
    nonce: i64,
    plaintext: &[u8],
) -> EncryptedResponse {
    let mut nonce_bytes = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce_bytes);
    let ct = ResponseAead::new(key.into())
        .encrypt(
            (&nonce_bytes).into(),
            Payload {
                msg: plaintext,
                aad: &response_aad(session, nonce),
            },
        )
        .unwrap_or_default();
    EncryptedResponse {
        version: ENVELOPE_VERSION,
        session_id: session.to_owned(),
        nonce,
        aead_id: aead(),
        response_nonce: B64.encode(nonce_bytes),
        ciphertext: B64.encode(ct),
    }
}

/// The client's half: seal `plaintext` for the node whose public key is `pk`. Returns
/// the envelope and the response key to open the answer with.
pub fn seal_request(
    pk: &[u8],
    session: &str,
    nonce: i64,
    plaintext: &[u8],
) -> Result<(EncryptedRequest, [u8; 32]), String> {
    let pkr = <Kem as hpke::Kem>::PublicKey::from_bytes(pk).map_err(|e| e.to_string())?;
    let (enc, mut ctx) = hpke::setup_sender::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pkr,
        HPKE_INFO,
        &mut rand::rng(),
    )
    .map_err(|e| e.to_string())?;
    let ph = Sha256::digest(plaintext);
    let ct = ctx
        .seal(plaintext, &request_aad(session, nonce, &ph))
        .map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    ctx.export(EXPORT_RESPONSE, &mut key)
        .map_err(|e| e.to_string())?;
    Ok((
        EncryptedRequest {
            version: i64::from(ENVELOPE_VERSION),
            session_id: session.to_owned(),
            nonce,
            recipient_key_id: key_id(pk),
            kem_id: kem(),
            kdf_id: kdf(),
            aead_id: aead(),
            enc: B64.encode(enc.to_bytes()),
            prompt_hash: B64.encode(ph),
            ciphertext: B64.encode(ct),
        },
        key,
    ))
}

/// The client's half: open a response envelope with the key [`seal_request`] gave.
pub fn open_response(key: &[u8; 32], resp: &EncryptedResponse) -> Result<Vec<u8>, String> {
    let nonce = B64
        .decode(&resp.response_nonce)
        .map_err(|e| e.to_string())?;
    if nonce.len() != 12 {
        return Err(format!("response_nonce has {} bytes, not 12", nonce.len()));
    }
    let ct = B64.decode(&resp.ciphertext).map_err(|e| e.to_string())?;
    ResponseAead::new(key.into())
        .decrypt(
            nonce.as_slice().into(),
            Payload {
                msg: &ct,
                aad: &response_aad(&resp.session_id, resp.nonce),
            },
        )
        .map_err(|_| "the response does not open with the response key".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_request_opens_once_and_the_answer_opens_with_the_exported_key() {
        let id = Identity::from_seed(7);
        assert_eq!(id.key_id().len(), 16);
        assert_eq!(
            Identity::from_seed(7).key_id(),
            id.key_id(),
            "deterministic"
        );
        assert_ne!(Identity::from_seed(8).key_id(), id.key_id());
        let body = br#"{"model":"m","messages":[]}"#;
        let (env, client_key) = seal_request(id.public_key(), "s1", 3, body).unwrap();
        let (pt, server_key) = id.open(&env).unwrap();
        assert_eq!(pt, body);
        assert_eq!(server_key, client_key);
        let resp = seal_response(&server_key, "s1", 3, b"{}");
        assert_eq!(open_response(&client_key, &resp).unwrap(), b"{}");
        assert!(matches!(id.open(&env), Err(EnvelopeError::Replay { .. })));
    }

    #[test]
    fn tampering_and_wrong_suites_are_named() {
        let id = Identity::from_seed(1);
        let (env, _) = seal_request(id.public_key(), "s", 1, b"{}").unwrap();
        let mut bad = env.clone();
        bad.prompt_hash = B64.encode([0u8; 32]);
        assert_eq!(id.open(&bad), Err(EnvelopeError::Corrupt));
        let mut bad = env.clone();
        bad.recipient_key_id = "0000000000000000".into();
        assert!(matches!(
            id.open(&bad),
            Err(EnvelopeError::WrongRecipient { .. })
        ));
        let mut bad = env.clone();
        bad.version = 2;
        assert_eq!(
            id.open(&bad).unwrap_err().to_string(),
            "unsupported envelope version: 2"
        );
        let mut bad = env.clone();
        bad.aead_id = 1;
        assert_eq!(
            id.open(&bad).unwrap_err().to_string(),
            "unsupported HPKE suite (kem=32, kdf=1, aead=1)"
        );
        // A failed open does not burn the nonce.
        assert!(id.open(&env).is_ok());
    }
}
