//! The daily digest: once per UTC day, at or after the tenant's chosen hour, one plain-text
//! email to the chosen addresses with the last 24 hours' runs by outcome per pair, the most
//! frequent errors, the backlog and the open incidents.
//!
//! A row keyed by (tenant, day) is claimed before sending, so restarts and several worker
//! processes never send a day's digest twice; a failed send gives the claim back so a later
//! pass tries again. A process that dies between claiming and sending loses that day's digest
//! rather than risk a duplicate.

use chrono::{DateTime, Timelike, Utc};
use syncline_store::{DigestFigures, DigestSettings, Store, StoreError, TenantId, TenantStatus};

use super::notify::MailTransport;

/// What one digest pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestReport {
    /// Digests sent (one per tenant).
    pub sent: usize,
    /// Digests whose sending failed (they are tried again on a later pass).
    pub failed: usize,
}

/// The digest's subject and body.
pub fn render_digest(
    tenant_name: &str,
    day: &str,
    figures: &DigestFigures,
    open_incidents: i64,
    public_url: &str,
    now: DateTime<Utc>,
) -> (String, String) {
    let succeeded: i64 = figures.pairs.iter().map(|p| p.succeeded).sum();
    let failed: i64 = figures.pairs.iter().map(|p| p.failed).sum();
    let backlog: i64 = figures.pairs.iter().map(|p| p.backlog).sum();
    let subject = format!(
        "[Syncline] Daily digest for {tenant_name} ({day}): {succeeded} succeeded, {failed} failed, {backlog} waiting"
    );
    let mut body = format!(
        "Daily digest for {tenant_name}: runs created in the 24 hours before {}.\n\n",
        now.format("%Y-%m-%d %H:%M UTC")
    );
    body.push_str("Runs by pair\n");
    if figures.pairs.is_empty() {
        body.push_str("  (no pairs)\n");
    }
    for pair in &figures.pairs {
        body.push_str(&format!(
            "  {}: {} succeeded, {} failed, {} in progress; backlog {}\n",
            pair.name, pair.succeeded, pair.failed, pair.pending, pair.backlog
        ));
    }
    body.push_str("\nTop errors\n");
    if figures.top_errors.is_empty() {
        body.push_str("  (none)\n");
    }
    for (error, count) in &figures.top_errors {
        body.push_str(&format!("  {count} × {error}\n"));
    }
    body.push_str(&format!(
        "\nBacklog: {backlog} run(s) waiting or in progress"
    ));
    if let Some(oldest) = figures.oldest_waiting {
        body.push_str(&format!(
            ", the oldest for {} minutes",
            (now - oldest).num_minutes().max(0)
        ));
    }
    body.push_str(&format!(
        ".\nOpen incidents: {open_incidents}.\n\nDashboard: {public_url}/console\nIncidents: {public_url}/console/incidents\n\
         Change or switch off this digest: {public_url}/console/alerts\n"
    ));
    (subject, body)
}

/// Sends the digest of every tenant that has one due at `now` and was not sent today.
pub async fn send_due_digests(
    store: &Store,
    mail: &dyn MailTransport,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<DigestReport, StoreError> {
    let mut report = DigestReport::default();
    let day = now.format("%Y-%m-%d").to_string();
    for (tenant, settings) in store.enabled_digests().await? {
        if i64::from(now.hour()) < settings.hour_utc || settings.recipients.is_empty() {
            continue;
        }
        let Some(found) = store.tenant(tenant).await? else {
            continue;
        };
        if found.status == TenantStatus::Suspended {
            continue;
        }
        if !store.claim_digest(tenant, &day).await? {
            continue;
        }
        match send_one(
            store,
            mail,
            public_url,
            now,
            tenant,
            &found.name,
            &day,
            &settings,
        )
        .await
        {
            Ok(()) => {
                store.finish_digest(tenant, &day).await?;
                report.sent += 1;
                tracing::info!(tenant_id = %tenant, %day, "daily digest sent");
            }
            Err(error) => {
                store.release_digest(tenant, &day).await?;
                report.failed += 1;
                tracing::warn!(tenant_id = %tenant, %day, %error, "daily digest failed; will retry");
            }
        }
    }
    Ok(report)
}

/// Renders and sends one tenant's digest; the error is a human-readable cause.
#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename them.
async fn send_one(
    store: &Store,
    mail: &dyn MailTransport,
    public_url: &str,
    now: DateTime<Utc>,
    tenant: TenantId,
    tenant_name: &str,
    day: &str,
    settings: &DigestSettings,
) -> Result<(), String> {
    let since = now - chrono::Duration::hours(24);
    let figures = store
        .digest_figures(tenant, since, now)
        .await
        .map_err(|e| e.to_string())?;
    let open = store
        .count_open_incidents(tenant)
        .await
        .map_err(|e| e.to_string())?;
    let (subject, body) = render_digest(tenant_name, day, &figures, open, public_url, now);
    let mut failures = Vec::new();
    for to in &settings.recipients {
        if let Err(error) = mail.send(to, &subject, &body).await {
            failures.push(format!("{to}: {error}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
