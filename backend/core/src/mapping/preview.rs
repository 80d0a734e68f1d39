//! Preview: apply a mapping to a sample and explain every rule.

use serde::Serialize;

use super::engine::{ApplyError, CRule, CompiledMapping, Tracer, run};
use super::value::Val;

/// One transform's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTrace {
    /// Palette name.
    pub op: &'static str,
    /// Value after the step.
    pub output: serde_json::Value,
}

/// What one rule did for one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleTrace {
    /// Rule id.
    pub rule: String,
    /// Target `Entity.Field`.
    pub target: String,
    /// Record number for many-record entities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<usize>,
    /// Value read from the source.
    pub source: serde_json::Value,
    /// Each transform's output.
    pub steps: Vec<StepTrace>,
    /// Final value written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// Error, if the rule failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Target document (rules that failed are left out) and the per-rule trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// The target document, or `null` when the document could not be processed at all.
    pub output: serde_json::Value,
    /// One entry per rule and record.
    pub trace: Vec<RuleTrace>,
    /// Whether every rule succeeded.
    pub ok: bool,
    /// Document-level error (invalid JSON, expression time limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Default)]
struct Collect {
    trace: Vec<RuleTrace>,
}

impl Tracer for Collect {
    const ON: bool = true;
    fn begin(&mut self, rule: &CRule, record: Option<usize>, source: &Val<'_>) {
        self.trace.push(RuleTrace {
            rule: rule.name.clone(),
            target: rule.target.clone(),
            record,
            source: source.to_json(),
            steps: Vec::new(),
            value: None,
            error: None,
        });
    }
    fn step(&mut self, op: &'static str, out: &Val<'_>) {
        if let Some(t) = self.trace.last_mut() {
            t.steps.push(StepTrace {
                op,
                output: out.to_json(),
            });
        }
    }
    fn end(&mut self, result: Result<&Val<'_>, &ApplyError>) {
        if let Some(t) = self.trace.last_mut() {
            match result {
                Ok(v) => t.value = Some(v.to_json()),
                Err(e) => t.error = Some(e.to_string()),
            }
        }
    }
}

/// Applies `m` to a sample document and records what every rule did. Rule
/// failures do not stop the preview.
pub fn preview(m: &CompiledMapping, sample: &serde_json::Value) -> Preview {
    let doc = m.view(sample);
    let mut c = Collect::default();
    match run(m, doc.root(), &mut c) {
        Ok(out) => {
            let ok = c.trace.iter().all(|t| t.error.is_none());
            Preview {
                output: out.to_value(),
                trace: c.trace,
                ok,
                error: None,
            }
        }
        Err(e) => Preview {
            output: serde_json::Value::Null,
            trace: c.trace,
            ok: false,
            error: Some(e.to_string()),
        },
    }
}
