//! Delivery of alert notifications to a tenant's channels: email through the application's
//! mailer, and webhooks (generic signed JSON, or a Slack/Teams incoming-webhook payload) with
//! retries and exponential backoff.
//!
//! ## Webhook signature
//! Every webhook request carries `X-Syncline-Signature: t=<unix seconds>,v1=<hex>` where
//! `<hex>` is HMAC-SHA256 keyed with the channel's signing secret over `<t>.<raw body>`.
//! Receivers recompute it over the exact bytes received, compare in constant time, and reject
//! timestamps more than a few minutes old (replays). `X-Syncline-Event` names the event and
//! `X-Syncline-Delivery` is unique per notification (the same on its retries), for de-duplication.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;
use syncline_store::{
    AlertChannel, AlertDelivery, AlertRule, ChannelKind, Incident, Pair, Store, StoreError,
    TenantId, channel_secret_prefix,
};

use super::AlertOptions;

/// The header holding a webhook's signature.
pub const SIGNATURE_HEADER: &str = "X-Syncline-Signature";

/// Sends one plain-text email; implemented by the web layer's mailer.
pub trait MailTransport: Send + Sync {
    /// Sends `body` to `to` with `subject`; the error is a human-readable cause.
    fn send<'a>(
        &'a self,
        to: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Why a notification could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Our database failed (or a channel secret could not be read).
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The channel has no usable recipient or URL.
    #[error("{0}")]
    Config(String),
    /// The mail server refused or could not be reached.
    #[error("email delivery failed: {0}")]
    Mail(String),
    /// The receiver failed every attempt (or refused the request outright).
    #[error("webhook delivery failed after {attempts} attempt(s): {last}")]
    Webhook {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
        /// Whether trying again later may help (network, 5xx, 408, 429).
        retryable: bool,
    },
    /// The incident, channel, rule or pair of a queued delivery is gone.
    #[error("{0} no longer exists")]
    Gone(&'static str),
}

impl NotifyError {
    /// Whether a later attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            NotifyError::Webhook { retryable, .. } => *retryable,
            NotifyError::Store(_) | NotifyError::Mail(_) => true,
            NotifyError::Config(_) | NotifyError::Gone(_) => false,
        }
    }
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// An incident opened.
    Opened,
    /// An incident is still open (and unacknowledged) after the rule's interval.
    Reminder,
    /// The condition cleared.
    Resolved,
    /// "Send test notification" from the console or API.
    Test,
    /// A fair-use threshold (80 % or 100 % of the plan's included volume) was crossed.
    FairUse,
}

impl NotificationKind {
    /// The event name in webhook payloads and headers.
    pub fn event(self) -> &'static str {
        match self {
            NotificationKind::Opened => "incident.opened",
            NotificationKind::Reminder => "incident.reminder",
            NotificationKind::Resolved => "incident.resolved",
            NotificationKind::Test => "test",
            NotificationKind::FairUse => "billing.fair_use",
        }
    }

    /// The name a queued delivery stores (`opened`, `reminder`, `resolved`; tests are never
    /// queued).
    pub fn stored(self) -> &'static str {
        match self {
            NotificationKind::Opened => "opened",
            NotificationKind::Reminder => "reminder",
            NotificationKind::Resolved => "resolved",
            NotificationKind::Test => "test",
            NotificationKind::FairUse => "fair_use",
        }
    }

    /// Parses a stored name.
    pub fn parse_stored(value: &str) -> Option<NotificationKind> {
        [
            NotificationKind::Opened,
            NotificationKind::Reminder,
            NotificationKind::Resolved,
        ]
        .into_iter()
        .find(|k| k.stored() == value)
    }

    fn label(self) -> &'static str {
        match self {
            NotificationKind::Opened => "FIRING",
            NotificationKind::Reminder => "STILL FIRING",
            NotificationKind::Resolved => "RESOLVED",
            NotificationKind::Test => "TEST",
            NotificationKind::FairUse => "FAIR USE",
        }
    }
}

/// The payload shape a webhook channel posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Syncline's JSON document (see the module documentation).
    Generic,
    /// A Slack incoming webhook: `{"text": …}`.
    Slack,
    /// A Microsoft Teams incoming webhook: a MessageCard, which also carries `text`.
    Teams,
}

