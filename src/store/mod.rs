//! The catalog: datasets and their features, behind traits so that HTTP and tiles never
//! know which database holds them. [`sqlite`] is the one implementation today.
//!
//! Reads happen in a [`Snapshot`]: one consistent view of the catalog, so a request that
//! counts and then pages sees the same version of a dataset even while a re-import
//! replaces it.

pub(crate) mod histogram;
pub mod location;
pub mod postgres;
pub mod sqlite;
pub mod wkb;

pub use location::{DbLocation, open};

use crate::model::{
    Bounds, DatasetId, DatasetInfo, DatasetMeta, Field, NoGeometry, TimeRange, Value,
};
use jiff::tz::TimeZone;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A failure inside the backend's database (SQLite today, PostgreSQL later): kept
    /// as the backend's own error, so nothing above `store/` names the database crate.
    #[error("database error: {0}")]
    Db(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No database server answered (PostgreSQL: the primary and every replica).
    #[error("the database does not answer: {0}")]
    Unavailable(String),
    #[error("catalog file {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("dataset `{0}` not found")]
    NoDataset(DatasetId),
    #[error("import configuration: {0}")]
    Config(String),
    #[error("the import was interrupted; the previous data is unchanged")]
    Interrupted,
    #[error("corrupt catalog metadata for `{id}`: {message}")]
    Corrupt { id: String, message: String },
}

/// One query model for feature pages, exports, counts and tiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Boxes a feature's bounds must intersect (any of them; two for an antimeridian box).
    /// Empty means no spatial filter. Features without geometry never match a box.
    pub bbox: Vec<Bounds>,
    /// Features whose time interval intersects this one; features without time never match.
    pub time: Option<TimeRange>,
    /// Typed field filters, by field index: the value must be one of the listed ones
    /// (usually one); all filters must hold.
    pub equals: Vec<(usize, Vec<Value>)>,
    /// Only features whose position (a point, or the centre of a larger geometry's
    /// bounds) lies inside this area.
    pub within: Option<Within>,
    /// Sort keys: field index and descending flag. Ties (and no keys) go by feature id.
    pub sort: Vec<(usize, bool)>,
    pub limit: Option<u64>,
    pub offset: u64,
}

/// An area filter. The area is geo-types polygons; each backend turns it into whatever it
/// evaluates (SQLite: WKB for a SQL function, PostGIS would bind it as a geometry).
#[derive(Debug, Clone, PartialEq)]
pub struct Within {
    pub area: crate::spatial::Area,
}

/// A feature as read back from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeature {
    /// The id served in URLs: the input's own id when the dataset has unique ones, else a
    /// number given at import.
    pub id: String,
    pub geometry: Option<StoredGeometry>,
    pub time: Option<TimeRange>,
    /// One value per field of the dataset, in field order.
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoredGeometry {
    Point {
        lon: f64,
        lat: f64,
    },
    /// Any other geometry, decoded once by the store (from WKB, or legacy GeoJSON text).
    Shape {
        bounds: Bounds,
        geometry: geo_types::Geometry<f64>,
    },
}

/// A consistent read-only view of the catalog.
pub trait Snapshot {
    fn datasets(&self) -> Result<Vec<DatasetInfo>, StoreError>;
    fn dataset(&self, id: &DatasetId) -> Result<Option<DatasetInfo>, StoreError>;
    /// Number of features matching `q`, ignoring its limit and offset.
    fn count(&self, ds: &DatasetInfo, q: &Query) -> Result<u64, StoreError>;
    /// Calls `visit` for each matching feature in order; stops early when it returns false.
    fn scan(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        visit: &mut dyn FnMut(StoredFeature) -> bool,
    ) -> Result<(), StoreError>;
    fn feature(&self, ds: &DatasetInfo, id: &str) -> Result<Option<StoredFeature>, StoreError>;
    /// Counts of matching features per time bucket, in time order (features without time
    /// are not counted).
    fn histogram(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        bucket: Bucket,
    ) -> Result<Vec<(TimeRange, u64)>, StoreError>;
    /// Streams every located feature's position (bounds centre), time and one field's
    /// value, in internal id order: what the in-memory tile index of a point dataset needs.
    fn positions(
        &self,
        ds: &DatasetInfo,
        field: Option<usize>,
        visit: &mut dyn FnMut(PositionRow),
    ) -> Result<(), StoreError>;
    /// Internal ids (see [`PositionRow::key`]) of the features matching `q`.
    fn matching_keys(&self, ds: &DatasetInfo, q: &Query) -> Result<Vec<i64>, StoreError>;
    /// Streams the internal id, time and the value of `field` of **every** feature, with
    /// or without a position, in internal id order: what counts by an attribute join keep
    /// in memory. Returns `false` (having called `visit` for nothing) when the backend
    /// cannot list them; callers then scan with [`Self::scan`] instead.
    fn field_values(
        &self,
        _ds: &DatasetInfo,
        _field: usize,
        _visit: &mut dyn FnMut(FieldValueRow),
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// The most frequent values of a field among all features, with their counts.
    fn top_values(
        &self,
        ds: &DatasetInfo,
        field: usize,
        n: usize,
    ) -> Result<Vec<(Value, u64)>, StoreError>;
    /// A way to cut this snapshot's running query short from another thread (it then
    /// fails with an error), for request time limits; `None` if the store has none.
    fn interrupter(&self) -> Option<Interrupter> {
        None
    }
}

/// Interrupts the query a snapshot is running, if any; calling it while none runs is harmless.
pub type Interrupter = Box<dyn Fn() + Send + Sync>;

/// One feature reduced to what point tiles need.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    /// Internal id of the feature in this dataset version (not the API id): unique and
    /// ascending in [`Snapshot::positions`] order, but not dense and not an array index
    /// (a PostgreSQL backend hands out sparse ones).
    pub key: i64,
    /// The id served in URLs.
    pub id: String,
    pub lon: f64,
    pub lat: f64,
    pub time: Option<TimeRange>,
    pub value: Value,
}

