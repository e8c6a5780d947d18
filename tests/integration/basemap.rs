//! The offline basemap: `tessera basemap` (the real binary) builds an archive from a
//! recipe and real fixture sources; the archive, served as `basemap`, is read back over
//! HTTP and decoded with mvt-reader; dataset styles put their layers on top of it.

use super::support::{Server, fixture, fixture_request};
use mvt_reader::feature::{Feature, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use tessera::render::archive::{ArchiveSource, ArchiveSpec};
use tessera::tiles::{TileCoord, tile_of};

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("RUST_LOG", "tessera=warn")
        .output()
        .expect("run tessera")
}

/// A recipe over the fixtures: Manhattan's street sample as roads, its neighbourhoods as
/// label points, and a land box and a river strip (inputs written here) as earth and water.
const RECIPE: &str = r#"
attribution = "test sources"

[[source]]
path = "land.geojson"
layer = "earth"
minzoom = 0
maxzoom = 14

[[source]]
path = "river.geojson"
layer = "water"
kind = "river"
minzoom = 8
maxzoom = 14

[[source]]
path = "roads-sample.geojsonseq"
layer = "roads"
kind_field = "fclass"
kinds = { "primary" = "major", "secondary" = "major", "*" = "minor" }
name_field = "name"
minzoom = 10
maxzoom = 14

[[source]]
path = "manhattan-neighbourhoods.geojson"
layer = "places"
kind = "neighbourhood"
name_field = "name"
rank = 20
label_points = true
minzoom = 10
maxzoom = 14
"#;

fn polygon(w: f64, s: f64, e: f64, n: f64) -> String {
    format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{}},"geometry":{{"type":"Polygon","coordinates":[[[{w},{s}],[{e},{s}],[{e},{n}],[{w},{n}],[{w},{s}]]]}}}}]}}"#
    )
}

/// Builds the test basemap into `dir` with the binary; returns the archive's path.
fn build(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("recipe.toml"), RECIPE).unwrap();
    std::fs::write(
        dir.join("land.geojson"),
        polygon(-74.03, 40.68, -73.90, 40.89),
    )
    .unwrap();
    std::fs::write(
        dir.join("river.geojson"),
        polygon(-74.06, 40.68, -74.03, 40.89),
    )
    .unwrap();
    let out = dir.join("basemap.pmtiles");
    let fixtures = fixture("roads-sample.geojsonseq");
    let fixtures = fixtures.parent().unwrap();
    let run = tessera(&[
        "basemap",
        "--from",
        fixtures.to_str().unwrap(),
        "--from",
        dir.to_str().unwrap(),
        "--recipe",
        dir.join("recipe.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "tessera basemap failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("tiles"));
    out
}

/// A server with `archive` as the basemap and the NYC 311 sample as a dataset.
async fn serve(archive: &Path) -> Server {
    let spec = ArchiveSpec {
        id: "basemap".into(),
        path: archive.to_owned(),
    };
    let source = Arc::new(
        ArchiveSource::open(&spec, 3, 0)
            .await
            .expect("open basemap"),
    );
    let s = Server::start_with(|state| {
        state.archives = Arc::new(BTreeMap::from([("basemap".to_owned(), source)]));
    })
    .await;
    s.import(&fixture_request("nyc-311", "nyc-311-sample.csv"));
    s
}

/// The layers of a basemap tile by name (none for 204).
async fn layers(s: &Server, t: TileCoord) -> BTreeMap<String, Vec<Feature>> {
    let path = format!("/tiles/basemap/{}/{}/{}.mvt", t.z(), t.x(), t.y());
    let r = s.get(&path).await;
    match r.status().as_u16() {
        204 | 404 => return BTreeMap::new(),
        200 => {}
        other => panic!("GET {path}: {other}"),
    }
    let bytes = r.bytes().await.unwrap().to_vec();
    let reader = mvt_reader::Reader::new(bytes).expect("mvt-reader reads the tile");
    let mut out = BTreeMap::new();
    for l in reader.get_layer_metadata().expect("layers") {
        assert_eq!(l.extent, 4096, "layer {}: the schema's extent", l.name);
        out.insert(l.name.clone(), reader.get_features(l.layer_index).unwrap());
    }
    out
}

fn text<'a>(f: &'a Feature, k: &str) -> Option<&'a str> {
    match f.properties.as_ref()?.get(k)? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

