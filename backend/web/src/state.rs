use std::sync::Arc;

use syncline_runner::Dispatcher;
use syncline_store::Store;
use url::Url;

use crate::auth::session::SessionKeys;
use crate::auth::throttle::LoginThrottle;
use crate::mail::Mailer;

/// Settings of the web layer that come from configuration.
pub struct WebSettings {
    /// Public base URL (links in emails; `Secure` cookies when https).
    pub public_url: Url,
    /// Secret for session cookies and CSRF tokens, at least 32 bytes.
    pub session_secret: Vec<u8>,
    /// Outgoing email.
    pub mailer: Mailer,
    /// Brute-force protection for logins.
    pub throttle: LoginThrottle,
    /// The Shopify public app, for OAuth installs; `None` disables them.
    pub shopify_app: Option<crate::oauth::ShopifyApp>,
    /// Built-in emulators for sandbox connections; `None` disables them.
    pub sandbox: Option<Arc<dyn crate::sandbox::Sandbox>>,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// All persistence.
    pub store: Store,
    /// Where new work is announced.
    pub dispatcher: Arc<dyn Dispatcher>,
    /// Public base URL, without a trailing slash.
    pub public_url: Arc<str>,
    /// Session cookie and CSRF signing.
    pub sessions: SessionKeys,
    /// Outgoing email.
    pub mailer: Arc<Mailer>,
    /// Login throttle.
    pub throttle: Arc<LoginThrottle>,
    /// The Shopify public app, if configured.
    pub shopify_app: Option<Arc<crate::oauth::ShopifyApp>>,
    /// Built-in emulators for sandbox connections.
    pub sandbox: Option<Arc<dyn crate::sandbox::Sandbox>>,
    /// Decrypted webhook signing secrets, cached briefly.
    pub webhook_secrets: Arc<crate::intake::SecretCache>,
    /// The same database through connections of the webhook intake's own, so deliveries never
    /// wait for one behind the workers.
    pub intake_store: Store,
}

/// Connections reserved for the webhook intake: its two reads per delivery and the group
/// commit.
const INTAKE_CONNECTIONS: u32 = 6;

impl AppState {
    /// Bundles the shared services.
    pub fn new(store: Store, dispatcher: Arc<dyn Dispatcher>, settings: WebSettings) -> Self {
        let secure = settings.public_url.scheme() == "https";
        AppState {
            intake_store: store.with_own_connections(INTAKE_CONNECTIONS),
            store,
            dispatcher,
            public_url: settings.public_url.as_str().trim_end_matches('/').into(),
            sessions: SessionKeys::new(settings.session_secret, secure),
            mailer: Arc::new(settings.mailer),
            throttle: Arc::new(settings.throttle),
            shopify_app: settings.shopify_app.map(Arc::new),
            sandbox: settings.sandbox,
            webhook_secrets: Arc::default(),
        }
    }

    /// An absolute link into this installation.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }
}
