//! `compile`: checks a mapping document against both schemas and resolves every
//! name (paths to slots, tables to maps, expressions to programs) so that
//! `apply` only follows indices.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use rust_decimal::{Decimal, RoundingStrategy};

use super::document::{
    MappingDocument, Operand, RoundMode, SCHEMA_VERSION, Source, SplitPart, Transform,
};
use super::engine::{
    Access, Base, CAggregate, CEntity, COperand, CRule, CSource, CTransform, CelMask, Coerce,
    CompiledMapping, Layout, MetaTarget, Step,
};
use super::expr::{CompiledExpr, DEFAULT_LIMITS, ExprLimits, Root, compile_expr};
use super::source::Proj;
use super::value::Val;
use crate::model::CurrencyCode;
use crate::schema::{FieldDef, FieldType, Schema, System};
use crate::suggest::similarity;

/// One problem found while compiling; `compile` reports all of them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("rule {rule:?} (target {target}){}: {reason}", path.as_ref().map(|p| format!(", path {p:?}")).unwrap_or_default())]
pub struct MappingError {
    /// Rule id (or target when the rule has no id); `document` for document-level problems.
    pub rule: String,
    /// The rule's target.
    pub target: String,
    /// The offending path, table or expression, when there is one.
    pub path: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// Static type of a value during checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ty {
    base: FieldType,
    list: bool,
}

impl Ty {
    const ANY: Ty = Ty {
        base: FieldType::Any,
        list: false,
    };
    fn scalar(base: FieldType) -> Ty {
        Ty { base, list: false }
    }
    fn name(self) -> String {
        let b = format!("{:?}", self.base).to_lowercase();
        if self.list { format!("list of {b}") } else { b }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Each,
    Index(usize),
}

fn parse_path(p: &str) -> Result<Vec<Seg>, String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.len() > 512 {
        return Err("path longer than 512 characters".into());
    }
    let mut out = Vec::new();
    for part in p.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@')
        {
            return Err(format!("invalid segment {part:?}"));
        }
        out.push(Seg::Field(name.to_owned()));
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| format!("unclosed [ in {part:?}"))?;
            let inner = &rest[1..close];
            if inner.is_empty() {
                out.push(Seg::Each);
            } else {
                let n: usize = inner
                    .parse()
                    .map_err(|_| format!("invalid index {inner:?} in {part:?}"))?;
                out.push(Seg::Index(n));
            }
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("unexpected {rest:?} in {part:?}"));
            }
        }
    }
    Ok(out)
}

/// A path resolved against the source schema.
struct Resolved {
    steps: Vec<Step>,
    leaf: FieldDef,
    /// Positions in `steps` of the `Each` steps.
    eaches: Vec<usize>,
}

fn did_you_mean(name: &str, f: &FieldDef) -> String {
    let best = f
        .fields
        .iter()
        .flatten()
        .map(|(k, _)| (similarity(name, k), k))
        .filter(|(s, _)| *s > 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!(" (did you mean {k:?}?)"),
        None => String::new(),
    }
}

/// Resolves `segs` from `start` in the schema, registering fields in `proj`.
fn resolve(segs: &[Seg], start: &FieldDef, proj: &mut Proj) -> Result<Resolved, String> {
    let mut cur = start;
    let mut p = proj;
    let mut steps = Vec::new();
    let mut eaches = Vec::new();
    let mut at = String::from("document");
    for seg in segs {
        match seg {
            Seg::Field(name) => {
                if cur.ty != FieldType::Object {
                    let hint = if cur.ty == FieldType::Array {
                        " (a list: add [] or [n])"
                    } else {
                        ""
                    };
                    return Err(
                        format!("{at} is a {:?}, it has no field {name:?}{hint}", cur.ty)
                            .to_lowercase(),
                    );
                }
                let f = cur.field(name).ok_or_else(|| {
                    format!("unknown field {name:?} in {at}{}", did_you_mean(name, cur))
                })?;
                let slot = p.slot(name);
                steps.push(Step::Field(slot, name.as_str().into()));
                p = &mut p.children[slot];
                cur = f;
                at = name.clone();
            }
            Seg::Each | Seg::Index(_) => {
                if cur.ty != FieldType::Array {
                    return Err(format!("{at} is not a list"));
                }
                cur = cur
                    .items
                    .as_deref()
                    .ok_or_else(|| format!("{at} has no element type"))?;
                if let Seg::Index(n) = seg {
                    steps.push(Step::Index(*n));
                } else {
                    eaches.push(steps.len());
                    steps.push(Step::Each);
                }
            }
        }
    }
    Ok(Resolved {
        steps,
        leaf: cur.clone(),
        eaches,
    })
}

