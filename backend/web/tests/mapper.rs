//! The console's mapper through real HTTP on both backends: live preview, compile problems,
//! drafts, publishing immutable versions, roll-back, diff, and who may do what.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::{MODES, TestApp, spawn_app, template_with, unique_email};
use serde_json::{Value, json};
use syncline_store::{ConnectionKind, NewConnection, NewPair, PairId, Role, TenantId};

async fn pair(app: &TestApp, tenant: TenantId) -> PairId {
    let connection = |kind, name: &str| NewConnection {
        kind,
        name: name.into(),
        sandbox: true,
        settings: json!({}),
    };
    let shop = app
        .store
        .create_connection(tenant, &connection(ConnectionKind::Shopify, "shop"))
        .await
        .unwrap();
    let erp = app
        .store
        .create_connection(tenant, &connection(ConnectionKind::D365, "erp"))
        .await
        .unwrap();
    app.store
        .create_pair(
            tenant,
            &NewPair {
                name: "Store to D365".into(),
                shopify_connection_id: shop.id,
                d365_connection_id: erp.id,
                environment: "sandbox".into(),
                flows: vec!["orders".into()],
            },
        )
        .await
        .unwrap()
        .id
}

async fn post(client: &reqwest::Client, url: String, fields: &[(&str, &str)]) -> (u16, Value) {
    let response = client.post(url).form(fields).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_draft_previews_live_publishes_as_immutable_versions_and_rolls_back() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("mapper").await;
        let pair = pair(&app, tenant).await;
        let owner = unique_email("owner");
        app.user(&owner, Some((tenant, Role::Owner)), false).await;
        let client = app.session(&owner).await;
        let csrf = app.csrf(&client).await;
        let base = format!("/console/pairs/{pair}/mappings/orders");

        // The page lists both sides, flags required targets and starts from the template.
        let page = client.get(app.url(&base)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        for expected in [
            "mapper-data",
            "line_items[].sku",
            "SalesOrderLines",
            "editing default",
            "Nothing published yet",
        ] {
            assert!(
                page.contains(expected),
                "{mode:?}: mapper page lacks {expected}"
            );
        }

        // Live preview: mapping the SKU onto the line description shows in the output.
        let changed = template_with("SalesOrderLines.LineDescription", "line_items[].sku");
        let (status, preview) = post(
            &client,
            app.url(&format!("{base}/preview")),
            &[
                ("csrf", &csrf),
                ("document", &changed.to_string()),
                ("sample", "fixture"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{mode:?}: {preview}");
        assert_eq!(preview["ok"], true, "{mode:?}: {preview}");
        assert_eq!(
            preview["output"]["SalesOrderLines"][0]["LineDescription"], "SKU2006-001",
            "{mode:?}"
        );
        assert!(
            preview["trace"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["target"] == "SalesOrderLines.LineDescription"
                    && t["source"] == "SKU2006-001"),
            "{mode:?}: the trace explains the rule"
        );

        // A misspelled path is a problem naming the rule and the path, and cannot be published.
        let broken = template_with("SalesOrderLines.ItemNumber", "line_items[].skew");
        let (_, preview) = post(
            &client,
            app.url(&format!("{base}/preview")),
            &[("csrf", &csrf), ("document", &broken.to_string())],
        )
        .await;
        assert_eq!(preview["ok"], false);
        let problem = &preview["problems"][0];
        assert_eq!(problem["target"], "SalesOrderLines.ItemNumber", "{preview}");
        assert!(
            problem["path"].as_str().unwrap().contains("skew"),
            "{preview}"
        );
        let (status, refused) = post(
            &client,
            app.url(&format!("{base}/publish")),
            &[("csrf", &csrf), ("document", &broken.to_string())],
        )
        .await;
        assert_eq!(status, 422, "{mode:?}: {refused}");
        assert!(
            app.store
                .mapping_versions(tenant, pair, "orders")
                .await
                .unwrap()
                .is_empty()
        );
        // Malformed JSON is a clear problem too, not a server error.
        let (status, malformed) = post(
            &client,
            app.url(&format!("{base}/publish")),
            &[("csrf", &csrf), ("document", "{\"rules\": [")],
        )
        .await;
        assert_eq!(status, 422);
        assert!(
            malformed["problems"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("not JSON")
        );

        // A draft keeps unfinished work, problems and all.
        let (status, saved) = post(
            &client,
            app.url(&format!("{base}/draft")),
            &[("csrf", &csrf), ("document", &broken.to_string())],
        )
        .await;
        assert_eq!((status, &saved["saved"]), (200, &json!(true)), "{saved}");
        assert!(saved["problems"].to_string().contains("skew"), "{saved}");
        let page = client
            .get(app.url(&base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("editing draft"),
            "{mode:?}: reopens on the draft"
        );

        // Publishing makes v1 what runs use, drops the draft and is audited.
        let (status, published) = post(
            &client,
            app.url(&format!("{base}/publish")),
            &[
                ("csrf", &csrf),
                ("document", &changed.to_string()),
                ("note", "SKU as description"),
            ],
        )
        .await;
        assert_eq!(
            (status, &published["version"]),
            (200, &json!("v1")),
            "{published}"
        );
        assert!(
            app.store
                .mapping_draft(tenant, pair, "orders")
                .await
                .unwrap()
                .is_none()
        );
        let v2_doc = template_with("SalesOrderLines.LineDescription", "line_items[].title");
        let (_, published) = post(
            &client,
            app.url(&format!("{base}/publish")),
            &[("csrf", &csrf), ("document", &v2_doc.to_string())],
        )
        .await;
        assert_eq!(published["version"], "v2");
        let audit = app.store.tenant_audit_log(tenant, 50).await.unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.action == "mapping.published")
                .count(),
            2,
            "{mode:?}"
        );

        // The diff names the changed rule; roll-back publishes a copy of v1 as v3.
        let diff = client
            .get(app.url(&format!("{base}/diff?from=v1&to=v2")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            diff.contains("SalesOrderLines.LineDescription") && diff.contains("diff-changed"),
            "{mode:?}"
        );
        assert!(diff.contains("line_items[].title"));
        let odd = client
            .get(app.url(&format!("{base}/diff?from=v99&to=nonsense")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            odd.status(),
            422,
            "{mode:?}: unknown versions are a message, not a 500"
        );
        let back = client
            .post(app.url(&format!("{base}/rollback")))
            .form(&[("csrf", csrf.as_str()), ("version", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(back.status(), 303, "back to the mapper");
        let newest = app
            .store
            .published_mapping(tenant, pair, "orders")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(newest.version, 3);
        assert_eq!(newest.document, changed, "{mode:?}: v3 is v1's document");
        assert_eq!(newest.note.as_deref(), Some("roll back to v1"));
        let first = app
            .store
            .mapping_version(tenant, pair, "orders", 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            first.note.as_deref(),
            Some("SKU as description"),
            "v1 is untouched"
        );

        // A viewer may look and preview but not change anything.
        let viewer = unique_email("viewer");
        app.user(&viewer, Some((tenant, Role::Viewer)), false).await;
        let viewer_client = app.session(&viewer).await;
        let viewer_csrf = app.csrf(&viewer_client).await;
        assert_eq!(
            viewer_client
                .get(app.url(&base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let (status, _) = post(
            &viewer_client,
            app.url(&format!("{base}/publish")),
            &[("csrf", &viewer_csrf), ("document", &v2_doc.to_string())],
        )
        .await;
        assert_eq!(status, 403);
        // A forged form (no CSRF token) changes nothing.
        let (status, _) = post(
            &client,
            app.url(&format!("{base}/publish")),
            &[("document", &v2_doc.to_string())],
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(
            app.store
                .mapping_versions(tenant, pair, "orders")
                .await
                .unwrap()
                .len(),
            3
        );
        // An unknown flow is a 404.
        assert_eq!(
            client
                .get(app.url(&format!("/console/pairs/{pair}/mappings/nonsense")))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
}
