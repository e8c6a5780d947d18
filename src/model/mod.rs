//! Domain types shared by ingest, store, tiles and HTTP. Each is validated where it is
//! built, so code that receives one never re-checks it.

pub mod time;

use serde::{Deserialize, Serialize};
use std::fmt;

/// A dataset identifier: 1-64 chars of lowercase ASCII letters, digits and `-`, starting
/// with a letter or digit. Safe in URLs, file names and log lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DatasetId(String);

impl DatasetId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok_char) || s.starts_with('-') {
            return Err(format!(
                "dataset id `{s}` must be 1-64 characters of a-z, 0-9 and '-', not starting with '-'"
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DatasetId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DatasetId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The type of a property, inferred at import from every value of the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Integer,
    Number,
    Boolean,
    /// RFC 3339 instant in UTC, normalised at import from any supported input format.
    Datetime,
    /// A calendar date (`2014-12-30`), normalised from any date-only input format. Kept a
    /// date: turning it into an instant would invent a time of day and a zone.
    Date,
    /// A calendar month (`2019-01`), as police forces publish crime data.
    Month,
    String,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Datetime => "datetime",
            FieldType::Date => "date",
            FieldType::Month => "month",
            FieldType::String => "string",
        }
    }

    /// Whether values of this type are times (of any precision).
    pub fn is_time(self) -> bool {
        matches!(
            self,
            FieldType::Datetime | FieldType::Date | FieldType::Month
        )
    }
}

/// How a time value reads to a person: `30 Dec 2014` for a date, `January 2019` for a
/// month; `None` for anything else (instants and text are shown as they are stored).
pub fn human_time(ty: FieldType, text: &str) -> Option<String> {
    let date = |s: &str| s.parse::<jiff::civil::Date>().ok();
    match ty {
        FieldType::Date => date(text).map(|d| d.strftime("%-d %b %Y").to_string()),
        FieldType::Month if text.len() == 7 => date(&format!("{text}-01"))
            .filter(|d| d.strftime("%Y-%m").to_string() == text)
            .map(|d| d.strftime("%B %Y").to_string()),
        _ => None,
    }
}

/// A property column of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
}

/// A typed property value as stored and served.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Number(f64),
    Boolean(bool),
    /// Strings and normalised date-times.
    Text(String),
}

/// Axis-aligned bounds in CRS84 degrees (lon/lat).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl Bounds {
    pub fn of_point(x: f64, y: f64) -> Self {
        Bounds {
            min_x: x,
            min_y: y,
            max_x: x,
            max_y: y,
        }
    }
    pub fn extend(&mut self, o: &Bounds) {
        self.min_x = self.min_x.min(o.min_x);
        self.min_y = self.min_y.min(o.min_y);
        self.max_x = self.max_x.max(o.max_x);
        self.max_y = self.max_y.max(o.max_y);
    }
    pub fn intersects(&self, o: &Bounds) -> bool {
        self.min_x <= o.max_x
            && self.max_x >= o.min_x
            && self.min_y <= o.max_y
            && self.max_y >= o.min_y
    }
    pub fn to_array(self) -> [f64; 4] {
        [self.min_x, self.min_y, self.max_x, self.max_y]
    }
}

/// A closed time interval in Unix seconds (UTC); an instant has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl TimeRange {
    pub fn intersects(&self, o: &TimeRange) -> bool {
        self.start <= o.end && self.end >= o.start
    }
}

/// Why a row was imported without a geometry. Every such row is kept and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoGeometry {
    /// The coordinate cells were empty or the geometry was `null`.
    Missing,
    /// Coordinates that are not numbers or not parseable WKT.
    Unparseable,
    /// Longitude outside [-180, 180] or latitude outside [-90, 90].
    OutOfRange,
    /// Exactly (0, 0): a placeholder that publishers use for "unknown".
    NullIsland,
}

impl NoGeometry {
    pub const ALL: [NoGeometry; 4] = [
        NoGeometry::Missing,
        NoGeometry::Unparseable,
        NoGeometry::OutOfRange,
        NoGeometry::NullIsland,
    ];
    pub fn name(self) -> &'static str {
        match self {
            NoGeometry::Missing => "missing",
            NoGeometry::Unparseable => "unparseable",
            NoGeometry::OutOfRange => "out_of_range",
            NoGeometry::NullIsland => "null_island",
        }
    }
}

/// The kind of data a dataset holds; picks its map style and page layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    #[default]
    Incidents,
    Events,
    Inspections,
    Boundaries,
    Lines,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Incidents => "incidents",
            DatasetKind::Events => "events",
            DatasetKind::Inspections => "inspections",
            DatasetKind::Boundaries => "boundaries",
            DatasetKind::Lines => "lines",
        }
    }
}

