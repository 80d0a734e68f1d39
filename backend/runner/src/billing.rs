//! Billing that never stops data from flowing: usage of the current period against the
//! plan's fair-use volume, invoices of ended periods (prorated from the subscription's change
//! log) and payment collection behind [`PaymentProvider`].
//!
//! Overage is never enforced: crossing 80 % or 100 % of an included volume notifies the
//! tenant's owners once per threshold and period (see `alerts`), and the platform admin sees
//! the flag; syncing goes on.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use syncline_core::billing::{
    BillingError, Change, InvoiceDraft, Period, build_invoice, percent_used, period_containing,
    segments_from_changes,
};
use syncline_store::{
    Invoice, InvoiceId, InvoiceStatus, Store, StoreError, Subscription, TenantId,
};

/// Why a billing operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BillingFailure {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The money arithmetic refused its input.
    #[error(transparent)]
    Arithmetic(#[from] BillingError),
    /// The tenant has no subscription.
    #[error("the tenant has no subscription")]
    NoSubscription,
    /// The period has not started yet.
    #[error("the period starting {0} has not started yet")]
    FuturePeriod(NaiveDate),
    /// The invoice cannot change this way (already paid, void, …).
    #[error("{0}")]
    InvalidState(String),
}

/// Usage of one metric against its included volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Meter {
    /// Used so far this period (production pairs).
    pub used: i64,
    /// Included this period (per pair × production pairs subscribed).
    pub included: i64,
    /// `used / included` in whole percent.
    pub percent: i64,
}

impl Meter {
    fn new(used: i64, included: i64) -> Meter {
        Meter {
            used,
            included,
            percent: percent_used(used, included),
        }
    }

    /// Beyond the included volume.
    pub fn over(&self) -> bool {
        self.percent >= 100 && self.used > self.included
    }
}

/// One day of usage, all pairs together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayUsage {
    /// The UTC day.
    pub day: NaiveDate,
    /// Billable transactions.
    pub transactions: i64,
    /// Partner API calls.
    pub api_calls: i64,
}

/// A tenant's usage in the current billing period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageSummary {
    /// The current period.
    pub period: Period,
    /// Billable transactions of production pairs against the included volume.
    pub transactions: Meter,
    /// Partner API calls of production pairs against the included volume.
    pub api_calls: Meter,
    /// Every day of the period so far (all pairs, sandbox included), oldest first.
    pub daily: Vec<DayUsage>,
    /// Transactions of sandbox pairs (free, not counted for fair use).
    pub sandbox_transactions: i64,
}

/// The current period of a subscription and its usage.
pub async fn usage_summary(
    store: &Store,
    subscription: &Subscription,
    today: NaiveDate,
) -> Result<UsageSummary, BillingFailure> {
    let tenant = subscription.tenant_id;
    let period = period_containing(subscription.anchor_on, subscription.plan.interval, today)?;
    let rows = store.usage(tenant, period.start, period.end).await?;
    let production: Vec<_> = store
        .list_pairs(tenant)
        .await?
        .into_iter()
        .filter(|p| p.environment == "production")
        .map(|p| p.id)
        .collect();
    let (mut transactions, mut api_calls, mut sandbox) = (0i64, 0i64, 0i64);
    let mut daily: Vec<DayUsage> = Vec::new();
    let mut day = period.start;
    while day <= today && day < period.end {
        daily.push(DayUsage {
            day,
            transactions: 0,
            api_calls: 0,
        });
        day = day.succ_opt().unwrap_or(period.end);
    }
    for row in &rows {
        if production.contains(&row.pair_id) {
            transactions = transactions.saturating_add(row.transactions);
            api_calls = api_calls.saturating_add(row.api_calls);
        } else {
            sandbox = sandbox.saturating_add(row.transactions);
        }
        if let Some(entry) = daily.iter_mut().find(|d| d.day == row.day) {
            entry.transactions = entry.transactions.saturating_add(row.transactions);
            entry.api_calls = entry.api_calls.saturating_add(row.api_calls);
        }
    }
    // An annual period includes twelve months of volume.
    let months = i64::from(subscription.plan.interval.months());
    let pairs = subscription.pairs.max(0);
    let included_transactions = subscription
        .plan
        .included_transactions
        .saturating_mul(pairs)
        .saturating_mul(months);
    let included_api_calls = subscription
        .plan
        .included_api_calls
        .saturating_mul(pairs)
        .saturating_mul(months);
    Ok(UsageSummary {
        period,
        transactions: Meter::new(transactions, included_transactions),
        api_calls: Meter::new(api_calls, included_api_calls),
        daily,
        sandbox_transactions: sandbox,
    })
}

