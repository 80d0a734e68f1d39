//! HTTP surface: Admin GraphQL, the REST subset, the control plane.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::generator::{self, SeedSpec, TrafficSpec};
use crate::shop::{Faults, Plan, RequestRecord, Subscription};
use crate::{Inner, Shop, ShopSpec, cost, gql, model};

type St = State<Arc<Inner>>;

/// Builds the router.
pub fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/admin/api/{version}/graphql.json", post(graphql_host))
        .route(
            "/shops/{shop}/admin/api/{version}/graphql.json",
            post(graphql_path),
        )
        .route("/admin/api/{version}/{*rest}", any(rest_host))
        .route("/shops/{shop}/admin/api/{version}/{*rest}", any(rest_path))
        .route(
            "/shops/{shop}/admin/oauth/authorize",
            get(crate::oauth::authorize),
        )
        .route(
            "/shops/{shop}/admin/oauth/access_token",
            post(crate::oauth::access_token),
        )
        .route("/_sim/health", get(|| async { "ok" }))
        .route("/_sim/info", get(ctl_info))
        .route("/_sim/shops", get(ctl_shops).post(ctl_create_shop))
        .route("/_sim/shops/{shop}", get(ctl_shop))
        .route("/_sim/shops/{shop}/reset", post(ctl_reset))
        .route("/_sim/shops/{shop}/seed", post(ctl_seed))
        .route("/_sim/shops/{shop}/orders", get(ctl_orders))
        .route("/_sim/shops/{shop}/orders/generate", post(ctl_generate))
        .route("/_sim/shops/{shop}/refunds/generate", post(ctl_refund))
        .route("/_sim/shops/{shop}/requests", get(ctl_requests))
        .route("/_sim/shops/{shop}/deliveries", get(ctl_deliveries))
        .route(
            "/_sim/shops/{shop}/subscriptions",
            get(ctl_subscriptions).post(ctl_subscribe),
        )
        .route(
            "/_sim/shops/{shop}/faults",
            get(ctl_faults).put(ctl_set_faults).delete(ctl_clear_faults),
        )
        .route("/_sim/shops/{shop}/plan", axum::routing::put(ctl_plan))
        .route("/_sim/shops/{shop}/apps", post(ctl_add_app))
        .route("/_sim/shops/{shop}/traffic/start", post(ctl_traffic_start))
        .route("/_sim/shops/{shop}/traffic/stop", post(ctl_traffic_stop))
        .route("/_sim/bulk/{shop}/{file}", get(bulk_file))
        .with_state(inner)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// Shopify tags every Admin API answer with `X-Request-Id`; clients log it.
fn with_request_id(mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"errors": "Not Found"}))
}

fn shop_from_host(inner: &Inner, headers: &HeaderMap) -> Option<Arc<Shop>> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let name = host
        .strip_suffix(".myshopify.com")
        .unwrap_or(&inner.config.shop_name);
    inner.shop(name).ok()
}

fn valid_version(v: &str) -> bool {
    v == "unstable"
        || (v.len() == 7
            && v.as_bytes()[4] == b'-'
            && v[..4].bytes().all(|b| b.is_ascii_digit())
            && v[5..].bytes().all(|b| b.is_ascii_digit()))
}

/// A response whose body fails mid-way, so the client sees the connection drop.
fn reset_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset (injected)",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-length", HeaderValue::from_static("1024"));
    r
}

/// Applies latency, resets, injected errors and authentication. Returns the
/// authenticated app's name, or the early response.
async fn gate(
    shop: &Shop,
    headers: &HeaderMap,
    rec: &mut RequestRecord,
) -> Result<String, Response> {
    let (latency, reset, error, revoked) = {
        let mut data = shop.lock();
        let f = data.faults.clone();
        let reset = f.reset_next > 0;
        if reset {
            data.faults.reset_next -= 1;
        }
        let mut error = None;
        if !reset {
            if f.error_next > 0 {
                data.faults.error_next -= 1;
                error = Some(f.error_status.unwrap_or(503));
            } else if f.error_rate > 0.0 && data.fault_rng.random_bool(f.error_rate.clamp(0.0, 1.0))
            {
                error = Some(f.error_status.unwrap_or(503));
            }
        }
        (f.latency_ms, reset, error, f.revoked_token)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if reset {
        rec.fault = Some("connection_reset".into());
        return Err(reset_response());
    }
    if let Some(status) = error {
        rec.fault = Some(format!("http_{status}"));
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let body = if status == StatusCode::SERVICE_UNAVAILABLE {
            json!({"errors": "Service Unavailable"})
        } else {
            json!({"errors": "Internal Server Error"})
        };
        return Err(json_response(status, &body));
    }
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|h| h.to_str().ok());
    let app = token.and_then(|t| shop.app_by_token(t));
    match app {
        Some(app) if !revoked => Ok(app.name),
        _ => {
            if revoked {
                rec.fault = Some("revoked_token".into());
            }
            Err(json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
            ))
        }
    }
}

