//! The subset of OData `$filter` and `$orderby` that F&O supports: comparisons
//! (`eq ne gt ge lt le`), `and`, `or`, `not`, parentheses, string / number /
//! date / enum / guid / boolean / null literals, and `*` wildcards inside
//! string `eq`/`ne`. Functions (`contains`, `startswith` …) and `has`/`in` are
//! rejected as F&O does. String comparison is case-insensitive, like the SQL
//! collation behind F&O.

use std::cmp::Ordering;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::schema::{EdmType, EntitySet, NAMESPACE, Schema};

/// A `$filter` / `$orderby` that cannot be parsed or applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(msg.into()))
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

/// A literal value in a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `'text'`
    Str(String),
    /// `12.5`
    Num(Decimal),
    /// `true` / `false`
    Bool(bool),
    /// `null`
    Null,
    /// `2024-01-01T00:00:00Z` or `2024-01-01`
    Date(DateTime<Utc>),
    /// `Microsoft.Dynamics.DataEntities.NoYes'Yes'`
    Enum(String),
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A property of the entity.
    Prop(String),
    /// A literal.
    Lit(Literal),
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `x op y`
    Cmp(Operand, Op, Operand),
    /// A bare boolean literal.
    Const(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Raw(String),
    Enum(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, QueryError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if c == '\'' {
            let (text, next) = read_quoted(&chars, i)?;
            out.push(Tok::Str(text));
            i = next;
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | ':' | '+' | '-'))
            {
                i += 1;
            }
            out.push(Tok::Raw(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '/' | '$'))
            {
                i += 1;
            }
            if chars.get(i) == Some(&'\'') {
                // Qualified enum literal `Namespace.Type'Member'`: the member is
                // resolved against the compared property's enum, so the type
                // name in front needs no checking.
                let (member, next) = read_quoted(&chars, i)?;
                i = next;
                out.push(Tok::Enum(member));
            } else {
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
        } else {
            return err(format!(
                "Syntax error: character '{c}' is not valid at position {i}."
            ));
        }
    }
    Ok(out)
}

fn read_quoted(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let mut i = start + 1;
    let mut text = String::new();
    loop {
        match chars.get(i) {
            None => return err("There is an unterminated string literal."),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                text.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((text, i + 1)),
            Some(c) => {
                text.push(*c);
                i += 1;
            }
        }
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.pos) {
            Some(Tok::Ident(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.peek_word().as_deref() == Some("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.peek_word().as_deref() == Some("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.peek_word().as_deref() == Some("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            if self.toks.get(self.pos) != Some(&Tok::RParen) {
                return err("Syntax error: ')' expected.");
            }
            self.pos += 1;
            return Ok(e);
        }
        let left = self.operand()?;
        let op = match self.peek_word().as_deref() {
            Some("eq") => Op::Eq,
            Some("ne") => Op::Ne,
            Some("gt") => Op::Gt,
            Some("ge") => Op::Ge,
            Some("lt") => Op::Lt,
            Some("le") => Op::Le,
            Some(w @ ("has" | "in" | "add" | "sub" | "mul" | "div" | "mod")) => {
                return err(format!("The operator '{w}' is not supported."));
            }
            _ => {
                if let Operand::Lit(Literal::Bool(b)) = left {
                    return Ok(Expr::Const(b));
                }
                return err("Syntax error: a comparison operator was expected.");
            }
        };
        self.pos += 1;
        let right = self.operand()?;
        Ok(Expr::Cmp(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, QueryError> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Str(s)) => Ok(Operand::Lit(Literal::Str(s))),
            Some(Tok::Enum(m)) => Ok(Operand::Lit(Literal::Enum(m))),
            Some(Tok::Raw(r)) => parse_raw(&r).map(Operand::Lit),
            Some(Tok::Ident(w)) => {
                if self.toks.get(self.pos) == Some(&Tok::LParen) {
                    return err(format!(
                        "An unknown function with name '{w}' was found. This may also be a function import or a key lookup on a navigation property, which is not allowed."
                    ));
                }
                match w.to_ascii_lowercase().as_str() {
                    "true" => Ok(Operand::Lit(Literal::Bool(true))),
                    "false" => Ok(Operand::Lit(Literal::Bool(false))),
                    "null" => Ok(Operand::Lit(Literal::Null)),
                    _ => Ok(Operand::Prop(w)),
                }
            }
            _ => err("Syntax error: an expression was expected."),
        }
    }
}

fn parse_raw(r: &str) -> Result<Literal, QueryError> {
    if let Some(d) = parse_date(r) {
        return Ok(Literal::Date(d));
    }
    let num = r.trim_end_matches(['m', 'M', 'd', 'D', 'f', 'F', 'l', 'L']);
    Decimal::from_str(num)
        .or_else(|_| Decimal::from_scientific(num))
        .map(Literal::Num)
        .or_else(|_| err(format!("Syntax error: '{r}' is not a valid literal.")))
}

/// Parses an OData date or date-time literal.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| n.and_utc());
    }
    None
}

