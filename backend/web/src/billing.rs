//! Billing per integration pair, shared by the API and the console: the plan catalogue
//! (platform admins), subscriptions and their entitlements, usage, invoices and payments.

use std::str::FromStr;

use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use syncline_core::billing::Interval;
use syncline_runner::billing::{
    BillingFailure, ManualInvoice, PaymentProvider, PaymentState, UsageSummary, usage_summary,
};
use syncline_store::{
    Invoice, InvoiceId, InvoiceLine, NewPlan, Pair, Plan, PlanId, Subscription, SubscriptionStatus,
    TenantId,
};
use utoipa::ToSchema;

use crate::accounts::audit;
use crate::auth::{Actor, Permission};
use crate::error::FieldError;
use crate::{AppError, AppState};

impl From<BillingFailure> for AppError {
    fn from(failure: BillingFailure) -> Self {
        match failure {
            BillingFailure::Store(error) => error.into(),
            BillingFailure::NoSubscription => {
                AppError::Conflict("This tenant has no subscription yet.".into())
            }
            BillingFailure::FuturePeriod(start) => {
                AppError::Conflict(format!("The period starting {start} has not started yet."))
            }
            BillingFailure::InvalidState(message) => AppError::Conflict(message),
            BillingFailure::Arithmetic(error) => AppError::Internal(error.to_string()),
        }
    }
}

/// The payment provider in use: manual invoices (bank transfer, marked paid by an admin).
pub fn payment_provider() -> ManualInvoice {
    ManualInvoice::default()
}

/// Today in UTC.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A plan as submitted by a platform admin.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PlanInput {
    /// Unique short code, e.g. `connect`.
    #[serde(default)]
    pub code: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Price per production pair per month, as a decimal string (e.g. "599.00").
    #[serde(default)]
    pub price_per_pair: String,
    /// ISO 4217 currency code.
    #[serde(default)]
    pub currency: String,
    /// `month` or `year`.
    #[serde(default)]
    pub interval: String,
    /// Fair-use transactions included per pair per month.
    #[serde(default)]
    pub included_transactions: String,
    /// Fair-use partner API calls included per pair per month.
    #[serde(default)]
    pub included_api_calls: String,
    /// Free sandbox pairs allowed.
    #[serde(default)]
    pub sandbox_pairs: String,
}

fn field_error(errors: &mut Vec<FieldError>, field: &str, message: &str) {
    errors.push(FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    });
}

fn count(errors: &mut Vec<FieldError>, field: &str, value: &str, label: &str) -> i64 {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 0 => n,
        _ => {
            field_error(
                errors,
                field,
                &format!("Enter {label} as a whole number ≥ 0."),
            );
            0
        }
    }
}

/// Checks a submitted plan.
pub fn validate_plan(input: &PlanInput) -> Result<NewPlan, Vec<FieldError>> {
    let mut errors = Vec::new();
    let code = input.code.trim().to_owned();
    if code.is_empty()
        || code.len() > 40
        || !code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        field_error(
            &mut errors,
            "code",
            "Enter a code of 1 to 40 lower-case letters, digits or dashes.",
        );
    }
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 {
        field_error(&mut errors, "name", "Enter a name of 1 to 80 characters.");
    }
    let price = match Decimal::from_str(input.price_per_pair.trim()) {
        Ok(p) if !p.is_sign_negative() && p.scale() <= 4 => p,
        _ => {
            field_error(
                &mut errors,
                "price_per_pair",
                "Enter the monthly price per pair as a decimal number ≥ 0, e.g. 599.00.",
            );
            Decimal::ZERO
        }
    };
    let currency = input.currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        field_error(
            &mut errors,
            "currency",
            "Enter a three-letter ISO 4217 code, e.g. USD.",
        );
    }
    let interval = Interval::parse(input.interval.trim()).unwrap_or_else(|| {
        field_error(&mut errors, "interval", "Choose monthly or annual billing.");
        Interval::Month
    });
    let included_transactions = count(
        &mut errors,
        "included_transactions",
        &input.included_transactions,
        "the included transactions",
    );
    let included_api_calls = count(
        &mut errors,
        "included_api_calls",
        &input.included_api_calls,
        "the included API calls",
    );
    let sandbox_pairs = count(
        &mut errors,
        "sandbox_pairs",
        &input.sandbox_pairs,
        "the sandbox pairs",
    );
    if errors.is_empty() {
        Ok(NewPlan {
            code,
            name,
            price_per_pair: price,
            currency,
            interval,
            included_transactions,
            included_api_calls,
            sandbox_pairs,
            active: true,
        })
    } else {
        Err(errors)
    }
}

