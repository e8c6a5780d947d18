//! The command line: what a user types, turned into calls on the library.

use crate::config;
use crate::import::{self, ImportError, ImportReport, ImportRequest, Progress};
use crate::ingest::{Encoding, IngestOptions};
use crate::model::time::{format_utc, parse_zone};
use crate::model::{DatasetId, DatasetKind, DatasetMeta};
use crate::store::Catalog;
use crate::store::DbLocation;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Map tiles and OGC API - Features for open government data"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the catalog over HTTP (with no arguments: the demo datasets of `data/`).
    Serve(ServeArgs),
    /// Import files into a dataset (replacing it atomically unless --append).
    Import(Box<ImportArgs>),
    /// List the datasets of a catalog.
    Datasets(DbArg),
    /// Print a tile as decoded text (layers, features, geometry in tile units, properties).
    Tile(TileArgs),
    /// Bake datasets into a PMTiles or MBTiles archive (the server's tiles, filtered as in `/items`).
    Bake(Box<BakeArgs>),
    /// Build the offline basemap archive (PMTiles) from map data and a recipe.
    Basemap(BasemapArgs),
    /// Delete a dataset.
    Delete {
        id: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Args)]
pub struct DbArg {
    /// Catalog: a SQLite file (created if missing) or a `postgresql://` URL.
    #[arg(long, env = "TESSERA_DB", default_value = "tessera.db")]
    pub db: DbLocation,
}

impl DbArg {
    /// Opens the catalog (no read replicas).
    pub fn open(&self) -> Result<Box<dyn Catalog>, crate::store::StoreError> {
        crate::store::open(&self.db, &[])
    }
}

#[derive(Debug, Args)]
pub struct TileArgs {
    /// Dataset id, or several separated by commas (one layer each).
    pub ids: String,
    /// The tile, as Z/X/Y.
    pub tile: String,
    /// Filters as in a tile URL's query, e.g. `datetime=2018-12&Crime type=Burglary`.
    #[arg(long, default_value = "")]
    pub filter: String,
    #[command(flatten)]
    pub db: DbArg,
}

