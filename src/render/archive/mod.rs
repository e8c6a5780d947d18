//! Tile archives served as they are stored: PMTiles (the `pmtiles` crate over a memory
//! map: the OS pages in what is read, the file is never loaded whole) and MBTiles
//! (SQLite, read-only). Tiles keep their format and stored compression: gzip goes out as
//! gzip to clients that take it and is inflated for those that do not, never gzipped twice.

mod mbtiles;
mod pmtiles;

use super::source::{
    Encoding, SourceError, SourceFuture, Tile, TileFormat, TileReply, TileRequest, TileSource,
};
use crate::model::DatasetId;
use crate::tiles::TileCoord;
use bytes::Bytes;
use std::io::Read;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use tilejson::TileJSON;

/// An archive to serve: its file and the id it is served under.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveSpec {
    pub id: String,
    pub path: PathBuf,
}

/// Why an archive could not be opened or listed; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {message}", path.display())]
    Open { path: PathBuf, message: String },
}

impl ArchiveError {
    fn open(path: &Path, message: impl std::fmt::Display) -> Self {
        ArchiveError::Open {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Every `.pmtiles` and `.mbtiles` file of `dir` (not recursive), id = file stem, sorted
/// by id so start-up logs and `/tiles` are stable.
pub fn scan_dir(dir: &Path) -> Result<Vec<ArchiveSpec>, ArchiveError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ArchiveError::open(dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| ArchiveError::open(dir, e))?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "pmtiles" | "mbtiles") || !path.is_file() {
            continue;
        }
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(ArchiveSpec { id, path });
    }
    out.sort_by(|a, b| (&a.id, &a.path).cmp(&(&b.id, &b.path)));
    Ok(out)
}

/// What both readers know once an archive is open.
#[derive(Debug)]
struct Described {
    format: TileFormat,
    /// The compression of every stored tile; `None`: per tile (MBTiles says nothing).
    stored: Option<Encoding>,
    zooms: RangeInclusive<u8>,
    bounds: Option<[f64; 4]>,
    /// The archive's own metadata as TileJSON, without tile URLs.
    tilejson: TileJSON,
}

#[derive(Debug)]
enum Reader {
    /// Boxed: the reader holds the header and root directory inline.
    Pmtiles(Box<pmtiles::PmtilesReader>),
    Mbtiles(mbtiles::MbtilesReader),
}

/// One archive file served as a tileset.
#[derive(Debug)]
pub struct ArchiveSource {
    id: String,
    path: PathBuf,
    /// File identity (size and modification time): part of every ETag, so a replaced
    /// file never answers a revalidation with 304.
    version: String,
    described: Described,
    reader: Reader,
    /// gzip level and size floor for archives that store MVT uncompressed, as for datasets.
    gzip_level: u32,
    compress_min_bytes: usize,
}

