#!/usr/bin/env bash
# Times the PostGIS load of peers-load.sh (COPY, CREATE TABLE AS, PK, GiST, VACUUM ANALYZE) into a
# scratch database bench_import, so it can be interleaved with `tessera import` runs.
# Usage: bench/postgis-import.sh   (expects /work/bench-data/points.csv; PostgreSQL running)
su postgres -c "dropdb --if-exists bench_import; createdb bench_import" >/dev/null
start=$(date +%s.%N)
su postgres -c "psql -q -d bench_import" <<SQL >/dev/null
CREATE EXTENSION postgis;
CREATE UNLOGGED TABLE points_raw (id bigint, lon double precision, lat double precision, category text, month text);
\copy points_raw FROM '/work/bench-data/points.csv' WITH (FORMAT csv, HEADER true)
CREATE TABLE points AS SELECT id, category, month, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geometry(Point,4326) AS geom FROM points_raw;
ALTER TABLE points ADD PRIMARY KEY (id);
CREATE INDEX points_geom_gist ON points USING gist (geom);
VACUUM ANALYZE points;
DROP TABLE points_raw;
SQL
echo "postgis $(echo "$(date +%s.%N) - $start" | bc) s"
