//! Reading: query building (every value bound as a parameter; the only names spliced into
//! SQL are generated column and table names) and row decoding.

use super::{SqliteCatalog, Tables, load_info, parse_info};
use crate::ingest;
use crate::model::{Bounds, DatasetId, DatasetInfo, FieldType, TimeRange, Value};
use crate::store::histogram::{self, BucketKey};
use crate::store::wkb;
use crate::store::{
    Bucket, FieldValueRow, PositionRow, Query, Snapshot, StoreError, StoredFeature, StoredGeometry,
};
use rusqlite::types::{ToSqlOutput, Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row};

pub struct SqliteSnapshot<'a> {
    pub(super) conn: Option<Connection>,
    pub(super) catalog: &'a SqliteCatalog,
}

impl Drop for SqliteSnapshot<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.execute_batch("COMMIT").is_ok()
        {
            self.catalog
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}

impl SqliteSnapshot<'_> {
    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("connection present until drop")
    }

    /// The tables of a dataset in this snapshot.
    fn tables(&self, ds: &DatasetInfo) -> Result<Tables, StoreError> {
        self.conn()
            .prepare_cached("SELECT gen, block FROM datasets WHERE id = ?1")?
            .query_row([ds.id.as_str()], |r| {
                Ok(Tables {
                    generation: r.get(0)?,
                    block: r.get(1)?,
                })
            })
            .optional()?
            .ok_or_else(|| StoreError::NoDataset(ds.id.clone()))
    }
}

