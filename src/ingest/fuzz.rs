//! Property tests of every parser in `ingest` over hostile text: arbitrary Unicode
//! weighted towards what breaks byte-index code (multi-byte letters, right-to-left marks,
//! combining accents, emoji, control characters, BOMs, CSV and JSON punctuation). Nothing
//! may panic; where a value can be written and read back, it must come back the same.
//! Seeds are proptest's deterministic defaults; case counts keep the set to seconds.

use super::csv::parse_location;
use super::{IngestOptions, open};
use crate::import::infer::ColumnInference;
use crate::model::FieldType;
use crate::model::time::{TimeFormat, format_utc};
use jiff::tz::TimeZone;
use proptest::prelude::*;
use std::path::Path;

const TRICKY: &[char] = &[
    'ó', 'ń', 'ł', '年', '月', 'ß', '\u{05D0}', '\u{0627}', '\u{202E}', '\u{200F}', '\u{0301}',
    '\u{0308}', '😀', '👩', '\u{200D}', '\u{FEFF}', '\u{FFFD}', '\0', '\r', '\n', '\t', '\u{1e}',
    '\u{7f}', '"', '\'', ',', ';', '{', '}', '[', ']', ':', '\\', '-', '/', '.', 'T', 'Z', 'e',
    ' ', '0', '1', '2', '9', '+', '(', ')',
];

fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::sample::select(TRICKY),
        1 => any::<char>(),
        1 => proptest::char::range('0', '9'),
    ]
}

/// Hostile text of up to `max` characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(tricky_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

/// Texts that start like dates, so the parsers get past their first checks.
fn datey() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("2024-"),
            Just("2024-01"),
            Just("1/2/2024 "),
            Just("20240")
        ],
        text(24),
    )
        .prop_map(|(a, b)| format!("{a}{b}"))
}

