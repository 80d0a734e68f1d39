//! Alert evaluation: a periodic pass over every pair's rules that opens an incident when a rule
//! fires, notifies once, reminds after the rule's interval while the incident stays open and
//! unacknowledged, and sends "resolved" when the condition clears.
//!
//! Several processes may evaluate at once (one per worker process in cluster mode): the store
//! lets exactly one of them open an incident (a unique index on open incidents), claim a given
//! notification (an `UPDATE … WHERE last_notified_at …` that only one caller matches) and
//! resolve it, so nobody is notified twice. A claimed notification is queued as one delivery
//! per channel in the `alert_deliveries` outbox; any process claims due deliveries, sends each
//! once and reschedules failures with exponential backoff, so a failing receiver or a restart
//! loses nothing (a delivery whose sender died mid-way may arrive twice: receivers de-duplicate
//! by `X-Syncline-Delivery`).

mod digest;
mod notify;
mod webhooks;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use syncline_store::{
    AlertKind, AlertRule, Incident, NewIncident, Pair, PairStatus, Store, StoreError, TenantStatus,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use digest::{DigestReport, render_digest, send_due_digests};
pub use webhooks::{WebhookCheckReport, check_due_webhooks, check_pair_webhooks};

pub use notify::{
    MailTransport, NotificationKind, Notifier, NotifyError, SIGNATURE_HEADER, WebhookFormat,
    sign_payload, verify_signature,
};

/// Settings of alert evaluation and delivery.
#[derive(Debug, Clone)]
pub struct AlertOptions {
    /// Time between evaluation passes.
    pub interval: Duration,
    /// Public base URL of the console, for links in notifications (no trailing slash).
    pub public_url: String,
    /// A failure-rate rule needs at least this many finished runs in its window to fire.
    pub min_rate_sample: i64,
    /// Attempts per delivery (one notification to one channel), the first included.
    pub webhook_attempts: u32,
    /// Delay before a delivery's first retry; doubles with each further one.
    pub webhook_backoff: Duration,
    /// Timeout of one webhook request.
    pub webhook_timeout: Duration,
    /// Time between two checks of a pair's Shopify webhook subscriptions.
    pub webhook_check_interval: Duration,
}

impl Default for AlertOptions {
    fn default() -> Self {
        AlertOptions {
            interval: Duration::from_secs(5),
            public_url: "http://127.0.0.1:8080".to_owned(),
            min_rate_sample: 20,
            webhook_attempts: 5,
            webhook_backoff: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(10),
            webhook_check_interval: Duration::from_secs(600),
        }
    }
}

/// What one pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Rules evaluated.
    pub evaluated: usize,
    /// Incidents this process opened.
    pub opened: usize,
    /// Notifications this process claimed and started sending (openings and reminders).
    pub notified: usize,
    /// Incidents this process resolved.
    pub resolved: usize,
    /// Deliveries queued (one per notification and enabled channel).
    pub queued: usize,
}

/// Evaluates the rules of every pair; see the module documentation.
pub struct AlertEvaluator {
    store: Store,
    notifier: Arc<Notifier>,
    options: AlertOptions,
    /// Pairs whose default rules this process already ensured.
    ensured: Mutex<HashSet<syncline_store::PairId>>,
    /// Deliveries still in flight, so tests and shutdown can wait for them.
    deliveries: Mutex<Vec<JoinHandle<()>>>,
}

impl AlertEvaluator {
    /// An evaluator sending through `notifier`.
    pub fn new(store: Store, notifier: Arc<Notifier>, options: AlertOptions) -> Self {
        AlertEvaluator {
            store,
            notifier,
            options,
            ensured: Mutex::default(),
            deliveries: Mutex::default(),
        }
    }

