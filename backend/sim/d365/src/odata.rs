//! OData v4 resource handling under `/data/`: service document, `$metadata`,
//! collections with query options and server-driven paging, single entities,
//! navigation to lines, and writes. Operations run synchronously against a
//! locked store so that `$batch` changesets can share the same code.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::filter::{self, as_decimal, compare_typed};
use crate::schema::{EdmType, EntitySet, schema};
use crate::store::{Row, Store, Undo, WriteError, key_string, project};

/// JSON content type F&O answers with.
pub const JSON_CT: &str = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8";

const STACKTRACE: &str = "   at Microsoft.Dynamics.Platform.Integration.Services.OData.Update.UpdateProcessor.CreateEntity_Save(ChangeOperationContext context, ChangeInfo changeInfo)\r\n   at Microsoft.Dynamics.Platform.Integration.Services.OData.Update.ChangeInfo.ExecuteActionsInCompanyContext(IEnumerable`1 actionList, ChangeOperationContext operationContext)\r\n   at Microsoft.Dynamics.Platform.Integration.Services.OData.Update.ChangeInfo.TrySave(ChangeOperationContext operationContext)\r\n   at Microsoft.Dynamics.Platform.Integration.Services.OData.Update.UpdateManager.SaveChanges()\r\n   at Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataDelegatingHandler.<SaveChangesAsync>d__2.MoveNext()";

/// A response to one OData operation (top-level or inside `$batch`).
#[derive(Debug, Clone)]
pub struct OpResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers besides `OData-Version`.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl OpResponse {
    /// A JSON response.
    pub fn json(status: StatusCode, v: &Value) -> OpResponse {
        OpResponse {
            status,
            headers: vec![("Content-Type".into(), JSON_CT.into())],
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    /// A response without body.
    pub fn empty(status: StatusCode) -> OpResponse {
        OpResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `{"error":{"code":"","message":…}}` with the given status.
    pub fn error(status: StatusCode, message: &str) -> OpResponse {
        OpResponse::json(status, &json!({"error": {"code": "", "message": message}}))
    }

    /// 404 with F&O's body.
    pub fn not_found() -> OpResponse {
        OpResponse::error(StatusCode::NOT_FOUND, "Not found.")
    }

    /// 400 for an invalid query option.
    pub fn bad_query(detail: &str) -> OpResponse {
        OpResponse::error(
            StatusCode::BAD_REQUEST,
            &format!("The query specified in the URI is not valid. {detail}"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn throttled(retry_after: u64) -> OpResponse {
        let mut r = OpResponse::error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "The request was throttled by service protection. Retry after {retry_after} seconds."
            ),
        );
        r.headers
            .push(("Retry-After".into(), retry_after.to_string()));
        r
    }

    /// The response for a refused write.
    pub fn write_error(e: &WriteError) -> OpResponse {
        match e {
            WriteError::BadRequest(m) => OpResponse::error(StatusCode::BAD_REQUEST, m),
            WriteError::NotFound => OpResponse::not_found(),
            WriteError::Write { .. } => OpResponse::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": {
                    "code": "",
                    "message": "An error has occurred.",
                    "innererror": {
                        "message": e.to_string(),
                        "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException",
                        "stacktrace": STACKTRACE,
                    }
                }}),
            ),
        }
    }

    /// Whether this is a success status.
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }
}

/// Per-request settings.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// Environment base URL (without `/data`).
    pub base_url: &'a str,
    /// The caller's default company.
    pub default_company: &'a str,
    /// Server page size.
    pub page_size: usize,
    /// `Prefer` header value, if any.
    pub prefer: Option<&'a str>,
    /// The client asked for `IEEE754Compatible=true`: decimals and 64-bit
    /// integers are then written as JSON strings.
    pub ieee754: bool,
    /// `If-Match` header value, if any.
    pub if_match: Option<&'a str>,
}

