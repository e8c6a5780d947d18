//! The details a citizen notices (issue 11, item 6): points at one position grouped into
//! one feature, TileJSON layers that list what the tiles carry, extra tile properties.
//! Tiles are decoded with `mvt-reader`, never with our encoder.

use crate::support::*;
use mvt_reader::feature::{Feature, Value};
use std::collections::BTreeMap;
use tessera::tiles::tile_of;

/// The UK sample with crimes stacked the way police.uk snaps them: `STACK` rows moved to
/// the position of one real row, plus one row a metre away that must stay on its own.
const STACK_AT: (&str, &str) = ("-2.625649", "51.480484");
const STACK: usize = 7;

fn stacked_crimes(c: &TestCatalog) -> (std::path::PathBuf, BTreeMap<String, u64>) {
    let (h, rows) = read_csv(&fixture("uk-crime-sample.csv"));
    let (lon, lat, ty) = (
        col(&h, "Longitude"),
        col(&h, "Latitude"),
        col(&h, "Crime type"),
    );
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&h).unwrap();
    let mut mix = BTreeMap::new();
    let mut moved = 0;
    for r in &rows {
        let mut r: Vec<String> = r.iter().map(str::to_owned).collect();
        if r[lon].is_empty() {
            continue;
        }
        if moved < STACK {
            r[lon] = STACK_AT.0.into();
            r[lat] = STACK_AT.1.into();
            *mix.entry(r[ty].clone()).or_insert(0) += 1;
            moved += 1;
        } else if moved == STACK {
            // About 1 m east: a different position, drawn as its own point.
            r[lon] = "-2.625635".into();
            r[lat] = STACK_AT.1.into();
            moved += 1;
        }
        out.write_record(&r).unwrap();
    }
    let path = c.write("stacked.csv", out.into_inner().unwrap());
    (path, mix)
}

fn decode(bytes: &[u8]) -> Vec<Feature> {
    let reader = mvt_reader::Reader::new(bytes.to_vec()).expect("mvt-reader reads the tile");
    let meta = reader.get_layer_metadata().expect("layer metadata");
    assert_eq!(meta.len(), 1);
    reader.get_features(0).expect("features")
}

fn prop<'a>(f: &'a Feature, k: &str) -> Option<&'a Value> {
    f.properties.as_ref()?.get(k)
}

