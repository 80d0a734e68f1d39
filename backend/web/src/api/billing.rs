//! Billing over the API: a tenant's subscription, usage and invoices (owners), and the plan
//! catalogue, subscriptions and payments (platform admins).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};
use syncline_store::{InvoiceId, PlanId, SubscriptionStatus, TenantId};
use utoipa::ToSchema;

use super::ApiJson;
use crate::auth::ApiActor;
use crate::billing::{self, BillingView, PlanInput, SubscriptionInput};
use crate::{AppError, AppState};

/// The caller's tenant's subscription, entitlements, usage this period and invoices.
#[utoipa::path(get, path = "/api/v1/billing", tag = "billing", responses((status = 200, body = BillingView), (status = 403, body = crate::error::ErrorBody)))]
pub async fn get_billing(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<BillingView>, AppError> {
    let tenant = billing::require_billing(&actor)?;
    Ok(Json(billing::billing_view(&state, tenant).await?))
}

/// One invoice with its lines; `?format=csv` is not used: see the `.csv` route.
#[utoipa::path(get, path = "/api/v1/invoices/{invoice_id}", tag = "billing", params(("invoice_id" = uuid::Uuid, Path, description = "Invoice id")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_invoice(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(invoice_id): Path<uuid::Uuid>,
) -> Result<Json<Value>, AppError> {
    let tenant = billing::require_billing(&actor)?;
    let (invoice, lines) =
        billing::invoice_with_lines(&state, tenant, InvoiceId(invoice_id)).await?;
    let view = billing::invoice_view(invoice);
    Ok(Json(json!({ "invoice": view, "lines": lines })))
}

/// One invoice as CSV (one row per line, then subtotal, tax and total).
#[utoipa::path(get, path = "/api/v1/invoices/{invoice_id}/csv", tag = "billing", params(("invoice_id" = uuid::Uuid, Path, description = "Invoice id")),
    responses((status = 200, content_type = "text/csv"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn invoice_csv(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(invoice_id): Path<uuid::Uuid>,
) -> Result<Response, AppError> {
    let tenant = billing::require_billing(&actor)?;
    let (invoice, lines) =
        billing::invoice_with_lines(&state, tenant, InvoiceId(invoice_id)).await?;
    Ok(csv_response(&invoice, &lines))
}

/// A CSV download of an invoice.
pub(crate) fn csv_response(
    invoice: &syncline_store::Invoice,
    lines: &[syncline_store::InvoiceLine],
) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", invoice.display_number),
            ),
        ],
        billing::invoice_csv(invoice, lines),
    )
        .into_response()
}

/// The plan catalogue.
#[utoipa::path(get, path = "/api/v1/admin/plans", tag = "platform", responses((status = 200, body = Object), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_plans(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Value>, AppError> {
    actor.require_platform_admin()?;
    Ok(Json(json!(state.store.list_plans().await?)))
}

/// Adds a plan to the catalogue.
#[utoipa::path(post, path = "/api/v1/admin/plans", tag = "platform", request_body = PlanInput,
    responses((status = 201, body = Object), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(input): ApiJson<PlanInput>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let plan = billing::create_plan(&state, &actor, &input).await?;
    Ok((StatusCode::CREATED, Json(json!(plan))))
}

/// Changes a plan.
#[utoipa::path(put, path = "/api/v1/admin/plans/{plan_id}", tag = "platform", request_body = PlanInput, params(("plan_id" = uuid::Uuid, Path, description = "Plan id")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(plan_id): Path<uuid::Uuid>,
    ApiJson(input): ApiJson<PlanInput>,
) -> Result<Json<Value>, AppError> {
    let plan = billing::update_plan(&state, &actor, PlanId(plan_id), &input).await?;
    Ok(Json(json!(plan)))
}

/// Subscribes a tenant, or changes its plan or number of production pairs from today on.
#[utoipa::path(put, path = "/api/v1/admin/tenants/{tenant_id}/subscription", tag = "platform", request_body = SubscriptionInput, params(("tenant_id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn set_subscription(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(tenant_id): Path<uuid::Uuid>,
    ApiJson(input): ApiJson<SubscriptionInput>,
) -> Result<Json<Value>, AppError> {
    let subscription =
        billing::set_subscription(&state, &actor, TenantId(tenant_id), &input).await?;
    Ok(Json(json!(subscription)))
}

/// A subscription status change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusRequest {
    /// `active`, `suspended` or `lapsed`.
    pub status: String,
}

/// Suspends, lapses or reactivates a subscription (processing pauses; webhooks are kept).
#[utoipa::path(post, path = "/api/v1/admin/tenants/{tenant_id}/subscription/status", tag = "platform", request_body = StatusRequest, params(("tenant_id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_subscription_status(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(tenant_id): Path<uuid::Uuid>,
    ApiJson(request): ApiJson<StatusRequest>,
) -> Result<Json<Value>, AppError> {
    let status = SubscriptionStatus::parse(request.status.trim())
        .ok_or_else(|| AppError::invalid("status", "Choose active, suspended or lapsed."))?;
    let subscription =
        billing::set_subscription_status(&state, &actor, TenantId(tenant_id), status).await?;
    Ok(Json(json!(subscription)))
}

/// Which period to invoice.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct IssueRequest {
    /// A day in the period (default: today, the current period).
    #[serde(default)]
    pub day: Option<NaiveDate>,
}

/// Issues the invoice of a period now.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{tenant_id}/invoices", tag = "platform", request_body = IssueRequest, params(("tenant_id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = Object), (status = 409, body = crate::error::ErrorBody)))]
pub async fn issue_invoice(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(tenant_id): Path<uuid::Uuid>,
    ApiJson(request): ApiJson<IssueRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let day = request.day.unwrap_or_else(billing::today);
    let invoice = billing::issue_invoice(&state, &actor, TenantId(tenant_id), day).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!(billing::invoice_view(invoice))),
    ))
}

/// A payment received.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PaidRequest {
    /// The payment's reference (bank transfer id); never card data.
    pub reference: String,
}

/// Marks an invoice paid (manual invoices).
#[utoipa::path(post, path = "/api/v1/admin/tenants/{tenant_id}/invoices/{invoice_id}/paid", tag = "platform", request_body = PaidRequest,
    params(("tenant_id" = uuid::Uuid, Path, description = "Tenant id"), ("invoice_id" = uuid::Uuid, Path, description = "Invoice id")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn mark_paid(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((tenant_id, invoice_id)): Path<(uuid::Uuid, uuid::Uuid)>,
    ApiJson(request): ApiJson<PaidRequest>,
) -> Result<Json<Value>, AppError> {
    let invoice = billing::mark_paid(
        &state,
        &actor,
        TenantId(tenant_id),
        InvoiceId(invoice_id),
        &request.reference,
    )
    .await?;
    Ok(Json(json!(billing::invoice_view(invoice))))
}

/// Every tenant's subscription, usage this period, open and overdue invoices and overage flag.
#[utoipa::path(get, path = "/api/v1/admin/billing", tag = "platform", responses((status = 200, body = Object), (status = 403, body = crate::error::ErrorBody)))]
pub async fn overview(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Value>, AppError> {
    Ok(Json(json!(billing::admin_overview(&state, &actor).await?)))
}
