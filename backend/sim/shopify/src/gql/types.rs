//! Output types of the Admin GraphQL subset, named as Shopify names them.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Union};
use rust_decimal::Decimal;

use super::scalars::{
    CountryCode, CurrencyCode, DateTime, Html, Json, Money, ShopifyDecimal, UnsignedInt64, Url,
};
use super::{Gql, Page, gid, paginate};
use crate::model;
use crate::shop::{self, Level};

/// `MoneyV2`.
pub struct MoneyV2 {
    amount: Decimal,
    currency: String,
}

#[Object(name = "MoneyV2")]
impl MoneyV2 {
    async fn amount(&self) -> ShopifyDecimal {
        ShopifyDecimal(self.amount)
    }
    async fn currency_code(&self) -> CurrencyCode {
        CurrencyCode::code(&self.currency)
    }
}

/// `MoneyBag`.
pub struct MoneyBag(pub model::MoneySet);

impl MoneyBag {
    fn from(set: &model::MoneySet) -> Self {
        MoneyBag(set.clone())
    }
    fn scaled(set: &model::MoneySet, f: impl Fn(Decimal) -> Decimal) -> Self {
        let mut s = set.clone();
        s.shop_money.amount = f(s.shop_money.amount);
        s.presentment_money.amount = f(s.presentment_money.amount);
        MoneyBag(s)
    }
}

#[Object(name = "MoneyBag")]
impl MoneyBag {
    async fn shop_money(&self) -> MoneyV2 {
        MoneyV2 {
            amount: self.0.shop_money.amount,
            currency: self.0.shop_money.currency_code.clone(),
        }
    }
    async fn presentment_money(&self) -> MoneyV2 {
        MoneyV2 {
            amount: self.0.presentment_money.amount,
            currency: self.0.presentment_money.currency_code.clone(),
        }
    }
}

/// `ShopPlan`.
#[derive(SimpleObject)]
#[graphql(name = "ShopPlan")]
pub struct ShopPlan {
    display_name: String,
    partner_development: bool,
    shopify_plus: bool,
}

/// `WeightUnit`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum WeightUnit {
    Kilograms,
    Grams,
    Pounds,
    Ounces,
}

/// `Shop`.
pub struct ShopObj;

#[Object(name = "Shop")]
impl ShopObj {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        Ok(gid("Shop", ctx.data::<Gql>()?.shop.id))
    }
    async fn name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(ctx.data::<Gql>()?.shop.name.clone())
    }
    async fn email(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(format!("owner@{}", ctx.data::<Gql>()?.shop.domain))
    }
    async fn contact_email(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(format!("support@{}", ctx.data::<Gql>()?.shop.domain))
    }
    async fn myshopify_domain(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(ctx.data::<Gql>()?.shop.domain.clone())
    }
    async fn url(&self, ctx: &Context<'_>) -> Result<Url> {
        Ok(Url(format!("https://{}", ctx.data::<Gql>()?.shop.domain)))
    }
    async fn currency_code(&self, ctx: &Context<'_>) -> Result<CurrencyCode> {
        Ok(CurrencyCode::code(&ctx.data::<Gql>()?.shop.currency))
    }
    async fn enabled_presentment_currencies(&self, ctx: &Context<'_>) -> Result<Vec<CurrencyCode>> {
        let shop = &ctx.data::<Gql>()?.shop;
        let mut v = vec![CurrencyCode::code(&shop.currency)];
        for c in crate::generator::PRESENTMENT_CURRENCIES {
            let c = CurrencyCode::code(c);
            if !v.contains(&c) {
                v.push(c);
            }
        }
        Ok(v)
    }
    async fn iana_timezone(&self) -> String {
        "UTC".into()
    }
    async fn taxes_included(&self) -> bool {
        false
    }
    async fn weight_unit(&self) -> WeightUnit {
        WeightUnit::Kilograms
    }
    async fn plan(&self, ctx: &Context<'_>) -> Result<ShopPlan> {
        let plan = ctx.data::<Gql>()?.shop.lock().plan;
        // Enterprise reports as Plus too.
        let name = if plan.restore_rate >= 1000.0 {
            "Shopify Plus"
        } else if plan.restore_rate >= 200.0 {
            "Advanced"
        } else {
            "Basic"
        };
        Ok(ShopPlan {
            display_name: name.into(),
            partner_development: false,
            shopify_plus: plan.restore_rate >= 1000.0,
        })
    }
}

/// `MailingAddress`.
pub struct MailingAddress {
    id: u64,
    a: model::Address,
}

impl MailingAddress {
    fn from_order(a: &model::Address, id: u64) -> Self {
        MailingAddress { id, a: a.clone() }
    }
    fn from_customer(a: &model::CustomerAddress) -> Self {
        MailingAddress {
            id: a.id,
            a: model::Address {
                first_name: a.first_name.clone(),
                address1: a.address1.clone(),
                phone: a.phone.clone(),
                city: a.city.clone(),
                zip: a.zip.clone(),
                province: a.province.clone(),
                country: a.country.clone(),
                last_name: a.last_name.clone(),
                address2: a.address2.clone(),
                company: a.company.clone(),
                latitude: None,
                longitude: None,
                name: a.name.clone(),
                country_code: a.country_code.clone(),
                province_code: a.province_code.clone(),
            },
        }
    }
}

#[Object(name = "MailingAddress")]
impl MailingAddress {
    async fn id(&self) -> ID {
        gid("MailingAddress", self.id)
    }
    async fn address1(&self) -> Option<&str> {
        self.a.address1.as_deref()
    }
    async fn address2(&self) -> Option<&str> {
        self.a.address2.as_deref()
    }
    async fn city(&self) -> Option<&str> {
        self.a.city.as_deref()
    }
    async fn company(&self) -> Option<&str> {
        self.a.company.as_deref()
    }
    async fn country(&self) -> Option<&str> {
        self.a.country.as_deref()
    }
    #[graphql(name = "countryCodeV2")]
    async fn country_code_v2(&self) -> Option<CountryCode> {
        self.a
            .country_code
            .as_deref()
            .and_then(CountryCode::from_code)
    }
    async fn first_name(&self) -> Option<&str> {
        self.a.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.a.last_name.as_deref()
    }
    async fn name(&self) -> Option<&str> {
        self.a.name.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.a.phone.as_deref()
    }
    async fn province(&self) -> Option<&str> {
        self.a.province.as_deref()
    }
    async fn province_code(&self) -> Option<&str> {
        self.a.province_code.as_deref()
    }
    async fn zip(&self) -> Option<&str> {
        self.a.zip.as_deref()
    }
    async fn latitude(&self) -> Option<f64> {
        self.a.latitude
    }
    async fn longitude(&self) -> Option<f64> {
        self.a.longitude
    }
}

/// `TaxLine`.
pub struct TaxLine(model::TaxLine);

