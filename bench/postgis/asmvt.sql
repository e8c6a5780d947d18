-- pgbench script of bench/postgis/shapes.sh: one random tile of bench_tiles (ids lo..hi, given
-- with -D) drawn by PostGIS alone, with the settings Tessera uses: extent 4096, buffer 64, clipped,
-- the same columns as properties and fid as the feature id. @TABLE@, @COLS@ and @LAYER@ are filled
-- in by shapes.sh (names read from the catalog, never from input).
\set i random(:lo, :hi)
SELECT ST_AsMVT(q, '@LAYER@', 4096, 'geom', 'fid')
FROM (
  SELECT f.fid, @COLS@, ST_AsMVTGeom(ST_Transform(f.geom, 3857), ST_TileEnvelope(t.z, t.x, t.y), 4096, 64, true) AS geom
  FROM bench_tiles t
  JOIN @TABLE@ f ON f.geom && ST_Transform(ST_TileEnvelope(t.z, t.x, t.y, margin => 64.0 / 4096), 4326)
  WHERE t.i = :i
) q
WHERE q.geom IS NOT NULL;
