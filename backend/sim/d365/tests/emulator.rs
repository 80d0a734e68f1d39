//! Black-box tests of the D365 emulator over HTTP: fixtures contract, Entra
//! token endpoint, OData queries and writes, business rules, `$batch`,
//! service protection, faults and the control plane.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use syncline_sim_d365::{
    Config, D365Emulator, D365Info, Fault, FaultRule, SeedSpec, Target, ThrottleConfig, start,
};

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Sim {
    emu: D365Emulator,
    http: reqwest::Client,
    info: D365Info,
    token: String,
}

async fn fetch_token(http: &reqwest::Client, info: &D365Info) -> String {
    let resp = http
        .post(&info.token_url)
        .form(&[
            ("client_id", info.client_id.as_str()),
            ("client_secret", info.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", &format!("{}/.default", info.url)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

async fn sim_with(cfg: Config) -> Sim {
    let emu = start(cfg).await.unwrap();
    let info = emu.info();
    let http = http();
    let token = fetch_token(&http, &info).await;
    Sim {
        emu,
        http,
        info,
        token,
    }
}

async fn sim() -> Sim {
    sim_with(Config::default()).await
}

async fn parse(resp: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, v)
}

impl Sim {
    fn url(&self, p: &str) -> String {
        format!("{}/data/{p}", self.info.url)
    }

    async fn get(&self, p: &str) -> (StatusCode, HeaderMap, Value) {
        self.get_url(&self.url(p)).await
    }

    async fn get_url(&self, url: &str) -> (StatusCode, HeaderMap, Value) {
        parse(
            self.http
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        p: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, self.url(p))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        parse(req.send().await.unwrap()).await
    }

    async fn post(&self, p: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
        self.send(reqwest::Method::POST, p, Some(body)).await
    }
}

fn shared_fixtures() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/fixtures/d365");
    assert!(
        p.join("entities.txt").exists(),
        "shared fixtures not found at {} (the repository's sibling folder shared/ is required)",
        p.display()
    );
    p
}

fn attr(line: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find('"')? + start;
    Some(line[start..end].to_string())
}

/// (key names, (property, type) pairs) of one entity type.
type Declared = (Vec<String>, Vec<(String, String)>);

/// Reads entity types and sets back out of the served `$metadata`.
fn parse_metadata(xml: &str) -> BTreeMap<String, Declared> {
    let mut types: BTreeMap<String, Declared> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut sets = BTreeMap::new();
    for line in xml.lines() {
        let l = line.trim();
        if l.starts_with("<EntityType ") {
            current = attr(l, "Name");
            types.insert(current.clone().unwrap(), (Vec::new(), Vec::new()));
        } else if l.starts_with("<PropertyRef ") {
            let t = types.get_mut(current.as_ref().unwrap()).unwrap();
            t.0.push(attr(l, "Name").unwrap());
        } else if l.starts_with("<Property ") {
            let t = types.get_mut(current.as_ref().unwrap()).unwrap();
            let ty = attr(l, "Type").unwrap();
            let ty = ty
                .strip_prefix("Microsoft.Dynamics.DataEntities.")
                .map(str::to_string)
                .unwrap_or(ty);
            let nullable = attr(l, "Nullable").as_deref() != Some("false");
            t.1.push((
                attr(l, "Name").unwrap(),
                format!("{ty}{}", if nullable { "?" } else { "" }),
            ));
        } else if l.starts_with("<EntitySet ") {
            let ty = attr(l, "EntityType").unwrap();
            sets.insert(
                attr(l, "Name").unwrap(),
                ty.trim_start_matches("Microsoft.Dynamics.DataEntities.")
                    .to_string(),
            );
        }
    }
    sets.into_iter()
        .map(|(set, ty)| (set, types.get(&ty).cloned().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn metadata_matches_shared_fixtures() {
    let s = sim().await;
    let fixture = std::fs::read_to_string(shared_fixtures().join("entities.txt")).unwrap();
    let expected = syncline_sim_d365::schema::parse_fixture(&fixture);
    let (status, headers, body) = s.get("$metadata").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["OData-Version"], "4.0");
    let served = parse_metadata(body.as_str().unwrap());
    let required = [
        "SalesOrderHeadersV2",
        "SalesOrderLines",
        "CustomersV3",
        "ReleasedProductsV2",
        "WarehousesOnHandV2",
        "CustomerPaymentJournalHeaders",
        "CustomerPaymentJournalLines",
    ];
    for name in required {
        assert!(served.contains_key(name), "{name} is not served");
    }
    let mut compared = 0;
    for f in &expected {
        let Some((keys, props)) = served.get(&f.name) else {
            continue;
        };
        assert_eq!(keys, &f.keys, "keys of {}", f.name);
        assert_eq!(props, &f.props, "properties of {}", f.name);
        compared += 1;
    }
    assert!(compared >= 13, "only {compared} sets compared");
    // PackingSlipTrackingInformation is not in entities.txt; compare it with
    // the trimmed $metadata fixture it was taken from.
    let xml = std::fs::read_to_string(
        shared_fixtures().join("metadata/scm_inventory_trimmed_metadata.xml"),
    )
    .unwrap();
    let start = xml
        .find("<EntityType Name=\"PackingSlipTrackingInformation\">")
        .unwrap();
    let end = start + xml[start..].find("</EntityType>").unwrap();
    let fixture_types = parse_metadata(&format!(
        "{}\n<EntitySet Name=\"PackingSlipTrackingInformation\" EntityType=\"Microsoft.Dynamics.DataEntities.PackingSlipTrackingInformation\" />",
        &xml[start..end]
    ));
    assert_eq!(
        served.get("PackingSlipTrackingInformation"),
        fixture_types.get("PackingSlipTrackingInformation")
    );
    // The enum members the emulator serialises must be declared.
    assert!(body.as_str().unwrap().contains("<EnumType Name=\"NoYes\">"));
}

#[tokio::test]
async fn entities_are_stored_with_every_fixture_property() {
    let s = sim().await;
    let fixture = std::fs::read_to_string(shared_fixtures().join("entities.txt")).unwrap();
    let expected = syncline_sim_d365::schema::parse_fixture(&fixture);
    let customers = expected.iter().find(|f| f.name == "CustomersV3").unwrap();
    let (status, _, body) = s.get("CustomersV3?$top=1").await;
    assert_eq!(status, StatusCode::OK);
    let c = body["value"][0].as_object().unwrap();
    let names: BTreeSet<&str> = c
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with('@'))
        .collect();
    let want: BTreeSet<&str> = customers.props.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, want);
    // Empty dates and enums as names.
    let (_, _, order) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "US-001"}),
        )
        .await;
    assert_eq!(order["FixedDueDate"], "1900-01-01T12:00:00Z");
    assert_eq!(order["IsExportSale"], "No");
}

