//! Hostile and unusual import files, generated here and imported with the real `tessera`
//! binary over a catalog that already serves a good version of the same dataset. Each
//! either fails with exit 1 and a message naming the file (and line), leaving the previous
//! version whole and served, or imports what it honestly can with the losses counted.

use crate::support::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tessera::model::DatasetId;

const GOOD: &str = "id,name,lon,lat\n1,alpha,-2.6,51.45\n2,beta,-2.61,51.46\n3,gamma,-2.62,51.47\n";

/// A served catalog holding the good three-row version of `ds`.
struct Setup {
    s: Server,
    /// The binary's `--db`: the SQLite file or the PostgreSQL URL of this pass.
    db: String,
    version: i64,
}

async fn setup() -> Setup {
    let s = Server::start().await;
    let good = s.data.write("good.csv", GOOD);
    let version = s.import(&request("ds", &[good])).version;
    let db = s.data.db_arg();
    Setup { s, db, version }
}

fn tessera(db: &str, file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("import")
        .arg(file)
        .args(["--dataset", "ds"])
        .args(extra)
        .arg("--db")
        .arg(db)
        .env_remove("TESSERA_DB")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("RUST_LOG", "tessera=warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("run tessera")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 1 (an error, not a panic's 101) naming the file, and the line when given.
fn refused(out: &Output, file: &Path, line: Option<u64>) -> String {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a clean failure: stdout {} stderr {err}",
        text(&out.stdout)
    );
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "names the file: {err}");
    if let Some(l) = line {
        assert!(err.contains(&format!("line {l}:")), "names line {l}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    eprintln!("refused {name}: {}", err.lines().last().unwrap_or(""));
    err
}

fn imported(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "expected an import: stdout {stdout} stderr {}",
        text(&out.stderr)
    );
    eprintln!("imported: {}", stdout.lines().next().unwrap_or(""));
    stdout
}

/// SQLite's own check of the file; a PostgreSQL database has no file that a failed
/// import could leave half-written (its transactions roll back whole).
fn integrity_ok(data: &TestCatalog) {
    if data.backend() != Backend::Sqlite {
        return;
    }
    let conn = rusqlite::Connection::open(data.db_arg()).unwrap();
    let r: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok");
}

/// The catalog as a new process sees it.
fn info(data: &TestCatalog) -> tessera::model::DatasetInfo {
    data.reopen()
        .snapshot()
        .unwrap()
        .dataset(&DatasetId::parse("ds").unwrap())
        .unwrap()
        .expect("dataset ds")
}

/// The failed import changed nothing: same version on disk, the same rows served.
async fn previous_served(t: &Setup) {
    integrity_ok(&t.s.data);
    let on_disk = info(&t.s.data);
    assert_eq!(on_disk.version, t.version, "the previous version stays");
    let fc = t.s.items("ds", &[]).await;
    assert_eq!(number_matched(&fc), 3);
    let names: Vec<&str> = features(&fc)
        .iter()
        .filter_map(|f| f["properties"]["name"].as_str())
        .collect();
    assert!(names.contains(&"alpha"), "{names:?}");
}

fn feature(i: usize) -> String {
    let (x, y) = (-2.5 - i as f64 * 0.001, 51.4 + i as f64 * 0.001);
    format!(
        r#"{{"type":"Feature","id":{i},"properties":{{"name":"f{i}","n":{i}}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}"#
    )
}

/// A FeatureCollection with one feature per line: feature `i` (1-based) is on line `i + 1`.
fn collection(features: &[String]) -> String {
    format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}\n",
        features.join(",\n")
    )
}

fn hundred() -> Vec<String> {
    (1..=100).map(feature).collect()
}

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(p).unwrap();
        out.extend(e.finish().unwrap());
    }
    out
}