/// Reads every record of a file; the count is bounded by its size, so a reader that
/// stops advancing fails here instead of spinning.
fn read_all(path: &Path) -> Vec<Result<super::Record, String>> {
    let limit = std::fs::metadata(path).map_or(0, |m| m.len()) + 2;
    let Ok(mut r) = open(path, &IngestOptions::default()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Some(next) = r.next_record() {
        out.push(next.map_err(|e| e.to_string()));
        assert!((out.len() as u64) <= limit, "reader does not advance");
    }
    let _ = (r.columns(), r.describe(), r.bytes_read());
    out
}

fn with_file<T>(name: &str, bytes: &[u8], f: impl FnOnce(&Path) -> T) -> T {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    f(&path)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn time_formats_never_panic(s in prop_oneof![text(64), datey()]) {
        let ny = TimeZone::get("America/New_York").unwrap();
        for f in TimeFormat::ALL {
            if let Some(r) = f.parse(&s, &TimeZone::UTC) {
                prop_assert!(r.start <= r.end);
            }
            let _ = f.parse(&s, &ny);
        }
    }

    #[test]
    fn iso_times_round_trip(secs in -30_610_224_000i64..253_402_300_799) {
        let s = format_utc(secs);
        let r = TimeFormat::Iso.parse(&s, &TimeZone::UTC).expect("own output parses");
        prop_assert_eq!((r.start, r.end), (secs, secs));
    }

    #[test]
    fn iso_dates_round_trip(y in 1000i32..=9999, m in 1u8..=12, d in 1u8..=28) {
        let s = format!("{y:04}-{m:02}-{d:02}");
        let r = TimeFormat::IsoDate.parse(&s, &TimeZone::UTC).expect("a real date parses");
        prop_assert!(format_utc(r.start).starts_with(&s));
        prop_assert_eq!(r.end - r.start, 86_399);
    }

    #[test]
    fn inference_never_panics_and_is_sound(values in proptest::collection::vec(text(24), 0..12)) {
        let mut c = ColumnInference::new("Created Date");
        for v in &values {
            c.observe(v);
        }
        let non_empty = values.iter().map(|v| v.trim()).filter(|v| !v.is_empty());
        match c.result().ty {
            FieldType::Integer => {
                for v in non_empty {
                    prop_assert!(v.parse::<i64>().is_ok(), "{v:?}");
                }
            }
            FieldType::Number => {
                for v in non_empty {
                    prop_assert!(v.parse::<f64>().is_ok_and(f64::is_finite), "{v:?}");
                }
            }
            _ => {}
        }
    }

    #[test]
    fn locations_never_panic_and_round_trip(
        s in text(64),
        lon in -180.0f64..180.0,
        lat in -90.0f64..90.0,
    ) {
        let _ = parse_location(&s);
        let _ = parse_location(&format!("POINT ({s})"));
        prop_assert_eq!(parse_location(&format!("POINT ({lon} {lat})")), Ok((lon, lat)));
        prop_assert_eq!(parse_location(&format!("point z({lon} {lat} 3)")), Ok((lon, lat)));
        prop_assert_eq!(parse_location(&format!("({lat}, {lon})")), Ok((lon, lat)));
    }

    #[test]
    fn csv_reader_survives_any_text(s in text(400), bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        with_file("t.csv", s.as_bytes(), read_all);
        with_file("b.csv", &bytes, read_all);
        let mut gz = b"\x1f\x8b".to_vec();
        gz.extend(&bytes);
        with_file("g.csv.gz", &gz, read_all);
    }

    #[test]
    fn csv_values_round_trip(rows in proptest::collection::vec(proptest::collection::vec(text(40), 3), 1..8)) {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["a", "b", "c"]).unwrap();
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| r.into_iter().map(|v| v.replace('\0', "")).collect())
            .collect();
        for r in &rows {
            w.write_record(r).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let got = with_file("r.csv", &bytes, read_all);
        prop_assert_eq!(got.len(), rows.len());
        for (rec, want) in got.iter().zip(&rows) {
            let rec = rec.as_ref().map_err(|e| TestCaseError::fail(e.clone()))?;
            for (i, v) in want.iter().enumerate() {
                let want = (!v.trim().is_empty()).then(|| v.clone());
                prop_assert_eq!(rec.values.get(i).cloned().flatten(), want);
            }
        }
    }

    #[test]
    fn geojson_reader_survives_any_text(s in text(400), bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        with_file("t.geojson", format!("{{\"type\":\"FeatureCollection\",\"features\":[{s}").as_bytes(), read_all);
        with_file("s.geojson", format!("{{{s}").as_bytes(), read_all);
        let mut b = b"{\"features\":[".to_vec();
        b.extend(&bytes);
        with_file("b.geojson", &b, read_all);
    }

    #[test]
    fn geojson_properties_round_trip(values in proptest::collection::vec(text(40), 1..6), lon in -179.0f64..179.0) {
        let features: Vec<serde_json::Value> = values
            .iter()
            .map(|v| serde_json::json!({
                "type": "Feature",
                "properties": {"v": v},
                "geometry": {"type": "Point", "coordinates": [lon, 10.5]},
            }))
            .collect();
        let fc = serde_json::json!({"features": features, "type": "FeatureCollection"});
        let got = with_file("r.geojson", fc.to_string().as_bytes(), read_all);
        prop_assert_eq!(got.len(), values.len());
        for (rec, v) in got.iter().zip(&values) {
            let rec = rec.as_ref().map_err(|e| TestCaseError::fail(e.clone()))?;
            let want = (!v.trim().is_empty()).then(|| v.clone());
            prop_assert_eq!(rec.values.first().cloned().flatten(), want);
            // serde_json parses floats to within an ulp (no `float_roundtrip`).
            let x = rec.geometry.as_ref().map(|g| g.bounds.min_x).unwrap_or(f64::NAN);
            prop_assert!((x - lon).abs() < 1e-9, "{x} vs {lon}");
        }
    }
}

proptest! {
    // 100 KB strings: few cases, each costs a few milliseconds in a debug build.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn long_strings_never_panic(s in text(100_000)) {
        for f in TimeFormat::ALL {
            let _ = f.parse(&s, &TimeZone::UTC);
        }
        let mut c = ColumnInference::new("date");
        c.observe(&s);
        let _ = c.result();
        let _ = parse_location(&s);
        with_file("l.csv", format!("a,b\n{s}\n").as_bytes(), read_all);
        with_file("l.geojson", format!("{{\"features\":[{s}").as_bytes(), read_all);
    }
}
