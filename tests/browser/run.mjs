// Browser tests of Tessera's catalog, map page and embed, in Debian's headless Chromium.
//
//   cd tests/browser && npm ci
//   BASE_URL=http://127.0.0.1:8080 node --test --test-concurrency=1 run.mjs
//
// BASE_URL: a running Tessera serving the demo catalog (data/tessera.toml).
// CHROMIUM: browser binary (default /usr/bin/chromium).
// SCREENSHOT_DIR: where catalog.png, map.png and embed.png go
//   (default <repo>/test-output/screenshots).
// The last line of the output is node's test summary.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { isTechnical } from '../../assets/popup.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const BASE_ORIGIN = new URL(BASE_URL).origin;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOT_DIR || path.resolve(here, '..', '..', 'test-output', 'screenshots');
const DATASET = 'nyc-311';
const POLYGONS = 'nyc-neighbourhoods';
const TIMEOUT = 45_000;

let context;
let userDataDir;

// ------------------------------------------------------------------ harness

before(async () => {
  await mkdir(SHOTS, { recursive: true });
  userDataDir = await mkdtemp(path.join(os.tmpdir(), 'tessera-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // WebGL in software (SwiftShader); newer Chromium needs the explicit opt-in.
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
    ],
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(TIMEOUT);
});

after(async () => {
  await context?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

// Opens a page that records every request and every console error.
async function openPage() {
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location()?.url ?? ''})`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText ?? '';
    if (!/ERR_ABORTED|NS_BINDING_ABORTED/.test(why)) errors.push(`requestfailed: ${r.url()} ${why}`);
  });
  page.on('worker', (w) => {
    w.on('console', (m) => {
      if (m.type() === 'error') errors.push(`worker console: ${m.text()}`);
    });
  });
  return { page, requests, errors };
}

function networkUrls(urls) {
  return urls.filter((u) => /^https?:|^wss?:|^ftp:/i.test(u));
}

function assertOnlyOrigins(requests, allowed, label) {
  const foreign = networkUrls(requests).filter((u) => !allowed.includes(new URL(u).origin));
  assert.deepEqual(foreign, [], `${label}: requests left the allowed origins ${allowed.join(', ')}`);
}

// Resource timing sees requests made by workers too.
async function resourceOrigins(frame) {
  return frame.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name));
}

async function waitForMap(frame) {
  await frame.waitForFunction(() => window.tessera && window.tesseraMap, null, { timeout: TIMEOUT });
  await frame.evaluate(() => window.tessera.ready);
  await waitIdle(frame);
}

// Wait until the map has rendered everything it asked for.
async function waitIdle(frame) {
  await frame.waitForFunction(
    () => {
      const m = window.tesseraMap;
      return m && m.loaded() && m.areTilesLoaded() && !m.isMoving()
        && window.tessera.idleTilesVersion === window.tessera.tilesVersion;
    },
    null,
    { timeout: TIMEOUT, polling: 100 },
  );
  // one more frame so that symbol placement has settled
  await frame.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

async function jump(frame, view) {
  await frame.evaluate((v) => window.tesseraMap.jumpTo(v), view);
  await waitIdle(frame);
}

// After an action that changes filters: wait for the new tiles to be drawn.
async function afterFilterChange(frame, beforeVersion) {
  await frame.waitForFunction((v) => window.tessera.tilesVersion > v, beforeVersion, { timeout: TIMEOUT });
  await waitIdle(frame);
}

// What is drawn: clusters (with their point counts) and single points, deduplicated.
async function rendered(frame) {
  return frame.evaluate(() => {
    const m = window.tesseraMap;
    const layers = m.getStyle().layers.filter((l) => l.source === 'data' && l.type !== 'background').map((l) => l.id);
    const feats = m.queryRenderedFeatures({ layers });
    const clusters = new Map();
    const points = new Map();
    const labels = [];
    for (const f of feats) {
      const p = f.properties;
      if (f.layer.type === 'symbol') {
        if (p.cluster === true) labels.push(String(p.point_count_abbreviated ?? p.point_count));
        continue;
      }
      const [x, y] = f.geometry.type === 'Point' ? f.geometry.coordinates : [NaN, NaN];
      if (p.cluster === true) {
        clusters.set(`${x.toFixed(5)},${y.toFixed(5)},${p.point_count}`, { x, y, count: Number(p.point_count), expansion: Number(p.cluster_expansion_zoom) });
      } else {
        points.set(String(p.fid ?? f.id ?? `${x},${y}`), { x, y, fid: p.fid ?? f.id });
      }
    }
    const total = [...clusters.values()].reduce((s, c) => s + c.count, 0) + points.size;
    return { features: feats.length, clusters: [...clusters.values()], points: [...points.values()], labels, total };
  });
}

async function getJSON(url) {
  const res = await fetch(url, { headers: { Accept: 'application/json, application/geo+json' } });
  assert.equal(res.status, 200, `GET ${url}`);
  return res.json();
}

function bboxOf(geometry) {
  let w = Infinity;
  let s = Infinity;
  let e = -Infinity;
  let n = -Infinity;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      w = Math.min(w, c[0]);
      e = Math.max(e, c[0]);
      s = Math.min(s, c[1]);
      n = Math.max(n, c[1]);
    } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return [w, s, e, n];
}

// Zoom into clusters until single points are drawn; returns the view with points.
async function findSinglePoints(frame) {
  let r = await rendered(frame);
  for (let step = 0; step < 8 && r.points.length === 0; step++) {
    const zoom = await frame.evaluate(() => window.tesseraMap.getZoom());
    const target = r.clusters.sort((a, b) => a.count - b.count)[0];
    if (!target) break;
    const z = Number.isFinite(target.expansion) && target.expansion > zoom ? target.expansion : zoom + 2;
    await jump(frame, { center: [target.x, target.y], zoom: Math.min(z, 19) });
    r = await rendered(frame);
  }
  return r;
}

// ------------------------------------------------------------------ tests

test('catalog page lists the datasets and links to their maps', async () => {
  const { page, requests, errors } = await openPage();
  try {
    const res = await page.goto(`${BASE_URL}/`, { waitUntil: 'networkidle' });
    assert.equal(res.status(), 200);
    const links = await page.$$eval('a[href]', (as) => as.map((a) => a.href));
    assert.ok(links.some((h) => new URL(h).pathname === `/maps/${DATASET}`), `a link to /maps/${DATASET} (links: ${links.slice(0, 20).join(', ')})`);
    await page.screenshot({ path: path.join(SHOTS, 'catalog.png'), fullPage: true });
    assertOnlyOrigins([...requests, ...(await resourceOrigins(page))], [BASE_ORIGIN], 'catalog');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('map page: features, cluster counts, popup, time slider, legend, neighbourhoods, links', async (t) => {
  const { page, requests, errors } = await openPage();
  try {
    const res = await page.goto(`${BASE_URL}/maps/${DATASET}`, { waitUntil: 'domcontentloaded' });
    assert.equal(res.status(), 200);
    await waitForMap(page);
    const config = await page.evaluate(() => window.tessera.config);
    assert.equal(config.id, DATASET);
    const [w, s, e, n] = config.bounds;
    const centre = [(w + e) / 2, (s + n) / 2];

    await t.test('renders features at zoom 10 and 14, clusters with counts at low zoom', async () => {
      await jump(page, { center: centre, zoom: 10 });
      const r10 = await rendered(page);
      assert.ok(r10.features > 0, 'features at zoom 10');
      assert.ok(r10.clusters.length > 0, 'clusters at zoom 10');
      assert.ok(r10.labels.length > 0, 'cluster count labels drawn at zoom 10');
      assert.ok(r10.labels.every((l) => /^\d+(\.\d+)?[kM]?$/.test(l)), `labels look like counts: ${r10.labels.slice(0, 5)}`);
      await page.screenshot({ path: path.join(SHOTS, 'map.png') });

      // zoom 14 over the densest cluster seen at zoom 10
      const dense = r10.clusters.sort((a, b) => b.count - a.count)[0];
      await jump(page, { center: [dense.x, dense.y], zoom: 14 });
      const r14 = await rendered(page);
      assert.ok(r14.features > 0, 'features at zoom 14');
      await jump(page, { center: centre, zoom: 10 });
    });

    await t.test('clicking a cluster zooms in; clicking a point opens a popup with its properties', async () => {
      await jump(page, { center: centre, zoom: 10 });
      const r = await rendered(page);
      const c = r.clusters.sort((a, b) => b.count - a.count)[0];
      const zoomBefore = await page.evaluate(() => window.tesseraMap.getZoom());
      const box = await page.locator('#map canvas').boundingBox();
      const pc = await page.evaluate((ll) => window.tesseraMap.project(ll), [c.x, c.y]);
      await page.mouse.click(box.x + pc.x, box.y + pc.y);
      await page.waitForFunction((z) => window.tesseraMap.getZoom() > z + 0.5 && !window.tesseraMap.isMoving(), zoomBefore);
      await waitIdle(page);

      const rp = await findSinglePoints(page);
      assert.ok(rp.points.length > 0, 'single points appear after zooming in');
      const pt = rp.points[0];
      const pp = await page.evaluate((ll) => window.tesseraMap.project(ll), [pt.x, pt.y]);
      await page.mouse.click(box.x + pp.x, box.y + pp.y);
      const popup = page.locator('.feature-popup[data-loaded="true"]');
      await popup.waitFor();
      const fid = await popup.getAttribute('data-fid');
      assert.ok(fid, 'popup names its feature');
      const item = await getJSON(`${BASE_URL}/collections/${DATASET}/items/${encodeURIComponent(fid)}`);
      const rows = await popup.locator('table.props tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent]));
      const shown = new Map(rows);
      const props = Object.entries(item.properties ?? {});
      assert.ok(props.length > 0, 'the item has properties');
      // Technical fields (ids, coordinates, geometry text) are hidden; the rest shown,
      // times in words ("6 Mar 2025, 3:57 PM"), other values as they are.
      const heading = await popup.locator('h2').textContent();
      for (const [k, v] of props) {
        if (v === null || v === '' || isTechnical(k, v)) {
          assert.ok(!shown.has(k), `popup hides ${k}`);
          continue;
        }
        if (shown.size && !shown.has(k) && heading === String(v)) continue;
        assert.ok(shown.has(k), `popup shows property ${k}`);
        if (/^\d{4}-\d{2}-\d{2}T/.test(String(v))) assert.match(shown.get(k), /^\d{1,2} [A-Z][a-z]{2} \d{4}, \d{1,2}:\d{2} (AM|PM)$/, `popup time of ${k}`);
        else if (typeof v === 'string') assert.equal(shown.get(k), v, `popup value of ${k}`);
        if (typeof v === 'number') assert.equal(Number(shown.get(k).replace(/,/g, '')), Number(Number.isInteger(v) ? v : +v.toFixed(6)), `popup value of ${k}`);
      }
      await page.keyboard.press('Escape');
      await page.evaluate(() => document.querySelector('.maplibregl-popup-close-button')?.click());

      // Hostile property names and values (as a publisher's file could hold) stay text.
      const hostile = {
        '<img src=x onerror="window.__xss=1">': '<img src=x onerror="window.__xss=2">',
        'note': '</td><script>window.__xss=3</script>',
        'rtl \u202e emoji 🗺️': '"><b onmouseover="window.__xss=4">x</b>',
      };
      const itemRoute = `**/collections/${DATASET}/items/*`;
      await page.route(itemRoute, (route) => route.fulfill({
        contentType: 'application/geo+json',
        body: JSON.stringify({ type: 'Feature', id: fid, geometry: null, properties: hostile }),
      }));
      try {
        await page.mouse.click(box.x + pp.x, box.y + pp.y);
        const evil = page.locator('.feature-popup[data-loaded="true"]');
        await evil.waitFor();
        const evilRows = await evil.locator('table.props tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent]));
        assert.deepEqual(new Map(evilRows), new Map(Object.entries(hostile)), 'hostile names and values shown verbatim, as text');
        assert.equal(await evil.locator('img, script, b').count(), 0, 'no element made from data');
        assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected script ran');
      } finally {
        await page.unroute(itemRoute);
        await page.keyboard.press('Escape');
        await page.evaluate(() => document.querySelector('.maplibregl-popup-close-button')?.click());
      }
    });

    await t.test('the time slider changes what is drawn and the URL', async () => {
      await jump(page, { center: centre, zoom: 10 });
      // histogram bars drawn from the server's histogram
      await page.waitForFunction(() => window.tessera.buckets.length > 0 && window.tessera.buckets.every((b) => b.count !== null));
      const bars = await page.locator('#histogram rect').count();
      assert.ok(bars > 0, 'histogram bars');
      const before = await rendered(page);
      const version = await page.evaluate(() => window.tessera.tilesVersion);
      const end = page.locator('#time-end');
      await end.focus();
      const max = Number(await end.getAttribute('max'));
      const steps = Math.max(1, Math.floor(max / 2));
      for (let i = 0; i < steps; i++) await page.keyboard.press('ArrowLeft');
      await afterFilterChange(page, version);
      const afterSlide = await rendered(page);
      assert.ok(afterSlide.total < before.total, `fewer features after narrowing time (${before.total} -> ${afterSlide.total})`);
      assert.match(decodeURIComponent(page.url()), /[#&]datetime=[^&]+\/[^&]+/);
      assert.match(await page.evaluate(() => window.tessera.tileTemplate()), /[?&]datetime=/);
      // back to the whole period
      const v2 = await page.evaluate(() => window.tessera.tilesVersion);
      await page.locator('#time-reset').click();
      await afterFilterChange(page, v2);
      const reset = await rendered(page);
      assert.equal(reset.total, before.total, 'whole period again');
    });

    await t.test('a legend entry toggles its category', async () => {
      await jump(page, { center: centre, zoom: 10 });
      const before = await rendered(page);
      const first = page.locator('#legend-list .legend-item').first();
      const value = await first.getAttribute('data-value');
      const version = await page.evaluate(() => window.tessera.tilesVersion);
      await first.focus();
      await page.keyboard.press('Enter');
      await afterFilterChange(page, version);
      assert.equal(await first.getAttribute('aria-pressed'), 'false');
      const hidden = await rendered(page);
      assert.ok(hidden.total < before.total, `fewer features with ${value} hidden (${before.total} -> ${hidden.total})`);
      assert.match(page.url(), /[#&]cat=/);
      const tiles = await page.evaluate(() => window.tessera.tileTemplate());
      assert.ok(tiles.includes(`${encodeURIComponent(config.category.field)}=`), `tile URL filters ${config.category.field}: ${tiles}`);
      // the URL reproduces the map: reload and compare
      const url = page.url();
      await page.goto('about:blank');
      await page.goto(url, { waitUntil: 'domcontentloaded' });
      await waitForMap(page);
      assert.equal(await page.locator(`#legend-list .legend-item[data-value="${value.replace(/"/g, '\\"')}"]`).getAttribute('aria-pressed'), 'false');
      const reloaded = await rendered(page);
      assert.equal(reloaded.total, hidden.total, 'same features after reloading the URL');
      const v2 = await page.evaluate(() => window.tessera.tilesVersion);
      await page.locator(`#legend-list .legend-item[data-value="${value.replace(/"/g, '\\"')}"]`).click();
      await afterFilterChange(page, v2);
    });

    await t.test('the neighbourhood picker fits to and filters by a polygon', async () => {
      await page.waitForFunction((ds) => [...document.querySelectorAll('#area-select option')].some((o) => o.value.startsWith(`${ds}/`)), POLYGONS);
      const options = await page.locator('#area-select option').evaluateAll((os, ds) => os.map((o) => o.value).filter((v) => v.startsWith(`${ds}/`)), POLYGONS);
      const key = options[Math.floor(options.length / 2)];
      const id = key.slice(POLYGONS.length + 1);
      const feature = await getJSON(`${BASE_URL}/collections/${POLYGONS}/items/${encodeURIComponent(id)}`);
      const [bw, bs, be, bn] = feature.bbox ?? bboxOf(feature.geometry);
      const version = await page.evaluate(() => window.tessera.tilesVersion);
      await page.selectOption('#area-select', key);
      await afterFilterChange(page, version);
      await page.waitForFunction(() => !window.tesseraMap.isMoving());
      await waitIdle(page);
      const view = await page.evaluate(() => window.tesseraMap.getBounds().toArray());
      const [[vw, vs], [ve, vn]] = view;
      const slack = 0.02;
      assert.ok(vw <= bw + slack && ve >= be - slack && vs <= bs + slack && vn >= bn - slack, 'the view holds the polygon');
      assert.ok(ve - vw < (be - bw) * 4 + 0.05, 'the view is fitted, not the whole city');
      assert.match(await page.evaluate(() => window.tessera.tileTemplate()), new RegExp(`[?&]within=${POLYGONS}/`));
      const inside = await rendered(page);
      const margin = 0.002;
      const all = [...inside.clusters, ...inside.points];
      for (const f of all) {
        assert.ok(f.x >= bw - margin && f.x <= be + margin && f.y >= bs - margin && f.y <= bn + margin, `feature at ${f.x},${f.y} lies in the polygon's bbox`);
      }
      // without the filter, the same view shows at least as much
      const v2 = await page.evaluate(() => window.tessera.tilesVersion);
      await page.selectOption('#area-select', '');
      await afterFilterChange(page, v2);
      const everywhere = await rendered(page);
      assert.ok(everywhere.total >= inside.total, `filter removes features (${everywhere.total} vs ${inside.total})`);
    });

    await t.test('download and share links carry the view and filters', async () => {
      const csv = await page.locator('#download-csv').getAttribute('href');
      const geojson = await page.locator('#download-geojson').getAttribute('href');
      assert.match(csv, /[?&]f=csv(&|$)/);
      assert.match(csv, /[?&]bbox=-?\d/);
      assert.match(geojson, /[?&]f=json(&|$)/);
      assert.match(geojson, /[?&]limit=10000/);
      const res = await fetch(new URL(csv, BASE_URL));
      assert.equal(res.status, 200, `GET ${csv}`);
      const res2 = await fetch(new URL(geojson, BASE_URL));
      assert.equal(res2.status, 200, `GET ${geojson}`);
      const share = await page.locator('#share-url').inputValue();
      assert.ok(share.startsWith(`${BASE_URL}/maps/${DATASET}#map=`), share);
      const code = await page.locator('#embed-code').inputValue();
      assert.match(code, /^<iframe src="[^"]+embed=1[^"]*" width="100%" height="480" style="border:0" title="[^"]+"/);
    });

    await t.test('no request left the server and no console error', async () => {
      assertOnlyOrigins([...requests, ...(await resourceOrigins(page))], [BASE_ORIGIN], 'map page');
      assert.deepEqual(errors, []);
    });
  } finally {
    await page.close();
  }
});

test('a cluster shows its category mix: a ring in the legend colour of its commonest category, and the mix in words on hover', async () => {
  const { page, requests, errors } = await openPage();
  try {
    const res = await page.goto(`${BASE_URL}/maps/${DATASET}`, { waitUntil: 'domcontentloaded' });
    assert.equal(res.status(), 200);
    await waitForMap(page);
    const config = await page.evaluate(() => window.tessera.config);
    const [w, s, e, n] = config.bounds;
    await jump(page, { center: [(w + e) / 2, (s + n) / 2], zoom: 10 });
    // The biggest cluster drawn, with every property the tile gave it.
    const c = await page.evaluate(() => {
      const m = window.tesseraMap;
      const fs = m.queryRenderedFeatures({ layers: ['clusters'] });
      const f = fs.sort((a, b) => b.properties.point_count - a.properties.point_count)[0];
      return f && { at: f.geometry.coordinates, props: f.properties };
    });
    assert.ok(c, 'a cluster is drawn at zoom 10');
    const mix = Object.entries(c.props).filter(([k]) => k.startsWith('count:')).map(([k, v]) => [k.slice(6), Number(v)]);
    assert.ok(mix.length > 1, `the cluster has a mix: ${JSON.stringify(c.props)}`);
    assert.equal(mix.reduce((a, [, v]) => a + v, 0), Number(c.props.point_count), 'the mix adds up to the count');
    const top = mix.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0];
    assert.equal(c.props.cat_top, top);

    // The ring: the clusters layer strokes with the legend's colour of `cat_top`.
    const ring = await page.evaluate((v) => {
      const m = window.tesseraMap;
      const f = m.queryRenderedFeatures({ layers: ['clusters'] }).find((x) => x.properties.cat_top === v);
      const c = f.layer.paint['circle-stroke-color'];
      return [c.r, c.g, c.b].map((x) => Math.round(x * 255));
    }, top);
    const legend = config.category.values.find((v) => v.value === top);
    const hex = legend ? legend.color : '#888888';
    const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    assert.deepEqual(ring, want, `ring of ${top} in its legend colour ${hex}`);

    // Hover: the mix in words, each legend category with its count, the rest as "other".
    const box = await page.locator('#map canvas').boundingBox();
    const pc = await page.evaluate((ll) => window.tesseraMap.project(ll), c.at);
    await page.mouse.move(box.x + pc.x, box.y + pc.y);
    const summary = page.locator('.cluster-hover .cluster-summary');
    await summary.waitFor();
    const text = await summary.textContent();
    const fmt = (x) => x.toLocaleString('en');
    assert.ok(text.startsWith(`${fmt(Number(c.props.point_count))} ${config.display.noun}: `), text);
    const shown = new Set(config.category.values.map((v) => v.value));
    let other = Number(c.props.point_count);
    for (const [cat, k] of mix) {
      if (!shown.has(cat)) continue;
      assert.ok(text.includes(`${fmt(k)} ${cat}`), `"${text}" lists ${k} ${cat}`);
      other -= k;
    }
    if (other > 0) assert.ok(text.endsWith(`${fmt(other)} other`), text);
    const words = text.split(': ')[1].split(', ').map((p) => Number(p.split(' ')[0].replace(/,/g, '')));
    assert.equal(words.reduce((a, b) => a + b, 0), Number(c.props.point_count), `the words add up: ${text}`);
    assert.equal(await page.locator('.cluster-hover .stack-mix li').count(), words.length);
    await page.screenshot({ path: path.join(SHOTS, 'cluster-mix.png') });

    // Moving away hides it.
    await page.mouse.move(box.x + 2, box.y + box.height - 2);
    await page.locator('.cluster-hover').waitFor({ state: 'detached' });
    assertOnlyOrigins([...requests, ...(await resourceOrigins(page))], [BASE_ORIGIN], 'map page');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('embed works inside an iframe on another origin', async () => {
  const host = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', connection: 'close' });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Embed host</title></head>
<body style="margin:0;font:16px sans-serif"><h1 style="margin:8px">Someone else's page</h1>
<iframe src="${BASE_URL}/maps/${DATASET}?embed=1" width="100%" height="480" style="border:0" title="Map: ${DATASET}"></iframe>
</body></html>`);
  });
  await new Promise((r) => host.listen(0, '127.0.0.1', r));
  const hostOrigin = `http://127.0.0.1:${host.address().port}`;
  assert.notEqual(hostOrigin, BASE_ORIGIN);
  const { page, requests, errors } = await openPage();
  try {
    await page.setViewportSize({ width: 900, height: 560 });
    await page.goto(`${hostOrigin}/`, { waitUntil: 'domcontentloaded' });
    const iframe = await page.waitForSelector('iframe');
    const frame = await iframe.contentFrame();
    await waitForMap(frame);
    assert.equal(await frame.evaluate(() => window.tessera.embed), true);
    const r = await rendered(frame);
    assert.ok(r.features > 0, 'features inside the embed');
    assert.equal(await frame.locator('#site-header').isVisible(), false, 'no header in embed mode');
    assert.equal(await frame.locator('#panel').isVisible(), false, 'no panel in embed mode');
    assert.equal(await frame.locator('#legend').isVisible(), true, 'legend stays');
    assert.equal(await frame.locator('.maplibregl-ctrl-attrib').isVisible(), true, 'attribution stays');
    await page.screenshot({ path: path.join(SHOTS, 'embed.png') });
    assertOnlyOrigins([...requests, ...(await resourceOrigins(frame))], [BASE_ORIGIN, hostOrigin], 'embed');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    host.closeAllConnections();
    await new Promise((r) => host.close(r));
  }
});

test('map page "by area" mode: a choropleth of counts per borough with a classed legend', async () => {
  const { page, requests, errors } = await openPage();
  try {
    await page.goto(`${BASE_URL}/maps/${DATASET}`, { waitUntil: 'domcontentloaded' });
    await waitForMap(page);
    await page.selectOption('#choropleth-by', 'nyc-boroughs');
    await page.check('#choropleth-on');
    await page.waitForSelector('.choropleth-classes li', { timeout: TIMEOUT });
    await page.waitForFunction(() => window.tesseraMap.getLayer('tessera-choropleth-fill'), null, { timeout: TIMEOUT });
    await waitIdle(page);
    const drawn = await page.evaluate(() => window.tesseraMap
      .queryRenderedFeatures({ layers: ['tessera-choropleth-fill'] })
      .map((f) => [f.properties.name, f.properties.count]));
    const expected = await getJSON(`${BASE_URL}/collections/${DATASET}/aggregate?by=nyc-boroughs`);
    const byName = new Map(expected.areas.map((a) => [a.name, a.count]));
    assert.ok(drawn.length > 0, 'choropleth areas drawn');
    for (const [name, count] of drawn) assert.equal(count, byName.get(name), name);
    const classes = await page.$$eval('.choropleth-classes li', (li) => li.map((l) => l.textContent));
    assert.ok(classes.length >= 2 && classes.every((c) => /up to/.test(c)), classes.join(' | '));
    const top = await page.$$eval('.choropleth-top li[tabindex="0"]', (li) => li.length);
    assert.equal(top, 5, 'every borough listed, keyboard-reachable');
    assertOnlyOrigins([...requests, ...(await resourceOrigins(page))], [BASE_ORIGIN], 'choropleth');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

// ------------------------------------------------------------------ basemap

// Where the basemap has streets (data/basemap/README.md, coverage): a street-zoom view in
// each city with full street data. Chicago's streets cover only the 30 z13 tiles of the
// shared OpenStreetMap extract (about -87.80..-87.58, 41.77..41.97).
const STREETS = [
  { city: 'New York', at: [-73.985, 40.758] },
  { city: 'San Francisco', at: [-122.418, 37.778] },
  { city: 'Minneapolis', at: [-93.265, 44.975] },
  // West Loop: inside the 30 z13 tiles of OpenStreetMap streets the basemap has for Chicago.
  { city: 'Chicago', at: [-87.65, 41.882], named: true },
];

function contains(b, [x, y]) {
  return b && x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3];
}

// Basemap features drawn in the view, by kind of layer.
async function basemapDrawn(frame) {
  return frame.evaluate(() => {
    const m = window.tesseraMap;
    const ids = m.getStyle().layers.filter((l) => l.source === 'basemap').map((l) => l.id);
    const out = { ground: 0, roads: 0, labels: 0, roadNames: 0, names: [] };
    for (const f of m.queryRenderedFeatures({ layers: ids })) {
      const sl = f.sourceLayer;
      if (sl === 'earth' || sl === 'water') out.ground++;
      if (sl === 'roads' && f.layer.type === 'line') out.roads++;
      if (f.layer.type === 'symbol') {
        out.labels++;
        if (sl === 'roads' && f.properties.name) out.roadNames++;
        if (out.names.length < 5) out.names.push(f.properties.name);
      }
    }
    return out;
  });
}

// Runs `f` with the symbol layers of the data (not the basemap's) hidden, then shows them.
async function withDataSymbolsHidden(frame, f) {
  const hidden = await frame.evaluate(() => {
    const m = window.tesseraMap;
    const ids = m.getStyle().layers
      .filter((l) => l.type === 'symbol' && l.source !== 'basemap' && m.getLayoutProperty(l.id, 'visibility') !== 'none')
      .map((l) => l.id);
    const idle = new Promise((resolve) => m.once('idle', resolve));
    for (const id of ids) m.setLayoutProperty(id, 'visibility', 'none');
    m.triggerRepaint();
    // Labels are placed on the frames after the change: wait for the map to be idle again.
    return idle.then(() => ids);
  });
  await waitIdle(frame);
  try {
    return await f();
  } finally {
    await frame.evaluate((ids) => {
      for (const id of ids) window.tesseraMap.setLayoutProperty(id, 'visibility', 'visible');
    }, hidden);
    await waitIdle(frame);
  }
}

test('basemap draws under every demo map at z4, z10, z14 and z16, all from this server', async (t) => {
  const collections = await getJSON(`${BASE_URL}/collections`);
  const ids = collections.collections.map((c) => c.id);
  assert.ok(ids.length >= 4, 'the demo catalog has its datasets');
  for (const id of ids) {
    await t.test(id, async () => {
      const { page, requests, errors } = await openPage();
      try {
        await page.goto(`${BASE_URL}/maps/${id}?embed=1`, { waitUntil: 'load' });
        await waitForMap(page);
        const bounds = await page.evaluate(() => window.tessera.config.bounds);
        assert.ok(bounds, `${id} has bounds`);
        const centre = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2];
        const streets = STREETS.find((s) => contains(bounds, s.at));
        for (const zoom of [4, 10, 14, 16]) {
          const at = zoom >= 14 && streets ? streets.at : centre;
          await jump(page, { center: at, zoom });
          const drawn = await basemapDrawn(page);
          const where = `${id} z${zoom} at ${at.map((v) => v.toFixed(3))}`;
          assert.ok(drawn.ground > 0, `${where}: land or water drawn`);
          if (zoom >= 14 && streets) assert.ok(drawn.roads > 0, `${where}: streets of ${streets.city} drawn`);
          // The data's own symbols (stack counts) sit above the basemap and win label
          // placement over dense data (Chicago's food inspections): at street zoom the
          // basemap's labels are checked with the data's symbols hidden.
          const labelled = zoom >= 14 && streets ? await withDataSymbolsHidden(page, () => basemapDrawn(page)) : drawn;
          if (zoom === 14 && streets?.named) assert.ok(labelled.roadNames > 0, `${where}: road names of ${streets.city} written`);
          if (zoom === 10 || (zoom >= 14 && streets)) assert.ok(labelled.labels > 0, `${where}: labels drawn`);
        }
        assertOnlyOrigins([...requests, ...(await resourceOrigins(page))], [BASE_ORIGIN], id);
        assert.deepEqual(errors, [], `${id}: no errors`);
      } finally {
        await page.close();
      }
    });
  }
});

test('at the opening view of the Chicago community areas each area name is written once', async () => {
  const { page, errors } = await openPage();
  try {
    await page.goto(`${BASE_URL}/maps/chicago-community-areas`, { waitUntil: 'load' });
    await waitForMap(page);
    const drawn = await page.evaluate(() => {
      const m = window.tesseraMap;
      const layer = m.getStyle().layers.find((l) => l.id === 'label');
      const names = m.queryRenderedFeatures({ layers: ['label'] }).map((f) => f.properties.community);
      return { zoom: m.getZoom(), sourceLayer: layer['source-layer'], names };
    });
    assert.equal(drawn.sourceLayer, 'chicago-community-areas_labels', 'labels come from the label points');
    const counts = new Map();
    for (const n of drawn.names) counts.set(n, (counts.get(n) ?? 0) + 1);
    const repeated = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(repeated, [], `names written more than once at z${drawn.zoom.toFixed(2)}`);
    // The map opens on the whole city: most of the 77 names fit without colliding.
    assert.ok(counts.size >= 30, `only ${counts.size} names written at z${drawn.zoom.toFixed(2)}`);
    assert.ok([...counts.keys()].every((n) => typeof n === 'string' && n.length > 0), 'every label has a name');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

// ------------------------------------------------------------------ dashboard and calendar

// The number on a dashboard card (`data-kpi`), as an integer.
async function kpi(frame, name) {
  const text = await frame.locator(`[data-kpi="${name}"]`).first().textContent();
  return Number(text.replace(/,/g, ''));
}

test('dashboard cards follow the filters of the map', async () => {
  const { page, requests, errors } = await openPage();
  try {
    await page.goto(`${BASE_URL}/maps/${DATASET}`);
    await waitForMap(page);
    const before = await page.evaluate(() => window.tessera.tilesVersion);
    await page.evaluate(() => window.tessera.setDatetime(['2025-02-01T00:00:00Z', '2025-02-14T23:59:59Z']));
    await afterFilterChange(page, before);
    const href = await page.locator('#dashboard-link').getAttribute('href');
    assert.match(href, /[?&]datetime=2025-02-01T00%3A00%3A00Z%2F2025-02-14T23%3A59%3A59Z|datetime=2025-02-01T00%3A00%3A00Z\/2025-02-14T23%3A59%3A59Z/, href);
    assert.match(href, /[?&]bbox=-?\d/, href);
    const query = href.split('?')[1];
    // The same filters as items: the card's total is the items' numberMatched.
    const fc = await getJSON(`${BASE_URL}/collections/${DATASET}/items?limit=1&${query}`);
    await page.goto(new URL(href, BASE_URL).href);
    assert.equal(await kpi(page, 'total'), fc.numberMatched);
    const all = await getJSON(`${BASE_URL}/collections/${DATASET}/items?limit=1`);
    await page.goto(`${BASE_URL}/dashboards/${DATASET}`);
    assert.equal(await kpi(page, 'total'), all.numberMatched);
    assert.ok(all.numberMatched > fc.numberMatched, 'the filter narrows the card');
    // Keyboard: the embed line opens and its copy button is reachable by Tab.
    await page.locator('#card-total summary').focus();
    await page.keyboard.press('Enter');
    assert.equal(await page.locator('#embed-total').isVisible(), true);
    assertOnlyOrigins([...requests, ...(await resourceOrigins(page))], [BASE_ORIGIN], 'dashboard');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('calendar and map stay in step', async () => {
  const { page, errors } = await openPage();
  const located = 'mpls-stops';
  try {
    await page.goto(`${BASE_URL}/maps/${located}`);
    await waitForMap(page);
    await page.waitForFunction(() => window.tesseraCalendar && document.querySelector('.calendar-day[data-count]:not([data-count="0"])'));
    // Pick a day: the map's tiles carry that day as their datetime.
    const day = await page.locator('.calendar-day:not([data-count="0"])').first();
    const key = await day.getAttribute('data-day');
    const before = await page.evaluate(() => window.tessera.tilesVersion);
    await day.focus();
    await page.keyboard.press('Enter');
    await afterFilterChange(page, before);
    const template = await page.evaluate(() => window.tessera.tileTemplate());
    const dt = decodeURIComponent(new URL(template.replace(/\{[xyz]\}/g, '0')).searchParams.get('datetime'));
    const [start, end] = dt.split('/').map((s) => new Date(s).getTime());
    assert.equal(end - start, 86400000 - 1000, `one day: ${dt}`);
    const zone = await page.evaluate(() => window.tessera.config.timezone);
    const localDay = new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(new Date(start + 3600000));
    assert.equal(localDay, key, `${dt} starts on ${key}`);
    // Clear the day again, then zoom into a corner: the calendar counts what is in view.
    await page.locator(`.calendar-day[data-day="${key}"]`).click();
    await page.locator('[data-view="list"]').click();
    await page.waitForFunction(() => document.querySelectorAll('.calendar-list li').length > 0);
    const wide = await page.evaluate(() => window.tesseraCalendar.matched);
    const firstWide = await page.locator('.calendar-list li').first().getAttribute('data-id');
    const b = await page.evaluate(() => window.tesseraMap.getBounds().toArray());
    await jump(page, { center: [(b[0][0] * 3 + b[1][0]) / 4, (b[0][1] * 3 + b[1][1]) / 4], zoom: (await page.evaluate(() => window.tesseraMap.getZoom())) + 3 });
    await page.waitForFunction((n) => window.tesseraCalendar.matched < n, wide, { timeout: TIMEOUT });
    const narrow = await page.evaluate(() => window.tesseraCalendar.matched);
    assert.ok(narrow < wide, `the calendar follows the view (${narrow} < ${wide})`);
    const firstNarrow = await page.locator('.calendar-list li').first().getAttribute('data-id').catch(() => null);
    assert.ok(firstNarrow !== firstWide || narrow === 0, 'the list changed');
    assert.match(await page.locator('#calendar-note').textContent(), /in view/);
    const ics = await page.locator('#calendar-ics').getAttribute('href');
    assert.match(ics, /[?&]f=ics/);
    assert.match(ics, /[?&]bbox=/);
    const res = await fetch(new URL(ics, BASE_URL));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/calendar/);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('a dashboard card renders inside an iframe on another origin', async () => {
  const card = `${BASE_URL}/dashboards/${DATASET}/cards/series?datetime=2025-01-01/2025-02-28`;
  const host = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', connection: 'close' });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Card host</title></head>
<body><h1>A portal page</h1><iframe src="${card}" title="Card" width="640" height="360" style="border:0"></iframe></body></html>`);
  });
  await new Promise((r) => host.listen(0, '127.0.0.1', r));
  const hostOrigin = `http://127.0.0.1:${host.address().port}`;
  const { page, requests, errors } = await openPage();
  try {
    await page.goto(`${hostOrigin}/`);
    const frame = await (await page.waitForSelector('iframe')).contentFrame();
    await frame.waitForSelector('#card-series svg rect.bar', { state: 'attached' });
    const bars = await frame.locator('#card-series svg rect.bar').count();
    assert.ok(bars >= 50, `${bars} bars (one per day)`);
    const box = await frame.locator('#card-series svg').boundingBox();
    assert.ok(box && box.width > 300 && box.height > 100, JSON.stringify(box));
    assertOnlyOrigins([...requests, ...(await resourceOrigins(frame))], [BASE_ORIGIN, hostOrigin], 'card embed');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    host.closeAllConnections();
    await new Promise((r) => host.close(r));
  }
});

// What the map draws, seen through the category: every single point's value, and the
// categories with points in each cluster (its `count:<value>` properties).
async function drawnCategories(frame, field) {
  return frame.evaluate((f) => {
    const m = window.tesseraMap;
    const layers = m.getStyle().layers.filter((l) => l.source === 'data' && l.type !== 'symbol' && l.type !== 'background').map((l) => l.id);
    const seen = new Set();
    for (const feat of m.queryRenderedFeatures({ layers })) {
      const p = feat.properties;
      if (p.cluster === true) {
        for (const [k, v] of Object.entries(p)) if (k.startsWith('count:') && Number(v) > 0) seen.add(k.slice(6));
      } else if (p[f] !== undefined) seen.add(String(p[f]));
    }
    return [...seen];
  }, field);
}

test('a map URL with datetime, category and bbox opens that view; a dashboard links to the same', async () => {
  const { page, requests, errors } = await openPage();
  try {
    await page.goto(`${BASE_URL}/maps/${DATASET}`);
    await waitForMap(page);
    const config = await page.evaluate(() => window.tessera.config);
    const field = config.category.field;
    const value = config.category.values[0].value;
    const [w, s, e, n] = config.bounds;
    const bbox = [w + (e - w) / 4, s + (n - s) / 4, e - (e - w) / 4, n - (n - s) / 4].map((v) => +v.toFixed(5));
    const datetime = '2025-02-01T00:00:00Z/2025-02-14T23:59:59Z';
    const query = new URLSearchParams({ datetime, [field]: value, bbox: bbox.join(',') });
    await page.goto(`${BASE_URL}/maps/${DATASET}?${query}`);
    await waitForMap(page);

    // The filters are the map's: in its tile URLs, its slider and its legend.
    const tiles = decodeURIComponent(await page.evaluate(() => window.tessera.tileTemplate()));
    assert.ok(tiles.includes(`datetime=${datetime}`), tiles);
    assert.ok(tiles.includes(`${field}=${value}`), tiles);
    await page.waitForFunction(() => window.tessera.buckets.length > 0);
    const [lo, hi, max] = await page.evaluate(() => ['time-start', 'time-end'].map((id) => Number(document.getElementById(id).value)).concat(Number(document.getElementById('time-end').max)));
    assert.ok(lo > 0 || hi < max, `the slider shows a part of the period (${lo}..${hi} of ${max})`);
    assert.match(await page.locator('#time-label').textContent(), /Feb 2025/);
    const pressed = await page.locator('#legend-list .legend-item').evaluateAll((bs) => bs.map((b) => [b.dataset.value, b.getAttribute('aria-pressed')]));
    for (const [v, p] of pressed) assert.equal(p, String(v === value), `legend entry ${v}`);
    // The view is the bbox, fitted.
    const view = await page.evaluate(() => window.tesseraMap.getBounds().toArray().flat());
    assert.ok(view[0] <= bbox[0] + 1e-6 && view[1] <= bbox[1] + 1e-6 && view[2] >= bbox[2] - 1e-6 && view[3] >= bbox[3] - 1e-6, `view ${view} holds ${bbox}`);
    assert.ok((view[2] - view[0]) < 2.5 * (bbox[2] - bbox[0]) || (view[3] - view[1]) < 2.5 * (bbox[3] - bbox[1]), `view ${view} is about ${bbox}`);
    // Only the chosen category is drawn, and something is.
    const drawn = await drawnCategories(page, field);
    assert.deepEqual(drawn, [value], `drawn categories ${drawn}`);
    // From here the hash holds the view; the query's filters are gone from the address.
    const url = new URL(page.url());
    assert.equal(url.search, '');
    assert.match(decodeURIComponent(url.hash), /datetime=2025-02-01T00:00:00Z\/2025-02-14T23:59:59Z/);
    const filters = await page.evaluate(() => window.tessera.filterQuery());

    // The dashboard of the same filters links to a map with the same filters.
    await page.goto(`${BASE_URL}/dashboards/${DATASET}?${query}&bucket=day`);
    await page.locator('#map-link').click();
    await page.waitForURL(/\/maps\//);
    await waitForMap(page);
    assert.equal(await page.evaluate(() => window.tessera.filterQuery()), filters);
    assert.deepEqual(await drawnCategories(page, field), [value]);
    assertOnlyOrigins([...requests, ...(await resourceOrigins(page))], [BASE_ORIGIN], 'map from a URL');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

// ------------------------------------------------------------------ accessibility (axe-core)

// axe-core comes from node_modules and is evaluated into the page by the test (through
// the DevTools protocol, so the pages' Content-Security-Policy stays as served): Tessera
// never serves it.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// Violations of impact "serious" or "critical" on the page as it is now, in words.
async function axeViolations(page) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1).join(' ').trim()}`).join('\n    ')}`);
}

test('no serious or critical accessibility violations (axe-core) on the pages a citizen sees', async (t) => {
  const pages = [
    ['catalog', '/', null],
    ['map page', `/maps/${DATASET}`, 'map'],
    ['embed', `/maps/${DATASET}?embed=1`, 'map'],
    ['calendar view', '/maps/mpls-stops', 'calendar'],
    ['dashboard', `/dashboards/${DATASET}`, null],
    ['dashboard card', `/dashboards/${DATASET}/cards/series?datetime=2025-01-01/2025-02-28`, null],
    ['HTML collection', `/collections/${DATASET}?f=html`, null],
    ['HTML items', `/collections/${DATASET}/items?f=html&limit=10`, null],
  ];
  for (const [name, url, wait] of pages) {
    await t.test(name, async () => {
      const { page, errors } = await openPage();
      try {
        const res = await page.goto(`${BASE_URL}${url}`, { waitUntil: 'load' });
        assert.equal(res.status(), 200, url);
        assert.match(res.headers()['content-type'] ?? '', /text\/html/, url);
        if (wait) await waitForMap(page);
        if (wait === 'calendar') await page.waitForFunction(() => window.tesseraCalendar && document.querySelector('.calendar-day[data-count]'));
        const found = await axeViolations(page);
        assert.deepEqual(found, [], `${name} (${url}):\n  ${found.join('\n  ')}`);
        assert.deepEqual(errors, []);
      } finally {
        await page.close();
      }
    });
  }
});
