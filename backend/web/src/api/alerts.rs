//! `/api/v1/incidents`, `/api/v1/alert-channels` and `/api/v1/alert-rules`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use syncline_store::{AlertChannel, AlertRule, AlertRuleId, ChannelId, Incident, IncidentId};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiQuery};
use crate::alerting::{self, ChannelInput, DigestInput, RuleInput};
use crate::auth::{ApiActor, Permission};
use crate::{AppError, AppState};

/// An incident: a rule firing for a pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentView {
    /// Id.
    pub id: uuid::Uuid,
    /// The rule that fired.
    pub rule_id: uuid::Uuid,
    /// The pair.
    pub pair_id: uuid::Uuid,
    /// run_dead, dead_letters, failure_rate, backlog_age, auth_paused, throttling, no_events or webhook_missing.
    pub kind: String,
    /// One line.
    pub summary: String,
    /// The cause (e.g. the last dead run's error).
    pub cause: Option<String>,
    /// The value last measured.
    pub current_value: f64,
    /// The highest value while open.
    pub peak_value: f64,
    /// open or resolved.
    pub status: String,
    /// Console link to the affected runs.
    pub runs_url: String,
    /// Opened.
    pub opened_at: DateTime<Utc>,
    /// Last notified.
    pub last_notified_at: Option<DateTime<Utc>>,
    /// Notifications sent.
    pub notifications: i64,
    /// Acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// By whom.
    pub acknowledged_by: Option<String>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<Incident> for IncidentView {
    fn from(i: Incident) -> Self {
        IncidentView {
            id: i.id.0,
            rule_id: i.rule_id.0,
            pair_id: i.pair_id.0,
            kind: i.kind.as_str().to_owned(),
            summary: i.summary,
            cause: i.cause,
            current_value: i.current_value,
            peak_value: i.peak_value,
            status: if i.resolved_at.is_some() {
                "resolved"
            } else {
                "open"
            }
            .to_owned(),
            runs_url: i.runs_url,
            opened_at: i.opened_at,
            last_notified_at: i.last_notified_at,
            notifications: i.notifications,
            acknowledged_at: i.acknowledged_at,
            acknowledged_by: i.acknowledged_by,
            resolved_at: i.resolved_at,
        }
    }
}

/// Filters of the incident list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// Only open incidents.
    #[serde(default)]
    pub open: Option<bool>,
    /// At most this many (1 to 500, default 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The tenant's incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "alerts", params(IncidentQuery),
    responses((status = 200, body = [IncidentView])))]
pub async fn list_incidents(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(query): ApiQuery<IncidentQuery>,
) -> Result<Json<Vec<IncidentView>>, AppError> {
    let context = actor.require(Permission::View)?;
    let incidents = state
        .store
        .list_incidents(
            context.tenant.id,
            query.open.unwrap_or(false),
            query.limit.unwrap_or(100).clamp(1, 500),
        )
        .await?;
    Ok(Json(
        incidents.into_iter().map(IncidentView::from).collect(),
    ))
}

