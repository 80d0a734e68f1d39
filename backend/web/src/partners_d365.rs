//! The D365 side of "Test connection".

use syncline_d365::ODataClient;
use syncline_store::Connection;

use crate::connections::secret_name;
use crate::{AppError, AppState};

/// An OData client for a connection (decrypts the client secret, with an audit row).
pub async fn client(
    state: &AppState,
    connection: &Connection,
    actor: &str,
    purpose: &str,
) -> Result<ODataClient, AppError> {
    let secret = state
        .store
        .reveal_secret(
            connection.tenant_id,
            &secret_name(connection.id, "client_secret"),
            actor,
            purpose,
        )
        .await
        .map_err(|error| match error {
            syncline_store::StoreError::NotFound => {
                AppError::Conflict("The connection's client secret is not set.".into())
            }
            other => other.into(),
        })?;
    let config = syncline_runner::d365_config(connection, secret);
    ODataClient::new(&config).map_err(|e| AppError::Conflict(e.to_string()))
}

/// Gets a token and reads one row; the message says what was checked or what to fix.
/// Errors carry whether the credentials were refused.
pub async fn test(
    state: &AppState,
    connection: &Connection,
    actor: &str,
) -> Result<String, (String, bool)> {
    let client = match client(state, connection, actor, "test connection").await {
        Ok(client) => client,
        Err(AppError::Conflict(message)) => return Err((message, false)),
        Err(other) => return Err((other.public_message(), false)),
    };
    match syncline_d365::test_connection(&client).await {
        Ok(summary) => Ok(format!(
            "Connected to {} (company {}): token obtained and {} read.",
            summary.environment_url, summary.data_area_id, summary.entity_set
        )),
        Err(error) => Err((error.to_string(), error.is_auth())),
    }
}