/// One feature reduced to what an attribute join counts: see [`Snapshot::field_values`].
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValueRow {
    /// As [`PositionRow::key`].
    pub key: i64,
    pub time: Option<TimeRange>,
    pub value: Value,
}

/// Width of a histogram bucket, in calendar terms of the dataset's zone.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
}

impl Bucket {
    /// A width giving a readable number of bars for a time extent.
    pub fn for_extent(t: TimeRange) -> Bucket {
        let days = (t.end - t.start) / 86_400;
        if days <= 120 {
            Bucket::Day
        } else if days <= 2 * 365 {
            Bucket::Week
        } else {
            Bucket::Month
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }

    /// The bucket holding instant `t` (Unix seconds): the day, ISO week or month of its
    /// calendar date in `zone`, from local midnight to the second before the next one.
    pub fn containing(self, t: i64, zone: &TimeZone) -> TimeRange {
        use jiff::ToSpan;
        let ts = jiff::Timestamp::from_second(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let date = zone.to_datetime(ts).date();
        let (first, next) = match self {
            Bucket::Day => (Some(date), date.tomorrow().ok()),
            Bucket::Week => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                let monday = date.checked_sub(back.days()).ok();
                (monday, monday.and_then(|m| m.checked_add(7.days()).ok()))
            }
            Bucket::Month => (
                Some(date.first_of_month()),
                date.last_of_month().tomorrow().ok(),
            ),
        };
        // Midnight that does not exist (a DST gap) moves forward, as at import.
        let secs = |d: jiff::civil::Date| {
            zone.to_ambiguous_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                .compatible()
                .map(|z| z.as_second())
                .ok()
        };
        match (first.and_then(secs), next.and_then(secs)) {
            (Some(start), Some(next)) => TimeRange {
                start,
                end: next - 1,
            },
            // Only at the ends of the representable range.
            _ => TimeRange { start: t, end: t },
        }
    }

    /// Every bucket from the one holding `span.start` to the one holding `span.end`, in
    /// order, the first and last cut to the span; `None` when there would be more than `max`.
    pub fn series(self, span: TimeRange, max: usize, zone: &TimeZone) -> Option<Vec<TimeRange>> {
        let mut out = Vec::new();
        let mut b = self.containing(span.start, zone);
        while b.start <= span.end {
            if out.len() == max {
                return None;
            }
            // The first and last buckets are cut to the span: a week bucket must not
            // make data that ends on 31 January look as if it ran to Sunday 3 February.
            out.push(TimeRange {
                start: b.start.max(span.start),
                end: b.end.min(span.end),
            });
            b = self.containing(b.end + 1, zone);
        }
        Some(out)
    }
}

/// A catalog that can be read concurrently and written by imports.
pub trait Catalog: Send + Sync {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError>;
    /// Starts writing a new version of dataset `id`; nothing changes until the writer
    /// commits (see [`DatasetWriter`]).
    fn writer(
        &self,
        id: &DatasetId,
        mode: WriteMode,
    ) -> Result<Box<dyn DatasetWriter + '_>, StoreError>;
    fn delete(&self, id: &DatasetId) -> Result<bool, StoreError>;
    /// A number that changes when a change to the catalog is committed: at once for
    /// changes made through this catalog, within a short delay (50 ms for SQLite) for
    /// those of other processes (tile URLs from TileJSON carry the versions, so those
    /// are checked exactly). Cheap (no transaction, usually no I/O), so hot paths
    /// can keep metadata in memory and still see a re-import.
    fn data_stamp(&self) -> Result<i64, StoreError>;
    /// Brings [`Self::data_stamp`] up to the newest commit now, asking the database rather
    /// than waiting for the usual delay; answers whether the stamp moved. For a request that
    /// names a version this process has not seen yet.
    fn catch_up(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// The backend's state for `/health`: which databases it uses and whether each answers.
    fn health(&self) -> BackendHealth {
        BackendHealth {
            backend: "sqlite",
            ready: true,
            endpoints: Vec::new(),
        }
    }
}

/// A boxed catalog is a catalog, so `store::open`'s answer goes wherever one is expected.
impl<C: Catalog + ?Sized> Catalog for Box<C> {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        (**self).snapshot()
    }
    fn writer(
        &self,
        id: &DatasetId,
        mode: WriteMode,
    ) -> Result<Box<dyn DatasetWriter + '_>, StoreError> {
        (**self).writer(id, mode)
    }
    fn delete(&self, id: &DatasetId) -> Result<bool, StoreError> {
        (**self).delete(id)
    }
    fn data_stamp(&self) -> Result<i64, StoreError> {
        (**self).data_stamp()
    }
    fn health(&self) -> BackendHealth {
        (**self).health()
    }
    fn catch_up(&self) -> Result<bool, StoreError> {
        (**self).catch_up()
    }
}