impl TileArgs {
    /// Renders the tile with default settings and describes it; `None` for an empty tile.
    pub fn run(&self) -> Result<Option<String>, String> {
        let parts: Vec<&str> = self.tile.split('/').collect();
        let [z, x, y] = parts.as_slice() else {
            return Err(format!("tile `{}` is not Z/X/Y", self.tile));
        };
        // Each message names the parameter at fault, as the 400 of a tile URL would.
        let detail = |e: crate::query::QueryError| e.to_string();
        let coord = crate::query::parse_coord(z, x, y).map_err(detail)?;
        let catalog = self.db.open().map_err(|e| e.to_string())?;
        let snap = catalog.snapshot().map_err(|e| e.to_string())?;
        let datasets = crate::query::load_datasets(&*snap, &self.ids).map_err(detail)?;
        // Filters are written as in a URL, but spaces in names may be typed as they are.
        let query = self.filter.replace(' ', "%20");
        let layers =
            crate::query::layer_requests(Some(&*snap), &datasets, Some(&query)).map_err(detail)?;
        let renderer = crate::render::Renderer::new(crate::render::TileConfig::default());
        match renderer
            .render(&*snap, &layers, coord)
            .map_err(|e| e.to_string())?
        {
            None => Ok(None),
            Some(bytes) => crate::render::text::describe(&bytes).map(Some),
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// A PostgreSQL read replica for reads (repeatable); the `--db` primary takes writes
    /// and version checks, and the reads when every replica is down.
    #[arg(long = "db-read", env = "TESSERA_DB_READ", value_delimiter = ',')]
    pub db_read: Vec<String>,
    /// Address to listen on.
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Manifest of datasets to build or refresh on start (default: data/tessera.toml when present).
    #[arg(long, env = "TESSERA_MANIFEST")]
    pub manifest: Option<PathBuf>,
    /// Skip the manifest even if data/tessera.toml exists.
    #[arg(long)]
    pub no_manifest: bool,
    /// Base URL clients reach this server at (for absolute links behind a proxy).
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Who may show the map pages in a frame (CSP frame-ancestors), e.g. `'self' https://portal.example.org`.
    #[arg(long, env = "TESSERA_FRAME_ANCESTORS", default_value = "*")]
    pub frame_ancestors: String,
    /// Tile buffer in tile units (of 4096 per tile side) that clipped shapes may reach.
    #[arg(long, env = "TESSERA_TILE_BUFFER", default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub tile_buffer: u32,
    /// Memory for cached tiles, in MiB (0 turns the tile cache off).
    #[arg(long, env = "TESSERA_TILE_CACHE_MB", default_value_t = 64)]
    pub tile_cache_mb: usize,
    /// Cache-Control header of tiles.
    #[arg(
        long,
        env = "TESSERA_TILE_CACHE_CONTROL",
        default_value = "public, max-age=300"
    )]
    pub tile_cache_control: String,
    /// Responses smaller than this many bytes are sent uncompressed, tiles included.
    #[arg(long, env = "TESSERA_COMPRESS_MIN_BYTES", default_value_t = crate::http::DEFAULT_COMPRESS_MIN_BYTES)]
    pub compress_min_bytes: u16,
    /// gzip level of tiles, 0-9 (0: leave compression to the general layer).
    #[arg(long, env = "TESSERA_TILE_GZIP_LEVEL", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub tile_gzip_level: u32,
    /// Zoom from which points are drawn one by one (default: chosen per dataset from its density).
    #[arg(long, env = "TESSERA_CLUSTER_ZOOM", value_parser = clap::value_parser!(u8).range(0..=24))]
    pub cluster_zoom: Option<u8>,
    #[command(flatten)]
    pub lanes: crate::http::lanes::LaneArgs,
    /// A folder of tile archives: every .pmtiles and .mbtiles file in it is served under
    /// /tiles/{file stem}. Repeatable.
    #[arg(long = "tiles", value_name = "DIR")]
    pub tiles: Vec<PathBuf>,
    /// The basemap under every map: `none`, a .pmtiles/.mbtiles archive in the basemap
    /// schema (default: `basemap/basemap.pmtiles` beside the manifest, when present), or a
    /// MapLibre style (`https://…/style.json` or a local .json file) that the browser loads.
    #[arg(long, env = "TESSERA_BASEMAP", value_name = "none|PATH|STYLE")]
    pub basemap: Option<String>,
}

/// The archive id the basemap is served under (`/tiles/basemap`), which styles refer to.
pub const BASEMAP_ID: &str = "basemap";

impl ServeArgs {
    /// The archives to serve: those of every `--tiles` folder, then the manifest's.
    pub fn archives(
        &self,
        manifest: Option<&Path>,
    ) -> Result<Vec<crate::render::archive::ArchiveSpec>, String> {
        let mut out = Vec::new();
        for dir in &self.tiles {
            out.extend(crate::render::archive::scan_dir(dir).map_err(|e| format!("--tiles {e}"))?);
        }
        if let Some(m) = manifest {
            out.extend(config::load_archives(m).map_err(|e| e.to_string())?);
        }
        if let Some(path) = self.basemap_path(manifest)? {
            // An explicit or default basemap replaces an archive of the same id.
            out.retain(|a| a.id != BASEMAP_ID);
            out.push(crate::render::archive::ArchiveSpec {
                id: BASEMAP_ID.into(),
                path,
            });
        }
        Ok(out)
    }

