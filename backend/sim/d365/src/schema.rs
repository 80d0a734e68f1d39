//! Entity sets, their properties and enum types, built from the D365 fixtures
//! copied into `schema/` (so the emulator declares exactly what real F&O does).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::{Number, Value};

/// Namespace real F&O uses for its entity and enum types.
pub const NAMESPACE: &str = "Microsoft.Dynamics.DataEntities";

/// The value F&O returns for an empty date.
pub const EMPTY_DATE: &str = "1900-01-01T12:00:00Z";

const ENTITIES: &str = include_str!("../schema/entities.txt");
const EXTRA_ENTITIES: &str = include_str!("../schema/extra_entities.txt");
const ENUMS: &str = include_str!("../schema/enums.txt");

/// Storage tables: several entity sets (versions and informal aliases) share one.
/// (set name, table, entity type name, alias of) — an alias takes the property
/// list of the set it stands for and is not part of the fixture comparison.
const SETS: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "SalesOrderHeadersV2",
        "SalesOrderHeader",
        "SalesOrderHeaderV2",
        None,
    ),
    (
        "SalesOrderHeadersV3",
        "SalesOrderHeader",
        "SalesOrderHeaderV3",
        None,
    ),
    (
        "SalesOrderHeadersV4",
        "SalesOrderHeader",
        "SalesOrderHeaderV4",
        None,
    ),
    ("SalesOrderLines", "SalesOrderLine", "SalesOrderLine", None),
    (
        "SalesOrderLinesV3",
        "SalesOrderLine",
        "SalesOrderLineV3",
        None,
    ),
    (
        "D365SalesOrderHeaders",
        "SalesOrderHeader",
        "D365SalesOrderHeader",
        None,
    ),
    (
        "D365SalesOrderLines",
        "SalesOrderLine",
        "D365SalesOrderLine",
        None,
    ),
    ("CustomersV3", "Customer", "CustomerV3", None),
    (
        "ReleasedProductsV2",
        "ReleasedProduct",
        "ReleasedProductV2",
        None,
    ),
    ("WarehousesOnHandV2", "OnHand", "WarehousesOnHandV2", None),
    ("WarehousesOnHand", "OnHand", "WarehousesOnHand", None),
    (
        "CustomerPaymentJournalHeaders",
        "PaymentJournalHeader",
        "CustomerPaymentJournalHeader",
        None,
    ),
    (
        "CustomerPaymentJournalLines",
        "PaymentJournalLine",
        "CustomerPaymentJournalLine",
        None,
    ),
    ("CustomerGroups", "CustomerGroup", "CustomerGroup", None),
    ("Companies", "Company", "Company", None),
    ("LegalEntities", "LegalEntity", "LegalEntity", None),
    ("Currencies", "Currency", "Currency", None),
    ("Warehouses", "Warehouse", "Warehouse", None),
    (
        "PackingSlipTrackingInformation",
        "PackingSlipTracking",
        "PackingSlipTrackingInformation",
        None,
    ),
    // Informal names found in older material.
    (
        "SalesOrderHeaders",
        "SalesOrderHeader",
        "SalesOrderHeaderV2",
        Some("SalesOrderHeadersV2"),
    ),
    ("Customers", "Customer", "CustomerV3", Some("CustomersV3")),
    (
        "ReleasedProducts",
        "ReleasedProduct",
        "ReleasedProductV2",
        Some("ReleasedProductsV2"),
    ),
    (
        "InventOnHand",
        "OnHand",
        "WarehousesOnHandV2",
        Some("WarehousesOnHandV2"),
    ),
];

/// A property's EDM type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdmType {
    /// `Edm.String`
    String,
    /// `Edm.Decimal`, kept exact.
    Decimal,
    /// `Edm.Int32`
    Int32,
    /// `Edm.Int64`
    Int64,
    /// `Edm.DateTimeOffset`
    DateTimeOffset,
    /// `Edm.Guid`
    Guid,
    /// An F&O enum, serialised as its member name.
    Enum(String),
}

impl EdmType {
    fn parse(s: &str) -> EdmType {
        match s {
            "Edm.String" => EdmType::String,
            "Edm.Decimal" => EdmType::Decimal,
            "Edm.Int32" => EdmType::Int32,
            "Edm.Int64" => EdmType::Int64,
            "Edm.DateTimeOffset" => EdmType::DateTimeOffset,
            "Edm.Guid" => EdmType::Guid,
            other => EdmType::Enum(other.to_string()),
        }
    }