fn new_record(method: &str, path: &str, api: &str) -> RequestRecord {
    RequestRecord {
        at: crate::now_rfc3339(),
        method: method.into(),
        path: path.into(),
        api: api.into(),
        status: 0,
        duration_ms: 0.0,
        requested_cost: None,
        actual_cost: None,
        throttled: false,
        fault: None,
    }
}

async fn graphql_host(
    State(inner): St,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shop_from_host(&inner, &headers) {
        Some(shop) => graphql(inner, shop, version, headers, body).await,
        None => not_found(),
    }
}

async fn graphql_path(
    State(inner): St,
    Path((shop, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match inner.shop(&shop) {
        Ok(shop) => graphql(inner, shop, version, headers, body).await,
        Err(_) => not_found(),
    }
}

async fn graphql(
    inner: Arc<Inner>,
    shop: Arc<Shop>,
    version: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let mut rec = new_record(
        "POST",
        &format!("/admin/api/{version}/graphql.json"),
        "graphql",
    );
    let mut resp = graphql_inner(&inner, &shop, version.clone(), &headers, &body, &mut rec).await;
    if let Ok(v) = HeaderValue::from_str(&version) {
        resp.headers_mut().insert("x-shopify-api-version", v);
    }
    rec.status = resp.status().as_u16();
    rec.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    shop.lock().record(rec);
    with_request_id(resp)
}

fn throttle_status(data: &mut crate::shop::ShopData, app: &str) -> Value {
    let available = data.cost_bucket(app).available;
    json!({
        "maximumAvailable": data.plan.maximum,
        "currentlyAvailable": available.floor() as i64,
        "restoreRate": data.plan.restore_rate,
    })
}

fn cost_ext(requested: u64, actual: Option<u64>, status: Value) -> Value {
    json!({"cost": {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": status,
    }})
}

async fn graphql_inner(
    inner: &Arc<Inner>,
    shop: &Arc<Shop>,
    version: String,
    headers: &HeaderMap,
    body: &[u8],
    rec: &mut RequestRecord,
) -> Response {
    if !valid_version(&version) {
        return not_found();
    }
    let app = match gate(shop, headers, rec).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let is_graphql_ct = headers
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|c| c.starts_with("application/graphql"));
    let (query, vars, op_name) = if is_graphql_ct {
        (
            String::from_utf8_lossy(body).into_owned(),
            Value::Null,
            None,
        )
    } else {
        let parsed: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"errors": {"query": "Required parameter missing or invalid"}}),
                );
            }
        };
        let Some(q) = parsed.get("query").and_then(Value::as_str) else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"errors": {"query": "Required parameter missing or invalid"}}),
            );
        };
        let vars = parsed.get("variables").cloned().unwrap_or(Value::Null);
        let op = parsed
            .get("operationName")
            .and_then(Value::as_str)
            .map(str::to_owned);
        (q.to_owned(), vars, op)
    };
    let doc = async_graphql::parser::parse_query(&query).ok();
    let op = doc
        .as_ref()
        .and_then(|d| cost::select_operation(d, op_name.as_deref()));
    let requested = match (&doc, op) {
        (Some(d), Some(op)) => cost::requested(d, op, &vars),
        _ => 0,
    };
    rec.requested_cost = Some(requested);
    if requested > cost::MAX_COST {
        let status = {
            let mut data = shop.lock();
            data.refill_cost(&app);
            throttle_status(&mut data, &app)
        };
        let msg = format!(
            "Query cost is {requested}, which exceeds the single query max cost limit ({}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n",
            cost::MAX_COST
        );
        return json_response(
            StatusCode::OK,
            &json!({
                "errors": [{"message": msg, "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": cost::MAX_COST}}],
                "extensions": cost_ext(requested, None, status),
            }),
        );
    }
    if let Some(size) = op.and_then(|op| cost::oversized_input(op, &vars)) {
        let status = {
            let mut data = shop.lock();
            data.refill_cost(&app);
            throttle_status(&mut data, &app)
        };
        return json_response(
            StatusCode::OK,
            &json!({
                "errors": [{"message": format!("The input array size of {size} is greater than the maximum allowed of {}.", cost::MAX_INPUT_ARRAY), "extensions": {"code": "MAX_INPUT_SIZE_EXCEEDED"}}],
                "extensions": cost_ext(requested, None, status),
            }),
        );
    }
    // The bucket must hold the whole requested cost up front.
    let throttled = {
        let mut data = shop.lock();
        let available = data.refill_cost(&app);
        let forced = data.faults.throttle_next > 0;
        if forced {
            data.faults.throttle_next -= 1;
        }
        if forced || (requested as f64) > available {
            Some(throttle_status(&mut data, &app))
        } else {
            data.cost_bucket(&app).available -= requested as f64;
            None
        }
    };
    if let Some(status) = throttled {
        rec.throttled = true;
        return json_response(
            StatusCode::OK,
            &json!({
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": cost_ext(requested, None, status),
            }),
        );
    }
    let mut request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(vars.clone()))
        .data(gql::Gql {
            emu: inner.clone(),
            shop: shop.clone(),
            version,
            bulk: false,
            app: app.clone(),
        });
    if let Some(name) = op_name {
        request = request.operation_name(name);
    }
    let resp = inner.schema.execute(request).await;
    let data = resp.data.clone().into_json().unwrap_or(Value::Null);
    let actual = match (&doc, op) {
        (Some(d), Some(op)) if resp.errors.is_empty() || !data.is_null() => {
            cost::actual(d, op, &vars, &data).min(requested)
        }
        _ => 0,
    };
    rec.actual_cost = Some(actual);
    let status = {
        let mut data = shop.lock();
        let max = data.plan.maximum;
        let b = data.cost_bucket(&app);
        b.available = (b.available + (requested - actual) as f64).min(max);
        throttle_status(&mut data, &app)
    };
    let mut out = serde_json::Map::new();
    if !resp.errors.is_empty() {
        let errors: Vec<Value> = resp
            .errors
            .iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .map(shopify_error)
            .collect();
        out.insert("errors".into(), Value::Array(errors));
    }
    out.insert("data".into(), data);
    out.insert(
        "extensions".into(),
        cost_ext(requested, Some(actual), status),
    );
    json_response(StatusCode::OK, &Value::Object(out))
}

