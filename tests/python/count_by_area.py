"""Brute-force counts by area with shapely, to check Tessera's /aggregate against.

usage: count_by_area.py POINTS.csv AREAS.geojson LON LAT NAME [FIELD PREFIX]...

Every point with both coordinates is tested against every polygon (no index); a point
that several polygons cover (a shared edge) goes to the first in file order, as
Tessera's rule says. Rows pass when each FIELD starts with its PREFIX. Prints
{"counts": {name: n}, "outside": n, "total": n} as JSON.
"""
import csv
import json
import sys

from shapely.geometry import Point, shape

points, areas, lon, lat, name_field = sys.argv[1:6]
filters = list(zip(sys.argv[6::2], sys.argv[7::2]))
with open(areas, encoding="utf-8") as f:
    features = json.load(f)["features"]
polygons = [(feat["properties"][name_field], shape(feat["geometry"])) for feat in features]
counts = {name: 0 for name, _ in polygons}
outside = total = 0
with open(points, encoding="utf-8", newline="") as f:
    for row in csv.DictReader(f):
        if not row[lon].strip() or not row[lat].strip():
            continue
        if not all(row[k].startswith(v) for k, v in filters):
            continue
        total += 1
        p = Point(float(row[lon]), float(row[lat]))
        hit = next((name for name, poly in polygons if poly.covers(p)), None)
        if hit is None:
            outside += 1
        else:
            counts[hit] += 1
print(json.dumps({"counts": counts, "outside": outside, "total": total}))
