//! In-memory tables, writes with F&O's business rules, and an undo log so a
//! `$batch` changeset can be rolled back as a unit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Number, Value};

use crate::filter::{as_decimal, parse_date};
use crate::schema::{EdmType, EntitySet, NAMESPACE, Property, Schema, Table, schema};

const FIRST_RECID: i64 = 5_637_144_576;

/// One stored row with its hidden system fields.
#[derive(Debug, Clone)]
pub struct Row {
    /// F&O's RecId, used for the ETag.
    pub recid: i64,
    /// Incremented on each update, used for the ETag.
    pub version: u32,
    /// The values written (given or set by business rules). Properties not
    /// present read as their default: every read path fills them in, so
    /// clients always see all properties, and large stores stay small.
    pub data: Map<String, Value>,
}

impl Row {
    /// Weak ETag in F&O's shape: base64 of `'version,recid'`.
    pub fn etag(&self) -> String {
        let raw = format!("'{},{}'", self.version, self.recid);
        format!(
            "W/\"{}\"",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A change to undo when a changeset fails.
#[derive(Debug)]
pub enum Undo {
    /// A row was inserted: remove it.
    Insert(String, String),
    /// A row was replaced: put the old one back.
    Replace(String, String, Row),
    /// A row was deleted: put it back.
    Delete(String, String, Row),
}

/// Why a write was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// Malformed request (unknown property, wrong type): HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    /// The addressed entity does not exist: HTTP 404.
    #[error("not found")]
    NotFound,
    /// A business rule failed: HTTP 500 with `AxODataWriteException`.
    #[error("Write failed for table row of type '{entity}'. Infolog: {}", infolog(.messages))]
    Write {
        /// X++ entity class name shown by F&O.
        entity: String,
        /// Infolog lines.
        messages: Vec<String>,
    },
}

fn infolog(messages: &[String]) -> String {
    messages
        .iter()
        .map(|m| format!("Warning: {m}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Legal entity seed data.
#[derive(Debug, Clone)]
pub struct Company {
    /// `dataAreaId`, lower case.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Accounting currency.
    pub currency: String,
    /// Country/region.
    pub country: String,
    /// Prefix of customer account numbers.
    pub prefix: String,
}

/// Child tables and the field linking a row to its parent document.
fn parent_link(table: &str) -> Option<&'static str> {
    match table {
        "SalesOrderLine" => Some("SalesOrderNumber"),
        "PaymentJournalLine" => Some("JournalBatchNumber"),
        _ => None,
    }
}

/// (child table, lower-cased dataAreaId, lower-cased parent id).
type ParentKey = (String, String, String);

/// Columns with an equality index: the lookups an integration makes for every document it
/// syncs (F&O serves them from SQL indexes). Without one each lookup scanned the whole
/// table, and the emulator, not the client under test, became the bottleneck of a run of
/// thousands of orders.
const EQ_INDEXED: &[(&str, &str)] = &[
    ("Customer", "PrimaryContactEmail"),
    ("SalesOrderHeader", "CustomersOrderReference"),
    ("SalesOrderHeader", "CustomerRequisitionNumber"),
];

/// (table, column, case-folded value).
type EqKey = (&'static str, &'static str, String);

/// Folds case the way `$filter` string comparison does (per character, so equal under
/// that comparison means equal here).
pub fn fold_case(value: &str) -> String {
    value.chars().flat_map(char::to_lowercase).collect()
}

/// The tables and number sequences.
#[derive(Debug, Default)]
pub struct Store {
    tables: BTreeMap<String, BTreeMap<String, Row>>,
    /// Lines by their document, so large order books stay linear to work with.
    children: HashMap<ParentKey, BTreeSet<String>>,
    /// Row keys by the value of an [`EQ_INDEXED`] column.
    eq_index: HashMap<EqKey, BTreeSet<String>>,
    next_recid: i64,
    sequences: BTreeMap<(String, String), u64>,
    /// Known legal entities.
    pub companies: Vec<Company>,
}

/// Lower-cased composite key string, F&O keys being case-insensitive.
pub fn key_string(keys: &[String], data: &Map<String, Value>) -> String {
    keys.iter()
        .map(|k| match data.get(k) {
            Some(Value::String(s)) => s.to_lowercase(),
            Some(v @ Value::Number(_)) => as_decimal(v)
                .map(|d| d.normalize().to_string())
                .unwrap_or_else(|| v.to_string()),
            Some(v) => v.to_string(),
            None => String::new(),
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// Formats a time as F&O does on the wire.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn today_noon() -> String {
    format!("{}T12:00:00Z", Utc::now().format("%Y-%m-%d"))
}

fn num(d: Decimal) -> Value {
    // Arbitrary-precision serde_json keeps the literal, so decimals stay exact.
    serde_json::from_str::<Number>(&d.normalize().to_string())
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn s(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn entity_class(set: &EntitySet) -> String {
    match set.table.as_str() {
        "Customer" => "CustCustomerV3Entity".into(),
        "SalesOrderHeader" => format!("{}Entity", set.type_name),
        "SalesOrderLine" => "SalesOrderLineV2Entity".into(),
        "ReleasedProduct" => "EcoResReleasedProductV2Entity".into(),
        "PaymentJournalHeader" => "CustomerPaymentJournalHeaderEntity".into(),
        "PaymentJournalLine" => "CustomerPaymentJournalLineEntity".into(),
        "CustomerGroup" => "CustCustomerGroupEntity".into(),
        other => format!("{other}Entity"),
    }
}

fn fk_message(value: &str, label: &str, table: &str) -> String {
    format!("The value '{value}' in field '{label}' is not found in the relating table '{table}'.")
}

fn must_fill(label: &str) -> String {
    format!("Field '{label}' must be filled in.")
}

/// Converts a JSON value from a request to the property's stored form.
pub fn coerce(schema: &Schema, p: &Property, v: &Value) -> Result<Value, WriteError> {
    let bad = |v: &Value| {
        WriteError::BadRequest(format!(
            "Cannot convert the literal '{}' to the expected type '{}'.",
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string()),
            p.ty.qualified()
        ))
    };
    if v.is_null() {
        return Ok(schema.default_value(p));
    }
    match &p.ty {
        EdmType::String => v
            .as_str()
            .map(|s| Value::String(s.into()))
            .ok_or_else(|| bad(v)),
        EdmType::Decimal => {
            // IEEE754Compatible clients send decimals as strings.
            let d = as_decimal(v).ok_or_else(|| bad(v))?;
            match v {
                Value::Number(_) => Ok(v.clone()),
                _ => Ok(num(d)),
            }
        }
        EdmType::Int32 | EdmType::Int64 => {
            let i = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => i64::from_str(s).ok(),
                _ => None,
            }
            .ok_or_else(|| bad(v))?;
            if p.ty == EdmType::Int32 && i32::try_from(i).is_err() {
                return Err(bad(v));
            }
            Ok(Value::Number(i.into()))
        }
        EdmType::DateTimeOffset => {
            let d = v.as_str().and_then(parse_date).ok_or_else(|| bad(v))?;
            Ok(Value::String(fmt_time(d)))
        }
        EdmType::Guid => {
            let g = v
                .as_str()
                .and_then(|s| uuid::Uuid::parse_str(s).ok())
                .ok_or_else(|| bad(v))?;
            Ok(Value::String(g.to_string()))
        }
        EdmType::Enum(name) => {
            let member = match v {
                Value::String(s) => schema.enum_member(name, s),
                Value::Number(n) => schema.enum_member(name, &n.to_string()),
                _ => None,
            };
            member.map(|(m, _)| Value::String(m)).ok_or_else(|| {
                WriteError::BadRequest(format!(
                    "The value '{}' is not valid for enum type '{NAMESPACE}.{name}'.",
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                ))
            })
        }
    }
}

/// Validates a request body against the set and coerces every value.
pub fn parse_body(set: &EntitySet, body: &Value) -> Result<Map<String, Value>, WriteError> {
    let schema = schema();
    let Some(obj) = body.as_object() else {
        return Err(WriteError::BadRequest(
            "The request body must be a JSON object.".into(),
        ));
    };
    let mut out = Map::new();
    for (k, v) in obj {
        if k.starts_with("@odata.") || k.contains("@odata.") {
            continue;
        }
        let Some(p) = set.prop(k) else {
            return Err(WriteError::BadRequest(format!(
                "The property '{k}' does not exist on type '{NAMESPACE}.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                set.type_name
            )));
        };
        out.insert(k.clone(), coerce(schema, p, v)?);
    }
    Ok(out)
}

impl Store {
    /// An empty store with the given legal entities.
    pub fn new(companies: Vec<Company>) -> Store {
        Store {
            tables: BTreeMap::new(),
            children: HashMap::new(),
            eq_index: HashMap::new(),
            next_recid: FIRST_RECID,
            sequences: BTreeMap::new(),
            companies,
        }
    }

    /// Whether a legal entity exists.
    pub fn company(&self, id: &str) -> Option<&Company> {
        self.companies
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(id))
    }

    /// All rows of a table, in key order.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = &Row> {
        self.tables.get(table).into_iter().flat_map(|t| t.values())
    }

    /// A row by its table key string.
    pub fn get(&self, table: &str, key: &str) -> Option<&Row> {
        self.tables.get(table)?.get(key)
    }

    fn parent_key(table: &str, data: &Map<String, Value>) -> Option<ParentKey> {
        let link = parent_link(table)?;
        Some((
            table.to_string(),
            s(data.get("dataAreaId")).to_lowercase(),
            s(data.get(link)).to_lowercase(),
        ))
    }

    /// Stores a row, keeping the parent index current. Every insert and
    /// replace goes through here (and every removal through `remove_row`).
    fn put_row(&mut self, table: &str, key: String, row: Row) {
        let new_parent = Self::parent_key(table, &row.data);
        let new_indexed = Self::indexed_values(table, &row.data);
        let old = self
            .tables
            .entry(table.to_string())
            .or_default()
            .insert(key.clone(), row);
        if let Some(old) = &old {
            for index_key in Self::indexed_values(table, &old.data) {
                if let Some(keys) = self.eq_index.get_mut(&index_key) {
                    keys.remove(&key);
                }
            }
        }
        for index_key in new_indexed {
            self.eq_index
                .entry(index_key)
                .or_default()
                .insert(key.clone());
        }
        if let Some(old_parent) = old.and_then(|o| Self::parent_key(table, &o.data))
            && let Some(set) = self.children.get_mut(&old_parent)
        {
            set.remove(&key);
        }
        if let Some(p) = new_parent {
            self.children.entry(p).or_default().insert(key);
        }
    }

    fn remove_row(&mut self, table: &str, key: &str) -> Option<Row> {
        let old = self.tables.get_mut(table)?.remove(key)?;
        for index_key in Self::indexed_values(table, &old.data) {
            if let Some(keys) = self.eq_index.get_mut(&index_key) {
                keys.remove(key);
            }
        }
        if let Some(p) = Self::parent_key(table, &old.data)
            && let Some(set) = self.children.get_mut(&p)
        {
            set.remove(key);
        }
        Some(old)
    }

    /// The index entries of a row: its string values in [`EQ_INDEXED`] columns.
    fn indexed_values(table: &str, data: &Map<String, Value>) -> Vec<EqKey> {
        EQ_INDEXED
            .iter()
            .filter(|(t, _)| *t == table)
            .filter_map(|&(t, column)| {
                let value = data.get(column)?.as_str()?;
                Some((t, column, fold_case(value)))
            })
            .collect()
    }

    /// The rows of `table` whose `column` equals `value` (case-insensitive), in key order,
    /// or `None` when the column has no index. Rows without the column are not included.
    pub fn rows_where_eq<'a>(
        &'a self,
        table: &str,
        column: &str,
        value: &str,
    ) -> Option<Vec<&'a Row>> {
        let &(t, c) = EQ_INDEXED
            .iter()
            .find(|(t, c)| *t == table && *c == column)?;
        let keys = self.eq_index.get(&(t, c, fold_case(value)));
        Some(
            keys.into_iter()
                .flatten()
                .filter_map(|key| self.get(table, key))
                .collect(),
        )
    }

    /// Lines of one document (`SalesOrderLine` by order, `PaymentJournalLine` by batch).
    pub fn children(&self, table: &str, area: &str, parent: &str) -> Vec<&Row> {
        let k = (
            table.to_string(),
            area.to_lowercase(),
            parent.to_lowercase(),
        );
        self.children
            .get(&k)
            .into_iter()
            .flat_map(|keys| keys.iter())
            .filter_map(|key| self.get(table, key))
            .collect()
    }

    /// Finds a row of `table` whose properties equal the given values
    /// (case-insensitive); a lookup by the full key is direct.
    pub fn find(&self, table: &str, by: &[(&str, &str)]) -> Option<&Row> {
        if let Some(t) = schema().table(table)
            && t.keys.len() == by.len()
            && t.keys.iter().all(|k| by.iter().any(|(n, _)| n == k))
        {
            let data: Map<String, Value> = by
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            return self.get(table, &key_string(&t.keys, &data));
        }
        self.rows(table).find(|r| {
            by.iter().all(|(k, v)| {
                r.data
                    .get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.eq_ignore_ascii_case(v))
            })
        })
    }

    fn exists(&self, table: &str, by: &[(&str, &str)]) -> bool {
        self.find(table, by).is_some()
    }

    /// Next number of a per-company sequence.
    pub fn next_number(&mut self, company: &str, name: &str) -> u64 {
        let n = self
            .sequences
            .entry((company.to_lowercase(), name.to_string()))
            .or_insert(1);
        let v = *n;
        *n += 1;
        v
    }

    /// Makes sure a sequence continues after `at_least` (used by seeding).
    pub fn bump_sequence(&mut self, company: &str, name: &str, at_least: u64) {
        let n = self
            .sequences
            .entry((company.to_lowercase(), name.to_string()))
            .or_insert(1);
        if *n <= at_least {
            *n = at_least + 1;
        }
    }

    /// Inserts a complete row without business rules (seeding, control plane).
    pub fn insert_raw(&mut self, table: &Table, data: Map<String, Value>) {
        let full = data;
        let key = key_string(&table.keys, &full);
        let recid = self.next_recid;
        self.next_recid += 1;
        self.put_row(
            &table.name,
            key,
            Row {
                recid,
                version: 1,
                data: full,
            },
        );
    }

    /// Sets a sales order's status on the header and every line, as
    /// shipping or invoicing in F&O would. Returns false when there is no
    /// such order.
    pub fn set_order_status(
        &mut self,
        area: &str,
        order: &str,
        status: &str,
        processing: &str,
    ) -> bool {
        let Some(table) = schema().table("SalesOrderHeader") else {
            return false;
        };
        let mut key_data = Map::new();
        key_data.insert("dataAreaId".into(), Value::String(area.to_string()));
        key_data.insert("SalesOrderNumber".into(), Value::String(order.to_string()));
        let key = key_string(&table.keys, &key_data);
        let Some(mut header) = self.get("SalesOrderHeader", &key).cloned() else {
            return false;
        };
        header
            .data
            .insert("SalesOrderStatus".into(), Value::String(status.into()));
        header.data.insert(
            "SalesOrderProcessingStatus".into(),
            Value::String(processing.into()),
        );
        header.version += 1;
        self.put_row("SalesOrderHeader", key, header);
        let line_keys: Vec<String> = self
            .children
            .get(&(
                "SalesOrderLine".to_string(),
                area.to_lowercase(),
                order.to_lowercase(),
            ))
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default();
        for k in line_keys {
            if let Some(mut line) = self.get("SalesOrderLine", &k).cloned() {
                line.data
                    .insert("SalesOrderLineStatus".into(), Value::String(status.into()));
                line.version += 1;
                self.put_row("SalesOrderLine", k, line);
            }
        }
        true
    }

    /// Mutable access to a row of a table without lines (control plane
    /// adjustments); rows of line tables change only through `put_row`. Callers must not
    /// change an [`EQ_INDEXED`] column through it.
    pub fn get_mut(&mut self, table: &str, key: &str) -> Option<&mut Row> {
        if parent_link(table).is_some() {
            return None;
        }
        self.tables.get_mut(table)?.get_mut(key)
    }

    /// Rolls back changes in reverse order.
    pub fn undo(&mut self, log: Vec<Undo>) {
        for u in log.into_iter().rev() {
            match u {
                Undo::Insert(t, k) => {
                    self.remove_row(&t, &k);
                }
                Undo::Replace(t, k, row) | Undo::Delete(t, k, row) => {
                    self.put_row(&t, k, row);
                }
            }
        }
    }

    /// Creates an entity (POST). Returns the table key of the new row.
    pub fn create(
        &mut self,
        set: &EntitySet,
        body: &Value,
        default_company: &str,
        undo: &mut Vec<Undo>,
    ) -> Result<String, WriteError> {
        let schema = schema();
        let table = schema.table(&set.table).ok_or(WriteError::NotFound)?;
        if set.table == "OnHand" {
            return Err(WriteError::BadRequest(format!(
                "The entity set '{}' is read-only.",
                set.name
            )));
        }
        let given = parse_body(set, body)?;
        let mut row = Map::new();
        for (k, v) in &given {
            row.insert(k.clone(), v.clone());
        }
        if set.company_scoped() {
            let area = s(given.get("dataAreaId"));
            let area = if area.is_empty() {
                default_company.to_string()
            } else {
                area.to_lowercase()
            };
            if self.company(&area).is_none() {
                return Err(WriteError::Write {
                    entity: entity_class(set),
                    messages: vec![format!("Company '{area}' does not exist.")],
                });
            }
            row.insert("dataAreaId".into(), Value::String(area));
        }
        self.apply_rules(set, &mut row, &given, true)?;
        check_lengths(set, &row)?;
        let key = key_string(&table.keys, &row);
        if self.get(&table.name, &key).is_some() {
            return Err(WriteError::Write {
                entity: entity_class(set),
                messages: vec![format!(
                    "Cannot create a record in {} ({}). The record already exists.",
                    set.type_name,
                    table
                        .keys
                        .iter()
                        .map(|k| s(row.get(k)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )],
            });
        }
        let recid = self.next_recid;
        self.next_recid += 1;
        self.put_row(
            &table.name,
            key.clone(),
            Row {
                recid,
                version: 1,
                data: row,
            },
        );
        undo.push(Undo::Insert(table.name.clone(), key.clone()));
        self.after_write(set, &key, undo);
        Ok(key)
    }

    /// Updates an entity (PATCH merges, PUT replaces non-key properties).
    pub fn update(
        &mut self,
        set: &EntitySet,
        key: &str,
        body: &Value,
        replace: bool,
        undo: &mut Vec<Undo>,
    ) -> Result<(), WriteError> {
        let schema = schema();
        let table = schema.table(&set.table).ok_or(WriteError::NotFound)?;
        let old = self
            .get(&table.name, key)
            .cloned()
            .ok_or(WriteError::NotFound)?;
        let given = parse_body(set, body)?;
        let mut row = old.data.clone();
        if replace {
            for p in &set.props {
                if !set.keys.contains(&p.name) {
                    row.remove(&p.name);
                }
            }
        }
        for (k, v) in &given {
            if set.keys.contains(k) {
                let same = match (v, old.data.get(k)) {
                    (Value::String(a), Some(Value::String(b))) => a.eq_ignore_ascii_case(b),
                    (a, Some(b)) => a == b,
                    _ => false,
                };
                if !same {
                    return Err(WriteError::BadRequest(format!(
                        "The key property '{k}' cannot be changed."
                    )));
                }
                continue;
            }
            row.insert(k.clone(), v.clone());
        }
        self.apply_rules(set, &mut row, &given, false)?;
        check_lengths(set, &row)?;
        undo.push(Undo::Replace(
            table.name.clone(),
            key.to_string(),
            old.clone(),
        ));
        let old_parent = Self::parent_key(&table.name, &old.data);
        self.put_row(
            &table.name,
            key.to_string(),
            Row {
                recid: old.recid,
                version: old.version + 1,
                data: row,
            },
        );
        // A line moved to another order leaves the old order's total stale.
        if let Some((_, area, order)) = old_parent
            && table.name == "SalesOrderLine"
        {
            self.recompute_order_total(&area, &order, undo);
        }
        self.after_write(set, key, undo);
        Ok(())
    }

    /// Deletes an entity; a sales order header takes its lines with it.
    pub fn delete(
        &mut self,
        set: &EntitySet,
        key: &str,
        undo: &mut Vec<Undo>,
    ) -> Result<(), WriteError> {
        let table = set.table.clone();
        let old = self.remove_row(&table, key).ok_or(WriteError::NotFound)?;
        let cascade = match table.as_str() {
            "SalesOrderHeader" => Some(("SalesOrderLine", "SalesOrderNumber")),
            "PaymentJournalHeader" => Some(("PaymentJournalLine", "JournalBatchNumber")),
            _ => None,
        };
        if let Some((child, field)) = cascade {
            let area = s(old.data.get("dataAreaId"));
            let id = s(old.data.get(field));
            let keys: Vec<String> = self
                .children
                .get(&(child.to_string(), area.to_lowercase(), id.to_lowercase()))
                .map(|k| k.iter().cloned().collect())
                .unwrap_or_default();
            for k in keys {
                if let Some(r) = self.remove_row(child, &k) {
                    undo.push(Undo::Delete(child.to_string(), k, r));
                }
            }
        }
        undo.push(Undo::Delete(table.clone(), key.to_string(), old.clone()));
        if table == "SalesOrderLine" {
            let area = s(old.data.get("dataAreaId"));
            let order = s(old.data.get("SalesOrderNumber"));
            self.recompute_order_total(&area, &order, undo);
        }
        Ok(())
    }

    fn after_write(&mut self, set: &EntitySet, key: &str, undo: &mut Vec<Undo>) {
        if set.table == "SalesOrderLine"
            && let Some(r) = self.get("SalesOrderLine", key)
        {
            let area = s(r.data.get("dataAreaId"));
            let order = s(r.data.get("SalesOrderNumber"));
            self.recompute_order_total(&area, &order, undo);
        }
    }

    fn recompute_order_total(&mut self, area: &str, order: &str, undo: &mut Vec<Undo>) {
        let total: Decimal = self
            .children("SalesOrderLine", area, order)
            .into_iter()
            .filter_map(|r| r.data.get("LineAmount").and_then(as_decimal))
            .sum();
        let Some(table) = schema().table("SalesOrderHeader") else {
            return;
        };
        let mut key_data = Map::new();
        key_data.insert("dataAreaId".into(), Value::String(area.into()));
        key_data.insert("SalesOrderNumber".into(), Value::String(order.into()));
        let key = key_string(&table.keys, &key_data);
        if let Some(old) = self.get("SalesOrderHeader", &key).cloned() {
            undo.push(Undo::Replace("SalesOrderHeader".into(), key.clone(), old));
            if let Some(r) = self.get_mut("SalesOrderHeader", &key) {
                r.data.insert("OrderTotalAmount".into(), num(total));
            }
        }
    }

    fn currency_ok(&self, code: &str) -> bool {
        self.exists("Currency", &[("CurrencyCode", code)])
    }

    /// Table-specific defaults and validation, collecting Infolog lines.
    fn apply_rules(
        &mut self,
        set: &EntitySet,
        row: &mut Map<String, Value>,
        given: &Map<String, Value>,
        creating: bool,
    ) -> Result<(), WriteError> {
        let area = s(row.get("dataAreaId"));
        let company_currency = self
            .company(&area)
            .map(|c| c.currency.clone())
            .unwrap_or_else(|| "USD".into());
        let mut msgs = Vec::new();
        let put = |row: &mut Map<String, Value>, k: &str, v: Value| {
            row.insert(k.to_string(), v);
        };
        match set.table.as_str() {
            "Customer" => {
                if creating && s(row.get("CustomerAccount")).is_empty() {
                    let prefix = self
                        .company(&area)
                        .map(|c| c.prefix.clone())
                        .unwrap_or_else(|| "C".into());
                    let n = self.next_number(&area, "Customer");
                    put(
                        row,
                        "CustomerAccount",
                        Value::String(format!("{prefix}-{n:03}")),
                    );
                }
                let group = s(row.get("CustomerGroupId"));
                if group.is_empty() {
                    msgs.push(must_fill("Customer group"));
                } else if !self.exists(
                    "CustomerGroup",
                    &[("dataAreaId", &area), ("CustomerGroupId", &group)],
                ) {
                    msgs.push(fk_message(&group, "Customer group", "Customer groups"));
                }
                let cur = s(row.get("SalesCurrencyCode"));
                if cur.is_empty() {
                    msgs.push(must_fill("Currency"));
                } else if !self.currency_ok(&cur) {
                    msgs.push(fk_message(&cur, "Currency", "Currency"));
                }
                if s(row.get("PartyType")).is_empty() {
                    put(row, "PartyType", Value::String("Organization".into()));
                }
                if s(row.get("InvoiceAccount")).is_empty() {
                    put(row, "InvoiceAccount", Value::String(String::new()));
                }
                let org = s(row.get("OrganizationName"));
                if org.is_empty() {
                    let person = format!(
                        "{} {}",
                        s(row.get("PersonFirstName")),
                        s(row.get("PersonLastName"))
                    )
                    .trim()
                    .to_string();
                    if !person.is_empty() {
                        put(row, "OrganizationName", Value::String(person));
                    }
                }
            }
            "SalesOrderHeader" => {
                if creating && s(row.get("SalesOrderNumber")).is_empty() {
                    let n = self.next_number(&area, "SalesOrder");
                    put(row, "SalesOrderNumber", Value::String(format!("{n:06}")));
                }
                let cust = s(row.get("OrderingCustomerAccountNumber"));
                let customer = self
                    .find(
                        "Customer",
                        &[("dataAreaId", &area), ("CustomerAccount", &cust)],
                    )
                    .map(|r| r.data.clone());
                if cust.is_empty() {
                    msgs.push(must_fill("Customer account"));
                } else if customer.is_none() {
                    msgs.push(fk_message(&cust, "Customer account", "Customers"));
                }
                if s(row.get("InvoiceCustomerAccountNumber")).is_empty() {
                    let inv = customer
                        .as_ref()
                        .map(|c| s(c.get("InvoiceAccount")))
                        .filter(|i| !i.is_empty())
                        .unwrap_or_else(|| cust.clone());
                    put(row, "InvoiceCustomerAccountNumber", Value::String(inv));
                } else {
                    let inv = s(row.get("InvoiceCustomerAccountNumber"));
                    if !self.exists(
                        "Customer",
                        &[("dataAreaId", &area), ("CustomerAccount", &inv)],
                    ) {
                        msgs.push(fk_message(&inv, "Invoice account", "Customers"));
                    }
                }
                if s(row.get("CurrencyCode")).is_empty() {
                    let cur = customer
                        .as_ref()
                        .map(|c| s(c.get("SalesCurrencyCode")))
                        .filter(|c| !c.is_empty())
                        .unwrap_or_else(|| company_currency.clone());
                    put(row, "CurrencyCode", Value::String(cur));
                }
                let cur = s(row.get("CurrencyCode"));
                if !self.currency_ok(&cur) {
                    msgs.push(fk_message(&cur, "Currency", "Currency"));
                }
                if creating {
                    let now = Value::String(fmt_time(Utc::now()));
                    put(row, "OrderCreationDateTime", now);
                    for d in ["RequestedShippingDate", "RequestedReceiptDate"] {
                        if !given.contains_key(d) && set.prop(d).is_some() {
                            put(row, d, Value::String(today_noon()));
                        }
                    }
                    if !given.contains_key("SalesOrderStatus") {
                        put(row, "SalesOrderStatus", Value::String("Backorder".into()));
                    }
                    if !given.contains_key("LanguageId") {
                        put(row, "LanguageId", Value::String("en-us".into()));
                    }
                    if let Some(c) = &customer {
                        if s(row.get("SalesOrderName")).is_empty() {
                            put(
                                row,
                                "SalesOrderName",
                                Value::String(s(c.get("OrganizationName"))),
                            );
                        }
                        let no_address = [
                            "DeliveryAddressStreet",
                            "DeliveryAddressCity",
                            "DeliveryAddressZipCode",
                        ]
                        .iter()
                        .all(|f| s(row.get(*f)).is_empty());
                        if no_address {
                            for (to, from) in [
                                ("DeliveryAddressStreet", "AddressStreet"),
                                ("DeliveryAddressCity", "AddressCity"),
                                ("DeliveryAddressZipCode", "AddressZipCode"),
                                ("DeliveryAddressStateId", "AddressState"),
                                ("DeliveryAddressCountryRegionId", "AddressCountryRegionId"),
                                ("DeliveryAddressName", "OrganizationName"),
                            ] {
                                put(row, to, Value::String(s(c.get(from))));
                            }
                        }
                    }
                }
            }
            "SalesOrderLine" => {
                let order = s(row.get("SalesOrderNumber"));
                if order.is_empty() {
                    msgs.push(must_fill("Sales order"));
                } else if !self.exists(
                    "SalesOrderHeader",
                    &[("dataAreaId", &area), ("SalesOrderNumber", &order)],
                ) {
                    msgs.push(fk_message(&order, "Sales order", "Sales orders"));
                }
                // D365SalesOrderLines names the product, not the item; the
                // seeded products use the same number for both.
                if s(row.get("ItemNumber")).is_empty() && !s(row.get("ProductNumber")).is_empty() {
                    let product = s(row.get("ProductNumber"));
                    put(row, "ItemNumber", Value::String(product));
                }
                let item = s(row.get("ItemNumber"));
                let product = self
                    .find(
                        "ReleasedProduct",
                        &[("dataAreaId", &area), ("ItemNumber", &item)],
                    )
                    .map(|r| r.data.clone());
                if item.is_empty() {
                    msgs.push(must_fill("Item number"));
                } else if product.is_none() {
                    msgs.push(fk_message(&item, "Item number", "Released products"));
                }
                if creating {
                    if s(row.get("InventoryLotId")).is_empty() {
                        let n = self.next_number(&area, "InventTransId");
                        put(
                            row,
                            "InventoryLotId",
                            Value::String(format!("{}-{n:06}", area.to_uppercase())),
                        );
                    }
                    let line_no = row
                        .get("LineNumber")
                        .and_then(as_decimal)
                        .unwrap_or_default();
                    if line_no.is_zero() {
                        let max = self
                            .children("SalesOrderLine", &area, &order)
                            .into_iter()
                            .filter_map(|r| r.data.get("LineNumber").and_then(as_decimal))
                            .max()
                            .unwrap_or_default();
                        put(row, "LineNumber", num(max + Decimal::ONE));
                    }
                    // D365SalesOrderLines keys lines by this sequence number.
                    let seq = row
                        .get("LineCreationSequenceNumber")
                        .and_then(as_decimal)
                        .unwrap_or_default();
                    if seq.is_zero() {
                        let n = row
                            .get("LineNumber")
                            .and_then(as_decimal)
                            .and_then(|d| d.trunc().to_string().parse::<i64>().ok())
                            .unwrap_or(0);
                        put(row, "LineCreationSequenceNumber", Value::from(n));
                    }
                    if !given.contains_key("SalesOrderLineStatus") {
                        put(
                            row,
                            "SalesOrderLineStatus",
                            Value::String("Backorder".into()),
                        );
                    }
                    if let Some(p) = &product {
                        for (to, from) in [
                            ("SalesUnitSymbol", "SalesUnitSymbol"),
                            ("LineDescription", "SearchName"),
                            ("ProductNumber", "ProductNumber"),
                            ("ProductName", "ProductSearchName"),
                        ] {
                            if !given.contains_key(to) {
                                put(row, to, Value::String(s(p.get(from))));
                            }
                        }
                        if !given.contains_key("SalesPrice") {
                            put(
                                row,
                                "SalesPrice",
                                p.get("SalesPrice").cloned().unwrap_or(num(Decimal::ZERO)),
                            );
                        }
                    }
                    if s(row.get("CurrencyCode")).is_empty() {
                        let cur = self
                            .find(
                                "SalesOrderHeader",
                                &[("dataAreaId", &area), ("SalesOrderNumber", &order)],
                            )
                            .map(|h| s(h.data.get("CurrencyCode")))
                            .unwrap_or_else(|| company_currency.clone());
                        put(row, "CurrencyCode", Value::String(cur));
                    }
                }
                if !given.contains_key("LineAmount") {
                    let qty = row
                        .get("OrderedSalesQuantity")
                        .and_then(as_decimal)
                        .unwrap_or_default();
                    let price = row
                        .get("SalesPrice")
                        .and_then(as_decimal)
                        .unwrap_or_default();
                    let disc = row
                        .get("LineDiscountAmount")
                        .and_then(as_decimal)
                        .unwrap_or_default();
                    let pct = row
                        .get("LineDiscountPercentage")
                        .and_then(as_decimal)
                        .unwrap_or_default();
                    let gross = qty * price - disc * qty;
                    let amount = gross - gross * pct / Decimal::ONE_HUNDRED;
                    put(row, "LineAmount", num(amount.round_dp(2)));
                }
                let cur = s(row.get("CurrencyCode"));
                if !cur.is_empty() && !self.currency_ok(&cur) {
                    msgs.push(fk_message(&cur, "Currency", "Currency"));
                }
            }
            "ReleasedProduct" => {
                let item = s(row.get("ItemNumber"));
                if item.is_empty() {
                    msgs.push(must_fill("Item number"));
                }
                if s(row.get("ProductNumber")).is_empty() {
                    put(row, "ProductNumber", Value::String(item.clone()));
                }
                if s(row.get("SearchName")).is_empty() {
                    put(row, "SearchName", Value::String(item));
                }
            }
            "CustomerGroup" if s(row.get("CustomerGroupId")).is_empty() => {
                msgs.push(must_fill("Customer group"));
            }
            "PaymentJournalHeader" => {
                if creating && s(row.get("JournalBatchNumber")).is_empty() {
                    let n = self.next_number(&area, "JournalBatch");
                    put(row, "JournalBatchNumber", Value::String(format!("{n:05}")));
                }
                if s(row.get("JournalName")).is_empty() {
                    put(row, "JournalName", Value::String("CustPay".into()));
                }
            }
            "PaymentJournalLine" => {
                let batch = s(row.get("JournalBatchNumber"));
                if !self.exists(
                    "PaymentJournalHeader",
                    &[("dataAreaId", &area), ("JournalBatchNumber", &batch)],
                ) {
                    msgs.push(fk_message(&batch, "Journal batch number", "Journal"));
                }
                if creating {
                    let line_no = row
                        .get("LineNumber")
                        .and_then(as_decimal)
                        .unwrap_or_default();
                    if line_no.is_zero() {
                        let max = self
                            .children("PaymentJournalLine", &area, &batch)
                            .into_iter()
                            .filter_map(|r| r.data.get("LineNumber").and_then(as_decimal))
                            .max()
                            .unwrap_or_default();
                        put(row, "LineNumber", num(max + Decimal::ONE));
                    }
                    if !given.contains_key("AccountType") {
                        put(row, "AccountType", Value::String("Cust".into()));
                    }
                    if !given.contains_key("TransactionDate") {
                        put(row, "TransactionDate", Value::String(today_noon()));
                    }
                }
                if s(row.get("AccountType")) == "Cust" {
                    let acct = s(row.get("AccountDisplayValue"));
                    match self.find(
                        "Customer",
                        &[("dataAreaId", &area), ("CustomerAccount", &acct)],
                    ) {
                        Some(c) => {
                            let name = s(c.data.get("OrganizationName"));
                            put(row, "CustomerName", Value::String(name));
                        }
                        None if acct.is_empty() => msgs.push(must_fill("Account")),
                        None => msgs.push(fk_message(&acct, "Account", "Customers")),
                    }
                }
                if s(row.get("CurrencyCode")).is_empty() {
                    put(row, "CurrencyCode", Value::String(company_currency.clone()));
                }
                let cur = s(row.get("CurrencyCode"));
                if !self.currency_ok(&cur) {
                    msgs.push(fk_message(&cur, "Currency", "Currency"));
                }
            }
            _ => {}
        }
        if msgs.is_empty() {
            Ok(())
        } else {
            Err(WriteError::Write {
                entity: entity_class(set),
                messages: msgs,
            })
        }
    }
}

fn check_lengths(set: &EntitySet, row: &Map<String, Value>) -> Result<(), WriteError> {
    let mut msgs = Vec::new();
    // Rows hold only written values, so checking them covers every write.
    for (name, value) in row {
        let (Some(p), Some(v)) = (set.prop(name), value.as_str()) else {
            continue;
        };
        let Some(max) = p.max_length else {
            continue;
        };
        let len = v.chars().count();
        if len > max {
            msgs.push(format!(
                "The value in field '{}' ({}) is {len} characters long; the maximum length is {max}.",
                p.label, p.name
            ));
        }
    }
    if msgs.is_empty() {
        Ok(())
    } else {
        Err(WriteError::Write {
            entity: entity_class(set),
            messages: msgs,
        })
    }
}

/// Projects a stored row onto a set's properties (all, or a `$select`).
pub fn project(set: &EntitySet, row: &Row, select: Option<&[String]>) -> Map<String, Value> {
    let schema = schema();
    let mut out = Map::new();
    out.insert("@odata.etag".into(), Value::String(row.etag()));
    match select {
        Some(names) => {
            for n in names {
                if let Some(p) = set.prop(n) {
                    let v = row
                        .data
                        .get(n)
                        .cloned()
                        .unwrap_or_else(|| schema.default_value(p));
                    out.insert(n.clone(), v);
                }
            }
        }
        None => {
            for p in &set.props {
                let v = row
                    .data
                    .get(&p.name)
                    .cloned()
                    .unwrap_or_else(|| schema.default_value(p));
                out.insert(p.name.clone(), v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_shape() {
        let r = Row {
            recid: 5637144577,
            version: 1,
            data: Map::new(),
        };
        assert_eq!(r.etag(), "W/\"JzEsNTYzNzE0NDU3Nyc=\"");
    }

    #[test]
    fn decimals_stay_exact() {
        let s = schema();
        let set = s.set("SalesOrderLines").expect("set");
        let body: Value =
            serde_json::from_str(r#"{"SalesPrice": 19.990000000000000001}"#).expect("json");
        let m = parse_body(set, &body).expect("parse");
        assert_eq!(m["SalesPrice"].to_string(), "19.990000000000000001");
    }
}
