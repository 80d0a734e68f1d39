//! Account operations shared by the console, the API and the `syncline admin` commands, so each
//! rule (and its audit row) exists once.

use chrono::{Duration, Utc};
use serde_json::json;
use syncline_store::{
    ActionKind, NewActionToken, NewAuditEntry, NewTenant, NewUser, Role, Session, Store, Tenant,
    TenantId, TenantStatus, User,
};

use crate::auth::password::{hash_password, validate_new_password, verify_password};
use crate::auth::secret::{random_token, token_hash};
use crate::auth::session::SESSION_LIFETIME;
use crate::auth::throttle::Verdict;
use crate::mail::Sent;
use crate::{AppError, AppState};

/// How long an invitation link works.
pub const INVITE_LIFETIME: Duration = Duration::hours(72);
/// How long a password-reset link works.
pub const RESET_LIFETIME: Duration = Duration::hours(1);

/// Writes an audit row; failures are logged, never hidden from operators, never fatal.
pub async fn audit(
    store: &Store,
    tenant: Option<TenantId>,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) {
    let entry = NewAuditEntry {
        tenant_id: tenant,
        actor: actor.to_owned(),
        action: action.to_owned(),
        detail,
    };
    if let Err(error) = store.audit(&entry).await {
        tracing::error!(%error, action, "cannot write an audit row");
    }
}

/// Trims and checks an email address (shape only; delivery proves the rest).
pub fn validate_email(field: &str, email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.contains(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(AppError::invalid(
            field,
            "Enter an email address like name@example.com.",
        ))
    }
}

/// Derives a URL-safe slug from a name.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(48).collect()
}

/// Result of an invitation.
#[derive(Debug, Clone)]
pub struct Invitation {
    /// Whether the email really left (false: written to the log, embedded default).
    pub emailed: bool,
    /// The link, returned only to trusted local callers (the CLI) when email is not configured.
    pub link_if_not_emailed: Option<String>,
}

/// Invites `email` to `tenant` with `role` and emails the single-use link.
pub async fn invite(
    state: &AppState,
    actor: &str,
    tenant: &Tenant,
    email: &str,
    role: Role,
) -> Result<Invitation, AppError> {
    let email = validate_email("email", email)?;
    let token = random_token();
    state
        .store
        .create_action_token(&NewActionToken {
            kind: ActionKind::Invite,
            token_hash: token_hash(&token),
            email: email.clone(),
            tenant_id: Some(tenant.id),
            role: Some(role),
            created_by: actor.to_owned(),
            expires_at: Utc::now() + INVITE_LIFETIME,
        })
        .await?;
    let link = state.link(&format!("/invite/{token}"));
    let body = format!(
        "Hello,\n\n{actor} invited you to join {tenant} on Syncline as {role}.\n\n\
         Accept the invitation and choose your password here (the link works once, for 72 hours):\n\n{link}\n\n\
         If you did not expect this, you can ignore this message.\n",
        tenant = tenant.name
    );
    let sent = state
        .mailer
        .send(
            &email,
            &format!("You are invited to {} on Syncline", tenant.name),
            &body,
        )
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    audit(
        &state.store,
        Some(tenant.id),
        actor,
        "invitation.create",
        json!({ "email": email, "role": role }),
    )
    .await;
    Ok(Invitation {
        emailed: sent == Sent::Smtp,
        link_if_not_emailed: (sent == Sent::Logged).then_some(link),
    })
}

/// Creates a tenant and invites its owner.
pub async fn create_tenant_with_owner(
    state: &AppState,
    actor: &str,
    name: &str,
    slug: Option<&str>,
    owner_email: &str,
) -> Result<(Tenant, Invitation), AppError> {
    let name = name.trim();
    let mut errors = Vec::new();
    if name.is_empty() || name.chars().count() > 120 {
        errors.push(crate::error::FieldError {
            field: "name".into(),
            message: "Enter a name of 1 to 120 characters.".into(),
        });
    }
    let slug = match slug.map(str::trim).filter(|s| !s.is_empty()) {
        Some(given) => given.to_owned(),
        None => slugify(name),
    };
    if slug.is_empty()
        || slug.len() > 48
        || !slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        errors.push(crate::error::FieldError {
            field: "slug".into(),
            message: "Use 1 to 48 lower-case letters, digits and dashes.".into(),
        });
    }
    if let Err(AppError::Validation(mut fields)) = validate_email("owner_email", owner_email) {
        errors.append(&mut fields);
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let tenant = state
        .store
        .create_tenant(&NewTenant {
            slug,
            name: name.to_owned(),
        })
        .await
        .map_err(|error| {
            if error.is_conflict_on("uq_tenants_slug") {
                AppError::invalid("slug", "This slug is taken; choose another.")
            } else {
                error.into()
            }
        })?;
    audit(
        &state.store,
        Some(tenant.id),
        actor,
        "tenant.create",
        json!({ "name": tenant.name, "slug": tenant.slug }),
    )
    .await;
    let invitation = invite(state, actor, &tenant, owner_email, Role::Owner).await?;
    Ok((tenant, invitation))
}