#[Object(name = "TaxLine")]
impl TaxLine {
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn rate(&self) -> Option<f64> {
        Some(self.0.rate)
    }
    async fn rate_percentage(&self) -> Option<f64> {
        Some((self.0.rate * 100.0 * 1000.0).round() / 1000.0)
    }
    async fn price_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.price_set)
    }
    async fn channel_liable(&self) -> Option<bool> {
        self.0.channel_liable
    }
    async fn source(&self) -> Option<String> {
        Some("Shopify".into())
    }
}

fn tax_lines(v: &[model::TaxLine]) -> Vec<TaxLine> {
    v.iter().cloned().map(TaxLine).collect()
}

/// `DiscountAllocation` (without `discountApplication`).
pub struct DiscountAllocation(model::DiscountAllocation);

#[Object(name = "DiscountAllocation")]
impl DiscountAllocation {
    async fn allocated_amount_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.amount_set)
    }
}

/// `Metafield`.
pub struct Metafield(pub shop::Metafield);

/// `MetafieldOwnerType` (subset).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
#[graphql(rename_items = "UPPERCASE")]
pub enum MetafieldOwnerType {
    CUSTOMER,
    PRODUCT,
    PRODUCTVARIANT,
    ORDER,
    LOCATION,
    SHOP,
}

/// Digest clients send back as `compareDigest` for optimistic locking.
pub fn digest(m: &shop::Metafield) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(m.kind.as_bytes());
    h.update([0]);
    h.update(m.value.as_bytes());
    h.update([0]);
    h.update(m.updated_at.as_bytes());
    let out = h.finalize();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