    /// The basemap archive to serve, if any; a bad `--basemap` is a start-up error (a map
    /// silently without its basemap would be worse).
    fn basemap_path(&self, manifest: Option<&Path>) -> Result<Option<PathBuf>, String> {
        match self.basemap.as_deref() {
            Some("none") => Ok(None),
            // A style (URL or .json file) is drawn by the browser: no archive to serve.
            Some(v) if config::BasemapStyle::from_flag(v)?.is_some() => Ok(None),
            Some(p) => {
                let path = PathBuf::from(p);
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if !matches!(ext, "pmtiles" | "mbtiles") {
                    return Err(format!(
                        "--basemap `{p}` is not a .pmtiles or .mbtiles file, a style (URL or .json), nor `none`"
                    ));
                }
                if !path.is_file() {
                    return Err(format!("--basemap `{p}`: no such file"));
                }
                Ok(Some(path))
            }
            None => Ok(manifest
                .and_then(Path::parent)
                .map(|dir| dir.join("basemap/basemap.pmtiles"))
                .filter(|p| p.is_file())),
        }
    }

    /// The basemap style of `--basemap`, when it names one (then no archive is served).
    pub fn basemap_style(&self) -> Result<Option<config::BasemapStyle>, String> {
        self.basemap
            .as_deref()
            .map_or(Ok(None), config::BasemapStyle::from_flag)
    }

    pub fn tile_config(&self) -> crate::render::TileConfig {
        crate::render::TileConfig {
            buffer: self.tile_buffer,
            cache_bytes: self.tile_cache_mb << 20,
            cache_control: self.tile_cache_control.clone(),
            gzip_level: self.tile_gzip_level,
            cluster_zoom: self.cluster_zoom,
            ..crate::render::TileConfig::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV (.csv, .csv.gz) or GeoJSON (FeatureCollection, newline-delimited, RFC 8142) files of one schema.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long)]
    pub dataset: String,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long, default_value = "")]
    pub description: String,
    #[arg(long, default_value = "")]
    pub attribution: String,
    #[arg(long, default_value = "")]
    pub licence: String,
    #[arg(long, default_value = "")]
    pub source: String,
    /// incidents, events, inspections, boundaries or lines.
    #[arg(long, default_value = "incidents")]
    pub kind: String,
    /// Field that colours points and splits clusters.
    #[arg(long)]
    pub category: Option<String>,
    /// Column with the feature time (default: a column named like a date, if its values parse).
    #[arg(long)]
    pub time: Option<String>,
    /// Column with the end time, for events that last.
    #[arg(long)]
    pub time_end: Option<String>,
    /// IANA zone for date-times written without an offset.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    #[arg(long)]
    pub lon: Option<String>,
    #[arg(long)]
    pub lat: Option<String>,
    /// Column holding WKT points.
    #[arg(long)]
    pub wkt: Option<String>,
    /// utf-8, latin1 or auto (UTF-8 with a Latin-1 fallback per field).
    #[arg(long, default_value = "auto")]
    pub encoding: String,
    /// Column with the input's own feature id.
    #[arg(long)]
    pub id_column: Option<String>,
    /// Add to the dataset instead of replacing it.
    #[arg(long)]
    pub append: bool,
    /// Unreadable rows to skip before giving up (the previous data then stays).
    #[arg(long, default_value_t = 0)]
    pub max_errors: u64,
}

impl ImportArgs {
    pub fn request(&self) -> Result<ImportRequest, String> {
        let id = DatasetId::parse(&self.dataset)?;
        let kind: DatasetKind =
            serde_json::from_value(serde_json::Value::String(self.kind.clone())).map_err(|_| {
                format!(
                    "--kind `{}` is not one of incidents, events, inspections, boundaries, lines",
                    self.kind
                )
            })?;
        Ok(ImportRequest {
            meta: DatasetMeta {
                title: self.title.clone().unwrap_or_else(|| id.to_string()),
                description: self.description.clone(),
                attribution: self.attribution.clone(),
                licence: self.licence.clone(),
                source: self.source.clone(),
                kind,
                category: self.category.clone(),
                end_time: self.time_end.clone(),
                fingerprint: None,
                ..DatasetMeta::default()
            },
            id,
            files: self.files.clone(),
            options: IngestOptions {
                lon: self.lon.clone(),
                lat: self.lat.clone(),
                wkt: self.wkt.clone(),
                encoding: self.encoding.parse::<Encoding>()?,
                id_column: self.id_column.clone(),
            },
            time: self.time.clone(),
            time_end: self.time_end.clone(),
            timezone: parse_zone(&self.timezone)?,
            append: self.append,
            max_errors: self.max_errors,
        })
    }
}