/// Suspends or reactivates a tenant.
pub async fn set_tenant_status(
    state: &AppState,
    actor: &str,
    tenant: TenantId,
    status: TenantStatus,
) -> Result<Tenant, AppError> {
    let tenant = state.store.set_tenant_status(tenant, status).await?;
    // Webhooks kept arriving while suspended and were held: route them now.
    let (action, released) = match status {
        TenantStatus::Active => (
            "tenant.reactivate",
            crate::billing::release_held_events(state, tenant.id).await?,
        ),
        TenantStatus::Suspended => ("tenant.suspend", 0),
    };
    audit(
        &state.store,
        Some(tenant.id),
        actor,
        action,
        json!({ "slug": tenant.slug, "released_events": released }),
    )
    .await;
    Ok(tenant)
}

/// Accepts an invitation: creates the user when new (with the password given), joins the
/// tenant with the invited role. The link works once.
pub async fn accept_invitation(
    state: &AppState,
    token: &str,
    display_name: &str,
    password: &str,
    confirm: &str,
) -> Result<User, AppError> {
    let hash = token_hash(token);
    let pending = state
        .store
        .peek_action_token(ActionKind::Invite, &hash)
        .await?
        .ok_or(AppError::NotFound)?;
    let existing = state.store.user_by_email(&pending.email).await?;
    let needs_password = existing.as_ref().is_none_or(|(user, _)| !user.has_password);
    let password_hash = if needs_password {
        validate_new_password(password, confirm)?;
        Some(hash_password(password.to_owned()).await?)
    } else {
        None
    };
    // Use the token only now that the input is valid, atomically: a second click loses.
    let taken = state
        .store
        .take_action_token(ActionKind::Invite, &hash)
        .await?
        .ok_or(AppError::NotFound)?;
    let (Some(tenant_id), Some(role)) = (taken.tenant_id, taken.role) else {
        return Err(AppError::Internal(
            "invitation without tenant or role".into(),
        ));
    };
    let user = match existing {
        Some((user, _)) => {
            if let Some(hash) = &password_hash {
                state.store.set_password(user.id, hash).await?;
            }
            user
        }
        None => {
            let name = display_name.trim();
            let name = if name.is_empty() {
                taken.email.split('@').next().unwrap_or("")
            } else {
                name
            };
            state
                .store
                .create_user(&NewUser {
                    email: taken.email.clone(),
                    display_name: name.to_owned(),
                    password_hash,
                    is_platform_admin: false,
                })
                .await?
        }
    };
    state.store.upsert_member(tenant_id, user.id, role).await?;
    audit(
        &state.store,
        Some(tenant_id),
        &user.email,
        "invitation.accept",
        json!({ "role": role }),
    )
    .await;
    Ok(user)
}

/// Emails a password-reset link if the account exists; says the same either way.
pub async fn request_password_reset(state: &AppState, email: &str) -> Result<(), AppError> {
    let email = validate_email("email", email)?;
    let Some((user, _)) = state.store.user_by_email(&email).await? else {
        return Ok(());
    };
    let token = random_token();
    state
        .store
        .create_action_token(&NewActionToken {
            kind: ActionKind::Reset,
            token_hash: token_hash(&token),
            email: user.email.clone(),
            tenant_id: None,
            role: None,
            created_by: user.email.clone(),
            expires_at: Utc::now() + RESET_LIFETIME,
        })
        .await?;
    let link = state.link(&format!("/password/reset/{token}"));
    let body = format!(
        "Hello {},\n\nSomeone (hopefully you) asked to reset your Syncline password. Choose a new one here; \
         the link works once, for one hour:\n\n{link}\n\nIf it was not you, ignore this message: your password is unchanged.\n",
        user.display_name
    );
    if let Err(error) = state
        .mailer
        .send(&user.email, "Reset your Syncline password", &body)
        .await
    {
        tracing::error!(%error, "password reset email failed");
    }
    audit(
        &state.store,
        None,
        &user.email,
        "password.reset_requested",
        json!({}),
    )
    .await;
    Ok(())
}

/// Sets a new password through a reset link; ends every session of the user.
pub async fn reset_password(
    state: &AppState,
    token: &str,
    password: &str,
    confirm: &str,
) -> Result<User, AppError> {
    validate_new_password(password, confirm)?;
    let hash = hash_password(password.to_owned()).await?;
    let taken = state
        .store
        .take_action_token(ActionKind::Reset, &token_hash(token))
        .await?
        .ok_or(AppError::NotFound)?;
    let (user, _) = state
        .store
        .user_by_email(&taken.email)
        .await?
        .ok_or(AppError::NotFound)?;
    state.store.set_password(user.id, &hash).await?;
    audit(&state.store, None, &user.email, "password.reset", json!({})).await;
    Ok(user)
}

