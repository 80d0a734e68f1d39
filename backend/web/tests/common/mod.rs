//! `spawn_app()`: the real application on port 0 with a fresh database, and typed helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use syncline_runner::{Dispatcher, InProcessDispatcher, RedisDispatcher, RedisDispatcherOptions};
use syncline_store::testing::{self, TestDatabase};
use syncline_store::{NewUser, Role, Store, TenantId, UserId};
use syncline_web::auth::throttle::{LoginThrottle, RedisCounter, ThrottlePolicy};
use syncline_web::mail::Mailer;
use syncline_web::{AppState, Application, WebSettings};
use tokio_util::sync::CancellationToken;

pub const SESSION_SECRET: &[u8] = b"test-session-secret-that-is-long-enough-123";
pub const PASSWORD: &str = "correct horse battery staple";
pub const SHOPIFY_APP_SECRET: &str = "shopify-app-secret-for-tests";

/// Which backends a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SQLite + in-process dispatcher + in-memory throttle.
    Embedded,
    /// PostgreSQL + Redis dispatcher + Redis throttle.
    Cluster,
}

pub const MODES: [Mode; 2] = [Mode::Embedded, Mode::Cluster];

/// Everything the tests log, so they can assert that no secret was ever written.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=warn,hyper=info,lettre=info,redis=info")
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!("{name} is not set: run tests/run.sh, which starts the services the tests need.")
        })
}

pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub mode: Mode,
    pub sandbox: Arc<syncline_web::sandbox::BuiltInSandbox>,
    pub db_url: String,
    /// The dispatcher the web layer announces work on (for tests that also run workers).
    pub dispatcher: Arc<dyn Dispatcher>,
    stop: CancellationToken,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn spawn_app(mode: Mode) -> TestApp {
    spawn_app_with(mode, ThrottlePolicy::default()).await
}

pub async fn spawn_app_with(mode: Mode, policy: ThrottlePolicy) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    captured_logs();
    let (db, dispatcher, throttle): (TestDatabase, Arc<dyn Dispatcher>, LoginThrottle) = match mode
    {
        Mode::Embedded => (
            testing::sqlite().await,
            Arc::new(InProcessDispatcher::new()),
            LoginThrottle::new(
                Box::new(syncline_web::auth::throttle::MemoryCounter::default()),
                policy,
            ),
        ),
        Mode::Cluster => {
            let redis = env("SYNCLINE_TEST_REDIS_URL");
            let mut options = RedisDispatcherOptions::new(redis.clone());
            options.stream = format!("test:{}", uuid::Uuid::new_v4());
            (
                testing::postgres().await,
                Arc::new(RedisDispatcher::new(options).unwrap()),
                LoginThrottle::new(Box::new(RedisCounter::new(&redis).unwrap()), policy)
                    .namespaced(&format!("test-login-{}", uuid::Uuid::new_v4())),
            )
        }
    };
    let mailer = Mailer::new(
        Some(&env("SYNCLINE_TEST_SMTP_URL")),
        "Syncline Tests <noreply@syncline.test>",
    )
    .unwrap();
    // The emulators take their ports first: probing ours before would let them take it.
    let sandbox = Arc::new(
        syncline_web::sandbox::BuiltInSandbox::start()
            .await
            .unwrap(),
    );
    // The port is known only after binding, and links in emails need it: bind first.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let settings = WebSettings {
        public_url: format!("http://{address}").parse().unwrap(),
        session_secret: SESSION_SECRET.to_vec(),
        mailer,
        throttle,
        shopify_app: Some(syncline_web::ShopifyApp {
            client_id: "test-app-client-id".into(),
            client_secret: secrecy::SecretString::from(SHOPIFY_APP_SECRET.to_owned()),
            // Shops live in the emulator, so the OAuth install can complete for real.
            oauth_base: Some(format!(
                "{}/shops/{{name}}",
                sandbox.emulators().shopify.base_url()
            )),
        }),
        sandbox: Some(sandbox.clone() as Arc<dyn syncline_web::sandbox::Sandbox>),
    };
    let state = AppState::new(db.store.clone(), dispatcher.clone(), settings);
    let app = Application::build(address, state).await.unwrap();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));
    TestApp {
        base: format!("http://{address}"),
        store: db.store.clone(),
        mode,
        sandbox,
        db_url: db.url.clone(),
        dispatcher,
        stop,
        _db: db,
    }
}

/// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.test", uuid::Uuid::new_v4().simple())
}

