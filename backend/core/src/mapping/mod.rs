//! The mapping engine: documents, compilation, application, preview.

mod compile;
pub mod document;
mod engine;
pub mod expr;
mod preview;
mod source;
mod value;

pub use compile::{MappingError, compile, compile_with};
pub use document::{
    Aggregate, MappingDocument, Operand, RateTable, RoundMode, Rule, SCHEMA_VERSION, Source,
    SplitPart, Transform,
};
pub use engine::{ApplyError, CompiledMapping, Output, SourceDoc, apply, apply_json, apply_value};
pub use expr::{CompiledExpr, DEFAULT_LIMITS, ExprError, ExprLimits, compile_expr};
pub use preview::{Preview, RuleTrace, StepTrace, preview};
pub use value::Val;
