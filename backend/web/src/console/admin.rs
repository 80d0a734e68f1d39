//! The platform administrator's tenant list.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use syncline_store::{TenantId, TenantStatus, TenantSummary};

use super::{Chrome, CsrfForm, PageResult, page_err};
use crate::accounts;
use crate::auth::{Actor, ConsoleActor};
use crate::{AppError, AppState};

#[derive(Template, WebTemplate)]
#[template(path = "admin_tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    tenants: Vec<TenantSummary>,
    notice: String,
    errors: Vec<crate::error::FieldError>,
    name: String,
    slug: String,
    owner_email: String,
}

async fn view(
    state: &AppState,
    actor: &Actor,
    notice: String,
    errors: Vec<crate::error::FieldError>,
    form: Option<TenantForm>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let tenants = state
        .store
        .tenant_summaries()
        .await
        .map_err(|e| page_err(e.into()))?;
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let form = form.unwrap_or_default();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = TenantsPage {
        chrome,
        tenants,
        notice,
        errors,
        name: form.name,
        slug: form.slug,
        owner_email: form.owner_email,
    };
    Ok((status, page).into_response())
}

pub(crate) async fn tenants_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    view(&state, &actor, String::new(), Vec::new(), None).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TenantForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    owner_email: String,
}

pub(crate) async fn create_tenant(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<TenantForm>,
) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    match accounts::create_tenant_with_owner(
        &state,
        &actor.label(),
        &form.name,
        Some(&form.slug),
        &form.owner_email,
    )
    .await
    {
        Ok((tenant, invitation)) => {
            let notice = if invitation.emailed {
                format!(
                    "Created {} and emailed the owner's invitation to {}.",
                    tenant.name,
                    form.owner_email.trim()
                )
            } else {
                format!(
                    "Created {}. Email is not configured, so the owner's invitation was written to the server log.",
                    tenant.name
                )
            };
            view(&state, &actor, notice, Vec::new(), None).await
        }
        Err(AppError::Validation(errors)) => {
            view(&state, &actor, String::new(), errors, Some(form)).await
        }
        Err(other) => Err(page_err(other)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Empty {}

async fn change(state: &AppState, actor: &Actor, raw: &str, status: TenantStatus) -> PageResult {
    actor.require_platform_admin().map_err(page_err)?;
    let id: TenantId = raw.parse().map_err(|_| page_err(AppError::NotFound))?;
    accounts::set_tenant_status(state, &actor.label(), id, status)
        .await
        .map_err(page_err)?;
    Ok(Redirect::to("/console/admin/tenants").into_response())
}

pub(crate) async fn suspend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    change(&state, &actor, &id, TenantStatus::Suspended).await
}

pub(crate) async fn reactivate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    change(&state, &actor, &id, TenantStatus::Active).await
}