/// Parses a `$filter` value.
pub fn parse_filter(s: &str) -> Result<Expr, QueryError> {
    let mut p = Parser {
        toks: tokenize(s)?,
        pos: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return err("Syntax error at the end of the $filter expression.");
    }
    Ok(e)
}

/// Checks that every property a filter names exists on the set.
pub fn check_props(e: &Expr, set: &EntitySet) -> Result<(), QueryError> {
    match e {
        Expr::Or(a, b) | Expr::And(a, b) => {
            check_props(a, set)?;
            check_props(b, set)
        }
        Expr::Not(a) => check_props(a, set),
        Expr::Const(_) => Ok(()),
        Expr::Cmp(a, _, b) => {
            for o in [a, b] {
                if let Operand::Prop(p) = o
                    && set.prop(p).is_none()
                {
                    return err(format!(
                        "Could not find a property named '{p}' on type '{NAMESPACE}.{}'.",
                        set.type_name
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Evaluates a filter against one row.
pub fn eval(e: &Expr, row: &Map<String, Value>, set: &EntitySet, schema: &Schema) -> bool {
    match e {
        Expr::Or(a, b) => eval(a, row, set, schema) || eval(b, row, set, schema),
        Expr::And(a, b) => eval(a, row, set, schema) && eval(b, row, set, schema),
        Expr::Not(a) => !eval(a, row, set, schema),
        Expr::Const(b) => *b,
        Expr::Cmp(l, op, r) => compare_operands(l, *op, r, row, set, schema),
    }
}

fn compare_operands(
    l: &Operand,
    op: Op,
    r: &Operand,
    row: &Map<String, Value>,
    set: &EntitySet,
    schema: &Schema,
) -> bool {
    // Normalise to "property op literal" where possible, flipping the operator.
    let (prop, op, other) = match (l, r) {
        (Operand::Prop(p), o) => (p, op, o),
        (o, Operand::Prop(p)) => (p, flip(op), o),
        (Operand::Lit(a), Operand::Lit(b)) => return lit_cmp(a, b).is_some_and(|o| holds(op, o)),
    };
    let Some(p) = set.prop(prop) else {
        return false;
    };
    // Rows store only written values; absent properties read as their default.
    let value = row.get(prop).unwrap_or(&p.default);
    let other_value = match other {
        Operand::Prop(q) => row
            .get(q)
            .or_else(|| set.prop(q).map(|qp| &qp.default))
            .cloned()
            .unwrap_or(Value::Null),
        Operand::Lit(lit) => lit_to_value(lit),
    };
    if other_value.is_null() || value.is_null() {
        let both = other_value.is_null() && value.is_null();
        return match op {
            Op::Eq => both,
            Op::Ne => !both,
            _ => false,
        };
    }
    if p.ty == EdmType::String
        && matches!(op, Op::Eq | Op::Ne)
        && let (Some(v), Some(pattern)) = (value.as_str(), other_value.as_str())
        && pattern.contains('*')
    {
        let m = wildcard(&v.to_lowercase(), &pattern.to_lowercase());
        return if op == Op::Eq { m } else { !m };
    }
    compare_typed(&p.ty, value, &other_value, schema).is_some_and(|o| holds(op, o))
}

fn flip(op: Op) -> Op {
    match op {
        Op::Gt => Op::Lt,
        Op::Ge => Op::Le,
        Op::Lt => Op::Gt,
        Op::Le => Op::Ge,
        o => o,
    }
}

fn holds(op: Op, o: Ordering) -> bool {
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
    }
}

fn lit_to_value(l: &Literal) -> Value {
    match l {
        Literal::Str(s) | Literal::Enum(s) => Value::String(s.clone()),
        Literal::Num(d) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Null => Value::Null,
        Literal::Date(d) => Value::String(d.to_rfc3339()),
    }
}

fn lit_cmp(a: &Literal, b: &Literal) -> Option<Ordering> {
    match (a, b) {
        (Literal::Num(x), Literal::Num(y)) => Some(x.cmp(y)),
        (Literal::Str(x), Literal::Str(y)) => Some(cmp_ignore_case(x, y)),
        (Literal::Date(x), Literal::Date(y)) => Some(x.cmp(y)),
        (Literal::Bool(x), Literal::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Decimal view of a JSON number or numeric string, without going through f64.
pub fn as_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s)
                .or_else(|_| Decimal::from_scientific(&s))
                .ok()
        }
        Value::String(s) => Decimal::from_str(s).ok(),
        _ => None,
    }
}

/// Compares two stored or literal values as the property's type.
pub fn compare_typed(ty: &EdmType, a: &Value, b: &Value, schema: &Schema) -> Option<Ordering> {
    match ty {
        EdmType::Decimal | EdmType::Int32 | EdmType::Int64 => {
            Some(as_decimal(a)?.cmp(&as_decimal(b)?))
        }
        EdmType::DateTimeOffset => Some(parse_date(a.as_str()?)?.cmp(&parse_date(b.as_str()?)?)),
        EdmType::Enum(name) => {
            let av = schema.enum_member(name, a.as_str()?)?.1;
            let bv = schema.enum_member(name, b.as_str()?)?.1;
            Some(av.cmp(&bv))
        }
        EdmType::String | EdmType::Guid => Some(cmp_ignore_case(a.as_str()?, b.as_str()?)),
    }
}

/// Case-insensitive order (F&O's default collation), without allocating: a query's filter
/// compares against every row of the set.
fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()));
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

/// Case-sensitive glob with `*` only (callers lower-case both sides).
pub fn wildcard(text: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return text == pattern;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(idx) = rest.find(part) {
            rest = &rest[idx + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// Parses `$orderby` into (property, descending) pairs, checking names.
pub fn parse_orderby(s: &str, set: &EntitySet) -> Result<Vec<(String, bool)>, QueryError> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let mut words = item.split_whitespace();
        let Some(name) = words.next() else {
            return err("Syntax error in $orderby.");
        };
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return err("Syntax error in $orderby."),
        };
        if set.prop(name).is_none() {
            return err(format!(
                "Could not find a property named '{name}' on type '{NAMESPACE}.{}'.",
                set.type_name
            ));
        }
        out.push((name.to_string(), desc));
    }
    Ok(out)
}

/// Orders two rows by the given keys.
pub fn order_rows(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    by: &[(String, bool)],
    set: &EntitySet,
    schema: &Schema,
) -> Ordering {
    for (name, desc) in by {
        let Some(p) = set.prop(name) else { continue };
        let va = a.get(name).unwrap_or(&p.default);
        let vb = b.get(name).unwrap_or(&p.default);
        let o = compare_typed(&p.ty, va, vb, schema).unwrap_or(Ordering::Equal);
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schema;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn matches(filter: &str, v: Value) -> bool {
        let s = schema();
        let set = s.set("SalesOrderHeadersV2").expect("set");
        let e = parse_filter(filter).expect("parse");
        check_props(&e, set).expect("props");
        eval(&e, &row(v), set, s)
    }

    #[test]
    fn comparisons_and_logic() {
        let r = json!({"dataAreaId":"usmf","SalesOrderNumber":"000123","OrderTotalAmount":10.50,
            "SalesOrderStatus":"Backorder","RequestedShippingDate":"2024-05-01T12:00:00Z",
            "CustomersOrderReference":"#1001 Shopify"});
        assert!(matches("dataAreaId eq 'USMF'", r.clone()));
        assert!(matches(
            "OrderTotalAmount gt 10.4 and OrderTotalAmount le 10.5",
            r.clone()
        ));
        assert!(!matches("OrderTotalAmount lt 10", r.clone()));
        assert!(matches(
            "(SalesOrderNumber eq 'x' or SalesOrderNumber eq '000123') and dataAreaId ne 'demf'",
            r.clone()
        ));
        assert!(matches(
            "SalesOrderStatus eq Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'",
            r.clone()
        ));
        assert!(matches("SalesOrderStatus eq 'Backorder'", r.clone()));
        assert!(matches(
            "SalesOrderStatus lt Microsoft.Dynamics.DataEntities.SalesStatus'Delivered'",
            r.clone()
        ));
        assert!(matches(
            "RequestedShippingDate ge 2024-05-01T00:00:00Z",
            r.clone()
        ));
        assert!(matches("RequestedShippingDate lt 2024-05-02", r.clone()));
        assert!(matches("CustomersOrderReference eq '*shopify'", r.clone()));
        assert!(matches("CustomersOrderReference eq '*100*'", r.clone()));
        assert!(matches("CustomersOrderReference eq '#1001*'", r.clone()));
        assert!(!matches("CustomersOrderReference eq '1001*'", r.clone()));
        assert!(matches("not (SalesOrderNumber eq '1')", r.clone()));
        assert!(matches("10 lt OrderTotalAmount", r));
    }

    #[test]
    fn rejects_functions_and_unknown_props() {
        assert!(parse_filter("contains(Name,'x')").is_err());
        assert!(parse_filter("Name in ('a','b')").is_err());
        assert!(parse_filter("Name eq 'unterminated").is_err());
        let e = parse_filter("Nope eq 1").expect("parses");
        let s = schema();
        assert!(check_props(&e, s.set("SalesOrderHeadersV2").expect("set")).is_err());
    }

    #[test]
    fn quotes_escape() {
        assert!(matches(
            "CustomersOrderReference eq 'O''Brien'",
            json!({"CustomersOrderReference":"O'Brien"})
        ));
    }

    proptest::proptest! {
        // Client-authored text: whatever arrives, parsing and evaluating
        // must answer (Ok or a 400), never panic.
        #[test]
        fn never_panics(text in "[ -~]{0,80}") {
            if let Ok(e) = parse_filter(&text) {
                let s = schema();
                let set = s.set("SalesOrderLines").expect("set");
                let _ = eval(&e, &row(json!({"ItemNumber": "A", "LineAmount": 1})), set, s);
            }
        }

        #[test]
        fn generated_comparisons_parse(
            prop in proptest::sample::select(vec!["ItemNumber", "LineAmount", "SalesOrderLineStatus", "dataAreaId"]),
            op in proptest::sample::select(vec!["eq", "ne", "gt", "ge", "lt", "le"]),
            lit in "[a-zA-Z0-9*]{0,12}",
            n in -1000i64..1000,
        ) {
            let text = format!("({prop} {op} '{lit}') or LineAmount {op} {n}");
            let e = parse_filter(&text).expect("valid filter");
            let s = schema();
            check_props(&e, s.set("SalesOrderLines").expect("set")).expect("props");
        }

        #[test]
        fn wildcard_matches_its_own_pieces(a in "[a-z]{0,6}", b in "[a-z]{0,6}", c in "[a-z]{0,6}") {
            let text = format!("{a}{b}{c}");
            let outer = format!("{a}*{c}");
            let inner = format!("*{b}*");
            proptest::prop_assert!(wildcard(&text, &outer));
            proptest::prop_assert!(wildcard(&text, &inner));
        }
    }

    #[test]
    fn wildcard_patterns() {
        assert!(wildcard("abcdef", "abc*"));
        assert!(wildcard("abcdef", "*def"));
        assert!(wildcard("abcdef", "*cd*"));
        assert!(wildcard("abcdef", "a*c*f"));
        assert!(!wildcard("abcdef", "a*x*f"));
        assert!(wildcard("abc", "*"));
    }
}
