//! A real, independent client against the emulator: Python msal over TLS.
//! Needs `SYNCLINE_TEST_PYTHON` (a Python with `tests/requirements.txt`
//! installed); fails, never skips, when it is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use syncline_sim_d365::{Config, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_obtains_a_token_over_tls_and_reads_odata() {
    let python = std::env::var("SYNCLINE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "SYNCLINE_TEST_PYTHON is not set: point it at a Python interpreter with tests/requirements.txt installed \
             (python3 -m venv /work/venv && /work/venv/bin/pip install -r tests/requirements.txt; \
             export SYNCLINE_TEST_PYTHON=/work/venv/bin/python)"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("d365-emulator-ca.pem");
    let emu = start(Config {
        tls: Some(pem.clone()),
        ..Config::default()
    })
    .await
    .unwrap();
    let info = emu.info();
    assert!(info.url.starts_with("https://127.0.0.1:"), "{}", info.url);
    assert!(
        std::fs::read_to_string(&pem)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/contract/d365_msal_client.py");
    let info_json = serde_json::to_string(&info).unwrap();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .env("D365_SIM_INFO", info_json)
            .env("D365_SIM_CA", &pem)
            .env("REQUESTS_CA_BUNDLE", &pem)
            .output()
    });
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("python client timed out")
        .unwrap()
        .expect("could not run SYNCLINE_TEST_PYTHON");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("all checks ok"), "{stdout}");

    // The emulator saw msal's discovery and token calls, then the OData reads.
    let paths: Vec<String> = emu
        .control()
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("/v2.0/.well-known/openid-configuration")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("/oauth2/v2.0/token")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p == "/data/CustomersV3"), "{paths:?}");
    drop(dir);
    emu.shutdown().await;
}

/// The connector's stack (reqwest + rustls/webpki) trusts the written CA too.
#[tokio::test]
async fn rustls_client_trusts_the_written_ca() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("nested/ca.pem");
    let emu = start(Config {
        tls: Some(pem.clone()),
        ..Config::default()
    })
    .await
    .unwrap();
    let info = emu.info();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pem).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let token: serde_json::Value = http
        .post(&info.token_url)
        .form(&[
            ("client_id", info.client_id.as_str()),
            ("client_secret", info.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", &format!("{}/.default", info.url)),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .get(format!("{}/data/ReleasedProductsV2?$top=2", info.url))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    // Also by name: the certificate covers localhost.
    let r = http
        .get(format!(
            "https://localhost:{}/data/",
            emu.local_addr().port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    emu.shutdown().await;
}
