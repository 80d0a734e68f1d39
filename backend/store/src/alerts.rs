//! Alerting: rules per pair (created lazily with defaults), incidents (at most one open per
//! rule and pair, enforced by a partial unique index so concurrent evaluators never open or
//! notify twice) and notification channels (webhook URLs and signing secrets are encrypted in
//! `secrets`, never stored here).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::pool::{on_pool, on_write};
use crate::{AlertRuleId, ChannelId, IncidentId, PairId, Store, StoreError, TenantId};

/// What an alert rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A run was dead-lettered (failed permanently or ran out of retries).
    RunDead,
    /// Dead letters within the window reached the threshold.
    DeadLetters,
    /// The share of finished runs that failed within the window reached the threshold (%).
    FailureRate,
    /// The oldest waiting run is older than the threshold (minutes).
    BacklogAge,
    /// The pair was paused because a partner refused its credentials.
    AuthPaused,
    /// Throttled attempts within the window reached the threshold.
    Throttling,
    /// No Shopify events arrived within the window on an active pair that received at least
    /// the threshold's number of events in the week before it (one that usually has traffic).
    NoEvents,
    /// The last periodic check found Shopify webhook subscriptions the pair needs missing
    /// (deleted at Shopify, or never registered); the value is how many topics.
    WebhookMissing,
}

impl AlertKind {
    /// Every kind, in the order the console lists them.
    pub const ALL: [AlertKind; 8] = [
        AlertKind::RunDead,
        AlertKind::DeadLetters,
        AlertKind::FailureRate,
        AlertKind::BacklogAge,
        AlertKind::AuthPaused,
        AlertKind::Throttling,
        AlertKind::NoEvents,
        AlertKind::WebhookMissing,
    ];

    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::RunDead => "run_dead",
            AlertKind::DeadLetters => "dead_letters",
            AlertKind::FailureRate => "failure_rate",
            AlertKind::BacklogAge => "backlog_age",
            AlertKind::AuthPaused => "auth_paused",
            AlertKind::Throttling => "throttling",
            AlertKind::NoEvents => "no_events",
            AlertKind::WebhookMissing => "webhook_missing",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(value: &str) -> Option<AlertKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }

    /// A short human title.
    pub fn title(self) -> &'static str {
        match self {
            AlertKind::RunDead => "Run dead-lettered",
            AlertKind::DeadLetters => "Dead letters piling up",
            AlertKind::FailureRate => "High failure rate",
            AlertKind::BacklogAge => "Backlog is old",
            AlertKind::AuthPaused => "Pair paused: credentials refused",
            AlertKind::Throttling => "Sustained throttling",
            AlertKind::NoEvents => "No events received",
            AlertKind::WebhookMissing => "Webhook subscription missing or deleted",
        }
    }

    /// What the threshold counts, for forms and messages.
    pub fn unit(self) -> &'static str {
        match self {
            AlertKind::RunDead | AlertKind::DeadLetters => "dead runs",
            AlertKind::FailureRate => "% failed",
            AlertKind::BacklogAge => "minutes",
            AlertKind::AuthPaused => "(on/off)",
            AlertKind::Throttling => "throttled attempts",
            AlertKind::NoEvents => "events in the week before (usual traffic)",
            AlertKind::WebhookMissing => "missing topics",
        }
    }

    /// Default (threshold, window in minutes, re-notify interval in minutes).
    pub fn defaults(self) -> (f64, i64, i64) {
        match self {
            AlertKind::RunDead => (1.0, 24 * 60, 24 * 60),
            AlertKind::DeadLetters => (10.0, 60, 4 * 60),
            AlertKind::FailureRate => (50.0, 60, 4 * 60),
            AlertKind::BacklogAge => (30.0, 0, 4 * 60),
            AlertKind::AuthPaused => (1.0, 0, 24 * 60),
            AlertKind::Throttling => (20.0, 15, 4 * 60),
            AlertKind::NoEvents => (20.0, 6 * 60, 24 * 60),
            AlertKind::WebhookMissing => (1.0, 0, 24 * 60),
        }
    }

    /// Whether the rule counts over a window (the others look at the current state).
    pub fn windowed(self) -> bool {
        !matches!(
            self,
            AlertKind::BacklogAge | AlertKind::AuthPaused | AlertKind::WebhookMissing
        )
    }
}

