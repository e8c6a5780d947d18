//! The SQLite [`DatasetWriter`]: a new version is a new pair of tables `f_{gen}` (rows in
//! the order written) and `r_{gen}` (R*Tree), filled and switched to in one write
//! transaction; a writer dropped before its commit rolls back, so readers and a killed
//! importer only ever see the previous version. `--append` copies the base version's
//! rows with one `INSERT ... SELECT` (ids kept), then the new rows follow.

use super::{SqliteCatalog, Tables, load_info};
use crate::ingest::Geometry;
use crate::model::{DatasetId, DatasetInfo, Field, FieldType, Value};
use crate::store::{Committed, DatasetWriter, FeatureRow, NewVersion, StoreError, WriteMode};
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, ToSql, params_from_iter};
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

pub(super) struct SqliteWriter<'c> {
    catalog: &'c SqliteCatalog,
    conn: MutexGuard<'c, Connection>,
    id: DatasetId,
    mode: WriteMode,
    /// The current version when the writer was made.
    current: Option<(DatasetInfo, Tables)>,
    /// Set by `schema`.
    started: Option<Started>,
    /// A write transaction is open (and rolled back on drop unless committed).
    open: bool,
}

impl<'c> SqliteWriter<'c> {
    pub(super) fn new(
        catalog: &'c SqliteCatalog,
        id: &DatasetId,
        mode: WriteMode,
    ) -> Result<Self, StoreError> {
        let conn = catalog.writer.lock().unwrap_or_else(|e| e.into_inner());
        conn.pragma_update(None, "temp_store", "FILE")?;
        let current = load_info(&conn, id.as_str())?;
        Ok(Self {
            catalog,
            conn,
            id: id.clone(),
            mode,
            current,
            started: None,
            open: false,
        })
    }
}

/// What `schema` made.
struct Started {
    generation: i64,
    fields: Vec<Field>,
    /// The row insert's text (the statement itself stays in the connection's cache).
    insert: String,
}

fn not_started() -> StoreError {
    StoreError::Config("rows written before the schema was declared".into())
}

/// The value stored in the `geom` column for a geometry: the one place that decides it.
fn geom_column(g: &Geometry) -> SqlValue {
    match &g.shape {
        Some(shape) => SqlValue::Blob(crate::store::wkb::encode(shape)),
        None => SqlValue::Null,
    }
}

/// A typed value bound without copying.
struct Cell<'a>(&'a Value);

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Owned(SqlValue::Null),
            Value::Integer(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Value::Number(n) => ToSqlOutput::Owned(SqlValue::Real(*n)),
            Value::Boolean(b) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(*b))),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// SQL converting a copied column from its stored type to a wider one.
fn widened(col: &str, from: FieldType, to: FieldType) -> String {
    match (from, to) {
        (a, b) if a == b => col.to_owned(),
        (_, FieldType::Number) => format!("CAST({col} AS REAL)"),
        // Booleans are stored as 0/1 and read back as true/false: keep those words.
        (FieldType::Boolean, _) => {
            format!("CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN 'true' ELSE 'false' END")
        }
        _ => format!("CAST({col} AS TEXT)"),
    }
}

fn column_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Integer | FieldType::Boolean => "INTEGER",
        FieldType::Number => "REAL",
        _ => "TEXT",
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

