use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::Embed;

use crate::AppState;

/// `frontend/static`, compiled into the binary so it serves the console with no other files.
#[derive(Embed)]
#[folder = "../../frontend/static/"]
struct StaticFiles;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/static/{*path}", get(serve))
}

async fn serve(Path(path): Path<String>) -> Response {
    match StaticFiles::get(&path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_owned();
            let etag = format!("\"{}\"", hex_prefix(&file.metadata.sha256_hash()));
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::ETAG, etag),
                    (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
                ],
                file.data,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn hex_prefix(hash: &[u8; 32]) -> String {
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
