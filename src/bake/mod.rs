//! `tessera bake`: catalog datasets rendered into a PMTiles or MBTiles archive.
//!
//! The tiles are the server's: the same [`Renderer`] with layer requests parsed from the
//! same parameters as a tile URL ([`query`]), so a baked tile decompresses to the bytes
//! the server sends for that URL. A bake walks down from z0 into the children of the
//! tiles that drew something ([`plan`]), renders on every core ([`work`]) and streams
//! tiles in order into the archive ([`archive`]), identical ones stored once. The
//! archive is written to a temporary file beside the target and renamed over it only
//! when complete: a failed or interrupted bake leaves the previous file as it was.

pub mod archive;
pub mod metadata;
pub mod plan;
pub mod query;
pub mod work;

use crate::render::tilejson::PointLayout;
use crate::render::{Renderer, TileConfig};
use crate::store::{Catalog, StoreError};
use crate::tiles::TileCoord;
use archive::ArchiveWriter;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use query::Filters;

#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    #[error("{0}")]
    Dataset(String),
    #[error("bad filter `{parameter}`: {detail}")]
    Filter { parameter: String, detail: String },
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rendering failed: {0}")]
    Render(String),
    #[error("cannot write the archive: {0}")]
    Write(String),
    #[error("{}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the render workers stopped")]
    Stopped,
}

/// The archive format, from the output's extension or `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pmtiles,
    Mbtiles,
}

impl std::str::FromStr for Format {
    type Err = BakeError;
    fn from_str(s: &str) -> Result<Self, BakeError> {
        match s.to_ascii_lowercase().as_str() {
            "pmtiles" => Ok(Format::Pmtiles),
            "mbtiles" => Ok(Format::Mbtiles),
            _ => Err(BakeError::Options(format!(
                "format `{s}` is not pmtiles or mbtiles"
            ))),
        }
    }
}

impl Format {
    /// The format named by the path's extension.
    pub fn of_path(path: &Path) -> Result<Self, BakeError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        ext.parse().map_err(|_| {
            BakeError::Options(format!(
                "{}: cannot tell the format from the extension (use .pmtiles, .mbtiles or --format)",
                path.display()
            ))
        })
    }
}

/// What to bake.
#[derive(Debug, Clone)]
pub struct BakeOptions {
    /// Dataset ids, comma separated: one layer each, as in a tile URL.
    pub ids: String,
    pub filters: Filters,
    pub out: PathBuf,
    pub format: Format,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// Render threads (at least 1).
    pub threads: usize,
    /// Renderer settings; only those that shape tiles matter (buffer, cluster zoom, grid).
    pub tiles: TileConfig,
    pub gzip_level: u32,
}

/// Progress of a bake, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub zoom: u8,
    /// Tiles rendered at this zoom so far, of `total`.
    pub done: u64,
    pub total: u64,
}

/// Tiles written at one zoom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoomReport {
    pub zoom: u8,
    /// Tiles rendered (candidates), of which `tiles` held data and were written.
    pub rendered: u64,
    pub tiles: u64,
    /// Gzip bytes of this zoom's tiles, repeats counted each time.
    pub bytes: u64,
}

/// What a bake did.
#[derive(Debug, Clone, Default)]
pub struct BakeReport {
    pub zooms: Vec<ZoomReport>,
    /// Tiles written, and how many of them repeat an earlier tile's bytes (stored once).
    pub tiles: u64,
    pub duplicates: u64,
    pub file_bytes: u64,
    pub seconds: f64,
}

impl std::fmt::Display for BakeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for z in &self.zooms {
            writeln!(
                f,
                "  z{:<2} {:>9} tiles {:>12} bytes ({} rendered)",
                z.zoom, z.tiles, z.bytes, z.rendered
            )?;
        }
        let rate = self.tiles as f64 / self.seconds.max(1e-9);
        write!(
            f,
            "{} tiles ({} duplicates stored once), {} bytes, {:.2} s, {:.0} tiles/s",
            self.tiles, self.duplicates, self.file_bytes, self.seconds, rate
        )
    }
}