    /// The type name as `$metadata` spells it.
    pub fn qualified(&self) -> String {
        match self {
            EdmType::String => "Edm.String".into(),
            EdmType::Decimal => "Edm.Decimal".into(),
            EdmType::Int32 => "Edm.Int32".into(),
            EdmType::Int64 => "Edm.Int64".into(),
            EdmType::DateTimeOffset => "Edm.DateTimeOffset".into(),
            EdmType::Guid => "Edm.Guid".into(),
            EdmType::Enum(name) => format!("{NAMESPACE}.{name}"),
        }
    }
}

/// One structural property of an entity type.
#[derive(Debug, Clone)]
pub struct Property {
    /// Property name.
    pub name: String,
    /// EDM type.
    pub ty: EdmType,
    /// Whether `$metadata` declares it nullable.
    pub nullable: bool,
    /// Maximum string length enforced on writes (from the EDT where known).
    pub max_length: Option<usize>,
    /// Human label used in Infolog messages.
    pub label: String,
    /// Value F&O fills in when none is given.
    pub default: Value,
}

/// One entity set served under `/data/`.
#[derive(Debug, Clone)]
pub struct EntitySet {
    /// Entity set name (URL segment).
    pub name: String,
    /// Entity type name (without namespace).
    pub type_name: String,
    /// Storage table shared by all versions of the entity.
    pub table: String,
    /// Key property names, in key order.
    pub keys: Vec<String>,
    /// Properties in declaration order.
    pub props: Vec<Property>,
    /// Whether the set is an informal alias of another set.
    pub alias_of: Option<String>,
    /// Property positions by name.
    index: HashMap<String, usize>,
}

impl EntitySet {
    /// Finds a property by exact name.
    pub fn prop(&self, name: &str) -> Option<&Property> {
        self.index.get(name).and_then(|i| self.props.get(*i))
    }

    /// Whether rows belong to a legal entity (carry `dataAreaId`).
    pub fn company_scoped(&self) -> bool {
        self.keys.first().is_some_and(|k| k == "dataAreaId")
    }

    /// Navigation properties this emulator can expand: (name, target set).
    pub fn navigations(&self) -> &'static [(&'static str, &'static str)] {
        if self.table == "SalesOrderHeader" {
            &[("SalesOrderLines", "SalesOrderLines")]
        } else if self.table == "PaymentJournalHeader" {
            &[("JournalLines", "CustomerPaymentJournalLines")]
        } else {
            &[]
        }
    }
}

/// Storage table: union of the properties of every set stored in it.
#[derive(Debug, Clone)]
pub struct Table {
    /// Table name.
    pub name: String,
    /// Key of the primary (first) set stored in the table.
    pub keys: Vec<String>,
    /// Union of properties.
    pub props: Vec<Property>,
}

/// The whole served model.
#[derive(Debug)]
pub struct Schema {
    /// Entity sets in service-document order.
    pub sets: Vec<EntitySet>,
    /// Storage tables by name.
    pub tables: BTreeMap<String, Table>,
    /// Enum types: name → members (name, value).
    pub enums: BTreeMap<String, Vec<(String, i64)>>,
}

/// A fixture entry as parsed from `entities.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureSet {
    /// Entity set name.
    pub name: String,
    /// Key property names.
    pub keys: Vec<String>,
    /// (name, type as written, e.g. `Edm.String?` or `NoYes?`).
    pub props: Vec<(String, String)>,
}

