#!/usr/bin/env node
// Validates Tessera's MapLibre styles.
//
//   node tests/browser/validate-styles.mjs
//       validates every template in styles/*.json after filling its tokens with
//       dummy values (the same substitution the server makes), and checks that
//       every font the templates use has glyph files in assets/fonts/.
//   node tests/browser/validate-styles.mjs http://127.0.0.1:PORT
//       fetches PORT/styles (a JSON list [{"id":..., "url":...}]), validates
//       each live style, and checks that its TileJSON, the TileJSON's tiles[0]
//       at 0/0/0 (200 or 204) and its glyphs at range 0-255 (200) resolve, all
//       on the server's own origin.
//
// Output: one line per check, then "N passed, N failed" as the last line.
// Exit code 1 if anything failed.

import { readFile, readdir, access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateStyleMin } from '@maplibre/maplibre-gl-style-spec';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const stylesDir = path.join(root, 'styles');
const fontsDir = path.join(root, 'assets', 'fonts');

let passed = 0;
let failed = 0;
function ok(name) { passed++; console.log(`ok   ${name}`); }
function fail(name, why) { failed++; console.log(`FAIL ${name}: ${why}`); }

// The server's substitution rule: any JSON string EQUAL to a token is replaced.
export function fillTokens(value, tokens) {
  if (typeof value === 'string') return Object.hasOwn(tokens, value) ? tokens[value] : value;
  if (Array.isArray(value)) return value.map((v) => fillTokens(v, tokens));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = fillTokens(v, tokens);
    return out;
  }
  return value;
}

const DUMMY = {
  __TILEJSON__: 'http://127.0.0.1:8080/tiles/dummy.json',
  __GLYPHS__: 'http://127.0.0.1:8080/fonts/{fontstack}/{range}.pbf',
  __LAYER__: 'dummy',
  __LABEL_LAYER__: 'dummy_labels',
  __CATEGORY_FIELD__: 'Complaint Type',
  __ATTRIBUTION__: 'Dummy attribution',
  __BASEMAP_TILEJSON__: 'http://127.0.0.1:8080/tiles/basemap',
  __BASEMAP_ATTRIBUTION__: 'Dummy basemap attribution',
  __CATEGORY_COLOR__: ['match', ['get', 'Complaint Type'], 'A', '#1b9e77', 'B', '#d95f02', '#888888'],
  __CLUSTER_RING__: ['match', ['get', 'Complaint Type'], 'A', '#1b9e77', 'B', '#d95f02', '#888888'],
};

// Fonts named by text-font in any layer (literal arrays only; expressions are reported).
function fontsOf(style) {
  const fonts = new Set();
  for (const layer of style.layers ?? []) {
    const tf = layer.layout?.['text-font'];
    if (tf === undefined) continue;
    if (Array.isArray(tf) && tf.every((f) => typeof f === 'string')) {
      if (tf.length !== 1) throw new Error(`layer ${layer.id}: use one font per text-font (stack combining is not served)`);
      fonts.add(tf[0]);
    } else {
      throw new Error(`layer ${layer.id}: text-font must be a literal array of one font name`);
    }
  }
  return fonts;
}

// Every string in the style that looks like a URL.
function urlsOf(value, out = []) {
  if (typeof value === 'string') {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || value.startsWith('//')) out.push(value);
  } else if (Array.isArray(value)) value.forEach((v) => urlsOf(v, out));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => urlsOf(v, out));
  return out;
}

function structuralChecks(name, style) {
  const errors = validateStyleMin(style);
  if (errors.length) fail(`${name}: style spec`, errors.map((e) => e.message).join('; '));
  else ok(`${name}: style spec`);

  const problems = [];
  // A dataset style has the source "data", and the basemap's "basemap" when one is
  // served; the basemap template has only "basemap". Nothing else (no sprite either).
  const isBasemap = name.includes('basemap.json');
  const allowed = isBasemap ? ['basemap'] : ['data', 'basemap'];
  if (!isBasemap && !style.sources?.data) problems.push('no source "data"');
  if (isBasemap && !style.sources?.basemap) problems.push('no source "basemap"');
  const others = Object.keys(style.sources ?? {}).filter((id) => !allowed.includes(id));
  if (others.length) problems.push(`sources other than ${allowed.join(' and ')}: ${others.join(', ')}`);
  if (style.sprite) problems.push('has a sprite');
  for (const layer of style.layers ?? []) {
    if (layer.type !== 'background' && !allowed.includes(layer.source)) problems.push(`layer ${layer.id} not on source ${allowed.join(' or ')}`);
  }
  // The basemap goes under the data: no basemap layer after the first data layer.
  const firstData = (style.layers ?? []).findIndex((l) => l.source === 'data');
  const lastBase = (style.layers ?? []).findLastIndex((l) => l.source === 'basemap');
  if (firstData >= 0 && lastBase > firstData) problems.push('a basemap layer is drawn over the data');
  if (problems.length) fail(`${name}: structure`, problems.join('; '));
  else ok(`${name}: structure`);
}

