//! Seed data and traffic: products, customers, orders and refunds shaped
//! exactly like Shopify's webhook payloads, deterministic from the shop seed.

use rand::Rng;
use rand::seq::IndexedRandom;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{self, MoneySet};
use crate::shop::{FoLine, FulfillmentOrder, InventoryItem, Level, Location, ShopData};

/// Presentment currencies the generator uses besides the shop's.
pub const PRESENTMENT_CURRENCIES: &[&str] = &["EUR", "GBP", "CAD", "JPY", "SEK", "CHF", "AUD"];

/// Units of presentment currency per unit of shop currency (USD).
fn rate(cur: &str) -> Decimal {
    match cur {
        "EUR" => Decimal::new(92, 2),
        "GBP" => Decimal::new(79, 2),
        "CAD" => Decimal::new(136, 2),
        "JPY" => Decimal::new(15120, 2),
        "SEK" => Decimal::new(1052, 2),
        "CHF" => Decimal::new(88, 2),
        "AUD" => Decimal::new(152, 2),
        _ => Decimal::ONE,
    }
}

fn minor_units(cur: &str) -> u32 {
    if cur == "JPY" { 0 } else { 2 }
}

/// Rounds to the currency's minor unit, keeping two decimals on the wire.
fn money(amount: Decimal, cur: &str) -> Decimal {
    let mut d = amount.round_dp_with_strategy(
        minor_units(cur),
        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
    );
    d.rescale(2);
    d
}

/// What to seed into a shop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedSpec {
    /// Locations (at least one is always there).
    pub locations: u32,
    /// Products, each with 1–3 variants stocked at every location.
    pub products: u32,
    /// Customers.
    pub customers: u32,
    /// Orders (fire no webhooks: they predate the subscriptions).
    pub orders: u32,
}

impl Default for SeedSpec {
    fn default() -> Self {
        SeedSpec {
            locations: 2,
            products: 25,
            customers: 10,
            orders: 5,
        }
    }
}

/// Traffic settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TrafficSpec {
    /// Orders per second.
    pub orders_per_sec: f64,
    /// Probability that an order also brings a refund of an earlier order.
    pub refund_probability: f64,
    /// Probability of a guest checkout (no customer).
    pub guest_probability: f64,
    /// Probability that the buyer is a new customer (`customers/create`).
    pub new_customer_probability: f64,
    /// Probability that an earlier order is edited (note, tags; `orders/updated`).
    pub update_probability: f64,
    /// Probability that an earlier unfulfilled order is cancelled
    /// (`orders/cancelled`).
    pub cancel_probability: f64,
    /// Stop after this many orders (0: run until stopped).
    pub max_orders: u64,
    /// Probability that a line is a custom item (gift wrapping) whose SKU no ERP knows.
    pub custom_line_probability: f64,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        TrafficSpec {
            orders_per_sec: 1.0,
            refund_probability: 0.1,
            guest_probability: 0.15,
            new_customer_probability: 0.4,
            update_probability: 0.1,
            cancel_probability: 0.02,
            max_orders: 0,
            custom_line_probability: 0.1,
        }
    }
}

/// A variant to create.
pub struct VariantSpec {
    /// Title.
    pub title: String,
    /// SKU.
    pub sku: Option<String>,
    /// Price in shop currency.
    pub price: Decimal,
    /// Compare-at price.
    pub compare_at_price: Option<Decimal>,
    /// Barcode.
    pub barcode: Option<String>,
    /// Taxable.
    pub taxable: bool,
    /// `deny` or `continue`.
    pub inventory_policy: String,
    /// First option value.
    pub option1: Option<String>,
    /// (location, available) to stock.
    pub quantities: Vec<(u64, i64)>,
}

/// A product to create.
pub struct ProductSpec {
    /// Title.
    pub title: String,
    /// Handle.
    pub handle: String,
    /// Description.
    pub body_html: Option<String>,
    /// Vendor.
    pub vendor: String,
    /// Type.
    pub product_type: String,
    /// Tags joined with ", ".
    pub tags: String,
    /// `active`, `draft`, `archived`.
    pub status: String,
    /// Variants.
    pub variants: Vec<VariantSpec>,
}

/// Changes to an existing product (`productSet` with an id).
pub struct ProductPatch {
    /// Title.
    pub title: Option<String>,
    /// Handle.
    pub handle: Option<String>,
    /// Description.
    pub body_html: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Type.
    pub product_type: Option<String>,
    /// Tags.
    pub tags: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// The full variant list: existing ids are updated, others created,
    /// variants left out are deleted.
    pub variants: Option<Vec<(Option<u64>, VariantSpec)>>,
}

fn new_variant(data: &mut ShopData, product_id: u64, pos: usize, v: VariantSpec) -> model::Variant {
    let id = data.next_id();
    let item = data.next_id();
    let ts = crate::now_rfc3339();
    data.inventory_items.insert(
        item,
        InventoryItem {
            id: item,
            variant_id: id,
            sku: v.sku.clone(),
            tracked: true,
            created_at: ts.clone(),
            updated_at: ts.clone(),
        },
    );
    let locs: Vec<u64> = data.locations.keys().copied().collect();
    let mut total = 0;
    for loc in locs {
        let q = v
            .quantities
            .iter()
            .find(|(l, _)| *l == loc)
            .map(|(_, q)| *q);
        if q.is_some() || v.quantities.is_empty() {
            let q = q.unwrap_or(0);
            total += q;
            data.levels.insert((item, loc), Level::new(q, &ts));
        }
    }
    data.variant_product.insert(id, product_id);
    model::Variant {
        admin_graphql_api_id: format!("gid://shopify/ProductVariant/{id}"),
        barcode: v.barcode,
        compare_at_price: v.compare_at_price.map(|p| money(p, "USD")),
        created_at: Some(ts.clone()),
        id,
        inventory_policy: v.inventory_policy,
        position: pos as i64 + 1,
        price: money(v.price, "USD"),
        product_id,
        sku: v.sku,
        taxable: v.taxable,
        title: v.title,
        updated_at: Some(ts),
        option1: v.option1,
        option2: None,
        option3: None,
        image_id: None,
        inventory_item_id: Some(item),
        inventory_quantity: total,
        old_inventory_quantity: total,
    }
}

