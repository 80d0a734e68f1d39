//! Field catalogues of both systems, as data: what a mapping may read and write.
//!
//! The JSON files under `schemas/` are generated from the shared fixtures by
//! `schemas/gen/gen_schemas.py` and embedded here, so the engine and the console's
//! mapper see the same catalogue. Tenants extend a schema with their metafield
//! definitions and D365 custom fields before compiling a mapping.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Raw JSON of the D365 entity property catalogue.
pub const D365_ENTITIES_JSON: &str = include_str!("../schemas/d365_entities.json");
/// Raw JSON of the Shopify webhook document catalogue (mapping sources).
pub const SHOPIFY_DOCUMENTS_JSON: &str = include_str!("../schemas/shopify_documents.json");
/// Raw JSON of the Shopify mutation inputs the reverse flows write (mapping targets).
pub const SHOPIFY_TARGETS_JSON: &str = include_str!("../schemas/shopify_targets.json");

/// Error loading or extending a schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// An embedded or supplied catalogue is not valid JSON of the expected shape.
    #[error("invalid schema catalogue: {0}")]
    Invalid(String),
    /// A named document or entity is not in the catalogue.
    #[error("unknown {kind} {name:?}")]
    Unknown {
        /// `entity` or `document`.
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A tenant extension collides with or is malformed.
    #[error("invalid extension {name:?}: {reason}")]
    Extension {
        /// The metafield or custom field name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Scalar and structural types a field may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text.
    String,
    /// 64-bit integer.
    Integer,
    /// Exact decimal (money, quantities). Shopify often sends these as strings.
    Decimal,
    /// `true`/`false`.
    Boolean,
    /// Date and time with offset (ISO 8601).
    Datetime,
    /// Calendar date.
    Date,
    /// Named enumeration (see `enum`).
    Enum,
    /// Nested object (see `fields`).
    Object,
    /// List (see `items`).
    Array,
    /// Anything (expression results, opaque JSON).
    Any,
}

/// One field of a document or entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    /// Type of the field.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Enumeration name when `ty` is `enum`.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_name: Option<String>,
    /// Whether `null` is a valid value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nullable: bool,
    /// Maximum length in characters (strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Whether a target record must carry this field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Whether the field is part of the entity key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key: bool,
    /// Whether a tenant added the field (metafield or D365 custom field).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custom: bool,
    /// Children of an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, FieldDef>>,
    /// Element of an array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<FieldDef>>,
}

impl FieldDef {
    /// A plain field of the given type.
    pub fn of(ty: FieldType) -> Self {
        Self {
            ty,
            enum_name: None,
            nullable: true,
            max_length: None,
            required: false,
            key: false,
            custom: false,
            fields: None,
            items: None,
        }
    }

    /// An object with the given children.
    pub fn object(fields: BTreeMap<String, FieldDef>) -> Self {
        Self {
            fields: Some(fields),
            ..Self::of(FieldType::Object)
        }
    }

    /// An array of `item`.
    pub fn array(item: FieldDef) -> Self {
        Self {
            items: Some(Box::new(item)),
            ..Self::of(FieldType::Array)
        }
    }

    /// Child field by name, for objects.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.as_ref().and_then(|f| f.get(name))
    }
}

/// A metafield definition a tenant declares (Shopify `namespace.key` and type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetafieldDef {
    /// Namespace, e.g. `custom`.
    pub namespace: String,
    /// Key, e.g. `warranty_code`.
    pub key: String,
    /// Engine type of the value.
    #[serde(rename = "type")]
    pub ty: FieldType,
}

/// Which system a schema describes; decides wire encodings of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum System {
    /// Shopify (decimals travel as strings).
    Shopify,
    /// Dynamics 365 F&O (decimals travel as JSON numbers).
    D365,
}

/// A document shape: the root object whose top-level fields are, for targets,
/// the entities written (an object = one record, an array = many records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Catalogue name, e.g. `shopify.order` or `d365.sales_order`.
    pub name: String,
    /// The system described.
    pub system: System,
    /// Root object.
    pub root: FieldDef,
    /// Enumerations referenced by `enum` fields: name to allowed members.
    #[serde(default)]
    pub enums: BTreeMap<String, Vec<String>>,
    /// Metafield definitions the tenant declared (sources `metafield:ns.key`).
    #[serde(default)]
    pub metafields: Vec<MetafieldDef>,
}

#[derive(Deserialize)]
struct D365Catalogue {
    entities: BTreeMap<String, D365Entity>,
    #[serde(default)]
    enums: BTreeMap<String, Vec<String>>,
}

/// One D365 entity set in the catalogue.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct D365Entity {
    /// Key properties in order.
    pub key: Vec<String>,
    /// Properties by name.
    pub fields: BTreeMap<String, FieldDef>,
}

#[derive(Deserialize)]
struct ShopifyCatalogue {
    documents: BTreeMap<String, FieldDef>,
    #[serde(default)]
    enums: BTreeMap<String, Vec<String>>,
}

