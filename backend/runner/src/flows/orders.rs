//! Order to cash: a Shopify order becomes a D365 sales order (header and lines in one `$batch`
//! changeset), once.
//!
//! Exactly-once rests on two things. A link claim in our database (`claim_link`) makes
//! concurrent runs for the same order or customer — in any process — wait for each other.
//! And before creating, the flow looks the order up in D365 by `CustomersOrderReference` (and
//! `CustomerRequisitionNumber`, the Shopify order id, since order names repeat across shops),
//! so an attempt that created the order but died before recording it finds it instead of
//! creating a second one.
//!
//! `orders/updated` changes the header (addresses, e-mail, names) while D365 still allows it
//! (status `Backorder`); lines are left as created. `orders/cancelled` deletes the sales order
//! while it is open — F&O's data entities offer no cancel action, and an open order without
//! postings is what deleting is for — and otherwise says why it cannot.

use std::str::FromStr;
use std::sync::atomic::AtomicU64;

use serde_json::{Value, json};
use syncline_core::mapping::apply_value;
use syncline_core::model::CurrencyCode;
use syncline_d365::batch::Batch;
use syncline_d365::odata::{Key, literal};
use syncline_d365::{ODataClient, Query};
use syncline_shopify::payload::ShopifyOrder;
use syncline_store::{Connection, LinkClaim, Pair, Run, RunEvent};

use super::{ActiveMapping, Billable, D365Session, FlowEngine, FlowError, FlowSuccess};

/// Link entity of sales orders (key: the Shopify order id).
const ORDER_LINK: &str = "sales_order";
/// Link entity of customers (key: the Shopify customer id, or `guest`).
const CUSTOMER_LINK: &str = "customer";
/// Customer group of customers created from Shopify unless the D365 connection names one
/// (`customer_group` setting); `40` is "Internet customers" in the Contoso demo data.
const DEFAULT_CUSTOMER_GROUP: &str = "40";
/// Header properties an `orders/updated` may change.
const UPDATABLE_HEADER: &[&str] = &[
    "Email",
    "SalesOrderName",
    "RequestedShippingDate",
    "CustomerPaymentMethodName",
    "DeliveryAddressName",
    "DeliveryAddressStreet",
    "DeliveryAddressStreetNumber",
    "DeliveryAddressCity",
    "DeliveryAddressZipCode",
    "DeliveryAddressStateId",
    "DeliveryAddressCountryRegionISOCode",
    "DeliveryAddressCountryRegionId",
];

/// What a run of the orders flow works on.
pub(super) struct Input<'a> {
    pub run: &'a Run,
    pub pair: &'a Pair,
    pub event: RunEvent,
    pub d365: &'a Connection,
}

pub(super) async fn process(
    engine: &FlowEngine,
    input: Input<'_>,
    mapping: &ActiveMapping,
    calls: &AtomicU64,
) -> Result<FlowSuccess, FlowError> {
    let Input {
        run,
        pair,
        event,
        d365,
    } = input;
    let payload: Value = serde_json::from_slice(&event.payload)
        .map_err(|e| FlowError::Permanent(format!("malformed JSON: {e}")))?;
    // From the bytes, not from `payload`: that would clone the whole document first.
    let order: ShopifyOrder = serde_json::from_slice(&event.payload)
        .map_err(|e| FlowError::Permanent(format!("not a Shopify order: {e}")))?;
    let session = engine.d365_session(d365, calls).await?;
    let order_flow = OrderFlow {
        engine,
        mapping,
        run,
        pair,
        d365,
        session,
        order,
        payload: std::sync::Mutex::new(payload),
        shop_domain: event.shop_domain,
    };
    match event.topic.as_str() {
        "orders/create" => order_flow.create().await,
        "orders/updated" => order_flow.update().await,
        "orders/cancelled" => order_flow.cancel().await,
        other => Err(FlowError::Permanent(format!(
            "the orders flow does not handle {other}"
        ))),
    }
}

