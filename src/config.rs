//! The catalog manifest (`data/tessera.toml`): which files make which dataset, and how to
//! read them. `serve` builds or refreshes the catalog from it on start.

use crate::ingest::time::parse_zone;
use crate::ingest::{Encoding, IngestOptions};
use crate::model::{DatasetId, DatasetKind, DatasetMeta};
use crate::store::ImportRequest;
use serde::Deserialize;
use std::hash::{Hash, Hasher};
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
}

/// One `[[dataset]]` table.
#[derive(Debug, Deserialize, Hash)]
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
    pub time_end: Option<String>,
    pub timezone: Option<String>,
    pub lon: Option<String>,
    pub lat: Option<String>,
    pub wkt: Option<String>,
    pub encoding: Option<String>,
    pub id_column: Option<String>,
    pub category: Option<String>,
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
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    e.hash(&mut hasher);
    for f in &files {
        let m = std::fs::metadata(f).map_err(|err| format!("{}: {err}", f.display()))?;
        m.len().hash(&mut hasher);
        m.modified().ok().hash(&mut hasher);
    }
    let meta = DatasetMeta {
        title: e.title.clone(),
        description: e.description.clone(),
        attribution: e.attribution.clone(),
        licence: e.licence.clone(),
        source: e.source.clone(),
        kind,
        category: e.category.clone(),
        fingerprint: Some(format!("{:016x}", hasher.finish())),
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
