//! The periodic Shopify webhook-subscription check: for each active pair, list the app's
//! `webhookSubscriptions` at Shopify, compare them with the topics the pair's flows need at
//! the expected callback URL, and re-register what is missing. Shopify deletes a subscription
//! after 8 failed deliveries in a row, and merchants or other tools can delete them too: a
//! pair without its subscriptions silently receives nothing.
//!
//! The outcome is stored per pair (`webhook_checks`); the `webhook_missing` rule measures it,
//! so the incident names the topics and whether re-registering worked, and resolves when a
//! later check finds everything in place. A claim on the pair's row keeps several processes
//! from checking (and re-registering) the same pair at once.

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use syncline_shopify::client::ClientError;
use syncline_store::{Pair, PairStatus, PairWebhook, Store, StoreError};

use crate::topics::{shopify_client, topics_for, webhook_callback_url};

/// What one check of one pair found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebhookCheckReport {
    /// Topics the pair needs.
    pub wanted: Vec<String>,
    /// Topics that had no subscription at the expected callback URL.
    pub missing: Vec<String>,
    /// Missing topics registered again.
    pub reregistered: Vec<String>,
    /// Missing topics that could not be registered, with the reason.
    pub failed: Vec<(String, String)>,
    /// Why the subscriptions could not be listed at all (nothing else was done).
    pub error: Option<String>,
}

impl WebhookCheckReport {
    /// The stored detail: what was missing and what became of it.
    fn detail(&self) -> Option<String> {
        if let Some(error) = &self.error {
            return Some(format!(
                "The webhook subscriptions could not be checked: {error}"
            ));
        }
        if self.missing.is_empty() {
            return None;
        }
        let mut parts = vec![format!(
            "Shopify had no webhook subscription for {}",
            self.missing.join(", ")
        )];
        if !self.reregistered.is_empty() {
            parts.push(format!("re-registered {}", self.reregistered.join(", ")));
        }
        for (topic, why) in &self.failed {
            parts.push(format!("re-registering {topic} failed: {why}"));
        }
        Some(parts.join("; "))
    }
}

/// Why Shopify refused, in words fit for an incident (never the token or the URL's secrets:
/// the connector's messages hold neither).
fn reason(error: &ClientError) -> String {
    error.to_string()
}

/// Checks one pair's subscriptions now (whether or not it is due), re-registers what is
/// missing, and records the outcome for the `webhook_missing` rule.
pub async fn check_pair_webhooks(
    store: &Store,
    public_url: &str,
    pair: &Pair,
) -> Result<WebhookCheckReport, StoreError> {
    let tenant = pair.tenant_id;
    let mut report = WebhookCheckReport {
        wanted: topics_for(pair).iter().map(|t| (*t).to_owned()).collect(),
        ..WebhookCheckReport::default()
    };
    let listed = match store.connection(tenant, pair.shopify_connection_id).await? {
        None => Err("the Shopify connection no longer exists".to_owned()),
        Some(connection) => {
            match shopify_client(store, &connection, "system", "webhook check").await {
                Err(error) => Err(error.to_string()),
                Ok(client) => match client.webhook_subscriptions().await {
                    Err(error) => Err(reason(&error)),
                    Ok(existing) => Ok((client, connection, existing)),
                },
            }
        }
    };
    let (client, connection, existing) = match listed {
        Ok(listed) => listed,
        Err(error) => {
            tracing::warn!(tenant_id = %tenant, pair_id = %pair.id, %error, "webhook subscription check failed");
            report.error = Some(error);
            // The count stays as it was: an open incident stays open, none is opened on a
            // guess (refused credentials have their own rule).
            store
                .record_webhook_check(tenant, pair.id, None, report.detail().as_deref())
                .await?;
            return Ok(report);
        }
    };
    let callback = webhook_callback_url(public_url, connection.id);
    for topic in &report.wanted.clone() {
        let present = existing
            .iter()
            .any(|s| s.topic == *topic && s.callback_url.as_deref() == Some(callback.as_str()));
        if present {
            continue;
        }
        report.missing.push(topic.clone());
        match client.webhook_subscription_create(topic, &callback).await {
            Ok(subscription_id) => {
                store
                    .save_pair_webhook(
                        tenant,
                        pair.id,
                        &PairWebhook {
                            topic: topic.clone(),
                            subscription_id,
                            callback_url: callback.clone(),
                            created_at: Utc::now(),
                        },
                    )
                    .await?;
                report.reregistered.push(topic.clone());
            }
            Err(error) => report.failed.push((topic.clone(), reason(&error))),
        }
    }
    if !report.missing.is_empty() {
        tracing::warn!(
            tenant_id = %tenant,
            pair_id = %pair.id,
            missing = ?report.missing,
            reregistered = ?report.reregistered,
            failed = report.failed.len(),
            "webhook subscriptions were missing"
        );
    }
    let missing = i64::try_from(report.missing.len()).unwrap_or(i64::MAX);
    store
        .record_webhook_check(tenant, pair.id, Some(missing), report.detail().as_deref())
        .await?;
    Ok(report)
}

/// Checks every active pair whose last check is older than `interval` and that no other
/// process is checking; answers how many pairs were checked.
pub async fn check_due_webhooks(
    store: &Store,
    public_url: &str,
    interval: Duration,
    lease: Duration,
) -> Result<usize, StoreError> {
    let now = Utc::now();
    let due_before = now - chrono::Duration::from_std(interval).unwrap_or_default();
    let lease = chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::minutes(5));
    let mut checked = 0;
    for (tenant, pair) in store.due_webhook_checks(due_before, 500).await? {
        // Another process may have taken it since the read: the claim decides.
        if !store
            .claim_webhook_check(tenant, pair, due_before, lease)
            .await?
        {
            continue;
        }
        let Some(pair) = store.pair(tenant, pair).await? else {
            continue;
        };
        if pair.status != PairStatus::Active {
            continue;
        }
        checked += 1;
        if let Err(error) = check_pair_webhooks(store, public_url, &pair).await {
            tracing::warn!(%error, tenant_id = %tenant, pair_id = %pair.id, "recording a webhook check failed");
        }
    }
    Ok(checked)
}
