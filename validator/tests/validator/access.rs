//! A node reached the way the network node reaches it: through a version segment in the
//! URL, behind a gateway's bearer token, over TLS and mTLS (`--auth-token`, `--ca-cert`,
//! `--client-cert/--client-key`). The same validation, the same verdict.

use crate::util::*;

#[tokio::test]
async fn a_versioned_url_behind_a_token_passes_and_the_token_is_never_written() {
    let h = sim_builder(deployed())
        .auth_token("s3cret-token")
        .start()
        .await
        .unwrap();
    let url = format!("{}/v3.0.8", h.uri());
    // Without the token: every call is a 401 that the run names.
    let (out, text, _dir) = validate(&url, QWEN, &["--skip-download", "--skip-deploy"]).await;
    assert_eq!(out.exit_code, 1, "{text}");
    assert!(text.contains("401"), "{text}");
    // With it: PASS, every call under /v3.0.8.
    let (out, text, dir) = validate(
        &url,
        QWEN,
        &[
            "--skip-download",
            "--skip-deploy",
            "--auth-token",
            "s3cret-token",
        ],
    )
    .await;
    assert_eq!(out.exit_code, 0, "{text}");
    let journal = h.sim().journal.tail(1000);
    assert!(!journal.is_empty());
    let versioned = journal
        .iter()
        .filter(|e| e.status != 401)
        .all(|e| e.version.as_deref() == Some("v3.0.8"));
    assert!(versioned, "{journal:?}");
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(!text.contains("s3cret-token"), "{}", entry.path().display());
        }
        for inner in std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(inner.path()).unwrap_or_default();
            assert!(!text.contains("s3cret-token"), "{}", inner.path().display());
        }
    }
    assert!(!text.contains("s3cret-token"));
}

#[tokio::test]
async fn tls_and_mtls_with_the_ca_and_the_client_certificate() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = mlnode_sim::test_pki::generate(pki_dir.path()).unwrap();
    let h = sim_builder(deployed())
        .tls(&pki.server(true))
        .unwrap()
        .start()
        .await
        .unwrap();
    let url = format!("{}/v3.0.8", h.uri());
    let ca = pki.ca.display().to_string();
    let (cert, key) = (
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string(),
    );
    let skip = ["--skip-download", "--skip-deploy"];
    let (out, text, _d) = validate(
        &url,
        QWEN,
        &[
            &skip[..],
            &[
                "--ca-cert",
                &ca,
                "--client-cert",
                &cert,
                "--client-key",
                &key,
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(out.exit_code, 0, "{text}");
    // No client certificate: refused at the handshake, named as a transport failure.
    let (out, text, _d) = validate(&url, QWEN, &[&skip[..], &["--ca-cert", &ca]].concat()).await;
    assert_eq!(out.exit_code, 1, "{text}");
    // A foreign client certificate: refused too.
    let (fc, fk) = (
        pki.foreign_cert.display().to_string(),
        pki.foreign_key.display().to_string(),
    );
    let (out, text, _d) = validate(
        &url,
        QWEN,
        &[
            &skip[..],
            &["--ca-cert", &ca, "--client-cert", &fc, "--client-key", &fk],
        ]
        .concat(),
    )
    .await;
    assert_eq!(out.exit_code, 1, "{text}");
}

/// Bad access input: a clear error naming the flag, exit 1, reports still written.
#[tokio::test]
async fn bad_access_files_are_named() {
    let h = spawn_sim(deployed()).await;
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("ca.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let (out, text, rdir) = validate(&h.uri(), QWEN, &["--ca-cert", bogus.to_str().unwrap()]).await;
    assert_eq!(out.exit_code, 1, "{text}");
    assert!(text.contains("--ca-cert"), "{text}");
    assert!(out.reports.is_some(), "reports are written");
    drop(rdir);
}
