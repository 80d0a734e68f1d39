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
