//! Tenant settings: members and invitations, API keys, audit log.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use syncline_store::{ActionToken, ApiKey, ApiKeyId, AuditEntry, Member, UserId};

use super::{Chrome, CsrfForm, PageResult, page_err, role_names};
use crate::api::{keys, members};
use crate::auth::{Actor, ConsoleActor, Permission};
use crate::{AppError, AppState};

#[derive(Template, WebTemplate)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    members: Vec<Member>,
    invitations: Vec<ActionToken>,
    roles: Vec<&'static str>,
    notice: String,
    errors: Vec<crate::error::FieldError>,
    email: String,
}

async fn members_view(
    state: &AppState,
    actor: &Actor,
    notice: String,
    errors: Vec<crate::error::FieldError>,
    email: String,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let members = state
        .store
        .tenant_members(context.tenant.id)
        .await
        .map_err(|e| page_err(e.into()))?;
    let invitations = state
        .store
        .pending_invitations(context.tenant.id)
        .await
        .map_err(|e| page_err(e.into()))?;
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        MembersPage {
            chrome,
            members,
            invitations,
            roles: role_names(),
            notice,
            errors,
            email,
        },
    )
        .into_response())
}

pub(crate) async fn members_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    members_view(&state, &actor, String::new(), Vec::new(), String::new()).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct InviteForm {
    email: String,
    role: String,
}

pub(crate) async fn invite(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<InviteForm>,
) -> PageResult {
    match members::send_invitation(&state, &actor, &form.email, &form.role).await {
        Ok(true) => {
            members_view(
                &state,
                &actor,
                format!("Invitation emailed to {}.", form.email.trim()),
                Vec::new(),
                String::new(),
            )
            .await
        }
        Ok(false) => {
            let notice = format!(
                "Email is not configured (SYNCLINE_SMTP_URL), so the invitation for {} was written to the server log instead.",
                form.email.trim()
            );
            members_view(&state, &actor, notice, Vec::new(), String::new()).await
        }
        Err(AppError::Validation(errors)) => {
            members_view(&state, &actor, String::new(), errors, form.email).await
        }
        Err(other) => Err(page_err(other)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RoleForm {
    role: String,
}

fn user_id(raw: &str) -> Result<UserId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

pub(crate) async fn change_role(
    State(state): State<AppState>,
    Path(user): Path<String>,
    CsrfForm(actor, form): CsrfForm<RoleForm>,
) -> PageResult {
    let role = members::parse_role(&form.role).map_err(page_err)?;
    members::change_role(&state, &actor, user_id(&user).map_err(page_err)?, role)
        .await
        .map_err(page_err)?;
    Ok(Redirect::to("/console/settings/members").into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct Empty {}

pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Path(user): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    members::remove(&state, &actor, user_id(&user).map_err(page_err)?)
        .await
        .map_err(page_err)?;
    Ok(Redirect::to("/console/settings/members").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<ApiKey>,
    roles: Vec<&'static str>,
    new_key: String,
    errors: Vec<crate::error::FieldError>,
}

async fn keys_view(
    state: &AppState,
    actor: &Actor,
    new_key: String,
    errors: Vec<crate::error::FieldError>,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let keys = state
        .store
        .list_api_keys(context.tenant.id)
        .await
        .map_err(|e| page_err(e.into()))?;
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        KeysPage {
            chrome,
            keys,
            roles: role_names(),
            new_key,
            errors,
        },
    )
        .into_response())
}

pub(crate) async fn keys_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    keys_view(&state, &actor, String::new(), Vec::new()).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyForm {
    name: String,
    role: String,
}

pub(crate) async fn create_key(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<KeyForm>,
) -> PageResult {
    match keys::create(&state, &actor, &form.name, &form.role).await {
        // The secret appears in this response only.
        Ok((secret, _)) => keys_view(&state, &actor, secret, Vec::new()).await,
        Err(AppError::Validation(errors)) => keys_view(&state, &actor, String::new(), errors).await,
        Err(other) => Err(page_err(other)),
    }
}

pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    Path(key): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    let id: ApiKeyId = key.parse().map_err(|_| page_err(AppError::NotFound))?;
    keys::revoke(&state, &actor, id).await.map_err(page_err)?;
    Ok(Redirect::to("/console/settings/api-keys").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditEntry>,
}

pub(crate) async fn audit_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    let context = actor.require(Permission::ViewAudit).map_err(page_err)?;
    let entries = state
        .store
        .tenant_audit_log(context.tenant.id, 500)
        .await
        .map_err(|e| page_err(e.into()))?;
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    Ok(AuditPage { chrome, entries }.into_response())
}
