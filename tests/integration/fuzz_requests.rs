//! Property tests of the whole request surface over real HTTP: arbitrary Unicode
//! (multi-byte, right-to-left, combining marks, emoji, control characters, strings up to
//! 100 KB) and arbitrary bytes as query values, path segments and headers. Whatever is
//! sent, the server answers (never drops the connection), never with a 5xx, and every
//! 4xx is a problem document; a 400 names the parameter at fault.
//!
//! Bounded and deterministic: fixed seeds, 200 cases per property. Each test prints how
//! many requests it sent.

use crate::support::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value as Json;

const CASES: u32 = 200;

/// Pieces that have broken parsers before, or could: multi-byte and wide characters,
/// bidi controls, combining marks, ZWJ emoji, NUL and other controls, separators of
/// every syntax we parse, number edge cases, time fragments, template markers.
const FRAGMENTS: &[&str] = &[
    "Kraków",
    "Gdańsk",
    "2024年",
    "ÿ",
    "\u{202E}",
    "\u{200F}שלום",
    "مرحبا",
    "e\u{0301}",
    "\u{0345}\u{0301}\u{0301}",
    "👩‍👩‍👧",
    "🏳️‍🌈",
    "\u{FEFF}",
    "\u{FFFD}",
    "\0",
    "\x07",
    "\x1b[2J",
    "\r\n",
    "\t",
    " ",
    "..",
    "/",
    ",",
    ";",
    "=",
    "&",
    "+",
    "-",
    "%",
    "%00",
    "%ff%fe",
    "*",
    "\"",
    "W/\"",
    "'",
    "\\",
    "{{TITLE}}",
    "<script>",
    "1e400",
    "-0",
    "NaN",
    "inf",
    "-180",
    "90.0000000001",
    "18446744073709551616",
    "2018-11",
    "2018-11-05",
    "T",
    "Z",
    "+14:00",
    "2018-02-12T23:20:50Z",
    "../..",
    "q=0.5",
    "gzip",
    "br",
    "*/*",
    "text/html",
];

/// A hostile string: usually short, sometimes up to ~100 KB.
fn hostile() -> impl Strategy<Value = String> {
    hostile_up_to(100_000)
}

/// For URLs: the `http` crate (and so any hyper client) cannot represent a request target
/// of 64 KiB or more, so URL values stay under 9 KB (27 KB percent-encoded, twice in one
/// target at most): past the 8 KiB cap all the same. Longer
/// targets, sent over a raw socket, are tested in `hostile_requests.rs`.
fn hostile_for_url() -> impl Strategy<Value = String> {
    hostile_up_to(9_000)
}

fn hostile_up_to(max_bytes: usize) -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(FRAGMENTS);
    let mixed = prop::collection::vec(
        prop_oneof![
            fragment.prop_map(str::to_owned),
            any::<char>().prop_map(String::from),
            "[0-9.,:/T-]{1,12}",
        ],
        0..16,
    )
    .prop_map(|v| v.concat());
    let long = (prop::sample::select(FRAGMENTS), 1_000usize..25_000).prop_map(move |(f, n)| {
        let mut s = f.repeat(n);
        let mut end = max_bytes.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s
    });
    prop_oneof![
        6 => mixed,
        3 => any::<String>(),
        1 => long,
    ]
}

/// Raw query text: the value form-encoded, or arbitrary bytes percent-encoded (the
/// server decodes those lossily, e.g. `%00%ff%fe`).
fn encoded() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => hostile_for_url().prop_map(|v| form(&v)),
        1 => prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| b.iter().map(|x| format!("%{x:02X}")).collect()),
    ]
}

fn form(v: &str) -> String {
    serde_urlencoded::to_string([("", v)]).unwrap()[1..].to_owned()
}