/// The value of the first `name="csrf"` field in a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in:\n{html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A user with a password and, optionally, a role in a tenant.
    pub async fn user(
        &self,
        email: &str,
        tenant: Option<(TenantId, Role)>,
        platform_admin: bool,
    ) -> UserId {
        let hash = syncline_web::auth::password::hash_password(PASSWORD.to_owned())
            .await
            .unwrap();
        let user = self
            .store
            .create_user(&NewUser {
                email: email.into(),
                display_name: "Test".into(),
                password_hash: Some(hash),
                is_platform_admin: platform_admin,
            })
            .await
            .unwrap();
        if let Some((tenant, role)) = tenant {
            self.store
                .upsert_member(tenant, user.id, role)
                .await
                .unwrap();
        }
        user.id
    }

    pub async fn tenant(&self, slug: &str) -> TenantId {
        self.store
            .create_tenant(&syncline_store::NewTenant {
                slug: slug.into(),
                name: format!("Tenant {slug}"),
            })
            .await
            .unwrap()
            .id
    }

    /// Signs in through the login form; returns the client holding the session cookie.
    pub async fn login(&self, email: &str, password: &str) -> (reqwest::Client, reqwest::Response) {
        let client = browser();
        let page = client
            .get(self.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_of(&page);
        let response = client
            .post(self.url("/login"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf", csrf.as_str()),
                ("next", ""),
            ])
            .send()
            .await
            .unwrap();
        (client, response)
    }

    /// Signs in and selects `tenant` if the user has several.
    pub async fn session(&self, email: &str) -> reqwest::Client {
        let (client, response) = self.login(email, PASSWORD).await;
        assert_eq!(
            response.status(),
            303,
            "login of {email} failed: {}",
            response.text().await.unwrap()
        );
        client
    }

    /// The CSRF token the console gives this session.
    pub async fn csrf(&self, client: &reqwest::Client) -> String {
        let page = client
            .get(self.url("/console/account"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_of(&page)
    }

    /// Creates an API key through the API, as the session's user.
    pub async fn api_key(&self, client: &reqwest::Client, role: &str) -> String {
        let csrf = self.csrf(client).await;
        let response = client
            .post(self.url("/api/v1/api-keys"))
            .header("x-csrf-token", csrf)
            .json(&serde_json::json!({ "name": format!("key-{role}"), "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<serde_json::Value>().await.unwrap()["key"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Waits for an email to `to` in the SMTP sink's Maildir and returns its decoded text.
pub async fn wait_for_mail(to: &str) -> String {
    let dir = std::path::PathBuf::from(env("SYNCLINE_TEST_MAILDIR")).join("new");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if raw
                    .lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
                {
                    return decode_body(&raw);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no email to {to} arrived at the SMTP sink"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counts emails to `to` in the Maildir.
pub fn mail_count(to: &str) -> usize {
    let dir = std::path::PathBuf::from(env("SYNCLINE_TEST_MAILDIR")).join("new");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .lines()
                        .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
                })
                .count()
        })
        .unwrap_or(0)
}

fn decode_body(raw: &str) -> String {
    let (headers, body) = raw
        .split_once("\n\n")
        .or_else(|| raw.split_once("\r\n\r\n"))
        .unwrap_or((raw, ""));
    let headers = headers.to_ascii_lowercase();
    if headers.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\r\n", "").replace("=\n", "");
        let mut out = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && u8::from_str_radix(&joined[i + 1..i + 3], 16).is_ok()
            {
                out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    } else if headers.contains("content-transfer-encoding: base64") {
        use base64::Engine;
        let compact: String = body.split_whitespace().collect();
        String::from_utf8_lossy(
            &base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default(),
        )
        .into_owned()
    } else {
        body.to_owned()
    }
}

/// The first link in a text that starts with `prefix`.
pub fn link_in(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no link starting {prefix} in:\n{text}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// The decoded texts of every email to `to` in the Maildir, in no particular order.
pub fn mails_to(to: &str) -> Vec<String> {
    let dir = std::path::PathBuf::from(env("SYNCLINE_TEST_MAILDIR")).join("new");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .filter(|raw| {
                    raw.lines()
                        .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
                })
                .map(|raw| {
                    let subject = raw
                        .lines()
                        .find(|l| l.to_ascii_lowercase().starts_with("subject:"))
                        .unwrap_or("")
                        .to_owned();
                    format!("{subject}\n{}", decode_body(&raw))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until an email to `to` whose subject or text contains `needle` arrives.
pub async fn wait_for_mail_containing(to: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(mail) = mails_to(to).into_iter().find(|m| m.contains(needle)) {
            return mail;
        }
        assert!(
            Instant::now() < deadline,
            "no email to {to} containing {needle:?} arrived; got {:?}",
            mails_to(to)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The default orders mapping template with one rule's source path replaced.
pub fn template_with(target: &str, path: &str) -> serde_json::Value {
    let mut doc: serde_json::Value =
        serde_json::from_str(syncline_core::templates::Flow::Orders.template_json()).unwrap();
    let rule = doc["rules"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["target"] == target)
        .unwrap();
    rule["source"] = serde_json::json!({ "path": path });
    doc
}