fn d365_catalogue() -> Result<&'static D365Catalogue, SchemaError> {
    static CELL: OnceLock<Result<D365Catalogue, SchemaError>> = OnceLock::new();
    CELL.get_or_init(|| {
        serde_json::from_str(D365_ENTITIES_JSON).map_err(|e| SchemaError::Invalid(e.to_string()))
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn shopify_catalogue(targets: bool) -> Result<&'static ShopifyCatalogue, SchemaError> {
    static SRC: OnceLock<Result<ShopifyCatalogue, SchemaError>> = OnceLock::new();
    static TGT: OnceLock<Result<ShopifyCatalogue, SchemaError>> = OnceLock::new();
    let (cell, json) = if targets {
        (&TGT, SHOPIFY_TARGETS_JSON)
    } else {
        (&SRC, SHOPIFY_DOCUMENTS_JSON)
    };
    cell.get_or_init(|| serde_json::from_str(json).map_err(|e| SchemaError::Invalid(e.to_string())))
        .as_ref()
        .map_err(Clone::clone)
}

/// Names of the D365 entity sets in the catalogue.
pub fn d365_entity_names() -> Result<Vec<&'static str>, SchemaError> {
    Ok(d365_catalogue()?
        .entities
        .keys()
        .map(String::as_str)
        .collect())
}

/// One D365 entity set from the catalogue.
pub fn d365_entity(name: &str) -> Result<&'static D365Entity, SchemaError> {
    d365_catalogue()?
        .entities
        .get(name)
        .ok_or_else(|| SchemaError::Unknown {
            kind: "entity",
            name: name.to_owned(),
        })
}

impl Schema {
    /// A Shopify source document (`order`, `customer`, `product`, `inventory_level`,
    /// `fulfillment`, `refund`, `transaction`).
    pub fn shopify_document(doc: &str) -> Result<Self, SchemaError> {
        Self::shopify(doc, false)
    }

    /// A Shopify target document (`product_set`, `inventory_set_quantities`,
    /// `fulfillment_create`).
    pub fn shopify_target(doc: &str) -> Result<Self, SchemaError> {
        Self::shopify(doc, true)
    }

    fn shopify(doc: &str, targets: bool) -> Result<Self, SchemaError> {
        let cat = shopify_catalogue(targets)?;
        let root = cat.documents.get(doc).ok_or_else(|| SchemaError::Unknown {
            kind: "document",
            name: doc.to_owned(),
        })?;
        Ok(Self {
            name: format!("shopify.{doc}"),
            system: System::Shopify,
            root: root.clone(),
            enums: cat.enums.clone(),
            metafields: Vec::new(),
        })
    }

    /// A D365 target document made of entity sets: `(entity, many)` where `many`
    /// means the document carries a list of records (e.g. sales order lines).
    pub fn d365_target(name: &str, entities: &[(&str, bool)]) -> Result<Self, SchemaError> {
        let cat = d365_catalogue()?;
        let mut root = BTreeMap::new();
        for (entity, many) in entities {
            let e = d365_entity(entity)?;
            let mut obj = FieldDef::object(e.fields.clone());
            obj.nullable = false;
            root.insert(
                (*entity).to_owned(),
                if *many { FieldDef::array(obj) } else { obj },
            );
        }
        Ok(Self {
            name: format!("d365.{name}"),
            system: System::D365,
            root: FieldDef::object(root),
            enums: cat.enums.clone(),
            metafields: Vec::new(),
        })
    }

    /// A D365 source document: one record of `entity` (or none), with lists of
    /// child records under `children` (`(field name, entity)`), e.g. lines, and a
    /// `syncline` object carrying the link context the runner supplies
    /// (Shopify ids of already synchronised records).
    pub fn d365_source(
        name: &str,
        entity: Option<&str>,
        children: &[(&str, &str)],
        context: &[(&str, FieldType)],
    ) -> Result<Self, SchemaError> {
        let cat = d365_catalogue()?;
        let mut fields = match entity {
            Some(e) => d365_entity(e)?.fields.clone(),
            None => BTreeMap::new(),
        };
        for (field, child) in children {
            let c = FieldDef::object(d365_entity(child)?.fields.clone());
            fields.insert((*field).to_owned(), FieldDef::array(c));
        }
        if !context.is_empty() {
            let ctx = context
                .iter()
                .map(|(n, t)| ((*n).to_owned(), FieldDef::of(*t)))
                .collect();
            fields.insert("syncline".to_owned(), FieldDef::object(ctx));
        }
        Ok(Self {
            name: format!("d365.{name}"),
            system: System::D365,
            root: FieldDef::object(fields),
            enums: cat.enums.clone(),
            metafields: Vec::new(),
        })
    }

    /// A D365 source document made of one record of `entity`.
    pub fn d365_record(entity: &str) -> Result<Self, SchemaError> {
        Self::d365_source(entity, Some(entity), &[], &[])
    }