/// Adds a plan to the catalogue (platform admins).
pub async fn create_plan(
    state: &AppState,
    actor: &Actor,
    input: &PlanInput,
) -> Result<Plan, AppError> {
    actor.require_platform_admin()?;
    let new = validate_plan(input).map_err(AppError::Validation)?;
    let plan = state.store.create_plan(&new).await.map_err(|error| {
        if error.is_conflict_on("uq_billing_plans_code") {
            AppError::invalid("code", "A plan with this code exists.")
        } else {
            error.into()
        }
    })?;
    audit(
        &state.store,
        None,
        &actor.label(),
        "plan.create",
        json!({ "plan": plan.code, "price_per_pair": plan.price_per_pair.to_string(), "currency": plan.currency }),
    )
    .await;
    Ok(plan)
}

/// Changes a plan (platform admins); issued invoices keep their amounts.
pub async fn update_plan(
    state: &AppState,
    actor: &Actor,
    id: PlanId,
    input: &PlanInput,
) -> Result<Plan, AppError> {
    actor.require_platform_admin()?;
    let new = validate_plan(input).map_err(AppError::Validation)?;
    let plan = state.store.update_plan(id, &new).await.map_err(|error| {
        if error.is_conflict_on("uq_billing_plans_code") {
            AppError::invalid("code", "A plan with this code exists.")
        } else {
            error.into()
        }
    })?;
    audit(
        &state.store,
        None,
        &actor.label(),
        "plan.update",
        json!({ "plan": plan.code, "price_per_pair": plan.price_per_pair.to_string() }),
    )
    .await;
    Ok(plan)
}

/// A subscription change as submitted by a platform admin.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SubscriptionInput {
    /// The plan's code.
    #[serde(default)]
    pub plan: String,
    /// Production pairs paid for.
    #[serde(default)]
    pub pairs: String,
    /// Tax rate in percent, e.g. "20" (default 0, or the current rate).
    #[serde(default)]
    pub tax_percent: String,
}

/// Subscribes a tenant or changes its plan or pair count from today on (prorated by day on
/// the period's invoice). Fewer pairs than are in use is refused: pause a pair first.
pub async fn set_subscription(
    state: &AppState,
    actor: &Actor,
    tenant: TenantId,
    input: &SubscriptionInput,
) -> Result<Subscription, AppError> {
    actor.require_platform_admin()?;
    state
        .store
        .tenant(tenant)
        .await?
        .ok_or(AppError::NotFound)?;
    let plan = state
        .store
        .plan_by_code(input.plan.trim())
        .await?
        .ok_or_else(|| AppError::invalid("plan", "Choose a plan of the catalogue."))?;
    let pairs: i64 = input
        .pairs
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=10_000).contains(n))
        .ok_or_else(|| {
            AppError::invalid("pairs", "Enter the number of production pairs (0 or more).")
        })?;
    let current = state.store.subscription(tenant).await?;
    let tax_rate = if input.tax_percent.trim().is_empty() {
        current.as_ref().map_or(Decimal::ZERO, |s| s.tax_rate)
    } else {
        Decimal::from_str(input.tax_percent.trim())
            .ok()
            .filter(|p| !p.is_sign_negative() && *p <= Decimal::from(100))
            .map(|p| p / Decimal::from(100))
            .ok_or_else(|| {
                AppError::invalid("tax_percent", "Enter a tax rate between 0 and 100 (%).")
            })?
    };
    let in_use = state.store.count_live_pairs(tenant, "production").await?;
    if pairs < in_use {
        return Err(AppError::invalid(
            "pairs",
            format!(
                "{in_use} production pair(s) are active or paused; pause or remove pairs (set them back to draft) before subscribing to fewer."
            ),
        ));
    }
    let subscription = state
        .store
        .set_subscription(tenant, plan.id, pairs, today(), tax_rate, &actor.label())
        .await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "subscription.change",
        json!({ "plan": plan.code, "pairs": pairs, "tax_rate": tax_rate.to_string() }),
    )
    .await;
    Ok(subscription)
}

/// Routes the tenant's held events once nothing holds its processing any more (the tenant
/// and its subscription both active); answers how many were released.
pub(crate) async fn release_held_events(
    state: &AppState,
    tenant: TenantId,
) -> Result<usize, AppError> {
    if state.store.processing_hold(tenant).await?.is_some() {
        return Ok(0);
    }
    let ids = state.store.release_held_inbox_of_tenant(tenant).await?;
    let released = ids.len();
    for inbox_id in ids {
        if let Err(error) =
            syncline_runner::route_event(&state.store, state.dispatcher.as_ref(), tenant, inbox_id)
                .await
        {
            tracing::warn!(%error, %inbox_id, "routing a released event failed; the sweeper retries");
        }
    }
    Ok(released)
}

