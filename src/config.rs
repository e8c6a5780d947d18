//! The catalog manifest (`data/tessera.toml`): which files make which dataset, and how to
//! read them. `serve` builds or refreshes the catalog from it on start.

use crate::import::ImportRequest;
use crate::ingest::{Encoding, IngestOptions};
use crate::model::time::parse_zone;
use crate::model::{DatasetId, DatasetKind, DatasetMeta};
use crate::render::archive::ArchiveSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    dataset: Vec<ManifestEntry>,
    #[serde(default)]
    archives: Vec<ArchiveEntry>,
}

/// One `[[archives]]` table: a PMTiles or MBTiles file served as a tileset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveEntry {
    /// Relative to the manifest's folder.
    path: String,
    /// Default: the file name without its extension.
    id: Option<String>,
}

/// One `[[dataset]]` table.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub id: DatasetIdText,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub kind: Option<String>,
    pub files: Vec<String>,
    #[serde(default)]
    pub attribution: String,
    #[serde(default)]
    pub licence: String,
    #[serde(default)]
    pub source: String,
    pub time: Option<String>,
    /// `end_time` reads better next to `time`; `time_end` is the older spelling.
    #[serde(alias = "end_time")]
    pub time_end: Option<String>,
    pub timezone: Option<String>,
    pub lon: Option<String>,
    pub lat: Option<String>,
    pub wkt: Option<String>,
    pub encoding: Option<String>,
    pub id_column: Option<String>,
    pub category: Option<String>,
    /// Boundary datasets: the field of residents per area (rates per 1,000 residents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<String>,
    /// Datasets without positions: `{ field, areas, key }`, how rows join to areas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<crate::model::AreaJoin>,
    // Skipped when unset so that adding them left the fingerprints of older entries alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popup_fields: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile_fields: Option<Vec<String>>,
}

/// The id as written, validated when the entry becomes a request (so the error names the file).
pub type DatasetIdText = String;