/// Inserts a product with its variants, inventory items and levels.
pub fn insert_product(data: &mut ShopData, spec: ProductSpec) -> model::Product {
    let id = data.next_id();
    let ts = crate::now_rfc3339();
    let variants: Vec<model::Variant> = spec
        .variants
        .into_iter()
        .enumerate()
        .map(|(i, v)| new_variant(data, id, i, v))
        .collect();
    let p = model::Product {
        admin_graphql_api_id: format!("gid://shopify/Product/{id}"),
        body_html: spec.body_html,
        created_at: Some(ts.clone()),
        handle: spec.handle,
        id,
        product_type: spec.product_type,
        published_at: Some(ts.clone()),
        template_suffix: None,
        title: spec.title,
        updated_at: Some(ts.clone()),
        vendor: spec.vendor,
        status: spec.status,
        published_scope: "web".into(),
        tags: spec.tags,
        variant_gids: variants
            .iter()
            .map(|v| model::VariantGid {
                admin_graphql_api_id: v.admin_graphql_api_id.clone(),
                updated_at: ts.clone(),
            })
            .collect(),
        variants,
        options: Vec::new(),
        images: Vec::new(),
        image: None,
        media: Vec::new(),
        has_variants_that_requires_components: false,
        category: None,
    };
    data.products.insert(id, p.clone());
    p
}

/// Applies a patch; `None` when the product does not exist.
pub fn update_product(data: &mut ShopData, id: u64, patch: ProductPatch) -> Option<model::Product> {
    let mut p = data.products.get(&id)?.clone();
    let ts = crate::now_rfc3339();
    if let Some(v) = patch.title {
        p.title = v;
    }
    if let Some(v) = patch.handle {
        p.handle = v;
    }
    if patch.body_html.is_some() {
        p.body_html = patch.body_html;
    }
    if let Some(v) = patch.vendor {
        p.vendor = v;
    }
    if let Some(v) = patch.product_type {
        p.product_type = v;
    }
    if let Some(v) = patch.tags {
        p.tags = v;
    }
    if let Some(v) = patch.status {
        p.status = v;
    }
    if let Some(specs) = patch.variants {
        let mut next = Vec::new();
        for (i, (vid, spec)) in specs.into_iter().enumerate() {
            match vid.and_then(|vid| p.variants.iter().find(|v| v.id == vid).cloned()) {
                Some(mut v) => {
                    v.title = spec.title;
                    if spec.sku.is_some() {
                        v.sku = spec.sku.clone();
                    }
                    v.price = money(spec.price, "USD");
                    v.compare_at_price = spec.compare_at_price.map(|p| money(p, "USD"));
                    v.barcode = spec.barcode;
                    v.taxable = spec.taxable;
                    v.inventory_policy = spec.inventory_policy;
                    v.option1 = spec.option1;
                    v.position = i as i64 + 1;
                    v.updated_at = Some(ts.clone());
                    if let Some(item) = v.inventory_item_id {
                        if let Some(ii) = data.inventory_items.get_mut(&item) {
                            ii.sku = v.sku.clone();
                        }
                        for (loc, q) in spec.quantities {
                            let l = data
                                .levels
                                .entry((item, loc))
                                .or_insert_with(|| Level::new(0, &ts));
                            let delta = q - l.get("available");
                            l.quantities.insert("available".into(), q);
                            let oh = l.get("on_hand") + delta;
                            l.quantities.insert("on_hand".into(), oh);
                            l.updated_at = ts.clone();
                        }
                    }
                    next.push(v);
                }
                None => next.push(new_variant(data, id, i, spec)),
            }
        }
        for old in &p.variants {
            if !next.iter().any(|v| v.id == old.id) {
                data.variant_product.remove(&old.id);
                if let Some(item) = old.inventory_item_id {
                    data.inventory_items.remove(&item);
                    data.levels.retain(|(i, _), _| *i != item);
                }
            }
        }
        p.variants = next;
        p.variant_gids = p
            .variants
            .iter()
            .map(|v| model::VariantGid {
                admin_graphql_api_id: v.admin_graphql_api_id.clone(),
                updated_at: ts.clone(),
            })
            .collect();
    }
    p.updated_at = Some(ts);
    data.products.insert(id, p.clone());
    Some(p)
}