fn ty_of(f: &FieldDef, list: bool) -> Ty {
    match f.ty {
        FieldType::Array => Ty {
            base: f.items.as_ref().map_or(FieldType::Any, |i| i.ty),
            list: true,
        },
        b => Ty { base: b, list },
    }
}

fn ty_of_json(v: &serde_json::Value) -> Ty {
    use serde_json::Value as V;
    match v {
        V::Null => Ty::ANY,
        V::Bool(_) => Ty::scalar(FieldType::Boolean),
        V::Number(n) if n.is_i64() || n.is_u64() => Ty::scalar(FieldType::Integer),
        V::Number(_) => Ty::scalar(FieldType::Decimal),
        V::String(_) => Ty::scalar(FieldType::String),
        V::Array(_) => Ty {
            base: FieldType::Any,
            list: true,
        },
        V::Object(_) => Ty::scalar(FieldType::Object),
    }
}

fn texty(t: Ty) -> bool {
    !t.list
        && matches!(
            t.base,
            FieldType::String
                | FieldType::Any
                | FieldType::Enum
                | FieldType::Datetime
                | FieldType::Date
        )
}

fn numeric(t: Ty) -> bool {
    !t.list
        && matches!(
            t.base,
            FieldType::Decimal | FieldType::Integer | FieldType::Any | FieldType::String
        )
}

fn scalar(t: Ty) -> bool {
    !t.list && t.base != FieldType::Object
}

/// Iteration of a many-record entity: the list's access from the root.
struct Iter {
    path: String,
    /// Root-relative segments up to and including the `[]`.
    segs: Vec<Seg>,
    access: Vec<Step>,
    elem: FieldDef,
}

struct Ctx<'s> {
    source: &'s Schema,
    proj: Proj,
    errors: Vec<MappingError>,
    limits: ExprLimits,
    src_mask: CelMask,
    /// Item mask of the entity whose rules are being compiled.
    item_mask: CelMask,
}

impl Ctx<'_> {
    fn err(&mut self, rule: &str, target: &str, path: Option<&str>, reason: impl Into<String>) {
        self.errors.push(MappingError {
            rule: rule.to_owned(),
            target: target.to_owned(),
            path: path.map(str::to_owned),
            reason: reason.into(),
        });
    }
}

/// Compiles with the default expression limits.
pub fn compile(
    doc: &MappingDocument,
    source: &Schema,
    target: &Schema,
) -> Result<CompiledMapping, Vec<MappingError>> {
    compile_with(doc, source, target, DEFAULT_LIMITS)
}

