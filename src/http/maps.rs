//! What people see: MapLibre styles filled from `styles/` templates, the map page, and the
//! vendored front-end assets (MapLibre GL JS, glyphs), all served from this origin.

use super::error::ApiError;
use super::features::{dataset, with_snapshot};
use super::{AppState, base_url, content_type, html};
use crate::model::{DatasetInfo, DatasetKind, Value};
use crate::store::Snapshot;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use std::path::PathBuf;

/// Colour-blind-safe palette (Okabe–Ito, then Tableau tones) for category values.
const PALETTE: [&str; 10] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#7f3c8d",
    "#11a579", "#3969ac",
];
const OTHER: &str = "#888888";
/// Categories shown in the legend and coloured; the rest are "other".
pub const TOP_CATEGORIES: usize = 10;

/// Where templates and static files live: beside the working directory when run from a
/// checkout, else where the crate was built.
pub fn resource_dir(name: &str) -> PathBuf {
    let local = PathBuf::from(name);
    if local.is_dir() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
    }
}

/// A category value's colour: semantic for inspection results, else the palette by rank.
fn colour(kind: DatasetKind, value: &str, rank: usize) -> &'static str {
    if kind == DatasetKind::Inspections {
        let v = value.to_ascii_lowercase();
        if v.contains("fail") {
            return "#c62828";
        }
        if v.contains("condition") {
            return "#ef8f00";
        }
        if v.contains("pass") {
            return "#2e7d32";
        }
    }
    PALETTE.get(rank).copied().unwrap_or(OTHER)
}

/// The category legend of a dataset: its field and top values with colours and counts.
pub type Legend = (String, Vec<LegendEntry>);
/// One legend line: value, colour, count.
pub type LegendEntry = (String, &'static str, u64);

/// The category legend of a dataset: top values with colours and counts.
pub fn categories(snap: &dyn Snapshot, ds: &DatasetInfo) -> Result<Option<Legend>, ApiError> {
    let Some(field) = ds.meta.category.clone() else {
        return Ok(None);
    };
    let Some(i) = ds.field_index(&field) else {
        return Ok(None);
    };
    let values = snap.top_values(ds, i, TOP_CATEGORIES)?;
    let list = values
        .into_iter()
        .enumerate()
        .map(|(rank, (v, n))| {
            let text = match v {
                Value::Text(s) => s,
                Value::Integer(i) => i.to_string(),
                Value::Number(x) => x.to_string(),
                Value::Boolean(b) => b.to_string(),
                Value::Null => String::new(),
            };
            let c = colour(ds.meta.kind, &text, rank);
            (text, c, n)
        })
        .collect();
    Ok(Some((field, list)))
}

fn replace_tokens(v: &mut Json, tokens: &[(&str, Json)]) {
    match v {
        Json::String(s) => {
            if let Some((_, t)) = tokens.iter().find(|(k, _)| k == s) {
                *v = t.clone();
            }
        }
        Json::Array(a) => a.iter_mut().for_each(|x| replace_tokens(x, tokens)),
        Json::Object(o) => o.values_mut().for_each(|x| replace_tokens(x, tokens)),
        _ => {}
    }
}

/// Builds the complete style of a dataset from the template of its kind.
pub fn style(base: &str, ds: &DatasetInfo, cats: &Option<Legend>) -> Result<Json, ApiError> {
    let path = resource_dir("styles").join(format!("{}.json", ds.meta.kind.name()));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    let mut style: Json = serde_json::from_str(&text)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    let field = cats.as_ref().map(|(f, _)| f.clone()).unwrap_or_default();
    let colour_expr = match cats {
        Some((f, values)) if !values.is_empty() => {
            let mut e = vec![json!("match"), json!(["to-string", ["get", f]])];
            for (v, c, _) in values {
                e.push(json!(v));
                e.push(json!(c));
            }
            e.push(json!(OTHER));
            Json::Array(e)
        }
        _ => json!(PALETTE[0]),
    };
    let tokens = [
        (
            "__TILEJSON__",
            json!(format!("{base}/tiles/{}?v={}", ds.id, ds.version)),
        ),
        (
            "__GLYPHS__",
            json!(format!("{base}/fonts/{{fontstack}}/{{range}}.pbf")),
        ),
        ("__LAYER__", json!(ds.id.as_str())),
        ("__CATEGORY_FIELD__", json!(field)),
        ("__ATTRIBUTION__", json!(ds.meta.attribution)),
        ("__CATEGORY_COLOR__", colour_expr),
    ];
    replace_tokens(&mut style, &tokens);
    style["name"] = json!(ds.meta.title);
    Ok(style)
}

/// The property that names an area in a picker: `name` if there is one, else the first
/// text field whose name says it is a name or title, else the first text field.
fn label_field(ds: &DatasetInfo) -> Option<String> {
    let text = || {
        ds.fields
            .iter()
            .filter(|f| f.ty == crate::model::FieldType::String)
    };
    let named = |f: &&crate::model::Field| {
        let n = f.name.to_ascii_lowercase();
        ["name", "community", "title", "label"]
            .iter()
            .any(|w| n.contains(w))
    };
    ds.fields
        .iter()
        .find(|f| f.name == "name")
        .or_else(|| text().find(named))
        .or_else(|| text().next())
        .map(|f| f.name.clone())
}

/// `GET /styles`: one style per dataset.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let datasets = with_snapshot(&state, |s| Ok(s.datasets()?)).await?;
    let list: Vec<Json> = datasets
        .iter()
        .map(|d| json!({"id": d.id, "title": d.meta.title, "kind": d.meta.kind.name(), "url": format!("{base}/styles/{}.json", d.id)}))
        .collect();
    Ok((
        [content_type("application/json")],
        Json::Array(list).to_string(),
    )
        .into_response())
}

