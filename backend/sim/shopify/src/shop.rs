//! Per-shop state: resources, throttle buckets, faults and logs.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::model;

/// Cost-bucket settings of a shop's plan (GraphQL).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Points restored per second.
    pub restore_rate: f64,
    /// Bucket size in points.
    pub maximum: f64,
}

impl Plan {
    /// Standard plans: 100 points/s, 2,000 bucket.
    pub const STANDARD: Plan = Plan {
        restore_rate: 100.0,
        maximum: 2000.0,
    };
    /// Advanced: 200 points/s.
    pub const ADVANCED: Plan = Plan {
        restore_rate: 200.0,
        maximum: 4000.0,
    };
    /// Shopify Plus: 1,000 points/s.
    pub const PLUS: Plan = Plan {
        restore_rate: 1000.0,
        maximum: 20000.0,
    };
    /// Commerce Components / Enterprise: 2,000 points/s.
    pub const ENTERPRISE: Plan = Plan {
        restore_rate: 2000.0,
        maximum: 40000.0,
    };
}

impl Default for Plan {
    fn default() -> Self {
        Plan::STANDARD
    }
}

/// REST leaky-bucket settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RestLimit {
    /// Bucket size in requests (40; Plus 400).
    pub size: u32,
    /// Requests leaking out per second (2; Plus 20).
    pub leak_per_sec: f64,
}

impl Default for RestLimit {
    fn default() -> Self {
        RestLimit {
            size: 40,
            leak_per_sec: 2.0,
        }
    }
}

/// Faults injected into one shop. Counters (`*_next`) are consumed by the
/// next matching requests, which keeps tests deterministic; rates draw from
/// the shop's seeded generator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Extra latency added to every Admin API request, in milliseconds.
    pub latency_ms: u64,
    /// Answer the next N Admin API requests with `error_status`.
    pub error_next: u32,
    /// Fraction (0..1) of Admin API requests answered with `error_status`.
    pub error_rate: f64,
    /// Status used for injected errors (default 503).
    pub error_status: Option<u16>,
    /// Drop the connection mid-response for the next N requests.
    pub reset_next: u32,
    /// Answer the next N requests as throttled (GraphQL `THROTTLED`, REST 429).
    pub throttle_next: u32,
    /// The access token is revoked: every Admin API request gets 401.
    pub revoked_token: bool,
    /// Webhook deliveries fail as if the receiver were unreachable.
    pub webhook_receiver_down: bool,
    /// Fraction (0..1) of webhook deliveries sent twice (same webhook id).
    pub duplicate_webhook_rate: f64,
    /// `webhookSubscriptionCreate` refuses these topics (`ORDERS_CREATE`) with the user error
    /// Shopify gives an app not approved for protected customer data.
    pub refuse_webhook_topics: Vec<String>,
}

/// One Admin API request, as recorded for inspection.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Arrival time (RFC 3339).
    pub at: String,
    /// HTTP method.
    pub method: String,
    /// Path as received.
    pub path: String,
    /// `graphql`, `rest` or `bulk`.
    pub api: String,
    /// Answer status.
    pub status: u16,
    /// Time to answer, milliseconds.
    pub duration_ms: f64,
    /// GraphQL requested cost.
    pub requested_cost: Option<u64>,
    /// GraphQL actual cost.
    pub actual_cost: Option<u64>,
    /// Whether the request was throttled.
    pub throttled: bool,
    /// Injected fault, if any.
    pub fault: Option<String>,
}

/// One attempt to deliver a webhook.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// Attempt start (RFC 3339).
    pub at: String,
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Transport error, when there was none.
    pub error: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: f64,
}

/// A webhook delivery and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// Sequence number within the shop.
    pub seq: u64,
    /// `X-Shopify-Webhook-Id`, identical on every retry.
    pub webhook_id: String,
    /// `X-Shopify-Event-Id`.
    pub event_id: String,
    /// Topic (`orders/create`).
    pub topic: String,
    /// Subscription id.
    pub subscription_id: u64,
    /// Target URL.
    pub callback_url: String,
    /// Whether this is an injected duplicate.
    pub duplicate: bool,
    /// `pending`, `delivered` or `failed`.
    pub outcome: String,
    /// Attempts so far.
    pub attempts: Vec<AttemptRecord>,
}

/// A registered webhook subscription.
#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    /// Numeric id.
    pub id: u64,
    /// GraphQL topic (`ORDERS_CREATE`).
    pub topic: String,
    /// Callback URL.
    pub callback_url: String,
    /// `JSON` or `XML`.
    pub format: String,
    /// Fields to keep in payloads (empty: all).
    pub include_fields: Vec<String>,
    /// Metafield namespaces.
    pub metafield_namespaces: Vec<String>,
    /// Filter expression.
    pub filter: Option<String>,
    /// API version of the payloads.
    pub api_version: String,
    /// Creation time.
    pub created_at: String,
    /// Update time.
    pub updated_at: String,
    /// Failed attempts in a row.
    pub consecutive_failures: u32,
    /// App that created it (its secret signs the deliveries).
    pub app: String,
}

