//! Default mapping templates, one per flow, with the schemas each flow maps
//! between. The JSON lives in `templates/` so the console can serve it as is.

use serde::{Deserialize, Serialize};

use crate::mapping::{CompiledMapping, MappingDocument, MappingError, compile};
use crate::schema::{FieldType, Schema, SchemaError};

/// One direction of one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Shopify orders -> D365 sales orders.
    Orders,
    /// Shopify customers -> D365 customers.
    Customers,
    /// D365 released products -> Shopify products and variants.
    Products,
    /// D365 on-hand -> Shopify inventory quantities.
    Inventory,
    /// D365 shipments -> Shopify fulfillments with tracking.
    Fulfillments,
    /// Shopify refunds -> D365 credit notes.
    Refunds,
    /// Shopify transactions -> D365 customer payment journal lines.
    Payments,
}

/// Error building a default template.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TemplateError {
    /// The embedded JSON does not parse.
    #[error("template {flow:?} is invalid: {reason}")]
    Invalid {
        /// Flow.
        flow: Flow,
        /// Parser message.
        reason: String,
    },
    /// A schema is missing from the catalogue.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The template does not compile against its schemas.
    #[error("template does not compile: {0:?}")]
    Compile(Vec<MappingError>),
}

impl Flow {
    /// Every flow.
    pub const ALL: [Flow; 7] = [
        Flow::Orders,
        Flow::Customers,
        Flow::Products,
        Flow::Inventory,
        Flow::Fulfillments,
        Flow::Refunds,
        Flow::Payments,
    ];

    /// Name as used in mapping documents and URLs.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Orders => "orders",
            Flow::Customers => "customers",
            Flow::Products => "products",
            Flow::Inventory => "inventory",
            Flow::Fulfillments => "fulfillments",
            Flow::Refunds => "refunds",
            Flow::Payments => "payments",
        }
    }

    /// Parses a flow name.
    pub fn from_name(name: &str) -> Option<Flow> {
        Flow::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Raw JSON of the default template.
    pub fn template_json(self) -> &'static str {
        match self {
            Flow::Orders => include_str!("../templates/orders.json"),
            Flow::Customers => include_str!("../templates/customers.json"),
            Flow::Products => include_str!("../templates/products.json"),
            Flow::Inventory => include_str!("../templates/inventory.json"),
            Flow::Fulfillments => include_str!("../templates/fulfillments.json"),
            Flow::Refunds => include_str!("../templates/refunds.json"),
            Flow::Payments => include_str!("../templates/payments.json"),
        }
    }

    /// A real public Shopify payload the flow reads, for previews before any event arrived
    /// (flows that read from D365 have none).
    pub fn sample_json(self) -> Option<&'static str> {
        match self {
            Flow::Orders => Some(include_str!(
                "../tests/fixtures/shopify/shopify_webhook_orders_create_2026-07.json"
            )),
            Flow::Customers => Some(include_str!(
                "../tests/fixtures/shopify/shopify_webhook_customers_create_2026-07.json"
            )),
            Flow::Refunds => Some(include_str!(
                "../tests/fixtures/shopify/shopify_webhook_refunds_create_2026-07_abridged.json"
            )),
            _ => None,
        }
    }

    /// The default mapping document.
    pub fn default_template(self) -> Result<MappingDocument, TemplateError> {
        serde_json::from_str(self.template_json()).map_err(|e| TemplateError::Invalid {
            flow: self,
            reason: e.to_string(),
        })
    }

    /// What the flow reads.
    pub fn source_schema(self) -> Result<Schema, SchemaError> {
        match self {
            Flow::Orders => Schema::shopify_document("order"),
            Flow::Customers => Schema::shopify_document("customer"),
            Flow::Refunds => Schema::shopify_document("refund"),
            Flow::Payments => Schema::shopify_document("transaction"),
            Flow::Products => Schema::d365_source(
                "released_product",
                Some("ReleasedProductsV2"),
                &[("Variants", "ReleasedProductsV2")],
                &[("shopify_product_id", FieldType::String)],
            ),
            Flow::Inventory => Schema::d365_source(
                "on_hand_page",
                None,
                &[("value", "WarehousesOnHandV2")],
                &[],
            ),
            Flow::Fulfillments => Schema::d365_source(
                "shipment",
                Some("PackingSlipTrackingInformation"),
                &[("Lines", "SalesOrderLines")],
                &[
                    ("shopify_order_id", FieldType::String),
                    ("carrier", FieldType::String),
                ],
            ),
        }
    }

    /// What the flow writes.
    pub fn target_schema(self) -> Result<Schema, SchemaError> {
        match self {
            Flow::Orders => Schema::d365_target(
                "sales_order",
                &[("SalesOrderHeadersV2", false), ("SalesOrderLines", true)],
            ),
            Flow::Refunds => Schema::d365_target(
                "credit_note",
                &[("SalesOrderHeadersV2", false), ("SalesOrderLines", true)],
            ),
            Flow::Customers => Schema::d365_target("customer", &[("CustomersV3", false)]),
            Flow::Payments => Schema::d365_target(
                "payment_journal_line",
                &[("CustomerPaymentJournalLines", false)],
            ),
            Flow::Products => Schema::shopify_target("product_set"),
            Flow::Inventory => Schema::shopify_target("inventory_set_quantities"),
            Flow::Fulfillments => Schema::shopify_target("fulfillment_create"),
        }
    }

    /// Compiles the default template against the flow's standard schemas.
    pub fn compile_default(self) -> Result<CompiledMapping, TemplateError> {
        self.compile_document(&self.default_template()?)
    }

    /// Compiles a tenant's document against the flow's standard schemas.
    pub fn compile_document(self, doc: &MappingDocument) -> Result<CompiledMapping, TemplateError> {
        compile(doc, &self.source_schema()?, &self.target_schema()?).map_err(TemplateError::Compile)
    }
}