const FIRST: &[&str] = &[
    "José",
    "Zoë",
    "Łukasz",
    "Søren",
    "Amélie",
    "Björn",
    "Chloé",
    "Dmitrii",
    "Ægir",
    "Nguyễn",
    "Sakura",
    "Olúwaseun",
    "Siobhán",
    "François",
    "Jürgen",
    "Anna",
    "John",
    "Mary",
    "Wei",
    "Aarav",
    "محمد",
    "Анна",
    "美咲",
    "Ζωή",
];
const LAST: &[&str] = &[
    "García",
    "Müller",
    "O'Brien",
    "Kowalski",
    "Ødegård",
    "Dubois",
    "Smith",
    "Nakamura",
    "Петров",
    "Đặng",
    "van der Berg",
    "Núñez",
    "Ólafsdóttir",
    "田中",
    "Schäfer",
    "Lefèvre",
    "Johnson",
    "Chen",
];
const STREETS: &[&str] = &[
    "Hauptstraße",
    "Rue de l'Église",
    "Calle Mayor",
    "Main Street",
    "Østre Allé",
    "Kungsgatan",
    "ul. Marszałkowska",
    "Via Roma",
    "Champs-Élysées",
    "銀座",
];
const CITIES: &[(&str, &str, &str, Option<&str>, &str)] = &[
    ("New York", "US", "United States", Some("NY"), "10001"),
    ("Ottawa", "CA", "Canada", Some("ON"), "K2P 2L8"),
    ("München", "DE", "Germany", None, "80331"),
    ("Paris", "FR", "France", None, "75008"),
    ("København", "DK", "Denmark", None, "1050"),
    ("Kraków", "PL", "Poland", None, "31-001"),
    ("São Paulo", "BR", "Brazil", Some("SP"), "01310-100"),
    ("東京", "JP", "Japan", Some("JP-13"), "100-0001"),
    ("Zürich", "CH", "Switzerland", None, "8001"),
    ("London", "GB", "United Kingdom", None, "SW1A 1AA"),
];
const PRODUCTS: &[&str] = &[
    "Aviator sunglasses",
    "Mid-century lounger",
    "Coffee table",
    "Wool beanie",
    "Leather wallet",
    "Ceramic mug",
    "Linen shirt",
    "Trail runner",
    "Espresso grinder",
    "Bamboo cutting board",
    "Crème brûlée torch",
    "Smørrebrød plate",
];
const SIZES: &[&str] = &["Small", "Medium", "Large"];

fn pick<'a, T>(data: &mut ShopData, v: &'a [T]) -> &'a T {
    // The lists are constant and non-empty.
    let i = data.rng.random_range(0..v.len());
    &v[i]
}

fn address(data: &mut ShopData, first: &str, last: &str) -> model::Address {
    let (city, cc, country, prov, zip) = *pick(data, CITIES);
    let street = *pick(data, STREETS);
    let no = data.rng.random_range(1..999);
    let long = data.rng.random_bool(0.1);
    let address1 = if long {
        format!(
            "{street} {no}, Hinterhaus, 3. Obergeschoss links, c/o Großhandelsgesellschaft für Büroausstattung und Einrichtungsgegenstände mbH & Co. KG"
        )
    } else {
        format!("{street} {no}")
    };
    let address2 = data
        .rng
        .random_bool(0.3)
        .then(|| format!("Apt {}", data.rng.random_range(1..300)));
    model::Address {
        first_name: Some(first.into()),
        address1: Some(address1),
        phone: Some(format!("+1-555-{:04}", data.rng.random_range(0..10000))),
        city: Some(city.into()),
        zip: Some(zip.into()),
        province: prov.map(str::to_owned),
        country: Some(country.into()),
        last_name: Some(last.into()),
        address2,
        company: data.rng.random_bool(0.2).then(|| "Ærø Trading ApS".into()),
        latitude: None,
        longitude: None,
        name: Some(format!("{first} {last}")),
        country_code: Some(cc.into()),
        province_code: prov.map(str::to_owned),
    }
}

/// Adds a location.
pub fn insert_location(data: &mut ShopData, n: usize) -> Location {
    let specs = [
        (
            "Main Warehouse",
            "123 Warehouse Way",
            "Newark",
            "07102",
            Some("NJ"),
            "US",
        ),
        (
            "Toronto Store",
            "220 Yonge Street",
            "Toronto",
            "M5B 2H1",
            Some("ON"),
            "CA",
        ),
        ("Lager Köln", "Domkloster 4", "Köln", "50667", None, "DE"),
    ];
    let (name, a1, city, zip, prov, cc) = specs[n % specs.len()];
    let id = data.next_id();
    let loc = Location {
        id,
        name: if n < specs.len() {
            name.into()
        } else {
            format!("{name} {n}")
        },
        address1: a1.into(),
        city: city.into(),
        zip: zip.into(),
        province_code: prov.map(str::to_owned),
        country_code: cc.into(),
        active: true,
    };
    data.locations.insert(id, loc.clone());
    loc
}

/// Adds a product with 1–3 variants stocked at every location.
pub fn random_product(data: &mut ShopData) -> model::Product {
    let n = data.products.len() + 1;
    let base = *pick(data, PRODUCTS);
    let title = format!("{base} {n}");
    let nvar = data.rng.random_range(1..=3);
    let price = Decimal::new(data.rng.random_range(500..50_000), 2);
    let locs: Vec<u64> = data.locations.keys().copied().collect();
    let variants = (0..nvar)
        .map(|i| {
            let quantities = locs
                .iter()
                .map(|l| (*l, data.rng.random_range(0..100)))
                .collect();
            VariantSpec {
                title: if nvar == 1 {
                    "Default Title".into()
                } else {
                    SIZES[i].into()
                },
                sku: Some(format!("SKU-{n:05}-{}", i + 1)),
                price,
                compare_at_price: None,
                barcode: None,
                taxable: true,
                inventory_policy: "deny".into(),
                option1: Some(if nvar == 1 {
                    "Default Title".into()
                } else {
                    SIZES[i].into()
                }),
                quantities,
            }
        })
        .collect();
    let handle = title
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    insert_product(
        data,
        ProductSpec {
            title,
            handle,
            body_html: Some(format!("<p>{base}, made with care.</p>")),
            vendor: "Syncline Outfitters".into(),
            product_type: "Goods".into(),
            tags: "sim, generated".into(),
            status: "active".into(),
            variants,
        },
    )
}

