//! Compiled mappings and `apply`: index-following only, no name lookups.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::document::SplitPart;
use super::expr::{
    CompiledExpr, EvalBatch, EvalGroup, ExprLimits, cel_to_json, eval_batch, num_to_cel,
};
use super::source::{Node, Proj, parse};
use super::value::Val;

/// Where an access starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    Root,
    Item,
}

/// One step of a resolved path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Object field: projection slot, and the name for objects kept whole.
    Field(usize, Box<str>),
    Index(usize),
    Each,
}

/// A resolved path.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub base: Base,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub(crate) enum CSource {
    Path(Access),
    Const(Val<'static>),
    Expr(usize),
    Index,
    /// An element of a name/value list chosen by matching fields (metafields,
    /// note attributes); the only data-dependent search, over the document's own list.
    Keyed {
        list: Vec<Step>,
        match_steps: Vec<(Vec<Step>, String)>,
        value: Vec<Step>,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum COperand {
    Path(Access),
    Const(Val<'static>),
}

#[derive(Debug, Clone)]
pub(crate) enum CTransform {
    DateFormat {
        format: Option<String>,
        tz: Option<chrono_tz::Tz>,
        date_only: bool,
    },
    Lookup {
        table: String,
        map: Arc<HashMap<String, Val<'static>>>,
        default: Option<Val<'static>>,
    },
    Concat {
        parts: Vec<COperand>,
        separator: String,
    },
    Join(String),
    Split {
        part: SplitPart,
        separator: Option<String>,
        index: usize,
    },
    Trim,
    Upper,
    Lower,
    Truncate(usize),
    Round(u32, RoundingStrategy),
    Sum,
    Convert {
        table: String,
        rates: Arc<HashMap<String, Decimal>>,
        from: COperand,
    },
    Default(Val<'static>),
    Required,
}

impl CTransform {
    fn op(&self) -> &'static str {
        match self {
            CTransform::DateFormat { .. } => "date_format",
            CTransform::Lookup { .. } => "lookup",
            CTransform::Concat { .. } => "concat",
            CTransform::Join(_) => "join",
            CTransform::Split { .. } => "split",
            CTransform::Trim => "trim",
            CTransform::Upper => "upper",
            CTransform::Lower => "lower",
            CTransform::Truncate(_) => "truncate",
            CTransform::Round(..) => "round",
            CTransform::Sum => "sum",
            CTransform::Convert { .. } => "convert_currency",
            CTransform::Default(_) => "default",
            CTransform::Required => "required",
        }
    }
}

/// Conversion of the final value to the target field's type.
#[derive(Debug, Clone)]
pub(crate) enum Coerce {
    Text(Option<usize>),
    Dec { as_string: bool },
    Int,
    Bool,
    DateTime,
    Enum(Arc<Vec<String>>),
    List,
    Any,
}

#[derive(Debug, Clone)]
pub(crate) struct MetaTarget {
    pub namespace: String,
    pub key: String,
    pub ty: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct CRule {
    pub name: String,
    pub target: String,
    pub slot: usize,
    pub source: CSource,
    pub transforms: Vec<CTransform>,
    pub coerce: Coerce,
    pub meta: Option<MetaTarget>,
}

#[derive(Debug, Clone)]
pub(crate) struct CEntity {
    pub name: Arc<str>,
    pub many: bool,
    pub each: Option<Access>,
    pub each_segs_len: usize,
    pub rules: Vec<usize>,
    pub fields: Vec<Arc<str>>,
    pub meta_slot: Option<usize>,
    /// Fields of the iterated element that expressions read as `item`.
    pub item_mask: CelMask,
    /// Record merging, for many-record entities.
    pub aggregate: Option<CAggregate>,
}

/// Compiled `aggregate`: field slots.
#[derive(Debug, Clone)]
pub(crate) struct CAggregate {
    pub by: Vec<usize>,
    pub sum: Vec<usize>,
    pub renumber: Vec<usize>,
}

fn add_vals(a: &Option<Val<'static>>, b: &Option<Val<'static>>) -> Option<Val<'static>> {
    match (a, b) {
        (None | Some(Val::Null), _) => b.clone(),
        (_, None | Some(Val::Null)) => a.clone(),
        (Some(Val::Int(x)), Some(Val::Int(y))) => Some(
            x.checked_add(*y)
                .map_or_else(|| Val::Dec(Decimal::from(*x) + Decimal::from(*y)), Val::Int),
        ),
        (Some(x), Some(y)) => match (x.as_decimal(), y.as_decimal()) {
            (Some(dx), Some(dy)) => {
                let sum = dx.checked_add(dy).unwrap_or(dx);
                // Shopify targets carry decimals as text: keep the encoding.
                Some(if matches!(x, Val::Str(_)) {
                    Val::Str(Cow::Owned(sum.to_string()))
                } else {
                    Val::Dec(sum)
                })
            }
            _ => a.clone(),
        },
    }
}

fn aggregate(recs: Vec<Record>, agg: &CAggregate) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::with_capacity(recs.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for rec in recs {
        let mut key = String::new();
        for &s in &agg.by {
            if let Some(v) = rec.get(s).and_then(Option::as_ref) {
                key.push_str(&v.to_json().to_string());
            }
            key.push('\u{1f}');
        }
        match index.get(&key) {
            Some(&i) => {
                for &s in &agg.sum {
                    let merged = add_vals(&out[i][s], &rec[s]);
                    out[i][s] = merged;
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(rec);
            }
        }
    }
    for (i, r) in out.iter_mut().enumerate() {
        for &s in &agg.renumber {
            r[s] = Some(Val::Int(i64::try_from(i + 1).unwrap_or(i64::MAX)));
        }
    }
    out
}

/// Which parts of the source an expression variable needs: converting only those
/// keeps the per-document cost of expressions proportional to what they read.
#[derive(Debug, Clone, Default)]
pub(crate) struct CelMask {
    pub all: bool,
    pub children: Vec<(usize, Box<str>, CelMask)>,
}

impl CelMask {
    pub(crate) fn add(&mut self, steps: &[Step]) {
        match steps.first() {
            None => self.all = true,
            Some(Step::Field(slot, name)) => {
                let i = match self.children.iter().position(|c| c.0 == *slot) {
                    Some(i) => i,
                    None => {
                        self.children
                            .push((*slot, name.clone(), CelMask::default()));
                        self.children.len() - 1
                    }
                };
                self.children[i].2.add(&steps[1..]);
            }
            Some(_) => self.all = true,
        }
    }
}

/// Names of the output's entities and fields, shared by every output.
#[derive(Debug)]
pub(crate) struct Layout {
    pub entities: Vec<(Arc<str>, bool, Vec<Arc<str>>)>,
}

/// A mapping ready to apply: every name resolved, every table and expression built.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    pub(crate) flow: String,
    pub(crate) source_name: String,
    pub(crate) target_name: String,
    pub(crate) proj: Proj,
    pub(crate) entities: Vec<CEntity>,
    pub(crate) rules: Vec<CRule>,
    pub(crate) exprs: Vec<CompiledExpr>,
    /// Fields of the document that expressions read as `src`.
    pub(crate) src_mask: CelMask,
    pub(crate) layout: Arc<Layout>,
    pub(crate) limits: ExprLimits,
    #[allow(dead_code)]
    pub(crate) has_index: bool,
}

/// A source document parsed for one compiled mapping.
#[derive(Debug, Clone)]
pub struct SourceDoc<'a> {
    root: Node<'a>,
}

/// Why applying a mapping to one document failed; names the rule, field and value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
pub enum ApplyError {
    /// The source is not valid JSON.
    #[error("source document is not valid JSON: {0}")]
    Source(String),
    /// A rule failed.
    #[error("rule {rule:?} -> {target}{}: {reason} (value {value})", record.map(|r| format!(" [record {r}]")).unwrap_or_default())]
    Rule {
        /// Rule id.
        rule: String,
        /// Target `Entity.Field`.
        target: String,
        /// Record number for many-record entities (0-based).
        record: Option<usize>,
        /// The offending value, shortened.
        value: String,
        /// What went wrong.
        reason: String,
    },
    /// Expressions could not run (time limit, no evaluator).
    #[error("expressions: {0}")]
    Expr(String),
}

type Record = Vec<Option<Val<'static>>>;

/// The target document: per entity one record or a list of records.
#[derive(Debug, Clone)]
pub struct Output {
    layout: Arc<Layout>,
    records: Vec<Vec<Record>>,
}

impl Output {
    /// The document as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The document as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Records of one entity (one for single-record entities).
    pub fn records(&self, entity: &str) -> Vec<serde_json::Value> {
        self.layout
            .entities
            .iter()
            .position(|e| &*e.0 == entity)
            .map(|i| {
                self.records[i]
                    .iter()
                    .map(|r| {
                        serde_json::to_value(RecordSer(&self.layout.entities[i].2, r))
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

struct RecordSer<'r>(&'r [Arc<str>], &'r Record);

impl Serialize for RecordSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self
            .1
            .iter()
            .filter(|v| matches!(v, Some(x) if *x != Val::Null))
            .count();
        let mut m = s.serialize_map(Some(n))?;
        for (name, v) in self.0.iter().zip(self.1) {
            if let Some(v) = v
                && *v != Val::Null
            {
                m.serialize_entry(&**name, v)?;
            }
        }
        m.end()
    }
}

struct ManySer<'r>(&'r [Arc<str>], &'r [Record]);

impl Serialize for ManySer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.1.len()))?;
        for r in self.1 {
            q.serialize_element(&RecordSer(self.0, r))?;
        }
        q.end()
    }
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.records.len()))?;
        for ((name, many, fields), recs) in self.layout.entities.iter().zip(&self.records) {
            if *many {
                m.serialize_entry(&**name, &ManySer(fields, recs))?;
            } else if let Some(r) = recs.first() {
                m.serialize_entry(&**name, &RecordSer(fields, r))?;
            }
        }
        m.end()
    }
}

