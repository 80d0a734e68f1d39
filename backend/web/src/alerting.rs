//! Alert channels, rules and incidents as the console and the API change them: validation
//! with field-level messages, secrets (webhook URLs and signing secrets) written encrypted
//! and never read back, audit rows, and "send test notification".

use std::sync::Arc;

use serde_json::json;
use syncline_runner::{AlertOptions, MailTransport, Notifier, WebhookCheckReport, WebhookFormat};
use syncline_store::{
    AlertChannel, AlertKind, AlertRule, AlertRuleId, AlertRuleUpdate, ChannelId, ChannelKind,
    DigestSettings, Incident, IncidentId, NewChannel, PairId, PairStatus, StoreError, TenantId,
};

use crate::accounts::audit;
use crate::auth::secret::random_token;
use crate::auth::{Actor, Permission};
use crate::error::FieldError;
use crate::{AppError, AppState};

/// What a form or request says about a channel. On update, an empty URL or signing secret
/// keeps the stored one.
#[derive(Debug, Clone, Default)]
pub struct ChannelInput {
    /// Tenant-unique name.
    pub name: String,
    /// `email` or `webhook` (ignored on update: a channel keeps its kind).
    pub kind: String,
    /// Email addresses.
    pub addresses: Vec<String>,
    /// Member ids whose email receives alerts.
    pub user_ids: Vec<String>,
    /// Webhook URL.
    pub url: Option<String>,
    /// `generic`, `slack` or `teams`.
    pub format: Option<String>,
    /// Webhook signing secret; generated when a webhook channel is created without one.
    pub signing_secret: Option<String>,
    /// Receives notifications.
    pub enabled: bool,
}

fn field(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Loopback receivers may use plain HTTP (local relays, tests); anything else must be HTTPS.
fn check_webhook_url(text: &str) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(text)
        .map_err(|_| "Enter a full URL, e.g. https://hooks.example.com/syncline.")?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err("The URL must start with https://."),
    }
}

/// Validates the input; returns the non-secret settings to store.
async fn validate(
    state: &AppState,
    tenant: TenantId,
    kind: ChannelKind,
    input: &ChannelInput,
    creating: bool,
) -> Result<serde_json::Value, AppError> {
    let mut errors = Vec::new();
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        errors.push(field("name", "Enter a name of 1 to 80 characters."));
    }
    let settings = match kind {
        ChannelKind::Email => {
            let addresses: Vec<String> = input
                .addresses
                .iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect();
            for address in &addresses {
                if address.parse::<lettre::Address>().is_err() {
                    errors.push(field(
                        "addresses",
                        &format!("{address} is not an email address."),
                    ));
                }
            }
            let members = state.store.tenant_members(tenant).await?;
            let mut user_ids = Vec::new();
            for id in input
                .user_ids
                .iter()
                .map(|u| u.trim())
                .filter(|u| !u.is_empty())
            {
                if members.iter().any(|m| m.user.id.to_string() == id) {
                    user_ids.push(id.to_owned());
                } else {
                    errors.push(field("user_ids", "Choose members of this tenant."));
                }
            }
            if addresses.is_empty() && user_ids.is_empty() {
                errors.push(field(
                    "addresses",
                    "Enter at least one address or choose a member.",
                ));
            }
            if addresses.len() > 20 {
                errors.push(field("addresses", "Enter at most 20 addresses."));
            }
            json!({ "addresses": addresses, "user_ids": user_ids })
        }
        ChannelKind::Webhook => {
            let format = match present(&input.format) {
                None => WebhookFormat::Generic,
                Some(text) => WebhookFormat::parse(text).unwrap_or_else(|| {
                    errors.push(field("format", "Choose generic, slack or teams."));
                    WebhookFormat::Generic
                }),
            };
            let host = match present(&input.url) {
                Some(text) => match check_webhook_url(text) {
                    Ok(url) => url.host_str().map(str::to_owned),
                    Err(why) => {
                        errors.push(field("url", why));
                        None
                    }
                },
                None if creating => {
                    errors.push(field("url", "Enter the URL to post to."));
                    None
                }
                None => None,
            };
            if let Some(secret) = present(&input.signing_secret)
                && !(16..=200).contains(&secret.len())
            {
                errors.push(field(
                    "signing_secret",
                    "Use 16 to 200 characters, or leave it empty.",
                ));
            }
            let mut settings = json!({ "format": format.as_str() });
            if let Some(host) = host {
                settings["host"] = json!(host);
            }
            settings
        }
    };
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(AppError::Validation(errors))
    }
}