/// `GET /styles/{id}.json`.
pub async fn get_style(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let id = file.strip_suffix(".json").unwrap_or(&file).to_owned();
    let (ds, cats) = with_snapshot(&state, move |s| {
        let ds = dataset(s, &id)?;
        let cats = categories(s, &ds)?;
        Ok((ds, cats))
    })
    .await?;
    let style = style(&base, &ds, &cats)?;
    Ok(([content_type("application/json")], style.to_string()).into_response())
}

/// `GET /maps/{id}`: the full-page map (`?embed=1` for the chrome-less embed).
pub async fn map_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let embed = super::params::pairs(q.as_deref())?
        .iter()
        .any(|(k, v)| k == "embed" && v != "0");
    let (ds, cats, polygons) = with_snapshot(&state, move |s| {
        let ds = dataset(s, &id)?;
        let cats = categories(s, &ds)?;
        let polygons: Vec<DatasetInfo> = s
            .datasets()?
            .into_iter()
            .filter(|d| is_area_dataset(d) && d.id != ds.id)
            .collect();
        Ok((ds, cats, polygons))
    })
    .await?;
    let c = format!("{base}/collections/{}", ds.id);
    let config = json!({
        "id": ds.id,
        "title": ds.meta.title,
        "kind": ds.meta.kind.name(),
        "attribution": ds.meta.attribution,
        "style": format!("{base}/styles/{}.json", ds.id),
        "tiles": format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", ds.id),
        "items": format!("{c}/items"),
        "histogram": format!("{c}/histogram"),
        "bounds": ds.bounds.map(|b| b.to_array()),
        "time": ds.time_extent.map(|t| [ds.format_time(t.start), ds.format_time(t.end)]),
        "category": cats.as_ref().map(|(f, values)| json!({
            "field": f,
            "values": values.iter().map(|(v, col, n)| json!({"value": v, "color": col, "count": n})).collect::<Vec<_>>(),
        })),
        "polygons": polygons.iter().map(|p| json!({
            "id": p.id,
            "title": p.meta.title,
            "items": format!("{base}/collections/{}/items", p.id),
            "label": label_field(p),
        })).collect::<Vec<_>>(),
        "embed": embed,
        "clusterZoom": state.tiles.cluster_zoom(&ds),
    });
    let path = resource_dir("assets").join("templates/map.html");
    let template = std::fs::read_to_string(&path)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    // JSON inside <script>: escape '<' so no "</script>" can end it early.
    let config_text = config.to_string().replace('<', "\\u003c");
    let page = template
        .replace("{{TITLE}}", &html::esc(&ds.meta.title))
        .replace("{{CONFIG_JSON}}", &config_text);
    // Embedding in other sites' pages is the point of `?embed=1`: allowed unless restricted.
    let csp = HeaderValue::from_str(&format!("frame-ancestors {}", state.frame_ancestors))
        .map_err(|_| ApiError::internal("invalid --frame-ancestors value"))?;
    Ok((
        [
            content_type("text/html; charset=utf-8"),
            (axum::http::header::CONTENT_SECURITY_POLICY, csp),
        ],
        page,
    )
        .into_response())
}

