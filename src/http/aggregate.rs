//! `GET /collections/{id}/aggregate?by={areas}&…`: counts of a dataset's features per
//! area of a boundary dataset, with the items filters, as JSON or CSV (the counting is
//! [`crate::aggregate`]).

use super::conditional::Validator;
use super::error::ApiError;
use super::extract::{CollectionRequest, dataset};
use super::features::with_snapshot;
use super::{AppState, content_type};
use crate::aggregate::{AggregateError, AreaCounts};
use crate::model::{DatasetId, DatasetInfo};
use crate::query::{self, ParamSet};
use crate::store::Snapshot;
use crate::tiles::TileCoord;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Json,
    Csv,
}

impl From<AggregateError> for ApiError {
    fn from(e: AggregateError) -> Self {
        match e {
            AggregateError::Store(e) => e.into(),
            // The client chose `by`: an unsuitable one is its parameter's fault.
            AggregateError::NotAreas(_) | AggregateError::NoJoin { .. } => {
                ApiError::bad_param("by", e.to_string())
            }
            AggregateError::NoKey { .. } => ApiError::internal(e),
        }
    }
}

/// What both the JSON/CSV answer and the choropleth tiles parse from a request.
struct Parsed {
    ds: DatasetInfo,
    areas: DatasetInfo,
    /// The items filters as given (without `by` and `f`), for links to the same counts.
    filters: String,
    query: crate::store::Query,
    output: Output,
    tag: Validator,
}

/// What a request asks for: the counts (JSON or CSV, `f` chooses), a choropleth tile or
/// the TileJSON of the choropleth tiles (neither takes `f`).
#[derive(Debug, Clone, Copy)]
enum Target {
    Counts,
    Tile(TileCoord),
    TileJson,
}

/// Reads the datasets and parameters for `target`.
fn parse(
    s: &dyn Snapshot,
    id: &str,
    raw: Option<&str>,
    target: Target,
) -> Result<Parsed, ApiError> {
    let ds = dataset(s, id)?;
    // `by` and `f` are ours; the rest are the items filters, parsed as everywhere.
    let (mut by, mut output) = (None, Output::Json);
    let mut rest = Vec::new();
    for (k, v) in query::pairs(raw)? {
        match k.as_str() {
            "by" => by = Some(v),
            // The versions the TileJSON puts into tile URLs: a cache key, not a filter.
            "v" => {}
            "f" if matches!(target, Target::Counts) => {
                output = match v.as_str() {
                    "json" => Output::Json,
                    "csv" => Output::Csv,
                    _ => {
                        return Err(ApiError::bad_param(
                            "f",
                            format!("unknown format `{v}`: use json or csv"),
                        ));
                    }
                }
            }
            _ => rest.push((k, v)),
        }
    }
    let by = by.ok_or_else(|| {
        ApiError::bad_param("by", "`by` is required: the id of a boundary dataset")
    })?;
    let no_areas = || ApiError::bad_param("by", format!("no dataset `{by}`"));
    let areas_id = DatasetId::parse(&by).map_err(|_| no_areas())?;
    let areas = s.dataset(&areas_id)?.ok_or_else(no_areas)?;
    if !matches!(
        areas.geometry_type.as_deref(),
        Some("Polygon" | "MultiPolygon" | "Geometry")
    ) {
        return Err(AggregateError::NotAreas(by.clone()).into());
    }
    let filters = serde_urlencoded::to_string(&rest).unwrap_or_default();
    let mut req = query::parse_items(&ds, Some(&filters), ParamSet::Tiles)?;
    let within = query::resolve_within(s, &mut req)?.unwrap_or_default();
    let at = match target {
        Target::Counts => String::new(),
        Target::Tile(t) => format!("{}/{}/{}", t.z(), t.x(), t.y()),
        Target::TileJson => "tilejson".into(),
    };
    let tag = Validator::weak(&[
        ds.id.as_str().as_bytes(),
        &ds.version.to_le_bytes(),
        areas.id.as_str().as_bytes(),
        &areas.version.to_le_bytes(),
        within.as_bytes(),
        filters.as_bytes(),
        &[output as u8],
        at.as_bytes(),
    ]);
    Ok(Parsed {
        ds,
        areas,
        filters,
        query: req.query,
        output,
        tag,
    })
}