/// Bakes `opts` from `catalog`; the archive at `opts.out` is replaced only on success.
pub fn bake(
    catalog: &dyn Catalog,
    opts: &BakeOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BakeReport, BakeError> {
    let started = Instant::now();
    if opts.minzoom > opts.maxzoom || opts.maxzoom > 24 {
        return Err(BakeError::Options(format!(
            "zooms {}..{}: need minzoom <= maxzoom <= 24",
            opts.minzoom, opts.maxzoom
        )));
    }
    let renderer = Renderer::new(TileConfig {
        cache_bytes: 0,
        ..opts.tiles.clone()
    });
    let snap = catalog.snapshot()?;
    let query::Layers {
        datasets,
        layers,
        bbox,
    } = query::layer_requests(&*snap, &opts.ids, &opts.filters)?;
    // Build the point indexes once, here, rather than have the first workers wait on it.
    let mut points = Vec::with_capacity(datasets.len());
    for l in &layers {
        let source = renderer.point_source(&*snap, &l.dataset)?;
        points.push(source.map(|s| PointLayout::of(&s, l.property_names())));
    }
    drop(snap);
    let cluster_zooms: Vec<u8> = points.iter().flatten().map(|p| p.cluster_zoom).collect();
    let meta = metadata::metadata(&datasets, &points, &opts.filters, &bbox, opts)?;
    let dir = match opts.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let output_error = |source| BakeError::Output {
        path: opts.out.clone(),
        source,
    };
    let name = opts
        .out
        .file_name()
        .map_or("bake".into(), |n| n.to_string_lossy());
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(output_error)?;
    let wide = layers
        .iter()
        .any(|l| l.dataset.geometry_type.as_deref() != Some("Point"));
    let walk = Walk {
        catalog,
        renderer: &renderer,
        layers: &layers,
        opts,
        bbox: &bbox,
        wide,
        cluster_zooms,
    };
    let mut report = match opts.format {
        Format::Pmtiles => {
            let file = temp.as_file_mut();
            walk.run(Box::new(archive::Pmtiles::create(file, &meta)?), progress)?
        }
        Format::Mbtiles => {
            let writer = archive::Mbtiles::create(temp.path(), &meta)?;
            walk.run(Box::new(writer), progress)?
        }
    };
    // A temporary file is private (0600); an archive is for sharing: keep the mode of the
    // file it replaces, or give the usual one.
    let mode = std::fs::metadata(&opts.out).map(|m| m.permissions());
    if let Some(mode) = mode.ok().or_else(default_permissions) {
        temp.as_file().set_permissions(mode).map_err(output_error)?;
    }
    temp.as_file().sync_all().map_err(output_error)?;
    report.file_bytes = temp.as_file().metadata().map_err(output_error)?.len();
    temp.persist(&opts.out).map_err(|e| output_error(e.error))?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(unix)]
fn default_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o644))
}

/// Elsewhere the temporary file's own permissions are the usual ones.
#[cfg(not(unix))]
fn default_permissions() -> Option<std::fs::Permissions> {
    None
}

/// One bake's walk down the zooms.
struct Walk<'a> {
    catalog: &'a dyn Catalog,
    renderer: &'a Renderer,
    layers: &'a [crate::render::LayerRequest],
    opts: &'a BakeOptions,
    bbox: &'a [crate::model::Bounds],
    /// Some layer draws lines or polygons: look at the neighbours' children at every zoom.
    wide: bool,
    cluster_zooms: Vec<u8>,
}

impl Walk<'_> {
    fn run(
        &self,
        mut writer: Box<dyn ArchiveWriter + '_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BakeReport, BakeError> {
        let mut report = BakeReport::default();
        let mut seen: HashSet<u128> = HashSet::new();
        std::thread::scope(|scope| -> Result<(), BakeError> {
            let pool = work::Pool::start(
                scope,
                self.opts.threads,
                self.catalog,
                self.renderer,
                self.layers,
                self.opts.gzip_level,
            );
            let mut nonempty: Vec<TileCoord> = Vec::new();
            for z in 0..=self.opts.maxzoom {
                let wide = self.wide || self.cluster_zooms.contains(&z);
                let coords = plan::candidates(z, &nonempty, wide, self.bbox);
                if coords.is_empty() {
                    break;
                }
                let keep = z >= self.opts.minzoom;
                let mut zr = ZoomReport {
                    zoom: z,
                    rendered: coords.len() as u64,
                    ..ZoomReport::default()
                };
                let total = coords.len() as u64;
                let mut done = 0u64;
                nonempty.clear();
                pool.run(&coords, &mut |coord, tile| {
                    done += 1;
                    if done.is_multiple_of(256) || done == total {
                        progress(Progress {
                            zoom: z,
                            done,
                            total,
                        });
                    }
                    let Some(tile) = tile else { return Ok(()) };
                    nonempty.push(coord);
                    if keep {
                        zr.tiles += 1;
                        zr.bytes += tile.gz.len() as u64;
                        if !seen.insert(tile.key) {
                            report.duplicates += 1;
                        }
                        writer.add(coord, &tile.gz, tile.key)?;
                    }
                    Ok(())
                })?;
                if keep {
                    report.tiles += zr.tiles;
                    report.zooms.push(zr);
                }
            }
            Ok(())
        })?;
        writer.finish()?;
        Ok(report)
    }
}
