//! Connections and pairs in the console.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use syncline_store::{Connection, ConnectionId, ConnectionKind, Pair, PairId, PairWebhook};

use super::{Chrome, CsrfForm, PageResult, page_err};
use crate::auth::{Actor, ConsoleActor, Permission};
use crate::connections::{self, ConnectionInput, ConnectionView, FLOWS, PairInput};
use crate::error::FieldError;
use crate::{AppError, AppState};

#[derive(Template, WebTemplate)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    chrome: Chrome,
    connections: Vec<ConnectionView>,
    notice: String,
    error: String,
    sandbox_available: bool,
    oauth_available: bool,
}

async fn connections_view(
    state: &AppState,
    actor: &Actor,
    status: StatusCode,
    notice: String,
    error: String,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let mut views = Vec::new();
    for connection in state
        .store
        .list_connections(context.tenant.id)
        .await
        .map_err(|e| page_err(e.into()))?
    {
        views.push(
            connections::view(state, connection)
                .await
                .map_err(page_err)?,
        );
    }
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let page = ConnectionsPage {
        chrome,
        connections: views,
        notice,
        error,
        sandbox_available: state.sandbox.is_some(),
        oauth_available: state.shopify_app.is_some(),
    };
    Ok((status, page).into_response())
}

pub(crate) async fn connections_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    connections_view(&state, &actor, StatusCode::OK, String::new(), String::new()).await
}

#[derive(Template, WebTemplate)]
#[template(path = "connection_form.html")]
struct ConnectionFormPage {
    chrome: Chrome,
    kind: String,
    id: String,
    input: ConnectionInput,
    secrets: Vec<connections::SecretState>,
    errors: Vec<FieldError>,
}