/// A rule of one pair.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRule {
    /// Primary key.
    pub id: AlertRuleId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The pair watched.
    pub pair_id: PairId,
    /// What it watches.
    pub kind: AlertKind,
    /// Switched on.
    pub enabled: bool,
    /// Fires when the measured value reaches this.
    pub threshold: f64,
    /// How far back counts and rates look (unused by backlog age and auth pauses).
    pub window_minutes: i64,
    /// While an incident stays open and unacknowledged, notify again after this long.
    pub renotify_minutes: i64,
    /// The channels its incidents notify; empty means every enabled channel.
    pub channel_ids: Vec<ChannelId>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: AlertRuleId,
    tenant_id: TenantId,
    pair_id: PairId,
    kind: String,
    enabled: bool,
    threshold: f64,
    window_minutes: i64,
    renotify_minutes: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RuleRow> for AlertRule {
    type Error = StoreError;
    fn try_from(row: RuleRow) -> Result<Self, StoreError> {
        Ok(AlertRule {
            id: row.id,
            tenant_id: row.tenant_id,
            pair_id: row.pair_id,
            kind: AlertKind::parse(&row.kind).ok_or_else(|| StoreError::Corrupt {
                what: "alert_rules.kind",
                detail: row.kind.clone(),
            })?,
            enabled: row.enabled,
            threshold: row.threshold,
            window_minutes: row.window_minutes,
            renotify_minutes: row.renotify_minutes,
            channel_ids: Vec::new(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const RULE_COLUMNS: &str = "id, tenant_id, pair_id, kind, enabled, threshold, window_minutes, renotify_minutes, created_at, updated_at";

/// The editable part of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRuleUpdate {
    /// Switched on.
    pub enabled: bool,
    /// Threshold.
    pub threshold: f64,
    /// Window in minutes.
    pub window_minutes: i64,
    /// Re-notify interval in minutes.
    pub renotify_minutes: i64,
}

/// What a rule measured for a pair just now.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The value compared with the threshold.
    pub value: f64,
    /// Runs the value is based on (a rate needs enough of them to mean anything).
    pub sample: i64,
    /// The most telling cause, e.g. the last dead run's error.
    pub cause: Option<String>,
}

/// An incident: a rule firing for a pair, from open to resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// Primary key.
    pub id: IncidentId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The rule that fired.
    pub rule_id: AlertRuleId,
    /// The pair concerned.
    pub pair_id: PairId,
    /// The rule's kind.
    pub kind: AlertKind,
    /// One line for subjects and lists.
    pub summary: String,
    /// The cause (e.g. the last dead run's error); never contains secrets.
    pub cause: Option<String>,
    /// The value last measured.
    pub current_value: f64,
    /// The highest value measured while open.
    pub peak_value: f64,
    /// Console path of the affected runs (a runs filter).
    pub runs_url: String,
    /// Opened.
    pub opened_at: DateTime<Utc>,
    /// Last notification sent.
    pub last_notified_at: Option<DateTime<Utc>>,
    /// Notifications sent (opening and reminders).
    pub notifications: i64,
    /// Acknowledged (no more reminders).
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// Resolved (the condition cleared).
    pub resolved_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: IncidentId,
    tenant_id: TenantId,
    rule_id: AlertRuleId,
    pair_id: PairId,
    kind: String,
    summary: String,
    cause: Option<String>,
    current_value: f64,
    peak_value: f64,
    runs_url: String,
    opened_at: DateTime<Utc>,
    last_notified_at: Option<DateTime<Utc>>,
    notifications: i64,
    acknowledged_at: Option<DateTime<Utc>>,
    acknowledged_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = StoreError;
    fn try_from(row: IncidentRow) -> Result<Self, StoreError> {
        Ok(Incident {
            id: row.id,
            tenant_id: row.tenant_id,
            rule_id: row.rule_id,
            pair_id: row.pair_id,
            kind: AlertKind::parse(&row.kind).ok_or_else(|| StoreError::Corrupt {
                what: "alert_incidents.kind",
                detail: row.kind.clone(),
            })?,
            summary: row.summary,
            cause: row.cause,
            current_value: row.current_value,
            peak_value: row.peak_value,
            runs_url: row.runs_url,
            opened_at: row.opened_at,
            last_notified_at: row.last_notified_at,
            notifications: row.notifications,
            acknowledged_at: row.acknowledged_at,
            acknowledged_by: row.acknowledged_by,
            resolved_at: row.resolved_at,
        })
    }
}

const INCIDENT_COLUMNS: &str = "id, tenant_id, rule_id, pair_id, kind, summary, cause, current_value, peak_value, runs_url, \
                                opened_at, last_notified_at, notifications, acknowledged_at, acknowledged_by, resolved_at";

/// An incident to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// The rule that fired.
    pub rule_id: AlertRuleId,
    /// The pair.
    pub pair_id: PairId,
    /// The rule's kind.
    pub kind: AlertKind,
    /// One line.
    pub summary: String,
    /// The cause.
    pub cause: Option<String>,
    /// The value measured.
    pub value: f64,
    /// Console path of the affected runs.
    pub runs_url: String,
}

/// Where notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Email to addresses and members.
    Email,
    /// An HTTP POST (generic signed JSON, or a Slack/Teams incoming-webhook payload).
    Webhook,
}

impl ChannelKind {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(value: &str) -> Option<ChannelKind> {
        match value {
            "email" => Some(ChannelKind::Email),
            "webhook" => Some(ChannelKind::Webhook),
            _ => None,
        }
    }
}

