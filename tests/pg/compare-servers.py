"""Asks two Tessera servers the same few hundred questions and reports every answer that differs.

Usage: python3 tests/pg/compare-servers.py http://127.0.0.1:18081 http://127.0.0.1:18082

Meant for the same data on two backends (say `tessera serve --db postgresql://...` and
`tessera serve --db demo.db`, both with the demo manifest): for every collection it asks
pages, offsets, CSV, HTML, queryables, bbox and datetime filters, sorting by each of the
first properties both ways, property filters on values taken from the data, single items,
`within=`, counts by area and tiles at several zooms, and compares status and body (with
the base URL, `timeStamp` and `updated` left out). Standard library only.
"""
import json, sys, urllib.request, urllib.parse, re
A, B = sys.argv[1], sys.argv[2]   # PG, SQLite bases
def get(base, path):
    try:
        with urllib.request.urlopen(base + path) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers
def norm(body, base):
    t = body.decode('utf-8', 'replace').replace(base, 'BASE')
    t = re.sub(r'"timeStamp":"[^"]*"', '', t)
    t = re.sub(r'"updated":"[^"]*"', '', t)
    return t
cols = json.loads(get(B, '/collections')[1])['collections']
paths = []
for c in cols:
    i = c['id']
    q = urllib.parse.quote
    paths += [f'/collections/{i}', f'/collections/{i}/items?limit=100', f'/collections/{i}/items?limit=30&offset=57',
              f'/collections/{i}/items?f=csv&limit=500', f'/collections/{i}/queryables', f'/collections/{i}/items?limit=5&f=html']
    ext = c.get('extent', {})
    bb = ext.get('spatial', {}).get('bbox', [[None]])[0]
    if bb and bb[0] is not None:
        cx, cy = (bb[0]+bb[2])/2, (bb[1]+bb[3])/2
        w, h = (bb[2]-bb[0])/8, (bb[3]-bb[1])/8
        paths.append(f'/collections/{i}/items?limit=200&bbox={cx-w},{cy-h},{cx+w},{cy+h}')
    iv = ext.get('temporal', {}).get('interval', [[None]])[0]
    if iv and iv[0]:
        paths.append(f'/collections/{i}/items?limit=100&datetime={q(iv[0])}/{q(iv[1] or "..")}')
    qs = json.loads(get(B, f'/collections/{i}/queryables')[1]).get('properties', {})
    for name, spec in list(qs.items())[:6]:
        paths.append(f'/collections/{i}/items?limit=50&sortby={q("-"+name)}')
        paths.append(f'/collections/{i}/items?limit=50&sortby={q(name)}')
    paths.append(f'/collections/{i}/items?limit=1&f=json')
# take some property values from items and filter on them
for c in cols:
    i = c['id']
    items = json.loads(get(B, f'/collections/{i}/items?limit=3')[1])
    for f in items.get('features', [])[:2]:
        for k, v in list((f.get('properties') or {}).items())[:4]:
            if v is None: continue
            paths.append(f'/collections/{i}/items?limit=40&' + urllib.parse.urlencode({k: str(v)}))
        paths.append(f'/collections/{i}/items/{urllib.parse.quote(str(f["id"]))}')
# within: points in chicago community areas
paths += ['/collections/chicago-food-inspections/items?limit=100&within=chicago-community-areas/8',
          '/collections/nyc-311/items?limit=100&within=nyc-neighbourhoods/1',
          '/collections/chicago-food-inspections/aggregate?by=chicago-community-areas',
          '/collections/nyc-311/aggregate?by=nyc-neighbourhoods']
for z, x, y in [(10, 301, 384), (12, 1206, 1539), (14, 4825, 6159), (11, 525, 761), (13, 2101, 3046), (3, 2, 3), (0, 0, 0)]:
    for c in cols:
        paths.append(f'/tiles/{c["id"]}/{z}/{x}/{y}.mvt')
same = diff = 0
for p in paths:
    sa, ba, ha = get(A, p); sb, bb2, hb = get(B, p)
    na, nb = norm(ba, A), norm(bb2, B)
    if sa == sb and na == nb:
        same += 1
    else:
        diff += 1
        print('DIFF', p, sa, sb, len(ba), len(bb2))
        if sa != 200 or sb != 200:
            print('   ', ba[:200], bb2[:200])
        else:
            # first differing char
            k = next((j for j in range(min(len(na), len(nb))) if na[j] != nb[j]), min(len(na), len(nb)))
            print('    PG :', na[max(0,k-80):k+120])
            print('    SQL:', nb[max(0,k-80):k+120])
print('same', same, 'diff', diff)
