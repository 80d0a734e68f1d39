//! The mapper: per pair and flow, edit a draft mapping, preview it live against a sample or a
//! recent real event, publish immutable versions, compare and roll back.
//!
//! The page is server-rendered; `frontend/static/mapper.js` edits the document in the browser
//! and posts it back as a form field (`document`, JSON) with the session's CSRF token, so the
//! same `CsrfForm` protection guards the JavaScript calls as the plain forms.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use syncline_core::mapping::{MappingDocument, MappingError, preview};
use syncline_core::suggest::suggest_unmapped;
use syncline_core::templates::{Flow, TemplateError};
use syncline_store::{MappingVersion, Pair, PairId, TenantId};

use super::{Chrome, CsrfForm, PageResult, page_err};
use crate::accounts::audit;
use crate::auth::{Actor, ConsoleActor, Permission};
use crate::{AppError, AppState};

/// A pair and flow from the URL, checked against the tenant: anything else is a 404.
async fn pair_and_flow(
    state: &AppState,
    tenant: TenantId,
    pair: &str,
    flow: &str,
) -> Result<(Pair, Flow), AppError> {
    let pair_id: PairId = pair.parse().map_err(|_| AppError::NotFound)?;
    let pair = state
        .store
        .pair(tenant, pair_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let flow = Flow::from_name(flow).ok_or(AppError::NotFound)?;
    Ok((pair, flow))
}

/// What both mapper pages show: the tenant's pair and flow, and its published versions.
async fn viewed(
    state: &AppState,
    actor: &Actor,
    pair: &str,
    flow: &str,
) -> Result<(TenantId, Pair, Flow, Vec<MappingVersion>), AppError> {
    let tenant = actor.require(Permission::View)?.tenant.id;
    let (pair, flow) = pair_and_flow(state, tenant, pair, flow).await?;
    let versions = state
        .store
        .mapping_versions(tenant, pair.id, flow.name())
        .await?;
    Ok((tenant, pair, flow, versions))
}

/// A source field the mapper lists.
#[derive(Serialize)]
struct SourceField {
    path: String,
    #[serde(rename = "type")]
    ty: String,
}

/// A target field the mapper lists.
#[derive(Serialize)]
struct TargetField {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    max_length: Option<u32>,
    required: bool,
    key: bool,
    custom: bool,
    /// Filled by the connector, not the mapping (the company comes from the connection).
    from_connection: bool,
}

/// A target entity and its fields.
#[derive(Serialize)]
struct TargetEntity {
    name: String,
    many: bool,
    fields: Vec<TargetField>,
}

fn type_name(ty: syncline_core::schema::FieldType) -> String {
    serde_json::to_value(ty)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn catalogue(flow: Flow) -> Result<(Vec<SourceField>, Vec<TargetEntity>), AppError> {
    let source = flow
        .source_schema()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let target = flow
        .target_schema()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut sources: Vec<SourceField> = source
        .leaf_paths()
        .into_iter()
        .map(|(path, def)| SourceField {
            path,
            ty: type_name(def.ty),
        })
        .collect();
    sources.push(SourceField {
        path: "$index".into(),
        ty: "integer".into(),
    });
    let targets = target
        .entities()
        .into_iter()
        .map(|(name, many, fields)| TargetEntity {
            name: name.to_owned(),
            many,
            fields: fields
                .iter()
                .map(|(field, def)| TargetField {
                    name: field.clone(),
                    ty: type_name(def.ty),
                    max_length: def.max_length,
                    required: def.required,
                    key: def.key,
                    custom: def.custom,
                    from_connection: field == "dataAreaId",
                })
                .collect(),
        })
        .collect();
    Ok((sources, targets))
}

/// What the editor starts from: the draft, else the newest version, else the template.
struct Current {
    document: Value,
    /// `draft`, `v3` or `default`.
    origin: String,
}

async fn current(
    state: &AppState,
    tenant: TenantId,
    pair: &Pair,
    flow: Flow,
    versions: &[MappingVersion],
) -> Result<Current, AppError> {
    if let Some(draft) = state
        .store
        .mapping_draft(tenant, pair.id, flow.name())
        .await?
    {
        return Ok(Current {
            document: draft.document,
            origin: "draft".into(),
        });
    }
    if let Some(newest) = versions.first() {
        return Ok(Current {
            document: newest.document.clone(),
            origin: newest.label(),
        });
    }
    Ok(Current {
        document: template_value(flow)?,
        origin: "default".into(),
    })
}

fn template_value(flow: Flow) -> Result<Value, AppError> {
    serde_json::from_str(flow.template_json()).map_err(|e| AppError::Internal(e.to_string()))
}

/// JSON for a `<script type="application/json">` block: `<` escaped so no text in it can
/// close the element.
fn script_json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
}

/// One row of the version history.
pub(crate) struct VersionRow {
    pub version: i64,
    pub label: String,
    pub note: String,
    pub published_at: String,
    pub current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "mapper.html")]
