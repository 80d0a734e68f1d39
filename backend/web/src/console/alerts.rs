//! `/console/alerts` (notification channels and each pair's rules) and `/console/incidents`
//! (open incidents and history, acknowledge).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use syncline_store::{IncidentId, TenantId};

use super::{Chrome, CsrfForm, PageResult, page_err};
use crate::alerting::{self, ChannelInput, DigestInput, RuleInput};
use crate::auth::{Actor, ConsoleActor, Permission};
use crate::error::FieldError;
use crate::{AppError, AppState};

/// A channel as the page lists it.
struct ChannelRow {
    id: String,
    name: String,
    kind: &'static str,
    enabled: bool,
    addresses: String,
    user_ids: Vec<String>,
    format: String,
    host: String,
}

/// A rule as the page lists it.
struct RuleRow {
    id: String,
    title: &'static str,
    unit: &'static str,
    enabled: bool,
    threshold: String,
    window_minutes: i64,
    windowed: bool,
    renotify_minutes: i64,
    /// Ids of the channels it routes to (empty: all).
    channel_ids: Vec<String>,
}

/// A channel a rule may route to.
struct ChannelChoice {
    id: String,
    name: String,
}

/// One pair's rules.
struct PairRules {
    name: String,
    rules: Vec<RuleRow>,
}

/// A member who may receive email alerts.
struct MemberChoice {
    id: String,
    email: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    channels: Vec<ChannelRow>,
    pairs: Vec<PairRules>,
    members: Vec<MemberChoice>,
    channel_choices: Vec<ChannelChoice>,
    digest_enabled: bool,
    digest_recipients: String,
    digest_hour: i64,
    notice: String,
    failure: String,
    new_secret: String,
    errors: Vec<FieldError>,
    /// Which form the errors belong to: `new`, a channel id or a rule id.
    errors_for: String,
}

/// What the page shows besides its lists.
#[derive(Default)]
struct Outcome {
    notice: String,
    failure: String,
    new_secret: String,
    errors: Vec<FieldError>,
    errors_for: String,
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn strings(settings: &serde_json::Value, key: &str) -> Vec<String> {
    settings
        .get(key)
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn alerts_view(state: &AppState, actor: &Actor, outcome: Outcome) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let tenant: TenantId = context.tenant.id;
    let channels = state
        .store
        .list_alert_channels(tenant)
        .await
        .map_err(|e| page_err(e.into()))?
        .into_iter()
        .map(|c| ChannelRow {
            id: c.id.to_string(),
            name: c.name,
            kind: c.kind.as_str(),
            enabled: c.enabled,
            addresses: strings(&c.settings, "addresses").join(", "),
            user_ids: strings(&c.settings, "user_ids"),
            format: c
                .settings
                .get("format")
                .and_then(|v| v.as_str())
                .unwrap_or("generic")
                .to_owned(),
            host: c
                .settings
                .get("host")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
        })
        .collect::<Vec<ChannelRow>>();
    let channel_choices = channels
        .iter()
        .map(|c| ChannelChoice {
            id: c.id.clone(),
            name: c.name.clone(),
        })
        .collect();
    let digest = state
        .store
        .digest_settings(tenant)
        .await
        .map_err(|e| page_err(e.into()))?;
    let rules = alerting::all_rules(state, tenant).await.map_err(page_err)?;
    let mut pairs = Vec::new();
    for pair in state
        .store
        .list_pairs(tenant)
        .await
        .map_err(|e| page_err(e.into()))?
    {
        pairs.push(PairRules {
            name: pair.name.clone(),
            rules: rules
                .iter()
                .filter(|r| r.pair_id == pair.id)
                .map(|r| RuleRow {
                    id: r.id.to_string(),
                    title: r.kind.title(),
                    unit: r.kind.unit(),
                    enabled: r.enabled,
                    threshold: number(r.threshold),
                    window_minutes: r.window_minutes,
                    windowed: r.kind.windowed(),
                    renotify_minutes: r.renotify_minutes,
                    channel_ids: r.channel_ids.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        });
    }
    let members = state
        .store
        .tenant_members(tenant)
        .await
        .map_err(|e| page_err(e.into()))?
        .into_iter()
        .map(|m| MemberChoice {
            id: m.user.id.to_string(),
            email: m.user.email,
        })
        .collect();
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let status = if outcome.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        AlertsPage {
            chrome,
            channels,
            pairs,
            members,
            channel_choices,
            digest_enabled: digest.enabled,
            digest_recipients: digest.recipients.join(", "),
            digest_hour: digest.hour_utc,
            notice: outcome.notice,
            failure: outcome.failure,
            new_secret: outcome.new_secret,
            errors: outcome.errors,
            errors_for: outcome.errors_for,
        },
    )
        .into_response())
}

/// `GET /console/alerts`.
pub(crate) async fn alerts_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    alerts_view(&state, &actor, Outcome::default()).await
}

