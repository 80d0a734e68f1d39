//! The Admin GraphQL subset on async-graphql: schema, context and queries.

pub mod bulk;
pub mod mutations;
pub mod scalars;
pub mod types;

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    Context, CustomDirective, Directive, EmptySubscription, Enum, ErrorExtensions, ID, Object,
    ResolveFut, Result, Schema, ServerResult, Value,
};
use base64::Engine;

use crate::model;
use crate::{Inner, Shop};
use types::*;

/// The schema type served at `graphql.json`.
pub type AdminSchema = Schema<QueryRoot, mutations::Mutation, EmptySubscription>;

/// Per-request context: which shop, which API version, bulk mode.
pub struct Gql {
    /// The emulator.
    pub emu: Arc<Inner>,
    /// The shop addressed.
    pub shop: Arc<Shop>,
    /// API version from the URL.
    pub version: String,
    /// Inside a bulk operation: connections need no `first`/`last`.
    pub bulk: bool,
    /// The calling app.
    pub app: String,
}

impl Gql {
    /// A variant by id.
    pub fn variant(&self, id: u64) -> Option<model::Variant> {
        let data = self.shop.lock();
        let pid = data.variant_product.get(&id)?;
        data.products
            .get(pid)?
            .variants
            .iter()
            .find(|v| v.id == id)
            .cloned()
    }

    /// The level of an item at a location.
    pub fn level(&self, item: u64, location: u64) -> Option<InventoryLevel> {
        let data = self.shop.lock();
        data.levels
            .get(&(item, location))
            .map(|l| InventoryLevel::new(item, location, l))
    }

    /// Where a bulk operation's JSONL can be downloaded.
    pub fn bulk_url(&self, id: u64) -> String {
        format!(
            "{}/_sim/bulk/{}/{}.jsonl",
            self.emu.base_url, self.shop.name, id
        )
    }

    /// Whether the request's API version is at least `v` (`YYYY-MM`).
    pub fn version_at_least(&self, v: &str) -> bool {
        self.version.as_str() >= v || self.version == "unstable"
    }
}

/// `gid://shopify/{kind}/{id}`.
pub fn gid(kind: &str, id: u64) -> ID {
    ID(format!("gid://shopify/{kind}/{id}"))
}

/// The numeric id of a `gid://shopify/{kind}/…`, ignoring any query string.
pub fn parse_gid(s: &str, kind: &str) -> Option<u64> {
    let rest = s.strip_prefix("gid://shopify/")?.strip_prefix(kind)?;
    let rest = rest.strip_prefix('/')?;
    rest.split('?').next()?.parse().ok()
}

/// Rejects ids that are not global ids at all, as Shopify does; a well-formed
/// id of another type or of a missing object simply finds nothing.
pub fn check_gid(id: &str) -> Result<()> {
    let ok = id
        .strip_prefix("gid://shopify/")
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(kind, rest)| !kind.is_empty() && !rest.is_empty());
    if ok {
        Ok(())
    } else {
        Err(
            async_graphql::Error::new(format!("Invalid global id '{id}'")).extend_with(|_, e| {
                e.set("code", "argumentLiteralsIncompatible");
                e.set("typeName", "CoercionError");
            }),
        )
    }
}

/// Connection arguments.
pub struct Page {
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
    reverse: bool,
}

impl Page {
    /// Collects the standard connection arguments.
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Self {
        Page {
            first,
            after,
            last,
            before,
            reverse: reverse.unwrap_or(false),
        }
    }
}

fn encode_cursor(id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"last_id\":{id}}}"))
}

fn decode_cursor(c: &str) -> Result<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(c)
        .map_err(|_| async_graphql::Error::new("Invalid cursor for current pagination sort."))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| async_graphql::Error::new("Invalid cursor for current pagination sort."))?;
    v.get("last_id")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| async_graphql::Error::new("Invalid cursor for current pagination sort."))
}

/// Most items one page may hold.
pub const MAX_PAGE: i32 = 250;

