//! The catalog and map pages, and the per-version memo of what pages compute.
//!
//! Templates are `maud`, which escapes by construction; the page configuration travels
//! as JSON in a `<script type="application/json">` data block (never executed, so the
//! CSP needs no inline script), escaped so no value can end the block early.
//!
//! A map view costs a legend `GROUP BY` (a second on a 1.4M-row dataset) for the page
//! and again for its style; the results depend only on dataset versions and the base
//! URL, so they are kept in the renderer's byte-bounded cache under keys that carry
//! those versions (a re-import makes the old entries unreachable). Concurrent misses of
//! one key wait for the first to finish instead of each running the query.

use super::error::ApiError;
use super::html::{DOCTYPE, head};
use crate::render::cache::TileCache;
use maud::{Markup, PreEscaped, html};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// JSON for a `<script type="application/json">` block: `<`, `>` and `&` as `\u` escapes
/// (no `</script>` or `<!--` can form), and U+2028/U+2029, which old JavaScript parsers
/// take for line ends. They can only occur inside JSON strings, where the escapes mean
/// the same characters.
pub fn script_json(v: &Json) -> Markup {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    PreEscaped(out)
}

/// The full-page map; `config` is read by `assets/map.js`.
pub fn map_html(base: &str, title: &str, config: &Json) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(base, &format!("{title} – Tessera map"), &["vendor/maplibre-gl/maplibre-gl.css", "map.css"], html! {
                (share_meta(title, &config["share"]))
                script type="application/json" id="tessera-config" { (script_json(config)) }
                script type="module" src={ (base) "/assets/map.js" } {}
                // Extension modules named by the map config (see assets/map.js `announce`).
                @for module in config["modules"].as_array().into_iter().flatten().filter_map(|m| m.as_str()) {
                    script type="module" src={ (base) "/assets/" (module) } {}
                }
            }))
            body.tessera-map-page {
                a.skip-link href="#map" { "Skip to the map" }
                header.site-header #site-header {
                    a.home-link href={ (base) "/" } { "All datasets" }
                    h1 #page-title { (title) }
                    button type="button" #panel-toggle .panel-toggle aria-controls="panel" aria-expanded="false" { "Filters and tools" }
                }
                main.layout {
                    div.map-wrap {
                        div #map role="region" aria-label={ "Map: " (title) } aria-describedby="map-help" {}
                        p #map-help .visually-hidden { "Use the arrow keys to pan, plus and minus to zoom. Press Enter to show the details of the point nearest the centre of the map." }
                        (legend())
                        a #open-full .open-full href="#" target="_blank" rel="noopener" hidden { "Open full map" }
                    }
                    (panel(config))
                }
            }
        }
    }
    .into_string()
}

/// Open Graph and Twitter card tags, so that a shared link shows a picture of the map
/// (`share` is the map config's `share` object; nothing when it is absent).
pub fn share_meta(title: &str, share: &Json) -> Markup {
    let Some(image) = share["image"].as_str() else {
        return html! {};
    };
    let description = share["description"].as_str().unwrap_or("");
    html! {
        meta property="og:type" content="website";
        meta property="og:title" content=(title);
        meta property="og:description" content=(description);
        @if let Some(url) = share["url"].as_str() { meta property="og:url" content=(url); }
        meta property="og:image" content=(image);
        meta property="og:image:type" content="image/png";
        meta property="og:image:width" content=(share["width"].as_u64().unwrap_or(0));
        meta property="og:image:height" content=(share["height"].as_u64().unwrap_or(0));
        meta property="og:image:alt" content={ "Map: " (title) };
        meta name="twitter:card" content="summary_large_image";
        meta name="twitter:title" content=(title);
        meta name="twitter:description" content=(description);
        meta name="twitter:image" content=(image);
    }
}

/// What the data is and where it comes from, so a reader can judge it: description,
/// source (a link when it is a URL), licence and the dataset's API page.
fn about(config: &Json) -> Markup {
    let text = |k: &str| config[k].as_str().unwrap_or_default().to_owned();
    let source = text("source");
    let attribution = text("attribution");
    let source_label = if attribution.is_empty() {
        &source
    } else {
        &attribution
    };
    html! {
        section #about-section .panel-section aria-labelledby="about-title" {
            h2 #about-title { "About this data" }
            @if !text("description").is_empty() {
                p #about-description { (text("description")) }
            }
            dl.about-facts {
                @if !source.is_empty() {
                    dt { "Source" }
                    dd {
                        @if source.starts_with("https://") || source.starts_with("http://") {
                            a href=(source) rel="noopener" { (source_label) }
                        } @else { (source) }
                    }
                }
                @if !text("licence").is_empty() {
                    dt { "Licence" }
                    dd { (text("licence")) }
                }
            }
            p { a #about-api href=(text("api")) { "The data behind this map (API, downloads)" } }
        }
    }
}

fn legend() -> Markup {
    html! {
        section #legend .legend aria-label="Legend" hidden {
            details #legend-details open {
                summary { h2 #legend-title { "Categories" } }
                p.hint #legend-hint { "Select a category to hide or show it." }
                ul #legend-list .legend-list aria-labelledby="legend-title" aria-describedby="legend-hint" {}
                button type="button" #legend-all .link-button hidden { "Show all categories" }
            }
        }
    }
}

