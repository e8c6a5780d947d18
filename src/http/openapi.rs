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

/// The parameters of a feature request: the shared ones that `keep` names, then one
/// filter per property (the category field takes up to [`params::MAX_CATEGORY_VALUES`]).
fn items_params(ds: &DatasetInfo, keep: &[&str]) -> Vec<Json> {
    let mut out: Vec<Json> = ITEMS_PARAMS
        .iter()
        .filter(|p| keep.contains(&p.name))
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
        if ds.meta.category.as_deref() == Some(f.name.as_str()) {
            out.push(param(
                &f.name,
                json!({"type": "array", "minItems": 1, "maxItems": params::MAX_CATEGORY_VALUES, "items": schema}),
                &format!(
                    "Only features whose `{}` is one of these values (at most {}).",
                    f.name,
                    params::MAX_CATEGORY_VALUES
                ),
            ));
        } else {
            out.push(param(
                &f.name,
                schema,
                &format!("Only features whose `{}` equals this value.", f.name),
            ));
        }
    }
    out
}

const PAGE_PARAMS: &[&str] = &[
    "limit",
    "offset",
    "bbox",
    "bbox-crs",
    "datetime",
    "within",
    "sortby",
    "properties",
    "f",
];
const HISTOGRAM_PARAMS: &[&str] = &["bbox", "bbox-crs", "datetime", "within"];
const TILE_PARAMS: &[&str] = &["datetime", "within"];

/// Tile coordinates, documented as what they are; values outside the matrix are 404s.
fn tile_path_params() -> Json {
    let p = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}, "example": 0});
    json!([p("z"), p("x"), p("y")])
}

/// The histogram, TileJSON and tile operations of one collection.
fn insert_map_paths(paths: &mut serde_json::Map<String, Json>, ds: &DatasetInfo) {
    let id = ds.id.as_str();
    let mut hist = items_params(ds, HISTOGRAM_PARAMS);
    hist.push(param(
        "bucket",
        json!({"type": "string", "enum": ["day", "week", "month"]}),
        "Bucket width; by default chosen from the time extent.",
    ));
    paths.insert(
        format!("/collections/{id}/histogram"),
        json!({"get": {"summary": format!("Feature counts over time of {}", ds.meta.title),
            "parameters": hist, "responses": heavy(ok_as("Counts per time bucket", &["application/json"], "Histogram"))}}),
    );
    let mut agg = items_params(ds, HISTOGRAM_PARAMS);
    let mut by = param(
        "by",
        json!({"type": "string"}),
        "Id of a boundary dataset (polygons) whose areas the features are counted into.",
    );
    by["required"] = json!(true);
    agg.push(by.clone());
    agg.push(param(
        "f",
        json!({"type": "string", "enum": ["json", "csv"]}),
        "Output format.",
    ));
    paths.insert(
        format!("/collections/{id}/aggregate"),
        json!({"get": {"summary": format!("Counts of {} by area", ds.meta.title),
            "description": "Each feature counted into the area holding it (a point on a shared edge goes to one area only; lines and polygons by the centre of their bounds; datasets with a manifest `join` by attribute). `density` is per km² of geodesic area, `rate` per 1,000 residents when the boundary dataset has a population field.",
            "parameters": agg, "responses": ok_as("Counts per area", &["application/json", "text/csv"], "Aggregate")}}),
    );
    insert_choropleth_paths(paths, ds, &by);
    paths.insert(
        format!("/tiles/{id}"),
        json!({"get": {"summary": format!("TileJSON 3.0 of {}", ds.meta.title),
            "parameters": items_params(ds, TILE_PARAMS), "responses": ok_as("TileJSON", &["application/json"], "TileJSON")}}),
    );
    let mut tile_params = tile_path_params().as_array().cloned().unwrap_or_default();
    tile_params.extend(items_params(ds, TILE_PARAMS));
    tile_params.push(param(
        "v",
        json!({"type": "string"}),
        "The dataset version TileJSON puts in tile URLs (for caches); any other value is ignored.",
    ));
    let mut responses = ok(
        "A Mapbox Vector Tile",
        &["application/vnd.mapbox-vector-tile"],
    );
    responses["204"] = json!({"description": "An empty tile"});
    paths.insert(
        format!("/tiles/{id}/{{z}}/{{x}}/{{y}}.mvt"),
        json!({"get": {"summary": format!("A vector tile of {}", ds.meta.title),
            "parameters": tile_params, "responses": responses}}),
    );
}

