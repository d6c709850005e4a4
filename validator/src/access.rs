//! How a client reaches a node that sits behind what a real deployment puts in front of
//! it (network-node §1): a managed endpoint's bearer token, TLS with a private CA, and
//! a client certificate for mTLS. One set of flags for `mlnode-validate`,
//! `mlnode-make-artifact` and `mlnode-conformance`, resolved once into an
//! [`reqwest::Client`].
//!
//! The version prefix needs no flag: it is part of the URL
//! (`--mlnode-url http://host:8080/v3.0.8`), and every call appends its path to it.

use std::path::{Path, PathBuf};

/// The access flags (flattened into each tool's CLI).
#[derive(Clone, Default, clap::Args)]
pub struct Access {
    /// Send `Authorization: Bearer TOKEN` on every call (a node behind a managed
    /// endpoint's gateway). Never printed or written to a report.
    #[arg(
        long,
        env = "MLNODE_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Access"
    )]
    pub auth_token: Option<String>,
    /// PEM CA bundle to trust for an https:// node (added to the public roots).
    #[arg(long, value_name = "PEM", help_heading = "Access")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for mTLS (needs --client-key).
    #[arg(
        long,
        value_name = "PEM",
        requires = "client_key",
        help_heading = "Access"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(
        long,
        value_name = "PEM",
        requires = "client_cert",
        help_heading = "Access"
    )]
    pub client_key: Option<PathBuf>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_cert", &self.ca_cert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .finish()
    }
}

/// Why the access settings cannot be used; each names the flag and the file.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("--{flag} {path}: {why}")]
    File {
        flag: &'static str,
        path: String,
        why: String,
    },
    #[error("--auth-token (or MLNODE_AUTH_TOKEN): {0}")]
    Token(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, AccessError> {
    let bad = |why: String| AccessError::File {
        flag,
        path: path.display().to_string(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > 1 << 20 {
        return Err(bad(format!(
            "{} bytes: a PEM file is a few KB (over the 1 MiB cap)",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| bad(e.to_string()))
}

impl Access {
    /// Whether any access setting is given.
    pub fn is_set(&self) -> bool {
        self.auth_token.is_some()
            || self.ca_cert.is_some()
            || self.client_cert.is_some()
            || self.client_key.is_some()
    }

    /// The HTTP client for one run: redirects never followed (a 307 would resend the
    /// reference elsewhere), the token on every call, the CA and identity as given.
    pub fn client(&self) -> Result<reqwest::Client, AccessError> {
        let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(token) = &self.auth_token {
            if token.trim().is_empty() {
                return Err(AccessError::Token(
                    "empty: give the node's token, or leave it unset".into(),
                ));
            }
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| {
                    AccessError::Token(
                        "has characters a header cannot carry (control characters or non-ASCII)"
                            .into(),
                    )
                })?;
            value.set_sensitive(true);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value);
            b = b.default_headers(headers);
        }
        if let Some(ca) = &self.ca_cert {
            let pem = read("ca-cert", ca)?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| AccessError::File {
                    flag: "ca-cert",
                    path: ca.display().to_string(),
                    why: format!("not a PEM certificate bundle ({e})"),
                })?;
            if certs.is_empty() {
                return Err(AccessError::File {
                    flag: "ca-cert",
                    path: ca.display().to_string(),
                    why: "no PEM certificate in the file".into(),
                });
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            let mut pem = read("client-cert", cert)?;
            pem.push(b'\n');
            pem.extend(read("client-key", key)?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| AccessError::File {
                flag: "client-cert",
                path: cert.display().to_string(),
                why: format!("with --client-key, not a PEM certificate and private key ({e})"),
            })?;
            b = b.identity(id);
        }
        b.build().map_err(|e| AccessError::Client(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_never_printed() {
        let a = Access {
            auth_token: Some("s3cret".into()),
            ..Access::default()
        };
        assert!(!format!("{a:?}").contains("s3cret"));
        assert!(a.client().is_ok());
    }

    #[test]
    fn bad_files_name_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let a = Access {
            ca_cert: Some(p),
            ..Access::default()
        };
        let e = a.client().unwrap_err().to_string();
        assert!(e.starts_with("--ca-cert"), "{e}");
        let a = Access {
            ca_cert: Some(dir.path().to_path_buf()),
            ..Access::default()
        };
        assert!(a
            .client()
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
        let a = Access {
            auth_token: Some(" ".into()),
            ..Access::default()
        };
        assert!(a.client().unwrap_err().to_string().contains("empty"));
    }
}
