//! Import: stream records into a private staging table while inferring column types, then
//! write the typed, Hilbert-ordered feature table and its R*Tree and switch the dataset
//! over, all in one write transaction.

use super::rows::{self, MEMORY_BUDGET, MemoryRows, Row};
use super::{Tables, hilbert_key, load_info, read};
use crate::ingest::infer::{ColumnInference, named_like_time};
use crate::ingest::time::TimeFormat;
use crate::ingest::{self, IngestError, Record};
use crate::model::{Bounds, DatasetInfo, Field, FieldType, NoGeometry, TimeRange, Value};
use crate::spatial::Area;
use crate::store::{ImportReport, ImportRequest, Progress, StoreError};
use jiff::tz::TimeZone;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, ToSql, params_from_iter};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// Fixed staging columns before the property columns `c0, c1, ...`.
const STAGE_FIXED: &str = "ord INTEGER PRIMARY KEY, hkey INTEGER, src TEXT, minx REAL, miny REAL, maxx REAL, maxy REAL, geom TEXT, t0 INTEGER, t1 INTEGER";
const STAGE_FIXED_COUNT: usize = 9; // without ord
const MAX_ERROR_SAMPLES: usize = 10;

/// SQL functions used by the typed copy. `tessera_iso(text, format_mask, zone, type)`
/// normalises a time value to its column type's form (see [`rows::canonical_time`]).
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("tessera_iso", 4, flags, |ctx| {
        let Some(text) = ctx.get::<Option<String>>(0)? else {
            return Ok(None);
        };
        let mask: u8 = ctx.get::<i64>(1)? as u8;
        let zone = TimeZone::get(&ctx.get::<String>(2)?).unwrap_or(TimeZone::UTC);
        let ty = match ctx.get::<String>(3)?.as_str() {
            "date" => FieldType::Date,
            "month" => FieldType::Month,
            _ => FieldType::Datetime,
        };
        Ok(rows::canonical_time(&text, mask, &zone, ty).or(Some(text)))
    })?;
    // tessera_within(minx, miny, maxx, maxy, area_wkb): the area is decoded once per
    // statement (SQLite keeps it as auxiliary data of the constant argument).
    conn.create_scalar_function("tessera_within", 5, flags, |ctx| {
        let bounds = (
            ctx.get::<Option<f64>>(0)?,
            ctx.get::<Option<f64>>(1)?,
            ctx.get::<Option<f64>>(2)?,
            ctx.get::<Option<f64>>(3)?,
        );
        let (Some(minx), Some(miny), Some(maxx), Some(maxy)) = bounds else {
            return Ok(false);
        };
        type AuxError = Box<dyn std::error::Error + Send + Sync>;
        let area = ctx.get_or_create_aux(4, |v| -> Result<Option<Area>, AuxError> {
            let shape = v
                .as_blob()
                .ok()
                .and_then(|b| crate::store::wkb::decode(b).ok());
            Ok(shape.as_ref().and_then(Area::from_geometry))
        })?;
        let centre = ((minx + maxx) / 2.0, (miny + maxy) / 2.0);
        Ok(area
            .as_ref()
            .as_ref()
            .is_some_and(|a| a.contains(centre.0, centre.1)))
    })
}

/// Parses with the first format of `mask` that accepts the value.
pub(super) fn parse_time(text: &str, mask: u8, zone: &TimeZone) -> Option<TimeRange> {
    TimeFormat::ALL
        .iter()
        .filter(|f| mask & f.bit() != 0)
        .find_map(|f| f.parse(text, zone))
}

/// Formats a value may be read in: the compact all-digit ones only for date-like names.
pub(super) fn allowed_formats(column: &str) -> u8 {
    let numeric_ok = named_like_time(column);
    TimeFormat::ALL
        .iter()
        .filter(|f| numeric_ok || !f.is_numeric_lookalike())
        .fold(0, |m, f| m | f.bit())
}