/// An app installed on a shop: its own token, secret and buckets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    /// Name (`default` for the shop's first app).
    pub name: String,
    /// Admin API access token.
    pub access_token: String,
    /// API secret (webhook signing key).
    pub api_secret: String,
}

/// An inventory item.
#[derive(Debug, Clone)]
pub struct InventoryItem {
    /// Id.
    pub id: u64,
    /// Variant.
    pub variant_id: u64,
    /// SKU.
    pub sku: Option<String>,
    /// Whether quantities are tracked.
    pub tracked: bool,
    /// Creation time.
    pub created_at: String,
    /// Update time.
    pub updated_at: String,
}

/// A location.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Street.
    pub address1: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub zip: String,
    /// Province code.
    pub province_code: Option<String>,
    /// Country code.
    pub country_code: String,
    /// Active flag.
    pub active: bool,
}

/// Quantities of one item at one location, by quantity name.
#[derive(Debug, Clone)]
pub struct Level {
    /// `available`, `on_hand`, `committed`, … → quantity.
    pub quantities: BTreeMap<String, i64>,
    /// Creation time.
    pub created_at: String,
    /// Update time.
    pub updated_at: String,
}

impl Level {
    /// A level with `available` and `on_hand` at `qty`.
    pub fn new(qty: i64, now: &str) -> Self {
        let mut quantities = BTreeMap::new();
        for name in QUANTITY_NAMES {
            quantities.insert((*name).to_owned(), 0);
        }
        quantities.insert("available".into(), qty);
        quantities.insert("on_hand".into(), qty);
        Level {
            quantities,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// The quantity with that name (0 if unknown).
    pub fn get(&self, name: &str) -> i64 {
        self.quantities.get(name).copied().unwrap_or(0)
    }
}

/// Quantity names Shopify knows.
pub const QUANTITY_NAMES: &[&str] = &[
    "available",
    "committed",
    "damaged",
    "incoming",
    "on_hand",
    "quality_control",
    "reserved",
    "safety_stock",
];

/// A line of a fulfillment order.
#[derive(Debug, Clone)]
pub struct FoLine {
    /// Id.
    pub id: u64,
    /// Order line item.
    pub line_item_id: u64,
    /// Total quantity.
    pub total: i64,
    /// Quantity still to fulfil.
    pub remaining: i64,
}

/// A fulfillment order.
#[derive(Debug, Clone)]
pub struct FulfillmentOrder {
    /// Id.
    pub id: u64,
    /// Order.
    pub order_id: u64,
    /// Assigned location.
    pub location_id: u64,
    /// `OPEN`, `IN_PROGRESS`, `CLOSED`, …
    pub status: String,
    /// Lines.
    pub lines: Vec<FoLine>,
    /// Creation time.
    pub created_at: String,
    /// Update time.
    pub updated_at: String,
}

/// A metafield.
#[derive(Debug, Clone)]
pub struct Metafield {
    /// Id.
    pub id: u64,
    /// Owner GraphQL id.
    pub owner_id: String,
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
    /// Type name.
    pub kind: String,
    /// Value.
    pub value: String,
    /// Creation time.
    pub created_at: String,
    /// Update time.
    pub updated_at: String,
}

/// A bulk operation.
#[derive(Debug, Clone)]
pub struct BulkOp {
    /// Id.
    pub id: u64,
    /// `COMPLETED`, `FAILED`, …
    pub status: String,
    /// The query.
    pub query: String,
    /// Error code.
    pub error_code: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Completion time.
    pub completed_at: Option<String>,
    /// Lines in the result.
    pub object_count: u64,
    /// Top-level objects in the result.
    pub root_object_count: u64,
    /// The JSONL result.
    pub jsonl: String,
}

/// A shop's GraphQL cost bucket.
#[derive(Debug, Clone)]
pub struct CostBucket {
    /// Points available.
    pub available: f64,
    /// Last refill.
    pub last: Instant,
}

/// A shop's REST leaky bucket.
#[derive(Debug, Clone)]
pub struct LeakyBucket {
    /// Requests in the bucket.
    pub level: f64,
    /// Last leak.
    pub last: Instant,
}

/// Everything a shop holds. Guarded by one mutex, never held across an await.
#[derive(Debug)]
pub struct ShopData {
    /// Orders by id (ids grow with time, so id order is creation order).
    pub orders: BTreeMap<u64, model::Order>,
    /// Customers by id.
    pub customers: BTreeMap<u64, model::Customer>,
    /// Products by id.
    pub products: BTreeMap<u64, model::Product>,
    /// Variant id → product id.
    pub variant_product: HashMap<u64, u64>,
    /// Inventory items by id.
    pub inventory_items: BTreeMap<u64, InventoryItem>,
    /// Locations by id.
    pub locations: BTreeMap<u64, Location>,
    /// (item, location) → quantities.
    pub levels: BTreeMap<(u64, u64), Level>,
    /// Fulfillment orders by id.
    pub fulfillment_orders: BTreeMap<u64, FulfillmentOrder>,
    /// Transactions by order id.
    pub transactions: BTreeMap<u64, Vec<model::Transaction>>,
    /// Metafields.
    pub metafields: Vec<Metafield>,
    /// Webhook subscriptions by id.
    pub subscriptions: BTreeMap<u64, Subscription>,
    /// Bulk operations by id.
    pub bulk_ops: BTreeMap<u64, BulkOp>,
    /// `@idempotent` key → first result.
    pub idempotency: HashMap<String, serde_json::Value>,
    /// GraphQL buckets by app name.
    pub cost_buckets: HashMap<String, CostBucket>,
    /// REST buckets by app name.
    pub rest_buckets: HashMap<String, LeakyBucket>,
    /// Injected faults.
    pub faults: Faults,
    /// Requests received.
    pub requests: Vec<RequestRecord>,
    /// Webhook deliveries (the most recent [`MAX_RECORDS`]).
    pub deliveries: Vec<DeliveryRecord>,
    /// Last delivery sequence number.
    pub delivery_seq: u64,
    /// Seeded generator for ids and traffic.
    pub rng: StdRng,
    /// Separate generator for fault draws, so that injecting faults does not
    /// change the generated traffic.
    pub fault_rng: StdRng,
    /// Last id handed out.
    pub last_id: u64,
    /// Next order number.
    pub next_order_number: u64,
    /// GraphQL cost bucket settings.
    pub plan: Plan,
    /// REST bucket settings.
    pub rest_limit: RestLimit,
}

/// At most this many request records are kept per shop.
pub const MAX_RECORDS: usize = 20_000;

impl ShopData {
    /// Empty shop data seeded with `seed`.
    pub fn new(seed: u64, plan: Plan, rest_limit: RestLimit) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        // Real ids are far above 2^53; start there so clients that parse
        // them as floats fail in tests rather than in production.
        let last_id = (1u64 << 53) + rng.random_range(0..(1u64 << 40));
        ShopData {
            orders: BTreeMap::new(),
            customers: BTreeMap::new(),
            products: BTreeMap::new(),
            variant_product: HashMap::new(),
            inventory_items: BTreeMap::new(),
            locations: BTreeMap::new(),
            levels: BTreeMap::new(),
            fulfillment_orders: BTreeMap::new(),
            transactions: BTreeMap::new(),
            metafields: Vec::new(),
            subscriptions: BTreeMap::new(),
            bulk_ops: BTreeMap::new(),
            idempotency: HashMap::new(),
            cost_buckets: HashMap::new(),
            rest_buckets: HashMap::new(),
            faults: Faults::default(),
            requests: Vec::new(),
            deliveries: Vec::new(),
            delivery_seq: 0,
            rng,
            fault_rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17),
            last_id,
            next_order_number: 1001,
            plan,
            rest_limit,
        }
    }

