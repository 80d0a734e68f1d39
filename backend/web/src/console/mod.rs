//! The web console: server-rendered askama pages; every state-changing form carries a CSRF
//! token checked before its fields are read.

mod account;
mod admin;
mod alerts;
mod billing;
mod dashboard;
mod forms;
mod integrations;
mod mapper;
mod runs;
mod settings;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use syncline_store::Role;

use crate::auth::{Actor, Permission};
use crate::{AppError, AppState};

pub(crate) use forms::{CsrfForm, PublicForm};

/// Every console route. Paths with `{…}` parameters are tenant- or platform-scoped objects;
/// the isolation test walks this table, so new routes are covered automatically.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(|| async { Redirect::to("/console") })),
        ("/login", get(account::login_page).post(account::login)),
        ("/logout", post(account::logout)),
        (
            "/invite/{token}",
            get(account::invitation_page).post(account::accept_invitation),
        ),
        (
            "/password/forgot",
            get(account::forgot_page).post(account::forgot),
        ),
        (
            "/password/reset/{token}",
            get(account::reset_page).post(account::reset),
        ),
        ("/console", get(dashboard::dashboard)),
        ("/console/select-tenant", get(account::select_tenant_page)),
        ("/console/tenant", post(account::select_tenant)),
        ("/console/account", get(account::account_page)),
        ("/console/account/password", post(account::change_password)),
        (
            "/console/connections",
            get(integrations::connections_page).post(integrations::create_connection),
        ),
        (
            "/console/connections/new",
            get(integrations::new_connection),
        ),
        (
            "/console/connections/sandbox",
            post(integrations::create_sandbox),
        ),
        (
            "/console/connections/{connection_id}",
            get(integrations::edit_connection).post(integrations::update_connection),
        ),
        (
            "/console/connections/{connection_id}/test",
            post(integrations::test_connection),
        ),
        (
            "/console/connections/{connection_id}/delete",
            post(integrations::delete_connection),
        ),
        (
            "/console/pairs",
            get(integrations::pairs_page).post(integrations::create_pair),
        ),
        ("/console/pairs/{pair_id}", get(integrations::pair_page)),
        (
            "/console/pairs/{pair_id}/flows",
            post(integrations::update_flows),
        ),
        (
            "/console/pairs/{pair_id}/activate",
            post(integrations::activate_pair),
        ),
        (
            "/console/pairs/{pair_id}/pause",
            post(integrations::pause_pair),
        ),
        (
            "/console/pairs/{pair_id}/test-order",
            post(integrations::place_test_order),
        ),
        (
            "/console/pairs/{pair_id}/webhooks/check",
            post(integrations::check_webhooks),
        ),
        (
            "/console/pairs/{pair_id}/mappings/{flow}",
            get(mapper::mapper_page),
        ),
        (
            "/console/pairs/{pair_id}/mappings/{flow}/preview",
            post(mapper::preview_draft),
        ),
        (
            "/console/pairs/{pair_id}/mappings/{flow}/draft",
            post(mapper::save_draft),
        ),
        (
            "/console/pairs/{pair_id}/mappings/{flow}/publish",
            post(mapper::publish),
        ),
        (
            "/console/pairs/{pair_id}/mappings/{flow}/rollback",
            post(mapper::rollback),
        ),
        (
            "/console/pairs/{pair_id}/mappings/{flow}/discard",
            post(mapper::discard),
        ),
        (
            "/console/pairs/{pair_id}/mappings/{flow}/diff",
            get(mapper::diff_page),
        ),
        ("/console/runs", get(runs::runs_page)),
        ("/console/runs/replay", post(runs::replay_matching)),
        ("/console/runs/{run_id}", get(runs::run_page)),
        ("/console/runs/{run_id}/replay", post(runs::replay_run)),
        ("/console/dead-letters", get(runs::dead_letters_page)),
        ("/console/alerts", get(alerts::alerts_page)),
        ("/console/alerts/channels", post(alerts::create_channel)),
        (
            "/console/alerts/channels/{channel_id}",
            post(alerts::update_channel),
        ),
        (
            "/console/alerts/channels/{channel_id}/delete",
            post(alerts::delete_channel),
        ),
        (
            "/console/alerts/channels/{channel_id}/test",
            post(alerts::test_channel),
        ),
        ("/console/alerts/rules/{rule_id}", post(alerts::update_rule)),
        ("/console/alerts/digest", post(alerts::save_digest)),
        ("/console/incidents", get(alerts::incidents_page)),
        (
            "/console/incidents/{incident_id}/acknowledge",
            post(alerts::acknowledge),
        ),
        ("/console/settings/members", get(settings::members_page)),
        ("/console/settings/invitations", post(settings::invite)),
        (
            "/console/settings/members/{user_id}/role",
            post(settings::change_role),
        ),
        (
            "/console/settings/members/{user_id}/remove",
            post(settings::remove_member),
        ),
        (
            "/console/settings/api-keys",
            get(settings::keys_page).post(settings::create_key),
        ),
        (
            "/console/settings/api-keys/{key_id}/revoke",
            post(settings::revoke_key),
        ),
        ("/console/settings/audit", get(settings::audit_page)),
        ("/console/billing", get(billing::billing_page)),
        (
            "/console/billing/invoices/{invoice_id}",
            get(billing::invoice_page),
        ),
        (
            "/console/billing/invoices/{invoice_id}/csv",
            get(billing::invoice_csv),
        ),
        ("/console/admin/billing", get(billing::admin_billing_page)),
        ("/console/admin/billing/plans", post(billing::create_plan)),
        (
            "/console/admin/billing/tenants/{tenant_id}/subscription",
            post(billing::set_subscription),
        ),
        (
            "/console/admin/billing/tenants/{tenant_id}/status",
            post(billing::set_status),
        ),
        (
            "/console/admin/billing/tenants/{tenant_id}/invoices",
            post(billing::issue_invoice),
        ),
        (
            "/console/admin/billing/tenants/{tenant_id}/invoices/{invoice_id}",
            get(billing::admin_invoice_page),
        ),
        (
            "/console/admin/billing/tenants/{tenant_id}/invoices/{invoice_id}/csv",
            get(billing::admin_invoice_csv),
        ),
        (
            "/console/admin/billing/tenants/{tenant_id}/invoices/{invoice_id}/paid",
            post(billing::mark_paid),
        ),
        (
            "/console/admin/tenants",
            get(admin::tenants_page).post(admin::create_tenant),
        ),
        (
            "/console/admin/tenants/{tenant_id}/suspend",
            post(admin::suspend),
        ),
        (
            "/console/admin/tenants/{tenant_id}/reactivate",
            post(admin::reactivate),
        ),
    ]
}