/// Suspends, lapses or reactivates a subscription. Suspended and lapsed subscriptions pause
/// processing while webhooks are still stored; on reactivation the held events are routed.
pub async fn set_subscription_status(
    state: &AppState,
    actor: &Actor,
    tenant: TenantId,
    status: SubscriptionStatus,
) -> Result<Subscription, AppError> {
    actor.require_platform_admin()?;
    let subscription = state.store.set_subscription_status(tenant, status).await?;
    let released = if status == SubscriptionStatus::Active {
        release_held_events(state, tenant).await?
    } else {
        0
    };
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "subscription.status",
        json!({ "status": status.as_str(), "released_events": released }),
    )
    .await;
    Ok(subscription)
}

/// Refuses to activate a pair beyond the subscription's entitlement: production pairs up to
/// the subscribed number, sandbox pairs up to the plan's free allowance. Tenants without a
/// subscription are not limited (billing not set up for them).
pub async fn check_entitlement(state: &AppState, pair: &Pair) -> Result<(), AppError> {
    let tenant = pair.tenant_id;
    let Some(subscription) = state.store.subscription(tenant).await? else {
        return Ok(());
    };
    if pair.status != syncline_store::PairStatus::Draft {
        // Already counted (active or paused): reactivating uses no new entitlement.
        return Ok(());
    }
    let in_use = state
        .store
        .count_live_pairs(tenant, &pair.environment)
        .await?;
    let plan = &subscription.plan;
    let (limit, kind) = if pair.environment == "production" {
        (subscription.pairs, "production")
    } else {
        (plan.sandbox_pairs, "sandbox")
    };
    if in_use + 1 > limit {
        let advice = if kind == "production" {
            "Ask your Syncline contact to add a production pair to the subscription, or pause another production pair first."
        } else {
            "Pause another sandbox pair first."
        };
        return Err(AppError::Conflict(format!(
            "Your {} plan allows {limit} {kind} pair(s) and {in_use} are in use; \"{}\" cannot be activated. {advice}",
            plan.name, pair.name
        )));
    }
    Ok(())
}

/// A tenant's billing at a glance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BillingView {
    /// The subscription, if any.
    #[schema(value_type = Option<Object>)]
    pub subscription: Option<Subscription>,
    /// Production pairs active or paused.
    pub production_pairs_in_use: i64,
    /// Sandbox pairs active or paused.
    pub sandbox_pairs_in_use: i64,
    /// Usage of the current period.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<UsageSummary>,
    /// Invoices, newest first, with their payment state.
    pub invoices: Vec<InvoiceView>,
}

/// An invoice with its payment state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceView {
    /// The stored invoice.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub invoice: Invoice,
    /// `open`, `overdue`, `paid` or `void`.
    pub state: String,
}

/// Wraps an invoice with its payment state today.
pub fn invoice_view(invoice: Invoice) -> InvoiceView {
    let state: PaymentState = payment_provider().state(&invoice, today());
    InvoiceView {
        state: state.as_str().to_owned(),
        invoice,
    }
}

/// A tenant's billing (owners and platform admins).
pub async fn billing_view(state: &AppState, tenant: TenantId) -> Result<BillingView, AppError> {
    let subscription = state.store.subscription(tenant).await?;
    let (production, sandbox) = state.store.live_pair_counts(tenant).await?;
    let usage = match &subscription {
        Some(subscription) => Some(usage_summary(&state.store, subscription, today()).await?),
        None => None,
    };
    let invoices = state
        .store
        .list_invoices(tenant)
        .await?
        .into_iter()
        .map(invoice_view)
        .collect();
    Ok(BillingView {
        subscription,
        production_pairs_in_use: production,
        sandbox_pairs_in_use: sandbox,
        usage,
        invoices,
    })
}

/// Who may see a tenant's billing: its owners (and platform admins working in it).
pub fn require_billing(actor: &Actor) -> Result<TenantId, AppError> {
    if actor.is_platform_admin()
        && let Some(context) = actor.tenant.as_ref()
    {
        return Ok(context.tenant.id);
    }
    Ok(actor.require(Permission::Own)?.tenant.id)
}