/// Rolls back on drop unless committed, so every early return leaves the catalog untouched.
struct TxGuard<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> TxGuard<'c> {
    fn begin(conn: &'c Connection, sql: &str) -> rusqlite::Result<Self> {
        conn.execute_batch(sql)?;
        Ok(Self { conn, open: true })
    }
    fn commit(mut self) -> rusqlite::Result<()> {
        self.open = false;
        self.conn.execute_batch("COMMIT")
    }
}

impl Drop for TxGuard<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// State of one import while rows stream in.
struct Staging<'c> {
    conn: &'c Connection,
    columns: Vec<String>,
    index: HashMap<String, usize>,
    inference: Vec<ColumnInference>,
    insert: Option<rusqlite::CachedStatement<'c>>,
    width: usize,
    time_col: Option<(usize, u8)>,
    time_end_col: Option<(usize, u8)>,
    time_resolved: bool,
    report: ImportReport,
    no_geom: BTreeMap<NoGeometry, u64>,
    geometry_types: BTreeSet<&'static str>,
    bounds: Option<Bounds>,
    /// Rows held in memory while they fit [`rows::MEMORY_BUDGET`]; `None` once spilled
    /// into the staging table.
    memory: Option<MemoryRows>,
    budget: usize,
}

impl<'c> Staging<'c> {
    fn new(conn: &'c Connection, budget: usize) -> rusqlite::Result<Self> {
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS temp.stage; CREATE TEMP TABLE stage ({STAGE_FIXED})"
        ))?;
        Ok(Self {
            conn,
            columns: Vec::new(),
            index: HashMap::new(),
            inference: Vec::new(),
            insert: None,
            width: usize::MAX,
            time_col: None,
            time_end_col: None,
            time_resolved: false,
            report: ImportReport::default(),
            no_geom: BTreeMap::new(),
            geometry_types: BTreeSet::new(),
            bounds: None,
            memory: Some(MemoryRows::default()),
            budget,
        })
    }

    fn column(&mut self, name: &str) -> rusqlite::Result<usize> {
        if let Some(&i) = self.index.get(name) {
            return Ok(i);
        }
        let i = self.columns.len();
        self.conn
            .execute_batch(&format!("ALTER TABLE temp.stage ADD COLUMN c{i} TEXT"))?;
        self.columns.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        self.inference.push(ColumnInference::new(name));
        Ok(i)
    }

    /// Keeps a row in memory while the budget allows; past it, spills everything held
    /// into the staging table and stages from then on.
    fn sink(&mut self, row: Row) -> rusqlite::Result<()> {
        if let Some(memory) = &mut self.memory {
            if memory.bytes() < self.budget {
                memory.push(&row);
                return Ok(());
            }
            tracing::info!(
                mib = memory.bytes() >> 20,
                "import larger than its memory budget: staging on disk"
            );
            let held = self.memory.take().unwrap_or_default();
            for r in held.drain_in_order() {
                self.stage(r)?;
            }
        }
        self.stage(row)
    }

    /// Inserts one row into the staging table (raw text cells, typed at the end by SQL).
    fn stage(&mut self, row: Row) -> rusqlite::Result<()> {
        if self.width != self.columns.len() {
            let n = STAGE_FIXED_COUNT + self.columns.len();
            let cols: String = (0..self.columns.len()).map(|i| format!(", c{i}")).collect();
            let sql = format!(
                "INSERT INTO temp.stage (hkey, src, minx, miny, maxx, maxy, geom, t0, t1{cols}) VALUES ({})",
                vec!["?"; n].join(", ")
            );
            self.insert = Some(self.conn.prepare_cached(&sql)?);
            self.width = self.columns.len();
        }
        let mut props: Vec<Option<&str>> = vec![None; self.columns.len()];
        for (i, v) in &row.cells {
            props[*i] = Some(v.as_str());
        }
        let b = row.bounds;
        let fixed: [&dyn ToSql; STAGE_FIXED_COUNT] = [
            &row.hkey,
            &row.src,
            &b.map(|b| b.min_x),
            &b.map(|b| b.min_y),
            &b.map(|b| b.max_x),
            &b.map(|b| b.max_y),
            &row.geom,
            &row.time.map(|t| t.start),
            &row.time.map(|t| t.end),
        ];
        let params = fixed
            .into_iter()
            .chain(props.iter().map(|p| p as &dyn ToSql));
        self.insert
            .as_mut()
            .expect("prepared above")
            .execute(params_from_iter(params))?;
        Ok(())
    }

    /// Decides the time columns at the first record, when the header's columns are known.
    fn resolve_time(&mut self, req: &ImportRequest) -> Result<(), StoreError> {
        self.time_resolved = true;
        let lookup = |s: &Self, name: &str, flag: &str| -> Result<(usize, u8), StoreError> {
            let i = s.index.get(name).copied().ok_or_else(|| {
                StoreError::Config(format!(
                    "{flag} `{name}` is not a column (columns: {})",
                    s.columns.join(", ")
                ))
            })?;
            Ok((i, allowed_formats(name)))
        };
        if let Some(t) = &req.time {
            self.time_col = Some(lookup(self, t, "--time")?);
        } else {
            // Auto-pick by name: the first column named like a date, in header order (the
            // first row may well have it empty). Record-keeping stamps (`created_at`,
            // `updated_at`) say when a row was edited, not when the thing happened.
            self.time_col = self
                .columns
                .iter()
                .enumerate()
                .find(|(_, n)| named_like_time(n) && !n.to_ascii_lowercase().ends_with("_at"))
                .map(|(i, n)| (i, allowed_formats(n)));
        }
        if let Some(t) = &req.time_end {
            self.time_end_col = Some(lookup(self, t, "--time-end")?);
        }
        self.report.time_column = self.time_col.map(|(i, _)| self.columns[i].clone());
        Ok(())
    }

    fn push(
        &mut self,
        req: &ImportRequest,
        rec: Record,
        names: &[String],
        preset_time: Option<Option<TimeRange>>,
    ) -> Result<(), StoreError> {
        let mut cells: Vec<(usize, String)> = Vec::with_capacity(rec.values.len());
        for (i, v) in rec.values.into_iter().enumerate() {
            if let Some(v) = v {
                let g = self.column(&names[i])?;
                self.inference[g].observe(&v);
                cells.push((g, v));
            }
        }
        if !self.time_resolved {
            self.resolve_time(req)?;
        }
        let cell = |col: Option<(usize, u8)>| {
            col.and_then(|(i, mask)| {
                cells
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, v)| (v.as_str(), mask))
            })
        };
        let time = match preset_time {
            Some(t) => t,
            None => {
                let start = cell(self.time_col).map(|(v, m)| parse_time(v, m, &req.timezone));
                let end =
                    cell(self.time_end_col).and_then(|(v, m)| parse_time(v, m, &req.timezone));
                match start {
                    Some(Some(s)) => Some(TimeRange {
                        start: s.start,
                        end: end.map_or(s.end, |e| e.end.max(s.end)),
                    }),
                    Some(None) => {
                        self.report.time_unparsed += 1;
                        None
                    }
                    None => None,
                }
            }
        };
        let (hkey, geo) = match &rec.geometry {
            Ok(g) => {
                self.geometry_types.insert(g.type_name);
                match &mut self.bounds {
                    Some(b) => b.extend(&g.bounds),
                    None => self.bounds = Some(g.bounds),
                }
                let b = g.bounds;
                (
                    hilbert_key((b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0),
                    Some(g),
                )
            }
            Err(reason) => {
                *self.no_geom.entry(*reason).or_default() += 1;
                (i64::MAX, None)
            }
        };
        let row = Row {
            hkey,
            src: rec.source_id,
            bounds: geo.map(|g| g.bounds),
            // GeoJSON text until the WKB writer lands (read.rs reads both).
            geom: geo.and_then(|g| g.shape.as_ref().map(crate::geometry::to_geojson)),
            time,
            cells,
        };
        self.sink(row)?;
        self.report.rows_read += 1;
        Ok(())
    }
}