/// Adds a customer.
pub fn random_customer(data: &mut ShopData) -> model::Customer {
    let id = data.next_id();
    let first = *pick(data, FIRST);
    let last = *pick(data, LAST);
    let ts = crate::now_rfc3339();
    let a = address(data, first, last);
    let addr_id = data.next_id();
    let ca = model::CustomerAddress {
        id: addr_id,
        customer_id: id,
        first_name: a.first_name.clone(),
        last_name: a.last_name.clone(),
        company: a.company.clone(),
        address1: a.address1.clone(),
        address2: a.address2.clone(),
        city: a.city.clone(),
        province: a.province.clone(),
        country: a.country.clone(),
        zip: a.zip.clone(),
        phone: a.phone.clone(),
        name: a.name.clone(),
        province_code: a.province_code.clone(),
        country_code: a.country_code.clone(),
        country_name: a.country.clone(),
        default: true,
    };
    let c = model::Customer {
        id,
        created_at: Some(ts.clone()),
        updated_at: Some(ts),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        state: "disabled".into(),
        note: data
            .rng
            .random_bool(0.2)
            .then(|| "Prefers 📦 at the back door".into()),
        verified_email: true,
        multipass_identifier: None,
        tax_exempt: false,
        email: Some(format!("customer{}@example.com", id % 1_000_000_007)),
        phone: None,
        currency: "USD".into(),
        addresses: Some(vec![ca.clone()]),
        tax_exemptions: Vec::new(),
        admin_graphql_api_id: format!("gid://shopify/Customer/{id}"),
        default_address: Some(ca),
    };
    data.customers.insert(id, c.clone());
    c
}

struct Calc {
    shop_cur: String,
    pres_cur: String,
    fx: Decimal,
}

impl Calc {
    fn set(&self, shop_amount: Decimal) -> MoneySet {
        MoneySet::new(
            money(shop_amount, &self.shop_cur),
            &self.shop_cur,
            money(shop_amount * self.fx, &self.pres_cur),
            &self.pres_cur,
        )
    }
    fn zero(&self) -> MoneySet {
        self.set(Decimal::ZERO)
    }
    fn sum(&self, sets: &[&MoneySet]) -> MoneySet {
        let mut s = self.zero();
        for x in sets {
            s.shop_money.amount += x.shop_money.amount;
            s.presentment_money.amount += x.presentment_money.amount;
        }
        s
    }
    fn tax(&self, base: &MoneySet, rate: Decimal, title: &str) -> model::TaxLine {
        let shop = money(base.shop_money.amount * rate, &self.shop_cur);
        let pres = money(base.presentment_money.amount * rate, &self.pres_cur);
        model::TaxLine {
            price: shop,
            rate: rate.try_into().unwrap_or(0.0),
            title: title.into(),
            price_set: MoneySet::new(shop, &self.shop_cur, pres, &self.pres_cur),
            channel_liable: Some(false),
        }
    }
}

fn scale(s: &MoneySet, q: Decimal) -> MoneySet {
    let mut out = s.clone();
    out.shop_money.amount *= q;
    out.presentment_money.amount *= q;
    out
}

fn minus(a: &MoneySet, b: &MoneySet) -> MoneySet {
    let mut out = a.clone();
    out.shop_money.amount -= b.shop_money.amount;
    out.presentment_money.amount -= b.presentment_money.amount;
    out
}

fn hex(data: &mut ShopData, n: usize) -> String {
    (0..n)
        .map(|_| format!("{:x}", data.rng.random_range(0..16u8)))
        .collect()
}