#[tokio::test]
async fn geojson_max_errors_resyncs_after_bad_feature_regression() {
    let t = setup().await;
    let mut fs = hundred();
    // Balanced braces, invalid JSON inside: the reader must resume at feature 51.
    fs[49] = r#"{"type":"Feature","properties":{"name":tru},"geometry":null}"#.into();
    let file = t.s.data.write("bad50.geojson", collection(&fs));
    let err = refused(&tessera(&t.db, &file, &[]), &file, Some(51));
    assert!(err.contains("feature 50"), "{err}");
    previous_served(&t).await;

    let out = imported(&tessera(&t.db, &file, &["--max-errors", "5"]));
    assert!(out.contains("read 99 rows, imported 99"), "{out}");
    assert!(out.contains("skipped 1 unreadable rows"), "{out}");
    assert!(out.contains("bad50.geojson: line 51"), "{out}");
    assert_eq!(info(&t.s.data).feature_count, 99);
    integrity_ok(&t.s.data);

    // Not a Feature, and properties of the wrong type: row errors that resync too.
    fs[49] = r#"{"type":"Feature","properties":5,"geometry":null}"#.into();
    fs[59] = r#"[1, 2, {"x": "]"}]"#.into();
    let file = t.s.data.write("bad-types.geojson", collection(&fs));
    let out = imported(&tessera(&t.db, &file, &["--max-errors", "5"]));
    assert!(out.contains("read 98 rows, imported 98"), "{out}");
}

#[tokio::test]
async fn truncated_feature_collection_is_one_error_regression() {
    let t = setup().await;
    let full = collection(&hundred());
    let cut = full.find("\"f60\"").unwrap();
    let file = t.s.data.write("cut.geojson", &full[..cut]);
    let out = tessera(&t.db, &file, &["--max-errors", "1000000"]);
    let err = refused(&out, &file, Some(61));
    assert!(err.contains("truncated"), "{err}");
    assert!(
        err.len() < 2_000,
        "one error, not a flood: {} bytes",
        err.len()
    );
    previous_served(&t).await;

    // Cut between features, and cut after the array: the same.
    let cut = full.find("\n{\"type\":\"Feature\",\"id\":60,").unwrap();
    let file = t.s.data.write("cut-between.geojson", &full[..cut]);
    let err = refused(&tessera(&t.db, &file, &["--max-errors", "9"]), &file, None);
    assert!(err.contains("after 59 features"), "{err}");
    let file = t.s.data.write("cut-end.geojson", &full[..full.len() - 3]);
    refused(&tessera(&t.db, &file, &["--max-errors", "9"]), &file, None);
    // A newline-delimited sequence whose last line is cut.
    let seq: String = (1..=10).map(|i| feature(i) + "\n").collect();
    let file = t.s.data.write("cut.ndjson", &seq[..seq.len() - 20]);
    refused(
        &tessera(&t.db, &file, &["--max-errors", "9"]),
        &file,
        Some(10),
    );
    previous_served(&t).await;
}

#[tokio::test]
async fn csv_unclosed_quote_fails_naming_the_opening_line_regression() {
    let t = setup().await;
    let body = "id,name,lon,lat\n1,a,-2.6,51.45\n2,b,-2.6,51.45\n3,\"open,-2.6,51.45\n4,d,-2.6,51.45\n5,e,-2.6,51.45\n";
    let file = t.s.data.write("quote.csv", body);
    let err = refused(
        &tessera(&t.db, &file, &["--max-errors", "99"]),
        &file,
        Some(4),
    );
    assert!(err.contains("unclosed quote"), "{err}");
    previous_served(&t).await;

    // Across a huge span: a quote that swallows 2 MiB of rows stops at the limit.
    let rows: String = (0..80_000).map(|i| format!("{i},x,-2.6,51.45\n")).collect();
    let body = format!("id,name,lon,lat\n1,\"open,-2.6,51.45\n{rows}\"\n");
    let file = t.s.data.write("quote-span.csv", body);
    let err = refused(&tessera(&t.db, &file, &[]), &file, Some(2));
    assert!(err.contains("unclosed quote"), "{err}");
    previous_served(&t).await;
}

fn rows_csv(n: usize) -> String {
    let mut s = String::from("id,name,lon,lat\n");
    for i in 0..n {
        s.push_str(&format!("{i},row {i},{},51.45\n", -2.6 + i as f64 * 1e-5));
    }
    s
}

