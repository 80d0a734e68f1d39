//! `/metrics` through real HTTP on both backends, parsed with a Prometheus text-format parser:
//! the expected families are there, and 100 tenants sending webhooks add no series per tenant.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use common::{MODES, TestApp, spawn_app};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::json;
use sha2::Sha256;
use syncline_store::{ConnectionKind, NewConnection};

const ORDER: &str = include_str!(
    "../../../../shared/fixtures/shopify/webhooks/shopify_webhook_orders_create_2026-07.json"
);

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn scrape(app: &TestApp) -> prometheus_parse::Scrape {
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).unwrap()
}

/// Series per metric name (histogram buckets folded into their family).
fn series(scrape: &prometheus_parse::Scrape) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sample in &scrape.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "le")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        labels.sort();
        out.entry(sample.metric.clone())
            .or_default()
            .insert(labels.join(","));
    }
    out
}

#[tokio::test]
async fn metrics_parse_and_stay_bounded_when_a_hundred_tenants_send_webhooks() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let http = reqwest::Client::new();
        let body = ORDER.as_bytes();
        let mut identifiers = Vec::new();
        let before = series(&scrape(&app).await);

        for n in 0..100 {
            let slug = format!(
                "metrics-{n}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            );
            let tenant = app.tenant(&slug).await;
            let shop = app
                .store
                .create_connection(
                    tenant,
                    &NewConnection {
                        kind: ConnectionKind::Shopify,
                        name: format!("Shop {n}"),
                        sandbox: false,
                        settings: json!({ "shop_domain": format!("{slug}.myshopify.com") }),
                    },
                )
                .await
                .unwrap();
            let secret = format!("secret-{n}");
            app.store
                .put_secret(
                    tenant,
                    &syncline_web::connections::secret_name(shop.id, "api_secret"),
                    &SecretString::from(secret.clone()),
                )
                .await
                .unwrap();
            // One good delivery and one forged one per tenant.
            for signature in [sign(&secret, body), "forged".to_owned()] {
                let status = http
                    .post(app.url(&format!("/hooks/shopify/{}", shop.id)))
                    .header("Content-Type", "application/json")
                    .header("X-Shopify-Topic", "orders/create")
                    .header("X-Shopify-Hmac-Sha256", signature)
                    .header("X-Shopify-Shop-Domain", format!("{slug}.myshopify.com"))
                    .header("X-Shopify-API-Version", "2026-07")
                    .header("X-Shopify-Webhook-Id", uuid::Uuid::new_v4().to_string())
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert!(status == 200 || status == 401, "{mode:?}: {status}");
            }
            identifiers.extend([tenant.to_string(), shop.id.to_string(), slug]);
        }

        let scrape = scrape(&app).await;
        let after = series(&scrape);
        for family in [
            "syncline_http_requests_total",
            "syncline_http_request_duration_seconds_count",
            "syncline_queue_runs",
            "syncline_queue_oldest_age_seconds",
            "syncline_token_refreshes_total",
        ] {
            assert!(
                after.contains_key(family),
                "{mode:?}: {family} missing: {:?}",
                after.keys()
            );
        }
        let intake = &after["syncline_http_requests_total"];
        assert!(
            intake.contains("method=POST,route=/hooks/shopify/:connection,status=2xx")
                && intake.contains("method=POST,route=/hooks/shopify/:connection,status=4xx"),
            "{mode:?}: {intake:?}"
        );
        let text = scrape
            .samples
            .iter()
            .flat_map(|s| s.labels.values().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        for id in &identifiers {
            assert!(!text.contains(id.as_str()), "{mode:?}: a label holds {id}");
        }
        // 100 tenants' traffic may add the intake's own few series, never one per tenant.
        for (name, set) in &after {
            let grown = set
                .len()
                .saturating_sub(before.get(name).map_or(0, BTreeSet::len));
            assert!(
                grown <= 4,
                "{mode:?}: {name} grew by {grown} series: {set:?}"
            );
            assert!(set.len() < 100, "{mode:?}: {name} has {} series", set.len());
        }
    }
}
