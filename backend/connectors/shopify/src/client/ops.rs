//! Typed Admin API operations. Every document here is checked against the
//! 2025-01 schema by `tests/graphql.rs`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::json;

use super::{AdminClient, ClientError, GraphqlRequest, UserError};

/// `shop { name currencyCode myshopifyDomain }`.
pub const SHOP_INFO: &str = "query ShopInfo { shop { name currencyCode myshopifyDomain } }";

/// One page of webhook subscriptions.
pub const WEBHOOK_SUBSCRIPTIONS: &str = "query WebhookSubscriptions($first: Int!, $after: String) { \
webhookSubscriptions(first: $first, after: $after) { \
pageInfo { hasNextPage endCursor } \
nodes { id topic format endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } } } }";

/// Subscribe one topic to an HTTPS callback.
pub const WEBHOOK_SUBSCRIPTION_CREATE: &str = "mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) { \
webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) { \
webhookSubscription { id topic } userErrors { field message } } }";

/// Remove one subscription.
pub const WEBHOOK_SUBSCRIPTION_DELETE: &str = "mutation WebhookSubscriptionDelete($id: ID!) { \
webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } } }";

/// Every document the client sends, by operation name (for schema checks).
pub const DOCUMENTS: &[(&str, &str)] = &[
    ("ShopInfo", SHOP_INFO),
    ("WebhookSubscriptions", WEBHOOK_SUBSCRIPTIONS),
    ("WebhookSubscriptionCreate", WEBHOOK_SUBSCRIPTION_CREATE),
    ("WebhookSubscriptionDelete", WEBHOOK_SUBSCRIPTION_DELETE),
];

/// Page size for listing subscriptions.
const SUBSCRIPTION_PAGE: u32 = 25;

/// What "Test connection" shows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopInfo {
    /// Shop name.
    pub name: String,
    /// Store currency (ISO 4217).
    pub currency_code: String,
    /// `{name}.myshopify.com`.
    pub myshopify_domain: String,
}

/// A registered webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    /// `gid://shopify/WebhookSubscription/…`.
    pub id: String,
    /// GraphQL topic enum, e.g. `ORDERS_CREATE`.
    pub topic: String,
    /// HTTPS callback; `None` for EventBridge/Pub/Sub endpoints.
    pub callback_url: Option<String>,
}

/// GraphQL `WebhookSubscriptionTopic` for a REST-style topic
/// (`orders/create` → `ORDERS_CREATE`); enum names pass through.
pub fn topic_enum(topic: &str) -> String {
    topic.trim().replace('/', "_").to_ascii_uppercase()
}

#[derive(Deserialize)]
struct ShopData {
    shop: ShopInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubsData {
    webhook_subscriptions: SubsConnection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubsConnection {
    page_info: PageInfo,
    nodes: Vec<SubNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct SubNode {
    id: String,
    topic: String,
    #[serde(default)]
    endpoint: Option<Endpoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateData {
    webhook_subscription_create: CreatePayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatePayload {
    webhook_subscription: Option<IdOnly>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteData {
    webhook_subscription_delete: DeletePayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletePayload {
    deleted_webhook_subscription_id: Option<String>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

impl AdminClient {
    /// `shop { name currencyCode myshopifyDomain }`.
    pub async fn shop_info(&self) -> Result<ShopInfo, ClientError> {
        let req = GraphqlRequest {
            name: "ShopInfo",
            query: Cow::Borrowed(SHOP_INFO),
            variables: serde_json::Value::Null,
            cost: 1.0,
        };
        Ok(self.graphql::<ShopData>(&req).await?.data.shop)
    }

    /// Every webhook subscription of this app (all pages).
    pub async fn webhook_subscriptions(&self) -> Result<Vec<WebhookSubscription>, ClientError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let req = GraphqlRequest {
                name: "WebhookSubscriptions",
                query: Cow::Borrowed(WEBHOOK_SUBSCRIPTIONS),
                variables: json!({ "first": SUBSCRIPTION_PAGE, "after": after }),
                // Connection 2 + first × (node 1 + endpoint 1), plus pageInfo.
                cost: f64::from(2 + SUBSCRIPTION_PAGE * 2 + 1),
            };
            let page = self
                .graphql::<SubsData>(&req)
                .await?
                .data
                .webhook_subscriptions;
            out.extend(page.nodes.into_iter().map(|n| WebhookSubscription {
                id: n.id,
                topic: n.topic,
                callback_url: n.endpoint.and_then(|e| e.callback_url),
            }));
            match (page.page_info.has_next_page, page.page_info.end_cursor) {
                (true, Some(c)) => after = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// Subscribes `topic` (`orders/create` or `ORDERS_CREATE`) to
    /// `callback_url` in JSON format; answers the new subscription's id.
    pub async fn webhook_subscription_create(
        &self,
        topic: &str,
        callback_url: &str,
    ) -> Result<String, ClientError> {
        let req = GraphqlRequest {
            name: "WebhookSubscriptionCreate",
            query: Cow::Borrowed(WEBHOOK_SUBSCRIPTION_CREATE),
            variables: json!({
                "topic": topic_enum(topic),
                "webhookSubscription": { "callbackUrl": callback_url, "format": "JSON" },
            }),
            cost: 10.0,
        };
        let payload = self
            .graphql::<CreateData>(&req)
            .await?
            .data
            .webhook_subscription_create;
        if !payload.user_errors.is_empty() {
            return Err(ClientError::UserErrors(payload.user_errors));
        }
        payload
            .webhook_subscription
            .map(|s| s.id)
            .ok_or_else(|| ClientError::Invalid {
                message:
                    "webhookSubscriptionCreate returned neither a subscription nor user errors"
                        .into(),
                code: None,
            })
    }

    /// Deletes a subscription by id; `NotFound` when it does not exist.
    pub async fn webhook_subscription_delete(&self, id: &str) -> Result<(), ClientError> {
        let req = GraphqlRequest {
            name: "WebhookSubscriptionDelete",
            query: Cow::Borrowed(WEBHOOK_SUBSCRIPTION_DELETE),
            variables: json!({ "id": id }),
            cost: 10.0,
        };
        let payload = self
            .graphql::<DeleteData>(&req)
            .await?
            .data
            .webhook_subscription_delete;
        if payload.deleted_webhook_subscription_id.is_some() {
            return Ok(());
        }
        let missing = payload.user_errors.iter().any(|e| {
            let m = e.message.to_ascii_lowercase();
            m.contains("does not exist") || m.contains("not found")
        });
        if missing || payload.user_errors.is_empty() {
            return Err(ClientError::NotFound(format!("webhook subscription {id}")));
        }
        Err(ClientError::UserErrors(payload.user_errors))
    }
}