/// Imports with a progress display on a terminal and returns the report.
pub fn import_with_progress(
    catalog: &dyn Catalog,
    req: &ImportRequest,
) -> Result<ImportReport, ImportError> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{elapsed}] {human_pos} rows ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(req.id.to_string());
    let mut last = 0;
    let mut on_progress = |p: &Progress| {
        bar.inc(p.rows.saturating_sub(last));
        last = p.rows;
        if p.rows < last {
            last = 0;
        }
    };
    let report = import::run(catalog, req, &mut on_progress);
    bar.finish_and_clear();
    report
}

/// The human-readable end-of-import summary.
pub fn describe_report(id: &DatasetId, r: &ImportReport) -> String {
    let mut out = format!(
        "{id}: read {} rows, imported {} in {:.2} s ({:.0} rows/s), version {}\n",
        r.rows_read,
        r.imported,
        r.seconds,
        r.rows_per_second(),
        r.version
    );
    let no_geom: u64 = r.without_geometry.iter().map(|(_, n)| n).sum();
    if no_geom > 0 {
        let reasons: Vec<String> = r
            .without_geometry
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        out.push_str(&format!(
            "  kept without geometry: {no_geom} ({})\n",
            reasons.join(", ")
        ));
    }
    match &r.time_column {
        Some(c) => out.push_str(&format!(
            "  time from `{c}`; unparseable: {}\n",
            r.time_unparsed
        )),
        None => out.push_str("  no time column\n"),
    }
    if r.errors > 0 {
        out.push_str(&format!("  skipped {} unreadable rows:\n", r.errors));
        for e in &r.error_samples {
            out.push_str(&format!("    {e}\n"));
        }
    }
    for n in &r.notes {
        out.push_str(&format!("  {n}\n"));
    }
    out
}

/// Imports every manifest dataset whose files or entry changed since the catalog last saw them.
pub fn refresh_from_manifest(catalog: &dyn Catalog, manifest: &Path) -> Result<(), String> {
    let requests = config::load_manifest(manifest).map_err(|e| e.to_string())?;
    let snapshot = catalog.snapshot().map_err(|e| e.to_string())?;
    let mut stale = Vec::new();
    for req in requests {
        let current = snapshot.dataset(&req.id).map_err(|e| e.to_string())?;
        if current.is_none_or(|c| c.meta.fingerprint != req.meta.fingerprint) {
            stale.push(req);
        }
    }
    drop(snapshot);
    for req in stale {
        tracing::info!(dataset = %req.id, "importing from the manifest");
        let report = import_with_progress(catalog, &req).map_err(|e| format!("{}: {e}", req.id))?;
        eprint!("{}", describe_report(&req.id, &report));
    }
    Ok(())
}

/// One line per dataset for `tessera datasets`.
pub fn list_datasets(db: &DbLocation) -> Result<String, crate::store::StoreError> {
    let catalog = crate::store::open(db, &[])?;
    let snap = catalog.snapshot()?;
    let mut out = String::new();
    for d in snap.datasets()? {
        let time = d.time_extent.map_or("-".into(), |t| {
            format!("{} .. {}", format_utc(t.start), format_utc(t.end))
        });
        out.push_str(&format!(
            "{}\t{}\t{} features ({} without geometry)\t{}\t{}\n",
            d.id,
            d.geometry_type.as_deref().unwrap_or("none"),
            d.feature_count,
            d.without_geometry_total(),
            time,
            d.meta.title
        ));
    }
    Ok(out)
}

