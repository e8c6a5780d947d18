//! Server-rendered HTML for every resource: plain, accessible, readable on a phone.
//!
//! Written with `maud`, which escapes every interpolated value unless it is wrapped in
//! `PreEscaped`: a dataset title or a property value cannot become markup by
//! construction. Links start from `base` (the public URL, `--public-url` or the request's
//! host), so the pages work behind a proxy under a path prefix.

use crate::model::{DatasetInfo, FieldType, Value, human_time};
use crate::store::{StoredFeature, StoredGeometry};
use maud::{Markup, PreEscaped, html};
use serde_json::Value as Json;

/// Lower case, as the pages always began (tests and scrapers compare it verbatim).
pub const DOCTYPE: PreEscaped<&str> = PreEscaped("<!doctype html>");

/// Escapes text for HTML element content and attribute values (for callers that still
/// assemble markup by hand; the pages here are built with `maud`).
pub fn esc(s: &str) -> String {
    html! { (s) }.into_string()
}

/// A path segment of a link: a feature id may hold `/`, `?` or `#`.
fn seg(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e[1..].replace('+', "%20"))
        .unwrap_or_default()
}

/// The `<head>` every page shares: charset, viewport, title, icon, the stylesheets (names
/// under `/assets/`) and what the page adds (its data block and script).
pub fn head(root: &str, title: &str, stylesheets: &[&str], extra: Markup) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            link rel="icon" href={ (root) "/assets/favicon.svg" } type="image/svg+xml";
            @for css in stylesheets { link rel="stylesheet" href={ (root) "/assets/" (css) }; }
            (extra)
        }
    }
}

/// The page frame. `root` is the base URL, or `.` for pages at the top level whose
/// handlers have no base at hand (a relative link then resolves under any prefix).
fn frame(root: &str, title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(root, &format!("{title} · Tessera"), &["pages.css"], html! {}))
            body {
                header { a href={ (root) "/" } { "Tessera" } }
                main { (body) }
            }
        }
    }
    .into_string()
}

/// A page around a body that is already HTML (the API page builds its own).
pub fn page(title: &str, body: &str) -> String {
    frame(".", title, PreEscaped(body.to_owned()))
}

/// The data's period as calendar dates in the dataset's zone (a month of data reads
/// "November 2018"; otherwise "1 Nov 2018 to 30 Nov 2018", never the next midnight).
fn time_range(ds: &DatasetInfo) -> String {
    let Some((start, end)) = ds.time_extent_dates() else {
        return "–".into();
    };
    let whole_month = start.day() == 1
        && start.first_of_month() == end.first_of_month()
        && end == end.last_of_month();
    if whole_month {
        return start.strftime("%B %Y").to_string();
    }
    format!(
        "{} to {}",
        start.strftime("%-d %b %Y"),
        end.strftime("%-d %b %Y")
    )
}

fn collections_table(base: &str, datasets: &[DatasetInfo]) -> Markup {
    html! {
        div.wrap { table {
            caption.muted { "Datasets" }
            thead { tr {
                th scope="col" { "Dataset" } th scope="col" { "Kind" } th scope="col" { "Features" }
                th scope="col" { "Time" } th scope="col" { "Data" }
            } }
            tbody { @for d in datasets {
                @let c = format!("{base}/collections/{}", d.id);
                tr {
                    td { a href={ (c) "?f=html" } { (d.meta.title) } br; span.muted { (d.meta.description) } }
                    td { (d.meta.kind.name()) }
                    td { (d.feature_count) }
                    td { (time_range(d)) }
                    td {
                        a href={ (c) "/items?f=html" } { "browse" } " · "
                        a href={ (c) "/items?f=json&limit=1000" } { "GeoJSON" } " · "
                        a href={ (c) "/items?f=csv" } { "CSV" }
                    }
                }
            } }
        } }
    }
}

pub fn collections(base: &str, datasets: &[DatasetInfo]) -> String {
    frame(
        base,
        "Collections",
        html! { h1 { "Collections" } (collections_table(base, datasets)) },
    )
}

fn fields_table(d: &DatasetInfo, head: &str) -> Markup {
    html! {
        div.wrap { table {
            thead { tr { th scope="col" { (head) } th scope="col" { "Type" } } }
            tbody { @for f in &d.fields { tr { td { code { (f.name) } } td { (f.ty.name()) } } } }
        } }
    }
}