impl<'a> SourceDoc<'a> {
    pub(crate) fn root(&self) -> &Node<'a> {
        &self.root
    }
}

impl CompiledMapping {
    /// Flow this mapping is for.
    pub fn flow(&self) -> &str {
        &self.flow
    }

    /// Source and target schema names it was compiled against.
    pub fn schemas(&self) -> (&str, &str) {
        (&self.source_name, &self.target_name)
    }

    /// Number of compiled rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Parses JSON text, keeping only the fields this mapping reads.
    pub fn parse<'a>(&self, json: &'a str) -> Result<SourceDoc<'a>, ApplyError> {
        parse(json, &self.proj)
            .map(|root| SourceDoc { root })
            .map_err(|e| ApplyError::Source(e.to_string()))
    }

    /// Views an already parsed JSON value through this mapping's projection.
    pub fn view<'a>(&self, v: &'a serde_json::Value) -> SourceDoc<'a> {
        SourceDoc {
            root: Node::from_value(v, &self.proj),
        }
    }
}

/// Applies a compiled mapping to a parsed source document.
pub fn apply(m: &CompiledMapping, src: &SourceDoc<'_>) -> Result<Output, ApplyError> {
    run(m, &src.root, &mut NoTrace)
}

/// Parses JSON text and applies the mapping (the runner's hot path).
pub fn apply_json(m: &CompiledMapping, json: &str) -> Result<Output, ApplyError> {
    let doc = m.parse(json)?;
    apply(m, &doc)
}