/// A notification channel. Its non-secret settings only: email addresses and member ids, or a
/// webhook's payload format and host.
#[derive(Debug, Clone, Serialize)]
pub struct AlertChannel {
    /// Primary key.
    pub id: ChannelId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Tenant-unique name.
    pub name: String,
    /// Email or webhook.
    pub kind: ChannelKind,
    /// Non-secret settings.
    pub settings: serde_json::Value,
    /// Receives notifications.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: ChannelId,
    tenant_id: TenantId,
    name: String,
    kind: String,
    settings: Json<serde_json::Value>,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ChannelRow> for AlertChannel {
    type Error = StoreError;
    fn try_from(row: ChannelRow) -> Result<Self, StoreError> {
        Ok(AlertChannel {
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            kind: ChannelKind::parse(&row.kind).ok_or_else(|| StoreError::Corrupt {
                what: "alert_channels.kind",
                detail: row.kind.clone(),
            })?,
            settings: row.settings.0,
            enabled: row.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const CHANNEL_COLUMNS: &str =
    "id, tenant_id, name, kind, settings, enabled, created_at, updated_at";

/// A channel to create or the new state of one.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// Tenant-unique name.
    pub name: String,
    /// Email or webhook.
    pub kind: ChannelKind,
    /// Non-secret settings.
    pub settings: serde_json::Value,
    /// Receives notifications.
    pub enabled: bool,
}

/// The prefix of a channel's secrets in the secret store (`<prefix>url`, `<prefix>signing_secret`).
pub fn channel_secret_prefix(channel: ChannelId) -> String {
    format!("alert_channel:{channel}:")
}

fn minutes_before(now: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    now - Duration::minutes(minutes.max(0))
}

impl Store {
    /// The pair's rules, creating the missing ones with their defaults (idempotent and safe
    /// to race: the unique (pair, kind) constraint lets exactly one insert win).
    pub async fn ensure_alert_rules(
        &self,
        tenant: TenantId,
        pair: PairId,
    ) -> Result<Vec<AlertRule>, StoreError> {
        let now = Utc::now();
        let sql = "INSERT INTO alert_rules (id, tenant_id, pair_id, kind, enabled, threshold, window_minutes, renotify_minutes, created_at, updated_at) \
                   SELECT $1, tenant_id, id, $3, TRUE, $4, $5, $6, $7, $7 FROM pairs WHERE tenant_id = $2 AND id = $8 \
                   ON CONFLICT (pair_id, kind) DO NOTHING";
        for kind in AlertKind::ALL {
            let (threshold, window, renotify) = kind.defaults();
            on_write!(self, pool => {
                sqlx::query(sql)
                    .bind(AlertRuleId::new())
                    .bind(tenant)
                    .bind(kind.as_str())
                    .bind(threshold)
                    .bind(window)
                    .bind(renotify)
                    .bind(now)
                    .bind(pair)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })?;
        }
        self.alert_rules(tenant, Some(pair)).await
    }

    /// The tenant's rules (of one pair, or all), by pair and kind.
    pub async fn alert_rules(
        &self,
        tenant: TenantId,
        pair: Option<PairId>,
    ) -> Result<Vec<AlertRule>, StoreError> {
        let sql = format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules WHERE tenant_id = $1 AND ($2 IS NULL OR pair_id = $2) ORDER BY pair_id, kind"
        );
        let rows: Vec<RuleRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(pair).fetch_all(pool).await)?;
        let mut rules = rows
            .into_iter()
            .map(AlertRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let routes: Vec<(AlertRuleId, ChannelId)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT rule_id, channel_id FROM alert_rule_channels WHERE tenant_id = $1 ORDER BY channel_id")
                .bind(tenant)
                .fetch_all(pool)
                .await
        })?;
        for rule in &mut rules {
            rule.channel_ids = routes
                .iter()
                .filter(|(r, _)| *r == rule.id)
                .map(|(_, c)| *c)
                .collect();
        }
        rules.sort_by_key(|r| (r.pair_id, AlertKind::ALL.iter().position(|k| *k == r.kind)));
        Ok(rules)
    }

    /// Routes a rule's incidents to `channels` only (empty: every enabled channel). Ids that
    /// are not the tenant's channels are ignored; answers the channels kept.
    pub async fn set_rule_channels(
        &self,
        tenant: TenantId,
        rule: AlertRuleId,
        channels: &[ChannelId],
    ) -> Result<Vec<ChannelId>, StoreError> {
        on_write!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM alert_rule_channels WHERE tenant_id = $1 AND rule_id = $2")
                .bind(tenant)
                .bind(rule)
                .execute(&mut *tx)
                .await?;
            // The SELECT keeps out other tenants' rules and channels.
            for channel in channels {
                sqlx::query(
                    "INSERT INTO alert_rule_channels (rule_id, channel_id, tenant_id) \
                     SELECT r.id, c.id, r.tenant_id FROM alert_rules r JOIN alert_channels c ON c.tenant_id = r.tenant_id \
                     WHERE r.tenant_id = $1 AND r.id = $2 AND c.id = $3 ON CONFLICT DO NOTHING",
                )
                .bind(tenant)
                .bind(rule)
                .bind(*channel)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })?;
        Ok(self
            .alert_rule(tenant, rule)
            .await?
            .map(|r| r.channel_ids)
            .unwrap_or_default())
    }