    /// A fresh id, larger than every id handed out before.
    pub fn next_id(&mut self) -> u64 {
        let step = self.rng.random_range(1..1_000_000u64);
        self.last_id = self.last_id.saturating_add(step);
        self.last_id
    }

    /// Records a request, dropping the oldest past the cap.
    pub fn record(&mut self, rec: RequestRecord) {
        if self.requests.len() >= MAX_RECORDS {
            self.requests.drain(..MAX_RECORDS / 10);
        }
        self.requests.push(rec);
    }

    /// An app's cost bucket (full when first used).
    pub fn cost_bucket(&mut self, app: &str) -> &mut CostBucket {
        let max = self.plan.maximum;
        self.cost_buckets
            .entry(app.to_owned())
            .or_insert_with(|| CostBucket {
                available: max,
                last: Instant::now(),
            })
    }

    /// Refills an app's cost bucket and returns the points available now.
    pub fn refill_cost(&mut self, app: &str) -> f64 {
        let plan = self.plan;
        let b = self.cost_bucket(app);
        let now = Instant::now();
        let dt = now.duration_since(b.last).as_secs_f64();
        b.available = (b.available + dt * plan.restore_rate).min(plan.maximum);
        b.last = now;
        b.available
    }

    /// An app's REST bucket (empty when first used).
    pub fn rest_bucket(&mut self, app: &str) -> &mut LeakyBucket {
        self.rest_buckets
            .entry(app.to_owned())
            .or_insert_with(|| LeakyBucket {
                level: 0.0,
                last: Instant::now(),
            })
    }

    /// Leaks an app's REST bucket and returns its level.
    pub fn leak_rest(&mut self, app: &str) -> f64 {
        let limit = self.rest_limit;
        let b = self.rest_bucket(app);
        let now = Instant::now();
        let dt = now.duration_since(b.last).as_secs_f64();
        b.level = (b.level - dt * limit.leak_per_sec).max(0.0);
        b.last = now;
        b.level
    }
}
