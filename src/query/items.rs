//! The parameters of feature requests (items pages, exports, histograms, and the filters
//! of tiles), validated into an [`ItemsRequest`] around a [`Query`].
//!
//! [`ITEMS_PARAMS`] is the single list of accepted parameters: the parser checks against
//! it and the OpenAPI document is generated from it, so the two cannot disagree.

use super::QueryError;
use crate::model::DatasetId;
use crate::model::time::TimeFormat;
use crate::model::{Bounds, DatasetInfo, FieldType, TimeRange, Value};
use crate::store::{Bucket, Query, Snapshot, StoredGeometry, Within};
use jiff::tz::TimeZone;

/// Items pages: default and maximum page size.
pub const DEFAULT_LIMIT: u64 = 10;
pub const MAX_LIMIT: u64 = 10_000;

/// Caps on list parameters (documented in the OpenAPI document; a 400 beyond them). They
/// bound the work and memory one request can ask for: SQLite rejects expression trees
/// deeper than 1,000, and every sort term is a comparison per row pair.
pub const MAX_CATEGORY_VALUES: usize = 100;
pub const MAX_SORTBY: usize = 8;
pub const MAX_PROPERTIES: usize = 256;
/// Datasets in one tile URL (`/tiles/a,b,c/...`): each is a layer drawn per tile.
pub const MAX_LAYERS: usize = 16;
/// A documented query parameter: name, JSON schema, description.
#[derive(Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub schema: &'static str,
    pub description: &'static str,
}

pub const ITEMS_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "limit",
        schema: r#"{"type":"integer","minimum":1,"maximum":10000,"default":10}"#,
        description: "Page size; larger values are clamped to 10000.",
    },
    ParamSpec {
        name: "offset",
        schema: r#"{"type":"integer","minimum":0,"default":0}"#,
        description: "Number of matching features to skip.",
    },
    ParamSpec {
        name: "bbox",
        schema: r#"{"type":"array","minItems":4,"maxItems":6,"items":{"type":"number"}}"#,
        description: "minLon,minLat,maxLon,maxLat in CRS84 (6 numbers: with heights, ignored). minLon > maxLon crosses the antimeridian. Features without geometry never match.",
    },
    ParamSpec {
        name: "bbox-crs",
        schema: r#"{"type":"string","enum":["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]}"#,
        description: "Only CRS84 is supported.",
    },
    ParamSpec {
        name: "datetime",
        schema: r#"{"type":"string"}"#,
        description: "An instant or date (2018-11-05, 2018-11-05T10:00:00Z, 2018-11) or an interval a/b with `..` or empty for an open end. Matches features whose time intersects it, ends included; features without time never match.",
    },
    ParamSpec {
        name: "within",
        schema: r#"{"type":"string"}"#,
        description: "dataset/featureId of a polygon: only features inside it.",
    },
    ParamSpec {
        name: "sortby",
        schema: r#"{"type":"array","maxItems":8,"uniqueItems":true,"items":{"type":"string"}}"#,
        description: "Comma list of at most 8 fields, each once, each optionally prefixed by + (ascending) or - (descending).",
    },
    ParamSpec {
        name: "properties",
        schema: r#"{"type":"array","maxItems":256,"items":{"type":"string"}}"#,
        description: "Comma list of the properties to return (at most 256).",
    },
    ParamSpec {
        name: "f",
        schema: r#"{"type":"string","enum":["json","geojson","html","csv","ics"]}"#,
        description: "Output format; csv and ics (iCalendar, RFC 5545: one event per item with a time) return every match (no limit unless given), streamed.",
    },
];

/// Output format of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
    Csv,
    /// iCalendar (RFC 5545): an export, like CSV.
    Ics,
}

/// A validated items request.
#[derive(Debug, Clone)]
pub struct ItemsRequest {
    pub query: Query,
    /// Field indexes to return, `None` for all.
    pub properties: Option<Vec<usize>>,
    pub format: Option<Format>,
    /// Whether the client gave an explicit limit (CSV exports everything otherwise).
    pub explicit_limit: bool,
    /// `within=dataset/featureId`, resolved against the catalog by [`resolve_within`].
    pub within_ref: Option<(String, String)>,
    /// `bucket=` of a histogram request.
    pub bucket: Option<Bucket>,
}

/// Which parameters a resource takes besides the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSet {
    /// Pages: limit, offset, sortby, properties, f.
    Items,
    /// Only the filters.
    Tiles,
    /// The filters and `bucket`.
    Histogram,
}