async function validateTemplates() {
  const files = (await readdir(stylesDir)).filter((f) => f.endsWith('.json')).sort();
  if (!files.length) fail('templates', `no *.json in ${stylesDir}`);
  for (const file of files) {
    const name = `template ${file}`;
    let template;
    try {
      template = JSON.parse(await readFile(path.join(stylesDir, file), 'utf8'));
    } catch (e) {
      fail(name, `not JSON: ${e.message}`);
      continue;
    }
    const style = fillTokens(template, DUMMY);
    const leftover = JSON.stringify(style).match(/__[A-Z_]+__/g);
    if (leftover) fail(`${name}: tokens`, `unknown or embedded tokens ${[...new Set(leftover)].join(', ')}`);
    else ok(`${name}: tokens`);

    structuralChecks(name, style);

    // Templates may hold no URL of their own: only the tokens become URLs.
    const own = urlsOf(template);
    if (own.length) fail(`${name}: no fixed URLs`, own.join(', '));
    else ok(`${name}: no fixed URLs`);

    try {
      const missing = [];
      for (const font of fontsOf(style)) {
        for (const range of ['0-255', '256-511']) {
          try {
            await access(path.join(fontsDir, font, `${range}.pbf`));
          } catch {
            missing.push(`${font}/${range}.pbf`);
          }
        }
      }
      if (missing.length) fail(`${name}: glyph files`, `missing ${missing.join(', ')}`);
      else ok(`${name}: glyph files`);
    } catch (e) {
      fail(`${name}: fonts`, e.message);
    }
  }
}

async function get(url, accept) {
  const res = await fetch(url, { headers: accept ? { accept } : {}, redirect: 'manual' });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, body, type: res.headers.get('content-type') ?? '' };
}

function expandTile(template) {
  return template.replace('{z}', '0').replace('{x}', '0').replace('{y}', '0');
}

async function validateLive(base) {
  const origin = new URL(base).origin;
  const sameOrigin = (u) => new URL(u, base).origin === origin;
  let list;
  try {
    const r = await get(new URL('/styles', base).href, 'application/json');
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    list = JSON.parse(r.body.toString('utf8'));
    if (!Array.isArray(list)) throw new Error('not a JSON array');
    ok(`GET /styles (${list.length} styles)`);
  } catch (e) {
    fail('GET /styles', e.message);
    return;
  }
  if (!list.length) fail('GET /styles', 'empty list');
  for (const entry of list) {
    const name = `style ${entry.id}`;
    let style;
    try {
      if (!entry.id || !entry.url) throw new Error('entry lacks id or url');
      const url = new URL(entry.url, base).href;
      if (!sameOrigin(url)) throw new Error(`url on another origin: ${url}`);
      const r = await get(url, 'application/json');
      if (r.status !== 200) throw new Error(`GET ${url}: HTTP ${r.status}`);
      style = JSON.parse(r.body.toString('utf8'));
      ok(`${name}: fetched`);
    } catch (e) {
      fail(`${name}: fetch`, e.message);
      continue;
    }
    const leftover = JSON.stringify(style).match(/__[A-Z_]+__/g);
    if (leftover) fail(`${name}: tokens filled`, [...new Set(leftover)].join(', '));
    else ok(`${name}: tokens filled`);
    structuralChecks(name, style);

    const foreign = urlsOf(style).filter((u) => !sameOrigin(u.replace(/[{}]/g, '')));
    if (foreign.length) fail(`${name}: same-origin URLs`, foreign.join(', '));
    else ok(`${name}: same-origin URLs`);

    // TileJSON and its first tile
    try {
      const src = style.sources?.data;
      let tiles = src?.tiles;
      if (src?.url) {
        const tj = await get(new URL(src.url, base).href, 'application/json');
        if (tj.status !== 200) throw new Error(`TileJSON ${src.url}: HTTP ${tj.status}`);
        const json = JSON.parse(tj.body.toString('utf8'));
        tiles = json.tiles;
        const foreignTiles = (tiles ?? []).filter((t) => !sameOrigin(t.replace(/[{}]/g, '')));
        if (foreignTiles.length) throw new Error(`TileJSON tiles on another origin: ${foreignTiles.join(', ')}`);
        ok(`${name}: TileJSON ${src.url}`);
      }
      if (!Array.isArray(tiles) || !tiles.length) throw new Error('no tiles[] in the source or its TileJSON');
      const tileUrl = new URL(expandTile(tiles[0]), base).href;
      const t = await get(tileUrl);
      if (t.status !== 200 && t.status !== 204) throw new Error(`tile ${tileUrl}: HTTP ${t.status}`);
      ok(`${name}: tile 0/0/0 (${t.status}, ${t.body.length} bytes)`);
    } catch (e) {
      fail(`${name}: tiles`, e.message);
    }

    // Glyphs for each font used
    try {
      if (!style.glyphs) throw new Error('no glyphs url');
      const fonts = fontsOf(style);
      for (const font of fonts) {
        const url = new URL(
          style.glyphs.replace('{fontstack}', encodeURIComponent(font)).replace('{range}', '0-255'),
          base,
        ).href;
        const g = await get(url);
        if (g.status !== 200) throw new Error(`${url}: HTTP ${g.status}`);
        if (g.body.length < 100) throw new Error(`${url}: only ${g.body.length} bytes`);
      }
      ok(`${name}: glyphs 0-255 for ${[...fonts].join(', ') || '(no text layers)'}`);
    } catch (e) {
      fail(`${name}: glyphs`, e.message);
    }
  }
}

const base = process.argv[2];
try {
  if (base) await validateLive(base);
  else await validateTemplates();
} catch (e) {
  fail('validate-styles', e.stack || e.message);
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