/// One invoice with its lines.
pub async fn invoice_with_lines(
    state: &AppState,
    tenant: TenantId,
    id: InvoiceId,
) -> Result<(Invoice, Vec<InvoiceLine>), AppError> {
    let invoice = state
        .store
        .invoice(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let lines = state.store.invoice_lines(tenant, id).await?;
    Ok((invoice, lines))
}

/// The invoice as CSV: one row per line, then subtotal, tax and total rows.
pub fn invoice_csv(invoice: &Invoice, lines: &[InvoiceLine]) -> String {
    fn cell(value: &str) -> String {
        // Quote every cell; a leading formula character is neutralised for spreadsheets.
        let value = if value.starts_with(['=', '+', '-', '@']) {
            format!("'{value}")
        } else {
            value.to_owned()
        };
        format!("\"{}\"", value.replace('"', "\"\""))
    }
    let mut out = String::from(
        "invoice,position,description,days,period_days,unit_price,amount,currency\r\n",
    );
    for line in lines {
        out.push_str(
            &[
                cell(&invoice.display_number),
                line.position.to_string(),
                cell(&line.description),
                line.days.to_string(),
                line.period_days.to_string(),
                line.unit_price.to_string(),
                line.amount.to_string(),
                cell(&invoice.currency),
            ]
            .join(","),
        );
        out.push_str("\r\n");
    }
    let tax_label = format!(
        "Tax ({}%)",
        (invoice.tax_rate * Decimal::from(100)).normalize()
    );
    for (label, amount) in [
        ("Subtotal", invoice.subtotal),
        (tax_label.as_str(), invoice.tax),
        ("Total", invoice.total),
    ] {
        out.push_str(&format!(
            "{},,{},,,,{},{}\r\n",
            cell(&invoice.display_number),
            cell(label),
            amount,
            cell(&invoice.currency)
        ));
    }
    out
}

/// Issues the invoice of the period containing `day` now (platform admins).
pub async fn issue_invoice(
    state: &AppState,
    actor: &Actor,
    tenant: TenantId,
    day: NaiveDate,
) -> Result<Invoice, AppError> {
    actor.require_platform_admin()?;
    let invoice = syncline_runner::billing::issue_invoice(&state.store, tenant, day, today())
        .await
        .map_err(|failure| match failure {
            BillingFailure::Store(error)
                if error.is_conflict_on("uq_invoices_tenant_id_period_start") =>
            {
                AppError::Conflict("This period is already invoiced.".into())
            }
            other => other.into(),
        })?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "invoice.issue",
        json!({ "number": invoice.display_number, "total": invoice.total.to_string(), "currency": invoice.currency }),
    )
    .await;
    Ok(invoice)
}

/// Marks an invoice paid through the payment provider (platform admins).
pub async fn mark_paid(
    state: &AppState,
    actor: &Actor,
    tenant: TenantId,
    id: InvoiceId,
    reference: &str,
) -> Result<Invoice, AppError> {
    actor.require_platform_admin()?;
    let invoice = payment_provider()
        .mark_paid(&state.store, tenant, id, reference, Utc::now())
        .await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "invoice.paid",
        json!({ "number": invoice.display_number, "reference": reference.trim() }),
    )
    .await;
    Ok(invoice)
}

/// One row of the platform admin's overview.
#[derive(Debug, Clone, Serialize)]
pub struct TenantBilling {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its name.
    pub tenant_name: String,
    /// Its subscription, if any.
    pub subscription: Option<Subscription>,
    /// Production pairs in use.
    pub production_in_use: i64,
    /// Usage this period.
    pub usage: Option<UsageSummary>,
    /// Beyond an included volume this period: flagged, never enforced.
    pub overage: bool,
    /// Open invoices past their due date.
    pub overdue: Vec<Invoice>,
    /// Open invoices not yet due.
    pub open: Vec<Invoice>,
}

/// Every tenant's billing, for platform admins.
pub async fn admin_overview(
    state: &AppState,
    actor: &Actor,
) -> Result<Vec<TenantBilling>, AppError> {
    actor.require_platform_admin()?;
    let open = state.store.open_invoices().await?;
    let today = today();
    let mut rows = Vec::new();
    for tenant in state.store.list_tenants().await? {
        let subscription = state.store.subscription(tenant.id).await?;
        let usage = match &subscription {
            Some(s) => Some(usage_summary(&state.store, s, today).await?),
            None => None,
        };
        let overage = usage
            .as_ref()
            .is_some_and(|u| u.transactions.over() || u.api_calls.over());
        let (overdue, open): (Vec<Invoice>, Vec<Invoice>) = open
            .iter()
            .filter(|i| i.tenant_id == tenant.id)
            .cloned()
            .partition(|i| i.is_overdue(today));
        rows.push(TenantBilling {
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            production_in_use: state
                .store
                .count_live_pairs(tenant.id, "production")
                .await?,
            subscription,
            usage,
            overage,
            overdue,
            open,
        });
    }
    Ok(rows)
}