#[tokio::test]
async fn truncated_csv_gz_with_max_errors_keeps_the_previous_version_regression() {
    let s = Server::start().await;
    let full = gzip(&[rows_csv(5_000).as_bytes()]);
    let good = s.data.write("good.csv.gz", &full);
    let version = s.import(&request("ds", &[good])).version;
    let db = s.data.db_arg();
    let file = s.data.write("cut.csv.gz", &full[..full.len() / 2]);
    refused(
        &tessera(&db, &file, &["--max-errors", "100000"]),
        &file,
        None,
    );
    integrity_ok(&s.data);
    assert_eq!(info(&s.data).version, version);
    assert_eq!(info(&s.data).feature_count, 5_000);
    assert_eq!(number_matched(&s.items("ds", &[]).await), 5_000);

    // Corrupt bytes inside the stream: also an error, never skipped rows.
    let mut bad = full.clone();
    let mid = bad.len() / 2;
    bad[mid..mid + 64].fill(0x55);
    let file = s.data.write("corrupt.csv.gz", &bad);
    refused(
        &tessera(&db, &file, &["--max-errors", "100000"]),
        &file,
        None,
    );
    assert_eq!(info(&s.data).version, version);
}

#[tokio::test]
async fn concatenated_gzip_members_are_read_whole() {
    let t = setup().await;
    let all = rows_csv(5_000);
    let split = all.find("2500,row").unwrap();
    let gz = gzip(&[&all.as_bytes()[..split], &all.as_bytes()[split..]]);
    let file = t.s.data.write("members.csv.gz", gz);
    let out = imported(&tessera(&t.db, &file, &[]));
    assert!(out.contains("read 5000 rows, imported 5000"), "{out}");
    integrity_ok(&t.s.data);
}

#[tokio::test]
async fn sniffing_reads_past_64_kib_of_whitespace_regression() {
    let t = setup().await;
    let body = format!("{}{}", " \n".repeat(60_000), collection(&hundred()));
    let file = t.s.data.write("spaced.geojson", body);
    let out = imported(&tessera(&t.db, &file, &[]));
    assert!(out.contains("read 100 rows, imported 100"), "{out}");
    assert!(out.contains("GeoJSON FeatureCollection"), "{out}");
    // A UTF-8 byte order mark and whitespace before a CSV header.
    let file = t.s.data.write(
        "spaced.csv",
        format!("\u{feff}{}{GOOD}", "\n".repeat(70_000)),
    );
    let out = imported(&tessera(&t.db, &file, &[]));
    assert!(out.contains("read 3 rows, imported 3"), "{out}");
    let names: Vec<String> = info(&t.s.data).fields.into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["id", "name", "lon", "lat"]);
}

#[tokio::test]
async fn feature_collection_with_a_late_type_is_a_collection_regression() {
    let t = setup().await;
    let pad = "p".repeat(2_000);
    let fs: Vec<String> = (1..=100)
        .map(|i| feature(i).replace("\"n\":", &format!("\"pad\":\"{pad}\",\"n\":")))
        .collect();
    // Features first (well past 64 KiB, all on one line), `type` last.
    let body = format!(
        "{{\"features\":[{}],\"type\":\"FeatureCollection\"}}",
        fs.join(",")
    );
    let file = t.s.data.write("late-type.geojson", body);
    let out = imported(&tessera(&t.db, &file, &[]));
    assert!(out.contains("read 100 rows, imported 100"), "{out}");
}

#[tokio::test]
async fn zero_rows_from_a_non_empty_file_never_replace_the_data_regression() {
    let t = setup().await;
    for (name, body) in [
        ("header-only.csv", "id,name,lon,lat\n".to_owned()),
        (
            "empty.geojson",
            "{\"type\":\"FeatureCollection\",\"features\":[]}".to_owned(),
        ),
        ("blank.csv", " \n".repeat(50_000)),
        ("all-ragged.csv", "id,name\n1,a,x\n2,b,y\n".to_owned()),
    ] {
        let file = t.s.data.write(name, body);
        refused(&tessera(&t.db, &file, &["--max-errors", "10"]), &file, None);
        previous_served(&t).await;
    }
}

