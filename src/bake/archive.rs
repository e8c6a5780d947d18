//! The two archive formats a bake writes. Both take tiles one at a time in the order they
//! are baked (zoom by zoom, Hilbert order within a zoom: PMTiles' clustered order) and
//! never hold more than one in memory; both store a repeated tile once.

use super::BakeError;
use crate::tiles::TileCoord;
use std::fs::File;
use std::path::Path;

/// Archive-level metadata: the TileJSON document and the fields the formats keep apart.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// TileJSON 3.0 of the baked tiles (no `tiles` URLs: an archive has no address yet).
    pub tilejson: serde_json::Value,
    pub name: String,
    pub description: String,
    pub attribution: String,
    /// west, south, east, north
    pub bounds: [f64; 4],
    /// longitude, latitude, zoom
    pub center: (f64, f64, u8),
    pub minzoom: u8,
    pub maxzoom: u8,
}

/// A tile archive being written.
pub trait ArchiveWriter {
    /// Adds a gzip-compressed MVT tile; `key` is a hash of `gz`: equal keys, equal bytes.
    fn add(&mut self, coord: TileCoord, gz: &[u8], key: u128) -> Result<(), BakeError>;
    /// Writes directories and metadata and flushes everything to disk.
    fn finish(self: Box<Self>) -> Result<(), BakeError>;
}

/// PMTiles v3 through the `pmtiles` crate's streaming writer: tile data goes straight to
/// the file; it keeps one 24-byte directory entry per run of tiles and the offset of each
/// distinct content, and writes identical consecutive tiles as one run.
pub struct Pmtiles<'f> {
    writer: pmtiles::PmTilesStreamWriter<&'f mut File, pmtiles::CallerKey<u128>>,
}

impl std::fmt::Debug for Pmtiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pmtiles")
    }
}

impl<'f> Pmtiles<'f> {
    pub fn create(file: &'f mut File, meta: &Metadata) -> Result<Self, BakeError> {
        let [w, s, e, n] = meta.bounds;
        let writer = pmtiles::PmTilesWriter::new(pmtiles::TileType::Mvt)
            .precompressed(pmtiles::Compression::Gzip)
            .internal_compression(pmtiles::Compression::Gzip)
            .dedup_by_key::<u128>()
            .min_zoom(meta.minzoom)
            .max_zoom(meta.maxzoom)
            .bounds(w, s, e, n)
            .center(meta.center.0, meta.center.1)
            .center_zoom(meta.center.2)
            .metadata(meta.tilejson.to_string())
            .create(file)
            .map_err(pmtiles_error)?;
        Ok(Self { writer })
    }
}

fn pmtiles_error(e: pmtiles::PmtError) -> BakeError {
    BakeError::Write(e.to_string())
}

impl ArchiveWriter for Pmtiles<'_> {
    fn add(&mut self, coord: TileCoord, gz: &[u8], key: u128) -> Result<(), BakeError> {
        let c = pmtiles::TileCoord::new(coord.z(), coord.x(), coord.y()).map_err(pmtiles_error)?;
        self.writer
            .add_tile(c, gz, Some(key))
            .map_err(pmtiles_error)
    }

    fn finish(self: Box<Self>) -> Result<(), BakeError> {
        self.writer.finalize().map_err(pmtiles_error)
    }
}

/// MBTiles 1.3 through SQLite, in the deduplicating layout the spec allows: tile
/// contents in `images` keyed by their hash, positions in `map`, and `tiles` a view.
#[derive(Debug)]
pub struct Mbtiles {
    conn: rusqlite::Connection,
}

const MBTILES_SCHEMA: &str = "
CREATE TABLE metadata (name TEXT NOT NULL, value TEXT);
CREATE UNIQUE INDEX metadata_name ON metadata (name);
CREATE TABLE map (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL,
                  tile_row INTEGER NOT NULL, tile_id TEXT NOT NULL);
CREATE UNIQUE INDEX map_index ON map (zoom_level, tile_column, tile_row);
CREATE TABLE images (tile_id TEXT NOT NULL, tile_data BLOB NOT NULL);
CREATE UNIQUE INDEX images_id ON images (tile_id);
CREATE VIEW tiles AS
  SELECT map.zoom_level AS zoom_level, map.tile_column AS tile_column,
         map.tile_row AS tile_row, images.tile_data AS tile_data
  FROM map JOIN images ON images.tile_id = map.tile_id;
";

fn sql_error(e: rusqlite::Error) -> BakeError {
    BakeError::Write(e.to_string())
}

impl Mbtiles {
    /// Opens the (empty) file at `path` as a new MBTiles database with its metadata.
    pub fn create(path: &Path, meta: &Metadata) -> Result<Self, BakeError> {
        let conn = rusqlite::Connection::open(path).map_err(sql_error)?;
        // The file is a temporary one until the bake succeeds: no journal is needed, and
        // the caller syncs the file before renaming it into place.
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;",
        )
        .map_err(sql_error)?;
        conn.execute_batch(MBTILES_SCHEMA).map_err(sql_error)?;
        conn.execute_batch("BEGIN").map_err(sql_error)?;
        let [w, s, e, n] = meta.bounds;
        let json = serde_json::json!({"vector_layers": meta.tilejson["vector_layers"], "tilejson": meta.tilejson});
        let rows: [(&str, String); 10] = [
            ("name", meta.name.clone()),
            ("format", "pbf".into()),
            ("type", "overlay".into()),
            ("version", "1".into()),
            ("description", meta.description.clone()),
            ("attribution", meta.attribution.clone()),
            ("bounds", format!("{w},{s},{e},{n}")),
            (
                "center",
                format!("{},{},{}", meta.center.0, meta.center.1, meta.center.2),
            ),
            ("minzoom", meta.minzoom.to_string()),
            ("maxzoom", meta.maxzoom.to_string()),
        ];
        {
            let mut stmt = conn
                .prepare("INSERT INTO metadata (name, value) VALUES (?1, ?2)")
                .map_err(sql_error)?;
            for (k, v) in rows.iter().chain([("json", json.to_string())].iter()) {
                stmt.execute((k, v)).map_err(sql_error)?;
            }
        }
        Ok(Self { conn })
    }
}

impl ArchiveWriter for Mbtiles {
    fn add(&mut self, coord: TileCoord, gz: &[u8], key: u128) -> Result<(), BakeError> {
        let id = format!("{key:032x}");
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO images (tile_id, tile_data) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute((&id, gz)))
            .map_err(sql_error)?;
        // MBTiles rows count from the south (TMS).
        let row = (1u32 << coord.z()) - 1 - coord.y();
        self.conn
            .prepare_cached(
                "INSERT INTO map (zoom_level, tile_column, tile_row, tile_id) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute((coord.z(), coord.x(), row, &id)))
            .map_err(sql_error)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), BakeError> {
        self.conn.execute_batch("COMMIT").map_err(sql_error)?;
        self.conn.close().map_err(|(_, e)| sql_error(e))
    }
}
