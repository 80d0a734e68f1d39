//! The `syncline` binary as a newcomer and an operator use it: real processes, real signals,
//! real databases.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use syncline_store::testing;

const BIN: &str = env!("CARGO_BIN_EXE_syncline");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `syncline` process with a clean environment, killed if the test fails.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SYNCLINE_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/healthz", self.base)).await {
                assert_eq!(response.status(), 200);
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("syncline exited early with {status}: {}", self.stderr());
            }
            assert!(Instant::now() < deadline, "syncline did not start serving");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "syncline did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn embedded_default_needs_no_configuration_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[], &[]);
    server.wait_until_serving().await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["sqlite"], "ok");
    assert!(
        dir.path().join("data/syncline.db").is_file(),
        "the SQLite file is in ./data"
    );

    server.signal("INT");
    let status = server.wait(Duration::from_secs(15));
    assert!(status.success(), "Ctrl-C exits 0, got {status}");
    let log = server.stderr();
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn sigterm_finishes_an_in_flight_request_before_exiting() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[], &["serve", "--role", "all"]);
    server.wait_until_serving().await;
    // A request whose headers are half sent when the signal arrives is in flight: it must still
    // be answered, and only then may the process exit.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    stream
        .write_all(b"Connection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let status = server.wait(Duration::from_secs(15));
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(
        reqwest::get(format!("{}/healthz", server.base))
            .await
            .is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn cluster_mode_is_ready_with_postgres_and_redis_and_names_redis_when_it_is_down() {
    let redis = std::env::var("SYNCLINE_TEST_REDIS_URL")
        .expect("SYNCLINE_TEST_REDIS_URL (run tests/run.sh)");
    let db = testing::postgres().await;
    let dir = tempfile::tempdir().unwrap();

    let mut server = Server::start(
        dir.path(),
        &[("DATABASE_URL", &db.url), ("REDIS_URL", &redis)],
        &["serve"],
    );
    server.wait_until_serving().await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
    assert!(
        !dir.path().join("data/syncline.db").exists(),
        "no SQLite file in cluster mode"
    );
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).success());

    let closed = format!("redis://127.0.0.1:{}", free_port());
    let mut server = Server::start(
        dir.path(),
        &[("DATABASE_URL", &db.url), ("REDIS_URL", &closed)],
        &["serve"],
    );
    server.wait_until_serving().await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["redis"]));
}

#[tokio::test]
async fn unreachable_database_fails_with_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://syncline:secret-pw@127.0.0.1:{}/syncline",
        free_port()
    );
    let mut server = Server::start(dir.path(), &[("DATABASE_URL", &url)], &["serve"]);
    let status = server.wait(Duration::from_secs(30));
    assert!(!status.success(), "non-zero exit");
    let stderr = server.stderr();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cannot connect to the PostgreSQL database: 127.0.0.1:"),
        "{stderr}"
    );
    assert!(last.contains("refused"), "names the cause: {last}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("secret-pw"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_creates_the_schema_and_is_idempotent() {
    let db = testing::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let output = Command::new(BIN)
            .arg("migrate")
            .current_dir(dir.path())
            .env_clear()
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        db.store.list_tenants().await.unwrap().is_empty(),
        "the tenants table exists"
    );
}