fn text(f: &Feature, k: &str) -> Option<String> {
    match prop(f, k)? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn uint(f: &Feature, k: &str) -> Option<u64> {
    match prop(f, k)? {
        Value::UInt(n) => Some(*n),
        Value::SInt(n) => u64::try_from(*n).ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

async fn tile(s: &Server, path: &str) -> Vec<Feature> {
    let r = s.get(path).await;
    assert_eq!(r.status(), 200, "GET {path}");
    decode(&r.bytes().await.unwrap())
}

/// Crimes at one snapped position are one feature with their count and category mix
/// at every zoom from the cluster zoom on, and its `bbox` lists exactly them.
#[tokio::test]
async fn points_at_one_position_are_one_feature_with_their_mix() {
    let s = Server::start().await;
    let (path, mix) = stacked_crimes(&s.data);
    let mut req = request("uk", &[path]);
    req.meta.category = Some("Crime type".into());
    s.import(&req);
    let tj = s.json("/tiles/uk").await;
    let cz = tj["vector_layers"][0]["tessera:cluster_zoom"]
        .as_u64()
        .expect("cluster zoom") as u8;
    let (lon, lat): (f64, f64) = (STACK_AT.0.parse().unwrap(), STACK_AT.1.parse().unwrap());
    let (top, top_n) = mix
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, n)| (k.clone(), *n))
        .unwrap();
    assert!(
        top_n < STACK as u64,
        "the mix has more than one category: {mix:?}"
    );
    for z in [cz, cz.max(14), 16, 18] {
        let t = tile_of(lon, lat, z).unwrap();
        let features = tile(&s, &format!("/tiles/uk/{z}/{}/{}.mvt", t.x(), t.y())).await;
        let stacks: Vec<&Feature> = features
            .iter()
            .filter(|f| prop(f, "count").is_some())
            .collect();
        assert_eq!(stacks.len(), 1, "z{z}: one stack expected: {features:?}");
        let st = stacks[0];
        assert_eq!(uint(st, "count"), Some(STACK as u64), "z{z}");
        assert_eq!(text(st, "cat_top").as_deref(), Some(top.as_str()), "z{z}");
        assert_eq!(
            text(st, "Crime type").as_deref(),
            Some(top.as_str()),
            "z{z}"
        );
        let got: BTreeMap<String, u64> =
            serde_json::from_str(&text(st, "cat_mix").expect("cat_mix")).unwrap();
        assert_eq!(got, mix, "z{z}: category mix");
        // The neighbour a metre away stays a single point (with its fid).
        if z >= 18 {
            let singles = features
                .iter()
                .filter(|f| prop(f, "count").is_none() && prop(f, "fid").is_some())
                .count();
            assert!(singles >= 1, "z{z}: the neighbour is its own point");
        }
        // The popup's link: the stack's bbox finds exactly its crimes.
        let bbox = text(st, "bbox").expect("bbox");
        let fc = s.items("uk", &[("bbox", &bbox), ("limit", "100")]).await;
        assert_eq!(number_matched(&fc), STACK as u64, "z{z}: items in {bbox}");
    }
    // Filters apply before grouping: one category leaves only its crimes in the stack.
    let t = tile_of(lon, lat, 16).unwrap();
    let q = format!(
        "/tiles/uk/16/{}/{}.mvt?Crime%20type={}",
        t.x(),
        t.y(),
        top.replace(' ', "%20")
    );
    let features = tile(&s, &q).await;
    let at_stack: Vec<&Feature> = features
        .iter()
        .filter(|f| prop(f, "count").is_some())
        .collect();
    if top_n > 1 {
        assert_eq!(at_stack.len(), 1, "{features:?}");
        assert_eq!(uint(at_stack[0], "count"), Some(top_n));
    } else {
        assert!(at_stack.is_empty(), "{features:?}");
    }
}

/// Clusters carry their category mix: at low zoom each cluster's `count:<category>` add up
/// to its `point_count`, its commonest category is `cat_top` (and the category field, so
/// the style colours its ring), and the mix summed over a tile equals a brute-force count
/// of the fixture's points in that tile.
#[tokio::test]
async fn clusters_carry_their_category_mix() {
    let s = Server::start().await;
    let mut req = fixture_request("uk", "uk-crime-sample.csv");
    req.meta.category = Some("Crime type".into());
    s.import(&req);
    let (h, rows) = read_csv(&fixture("uk-crime-sample.csv"));
    let (lon, lat, ty) = (
        col(&h, "Longitude"),
        col(&h, "Latitude"),
        col(&h, "Crime type"),
    );
    let points: Vec<(f64, f64, &str)> = rows
        .iter()
        .filter(|r| !r[lon].is_empty())
        .map(|r| (r[lon].parse().unwrap(), r[lat].parse().unwrap(), &r[ty]))
        .collect();
    let mut clusters_seen = 0;
    // The whole world, and the z5 tile of the first point (Cumbria).
    for z in [0u8, 5] {
        let t = tile_of(points[0].0, points[0].1, z).unwrap();
        let mut brute: BTreeMap<String, u64> = BTreeMap::new();
        for p in points.iter().filter(|p| tile_of(p.0, p.1, z).unwrap() == t) {
            *brute.entry(p.2.to_owned()).or_insert(0) += 1;
        }
        let features = tile(&s, &format!("/tiles/uk/{z}/{}/{}.mvt", t.x(), t.y())).await;
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for f in &features {
            if prop(f, "cluster").is_none() {
                // A lone point: its own category.
                let c = text(f, "Crime type").expect("a lone point's category");
                *got.entry(c).or_insert(0) += 1;
                continue;
            }
            clusters_seen += 1;
            let mix: BTreeMap<String, u64> = f
                .properties
                .as_ref()
                .unwrap()
                .keys()
                .filter_map(|k| k.strip_prefix("count:"))
                .map(|c| (c.to_owned(), uint(f, &format!("count:{c}")).unwrap()))
                .collect();
            let n = uint(f, "point_count").expect("point_count");
            assert_eq!(mix.values().sum::<u64>(), n, "z{z}: mix of {f:?}");
            let top = mix
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(k, _)| k.clone());
            assert_eq!(text(f, "cat_top"), top, "z{z}: {f:?}");
            assert_eq!(text(f, "Crime type"), top, "z{z}: {f:?}");
            for (c, k) in mix {
                *got.entry(c).or_insert(0) += k;
            }
        }
        assert_eq!(got, brute, "z{z}: categories in tile {t:?}");
    }
    assert!(clusters_seen >= 2, "the test saw real clusters");
}