/// Splits a raw query string into pairs, rejecting repeated names.
pub fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, QueryError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| QueryError::Malformed(format!("malformed query string: {e}")))?;
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    for (k, _) in &pairs {
        // `?=1`: there is no name to report, so the query string is at fault.
        if k.is_empty() {
            return Err(QueryError::Malformed(
                "a value without a parameter name".into(),
            ));
        }
        if !seen.insert(k.as_str()) {
            return Err(QueryError::Repeated(k.clone()));
        }
    }
    Ok(pairs)
}

/// Parses `f`, the only parameter most resources take; anything else is an error.
pub fn format_only(raw: Option<&str>) -> Result<Option<Format>, QueryError> {
    let mut format = None;
    for (k, v) in pairs(raw)? {
        match k.as_str() {
            "f" => format = Some(parse_format(&v, false)?),
            _ => return Err(unknown(&k)),
        }
    }
    Ok(format)
}

fn unknown(k: &str) -> QueryError {
    QueryError::Unknown(k.to_owned())
}

pub fn parse_format(v: &str, csv_ok: bool) -> Result<Format, QueryError> {
    match v {
        "json" | "geojson" => Ok(Format::Json),
        "html" => Ok(Format::Html),
        "csv" if csv_ok => Ok(Format::Csv),
        "ics" if csv_ok => Ok(Format::Ics),
        _ => Err(QueryError::invalid(
            "f",
            format!(
                "unknown format `{v}`: use json or html{}",
                if csv_ok { ", csv or ics" } else { "" }
            ),
        )),
    }
}

/// Parses the query of an items, tiles or histogram request for `ds`.
pub fn parse_items(
    ds: &DatasetInfo,
    raw: Option<&str>,
    set: ParamSet,
) -> Result<ItemsRequest, QueryError> {
    let paging = set == ParamSet::Items;
    let mut req = ItemsRequest {
        query: Query::default(),
        properties: None,
        format: None,
        explicit_limit: false,
        within_ref: None,
        bucket: None,
    };
    req.query.limit = Some(DEFAULT_LIMIT);
    for (k, v) in pairs(raw)? {
        match k.as_str() {
            "limit" if paging => {
                let n: i64 = v.trim().parse().map_err(|_| {
                    QueryError::invalid("limit", format!("`{v}` is not an integer"))
                })?;
                if n < 1 {
                    return Err(QueryError::invalid("limit", "limit must be at least 1"));
                }
                req.query.limit = Some((n as u64).min(MAX_LIMIT));
                req.explicit_limit = true;
            }
            "offset" if paging => {
                // Bounded by what SQLite's signed 64-bit OFFSET can hold.
                req.query.offset = v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&o| o <= i64::MAX as u64)
                    .ok_or_else(|| {
                        QueryError::invalid(
                            "offset",
                            format!("`{v}` is not an integer from 0 to {}", i64::MAX),
                        )
                    })?;
            }
            "bbox" => req.query.bbox = parse_bbox(&v)?,
            "bbox-crs" => {
                if v != "http://www.opengis.net/def/crs/OGC/1.3/CRS84" {
                    return Err(QueryError::invalid(
                        "bbox-crs",
                        format!("unsupported CRS `{v}`: only CRS84"),
                    ));
                }
            }
            "datetime" => req.query.time = parse_datetime(&v)?,
            "within" => {
                let (d, f) = v
                    .split_once('/')
                    .filter(|(d, f)| !d.is_empty() && !f.is_empty())
                    .ok_or_else(|| {
                        QueryError::invalid("within", format!("`{v}` is not dataset/featureId"))
                    })?;
                req.within_ref = Some((d.to_owned(), f.to_owned()));
            }
            "bucket" if set == ParamSet::Histogram => {
                req.bucket = Some(match v.as_str() {
                    "day" => Bucket::Day,
                    "week" => Bucket::Week,
                    "month" => Bucket::Month,
                    _ => {
                        return Err(QueryError::invalid(
                            "bucket",
                            format!("`{v}` is not day, week or month"),
                        ));
                    }
                })
            }
            "sortby" if paging => req.query.sort = parse_sortby(ds, &v)?,
            "properties" if paging => req.properties = Some(parse_properties(ds, &v)?),
            "f" if paging => req.format = Some(parse_format(&v, true)?),
            _ => match ds.field_index(&k) {
                Some(i) => {
                    // The category field takes a comma list ("any of"), which the map's legend needs.
                    let is_category = ds.meta.category.as_deref() == Some(k.as_str());
                    let values = if is_category {
                        if v.split(',').nth(MAX_CATEGORY_VALUES).is_some() {
                            return Err(QueryError::invalid(
                                &k,
                                format!("at most {MAX_CATEGORY_VALUES} values, comma-separated"),
                            ));
                        }
                        v.split(',')
                            .map(|p| parse_typed(&k, ds.fields[i].ty, p))
                            .collect::<Result<Vec<_>, _>>()?
                    } else {
                        vec![parse_typed(&k, ds.fields[i].ty, &v)?]
                    };
                    req.query.equals.push((i, values));
                }
                None => return Err(unknown(&k)),
            },
        }
    }
    Ok(req)
}

