//! Calculated query cost, after Shopify's published rules: scalars and enums
//! cost 0, objects 1, connections 2 plus `first`/`last` times the cost of one
//! node, mutations 10. The requested cost is taken from the document before
//! running it; the actual cost from the response, counting what came back.

use std::collections::HashMap;

use async_graphql::Positioned;
use async_graphql::parser::types::{
    ExecutableDocument, Field, FragmentDefinition, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Name, Value as GqlValue};
use serde_json::Value;

/// One query may not request more than this.
pub const MAX_COST: u64 = 1000;
/// Input arrays may not hold more than this.
pub const MAX_INPUT_ARRAY: usize = 250;
/// What one mutation field costs.
pub const MUTATION_COST: u64 = 10;

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The operation a request runs, if it can be chosen.
pub fn select_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    use async_graphql::parser::types::DocumentOperations;
    match &doc.operations {
        DocumentOperations::Single(op) => Some(&op.node),
        DocumentOperations::Multiple(ops) => match name {
            Some(n) => ops.get(n).map(|o| &o.node),
            None if ops.len() == 1 => ops.values().next().map(|o| &o.node),
            None => None,
        },
    }
}

struct Walker<'a> {
    fragments: &'a Fragments,
    vars: &'a Value,
    depth: usize,
}

impl<'a> Walker<'a> {
    fn int_arg(&self, field: &'a Field, name: &str) -> Option<u64> {
        let (_, v) = field.arguments.iter().find(|(n, _)| n.node == name)?;
        let vars = self.vars;
        let c = v
            .node
            .clone()
            .into_const_with(|var| {
                Ok::<_, ()>(
                    vars.get(var.as_str())
                        .cloned()
                        .and_then(|j| GqlValue::from_json(j).ok())
                        .unwrap_or(GqlValue::Null),
                )
            })
            .ok()?;
        match c {
            GqlValue::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    fn fields(&self, set: &'a SelectionSet, out: &mut Vec<&'a Field>) {
        for sel in &set.items {
            match &sel.node {
                Selection::Field(f) => out.push(&f.node),
                Selection::FragmentSpread(s) => {
                    if let Some(frag) = self.fragments.get(&s.node.fragment_name.node)
                        && self.depth < 32
                    {
                        self.fields(&frag.node.selection_set.node, out);
                    }
                }
                Selection::InlineFragment(i) => self.fields(&i.node.selection_set.node, out),
            }
        }
    }

    fn is_connection(&self, field: &'a Field) -> bool {
        let mut children = Vec::new();
        self.fields(&field.selection_set.node, &mut children);
        children
            .iter()
            .any(|c| matches!(c.name.node.as_str(), "edges" | "nodes" | "pageInfo"))
    }

    /// Cost of one node inside a connection's `edges { node }` / `nodes`.
    fn node_cost(&mut self, conn: &'a Field) -> u64 {
        let mut children = Vec::new();
        self.fields(&conn.selection_set.node, &mut children);
        let mut total = 0;
        for c in children {
            match c.name.node.as_str() {
                "edges" => {
                    let mut inner = Vec::new();
                    self.fields(&c.selection_set.node, &mut inner);
                    for e in inner {
                        if e.name.node == "node" {
                            total += 1 + self.set_cost(&e.selection_set.node);
                        }
                    }
                }
                "nodes" => total += 1 + self.set_cost(&c.selection_set.node),
                _ => {}
            }
        }
        total
    }

    fn field_cost(&mut self, field: &'a Field) -> u64 {
        if field.selection_set.node.items.is_empty() || field.name.node.starts_with("__") {
            return 0;
        }
        self.depth += 1;
        let cost = if self.is_connection(field) {
            let n = self
                .int_arg(field, "first")
                .or_else(|| self.int_arg(field, "last"))
                .unwrap_or(0);
            2 + n.saturating_mul(self.node_cost(field))
        } else if let Some(n) = self.int_arg(field, "first") {
            n.saturating_mul(1 + self.set_cost(&field.selection_set.node))
        } else {
            1 + self.set_cost(&field.selection_set.node)
        };
        self.depth -= 1;
        cost
    }

    fn set_cost(&mut self, set: &'a SelectionSet) -> u64 {
        let mut fields = Vec::new();
        self.fields(set, &mut fields);
        fields.iter().map(|f| self.field_cost(f)).sum()
    }

    fn actual_field(&mut self, field: &'a Field, resp: Option<&Value>) -> u64 {
        if field.selection_set.node.items.is_empty() || field.name.node.starts_with("__") {
            return 0;
        }
        let Some(resp) = resp.filter(|v| !v.is_null()) else {
            return 0;
        };
        self.depth += 1;
        let cost = if self.is_connection(field) {
            let mut total = 2;
            let mut children = Vec::new();
            self.fields(&field.selection_set.node, &mut children);
            for c in children {
                let key = c.alias.as_ref().unwrap_or(&c.name).node.as_str();
                let items = resp.get(key).and_then(Value::as_array);
                match c.name.node.as_str() {
                    "edges" => {
                        let mut inner = Vec::new();
                        self.fields(&c.selection_set.node, &mut inner);
                        for edge in items.into_iter().flatten() {
                            for e in &inner {
                                if e.name.node == "node" {
                                    let k = e.alias.as_ref().unwrap_or(&e.name).node.as_str();
                                    total +=
                                        1 + self.actual_set(&e.selection_set.node, edge.get(k));
                                }
                            }
                        }
                    }
                    "nodes" => {
                        for node in items.into_iter().flatten() {
                            total += 1 + self.actual_set(&c.selection_set.node, Some(node));
                        }
                    }
                    _ => {}
                }
            }
            total
        } else if let Some(arr) = resp.as_array() {
            arr.iter()
                .map(|v| 1 + self.actual_set(&field.selection_set.node, Some(v)))
                .sum()
        } else {
            1 + self.actual_set(&field.selection_set.node, Some(resp))
        };
        self.depth -= 1;
        cost
    }

    fn actual_set(&mut self, set: &'a SelectionSet, resp: Option<&Value>) -> u64 {
        let mut fields = Vec::new();
        self.fields(set, &mut fields);
        fields
            .iter()
            .map(|f| {
                let key = f.alias.as_ref().unwrap_or(&f.name).node.as_str();
                let v = resp.and_then(|r| r.get(key));
                self.actual_field(f, v)
            })
            .sum()
    }
}

/// Requested cost of an operation.
pub fn requested<'a>(
    doc: &'a ExecutableDocument,
    op: &'a OperationDefinition,
    vars: &'a Value,
) -> u64 {
    let mut w = Walker {
        fragments: &doc.fragments,
        vars,
        depth: 0,
    };
    match op.ty {
        OperationType::Mutation => {
            let mut fields = Vec::new();
            w.fields(&op.selection_set.node, &mut fields);
            fields.len() as u64 * MUTATION_COST
        }
        _ => w.set_cost(&op.selection_set.node),
    }
}

/// Actual cost, from what the response holds.
pub fn actual<'a>(
    doc: &'a ExecutableDocument,
    op: &'a OperationDefinition,
    vars: &'a Value,
    data: &Value,
) -> u64 {
    let mut w = Walker {
        fragments: &doc.fragments,
        vars,
        depth: 0,
    };
    match op.ty {
        OperationType::Mutation => {
            let mut fields = Vec::new();
            w.fields(&op.selection_set.node, &mut fields);
            fields.len() as u64 * MUTATION_COST
        }
        _ => w.actual_set(&op.selection_set.node, Some(data)),
    }
}

