//! Talking to the partners on a connection's behalf: "Test connection" and webhook
//! registration. Credentials are decrypted here, used, and dropped; they never reach a
//! response, a log line or an error message.

use chrono::Utc;
use serde_json::json;
use syncline_runner::ShopifyClientError;
use syncline_shopify::client::{AdminClient, ClientError};
use syncline_store::{Connection, ConnectionId, ConnectionKind, Pair, PairStatus, PairWebhook};

use crate::accounts::audit;
use crate::auth::{Actor, Permission};

use crate::{AppError, AppState};

/// A Shopify Admin API client for a connection.
pub async fn shopify_client(
    state: &AppState,
    connection: &Connection,
    actor: &str,
    purpose: &str,
) -> Result<AdminClient, AppError> {
    syncline_runner::shopify_client(&state.store, connection, actor, purpose)
        .await
        .map_err(|error| match error {
            ShopifyClientError::NoToken => {
                AppError::Conflict("The connection's access_token is not set.".to_owned())
            }
            ShopifyClientError::Store(error) => error.into(),
            ShopifyClientError::Config(message) => AppError::Conflict(message),
        })
}

fn shopify_failure(error: &ClientError) -> AppError {
    AppError::Upstream(error.to_string())
}

/// Runs "Test connection" and records the outcome; `(ok, message)`.
pub async fn test_connection(
    state: &AppState,
    actor: &Actor,
    id: ConnectionId,
) -> Result<(bool, String), AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let connection = state
        .store
        .connection(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let label = actor.label();
    let outcome = match connection.kind {
        ConnectionKind::Shopify => {
            match shopify_client(state, &connection, &label, "test connection").await {
                Ok(client) => match syncline_shopify::client::test_connection(&client).await {
                    Ok(shop) => Ok(format!(
                        "Connected to {} ({}), currency {}.",
                        shop.name, shop.myshopify_domain, shop.currency_code
                    )),
                    Err(error) => Err((error.to_string(), error.is_auth())),
                },
                Err(AppError::Conflict(message)) => Err((message, false)),
                Err(other) => return Err(other),
            }
        }
        ConnectionKind::D365 => crate::partners_d365::test(state, &connection, &label).await,
    };
    let (ok, message, auth_failure) = match outcome {
        Ok(message) => (true, message, false),
        Err((message, auth)) => (false, message, auth),
    };
    state
        .store
        .record_connection_test(tenant, id, ok, &message)
        .await?;
    audit(
        &state.store,
        Some(tenant),
        &label,
        "connection.test",
        json!({ "connection_id": id, "ok": ok }),
    )
    .await;
    if auth_failure {
        pause_for_auth_failure(state, tenant, id, &message).await?;
    }
    Ok((ok, message))
}

/// Pauses every active pair using a connection whose credentials the partner refused, with the
/// reason on the pair's page: processing would only fail until someone fixes them.
pub async fn pause_for_auth_failure(
    state: &AppState,
    tenant: syncline_store::TenantId,
    connection: ConnectionId,
    reason: &str,
) -> Result<Vec<Pair>, AppError> {
    let mut paused = Vec::new();
    for pair in state
        .store
        .pairs_using_connection(tenant, connection)
        .await?
    {
        if pair.status != PairStatus::Active {
            continue;
        }
        let why = format!("Paused automatically: {reason}");
        let pair = state
            .store
            .set_pair_status(tenant, pair.id, PairStatus::Paused, Some(&why))
            .await?;
        audit(
            &state.store,
            Some(tenant),
            "system",
            "pair.auto_pause",
            json!({ "pair_id": pair.id, "reason": why }),
        )
        .await;
        paused.push(pair);
    }
    Ok(paused)
}

/// The webhook topics a pair needs for its flows.
pub fn topics_for(pair: &Pair) -> Vec<&'static str> {
    syncline_runner::topics_for(pair)
}

/// Where Shopify delivers a connection's webhooks.
pub fn callback_url(state: &AppState, connection: ConnectionId) -> String {
    syncline_runner::webhook_callback_url(&state.public_url, connection)
}

/// Makes Shopify's subscriptions match the pair's flows: creates what is missing, reuses what
/// exists (so a retry after a partial failure creates no duplicates), removes what is no
/// longer wanted.
pub async fn sync_webhooks(state: &AppState, pair: &Pair) -> Result<(), AppError> {
    let tenant = pair.tenant_id;
    let connection = state
        .store
        .connection(tenant, pair.shopify_connection_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let client = shopify_client(state, &connection, "system", "webhook registration").await?;
    let callback = callback_url(state, connection.id);
    let wanted = topics_for(pair);
    let existing = client
        .webhook_subscriptions()
        .await
        .map_err(|e| shopify_failure(&e))?;
    for topic in &wanted {
        let found = existing
            .iter()
            .find(|s| s.topic == *topic && s.callback_url.as_deref() == Some(callback.as_str()));
        let subscription_id = match found {
            Some(subscription) => subscription.id.clone(),
            None => client
                .webhook_subscription_create(topic, &callback)
                .await
                .map_err(|e| shopify_failure(&e))?,
        };
        let hook = PairWebhook {
            topic: (*topic).to_owned(),
            subscription_id,
            callback_url: callback.clone(),
            created_at: Utc::now(),
        };
        state
            .store
            .save_pair_webhook(tenant, pair.id, &hook)
            .await?;
    }
    for registered in state.store.pair_webhooks(tenant, pair.id).await? {
        if !wanted.contains(&registered.topic.as_str()) {
            delete_subscription(&client, &registered.subscription_id).await?;
            state
                .store
                .delete_pair_webhook(tenant, pair.id, &registered.topic)
                .await?;
        }
    }
    Ok(())
}

async fn delete_subscription(client: &AdminClient, id: &str) -> Result<(), AppError> {
    match client.webhook_subscription_delete(id).await {
        Ok(()) | Err(ClientError::NotFound(_)) => Ok(()),
        Err(error) => Err(shopify_failure(&error)),
    }
}

/// Removes the pair's subscriptions at Shopify, unless another active pair on the same store
/// still needs them.
pub async fn remove_webhooks(state: &AppState, pair: &Pair) -> Result<(), AppError> {
    let tenant = pair.tenant_id;
    let registered = state.store.pair_webhooks(tenant, pair.id).await?;
    if registered.is_empty() {
        return Ok(());
    }
    let connection = state
        .store
        .connection(tenant, pair.shopify_connection_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let others_active = state
        .store
        .pairs_using_connection(tenant, connection.id)
        .await?
        .iter()
        .any(|other| other.id != pair.id && other.status == PairStatus::Active);
    let client = shopify_client(state, &connection, "system", "webhook removal").await?;
    for hook in registered {
        if !others_active {
            delete_subscription(&client, &hook.subscription_id).await?;
        }
        state
            .store
            .delete_pair_webhook(tenant, pair.id, &hook.topic)
            .await?;
    }
    Ok(())
}