/// The invoice a period would get from the subscription's change log, not stored.
pub async fn draft_invoice(
    store: &Store,
    subscription: &Subscription,
    period: Period,
) -> Result<InvoiceDraft, BillingFailure> {
    let changes: Vec<Change> = store
        .subscription_changes(subscription.tenant_id)
        .await?
        .into_iter()
        .map(|c| Change {
            effective_on: c.effective_on,
            plan: c.plan.terms(),
            pairs: u32::try_from(c.pairs.max(0)).unwrap_or(u32::MAX),
        })
        .collect();
    let segments = segments_from_changes(period, &changes);
    Ok(build_invoice(
        period,
        subscription.plan.interval,
        &subscription.plan.currency,
        &segments,
        subscription.tax_rate,
    )?)
}

/// Days from issue to due date of a manual invoice.
pub const PAYMENT_TERMS_DAYS: i64 = 30;

/// Issues the invoice of the period containing `day` (an ended period, or the current one
/// on a platform admin's request). Issuing a period twice is
/// `Store(Conflict { constraint: "uq_invoices_tenant_id_period_start" })`.
pub async fn issue_invoice(
    store: &Store,
    tenant: TenantId,
    day: NaiveDate,
    today: NaiveDate,
) -> Result<Invoice, BillingFailure> {
    let subscription = store
        .subscription(tenant)
        .await?
        .ok_or(BillingFailure::NoSubscription)?;
    let period = period_containing(subscription.anchor_on, subscription.plan.interval, day)?;
    if period.start > today {
        return Err(BillingFailure::FuturePeriod(period.start));
    }
    let draft = draft_invoice(store, &subscription, period).await?;
    let due = today + Duration::days(PAYMENT_TERMS_DAYS);
    Ok(store
        .create_invoice(tenant, &subscription.issuer_id, &draft, today, due)
        .await?)
}

/// Issues the invoices of every subscription's last ended period that has none yet; safe to
/// run in several processes at once (the second insert of a period is a conflict, and the
/// numbering transaction gives its number back). Answers how many this call issued.
pub async fn issue_due_invoices(store: &Store, today: NaiveDate) -> Result<usize, StoreError> {
    let mut issued = 0;
    for subscription in store.list_subscriptions().await? {
        let Ok(current) =
            period_containing(subscription.anchor_on, subscription.plan.interval, today)
        else {
            continue;
        };
        // The period before the current one, if the subscription is that old.
        let Some(yesterday_of_period) = current.start.pred_opt() else {
            continue;
        };
        if yesterday_of_period < subscription.anchor_on {
            continue;
        }
        let tenant = subscription.tenant_id;
        let known = store.list_invoices(tenant).await?;
        let Ok(previous) = period_containing(
            subscription.anchor_on,
            subscription.plan.interval,
            yesterday_of_period,
        ) else {
            continue;
        };
        if known.iter().any(|i| i.period_start == previous.start) {
            continue;
        }
        match issue_invoice(store, tenant, previous.start, today).await {
            Ok(invoice) => {
                issued += 1;
                tracing::info!(tenant_id = %tenant, number = %invoice.display_number, total = %invoice.total, "invoice issued");
            }
            Err(BillingFailure::Store(error))
                if error.is_conflict_on("uq_invoices_tenant_id_period_start") => {}
            Err(error) => {
                tracing::warn!(%error, tenant_id = %tenant, "issuing an invoice failed");
            }
        }
    }
    Ok(issued)
}

/// Where an invoice stands for its payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentState {
    /// Awaiting payment, not yet due.
    Open,
    /// Awaiting payment past its due date.
    Overdue,
    /// Paid.
    Paid,
    /// Cancelled.
    Void,
}

impl PaymentState {
    /// Wire and display name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Open => "open",
            PaymentState::Overdue => "overdue",
            PaymentState::Paid => "paid",
            PaymentState::Void => "void",
        }
    }
}

/// How invoices get paid. Implementations talk to a payment service or, for manual
/// invoices, to a person; card data never reaches Syncline (a card provider would keep it
/// and hand back a reference).
pub trait PaymentProvider: Send + Sync {
    /// The provider's name, shown on invoices.
    fn name(&self) -> &'static str;