/// Applies the mapping to a `serde_json::Value`.
pub fn apply_value(m: &CompiledMapping, v: &serde_json::Value) -> Result<Output, ApplyError> {
    apply(m, &m.view(v))
}

/// Observer of one rule's evaluation (preview). The default no-op version is
/// compiled away for `apply`.
pub(crate) trait Tracer {
    const ON: bool;
    fn begin(&mut self, _rule: &CRule, _record: Option<usize>, _source: &Val<'_>) {}
    fn step(&mut self, _op: &'static str, _out: &Val<'_>) {}
    fn end(&mut self, _result: Result<&Val<'_>, &ApplyError>) {}
}

struct NoTrace;
impl Tracer for NoTrace {
    const ON: bool = false;
}

fn walk<'a>(mut n: &Node<'a>, steps: &[Step]) -> Val<'a> {
    for (i, st) in steps.iter().enumerate() {
        match st {
            Step::Field(slot, name) => n = n.field(*slot, name),
            Step::Index(k) => {
                n = match n {
                    Node::Arr(a) => a.get(*k).unwrap_or(&Node::Missing),
                    _ => &Node::Missing,
                }
            }
            Step::Each => {
                let rest = &steps[i + 1..];
                let Node::Arr(a) = n else { return Val::Null };
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    match walk(x, rest) {
                        Val::List(inner) if rest.contains(&Step::Each) => out.extend(inner),
                        v => out.push(v),
                    }
                }
                return Val::List(out);
            }
        }
    }
    Val::from_node(n)
}