/// One incident.
#[utoipa::path(get, path = "/api/v1/incidents/{incident_id}", tag = "alerts",
    params(("incident_id" = uuid::Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_incident(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<IncidentView>, AppError> {
    let context = actor.require(Permission::View)?;
    let incident = state
        .store
        .incident(context.tenant.id, IncidentId(id))
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(incident.into()))
}

/// Acknowledges an incident: no more reminders (it still resolves by itself).
#[utoipa::path(post, path = "/api/v1/incidents/{incident_id}/acknowledge", tag = "alerts",
    params(("incident_id" = uuid::Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn acknowledge_incident(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<IncidentView>, AppError> {
    Ok(Json(
        alerting::acknowledge(&state, &actor, IncidentId(id))
            .await?
            .into(),
    ))
}

/// A notification channel; secrets (webhook URL, signing secret) are never returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// email or webhook.
    pub kind: String,
    /// Email: `addresses`, `user_ids`. Webhook: `format`, `host`.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Receives notifications.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<AlertChannel> for ChannelView {
    fn from(c: AlertChannel) -> Self {
        ChannelView {
            id: c.id.0,
            name: c.name,
            kind: c.kind.as_str().to_owned(),
            settings: c.settings,
            enabled: c.enabled,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A channel to create or change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChannelRequest {
    /// Tenant-unique name.
    pub name: String,
    /// email or webhook (fixed once created).
    #[serde(default)]
    pub kind: String,
    /// Email: addresses.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Email: ids of members.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// Webhook: the URL (https; write-only). Omit on update to keep it.
    #[serde(default)]
    pub url: Option<String>,
    /// Webhook: generic (signed Syncline JSON), slack or teams.
    #[serde(default)]
    pub format: Option<String>,
    /// Webhook: signing secret (write-only); generated and returned once when omitted on create.
    #[serde(default)]
    pub signing_secret: Option<String>,
    /// Receives notifications (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl From<ChannelRequest> for ChannelInput {
    fn from(r: ChannelRequest) -> Self {
        ChannelInput {
            name: r.name,
            kind: r.kind,
            addresses: r.addresses,
            user_ids: r.user_ids,
            url: r.url,
            format: r.format,
            signing_secret: r.signing_secret,
            enabled: r.enabled,
        }
    }
}

/// A created channel, with a generated signing secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedChannel {
    /// The channel.
    pub channel: ChannelView,
    /// The generated signing secret of a webhook channel (verify `X-Syncline-Signature`).
    pub signing_secret: Option<String>,
}

/// The tenant's notification channels.
#[utoipa::path(get, path = "/api/v1/alert-channels", tag = "alerts", responses((status = 200, body = [ChannelView])))]
pub async fn list_channels(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<ChannelView>>, AppError> {
    let context = actor.require(Permission::View)?;
    let channels = state.store.list_alert_channels(context.tenant.id).await?;
    Ok(Json(channels.into_iter().map(ChannelView::from).collect()))
}

/// Creates a channel.
#[utoipa::path(post, path = "/api/v1/alert-channels", tag = "alerts", request_body = ChannelRequest,
    responses((status = 201, body = CreatedChannel), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_channel(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<ChannelRequest>,
) -> Result<(StatusCode, Json<CreatedChannel>), AppError> {
    let (channel, signing_secret) =
        alerting::create_channel(&state, &actor, &request.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedChannel {
            channel: channel.into(),
            signing_secret,
        }),
    ))
}

/// One channel.
#[utoipa::path(get, path = "/api/v1/alert-channels/{channel_id}", tag = "alerts",
    params(("channel_id" = uuid::Uuid, Path, description = "Channel id")),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_channel(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<ChannelView>, AppError> {
    let context = actor.require(Permission::View)?;
    let channel = state
        .store
        .alert_channel(context.tenant.id, ChannelId(id))
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(channel.into()))
}

/// Changes a channel.
#[utoipa::path(put, path = "/api/v1/alert-channels/{channel_id}", tag = "alerts", request_body = ChannelRequest,
    params(("channel_id" = uuid::Uuid, Path, description = "Channel id")),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update_channel(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
    ApiJson(request): ApiJson<ChannelRequest>,
) -> Result<Json<ChannelView>, AppError> {
    let channel = alerting::update_channel(&state, &actor, ChannelId(id), &request.into()).await?;
    Ok(Json(channel.into()))
}

/// Deletes a channel and its secrets.
#[utoipa::path(delete, path = "/api/v1/alert-channels/{channel_id}", tag = "alerts",
    params(("channel_id" = uuid::Uuid, Path, description = "Channel id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_channel(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, AppError> {
    alerting::delete_channel(&state, &actor, ChannelId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The outcome of a test notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// Delivered.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// Sends a test notification through the channel.
#[utoipa::path(post, path = "/api/v1/alert-channels/{channel_id}/test", tag = "alerts",
    params(("channel_id" = uuid::Uuid, Path, description = "Channel id")),
    responses((status = 200, body = TestResult), (status = 404, body = crate::error::ErrorBody)))]
pub async fn test_channel(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<TestResult>, AppError> {
    let outcome = alerting::test_channel(&state, &actor, ChannelId(id)).await?;
    Ok(Json(TestResult {
        ok: outcome.is_ok(),
        error: outcome.err(),
    }))
}

/// An alert rule of a pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    /// Id.
    pub id: uuid::Uuid,
    /// The pair.
    pub pair_id: uuid::Uuid,
    /// run_dead, dead_letters, failure_rate, backlog_age, auth_paused, throttling, no_events or webhook_missing.
    pub kind: String,
    /// Switched on.
    pub enabled: bool,
    /// Fires when the measured value reaches this.
    pub threshold: f64,
    /// Window in minutes.
    pub window_minutes: i64,
    /// Reminder interval in minutes.
    pub renotify_minutes: i64,
    /// Channels its incidents notify; empty means every enabled channel.
    pub channel_ids: Vec<uuid::Uuid>,
}

impl From<AlertRule> for RuleView {
    fn from(r: AlertRule) -> Self {
        RuleView {
            id: r.id.0,
            pair_id: r.pair_id.0,
            kind: r.kind.as_str().to_owned(),
            enabled: r.enabled,
            threshold: r.threshold,
            window_minutes: r.window_minutes,
            renotify_minutes: r.renotify_minutes,
            channel_ids: r.channel_ids.iter().map(|c| c.0).collect(),
        }
    }
}

/// A rule's new settings; omitted fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RuleRequest {
    /// Switched on.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Threshold.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Window in minutes (ignored by backlog_age and auth_paused).
    #[serde(default)]
    pub window_minutes: Option<i64>,
    /// Reminder interval in minutes.
    #[serde(default)]
    pub renotify_minutes: Option<i64>,
    /// Channels its incidents notify (`[]`: every enabled channel); omitted keeps them.
    #[serde(default)]
    pub channel_ids: Option<Vec<String>>,
}

/// The alert rules of every pair (defaults are created on first use).
#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "alerts", responses((status = 200, body = [RuleView])))]
pub async fn list_rules(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<RuleView>>, AppError> {
    let context = actor.require(Permission::View)?;
    let rules = alerting::all_rules(&state, context.tenant.id).await?;
    Ok(Json(rules.into_iter().map(RuleView::from).collect()))
}

/// Changes a rule (fields left out keep their value).
#[utoipa::path(put, path = "/api/v1/alert-rules/{rule_id}", tag = "alerts", request_body = RuleRequest,
    params(("rule_id" = uuid::Uuid, Path, description = "Rule id")),
    responses((status = 200, body = RuleView), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update_rule(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
    ApiJson(request): ApiJson<RuleRequest>,
) -> Result<Json<RuleView>, AppError> {
    let context = actor.require(Permission::View)?;
    let rule = state
        .store
        .alert_rule(context.tenant.id, AlertRuleId(id))
        .await?
        .ok_or(AppError::NotFound)?;
    let input = RuleInput {
        enabled: request.enabled.unwrap_or(rule.enabled),
        threshold: request.threshold.unwrap_or(rule.threshold),
        window_minutes: request.window_minutes.unwrap_or(rule.window_minutes),
        renotify_minutes: request.renotify_minutes.unwrap_or(rule.renotify_minutes),
        channel_ids: request.channel_ids,
    };
    let rule = alerting::update_rule(&state, &actor, AlertRuleId(id), &input).await?;
    Ok(Json(rule.into()))
}

/// The daily digest settings of the tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DigestView {
    /// Sent at all.
    pub enabled: bool,
    /// Email addresses it goes to.
    pub recipients: Vec<String>,
    /// Sent once a day, at the first evaluation at or after this hour (UTC, 0 to 23).
    pub hour_utc: i64,
}

impl From<syncline_store::DigestSettings> for DigestView {
    fn from(d: syncline_store::DigestSettings) -> Self {
        DigestView {
            enabled: d.enabled,
            recipients: d.recipients,
            hour_utc: d.hour_utc,
        }
    }
}

/// The tenant's daily digest settings (off until switched on).
#[utoipa::path(get, path = "/api/v1/alert-digest", tag = "alerts", responses((status = 200, body = DigestView)))]
pub async fn get_digest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<DigestView>, AppError> {
    let context = actor.require(Permission::View)?;
    Ok(Json(
        state.store.digest_settings(context.tenant.id).await?.into(),
    ))
}

/// Changes the tenant's daily digest settings.
#[utoipa::path(put, path = "/api/v1/alert-digest", tag = "alerts", request_body = DigestView,
    responses((status = 200, body = DigestView), (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_digest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<DigestView>,
) -> Result<Json<DigestView>, AppError> {
    let input = DigestInput {
        enabled: request.enabled,
        recipients: request.recipients,
        hour_utc: request.hour_utc,
    };
    Ok(Json(
        alerting::save_digest(&state, &actor, &input).await?.into(),
    ))
}

/// The outcome of a webhook-subscription check.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCheckView {
    /// Topics the pair needs.
    pub wanted: Vec<String>,
    /// Topics Shopify had no subscription for at the expected callback URL.
    pub missing: Vec<String>,
    /// Missing topics registered again.
    pub reregistered: Vec<String>,
    /// Missing topics that could not be registered, and why.
    pub failed: Vec<WebhookCheckFailure>,
    /// Why the subscriptions could not be listed at all.
    pub error: Option<String>,
}

/// A topic that could not be registered again.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCheckFailure {
    /// The topic.
    pub topic: String,
    /// Shopify's refusal.
    pub reason: String,
}

/// Checks the pair's Shopify webhook subscriptions now and re-registers missing ones (the
/// periodic check does the same every `SYNCLINE_WEBHOOK_CHECK_INTERVAL` seconds).
#[utoipa::path(post, path = "/api/v1/pairs/{pair_id}/webhooks/check", tag = "pairs",
    params(("pair_id" = uuid::Uuid, Path, description = "Pair id")),
    responses((status = 200, body = WebhookCheckView), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn check_webhooks(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<WebhookCheckView>, AppError> {
    let report = alerting::check_webhooks(&state, &actor, syncline_store::PairId(id)).await?;
    Ok(Json(WebhookCheckView {
        wanted: report.wanted,
        missing: report.missing,
        reregistered: report.reregistered,
        failed: report
            .failed
            .into_iter()
            .map(|(topic, reason)| WebhookCheckFailure { topic, reason })
            .collect(),
        error: report.error,
    }))
}