/// Creates an order (and maybe a new customer). Returns the order and the
/// customer when one was created.
pub fn random_order(
    data: &mut ShopData,
    shop_domain: &str,
    spec: &TrafficSpec,
) -> (model::Order, Option<model::Customer>) {
    let shop_cur = "USD".to_owned();
    let pres_cur = if data.rng.random_bool(0.3) {
        (*pick(data, PRESENTMENT_CURRENCIES)).to_owned()
    } else {
        shop_cur.clone()
    };
    let calc = Calc {
        fx: rate(&pres_cur),
        shop_cur: shop_cur.clone(),
        pres_cur: pres_cur.clone(),
    };
    // Customer: guest, new, or returning.
    let mut created = None;
    let customer = if data.rng.random_bool(spec.guest_probability.clamp(0.0, 1.0)) {
        None
    } else if data.customers.is_empty()
        || data
            .rng
            .random_bool(spec.new_customer_probability.clamp(0.0, 1.0))
    {
        let c = random_customer(data);
        created = Some(c.clone());
        Some(c)
    } else {
        let ids: Vec<u64> = data.customers.keys().copied().collect();
        let id = *pick(data, &ids);
        data.customers.get(&id).cloned()
    };
    let (first, last) = match &customer {
        Some(c) => (
            c.first_name.clone().unwrap_or_default(),
            c.last_name.clone().unwrap_or_default(),
        ),
        None => (
            (*pick(data, FIRST)).to_owned(),
            (*pick(data, LAST)).to_owned(),
        ),
    };
    let ship_addr = address(data, &first, &last);
    let bill_addr = if data.rng.random_bool(0.8) {
        ship_addr.clone()
    } else {
        address(data, &first, &last)
    };
    let eu = matches!(
        ship_addr.country_code.as_deref(),
        Some("DE" | "FR" | "DK" | "PL" | "GB" | "CH")
    );
    let taxes: Vec<(Decimal, &str)> = if eu {
        vec![(Decimal::new(20, 2), "VAT")]
    } else if data.rng.random_bool(0.5) {
        vec![
            (Decimal::new(6, 2), "State Tax"),
            (Decimal::new(15, 3), "County Tax"),
        ]
    } else {
        vec![(Decimal::new(13, 2), "HST")]
    };
    let discount_pct = data.rng.random_bool(0.3).then_some(Decimal::new(10, 2));
    // Mostly small baskets, occasionally large ones (up to 50 lines).
    let nlines = if data.rng.random_bool(0.1) {
        data.rng.random_range(10..=50)
    } else {
        data.rng.random_range(1..=5)
    };
    let variants: Vec<(model::Product, model::Variant)> = data
        .products
        .values()
        .flat_map(|p| p.variants.iter().map(move |v| (p.clone(), v.clone())))
        .collect();
    let mut line_items = Vec::new();
    let mut weight = 0;
    for _ in 0..nlines {
        let id = data.next_id();
        let qty = data.rng.random_range(1..=4i64);
        let custom = variants.is_empty()
            || data
                .rng
                .random_bool(spec.custom_line_probability.clamp(0.0, 1.0));
        let (title, variant_title, sku, product_id, variant_id, unit, vendor) = if custom {
            (
                "Gift wrapping — «Luxe»".to_owned(),
                None,
                Some(format!("CUSTOM-{}", data.rng.random_range(100..999))),
                None,
                None,
                Decimal::new(data.rng.random_range(100..2000), 2),
                None,
            )
        } else {
            let (p, v) = variants.choose(&mut data.rng).cloned().unwrap_or_else(|| {
                // Unreachable: `custom` is set when the catalogue is empty.
                (variants[0].0.clone(), variants[0].1.clone())
            });
            (
                p.title.clone(),
                (v.title != "Default Title").then(|| v.title.clone()),
                v.sku.clone(),
                Some(p.id),
                Some(v.id),
                v.price,
                Some(p.vendor.clone()),
            )
        };
        let grams = data.rng.random_range(0..2000);
        weight += grams * qty;
        let price_set = calc.set(unit);
        let gross = scale(&price_set, Decimal::from(qty));
        let (allocs, disc_set) = match discount_pct {
            Some(pct) => {
                let d = MoneySet::new(
                    money(gross.shop_money.amount * pct, &shop_cur),
                    &shop_cur,
                    money(gross.presentment_money.amount * pct, &pres_cur),
                    &pres_cur,
                );
                (
                    vec![model::DiscountAllocation {
                        amount: d.shop_money.amount,
                        amount_set: d.clone(),
                        discount_application_index: 0,
                    }],
                    d,
                )
            }
            None => (Vec::new(), calc.zero()),
        };
        let net = minus(&gross, &disc_set);
        let tax_lines = taxes.iter().map(|(r, t)| calc.tax(&net, *r, t)).collect();
        let name = match &variant_title {
            Some(vt) => format!("{title} - {vt}"),
            None => title.clone(),
        };
        line_items.push(model::LineItem {
            id,
            admin_graphql_api_id: format!("gid://shopify/LineItem/{id}"),
            attributed_staffs: Some(Vec::new()),
            current_quantity: Some(qty),
            fulfillable_quantity: qty,
            fulfillment_service: "manual".into(),
            fulfillment_status: None,
            gift_card: false,
            grams,
            name,
            price: price_set.shop_money.amount,
            price_set,
            product_exists: product_id.is_some(),
            product_id,
            properties: Vec::new(),
            quantity: qty,
            requires_shipping: true,
            sales_line_item_group_id: Some(None),
            sku,
            taxable: true,
            title,
            total_discount: disc_set.shop_money.amount,
            total_discount_set: disc_set,
            variant_id,
            variant_inventory_management: variant_id.map(|_| "shopify".into()),
            variant_title,
            vendor,
            tax_lines,
            duties: Vec::new(),
            discount_allocations: allocs,
        });
    }
    let ship_price = *pick(
        data,
        &[
            Decimal::ZERO,
            Decimal::new(599, 2),
            Decimal::new(999, 2),
            Decimal::new(1499, 2),
        ],
    );
    let ship_set = calc.set(ship_price);
    let ship_taxes: Vec<model::TaxLine> = if ship_price.is_zero() {
        Vec::new()
    } else {
        taxes
            .iter()
            .map(|(r, t)| calc.tax(&ship_set, *r, t))
            .collect()
    };
    let ship_id = data.next_id();
    let shipping_line = model::ShippingLine {
        id: ship_id,
        carrier_identifier: None,
        code: Some("Standard".into()),
        current_discounted_price_set: ship_set.clone(),
        discounted_price: ship_set.shop_money.amount,
        discounted_price_set: ship_set.clone(),
        is_removed: false,
        phone: None,
        price: ship_set.shop_money.amount,
        price_set: ship_set.clone(),
        requested_fulfillment_service_id: None,
        source: "shopify".into(),
        title: "Standard Shipping".into(),
        tax_lines: ship_taxes.clone(),
        discount_allocations: Vec::new(),
    };
    let gross: Vec<MoneySet> = line_items
        .iter()
        .map(|l| scale(&l.price_set, Decimal::from(l.quantity)))
        .collect();
    let line_total = calc.sum(&gross.iter().collect::<Vec<_>>());
    let discounts = calc.sum(
        &line_items
            .iter()
            .map(|l| &l.total_discount_set)
            .collect::<Vec<_>>(),
    );
    let subtotal = minus(&line_total, &discounts);
    let mut all_tax: Vec<&model::TaxLine> =
        line_items.iter().flat_map(|l| l.tax_lines.iter()).collect();
    all_tax.extend(ship_taxes.iter());
    let tax = calc.sum(&all_tax.iter().map(|t| &t.price_set).collect::<Vec<_>>());
    // Order-level tax lines aggregate the line taxes by title.
    let mut order_taxes: Vec<model::TaxLine> = Vec::new();
    for t in &all_tax {
        match order_taxes.iter_mut().find(|o| o.title == t.title) {
            Some(o) => {
                o.price += t.price;
                o.price_set.shop_money.amount += t.price_set.shop_money.amount;
                o.price_set.presentment_money.amount += t.price_set.presentment_money.amount;
            }
            None => order_taxes.push((*t).clone()),
        }
    }
    let total = calc.sum(&[&subtotal, &ship_set, &tax]);
    let id = data.next_id();
    let number = data.next_order_number;
    data.next_order_number += 1;
    let token = hex(data, 32);
    let ts = crate::now_rfc3339();
    let email = customer
        .as_ref()
        .and_then(|c| c.email.clone())
        .or_else(|| Some(format!("guest{}@example.net", id % 1_000_003)));
    let gateway = (*pick(data, &["shopify_payments", "paypal", "manual"])).to_owned();
    let discount_code = discount_pct.map(|_| "WELCOME10".to_owned());
    let embedded_customer = customer.map(|mut c| {
        c.addresses = None;
        c
    });
    let order = model::Order {
        id,
        admin_graphql_api_id: format!("gid://shopify/Order/{id}"),
        app_id: Some(580111),
        browser_ip: Some(format!("203.0.113.{}", data.rng.random_range(1..255))),
        buyer_accepts_marketing: data.rng.random_bool(0.4),
        cancel_reason: None,
        cancelled_at: None,
        cart_token: Some(hex(data, 24)),
        checkout_token: Some(hex(data, 32)),
        client_details: None,
        closed_at: None,
        confirmation_number: Some(hex(data, 9).to_uppercase()),
        confirmed: true,
        contact_email: email.clone(),
        created_at: ts.clone(),
        currency: shop_cur.clone(),
        current_shipping_price_set: ship_set.clone(),
        current_subtotal_price: subtotal.shop_money.amount,
        current_subtotal_price_set: subtotal.clone(),
        current_total_additional_fees_set: None,
        current_total_discounts: discounts.shop_money.amount,
        current_total_discounts_set: discounts.clone(),
        current_total_duties_set: None,
        current_total_price: total.shop_money.amount,
        current_total_price_set: total.clone(),
        current_total_tax: tax.shop_money.amount,
        current_total_tax_set: tax.clone(),
        customer_locale: Some("en".into()),
        device_id: None,
        discount_codes: discount_code
            .iter()
            .map(|c| model::DiscountCode {
                code: c.clone(),
                amount: discounts.shop_money.amount,
                kind: "percentage".into(),
            })
            .collect(),
        duties_included: false,
        email: email.clone(),
        estimated_taxes: false,
        financial_status: Some("paid".into()),
        fulfillment_status: None,
        landing_site: Some("/".into()),
        landing_site_ref: None,
        location_id: None,
        merchant_business_entity_id: Some("MTU0ODM4MDAwOQ".into()),
        merchant_of_record_app_id: None,
        name: format!("#{number}"),
        note: data
            .rng
            .random_bool(0.1)
            .then(|| "Bitte nicht klingeln — 谢谢".into()),
        note_attributes: Vec::new(),
        number: number - 1000,
        order_number: number,
        order_status_url: Some(format!(
            "https://{shop_domain}/{}/orders/{token}/authenticate?key={}",
            id % 1_000_000_000,
            &token[..16]
        )),
        original_total_additional_fees_set: None,
        original_total_duties_set: None,
        payment_gateway_names: vec![gateway.clone()],
        phone: None,
        po_number: None,
        presentment_currency: pres_cur.clone(),
        processed_at: ts.clone(),
        reference: None,
        referring_site: None,
        source_identifier: None,
        source_name: "web".into(),
        source_url: None,
        subtotal_price: subtotal.shop_money.amount,
        subtotal_price_set: subtotal,
        tags: if discount_pct.is_some() {
            "promo, sim".into()
        } else {
            "sim".into()
        },
        tax_exempt: false,
        tax_lines: order_taxes,
        taxes_included: false,
        test: false,
        token: token.clone(),
        total_cash_rounding_payment_adjustment_set: calc.zero(),
        total_cash_rounding_refund_adjustment_set: calc.zero(),
        total_discounts: discounts.shop_money.amount,
        total_discounts_set: discounts,
        total_line_items_price: line_total.shop_money.amount,
        total_line_items_price_set: line_total,
        total_outstanding: money(Decimal::ZERO, &shop_cur),
        total_price: total.shop_money.amount,
        total_price_set: total.clone(),
        total_shipping_price_set: ship_set,
        total_tax: tax.shop_money.amount,
        total_tax_set: tax,
        total_tip_received: money(Decimal::ZERO, &shop_cur),
        total_weight: weight,
        updated_at: ts.clone(),
        user_id: None,
        billing_address: Some(bill_addr),
        customer: embedded_customer,
        discount_applications: discount_code
            .iter()
            .map(|c| model::DiscountApplication {
                kind: "discount_code".into(),
                code: Some(c.clone()),
                title: None,
                value: Decimal::new(100, 1),
                value_type: "percentage".into(),
                target_type: "line_item".into(),
                target_selection: "all".into(),
                allocation_method: "across".into(),
            })
            .collect(),
        fulfillments: Vec::new(),
        line_items,
        payment_terms: None,
        refunds: Vec::new(),
        shipping_address: Some(ship_addr),
        shipping_lines: vec![shipping_line],
        returns: Vec::new(),
        line_item_groups: Vec::new(),
    };
    // A sale transaction in the presentment currency, as Shopify records it.
    let tx_id = data.next_id();
    let tx = transaction(
        tx_id,
        id,
        "sale",
        &gateway,
        total.presentment_money.amount,
        &pres_cur,
        &ts,
    );
    data.transactions.entry(id).or_default().push(tx);
    // One fulfillment order at the first location.
    if let Some(&loc) = data.locations.keys().next() {
        let fo_id = data.next_id();
        let lines = order
            .line_items
            .iter()
            .filter(|l| l.requires_shipping)
            .map(|l| (l.id, l.quantity))
            .collect::<Vec<_>>();
        let lines = lines
            .into_iter()
            .map(|(li, q)| FoLine {
                id: data.next_id(),
                line_item_id: li,
                total: q,
                remaining: q,
            })
            .collect();
        data.fulfillment_orders.insert(
            fo_id,
            FulfillmentOrder {
                id: fo_id,
                order_id: id,
                location_id: loc,
                status: "OPEN".into(),
                lines,
                created_at: ts.clone(),
                updated_at: ts.clone(),
            },
        );
    }
    data.orders.insert(id, order.clone());
    (order, created)
}

