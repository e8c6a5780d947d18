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

/// What the tiles of a point dataset carry beyond fid and time (see
/// [`crate::tiles::render_points`]), so that TileJSON lists exactly those properties.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointLayout {
    /// The zoom from which points are drawn one by one.
    pub cluster_zoom: u8,
    /// The category field, if any, and its values (each a `count:<value>` of clusters).
    pub category: Option<String>,
    pub categories: Vec<String>,
    /// Extra properties of single points (`tile_fields`, `properties=`).
    pub extra: Vec<String>,
}

impl PointLayout {
    /// The layout of a point source's tiles with `extra` properties.
    pub fn of(source: &super::PointSource, extra: Vec<String>) -> Self {
        PointLayout {
            cluster_zoom: source.cluster_zoom,
            category: source.category.clone(),
            categories: source.index.categories().to_vec(),
            extra,
        }
    }
}

/// TileJSON of `datasets` as one multi-layer tileset.
///
/// `points[i]` belongs to `datasets[i]` (`None`: not a point dataset, or not known);
/// `base` is the absolute URL prefix of the server; `query` the normalised tile filters
/// (without `v=`), carried into the tile URL after the dataset versions.
pub fn datasets_tilejson(
    datasets: &[DatasetInfo],
    points: &[Option<PointLayout>],
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
    let mut layers = Vec::with_capacity(datasets.len());
    for (i, d) in datasets.iter().enumerate() {
        let layer = vector_layer(d, points.get(i).and_then(Option::as_ref));
        if super::has_labels(d) {
            layers.push(layer.clone());
            layers.push(labels_layer(d, layer));
        } else {
            layers.push(layer);
        }
    }
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

/// One dataset's layer with the properties its tiles carry: every field for lines and
/// polygons; for points fid, category, time, the extra properties and what clusters and
/// stacks of points at one position add.
fn vector_layer(d: &DatasetInfo, points: Option<&PointLayout>) -> VectorLayer {
    let mut fields = BTreeMap::new();
    fields.insert(
        "fid".into(),
        "feature id (use it with /collections/{id}/items/{fid})".into(),
    );
    let type_of = |name: &str| {
        d.fields
            .iter()
            .find(|f| f.name == name)
            .map_or("string", |f| f.ty.name())
            .to_owned()
    };
    match points {
        None if d.geometry_type.as_deref() == Some("Point") => {}
        None => {
            for f in &d.fields {
                fields.insert(f.name.clone(), f.ty.name().into());
            }
        }
        Some(p) => {
            for name in p.category.iter().chain(&p.extra) {
                fields.insert(name.clone(), type_of(name));
            }
            for (k, v) in POINT_PROPERTIES {
                fields.insert(k.into(), v.into());
            }
            if d.time_extent.is_some() {
                fields.insert("time_start".into(), "datetime (RFC 3339, UTC)".into());
                fields.insert(
                    "time_end".into(),
                    "datetime (RFC 3339, UTC): end of an interval".into(),
                );
            }
            if p.category.is_some() {
                for (k, v) in CATEGORY_PROPERTIES {
                    fields.insert(k.into(), v.into());
                }
                for c in &p.categories {
                    fields.insert(
                        format!("count:{c}"),
                        "integer: points of this category in a cluster".into(),
                    );
                }
            }
        }
    }
    let mut layer = VectorLayer::new(d.id.as_str().to_owned(), fields);
    layer.description = Some(d.meta.title.clone());
    layer.minzoom = Some(MIN_ZOOM);
    layer.maxzoom = Some(MAX_ZOOM);
    layer.other.insert(
        CLUSTER_ZOOM_KEY.into(),
        points.map_or(Json::Null, |p| Json::from(p.cluster_zoom)),
    );
    layer
}

/// The label layer of a polygon dataset (see [`super::label_layer`]): one point per
/// polygon with the polygon's properties.
fn labels_layer(d: &DatasetInfo, mut layer: VectorLayer) -> VectorLayer {
    layer.id = super::label_layer(d.id.as_str());
    layer.description = Some(format!("{}: one label point per area", d.meta.title));
    layer.other.remove(CLUSTER_ZOOM_KEY);
    layer
}

/// Properties of clusters (below the cluster zoom) and of stacks (points at exactly one
/// position, from the cluster zoom on), as `tiles::render_points` writes them.
const POINT_PROPERTIES: [(&str, &str); 6] = [
    ("cluster", "boolean: true for clusters"),
    ("point_count", "integer: points in a cluster"),
    ("point_count_abbreviated", "string: 1.2k"),
    (
        "cluster_expansion_zoom",
        "integer: zoom at which a cluster splits",
    ),
    (
        "count",
        "integer: points at exactly this position (a stack)",
    ),
    (
        "bbox",
        "string: west,south,east,north of a stack's position, for the items bbox parameter",
    ),
];

/// What stacks add with a category field.
const CATEGORY_PROPERTIES: [(&str, &str); 2] = [
    (
        "cat_top",
        "string: the commonest category of a stack or a cluster",
    ),
    (
        "cat_mix",
        "string: JSON object of category -> count of a stack, commonest first",
    ),
];

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

    /// The document field for field. Point layers list what point tiles carry (not the
    /// dataset's other fields: those are not in the tiles); shape layers every field.
    #[test]
    fn same_document_as_the_tiles_carry() {
        let mut a = dataset("a", "Point", Some(Bounds::of_point(-1.0, 51.0)));
        a.fields.push(Field {
            name: "note".into(),
            ty: FieldType::String,
        });
        a.fields.push(Field {
            name: "n".into(),
            ty: FieldType::Integer,
        });
        a.time_extent = Some(crate::model::TimeRange { start: 0, end: 1 });
        let mut b = dataset("b", "Polygon", None);
        b.bounds = Some(Bounds {
            min_x: -2.0,
            min_y: 50.0,
            max_x: -1.5,
            max_y: 50.5,
        });
        let layout = PointLayout {
            cluster_zoom: 12,
            category: Some("kind".into()),
            categories: vec!["x".into(), "y z".into()],
            extra: vec!["n".into()],
        };
        let tj = datasets_tilejson(&[a, b], &[Some(layout), None], "http://h", "kind=x");
        let got = serde_json::to_value(&tj).unwrap();
        let fid = "feature id (use it with /collections/{id}/items/{fid})";
        let mut point_fields = json!({"fid": fid, "kind": "string", "n": "integer"});
        for (k, v) in POINT_PROPERTIES.iter().chain(&CATEGORY_PROPERTIES) {
            point_fields[k] = json!(v);
        }
        point_fields["time_start"] = json!("datetime (RFC 3339, UTC)");
        point_fields["time_end"] = json!("datetime (RFC 3339, UTC): end of an interval");
        point_fields["count:x"] = json!("integer: points of this category in a cluster");
        point_fields["count:y z"] = json!("integer: points of this category in a cluster");
        assert!(point_fields.get("note").is_none());
        let shape_fields = json!({"fid": fid, "kind": "string"});
        let want = json!({
            "tilejson": "3.0.0",
            "name": "a title + b title",
            "description": "a text b text",
            "attribution": "City of A",
            "scheme": "xyz",
            "tiles": ["http://h/tiles/a,b/{z}/{x}/{y}.mvt?v=7.7&kind=x"],
            "vector_layers": [
                {"id": "a", "description": "a title", "fields": point_fields, "minzoom": 0, "maxzoom": 22, "tessera:cluster_zoom": 12},
                {"id": "b", "description": "b title", "fields": shape_fields, "minzoom": 0, "maxzoom": 22, "tessera:cluster_zoom": null},
                {"id": "b_labels", "description": "b title: one label point per area", "fields": shape_fields, "minzoom": 0, "maxzoom": 22},
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