#[tokio::test]
async fn basemap_built_by_the_binary_has_streets_land_water_and_labels_where_expected() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&build(dir.path())).await;

    // West 106th Street (a `secondary` in the sample) at street zoom.
    let t = tile_of(-73.9604244, 40.7982075, 14).unwrap();
    let l = layers(&s, t).await;
    let road = l["roads"]
        .iter()
        .find(|f| text(f, "name") == Some("West 106th Street"))
        .expect("West 106th Street is in its z14 tile");
    assert_eq!(text(road, "kind"), Some("major"));
    assert!(!l["earth"].is_empty(), "land under the street");

    // Zoom ranges: no roads or labels below z10, land and water still there at z9.
    let l9 = layers(&s, tile_of(-73.9604244, 40.7982075, 9).unwrap()).await;
    assert!(!l9.contains_key("roads") && !l9.contains_key("places"));
    assert!(l9.contains_key("earth"));
    let w = layers(&s, tile_of(-74.045, 40.75, 9).unwrap()).await;
    assert!(w["water"].iter().all(|f| text(f, "kind") == Some("river")));
    assert!(!w["water"].is_empty());
}

#[tokio::test]
async fn each_neighbourhood_is_labelled_once_at_an_interior_point() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&build(dir.path())).await;
    let fc: Json = serde_json::from_str(
        &std::fs::read_to_string(fixture("manhattan-neighbourhoods.geojson")).unwrap(),
    )
    .unwrap();
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for f in fc["features"].as_array().unwrap() {
        *expected
            .entry(f["properties"]["name"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    // Every z12 tile over the fixture's extent: labels may not repeat at tile seams.
    let (a, b) = (
        tile_of(-74.03, 40.89, 12).unwrap(),
        tile_of(-73.90, 40.68, 12).unwrap(),
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for x in a.x()..=b.x() {
        for y in a.y()..=b.y() {
            let l = layers(&s, TileCoord::new(12, x, y).unwrap()).await;
            for f in l.get("places").into_iter().flatten() {
                assert_eq!(text(f, "kind"), Some("neighbourhood"));
                *seen.entry(text(f, "name").unwrap().to_owned()).or_default() += 1;
            }
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn dataset_styles_draw_on_top_of_the_served_basemap() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&build(dir.path())).await;
    let tj = s.json("/tiles/basemap").await;
    let ids: Vec<&str> = tj["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "earth",
            "water",
            "landuse",
            "waterway",
            "roads",
            "boundaries",
            "places"
        ]
    );

    let style = s.json("/styles/nyc-311.json").await;
    assert_eq!(
        style["sources"]["basemap"]["url"],
        Json::String(format!("{}/tiles/basemap", s.base))
    );
    assert_eq!(style["sources"]["basemap"]["attribution"], "test sources");
    let layers = style["layers"].as_array().unwrap();
    let backgrounds = layers.iter().filter(|l| l["type"] == "background").count();
    assert_eq!(backgrounds, 1, "one background, the basemap's");
    let source_of = |l: &Json| l["source"].as_str().unwrap_or("").to_owned();
    let last_basemap = layers.iter().rposition(|l| source_of(l) == "basemap");
    let first_data = layers.iter().position(|l| source_of(l) == "data");
    assert!(last_basemap.unwrap() < first_data.unwrap(), "data on top");
    for l in layers.iter().filter(|l| source_of(l) == "basemap") {
        assert!(ids.contains(&l["source-layer"].as_str().unwrap()), "{l}");
    }

    // Without a basemap the style stands alone.
    let plain = Server::with_fixture("nyc-311", "nyc-311-sample.csv").await;
    let style = plain.json("/styles/nyc-311.json").await;
    assert!(style["sources"].get("basemap").is_none());
}

#[test]
fn bad_basemap_options_and_recipes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let run = tessera(&[
        "serve",
        "--no-manifest",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--basemap",
        "style.txt",
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--basemap `style.txt`"));

    let recipe = dir.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        RECIPE.replace(r#"kind = "river""#, r#"kind = "sea""#),
    )
    .unwrap();
    let run = tessera(&[
        "basemap",
        "--from",
        dir.path().to_str().unwrap(),
        "--recipe",
        recipe.to_str().unwrap(),
        "--out",
        dir.path().join("x.pmtiles").to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("kind `sea`"), "{err}");
    assert!(!dir.path().join("x.pmtiles").exists());
}
