//! Token cache, OData client and `$batch` against the D365 emulator, started in process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal_macros::dec;
use secrecy::SecretString;
use serde_json::{Value, json};
use syncline_d365::batch::Batch;
use syncline_d365::entities::{CustomerV3, SalesOrderHeaderV2, SalesOrderLine};
use syncline_d365::odata::{Company, Key};
use syncline_d365::{D365Config, D365Error, ODataClient, Query, test_connection};
use syncline_sim_d365::{Config, D365Emulator, D365Info, Fault, FaultRule, Target, ThrottleConfig};

async fn emulator(config: Config) -> D365Emulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    syncline_sim_d365::start(config)
        .await
        .expect("emulator starts")
}

fn config(info: &D365Info) -> D365Config {
    D365Config {
        token_url: Some(info.token_url.clone()),
        ..D365Config::new(
            info.url.clone(),
            info.tenant_id.clone(),
            info.client_id.clone(),
            SecretString::from(info.client_secret.clone()),
            info.data_area_id.clone(),
        )
    }
}

fn client(info: &D365Info) -> ODataClient {
    ODataClient::new(&config(info)).unwrap()
}

#[tokio::test]
async fn test_connection_reads_one_row() {
    let emu = emulator(Config::default()).await;
    let (client, health) = config(&emu.info()).build().unwrap();
    let summary = health.await.unwrap();
    assert_eq!(summary.rows, 1);
    assert_eq!(summary.data_area_id, "usmf");
    assert!(
        summary.message.contains("CustomerGroups"),
        "{}",
        summary.message
    );
    assert_eq!(test_connection(&client).await.unwrap(), summary);
    emu.shutdown().await;
}