#[Object(name = "Metafield")]
impl Metafield {
    async fn id(&self) -> ID {
        gid("Metafield", self.0.id)
    }
    async fn namespace(&self) -> &str {
        &self.0.namespace
    }
    async fn key(&self) -> &str {
        &self.0.key
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn value(&self) -> &str {
        &self.0.value
    }
    async fn json_value(&self) -> Json {
        Json(
            serde_json::from_str(&self.0.value)
                .unwrap_or_else(|_| serde_json::Value::String(self.0.value.clone())),
        )
    }
    async fn compare_digest(&self) -> String {
        digest(&self.0)
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.updated_at)
    }
    async fn owner_type(&self) -> MetafieldOwnerType {
        let kind = self
            .0
            .owner_id
            .strip_prefix("gid://shopify/")
            .and_then(|s| s.split('/').next())
            .unwrap_or("");
        match kind {
            "Customer" => MetafieldOwnerType::CUSTOMER,
            "Product" => MetafieldOwnerType::PRODUCT,
            "ProductVariant" => MetafieldOwnerType::PRODUCTVARIANT,
            "Order" => MetafieldOwnerType::ORDER,
            "Location" => MetafieldOwnerType::LOCATION,
            _ => MetafieldOwnerType::SHOP,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn metafields_of(
    ctx: &Context<'_>,
    owner: &str,
    namespace: Option<String>,
    keys: Option<Vec<String>>,
    page: Page,
) -> Result<Connection<String, Metafield>> {
    let g = ctx.data::<Gql>()?;
    let items: Vec<(u64, Metafield)> = g
        .shop
        .lock()
        .metafields
        .iter()
        .filter(|m| m.owner_id == owner)
        .filter(|m| namespace.as_ref().is_none_or(|n| &m.namespace == n))
        .filter(|m| {
            keys.as_ref()
                .is_none_or(|k| k.contains(&format!("{}.{}", m.namespace, m.key)))
        })
        .map(|m| (m.id, Metafield(m.clone())))
        .collect();
    paginate(g, items, page)
}

fn metafield_of(
    ctx: &Context<'_>,
    owner: &str,
    namespace: Option<String>,
    key: String,
) -> Result<Option<Metafield>> {
    let g = ctx.data::<Gql>()?;
    let ns = namespace.unwrap_or_else(|| "$app".into());
    Ok(g.shop
        .lock()
        .metafields
        .iter()
        .find(|m| m.owner_id == owner && m.namespace == ns && m.key == key)
        .cloned()
        .map(Metafield))
}

/// `OrderDisplayFinancialStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum OrderDisplayFinancialStatus {
    Pending,
    Authorized,
    PartiallyPaid,
    PartiallyRefunded,
    Voided,
    Paid,
    Refunded,
    Expired,
}

/// `OrderDisplayFulfillmentStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum OrderDisplayFulfillmentStatus {
    Unfulfilled,
    PartiallyFulfilled,
    Fulfilled,
    Restocked,
    PendingFulfillment,
    Open,
    InProgress,
    OnHold,
    Scheduled,
    RequestDeclined,
}

/// `Order`.
pub struct Order(pub model::Order);

#[Object(name = "Order")]
impl Order {
    async fn id(&self) -> ID {
        gid("Order", self.0.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn test(&self) -> bool {
        self.0.test
    }
    async fn taxes_included(&self) -> bool {
        self.0.taxes_included
    }
    async fn source_name(&self) -> Option<&str> {
        Some(&self.0.source_name)
    }
    async fn confirmation_number(&self) -> Option<&str> {
        self.0.confirmation_number.as_deref()
    }
    async fn tags(&self) -> Vec<String> {
        split_tags(&self.0.tags)
    }
    async fn discount_codes(&self) -> Vec<String> {
        self.0
            .discount_codes
            .iter()
            .map(|d| d.code.clone())
            .collect()
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.updated_at)
    }
    async fn processed_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.processed_at)
    }
    async fn cancelled_at(&self) -> Option<DateTime> {
        self.0.cancelled_at.as_deref().map(DateTime::from_wire)
    }
    async fn closed_at(&self) -> Option<DateTime> {
        self.0.closed_at.as_deref().map(DateTime::from_wire)
    }
    async fn currency_code(&self) -> CurrencyCode {
        CurrencyCode::code(&self.0.currency)
    }
    async fn presentment_currency_code(&self) -> CurrencyCode {
        CurrencyCode::code(&self.0.presentment_currency)
    }
    async fn display_financial_status(&self) -> Option<OrderDisplayFinancialStatus> {
        use OrderDisplayFinancialStatus as F;
        Some(match self.0.financial_status.as_deref() {
            Some("authorized") => F::Authorized,
            Some("partially_paid") => F::PartiallyPaid,
            Some("partially_refunded") => F::PartiallyRefunded,
            Some("voided") => F::Voided,
            Some("paid") => F::Paid,
            Some("refunded") => F::Refunded,
            Some("expired") => F::Expired,
            _ => F::Pending,
        })
    }
    async fn display_fulfillment_status(&self) -> OrderDisplayFulfillmentStatus {
        use OrderDisplayFulfillmentStatus as F;
        match self.0.fulfillment_status.as_deref() {
            Some("fulfilled") => F::Fulfilled,
            Some("partial") => F::PartiallyFulfilled,
            Some("restocked") => F::Restocked,
            _ => F::Unfulfilled,
        }
    }
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<Customer>> {
        let Some(c) = &self.0.customer else {
            return Ok(None);
        };
        let g = ctx.data::<Gql>()?;
        let stored = g.shop.lock().customers.get(&c.id).cloned();
        Ok(Some(Customer(stored.unwrap_or_else(|| c.clone()))))
    }
    async fn billing_address(&self) -> Option<MailingAddress> {
        self.0
            .billing_address
            .as_ref()
            .map(|a| MailingAddress::from_order(a, self.0.id.wrapping_add(1)))
    }
    async fn shipping_address(&self) -> Option<MailingAddress> {
        self.0
            .shipping_address
            .as_ref()
            .map(|a| MailingAddress::from_order(a, self.0.id.wrapping_add(2)))
    }
    #[allow(clippy::too_many_arguments)]
    async fn line_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, LineItem>> {
        let g = ctx.data::<Gql>()?;
        let items = self
            .0
            .line_items
            .iter()
            .map(|li| (li.id, LineItem(li.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
    #[allow(clippy::too_many_arguments)]
    async fn shipping_lines(
        &self,
        ctx: &Context<'_>,
        include_removals: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, ShippingLine>> {
        let g = ctx.data::<Gql>()?;
        let items = self
            .0
            .shipping_lines
            .iter()
            .filter(|s| include_removals.unwrap_or(false) || !s.is_removed)
            .map(|s| (s.id, ShippingLine(s.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
    async fn tax_lines(&self) -> Vec<TaxLine> {
        tax_lines(&self.0.tax_lines)
    }
    async fn total_price_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.total_price_set)
    }
    async fn current_total_price_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.current_total_price_set)
    }
    async fn subtotal_price_set(&self) -> Option<MoneyBag> {
        Some(MoneyBag::from(&self.0.subtotal_price_set))
    }
    async fn total_tax_set(&self) -> Option<MoneyBag> {
        Some(MoneyBag::from(&self.0.total_tax_set))
    }
    async fn total_discounts_set(&self) -> Option<MoneyBag> {
        Some(MoneyBag::from(&self.0.total_discounts_set))
    }
    async fn total_shipping_price_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.total_shipping_price_set)
    }
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> Result<Vec<OrderTransaction>> {
        let g = ctx.data::<Gql>()?;
        let tx = g
            .shop
            .lock()
            .transactions
            .get(&self.0.id)
            .cloned()
            .unwrap_or_default();
        let n = first.map_or(usize::MAX, |n| n.max(0) as usize);
        Ok(tx
            .into_iter()
            .take(n)
            .map(|t| OrderTransaction(t, self.0.currency.clone()))
            .collect())
    }
    async fn refunds(&self, first: Option<i32>) -> Vec<Refund> {
        let n = first.map_or(usize::MAX, |n| n.max(0) as usize);
        self.0.refunds.iter().take(n).cloned().map(Refund).collect()
    }
    async fn fulfillments(&self, first: Option<i32>) -> Vec<Fulfillment> {
        let n = first.map_or(usize::MAX, |n| n.max(0) as usize);
        self.0
            .fulfillments
            .iter()
            .take(n)
            .cloned()
            .map(Fulfillment)
            .collect()
    }
    #[allow(clippy::too_many_arguments)]
    async fn fulfillment_orders(
        &self,
        ctx: &Context<'_>,
        displayable: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        query: Option<String>,
    ) -> Result<Connection<String, FulfillmentOrder>> {
        let _ = (displayable, query);
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .fulfillment_orders
            .values()
            .filter(|f| f.order_id == self.0.id)
            .map(|f| (f.id, FulfillmentOrder(f.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
    #[allow(clippy::too_many_arguments)]
    async fn metafields(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        keys: Option<Vec<String>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, Metafield>> {
        metafields_of(
            ctx,
            &self.0.admin_graphql_api_id,
            namespace,
            keys,
            Page::new(first, after, last, before, reverse),
        )
    }
    async fn metafield(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        key: String,
    ) -> Result<Option<Metafield>> {
        metafield_of(ctx, &self.0.admin_graphql_api_id, namespace, key)
    }
}

/// Splits Shopify's comma-and-space tag string.
pub fn split_tags(tags: &str) -> Vec<String> {
    tags.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `LineItem`.
pub struct LineItem(pub model::LineItem);

#[Object(name = "LineItem")]
impl LineItem {
    async fn id(&self) -> ID {
        gid("LineItem", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity as i32
    }
    async fn current_quantity(&self) -> i32 {
        self.0.current_quantity.unwrap_or(self.0.quantity) as i32
    }
    async fn sku(&self) -> Option<&str> {
        self.0.sku.as_deref()
    }
    async fn vendor(&self) -> Option<&str> {
        self.0.vendor.as_deref()
    }
    async fn variant_title(&self) -> Option<&str> {
        self.0.variant_title.as_deref()
    }
    async fn requires_shipping(&self) -> bool {
        self.0.requires_shipping
    }
    async fn taxable(&self) -> bool {
        self.0.taxable
    }
    async fn variant(&self, ctx: &Context<'_>) -> Result<Option<ProductVariant>> {
        let Some(vid) = self.0.variant_id else {
            return Ok(None);
        };
        Ok(ctx.data::<Gql>()?.variant(vid).map(ProductVariant))
    }
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let Some(pid) = self.0.product_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<Gql>()?
            .shop
            .lock()
            .products
            .get(&pid)
            .cloned()
            .map(Product))
    }
    async fn original_unit_price_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.price_set)
    }
    async fn discounted_unit_price_set(&self) -> MoneyBag {
        let q = Decimal::from(self.0.quantity.max(1));
        let disc = &self.0.total_discount_set;
        let mut s = self.0.price_set.clone();
        s.shop_money.amount = (s.shop_money.amount - disc.shop_money.amount / q).round_dp(2);
        s.presentment_money.amount =
            (s.presentment_money.amount - disc.presentment_money.amount / q).round_dp(2);
        MoneyBag(s)
    }
    async fn original_total_set(&self) -> MoneyBag {
        let q = Decimal::from(self.0.quantity);
        MoneyBag::scaled(&self.0.price_set, |a| a * q)
    }
    async fn discounted_total_set(&self, with_code_discounts: Option<bool>) -> MoneyBag {
        let _ = with_code_discounts;
        let q = Decimal::from(self.0.quantity);
        let disc = &self.0.total_discount_set;
        let mut s = self.0.price_set.clone();
        s.shop_money.amount = s.shop_money.amount * q - disc.shop_money.amount;
        s.presentment_money.amount = s.presentment_money.amount * q - disc.presentment_money.amount;
        MoneyBag(s)
    }
    async fn total_discount_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.total_discount_set)
    }
    async fn tax_lines(&self, first: Option<i32>) -> Vec<TaxLine> {
        let n = first.map_or(usize::MAX, |n| n.max(0) as usize);
        tax_lines(&self.0.tax_lines).into_iter().take(n).collect()
    }
    async fn discount_allocations(&self) -> Vec<DiscountAllocation> {
        self.0
            .discount_allocations
            .iter()
            .cloned()
            .map(DiscountAllocation)
            .collect()
    }
}

/// `ShippingLine`.
pub struct ShippingLine(model::ShippingLine);

#[Object(name = "ShippingLine")]
impl ShippingLine {
    async fn id(&self) -> Option<ID> {
        Some(gid("ShippingLine", self.0.id))
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    async fn source(&self) -> Option<&str> {
        Some(&self.0.source)
    }
    async fn carrier_identifier(&self) -> Option<&str> {
        self.0.carrier_identifier.as_deref()
    }
    async fn original_price_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.price_set)
    }
    async fn discounted_price_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.discounted_price_set)
    }
    async fn tax_lines(&self) -> Vec<TaxLine> {
        tax_lines(&self.0.tax_lines)
    }
}

/// `OrderTransactionKind`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum OrderTransactionKind {
    Sale,
    Capture,
    Authorization,
    Void,
    Refund,
    Change,
    EmvAuthorization,
    SuggestedRefund,
}