impl DatasetWriter for SqliteWriter<'_> {
    fn base(&self) -> Option<&DatasetInfo> {
        match self.mode {
            WriteMode::Append => self.current.as_ref().map(|(info, _)| info),
            WriteMode::Replace => None,
        }
    }

    fn schema(&mut self, fields: &[Field]) -> Result<(), StoreError> {
        // The input has been read: only now does the import need the write lock.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.open = true;
        let now = load_info(&self.conn, self.id.as_str())?;
        let moved = now.as_ref().map(|(_, t)| t.generation)
            != self.current.as_ref().map(|(_, t)| t.generation);
        if moved && self.mode == WriteMode::Append {
            return Err(StoreError::Config(format!(
                "`{}` was changed by another import while this one read its input; run it again",
                self.id
            )));
        }
        self.current = now;
        let generation = next_gen(&self.conn)?;
        let decl: String = fields
            .iter()
            .enumerate()
            .map(|(i, f)| format!(", c{i} {}", column_type(f.ty)))
            .collect();
        // Table names come from integers, column types from Tessera's own names.
        self.conn.execute_batch(&format!(
            "CREATE TABLE f_{generation} (fid INTEGER PRIMARY KEY, src TEXT, minx REAL, miny REAL, maxx REAL, maxy REAL, geom TEXT, t0 INTEGER, t1 INTEGER{decl});
             CREATE VIRTUAL TABLE r_{generation} USING rtree(id, x0, x1, y0, y1);"
        ))?;
        let cols: String = (0..fields.len()).map(|i| format!(", c{i}")).collect();
        if let (WriteMode::Append, Some((info, tables))) = (self.mode, &self.current) {
            let old = tables.generation;
            let n = info.fields.len().min(fields.len());
            let copied: String = (0..n).map(|i| format!(", c{i}")).collect();
            let select: String = (0..n)
                .map(|i| {
                    format!(
                        ", {}",
                        widened(&format!("c{i}"), info.fields[i].ty, fields[i].ty)
                    )
                })
                .collect();
            self.conn.execute_batch(&format!(
                "INSERT INTO f_{generation} (fid, src, minx, miny, maxx, maxy, geom, t0, t1{copied})
                 SELECT fid, src, minx, miny, maxx, maxy, geom, t0, t1{select} FROM f_{old} ORDER BY fid"
            ))?;
        }
        let marks = vec!["?"; 8 + fields.len()].join(", ");
        let insert = format!(
            "INSERT INTO f_{generation} (src, minx, miny, maxx, maxy, geom, t0, t1{cols}) VALUES ({marks})"
        );
        self.started = Some(Started {
            generation,
            fields: fields.to_vec(),
            insert,
        });
        Ok(())
    }

    fn write(&mut self, rows: &[FeatureRow]) -> Result<(), StoreError> {
        let Some(started) = &self.started else {
            return Err(not_started());
        };
        let mut stmt = self.conn.prepare_cached(&started.insert)?;
        let mut cells: Vec<Cell<'_>> = Vec::new();
        for row in rows {
            let b = row.geometry.as_ref().map(|g| g.bounds);
            let (minx, miny) = (b.map(|b| b.min_x), b.map(|b| b.min_y));
            let (maxx, maxy) = (b.map(|b| b.max_x), b.map(|b| b.max_y));
            let geom = row.geometry.as_ref().map_or(SqlValue::Null, geom_column);
            let (t0, t1) = (row.time.map(|t| t.start), row.time.map(|t| t.end));
            let fixed: [&dyn ToSql; 8] = [&row.src, &minx, &miny, &maxx, &maxy, &geom, &t0, &t1];
            cells.clear();
            cells.extend(row.values.iter().map(Cell));
            let params = fixed
                .into_iter()
                .chain(cells.iter().map(|c| c as &dyn ToSql));
            stmt.execute(params_from_iter(params))?;
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>, v: NewVersion) -> Result<Committed, StoreError> {
        let Some(Started {
            generation, fields, ..
        }) = self.started.take()
        else {
            return Err(not_started());
        };
        let conn = &*self.conn;
        // Points: one R*Tree entry per 16 Hilbert-ordered rows (16x fewer entries to insert,
        // measured 5 s -> see bench/README.md for 1.4M points); larger shapes: one per row.
        let block: i64 = if v.geometry_type.as_deref() == Some("Point") {
            16
        } else {
            1
        };
        conn.execute_batch(&format!(
            "INSERT INTO r_{generation} SELECT (fid - 1) / {block}, min(minx), max(maxx), min(miny), max(maxy) \
             FROM f_{generation} WHERE minx IS NOT NULL GROUP BY (fid - 1) / {block}"
        ))?;
        let (count, with_src): (i64, i64) = conn.query_row(
            &format!("SELECT count(*), count(src) FROM f_{generation}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
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
        let info = v.into_info(
            self.id.clone(),
            fields,
            count as u64,
            generation,
            source_ids,
        );
        let json = serde_json::to_string(&info).map_err(|e| StoreError::Config(e.to_string()))?;
        conn.execute(
            "INSERT INTO datasets (id, gen, block, version, info) VALUES (?1, ?2, ?3, ?2, ?4)
             ON CONFLICT(id) DO UPDATE SET gen = excluded.gen, block = excluded.block, version = excluded.version, info = excluded.info",
            rusqlite::params![self.id.as_str(), generation, block, json],
        )?;
        if let Some((
            _,
            Tables {
                generation: old, ..
            },
        )) = &self.current
        {
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS f_{old}; DROP TABLE IF EXISTS r_{old};"
            ))?;
        }
        conn.execute_batch("COMMIT")?;
        self.open = false;
        self.catalog.reclaim(&self.conn);
        Ok(Committed {
            version: generation,
            feature_count: count as u64,
        })
    }
}

impl Drop for SqliteWriter<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        // Also after a failure: a needless refresh is cheaper than reasoning about it.
        self.catalog.own_writes.fetch_add(1, Ordering::AcqRel);
    }
}
