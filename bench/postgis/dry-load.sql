SET client_min_messages = warning;
-- Stand-in for `tessera import points.csv --dataset uk --time month` when no Tessera with the
-- PostgreSQL backend is at hand: the same table layout (issue 10: one table tessera.f_<gen> per
-- dataset version, listed in tessera.datasets), loaded with plain SQL, so that martin, tipg and
-- the ST_AsMVT loop can be tried on the table they will serve. Not Tessera's import: fields are
-- c0 = id, c1 = category, c2 = month, and rows are ordered by geohash (a Z-order, not Hilbert).
-- The CSV (id,lon,lat,category,month, made by prepare.py) comes on stdin:
--   psql -X -q -v ON_ERROR_STOP=1 -d DB -f dry-load.sql < points.csv
CREATE EXTENSION IF NOT EXISTS postgis;
DROP SCHEMA IF EXISTS tessera CASCADE;
CREATE SCHEMA tessera;
CREATE TABLE tessera.datasets (id text PRIMARY KEY, gen bigint NOT NULL, version bigint NOT NULL, info jsonb);
CREATE TEMP TABLE raw (id bigint, lon float8, lat float8, category text, month text);
\copy raw FROM pstdin WITH (FORMAT csv, HEADER true)
CREATE TABLE tessera.f_1 AS
SELECT row_number() OVER (ORDER BY ST_GeoHash(ST_MakePoint(lon, lat)), id) AS fid,
       'points.csv:' || (id + 1) AS src,
       lon AS minx, lat AS miny, lon AS maxx, lat AS maxy,
       ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geometry(Geometry, 4326) AS geom,
       extract(epoch FROM (month || '-01')::date)::bigint AS t0,
       extract(epoch FROM ((month || '-01')::date + interval '1 month'))::bigint - 1 AS t1,
       id AS c0, category AS c1, month AS c2
FROM raw;
ALTER TABLE tessera.f_1 ADD PRIMARY KEY (fid);
CREATE INDEX f_1_geom ON tessera.f_1 USING gist (geom);
INSERT INTO tessera.datasets VALUES ('uk', 1, 1, '{"dry_run": true}');
VACUUM ANALYZE tessera.f_1;