struct OrderFlow<'a> {
    engine: &'a FlowEngine,
    mapping: &'a ActiveMapping,
    run: &'a Run,
    pair: &'a Pair,
    d365: &'a Connection,
    session: D365Session<'a>,
    order: ShopifyOrder,
    /// The order as parsed once; locked only while the mapping reads it.
    payload: std::sync::Mutex<Value>,
    shop_domain: String,
}

/// A sales order as D365 knows it.
struct SalesOrder {
    number: String,
    company: String,
    status: String,
}

impl OrderFlow<'_> {
    /// A billable sync of this order: metered once per (pair, flow, action, record).
    fn billable(&self, action: &'static str, record_id: String) -> Billable {
        Billable { action, record_id }
    }

    /// The order at the version this event carries: two different updates are two syncs,
    /// the same update delivered or replayed again is one.
    fn version_key(&self) -> String {
        match &self.order.updated_at {
            Some(at) => format!("{}@{at}", self.order.id),
            None => format!("{}@{}", self.order.id, self.run.inbox_id),
        }
    }

    fn owner(&self) -> String {
        self.run.id.to_string()
    }

    fn claim_stale(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.engine.options.lease * 2)
            .unwrap_or_else(|_| chrono::Duration::minutes(4))
    }

    fn client(&self) -> &ODataClient {
        &self.session.client
    }

    async fn create(&self) -> Result<FlowSuccess, FlowError> {
        let store = &self.engine.store;
        let order_id = self.order.id.to_string();
        let claim = store
            .claim_new_link(
                self.run.tenant_id,
                self.pair.id,
                ORDER_LINK,
                &order_id,
                &self.owner(),
                self.claim_stale(),
            )
            .await?;
        match claim {
            LinkClaim::Linked(number) => {
                return Ok(FlowSuccess {
                    d365_ref: Some(number.clone()),
                    output: Value::Null,
                    note: format!("already in D365 as sales order {number}; nothing was created"),
                    billable: Some(self.billable("create", self.order.id.to_string())),
                });
            }
            LinkClaim::Busy => {
                return Err(FlowError::Busy(format!(
                    "another run is creating the sales order of {} right now",
                    self.order.name
                )));
            }
            LinkClaim::Claimed => {}
        }
        let result = self.create_claimed(&order_id).await;
        if let Err(FlowError::Permanent(_) | FlowError::Auth(_)) = &result {
            // Nothing was created: let a replay or a later event try afresh.
            store
                .release_link(
                    self.run.tenant_id,
                    self.pair.id,
                    ORDER_LINK,
                    &order_id,
                    &self.owner(),
                )
                .await?;
        }
        result
    }

    async fn create_claimed(&self, order_id: &str) -> Result<FlowSuccess, FlowError> {
        let account = self.customer_account().await?;
        let (header, lines) = self.map(&account)?;
        if let Some(existing) = self.find_existing(&header).await? {
            self.complete_link(order_id, &existing.number).await?;
            return Ok(FlowSuccess {
                d365_ref: Some(existing.number.clone()),
                output: Value::Null,
                note: format!(
                    "found sales order {} with this order's reference in D365 and linked it; nothing was created",
                    existing.number
                ),
                billable: Some(self.billable("create", self.order.id.to_string())),
            });
        }
        for (index, line) in lines.iter().enumerate() {
            let item = line.get("ItemNumber").and_then(Value::as_str).unwrap_or("");
            if item.trim().is_empty() {
                let name = line
                    .get("LineDescription")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                return Err(FlowError::Permanent(format!(
                    "line {} (\"{name}\") has no SKU; D365 needs an item number on every sales order line",
                    index + 1
                )));
            }
        }
        let mut batch = Batch::new();
        let mut changeset = batch.changeset();
        let header_op = changeset
            .create(self.client(), "SalesOrderHeadersV2", &header)
            .map_err(FlowError::from)?;
        for line in &lines {
            changeset
                .create_under(header_op, "SalesOrderLines", line)
                .map_err(FlowError::from)?;
        }
        changeset.close();
        let response = self.session.batch(&batch).await?;
        let results = response
            .into_result()
            .map_err(|error| self.explain_unknown_sku(FlowError::from(error), &lines))?;
        let created: Value = results
            .first()
            .ok_or_else(|| FlowError::Transient("D365 answered an empty $batch".into()))?
            .json()
            .map_err(FlowError::from)?;
        let number = created
            .get("SalesOrderNumber")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                FlowError::Transient("D365 created the order but sent no SalesOrderNumber".into())
            })?
            .to_owned();
        self.complete_link(order_id, &number).await?;
        Ok(FlowSuccess {
            d365_ref: Some(number.clone()),
            output: json!({ "SalesOrderHeadersV2": header, "SalesOrderLines": lines }),
            note: format!(
                "created sales order {number} with {} line(s) for customer {account}",
                lines.len()
            ),
            billable: Some(self.billable("create", self.order.id.to_string())),
        })
    }

    /// D365's Infolog names the value and the field; say plainly that it is an unknown SKU.
    fn explain_unknown_sku(&self, error: FlowError, lines: &[Value]) -> FlowError {
        let FlowError::Permanent(message) = &error else {
            return error;
        };
        let unknown = lines
            .iter()
            .filter_map(|line| line.get("ItemNumber").and_then(Value::as_str))
            .find(|sku| message.contains(&format!("'{sku}'")));
        match unknown {
            Some(sku) => FlowError::Permanent(format!(
                "unknown SKU {sku}: D365 has no released product with item number {sku} ({message})"
            )),
            None => error,
        }
    }

    async fn complete_link(&self, order_id: &str, number: &str) -> Result<(), FlowError> {
        self.engine
            .store
            .complete_link(
                self.run.tenant_id,
                self.pair.id,
                ORDER_LINK,
                order_id,
                &self.owner(),
                number,
            )
            .await
            .map_err(|error| match error {
                syncline_store::StoreError::Conflict { .. } => FlowError::Busy(
                    "another run took over this order's claim; checking again".into(),
                ),
                other => FlowError::Store(other),
            })
    }

    /// Applies the pair's mapping; the runner fills `syncline.customer_account`.
    fn map(&self, account: &str) -> Result<(Value, Vec<Value>), FlowError> {
        let mut source = self
            .payload
            .lock()
            .map_err(|_| FlowError::Transient("the order document is unavailable".into()))?;
        // Lent to the mapping for the call, not copied: the order is the largest thing a run
        // holds. Inserted last, the key is removed again without reordering the document.
        if let Value::Object(map) = &mut *source {
            map.insert(
                "syncline".into(),
                json!({ "customer_account": account, "pair": self.pair.name }),
            );
        }
        let output = apply_value(&self.mapping.compiled, &source);
        if let Value::Object(map) = &mut *source {
            map.remove("syncline");
        }
        drop(source);
        let output = output.map_err(|e| {
            FlowError::Permanent(format!("mapping {} failed: {e}", self.mapping.label))
        })?;
        let header = output
            .records("SalesOrderHeadersV2")
            .into_iter()
            .next()
            .ok_or_else(|| {
                FlowError::Permanent("the mapping produced no sales order header".into())
            })?;
        Ok((header, output.records("SalesOrderLines")))
    }

    async fn find_existing(&self, header: &Value) -> Result<Option<SalesOrder>, FlowError> {
        let reference = header
            .get("CustomersOrderReference")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                FlowError::Permanent(
                    "the mapping gives no CustomersOrderReference, which makes orders idempotent"
                        .into(),
                )
            })?;
        let mut filter = format!("CustomersOrderReference eq {}", literal(reference));
        if let Some(requisition) = header
            .get("CustomerRequisitionNumber")
            .and_then(Value::as_str)
        {
            filter.push_str(&format!(
                " and CustomerRequisitionNumber eq {}",
                literal(requisition)
            ));
        }
        self.find_order(Query::new("SalesOrderHeadersV2").filter(filter))
            .await
    }

    async fn find_order(&self, query: Query) -> Result<Option<SalesOrder>, FlowError> {
        let rows = self
            .session
            .query(
                &query
                    .select(["SalesOrderNumber", "dataAreaId", "SalesOrderStatus"])
                    .top(1),
            )
            .await?;
        Ok(rows.into_iter().next().map(|row| SalesOrder {
            number: text(&row, "SalesOrderNumber"),
            company: text(&row, "dataAreaId"),
            status: text(&row, "SalesOrderStatus"),
        }))
    }

    /// The linked sales order, looked up fresh (its status changes in D365).
    async fn linked_order(&self) -> Result<Option<SalesOrder>, FlowError> {
        let order_id = self.order.id.to_string();
        let number = self
            .engine
            .store
            .link(self.run.tenant_id, self.pair.id, ORDER_LINK, &order_id)
            .await?;
        let query = match number {
            Some(number) => Query::new("SalesOrderHeadersV2")
                .filter(format!("SalesOrderNumber eq {}", literal(&number))),
            None => Query::new("SalesOrderHeadersV2").filter(format!(
                "CustomersOrderReference eq {} and CustomerRequisitionNumber eq {}",
                literal(&self.order.name),
                literal(&order_id)
            )),
        };
        self.find_order(query).await
    }

    async fn update(&self) -> Result<FlowSuccess, FlowError> {
        let Some(existing) = self.linked_order().await? else {
            // The update overtook the creation (or the creation failed): create from the
            // newest state, which is what the update carries.
            return self.create().await;
        };
        if self.order.cancelled_at.is_some() {
            return self.cancel().await;
        }
        if existing.status != "Backorder" {
            return Ok(FlowSuccess {
                d365_ref: Some(existing.number.clone()),
                output: Value::Null,
                note: format!(
                    "sales order {} not updated: it is {} in D365, which no longer allows changes",
                    existing.number, existing.status
                ),
                billable: None,
            });
        }
        let account = self.customer_account().await?;
        let (header, _) = self.map(&account)?;
        let changes: serde_json::Map<String, Value> = header
            .as_object()
            .map(|fields| {
                fields
                    .iter()
                    .filter(|(name, _)| UPDATABLE_HEADER.contains(&name.as_str()))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let key = Key::new()
            .str("dataAreaId", &existing.company)
            .str("SalesOrderNumber", &existing.number);
        match self
            .session
            .patch("SalesOrderHeadersV2", &key, &Value::Object(changes.clone()))
            .await
        {
            Ok(()) => {}
            // Cancelled (deleted) between the lookup and the change: nothing left to update.
            Err(FlowError::Permanent(message)) if message.starts_with("not found in D365") => {
                return Ok(FlowSuccess {
                    d365_ref: Some(existing.number.clone()),
                    output: Value::Null,
                    note: format!(
                        "sales order {} is gone from D365 (cancelled meanwhile); nothing to update",
                        existing.number
                    ),
                    billable: None,
                });
            }
            Err(other) => return Err(other),
        }
        Ok(FlowSuccess {
            d365_ref: Some(existing.number.clone()),
            output: json!({ "SalesOrderHeadersV2": changes }),
            note: format!(
                "updated the header of sales order {} ({} field(s)); lines are kept as created",
                existing.number,
                changes.len()
            ),
            billable: Some(self.billable("update", self.version_key())),
        })
    }

    async fn cancel(&self) -> Result<FlowSuccess, FlowError> {
        let Some(existing) = self.linked_order().await? else {
            return Ok(FlowSuccess {
                d365_ref: None,
                output: Value::Null,
                note: format!("nothing to cancel: {} never reached D365", self.order.name),
                billable: None,
            });
        };
        if existing.status != "Backorder" {
            return Err(FlowError::Permanent(format!(
                "cannot cancel sales order {}: it is {} in D365; reverse it there (return order or credit note)",
                existing.number, existing.status
            )));
        }
        let key = Key::new()
            .str("dataAreaId", &existing.company)
            .str("SalesOrderNumber", &existing.number);
        let deleted = self.session.delete("SalesOrderHeadersV2", &key).await?;
        let note = if deleted {
            format!(
                "cancelled: open sales order {} deleted in D365",
                existing.number
            )
        } else {
            format!(
                "sales order {} was already deleted in D365",
                existing.number
            )
        };
        Ok(FlowSuccess {
            d365_ref: Some(existing.number.clone()),
            output: Value::Null,
            note,
            billable: deleted.then(|| self.billable("cancel", self.order.id.to_string())),
        })
    }

    /// The D365 customer account of the order's buyer: linked, found by e-mail, or created.
    /// Guests share one account per pair (or the `guest_customer_account` of the connection).
    async fn customer_account(&self) -> Result<String, FlowError> {
        let email = self
            .order
            .customer
            .as_ref()
            .and_then(|c| c.email.clone())
            .or_else(|| self.order.email.clone())
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty());
        let (link_key, email) = match (&self.order.customer, email) {
            (Some(customer), Some(email)) => (customer.id.to_string(), email),
            _ => {
                if let Some(account) = self
                    .d365
                    .settings
                    .get("guest_customer_account")
                    .and_then(Value::as_str)
                    .filter(|a| !a.trim().is_empty())
                {
                    return Ok(account.trim().to_owned());
                }
                ("guest".to_owned(), format!("guests@{}", self.shop_domain))
            }
        };
        let store = &self.engine.store;
        let claim = store
            .claim_link(
                self.run.tenant_id,
                self.pair.id,
                CUSTOMER_LINK,
                &link_key,
                &self.owner(),
                self.claim_stale(),
            )
            .await?;
        match claim {
            LinkClaim::Linked(account) => return Ok(account),
            LinkClaim::Busy => {
                return Err(FlowError::Busy(format!(
                    "another run is creating the D365 customer for {email} right now"
                )));
            }
            LinkClaim::Claimed => {}
        }
        let result = self.find_or_create_customer(&link_key, &email).await;
        match &result {
            Ok(account) => {
                store
                    .complete_link(
                        self.run.tenant_id,
                        self.pair.id,
                        CUSTOMER_LINK,
                        &link_key,
                        &self.owner(),
                        account,
                    )
                    .await?;
            }
            Err(FlowError::Permanent(_) | FlowError::Auth(_)) => {
                store
                    .release_link(
                        self.run.tenant_id,
                        self.pair.id,
                        CUSTOMER_LINK,
                        &link_key,
                        &self.owner(),
                    )
                    .await?;
            }
            Err(_) => {}
        }
        result
    }

    async fn find_or_create_customer(
        &self,
        link_key: &str,
        email: &str,
    ) -> Result<String, FlowError> {
        let found = self
            .session
            .query(
                &Query::new("CustomersV3")
                    .filter(format!("PrimaryContactEmail eq {}", literal(email)))
                    .select(["CustomerAccount"])
                    .top(1),
            )
            .await?;
        if let Some(row) = found.first() {
            return Ok(text(row, "CustomerAccount"));
        }
        let group = self
            .d365
            .settings
            .get("customer_group")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .unwrap_or(DEFAULT_CUSTOMER_GROUP);
        let currency = CurrencyCode::from_str(&self.order.currency).map_err(|_| {
            FlowError::Permanent(format!("{} is not a currency code", self.order.currency))
        })?;
        let customer = match (&self.order.customer, link_key) {
            (Some(shopify), key) if key != "guest" => {
                let mut core = syncline_core::model::Customer::try_from(shopify)
                    .map_err(|e| FlowError::Permanent(format!("customer: {e}")))?;
                core.email = Some(email.to_owned());
                core
            }
            _ => syncline_core::model::Customer {
                first_name: Some("Shopify".into()),
                last_name: Some("guest checkouts".into()),
                email: Some(email.to_owned()),
                ..Default::default()
            },
        };
        let body = syncline_d365::convert::customer_from_core(
            &customer,
            self.client().data_area_id(),
            group,
            currency,
        );
        let body = serde_json::to_value(&body)
            .map_err(|e| FlowError::Permanent(format!("customer: {e}")))?;
        let created = self.session.create("CustomersV3", &body).await?;
        let account = text(&created, "CustomerAccount");
        if account.is_empty() {
            return Err(FlowError::Transient(
                "D365 created the customer but sent no CustomerAccount".into(),
            ));
        }
        Ok(account)
    }
}

fn text(row: &Value, field: &str) -> String {
    row.get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}