/// `OrderTransactionStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum OrderTransactionStatus {
    Success,
    Failure,
    Pending,
    Error,
    AwaitingResponse,
    Unknown,
}

/// `OrderTransaction`.
pub struct OrderTransaction(model::Transaction, String);

#[Object(name = "OrderTransaction")]
impl OrderTransaction {
    async fn authorization_code(&self) -> Option<&str> {
        self.0.authorization.as_deref()
    }
    async fn parent_transaction(&self, ctx: &Context<'_>) -> Result<Option<OrderTransaction>> {
        let Some(parent) = self.0.parent_id else {
            return Ok(None);
        };
        let g = ctx.data::<Gql>()?;
        Ok(g.shop
            .lock()
            .transactions
            .get(&self.0.order_id)
            .and_then(|v| v.iter().find(|t| t.id == parent).cloned())
            .map(|t| OrderTransaction(t, self.1.clone())))
    }
    async fn order(&self, ctx: &Context<'_>) -> Result<Option<Order>> {
        let g = ctx.data::<Gql>()?;
        Ok(g.shop
            .lock()
            .orders
            .get(&self.0.order_id)
            .cloned()
            .map(Order))
    }
    async fn id(&self) -> ID {
        gid("OrderTransaction", self.0.id)
    }
    async fn kind(&self) -> OrderTransactionKind {
        use OrderTransactionKind as K;
        match self.0.kind.as_str() {
            "capture" => K::Capture,
            "authorization" => K::Authorization,
            "void" => K::Void,
            "refund" => K::Refund,
            "change" => K::Change,
            _ => K::Sale,
        }
    }
    async fn status(&self) -> OrderTransactionStatus {
        use OrderTransactionStatus as S;
        match self.0.status.as_str() {
            "success" => S::Success,
            "failure" => S::Failure,
            "pending" => S::Pending,
            "error" => S::Error,
            _ => S::Unknown,
        }
    }
    async fn gateway(&self) -> Option<&str> {
        Some(&self.0.gateway)
    }
    async fn test(&self) -> bool {
        self.0.test
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.created_at)
    }
    async fn processed_at(&self) -> Option<DateTime> {
        self.0.processed_at.as_deref().map(DateTime::from_wire)
    }
    async fn amount_set(&self) -> MoneyBag {
        let cur = self.0.currency.clone().unwrap_or_else(|| self.1.clone());
        MoneyBag(model::MoneySet::new(
            self.0.amount,
            &self.1,
            self.0.amount,
            &cur,
        ))
    }
}

/// `Refund`.
pub struct Refund(model::Refund);

#[Object(name = "Refund")]
impl Refund {
    async fn id(&self) -> ID {
        gid("Refund", self.0.id)
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn created_at(&self) -> Option<DateTime> {
        Some(DateTime::from_wire(&self.0.created_at))
    }
    async fn total_refunded_set(&self) -> MoneyBag {
        let mut shop = Decimal::ZERO;
        let mut pres = Decimal::ZERO;
        let mut cur = ("USD".to_owned(), "USD".to_owned());
        for l in &self.0.refund_line_items {
            shop += l.subtotal_set.shop_money.amount + l.total_tax_set.shop_money.amount;
            pres +=
                l.subtotal_set.presentment_money.amount + l.total_tax_set.presentment_money.amount;
            cur = (
                l.subtotal_set.shop_money.currency_code.clone(),
                l.subtotal_set.presentment_money.currency_code.clone(),
            );
        }
        MoneyBag(model::MoneySet::new(shop, &cur.0, pres, &cur.1))
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.processed_at)
    }
    async fn order(&self, ctx: &Context<'_>) -> Result<Order> {
        let g = ctx.data::<Gql>()?;
        g.shop
            .lock()
            .orders
            .get(&self.0.order_id)
            .cloned()
            .map(Order)
            .ok_or_else(|| "order not found".into())
    }
    #[allow(clippy::too_many_arguments)]
    async fn refund_line_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, RefundLineItem>> {
        let g = ctx.data::<Gql>()?;
        let items = self
            .0
            .refund_line_items
            .iter()
            .map(|l| (l.id, RefundLineItem(l.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
    #[allow(clippy::too_many_arguments)]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, OrderTransaction>> {
        let g = ctx.data::<Gql>()?;
        let cur = g
            .shop
            .lock()
            .orders
            .get(&self.0.order_id)
            .map_or_else(|| g.shop.currency.clone(), |o| o.currency.clone());
        let items = self
            .0
            .transactions
            .iter()
            .map(|t| (t.id, OrderTransaction(t.clone(), cur.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
}

/// `RefundLineItemRestockType`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum RefundLineItemRestockType {
    Return,
    Cancel,
    LegacyRestock,
    NoRestock,
}

/// `RefundLineItem`.
pub struct RefundLineItem(model::RefundLineItem);

#[Object(name = "RefundLineItem")]
impl RefundLineItem {
    async fn id(&self) -> Option<ID> {
        Some(gid("RefundLineItem", self.0.id))
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity as i32
    }
    async fn restock_type(&self) -> RefundLineItemRestockType {
        match self.0.restock_type.as_str() {
            "return" => RefundLineItemRestockType::Return,
            "cancel" => RefundLineItemRestockType::Cancel,
            "legacy_restock" => RefundLineItemRestockType::LegacyRestock,
            _ => RefundLineItemRestockType::NoRestock,
        }
    }
    async fn restocked(&self) -> bool {
        self.0.restock_type != "no_restock"
    }
    async fn line_item(&self) -> LineItem {
        LineItem(self.0.line_item.clone())
    }
    async fn price_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.line_item.price_set)
    }
    async fn subtotal_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.subtotal_set)
    }
    async fn total_tax_set(&self) -> MoneyBag {
        MoneyBag::from(&self.0.total_tax_set)
    }
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        let Some(id) = self.0.location_id else {
            return Ok(None);
        };
        let g = ctx.data::<Gql>()?;
        Ok(g.shop.lock().locations.get(&id).cloned().map(Location))
    }
}

/// `CustomerState`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum CustomerState {
    Declined,
    Disabled,
    Enabled,
    Invited,
}

