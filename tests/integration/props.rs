//! Property test: random bbox + datetime queries over HTTP return exactly the ids that a
//! brute-force scan of the generated input selects.

use crate::support::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeSet;

/// One generated input row.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    /// Longitude and latitude as written (4 decimals), `None` when the cells are empty.
    pos: Option<(f64, f64)>,
    /// (year, month), `None` when the cell is empty.
    month: Option<(i32, u32)>,
}

/// A query date bound at day precision: (year, month, day).
type Day = (i32, u32, u32);

#[derive(Debug, Clone)]
enum Time {
    None,
    /// A month, `YYYY-MM`.
    Month(i32, u32),
    /// A day, `YYYY-MM-DD` or an instant inside it.
    Day(Day, bool),
    /// An interval; `None` ends are open, written `..` or empty.
    Interval(Option<Day>, Option<Day>, bool),
}

impl Time {
    fn param(&self) -> Option<String> {
        let day = |d: &Day| format!("{:04}-{:02}-{:02}", d.0, d.1, d.2);
        match self {
            Time::None => None,
            Time::Month(y, m) => Some(format!("{y:04}-{m:02}")),
            Time::Day(d, false) => Some(day(d)),
            Time::Day(d, true) => Some(format!("{}T12:34:56Z", day(d))),
            Time::Interval(a, b, dots) => {
                let open = if *dots { ".." } else { "" };
                let a = a.as_ref().map_or(open.to_owned(), day);
                let b = b.as_ref().map_or(open.to_owned(), day);
                Some(format!("{a}/{b}"))
            }
        }
    }

    /// Whether a row of `month` matches; rows without time never match a time filter.
    fn matches(&self, month: Option<(i32, u32)>) -> bool {
        let ym = |d: &Day| (d.0, d.1);
        match (self, month) {
            (Time::None, _) => true,
            (_, None) => false,
            (Time::Month(y, m), Some(mm)) => (*y, *m) == mm,
            (Time::Day(d, _), Some(mm)) => ym(d) == mm,
            // A month intersects [a, b] (whole days) iff month(a) <= it <= month(b).
            (Time::Interval(a, b, _), Some(mm)) => {
                a.as_ref().is_none_or(|a| ym(a) <= mm) && b.as_ref().is_none_or(|b| mm <= ym(b))
            }
        }
    }

    fn valid(&self) -> bool {
        match self {
            Time::Interval(Some(a), Some(b), _) => a <= b,
            // `../..` is covered by its own test (`datetime_fully_open_interval`).
            Time::Interval(None, None, _) => false,
            _ => true,
        }
    }
}

#[derive(Debug, Clone)]
struct BBox {
    min_x: f64,
    min_y: f64,
    max_x: f64,
    max_y: f64,
}

impl BBox {
    fn contains(&self, (x, y): (f64, f64)) -> bool {
        let in_x = if self.min_x <= self.max_x {
            self.min_x <= x && x <= self.max_x
        } else {
            x >= self.min_x || x <= self.max_x
        };
        in_x && self.min_y <= y && y <= self.max_y
    }
}

fn generate_rows(rng: &mut TestRng, n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let pos = if rng.random_ratio(1, 20) {
                None
            } else {
                // Two clusters: western Europe and around the antimeridian.
                let x: f64 = if rng.random_ratio(1, 4) {
                    let x = rng.random_range(170.0..190.0);
                    if x > 180.0 { x - 360.0 } else { x }
                } else {
                    rng.random_range(-10.0..10.0)
                };
                let y: f64 = rng.random_range(40.0..60.0);
                let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
                Some((round(x), round(y)))
            };
            let month = (!rng.random_ratio(1, 20))
                .then(|| (rng.random_range(2017..=2019), rng.random_range(1..=12)));
            Row {
                id: format!("r{i}"),
                pos,
                month,
            }
        })
        .collect()
}

