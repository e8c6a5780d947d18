//! The PostgreSQL [`DatasetWriter`]: one transaction on a connection of its own creates
//! the new version's table, fills it by binary `COPY`, indexes it and switches
//! `tessera.datasets` to it. Nothing of it is visible before the commit, and a writer
//! dropped (or an importer killed) before it leaves nothing: the server rolls back.

use super::copy::{self, RowWriter};
use super::db::{self, describe};
use super::read::{column_type, parse_info};
use super::views;
use super::{PgCatalog, StoreError};
use crate::model::{DatasetId, DatasetInfo, Field, FieldType};
use crate::store::{Committed, DatasetWriter, FeatureRow, NewVersion, WriteMode};
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use std::pin::Pin;
use std::sync::Arc;
use tokio_postgres::{Client, CopyInSink};

/// COPY data is sent in chunks of about this size.
const CHUNK: usize = 1 << 20;

type Sink = Pin<Box<CopyInSink<Bytes>>>;

pub(super) struct PgWriter<'c> {
    catalog: &'c PgCatalog,
    client: Arc<Client>,
    id: DatasetId,
    mode: WriteMode,
    /// The current version (and its table) when the writer was made.
    current: Option<(DatasetInfo, i64)>,
    started: Option<Started>,
    /// A transaction is open (rolled back on drop unless committed).
    open: bool,
}

struct Started {
    generation: i64,
    fields: Vec<Field>,
    sink: Option<Sink>,
    buffer: BytesMut,
    next_fid: i64,
}

fn not_started() -> StoreError {
    StoreError::Config("rows written before the schema was declared".into())
}

async fn load_current(client: &Client, id: &str) -> Result<Option<(DatasetInfo, i64)>, StoreError> {
    let row = client
        .query_opt(
            "SELECT info, gen FROM tessera.datasets WHERE id = $1",
            &[&id],
        )
        .await?;
    row.map(|r| Ok((parse_info(id, &r.get::<_, String>(0))?, r.get(1))))
        .transpose()
}

/// SQL converting a copied column from its stored type to a wider one.
fn widened(col: &str, from: FieldType, to: FieldType) -> String {
    let (a, b) = (column_type(from), column_type(to));
    match (from, b) {
        _ if a == b => col.to_owned(),
        (_, "float8") => format!("{col}::float8"),
        // Read back as the words SQLite gives.
        (FieldType::Boolean, _) => {
            format!("CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN 'true' ELSE 'false' END")
        }
        _ => format!("{col}::text"),
    }
}

impl<'c> PgWriter<'c> {
    pub(super) fn new(
        catalog: &'c PgCatalog,
        id: &DatasetId,
        mode: WriteMode,
    ) -> Result<Self, StoreError> {
        let primary = catalog.primary.clone();
        let key = id.as_str().to_owned();
        let (client, current) = catalog.bridge.run(async move {
            // A connection of its own: it holds the transaction for the whole import.
            let client = primary.connect().await?;
            // A killed importer is noticed during a long statement (an index build) too,
            // not only at its end, so its lock and table go at once (PostgreSQL 14+; older
            // servers refuse the setting, which only costs that promptness).
            let _ = client
                .batch_execute("SET client_connection_check_interval = '1s'")
                .await;
            let current = load_current(&client, &key).await?;
            Ok((client, current))
        })?;
        Ok(Self {
            catalog,
            client: Arc::new(client),
            id: id.clone(),
            mode,
            current,
            started: None,
            open: false,
        })
    }

    fn send(&mut self, last: bool) -> Result<(), StoreError> {
        let Some(started) = &mut self.started else {
            return Err(not_started());
        };
        if !last && started.buffer.len() < CHUNK {
            return Ok(());
        }
        let chunk = started.buffer.split().freeze();
        let mut sink = started.sink.take().ok_or_else(not_started)?;
        let sink = self.catalog.bridge.run(async move {
            sink.send(chunk).await?;
            Ok(sink)
        })?;
        started.sink = Some(sink);
        Ok(())
    }
}

