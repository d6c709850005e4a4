//! Throw-away certificates for tests and drills (feature `test-pki`): a CA, a server
//! certificate for `127.0.0.1`/`localhost` signed by it, a client certificate signed by
//! it, and a foreign client certificate signed by another CA — everything the mTLS
//! cases of the network node's client test need (network-node §1.6), written as PEM
//! files into a directory.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// PEM files of one test PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub foreign_cert: PathBuf,
    pub foreign_key: PathBuf,
}

impl Pki {
    /// The server's side: its certificate and key, and with `mtls` the CA that client
    /// certificates must be signed by.
    pub fn server(&self, mtls: bool) -> crate::tls::TlsFiles {
        crate::tls::TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: mtls.then(|| self.ca.clone()),
        }
    }
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("mlnode-sim test CA {name}"),
    );
    CertifiedIssuer::self_signed(p, KeyPair::generate()?)
}

fn leaf(
    names: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> Result<(String, String), rcgen::Error> {
    let p = CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Generate a PKI into `dir`.
pub fn generate(dir: &Path) -> Result<Pki, Box<dyn std::error::Error>> {
    let ours = ca("ours")?;
    let theirs = ca("foreign")?;
    let (server_cert, server_key) = leaf(&["127.0.0.1", "localhost"], &ours)?;
    let (client_cert, client_key) = leaf(&["network-node"], &ours)?;
    let (foreign_cert, foreign_key) = leaf(&["intruder"], &theirs)?;
    let write = |name: &str, text: &str| -> std::io::Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    Ok(Pki {
        ca: write("ca.pem", &ours.pem())?,
        server_cert: write("server.pem", &server_cert)?,
        server_key: write("server.key", &server_key)?,
        client_cert: write("client.pem", &client_cert)?,
        client_key: write("client.key", &client_key)?,
        foreign_cert: write("foreign.pem", &foreign_cert)?,
        foreign_key: write("foreign.key", &foreign_key)?,
    })
}
