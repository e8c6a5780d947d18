//! `f=ics`: items queries as iCalendar (RFC 5545), read back by Python's `icalendar`
//! (pinned in tests/python/requirements.txt), a parser nobody here wrote.

use crate::support::{Server, content_type, features, request};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The test venv's interpreter (`make pyenv`); in CI its absence is a failure.
fn python() -> Option<PathBuf> {
    let p = std::env::var_os("TESSERA_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python"),
        PathBuf::from,
    );
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but there is no Python test venv at {} (run `make pyenv`)",
        p.display()
    );
    eprintln!("notice: ics tests skipped: no Python test venv (run `make pyenv`)");
    None
}

/// Reads an .ics file with `icalendar` and prints what a calendar application would see.
const READ_ICS: &str = r#"
import json, sys, datetime, icalendar
cal = icalendar.Calendar.from_ical(open(sys.argv[1], "rb").read())
def utc(v):
    d = v.dt
    if isinstance(d, datetime.datetime):
        return d.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "date:" + d.isoformat()
events = []
errors = list(cal.errors)
for e in cal.walk("VEVENT"):
    errors += e.errors
    events.append({
        "uid": str(e["UID"]), "summary": str(e["SUMMARY"]),
        "location": str(e.get("LOCATION", "")), "description": str(e.get("DESCRIPTION", "")),
        "start": utc(e["DTSTART"]), "end": utc(e["DTEND"]) if "DTEND" in e else None,
        "url": str(e["URL"]), "dtstamp": utc(e["DTSTAMP"]),
    })
print(json.dumps({"version": str(cal["VERSION"]), "prodid": str(cal["PRODID"]),
    "skipped": str(cal.get("X-TESSERA-SKIPPED")), "errors": [str(x) for x in errors],
    "events": events}))
"#;

fn read_ics(python: &Path, body: &[u8]) -> Json {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("q.ics");
    std::fs::write(&file, body).expect("write ics");
    let out = std::process::Command::new(python)
        .args(["-c", READ_ICS])
        .arg(&file)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "icalendar failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json from python")
}

/// Events with start and end in Warsaw local time, non-ASCII names and places, text
/// that needs escaping, a name long enough to fold, an instant and a row without time.
const EVENTS: &str = "id,Event Name,start,end,Event Location,Event Borough,Event Type,lon,lat
k1,\"Festiwal Kraków; rynek, \"\"główny\"\"\",2024-06-01T10:00:00,2024-06-01T18:00:00,\"Rynek Główny, Kraków\",Stare Miasto,Festival,19.937,50.061
s1,Carnaval de São Paulo — desfile das escolas de samba no Sambódromo do Anhembi 東京 🎉,2024-02-10T21:00:00,2024-02-11T05:30:00,Sambódromo do Anhembi,Santana,Parade,-46.6,-23.5
n1,Night run,2024-06-02T23:00:00,2024-06-03T01:00:00,Błonia,Zwierzyniec,Sport,19.91,50.06
i1,Instant,2024-06-05T12:00:00,,Wawel,Stare Miasto,Sport,19.935,50.054
x1,No time at all,,,Kazimierz,Kazimierz,Festival,19.94,50.05
";

async fn server() -> Server {
    let s = Server::start().await;
    let mut req = request("ev", &[s.data.write("events.csv", EVENTS)]);
    req.time = Some("start".into());
    req.time_end = Some("end".into());
    req.timezone = tessera::model::time::parse_zone("Europe/Warsaw").unwrap();
    req.options.id_column = Some("id".into());
    req.options.lon = Some("lon".into());
    req.options.lat = Some("lat".into());
    s.import(&req);
    s
}

/// The JSON-FG times of the items of `query`, by id, as (start, end or None).
async fn item_times(s: &Server, query: &str) -> HashMap<String, (String, Option<String>)> {
    let fc = s
        .json(&format!("/collections/ev/items?limit=100{query}"))
        .await;
    features(&fc)
        .iter()
        .filter(|f| !f["time"].is_null())
        .map(|f| {
            let t = &f["time"];
            let id = f["id"].as_str().unwrap().to_owned();
            match t["timestamp"].as_str() {
                Some(ts) => (id, (ts.to_owned(), None)),
                None => (
                    id,
                    (
                        t["interval"][0].as_str().unwrap().to_owned(),
                        Some(t["interval"][1].as_str().unwrap().to_owned()),
                    ),
                ),
            }
        })
        .collect()
}