/// Changes a signed-in user's password after checking the current one; ends all their sessions.
pub async fn change_password(
    state: &AppState,
    user: &User,
    current: &str,
    password: &str,
    confirm: &str,
) -> Result<(), AppError> {
    let (_, stored) = state
        .store
        .user_by_email(&user.email)
        .await?
        .ok_or(AppError::Unauthorized)?;
    if !verify_password(current.to_owned(), stored).await? {
        return Err(AppError::invalid(
            "current",
            "The current password is wrong.",
        ));
    }
    validate_new_password(password, confirm)?;
    let hash = hash_password(password.to_owned()).await?;
    state.store.set_password(user.id, &hash).await?;
    audit(
        &state.store,
        None,
        &user.email,
        "password.change",
        json!({}),
    )
    .await;
    Ok(())
}

/// A successful login.
pub struct LoggedIn {
    /// The user.
    pub user: User,
    /// The new session.
    pub session: Session,
    /// Active tenants they belong to.
    pub tenants: Vec<(Tenant, Role)>,
}

/// The one message for every failed login, so it never tells whether the email exists.
pub const LOGIN_FAILED: &str = "Wrong email or password.";

/// Checks credentials under the brute-force throttle and starts a session.
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    address: &str,
) -> Result<LoggedIn, AppError> {
    let email = email.trim().to_lowercase();
    match state.throttle.check(&email, address).await {
        Verdict::Refuse(retry_after) => {
            audit(
                &state.store,
                None,
                &email,
                "login.throttled",
                json!({ "address": address }),
            )
            .await;
            return Err(AppError::TooManyRequests(retry_after));
        }
        Verdict::Proceed(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Proceed(_) => {}
    }
    let (user, stored) = match state.store.user_by_email(&email).await? {
        Some((user, stored)) => (Some(user), stored),
        None => (None, None),
    };
    let ok = verify_password(password.to_owned(), stored).await?;
    let Some(user) = user.clone().filter(|_| ok) else {
        state.throttle.failed(&email, address).await;
        // Failures land in the audit log of every tenant the account belongs to.
        let tenants: Vec<Option<TenantId>> = match &user {
            Some(user) => state
                .store
                .memberships_of(user.id)
                .await?
                .into_iter()
                .map(|(t, _)| Some(t.id))
                .collect(),
            None => Vec::new(),
        };
        let tenants = if tenants.is_empty() {
            vec![None]
        } else {
            tenants
        };
        for tenant in tenants {
            audit(
                &state.store,
                tenant,
                &email,
                "login.failure",
                json!({ "address": address }),
            )
            .await;
        }
        return Err(AppError::invalid("password", LOGIN_FAILED));
    };
    let memberships = state.store.memberships_of(user.id).await?;
    let active: Vec<(Tenant, Role)> = memberships
        .iter()
        .filter(|(t, _)| t.status == TenantStatus::Active)
        .cloned()
        .collect();
    if active.is_empty() && !user.is_platform_admin {
        let tenant = memberships.first().map(|(t, _)| t.id);
        audit(
            &state.store,
            tenant,
            &user.email,
            "login.refused_suspended",
            json!({ "address": address }),
        )
        .await;
        return Err(AppError::Forbidden(
            "Your company's Syncline account is suspended. Contact your administrator.".into(),
        ));
    }
    state.throttle.succeeded(&email, address).await;
    let tenant = (active.len() == 1).then(|| active[0].0.id);
    let session = state
        .store
        .create_session(user.id, tenant, Utc::now() + SESSION_LIFETIME)
        .await?;
    for (tenant, _) in &active {
        audit(
            &state.store,
            Some(tenant.id),
            &user.email,
            "login.success",
            json!({ "address": address }),
        )
        .await;
    }
    if active.is_empty() {
        audit(
            &state.store,
            None,
            &user.email,
            "login.success",
            json!({ "address": address }),
        )
        .await;
    }
    Ok(LoggedIn {
        user,
        session,
        tenants: active,
    })
}

/// Creates the first platform administrator; refuses when one exists.
pub async fn bootstrap_admin(store: &Store, email: &str, password: &str) -> Result<User, AppError> {
    if store.count_platform_admins().await? > 0 {
        return Err(AppError::Conflict(
            "a platform administrator already exists; bootstrap runs once".into(),
        ));
    }
    let email = validate_email("email", email)?;
    validate_new_password(password, password)?;
    let hash = hash_password(password.to_owned()).await?;
    let user = store
        .create_user(&NewUser {
            email: email.clone(),
            display_name: "Platform admin".into(),
            password_hash: Some(hash),
            is_platform_admin: true,
        })
        .await?;
    audit(
        store,
        None,
        "cli",
        "admin.bootstrap",
        json!({ "email": email }),
    )
    .await;
    Ok(user)
}