fn name_conflict(error: StoreError) -> AppError {
    if error.is_conflict_on("uq_alert_channels_tenant_id_name") {
        AppError::Validation(vec![field("name", "Another channel has this name.")])
    } else {
        error.into()
    }
}

/// Stores a webhook channel's URL and signing secret; returns a generated secret, if any.
async fn store_webhook_secrets(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
    input: &ChannelInput,
    creating: bool,
) -> Result<Option<String>, AppError> {
    if let Some(url) = present(&input.url) {
        state
            .store
            .put_secret(
                tenant,
                &WebhookFormat::url_secret(channel),
                &url.to_owned().into(),
            )
            .await?;
    }
    let (secret, generated) = match present(&input.signing_secret) {
        Some(secret) => (Some(secret.to_owned()), None),
        None if creating => {
            let secret = format!("whsec_{}", random_token());
            (Some(secret.clone()), Some(secret))
        }
        None => (None, None),
    };
    if let Some(secret) = secret {
        state
            .store
            .put_secret(
                tenant,
                &WebhookFormat::signing_secret(channel),
                &secret.into(),
            )
            .await?;
    }
    Ok(generated)
}

/// Creates a channel; for a webhook without a given signing secret, returns the generated
/// one (shown this once).
pub(crate) async fn create_channel(
    state: &AppState,
    actor: &Actor,
    input: &ChannelInput,
) -> Result<(AlertChannel, Option<String>), AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let kind = ChannelKind::parse(input.kind.trim())
        .ok_or_else(|| AppError::invalid("kind", "Choose email or webhook."))?;
    let settings = validate(state, tenant, kind, input, true).await?;
    let channel = state
        .store
        .create_alert_channel(
            tenant,
            &NewChannel {
                name: input.name.trim().to_owned(),
                kind,
                settings,
                enabled: input.enabled,
            },
        )
        .await
        .map_err(name_conflict)?;
    let generated = if kind == ChannelKind::Webhook {
        match store_webhook_secrets(state, tenant, channel.id, input, true).await {
            Ok(generated) => generated,
            Err(error) => {
                // A webhook channel without its URL would only fail later: undo.
                let _ = state.store.delete_alert_channel(tenant, channel.id).await;
                return Err(error);
            }
        }
    } else {
        None
    };
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "alert_channel.create",
        json!({ "channel_id": channel.id, "name": channel.name, "kind": kind.as_str() }),
    )
    .await;
    Ok((channel, generated))
}

/// Changes a channel (its kind stays).
pub(crate) async fn update_channel(
    state: &AppState,
    actor: &Actor,
    id: ChannelId,
    input: &ChannelInput,
) -> Result<AlertChannel, AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let existing = state
        .store
        .alert_channel(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut settings = validate(state, tenant, existing.kind, input, false).await?;
    if existing.kind == ChannelKind::Webhook && settings.get("host").is_none() {
        settings["host"] = existing.settings.get("host").cloned().unwrap_or_default();
    }
    let channel = state
        .store
        .update_alert_channel(
            tenant,
            id,
            &NewChannel {
                name: input.name.trim().to_owned(),
                kind: existing.kind,
                settings,
                enabled: input.enabled,
            },
        )
        .await
        .map_err(name_conflict)?;
    if channel.kind == ChannelKind::Webhook {
        store_webhook_secrets(state, tenant, id, input, false).await?;
    }
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "alert_channel.update",
        json!({ "channel_id": id, "name": channel.name }),
    )
    .await;
    Ok(channel)
}