fn transaction(
    id: u64,
    order_id: u64,
    kind: &str,
    gateway: &str,
    amount: Decimal,
    currency: &str,
    ts: &str,
) -> model::Transaction {
    model::Transaction {
        id,
        order_id,
        kind: kind.into(),
        gateway: gateway.into(),
        status: "success".into(),
        message: Some(if kind == "refund" {
            "This is a refund".into()
        } else {
            "Transaction approved".into()
        }),
        created_at: ts.into(),
        test: false,
        authorization: Some(format!("{}", id % 100_000_000)),
        location_id: None,
        user_id: None,
        parent_id: None,
        processed_at: Some(ts.into()),
        device_id: None,
        error_code: None,
        source_name: "web".into(),
        receipt: serde_json::json!({}),
        amount,
        currency: Some(currency.into()),
        payment_id: format!("c{id}.1"),
        total_unsettled_set: model::UnsettledSet {
            presentment_money: model::UnsettledMoney {
                amount: Decimal::new(0, 1),
                currency: "XXX".into(),
            },
            shop_money: model::UnsettledMoney {
                amount: Decimal::new(0, 1),
                currency: "XXX".into(),
            },
        },
        manual_payment_gateway: gateway == "manual",
        amount_rounding: None,
        admin_graphql_api_id: format!("gid://shopify/OrderTransaction/{id}"),
    }
}