    /// One of the tenant's rules.
    pub async fn alert_rule(
        &self,
        tenant: TenantId,
        id: AlertRuleId,
    ) -> Result<Option<AlertRule>, StoreError> {
        let sql =
            format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE tenant_id = $1 AND id = $2");
        let row: Option<RuleRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        let Some(mut rule) = row.map(AlertRule::try_from).transpose()? else {
            return Ok(None);
        };
        rule.channel_ids = self.rule_channels(tenant, id).await?;
        Ok(Some(rule))
    }

    async fn rule_channels(
        &self,
        tenant: TenantId,
        rule: AlertRuleId,
    ) -> Result<Vec<ChannelId>, StoreError> {
        let rows: Vec<(ChannelId,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT channel_id FROM alert_rule_channels WHERE tenant_id = $1 AND rule_id = $2 ORDER BY channel_id")
                .bind(tenant)
                .bind(rule)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }

    /// Changes a rule's settings.
    pub async fn update_alert_rule(
        &self,
        tenant: TenantId,
        id: AlertRuleId,
        update: &AlertRuleUpdate,
    ) -> Result<AlertRule, StoreError> {
        let sql = format!(
            "UPDATE alert_rules SET enabled = $3, threshold = $4, window_minutes = $5, renotify_minutes = $6, updated_at = $7 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {RULE_COLUMNS}"
        );
        let row: Option<RuleRow> = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(tenant)
                .bind(id)
                .bind(update.enabled)
                .bind(update.threshold)
                .bind(update.window_minutes)
                .bind(update.renotify_minutes)
                .bind(Utc::now())
                .fetch_optional(pool)
                .await
        })?;
        let mut rule: AlertRule = row.ok_or(StoreError::NotFound)?.try_into()?;
        rule.channel_ids = self.rule_channels(tenant, id).await?;
        Ok(rule)
    }

    /// Measures what a rule watches for its pair at `now`. Runs still being retried never
    /// count as dead or failed: only `dead` and `failed` runs do.
    pub async fn measure_alert(
        &self,
        rule: &AlertRule,
        now: DateTime<Utc>,
    ) -> Result<Measurement, StoreError> {
        let (tenant, pair) = (rule.tenant_id, rule.pair_id);
        let since = minutes_before(now, rule.window_minutes);
        match rule.kind {
            AlertKind::RunDead | AlertKind::DeadLetters => {
                let sql = "SELECT COUNT(*) FROM runs WHERE tenant_id = $1 AND pair_id = $2 AND status = 'dead' AND updated_at >= $3";
                let count: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).bind(tenant).bind(pair).bind(since).fetch_one(pool).await)?;
                let cause = if count > 0 {
                    self.last_error(tenant, pair, &["dead"]).await?
                } else {
                    None
                };
                Ok(Measurement {
                    value: count as f64,
                    sample: count,
                    cause,
                })
            }
            AlertKind::FailureRate => {
                let sql = "SELECT COALESCE(SUM(CASE WHEN status IN ('failed', 'dead') THEN 1 ELSE 0 END), 0), COUNT(*) FROM runs \
                           WHERE tenant_id = $1 AND pair_id = $2 AND status IN ('succeeded', 'failed', 'dead') AND updated_at >= $3";
                let (failed, finished): (i64, i64) = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(pair).bind(since).fetch_one(pool).await)?;
                let value = if finished > 0 {
                    failed as f64 * 100.0 / finished as f64
                } else {
                    0.0
                };
                let cause = if failed > 0 {
                    self.last_error(tenant, pair, &["failed", "dead"]).await?
                } else {
                    None
                };
                Ok(Measurement {
                    value,
                    sample: finished,
                    cause,
                })
            }
            AlertKind::BacklogAge => {
                let sql = "SELECT MIN(created_at), COUNT(*) FROM runs WHERE tenant_id = $1 AND pair_id = $2 \
                           AND status IN ('queued', 'running', 'retrying')";
                let (oldest, count): (Option<DateTime<Utc>>, i64) = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(pair).fetch_one(pool).await)?;
                let value = oldest.map_or(0.0, |at| (now - at).num_seconds().max(0) as f64 / 60.0);
                Ok(Measurement {
                    value,
                    sample: count,
                    cause: (count > 0).then(|| format!("{count} runs waiting")),
                })
            }
            AlertKind::AuthPaused => {
                // A pair paused by a person is not an incident; one paused by the runner after
                // a refused sign-in holds a run classified `auth`.
                let sql = "SELECT p.pause_reason FROM pairs p WHERE p.tenant_id = $1 AND p.id = $2 AND p.status = 'paused' \
                           AND EXISTS (SELECT 1 FROM runs r WHERE r.tenant_id = $1 AND r.pair_id = $2 \
                                       AND r.status = 'retrying' AND r.error_class = 'auth')";
                let reason: Option<Option<String>> = on_pool!(self, pool => sqlx::query_scalar(sql).bind(tenant).bind(pair).fetch_optional(pool).await)?;
                Ok(match reason {
                    Some(reason) => Measurement {
                        value: 1.0,
                        sample: 1,
                        cause: reason,
                    },
                    None => Measurement {
                        value: 0.0,
                        sample: 0,
                        cause: None,
                    },
                })
            }
            AlertKind::NoEvents => {
                // Events of the pair's shop in the window, and in the week before it (the
                // pair's usual traffic); a quiet window only matters on a pair that has some.
                let baseline_since = since - Duration::days(7);
                let sql = "SELECT COALESCE(SUM(CASE WHEN i.received_at >= $3 THEN 1 ELSE 0 END), 0), \
                                  COALESCE(SUM(CASE WHEN i.received_at < $3 THEN 1 ELSE 0 END), 0), MAX(i.received_at) \
                           FROM inbox i JOIN pairs p ON p.shopify_connection_id = i.connection_id AND p.tenant_id = i.tenant_id \
                           WHERE i.tenant_id = $1 AND p.id = $2 AND p.status = 'active' AND i.received_at >= $4 AND i.received_at < $5";
                let (recent, baseline, last): (i64, i64, Option<DateTime<Utc>>) = on_pool!(self, pool => {
                    sqlx::query_as(sql).bind(tenant).bind(pair).bind(since).bind(baseline_since).bind(now).fetch_one(pool).await
                })?;
                let quiet = recent == 0 && baseline > 0;
                Ok(Measurement {
                    value: if quiet { baseline as f64 } else { 0.0 },
                    sample: baseline,
                    cause: quiet.then(|| {
                        format!(
                            "no Shopify events for {} minutes (last at {}); {baseline} in the week before",
                            rule.window_minutes,
                            last.map_or_else(|| "unknown".to_owned(), |t| t.to_rfc3339())
                        )
                    }),
                })
            }
            AlertKind::WebhookMissing => {
                // Only an active pair needs its subscriptions (pausing removes them).
                let sql = "SELECT w.missing, w.detail FROM webhook_checks w JOIN pairs p ON p.id = w.pair_id AND p.tenant_id = w.tenant_id \
                           WHERE w.tenant_id = $1 AND w.pair_id = $2 AND p.status = 'active'";
                let check: Option<(i64, Option<String>)> = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(pair).fetch_optional(pool).await)?;
                Ok(match check {
                    Some((missing, detail)) if missing > 0 => Measurement {
                        value: missing as f64,
                        sample: missing,
                        cause: detail,
                    },
                    _ => Measurement {
                        value: 0.0,
                        sample: 0,
                        cause: None,
                    },
                })
            }
            AlertKind::Throttling => {
                let sql = "SELECT COUNT(*) FROM run_attempts a JOIN runs r ON r.id = a.run_id \
                           WHERE a.tenant_id = $1 AND r.tenant_id = $1 AND r.pair_id = $2 AND a.error_class = 'throttled' AND a.started_at >= $3";
                let count: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).bind(tenant).bind(pair).bind(since).fetch_one(pool).await)?;
                let cause = if count > 0 {
                    let sql = "SELECT a.error FROM run_attempts a JOIN runs r ON r.id = a.run_id \
                               WHERE a.tenant_id = $1 AND r.tenant_id = $1 AND r.pair_id = $2 AND a.error_class = 'throttled' \
                               ORDER BY a.started_at DESC LIMIT 1";
                    on_pool!(self, pool => sqlx::query_scalar::<_, Option<String>>(sql).bind(tenant).bind(pair).fetch_optional(pool).await)?.flatten()
                } else {
                    None
                };
                Ok(Measurement {
                    value: count as f64,
                    sample: count,
                    cause,
                })
            }
        }
    }

    /// The error of the pair's most recently changed run in one of `statuses`.
    async fn last_error(
        &self,
        tenant: TenantId,
        pair: PairId,
        statuses: &[&str],
    ) -> Result<Option<String>, StoreError> {
        let first = statuses.first().copied().unwrap_or("dead");
        let second = statuses.get(1).copied().unwrap_or(first);
        let sql = "SELECT error FROM runs WHERE tenant_id = $1 AND pair_id = $2 AND status IN ($3, $4) AND error IS NOT NULL \
                   ORDER BY updated_at DESC, id DESC LIMIT 1";
        let error: Option<Option<String>> = on_pool!(self, pool => {
            sqlx::query_scalar(sql).bind(tenant).bind(pair).bind(first).bind(second).fetch_optional(pool).await
        })?;
        Ok(error.flatten())
    }

    /// Opens an incident unless one is already open for the rule and pair; `None` then. Of
    /// concurrent callers exactly one gets the incident (the open-incident unique index).
    pub async fn open_incident(
        &self,
        tenant: TenantId,
        new: &NewIncident,
    ) -> Result<Option<Incident>, StoreError> {
        let sql = format!(
            "INSERT INTO alert_incidents (id, tenant_id, rule_id, pair_id, kind, summary, cause, current_value, peak_value, runs_url, opened_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) \
             ON CONFLICT (rule_id, pair_id) WHERE resolved_at IS NULL DO NOTHING RETURNING {INCIDENT_COLUMNS}"
        );
        let row: Option<IncidentRow> = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(IncidentId::new())
                .bind(tenant)
                .bind(new.rule_id)
                .bind(new.pair_id)
                .bind(new.kind.as_str())
                .bind(&new.summary)
                .bind(&new.cause)
                .bind(new.value)
                .bind(&new.runs_url)
                .bind(Utc::now())
                .fetch_optional(pool)
                .await
        })?;
        row.map(Incident::try_from).transpose()
    }

    /// The open incident of a rule, if any.
    pub async fn open_incident_of(
        &self,
        tenant: TenantId,
        rule: AlertRuleId,
    ) -> Result<Option<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE tenant_id = $1 AND rule_id = $2 AND resolved_at IS NULL"
        );
        let row: Option<IncidentRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(rule).fetch_optional(pool).await)?;
        row.map(Incident::try_from).transpose()
    }

    /// Records the latest measurement of an open incident.
    pub async fn update_incident_value(
        &self,
        tenant: TenantId,
        id: IncidentId,
        value: f64,
        cause: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE alert_incidents SET current_value = $3, peak_value = CASE WHEN peak_value < $3 THEN $3 ELSE peak_value END, \
                   cause = COALESCE($4, cause) WHERE tenant_id = $1 AND id = $2 AND resolved_at IS NULL";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(id).bind(value).bind(cause).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Claims the right to notify about an open, unacknowledged incident: it was never
    /// notified, or last notified before `due_before`. Of concurrent callers at most one wins,
    /// so a notification goes out once even with several evaluator processes.
    pub async fn claim_incident_notification(
        &self,
        tenant: TenantId,
        id: IncidentId,
        due_before: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        let sql = format!(
            "UPDATE alert_incidents SET last_notified_at = $4, notifications = notifications + 1 \
             WHERE tenant_id = $1 AND id = $2 AND resolved_at IS NULL AND acknowledged_at IS NULL \
             AND (last_notified_at IS NULL OR last_notified_at < $3) RETURNING {INCIDENT_COLUMNS}"
        );
        let row: Option<IncidentRow> = on_write!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(id).bind(due_before).bind(Utc::now()).fetch_optional(pool).await
        })?;
        row.map(Incident::try_from).transpose()
    }

    /// Resolves an open incident; `None` when it was already resolved (another process won,
    /// and it sends the "resolved" notification).
    pub async fn resolve_incident(
        &self,
        tenant: TenantId,
        id: IncidentId,
    ) -> Result<Option<Incident>, StoreError> {
        let sql = format!(
            "UPDATE alert_incidents SET resolved_at = $3, current_value = 0 \
             WHERE tenant_id = $1 AND id = $2 AND resolved_at IS NULL RETURNING {INCIDENT_COLUMNS}"
        );
        let row: Option<IncidentRow> = on_write!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(id).bind(Utc::now()).fetch_optional(pool).await
        })?;
        row.map(Incident::try_from).transpose()
    }

    /// Acknowledges an incident (stops reminders); acknowledging twice keeps the first.
    pub async fn acknowledge_incident(
        &self,
        tenant: TenantId,
        id: IncidentId,
        by: &str,
    ) -> Result<Incident, StoreError> {
        let sql = "UPDATE alert_incidents SET acknowledged_at = $3, acknowledged_by = $4 \
                   WHERE tenant_id = $1 AND id = $2 AND acknowledged_at IS NULL";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(id).bind(Utc::now()).bind(by).execute(pool).await.map(|_| ())
        })?;
        self.incident(tenant, id).await?.ok_or(StoreError::NotFound)
    }

    /// One of the tenant's incidents.
    pub async fn incident(
        &self,
        tenant: TenantId,
        id: IncidentId,
    ) -> Result<Option<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<IncidentRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        row.map(Incident::try_from).transpose()
    }

    /// The tenant's incidents, newest first (only open ones when `open_only`).
    pub async fn list_incidents(
        &self,
        tenant: TenantId,
        open_only: bool,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE tenant_id = $1 AND ($2 = FALSE OR resolved_at IS NULL) \
             ORDER BY opened_at DESC, id DESC LIMIT $3"
        );
        let rows: Vec<IncidentRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(open_only).bind(i64::from(limit.clamp(1, 1000))).fetch_all(pool).await
        })?;
        rows.into_iter().map(Incident::try_from).collect()
    }

    /// How many of the tenant's incidents are open (the console's badge).
    pub async fn count_open_incidents(&self, tenant: TenantId) -> Result<i64, StoreError> {
        let sql =
            "SELECT COUNT(*) FROM alert_incidents WHERE tenant_id = $1 AND resolved_at IS NULL";
        let count: i64 =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(tenant).fetch_one(pool).await)?;
        Ok(count)
    }

    /// Creates a channel (its secrets are stored separately under [`channel_secret_prefix`]).
    pub async fn create_alert_channel(
        &self,
        tenant: TenantId,
        new: &NewChannel,
    ) -> Result<AlertChannel, StoreError> {
        let sql = format!(
            "INSERT INTO alert_channels (id, tenant_id, name, kind, settings, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {CHANNEL_COLUMNS}"
        );
        let row: ChannelRow = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(ChannelId::new())
                .bind(tenant)
                .bind(new.name.trim())
                .bind(new.kind.as_str())
                .bind(Json(&new.settings))
                .bind(new.enabled)
                .bind(Utc::now())
                .fetch_one(pool)
                .await
        })?;
        row.try_into()
    }

    /// Changes a channel's name, settings and switch (its kind stays).
    pub async fn update_alert_channel(
        &self,
        tenant: TenantId,
        id: ChannelId,
        new: &NewChannel,
    ) -> Result<AlertChannel, StoreError> {
        let sql = format!(
            "UPDATE alert_channels SET name = $3, settings = $4, enabled = $5, updated_at = $6 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {CHANNEL_COLUMNS}"
        );
        let row: Option<ChannelRow> = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(tenant)
                .bind(id)
                .bind(new.name.trim())
                .bind(Json(&new.settings))
                .bind(new.enabled)
                .bind(Utc::now())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// One of the tenant's channels.
    pub async fn alert_channel(
        &self,
        tenant: TenantId,
        id: ChannelId,
    ) -> Result<Option<AlertChannel>, StoreError> {
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM alert_channels WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<ChannelRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        row.map(AlertChannel::try_from).transpose()
    }

    /// The tenant's channels by name.
    pub async fn list_alert_channels(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<AlertChannel>, StoreError> {
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM alert_channels WHERE tenant_id = $1 ORDER BY name, id"
        );
        let rows: Vec<ChannelRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).fetch_all(pool).await)?;
        rows.into_iter().map(AlertChannel::try_from).collect()
    }

    /// Deletes a channel and its secrets; answers whether it existed.
    pub async fn delete_alert_channel(
        &self,
        tenant: TenantId,
        id: ChannelId,
    ) -> Result<bool, StoreError> {
        let sql = "DELETE FROM alert_channels WHERE tenant_id = $1 AND id = $2 RETURNING id";
        let row: Option<(ChannelId,)> = on_write!(self, pool => sqlx::query_as(sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        if row.is_some() && self.has_keyring() {
            self.delete_secrets_with_prefix(tenant, &channel_secret_prefix(id))
                .await?;
        }
        Ok(row.is_some())
    }
}

/// One queued notification of an incident to a channel.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AlertDelivery {
    /// Primary key.
    pub id: uuid::Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// The incident notified about.
    pub incident_id: IncidentId,
    /// Where it goes.
    pub channel_id: ChannelId,
    /// `opened`, `reminder` or `resolved`.
    pub event: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far (a claimed delivery counts its current attempt).
    pub attempts: i64,
    /// When it is due (while claimed: when the claim lapses).
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
}

