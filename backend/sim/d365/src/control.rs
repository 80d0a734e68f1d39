//! Control plane: the Rust API for in-process tests and the same operations
//! over HTTP under `/_sim/` for out-of-process callers (`syncline sim`, the
//! console's sandbox pairs).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::FaultRule;
use crate::odata::{Ctx, OpResponse, execute};
use crate::schema::schema;
use crate::seed::{SeedSpec, on_hand_row};
use crate::store::{key_string, project};
use crate::throttle::ThrottleConfig;
use crate::{D365Info, Error, RequestRecord, Shared, lock};

/// Handle on a running emulator's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    pub(crate) fn new(shared: Arc<Shared>) -> Control {
        Control { shared }
    }

    /// Connection details.
    pub fn info(&self) -> D365Info {
        let auth = lock(&self.shared.auth);
        let app = auth.apps.first();
        D365Info {
            url: self.shared.base_url.clone(),
            token_url: format!(
                "{}/{}/oauth2/v2.0/token",
                self.shared.base_url, auth.tenant_id
            ),
            tenant_id: auth.tenant_id.clone(),
            client_id: app.map(|a| a.client_id.clone()).unwrap_or_default(),
            client_secret: app.map(|a| a.secret.clone()).unwrap_or_default(),
            data_area_id: self.shared.data_area.clone(),
        }
    }

    /// Re-seeds master data, drops created entities, request log, faults and
    /// throttle counters, and restores the app's credentials (secret valid,
    /// registered in F&O, revocations lifted; tokens keep their expiry).
    pub fn reset(&self) {
        let (spec, seed) = {
            let s = lock(&self.shared.settings);
            (s.spec.clone(), s.seed)
        };
        *lock(&self.shared.store) = crate::seed::seed(&spec, seed);
        lock(&self.shared.faults).clear();
        lock(&self.shared.throttle).reset();
        lock(&self.shared.log).entries.clear();
        let mut auth = lock(&self.shared.auth);
        for app in &mut auth.apps {
            app.secret_expired = false;
            app.registered_in_fo = true;
        }
        for t in auth.tokens.values_mut() {
            t.revoked = false;
        }
    }

    /// Replaces all data with freshly seeded master data.
    pub fn seed(&self, spec: SeedSpec, seed: Option<u64>) {
        let seed = {
            let mut s = lock(&self.shared.settings);
            s.spec = spec.clone();
            if let Some(n) = seed {
                s.seed = n;
            }
            s.seed
        };
        *lock(&self.shared.store) = crate::seed::seed(&spec, seed);
    }

    /// Every entity of a set as the OData service would return it
    /// (all companies, or one), with `SalesOrderLines` expanded for headers.
    pub fn entities(&self, set: &str, company: Option<&str>) -> Result<Vec<Value>, Error> {
        let sc = schema();
        let es = sc.set(set).ok_or_else(|| Error::UnknownSet(set.into()))?;
        let lines_set = sc.set("SalesOrderLines");
        let store = lock(&self.shared.store);
        let rows = store.rows(&es.table).filter(|r| {
            company.is_none_or(|c| {
                r.data
                    .get("dataAreaId")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.eq_ignore_ascii_case(c))
            })
        });
        let mut out = Vec::new();
        for r in rows {
            let mut e = project(es, r, None);
            e.shift_remove("@odata.etag");
            if es.table == "SalesOrderHeader"
                && let Some(ls) = lines_set
            {
                let area = r
                    .data
                    .get("dataAreaId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let order = r
                    .data
                    .get("SalesOrderNumber")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let lines: Vec<Value> = store
                    .children("SalesOrderLine", area, order)
                    .into_iter()
                    .map(|l| {
                        let mut m = project(ls, l, None);
                        m.shift_remove("@odata.etag");
                        Value::Object(m)
                    })
                    .collect();
                e.insert("SalesOrderLines".into(), Value::Array(lines));
            }
            out.push(Value::Object(e));
        }
        Ok(out)
    }

    /// Sales orders created so far (all companies), lines included.
    pub fn orders(&self) -> Vec<Value> {
        self.entities("SalesOrderHeadersV2", None)
            .unwrap_or_default()
    }

    /// Creates an entity through the same business rules as OData POST.
    pub fn insert(&self, set: &str, body: Value) -> Result<Value, Error> {
        let default_company = self.shared.default_company();
        let ctx = Ctx {
            base_url: &self.shared.base_url,
            default_company: &default_company,
            page_size: 1,
            prefer: None,
            ieee754: false,
            if_match: None,
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| Error::Write(e.to_string()))?;
        let mut undo = Vec::new();
        let (resp, _) = {
            let mut store = lock(&self.shared.store);
            execute(
                &ctx,
                &mut store,
                &axum::http::Method::POST,
                set,
                &bytes,
                &mut undo,
            )
        };
        op_result(resp)
    }

    /// Sets the physical on-hand quantity of an item in a warehouse
    /// (creating the row when the item exists but was not stocked there).
    pub fn set_on_hand(
        &self,
        company: &str,
        item: &str,
        warehouse: &str,
        quantity: Decimal,
    ) -> Result<(), Error> {
        let sc = schema();
        let table = sc
            .table("OnHand")
            .ok_or_else(|| Error::UnknownSet("WarehousesOnHandV2".into()))?;
        let mut store = lock(&self.shared.store);
        let product = store
            .find(
                "ReleasedProduct",
                &[("dataAreaId", company), ("ItemNumber", item)],
            )
            .map(|r| r.data.clone())
            .ok_or_else(|| Error::NotFound(format!("released product {company}/{item}")))?;
        let existing = store
            .find(
                "OnHand",
                &[
                    ("dataAreaId", company),
                    ("ItemNumber", item),
                    ("InventoryWarehouseId", warehouse),
                ],
            )
            .map(|r| (key_string(&table.keys, &r.data), r.data.clone()));
        let site = store
            .find(
                "Warehouse",
                &[("dataAreaId", company), ("WarehouseId", warehouse)],
            )
            .and_then(|w| {
                w.data
                    .get("OperationalSiteId")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .ok_or_else(|| Error::NotFound(format!("warehouse {company}/{warehouse}")))?;
        let name = product
            .get("ProductSearchName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let reserved = existing
            .as_ref()
            .and_then(|(_, d)| {
                d.get("ReservedOnHandQuantity")
                    .and_then(crate::filter::as_decimal)
            })
            .unwrap_or_default()
            .min(quantity);
        let row = on_hand_row(
            &company.to_lowercase(),
            item,
            &name,
            &site,
            warehouse,
            quantity,
            reserved,
        );
        match existing.and_then(|(k, _)| store.get_mut("OnHand", &k)) {
            Some(r) => {
                for (k, v) in row {
                    r.data.insert(k, v);
                }
                r.version += 1;
            }
            None => store.insert_raw(table, row),
        }
        Ok(())
    }

    /// Ships a sales order as posting its packing slip would: status
    /// `Delivered` on header and lines, and a `PackingSlipTrackingInformation`
    /// row (today's delivery date) when a tracking number is given.
    /// Returns the packing slip number.
    pub fn ship_order(
        &self,
        company: &str,
        order: &str,
        tracking_number: Option<&str>,
        tracking_url: Option<&str>,
    ) -> Result<String, Error> {
        self.set_order_status(company, order, "Delivered", "Delivered")?;
        let table = schema()
            .table("PackingSlipTracking")
            .ok_or_else(|| Error::UnknownSet("PackingSlipTrackingInformation".into()))?;
        let mut store = lock(&self.shared.store);
        let n = store.next_number(company, "PackingSlip");
        let slip = format!("PS{n:06}");
        if let Some(number) = tracking_number {
            let mut row = serde_json::Map::new();
            row.insert("dataAreaId".into(), Value::String(company.to_lowercase()));
            row.insert("SalesOrderNumber".into(), Value::String(order.to_string()));
            row.insert("PackingSlipNumber".into(), Value::String(slip.clone()));
            row.insert(
                "DeliveryDate".into(),
                Value::String(format!(
                    "{}T12:00:00Z",
                    chrono::Utc::now().format("%Y-%m-%d")
                )),
            );
            row.insert("TrackingNumber".into(), Value::String(number.to_string()));
            if let Some(url) = tracking_url {
                row.insert("TrackingURL".into(), Value::String(url.to_string()));
            }
            store.insert_raw(table, row);
        }
        Ok(slip)
    }

    /// Sets a sales order's `SalesOrderStatus` (`Backorder`, `Delivered`,
    /// `Invoiced`, `Canceled`) on header and lines, and its processing status.
    pub fn set_order_status(
        &self,
        company: &str,
        order: &str,
        status: &str,
        processing: &str,
    ) -> Result<(), Error> {
        let sc = schema();
        let status = sc
            .enum_member("SalesStatus", status)
            .map(|m| m.0)
            .ok_or_else(|| Error::Write(format!("'{status}' is not a SalesStatus")))?;
        let processing = sc
            .enum_member("SalesOrderProcessingStatus", processing)
            .map(|m| m.0)
            .ok_or_else(|| {
                Error::Write(format!(
                    "'{processing}' is not a SalesOrderProcessingStatus"
                ))
            })?;
        if lock(&self.shared.store).set_order_status(company, order, &status, &processing) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("sales order {company}/{order}")))
        }
    }

    /// Requests received so far (oldest first).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).entries.iter().cloned().collect()
    }

    /// Clears the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).entries.clear();
    }

    /// Adds a fault rule.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.shared.faults).push(rule);
    }

    /// Active fault rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.shared.faults).clone()
    }

    /// Removes all fault rules.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Makes every issued token expire now (OData answers 401 until a new one is fetched).
    pub fn expire_tokens(&self) {
        let now = chrono::Utc::now();
        for t in lock(&self.shared.auth).tokens.values_mut() {
            t.expires_at = now;
        }
    }

    /// Revokes every issued token.
    pub fn revoke_tokens(&self) {
        for t in lock(&self.shared.auth).tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Marks the app's secret expired (AADSTS7000222) or valid again.
    pub fn set_secret_expired(&self, expired: bool) {
        for a in &mut lock(&self.shared.auth).apps {
            a.secret_expired = expired;
        }
    }

    /// Replaces the app's secret (a new random one when `None`); old secrets
    /// then fail with AADSTS7000215. Returns the new secret.
    pub fn rotate_secret(&self, secret: Option<String>) -> String {
        let new = secret.unwrap_or_else(|| format!("rot8Q~{}", uuid::Uuid::new_v4().simple()));
        for a in &mut lock(&self.shared.auth).apps {
            a.secret = new.clone();
            a.secret_expired = false;
        }
        new
    }

    /// Adds another app registration (registered in F&O), e.g. one per
    /// tenant's connection when several share one emulated environment.
    pub fn add_app(&self, client_id: &str, secret: &str) {
        let mut auth = lock(&self.shared.auth);
        auth.apps.retain(|a| a.client_id != client_id);
        auth.apps.push(crate::auth::App {
            client_id: client_id.to_string(),
            secret: secret.to_string(),
            secret_expired: false,
            registered_in_fo: true,
        });
    }

    /// Registers or unregisters the app in F&O (unregistered: OData 401 with a valid token).
    pub fn set_registered_in_fo(&self, registered: bool) {
        for a in &mut lock(&self.shared.auth).apps {
            a.registered_in_fo = registered;
        }
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.auth).lifetime = lifetime;
    }

    /// Replaces the service-protection budget (and forgets counters).
    pub fn set_throttle(&self, config: ThrottleConfig) {
        let mut t = lock(&self.shared.throttle);
        t.config = config;
        t.reset();
    }

    /// The budget in force and how many operations it admitted since it was set.
    pub fn throttle(&self) -> (ThrottleConfig, u64) {
        let t = lock(&self.shared.throttle);
        (t.config.clone(), t.served())
    }

    /// Server-driven page size.
    pub fn set_page_size(&self, size: usize) {
        lock(&self.shared.settings).page_size = size.max(1);
    }
}

