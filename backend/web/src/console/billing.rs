//! Billing in the console: the tenant owner's page (plan, pairs in use against the
//! entitlement, usage this period drawn as inline SVG, invoices), the printable invoice with
//! its CSV download, and the platform admin's overview (plans, subscriptions, usage, overdue
//! invoices and overage flags).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use syncline_runner::billing::{DayUsage, Meter, PaymentProvider, UsageSummary};
use syncline_store::{
    Invoice, InvoiceId, InvoiceLine, Issuer, Plan, Subscription, SubscriptionStatus, TenantId,
};

use super::{Chrome, CsrfForm, PageResult, page_err};
use crate::auth::ConsoleActor;
use crate::billing::{self, InvoiceView, PlanInput, SubscriptionInput, TenantBilling};
use crate::{AppError, AppState};

/// Chart size in SVG units; it scales to the card's width.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 28.0;

/// One bar of the usage chart.
pub(crate) struct UsageBar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub label: String,
}

/// An axis label.
pub(crate) struct Tick {
    pub at: String,
    pub text: String,
}

/// Transactions per day of the current period as a bar chart.
pub(crate) struct UsageChart {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right_edge: f64,
    pub baseline: f64,
    pub label_y: f64,
    pub bars: Vec<UsageBar>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub summary: String,
}

fn units(value: f64) -> String {
    format!("{value:.1}")
}

/// The smallest of 1, 2, 5, 10, 20, 50, … at or above `value`.
fn nice_ceiling(value: i64) -> i64 {
    let mut step: i64 = 1;
    loop {
        for factor in [1, 2, 5] {
            if step.saturating_mul(factor) >= value {
                return step.saturating_mul(factor);
            }
        }
        step = step.saturating_mul(10);
    }
}

fn usage_chart(days: &[DayUsage]) -> UsageChart {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let baseline = HEIGHT - BOTTOM;
    let peak = days.iter().map(|d| d.transactions).max().unwrap_or(0);
    let scale_max = nice_ceiling(peak.max(1));
    let slot = plot_width / days.len().max(1) as f64;
    let bar_width = (slot * 0.7).max(1.0);
    let per_unit = plot_height / scale_max as f64;
    let bars = days
        .iter()
        .enumerate()
        .map(|(index, day)| {
            let height = day.transactions as f64 * per_unit;
            UsageBar {
                x: units(LEFT + slot * index as f64 + (slot - bar_width) / 2.0),
                y: units(baseline - height),
                width: units(bar_width),
                height: units(height),
                label: format!(
                    "{}: {} transactions, {} partner API calls",
                    day.day, day.transactions, day.api_calls
                ),
            }
        })
        .collect();
    let y_ticks = [0, scale_max / 2, scale_max]
        .into_iter()
        .filter(|value| *value == 0 || *value == scale_max || scale_max % 2 == 0)
        .map(|value| Tick {
            at: units(baseline - value as f64 * per_unit),
            text: value.to_string(),
        })
        .collect();
    let every = (days.len() / 8).max(1);
    let x_ticks = days
        .iter()
        .enumerate()
        .filter(|(index, _)| index % every == 0)
        .map(|(index, day)| Tick {
            at: units(LEFT + slot * index as f64 + slot / 2.0),
            text: day.day.format("%d %b").to_string(),
        })
        .collect();
    let total: i64 = days.iter().map(|d| d.transactions).sum();
    UsageChart {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right_edge: WIDTH - RIGHT,
        baseline,
        label_y: HEIGHT - 8.0,
        bars,
        y_ticks,
        x_ticks,
        summary: format!(
            "{total} billable transactions in the last {} day(s) of this period.",
            days.len()
        ),
    }
}

/// A fair-use meter as the page shows it.
pub(crate) struct MeterView {
    pub label: &'static str,
    pub used: i64,
    pub included: i64,
    pub percent: i64,
    /// Width of the filled bar in percent (capped at 100).
    pub fill: i64,
    /// `ok`, `warn` (80 %+) or `over` (100 %+).
    pub level: &'static str,
}

fn meter_view(label: &'static str, meter: &Meter) -> MeterView {
    MeterView {
        label,
        used: meter.used,
        included: meter.included,
        percent: meter.percent,
        fill: meter.percent.clamp(0, 100),
        level: if meter.percent >= 100 {
            "over"
        } else if meter.percent >= 80 {
            "warn"
        } else {
            "ok"
        },
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "billing.html")]
struct BillingPage {
    chrome: Chrome,
    subscription: Option<Subscription>,
    production_in_use: i64,
    sandbox_in_use: i64,
    usage: Option<UsageSummary>,
    meters: Vec<MeterView>,
    chart: Option<UsageChart>,
    invoices: Vec<InvoiceView>,
}

