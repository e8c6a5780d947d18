#!/usr/bin/env python3
"""Tile and bbox lists for any points CSV (id,lon,lat,...), made as prepare.py makes them for
UK crime: every non-empty z14 and z15 tile + 3,000 random non-empty z16 tiles, shuffled (seed 7),
and the bbox of each non-empty z15 tile, shuffled. For the 20M synthetic set, where prepare.py's
pure-Python pass over every zoom would take too long (numpy here; zooms 14-16 only).
Usage: lists.py POINTS.csv TILES_OUT BBOXES_OUT
"""
import math
import random
import sys

import numpy as np

src, tiles_out, bboxes_out = sys.argv[1:4]
pts = np.loadtxt(src, delimiter=",", skiprows=1, usecols=(1, 2), ndmin=2)
lon, lat = pts[:, 0], pts[:, 1]


def tiles(z):
    n = 1 << z
    x = np.clip(((lon + 180.0) / 360.0 * n).astype(np.int64), 0, n - 1)
    s = np.sin(np.radians(lat))
    y = np.clip(((0.5 - np.log((1 + s) / (1 - s)) / (4 * np.pi)) * n).astype(np.int64), 0, n - 1)
    return sorted(set(zip(x.tolist(), y.tolist())))


def bbox(z, x, y):
    n = 1 << z
    la = lambda t: math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * t / n))))
    return x / n * 360 - 180, la(y + 1), (x + 1) / n * 360 - 180, la(y)


rng = random.Random(7)
names = lambda z, ts: [f"{z}/{x}/{y}" for x, y in ts]
t15 = tiles(15)
mix = names(14, tiles(14)) + names(15, t15)
z16 = names(16, tiles(16)); rng.shuffle(z16); mix += z16[:3000]
rng.shuffle(mix)
bb = [",".join(f"{v:.7f}" for v in bbox(15, x, y)) for x, y in t15]
rng.shuffle(bb)
open(tiles_out, "w").write("\n".join(mix) + "\n")
open(bboxes_out, "w").write("\n".join(bb) + "\n")
print(f"{len(lon)} points: {len(mix)} z14-16 tiles, {len(bb)} z15 bboxes")