/// Runs a whole import. Nothing in the catalog changes unless this returns `Ok`.
pub fn run(
    conn: &mut Connection,
    req: &ImportRequest,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, StoreError> {
    run_with_budget(conn, req, progress, MEMORY_BUDGET)
}

/// [`run`] with a given memory budget for rows (0 stages every row on disk).
pub(super) fn run_with_budget(
    conn: &mut Connection,
    req: &ImportRequest,
    progress: &mut dyn FnMut(&Progress),
    budget: usize,
) -> Result<ImportReport, StoreError> {
    let started = Instant::now();
    let conn: &Connection = conn;
    let previous = load_info(conn, req.id.as_str())?;
    conn.pragma_update(None, "temp_store", "FILE")?;

    let stage_tx = TxGuard::begin(conn, "BEGIN")?;
    let mut st = Staging::new(conn, budget)?;
    if let (true, Some((info, tables))) = (req.append, &previous) {
        restage_previous(&mut st, req, info, *tables)?;
    }
    for file in &req.files {
        let mut reader = ingest::open(file, &req.options)?;
        // Fields follow the header, including columns that are empty in every row.
        let mut known = 0;
        let mut p = Progress {
            file: file.clone(),
            rows: 0,
            bytes: 0,
        };
        let mut placed = 0u64;
        while let Some(next) = reader.next_record() {
            match next {
                Ok(rec) => {
                    placed += 1;
                    if reader.columns().len() > known {
                        for name in &reader.columns()[known..] {
                            st.column(name)?;
                        }
                        known = reader.columns().len();
                    }
                    let names = reader.columns().to_vec();
                    st.push(req, rec, &names, None)?;
                }
                Err(e) if e.is_row_error() => record_error(&mut st.report, e, req.max_errors)?,
                Err(e) => return Err(e.into()),
            }
            p.rows += 1;
            if p.rows.is_multiple_of(8192) {
                p.bytes = reader.bytes_read();
                progress(&p);
            }
        }
        p.bytes = reader.bytes_read();
        progress(&p);
        // An empty result from a file is far likelier a misread (wrong format, a cut
        // download) than an intended empty dataset: it must not replace the data.
        if placed == 0 {
            return Err(IngestError::Setup {
                file: file.clone(),
                message: format!(
                    "no rows could be read ({} unreadable): nothing to import",
                    p.rows
                ),
            }
            .into());
        }
        st.report.notes.push(format!(
            "{}: {} ({} rows)",
            file.display(),
            reader.describe(),
            p.rows
        ));
    }
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "staged");
    let mut report = finish(conn, req, st, previous.as_ref())?;
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "tables written");
    stage_tx.commit()?;
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "committed");
    conn.execute_batch("DROP TABLE IF EXISTS temp.stage")?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn record_error(report: &mut ImportReport, e: IngestError, max: u64) -> Result<(), StoreError> {
    report.errors += 1;
    if report.error_samples.len() < MAX_ERROR_SAMPLES {
        report.error_samples.push(e.to_string());
    }
    if report.errors > max {
        let first = report.error_samples.first().cloned().unwrap_or_default();
        return Err(StoreError::TooManyErrors {
            count: report.errors,
            max,
            first,
        });
    }
    Ok(())
}

