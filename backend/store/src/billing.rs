//! Billing per integration pair: the plan catalogue, one subscription per tenant with its
//! change log (invoices prorate from it), metering of billable transactions and partner API
//! calls per pair per day, invoices numbered without gaps per issuer, and fair-use notices.
//!
//! Money is stored as decimal text and read back into `rust_decimal`, so both backends keep
//! every cent exactly.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use syncline_core::billing::{Interval, InvoiceDraft, PlanTerms};

use crate::pool::{on_pool, on_write};
use crate::{InvoiceId, PairId, PlanId, RunId, Store, StoreError, TenantId};

fn decimal(what: &'static str, value: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(value).map_err(|e| StoreError::Corrupt {
        what,
        detail: format!("{value:?}: {e}"),
    })
}

/// A plan of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Primary key.
    pub id: PlanId,
    /// Unique short code, e.g. `connect`.
    pub code: String,
    /// Display name, e.g. "Connect".
    pub name: String,
    /// Price per production pair per month.
    pub price_per_pair: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Monthly or annual invoicing.
    pub interval: Interval,
    /// Fair-use transactions included per production pair per month.
    pub included_transactions: i64,
    /// Fair-use partner API calls included per production pair per month.
    pub included_api_calls: i64,
    /// Sandbox pairs allowed (free).
    pub sandbox_pairs: i64,
    /// Offered to new subscriptions.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl Plan {
    /// What invoices need of the plan.
    pub fn terms(&self) -> PlanTerms {
        PlanTerms {
            name: self.name.clone(),
            price_per_pair: self.price_per_pair,
            currency: self.currency.clone(),
            interval: self.interval,
        }
    }
}

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: PlanId,
    code: String,
    name: String,
    price_per_pair: String,
    currency: String,
    billing_interval: String,
    included_transactions: i64,
    included_api_calls: i64,
    sandbox_pairs: i64,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PlanRow> for Plan {
    type Error = StoreError;
    fn try_from(row: PlanRow) -> Result<Self, StoreError> {
        Ok(Plan {
            id: row.id,
            code: row.code,
            name: row.name,
            price_per_pair: decimal("billing_plans.price_per_pair", &row.price_per_pair)?,
            currency: row.currency,
            interval: Interval::parse(&row.billing_interval).ok_or_else(|| {
                StoreError::Corrupt {
                    what: "billing_plans.billing_interval",
                    detail: row.billing_interval.clone(),
                }
            })?,
            included_transactions: row.included_transactions,
            included_api_calls: row.included_api_calls,
            sandbox_pairs: row.sandbox_pairs,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const PLAN_COLUMNS: &str = "id, code, name, price_per_pair, currency, billing_interval, included_transactions, \
                            included_api_calls, sandbox_pairs, active, created_at, updated_at";

/// What it takes to create or change a plan.
#[derive(Debug, Clone)]
pub struct NewPlan {
    /// Unique short code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Price per production pair per month.
    pub price_per_pair: Decimal,
    /// ISO 4217 code.
    pub currency: String,
    /// Monthly or annual.
    pub interval: Interval,
    /// Fair-use transactions per pair per month.
    pub included_transactions: i64,
    /// Fair-use partner API calls per pair per month.
    pub included_api_calls: i64,
    /// Free sandbox pairs allowed.
    pub sandbox_pairs: i64,
    /// Offered to new subscriptions.
    pub active: bool,
}

/// Whether a subscription lets pairs process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Paid up: pairs process.
    Active,
    /// Stopped by a platform admin: processing pauses, webhooks are still stored.
    Suspended,
    /// Ended unpaid: processing pauses, webhooks are still stored.
    Lapsed,
}

impl SubscriptionStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Suspended => "suspended",
            SubscriptionStatus::Lapsed => "lapsed",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(SubscriptionStatus::Active),
            "suspended" => Some(SubscriptionStatus::Suspended),
            "lapsed" => Some(SubscriptionStatus::Lapsed),
            _ => None,
        }
    }
}

