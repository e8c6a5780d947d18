//! Reading: one REPEATABLE READ transaction per snapshot, queries built with bound
//! parameters only (the names spliced into SQL are generated: `f_{gen}`, `c{i}`), and
//! rows decoded into the same values the SQLite backend gives.

use super::bridge;
use super::db::{describe, is_connection_error};
use super::endpoint::{Endpoint, Pooled};
use super::{PgCatalog, StoreError};
use crate::model::{Bounds, DatasetId, DatasetInfo, FieldType, TimeRange, Value};
use crate::store::histogram::{self, BucketKey};
use crate::store::{
    Bucket, FieldValueRow, PositionRow, Query, Snapshot, StoredFeature, StoredGeometry, wkb,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_postgres::Row;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// Starts a read transaction on `endpoint`: the connection and the stamp its data is at;
/// `None` if that is older than `need`.
pub(super) async fn begin(endpoint: &Endpoint, need: i64) -> Result<Option<(Pooled, i64)>, String> {
    // A pooled connection may have been closed by the server since: one fresh retry.
    for attempt in 0..2 {
        let client = if attempt == 0 {
            endpoint.client().await
        } else {
            endpoint.fresh().await
        };
        let client = client?;
        let answer = client
            .simple_query(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT stamp FROM tessera.state",
            )
            .await;
        match answer {
            Ok(messages) => {
                let stamp = messages.iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        r.get(0).and_then(|v| v.parse::<i64>().ok())
                    }
                    _ => None,
                });
                endpoint.mark_up();
                if let Some(stamp) = stamp.filter(|s| *s >= need) {
                    return Ok(Some((client, stamp)));
                }
                let _ = client.batch_execute("ROLLBACK").await;
                endpoint.give_back(client);
                return Ok(None);
            }
            Err(e) if attempt == 0 && is_connection_error(&e) => continue,
            Err(e) => return Err(describe(&e)),
        }
    }
    Err("no connection".into())
}

/// A bound parameter, with the PostgreSQL type it is sent as.
#[derive(Debug, Clone)]
pub(super) enum Param {
    I64(i64),
    F64(f64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
}

impl Param {
    fn ty(&self) -> Type {
        match self {
            Param::I64(_) => Type::INT8,
            Param::F64(_) => Type::FLOAT8,
            Param::Bool(_) => Type::BOOL,
            Param::Text(_) => Type::TEXT,
            Param::Bytes(_) => Type::BYTEA,
        }
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::I64(v) => v.to_sql(ty, out),
            Param::F64(v) => v.to_sql(ty, out),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
        }
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// The column type of a field. Booleans are PostgreSQL booleans (SQLite keeps 0/1).
pub(super) fn column_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Integer => "int8",
        FieldType::Number => "float8",
        FieldType::Boolean => "boolean",
        _ => "text",
    }
}

/// `value` as a parameter of a column of type `ty`, converted as SQLite's column affinity
/// would; `None` when no stored value could equal it.
pub(super) fn as_column(value: &Value, ty: FieldType) -> Option<Param> {
    match (ty, value) {
        (_, Value::Null) => None,
        (FieldType::Integer, Value::Integer(i)) => Some(Param::I64(*i)),
        (FieldType::Integer, Value::Number(x)) if x.fract() == 0.0 && x.abs() < 9.0e18 => {
            Some(Param::I64(*x as i64))
        }
        (FieldType::Integer, Value::Boolean(b)) => Some(Param::I64(i64::from(*b))),
        (FieldType::Integer, Value::Text(s)) => s.trim().parse().ok().map(Param::I64),
        (FieldType::Integer, _) => None,
        (FieldType::Number, Value::Integer(i)) => Some(Param::F64(*i as f64)),
        (FieldType::Number, Value::Number(x)) => Some(Param::F64(*x)),
        (FieldType::Number, Value::Boolean(b)) => Some(Param::F64(f64::from(u8::from(*b)))),
        (FieldType::Number, Value::Text(s)) => s.trim().parse().ok().map(Param::F64),
        (FieldType::Boolean, Value::Boolean(b)) => Some(Param::Bool(*b)),
        (FieldType::Boolean, Value::Integer(i)) => Some(Param::Bool(*i != 0)),
        (FieldType::Boolean, Value::Number(x)) => Some(Param::Bool(*x != 0.0)),
        (FieldType::Boolean, Value::Text(s)) => match s.as_str() {
            "true" | "1" => Some(Param::Bool(true)),
            "false" | "0" => Some(Param::Bool(false)),
            _ => None,
        },
        // PostgreSQL text cannot hold NUL, so no stored value has one (copy.rs: `RowWriter::text`).
        (_, Value::Text(s)) if s.contains('\0') => None,
        (_, Value::Text(s)) => Some(Param::Text(s.clone())),
        (_, Value::Integer(i)) => Some(Param::Text(i.to_string())),
        (_, Value::Number(x)) => Some(Param::Text(x.to_string())),
        (_, Value::Boolean(b)) => Some(Param::Text(b.to_string())),
    }
}

