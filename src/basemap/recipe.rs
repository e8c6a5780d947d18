//! The recipe: which source file feeds which layer of the basemap schema, with which
//! kind, name and rank, over which zooms. Read from TOML (`data/basemap/recipe.toml`).

use super::{BasemapError, Layer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A whole recipe: archive facts and the rules, applied in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default = "default_name")]
    pub name: String,
    /// Shown under every map that uses the basemap; names every source used.
    pub attribution: String,
    #[serde(rename = "source")]
    pub sources: Vec<SourceRule>,
}

fn default_name() -> String {
    "basemap".into()
}

/// One source file mapped onto one layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRule {
    /// GeoJSON (FeatureCollection or one feature per line), optionally gzipped, or an
    /// MBTiles of vector tiles (`.mbtiles`); relative to the `--from` folder.
    pub path: String,
    pub layer: Layer,
    /// For an MBTiles source: the layer of its tiles to read (`road`, `water`...).
    pub mvt_layer: Option<String>,
    /// The same kind for every feature.
    pub kind: Option<String>,
    /// Or the kind looked up by this property's value in `kinds` (`"*"`: any other value).
    /// A feature whose value has no entry is left out: that is how a rule filters.
    pub kind_field: Option<String>,
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
    /// Property copied into `name`.
    pub name_field: Option<String>,
    /// Property copied into `rank` (rounded), or a fixed `rank`.
    pub rank_field: Option<String>,
    pub rank: Option<i64>,
    /// Property holding a per-feature first zoom (Natural Earth's `min_zoom`), never below
    /// `minzoom`.
    pub minzoom_field: Option<String>,
    /// Polygons become one point each, at an interior point (labels placed once per area).
    #[serde(default)]
    pub label_points: bool,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// Only features whose box meets this one (west, south, east, north).
    pub bbox: Option<[f64; 4]>,
}

/// The highest zoom a recipe may ask for; MapLibre overzooms beyond it.
pub const MAX_RECIPE_ZOOM: u8 = 15;

impl Recipe {
    pub fn load(path: &Path) -> Result<Recipe, BasemapError> {
        let text = std::fs::read_to_string(path).map_err(|e| BasemapError::io(path, e))?;
        let recipe: Recipe = toml::from_str(&text).map_err(|e| BasemapError::Recipe {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        recipe.validate().map_err(|message| BasemapError::Recipe {
            path: path.to_owned(),
            message,
        })?;
        Ok(recipe)
    }

    /// Checks every rule against the schema, so a typo in a kind fails the build instead
    /// of producing features no style layer matches.
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.sources.iter().enumerate() {
            let at = || format!("source {} ({})", i + 1, r.path);
            if r.minzoom > r.maxzoom || r.maxzoom > MAX_RECIPE_ZOOM {
                return Err(format!(
                    "{}: zooms {}..{} must be increasing and at most {MAX_RECIPE_ZOOM}",
                    at(),
                    r.minzoom,
                    r.maxzoom
                ));
            }
            if r.path.ends_with(".mbtiles") != r.mvt_layer.is_some() {
                return Err(format!(
                    "{}: `mvt_layer` is for MBTiles sources, and they need it",
                    at()
                ));
            }
            if r.kind.is_some() && r.kind_field.is_some() {
                return Err(format!("{}: give `kind` or `kind_field`, not both", at()));
            }
            let kinds = r.kind.iter().chain(r.kinds.values());
            for k in kinds {
                if !r.layer.kinds().contains(&k.as_str()) {
                    return Err(format!(
                        "{}: kind `{k}` is not one of the {} layer's kinds ({})",
                        at(),
                        r.layer.name(),
                        r.layer.kinds().join(", ")
                    ));
                }
            }
            if let Some([w, s, e, n]) = r.bbox
                && !(w < e && s < n)
            {
                return Err(format!("{}: bbox must be west,south,east,north", at()));
            }
        }
        Ok(())
    }
}