fn node_at<'n, 'a>(mut n: &'n Node<'a>, steps: &[Step]) -> &'n Node<'a> {
    for st in steps {
        n = match st {
            Step::Field(slot, name) => n.field(*slot, name),
            Step::Index(k) => match n {
                Node::Arr(a) => a.get(*k).unwrap_or(&Node::Missing),
                _ => &Node::Missing,
            },
            Step::Each => return &Node::Missing,
        };
    }
    n
}

struct Env<'n, 'a> {
    root: &'n Node<'a>,
    item: Option<&'n Node<'a>>,
    index: usize,
}

impl<'n, 'a> Env<'n, 'a> {
    fn access(&self, a: &Access) -> Val<'a> {
        let start = match a.base {
            Base::Root => self.root,
            Base::Item => self.item.unwrap_or(&Node::Missing),
        };
        walk(start, &a.steps)
    }
    fn operand(&self, o: &COperand) -> Val<'a> {
        match o {
            COperand::Path(a) => self.access(a),
            COperand::Const(v) => v.clone(),
        }
    }
}

fn node_to_cel_masked(n: &Node<'_>, mask: &CelMask, p: &Proj, depth: usize) -> cel::Value {
    use cel::objects::{Key, Map};
    if mask.all || depth > 64 {
        return node_to_cel(n, p, depth);
    }
    let mut m = HashMap::with_capacity(mask.children.len());
    for (slot, name, child) in &mask.children {
        let v = match n {
            Node::Obj(_) | Node::Map(_) => n.field(*slot, name),
            _ => &Node::Missing,
        };
        let cp = p.children.get(*slot).unwrap_or(p);
        m.insert(
            Key::String(Arc::new(name.to_string())),
            node_to_cel_masked(v, child, cp, depth + 1),
        );
    }
    cel::Value::Map(Map { map: Arc::new(m) })
}

fn node_to_cel(n: &Node<'_>, p: &Proj, depth: usize) -> cel::Value {
    use cel::objects::{Key, Map};
    if depth > 64 {
        return cel::Value::Null;
    }
    match n {
        Node::Missing | Node::Null => cel::Value::Null,
        Node::Bool(b) => cel::Value::Bool(*b),
        Node::Num(s) => num_to_cel(s),
        Node::Str(s) => cel::Value::String(Arc::new(s.to_string())),
        Node::Arr(a) => cel::Value::List(Arc::new(
            a.iter().map(|x| node_to_cel(x, p, depth + 1)).collect(),
        )),
        Node::Obj(slots) => {
            let mut m = HashMap::with_capacity(slots.len());
            for ((k, c), v) in p.keys.iter().zip(&p.children).zip(slots) {
                if *v != Node::Missing {
                    m.insert(
                        Key::String(Arc::new(k.to_string())),
                        node_to_cel(v, c, depth + 1),
                    );
                }
            }
            cel::Value::Map(Map { map: Arc::new(m) })
        }
        Node::Map(entries) => {
            let m: HashMap<Key, cel::Value> = entries
                .iter()
                .map(|(k, v)| {
                    (
                        Key::String(Arc::new(k.to_string())),
                        node_to_cel(v, p, depth + 1),
                    )
                })
                .collect();
            cel::Value::Map(Map { map: Arc::new(m) })
        }
    }
}

fn cel_to_val(v: &cel::Value) -> Val<'static> {
    match v {
        cel::Value::Null => Val::Null,
        cel::Value::Bool(b) => Val::Bool(*b),
        cel::Value::Int(i) => Val::Int(*i),
        cel::Value::UInt(u) => {
            i64::try_from(*u).map_or_else(|_| Val::Dec(Decimal::from(*u)), Val::Int)
        }
        cel::Value::String(s) => Val::Str(Cow::Owned(s.to_string())),
        cel::Value::List(l) => Val::List(l.iter().map(cel_to_val).collect()),
        other => Val::from_json(&cel_to_json(other, 0)),
    }
}

/// Items of one entity: `(item node, 1-based index)`.
fn items<'n, 'a>(
    m: &CompiledMapping,
    e: &CEntity,
    root: &'n Node<'a>,
) -> Vec<Option<&'n Node<'a>>> {
    match (&e.each, e.many) {
        (Some(a), true) => match node_at(root, &a.steps) {
            Node::Arr(v) => v.iter().map(Some).collect(),
            _ => Vec::new(),
        },
        _ => {
            let _ = m;
            vec![None]
        }
    }
}