impl WebhookFormat {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Generic => "generic",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Teams => "teams",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(value: &str) -> Option<WebhookFormat> {
        [
            WebhookFormat::Generic,
            WebhookFormat::Slack,
            WebhookFormat::Teams,
        ]
        .into_iter()
        .find(|f| f.as_str() == value)
    }

    /// The secret name of a webhook channel's URL (Slack and Teams URLs are credentials).
    pub fn url_secret(channel: syncline_store::ChannelId) -> String {
        format!("{}url", channel_secret_prefix(channel))
    }

    /// The secret name of a webhook channel's signing secret.
    pub fn signing_secret(channel: syncline_store::ChannelId) -> String {
        format!("{}signing_secret", channel_secret_prefix(channel))
    }
}

/// The header value signing `body` at `timestamp` (unix seconds) with `secret`.
pub fn sign_payload(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail; an empty MAC would never verify.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Vec::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a signature header against `body` in constant time, refusing timestamps further
/// than `tolerance_secs` from `now` (unix seconds).
pub fn verify_signature(
    header: &str,
    secret: &[u8],
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now - timestamp).abs() > tolerance_secs {
        return false;
    }
    signatures.iter().any(|signature| {
        Hmac::<Sha256>::new_from_slice(secret).is_ok_and(|mut mac| {
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(signature).is_ok()
        })
    })
}

/// One notification, rendered for every channel kind.
struct Message {
    kind: NotificationKind,
    /// `X-Syncline-Delivery`: the same on every attempt of one delivery.
    delivery: String,
    subject: String,
    text: String,
    document: Value,
}

/// Sends notifications to a tenant's channels.
pub struct Notifier {
    store: Store,
    mail: Arc<dyn MailTransport>,
    http: reqwest::Client,
    options: AlertOptions,
}

