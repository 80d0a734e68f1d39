use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::Redirect;
use axum::routing::get;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(home))
}

/// The console's landing page until the pages of later issues exist.
#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    backend: &'static str,
    dispatcher: &'static str,
    version: &'static str,
}

async fn home(State(state): State<AppState>) -> HomePage {
    HomePage {
        backend: state.store.backend().name(),
        dispatcher: state.dispatcher.name(),
        version: env!("CARGO_PKG_VERSION"),
    }
}
