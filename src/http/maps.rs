//! What people see: MapLibre styles filled from the embedded `styles/` templates, the map
//! and catalog pages (markup in [`super::pages`]) and the dataset previews.

use super::conditional::Validator;
use super::error::ApiError;
use super::features::{dataset, with_snapshot};
use super::{AppState, assets, base_url, content_type, pages};
use crate::config::BasemapStyle;
use crate::model::{DatasetInfo, DatasetKind, Value};
use crate::render::cache::TileCache;
use crate::store::Snapshot;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

/// Colour-blind-safe palette (Okabe–Ito, then Tableau tones) for category values.
const PALETTE: [&str; 10] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#7f3c8d",
    "#a6761d", "#3969ac",
];
const OTHER: &str = "#888888";
/// Categories shown in the legend and coloured; the rest are "other".
pub const TOP_CATEGORIES: usize = 10;

/// Semantic colours of inspection results: failed, with conditions, passed.
const RESULT_COLOURS: [(&str, &str); 3] = [
    ("fail", "#c62828"),
    ("condition", "#b26a00"),
    ("pass", "#2e7d32"),
];

/// Colours of the top category values, in rank order, none repeated: for inspections the
/// first value that reads as failed / with conditions / passed takes that result's
/// colour, every other value the next palette colour not taken. Values past the
/// palette are drawn as "other" (and shown as such in the legend).
fn colours(kind: DatasetKind, values: &[String]) -> Vec<&'static str> {
    let mut taken: Vec<&'static str> = Vec::new();
    let mut out: Vec<Option<&'static str>> = vec![None; values.len()];
    if kind == DatasetKind::Inspections {
        for (word, colour) in RESULT_COLOURS {
            let hit = values.iter().enumerate().find(|(i, v)| {
                let v = v.to_ascii_lowercase();
                out[*i].is_none()
                    && if word == "pass" {
                        v.starts_with(word)
                    } else {
                        v.contains(word)
                    }
            });
            if let Some((i, _)) = hit {
                out[i] = Some(colour);
                taken.push(colour);
            }
        }
    }
    let mut palette = PALETTE.iter().copied().filter(|c| !taken.contains(c));
    out.into_iter()
        .map(|c| c.or_else(|| palette.next()).unwrap_or(OTHER))
        .collect()
}

