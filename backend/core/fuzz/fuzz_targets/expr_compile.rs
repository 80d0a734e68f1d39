//! Tenant-authored CEL: the limits, parser and whitelist must never crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncline_core::mapping::{DEFAULT_LIMITS, compile_expr};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(e) = compile_expr(&text, &DEFAULT_LIMITS) {
        let src = serde_json::json!({"name": "#1001", "total_price": "10.50", "line_items": [{"sku": "A", "quantity": 2}]});
        let _ = e.eval_json(&src, None, &DEFAULT_LIMITS);
    }
});
