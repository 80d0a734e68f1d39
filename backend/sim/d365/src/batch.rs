//! OData `$batch` (multipart/mixed): top-level operations and atomic
//! changesets with `Content-ID` references, per-operation statuses, and
//! service-protection 429s inside the batch.
//!
//! The multipart text is split by hand: the parts are nested `multipart/mixed`
//! documents whose bodies are raw HTTP messages, which form-data parsers such
//! as multer do not model.

use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode};

use crate::odata::{Ctx, OpResponse, execute};
use crate::store::Undo;
use crate::{Shared, lock};

/// One part of a multipart body.
#[derive(Debug)]
struct Part {
    headers: Vec<(String, String)>,
    body: String,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The `boundary` parameter of a multipart content type.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn split_head(text: &str) -> (Vec<(String, String)>, String) {
    let text = text.trim_start_matches(['\r', '\n']);
    let (head, body) = match (text.find("\r\n\r\n"), text.find("\n\n")) {
        (Some(a), Some(b)) if b < a => (&text[..b], &text[b + 2..]),
        (Some(a), _) => (&text[..a], &text[a + 4..]),
        (None, Some(b)) => (&text[..b], &text[b + 2..]),
        (None, None) => (text, ""),
    };
    let headers = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (headers, body.to_string())
}

fn split_multipart(body: &str, boundary: &str) -> Vec<Part> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut chunks = body.split(delim.as_str());
    chunks.next(); // preamble
    for chunk in chunks {
        if chunk.starts_with("--") {
            break;
        }
        // The line break before a delimiter belongs to the delimiter.
        let chunk = chunk
            .strip_suffix("\r\n")
            .or_else(|| chunk.strip_suffix('\n'))
            .unwrap_or(chunk);
        let (headers, body) = split_head(chunk);
        parts.push(Part { headers, body });
    }
    parts
}

/// One HTTP request inside the batch.
#[derive(Debug)]
struct Request {
    content_id: Option<String>,
    method: Method,
    url: String,
    prefer: Option<String>,
    ieee754: bool,
    if_match: Option<String>,
    body: String,
}

fn parse_request(part: &Part) -> Option<Request> {
    let text = part.body.trim_start_matches(['\r', '\n']);
    let (line, rest) = text.split_once('\n').unwrap_or((text, ""));
    let mut words = line.split_whitespace();
    let method = Method::from_bytes(words.next()?.as_bytes()).ok()?;
    let url = words.next()?.to_string();
    let (headers, body) = split_head(&format!("\n{rest}"));
    let prefer = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Prefer"))
        .map(|(_, v)| v.clone());
    let media = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let ieee754 = crate::odata::wants_ieee754(media("Accept"))
        || crate::odata::wants_ieee754(media("Content-Type"));
    Some(Request {
        content_id: part.header("Content-ID").map(str::to_string),
        method,
        url,
        prefer,
        ieee754,
        if_match: media("If-Match").map(str::to_string),
        body: body.trim_end_matches(['\r', '\n']).to_string(),
    })
}

/// Turns an operation URL into the part after `/data/`, resolving `$n` references.
fn relative_target(url: &str, ids: &[(String, String)], base: &str) -> String {
    let mut url = url.to_string();
    if let Some(rest) = url.strip_prefix('$') {
        let (id, tail) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
        if let Some((_, target)) = ids.iter().find(|(cid, _)| cid == id) {
            url = if tail.is_empty() {
                target.clone()
            } else {
                format!("{target}/{tail}")
            };
            // The referenced entity may live in another company (its body
            // named one); the reference must reach it all the same.
            if !url.contains('?') {
                url.push_str("?cross-company=true");
            }
        }
    }
    let url = url.strip_prefix(base).unwrap_or(&url).to_string();
    if let Some(i) = url.find("/data/") {
        return url[i + 6..].to_string();
    }
    url.trim_start_matches('/').to_string()
}

fn render(r: &OpResponse, content_id: Option<&str>) -> String {
    let mut s =
        String::from("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if let Some(id) = content_id {
        s.push_str(&format!("Content-ID: {id}\r\n"));
    }
    s.push_str(&format!(
        "\r\nHTTP/1.1 {} {}\r\n",
        r.status.as_u16(),
        r.status.canonical_reason().unwrap_or("")
    ));
    for (k, v) in &r.headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("OData-Version: 4.0\r\n\r\n");
    s.push_str(&String::from_utf8_lossy(&r.body));
    s.push_str("\r\n");
    s
}