/// Between two quote characters after `prefix`, and the rest.
fn quoted<'a>(s: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = s.strip_prefix(prefix)?;
    let end = rest.find('"')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// Rewrites the engine's validation messages in the wording and codes
/// Shopify's GraphQL server uses for the same mistakes.
fn shopify_error(mut e: Value) -> Value {
    let Some(msg) = e.get("message").and_then(Value::as_str).map(str::to_owned) else {
        return e;
    };
    let rewritten = if let Some((field, rest)) = quoted(&msg, "Unknown field \"") {
        quoted(rest, " on type \"").map(|(ty, _)| {
            (
                format!("Field '{field}' doesn't exist on type '{ty}'"),
                json!({"code": "undefinedField", "typeName": ty, "fieldName": field}),
            )
        })
    } else if let Some((arg, rest)) = quoted(&msg, "Unknown argument \"") {
        quoted(rest, " on field \"").map(|(field, _)| {
            (
                format!("Field '{field}' doesn't accept argument '{arg}'"),
                json!({"code": "argumentNotAccepted", "name": field, "typeName": "Field", "argumentName": arg}),
            )
        })
    } else if let Some((field, rest)) = quoted(&msg, "Field \"") {
        quoted(rest, " argument \"")
            .filter(|(_, tail)| tail.contains("is required but not provided"))
            .map(|(arg, _)| {
                (
                    format!("Field '{field}' is missing required arguments: {arg}"),
                    json!({"code": "missingRequiredArguments", "className": "Field", "name": field, "arguments": arg}),
                )
            })
    } else {
        None
    };
    if let (Some((message, ext)), Some(obj)) = (rewritten, e.as_object_mut()) {
        obj.insert("message".into(), Value::String(message));
        obj.insert("extensions".into(), ext);
    }
    e
}

async fn rest_host(
    State(inner): St,
    Path((version, rest_p)): Path<(String, String)>,
    method: axum::http::Method,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shop_from_host(&inner, &headers) {
        Some(shop) => rest(inner, shop, version, rest_p, method, q, headers, body).await,
        None => not_found(),
    }
}

