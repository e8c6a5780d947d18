//! Time values mean what the data says: a date stays a date, a month a month, in every
//! output, and the periods shown for them end where they end.

use crate::support::*;
use serde_json::Value as Json;

async fn text(s: &Server, path: &str) -> String {
    let r = s.get(path).await;
    let status = r.status();
    let body = r.text().await.expect("body");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The first feature whose `field` is `value`, as GeoJSON.
async fn feature_where(s: &Server, id: &str, field: &str, value: &str) -> Json {
    let fc = s.items(id, &[(field, value), ("limit", "1")]).await;
    fc["features"][0].clone()
}

#[tokio::test]
async fn date_only_values_stay_dates_regression() {
    // Chicago publishes local dates; read them in Chicago's zone, as a user would.
    let s = Server::start().await;
    let mut req = fixture_request("food", "chicago-food-sample.csv");
    req.timezone = tessera::model::time::parse_zone("America/Chicago").unwrap();
    s.import(&req);

    // Before: "2013-01-31T06:00:00Z", a time of day nobody published.
    let f = feature_where(&s, "food", "Inspection_Date", "2013-01-31").await;
    assert_eq!(f["properties"]["Inspection_Date"], "2013-01-31", "{f}");
    let fid = f["id"].to_string();
    // Its time (JSON-FG `time`) is that local day.
    assert_eq!(f["time"], serde_json::json!({"date": "2013-01-31"}), "{f}");

    let csv = text(
        &s,
        "/collections/food/items?f=csv&Inspection_Date=2013-01-31",
    )
    .await;
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = header.iter().position(|h| h == "Inspection_Date").unwrap();
    let first = rows.records().next().expect("a row").unwrap();
    assert_eq!(&first[col], "2013-01-31");

    let html = text(&s, &format!("/collections/food/items/{fid}?f=html")).await;
    assert!(html.contains("<dd>31 Jan 2013</dd>"), "{html}");
    let page = text(
        &s,
        "/collections/food/items?f=html&Inspection_Date=2013-01-31",
    )
    .await;
    assert!(page.contains("<td>31 Jan 2013</td>"), "{page}");

    // The feature's time is the whole local day: 23:30 in Chicago is still 31 January,
    // 03:00 UTC that morning (30 January in Chicago) is not.
    let filter = |dt: &'static str| [("Inspection_Date", "2013-01-31"), ("datetime", dt)];
    let late = s.items("food", &filter("2013-01-31T23:30:00-06:00")).await;
    assert!(number_matched(&late) > 0, "{late}");
    let before = s.items("food", &filter("2013-01-31T03:00:00Z")).await;
    assert_eq!(number_matched(&before), 0, "{before}");

    // The period shown is local dates with their offsets: the last day of data is
    // 25 November 2014 in Chicago, not 26 November (its midnight in UTC).
    let c = s.json("/collections/food").await;
    assert_eq!(
        c["extent"]["temporal"]["interval"][0],
        serde_json::json!(["2011-09-08T00:00:00-05:00", "2014-11-25T23:59:59-06:00"])
    );
    let h = s.json("/collections/food/histogram?bucket=day").await;
    let buckets = h["buckets"].as_array().unwrap();
    assert_eq!(buckets[0]["start"], "2011-09-08T00:00:00-05:00");
    assert_eq!(
        buckets[buckets.len() - 1]["end"],
        "2014-11-25T23:59:59-06:00"
    );
    let about = text(&s, "/collections/food?f=html").await;
    assert!(
        about.contains("<dd>8 Sep 2011 to 25 Nov 2014</dd>"),
        "{about}"
    );

    // A date filter takes a date, and names the parameter when it is not one.
    let r = s
        .get("/collections/food/items?Inspection_Date=Krak%C3%B3w")
        .await;
    assert_eq!(r.status(), 400);
    let problem: Json = r.json().await.unwrap();
    assert!(problem.to_string().contains("Inspection_Date"), "{problem}");
}

#[tokio::test]
async fn month_values_stay_months_regression() {
    let s = Server::with_fixture("uk", "uk-crime-sample.csv").await;
    let f = feature_where(&s, "uk", "Month", "2018-11").await;
    // Before: "2018-11-01T00:00:00Z".
    assert_eq!(f["properties"]["Month"], "2018-11", "{f}");
    assert_eq!(
        f["time"],
        serde_json::json!({"interval": ["2018-11-01", "2018-11-30"]}),
        "{f}"
    );
    let fid = f["id"].to_string();
    let csv = text(&s, "/collections/uk/items?f=csv&limit=1").await;
    assert!(csv.lines().nth(1).unwrap().contains(",2018-11,"), "{csv}");
    let html = text(&s, &format!("/collections/uk/items/{fid}?f=html")).await;
    assert!(html.contains("<dd>November 2018</dd>"), "{html}");
    // The dataset's period is that month, not "2018-11-01 to 2018-11-30T23:59:59Z".
    let about = text(&s, "/collections/uk?f=html").await;
    assert!(about.contains("<dd>November 2018</dd>"), "{about}");
    // The whole month is the features' time.
    let last_second = s
        .items(
            "uk",
            &[("datetime", "2018-11-30T23:59:59Z"), ("limit", "1")],
        )
        .await;
    assert_eq!(number_matched(&last_second), 200);
}

/// Twelve months of crime ending in January 2019: week bars (a year of data) used to
/// run to the end of the ISO week holding 31 January, so the period shown ended on
/// Sunday 3 February and began on Monday 29 January 2018.
#[tokio::test]
async fn month_period_ends_on_31_january_not_3_february_regression() {
    let s = Server::start().await;
    let mut csv = String::from("Crime ID,Month,Longitude,Latitude,Crime type\n");
    for (i, m) in ["2018-02", "2018-06", "2018-10", "2019-01"]
        .iter()
        .enumerate()
    {
        csv.push_str(&format!("c{i},{m},-2.58,51.45,Burglary\n"));
    }
    let file = s.data.write("months.csv", csv);
    s.import(&request("uk", &[file]));
    for q in ["", "?bucket=week", "?bucket=day", "?bucket=month"] {
        let h = s.json(&format!("/collections/uk/histogram{q}")).await;
        let buckets = h["buckets"].as_array().unwrap();
        let (first, last) = (&buckets[0], &buckets[buckets.len() - 1]);
        assert_eq!(first["start"], "2018-02-01T00:00:00Z", "{q}: {first}");
        assert_eq!(last["end"], "2019-01-31T23:59:59Z", "{q}: {last}");
        assert_eq!(h["total"], 4, "{q}");
        let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
        assert_eq!(counted, 4, "{q}: every row in a bucket");
    }
    let about = text(&s, "/collections/uk?f=html").await;
    assert!(
        about.contains("<dd>1 Feb 2018 to 31 Jan 2019</dd>"),
        "{about}"
    );
    let c = s.json("/collections/uk").await;
    assert_eq!(
        c["extent"]["temporal"]["interval"][0][1],
        "2019-01-31T23:59:59Z"
    );
}

/// Months read in Warsaw begin at local midnight, 23:00 UTC the day before: bucketed in
/// UTC, January's crimes were counted in December.
#[tokio::test]
async fn month_buckets_follow_the_dataset_zone_regression() {
    let s = Server::start().await;
    let csv = "Crime ID,Month,Longitude,Latitude\na,2018-12,21.0,52.2\nb,2019-01,21.0,52.2\nc,2019-01,21.0,52.2\n";
    let mut req = request("pl", &[s.data.write("pl.csv", csv)]);
    req.timezone = tessera::model::time::parse_zone("Europe/Warsaw").unwrap();
    s.import(&req);
    let h = s.json("/collections/pl/histogram?bucket=month").await;
    assert_eq!(
        h["buckets"],
        serde_json::json!([
            {"start": "2018-12-01T00:00:00+01:00", "end": "2018-12-31T23:59:59+01:00", "count": 1},
            {"start": "2019-01-01T00:00:00+01:00", "end": "2019-01-31T23:59:59+01:00", "count": 2},
        ])
    );
    let days = s.json("/collections/pl/histogram?bucket=day").await;
    let days = days["buckets"].as_array().unwrap();
    assert_eq!(days.len(), 62);
    assert_eq!(days[31]["start"], "2019-01-01T00:00:00+01:00");
    assert_eq!(days[31]["count"], 2);
    assert_eq!(days[0]["count"], 1);
    let f = s.items("pl", &[("Month", "2019-01")]).await;
    assert_eq!(number_matched(&f), 2);
    assert_eq!(f["features"][0]["properties"]["Month"], "2019-01");
    // The whole month in Warsaw, not 31 December to 30 January as UTC dates.
    assert_eq!(
        f["features"][0]["time"],
        serde_json::json!({"interval": ["2019-01-01", "2019-01-31"]})
    );
}

/// SQLite's integer division truncates toward zero: before 1970 an afternoon was counted
/// in the next day's bucket (and the next week's, for a Monday-to-Sunday week).
#[tokio::test]
async fn times_before_1970_fall_in_their_own_day_regression() {
    let s = Server::start().await;
    let csv =
        "id,date,lon,lat\na,1969-12-31T15:00:00Z,-2.58,51.45\nb,1970-01-01T09:00:00Z,-2.58,51.45\n";
    s.import(&request("old", &[s.data.write("old.csv", csv)]));
    let h = s.json("/collections/old/histogram?bucket=day").await;
    assert_eq!(
        h["buckets"],
        serde_json::json!([
            {"start": "1969-12-31T15:00:00Z", "end": "1969-12-31T23:59:59Z", "count": 1},
            {"start": "1970-01-01T00:00:00Z", "end": "1970-01-01T09:00:00Z", "count": 1},
        ])
    );
    let w = s.json("/collections/old/histogram?bucket=week").await;
    assert_eq!(w["buckets"][0]["count"], 2, "{w}");
}

/// An instant is a JSON-FG timestamp in UTC; an event's start and end an interval.
#[tokio::test]
async fn instants_and_intervals_are_timestamps() {
    let s = Server::with_fixture("mpls", "mpls-stops-sample.csv").await;
    let fc = s.items("mpls", &[("limit", "1")]).await;
    let t = &fc["features"][0]["time"];
    let ts = t["timestamp"].as_str().unwrap_or_else(|| panic!("{t}"));
    assert!(ts.ends_with('Z') && ts.len() == 20, "{t}");
    let mut req = fixture_request("ev", "nyc-events-sample.csv");
    req.time = Some("Start Date/Time".into());
    req.time_end = Some("End Date/Time".into());
    req.timezone = tessera::model::time::parse_zone("America/New_York").unwrap();
    s.import(&req);
    let ev = s.items("ev", &[("limit", "1")]).await;
    let t = &ev["features"][0]["time"]["interval"];
    let (a, b) = (t[0].as_str().unwrap(), t[1].as_str().unwrap());
    assert!(a.ends_with('Z') && b.ends_with('Z') && a < b, "{t}");
}

/// Portals often publish dates as `12/30/2014`: a column of them is a date column, not
/// instants at a midnight in UTC.
#[tokio::test]
async fn us_slash_dates_without_a_clock_stay_dates_regression() {
    let s = Server::start().await;
    let csv = "id,Inspection Date,Latitude,Longitude\na,12/30/2014,41.88,-87.63\nb,1/2/2015,41.88,-87.63\n";
    let mut req = request("insp", &[s.data.write("insp.csv", csv)]);
    req.timezone = tessera::model::time::parse_zone("America/Chicago").unwrap();
    s.import(&req);
    let q = s.json("/collections/insp/queryables").await;
    assert_eq!(q["properties"]["Inspection Date"]["format"], "date", "{q}");
    let f = feature_where(&s, "insp", "Inspection Date", "2014-12-30").await;
    assert_eq!(f["properties"]["Inspection Date"], "2014-12-30", "{f}");
    assert_eq!(f["time"], serde_json::json!({"date": "2014-12-30"}), "{f}");
}