#[tokio::test]
async fn token_is_cached_single_flight_and_refreshed_before_expiry() {
    let emu = emulator(Config {
        token_lifetime: Duration::from_secs(2),
        ..Config::default()
    })
    .await;
    let client = client(&emu.info());
    let tokens = client.tokens();
    // Twenty concurrent callers share one fetch.
    let all = futures::future::join_all((0..20).map(|_| tokens.token())).await;
    assert!(all.iter().all(Result::is_ok));
    assert_eq!(tokens.fetch_count(), 1);
    client
        .get_page(&Query::new("CustomerGroups").top(1))
        .await
        .unwrap();
    assert_eq!(tokens.fetch_count(), 1, "cached token reused");

    // Keep calling: a new token is fetched before the old one expires, so
    // F&O never sees an expired token.
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokens.fetch_count() < 3 {
        assert!(Instant::now() < deadline, "token never refreshed");
        client
            .get_page(&Query::new("CustomerGroups").top(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unauthorized = emu
        .control()
        .requests()
        .iter()
        .filter(|r| r.status == 401)
        .count();
    assert_eq!(unauthorized, 0);

    // A token revoked on the server side: one 401, a fresh token, success.
    emu.control().revoke_tokens();
    let before = tokens.fetch_count();
    client
        .get_page(&Query::new("CustomerGroups").top(1))
        .await
        .unwrap();
    assert_eq!(tokens.fetch_count(), before + 1);
    emu.shutdown().await;
}

async fn token_error(cfg: D365Config) -> D365Error {
    let client = ODataClient::new(&cfg).unwrap();
    test_connection(&client).await.unwrap_err()
}

#[tokio::test]
async fn entra_errors_say_what_to_fix() {
    let emu = emulator(Config::default()).await;
    let info = emu.info();

    let mut cfg = config(&info);
    cfg.client_secret = SecretString::from("wrong~secret-value".to_owned());
    // Concurrent callers share one failed fetch too.
    let wrong = ODataClient::new(&cfg).unwrap();
    let all = futures::future::join_all((0..10).map(|_| wrong.tokens().token())).await;
    assert!(all.iter().all(Result::is_err));
    assert_eq!(wrong.tokens().fetch_count(), 1);
    let err = token_error(cfg).await;
    assert_eq!(err.code(), Some("AADSTS7000215"), "{err:?}");
    assert!(err.is_auth() && !err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("client secret is wrong"), "{text}");
    assert!(
        !text.contains("wrong~secret-value") && !format!("{err:?}").contains(&info.client_secret)
    );

    // Unknown tenant: ask the authority for another tenant.
    let mut cfg = config(&info);
    cfg.token_url = None;
    cfg.authority = info.url.clone();
    cfg.tenant_id = "00000000-0000-0000-0000-000000000000".into();
    let err = token_error(cfg).await;
    assert_eq!(err.code(), Some("AADSTS90002"), "{err:?}");
    assert!(
        err.to_string()
            .contains("tenant `00000000-0000-0000-0000-000000000000` was not found"),
        "{err}"
    );

    // The authority path works for the right tenant too.
    let mut cfg = config(&info);
    cfg.token_url = None;
    cfg.authority = info.url.clone();
    test_connection(&ODataClient::new(&cfg).unwrap())
        .await
        .unwrap();

    let mut cfg = config(&info);
    cfg.client_id = "11111111-2222-3333-4444-555555555555".into();
    let err = token_error(cfg).await;
    assert_eq!(err.code(), Some("AADSTS700016"), "{err:?}");
    assert!(
        err.to_string()
            .contains("11111111-2222-3333-4444-555555555555")
    );

    emu.control().set_secret_expired(true);
    let err = token_error(config(&info)).await;
    assert_eq!(err.code(), Some("AADSTS7000222"), "{err:?}");
    assert!(err.to_string().contains("expired"), "{err}");
    emu.control().set_secret_expired(false);

    // A valid token that F&O does not accept: the app is not registered there.
    emu.control().set_registered_in_fo(false);
    let err = token_error(config(&info)).await;
    assert_eq!(err.code(), Some("HTTP 401"), "{err:?}");
    assert!(err.to_string().contains("register the app in F&O"), "{err}");
    emu.shutdown().await;
}

#[tokio::test]
async fn query_follows_next_link_across_pages() {
    let emu = emulator(Config::default()).await;
    emu.control().set_page_size(3);
    let client = client(&emu.info());
    let expected = emu
        .control()
        .entities("CustomersV3", Some("usmf"))
        .unwrap()
        .len();
    assert!(expected > 6);
    emu.control().clear_requests();
    let rows: Vec<CustomerV3> = client
        .query(
            &Query::new("CustomersV3")
                .select(["dataAreaId", "CustomerAccount", "CustomerGroupId"])
                .order_by("CustomerAccount"),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), expected);
    assert!(
        rows.iter()
            .all(|r| r.data_area_id.as_deref() == Some("usmf"))
    );
    let accounts: Vec<_> = rows.iter().map(|r| r.customer_account.clone()).collect();
    let mut sorted = accounts.clone();
    sorted.sort();
    assert_eq!(accounts, sorted);
    let gets = emu
        .control()
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/CustomersV3"))
        .count();
    assert_eq!(gets, expected.div_ceil(3));

    // Filter, top and another company.
    let page = client
        .get_page(
            &Query::new("CustomersV3")
                .filter("CustomerGroupId eq '10'")
                .top(2)
                .company(Company::Only("demf".into())),
        )
        .await
        .unwrap();
    assert!(page.value.len() <= 2);
    assert!(
        page.value
            .iter()
            .all(|r| r["dataAreaId"] == "demf" && r["CustomerGroupId"] == "10")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn create_get_patch_and_not_found() {
    let emu = emulator(Config::default()).await;
    let client = client(&emu.info());
    let created: CustomerV3 = client
        .create(
            "CustomersV3",
            &CustomerV3 {
                party_type: Some("Organization".into()),
                organization_name: Some("O'Brien & Söhne".into()),
                customer_group_id: Some("10".into()),
                sales_currency_code: Some("USD".into()),
                ..CustomerV3::default()
            },
        )
        .await
        .unwrap();
    let account = created.customer_account.clone().unwrap();
    assert_eq!(created.data_area_id.as_deref(), Some("usmf"));
    let read: CustomerV3 = client
        .get_by_key("CustomersV3", &Key::new().str("CustomerAccount", &account))
        .await
        .unwrap();
    assert_eq!(read.organization_name.as_deref(), Some("O'Brien & Söhne"));

    client
        .patch(
            "CustomersV3",
            &Key::new().str("CustomerAccount", &account),
            &json!({"CustomerGroupId": "20"}),
        )
        .await
        .unwrap();
    let read: CustomerV3 = client
        .get_by_key(
            "CustomersV3",
            &Key::new()
                .str("dataAreaId", "usmf")
                .str("CustomerAccount", &account),
        )
        .await
        .unwrap();
    assert_eq!(read.customer_group_id.as_deref(), Some("20"));

    let err = client
        .get_by_key::<Value>(
            "CustomersV3",
            &Key::new().str("CustomerAccount", "NOPE-404"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, D365Error::NotFound(_)), "{err:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn write_exception_is_permanent_with_the_infolog() {
    let emu = emulator(Config::default()).await;
    let client = client(&emu.info());
    let err = client
        .create::<_, Value>(
            "SalesOrderHeadersV2",
            &SalesOrderHeaderV2 {
                ordering_customer_account_number: Some("NOPE-1".into()),
                customers_order_reference: Some("#1001".into()),
                ..SalesOrderHeaderV2::default()
            },
        )
        .await
        .unwrap_err();
    match &err {
        D365Error::Permanent { message, code } => {
            assert_eq!(code.as_deref(), Some("AxODataWriteException"));
            assert!(message.contains("NOPE-1"), "{message}");
            assert!(message.contains("Infolog"), "{message}");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert!(!err.is_retryable() && !err.is_auth());
    // Malformed input (unknown property) is permanent too.
    let err = client
        .create::<_, Value>("CustomersV3", &json!({"NoSuchField": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, D365Error::Permanent { .. }), "{err:?}");
    emu.shutdown().await;
}

fn order(reference: &str) -> SalesOrderHeaderV2 {
    SalesOrderHeaderV2 {
        ordering_customer_account_number: Some("US-001".into()),
        customers_order_reference: Some(reference.into()),
        ..SalesOrderHeaderV2::default()
    }
}

fn line(item: &str, qty: rust_decimal::Decimal) -> SalesOrderLine {
    SalesOrderLine {
        item_number: Some(item.into()),
        ordered_sales_quantity: Some(qty),
        sales_price: Some(dec!(19.99)),
        ..SalesOrderLine::default()
    }
}

#[tokio::test]
async fn batch_changeset_is_atomic() {
    let emu = emulator(Config::default()).await;
    let client = client(&emu.info());

    // A good changeset: header and two lines referring to it by Content-ID.
    let mut batch = Batch::new();
    let mut cs = batch.changeset();
    let header = cs
        .create(&client, "SalesOrderHeadersV2", &order("SHOP-1"))
        .unwrap();
    let l1 = cs
        .create_under(header, "SalesOrderLines", &line("A0001", dec!(2)))
        .unwrap();
    cs.create_under(header, "SalesOrderLines", &line("A0002", dec!(1.5)))
        .unwrap();
    cs.close();
    assert_eq!(batch.len(), 3);
    let resp = client.batch(&batch).await.unwrap();
    assert_eq!(resp.operations.len(), 3, "{resp:?}");
    assert!(
        resp.operations
            .iter()
            .all(|o| o.status == 201 && o.changeset == Some(0))
    );
    let created: SalesOrderHeaderV2 = resp.get(header).unwrap().json().unwrap();
    let number = created.sales_order_number.unwrap();
    let first: SalesOrderLine = resp.get(l1).unwrap().json().unwrap();
    assert_eq!(first.sales_order_number.as_deref(), Some(number.as_str()));
    assert_eq!(first.sales_price, Some(dec!(19.99)));

    // One invalid line: the changeset fails with that line's error and nothing is kept.
    let orders_before = emu.control().orders().len();
    let mut batch = Batch::new();
    let mut cs = batch.changeset();
    let header = cs
        .create(&client, "SalesOrderHeadersV2", &order("SHOP-2"))
        .unwrap();
    cs.create_under(header, "SalesOrderLines", &line("A0001", dec!(1)))
        .unwrap();
    let bad = cs
        .create_under(header, "SalesOrderLines", &line("NO-SUCH-SKU", dec!(1)))
        .unwrap();
    cs.close();
    let resp = client.batch(&batch).await.unwrap();
    assert_eq!(resp.operations.len(), 1, "{resp:?}");
    let failed = resp.get(bad).expect("the failing operation answers");
    assert_eq!(failed.status, 500);
    match failed.error() {
        Some(D365Error::Permanent { message, code }) => {
            assert_eq!(code.as_deref(), Some("AxODataWriteException"));
            assert!(message.contains("NO-SUCH-SKU"), "{message}");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert!(resp.clone().into_result().is_err());
    assert_eq!(emu.control().orders().len(), orders_before);
    let found: Vec<Value> = client
        .query(&Query::new("SalesOrderHeadersV2").filter("CustomersOrderReference eq 'SHOP-2'"))
        .await
        .unwrap();
    assert!(found.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn throttling_surfaces_retry_after() {
    let emu = emulator(Config::default()).await;
    let client = client(&emu.info());
    client.tokens().token().await.unwrap();
    emu.control().inject(FaultRule::times(
        Fault::Throttle { retry_after: 7 },
        Target::Odata,
        1,
    ));
    let err = client
        .get_page(&Query::new("CustomerGroups"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        D365Error::Throttled {
            retry_after: Duration::from_secs(7)
        }
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("retry in 7 s"), "{err}");
    client
        .get_page(&Query::new("CustomerGroups"))
        .await
        .unwrap();

    // Inside a batch: the batch counts once and each operation once more.
    emu.control().reset();
    emu.control().set_throttle(ThrottleConfig {
        requests_per_window: 2,
        window_secs: 60,
        max_concurrent: 52,
    });
    let mut batch = Batch::new();
    batch.get(Query::new("CustomerGroups").top(1));
    let second = batch.get(
        Query::new("Currencies")
            .top(1)
            .company(Company::UserDefault),
    );
    let resp = client.batch(&batch).await.unwrap();
    assert_eq!(resp.operations[0].status, 200, "{resp:?}");
    assert_eq!(resp.get(second).unwrap().status, 429);
    let wait = resp.retry_after().expect("Retry-After on the part");
    assert!(wait > Duration::ZERO);
    assert_eq!(
        resp.first_error(),
        Some(D365Error::Throttled { retry_after: wait })
    );
    // Now the whole batch is over budget: a top-level 429.
    let err = client.batch(&batch).await.unwrap_err();
    assert!(matches!(err, D365Error::Throttled { .. }), "{err:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_transient() {
    let emu = emulator(Config::default()).await;
    let client = client(&emu.info());
    emu.control().inject(FaultRule::times(
        Fault::Status { status: 503 },
        Target::Odata,
        1,
    ));
    let err = client
        .get_page(&Query::new("CustomerGroups"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("HTTP 503"), "{err:?}");
    assert!(err.is_retryable());
    emu.shutdown().await;
}

#[tokio::test]
async fn unreachable_hosts_have_readable_messages() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = D365Config::new(
        format!("http://127.0.0.1:{port}"),
        "tenant",
        "client",
        SecretString::from("s".to_owned()),
        "usmf",
    );
    cfg.authority = format!("http://127.0.0.1:{port}");
    let err = token_error(cfg.clone()).await;
    assert_eq!(err.code(), Some("connection_refused"), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("refused"), "{err}");

    cfg.environment_url = "https://contoso.invalid".into();
    cfg.authority = "https://login.contoso.invalid".into();
    let err = token_error(cfg).await;
    assert_eq!(err.code(), Some("dns"), "{err:?}");
    assert!(err.to_string().contains("login.contoso.invalid"), "{err}");
}

#[tokio::test]
async fn tls_failure_and_trusted_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let emu = emulator(Config {
        tls: Some(ca.clone()),
        ..Config::default()
    })
    .await;
    let info = emu.info();
    assert!(info.url.starts_with("https://"));
    let err = token_error(config(&info)).await;
    assert_eq!(err.code(), Some("tls"), "{err:?}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");

    let mut cfg = config(&info);
    cfg.ca_file = Some(ca);
    let client = Arc::new(ODataClient::new(&cfg).unwrap());
    test_connection(&client).await.unwrap();
    emu.shutdown().await;
}

#[test]
fn config_refuses_unknown_fields_and_hides_the_secret() {
    let parsed: Result<D365Config, _> = serde_json::from_value(json!({
        "environment_url": "https://x.operations.dynamics.com", "tenant_id": "t",
        "client_id": "c", "client_secret": "s", "data_area_id": "usmf", "secret": "x"
    }));
    assert!(parsed.is_err());
    let parsed: D365Config = serde_json::from_value(json!({
        "environment_url": "https://x.operations.dynamics.com", "tenant_id": "t",
        "client_id": "c", "client_secret": "very-secret-value", "data_area_id": "usmf"
    }))
    .unwrap();
    assert!(!format!("{parsed:?}").contains("very-secret-value"));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = ODataClient::new(&parsed).unwrap();
    assert!(!format!("{client:?}").contains("very-secret-value"));
    let mut bad = parsed.clone();
    bad.data_area_id = "toolong".into();
    assert!(matches!(ODataClient::new(&bad), Err(D365Error::Config(_))));
}