#[tokio::test]
async fn token_endpoint_success_and_errors() {
    let s = sim().await;
    let info = &s.info;
    let scope = format!("{}/.default", info.url);
    let post = |url: String, form: Vec<(&'static str, String)>| {
        let http = s.http.clone();
        async move {
            let r = http
                .post(url)
                .header("client-request-id", "11111111-2222-3333-4444-555555555555")
                .form(&form)
                .send()
                .await
                .unwrap();
            parse(r).await
        }
    };
    let good = vec![
        ("client_id", info.client_id.clone()),
        ("client_secret", info.client_secret.clone()),
        ("grant_type", "client_credentials".to_string()),
        ("scope", scope.clone()),
    ];
    let (st, _, v) = post(info.token_url.clone(), good.clone()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(v["ext_expires_in"], 3599);
    assert_eq!(v["access_token"].as_str().unwrap().split('.').count(), 3);

    // v1 endpoint takes resource= and answers numbers as strings.
    let v1 = format!("{}/{}/oauth2/token", info.url, info.tenant_id);
    let (st, _, v) = post(
        v1,
        vec![
            ("client_id", info.client_id.clone()),
            ("client_secret", info.client_secret.clone()),
            ("grant_type", "client_credentials".into()),
            ("resource", info.url.clone()),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["expires_in"], "3599");
    assert_eq!(v["resource"], info.url.as_str());

    let with = |k: &'static str, val: &str| {
        let mut f = good.clone();
        for e in f.iter_mut() {
            if e.0 == k {
                e.1 = val.to_string();
            }
        }
        f
    };
    let cases = [
        (
            info.token_url.clone(),
            with("client_secret", "wrong"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
        ),
        (
            info.token_url.clone(),
            with("client_id", "00000000-0000-0000-0000-000000000001"),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
        ),
        (
            info.token_url.clone(),
            with("scope", "https://other.example/user.read"),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
        ),
        (
            info.token_url
                .replace(&info.tenant_id, "aaaaaaaa-0000-0000-0000-000000000000"),
            good.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
        ),
    ];
    for (url, form, status, error, code) in cases {
        let (st, _, v) = post(url, form).await;
        assert_eq!(st, status, "{v}");
        assert_eq!(v["error"], error);
        assert_eq!(v["error_codes"][0], code);
        let desc = v["error_description"].as_str().unwrap();
        assert!(desc.starts_with(&format!("AADSTS{code}:")), "{desc}");
        assert!(
            desc.contains("Trace ID: ")
                && desc.contains("Correlation ID: 11111111-2222-3333-4444-555555555555")
        );
        assert!(v["trace_id"].is_string() && v["timestamp"].is_string());
        assert_eq!(v["correlation_id"], "11111111-2222-3333-4444-555555555555");
    }

    s.emu.control().set_secret_expired(true);
    let (st, _, v) = post(info.token_url.clone(), good.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error_codes"][0], 7000222);

    let (st, _, v) = s
        .get_url(&format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            info.url, info.tenant_id
        ))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["token_endpoint"], info.token_url.as_str());
}

#[tokio::test]
async fn odata_rejects_missing_expired_revoked_and_unregistered_tokens() {
    let s = sim().await;
    let url = s.url("CustomerGroups");
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (st, _, _) = s.get("CustomerGroups").await;
    assert_eq!(st, StatusCode::OK);

    let c = s.emu.control();
    c.set_registered_in_fo(false);
    assert_eq!(s.get("CustomerGroups").await.0, StatusCode::UNAUTHORIZED);
    c.set_registered_in_fo(true);

    c.expire_tokens();
    assert_eq!(s.get("CustomerGroups").await.0, StatusCode::UNAUTHORIZED);
    let fresh = fetch_token(&s.http, &s.info).await;
    let r = s.http.get(&url).bearer_auth(&fresh).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    c.revoke_tokens();
    let r = s.http.get(&url).bearer_auth(&fresh).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A second app registered on the same environment gets its own tokens.
    c.add_app("22222222-0000-0000-0000-000000000002", "second~secret");
    let other = D365Info {
        client_id: "22222222-0000-0000-0000-000000000002".into(),
        client_secret: "second~secret".into(),
        ..s.info.clone()
    };
    let t2 = fetch_token(&s.http, &other).await;
    let r = s.http.get(&url).bearer_auth(&t2).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Configurable lifetime: a one-second token stops working.
    c.set_token_lifetime(Duration::from_secs(1));
    let short = fetch_token(&s.http, &s.info).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.http.get(&url).bearer_auth(&short).send().await.unwrap();
        if r.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(Instant::now() < deadline, "token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn create_read_update_delete_orders() {
    let s = sim().await;
    let (st, headers, order) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "US-001", "CustomersOrderReference": "#1001", "CurrencyCode": "USD"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{order}");
    assert_eq!(headers["OData-Version"], "4.0");
    assert!(
        headers["Content-Type"]
            .to_str()
            .unwrap()
            .starts_with("application/json; odata.metadata=minimal")
    );
    assert_eq!(order["SalesOrderNumber"], "000001");
    assert_eq!(order["dataAreaId"], "usmf");
    assert_eq!(order["SalesOrderStatus"], "Backorder");
    assert!(order["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert_eq!(
        headers["Location"].to_str().unwrap(),
        s.url("SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='000001')")
    );
    let (_, _, second) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "US-002"}),
        )
        .await;
    assert_eq!(second["SalesOrderNumber"], "000002");

    for (item, qty, price) in [
        ("A0001", json!(2), json!(10.25)),
        ("A0002", json!(1.5), json!(3.333)),
    ] {
        let (st, _, line) = s
            .post(
                "SalesOrderLines",
                json!({"SalesOrderNumber": "000001", "ItemNumber": item, "OrderedSalesQuantity": qty, "SalesPrice": price}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{line}");
    }
    let key = "SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='000001')";
    let (st, _, got) = s.get(&format!("{key}?$expand=SalesOrderLines")).await;
    assert_eq!(st, StatusCode::OK);
    let lines = got["SalesOrderLines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["LineNumber"], json!(1));
    assert_eq!(lines[0]["LineAmount"].to_string(), "20.5");
    assert_eq!(lines[1]["LineAmount"].to_string(), "5");
    assert_eq!(got["OrderTotalAmount"].to_string(), "25.5");

    let (st, _, _) = s
        .send(
            reqwest::Method::PATCH,
            key,
            Some(json!({"CustomersOrderReference": "#1001-b"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // Optimistic concurrency: a stale ETag is refused, the current one passes.
    let (_, h, _) = s.get(key).await;
    let etag = h["ETag"].to_str().unwrap().to_string();
    let stale = s
        .http
        .patch(s.url(key))
        .bearer_auth(&s.token)
        .header("If-Match", "W/\"JzEsNTYzNzE0NDU3Nic=\"")
        .json(&json!({"CustomerRequisitionNumber": "PO-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let fresh = s
        .http
        .patch(s.url(key))
        .bearer_auth(&s.token)
        .header("If-Match", etag)
        .json(&json!({"CustomerRequisitionNumber": "PO-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::NO_CONTENT);
    let (_, _, got) = s
        .get(&format!("{key}?$select=CustomersOrderReference"))
        .await;
    assert_eq!(got["CustomersOrderReference"], "#1001-b");
    assert!(got.get("SalesOrderStatus").is_none());

    // Keys are case-insensitive, as on F&O's SQL collation.
    let (st, _, _) = s
        .get("SalesOrderHeadersV2(dataAreaId='USMF',SalesOrderNumber='000001')")
        .await;
    assert_eq!(st, StatusCode::OK);
    // The D365-prefixed line entity keys lines by creation sequence.
    let (st, _, l) = s
        .get("D365SalesOrderLines(dataAreaId='usmf',SalesOrderNumber='000001',LineCreationSequenceNumber=2)")
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(l["ProductNumber"], "A0002");
    // Entity set names are case-sensitive on F&O.
    let (st, _, _) = s.get("salesorderheadersv2").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Another company's key is reachable only cross-company.
    let (st, _, de) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"dataAreaId": "demf", "OrderingCustomerAccountNumber": "DE-001"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{de}");
    assert_eq!(de["CurrencyCode"], "EUR");
    let de_key = format!(
        "SalesOrderHeadersV2(dataAreaId='demf',SalesOrderNumber='{}')",
        de["SalesOrderNumber"].as_str().unwrap()
    );
    assert_eq!(s.get(&de_key).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&format!("{de_key}?cross-company=true")).await.0,
        StatusCode::OK
    );
    // Versions share one table.
    let (st, _, _) = s
        .get("SalesOrderHeadersV3(dataAreaId='usmf',SalesOrderNumber='000001')")
        .await;
    assert_eq!(st, StatusCode::OK);

    let (st, _, _) = s.send(reqwest::Method::DELETE, key, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, body) = s.get(key).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": {"code": "", "message": "Not found."}})
    );
    let (_, _, lines) = s
        .get("SalesOrderLines?$filter=SalesOrderNumber eq '000001'")
        .await;
    assert_eq!(lines["value"].as_array().unwrap().len(), 0, "lines cascade");
    assert_eq!(s.emu.control().orders().len(), 2);
}

fn infolog(body: &Value) -> String {
    assert_eq!(body["error"]["message"], "An error has occurred.");
    assert_eq!(
        body["error"]["innererror"]["type"],
        "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
    );
    body["error"]["innererror"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn business_rules_answer_the_real_write_exception() {
    let s = sim().await;
    let (st, _, b) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "NOPE-1"}),
        )
        .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    let m = infolog(&b);
    assert!(
        m.starts_with(
            "Write failed for table row of type 'SalesOrderHeaderV2Entity'. Infolog: Warning:"
        ),
        "{m}"
    );
    assert!(m.contains("'NOPE-1'"), "{m}");

    let (st, _, b) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "US-001", "CurrencyCode": "XXX"}),
        )
        .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(infolog(&b).contains("'XXX' in field 'Currency'"));

    let (_, _, order) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "US-001"}),
        )
        .await;
    let (st, _, b) = s
        .post(
            "SalesOrderLines",
            json!({"SalesOrderNumber": order["SalesOrderNumber"], "ItemNumber": "NO-SUCH-SKU", "OrderedSalesQuantity": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(infolog(&b).contains("'NO-SUCH-SKU' in field 'Item number' is not found in the relating table 'Released products'"));

    let (st, _, b) = s
        .post(
            "CustomersV3",
            json!({"OrganizationName": "Acme", "CustomerGroupId": "ZZ", "SalesCurrencyCode": "USD"}),
        )
        .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    let m = infolog(&b);
    assert!(
        m.contains("type 'CustCustomerV3Entity'") && m.contains("'Customer group'"),
        "{m}"
    );

    let (st, _, b) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "US-001", "CustomersOrderReference": "x".repeat(61)}),
        )
        .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(infolog(&b).contains("maximum length is 60"));

    let (st, _, b) = s.post("CustomersV3", json!({"NoSuchField": 1})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist on type 'Microsoft.Dynamics.DataEntities.CustomerV3'")
    );

    let (st, _, c) = s
        .post(
            "CustomersV3",
            json!({"OrganizationName": "Acme", "CustomerGroupId": "30", "SalesCurrencyCode": "EUR", "PartyType": "Organization"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    // The refused customer above consumed US-021: the number sequence is
    // non-continuous, as F&O's customer sequence is by default.
    assert_eq!(c["CustomerAccount"], "US-022");
}

#[tokio::test]
async fn query_options_behave() {
    let s = sim().await;
    let (st, _, b) = s
        .get("ReleasedProductsV2?$filter=ItemNumber ge 'A0010' and ItemNumber le 'A0014'&$select=ItemNumber,SalesPrice&$orderby=ItemNumber desc&$count=true")
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["@odata.count"], 5);
    let items: Vec<&str> = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["ItemNumber"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["A0014", "A0013", "A0012", "A0011", "A0010"]);
    let first = b["value"][0].as_object().unwrap();
    assert_eq!(first.len(), 3, "etag + two selected: {first:?}");

    let (_, _, b) = s
        .get("ReleasedProductsV2?$filter=ItemNumber eq 'a001*'&$top=3&$skip=2")
        .await;
    let items: Vec<&str> = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["ItemNumber"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["A0012", "A0013", "A0014"]);

    let (_, _, b) = s
        .get("CustomersV3?$filter=(CustomerGroupId eq '10' or CustomerGroupId eq '20') and SalesCurrencyCode ne 'EUR'&$select=CustomerAccount,CustomerGroupId")
        .await;
    for c in b["value"].as_array().unwrap() {
        assert!(["10", "20"].contains(&c["CustomerGroupId"].as_str().unwrap()));
    }

    // Default company vs cross-company.
    let (_, _, b) = s.get("CustomerGroups?$count=true").await;
    assert_eq!(b["@odata.count"], 6);
    let (_, _, b) = s.get("CustomerGroups?cross-company=true&$count=true").await;
    assert_eq!(b["@odata.count"], 24);
    let (_, _, b) = s
        .get("CustomerGroups?cross-company=true&$filter=dataAreaId eq 'demf'&$count=true")
        .await;
    assert_eq!(b["@odata.count"], 6);

    let (_, _, b) = s
        .get("WarehousesOnHandV2?$filter=ItemNumber eq 'A0001' and InventoryWarehouseId eq '11'")
        .await;
    assert_eq!(b["value"].as_array().unwrap().len(), 1);
    let (_, _, b) = s.get("SalesOrderHeadersV2?$filter=SalesOrderStatus eq Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'").await;
    assert!(b["value"].is_array());

    for bad in [
        "CustomersV3?$filter=contains(Name,'x')",
        "CustomersV3?$select=Nope",
        "CustomersV3?$orderby=Nope",
        "CustomersV3?$expand=Nope",
    ] {
        let (st, _, b) = s.get(bad).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {b}");
    }
    let (st, _, b) = s.get("CustomersV3/$count").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(b, json!(20));
}

#[tokio::test]
async fn payment_journals_and_prefer_headers() {
    let s = sim().await;
    let (st, _, h) = s
        .post(
            "CustomerPaymentJournalHeaders",
            json!({"Description": "Shopify payouts"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{h}");
    assert_eq!(h["JournalBatchNumber"], "00001");
    assert_eq!(h["JournalName"], "CustPay");
    let line = |acct: &str, amount: Value| {
        json!({"JournalBatchNumber": "00001", "AccountDisplayValue": acct, "CreditAmount": amount,
               "CurrencyCode": "USD", "PaymentReference": "shopify-tx-1", "TransactionDate": "2026-11-01T12:00:00Z"})
    };
    let (st, _, l) = s
        .post("CustomerPaymentJournalLines", line("US-005", json!(99.95)))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    assert_eq!(l["AccountType"], "Cust");
    assert_eq!(l["LineNumber"], json!(1));
    assert_eq!(l["CreditAmount"].to_string(), "99.95");
    let (st, _, b) = s
        .post("CustomerPaymentJournalLines", line("US-999", json!(1)))
        .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(infolog(&b).contains("'US-999' in field 'Account'"));
    let (_, _, b) = s
        .get("CustomerPaymentJournalLines?$filter=TransactionDate ge 2026-11-01T00:00:00Z and CreditAmount gt 50")
        .await;
    assert_eq!(b["value"].as_array().unwrap().len(), 1);

    // IEEE754Compatible=true turns decimals into strings.
    let r = s
        .http
        .get(s.url("CustomerPaymentJournalLines?$select=CreditAmount,LineNumber"))
        .bearer_auth(&s.token)
        .header(
            "Accept",
            "application/json;odata.metadata=minimal;IEEE754Compatible=true",
        )
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["Content-Type"]
            .to_str()
            .unwrap()
            .contains("IEEE754Compatible=true")
    );
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["value"][0]["CreditAmount"], "99.95");
    assert_eq!(b["value"][0]["LineNumber"], "1");

    // return=minimal and odata.maxpagesize.
    let r = s
        .http
        .post(s.url("CustomerGroups"))
        .bearer_auth(&s.token)
        .header("Prefer", "return=minimal")
        .json(&json!({"CustomerGroupId": "99", "Description": "Shopify"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        r.headers()["OData-EntityId"]
            .to_str()
            .unwrap()
            .ends_with("CustomerGroups(dataAreaId='usmf',CustomerGroupId='99')")
    );
    let r = s
        .http
        .get(s.url("CustomersV3?$select=CustomerAccount"))
        .bearer_auth(&s.token)
        .header("Prefer", "odata.maxpagesize=4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["Preference-Applied"], "odata.maxpagesize=4");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["value"].as_array().unwrap().len(), 4);
    assert!(
        b["@odata.nextLink"]
            .as_str()
            .unwrap()
            .contains("$skiptoken=")
    );

    // Nested $select inside $expand, and navigation from a header.
    let (_, _, o) = s
        .post(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "US-002"}),
        )
        .await;
    let key = format!(
        "SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='{}')",
        o["SalesOrderNumber"].as_str().unwrap()
    );
    let (st, _, l) = s
        .post(
            &format!("{key}/SalesOrderLines"),
            json!({"ItemNumber": "A0004", "OrderedSalesQuantity": 3}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let (_, _, got) = s
        .get(&format!(
            "{key}?$expand=SalesOrderLines($select=ItemNumber,LineAmount)&$select=SalesOrderNumber"
        ))
        .await;
    let line = got["SalesOrderLines"][0].as_object().unwrap();
    assert_eq!(line.len(), 3, "{line:?}");
    let (_, _, lines) = s.get(&format!("{key}/SalesOrderLines")).await;
    assert_eq!(lines["value"][0]["ItemNumber"], "A0004");
}

#[tokio::test]
async fn paging_returns_every_row_exactly_once() {
    let s = sim_with(Config {
        page_size: 7,
        data: SeedSpec {
            product_count: 52,
            ..SeedSpec::default()
        },
        ..Config::default()
    })
    .await;
    let mut seen = Vec::new();
    let mut url = s.url("ReleasedProductsV2?$select=ItemNumber&$count=true");
    let mut pages = 0;
    loop {
        let (st, _, b) = s.get_url(&url).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["@odata.count"], 52);
        for v in b["value"].as_array().unwrap() {
            seen.push(v["ItemNumber"].as_str().unwrap().to_string());
        }
        pages += 1;
        match b["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 8);
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 52);
    assert_eq!(unique.len(), 52);

    // $top larger than a page keeps paging until the top is reached.
    let mut count = 0;
    let mut url = s.url("ReleasedProductsV2?$top=10&$filter=ItemNumber ne 'A0001'");
    loop {
        let (_, _, b) = s.get_url(&url).await;
        count += b["value"].as_array().unwrap().len();
        match b["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(count, 10);
}

fn batch_body(boundary: &str, changeset: &str, ops: &[(&str, &str, Value)], base: &str) -> String {
    let mut b =
        format!("--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n");
    for (i, (method, url, body)) in ops.iter().enumerate() {
        let url = if url.starts_with('$') {
            url.to_string()
        } else {
            format!("{base}/data/{url}")
        };
        b.push_str(&format!(
            "--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {}\r\n\r\n{method} {url} HTTP/1.1\r\nContent-Type: application/json; odata.metadata=minimal\r\nAccept: application/json\r\n\r\n{body}\r\n",
            i + 1
        ));
    }
    b.push_str(&format!("--{changeset}--\r\n--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET {base}/data/CustomerGroups?$top=1 HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--{boundary}--\r\n"));
    b
}

async fn post_batch(s: &Sim, body: String) -> (StatusCode, String, String) {
    let r = s
        .http
        .post(s.url("$batch"))
        .bearer_auth(&s.token)
        .header("Content-Type", "multipart/mixed; boundary=batch_abc")
        .body(body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    let ct = r.headers()["Content-Type"].to_str().unwrap().to_string();
    (st, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn batch_changesets_are_atomic() {
    let s = sim().await;
    let base = s.info.url.clone();
    let good = batch_body(
        "batch_abc",
        "changeset_1",
        &[
            (
                "POST",
                "SalesOrderHeadersV2",
                json!({"OrderingCustomerAccountNumber": "US-003", "CustomersOrderReference": "#2001"}),
            ),
            (
                "POST",
                "$1/SalesOrderLines",
                json!({"ItemNumber": "A0001", "OrderedSalesQuantity": 1}),
            ),
            (
                "POST",
                "$1/SalesOrderLines",
                json!({"ItemNumber": "A0002", "OrderedSalesQuantity": 2}),
            ),
        ],
        &base,
    );
    let (st, ct, text) = post_batch(&s, good).await;
    assert_eq!(st, StatusCode::OK);
    assert!(ct.starts_with("multipart/mixed; boundary=batchresponse_"));
    assert_eq!(text.matches("HTTP/1.1 201 Created").count(), 3, "{text}");
    assert!(text.contains("Content-ID: 3"));
    assert!(
        text.contains("HTTP/1.1 200 OK"),
        "the GET outside the changeset"
    );
    let orders = s.emu.control().orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["SalesOrderLines"].as_array().unwrap().len(), 2);

    let bad = batch_body(
        "batch_abc",
        "changeset_2",
        &[
            (
                "POST",
                "SalesOrderHeadersV2",
                json!({"OrderingCustomerAccountNumber": "US-004", "CustomersOrderReference": "#2002"}),
            ),
            (
                "POST",
                "$1/SalesOrderLines",
                json!({"ItemNumber": "A0001", "OrderedSalesQuantity": 1}),
            ),
            (
                "POST",
                "$1/SalesOrderLines",
                json!({"ItemNumber": "BOGUS", "OrderedSalesQuantity": 1}),
            ),
        ],
        &base,
    );
    let (st, _, text) = post_batch(&s, bad).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        text.contains("HTTP/1.1 500 Internal Server Error"),
        "{text}"
    );
    assert!(text.contains("AxODataWriteException") && text.contains("Content-ID: 3"));
    assert!(!text.contains("201 Created"));
    assert_eq!(
        s.emu.control().orders().len(),
        1,
        "nothing from the failed changeset"
    );
    let (_, _, lines) = s.get("SalesOrderLines?$count=true").await;
    assert_eq!(lines["@odata.count"], 2);
}

#[tokio::test]
async fn service_protection_answers_429_with_retry_after() {
    let s = sim_with(Config {
        throttle: ThrottleConfig {
            requests_per_window: 5,
            window_secs: 60,
            max_concurrent: 52,
        },
        ..Config::default()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(s.get("CustomerGroups").await.0, StatusCode::OK);
    }
    let (st, headers, _) = s.get("CustomerGroups").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    // The budget reports what it admitted: five requests, not the refused sixth.
    assert_eq!(s.emu.control().throttle().1, 5);
    let retry: u64 = headers["Retry-After"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));

    // Inside $batch: the operation over budget is a 429 part.
    s.emu.control().set_throttle(ThrottleConfig {
        requests_per_window: 3,
        window_secs: 60,
        max_concurrent: 52,
    });
    let body = batch_body(
        "batch_abc",
        "changeset_1",
        &[
            (
                "POST",
                "SalesOrderHeadersV2",
                json!({"OrderingCustomerAccountNumber": "US-003"}),
            ),
            (
                "POST",
                "$1/SalesOrderLines",
                json!({"ItemNumber": "A0001", "OrderedSalesQuantity": 1}),
            ),
            (
                "POST",
                "$1/SalesOrderLines",
                json!({"ItemNumber": "A0002", "OrderedSalesQuantity": 1}),
            ),
        ],
        &s.info.url,
    );
    let (st, _, text) = post_batch(&s, body).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        text.contains("HTTP/1.1 429 Too Many Requests") && text.contains("Retry-After: "),
        "{text}"
    );
    assert_eq!(
        s.emu.control().orders().len(),
        0,
        "throttled changeset rolled back"
    );
    // Each $batch operation is charged, as in F&O: the three admitted ones are counted.
    assert_eq!(s.emu.control().throttle().1, 3);
}

#[tokio::test]
async fn faults_and_control_plane() {
    let s = sim().await;
    let c = s.emu.control();
    c.inject(FaultRule::times(
        Fault::Status { status: 503 },
        Target::Odata,
        1,
    ));
    assert_eq!(
        s.get("CustomerGroups").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(s.get("CustomerGroups").await.0, StatusCode::OK);

    c.inject(FaultRule::times(
        Fault::Throttle { retry_after: 7 },
        Target::All,
        1,
    ));
    let (st, h, _) = s.get("CustomerGroups").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["Retry-After"], "7");

    c.inject(FaultRule::times(Fault::ConnectionReset, Target::Odata, 1));
    let r = s
        .http
        .get(s.url("CustomerGroups"))
        .bearer_auth(&s.token)
        .send()
        .await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "connection reset must surface as a transport error");
    // On the raw socket: the connection closes without a status line.
    c.inject(FaultRule::times(Fault::ConnectionReset, Target::Odata, 1));
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(s.emu.local_addr())
            .await
            .unwrap();
        sock.write_all(b"GET /data/CustomerGroups HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut buf))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(buf.is_empty(), "{text}");
    }
    assert_eq!(s.get("CustomerGroups").await.0, StatusCode::OK);

    c.inject(FaultRule::times(
        Fault::Latency { ms: 150 },
        Target::Token,
        1,
    ));
    let started = Instant::now();
    fetch_token(&s.http, &s.info).await;
    assert!(started.elapsed() >= Duration::from_millis(150));

    // Shipping an order shows through OData.
    let o = c
        .insert(
            "SalesOrderHeadersV2",
            json!({"OrderingCustomerAccountNumber": "US-001"}),
        )
        .unwrap();
    let number = o["SalesOrderNumber"].as_str().unwrap().to_string();
    c.insert(
        "SalesOrderLines",
        json!({"SalesOrderNumber": number, "ItemNumber": "A0001", "OrderedSalesQuantity": 1}),
    )
    .unwrap();
    let slip = c
        .ship_order(
            "usmf",
            &number,
            Some("1Z999AA10123456784"),
            Some("https://track.example/1Z999AA10123456784"),
        )
        .unwrap();
    let (_, _, t) = s
        .get(&format!(
            "PackingSlipTrackingInformation?$filter=SalesOrderNumber eq '{number}'"
        ))
        .await;
    assert_eq!(t["value"][0]["PackingSlipNumber"], slip.as_str());
    assert_eq!(t["value"][0]["TrackingNumber"], "1Z999AA10123456784");
    let date = t["value"][0]["DeliveryDate"].as_str().unwrap().to_string();
    let (st, _, _) = s
        .get(&format!(
            "PackingSlipTrackingInformation(dataAreaId='usmf',SalesOrderNumber='{number}',PackingSlipNumber='{slip}',DeliveryDate={date},TrackingNumber='1Z999AA10123456784')"
        ))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, _, b) = s
        .get("SalesOrderHeadersV2?$filter=SalesOrderStatus eq 'Delivered'&$expand=SalesOrderLines($select=SalesOrderLineStatus)")
        .await;
    assert_eq!(b["value"][0]["SalesOrderNumber"], number.as_str());
    assert_eq!(
        b["value"][0]["SalesOrderLines"][0]["SalesOrderLineStatus"],
        "Delivered"
    );
    assert!(c.ship_order("usmf", "999999", None, None).is_err());

    // On-hand changes are visible through OData.
    c.set_on_hand("usmf", "A0003", "12", rust_decimal::Decimal::new(4242, 1))
        .unwrap();
    let (_, _, b) = s
        .get("WarehousesOnHandV2?$filter=ItemNumber eq 'A0003' and InventoryWarehouseId eq '12'&$select=OnHandQuantity,AvailableOnHandQuantity")
        .await;
    assert_eq!(b["value"][0]["OnHandQuantity"].to_string(), "424.2");

    // HTTP control plane.
    let ctl = |p: &str| format!("{}/_sim/{p}", s.info.url);
    let info: D365Info = s
        .http
        .get(ctl("info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info, s.info);
    let reqs: Vec<Value> = s
        .http
        .get(ctl("requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        reqs.iter()
            .any(|r| r["status"] == 503 && r["duration_ms"].is_number())
    );
    assert!(
        reqs.iter()
            .any(|r| r["client_id"] == s.info.client_id.as_str())
    );
    let r = s
        .http
        .post(ctl("faults"))
        .json(&json!({"fault": {"kind": "status", "status": 500}, "target": "odata", "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("CustomerGroups").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let r = s
        .http
        .post(ctl("entities/CustomersV3"))
        .json(&json!({"OrganizationName": "Via control", "CustomerGroupId": "10", "SalesCurrencyCode": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    s.http.post(ctl("reset")).send().await.unwrap();
    assert!(c.requests().is_empty());
    let (_, _, b) = s.get("CustomersV3?$count=true&$top=0").await;
    assert_eq!(b["@odata.count"], 20);
    s.emu.shutdown().await;
}

#[tokio::test]
async fn seeding_is_deterministic_and_configurable() {
    let a = start(Config {
        seed: 9,
        ..Config::default()
    })
    .await
    .unwrap();
    let b = start(Config {
        seed: 9,
        ..Config::default()
    })
    .await
    .unwrap();
    let pa = a
        .control()
        .entities("ReleasedProductsV2", Some("usmf"))
        .unwrap();
    let pb = b
        .control()
        .entities("ReleasedProductsV2", Some("usmf"))
        .unwrap();
    assert_eq!(pa, pb);
    assert_eq!(a.info().client_secret, b.info().client_secret);
    let c = start(Config {
        seed: 9,
        data: SeedSpec {
            companies: vec!["usmf".into()],
            products: vec![syncline_sim_d365::ProductSeed {
                item_number: "SKU-RED-S".into(),
                name: "Red shirt S".into(),
                price: "19.99".into(),
            }],
            ..SeedSpec::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let p = c.control().entities("ReleasedProductsV2", None).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["ItemNumber"], "SKU-RED-S");
    assert_eq!(p[0]["SalesPrice"].to_string(), "19.99");
    for e in [a, b, c] {
        e.shutdown().await;
    }
}

#[tokio::test]
async fn http_control_plane_routes() {
    let s = sim().await;
    let ctl = |p: &str| format!("{}/_sim/{p}", s.info.url);
    let send = |m: reqwest::Method, p: &str, body: Option<Value>| {
        let mut r = s.http.request(m, ctl(p));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    use reqwest::Method as M;
    let r = send(M::POST, "seed", Some(json!({"seed": 3, "spec": {"companies": ["usmf"], "product_count": 3, "customers_per_company": 2}}))).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, _, b) = s.get("ReleasedProductsV2?$count=true&$top=0").await;
    assert_eq!(b["@odata.count"], 3);
    let r = send(
        M::PUT,
        "on-hand",
        Some(json!({"ItemNumber": "A0002", "InventoryWarehouseId": "21", "quantity": "7"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, _, b) = s
        .get("WarehousesOnHandV2?$filter=ItemNumber eq 'A0002' and InventoryWarehouseId eq '21'")
        .await;
    assert_eq!(b["value"][0]["OnHandQuantity"].to_string(), "7");
    let r = send(
        M::PUT,
        "on-hand",
        Some(json!({"ItemNumber": "NOPE", "InventoryWarehouseId": "21", "quantity": 1})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = send(M::PUT, "page-size", Some(json!({"page_size": 1})))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, _, b) = s.get("CustomersV3").await;
    assert_eq!(b["value"].as_array().unwrap().len(), 1);
    assert!(b["@odata.nextLink"].is_string());

    let r = send(
        M::PUT,
        "auth/fo-registration",
        Some(json!({"registered": false})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.get("CustomersV3").await.0, StatusCode::UNAUTHORIZED);
    send(
        M::PUT,
        "auth/fo-registration",
        Some(json!({"registered": true})),
    )
    .await
    .unwrap();
    send(M::POST, "auth/revoke-tokens", None).await.unwrap();
    assert_eq!(s.get("CustomersV3").await.0, StatusCode::UNAUTHORIZED);

    let r = send(
        M::POST,
        "auth/rotate-secret",
        Some(json!({"secret": "new~secret"})),
    )
    .await
    .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["client_secret"], "new~secret");
    let old = s
        .http
        .post(&s.info.token_url)
        .form(&[
            ("client_id", s.info.client_id.as_str()),
            ("client_secret", s.info.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", &format!("{}/.default", s.info.url)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let info: D365Info = send(M::GET, "info", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info.client_secret, "new~secret");
    let token = fetch_token(&s.http, &info).await;
    let r = s
        .http
        .get(s.url("CustomersV3"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let r = send(
        M::PUT,
        "auth/secret-expired",
        Some(json!({"expired": true})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(
        M::PUT,
        "throttle",
        Some(json!({"requests_per_window": 1, "window_secs": 30, "max_concurrent": 5})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .http
        .get(s.url("CustomersV3"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .http
        .get(s.url("CustomersV3"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = send(M::PUT, "auth/token-lifetime", Some(json!({"seconds": 60})))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let faults: Vec<Value> = send(M::GET, "faults", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(faults.is_empty());
    let r = send(M::DELETE, "requests", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let orders: Vec<Value> = send(M::GET, "orders", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(orders.is_empty());
    let r = send(M::GET, "entities/Nope", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_get_unique_numbers() {
    let s = std::sync::Arc::new(sim().await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let body = batch_body(
                "batch_abc",
                &format!("changeset_{i}"),
                &[
                    ("POST", "SalesOrderHeadersV2", json!({"OrderingCustomerAccountNumber": "US-001", "CustomersOrderReference": format!("#c{i}")})),
                    ("POST", "$1/SalesOrderLines", json!({"ItemNumber": "A0001", "OrderedSalesQuantity": 1})),
                    ("POST", "$1/SalesOrderLines", json!({"ItemNumber": "A0002", "OrderedSalesQuantity": 2})),
                ],
                &s.info.url,
            );
            let (st, _, text) = post_batch(&s, body).await;
            assert_eq!(st, StatusCode::OK);
            assert_eq!(text.matches("201 Created").count(), 3, "{text}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let orders = s.emu.control().orders();
    assert_eq!(orders.len(), 20);
    let numbers: BTreeSet<String> = orders
        .iter()
        .map(|o| o["SalesOrderNumber"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(numbers.len(), 20);
    assert!(
        orders
            .iter()
            .all(|o| o["SalesOrderLines"].as_array().unwrap().len() == 2)
    );
    // Properties keep the entity's declaration order.
    let first: Vec<&String> = orders[0].as_object().unwrap().keys().take(2).collect();
    assert_eq!(first, ["dataAreaId", "SalesOrderNumber"]);
}

/// Lookups by e-mail and by order reference (served from an index) stay exact through
/// creation, a change of the looked-up value, case differences and deletion.
#[tokio::test]
async fn indexed_equality_lookups_follow_every_change() {
    let s = sim().await;
    let by_email = |email: &str| {
        format!("CustomersV3?$filter=PrimaryContactEmail%20eq%20'{email}'&$select=CustomerAccount")
    };
    let accounts = |b: &Value| -> Vec<String> {
        b["value"]
            .as_array()
            .unwrap_or_else(|| panic!("not a result: {b}"))
            .iter()
            .map(|r| r["CustomerAccount"].as_str().unwrap().to_owned())
            .collect()
    };
    let (st, _, c) = s
        .post(
            "CustomersV3",
            json!({"OrganizationName": "Index Co", "CustomerGroupId": "30", "SalesCurrencyCode": "USD",
                   "PartyType": "Organization", "PrimaryContactEmail": "Ops@Index.example"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let account = c["CustomerAccount"].as_str().unwrap().to_owned();
    let (_, _, b) = s.get(&by_email("ops@INDEX.example")).await;
    assert_eq!(
        accounts(&b),
        vec![account.clone()],
        "case-insensitive, as F&O"
    );
    // Combined with another condition the other condition still applies.
    let (_, _, b) = s
        .get("CustomersV3?$filter=PrimaryContactEmail%20eq%20'ops@index.example'%20and%20CustomerAccount%20eq%20'NOPE'&$select=CustomerAccount")
        .await;
    assert_eq!(accounts(&b), Vec::<String>::new());

    let key = format!("CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')");
    let (st, _, b) = s
        .send(
            reqwest::Method::PATCH,
            &key,
            Some(json!({"PrimaryContactEmail": "billing@index.example"})),
        )
        .await;
    assert!(st.is_success(), "{st} {b}");
    let (_, _, b) = s.get(&by_email("ops@index.example")).await;
    assert_eq!(accounts(&b), Vec::<String>::new(), "the old value is gone");
    let (_, _, b) = s.get(&by_email("billing@index.example")).await;
    assert_eq!(accounts(&b), vec![account.clone()]);

    let (st, _, b) = s.send(reqwest::Method::DELETE, &key, None).await;
    assert!(st.is_success(), "{st} {b}");
    let (_, _, b) = s.get(&by_email("billing@index.example")).await;
    assert_eq!(
        accounts(&b),
        Vec::<String>::new(),
        "a deleted row is not found"
    );

    // Orders by reference, including one whose reference only differs in case.
    for reference in ["IDX-1", "idx-1", "IDX-2"] {
        let (st, _, b) = s
            .post(
                "SalesOrderHeadersV2",
                json!({"OrderingCustomerAccountNumber": "US-001", "CustomersOrderReference": reference}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }
    let (_, _, b) = s
        .get("SalesOrderHeadersV2?$filter=CustomersOrderReference%20eq%20'Idx-1'&$select=CustomersOrderReference")
        .await;
    let mut found: Vec<&str> = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["CustomersOrderReference"].as_str().unwrap())
        .collect();
    found.sort_unstable();
    assert_eq!(found, vec!["IDX-1", "idx-1"]);
}