/// A tenant's subscription.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    /// The tenant (one subscription each).
    pub tenant_id: TenantId,
    /// The current plan.
    pub plan: Plan,
    /// Production pairs paid for.
    pub pairs: i64,
    /// Active, suspended or lapsed.
    pub status: SubscriptionStatus,
    /// The day billing periods are anchored on.
    pub anchor_on: NaiveDate,
    /// Tax rate as a fraction (0.2 = 20 %).
    pub tax_rate: Decimal,
    /// Who issues the invoices.
    pub issuer_id: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    tenant_id: TenantId,
    plan_id: PlanId,
    pairs: i64,
    status: String,
    anchor_on: NaiveDate,
    tax_rate: String,
    issuer_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const SUBSCRIPTION_COLUMNS: &str =
    "tenant_id, plan_id, pairs, status, anchor_on, tax_rate, issuer_id, created_at, updated_at";

/// One entry of a subscription's change log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionChange {
    /// The first day it applies.
    pub effective_on: NaiveDate,
    /// The plan from then on.
    pub plan: Plan,
    /// Pairs from then on.
    pub pairs: i64,
    /// Who changed it.
    pub actor: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Usage of one pair on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DailyUsage {
    /// The pair.
    pub pair_id: PairId,
    /// The UTC day.
    pub day: NaiveDate,
    /// Billable transactions (successful record syncs).
    pub transactions: i64,
    /// Partner API calls (fair use).
    pub api_calls: i64,
}

/// A billable transaction to meter: one successful sync of one record.
#[derive(Debug, Clone)]
pub struct BillableEvent<'a> {
    /// The pair it ran on.
    pub pair_id: PairId,
    /// e.g. `orders`.
    pub flow: &'a str,
    /// e.g. `create`, `update`, `cancel`.
    pub action: &'a str,
    /// The source record (and version, for updates): the idempotency key with the above.
    pub record_id: &'a str,
    /// The run that synced it (for tracing; not part of the key).
    pub run_id: RunId,
    /// When it succeeded.
    pub at: DateTime<Utc>,
}

/// Invoice lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InvoiceStatus {
    /// Issued, awaiting payment (overdue once past its due date).
    Open,
    /// Paid.
    Paid,
    /// Cancelled.
    Void,
}

impl InvoiceStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
        }
    }

    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "open" => Ok(InvoiceStatus::Open),
            "paid" => Ok(InvoiceStatus::Paid),
            "void" => Ok(InvoiceStatus::Void),
            other => Err(StoreError::Corrupt {
                what: "invoices.status",
                detail: other.to_owned(),
            }),
        }
    }
}

/// An issued invoice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invoice {
    /// Primary key.
    pub id: InvoiceId,
    /// The customer.
    pub tenant_id: TenantId,
    /// Who issued it.
    pub issuer_id: String,
    /// Sequential per issuer, from 1, without gaps.
    pub number: i64,
    /// The issuer's prefix and the number, e.g. `SYN-000042`.
    pub display_number: String,
    /// First day of the period invoiced.
    pub period_start: NaiveDate,
    /// The day after the period's last day.
    pub period_end: NaiveDate,
    /// ISO 4217 code.
    pub currency: String,
    /// Sum of the lines.
    pub subtotal: Decimal,
    /// Tax rate as a fraction.
    pub tax_rate: Decimal,
    /// Tax amount.
    pub tax: Decimal,
    /// Subtotal plus tax.
    pub total: Decimal,
    /// Open, paid or void.
    pub status: InvoiceStatus,
    /// Issue date.
    pub issued_on: NaiveDate,
    /// Payment due date.
    pub due_on: NaiveDate,
    /// When it was marked paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// The payment's reference (bank transfer id, …); never card data.
    pub payment_reference: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl Invoice {
    /// Open and past its due date.
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        self.status == InvoiceStatus::Open && self.due_on < today
    }

    /// The last day of the period (inclusive), for display.
    pub fn period_last_day(&self) -> NaiveDate {
        self.period_end.pred_opt().unwrap_or(self.period_end)
    }
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    id: InvoiceId,
    tenant_id: TenantId,
    issuer_id: String,
    number: i64,
    prefix: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    currency: String,
    subtotal: String,
    tax_rate: String,
    tax: String,
    total: String,
    status: String,
    issued_on: NaiveDate,
    due_on: NaiveDate,
    paid_at: Option<DateTime<Utc>>,
    payment_reference: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<InvoiceRow> for Invoice {
    type Error = StoreError;
    fn try_from(row: InvoiceRow) -> Result<Self, StoreError> {
        Ok(Invoice {
            id: row.id,
            tenant_id: row.tenant_id,
            display_number: format!("{}-{:06}", row.prefix, row.number),
            issuer_id: row.issuer_id,
            number: row.number,
            period_start: row.period_start,
            period_end: row.period_end,
            currency: row.currency,
            subtotal: decimal("invoices.subtotal", &row.subtotal)?,
            tax_rate: decimal("invoices.tax_rate", &row.tax_rate)?,
            tax: decimal("invoices.tax", &row.tax)?,
            total: decimal("invoices.total", &row.total)?,
            status: InvoiceStatus::parse(&row.status)?,
            issued_on: row.issued_on,
            due_on: row.due_on,
            paid_at: row.paid_at,
            payment_reference: row.payment_reference,
            created_at: row.created_at,
        })
    }
}