/// The choropleth tiles of the counts by area and their TileJSON (`by` as for the counts).
fn insert_choropleth_paths(paths: &mut serde_json::Map<String, Json>, ds: &DatasetInfo, by: &Json) {
    let id = ds.id.as_str();
    let mut tilejson = vec![by.clone()];
    tilejson.extend(items_params(ds, TILE_PARAMS));
    paths.insert(
        format!("/collections/{id}/aggregate/tiles.json"),
        json!({"get": {"summary": format!("TileJSON 3.0 of the choropleth tiles of {} by area", ds.meta.title),
            "description": "One vector layer, named after `by`, listing the properties of the areas in the tiles: id, count, area_km2, density, and name and rate when the boundary dataset has a name and a population field.",
            "parameters": tilejson, "responses": ok_as("TileJSON", &["application/json"], "TileJSON")}}),
    );
    let mut tile = tile_path_params().as_array().cloned().unwrap_or_default();
    tile.extend(tilejson);
    tile.push(param(
        "v",
        json!({"type": "string"}),
        "The dataset versions TileJSON puts in tile URLs (for caches); any value is ignored.",
    ));
    let mut responses = ok(
        "A Mapbox Vector Tile",
        &["application/vnd.mapbox-vector-tile"],
    );
    responses["204"] = json!({"description": "No area reaches the tile"});
    paths.insert(
        format!("/collections/{id}/aggregate/{{z}}/{{x}}/{{y}}.mvt"),
        json!({"get": {"summary": format!("A choropleth tile of {} by area", ds.meta.title),
            "parameters": tile, "responses": responses}}),
    );
}

fn ok(description: &str, types: &[&str]) -> Json {
    let content: serde_json::Map<String, Json> =
        types.iter().map(|t| ((*t).to_owned(), json!({}))).collect();
    let problem = json!({"$ref": "#/components/responses/Problem"});
    // 414 and 431: a request target over 8 KiB or headers over 16 KiB (params::limit_request).
    json!({"200": {"description": description, "content": content},
           "400": problem, "404": problem, "414": problem, "431": problem})
}

/// Adds the answers of work that takes the heavy lane (src/http/lanes.rs): 503 with
/// `Retry-After` when the lane is full or the request ran past its time limit.
fn heavy(mut responses: Json) -> Json {
    responses["503"] = json!({"$ref": "#/components/responses/Problem"});
    responses
}

/// [`ok`] with the schema (a `#/components/schemas` name) of its first media type, so
/// that clients and schemathesis can check the body, not only the status.
fn ok_as(description: &str, types: &[&str], schema: &str) -> Json {
    let mut r = ok(description, types);
    r["200"]["content"][types[0]] =
        json!({"schema": {"$ref": format!("#/components/schemas/{schema}")}});
    r
}

/// The shapes of the JSON bodies: what every answer has, not every optional member.
fn schemas() -> Json {
    let link = json!({"type": "object", "required": ["href", "rel"], "properties": {
        "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"}}});
    let links = json!({"type": "array", "items": link});
    let feature = json!({"type": "object", "required": ["type", "id", "geometry", "properties"], "properties": {
        "type": {"enum": ["Feature"]}, "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "geometry": {"type": "object", "nullable": true}, "properties": {"type": "object"}, "links": links}});
    let collection = json!({"type": "object", "required": ["id", "title", "links", "extent"], "properties": {
        "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"}, "links": links,
        "extent": {"type": "object", "properties": {"spatial": {"type": "object"}, "temporal": {"type": "object"}}}}});
    json!({
        "Landing": {"type": "object", "required": ["links"], "properties": {"title": {"type": "string"}, "links": links}},
        "Conformance": {"type": "object", "required": ["conformsTo"], "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}}},
        "Collections": {"type": "object", "required": ["links", "collections"], "properties": {"links": links, "collections": {"type": "array", "items": collection}}},
        "Collection": collection,
        "Feature": feature,
        "FeatureCollection": {"type": "object", "required": ["type", "features", "numberMatched", "numberReturned", "links"], "properties": {
            "type": {"enum": ["FeatureCollection"]}, "features": {"type": "array", "items": feature},
            "numberMatched": {"type": "integer", "minimum": 0}, "numberReturned": {"type": "integer", "minimum": 0},
            "timeStamp": {"type": "string"}, "links": links}},
        "Histogram": {"type": "object", "required": ["bucket", "buckets", "total"], "properties": {
            "bucket": {"enum": ["day", "week", "month"]}, "total": {"type": "integer", "minimum": 0},
            "buckets": {"type": "array", "items": {"type": "object", "required": ["start", "end", "count"], "properties": {
                "start": {"type": "string"}, "end": {"type": "string"}, "count": {"type": "integer", "minimum": 0}}}}}},
        "Aggregate": {"type": "object", "required": ["by", "areas", "outside", "total"], "properties": {
            "by": {"type": "string"}, "outside": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0},
            "areas": {"type": "array", "items": {"type": "object", "required": ["id", "count", "area_km2", "density"], "properties": {
                "id": {"type": "string"}, "name": {"type": "string", "nullable": true}, "count": {"type": "integer", "minimum": 0},
                "area_km2": {"type": "number"}, "density": {"type": "number"}, "rate": {"type": "number", "nullable": true}}}}}},
        "TileJSON": {"type": "object", "required": ["tilejson", "tiles", "vector_layers"], "properties": {
            "tilejson": {"enum": ["3.0.0"]}, "tiles": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "vector_layers": {"type": "array", "items": {"type": "object", "required": ["id", "fields"]}},
            "bounds": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}}}},
        "Queryables": {"type": "object", "required": ["type", "properties"], "properties": {"type": {"enum": ["object"]}, "properties": {"type": "object"}}},
        "Health": {"type": "object", "required": ["status", "backend", "ready", "endpoints"], "properties": {
            "status": {"enum": ["ok", "degraded", "unavailable"]}, "backend": {"enum": ["sqlite", "postgresql"]},
            "ready": {"type": "boolean"},
            "endpoints": {"type": "array", "items": {"type": "object", "required": ["role", "location", "up", "reads"], "properties": {
                "role": {"enum": ["file", "primary", "replica"]}, "location": {"type": "string"}, "up": {"type": "boolean"},
                "error": {"type": "string", "nullable": true}, "reads": {"type": "integer", "minimum": 0}}}}}},
        "Live": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["live"]}}},
        "Problem": {"type": "object", "required": ["type", "title", "status"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"}, "parameter": {"type": "string"}}},
    })
}

