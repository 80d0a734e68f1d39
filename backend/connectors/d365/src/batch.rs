//! `$batch`: a builder for `multipart/mixed` requests with atomic changesets,
//! and a parser for the answer (per-operation status, headers and body).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{D365Error, parse_retry_after};
use crate::odata::{JSON_MINIMAL, Key, ODataClient, Query};

/// HTTP method of a batch operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMethod {
    /// Create.
    Post,
    /// Update.
    Patch,
    /// Delete.
    Delete,
    /// Read (outside changesets only).
    Get,
}

impl BatchMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Get => "GET",
        }
    }
}

/// Where an operation points.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// An entity set (POST).
    Set(String),
    /// An entity by key.
    Entity(String, Key),
    /// A collection query.
    Query(Query),
    /// `$n/…`: relative to the entity an earlier operation created.
    Ref(u32, String),
}

#[derive(Debug, Clone, PartialEq)]
struct Operation {
    method: BatchMethod,
    target: Target,
    body: Option<Value>,
    content_id: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Single(Box<Operation>),
    ChangeSet(Vec<Operation>),
}

/// A `$batch` request under construction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    parts: Vec<Part>,
    next_id: u32,
}

/// An atomic group of writes: all succeed or none is kept.
#[derive(Debug)]
pub struct ChangeSet<'a> {
    batch: &'a mut Batch,
    ops: Vec<Operation>,
}

/// A reference to an operation, by its `Content-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRef(pub u32);