fn types_of(params: &[Param]) -> Vec<Type> {
    params.iter().map(Param::ty).collect()
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// SQL text and its parameters, numbered as they are bound.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) params: Vec<Param>,
}

impl Sql {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }
}

/// Appends ` FROM tessera.f_{gen} [WHERE ...]` for `q` (without sort, limit, offset).
fn from_where(sql: &mut Sql, generation: i64, ds: &DatasetInfo, q: &Query) {
    let mut conds: Vec<String> = Vec::new();
    let mut prefilter: Option<Bounds> = None;
    if let Some(first) = q.bbox.first() {
        let mut union = *first;
        q.bbox.iter().for_each(|b| union.extend(b));
        prefilter = Some(union);
    }
    if let Some(w) = &q.within {
        let a = w.area.bounds;
        prefilter = Some(match prefilter {
            None => a,
            Some(p) => Bounds {
                min_x: p.min_x.max(a.min_x),
                min_y: p.min_y.max(a.min_y),
                max_x: p.max_x.min(a.max_x),
                max_y: p.max_y.min(a.max_y),
            },
        });
    }
    if let Some(p) = prefilter {
        // The GiST index finds a superset (its boxes are float4 rounded outward); the
        // exact bounds below decide, as in SQLite.
        let [a, b, c, d] = [p.min_x, p.min_y, p.max_x, p.max_y].map(|v| sql.bind(Param::F64(v)));
        conds.push(format!("geom && ST_MakeEnvelope({a}, {b}, {c}, {d}, 4326)"));
    }
    if !q.bbox.is_empty() {
        let mut any = Vec::new();
        for bb in &q.bbox {
            let [a, b, c, d] =
                [bb.max_x, bb.min_x, bb.max_y, bb.min_y].map(|v| sql.bind(Param::F64(v)));
            any.push(format!(
                "(minx <= {a} AND maxx >= {b} AND miny <= {c} AND maxy >= {d})"
            ));
        }
        conds.push(format!("({})", any.join(" OR ")));
    }
    if let Some(t) = q.time {
        let (end, start) = (sql.bind(Param::I64(t.end)), sql.bind(Param::I64(t.start)));
        conds.push(format!("t0 <= {end} AND t1 >= {start}"));
    }
    for (i, values) in &q.equals {
        let Some(field) = ds.fields.get(*i) else {
            conds.push("FALSE".into());
            continue;
        };
        let mut any = Vec::new();
        for v in values {
            if *v == Value::Null {
                any.push(format!("c{i} IS NULL"));
            } else if let Some(p) = as_column(v, field.ty) {
                let n = sql.bind(p);
                any.push(format!("c{i} = {n}"));
            }
        }
        if any.is_empty() {
            any.push("FALSE".into());
        }
        conds.push(format!("({})", any.join(" OR ")));
    }
    if let Some(w) = &q.within {
        // The centre of a feature's bounds, as SQLite's tessera_within.
        let area = sql.bind(Param::Bytes(wkb::encode(&w.area.geometry())));
        conds.push(format!(
            "ST_Intersects(ST_GeomFromWKB({area}, 4326), ST_SetSRID(ST_MakePoint((minx + maxx) / 2, (miny + maxy) / 2), 4326))"
        ));
    }
    sql.text.push_str(&format!(" FROM tessera.f_{generation}"));
    if !conds.is_empty() {
        sql.text.push_str(" WHERE ");
        sql.text.push_str(&conds.join(" AND "));
    }
}