pub async fn aggregate(
    State(state): State<AppState>,
    c: CollectionRequest,
) -> Result<Response, ApiError> {
    let (id, raw, headers, base) = (c.id, c.query, c.headers, c.base);
    let (tiles, aggregates) = (state.tiles.clone(), state.aggregates.clone());
    let answer = with_snapshot(&state, move |s| {
        let p = parse(s, &id, raw.as_deref(), Target::Counts)?;
        let tilejson = tilejson_url(&base, &p);
        if p.tag.matches(&headers) {
            return Ok((p.tag, None, p.output, tilejson));
        }
        let counts = aggregates.count_by_area(s, &tiles, &p.ds, &p.areas, &p.query)?;
        Ok((p.tag, Some(counts), p.output, tilejson))
    })
    .await?;
    let (tag, counts, output, tilejson) = answer;
    let Some(counts) = counts else {
        return Ok(tag.not_modified());
    };
    let etag = (header::ETAG, tag.header_value());
    Ok(match output {
        Output::Json => (
            [content_type("application/json"), etag],
            with_tiles_link(to_json(&counts), &tilejson).to_string(),
        )
            .into_response(),
        Output::Csv => (
            [content_type("text/csv; charset=utf-8"), etag],
            to_csv(&counts)?,
        )
            .into_response(),
    })
}

/// `GET /collections/{id}/aggregate/{z}/{x}/{y}.mvt?by={areas}&…`: the areas of `by`
/// in one tile, each with its count, density and rate (the choropleth of the map).
pub async fn choropleth(
    State(state): State<AppState>,
    Path(path): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (id, z, x, file) = path;
    let y = file
        .strip_suffix(".mvt")
        .ok_or_else(|| ApiError::not_found("choropleth tiles end in .mvt"))?;
    let tile = query::parse_coord(&z, &x, y)?;
    let (tiles, aggregates) = (state.tiles.clone(), state.aggregates.clone());
    let (tag, body) = with_snapshot(&state, move |s| {
        let p = parse(s, &id, raw.as_deref(), Target::Tile(tile))?;
        if p.tag.matches(&headers) {
            return Ok((p.tag, None));
        }
        let counts = aggregates.count_by_area(s, &tiles, &p.ds, &p.areas, &p.query)?;
        let (extent, buffer) = (tiles.config.extent, tiles.config.buffer);
        let body = crate::aggregate::choropleth_tile(s, &p.areas, &counts, tile, extent, buffer)?;
        Ok((p.tag, Some(body)))
    })
    .await?;
    let Some(body) = body else {
        return Ok(tag.not_modified());
    };
    let etag = (header::ETAG, tag.header_value());
    Ok(match body {
        None => (StatusCode::NO_CONTENT, [etag]).into_response(),
        Some(bytes) => (
            [content_type("application/vnd.mapbox-vector-tile"), etag],
            bytes,
        )
            .into_response(),
    })
}

/// The `by` and filters of `p` as a query string (`by` first, as people write it).
fn counts_query(p: &Parsed) -> String {
    let by = serde_urlencoded::to_string([("by", p.areas.id.as_str())]).unwrap_or_default();
    match p.filters.as_str() {
        "" => by,
        f => format!("{by}&{f}"),
    }
}

fn tilejson_url(base: &str, p: &Parsed) -> String {
    format!(
        "{base}/collections/{}/aggregate/tiles.json?{}",
        p.ds.id,
        counts_query(p)
    )
}

/// The counts with a link to the choropleth tiles of the same `by` and filters.
fn with_tiles_link(mut body: Json, tilejson: &str) -> Json {
    body["links"] = json!([{
        "rel": "tiles", "type": "application/json", "href": tilejson,
        "title": "Choropleth vector tiles of these counts (TileJSON 3.0)",
    }]);
    body
}

