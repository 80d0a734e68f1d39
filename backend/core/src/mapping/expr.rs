//! CEL expressions, hardened for tenant-authored text.
//!
//! Defence in depth: the text is measured (length, bracket nesting, operator
//! count) before the parser sees it; parsing runs on a thread with a large stack
//! so a parser recursion cannot take the caller down; only whitelisted functions
//! compile. Only comprehensions (`map`, `filter`, `all`, `exists`, …) can make
//! an evaluation's cost explode (nested over a long list it is cubic), so an
//! expression that has one runs on a pool of large-stack threads and the caller
//! waits at most the time limit; the worker that overran is retired rather than
//! reused. An expression without one costs at most its operator count times the
//! size of the values it touches, both capped, so it runs on the caller's thread
//! (on a stack grown on demand by `stacker`, as rustc does) and skips the
//! thread hand-off, which costs more than the evaluation itself.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::objects::{Key, Map};
use cel::{Context, ExecutionError, Program, Value};
use chrono::{DateTime, FixedOffset};
use rust_decimal::{Decimal, RoundingStrategy};

/// Limits applied to every expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExprLimits {
    /// Maximum source length in bytes.
    pub max_len: usize,
    /// Maximum nesting of brackets and unary operators.
    pub max_depth: usize,
    /// Maximum number of operator tokens (bounds the AST depth of long chains).
    pub max_operators: usize,
    /// Wall-clock limit for evaluating the expressions of one document.
    pub timeout: Duration,
}

/// The limits the engine uses unless told otherwise.
pub const DEFAULT_LIMITS: ExprLimits = ExprLimits {
    max_len: 2048,
    max_depth: 24,
    max_operators: 200,
    timeout: Duration::from_millis(250),
};

/// Stack of the parser and evaluator threads.
const LARGE_STACK: usize = 32 * 1024 * 1024;
/// Workers that overran stay alive until their evaluation ends; this caps them.
const MAX_WORKERS: usize = 64;

/// Why an expression was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// Source longer than the limit.
    #[error("expression is {len} bytes long, the limit is {max}")]
    TooLong {
        /// Actual length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Nesting deeper than the limit.
    #[error("expression nests {depth} levels deep, the limit is {max}")]
    TooDeep {
        /// Depth reached.
        depth: usize,
        /// Limit.
        max: usize,
    },
    /// Too many operators.
    #[error("expression has more than {max} operators")]
    TooComplex {
        /// Limit.
        max: usize,
    },
    /// Syntax error.
    #[error("syntax error: {0}")]
    Parse(String),
    /// A function outside the whitelist.
    #[error("function {0:?} is not allowed")]
    Forbidden(String),
    /// A variable other than `src`, `item` or a comprehension variable.
    #[error("unknown variable {0:?} (use src or item)")]
    UnknownVariable(String),
    /// The evaluation ran over the time limit.
    #[error("evaluation exceeded {0:?}")]
    Timeout(Duration),
    /// The evaluation failed.
    #[error("evaluation failed: {0}")]
    Eval(String),
    /// No evaluator thread could be started.
    #[error("expression evaluator unavailable")]
    Unavailable,
}

/// Root variable an expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// The whole source document.
    Src,
    /// The current element of the iterated list.
    Item,
}

/// A compiled expression and the fields it reads.
#[derive(Debug, Clone)]
pub struct CompiledExpr {
    source: Arc<str>,
    program: Arc<Program>,
    pub(crate) refs: Vec<(Root, Vec<String>)>,
    /// No comprehension: the cost is bounded by the limits, no timer needed.
    bounded: bool,
}