impl ConnectionFormPage {
    fn error_for(&self, field: &str) -> String {
        self.errors
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn secret_note(&self, field: &str) -> String {
        match self.secrets.iter().find(|s| s.field == field) {
            Some(s) if s.set => match s.updated_at {
                Some(at) => format!(
                    "Set (changed {}). Leave empty to keep it.",
                    at.format("%Y-%m-%d %H:%M UTC")
                ),
                None => "Set. Leave empty to keep it.".to_owned(),
            },
            _ => "Not set.".to_owned(),
        }
    }
    fn value(option: &Option<String>) -> &str {
        option.as_deref().unwrap_or("")
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct KindQuery {
    #[serde(default)]
    kind: String,
}

pub(crate) async fn new_connection(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Query(query): Query<KindQuery>,
) -> PageResult {
    actor.require(Permission::Manage).map_err(page_err)?;
    let kind = ConnectionKind::parse(&query.kind).unwrap_or(ConnectionKind::Shopify);
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    let input = ConnectionInput {
        kind: kind.as_str().to_owned(),
        ..ConnectionInput::default()
    };
    Ok(ConnectionFormPage {
        chrome,
        kind: kind.as_str().to_owned(),
        id: String::new(),
        input,
        secrets: Vec::new(),
        errors: Vec::new(),
    }
    .into_response())
}

pub(crate) async fn create_connection(
    State(state): State<AppState>,
    CsrfForm(actor, input): CsrfForm<ConnectionInput>,
) -> PageResult {
    match connections::create(&state, &actor, &input).await {
        Ok(connection) => {
            Ok(Redirect::to(&format!("/console/connections/{}", connection.id)).into_response())
        }
        Err(AppError::Validation(errors)) => {
            let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
            let kind = input.kind.clone();
            let page = ConnectionFormPage {
                chrome,
                kind,
                id: String::new(),
                input: blank_secrets(input),
                secrets: Vec::new(),
                errors,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => Err(page_err(other)),
    }
}

/// Secrets are never echoed back into a form, even the ones just typed.
fn blank_secrets(input: ConnectionInput) -> ConnectionInput {
    ConnectionInput {
        access_token: None,
        api_secret: None,
        client_secret: None,
        ..input
    }
}

fn input_from(connection: &Connection) -> ConnectionInput {
    let get = |key: &str| {
        connection
            .settings
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    ConnectionInput {
        kind: connection.kind.as_str().to_owned(),
        name: connection.name.clone(),
        shop_domain: get("shop_domain"),
        api_version: get("api_version"),
        environment_url: get("environment_url"),
        entra_tenant_id: get("entra_tenant_id"),
        client_id: get("client_id"),
        data_area_id: get("data_area_id"),
        token_url: get("token_url"),
        customer_group: get("customer_group"),
        guest_customer_account: get("guest_customer_account"),
        requests_per_5_minutes: connection
            .settings
            .get("requests_per_5_minutes")
            .and_then(|v| v.as_u64())
            .map(|n| n.to_string()),
        ..ConnectionInput::default()
    }
}

fn connection_id(raw: &str) -> Result<ConnectionId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

pub(crate) async fn edit_connection(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path(id): Path<String>,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let id = connection_id(&id).map_err(page_err)?;
    let connection = state
        .store
        .connection(context.tenant.id, id)
        .await
        .map_err(|e| page_err(e.into()))?
        .ok_or_else(|| page_err(AppError::NotFound))?;
    let input = input_from(&connection);
    let view = connections::view(&state, connection)
        .await
        .map_err(page_err)?;
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    Ok(ConnectionFormPage {
        chrome,
        kind: view.kind.clone(),
        id: id.to_string(),
        input,
        secrets: view.secrets,
        errors: Vec::new(),
    }
    .into_response())
}

pub(crate) async fn update_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, input): CsrfForm<ConnectionInput>,
) -> PageResult {
    let id = connection_id(&id).map_err(page_err)?;
    match connections::update(&state, &actor, id, &input).await {
        Ok(_) => Ok(Redirect::to(&format!("/console/connections/{id}")).into_response()),
        Err(AppError::Validation(errors)) => {
            let context = actor.require(Permission::View).map_err(page_err)?;
            let connection = state
                .store
                .connection(context.tenant.id, id)
                .await
                .map_err(|e| page_err(e.into()))?
                .ok_or_else(|| page_err(AppError::NotFound))?;
            let view = connections::view(&state, connection)
                .await
                .map_err(page_err)?;
            let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
            let page = ConnectionFormPage {
                chrome,
                kind: view.kind.clone(),
                id: id.to_string(),
                input: blank_secrets(input),
                secrets: view.secrets,
                errors,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => Err(page_err(other)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Empty {}

pub(crate) async fn test_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    let id = connection_id(&id).map_err(page_err)?;
    let (ok, message) = crate::partners::test_connection(&state, &actor, id)
        .await
        .map_err(page_err)?;
    let (notice, error) = if ok {
        (message, String::new())
    } else {
        (String::new(), message)
    };
    connections_view(&state, &actor, StatusCode::OK, notice, error).await
}

pub(crate) async fn delete_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    let id = connection_id(&id).map_err(page_err)?;
    match connections::delete(&state, &actor, id).await {
        Ok(()) => {
            connections_view(
                &state,
                &actor,
                StatusCode::OK,
                "Connection deleted.".into(),
                String::new(),
            )
            .await
        }
        Err(AppError::Conflict(message)) => {
            connections_view(&state, &actor, StatusCode::CONFLICT, String::new(), message).await
        }
        Err(other) => Err(page_err(other)),
    }
}

pub(crate) async fn create_sandbox(
    State(state): State<AppState>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    match crate::sandbox::create_sandbox_connections(&state, &actor).await {
        Ok((shopify, d365)) => {
            let notice = format!(
                "Created {} and {}. Create a pair from them below to try Syncline end to end.",
                shopify.name, d365.name
            );
            connections_view(&state, &actor, StatusCode::OK, notice, String::new()).await
        }
        Err(AppError::Conflict(message) | AppError::Upstream(message)) => {
            connections_view(&state, &actor, StatusCode::CONFLICT, String::new(), message).await
        }
        Err(other) => Err(page_err(other)),
    }
}

/// A connection in a select box.
pub(crate) struct Choice {
    pub id: String,
    pub name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pairs.html")]
struct PairsPage {
    chrome: Chrome,
    pairs: Vec<Pair>,
    shopify: Vec<Choice>,
    d365: Vec<Choice>,
    flows: Vec<&'static str>,
    errors: Vec<FieldError>,
    name: String,
}

async fn pairs_view(
    state: &AppState,
    actor: &Actor,
    errors: Vec<FieldError>,
    name: String,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let tenant = context.tenant.id;
    let pairs = state
        .store
        .list_pairs(tenant)
        .await
        .map_err(|e| page_err(e.into()))?;
    let all = state
        .store
        .list_connections(tenant)
        .await
        .map_err(|e| page_err(e.into()))?;
    let choices = |kind: ConnectionKind| {
        all.iter()
            .filter(|c| c.kind == kind)
            .map(|c| Choice {
                id: c.id.to_string(),
                name: c.name.clone(),
            })
            .collect()
    };
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = PairsPage {
        chrome,
        pairs,
        shopify: choices(ConnectionKind::Shopify),
        d365: choices(ConnectionKind::D365),
        flows: FLOWS.iter().map(|(f, _)| *f).collect(),
        errors,
        name,
    };
    Ok((status, page).into_response())
}

pub(crate) async fn pairs_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    pairs_view(&state, &actor, Vec::new(), String::new()).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PairForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    shopify_connection_id: String,
    #[serde(default)]
    d365_connection_id: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    flows: Vec<String>,
}

pub(crate) async fn create_pair(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<PairForm>,
) -> PageResult {
    let input = PairInput {
        name: form.name.clone(),
        shopify_connection_id: form.shopify_connection_id.parse().ok(),
        d365_connection_id: form.d365_connection_id.parse().ok(),
        environment: form.environment,
        flows: form.flows,
    };
    match connections::create_pair(&state, &actor, &input).await {
        Ok(pair) => Ok(Redirect::to(&format!("/console/pairs/{}", pair.id)).into_response()),
        Err(AppError::Validation(errors)) => pairs_view(&state, &actor, errors, form.name).await,
        Err(other) => Err(page_err(other)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pair.html")]
struct PairPage {
    chrome: Chrome,
    pair: Pair,
    shopify_name: String,
    d365_name: String,
    webhooks: Vec<PairWebhook>,
    flows: Vec<&'static str>,
    notice: String,
    error: String,
    /// The Shopify side is an emulator shop this server can place test orders in.
    test_orders: bool,
}

fn pair_id(raw: &str) -> Result<PairId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

async fn pair_view(
    state: &AppState,
    actor: &Actor,
    id: PairId,
    status: StatusCode,
    notice: String,
    error: String,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let tenant = context.tenant.id;
    let pair = state
        .store
        .pair(tenant, id)
        .await
        .map_err(|e| page_err(e.into()))?
        .ok_or_else(|| page_err(AppError::NotFound))?;
    let name_of = |connection: Option<Connection>| connection.map(|c| c.name).unwrap_or_default();
    let shopify = state
        .store
        .connection(tenant, pair.shopify_connection_id)
        .await
        .map_err(|e| page_err(e.into()))?;
    let test_orders = state.sandbox.is_some() && shopify.as_ref().is_some_and(|c| c.sandbox);
    let shopify_name = name_of(shopify);
    let d365_name = name_of(
        state
            .store
            .connection(tenant, pair.d365_connection_id)
            .await
            .map_err(|e| page_err(e.into()))?,
    );
    let webhooks = state
        .store
        .pair_webhooks(tenant, id)
        .await
        .map_err(|e| page_err(e.into()))?;
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let page = PairPage {
        chrome,
        pair,
        shopify_name,
        d365_name,
        webhooks,
        flows: FLOWS.iter().map(|(f, _)| *f).collect(),
        notice,
        error,
        test_orders,
    };
    Ok((status, page).into_response())
}

pub(crate) async fn pair_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path(id): Path<String>,
) -> PageResult {
    let id = pair_id(&id).map_err(page_err)?;
    pair_view(
        &state,
        &actor,
        id,
        StatusCode::OK,
        String::new(),
        String::new(),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct FlowsForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    flows: Vec<String>,
}

async fn after(
    state: &AppState,
    actor: &Actor,
    id: PairId,
    result: Result<Pair, AppError>,
    done: &str,
) -> PageResult {
    match result {
        Ok(_) => {
            pair_view(
                state,
                actor,
                id,
                StatusCode::OK,
                done.to_owned(),
                String::new(),
            )
            .await
        }
        Err(AppError::Upstream(message)) => {
            pair_view(
                state,
                actor,
                id,
                StatusCode::BAD_GATEWAY,
                String::new(),
                message,
            )
            .await
        }
        // e.g. activation beyond the subscription's entitlement: the page says why.
        Err(AppError::Conflict(message)) => {
            pair_view(
                state,
                actor,
                id,
                StatusCode::CONFLICT,
                String::new(),
                message,
            )
            .await
        }
        Err(AppError::Validation(errors)) => {
            let message = errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join(" ");
            pair_view(
                state,
                actor,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                String::new(),
                message,
            )
            .await
        }
        Err(other) => Err(page_err(other)),
    }
}

pub(crate) async fn update_flows(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, form): CsrfForm<FlowsForm>,
) -> PageResult {
    let id = pair_id(&id).map_err(page_err)?;
    let input = PairInput {
        name: form.name,
        flows: form.flows,
        ..PairInput::default()
    };
    let result = connections::update_pair(&state, &actor, id, &input).await;
    after(&state, &actor, id, result, "Saved.").await
}

pub(crate) async fn activate_pair(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    let id = pair_id(&id).map_err(page_err)?;
    let result = connections::activate(&state, &actor, id).await;
    after(
        &state,
        &actor,
        id,
        result,
        "Active: Shopify webhooks are registered.",
    )
    .await
}

/// `POST /console/pairs/{pair_id}/test-order`: the sandbox shop places an order, which reaches
/// Syncline the way a real one does (a signed `orders/create` webhook).
pub(crate) async fn place_test_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    let id = pair_id(&id).map_err(page_err)?;
    let placed: Result<u64, AppError> = async {
        let tenant = actor.require(Permission::Operate)?.tenant.id;
        let pair = state.store.pair(tenant, id).await?.ok_or(AppError::NotFound)?;
        let shopify = state
            .store
            .connection(tenant, pair.shopify_connection_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let sandbox = match (&state.sandbox, shopify.sandbox) {
            (Some(sandbox), true) => sandbox,
            _ => {
                return Err(AppError::Conflict(
                    "Test orders need a sandbox Shopify connection: place a real order in your store instead."
                        .into(),
                ));
            }
        };
        sandbox
            .place_test_order(tenant)
            .await
            .map_err(AppError::Upstream)
    }
    .await;
    let (notice, error) = match placed {
        Ok(order) => (
            format!(
                "Test order {order} placed in the sandbox shop: it arrives as a webhook and shows under Runs in a moment."
            ),
            String::new(),
        ),
        Err(AppError::Conflict(message) | AppError::Upstream(message)) => (String::new(), message),
        Err(other) => return Err(page_err(other)),
    };
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    pair_view(&state, &actor, id, status, notice, error).await
}

/// `POST /console/pairs/{pair_id}/webhooks/check`: lists the pair's subscriptions at Shopify
/// now and re-registers missing ones (what the periodic check does).
pub(crate) async fn check_webhooks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    let id = pair_id(&id).map_err(page_err)?;
    let (notice, error) = match crate::alerting::check_webhooks(&state, &actor, id).await {
        Ok(report) => match (
            &report.error,
            report.missing.is_empty(),
            report.failed.is_empty(),
        ) {
            (Some(error), ..) => (
                String::new(),
                format!("The subscriptions could not be checked: {error}"),
            ),
            (None, true, _) => (
                "Every webhook subscription is in place at Shopify.".to_owned(),
                String::new(),
            ),
            (None, false, true) => (
                format!(
                    "Re-registered the missing subscriptions: {}.",
                    report.reregistered.join(", ")
                ),
                String::new(),
            ),
            (None, false, false) => (
                String::new(),
                report
                    .failed
                    .iter()
                    .map(|(topic, why)| format!("{topic} could not be re-registered: {why}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        },
        Err(AppError::Conflict(message)) => (String::new(), message),
        Err(other) => return Err(page_err(other)),
    };
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    pair_view(&state, &actor, id, status, notice, error).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PauseForm {
    #[serde(default)]
    reason: String,
}

pub(crate) async fn pause_pair(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, form): CsrfForm<PauseForm>,
) -> PageResult {
    let id = pair_id(&id).map_err(page_err)?;
    let result = connections::pause(&state, &actor, id, &form.reason).await;
    after(
        &state,
        &actor,
        id,
        result,
        "Paused: webhooks removed; nothing is processed until you activate it again.",
    )
    .await
}