/// `GET /collections/{id}/aggregate/tiles.json?by={areas}&…`: TileJSON 3.0 of the
/// choropleth tiles, whose one layer (named after `by`) lists exactly the properties
/// the tiles carry. Tile URLs carry both datasets' versions, so a re-import is a new URL.
pub async fn tilejson(
    State(state): State<AppState>,
    c: CollectionRequest,
) -> Result<Response, ApiError> {
    let (id, raw, base) = (c.id, c.query, c.base);
    let body = with_snapshot(&state, move |s| {
        let p = parse(s, &id, raw.as_deref(), Target::TileJson)?;
        Ok(choropleth_tilejson(&base, &p))
    })
    .await?;
    Ok(([content_type("application/json")], body.to_string()).into_response())
}

fn choropleth_tilejson(base: &str, p: &Parsed) -> Json {
    use crate::render::tilejson::{MAX_ZOOM, MIN_ZOOM, WORLD};
    let fields: serde_json::Map<String, Json> = crate::aggregate::choropleth_fields(&p.areas)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    let b = p.areas.bounds.map_or(WORLD, |b| b.to_array());
    let tiles = format!(
        "{base}/collections/{}/aggregate/{{z}}/{{x}}/{{y}}.mvt?{}&v={}.{}",
        p.ds.id,
        counts_query(p),
        p.ds.version,
        p.areas.version
    );
    let mut attribution: Vec<&str> = [&p.ds.meta.attribution, &p.areas.meta.attribution]
        .into_iter()
        .map(String::as_str)
        .filter(|a| !a.is_empty())
        .collect();
    // Points and areas often come from the same publisher ("City of Chicago" twice).
    attribution.dedup();
    json!({
        "tilejson": "3.0.0",
        "name": format!("{} by {}", p.ds.meta.title, p.areas.meta.title),
        "attribution": attribution.join("; "),
        "scheme": "xyz",
        "tiles": [tiles],
        "minzoom": MIN_ZOOM,
        "maxzoom": MAX_ZOOM,
        "bounds": b,
        "vector_layers": [{
            "id": p.areas.id.as_str(),
            "description": format!("Areas of {} with counts of {}", p.areas.meta.title, p.ds.meta.title),
            "minzoom": MIN_ZOOM,
            "maxzoom": MAX_ZOOM,
            "fields": fields,
        }],
    })
}

/// Rounds to what a reader needs (and what keeps bodies short): 1e-6 relative.
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return 0.0;
    }
    let digits = 6 - x.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits.clamp(0, 12));
    (x * scale).round() / scale
}

pub fn to_json(c: &AreaCounts) -> Json {
    let areas: Vec<Json> = c
        .areas
        .iter()
        .map(|a| {
            let mut row = json!({
                "id": a.id, "name": a.name, "count": a.count,
                "area_km2": round(a.area_km2), "density": round(a.density),
            });
            if c.has_population {
                row["rate"] = json!(a.rate.map(round));
            }
            row
        })
        .collect();
    json!({"by": c.by, "areas": areas, "outside": c.outside, "total": c.total})
}

fn to_csv(c: &AreaCounts) -> Result<String, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["id", "name", "count", "area_km2", "density"];
    if c.has_population {
        header.push("rate");
    }
    w.write_record(&header).map_err(ApiError::internal)?;
    for a in &c.areas {
        let mut row = vec![
            a.id.clone(),
            a.name.clone().unwrap_or_default(),
            a.count.to_string(),
            round(a.area_km2).to_string(),
            round(a.density).to_string(),
        ];
        if c.has_population {
            row.push(a.rate.map(|r| round(r).to_string()).unwrap_or_default());
        }
        w.write_record(&row).map_err(ApiError::internal)?;
    }
    let bytes = w.into_inner().map_err(ApiError::internal)?;
    String::from_utf8(bytes).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::round;

    #[test]
    fn rounding_keeps_six_significant_digits() {
        assert_eq!(round(12_308.778_3), 12_308.8);
        assert_eq!(round(0.001_234_567_8), 0.001_234_57);
        assert_eq!(round(0.0), 0.0);
        assert_eq!(round(f64::NAN), 0.0);
    }
}