    /// One pass over every tenant's pairs, then over the due deliveries. Deliveries run in
    /// the background (a slow or failing webhook must not hold up other tenants' alerts); see
    /// [`Self::flush`].
    pub async fn tick(&self) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        for tenant in self.store.list_tenants().await? {
            if tenant.status == TenantStatus::Suspended {
                continue;
            }
            for pair in self.store.list_pairs(tenant.id).await? {
                if pair.status == PairStatus::Draft {
                    continue;
                }
                if let Err(error) = self.evaluate_pair(&pair, &mut report).await {
                    tracing::warn!(%error, tenant_id = %pair.tenant_id, pair_id = %pair.id, "evaluating alert rules failed");
                }
            }
        }
        self.deliver_due().await?;
        self.billing_pass().await;
        Ok(report)
    }

    /// Issues the invoices of ended periods and notifies fair-use thresholds crossed. A
    /// notice is recorded once per tenant, period, metric and threshold before it is sent, so
    /// several processes never send it twice.
    async fn billing_pass(&self) {
        let today = Utc::now().date_naive();
        if let Err(error) = crate::billing::issue_due_invoices(&self.store, today).await {
            tracing::warn!(%error, "issuing due invoices failed");
        }
        let subscriptions = match self.store.list_subscriptions().await {
            Ok(subscriptions) => subscriptions,
            Err(error) => {
                tracing::warn!(%error, "listing subscriptions failed");
                return;
            }
        };
        // Notices whose sending failed a while ago are tried again (the claim makes one
        // process do it).
        let mut retries = Vec::new();
        match self
            .store
            .claim_unsent_billing_notices(Utc::now() - chrono::Duration::minutes(5))
            .await
        {
            Ok(unsent) => {
                for notice in unsent {
                    let Some(subscription) = subscriptions
                        .iter()
                        .find(|s| s.tenant_id == notice.tenant_id)
                    else {
                        continue;
                    };
                    if let Ok(period) = syncline_core::billing::period_containing(
                        subscription.anchor_on,
                        subscription.plan.interval,
                        notice.period_start,
                    ) {
                        retries.push(crate::billing::FairUseCrossing {
                            tenant_id: notice.tenant_id,
                            period,
                            metric: if notice.metric == "transactions" {
                                "transactions"
                            } else {
                                "api_calls"
                            },
                            threshold: notice.threshold,
                            meter: crate::billing::Meter {
                                used: notice.used,
                                included: notice.included,
                                percent: syncline_core::billing::percent_used(
                                    notice.used,
                                    notice.included,
                                ),
                            },
                        });
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "claiming unsent fair-use notices failed"),
        }
        let mut batches = vec![retries];
        for subscription in &subscriptions {
            match crate::billing::claim_fair_use_crossings(&self.store, subscription, today).await {
                Ok(crossings) => batches.push(crossings),
                Err(error) => {
                    tracing::warn!(%error, tenant_id = %subscription.tenant_id, "fair-use check failed");
                }
            }
        }
        for crossings in batches {
            for crossing in crossings {
                tracing::info!(tenant_id = %crossing.tenant_id, metric = crossing.metric, threshold = crossing.threshold, "fair-use threshold crossed");
                match self.notifier.send_fair_use(&crossing).await {
                    Ok(()) => {
                        if let Err(error) = self
                            .store
                            .mark_billing_notice_sent(
                                crossing.tenant_id,
                                crossing.period.start,
                                crossing.metric,
                                crossing.threshold,
                            )
                            .await
                        {
                            tracing::warn!(%error, "recording a sent fair-use notice failed");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, tenant_id = %crossing.tenant_id, "fair-use notice failed");
                    }
                }
            }
        }
    }

    /// Waits for the deliveries started so far.
    pub async fn flush(&self) {
        let pending: Vec<JoinHandle<()>> = self
            .deliveries
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        for handle in pending {
            let _ = handle.await;
        }
    }

    async fn evaluate_pair(&self, pair: &Pair, report: &mut TickReport) -> Result<(), StoreError> {
        let known = self
            .ensured
            .lock()
            .map(|set| set.contains(&pair.id))
            .unwrap_or(false);
        let rules = if known {
            self.store
                .alert_rules(pair.tenant_id, Some(pair.id))
                .await?
        } else {
            let rules = self
                .store
                .ensure_alert_rules(pair.tenant_id, pair.id)
                .await?;
            if let Ok(mut set) = self.ensured.lock() {
                set.insert(pair.id);
            }
            rules
        };
        for rule in rules {
            report.evaluated += 1;
            self.evaluate_rule(pair, &rule, report).await?;
        }
        Ok(())
    }

    async fn evaluate_rule(
        &self,
        pair: &Pair,
        rule: &AlertRule,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let tenant = pair.tenant_id;
        let now = Utc::now();
        let open = self.store.open_incident_of(tenant, rule.id).await?;
        if !rule.enabled {
            // Switching a rule off ends its incident, quietly.
            if let Some(incident) = open {
                self.store.resolve_incident(tenant, incident.id).await?;
            }
            return Ok(());
        }
        let measured = self.store.measure_alert(rule, now).await?;
        let firing = measured.value >= rule.threshold
            && (rule.kind != AlertKind::FailureRate
                || measured.sample >= self.options.min_rate_sample);
        let incident = match (firing, open) {
            (false, None) => return Ok(()),
            (false, Some(incident)) => {
                if let Some(resolved) = self.store.resolve_incident(tenant, incident.id).await? {
                    report.resolved += 1;
                    tracing::info!(tenant_id = %tenant, pair_id = %pair.id, kind = rule.kind.as_str(), "incident resolved");
                    // Only incidents somebody heard about get a "resolved" message.
                    if resolved.notifications > 0 {
                        self.queue(NotificationKind::Resolved, &resolved, report)
                            .await?;
                    }
                }
                return Ok(());
            }
            (true, Some(incident)) => {
                self.store
                    .update_incident_value(
                        tenant,
                        incident.id,
                        measured.value,
                        measured.cause.as_deref(),
                    )
                    .await?;
                incident
            }
            (true, None) => {
                let new = NewIncident {
                    rule_id: rule.id,
                    pair_id: pair.id,
                    kind: rule.kind,
                    summary: format!("{}: {}", pair.name, rule.kind.title()),
                    cause: measured.cause.clone(),
                    value: measured.value,
                    runs_url: runs_url(pair, rule.kind),
                };
                match self.store.open_incident(tenant, &new).await? {
                    Some(incident) => {
                        report.opened += 1;
                        tracing::warn!(tenant_id = %tenant, pair_id = %pair.id, kind = rule.kind.as_str(), value = measured.value, "incident opened");
                        incident
                    }
                    // Another process opened it a moment ago and notifies.
                    None => return Ok(()),
                }
            }
        };
        let due_before = now - chrono::Duration::minutes(rule.renotify_minutes.max(1));
        if let Some(claimed) = self
            .store
            .claim_incident_notification(tenant, incident.id, due_before)
            .await?
        {
            report.notified += 1;
            let kind = if claimed.notifications <= 1 {
                NotificationKind::Opened
            } else {
                NotificationKind::Reminder
            };
            self.queue(kind, &claimed, report).await?;
        }
        Ok(())
    }

    /// Queues a notification for every enabled channel of the tenant.
    async fn queue(
        &self,
        kind: NotificationKind,
        incident: &Incident,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let queued = self
            .store
            .queue_alert_deliveries(incident.tenant_id, incident.id, kind.stored())
            .await?;
        if queued == 0 {
            tracing::warn!(tenant_id = %incident.tenant_id, incident_id = %incident.id, "no alert channel is enabled: nobody is notified");
        }
        report.queued += usize::try_from(queued).unwrap_or(usize::MAX);
        Ok(())
    }

    /// Claims due deliveries and sends each once in the background; failures are due again
    /// after a backoff that doubles per attempt, until `webhook_attempts` attempts.
    async fn deliver_due(&self) -> Result<(), StoreError> {
        let lease = chrono::Duration::from_std(self.options.webhook_timeout * 2)
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        for delivery in self.store.claim_alert_deliveries(100, lease).await? {
            let notifier = Arc::clone(&self.notifier);
            let store = self.store.clone();
            let options = self.options.clone();
            let handle = tokio::spawn(async move {
                let outcome = notifier.deliver_once(&delivery).await;
                let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
                let recorded = match &outcome {
                    Ok(()) => {
                        store
                            .finish_alert_delivery(delivery.tenant_id, delivery.id, Ok(()))
                            .await
                    }
                    Err(error) => {
                        let text = error.to_string();
                        let retry_at = (error.retryable() && attempts < options.webhook_attempts)
                            .then(|| {
                                let delay = options
                                    .webhook_backoff
                                    .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
                                    .min(Duration::from_secs(3600));
                                Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default()
                            });
                        if retry_at.is_some() {
                            tracing::warn!(%error, delivery_id = %delivery.id, attempts, "notification failed; will retry");
                        } else {
                            tracing::error!(%error, delivery_id = %delivery.id, attempts, "notification failed for good");
                        }
                        store
                            .finish_alert_delivery(
                                delivery.tenant_id,
                                delivery.id,
                                Err((&text, retry_at)),
                            )
                            .await
                    }
                };
                if let Err(error) = recorded {
                    // The claim lapses and the delivery is tried again: at least once.
                    tracing::error!(%error, delivery_id = %delivery.id, "recording a delivery failed");
                }
            });
            if let Ok(mut deliveries) = self.deliveries.lock() {
                deliveries.retain(|h| !h.is_finished());
                deliveries.push(handle);
            }
        }
        Ok(())
    }

    /// Checks the Shopify webhook subscriptions of every active pair whose last check is
    /// older than `webhook_check_interval` (and that no other process is checking).
    pub async fn check_webhooks(&self) -> Result<usize, StoreError> {
        // The claim outlives the slowest check: a listing and a few creations, each bounded
        // by the client's timeout.
        check_due_webhooks(
            &self.store,
            &self.options.public_url,
            self.options.webhook_check_interval,
            Duration::from_secs(300),
        )
        .await
    }

    /// Sends the daily digests due at `now` (a parameter so tests can choose the clock).
    pub async fn send_digests(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<DigestReport, StoreError> {
        send_due_digests(
            &self.store,
            self.notifier.mail(),
            &self.options.public_url,
            now,
        )
        .await
    }

    /// Runs passes until `shutdown` is cancelled, then waits for deliveries in flight.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            // The check's outcome feeds the webhook rule evaluated right after.
            if let Err(error) = self.check_webhooks().await {
                tracing::warn!(%error, "webhook subscription check failed; retrying");
            }
            match self.tick().await {
                Ok(report) if report.opened + report.notified + report.resolved > 0 => {
                    tracing::debug!(?report, "alert pass");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "alert pass failed; retrying"),
            }
            if let Err(error) = self.send_digests(Utc::now()).await {
                tracing::warn!(%error, "daily digest pass failed; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.options.interval) => {}
            }
        }
        self.flush().await;
    }
}

/// The console path listing the runs an incident is about (for a missing webhook
/// subscription, the pair's webhooks, which is where the problem shows).
fn runs_url(pair: &Pair, kind: AlertKind) -> String {
    let status = match kind {
        AlertKind::WebhookMissing => return format!("/console/pairs/{}#webhooks", pair.id),
        AlertKind::RunDead | AlertKind::DeadLetters | AlertKind::FailureRate => "&status=dead",
        AlertKind::AuthPaused | AlertKind::Throttling => "&status=retrying",
        AlertKind::BacklogAge | AlertKind::NoEvents => "",
    };
    format!("/console/runs?pair={}{status}", pair.id)
}

/// Starts the evaluator of this process; the handle ends after `shutdown` is cancelled.
pub fn spawn_alerts(
    store: Store,
    mail: Arc<dyn MailTransport>,
    options: AlertOptions,
    shutdown: CancellationToken,
) -> Result<(Arc<AlertEvaluator>, JoinHandle<()>), NotifyError> {
    let notifier = Arc::new(Notifier::new(store.clone(), mail, options.clone())?);
    let evaluator = Arc::new(AlertEvaluator::new(store, notifier, options));
    let handle = tokio::spawn(Arc::clone(&evaluator).run(shutdown));
    Ok((evaluator, handle))
}