/// Edits a random open order the way merchants do (note, tags).
pub fn random_update(data: &mut ShopData) -> Option<model::Order> {
    let ids: Vec<u64> = data
        .orders
        .values()
        .filter(|o| o.cancelled_at.is_none())
        .map(|o| o.id)
        .collect();
    let id = *ids.choose(&mut data.rng)?;
    let n = data.rng.random_range(1..1000);
    let order = data.orders.get_mut(&id)?;
    order.note = Some(format!("Kunde rief an — call #{n}"));
    if !order.tags.split(", ").any(|t| t == "edited") {
        order.tags = if order.tags.is_empty() {
            "edited".into()
        } else {
            format!("{}, edited", order.tags)
        };
    }
    order.updated_at = crate::now_rfc3339();
    Some(order.clone())
}

/// Cancels a random unfulfilled, unrefunded order, refunding its payment.
pub fn random_cancel(data: &mut ShopData) -> Option<model::Order> {
    let ids: Vec<u64> = data
        .orders
        .values()
        .filter(|o| {
            o.cancelled_at.is_none()
                && o.fulfillment_status.is_none()
                && o.financial_status.as_deref() == Some("paid")
        })
        .map(|o| o.id)
        .collect();
    let id = *ids.choose(&mut data.rng)?;
    let tx_id = data.next_id();
    let reason = (*pick(
        data,
        &["customer", "inventory", "fraud", "declined", "other"],
    ))
    .to_owned();
    let ts = crate::now_rfc3339();
    let sale = data
        .transactions
        .get(&id)
        .and_then(|t| t.iter().find(|t| t.kind == "sale"))
        .cloned();
    if let Some(sale) = sale {
        let mut refund = transaction(
            tx_id,
            id,
            "refund",
            &sale.gateway,
            sale.amount,
            sale.currency.as_deref().unwrap_or("USD"),
            &ts,
        );
        refund.parent_id = Some(sale.id);
        data.transactions.entry(id).or_default().push(refund);
    }
    for fo in data.fulfillment_orders.values_mut() {
        if fo.order_id == id {
            fo.status = "CANCELLED".into();
            fo.updated_at = ts.clone();
        }
    }
    let order = data.orders.get_mut(&id)?;
    order.cancelled_at = Some(ts.clone());
    order.cancel_reason = Some(reason);
    order.closed_at = Some(ts.clone());
    order.financial_status = Some("refunded".into());
    order.current_total_price = money(Decimal::ZERO, &order.currency);
    order.updated_at = ts;
    Some(order.clone())
}