pub(crate) fn router() -> Router<AppState> {
    route_table()
        .into_iter()
        .fold(Router::new(), |router, (path, method)| {
            router.route(path, method)
        })
}

/// A tenant in the switcher.
pub(crate) struct TenantChoice {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

/// What every signed-in page shows around its content.
pub(crate) struct Chrome {
    pub user: String,
    pub csrf: String,
    pub tenant_name: String,
    pub role: String,
    pub tenants: Vec<TenantChoice>,
    pub platform_admin: bool,
    pub can_manage: bool,
    /// May see the tenant's billing (owners, and platform admins working in the tenant).
    pub can_bill: bool,
    pub can_audit: bool,
    /// May replay runs.
    pub can_operate: bool,
    /// Open alert incidents of the selected tenant (the nav badge).
    pub open_incidents: i64,
}

impl Chrome {
    pub(crate) async fn for_actor(state: &AppState, actor: &Actor) -> Result<Chrome, AppError> {
        let user = actor.user.as_ref().ok_or(AppError::Unauthorized)?;
        let session = actor.session.as_ref().ok_or(AppError::Unauthorized)?;
        let selected = actor.tenant.as_ref().map(|t| t.tenant.id);
        let tenants = state
            .store
            .memberships_of(user.id)
            .await?
            .into_iter()
            .filter(|(tenant, _)| tenant.status == syncline_store::TenantStatus::Active)
            .map(|(tenant, _)| TenantChoice {
                selected: Some(tenant.id) == selected,
                id: tenant.id.to_string(),
                name: tenant.name,
            })
            .collect();
        let role = actor.tenant.as_ref().map(|t| t.role);
        let open_incidents = match selected {
            Some(tenant) => state.store.count_open_incidents(tenant).await?,
            None => 0,
        };
        Ok(Chrome {
            open_incidents,
            user: user.email.clone(),
            csrf: state.sessions.csrf_token(session.id),
            tenant_name: actor
                .tenant
                .as_ref()
                .map(|t| t.tenant.name.clone())
                .unwrap_or_default(),
            role: role.map(|r| r.to_string()).unwrap_or_default(),
            tenants,
            platform_admin: user.is_platform_admin,
            can_manage: role.is_some_and(|r| r >= Permission::Manage.least_role()),
            can_bill: role.is_some_and(|r| r >= Permission::Own.least_role())
                || (user.is_platform_admin && selected.is_some()),
            can_audit: role.is_some_and(|r| r >= Permission::ViewAudit.least_role()),
            can_operate: role.is_some_and(|r| r >= Permission::Operate.least_role()),
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    message: String,
}

/// Renders an error as a page; internal details are logged, never shown.
pub(crate) fn error_page(error: AppError) -> Response {
    error.log_if_internal();
    let status = error.status();
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::UNAUTHORIZED => "Please sign in",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong",
        _ => "Cannot do that",
    };
    let message = match &error {
        AppError::NotFound => {
            "This page does not exist, or you do not have access to it.".to_owned()
        }
        AppError::Validation(fields) => fields
            .iter()
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join(" "),
        other => other.public_message(),
    };
    let mut response = (
        status,
        ErrorPage {
            status: status.as_u16(),
            title: title.to_owned(),
            message,
        },
    )
        .into_response();
    error.decorate(&mut response);
    response
}

/// Console handlers' result: errors become pages.
pub(crate) type PageResult = Result<Response, Response>;

pub(crate) fn page_err(error: AppError) -> Response {
    error_page(error)
}

/// Roles as the forms offer them.
pub(crate) fn role_names() -> Vec<&'static str> {
    Role::ALL.iter().map(|r| r.as_str()).collect()
}