fn op_result(resp: OpResponse) -> Result<Value, Error> {
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    if resp.ok() {
        let mut body = body;
        if let Some(m) = body.as_object_mut() {
            m.shift_remove("@odata.context");
            m.shift_remove("@odata.etag");
        }
        return Ok(body);
    }
    if resp.status == StatusCode::NOT_FOUND {
        return Err(Error::NotFound(body.to_string()));
    }
    let msg = body
        .pointer("/error/innererror/message")
        .or_else(|| body.pointer("/error/message"))
        .and_then(Value::as_str)
        .unwrap_or("refused")
        .to_string();
    Err(Error::Write(msg))
}

// ---- HTTP surface --------------------------------------------------------

type S = State<Arc<Shared>>;

fn err_response(e: Error) -> Response {
    let status = match e {
        Error::UnknownSet(_) | Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Write(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/info", get(info))
        .route("/reset", post(reset))
        .route("/seed", post(seed))
        .route("/orders", get(orders))
        .route("/entities/{set}", get(entities).post(insert))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/on-hand", put(on_hand))
        .route("/orders/{company}/{order}/status", put(order_status))
        .route("/orders/{company}/{order}/ship", post(ship))
        .route("/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/auth/expire-tokens", post(expire_tokens))
        .route("/auth/revoke-tokens", post(revoke_tokens))
        .route("/auth/secret-expired", put(secret_expired))
        .route("/auth/rotate-secret", post(rotate_secret))
        .route("/auth/fo-registration", put(fo_registration))
        .route("/auth/token-lifetime", put(token_lifetime))
        .route("/throttle", put(set_throttle).get(throttle))
        .route("/page-size", put(page_size))
}

async fn info(State(s): S) -> Json<D365Info> {
    Json(Control::new(s).info())
}

async fn reset(State(s): S) -> StatusCode {
    Control::new(s).reset();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedBody {
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    spec: Option<SeedSpec>,
}

async fn seed(State(s): S, Json(b): Json<SeedBody>) -> StatusCode {
    Control::new(s).seed(b.spec.unwrap_or_default(), b.seed);
    StatusCode::NO_CONTENT
}

async fn orders(State(s): S) -> Json<Vec<Value>> {
    Json(Control::new(s).orders())
}

#[derive(Debug, Deserialize)]
struct CompanyQuery {
    company: Option<String>,
}

async fn entities(State(s): S, Path(set): Path<String>, Query(q): Query<CompanyQuery>) -> Response {
    match Control::new(s).entities(&set, q.company.as_deref()) {
        Ok(v) => Json(v).into_response(),
        Err(e) => err_response(e),
    }
}

async fn insert(State(s): S, Path(set): Path<String>, Json(body): Json<Value>) -> Response {
    match Control::new(s).insert(&set, body) {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => err_response(e),
    }
}

async fn requests(State(s): S) -> Json<Vec<RequestRecord>> {
    Json(Control::new(s).requests())
}

async fn clear_requests(State(s): S) -> StatusCode {
    Control::new(s).clear_requests();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnHandBody {
    #[serde(rename = "dataAreaId")]
    data_area_id: Option<String>,
    #[serde(rename = "ItemNumber")]
    item_number: String,
    #[serde(rename = "InventoryWarehouseId")]
    warehouse: String,
    quantity: Decimal,
}

async fn on_hand(State(s): S, Json(b): Json<OnHandBody>) -> Response {
    let company = b.data_area_id.unwrap_or_else(|| s.default_company());
    match Control::new(s).set_on_hand(&company, &b.item_number, &b.warehouse, b.quantity) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => err_response(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    #[serde(default)]
    processing: Option<String>,
}

async fn order_status(
    State(s): S,
    Path((company, order)): Path<(String, String)>,
    Json(b): Json<StatusBody>,
) -> Response {
    let processing = b.processing.unwrap_or_else(|| b.status.clone());
    match Control::new(s).set_order_status(&company, &order, &b.status, &processing) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => err_response(e),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ShipBody {
    #[serde(default)]
    tracking_number: Option<String>,
    #[serde(default)]
    tracking_url: Option<String>,
}

async fn ship(
    State(s): S,
    Path((company, order)): Path<(String, String)>,
    body: Option<Json<ShipBody>>,
) -> Response {
    let b = body.map(|b| b.0).unwrap_or_default();
    match Control::new(s).ship_order(
        &company,
        &order,
        b.tracking_number.as_deref(),
        b.tracking_url.as_deref(),
    ) {
        Ok(slip) => Json(json!({"PackingSlipNumber": slip})).into_response(),
        Err(e) => err_response(e),
    }
}

async fn faults(State(s): S) -> Json<Vec<FaultRule>> {
    Json(Control::new(s).faults())
}

async fn add_fault(State(s): S, Json(rule): Json<FaultRule>) -> StatusCode {
    Control::new(s).inject(rule);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(s): S) -> StatusCode {
    Control::new(s).clear_faults();
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(s): S) -> StatusCode {
    Control::new(s).expire_tokens();
    StatusCode::NO_CONTENT
}

async fn revoke_tokens(State(s): S) -> StatusCode {
    Control::new(s).revoke_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct Flag {
    #[serde(alias = "expired", alias = "registered")]
    value: bool,
}

async fn secret_expired(State(s): S, Json(f): Json<Flag>) -> StatusCode {
    Control::new(s).set_secret_expired(f.value);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize, Default)]
struct RotateBody {
    secret: Option<String>,
}

async fn rotate_secret(State(s): S, body: Option<Json<RotateBody>>) -> Json<Value> {
    let secret = Control::new(s).rotate_secret(body.and_then(|b| b.0.secret));
    Json(json!({"client_secret": secret}))
}

async fn fo_registration(State(s): S, Json(f): Json<Flag>) -> StatusCode {
    Control::new(s).set_registered_in_fo(f.value);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct Seconds {
    seconds: u64,
}

async fn token_lifetime(State(s): S, Json(b): Json<Seconds>) -> StatusCode {
    Control::new(s).set_token_lifetime(Duration::from_secs(b.seconds));
    StatusCode::NO_CONTENT
}

async fn throttle(State(s): S) -> Json<serde_json::Value> {
    let (config, served) = Control::new(s).throttle();
    Json(serde_json::json!({ "config": config, "served": served }))
}

async fn set_throttle(State(s): S, Json(c): Json<ThrottleConfig>) -> StatusCode {
    Control::new(s).set_throttle(c);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct PageSize {
    page_size: usize,
}

async fn page_size(State(s): S, Json(b): Json<PageSize>) -> StatusCode {
    Control::new(s).set_page_size(b.page_size);
    StatusCode::NO_CONTENT
}