/// What `/health` says about the backend.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackendHealth {
    /// `sqlite` or `postgresql`.
    pub backend: &'static str,
    /// Whether reads can be answered now (for PostgreSQL: some endpoint answers).
    pub ready: bool,
    pub endpoints: Vec<EndpointHealth>,
}

/// One database a catalog uses.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EndpointHealth {
    /// `file` (SQLite), `primary` or `replica`.
    pub role: &'static str,
    /// The file path or connection URL, without any password.
    pub location: String,
    pub up: bool,
    /// Why the last attempt to use it failed, while it is down.
    pub error: Option<String>,
    /// Read snapshots it has served since the process started.
    pub reads: u64,
}

/// What a new version starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Nothing: the new version replaces the current one.
    Replace,
    /// The current version's rows (if the dataset exists), which the backend copies
    /// itself, so the importer never reads them.
    Append,
}

/// Writes one new version of a dataset: the backend-neutral importer ([`crate::import`])
/// drives it, a backend implements it. Calls come in this order: [`schema`], any number
/// of [`write`]s, then [`commit`]. Readers see the previous version until the commit,
/// which switches to the new one atomically; dropping the writer before that (an error,
/// a panic) leaves the catalog as it was.
///
/// [`schema`]: DatasetWriter::schema
/// [`write`]: DatasetWriter::write
/// [`commit`]: DatasetWriter::commit
pub trait DatasetWriter {
    /// With [`WriteMode::Append`] on an existing dataset, the version the new one starts
    /// from (its fields, counts, bounds); otherwise `None`.
    fn base(&self) -> Option<&DatasetInfo>;
    /// Declares the new version's fields and starts it. A base's fields come first, in
    /// their order; a type may differ from the base's only by widening (integer to
    /// number, anything to string), and the backend converts the copied values.
    fn schema(&mut self, fields: &[Field]) -> Result<(), StoreError>;
    /// Adds rows, in the order they are to be stored (after a base's rows, whose ids
    /// do not change).
    fn write(&mut self, rows: &[FeatureRow]) -> Result<(), StoreError>;
    /// Stores the metadata and switches readers to the new version in one step.
    fn commit(self: Box<Self>, version: NewVersion) -> Result<Committed, StoreError>;
}

/// One feature to store.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// The input's own id, if it had one.
    pub src: Option<String>,
    /// `None` for a feature without geometry (its reason is counted in [`NewVersion`]).
    pub geometry: Option<crate::ingest::Geometry>,
    pub time: Option<TimeRange>,
    /// One value per field, in field order.
    pub values: Vec<Value>,
}

/// What a commit records about the whole new version, base rows included.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub meta: DatasetMeta,
    /// `Point`, another GeoJSON type name, `Geometry` for a mixture, `None` if no row
    /// has a geometry.
    pub geometry_type: Option<String>,
    pub bounds: Option<Bounds>,
    pub time_extent: Option<TimeRange>,
    pub without_geometry: Vec<(NoGeometry, u64)>,
    pub timezone: Option<String>,
}

impl NewVersion {
    /// The metadata a commit records: this version with what the store decided (its
    /// fields, row count, version number and whether input ids are the served ids).
    pub fn into_info(
        self,
        id: DatasetId,
        fields: Vec<Field>,
        feature_count: u64,
        version: i64,
        source_ids: bool,
    ) -> DatasetInfo {
        DatasetInfo {
            id,
            meta: self.meta,
            fields,
            geometry_type: self.geometry_type,
            bounds: self.bounds,
            time_extent: self.time_extent,
            feature_count,
            without_geometry: self.without_geometry,
            version,
            updated: jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            source_ids,
            timezone: self.timezone,
        }
    }
}

/// What the store decided at commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub version: i64,
    pub feature_count: u64,
}