/// Refused, not decoded: portal exports are UTF-8 or Latin-1, and decoding UTF-16 well
/// needs `encoding_rs`, a large dependency for a rare input that `iconv` converts.
#[tokio::test]
async fn utf16_is_refused_clearly_regression() {
    let t = setup().await;
    let utf16 = |bom: &[u8], be: bool| -> Vec<u8> {
        let mut out = bom.to_vec();
        for u in GOOD.encode_utf16() {
            out.extend(if be { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        out
    };
    for (name, bytes) in [
        ("le.csv", utf16(&[0xFF, 0xFE], false)),
        ("be.csv", utf16(&[0xFE, 0xFF], true)),
        ("no-bom.csv", utf16(&[], false)),
    ] {
        let file = t.s.data.write(name, bytes);
        let err = refused(&tessera(&t.db, &file, &[]), &file, Some(1));
        assert!(err.contains("UTF-16"), "{err}");
        previous_served(&t).await;
    }
}

/// Runs the import and samples the child's peak resident size (VmHWM, KiB) while it runs.
fn tessera_peak_rss(db: &str, file: &Path, stderr: &Path) -> (Option<i32>, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("import")
        .arg(file)
        .args(["--dataset", "ds", "--db"])
        .arg(db)
        .env_remove("TESSERA_DB")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("RUST_LOG", "tessera=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut peak = 0;
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("import did not finish in 300 s");
        }
        let hwm = std::fs::read_to_string(&status).unwrap_or_default();
        if let Some(kib) = hwm
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    (code, std::fs::read_to_string(stderr).unwrap(), peak)
}

#[tokio::test]
async fn one_gib_field_in_a_small_gzip_stays_bounded_regression() {
    let t = setup().await;
    let path = t.s.data.dir.path().join("huge-field.csv.gz");
    // Streamed into the encoder: the test never holds the field either.
    let mut e = GzEncoder::new(std::fs::File::create(&path).unwrap(), Compression::best());
    e.write_all(b"id,name,lon,lat\n1,a,-2.6,51.45\n2,").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..1024 {
        e.write_all(&chunk).unwrap();
    }
    e.write_all(b",-2.6,51.45\n").unwrap();
    e.finish().unwrap();
    let gz_size = std::fs::metadata(&path).unwrap().len();
    assert!(gz_size < 2 << 20, "small gzip: {gz_size}");
    let (code, err, peak_kib) = tessera_peak_rss(&t.db, &path, &t.s.data.dir.path().join("e"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("huge-field.csv.gz") && err.contains("line 3:"),
        "{err}"
    );
    assert!(err.contains("larger than 1 MiB"), "{err}");
    eprintln!("refused huge-field.csv.gz ({gz_size} bytes) at peak RSS {peak_kib} KiB");
    assert!(peak_kib < 1 << 20, "peak RSS {peak_kib} KiB");
    previous_served(&t).await;

    // Too many columns in the header, or in one row.
    let wide: Vec<String> = (0..10_001).map(|i| format!("c{i}")).collect();
    let file = t.s.data.write("wide.csv", wide.join(",") + "\n1\n");
    let err = refused(&tessera(&t.db, &file, &[]), &file, Some(1));
    assert!(err.contains("columns"), "{err}");
    let row = vec!["1"; 20_000].join(",");
    let file = t.s.data.write("wide-row.csv", format!("{GOOD}{row}\n"));
    let err = refused(
        &tessera(&t.db, &file, &["--max-errors", "9"]),
        &file,
        Some(5),
    );
    assert!(err.contains("more than 10000 fields"), "{err}");
    let wide: Vec<String> = (0..2_500).map(|i| format!("c{i}")).collect();
    let file =
        t.s.data
            .write("wider-than-sqlite.csv", wide.join(",") + "\n1\n");
    let err = refused(&tessera(&t.db, &file, &[]), &file, Some(1));
    assert!(err.contains("at most 1990"), "{err}");
    previous_served(&t).await;
}

#[tokio::test]
async fn geojson_deep_nesting_huge_features_and_many_properties_are_clear_regression() {
    let t = setup().await;
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut fs: Vec<String> = (1..=3).map(feature).collect();
    fs[1] = format!(r#"{{"type":"Feature","properties":{{"deep":{deep}}},"geometry":null}}"#);
    let file = t.s.data.write("deep.geojson", collection(&fs));
    let err = refused(&tessera(&t.db, &file, &[]), &file, Some(3));
    assert!(err.contains("nested more than 128 levels"), "{err}");
    previous_served(&t).await;
    let deep_file = file;

    // Deep nesting inside the geometry, in a sequence.
    let geom = format!(r#"{{"type":"Feature","properties":{{}},"geometry":{deep}}}"#);
    let file =
        t.s.data
            .write("deep.ndjson", format!("{}\n{geom}\n", feature(1)));
    refused(&tessera(&t.db, &file, &[]), &file, Some(2));

    // One feature larger than the 64 MiB limit: refused by size, not held whole.
    let big = format!(
        r#"{{"type":"Feature","properties":{{"blob":"{}"}},"geometry":null}}"#,
        "b".repeat(65 << 20)
    );
    let file =
        t.s.data
            .write("big-feature.geojson", collection(&[feature(1), big]));
    let err = refused(&tessera(&t.db, &file, &[]), &file, Some(3));
    assert!(err.contains("larger than 64 MiB"), "{err}");

    // 3,000 properties: a clear cap, since SQLite tables hold at most 2,000 columns.
    let props: Vec<String> = (0..3_000).map(|i| format!("\"p{i}\":{i}")).collect();
    let wide = format!(
        r#"{{"type":"Feature","properties":{{{}}},"geometry":{{"type":"Point","coordinates":[1,2]}}}}"#,
        props.join(",")
    );
    let file = t.s.data.write("wide.geojson", collection(&[wide]));
    let err = refused(&tessera(&t.db, &file, &[]), &file, Some(2));
    assert!(err.contains("at most 1990"), "{err}");
    previous_served(&t).await;

    // With room for one error, the deep feature is skipped and counted.
    let out = imported(&tessera(&t.db, &deep_file, &["--max-errors", "1"]));
    assert!(out.contains("read 2 rows, imported 2"), "{out}");
}

#[tokio::test]
async fn nan_inf_and_1e400_coordinates_are_kept_and_counted_regression() {
    let t = setup().await;
    let body =
        "id,name,lon,lat\n1,a,NaN,51\n2,b,inf,51\n3,c,-2.6,-inf\n4,d,1e400,51\n5,e,-2.6,51.45\n";
    let file = t.s.data.write("nan.csv", body);
    let out = imported(&tessera(&t.db, &file, &[]));
    assert!(out.contains("read 5 rows, imported 5"), "{out}");
    assert!(
        out.contains("kept without geometry: 4 (unparseable 4)"),
        "{out}"
    );
    let b = info(&t.s.data).bounds.unwrap();
    assert!(
        [b.min_x, b.min_y, b.max_x, b.max_y]
            .iter()
            .all(|v| v.is_finite())
    );

    // GeoJSON: 1e400 parses as JSON but not as a coordinate (kept, counted); `NaN` and
    // `Infinity` are not JSON at all (row errors with their line).
    let fs = [
        feature(1),
        r#"{"type":"Feature","properties":{"name":"big"},"geometry":{"type":"Point","coordinates":[1e400,1]}}"#.into(),
        r#"{"type":"Feature","properties":{"name":"nan"},"geometry":{"type":"Point","coordinates":[NaN,1]}}"#.into(),
        r#"{"type":"Feature","properties":{"name":"inf"},"geometry":{"type":"Point","coordinates":[Infinity,1]}}"#.into(),
    ];
    let file = t.s.data.write("nan.geojson", collection(&fs));
    let out = imported(&tessera(&t.db, &file, &["--max-errors", "2"]));
    assert!(out.contains("read 2 rows, imported 2"), "{out}");
    assert!(out.contains("unparseable 1"), "{out}");
    assert!(out.contains("nan.geojson: line 4"), "{out}");
    integrity_ok(&t.s.data);
}

#[tokio::test]
async fn invalid_and_unclosed_rings_are_counted_without_geometry_regression() {
    let t = setup().await;
    let poly = |coords: &str| {
        format!(
            r#"{{"type":"Feature","properties":{{"name":"p"}},"geometry":{{"type":"Polygon","coordinates":{coords}}}}}"#
        )
    };
    let fs = [
        poly("[[[-2.6,51.4],[-2.5,51.4],[-2.5,51.5],[-2.6,51.4]]]"),
        poly("[[[-2.6,51.4],[-2.5,51.4],[-2.5,51.5],[-2.6,51.5]]]"),
        poly("[[[-2.6,51.4],[-2.5,51.4]]]"),
        poly("[[[-2.6,51.4]]]"),
        poly("[[[-2.6,51.4],[-2.5,51.4],[-2.5,51.5],[-2.6,51.4]],[]]"),
        poly("[]"),
        r#"{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[1,2]]}}"#.into(),
        r#"{"type":"Feature","properties":{},"geometry":{"type":"MultiPolygon","coordinates":[[[[1,2],[1,3],[2,3]]]]}}"#.into(),
    ];
    let file = t.s.data.write("rings.geojson", collection(&fs));
    let out = imported(&tessera(&t.db, &file, &[]));
    assert!(out.contains("read 8 rows, imported 8"), "{out}");
    assert!(
        out.contains("kept without geometry: 7 (missing 1, unparseable 6)"),
        "{out}"
    );
    // The server sees the new version soon; then its tiles must render.
    let version = info(&t.s.data).version;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.s.json("/collections/ds").await["version"] != version {
        assert!(
            std::time::Instant::now() < deadline,
            "new version never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for tile in ["/tiles/ds/0/0/0.mvt", "/tiles/ds/10/504/340.mvt"] {
        let status = t.s.get(tile).await.status().as_u16();
        assert!(status == 200 || status == 204, "{tile}: {status}");
    }
}

#[tokio::test]
async fn binary_nul_bom_and_ragged_inputs_are_clear_regression() {
    let t = setup().await;
    // Deterministic noise with the bytes of a PNG header in front.
    let mut noise = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let mut x: u32 = 0x9E37_79B9;
    noise.extend((0..4096).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    let file = t.s.data.write("image.csv", &noise);
    let err = refused(&tessera(&t.db, &file, &[]), &file, Some(3));
    assert!(err.contains("NUL"), "{err}");
    let file = t.s.data.write("image.csv.gz", gzip(&[&noise]));
    refused(&tessera(&t.db, &file, &[]), &file, None);
    let file = t.s.data.write("noise.gz", &noise[16..]);
    refused(&tessera(&t.db, &file, &[]), &file, None);
    previous_served(&t).await;

    // A NUL byte in a field far into the file: a row error with its line.
    let mut body = rows_csv(3_000);
    body.push_str("3000,nul\0here,-2.6,51.45\n");
    let file = t.s.data.write("nul.csv", &body);
    refused(&tessera(&t.db, &file, &[]), &file, Some(3_002));
    previous_served(&t).await;
    let out = imported(&tessera(&t.db, &file, &["--max-errors", "1"]));
    assert!(out.contains("read 3000 rows, imported 3000"), "{out}");

    // Ragged rows: more fields than the header is an error; fewer are kept as nulls.
    let body = "id,name,lon,lat\n1,a,-2.6,51.45\n2,b,-2.6,51.45,EXTRA\n3,c\n";
    let file = t.s.data.write("ragged.csv", body);
    refused(&tessera(&t.db, &file, &[]), &file, Some(3));
    let out = imported(&tessera(&t.db, &file, &["--max-errors", "1"]));
    assert!(out.contains("read 2 rows, imported 2"), "{out}");
    assert!(out.contains("missing 1"), "{out}");

    // A GeoJSON file with a UTF-8 byte order mark.
    let file = t.s.data.write(
        "bom.geojson",
        format!("\u{feff}{}", collection(&hundred()[..3])),
    );
    let out = imported(&tessera(&t.db, &file, &[]));
    assert!(out.contains("read 3 rows, imported 3"), "{out}");
    integrity_ok(&t.s.data);
}