struct MapperPage {
    chrome: Chrome,
    pair: Pair,
    flow: String,
    origin: String,
    published: String,
    versions: Vec<VersionRow>,
    can_edit: bool,
    data: String,
}

/// `GET /console/pairs/{pair_id}/mappings/{flow}`
pub(crate) async fn mapper_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path((pair, flow)): Path<(String, String)>,
) -> PageResult {
    let (tenant, pair, flow, versions) = viewed(&state, &actor, &pair, &flow)
        .await
        .map_err(page_err)?;
    let current = current(&state, tenant, &pair, flow, &versions)
        .await
        .map_err(page_err)?;
    let (sources, targets) = catalogue(flow).map_err(page_err)?;
    let suggestions = suggestions(flow, &current.document);
    let has_recent = match topic_prefix(flow) {
        Some(prefix) => state
            .store
            .latest_inbox_event(tenant, pair.shopify_connection_id, prefix)
            .await
            .map_err(|e| page_err(e.into()))?
            .is_some(),
        None => false,
    };
    let samples: Vec<(&str, &str)> = [
        flow.sample_json()
            .map(|_| ("fixture", "Sample order (public fixture)")),
        has_recent.then_some(("recent", "Most recent real event")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let base = format!("/console/pairs/{}/mappings/{}", pair.id, flow.name());
    let data = script_json(&json!({
        "flow": flow.name(),
        "base": base,
        "document": current.document,
        "sources": sources,
        "targets": targets,
        "suggestions": suggestions,
        "samples": samples.iter().map(|(id, label)| json!({"id": id, "label": label})).collect::<Vec<_>>(),
        "palette": PALETTE,
    }));
    let published = versions.first().map(MappingVersion::label);
    let rows = versions
        .iter()
        .map(|v| VersionRow {
            version: v.version,
            label: v.label(),
            note: v.note.clone().unwrap_or_default(),
            published_at: v.published_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            current: Some(v.label()) == published,
        })
        .collect();
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    let page = MapperPage {
        can_edit: chrome.can_manage,
        chrome,
        flow: flow.name().to_owned(),
        origin: current.origin,
        published: published.unwrap_or_else(|| "the default template".into()),
        versions: rows,
        data,
        pair,
    };
    Ok(page.into_response())
}

/// Transforms the side panel offers, with the arguments a new one starts with.
const PALETTE: &[(&str, &str)] = &[
    ("trim", r#"{"op":"trim"}"#),
    ("upper", r#"{"op":"upper"}"#),
    ("lower", r#"{"op":"lower"}"#),
    ("truncate", r#"{"op":"truncate"}"#),
    ("required", r#"{"op":"required"}"#),
    ("default", r#"{"op":"default","value":""}"#),
    ("round", r#"{"op":"round","places":2}"#),
    ("sum", r#"{"op":"sum"}"#),
    ("date_format", r#"{"op":"date_format"}"#),
    ("lookup", r#"{"op":"lookup","table":""}"#),
    ("concat", r#"{"op":"concat","with":[]}"#),
    ("split", r#"{"op":"split","part":"first_name"}"#),
];

fn topic_prefix(flow: Flow) -> Option<&'static str> {
    match flow {
        Flow::Orders => Some("orders/"),
        Flow::Customers => Some("customers/"),
        Flow::Refunds => Some("refunds/"),
        _ => None,
    }
}

/// Auto-mapping proposals for the targets the document leaves unmapped.
fn suggestions(flow: Flow, document: &Value) -> Vec<Value> {
    let (Ok(source), Ok(target)) = (flow.source_schema(), flow.target_schema()) else {
        return Vec::new();
    };
    let mapped: Vec<String> = document["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["target"].as_str().map(str::to_owned))
        .collect();
    let mut out: Vec<Value> = suggest_unmapped(&source, &target, &mapped, 1)
        .into_iter()
        // Weak name matches are noise that buries the useful proposals.
        .filter(|s| s.score >= 0.7 && !s.source.starts_with("syncline."))
        .map(|s| json!({"target": s.target, "source": s.source, "score": (s.score * 100.0).round() / 100.0}))
        .collect();
    out.truncate(12);
    out
}

/// The editor's form: the document as JSON text, and for previews the sample to use.
#[derive(Deserialize)]
pub(crate) struct DocumentForm {
    #[serde(default)]
    document: String,
    #[serde(default)]
    sample: String,
    #[serde(default)]
    note: String,
}

/// A compile problem as the editor shows it.
#[derive(Serialize)]
struct Problem {
    rule: String,
    target: String,
    path: Option<String>,
    reason: String,
}

impl From<&MappingError> for Problem {
    fn from(e: &MappingError) -> Self {
        Problem {
            rule: e.rule.clone(),
            target: e.target.clone(),
            path: e.path.clone(),
            reason: e.reason.clone(),
        }
    }
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn json_app_error(error: AppError) -> Response {
    error.log_if_internal();
    json_error(error.status(), error.public_message())
}

/// Parses the posted document: a shape error is one problem naming the JSON position.
fn parse_document(text: &str, flow: Flow) -> Result<(Value, MappingDocument), Vec<Problem>> {
    let problem = |reason: String| {
        vec![Problem {
            rule: "document".into(),
            target: String::new(),
            path: None,
            reason,
        }]
    };
    let value: Value = serde_json::from_str(text).map_err(|e| problem(format!("not JSON: {e}")))?;
    let doc: MappingDocument = serde_json::from_value(value.clone())
        .map_err(|e| problem(format!("not a mapping document: {e}")))?;
    if doc.flow != flow.name() {
        return Err(problem(format!(
            "the document is for the {} flow, not {}",
            doc.flow,
            flow.name()
        )));
    }
    Ok((value, doc))
}

fn compile_problems(flow: Flow, doc: &MappingDocument) -> Result<(), Vec<Problem>> {
    match flow.compile_document(doc) {
        Ok(_) => Ok(()),
        Err(TemplateError::Compile(errors)) => Err(errors.iter().map(Problem::from).collect()),
        Err(other) => Err(vec![Problem {
            rule: "document".into(),
            target: String::new(),
            path: None,
            reason: other.to_string(),
        }]),
    }
}

/// `POST …/preview`: compiles the draft and applies it to the chosen sample.
pub(crate) async fn preview_draft(
    State(state): State<AppState>,
    Path((pair, flow)): Path<(String, String)>,
    CsrfForm(actor, form): CsrfForm<DocumentForm>,
) -> Response {
    match preview_inner(&state, &actor, &pair, &flow, &form).await {
        Ok(response) => response,
        Err(error) => json_app_error(error),
    }
}

async fn preview_inner(
    state: &AppState,
    actor: &Actor,
    pair: &str,
    flow: &str,
    form: &DocumentForm,
) -> Result<Response, AppError> {
    let tenant = actor.require(Permission::View)?.tenant.id;
    let (pair, flow) = pair_and_flow(state, tenant, pair, flow).await?;
    let (_, doc) = match parse_document(&form.document, flow) {
        Ok(parsed) => parsed,
        Err(problems) => {
            return Ok(Json(json!({ "ok": false, "problems": problems })).into_response());
        }
    };
    let compiled = match flow.compile_document(&doc) {
        Ok(compiled) => compiled,
        Err(TemplateError::Compile(errors)) => {
            let problems: Vec<Problem> = errors.iter().map(Problem::from).collect();
            return Ok(Json(json!({ "ok": false, "problems": problems })).into_response());
        }
        Err(other) => return Err(AppError::Internal(other.to_string())),
    };
    let (sample, sample_label) = sample(state, tenant, &pair, flow, &form.sample).await?;
    let mut source = sample;
    if let Value::Object(map) = &mut source {
        // What the runner adds before mapping, so previews match real runs; the account is
        // only known at run time (found or created in D365).
        map.entry("syncline").or_insert_with(
            || json!({ "customer_account": PREVIEW_CUSTOMER_ACCOUNT, "pair": pair.name }),
        );
    }
    let result = preview(&compiled, &source);
    Ok(Json(json!({
        "ok": result.ok,
        "problems": [],
        "sample": sample_label,
        "output": result.output,
        "trace": result.trace,
        "error": result.error,
    }))
    .into_response())
}

/// Stands in for the customer account a run finds or creates (fits D365's 20 characters).
const PREVIEW_CUSTOMER_ACCOUNT: &str = "PREVIEW-CUSTOMER";

async fn sample(
    state: &AppState,
    tenant: TenantId,
    pair: &Pair,
    flow: Flow,
    which: &str,
) -> Result<(Value, String), AppError> {
    if which == "recent"
        && let Some(prefix) = topic_prefix(flow)
        && let Some(event) = state
            .store
            .latest_inbox_event(tenant, pair.shopify_connection_id, prefix)
            .await?
        && let Ok(value) = serde_json::from_slice::<Value>(&event.payload)
    {
        let label = format!(
            "{} received {}",
            event.topic,
            event.received_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        return Ok((value, label));
    }
    let text = flow.sample_json().ok_or_else(|| {
        AppError::invalid("sample", "This flow reads from D365 and has no sample yet.")
    })?;
    let value = serde_json::from_str(text).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((value, "sample order (public fixture)".into()))
}

/// `POST …/draft`: saves the editor's document; compile problems are reported, not refused,
/// so unfinished work is never lost.
pub(crate) async fn save_draft(
    State(state): State<AppState>,
    Path((pair, flow)): Path<(String, String)>,
    CsrfForm(actor, form): CsrfForm<DocumentForm>,
) -> Response {
    let result: Result<Response, AppError> = async {
        let context = actor.require(Permission::Manage)?;
        let tenant = context.tenant.id;
        let (pair, flow) = pair_and_flow(&state, tenant, &pair, &flow).await?;
        let (value, doc) = match parse_document(&form.document, flow) {
            Ok(parsed) => parsed,
            Err(problems) => {
                return Ok((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "saved": false, "problems": problems })),
                )
                    .into_response());
            }
        };
        state
            .store
            .save_mapping_draft(
                tenant,
                pair.id,
                flow.name(),
                &value,
                actor.user.as_ref().map(|u| u.id),
            )
            .await?;
        let problems = compile_problems(flow, &doc).err().unwrap_or_default();
        Ok(Json(json!({ "saved": true, "problems": problems })).into_response())
    }
    .await;
    result.unwrap_or_else(json_app_error)
}

/// `POST …/publish`: the document becomes the next immutable version, which runs use from
/// then on. Refused with every problem when it does not compile.
pub(crate) async fn publish(
    State(state): State<AppState>,
    Path((pair, flow)): Path<(String, String)>,
    CsrfForm(actor, form): CsrfForm<DocumentForm>,
) -> Response {
    let result: Result<Response, AppError> = async {
        let context = actor.require(Permission::Manage)?;
        let tenant = context.tenant.id;
        let (pair, flow) = pair_and_flow(&state, tenant, &pair, &flow).await?;
        let checked = parse_document(&form.document, flow)
            .and_then(|(value, doc)| compile_problems(flow, &doc).map(|()| value));
        let value = match checked {
            Ok(value) => value,
            Err(problems) => {
                return Ok((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "published": false, "problems": problems })),
                )
                    .into_response());
            }
        };
        let note = form.note.trim();
        let note = (!note.is_empty()).then(|| note.chars().take(200).collect::<String>());
        let version = state
            .store
            .publish_mapping(
                tenant,
                pair.id,
                flow.name(),
                &value,
                note.as_deref(),
                actor.user.as_ref().map(|u| u.id),
            )
            .await?;
        audit(
            &state.store,
            Some(tenant),
            &actor.label(),
            "mapping.published",
            json!({ "pair_id": pair.id, "flow": flow.name(), "version": version.version }),
        )
        .await;
        Ok(Json(json!({ "published": true, "version": version.label() })).into_response())
    }
    .await;
    result.unwrap_or_else(json_app_error)
}

/// A version number from a form or query.
#[derive(Deserialize)]
pub(crate) struct VersionForm {
    #[serde(default)]
    version: String,
}

/// `POST …/rollback`: publishes a copy of an older version as the newest, so history stays
/// immutable and the roll-back itself is on record.
pub(crate) async fn rollback(
    State(state): State<AppState>,
    Path((pair, flow)): Path<(String, String)>,
    CsrfForm(actor, form): CsrfForm<VersionForm>,
) -> Response {
    let result: Result<Response, AppError> = async {
        let context = actor.require(Permission::Manage)?;
        let tenant = context.tenant.id;
        let (pair, flow) = pair_and_flow(&state, tenant, &pair, &flow).await?;
        let number: i64 = form
            .version
            .trim()
            .trim_start_matches('v')
            .parse()
            .map_err(|_| AppError::invalid("version", "Choose a version to roll back to."))?;
        let old = state
            .store
            .mapping_version(tenant, pair.id, flow.name(), number)
            .await?
            .ok_or(AppError::NotFound)?;
        let note = format!("roll back to {}", old.label());
        let version = state
            .store
            .publish_mapping(
                tenant,
                pair.id,
                flow.name(),
                &old.document,
                Some(&note),
                actor.user.as_ref().map(|u| u.id),
            )
            .await?;
        audit(
            &state.store,
            Some(tenant),
            &actor.label(),
            "mapping.rolled_back",
            json!({ "pair_id": pair.id, "flow": flow.name(), "to": old.version, "version": version.version }),
        )
        .await;
        Ok(Redirect::to(&format!("/console/pairs/{}/mappings/{}", pair.id, flow.name())).into_response())
    }
    .await;
    result.unwrap_or_else(super::error_page)
}

/// `POST …/discard`: drops the draft; the editor reopens on the published version.
pub(crate) async fn discard(
    State(state): State<AppState>,
    Path((pair, flow)): Path<(String, String)>,
    CsrfForm(actor, _form): CsrfForm<VersionForm>,
) -> Response {
    let result: Result<Response, AppError> = async {
        let context = actor.require(Permission::Manage)?;
        let tenant = context.tenant.id;
        let (pair, flow) = pair_and_flow(&state, tenant, &pair, &flow).await?;
        state
            .store
            .discard_mapping_draft(tenant, pair.id, flow.name())
            .await?;
        Ok(Redirect::to(&format!(
            "/console/pairs/{}/mappings/{}",
            pair.id,
            flow.name()
        ))
        .into_response())
    }
    .await;
    result.unwrap_or_else(super::error_page)
}

/// Which two documents to compare.
#[derive(Deserialize)]
pub(crate) struct DiffQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// One changed target between two versions.
pub(crate) struct DiffRow {
    pub target: String,
    pub change: &'static str,
    pub before: String,
    pub after: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mapping_diff.html")]
struct DiffPage {
    chrome: Chrome,
    pair: Pair,
    flow: String,
    from: String,
    to: String,
    choices: Vec<String>,
    rows: Vec<DiffRow>,
    tables_changed: Vec<String>,
    error: String,
}

/// `GET …/diff?from=v1&to=v3`: rule by rule, what changed between two versions (`default`
/// and `draft` are accepted too).
pub(crate) async fn diff_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path((pair, flow)): Path<(String, String)>,
    Query(query): Query<DiffQuery>,
) -> PageResult {
    let (tenant, pair, flow, versions) = viewed(&state, &actor, &pair, &flow)
        .await
        .map_err(page_err)?;
    let draft = state
        .store
        .mapping_draft(tenant, pair.id, flow.name())
        .await
        .map_err(|e| page_err(e.into()))?;
    let mut choices: Vec<String> = versions.iter().map(MappingVersion::label).collect();
    if draft.is_some() {
        choices.insert(0, "draft".into());
    }
    choices.push("default".into());
    let pick = |label: &str| -> Option<Value> {
        match label {
            "default" => template_value(flow).ok(),
            "draft" => draft.as_ref().map(|d| d.document.clone()),
            other => versions
                .iter()
                .find(|v| v.label() == other)
                .map(|v| v.document.clone()),
        }
    };
    let from = if query.from.is_empty() {
        versions
            .get(1)
            .map(MappingVersion::label)
            .unwrap_or_else(|| "default".into())
    } else {
        query.from.clone()
    };
    let to = if query.to.is_empty() {
        choices.first().cloned().unwrap_or_else(|| "default".into())
    } else {
        query.to.clone()
    };
    let (rows, tables_changed, error) = match (pick(&from), pick(&to)) {
        (Some(a), Some(b)) => {
            let (rows, tables) = diff(&a, &b);
            (rows, tables, String::new())
        }
        _ => (
            Vec::new(),
            Vec::new(),
            "Choose two versions that exist.".to_owned(),
        ),
    };
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = DiffPage {
        chrome,
        pair,
        flow: flow.name().to_owned(),
        from,
        to,
        choices,
        rows,
        tables_changed,
        error,
    };
    Ok((status, page).into_response())
}

/// A rule as one line of text: source, then its transforms.
fn describe_rule(rule: &Value) -> String {
    let source = match rule["source"].as_object().and_then(|o| o.iter().next()) {
        Some((kind, value)) => match value.as_str() {
            Some(text) if kind == "path" => text.to_owned(),
            Some(text) => format!("{kind}: {text}"),
            None => format!("{kind}: {value}"),
        },
        None => "(no source)".into(),
    };
    let transforms: Vec<String> = rule["transforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let op = t["op"].as_str().unwrap_or("?");
            let args: Vec<String> = t
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "op")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if args.is_empty() {
                op.to_owned()
            } else {
                format!("{op}({})", args.join(", "))
            }
        })
        .collect();
    if transforms.is_empty() {
        source
    } else {
        format!("{source} → {}", transforms.join(" → "))
    }
}

fn rules_by_target(doc: &Value) -> BTreeMap<String, String> {
    doc["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            r["target"]
                .as_str()
                .map(|t| (t.to_owned(), describe_rule(r)))
        })
        .collect()
}

/// Rule-level differences and the names of value tables that differ.
fn diff(a: &Value, b: &Value) -> (Vec<DiffRow>, Vec<String>) {
    let (before, after) = (rules_by_target(a), rules_by_target(b));
    let mut rows = Vec::new();
    for (target, old) in &before {
        match after.get(target) {
            None => rows.push(DiffRow {
                target: target.clone(),
                change: "removed",
                before: old.clone(),
                after: String::new(),
            }),
            Some(new) if new != old => rows.push(DiffRow {
                target: target.clone(),
                change: "changed",
                before: old.clone(),
                after: new.clone(),
            }),
            Some(_) => {}
        }
    }
    for (target, new) in &after {
        if !before.contains_key(target) {
            rows.push(DiffRow {
                target: target.clone(),
                change: "added",
                before: String::new(),
                after: new.clone(),
            });
        }
    }
    rows.sort_by(|x, y| x.target.cmp(&y.target));
    let empty = serde_json::Map::new();
    let tables_a = a["value_tables"].as_object().unwrap_or(&empty);
    let tables_b = b["value_tables"].as_object().unwrap_or(&empty);
    let mut tables: Vec<String> = tables_a
        .keys()
        .chain(tables_b.keys())
        .filter(|k| tables_a.get(*k) != tables_b.get(*k))
        .cloned()
        .collect();
    tables.sort();
    tables.dedup();
    (rows, tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_added_removed_and_changed_rules() {
        let a = json!({"rules": [
            {"target": "H.A", "source": {"path": "name"}},
            {"target": "H.B", "source": {"path": "email"}, "transforms": [{"op": "lower"}]},
        ], "value_tables": {"t": {"x": 1}}});
        let b = json!({"rules": [
            {"target": "H.B", "source": {"path": "email"}, "transforms": [{"op": "upper"}]},
            {"target": "H.C", "source": {"const": "X"}},
        ], "value_tables": {"t": {"x": 2}}});
        let (rows, tables) = diff(&a, &b);
        let summary: Vec<(&str, &str)> =
            rows.iter().map(|r| (r.target.as_str(), r.change)).collect();
        assert_eq!(
            summary,
            vec![("H.A", "removed"), ("H.B", "changed"), ("H.C", "added")]
        );
        assert_eq!(rows[1].after, "email → upper");
        assert_eq!(tables, vec!["t".to_owned()]);
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let text = script_json(&json!({"x": "</script><script>alert(1)</script>"}));
        assert!(!text.contains("</"), "{text}");
    }
}