fn panel(config: &Json) -> Markup {
    html! {
        aside #panel .panel aria-label="Map filters and tools" {
            (about(config))
            section #time-section .panel-section aria-labelledby="time-title" hidden {
                h2 #time-title { "Time" }
                output #time-label .time-label for="time-start time-end" aria-live="polite" {}
                div.histogram-wrap {
                    svg #histogram .histogram role="img" aria-labelledby="histogram-desc" preserveAspectRatio="none" viewBox="0 0 300 60" {
                        title #histogram-desc { "Counts over time" }
                    }
                    div.range {
                        label.visually-hidden for="time-start" { "Start of period" }
                        input type="range" #time-start min="0" max="1" step="1" value="0";
                        label.visually-hidden for="time-end" { "End of period" }
                        input type="range" #time-end min="0" max="1" step="1" value="1";
                    }
                }
                p.hint { span #bucket-label {} " " button type="button" #time-reset .link-button { "Whole period" } }
            }
            section #area-section .panel-section aria-labelledby="area-title" hidden {
                h2 #area-title { "Area" }
                label for="area-select" { "Only show what lies within" }
                select #area-select { option value="" { "Everywhere" } }
            }
            div #panel-extensions {}
            section.panel-section aria-labelledby="download-title" {
                h2 #download-title { "Download what is on the map" }
                p.hint { "The features in the current view, with the filters above." }
                p.downloads {
                    a #download-csv href="#" download { "CSV" }
                    a #download-geojson href="#" download { "GeoJSON" }
                }
            }
            section.panel-section aria-labelledby="share-title" {
                h2 #share-title { "Share or embed" }
                label for="share-url" { "Link to this view" }
                div.copy-row {
                    input type="text" #share-url readonly;
                    button.copy type="button" data-copy="share-url" { "Copy link" }
                }
                label for="embed-code" { "Embed code" }
                div.copy-row {
                    textarea #embed-code rows="4" readonly {}
                    button.copy type="button" data-copy="embed-code" { "Copy code" }
                }
            }
            p #status .status role="status" aria-live="polite" {}
        }
    }
}

/// The catalog page (`/` for browsers); `data` is read by `assets/catalog.js`.
pub fn catalog_html(base: &str, data: &Json) -> String {
    let title = "Open data catalog";
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(base, title, &["catalog.css"], html! {
                script type="application/json" id="tessera-catalog" { (script_json(data)) }
                script type="module" src={ (base) "/assets/catalog.js" } {}
            }))
            body {
                header.site-header {
                    h1 { (title) }
                    p.lede { "Open government data as maps and as an OGC API – Features service." }
                }
                main {
                    label.filter-label for="filter" { "Find a dataset" }
                    input type="search" #filter autocomplete="off";
                    p #count .count role="status" aria-live="polite" {}
                    ul #datasets .datasets {}
                    noscript { p { "This list needs JavaScript. The same catalogue is at " a href={ (base) "/collections" } { "/collections" } "." } }
                }
                footer.site-footer {
                    a href={ (base) "/collections" } { "All collections (API)" } " · "
                    a href={ (base) "/api" } { "API description" }
                }
            }
        }
    }
    .into_string()
}

/// The bytes cached under `key`, else those `make` computes (then cached). One caller
/// per key computes at a time; callers that arrive meanwhile wait and take its result,
/// even when the cache is off (`--tile-cache-mb 0`) or refuses the entry.
pub fn memo(
    cache: &TileCache,
    key: String,
    make: impl FnOnce() -> Result<Vec<u8>, ApiError>,
) -> Result<bytes::Bytes, ApiError> {
    if let Some(hit) = cache.get(&key) {
        return Ok(hit);
    }
    let gate = gate(&key);
    let mut done = gate.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = done.clone().or_else(|| cache.get(&key)) {
        return Ok(hit);
    }
    let bytes = bytes::Bytes::from(make()?);
    cache.put(key, bytes.clone());
    *done = Some(bytes.clone());
    Ok(bytes)
}

/// What is being computed for one key, and its result once there. Gates are dropped
/// from the table as soon as nobody holds them, so it stays as small as the work in
/// flight (and a later request after a re-import never sees a stale result here).
type GateState = Mutex<Option<bytes::Bytes>>;
type Gate = Arc<GateState>;

fn gate(key: &str) -> Gate {
    static GATES: OnceLock<Mutex<HashMap<String, Weak<GateState>>>> = OnceLock::new();
    let mut gates = GATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    gates.retain(|_, g| g.strong_count() > 0);
    if let Some(g) = gates.get(key).and_then(Weak::upgrade) {
        return g;
    }
    let g = Gate::default();
    gates.insert(key.to_owned(), Arc::downgrade(&g));
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    #[test]
    fn script_json_cannot_end_its_block() {
        let v = json!({"t": "</script><!-- & \u{2028}\u{2029} >"});
        let out = script_json(&v).into_string();
        assert!(!out.contains('<') && !out.contains('>') && !out.contains('&'));
        assert!(!out.contains('\u{2028}') && !out.contains('\u{2029}'));
        let back: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn memo_computes_once_per_key_even_with_the_cache_off() {
        for limit in [1 << 20, 0] {
            let cache = TileCache::new(limit);
            let (calls, arrived) = (AtomicUsize::new(0), AtomicUsize::new(0));
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        arrived.fetch_add(1, SeqCst);
                        let v = memo(&cache, format!("k@{limit}"), || {
                            calls.fetch_add(1, SeqCst);
                            // Compute until every caller is at the gate (plus a margin).
                            while arrived.load(SeqCst) < 8 {
                                std::thread::yield_now();
                            }
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            Ok(b"v".to_vec())
                        });
                        assert_eq!(&v.unwrap()[..], b"v");
                    });
                }
            });
            assert_eq!(
                calls.load(std::sync::atomic::Ordering::SeqCst),
                1,
                "limit {limit}"
            );
        }
    }
}