pub(crate) async fn billing_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    let tenant = billing::require_billing(&actor).map_err(page_err)?;
    let view = billing::billing_view(&state, tenant)
        .await
        .map_err(page_err)?;
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    let meters = view
        .usage
        .as_ref()
        .map(|u| {
            vec![
                meter_view("Billable transactions", &u.transactions),
                meter_view("Partner API calls", &u.api_calls),
            ]
        })
        .unwrap_or_default();
    // The last 31 days of the period: an annual period would otherwise draw 365 bars.
    let chart = view
        .usage
        .as_ref()
        .map(|u| usage_chart(&u.daily[u.daily.len().saturating_sub(31)..]));
    Ok(BillingPage {
        chrome,
        subscription: view.subscription,
        production_in_use: view.production_pairs_in_use,
        sandbox_in_use: view.sandbox_pairs_in_use,
        usage: view.usage,
        meters,
        chart,
        invoices: view.invoices,
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "invoice.html")]
struct InvoicePage {
    chrome: Chrome,
    tenant_name: String,
    issuer: Issuer,
    invoice: Invoice,
    state: String,
    lines: Vec<InvoiceLine>,
    tax_percent: String,
    instructions: String,
    csv_url: String,
    back_url: String,
}

async fn render_invoice(
    state: &AppState,
    actor: &crate::auth::Actor,
    tenant: TenantId,
    raw_id: &str,
    base: &str,
) -> PageResult {
    let id: InvoiceId = raw_id.parse().map_err(|_| page_err(AppError::NotFound))?;
    let (invoice, lines) = billing::invoice_with_lines(state, tenant, id)
        .await
        .map_err(page_err)?;
    let issuer = state
        .store
        .issuer(&invoice.issuer_id)
        .await
        .map_err(|e| page_err(e.into()))?
        .ok_or_else(|| page_err(AppError::Internal("invoice issuer missing".into())))?;
    let tenant_name = state
        .store
        .tenant(tenant)
        .await
        .map_err(|e| page_err(e.into()))?
        .map(|t| t.name)
        .unwrap_or_default();
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let provider = billing::payment_provider();
    let view = billing::invoice_view(invoice.clone());
    Ok(InvoicePage {
        chrome,
        tenant_name,
        issuer,
        tax_percent: (invoice.tax_rate * rust_decimal::Decimal::from(100))
            .normalize()
            .to_string(),
        instructions: provider.instructions(&invoice),
        csv_url: format!("{base}/{}/csv", invoice.id),
        back_url: if base.starts_with("/console/admin") {
            "/console/admin/billing".into()
        } else {
            "/console/billing".into()
        },
        state: view.state,
        invoice,
        lines,
    }
    .into_response())
}

pub(crate) async fn invoice_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path(id): Path<String>,
) -> PageResult {
    let tenant = billing::require_billing(&actor).map_err(page_err)?;
    render_invoice(&state, &actor, tenant, &id, "/console/billing/invoices").await
}

pub(crate) async fn invoice_csv(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path(id): Path<String>,
) -> PageResult {
    let tenant = billing::require_billing(&actor).map_err(page_err)?;
    let id: InvoiceId = id.parse().map_err(|_| page_err(AppError::NotFound))?;
    let (invoice, lines) = billing::invoice_with_lines(&state, tenant, id)
        .await
        .map_err(page_err)?;
    Ok(crate::api::billing_csv(&invoice, &lines))
}

/// The platform admin's view of one tenant's invoice.
pub(crate) async fn admin_invoice_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path((tenant, id)): Path<(String, String)>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let tenant: TenantId = tenant.parse().map_err(|_| page_err(AppError::NotFound))?;
    let base = format!("/console/admin/billing/tenants/{tenant}/invoices");
    render_invoice(&state, &actor, tenant, &id, &base).await
}

/// The platform admin's CSV of one tenant's invoice.
pub(crate) async fn admin_invoice_csv(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path((tenant, id)): Path<(String, String)>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let tenant: TenantId = tenant.parse().map_err(|_| page_err(AppError::NotFound))?;
    let id: InvoiceId = id.parse().map_err(|_| page_err(AppError::NotFound))?;
    let (invoice, lines) = billing::invoice_with_lines(&state, tenant, id)
        .await
        .map_err(page_err)?;
    Ok(crate::api::billing_csv(&invoice, &lines))
}