const DELIVERY_COLUMNS: &str =
    "id, tenant_id, incident_id, channel_id, event, status, attempts, next_attempt_at, last_error";

impl Store {
    /// Queues `event` of an incident for the enabled channels its rule routes to (every
    /// enabled channel of the tenant when the rule chose none); answers how many.
    pub async fn queue_alert_deliveries(
        &self,
        tenant: TenantId,
        incident: IncidentId,
        event: &str,
    ) -> Result<u64, StoreError> {
        let now = Utc::now();
        let sql = "SELECT c.id FROM alert_channels c WHERE c.tenant_id = $1 AND c.enabled = TRUE AND ( \
                     NOT EXISTS (SELECT 1 FROM alert_rule_channels rc JOIN alert_incidents i ON i.rule_id = rc.rule_id \
                                 WHERE i.tenant_id = $1 AND i.id = $2 AND rc.tenant_id = $1) \
                     OR c.id IN (SELECT rc.channel_id FROM alert_rule_channels rc JOIN alert_incidents i ON i.rule_id = rc.rule_id \
                                 WHERE i.tenant_id = $1 AND i.id = $2 AND rc.tenant_id = $1))";
        let channels: Vec<(ChannelId,)> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(tenant)
                .bind(incident)
                .fetch_all(pool)
                .await
        })?;
        let sql = "INSERT INTO alert_deliveries (id, tenant_id, incident_id, channel_id, event, status, attempts, next_attempt_at, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)";
        for (channel,) in &channels {
            on_write!(self, pool => {
                sqlx::query(sql)
                    .bind(uuid::Uuid::now_v7())
                    .bind(tenant)
                    .bind(incident)
                    .bind(*channel)
                    .bind(event)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })?;
        }
        Ok(channels.len() as u64)
    }

    /// Claims up to `limit` due deliveries across tenants for one attempt each: the claim
    /// moves their due time to `now + lease`, so no other process takes them meanwhile (and a
    /// crashed sender's claim lapses).
    pub async fn claim_alert_deliveries(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<AlertDelivery>, StoreError> {
        let now = Utc::now();
        // The due condition is repeated outside the sub-select: PostgreSQL re-checks it on a
        // row another transaction just claimed, so two processes never both win it.
        let sql = format!(
            "UPDATE alert_deliveries SET next_attempt_at = $2, attempts = attempts + 1, updated_at = $1 \
             WHERE id IN (SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
                          ORDER BY next_attempt_at LIMIT $3) \
             AND status = 'pending' AND next_attempt_at <= $1 RETURNING {DELIVERY_COLUMNS}"
        );
        let rows: Vec<AlertDelivery> = on_write!(self, pool => {
            sqlx::query_as(&sql).bind(now).bind(now + lease).bind(i64::from(limit.clamp(1, 1000))).fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// Records how a delivery attempt went: sent, failed for good, or due again at `retry_at`.
    pub async fn finish_alert_delivery(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        outcome: Result<(), (&str, Option<DateTime<Utc>>)>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let (status, error, next) = match outcome {
            Ok(()) => ("sent", None, now),
            Err((error, Some(retry_at))) => ("pending", Some(error), retry_at),
            Err((error, None)) => ("failed", Some(error), now),
        };
        let sql = "UPDATE alert_deliveries SET status = $3, last_error = $4, next_attempt_at = $5, updated_at = $6 \
                   WHERE tenant_id = $1 AND id = $2";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(id).bind(status).bind(error).bind(next).bind(now).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// The deliveries of one incident, oldest first.
    pub async fn alert_deliveries(
        &self,
        tenant: TenantId,
        incident: IncidentId,
    ) -> Result<Vec<AlertDelivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE tenant_id = $1 AND incident_id = $2 ORDER BY created_at, id"
        );
        let rows = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(incident).fetch_all(pool).await)?;
        Ok(rows)
    }
}