/// `ORDER BY` of a scan: the sort keys in SQLite's order (NULLs lowest, text by bytes),
/// then the feature id.
fn order_by(ds: &DatasetInfo, q: &Query) -> String {
    let mut keys: Vec<String> = q
        .sort
        .iter()
        .filter(|(i, _)| *i < ds.fields.len())
        .map(|(i, desc)| {
            let collate = if column_type(ds.fields[*i].ty) == "text" {
                " COLLATE \"C\""
            } else {
                ""
            };
            let dir = if *desc {
                " DESC NULLS LAST"
            } else {
                " ASC NULLS FIRST"
            };
            format!("c{i}{collate}{dir}")
        })
        .collect();
    keys.push("fid".into());
    format!(" ORDER BY {}", keys.join(", "))
}

/// `geom` goes out as ISO WKB (`bytea`): a result column of PostGIS's own type would make
/// the client look the type up on the same connection, behind the rows it waits for.
const FIXED: &str = "fid, src, minx, miny, maxx, maxy, ST_AsBinary(geom), t0, t1";

fn select_list(ds: &DatasetInfo) -> String {
    let mut s = String::from(FIXED);
    for i in 0..ds.fields.len() {
        s.push_str(&format!(", c{i}"));
    }
    s
}

fn bad_row(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(format!("unreadable row: {e}").into())
}

/// A field value of a row, decoded by its column type.
fn value(r: &Row, idx: usize, ty: FieldType, bool_as_int: bool) -> Result<Value, StoreError> {
    Ok(match column_type(ty) {
        "int8" => r
            .try_get::<_, Option<i64>>(idx)
            .map_err(bad_row)?
            .map(Value::Integer),
        "float8" => r
            .try_get::<_, Option<f64>>(idx)
            .map_err(bad_row)?
            .map(Value::Number),
        "boolean" => r
            .try_get::<_, Option<bool>>(idx)
            .map_err(bad_row)?
            .map(|b| {
                if bool_as_int {
                    Value::Integer(i64::from(b))
                } else {
                    Value::Boolean(b)
                }
            }),
        _ => r
            .try_get::<_, Option<String>>(idx)
            .map_err(bad_row)?
            .map(Value::Text),
    }
    .unwrap_or(Value::Null))
}

fn time(r: &Row, start: usize) -> Result<Option<TimeRange>, StoreError> {
    let t0: Option<i64> = r.try_get(start).map_err(bad_row)?;
    let t1: Option<i64> = r.try_get(start + 1).map_err(bad_row)?;
    Ok(match (t0, t1) {
        (Some(start), Some(end)) => Some(TimeRange { start, end }),
        _ => None,
    })
}

fn decode(r: &Row, ds: &DatasetInfo) -> Result<StoredFeature, StoreError> {
    let fid: i64 = r.try_get(0).map_err(bad_row)?;
    let id = if ds.source_ids {
        r.try_get::<_, String>(1).map_err(bad_row)?
    } else {
        fid.to_string()
    };
    let minx: Option<f64> = r.try_get(2).map_err(bad_row)?;
    let geometry = match minx {
        None => None,
        Some(min_x) => {
            let bounds = Bounds {
                min_x,
                min_y: r.try_get(3).map_err(bad_row)?,
                max_x: r.try_get(4).map_err(bad_row)?,
                max_y: r.try_get(5).map_err(bad_row)?,
            };
            let wkb_bytes: Option<Vec<u8>> = r.try_get(6).map_err(bad_row)?;
            // Points are stored as PostGIS points (for the index and for other tools) but
            // read from their exact bounds, as SQLite stores them.
            let is_point = wkb_bytes.as_ref().is_none_or(|b| {
                b.len() >= 5
                    && (if b[0] == 1 {
                        u32::from_le_bytes([b[1], b[2], b[3], b[4]])
                    } else {
                        u32::from_be_bytes([b[1], b[2], b[3], b[4]])
                    }) == 1
            });
            Some(if is_point {
                StoredGeometry::Point {
                    lon: bounds.min_x,
                    lat: bounds.min_y,
                }
            } else {
                let geometry =
                    wkb::decode(wkb_bytes.as_deref().unwrap_or_default()).map_err(|e| {
                        StoreError::Db(format!("damaged geometry in row {fid}: {e}").into())
                    })?;
                StoredGeometry::Shape { bounds, geometry }
            })
        }
    };
    let time = time(r, 7)?;
    let mut values = Vec::with_capacity(ds.fields.len());
    for (i, f) in ds.fields.iter().enumerate() {
        values.push(value(r, 9 + i, f.ty, false)?);
    }
    Ok(StoredFeature {
        id,
        geometry,
        time,
        values,
    })
}

