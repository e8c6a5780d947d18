//! The `tessera` binary: import, datasets, delete.

use crate::support::*;
use std::process::{Command, Output};

fn tessera(db: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args)
        .arg("--db")
        .arg(db)
        .env_remove("TESSERA_DB")
        .env("RUST_LOG", "tessera=warn")
        .env("NO_COLOR", "1");
    cmd.output().expect("run tessera")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tessera failed ({}): stdout {} stderr {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "tessera should have failed: stdout {} stderr {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

#[test]
fn import_prints_a_report() {
    let data = TestCatalog::new();
    let db = data.db_arg();
    let uk = fixture("uk-crime-sample.csv");
    let out = tessera(&db, &["import", uk.to_str().unwrap(), "--dataset", "uk"]);
    let report = ok(&out);
    assert!(
        report.contains("uk: read 200 rows, imported 200"),
        "{report}"
    );
    assert!(
        report.contains("kept without geometry: 24 (missing 24)"),
        "{report}"
    );
    assert!(report.contains("time from `Month`"), "{report}");
    assert!(report.contains("unparseable: 0"), "{report}");
    assert!(report.contains("uk-crime-sample.csv"), "{report}");

    // Explicit options: time zone, WKT column, id column, time and end columns.
    let nyc = fixture("nyc-311-location-only.csv");
    let out = tessera(
        &db,
        &[
            "import",
            nyc.to_str().unwrap(),
            "--dataset",
            "nyc",
            "--timezone",
            "America/New_York",
            "--wkt",
            "Location",
            "--id-column",
            "Unique Key",
            "--time",
            "Created Date",
            "--title",
            "NYC 311 animals",
        ],
    );
    let report = ok(&out);
    assert!(
        report.contains("nyc: read 100 rows, imported 100"),
        "{report}"
    );
    assert!(report.contains("missing 6"), "{report}");
    assert!(report.contains("time from `Created Date`"), "{report}");
    let c = data.reopen();
    let snap = c.snapshot().unwrap();
    let info = snap
        .dataset(&tessera::model::DatasetId::parse("nyc").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(info.meta.title, "NYC 311 animals");
    assert!(info.source_ids);
    let t = info.time_extent.unwrap();
    assert_eq!(
        tessera::model::time::format_utc(t.start),
        "2025-01-02T14:20:00Z"
    );

    // No time column at all.
    let sf = fixture("sf-businesses-latin1.csv");
    let report = ok(&tessera(
        &db,
        &["import", sf.to_str().unwrap(), "--dataset", "sf"],
    ));
    assert!(report.contains("no time column"), "{report}");
    assert!(report.contains("kept without geometry: 9"), "{report}");
}

#[test]
fn import_rejects_bad_arguments() {
    let data = TestCatalog::new();
    let (dir, db) = (&data.dir, data.db_arg());
    let uk = fixture("uk-crime-sample.csv");
    let uk = uk.to_str().unwrap();

    let missing = dir.path().join("does-not-exist.csv");
    let missing = missing.to_str().unwrap();
    // (arguments after `import`, what the error must name)
    let cases: [(&[&str], &[&str]); 7] = [
        (&[uk, "--dataset", "Bad_Id"], &["Bad_Id", "dataset id"]),
        (
            &[uk, "--dataset", "uk", "--time", "When"],
            &["--time `When` is not a column"],
        ),
        (&[uk, "--dataset", "uk", "--time-end", "Until"], &["Until"]),
        (
            &[uk, "--dataset", "uk", "--lon", "Nope", "--lat", "Latitude"],
            &["Nope"],
        ),
        (
            &[uk, "--dataset", "uk", "--timezone", "Mars/Olympus"],
            &["Mars/Olympus"],
        ),
        (
            &[uk, "--dataset", "uk", "--kind", "volcanoes"],
            &["volcanoes"],
        ),
        (&[missing, "--dataset", "uk"], &["does-not-exist.csv"]),
    ];
    for (args, names) in cases {
        let args: Vec<&str> = std::iter::once("import")
            .chain(args.iter().copied())
            .collect();
        let err = fails(&tessera(&db, &args));
        for name in names {
            assert!(err.contains(name), "{args:?}: {err}");
        }
    }

    // None of the failures left a dataset behind.
    let list = ok(&tessera(&db, &["datasets"]));
    assert_eq!(list, "", "{list}");
}

#[test]
fn failed_cli_import_keeps_the_old_data() {
    let data = TestCatalog::new();
    let (dir, db) = (&data.dir, data.db_arg());
    let uk = fixture("uk-crime-sample.csv");
    ok(&tessera(
        &db,
        &["import", uk.to_str().unwrap(), "--dataset", "uk"],
    ));
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,lon,lat\n1,2,3\n1,2,3,4\n").unwrap();
    let err = fails(&tessera(
        &db,
        &["import", bad.to_str().unwrap(), "--dataset", "uk"],
    ));
    assert!(err.contains("bad.csv"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("unchanged"), "{err}");
    let list = ok(&tessera(&db, &["datasets"]));
    assert!(list.contains("200 features"), "{list}");

    let report = ok(&tessera(
        &db,
        &[
            "import",
            bad.to_str().unwrap(),
            "--dataset",
            "uk",
            "--max-errors",
            "5",
        ],
    ));
    assert!(report.contains("skipped 1 unreadable rows"), "{report}");
    assert!(report.contains("line 3"), "{report}");
    let list = ok(&tessera(&db, &["datasets"]));
    assert!(list.contains("1 features"), "{list}");
}

#[test]
fn datasets_lists_and_delete_removes() {
    let data = TestCatalog::new();
    let db = data.db_arg();
    assert_eq!(ok(&tessera(&db, &["datasets"])), "");
    let uk = fixture("uk-crime-sample.csv");
    let mn = fixture("manhattan-neighbourhoods.geojson");
    ok(&tessera(
        &db,
        &[
            "import",
            uk.to_str().unwrap(),
            "--dataset",
            "uk",
            "--title",
            "UK crime",
        ],
    ));
    ok(&tessera(
        &db,
        &[
            "import",
            mn.to_str().unwrap(),
            "--dataset",
            "mn",
            "--kind",
            "boundaries",
        ],
    ));
    let list = ok(&tessera(&db, &["datasets"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("mn\tMultiPolygon\t37 features (0 without geometry)"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("uk\tPoint\t200 features (24 without geometry)"),
        "{list}"
    );
    assert!(
        lines[1].contains("2018-11-01T00:00:00Z .. 2018-11-30T23:59:59Z"),
        "{list}"
    );
    assert!(lines[1].ends_with("UK crime"), "{list}");

    ok(&tessera(&db, &["delete", "uk"]));
    let list = ok(&tessera(&db, &["datasets"]));
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(list.starts_with("mn\t"), "{list}");

    let err = fails(&tessera(&db, &["delete", "uk"]));
    assert!(err.contains("no dataset `uk`"), "{err}");
    let err = fails(&tessera(&db, &["delete", "Not Valid"]));
    assert!(err.contains("Not Valid"), "{err}");
}

/// Regression: text columns starting with `Kraków`, `Gdańsk` or `2024年` made the time
/// inference slice inside a character, and `tessera import` panicked (exit 101).
#[test]
fn import_of_multibyte_text_columns_regression_krakow() {
    let data = TestCatalog::new();
    let (dir, db) = (&data.dir, data.db_arg());
    let csv = dir.path().join("pl.csv");
    std::fs::write(
        &csv,
        "city,date,note,longitude,latitude\n\
         Kraków,2024年,Zażółć gęślą jaźń,19.94,50.06\n\
         Gdańsk,2024年1月,🚲 مرحبا,18.65,54.35\n\
         Łódź,2024-0ó,e\u{301}\u{202e}x,19.46,51.76\n",
    )
    .unwrap();
    let report = ok(&tessera(
        &db,
        &["import", csv.to_str().unwrap(), "--dataset", "pl"],
    ));
    assert!(report.contains("read 3 rows, imported 3"), "{report}");
    let tc = data.reopen();
    let snap = tc.snapshot().unwrap();
    let ds = snap
        .dataset(&tessera::model::DatasetId::parse("pl").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(ds.time_extent, None, "none of these values is a time");
    let mut cities = Vec::new();
    snap.scan(&ds, &Default::default(), &mut |f| {
        cities.push(format!("{:?}", f.values[0]));
        true
    })
    .unwrap();
    cities.sort();
    assert_eq!(
        cities,
        ["Text(\"Gdańsk\")", "Text(\"Kraków\")", "Text(\"Łódź\")"]
    );
}