async fn rest_path(
    State(inner): St,
    Path((shop, version, rest_p)): Path<(String, String, String)>,
    method: axum::http::Method,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match inner.shop(&shop) {
        Ok(shop) => rest(inner, shop, version, rest_p, method, q, headers, body).await,
        Err(_) => not_found(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn rest(
    inner: Arc<Inner>,
    shop: Arc<Shop>,
    version: String,
    path: String,
    method: axum::http::Method,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let mut rec = new_record(
        method.as_str(),
        &format!("/admin/api/{version}/{path}"),
        "rest",
    );
    let resp = rest_inner(
        &inner, &shop, &version, &path, &method, &query, &headers, &body, &mut rec,
    )
    .await;
    rec.status = resp.status().as_u16();
    rec.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    shop.lock().record(rec);
    with_request_id(resp)
}

#[allow(clippy::too_many_arguments)]
async fn rest_inner(
    inner: &Arc<Inner>,
    shop: &Arc<Shop>,
    version: &str,
    path: &str,
    method: &axum::http::Method,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
    rec: &mut RequestRecord,
) -> Response {
    if !valid_version(version) {
        return not_found();
    }
    let app = match gate(shop, headers, rec).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    // Leaky bucket: one request is one unit.
    let (limit_header, over) = {
        let mut data = shop.lock();
        let level = data.leak_rest(&app);
        let size = data.rest_limit.size;
        let forced = data.faults.throttle_next > 0;
        if forced {
            data.faults.throttle_next -= 1;
        }
        if forced || level + 1.0 > f64::from(size) {
            (format!("{}/{size}", level.ceil() as u64), true)
        } else {
            data.rest_bucket(&app).level = level + 1.0;
            (format!("{}/{size}", (level + 1.0).ceil() as u64), false)
        }
    };
    let mut resp = if over {
        rec.throttled = true;
        let mut r = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}),
        );
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("2.0"));
        r
    } else {
        rest_route(inner, shop, version, path, method, query, body)
    };
    if let Ok(v) = HeaderValue::from_str(&limit_header) {
        resp.headers_mut()
            .insert("x-shopify-shop-api-call-limit", v);
    }
    if let Ok(v) = HeaderValue::from_str(version) {
        resp.headers_mut().insert("x-shopify-api-version", v);
    }
    resp
}

fn q<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn fields_filter(v: Value, fields: Option<&str>) -> Value {
    let Some(fields) = fields else { return v };
    let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| keep.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

fn after_ts(actual: &str, bound: Option<&str>, min: bool) -> bool {
    let Some(bound) = bound else { return true };
    let (Ok(a), Ok(b)) = (
        chrono::DateTime::parse_from_rfc3339(actual),
        chrono::DateTime::parse_from_rfc3339(bound),
    ) else {
        return true;
    };
    if min { a >= b } else { a <= b }
}

#[allow(clippy::too_many_arguments)]
fn rest_route(
    inner: &Arc<Inner>,
    shop: &Arc<Shop>,
    version: &str,
    path: &str,
    method: &axum::http::Method,
    query: &[(String, String)],
    body: &[u8],
) -> Response {
    let segs: Vec<&str> = path.split('/').collect();
    let get = method == axum::http::Method::GET;
    let post = method == axum::http::Method::POST;
    match (segs.as_slice(), get, post) {
        (["shop.json"], true, _) => {
            let plan = shop.lock().plan;
            json_response(
                StatusCode::OK,
                &json!({"shop": {
                    "id": shop.id,
                    "name": shop.name,
                    "email": format!("owner@{}", shop.domain),
                    "domain": shop.domain,
                    "myshopify_domain": shop.domain,
                    "currency": shop.currency,
                    "enabled_presentment_currencies": std::iter::once(shop.currency.as_str()).chain(generator::PRESENTMENT_CURRENCIES.iter().copied()).collect::<Vec<_>>(),
                    "iana_timezone": "UTC",
                    "timezone": "(GMT+00:00) UTC",
                    "plan_name": if plan.restore_rate >= 1000.0 { "shopify_plus" } else { "basic" },
                    "taxes_included": false,
                    "weight_unit": "kg",
                    "country_code": "US",
                    "created_at": "2020-01-01T00:00:00+00:00",
                }}),
            )
        }
        (["orders.json"], true, _) => rest_orders(inner, shop, version, query),
        (["orders", "count.json"], true, _) => {
            let n = shop.lock().orders.len();
            json_response(StatusCode::OK, &json!({"count": n}))
        }
        (["orders", file], true, _) if file.ends_with(".json") => {
            let id = file.trim_end_matches(".json").parse::<u64>().ok();
            let order = id.and_then(|id| shop.lock().orders.get(&id).cloned());
            match order.and_then(|o| serde_json::to_value(o).ok()) {
                Some(v) => json_response(
                    StatusCode::OK,
                    &json!({"order": fields_filter(v, q(query, "fields"))}),
                ),
                None => not_found(),
            }
        }
        (["orders", id, "transactions.json"], true, _) => {
            let Ok(id) = id.parse::<u64>() else {
                return not_found();
            };
            let data = shop.lock();
            if !data.orders.contains_key(&id) {
                return not_found();
            }
            let tx = data.transactions.get(&id).cloned().unwrap_or_default();
            json_response(StatusCode::OK, &json!({"transactions": tx}))
        }
        (["inventory_levels.json"], true, _) => {
            let ids = |k: &str| -> Option<Vec<u64>> {
                q(query, k).map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            };
            let (items, locs) = (ids("inventory_item_ids"), ids("location_ids"));
            if items.is_none() && locs.is_none() {
                return json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"errors": {"base": ["Must specify one of inventory_item_ids or location_ids"]}}),
                );
            }
            let data = shop.lock();
            let levels: Vec<model::InventoryLevel> = data
                .levels
                .iter()
                .filter(|((i, l), _)| {
                    items.as_ref().is_none_or(|v| v.contains(i))
                        && locs.as_ref().is_none_or(|v| v.contains(l))
                })
                .map(|((i, l), lv)| model::InventoryLevel {
                    inventory_item_id: *i,
                    location_id: *l,
                    available: Some(lv.get("available")),
                    updated_at: lv.updated_at.clone(),
                    admin_graphql_api_id: gql::types::level_gid(*l, *i),
                })
                .collect();
            json_response(StatusCode::OK, &json!({"inventory_levels": levels}))
        }
        (["inventory_levels", "set.json"], _, true) => rest_set_level(inner, shop, body),
        (["customers.json"], true, _) => {
            let limit = q(query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(50usize)
                .min(250);
            let since = q(query, "since_id")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            let list: Vec<model::Customer> = shop
                .lock()
                .customers
                .range(since + 1..)
                .take(limit)
                .map(|(_, c)| c.clone())
                .collect();
            json_response(StatusCode::OK, &json!({"customers": list}))
        }
        (["products.json"], true, _) => {
            let limit = q(query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(50usize)
                .min(250);
            let since = q(query, "since_id")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            let list: Vec<model::Product> = shop
                .lock()
                .products
                .range(since + 1..)
                .take(limit)
                .map(|(_, p)| p.clone())
                .collect();
            json_response(StatusCode::OK, &json!({"products": list}))
        }
        _ => not_found(),
    }
}

