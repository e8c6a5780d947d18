//! Pictures of map views (`/maps/{id}.png`) over real HTTP, decoded with the `image`
//! crate: size, data drawn where the data is in the colours of the style, filters,
//! repeatable bytes and ETags, 304, bounds, and the link-preview tags of the map page.

use crate::support::{Server, request};
use serde_json::Value as Json;

/// Three points of known categories in Manhattan, on different days.
const POINTS: &str = "lon,lat,kind,date
-73.990,40.730,Noise,2024-01-10
-73.950,40.770,Heat,2024-02-10
-73.970,40.750,Water,2024-03-10
";

const BBOX: [f64; 4] = [-74.02, 40.70, -73.92, 40.80];
const W: u32 = 800;
const H: u32 = 600;

async fn server() -> Server {
    let s = Server::start().await;
    let file = s.data.write("points.csv", POINTS);
    let mut req = request("spots", &[file]);
    req.meta.category = Some("kind".into());
    req.time = Some("date".into());
    s.import(&req);
    s
}

/// Web mercator, fitted as a map fits a box: centred, the scale of the tighter axis.
/// Written here from the formulas, not taken from the server.
fn project(lon: f64, lat: f64) -> (u32, u32) {
    let merc = |lon: f64, lat: f64| {
        let x = (lon + 180.0) / 360.0;
        let l = lat.to_radians();
        let y = 0.5 - (l.tan() + 1.0 / l.cos()).ln() / (2.0 * std::f64::consts::PI);
        (x, y)
    };
    let (x0, y0) = merc(BBOX[0], BBOX[3]);
    let (x1, y1) = merc(BBOX[2], BBOX[1]);
    let scale = (f64::from(W) / (x1 - x0)).min(f64::from(H) / (y1 - y0));
    let (x, y) = merc(lon, lat);
    let px = (x - (x0 + x1) / 2.0) * scale + f64::from(W) / 2.0;
    let py = (y - (y0 + y1) / 2.0) * scale + f64::from(H) / 2.0;
    (px as u32, py as u32)
}

fn bbox() -> String {
    BBOX.map(|v| v.to_string()).join(",")
}