#[tokio::test]
async fn ics_of_an_items_query_parses_and_holds_each_timed_item_once() {
    let Some(py) = python() else { return };
    let s = server().await;
    let meta = s.json("/collections/ev").await;
    assert_eq!(meta["endTimeField"], "end", "{meta}");

    let r = s.get("/collections/ev/items?f=ics").await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "text/calendar");
    let body = r.bytes().await.unwrap().to_vec();
    // Every content line ends in CRLF, holds at most 75 octets and whole characters.
    let text = std::str::from_utf8(&body).expect("UTF-8");
    assert!(text.ends_with("END:VCALENDAR\r\n"), "{text}");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "bare LF in {text}"
    );
    for line in text.trim_end().split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line}", line.len());
    }
    assert!(text.contains("\r\n "), "the long name is folded: {text}");

    let cal = read_ics(&py, &body);
    assert_eq!(cal["errors"], serde_json::json!([]), "{cal}");
    assert_eq!(cal["version"], "2.0");
    assert_eq!(cal["skipped"], "1", "x1 has no time: {cal}");
    let events = cal["events"].as_array().unwrap();
    let times = item_times(&s, "").await;
    assert_eq!(events.len(), times.len(), "{cal}");
    assert_eq!(events.len(), 4);
    let uids: HashSet<&str> = events.iter().map(|e| e["uid"].as_str().unwrap()).collect();
    assert_eq!(uids.len(), events.len(), "UIDs unique: {cal}");
    for e in events {
        let uid = e["uid"].as_str().unwrap();
        let id = uid.split('.').next().unwrap();
        assert_eq!(uid, format!("{id}.ev@127.0.0.1:{}", s.port));
        let (start, end) = &times[id];
        assert_eq!(e["start"].as_str(), Some(start.as_str()), "{e}");
        assert_eq!(e["end"].as_str(), end.as_deref(), "{e}");
        assert_eq!(e["url"], s.url(&format!("/collections/ev/items/{id}")));
        let item = s.json(&format!("/collections/ev/items/{id}")).await;
        assert_eq!(e["summary"], item["properties"]["Event Name"], "{e}");
        assert!(
            e["location"]
                .as_str()
                .unwrap()
                .starts_with(item["properties"]["Event Location"].as_str().unwrap()),
            "{e}"
        );
        // The same data gives the same stamp: the dataset's version time, not "now".
        assert_eq!(e["dtstamp"], events[0]["dtstamp"]);
    }
    let krakow = events
        .iter()
        .find(|e| e["uid"].as_str().unwrap().starts_with("k1."))
        .unwrap();
    assert_eq!(krakow["summary"], "Festiwal Kraków; rynek, \"główny\"");
    assert_eq!(krakow["location"], "Rynek Główny, Kraków, Stare Miasto");
    assert_eq!(
        krakow["start"], "2024-06-01T08:00:00Z",
        "Warsaw is UTC+2 in June"
    );
    assert!(
        krakow["description"]
            .as_str()
            .unwrap()
            .contains("Event Type: Festival")
    );
    let sp = events
        .iter()
        .find(|e| e["uid"].as_str().unwrap().starts_with("s1."))
        .unwrap();
    assert!(
        sp["summary"].as_str().unwrap().ends_with("Anhembi 東京 🎉"),
        "{sp}"
    );

    // Identical requests, identical bytes.
    let again = s
        .get("/collections/ev/items?f=ics")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(again.to_vec(), body);
}

#[tokio::test]
async fn ics_follows_every_items_filter() {
    let Some(py) = python() else { return };
    let s = server().await;
    for query in [
        "&datetime=2024-06-01T00:00:00Z/2024-06-04T00:00:00Z",
        "&Event%20Type=Sport",
        "&bbox=19.9,50.0,20.0,50.1",
        "&Event%20Type=Festival&bbox=19.9,50.0,20.0,50.1",
        "&limit=2",
    ] {
        let body = s
            .get(&format!("/collections/ev/items?f=ics{query}"))
            .await
            .bytes()
            .await
            .unwrap();
        let cal = read_ics(&py, &body);
        let mut got: Vec<String> = cal["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["uid"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        got.sort();
        if query == "&limit=2" {
            let want: Vec<String> = item_times(&s, "").await.into_keys().collect();
            assert_eq!(got.len(), 2, "{query}: {cal}");
            assert!(got.iter().all(|id| want.contains(id)), "{query}");
        } else {
            let mut want: Vec<String> = item_times(&s, query).await.into_keys().collect();
            want.sort();
            assert!(!want.is_empty(), "{query} selects something");
            assert_eq!(got, want, "{query}: {cal}");
        }
    }
    let r = s.get("/collections/ev/items?f=ics&datetime=soon").await;
    assert_eq!(r.status(), 400);
    let problem: Json = r.json().await.unwrap();
    assert_eq!(problem["parameter"], "datetime");
    let r = s
        .get_with("/collections/ev/items", &[("accept", "text/calendar")])
        .await;
    assert_eq!(content_type(&r), "text/calendar");
}
