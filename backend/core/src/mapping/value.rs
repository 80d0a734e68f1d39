//! Runtime values flowing through a rule's transform chain.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;

use super::source::Node;

/// A value being mapped.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    /// No value (missing or `null`).
    Null,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Exact decimal.
    Dec(Decimal),
    /// Text.
    Str(Cow<'a, str>),
    /// List.
    List(Vec<Val<'a>>),
    /// Anything else (objects from lookups or expressions).
    Json(serde_json::Value),
}

impl<'a> Val<'a> {
    /// Whether `default`/`required` treat the value as empty.
    pub fn is_empty(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Str(s) => s.trim().is_empty(),
            Val::List(l) => l.is_empty(),
            Val::Json(serde_json::Value::Null) => true,
            _ => false,
        }
    }

    /// Reads a parsed source node.
    pub(crate) fn from_node(n: &Node<'a>) -> Val<'a> {
        match n {
            Node::Missing | Node::Null => Val::Null,
            Node::Bool(b) => Val::Bool(*b),
            Node::Num(s) => number(s),
            Node::Str(s) => Val::Str(s.clone()),
            Node::Arr(a) => Val::List(a.iter().map(Val::from_node).collect()),
            Node::Obj(_) | Node::Map(_) => Val::Json(node_to_json(n)),
        }
    }

    /// Converts a JSON constant.
    pub fn from_json(v: &serde_json::Value) -> Val<'static> {
        use serde_json::Value as V;
        match v {
            V::Null => Val::Null,
            V::Bool(b) => Val::Bool(*b),
            V::Number(n) => number(&n.to_string()).into_owned(),
            V::String(s) => Val::Str(Cow::Owned(s.clone())),
            V::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            V::Object(_) => Val::Json(v.clone()),
        }
    }

    /// Detaches from the source buffer.
    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Int(i) => Val::Int(i),
            Val::Dec(d) => Val::Dec(d),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::List(l) => Val::List(l.into_iter().map(Val::into_owned).collect()),
            Val::Json(j) => Val::Json(j),
        }
    }

    /// Text view of a scalar (numbers in canonical form); `None` for lists and objects.
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Val::Null => Some(Cow::Borrowed("")),
            Val::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Val::Int(i) => Some(Cow::Owned(i.to_string())),
            Val::Dec(d) => Some(Cow::Owned(d.to_string())),
            Val::Str(s) => Some(Cow::Borrowed(s)),
            Val::Json(serde_json::Value::String(s)) => Some(Cow::Borrowed(s)),
            Val::List(_) | Val::Json(_) => None,
        }
    }

    /// Decimal view (numbers and numeric text).
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Val::Int(i) => Some(Decimal::from(*i)),
            Val::Dec(d) => Some(*d),
            Val::Str(s) => parse_decimal(s.trim()),
            Val::Json(serde_json::Value::Number(n)) => parse_decimal(&n.to_string()),
            _ => None,
        }
    }

    /// JSON form (decimals as numbers).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Short, bounded rendering for error messages.
    pub fn describe(&self) -> String {
        let mut s = match self {
            Val::Str(s) => format!("{s:?}"),
            other => other.to_json().to_string(),
        };
        if s.len() > 80 {
            let mut cut = 77;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
        }
        s
    }
}

pub(crate) fn parse_decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

fn number(s: &str) -> Val<'static> {
    if let Ok(i) = s.parse::<i64>() {
        return Val::Int(i);
    }
    match parse_decimal(s) {
        Some(d) => Val::Dec(d),
        None => Val::Str(Cow::Owned(s.to_owned())),
    }
}

fn node_to_json(n: &Node<'_>) -> serde_json::Value {
    use serde_json::Value as V;
    match n {
        Node::Missing | Node::Null => V::Null,
        Node::Bool(b) => V::Bool(*b),
        Node::Num(s) => serde_json::from_str(s).unwrap_or(V::Null),
        Node::Str(s) => V::String(s.to_string()),
        Node::Arr(a) => V::Array(a.iter().map(node_to_json).collect()),
        // A projected object has lost its names; expose only what an expression kept.
        Node::Obj(_) => V::Object(serde_json::Map::new()),
        Node::Map(m) => V::Object(
            m.iter()
                .map(|(k, v)| (k.to_string(), node_to_json(v)))
                .collect(),
        ),
    }
}

impl Serialize for Val<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => s.serialize_none(),
            Val::Bool(b) => s.serialize_bool(*b),
            Val::Int(i) => s.serialize_i64(*i),
            Val::Dec(d) => rust_decimal::serde::arbitrary_precision::serialize(d, s),
            Val::Str(v) => s.serialize_str(v),
            Val::List(l) => l.serialize(s),
            Val::Json(j) => j.serialize(s),
        }
    }
}

impl fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}