impl CompiledExpr {
    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the cost is bounded by the limits alone (the expression has no
    /// comprehension), so it may run on the caller's thread without a timer.
    pub fn bounded(&self) -> bool {
        self.bounded
    }

    pub(crate) fn program(&self) -> &Arc<Program> {
        &self.program
    }
}

/// Functions and operators an expression may call.
const ALLOWED: &[&str] = &[
    // Operators.
    "_+_",
    "_-_",
    "_*_",
    "_/_",
    "_%_",
    "-_",
    "!_",
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_&&_",
    "_||_",
    "_?_:_",
    "_[_]",
    "@in",
    "@not_strictly_false",
    "_[?_]",
    "_?._",
    // Standard library: conversions, strings, lists, dates.
    "size",
    "string",
    "int",
    "uint",
    "double",
    "bool",
    "contains",
    "startsWith",
    "endsWith",
    "timestamp",
    "duration",
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    // Macros expand to comprehensions, but `has` may show as a call in some versions.
    "has",
    // Syncline helpers (see `helpers`).
    "upper",
    "lower",
    "trim",
    "substr",
    "replace",
    "split_part",
    "join",
    "dec",
    "dec_add",
    "dec_sub",
    "dec_mul",
    "dec_div",
    "dec_round",
    "dec_cmp",
    "date_iso",
    "date_only",
    "default",
];

/// Compiles an expression: limits first, then the parser on a large stack, then
/// the whitelist and variable checks.
pub fn compile_expr(source: &str, limits: &ExprLimits) -> Result<CompiledExpr, ExprError> {
    precheck(source, limits)?;
    let text = source.to_owned();
    let parsed = std::thread::Builder::new()
        .name("cel-parse".into())
        .stack_size(LARGE_STACK)
        .spawn(move || {
            let env = cel::Env::stdlib().with_optional_support(false);
            env.compile(&text).map_err(|e| e.to_string())
        })
        .map_err(|_| ExprError::Unavailable)?
        .join()
        .map_err(|_| ExprError::Parse("the parser failed on this input".into()))?;
    let program = parsed.map_err(|e| ExprError::Parse(first_line(&e)))?;
    for f in program.references().functions() {
        if !ALLOWED.contains(&f) {
            return Err(ExprError::Forbidden(f.to_owned()));
        }
    }
    let mut walker = Walker::default();
    stacker::maybe_grow(RED_ZONE, LARGE_STACK, || {
        walker.walk(program.expression(), 0)
    })?;
    Ok(CompiledExpr {
        source: source.into(),
        program: Arc::new(program),
        refs: walker.refs,
        bounded: !walker.loops,
    })
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or(s);
    l.chars().take(200).collect()
}

fn precheck(s: &str, limits: &ExprLimits) -> Result<(), ExprError> {
    if s.len() > limits.max_len {
        return Err(ExprError::TooLong {
            len: s.len(),
            max: limits.max_len,
        });
    }
    let (mut depth, mut max, mut ops, mut unary_run) = (0usize, 0usize, 0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut prev_operand = false;
    for c in s.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
                prev_operand = true;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth + unary_run);
                unary_run = 0;
                prev_operand = false;
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                prev_operand = true;
            }
            '!' | '-' if !prev_operand => {
                unary_run += 1;
                ops += 1;
                max = max.max(depth + unary_run);
            }
            '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '&' | '|' | '?' | ':' | '!' | '.' => {
                ops += 1;
                prev_operand = false;
            }
            c if c.is_whitespace() => {}
            _ => {
                unary_run = 0;
                prev_operand = true;
            }
        }
    }
    if max > limits.max_depth {
        return Err(ExprError::TooDeep {
            depth: max,
            max: limits.max_depth,
        });
    }
    if ops > limits.max_operators {
        return Err(ExprError::TooComplex {
            max: limits.max_operators,
        });
    }
    Ok(())
}

/// Collects `src.a.b` / `item.a` chains, rejects unknown variables and notes
/// whether the expression loops.
#[derive(Default)]
struct Walker {
    scope: Vec<String>,
    refs: Vec<(Root, Vec<String>)>,
    loops: bool,
}