/// 412 when `If-Match` names another version of the row.
fn precondition(ctx: &Ctx, store: &Store, table: &str, key: &str) -> Option<OpResponse> {
    let wanted = ctx.if_match?.trim();
    if wanted == "*" {
        return None;
    }
    let current = store.get(table, key)?.etag();
    if wanted.split(',').any(|t| t.trim() == current) {
        return None;
    }
    Some(OpResponse::error(
        StatusCode::PRECONDITION_FAILED,
        "The ETag value in the request header does not match the current ETag value of the object.",
    ))
}

/// Whether a media type (Accept / Content-Type) asks for IEEE754Compatible output.
pub fn wants_ieee754(media: Option<&str>) -> bool {
    media.is_some_and(|m| {
        m.to_ascii_lowercase()
            .replace(' ', "")
            .contains("ieee754compatible=true")
    })
}

/// A projection honouring the request's number format.
fn view(ctx: &Ctx, set: &EntitySet, row: &Row, select: Option<&[String]>) -> Map<String, Value> {
    let mut m = project(set, row, select);
    if ctx.ieee754 {
        for (k, v) in m.iter_mut() {
            if let (Some(p), Value::Number(n)) = (set.prop(k), &*v)
                && matches!(p.ty, EdmType::Decimal | EdmType::Int64)
            {
                *v = Value::String(n.to_string());
            }
        }
    }
    m
}

/// Decodes `%XX` escapes (paths keep `+` as is).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes a query string into ordered pairs.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            // Form-style '+' for space, as most HTTP clients encode it.
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// A parsed resource path.
#[derive(Debug)]
struct Resource<'s> {
    set: &'s EntitySet,
    keys: Option<Vec<(String, Value)>>,
    nav: Option<String>,
    count: bool,
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == sep && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn key_value(raw: &str) -> Option<Value> {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Some(Value::String(inner.replace("''", "'")));
    }
    if let Some(d) = filter::parse_date(raw) {
        return Some(Value::String(crate::store::fmt_time(d)));
    }
    let d = Decimal::from_str(raw.trim_end_matches(['m', 'M'])).ok()?;
    serde_json::from_str(&d.normalize().to_string()).ok()
}

