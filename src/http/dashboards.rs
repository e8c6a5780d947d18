//! `/dashboards/{id}`: a dataset's numbers as cards, and each card alone at
//! `/dashboards/{id}/cards/{card}` for an `<iframe>` on another site. Both take the
//! map's filters (`datetime`, `bbox`, `within`, property filters, and `bucket` for the
//! time series) from the query string, parsed by [`crate::query`] like every items,
//! histogram and tile request; the numbers come from [`crate::dashboard`].
//!
//! Frames: pages carry the CSP `frame-ancestors` of `--frame-ancestors` (default `*`,
//! see [`super::security`]) and no `X-Frame-Options`, so a card embeds anywhere the
//! operator allows. The top-areas card is filled in the browser (`assets/dashboard.js`)
//! from `/collections/{id}/aggregate?by={areas}` with the same filters.

use super::error::ApiError;
use super::extract::dataset;
use super::features::with_snapshot;
use super::html::{DOCTYPE, head};
use super::pages::share_meta;
use super::{AppState, base_url, content_type};
use crate::dashboard::{self, Change, Numbers, svg, thousands};
use crate::model::{DatasetInfo, TimeRange};
use crate::query::{self, ParamSet};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

/// The cards, in page order: URL name and heading.
pub const CARDS: &[(&str, &str)] = &[
    ("total", "Total"),
    ("change", "Change on the previous period"),
    ("series", "Over time"),
    ("categories", "Top categories"),
    ("areas", "Top areas"),
];

/// What a page or card is drawn from.
struct View {
    base: String,
    ds: DatasetInfo,
    /// The validated query string, passed on to card, embed and API links.
    query: String,
    filters: Vec<(String, String)>,
    numbers: Numbers,
    /// The boundary dataset whose areas the top-areas card counts into.
    areas: Option<DatasetInfo>,
}

async fn view(
    state: &AppState,
    headers: &HeaderMap,
    id: String,
    q: Option<String>,
) -> Result<View, ApiError> {
    let base = base_url(state, headers);
    with_snapshot(state, move |s| {
        let ds = dataset(s, &id)?;
        let mut req = query::parse_items(&ds, q.as_deref(), ParamSet::Histogram)?;
        query::resolve_within(s, &mut req)?;
        let numbers = dashboard::numbers(s, &ds, &req.query, req.bucket)?;
        let areas = s.datasets()?.into_iter().find(|d| {
            d.id != ds.id
                && matches!(d.geometry_type.as_deref(), Some("Polygon" | "MultiPolygon"))
                && matches!((d.bounds, ds.bounds), (Some(a), Some(b)) if a.intersects(&b))
        });
        let filters = query::pairs(q.as_deref())?;
        Ok(View {
            base,
            ds,
            query: q.unwrap_or_default(),
            filters,
            numbers,
            areas,
        })
    })
    .await
}

fn html_response(body: String) -> Response {
    ([content_type("text/html; charset=utf-8")], body).into_response()
}

/// `GET /dashboards/{id}`.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let v = view(&state, &headers, id, q).await?;
    Ok(html_response(page_html(&v)))
}