fn rule_err(
    r: &CRule,
    record: Option<usize>,
    v: &Val<'_>,
    reason: impl Into<String>,
) -> ApplyError {
    ApplyError::Rule {
        rule: r.name.clone(),
        target: r.target.clone(),
        record,
        value: v.describe(),
        reason: reason.into(),
    }
}

pub(crate) fn run<T: Tracer>(
    m: &CompiledMapping,
    root: &Node<'_>,
    tr: &mut T,
) -> Result<Output, ApplyError> {
    // Expressions first, in one batch on an evaluator thread: their inputs are
    // source data only, so nothing below depends on their order.
    let mut expr_results: HashMap<(usize, usize), Result<Val<'static>, String>> = HashMap::new();
    if !m.exprs.is_empty() {
        let src = node_to_cel_masked(root, &m.src_mask, &m.proj, 0);
        let mut groups = Vec::new();
        let mut keys = Vec::new();
        for e in &m.entities {
            let expr_rules: Vec<(usize, &CompiledExpr)> = e
                .rules
                .iter()
                .filter_map(|&ri| match m.rules[ri].source {
                    CSource::Expr(xi) => Some((ri, &m.exprs[xi])),
                    _ => None,
                })
                .collect();
            if expr_rules.is_empty() {
                continue;
            }
            let item_proj = e.each.as_ref().map(|a| proj_at(&m.proj, &a.steps));
            for (k, it) in items(m, e, root).into_iter().enumerate() {
                let item = match (it, item_proj) {
                    (Some(n), Some(p)) => Some(node_to_cel_masked(n, &e.item_mask, p, 0)),
                    _ => None,
                };
                keys.extend(expr_rules.iter().map(|&(ri, _)| (ri, k)));
                groups.push(EvalGroup {
                    item,
                    programs: expr_rules
                        .iter()
                        .map(|&(_, x)| Arc::clone(x.program()))
                        .collect(),
                });
            }
        }
        let bounded = m.exprs.iter().all(CompiledExpr::bounded);
        let out = eval_batch(
            EvalBatch {
                src,
                groups,
                bounded,
            },
            m.limits.timeout,
        )
        .map_err(|e| ApplyError::Expr(e.to_string()))?;
        for (k, r) in keys.into_iter().zip(out) {
            expr_results.insert(k, r.map(|v| cel_to_val(&v)));
        }
    }

    let mut records = Vec::with_capacity(m.entities.len());
    for e in &m.entities {
        let its = items(m, e, root);
        let mut recs = Vec::with_capacity(its.len());
        for (k, item) in its.iter().enumerate() {
            let env = Env {
                root,
                item: *item,
                index: k + 1,
            };
            let recno = if e.many { Some(k) } else { None };
            let mut rec: Record = vec![None; e.fields.len()];
            for &ri in &e.rules {
                let r = &m.rules[ri];
                let res = eval_rule(m, r, &env, recno, &expr_results, (ri, k), tr);
                match res {
                    Ok(v) => {
                        if let Some(meta) = &r.meta {
                            if v != Val::Null {
                                push_meta(&mut rec[r.slot], meta, v);
                            }
                        } else {
                            rec[r.slot] = Some(v);
                        }
                    }
                    Err(err) if T::ON => {
                        let _ = err;
                    }
                    Err(err) => return Err(err),
                }
            }
            recs.push(rec);
        }
        if let Some(agg) = &e.aggregate {
            recs = aggregate(recs, agg);
        }
        records.push(recs);
    }
    Ok(Output {
        layout: Arc::clone(&m.layout),
        records,
    })
}

fn proj_at<'p>(p: &'p Proj, steps: &[Step]) -> &'p Proj {
    let mut p = p;
    for st in steps {
        if let Step::Field(slot, _) = st {
            match p.children.get(*slot) {
                Some(c) => p = c,
                None => return p,
            }
        }
    }
    p
}

fn push_meta(slot: &mut Option<Val<'static>>, meta: &MetaTarget, v: Val<'static>) {
    let value = match v.as_text() {
        Some(t) => t.into_owned(),
        None => v.to_json().to_string(),
    };
    let obj = serde_json::json!({
        "namespace": meta.namespace, "key": meta.key, "type": meta.ty, "value": value,
    });
    match slot {
        Some(Val::List(l)) => l.push(Val::Json(obj)),
        _ => *slot = Some(Val::List(vec![Val::Json(obj)])),
    }
}