    /// How the payer should pay this invoice (printed on it).
    fn instructions(&self, invoice: &Invoice) -> String;

    /// The invoice's payment state on `today`.
    fn state(&self, invoice: &Invoice, today: NaiveDate) -> PaymentState {
        match invoice.status {
            InvoiceStatus::Paid => PaymentState::Paid,
            InvoiceStatus::Void => PaymentState::Void,
            InvoiceStatus::Open if invoice.is_overdue(today) => PaymentState::Overdue,
            InvoiceStatus::Open => PaymentState::Open,
        }
    }

    /// Records a payment received (a bank transfer's reference, a provider's charge id).
    fn mark_paid<'a>(
        &'a self,
        store: &'a Store,
        tenant: TenantId,
        invoice: InvoiceId,
        reference: &'a str,
        at: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'a, Result<Invoice, BillingFailure>>;
}

/// Manual invoicing: the customer pays by bank transfer before the due date, and a platform
/// admin marks the invoice paid with the transfer's reference.
#[derive(Debug, Clone, Default)]
pub struct ManualInvoice {
    /// Bank details printed on invoices.
    pub bank_details: String,
}

impl PaymentProvider for ManualInvoice {
    fn name(&self) -> &'static str {
        "manual invoice"
    }

    fn instructions(&self, invoice: &Invoice) -> String {
        let bank = if self.bank_details.trim().is_empty() {
            "the bank account agreed in your contract".to_owned()
        } else {
            self.bank_details.trim().to_owned()
        };
        format!(
            "Please pay {} {} by bank transfer to {bank} by {}, quoting {}.",
            invoice.total, invoice.currency, invoice.due_on, invoice.display_number
        )
    }

    fn mark_paid<'a>(
        &'a self,
        store: &'a Store,
        tenant: TenantId,
        invoice: InvoiceId,
        reference: &'a str,
        at: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'a, Result<Invoice, BillingFailure>> {
        Box::pin(async move {
            let reference = reference.trim();
            if reference.is_empty() {
                return Err(BillingFailure::InvalidState(
                    "enter the payment's reference (e.g. the bank transfer's id)".into(),
                ));
            }
            match store
                .mark_invoice_paid(tenant, invoice, reference, at)
                .await
            {
                Ok(invoice) => Ok(invoice),
                Err(error) if error.is_conflict_on("invoice_not_open") => Err(
                    BillingFailure::InvalidState("this invoice is not open".into()),
                ),
                Err(error) => Err(error.into()),
            }
        })
    }
}

/// The fair-use thresholds notified, in percent.
pub const FAIR_USE_THRESHOLDS: [i64; 2] = [80, 100];

/// A fair-use threshold crossed for the first time this period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FairUseCrossing {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The period.
    pub period: Period,
    /// `transactions` or `api_calls`.
    pub metric: &'static str,
    /// 80 or 100.
    pub threshold: i64,
    /// The meter when crossed.
    pub meter: Meter,
}

/// Records (once per tenant, period, metric and threshold) every fair-use threshold the
/// tenant's usage crossed; answers those this call recorded, which the caller notifies.
pub async fn claim_fair_use_crossings(
    store: &Store,
    subscription: &Subscription,
    today: NaiveDate,
) -> Result<Vec<FairUseCrossing>, BillingFailure> {
    let summary = usage_summary(store, subscription, today).await?;
    let mut crossings = Vec::new();
    for (metric, meter) in [
        ("transactions", summary.transactions),
        ("api_calls", summary.api_calls),
    ] {
        if meter.included <= 0 {
            continue;
        }
        for threshold in FAIR_USE_THRESHOLDS {
            if meter.percent < threshold {
                continue;
            }
            if store
                .claim_billing_notice(
                    subscription.tenant_id,
                    summary.period.start,
                    metric,
                    threshold,
                    meter.used,
                    meter.included,
                )
                .await?
            {
                crossings.push(FairUseCrossing {
                    tenant_id: subscription.tenant_id,
                    period: summary.period,
                    metric,
                    threshold,
                    meter,
                });
            }
        }
    }
    Ok(crossings)
}

/// A decimal amount with its currency, for messages ("1,797.00 USD" without grouping).
pub fn money(amount: Decimal, currency: &str) -> String {
    format!("{amount} {currency}")
}