/// Parses the `entities.txt` fixture format.
pub fn parse_fixture(text: &str) -> Vec<FixtureSet> {
    let mut out = Vec::new();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    while let Some(header) = lines.next() {
        let Some(rest) = header.strip_prefix("=== EntitySet ") else {
            continue;
        };
        let name = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let keys = rest
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(k, _)| {
                k.split(',')
                    .map(|s| s.trim().trim_matches('\'').to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let props = lines
            .next()
            .unwrap_or_default()
            .trim()
            .split(", ")
            .filter_map(|p| p.split_once(':'))
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        out.push(FixtureSet { name, keys, props });
    }
    out
}

/// The served schema, built once.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(build)
}

fn build() -> Schema {
    let mut fixtures: BTreeMap<String, FixtureSet> = BTreeMap::new();
    for f in parse_fixture(ENTITIES)
        .into_iter()
        .chain(parse_fixture(EXTRA_ENTITIES))
    {
        fixtures.insert(f.name.clone(), f);
    }
    let mut enums = BTreeMap::new();
    for line in ENUMS.lines() {
        let Some((name, members)) = line.split_once('=') else {
            continue;
        };
        let members = members
            .split(',')
            .filter_map(|m| m.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.parse().unwrap_or(0)))
            .collect();
        enums.insert(name.to_string(), members);
    }
    let mut sets = Vec::new();
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for (name, table, type_name, alias_of) in SETS {
        let source = alias_of.unwrap_or(name);
        let Some(f) = fixtures.get(source) else {
            continue;
        };
        let props: Vec<Property> = f
            .props
            .iter()
            .map(|(n, t)| {
                let nullable = t.ends_with('?');
                let ty = EdmType::parse(t.trim_end_matches('?'));
                Property {
                    default: Value::Null,
                    max_length: if ty == EdmType::String {
                        max_length(n)
                    } else {
                        None
                    },
                    label: label(n),
                    name: n.clone(),
                    ty,
                    nullable,
                }
            })
            .collect();
        let t = tables.entry(table.to_string()).or_insert_with(|| Table {
            name: table.to_string(),
            keys: f.keys.clone(),
            props: Vec::new(),
        });
        for p in &props {
            if !t.props.iter().any(|q| q.name == p.name) {
                t.props.push(p.clone());
            }
        }
        sets.push(EntitySet {
            name: name.to_string(),
            type_name: type_name.to_string(),
            table: table.to_string(),
            keys: f.keys.clone(),
            index: props
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect(),
            props,
            alias_of: alias_of.map(str::to_string),
        });
    }
    let mut schema = Schema {
        sets,
        tables,
        enums,
    };
    // Defaults need the enum table, so they are filled in last.
    let fill = |p: &mut Property, enums: &BTreeMap<String, Vec<(String, i64)>>| {
        p.default = match &p.ty {
            EdmType::String => Value::String(String::new()),
            EdmType::Decimal | EdmType::Int32 | EdmType::Int64 => Value::Number(Number::from(0)),
            EdmType::DateTimeOffset => Value::String(EMPTY_DATE.into()),
            EdmType::Guid => Value::String("00000000-0000-0000-0000-000000000000".into()),
            EdmType::Enum(e) => Value::String(
                enums
                    .get(e)
                    .and_then(|m| m.iter().find(|(_, v)| *v == 0).or(m.first()))
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default(),
            ),
        };
    };
    let enums = schema.enums.clone();
    for set in &mut schema.sets {
        for p in &mut set.props {
            fill(p, &enums);
        }
    }
    for t in schema.tables.values_mut() {
        for p in &mut t.props {
            fill(p, &enums);
        }
    }
    schema
}

impl Schema {
    /// Finds an entity set by name; like F&O's endpoint, names are case-sensitive.
    pub fn set(&self, name: &str) -> Option<&EntitySet> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// The set's storage table.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Default value of an enum: the member with value 0, else the first.
    pub fn enum_default(&self, name: &str) -> String {
        let Some(members) = self.enums.get(name) else {
            return String::new();
        };
        members
            .iter()
            .find(|(_, v)| *v == 0)
            .or(members.first())
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    /// Resolves an enum member name case-insensitively, or by its numeric value.
    pub fn enum_member(&self, name: &str, member: &str) -> Option<(String, i64)> {
        let members = self.enums.get(name)?;
        members
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(member))
            .or_else(|| {
                let v: i64 = member.parse().ok()?;
                members.iter().find(|(_, mv)| *mv == v)
            })
            .cloned()
    }

    /// The default value F&O fills in for a property that was not given.
    pub fn default_value(&self, p: &Property) -> Value {
        p.default.clone()
    }

    /// The CSDL document (`$metadata`) for every served set.
    pub fn metadata_xml(&self) -> String {
        let mut x = String::with_capacity(256 * 1024);
        x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n  <edmx:DataServices>\n");
        let _ = writeln!(
            x,
            "    <Schema Namespace=\"{NAMESPACE}\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">"
        );
        for (name, members) in &self.enums {
            let _ = writeln!(x, "      <EnumType Name=\"{name}\">");
            for (m, v) in members {
                let _ = writeln!(x, "        <Member Name=\"{m}\" Value=\"{v}\" />");
            }
            x.push_str("      </EnumType>\n");
        }
        let mut done = std::collections::BTreeSet::new();
        for set in self.sets.iter().filter(|s| s.alias_of.is_none()) {
            if !done.insert(set.type_name.clone()) {
                continue;
            }
            let _ = writeln!(x, "      <EntityType Name=\"{}\">", set.type_name);
            x.push_str("        <Key>\n");
            for k in &set.keys {
                let _ = writeln!(x, "          <PropertyRef Name=\"{k}\" />");
            }
            x.push_str("        </Key>\n");
            for p in &set.props {
                let nullable = if p.nullable {
                    ""
                } else {
                    " Nullable=\"false\""
                };
                let scale = if p.ty == EdmType::Decimal {
                    " Precision=\"32\" Scale=\"Variable\""
                } else {
                    ""
                };
                let _ = writeln!(
                    x,
                    "        <Property Name=\"{}\" Type=\"{}\"{nullable}{scale} />",
                    p.name,
                    p.ty.qualified()
                );
            }
            for (nav, target) in set.navigations() {
                if let Some(t) = self.set(target) {
                    let _ = writeln!(
                        x,
                        "        <NavigationProperty Name=\"{nav}\" Type=\"Collection({NAMESPACE}.{})\" />",
                        t.type_name
                    );
                }
            }
            x.push_str("      </EntityType>\n");
        }
        x.push_str("      <EntityContainer Name=\"Resources\">\n");
        for set in &self.sets {
            let navs = set.navigations();
            if navs.is_empty() {
                let _ = writeln!(
                    x,
                    "        <EntitySet Name=\"{}\" EntityType=\"{NAMESPACE}.{}\" />",
                    set.name, set.type_name
                );
            } else {
                let _ = writeln!(
                    x,
                    "        <EntitySet Name=\"{}\" EntityType=\"{NAMESPACE}.{}\">",
                    set.name, set.type_name
                );
                for (nav, target) in navs {
                    let _ = writeln!(
                        x,
                        "          <NavigationPropertyBinding Path=\"{nav}\" Target=\"{target}\" />"
                    );
                }
                x.push_str("        </EntitySet>\n");
            }
        }
        x.push_str(
            "      </EntityContainer>\n    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n",
        );
        x
    }
}