pub fn collection(base: &str, d: &DatasetInfo) -> String {
    let c = format!("{base}/collections/{}", d.id);
    let bounds = d.bounds.map_or("–".into(), |b| {
        format!(
            "{:.5}, {:.5}, {:.5}, {:.5}",
            b.min_x, b.min_y, b.max_x, b.max_y
        )
    });
    let no_geom: Vec<String> = d
        .without_geometry
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    let m = &d.meta;
    let body = html! {
        h1 { (m.title) }
        p { (m.description) }
        dl {
            dt { "Id" } dd { code { (d.id.as_str()) } }
            dt { "Kind" } dd { (m.kind.name()) }
            dt { "Features" } dd {
                (d.feature_count) " (" (d.without_geometry_total()) " without geometry"
                @if !no_geom.is_empty() { ": " (no_geom.join(", ")) } ")"
            }
            dt { "Geometry" } dd { (d.geometry_type.as_deref().unwrap_or("none")) }
            dt { "Bounds" } dd { (bounds) }
            dt { "Time" } dd { (time_range(d)) }
            dt { "Attribution" } dd { (m.attribution) }
            dt { "Licence" } dd { (m.licence) }
            dt { "Source" } dd {
                // Only web links become links: a `javascript:` source stays text.
                @if m.source.starts_with("https://") || m.source.starts_with("http://") {
                    a href=(m.source) { (m.source) }
                } @else { (m.source) }
            }
            dt { "Updated" } dd { (d.updated) }
        }
        p {
            a href={ (c) "/items?f=html" } { "Browse features" } " · "
            a href={ (c) "/items?limit=1000" } { "GeoJSON" } " · "
            a href={ (c) "/items?f=csv" } { "CSV download" } " · "
            a href={ (c) "/queryables" } { "Queryables" } " · "
            a href={ (c) "?f=json" } { "JSON" } " · "
            a href={ (base) "/maps/" (d.id) } { "Map" }
        }
        @if d.bounds.is_some() { (map_figure(base, d, "", "")) }
        h2 { "Fields" }
        (fields_table(d, "Name"))
    };
    frame(base, &m.title, body)
}

/// What the items page shows.
#[derive(Debug)]
pub struct ItemsPage<'a> {
    pub base: &'a str,
    pub ds: &'a DatasetInfo,
    pub features: &'a [StoredFeature],
    pub matched: u64,
    pub offset: u64,
    pub limit: u64,
    pub links: &'a [Json],
    /// The request's filters as a query string (bbox, datetime, within, properties).
    pub view: &'a str,
}

/// Picture size on the pages: the 1.91:1 of the link previews, at half their width.
const FIGURE_WIDTH: u32 = 600;
const FIGURE_HEIGHT: u32 = 315;

