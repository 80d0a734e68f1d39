//! Connections and integration pairs: validation, write-only secrets, and the operations
//! shared by the API and the console.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use syncline_store::{
    Connection, ConnectionId, ConnectionKind, NewConnection, NewPair, Pair, PairId, PairStatus,
    TenantId,
};
use utoipa::ToSchema;

use crate::accounts::audit;
use crate::auth::{Actor, Permission};
use crate::error::FieldError;
use crate::{AppError, AppState};

/// The flows a pair can switch on and their webhook topics (shared with the runner's
/// periodic webhook check).
pub use syncline_runner::{ALWAYS_TOPICS, FLOWS};

/// The secret fields of each kind of connection.
pub fn secret_fields(kind: ConnectionKind) -> &'static [&'static str] {
    match kind {
        ConnectionKind::Shopify => &["access_token", "api_secret"],
        ConnectionKind::D365 => &["client_secret"],
    }
}

pub use syncline_runner::secret_name;

/// A connection as clients see it: settings, and for each secret only whether it is set.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// Id.
    pub id: uuid::Uuid,
    /// `shopify` or `d365`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Points at the built-in emulators.
    pub sandbox: bool,
    /// Non-secret settings.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Each secret field: set or not, and when it last changed. Values are never returned.
    pub secrets: Vec<SecretState>,
    /// `untested`, `ok` or `failed`.
    pub test_status: String,
    /// The last test's message.
    pub test_message: Option<String>,
    /// When it was last tested.
    pub tested_at: Option<DateTime<Utc>>,
}

/// Whether one secret is set.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretState {
    /// Field name.
    pub field: String,
    /// Set or not.
    pub set: bool,
    /// When it last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Builds the client view of a connection (secret states from the store).
pub async fn view(state: &AppState, connection: Connection) -> Result<ConnectionView, AppError> {
    let mut secrets = Vec::new();
    for field in secret_fields(connection.kind) {
        let meta = state
            .store
            .secret_meta(connection.tenant_id, &secret_name(connection.id, field))
            .await?;
        secrets.push(SecretState {
            field: (*field).to_owned(),
            set: meta.is_some(),
            updated_at: meta.map(|m| m.updated_at),
        });
    }
    Ok(ConnectionView {
        id: connection.id.0,
        kind: connection.kind.as_str().to_owned(),
        name: connection.name,
        sandbox: connection.sandbox,
        settings: connection.settings,
        secrets,
        test_status: connection.test_status,
        test_message: connection.test_message,
        tested_at: connection.tested_at,
    })
}

/// A connection to create or update. Secret fields are write-only: omit them to keep the
/// stored value.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ConnectionInput {
    /// `shopify` or `d365` (create only).
    #[serde(default)]
    pub kind: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Shopify: `{shop}.myshopify.com`.
    pub shop_domain: Option<String>,
    /// Shopify: Admin API version, e.g. `2025-07`.
    pub api_version: Option<String>,
    /// Shopify: Admin API access token (write-only).
    #[schema(value_type = Option<String>)]
    pub access_token: Option<String>,
    /// Shopify: API secret key used to verify webhooks (write-only).
    #[schema(value_type = Option<String>)]
    pub api_secret: Option<String>,
    /// D365: `https://{env}.operations.dynamics.com`.
    pub environment_url: Option<String>,
    /// D365: Entra tenant id (GUID or domain).
    pub entra_tenant_id: Option<String>,
    /// D365: application (client) id.
    pub client_id: Option<String>,
    /// D365: client secret (write-only).
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<String>,
    /// D365: default legal entity (`dataAreaId`).
    pub data_area_id: Option<String>,
    /// D365: token endpoint override.
    pub token_url: Option<String>,
    /// D365: customer group of customers created from Shopify (default `40`).
    pub customer_group: Option<String>,
    /// D365: one customer account for every guest checkout (default: one created per pair).
    pub guest_customer_account: Option<String>,
    /// D365: the environment's request budget per 5 minutes (F&O's service protection,
    /// 6,000 per user and web server by default); unset, only D365's `Retry-After` slows us.
    /// A number, as text so an empty console field means "unset".
    pub requests_per_5_minutes: Option<String>,
}