/// Cuts a page out of `items` (sorted by key) the way Shopify does.
pub fn paginate<T: async_graphql::OutputType>(
    g: &Gql,
    mut items: Vec<(u64, T)>,
    page: Page,
) -> Result<Connection<String, T>> {
    if page.first.is_none() && page.last.is_none() && !g.bulk {
        return Err(async_graphql::Error::new(
            "you must provide one of first or last",
        ));
    }
    for n in [page.first, page.last].into_iter().flatten() {
        if !(0..=MAX_PAGE).contains(&n) && !g.bulk {
            return Err(async_graphql::Error::new(format!(
                "Invalid value {n} for first/last: must be between 0 and {MAX_PAGE}."
            )));
        }
    }
    if page.reverse {
        items.reverse();
    }
    let mut start = 0;
    let mut end = items.len();
    if let Some(after) = &page.after {
        let id = decode_cursor(after)?;
        start = items.iter().position(|(k, _)| *k == id).map_or_else(
            || {
                items
                    .iter()
                    .position(|(k, _)| if page.reverse { *k < id } else { *k > id })
                    .unwrap_or(items.len())
            },
            |p| p + 1,
        );
    }
    if let Some(before) = &page.before {
        let id = decode_cursor(before)?;
        end = items
            .iter()
            .position(|(k, _)| *k == id)
            .unwrap_or_else(|| {
                items
                    .iter()
                    .position(|(k, _)| if page.reverse { *k <= id } else { *k >= id })
                    .unwrap_or(items.len())
            })
            .max(start);
    }
    let (mut lo, mut hi) = (start, end.max(start));
    if let Some(f) = page.first {
        hi = hi.min(lo + f.max(0) as usize);
    } else if let Some(l) = page.last {
        lo = lo.max(hi.saturating_sub(l.max(0) as usize));
    }
    let has_prev = lo > 0;
    let has_next = hi < items.len();
    let mut conn = Connection::new(has_prev, has_next);
    for (k, node) in items.drain(lo..hi) {
        conn.edges.push(Edge::new(encode_cursor(k), node));
    }
    Ok(conn)
}

/// Applies Shopify's search syntax (`updated_at:>'2024-01-01' status:open`)
/// to one resource; `field` answers a field's value. Unknown fields match.
pub fn matches_query(q: Option<&str>, field: &dyn Fn(&str) -> Option<String>) -> bool {
    let Some(q) = q else { return true };
    for token in tokenize(q) {
        if token.eq_ignore_ascii_case("AND") {
            continue;
        }
        let Some((name, raw)) = token.split_once(':') else {
            let text = token.to_lowercase();
            let hay = field("_text").unwrap_or_default().to_lowercase();
            if !hay.contains(text.trim_matches(|c| c == '"' || c == '\'')) {
                return false;
            }
            continue;
        };
        let (op, val) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|op| raw.strip_prefix(op).map(|v| (*op, v)))
            .unwrap_or(("=", raw));
        let val = val.trim_matches(|c| c == '"' || c == '\'');
        let Some(actual) = field(name) else { continue };
        let ord = compare(&actual, val);
        let ok = match op {
            "<=" => ord.is_le(),
            ">=" => ord.is_ge(),
            "<" => ord.is_lt(),
            ">" => ord.is_gt(),
            _ => {
                if let Some(prefix) = val.strip_suffix('*') {
                    actual.to_lowercase().starts_with(&prefix.to_lowercase())
                } else {
                    actual.eq_ignore_ascii_case(val)
                }
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

fn tokenize(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in q.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(qc), c) if c == qc => {
                quote = None;
                cur.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn compare(actual: &str, val: &str) -> std::cmp::Ordering {
    if let (Ok(a), Ok(b)) = (actual.parse::<u64>(), val.parse::<u64>()) {
        return a.cmp(&b);
    }
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok()
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| d.and_utc())
            })
    };
    match (parse(actual), parse(val)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => actual.to_lowercase().cmp(&val.to_lowercase()),
    }
}

/// `OrderSortKeys` (subset).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum OrderSortKeys {
    CreatedAt,
    Id,
    OrderNumber,
    ProcessedAt,
    Relevance,
    UpdatedAt,
}

/// `CustomerSortKeys` (subset).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum CustomerSortKeys {
    CreatedAt,
    Id,
    Relevance,
    UpdatedAt,
}

/// `ProductSortKeys` (subset).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum ProductSortKeys {
    CreatedAt,
    Id,
    Relevance,
    Title,
    UpdatedAt,
}

/// `LocationSortKeys`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum LocationSortKeys {
    Id,
    Name,
    Relevance,
}

/// `FulfillmentOrderSortKeys`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum FulfillmentOrderSortKeys {
    Id,
    Relevance,
    UpdatedAt,
}

/// `WebhookSubscriptionSortKeys`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum WebhookSubscriptionSortKeys {
    CreatedAt,
    Id,
    Relevance,
}

fn updated_key(ts: Option<&str>, id: u64) -> (String, u64) {
    (
        ts.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y%m%d%H%M%S%f")
                    .to_string()
            })
            .unwrap_or_default(),
        id,
    )
}

