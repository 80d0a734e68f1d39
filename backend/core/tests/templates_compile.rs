//! Every default template compiles against its schemas.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use syncline_core::templates::Flow;

#[test]
fn every_default_template_compiles() {
    for f in Flow::ALL {
        if let Err(e) = f.compile_default() {
            panic!("{f:?}: {e}");
        }
    }
}

#[test]
fn compiled_mappings_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<syncline_core::mapping::CompiledMapping>();
    assert_send_sync::<syncline_core::mapping::Output>();
    let m = std::sync::Arc::new(Flow::Payments.compile_default().unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let m = std::sync::Arc::clone(&m);
            std::thread::spawn(move || {
                let t = serde_json::json!({"id": i, "kind": "sale", "amount": "1.50", "created_at": "2024-01-01T00:00:00Z"});
                syncline_core::mapping::apply_value(&m, &t).unwrap().to_value()
            })
        })
        .collect();
    for h in handles {
        let v = h.join().unwrap();
        assert_eq!(
            v["CustomerPaymentJournalLines"]["CreditAmount"],
            serde_json::json!(1.50)
        );
    }
}
