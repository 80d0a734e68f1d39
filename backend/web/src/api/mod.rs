//! `/api/v1`: JSON, authenticated by API key (or console session + CSRF header), described by
//! an OpenAPI document generated from the handlers themselves.

mod admin;
mod alerts;
mod audit_log;
mod billing;
pub(crate) use billing::csv_response as billing_csv;
mod connections;
pub(crate) mod keys;
mod me;
pub(crate) mod members;
mod pairs;
pub(crate) mod runs;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppError, AppState};

#[derive(OpenApi)]
#[openapi(
    info(title = "Syncline API", version = "1", description = "Shopify ⇄ Dynamics 365 F&O integration platform."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "account", description = "The caller"),
        (name = "members", description = "People in the tenant and their roles"),
        (name = "api-keys", description = "Keys for this API"),
        (name = "audit", description = "Security-relevant actions"),
        (name = "connections", description = "Shopify stores and D365 environments"),
        (name = "pairs", description = "Integration pairs"),
        (name = "runs", description = "Runs of the flows, replays and dead letters"),
        (name = "alerts", description = "Alert rules, incidents and notification channels"),
        (name = "billing", description = "Subscription, usage and invoices of the tenant"),
        (name = "platform", description = "Platform administration (not tenant-scoped)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes and their OpenAPI description, built from the same list.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me::me))
        .routes(routes!(members::list_members))
        .routes(routes!(members::update_member, members::remove_member))
        .routes(routes!(
            members::list_invitations,
            members::create_invitation
        ))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::get_key, keys::revoke_key))
        .routes(routes!(audit_log::tenant_audit_log))
        .routes(routes!(
            connections::list_connections,
            connections::create_connection
        ))
        .routes(routes!(
            connections::get_connection,
            connections::update_connection,
            connections::delete_connection
        ))
        .routes(routes!(connections::test_connection))
        .routes(routes!(pairs::list_pairs, pairs::create_pair))
        .routes(routes!(pairs::get_pair, pairs::update_pair))
        .routes(routes!(pairs::activate_pair))
        .routes(routes!(pairs::pause_pair))
        .routes(routes!(pairs::pair_webhooks))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::replay_runs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::replay_run))
        .routes(routes!(runs::dead_letters))
        .routes(routes!(alerts::list_incidents))
        .routes(routes!(alerts::get_incident))
        .routes(routes!(alerts::acknowledge_incident))
        .routes(routes!(alerts::list_channels, alerts::create_channel))
        .routes(routes!(
            alerts::get_channel,
            alerts::update_channel,
            alerts::delete_channel
        ))
        .routes(routes!(alerts::test_channel))
        .routes(routes!(alerts::list_rules))
        .routes(routes!(alerts::update_rule))
        .routes(routes!(alerts::get_digest, alerts::put_digest))
        .routes(routes!(alerts::check_webhooks))
        .routes(routes!(admin::list_tenants, admin::create_tenant))
        .routes(routes!(admin::suspend_tenant))
        .routes(routes!(admin::reactivate_tenant))
        .routes(routes!(admin::tenant_audit_log))
        .routes(routes!(billing::get_billing))
        .routes(routes!(billing::get_invoice))
        .routes(routes!(billing::invoice_csv))
        .routes(routes!(billing::list_plans, billing::create_plan))
        .routes(routes!(billing::update_plan))
        .routes(routes!(billing::set_subscription))
        .routes(routes!(billing::set_subscription_status))
        .routes(routes!(billing::issue_invoice))
        .routes(routes!(billing::mark_paid))
        .routes(routes!(billing::overview))
        .split_for_parts()
}

/// The router, with `/api/v1/openapi.json` serving the document.
pub(crate) fn router() -> Router<AppState> {
    let (router, document) = routes();
    let document = std::sync::Arc::new(document);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = std::sync::Arc::clone(&document);
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .route(
            "/api/v1/{*rest}",
            axum::routing::any(|| async { AppError::NotFound }),
        )
}

/// `axum::Json` with our error format for malformed bodies.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `axum::extract::Query` with our error format for malformed query strings.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            // "Failed to deserialize query string: <field>: <why>".
            Err(rejection) => Err(AppError::BadRequest(rejection.body_text())),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(error) => {
            AppError::BadRequest(format!("Invalid request body: {}", error.body_text()))
        }
        JsonRejection::JsonSyntaxError(_) => {
            AppError::BadRequest("The request body is not valid JSON.".into())
        }
        JsonRejection::MissingJsonContentType(_) => {
            AppError::BadRequest("Send the body as application/json.".into())
        }
        other => AppError::BadRequest(other.body_text()),
    }
}