#[allow(clippy::too_many_arguments)]
fn eval_rule<'a, T: Tracer>(
    m: &CompiledMapping,
    r: &CRule,
    env: &Env<'_, 'a>,
    recno: Option<usize>,
    exprs: &HashMap<(usize, usize), Result<Val<'static>, String>>,
    key: (usize, usize),
    tr: &mut T,
) -> Result<Val<'static>, ApplyError> {
    let _ = m;
    let v: Val<'a> = match &r.source {
        CSource::Path(a) => env.access(a),
        CSource::Const(c) => c.clone(),
        CSource::Index => Val::Int(i64::try_from(env.index).unwrap_or(i64::MAX)),
        CSource::Expr(_) => match exprs.get(&key) {
            Some(Ok(v)) => v.clone(),
            Some(Err(e)) => {
                let err = rule_err(r, recno, &Val::Null, format!("expression failed: {e}"));
                if T::ON {
                    tr.begin(r, recno, &Val::Null);
                    tr.end(Err(&err));
                }
                return Err(err);
            }
            None => Val::Null,
        },
        CSource::Keyed {
            list,
            match_steps,
            value,
        } => {
            let mut found = Val::Null;
            if let Node::Arr(a) = node_at(env.root, list) {
                for el in a {
                    let hit = match_steps.iter().all(|(st, want)| match node_at(el, st) {
                        Node::Str(s) => s == want,
                        _ => false,
                    });
                    if hit {
                        found = Val::from_node(node_at(el, value));
                        break;
                    }
                }
            }
            found
        }
    };
    if T::ON {
        tr.begin(r, recno, &v);
    }
    let mut v = v;
    for t in &r.transforms {
        v = match transform(t, v, env) {
            Ok(x) => x,
            Err((val, reason)) => {
                let err = rule_err(r, recno, &val, format!("{}: {reason}", t.op()));
                if T::ON {
                    tr.end(Err(&err));
                }
                return Err(err);
            }
        };
        if T::ON {
            tr.step(t.op(), &v);
        }
    }
    match coerce(&r.coerce, v) {
        Ok(out) => {
            if T::ON {
                tr.end(Ok(&out));
            }
            Ok(out)
        }
        Err((val, reason)) => {
            let err = rule_err(r, recno, &val, reason);
            if T::ON {
                tr.end(Err(&err));
            }
            Err(err)
        }
    }
}

type TErr<'a> = (Val<'a>, String);

fn text_of<'a>(v: &Val<'a>) -> Result<Cow<'a, str>, String> {
    match v {
        Val::Str(s) => Ok(s.clone()),
        other => other
            .as_text()
            .map(|c| Cow::Owned(c.into_owned()))
            .ok_or_else(|| "expected text".to_owned()),
    }
}

fn parse_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d);
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&n).fixed_offset());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| Utc.from_utc_datetime(&n).fixed_offset())
}

