//! `/dashboards/{id}` and its cards: the numbers on the page equal what the test counts
//! itself from the items of the same filters, every card is its own URL, and cards may
//! be framed by other sites.

use crate::support::{Server, features, fixture_request};
use serde_json::Value as Json;
use std::collections::HashMap;

const FEB: &str = "datetime=2025-02-01T00:00:00-05:00/2025-02-20T23:59:59-05:00";

async fn server() -> Server {
    let s = Server::start().await;
    let mut req = fixture_request("nyc", "nyc-311-sample.csv");
    req.timezone = tessera::model::time::parse_zone("America/New_York").unwrap();
    req.meta.category = Some("Complaint Type".into());
    req.options.id_column = Some("Unique Key".into());
    s.import(&req);
    s
}

/// Every item of the dataset: (time in Unix seconds, category, lon/lat).
async fn all_items(s: &Server) -> Vec<(i64, String, Option<(f64, f64)>)> {
    let fc = s.json("/collections/nyc/items?limit=1000").await;
    features(&fc)
        .iter()
        .map(|f| {
            let t: jiff::Timestamp = f["time"]["timestamp"].as_str().unwrap().parse().unwrap();
            let cat = f["properties"]["Complaint Type"]
                .as_str()
                .unwrap()
                .to_owned();
            let pos = f["geometry"]["coordinates"]
                .as_array()
                .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()));
            (t.as_second(), cat, pos)
        })
        .collect()
}

/// The text of the element carrying `data-kpi="{name}"`.
fn kpi(html: &str, name: &str) -> String {
    let tag = format!("data-kpi=\"{name}\">");
    let at = html
        .find(&tag)
        .unwrap_or_else(|| panic!("no {tag} in {html}"))
        + tag.len();
    html[at..at + html[at..].find('<').unwrap()].to_owned()
}

fn count_of(text: &str) -> u64 {
    text.replace(',', "").parse().unwrap()
}

async fn page(s: &Server, path: &str) -> (reqwest::header::HeaderMap, String) {
    let r = s.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    let h = r.headers().clone();
    (h, r.text().await.unwrap())
}

