//! Every GraphQL document the Admin client sends validates against Shopify's
//! 2025-01 Admin schema (introspection in `shared/fixtures/shopify/schema/`):
//! fields, arguments, variable types, fragments, leaf selections, and the
//! enum values and input fields the client puts in variables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use async_graphql::Name;
use async_graphql::parser::types::{OperationType, Selection, SelectionSet};
use serde_json::Value;
use syncline_shopify::client::{DOCUMENTS, topic_enum};

fn shared_dir() -> PathBuf {
    std::env::var_os("SYNCLINE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared"))
}

/// Types by name from the introspection JSON (gunzipped with the system gzip).
fn schema() -> HashMap<String, Value> {
    let path = shared_dir().join("fixtures/shopify/schema/admin_schema_2025-01.json.gz");
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("gzip -dc {}: {e}", path.display()));
    assert!(out.status.success(), "gzip -dc {} failed", path.display());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v.get("data").unwrap_or(&v)["__schema"].clone();
    s["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
        .collect()
}

/// `[X!]!`-style text of an introspection type reference.
fn type_text(t: &Value) -> String {
    match t["kind"].as_str().unwrap() {
        "NON_NULL" => format!("{}!", type_text(&t["ofType"])),
        "LIST" => format!("[{}]", type_text(&t["ofType"])),
        _ => t["name"].as_str().unwrap().to_owned(),
    }
}

fn named(t: &Value) -> String {
    if t["ofType"].is_null() {
        t["name"].as_str().unwrap().to_owned()
    } else {
        named(&t["ofType"])
    }
}

struct Checker<'a> {
    types: &'a HashMap<String, Value>,
    vars: HashMap<String, String>,
    doc: &'a str,
}

impl Checker<'_> {
    fn check(&self, set: &SelectionSet, on: &str) {
        let ty = &self.types[on];
        assert!(
            !set.items.is_empty(),
            "{}: empty selection on {on}",
            self.doc
        );
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    if name == "__typename" {
                        continue;
                    }
                    let field = ty["fields"]
                        .as_array()
                        .and_then(|fs| fs.iter().find(|x| x["name"] == name))
                        .unwrap_or_else(|| panic!("{}: {on} has no field {name}", self.doc));
                    let args = field["args"].as_array().unwrap();
                    for (arg, value) in &f.node.arguments {
                        let def = args
                            .iter()
                            .find(|a| a["name"] == arg.node.as_str())
                            .unwrap_or_else(|| {
                                panic!("{}: {on}.{name} has no argument {}", self.doc, arg.node)
                            });
                        let text = value.node.to_string();
                        if let Some(var) = text.strip_prefix('$') {
                            let declared = &self.vars[var];
                            let wanted = type_text(&def["type"]);
                            assert!(
                                *declared == wanted || *declared == format!("{wanted}!"),
                                "{}: ${var} is {declared}, {on}.{name}({}) wants {wanted}",
                                self.doc,
                                arg.node
                            );
                        }
                    }
                    for a in args {
                        if a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null() {
                            assert!(
                                f.node
                                    .arguments
                                    .iter()
                                    .any(|(n, _)| n.node.as_str() == a["name"]),
                                "{}: {on}.{name} needs argument {}",
                                self.doc,
                                a["name"]
                            );
                        }
                    }
                    let inner = named(&field["type"]);
                    let kind = self.types[&inner]["kind"].as_str().unwrap();
                    let leaf = matches!(kind, "SCALAR" | "ENUM");
                    assert_eq!(
                        leaf,
                        f.node.selection_set.node.items.is_empty(),
                        "{}: selection on {on}.{name} ({kind})",
                        self.doc
                    );
                    if !leaf {
                        self.check(&f.node.selection_set.node, &inner);
                    }
                }
                Selection::InlineFragment(frag) => {
                    let target = frag
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.to_string())
                        .unwrap_or_else(|| on.to_owned());
                    let possible = ty["possibleTypes"]
                        .as_array()
                        .map(|p| p.iter().any(|t| t["name"] == target.as_str()))
                        .unwrap_or(target == on);
                    assert!(possible, "{}: {target} is not a possible {on}", self.doc);
                    self.check(&frag.node.selection_set.node, &target);
                }
                Selection::FragmentSpread(_) => panic!("{}: named fragments not checked", self.doc),
            }
        }
    }
}

#[test]
fn client_documents_validate_against_the_2025_01_schema() {
    let types = schema();
    assert!(!DOCUMENTS.is_empty());
    for (name, doc) in DOCUMENTS {
        let parsed = async_graphql::parser::parse_query(doc)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        let mut ops = 0;
        for (op_name, op) in parsed.operations.iter() {
            ops += 1;
            assert_eq!(op_name.map(Name::as_str), Some(*name));
            let root = match op.node.ty {
                OperationType::Query => "QueryRoot",
                OperationType::Mutation => "Mutation",
                OperationType::Subscription => panic!("no subscriptions"),
            };
            let vars = op
                .node
                .variable_definitions
                .iter()
                .map(|v| {
                    (
                        v.node.name.node.to_string(),
                        v.node.var_type.node.to_string(),
                    )
                })
                .collect::<HashMap<_, _>>();
            for ty in vars.values() {
                let base = ty.trim_matches(|c| c == '[' || c == ']' || c == '!');
                assert!(types.contains_key(base), "{name}: unknown type {base}");
            }
            Checker {
                types: &types,
                vars,
                doc: name,
            }
            .check(&op.node.selection_set.node, root);
        }
        assert_eq!(ops, 1, "{name}");
    }
}

#[test]
fn variables_use_schema_enums_and_input_fields() {
    let types = schema();
    let enum_values = |t: &str| -> Vec<String> {
        types[t]["enumValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let topics = enum_values("WebhookSubscriptionTopic");
    for t in [
        "orders/create",
        "orders/updated",
        "orders/cancelled",
        "orders/paid",
        "refunds/create",
        "customers/create",
        "customers/update",
        "products/update",
        "inventory_levels/update",
        "fulfillments/create",
        "bulk_operations/finish",
        "ORDERS_CREATE",
    ] {
        assert!(topics.contains(&topic_enum(t)), "{t} → {}", topic_enum(t));
    }
    // The privacy topics are set in the app configuration, not through the API.
    assert!(!topics.contains(&topic_enum("shop/redact")));
    assert!(enum_values("WebhookSubscriptionFormat").contains(&"JSON".to_owned()));
    let input: Vec<String> = types["WebhookSubscriptionInput"]["inputFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    for f in ["callbackUrl", "format"] {
        assert!(
            input.contains(&f.to_owned()),
            "WebhookSubscriptionInput.{f}"
        );
    }
}
