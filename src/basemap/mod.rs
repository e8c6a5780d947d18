//! The offline basemap: real open data (Natural Earth, OpenStreetMap, city open data)
//! turned into one PMTiles archive of vector tiles in a small fixed schema, so every map
//! page has land, water, parks, streets and place names under its data without a single
//! request leaving the server.
//!
//! `tessera basemap --from DIR --recipe data/basemap/recipe.toml --out FILE` reads the
//! sources the [`recipe`] names ([`source`]; vector tiles of another schema: [`mbtiles`]), cuts them into tiles by descending the tile
//! pyramid ([`tiler`], pre-clipping in lon/lat with [`lonlat`] so a continent is not
//! re-projected for every tile), encodes them with the [`crate::tiles`] core and writes
//! them with the PMTiles writer of `tessera bake`. Everything but the file I/O in
//! [`build`] is pure.
//!
//! The schema (shared with the style `styles/basemap.json` and the PNG renderer):
//! `earth`, `water` (`kind`), `landuse` (`kind`, `name`), `waterway` (`name`), `roads`
//! (`kind`, `name`), `boundaries` (`kind`), `places` (`kind`, `name`, `rank`).

pub mod label;
pub mod lonlat;
pub mod mbtiles;
pub mod recipe;
pub mod source;
pub mod tiler;

use crate::bake::archive::{ArchiveWriter, Metadata, Pmtiles};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The layers of the schema, in drawing order (the order they have in a tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Earth,
    Water,
    Landuse,
    Waterway,
    Roads,
    Boundaries,
    Places,
}

impl Layer {
    pub const ALL: [Layer; 7] = [
        Layer::Earth,
        Layer::Water,
        Layer::Landuse,
        Layer::Waterway,
        Layer::Roads,
        Layer::Boundaries,
        Layer::Places,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Earth => "earth",
            Layer::Water => "water",
            Layer::Landuse => "landuse",
            Layer::Waterway => "waterway",
            Layer::Roads => "roads",
            Layer::Boundaries => "boundaries",
            Layer::Places => "places",
        }
    }

    /// The values `kind` may take in this layer (empty: the layer has no `kind`).
    pub fn kinds(self) -> &'static [&'static str] {
        match self {
            Layer::Earth | Layer::Waterway => &[],
            Layer::Water => &["ocean", "lake", "river", "water"],
            Layer::Landuse => &["park", "urban", "green"],
            Layer::Roads => &["highway", "major", "minor", "path", "rail"],
            Layer::Boundaries => &["country", "region"],
            Layer::Places => &["country", "region", "city", "town", "neighbourhood"],
        }
    }
}

/// Why a basemap build failed; every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum BasemapError {
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("recipe {}: {message}", path.display())]
    Recipe { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Source { path: PathBuf, message: String },
    #[error("writing the archive: {0}")]
    Write(String),
}

impl BasemapError {
    fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        BasemapError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }
}

/// What a build did, for the command line.
#[derive(Debug, Clone)]
pub struct Report {
    pub features: usize,
    pub tiles: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub maxzoom: u8,
    /// Tiles per zoom, from z0.
    pub per_zoom: Vec<usize>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} features, {} tiles z0-{}, {:.1} MB in {:.1} s",
            self.features,
            self.tiles,
            self.maxzoom,
            self.bytes as f64 / 1e6,
            self.seconds
        )?;
        let zooms: Vec<String> = self
            .per_zoom
            .iter()
            .enumerate()
            .map(|(z, n)| format!("z{z}:{n}"))
            .collect();
        write!(f, "\n  tiles per zoom: {}", zooms.join(" "))
    }
}

/// Builds the archive `out` from the recipe's sources, each found in the first folder of
/// `from` that has it; the file is replaced only when the build succeeds.
pub fn build(recipe_path: &Path, from: &[PathBuf], out: &Path) -> Result<Report, BasemapError> {
    let started = Instant::now();
    let recipe = recipe::Recipe::load(recipe_path)?;
    let mut features = Vec::new();
    for rule in &recipe.sources {
        let path = from
            .iter()
            .map(|d| d.join(&rule.path))
            .find(|p| p.exists())
            .ok_or_else(|| BasemapError::Source {
                path: PathBuf::from(&rule.path),
                message: format!("not found in {from:?} (did data/basemap/prepare.sh run?)"),
            })?;
        features.extend(source::read(&path, rule)?);
    }
    let count = features.len();
    let maxzoom = features.iter().map(|f| f.maxzoom).max().unwrap_or(0);
    let tiles = tiler::render_all(features, tiler::GZIP_LEVEL);
    let bytes = write(&recipe, &tiles, maxzoom, out)?;
    let mut per_zoom = vec![0; usize::from(maxzoom) + 1];
    for t in &tiles {
        if let Some(n) = per_zoom.get_mut(usize::from(t.coord.z())) {
            *n += 1;
        }
    }
    Ok(Report {
        features: count,
        tiles: tiles.len(),
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        maxzoom,
        per_zoom,
    })
}

/// The TileJSON `vector_layers` of the schema.
fn vector_layers() -> serde_json::Value {
    let fields = |l: Layer| -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if !l.kinds().is_empty() {
            m.insert("kind".into(), l.kinds().join("|").into());
        }
        if matches!(
            l,
            Layer::Landuse | Layer::Waterway | Layer::Roads | Layer::Places
        ) {
            m.insert("name".into(), "String".into());
        }
        if l == Layer::Places {
            m.insert("rank".into(), "Number".into());
        }
        m.into()
    };
    Layer::ALL
        .iter()
        .map(|&l| serde_json::json!({"id": l.name(), "fields": fields(l)}))
        .collect()
}

fn write(
    recipe: &recipe::Recipe,
    tiles: &[tiler::BuiltTile],
    maxzoom: u8,
    out: &Path,
) -> Result<u64, BasemapError> {
    let meta = Metadata {
        tilejson: serde_json::json!({
            "tilejson": "3.0.0",
            "name": recipe.name,
            "attribution": recipe.attribution,
            "vector_layers": vector_layers(),
            "minzoom": 0,
            "maxzoom": maxzoom,
        }),
        name: recipe.name.clone(),
        description: "Offline basemap built by tessera basemap".into(),
        attribution: recipe.attribution.clone(),
        bounds: [-180.0, -85.0511, 180.0, 85.0511],
        center: (-73.98, 40.75, 10),
        minzoom: 0,
        maxzoom,
    };
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| BasemapError::io(dir, e))?;
    let mut file = tmp.reopen().map_err(|e| BasemapError::io(out, e))?;
    {
        let mut writer: Box<dyn ArchiveWriter + '_> = Box::new(
            Pmtiles::create(&mut file, &meta).map_err(|e| BasemapError::Write(e.to_string()))?,
        );
        for t in tiles {
            writer
                .add(t.coord, &t.gz, t.key)
                .map_err(|e| BasemapError::Write(e.to_string()))?;
        }
        writer
            .finish()
            .map_err(|e| BasemapError::Write(e.to_string()))?;
    }
    file.sync_all().map_err(|e| BasemapError::io(out, e))?;
    let size = file.metadata().map_err(|e| BasemapError::io(out, e))?.len();
    tmp.persist(out)
        .map_err(|e| BasemapError::io(out, e.error))?;
    Ok(size)
}
