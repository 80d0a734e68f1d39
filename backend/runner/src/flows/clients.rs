//! D365 clients per connection, kept between runs: building one decrypts the client secret
//! (an audit row each time) and its token cache saves a sign-in per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use syncline_d365::{D365Config, ODataClient};
use syncline_store::{Connection, ConnectionId, Store, StoreError};

use super::FlowError;

/// How long a client (and the secret inside it) is reused before the connection is re-read.
const CLIENT_TTL: Duration = Duration::from_secs(300);

/// The store name of one of a connection's secrets (as the web layer writes it).
pub fn secret_name(connection: ConnectionId, field: &str) -> String {
    format!("connection:{connection}:{field}")
}

fn setting<'a>(connection: &'a Connection, key: &str) -> &'a str {
    connection
        .settings
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// The client configuration of a D365 connection, given its decrypted secret.
pub fn d365_config(connection: &Connection, client_secret: secrecy::SecretString) -> D365Config {
    let mut config = D365Config::new(
        setting(connection, "environment_url"),
        setting(connection, "entra_tenant_id"),
        setting(connection, "client_id"),
        client_secret,
        setting(connection, "data_area_id"),
    );
    let token_url = setting(connection, "token_url");
    if !token_url.is_empty() {
        config.token_url = Some(token_url.to_owned());
    }
    config
}

struct Cached {
    client: Arc<ODataClient>,
    built: Instant,
    connection_updated: DateTime<Utc>,
}

/// D365 clients by connection.
#[derive(Default)]
pub struct D365Clients {
    cache: Mutex<HashMap<ConnectionId, Cached>>,
}

impl D365Clients {
    /// The client for a connection, built (with the secret decrypted) when missing, stale, or
    /// when the connection changed since.
    pub async fn get(
        &self,
        store: &Store,
        connection: &Connection,
    ) -> Result<Arc<ODataClient>, FlowError> {
        if let Some(client) = self.cached(connection) {
            return Ok(client);
        }
        let secret = store
            .reveal_secret(
                connection.tenant_id,
                &secret_name(connection.id, "client_secret"),
                "system",
                "sync runs",
            )
            .await
            .map_err(|error| match error {
                StoreError::NotFound => FlowError::Auth(format!(
                    "the D365 connection \"{}\" has no client secret",
                    connection.name
                )),
                other => FlowError::Store(other),
            })?;
        let client = ODataClient::new(&d365_config(connection, secret))
            .map(Arc::new)
            .map_err(|error| FlowError::Auth(error.to_string()))?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                connection.id,
                Cached {
                    client: Arc::clone(&client),
                    built: Instant::now(),
                    connection_updated: connection.updated_at,
                },
            );
        }
        Ok(client)
    }

    fn cached(&self, connection: &Connection) -> Option<Arc<ODataClient>> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(&connection.id)?;
        (entry.built.elapsed() < CLIENT_TTL && entry.connection_updated == connection.updated_at)
            .then(|| Arc::clone(&entry.client))
    }

    /// Drops a connection's client (its credentials were refused).
    pub fn forget(&self, connection: ConnectionId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&connection);
        }
    }
}
