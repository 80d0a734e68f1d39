//! Webhook sender: signed deliveries with Shopify's headers, retries with
//! exponential backoff and the same webhook id, subscription removal after
//! consecutive failures, and optional duplicates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::shop::{AttemptRecord, DeliveryRecord};
use crate::{Inner, Shop};

/// base64(HMAC-SHA256(secret, body)), the `X-Shopify-Hmac-Sha256` value.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an
    // empty signature rather than panic if the library ever changes.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Emits a typed payload to every subscription of `topic` (`orders/create`).
pub fn emit_json<T: Serialize>(emu: &Arc<Inner>, shop: &Arc<Shop>, topic: &str, payload: &T) {
    match serde_json::to_value(payload) {
        Ok(v) => {
            let id = v.get("id").and_then(Value::as_u64);
            emit_value(emu, shop, topic, v, id);
        }
        Err(e) => tracing::warn!(error = %e, topic, "webhook payload did not serialise"),
    }
}

fn resource_header(topic: &str) -> Option<&'static str> {
    match topic.split('/').next()? {
        "orders" => Some("X-Shopify-Order-Id"),
        "customers" => Some("X-Shopify-Customer-Id"),
        "products" => Some("X-Shopify-Product-Id"),
        "fulfillments" => Some("X-Shopify-Fulfillment-Id"),
        "refunds" => Some("X-Shopify-Refund-Id"),
        _ => None,
    }
}

/// Emits a JSON payload to every subscription of `topic`.
pub fn emit_value(
    emu: &Arc<Inner>,
    shop: &Arc<Shop>,
    topic: &str,
    payload: Value,
    resource_id: Option<u64>,
) {
    let enum_name = topic.replace('/', "_").to_uppercase();
    let event_id = uuid::Uuid::new_v4().to_string();
    let triggered_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let targets: Vec<(crate::shop::Subscription, bool)> = {
        let mut data = shop.lock();
        let dup_rate = data.faults.duplicate_webhook_rate;
        let subs: Vec<_> = data
            .subscriptions
            .values()
            .filter(|s| s.topic == enum_name)
            .cloned()
            .collect();
        subs.into_iter()
            .map(|s| {
                let dup = dup_rate > 0.0 && data.fault_rng.random_bool(dup_rate.clamp(0.0, 1.0));
                (s, dup)
            })
            .collect()
    };
    for (sub, dup) in targets {
        let body = match filter_fields(&payload, &sub.include_fields) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "webhook body did not serialise");
                continue;
            }
        };
        let webhook_id = uuid::Uuid::new_v4().to_string();
        let copies = if dup { 2 } else { 1 };
        for copy in 0..copies {
            let d = Delivery {
                webhook_id: webhook_id.clone(),
                event_id: event_id.clone(),
                triggered_at: triggered_at.clone(),
                topic: topic.to_owned(),
                subscription_id: sub.id,
                url: sub.callback_url.clone(),
                api_version: sub.api_version.clone(),
                body: body.clone(),
                resource_id,
                duplicate: copy > 0,
                app: sub.app.clone(),
            };
            let index = {
                let mut data = shop.lock();
                data.delivery_seq += 1;
                let seq = data.delivery_seq;
                if data.deliveries.len() >= crate::shop::MAX_RECORDS {
                    data.deliveries.drain(..crate::shop::MAX_RECORDS / 10);
                }
                data.deliveries.push(DeliveryRecord {
                    seq,
                    webhook_id: d.webhook_id.clone(),
                    event_id: d.event_id.clone(),
                    topic: d.topic.clone(),
                    subscription_id: d.subscription_id,
                    callback_url: d.url.clone(),
                    duplicate: d.duplicate,
                    outcome: "pending".into(),
                    attempts: Vec::new(),
                });
                seq
            };
            tokio::spawn(deliver(emu.clone(), shop.clone(), d, index));
        }
    }
}

fn filter_fields(payload: &Value, fields: &[String]) -> Result<Vec<u8>, serde_json::Error> {
    if fields.is_empty() {
        return serde_json::to_vec(payload);
    }
    let mut out = serde_json::Map::new();
    if let Some(obj) = payload.as_object() {
        for f in fields {
            if let Some(v) = obj.get(f) {
                out.insert(f.clone(), v.clone());
            }
        }
    }
    serde_json::to_vec(&Value::Object(out))
}

struct Delivery {
    webhook_id: String,
    event_id: String,
    triggered_at: String,
    topic: String,
    subscription_id: u64,
    url: String,
    api_version: String,
    body: Vec<u8>,
    resource_id: Option<u64>,
    duplicate: bool,
    app: String,
}

