//! TLS and mTLS on a node's listeners (rustls, `ring` provider).
//!
//! A real node is reached over TLS when its operator puts a terminating proxy in front
//! of it, with client certificates when the network node pins its own (network-node
//! §1.6: `TestClientFactoryMTLS` — a pinned client certificate works, none or a foreign
//! one is refused at the handshake). `--tls-cert`/`--tls-key` turn TLS on for both
//! ports; `--tls-client-ca` makes a client certificate signed by that CA mandatory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the server's certificate material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle: when set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

/// Why TLS could not be set up; each names the file and what to give instead.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {path}: {why} (give a PEM file with the server's certificate chain)")]
    Cert { path: String, why: String },
    #[error("--tls-key {path}: {why} (give the PEM private key of --tls-cert)")]
    Key { path: String, why: String },
    #[error("--tls-client-ca {path}: {why} (give a PEM bundle of the CA that signs client certificates)")]
    ClientCa { path: String, why: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in the file".into());
    }
    Ok(certs)
}

/// Build the acceptor both ports share.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    // `ring` rather than aws-lc-rs: no C toolchain beyond cc needed to build. Its
    // provider is marked deprecated for lacking post-quantum key exchange, which the
    // network node's client does not offer either.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&files.cert).map_err(|why| TlsError::Cert {
        path: files.cert.display().to_string(),
        why,
    })?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.display().to_string(),
        why: e.to_string(),
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let bad = |why: String| TlsError::ClientCa {
                path: ca.display().to_string(),
                why,
            };
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca).map_err(bad)? {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Key {
            path: files.key.display().to_string(),
            why: format!("does not fit the certificate: {e}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
