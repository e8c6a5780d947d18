-- The baseline of the import figure: plain COPY + GiST index, the SQL of
-- ../shared/bench/peers-load.sh (COPY into an unlogged raw table, CREATE TABLE AS with the
-- geometry, primary key, GiST index, VACUUM ANALYZE), with the CSV on stdin (pstdin) so that
-- the rows travel over the connection as Tessera's COPY does:
--   psql -X -q -v ON_ERROR_STOP=1 -d DB -f copy-load.sql < points.csv
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE UNLOGGED TABLE points_raw (id bigint, lon double precision, lat double precision, category text, month text);
\copy points_raw FROM pstdin WITH (FORMAT csv, HEADER true)
CREATE TABLE points AS SELECT id, category, month, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geometry(Point,4326) AS geom FROM points_raw;
ALTER TABLE points ADD PRIMARY KEY (id);
CREATE INDEX points_geom_gist ON points USING gist (geom);
VACUUM ANALYZE points;
DROP TABLE points_raw;
