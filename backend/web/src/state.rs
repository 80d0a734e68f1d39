use std::sync::Arc;

use syncline_runner::Dispatcher;
use syncline_store::Store;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// All persistence.
    pub store: Store,
    /// Where new work is announced.
    pub dispatcher: Arc<dyn Dispatcher>,
}

impl AppState {
    /// Bundles the shared services.
    pub fn new(store: Store, dispatcher: Arc<dyn Dispatcher>) -> Self {
        AppState { store, dispatcher }
    }
}