/// Reads a manifest into import requests, one per dataset, with paths made absolute.
pub fn load_manifest(path: &Path) -> Result<Vec<ImportRequest>, ConfigError> {
    let err = |message: String| ConfigError::Manifest {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    manifest
        .dataset
        .iter()
        .map(|e| entry_request(e, base).map_err(|m| err(format!("dataset `{}`: {m}", e.id))))
        .collect()
}

/// The archives a manifest lists, with paths made absolute. Ids are checked when the
/// archives open (with the rest of what can be wrong with an archive).
pub fn load_archives(path: &Path) -> Result<Vec<ArchiveSpec>, ConfigError> {
    let err = |message: String| ConfigError::Manifest {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(manifest
        .archives
        .iter()
        .map(|a| {
            let file = base.join(&a.path);
            let stem = || {
                file.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            ArchiveSpec {
                id: a.id.clone().unwrap_or_else(stem),
                path: file,
            }
        })
        .collect())
}

/// What decides whether `serve` re-imports a dataset: the entry as written and each
/// file's size and modification time. XXH3-64 over a specified byte stream (the entry as
/// JSON, then per file its length and mtime as little-endian integers): `DefaultHasher`
/// and the `Hash` impls of std types may change between Rust releases, and a changed
/// fingerprint re-imports every dataset.
fn fingerprint(e: &ManifestEntry, files: &[(u64, Option<std::time::SystemTime>)]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    // Serialising plain strings and options cannot fail; an empty entry is still hashed.
    h.update(&serde_json::to_vec(e).unwrap_or_default());
    for (len, modified) in files {
        h.update(&len.to_le_bytes());
        match modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
            Some(d) => {
                h.update(&[1]);
                h.update(&d.as_secs().to_le_bytes());
                h.update(&d.subsec_nanos().to_le_bytes());
            }
            None => h.update(&[0]),
        }
    }
    format!("{:016x}", h.digest())
}

fn entry_request(e: &ManifestEntry, base: &Path) -> Result<ImportRequest, String> {
    let id = DatasetId::parse(&e.id)?;
    let kind = match e.kind.as_deref() {
        None => DatasetKind::default(),
        Some(k) => {
            serde_json::from_value(serde_json::Value::String(k.to_owned())).map_err(|_| {
                format!(
                    "kind `{k}` is not one of incidents, events, inspections, boundaries, lines"
                )
            })?
        }
    };
    let files: Vec<PathBuf> = e.files.iter().map(|f| base.join(f)).collect();
    let stamps = files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).map_err(|err| format!("{}: {err}", f.display()))?;
            Ok((m.len(), m.modified().ok()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let meta = DatasetMeta {
        title: e.title.clone(),
        description: e.description.clone(),
        attribution: e.attribution.clone(),
        licence: e.licence.clone(),
        source: e.source.clone(),
        kind,
        category: e.category.clone(),
        end_time: e.time_end.clone(),
        fingerprint: Some(fingerprint(e, &stamps)),
        population: e.population.clone(),
        join: e.join.clone(),
        display: crate::model::Display {
            title_field: e.title_field.clone(),
            popup_fields: e.popup_fields.clone().unwrap_or_default(),
            tile_fields: e.tile_fields.clone().unwrap_or_default(),
        },
    };
    let options = IngestOptions {
        lon: e.lon.clone(),
        lat: e.lat.clone(),
        wkt: e.wkt.clone(),
        encoding: e
            .encoding
            .as_deref()
            .map(str::parse::<Encoding>)
            .transpose()?
            .unwrap_or_default(),
        id_column: e.id_column.clone(),
    };
    Ok(ImportRequest {
        id,
        meta,
        files,
        options,
        time: e.time.clone(),
        time_end: e.time_end.clone(),
        timezone: parse_zone(e.timezone.as_deref().unwrap_or("UTC"))?,
        append: false,
        max_errors: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn entry() -> ManifestEntry {
        toml::from_str(
            r#"id = "uk"
title = "Street crime"
files = ["uk.csv"]
time = "Month"
category = "Crime type""#,
        )
        .unwrap()
    }

    /// A golden value: if the algorithm or the byte stream changed, every catalog built
    /// by an older binary would be re-imported on the next start. Checked against the
    /// reference XXH3 (Python `xxhash` 3.6.0 over the same JSON and integers).
    #[test]
    fn manifest_fingerprint_is_stable_golden_value() {
        let mtime = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let fp = fingerprint(&entry(), &[(4_096, Some(mtime)), (0, None)]);
        assert_eq!(fp, "cc10053d70bfb62d");
        // Each input counts.
        assert_ne!(
            fingerprint(&entry(), &[(4_097, Some(mtime)), (0, None)]),
            fp
        );
        assert_ne!(fingerprint(&entry(), &[(4_096, None), (0, None)]), fp);
        let mut other = entry();
        other.title.push('!');
        assert_ne!(fingerprint(&other, &[(4_096, Some(mtime)), (0, None)]), fp);
    }
}

/// A basemap given as a MapLibre style (`--basemap https://…/style.json` or a local style
/// file): the map pages draw the dataset layers over it instead of over the served
/// archive, and the browser loads it (and what it refers to) from where it says.
#[derive(Debug, Clone, PartialEq)]
pub enum BasemapStyle {
    /// Loaded by the browser from this URL; its origin is allowed by the pages' CSP.
    Url(String),
    /// Read at start and served as `/styles/basemap.json`.
    File(std::sync::Arc<serde_json::Value>),
}

impl BasemapStyle {
    /// Reads `--basemap` as a style: `Ok(None)` when it names something else (an
    /// archive, `none`), an error naming the flag when it is a style that cannot be used.
    pub fn from_flag(v: &str) -> Result<Option<Self>, String> {
        if v.starts_with("http://") || v.starts_with("https://") {
            return style_origin(v)
                .map(|_| Some(Self::Url(v.to_owned())))
                .ok_or_else(|| format!("--basemap `{v}` is not a usable style URL (http(s)://host/path, no spaces or quotes)"));
        }
        if !v.ends_with(".json") {
            return Ok(None);
        }
        let text = std::fs::read_to_string(v).map_err(|e| format!("--basemap `{v}`: {e}"))?;
        let style: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("--basemap `{v}` is not JSON: {e}"))?;
        // The members MapLibre cannot draw without (MapLibre Style Spec, "Root").
        if style["version"] != 8 || !style["sources"].is_object() || !style["layers"].is_array() {
            return Err(format!(
                "--basemap `{v}` is not a MapLibre style (version 8, sources, layers)"
            ));
        }
        Ok(Some(Self::File(std::sync::Arc::new(style))))
    }

    /// The origin the browser loads the style from (`None`: this server).
    pub fn origin(&self) -> Option<String> {
        match self {
            Self::Url(u) => style_origin(u),
            Self::File(_) => None,
        }
    }
}

/// `scheme://host[:port]` of a style URL, or `None` when the URL could carry more than a
/// URL into a CSP header or a page (spaces, quotes, `;`, `,`) or has no host.
fn style_origin(url: &str) -> Option<String> {
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\;,`".contains(c))
    {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_ok = !authority.is_empty()
        && !authority.contains('@')
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    host_ok.then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod basemap_style_tests {
    use super::*;

    #[test]
    fn style_urls_are_read_with_their_origin_and_unsafe_ones_refused() {
        let s =
            BasemapStyle::from_flag("https://tiles.example.org:8443/styles/x.json?k=1").unwrap();
        assert_eq!(
            s.as_ref().and_then(BasemapStyle::origin).as_deref(),
            Some("https://tiles.example.org:8443")
        );
        for bad in [
            "https://",
            "https://a b/s.json",
            "https://h/s.json;script-src *",
            "https://u@h/s.json",
            "http://h\"/x",
        ] {
            let e = BasemapStyle::from_flag(bad).unwrap_err();
            assert!(e.starts_with("--basemap `"), "{bad}: {e}");
        }
        assert_eq!(BasemapStyle::from_flag("base.pmtiles").unwrap(), None);
    }
}