fn field_error(errors: &mut Vec<FieldError>, field: &str, message: &str) {
    errors.push(FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    });
}

fn text(value: &Option<String>) -> String {
    value.as_deref().map(str::trim).unwrap_or("").to_owned()
}

/// True for `{name}.myshopify.com` with a valid shop name.
pub fn valid_shop_domain(domain: &str) -> bool {
    domain.strip_suffix(".myshopify.com").is_some_and(|name| {
        !name.is_empty()
            && name.len() <= 60
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
    })
}

fn valid_guid(value: &str) -> bool {
    uuid::Uuid::parse_str(value).is_ok()
}

fn valid_https_url(value: &str, suffix: &str) -> bool {
    url::Url::parse(value).is_ok_and(|u| {
        u.scheme() == "https"
            && u.host_str().is_some_and(|h| h.ends_with(suffix))
            && u.path() == "/"
    })
}

/// A checked connection input: name, non-secret settings, secrets to store.
type Validated = (String, Value, Vec<(&'static str, SecretString)>);

/// Checks input for a connection of `kind`; returns settings and the secrets to store.
fn validate(
    kind: ConnectionKind,
    input: &ConnectionInput,
    creating: bool,
    sandbox: bool,
) -> Result<Validated, AppError> {
    let mut errors = Vec::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 {
        field_error(&mut errors, "name", "Enter a name of 1 to 80 characters.");
    }
    let mut secrets = Vec::new();
    let mut take_secret =
        |field: &'static str, value: &Option<String>, errors: &mut Vec<FieldError>| match value
            .as_deref()
            .map(str::trim)
        {
            Some(v) if !v.is_empty() => secrets.push((field, SecretString::from(v.to_owned()))),
            _ if creating => field_error(errors, field, "Required."),
            _ => {}
        };
    let settings = match kind {
        ConnectionKind::Shopify => {
            let domain = text(&input.shop_domain).to_lowercase();
            if !valid_shop_domain(&domain) {
                field_error(
                    &mut errors,
                    "shop_domain",
                    "Enter the shop's address, like my-store.myshopify.com.",
                );
            }
            let version = text(&input.api_version);
            let version = if version.is_empty() {
                "2025-07".to_owned()
            } else {
                version
            };
            let well_formed = version.len() == 7
                && version.as_bytes()[4] == b'-'
                && version[..4].chars().all(|c| c.is_ascii_digit())
                && matches!(&version[5..], "01" | "04" | "07" | "10");
            if !well_formed {
                field_error(
                    &mut errors,
                    "api_version",
                    "Use a Shopify API version like 2025-07 (January, April, July or October).",
                );
            }
            take_secret("access_token", &input.access_token, &mut errors);
            take_secret("api_secret", &input.api_secret, &mut errors);
            json!({ "shop_domain": domain, "api_version": version })
        }
        ConnectionKind::D365 => {
            let environment = text(&input.environment_url)
                .trim_end_matches('/')
                .to_owned();
            if !sandbox && !valid_https_url(&format!("{environment}/"), ".dynamics.com") {
                field_error(
                    &mut errors,
                    "environment_url",
                    "Enter the environment URL, like https://contoso.operations.dynamics.com.",
                );
            }
            let entra = text(&input.entra_tenant_id);
            if entra.is_empty() || entra.len() > 100 || entra.contains(char::is_whitespace) {
                field_error(
                    &mut errors,
                    "entra_tenant_id",
                    "Enter the Entra tenant id (a GUID or a domain like contoso.onmicrosoft.com).",
                );
            }
            let client = text(&input.client_id);
            if !valid_guid(&client) {
                field_error(
                    &mut errors,
                    "client_id",
                    "Enter the application (client) id, a GUID.",
                );
            }
            let company = text(&input.data_area_id).to_lowercase();
            if company.is_empty()
                || company.len() > 4
                || !company.chars().all(|c| c.is_ascii_alphanumeric())
            {
                field_error(
                    &mut errors,
                    "data_area_id",
                    "Enter the legal entity (dataAreaId), up to 4 letters or digits, like usmf.",
                );
            }
            let token_url = text(&input.token_url);
            if !token_url.is_empty()
                && url::Url::parse(&token_url).map_or(true, |u| !(u.scheme() == "https" || sandbox))
            {
                field_error(
                    &mut errors,
                    "token_url",
                    "Enter an https URL, or leave it empty for login.microsoftonline.com.",
                );
            }
            take_secret("client_secret", &input.client_secret, &mut errors);
            let optional_code = |value: &Option<String>,
                                 field: &str,
                                 max: usize,
                                 errors: &mut Vec<FieldError>| {
                let value = text(value);
                if value.chars().count() > max || value.contains(char::is_whitespace) {
                    field_error(
                        errors,
                        field,
                        &format!("Enter up to {max} characters without spaces, or leave it empty."),
                    );
                }
                if value.is_empty() {
                    Value::Null
                } else {
                    Value::String(value)
                }
            };
            let customer_group =
                optional_code(&input.customer_group, "customer_group", 10, &mut errors);
            let guest_account = optional_code(
                &input.guest_customer_account,
                "guest_customer_account",
                20,
                &mut errors,
            );
            let budget = text(&input.requests_per_5_minutes);
            let budget: Option<u64> = if budget.is_empty() {
                None
            } else {
                match budget.parse::<u64>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        field_error(
                            &mut errors,
                            "requests_per_5_minutes",
                            "Enter a positive whole number, or leave it empty.",
                        );
                        None
                    }
                }
            };
            json!({
                "environment_url": environment,
                "entra_tenant_id": entra,
                "client_id": client,
                "data_area_id": company,
                "token_url": if token_url.is_empty() { Value::Null } else { Value::String(token_url) },
                "customer_group": customer_group,
                "guest_customer_account": guest_account,
                "requests_per_5_minutes": budget,
            })
        }
    };
    if errors.is_empty() {
        Ok((name, settings, secrets))
    } else {
        Err(AppError::Validation(errors))
    }
}