/// Re-keys items sorted by update time so cursors stay monotonic.
fn by_updated<T>(mut v: Vec<((String, u64), T)>) -> Vec<(u64, T)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter()
        .enumerate()
        .map(|(i, (_, t))| (i as u64, t))
        .collect()
}

/// `QueryRoot`.
pub struct QueryRoot;

#[Object(name = "QueryRoot")]
impl QueryRoot {
    async fn shop(&self) -> ShopObj {
        ShopObj
    }

    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        let g = ctx.data::<Gql>()?;
        check_gid(&id)?;
        let Some(id) = parse_gid(&id, "Order") else {
            return Ok(None);
        };
        Ok(g.shop.lock().orders.get(&id).cloned().map(Order))
    }

    #[allow(clippy::too_many_arguments)]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        sort_key: Option<OrderSortKeys>,
        query: Option<String>,
        saved_search_id: Option<ID>,
    ) -> Result<Connection<String, Order>> {
        let _ = saved_search_id;
        let g = ctx.data::<Gql>()?;
        let list: Vec<model::Order> = g
            .shop
            .lock()
            .orders
            .values()
            .filter(|o| {
                matches_query(query.as_deref(), &|f| match f {
                    "updated_at" => Some(o.updated_at.clone()),
                    "created_at" => Some(o.created_at.clone()),
                    "processed_at" => Some(o.processed_at.clone()),
                    "id" => Some(o.id.to_string()),
                    "name" => Some(o.name.clone()),
                    "email" => o.email.clone(),
                    "financial_status" => o.financial_status.clone(),
                    "fulfillment_status" => {
                        Some(o.fulfillment_status.clone().unwrap_or("unfulfilled".into()))
                    }
                    "test" => Some(o.test.to_string()),
                    "tag" => Some(o.tags.clone()),
                    "_text" => Some(format!(
                        "{} {}",
                        o.name,
                        o.email.clone().unwrap_or_default()
                    )),
                    _ => None,
                })
            })
            .cloned()
            .collect();
        let items = if sort_key == Some(OrderSortKeys::UpdatedAt) {
            by_updated(
                list.into_iter()
                    .map(|o| (updated_key(Some(&o.updated_at), o.id), Order(o)))
                    .collect(),
            )
        } else {
            list.into_iter().map(|o| (o.id, Order(o))).collect()
        };
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }

    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Customer>> {
        let g = ctx.data::<Gql>()?;
        check_gid(&id)?;
        let Some(id) = parse_gid(&id, "Customer") else {
            return Ok(None);
        };
        Ok(g.shop.lock().customers.get(&id).cloned().map(Customer))
    }

    #[allow(clippy::too_many_arguments)]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        sort_key: Option<CustomerSortKeys>,
        query: Option<String>,
    ) -> Result<Connection<String, Customer>> {
        let _ = sort_key;
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .customers
            .values()
            .filter(|c| {
                matches_query(query.as_deref(), &|f| match f {
                    "updated_at" => c.updated_at.clone(),
                    "created_at" => c.created_at.clone(),
                    "id" => Some(c.id.to_string()),
                    "email" => c.email.clone(),
                    "_text" => Some(format!(
                        "{} {} {}",
                        c.first_name.clone().unwrap_or_default(),
                        c.last_name.clone().unwrap_or_default(),
                        c.email.clone().unwrap_or_default()
                    )),
                    _ => None,
                })
            })
            .map(|c| (c.id, Customer(c.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }

    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Product>> {
        let g = ctx.data::<Gql>()?;
        check_gid(&id)?;
        let Some(id) = parse_gid(&id, "Product") else {
            return Ok(None);
        };
        Ok(g.shop.lock().products.get(&id).cloned().map(Product))
    }

    #[allow(clippy::too_many_arguments)]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        sort_key: Option<ProductSortKeys>,
        query: Option<String>,
        saved_search_id: Option<ID>,
    ) -> Result<Connection<String, Product>> {
        let _ = (sort_key, saved_search_id);
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .products
            .values()
            .filter(|p| {
                matches_query(query.as_deref(), &|f| match f {
                    "updated_at" => p.updated_at.clone(),
                    "created_at" => p.created_at.clone(),
                    "id" => Some(p.id.to_string()),
                    "handle" => Some(p.handle.clone()),
                    "title" => Some(p.title.clone()),
                    "vendor" => Some(p.vendor.clone()),
                    "status" => Some(p.status.clone()),
                    "sku" => p.variants.iter().find_map(|v| v.sku.clone()),
                    "_text" => Some(p.title.clone()),
                    _ => None,
                })
            })
            .map(|p| (p.id, Product(p.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }

    async fn product_variant(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ProductVariant>> {
        let g = ctx.data::<Gql>()?;
        check_gid(&id)?;
        Ok(parse_gid(&id, "ProductVariant")
            .and_then(|id| g.variant(id))
            .map(ProductVariant))
    }

    #[allow(clippy::too_many_arguments)]
    async fn product_variants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        sort_key: Option<ProductVariantSortKeys>,
        query: Option<String>,
        saved_search_id: Option<ID>,
    ) -> Result<Connection<String, ProductVariant>> {
        let _ = (sort_key, saved_search_id);
        let g = ctx.data::<Gql>()?;
        let mut items: Vec<(u64, ProductVariant)> = g
            .shop
            .lock()
            .products
            .values()
            .flat_map(|p| p.variants.iter())
            .filter(|v| {
                matches_query(query.as_deref(), &|f| match f {
                    "sku" => v.sku.clone(),
                    "id" => Some(v.id.to_string()),
                    "product_id" => Some(v.product_id.to_string()),
                    "barcode" => v.barcode.clone(),
                    "updated_at" => v.updated_at.clone(),
                    "_text" => Some(format!("{} {}", v.title, v.sku.clone().unwrap_or_default())),
                    _ => None,
                })
            })
            .map(|v| (v.id, ProductVariant(v.clone())))
            .collect();
        items.sort_by_key(|(k, _)| *k);
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }

    async fn location(&self, ctx: &Context<'_>, id: Option<ID>) -> Result<Option<Location>> {
        let g = ctx.data::<Gql>()?;
        let data = g.shop.lock();
        Ok(match id {
            Some(id) => {
                check_gid(&id)?;
                parse_gid(&id, "Location").and_then(|id| data.locations.get(&id).cloned())
            }
            // Without an id Shopify answers the shop's primary location.
            None => data.locations.values().next().cloned(),
        }
        .map(Location))
    }

    #[allow(clippy::too_many_arguments)]
    async fn locations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        sort_key: Option<LocationSortKeys>,
        query: Option<String>,
        include_legacy: Option<bool>,
        include_inactive: Option<bool>,
    ) -> Result<Connection<String, Location>> {
        let _ = (sort_key, include_legacy);
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .locations
            .values()
            .filter(|l| include_inactive.unwrap_or(false) || l.active)
            .filter(|l| {
                matches_query(query.as_deref(), &|f| match f {
                    "name" | "_text" => Some(l.name.clone()),
                    "id" => Some(l.id.to_string()),
                    _ => None,
                })
            })
            .map(|l| (l.id, Location(l.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }

    async fn inventory_item(&self, ctx: &Context<'_>, id: ID) -> Result<Option<InventoryItem>> {
        let g = ctx.data::<Gql>()?;
        check_gid(&id)?;
        let Some(id) = parse_gid(&id, "InventoryItem") else {
            return Ok(None);
        };
        Ok(g.shop
            .lock()
            .inventory_items
            .get(&id)
            .cloned()
            .map(InventoryItem))
    }

    #[allow(clippy::too_many_arguments)]
    async fn inventory_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        query: Option<String>,
    ) -> Result<Connection<String, InventoryItem>> {
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .inventory_items
            .values()
            .filter(|i| {
                matches_query(query.as_deref(), &|f| match f {
                    "sku" | "_text" => i.sku.clone(),
                    "id" => Some(i.id.to_string()),
                    "updated_at" => Some(i.updated_at.clone()),
                    "created_at" => Some(i.created_at.clone()),
                    _ => None,
                })
            })
            .map(|i| (i.id, InventoryItem(i.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }

    async fn inventory_level(&self, ctx: &Context<'_>, id: ID) -> Result<Option<InventoryLevel>> {
        let g = ctx.data::<Gql>()?;
        check_gid(&id)?;
        let Some(loc) = parse_gid(&id, "InventoryLevel") else {
            return Ok(None);
        };
        let item = id
            .split_once("inventory_item_id=")
            .and_then(|(_, i)| i.split('&').next())
            .and_then(|i| i.parse::<u64>().ok());
        Ok(item.and_then(|item| g.level(item, loc)))
    }

    async fn fulfillment_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<FulfillmentOrder>> {
        let g = ctx.data::<Gql>()?;
        check_gid(&id)?;
        let Some(id) = parse_gid(&id, "FulfillmentOrder") else {
            return Ok(None);
        };
        Ok(g.shop
            .lock()
            .fulfillment_orders
            .get(&id)
            .cloned()
            .map(FulfillmentOrder))
    }

    #[allow(clippy::too_many_arguments)]
    async fn fulfillment_orders(
        &self,
        ctx: &Context<'_>,
        include_closed: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        sort_key: Option<FulfillmentOrderSortKeys>,
        query: Option<String>,
    ) -> Result<Connection<String, FulfillmentOrder>> {
        let _ = sort_key;
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .fulfillment_orders
            .values()
            .filter(|f| include_closed.unwrap_or(false) || f.status != "CLOSED")
            .filter(|f| {
                matches_query(query.as_deref(), &|k| match k {
                    "status" => Some(f.status.clone()),
                    "order_id" => Some(f.order_id.to_string()),
                    "updated_at" => Some(f.updated_at.clone()),
                    "assigned_location_id" => Some(f.location_id.to_string()),
                    _ => None,
                })
            })
            .map(|f| (f.id, FulfillmentOrder(f.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }

    async fn webhook_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<WebhookSubscription>> {
        let g = ctx.data::<Gql>()?;
        check_gid(&id)?;
        let Some(id) = parse_gid(&id, "WebhookSubscription") else {
            return Ok(None);
        };
        Ok(g.shop
            .lock()
            .subscriptions
            .get(&id)
            .filter(|s| s.app == g.app)
            .cloned()
            .map(WebhookSubscription))
    }

    #[allow(clippy::too_many_arguments)]
    async fn webhook_subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        sort_key: Option<WebhookSubscriptionSortKeys>,
        query: Option<String>,
        callback_url: Option<scalars::Url>,
        format: Option<WebhookSubscriptionFormat>,
        topics: Option<Vec<WebhookSubscriptionTopic>>,
    ) -> Result<Connection<String, WebhookSubscription>> {
        let _ = (sort_key, query, format);
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .subscriptions
            .values()
            // Each app sees its own subscriptions only.
            .filter(|s| s.app == g.app)
            // Privacy topics are configured outside the Admin API and have
            // no enum value: subscriptions to them are not listed.
            .filter(|s| WebhookSubscriptionTopic::from_name(&s.topic).is_some())
            .filter(|s| callback_url.as_ref().is_none_or(|u| u.0 == s.callback_url))
            .filter(|s| {
                topics
                    .as_ref()
                    .is_none_or(|t| t.iter().any(|t| t.name() == s.topic))
            })
            .map(|s| (s.id, WebhookSubscription(s.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }

    async fn current_bulk_operation(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "type")] kind: Option<BulkOperationType>,
    ) -> Result<Option<BulkOperation>> {
        if kind == Some(BulkOperationType::Mutation) {
            return Ok(None);
        }
        let g = ctx.data::<Gql>()?;
        Ok(g.shop
            .lock()
            .bulk_ops
            .values()
            .next_back()
            .cloned()
            .map(BulkOperation))
    }
}

/// The `@idempotent(key:)` directive (API 2026-04): a replay with the same
/// key answers the first result without running the mutation again.
struct Idempotent {
    key: String,
}

#[async_graphql::async_trait::async_trait]
impl CustomDirective for Idempotent {
    async fn resolve_field(
        &self,
        ctx: &Context<'_>,
        resolve: ResolveFut<'_>,
    ) -> ServerResult<Option<Value>> {
        let g = match ctx.data::<Gql>() {
            Ok(g) => g,
            Err(_) => return resolve.await,
        };
        let scoped = format!("{}:{}", ctx.field().name(), self.key);
        let cached = g.shop.lock().idempotency.get(&scoped).cloned();
        if let Some(v) = cached {
            return Ok(Value::from_json(v).ok());
        }
        let out = resolve.await?;
        if let Some(v) = &out
            && let Ok(json) = v.clone().into_json()
        {
            g.shop.lock().idempotency.insert(scoped, json);
        }
        Ok(out)
    }
}

#[Directive(location = "Field", name = "idempotent")]
fn idempotent(key: String) -> impl CustomDirective {
    Idempotent { key }
}

/// Whether the field being resolved carries `@idempotent`.
pub fn has_idempotent(ctx: &Context<'_>) -> bool {
    ctx.field()
        .directives()
        .map(|d| d.iter().any(|d| d.name.node == "idempotent"))
        .unwrap_or(false)
}

/// A GraphQL error with an `extensions.code`.
pub fn coded(message: impl Into<String>, code: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

/// Builds the schema.
pub fn build_schema() -> AdminSchema {
    Schema::build(QueryRoot, mutations::Mutation, EmptySubscription)
        .directive(idempotent)
        .finish()
}