async fn deliver(emu: Arc<Inner>, shop: Arc<Shop>, d: Delivery, index: u64) {
    let cfg = emu.config.webhooks.clone();
    let signature = sign(shop.app_secret(&d.app).as_bytes(), &d.body);
    for attempt in 0..cfg.max_attempts {
        let down = {
            let data = shop.lock();
            if !data.subscriptions.contains_key(&d.subscription_id) {
                drop(data);
                set_outcome(&shop, index, "subscription_deleted");
                return;
            }
            data.faults.webhook_receiver_down
        };
        let started = Instant::now();
        let at = crate::now_rfc3339();
        let result: Result<u16, String> = if down {
            Err("connection refused (receiver down, injected)".into())
        } else {
            let mut req = emu
                .client
                .post(&d.url)
                .timeout(cfg.timeout)
                .header("Content-Type", "application/json")
                .header("User-Agent", "Shopify-Captain-Hook")
                .header("X-Shopify-Topic", &d.topic)
                .header("X-Shopify-Hmac-Sha256", &signature)
                .header("X-Shopify-Shop-Domain", &shop.domain)
                .header("X-Shopify-API-Version", &d.api_version)
                .header("X-Shopify-Webhook-Id", &d.webhook_id)
                .header("X-Shopify-Triggered-At", &d.triggered_at)
                .header("X-Shopify-Event-Id", &d.event_id)
                .header("X-Shopify-Test", "false")
                .body(d.body.clone());
            if let (Some(h), Some(id)) = (resource_header(&d.topic), d.resource_id) {
                req = req.header(h, id.to_string());
            }
            match req.send().await {
                Ok(r) => Ok(r.status().as_u16()),
                Err(e) => Err(classify(&e)),
            }
        };
        let ok = matches!(result, Ok(s) if (200..300).contains(&s));
        let rec = AttemptRecord {
            at,
            status: result.as_ref().ok().copied(),
            error: result.err(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        let deleted = {
            let mut data = shop.lock();
            if let Some(del) = record(&mut data.deliveries, index) {
                del.attempts.push(rec);
            }
            let mut deleted = false;
            if let Some(sub) = data.subscriptions.get_mut(&d.subscription_id) {
                if ok {
                    sub.consecutive_failures = 0;
                } else {
                    sub.consecutive_failures += 1;
                    if sub.consecutive_failures >= cfg.delete_after_failures {
                        data.subscriptions.remove(&d.subscription_id);
                        deleted = true;
                    }
                }
            }
            deleted
        };
        if ok {
            set_outcome(&shop, index, "delivered");
            return;
        }
        if deleted {
            tracing::info!(
                subscription = d.subscription_id,
                "webhook subscription deleted after consecutive failures"
            );
            set_outcome(&shop, index, "failed");
            return;
        }
        if attempt + 1 < cfg.max_attempts {
            let mut stopping = emu.stopping.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(cfg.delay(attempt)) => {}
                // The emulator is shutting down: abandon the retries.
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    }
    set_outcome(&shop, index, "failed");
}

fn classify(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        format!("connect: {e}")
    } else {
        format!("transport: {e}")
    }
}

/// The record with sequence number `seq`; recent ones are at the end.
fn record(list: &mut [DeliveryRecord], seq: u64) -> Option<&mut DeliveryRecord> {
    list.iter_mut().rev().find(|d| d.seq == seq)
}

fn set_outcome(shop: &Shop, seq: u64, outcome: &str) {
    if let Some(d) = record(&mut shop.lock().deliveries, seq) {
        d.outcome = outcome.into();
    }
}

/// Retry settings of the webhook sender.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Attempts per delivery (Shopify: 8).
    pub max_attempts: u32,
    /// Failed attempts in a row after which the subscription is deleted (8).
    pub delete_after_failures: u32,
    /// Delay before the first retry, doubled for each further retry, in
    /// seconds before scaling. 56 s × (1 + 2 + … + 64) ≈ 4 hours, as Shopify.
    pub first_retry_secs: f64,
    /// Multiplies every delay: 1.0 is real time, 0.001 makes tests fast.
    pub time_scale: f64,
    /// Per-attempt timeout (Shopify: 5 s).
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_attempts: 8,
            delete_after_failures: 8,
            first_retry_secs: 56.0,
            time_scale: 1.0,
            timeout: Duration::from_secs(5),
        }
    }
}

impl WebhookConfig {
    /// Wait before retry number `attempt + 1`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let secs = self.first_retry_secs * 2f64.powi(attempt as i32) * self.time_scale;
        Duration::from_secs_f64(secs.clamp(0.0, 86_400.0))
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