fn conflict_on_name(error: syncline_store::StoreError) -> AppError {
    if error.is_conflict_on("uq_connections_tenant_id_name") {
        AppError::invalid(
            "name",
            "A connection with this name exists; choose another.",
        )
    } else {
        error.into()
    }
}

async fn store_secrets(
    state: &AppState,
    tenant: TenantId,
    connection: ConnectionId,
    secrets: &[(&'static str, SecretString)],
) -> Result<(), AppError> {
    for (field, value) in secrets {
        state
            .store
            .put_secret(tenant, &secret_name(connection, field), value)
            .await?;
    }
    Ok(())
}

/// Creates a connection with its secrets.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    input: &ConnectionInput,
) -> Result<Connection, AppError> {
    let context = actor.require(Permission::Manage)?;
    let kind = ConnectionKind::parse(input.kind.trim())
        .ok_or_else(|| AppError::invalid("kind", "Choose shopify or d365."))?;
    let (name, settings, secrets) = validate(kind, input, true, false)?;
    let tenant = context.tenant.id;
    let connection = state
        .store
        .create_connection(
            tenant,
            &NewConnection {
                kind,
                name,
                sandbox: false,
                settings,
            },
        )
        .await
        .map_err(conflict_on_name)?;
    store_secrets(state, tenant, connection.id, &secrets).await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "connection.create",
        json!({ "connection_id": connection.id, "kind": kind }),
    )
    .await;
    Ok(connection)
}

