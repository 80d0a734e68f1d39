//! Orders per second per core: the largest order fixture mapped to a D365 sales
//! order document, JSON text in, JSON text out.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use syncline_core::mapping::{CompiledMapping, Source, apply_json, compile};
use syncline_core::templates::Flow;

// The allocator the `syncline` binary uses, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ORDER: &str =
    include_str!("../tests/fixtures/shopify/shopify_webhook_orders_create_2026-07.json");

fn default_mapping() -> CompiledMapping {
    Flow::Orders.compile_default().unwrap()
}

/// The default template with five rules rewritten as CEL expressions (three of
/// them per line, so 17 evaluations per order).
fn cel_mapping() -> CompiledMapping {
    let mut doc = Flow::Orders.default_template().unwrap();
    let exprs = [
        ("SalesOrderHeadersV2.Email", "lower(trim(src.email))"),
        (
            "SalesOrderHeadersV2.SalesOrderName",
            "default(src.shipping_address.name, 'Shopify customer')",
        ),
        ("SalesOrderLines.ItemNumber", "upper(trim(item.sku))"),
        ("SalesOrderLines.SalesPrice", "dec_round(item.price, 2)"),
        (
            "SalesOrderLines.LineDescription",
            "substr(item.name, 0, 1000)",
        ),
    ];
    for (target, e) in exprs {
        let r = doc.rules.iter_mut().find(|r| r.target == target).unwrap();
        r.source = Source::Expr(e.into());
        r.transforms.clear();
    }
    let m = compile(
        &doc,
        &Flow::Orders.source_schema().unwrap(),
        &Flow::Orders.target_schema().unwrap(),
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&apply_json(&m, ORDER).unwrap().to_json())
            .unwrap()["SalesOrderLines"][0]["ItemNumber"],
        "SKU2006-001"
    );
    m
}

/// One constant expression: what handing a document to the evaluator thread costs.
fn one_trivial_expr_mapping() -> CompiledMapping {
    let mut doc = Flow::Orders.default_template().unwrap();
    let r = doc
        .rules
        .iter_mut()
        .find(|r| r.target == "SalesOrderHeadersV2.SalesOrderOriginCode")
        .unwrap();
    r.source = Source::Expr("'SHOPIFY'".into());
    compile(
        &doc,
        &Flow::Orders.source_schema().unwrap(),
        &Flow::Orders.target_schema().unwrap(),
    )
    .unwrap()
}

fn once(m: &CompiledMapping) -> String {
    apply_json(m, black_box(ORDER)).unwrap().to_json()
}

fn per_second(name: &str, mut f: impl FnMut()) {
    for _ in 0..200 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(1500) {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("{name:<48} {rate:>10.0} orders/s on one core");
}

fn report() {
    let plain = default_mapping();
    let cel = cel_mapping();
    println!("order fixture: {} bytes, single thread", ORDER.len());
    per_second("serde_json::Value parse only (reference)", || {
        black_box(serde_json::from_str::<serde_json::Value>(black_box(ORDER)).unwrap());
    });
    per_second("default order template (no expressions)", || {
        black_box(once(&plain));
    });
    per_second("default order template + 5 CEL expressions", || {
        black_box(once(&cel));
    });
    let trivial = one_trivial_expr_mapping();
    per_second("default order template + 1 constant expression", || {
        black_box(once(&trivial));
    });
}

fn benches(c: &mut Criterion) {
    let plain = default_mapping();
    let cel = cel_mapping();
    let mut g = c.benchmark_group("orders_to_sales_order");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("value_parse_reference", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(ORDER)).unwrap())
    });
    g.bench_function("default_template", |b| b.iter(|| once(&plain)));
    g.bench_function("default_template_5_cel", |b| b.iter(|| once(&cel)));
    g.finish();
}

criterion_group!(group, benches);

fn main() {
    // `--profile-time` (criterion's profiling mode) wants only the benchmark itself.
    if !std::env::args().any(|a| a == "--profile-time") {
        report();
    }
    group();
    Criterion::default().configure_from_args().final_summary();
}
