//! The OpenAPI 3.0 document, generated from the parameter table and the live catalog:
//! each collection gets its own items path listing its property filters with their types.

use super::error::ApiError;
use super::features::with_snapshot;
use super::params::{self, ITEMS_PARAMS};
use super::{AppState, base_url, content_type, html};
use crate::model::{DatasetInfo, FieldType};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

fn param(name: &str, schema: Json, description: &str) -> Json {
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description, "style": "form", "explode": false})
}

/// The JSON Schema of a property type (queryables and OpenAPI alike).
pub fn field_schema(ty: FieldType) -> Json {
    match ty {
        FieldType::Integer => json!({"type": "integer"}),
        FieldType::Number => json!({"type": "number"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Datetime => json!({"type": "string", "format": "date-time"}),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::Month => json!({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}),
        FieldType::String => json!({"type": "string"}),
    }
}

fn items_params(ds: &DatasetInfo) -> Vec<Json> {
    let mut out: Vec<Json> = ITEMS_PARAMS
        .iter()
        .map(|p| {
            param(
                p.name,
                serde_json::from_str(p.schema).unwrap_or(json!({})),
                p.description,
            )
        })
        .collect();
    for f in &ds.fields {
        let schema = field_schema(f.ty);
        out.push(param(
            &f.name,
            schema,
            &format!("Only features whose `{}` equals this value.", f.name),
        ));
    }
    out
}

fn ok(description: &str, types: &[&str]) -> Json {
    let content: serde_json::Map<String, Json> =
        types.iter().map(|t| ((*t).to_owned(), json!({}))).collect();
    json!({"200": {"description": description, "content": content}, "400": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}})
}

/// Builds the document for the current catalog.
pub fn build(base: &str, datasets: &[DatasetInfo]) -> Json {
    let f_only = json!([param(
        "f",
        json!({"type": "string", "enum": ["json", "html"]}),
        "Output format."
    )]);
    let mut paths = serde_json::Map::new();
    let simple = |summary: &str, ty: &[&str]| json!({"get": {"summary": summary, "parameters": f_only, "responses": ok(summary, ty)}});
    paths.insert(
        "/".into(),
        simple("Landing page", &["application/json", "text/html"]),
    );
    paths.insert(
        "/conformance".into(),
        simple("Conformance classes", &["application/json", "text/html"]),
    );
    paths.insert(
        "/collections".into(),
        simple("The collections", &["application/json", "text/html"]),
    );
    for ds in datasets {
        let id = ds.id.as_str();
        paths.insert(
            format!("/collections/{id}"),
            simple(
                &format!("About {}", ds.meta.title),
                &["application/json", "text/html"],
            ),
        );
        paths.insert(
            format!("/collections/{id}/items"),
            json!({"get": {
                "summary": format!("Features of {}", ds.meta.title),
                "parameters": items_params(ds),
                "responses": ok("A page of features (GeoJSON), or all matches as CSV", &["application/geo+json", "text/html", "text/csv"]),
            }}),
        );
        paths.insert(
            format!("/collections/{id}/items/{{featureId}}"),
            json!({"get": {
                "summary": format!("One feature of {}", ds.meta.title),
                "parameters": [{"name": "featureId", "in": "path", "required": true, "schema": {"type": "string"}}, f_only[0]],
                "responses": ok("A feature", &["application/geo+json", "text/html"]),
            }}),
        );
        paths.insert(format!("/collections/{id}/queryables"), json!({"get": {"summary": "Queryable properties", "responses": ok("JSON Schema", &["application/schema+json"])}}));
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Tessera", "version": env!("CARGO_PKG_VERSION"), "description": "OGC API - Features over open government data.",
                 "license": {"name": "See each collection's licence"}},
        "servers": [{"url": base}],
        "paths": paths,
        "components": {"responses": {"Problem": {"description": "RFC 9457 problem details", "content": {"application/problem+json": {
            "schema": {"type": "object", "properties": {"title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}, "parameter": {"type": "string"}}}}}}}}
    })
}

pub async fn document(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    if params::format_only(q.as_deref())? == Some(params::Format::Html) {
        return page(State(state), headers).await;
    }
    let base = base_url(&state, &headers);
    let datasets = with_snapshot(&state, |s| Ok(s.datasets()?)).await?;
    Ok((
        [content_type("application/vnd.oai.openapi+json;version=3.0")],
        build(&base, &datasets).to_string(),
    )
        .into_response())
}

/// A readable rendering of the same document (no external Swagger UI: everything stays local).
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let datasets = with_snapshot(&state, |s| Ok(s.datasets()?)).await?;
    let doc = build(&base, &datasets);
    let mut body = String::from(
        "<h1>API</h1><p>The machine-readable definition is at <a href=\"/api\">/api</a> (OpenAPI 3.0).</p>",
    );
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let get = &item["get"];
            body.push_str(&format!(
                "<h2><code>GET {}</code></h2><p>{}</p>",
                html::esc(path),
                html::esc(get["summary"].as_str().unwrap_or(""))
            ));
            if let Some(ps) = get["parameters"].as_array() {
                body.push_str("<div class=\"wrap\"><table><thead><tr><th scope=\"col\">Parameter</th><th scope=\"col\">Schema</th><th scope=\"col\">Description</th></tr></thead><tbody>");
                for p in ps {
                    body.push_str(&format!(
                        "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                        html::esc(p["name"].as_str().unwrap_or("")),
                        html::esc(&p["schema"].to_string()),
                        html::esc(p["description"].as_str().unwrap_or(""))
                    ));
                }
                body.push_str("</tbody></table></div>");
            }
        }
    }
    Ok((
        [content_type("text/html; charset=utf-8")],
        html::page("API", &body),
    )
        .into_response())
}