/// `GET /dashboards/{id}/cards/{card}`.
pub async fn card(
    State(state): State<AppState>,
    Path((id, card)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let Some(&(name, _)) = CARDS.iter().find(|(n, _)| *n == card) else {
        let names: Vec<&str> = CARDS.iter().map(|(n, _)| *n).collect();
        return Err(ApiError::not_found(format!(
            "no card `{card}`: the cards are {}",
            names.join(", ")
        )));
    };
    let v = view(&state, &headers, id, q).await?;
    Ok(html_response(card_html(&v, name)))
}

fn with_query(url: String, query: &str) -> String {
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

/// The dashboard's filters as a map view's query: all but `bucket`, which only the time
/// series reads (the picture, the map page and the counts by area would refuse it).
fn map_view_query(v: &View) -> String {
    let kept: Vec<&(String, String)> = v.filters.iter().filter(|(k, _)| k != "bucket").collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

fn date(ds: &DatasetInfo, secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| {
            t.to_zoned_datetime(ds.zone())
                .strftime("%-d %b %Y")
                .to_string()
        })
        .unwrap_or_default()
}

/// "1 Jan 2025 to 31 Jan 2025" in the dataset's zone.
fn span(ds: &DatasetInfo, t: TimeRange) -> String {
    format!("{} to {}", date(ds, t.start), date(ds, t.end))
}

fn page_html(v: &View) -> String {
    let ds = &v.ds;
    let title = format!("{} – dashboard", ds.meta.title);
    let view = map_view_query(v);
    let share = serde_json::json!({
        "image": with_query(format!("{}/maps/{}.png", v.base, ds.id), &view),
        "width": super::picture::DEFAULT_WIDTH,
        "height": super::picture::DEFAULT_HEIGHT,
        "url": with_query(format!("{}/dashboards/{}", v.base, ds.id), &v.query),
        "description": format!("{} – the numbers of this view", ds.meta.title),
    });
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&v.base, &format!("{title} – Tessera"), &["pages.css", "dashboard.css"], html! {
                (share_meta(&title, &share))
                script type="module" src={ (v.base) "/assets/dashboard.js" } {}
            }))
            body.dashboard-page {
                header {
                    a href={ (v.base) "/" } { "Tessera" }
                    " · "
                    a #map-link href=(with_query(format!("{}/maps/{}", v.base, ds.id), &view)) { "Map of " (ds.meta.title) }
                }
                main {
                    h1 { (ds.meta.title) }
                    p.lead { (ds.meta.description) }
                    (filters(v))
                    div.cards {
                        @for (name, _) in CARDS {
                            (card_section(v, name, true))
                        }
                    }
                    p.attribution { "Data: " (ds.meta.attribution) " · " (ds.meta.licence) }
                }
            }
        }
    }
    .into_string()
}

fn card_html(v: &View, name: &str) -> String {
    let dashboard = with_query(format!("{}/dashboards/{}", v.base, v.ds.id), &v.query);
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&v.base, &format!("{} – {}", v.ds.meta.title, heading(name)), &["dashboard.css"], html! {
                script type="module" src={ (v.base) "/assets/dashboard.js" } {}
            }))
            body.card-page {
                (card_section(v, name, false))
                p.card-source {
                    a href=(dashboard) target="_blank" rel="noopener" { (v.ds.meta.title) " dashboard" }
                    " · " (v.ds.meta.attribution)
                }
            }
        }
    }
    .into_string()
}

fn heading(name: &str) -> &'static str {
    CARDS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, h)| h)
}

fn filters(v: &View) -> Markup {
    html! {
        section.filters aria-label="Filters" {
            @if v.filters.is_empty() {
                p { "All " (thousands(v.ds.feature_count)) " items, no filters. Add "
                    code { "datetime" } ", " code { "bbox" } " or a property to the address to narrow them, or open the dashboard from the map." }
            } @else {
                p { "Filtered by:" }
                ul { @for (k, val) in &v.filters { li { code { (k) } " = " (val) } } }
                p { a href={ (v.base) "/dashboards/" (v.ds.id) } { "Remove the filters" } }
            }
        }
    }
}

/// One card, with its "open alone" link and `<iframe>` line on the full page.
fn card_section(v: &View, name: &str, on_page: bool) -> Markup {
    let url = with_query(
        format!("{}/dashboards/{}/cards/{name}", v.base, v.ds.id),
        &v.query,
    );
    let iframe = format!(
        "<iframe src=\"{url}\" title=\"{} – {}\" width=\"640\" height=\"360\" style=\"border:0\"></iframe>",
        v.ds.meta.title.replace('"', "&quot;"),
        heading(name)
    );
    html! {
        section.card id={ "card-" (name) } aria-labelledby={ "card-" (name) "-title" } {
            h2 id={ "card-" (name) "-title" } { (heading(name)) }
            (card_body(v, name))
            @if on_page {
                footer.card-links {
                    a href=(url) { "Open this card alone" }
                    details.embed {
                        summary { "Embed this card" }
                        label for={ "embed-" (name) } { "Copy this line into your page:" }
                        input.embed-code id={ "embed-" (name) } type="text" readonly value=(iframe);
                        button.copy type="button" data-copy={ "embed-" (name) } { "Copy" }
                    }
                }
            }
        }
    }
}