/// The colour the style gives each category value (its `points` layer's `match`).
async fn style_colours(s: &Server) -> Vec<(String, [u8; 3])> {
    let style = s.json("/styles/spots.json").await;
    let points = style["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "points")
        .expect("a points layer");
    let m = points["paint"]["circle-color"].as_array().expect("a match");
    m[2..m.len() - 1]
        .chunks(2)
        .map(|p| {
            let hex = p[1].as_str().unwrap().trim_start_matches('#');
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
            (
                p[0].as_str().unwrap().to_owned(),
                [byte(0), byte(2), byte(4)],
            )
        })
        .collect()
}

async fn png(
    s: &Server,
    query: &str,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = s.get(&format!("/maps/spots.png?{query}")).await;
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

fn decode(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .expect("a PNG")
        .to_rgba8()
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 3)
}

fn rgb(img: &image::RgbaImage, (x, y): (u32, u32)) -> [u8; 3] {
    let p = img.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

fn colour_of(colours: &[(String, [u8; 3])], kind: &str) -> [u8; 3] {
    colours
        .iter()
        .find(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("no colour for {kind}"))
        .1
}

#[tokio::test]
async fn picture_shows_each_point_in_its_category_colour_where_it_is() {
    let s = server().await;
    let colours = style_colours(&s).await;
    let (status, headers, bytes) = png(&s, &format!("bbox={}&width={W}&height={H}", bbox())).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["content-type"], "image/png");
    let img = decode(&bytes);
    assert_eq!(img.dimensions(), (W, H));
    for (kind, lon, lat) in [
        ("Noise", -73.990, 40.730),
        ("Heat", -73.950, 40.770),
        ("Water", -73.970, 40.750),
    ] {
        let want = colour_of(&colours, kind);
        let got = rgb(&img, project(lon, lat));
        assert!(
            near(got, want),
            "{kind} at {:?}: {got:?}, style says {want:?}",
            project(lon, lat)
        );
    }
    // Far from every point (and from the legend and attribution corners): no category colour.
    for at in [(W / 2, 40), (W - 60, H / 2), (W / 2 + 150, H / 2 + 150)] {
        let got = rgb(&img, at);
        assert!(
            colours.iter().all(|(_, c)| !near(got, *c)),
            "{at:?} is {got:?}"
        );
    }
}

#[tokio::test]
async fn filters_decide_which_points_are_drawn() {
    let s = server().await;
    let colours = style_colours(&s).await;
    let noise = project(-73.990, 40.730);
    let heat = project(-73.950, 40.770);
    let q = format!("bbox={}&width={W}&height={H}", bbox());
    let (status, _, bytes) = png(&s, &format!("{q}&datetime=2024-01-01/2024-01-31")).await;
    assert_eq!(status, 200);
    let img = decode(&bytes);
    assert!(near(rgb(&img, noise), colour_of(&colours, "Noise")));
    assert!(
        !near(rgb(&img, heat), colour_of(&colours, "Heat")),
        "February is outside January"
    );
    let (status, _, bytes) = png(&s, &format!("{q}&kind=Heat")).await;
    assert_eq!(status, 200);
    let img = decode(&bytes);
    assert!(near(rgb(&img, heat), colour_of(&colours, "Heat")));
    assert!(
        !near(rgb(&img, noise), colour_of(&colours, "Noise")),
        "only Heat was asked for"
    );
}

#[tokio::test]
async fn identical_requests_give_identical_bytes_and_etags_and_304() {
    let s = server().await;
    let q = format!("width=300&height=200&bbox={}", bbox());
    let (_, h1, b1) = png(&s, &q).await;
    // The same query in another order is the same picture.
    let (_, h2, b2) = png(&s, &format!("bbox={}&height=200&width=300", bbox())).await;
    assert_eq!(b1, b2);
    let etag = h1["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    assert_eq!(h2["etag"], etag.as_str());
    assert!(h1.contains_key("cache-control"));
    let r = s
        .get_with(&format!("/maps/spots.png?{q}"), &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), 304);
    // Another view is another picture under another tag.
    let (_, h3, b3) = png(&s, "width=300&height=200").await;
    assert_ne!(h3["etag"], etag.as_str());
    assert_eq!(decode(&b3).dimensions(), (300, 200));
}

async fn problem(s: &Server, path: &str) -> (u16, Json) {
    let r = s.get(path).await;
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Json::Null),
    )
}

#[tokio::test]
async fn oversize_bad_bbox_and_unknown_datasets_are_refused_clearly() {
    let s = server().await;
    let (status, body) = problem(&s, "/maps/spots.png?width=4000&height=4000").await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (400, Some("width")),
        "{body}"
    );
    let (status, body) = problem(&s, "/maps/spots.png?width=800&height=9").await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (400, Some("height")),
        "{body}"
    );
    let (status, body) = problem(&s, "/maps/spots.png?width=wide").await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (400, Some("width")),
        "{body}"
    );
    for bad in ["1,2,3", "a,b,c,d", "0,50,1,40"] {
        let (status, body) = problem(&s, &format!("/maps/spots.png?bbox={bad}")).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some("bbox")),
            "{bad}: {body}"
        );
    }
    let (status, body) = problem(&s, "/maps/spots.png?datetime=yesterday-ish").await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (400, Some("datetime")),
        "{body}"
    );
    let (status, _) = problem(&s, "/maps/nothing-here.png").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_map_page_links_a_picture_for_link_previews() {
    let s = server().await;
    let html = s.get("/maps/spots").await.text().await.unwrap();
    let meta = |key: &str| -> String {
        let at = html
            .find(&format!("\"{key}\" content=\""))
            .unwrap_or_else(|| panic!("no {key} in the page"));
        let rest = &html[at + key.len() + 12..];
        rest[..rest.find('"').unwrap()].replace("&amp;", "&")
    };
    assert_eq!(meta("twitter:card"), "summary_large_image");
    let image = meta("og:image");
    assert_eq!(meta("twitter:image"), image);
    assert!(image.starts_with("http://127.0.0.1:"), "absolute: {image}");
    let r = s.client.get(&image).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let img = decode(&r.bytes().await.unwrap());
    assert_eq!(img.dimensions(), (1200, 630));
    // The catalog's previews are pictures too, and the SVG preview still answers.
    let catalog = s
        .get_with("/", &[("accept", "text/html")])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        catalog.contains("/maps/spots.png?"),
        "catalog previews are PNGs"
    );
    assert_eq!(s.get("/collections/spots/preview.svg").await.status(), 200);
}

