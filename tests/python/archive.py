"""Reads a tile archive with readers Tessera did not write, for the Rust tests.

    archive.py pmtiles FILE   header, metadata and every tile (the `pmtiles` package)
    archive.py mbtiles FILE   metadata rows and every tile (Python's sqlite3)
    archive.py gdal FILE Z    layers and feature counts at zoom Z (GDAL, from pyogrio;
                              features of every tile, those in tile buffers too)

Prints one JSON document. Tiles are [z, x, y, hex of the stored bytes]."""

import json
import sqlite3
import sys


def hexed(data):
    return bytes(data).hex()


def read_pmtiles(path):
    from pmtiles.reader import MmapSource, Reader, all_tiles

    with open(path, "rb") as f:
        source = MmapSource(f)
        reader = Reader(source)
        header = {
            k: (v.name if hasattr(v, "name") else v) for k, v in reader.header().items()
        }
        tiles = [[z, x, y, hexed(data)] for (z, x, y), data in all_tiles(source)]
        return {"header": header, "metadata": reader.metadata(), "tiles": tiles}


def read_mbtiles(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    metadata = dict(db.execute("SELECT name, value FROM metadata"))
    tiles = [
        [z, x, (1 << z) - 1 - row, hexed(data)]
        for z, x, row, data in db.execute(
            "SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles"
        )
    ]
    images = db.execute("SELECT count(*) FROM images").fetchone()[0]
    return {"metadata": metadata, "tiles": tiles, "images": images}


def read_gdal(path, zoom):
    import pyogrio

    layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    counts = {}
    for name in layers:
        info = pyogrio.read_info(path, layer=name, force_feature_count=True, ZOOM_LEVEL=zoom)
        counts[name] = info["features"]
    return {"driver": pyogrio.read_info(path, layer=layers[0])["driver"], "layers": layers, "counts": counts}


def main():
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "pmtiles":
        out = read_pmtiles(path)
    elif kind == "mbtiles":
        out = read_mbtiles(path)
    elif kind == "gdal":
        out = read_gdal(path, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown reader {kind}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