fn card_body(v: &View, name: &str) -> Markup {
    let (ds, n) = (&v.ds, &v.numbers);
    match name {
        "total" => html! {
            p.kpi { span.kpi-value data-kpi="total" { (thousands(n.total)) } " items" }
            @if let Some(p) = n.period { p.kpi-note { "from " (span(ds, p.current)) } }
        },
        "change" => match (n.period, n.previous) {
            (Some(p), Some(prev)) => {
                let c = dashboard::change(n.total, prev);
                let class = match c {
                    Change::By(x) if x < 0.0 => "down",
                    Change::Same => "same",
                    _ => "up",
                };
                html! {
                    p.kpi.(class) {
                        span.arrow aria-hidden="true" { (c.arrow()) " " }
                        span.kpi-value data-kpi="change" { (c.words()) }
                    }
                    p.kpi-note {
                        (thousands(n.total)) " from " (span(ds, p.current)) ", against "
                        span data-kpi="previous" { (thousands(prev)) } " from " (span(ds, p.previous)) "."
                    }
                }
            }
            _ => {
                html! { p.kpi-note { "This dataset has no times: there is no period to compare." } }
            }
        },
        "series" => series(v),
        "categories" => categories(v),
        _ => areas(v),
    }
}

fn series(v: &View) -> Markup {
    let (ds, n) = (&v.ds, &v.numbers);
    if n.series.is_empty() {
        return html! { p.kpi-note { "This dataset has no times." } };
    }
    let bars: Vec<svg::Bar> = n
        .series
        .iter()
        .map(|(r, c)| svg::Bar {
            label: match n.bucket {
                crate::store::Bucket::Month => jiff::Timestamp::from_second(r.start)
                    .map(|t| t.to_zoned_datetime(ds.zone()).strftime("%B %Y").to_string())
                    .unwrap_or_default(),
                crate::store::Bucket::Week => format!("week of {}", date(ds, r.start)),
                crate::store::Bucket::Day => date(ds, r.start),
            },
            count: *c,
        })
        .collect();
    let title = format!("Items per {} of {}", n.bucket.name(), ds.meta.title);
    html! {
        (svg::bars(&title, &bars))
        details.series-table {
            summary { "The numbers as a table" }
            table {
                caption { (title) }
                thead { tr { th scope="col" { (n.bucket.name()) } th scope="col" { "items" } } }
                tbody { @for b in &bars { tr { td { (b.label) } td { (thousands(b.count)) } } } }
            }
        }
    }
}

fn categories(v: &View) -> Markup {
    let Some((top, other)) = &v.numbers.categories else {
        return html! { p.kpi-note { "This dataset has no category field." } };
    };
    let max = top.first().map_or(1, |(_, c)| *c).max(*other).max(1);
    let field = v.ds.meta.category.clone().unwrap_or_default();
    html! {
        p.kpi-note { "By " (field) ":" }
        ol.bar-list {
            @for (label, count) in top {
                li {
                    span.bar-label { (label) }
                    meter min="0" max=(max) value=(count) aria-hidden="true" {}
                    span.bar-count data-count=(count) { (thousands(*count)) }
                }
            }
            @if *other > 0 {
                li.other {
                    span.bar-label { "Other" }
                    meter min="0" max=(max) value=(other) aria-hidden="true" {}
                    span.bar-count data-count=(other) { (thousands(*other)) }
                }
            }
        }
    }
}

fn areas(v: &View) -> Markup {
    let Some(areas) = &v.areas else {
        return html! { p.kpi-note { "No boundary dataset covers this data, so there are no areas to count in." } };
    };
    // Without `bucket`, which the counts by area refuse (only the time series reads it).
    let mut query = format!("by={}", areas.id);
    let filters = map_view_query(v);
    if !filters.is_empty() {
        query = format!("{query}&{filters}");
    }
    let url = format!("{}/collections/{}/aggregate?{query}", v.base, v.ds.id);
    html! {
        p.kpi-note { "Counted in the areas of " a href={ (v.base) "/maps/" (areas.id) } { (areas.meta.title) } ":" }
        div.areas data-aggregate=(url) {
            ol.bar-list {}
            p.status role="status" { "Counting…" }
        }
    }
}
