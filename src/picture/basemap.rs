//! The basemap under a picture's data. When the dataset's style already carries basemap
//! layers (source `basemap`, the tile archive of that id) they are drawn as they are;
//! otherwise these layers draw the basemap schema (earth, water, parks, waterways, roads
//! by kind, boundaries, place names) in quiet colours under the data.

use serde_json::{Value as Json, json};

/// The style source name and archive id of the basemap.
pub const SOURCE: &str = "basemap";

fn fallback_layers() -> Vec<Json> {
    let road = |kind: &str, colour: &str, minzoom: u8, widths: [f64; 2]| {
        json!({"id": format!("basemap-roads-{kind}"), "type": "line", "source": SOURCE,
               "source-layer": "roads", "minzoom": minzoom,
               "filter": ["==", ["get", "kind"], kind],
               "paint": {"line-color": colour,
                         "line-width": ["interpolate", ["exponential", 1.5], ["zoom"], 8, widths[0], 16, widths[1]]}})
    };
    vec![
        json!({"id": "basemap-earth", "type": "fill", "source": SOURCE, "source-layer": "earth",
               "paint": {"fill-color": "#f2efe9"}}),
        json!({"id": "basemap-parks", "type": "fill", "source": SOURCE, "source-layer": "landuse",
               "filter": ["in", ["get", "kind"], ["literal", ["park", "green"]]],
               "paint": {"fill-color": "#d8e8c8"}}),
        json!({"id": "basemap-water", "type": "fill", "source": SOURCE, "source-layer": "water",
               "paint": {"fill-color": "#aad3df"}}),
        json!({"id": "basemap-waterway", "type": "line", "source": SOURCE, "source-layer": "waterway",
               "paint": {"line-color": "#aad3df", "line-width": ["interpolate", ["linear"], ["zoom"], 8, 0.5, 16, 3]}}),
        json!({"id": "basemap-boundaries", "type": "line", "source": SOURCE, "source-layer": "boundaries",
               "paint": {"line-color": "#b8a8c0", "line-width": 1}}),
        road("path", "#e0dcd4", 14, [0.3, 1.5]),
        road("rail", "#c8c4bc", 10, [0.4, 1.5]),
        road("minor", "#ffffff", 12, [0.4, 5.0]),
        road("major", "#fdfbf6", 8, [0.8, 8.0]),
        road("highway", "#f9e1a8", 5, [1.0, 10.0]),
        json!({"id": "basemap-places", "type": "symbol", "source": SOURCE, "source-layer": "places",
               "layout": {"text-field": ["get", "name"],
                          "text-size": ["match", ["get", "kind"], ["country", "city"], 14, 12]},
               "paint": {"text-color": "#555555", "text-halo-color": "#ffffff", "text-halo-width": 1.2}}),
    ]
}

/// `style` with the basemap's layers under its data layers (after its background), when
/// a basemap is served (`present`) and the style does not draw one itself.
pub fn with_basemap(style: &Json, present: bool) -> Json {
    let layers = style["layers"].as_array().cloned().unwrap_or_default();
    if !present || layers.iter().any(|l| l["source"] == SOURCE) {
        return style.clone();
    }
    let backgrounds = layers
        .iter()
        .take_while(|l| l["type"] == "background")
        .count();
    let mut out: Vec<Json> = layers[..backgrounds].to_vec();
    out.extend(fallback_layers());
    out.extend_from_slice(&layers[backgrounds..]);
    let mut composed = style.clone();
    composed["layers"] = Json::Array(out);
    composed
}