/// Every property key of the tiles, by layer, over the tiles at `zooms` that hold the
/// dataset's points (the tiles of each real position of the fixture).
async fn keys_in_tiles(s: &Server, id: &str, query: &str, zooms: &[u8]) -> Vec<String> {
    let (h, rows) = read_csv(&fixture("uk-crime-sample.csv"));
    let (lon, lat) = (col(&h, "Longitude"), col(&h, "Latitude"));
    let mut tiles = std::collections::BTreeSet::new();
    for r in rows.iter().filter(|r| !r[lon].is_empty()) {
        let (x, y): (f64, f64) = (r[lon].parse().unwrap(), r[lat].parse().unwrap());
        for &z in zooms {
            let t = tile_of(x, y, z).unwrap();
            tiles.insert((z, t.x(), t.y()));
        }
    }
    let mut keys = std::collections::BTreeSet::new();
    for (z, x, y) in tiles {
        for f in tile(s, &format!("/tiles/{id}/{z}/{x}/{y}.mvt{query}")).await {
            keys.extend(f.properties.unwrap_or_default().into_keys());
        }
    }
    keys.into_iter().collect()
}

fn listed(tj: &serde_json::Value) -> Vec<String> {
    tj["vector_layers"][0]["fields"]
        .as_object()
        .expect("fields")
        .keys()
        .cloned()
        .collect()
}

/// TileJSON lists the properties the tiles really carry: every key of every tile is
/// listed, and none of the dataset's own fields is listed unless tiles carry it.
#[tokio::test]
async fn tilejson_lists_what_the_tiles_carry() {
    let s = Server::start().await;
    let mut req = fixture_request("uk", "uk-crime-sample.csv");
    req.meta.category = Some("Crime type".into());
    s.import(&req);
    let tj = s.json("/tiles/uk").await;
    let fields = listed(&tj);
    let keys = keys_in_tiles(&s, "uk", "", &[0, 4, 8, 12, 16]).await;
    for k in &keys {
        assert!(
            fields.contains(k),
            "tiles carry `{k}`, TileJSON omits it: {fields:?}"
        );
    }
    let info = s.data.info("uk").unwrap();
    for f in &info.fields {
        assert_eq!(
            fields.contains(&f.name),
            keys.contains(&f.name),
            "field `{}`: listed {} but in tiles {}",
            f.name,
            fields.contains(&f.name),
            keys.contains(&f.name)
        );
    }
    assert!(keys.contains(&"Crime type".to_owned()), "{keys:?}");
    assert!(!fields.contains(&"LSOA name".to_owned()), "{fields:?}");
}

