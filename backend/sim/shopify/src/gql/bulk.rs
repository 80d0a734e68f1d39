//! `bulkOperationRunQuery`: run the query without page limits and serve the
//! result as JSONL, nested connections flattened with `__parentId`.

use std::sync::Arc;

use async_graphql::parser::parse_query;
use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use serde_json::{Map, Value};

use super::Gql;
use crate::{Inner, Shop};

/// Rejects what Shopify rejects up front: unparsable text, mutations, and
/// queries without a top-level connection.
pub fn check_query(q: &str) -> Result<(), String> {
    let doc = parse_query(q).map_err(|e| format!("Invalid bulk query: {e}"))?;
    let op = match &doc.operations {
        DocumentOperations::Single(op) => &op.node,
        DocumentOperations::Multiple(m) => match m.values().next() {
            Some(op) if m.len() == 1 => &op.node,
            _ => return Err("Invalid bulk query: exactly one operation is allowed".into()),
        },
    };
    if op.ty != OperationType::Query {
        return Err("Invalid bulk query: only queries are allowed".into());
    }
    let has_connection = op.selection_set.node.items.iter().any(|s| match &s.node {
        Selection::Field(f) => f
            .node
            .selection_set
            .node
            .items
            .iter()
            .any(|c| match &c.node {
                Selection::Field(c) => matches!(c.node.name.node.as_str(), "edges" | "nodes"),
                _ => false,
            }),
        _ => false,
    });
    if !has_connection {
        return Err("Bulk queries must contain at least one connection.".into());
    }
    Ok(())
}

/// Runs the bulk operation in the background.
pub fn spawn(emu: Arc<Inner>, shop: Arc<Shop>, version: String, app: String, id: u64) {
    tokio::spawn(async move {
        let query = {
            let mut data = shop.lock();
            let Some(op) = data.bulk_ops.get_mut(&id) else {
                return;
            };
            op.status = "RUNNING".into();
            op.query.clone()
        };
        let gql = Gql {
            emu: emu.clone(),
            shop: shop.clone(),
            version,
            bulk: true,
            app,
        };
        let resp = emu
            .schema
            .execute(async_graphql::Request::new(query).data(gql))
            .await;
        let now = crate::now_rfc3339();
        let finish = {
            let mut data = shop.lock();
            let Some(op) = data.bulk_ops.get_mut(&id) else {
                return;
            };
            op.completed_at = Some(now.clone());
            if resp.errors.is_empty() {
                let json = resp.data.into_json().unwrap_or(Value::Null);
                let (lines, roots) = flatten(&json);
                op.object_count = lines.len() as u64;
                op.root_object_count = roots;
                op.jsonl = lines.into_iter().map(|l| l + "\n").collect();
                op.status = "COMPLETED".into();
            } else {
                op.status = "FAILED".into();
                op.error_code = Some("INTERNAL_SERVER_ERROR".into());
            }
            serde_json::json!({
                "admin_graphql_api_id": format!("gid://shopify/BulkOperation/{id}"),
                "completed_at": op.completed_at,
                "created_at": op.created_at,
                "error_code": op.error_code.as_ref().map(|c| c.to_lowercase()),
                "status": op.status.to_lowercase(),
                "type": "query",
            })
        };
        crate::webhooks::emit_value(&emu, &shop, "bulk_operations/finish", finish, None);
    });
}

fn connection_items(v: &Value) -> Option<Vec<&Value>> {
    let obj = v.as_object()?;
    if let Some(edges) = obj.get("edges").and_then(Value::as_array) {
        return Some(edges.iter().filter_map(|e| e.get("node")).collect());
    }
    obj.get("nodes")
        .and_then(Value::as_array)
        .map(|n| n.iter().collect())
}

/// Flattens the top-level connection(s) into JSONL lines.
pub fn flatten(data: &Value) -> (Vec<String>, u64) {
    let mut lines = Vec::new();
    let mut roots = 0;
    if let Some(obj) = data.as_object() {
        for v in obj.values() {
            if let Some(items) = connection_items(v) {
                for node in items {
                    roots += 1;
                    emit(node, None, &mut lines);
                }
            }
        }
    }
    (lines, roots)
}

fn emit(node: &Value, parent: Option<&str>, lines: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        return;
    };
    let mut flat = Map::new();
    let mut children = Vec::new();
    for (k, v) in obj {
        match connection_items(v) {
            Some(items) => children.extend(items),
            None => {
                flat.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(p) = parent {
        flat.insert("__parentId".into(), Value::String(p.to_owned()));
    }
    let id = obj.get("id").and_then(Value::as_str).map(str::to_owned);
    lines.push(Value::Object(flat).to_string());
    for c in children {
        emit(c, id.as_deref(), lines);
    }
}