/// `Customer`.
pub struct Customer(pub model::Customer);

#[Object(name = "Customer")]
impl Customer {
    async fn id(&self) -> ID {
        gid("Customer", self.0.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    async fn display_name(&self) -> String {
        let parts: Vec<&str> = [self.0.first_name.as_deref(), self.0.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if parts.is_empty() {
            self.0.email.clone().unwrap_or_default()
        } else {
            parts.join(" ")
        }
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn tags(&self) -> Vec<String> {
        Vec::new()
    }
    async fn state(&self) -> CustomerState {
        match self.0.state.as_str() {
            "enabled" => CustomerState::Enabled,
            "invited" => CustomerState::Invited,
            "declined" => CustomerState::Declined,
            _ => CustomerState::Disabled,
        }
    }
    async fn tax_exempt(&self) -> bool {
        self.0.tax_exempt
    }
    async fn verified_email(&self) -> bool {
        self.0.verified_email
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(self.0.created_at.as_deref().unwrap_or_default())
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(self.0.updated_at.as_deref().unwrap_or_default())
    }
    async fn default_address(&self) -> Option<MailingAddress> {
        self.0
            .default_address
            .as_ref()
            .map(MailingAddress::from_customer)
    }
    async fn addresses(&self, first: Option<i32>) -> Vec<MailingAddress> {
        let n = first.map_or(usize::MAX, |n| n.max(0) as usize);
        self.0
            .addresses
            .iter()
            .flatten()
            .take(n)
            .map(MailingAddress::from_customer)
            .collect()
    }
    async fn number_of_orders(&self, ctx: &Context<'_>) -> Result<UnsignedInt64> {
        let g = ctx.data::<Gql>()?;
        let n = g
            .shop
            .lock()
            .orders
            .values()
            .filter(|o| o.customer.as_ref().is_some_and(|c| c.id == self.0.id))
            .count();
        Ok(UnsignedInt64(n as u64))
    }
    async fn amount_spent(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        let g = ctx.data::<Gql>()?;
        let sum: Decimal = g
            .shop
            .lock()
            .orders
            .values()
            .filter(|o| o.customer.as_ref().is_some_and(|c| c.id == self.0.id))
            .map(|o| o.total_price)
            .sum();
        Ok(MoneyV2 {
            amount: sum,
            currency: g.shop.currency.clone(),
        })
    }
    #[allow(clippy::too_many_arguments)]
    async fn metafields(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        keys: Option<Vec<String>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, Metafield>> {
        metafields_of(
            ctx,
            &self.0.admin_graphql_api_id,
            namespace,
            keys,
            Page::new(first, after, last, before, reverse),
        )
    }
    async fn metafield(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        key: String,
    ) -> Result<Option<Metafield>> {
        metafield_of(ctx, &self.0.admin_graphql_api_id, namespace, key)
    }
}

/// `ProductStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum ProductStatus {
    Active,
    Archived,
    Draft,
}

impl ProductStatus {
    /// The REST spelling.
    pub fn wire(self) -> &'static str {
        match self {
            ProductStatus::Active => "active",
            ProductStatus::Archived => "archived",
            ProductStatus::Draft => "draft",
        }
    }
}

/// `Product`.
pub struct Product(pub model::Product);

#[Object(name = "Product")]
impl Product {
    async fn id(&self) -> ID {
        gid("Product", self.0.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn handle(&self) -> &str {
        &self.0.handle
    }
    async fn description_html(&self) -> Html {
        Html(self.0.body_html.clone().unwrap_or_default())
    }
    async fn vendor(&self) -> &str {
        &self.0.vendor
    }
    async fn product_type(&self) -> &str {
        &self.0.product_type
    }
    async fn status(&self) -> ProductStatus {
        match self.0.status.as_str() {
            "archived" => ProductStatus::Archived,
            "draft" => ProductStatus::Draft,
            _ => ProductStatus::Active,
        }
    }
    async fn tags(&self) -> Vec<String> {
        split_tags(&self.0.tags)
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(self.0.created_at.as_deref().unwrap_or_default())
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(self.0.updated_at.as_deref().unwrap_or_default())
    }
    async fn total_inventory(&self, ctx: &Context<'_>) -> Result<i32> {
        let g = ctx.data::<Gql>()?;
        let data = g.shop.lock();
        let mut total = 0i64;
        for v in &self.0.variants {
            if let Some(item) = v.inventory_item_id {
                total += data
                    .levels
                    .range((item, 0)..=(item, u64::MAX))
                    .map(|(_, l)| l.get("available"))
                    .sum::<i64>();
            }
        }
        Ok(total as i32)
    }
    #[allow(clippy::too_many_arguments)]
    async fn variants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        sort_key: Option<ProductVariantSortKeys>,
    ) -> Result<Connection<String, ProductVariant>> {
        let _ = sort_key;
        let g = ctx.data::<Gql>()?;
        let items = self
            .0
            .variants
            .iter()
            .map(|v| (v.id, ProductVariant(v.clone())))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
    #[allow(clippy::too_many_arguments)]
    async fn metafields(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        keys: Option<Vec<String>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, Metafield>> {
        metafields_of(
            ctx,
            &self.0.admin_graphql_api_id,
            namespace,
            keys,
            Page::new(first, after, last, before, reverse),
        )
    }
    async fn metafield(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        key: String,
    ) -> Result<Option<Metafield>> {
        metafield_of(ctx, &self.0.admin_graphql_api_id, namespace, key)
    }
}

/// `ProductVariantSortKeys` (subset).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum ProductVariantSortKeys {
    Id,
    Position,
    Sku,
    Title,
    Relevance,
}

/// `ProductVariantInventoryPolicy`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum ProductVariantInventoryPolicy {
    Deny,
    Continue,
}

/// `ProductVariant`.
pub struct ProductVariant(pub model::Variant);

#[Object(name = "ProductVariant")]
impl ProductVariant {
    async fn id(&self) -> ID {
        gid("ProductVariant", self.0.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn sku(&self) -> Option<&str> {
        self.0.sku.as_deref()
    }
    async fn barcode(&self) -> Option<&str> {
        self.0.barcode.as_deref()
    }
    async fn price(&self) -> Money {
        Money(self.0.price)
    }
    async fn compare_at_price(&self) -> Option<Money> {
        self.0.compare_at_price.map(Money)
    }
    async fn position(&self) -> i32 {
        self.0.position as i32
    }
    async fn taxable(&self) -> bool {
        self.0.taxable
    }
    async fn inventory_policy(&self) -> ProductVariantInventoryPolicy {
        if self.0.inventory_policy == "continue" {
            ProductVariantInventoryPolicy::Continue
        } else {
            ProductVariantInventoryPolicy::Deny
        }
    }
    async fn inventory_quantity(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        let Some(item) = self.0.inventory_item_id else {
            return Ok(Some(self.0.inventory_quantity as i32));
        };
        let g = ctx.data::<Gql>()?;
        let data = g.shop.lock();
        let q: i64 = data
            .levels
            .range((item, 0)..=(item, u64::MAX))
            .map(|(_, l)| l.get("available"))
            .sum();
        Ok(Some(q as i32))
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(self.0.created_at.as_deref().unwrap_or_default())
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(self.0.updated_at.as_deref().unwrap_or_default())
    }
    async fn product(&self, ctx: &Context<'_>) -> Result<Product> {
        let g = ctx.data::<Gql>()?;
        g.shop
            .lock()
            .products
            .get(&self.0.product_id)
            .cloned()
            .map(Product)
            .ok_or_else(|| "product not found".into())
    }
    async fn inventory_item(&self, ctx: &Context<'_>) -> Result<InventoryItem> {
        let g = ctx.data::<Gql>()?;
        let item = self
            .0
            .inventory_item_id
            .and_then(|id| g.shop.lock().inventory_items.get(&id).cloned());
        item.map(InventoryItem)
            .ok_or_else(|| "inventory item not found".into())
    }
    #[allow(clippy::too_many_arguments)]
    async fn metafields(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        keys: Option<Vec<String>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, Metafield>> {
        metafields_of(
            ctx,
            &self.0.admin_graphql_api_id,
            namespace,
            keys,
            Page::new(first, after, last, before, reverse),
        )
    }
    async fn metafield(
        &self,
        ctx: &Context<'_>,
        namespace: Option<String>,
        key: String,
    ) -> Result<Option<Metafield>> {
        metafield_of(ctx, &self.0.admin_graphql_api_id, namespace, key)
    }
}

/// `InventoryItem`.
pub struct InventoryItem(pub shop::InventoryItem);

#[Object(name = "InventoryItem")]
impl InventoryItem {
    async fn id(&self) -> ID {
        gid("InventoryItem", self.0.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn sku(&self) -> Option<&str> {
        self.0.sku.as_deref()
    }
    async fn tracked(&self) -> bool {
        self.0.tracked
    }
    async fn requires_shipping(&self) -> bool {
        true
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.updated_at)
    }
    async fn variant(&self, ctx: &Context<'_>) -> Result<ProductVariant> {
        ctx.data::<Gql>()?
            .variant(self.0.variant_id)
            .map(ProductVariant)
            .ok_or_else(|| "variant not found".into())
    }
    async fn inventory_level(
        &self,
        ctx: &Context<'_>,
        location_id: ID,
    ) -> Result<Option<InventoryLevel>> {
        let g = ctx.data::<Gql>()?;
        let Some(loc) = super::parse_gid(&location_id, "Location") else {
            return Ok(None);
        };
        Ok(g.level(self.0.id, loc))
    }
    #[allow(clippy::too_many_arguments)]
    async fn inventory_levels(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        query: Option<String>,
    ) -> Result<Connection<String, InventoryLevel>> {
        let _ = query;
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .levels
            .range((self.0.id, 0)..=(self.0.id, u64::MAX))
            .map(|(&(i, l), lv)| (l, InventoryLevel::new(i, l, lv)))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
}

/// `InventoryLevel`.
pub struct InventoryLevel {
    item: u64,
    location: u64,
    level: Level,
}

impl InventoryLevel {
    /// Wraps one stored level.
    pub fn new(item: u64, location: u64, level: &Level) -> Self {
        InventoryLevel {
            item,
            location,
            level: level.clone(),
        }
    }
}

/// The id Shopify gives an inventory level.
pub fn level_gid(location: u64, item: u64) -> String {
    format!("gid://shopify/InventoryLevel/{location}?inventory_item_id={item}")
}

#[Object(name = "InventoryLevel")]
impl InventoryLevel {
    async fn id(&self) -> ID {
        ID(level_gid(self.location, self.item))
    }
    async fn can_deactivate(&self) -> bool {
        true
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.level.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(&self.level.updated_at)
    }
    async fn item(&self, ctx: &Context<'_>) -> Result<InventoryItem> {
        let g = ctx.data::<Gql>()?;
        g.shop
            .lock()
            .inventory_items
            .get(&self.item)
            .cloned()
            .map(InventoryItem)
            .ok_or_else(|| "inventory item not found".into())
    }
    async fn location(&self, ctx: &Context<'_>) -> Result<Location> {
        let g = ctx.data::<Gql>()?;
        g.shop
            .lock()
            .locations
            .get(&self.location)
            .cloned()
            .map(Location)
            .ok_or_else(|| "location not found".into())
    }
    async fn quantities(&self, names: Vec<String>) -> Result<Vec<InventoryQuantity>> {
        let mut out = Vec::new();
        for name in names {
            if !shop::QUANTITY_NAMES.contains(&name.as_str()) {
                return Err(format!("The quantity name '{name}' is not valid.").into());
            }
            out.push(InventoryQuantity {
                id: format!(
                    "gid://shopify/InventoryQuantity/{}?inventory_item_id={}&name={}",
                    self.location, self.item, name
                ),
                quantity: self.level.get(&name) as i32,
                name,
                updated_at: Some(DateTime::from_wire(&self.level.updated_at)),
            });
        }
        Ok(out)
    }
}

/// `InventoryQuantity`.
#[derive(SimpleObject)]
#[graphql(name = "InventoryQuantity", complex)]
pub struct InventoryQuantity {
    #[graphql(skip)]
    id: String,
    name: String,
    quantity: i32,
    updated_at: Option<DateTime>,
}

#[async_graphql::ComplexObject]
impl InventoryQuantity {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
}

/// `LocationAddress`.
#[derive(SimpleObject)]
#[graphql(name = "LocationAddress")]
pub struct LocationAddress {
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    country: Option<String>,
    country_code: Option<String>,
    province: Option<String>,
    province_code: Option<String>,
    zip: Option<String>,
    phone: Option<String>,
    formatted: Vec<String>,
}

/// `Location`.
pub struct Location(pub shop::Location);

#[Object(name = "Location")]
impl Location {
    async fn id(&self) -> ID {
        gid("Location", self.0.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn is_active(&self) -> bool {
        self.0.active
    }
    async fn fulfills_online_orders(&self) -> bool {
        true
    }
    async fn ships_inventory(&self) -> bool {
        true
    }
    async fn address(&self) -> LocationAddress {
        let l = &self.0;
        LocationAddress {
            address1: Some(l.address1.clone()),
            address2: None,
            city: Some(l.city.clone()),
            country: Some(l.country_code.clone()),
            country_code: Some(l.country_code.clone()),
            province: l.province_code.clone(),
            province_code: l.province_code.clone(),
            zip: Some(l.zip.clone()),
            phone: None,
            formatted: vec![
                l.address1.clone(),
                format!("{} {}", l.zip, l.city),
                l.country_code.clone(),
            ],
        }
    }
    async fn inventory_level(
        &self,
        ctx: &Context<'_>,
        inventory_item_id: ID,
    ) -> Result<Option<InventoryLevel>> {
        let g = ctx.data::<Gql>()?;
        let Some(item) = super::parse_gid(&inventory_item_id, "InventoryItem") else {
            return Ok(None);
        };
        Ok(g.level(item, self.0.id))
    }
    #[allow(clippy::too_many_arguments)]
    async fn inventory_levels(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
        query: Option<String>,
    ) -> Result<Connection<String, InventoryLevel>> {
        let _ = query;
        let g = ctx.data::<Gql>()?;
        let items = g
            .shop
            .lock()
            .levels
            .iter()
            .filter(|((_, l), _)| *l == self.0.id)
            .map(|(&(i, l), lv)| (i, InventoryLevel::new(i, l, lv)))
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
}

/// `FulfillmentOrderStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum FulfillmentOrderStatus {
    Open,
    InProgress,
    Cancelled,
    Incomplete,
    Closed,
    Scheduled,
    OnHold,
}

/// `FulfillmentOrderRequestStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum FulfillmentOrderRequestStatus {
    Unsubmitted,
    Submitted,
    Accepted,
    Rejected,
    CancellationRequested,
    CancellationAccepted,
    CancellationRejected,
    Closed,
}

/// `FulfillmentOrderAssignedLocation`.
pub struct FulfillmentOrderAssignedLocation(u64);

#[Object(name = "FulfillmentOrderAssignedLocation")]
impl FulfillmentOrderAssignedLocation {
    async fn name(&self, ctx: &Context<'_>) -> Result<String> {
        let g = ctx.data::<Gql>()?;
        Ok(g.shop
            .lock()
            .locations
            .get(&self.0)
            .map(|l| l.name.clone())
            .unwrap_or_default())
    }
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        let g = ctx.data::<Gql>()?;
        Ok(g.shop.lock().locations.get(&self.0).cloned().map(Location))
    }
}

/// `FulfillmentOrder`.
pub struct FulfillmentOrder(pub shop::FulfillmentOrder);

#[Object(name = "FulfillmentOrder")]
impl FulfillmentOrder {
    async fn id(&self) -> ID {
        gid("FulfillmentOrder", self.0.id)
    }
    async fn order_id(&self) -> ID {
        gid("Order", self.0.order_id)
    }
    async fn order(&self, ctx: &Context<'_>) -> Result<Order> {
        let g = ctx.data::<Gql>()?;
        g.shop
            .lock()
            .orders
            .get(&self.0.order_id)
            .cloned()
            .map(Order)
            .ok_or_else(|| "order not found".into())
    }
    async fn status(&self) -> FulfillmentOrderStatus {
        match self.0.status.as_str() {
            "IN_PROGRESS" => FulfillmentOrderStatus::InProgress,
            "CLOSED" => FulfillmentOrderStatus::Closed,
            "CANCELLED" => FulfillmentOrderStatus::Cancelled,
            _ => FulfillmentOrderStatus::Open,
        }
    }
    async fn request_status(&self) -> FulfillmentOrderRequestStatus {
        FulfillmentOrderRequestStatus::Unsubmitted
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.updated_at)
    }
    async fn assigned_location(&self) -> FulfillmentOrderAssignedLocation {
        FulfillmentOrderAssignedLocation(self.0.location_id)
    }
    #[allow(clippy::too_many_arguments)]
    async fn line_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, FulfillmentOrderLineItem>> {
        let g = ctx.data::<Gql>()?;
        let order = g.shop.lock().orders.get(&self.0.order_id).cloned();
        let items = self
            .0
            .lines
            .iter()
            .map(|l| {
                let li = order
                    .as_ref()
                    .and_then(|o| o.line_items.iter().find(|x| x.id == l.line_item_id))
                    .cloned();
                (l.id, FulfillmentOrderLineItem(l.clone(), li))
            })
            .collect();
        paginate(g, items, Page::new(first, after, last, before, reverse))
    }
}

/// `FulfillmentOrderLineItem`.
pub struct FulfillmentOrderLineItem(shop::FoLine, Option<model::LineItem>);

#[Object(name = "FulfillmentOrderLineItem")]
impl FulfillmentOrderLineItem {
    async fn id(&self) -> ID {
        gid("FulfillmentOrderLineItem", self.0.id)
    }
    async fn total_quantity(&self) -> i32 {
        self.0.total as i32
    }
    async fn remaining_quantity(&self) -> i32 {
        self.0.remaining as i32
    }
    async fn sku(&self) -> Option<String> {
        self.1.as_ref().and_then(|l| l.sku.clone())
    }
    async fn line_item(&self) -> Result<LineItem> {
        self.1
            .clone()
            .map(LineItem)
            .ok_or_else(|| "line item not found".into())
    }
}

/// `FulfillmentStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum FulfillmentStatus {
    Pending,
    Open,
    Success,
    Cancelled,
    Error,
    Failure,
}

/// `FulfillmentTrackingInfo`.
#[derive(SimpleObject)]
#[graphql(name = "FulfillmentTrackingInfo")]
pub struct FulfillmentTrackingInfo {
    company: Option<String>,
    number: Option<String>,
    url: Option<Url>,
}

/// `Fulfillment`.
pub struct Fulfillment(pub model::Fulfillment);

#[Object(name = "Fulfillment")]
impl Fulfillment {
    async fn id(&self) -> ID {
        gid("Fulfillment", self.0.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn status(&self) -> FulfillmentStatus {
        match self.0.status.as_str() {
            "pending" => FulfillmentStatus::Pending,
            "open" => FulfillmentStatus::Open,
            "cancelled" => FulfillmentStatus::Cancelled,
            "error" => FulfillmentStatus::Error,
            "failure" => FulfillmentStatus::Failure,
            _ => FulfillmentStatus::Success,
        }
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.updated_at)
    }
    async fn tracking_info(&self, first: Option<i32>) -> Vec<FulfillmentTrackingInfo> {
        let n = first.map_or(usize::MAX, |n| n.max(0) as usize);
        self.0
            .tracking_numbers
            .iter()
            .enumerate()
            .take(n)
            .map(|(i, num)| FulfillmentTrackingInfo {
                company: self.0.tracking_company.clone(),
                number: Some(num.clone()),
                url: self.0.tracking_urls.get(i).cloned().map(Url),
            })
            .collect()
    }
    async fn order(&self, ctx: &Context<'_>) -> Result<Order> {
        let g = ctx.data::<Gql>()?;
        g.shop
            .lock()
            .orders
            .get(&self.0.order_id)
            .cloned()
            .map(Order)
            .ok_or_else(|| "order not found".into())
    }
}

/// `WebhookSubscriptionTopic` (the subset the emulator can send).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[allow(missing_docs)]
pub enum WebhookSubscriptionTopic {
    AppUninstalled,
    BulkOperationsFinish,
    CustomersCreate,
    CustomersUpdate,
    FulfillmentsCreate,
    FulfillmentsUpdate,
    InventoryLevelsUpdate,
    OrdersCancelled,
    OrdersCreate,
    OrdersFulfilled,
    OrdersPaid,
    OrdersUpdated,
    OrderTransactionsCreate,
    ProductsCreate,
    ProductsUpdate,
    RefundsCreate,
}

impl WebhookSubscriptionTopic {
    /// The GraphQL enum name (`ORDERS_CREATE`).
    pub fn name(self) -> &'static str {
        use WebhookSubscriptionTopic as T;
        match self {
            T::AppUninstalled => "APP_UNINSTALLED",
            T::BulkOperationsFinish => "BULK_OPERATIONS_FINISH",
            T::CustomersCreate => "CUSTOMERS_CREATE",
            T::CustomersUpdate => "CUSTOMERS_UPDATE",
            T::FulfillmentsCreate => "FULFILLMENTS_CREATE",
            T::FulfillmentsUpdate => "FULFILLMENTS_UPDATE",
            T::InventoryLevelsUpdate => "INVENTORY_LEVELS_UPDATE",
            T::OrdersCancelled => "ORDERS_CANCELLED",
            T::OrdersCreate => "ORDERS_CREATE",
            T::OrdersFulfilled => "ORDERS_FULFILLED",
            T::OrdersPaid => "ORDERS_PAID",
            T::OrdersUpdated => "ORDERS_UPDATED",
            T::OrderTransactionsCreate => "ORDER_TRANSACTIONS_CREATE",
            T::ProductsCreate => "PRODUCTS_CREATE",
            T::ProductsUpdate => "PRODUCTS_UPDATE",
            T::RefundsCreate => "REFUNDS_CREATE",
        }
    }

    /// Parses the GraphQL enum name.
    pub fn from_name(s: &str) -> Option<Self> {
        use WebhookSubscriptionTopic as T;
        [
            T::AppUninstalled,
            T::BulkOperationsFinish,
            T::CustomersCreate,
            T::CustomersUpdate,
            T::FulfillmentsCreate,
            T::FulfillmentsUpdate,
            T::InventoryLevelsUpdate,
            T::OrdersCancelled,
            T::OrdersCreate,
            T::OrdersFulfilled,
            T::OrdersPaid,
            T::OrdersUpdated,
            T::OrderTransactionsCreate,
            T::ProductsCreate,
            T::ProductsUpdate,
            T::RefundsCreate,
        ]
        .into_iter()
        .find(|t| t.name() == s)
    }
}

/// `WebhookSubscriptionFormat`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
#[graphql(rename_items = "UPPERCASE")]
pub enum WebhookSubscriptionFormat {
    JSON,
    XML,
}

/// `WebhookHttpEndpoint`.
#[derive(SimpleObject)]
#[graphql(name = "WebhookHttpEndpoint")]
pub struct WebhookHttpEndpoint {
    callback_url: Url,
}

/// `WebhookSubscriptionEndpoint`.
#[derive(Union)]
#[graphql(name = "WebhookSubscriptionEndpoint")]
pub enum WebhookSubscriptionEndpoint {
    /// HTTP endpoint.
    Http(WebhookHttpEndpoint),
}

/// `ApiVersion`.
#[derive(SimpleObject)]
#[graphql(name = "ApiVersion")]
pub struct ApiVersion {
    display_name: String,
    handle: String,
    supported: bool,
}

/// `WebhookSubscription`.
pub struct WebhookSubscription(pub shop::Subscription);

#[Object(name = "WebhookSubscription")]
impl WebhookSubscription {
    async fn id(&self) -> ID {
        gid("WebhookSubscription", self.0.id)
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn topic(&self) -> Result<WebhookSubscriptionTopic> {
        WebhookSubscriptionTopic::from_name(&self.0.topic).ok_or_else(|| "unknown topic".into())
    }
    async fn format(&self) -> WebhookSubscriptionFormat {
        if self.0.format == "XML" {
            WebhookSubscriptionFormat::XML
        } else {
            WebhookSubscriptionFormat::JSON
        }
    }
    async fn callback_url(&self) -> Url {
        Url(self.0.callback_url.clone())
    }
    async fn endpoint(&self) -> WebhookSubscriptionEndpoint {
        WebhookSubscriptionEndpoint::Http(WebhookHttpEndpoint {
            callback_url: Url(self.0.callback_url.clone()),
        })
    }
    async fn include_fields(&self) -> &[String] {
        &self.0.include_fields
    }
    async fn metafield_namespaces(&self) -> &[String] {
        &self.0.metafield_namespaces
    }
    async fn filter(&self) -> Option<&str> {
        self.0.filter.as_deref()
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.updated_at)
    }
    async fn api_version(&self) -> ApiVersion {
        ApiVersion {
            display_name: self.0.api_version.clone(),
            handle: self.0.api_version.clone(),
            supported: true,
        }
    }
}

/// `BulkOperationStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum BulkOperationStatus {
    Canceled,
    Canceling,
    Completed,
    Created,
    Expired,
    Failed,
    Running,
}

/// `BulkOperationType`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum BulkOperationType {
    Query,
    Mutation,
}

/// `BulkOperationErrorCode`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum BulkOperationErrorCode {
    AccessDenied,
    InternalServerError,
    Timeout,
}

/// `BulkOperation`.
pub struct BulkOperation(pub shop::BulkOp);

#[Object(name = "BulkOperation")]
impl BulkOperation {
    async fn id(&self) -> ID {
        gid("BulkOperation", self.0.id)
    }
    async fn status(&self) -> BulkOperationStatus {
        match self.0.status.as_str() {
            "COMPLETED" => BulkOperationStatus::Completed,
            "RUNNING" => BulkOperationStatus::Running,
            "FAILED" => BulkOperationStatus::Failed,
            "CANCELED" => BulkOperationStatus::Canceled,
            _ => BulkOperationStatus::Created,
        }
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> BulkOperationType {
        BulkOperationType::Query
    }
    async fn error_code(&self) -> Option<BulkOperationErrorCode> {
        self.0
            .error_code
            .as_ref()
            .map(|_| BulkOperationErrorCode::InternalServerError)
    }
    async fn query(&self) -> &str {
        &self.0.query
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.0.created_at)
    }
    async fn completed_at(&self) -> Option<DateTime> {
        self.0.completed_at.as_deref().map(DateTime::from_wire)
    }
    async fn object_count(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.object_count)
    }
    async fn root_object_count(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.root_object_count)
    }
    async fn file_size(&self) -> Option<UnsignedInt64> {
        (self.0.status == "COMPLETED").then_some(UnsignedInt64(self.0.jsonl.len() as u64))
    }
    async fn url(&self, ctx: &Context<'_>) -> Result<Option<Url>> {
        if self.0.status != "COMPLETED" {
            return Ok(None);
        }
        let g = ctx.data::<Gql>()?;
        Ok(Some(Url(g.bulk_url(self.0.id))))
    }
    async fn partial_data_url(&self) -> Option<Url> {
        None
    }
}

/// `UserError`.
#[derive(SimpleObject, Clone)]
#[graphql(name = "UserError")]
pub struct UserError {
    /// Path to the input field.
    pub field: Option<Vec<String>>,
    /// Message.
    pub message: String,
}