impl Walker {
    fn walk(&mut self, e: &IdedExpr, depth: usize) -> Result<(), ExprError> {
        if depth > 256 {
            return Err(ExprError::TooDeep {
                depth,
                max: DEFAULT_LIMITS.max_depth,
            });
        }
        if let Some((root, path)) = chain(e) {
            if self.scope.iter().any(|s| s == root) {
                return Ok(());
            }
            let r = match root {
                "src" => Root::Src,
                "item" => Root::Item,
                other => return Err(ExprError::UnknownVariable(other.to_owned())),
            };
            self.refs.push((r, path));
            return Ok(());
        }
        match &e.expr {
            Expr::Select(s) => self.walk(&s.operand, depth + 1),
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    self.walk(t, depth + 1)?;
                }
                c.args.iter().try_for_each(|a| self.walk(a, depth + 1))
            }
            Expr::Comprehension(c) => {
                self.loops = true;
                self.walk(&c.iter_range, depth + 1)?;
                self.walk(&c.accu_init, depth + 1)?;
                let n = self.scope.len();
                self.scope.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    self.scope.push(v.clone());
                }
                self.scope.push(c.accu_var.clone());
                self.walk(&c.loop_cond, depth + 1)?;
                self.walk(&c.loop_step, depth + 1)?;
                self.walk(&c.result, depth + 1)?;
                self.scope.truncate(n);
                Ok(())
            }
            Expr::List(l) => l.elements.iter().try_for_each(|x| self.walk(x, depth + 1)),
            Expr::Map(m) => m.entries.iter().try_for_each(|en| match &en.expr {
                EntryExpr::MapEntry(me) => {
                    self.walk(&me.key, depth + 1)?;
                    self.walk(&me.value, depth + 1)
                }
                EntryExpr::StructField(sf) => self.walk(&sf.value, depth + 1),
            }),
            Expr::Struct(_) => Err(ExprError::Forbidden("message construction".into())),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Ok(()),
        }
    }
}

/// `a.b.c` as (`a`, [`b`, `c`]).
fn chain(e: &IdedExpr) -> Option<(&str, Vec<String>)> {
    let mut fields = Vec::new();
    let mut cur = e;
    loop {
        match &cur.expr {
            Expr::Ident(name) => {
                fields.reverse();
                return Some((name.as_str(), fields));
            }
            Expr::Select(s) => {
                fields.push(s.field.clone());
                cur = &s.operand;
            }
            _ => return None,
        }
    }
}

/// The expressions of one document: `src` is bound once, each item once, and
/// every expression of a group runs against its item. Binding converts the
/// value into the interpreter's own representation, which costs more than most
/// evaluations, so it is never repeated per expression.
pub(crate) struct EvalBatch {
    pub src: Value,
    pub groups: Vec<EvalGroup>,
    /// No expression loops (see [`CompiledExpr::bounded`]).
    pub bounded: bool,
}

/// Expressions evaluated against one item (or none, for header rules).
pub(crate) struct EvalGroup {
    pub item: Option<Value>,
    pub programs: Vec<Arc<Program>>,
}

type Reply = Vec<Result<Value, String>>;
type Worker = mpsc::Sender<(EvalBatch, mpsc::SyncSender<Reply>)>;

struct Pool {
    idle: Mutex<Vec<Worker>>,
    live: Arc<AtomicUsize>,
}

fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Pool {
        idle: Mutex::new(Vec::new()),
        live: Arc::new(AtomicUsize::new(0)),
    })
}

