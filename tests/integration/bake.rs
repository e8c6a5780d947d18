//! `tessera bake`, read back by readers nobody here wrote: the `pmtiles` PyPI package,
//! GDAL from the `pyogrio` wheel, and SQLite; tiles compared with what the server serves.

use crate::support::*;
use mvt_reader::feature::{Feature, Value};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Python of the test venv (`make pyenv`); `None` (with a notice) when it is missing,
/// a failure when `CI` is set.
fn python(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("TESSERA_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python"),
        PathBuf::from,
    );
    let found = Command::new(&path)
        .args(["-c", "import pmtiles, pyogrio"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} cannot import pmtiles and pyogrio but CI is set: run `make pyenv`",
            path.display()
        );
        eprintln!("SKIPPED {test}: no Python venv with pmtiles and pyogrio (make pyenv)");
        return None;
    }
    Some(path)
}

/// Runs tests/python/archive.py and parses its JSON.
fn read_archive(py: &Path, args: &[&str]) -> Json {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/archive.py");
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "archive.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("archive.py prints JSON")
}

fn tessera(db: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args)
        .arg("--db")
        .arg(db)
        .env_remove("TESSERA_DB")
        .env_remove("TESSERA_TILE_BUFFER")
        .env_remove("TESSERA_CLUSTER_ZOOM")
        .env("RUST_LOG", "tessera=warn")
        .env("NO_COLOR", "1");
    cmd
}

