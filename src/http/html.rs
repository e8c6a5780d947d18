//! Server-rendered HTML for every resource: plain, accessible, readable on a phone.

use crate::model::{DatasetInfo, FieldType, Value, human_time};
use crate::store::{StoredFeature, StoredGeometry};
use serde_json::Value as Json;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}
header{background:#1d3557;color:#fff;padding:.75rem 1rem}header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:72rem;margin:0 auto;padding:1rem}a{color:#1d4ed8}table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#eef}
.wrap{overflow-x:auto}.muted{color:#555}nav.pager a{margin-right:1rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{font-weight:600}code{background:#eee;padding:0 .2rem}";

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t} · Tessera</title><style>{STYLE}</style></head><body><header><a href=\"/\">Tessera</a></header><main>{body}</main></body></html>",
        t = esc(title)
    )
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

fn collections_table(datasets: &[DatasetInfo]) -> String {
    let mut b = String::from(
        "<div class=\"wrap\"><table><caption class=\"muted\">Datasets</caption><thead><tr><th scope=\"col\">Dataset</th><th scope=\"col\">Kind</th><th scope=\"col\">Features</th><th scope=\"col\">Time</th><th scope=\"col\">Data</th></tr></thead><tbody>",
    );
    for d in datasets {
        let id = esc(d.id.as_str());
        b.push_str(&format!(
            "<tr><td><a href=\"/collections/{id}?f=html\">{}</a><br><span class=\"muted\">{}</span></td><td>{}</td><td>{}</td><td>{}</td>\
             <td><a href=\"/collections/{id}/items?f=html\">browse</a> · <a href=\"/collections/{id}/items?f=json&amp;limit=1000\">GeoJSON</a> · <a href=\"/collections/{id}/items?f=csv\">CSV</a></td></tr>",
            esc(&d.meta.title),
            esc(&d.meta.description),
            d.meta.kind.name(),
            d.feature_count,
            time_range(d)
        ));
    }
    b.push_str("</tbody></table></div>");
    b
}

pub fn collections(datasets: &[DatasetInfo]) -> String {
    page(
        "Collections",
        &format!("<h1>Collections</h1>{}", collections_table(datasets)),
    )
}

pub fn collection(d: &DatasetInfo) -> String {
    let id = esc(d.id.as_str());
    let mut fields = String::new();
    for f in &d.fields {
        fields.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&f.name),
            f.ty.name()
        ));
    }
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
    let body = format!(
        "<h1>{title}</h1><p>{desc}</p><dl><dt>Id</dt><dd><code>{id}</code></dd><dt>Kind</dt><dd>{kind}</dd>\
         <dt>Features</dt><dd>{count} ({nog} without geometry{reasons})</dd><dt>Geometry</dt><dd>{gt}</dd><dt>Bounds</dt><dd>{bounds}</dd>\
         <dt>Time</dt><dd>{time}</dd><dt>Attribution</dt><dd>{attr}</dd><dt>Licence</dt><dd>{lic}</dd><dt>Source</dt><dd>{src}</dd><dt>Updated</dt><dd>{upd}</dd></dl>\
         <p><a href=\"/collections/{id}/items?f=html\">Browse features</a> · <a href=\"/collections/{id}/items?limit=1000\">GeoJSON</a> · \
         <a href=\"/collections/{id}/items?f=csv\">CSV download</a> · <a href=\"/collections/{id}/queryables\">Queryables</a> · <a href=\"/collections/{id}?f=json\">JSON</a></p>\
         <h2>Fields</h2><div class=\"wrap\"><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Type</th></tr></thead><tbody>{fields}</tbody></table></div>",
        title = esc(&d.meta.title),
        desc = esc(&d.meta.description),
        kind = d.meta.kind.name(),
        count = d.feature_count,
        nog = d.without_geometry_total(),
        reasons = if no_geom.is_empty() {
            String::new()
        } else {
            format!(": {}", no_geom.join(", "))
        },
        gt = esc(d.geometry_type.as_deref().unwrap_or("none")),
        time = time_range(d),
        attr = esc(&d.meta.attribution),
        lic = esc(&d.meta.licence),
        src = if d.meta.source.starts_with("http") {
            format!("<a href=\"{0}\">{0}</a>", esc(&d.meta.source))
        } else {
            esc(&d.meta.source)
        },
        upd = esc(&d.updated),
    );
    page(&d.meta.title, &body)
}