/// One tenant's row on the admin page.
pub(crate) struct AdminRow {
    pub row: TenantBilling,
    pub meters: Vec<MeterView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_billing.html")]
struct AdminBillingPage {
    chrome: Chrome,
    plans: Vec<Plan>,
    rows: Vec<AdminRow>,
    notice: String,
    errors: Vec<crate::error::FieldError>,
    plan_form: PlanInput,
}

async fn admin_view(
    state: &AppState,
    actor: &crate::auth::Actor,
    notice: String,
    errors: Vec<crate::error::FieldError>,
    plan_form: Option<PlanInput>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let plans = state
        .store
        .list_plans()
        .await
        .map_err(|e| page_err(e.into()))?;
    let rows = billing::admin_overview(state, actor)
        .await
        .map_err(page_err)?
        .into_iter()
        .map(|row| AdminRow {
            meters: row
                .usage
                .as_ref()
                .map(|u| {
                    vec![
                        meter_view("Transactions", &u.transactions),
                        meter_view("API calls", &u.api_calls),
                    ]
                })
                .unwrap_or_default(),
            row,
        })
        .collect();
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = AdminBillingPage {
        chrome,
        plans,
        rows,
        notice,
        errors,
        plan_form: plan_form.unwrap_or_else(|| PlanInput {
            currency: "USD".into(),
            interval: "year".into(),
            ..PlanInput::default()
        }),
    };
    Ok((status, page).into_response())
}

pub(crate) async fn admin_billing_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    admin_view(&state, &actor, String::new(), Vec::new(), None).await
}

pub(crate) async fn create_plan(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<PlanInput>,
) -> PageResult {
    match billing::create_plan(&state, &actor, &form).await {
        Ok(plan) => {
            let notice = format!("Added the {} plan.", plan.name);
            admin_view(&state, &actor, notice, Vec::new(), None).await
        }
        Err(AppError::Validation(errors)) => {
            admin_view(&state, &actor, String::new(), errors, Some(form)).await
        }
        Err(other) => Err(page_err(other)),
    }
}

fn tenant_id(raw: &str) -> Result<TenantId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

pub(crate) async fn set_subscription(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    CsrfForm(actor, form): CsrfForm<SubscriptionInput>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let tenant = tenant_id(&tenant).map_err(page_err)?;
    match billing::set_subscription(&state, &actor, tenant, &form).await {
        Ok(subscription) => {
            let notice = format!(
                "Subscription saved: {} plan, {} production pair(s).",
                subscription.plan.name, subscription.pairs
            );
            admin_view(&state, &actor, notice, Vec::new(), None).await
        }
        Err(AppError::Validation(errors)) => {
            admin_view(&state, &actor, String::new(), errors, None).await
        }
        Err(other) => Err(page_err(other)),
    }
}

/// A subscription status form.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    status: String,
}

pub(crate) async fn set_status(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    CsrfForm(actor, form): CsrfForm<StatusForm>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let tenant = tenant_id(&tenant).map_err(page_err)?;
    let status = SubscriptionStatus::parse(&form.status)
        .ok_or_else(|| page_err(AppError::invalid("status", "Choose a status.")))?;
    billing::set_subscription_status(&state, &actor, tenant, status)
        .await
        .map_err(page_err)?;
    Ok(Redirect::to("/console/admin/billing").into_response())
}

/// An "issue the invoice now" form.
#[derive(Debug, Deserialize)]
pub(crate) struct IssueForm {
    /// `current` or `previous`.
    #[serde(default)]
    period: String,
}

pub(crate) async fn issue_invoice(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    CsrfForm(actor, form): CsrfForm<IssueForm>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let tenant = tenant_id(&tenant).map_err(page_err)?;
    let mut day = billing::today();
    if form.period == "previous" {
        let subscription = state
            .store
            .subscription(tenant)
            .await
            .map_err(|e| page_err(e.into()))?
            .ok_or_else(|| page_err(AppError::NotFound))?;
        if let Ok(current) = syncline_core::billing::period_containing(
            subscription.anchor_on,
            subscription.plan.interval,
            day,
        ) {
            day = current.start.pred_opt().unwrap_or(current.start);
        }
    }
    match billing::issue_invoice(&state, &actor, tenant, day).await {
        Ok(invoice) => Ok(Redirect::to(&format!(
            "/console/admin/billing/tenants/{tenant}/invoices/{}",
            invoice.id
        ))
        .into_response()),
        Err(AppError::Conflict(message)) => {
            admin_view(&state, &actor, message, Vec::new(), None).await
        }
        Err(other) => Err(page_err(other)),
    }
}

/// A "mark paid" form.
#[derive(Debug, Deserialize)]
pub(crate) struct PaidForm {
    #[serde(default)]
    reference: String,
}

pub(crate) async fn mark_paid(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    CsrfForm(actor, form): CsrfForm<PaidForm>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let tenant = tenant_id(&tenant).map_err(page_err)?;
    let id: InvoiceId = id.parse().map_err(|_| page_err(AppError::NotFound))?;
    match billing::mark_paid(&state, &actor, tenant, id, &form.reference).await {
        Ok(invoice) => {
            let notice = format!("Invoice {} marked paid.", invoice.display_number);
            admin_view(&state, &actor, notice, Vec::new(), None).await
        }
        Err(AppError::Conflict(message)) => {
            admin_view(&state, &actor, message, Vec::new(), None).await
        }
        Err(other) => Err(page_err(other)),
    }
}