impl ArchiveSource {
    /// Opens and checks an archive (header, directory or `tiles` table, metadata).
    pub async fn open(
        spec: &ArchiveSpec,
        gzip_level: u32,
        compress_min_bytes: usize,
    ) -> Result<Self, ArchiveError> {
        let path = &spec.path;
        DatasetId::parse(&spec.id)
            .map_err(|e| ArchiveError::open(path, format!("id `{}`: {e}", spec.id)))?;
        let meta = std::fs::metadata(path).map_err(|e| ArchiveError::open(path, e))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let version = format!("{:x}-{mtime:x}", meta.len());
        let (reader, described) = match path.extension().and_then(|e| e.to_str()) {
            Some("mbtiles") => {
                let p = path.clone();
                let (r, d) = tokio::task::spawn_blocking(move || mbtiles::MbtilesReader::open(&p))
                    .await
                    .map_err(|e| ArchiveError::open(path, e))?
                    .map_err(|m| ArchiveError::open(path, m))?;
                (Reader::Mbtiles(r), d)
            }
            _ => {
                let (r, d) = pmtiles::PmtilesReader::open(path)
                    .await
                    .map_err(|m| ArchiveError::open(path, m))?;
                (Reader::Pmtiles(Box::new(r)), d)
            }
        };
        Ok(Self {
            id: spec.id.clone(),
            path: path.clone(),
            version,
            described,
            reader,
            gzip_level,
            compress_min_bytes,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> TileFormat {
        self.described.format
    }

    /// Names the archive's bytes (size and modification time): part of picture ETags.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The attribution of its metadata: printed under pictures drawn from it, and added to
    /// the styles composed on the basemap.
    pub fn attribution(&self) -> Option<&str> {
        self.described.tilejson.attribution.as_deref()
    }

    /// The title to list the archive under: its metadata name, else its id.
    pub fn title(&self) -> &str {
        self.described.tilejson.name.as_deref().unwrap_or(&self.id)
    }

    /// Stored bytes as the client can take them (see the module comment).
    fn deliver(&self, stored: Bytes, gzip: bool) -> Result<Tile, SourceError> {
        let format = self.described.format;
        let encoding = self.described.stored.unwrap_or_else(|| sniff(&stored));
        let tile = |bytes, encoding| Tile {
            bytes,
            format,
            encoding,
        };
        Ok(match (encoding, gzip) {
            (Encoding::Gzip, true) => tile(stored, Encoding::Gzip),
            (Encoding::Gzip, false) => {
                let mut out = Vec::with_capacity(stored.len() * 4);
                flate2::read::GzDecoder::new(&stored[..])
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        SourceError::Read(format!("{}: a tile does not inflate: {e}", self.id))
                    })?;
                tile(Bytes::from(out), Encoding::Identity)
            }
            (Encoding::Identity, true)
                if format == TileFormat::Mvt
                    && self.gzip_level > 0
                    && stored.len() >= self.compress_min_bytes =>
            {
                let gz = super::catalog::gzip_bytes(&stored, self.gzip_level)
                    .map_err(|e| SourceError::Read(e.to_string()))?;
                tile(Bytes::from(gz), Encoding::Gzip)
            }
            (Encoding::Identity, _) => tile(stored, Encoding::Identity),
        })
    }

    async fn read(&self, req: TileRequest<'_>) -> Result<TileReply, SourceError> {
        let coord = req.coord;
        let stored = match &self.reader {
            Reader::Pmtiles(r) => r.tile(coord).await,
            Reader::Mbtiles(r) => r.tile(coord).await,
        }
        .map_err(|m| SourceError::Read(format!("{}: {m}", self.path.display())))?;
        let tile = stored.map(|b| self.deliver(b, req.gzip)).transpose()?;
        // Named by what is sent: a stored-gzip tile differs from its inflated form.
        let coding = match &tile {
            Some(t) if t.encoding == Encoding::Gzip => "gz",
            _ => "raw",
        };
        let key = format!("archive:{}@{}|{coord}|{coding}", self.id, self.version);
        Ok(TileReply { key, tile })
    }

    fn describe(&self, base: &str) -> TileJSON {
        let mut tj = self.described.tilejson.clone();
        let ext = self.described.format.name();
        let ext = if ext == "pbf" { "mvt" } else { ext };
        tj.tiles = vec![format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.{ext}", self.id)];
        tj
    }
}

/// gzip's magic number; MBTiles does not record the compression, tiles show it.
fn sniff(bytes: &[u8]) -> Encoding {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

impl TileSource for ArchiveSource {
    fn tilejson<'a>(&'a self, base: &'a str, query: Option<&'a str>) -> SourceFuture<'a, TileJSON> {
        Box::pin(async move {
            // Archives take no filters: a parameter is a mistake worth naming.
            if let Some((k, _)) = first_param(query) {
                return Err(SourceError::BadParam {
                    message: format!("unknown parameter `{k}`: archive `{}` takes none", self.id),
                    param: k,
                });
            }
            Ok(self.describe(base))
        })
    }

    fn tile<'a>(&'a self, req: TileRequest<'a>) -> SourceFuture<'a, TileReply> {
        Box::pin(async move {
            if let Some((k, _)) = first_param(req.query) {
                return Err(SourceError::BadParam {
                    message: format!("unknown parameter `{k}`: archive `{}` takes none", self.id),
                    param: k,
                });
            }
            self.read(req).await
        })
    }

    fn format(&self) -> TileFormat {
        self.described.format
    }

    fn zooms(&self) -> RangeInclusive<u8> {
        self.described.zooms.clone()
    }

    fn bounds(&self) -> Option<[f64; 4]> {
        self.described.bounds
    }
}

/// The first query parameter other than `v` (cache busting, which clients may add).
fn first_param(query: Option<&str>) -> Option<(String, String)> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or("")).ok()?;
    pairs.into_iter().find(|(k, _)| k != "v")
}

/// Bounds that cover nothing useful (or are not finite) mean "anywhere".
fn usable_bounds(b: [f64; 4]) -> Option<[f64; 4]> {
    (b.iter().all(|v| v.is_finite()) && b[0] < b[2] && b[1] < b[3]).then_some(b)
}

/// For the coordinate of a tile in an archive whose rows are TMS (y from the south).
fn tms_row(coord: TileCoord) -> u32 {
    (1u32 << coord.z()) - 1 - coord.y()
}

/// Opens every archive; those that fail (or repeat an id) come back as errors, in order.
pub async fn open_all(
    specs: &[ArchiveSpec],
    gzip_level: u32,
    compress_min_bytes: usize,
) -> (
    std::collections::BTreeMap<String, std::sync::Arc<ArchiveSource>>,
    Vec<ArchiveError>,
) {
    let mut open = std::collections::BTreeMap::new();
    let mut failed = Vec::new();
    for spec in specs {
        if let Some(first) = open
            .get(&spec.id)
            .map(|a: &std::sync::Arc<ArchiveSource>| a.path())
        {
            failed.push(ArchiveError::open(
                &spec.path,
                format!(
                    "id `{}` is already served from {}",
                    spec.id,
                    first.display()
                ),
            ));
            continue;
        }
        match ArchiveSource::open(spec, gzip_level, compress_min_bytes).await {
            Ok(a) => {
                open.insert(spec.id.clone(), std::sync::Arc::new(a));
            }
            Err(e) => failed.push(e),
        }
    }
    (open, failed)
}
