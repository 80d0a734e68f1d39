//! `/metrics` through real HTTP on both backends, parsed with a Prometheus text-format parser:
//! the expected families are there, 100 tenants sending webhooks add no series per tenant, and
//! Shopify Admin API calls are counted by outcome with their cost.

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
async fn metrics_parse_and_stay_bounded_when_a_hundred_tenants_send_webhooks_and_count_shopify_calls()
 {
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
        shopify_calls_are_counted(&app, mode).await;
    }
}

/// The value of one sample (0 when absent).
fn sample(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == metric
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v))
        })
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
}

/// Shopify calls are counted by outcome, with their cost, and no shop label. Run after the
/// cardinality check of the same test: the metrics are process-wide, so a parallel test's
/// requests would add route series to that check.
async fn shopify_calls_are_counted(app: &TestApp, mode: common::Mode) {
    {
        let tenant = app
            .tenant(&format!(
                "shopify-metrics-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            ))
            .await;
        let email = common::unique_email("owner");
        app.user(&email, Some((tenant, syncline_store::Role::Owner)), false)
            .await;
        let client = app.session(&email).await;
        let csrf = app.csrf(&client).await;
        let created = client
            .post(app.url("/console/connections/sandbox"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success() || created.status().is_redirection());
        let shop = app
            .store
            .list_connections(tenant)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.kind == ConnectionKind::Shopify)
            .unwrap();
        let domain = shop.settings["shop_domain"].as_str().unwrap().to_owned();
        let test = || async {
            client
                .post(app.url(&format!("/api/v1/connections/{}/test", shop.id)))
                .header("x-csrf-token", &csrf)
                .send()
                .await
                .unwrap()
        };
        let labels = |outcome| [("partner", "shopify"), ("outcome", outcome)];
        let before = scrape(app).await;

        // One answered call (it costs points), then one Shopify throttles.
        assert_eq!(test().await.status(), 200);
        app.sandbox
            .emulators()
            .shopify
            .set_faults(
                domain.trim_end_matches(".myshopify.com"),
                syncline_sim::shopify::Faults {
                    throttle_next: 1,
                    ..Default::default()
                },
            )
            .unwrap();
        test().await;

        let after = scrape(app).await;
        let grew = |metric: &str, labels: &[(&str, &str)]| {
            sample(&after, metric, labels) - sample(&before, metric, labels)
        };
        assert!(
            grew("syncline_partner_requests_total", &labels("ok")) >= 1.0,
            "{mode:?}: an answered Shopify call is counted"
        );
        assert!(
            grew("syncline_partner_requests_total", &labels("throttled")) >= 1.0,
            "{mode:?}: a THROTTLED answer is counted"
        );
        assert!(
            grew(
                "syncline_partner_cost_points_total",
                &[("partner", "shopify")]
            ) >= 1.0,
            "{mode:?}: the charged cost is summed"
        );
        let text = after
            .samples
            .iter()
            .flat_map(|s| s.labels.values().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            !text.contains(&domain) && !text.contains(&tenant.to_string()),
            "{mode:?}: no shop or tenant label"
        );
    }
}
