//! TileJSON 3.0 of catalog datasets: a pure function of the datasets, their cluster
//! zooms, the base URL and the tile query, so that the server and `tessera bake` (which
//! writes it into archive metadata) describe the same tiles the same way.
//!
//! The document is built with the `tilejson` crate; fields of our own (the layer's
//! `tessera:cluster_zoom`) go in its `other` maps, which serialise flat beside the rest.

use crate::model::{Bounds, DatasetInfo};
use serde_json::Value as Json;
use std::collections::BTreeMap;
pub use tilejson::{Bounds as TileBounds, Center, TileJSON, VectorLayer};

/// The whole Web Mercator world, for datasets without bounds.
pub const WORLD: [f64; 4] = [-180.0, -85.051_128_78, 180.0, 85.051_128_78];
/// Zoom range of catalog tiles: rendered on demand, so any zoom.
pub const MIN_ZOOM: u8 = 0;
pub const MAX_ZOOM: u8 = 22;
/// The layer field naming the zoom from which points are drawn one by one.
pub const CLUSTER_ZOOM_KEY: &str = "tessera:cluster_zoom";

/// TileJSON of `datasets` as one multi-layer tileset.
///
/// `cluster_zooms[i]` belongs to `datasets[i]` (`None`: not a point dataset, or not known);
/// `base` is the absolute URL prefix of the server; `query` the normalised tile filters
/// (without `v=`), carried into the tile URL after the dataset versions.
pub fn datasets_tilejson(
    datasets: &[DatasetInfo],
    cluster_zooms: &[Option<u8>],
    base: &str,
    query: &str,
) -> TileJSON {
    let ids: Vec<&str> = datasets.iter().map(|d| d.id.as_str()).collect();
    let versions: Vec<String> = datasets.iter().map(|d| d.version.to_string()).collect();
    let mut tile_query = format!("v={}", versions.join("."));
    if !query.is_empty() {
        tile_query.push('&');
        tile_query.push_str(query);
    }
    let b = union_bounds(datasets).map_or(WORLD, Bounds::to_array);
    let layers = datasets
        .iter()
        .enumerate()
        .map(|(i, d)| vector_layer(d, cluster_zooms.get(i).copied().flatten()))
        .collect();
    let attribution: Vec<&str> = datasets
        .iter()
        .map(|d| d.meta.attribution.as_str())
        .filter(|a| !a.is_empty())
        .collect();
    let join = |f: fn(&DatasetInfo) -> &str, sep: &str| {
        datasets.iter().map(f).collect::<Vec<_>>().join(sep)
    };
    tilejson::tilejson! {
        tiles: vec![format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt?{tile_query}", ids.join(","))],
        name: join(|d| &d.meta.title, " + "),
        description: join(|d| &d.meta.description, " "),
        attribution: attribution.join("; "),
        scheme: "xyz".into(),
        vector_layers: layers,
        bounds: TileBounds::new(b[0], b[1], b[2], b[3]),
        center: Center::new((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, center_zoom(b)),
        minzoom: MIN_ZOOM,
        maxzoom: MAX_ZOOM,
    }
}

fn union_bounds(datasets: &[DatasetInfo]) -> Option<Bounds> {
    let mut acc: Option<Bounds> = None;
    for b in datasets.iter().filter_map(|d| d.bounds) {
        match &mut acc {
            Some(acc) => acc.extend(&b),
            None => acc = Some(b),
        }
    }
    acc
}

/// The zoom at which the bounds about fill a tile (0-16).
fn center_zoom(b: [f64; 4]) -> u8 {
    let span = (b[2] - b[0]).max(b[3] - b[1]).max(1e-6);
    (360.0 / span).log2().clamp(0.0, 16.0).floor() as u8
}

/// One dataset's layer: its fields with their types, and for points the cluster attributes.
fn vector_layer(d: &DatasetInfo, cluster_zoom: Option<u8>) -> VectorLayer {
    let mut fields = BTreeMap::new();
    fields.insert(
        "fid".into(),
        "feature id (use it with /collections/{id}/items/{fid})".into(),
    );
    for f in &d.fields {
        fields.insert(f.name.clone(), f.ty.name().into());
    }
    if d.geometry_type.as_deref() == Some("Point") {
        for (k, v) in [
            ("cluster", "boolean: true for clusters"),
            ("point_count", "integer: points in a cluster"),
            ("point_count_abbreviated", "string: 1.2k"),
            (
                "cluster_expansion_zoom",
                "integer: zoom at which a cluster splits",
            ),
            ("time_start", "datetime"),
        ] {
            fields.insert(k.into(), v.into());
        }
    }
    let mut layer = VectorLayer::new(d.id.as_str().to_owned(), fields);
    layer.description = Some(d.meta.title.clone());
    layer.minzoom = Some(MIN_ZOOM);
    layer.maxzoom = Some(MAX_ZOOM);
    layer.other.insert(
        CLUSTER_ZOOM_KEY.into(),
        cluster_zoom.map_or(Json::Null, Json::from),
    );
    layer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DatasetId, DatasetMeta, Field, FieldType};
    use serde_json::json;

    fn dataset(id: &str, geometry: &str, bounds: Option<Bounds>) -> DatasetInfo {
        DatasetInfo {
            id: DatasetId::parse(id).unwrap(),
            meta: DatasetMeta {
                title: format!("{id} title"),
                description: format!("{id} text"),
                attribution: if id == "a" {
                    "City of A".into()
                } else {
                    String::new()
                },
                ..DatasetMeta::default()
            },
            fields: vec![Field {
                name: "kind".into(),
                ty: FieldType::String,
            }],
            geometry_type: Some(geometry.into()),
            bounds,
            time_extent: None,
            feature_count: 3,
            without_geometry: vec![],
            version: 7,
            updated: "2026-01-01T00:00:00Z".into(),
            source_ids: false,
            timezone: None,
        }
    }

    /// The document the hand-built `serde_json` TileJSON of the HTTP module produced
    /// before it moved here, field for field: clients see the same JSON.
    #[test]
    fn same_document_as_the_hand_built_one() {
        let a = dataset("a", "Point", Some(Bounds::of_point(-1.0, 51.0)));
        let mut b = dataset("b", "Polygon", None);
        b.bounds = Some(Bounds {
            min_x: -2.0,
            min_y: 50.0,
            max_x: -1.5,
            max_y: 50.5,
        });
        let tj = datasets_tilejson(&[a, b], &[Some(12), None], "http://h", "kind=x");
        let got = serde_json::to_value(&tj).unwrap();
        let fields = |point: bool| {
            let mut f = json!({"fid": "feature id (use it with /collections/{id}/items/{fid})", "kind": "string"});
            if point {
                for (k, v) in [
                    ("cluster", "boolean: true for clusters"),
                    ("point_count", "integer: points in a cluster"),
                    ("point_count_abbreviated", "string: 1.2k"),
                    (
                        "cluster_expansion_zoom",
                        "integer: zoom at which a cluster splits",
                    ),
                    ("time_start", "datetime"),
                ] {
                    f[k] = json!(v);
                }
            }
            f
        };
        let want = json!({
            "tilejson": "3.0.0",
            "name": "a title + b title",
            "description": "a text b text",
            "attribution": "City of A",
            "scheme": "xyz",
            "tiles": ["http://h/tiles/a,b/{z}/{x}/{y}.mvt?v=7.7&kind=x"],
            "vector_layers": [
                {"id": "a", "description": "a title", "fields": fields(true), "minzoom": 0, "maxzoom": 22, "tessera:cluster_zoom": 12},
                {"id": "b", "description": "b title", "fields": fields(false), "minzoom": 0, "maxzoom": 22, "tessera:cluster_zoom": null},
            ],
            "bounds": [-2.0, 50.0, -1.0, 51.0],
            "center": [-1.5, 50.5, 8],
            "minzoom": 0,
            "maxzoom": 22,
        });
        assert_eq!(got, want);
        // And it reads back as the same document (a client using the crate sees every field).
        let back: TileJSON = serde_json::from_value(got).unwrap();
        assert_eq!(back, tj);
    }

    #[test]
    fn no_bounds_means_the_world_and_no_query_means_versions_only() {
        let tj = datasets_tilejson(&[dataset("c", "LineString", None)], &[], "http://h", "");
        assert_eq!(tj.tiles, ["http://h/tiles/c/{z}/{x}/{y}.mvt?v=7"]);
        let b = tj.bounds.unwrap();
        assert_eq!([b.left, b.bottom, b.right, b.top], WORLD);
        assert_eq!(tj.center.unwrap().zoom, 0);
        assert_eq!(tj.attribution.as_deref(), Some(""));
        let layer = &tj.vector_layers.unwrap()[0];
        assert_eq!(layer.other[CLUSTER_ZOOM_KEY], Json::Null);
        assert!(!layer.fields.contains_key("cluster"));
    }
}