/// A channel form.
#[derive(Debug, Deserialize)]
pub(crate) struct ChannelForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    /// Comma- or line-separated.
    #[serde(default)]
    addresses: String,
    #[serde(default)]
    user_ids: Vec<String>,
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    signing_secret: String,
    #[serde(default)]
    enabled: Option<String>,
}

impl From<ChannelForm> for ChannelInput {
    fn from(form: ChannelForm) -> Self {
        let optional = |text: String| Some(text).filter(|t| !t.trim().is_empty());
        ChannelInput {
            name: form.name,
            kind: form.kind,
            addresses: form
                .addresses
                .split([',', '\n', ';'])
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            user_ids: form.user_ids,
            url: optional(form.url),
            format: optional(form.format),
            signing_secret: optional(form.signing_secret),
            enabled: form.enabled.is_some(),
        }
    }
}

/// Re-renders the page with a handler's validation errors, or the error page otherwise.
async fn or_errors(
    state: &AppState,
    actor: &Actor,
    error: AppError,
    errors_for: String,
) -> PageResult {
    match error {
        AppError::Validation(errors) => {
            alerts_view(
                state,
                actor,
                Outcome {
                    errors,
                    errors_for,
                    ..Outcome::default()
                },
            )
            .await
        }
        other => Err(page_err(other)),
    }
}

/// `POST /console/alerts/channels`.
pub(crate) async fn create_channel(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<ChannelForm>,
) -> PageResult {
    match alerting::create_channel(&state, &actor, &form.into()).await {
        Ok((channel, secret)) => {
            let outcome = Outcome {
                notice: format!("Channel \"{}\" created.", channel.name),
                new_secret: secret.unwrap_or_default(),
                ..Outcome::default()
            };
            alerts_view(&state, &actor, outcome).await
        }
        Err(error) => or_errors(&state, &actor, error, "new".into()).await,
    }
}

/// `POST /console/alerts/channels/{channel_id}`.
pub(crate) async fn update_channel(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    CsrfForm(actor, form): CsrfForm<ChannelForm>,
) -> PageResult {
    let id = channel_id
        .parse()
        .map_err(|_| page_err(AppError::NotFound))?;
    match alerting::update_channel(&state, &actor, id, &form.into()).await {
        Ok(channel) => {
            let outcome = Outcome {
                notice: format!("Channel \"{}\" saved.", channel.name),
                ..Outcome::default()
            };
            alerts_view(&state, &actor, outcome).await
        }
        Err(error) => or_errors(&state, &actor, error, channel_id).await,
    }
}

/// A form with no fields but the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct EmptyForm {}

/// `POST /console/alerts/channels/{channel_id}/delete`.
pub(crate) async fn delete_channel(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    CsrfForm(actor, _): CsrfForm<EmptyForm>,
) -> PageResult {
    let id = channel_id
        .parse()
        .map_err(|_| page_err(AppError::NotFound))?;
    alerting::delete_channel(&state, &actor, id)
        .await
        .map_err(page_err)?;
    Ok(Redirect::to("/console/alerts").into_response())
}

/// `POST /console/alerts/channels/{channel_id}/test`.
pub(crate) async fn test_channel(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    CsrfForm(actor, _): CsrfForm<EmptyForm>,
) -> PageResult {
    let id = channel_id
        .parse()
        .map_err(|_| page_err(AppError::NotFound))?;
    let outcome = match alerting::test_channel(&state, &actor, id)
        .await
        .map_err(page_err)?
    {
        Ok(()) => Outcome {
            notice: "Test notification sent.".into(),
            ..Outcome::default()
        },
        Err(why) => Outcome {
            failure: format!("The test notification failed: {why}"),
            ..Outcome::default()
        },
    };
    alerts_view(&state, &actor, outcome).await
}

/// A rule form; numbers arrive as text so a typo is a field error, not a broken form.
#[derive(Debug, Deserialize)]
pub(crate) struct RuleForm {
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    window_minutes: String,
    #[serde(default)]
    renotify_minutes: String,
    /// The channels chosen; none chosen routes to every enabled channel.
    #[serde(default)]
    channel_ids: Vec<String>,
}

