#!/usr/bin/env python3
"""Generate MapLibre SDF glyph PBFs (assets/fonts/{fontstack}/{start}-{end}.pbf).

Exact command used for the committed files (Debian bookworm, Python 3.11):

    apt-get install -y fonts-noto-core
    pip install freetype-py==2.5.1 numpy==2.4.6 scipy==1.17.1
    python3 assets/fonts/generate.py --out assets/fonts \
        "Noto Sans Regular=/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf" \
        "Noto Sans Bold=/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"

Output format: the `glyphs` protobuf message that MapLibre / Mapbox GL read
(mapbox/glyph-pbf-composite glyphs.proto):

    message glyph     { uint32 id = 1; bytes bitmap = 2; uint32 width = 3; uint32 height = 4;
                        sint32 left = 5; sint32 top = 6; uint32 advance = 7; }
    message fontstack { string name = 1; string range = 2; repeated glyph glyphs = 3; }
    message glyphs    { repeated fontstack stacks = 1; }

Metrics follow node-fontnik / sdf-glyph-foundry: 24 px em, 3 px buffer, SDF
radius 8 px, cutoff 0.25 (the glyph edge is byte value 191, which is what
MapLibre's shader treats as the edge), bitmap of (width+6) x (height+6) bytes,
left = bbox xMin, top = bbox yMax - ascender, advance = horizontal advance,
all in pixels at 24 px.

The SDF is computed by rendering the unhinted outline at 8x the size, taking
exact Euclidean distance transforms (scipy) of the inside and the outside,
and averaging the signed distance over each output pixel.

Every one of the 256 ranges 0-255 ... 65280-65535 is written, so a map never
asks for a glyph file that is missing: ranges outside --full-ranges (or with
no glyph in the font) are written as valid PBFs holding no glyph. MapLibre
then simply draws nothing for those characters instead of logging an error.
"""

import argparse
import os
import sys

import freetype
import numpy as np
from scipy.ndimage import distance_transform_edt

SIZE = 24        # em size in pixels
BUFFER = 3       # border around each glyph bitmap, pixels
RADIUS = 8.0     # SDF radius, pixels
CUTOFF = 0.25    # fraction of the range that lies outside the edge
SCALE = 8        # supersampling factor for the distance computation

# Unicode blocks (in units of 256 code points) that get real glyphs by default:
# Latin-1, Latin Extended A/B, IPA, spacing modifiers, combining marks, Greek,
# Cyrillic (0-1279), Latin Extended Additional / Greek Extended (7680-8191),
# General Punctuation, currency, letterlike symbols, arrows (8192-8703).
DEFAULT_FULL = "0-1535,7680-8703"


# --------------------------------------------------------------------------- protobuf
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


# --------------------------------------------------------------------------- SDF
def glyph_record(face_lo, face_hi, codepoint, ascender):
    index = face_lo.get_char_index(codepoint)
    if index == 0:
        return None
    flags = freetype.FT_LOAD_NO_HINTING | freetype.FT_LOAD_NO_BITMAP
    face_lo.load_glyph(index, flags)
    slot = face_lo.glyph
    advance = int(round(slot.metrics.horiAdvance / 64.0))
    cbox = slot.outline.get_cbox()
    if slot.outline.n_points == 0 or cbox.xMax <= cbox.xMin or cbox.yMax <= cbox.yMin:
        return dict(id=codepoint, bitmap=b"", width=0, height=0, left=0,
                    top=-ascender, advance=advance)
    left = int(np.floor(cbox.xMin / 64.0))
    right = int(np.ceil(cbox.xMax / 64.0))
    bottom = int(np.floor(cbox.yMin / 64.0))
    top = int(np.ceil(cbox.yMax / 64.0))
    width, height = right - left, top - bottom
    bw, bh = width + 2 * BUFFER, height + 2 * BUFFER

    # Render the same unhinted outline SCALE times larger.
    face_hi.load_glyph(index, flags | freetype.FT_LOAD_RENDER)
    hs = face_hi.glyph
    bmp = hs.bitmap
    canvas = np.zeros((bh * SCALE, bw * SCALE), dtype=np.float32)
    if bmp.rows and bmp.width:
        src = np.array(bmp.buffer, dtype=np.uint8).reshape(bmp.rows, bmp.pitch)[:, : bmp.width]
        # canvas top-left is at (left - BUFFER, top + BUFFER) in low-res pixels, y up
        col0 = hs.bitmap_left - (left - BUFFER) * SCALE
        row0 = (top + BUFFER) * SCALE - hs.bitmap_top
        r0, c0 = max(row0, 0), max(col0, 0)
        r1 = min(row0 + bmp.rows, canvas.shape[0])
        c1 = min(col0 + bmp.width, canvas.shape[1])
        if r1 > r0 and c1 > c0:
            canvas[r0:r1, c0:c1] = src[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
    inside = canvas >= 128
    if inside.any():
        d_out = distance_transform_edt(~inside)  # outside pixels: distance to ink
        d_in = distance_transform_edt(inside)    # ink pixels: distance to outside
        signed = (d_out - d_in) / SCALE          # low-res pixels, negative inside
    else:
        signed = np.full(canvas.shape, RADIUS, dtype=np.float64)
    d = signed.reshape(bh, SCALE, bw, SCALE).mean(axis=(1, 3))
    value = 255.0 - 255.0 * np.clip(d / RADIUS + CUTOFF, 0.0, 1.0)
    bitmap = np.round(value).astype(np.uint8).tobytes()
    return dict(id=codepoint, bitmap=bitmap, width=width, height=height, left=left,
                top=top - ascender, advance=advance)


def encode_glyph(g):
    out = field_varint(1, g["id"])
    if g["width"] > 0:
        out += field_bytes(2, g["bitmap"])
    out += field_varint(3, g["width"])
    out += field_varint(4, g["height"])
    out += field_varint(5, zigzag(g["left"]))
    out += field_varint(6, zigzag(g["top"]))
    out += field_varint(7, g["advance"])
    return out


def parse_ranges(text):
    blocks = set()
    for part in text.split(","):
        a, b = part.split("-")
        for cp in range(int(a), int(b) + 1, 256):
            blocks.add(cp // 256)
    return blocks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (assets/fonts)")
    ap.add_argument("--full-ranges", default=DEFAULT_FULL,
                    help="code point ranges that get glyphs (default %(default)s)")
    ap.add_argument("fonts", nargs="+", help='"Font Stack Name=/path/to/font.ttf"')
    args = ap.parse_args()
    full = parse_ranges(args.full_ranges)

    for spec in args.fonts:
        name, path = spec.split("=", 1)
        face_lo = freetype.Face(path)
        face_lo.set_char_size(SIZE * 64, 0, 72, 72)
        face_hi = freetype.Face(path)
        face_hi.set_char_size(SIZE * SCALE * 64, 0, 72, 72)
        ascender = int(round(face_lo.size.ascender / 64.0))
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        total = 0
        for block in range(256):
            start, end = block * 256, block * 256 + 255
            body = field_bytes(1, name.encode()) + field_bytes(2, f"{start}-{end}".encode())
            if block in full:
                for cp in range(start, end + 1):
                    g = glyph_record(face_lo, face_hi, cp, ascender)
                    if g is not None:
                        body += field_bytes(3, encode_glyph(g))
                        total += 1
            with open(os.path.join(folder, f"{start}-{end}.pbf"), "wb") as f:
                f.write(field_bytes(1, body))
        print(f"{name}: {total} glyphs, ascender {ascender}px -> {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
