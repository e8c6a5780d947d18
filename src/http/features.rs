//! OGC API - Features resources: landing page, conformance, collections, items, queryables.

use super::conditional::Validator;
use super::error::ApiError;
use super::extract::CollectionRequest;
pub(crate) use super::extract::dataset;
use super::formats::{self, geojson};
use super::lanes::{self, Deadline, LaneError, Weight};
use super::{AppState, base_url, content_type, html, negotiate};
use crate::model::{DatasetInfo, TimeRange};
use crate::query::{self, Format, ItemsRequest, ParamSet};
use crate::store::Snapshot;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

pub const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
];

const GEOJSON: &str = geojson::GEOJSON;
const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

fn link(href: String, rel: &str, ty: &str, title: &str) -> Json {
    json!({"href": href, "rel": rel, "type": ty, "title": title})
}

/// Runs `f` with a catalog snapshot on a blocking thread.
pub async fn with_snapshot<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Snapshot) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let catalog = state.catalog.clone();
    tokio::task::spawn_blocking(move || {
        let snap = catalog.snapshot()?;
        f(&*snap)
    })
    .await?
}

fn json_response(body: &Json, ty: &'static str) -> Response {
    ([content_type(ty)], body.to_string()).into_response()
}

fn html_response(body: String) -> Response {
    ([content_type("text/html; charset=utf-8")], body).into_response()
}

pub async fn landing(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let format = negotiate(query::format_only(q.as_deref())?, &headers);
    let base = base_url(&state, &headers);
    let body = json!({
        "title": "Tessera",
        "description": "Open government data as OGC API - Features and vector tiles.",
        "links": [
            link(format!("{base}/"), "self", "application/json", "This document"),
            link(format!("{base}/?f=html"), "alternate", "text/html", "This document as HTML"),
            link(format!("{base}/api"), "service-desc", "application/vnd.oai.openapi+json;version=3.0", "The API definition"),
            link(format!("{base}/api.html"), "service-doc", "text/html", "The API documentation"),
            link(format!("{base}/conformance"), "conformance", "application/json", "Conformance classes"),
            link(format!("{base}/collections"), "data", "application/json", "The collections"),
        ]
    });
    Ok(match format {
        Format::Html => {
            let datasets = with_snapshot(&state, |s| Ok(s.datasets()?)).await?;
            html_response(super::maps::catalog_page(&base, &datasets)?)
        }
        _ => json_response(&body, "application/json"),
    })
}

pub async fn conformance(headers: HeaderMap, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    Ok(
        match negotiate(query::format_only(q.as_deref())?, &headers) {
            Format::Html => html_response(html::conformance(CONFORMANCE)),
            _ => json_response(&json!({"conformsTo": CONFORMANCE}), "application/json"),
        },
    )
}

