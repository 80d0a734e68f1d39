//! Contract tests with independent tools: Shopify's official Python
//! library as a REST client, and graphql-core validating our schema and
//! documents against Shopify's 2025-01 introspection. Both need
//! `SYNCLINE_TEST_PYTHON` (a Python with `tests/requirements.txt`); without
//! it they fail, never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::Command;

use serde_json::Value;
use syncline_sim_shopify::ShopifyEmulator;

fn run_python(args: &[&str]) -> (bool, String, String) {
    let py = common::python();
    let out = tokio::task::block_in_place(|| Command::new(&py).args(args).output())
        .unwrap_or_else(|e| panic!("cannot run {py}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_reads_orders_over_rest() {
    let emu = common::start().await;
    let shop = emu.default_shop().to_owned();
    emu.generate_orders(&shop, 4).unwrap();
    let expected: Vec<String> = emu
        .orders(&shop)
        .unwrap()
        .iter()
        .map(|o| o.id.to_string())
        .collect();
    let info = serde_json::to_string(&emu.info()).unwrap();
    let script = common::repo_root().join("tests/contract/shopify_rest_client.py");
    let (ok, stdout, stderr) = run_python(&[script.to_str().unwrap(), &info]);
    assert!(ok, "python client failed:\n{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    let got: Vec<String> = report["order_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        got, expected,
        "the library paged through every order, in order"
    );
    assert!(report["pages"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["credit_limit"], 40);
    let used = report["credit_used"].as_u64().unwrap();
    let requests = emu
        .requests(&shop)
        .unwrap()
        .iter()
        .filter(|r| r.api == "rest")
        .count() as u64;
    assert!(
        (1..=requests).contains(&used),
        "credit_used {used}, {requests} requests"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_and_documents_validate_against_the_2025_01_schema() {
    let dir = std::env::temp_dir().join(format!("sim-shopify-sdl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sdl = dir.join("emulator.graphql");
    std::fs::write(&sdl, ShopifyEmulator::schema_sdl()).unwrap();
    let intro = common::shared_dir().join("fixtures/shopify/schema/admin_schema_2025-01.json.gz");
    assert!(intro.exists(), "missing {}", intro.display());
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/documents");
    let script = common::repo_root().join("tests/contract/shopify_schema_check.py");
    let (ok, stdout, stderr) = run_python(&[
        script.to_str().unwrap(),
        intro.to_str().unwrap(),
        sdl.to_str().unwrap(),
        docs.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "schema check failed:\n{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        report["checked"]["fields"].as_u64().unwrap() > 200,
        "{report}"
    );
    assert!(report["documents"].as_array().unwrap().len() >= 20);
}