/// For `--append`: stages the current rows again so the new version holds old and new.
fn restage_previous(
    st: &mut Staging<'_>,
    req: &ImportRequest,
    info: &DatasetInfo,
    tables: Tables,
) -> Result<(), StoreError> {
    let names: Vec<String> = info.fields.iter().map(|f| f.name.clone()).collect();
    for name in &names {
        st.column(name)?;
    }
    // Streamed row by row, not collected first: appending to a large dataset must stay
    // within the same memory as importing it (the columns all exist by now, so staging
    // changes no schema while the scan's statement is open).
    let conn = st.conn;
    let mut failed = None;
    read::scan_all(conn, info, tables, &mut |f| {
        if failed.is_some() {
            return;
        }
        let geometry = match f.geometry {
            Some(g) => Ok(read::to_ingest_geometry(g)),
            None => Err(NoGeometry::Missing),
        };
        let values = f.values.into_iter().map(value_text).collect();
        let rec = Record {
            line: 0,
            geometry,
            values,
            source_id: info.source_ids.then_some(f.id),
        };
        if let Err(e) = st.push(req, rec, &names, Some(f.time)) {
            failed = Some(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    // Reasons of old rows without geometry are not stored per row: carry the counts over.
    st.no_geom.clear();
    for (reason, n) in &info.without_geometry {
        *st.no_geom.entry(*reason).or_default() += n;
    }
    st.report.rows_read = 0;
    Ok(())
}

fn value_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Text(s) => Some(s),
    }
}

fn next_gen(conn: &Connection) -> rusqlite::Result<i64> {
    let generation: i64 = conn.query_row(
        "SELECT value FROM settings WHERE key = 'next_gen'",
        [],
        |r| r.get(0),
    )?;
    conn.execute(
        "UPDATE settings SET value = ?1 WHERE key = 'next_gen'",
        [generation + 1],
    )?;
    Ok(generation)
}

/// Writes the typed tables and switches the dataset over in one transaction.
fn finish(
    conn: &Connection,
    req: &ImportRequest,
    st: Staging<'_>,
    previous: Option<&(DatasetInfo, Tables)>,
) -> Result<ImportReport, StoreError> {
    let Staging {
        columns,
        inference,
        mut report,
        no_geom,
        geometry_types,
        bounds,
        memory,
        ..
    } = st;
    let zone = req.timezone.iana_name().unwrap_or("UTC").to_owned();
    let fields: Vec<Field> = columns
        .iter()
        .zip(&inference)
        .map(|(name, inf)| Field {
            name: name.clone(),
            ty: rows::field_type(inf),
        })
        .collect();
    let mut decl = Vec::new();
    let mut select = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let (ty, expr) = match f.ty {
            FieldType::Integer => ("INTEGER", format!("CAST(c{i} AS INTEGER)")),
            FieldType::Number => ("REAL", format!("CAST(c{i} AS REAL)")),
            FieldType::Boolean => (
                "INTEGER",
                format!("CASE WHEN c{i} IS NULL THEN NULL ELSE lower(trim(c{i})) = 'true' END"),
            ),
            FieldType::Datetime | FieldType::Date | FieldType::Month => (
                "TEXT",
                // The type name is one of Tessera's own identifiers, never input.
                format!(
                    "tessera_iso(c{i}, {}, ?1, '{}')",
                    allowed_formats(&f.name),
                    f.ty.name()
                ),
            ),
            FieldType::String => ("TEXT", format!("c{i}")),
        };
        decl.push(format!(", c{i} {ty}"));
        select.push(format!(", {expr}"));
    }
    let main_tx_sql = "SAVEPOINT switch";
    conn.execute_batch(main_tx_sql)?;
    let result = (|| -> Result<i64, StoreError> {
        let generation = next_gen(conn)?;
        // Points: one R*Tree entry per 16 Hilbert-ordered rows (16x fewer entries to insert,
        // measured 5 s -> see bench/README.md for 1.4M points); larger shapes: one per row.
        let block: i64 = if geometry_types.len() == 1 && geometry_types.contains("Point") {
            16
        } else {
            1
        };
        let cols: String = (0..fields.len()).map(|i| format!(", c{i}")).collect();
        conn.execute_batch(&format!(
            "CREATE TABLE f_{generation} (fid INTEGER PRIMARY KEY, src TEXT, minx REAL, miny REAL, maxx REAL, maxy REAL, geom TEXT, t0 INTEGER, t1 INTEGER{});
             CREATE VIRTUAL TABLE r_{generation} USING rtree(id, x0, x1, y0, y1);",
            decl.concat()
        ))?;
        let t = std::time::Instant::now();
        match memory {
            // Everything fitted in memory: sort in Rust, write once.
            Some(rows) => {
                rows::write_sorted(conn, generation, &fields, rows.sorted(), &req.timezone)?
            }
            None => {
                let copy = format!(
                    "INSERT INTO f_{generation} (src, minx, miny, maxx, maxy, geom, t0, t1{cols})
                     SELECT src, minx, miny, maxx, maxy, geom, t0, t1{} FROM temp.stage ORDER BY hkey, ord",
                    select.concat()
                );
                // The zone is bound only where a date-time column uses it.
                let zone_param: &[&dyn ToSql] = if copy.contains("?1") { &[&zone] } else { &[] };
                conn.execute(&copy, zone_param)?;
            }
        }
        tracing::debug!(secs = t.elapsed().as_secs_f64(), "typed copy");
        conn.execute_batch(&format!(
            "INSERT INTO r_{generation} SELECT (fid - 1) / {block}, min(minx), max(maxx), min(miny), max(maxy) \
             FROM f_{generation} WHERE minx IS NOT NULL GROUP BY (fid - 1) / {block}"
        ))?;
        tracing::debug!(secs = t.elapsed().as_secs_f64(), "r*tree written");
        let (count, with_src, t0, t1): (i64, i64, Option<i64>, Option<i64>) = conn.query_row(
            &format!("SELECT count(*), count(src), min(t0), max(t1) FROM f_{generation}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        // Input ids become the served ids only if every row has one and they are unique:
        // the unique index both checks that and serves the lookups.
        let source_ids = count > 0
            && with_src == count
            && conn
                .execute_batch(&format!(
                    "CREATE UNIQUE INDEX f_{generation}_src ON f_{generation}(src)"
                ))
                .is_ok();

        let geometry_type = match geometry_types.len() {
            0 => None,
            1 => geometry_types.first().map(|s| (*s).to_owned()),
            _ => Some("Geometry".to_owned()),
        };
        let info = DatasetInfo {
            id: req.id.clone(),
            meta: req.meta.clone(),
            fields: fields.clone(),
            geometry_type,
            bounds,
            time_extent: t0.zip(t1).map(|(start, end)| TimeRange { start, end }),
            feature_count: count as u64,
            without_geometry: no_geom.iter().map(|(k, v)| (*k, *v)).collect(),
            version: generation,
            updated: jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            source_ids,
            timezone: req.timezone.iana_name().map(str::to_owned),
        };
        let json = serde_json::to_string(&info).map_err(|e| StoreError::Config(e.to_string()))?;
        conn.execute(
            "INSERT INTO datasets (id, gen, block, version, info) VALUES (?1, ?2, ?3, ?2, ?4)
             ON CONFLICT(id) DO UPDATE SET gen = excluded.gen, block = excluded.block, version = excluded.version, info = excluded.info",
            rusqlite::params![req.id.as_str(), generation, block, json],
        )?;
        if let Some((
            _,
            Tables {
                generation: old, ..
            },
        )) = previous
        {
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS f_{old}; DROP TABLE IF EXISTS r_{old};"
            ))?;
        }
        report.imported = count as u64;
        Ok(generation)
    })();
    match result {
        Ok(generation) => {
            conn.execute_batch("RELEASE switch")?;
            report.version = generation;
            report.without_geometry = no_geom.into_iter().collect();
            Ok(report)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO switch; RELEASE switch");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteCatalog;
    use crate::model::{DatasetId, DatasetMeta};
    use crate::store::{Catalog, ImportRequest};

    /// `--append` restages the stored rows while scanning them; with a budget of 0 each
    /// goes into the staging table while the scan's statement is still open.
    #[test]
    fn append_streams_the_previous_rows_into_staging_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("a.db")).unwrap();
        let id = DatasetId::parse("uk").unwrap();
        let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/uk-crime-sample.csv");
        let mut req = ImportRequest {
            id: id.clone(),
            meta: DatasetMeta::default(),
            files: vec![fixture],
            options: Default::default(),
            time: None,
            time_end: None,
            timezone: jiff::tz::TimeZone::UTC,
            append: false,
            max_errors: 0,
        };
        for (append, want) in [(false, 200), (true, 400), (true, 600)] {
            req.append = append;
            let mut conn = catalog.writer.lock().unwrap();
            let report = super::run_with_budget(&mut conn, &req, &mut |_| {}, 0).unwrap();
            drop(conn);
            assert_eq!(report.imported, want);
            let info = catalog.snapshot().unwrap().dataset(&id).unwrap().unwrap();
            assert_eq!(info.feature_count, want);
            assert_eq!(info.without_geometry_total(), want / 200 * 24);
        }
    }
}
