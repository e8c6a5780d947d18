#!/usr/bin/env bash
# Converts the OpenStreetMap extracts (.osm.pbf) of the shared basemap data into
# newline-delimited GeoJSON that `tessera basemap` reads: the `lines` layer of GDAL's OSM
# driver, with the `highway`, `railway`, `waterway` and `name` tags as properties.
# Usage: data/basemap/prepare.sh [SOURCE_DIR] [OUT_DIR]
set -euo pipefail
src=${1:-../shared/data/basemap}
out=${2:-target/basemap-prepared}
command -v ogr2ogr >/dev/null || { echo "prepare.sh: ogr2ogr (Debian gdal-bin) is needed" >&2; exit 1; }
convert() { # pbf, output name
  mkdir -p "$(dirname "$out/$2")"
  rm -f "$out/$2"
  # Only ways that are streets, paths, railways or waterways: the rest (barriers, aerial
  # ways) has no layer in the schema.
  ogr2ogr -f GeoJSONSeq "$out/$2" "$src/$1" lines \
    -select name,highway,railway,waterway \
    -where "highway IS NOT NULL OR railway IS NOT NULL OR waterway IS NOT NULL" \
    -lco RS=NO
  echo "$out/$2: $(wc -l <"$out/$2") ways"
}
convert nyc/manhattan_highways.osm.pbf nyc/manhattan_ways.geojsonl
convert nyc/brooklyn_parkslope_osmnx_2017.osm.pbf nyc/parkslope_ways.geojsonl
convert sf/sf_osmnx_2017_merged.osm.pbf sf/sf_ways.geojsonl
