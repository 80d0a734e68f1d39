//! The Admin API client against the Shopify emulator, started in process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use secrecy::SecretString;
use syncline_shopify::client::{AdminClient, AdminConfig, ClientError, test_connection};
use syncline_sim_shopify::{Config, Faults, Plan, ShopSpec, ShopifyEmulator, ShopifyInfo};

async fn emulator() -> ShopifyEmulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    syncline_sim_shopify::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        seed: 7,
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

fn config(info: &ShopifyInfo) -> AdminConfig {
    AdminConfig {
        base_url: Some(info.url.clone()),
        api_version: info.api_version.clone(),
        ..AdminConfig::new(
            info.shop_domain.clone(),
            SecretString::from(info.access_token.clone()),
        )
    }
}

fn client(info: &ShopifyInfo) -> AdminClient {
    AdminClient::new(&config(info)).unwrap()
}

#[tokio::test]
async fn shop_info_and_health_check() {
    let emu = emulator().await;
    let info = emu.info();
    let (client, health) = config(&info).build().unwrap();
    let shop = health.await.unwrap();
    assert_eq!(shop.myshopify_domain, info.shop_domain);
    assert!(!shop.name.is_empty());
    assert_eq!(shop.currency_code.len(), 3);
    assert_eq!(test_connection(&client).await.unwrap(), shop);
    // The bucket estimate comes from the answer's throttleStatus.
    let est = client.cost_estimate().await.unwrap();
    assert_eq!(est.maximum_available, 2000.0);
    assert_eq!(est.restore_rate, 100.0);
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_or_revoked_token_is_unauthorized() {
    let emu = emulator().await;
    let info = emu.info();
    let mut cfg = config(&info);
    cfg.access_token = SecretString::from("shpat_wrong".to_owned());
    let err = test_connection(&AdminClient::new(&cfg).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    assert!(err.is_auth() && !err.is_retryable());
    assert_eq!(err.code(), Some("HTTP 401"));
    let text = err.to_string();
    assert!(text.contains("invalid or was revoked"), "{text}");
    assert!(text.contains("Invalid API key or access token"), "{text}");
    assert!(!text.contains("shpat_wrong"), "token leaked: {text}");

    emu.set_faults(
        emu.default_shop(),
        Faults {
            revoked_token: true,
            ..Default::default()
        },
    )
    .unwrap();
    let err = client(&info).shop_info().await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(&info.access_token));
    emu.shutdown().await;
}

#[tokio::test]
async fn throttled_answer_is_classified_with_a_wait() {
    let emu = emulator().await;
    let info = emu.info();
    let client = client(&info);
    emu.set_faults(
        emu.default_shop(),
        Faults {
            throttle_next: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let err = client.shop_info().await.unwrap_err();
    match &err {
        ClientError::Throttled { retry_after, code } => {
            assert_eq!(code.as_deref(), Some("THROTTLED"));
            assert!(*retry_after >= Duration::from_millis(100));
            assert!(*retry_after < Duration::from_secs(5));
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(err.to_string().contains("retry in"), "{err}");
    // After the suggested wait the same call goes through.
    tokio::time::sleep(err.retry_after().unwrap()).await;
    client.shop_info().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn client_waits_for_the_bucket_instead_of_being_throttled() {
    let emu = emulator().await;
    let tiny = emu
        .create_shop(ShopSpec {
            name: "tiny".into(),
            plan: Some(Plan {
                restore_rate: 20.0,
                maximum: 25.0,
            }),
            ..Default::default()
        })
        .unwrap();
    let client = client(&tiny);
    client.shop_info().await.unwrap(); // learn the bucket
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..6 {
        // Each mutation requests 10 points: the 25-point bucket holds two.
        ids.push(
            client
                .webhook_subscription_create(
                    "orders/create",
                    &format!("https://hooks.example.com/{i}"),
                )
                .await
                .unwrap(),
        );
    }
    // 60 points through a 25-point bucket refilling 20/s: at least ~1.5 s of waiting.
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    let requests = emu.requests("tiny").unwrap();
    assert!(
        requests.iter().all(|r| !r.throttled),
        "the client sent a request the bucket could not hold"
    );
    // A query that can never fit is refused before it is sent.
    let sent = requests.len();
    let err = client.webhook_subscriptions().await.unwrap_err();
    assert_eq!(err.code(), Some("MAX_COST_EXCEEDED"), "{err:?}");
    assert_eq!(emu.requests("tiny").unwrap().len(), sent);
    emu.shutdown().await;
}

#[tokio::test]
async fn webhook_subscription_round_trip() {
    let emu = emulator().await;
    let info = emu.info();
    let client = client(&info);
    let url = "https://syncline.example.com/hooks/shopify/42";
    let id = client
        .webhook_subscription_create("orders/create", url)
        .await
        .unwrap();
    assert!(id.starts_with("gid://shopify/WebhookSubscription/"), "{id}");
    let id2 = client
        .webhook_subscription_create("REFUNDS_CREATE", url)
        .await
        .unwrap();

    let subs = client.webhook_subscriptions().await.unwrap();
    let mine = subs.iter().find(|s| s.id == id).expect("listed");
    assert_eq!(mine.topic, "ORDERS_CREATE");
    assert_eq!(mine.callback_url.as_deref(), Some(url));
    assert!(
        subs.iter()
            .any(|s| s.id == id2 && s.topic == "REFUNDS_CREATE")
    );
    assert_eq!(
        emu.subscriptions(emu.default_shop()).unwrap().len(),
        subs.len()
    );

    // The same topic and address twice: the user error comes back with its field.
    let err = client
        .webhook_subscription_create("orders/create", url)
        .await
        .unwrap_err();
    match &err {
        ClientError::UserErrors(errors) => {
            assert_eq!(
                errors[0].field.as_deref(),
                Some(&["webhookSubscription".to_owned(), "callbackUrl".to_owned()][..])
            );
            assert!(err.to_string().contains("already been taken"), "{err}");
        }
        other => panic!("expected user errors, got {other:?}"),
    }

    client.webhook_subscription_delete(&id).await.unwrap();
    let err = client.webhook_subscription_delete(&id).await.unwrap_err();
    assert!(matches!(err, ClientError::NotFound(_)), "{err:?}");
    let subs = client.webhook_subscriptions().await.unwrap();
    assert!(subs.iter().all(|s| s.id != id));
    assert!(subs.iter().any(|s| s.id == id2));
    emu.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_transient() {
    let emu = emulator().await;
    let info = emu.info();
    emu.set_faults(
        emu.default_shop(),
        Faults {
            error_next: 1,
            error_status: Some(503),
            ..Default::default()
        },
    )
    .unwrap();
    let err = client(&info).shop_info().await.unwrap_err();
    assert!(matches!(err, ClientError::Transient { .. }), "{err:?}");
    assert_eq!(err.code(), Some("HTTP 503"));
    client(&info).shop_info().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn unreachable_hosts_have_readable_messages() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Connection refused: a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = AdminConfig::new("acme.myshopify.com", SecretString::from("t".to_owned()));
    cfg.base_url = Some(format!("http://127.0.0.1:{port}/shops/acme"));
    let err = test_connection(&AdminClient::new(&cfg).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("connection_refused"), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("refused"), "{err}");

    // DNS failure.
    cfg.base_url = Some("http://no-such-shop.invalid".into());
    let err = test_connection(&AdminClient::new(&cfg).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("dns"), "{err:?}");
    assert!(err.to_string().contains("could not be resolved"), "{err}");
}

#[test]
fn shop_domain_must_be_myshopify() {
    for bad in [
        "acme.com",
        "acme.myshopify.com.evil.com",
        ".myshopify.com",
        "ACME.myshopify.com",
        "-x.myshopify.com",
    ] {
        let cfg = AdminConfig::new(bad, SecretString::from("t".to_owned()));
        assert!(
            matches!(AdminClient::new(&cfg), Err(ClientError::Config(_))),
            "{bad} accepted"
        );
    }
    let mut cfg = AdminConfig::new("acme-2.myshopify.com", SecretString::from("t".to_owned()));
    assert!(AdminClient::new(&cfg).is_ok());
    cfg.api_version = "latest".into();
    assert!(AdminClient::new(&cfg).is_err());
    // Unknown settings are refused; the token never shows in Debug.
    let parsed: Result<AdminConfig, _> = serde_json::from_value(serde_json::json!({
        "shop_domain": "acme.myshopify.com", "access_token": "shpat_x", "tokn": 1
    }));
    assert!(parsed.is_err());
    let parsed: AdminConfig = serde_json::from_value(serde_json::json!({
        "shop_domain": "acme.myshopify.com", "access_token": "shpat_secret_value"
    }))
    .unwrap();
    assert!(!format!("{parsed:?}").contains("shpat_secret_value"));
    let client = AdminClient::new(&parsed).unwrap();
    assert!(!format!("{client:?}").contains("shpat_secret_value"));
}