fn rest_orders(
    inner: &Arc<Inner>,
    shop: &Arc<Shop>,
    version: &str,
    query: &[(String, String)],
) -> Response {
    // With page_info, the filters travel inside the cursor (Shopify forbids
    // repeating them).
    let mut params: Vec<(String, String)> = query.to_vec();
    if let Some(pi) = q(query, "page_info") {
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(pi)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<(String, String)>>(&b).ok());
        let Some(saved) = decoded else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"errors": {"page_info": "Invalid value."}}),
            );
        };
        params = saved;
        if let Some(limit) = q(query, "limit") {
            params.retain(|(k, _)| k != "limit");
            params.push(("limit".into(), limit.into()));
        }
    }
    let p = |k: &str| q(&params, k);
    let limit: usize = match p("limit").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=250).contains(&n) => n,
        Some(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"errors": {"limit": "Invalid value."}}),
            );
        }
    };
    let since = p("since_id")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let ids: Option<Vec<u64>> =
        p("ids").map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect());
    let status = p("status").unwrap_or("open");
    let fin = p("financial_status");
    let data = shop.lock();
    let mut matching = data.orders.range(since + 1..).map(|(_, o)| o).filter(|o| {
        ids.as_ref().is_none_or(|ids| ids.contains(&o.id))
            && match status {
                "open" => o.closed_at.is_none() && o.cancelled_at.is_none(),
                "closed" => o.closed_at.is_some(),
                "cancelled" => o.cancelled_at.is_some(),
                _ => true,
            }
            && fin.is_none_or(|f| f == "any" || o.financial_status.as_deref() == Some(f))
            && after_ts(&o.created_at, p("created_at_min"), true)
            && after_ts(&o.created_at, p("created_at_max"), false)
            && after_ts(&o.updated_at, p("updated_at_min"), true)
            && after_ts(&o.updated_at, p("updated_at_max"), false)
    });
    let page: Vec<model::Order> = matching.by_ref().take(limit).cloned().collect();
    let more = matching.next().is_some();
    drop(data);
    let fields = p("fields").map(str::to_owned);
    let orders: Vec<Value> = page
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .map(|v| fields_filter(v, fields.as_deref()))
        .collect();
    let mut resp = json_response(StatusCode::OK, &json!({"orders": orders}));
    if more && let Some(last) = page.last() {
        let mut next: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "since_id" && k != "page_info")
            .cloned()
            .collect();
        next.push(("since_id".into(), last.id.to_string()));
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&next).unwrap_or_default());
        let link = format!(
            "<{}/shops/{}/admin/api/{version}/orders.json?limit={limit}&page_info={token}>; rel=\"next\"",
            inner.base_url, shop.name
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    resp
}

#[derive(Deserialize)]
struct SetLevel {
    location_id: Option<u64>,
    inventory_item_id: Option<u64>,
    available: Option<i64>,
}

