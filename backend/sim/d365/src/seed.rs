//! Deterministic master data: legal entities, currencies, customer groups,
//! customers, released products, warehouses and on-hand quantities.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::schema::schema;
use crate::store::{Company, Store};

/// One product to seed explicitly (e.g. to match the Shopify emulator's SKUs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductSeed {
    /// `ItemNumber` (the SKU).
    pub item_number: String,
    /// Search name / description.
    pub name: String,
    /// Sales price, exact decimal as a string.
    pub price: String,
}

/// What to seed. Every field has a default; deterministic for a given seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedSpec {
    /// Legal entities (`dataAreaId`s); known ids get realistic names and currencies.
    pub companies: Vec<String>,
    /// Customers generated per legal entity.
    pub customers_per_company: usize,
    /// Released products generated per legal entity (ignored when `products` is set).
    pub product_count: usize,
    /// Prefix of generated item numbers (`A0001`, …).
    pub item_prefix: String,
    /// Explicit products, seeded in every legal entity.
    pub products: Vec<ProductSeed>,
    /// Warehouses per legal entity as (site, warehouse).
    pub warehouses: Vec<(String, String)>,
    /// Upper bound of generated on-hand quantities.
    pub max_on_hand: u32,
}

impl Default for SeedSpec {
    fn default() -> Self {
        SeedSpec {
            companies: vec!["usmf".into(), "usrt".into(), "demf".into(), "gbsi".into()],
            customers_per_company: 20,
            product_count: 50,
            item_prefix: "A".into(),
            products: Vec::new(),
            warehouses: vec![
                ("1".into(), "11".into()),
                ("1".into(), "12".into()),
                ("2".into(), "21".into()),
            ],
            max_on_hand: 500,
        }
    }
}

/// ISO 4217 codes seeded into `Currencies` (F&O ships them all; this is the common subset).
const CURRENCIES: &[(&str, &str, &str)] = &[
    ("USD", "US Dollar", "$"),
    ("EUR", "Euro", "€"),
    ("GBP", "Pound Sterling", "£"),
    ("CAD", "Canadian Dollar", "$"),
    ("AUD", "Australian Dollar", "$"),
    ("NZD", "New Zealand Dollar", "$"),
    ("JPY", "Yen", "¥"),
    ("CNY", "Yuan Renminbi", "¥"),
    ("CHF", "Swiss Franc", "CHF"),
    ("DKK", "Danish Krone", "kr"),
    ("SEK", "Swedish Krona", "kr"),
    ("NOK", "Norwegian Krone", "kr"),
    ("PLN", "Zloty", "zł"),
    ("CZK", "Czech Koruna", "Kč"),
    ("HUF", "Forint", "Ft"),
    ("MXN", "Mexican Peso", "$"),
    ("BRL", "Brazilian Real", "R$"),
    ("INR", "Indian Rupee", "₹"),
    ("SGD", "Singapore Dollar", "$"),
    ("HKD", "Hong Kong Dollar", "$"),
    ("KRW", "Won", "₩"),
    ("ZAR", "Rand", "R"),
    ("AED", "UAE Dirham", "د.إ"),
    ("SAR", "Saudi Riyal", "﷼"),
    ("TRY", "Turkish Lira", "₺"),
    ("ILS", "New Israeli Sheqel", "₪"),
    ("THB", "Baht", "฿"),
    ("MYR", "Malaysian Ringgit", "RM"),
    ("IDR", "Rupiah", "Rp"),
    ("PHP", "Philippine Peso", "₱"),
    ("RON", "Romanian Leu", "lei"),
    ("BGN", "Bulgarian Lev", "лв"),
    ("ISK", "Iceland Krona", "kr"),
    ("CLP", "Chilean Peso", "$"),
    ("COP", "Colombian Peso", "$"),
    ("ARS", "Argentine Peso", "$"),
    ("TWD", "New Taiwan Dollar", "$"),
    ("VND", "Dong", "₫"),
];

const GROUPS: &[(&str, &str)] = &[
    ("10", "Wholesale customers"),
    ("20", "Major customers"),
    ("30", "Retail customers"),
    ("40", "Internet customers"),
    ("80", "Other customers"),
    ("90", "Intercompany customers"),
];