/// Updates settings; secrets given are replaced, secrets omitted are kept.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    id: ConnectionId,
    input: &ConnectionInput,
) -> Result<Connection, AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let existing = state
        .store
        .connection(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if existing.sandbox {
        return Err(AppError::Conflict(
            "Sandbox connections are managed by Syncline and cannot be edited.".into(),
        ));
    }
    let (name, settings, secrets) = validate(existing.kind, input, false, false)?;
    let connection = state
        .store
        .update_connection(tenant, id, &name, &settings)
        .await
        .map_err(conflict_on_name)?;
    if secrets.iter().any(|(field, _)| *field == "api_secret") {
        // Shopify may keep signing with the old secret for an hour after a rotation.
        let current = secret_name(id, "api_secret");
        if state.store.secret_meta(tenant, &current).await?.is_some() {
            let old = state
                .store
                .reveal_secret(
                    tenant,
                    &current,
                    &actor.label(),
                    "keep for the rotation grace period",
                )
                .await?;
            state
                .store
                .put_secret(tenant, &secret_name(id, "api_secret_previous"), &old)
                .await?;
        }
    }
    store_secrets(state, tenant, id, &secrets).await?;
    state.webhook_secrets.invalidate(id);
    let replaced: Vec<&str> = secrets.iter().map(|(field, _)| *field).collect();
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "connection.update",
        json!({ "connection_id": id, "secrets_replaced": replaced }),
    )
    .await;
    Ok(connection)
}

/// Deletes a connection no pair uses, with its secrets.
pub async fn delete(state: &AppState, actor: &Actor, id: ConnectionId) -> Result<(), AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    state
        .store
        .delete_connection(tenant, id)
        .await
        .map_err(|error| match error {
            syncline_store::StoreError::Conflict { .. } => AppError::Conflict(
                "A pair uses this connection; delete or change the pair first.".into(),
            ),
            other => other.into(),
        })?;
    state
        .store
        .delete_secrets_with_prefix(tenant, &format!("connection:{id}:"))
        .await?;
    state.webhook_secrets.invalidate(id);
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "connection.delete",
        json!({ "connection_id": id }),
    )
    .await;
    Ok(())
}

/// A pair as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairView {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// The Shopify connection.
    pub shopify_connection_id: uuid::Uuid,
    /// The D365 connection.
    pub d365_connection_id: uuid::Uuid,
    /// `sandbox` or `production`.
    pub environment: String,
    /// `draft`, `active` or `paused`.
    pub status: String,
    /// Why it is paused.
    pub pause_reason: Option<String>,
    /// Flows switched on.
    pub flows: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<Pair> for PairView {
    fn from(pair: Pair) -> Self {
        PairView {
            id: pair.id.0,
            name: pair.name,
            shopify_connection_id: pair.shopify_connection_id.0,
            d365_connection_id: pair.d365_connection_id.0,
            environment: pair.environment,
            status: pair.status.as_str().to_owned(),
            pause_reason: pair.pause_reason,
            flows: pair.flows,
            created_at: pair.created_at,
        }
    }
}

/// A pair to create or update.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PairInput {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The Shopify connection (create only).
    pub shopify_connection_id: Option<uuid::Uuid>,
    /// The D365 connection (create only).
    pub d365_connection_id: Option<uuid::Uuid>,
    /// `sandbox` or `production` (create only).
    #[serde(default)]
    pub environment: String,
    /// Flows to switch on.
    #[serde(default)]
    pub flows: Vec<String>,
}

fn validate_pair(input: &PairInput) -> Result<(String, Vec<String>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 {
        field_error(&mut errors, "name", "Enter a name of 1 to 80 characters.");
    }
    let mut flows: Vec<String> = Vec::new();
    for flow in &input.flows {
        let flow = flow.trim();
        if !FLOWS.iter().any(|(name, _)| *name == flow) {
            field_error(
                &mut errors,
                "flows",
                &format!(
                    "Unknown flow {flow:?}; choose from orders, customers, products, inventory, fulfillments, refunds, payments."
                ),
            );
        } else if !flows.iter().any(|f| f == flow) {
            flows.push(flow.to_owned());
        }
    }
    if errors.is_empty() {
        Ok((name, flows))
    } else {
        Err(errors)
    }
}