/// Loads the area named by `within=` from the catalog into the query. Returns the area
/// dataset's `id@version`, which the answer depends on (ETags and cache keys include it).
pub fn resolve_within(
    snap: &dyn Snapshot,
    req: &mut ItemsRequest,
) -> Result<Option<String>, QueryError> {
    let Some((d, f)) = req.within_ref.take() else {
        return Ok(None);
    };
    let bad = |m: String| QueryError::invalid("within", m);
    let id = DatasetId::parse(&d).map_err(|_| bad(format!("no dataset `{d}`")))?;
    let ds = snap
        .dataset(&id)?
        .ok_or_else(|| bad(format!("no dataset `{d}`")))?;
    let feature = snap
        .feature(&ds, &f)?
        .ok_or_else(|| bad(format!("no feature `{f}` in `{d}`")))?;
    let area = match &feature.geometry {
        Some(StoredGeometry::Shape { geometry, .. }) => {
            crate::spatial::Area::from_geometry(geometry)
        }
        _ => None,
    }
    .ok_or_else(|| bad(format!("`{d}/{f}` is not a polygon")))?;
    req.query.within = Some(Within { area });
    Ok(Some(format!("{}@{}", ds.id, ds.version)))
}

/// `minx,miny,maxx,maxy` (or 6 numbers with heights). Two boxes when crossing the antimeridian.
pub fn parse_bbox(v: &str) -> Result<Vec<Bounds>, QueryError> {
    let bad = |m: String| QueryError::invalid("bbox", m);
    if v.split(',').nth(6).is_some() {
        return Err(bad("expected 4 or 6 numbers, got more".into()));
    }
    let nums: Vec<f64> = v
        .split(',')
        .map(|p| p.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| bad(format!("`{v}` is not a list of numbers")))?;
    let (min_x, min_y, max_x, max_y) = match nums.as_slice() {
        [a, b, c, d] => (*a, *b, *c, *d),
        [a, b, _, d, e, _] => (*a, *b, *d, *e),
        _ => return Err(bad(format!("expected 4 or 6 numbers, got {}", nums.len()))),
    };
    if !(-90.0..=90.0).contains(&min_y) || !(-90.0..=90.0).contains(&max_y) || min_y > max_y {
        return Err(bad(
            "latitudes must be within [-90, 90] with min <= max".into()
        ));
    }
    if !(-180.0..=180.0).contains(&min_x) || !(-180.0..=180.0).contains(&max_x) {
        return Err(bad("longitudes must be within [-180, 180]".into()));
    }
    Ok(if min_x <= max_x {
        vec![Bounds {
            min_x,
            min_y,
            max_x,
            max_y,
        }]
    } else {
        vec![
            Bounds {
                min_x,
                min_y,
                max_x: 180.0,
                max_y,
            },
            Bounds {
                min_x: -180.0,
                min_y,
                max_x,
                max_y,
            },
        ]
    })
}

/// An instant, a date, a month, or an interval with optional open ends.
pub fn parse_datetime(v: &str) -> Result<Option<TimeRange>, QueryError> {
    let bad = || {
        QueryError::invalid(
            "datetime",
            format!("`{v}` is not an RFC 3339 date-time, a date, or an interval a/b"),
        )
    };
    let one = |s: &str| -> Result<Option<TimeRange>, QueryError> {
        let s = s.trim();
        if s.is_empty() || s == ".." {
            return Ok(None);
        }
        [TimeFormat::Iso, TimeFormat::IsoDate, TimeFormat::YearMonth]
            .iter()
            .find_map(|f| f.parse(s, &TimeZone::UTC))
            .map(Some)
            .ok_or_else(bad)
    };
    let range = match v.split_once('/') {
        None => one(v)?.ok_or_else(bad)?,
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            let start = a.map_or(i64::MIN, |r| r.start);
            let end = b.map_or(i64::MAX, |r| r.end);
            // Fully open (`../..`) still means "has a time": features without one never match.

            if start > end {
                return Err(QueryError::invalid(
                    "datetime",
                    format!("`{v}`: the interval ends before it starts"),
                ));
            }
            TimeRange { start, end }
        }
    };
    Ok(Some(range))
}