/// What the items page shows.
#[derive(Debug)]
pub struct ItemsPage<'a> {
    pub ds: &'a DatasetInfo,
    pub features: &'a [StoredFeature],
    pub matched: u64,
    pub offset: u64,
    pub limit: u64,
    pub links: &'a [Json],
}

fn cell(ty: FieldType, v: &Value) -> String {
    match v {
        Value::Text(s) if ty.is_time() => esc(&human_time(ty, s).unwrap_or_else(|| s.clone())),
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Number(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Text(s) => esc(s),
    }
}

fn position(g: &Option<StoredGeometry>) -> String {
    match g {
        None => "none".into(),
        Some(StoredGeometry::Point { lon, lat }) => format!("{lat:.5}, {lon:.5}"),
        Some(StoredGeometry::GeoJson { bounds, .. }) => format!(
            "around {:.4}, {:.4}",
            (bounds.min_y + bounds.max_y) / 2.0,
            (bounds.min_x + bounds.max_x) / 2.0
        ),
    }
}

pub fn items(p: &ItemsPage<'_>) -> String {
    let d = p.ds;
    let id = esc(d.id.as_str());
    let mut head = String::from("<th scope=\"col\">id</th><th scope=\"col\">position</th>");
    for f in &d.fields {
        head.push_str(&format!("<th scope=\"col\">{}</th>", esc(&f.name)));
    }
    let mut rows = String::new();
    for f in p.features {
        let fid = esc(&f.id);
        rows.push_str(&format!(
            "<tr><td><a href=\"/collections/{id}/items/{fid}?f=html\">{fid}</a></td><td>{}</td>",
            position(&f.geometry)
        ));
        for (field, v) in d.fields.iter().zip(&f.values) {
            rows.push_str(&format!("<td>{}</td>", cell(field.ty, v)));
        }
        rows.push_str("</tr>");
    }
    let mut pager = String::new();
    for l in p.links {
        let rel = l["rel"].as_str().unwrap_or("");
        if rel == "next" || rel == "prev" {
            let href = l["href"].as_str().unwrap_or("");
            let label = if rel == "next" {
                "Next page"
            } else {
                "Previous page"
            };
            pager.push_str(&format!(
                "<a rel=\"{rel}\" href=\"{}&amp;f=html\">{label}</a>",
                esc(href)
            ));
        }
    }
    let shown_to = p.offset + p.features.len() as u64;
    let body = format!(
        "<h1>{title}</h1><p>Features {from}–{shown_to} of {matched} matching (page size {limit}). \
         <a href=\"/collections/{id}?f=html\">About this dataset</a></p><nav class=\"pager\">{pager}</nav>\
         <div class=\"wrap\"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>",
        title = esc(&d.meta.title),
        from = if p.features.is_empty() {
            0
        } else {
            p.offset + 1
        },
        matched = p.matched,
        limit = p.limit,
    );
    page(&d.meta.title, &body)
}

pub fn item(d: &DatasetInfo, f: &StoredFeature) -> String {
    let mut rows = String::new();
    for (field, v) in d.fields.iter().zip(&f.values) {
        rows.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            esc(&field.name),
            cell(field.ty, v)
        ));
    }
    let body = format!(
        "<h1>{} <span class=\"muted\">#{}</span></h1><dl><dt>position</dt><dd>{}</dd>{rows}</dl>\
         <p><a href=\"/collections/{id}/items/{fid}?f=json\">GeoJSON</a> · <a href=\"/collections/{id}/items?f=html\">All features</a></p>",
        esc(&d.meta.title),
        esc(&f.id),
        position(&f.geometry),
        id = esc(d.id.as_str()),
        fid = esc(&f.id),
    );
    page(&d.meta.title, &body)
}

pub fn conformance(classes: &[&str]) -> String {
    let items: String = classes
        .iter()
        .map(|c| format!("<li><code>{}</code></li>", esc(c)))
        .collect();
    page(
        "Conformance",
        &format!("<h1>Conformance classes</h1><ul>{items}</ul>"),
    )
}

pub fn queryables(d: &DatasetInfo) -> String {
    let mut rows = String::new();
    for f in &d.fields {
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            esc(&f.name),
            f.ty.name()
        ));
    }
    let body = format!(
        "<h1>Queryables of {}</h1><p>Filter items with <code>?name=value</code>; the value is read as the property's type.</p>\
         <div class=\"wrap\"><table><thead><tr><th scope=\"col\">Property</th><th scope=\"col\">Type</th></tr></thead><tbody>{rows}</tbody></table></div>",
        esc(&d.meta.title)
    );
    page(&d.meta.title, &body)
}