fn parse_resource(path: &str) -> Result<Resource<'static>, OpResponse> {
    let sc = schema();
    let (head, tail) = match path.find('(') {
        Some(i) => {
            let mut depth = 0;
            let mut quoted = false;
            let mut close = None;
            for (j, c) in path[i..].char_indices() {
                match c {
                    '\'' => quoted = !quoted,
                    '(' if !quoted => depth += 1,
                    ')' if !quoted => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(i + j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let close = close.ok_or_else(|| OpResponse::bad_query("Bad key syntax."))?;
            (&path[..i], Some((&path[i + 1..close], &path[close + 1..])))
        }
        None => (path, None),
    };
    let (name, after) = match tail {
        Some(_) => (head, tail.map(|t| t.1).unwrap_or("")),
        None => match head.split_once('/') {
            Some((n, rest)) => (n, rest),
            None => (head, ""),
        },
    };
    let set = sc.set(name).ok_or_else(OpResponse::not_found)?;
    let keys = match tail {
        Some((k, _)) => {
            let parts = split_outside_quotes(k, ',');
            let mut keys = Vec::new();
            for part in parts {
                match part.split_once('=') {
                    Some((n, v)) if !n.trim().starts_with('\'') => {
                        let n = n.trim();
                        if !set.keys.iter().any(|k| k == n) {
                            return Err(OpResponse::bad_query(&format!(
                                "The key property '{n}' is not part of the key of '{}'.",
                                set.name
                            )));
                        }
                        keys.push((
                            n.to_string(),
                            key_value(v).ok_or_else(|| OpResponse::bad_query("Bad key value."))?,
                        ));
                    }
                    _ => {
                        // A lone value addresses single-key sets or the non-company key.
                        let non_company: Vec<&String> =
                            set.keys.iter().filter(|k| *k != "dataAreaId").collect();
                        if non_company.len() != 1 {
                            return Err(OpResponse::bad_query(
                                "The number of keys specified in the URI does not match number of key properties for the resource.",
                            ));
                        }
                        keys.push((
                            non_company[0].clone(),
                            key_value(&part)
                                .ok_or_else(|| OpResponse::bad_query("Bad key value."))?,
                        ));
                    }
                }
            }
            Some(keys)
        }
        None => None,
    };
    let after = after.trim_start_matches('/');
    let (nav, count) = match after {
        "" => (None, false),
        "$count" => (None, true),
        other => match other.split_once('/') {
            Some((n, "$count")) => (Some(n.to_string()), true),
            _ => (Some(other.to_string()), false),
        },
    };
    if let Some(n) = &nav
        && !set.navigations().iter().any(|(x, _)| x == n)
    {
        return Err(OpResponse::not_found());
    }
    Ok(Resource {
        set,
        keys,
        nav,
        count,
    })
}

fn value_eq(set: &EntitySet, prop: &str, a: &Value, b: &Value) -> bool {
    let ty = set
        .prop(prop)
        .map(|p| p.ty.clone())
        .unwrap_or(EdmType::String);
    compare_typed(&ty, a, b, schema()) == Some(std::cmp::Ordering::Equal)
}

/// Finds the table key of the entity a key predicate addresses.
fn locate(store: &Store, set: &EntitySet, keys: &[(String, Value)], ctx: &Ctx) -> Option<String> {
    let sc = schema();
    let table = sc.table(&set.table)?;
    let mut want: Map<String, Value> = keys.iter().cloned().collect();
    if set.company_scoped() && !want.contains_key("dataAreaId") {
        want.insert(
            "dataAreaId".into(),
            Value::String(ctx.default_company.into()),
        );
    }
    if set.keys.iter().all(|k| want.contains_key(k)) && set.keys == table.keys {
        let k = key_string(&table.keys, &want);
        return store.get(&table.name, &k).map(|_| k);
    }
    store
        .rows(&table.name)
        .find(|r| {
            want.iter().all(|(k, v)| {
                let stored = r.data.get(k).or_else(|| set.prop(k).map(|p| &p.default));
                stored.is_some_and(|rv| value_eq(set, k, rv, v))
            })
        })
        .map(|r| key_string(&table.keys, &r.data))
}

fn key_literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

/// Canonical URL of an entity.
pub fn entity_url(base: &str, set: &EntitySet, data: &Map<String, Value>) -> String {
    let keys = set
        .keys
        .iter()
        .map(|k| format!("{k}={}", key_literal(data.get(k).unwrap_or(&Value::Null))))
        .collect::<Vec<_>>()
        .join(",");
    format!("{base}/data/{}({keys})", set.name)
}

/// The cached `$metadata` document.
pub fn metadata() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| schema().metadata_xml())
}

/// Runs one operation. `target` is the part after `/data/`, query included.
/// Returns the response and, for creates, the new entity's URL (for Content-ID).
pub fn execute(
    ctx: &Ctx,
    store: &mut Store,
    method: &Method,
    target: &str,
    body: &[u8],
    undo: &mut Vec<Undo>,
) -> (OpResponse, Option<String>) {
    let (mut resp, url) = execute_inner(ctx, store, method, target, body, undo);
    if ctx.ieee754 {
        for (k, v) in resp.headers.iter_mut() {
            if k.eq_ignore_ascii_case("Content-Type") {
                *v = v.replace("IEEE754Compatible=false", "IEEE754Compatible=true");
            }
        }
    }
    (resp, url)
}

