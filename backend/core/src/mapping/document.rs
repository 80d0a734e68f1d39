//! The mapping document: what a tenant saves, JSON with a versioned schema.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The only document schema version this engine reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A mapping for one flow of one integration pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingDocument {
    /// Document schema version; must be [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Flow name (`orders`, `customers`, ...).
    pub flow: String,
    /// Free-text description for the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which source list a many-record target entity iterates, e.g.
    /// `{"SalesOrderLines": "line_items[]"}`; inferred from the rules' paths when absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub each: BTreeMap<String, String>,
    /// Target-field rules, applied in order.
    pub rules: Vec<Rule>,
    /// Named value tables for `lookup` transforms: table name to (key to value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_tables: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// Named currency rate tables for `convert_currency`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rate_tables: BTreeMap<String, RateTable>,
    /// Merge records of a many-record entity that share key fields, e.g. order
    /// lines with the same item and price become one sales order line.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aggregate: BTreeMap<String, Aggregate>,
}

/// How to merge the records of one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Target fields whose equal values make records one.
    pub by: Vec<String>,
    /// Numeric target fields added up; other fields keep the first record's value.
    #[serde(default)]
    pub sum: Vec<String>,
    /// Fields rewritten as 1, 2, 3... after merging (line numbers).
    #[serde(default)]
    pub renumber: Vec<String>,
}

/// Conversion rates into one currency: amount in `from` × rate = amount in `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateTable {
    /// Currency the rates convert into.
    pub to: String,
    /// Source currency code to rate.
    pub rates: BTreeMap<String, Decimal>,
}

/// One target field and how to fill it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable rule id shown in errors; defaults to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `Entity.Field` in the target schema (e.g. `SalesOrderHeadersV2.CustomersOrderReference`),
    /// or `Entity.metafield:ns.key` for Shopify metafield targets.
    pub target: String,
    /// Where the value comes from.
    pub source: Source,
    /// Transform chain, applied left to right.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
}

impl Rule {
    /// The name used in error messages.
    pub fn name(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.target)
    }
}

/// Exactly one source per rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// Path into the source document: `a.b`, `items[]` iterates, `items[0]` indexes;
    /// `$index` is the 1-based position in the iterated list.
    Path(String),
    /// A literal JSON value.
    Const(serde_json::Value),
    /// A CEL expression over `src` (the document) and `item` (the current list element).
    Expr(String),
    /// A Shopify metafield `namespace.key` of the source document.
    Metafield(String),
    /// A Shopify note attribute (cart attribute) by name.
    NoteAttribute(String),
}

/// An operand of `concat`: another path or a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Operand {
    /// Path into the source document.
    Path(String),
    /// Literal.
    Const(serde_json::Value),
}

/// Which piece `split` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitPart {
    /// First name of a full name (everything but the last word).
    FirstName,
    /// Last name of a full name (the last word).
    LastName,
    /// Street of an address line, without the house number.
    Street,
    /// House number of an address line (leading or trailing number token).
    Number,
    /// The `index`th piece when splitting on `separator`.
    Index,
}

/// Decimal rounding strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundMode {
    /// Banker's rounding (D365 default for amounts).
    #[default]
    HalfEven,
    /// Half away from zero.
    HalfUp,
    /// Toward zero.
    Down,
    /// Away from zero.
    Up,
}

/// The fixed transform palette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Parse a date/time, normalise to `timezone` (IANA, default UTC) and format
    /// (chrono `strftime`, default RFC 3339 / ISO 8601).
    DateFormat {
        /// Output format; ISO 8601 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
        /// Target time zone; UTC when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
        /// Output only the date part (`YYYY-MM-DD`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        date_only: bool,
    },
    /// Replace the value by its entry in a named value table.
    Lookup {
        /// Table name in `value_tables`.
        table: String,
        /// Used when the key is absent; otherwise a missing key is an error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<serde_json::Value>,
    },
    /// Append other values, joined by `separator`; empty parts are skipped.
    Concat {
        /// Values after the current one.
        parts: Vec<Operand>,
        /// Joiner.
        #[serde(default)]
        separator: String,
    },
    /// Join a list into text.
    Join {
        /// Joiner.
        #[serde(default)]
        separator: String,
    },
    /// Keep one piece of the text.
    Split {
        /// Which piece.
        part: SplitPart,
        /// Separator for `index`; whitespace otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        separator: Option<String>,
        /// Piece number for `index` (0-based).
        #[serde(default)]
        index: usize,
    },
    /// Strip surrounding whitespace.
    Trim,
    /// Upper-case.
    Upper,
    /// Lower-case.
    Lower,
    /// Cut to `max` characters, or to the target's maximum length when absent.
    Truncate {
        /// Explicit maximum.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
    },
    /// Round a decimal to `scale` places.
    Round {
        /// Decimal places.
        scale: u32,
        /// Strategy.
        #[serde(default)]
        mode: RoundMode,
    },
    /// Sum a list of numbers (e.g. a line's tax amounts).
    Sum,
    /// Multiply by the rate of `from` currency in a rate table.
    ConvertCurrency {
        /// Rate table name in `rate_tables`.
        table: String,
        /// Where the source currency comes from.
        from: Operand,
    },
    /// Replace an empty value (missing, null, empty text or list) by `value`.
    Default {
        /// Replacement.
        value: serde_json::Value,
    },
    /// Fail when the value is empty.
    Required,
}

impl Transform {
    /// The palette name, as written in `op`.
    pub fn op(&self) -> &'static str {
        match self {
            Transform::DateFormat { .. } => "date_format",
            Transform::Lookup { .. } => "lookup",
            Transform::Concat { .. } => "concat",
            Transform::Join { .. } => "join",
            Transform::Split { .. } => "split",
            Transform::Trim => "trim",
            Transform::Upper => "upper",
            Transform::Lower => "lower",
            Transform::Truncate { .. } => "truncate",
            Transform::Round { .. } => "round",
            Transform::Sum => "sum",
            Transform::ConvertCurrency { .. } => "convert_currency",
            Transform::Default { .. } => "default",
            Transform::Required => "required",
        }
    }
}