/// The category legend of a dataset: its field and top values with colours and counts.
pub type Legend = (String, Vec<LegendEntry>);
/// One legend line: value, colour, count.
pub type LegendEntry = (String, &'static str, u64);

/// The category legend of a dataset: top values with colours and counts, computed once
/// per dataset version (the `GROUP BY` behind it reads every row).
pub fn categories(
    snap: &dyn Snapshot,
    cache: &TileCache,
    ds: &DatasetInfo,
) -> Result<Option<Legend>, ApiError> {
    let Some(field) = ds.meta.category.clone() else {
        return Ok(None);
    };
    let Some(i) = ds.field_index(&field) else {
        return Ok(None);
    };
    let key = format!("legend|{}@{}", ds.id, ds.version);
    let bytes = pages::memo(cache, key, || {
        let values: Vec<(String, u64)> = snap
            .top_values(ds, i, TOP_CATEGORIES)?
            .into_iter()
            .map(|(v, n)| (text(v), n))
            .collect();
        serde_json::to_vec(&values).map_err(ApiError::internal)
    })?;
    let values: Vec<(String, u64)> = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    let names: Vec<String> = values.iter().map(|(v, _)| v.clone()).collect();
    let list = values
        .into_iter()
        .zip(colours(ds.meta.kind, &names))
        .map(|((text, n), c)| (text, c, n))
        .collect();
    Ok(Some((field, list)))
}

fn text(v: Value) -> String {
    match v {
        Value::Text(s) => s,
        Value::Integer(i) => i.to_string(),
        Value::Number(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Null => String::new(),
    }
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
    let kind = ds.meta.kind.name();
    let template = assets::style_template(kind)
        .ok_or_else(|| ApiError::internal(format!("no style template for {kind}")))?;
    let mut style: Json = serde_json::from_slice(&template)
        .map_err(|e| ApiError::internal(format!("styles/{kind}.json: {e}")))?;
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
    // A cluster's ring is the colour of its commonest category (`cat_top`, also under
    // the category field); white without categories, as before.
    let ring = if matches!(cats, Some((_, v)) if !v.is_empty()) {
        colour_expr.clone()
    } else {
        json!("#ffffff")
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
        (
            "__LABEL_LAYER__",
            json!(crate::render::label_layer(ds.id.as_str())),
        ),
        ("__CATEGORY_FIELD__", json!(field)),
        ("__ATTRIBUTION__", json!(ds.meta.attribution)),
        ("__CATEGORY_COLOR__", colour_expr),
        ("__CLUSTER_RING__", ring),
    ];
    replace_tokens(&mut style, &tokens);
    style["name"] = json!(ds.meta.title);
    Ok(style)
}

/// Puts the basemap (`styles/basemap.json`, over the archive served as
/// [`crate::cli::BASEMAP_ID`]) under a dataset style: the basemap's background and layers
/// first, the dataset's layers (its own background left out) on top, and both sources
/// with their attributions, which MapLibre's attribution control shows together.
pub fn with_basemap(style: &mut Json, base: &str, attribution: &str) -> Result<(), ApiError> {
    let template = assets::style_template("basemap")
        .ok_or_else(|| ApiError::internal("no style template for the basemap"))?;
    let mut basemap: Json = serde_json::from_slice(&template)
        .map_err(|e| ApiError::internal(format!("styles/basemap.json: {e}")))?;
    let tokens = [
        (
            "__BASEMAP_TILEJSON__",
            json!(format!("{base}/tiles/{}", crate::cli::BASEMAP_ID)),
        ),
        ("__BASEMAP_ATTRIBUTION__", json!(attribution)),
        (
            "__GLYPHS__",
            json!(format!("{base}/fonts/{{fontstack}}/{{range}}.pbf")),
        ),
    ];
    replace_tokens(&mut basemap, &tokens);
    let mut layers = basemap["layers"].as_array().cloned().unwrap_or_default();
    let data_layers = style["layers"].as_array().cloned().unwrap_or_default();
    layers.extend(
        data_layers
            .into_iter()
            .filter(|l| l["type"] != json!("background")),
    );
    style["layers"] = Json::Array(layers);
    if let Some(sources) = style["sources"].as_object_mut() {
        sources.insert("basemap".into(), basemap["sources"]["basemap"].take());
    }
    Ok(())
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

/// `GET /styles/{id}.json`, built once per dataset version and base URL.
pub async fn get_style(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let id = file.strip_suffix(".json").unwrap_or(&file).to_owned();
    if let (crate::cli::BASEMAP_ID, Some(BasemapStyle::File(style))) =
        (id.as_str(), &state.basemap_style)
    {
        let body = bytes::Bytes::from(style.to_string());
        return Ok(cached_response(&headers, "application/json", &body));
    }
    let cache = state.tiles.clone();
    // The basemap's attribution, when one is served (`None`: the style stands alone).
    // A `--basemap` style takes the archive's place: the page composes over it.
    let basemap = state
        .archives
        .get(crate::cli::BASEMAP_ID)
        .filter(|_| state.basemap_style.is_none())
        .map(|a| a.attribution().unwrap_or_default().to_owned());
    let body = with_snapshot(&state, move |s| {
        let ds = dataset(s, &id)?;
        let key = format!("style|{base}|{}@{}", ds.id, ds.version);
        pages::memo(&cache.cache, key, || {
            let cats = categories(s, &cache.cache, &ds)?;
            let mut style = style(&base, &ds, &cats)?;
            if let Some(a) = &basemap {
                with_basemap(&mut style, &base, a)?;
            }
            Ok(style.to_string().into_bytes())
        })
    })
    .await?;
    Ok(cached_response(&headers, "application/json", &body))
}

/// A computed body with an ETag from its content, or 304 when the client has it. Weak, as
/// for assets: the compression layer may send it in several codings under one tag.
/// `no-cache`: the body changes with the data at the same URL, so clients revalidate
/// (cheap: the server answers from its memo).
fn cached_response(headers: &HeaderMap, ty: &'static str, body: &bytes::Bytes) -> Response {
    let tag = Validator::weak(&[&body[..]]);
    let cc = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if tag.matches(headers) {
        let mut r = tag.not_modified();
        r.headers_mut().insert(cc.0, cc.1);
        return r;
    }
    (
        [content_type(ty), (header::ETAG, tag.header_value()), cc],
        body.clone(),
    )
        .into_response()
}

/// `GET /maps/{id}`: the full-page map (`?embed=1` for the chrome-less embed), built once
/// per version of the dataset and of the area datasets it offers.
pub async fn map_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(id) = id.strip_suffix(".png") {
        return super::picture::picture(&state, id.to_owned(), &headers, q.as_deref()).await;
    }
    let base = base_url(&state, &headers);
    let embed = super::params::pairs(q.as_deref())?
        .iter()
        .any(|(k, v)| k == "embed" && v != "0");
    let st = state.clone();
    let body = with_snapshot(&state, move |s| {
        let ds = dataset(s, &id)?;
        let polygons: Vec<DatasetInfo> = s
            .datasets()?
            .into_iter()
            .filter(|d| is_area_dataset(d) && d.id != ds.id)
            .collect();
        let areas: Vec<String> = polygons
            .iter()
            .map(|p| format!("{}@{}", p.id, p.version))
            .collect();
        let key = format!(
            "map|{base}|{}@{}|{embed}|{}",
            ds.id,
            ds.version,
            areas.join(",")
        );
        pages::memo(&st.tiles.cache, key, || {
            let cats = categories(s, &st.tiles.cache, &ds)?;
            let config = map_config(&st, &base, &ds, &cats, &polygons, embed);
            Ok(pages::map_html(&base, &ds.meta.title, &config).into_bytes())
        })
    })
    .await?;
    Ok(cached_response(&headers, "text/html; charset=utf-8", &body))
}

/// What `assets/map.js` reads: absolute URLs of the dataset's resources, its extent,
/// legend and the areas it can be filtered by.
fn map_config(
    state: &AppState,
    base: &str,
    ds: &DatasetInfo,
    cats: &Option<Legend>,
    polygons: &[DatasetInfo],
    embed: bool,
) -> Json {
    let c = format!("{base}/collections/{}", ds.id);
    json!({
        "id": ds.id,
        "title": ds.meta.title,
        "kind": ds.meta.kind.name(),
        "attribution": ds.meta.attribution,
        "description": ds.meta.description,
        "source": ds.meta.source,
        "licence": ds.meta.licence,
        "api": format!("{c}?f=html"),
        "display": display_config(ds),
        "style": format!("{base}/styles/{}.json", ds.id),
        // A `--basemap` style: map.js draws the dataset's layers over it.
        "basemap": state.basemap_style.as_ref().map(|b| match b {
            BasemapStyle::Url(u) => u.clone(),
            BasemapStyle::File(_) => format!("{base}/styles/{}.json", crate::cli::BASEMAP_ID),
        }),
        "tiles": format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", ds.id),
        "items": format!("{c}/items"),
        "histogram": format!("{c}/histogram"),
        // Rows without positions that join to areas open where those areas are.
        "bounds": ds
            .bounds
            .or_else(|| {
                let join = ds.meta.join.as_ref()?;
                polygons.iter().find(|p| p.id.as_str() == join.areas)?.bounds
            })
            .map(|b| b.to_array()),
        "time": ds.time_extent.map(|t| [ds.format_time(t.start), ds.format_time(t.end)]),
        "category": cats.as_ref().map(|(f, values)| json!({
            "field": f,
            "values": values.iter().map(|(v, col, n)| json!({"value": v, "color": col, "count": n})).collect::<Vec<_>>(),
            // Everything outside the top values (and features without one), drawn grey.
            "other": {
                "color": OTHER,
                "count": ds.feature_count.saturating_sub(values.iter().map(|(_, _, n)| n).sum()),
            },
        })),
        "polygons": polygons.iter().map(|p| json!({
            "id": p.id,
            "title": p.meta.title,
            "items": format!("{base}/collections/{}/items", p.id),
            "label": label_field(p),
        })).collect::<Vec<_>>(),
        "embed": embed,
        // Extra page modules under /assets/ (each one listens to map.js's events).
        "modules": page_modules(ds),
        "dashboard": format!("{base}/dashboards/{}", ds.id),
        // Set for datasets whose items have an end: the calendar module reads these.
        "endTime": ds.meta.end_time,
        "timezone": ds.timezone.as_deref().unwrap_or("UTC"),
        "clusterZoom": state.tiles.cluster_zoom(ds),
        // Link previews (og:image, twitter:image): the picture of the default view.
        "share": {
            "image": format!("{base}/maps/{}.png?v={}", ds.id, ds.version),
            "width": super::picture::DEFAULT_WIDTH,
            "height": super::picture::DEFAULT_HEIGHT,
            "url": format!("{base}/maps/{}", ds.id),
            "description": share_description(ds),
        },
    })
}

/// One line for a link preview: the dataset's description, else what and how many.
fn share_description(ds: &DatasetInfo) -> String {
    let d = ds.meta.description.trim();
    if d.is_empty() {
        return format!("{} features on a map", ds.feature_count);
    }
    match d.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &d[..cut]),
        None => d.to_owned(),
    }
}