/// `POST /console/alerts/rules/{rule_id}`.
pub(crate) async fn update_rule(
    State(state): State<AppState>,
    Path(rule_id): Path<String>,
    CsrfForm(actor, form): CsrfForm<RuleForm>,
) -> PageResult {
    let id = rule_id.parse().map_err(|_| page_err(AppError::NotFound))?;
    let mut errors = Vec::new();
    let mut parse = |name: &str, text: &str| -> f64 {
        text.trim().parse::<f64>().unwrap_or_else(|_| {
            errors.push(FieldError {
                field: name.to_owned(),
                message: "Enter a number.".to_owned(),
            });
            0.0
        })
    };
    let threshold = parse("threshold", &form.threshold);
    let window = if form.window_minutes.trim().is_empty() {
        0.0
    } else {
        parse("window_minutes", &form.window_minutes)
    };
    let renotify = parse("renotify_minutes", &form.renotify_minutes);
    let result = if errors.is_empty() {
        let input = RuleInput {
            enabled: form.enabled.is_some(),
            threshold,
            window_minutes: window as i64,
            renotify_minutes: renotify as i64,
            channel_ids: Some(form.channel_ids),
        };
        alerting::update_rule(&state, &actor, id, &input).await
    } else {
        // Another tenant's rule is still a 404 before any field error.
        let context = actor.require(Permission::Manage).map_err(page_err)?;
        match state.store.alert_rule(context.tenant.id, id).await {
            Ok(Some(_)) => Err(AppError::Validation(errors)),
            Ok(None) => Err(AppError::NotFound),
            Err(error) => Err(error.into()),
        }
    };
    match result {
        Ok(rule) => {
            let outcome = Outcome {
                notice: format!("Rule \"{}\" saved.", rule.kind.title()),
                ..Outcome::default()
            };
            alerts_view(&state, &actor, outcome).await
        }
        Err(error) => or_errors(&state, &actor, error, rule_id).await,
    }
}

/// The daily digest form.
#[derive(Debug, Deserialize)]
pub(crate) struct DigestForm {
    #[serde(default)]
    enabled: Option<String>,
    /// Comma- or line-separated.
    #[serde(default)]
    recipients: String,
    #[serde(default)]
    hour_utc: String,
}

/// `POST /console/alerts/digest`.
pub(crate) async fn save_digest(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<DigestForm>,
) -> PageResult {
    let hour = form.hour_utc.trim().parse::<i64>();
    let result = match hour {
        Ok(hour_utc) => {
            let input = DigestInput {
                enabled: form.enabled.is_some(),
                recipients: form
                    .recipients
                    .split([',', '\n', ';'])
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .collect(),
                hour_utc,
            };
            alerting::save_digest(&state, &actor, &input).await
        }
        Err(_) => {
            actor.require(Permission::Manage).map_err(page_err)?;
            Err(AppError::Validation(vec![FieldError {
                field: "digest_hour_utc".to_owned(),
                message: "Enter an hour from 0 to 23 (UTC).".to_owned(),
            }]))
        }
    };
    match result {
        Ok(settings) => {
            let notice = if settings.enabled {
                format!(
                    "Daily digest saved: sent each day from {:02}:00 UTC.",
                    settings.hour_utc
                )
            } else {
                "Daily digest switched off.".to_owned()
            };
            let outcome = Outcome {
                notice,
                ..Outcome::default()
            };
            alerts_view(&state, &actor, outcome).await
        }
        Err(error) => or_errors(&state, &actor, error, "digest".into()).await,
    }
}

/// An incident as the list shows it.
struct IncidentRow {
    id: String,
    summary: String,
    cause: String,
    value: String,
    peak: String,
    runs_url: String,
    opened_at: String,
    notifications: i64,
    acknowledged: String,
    resolved_at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    chrome: Chrome,
    open: Vec<IncidentRow>,
    history: Vec<IncidentRow>,
}

/// `GET /console/incidents`.
pub(crate) async fn incidents_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let incidents = state
        .store
        .list_incidents(context.tenant.id, false, 200)
        .await
        .map_err(|e| page_err(e.into()))?;
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let (open, history): (Vec<_>, Vec<_>) = incidents
        .into_iter()
        .map(|i| IncidentRow {
            id: i.id.to_string(),
            summary: i.summary,
            cause: i.cause.unwrap_or_default(),
            value: number(i.current_value),
            peak: number(i.peak_value),
            runs_url: i.runs_url,
            opened_at: time(i.opened_at),
            notifications: i.notifications,
            acknowledged: match (i.acknowledged_at, i.acknowledged_by) {
                (Some(at), Some(by)) => format!("{} by {by}", time(at)),
                (Some(at), None) => time(at),
                _ => String::new(),
            },
            resolved_at: i.resolved_at.map(time).unwrap_or_default(),
        })
        .partition(|row| row.resolved_at.is_empty());
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    Ok(IncidentsPage {
        chrome,
        open,
        history,
    }
    .into_response())
}

/// `POST /console/incidents/{incident_id}/acknowledge`.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Path(incident_id): Path<String>,
    CsrfForm(actor, _): CsrfForm<EmptyForm>,
) -> PageResult {
    let id: IncidentId = incident_id
        .parse()
        .map_err(|_| page_err(AppError::NotFound))?;
    alerting::acknowledge(&state, &actor, id)
        .await
        .map_err(page_err)?;
    Ok(Redirect::to("/console/incidents").into_response())
}