const FIRST: &[&str] = &[
    "Ava", "Liam", "Sofía", "Noah", "Zoë", "Mateo", "Chloé", "Jürgen", "Aiko", "Olamide",
];
const LAST: &[&str] = &[
    "Smith", "García", "Müller", "Nguyen", "O'Brien", "Kowalski", "Rossi", "Tanaka", "Dubois",
    "Okafor",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Seattle", "WA", "98101"),
    ("Chicago", "IL", "60601"),
    ("Austin", "TX", "73301"),
    ("Boston", "MA", "02108"),
    ("Denver", "CO", "80202"),
];
const NOUNS: &[&str] = &[
    "Speaker",
    "Cable",
    "Headphones",
    "Amplifier",
    "Microphone",
    "Mixer",
    "Turntable",
    "Subwoofer",
];
const ADJECTIVES: &[&str] = &["Compact", "Deluxe", "Studio", "Wireless", "Classic", "Pro"];

fn company_for(id: &str) -> Company {
    let (name, currency, country, prefix) = match id {
        "usmf" => ("Contoso Entertainment System USA", "USD", "USA", "US"),
        "usrt" => ("Contoso Retail USA", "USD", "USA", "US"),
        "demf" => ("Contoso Entertainment System Germany", "EUR", "DEU", "DE"),
        "gbsi" => ("Contoso Entertainment System UK", "GBP", "GBR", "GB"),
        "frsi" => ("Contoso Entertainment System France", "EUR", "FRA", "FR"),
        "jpmf" => ("Contoso Entertainment System Japan", "JPY", "JPN", "JP"),
        _ => ("Contoso", "USD", "USA", "C"),
    };
    Company {
        id: id.to_lowercase(),
        name: name.into(),
        currency: currency.into(),
        country: country.into(),
        prefix: prefix.into(),
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn price(rng: &mut StdRng) -> Decimal {
    Decimal::new(rng.random_range(199..=99_999), 2)
}

/// Fills an empty store from the spec and seed.
pub fn seed(spec: &SeedSpec, seed: u64) -> Store {
    let sc = schema();
    let mut rng = StdRng::seed_from_u64(seed);
    let companies: Vec<Company> = spec.companies.iter().map(|c| company_for(c)).collect();
    let mut store = Store::new(companies.clone());
    let table = |name: &str| sc.table(name).cloned();
    let (
        Some(t_company),
        Some(t_legal),
        Some(t_currency),
        Some(t_group),
        Some(t_customer),
        Some(t_product),
        Some(t_wh),
        Some(t_onhand),
    ) = (
        table("Company"),
        table("LegalEntity"),
        table("Currency"),
        table("CustomerGroup"),
        table("Customer"),
        table("ReleasedProduct"),
        table("Warehouse"),
        table("OnHand"),
    )
    else {
        return store;
    };
    for (code, name, symbol) in CURRENCIES {
        store.insert_raw(
            &t_currency,
            obj(json!({"CurrencyCode": code, "Name": name, "Symbol": symbol, "GeneralRoundingRule": 0.01})),
        );
    }
    for c in &companies {
        let area = c.id.as_str();
        store.insert_raw(
            &t_company,
            obj(json!({"DataArea": area, "Name": c.name, "KnownAs": c.name, "LanguageId": "en-us", "PartyNumber": format!("0000{:04}", rng.random_range(1000..9999))})),
        );
        store.insert_raw(
            &t_legal,
            obj(json!({"LegalEntityId": area, "Name": c.name, "AddressCountryRegionId": c.country, "AccountingCurrency": c.currency, "LanguageId": "en-us"})),
        );
        for (id, desc) in GROUPS {
            store.insert_raw(
                &t_group,
                obj(json!({"dataAreaId": area, "CustomerGroupId": id, "Description": desc, "PaymentTermId": "Net30"})),
            );
        }
        for n in 1..=spec.customers_per_company {
            let first = FIRST[rng.random_range(0..FIRST.len())];
            let last = LAST[rng.random_range(0..LAST.len())];
            let (city, state, zip) = CITIES[rng.random_range(0..CITIES.len())];
            let group = GROUPS[rng.random_range(0..4)].0;
            store.insert_raw(
                &t_customer,
                obj(json!({
                    "dataAreaId": area,
                    "CustomerAccount": format!("{}-{n:03}", c.prefix),
                    "OrganizationName": format!("{first} {last}"),
                    "PersonFirstName": first,
                    "PersonLastName": last,
                    "PartyType": "Person",
                    "CustomerGroupId": group,
                    "SalesCurrencyCode": c.currency,
                    "PrimaryContactEmail": format!("{}.{}{n}@example.com", first.to_lowercase(), last.to_lowercase().replace('\'', "")),
                    "AddressStreet": format!("{} Main Street", rng.random_range(1..999)),
                    "AddressCity": city,
                    "AddressState": state,
                    "AddressZipCode": zip,
                    "AddressCountryRegionId": c.country,
                    "LanguageId": "en-us",
                })),
            );
        }
        store.bump_sequence(area, "Customer", spec.customers_per_company as u64);
        let products: Vec<ProductSeed> = if spec.products.is_empty() {
            (1..=spec.product_count)
                .map(|n| ProductSeed {
                    item_number: format!("{}{n:04}", spec.item_prefix),
                    name: format!(
                        "{} {} {n}",
                        ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
                        NOUNS[rng.random_range(0..NOUNS.len())]
                    ),
                    price: price(&mut rng).to_string(),
                })
                .collect()
        } else {
            spec.products.clone()
        };
        for (site, wh) in &spec.warehouses {
            store.insert_raw(
                &t_wh,
                obj(json!({"dataAreaId": area, "WarehouseId": wh, "WarehouseName": format!("Warehouse {wh}"), "OperationalSiteId": site, "WarehouseType": "Standard"})),
            );
        }
        for p in &products {
            let price: Value = serde_json::from_str(&p.price).unwrap_or_else(|_| json!(0));
            store.insert_raw(
                &t_product,
                obj(json!({
                    "dataAreaId": area,
                    "ItemNumber": p.item_number,
                    "ProductNumber": p.item_number,
                    "SearchName": p.name.chars().take(20).collect::<String>(),
                    "ProductSearchName": p.name,
                    "SalesPrice": price,
                    "SalesUnitSymbol": "ea",
                    "InventoryUnitSymbol": "ea",
                    "PurchaseUnitSymbol": "ea",
                    "ProductType": "Item",
                    "ProductSubType": "Product",
                    "ItemModelGroupId": "FIFO",
                    "ProductGroupId": "Audio",
                })),
            );
            for (site, wh) in &spec.warehouses {
                let on_hand = Decimal::from(rng.random_range(0..=spec.max_on_hand.max(1)));
                let reserved = Decimal::from(rng.random_range(0..=3u32)).min(on_hand);
                store.insert_raw(
                    &t_onhand,
                    on_hand_row(area, &p.item_number, &p.name, site, wh, on_hand, reserved),
                );
            }
        }
    }
    store
}

/// A `WarehousesOnHandV2` row with consistent derived quantities.
pub fn on_hand_row(
    area: &str,
    item: &str,
    name: &str,
    site: &str,
    wh: &str,
    on_hand: Decimal,
    reserved: Decimal,
) -> Map<String, Value> {
    let available = on_hand - reserved;
    let n = |d: Decimal| -> Value { serde_json::from_str(&d.to_string()).unwrap_or(json!(0)) };
    obj(json!({
        "dataAreaId": area,
        "ItemNumber": item,
        "ProductColorId": "",
        "ProductConfigurationId": "",
        "ProductSizeId": "",
        "ProductStyleId": "",
        "ProductVersionId": "",
        "InventorySiteId": site,
        "InventoryWarehouseId": wh,
        "ProductName": name,
        "OnHandQuantity": n(on_hand),
        "ReservedOnHandQuantity": n(reserved),
        "AvailableOnHandQuantity": n(available),
        "TotalAvailableQuantity": n(available),
        "AvailableOrderedQuantity": n(available),
        "AreWarehouseManagementProcessesUsed": "No",
    }))
}