fn run_ok(db: &str, args: &[&str]) -> String {
    let out = tessera(db, args).output().expect("run tessera");
    assert!(
        out.status.success(),
        "tessera {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn run_fails(db: &str, args: &[&str]) -> String {
    let out: Output = tessera(db, args).output().expect("run tessera");
    assert!(
        !out.status.success(),
        "tessera {args:?} should fail: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The server's catalog (file or URL), into which the real binary imports.
fn db_of(s: &Server) -> String {
    s.data.db_arg()
}

fn import(db: &str, file: &str, id: &str, extra: &[&str]) {
    let path = fixture(file);
    let mut args = vec!["import", path.to_str().unwrap(), "--dataset", id];
    args.extend_from_slice(extra);
    run_ok(db, &args);
}

/// A stored tile: z, x, y and its bytes (as stored: gzip).
type Tile = (u8, u32, u32, Vec<u8>);

fn tiles_of(doc: &Json) -> Vec<Tile> {
    doc["tiles"]
        .as_array()
        .expect("tiles")
        .iter()
        .map(|t| {
            let hex = t[3].as_str().unwrap().as_bytes();
            let data = hex
                .chunks(2)
                .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
                .collect();
            (
                t[0].as_u64().unwrap() as u8,
                t[1].as_u64().unwrap() as u32,
                t[2].as_u64().unwrap() as u32,
                data,
            )
        })
        .collect()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    assert!(b.starts_with(&[0x1f, 0x8b]), "stored tiles are gzip");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

fn per_zoom(tiles: &[Tile]) -> BTreeMap<u8, u64> {
    let mut m = BTreeMap::new();
    for t in tiles {
        *m.entry(t.0).or_insert(0) += 1;
    }
    m
}

/// Features of the layer `name` of a raw tile, decoded with mvt-reader.
fn layer_features(raw: &[u8], name: &str) -> Vec<Feature> {
    let reader = mvt_reader::Reader::new(raw.to_vec()).expect("mvt-reader reads the tile");
    let meta = reader.get_layer_metadata().expect("layers");
    meta.into_iter()
        .find(|l| l.name == name)
        .map(|l| reader.get_features(l.layer_index).expect("features"))
        .unwrap_or_default()
}

/// Points a tile holds inside its own extent (the buffer belongs to the neighbours):
/// `point_count` for a cluster, 1 for a single point.
fn points_inside(raw: &[u8], name: &str) -> u64 {
    let mut n = 0;
    for f in layer_features(raw, name) {
        let (x, y) = match &f.geometry {
            geo_types::Geometry::Point(p) => (p.x(), p.y()),
            geo_types::Geometry::MultiPoint(m) if m.0.len() == 1 => (m.0[0].x(), m.0[0].y()),
            _ => continue,
        };
        if !(0.0..4096.0).contains(&x) || !(0.0..4096.0).contains(&y) {
            continue;
        }
        let props = f.properties.as_ref();
        let cluster = props.and_then(|p| p.get("cluster")) == Some(&Value::Bool(true));
        n += if cluster {
            match props.and_then(|p| p.get("point_count")) {
                Some(Value::UInt(u)) => *u,
                Some(Value::Int(i) | Value::SInt(i)) => *i as u64,
                other => panic!("cluster without point_count: {other:?}"),
            }
        } else {
            1
        };
    }
    n
}

/// Sum of the points of every tile at every zoom must equal `expected`.
fn assert_conserved(tiles: &[Tile], layer: &str, expected: u64) {
    let mut sums: BTreeMap<u8, u64> = BTreeMap::new();
    for (z, _, _, gz) in tiles {
        *sums.entry(*z).or_insert(0) += points_inside(&gunzip(gz), layer);
    }
    assert!(!sums.is_empty());
    for (z, n) in sums {
        assert_eq!(n, expected, "layer {layer}: points at z{z}");
    }
}

/// Each stored tile, decompressed, equals the server's tile for the same query; and
/// the server has nothing at the neighbours of stored tiles that the archive lacks.
async fn assert_served_equal(s: &Server, ids: &str, query: &str, tiles: &[Tile]) {
    let have: HashSet<(u8, u32, u32)> = tiles.iter().map(|t| (t.0, t.1, t.2)).collect();
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    for (z, x, y, gz) in tiles {
        let r = s.get(&format!("/tiles/{ids}/{z}/{x}/{y}.mvt{q}")).await;
        assert_eq!(r.status(), 200, "{z}/{x}/{y}");
        assert!(r.headers().get("content-encoding").is_none());
        let served = r.bytes().await.unwrap();
        assert_eq!(
            gunzip(gz),
            served.as_ref(),
            "tile {z}/{x}/{y} differs from the served one"
        );
    }
    let mut missing = Vec::new();
    for (z, x, y, _) in tiles {
        let side = 1i64 << z;
        for (dx, dy) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
            let (nx, ny) = (i64::from(*x) + dx, i64::from(*y) + dy);
            if (0..side).contains(&nx) && (0..side).contains(&ny) {
                let n = (*z, nx as u32, ny as u32);
                if !have.contains(&n) {
                    missing.push(n);
                }
            }
        }
    }
    missing.sort_unstable();
    missing.dedup();
    assert!(!missing.is_empty());
    for (z, x, y) in missing.iter().take(300) {
        let r = s.get(&format!("/tiles/{ids}/{z}/{x}/{y}.mvt{q}")).await;
        assert_eq!(r.status(), 204, "{z}/{x}/{y} is served but was not baked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bake_pmtiles_equals_the_served_tiles() {
    let Some(py) = python("bake_pmtiles_equals_the_served_tiles") else {
        return;
    };
    let s = Server::start().await;
    let db = db_of(&s);
    import(
        &db,
        "uk-crime-sample.csv",
        "uk",
        &["--category", "Crime type", "--attribution", "Police UK"],
    );
    let out = s.data.dir.path().join("uk.pmtiles");
    let report = run_ok(
        &db,
        &[
            "bake",
            "uk",
            "--out",
            out.to_str().unwrap(),
            "--maxzoom",
            "12",
        ],
    );
    assert!(report.contains("tiles/s"), "{report}");

    let doc = read_archive(&py, &["pmtiles", out.to_str().unwrap()]);
    let h = &doc["header"];
    assert_eq!(h["tile_type"], "MVT");
    assert_eq!(h["tile_compression"], "GZIP");
    assert_eq!(h["clustered"], true);
    assert_eq!(
        (h["min_zoom"].as_u64(), h["max_zoom"].as_u64()),
        (Some(0), Some(12))
    );
    let tiles = tiles_of(&doc);
    assert_eq!(
        h["addressed_tiles_count"].as_u64(),
        Some(tiles.len() as u64)
    );
    let zooms = per_zoom(&tiles);
    assert_eq!(
        zooms.keys().copied().collect::<Vec<_>>(),
        (0..=12).collect::<Vec<_>>()
    );
    assert_eq!(zooms[&0], 1);
    for (z, n) in &zooms {
        assert!(
            report.contains(&format!("z{z:<2} {n:>9} tiles")),
            "z{z}: {n} in {report}"
        );
    }

    let m = &doc["metadata"];
    assert_eq!(m["tilejson"], "3.0.0");
    assert_eq!(m["attribution"], "Police UK");
    assert_eq!(
        (m["minzoom"].as_u64(), m["maxzoom"].as_u64()),
        (Some(0), Some(12))
    );
    assert!(m.get("tiles").is_none(), "an archive has no tile URLs: {m}");
    let layer = &m["vector_layers"][0];
    assert_eq!(layer["id"], "uk");
    assert!(layer["fields"].get("Crime type").is_some(), "{layer}");
    let served = s.json("/tiles/uk").await;
    assert_eq!(
        m["vector_layers"][0]["fields"],
        served["vector_layers"][0]["fields"]
    );
    assert_eq!(m["bounds"], served["bounds"]);
    assert_eq!(m["name"], served["name"]);

    let located = number_matched(&s.items("uk", &[("bbox", "-180,-90,180,90")]).await);
    assert_eq!(located, 176);
    assert_conserved(&tiles, "uk", located);
    assert_served_equal(&s, "uk", "", &tiles).await;

    // GDAL's PMTiles driver finds the layer and reads every feature of every tile.
    for z in ["0", "10", "12"] {
        let gdal = read_archive(&py, &["gdal", out.to_str().unwrap(), z]);
        assert_eq!(gdal["driver"], "PMTiles");
        assert_eq!(gdal["layers"], serde_json::json!(["uk"]));
        let n = features_at(&tiles, z, "uk");
        assert!(n > 0);
        assert_eq!(gdal["counts"]["uk"].as_u64(), Some(n), "z{z}: {gdal}");
    }
}

/// Features of layer `name` in the tiles of zoom `z`, buffers included (as GDAL counts).
fn features_at(tiles: &[Tile], z: &str, name: &str) -> u64 {
    let z: u8 = z.parse().unwrap();
    tiles
        .iter()
        .filter(|t| t.0 == z)
        .map(|t| layer_features(&gunzip(&t.3), name).len() as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bake_mbtiles_with_filters_and_two_layers() {
    let Some(py) = python("bake_mbtiles_with_filters_and_two_layers") else {
        return;
    };
    let s = Server::start().await;
    let db = db_of(&s);
    import(
        &db,
        "nyc-311-sample.csv",
        "nyc",
        &[
            "--category",
            "Complaint Type",
            "--timezone",
            "America/New_York",
        ],
    );
    import(
        &db,
        "manhattan-neighbourhoods.geojson",
        "hoods",
        &["--kind", "boundaries"],
    );
    let dir = s.data.dir.path();

    // Filters without bbox: every tile equals the served one for the same query.
    let out = dir.join("nyc.mbtiles");
    let outs = out.to_str().unwrap();
    run_ok(
        &db,
        &[
            "bake",
            "nyc,hoods",
            "--out",
            outs,
            "--maxzoom",
            "13",
            "--datetime",
            "2025-02",
        ],
    );
    let doc = read_archive(&py, &["mbtiles", outs]);
    let m = &doc["metadata"];
    assert_eq!(m["format"], "pbf");
    assert_eq!(
        (m["minzoom"].as_str(), m["maxzoom"].as_str()),
        (Some("0"), Some("13"))
    );
    for k in [
        "name",
        "bounds",
        "center",
        "json",
        "attribution",
        "description",
    ] {
        assert!(m.get(k).is_some(), "metadata row `{k}` missing: {m}");
    }
    let json: Json = serde_json::from_str(m["json"].as_str().unwrap()).unwrap();
    let ids: Vec<&str> = json["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    // The polygons' label layer (one point per polygon) is baked like the others.
    assert_eq!(ids, ["nyc", "hoods", "hoods_labels"]);
    let tiles = tiles_of(&doc);
    assert!(doc["images"].as_u64().unwrap() <= tiles.len() as u64);
    let feb = number_matched(
        &s.items(
            "nyc",
            &[("datetime", "2025-02"), ("bbox", "-180,-90,180,90")],
        )
        .await,
    );
    assert!(feb > 0 && feb < 94, "{feb}");
    assert_conserved(&tiles, "nyc", feb);
    assert_served_equal(&s, "nyc,hoods", "datetime=2025-02", &tiles).await;
    let gdal = read_archive(&py, &["gdal", outs, "13"]);
    assert_eq!(gdal["driver"], "MBTiles");
    let mut layers: Vec<&str> = gdal["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    layers.sort_unstable();
    assert_eq!(layers, ["hoods", "hoods_labels", "nyc"]);
    let n = features_at(&tiles, "13", "nyc");
    assert_eq!(gdal["counts"]["nyc"].as_u64(), Some(n), "{gdal}");

    // A bbox limits the tiles and the features, as `bbox=` does in /items.
    let bbox = "-74.0,40.7,-73.95,40.75";
    let cut = dir.join("cut.mbtiles");
    run_ok(
        &db,
        &[
            "bake",
            "nyc,hoods",
            "--out",
            cut.to_str().unwrap(),
            "--maxzoom",
            "13",
            "--bbox",
            bbox,
            "--where",
            "Complaint Type=Animal in a Park",
        ],
    );
    let doc = read_archive(&py, &["mbtiles", cut.to_str().unwrap()]);
    let tiles = tiles_of(&doc);
    let inside = number_matched(
        &s.items(
            "nyc",
            &[("bbox", bbox), ("Complaint Type", "Animal in a Park")],
        )
        .await,
    );
    assert!(inside > 0, "the fixture has such complaints in the box");
    assert_conserved(&tiles, "nyc", inside);
    let b: Vec<f64> = doc["metadata"]["bounds"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        b[0] >= -74.0 && b[2] <= -73.95 && b[1] >= 40.7 && b[3] <= 40.75,
        "{b:?}"
    );
    let hoods_in_box = number_matched(&s.items("hoods", &[("bbox", bbox)]).await);
    let mut fids: HashSet<String> = HashSet::new();
    for (_, _, _, gz) in &tiles {
        for f in layer_features(&gunzip(gz), "hoods") {
            if let Some(Value::String(id)) = f.properties.as_ref().and_then(|p| p.get("fid")) {
                fids.insert(id.clone());
            }
        }
    }
    assert_eq!(
        fids.len() as u64,
        hoods_in_box,
        "neighbourhoods meeting the box: {fids:?}"
    );
}

#[test]
fn bake_is_deterministic() {
    let data = TestCatalog::new();
    let (dir, db) = (&data.dir, data.db_arg());
    import(
        &db,
        "uk-crime-sample.csv",
        "uk",
        &["--category", "Crime type"],
    );
    import(&db, "roads-sample.ndjson", "roads", &["--kind", "lines"]);
    for ext in ["pmtiles", "mbtiles"] {
        let (a, b) = (
            dir.path().join(format!("a.{ext}")),
            dir.path().join(format!("b.{ext}")),
        );
        run_ok(
            &db,
            &[
                "bake",
                "uk,roads",
                "--out",
                a.to_str().unwrap(),
                "--threads",
                "3",
            ],
        );
        run_ok(
            &db,
            &[
                "bake",
                "uk,roads",
                "--out",
                b.to_str().unwrap(),
                "--threads",
                "1",
            ],
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644, "{ext}: archives are readable by all");
        }
        let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(a.len() > 1000);
        assert!(a == b, "{ext}: two bakes differ");
    }
}

/// Bad arguments fail with a message naming what is wrong, and never leave a file or
/// touch the one already there.
#[test]
fn bake_errors_name_the_problem_and_keep_the_old_file() {
    let data = TestCatalog::new();
    let (dir, db) = (&data.dir, data.db_arg());
    import(
        &db,
        "uk-crime-sample.csv",
        "uk",
        &["--category", "Crime type"],
    );
    let out = dir.path().join("uk.pmtiles");
    std::fs::write(&out, b"the previous archive").unwrap();
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["bake", "nope", "--out", o], "no dataset `nope`"),
        (
            &["bake", "uk", "--out", o, "--where", "Colour=red"],
            "`Colour`",
        ),
        (
            &["bake", "uk", "--out", o, "--where", "Colour"],
            "--where `Colour` is not FIELD=VALUE",
        ),
        (&["bake", "uk", "--out", o, "--bbox", "1,2,3"], "`bbox`"),
        (
            &["bake", "uk", "--out", o, "--datetime", "yesterday"],
            "`datetime`",
        ),
        (
            &["bake", "uk", "--out", o, "--minzoom", "5", "--maxzoom", "3"],
            "minzoom",
        ),
        (
            &["bake", "uk", "--out", "uk.tiles"],
            "uk.tiles: cannot tell the format",
        ),
    ];
    for (args, want) in cases {
        let err = run_fails(&db, args);
        assert!(err.contains(want), "{args:?}: `{want}` not in {err}");
    }
    let missing = dir.path().join("no/such/dir/uk.pmtiles");
    let err = run_fails(&db, &["bake", "uk", "--out", missing.to_str().unwrap()]);
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous archive");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().ends_with(".part")),
        "{left:?}"
    );
}

/// A bake killed half-way leaves the previous archive exactly as it was.
#[test]
fn killed_bake_keeps_the_old_file() {
    let data = TestCatalog::new();
    let (dir, db) = (&data.dir, data.db_arg());
    // 20 000 points spread over England: deep zooms hold many tiles, so the bake takes a while.
    let mut csv = String::from("id,lon,lat\n");
    let mut seed = 12345u64;
    for i in 0..20_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let lon = -5.0 + (seed >> 40) as f64 / (1u64 << 24) as f64 * 6.0;
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let lat = 50.5 + (seed >> 40) as f64 / (1u64 << 24) as f64 * 4.0;
        csv.push_str(&format!("{i},{lon:.6},{lat:.6}\n"));
    }
    let input = dir.path().join("points.csv");
    std::fs::write(&input, csv).unwrap();
    run_ok(
        &db,
        &["import", input.to_str().unwrap(), "--dataset", "pts"],
    );
    let out = dir.path().join("pts.pmtiles");
    std::fs::write(&out, b"the previous archive").unwrap();
    let mut child = tessera(
        &db,
        &[
            "bake",
            "pts",
            "--out",
            out.to_str().unwrap(),
            "--maxzoom",
            "20",
            "--threads",
            "1",
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // Wait until tiles are being written into the temporary file, then kill.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let part = loop {
        let part = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".part"));
        if let Some(p) = part.filter(|p| std::fs::metadata(p).map_or(0, |m| m.len()) > 100_000) {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no growing temporary file"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the bake ended before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous archive");
    assert_ne!(part, out);
}