#[tokio::test]
async fn totals_and_change_equal_counts_of_the_items() {
    let s = server().await;
    let items = all_items(&s).await;
    let secs = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_second();
    // 1 to 20 February 2025 in New York, the data's zone, and the 20 days before.
    let (start, end) = (
        secs("2025-02-01T00:00:00-05:00"),
        secs("2025-02-21T00:00:00-05:00") - 1,
    );
    let len = end - start + 1;
    let in_range = |a: i64, b: i64, cat: Option<&str>| {
        items
            .iter()
            .filter(|(t, c, _)| (a..=b).contains(t) && cat.is_none_or(|x| x == c))
            .count() as u64
    };
    let current = in_range(start, end, None);
    let previous = in_range(start - len, start - 1, None);
    assert!(
        current > 0 && previous > 0 && current != previous,
        "{current} {previous}"
    );

    let (headers, html) = page(&s, &format!("/dashboards/nyc?{FEB}")).await;
    assert_eq!(count_of(&kpi(&html, "total")), current);
    assert_eq!(count_of(&kpi(&html, "previous")), previous);
    let words = kpi(&html, "change");
    let pct = (current as f64 - previous as f64) / previous as f64 * 100.0;
    let direction = if pct > 0.0 { "up " } else { "down " };
    assert!(words.starts_with(direction), "{words} vs {pct}");
    let shown: f64 = words[direction.len()..]
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!((shown - pct.abs()).abs() <= 0.5, "{words} vs {pct}");
    assert!(html.contains("1 Feb 2025 to 20 Feb 2025"), "{html}");
    // Readable without colour: the arrow is decoration, the words say it.
    assert!(html.contains(r#"<span class="arrow" aria-hidden="true">"#));
    // The series is an SVG with a title per bar and a table alternative.
    assert!(html.contains("<svg class=\"series-chart\""), "{html}");
    assert!(html.contains("<table>"));
    let bars = html.matches("<rect class=\"bar\"").count();
    assert_eq!(bars, 20, "one bar per day");
    // Frames: the page may be embedded (CSP frame-ancestors), nothing forbids it.
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    assert!(!headers.contains_key("x-frame-options"));

    // A category filter narrows every number the same way.
    let cat = "Animal-Abuse";
    let (_, html) = page(
        &s,
        &format!("/dashboards/nyc?{FEB}&Complaint%20Type=Animal-Abuse"),
    )
    .await;
    assert_eq!(
        count_of(&kpi(&html, "total")),
        in_range(start, end, Some(cat))
    );
    assert_eq!(
        count_of(&kpi(&html, "previous")),
        in_range(start - len, start - 1, Some(cat))
    );
}

#[tokio::test]
async fn top_categories_and_bbox_follow_the_filters() {
    let s = server().await;
    let items = all_items(&s).await;
    let bbox = (-74.0, 40.6, -73.9, 40.8);
    let inside = |p: &Option<(f64, f64)>| {
        p.is_some_and(|(x, y)| x >= bbox.0 && x <= bbox.2 && y >= bbox.1 && y <= bbox.3)
    };
    let mut want: HashMap<String, u64> = HashMap::new();
    for (_, c, p) in &items {
        if inside(p) {
            *want.entry(c.clone()).or_default() += 1;
        }
    }
    let total: u64 = want.values().sum();
    assert!(total > 0 && total < items.len() as u64);
    let (_, html) = page(
        &s,
        "/dashboards/nyc/cards/categories?bbox=-74,40.6,-73.9,40.8",
    )
    .await;
    let mut got: HashMap<String, u64> = HashMap::new();
    let list = &html[html.find("<ol class=\"bar-list\">").unwrap()..];
    let list = &list[..list.find("</ol>").unwrap()];
    for li in list.split("<li").skip(1) {
        let label = &li[li.find("bar-label\">").unwrap() + 11..];
        let label = &label[..label.find('<').unwrap()];
        let n = &li[li.find("data-count=\"").unwrap() + 12..];
        let n: u64 = n[..n.find('"').unwrap()].parse().unwrap();
        got.insert(label.replace("&amp;", "&"), n);
    }
    if got.contains_key("Other") {
        assert_eq!(got.values().sum::<u64>(), total);
    } else {
        assert_eq!(got, want, "{html}");
    }
    let (_, html) = page(&s, "/dashboards/nyc/cards/total?bbox=-74,40.6,-73.9,40.8").await;
    assert_eq!(count_of(&kpi(&html, "total")), total);
}

#[tokio::test]
async fn every_card_is_its_own_url_with_an_embed_line() {
    let s = server().await;
    let q = "datetime=2025-01-01/2025-03-31";
    let (_, page_html) = page(&s, &format!("/dashboards/nyc?{q}")).await;
    for card in ["total", "change", "series", "categories", "areas"] {
        let url = s.url(&format!("/dashboards/nyc/cards/{card}?{q}"));
        assert!(
            page_html.contains(&format!("&lt;iframe src=&quot;{url}&quot;")),
            "embed line of {card}"
        );
        let (headers, html) = page(&s, &format!("/dashboards/nyc/cards/{card}?{q}")).await;
        assert!(html.contains(&format!("id=\"card-{card}\"")), "{html}");
        assert!(
            !html.contains("class=\"cards\""),
            "a card alone, not the page"
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors *"), "{csp}");
    }
    let r = s.get("/dashboards/nyc/cards/pie").await;
    assert_eq!(r.status(), 404);
    let r = s.get("/dashboards/nope").await;
    assert_eq!(r.status(), 404);
    for (query, param) in [
        ("datetime=soon", "datetime"),
        ("colour=red", "colour"),
        ("bbox=1,2", "bbox"),
    ] {
        let r = s.get(&format!("/dashboards/nyc/cards/total?{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        let p: Json = r.json().await.unwrap();
        assert_eq!(p["parameter"], param, "{query}: {p}");
    }
}

/// A site that allows framing only by itself keeps its cards to itself.
#[tokio::test]
async fn frame_ancestors_setting_reaches_cards() {
    let s = Server::start_with(|st| st.frame_ancestors = "'self'".into()).await;
    let mut req = fixture_request("nyc", "nyc-311-sample.csv");
    req.meta.category = Some("Complaint Type".into());
    s.import(&req);
    let (headers, _) = page(&s, "/dashboards/nyc/cards/total").await;
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
}
