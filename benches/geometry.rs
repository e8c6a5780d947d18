//! Reading a stored shape, the first step of every line or polygon drawn in a tile:
//! WKB (what the store keeps now) against GeoJSON text (what it kept before), for a
//! street-sized line and a borough-sized polygon.
//!
//! `cargo bench --bench geometry`; figures in bench/README.md.

use criterion::{Criterion, criterion_group, criterion_main};
use geo_types::{Geometry, LineString, Polygon};
use std::hint::black_box;

/// A closed ring of `n` positions around a London-sized centre, with the 7-digit
/// decimals of real coordinates (seeded jitter, no rand dependency).
fn ring(n: usize, radius: f64) -> LineString<f64> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut coords: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            let r = radius * (1.0 + (s % 1000) as f64 / 20_000.0);
            let round = |v: f64| (v * 1e7).round() / 1e7;
            (round(-0.1 + r * a.cos()), round(51.5 + r * a.sin()))
        })
        .collect();
    coords.push(coords[0]);
    LineString::from(coords)
}

fn bench(c: &mut Criterion) {
    // Manhattan roads average a handful of positions; London boroughs ~5,600.
    let road: Geometry<f64> = ring(12, 0.002).into();
    let borough: Geometry<f64> = Polygon::new(ring(5_600, 0.1), vec![]).into();
    for (name, g) in [
        ("road (12 positions)", &road),
        ("borough (5,601 positions)", &borough),
    ] {
        let text = tessera::geometry::to_geojson(g);
        let blob = tessera::store::wkb::encode(g);
        let mut group = c.benchmark_group(name);
        group.bench_function("GeoJSON text -> geojson value (before)", |b| {
            b.iter(|| black_box(text.parse::<geojson::Geometry>().unwrap()))
        });
        group.bench_function("WKB -> geo-types (now)", |b| {
            b.iter(|| black_box(tessera::store::wkb::decode(black_box(&blob)).unwrap()))
        });
        group.bench_function("geo-types -> GeoJSON text (items)", |b| {
            let mut out = Vec::with_capacity(text.len());
            b.iter(|| {
                out.clear();
                tessera::geometry::write_geojson(&mut out, g);
                black_box(out.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
