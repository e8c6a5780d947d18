//! The hot paths of point tiles: building the in-memory index, clustering a low-zoom
//! tile that holds a million points, and encoding a dense unclustered tile.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tessera::model::Bounds;
use tessera::tiles::{
    ClusterParams, Filter, PointIndex, PointLayerParams, PointRecord, TileCoord, cluster_tile,
    encode_tile, render_points, tile_of,
};

/// Seeded uniform points in `b` (xorshift: no rand dependency), with times and categories.
fn points_in(b: Bounds, n: usize, seed: u64) -> Vec<PointRecord> {
    let mut s = seed.max(1);
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|i| {
            let r = next();
            let u = |bits: u64| (bits & 0xFFFF_FFFF) as f64 / 4_294_967_296.0;
            PointRecord {
                fid: i as i64,
                lon: b.min_x + (b.max_x - b.min_x) * u(r),
                lat: b.min_y + (b.max_y - b.min_y) * u(r >> 32),
                time: Some((1_500_000_000 + (r % 100_000_000) as i64, 1_600_000_000)),
                category: Some((r % 14) as u32),
            }
        })
        .collect()
}

fn categories() -> Vec<String> {
    (0..14).map(|i| format!("category {i}")).collect()
}

fn params(cluster_zoom: u8) -> PointLayerParams<'static> {
    PointLayerParams {
        layer: "points",
        cluster_zoom,
        grid_cells: 16,
        buffer: 64,
        extent: 4096,
        category_field: Some("category"),
        ids: None,
        extra: None,
    }
}

fn benches(c: &mut Criterion) {
    // One z5 tile (over south-east England) holding all the points.
    let z5 = tile_of(-0.1, 51.5, 5).unwrap();
    let million = points_in(z5.bounds_lonlat(), 1_000_000, 42);
    let mut g = c.benchmark_group("tiles");
    g.sample_size(10);
    g.bench_function("build index 1M points", |b| {
        b.iter_batched(
            || million.clone(),
            |pts| PointIndex::build(pts, categories()).unwrap(),
            BatchSize::LargeInput,
        )
    });
    let index = PointIndex::build(million, categories()).unwrap();
    let filter = Filter::default();
    g.bench_function("cluster z5 tile of 1M points", |b| {
        b.iter(|| cluster_tile(&index, black_box(z5), &filter, &ClusterParams::default()))
    });
    g.bench_function("render+encode z5 tile of 1M points", |b| {
        b.iter(|| {
            encode_tile(vec![render_points(
                &index,
                black_box(z5),
                &filter,
                &params(14),
            )])
        })
    });
    let time_filter = Filter {
        time: Some((1_550_000_000, 1_560_000_000)),
        categories: Some(vec![1, 2, 3]),
        fids: None,
    };
    g.bench_function("render+encode z5 tile of 1M points, filtered", |b| {
        b.iter(|| {
            encode_tile(vec![render_points(
                &index,
                black_box(z5),
                &time_filter,
                &params(14),
            )])
        })
    });
    g.finish();

    let z14: TileCoord = tile_of(-0.1, 51.5, 14).unwrap();
    let small = PointIndex::build(points_in(z14.bounds_lonlat(), 1_000, 7), categories()).unwrap();
    c.bench_function("render+encode z14 tile of 1,000 points", |b| {
        b.iter(|| {
            encode_tile(vec![render_points(
                &small,
                black_box(z14),
                &filter,
                &params(14),
            )])
        })
    });
}

criterion_group!(tiles, benches);
criterion_main!(tiles);