fn rest_set_level(inner: &Arc<Inner>, shop: &Arc<Shop>, body: &[u8]) -> Response {
    let Ok(req) = serde_json::from_slice::<SetLevel>(body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"errors": {"inventory_level": "Required parameter missing or invalid"}}),
        );
    };
    let (Some(loc), Some(item), Some(avail)) =
        (req.location_id, req.inventory_item_id, req.available)
    else {
        let missing = if req.location_id.is_none() {
            "location_id"
        } else if req.inventory_item_id.is_none() {
            "inventory_item_id"
        } else {
            "available"
        };
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"errors": {missing: "Required parameter missing or invalid"}}),
        );
    };
    let level = {
        let mut data = shop.lock();
        if !data.inventory_items.contains_key(&item) {
            return json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"errors": ["Inventory item does not exist"]}),
            );
        }
        if !data.locations.contains_key(&loc) {
            return json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"errors": ["Location does not exist"]}),
            );
        }
        let ts = crate::now_rfc3339();
        let l = data
            .levels
            .entry((item, loc))
            .or_insert_with(|| crate::shop::Level::new(0, &ts));
        let delta = avail - l.get("available");
        let on_hand = l.get("on_hand") + delta;
        l.quantities.insert("available".into(), avail);
        l.quantities.insert("on_hand".into(), on_hand);
        l.updated_at = ts.clone();
        model::InventoryLevel {
            inventory_item_id: item,
            location_id: loc,
            available: Some(avail),
            updated_at: ts,
            admin_graphql_api_id: gql::types::level_gid(loc, item),
        }
    };
    crate::webhooks::emit_json(inner, shop, "inventory_levels/update", &level);
    json_response(StatusCode::OK, &json!({"inventory_level": level}))
}

// ---- control plane -------------------------------------------------------

/// An optional JSON body: empty is `None`, malformed is a 400.
fn parse_optional<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("invalid JSON body: {e}")}),
        ))
    })
}

fn ctl_err(e: crate::Error) -> Response {
    let status = match e {
        crate::Error::UnknownShop(_) => StatusCode::NOT_FOUND,
        crate::Error::ShopExists(_) | crate::Error::AppExists(_) => StatusCode::CONFLICT,
        crate::Error::InvalidShopName(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_response(status, &json!({"error": e.to_string()}))
}

fn with_shop(inner: &Inner, name: &str, f: impl FnOnce(Arc<Shop>) -> Response) -> Response {
    match inner.shop(name) {
        Ok(s) => f(s),
        Err(e) => ctl_err(e),
    }
}

fn ok_json<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_value(v) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(_) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "serialise"}),
        ),
    }
}

async fn ctl_info(State(inner): St) -> Response {
    with_shop(&inner, &inner.config.shop_name.clone(), |s| {
        ok_json(&inner.info(&s))
    })
}

async fn ctl_shops(State(inner): St) -> Response {
    let shops: Vec<_> = inner
        .shops
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|s| inner.info(s))
        .collect();
    ok_json(&shops)
}

async fn ctl_create_shop(State(inner): St, Json(spec): Json<ShopSpec>) -> Response {
    match inner.create_shop(spec) {
        Ok(shop) => {
            let mut r = ok_json(&inner.info(&shop));
            *r.status_mut() = StatusCode::CREATED;
            r
        }
        Err(e) => ctl_err(e),
    }
}

async fn ctl_shop(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| {
        let data = s.lock();
        ok_json(&json!({
            "info": inner.info(&s),
            "plan": data.plan,
            "rest_limit": data.rest_limit,
            "faults": data.faults,
            "counts": {
                "orders": data.orders.len(),
                "customers": data.customers.len(),
                "products": data.products.len(),
                "locations": data.locations.len(),
                "subscriptions": data.subscriptions.len(),
                "requests": data.requests.len(),
                "deliveries": data.deliveries.len(),
            },
            "locations": data.locations.values().collect::<Vec<_>>(),
            "traffic_running": s.traffic.lock().map(|t| t.is_some()).unwrap_or(false),
        }))
    })
}

async fn ctl_reset(State(inner): St, Path(name): Path<String>, body: Bytes) -> Response {
    let spec: Option<SeedSpec> = match parse_optional(&body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    with_shop(&inner, &name, |s| {
        stop_traffic(&s);
        reset(&inner, &s, spec);
        ok_json(&json!({"reset": true}))
    })
}

async fn ctl_seed(
    State(inner): St,
    Path(name): Path<String>,
    Json(spec): Json<SeedSpec>,
) -> Response {
    with_shop(&inner, &name, |s| {
        generator::seed(&mut s.lock(), &s.domain, &spec);
        ok_json(&json!({"seeded": true}))
    })
}

async fn ctl_orders(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| {
        ok_json(&s.lock().orders.values().cloned().collect::<Vec<_>>())
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GenerateReq {
    count: Option<usize>,
    // Listed one by one: `#[serde(flatten)]` cannot carry numbers when serde_json's
    // arbitrary_precision feature is on (serde-rs/json#505).
    guest_probability: Option<f64>,
    new_customer_probability: Option<f64>,
    custom_line_probability: Option<f64>,
}

async fn ctl_generate(State(inner): St, Path(name): Path<String>, body: Bytes) -> Response {
    let req: GenerateReq = match parse_optional(&body) {
        Ok(s) => s.unwrap_or_default(),
        Err(r) => return *r,
    };
    let defaults = TrafficSpec::default();
    let spec = TrafficSpec {
        guest_probability: req.guest_probability.unwrap_or(defaults.guest_probability),
        new_customer_probability: req
            .new_customer_probability
            .unwrap_or(defaults.new_customer_probability),
        custom_line_probability: req
            .custom_line_probability
            .unwrap_or(defaults.custom_line_probability),
        ..defaults
    };
    with_shop(&inner, &name, |s| {
        let ids: Vec<String> = (0..req.count.unwrap_or(1).min(10_000))
            .map(|_| generate_order(&inner, &s, &spec).to_string())
            .collect();
        ok_json(&json!({"order_ids": ids}))
    })
}

async fn ctl_refund(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| {
        ok_json(&json!({"refund_id": generate_refund(&inner, &s).map(|id| id.to_string())}))
    })
}

async fn ctl_requests(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| ok_json(&s.lock().requests))
}

async fn ctl_deliveries(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| ok_json(&s.lock().deliveries))
}