fn execute_inner(
    ctx: &Ctx,
    store: &mut Store,
    method: &Method,
    target: &str,
    body: &[u8],
    undo: &mut Vec<Undo>,
) -> (OpResponse, Option<String>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(path);
    let path = path.trim_matches('/');
    let params = parse_query(query);
    if path.is_empty() {
        if method != Method::GET {
            return (method_not_allowed(), None);
        }
        let sets: Vec<Value> = schema()
            .sets
            .iter()
            .map(|s| json!({"name": s.name, "kind": "EntitySet", "url": s.name}))
            .collect();
        let doc =
            json!({"@odata.context": format!("{}/data/$metadata", ctx.base_url), "value": sets});
        return (OpResponse::json(StatusCode::OK, &doc), None);
    }
    if path == "$metadata" {
        return (
            OpResponse {
                status: StatusCode::OK,
                headers: vec![("Content-Type".into(), "application/xml".into())],
                body: metadata().as_bytes().to_vec(),
            },
            None,
        );
    }
    let res = match parse_resource(path) {
        Ok(r) => r,
        Err(e) => return (e, None),
    };
    let set = res.set;
    // A key in another legal entity is out of reach unless the request is
    // cross-company, as collections are.
    let cross = param(&params, "cross-company").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    if !cross
        && set.company_scoped()
        && let Some(keys) = &res.keys
        && keys.iter().any(|(k, v)| {
            k == "dataAreaId"
                && !v
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case(ctx.default_company))
        })
    {
        return (OpResponse::not_found(), None);
    }
    match (method.as_str(), &res.keys, &res.nav) {
        ("GET", None, None) => (query_set(ctx, store, set, &params, None, res.count), None),
        ("GET", Some(keys), None) => match locate(store, set, keys, ctx) {
            Some(k) => (get_one(ctx, store, set, &k, &params), None),
            None => (OpResponse::not_found(), None),
        },
        ("GET", Some(keys), Some(nav)) => {
            let Some(k) = locate(store, set, keys, ctx) else {
                return (OpResponse::not_found(), None);
            };
            let Some((target_set, parent)) = nav_target(store, set, &k, nav) else {
                return (OpResponse::not_found(), None);
            };
            (
                query_set(ctx, store, target_set, &params, Some(&parent), res.count),
                None,
            )
        }
        ("POST", None, None) => create(ctx, store, set, body, None, undo),
        ("POST", Some(keys), Some(nav)) => {
            let Some(k) = locate(store, set, keys, ctx) else {
                return (OpResponse::not_found(), None);
            };
            let Some((target_set, parent)) = nav_target(store, set, &k, nav) else {
                return (OpResponse::not_found(), None);
            };
            create(ctx, store, target_set, body, Some(&parent), undo)
        }
        ("PATCH" | "PUT" | "MERGE", Some(keys), None) => {
            let Some(k) = locate(store, set, keys, ctx) else {
                return (OpResponse::not_found(), None);
            };
            let v = match parse_json(body) {
                Ok(v) => v,
                Err(e) => return (e, None),
            };
            if let Some(e) = precondition(ctx, store, &set.table, &k) {
                return (e, None);
            }
            let table_key = k;
            match store.update(set, &table_key, &v, method == Method::PUT, undo) {
                Ok(()) => (OpResponse::empty(StatusCode::NO_CONTENT), None),
                Err(e) => (OpResponse::write_error(&e), None),
            }
        }
        ("DELETE", Some(keys), None) => {
            let Some(k) = locate(store, set, keys, ctx) else {
                return (OpResponse::not_found(), None);
            };
            if let Some(e) = precondition(ctx, store, &set.table, &k) {
                return (e, None);
            }
            match store.delete(set, &k, undo) {
                Ok(()) => (OpResponse::empty(StatusCode::NO_CONTENT), None),
                Err(e) => (OpResponse::write_error(&e), None),
            }
        }
        _ => (method_not_allowed(), None),
    }
}

fn method_not_allowed() -> OpResponse {
    OpResponse::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "The HTTP method is not supported for this resource.",
    )
}

fn parse_json(body: &[u8]) -> Result<Value, OpResponse> {
    serde_json::from_slice(body).map_err(|e| {
        OpResponse::error(
            StatusCode::BAD_REQUEST,
            &format!("The request body is not valid JSON: {e}"),
        )
    })
}