/// A path segment: every byte outside the unreserved set percent-encoded.
fn segment(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The routes with their parameters; `{}` is where the hostile value goes.
const QUERY_TARGETS: &[&str] = &[
    "/collections/uk/items?limit={}",
    "/collections/uk/items?offset={}",
    "/collections/uk/items?bbox={}",
    "/collections/uk/items?bbox-crs={}",
    "/collections/uk/items?datetime={}",
    "/collections/uk/items?sortby={}",
    "/collections/uk/items?properties={}",
    "/collections/uk/items?f={}",
    "/collections/uk/items?within={}",
    "/collections/uk/items?Crime%20type={}",
    "/collections/nyc/items?Complaint%20Type={}",
    "/collections/nyc/items?Incident%20Zip={}",
    "/collections/uk/items?{}=1",
    "/collections/uk/items?{}",
    "/collections/uk/histogram?datetime={}",
    "/collections/uk/histogram?bucket={}",
    "/collections/uk/histogram?within={}",
    "/collections/nyc/histogram?Complaint%20Type={}",
    "/tiles/uk/0/0/0.mvt?datetime={}",
    "/tiles/uk,nyc/2/1/1.mvt?{}",
    "/tiles/uk/0/0/0.mvt?v={}",
    "/tiles/nyc/0/0/0.mvt?Complaint%20Type={}&within={}",
    "/tiles/uk?datetime={}",
    "/tiles/uk,nyc?{}=x",
    "/collections/uk/tiles/WebMercatorQuad/0/0/0?datetime={}",
    "/styles/uk.json?{}",
    "/maps/uk?embed={}",
    "/collections/uk?f={}",
    "/collections/uk/queryables?f={}",
    "/collections/uk/items/1?f={}",
    "/collections?f={}",
    "/?{}",
    "/api?f={}",
];

/// Path templates; `{}` takes a hostile segment.
const PATH_TARGETS: &[&str] = &[
    "/tiles/{}/0/0/0.mvt",
    "/tiles/uk,{}/1/0/0.mvt",
    "/tiles/uk/{}/0/0.mvt",
    "/tiles/uk/3/{}/2.mvt",
    "/tiles/uk/3/3/{}",
    "/tiles/uk/3/3/{}.mvt",
    "/tiles/{}",
    "/collections/uk/tiles/{}",
    "/collections/uk/tiles/WebMercatorQuad/{}/0/0",
    "/collections/{}",
    "/collections/{}/items",
    "/collections/uk/items/{}",
    "/collections/{}/histogram",
    "/styles/{}",
    "/maps/{}",
];

struct Fuzz {
    rt: tokio::runtime::Runtime,
    server: Server,
    sent: std::cell::Cell<u64>,
}

impl Fuzz {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(Server::with_fixture("uk", "uk-crime-sample.csv"));
        let mut req = fixture_request("nyc", "nyc-311-sample.csv");
        req.options.id_column = Some("Unique Key".into());
        req.meta.category = Some("Complaint Type".into());
        server.import(&req);
        Self {
            rt,
            server,
            sent: std::cell::Cell::new(0),
        }
    }

    fn runner(seed: u8) -> TestRunner {
        let config = Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        };
        TestRunner::new_with_rng(
            config,
            TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
        )
    }

    /// Sends one GET and checks the answer's shape.
    fn check(&self, path: &str, headers: &[(&str, &[u8])]) -> Result<(), TestCaseError> {
        self.sent.set(self.sent.get() + 1);
        let short: String = path.chars().take(300).collect();
        let (status, ct, body) = self
            .rt
            .block_on(async {
                let mut rb = self.server.client.get(self.server.url(path));
                for (k, v) in headers {
                    rb = rb.header(*k, reqwest::header::HeaderValue::from_bytes(v).unwrap());
                }
                let r = rb.send().await.map_err(|e| format!("{e:?}"))?;
                let status = r.status().as_u16();
                let ct = content_type(&r);
                let body = r.bytes().await.map_err(|e| format!("body: {e:?}"))?;
                Ok::<_, String>((status, ct, body))
            })
            .map_err(|e| TestCaseError::fail(format!("GET {short}: no answer: {e}")))?;
        let text = String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned();
        prop_assert!(status < 500, "GET {} -> {}: {}", short, status, text);
        if (400..500).contains(&status) {
            prop_assert_eq!(
                &ct,
                "application/problem+json",
                "GET {} -> {}",
                short,
                status
            );
            let doc: Json = serde_json::from_slice(&body)
                .map_err(|e| TestCaseError::fail(format!("GET {short}: {e}: {text}")))?;
            prop_assert_eq!(doc["status"].as_u64(), Some(u64::from(status)), "{}", short);
            if matches!(status, 400 | 414 | 431) {
                prop_assert!(
                    doc["parameter"].as_str().is_some_and(|p| !p.is_empty()),
                    "GET {} -> {} without a parameter: {}",
                    short,
                    status,
                    text
                );
            }
        }
        Ok(())
    }
}

/// Header-safe bytes: HTTP forbids controls other than tab in field values.
fn header_bytes(v: &str) -> Vec<u8> {
    v.bytes()
        .map(|b| {
            if (b < 0x20 && b != b'\t') || b == 0x7f {
                b'?'
            } else {
                b
            }
        })
        .collect()
}

#[test]
fn hostile_query_values_on_every_route_never_5xx() {
    let f = Fuzz::new();
    let mut runner = Fuzz::runner(11);
    let result = runner.run(&encoded(), |v| {
        for t in QUERY_TARGETS {
            f.check(&t.replace("{}", &v), &[])?;
        }
        Ok(())
    });
    eprintln!("hostile query values: {} requests", f.sent.get());
    result.unwrap();
}

#[test]
fn hostile_path_segments_never_5xx() {
    let f = Fuzz::new();
    let mut runner = Fuzz::runner(12);
    let result = runner.run(&hostile_for_url(), |v| {
        let seg = segment(&v);
        for t in PATH_TARGETS {
            f.check(&t.replace("{}", &seg), &[])?;
        }
        Ok(())
    });
    eprintln!("hostile path segments: {} requests", f.sent.get());
    result.unwrap();
}

/// Accept, Accept-Encoding and If-None-Match, alone and together, on JSON, HTML, CSV,
/// tile and conditional routes.
#[test]
fn hostile_accept_encoding_and_if_none_match_headers_never_5xx() {
    let f = Fuzz::new();
    let mut runner = Fuzz::runner(13);
    let paths = [
        "/",
        "/collections/uk",
        "/collections/uk/items?limit=3",
        "/collections/uk/items?f=csv&limit=3",
        "/collections/uk/items/1",
        "/tiles/uk/0/0/0.mvt",
        "/tiles/uk",
        "/styles/uk.json",
        "/maps/uk",
        "/api",
    ];
    let result = runner.run(&(hostile(), hostile(), hostile()), |(a, e, m)| {
        let (a, e, m) = (header_bytes(&a), header_bytes(&e), header_bytes(&m));
        for p in paths {
            f.check(p, &[("accept", &a)])?;
            f.check(p, &[("accept-encoding", &e)])?;
            f.check(p, &[("if-none-match", &m)])?;
            f.check(
                p,
                &[
                    ("accept", &a),
                    ("accept-encoding", &e),
                    ("if-none-match", &m),
                ],
            )?;
        }
        Ok(())
    });
    eprintln!("hostile headers: {} requests", f.sent.get());
    result.unwrap();
}