const INVOICE_SELECT: &str = "SELECT i.id, i.tenant_id, i.issuer_id, i.number, b.prefix, i.period_start, i.period_end, \
     i.currency, i.subtotal, i.tax_rate, i.tax, i.total, i.status, i.issued_on, i.due_on, i.paid_at, \
     i.payment_reference, i.created_at FROM invoices i JOIN billing_issuers b ON b.id = i.issuer_id";

/// One line of a stored invoice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceLine {
    /// 1-based position.
    pub position: i64,
    /// What is charged.
    pub description: String,
    /// Days charged.
    pub days: i64,
    /// Days in the period.
    pub period_days: i64,
    /// Full-period price of one pair.
    pub unit_price: Decimal,
    /// Amount charged.
    pub amount: Decimal,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    position: i64,
    description: String,
    days: i64,
    period_days: i64,
    unit_price: String,
    amount: String,
}

/// Who issues invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Issuer {
    /// Primary key, e.g. `syncline`.
    pub id: String,
    /// Legal name.
    pub name: String,
    /// Address and tax number, printed on invoices.
    pub details: String,
    /// Invoice number prefix.
    pub prefix: String,
}

/// A fair-use notice: a tenant crossed 80 % or 100 % of an included volume in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BillingNotice {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The billing period's first day.
    pub period_start: NaiveDate,
    /// `transactions` or `api_calls`.
    pub metric: String,
    /// 80 or 100 (percent).
    pub threshold: i64,
    /// Usage when it was crossed.
    pub used: i64,
    /// Included volume.
    pub included: i64,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it was sent (None: not yet).
    pub sent_at: Option<DateTime<Utc>>,
}

/// Meters a billable transaction unless its key was counted; returns the new row's id.
/// `$1`…`$9`: id, tenant, pair, flow, action, record id, run, day, time.
pub(crate) const RECORD_BILLABLE: &str = "INSERT INTO billable_events (id, tenant_id, pair_id, flow, action, record_id, run_id, day, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (pair_id, flow, action, record_id) DO NOTHING RETURNING id";