/// A basemap archive (id `basemap`) whose tiles at the zoom the picture draws are all
/// water: the picture shows it under the data, and the points stay on top.
#[tokio::test]
async fn the_basemap_is_drawn_under_the_data() {
    use std::io::Write;
    use tessera::render::archive::{ArchiveSource, ArchiveSpec};
    use tessera::tiles::{LayerBuilder, PropValue, TileCoord, clip_geometry, encode_tile, tile_of};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("basemap.pmtiles");
    // The zoom this view draws (800 x 600 px over 0.1 degrees at 40.75 N: zoom 11.6).
    let z = 11;
    {
        let mut file = std::fs::File::create(&path).unwrap();
        let mut writer = pmtiles::PmTilesWriter::new(pmtiles::TileType::Mvt)
            .precompressed(pmtiles::Compression::Gzip)
            .min_zoom(z)
            .max_zoom(z)
            .bounds(-180.0, -85.0, 180.0, 85.0)
            .create(&mut file)
            .unwrap();
        let a = tile_of(BBOX[0] - 0.05, BBOX[3] + 0.05, z).unwrap();
        let b = tile_of(BBOX[2] + 0.05, BBOX[1] - 0.05, z).unwrap();
        for y in a.y()..=b.y() {
            for x in a.x()..=b.x() {
                let coord = TileCoord::new(z, x, y).unwrap();
                let t = coord.bounds_lonlat();
                let square = geo_types::Rect::new((t.min_x, t.min_y), (t.max_x, t.max_y));
                let mut layer = LayerBuilder::new("water", 4096);
                for part in clip_geometry(&square.to_polygon().into(), coord, 4096, 64) {
                    layer.add_feature(None, &part, &[("kind", PropValue::from("lake"))]);
                }
                let raw = encode_tile(vec![layer]).unwrap();
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&raw).unwrap();
                let c = pmtiles::TileCoord::new(z, x, y).unwrap();
                writer.add_tile(c, &gz.finish().unwrap()).unwrap();
            }
        }
        writer.finalize().unwrap();
    }
    let spec = ArchiveSpec {
        id: "basemap".into(),
        path,
    };
    let archive = std::sync::Arc::new(ArchiveSource::open(&spec, 3, 512).await.unwrap());
    let s = Server::start_with(|st| {
        st.archives = std::sync::Arc::new([("basemap".to_owned(), archive)].into_iter().collect());
    })
    .await;
    let file = s.data.write("points.csv", POINTS);
    let mut req = request("spots", &[file]);
    req.meta.category = Some("kind".into());
    s.import(&req);
    let colours = style_colours(&s).await;
    let centre = tile_of(-73.97, 40.75, z).unwrap();
    let tile = s
        .get(&format!(
            "/tiles/basemap/{z}/{}/{}.mvt",
            centre.x(),
            centre.y()
        ))
        .await;
    assert_eq!(
        tile.status(),
        200,
        "the archive serves the tile under the view"
    );
    let (status, _, bytes) = png(&s, &format!("bbox={}&width={W}&height={H}", bbox())).await;
    assert_eq!(status, 200);
    let img = decode(&bytes);
    // Water is blue in any style: more blue than red, and not the plain background.
    for at in [(W / 2, 40), (W - 60, H / 2), (W / 2 + 150, H / 2 + 150)] {
        let [r, g, b] = rgb(&img, at);
        assert!(
            u16::from(b) > u16::from(r) + 20 && b >= g,
            "{at:?} is {:?}, not water",
            [r, g, b]
        );
    }
    let noise = project(-73.990, 40.730);
    assert!(
        near(rgb(&img, noise), colour_of(&colours, "Noise")),
        "the data is drawn over the basemap"
    );
}

