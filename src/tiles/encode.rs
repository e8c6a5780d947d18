//! Mapbox Vector Tile 2.1 encoding: the one place that knows the encoder, the design
//! card's `mvt` crate, so it could be swapped without touching the renderers.
//!
//! The rest of the tile core hands over geometry that is already clipped, cleaned and
//! oriented ([`super::clip`]): `mvt` writes rings as given (it does not fix winding).
//! This module adds what the crate leaves to its caller: it skips parts too short to
//! draw and never starts a part where the previous one ended (see `feed_part`).

use super::TileGeometry;
use mvt::{GeomData, GeomEncoder, GeomType};
use std::borrow::Cow;

/// A property value. Ints are written as `sint64` (zigzag: small negatives stay short).
/// Strings may borrow, so a renderer need not copy a value it already holds.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue<'a> {
    String(Cow<'a, str>),
    Int(i64),
    UInt(u64),
    Double(f64),
    Bool(bool),
}

impl<'a> From<&'a str> for PropValue<'a> {
    fn from(s: &'a str) -> Self {
        PropValue::String(Cow::Borrowed(s))
    }
}
impl From<String> for PropValue<'_> {
    fn from(s: String) -> Self {
        PropValue::String(Cow::Owned(s))
    }
}
impl From<i64> for PropValue<'_> {
    fn from(v: i64) -> Self {
        PropValue::Int(v)
    }
}
impl From<u64> for PropValue<'_> {
    fn from(v: u64) -> Self {
        PropValue::UInt(v)
    }
}
impl From<f64> for PropValue<'_> {
    fn from(v: f64) -> Self {
        PropValue::Double(v)
    }
}
impl From<bool> for PropValue<'_> {
    fn from(v: bool) -> Self {
        PropValue::Bool(v)
    }
}

/// Accumulates the features of one layer; `mvt` deduplicates keys and values as the
/// spec requires.
pub struct LayerBuilder {
    name: String,
    extent: u32,
    /// Always `Some` between calls: `mvt` moves the layer into each feature and back.
    layer: Option<mvt::Layer>,
    feature_count: usize,
}

impl std::fmt::Debug for LayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerBuilder")
            .field("name", &self.name)
            .field("extent", &self.extent)
            .field("features", &self.feature_count)
            .finish()
    }
}