/// The `/collections/{id}` document.
pub fn collection_json(base: &str, ds: &DatasetInfo) -> Json {
    let id = &ds.id;
    let c = format!("{base}/collections/{id}");
    let bbox = ds
        .bounds
        .map(|b| vec![b.to_array()])
        .unwrap_or_else(|| vec![[-180.0, -90.0, 180.0, 90.0]]);
    let interval = ds
        .time_extent
        .map(|t| json!([[ds.format_time(t.start), ds.format_time(t.end)]]))
        .unwrap_or(json!([[null, null]]));
    json!({
        "id": id,
        "title": ds.meta.title,
        "description": ds.meta.description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {
            "spatial": {"bbox": bbox, "crs": CRS84},
            "temporal": {"interval": interval, "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
        },
        "kind": ds.meta.kind.name(),
        // Set when features have an end as well as a start (calendars read this).
        "endTimeField": ds.meta.end_time,
        "attribution": ds.meta.attribution,
        "license": ds.meta.licence,
        "geometryType": ds.geometry_type,
        "featureCount": ds.feature_count,
        "featuresWithoutGeometry": ds.without_geometry.iter().map(|(k, n)| (k.name().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "version": ds.version,
        "updated": ds.updated,
        "links": [
            link(c.clone(), "self", "application/json", "This collection"),
            link(format!("{c}?f=html"), "alternate", "text/html", "This collection as HTML"),
            link(format!("{c}/items"), "items", GEOJSON, "Features as GeoJSON"),
            link(format!("{c}/items?f=html"), "items", "text/html", "Features as HTML"),
            link(format!("{c}/items?f=csv"), "items", "text/csv", "All features as CSV"),
            link(format!("{c}/items?f=ics"), "items", "text/calendar", "Features with a time as iCalendar events"),
            link(format!("{c}/queryables"), "http://www.opengis.net/def/rel/ogc/1.0/queryables", "application/schema+json", "Queryable properties"),
        ]
    })
}

pub async fn collections(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let format = negotiate(query::format_only(q.as_deref())?, &headers);
    let base = base_url(&state, &headers);
    let datasets = with_snapshot(&state, |s| Ok(s.datasets()?)).await?;
    Ok(match format {
        Format::Html => html_response(html::collections(&base, &datasets)),
        _ => {
            let body = json!({
                "links": [
                    link(format!("{base}/collections"), "self", "application/json", "The collections"),
                    link(format!("{base}/collections?f=html"), "alternate", "text/html", "The collections as HTML"),
                ],
                "collections": datasets.iter().map(|d| collection_json(&base, d)).collect::<Vec<_>>(),
            });
            json_response(&body, "application/json")
        }
    })
}

pub async fn collection(
    State(state): State<AppState>,
    c: CollectionRequest,
) -> Result<Response, ApiError> {
    let format = c.format()?;
    let ds = c.dataset(&state).await?;
    Ok(match format {
        Format::Html => html_response(html::collection(&c.base, &ds)),
        _ => json_response(&collection_json(&c.base, &ds), "application/json"),
    })
}

pub async fn queryables(
    State(state): State<AppState>,
    c: CollectionRequest,
) -> Result<Response, ApiError> {
    let format = c.format()?;
    let ds = c.dataset(&state).await?;
    let base = &c.base;
    if format == Format::Html {
        return Ok(html_response(html::queryables(base, &ds)));
    }
    let mut props = serde_json::Map::new();
    let geom_format = match ds.geometry_type.as_deref() {
        Some("Point") => "geometry-point",
        Some("LineString") => "geometry-linestring",
        Some("Polygon") => "geometry-polygon",
        Some("MultiPolygon") => "geometry-multipolygon",
        Some("MultiLineString") => "geometry-multilinestring",
        _ => "geometry-any",
    };
    props.insert("geometry".into(), json!({"format": geom_format}));
    for f in &ds.fields {
        let schema = super::openapi::field_schema(f.ty);
        props.insert(f.name.clone(), schema);
    }
    let body = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{base}/collections/{}/queryables", ds.id),
        "type": "object",
        "title": ds.meta.title,
        "properties": props,
        "additionalProperties": false,
    });
    Ok(json_response(&body, "application/schema+json"))
}

/// The weak ETag of a feature page or feature (see [`super::conditional`] for why weak): the
/// dataset's version, the `within=` area's `dataset@version` (a re-import of the area
/// changes the answer) and the normalised request.
fn etag(ds: &DatasetInfo, area: &str, what: &str) -> Validator {
    Validator::weak(&[
        ds.id.as_str().as_bytes(),
        &ds.version.to_le_bytes(),
        area.as_bytes(),
        what.as_bytes(),
    ])
}

/// The query string without paging parameters, for building page links.
fn query_without(q: Option<&str>, drop: &[&str]) -> String {
    query::pairs(q)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()))
        .map(|(k, v)| format!("{}={}", urlencode(&k), urlencode(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e[1..].to_owned())
        .unwrap_or_default()
}

/// What the blocking part of an items request decided.
enum ItemsOutcome {
    NotModified(Validator),
    Export(DatasetInfo, Validator, super::export::Export),
    Page {
        ds: DatasetInfo,
        // Boxed to keep the enum small (clippy::large_enum_variant).
        req: Box<ItemsRequest>,
        tag: Validator,
        format: Format,
        matched: u64,
        features: Vec<crate::store::StoredFeature>,
    },
}

/// The blocking part of an items request, all in one snapshot: validate, answer 304
/// from the ETag without touching rows, else read the page (and count, unless the page
/// tells) or spool the export.
fn items_in_snapshot(
    s: &dyn Snapshot,
    c: &CollectionRequest,
    deadline: &Deadline,
) -> Result<ItemsOutcome, ApiError> {
    let (q, headers) = (c.query.as_deref(), &c.headers);
    let ds = dataset(s, &c.id)?;
    let mut req = query::parse_items(&ds, q, ParamSet::Items)?;
    let area = query::resolve_within(s, &mut req)?;
    let format = negotiate(req.format, headers);
    let tag = etag(
        &ds,
        &area.unwrap_or_default(),
        &format!("{:?}|{}", format, q.unwrap_or("")),
    );
    if tag.matches(headers) {
        return Ok(ItemsOutcome::NotModified(tag));
    }
    // CSV and iCalendar are export formats: every match (unless a limit is given), spooled.
    if matches!(format, Format::Csv | Format::Ics) {
        let export = super::export::spool(s, &c.base, &ds, req, format, deadline)?;
        return Ok(ItemsOutcome::Export(ds, tag, export));
    }
    let mut features = Vec::new();
    let mut cut = false;
    s.scan(&ds, &req.query, &mut |f| {
        features.push(f);
        cut = deadline.passed();
        !cut
    })?;
    // A page that is not full holds the last matches: their number and the offset are
    // the count, without a second query (the usual case for a map view's bbox).
    let returned = features.len() as u64;
    let short = req.query.limit.is_some_and(|l| returned < l);
    let matched = if short && !cut && (returned > 0 || req.query.offset == 0) {
        req.query.offset + returned
    } else {
        s.count(&ds, &req.query)?
    };
    Ok(ItemsOutcome::Page {
        ds,
        req: Box::new(req),
        tag,
        format,
        matched,
        features,
    })
}

pub async fn items(
    State(state): State<AppState>,
    c: CollectionRequest,
) -> Result<Response, LaneError> {
    // Exports, big, deep and sorted pages take the heavy lane; an export also needs a
    // delivery slot, taken first so that a full server refuses before scanning.
    let weight = lanes::items_weight(c.query.as_deref());
    let slot = match weight {
        Weight::Export => Some(state.lanes.export_slot()?),
        _ => None,
    };
    let work = {
        let c = c.clone();
        move |s: &dyn Snapshot, deadline: &Deadline| items_in_snapshot(s, &c, deadline)
    };
    let outcome = match weight {
        Weight::Light => with_snapshot(&state, move |s| work(s, &Deadline::none())).await?,
        _ => state.lanes.run(state.catalog.clone(), work).await?,
    };
    let (ds, req, tag, format, matched, features) = match outcome {
        ItemsOutcome::NotModified(tag) => return Ok(tag.not_modified()),
        ItemsOutcome::Export(ds, tag, export) => {
            let max = state.lanes.config.export_max;
            return Ok(super::export::export_response(
                &ds,
                tag.header_value(),
                export,
                slot,
                max,
            ));
        }
        ItemsOutcome::Page {
            ds,
            req,
            tag,
            format,
            matched,
            features,
        } => (ds, req, tag, format, matched, features),
    };
    // What the page shows, without how it is paged or written: the map of the same view.
    let view = query_without(
        c.query.as_deref(),
        &["limit", "offset", "sortby", "properties", "f"],
    );
    let page = formats::Page {
        matched,
        returned: features.len(),
        offset: req.query.offset,
        limit: req.query.limit.unwrap_or(query::DEFAULT_LIMIT),
        links: &[],
        view: &view,
    };
    let links = page_links(&c, &ds, &page);
    let collection = formats::Collection {
        base: &c.base,
        ds: &ds,
        properties: req.properties.as_deref(),
        page: Some(formats::Page {
            links: &links,
            ..page
        }),
    };
    let (ty, body) =
        formats::write_all(format, &collection, features).map_err(ApiError::internal)?;
    let ty = axum::http::HeaderValue::from_static(ty);
    Ok((
        [
            (header::CONTENT_TYPE, ty),
            (header::ETAG, tag.header_value()),
        ],
        body,
    )
        .into_response())
}

/// The links of an items page: itself, its other formats, the collection, and the
/// next and previous pages where there are any.
fn page_links(c: &CollectionRequest, ds: &DatasetInfo, page: &formats::Page<'_>) -> Vec<Json> {
    let base = &c.base;
    let items = format!("{base}/collections/{}/items", ds.id);
    let rest = query_without(c.query.as_deref(), &["offset", "f"]);
    let with = |extra: String| {
        if rest.is_empty() {
            extra
        } else {
            format!("{rest}&{extra}")
        }
    };
    let (offset, limit) = (page.offset, page.limit);
    let mut links = vec![
        link(
            format!("{items}?{}", with(format!("offset={offset}"))),
            "self",
            GEOJSON,
            "This page",
        ),
        link(
            format!("{items}?{}", with(format!("offset={offset}&f=html"))),
            "alternate",
            "text/html",
            "This page as HTML",
        ),
        link(
            format!("{items}?{}", with("f=csv".into())),
            "alternate",
            "text/csv",
            "All matching features as CSV",
        ),
        link(
            format!("{base}/collections/{}", ds.id),
            "collection",
            "application/json",
            "The collection",
        ),
    ];
    if offset.saturating_add(page.returned as u64) < page.matched {
        links.push(link(
            format!(
                "{items}?{}",
                with(format!("offset={}", offset.saturating_add(limit)))
            ),
            "next",
            GEOJSON,
            "Next page",
        ));
    }
    if offset > 0 {
        links.push(link(
            format!(
                "{items}?{}",
                with(format!("offset={}", offset.saturating_sub(limit)))
            ),
            "prev",
            GEOJSON,
            "Previous page",
        ));
    }
    links
}

pub async fn item(
    State(state): State<AppState>,
    c: CollectionRequest,
) -> Result<Response, ApiError> {
    let format = c.format()?;
    let fid = c.fid.clone().unwrap_or_default();
    let (ds, f) = with_snapshot(&state, {
        let (id, fid) = (c.id.clone(), fid.clone());
        move |s| {
            let ds = dataset(s, &id)?;
            let f = s
                .feature(&ds, &fid)?
                .ok_or_else(|| ApiError::not_found(format!("no feature `{fid}` in `{}`", ds.id)))?;
            Ok((ds, f))
        }
    })
    .await?;
    let tag = etag(&ds, "", &format!("{format:?}|item|{fid}"));
    if tag.matches(&c.headers) {
        return Ok(tag.not_modified());
    }
    let tag = tag.header_value();
    let base = &c.base;
    if format == Format::Html {
        return Ok((
            [(header::ETAG, tag)],
            html_response(html::item(base, &ds, &f)),
        )
            .into_response());
    }
    let mut out = Vec::new();
    geojson::feature(&mut out, &ds, &f, None);
    out.pop(); // reopen the Feature object to add its links
    let href = format!("{base}/collections/{}/items/{}", ds.id, urlencode(&f.id));
    let links = json!([
        link(href.clone(), "self", GEOJSON, "This feature"),
        link(
            format!("{href}?f=html"),
            "alternate",
            "text/html",
            "This feature as HTML"
        ),
        link(
            format!("{base}/collections/{}", ds.id),
            "collection",
            "application/json",
            "The collection"
        ),
    ]);
    out.extend_from_slice(br#","links":"#);
    out.extend_from_slice(links.to_string().as_bytes());
    out.push(b'}');
    Ok(([content_type(GEOJSON), (header::ETAG, tag)], out).into_response())
}

/// `/collections/{id}/histogram`: counts per time bucket for the same filters as items.
/// Most buckets a histogram answers with (about 27 years of days).
const MAX_BUCKETS: usize = 10_000;

pub async fn histogram(
    State(state): State<AppState>,
    c: CollectionRequest,
) -> Result<Response, LaneError> {
    let (id, q) = (c.id, c.query);
    // Big datasets (or ones the tile side has not seen yet) take the heavy lane.
    let rows_known = (state.catalog.data_stamp().ok())
        .and_then(|stamp| state.tiles.known(stamp, &id))
        .and_then(|d| d.first().map(|d| d.feature_count));
    let heavy = rows_known.is_none_or(|n| n > lanes::LIGHT_ROWS);
    let work = move |s: &dyn Snapshot, _: &Deadline| {
        let ds = dataset(s, &id)?;
        let mut req = query::parse_items(&ds, q.as_deref(), ParamSet::Histogram)?;
        query::resolve_within(s, &mut req)?;
        let bucket = match (req.bucket, ds.time_extent) {
            (Some(b), _) => b,
            (None, Some(t)) => crate::store::Bucket::for_extent(t),
            (None, None) => crate::store::Bucket::Day,
        };
        let counted = s.histogram(&ds, &req.query, bucket)?;
        let total: u64 = counted.iter().map(|(_, n)| n).sum();
        // Every bucket of the period, empty ones included, so a chart has no gaps.
        let span = match (ds.time_extent, req.query.time) {
            (Some(e), Some(q)) => Some(TimeRange {
                start: e.start.max(q.start),
                end: e.end.min(q.end),
            }),
            (e, _) => e,
        };
        let rows = match span.filter(|s| s.start <= s.end) {
            None => counted,
            Some(span) => {
                let series = bucket
                    .series(span, MAX_BUCKETS, &ds.zone())
                    .ok_or_else(|| {
                        ApiError::bad_param(
                            "bucket",
                            format!(
                                "more than {MAX_BUCKETS} {} buckets: choose a wider bucket",
                                bucket.name()
                            ),
                        )
                    })?;
                let counts: std::collections::HashMap<i64, u64> =
                    counted.iter().map(|(r, n)| (r.start, *n)).collect();
                series
                    .into_iter()
                    .map(|r| {
                        let n = counts.get(&bucket.containing(r.start, &ds.zone()).start);
                        (r, n.copied().unwrap_or(0))
                    })
                    .collect()
            }
        };
        // In the dataset's zone, so that a bucket's text starts with its local date.
        let rows: Vec<Json> = rows
            .iter()
            .map(|(r, n)| json!({"start": ds.format_time(r.start), "end": ds.format_time(r.end), "count": n}))
            .collect();
        Ok((bucket, rows, total))
    };
    let (bucket, buckets, total) = match heavy {
        true => state.lanes.run(state.catalog.clone(), work).await?,
        false => with_snapshot(&state, move |s| work(s, &Deadline::none())).await?,
    };
    Ok(json_response(
        &json!({"bucket": bucket.name(), "buckets": buckets, "total": total}),
        "application/json",
    ))
}