/// The last periodic check of a pair's Shopify webhook subscriptions.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WebhookCheck {
    /// The pair.
    pub pair_id: PairId,
    /// Owner.
    pub tenant_id: TenantId,
    /// When it last finished (`None`: never).
    pub checked_at: Option<DateTime<Utc>>,
    /// Topics found missing at the last check (re-registered or not).
    pub missing: i64,
    /// What was missing and whether re-registering worked, or why the check failed.
    pub detail: Option<String>,
}

impl Store {
    /// Active pairs of active tenants whose webhook check last ran before `due_before` (or
    /// never), oldest first: one read per pass, so pairs that are not due cost nothing.
    pub async fn due_webhook_checks(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, PairId)>, StoreError> {
        let sql = "SELECT p.tenant_id, p.id FROM pairs p JOIN tenants t ON t.id = p.tenant_id \
                   LEFT JOIN webhook_checks w ON w.pair_id = p.id AND w.tenant_id = p.tenant_id \
                   WHERE p.status = 'active' AND t.status = 'active' AND (w.checked_at IS NULL OR w.checked_at <= $1) \
                   ORDER BY w.checked_at IS NOT NULL, w.checked_at, p.id LIMIT $2";
        let rows: Vec<(TenantId, PairId)> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(due_before).bind(i64::from(limit.clamp(1, 10_000))).fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// Claims the webhook check of a pair for `lease` when it last ran before `due_before`
    /// (or never) and nobody holds it: of concurrent callers at most one wins, so two
    /// processes never re-register the same topic at once.
    pub async fn claim_webhook_check(
        &self,
        tenant: TenantId,
        pair: PairId,
        due_before: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        on_write!(self, pool => {
            sqlx::query(
                "INSERT INTO webhook_checks (pair_id, tenant_id, missing) SELECT id, tenant_id, 0 FROM pairs \
                 WHERE tenant_id = $1 AND id = $2 ON CONFLICT (pair_id) DO NOTHING",
            )
            .bind(tenant)
            .bind(pair)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        let claimed: Option<(PairId,)> = on_write!(self, pool => {
            sqlx::query_as(
                "UPDATE webhook_checks SET claimed_until = $5 WHERE tenant_id = $1 AND pair_id = $2 \
                 AND (checked_at IS NULL OR checked_at <= $3) AND (claimed_until IS NULL OR claimed_until <= $4) \
                 RETURNING pair_id",
            )
            .bind(tenant)
            .bind(pair)
            .bind(due_before)
            .bind(now)
            .bind(now + lease)
            .fetch_optional(pool)
            .await
        })?;
        Ok(claimed.is_some())
    }

    /// Records a finished check (claimed or run on request) and releases any claim.
    /// `missing: None` (the check could not list the subscriptions) keeps the previous count,
    /// so an open incident stays open.
    pub async fn record_webhook_check(
        &self,
        tenant: TenantId,
        pair: PairId,
        missing: Option<i64>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        on_write!(self, pool => {
            sqlx::query(
                "INSERT INTO webhook_checks (pair_id, tenant_id, checked_at, missing, detail) \
                 SELECT id, tenant_id, $3, COALESCE($4, 0), $5 FROM pairs WHERE tenant_id = $1 AND id = $2 \
                 ON CONFLICT (pair_id) DO UPDATE SET checked_at = excluded.checked_at, claimed_until = NULL, \
                 missing = COALESCE($4, webhook_checks.missing), detail = excluded.detail",
            )
            .bind(tenant)
            .bind(pair)
            .bind(Utc::now())
            .bind(missing)
            .bind(detail)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// The last webhook check of a pair, if it ever ran.
    pub async fn webhook_check(
        &self,
        tenant: TenantId,
        pair: PairId,
    ) -> Result<Option<WebhookCheck>, StoreError> {
        let row = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT pair_id, tenant_id, checked_at, missing, detail FROM webhook_checks WHERE tenant_id = $1 AND pair_id = $2",
            )
            .bind(tenant)
            .bind(pair)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }
}