/// (child set, parent constraints) for a navigation from an entity.
fn nav_target(
    store: &Store,
    set: &EntitySet,
    table_key: &str,
    nav: &str,
) -> Option<(&'static EntitySet, Map<String, Value>)> {
    let (_, target) = set.navigations().iter().find(|(n, _)| *n == nav)?;
    let target_set = schema().set(target)?;
    let row = store.get(&set.table, table_key)?;
    let link = if set.table == "SalesOrderHeader" {
        "SalesOrderNumber"
    } else {
        "JournalBatchNumber"
    };
    let mut parent = Map::new();
    for k in ["dataAreaId", link] {
        parent.insert(k.into(), row.data.get(k).cloned().unwrap_or(Value::Null));
    }
    Some((target_set, parent))
}

fn create(
    ctx: &Ctx,
    store: &mut Store,
    set: &EntitySet,
    body: &[u8],
    parent: Option<&Map<String, Value>>,
    undo: &mut Vec<Undo>,
) -> (OpResponse, Option<String>) {
    let mut v = match parse_json(body) {
        Ok(v) => v,
        Err(e) => return (e, None),
    };
    if let (Some(parent), Some(obj)) = (parent, v.as_object_mut()) {
        for (k, pv) in parent {
            obj.insert(k.clone(), pv.clone());
        }
    }
    let key = match store.create(set, &v, ctx.default_company, undo) {
        Ok(k) => k,
        Err(e) => return (OpResponse::write_error(&e), None),
    };
    let Some(row) = store.get(&set.table, &key) else {
        return (OpResponse::not_found(), None);
    };
    let url = entity_url(ctx.base_url, set, &row.data);
    let etag = row.etag();
    let mut resp = if ctx.prefer.is_some_and(|p| p.contains("return=minimal")) {
        let mut r = OpResponse::empty(StatusCode::NO_CONTENT);
        r.headers.push(("OData-EntityId".into(), url.clone()));
        r.headers
            .push(("Preference-Applied".into(), "return=minimal".into()));
        r
    } else {
        let mut entity = Map::new();
        entity.insert(
            "@odata.context".into(),
            Value::String(format!(
                "{}/data/$metadata#{}/$entity",
                ctx.base_url, set.name
            )),
        );
        entity.extend(view(ctx, set, row, None));
        OpResponse::json(StatusCode::CREATED, &Value::Object(entity))
    };
    resp.headers.push(("Location".into(), url.clone()));
    resp.headers.push(("ETag".into(), etag));
    (resp, Some(url))
}

struct Expand {
    nav: String,
    select: Option<Vec<String>>,
}

fn parse_select(set: &EntitySet, s: &str) -> Result<Option<Vec<String>>, OpResponse> {
    let s = s.trim();
    if s.is_empty() || s == "*" {
        return Ok(None);
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim) {
        if set.prop(name).is_none() {
            return Err(OpResponse::bad_query(&format!(
                "Could not find a property named '{name}' on type 'Microsoft.Dynamics.DataEntities.{}'.",
                set.type_name
            )));
        }
        out.push(name.to_string());
    }
    Ok(Some(out))
}

fn parse_expand(set: &EntitySet, s: &str) -> Result<Vec<Expand>, OpResponse> {
    let mut out = Vec::new();
    for item in split_outside_parens(s) {
        let item = item.trim();
        let (nav, opts) = match item.split_once('(') {
            Some((n, rest)) => (n.trim(), rest.trim_end_matches(')')),
            None => (item, ""),
        };
        let Some((_, target)) = set.navigations().iter().find(|(n, _)| *n == nav) else {
            return Err(OpResponse::bad_query(&format!(
                "Could not find a property named '{nav}' on type 'Microsoft.Dynamics.DataEntities.{}'.",
                set.type_name
            )));
        };
        let Some(target_set) = schema().set(target) else {
            return Err(OpResponse::not_found());
        };
        let mut select = None;
        for opt in opts.split(';').filter(|o| !o.trim().is_empty()) {
            match opt.split_once('=') {
                Some(("$select", v)) => select = parse_select(target_set, v)?,
                _ => {
                    return Err(OpResponse::bad_query(&format!(
                        "The nested query option '{opt}' is not supported."
                    )));
                }
            }
        }
        out.push(Expand {
            nav: nav.to_string(),
            select,
        });
    }
    Ok(out)
}