fn to_value<B: Serialize>(body: &B) -> Result<Value, D365Error> {
    serde_json::to_value(body).map_err(|e| D365Error::Invalid(e.to_string()))
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// A read outside any changeset.
    pub fn get(&mut self, query: Query) -> OpRef {
        let content_id = self.id();
        self.parts.push(Part::Single(Box::new(Operation {
            method: BatchMethod::Get,
            target: Target::Query(query),
            body: None,
            content_id,
        })));
        OpRef(content_id)
    }

    /// Starts an atomic changeset; finish it with [`ChangeSet::close`].
    pub fn changeset(&mut self) -> ChangeSet<'_> {
        ChangeSet {
            batch: self,
            ops: Vec::new(),
        }
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Single(_) => 1,
                Part::ChangeSet(ops) => ops.len(),
            })
            .sum()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(content type, body)` of the `multipart/mixed` request.
    pub(crate) fn encode(&self, client: &ODataClient) -> (String, Vec<u8>) {
        let batch_boundary = format!("batch_{}", uuid::Uuid::new_v4());
        let mut out = String::new();
        for part in &self.parts {
            let _ = write!(out, "--{batch_boundary}\r\n");
            match part {
                Part::Single(op) => write_op(&mut out, op, client),
                Part::ChangeSet(ops) => {
                    let cs = format!("changeset_{}", uuid::Uuid::new_v4());
                    let _ = write!(out, "Content-Type: multipart/mixed; boundary={cs}\r\n\r\n");
                    for op in ops {
                        let _ = write!(out, "--{cs}\r\n");
                        write_op(&mut out, op, client);
                    }
                    let _ = write!(out, "--{cs}--\r\n");
                }
            }
        }
        let _ = write!(out, "--{batch_boundary}--\r\n");
        (
            format!("multipart/mixed; boundary={batch_boundary}"),
            out.into_bytes(),
        )
    }
}

fn write_op(out: &mut String, op: &Operation, client: &ODataClient) {
    let url = match &op.target {
        Target::Set(set) => format!("{}{set}", client.data_url()),
        Target::Entity(set, key) => {
            format!("{}{}", client.data_url(), client.entity_path(set, key))
        }
        Target::Query(q) => format!(
            "{}{}",
            client.data_url(),
            q.to_relative_url(client.data_area_id())
        ),
        Target::Ref(id, rest) => {
            if rest.is_empty() {
                format!("${id}")
            } else {
                format!("${id}/{rest}")
            }
        }
    };
    let _ = write!(
        out,
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {}\r\n\r\n{} {url} HTTP/1.1\r\nOData-Version: 4.0\r\nAccept: {JSON_MINIMAL}\r\n",
        op.content_id,
        op.method.as_str()
    );
    match &op.body {
        Some(body) => {
            let _ = write!(out, "Content-Type: {JSON_MINIMAL}\r\n\r\n{body}\r\n");
        }
        None => out.push_str("\r\n"),
    }
}

impl ChangeSet<'_> {
    fn push(&mut self, method: BatchMethod, target: Target, body: Option<Value>) -> OpRef {
        let content_id = self.batch.id();
        self.ops.push(Operation {
            method,
            target,
            body,
            content_id,
        });
        OpRef(content_id)
    }

    /// Creates an entity; the default `dataAreaId` is added when missing.
    pub fn create<B: Serialize>(
        &mut self,
        client: &ODataClient,
        entity_set: &str,
        body: &B,
    ) -> Result<OpRef, D365Error> {
        let body = client.with_company(body)?;
        Ok(self.push(
            BatchMethod::Post,
            Target::Set(entity_set.into()),
            Some(body),
        ))
    }

    /// Creates an entity under one created earlier in this changeset
    /// (`POST $n/SalesOrderLines`).
    pub fn create_under<B: Serialize>(
        &mut self,
        parent: OpRef,
        navigation: &str,
        body: &B,
    ) -> Result<OpRef, D365Error> {
        let body = to_value(body)?;
        Ok(self.push(
            BatchMethod::Post,
            Target::Ref(parent.0, navigation.into()),
            Some(body),
        ))
    }

    /// Updates an entity by key.
    pub fn patch<B: Serialize>(
        &mut self,
        entity_set: &str,
        key: Key,
        body: &B,
    ) -> Result<OpRef, D365Error> {
        let body = to_value(body)?;
        Ok(self.push(
            BatchMethod::Patch,
            Target::Entity(entity_set.into(), key),
            Some(body),
        ))
    }

    /// Deletes an entity by key.
    pub fn delete(&mut self, entity_set: &str, key: Key) -> OpRef {
        self.push(
            BatchMethod::Delete,
            Target::Entity(entity_set.into(), key),
            None,
        )
    }

    /// Adds the changeset to the batch.
    pub fn close(self) {
        if !self.ops.is_empty() {
            self.batch.parts.push(Part::ChangeSet(self.ops));
        }
    }
}

/// The answer to one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationResult {
    /// `Content-ID`, when echoed.
    pub content_id: Option<String>,
    /// HTTP status.
    pub status: u16,
    /// Headers of the operation's answer.
    pub headers: Vec<(String, String)>,
    /// Body text (JSON for entities and errors; empty for 204).
    pub body: String,
    /// Index of the changeset it belongs to (in the order of the answer),
    /// `None` for operations outside changesets.
    pub changeset: Option<usize>,
}

impl OperationResult {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The classified error, for a failed operation.
    pub fn error(&self) -> Option<D365Error> {
        if self.is_success() {
            return None;
        }
        let status = reqwest::StatusCode::from_u16(self.status)
            .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
        Some(crate::odata::classify(
            status,
            self.header("Retry-After"),
            self.body.as_bytes(),
            &format!(
                "$batch operation {}",
                self.content_id.as_deref().unwrap_or("?")
            ),
        ))
    }

    /// The body as `T` (e.g. the created entity).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, D365Error> {
        serde_json::from_str(&self.body).map_err(|e| {
            D365Error::Invalid(format!(
                "$batch operation {}: {e}",
                self.content_id.as_deref().unwrap_or("?")
            ))
        })
    }
}

/// The parsed answer to a `$batch`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchResponse {
    /// Every operation answer, in order. A failed changeset answers with
    /// only its failing operation.
    pub operations: Vec<OperationResult>,
}

impl BatchResponse {
    /// The answer to the operation with this `Content-ID`.
    pub fn get(&self, op: OpRef) -> Option<&OperationResult> {
        let id = op.0.to_string();
        self.operations
            .iter()
            .find(|o| o.content_id.as_deref() == Some(id.as_str()))
    }

    /// The first failure, classified (a 429 part is `Throttled` with its `Retry-After`).
    pub fn first_error(&self) -> Option<D365Error> {
        self.operations.iter().find_map(OperationResult::error)
    }

    /// The longest `Retry-After` among throttled parts.
    pub fn retry_after(&self) -> Option<Duration> {
        self.operations
            .iter()
            .filter(|o| o.status == 429)
            .map(|o| {
                o.header("Retry-After")
                    .and_then(parse_retry_after)
                    .unwrap_or(Duration::from_secs(5))
            })
            .max()
    }

    /// `Ok` when every operation succeeded, else the first failure.
    pub fn into_result(self) -> Result<Vec<OperationResult>, D365Error> {
        match self.first_error() {
            Some(e) => Err(e),
            None => Ok(self.operations),
        }
    }

    /// Parses a `multipart/mixed` answer.
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Self, D365Error> {
        let outer = boundary(content_type).ok_or_else(|| {
            D365Error::Invalid(format!(
                "$batch answered `{content_type}` instead of multipart/mixed"
            ))
        })?;
        let text = String::from_utf8_lossy(body);
        let mut out = BatchResponse::default();
        let mut changesets = 0;
        for part in split(&text, &outer) {
            let (headers, rest) = head(part);
            let ct = find(&headers, "Content-Type").unwrap_or_default();
            if ct.to_ascii_lowercase().starts_with("multipart/mixed") {
                let inner = boundary(&ct).ok_or_else(|| {
                    D365Error::Invalid("$batch changeset answer without boundary".into())
                })?;
                for op in split(rest, &inner) {
                    out.operations.push(operation(op, Some(changesets))?);
                }
                changesets += 1;
            } else {
                out.operations.push(operation(part, None)?);
            }
        }
        Ok(out)
    }
}

/// The `boundary` parameter of a content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// The parts between `--boundary` lines (preamble and epilogue dropped).
fn split<'a>(text: &'a str, boundary: &str) -> Vec<&'a str> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = match text.find(&delim) {
        Some(i) => &text[i + delim.len()..],
        None => return parts,
    };
    loop {
        if rest.starts_with("--") {
            break;
        }
        let body_start = rest.find('\n').map_or(rest.len(), |i| i + 1);
        rest = &rest[body_start..];
        let Some(end) = rest.find(&delim) else {
            break;
        };
        let part = rest[..end]
            .strip_suffix("\r\n")
            .or_else(|| rest[..end].strip_suffix('\n'))
            .unwrap_or(&rest[..end]);
        parts.push(part);
        rest = &rest[end + delim.len()..];
    }
    parts
}

/// Headers up to the first blank line, and the rest.
fn head(text: &str) -> (Vec<(String, String)>, &str) {
    let mut headers = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let line = line.trim_end_matches('\r');
        rest = after;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        if after.is_empty() {
            break;
        }
    }
    (headers, rest)
}

fn find(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// One `application/http` part: MIME headers, status line, headers, body.
fn operation(part: &str, changeset: Option<usize>) -> Result<OperationResult, D365Error> {
    let (mime, http) = head(part);
    let http = http.trim_start_matches(['\r', '\n']);
    let (status_line, rest) = http.split_once('\n').unwrap_or((http, ""));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            D365Error::Invalid(format!(
                "$batch part without an HTTP status line: `{}`",
                status_line.trim()
            ))
        })?;
    let (headers, body) = head(rest);
    Ok(OperationResult {
        content_id: find(&mime, "Content-ID").or_else(|| find(&headers, "Content-ID")),
        status,
        headers,
        body: body.trim_end_matches(['\r', '\n']).to_owned(),
        changeset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_changeset_and_single_answers() {
        let body = "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Type: application/json\r\nOData-Version: 4.0\r\n\r\n{\"a\":1.10}\r\n--changesetresponse_2--\r\n--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n{}\r\n--batchresponse_1--\r\n";
        let r = BatchResponse::parse("multipart/mixed; boundary=batchresponse_1", body.as_bytes())
            .unwrap_or_default();
        assert_eq!(r.operations.len(), 2);
        assert_eq!(r.operations[0].status, 201);
        assert_eq!(r.operations[0].changeset, Some(0));
        assert_eq!(r.operations[0].body, "{\"a\":1.10}");
        assert_eq!(r.get(OpRef(2)).map(|o| o.status), Some(429));
        assert_eq!(r.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            r.first_error(),
            Some(D365Error::Throttled {
                retry_after: Duration::from_secs(7)
            })
        );
    }
}