fn parse_sortby(ds: &DatasetInfo, v: &str) -> Result<Vec<(usize, bool)>, QueryError> {
    if v.split(',').nth(MAX_SORTBY).is_some() {
        return Err(QueryError::invalid(
            "sortby",
            format!("at most {MAX_SORTBY} sort terms"),
        ));
    }
    let terms = v
        .split(',')
        .map(|p| {
            let p = p.trim();
            let (name, desc) = match p.strip_prefix('-') {
                Some(n) => (n, true),
                None => (p.strip_prefix('+').unwrap_or(p), false),
            };
            ds.field_index(name).map(|i| (i, desc)).ok_or_else(|| {
                QueryError::invalid("sortby", format!("no property `{name}` to sort by"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A second term on the same field can never decide an order: it is a client mistake.
    for (n, (i, _)) in terms.iter().enumerate() {
        if terms[..n].iter().any(|(j, _)| j == i) {
            return Err(QueryError::invalid(
                "sortby",
                format!("`{}` is given more than once", ds.fields[*i].name),
            ));
        }
    }
    Ok(terms)
}

fn parse_properties(ds: &DatasetInfo, v: &str) -> Result<Vec<usize>, QueryError> {
    if v.split(',').nth(MAX_PROPERTIES).is_some() {
        return Err(QueryError::invalid(
            "properties",
            format!("at most {MAX_PROPERTIES} properties"),
        ));
    }
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            ds.field_index(p.trim()).ok_or_else(|| {
                QueryError::invalid("properties", format!("no property `{}`", p.trim()))
            })
        })
        .collect()
}

/// A filter value read as the field's type, so `Score=90` compares numbers, not text.
pub fn parse_typed(name: &str, ty: FieldType, v: &str) -> Result<Value, QueryError> {
    let bad = |what: &str| {
        QueryError::invalid(
            name,
            format!("`{v}` is not {what} (property `{name}` is {})", ty.name()),
        )
    };
    Ok(match ty {
        FieldType::Integer => Value::Integer(v.trim().parse().map_err(|_| bad("an integer"))?),
        FieldType::Number => Value::Number(
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("a number"))?,
        ),
        FieldType::Boolean => match v.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(bad("true or false")),
        },
        FieldType::Datetime => {
            let r = TimeFormat::Iso
                .parse(v, &TimeZone::UTC)
                .ok_or_else(|| bad("an RFC 3339 date-time"))?;
            Value::Text(crate::model::time::format_utc(r.start))
        }
        // Stored as `YYYY-MM-DD` / `YYYY-MM`, the only text these formats accept.
        FieldType::Date => TimeFormat::IsoDate
            .parse(v, &TimeZone::UTC)
            .map(|_| Value::Text(v.trim().to_owned()))
            .ok_or_else(|| bad("a date (YYYY-MM-DD)"))?,
        FieldType::Month => TimeFormat::YearMonth
            .parse(v, &TimeZone::UTC)
            .map(|_| Value::Text(v.trim().to_owned()))
            .ok_or_else(|| bad("a month (YYYY-MM)"))?,
        FieldType::String => Value::Text(v.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_forms() {
        assert_eq!(parse_bbox("-2.7,51.4,-2.5,51.5").unwrap().len(), 1);
        assert_eq!(
            parse_bbox("-2.7,51.4,0,-2.5,51.5,10").unwrap()[0].max_y,
            51.5
        );
        let am = parse_bbox("170,-10,-170,10").unwrap();
        assert_eq!(am.len(), 2);
        assert_eq!(
            (am[0].min_x, am[0].max_x, am[1].min_x, am[1].max_x),
            (170.0, 180.0, -180.0, -170.0)
        );
        for bad in [
            "1,2,3",
            "a,b,c,d",
            "0,50,1,40",
            "0,-91,1,0",
            "-181,0,0,1",
            "NaN,0,1,1",
        ] {
            assert!(parse_bbox(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn datetime_forms() {
        let r = parse_datetime("2018-11-01/2018-12-31").unwrap().unwrap();
        assert_eq!(
            crate::model::time::format_utc(r.end),
            "2018-12-31T23:59:59Z"
        );
        assert_eq!(
            parse_datetime("../2018-12-31").unwrap().unwrap().start,
            i64::MIN
        );
        assert_eq!(
            parse_datetime("2018-11-01T00:00:00Z/")
                .unwrap()
                .unwrap()
                .end,
            i64::MAX
        );
        assert_eq!(
            parse_datetime("../..").unwrap(),
            Some(TimeRange {
                start: i64::MIN,
                end: i64::MAX
            })
        );
        assert!(parse_datetime("2018-12-31/2018-11-01").is_err());
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("").is_err());
    }
}