/// A small static map (the server-drawn picture, no script needed) and the link to the
/// interactive map. `picture` is the picture's query (its bbox and filters), `view` the
/// map page's (the same filters, in the map page's own words).
fn map_figure(base: &str, d: &DatasetInfo, picture: &str, view: &str) -> Markup {
    let mut src = format!(
        "{base}/maps/{}.png?width={FIGURE_WIDTH}&height={FIGURE_HEIGHT}",
        d.id
    );
    if !picture.is_empty() {
        src = format!("{src}&{picture}");
    }
    let href = map_href(base, d, view);
    html! {
        figure.map-figure {
            a href=(href) {
                img #map-picture src=(src) width=(FIGURE_WIDTH) height=(FIGURE_HEIGHT)
                    alt={ "Map of " (d.meta.title) };
            }
            figcaption { a #open-on-map href=(href) { "Open on the map" } }
        }
    }
}

fn map_href(base: &str, d: &DatasetInfo, view: &str) -> String {
    match view {
        "" => format!("{base}/maps/{}", d.id),
        q => format!("{base}/maps/{}?{q}", d.id),
    }
}

/// The extent of the positions on a page, widened so that one point or a row of points
/// still gives the picture an area (about 500 m at least, and a 5 % margin).
fn page_bbox(features: &[StoredFeature]) -> Option<[f64; 4]> {
    let mut b: Option<[f64; 4]> = None;
    for f in features {
        let [w, s, e, n] = match &f.geometry {
            None => continue,
            Some(StoredGeometry::Point { lon, lat }) => [*lon, *lat, *lon, *lat],
            Some(StoredGeometry::Shape { bounds: x, .. }) => [x.min_x, x.min_y, x.max_x, x.max_y],
        };
        b = Some(match b {
            None => [w, s, e, n],
            Some(a) => [a[0].min(w), a[1].min(s), a[2].max(e), a[3].max(n)],
        });
    }
    let [w, s, e, n] = b?;
    let mx = ((e - w) * 0.05).max(0.005);
    let my = ((n - s) * 0.05).max(0.005);
    Some([
        (w - mx).max(-180.0),
        (s - my).max(-85.0),
        (e + mx).min(180.0),
        (n + my).min(85.0),
    ])
}

fn cell(ty: FieldType, v: &Value) -> String {
    match v {
        // maud escapes what this returns.
        Value::Text(s) if ty.is_time() => human_time(ty, s).unwrap_or_else(|| s.clone()),
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Number(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Text(s) => s.clone(),
    }
}

fn position(g: &Option<StoredGeometry>) -> String {
    match g {
        None => "none".into(),
        Some(StoredGeometry::Point { lon, lat }) => format!("{lat:.5}, {lon:.5}"),
        Some(StoredGeometry::Shape { bounds, .. }) => format!(
            "around {:.4}, {:.4}",
            (bounds.min_y + bounds.max_y) / 2.0,
            (bounds.min_x + bounds.max_x) / 2.0
        ),
    }
}

pub fn items(p: &ItemsPage<'_>) -> String {
    let d = p.ds;
    let c = format!("{}/collections/{}", p.base, d.id);
    let shown_to = p.offset + p.features.len() as u64;
    let from = if p.features.is_empty() {
        0
    } else {
        p.offset + 1
    };
    let pager = p.links.iter().filter_map(|l| {
        let rel = l["rel"].as_str()?;
        let label = match rel {
            "next" => "Next page",
            "prev" => "Previous page",
            _ => return None,
        };
        Some((rel, l["href"].as_str().unwrap_or(""), label))
    });
    let body = html! {
        h1 { (d.meta.title) }
        p {
            "Features " (from) "–" (shown_to) " of " (p.matched) " matching (page size " (p.limit) "). "
            a href={ (c) "?f=html" } { "About this dataset" }
        }
        @if let Some([w, s, e, n]) = page_bbox(p.features) {
            @let picture = [format!("bbox={w:.6},{s:.6},{e:.6},{n:.6}"), picture_view(p.view)];
            (map_figure(p.base, d, picture.join("&").trim_end_matches('&'), p.view))
        } @else {
            // Nothing to draw on this page; the map of the same filters is still a link.
            p { a #open-on-map href=(map_href(p.base, d, p.view)) { "Open on the map" } }
        }
        nav.pager { @for (rel, href, label) in pager { a rel=(rel) href={ (href) "&f=html" } { (label) } } }
        div.wrap { table {
            thead { tr {
                th scope="col" { "id" } th scope="col" { "position" }
                @for f in &d.fields { th scope="col" { (f.name) } }
            } }
            tbody { @for f in p.features { tr {
                td { a href={ (c) "/items/" (seg(&f.id)) "?f=html" } { (f.id) } }
                td { (position(&f.geometry)) }
                @for (field, v) in d.fields.iter().zip(&f.values) { td { (cell(field.ty, v)) } }
            } } }
        } }
    };
    frame(p.base, &d.meta.title, body)
}

/// The filters without `bbox`, which the picture of a page replaces by the page's own
/// extent. The map link keeps the request's bbox: that is the view asked for.
fn picture_view(view: &str) -> String {
    view.split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("bbox="))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn item(base: &str, d: &DatasetInfo, f: &StoredFeature) -> String {
    let c = format!("{base}/collections/{}", d.id);
    let body = html! {
        h1 { (d.meta.title) " " span.muted { "#" (f.id) } }
        dl {
            dt { "position" } dd { (position(&f.geometry)) }
            @for (field, v) in d.fields.iter().zip(&f.values) { dt { (field.name) } dd { (cell(field.ty, v)) } }
        }
        p {
            a href={ (c) "/items/" (seg(&f.id)) "?f=json" } { "GeoJSON" } " · "
            a href={ (c) "/items?f=html" } { "All features" }
        }
    };
    frame(base, &d.meta.title, body)
}

pub fn conformance(classes: &[&str]) -> String {
    frame(
        ".",
        "Conformance",
        html! { h1 { "Conformance classes" } ul { @for c in classes { li { code { (c) } } } } },
    )
}

pub fn queryables(base: &str, d: &DatasetInfo) -> String {
    let body = html! {
        h1 { "Queryables of " (d.meta.title) }
        p { "Filter items with " code { "?name=value" } "; the value is read as the property's type." }
        (fields_table(d, "Property"))
    };
    frame(base, &d.meta.title, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn feature_ids_are_one_path_segment() {
        assert_eq!(seg("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }
}