impl Store {
    /// Adds a plan to the catalogue; a taken code is `Conflict { constraint: "uq_billing_plans_code" }`.
    pub async fn create_plan(&self, new: &NewPlan) -> Result<Plan, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO billing_plans (id, code, name, price_per_pair, currency, billing_interval, included_transactions, \
             included_api_calls, sandbox_pairs, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {PLAN_COLUMNS}"
        );
        let row: PlanRow = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(PlanId::new())
                .bind(new.code.trim())
                .bind(new.name.trim())
                .bind(new.price_per_pair.to_string())
                .bind(&new.currency)
                .bind(new.interval.as_str())
                .bind(new.included_transactions)
                .bind(new.included_api_calls)
                .bind(new.sandbox_pairs)
                .bind(new.active)
                .bind(now)
                .fetch_one(pool)
                .await
        })?;
        row.try_into()
    }

    /// Changes a plan. Existing invoices keep their amounts; open periods bill the new terms.
    pub async fn update_plan(&self, id: PlanId, new: &NewPlan) -> Result<Plan, StoreError> {
        let sql = format!(
            "UPDATE billing_plans SET code = $2, name = $3, price_per_pair = $4, currency = $5, billing_interval = $6, \
             included_transactions = $7, included_api_calls = $8, sandbox_pairs = $9, active = $10, updated_at = $11 \
             WHERE id = $1 RETURNING {PLAN_COLUMNS}"
        );
        let row: Option<PlanRow> = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(new.code.trim())
                .bind(new.name.trim())
                .bind(new.price_per_pair.to_string())
                .bind(&new.currency)
                .bind(new.interval.as_str())
                .bind(new.included_transactions)
                .bind(new.included_api_calls)
                .bind(new.sandbox_pairs)
                .bind(new.active)
                .bind(Utc::now())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Every plan, by price then name.
    pub async fn list_plans(&self) -> Result<Vec<Plan>, StoreError> {
        let sql = format!("SELECT {PLAN_COLUMNS} FROM billing_plans ORDER BY name, id");
        let rows: Vec<PlanRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter().map(Plan::try_from).collect()
    }

    /// One plan.
    pub async fn plan(&self, id: PlanId) -> Result<Option<Plan>, StoreError> {
        let sql = format!("SELECT {PLAN_COLUMNS} FROM billing_plans WHERE id = $1");
        let row: Option<PlanRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.map(Plan::try_from).transpose()
    }

    /// One plan by its code.
    pub async fn plan_by_code(&self, code: &str) -> Result<Option<Plan>, StoreError> {
        let sql = format!("SELECT {PLAN_COLUMNS} FROM billing_plans WHERE code = $1");
        let row: Option<PlanRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(code).fetch_optional(pool).await)?;
        row.map(Plan::try_from).transpose()
    }

    async fn subscription_from(&self, row: SubscriptionRow) -> Result<Subscription, StoreError> {
        let plan = self.plan(row.plan_id).await?.ok_or(StoreError::Corrupt {
            what: "subscriptions.plan_id",
            detail: row.plan_id.to_string(),
        })?;
        Ok(Subscription {
            tenant_id: row.tenant_id,
            plan,
            pairs: row.pairs,
            status: SubscriptionStatus::parse(&row.status).ok_or_else(|| StoreError::Corrupt {
                what: "subscriptions.status",
                detail: row.status.clone(),
            })?,
            anchor_on: row.anchor_on,
            tax_rate: decimal("subscriptions.tax_rate", &row.tax_rate)?,
            issuer_id: row.issuer_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// The tenant's subscription, if it has one.
    pub async fn subscription(&self, tenant: TenantId) -> Result<Option<Subscription>, StoreError> {
        let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant_id = $1");
        let row: Option<SubscriptionRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).fetch_optional(pool).await)?;
        match row {
            Some(row) => Ok(Some(self.subscription_from(row).await?)),
            None => Ok(None),
        }
    }

    /// Every subscription, for the platform admin's overview.
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY created_at, tenant_id"
        );
        let rows: Vec<SubscriptionRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        let mut subscriptions = Vec::with_capacity(rows.len());
        for row in rows {
            subscriptions.push(self.subscription_from(row).await?);
        }
        Ok(subscriptions)
    }

    /// Subscribes a tenant (or changes its subscription): plan and pairs from `effective_on`
    /// on, recorded in the change log so invoices prorate by day. A new subscription's
    /// periods are anchored on `effective_on`.
    pub async fn set_subscription(
        &self,
        tenant: TenantId,
        plan: PlanId,
        pairs: i64,
        effective_on: NaiveDate,
        tax_rate: Decimal,
        actor: &str,
    ) -> Result<Subscription, StoreError> {
        let now = Utc::now();
        let upsert = "INSERT INTO subscriptions (tenant_id, plan_id, pairs, status, anchor_on, tax_rate, issuer_id, created_at, updated_at) \
                      VALUES ($1, $2, $3, 'active', $4, $5, 'syncline', $6, $6) \
                      ON CONFLICT (tenant_id) DO UPDATE SET plan_id = $2, pairs = $3, tax_rate = $5, updated_at = $6";
        let plan_code = "UPDATE tenants SET plan = (SELECT code FROM billing_plans WHERE id = $2), updated_at = $3 WHERE id = $1";
        let log = "INSERT INTO subscription_changes (id, tenant_id, effective_on, plan_id, pairs, actor, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_write!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(upsert).bind(tenant).bind(plan).bind(pairs.max(0)).bind(effective_on)
                    .bind(tax_rate.to_string()).bind(now).execute(&mut *tx).await?;
                sqlx::query(log).bind(uuid::Uuid::now_v7()).bind(tenant).bind(effective_on).bind(plan)
                    .bind(pairs.max(0)).bind(actor).bind(now).execute(&mut *tx).await?;
                // The tenant list shows the plan's code.
                sqlx::query(plan_code).bind(tenant).bind(plan).bind(now).execute(&mut *tx).await?;
                tx.commit().await
            }.await
        })?;
        self.subscription(tenant).await?.ok_or(StoreError::NotFound)
    }

    /// Suspends, lapses or reactivates a subscription.
    pub async fn set_subscription_status(
        &self,
        tenant: TenantId,
        status: SubscriptionStatus,
    ) -> Result<Subscription, StoreError> {
        let sql = "UPDATE subscriptions SET status = $2, updated_at = $3 WHERE tenant_id = $1";
        let changed = on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(status.as_str()).bind(Utc::now()).execute(pool).await.map(|r| r.rows_affected())
        })?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.subscription(tenant).await?.ok_or(StoreError::NotFound)
    }

    /// The subscription's change log, oldest first.
    pub async fn subscription_changes(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<SubscriptionChange>, StoreError> {
        let sql = "SELECT effective_on, plan_id, pairs, actor, created_at FROM subscription_changes \
                   WHERE tenant_id = $1 ORDER BY effective_on, created_at, id";
        let rows: Vec<(NaiveDate, PlanId, i64, String, DateTime<Utc>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).fetch_all(pool).await)?;
        let mut changes = Vec::with_capacity(rows.len());
        for (effective_on, plan_id, pairs, actor, created_at) in rows {
            let plan = self.plan(plan_id).await?.ok_or(StoreError::Corrupt {
                what: "subscription_changes.plan_id",
                detail: plan_id.to_string(),
            })?;
            changes.push(SubscriptionChange {
                effective_on,
                plan,
                pairs,
                actor,
                created_at,
            });
        }
        Ok(changes)
    }

    /// Why the tenant's pairs must not process now: the tenant is suspended or its
    /// subscription is suspended or lapsed. Tenants without a subscription process (billing
    /// is opt-in per tenant: a trial, or a platform without billing).
    pub async fn processing_hold(
        &self,
        tenant: TenantId,
    ) -> Result<Option<&'static str>, StoreError> {
        let sql = "SELECT t.status, s.status FROM tenants t LEFT JOIN subscriptions s ON s.tenant_id = t.id WHERE t.id = $1";
        let row: Option<(String, Option<String>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).fetch_optional(pool).await)?;
        Ok(hold_reason(
            row.as_ref().map(|(t, s)| (t.as_str(), s.as_deref())),
        ))
    }

    /// Meters one billable transaction, once: the key is (pair, flow, action, record), so a
    /// retry, a replay or a duplicated webhook of the same sync is not counted again. Answers
    /// whether it was counted now. One statement: the day's count is read from these rows.
    pub async fn record_billable(
        &self,
        tenant: TenantId,
        event: &BillableEvent<'_>,
    ) -> Result<bool, StoreError> {
        let inserted: Option<uuid::Uuid> = on_write!(self, pool => {
            sqlx::query_scalar(RECORD_BILLABLE)
                .bind(uuid::Uuid::now_v7()).bind(tenant).bind(event.pair_id).bind(event.flow)
                .bind(event.action).bind(event.record_id).bind(event.run_id).bind(event.at.date_naive()).bind(event.at)
                .fetch_optional(pool).await
        })?;
        Ok(inserted.is_some())
    }

    /// Adds partner API calls of one attempt to the pair's day (fair use; not billed).
    pub async fn add_api_calls(
        &self,
        tenant: TenantId,
        pair: PairId,
        day: NaiveDate,
        calls: i64,
    ) -> Result<(), StoreError> {
        if calls <= 0 {
            return Ok(());
        }
        let sql = "INSERT INTO usage_daily (tenant_id, pair_id, day, api_calls) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (pair_id, day) DO UPDATE SET api_calls = usage_daily.api_calls + $4";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(pair).bind(day).bind(calls).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// The tenant's usage per pair per day in `[from, to)`, by day then pair.
    pub async fn usage(
        &self,
        tenant: TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>, StoreError> {
        let sql = "SELECT pair_id, day, CAST(SUM(transactions) AS BIGINT) AS transactions, CAST(SUM(api_calls) AS BIGINT) AS api_calls FROM ( \
                     SELECT pair_id, day, COUNT(*) AS transactions, CAST(0 AS BIGINT) AS api_calls FROM billable_events \
                     WHERE tenant_id = $1 AND day >= $2 AND day < $3 GROUP BY pair_id, day \
                     UNION ALL \
                     SELECT pair_id, day, CAST(0 AS BIGINT) AS transactions, api_calls FROM usage_daily \
                     WHERE tenant_id = $1 AND day >= $2 AND day < $3 \
                   ) u GROUP BY pair_id, day ORDER BY day, pair_id";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(from).bind(to).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// The tenant's billable events of one pair (for audits and tests), oldest first:
    /// (flow, action, record id).
    pub async fn billable_events(
        &self,
        tenant: TenantId,
        pair: PairId,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let sql = "SELECT flow, action, record_id FROM billable_events WHERE tenant_id = $1 AND pair_id = $2 ORDER BY created_at, id";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(pair).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// Issues an invoice: takes the issuer's next number and stores the invoice with its lines
    /// in one transaction, so numbers are sequential without gaps under any concurrency (the
    /// counter row is locked until commit; a failed insert gives the number back). A period
    /// already invoiced is `Conflict { constraint: "uq_invoices_tenant_id_period_start" }`.
    pub async fn create_invoice(
        &self,
        tenant: TenantId,
        issuer: &str,
        draft: &InvoiceDraft,
        issued_on: NaiveDate,
        due_on: NaiveDate,
    ) -> Result<Invoice, StoreError> {
        let id = InvoiceId::new();
        let now = Utc::now();
        let take = "UPDATE billing_issuers SET next_number = next_number + 1 WHERE id = $1 RETURNING next_number - 1";
        let insert = "INSERT INTO invoices (id, tenant_id, issuer_id, number, period_start, period_end, currency, subtotal, \
                      tax_rate, tax, total, status, issued_on, due_on, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $12, $13, $14)";
        let line_sql = "INSERT INTO invoice_lines (invoice_id, tenant_id, position, description, days, period_days, unit_price, amount) \
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_write!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let number: i64 = sqlx::query_scalar(take).bind(issuer).fetch_one(&mut *tx).await?;
                sqlx::query(insert)
                    .bind(id).bind(tenant).bind(issuer).bind(number)
                    .bind(draft.period.start).bind(draft.period.end).bind(&draft.currency)
                    .bind(draft.subtotal.to_string()).bind(draft.tax_rate.to_string())
                    .bind(draft.tax.to_string()).bind(draft.total.to_string())
                    .bind(issued_on).bind(due_on).bind(now)
                    .execute(&mut *tx).await?;
                for (index, line) in draft.lines.iter().enumerate() {
                    sqlx::query(line_sql)
                        .bind(id).bind(tenant).bind(i64::try_from(index + 1).unwrap_or(i64::MAX))
                        .bind(&line.description).bind(line.days).bind(line.period_days)
                        .bind(line.unit_price.to_string()).bind(line.amount.to_string())
                        .execute(&mut *tx).await?;
                }
                tx.commit().await
            }.await
        })?;
        self.invoice(tenant, id).await?.ok_or(StoreError::NotFound)
    }

    /// One of the tenant's invoices.
    pub async fn invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
    ) -> Result<Option<Invoice>, StoreError> {
        let sql = format!("{INVOICE_SELECT} WHERE i.tenant_id = $1 AND i.id = $2");
        let row: Option<InvoiceRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        row.map(Invoice::try_from).transpose()
    }

    /// The lines of one of the tenant's invoices, in order.
    pub async fn invoice_lines(
        &self,
        tenant: TenantId,
        id: InvoiceId,
    ) -> Result<Vec<InvoiceLine>, StoreError> {
        let sql = "SELECT position, description, days, period_days, unit_price, amount FROM invoice_lines \
                   WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY position";
        let rows: Vec<LineRow> = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(id).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|row| {
                Ok(InvoiceLine {
                    position: row.position,
                    description: row.description,
                    days: row.days,
                    period_days: row.period_days,
                    unit_price: decimal("invoice_lines.unit_price", &row.unit_price)?,
                    amount: decimal("invoice_lines.amount", &row.amount)?,
                })
            })
            .collect()
    }

    /// The tenant's invoices, newest period first.
    pub async fn list_invoices(&self, tenant: TenantId) -> Result<Vec<Invoice>, StoreError> {
        let sql = format!(
            "{INVOICE_SELECT} WHERE i.tenant_id = $1 ORDER BY i.period_start DESC, i.number DESC"
        );
        let rows: Vec<InvoiceRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).fetch_all(pool).await)?;
        rows.into_iter().map(Invoice::try_from).collect()
    }

    /// Every open invoice of every tenant (the admin's receivables), oldest due first.
    pub async fn open_invoices(&self) -> Result<Vec<Invoice>, StoreError> {
        let sql = format!("{INVOICE_SELECT} WHERE i.status = 'open' ORDER BY i.due_on, i.number");
        let rows: Vec<InvoiceRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter().map(Invoice::try_from).collect()
    }

    /// Marks an open invoice paid with the payment's reference; a paid or void one is
    /// `Conflict { constraint: "invoice_not_open" }`.
    pub async fn mark_invoice_paid(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        reference: &str,
        at: DateTime<Utc>,
    ) -> Result<Invoice, StoreError> {
        let sql = "UPDATE invoices SET status = 'paid', paid_at = $3, payment_reference = $4 \
                   WHERE tenant_id = $1 AND id = $2 AND status = 'open'";
        let changed = on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(id).bind(at).bind(reference).execute(pool).await.map(|r| r.rows_affected())
        })?;
        let invoice = self
            .invoice(tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if changed == 0 {
            return Err(StoreError::Conflict {
                constraint: "invoice_not_open".into(),
            });
        }
        Ok(invoice)
    }

    /// The issuer with this id.
    pub async fn issuer(&self, id: &str) -> Result<Option<Issuer>, StoreError> {
        let sql = "SELECT id, name, details, prefix FROM billing_issuers WHERE id = $1";
        let row = on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        Ok(row)
    }

    /// Sets the issuer's printed name and details (address, tax number).
    pub async fn update_issuer(
        &self,
        id: &str,
        name: &str,
        details: &str,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE billing_issuers SET name = $2, details = $3 WHERE id = $1";
        on_write!(self, pool => sqlx::query(sql).bind(id).bind(name).bind(details).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Records a fair-use notice once per (tenant, period, metric, threshold); answers
    /// whether this call recorded it (and so must send it).
    pub async fn claim_billing_notice(
        &self,
        tenant: TenantId,
        period_start: NaiveDate,
        metric: &str,
        threshold: i64,
        used: i64,
        included: i64,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO billing_notices (tenant_id, period_start, metric, threshold, used, included, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, period_start, metric, threshold) DO NOTHING";
        let inserted = on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(period_start).bind(metric).bind(threshold).bind(used).bind(included).bind(Utc::now())
                .execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(inserted > 0)
    }

    /// Marks a notice sent.
    pub async fn mark_billing_notice_sent(
        &self,
        tenant: TenantId,
        period_start: NaiveDate,
        metric: &str,
        threshold: i64,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE billing_notices SET sent_at = $5 WHERE tenant_id = $1 AND period_start = $2 AND metric = $3 AND threshold = $4";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(period_start).bind(metric).bind(threshold).bind(Utc::now()).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Claims notices recorded before `before` whose sending failed (or whose sender died),
    /// for another attempt: the claim moves their time to now, so exactly one caller gets
    /// each.
    pub async fn claim_unsent_billing_notices(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<BillingNotice>, StoreError> {
        let sql = "UPDATE billing_notices SET created_at = $2 WHERE sent_at IS NULL AND created_at < $1 \
                   RETURNING tenant_id, period_start, metric, threshold, used, included, created_at, sent_at";
        let rows = on_write!(self, pool => sqlx::query_as(sql).bind(before).bind(Utc::now()).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// The tenant's notices of one period.
    pub async fn billing_notices(
        &self,
        tenant: TenantId,
        period_start: NaiveDate,
    ) -> Result<Vec<BillingNotice>, StoreError> {
        let sql = "SELECT tenant_id, period_start, metric, threshold, used, included, created_at, sent_at FROM billing_notices \
                   WHERE tenant_id = $1 AND period_start = $2 ORDER BY metric, threshold";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(period_start).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// Production pairs that are active or paused (the entitlement counts these) and sandbox
    /// ones, of one tenant: (production, sandbox).
    pub async fn live_pair_counts(&self, tenant: TenantId) -> Result<(i64, i64), StoreError> {
        let production = self.count_live_pairs(tenant, "production").await?;
        let sandbox = self.count_live_pairs(tenant, "sandbox").await?;
        Ok((production, sandbox))
    }
}

/// The hold reason for a tenant status and an optional subscription status.
pub(crate) fn hold_reason(row: Option<(&str, Option<&str>)>) -> Option<&'static str> {
    match row {
        None => Some("tenant not found"),
        Some(("suspended", _)) => Some("tenant suspended"),
        Some((_, Some("suspended"))) => Some("subscription suspended"),
        Some((_, Some("lapsed"))) => Some("subscription lapsed"),
        Some(_) => None,
    }
}