/// Handles `POST /data/$batch`. Returns the status, content type and body.
pub fn handle(
    shared: &Arc<Shared>,
    client: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, String, Vec<u8>) {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(outer) =
        boundary(ct).filter(|_| ct.to_ascii_lowercase().starts_with("multipart/mixed"))
    else {
        let e = OpResponse::error(
            StatusCode::BAD_REQUEST,
            "The batch request must have a 'Content-Type' header of 'multipart/mixed' with a boundary.",
        );
        return (e.status, crate::odata::JSON_CT.into(), e.body);
    };
    let text = String::from_utf8_lossy(body);
    let response_boundary = format!("batchresponse_{}", uuid::Uuid::new_v4());
    let mut out = String::new();
    let base = shared.base_url.clone();
    let default_company = shared.default_company();
    let page_size = shared.page_size();
    for part in split_multipart(&text, &outer) {
        out.push_str(&format!("--{response_boundary}\r\n"));
        let part_ct = part.header("Content-Type").unwrap_or("").to_string();
        if part_ct.to_ascii_lowercase().starts_with("multipart/mixed") {
            let Some(inner) = boundary(&part_ct) else {
                let e = OpResponse::error(StatusCode::BAD_REQUEST, "Changeset without boundary.");
                out.push_str(&render(&e, None));
                continue;
            };
            let requests: Vec<Option<Request>> = split_multipart(&part.body, &inner)
                .iter()
                .map(parse_request)
                .collect();
            let mut store = lock(&shared.store);
            let mut undo: Vec<Undo> = Vec::new();
            let mut ids: Vec<(String, String)> = Vec::new();
            let mut responses: Vec<(OpResponse, Option<String>)> = Vec::new();
            let mut failed: Option<(OpResponse, Option<String>)> = None;
            for req in requests {
                let Some(req) = req else {
                    failed = Some((
                        OpResponse::error(
                            StatusCode::BAD_REQUEST,
                            "Malformed operation in changeset.",
                        ),
                        None,
                    ));
                    break;
                };
                if req.method == Method::GET {
                    failed = Some((
                        OpResponse::error(
                            StatusCode::BAD_REQUEST,
                            "A changeset cannot contain GET requests.",
                        ),
                        req.content_id.clone(),
                    ));
                    break;
                }
                // Bind first: a guard in an `if let`/`match` scrutinee lives
                // through the arms, and the store lock is taken in them.
                let charged = lock(&shared.throttle).charge(client);
                if let Err(wait) = charged {
                    failed = Some((OpResponse::throttled(wait), req.content_id.clone()));
                    break;
                }
                let ctx = Ctx {
                    base_url: &base,
                    default_company: &default_company,
                    page_size,
                    prefer: req.prefer.as_deref(),
                    ieee754: req.ieee754,
                    if_match: req.if_match.as_deref(),
                };
                let target = relative_target(&req.url, &ids, &base);
                let (resp, url) = execute(
                    &ctx,
                    &mut store,
                    &req.method,
                    &target,
                    req.body.as_bytes(),
                    &mut undo,
                );
                if !resp.ok() {
                    failed = Some((resp, req.content_id.clone()));
                    break;
                }
                if let (Some(id), Some(url)) = (&req.content_id, url) {
                    ids.push((id.clone(), url));
                }
                responses.push((resp, req.content_id));
            }
            if let Some((resp, cid)) = failed {
                store.undo(undo);
                drop(store);
                out.push_str(&render(&resp, cid.as_deref()));
                continue;
            }
            drop(store);
            let cs = format!("changesetresponse_{}", uuid::Uuid::new_v4());
            out.push_str(&format!(
                "Content-Type: multipart/mixed; boundary={cs}\r\n\r\n"
            ));
            for (resp, cid) in &responses {
                out.push_str(&format!("--{cs}\r\n"));
                out.push_str(&render(resp, cid.as_deref()));
            }
            out.push_str(&format!("--{cs}--\r\n"));
        } else {
            let Some(req) = parse_request(&part) else {
                let e = OpResponse::error(StatusCode::BAD_REQUEST, "Malformed batch operation.");
                out.push_str(&render(&e, None));
                continue;
            };
            let charged = lock(&shared.throttle).charge(client);
            let resp = match charged {
                Err(wait) => OpResponse::throttled(wait),
                Ok(()) => {
                    let ctx = Ctx {
                        base_url: &base,
                        default_company: &default_company,
                        page_size,
                        prefer: req.prefer.as_deref(),
                        ieee754: req.ieee754,
                        if_match: req.if_match.as_deref(),
                    };
                    let target = relative_target(&req.url, &[], &base);
                    let mut store = lock(&shared.store);
                    let mut undo = Vec::new();
                    execute(
                        &ctx,
                        &mut store,
                        &req.method,
                        &target,
                        req.body.as_bytes(),
                        &mut undo,
                    )
                    .0
                }
            };
            out.push_str(&render(&resp, req.content_id.as_deref()));
        }
    }
    out.push_str(&format!("--{response_boundary}--\r\n"));
    (
        StatusCode::OK,
        format!("multipart/mixed; boundary={response_boundary}"),
        out.into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nested_parts() {
        let body = "--batch_1\r\nContent-Type: multipart/mixed; boundary=changeset_2\r\n\r\n--changeset_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\nPOST https://h/data/CustomerGroups HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\r\n--changeset_2--\r\n--batch_1\r\nContent-Type: application/http\r\n\r\nGET CustomerGroups?$top=1 HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--batch_1--\r\n";
        let parts = split_multipart(body, "batch_1");
        assert_eq!(parts.len(), 2);
        let inner = boundary(parts[0].header("Content-Type").unwrap_or("")).expect("boundary");
        let ops = split_multipart(&parts[0].body, &inner);
        assert_eq!(ops.len(), 1);
        let r = parse_request(&ops[0]).expect("request");
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.content_id.as_deref(), Some("1"));
        assert_eq!(r.body, "{\"a\":1}");
        let g = parse_request(&parts[1]).expect("request");
        assert_eq!(g.method, Method::GET);
        assert_eq!(
            relative_target(&g.url, &[], "https://h"),
            "CustomerGroups?$top=1"
        );
        let ids = vec![("1".to_string(), "https://h/data/X(a='b')".to_string())];
        assert_eq!(
            relative_target("$1/SalesOrderLines", &ids, "https://h"),
            "X(a='b')/SalesOrderLines?cross-company=true"
        );
    }
}