    /// Declares a tenant metafield so that `metafield` sources can read it.
    pub fn add_metafield(&mut self, def: MetafieldDef) -> Result<(), SchemaError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !ok(&def.namespace) || !ok(&def.key) {
            return Err(SchemaError::Extension {
                name: format!("{}.{}", def.namespace, def.key),
                reason: "namespace and key must be non-empty [A-Za-z0-9_-]".into(),
            });
        }
        if matches!(def.ty, FieldType::Object | FieldType::Array) {
            return Err(SchemaError::Extension {
                name: format!("{}.{}", def.namespace, def.key),
                reason: "metafields map as scalars".into(),
            });
        }
        self.metafields
            .retain(|m| !(m.namespace == def.namespace && m.key == def.key));
        self.metafields.push(def);
        Ok(())
    }

    /// Looks up a declared metafield.
    pub fn metafield(&self, namespace: &str, key: &str) -> Option<&MetafieldDef> {
        self.metafields
            .iter()
            .find(|m| m.namespace == namespace && m.key == key)
    }

    /// Adds a D365 custom field (or any tenant extension field) to a top-level
    /// entity of this schema, so that rules may target it.
    pub fn add_custom_field(
        &mut self,
        entity: &str,
        name: &str,
        mut def: FieldDef,
    ) -> Result<(), SchemaError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SchemaError::Extension {
                name: name.to_owned(),
                reason: "field names are [A-Za-z0-9_]+".into(),
            });
        }
        def.custom = true;
        let top = self
            .root
            .fields
            .as_mut()
            .and_then(|f| f.get_mut(entity))
            .ok_or_else(|| SchemaError::Unknown {
                kind: "entity",
                name: entity.to_owned(),
            })?;
        let obj = if top.ty == FieldType::Array {
            top.items.as_deref_mut()
        } else {
            Some(top)
        };
        let fields = obj
            .and_then(|o| o.fields.as_mut())
            .ok_or_else(|| SchemaError::Extension {
                name: name.to_owned(),
                reason: format!("{entity} is not an object"),
            })?;
        if fields.get(name).is_some_and(|f| !f.custom) {
            return Err(SchemaError::Extension {
                name: name.to_owned(),
                reason: "a standard field already has that name".into(),
            });
        }
        fields.insert(name.to_owned(), def);
        Ok(())
    }

    /// Top-level entities: `(name, many, fields)`.
    pub fn entities(&self) -> Vec<(&str, bool, &BTreeMap<String, FieldDef>)> {
        let mut out = Vec::new();
        for (name, f) in self.root.fields.iter().flatten() {
            let (many, obj) = match f.ty {
                FieldType::Array => (true, f.items.as_deref()),
                _ => (false, Some(f)),
            };
            if let Some(fields) = obj.and_then(|o| o.fields.as_ref()) {
                out.push((name.as_str(), many, fields));
            }
        }
        out
    }

    /// Every leaf path of the document, with `[]` for arrays, for the mapper UI
    /// and suggestions. Metafields appear as `metafield:ns.key`.
    pub fn leaf_paths(&self) -> Vec<(String, &FieldDef)> {
        let mut out = Vec::new();
        walk(&self.root, String::new(), &mut out, 0);
        out
    }
}

fn walk<'a>(f: &'a FieldDef, prefix: String, out: &mut Vec<(String, &'a FieldDef)>, depth: usize) {
    // Catalogues are shallow; the cap only protects against a malformed tenant schema.
    if depth > 16 {
        return;
    }
    match f.ty {
        FieldType::Object => {
            for (k, c) in f.fields.iter().flatten() {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(c, p, out, depth + 1);
            }
        }
        FieldType::Array => match f.items.as_deref() {
            Some(it) if matches!(it.ty, FieldType::Object | FieldType::Array) => {
                walk(it, format!("{prefix}[]"), out, depth + 1)
            }
            _ => out.push((prefix, f)),
        },
        _ => out.push((prefix, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_load() {
        let s = Schema::shopify_document("order").unwrap();
        assert!(s.root.field("line_items").is_some());
        let t = Schema::d365_target(
            "sales_order",
            &[("SalesOrderHeadersV2", false), ("SalesOrderLines", true)],
        )
        .unwrap();
        assert_eq!(t.entities().len(), 2);
        let e = d365_entity("SalesOrderHeadersV2").unwrap();
        assert_eq!(e.fields["CustomersOrderReference"].max_length, Some(60));
        assert!(Schema::shopify_target("product_set").is_ok());
        assert!(Schema::d365_record("PackingSlipTrackingInformation").is_ok());
    }

    #[test]
    fn custom_fields_extend_targets() {
        let mut t = Schema::d365_target("x", &[("SalesOrderLines", true)]).unwrap();
        t.add_custom_field(
            "SalesOrderLines",
            "ZZGiftWrap",
            FieldDef::of(FieldType::String),
        )
        .unwrap();
        assert!(
            t.add_custom_field(
                "SalesOrderLines",
                "ItemNumber",
                FieldDef::of(FieldType::String)
            )
            .is_err()
        );
        assert!(
            t.add_custom_field("Nope", "A", FieldDef::of(FieldType::String))
                .is_err()
        );
    }
}