/// Liveness and readiness (src/http/health.rs): no parameters, never cached; readiness
/// answers 503 with the same body while the catalog cannot serve reads.
fn insert_health_paths(paths: &mut serde_json::Map<String, Json>) {
    let problem = json!({"$ref": "#/components/responses/Problem"});
    let body = |schema: &str| json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
    let ready = json!({"get": {
        "summary": "Readiness: whether the catalog can answer reads, and the state of each database it uses",
        "responses": {
            "200": {"description": "Ready (`status` is `degraded` when some database is down but reads still work)", "content": body("Health")},
            "503": {"description": "Not ready: no database answers", "content": body("Health")},
            "400": problem, "414": problem, "431": problem}}});
    paths.insert("/health".into(), ready.clone());
    paths.insert("/health/ready".into(), ready);
    paths.insert(
        "/health/live".into(),
        json!({"get": {"summary": "Liveness: the process answers HTTP", "responses": {
            "200": {"description": "Live", "content": body("Live")},
            "400": problem, "414": problem, "431": problem}}}),
    );
}

/// Builds the document for the current catalog.
pub fn build(base: &str, datasets: &[DatasetInfo]) -> Json {
    let f_only = json!([param(
        "f",
        json!({"type": "string", "enum": ["json", "html"]}),
        "Output format."
    )]);
    let mut paths = serde_json::Map::new();
    let simple = |summary: &str, schema: &str| json!({"get": {"summary": summary, "parameters": f_only, "responses": ok_as(summary, &["application/json", "text/html"], schema)}});
    paths.insert("/".into(), simple("Landing page", "Landing"));
    paths.insert(
        "/conformance".into(),
        simple("Conformance classes", "Conformance"),
    );
    paths.insert(
        "/collections".into(),
        simple("The collections", "Collections"),
    );
    insert_health_paths(&mut paths);
    for ds in datasets {
        let id = ds.id.as_str();
        paths.insert(
            format!("/collections/{id}"),
            simple(&format!("About {}", ds.meta.title), "Collection"),
        );
        paths.insert(
            format!("/collections/{id}/items"),
            json!({"get": {
                "summary": format!("Features of {}", ds.meta.title),
                "parameters": items_params(ds, PAGE_PARAMS),
                "responses": heavy(ok_as("A page of features (GeoJSON), or all matches as CSV or iCalendar", &["application/geo+json", "text/html", "text/csv", "text/calendar"], "FeatureCollection")),
            }}),
        );
        paths.insert(
            format!("/collections/{id}/items/{{featureId}}"),
            json!({"get": {
                "summary": format!("One feature of {}", ds.meta.title),
                "parameters": [{"name": "featureId", "in": "path", "required": true, "schema": {"type": "string"}}, f_only[0]],
                "responses": ok_as("A feature", &["application/geo+json", "text/html"], "Feature"),
            }}),
        );
        insert_map_paths(&mut paths, ds);
        paths.insert(format!("/collections/{id}/queryables"), json!({"get": {"summary": "Queryable properties", "responses": ok_as("JSON Schema", &["application/schema+json"], "Queryables")}}));
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Tessera", "version": env!("CARGO_PKG_VERSION"), "description": "OGC API - Features over open government data.",
                 "license": {"name": "See each collection's licence"}},
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "responses": {"Problem": {"description": "RFC 9457 problem details", "content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}}}}}
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
        "<h1>API</h1><p>The machine-readable definition is at <a href=\"api\">/api</a> (OpenAPI 3.0).</p>",
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