/// Descriptive metadata supplied by whoever imports a dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    pub title: String,
    pub description: String,
    pub attribution: String,
    pub licence: String,
    pub source: String,
    pub kind: DatasetKind,
    /// The field whose values colour points and split clusters.
    pub category: Option<String>,
    /// The field holding when each feature ends (`end_time` in a manifest, `--time-end`):
    /// set, the features are spans with a start and an end, which is what calendars and
    /// `f=ics` read; `None` for instants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// For datasets built from a manifest: a digest of the entry and its files, so that
    /// `serve` re-imports only what changed.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// For boundary datasets: the field holding each area's number of residents, which
    /// makes counts by area also a rate per 1,000 residents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<String>,
    /// For datasets whose rows name an area instead of a position: how they join to the
    /// areas of a boundary dataset (counts by area use it for that dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<AreaJoin>,
    /// How the dataset is shown: popup title and fields, extra tile properties.
    #[serde(default)]
    pub display: Display,
}

/// An attribute join: this dataset's `field` holds the value of `key` of one feature of
/// the boundary dataset `areas` (e.g. a community area number).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaJoin {
    pub field: String,
    pub areas: String,
    pub key: String,
}

/// Manifest choices about how a dataset's features are shown to people; each name a field
/// of the dataset (names that are not are ignored where they are used).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Display {
    /// The field that titles a feature's popup (else a name-like field is guessed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_field: Option<String>,
    /// The fields a popup lists, in order (empty: all but the technical ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub popup_fields: Vec<String>,
    /// Fields that point tiles carry besides fid, category and time (see
    /// [`crate::render::tilejson`] for what every tile carries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tile_fields: Vec<String>,
}

/// Everything the catalog knows about one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub id: DatasetId,
    pub meta: DatasetMeta,
    pub fields: Vec<Field>,
    /// "Point", "LineString", ..., "Geometry" when mixed, `None` when no row has one.
    pub geometry_type: Option<String>,
    pub bounds: Option<Bounds>,
    pub time_extent: Option<TimeRange>,
    /// Rows stored, with or without geometry.
    pub feature_count: u64,
    /// Rows stored without geometry, by reason.
    pub without_geometry: Vec<(NoGeometry, u64)>,
    /// Changes on every change of the data; used in ETags and tile URLs.
    pub version: i64,
    /// RFC 3339 time of the last change.
    pub updated: String,
    /// Feature ids are the input's own ids (present and unique in every row); otherwise
    /// they are numbers given at import, stable for as long as the data is not re-imported.
    #[serde(default)]
    pub source_ids: bool,
    /// IANA name of the zone in which the input's local dates and times were read
    /// (`None`: UTC, and catalogs written before the zone was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl DatasetInfo {
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
    pub fn without_geometry_total(&self) -> u64 {
        self.without_geometry.iter().map(|(_, n)| n).sum()
    }
    /// The zone the data's local times were read in: calendar days and months of this
    /// dataset begin and end at midnight there.
    pub fn zone(&self) -> jiff::tz::TimeZone {
        self.timezone
            .as_deref()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }
    /// An instant as RFC 3339 in the dataset's zone, with its offset (`Z` in UTC): the
    /// text starts with the local date, so a day or month of data reads as itself.
    pub fn format_time(&self, secs: i64) -> String {
        let zone = self.zone();
        match jiff::Timestamp::from_second(secs) {
            Ok(ts) if matches!(zone.iana_name(), Some("UTC" | "Etc/UTC")) => {
                ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
            }
            Ok(ts) => ts
                .to_zoned_datetime(zone)
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            Err(_) => String::new(),
        }
    }
    /// The calendar dates (in [`Self::zone`]) on which the data's time extent starts and
    /// ends: a whole month of data ends on its last day, not at the next midnight.
    pub fn time_extent_dates(&self) -> Option<(jiff::civil::Date, jiff::civil::Date)> {
        let t = self.time_extent?;
        let zone = self.zone();
        let date = |s: i64| {
            jiff::Timestamp::from_second(s)
                .ok()
                .map(|ts| zone.to_datetime(ts).date())
        };
        Some((date(t.start)?, date(t.end)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_months_read_as_people_write_them() {
        assert_eq!(
            human_time(FieldType::Date, "2014-12-30").as_deref(),
            Some("30 Dec 2014")
        );
        assert_eq!(
            human_time(FieldType::Month, "2019-01").as_deref(),
            Some("January 2019")
        );
        assert_eq!(human_time(FieldType::Month, "2019-13"), None);
        assert_eq!(human_time(FieldType::Month, "Kraków"), None);
        assert_eq!(human_time(FieldType::Date, "not a date"), None);
        assert_eq!(human_time(FieldType::Datetime, "2014-12-30"), None);
    }
}