pub(super) fn parse_info(id: &str, json: &str) -> Result<DatasetInfo, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        id: id.to_owned(),
        message: e.to_string(),
    })
}

/// The connection a snapshot reads on: it moves to another server if its own goes away
/// before a read has delivered anything.
struct Conn {
    endpoint: Arc<Endpoint>,
    client: Arc<Pooled>,
}

pub struct PgSnapshot<'a> {
    catalog: &'a PgCatalog,
    /// The stamp this snapshot's data is at: metadata read at the same stamp is the same.
    /// (It moves only if the snapshot has to move to another server.)
    stamp: std::sync::atomic::AtomicI64,
    conn: Mutex<Option<Conn>>,
    /// Table generation of each dataset, as this snapshot saw it.
    gens: Mutex<HashMap<String, i64>>,
    /// Cleared when the snapshot ends, so a late interrupt cancels nothing of another's.
    live: Arc<AtomicBool>,
}

impl<'a> PgSnapshot<'a> {
    pub(super) fn new(
        catalog: &'a PgCatalog,
        endpoint: Arc<Endpoint>,
        client: Pooled,
        stamp: i64,
    ) -> Self {
        Self {
            catalog,
            stamp: stamp.into(),
            conn: Mutex::new(Some(Conn {
                endpoint,
                client: Arc::new(client),
            })),
            gens: Mutex::new(HashMap::new()),
            live: Arc::new(AtomicBool::new(true)),
        }
    }

    fn stamp(&self) -> i64 {
        self.stamp.load(Ordering::Acquire)
    }