impl Snapshot for SqliteSnapshot<'_> {
    fn datasets(&self) -> Result<Vec<DatasetInfo>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT id, info FROM datasets ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|r| {
            let (id, info) = r?;
            parse_info(&id, &info)
        })
        .collect()
    }

    fn dataset(&self, id: &DatasetId) -> Result<Option<DatasetInfo>, StoreError> {
        Ok(load_info(self.conn(), id.as_str())?.map(|(info, _)| info))
    }

    fn count(&self, ds: &DatasetInfo, q: &Query) -> Result<u64, StoreError> {
        let tables = self.tables(ds)?;
        let (where_sql, params) = from_where(tables, q);
        let sql = format!("SELECT count(*){where_sql}");
        let n: i64 = self
            .conn()
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?;
        Ok(n as u64)
    }

    fn scan(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        visit: &mut dyn FnMut(StoredFeature) -> bool,
    ) -> Result<(), StoreError> {
        let tables = self.tables(ds)?;
        scan_gen(self.conn(), ds, tables, q, visit)
    }

    fn histogram(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        bucket: Bucket,
    ) -> Result<Vec<(TimeRange, u64)>, StoreError> {
        let tables = self.tables(ds)?;
        let (where_sql, params) = from_where(tables, q);
        let zone = ds.zone();
        let key = histogram::key_sql(
            bucket,
            histogram::is_utc(&zone),
            "strftime('%Y-%m', t0, 'unixepoch')",
        );
        let joiner = if where_sql.contains(" WHERE ") {
            " AND"
        } else {
            " WHERE"
        };
        let sql = format!(
            "SELECT {key} AS b, count(*){where_sql}{joiner} t0 IS NOT NULL GROUP BY b ORDER BY b"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
            let key = match r.get::<_, rusqlite::types::Value>(0)? {
                rusqlite::types::Value::Integer(n) => Some(BucketKey::Number(n)),
                rusqlite::types::Value::Text(m) => Some(BucketKey::Month(m)),
                _ => None,
            };
            Ok((key, r.get::<_, i64>(1)? as u64))
        })?;
        let rows = rows.collect::<Result<Vec<_>, _>>()?;
        let out = histogram::collect(
            bucket,
            &zone,
            rows.into_iter().filter_map(|(k, n)| k.map(|k| (k, n))),
        );
        Ok(out)
    }

    fn positions(
        &self,
        ds: &DatasetInfo,
        field: Option<usize>,
        visit: &mut dyn FnMut(PositionRow),
    ) -> Result<(), StoreError> {
        let tables = self.tables(ds)?;
        let generation = tables.generation;
        let value = match field {
            Some(i) if i < ds.fields.len() => format!("c{i}"),
            _ => "NULL".into(),
        };
        let sql = format!(
            "SELECT fid, src, (minx + maxx) / 2, (miny + maxy) / 2, t0, t1, {value} FROM f_{generation} \
             WHERE minx IS NOT NULL ORDER BY fid"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let key: i64 = r.get(0)?;
            let id = if ds.source_ids {
                r.get::<_, String>(1)?
            } else {
                key.to_string()
            };
            let time = match (r.get::<_, Option<i64>>(4)?, r.get::<_, Option<i64>>(5)?) {
                (Some(start), Some(end)) => Some(TimeRange { start, end }),
                _ => None,
            };
            let value = match r.get_ref(6)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::Integer(n),
                ValueRef::Real(x) => Value::Number(x),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            };
            visit(PositionRow {
                key,
                id,
                lon: r.get(2)?,
                lat: r.get(3)?,
                time,
                value,
            });
        }
        Ok(())
    }

    fn field_values(
        &self,
        ds: &DatasetInfo,
        field: usize,
        visit: &mut dyn FnMut(FieldValueRow),
    ) -> Result<bool, StoreError> {
        let Some(f) = ds.fields.get(field) else {
            return Ok(false);
        };
        let generation = self.tables(ds)?.generation;
        // `field` is an index below the field count: the column name is generated, not input.
        let sql = format!("SELECT fid, t0, t1, c{field} FROM f_{generation} ORDER BY fid");
        let mut stmt = self.conn().prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let time = match (r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?) {
                (Some(start), Some(end)) => Some(TimeRange { start, end }),
                _ => None,
            };
            // Decoded as `decode` does for scans, so a join reads the same values either way.
            let value = match r.get_ref(3)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) if f.ty == FieldType::Boolean => Value::Boolean(n != 0),
                ValueRef::Integer(n) => Value::Integer(n),
                ValueRef::Real(x) => Value::Number(x),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            };
            visit(FieldValueRow {
                key: r.get(0)?,
                time,
                value,
            });
        }
        Ok(true)
    }

    fn matching_keys(&self, ds: &DatasetInfo, q: &Query) -> Result<Vec<i64>, StoreError> {
        let tables = self.tables(ds)?;
        let (where_sql, params) = from_where(tables, q);
        let sql = format!("SELECT fid{where_sql} ORDER BY fid");
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let keys = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?;
        Ok(keys.collect::<Result<_, _>>()?)
    }

    fn top_values(
        &self,
        ds: &DatasetInfo,
        field: usize,
        n: usize,
    ) -> Result<Vec<(Value, u64)>, StoreError> {
        let tables = self.tables(ds)?;
        let generation = tables.generation;
        if field >= ds.fields.len() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT c{field}, count(*) AS n FROM f_{generation} WHERE c{field} IS NOT NULL GROUP BY c{field} ORDER BY n DESC, c{field} LIMIT ?1"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let boolean = ds.fields[field].ty == FieldType::Boolean;
        let rows = stmt.query_map([n as i64], |r| {
            let v = match r.get_ref(0)? {
                ValueRef::Integer(i) if boolean => Value::Boolean(i != 0),
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(x) => Value::Number(x),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
                ValueRef::Null => Value::Null,
            };
            Ok((v, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn interrupter(&self) -> Option<crate::store::Interrupter> {
        // sqlite3_interrupt: the running statement fails with SQLITE_INTERRUPT; a call
        // while none runs is cleared when the next statement starts.
        let handle = self.conn().get_interrupt_handle();
        Some(Box::new(move || handle.interrupt()))
    }

    fn feature(&self, ds: &DatasetInfo, id: &str) -> Result<Option<StoredFeature>, StoreError> {
        let tables = self.tables(ds)?;
        let generation = tables.generation;
        let (key, param): (&str, ToSqlOutput<'_>) = if ds.source_ids {
            ("src", ToSqlOutput::from(id.to_owned()))
        } else {
            match id.parse::<i64>() {
                Ok(fid) => ("fid", ToSqlOutput::from(fid)),
                Err(_) => return Ok(None),
            }
        };
        let sql = format!(
            "SELECT {} FROM f_{generation} WHERE {key} = ?1",
            select_list(ds)
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        Ok(stmt.query_row([param], |r| decode(r, ds)).optional()?)
    }
}

fn select_list(ds: &DatasetInfo) -> String {
    let mut s = String::from("fid, src, minx, miny, maxx, maxy, geom, t0, t1");
    for i in 0..ds.fields.len() {
        s.push_str(&format!(", c{i}"));
    }
    s
}

/// Scans one table generation.
pub fn scan_gen(
    conn: &Connection,
    ds: &DatasetInfo,
    tables: Tables,
    q: &Query,
    visit: &mut dyn FnMut(StoredFeature) -> bool,
) -> Result<(), StoreError> {
    let (where_sql, mut params) = from_where(tables, q);
    let mut order: Vec<String> = q
        .sort
        .iter()
        .map(|(i, desc)| format!("c{i}{}", if *desc { " DESC" } else { "" }))
        .collect();
    order.push("fid".into());
    let mut sql = format!(
        "SELECT {}{where_sql} ORDER BY {}",
        select_list(ds),
        order.join(", ")
    );
    if q.limit.is_some() || q.offset > 0 {
        sql.push_str(" LIMIT ? OFFSET ?");
        params.push(ToSqlOutput::from(q.limit.map_or(-1, |l| l as i64)));
        params.push(ToSqlOutput::from(q.offset as i64));
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    while let Some(row) = rows.next()? {
        if !visit(decode(row, ds)?) {
            break;
        }
    }
    Ok(())
}

/// `FROM ... WHERE ...` of a query and its parameters, in order.
///
/// With a spatial constraint, the R*Tree drives: each entry covers a block of
/// `tables.block` consecutive rows (rows are in Hilbert order, so a block is compact), and
/// the block's row range is joined on the rowid; the exact per-row bounds then decide. The
/// R*Tree keeps f32 bounds rounded outward, so it finds a superset, never fewer.
fn from_where(t: Tables, q: &Query) -> (String, Vec<ToSqlOutput<'static>>) {
    let (g, b) = (t.generation, t.block);
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<ToSqlOutput<'static>> = Vec::new();
    let mut prefilter: Option<Bounds> = None;
    let mut narrow = |with: Bounds| {
        prefilter = Some(match prefilter {
            None => with,
            Some(p) => Bounds {
                min_x: p.min_x.max(with.min_x),
                min_y: p.min_y.max(with.min_y),
                max_x: p.max_x.min(with.max_x),
                max_y: p.max_y.min(with.max_y),
            },
        })
    };
    if let Some(first) = q.bbox.first() {
        let mut union = *first;
        q.bbox.iter().for_each(|b| union.extend(b));
        narrow(union);
    }
    if let Some(w) = &q.within {
        narrow(w.area.bounds);
    }
    let from = match prefilter {
        Some(p) => {
            conds.push(format!(
                "r_{g}.x0 <= ? AND r_{g}.x1 >= ? AND r_{g}.y0 <= ? AND r_{g}.y1 >= ?"
            ));
            params.extend([p.max_x, p.min_x, p.max_y, p.min_y].map(ToSqlOutput::from));
            format!(
                " FROM r_{g} JOIN f_{g} ON f_{g}.fid BETWEEN r_{g}.id * {b} + 1 AND r_{g}.id * {b} + {b}"
            )
        }
        None => format!(" FROM f_{g}"),
    };
    if !q.bbox.is_empty() {
        let any: Vec<&str> = q
            .bbox
            .iter()
            .map(|_| "(minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)")
            .collect();
        conds.push(format!("({})", any.join(" OR ")));
        for b in &q.bbox {
            params.extend([b.max_x, b.min_x, b.max_y, b.min_y].map(ToSqlOutput::from));
        }
    }
    if let Some(t) = q.time {
        conds.push("t0 <= ? AND t1 >= ?".into());
        params.push(ToSqlOutput::from(t.end));
        params.push(ToSqlOutput::from(t.start));
    }
    for (i, values) in &q.equals {
        let mut any = Vec::new();
        for v in values {
            if *v == Value::Null {
                any.push(format!("c{i} IS NULL"));
            } else {
                any.push(format!("c{i} = ?"));
                params.push(sql_value(v));
            }
        }
        if !any.is_empty() {
            conds.push(format!("({})", any.join(" OR ")));
        }
    }
    if let Some(w) = &q.within {
        conds.push("tessera_within(minx, miny, maxx, maxy, ?)".into());
        // The store's own form of the area: WKB, decoded once per statement by the function.
        params.push(ToSqlOutput::from(wkb::encode(&w.area.geometry())));
    }
    let sql = if conds.is_empty() {
        from
    } else {
        format!("{from} WHERE {}", conds.join(" AND "))
    };
    (sql, params)
}

fn sql_value(v: &Value) -> ToSqlOutput<'static> {
    match v {
        Value::Null => ToSqlOutput::from(rusqlite::types::Null),
        Value::Integer(i) => ToSqlOutput::from(*i),
        Value::Number(n) => ToSqlOutput::from(*n),
        Value::Boolean(b) => ToSqlOutput::from(i64::from(*b)),
        Value::Text(s) => ToSqlOutput::from(s.clone()),
    }
}

fn decode(r: &Row<'_>, ds: &DatasetInfo) -> rusqlite::Result<StoredFeature> {
    let fid: i64 = r.get(0)?;
    let id = if ds.source_ids {
        r.get::<_, String>(1)?
    } else {
        fid.to_string()
    };
    let minx: Option<f64> = r.get(2)?;
    let geometry = match minx {
        None => None,
        Some(min_x) => {
            let bounds = Bounds {
                min_x,
                min_y: r.get(3)?,
                max_x: r.get(4)?,
                max_y: r.get(5)?,
            };
            Some(match stored_shape(r.get_ref(6)?)? {
                Some(geometry) => StoredGeometry::Shape { bounds, geometry },
                None => StoredGeometry::Point {
                    lon: bounds.min_x,
                    lat: bounds.min_y,
                },
            })
        }
    };
    let time = match (r.get::<_, Option<i64>>(7)?, r.get::<_, Option<i64>>(8)?) {
        (Some(start), Some(end)) => Some(TimeRange { start, end }),
        _ => None,
    };
    let mut values = Vec::with_capacity(ds.fields.len());
    for (i, f) in ds.fields.iter().enumerate() {
        values.push(match r.get_ref(9 + i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) if f.ty == FieldType::Boolean => Value::Boolean(n != 0),
            ValueRef::Integer(n) => Value::Integer(n),
            ValueRef::Real(x) => Value::Number(x),
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                Value::Text(String::from_utf8_lossy(t).into_owned())
            }
        });
    }
    Ok(StoredFeature {
        id,
        geometry,
        time,
        values,
    })
}

/// The `geom` column: NULL for a point, a BLOB of WKB, or TEXT of GeoJSON in catalogs
/// written before WKB (read as they are; a re-import rewrites them). A value that is
/// neither fails the read: the catalog is damaged, and drawing the row without its
/// shape would hide that.
fn stored_shape(v: ValueRef<'_>) -> rusqlite::Result<Option<geo_types::Geometry<f64>>> {
    let bad = |ty, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(6, ty, e)
    };
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => wkb::decode(b)
            .map(Some)
            .map_err(|e| bad(Type::Blob, Box::new(e))),
        ValueRef::Text(t) => legacy_geojson(t)
            .map(Some)
            .ok_or_else(|| bad(Type::Text, "unreadable GeoJSON geometry".into())),
        ValueRef::Integer(_) | ValueRef::Real(_) => Err(bad(
            v.data_type(),
            "a number where a geometry belongs".into(),
        )),
    }
}

/// Legacy GeoJSON text, checked as at import (so a damaged catalog cannot make the
/// conversion panic on a position with one coordinate).
fn legacy_geojson(text: &[u8]) -> Option<geo_types::Geometry<f64>> {
    let g: geojson::Geometry = serde_json::from_slice(text).ok()?;
    ingest::convert_geojson(g).ok()?.shape
}

#[cfg(test)]
mod tests {
    use super::super::SqliteCatalog;
    use crate::import::ImportRequest;
    use crate::model::{DatasetId, DatasetMeta};
    use crate::spatial::Area;
    use crate::store::Catalog;
    use crate::store::{Query, StoreError, StoredFeature, Within, wkb};

    const FILE: &str = r#"{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"n":"road"},"geometry":{"type":"LineString","coordinates":[[-73.9857132,40.7484],[-73.97,40.75]]}},
{"type":"Feature","properties":{"n":"park"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}},
{"type":"Feature","properties":{"n":"isles"},"geometry":{"type":"MultiPolygon","coordinates":[[[[20,20],[21,20],[21,21],[20,20]]],[[[30,30],[31,30],[31,31],[30,30]]]]}},
{"type":"Feature","properties":{"n":"in"},"geometry":{"type":"Point","coordinates":[1.5,1.5]}},
{"type":"Feature","properties":{"n":"hole"},"geometry":{"type":"Point","coordinates":[5,5]}},
{"type":"Feature","properties":{"n":"out"},"geometry":{"type":"Point","coordinates":[12,1]}}
]}"#;

    fn scan(catalog: &SqliteCatalog, q: &Query) -> Result<Vec<StoredFeature>, StoreError> {
        let snap = catalog.snapshot()?;
        let ds = snap.dataset(&DatasetId::parse("mixed").unwrap())?.unwrap();
        let mut out = Vec::new();
        snap.scan(&ds, q, &mut |f| {
            out.push(f);
            true
        })?;
        Ok(out)
    }

    /// The catalog, its file, and the name of the dataset's feature table.
    fn imported(dir: &std::path::Path) -> (SqliteCatalog, std::path::PathBuf, String) {
        let file = dir.join("mixed.geojson");
        std::fs::write(&file, FILE).unwrap();
        let db = dir.join("c.db");
        let catalog = SqliteCatalog::open(&db).unwrap();
        let req = ImportRequest {
            id: DatasetId::parse("mixed").unwrap(),
            meta: DatasetMeta::default(),
            files: vec![file],
            options: Default::default(),
            time: None,
            time_end: None,
            timezone: jiff::tz::TimeZone::UTC,
            append: false,
            max_errors: 0,
        };
        catalog.import(&req, &mut |_| {}).unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        let table: String = conn
            .query_row(
                r"SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'f\_%' ESCAPE '\'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (catalog, db, table)
    }

    /// Catalogs written before WKB hold GeoJSON text; rows written now hold WKB. Both
    /// read back as the same geo-types values, and `within=` works over either.
    #[test]
    fn wkb_blobs_and_legacy_text_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, db, table) = imported(dir.path());
        let conn = rusqlite::Connection::open(&db).unwrap();
        let kinds = |conn: &rusqlite::Connection| -> Vec<String> {
            let sql = format!("SELECT typeof(geom) FROM {table} ORDER BY fid");
            let mut stmt = conn.prepare(&sql).unwrap();
            let mut k: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            k.sort();
            k
        };
        assert_eq!(
            kinds(&conn),
            ["blob", "blob", "blob", "null", "null", "null"],
            "an import writes shapes as WKB"
        );
        let from_blob = scan(&catalog, &Query::default()).unwrap();

        // Rewrite every shape as GeoJSON text, as catalogs written before WKB hold them.
        let shapes: Vec<(i64, Vec<u8>)> = conn
            .prepare(&format!(
                "SELECT fid, geom FROM {table} WHERE geom IS NOT NULL"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(shapes.len(), 3);
        for (fid, blob) in &shapes {
            let g = wkb::decode(blob).unwrap();
            let sql = format!("UPDATE {table} SET geom = ? WHERE fid = ?");
            conn.execute(
                &sql,
                rusqlite::params![crate::geometry::to_geojson(&g), fid],
            )
            .unwrap();
        }
        assert_eq!(
            kinds(&conn),
            ["null", "null", "null", "text", "text", "text"]
        );
        let from_text = scan(&catalog, &Query::default()).unwrap();
        assert_eq!(from_blob, from_text);

        // The values are the file's, exactly.
        let by_name = |n: &str| {
            from_blob
                .iter()
                .find(|f| f.values[0] == crate::model::Value::Text(n.into()))
                .unwrap()
        };
        let park = match &by_name("park").geometry {
            Some(crate::store::StoredGeometry::Shape { geometry, .. }) => geometry.clone(),
            other => panic!("{other:?}"),
        };
        let mut text = Vec::new();
        crate::geometry::write_geojson(&mut text, &park);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            r#"{"type":"Polygon","coordinates":[[[0.0,0.0],[10.0,0.0],[10.0,10.0],[0.0,10.0],[0.0,0.0]],[[4.0,4.0],[6.0,4.0],[6.0,6.0],[4.0,6.0],[4.0,4.0]]]}"#
        );

        // within= the park: the point in its body, not the one in its hole nor outside
        // (nor the park itself, whose bounds' centre is in the hole).
        let q = Query {
            within: Some(Within {
                area: Area::from_geometry(&park).unwrap(),
            }),
            ..Query::default()
        };
        let names: Vec<_> = scan(&catalog, &q)
            .unwrap()
            .into_iter()
            .map(|f| f.values[0].clone())
            .collect();
        assert_eq!(names, vec![crate::model::Value::Text("in".into())]);
    }

    #[test]
    fn a_damaged_geometry_is_an_error_not_a_panic_or_a_point() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, db, table) = imported(dir.path());
        let conn = rusqlite::Connection::open(&db).unwrap();
        for bad in [
            rusqlite::types::Value::Blob(vec![1, 2, 0, 0, 0, 9]),
            rusqlite::types::Value::Text(r#"{"type":"LineString","coordinates":[[1],[2]]}"#.into()),
            rusqlite::types::Value::Integer(7),
        ] {
            let sql = format!("UPDATE {table} SET geom = ? WHERE geom IS NOT NULL");
            conn.execute(&sql, [&bad]).unwrap();
            let err = scan(&catalog, &Query::default()).unwrap_err();
            assert!(matches!(err, StoreError::Db(_)), "{bad:?}: {err}");
        }
    }
}