/// Compiles a mapping document against its source and target schemas, reporting
/// every problem found.
pub fn compile_with(
    doc: &MappingDocument,
    source: &Schema,
    target: &Schema,
    limits: ExprLimits,
) -> Result<CompiledMapping, Vec<MappingError>> {
    let mut cx = Ctx {
        source,
        proj: Proj::default(),
        errors: Vec::new(),
        limits,
        src_mask: CelMask::default(),
        item_mask: CelMask::default(),
    };
    if doc.schema_version != SCHEMA_VERSION {
        cx.err(
            "document",
            "-",
            None,
            format!(
                "schema_version {} is not supported (expected {SCHEMA_VERSION})",
                doc.schema_version
            ),
        );
        return Err(cx.errors);
    }
    if doc.rules.len() > 2000 {
        cx.err("document", "-", None, "more than 2000 rules");
        return Err(cx.errors);
    }

    // Target entities in schema order; records get one slot per targeted field.
    let target_entities = target.entities();
    let mut entities: Vec<CEntity> = Vec::new();
    let mut entity_index: HashMap<&str, usize> = HashMap::new();
    let mut rule_entity: Vec<Option<(usize, String)>> = Vec::with_capacity(doc.rules.len());
    for rule in &doc.rules {
        let (ent, field) = match rule.target.split_once('.') {
            Some(x) => x,
            None => {
                cx.err(
                    rule.name(),
                    &rule.target,
                    None,
                    "target must be Entity.Field",
                );
                rule_entity.push(None);
                continue;
            }
        };
        let Some(&(ename, many, _)) = target_entities.iter().find(|(n, _, _)| *n == ent) else {
            let known: Vec<&str> = target_entities.iter().map(|e| e.0).collect();
            cx.err(
                rule.name(),
                &rule.target,
                None,
                format!(
                    "unknown target entity {ent:?} (this flow writes {})",
                    known.join(", ")
                ),
            );
            rule_entity.push(None);
            continue;
        };
        let idx = *entity_index.entry(ename).or_insert_with(|| {
            entities.push(CEntity {
                name: ename.into(),
                many,
                each: None,
                each_segs_len: 0,
                rules: Vec::new(),
                fields: Vec::new(),
                meta_slot: None,
                item_mask: CelMask::default(),
                aggregate: None,
            });
            entities.len() - 1
        });
        rule_entity.push(Some((idx, field.to_owned())));
    }

    // Decide what each many-record entity iterates.
    let mut iters: Vec<Option<Iter>> = Vec::new();
    for e in &entities {
        let explicit = doc.each.get(&*e.name).cloned();
        let inferred = || {
            doc.rules
                .iter()
                .find_map(|r| match (&r.source, r.target.split_once('.')) {
                    (Source::Path(p), Some((en, _))) if en == &*e.name && p.contains("[]") => {
                        p.find("[]").map(|i| p[..i + 2].to_owned())
                    }
                    _ => None,
                })
        };
        let path = if e.many {
            explicit.or_else(inferred)
        } else {
            None
        };
        let it = match path {
            None => {
                if e.many {
                    cx.err(
                        "document",
                        &e.name,
                        None,
                        format!("{} holds many records but no rule reads a list (use a path with [] or set each)", e.name),
                    );
                }
                None
            }
            Some(p) => match parse_path(&p).and_then(|segs| {
                if segs.last() != Some(&Seg::Each)
                    || segs.iter().filter(|s| **s == Seg::Each).count() != 1
                {
                    return Err("each must end with one []".to_owned());
                }
                let r = resolve(&segs, &source.root, &mut cx.proj)?;
                Ok(Iter {
                    path: p.clone(),
                    access: r.steps[..r.steps.len() - 1].to_vec(),
                    segs,
                    elem: r.leaf,
                })
            }) {
                Ok(it) => Some(it),
                Err(reason) => {
                    cx.err("document", &e.name, Some(&p), reason);
                    None
                }
            },
        };
        iters.push(it);
    }
    for (e, it) in entities.iter_mut().zip(&iters) {
        if let Some(it) = it {
            e.each = Some(Access {
                base: Base::Root,
                steps: it.access.clone(),
            });
            e.each_segs_len = it.segs.len();
        }
    }

    // Rules.
    let mut rules = Vec::new();
    let mut exprs: Vec<CompiledExpr> = Vec::new();
    let mut has_index = false;
    for (ri, rule) in doc.rules.iter().enumerate() {
        let Some((ei, field)) = rule_entity[ri].clone() else {
            continue;
        };
        let name = rule.name().to_owned();
        let tgt = rule.target.clone();
        let many = entities[ei].many;
        let iter = iters[ei].as_ref();

        // Target field.
        let tfields = target_entities
            .iter()
            .find(|(n, _, _)| **n == *entities[ei].name)
            .map(|e| e.2);
        let (tdef, meta) = if let Some(mf) = field.strip_prefix("metafield:") {
            if target.system != System::Shopify {
                cx.err(&name, &tgt, None, "metafield targets exist only on Shopify");
                continue;
            }
            match mf.split_once('.') {
                Some((ns, key)) if !ns.is_empty() && !key.is_empty() => (
                    FieldDef::of(FieldType::Any),
                    Some((ns.to_owned(), key.to_owned())),
                ),
                _ => {
                    cx.err(
                        &name,
                        &tgt,
                        None,
                        "metafield target must be metafield:namespace.key",
                    );
                    continue;
                }
            }
        } else {
            match tfields.and_then(|f| f.get(&field)) {
                Some(d) => (d.clone(), None),
                None => {
                    let hint = tfields
                        .map(|f| {
                            let fake = FieldDef::object(f.clone());
                            did_you_mean(&field, &fake)
                        })
                        .unwrap_or_default();
                    cx.err(
                        &name,
                        &tgt,
                        None,
                        format!(
                            "unknown target field {field:?} in {}{hint}",
                            entities[ei].name
                        ),
                    );
                    continue;
                }
            }
        };

        // Source.
        cx.item_mask = std::mem::take(&mut entities[ei].item_mask);
        let compiled_source =
            compile_source(&mut cx, &name, &tgt, &rule.source, many, iter, &mut exprs);
        entities[ei].item_mask = std::mem::take(&mut cx.item_mask);
        let Some((csrc, mut ty)) = compiled_source else {
            continue;
        };
        if matches!(csrc, CSource::Index) {
            has_index = true;
        }

        // Transforms.
        let mut cts = Vec::new();
        let mut ok = true;
        for (ti, t) in rule.transforms.iter().enumerate() {
            match compile_transform(&mut cx, doc, &name, &tgt, t, ty, &tdef, many, iter) {
                Ok((ct, out)) => {
                    cts.push(ct);
                    ty = out;
                }
                Err(reason) => {
                    cx.err(
                        &name,
                        &tgt,
                        None,
                        format!("transform #{} {}: {reason}", ti + 1, t.op()),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }

        // Final value against the target field.
        let coerce = match coerce_for(&tdef, ty, target) {
            Ok(c) => c,
            Err(reason) => {
                cx.err(&name, &tgt, None, reason);
                continue;
            }
        };

        let ent = &mut entities[ei];
        let slot_name = if meta.is_some() {
            "metafields".to_owned()
        } else {
            field.clone()
        };
        let slot = match ent.fields.iter().position(|f| **f == *slot_name) {
            Some(_) if meta.is_none() => {
                cx.err(
                    &name,
                    &tgt,
                    None,
                    "another rule already writes this target field",
                );
                continue;
            }
            Some(s) => s,
            None => {
                ent.fields.push(slot_name.as_str().into());
                ent.fields.len() - 1
            }
        };
        if meta.is_some() {
            ent.meta_slot = Some(slot);
        }
        ent.rules.push(rules.len());
        rules.push(CRule {
            name,
            target: tgt,
            slot,
            source: csrc,
            transforms: cts,
            coerce,
            meta: meta.map(|(namespace, key)| MetaTarget {
                namespace,
                key,
                ty: metafield_type(ty),
            }),
        });
    }

    // Record merging.
    for (ent, agg) in &doc.aggregate {
        let Some(e) = entities.iter_mut().find(|e| *e.name == **ent) else {
            cx.err(
                "document",
                ent,
                None,
                format!("aggregate names {ent:?}, which no rule writes"),
            );
            continue;
        };
        if !e.many {
            cx.err(
                "document",
                ent,
                None,
                format!("{ent} holds one record; only lists aggregate"),
            );
            continue;
        }
        let slots = |names: &[String],
                     numeric: bool,
                     what: &str,
                     errors: &mut Vec<MappingError>|
         -> Vec<usize> {
            let mut out = Vec::new();
            for n in names {
                match e.fields.iter().position(|f| **f == **n) {
                    Some(i) => {
                        let is_num = e.rules.iter().any(|&ri| rules_slot_numeric(&rules, ri, i));
                        if numeric && !is_num {
                            errors.push(MappingError {
                                rule: "document".into(),
                                target: format!("{ent}.{n}"),
                                path: None,
                                reason: format!("aggregate {what} field {n} is not numeric"),
                            });
                        }
                        out.push(i);
                    }
                    None => errors.push(MappingError {
                        rule: "document".into(),
                        target: format!("{ent}.{n}"),
                        path: None,
                        reason: format!("aggregate {what} field {n} has no rule"),
                    }),
                }
            }
            out
        };
        let by = slots(&agg.by, false, "by", &mut cx.errors);
        let sum = slots(&agg.sum, true, "sum", &mut cx.errors);
        let renumber = slots(&agg.renumber, true, "renumber", &mut cx.errors);
        if agg.by.is_empty() {
            cx.err(
                "document",
                ent,
                None,
                "aggregate needs at least one by field",
            );
        }
        e.aggregate = Some(CAggregate { by, sum, renumber });
    }

    // Required target fields of every written entity.
    for e in &entities {
        if let Some((_, _, fields)) = target_entities.iter().find(|(n, _, _)| **n == *e.name) {
            for (fname, f) in fields.iter() {
                let full = format!("{}.{fname}", e.name);
                // Count rules that failed to compile too: their error is already reported.
                if f.required
                    && fname != "dataAreaId"
                    && !doc.rules.iter().any(|r| r.target == full)
                {
                    cx.err(
                        "document",
                        &format!("{}.{fname}", e.name),
                        None,
                        format!("required target field {}.{fname} has no rule", e.name),
                    );
                }
            }
        }
    }

    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    let mut proj = cx.proj;
    proj.finish();
    let layout = Arc::new(Layout {
        entities: entities
            .iter()
            .map(|e| (Arc::clone(&e.name), e.many, e.fields.clone()))
            .collect(),
    });
    Ok(CompiledMapping {
        flow: doc.flow.clone(),
        source_name: source.name.clone(),
        target_name: target.name.clone(),
        proj,
        entities,
        rules,
        exprs,
        src_mask: cx.src_mask,
        layout,
        limits,
        has_index,
    })
}

fn rules_slot_numeric(rules: &[CRule], ri: usize, slot: usize) -> bool {
    rules.get(ri).is_some_and(|r| {
        r.slot == slot && r.meta.is_none() && matches!(r.coerce, Coerce::Dec { .. } | Coerce::Int)
    })
}

fn metafield_type(t: Ty) -> &'static str {
    match t.base {
        FieldType::Integer => "number_integer",
        FieldType::Decimal => "number_decimal",
        FieldType::Boolean => "boolean",
        FieldType::Datetime => "date_time",
        FieldType::Date => "date",
        _ => "single_line_text_field",
    }
}

/// Resolves a root-relative path, turning it item-relative when it walks the
/// entity's iterated list.
fn compile_access(
    cx: &mut Ctx<'_>,
    path: &str,
    iter: Option<&Iter>,
) -> Result<(Access, Ty), String> {
    let segs = parse_path(path)?;
    let r = resolve(&segs, &cx.source.root, &mut cx.proj)?;
    if let Some(it) = iter {
        if segs.len() >= it.segs.len() && segs[..it.segs.len()] == it.segs[..] {
            // Item-relative: drop the list's own steps (same count as its segments).
            let skip = it.segs.len();
            let steps = r.steps[skip..].to_vec();
            let lists = r.eaches.len() - 1;
            return Ok((
                Access {
                    base: Base::Item,
                    steps,
                },
                ty_of(&r.leaf, lists > 0),
            ));
        }
        if !r.eaches.is_empty() {
            return Err(format!(
                "path iterates a different list than the entity, which iterates {:?}",
                it.path
            ));
        }
    }
    let list = !r.eaches.is_empty();
    Ok((
        Access {
            base: Base::Root,
            steps: r.steps,
        },
        ty_of(&r.leaf, list),
    ))
}

fn compile_source(
    cx: &mut Ctx<'_>,
    name: &str,
    tgt: &str,
    src: &Source,
    many: bool,
    iter: Option<&Iter>,
    exprs: &mut Vec<CompiledExpr>,
) -> Option<(CSource, Ty)> {
    match src {
        Source::Path(p) if p == "$index" => {
            if !many {
                cx.err(
                    name,
                    tgt,
                    Some(p),
                    "$index is only defined for entities with many records",
                );
                return None;
            }
            Some((CSource::Index, Ty::scalar(FieldType::Integer)))
        }
        Source::Path(p) => match compile_access(cx, p, iter) {
            Ok((a, t)) => Some((CSource::Path(a), t)),
            Err(reason) => {
                cx.err(name, tgt, Some(p), reason);
                None
            }
        },
        Source::Const(v) => Some((CSource::Const(Val::from_json(v)), ty_of_json(v))),
        Source::Metafield(mf) => {
            let Some((ns, key)) = mf.split_once('.') else {
                cx.err(
                    name,
                    tgt,
                    Some(mf),
                    "metafield source must be namespace.key",
                );
                return None;
            };
            let Some(def) = cx.source.metafield(ns, key).cloned() else {
                cx.err(
                    name,
                    tgt,
                    Some(mf),
                    "metafield is not defined for this tenant (add its definition first)",
                );
                return None;
            };
            let list = [
                "metafields[].namespace",
                "metafields[].key",
                "metafields[].value",
            ]
            .iter()
            .map(|p| compile_access(cx, p, None))
            .collect::<Result<Vec<_>, _>>();
            match list {
                Ok(v) => {
                    let slots = v.iter().map(|(a, _)| a.steps.clone()).collect::<Vec<_>>();
                    Some((
                        CSource::Keyed {
                            list: slots[0][..1].to_vec(),
                            match_steps: vec![
                                (slots[0][2..].to_vec(), ns.to_owned()),
                                (slots[1][2..].to_vec(), key.to_owned()),
                            ],
                            value: slots[2][2..].to_vec(),
                        },
                        Ty::scalar(def.ty),
                    ))
                }
                Err(reason) => {
                    cx.err(
                        name,
                        tgt,
                        Some(mf),
                        format!("source document has no metafields: {reason}"),
                    );
                    None
                }
            }
        }
        Source::NoteAttribute(n) => {
            let list = ["note_attributes[].name", "note_attributes[].value"]
                .iter()
                .map(|p| compile_access(cx, p, None))
                .collect::<Result<Vec<_>, _>>();
            match list {
                Ok(v) => Some((
                    CSource::Keyed {
                        list: v[0].0.steps[..1].to_vec(),
                        match_steps: vec![(v[0].0.steps[2..].to_vec(), n.clone())],
                        value: v[1].0.steps[2..].to_vec(),
                    },
                    Ty::scalar(FieldType::String),
                )),
                Err(reason) => {
                    cx.err(
                        name,
                        tgt,
                        Some(n),
                        format!("source document has no note attributes: {reason}"),
                    );
                    None
                }
            }
        }
        Source::Expr(text) => {
            let e = match compile_expr(text, &cx.limits) {
                Ok(e) => e,
                Err(err) => {
                    cx.err(name, tgt, Some(text), format!("expression: {err}"));
                    return None;
                }
            };
            let mut ok = true;
            for (root, path) in e.refs.clone() {
                let (start, prefix): (FieldDef, Vec<Seg>) = match root {
                    Root::Src => (cx.source.root.clone(), Vec::new()),
                    Root::Item => {
                        match iter {
                            Some(it) if many => (it.elem.clone(), it.segs.clone()),
                            _ => {
                                cx.err(name, tgt, Some(text), "expression reads item, but this entity does not iterate a list");
                                ok = false;
                                continue;
                            }
                        }
                    }
                };
                let _ = start;
                let mut segs = prefix;
                segs.extend(path.iter().map(|p| Seg::Field(p.clone())));
                let prefix_len = segs.len() - path.len();
                match resolve(&segs, &cx.source.root, &mut cx.proj) {
                    Ok(r) => {
                        let rel = &r.steps[prefix_len..];
                        match root {
                            Root::Src => cx.src_mask.add(rel),
                            Root::Item => cx.item_mask.add(rel),
                        }
                        let n_each = r.eaches.len();
                        let allowed = usize::from(root == Root::Item);
                        if n_each > allowed {
                            cx.err(
                                name,
                                tgt,
                                Some(text),
                                format!(
                                    "{}.{} walks through a list; use map() or an index",
                                    if root == Root::Src { "src" } else { "item" },
                                    path.join(".")
                                ),
                            );
                            ok = false;
                            continue;
                        }
                        if matches!(r.leaf.ty, FieldType::Object | FieldType::Array)
                            || path.is_empty()
                        {
                            mark_keep_all(&mut cx.proj, &segs);
                        }
                    }
                    Err(reason) => {
                        let var = if root == Root::Src { "src" } else { "item" };
                        cx.err(
                            name,
                            tgt,
                            Some(text),
                            format!("{var}.{}: {reason}", path.join(".")),
                        );
                        ok = false;
                    }
                }
            }
            if !ok {
                return None;
            }
            exprs.push(e);
            Some((CSource::Expr(exprs.len() - 1), Ty::ANY))
        }
    }
}

fn mark_keep_all(proj: &mut Proj, segs: &[Seg]) {
    let mut p = proj;
    for s in segs {
        if let Seg::Field(n) = s {
            let i = p.slot(n);
            p = &mut p.children[i];
        }
    }
    p.keep_all = true;
}

fn compile_operand(
    cx: &mut Ctx<'_>,
    o: &Operand,
    iter: Option<&Iter>,
) -> Result<(COperand, Ty), String> {
    match o {
        Operand::Const(v) => Ok((COperand::Const(Val::from_json(v)), ty_of_json(v))),
        Operand::Path(p) => {
            let (a, t) = compile_access(cx, p, iter).map_err(|e| format!("path {p:?}: {e}"))?;
            Ok((COperand::Path(a), t))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn compile_transform(
    cx: &mut Ctx<'_>,
    doc: &MappingDocument,
    _rule: &str,
    _tgt: &str,
    t: &Transform,
    ty: Ty,
    tdef: &FieldDef,
    _many: bool,
    iter: Option<&Iter>,
) -> Result<(CTransform, Ty), String> {
    let wrong = |want: &str| Err(format!("expects {want}, got {}", ty.name()));
    let s = Ty::scalar(FieldType::String);
    Ok(match t {
        Transform::DateFormat {
            format,
            timezone,
            date_only,
        } => {
            if !texty(ty) {
                return wrong("a date/time or text");
            }
            if let Some(f) = format
                && (f.len() > 64 || StrftimeItems::new(f).any(|i| matches!(i, Item::Error)))
            {
                return Err(format!("invalid date format {f:?}"));
            }
            let tz = match timezone {
                None => None,
                Some(z) => Some(
                    z.parse::<chrono_tz::Tz>()
                        .map_err(|_| format!("unknown time zone {z:?}"))?,
                ),
            };
            (
                CTransform::DateFormat {
                    format: format.clone(),
                    tz,
                    date_only: *date_only,
                },
                s,
            )
        }
        Transform::Lookup { table, default } => {
            let Some(tab) = doc.value_tables.get(table) else {
                let known: Vec<&String> = doc.value_tables.keys().collect();
                return Err(format!(
                    "unknown value table {table:?} (defined: {known:?})"
                ));
            };
            if !scalar(ty) {
                return wrong("a single value");
            }
            let map: HashMap<String, Val<'static>> = tab
                .iter()
                .map(|(k, v)| (k.clone(), Val::from_json(v)))
                .collect();
            let all_text = tab.values().all(|v| v.is_string())
                && default.as_ref().is_none_or(|d| d.is_string());
            (
                CTransform::Lookup {
                    table: table.clone(),
                    map: Arc::new(map),
                    default: default.as_ref().map(Val::from_json),
                },
                if all_text { s } else { Ty::ANY },
            )
        }
        Transform::Concat { parts, separator } => {
            if !scalar(ty) {
                return wrong("a single value");
            }
            let mut ops = Vec::new();
            for p in parts {
                let (o, pt) = compile_operand(cx, p, iter)?;
                if !scalar(pt) {
                    return Err(format!("concat part is a {}", pt.name()));
                }
                ops.push(o);
            }
            (
                CTransform::Concat {
                    parts: ops,
                    separator: separator.clone(),
                },
                s,
            )
        }
        Transform::Join { separator } => {
            if !(ty.list || ty.base == FieldType::Any) {
                return wrong("a list");
            }
            (CTransform::Join(separator.clone()), s)
        }
        Transform::Split {
            part,
            separator,
            index,
        } => {
            if !texty(ty) {
                return wrong("text");
            }
            if *part == SplitPart::Index && separator.as_deref().is_none_or(str::is_empty) {
                return Err("split by index needs a non-empty separator".into());
            }
            (
                CTransform::Split {
                    part: *part,
                    separator: separator.clone(),
                    index: *index,
                },
                s,
            )
        }
        Transform::Trim | Transform::Upper | Transform::Lower => {
            if !texty(ty) {
                return wrong("text");
            }
            (
                match t {
                    Transform::Trim => CTransform::Trim,
                    Transform::Upper => CTransform::Upper,
                    _ => CTransform::Lower,
                },
                s,
            )
        }
        Transform::Truncate { max } => {
            if !(texty(ty) || scalar(ty) && ty.base != FieldType::Boolean) {
                return wrong("text");
            }
            let m = match max.or(tdef.max_length) {
                Some(0) => return Err("maximum length must be positive".into()),
                Some(m) => m,
                None => {
                    return Err("no max given and the target field has no maximum length".into());
                }
            };
            (CTransform::Truncate(m as usize), s)
        }
        Transform::Round { scale, mode } => {
            if !numeric(ty) {
                return wrong("a number");
            }
            if *scale > 28 {
                return Err("scale must be at most 28".into());
            }
            let strat = match mode {
                RoundMode::HalfEven => RoundingStrategy::MidpointNearestEven,
                RoundMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
                RoundMode::Down => RoundingStrategy::ToZero,
                RoundMode::Up => RoundingStrategy::AwayFromZero,
            };
            (
                CTransform::Round(*scale, strat),
                Ty::scalar(FieldType::Decimal),
            )
        }
        Transform::Sum => {
            if !(ty.list || ty.base == FieldType::Any) {
                return wrong("a list of numbers");
            }
            if !matches!(
                ty.base,
                FieldType::Decimal | FieldType::Integer | FieldType::Any | FieldType::String
            ) {
                return wrong("a list of numbers");
            }
            (CTransform::Sum, Ty::scalar(FieldType::Decimal))
        }
        Transform::ConvertCurrency { table, from } => {
            if !numeric(ty) {
                return wrong("a number");
            }
            let Some(rt) = doc.rate_tables.get(table) else {
                return Err(format!("unknown rate table {table:?}"));
            };
            let to = CurrencyCode::new(&rt.to).map_err(|e| format!("rate table {table:?}: {e}"))?;
            let mut rates: HashMap<String, Decimal> = HashMap::new();
            for (k, r) in &rt.rates {
                let c = CurrencyCode::new(k).map_err(|e| format!("rate table {table:?}: {e}"))?;
                if r.is_sign_negative() || r.is_zero() {
                    return Err(format!(
                        "rate table {table:?}: rate for {k} must be positive"
                    ));
                }
                rates.insert(c.as_str().to_owned(), *r);
            }
            rates.insert(to.as_str().to_owned(), Decimal::ONE);
            let (op, _) = compile_operand(cx, from, iter)?;
            (
                CTransform::Convert {
                    table: table.clone(),
                    rates: Arc::new(rates),
                    from: op,
                },
                Ty::scalar(FieldType::Decimal),
            )
        }
        Transform::Default { value } => {
            let vt = ty_of_json(value);
            let out = if vt == ty || ty.base == FieldType::Any {
                ty
            } else {
                Ty::ANY
            };
            (CTransform::Default(Val::from_json(value)), out)
        }
        Transform::Required => (CTransform::Required, ty),
    })
}

fn coerce_for(t: &FieldDef, ty: Ty, schema: &Schema) -> Result<Coerce, String> {
    let dec_as_string = schema.system == System::Shopify;
    let list_err = || {
        Err(format!(
            "a {} cannot fill a single {} field (add join or sum)",
            ty.name(),
            format!("{:?}", t.ty).to_lowercase()
        ))
    };
    let bad = |what: &str| Err(format!("a {} cannot fill a {what} field", ty.name()));
    Ok(match t.ty {
        FieldType::Array => Coerce::List,
        _ if ty.list && ty.base != FieldType::Any => return list_err(),
        FieldType::String => Coerce::Text(t.max_length.map(|m| m as usize)),
        FieldType::Decimal => {
            if matches!(
                ty.base,
                FieldType::Boolean | FieldType::Object | FieldType::Datetime | FieldType::Date
            ) {
                return bad("decimal");
            }
            Coerce::Dec {
                as_string: dec_as_string,
            }
        }
        FieldType::Integer => {
            if matches!(
                ty.base,
                FieldType::Boolean | FieldType::Object | FieldType::Datetime | FieldType::Date
            ) {
                return bad("integer");
            }
            Coerce::Int
        }
        FieldType::Boolean => {
            if matches!(
                ty.base,
                FieldType::Decimal | FieldType::Object | FieldType::Datetime | FieldType::Date
            ) {
                return bad("boolean");
            }
            Coerce::Bool
        }
        FieldType::Datetime | FieldType::Date => {
            if matches!(
                ty.base,
                FieldType::Decimal | FieldType::Integer | FieldType::Boolean | FieldType::Object
            ) {
                return bad("date/time");
            }
            Coerce::DateTime
        }
        FieldType::Enum => {
            let members = t
                .enum_name
                .as_ref()
                .and_then(|n| schema.enums.get(n))
                .cloned()
                .unwrap_or_default();
            if matches!(ty.base, FieldType::Decimal | FieldType::Object) {
                return bad("enum");
            }
            Coerce::Enum(Arc::new(members))
        }
        FieldType::Object | FieldType::Any => Coerce::Any,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("a.b[].c[2]").unwrap(),
            vec![
                Seg::Field("a".into()),
                Seg::Field("b".into()),
                Seg::Each,
                Seg::Field("c".into()),
                Seg::Index(2)
            ]
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
        assert!(parse_path("a[").is_err());
    }
}