/// Creates a draft pair from two of the tenant's connections.
pub async fn create_pair(
    state: &AppState,
    actor: &Actor,
    input: &PairInput,
) -> Result<Pair, AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let (name, flows) = validate_pair(input).map_err(AppError::Validation)?;
    let environment = input.environment.trim();
    if !matches!(environment, "sandbox" | "production") {
        return Err(AppError::invalid(
            "environment",
            "Choose sandbox or production.",
        ));
    }
    let shopify = input
        .shopify_connection_id
        .map(ConnectionId)
        .ok_or_else(|| {
            AppError::invalid("shopify_connection_id", "Choose a Shopify connection.")
        })?;
    let d365 = input
        .d365_connection_id
        .map(ConnectionId)
        .ok_or_else(|| AppError::invalid("d365_connection_id", "Choose a D365 connection."))?;
    let new = NewPair {
        name,
        shopify_connection_id: shopify,
        d365_connection_id: d365,
        environment: environment.to_owned(),
        flows,
    };
    let pair = state
        .store
        .create_pair(tenant, &new)
        .await
        .map_err(|error| match error {
            syncline_store::StoreError::NotFound => AppError::invalid(
                "shopify_connection_id",
                "Choose connections of this tenant.",
            ),
            syncline_store::StoreError::Conflict { constraint }
                if constraint == "ck_pairs_connection_kinds" =>
            {
                AppError::invalid(
                    "d365_connection_id",
                    "Pick one Shopify connection and one D365 connection.",
                )
            }
            other if other.is_conflict_on("uq_pairs_tenant_id_name") => {
                AppError::invalid("name", "A pair with this name exists.")
            }
            other => other.into(),
        })?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "pair.create",
        json!({ "pair_id": pair.id, "environment": pair.environment }),
    )
    .await;
    Ok(pair)
}

/// Renames a pair and changes its flows (an active pair's subscriptions follow).
pub async fn update_pair(
    state: &AppState,
    actor: &Actor,
    id: PairId,
    input: &PairInput,
) -> Result<Pair, AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let (name, flows) = validate_pair(input).map_err(AppError::Validation)?;
    let pair = state.store.update_pair(tenant, id, &name, &flows).await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "pair.update",
        json!({ "pair_id": id, "flows": pair.flows }),
    )
    .await;
    if pair.status == PairStatus::Active {
        crate::partners::sync_webhooks(state, &pair).await?;
    }
    Ok(pair)
}

/// Activates a pair: registers its webhooks (idempotently), then marks it active.
pub async fn activate(state: &AppState, actor: &Actor, id: PairId) -> Result<Pair, AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let pair = state
        .store
        .pair(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    // Refused before anything is registered at Shopify: the message names the plan and limit.
    crate::billing::check_entitlement(state, &pair).await?;
    crate::partners::sync_webhooks(state, &pair).await?;
    let pair = state
        .store
        .set_pair_status(tenant, id, PairStatus::Active, None)
        .await?;
    // Events held while no pair was active are processed now, oldest first.
    let released = state
        .store
        .release_held_inbox(tenant, pair.shopify_connection_id)
        .await?;
    for inbox_id in &released {
        if let Err(error) =
            syncline_runner::route_event(&state.store, state.dispatcher.as_ref(), tenant, *inbox_id)
                .await
        {
            tracing::warn!(%error, %inbox_id, "routing a released event failed; the sweeper retries");
        }
    }
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "pair.activate",
        json!({ "pair_id": id, "released_events": released.len() }),
    )
    .await;
    Ok(pair)
}

/// Pauses a pair: removes its webhooks (idempotently) and records why.
pub async fn pause(
    state: &AppState,
    actor: &Actor,
    id: PairId,
    reason: &str,
) -> Result<Pair, AppError> {
    let context = actor.require(Permission::Operate)?;
    let tenant = context.tenant.id;
    let pair = state
        .store
        .pair(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    crate::partners::remove_webhooks(state, &pair).await?;
    let reason = if reason.trim().is_empty() {
        format!("Paused by {}", actor.label())
    } else {
        reason.trim().to_owned()
    };
    let pair = state
        .store
        .set_pair_status(tenant, id, PairStatus::Paused, Some(&reason))
        .await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "pair.pause",
        json!({ "pair_id": id, "reason": reason }),
    )
    .await;
    Ok(pair)
}