/// The map-page modules of `ds`: the dashboard tab and counts by area always, the calendar for datasets
/// whose items have a start and an end, and for events datasets with a time (an event
/// at an instant is a span of no length).
fn page_modules(ds: &DatasetInfo) -> Vec<&'static str> {
    let mut m = vec!["dashboard-tab.js", "choropleth.js"];
    let events = ds.meta.kind == DatasetKind::Events;
    if ds.time_extent.is_some() && (ds.meta.end_time.is_some() || events) {
        m.push("calendar.js");
    }
    m
}

/// How `assets/map.js` shows features: the popup's title field (the manifest's
/// `title_field`, else a name-like field), the fields to list (`popup_fields`, else all
/// but technical ones, which map.js recognises), the type of each time field and the
/// dataset's time zone, and the word for several features ("complaints").
fn display_config(ds: &DatasetInfo) -> Json {
    let d = &ds.meta.display;
    let known = |n: &&String| ds.field_index(n).is_some();
    let title = d.title_field.iter().find(known).cloned().or_else(|| {
        const NAMES: [&str; 8] = [
            "name",
            "title",
            "event name",
            "event_name",
            "eventname",
            "dba name",
            "business name",
            "facility name",
        ];
        ds.fields
            .iter()
            .find(|f| NAMES.contains(&f.name.to_ascii_lowercase().as_str()))
            .map(|f| f.name.clone())
    });
    let times: serde_json::Map<String, Json> = ds
        .fields
        .iter()
        .filter(|f| {
            use crate::model::FieldType::{Date, Datetime, Month};
            matches!(f.ty, Datetime | Date | Month)
        })
        .map(|f| (f.name.clone(), json!(f.ty.name())))
        .collect();
    let noun = ds
        .meta
        .title
        .rsplit(' ')
        .next()
        .filter(|w| w.len() > 3 && w.ends_with('s') && w.chars().all(char::is_alphabetic))
        .map_or("records".to_owned(), str::to_lowercase);
    json!({
        "titleField": title,
        "popupFields": d.popup_fields.iter().filter(known).collect::<Vec<_>>(),
        "timeFields": times,
        "timeZone": ds.timezone,
        "noun": noun,
    })
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
                // A picture of the default view; `/collections/{id}/preview.svg` stays for old links.
                "preview": format!("{base}/maps/{}.png?width=320&height=200&v={}", d.id, d.version),
                "tilejson": format!("{base}/tiles/{}", d.id),
                "style": format!("{base}/styles/{}.json", d.id),
                "csv": format!("{c}/items?f=csv"),
                "geojson": format!("{c}/items?f=json&limit=10000"),
            })
        })
        .collect();
    Ok(pages::catalog_html(base, &json!({"datasets": entries})))
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
        tiles.cache.put(key, bytes::Bytes::from(svg.clone().into_bytes()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Regression: inspection results that all read as "fail" (or as nothing semantic)
    /// shared one colour, and the semantic greens and reds could repeat palette tones.
    #[test]
    fn legend_colours_never_repeat() {
        let v = names(&[
            "Fail",
            "Pass",
            "Failed re-inspection",
            "Pass w/ Conditions",
            "No Entry",
            "Out of Business",
            "Not Ready",
            "Closed",
            "Other A",
            "Other B",
        ]);
        let c = colours(DatasetKind::Inspections, &v);
        assert_eq!(&c[..4], ["#c62828", "#2e7d32", PALETTE[0], "#b26a00"]);
        let mut seen = c.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), c.len(), "{c:?}");
        assert!(!c.contains(&OTHER));
        let many: Vec<String> = (0..12).map(|i| format!("v{i}")).collect();
        let c = colours(DatasetKind::Incidents, &many);
        assert_eq!(&c[..10], PALETTE);
        assert_eq!(&c[10..], [OTHER, OTHER], "past the palette: drawn as other");
    }
}