fn transform<'a>(t: &CTransform, v: Val<'a>, env: &Env<'_, 'a>) -> Result<Val<'a>, TErr<'a>> {
    use std::fmt::Write;
    Ok(match t {
        CTransform::DateFormat {
            format,
            tz,
            date_only,
        } => {
            if v == Val::Null {
                return Ok(v);
            }
            let Some(s) = v.as_text() else {
                return Err((v, "expected a date/time".into()));
            };
            let Some(dt) = parse_datetime(&s) else {
                return Err((v.clone(), "not a date/time".into()));
            };
            let mut out = String::with_capacity(32);
            let res = match (tz, format, date_only) {
                (Some(z), Some(f), _) => write!(out, "{}", dt.with_timezone(z).format(f)),
                (Some(z), None, true) => write!(out, "{}", dt.with_timezone(z).format("%Y-%m-%d")),
                (Some(z), None, false) => {
                    out = dt
                        .with_timezone(z)
                        .to_rfc3339_opts(SecondsFormat::Secs, true);
                    Ok(())
                }
                (None, Some(f), _) => write!(out, "{}", dt.with_timezone(&Utc).format(f)),
                (None, None, true) => write!(out, "{}", dt.with_timezone(&Utc).format("%Y-%m-%d")),
                (None, None, false) => {
                    out = dt
                        .with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::Secs, true);
                    Ok(())
                }
            };
            if res.is_err() {
                return Err((v, "format failed".into()));
            }
            Val::Str(Cow::Owned(out))
        }
        CTransform::Lookup {
            table,
            map,
            default,
        } => {
            if v == Val::Null {
                // Nothing to look up: a missing source stays missing unless defaulted.
                return Ok(default.clone().unwrap_or(Val::Null));
            }
            let key = match v.as_text() {
                Some(k) => k,
                None => return Err((v, "expected a single value".into())),
            };
            match map.get(key.as_ref()) {
                Some(x) => x.clone(),
                None => match default {
                    Some(d) => d.clone(),
                    None => {
                        let reason = format!("no entry in value table {table:?}");
                        return Err((v, reason));
                    }
                },
            }
        }
        CTransform::Concat { parts, separator } => {
            let mut out = String::new();
            let mut first = true;
            let mut add = |s: &str| {
                if !s.is_empty() {
                    if !first {
                        out.push_str(separator);
                    }
                    out.push_str(s);
                    first = false;
                }
            };
            if let Some(t) = v.as_text() {
                add(&t);
            }
            for p in parts {
                if let Some(t) = env.operand(p).as_text() {
                    add(&t);
                }
            }
            Val::Str(Cow::Owned(out))
        }
        CTransform::Join(sep) => match &v {
            Val::List(l) => {
                let parts: Vec<String> = l
                    .iter()
                    .filter_map(|x| x.as_text().map(Cow::into_owned))
                    .filter(|s| !s.is_empty())
                    .collect();
                Val::Str(Cow::Owned(parts.join(sep)))
            }
            Val::Null => Val::Null,
            other => match other.as_text() {
                Some(t) => Val::Str(Cow::Owned(t.into_owned())),
                None => return Err((v, "expected a list".into())),
            },
        },
        CTransform::Split {
            part,
            separator,
            index,
        } => {
            if v == Val::Null {
                return Ok(v);
            }
            let s = text_of(&v).map_err(|e| (v.clone(), e))?;
            let words: Vec<&str> = s.split_whitespace().collect();
            let out: String = match part {
                SplitPart::FirstName => match words.len() {
                    0 => String::new(),
                    1 => words[0].to_owned(),
                    n => words[..n - 1].join(" "),
                },
                SplitPart::LastName => match words.len() {
                    0 | 1 => String::new(),
                    n => words[n - 1].to_owned(),
                },
                SplitPart::Street | SplitPart::Number => {
                    let is_num = |w: &str| w.chars().next().is_some_and(|c| c.is_ascii_digit());
                    let (street, number) = match (words.first(), words.last()) {
                        (Some(f), _) if words.len() > 1 && is_num(f) => {
                            (words[1..].join(" "), (*f).to_owned())
                        }
                        (_, Some(l)) if words.len() > 1 && is_num(l) => {
                            (words[..words.len() - 1].join(" "), (*l).to_owned())
                        }
                        _ => (words.join(" "), String::new()),
                    };
                    let street = street.trim_end_matches(',').to_owned();
                    if *part == SplitPart::Street {
                        street
                    } else {
                        number
                    }
                }
                SplitPart::Index => s
                    .split(separator.as_deref().unwrap_or(" "))
                    .nth(*index)
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
            };
            Val::Str(Cow::Owned(out))
        }
        CTransform::Trim | CTransform::Upper | CTransform::Lower => {
            if v == Val::Null {
                return Ok(v);
            }
            let s = text_of(&v).map_err(|e| (v.clone(), e))?;
            Val::Str(match t {
                CTransform::Trim => match s {
                    Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
                    Cow::Owned(o) => Cow::Owned(o.trim().to_owned()),
                },
                CTransform::Upper => Cow::Owned(s.to_uppercase()),
                _ => Cow::Owned(s.to_lowercase()),
            })
        }
        CTransform::Truncate(max) => {
            if v == Val::Null {
                return Ok(v);
            }
            let s = text_of(&v).map_err(|e| (v.clone(), e))?;
            match s.char_indices().nth(*max) {
                None => Val::Str(s),
                Some((cut, _)) => Val::Str(Cow::Owned(s[..cut].to_owned())),
            }
        }
        CTransform::Round(scale, strat) => {
            if v == Val::Null {
                return Ok(v);
            }
            match v.as_decimal() {
                Some(d) => Val::Dec(d.round_dp_with_strategy(*scale, *strat)),
                None => return Err((v, "not a number".into())),
            }
        }
        CTransform::Sum => {
            let items: &[Val<'a>] = match &v {
                Val::List(l) => l,
                Val::Null => &[],
                _ => std::slice::from_ref(&v),
            };
            let mut total = Decimal::ZERO;
            for x in items {
                if *x == Val::Null {
                    continue;
                }
                let Some(d) = x.as_decimal() else {
                    return Err((x.clone(), "not a number".into()));
                };
                total = match total.checked_add(d) {
                    Some(t) => t,
                    None => return Err((x.clone(), "sum overflows".into())),
                };
            }
            Val::Dec(total)
        }
        CTransform::Convert { table, rates, from } => {
            if v == Val::Null {
                return Ok(v);
            }
            let cur = env.operand(from);
            let code = cur
                .as_text()
                .map(|c| c.trim().to_ascii_uppercase())
                .unwrap_or_default();
            let Some(rate) = rates.get(&code) else {
                let reason = format!("no rate for currency {code:?} in rate table {table:?}");
                return Err((cur.into_owned(), reason));
            };
            let Some(d) = v.as_decimal() else {
                return Err((v, "not a number".into()));
            };
            match d.checked_mul(*rate) {
                Some(x) => Val::Dec(x),
                None => return Err((v, "conversion overflows".into())),
            }
        }
        CTransform::Default(d) => {
            if v.is_empty() {
                d.clone()
            } else {
                v
            }
        }
        CTransform::Required => {
            if v.is_empty() {
                return Err((v, "required value is empty".into()));
            }
            v
        }
    })
}