async fn ctl_subscriptions(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| {
        ok_json(&s.lock().subscriptions.values().cloned().collect::<Vec<_>>())
    })
}

#[derive(Deserialize)]
struct SubscribeReq {
    topic: String,
    callback_url: String,
}

async fn ctl_subscribe(
    State(inner): St,
    Path(name): Path<String>,
    Json(req): Json<SubscribeReq>,
) -> Response {
    with_shop(&inner, &name, |s| {
        let id = subscribe(&inner, &s, &req.topic, &req.callback_url);
        ok_json(&json!({"id": id.to_string()}))
    })
}

async fn ctl_faults(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| ok_json(&s.lock().faults))
}

async fn ctl_set_faults(
    State(inner): St,
    Path(name): Path<String>,
    Json(f): Json<Faults>,
) -> Response {
    with_shop(&inner, &name, |s| {
        s.lock().faults = f.clone();
        ok_json(&f)
    })
}

async fn ctl_clear_faults(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| {
        s.lock().faults = Faults::default();
        ok_json(&Faults::default())
    })
}

async fn ctl_plan(State(inner): St, Path(name): Path<String>, Json(plan): Json<Plan>) -> Response {
    with_shop(&inner, &name, |s| {
        let mut data = s.lock();
        data.plan = plan;
        data.cost_buckets.clear();
        ok_json(&plan)
    })
}

async fn ctl_add_app(
    State(inner): St,
    Path(name): Path<String>,
    Json(spec): Json<crate::AppSpec>,
) -> Response {
    with_shop(&inner, &name, |s| match add_app(&s, spec) {
        Ok(app) => {
            let mut r = ok_json(&crate::ShopifyInfo {
                access_token: app.access_token,
                api_secret: app.api_secret,
                ..inner.info(&s)
            });
            *r.status_mut() = StatusCode::CREATED;
            r
        }
        Err(e) => ctl_err(e),
    })
}

async fn ctl_traffic_start(State(inner): St, Path(name): Path<String>, body: Bytes) -> Response {
    let spec: TrafficSpec = match parse_optional(&body) {
        Ok(s) => s.unwrap_or_default(),
        Err(r) => return *r,
    };
    with_shop(&inner, &name, |s| {
        start_traffic(&inner, &s, spec.clone());
        ok_json(&spec)
    })
}

async fn ctl_traffic_stop(State(inner): St, Path(name): Path<String>) -> Response {
    with_shop(&inner, &name, |s| {
        stop_traffic(&s);
        ok_json(&json!({"stopped": true}))
    })
}

async fn bulk_file(State(inner): St, Path((name, file)): Path<(String, String)>) -> Response {
    let Ok(shop) = inner.shop(&name) else {
        return not_found();
    };
    let Some(id) = file
        .strip_suffix(".jsonl")
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return not_found();
    };
    let body = shop.lock().bulk_ops.get(&id).map(|b| b.jsonl.clone());
    match body {
        Some(b) => {
            let mut r = (StatusCode::OK, b).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/jsonl"),
            );
            r
        }
        None => not_found(),
    }
}

// ---- helpers shared with the Rust API -----------------------------------

/// Subscribes `url` to `topic` (`orders/create` or `ORDERS_CREATE`).
pub fn subscribe(inner: &Inner, shop: &Shop, topic: &str, url: &str) -> u64 {
    let topic = topic.replace('/', "_").to_uppercase();
    let mut data = shop.lock();
    let id = data.next_id();
    let ts = crate::now_rfc3339();
    data.subscriptions.insert(
        id,
        Subscription {
            id,
            topic,
            callback_url: url.into(),
            format: "JSON".into(),
            include_fields: Vec::new(),
            metafield_namespaces: Vec::new(),
            filter: None,
            api_version: inner.config.api_version.clone(),
            created_at: ts.clone(),
            updated_at: ts,
            consecutive_failures: 0,
            app: crate::DEFAULT_APP.into(),
        },
    );
    id
}

