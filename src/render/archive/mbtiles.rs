//! MBTiles 1.3 through rusqlite, read-only: rows are TMS (y counted from the south), the
//! `metadata` table (and its `json` row's `vector_layers`) becomes TileJSON.

use super::{Described, tms_row, usable_bounds};
use crate::render::source::TileFormat;
use crate::tiles::TileCoord;
use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tilejson::{Bounds, Center};

/// Connections are not shareable between threads; a small pool lets blocking reads run
/// in parallel (one connection per concurrent reader, kept for the next).
pub(super) struct MbtilesReader {
    path: PathBuf,
    pool: std::sync::Arc<Mutex<Vec<Connection>>>,
}

impl std::fmt::Debug for MbtilesReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbtilesReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn connect(path: &Path) -> Result<Connection, String> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())
}

const TILE_SQL: &str =
    "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3";

impl MbtilesReader {
    pub(super) fn open(path: &Path) -> Result<(Self, Described), String> {
        let conn = connect(path)?;
        let sqlite = |e: rusqlite::Error| format!("not a readable MBTiles (SQLite) file: {e}");
        let has = |name: &str| -> Result<bool, String> {
            conn.query_row(
                "SELECT 1 FROM sqlite_master WHERE name = ?1 AND type IN ('table', 'view')",
                [name],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(sqlite)
        };
        if !has("tiles")? {
            return Err("no `tiles` table: not an MBTiles file".into());
        }
        // Prepared once here so that a `tiles` without the MBTiles columns fails at start.
        conn.prepare(TILE_SQL)
            .map_err(|e| format!("`tiles` is not an MBTiles tiles table: {e}"))?;
        let meta: HashMap<String, String> = if has("metadata")? {
            let mut stmt = conn
                .prepare("SELECT name, value FROM metadata")
                .map_err(sqlite)?;
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sqlite)?
                .collect::<Result<_, _>>()
                .map_err(sqlite)?
        } else {
            HashMap::new()
        };
        let described = describe(&conn, &meta)?;
        let reader = Self {
            path: path.to_owned(),
            pool: std::sync::Arc::new(Mutex::new(vec![conn])),
        };
        Ok((reader, described))
    }

    pub(super) async fn tile(&self, coord: TileCoord) -> Result<Option<Bytes>, String> {
        let (pool, path) = (self.pool.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let taken = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match taken {
                Some(c) => c,
                None => connect(&path)?,
            };
            let row = conn
                .prepare_cached(TILE_SQL)
                .and_then(|mut s| {
                    s.query_row(params![coord.z(), coord.x(), tms_row(coord)], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .optional()
                })
                .map_err(|e| e.to_string());
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            Ok(row?.map(Bytes::from))
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// What the metadata says, with what it leaves out read from the tiles themselves.
fn describe(conn: &Connection, meta: &HashMap<String, String>) -> Result<Described, String> {
    let sqlite = |e: rusqlite::Error| e.to_string();
    let format = match meta.get("format") {
        Some(f) => TileFormat::from_name(f)
            .ok_or_else(|| format!("metadata format `{f}` is not served (pbf, png, jpg, webp)"))?,
        None => {
            let first: Option<Vec<u8>> = conn
                .query_row("SELECT tile_data FROM tiles LIMIT 1", [], |r| r.get(0))
                .optional()
                .map_err(sqlite)?;
            first
                .as_deref()
                .and_then(sniff_format)
                .unwrap_or(TileFormat::Mvt)
        }
    };
    let zoom = |k: &str| meta.get(k).and_then(|v| v.trim().parse::<u8>().ok());
    let zooms = match (zoom("minzoom"), zoom("maxzoom")) {
        (Some(a), Some(b)) if a <= b => a..=b,
        _ => {
            let (a, b): (Option<u8>, Option<u8>) = conn
                .query_row(
                    "SELECT min(zoom_level), max(zoom_level) FROM tiles",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sqlite)?;
            a.unwrap_or(0)..=b.unwrap_or(0)
        }
    };
    let numbers = |k: &str| -> Option<Vec<f64>> {
        meta.get(k)?
            .split(',')
            .map(|v| v.trim().parse::<f64>().ok())
            .collect()
    };
    let bounds = numbers("bounds")
        .and_then(|b| <[f64; 4]>::try_from(b).ok())
        .and_then(usable_bounds);
    let mut tj = tilejson::tilejson! { tiles: vec![] };
    tj.minzoom = Some(*zooms.start());
    tj.maxzoom = Some(*zooms.end());
    if let Some(b) = bounds {
        tj.bounds = Some(Bounds::new(b[0], b[1], b[2], b[3]));
    }
    if let Some([x, y, z]) = numbers("center").and_then(|c| <[f64; 3]>::try_from(c).ok()) {
        tj.center = Some(Center::new(x, y, z.clamp(0.0, 30.0) as u8));
    }
    for (k, slot) in [
        ("name", &mut tj.name),
        ("description", &mut tj.description),
        ("attribution", &mut tj.attribution),
        ("version", &mut tj.version),
    ] {
        *slot = meta.get(k).cloned();
    }
    if let Some(json) = meta.get("json") {
        super::pmtiles::merge_metadata(&mut tj, json).map_err(|e| format!("`json` row: {e}"))?;
    }
    Ok(Described {
        format,
        stored: None,
        zooms,
        bounds,
        tilejson: tj,
    })
}

/// A tile's format from its first bytes (for MBTiles without `format` metadata).
fn sniff_format(b: &[u8]) -> Option<TileFormat> {
    if b.starts_with(b"\x89PNG") {
        Some(TileFormat::Png)
    } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(TileFormat::Jpeg)
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some(TileFormat::Webp)
    } else {
        None
    }
}