/// Pixels darker than any fill of the styles (text, halo aside) in the box of
/// `half` = (half width, half height) around `at`.
fn dark_pixels(img: &image::RgbaImage, at: (u32, u32), half: (u32, u32)) -> usize {
    let (x0, y0) = (at.0.saturating_sub(half.0), at.1.saturating_sub(half.1));
    let (x1, y1) = ((at.0 + half.0).min(W - 1), (at.1 + half.1).min(H - 1));
    (y0..=y1)
        .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
        .filter(|&p| {
            let [r, g, b] = rgb(img, p);
            u16::from(r) + u16::from(g) + u16::from(b) < 3 * 150
        })
        .count()
}

/// The name of an area is written once, near its middle (the label point of the tiles'
/// label layer), not on each tile piece of the area: the square below spans several
/// tiles of the zoom the picture draws.
#[tokio::test]
async fn a_boundary_name_is_drawn_once_inside_its_area() {
    let s = Server::start().await;
    let (w, so, e, n) = (-74.01, 40.71, -73.93, 40.79);
    let square = format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{"name":"Middletown"}},
        "geometry":{{"type":"Polygon","coordinates":[[[{w},{so}],[{e},{so}],[{e},{n}],[{w},{n}],[{w},{so}]]]}}}}]}}"#
    );
    let file = s.data.write("area.geojson", square);
    let mut req = request("area", &[file]);
    req.meta.kind = tessera::model::DatasetKind::Boundaries;
    s.import(&req);
    let r = s
        .get(&format!(
            "/maps/area.png?bbox={}&width={W}&height={H}",
            bbox()
        ))
        .await;
    assert_eq!(r.status(), 200);
    let img = decode(&r.bytes().await.unwrap());
    let (x0, y0) = project(w, n);
    let (x1, y1) = project(e, so);
    let mid = ((x0 + x1) / 2, (y0 + y1) / 2);
    // The label point is on a scan line near the middle: the name is within a box there.
    let label_box = (70, (y1 - y0) / 8 + 12);
    let near_middle = dark_pixels(&img, mid, label_box);
    assert!(
        near_middle > 30,
        "the name is drawn near the middle ({near_middle} dark pixels)"
    );
    // Nowhere else inside the square (10 px in from its outline) is there any text.
    let inside = dark_pixels(&img, mid, ((x1 - x0) / 2 - 10, (y1 - y0) / 2 - 10));
    assert_eq!(
        inside, near_middle,
        "text inside the area but away from its label point"
    );
}

/// Place names of the basemap are written in pictures where the place is.
#[tokio::test]
async fn basemap_place_names_are_drawn_in_pictures() {
    use std::io::Write;
    use tessera::render::archive::{ArchiveSource, ArchiveSpec};
    use tessera::tiles::{LayerBuilder, PropValue, TileCoord, tile_of, world_to_tile, world_xy};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("basemap.pmtiles");
    let z = 11;
    let place = (-73.945, 40.715);
    {
        let mut file = std::fs::File::create(&path).unwrap();
        let mut writer = pmtiles::PmTilesWriter::new(pmtiles::TileType::Mvt)
            .precompressed(pmtiles::Compression::Gzip)
            .min_zoom(z)
            .max_zoom(z)
            .bounds(-180.0, -85.0, 180.0, 85.0)
            .create(&mut file)
            .unwrap();
        let coord: TileCoord = tile_of(place.0, place.1, z).unwrap();
        let mut layer = LayerBuilder::new("places", 4096);
        let (wx, wy) = world_xy(place.0, place.1);
        let (x, y) = world_to_tile(wx, wy, coord, 4096);
        let props = [
            ("kind", PropValue::from("city")),
            ("name", PropValue::from("Springfield")),
            ("rank", PropValue::UInt(2)),
        ];
        layer.add_point(None, [x, y], &props);
        let raw = tessera::tiles::encode_tile(vec![layer]).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let c = pmtiles::TileCoord::new(z, coord.x(), coord.y()).unwrap();
        writer.add_tile(c, &gz.finish().unwrap()).unwrap();
        writer.finalize().unwrap();
    }
    let spec = ArchiveSpec {
        id: "basemap".into(),
        path,
    };
    let archive = std::sync::Arc::new(ArchiveSource::open(&spec, 3, 512).await.unwrap());
    let s = Server::start_with(|st| {
        st.archives = std::sync::Arc::new([("basemap".to_owned(), archive)].into_iter().collect());
    })
    .await;
    let file = s.data.write("points.csv", POINTS);
    s.import(&request("spots", &[file]));
    let (status, _, bytes) = png(&s, &format!("bbox={}&width={W}&height={H}", bbox())).await;
    assert_eq!(status, 200);
    let img = decode(&bytes);
    let at = project(place.0, place.1);
    let there = dark_pixels(&img, at, (60, 12));
    assert!(
        there > 30,
        "the place name is drawn at the place ({there} dark pixels)"
    );
    let away = dark_pixels(&img, (at.0 - 200, at.1), (60, 12));
    assert_eq!(away, 0, "no text where there is no place");
}

