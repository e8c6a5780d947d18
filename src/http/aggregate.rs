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
    query: crate::store::Query,
    output: Output,
    tag: Validator,
}

/// Reads the datasets and parameters; `tile` is the choropleth tile asked for, if any
/// (then `f` is not taken).
fn parse(
    s: &dyn Snapshot,
    id: &str,
    raw: Option<&str>,
    tile: Option<TileCoord>,
) -> Result<Parsed, ApiError> {
    let ds = dataset(s, id)?;
    // `by` and `f` are ours; the rest are the items filters, parsed as everywhere.
    let (mut by, mut output) = (None, Output::Json);
    let mut rest = Vec::new();
    for (k, v) in query::pairs(raw)? {
        match k.as_str() {
            "by" => by = Some(v),
            "f" if tile.is_none() => {
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
    let at = tile
        .map(|t| format!("{}/{}/{}", t.z(), t.x(), t.y()))
        .unwrap_or_default();
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
        query: req.query,
        output,
        tag,
    })
}

pub async fn aggregate(
    State(state): State<AppState>,
    c: CollectionRequest,
) -> Result<Response, ApiError> {
    let (id, raw, headers) = (c.id, c.query, c.headers);
    let (tiles, aggregates) = (state.tiles.clone(), state.aggregates.clone());
    let answer = with_snapshot(&state, move |s| {
        let p = parse(s, &id, raw.as_deref(), None)?;
        if p.tag.matches(&headers) {
            return Ok((p.tag, None, p.output));
        }
        let counts = aggregates.count_by_area(s, &tiles, &p.ds, &p.areas, &p.query)?;
        Ok((p.tag, Some(counts), p.output))
    })
    .await?;
    let (tag, counts, output) = answer;
    let Some(counts) = counts else {
        return Ok(tag.not_modified());
    };
    let etag = (header::ETAG, tag.header_value());
    Ok(match output {
        Output::Json => (
            [content_type("application/json"), etag],
            to_json(&counts).to_string(),
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
        let p = parse(s, &id, raw.as_deref(), Some(tile))?;
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