fn write_csv(rows: &[Row]) -> String {
    let mut s = String::from("uid,kind,lon,lat,month\n");
    for r in rows {
        let (x, y) = r.pos.map_or((String::new(), String::new()), |(x, y)| {
            (x.to_string(), y.to_string())
        });
        let m = r
            .month
            .map_or(String::new(), |(y, m)| format!("{y:04}-{m:02}"));
        s.push_str(&format!("{},k,{x},{y},{m}\n", r.id));
    }
    s
}

fn day_strategy() -> impl Strategy<Value = Day> {
    (2016..=2020i32, 1..=12u32, 1..=28u32)
}

fn time_strategy() -> impl Strategy<Value = Time> {
    prop_oneof![
        2 => Just(Time::None),
        1 => (2016..=2020i32, 1..=12u32).prop_map(|(y, m)| Time::Month(y, m)),
        1 => (day_strategy(), any::<bool>()).prop_map(|(d, t)| Time::Day(d, t)),
        3 => (
            proptest::option::weighted(0.8, day_strategy()),
            proptest::option::weighted(0.8, day_strategy()),
            any::<bool>()
        )
            .prop_map(|(a, b, dots)| {
                // Order the ends so that the interval is valid.
                match (a, b) {
                    (Some(a), Some(b)) if a > b => Time::Interval(Some(b), Some(a), dots),
                    (a, b) => Time::Interval(a, b, dots),
                }
            }),
    ]
}

fn coord(lo: f64, hi: f64) -> impl Strategy<Value = f64> + Clone {
    // Coarse values hit the generated points' exact coordinates now and then.
    prop_oneof![
        (lo..hi).prop_map(|v| (v * 100.0).round() / 100.0),
        (lo..hi).prop_map(|v| (v * 10_000.0).round() / 10_000.0),
    ]
}

fn bbox_strategy() -> impl Strategy<Value = Option<BBox>> {
    let x = prop_oneof![
        coord(-12.0, 12.0),
        coord(165.0, 180.0),
        coord(-180.0, -165.0)
    ];
    let y = coord(38.0, 62.0);
    proptest::option::weighted(
        0.85,
        (x.clone(), x, y.clone(), y).prop_map(|(x1, x2, y1, y2)| BBox {
            // Both orders of x: min > max crosses the antimeridian.
            min_x: x1,
            max_x: x2,
            min_y: y1.min(y2),
            max_y: y1.max(y2),
        }),
    )
}

#[test]
fn random_bbox_and_datetime_queries_match_brute_force() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut seed_rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let rows = generate_rows(&mut seed_rng, 1500);
    let server = rt.block_on(Server::start());
    let file = server.data.write("random.csv", write_csv(&rows));
    let mut req = request("random", &[file]);
    req.options.id_column = Some("uid".into());
    let report = server.import(&req);
    assert_eq!(report.imported, rows.len() as u64);
    assert_eq!(report.time_column.as_deref(), Some("month"));
    assert!(server.data.info("random").unwrap().source_ids);

    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[42; 32]));
    let strategy = (bbox_strategy(), time_strategy()).prop_filter("valid", |(_, t)| t.valid());
    let result = runner.run(&strategy, |(bbox, time)| {
        let mut query: Vec<(&str, String)> = vec![("limit", "10000".into())];
        if let Some(b) = &bbox {
            query.push((
                "bbox",
                format!("{},{},{},{}", b.min_x, b.min_y, b.max_x, b.max_y),
            ));
        }
        if let Some(t) = time.param() {
            query.push(("datetime", t));
        }
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = items_path("random", &pairs);
        let fc = rt.block_on(server.json(&path));
        let got: Vec<String> = ids(&fc);
        let got_set: BTreeSet<&str> = got.iter().map(String::as_str).collect();
        prop_assert_eq!(got_set.len(), got.len(), "duplicate ids for {}", path);
        let want: BTreeSet<&str> = rows
            .iter()
            .filter(|r| {
                let in_box = match &bbox {
                    None => true,
                    Some(b) => r.pos.is_some_and(|p| b.contains(p)),
                };
                in_box && time.matches(r.month)
            })
            .map(|r| r.id.as_str())
            .collect();
        prop_assert_eq!(&got_set, &want, "query {}", path);
        prop_assert_eq!(number_matched(&fc), want.len() as u64, "query {}", path);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