fn spawn_worker() -> Result<Worker, ExprError> {
    let p = pool();
    if p.live.load(Ordering::Relaxed) >= MAX_WORKERS {
        return Err(ExprError::Unavailable);
    }
    let (tx, rx) = mpsc::channel::<(EvalBatch, mpsc::SyncSender<Reply>)>();
    let live = Arc::clone(&p.live);
    live.fetch_add(1, Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("cel-eval".into())
        .stack_size(LARGE_STACK)
        .spawn(move || {
            let root = helpers::context();
            while let Ok((batch, reply)) = rx.recv() {
                let out = execute_all(&root, &batch);
                // The caller may have given up (timeout); nothing to do then.
                let _ = reply.send(out);
            }
            live.fetch_sub(1, Ordering::Relaxed);
        });
    match spawned {
        Ok(_) => Ok(tx),
        Err(_) => {
            p.live.fetch_sub(1, Ordering::Relaxed);
            Err(ExprError::Unavailable)
        }
    }
}

fn execute_all(root: &Context<'static, 'static>, batch: &EvalBatch) -> Reply {
    let mut with_src = root.new_inner_scope();
    with_src.add_variable_from_value("src", batch.src.clone());
    let mut out = Vec::new();
    for group in &batch.groups {
        let mut ctx = with_src.new_inner_scope();
        if let Some(item) = &group.item {
            ctx.add_variable_from_value("item", item.clone());
        }
        out.extend(
            group
                .programs
                .iter()
                .map(|p| p.execute(&ctx).map_err(|e| e.to_string())),
        );
    }
    out
}

/// Stack left before `stacker` switches to a fresh segment of `LARGE_STACK`.
const RED_ZONE: usize = 256 * 1024;

/// Evaluates a batch of expressions within `timeout`: on the caller's thread
/// when none of them loops, otherwise on an evaluator thread. The results come
/// group by group, in each group's expression order.
pub(crate) fn eval_batch(
    batch: EvalBatch,
    timeout: Duration,
) -> Result<Vec<Result<Value, String>>, ExprError> {
    if batch.groups.iter().all(|g| g.programs.is_empty()) {
        return Ok(Vec::new());
    }
    if batch.bounded {
        thread_local! {
            static ROOT: Context<'static, 'static> = helpers::context();
        }
        return Ok(stacker::maybe_grow(RED_ZONE, LARGE_STACK, || {
            ROOT.with(|root| execute_all(root, &batch))
        }));
    }
    let p = pool();
    let worker = match p.idle.lock().ok().and_then(|mut v| v.pop()) {
        Some(w) => w,
        None => spawn_worker()?,
    };
    let (rtx, rrx) = mpsc::sync_channel(1);
    if worker.send((batch, rtx)).is_err() {
        return Err(ExprError::Unavailable);
    }
    match rrx.recv_timeout(timeout) {
        Ok(out) => {
            if let Ok(mut v) = p.idle.lock() {
                v.push(worker);
            }
            Ok(out)
        }
        // Dropping `worker` closes its queue: the thread exits once it finishes.
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ExprError::Timeout(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(ExprError::Eval("the evaluator stopped".into()))
        }
    }
}

impl CompiledExpr {
    /// Evaluates once with JSON variables (for tests and the console's "try it").
    pub fn eval_json(
        &self,
        src: &serde_json::Value,
        item: Option<&serde_json::Value>,
        limits: &ExprLimits,
    ) -> Result<serde_json::Value, ExprError> {
        let batch = EvalBatch {
            src: json_to_cel(src, 0),
            groups: vec![EvalGroup {
                item: item.map(|i| json_to_cel(i, 0)),
                programs: vec![Arc::clone(&self.program)],
            }],
            bounded: self.bounded,
        };
        let mut out = eval_batch(batch, limits.timeout)?;
        match out.pop() {
            Some(Ok(v)) => Ok(cel_to_json(&v, 0)),
            Some(Err(e)) => Err(ExprError::Eval(e)),
            None => Err(ExprError::Unavailable),
        }
    }
}

/// JSON to CEL. Fractional numbers become decimal strings: CEL has no decimal
/// type and money must not pass through a float; use the `dec_*` helpers.
pub(crate) fn json_to_cel(v: &serde_json::Value, depth: usize) -> Value {
    use serde_json::Value as V;
    if depth > 64 {
        return Value::Null;
    }
    match v {
        V::Null => Value::Null,
        V::Bool(b) => Value::Bool(*b),
        V::Number(n) => num_to_cel(&n.to_string()),
        V::String(s) => Value::String(Arc::new(s.clone())),
        V::Array(a) => Value::List(Arc::new(
            a.iter().map(|x| json_to_cel(x, depth + 1)).collect(),
        )),
        V::Object(m) => {
            let map: HashMap<Key, Value> = m
                .iter()
                .map(|(k, x)| (Key::String(Arc::new(k.clone())), json_to_cel(x, depth + 1)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

pub(crate) fn num_to_cel(s: &str) -> Value {
    match s.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::String(Arc::new(s.to_owned())),
    }
}

/// CEL to JSON (timestamps as RFC 3339, floats as exact decimals where possible).
pub(crate) fn cel_to_json(v: &Value, depth: usize) -> serde_json::Value {
    use serde_json::Value as V;
    if depth > 64 {
        return V::Null;
    }
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Int(i) => V::from(*i),
        Value::UInt(u) => V::from(*u),
        Value::Float(f) => Decimal::from_f64_retain(*f)
            .and_then(|d| serde_json::Number::from_str(&d.normalize().to_string()).ok())
            .map(V::Number)
            .unwrap_or(V::Null),
        Value::String(s) => V::String(s.to_string()),
        Value::Bytes(b) => V::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(l) => V::Array(l.iter().map(|x| cel_to_json(x, depth + 1)).collect()),
        Value::Map(m) => V::Object(
            m.map
                .iter()
                .map(|(k, x)| {
                    let key = match k {
                        Key::String(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, cel_to_json(x, depth + 1))
                })
                .collect(),
        ),
        Value::Timestamp(t) => V::String(t.to_rfc3339()),
        Value::Duration(d) => V::String(d.to_string()),
        _ => V::Null,
    }
}

/// Whitelisted helper functions.
mod helpers {
    use super::*;

    fn fail(f: &str, m: impl ToString) -> ExecutionError {
        ExecutionError::function_error(f, m)
    }

    fn dec_of(f: &str, v: &Value) -> Result<Decimal, ExecutionError> {
        match v {
            Value::Int(i) => Ok(Decimal::from(*i)),
            Value::UInt(u) => Ok(Decimal::from(*u)),
            Value::Float(x) => {
                Decimal::from_f64_retain(*x).ok_or_else(|| fail(f, "not a finite number"))
            }
            Value::String(s) => crate::mapping::value::parse_decimal(s.trim())
                .ok_or_else(|| fail(f, format!("{s:?} is not a decimal"))),
            other => Err(fail(f, format!("{other:?} is not a number"))),
        }
    }

    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.to_string(),
            Value::Null => String::new(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
            other => format!("{other:?}"),
        }
    }

    fn s(v: String) -> Value {
        Value::String(Arc::new(v))
    }

    /// Output strings are capped so that `replace` cannot blow up memory.
    const MAX_OUT: usize = 64 * 1024;

    fn capped(f: &str, v: String) -> Result<Value, ExecutionError> {
        if v.len() > MAX_OUT {
            return Err(fail(f, "result too long"));
        }
        Ok(s(v))
    }

    fn arith(
        f: &'static str,
        a: &Value,
        b: &Value,
        op: fn(Decimal, Decimal) -> Option<Decimal>,
    ) -> Result<Value, ExecutionError> {
        let r = op(dec_of(f, a)?, dec_of(f, b)?)
            .ok_or_else(|| fail(f, "overflow or division by zero"))?;
        Ok(s(r.normalize().to_string()))
    }

    fn parse_dt(f: &str, v: &Value) -> Result<DateTime<FixedOffset>, ExecutionError> {
        match v {
            Value::Timestamp(t) => Ok(*t),
            Value::String(x) => {
                DateTime::parse_from_rfc3339(x.trim()).map_err(|e| fail(f, format!("{x:?}: {e}")))
            }
            other => Err(fail(f, format!("{other:?} is not a date"))),
        }
    }

    pub(super) fn context() -> Context<'static, 'static> {
        let mut c = Context::with_env(Arc::new(cel::Env::stdlib().with_optional_support(false)));
        // Registration fails only on a name clash with the standard library,
        // which the whitelist test pins down; ignore rather than panic.
        let _ = c.add_function("upper", |v: Value| s(text(&v).to_uppercase()));
        let _ = c.add_function("lower", |v: Value| s(text(&v).to_lowercase()));
        let _ = c.add_function("trim", |v: Value| s(text(&v).trim().to_owned()));
        let _ = c.add_function("substr", |v: Value, start: i64, len: i64| {
            let t = text(&v);
            let st = usize::try_from(start.max(0)).unwrap_or(0);
            let ln = usize::try_from(len.max(0)).unwrap_or(0);
            s(t.chars().skip(st).take(ln).collect())
        });
        let _ = c.add_function("replace", |v: Value, from: Arc<String>, to: Arc<String>| {
            if from.is_empty() {
                return Ok(s(text(&v)));
            }
            capped("replace", text(&v).replace(from.as_str(), to.as_str()))
        });
        let _ = c.add_function("split_part", |v: Value, sep: Arc<String>, idx: i64| {
            let t = text(&v);
            let i = usize::try_from(idx.max(0)).unwrap_or(0);
            let part = if sep.is_empty() {
                t.split_whitespace().nth(i).map(str::to_owned)
            } else {
                t.split(sep.as_str()).nth(i).map(str::to_owned)
            };
            s(part.unwrap_or_default())
        });
        let _ = c.add_function("join", |l: Arc<Vec<Value>>, sep: Arc<String>| {
            capped(
                "join",
                l.iter().map(text).collect::<Vec<_>>().join(sep.as_str()),
            )
        });
        let _ = c.add_function("default", |v: Value, d: Value| match &v {
            Value::Null => d,
            Value::String(x) if x.trim().is_empty() => d,
            _ => v,
        });
        let _ = c.add_function("dec", |a: Value| -> Result<Value, ExecutionError> {
            Ok(s(dec_of("dec", &a)?.normalize().to_string()))
        });
        let _ = c.add_function("dec_add", |a: Value, b: Value| {
            arith("dec_add", &a, &b, Decimal::checked_add)
        });
        let _ = c.add_function("dec_sub", |a: Value, b: Value| {
            arith("dec_sub", &a, &b, Decimal::checked_sub)
        });
        let _ = c.add_function("dec_mul", |a: Value, b: Value| {
            arith("dec_mul", &a, &b, Decimal::checked_mul)
        });
        let _ = c.add_function("dec_div", |a: Value, b: Value| {
            arith("dec_div", &a, &b, Decimal::checked_div)
        });
        let _ = c.add_function(
            "dec_round",
            |a: Value, scale: i64| -> Result<Value, ExecutionError> {
                let d = dec_of("dec_round", &a)?;
                let sc = u32::try_from(scale.clamp(0, 28)).unwrap_or(2);
                Ok(s(d
                    .round_dp_with_strategy(sc, RoundingStrategy::MidpointNearestEven)
                    .to_string()))
            },
        );
        let _ = c.add_function(
            "dec_cmp",
            |a: Value, b: Value| -> Result<Value, ExecutionError> {
                let o = dec_of("dec_cmp", &a)?.cmp(&dec_of("dec_cmp", &b)?);
                Ok(Value::Int(o as i64))
            },
        );
        let _ = c.add_function(
            "date_iso",
            |v: Value, tz: Arc<String>| -> Result<Value, ExecutionError> {
                let dt = parse_dt("date_iso", &v)?;
                let zone: chrono_tz::Tz = tz
                    .parse()
                    .map_err(|_| fail("date_iso", format!("unknown time zone {tz:?}")))?;
                Ok(s(dt.with_timezone(&zone).to_rfc3339()))
            },
        );
        let _ = c.add_function("date_only", |v: Value| -> Result<Value, ExecutionError> {
            let dt = parse_dt("date_only", &v)?;
            Ok(s(dt.date_naive().to_string()))
        });
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(src: &str) -> CompiledExpr {
        compile_expr(src, &DEFAULT_LIMITS).unwrap()
    }

    #[test]
    fn evaluates_with_helpers() {
        let e = ok("upper(src.name) + '-' + string(src.n) + '-' + dec_round(dec_mul(src.p, 3), 2)");
        let v = e
            .eval_json(
                &json!({"name": "ab", "n": 7, "p": "1.005"}),
                None,
                &DEFAULT_LIMITS,
            )
            .unwrap();
        assert_eq!(v, json!("AB-7-3.02"));
        assert_eq!(e.refs.len(), 3);
    }

    #[test]
    fn rejects_forbidden_and_unknown() {
        assert!(matches!(
            compile_expr("src.a.matches('x+')", &DEFAULT_LIMITS),
            Err(ExprError::Forbidden(_))
        ));
        assert!(matches!(
            compile_expr("foo + 1", &DEFAULT_LIMITS),
            Err(ExprError::UnknownVariable(_))
        ));
        assert!(compile_expr("src.list.map(x, x.sku)", &DEFAULT_LIMITS).is_ok());
    }

    #[test]
    fn pathological_inputs_are_refused() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(
            compile_expr(&deep, &DEFAULT_LIMITS),
            Err(ExprError::TooDeep { .. })
        ));
        let unary = format!("{}true", "!".repeat(1000));
        assert!(compile_expr(&unary, &DEFAULT_LIMITS).is_err());
        let long = "1 + ".repeat(5000) + "1";
        assert!(matches!(
            compile_expr(&long, &DEFAULT_LIMITS),
            Err(ExprError::TooLong { .. })
        ));
        let chain = "1 + ".repeat(400) + "1";
        assert!(compile_expr(&chain, &DEFAULT_LIMITS).is_err());
        let brackets = "[".repeat(2000);
        assert!(compile_expr(&brackets, &DEFAULT_LIMITS).is_err());
    }

    #[test]
    fn expressions_at_the_limits_evaluate_on_a_small_caller_stack() {
        // A left-deep chain of the most operators allowed and the deepest nesting
        // allowed: the inline path must grow the stack rather than overflow it.
        let chain = "1 + ".repeat(190) + "1";
        let nested = format!("{}src.a{}", "upper(".repeat(20), ")".repeat(20));
        let out = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let a = compile_expr(&chain, &DEFAULT_LIMITS)
                    .and_then(|e| e.eval_json(&json!({}), None, &DEFAULT_LIMITS));
                let b = compile_expr(&nested, &DEFAULT_LIMITS)
                    .and_then(|e| e.eval_json(&json!({"a": "x"}), None, &DEFAULT_LIMITS));
                (a, b)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(out.0, Ok(json!(191)));
        assert_eq!(out.1, Ok(json!("X")));
    }

    #[test]
    fn slow_evaluation_times_out() {
        let limits = ExprLimits {
            timeout: Duration::from_millis(20),
            max_len: 4096,
            ..DEFAULT_LIMITS
        };
        // Nested comprehensions over a 300-element list: ~27 million steps.
        let e = compile_expr(
            "src.l.map(a, src.l.map(b, src.l.map(c, a + b + c))).size() > 0",
            &limits,
        )
        .unwrap();
        let l: Vec<i64> = (0..300).collect();
        let r = e.eval_json(&json!({"l": l}), None, &limits);
        assert!(matches!(r, Err(ExprError::Timeout(_))), "{r:?}");
    }
}