/// Deletes a channel and its secrets.
pub(crate) async fn delete_channel(
    state: &AppState,
    actor: &Actor,
    id: ChannelId,
) -> Result<(), AppError> {
    let context = actor.require(Permission::Manage)?;
    if !state
        .store
        .delete_alert_channel(context.tenant.id, id)
        .await?
    {
        return Err(AppError::NotFound);
    }
    audit(
        &state.store,
        Some(context.tenant.id),
        &actor.label(),
        "alert_channel.delete",
        json!({ "channel_id": id }),
    )
    .await;
    Ok(())
}

/// Sends a test notification through one channel; `Err` holds a message fit to show (the
/// notifier's errors never contain secrets or URLs).
pub(crate) async fn test_channel(
    state: &AppState,
    actor: &Actor,
    id: ChannelId,
) -> Result<Result<(), String>, AppError> {
    let context = actor.require(Permission::Manage)?;
    let channel = state
        .store
        .alert_channel(context.tenant.id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let options = AlertOptions {
        public_url: state.public_url.to_string(),
        // Someone waits for the answer: fewer, quicker attempts than real notifications.
        webhook_attempts: 2,
        webhook_timeout: std::time::Duration::from_secs(5),
        ..AlertOptions::default()
    };
    let mail: Arc<dyn MailTransport> = state.mailer.clone();
    let notifier = Notifier::new(state.store.clone(), mail, options)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let outcome = notifier
        .send_test(&channel)
        .await
        .map_err(|e| e.to_string());
    audit(
        &state.store,
        Some(context.tenant.id),
        &actor.label(),
        "alert_channel.test",
        json!({ "channel_id": id, "ok": outcome.is_ok() }),
    )
    .await;
    Ok(outcome)
}

/// What a form or request says about a rule.
#[derive(Debug, Clone)]
pub struct RuleInput {
    /// Switched on.
    pub enabled: bool,
    /// Threshold.
    pub threshold: f64,
    /// Window in minutes.
    pub window_minutes: i64,
    /// Reminder interval in minutes.
    pub renotify_minutes: i64,
    /// Channel ids its incidents go to (empty: every enabled channel); `None` keeps them.
    pub channel_ids: Option<Vec<String>>,
}

/// Changes a rule after checking its numbers.
pub(crate) async fn update_rule(
    state: &AppState,
    actor: &Actor,
    id: AlertRuleId,
    input: &RuleInput,
) -> Result<AlertRule, AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let rule = state
        .store
        .alert_rule(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut errors = Vec::new();
    let max = if rule.kind == AlertKind::FailureRate {
        100.0
    } else {
        1_000_000.0
    };
    if !input.threshold.is_finite() || input.threshold <= 0.0 || input.threshold > max {
        errors.push(field(
            "threshold",
            &format!("Enter a number above 0 and at most {max}."),
        ));
    }
    let windowed = rule.kind.windowed();
    if windowed && !(1..=10_080).contains(&input.window_minutes) {
        errors.push(field(
            "window_minutes",
            "Enter 1 to 10080 minutes (a week).",
        ));
    }
    if !(5..=10_080).contains(&input.renotify_minutes) {
        errors.push(field(
            "renotify_minutes",
            "Enter 5 to 10080 minutes (a week).",
        ));
    }
    let mut channels = Vec::new();
    if let Some(ids) = &input.channel_ids {
        let known = state.store.list_alert_channels(tenant).await?;
        for id in ids.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            match known.iter().find(|c| c.id.to_string() == id) {
                Some(channel) => channels.push(channel.id),
                None => errors.push(field("channel_ids", "Choose channels of this tenant.")),
            }
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    if input.channel_ids.is_some() {
        state.store.set_rule_channels(tenant, id, &channels).await?;
    }
    let updated = state
        .store
        .update_alert_rule(
            tenant,
            id,
            &AlertRuleUpdate {
                enabled: input.enabled,
                threshold: input.threshold,
                window_minutes: if windowed {
                    input.window_minutes
                } else {
                    rule.window_minutes
                },
                renotify_minutes: input.renotify_minutes,
            },
        )
        .await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "alert_rule.update",
        json!({ "rule_id": id, "kind": rule.kind.as_str(), "enabled": input.enabled, "threshold": input.threshold, "channel_ids": updated.channel_ids }),
    )
    .await;
    Ok(updated)
}

/// Acknowledges an incident: no more reminders; it still resolves by itself.
pub(crate) async fn acknowledge(
    state: &AppState,
    actor: &Actor,
    id: IncidentId,
) -> Result<Incident, AppError> {
    let context = actor.require(Permission::Operate)?;
    let tenant = context.tenant.id;
    if state.store.incident(tenant, id).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let incident = state
        .store
        .acknowledge_incident(tenant, id, &actor.label())
        .await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "incident.acknowledge",
        json!({ "incident_id": id }),
    )
    .await;
    Ok(incident)
}