/// The size of the first input array longer than the limit, in the
/// variables or inline in the document.
pub fn oversized_input(op: &OperationDefinition, vars: &Value) -> Option<usize> {
    fn in_json(v: &Value) -> Option<usize> {
        match v {
            Value::Array(a) if a.len() > MAX_INPUT_ARRAY => Some(a.len()),
            Value::Array(a) => a.iter().find_map(in_json),
            Value::Object(o) => o.values().find_map(in_json),
            _ => None,
        }
    }
    fn in_gql(v: &GqlValue) -> Option<usize> {
        match v {
            GqlValue::List(a) if a.len() > MAX_INPUT_ARRAY => Some(a.len()),
            GqlValue::List(a) => a.iter().find_map(in_gql),
            GqlValue::Object(o) => o.values().find_map(in_gql),
            _ => None,
        }
    }
    fn in_set(set: &SelectionSet) -> Option<usize> {
        set.items.iter().find_map(|s| match &s.node {
            Selection::Field(f) => f
                .node
                .arguments
                .iter()
                .find_map(|(_, v)| {
                    v.node
                        .clone()
                        .into_const_with(|_| Ok::<_, ()>(GqlValue::Null))
                        .ok()
                        .and_then(|c| in_gql(&c))
                })
                .or_else(|| in_set(&f.node.selection_set.node)),
            Selection::InlineFragment(i) => in_set(&i.node.selection_set.node),
            Selection::FragmentSpread(_) => None,
        })
    }
    in_json(vars).or_else(|| in_set(&op.selection_set.node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn cost(q: &str) -> u64 {
        let doc = parse_query(q).unwrap();
        let op = select_operation(&doc, None).unwrap();
        requested(&doc, op, &Value::Null)
    }

    #[test]
    fn documented_examples() {
        assert_eq!(cost("{ shop { name } }"), 1);
        assert_eq!(
            cost("{ products(first: 10) { edges { node { title } } } }"),
            12
        );
        assert_eq!(
            cost("{ orders(first: 5) { nodes { id lineItems(first: 10) { nodes { sku } } } } }"),
            2 + 5 * (1 + 2 + 10)
        );
        assert_eq!(
            cost("mutation { metafieldsSet(metafields: []) { userErrors { message } } }"),
            10
        );
        assert!(
            cost(
                "{ orders(first: 250) { edges { node { lineItems(first: 250) { edges { node { id } } } } } } }"
            ) > MAX_COST
        );
    }
}