fn admin(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.arg("admin").args(args).current_dir(dir).env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[tokio::test]
async fn bootstrap_runs_once_and_create_tenant_prints_the_link_when_email_is_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    let first = admin(
        dir.path(),
        &[],
        &["bootstrap", "--email", "root@example.test"],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("One-time password: "))
        .expect("a one-time password is printed");
    assert!(password.len() >= 12);

    let second = admin(
        dir.path(),
        &[],
        &["bootstrap", "--email", "other@example.test"],
    );
    assert!(!second.status.success(), "bootstrap refuses to run twice");
    assert!(String::from_utf8_lossy(&second.stderr).contains("already exists"));

    let chosen = tempfile::tempdir().unwrap();
    let output = admin(
        chosen.path(),
        &[("SYNCLINE_BOOTSTRAP_PASSWORD", "chosen by the operator")],
        &["bootstrap", "--email", "ops@example.test"],
    );
    assert!(output.status.success());
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("chosen by the operator"),
        "a given password is not echoed"
    );

    let created = admin(
        dir.path(),
        &[],
        &[
            "create-tenant",
            "--name",
            "Globex Corporation",
            "--owner-email",
            "owner@globex.test",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(
        stdout.contains("Tenant created: Globex Corporation (globex-corporation"),
        "{stdout}"
    );
    assert!(
        stdout.contains("http://127.0.0.1:8080/invite/"),
        "the invitation link is printed: {stdout}"
    );

    let duplicate = admin(
        dir.path(),
        &[],
        &[
            "create-tenant",
            "--name",
            "Globex Corporation",
            "--owner-email",
            "x@globex.test",
        ],
    );
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("slug: This slug is taken"));
    let listed = admin(dir.path(), &[], &["tenants"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("globex-corporation"));
}

#[tokio::test]
async fn sim_prints_how_to_reach_both_emulators_and_they_answer() {
    use std::io::BufRead;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "sim",
            "--shopify-listen",
            "127.0.0.1:0",
            "--d365-listen",
            "127.0.0.1:0",
            "--seed",
            "7",
        ])
        .current_dir(dir.path())
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let info: serde_json::Value = serde_json::from_str(&first_line).unwrap();
    let client = reqwest::Client::new();

    let shopify = &info["shopify"];
    let graphql = format!(
        "{}/admin/api/{}/graphql.json",
        shopify["url"].as_str().unwrap(),
        shopify["api_version"].as_str().unwrap()
    );
    let answer: serde_json::Value = client
        .post(&graphql)
        .header(
            "X-Shopify-Access-Token",
            shopify["access_token"].as_str().unwrap(),
        )
        .json(&serde_json::json!({ "query": "{ shop { name currencyCode } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["data"]["shop"]["name"].is_string(), "{answer}");

    let d365 = &info["d365"];
    let token: serde_json::Value = client
        .post(d365["token_url"].as_str().unwrap())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", d365["client_id"].as_str().unwrap()),
            ("client_secret", d365["client_secret"].as_str().unwrap()),
            (
                "scope",
                &format!("{}/.default", d365["url"].as_str().unwrap()),
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["token_type"], "Bearer", "{token}");
    assert_eq!(d365["data_area_id"], "usmf");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "sim did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success());
}

#[tokio::test]
async fn rotate_master_key_keeps_every_secret_readable_and_old_keys_alone_no_longer_suffice() {
    use secrecy::{ExposeSecret, SecretString};
    use syncline_store::crypto::{Keyring, MasterKey};
    use syncline_store::{NewTenant, SqliteSettings, Store, StoreOptions};

    let dir = tempfile::tempdir().unwrap();
    let migrated = Command::new(BIN)
        .arg("migrate")
        .current_dir(dir.path())
        .env_clear()
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let key_path = dir.path().join("data/master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the generated master key is private");
    }
    let ring_from = |text: &str| {
        let mut keys: Vec<MasterKey> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| MasterKey::parse(l).unwrap())
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.version()));
        let mut keys = keys.into_iter();
        let mut ring = Keyring::new(keys.next().unwrap());
        for key in keys {
            ring = ring.with_previous(key).unwrap();
        }
        ring
    };
    let original = std::fs::read_to_string(&key_path).unwrap();
    let open = |ring: Keyring| {
        let path = dir.path().join("data/syncline.db");
        async move {
            Store::connect(&StoreOptions::Sqlite(SqliteSettings { path }))
                .await
                .unwrap()
                .with_keyring(ring)
        }
    };
    let store = open(ring_from(&original)).await;
    let tenant = store
        .create_tenant(&NewTenant {
            slug: "rot".into(),
            name: "Rot".into(),
        })
        .await
        .unwrap();
    store
        .put_secret(
            tenant.id,
            "connection:x:client_secret",
            &SecretString::from("rotate-me".to_owned()),
        )
        .await
        .unwrap();
    store.close().await;

    let rotated = Command::new(BIN)
        .args(["admin", "rotate-master-key", "--wait", "0"])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        String::from_utf8_lossy(&rotated.stdout).contains("Re-wrapped 1 tenant data keys"),
        "{}",
        String::from_utf8_lossy(&rotated.stdout)
    );
    let new_text = std::fs::read_to_string(&key_path).unwrap();
    assert!(
        new_text.contains("v2:") && new_text.contains("v1:"),
        "both keys stay in the file"
    );

    let store = open(ring_from(&new_text)).await;
    let value = store
        .reveal_secret(
            tenant.id,
            "connection:x:client_secret",
            "test",
            "after rotation",
        )
        .await
        .unwrap();
    assert_eq!(value.expose_secret(), "rotate-me");
    store.close().await;
    let old_only = open(ring_from(&original)).await;
    assert!(
        old_only
            .reveal_secret(tenant.id, "connection:x:client_secret", "test", "old key")
            .await
            .is_err(),
        "the data key is now wrapped by v2"
    );
}