fn split_outside_parens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_usize(params: &[(String, String)], name: &str) -> Result<Option<usize>, OpResponse> {
    match param(params, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| OpResponse::bad_query(&format!("Invalid value '{v}' for {name}."))),
    }
}

/// Expanded navigation values for one row.
fn expansions(
    ctx: &Ctx,
    set: &EntitySet,
    row: &Row,
    expand: &[Expand],
    index: &HashMap<(String, String), Vec<&Row>>,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in expand {
        let Some((_, target)) = set.navigations().iter().find(|(n, _)| *n == e.nav) else {
            continue;
        };
        let Some(target_set) = schema().set(target) else {
            continue;
        };
        let link = if set.table == "SalesOrderHeader" {
            "SalesOrderNumber"
        } else {
            "JournalBatchNumber"
        };
        let k = (
            str_of(row, "dataAreaId").to_lowercase(),
            str_of(row, link).to_lowercase(),
        );
        let children: Vec<Value> = index
            .get(&k)
            .map(|rows| {
                rows.iter()
                    .map(|r| Value::Object(view(ctx, target_set, r, e.select.as_deref())))
                    .collect()
            })
            .unwrap_or_default();
        out.push((e.nav.clone(), Value::Array(children)));
    }
    out
}

fn str_of<'r>(row: &'r Row, k: &str) -> &'r str {
    row.data.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn child_index<'s>(
    store: &'s Store,
    set: &EntitySet,
    rows: &[&Row],
    expand: &[Expand],
) -> HashMap<(String, String), Vec<&'s Row>> {
    let mut index: HashMap<(String, String), Vec<&Row>> = HashMap::new();
    if expand.is_empty() {
        return index;
    }
    let (child_table, link) = if set.table == "SalesOrderHeader" {
        ("SalesOrderLine", "SalesOrderNumber")
    } else {
        ("PaymentJournalLine", "JournalBatchNumber")
    };
    for r in rows {
        let area = str_of(r, "dataAreaId");
        let parent = str_of(r, link);
        let mut lines = store.children(child_table, area, parent);
        lines.sort_by(|a, b| {
            let la = a
                .data
                .get("LineNumber")
                .and_then(as_decimal)
                .unwrap_or_default();
            let lb = b
                .data
                .get("LineNumber")
                .and_then(as_decimal)
                .unwrap_or_default();
            la.cmp(&lb)
        });
        index.insert((area.to_lowercase(), parent.to_lowercase()), lines);
    }
    index
}

fn get_one(
    ctx: &Ctx,
    store: &Store,
    set: &EntitySet,
    table_key: &str,
    params: &[(String, String)],
) -> OpResponse {
    let Some(row) = store.get(&set.table, table_key) else {
        return OpResponse::not_found();
    };
    let select = match parse_select(set, param(params, "$select").unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let expand = match parse_expand(set, param(params, "$expand").unwrap_or("")) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let index = child_index(store, set, &[row], &expand);
    let mut entity = Map::new();
    entity.insert(
        "@odata.context".into(),
        Value::String(format!(
            "{}/data/$metadata#{}/$entity",
            ctx.base_url, set.name
        )),
    );
    entity.extend(view(ctx, set, row, select.as_deref()));
    entity.extend(expansions(ctx, set, row, &expand, &index));
    let mut r = OpResponse::json(StatusCode::OK, &Value::Object(entity));
    r.headers.push(("ETag".into(), row.etag()));
    r
}

/// A `Property eq 'text'` the whole filter requires (alone or under `and`), usable with an
/// equality index: a string property, a literal without wildcards that is not the
/// property's default (rows without the property read as the default and are not indexed).
fn indexed_equality<'e>(e: &'e filter::Expr, set: &EntitySet) -> Option<(&'e str, &'e str)> {
    use filter::{Expr, Literal, Op, Operand};
    match e {
        Expr::And(a, b) => indexed_equality(a, set).or_else(|| indexed_equality(b, set)),
        Expr::Cmp(Operand::Prop(p), Op::Eq, Operand::Lit(Literal::Str(v)))
        | Expr::Cmp(Operand::Lit(Literal::Str(v)), Op::Eq, Operand::Prop(p)) => {
            let prop = set.prop(p)?;
            let usable = prop.ty == crate::schema::EdmType::String
                && !v.is_empty()
                && !v.contains('*')
                && prop
                    .default
                    .as_str()
                    .is_none_or(|d| crate::store::fold_case(d) != crate::store::fold_case(v));
            usable.then_some((p.as_str(), v.as_str()))
        }
        _ => None,
    }
}