/// Refunds one line of a random paid order, if there is one.
pub fn random_refund(data: &mut ShopData) -> Option<(model::Refund, model::Order)> {
    let candidates: Vec<u64> = data
        .orders
        .values()
        .filter(|o| o.financial_status.as_deref() == Some("paid"))
        .map(|o| o.id)
        .collect();
    let order_id = *candidates.choose(&mut data.rng)?;
    let mut order = data.orders.get(&order_id)?.clone();
    let li_idx = data.rng.random_range(0..order.line_items.len().max(1));
    let li = order.line_items.get(li_idx)?.clone();
    let qty = data.rng.random_range(1..=li.quantity.max(1));
    let share = Decimal::from(qty) / Decimal::from(li.quantity.max(1));
    let shop_cur = order.currency.clone();
    let pres_cur = order.presentment_currency.clone();
    let gross = scale(&li.price_set, Decimal::from(qty));
    let disc = scale(&li.total_discount_set, share);
    let net = minus(&gross, &disc);
    let subtotal = MoneySet::new(
        money(net.shop_money.amount, &shop_cur),
        &shop_cur,
        money(net.presentment_money.amount, &pres_cur),
        &pres_cur,
    );
    let mut tax = MoneySet::new(Decimal::ZERO, &shop_cur, Decimal::ZERO, &pres_cur);
    for t in &li.tax_lines {
        tax.shop_money.amount += t.price_set.shop_money.amount * share;
        tax.presentment_money.amount += t.price_set.presentment_money.amount * share;
    }
    tax.shop_money.amount = money(tax.shop_money.amount, &shop_cur);
    tax.presentment_money.amount = money(tax.presentment_money.amount, &pres_cur);
    let id = data.next_id();
    let rli_id = data.next_id();
    let tx_id = data.next_id();
    let ts = crate::now_rfc3339();
    let mut embedded = li.clone();
    embedded.attributed_staffs = None;
    embedded.current_quantity = None;
    embedded.sales_line_item_group_id = None;
    let gateway = order
        .payment_gateway_names
        .first()
        .cloned()
        .unwrap_or_else(|| "manual".into());
    let refund_amount = subtotal.presentment_money.amount + tax.presentment_money.amount;
    let mut tx = transaction(
        tx_id,
        order_id,
        "refund",
        &gateway,
        refund_amount,
        &pres_cur,
        &ts,
    );
    tx.parent_id = data
        .transactions
        .get(&order_id)
        .and_then(|t| t.first())
        .map(|t| t.id);
    let refund = model::Refund {
        id,
        order_id,
        created_at: ts.clone(),
        note: Some("Beschädigt angekommen — damaged in transit".into()),
        user_id: None,
        processed_at: ts.clone(),
        duties: Vec::new(),
        total_duties_set: MoneySet::new(
            Decimal::new(0, 2),
            &shop_cur,
            Decimal::new(0, 2),
            &pres_cur,
        ),
        return_: None,
        refund_shipping_lines: Vec::new(),
        restock: false,
        admin_graphql_api_id: format!("gid://shopify/Refund/{id}"),
        order_adjustments: Vec::new(),
        refund_line_items: vec![model::RefundLineItem {
            id: rli_id,
            quantity: qty,
            line_item_id: li.id,
            location_id: None,
            restock_type: "no_restock".into(),
            subtotal: subtotal.shop_money.amount,
            total_tax: tax.shop_money.amount,
            subtotal_set: subtotal,
            total_tax_set: tax,
            line_item: embedded,
        }],
        transactions: vec![tx.clone()],
    };
    data.transactions.entry(order_id).or_default().push(tx);
    if let Some(l) = order.line_items.get_mut(li_idx) {
        l.current_quantity = Some(l.current_quantity.unwrap_or(l.quantity) - qty);
    }
    let all_refunded = order
        .line_items
        .iter()
        .all(|l| l.current_quantity.unwrap_or(l.quantity) <= 0);
    order.financial_status = Some(if all_refunded {
        "refunded".into()
    } else {
        "partially_refunded".into()
    });
    order.refunds.push(refund.clone());
    order.updated_at = ts;
    data.orders.insert(order_id, order.clone());
    Some((refund, order))
}

/// Seeds a shop.
pub fn seed(data: &mut ShopData, domain: &str, spec: &SeedSpec) {
    let have = data.locations.len();
    for n in have..(spec.locations.max(1) as usize) {
        insert_location(data, n);
    }
    for _ in 0..spec.products {
        random_product(data);
    }
    for _ in 0..spec.customers {
        random_customer(data);
    }
    let traffic = TrafficSpec::default();
    for _ in 0..spec.orders {
        random_order(data, domain, &traffic);
    }
}