/// `properties=` adds fields to point tiles (and TileJSON, and its tile URL); an unknown
/// field is a 400 naming the parameter. The manifest's `tile_fields` does the same.
#[tokio::test]
async fn extra_tile_properties_by_query_and_manifest() {
    let s = Server::start().await;
    let mut req = fixture_request("uk", "uk-crime-sample.csv");
    req.meta.category = Some("Crime type".into());
    s.import(&req);
    let q = "?properties=LSOA%20name,Location";
    let tj = s.json(&format!("/tiles/uk{q}")).await;
    let fields = listed(&tj);
    for k in ["LSOA name", "Location"] {
        assert!(fields.contains(&k.to_owned()), "{fields:?}");
    }
    let url = tj["tiles"][0].as_str().unwrap();
    assert!(url.contains("properties=LSOA"), "{url}");
    let keys = keys_in_tiles(&s, "uk", q, &[16]).await;
    for k in ["LSOA name", "Location"] {
        assert!(
            keys.contains(&k.to_owned()),
            "z16 tiles carry `{k}`: {keys:?}"
        );
    }
    assert!(
        !keys.contains(&"Last outcome category".to_owned()),
        "{keys:?}"
    );
    // Values are the feature's own: the first real row's tile holds its location text.
    let (h, rows) = read_csv(&fixture("uk-crime-sample.csv"));
    let r = &rows[0];
    let (x, y): (f64, f64) = (
        r[col(&h, "Longitude")].parse().unwrap(),
        r[col(&h, "Latitude")].parse().unwrap(),
    );
    let t = tile_of(x, y, 16).unwrap();
    let features = tile(&s, &format!("/tiles/uk/16/{}/{}.mvt{q}", t.x(), t.y())).await;
    let want = &r[col(&h, "Location")];
    assert!(
        features
            .iter()
            .any(|f| text(f, "Location").as_deref() == Some(want)),
        "{want} in {features:?}"
    );

    for bad in [
        "?properties=Nope",
        "?properties=Location&properties=Context",
    ] {
        let r = s
            .get(&format!("/tiles/uk/16/{}/{}.mvt{bad}", t.x(), t.y()))
            .await;
        assert_eq!(r.status(), 400, "{bad}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["parameter"], "properties", "{bad}: {body}");
        let r = s.get(&format!("/tiles/uk{bad}")).await;
        assert_eq!(r.status(), 400, "TileJSON {bad}");
    }

    // The manifest key, stored with the dataset.
    let s2 = Server::start().await;
    let mut req = fixture_request("uk", "uk-crime-sample.csv");
    req.meta.display.tile_fields = vec!["Location".into()];
    s2.import(&req);
    assert!(listed(&s2.json("/tiles/uk").await).contains(&"Location".to_owned()));
    let keys = keys_in_tiles(&s2, "uk", "", &[16]).await;
    assert!(keys.contains(&"Location".to_owned()), "{keys:?}");
}

/// The map page says what the data is (description, source link, licence), links to its
/// API page, and tells map.js how to show features: the manifest's title and popup
/// fields, the time fields' types and zone, the legend's "Other" count.
#[tokio::test]
async fn map_page_shows_the_source_and_how_to_show_features() {
    let s = Server::start().await;
    let mut req = fixture_request("uk", "uk-crime-sample.csv");
    req.meta.category = Some("Crime type".into());
    req.meta.description = "Crimes reported near Bristol.".into();
    req.meta.source = "https://data.police.uk/data/".into();
    req.meta.attribution = "data.police.uk".into();
    req.meta.licence = "Open Government Licence v3.0".into();
    req.meta.display.title_field = Some("Location".into());
    req.meta.display.popup_fields = vec!["Crime type".into(), "Month".into(), "Nope".into()];
    s.import(&req);
    let page = s.get("/maps/uk").await.text().await.unwrap();
    for want in [
        "Crimes reported near Bristol.",
        r#"href="https://data.police.uk/data/""#,
        "Open Government Licence v3.0",
        &format!(r#"href="{}/collections/uk?f=html""#, s.base),
    ] {
        assert!(page.contains(want), "map page lacks {want}");
    }
    let start = page.find("id=\"tessera-config\">").unwrap() + "id=\"tessera-config\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let config: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    let d = &config["display"];
    assert_eq!(d["titleField"], "Location");
    assert_eq!(
        d["popupFields"],
        serde_json::json!(["Crime type", "Month"]),
        "unknown names dropped"
    );
    assert_eq!(d["timeFields"]["Month"], "month", "{d}");
    let cat = &config["category"];
    let top: u64 = cat["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    let info = s.data.info("uk").unwrap();
    assert_eq!(
        cat["other"]["count"].as_u64().unwrap(),
        info.feature_count - top,
        "{cat}"
    );
    let colours: Vec<&str> = cat["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["color"].as_str().unwrap())
        .collect();
    let mut unique = colours.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        colours.len(),
        "repeated legend colours: {colours:?}"
    );
}