fn query_set(
    ctx: &Ctx,
    store: &Store,
    set: &EntitySet,
    params: &[(String, String)],
    parent: Option<&Map<String, Value>>,
    count_only: bool,
) -> OpResponse {
    const KNOWN: &[&str] = &[
        "$filter",
        "$select",
        "$orderby",
        "$top",
        "$skip",
        "$count",
        "$expand",
        "$skiptoken",
        "$format",
        "cross-company",
    ];
    for (k, _) in params {
        if k.starts_with('$') && !KNOWN.iter().any(|n| n.eq_ignore_ascii_case(k)) {
            return OpResponse::bad_query(&format!("The query parameter '{k}' is not supported."));
        }
    }
    let sc = schema();
    let filter = match param(params, "$filter") {
        Some(f) => {
            match filter::parse_filter(f).and_then(|e| filter::check_props(&e, set).map(|()| e)) {
                Ok(e) => Some(e),
                Err(e) => return OpResponse::bad_query(&e.0),
            }
        }
        None => None,
    };
    let orderby = match param(params, "$orderby") {
        Some(o) => match filter::parse_orderby(o, set) {
            Ok(o) => o,
            Err(e) => return OpResponse::bad_query(&e.0),
        },
        None => Vec::new(),
    };
    let select = match parse_select(set, param(params, "$select").unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let expand = match parse_expand(set, param(params, "$expand").unwrap_or("")) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let (top, skip) = match (parse_usize(params, "$top"), parse_usize(params, "$skip")) {
        (Ok(t), Ok(s)) => (t, s.unwrap_or(0)),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let count = param(params, "$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let cross = param(params, "cross-company").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let offset = match param(params, "$skiptoken") {
        Some(t) => match URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("sim:").and_then(|n| n.parse::<usize>().ok()))
        {
            Some(o) => o,
            None => return OpResponse::bad_query("The $skiptoken is not valid."),
        },
        None => 0,
    };

    // An indexed equality in the filter narrows the rows first; the whole filter still
    // decides, so the index only saves the scan.
    let indexed = filter
        .as_ref()
        .and_then(|f| indexed_equality(f, set))
        .and_then(|(column, value)| store.rows_where_eq(&set.table, column, value));
    let candidates: Box<dyn Iterator<Item = &Row>> = match indexed {
        Some(rows) => Box::new(rows.into_iter()),
        None => Box::new(store.rows(&set.table)),
    };
    let mut rows: Vec<&Row> = candidates
        .filter(|r| {
            !set.company_scoped()
                || cross
                || parent.is_some()
                || str_of(r, "dataAreaId").eq_ignore_ascii_case(ctx.default_company)
        })
        .filter(|r| {
            parent.is_none_or(|p| {
                p.iter().all(|(k, v)| {
                    r.data
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .eq_ignore_ascii_case(v.as_str().unwrap_or_default())
                })
            })
        })
        .filter(|r| {
            filter
                .as_ref()
                .is_none_or(|f| filter::eval(f, &r.data, set, sc))
        })
        .collect();
    if !orderby.is_empty() {
        rows.sort_by(|a, b| filter::order_rows(&a.data, &b.data, &orderby, set, sc));
    }
    if count_only {
        return OpResponse {
            status: StatusCode::OK,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: rows.len().to_string().into_bytes(),
        };
    }
    let total = rows.len();
    let end_limit = top.map_or(total, |t| skip.saturating_add(t).min(total));
    let max_page = ctx
        .prefer
        .and_then(|p| {
            p.split([',', ';'])
                .find_map(|x| x.trim().strip_prefix("odata.maxpagesize="))
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .map_or(ctx.page_size, |m| m.min(ctx.page_size))
        .max(1);
    let start = skip.saturating_add(offset).min(end_limit);
    let end = start.saturating_add(max_page).min(end_limit);
    let index = child_index(store, set, &rows[start..end], &expand);
    let value: Vec<Value> = rows[start..end]
        .iter()
        .map(|r| {
            let mut e = view(ctx, set, r, select.as_deref());
            e.extend(expansions(ctx, set, r, &expand, &index));
            Value::Object(e)
        })
        .collect();
    let context = match &select {
        Some(cols) => format!(
            "{}/data/$metadata#{}({})",
            ctx.base_url,
            set.name,
            cols.join(",")
        ),
        None => format!("{}/data/$metadata#{}", ctx.base_url, set.name),
    };
    let mut doc = Map::new();
    doc.insert("@odata.context".into(), Value::String(context));
    if count {
        doc.insert("@odata.count".into(), Value::from(total));
    }
    doc.insert("value".into(), Value::Array(value));
    if end < end_limit {
        let token = URL_SAFE_NO_PAD.encode(format!("sim:{}", offset + (end - start)));
        let mut q: Vec<String> = params
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        q.push(format!("$skiptoken={token}"));
        let path = match parent {
            Some(p) => {
                let parent_set = if set.table == "SalesOrderLine" {
                    schema().set("SalesOrderHeadersV2")
                } else {
                    schema().set("CustomerPaymentJournalHeaders")
                };
                match parent_set {
                    Some(ps) => format!(
                        "{}/{}",
                        entity_url(ctx.base_url, ps, p).trim_start_matches(ctx.base_url),
                        ps.navigations().first().map(|n| n.0).unwrap_or_default()
                    ),
                    None => format!("/data/{}", set.name),
                }
            }
            None => format!("/data/{}", set.name),
        };
        doc.insert(
            "@odata.nextLink".into(),
            Value::String(format!("{}{path}?{}", ctx.base_url, q.join("&"))),
        );
    }
    let mut r = OpResponse::json(StatusCode::OK, &Value::Object(doc));
    if ctx.prefer.is_some_and(|p| p.contains("odata.maxpagesize")) {
        r.headers.push((
            "Preference-Applied".into(),
            format!("odata.maxpagesize={max_page}"),
        ));
    }
    r
}

/// Percent-encodes a query component (keeps `$`, which OData option names use).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'\''
            | b','
            | b'('
            | b')'
            | b'*' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_and_query() {
        assert_eq!(percent_decode("a%20b%27"), "a b'");
        let q = parse_query("$filter=Name%20eq%20'x'&$top=5");
        assert_eq!(q[0], ("$filter".into(), "Name eq 'x'".into()));
        assert_eq!(encode("a b'"), "a%20b'");
    }

    #[test]
    fn resource_paths() {
        let r = parse_resource("SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='000123')")
            .expect("parse");
        assert_eq!(r.set.name, "SalesOrderHeadersV2");
        assert_eq!(r.keys.as_ref().map(Vec::len), Some(2));
        let r = parse_resource(
            "SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='0)1')/SalesOrderLines",
        )
        .expect("parse");
        assert_eq!(r.nav.as_deref(), Some("SalesOrderLines"));
        let r = parse_resource("CustomersV3/$count").expect("parse");
        assert!(r.count);
        assert!(parse_resource("Nope").is_err());
    }
}