impl Notifier {
    /// A notifier using `mail` for email channels.
    pub fn new(
        store: Store,
        mail: Arc<dyn MailTransport>,
        options: AlertOptions,
    ) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .timeout(options.webhook_timeout)
            // A receiver redirecting elsewhere is a misconfiguration, not a place to post to.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Config(format!("HTTP client: {e}")))?;
        Ok(Notifier {
            store,
            mail,
            http,
            options,
        })
    }

    /// The mail transport of email channels (the daily digest uses it too).
    pub fn mail(&self) -> &dyn MailTransport {
        self.mail.as_ref()
    }

    /// One attempt of a queued delivery: loads what it is about, renders it for its channel
    /// and sends it once (the caller reschedules failures).
    pub async fn deliver_once(&self, delivery: &AlertDelivery) -> Result<(), NotifyError> {
        let tenant = delivery.tenant_id;
        let kind = NotificationKind::parse_stored(&delivery.event)
            .ok_or(NotifyError::Gone("event kind"))?;
        let incident = self
            .store
            .incident(tenant, delivery.incident_id)
            .await?
            .ok_or(NotifyError::Gone("the incident"))?;
        let channel = self
            .store
            .alert_channel(tenant, delivery.channel_id)
            .await?
            .ok_or(NotifyError::Gone("the channel"))?;
        let rule = self
            .store
            .alert_rule(tenant, incident.rule_id)
            .await?
            .ok_or(NotifyError::Gone("the rule"))?;
        let pair = self
            .store
            .pair(tenant, incident.pair_id)
            .await?
            .ok_or(NotifyError::Gone("the pair"))?;
        let message = self
            .render(delivery.id.to_string(), kind, &pair, &rule, &incident)
            .await?;
        let sent = self.send_to(&channel, &message, 1).await;
        crate::metrics::metrics()
            .notifications
            .with_label_values(&[
                channel.kind.as_str(),
                kind.event(),
                match &sent {
                    Ok(()) => "sent",
                    Err(error) if error.retryable() => "retry",
                    Err(_) => "failed",
                },
            ])
            .inc();
        sent
    }

    /// Sends a test notification to one channel and says how it went.
    pub async fn send_test(&self, channel: &AlertChannel) -> Result<(), NotifyError> {
        let tenant_name = self.tenant_name(channel.tenant_id).await?;
        let subject =
            format!("[Syncline] TEST: notifications from {tenant_name} reach this channel");
        let text = format!(
            "This is a test notification for the channel \"{}\" of {tenant_name}.\n\
             Alerts about your integration pairs will arrive here.\n\nConsole: {}/console/alerts\n",
            channel.name, self.options.public_url
        );
        let document = json!({
            "event": NotificationKind::Test.event(),
            "tenant": { "id": channel.tenant_id, "name": tenant_name },
            "channel": { "id": channel.id, "name": channel.name },
            "links": { "alerts": format!("{}/console/alerts", self.options.public_url) },
        });
        let message = Message {
            kind: NotificationKind::Test,
            delivery: uuid::Uuid::new_v4().to_string(),
            subject,
            text,
            document,
        };
        // Someone waits for the answer: a couple of quick attempts, not the outbox's schedule.
        self.send_to(channel, &message, 2).await
    }

    /// Tells the tenant that its usage crossed a fair-use threshold: through every enabled
    /// alert channel and by e-mail to each owner not already reached by an e-mail channel.
    /// Syncing is never stopped for overage; the message says so. Succeeds when at least one
    /// recipient got it (failures are logged).
    pub async fn send_fair_use(
        &self,
        crossing: &crate::billing::FairUseCrossing,
    ) -> Result<(), NotifyError> {
        let tenant = crossing.tenant_id;
        let tenant_name = self.tenant_name(tenant).await?;
        let what = match crossing.metric {
            "transactions" => "billable transactions",
            _ => "partner API calls",
        };
        let billing = format!("{}/console/billing", self.options.public_url);
        let subject = format!(
            "[Syncline] {} reached {}% of the included {what}",
            tenant_name, crossing.threshold
        );
        let text = format!(
            "Fair use: {}% of the included {what} reached.\n\n\
             {tenant_name} used {} of the {} {what} included in its plan for the period {} to {} ({}%).\n\n\
             Syncing continues: Syncline never stops data for overage. Our team may contact you \
             about a plan that fits your volume.\n\nUsage: {billing}\n",
            crossing.threshold,
            crossing.meter.used,
            crossing.meter.included,
            crossing.period.start,
            crossing.period.last_day(),
            crossing.meter.percent,
        );
        let document = json!({
            "event": NotificationKind::FairUse.event(),
            "tenant": { "id": tenant, "name": tenant_name },
            "fair_use": {
                "metric": crossing.metric,
                "threshold_percent": crossing.threshold,
                "used": crossing.meter.used,
                "included": crossing.meter.included,
                "percent": crossing.meter.percent,
                "period_start": crossing.period.start,
                "period_end": crossing.period.end,
            },
            "links": { "billing": billing },
        });
        let message = Message {
            kind: NotificationKind::FairUse,
            delivery: format!(
                "fair-use:{tenant}:{}:{}:{}",
                crossing.period.start, crossing.metric, crossing.threshold
            ),
            subject,
            text,
            document,
        };
        let mut reached: Vec<String> = Vec::new();
        let mut delivered = 0usize;
        let mut last_error = None;
        for channel in self.store.list_alert_channels(tenant).await? {
            if !channel.enabled {
                continue;
            }
            if channel.kind == ChannelKind::Email {
                reached.extend(self.recipients(&channel).await.unwrap_or_default());
            }
            match self.send_to(&channel, &message, 2).await {
                Ok(()) => delivered += 1,
                Err(error) => {
                    tracing::warn!(%error, channel_id = %channel.id, "fair-use notice not delivered");
                    last_error = Some(error);
                }
            }
        }
        for member in self.store.tenant_members(tenant).await? {
            if member.role != syncline_store::Role::Owner || reached.contains(&member.user.email) {
                continue;
            }
            match self
                .mail
                .send(&member.user.email, &message.subject, &message.text)
                .await
            {
                Ok(()) => delivered += 1,
                Err(error) => last_error = Some(NotifyError::Mail(error)),
            }
        }
        match (delivered, last_error) {
            (0, Some(error)) => Err(error),
            _ => Ok(()),
        }
    }

    async fn tenant_name(&self, tenant: TenantId) -> Result<String, StoreError> {
        Ok(self
            .store
            .tenant(tenant)
            .await?
            .map_or_else(|| tenant.to_string(), |t| t.name))
    }

    async fn render(
        &self,
        delivery: String,
        kind: NotificationKind,
        pair: &Pair,
        rule: &AlertRule,
        incident: &Incident,
    ) -> Result<Message, StoreError> {
        let tenant_name = self.tenant_name(pair.tenant_id).await?;
        let base = &self.options.public_url;
        let runs = format!("{base}{}", incident.runs_url);
        let incidents = format!("{base}/console/incidents");
        let cause = incident.cause.as_deref().unwrap_or("(no error recorded)");
        let title = rule.kind.title();
        let subject = format!("[Syncline] {}: {title} on pair {}", kind.label(), pair.name);
        let measured = describe_value(rule, incident.current_value.max(incident.peak_value));
        let text = match kind {
            NotificationKind::Resolved => format!(
                "Resolved: {title} on pair \"{}\" ({tenant_name}).\n\n\
                 The condition cleared at {}. It was opened at {} (peak: {}).\n\
                 Last cause: {cause}\n\nRuns: {runs}\nIncidents: {incidents}\n",
                pair.name,
                incident
                    .resolved_at
                    .unwrap_or_else(chrono::Utc::now)
                    .to_rfc3339(),
                incident.opened_at.to_rfc3339(),
                measured,
            ),
            _ => format!(
                "{title} on pair \"{}\" ({tenant_name}).\n\n\
                 Cause: {cause}\n\
                 Measured: {measured} (threshold {}{}).\n\
                 Opened at {}; notification {} for this incident.\n\n\
                 Affected runs: {runs}\n\
                 Acknowledge or see history: {incidents}\n",
                pair.name,
                rule.threshold,
                window_text(rule),
                incident.opened_at.to_rfc3339(),
                incident.notifications,
            ),
        };
        let document = json!({
            "event": kind.event(),
            "tenant": { "id": pair.tenant_id, "name": tenant_name },
            "pair": { "id": pair.id, "name": pair.name },
            "incident": {
                "id": incident.id,
                "kind": rule.kind.as_str(),
                "title": title,
                "summary": incident.summary,
                "cause": incident.cause,
                "value": incident.current_value,
                "peak_value": incident.peak_value,
                "threshold": rule.threshold,
                "window_minutes": rule.window_minutes,
                "opened_at": incident.opened_at,
                "acknowledged_at": incident.acknowledged_at,
                "resolved_at": incident.resolved_at,
                "notifications": incident.notifications,
            },
            "links": { "runs": runs, "incidents": incidents },
        });
        Ok(Message {
            kind,
            delivery,
            subject,
            text,
            document,
        })
    }

    async fn send_to(
        &self,
        channel: &AlertChannel,
        message: &Message,
        attempts: u32,
    ) -> Result<(), NotifyError> {
        match channel.kind {
            ChannelKind::Email => self.email(channel, message).await,
            ChannelKind::Webhook => self.webhook(channel, message, attempts).await,
        }
    }

    /// The channel's addresses plus the e-mail of each chosen member who still belongs to
    /// the tenant (a removed member stops receiving alerts).
    async fn recipients(&self, channel: &AlertChannel) -> Result<Vec<String>, NotifyError> {
        let mut to: Vec<String> = strings(&channel.settings, "addresses");
        let users = strings(&channel.settings, "user_ids");
        if !users.is_empty() {
            for member in self.store.tenant_members(channel.tenant_id).await? {
                if users.contains(&member.user.id.to_string()) {
                    to.push(member.user.email);
                }
            }
        }
        to.sort();
        to.dedup();
        Ok(to)
    }

    async fn email(&self, channel: &AlertChannel, message: &Message) -> Result<(), NotifyError> {
        let to = self.recipients(channel).await?;
        if to.is_empty() {
            return Err(NotifyError::Config(format!(
                "the channel \"{}\" has no recipients",
                channel.name
            )));
        }
        let mut failures = Vec::new();
        for address in &to {
            if let Err(error) = self
                .mail
                .send(address, &message.subject, &message.text)
                .await
            {
                failures.push(format!("{address}: {error}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(NotifyError::Mail(failures.join("; ")))
        }
    }

    async fn webhook(
        &self,
        channel: &AlertChannel,
        message: &Message,
        attempts: u32,
    ) -> Result<(), NotifyError> {
        let format = channel
            .settings
            .get("format")
            .and_then(Value::as_str)
            .and_then(WebhookFormat::parse)
            .unwrap_or(WebhookFormat::Generic);
        let url = self
            .store
            .reveal_secret(
                channel.tenant_id,
                &WebhookFormat::url_secret(channel.id),
                "system",
                "alert.notify",
            )
            .await?;
        let signing = self
            .store
            .reveal_secret(
                channel.tenant_id,
                &WebhookFormat::signing_secret(channel.id),
                "system",
                "alert.notify",
            )
            .await?;
        let body = match format {
            WebhookFormat::Generic => message.document.clone(),
            WebhookFormat::Slack => {
                json!({ "text": format!("*{}*\n{}", message.subject, message.text) })
            }
            WebhookFormat::Teams => json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": message.subject,
                "title": message.subject,
                "themeColor": if message.kind == NotificationKind::Resolved { "2EB67D" } else { "D70000" },
                "text": message.text.replace('\n', "  \n"),
            }),
        };
        let body =
            serde_json::to_vec(&body).map_err(|e| NotifyError::Config(format!("payload: {e}")))?;
        let delivery = message.delivery.clone();
        let attempts = attempts.max(1);
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                let delay = self
                    .options
                    .webhook_backoff
                    .saturating_mul(2u32.saturating_pow(attempt - 1))
                    .min(Duration::from_secs(300));
                tokio::time::sleep(delay).await;
            }
            let timestamp = chrono::Utc::now().timestamp();
            let signature = sign_payload(signing.expose_secret().as_bytes(), timestamp, &body);
            let sent = self
                .http
                .post(url.expose_secret())
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, signature)
                .header("X-Syncline-Event", message.kind.event())
                .header("X-Syncline-Delivery", &delivery)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    last = format!("the receiver answered {status}");
                    // A 4xx other than timeout or throttling will not change by retrying.
                    if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429
                    {
                        return Err(NotifyError::Webhook {
                            attempts: attempt + 1,
                            last,
                            retryable: false,
                        });
                    }
                }
                // The error text of reqwest names the URL, which may hold a token: keep only
                // its kind.
                Err(error) => {
                    last = if error.is_timeout() {
                        "timed out".to_owned()
                    } else if error.is_connect() {
                        "could not connect".to_owned()
                    } else {
                        "request failed".to_owned()
                    }
                }
            }
            tracing::debug!(channel_id = %channel.id, attempt = attempt + 1, %last, "webhook attempt failed");
        }
        Err(NotifyError::Webhook {
            attempts,
            last,
            retryable: true,
        })
    }
}

fn strings(settings: &Value, key: &str) -> Vec<String> {
    settings
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn describe_value(rule: &AlertRule, value: f64) -> String {
    use syncline_store::AlertKind;
    match rule.kind {
        AlertKind::FailureRate => format!("{value:.0}% of finished runs failed"),
        AlertKind::BacklogAge => format!("oldest waiting run is {value:.0} minutes old"),
        AlertKind::AuthPaused => "pair paused".to_owned(),
        AlertKind::RunDead | AlertKind::DeadLetters => format!("{value:.0} dead-lettered run(s)"),
        AlertKind::Throttling => format!("{value:.0} throttled attempt(s)"),
        AlertKind::WebhookMissing => {
            format!("{value:.0} webhook topic(s) missing at the last check")
        }
        AlertKind::NoEvents => format!(
            "no events in the last {} minutes, against {value:.0} in the week before",
            rule.window_minutes
        ),
    }
}

fn window_text(rule: &AlertRule) -> String {
    match rule.kind {
        kind if !kind.windowed() => String::new(),
        _ => format!(" within {} minutes", rule.window_minutes),
    }
}
