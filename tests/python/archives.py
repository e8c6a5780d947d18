"""Makes the tile archives the server is tested with, and reads them back.

make OUT_DIR FIXTURES_DIR: in OUT_DIR, tippecanoe builds crime.pmtiles and crime-mb.mbtiles
 from the UK crime sample (real police.uk data); the `pmtiles` writer and sqlite3 build
tiny raster archives (PNG PMTiles, WebP MBTiles); the bad archives are cut or corrupted
copies. Prints, as JSON, every tile of every good archive as read by the `pmtiles`
package and by sqlite3 (XYZ rows), both as stored and inflated, with the metadata.
"""
import csv, gzip, json, os, shutil, sqlite3, struct, subprocess, sys, zlib
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

def png_1x1(rgb):
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"\x00" + bytes(rgb)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

# A 1x1 lossless WebP (RIFF container, VP8L chunk).
WEBP_1x1 = bytes.fromhex("524946461a000000574542505650384c0d0000002f0000001007101111888808fe0700")

def crime_geojson(fixtures, out):
    feats = []
    with open(os.path.join(fixtures, "uk-crime-sample.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if not row["Longitude"] or not row["Latitude"]:
                continue
            feats.append({"type": "Feature", "properties": {"crime_type": row["Crime type"], "month": row["Month"]},
                          "geometry": {"type": "Point", "coordinates": [float(row["Longitude"]), float(row["Latitude"])]}})
    with open(out, "w") as f:
        json.dump({"type": "FeatureCollection", "features": feats}, f)

def raster_pmtiles(path):
    tiles = {(0, 0, 0): png_1x1((200, 30, 30)), (1, 0, 0): png_1x1((30, 200, 30)), (1, 1, 1): png_1x1((30, 30, 200))}
    with open(path, "wb") as f:
        w = Writer(f)
        for (z, x, y) in sorted(tiles, key=lambda t: zxy_to_tileid(*t)):
            w.write_tile(zxy_to_tileid(z, x, y), tiles[(z, x, y)])
        w.finalize({"tile_type": TileType.PNG, "tile_compression": Compression.NONE,
                    "min_lon_e7": -1800000000, "min_lat_e7": -850511287, "max_lon_e7": 1800000000,
                    "max_lat_e7": 850511287, "center_zoom": 0, "center_lon_e7": 0, "center_lat_e7": 0},
                   {"name": "raster test", "attribution": "made by the test"})

def raster_mbtiles(path):
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE metadata (name TEXT, value TEXT);"
                     "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);")
    meta = {"name": "webp test", "format": "webp", "minzoom": "0", "maxzoom": "1",
            "bounds": "-180,-85.0511,180,85.0511", "center": "0,0,0", "attribution": "made by the test"}
    db.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
    # Stored TMS: XYZ (1, 1, 0) is row 1.
    db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", [(0, 0, 0, WEBP_1x1), (1, 1, 1, WEBP_1x1)])
    db.commit()
    db.close()

def bad_archives(out, good):
    data = open(good, "rb").read()
    open(os.path.join(out, "truncated.pmtiles"), "wb").write(data[: len(data) // 2])
    open(os.path.join(out, "badmagic.pmtiles"), "wb").write(b"NOTTILE" + data[7:])
    unknown = bytearray(data)
    unknown[98] = 0  # tile_compression: 0 is "unknown" in the v3 header
    open(os.path.join(out, "unknowncompression.pmtiles"), "wb").write(bytes(unknown))
    open(os.path.join(out, "notsqlite.mbtiles"), "wb").write(b"this is not an SQLite file\n" * 40)
    db = sqlite3.connect(os.path.join(out, "notiles.mbtiles"))
    db.executescript("CREATE TABLE metadata (name TEXT, value TEXT); INSERT INTO metadata VALUES ('name', 'x');")
    db.close()

def inflate(b):
    return gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b

def read_pmtiles(path):
    with open(path, "rb") as f:
        get = MmapSource(f)
        r = Reader(get)
        h = r.header()
        tiles = [[z, x, y, bytes(t).hex(), inflate(bytes(t)).hex()] for (z, x, y), t in all_tiles(get)]
        header = {k: (v.name if hasattr(v, "name") else v) for k, v in h.items()}
        return {"header": header, "metadata": r.metadata(), "tiles": tiles}

def read_mbtiles(path):
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT name, value FROM metadata"))
    tiles = [[z, x, (1 << z) - 1 - row, bytes(t).hex(), inflate(bytes(t)).hex()]
             for z, x, row, t in db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")]
    db.close()
    return {"metadata": meta, "tiles": tiles}

def make(out, fixtures):
    src = os.path.join(out, "crime.geojson")
    crime_geojson(fixtures, src)
    tippecanoe = os.path.join(os.path.dirname(sys.executable), "tippecanoe")
    for name in ["crime.pmtiles", "crime-mb.mbtiles"]:
        subprocess.run([tippecanoe, "-q", "-o", os.path.join(out, name), "-l", "crime", "-n", "UK crime sample",
                        "-Z", "4", "-z", "9", "-r1", "--force", src], check=True)
    os.remove(src)
    raster_pmtiles(os.path.join(out, "raster.pmtiles"))
    raster_mbtiles(os.path.join(out, "raster-webp.mbtiles"))
    good = {n: read_pmtiles(os.path.join(out, n)) for n in ["crime.pmtiles", "raster.pmtiles"]}
    good.update({n: read_mbtiles(os.path.join(out, n)) for n in ["crime-mb.mbtiles", "raster-webp.mbtiles"]})
    bad_archives(out, os.path.join(out, "crime.pmtiles"))
    json.dump(good, sys.stdout)

if __name__ == "__main__":
    make(sys.argv[2], sys.argv[3])