/// The tenant's rules for every pair, creating defaults for pairs that have none yet.
pub(crate) async fn all_rules(
    state: &AppState,
    tenant: TenantId,
) -> Result<Vec<AlertRule>, AppError> {
    let mut rules = Vec::new();
    for pair in state.store.list_pairs(tenant).await? {
        rules.extend(state.store.ensure_alert_rules(tenant, pair.id).await?);
    }
    Ok(rules)
}

/// What a form or request says about the daily digest.
#[derive(Debug, Clone, Default)]
pub struct DigestInput {
    /// Sent at all.
    pub enabled: bool,
    /// Email addresses.
    pub recipients: Vec<String>,
    /// Hour of the day (UTC, 0 to 23) from which it is sent.
    pub hour_utc: i64,
}

/// Saves the tenant's daily digest settings after checking them.
pub(crate) async fn save_digest(
    state: &AppState,
    actor: &Actor,
    input: &DigestInput,
) -> Result<DigestSettings, AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let mut errors = Vec::new();
    let recipients: Vec<String> = input
        .recipients
        .iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    for address in &recipients {
        if address.parse::<lettre::Address>().is_err() {
            errors.push(field(
                "digest_recipients",
                &format!("{address} is not an email address."),
            ));
        }
    }
    if recipients.len() > 20 {
        errors.push(field("digest_recipients", "Enter at most 20 addresses."));
    }
    if input.enabled && recipients.is_empty() {
        errors.push(field(
            "digest_recipients",
            "Enter at least one address to send the digest to.",
        ));
    }
    if !(0..=23).contains(&input.hour_utc) {
        errors.push(field(
            "digest_hour_utc",
            "Enter an hour from 0 to 23 (UTC).",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let settings = DigestSettings {
        enabled: input.enabled,
        recipients,
        hour_utc: input.hour_utc,
    };
    state.store.save_digest_settings(tenant, &settings).await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "alert_digest.update",
        json!({ "enabled": settings.enabled, "hour_utc": settings.hour_utc, "recipients": settings.recipients.len() }),
    )
    .await;
    Ok(settings)
}

/// Checks a pair's Shopify webhook subscriptions now and re-registers the missing ones; the
/// `webhook_missing` rule picks the outcome up on its next pass.
pub(crate) async fn check_webhooks(
    state: &AppState,
    actor: &Actor,
    pair: PairId,
) -> Result<WebhookCheckReport, AppError> {
    let context = actor.require(Permission::Operate)?;
    let tenant = context.tenant.id;
    let pair = state
        .store
        .pair(tenant, pair)
        .await?
        .ok_or(AppError::NotFound)?;
    if pair.status != PairStatus::Active {
        return Err(AppError::Conflict(
            "Only an active pair has webhook subscriptions to check.".to_owned(),
        ));
    }
    let report =
        syncline_runner::check_pair_webhooks(&state.store, &state.public_url, &pair).await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "pair.webhooks_check",
        json!({ "pair_id": pair.id, "missing": report.missing, "reregistered": report.reregistered, "failed": report.failed.len() }),
    )
    .await;
    Ok(report)
}