impl DatasetWriter for PgWriter<'_> {
    fn base(&self) -> Option<&DatasetInfo> {
        match self.mode {
            WriteMode::Append => self.current.as_ref().map(|(info, _)| info),
            WriteMode::Replace => None,
        }
    }

    fn schema(&mut self, fields: &[Field]) -> Result<(), StoreError> {
        let client = self.client.clone();
        let id = self.id.as_str().to_owned();
        let before = self.current.as_ref().map(|(_, g)| *g);
        let mode = self.mode;
        let decl: String = fields
            .iter()
            .enumerate()
            .map(|(i, f)| format!(", c{i} {}", column_type(f.ty)))
            .collect();
        let cols: String = (0..fields.len()).map(|i| format!(", c{i}")).collect();
        let new_fields = fields.to_vec();
        self.open = true;
        let (current, generation, sink, next_fid) = self.catalog.bridge.run(async move {
            client.batch_execute("BEGIN").await?;
            // Waits for an import of the same dataset to finish; others go on.
            db::lock_dataset(&client, &id).await?;
            let now = load_current(&client, &id).await?;
            if mode == WriteMode::Append && now.as_ref().map(|(_, g)| *g) != before {
                return Err(StoreError::Config(format!(
                    "`{id}` was changed by another import while this one read its input; run it again"
                )));
            }
            let generation: i64 = client
                .query_one("SELECT nextval('tessera.gen_seq')", &[])
                .await?
                .get(0);
            // Names from an integer and Tessera's own type names; no input reaches SQL text.
            client
                .batch_execute(&format!(
                    "CREATE TABLE tessera.f_{generation} (fid int8 NOT NULL, src text, minx float8, miny float8, \
                     maxx float8, maxy float8, geom geometry(Geometry, 4326), t0 int8, t1 int8{decl})"
                ))
                .await?;
            let mut next_fid = 1;
            if let (WriteMode::Append, Some((info, old))) = (mode, &now) {
                let n = info.fields.len().min(new_fields.len());
                let copied: String = (0..n).map(|i| format!(", c{i}")).collect();
                let select: String = (0..n)
                    .map(|i| format!(", {}", widened(&format!("c{i}"), info.fields[i].ty, new_fields[i].ty)))
                    .collect();
                client
                    .batch_execute(&format!(
                        "INSERT INTO tessera.f_{generation} (fid, src, minx, miny, maxx, maxy, geom, t0, t1{copied}) \
                         SELECT fid, src, minx, miny, maxx, maxy, geom, t0, t1{select} FROM tessera.f_{old} ORDER BY fid"
                    ))
                    .await?;
                next_fid = client
                    .query_one(&format!("SELECT coalesce(max(fid), 0) + 1 FROM tessera.f_{generation}"), &[])
                    .await?
                    .get(0);
            }
            let sink: CopyInSink<Bytes> = client
                .copy_in(&format!(
                    "COPY tessera.f_{generation} (fid, src, minx, miny, maxx, maxy, geom, t0, t1{cols}) FROM STDIN (FORMAT binary)"
                ))
                .await?;
            Ok((now, generation, Box::pin(sink), next_fid))
        })?;
        self.current = current;
        let mut buffer = BytesMut::with_capacity(CHUNK + 64 * 1024);
        copy::header(&mut buffer);
        self.started = Some(Started {
            generation,
            fields: fields.to_vec(),
            sink: Some(sink),
            buffer,
            next_fid,
        });
        Ok(())
    }

    fn write(&mut self, rows: &[FeatureRow]) -> Result<(), StoreError> {
        let Some(started) = &mut self.started else {
            return Err(not_started());
        };
        let columns = 9 + started.fields.len();
        for row in rows {
            let mut w = RowWriter::start(&mut started.buffer, columns);
            w.i64(Some(started.next_fid));
            started.next_fid += 1;
            w.text(row.src.as_deref());
            let b = row.geometry.as_ref().map(|g| g.bounds);
            w.f64(b.map(|b| b.min_x));
            w.f64(b.map(|b| b.min_y));
            w.f64(b.map(|b| b.max_x));
            w.f64(b.map(|b| b.max_y));
            w.geometry(row.geometry.as_ref());
            w.i64(row.time.map(|t| t.start));
            w.i64(row.time.map(|t| t.end));
            for (v, f) in row.values.iter().zip(&started.fields) {
                w.value(v, f.ty);
            }
            // A row shorter than the schema (never from the importer) is padded.
            for _ in row.values.len()..started.fields.len() {
                w.null();
            }
        }
        self.send(false)
    }

    fn commit(mut self: Box<Self>, v: NewVersion) -> Result<Committed, StoreError> {
        if let Some(started) = &mut self.started {
            copy::trailer(&mut started.buffer);
        }
        self.send(true)?;
        let Some(Started {
            generation,
            fields,
            sink,
            ..
        }) = self.started.take()
        else {
            return Err(not_started());
        };
        let mut sink = sink.ok_or_else(not_started)?;
        let client = self.client.clone();
        let id = self.id.clone();
        let old = self.current.as_ref().map(|(_, g)| *g);
        let (count, source_ids) = self.catalog.bridge.run(async move {
            sink.as_mut().finish().await?;
            let t = format!("tessera.f_{generation}");
            client
                .batch_execute(&format!(
                    "ALTER TABLE {t} ADD PRIMARY KEY (fid); CREATE INDEX ON {t} USING gist (geom);"
                ))
                .await?;
            let row = client
                .query_one(&format!("SELECT count(*), count(src) FROM {t}"), &[])
                .await?;
            let (count, with_src): (i64, i64) = (row.get(0), row.get(1));
            // Input ids become the served ids only if every row has one and they are
            // unique: the unique index both checks that and serves the lookups.
            let mut source_ids = false;
            if count > 0 && with_src == count {
                client.batch_execute("SAVEPOINT ids").await?;
                match client
                    .batch_execute(&format!("CREATE UNIQUE INDEX ON {t} (src)"))
                    .await
                {
                    Ok(()) => source_ids = true,
                    Err(_) => client.batch_execute("ROLLBACK TO SAVEPOINT ids").await?,
                }
            }
            client.batch_execute(&format!("ANALYZE {t}")).await?;
            Ok((count, source_ids))
        })?;
        let info = v.into_info(id.clone(), fields, count as u64, generation, source_ids);
        let json = serde_json::to_string(&info).map_err(|e| StoreError::Config(e.to_string()))?;
        let view = views::replace_view(&id, generation, &info.fields, source_ids);
        let client = self.client.clone();
        let stamp = self.catalog.bridge.run(async move {
            client
                .execute(
                    "INSERT INTO tessera.datasets (id, gen, version, info) VALUES ($1, $2, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET gen = excluded.gen, version = excluded.version, info = excluded.info",
                    &[&id.as_str(), &generation, &json],
                )
                .await?;
            if let Some(old) = old {
                db::retire(&client, old).await?;
            }
            if let Some(sql) = view {
                db::replace_view(&client, &id, &sql).await?;
            }
            let stamp = db::bump_stamp(&client).await?;
            client.batch_execute("COMMIT").await?;
            db::drop_retired(&client).await;
            Ok(stamp)
        })?;
        self.open = false;
        self.catalog.adopt(stamp);
        Ok(Committed {
            version: generation,
            feature_count: count as u64,
        })
    }
}

impl Drop for PgWriter<'_> {
    fn drop(&mut self) {
        if self.open {
            // The connection is closing anyway; the explicit rollback only makes the
            // server give the table and the lock back at once.
            let client = self.client.clone();
            let sink = self.started.as_mut().and_then(|s| s.sink.take());
            let _ = self.catalog.bridge.run(async move {
                drop(sink);
                if let Err(e) = client.batch_execute("ROLLBACK").await {
                    tracing::debug!(error = %describe(&e), "rollback of an unfinished import");
                }
                Ok(())
            });
        }
    }
}