/// Maximum lengths from the extended data types behind the fields
/// (CustAccount 20, SalesId 20, ItemId 20, CustGroupId 10, CurrencyCode 3,
/// DataAreaId 4, CustRef 60, Email 255, DirPartyName 100, address parts).
/// Values come from the public EDT documentation where known; the rest are
/// approximations listed in the README.
fn max_length(name: &str) -> Option<usize> {
    let exact = match name {
        "dataAreaId" | "DataArea" => Some(4),
        "SalesOrderNumber"
        | "CustomerAccount"
        | "OrderingCustomerAccountNumber"
        | "InvoiceCustomerAccountNumber"
        | "ItemNumber"
        | "InventoryLotId"
        | "CustomerRequisitionNumber"
        | "ProductNumber"
        | "JournalBatchNumber"
        | "InvoiceAccount" => Some(20),
        "CustomerGroupId"
        | "PaymentTermId"
        | "PaymentTermsName"
        | "JournalName"
        | "InventoryWarehouseId"
        | "InventorySiteId"
        | "WarehouseId"
        | "OperationalSiteId"
        | "SalesUnitSymbol"
        | "DeliveryModeCode"
        | "DeliveryTermsCode"
        | "LanguageId"
        | "SalesTaxGroupCode"
        | "SalesTaxItemGroupCode" => Some(10),
        "CurrencyCode" | "SalesCurrencyCode" | "AccountingCurrency" => Some(3),
        "CustomersOrderReference" => Some(60),
        "Email" | "PrimaryContactEmail" => Some(255),
        "PersonFirstName" | "PersonLastName" | "PersonMiddleName" => Some(25),
        "SearchName" => Some(20),
        "PaymentReference" => Some(30),
        "TransactionText" | "Description" | "LineDescription" => Some(60),
        _ => None,
    };
    if exact.is_some() {
        return exact;
    }
    if name.ends_with("Name") && !name.ends_with("GroupName") {
        return Some(100);
    }
    if name.ends_with("Street") {
        return Some(250);
    }
    if name.ends_with("City") {
        return Some(60);
    }
    if name.ends_with("ZipCode") {
        return Some(10);
    }
    if name.ends_with("CountryRegionId") || name.ends_with("StateId") || name.ends_with("CountyId")
    {
        return Some(10);
    }
    None
}

/// Field labels as the F&O client shows them, used in Infolog text.
fn label(name: &str) -> String {
    let known = match name {
        "CustomerGroupId" => "Customer group",
        "CustomerAccount" => "Customer account",
        "OrderingCustomerAccountNumber" => "Customer account",
        "InvoiceCustomerAccountNumber" => "Invoice account",
        "ItemNumber" => "Item number",
        "CurrencyCode" | "SalesCurrencyCode" => "Currency",
        "SalesOrderNumber" => "Sales order",
        "CustomersOrderReference" => "Customer reference",
        "JournalBatchNumber" => "Journal batch number",
        "AccountDisplayValue" => "Account",
        "InventoryWarehouseId" => "Warehouse",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    // Split CamelCase into words, lower-casing all but the first.
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_tables_build() {
        let s = schema();
        assert!(s.set("SalesOrderHeadersV2").is_some());
        assert!(s.set("salesorderheadersv2").is_none());
        let t = s.table("SalesOrderHeader").expect("table");
        assert_eq!(t.keys, vec!["dataAreaId", "SalesOrderNumber"]);
        assert!(t.props.len() >= 172 - 4);
        assert_eq!(s.enum_default("NoYes"), "No");
        assert_eq!(s.enum_default("EcoResProductType"), "Item");
    }
}