fn coerce(c: &Coerce, v: Val<'_>) -> Result<Val<'static>, TErr<'static>> {
    if v == Val::Null {
        return Ok(Val::Null);
    }
    let fail = |v: Val<'_>, why: String| Err((v.into_owned(), why));
    Ok(match c {
        Coerce::Text(max) => {
            let Some(s) = v.as_text() else {
                return fail(v, "a list or object cannot fill a text field".into());
            };
            // A string has at least as many bytes as characters: count only when needed.
            if let Some(mx) = max
                && s.len() > *mx
                && s.chars().nth(*mx).is_some()
            {
                let why = format!("longer than the target's {mx} characters (add truncate)");
                return fail(v, why);
            }
            Val::Str(Cow::Owned(s.into_owned()))
        }
        Coerce::Dec { as_string } => match v.as_decimal() {
            Some(d) if *as_string => Val::Str(Cow::Owned(d.to_string())),
            Some(d) => Val::Dec(d),
            None => return fail(v, "not a decimal".into()),
        },
        Coerce::Int => match &v {
            Val::Int(i) => Val::Int(*i),
            _ => match v.as_decimal() {
                Some(d) if d.fract().is_zero() => match i64::try_from(d) {
                    Ok(i) => Val::Int(i),
                    Err(_) => return fail(v, "integer out of range".into()),
                },
                _ => return fail(v, "not an integer".into()),
            },
        },
        Coerce::Bool => match &v {
            Val::Bool(b) => Val::Bool(*b),
            _ => match v
                .as_text()
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("true" | "yes" | "1") => Val::Bool(true),
                Some("false" | "no" | "0") => Val::Bool(false),
                _ => return fail(v, "not a boolean".into()),
            },
        },
        Coerce::DateTime => {
            let Some(s) = v.as_text() else {
                return fail(v, "not a date/time".into());
            };
            if parse_datetime(&s).is_none() {
                return fail(v, "not an ISO 8601 date/time".into());
            }
            Val::Str(Cow::Owned(s.into_owned()))
        }
        Coerce::Enum(members) => {
            let text = match &v {
                Val::Bool(b) if members.iter().any(|m| m == "Yes") => {
                    Cow::Borrowed(if *b { "Yes" } else { "No" })
                }
                _ => match v.as_text() {
                    Some(t) => t,
                    None => return fail(v, "not an enumeration member".into()),
                },
            };
            if !members.is_empty() && !members.iter().any(|m| *m == text) {
                let why = format!("not one of {}", members.join(", "));
                return fail(v, why);
            }
            Val::Str(Cow::Owned(text.into_owned()))
        }
        Coerce::List => match v {
            Val::List(l) => Val::List(l.into_iter().map(Val::into_owned).collect()),
            other => Val::List(vec![other.into_owned()]),
        },
        Coerce::Any => v.into_owned(),
    })
}
