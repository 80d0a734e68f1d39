//! Black-box tests of the emulator over HTTP: GraphQL, cost and throttling,
//! REST and its leaky bucket, webhooks, faults, the control plane.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{client, gql, gql_v, receiver, start, wait_for};
use serde_json::{Value, json};
use syncline_sim_shopify::{Faults, Plan, ShopSpec, webhooks};

#[tokio::test]
async fn shop_query_answers_with_cost_extension() {
    let emu = start().await;
    let info = emu.info();
    let c = client();
    let body = gql(&c, &info, doc!("shop"), json!({})).await;
    assert_eq!(body["data"]["shop"]["myshopifyDomain"], info.shop_domain);
    assert!(
        body["data"]["shop"]["id"]
            .as_str()
            .unwrap()
            .starts_with("gid://shopify/Shop/")
    );
    let cost = &body["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], 2);
    assert_eq!(cost["actualQueryCost"], 2);
    let ts = &cost["throttleStatus"];
    assert!(ts["maximumAvailable"].is_f64());
    assert!(ts["currentlyAvailable"].is_i64());
    assert!(ts["restoreRate"].is_f64());
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_are_graphql_errors_and_bad_tokens_are_401() {
    let emu = start().await;
    let info = emu.info();
    let c = client();
    let body = gql(&c, &info, "{ shop { notAField } }", json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Field 'notAField' doesn't exist on type 'Shop'"
    );
    assert_eq!(body["errors"][0]["extensions"]["code"], "undefinedField");
    let body = gql(&c, &info, "{ order(id: \"1234\") { id } }", json!({})).await;
    assert_eq!(body["errors"][0]["message"], "Invalid global id '1234'");
    let body = gql(
        &c,
        &info,
        "{ order(id: \"gid://shopify/Order/1\") { id } }",
        json!({}),
    )
    .await;
    assert!(body["data"]["order"].is_null() && body.get("errors").is_none());
    let body = gql(&c, &info, "{ order { id } }", json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Field 'order' is missing required arguments: id"
    );
    let body = gql(
        &c,
        &info,
        "{ orders(first: 1, bogus: 1) { nodes { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "argumentNotAccepted"
    );
    assert!(body["extensions"]["cost"].is_object());

    let r = c
        .post(common::gql_url(&info, "2025-01"))
        .header("X-Shopify-Access-Token", "wrong")
        .json(&json!({"query": "{ shop { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["errors"]
            .as_str()
            .unwrap()
            .contains("Invalid API key or access token")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn shops_are_addressable_by_host_header_and_path() {
    let emu = start().await;
    let other = emu
        .create_shop(ShopSpec {
            name: "acme-eu".into(),
            ..ShopSpec::default()
        })
        .unwrap();
    assert_eq!(other.shop_domain, "acme-eu.myshopify.com");
    let c = client();
    // Host header, on the bare listener.
    let r: Value = c
        .post(format!("{}/admin/api/2025-01/graphql.json", emu.base_url()))
        .header("Host", "acme-eu.myshopify.com")
        .header("X-Shopify-Access-Token", &other.access_token)
        .json(&json!({"query": "{ shop { myshopifyDomain } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["data"]["shop"]["myshopifyDomain"],
        "acme-eu.myshopify.com"
    );
    // Path prefix; the other shop's token does not open the default shop.
    let (status, _) = gql_v(
        &c,
        &syncline_sim_shopify::ShopifyInfo {
            access_token: other.access_token.clone(),
            ..emu.info()
        },
        "2025-01",
        "{ shop { name } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 401);
    emu.shutdown().await;
}

#[tokio::test]
async fn orders_paginate_with_cursors() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    emu.generate_orders(&shop, 12).unwrap();
    let all: Vec<String> = emu
        .orders(&shop)
        .unwrap()
        .iter()
        .map(|o| format!("gid://shopify/Order/{}", o.id))
        .collect();
    let c = client();
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let b = gql(
            &c,
            &info,
            doc!("orders_page"),
            json!({"first": 5, "after": after}),
        )
        .await;
        let conn = &b["data"]["orders"];
        for e in conn["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_owned());
            assert!(e["node"]["legacyResourceId"].is_string());
            assert!(e["node"]["totalPriceSet"]["shopMoney"]["amount"].is_string());
        }
        // Actual cost counts what came back, not what was asked.
        let n = conn["edges"].as_array().unwrap().len() as u64;
        // Per node: the order (1) and totalPriceSet with its two MoneyV2 (3).
        assert_eq!(b["extensions"]["cost"]["actualQueryCost"], 2 + n * 4);
        assert_eq!(b["extensions"]["cost"]["requestedQueryCost"], 2 + 5 * 4);
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, all);
    // `first` is mandatory.
    let b = gql(&c, &info, "{ orders { nodes { id } } }", json!({})).await;
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("first or last")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn order_detail_and_catalogue_queries_resolve() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    let ids = emu.generate_orders(&shop, 3).unwrap();
    let c = client();
    for id in ids {
        let b = gql(
            &c,
            &info,
            doc!("order_detail"),
            json!({"id": format!("gid://shopify/Order/{id}")}),
        )
        .await;
        assert!(b.get("errors").is_none(), "{b}");
        let o = &b["data"]["order"];
        assert!(!o["lineItems"]["nodes"].as_array().unwrap().is_empty());
        assert_eq!(o["transactions"][0]["kind"], "SALE");
        assert_eq!(o["fulfillmentOrders"]["nodes"][0]["status"], "OPEN");
    }
    for (d, vars) in [
        (doc!("customers"), json!({"first": 5})),
        (doc!("products"), json!({"first": 5})),
        (doc!("locations"), json!({})),
        (doc!("inventory_items"), json!({"first": 5})),
        (doc!("variants_by_sku"), json!({"query": "sku:SKU-00001-1"})),
        (doc!("webhook_subscriptions"), json!({})),
        (doc!("current_bulk"), json!({})),
        (doc!("fulfillment_orders"), json!({"first": 5})),
    ] {
        let b = gql(&c, &info, d, vars).await;
        assert!(b.get("errors").is_none(), "{d}: {b}");
    }
    let b = gql(
        &c,
        &info,
        doc!("variants_by_sku"),
        json!({"query": "sku:SKU-00001-1"}),
    )
    .await;
    let nodes = b["data"]["productVariants"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["sku"], "SKU-00001-1");
    emu.shutdown().await;
}

fn many_shops(n: usize) -> String {
    let fields: String = (0..n).map(|i| format!("s{i}: shop {{ name }} ")).collect();
    format!("{{ {fields} }}")
}

#[tokio::test]
async fn throttled_when_the_bucket_is_empty_then_restored() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    // A small bucket so the test takes about a second.
    emu.set_plan(
        &shop,
        Plan {
            restore_rate: 30.0,
            maximum: 100.0,
        },
    )
    .unwrap();
    let c = client();
    let q = many_shops(45); // costs 45 requested and actual
    let mut throttled = None;
    for _ in 0..5 {
        let (status, b) = gql_v(&c, &info, "2025-01", &q, json!({})).await;
        assert_eq!(status, 200, "THROTTLED is an HTTP 200");
        if b["errors"][0]["extensions"]["code"] == "THROTTLED" {
            throttled = Some(b);
            break;
        }
        assert_eq!(b["extensions"]["cost"]["actualQueryCost"], 45);
    }
    let b = throttled.expect("bucket never emptied");
    assert_eq!(b["errors"][0]["message"], "Throttled");
    assert!(b.get("data").is_none() || b["data"].is_null());
    let cost = &b["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], 45);
    assert!(cost["actualQueryCost"].is_null());
    let ts = &cost["throttleStatus"];
    assert_eq!(ts["maximumAvailable"], 100.0);
    assert_eq!(ts["restoreRate"], 30.0);
    let available = ts["currentlyAvailable"].as_i64().unwrap();
    assert!(available < 45, "throttled with {available} available");
    // Wait for the restore time, polling.
    let throttled_at = Instant::now();
    let ok = wait_for(Duration::from_secs(10), "bucket restore", || {
        let (c, info, q) = (c.clone(), info.clone(), q.clone());
        async move {
            let (_, b) = gql_v(&c, &info, "2025-01", &q, json!({})).await;
            b.get("errors").is_none().then_some(b)
        }
    })
    .await;
    let waited = throttled_at.elapsed().as_secs_f64();
    let needed = (45 - available) as f64 / 30.0;
    assert!(
        waited + 0.05 >= needed,
        "succeeded after {waited}s, needed {needed}s"
    );
    assert_eq!(ok["data"]["s0"]["name"], shop);
    emu.shutdown().await;
}

#[tokio::test]
async fn each_app_has_its_own_bucket_subscriptions_and_secret() {
    let emu = start().await;
    let shop = emu.default_shop().to_owned();
    emu.set_plan(
        &shop,
        Plan {
            restore_rate: 1.0,
            maximum: 100.0,
        },
    )
    .unwrap();
    let erp = emu
        .add_app(
            &shop,
            syncline_sim_shopify::AppSpec {
                name: "erp".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let default = emu.info();
    assert_ne!(erp.access_token, default.access_token);
    assert_eq!(erp.shop_domain, default.shop_domain);
    let c = client();
    // Drain the default app's bucket; the other app's stays full.
    let q = many_shops(90);
    let (_, b) = gql_v(&c, &default, "2025-01", &q, json!({})).await;
    assert!(b.get("errors").is_none(), "{b}");
    let (_, b) = gql_v(&c, &default, "2025-01", &q, json!({})).await;
    assert_eq!(b["errors"][0]["extensions"]["code"], "THROTTLED");
    let (_, b) = gql_v(&c, &erp, "2025-01", &q, json!({})).await;
    assert!(b.get("errors").is_none(), "{b}");
    emu.set_plan(&shop, Plan::default()).unwrap();
    // Subscriptions belong to the app that made them and are signed with its secret.
    let rx = receiver(vec![200]).await;
    let b = gql(
        &c,
        &erp,
        doc!("webhook_subscription_create"),
        json!({"topic": "ORDERS_CREATE", "webhookSubscription": {"callbackUrl": rx.url()}}),
    )
    .await;
    assert_eq!(
        b["data"]["webhookSubscriptionCreate"]["userErrors"],
        json!([])
    );
    let b = gql(&c, &erp, doc!("webhook_subscriptions"), json!({})).await;
    assert_eq!(
        b["data"]["webhookSubscriptions"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let b = gql(&c, &default, doc!("webhook_subscriptions"), json!({})).await;
    assert_eq!(b["data"]["webhookSubscriptions"]["nodes"], json!([]));
    emu.generate_orders(&shop, 1).unwrap();
    let got = wait_for(Duration::from_secs(5), "erp delivery", || {
        let r = rx.received();
        async move { (!r.is_empty()).then_some(r) }
    })
    .await;
    assert_eq!(
        got[0].headers["x-shopify-hmac-sha256"].to_str().unwrap(),
        webhooks::sign(erp.api_secret.as_bytes(), &got[0].body)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn max_cost_and_input_array_limits() {
    let emu = start().await;
    let info = emu.info();
    let c = client();
    let b = gql(
        &c,
        &info,
        "{ orders(first: 250) { edges { node { lineItems(first: 250) { edges { node { id } } } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(b["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");
    assert_eq!(b["errors"][0]["extensions"]["maxCost"], 1000);
    assert!(
        b["extensions"]["cost"]["requestedQueryCost"]
            .as_u64()
            .unwrap()
            > 1000
    );

    let quantities: Vec<Value> = (0..251)
        .map(|_| json!({"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": "gid://shopify/Location/1", "quantity": 1, "compareQuantity": 0}))
        .collect();
    let b = gql(
        &c,
        &info,
        doc!("inventory_set_quantities"),
        json!({"input": {"name": "available", "reason": "correction", "quantities": quantities}}),
    )
    .await;
    assert_eq!(
        b["errors"][0]["extensions"]["code"],
        "MAX_INPUT_SIZE_EXCEEDED"
    );
    emu.shutdown().await;
}

async fn first_level(
    c: &reqwest::Client,
    info: &syncline_sim_shopify::ShopifyInfo,
) -> (String, String, i64) {
    let b = gql(c, info, doc!("inventory_items"), json!({"first": 1})).await;
    let item = &b["data"]["inventoryItems"]["nodes"][0];
    let level = &item["inventoryLevels"]["nodes"][0];
    let id = level["id"].as_str().unwrap();
    let loc = id
        .split('?')
        .next()
        .unwrap()
        .replace("InventoryLevel", "Location");
    let qty = level["quantities"][0]["quantity"].as_i64().unwrap();
    (item["id"].as_str().unwrap().to_owned(), loc, qty)
}

#[tokio::test]
async fn inventory_set_quantities_compare_quantity_semantics() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    let c = client();
    let rx = receiver(vec![200]).await;
    emu.subscribe(&shop, "inventory_levels/update", &rx.url())
        .unwrap();
    let (item, loc, qty) = first_level(&c, &info).await;
    let input = |q: i64, cmp: Value| {
        json!({"input": {"name": "available", "reason": "correction",
            "referenceDocumentUri": "gid://syncline/Sync/1",
            "quantities": [{"inventoryItemId": item, "locationId": loc, "quantity": q, "compareQuantity": cmp}]}})
    };
    // Stale compareQuantity: nothing changes.
    let b = gql(
        &c,
        &info,
        doc!("inventory_set_quantities"),
        input(7, json!(qty + 1)),
    )
    .await;
    let p = &b["data"]["inventorySetQuantities"];
    assert_eq!(p["userErrors"][0]["code"], "COMPARE_QUANTITY_STALE");
    assert!(p["inventoryAdjustmentGroup"].is_null());
    // Missing compareQuantity without ignoreCompareQuantity.
    let b = gql(
        &c,
        &info,
        doc!("inventory_set_quantities"),
        input(7, Value::Null),
    )
    .await;
    assert_eq!(
        b["data"]["inventorySetQuantities"]["userErrors"][0]["code"],
        "COMPARE_QUANTITY_REQUIRED"
    );
    // Correct compareQuantity.
    let b = gql(
        &c,
        &info,
        doc!("inventory_set_quantities"),
        input(qty + 7, json!(qty)),
    )
    .await;
    let p = &b["data"]["inventorySetQuantities"];
    assert_eq!(p["userErrors"], json!([]));
    let changes = p["inventoryAdjustmentGroup"]["changes"].as_array().unwrap();
    assert_eq!(changes[0]["name"], "available");
    assert_eq!(changes[0]["delta"], 7);
    assert_eq!(changes[0]["quantityAfterChange"], qty + 7);
    assert_eq!(b["extensions"]["cost"]["requestedQueryCost"], 10);
    // Unknown reason and item.
    let b = gql(
        &c,
        &info,
        doc!("inventory_set_quantities"),
        json!({"input": {"name": "available", "reason": "because",
            "quantities": [{"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": loc, "quantity": 1, "compareQuantity": 0}]}}),
    )
    .await;
    let codes: Vec<&str> = b["data"]["inventorySetQuantities"]["userErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["INVALID_REASON", "INVALID_INVENTORY_ITEM"]);
    // The change fired inventory_levels/update.
    let got = wait_for(Duration::from_secs(5), "inventory webhook", || {
        let r = rx.received();
        async move { (!r.is_empty()).then_some(r) }
    })
    .await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["available"], qty + 7);
    emu.shutdown().await;
}

#[tokio::test]
async fn change_from_quantity_and_idempotent_key_in_newer_versions() {
    let emu = start().await;
    let info = emu.info();
    let c = client();
    let (item, loc, qty) = first_level(&c, &info).await;
    let input = |q: i64, from: Value| {
        json!({"name": "available", "reason": "correction",
            "quantities": [{"inventoryItemId": item, "locationId": loc, "quantity": q, "changeFromQuantity": from}]})
    };
    // 2026-01: stale changeFromQuantity.
    let (_, b) = gql_v(
        &c,
        &info,
        "2026-01",
        doc!("inventory_set_quantities"),
        json!({"input": input(1, json!(qty + 3))}),
    )
    .await;
    assert_eq!(
        b["data"]["inventorySetQuantities"]["userErrors"][0]["code"],
        "CHANGE_FROM_QUANTITY_STALE"
    );
    // 2026-04: @idempotent is required …
    let (_, b) = gql_v(
        &c,
        &info,
        "2026-04",
        doc!("inventory_set_quantities"),
        json!({"input": input(qty + 1, json!(qty))}),
    )
    .await;
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("@idempotent")
    );
    // … and a replay with the same key answers the first result.
    let vars =
        json!({"input": input(qty + 1, json!(qty)), "key": "5b6d0be8-3c1f-4c5e-9a4e-0b8e2f1d7a11"});
    let (_, first) = gql_v(
        &c,
        &info,
        "2026-04",
        doc!("inventory_set_quantities_idempotent"),
        vars.clone(),
    )
    .await;
    let p1 = &first["data"]["inventorySetQuantities"];
    assert_eq!(p1["userErrors"], json!([]), "{first}");
    let (_, replay) = gql_v(
        &c,
        &info,
        "2026-04",
        doc!("inventory_set_quantities_idempotent"),
        vars,
    )
    .await;
    // Without the replay cache the stale changeFromQuantity would fail here.
    assert_eq!(replay["data"], first["data"]);
    let (_, _, now) = first_level(&c, &info).await;
    assert_eq!(now, qty + 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn refunds_are_readable_over_graphql() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    emu.generate_orders(&shop, 2).unwrap();
    let refund_id = emu.generate_refund(&shop).unwrap().unwrap();
    let order = emu
        .orders(&shop)
        .unwrap()
        .into_iter()
        .find(|o| o.refunds.iter().any(|r| r.id == refund_id))
        .unwrap();
    let c = client();
    let b = gql(
        &c,
        &info,
        doc!("order_refunds"),
        json!({"id": format!("gid://shopify/Order/{}", order.id)}),
    )
    .await;
    assert!(b.get("errors").is_none(), "{b}");
    let r = &b["data"]["order"]["refunds"][0];
    assert_eq!(r["id"], format!("gid://shopify/Refund/{refund_id}"));
    let line = &r["refundLineItems"]["nodes"][0];
    assert_eq!(line["restockType"], "NO_RESTOCK");
    let tx = &r["transactions"]["nodes"][0];
    assert_eq!(tx["kind"], "REFUND");
    assert_eq!(tx["parentTransaction"]["kind"], "SALE");
    let rl = &order.refunds[0].refund_line_items[0];
    let amount: rust_decimal::Decimal = line["subtotalSet"]["shopMoney"]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(amount, rl.subtotal_set.shop_money.amount);
    emu.shutdown().await;
}

#[tokio::test]
async fn fulfillment_create_closes_the_fulfillment_order() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    let c = client();
    let rx = receiver(vec![200]).await;
    emu.subscribe(&shop, "fulfillments/create", &rx.url())
        .unwrap();
    let id = emu.generate_orders(&shop, 1).unwrap()[0];
    let b = gql(
        &c,
        &info,
        doc!("order_detail"),
        json!({"id": format!("gid://shopify/Order/{id}")}),
    )
    .await;
    let fo = &b["data"]["order"]["fulfillmentOrders"]["nodes"][0];
    let lines: Vec<Value> = fo["lineItems"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!({"id": l["id"], "quantity": l["remainingQuantity"]}))
        .collect();
    let b = gql(
        &c,
        &info,
        doc!("fulfillment_create"),
        json!({"fulfillment": {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": lines}],
            "trackingInfo": {"company": "UPS", "number": "1Z999AA10123456784", "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784"},
            "notifyCustomer": false}}),
    )
    .await;
    let p = &b["data"]["fulfillmentCreate"];
    assert_eq!(p["userErrors"], json!([]), "{b}");
    assert_eq!(p["fulfillment"]["status"], "SUCCESS");
    assert_eq!(p["fulfillment"]["trackingInfo"][0]["company"], "UPS");
    let b = gql(
        &c,
        &info,
        doc!("order_detail"),
        json!({"id": format!("gid://shopify/Order/{id}")}),
    )
    .await;
    assert_eq!(
        b["data"]["order"]["fulfillmentOrders"]["nodes"][0]["status"],
        "CLOSED"
    );
    // Fulfilling again is refused.
    let again = gql(
        &c,
        &info,
        doc!("fulfillment_create"),
        json!({"fulfillment": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}]}}),
    )
    .await;
    assert!(again["data"]["fulfillmentCreate"]["fulfillment"].is_null());
    let got = wait_for(Duration::from_secs(5), "fulfillment webhook", || {
        let r = rx.received();
        async move { (!r.is_empty()).then_some(r) }
    })
    .await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["order_id"], id);
    assert_eq!(body["tracking_number"], "1Z999AA10123456784");
    emu.shutdown().await;
}

#[tokio::test]
async fn metafields_set_is_atomic_and_capped_at_25() {
    let emu = start().await;
    let info = emu.info();
    let c = client();
    let b = gql(&c, &info, doc!("products"), json!({"first": 1})).await;
    let pid = b["data"]["products"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mf = |k: &str, t: &str, v: &str| json!({"ownerId": pid, "namespace": "syncline", "key": k, "type": t, "value": v});
    // One invalid entry: nothing is written.
    let b = gql(
        &c,
        &info,
        doc!("metafields_set"),
        json!({"metafields": [mf("d365_item", "single_line_text_field", "A0001"), mf("weight", "number_integer", "heavy")]}),
    )
    .await;
    let p = &b["data"]["metafieldsSet"];
    assert!(p["metafields"].is_null());
    assert_eq!(p["userErrors"][0]["elementIndex"], 1);
    assert_eq!(p["userErrors"][0]["code"], "INVALID_VALUE");
    let b = gql(&c, &info, "query($id: ID!) { product(id: $id) { metafield(namespace: \"syncline\", key: \"d365_item\") { value } } }", json!({"id": pid})).await;
    assert!(b["data"]["product"]["metafield"].is_null());
    // All valid: written, and compareDigest guards updates.
    let b = gql(
        &c,
        &info,
        doc!("metafields_set"),
        json!({"metafields": [mf("d365_item", "single_line_text_field", "A0001")]}),
    )
    .await;
    let digest = b["data"]["metafieldsSet"]["metafields"][0]["compareDigest"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stale = mf("d365_item", "single_line_text_field", "A0002");
    stale["compareDigest"] = json!("not-the-digest");
    let b = gql(
        &c,
        &info,
        doc!("metafields_set"),
        json!({"metafields": [stale]}),
    )
    .await;
    assert_eq!(
        b["data"]["metafieldsSet"]["userErrors"][0]["code"],
        "STALE_OBJECT"
    );
    let mut fresh = mf("d365_item", "single_line_text_field", "A0002");
    fresh["compareDigest"] = json!(digest);
    let b = gql(
        &c,
        &info,
        doc!("metafields_set"),
        json!({"metafields": [fresh]}),
    )
    .await;
    assert_eq!(
        b["data"]["metafieldsSet"]["metafields"][0]["value"],
        "A0002"
    );
    // 26 entries: refused as a whole.
    let many: Vec<Value> = (0..26)
        .map(|i| mf(&format!("k{i:02}"), "number_integer", "1"))
        .collect();
    let b = gql(
        &c,
        &info,
        doc!("metafields_set"),
        json!({"metafields": many}),
    )
    .await;
    assert_eq!(
        b["errors"][0]["extensions"]["code"],
        "MAX_INPUT_SIZE_EXCEEDED"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn products_create_update_and_set() {
    let emu = start().await;
    let info = emu.info();
    let c = client();
    let b = gql(
        &c,
        &info,
        doc!("product_create"),
        json!({"product": {"title": "Ærø Sweater", "status": "DRAFT"}}),
    )
    .await;
    let p = &b["data"]["productCreate"]["product"];
    assert_eq!(p["handle"], "ærø-sweater");
    assert_eq!(p["status"], "DRAFT");
    let id = p["id"].as_str().unwrap().to_owned();
    let b = gql(
        &c,
        &info,
        doc!("product_update"),
        json!({"product": {"id": id, "tags": ["d365", "synced"]}}),
    )
    .await;
    assert_eq!(
        b["data"]["productUpdate"]["product"]["tags"],
        json!(["d365", "synced"])
    );
    let b = gql(&c, &info, doc!("locations"), json!({})).await;
    let loc = b["data"]["locations"]["nodes"][0]["id"].clone();
    let b = gql(
        &c,
        &info,
        doc!("product_set"),
        json!({"input": {"title": "D365 item A0001", "productOptions": [{"name": "Size", "values": [{"name": "S"}, {"name": "M"}]}],
            "variants": [
                {"sku": "A0001-S", "price": "19.99", "optionValues": [{"optionName": "Size", "name": "S"}], "inventoryQuantities": [{"locationId": loc, "name": "available", "quantity": 5}]},
                {"sku": "A0001-M", "price": "21.99", "optionValues": [{"optionName": "Size", "name": "M"}],
                 "metafields": [{"namespace": "d365", "key": "item_number", "type": "single_line_text_field", "value": "A0001"}]}
            ],
            "metafields": [{"namespace": "d365", "key": "released", "type": "boolean", "value": "true"}]}}),
    )
    .await;
    let p = &b["data"]["productSet"];
    assert_eq!(p["userErrors"], json!([]), "{b}");
    let variants = p["product"]["variants"]["nodes"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["price"], "19.99");
    let b2 = gql(
        &c,
        &info,
        "query($p: ID!, $v: ID!) { product(id: $p) { metafield(namespace: \"d365\", key: \"released\") { value type } } productVariant(id: $v) { metafield(namespace: \"d365\", key: \"item_number\") { value } } }",
        json!({"p": p["product"]["id"], "v": variants[1]["id"]}),
    )
    .await;
    assert_eq!(b2["data"]["product"]["metafield"]["value"], "true");
    assert_eq!(b2["data"]["productVariant"]["metafield"]["value"], "A0001");
    // Update by id: keep S, drop M, add L.
    let pid = p["product"]["id"].clone();
    let s_id = variants[0]["id"].clone();
    let b = gql(
        &c,
        &info,
        doc!("product_set"),
        json!({"input": {"id": pid, "variants": [
            {"id": s_id, "sku": "A0001-S", "price": "18.99", "optionValues": [{"optionName": "Size", "name": "S"}]},
            {"sku": "A0001-L", "price": "23.99", "optionValues": [{"optionName": "Size", "name": "L"}]}
        ]}}),
    )
    .await;
    let skus: Vec<&str> = b["data"]["productSet"]["product"]["variants"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["A0001-S", "A0001-L"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn bulk_operation_produces_jsonl_with_parent_ids() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    emu.generate_orders(&shop, 4).unwrap();
    let c = client();
    let b = gql(
        &c,
        &info,
        doc!("bulk_run"),
        json!({"query": doc!("bulk_inner")}),
    )
    .await;
    assert_eq!(
        b["data"]["bulkOperationRunQuery"]["userErrors"],
        json!([]),
        "{b}"
    );
    let op = wait_for(Duration::from_secs(5), "bulk completion", || {
        let (c, info) = (c.clone(), info.clone());
        async move {
            let b = gql(&c, &info, doc!("current_bulk"), json!({})).await;
            let op = b["data"]["currentBulkOperation"].clone();
            (op["status"] == "COMPLETED").then_some(op)
        }
    })
    .await;
    let url = op["url"].as_str().unwrap();
    let text = c.get(url).send().await.unwrap().text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let orders = emu.orders(&shop).unwrap();
    let line_items: usize = orders.iter().map(|o| o.line_items.len()).sum();
    assert_eq!(lines.len(), orders.len() + line_items);
    assert_eq!(op["objectCount"], (orders.len() + line_items).to_string());
    assert_eq!(op["rootObjectCount"], orders.len().to_string());
    let children = lines
        .iter()
        .filter(|l| l.get("__parentId").is_some())
        .count();
    assert_eq!(children, line_items);
    // A second bulk query while none runs is fine; a mutation is not a query.
    let b = gql(
        &c,
        &info,
        doc!("bulk_run"),
        json!({"query": "mutation { metafieldsSet(metafields: []) { userErrors { message } } }"}),
    )
    .await;
    assert_eq!(
        b["data"]["bulkOperationRunQuery"]["userErrors"][0]["code"],
        "INVALID"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn webhook_subscription_lifecycle_and_signed_delivery() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    let c = client();
    let rx = receiver(vec![200]).await;
    let b = gql(
        &c,
        &info,
        doc!("webhook_subscription_create"),
        json!({"topic": "ORDERS_CREATE", "webhookSubscription": {"callbackUrl": rx.url(), "format": "JSON"}}),
    )
    .await;
    let sub = &b["data"]["webhookSubscriptionCreate"]["webhookSubscription"];
    assert_eq!(sub["topic"], "ORDERS_CREATE");
    assert_eq!(sub["endpoint"]["__typename"], "WebhookHttpEndpoint");
    assert_eq!(sub["apiVersion"]["handle"], "2025-01");
    let sub_id = sub["id"].clone();
    let order_id = emu.generate_orders(&shop, 1).unwrap()[0];
    let got = wait_for(Duration::from_secs(5), "orders/create", || {
        let r = rx.received();
        async move { (!r.is_empty()).then_some(r) }
    })
    .await;
    let d = &got[0];
    let h = |n: &str| d.headers.get(n).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(h("x-shopify-topic").as_deref(), Some("orders/create"));
    assert_eq!(
        h("x-shopify-shop-domain").as_deref(),
        Some(info.shop_domain.as_str())
    );
    assert_eq!(h("x-shopify-api-version").as_deref(), Some("2025-01"));
    assert_eq!(h("x-shopify-order-id"), Some(order_id.to_string()));
    for name in [
        "x-shopify-webhook-id",
        "x-shopify-triggered-at",
        "x-shopify-event-id",
    ] {
        assert!(h(name).is_some(), "missing {name}");
    }
    assert_eq!(
        h("x-shopify-hmac-sha256").unwrap(),
        webhooks::sign(info.api_secret.as_bytes(), &d.body)
    );
    let body: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(body["id"], order_id);
    // Delete: no more deliveries to it.
    let b = gql(
        &c,
        &info,
        doc!("webhook_subscription_delete"),
        json!({"id": sub_id}),
    )
    .await;
    assert_eq!(
        b["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"],
        sub_id
    );
    assert!(emu.subscriptions(&shop).unwrap().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn webhook_retries_with_backoff_then_deletes_the_subscription() {
    let emu = start().await;
    let shop = emu.default_shop().to_owned();
    let rx = receiver(vec![500]).await;
    emu.subscribe(&shop, "orders/create", &rx.url()).unwrap();
    emu.generate_orders(&shop, 1).unwrap();
    wait_for(Duration::from_secs(20), "subscription deletion", || {
        let subs = emu.subscriptions(&shop).unwrap();
        async move { subs.is_empty().then_some(()) }
    })
    .await;
    let got = rx.received();
    assert_eq!(got.len(), 8, "8 tries");
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["x-shopify-webhook-id"].clone())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "same webhook id on every retry"
    );
    // Exponential: each gap at least as long as the scaled schedule.
    let cfg = common::test_config().webhooks;
    for (i, w) in got.windows(2).enumerate() {
        let gap = w[1].at - w[0].at;
        assert!(gap >= cfg.delay(i as u32), "gap {i} was {gap:?}");
    }
    let last_gap = got[7].at - got[6].at;
    let first_gap = got[1].at - got[0].at;
    // The floor of every gap doubles (checked above); the observed gaps grow.
    let ratio = cfg.delay(6).as_secs_f64() / cfg.delay(0).as_secs_f64();
    assert!((ratio - 64.0).abs() < 1e-6, "ratio {ratio}");
    assert!(
        last_gap > first_gap,
        "backoff grows: {first_gap:?} → {last_gap:?}"
    );
    let deliveries = emu.deliveries(&shop).unwrap();
    let d = deliveries
        .iter()
        .find(|d| d.topic == "orders/create")
        .unwrap();
    assert_eq!(d.outcome, "failed");
    assert_eq!(d.attempts.len(), 8);
    assert!(d.attempts.iter().all(|a| a.status == Some(500)));
    emu.shutdown().await;
}

#[tokio::test]
async fn webhook_recovers_after_failures_and_duplicates_on_request() {
    let emu = start().await;
    let shop = emu.default_shop().to_owned();
    let rx = receiver(vec![503, 302, 200]).await;
    emu.subscribe(&shop, "orders/create", &rx.url()).unwrap();
    emu.generate_orders(&shop, 1).unwrap();
    let d = wait_for(Duration::from_secs(10), "delivery", || {
        let ds = emu.deliveries(&shop).unwrap();
        async move { ds.into_iter().find(|d| d.outcome == "delivered") }
    })
    .await;
    // A redirect counts as a failure.
    assert_eq!(d.attempts.len(), 3);
    assert_eq!(emu.subscriptions(&shop).unwrap()[0].consecutive_failures, 0);

    // Receiver down, then duplicates.
    emu.set_faults(
        &shop,
        Faults {
            webhook_receiver_down: true,
            ..Faults::default()
        },
    )
    .unwrap();
    emu.generate_orders(&shop, 1).unwrap();
    wait_for(Duration::from_secs(10), "failed attempt", || {
        let ds = emu.deliveries(&shop).unwrap();
        async move {
            ds.iter()
                .any(|d| {
                    d.attempts.iter().any(|a| {
                        a.error
                            .as_deref()
                            .is_some_and(|e| e.contains("receiver down"))
                    })
                })
                .then_some(())
        }
    })
    .await;
    emu.reset(&shop, None).unwrap();
    let rx2 = receiver(vec![200]).await;
    emu.subscribe(&shop, "orders/create", &rx2.url()).unwrap();
    emu.set_faults(
        &shop,
        Faults {
            duplicate_webhook_rate: 1.0,
            ..Faults::default()
        },
    )
    .unwrap();
    emu.generate_orders(&shop, 1).unwrap();
    let got = wait_for(Duration::from_secs(5), "duplicates", || {
        let r = rx2.received();
        async move { (r.len() >= 2).then_some(r) }
    })
    .await;
    assert_eq!(
        got[0].headers["x-shopify-webhook-id"],
        got[1].headers["x-shopify-webhook-id"]
    );
    assert_eq!(got[0].body, got[1].body);
    emu.shutdown().await;
}

#[tokio::test]
async fn injected_faults_latency_errors_resets_throttles_revocation() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    let c = client();
    let q = json!({"query": "{ shop { name } }"});
    let post = || {
        c.post(common::gql_url(&info, "2025-01"))
            .header("X-Shopify-Access-Token", &info.access_token)
            .json(&q)
            .send()
    };
    emu.set_faults(
        &shop,
        Faults {
            error_next: 1,
            error_status: Some(502),
            ..Faults::default()
        },
    )
    .unwrap();
    assert_eq!(post().await.unwrap().status(), 502);
    assert_eq!(post().await.unwrap().status(), 200);

    emu.set_faults(
        &shop,
        Faults {
            reset_next: 1,
            ..Faults::default()
        },
    )
    .unwrap();
    let r = post().await;
    let broken = match r {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(broken, "connection reset must surface as a transport error");

    emu.set_faults(
        &shop,
        Faults {
            throttle_next: 1,
            ..Faults::default()
        },
    )
    .unwrap();
    let b: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(b["errors"][0]["extensions"]["code"], "THROTTLED");

    emu.set_faults(
        &shop,
        Faults {
            latency_ms: 300,
            ..Faults::default()
        },
    )
    .unwrap();
    let t = Instant::now();
    assert_eq!(post().await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    emu.set_faults(
        &shop,
        Faults {
            revoked_token: true,
            ..Faults::default()
        },
    )
    .unwrap();
    assert_eq!(post().await.unwrap().status(), 401);

    let reqs = emu.requests(&shop).unwrap();
    assert!(reqs.iter().any(|r| r.fault.as_deref() == Some("http_502")));
    assert!(reqs.iter().any(|r| r.throttled));
    assert!(reqs.iter().all(|r| r.api == "graphql"));
    emu.shutdown().await;
}

#[tokio::test]
async fn rest_orders_and_leaky_bucket() {
    let emu = start().await;
    let info = emu.info();
    let shop = emu.default_shop().to_owned();
    let ids = emu.generate_orders(&shop, 3).unwrap();
    let c = client();
    let get = |path: String| {
        c.get(format!("{}/admin/api/2025-01/{path}", info.url))
            .header("X-Shopify-Access-Token", &info.access_token)
            .send()
    };
    let r = get("orders.json?limit=250&status=any".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-shopify-shop-api-call-limit"], "1/40");
    let text = r.text().await.unwrap();
    // Ids stay exact integers on the wire.
    assert!(text.contains(&format!("\"id\":{}", ids[0])));
    let r = get(format!("orders/{}/transactions.json", ids[0]))
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["transactions"][0]["kind"], "sale");
    assert!(b["transactions"][0]["amount"].is_string());
    assert_eq!(get("orders/1.json".into()).await.unwrap().status(), 404);
    // inventory_levels/set.json
    let b = gql(&c, &info, doc!("inventory_items"), json!({"first": 1})).await;
    let item: u64 = b["data"]["inventoryItems"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let level_id = b["data"]["inventoryItems"]["nodes"][0]["inventoryLevels"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let loc: u64 = level_id
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let r = c
        .post(format!(
            "{}/admin/api/2025-01/inventory_levels/set.json",
            info.url
        ))
        .header("X-Shopify-Access-Token", &info.access_token)
        .json(&json!({"location_id": loc, "inventory_item_id": item, "available": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["inventory_level"]["available"], 42);
    // Drain the bucket: 40 requests fit, the next is 429 with Retry-After.
    let mut limited = None;
    for _ in 0..400 {
        let r = get("shop.json".into()).await.unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("never limited");
    assert_eq!(r.headers()["retry-after"], "2.0");
    assert!(
        r.headers()["x-shopify-shop-api-call-limit"]
            .to_str()
            .unwrap()
            .ends_with("/40")
    );
    let b: Value = r.json().await.unwrap();
    assert!(
        b["errors"]
            .as_str()
            .unwrap()
            .contains("Exceeded 2 calls per second")
    );
    // It leaks at 2/s: after about half a second one more request fits.
    wait_for(Duration::from_secs(3), "bucket leak", || {
        let f = get("shop.json".into());
        async move { (f.await.unwrap().status() == 200).then_some(()) }
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn control_plane_over_http() {
    let emu = start().await;
    let c = client();
    let base = emu.base_url().to_owned();
    let info: Value = c
        .get(format!("{base}/_sim/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info, serde_json::to_value(emu.info()).unwrap());
    let r = c
        .post(format!("{base}/_sim/shops"))
        .json(&json!({"name": "beta", "plan": {"restore_rate": 1000.0, "maximum": 20000.0}, "seed": {"products": 2, "customers": 1, "orders": 0, "locations": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let beta: Value = r.json().await.unwrap();
    assert_eq!(beta["shop_domain"], "beta.myshopify.com");
    let r: Value = c
        .post(format!("{base}/_sim/shops/beta/orders/generate"))
        .json(&json!({"count": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["order_ids"].as_array().unwrap().len(), 3);
    let orders: Value = c
        .get(format!("{base}/_sim/shops/beta/orders"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders.as_array().unwrap().len(), 3);
    let r = c
        .put(format!("{base}/_sim/shops/beta/faults"))
        .json(&json!({"latency_ms": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(emu.faults("beta").unwrap().latency_ms, 5);
    c.post(format!("{base}/_sim/shops/beta/traffic/start"))
        .json(&json!({"orders_per_sec": 50.0, "max_orders": 5}))
        .send()
        .await
        .unwrap();
    wait_for(Duration::from_secs(5), "traffic", || {
        let n = emu.orders("beta").unwrap().len();
        async move { (n >= 8).then_some(()) }
    })
    .await;
    c.post(format!("{base}/_sim/shops/beta/traffic/stop"))
        .send()
        .await
        .unwrap();
    let r = c
        .post(format!("{base}/_sim/shops/beta/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(emu.orders("beta").unwrap().len(), emu_default_seed_orders());
    assert_eq!(
        c.get(format!("{base}/_sim/shops/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    emu.shutdown().await;
}

fn emu_default_seed_orders() -> usize {
    common::test_config().seed_data.orders as usize
}

#[tokio::test]
async fn traffic_edits_and_cancels_orders() {
    let emu = start().await;
    let shop = emu.default_shop().to_owned();
    let rx = receiver(vec![200]).await;
    emu.subscribe(&shop, "orders/cancelled", &rx.url()).unwrap();
    emu.subscribe(&shop, "orders/updated", &rx.url()).unwrap();
    emu.start_traffic(
        &shop,
        syncline_sim_shopify::TrafficSpec {
            orders_per_sec: 200.0,
            update_probability: 0.5,
            cancel_probability: 0.5,
            max_orders: 20,
            ..Default::default()
        },
    )
    .unwrap();
    let got = wait_for(Duration::from_secs(10), "cancellation webhook", || {
        let r = rx.received();
        async move {
            r.iter()
                .any(|d| d.headers["x-shopify-topic"] == "orders/cancelled")
                .then_some(r)
        }
    })
    .await;
    let cancelled = got
        .iter()
        .find(|d| d.headers["x-shopify-topic"] == "orders/cancelled")
        .unwrap();
    let body: Value = serde_json::from_slice(&cancelled.body).unwrap();
    assert!(body["cancelled_at"].is_string());
    assert_eq!(body["financial_status"], "refunded");
    emu.stop_traffic(&shop).unwrap();
    emu.shutdown().await;
}