#[derive(Debug, Args)]
pub struct BakeArgs {
    /// Dataset id, or several separated by commas (one layer each).
    pub ids: String,
    #[command(flatten)]
    pub db: DbArg,
    /// The archive to write (replaced only when the bake succeeds).
    #[arg(long)]
    pub out: PathBuf,
    /// pmtiles or mbtiles (default: from the extension of --out).
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub minzoom: u8,
    #[arg(long, default_value_t = 14)]
    pub maxzoom: u8,
    /// Only tiles and features in this box, `minx,miny,maxx,maxy`, as `bbox=` in `/items`.
    #[arg(long, allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// As `datetime=` in `/items` and tile URLs (e.g. `2025-02`).
    #[arg(long)]
    pub datetime: Option<String>,
    /// `field=value`, as in a tile URL (a category filter, say); repeat for more.
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    pub filters: Vec<String>,
    /// Render threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// gzip level of the stored tiles, 1-9.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub gzip_level: u32,
    /// As `tessera serve --tile-buffer`: must match the server's for equal tiles.
    #[arg(long, env = "TESSERA_TILE_BUFFER", default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub tile_buffer: u32,
    /// As `tessera serve --cluster-zoom`.
    #[arg(long, env = "TESSERA_CLUSTER_ZOOM", value_parser = clap::value_parser!(u8).range(0..=24))]
    pub cluster_zoom: Option<u8>,
}

impl BakeArgs {
    pub fn options(&self) -> Result<crate::bake::BakeOptions, String> {
        let mut equals = Vec::new();
        for f in &self.filters {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| format!("--where `{f}` is not FIELD=VALUE"))?;
            equals.push((k.to_owned(), v.to_owned()));
        }
        let format = match &self.format {
            Some(f) => f.parse(),
            None => crate::bake::Format::of_path(&self.out),
        }
        .map_err(|e| e.to_string())?;
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        Ok(crate::bake::BakeOptions {
            ids: self.ids.clone(),
            filters: crate::bake::Filters {
                datetime: self.datetime.clone(),
                equals,
                bbox: self.bbox.clone(),
            },
            out: self.out.clone(),
            format,
            minzoom: self.minzoom,
            maxzoom: self.maxzoom,
            threads: threads.max(1),
            tiles: crate::render::TileConfig {
                buffer: self.tile_buffer,
                cluster_zoom: self.cluster_zoom,
                ..crate::render::TileConfig::default()
            },
            gzip_level: self.gzip_level,
        })
    }

    /// Bakes with a progress bar on a terminal; the report as text.
    pub fn run(&self) -> Result<String, String> {
        let opts = self.options()?;
        if !self.db.db.exists() {
            return Err(format!("no catalog at {}", self.db.db));
        }
        let catalog = self.db.open().map_err(|e| e.to_string())?;
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{elapsed}] {bar:30} {human_pos}/{human_len} tiles ({per_sec})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut zoom = u8::MAX;
        let report = crate::bake::bake(&catalog, &opts, &mut |p| {
            if p.zoom != zoom {
                zoom = p.zoom;
                bar.reset();
                bar.set_length(p.total);
                bar.set_message(format!("z{}", p.zoom));
            }
            bar.set_position(p.done);
        });
        bar.finish_and_clear();
        let report = report.map_err(|e| format!("bake of `{}` failed: {e}", self.ids))?;
        Ok(format!("{}: {}\n{report}\n", opts.out.display(), self.ids))
    }
}

#[derive(Debug, Args)]
pub struct BasemapArgs {
    /// Folders the recipe's source paths are relative to, searched in order (the shared
    /// map data, then what data/basemap/prepare.sh converted). Repeatable.
    #[arg(long, default_values = ["../shared/data/basemap", "target/basemap-prepared"])]
    pub from: Vec<PathBuf>,
    /// Which file feeds which layer, kind and zooms.
    #[arg(long, default_value = "data/basemap/recipe.toml")]
    pub recipe: PathBuf,
    /// The PMTiles archive to write (replaced only when the build succeeds).
    #[arg(long, default_value = "data/basemap/basemap.pmtiles")]
    pub out: PathBuf,
}

impl BasemapArgs {
    pub fn run(&self) -> Result<String, String> {
        let report = crate::basemap::build(&self.recipe, &self.from, &self.out)
            .map_err(|e| format!("basemap build failed: {e}"))?;
        Ok(format!("{}: {report}\n", self.out.display()))
    }
}