    fn client(&self) -> Result<Arc<Pooled>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.as_ref()
            .map(|c| c.client.clone())
            .ok_or_else(|| StoreError::Db("the snapshot's connection was lost".into()))
    }

    /// After a connection failure: marks the server down (a replica) and continues on the
    /// next one that is at least as new. Tables of a version never change, so reads of
    /// the version this snapshot already saw give the same rows anywhere.
    fn move_on(&self, error: &tokio_postgres::Error) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = conn.take()
            && old.endpoint.role == "replica"
        {
            old.endpoint.mark_down(&describe(error));
        }
        let (endpoint, client, stamp) = self.catalog.begin_read()?;
        self.stamp.store(stamp, Ordering::Release);
        *conn = Some(Conn {
            endpoint,
            client: Arc::new(client),
        });
        Ok(())
    }

    /// Runs a query to completion, once more elsewhere if the server went away.
    fn rows(&self, sql: &Sql) -> Result<Vec<Row>, StoreError> {
        for attempt in 0..2 {
            let client = self.client()?;
            let text = sql.text.clone();
            let params = sql.params.clone();
            let answer = self.catalog.bridge.run(async move {
                let statement = match client.prepared(&text, &types_of(&params)).await {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(e)),
                };
                Ok(client.query(&statement, &refs(&params)).await)
            })?;
            match answer {
                Ok(rows) => return Ok(rows),
                Err(e) if attempt == 0 && is_connection_error(&e) => self.move_on(&e)?,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Streams a query's rows to `visit` (which returns false to stop), in batches from a
    /// task, so an export never holds all rows in memory. Retried elsewhere only if the
    /// server went away before any row was delivered.
    fn stream(
        &self,
        sql: &Sql,
        visit: &mut dyn FnMut(&Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        const BATCH: usize = 512;
        for attempt in 0..2 {
            let client = self.client()?;
            let text = sql.text.clone();
            let params = sql.params.clone();
            let (tx, mut rx) =
                tokio::sync::mpsc::channel::<Result<Vec<Row>, tokio_postgres::Error>>(4);
            self.catalog.bridge.handle().spawn(async move {
                let stream = match client.prepared(&text, &types_of(&params)).await {
                    Ok(statement) => client.query_raw(&statement, refs(&params)).await,
                    Err(e) => Err(e),
                };
                // The rows come without the client: let the snapshot's end have it back.
                drop(client);
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let mut stream = std::pin::pin!(stream);
                let mut batch = Vec::with_capacity(BATCH);
                while let Some(row) = stream.next().await {
                    match row {
                        Ok(r) => {
                            batch.push(r);
                            if batch.len() == BATCH
                                && tx.send(Ok(std::mem::take(&mut batch))).await.is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch)).await;
                }
            });
            let mut delivered = false;
            let mut failure = None;
            while let Some(message) = bridge::wait(rx.recv()) {
                match message {
                    Ok(rows) => {
                        for r in &rows {
                            delivered = true;
                            if !visit(r)? {
                                return Ok(());
                            }
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            match failure {
                None => return Ok(()),
                Some(e) if attempt == 0 && !delivered && is_connection_error(&e) => {
                    self.move_on(&e)?
                }
                Some(e) => return Err(e.into()),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// The table generation of `ds` in this snapshot.
    fn generation(&self, ds: &DatasetInfo) -> Result<i64, StoreError> {
        if let Some(g) = self
            .gens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ds.id.as_str())
        {
            return Ok(*g);
        }
        self.load(ds.id.as_str())?
            .map(|(_, g)| g)
            .ok_or_else(|| StoreError::NoDataset(ds.id.clone()))
    }

    fn load(&self, id: &str) -> Result<Option<(DatasetInfo, i64)>, StoreError> {
        if let Some(known) = self.catalog.meta.known(self.stamp(), id) {
            if let Some((_, generation)) = &known {
                self.gens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.to_owned(), *generation);
            }
            return Ok(known);
        }
        let sql = Sql {
            text: "SELECT info, gen FROM tessera.datasets WHERE id = $1".into(),
            params: vec![Param::Text(id.to_owned())],
        };
        let rows = self.rows(&sql)?;
        let Some(r) = rows.first() else {
            self.catalog.meta.learn(self.stamp(), id, None);
            return Ok(None);
        };
        let (info, generation): (String, i64) = (r.get(0), r.get(1));
        self.gens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), generation);
        let info = parse_info(id, &info)?;
        self.catalog
            .meta
            .learn(self.stamp(), id, Some((info.clone(), generation)));
        Ok(Some((info, generation)))
    }
}

impl Drop for PgSnapshot<'_> {
    fn drop(&mut self) {
        self.live.store(false, Ordering::Release);
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(Conn { endpoint, client }) = conn {
            // Ends the transaction without making the caller wait; the connection goes
            // back to the pool only once it is out of it.
            self.catalog.bridge.handle().spawn(async move {
                if client.batch_execute("COMMIT").await.is_ok()
                    && let Ok(client) = Arc::try_unwrap(client)
                {
                    endpoint.give_back(client);
                }
            });
        }
    }
}

impl Snapshot for PgSnapshot<'_> {
    fn datasets(&self) -> Result<Vec<DatasetInfo>, StoreError> {
        let sql = Sql {
            text: "SELECT id, info, gen FROM tessera.datasets ORDER BY id COLLATE \"C\"".into(),
            params: Vec::new(),
        };
        let rows = self.rows(&sql)?;
        let mut gens = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        rows.iter()
            .map(|r| {
                let (id, info, generation): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
                gens.insert(id.clone(), generation);
                let info = parse_info(&id, &info)?;
                self.catalog
                    .meta
                    .learn(self.stamp(), &id, Some((info.clone(), generation)));
                Ok(info)
            })
            .collect()
    }

    fn dataset(&self, id: &DatasetId) -> Result<Option<DatasetInfo>, StoreError> {
        Ok(self.load(id.as_str())?.map(|(info, _)| info))
    }

    fn count(&self, ds: &DatasetInfo, q: &Query) -> Result<u64, StoreError> {
        let generation = self.generation(ds)?;
        let mut sql = Sql {
            text: "SELECT count(*)".into(),
            ..Sql::default()
        };
        from_where(&mut sql, generation, ds, q);
        let rows = self.rows(&sql)?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
    }

    fn scan(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        visit: &mut dyn FnMut(StoredFeature) -> bool,
    ) -> Result<(), StoreError> {
        let generation = self.generation(ds)?;
        let mut sql = Sql {
            text: format!("SELECT {}", select_list(ds)),
            ..Sql::default()
        };
        from_where(&mut sql, generation, ds, q);
        sql.text.push_str(&order_by(ds, q));
        if let Some(limit) = q.limit {
            let n = sql.bind(Param::I64(i64::try_from(limit).unwrap_or(i64::MAX)));
            sql.text.push_str(&format!(" LIMIT {n}"));
        }
        if q.offset > 0 {
            let n = sql.bind(Param::I64(i64::try_from(q.offset).unwrap_or(i64::MAX)));
            sql.text.push_str(&format!(" OFFSET {n}"));
        }
        self.stream(&sql, &mut |r| Ok(visit(decode(r, ds)?)))
    }

    fn feature(&self, ds: &DatasetInfo, id: &str) -> Result<Option<StoredFeature>, StoreError> {
        let generation = self.generation(ds)?;
        let (key, param) = if ds.source_ids {
            ("src", Param::Text(id.to_owned()))
        } else {
            match id.parse::<i64>() {
                Ok(fid) => ("fid", Param::I64(fid)),
                Err(_) => return Ok(None),
            }
        };
        let sql = Sql {
            text: format!(
                "SELECT {} FROM tessera.f_{generation} WHERE {key} = $1",
                select_list(ds)
            ),
            params: vec![param],
        };
        self.rows(&sql)?.first().map(|r| decode(r, ds)).transpose()
    }

    fn histogram(
        &self,
        ds: &DatasetInfo,
        q: &Query,
        bucket: Bucket,
    ) -> Result<Vec<(TimeRange, u64)>, StoreError> {
        let generation = self.generation(ds)?;
        let zone = ds.zone();
        let key = histogram::key_sql(
            bucket,
            histogram::is_utc(&zone),
            "to_char(to_timestamp(t0) AT TIME ZONE 'UTC', 'YYYY-MM')",
        );
        let month = bucket == Bucket::Month && histogram::is_utc(&zone);
        let mut sql = Sql {
            text: format!("SELECT {key} AS b, count(*)"),
            ..Sql::default()
        };
        from_where(&mut sql, generation, ds, q);
        let joiner = if sql.text.contains(" WHERE ") {
            " AND"
        } else {
            " WHERE"
        };
        sql.text
            .push_str(&format!("{joiner} t0 IS NOT NULL GROUP BY b ORDER BY b"));
        let rows = self.rows(&sql)?;
        let keyed = rows.iter().map(|r| {
            let key = if month {
                BucketKey::Month(r.get::<_, String>(0))
            } else {
                BucketKey::Number(r.get::<_, i64>(0))
            };
            (key, r.get::<_, i64>(1) as u64)
        });
        Ok(histogram::collect(bucket, &zone, keyed.collect::<Vec<_>>()))
    }

    fn positions(
        &self,
        ds: &DatasetInfo,
        field: Option<usize>,
        visit: &mut dyn FnMut(PositionRow),
    ) -> Result<(), StoreError> {
        let generation = self.generation(ds)?;
        let field = field.filter(|i| *i < ds.fields.len());
        let column = field.map_or("NULL".to_owned(), |i| format!("c{i}"));
        let sql = Sql {
            text: format!(
                "SELECT fid, src, (minx + maxx) / 2, (miny + maxy) / 2, t0, t1, {column} FROM tessera.f_{generation} \
                 WHERE minx IS NOT NULL ORDER BY fid"
            ),
            params: Vec::new(),
        };
        self.stream(&sql, &mut |r| {
            let key: i64 = r.try_get(0).map_err(bad_row)?;
            let id = if ds.source_ids {
                r.try_get::<_, String>(1).map_err(bad_row)?
            } else {
                key.to_string()
            };
            // SQLite hands the point index booleans as 0/1; so does this, for equal tiles.
            let value = match field {
                Some(i) => value(r, 6, ds.fields[i].ty, true)?,
                None => Value::Null,
            };
            visit(PositionRow {
                key,
                id,
                lon: r.try_get(2).map_err(bad_row)?,
                lat: r.try_get(3).map_err(bad_row)?,
                time: time(r, 4)?,
                value,
            });
            Ok(true)
        })
    }

    fn matching_keys(&self, ds: &DatasetInfo, q: &Query) -> Result<Vec<i64>, StoreError> {
        let generation = self.generation(ds)?;
        let mut sql = Sql {
            text: "SELECT fid".into(),
            ..Sql::default()
        };
        from_where(&mut sql, generation, ds, q);
        sql.text.push_str(" ORDER BY fid");
        let mut keys = Vec::new();
        self.stream(&sql, &mut |r| {
            keys.push(r.try_get(0).map_err(bad_row)?);
            Ok(true)
        })?;
        Ok(keys)
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
        let generation = self.generation(ds)?;
        let sql = Sql {
            text: format!("SELECT fid, t0, t1, c{field} FROM tessera.f_{generation} ORDER BY fid"),
            params: Vec::new(),
        };
        self.stream(&sql, &mut |r| {
            visit(FieldValueRow {
                key: r.try_get(0).map_err(bad_row)?,
                time: time(r, 1)?,
                value: value(r, 3, f.ty, false)?,
            });
            Ok(true)
        })?;
        Ok(true)
    }

    fn top_values(
        &self,
        ds: &DatasetInfo,
        field: usize,
        n: usize,
    ) -> Result<Vec<(Value, u64)>, StoreError> {
        let Some(f) = ds.fields.get(field) else {
            return Ok(Vec::new());
        };
        let generation = self.generation(ds)?;
        let collate = if column_type(f.ty) == "text" {
            " COLLATE \"C\""
        } else {
            ""
        };
        let sql = Sql {
            text: format!(
                "SELECT c{field}, count(*) AS n FROM tessera.f_{generation} WHERE c{field} IS NOT NULL \
                 GROUP BY c{field} ORDER BY n DESC, c{field}{collate} LIMIT $1"
            ),
            params: vec![Param::I64(i64::try_from(n).unwrap_or(i64::MAX))],
        };
        self.rows(&sql)?
            .iter()
            .map(|r| Ok((value(r, 0, f.ty, false)?, r.get::<_, i64>(1) as u64)))
            .collect()
    }

    fn interrupter(&self) -> Option<crate::store::Interrupter> {
        let client = self.client().ok()?;
        let token = client.cancel_token();
        let live = self.live.clone();
        let handle = self.catalog.bridge.handle().clone();
        Some(Box::new(move || {
            if live.load(Ordering::Acquire) {
                let token = token.clone();
                handle.spawn(async move {
                    let _ = token.cancel_query(tokio_postgres::NoTls).await;
                });
            }
        }))
    }
}

/// Dataset metadata as read at one stamp. Every commit raises the stamp, so what a
/// snapshot at that stamp read is what any other snapshot at it would read: a request
/// then skips the round trip for the `datasets` row.
#[derive(Default)]
pub(super) struct MetaCache {
    known: Mutex<(i64, HashMap<String, Lookup>)>,
}

/// A dataset's metadata and table generation, or `None`: no such dataset.
type Lookup = Option<(DatasetInfo, i64)>;

impl MetaCache {
    fn known(&self, stamp: i64, id: &str) -> Option<Lookup> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        (known.0 == stamp)
            .then(|| known.1.get(id).cloned())
            .flatten()
    }

    fn learn(&self, stamp: i64, id: &str, value: Lookup) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.0 < stamp {
            *known = (stamp, HashMap::new());
        }
        if known.0 == stamp {
            known.1.insert(id.to_owned(), value);
        }
    }
}
