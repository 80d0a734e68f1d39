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
    errors: Vec<String>,
}

impl Checker<'_> {
    fn check(&mut self, set: &SelectionSet, on: &str) {
        let Some(ty) = self.types.get(on) else {
            self.errors.push(format!("unknown type {on}"));
            return;
        };
        if set.items.is_empty() {
            self.errors.push(format!("empty selection on {on}"));
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    if name == "__typename" {
                        continue;
                    }
                    let Some(field) = ty["fields"]
                        .as_array()
                        .and_then(|fs| fs.iter().find(|x| x["name"] == name))
                    else {
                        self.errors.push(format!("{on} has no field {name}"));
                        continue;
                    };
                    let args = field["args"].as_array().cloned().unwrap_or_default();
                    for (arg, value) in &f.node.arguments {
                        let Some(def) = args.iter().find(|a| a["name"] == arg.node.as_str()) else {
                            self.errors
                                .push(format!("{on}.{name} has no argument {}", arg.node));
                            continue;
                        };
                        let text = value.node.to_string();
                        if let Some(var) = text.strip_prefix('$') {
                            let wanted = type_text(&def["type"]);
                            match self.vars.get(var) {
                                Some(d) if *d == wanted || *d == format!("{wanted}!") => {}
                                Some(d) => self.errors.push(format!(
                                    "${var} is {d}, {on}.{name}({}) wants {wanted}",
                                    arg.node
                                )),
                                None => self.errors.push(format!("${var} is not declared")),
                            }
                        }
                    }
                    for a in &args {
                        let given = f
                            .node
                            .arguments
                            .iter()
                            .any(|(n, _)| n.node.as_str() == a["name"]);
                        if a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null() && !given
                        {
                            self.errors
                                .push(format!("{on}.{name} needs argument {}", a["name"]));
                        }
                    }
                    let inner = named(&field["type"]);
                    let kind = self.types[&inner]["kind"].as_str().unwrap_or_default();
                    let leaf = matches!(kind, "SCALAR" | "ENUM");
                    if leaf != f.node.selection_set.node.items.is_empty() {
                        self.errors
                            .push(format!("wrong selection on {on}.{name} ({kind})"));
                    }
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
                    if !possible {
                        self.errors.push(format!("{target} is not a possible {on}"));
                    }
                    self.check(&frag.node.selection_set.node, &target);
                }
                Selection::FragmentSpread(_) => {
                    self.errors.push("named fragments are not checked".into());
                }
            }
        }
    }
}

/// Errors of one single-operation document against the schema.
fn validate(types: &HashMap<String, Value>, name: &str, doc: &str) -> Vec<String> {
    let parsed = match async_graphql::parser::parse_query(doc) {
        Ok(p) => p,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let mut errors = Vec::new();
    let mut ops = 0;
    for (op_name, op) in parsed.operations.iter() {
        ops += 1;
        if op_name.map(Name::as_str) != Some(name) {
            errors.push(format!("operation is named {op_name:?}, not {name}"));
        }
        let root = match op.node.ty {
            OperationType::Query => "QueryRoot",
            OperationType::Mutation => "Mutation",
            OperationType::Subscription => "Subscription",
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
            if !types.contains_key(base) {
                errors.push(format!("unknown variable type {base}"));
            }
        }
        let mut checker = Checker {
            types,
            vars,
            errors: Vec::new(),
        };
        checker.check(&op.node.selection_set.node, root);
        errors.extend(checker.errors);
    }
    if ops != 1 {
        errors.push(format!("{ops} operations"));
    }
    errors
}

#[test]
fn client_documents_validate_against_the_2025_01_schema() {
    let types = schema();
    assert!(!DOCUMENTS.is_empty());
    for (name, doc) in DOCUMENTS {
        let errors = validate(&types, name, doc);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn the_check_catches_mistakes() {
    let types = schema();
    for (doc, expected) in [
        (
            "query Q { shop { name currency } }",
            "Shop has no field currency",
        ),
        ("query Q { shop }", "wrong selection on QueryRoot.shop"),
        (
            "query Q { shop { name { x } } }",
            "wrong selection on Shop.name",
        ),
        (
            "query Q($n: String) { webhookSubscriptions(first: $n) { nodes { id } } }",
            "$n is String",
        ),
        (
            "query Q { webhookSubscriptions(frist: 1) { nodes { id } } }",
            "has no argument frist",
        ),
        (
            "mutation Q($id: ID!) { webhookSubscriptionDelete(id: $id) { userErrors { code } } }",
            "UserError has no field code",
        ),
        (
            "mutation Q { webhookSubscriptionCreate(webhookSubscription: {}) { userErrors { field } } }",
            "needs argument \"topic\"",
        ),
        (
            "query Q { webhookSubscriptions(first: 1) { nodes { endpoint { ... on Shop { name } } } } }",
            "Shop is not a possible WebhookSubscriptionEndpoint",
        ),
    ] {
        let errors = validate(&types, "Q", doc);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{doc}: expected `{expected}`, got {errors:?}"
        );
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