/// Installs another app on a shop.
pub fn add_app(shop: &Shop, spec: crate::AppSpec) -> Result<crate::shop::App, crate::Error> {
    let mut apps = shop.apps.write().unwrap_or_else(|e| e.into_inner());
    let n = apps.len() as u64;
    let salt = shop
        .seed
        .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let app = crate::shop::App {
        access_token: spec
            .access_token
            .unwrap_or_else(|| format!("shpat_{salt:016x}{n:016x}")),
        api_secret: spec
            .api_secret
            .unwrap_or_else(|| format!("shpss_{salt:016x}{n:016x}")),
        name: spec.name,
    };
    if app.name.is_empty()
        || apps
            .iter()
            .any(|a| a.name == app.name || a.access_token == app.access_token)
    {
        return Err(crate::Error::AppExists(app.name));
    }
    apps.push(app.clone());
    Ok(app)
}

/// Clears and reseeds a shop.
pub fn reset(inner: &Inner, shop: &Shop, seed: Option<SeedSpec>) {
    let mut data = shop.lock();
    let plan = data.plan;
    let rest_limit = data.rest_limit;
    *data = crate::shop::ShopData::new(shop.seed, plan, rest_limit);
    let spec = seed.unwrap_or_else(|| inner.config.seed_data.clone());
    generator::seed(&mut data, &shop.domain, &spec);
}

/// Generates one order and fires its webhooks; returns its id.
pub fn generate_order(inner: &Arc<Inner>, shop: &Arc<Shop>, spec: &TrafficSpec) -> u64 {
    let (order, customer) = generator::random_order(&mut shop.lock(), &shop.domain, spec);
    if let Some(c) = customer {
        crate::webhooks::emit_json(inner, shop, "customers/create", &c);
    }
    crate::webhooks::emit_json(inner, shop, "orders/create", &order);
    crate::webhooks::emit_json(inner, shop, "orders/paid", &order);
    order.id
}

/// Generates one refund and fires its webhooks.
pub fn generate_refund(inner: &Arc<Inner>, shop: &Arc<Shop>) -> Option<u64> {
    let (refund, order) = generator::random_refund(&mut shop.lock())?;
    crate::webhooks::emit_json(inner, shop, "refunds/create", &refund);
    crate::webhooks::emit_json(inner, shop, "orders/updated", &order);
    Some(refund.id)
}

/// Starts (or restarts) the traffic task of a shop.
pub fn start_traffic(inner: &Arc<Inner>, shop: &Arc<Shop>, spec: TrafficSpec) {
    stop_traffic(shop);
    let (inner2, shop2) = (inner.clone(), shop.clone());
    let handle = tokio::spawn(async move {
        let period = Duration::from_secs_f64(1.0 / spec.orders_per_sec.clamp(0.001, 10_000.0));
        let mut tick = tokio::time::interval(period);
        let mut n = 0u64;
        loop {
            tick.tick().await;
            generate_order(&inner2, &shop2, &spec);
            let refund = {
                let p = spec.refund_probability.clamp(0.0, 1.0);
                shop2.lock().rng.random_bool(p)
            };
            if refund {
                generate_refund(&inner2, &shop2);
            }
            let (update, cancel) = {
                let mut data = shop2.lock();
                let u = spec.update_probability.clamp(0.0, 1.0);
                let c = spec.cancel_probability.clamp(0.0, 1.0);
                (data.rng.random_bool(u), data.rng.random_bool(c))
            };
            // Bind first: the shop lock must be released before emitting.
            let updated = if update {
                generator::random_update(&mut shop2.lock())
            } else {
                None
            };
            if let Some(o) = updated {
                crate::webhooks::emit_json(&inner2, &shop2, "orders/updated", &o);
            }
            let cancelled = if cancel {
                generator::random_cancel(&mut shop2.lock())
            } else {
                None
            };
            if let Some(o) = cancelled {
                crate::webhooks::emit_json(&inner2, &shop2, "orders/cancelled", &o);
                crate::webhooks::emit_json(&inner2, &shop2, "orders/updated", &o);
            }
            n += 1;
            if spec.max_orders > 0 && n >= spec.max_orders {
                break;
            }
        }
    });
    if let Ok(mut t) = shop.traffic.lock() {
        *t = Some(handle);
    }
}

/// Stops the traffic task of a shop.
pub fn stop_traffic(shop: &Shop) {
    if let Ok(mut t) = shop.traffic.lock()
        && let Some(h) = t.take()
    {
        h.abort();
    }
}