/// At low zoom a cluster is drawn as on the map: its ring in the style's colour of its
/// commonest category. 30 points a few metres apart, 20 of them Noise and 10 Heat, make one
/// cluster on a picture of the north-east US (zoom ~5); the pixels around it on the
/// cluster's rim are Noise's colour, none Heat's.
#[tokio::test]
async fn a_cluster_is_ringed_in_the_colour_of_its_commonest_category() {
    let s = Server::start().await;
    let mut csv = String::from("lon,lat,kind\n");
    for i in 0..30 {
        let kind = if i % 3 == 2 { "Heat" } else { "Noise" };
        let d = f64::from(i) * 0.0001;
        csv.push_str(&format!("{},{},{kind}\n", -73.97 + d, 40.75 + d));
    }
    let file = s.data.write("cluster.csv", csv);
    let mut req = request("spots", &[file]);
    req.meta.category = Some("kind".into());
    s.import(&req);
    let colours = style_colours(&s).await;
    let (noise, heat) = (colour_of(&colours, "Noise"), colour_of(&colours, "Heat"));
    let wide = [-80.0, 35.0, -67.0, 46.0];
    let q = format!(
        "bbox={}&width={W}&height={H}",
        wide.map(|v| v.to_string()).join(",")
    );
    let (status, _, bytes) = png(&s, &q).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let img = decode(&bytes);
    // The same fit as `project`, over the wide box.
    let merc = |lon: f64, lat: f64| {
        let l = f64::to_radians(lat);
        (
            (lon + 180.0) / 360.0,
            0.5 - (l.tan() + 1.0 / l.cos()).ln() / (2.0 * std::f64::consts::PI),
        )
    };
    let ((x0, y0), (x1, y1)) = (merc(wide[0], wide[3]), merc(wide[2], wide[1]));
    let scale = (f64::from(W) / (x1 - x0)).min(f64::from(H) / (y1 - y0));
    let (x, y) = merc(-73.9686, 40.7514);
    let (cx, cy) = (
        (x - (x0 + x1) / 2.0) * scale + f64::from(W) / 2.0,
        (y - (y0 + y1) / 2.0) * scale + f64::from(H) / 2.0,
    );
    let (mut ring, mut wrong) = (0, 0);
    for step in 0..72 {
        let a = f64::from(step) * 5f64.to_radians();
        for r in [12.5, 13.0, 13.5] {
            let at = ((cx + r * a.cos()) as u32, (cy + r * a.sin()) as u32);
            let got = rgb(&img, at);
            ring += usize::from(near(got, noise));
            wrong += usize::from(near(got, heat));
        }
    }
    assert!(
        ring > 150,
        "{ring} of 216 rim pixels near ({cx:.0}, {cy:.0}) in Noise's colour {noise:?}"
    );
    assert_eq!(wrong, 0, "no rim pixel in Heat's colour {heat:?}");
}