impl LayerBuilder {
    pub fn new(name: &str, extent: u32) -> Self {
        LayerBuilder {
            name: name.to_owned(),
            extent,
            layer: Some(mvt::Tile::new(extent).create_layer(name)),
            feature_count: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn len(&self) -> usize {
        self.feature_count
    }
    pub fn is_empty(&self) -> bool {
        self.feature_count == 0
    }

    /// Adds a feature; returns false (and adds nothing) when the geometry is empty after
    /// dropping parts too short to draw. `id`s should be unique in the layer (MVT 2.1);
    /// the caller knows whether they are.
    pub fn add_feature(
        &mut self,
        id: Option<u64>,
        geometry: &TileGeometry,
        props: &[(&str, PropValue<'_>)],
    ) -> bool {
        match encode_geometry(geometry) {
            Some(geom) => self.push(id, geom, props),
            None => false,
        }
    }

    /// [`Self::add_feature`] for the commonest feature, one point, without building a
    /// [`TileGeometry`] for it.
    pub fn add_point(
        &mut self,
        id: Option<u64>,
        at: [i32; 2],
        props: &[(&str, PropValue<'_>)],
    ) -> bool {
        let mut enc = GeomEncoder::new(GeomType::Point);
        // Never fails for i32 coordinates (no rounding, no transform).
        match enc.add_point(at[0], at[1]).and_then(|()| enc.encode()) {
            Ok(geom) => self.push(id, geom, props),
            Err(_) => false,
        }
    }

    fn push(&mut self, id: Option<u64>, geom: GeomData, props: &[(&str, PropValue<'_>)]) -> bool {
        let Some(layer) = self.layer.take() else {
            return false;
        };
        let mut feature = layer.into_feature(geom);
        if let Some(id) = id {
            feature.set_id(id);
        }
        for (k, v) in props {
            match v {
                PropValue::String(s) => feature.add_tag_string(k, s),
                PropValue::Int(i) => feature.add_tag_sint(k, *i),
                PropValue::UInt(u) => feature.add_tag_uint(k, *u),
                PropValue::Double(d) => feature.add_tag_double(k, *d),
                PropValue::Bool(b) => feature.add_tag_bool(k, *b),
            }
        }
        self.layer = Some(feature.into_layer());
        self.feature_count += 1;
        true
    }
}

/// Encodes the layers that have features into one tile; `None` when no layer has any,
/// so the HTTP layer can answer 204. Layers must share one extent; a layer whose name
/// repeats an earlier one's is left out (MVT 2.1 wants names unique).
pub fn encode_tile(layers: Vec<LayerBuilder>) -> Option<Vec<u8>> {
    let extent = layers.first()?.extent;
    let mut tile = mvt::Tile::new(extent);
    for layer in layers.into_iter().filter(|l| !l.is_empty()) {
        if let Some(l) = layer.layer {
            // Errors only for a repeated name or another extent: that layer is skipped.
            let _ = tile.add_layer(l);
        }
    }
    if tile.num_layers() == 0 {
        return None;
    }
    tile.to_bytes().ok()
}

/// The longest part a command can hold (its count has 29 bits).
const MAX_COUNT: usize = (1 << 29) - 1;

/// Geometry -> `mvt` command integers; `None` when no part is long enough to draw
/// (lines < 2 points, rings < 3; a polygon whose exterior is too short goes with its
/// holes) or when `mvt` refuses it.
fn encode_geometry(g: &TileGeometry) -> Option<GeomData> {
    let ty = match g {
        TileGeometry::Points(_) => GeomType::Point,
        TileGeometry::Lines(_) => GeomType::Linestring,
        TileGeometry::Polygons(_) => GeomType::Polygon,
    };
    let mut enc = GeomEncoder::new(ty);
    let mut cursor = None;
    let mut parts = 0usize;
    match g {
        TileGeometry::Points(pts) => {
            if pts.is_empty() || pts.len() > MAX_COUNT {
                return None;
            }
            for p in pts {
                enc.add_point(p[0], p[1]).ok()?;
            }
            parts = 1;
        }
        TileGeometry::Lines(lines) => {
            for l in lines.iter().filter(|l| (2..=MAX_COUNT).contains(&l.len())) {
                feed_part(&mut enc, ty, l, &mut cursor)?;
                parts += 1;
            }
        }
        TileGeometry::Polygons(polys) => {
            let ok = |r: &&Vec<[i32; 2]>| (3..=MAX_COUNT).contains(&r.len());
            for rings in polys.iter().filter(|p| p.first().is_some_and(|r| ok(&r))) {
                for r in rings.iter().filter(ok) {
                    feed_part(&mut enc, ty, r, &mut cursor)?;
                    parts += 1;
                }
            }
        }
    }
    if parts == 0 {
        return None;
    }
    enc.encode().ok()
}

/// Feeds one line or ring to the encoder and completes it.
///
/// `mvt` treats a point equal to its cursor as a repeat and drops it, so a part that
/// starts where the previous part ended would lose its MoveTo and turn invalid. Such a
/// part starts elsewhere instead: a ring one vertex further on (the same ring), a line
/// from its other end (the same line) or, for a closed line, from its second vertex
/// round to it again (the same loop). Parts have no repeated points ([`super::clip`]).
fn feed_part(
    enc: &mut GeomEncoder<i32>,
    ty: GeomType,
    part: &[[i32; 2]],
    cursor: &mut Option<[i32; 2]>,
) -> Option<()> {
    let first = part[0];
    let last = part[part.len() - 1];
    let mut add = |p: &[i32; 2]| enc.add_point(p[0], p[1]).ok();
    let rerouted = *cursor == Some(first);
    let fed_last = if !rerouted {
        part.iter().try_for_each(&mut add)?;
        last
    } else if ty == GeomType::Polygon {
        part[1..].iter().chain(&part[..1]).try_for_each(&mut add)?;
        first
    } else if first == last {
        part[1..].iter().chain(&part[1..2]).try_for_each(&mut add)?;
        part[1]
    } else {
        part.iter().rev().try_for_each(&mut add)?;
        first
    };
    enc.complete_geom().ok()?;
    // ClosePath does not move the cursor: it stays on the last vertex fed.
    *cursor = Some(fed_last);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::Geometry;
    use mvt_reader::{Reader, feature::Value};

    #[test]
    fn empty_tile_is_none() {
        let mut l = LayerBuilder::new("x", 4096);
        assert!(!l.add_feature(Some(1), &TileGeometry::Lines(vec![vec![[1, 1]]]), &[]));
        assert!(!l.add_feature(None, &TileGeometry::Points(vec![]), &[]));
        assert!(l.is_empty());
        assert_eq!(encode_tile(vec![l, LayerBuilder::new("y", 4096)]), None);
        assert_eq!(encode_tile(vec![]), None);
    }

    #[test]
    fn round_trips_through_mvt_reader() {
        let mut pts = LayerBuilder::new("points", 4096);
        let props = |i: i64| {
            vec![
                ("name", PropValue::from(format!("p{}", i % 2))),
                ("n", PropValue::Int(-i)),
                ("u", PropValue::UInt(i as u64 * 1_000_000_000_000)),
                ("d", PropValue::Double(0.5)),
                ("b", PropValue::Bool(i % 2 == 0)),
            ]
        };
        for i in 0..3 {
            assert!(pts.add_feature(
                Some(i as u64 + 10),
                &TileGeometry::Points(vec![[i * 100, -5 + i]]),
                &props(i.into())
            ));
        }
        let mut shapes = LayerBuilder::new("shapes", 4096);
        shapes.add_feature(
            None,
            &TileGeometry::Lines(vec![
                vec![[0, 0], [10, 0], [10, 10]],
                vec![[-64, 4160], [5, 5]],
            ]),
            &[],
        );
        let square = vec![[0, 0], [100, 0], [100, 100], [0, 100]]; // clockwise on screen
        let hole = vec![[20, 20], [20, 80], [80, 80], [80, 20]];
        shapes.add_feature(
            Some(7),
            &TileGeometry::Polygons(vec![
                vec![square, hole],
                vec![vec![[200, 200], [300, 200], [300, 300]]],
            ]),
            &[("k", "v".into())],
        );
        let bytes = encode_tile(vec![pts, LayerBuilder::new("empty", 4096), shapes]).unwrap();

        let r = Reader::new(bytes).unwrap();
        assert_eq!(r.get_layer_names().unwrap(), vec!["points", "shapes"]);
        let meta = r.get_layer_metadata().unwrap();
        assert!(meta.iter().all(|m| m.extent == 4096 && m.version == 2));
        let feats = r.get_features(0).unwrap();
        assert_eq!(feats.len(), 3);
        for (i, f) in feats.iter().enumerate() {
            assert_eq!(f.id, Some(i as u64 + 10));
            let p = f.properties.as_ref().unwrap();
            assert_eq!(p["name"], Value::String(format!("p{}", i % 2)));
            assert_eq!(p["n"], Value::SInt(-(i as i64)));
            assert_eq!(p["u"], Value::UInt(i as u64 * 1_000_000_000_000));
            assert_eq!(p["d"], Value::Double(0.5));
            assert_eq!(p["b"], Value::Bool(i % 2 == 0));
            // mvt-reader decodes every point feature as a MultiPoint.
            let pt = match &f.geometry {
                Geometry::Point(p) => *p,
                Geometry::MultiPoint(mp) if mp.0.len() == 1 => mp.0[0],
                g => panic!("{g:?}"),
            };
            assert_eq!((pt.x(), pt.y()), (i as f32 * 100.0, -5.0 + i as f32));
        }
        let shapes = r.get_features(1).unwrap();
        let Geometry::MultiLineString(ls) = &shapes[0].geometry else {
            panic!()
        };
        let coords: Vec<Vec<(f32, f32)>> =
            ls.0.iter()
                .map(|l| l.0.iter().map(|c| (c.x, c.y)).collect())
                .collect();
        assert_eq!(
            coords,
            vec![
                vec![(0., 0.), (10., 0.), (10., 10.)],
                vec![(-64., 4160.), (5., 5.)]
            ]
        );
        assert_eq!(shapes[1].id, Some(7));
        let Geometry::MultiPolygon(mp) = &shapes[1].geometry else {
            panic!("{:?}", shapes[1].geometry)
        };
        assert_eq!(mp.0.len(), 2);
        assert_eq!(mp.0[0].interiors().len(), 1);
        assert_eq!(mp.0[0].exterior().0.len(), 5, "closed by the decoder");
    }

    #[test]
    fn keys_and_values_are_deduplicated() {
        let mut l = LayerBuilder::new("l", 4096);
        for _ in 0..3 {
            l.add_point(
                None,
                [1, 1],
                &[
                    ("key_alpha", "value_x".into()),
                    ("key_beta", "value_x".into()),
                    ("key_gamma", PropValue::Double(f64::NAN)),
                ],
            );
        }
        let bytes = encode_tile(vec![l]).unwrap();
        let count = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count(b"key_alpha"), 1);
        assert_eq!(count(b"key_beta"), 1);
        assert_eq!(count(b"value_x"), 1);
        assert_eq!(count(&f64::NAN.to_le_bytes()), 1);
    }

    #[test]
    fn repeated_layer_names_keep_the_first() {
        let mut a = LayerBuilder::new("same", 4096);
        a.add_point(Some(1), [1, 1], &[]);
        let mut b = LayerBuilder::new("same", 4096);
        b.add_point(Some(2), [2, 2], &[]);
        b.add_point(Some(3), [3, 3], &[]);
        let r = Reader::new(encode_tile(vec![a, b]).unwrap()).unwrap();
        assert_eq!(r.get_layer_names().unwrap(), vec!["same"]);
        assert_eq!(r.get_features(0).unwrap().len(), 1);
    }

    fn decoded_lines(g: &Geometry<f32>) -> Vec<Vec<[i32; 2]>> {
        let line = |l: &geo_types::LineString<f32>| {
            l.0.iter()
                .map(|c| [c.x as i32, c.y as i32])
                .collect::<Vec<_>>()
        };
        match g {
            Geometry::LineString(l) => vec![line(l)],
            Geometry::MultiLineString(ls) => ls.0.iter().map(line).collect(),
            Geometry::Polygon(p) => std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(line)
                .collect(),
            Geometry::MultiPolygon(mp) => {
                mp.0.iter()
                    .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
                    .map(line)
                    .collect()
            }
            g => panic!("{g:?}"),
        }
    }

    /// Rotates a closed ring (first point repeated at the end) to start at its lowest
    /// point, so rings compare equal whatever vertex they start from.
    fn canonical_ring(r: &[[i32; 2]]) -> Vec<[i32; 2]> {
        let open = &r[..r.len() - 1];
        let start = (0..open.len()).min_by_key(|&i| open[i]).unwrap();
        open[start..]
            .iter()
            .chain(&open[..start])
            .copied()
            .collect()
    }

    /// `mvt` drops a point equal to its cursor; a part starting where the previous one
    /// ended must still come out whole, with its own MoveTo.
    #[test]
    fn parts_starting_where_the_previous_ended_survive() {
        let mut l = LayerBuilder::new("l", 4096);
        let lines = vec![
            vec![[0, 0], [10, 0], [10, 10]],
            vec![[10, 10], [20, 10]], // starts at the cursor
            vec![[20, 10], [30, 10], [30, 20], [20, 10]], // closed, starts at the cursor
            vec![[50, 50], [60, 60]],
        ];
        assert!(l.add_feature(Some(1), &TileGeometry::Lines(lines.clone()), &[]));
        let exterior = vec![[0, 0], [100, 0], [100, 100], [0, 100]];
        let hole = vec![[0, 100], [20, 80], [80, 80], [80, 20]]; // starts at the cursor
        let second = vec![[80, 20], [300, 200], [300, 300]]; // starts at the cursor
        let polys = vec![vec![exterior.clone(), hole.clone()], vec![second.clone()]];
        assert!(l.add_feature(Some(2), &TileGeometry::Polygons(polys), &[]));
        let r = Reader::new(encode_tile(vec![l]).unwrap()).unwrap();
        let feats = r.get_features(0).unwrap();

        let got = decoded_lines(&feats[0].geometry);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], lines[0]);
        let mut reversed = lines[1].clone();
        reversed.reverse();
        assert!(got[1] == lines[1] || got[1] == reversed, "{:?}", got[1]);
        let mut closed = got[2].clone();
        assert_eq!(closed.first(), closed.last(), "still a loop: {closed:?}");
        closed = canonical_ring(&closed);
        assert_eq!(closed, canonical_ring(&lines[2]));
        assert_eq!(got[3], lines[3]);

        let rings = decoded_lines(&feats[1].geometry);
        let want: Vec<_> = [exterior, hole, second]
            .into_iter()
            .map(|mut r| {
                r.push(r[0]);
                canonical_ring(&r)
            })
            .collect();
        let got: Vec<_> = rings.iter().map(|r| canonical_ring(r)).collect();
        assert_eq!(got, want);
    }
}
