use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use syncline_store::{Role, UserId};
use utoipa::ToSchema;

use super::ApiJson;
use crate::accounts::{audit, invite};
use crate::auth::{Actor, ApiActor, Permission, TenantContext};
use crate::{AppError, AppState};

/// A person in the tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: uuid::Uuid,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role: owner, admin, operator or viewer.
    pub role: String,
    /// Whether they have set a password.
    pub active: bool,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// A role change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleChange {
    /// owner, admin, operator or viewer.
    pub role: String,
}

/// An invitation to send.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InvitationRequest {
    /// Who to invite.
    pub email: String,
    /// owner, admin, operator or viewer.
    pub role: String,
}

/// An open invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Id.
    pub id: uuid::Uuid,
    /// Invitee.
    pub email: String,
    /// Role offered.
    pub role: Option<String>,
    /// Who invited.
    pub created_by: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// The outcome of an invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationSent {
    /// True when emailed; false when SMTP is not configured and the link went to the server log.
    pub emailed: bool,
}

pub(crate) fn parse_role(value: &str) -> Result<Role, AppError> {
    Role::parse(value.trim())
        .ok_or_else(|| AppError::invalid("role", "Choose owner, admin, operator or viewer."))
}

/// Only owners hand out or take away ownership.
pub(crate) fn check_can_grant(context: &TenantContext, role: Role) -> Result<(), AppError> {
    if role > context.role {
        return Err(AppError::Forbidden(format!(
            "You cannot grant a role above your own ({}).",
            context.role
        )));
    }
    Ok(())
}

/// Changes a member's role, enforcing the ownership rules.
pub(crate) async fn change_role(
    state: &AppState,
    actor: &Actor,
    user: UserId,
    role: Role,
) -> Result<(), AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let current = state
        .store
        .membership(tenant, user)
        .await?
        .ok_or(AppError::NotFound)?;
    check_can_grant(context, role)?;
    check_can_grant(context, current)?;
    if current == Role::Owner && role != Role::Owner && state.store.count_owners(tenant).await? <= 1
    {
        return Err(AppError::Conflict(
            "The last owner cannot be demoted; make someone else owner first.".into(),
        ));
    }
    state.store.set_member_role(tenant, user, role).await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "member.role_change",
        json!({ "user_id": user, "from": current, "to": role }),
    )
    .await;
    Ok(())
}

/// Removes a member, enforcing the ownership rules.
pub(crate) async fn remove(state: &AppState, actor: &Actor, user: UserId) -> Result<(), AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let current = state
        .store
        .membership(tenant, user)
        .await?
        .ok_or(AppError::NotFound)?;
    check_can_grant(context, current)?;
    if current == Role::Owner && state.store.count_owners(tenant).await? <= 1 {
        return Err(AppError::Conflict(
            "The last owner cannot be removed.".into(),
        ));
    }
    state.store.remove_member(tenant, user).await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "member.remove",
        json!({ "user_id": user, "role": current }),
    )
    .await;
    Ok(())
}

/// Sends an invitation, checking the inviter may grant the role.
pub(crate) async fn send_invitation(
    state: &AppState,
    actor: &Actor,
    email: &str,
    role: &str,
) -> Result<bool, AppError> {
    let context = actor.require(Permission::Manage)?;
    let role = parse_role(role)?;
    check_can_grant(context, role)?;
    Ok(invite(state, &actor.label(), &context.tenant, email, role)
        .await?
        .emailed)
}

/// People in the tenant.
#[utoipa::path(get, path = "/api/v1/members", tag = "members", responses((status = 200, body = [MemberView])))]
pub async fn list_members(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<MemberView>>, AppError> {
    let context = actor.require(Permission::View)?;
    let members = state.store.tenant_members(context.tenant.id).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|m| MemberView {
                user_id: m.user.id.0,
                email: m.user.email,
                display_name: m.user.display_name,
                role: m.role.to_string(),
                active: m.user.has_password,
                joined_at: m.joined_at,
            })
            .collect(),
    ))
}

/// Changes a member's role (admins and owners; only owners touch ownership).
#[utoipa::path(patch, path = "/api/v1/members/{user_id}", tag = "members", params(("user_id" = uuid::Uuid, Path, description = "The member's user id")),
    request_body = RoleChange, responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn update_member(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(user_id): Path<uuid::Uuid>,
    ApiJson(change): ApiJson<RoleChange>,
) -> Result<StatusCode, AppError> {
    let role = parse_role(&change.role)?;
    change_role(&state, &actor, UserId(user_id), role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member from the tenant.
#[utoipa::path(delete, path = "/api/v1/members/{user_id}", tag = "members", params(("user_id" = uuid::Uuid, Path, description = "The member's user id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(user_id): Path<uuid::Uuid>,
) -> Result<StatusCode, AppError> {
    remove(&state, &actor, UserId(user_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Open invitations.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "members", responses((status = 200, body = [InvitationView])))]
pub async fn list_invitations(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<InvitationView>>, AppError> {
    let context = actor.require(Permission::View)?;
    let invitations = state.store.pending_invitations(context.tenant.id).await?;
    Ok(Json(
        invitations
            .into_iter()
            .map(|i| InvitationView {
                id: i.id.0,
                email: i.email,
                role: i.role.map(|r| r.to_string()),
                created_by: i.created_by,
                expires_at: i.expires_at,
            })
            .collect(),
    ))
}

/// Invites someone by email with a role; the link works once, for 72 hours.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "members", request_body = InvitationRequest,
    responses((status = 201, body = InvitationSent), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_invitation(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<InvitationRequest>,
) -> Result<(StatusCode, Json<InvitationSent>), AppError> {
    let emailed = send_invitation(&state, &actor, &request.email, &request.role).await?;
    Ok((StatusCode::CREATED, Json(InvitationSent { emailed })))
}
