//! Boundary labels: one label point per polygon, in one tile per zoom, inside its area.
//! Regression: the Chicago community areas showed most names two or more times (a
//! symbol per tile piece of each polygon).

use crate::support::*;
use crate::tiles::{demo_request, tile_layers};
use geo::Contains;
use mvt_reader::feature::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use tessera::tiles::tile_of;

const ID: &str = "chicago-community-areas";

/// Name -> outline of every community area, read from the demo file itself.
fn areas_from_file() -> BTreeMap<String, geo_types::Geometry<f64>> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/chicago/community-areas.geojson.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let fc: geojson::FeatureCollection = text.parse().unwrap();
    fc.features
        .into_iter()
        .map(|f| {
            let name = f
                .property("community")
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned();
            let g = geo_types::Geometry::<f64>::try_from(f.geometry.unwrap()).unwrap();
            (name, g)
        })
        .collect()
}

/// Tile units -> lon/lat (inverse Web Mercator), for checking where a label sits.
fn lonlat(z: u8, x: u32, y: u32, extent: u32, u: f64, v: f64) -> (f64, f64) {
    let n = f64::from(1u32 << z);
    let wx = (f64::from(x) + u / f64::from(extent)) / n;
    let wy = (f64::from(y) + v / f64::from(extent)) / n;
    let lon = wx * 360.0 - 180.0;
    let lat = (std::f64::consts::PI * (1.0 - 2.0 * wy))
        .sinh()
        .atan()
        .to_degrees();
    (lon, lat)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_community_area_name_appears_once_per_zoom_inside_its_area() {
    let s = Server::start().await;
    s.import(&demo_request(ID));
    let areas = areas_from_file();
    assert_eq!(areas.len(), 77, "Chicago has 77 community areas");
    let tj = s.json(&format!("/tiles/{ID}")).await;
    let layers: Vec<&str> = tj["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    let label_layer = format!("{ID}_labels");
    assert_eq!(layers, [ID, label_layer.as_str()]);
    let b = tj["bounds"].as_array().unwrap();
    let [w, south, e, n] = [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap());
    // z10 is about the zoom the map opens at; z12 cuts most areas into several pieces.
    for z in [10u8, 12] {
        let (nw, se) = (tile_of(w, n, z).unwrap(), tile_of(e, south, z).unwrap());
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut pieces = 0;
        for x in nw.x()..=se.x() {
            for y in nw.y()..=se.y() {
                let Some(tile) = tile_layers(&s, &format!("/tiles/{ID}/{z}/{x}/{y}.mvt")).await
                else {
                    continue;
                };
                for layer in tile {
                    if layer.name == ID {
                        pieces += layer.features.len();
                        continue;
                    }
                    assert_eq!(layer.name, label_layer);
                    for f in &layer.features {
                        let props = f.properties.as_ref().unwrap();
                        let Some(Value::String(name)) = props.get("community") else {
                            panic!("label without a name: {props:?}");
                        };
                        // mvt-reader gives some one-point features as a MultiPoint.
                        let p = match &f.geometry {
                            geo_types::Geometry::Point(p) => *p,
                            geo_types::Geometry::MultiPoint(m) if m.0.len() == 1 => m.0[0],
                            g => panic!("label of {name} is not one point: {g:?}"),
                        };
                        let ext = f64::from(layer.extent);
                        assert!(
                            (0.0..ext).contains(&f64::from(p.x()))
                                && (0.0..ext).contains(&f64::from(p.y())),
                            "z{z}: label of {name} outside its tile {x}/{y}: {p:?}"
                        );
                        let at = lonlat(z, x, y, layer.extent, p.x().into(), p.y().into());
                        let area = &areas[name.as_str()];
                        assert!(
                            area.contains(&geo_types::Point::new(at.0, at.1)),
                            "z{z}: label of {name} at {at:?} is outside the area"
                        );
                        *seen.entry(name.clone()).or_default() += 1;
                    }
                }
            }
        }
        assert!(
            pieces > 77,
            "z{z}: areas are cut into tile pieces ({pieces})"
        );
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "z{z}: names not once: {twice:?}");
        let missing: Vec<_> = areas.keys().filter(|k| !seen.contains_key(*k)).collect();
        assert!(missing.is_empty(), "z{z}: names missing: {missing:?}");
    }
}

/// Names as the world writes them (Polish, Japanese, emoji) come back byte for byte in
/// the label layer, each once, in the tile that holds its area.
#[tokio::test(flavor = "multi_thread")]
async fn non_ascii_area_names_are_labelled_unchanged() {
    let s = Server::start().await;
    let names = ["Kraków", "東京", "Centrum 🏙️"];
    let features: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let w = 19.90 + 0.05 * i as f64;
            let (e, so, n) = (w + 0.04, 50.03, 50.08);
            format!(
                r#"{{"type":"Feature","properties":{{"name":"{name}"}},"geometry":{{"type":"Polygon","coordinates":[[[{w},{so}],[{e},{so}],[{e},{n}],[{w},{n}],[{w},{so}]]]}}}}"#
            )
        })
        .collect();
    let file = s.data.write(
        "areas.geojson",
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        ),
    );
    let mut req = request("areas", &[file]);
    req.meta.kind = tessera::model::DatasetKind::Boundaries;
    s.import(&req);
    let z = 9;
    let t = tile_of(19.95, 50.05, z).unwrap();
    let tile = tile_layers(&s, &format!("/tiles/areas/{z}/{}/{}.mvt", t.x(), t.y()))
        .await
        .expect("a tile over the areas");
    let labels = tile
        .iter()
        .find(|l| l.name == "areas_labels")
        .expect("a label layer");
    let mut got: Vec<String> = labels
        .features
        .iter()
        .map(|f| match f.properties.as_ref().unwrap().get("name") {
            Some(Value::String(n)) => n.clone(),
            other => panic!("label without a name: {other:?}"),
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
}