/// The catalog page (`/` for browsers): every dataset with its facts, preview and links.
pub fn catalog_page(base: &str, datasets: &[DatasetInfo]) -> Result<String, ApiError> {
    let entries: Vec<Json> = datasets
        .iter()
        .map(|d| {
            let c = format!("{base}/collections/{}", d.id);
            json!({
                "id": d.id,
                "title": d.meta.title,
                "description": d.meta.description,
                "kind": d.meta.kind.name(),
                "attribution": d.meta.attribution,
                "licence": d.meta.licence,
                "count": d.feature_count,
                "time": d.time_extent.map(|t| [d.format_time(t.start), d.format_time(t.end)]),
                "map": format!("{base}/maps/{}", d.id),
                "api": c,
                "preview": format!("{c}/preview.svg?v={}", d.version),
                "tilejson": format!("{base}/tiles/{}", d.id),
                "style": format!("{base}/styles/{}.json", d.id),
                "csv": format!("{c}/items?f=csv"),
                "geojson": format!("{c}/items?f=json&limit=10000"),
            })
        })
        .collect();
    let path = resource_dir("assets").join("templates/catalog.html");
    let template = std::fs::read_to_string(&path)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    let data = json!({"datasets": entries})
        .to_string()
        .replace('<', "\\u003c");
    Ok(template
        .replace("{{TITLE}}", "Open data catalog")
        .replace("{{CATALOG_JSON}}", &data))
}

/// `GET /collections/{id}/preview.svg`: a small density picture of where the features are,
/// drawn from feature positions on a 64 x 40 grid (no map tiles, nothing external).
pub async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    const W: usize = 64;
    const H: usize = 40;
    let tiles = state.tiles.clone();
    let svg = with_snapshot(&state, move |s| {
        let ds = dataset(s, &id)?;
        let key = format!("preview|{}@{}", ds.id, ds.version);
        if let Some(hit) = tiles.cache.get(&key) {
            return Ok(String::from_utf8_lossy(&hit).into_owned());
        }
        let Some(b) = ds.bounds else {
            return Ok(format!("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\"/>"));
        };
        // Equirectangular with the aspect corrected for latitude: fine for city-sized areas.
        let mid = ((b.min_y + b.max_y) / 2.0).to_radians().cos().max(0.1);
        let (w, h) = (((b.max_x - b.min_x) * mid).max(1e-9), (b.max_y - b.min_y).max(1e-9));
        let scale = (W as f64 / w).min(H as f64 / h);
        let (ox, oy) = ((W as f64 - w * scale) / 2.0, (H as f64 - h * scale) / 2.0);
        let mut grid = vec![0u32; W * H];
        s.positions(&ds, None, &mut |p| {
            let x = (ox + (p.lon - b.min_x) * mid * scale) as usize;
            let y = (oy + (b.max_y - p.lat) * scale) as usize;
            if let Some(c) = grid.get_mut(y.min(H - 1) * W + x.min(W - 1)) {
                *c += 1;
            }
        })?;
        let max = f64::from(grid.iter().copied().max().unwrap_or(1).max(1));
        let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\"><title>Where the features are</title>");
        for (i, &n) in grid.iter().enumerate().filter(|(_, n)| **n > 0) {
            // Log scale: one incident and a thousand must both be visible.
            let o = 0.25 + 0.75 * (f64::from(n).ln_1p() / max.ln_1p());
            svg.push_str(&format!("<rect x=\"{}\" y=\"{}\" width=\"1\" height=\"1\" fill=\"#1f4776\" fill-opacity=\"{o:.2}\"/>", i % W, i / W));
        }
        svg.push_str("</svg>");
        tiles.cache.put(key, std::sync::Arc::new(svg.clone().into_bytes()));
        Ok(svg)
    })
    .await?;
    Ok((
        [
            content_type("image/svg+xml"),
            (
                axum::http::header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        svg,
    )
        .into_response())
}

/// Datasets whose features can serve as `within=` areas: polygons, or boundary datasets
/// whose files mix Polygon and MultiPolygon (stored as the generic "Geometry").
fn is_area_dataset(d: &DatasetInfo) -> bool {
    matches!(d.geometry_type.as_deref(), Some("Polygon" | "MultiPolygon"))
        || (d.meta.kind == DatasetKind::Boundaries && d.geometry_type.is_some())
}
