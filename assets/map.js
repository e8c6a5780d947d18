// Tessera map page. Plain ES module, no build step.
//
// Reads its configuration from <script type="application/json" id="tessera-config">
// (filled by the server), draws the dataset with MapLibre GL JS (vendored), and
// keeps every piece of state in the URL hash:
//   #map=Z/LAT/LON&datetime=START/END&cat=A,B&within=DATASET/FEATURE
// Filters reach the server as query parameters on the tile, histogram and items
// URLs: datetime=START/END, FIELD=A,B (any of, category field only) and
// within=DATASET/FEATURE.

import * as maplibregl from './vendor/maplibre-gl/maplibre-gl.mjs';
import { clusterMix, clusterSummary, featureTitle, formatTime, shownFields, stackMix } from './popup.js';

const $ = (id) => document.getElementById(id);
const config = JSON.parse($('tessera-config').textContent);
const embed = Boolean(config.embed) || new URLSearchParams(location.search).get('embed') === '1';
const numberFormat = new Intl.NumberFormat('en');
const dateFormat = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
const monthFormat = new Intl.DateTimeFormat('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' });

// ------------------------------------------------------------------ state + URL

const state = { view: null, datetime: null, cats: null, within: null };

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// Keep ':' and '/' readable in the hash; everything else is percent-encoded.
const encReadable = (s) => encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%2F/gi, '/');

export function parseHash(hash) {
  const out = { view: null, datetime: null, cats: null, within: null };
  for (const part of hash.replace(/^#/, '').split('&')) {
    const i = part.indexOf('=');
    if (i < 1) continue;
    const key = part.slice(0, i);
    const value = part.slice(i + 1);
    if (key === 'map') {
      const [z, lat, lon] = value.split('/').map(Number);
      if ([z, lat, lon].every(Number.isFinite)) out.view = { z, lat, lon };
    } else if (key === 'datetime') {
      const slash = value.indexOf('/');
      if (slash > 0) out.datetime = [safeDecode(value.slice(0, slash)), safeDecode(value.slice(slash + 1))];
    } else if (key === 'cat') {
      const values = value.split(',').filter(Boolean).map(safeDecode);
      if (values.length) out.cats = new Set(values);
    } else if (key === 'within') {
      const v = safeDecode(value);
      if (v.includes('/')) out.within = v;
    }
  }
  return out;
}

// Filters in the query string, as links from dashboards, the HTML pages and downloads
// write them (datetime=START/END, bbox=W,S,E,N, within=DATASET/FEATURE and the category
// field as FIELD=A,B). The hash, which this page keeps up to date, wins over them.
export function parseQuery(search, categoryField) {
  const q = new URLSearchParams(search);
  const out = { datetime: null, cats: null, within: null, bbox: null };
  const dt = q.get('datetime') ?? '';
  const slash = dt.indexOf('/');
  if (slash > 0) out.datetime = [dt.slice(0, slash), dt.slice(slash + 1)];
  const cats = categoryField ? (q.get(categoryField) ?? '').split(',').filter(Boolean) : [];
  if (cats.length) out.cats = new Set(cats);
  if ((q.get('within') ?? '').includes('/')) out.within = q.get('within');
  const b = (q.get('bbox') ?? '').split(',').map(Number);
  if (b.length === 4 && b.every(Number.isFinite) && b[0] < b[2] && b[1] < b[3]) out.bbox = b;
  return out;
}

// Reads the query's filters into `state` where the hash has none, then drops them from
// the address: from here on the hash is the view (a reload must not bring back a filter
// the reader removed). Other parameters (embed) stay.
function adoptQueryFilters(fromHash) {
  const fromQuery = parseQuery(location.search, config.category?.field);
  for (const k of ['datetime', 'cats', 'within']) state[k] = fromHash[k] ?? fromQuery[k];
  if (!fromHash.view) queryBbox = fromQuery.bbox;
  const kept = new URLSearchParams(location.search);
  for (const k of ['datetime', 'bbox', 'within', config.category?.field]) if (k) kept.delete(k);
  const rest = kept.toString();
  history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
}

let queryBbox = null;

function buildHash() {
  const parts = [];
  if (map) {
    const c = map.getCenter();
    parts.push(`map=${map.getZoom().toFixed(2)}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
  } else if (state.view) {
    parts.push(`map=${state.view.z}/${state.view.lat}/${state.view.lon}`);
  }
  if (state.datetime) parts.push(`datetime=${encReadable(state.datetime[0])}/${encReadable(state.datetime[1])}`);
  if (state.cats && config.category) parts.push(`cat=${[...state.cats].map(encReadable).map((s) => s.replace(/\//g, '%2F')).join(',')}`);
  if (state.within) parts.push(`within=${encReadable(state.within)}`);
  return `#${parts.join('&')}`;
}

// ------------------------------------------------------------------ query strings

function withQuery(url, query) {
  if (!query) return url;
  return url + (url.includes('?') ? '&' : '?') + query;
}

// [name, already-encoded value] pairs
function filterPairs({ time = true } = {}) {
  const pairs = [];
  if (time && state.datetime) {
    pairs.push(['datetime', `${encodeURIComponent(state.datetime[0])}/${encodeURIComponent(state.datetime[1])}`]);
  }
  if (state.cats && config.category) {
    pairs.push([config.category.field, [...state.cats].map(encodeURIComponent).join(',')]);
  }
  if (state.within) {
    const slash = state.within.indexOf('/');
    pairs.push(['within', `${encodeURIComponent(state.within.slice(0, slash))}/${encodeURIComponent(state.within.slice(slash + 1))}`]);
  }
  return pairs;
}

const qs = (pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${v}`).join('&');

function tileTemplate() {
  return withQuery(config.tiles, qs(filterPairs()));
}

function bboxParam() {
  const b = map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  return [
    clamp(b.getWest(), -180, 180),
    clamp(b.getSouth(), -90, 90),
    clamp(b.getEast(), -180, 180),
    clamp(b.getNorth(), -90, 90),
  ].map((v) => v.toFixed(6)).join(',');
}

// ------------------------------------------------------------------ small helpers

function setStatus(text) {
  $('status').textContent = text;
}

function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

async function getJSON(url, accept = 'application/json') {
  const res = await fetch(url, { headers: { Accept: accept } });
  if (!res.ok) throw new Error(`${res.status} ${res.statusText} for ${url}`);
  return res.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    // Through the CSSOM: the page's CSP (style-src 'self') blocks style attributes.
    else if (k === 'style') node.style.cssText = String(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// Dates: the server's RFC 3339 strings carry the dataset's local date first,
// so the calendar date is read from the text and formatted as a UTC date.
function localDateMs(rfc3339) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(rfc3339 || '');
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3]) : Date.parse(rfc3339);
}
const fmtDate = (s) => dateFormat.format(localDateMs(s));
// The end of a bucket is exclusive: show the day before it.
const fmtEndDate = (s) => dateFormat.format(localDateMs(s) - (/T00:00(:00(\.0+)?)?/.test(s) ? 86400000 : 0));

// Inspection results (mirrors styles/inspections.json).
export function inspectionColor(value) {
  const v = String(value ?? '').toLowerCase();
  if (v.includes('fail')) return '#c62828';
  if (v.includes('condition')) return '#b26a00';
  if (v.startsWith('pass')) return '#2e7d32';
  return '#757575';
}

// ------------------------------------------------------------------ map

let map = null;
let interactiveLayers = [];
let idleCount = 0;
let popup = null;

async function loadStyle() {
  const style = await getJSON(config.style);
  const src = style.sources?.data ?? { type: 'vector' };
  let extra = {};
  if (src.url && !src.tiles) {
    // Read zoom range and bounds from the TileJSON ourselves so that the very
    // first tile requests already carry the filters from the URL.
    try {
      const tj = await getJSON(new URL(src.url, config.style).href);
      extra = {
        minzoom: tj.minzoom,
        maxzoom: tj.maxzoom,
        attribution: src.attribution ?? tj.attribution,
      };
      if (!config.tiles && tj.tiles?.length) config.tiles = tj.tiles[0];
    } catch (e) {
      console.warn('TileJSON not read, using defaults:', e.message);
    }
  }
  if (!config.tiles && src.tiles?.length) config.tiles = src.tiles[0];
  const data = { type: 'vector', tiles: [tileTemplate()], attribution: src.attribution ?? config.attribution };
  for (const [k, v] of Object.entries({ minzoom: src.minzoom, maxzoom: src.maxzoom, ...extra })) {
    if (v !== undefined && v !== null) data[k] = v;
  }
  style.sources = { ...style.sources, data };
  return config.basemap ? overBasemap(await getJSON(config.basemap), style) : style;
}

// The dataset's layers over a `--basemap` style: its sources, layers and sprite, then
// ours (without our background). Glyphs stay ours, so the data's labels keep their fonts.
function overBasemap(basemap, style) {
  return {
    ...style,
    sprite: basemap.sprite ?? style.sprite,
    glyphs: style.glyphs ?? basemap.glyphs,
    sources: { ...basemap.sources, ...style.sources },
    layers: [...(basemap.layers ?? []), ...style.layers.filter((l) => l.type !== 'background')],
  };
}

function initialView() {
  if (state.view) return { center: [state.view.lon, state.view.lat], zoom: state.view.z };
  if (queryBbox) {
    const [w, s, e, n] = queryBbox;
    return { bounds: [[w, s], [e, n]] };
  }
  if (Array.isArray(config.bounds) && config.bounds.length === 4 && config.bounds.every(Number.isFinite)) {
    const [w, s, e, n] = config.bounds;
    if (w === e && s === n) return { center: [w, s], zoom: 14 };
    return { bounds: [[w, s], [e, n]], fitBoundsOptions: { padding: 24 } };
  }
  return { center: [0, 20], zoom: 1 };
}

let tilesVersion = 0;
let idleTilesVersion = 0;

function applyFilters({ histogram = true } = {}) {
  const source = map?.getSource('data');
  if (source) {
    tilesVersion++;
    source.setTiles([tileTemplate()]);
  }
  legendCountsDirty = true;
  renderLegendState();
  updateLinks();
  if (histogram) scheduleHistogram();
  announce('tessera:filters');
}

// Extension modules (choropleth, calendar, dashboard tab...) listen for these on
// `document` instead of reaching into this file: 'tessera:filters' when a filter
// changes, 'tessera:view' when the map stops moving. `detail.query` is the filter
// query string (datetime, category, within) without the bbox.
function announce(name) {
  document.dispatchEvent(new CustomEvent(name, { detail: { query: qs(filterPairs()) } }));
}

// Set (or clear, with null) the time filter from outside the slider, e.g. a calendar day.
function setDatetime(range) {
  state.datetime = range ? [range[0], range[1]] : null;
  if (buckets.length) syncSliderToState();
  applyFilters();
  history.replaceState(null, '', buildHash());
}

function pickFeature(point, radius = 6) {
  const box = [[point.x - radius, point.y - radius], [point.x + radius, point.y + radius]];
  const found = map.queryRenderedFeatures(box, { layers: interactiveLayers });
  if (!found.length) return null;
  // Nearest point feature first; otherwise the top-most feature.
  let best = null;
  let bestD = Infinity;
  for (const f of found) {
    if (f.geometry?.type !== 'Point') continue;
    const p = map.project(f.geometry.coordinates);
    const d = (p.x - point.x) ** 2 + (p.y - point.y) ** 2;
    if (d < bestD) {
      bestD = d;
      best = f;
    }
  }
  return best ?? found[0];
}

function nearestToCentre() {
  const c = map.project(map.getCenter());
  const found = map.queryRenderedFeatures({ layers: interactiveLayers });
  let best = null;
  let bestD = Infinity;
  for (const f of found) {
    if (f.geometry?.type !== 'Point') continue;
    const p = map.project(f.geometry.coordinates);
    const d = (p.x - c.x) ** 2 + (p.y - c.y) ** 2;
    if (d < bestD) {
      bestD = d;
      best = f;
    }
  }
  if (best) return best;
  const under = map.queryRenderedFeatures(c, { layers: interactiveLayers });
  return under[0] ?? null;
}

function propertiesTable(rows) {
  const tbody = el('tbody');
  for (const [k, v] of rows) {
    tbody.append(el('tr', {}, el('th', { scope: 'row', text: k }), el('td', { text: v })));
  }
  return el('table', { class: 'props' }, tbody);
}

function openPopup(at, node) {
  if (popup) popup.remove();
  popup = new maplibregl.Popup({ maxWidth: '360px', focusAfterOpen: true, closeButton: true })
    .setLngLat(at)
    .setDOMContent(node)
    .addTo(map);
}

// How many stacked features a popup lists before linking to the table of them all.
const STACK_LIST = 10;

function categoryColor(value) {
  const v = config.category?.values?.find((c) => c.value === value);
  return v ? legendColor(v) : config.category?.otherColor ?? '#888888';
}

// A stack: "85 crimes here", the category mix, then the first few with their time and a
// link to the items at that position (a table with paging) under the same filters.
async function showStack(feature) {
  const props = feature.properties ?? {};
  const count = Number(props.count) || 0;
  const noun = config.display?.noun ?? 'records';
  const heading = `${numberFormat.format(count)} ${noun} here`;
  const mix = stackMix(props);
  const mixList = el('ul', { class: 'stack-mix' });
  for (const [cat, n] of mix) {
    mixList.append(el('li', {},
      el('span', { class: 'swatch', 'aria-hidden': 'true', style: `--swatch:${categoryColor(cat)}` }),
      el('span', { class: 'legend-name', text: cat }),
      el('span', { class: 'legend-count', text: numberFormat.format(n) })));
  }
  const query = qs([...filterPairs(), ['bbox', encodeURIComponent(props.bbox ?? '')]]);
  const items = config.items.replace(/\?.*$/, '');
  const listing = el('ol', { class: 'stack-items' }, el('li', { class: 'hint', text: 'Loading…' }));
  const all = el('a', { class: 'stack-all', href: withQuery(items, `${query}&f=html`), target: '_blank', rel: 'noopener', text: `All ${numberFormat.format(count)} in a table` });
  const node = el('div', { class: 'feature-popup stack-popup', 'data-count': String(count) },
    el('h2', { text: heading }), mix.length ? mixList : null, listing, el('p', {}, all));
  openPopup(feature.geometry.coordinates, node);
  try {
    const fc = await getJSON(withQuery(items, `${query}&limit=${STACK_LIST}`), 'application/geo+json, application/json');
    listing.replaceChildren();
    for (const f of fc.features ?? []) {
      const p = f.properties ?? {};
      const when = formatTime(firstTime(p), timeTypeOf(p), config.display?.timeZone);
      listing.append(el('li', {}, el('span', { class: 'stack-title', text: featureTitle(p, config) }), when ? el('span', { class: 'stack-when', text: ` · ${when}` }) : null));
    }
    node.dataset.loaded = 'true';
  } catch (e) {
    listing.replaceChildren(el('li', { class: 'hint', text: 'The list could not be loaded.' }));
    console.warn('Stack not loaded:', e.message);
  }
  setStatus(`${heading}.`);
}

// The first time field of a feature's properties, for the stack list.
function firstTime(p) {
  const f = Object.keys(config.display?.timeFields ?? {}).find((k) => p[k]);
  return f ? p[f] : null;
}
function timeTypeOf(p) {
  const f = Object.keys(config.display?.timeFields ?? {}).find((k) => p[k]);
  return f ? config.display.timeFields[f] : 'datetime';
}

async function showFeature(feature, lngLat) {
  const props = feature.properties ?? {};
  if (props.cluster === true || props.cluster === 'true') {
    const current = map.getZoom();
    let zoom = Number(props.cluster_expansion_zoom);
    if (!Number.isFinite(zoom) || zoom <= current) zoom = Math.floor(current) + 1;
    map.easeTo({ center: feature.geometry.coordinates, zoom: Math.min(zoom, map.getMaxZoom()) });
    setStatus(`Zooming in to a cluster of ${clusterText(props)}.`);
    return;
  }
  if (props.count !== undefined && props.bbox) {
    await showStack(feature);
    return;
  }
  const fid = props.fid ?? feature.id;
  const at = feature.geometry?.type === 'Point' ? feature.geometry.coordinates : lngLat;
  const heading = el('h2', { text: featureTitle(props, config) });
  const body = el('div', { class: 'popup-body' }, el('p', { class: 'hint', text: 'Loading details…' }));
  const node = el('div', { class: 'feature-popup', 'data-fid': fid ?? '' }, heading, body);
  openPopup(at, node);
  let shown = props;
  if (fid !== undefined && fid !== null && fid !== '') {
    try {
      const item = await getJSON(`${config.items.replace(/\?.*$/, '')}/${encodeURIComponent(fid)}`, 'application/geo+json, application/json');
      shown = item.properties ?? props;
      node.dataset.loaded = 'true';
    } catch (e) {
      console.warn('Feature details not loaded:', e.message);
    }
  }
  const title = featureTitle(shown, config);
  heading.textContent = title;
  body.replaceChildren(propertiesTable(shownFields(shown, config)));
  setStatus(`Showing details of ${title}.`);
}

// ------------------------------------------------------------------ clusters

// "412 incidents: 200 Theft, 150 Burglary, 62 other": the mix in words, so that it does
// not depend on telling the ring's colours apart.
function clusterText(props) {
  const values = (config.category?.values ?? []).map((v) => v.value);
  return clusterSummary(props, values, config.display?.noun ?? 'records', (n) => numberFormat.format(n));
}

// A cluster under the pointer shows its mix (swatches in the legend's colours, and the
// counts in words); anything else hides it. Not focusable: it only repeats what the
// status line says when a cluster is chosen with the keyboard.
let clusterHover = null;
let clusterHoverKey = '';

function showClusterHover(feature) {
  const p = feature?.properties ?? {};
  const cluster = p.cluster === true || p.cluster === 'true';
  if (!cluster) {
    clusterHover?.remove();
    clusterHover = null;
    clusterHoverKey = '';
    return;
  }
  const key = `${feature.geometry.coordinates}`;
  if (key === clusterHoverKey && clusterHover) return;
  clusterHoverKey = key;
  const values = (config.category?.values ?? []).map((v) => v.value);
  const list = el('ul', { class: 'stack-mix' });
  for (const [cat, n] of clusterMix(p, values)) {
    list.append(el('li', {},
      el('span', { class: 'swatch', 'aria-hidden': 'true', style: `--swatch:${categoryColor(cat)}` }),
      el('span', { class: 'legend-name', text: cat || 'Other' }),
      el('span', { class: 'legend-count', text: numberFormat.format(n) })));
  }
  const node = el('div', { class: 'cluster-mix' },
    el('p', { class: 'cluster-summary', text: clusterText(p) }),
    config.category ? list : null);
  clusterHover?.remove();
  clusterHover = new maplibregl.Popup({ closeButton: false, closeOnClick: false, focusAfterOpen: false, className: 'cluster-hover', maxWidth: '300px' })
    .setLngLat(feature.geometry.coordinates)
    .setDOMContent(node)
    .addTo(map);
}

// ------------------------------------------------------------------ legend

// The server picks the colours (none repeated, see `colours` in src/http/maps.rs).
function legendColor(v) {
  return v.color;
}

function renderLegend() {
  const cat = config.category;
  if (!cat || !Array.isArray(cat.values) || !cat.values.length) return;
  $('legend-title').textContent = cat.field;
  const list = $('legend-list');
  list.replaceChildren();
  for (const v of cat.values) {
    const button = el(
      'button',
      { type: 'button', class: 'legend-item', 'aria-pressed': 'true', 'data-value': v.value },
      el('span', { class: 'swatch', 'aria-hidden': 'true', style: `--swatch:${legendColor(v)}` }),
      el('span', { class: 'legend-name', text: v.value }),
      v.count !== undefined && v.count !== null ? el('span', { class: 'legend-count', text: numberFormat.format(v.count) }) : null,
    );
    button.addEventListener('click', () => toggleCategory(v.value));
    list.append(el('li', {}, button));
  }
  // The rest are drawn grey: say so, with how many they are, rather than leave grey dots
  // unexplained. Not a toggle: the filters select values, not "none of these".
  if (cat.other && cat.other.count > 0) {
    list.append(el('li', { class: 'legend-other' },
      el('span', { class: 'legend-item legend-static', 'data-value': '' },
        el('span', { class: 'swatch', 'aria-hidden': 'true', style: `--swatch:${cat.other.color}` }),
        el('span', { class: 'legend-name', text: 'Other' }),
        el('span', { class: 'legend-count', text: numberFormat.format(cat.other.count) }))));
  }
  $('legend-all').addEventListener('click', () => {
    state.cats = null;
    applyFilters();
    setStatus('All categories shown.');
  });
  if (window.matchMedia('(max-width: 700px)').matches && cat.values.length > 4) $('legend-details').open = false;
  $('legend').hidden = false;
}

function toggleCategory(value) {
  const all = config.category.values.map((v) => v.value);
  const active = new Set(state.cats ?? all);
  if (active.has(value)) {
    if (active.size === 1) {
      setStatus('At least one category stays shown. Use "Show all categories" to reset.');
      return;
    }
    active.delete(value);
  } else {
    active.add(value);
  }
  state.cats = all.every((v) => active.has(v)) && active.size === all.length ? null : active;
  applyFilters();
  setStatus(`${value} ${active.has(value) ? 'shown' : 'hidden'}.`);
}

// Legend counts of what is in view with the current filters, from the features drawn:
// clusters carry `count:<category>`, stacks `cat_mix`, single points their category.
// Recomputed when the map settles after a move or a filter change.
let legendCountsDirty = true;

function countsInView() {
  const field = config.category?.field;
  const layers = interactiveLayers.filter((id) => map.getLayer(id)?.type === 'circle');
  const counts = new Map();
  let total = 0;
  const seen = new Set();
  const add = (k, n) => {
    counts.set(k, (counts.get(k) ?? 0) + n);
    total += n;
  };
  for (const f of map.queryRenderedFeatures({ layers })) {
    const p = f.properties ?? {};
    const cluster = p.cluster === true || p.cluster === 'true';
    // A point in two tiles' buffers is drawn twice; count it once.
    const key = cluster ? `c:${f.geometry.coordinates}` : p.count ? `s:${p.bbox}` : `f:${p.fid ?? f.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (cluster) {
      let inCats = 0;
      for (const [k, v] of Object.entries(p)) {
        if (k.startsWith('count:')) {
          add(k.slice(6), Number(v) || 0);
          inCats += Number(v) || 0;
        }
      }
      add('', Math.max(0, (Number(p.point_count) || 0) - inCats));
    } else if (p.count) {
      const mix = stackMix(p);
      for (const [k, n] of mix) add(k, n);
      add('', Math.max(0, Number(p.count) - mix.reduce((a, [, n]) => a + n, 0)));
    } else {
      add(String(p[field] ?? ''), 1);
    }
  }
  return { counts, total };
}

function updateLegendCounts() {
  if (!config.category || !legendCountsDirty) return;
  legendCountsDirty = false;
  const { counts, total } = countsInView();
  let top = 0;
  for (const button of document.querySelectorAll('#legend-list .legend-item[data-value]')) {
    const v = button.dataset.value;
    const label = button.querySelector('.legend-count');
    if (!label || v === '') continue;
    const n = counts.get(v) ?? 0;
    top += n;
    label.textContent = numberFormat.format(n);
  }
  const other = document.querySelector('#legend-list .legend-other .legend-count');
  if (other) other.textContent = numberFormat.format(Math.max(0, total - top));
  $('legend-hint').textContent = `Counts of what is in view (${numberFormat.format(total)} in all). Select a category to hide or show it.`;
}

function renderLegendState() {
  for (const button of document.querySelectorAll('#legend-list .legend-item')) {
    const on = !state.cats || state.cats.has(button.dataset.value);
    button.setAttribute('aria-pressed', String(on));
  }
  $('legend-all').hidden = !state.cats;
}

// ------------------------------------------------------------------ time

let buckets = [];
let bucketUnit = 'day';
let histogramSeq = 0;

function chooseBucket(start, end) {
  const days = (Date.parse(end) - Date.parse(start)) / 86400000;
  if (!(days > 0)) return 'day';
  if (days <= 120) return 'day';
  if (days <= 3 * 366) return 'week';
  return 'month';
}

// Client-side buckets (UTC) until the server's histogram arrives.
function makeBuckets(start, end, unit) {
  const out = [];
  const endMs = Date.parse(end);
  const d = new Date(localDateMs(start));
  if (unit === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  if (unit === 'month') d.setUTCDate(1);
  while (d.getTime() <= endMs && out.length < 2000) {
    const s = d.toISOString().replace('.000Z', 'Z');
    if (unit === 'day') d.setUTCDate(d.getUTCDate() + 1);
    else if (unit === 'week') d.setUTCDate(d.getUTCDate() + 7);
    else d.setUTCMonth(d.getUTCMonth() + 1);
    out.push({ start: s, end: d.toISOString().replace('.000Z', 'Z'), count: null });
  }
  return out;
}

const boundary = (k) => (k < buckets.length ? buckets[k].start : buckets[buckets.length - 1].end);

function nearestBoundary(rfc3339) {
  const t = Date.parse(rfc3339);
  let best = 0;
  let bestD = Infinity;
  for (let k = 0; k <= buckets.length; k++) {
    const d = Math.abs(Date.parse(boundary(k)) - t);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function syncSliderToState() {
  const start = $('time-start');
  const end = $('time-end');
  const n = buckets.length;
  start.max = end.max = String(n);
  if (state.datetime) {
    let i = nearestBoundary(state.datetime[0]);
    let j = nearestBoundary(state.datetime[1]);
    if (j <= i) j = Math.min(n, i + 1);
    if (j <= i) i = Math.max(0, j - 1);
    start.value = String(i);
    end.value = String(j);
  } else {
    start.value = '0';
    end.value = String(n);
  }
  updateTimeLabels();
}

function sliderRange() {
  return [Number($('time-start').value), Number($('time-end').value)];
}

function updateTimeLabels() {
  if (!buckets.length) return;
  const [i, j] = sliderRange();
  const a = state.datetime ? state.datetime[0] : boundary(i);
  const b = state.datetime ? state.datetime[1] : boundary(j);
  const whole = !state.datetime;
  $('time-label').textContent = `${fmtDate(a)} – ${fmtEndDate(b)}${whole ? ' (whole period)' : ''}`;
  $('time-start').setAttribute('aria-valuetext', `From ${fmtDate(boundary(i))}`);
  $('time-end').setAttribute('aria-valuetext', `Until ${fmtEndDate(boundary(j))}`);
  // Keep the start thumb reachable when both handles meet at the right end.
  $('time-start').style.zIndex = i > buckets.length / 2 ? '3' : '2';
  $('time-reset').hidden = whole;
  drawHistogram();
}

function drawHistogram() {
  const svg = $('histogram');
  const title = svg.querySelector('title');
  svg.replaceChildren(title);
  const n = buckets.length;
  if (!n) return;
  const [i, j] = sliderRange();
  const max = Math.max(1, ...buckets.map((b) => b.count ?? 0));
  const w = 300 / n;
  const gap = n > 60 ? 0 : Math.min(1, w * 0.15);
  buckets.forEach((b, k) => {
    const h = b.count ? Math.max(1.5, (b.count / max) * 58) : 0;
    const rect = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    rect.setAttribute('x', String(k * w + gap / 2));
    rect.setAttribute('y', String(60 - h));
    rect.setAttribute('width', String(Math.max(0.3, w - gap)));
    rect.setAttribute('height', String(h));
    rect.setAttribute('class', k >= i && k < j ? 'bar in' : 'bar');
    const t = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    t.textContent = `${fmtDate(b.start)} – ${fmtEndDate(b.end)}: ${b.count === null ? '…' : numberFormat.format(b.count)}`;
    rect.append(t);
    svg.append(rect);
  });
  const total = buckets.reduce((s, b) => s + (b.count ?? 0), 0);
  const inRange = buckets.slice(i, j).reduce((s, b) => s + (b.count ?? 0), 0);
  title.textContent = buckets[0].count === null
    ? 'Counts over time (loading)'
    : `Counts by ${bucketUnit} in the current view: ${numberFormat.format(inRange)} of ${numberFormat.format(total)} in the chosen period.`;
}

const applyTime = debounce(() => {
  const [i, j] = sliderRange();
  state.datetime = i === 0 && j === buckets.length ? null : [boundary(i), boundary(j)];
  updateTimeLabels();
  applyFilters({ histogram: false });
}, 250);

function onSlide(event) {
  const start = $('time-start');
  const end = $('time-end');
  let [i, j] = sliderRange();
  if (i >= j) {
    if (event.target === start) {
      i = Math.max(0, j - 1);
      start.value = String(i);
    } else {
      j = Math.min(buckets.length, i + 1);
      end.value = String(j);
    }
  }
  // Show the slider's own range while it moves.
  const saved = state.datetime;
  state.datetime = i === 0 && j === buckets.length ? null : [boundary(i), boundary(j)];
  updateTimeLabels();
  state.datetime = saved;
  applyTime();
}

function initTime() {
  if (!Array.isArray(config.time) || config.time.length !== 2 || !config.time[0] || !config.time[1]) return;
  bucketUnit = chooseBucket(config.time[0], config.time[1]);
  buckets = makeBuckets(config.time[0], config.time[1], bucketUnit);
  $('bucket-label').textContent = `Bars show counts per ${bucketUnit}.`;
  for (const id of ['time-start', 'time-end']) $(id).addEventListener('input', onSlide);
  $('time-reset').addEventListener('click', () => {
    state.datetime = null;
    syncSliderToState();
    applyFilters({ histogram: false });
    setStatus('Showing the whole period.');
  });
  $('time-section').hidden = false;
  syncSliderToState();
}

async function loadHistogram() {
  if (!config.histogram || !buckets.length || !map) return;
  const seq = ++histogramSeq;
  const url = withQuery(config.histogram, qs([['bucket', bucketUnit], ...filterPairs({ time: false }), ['bbox', bboxParam()]]));
  try {
    const h = await getJSON(url);
    if (seq !== histogramSeq) return;
    if (Array.isArray(h.buckets) && h.buckets.length) {
      buckets = h.buckets.map((b) => ({ start: b.start, end: b.end, count: Number(b.count) || 0 }));
      if (h.bucket) bucketUnit = h.bucket;
      $('bucket-label').textContent = `Bars show counts per ${bucketUnit} in the current view (${numberFormat.format(Number(h.total) || 0)} in all).`;
    } else {
      buckets = buckets.map((b) => ({ ...b, count: 0 }));
    }
    syncSliderToState();
  } catch (e) {
    console.warn('Histogram not loaded:', e.message);
  }
}
const scheduleHistogram = debounce(loadHistogram, 300);

// ------------------------------------------------------------------ area picker

const areaIndex = new Map();

function bboxOfGeometry(g) {
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
  if (!g) return null;
  if (g.type === 'GeometryCollection') g.geometries.forEach((x) => walk(x.coordinates));
  else walk(g.coordinates);
  return Number.isFinite(w) ? [w, s, e, n] : null;
}

function areaLabel(f, labelField) {
  const p = f.properties ?? {};
  const name = (labelField ? p[labelField] : undefined) ?? p.name ?? p.community ?? p.title ?? p.label;
  if (name === undefined || name === null || name === '') return `#${f.id}`;
  const s = String(name);
  // "DOUGLAS" -> "Douglas"
  return s === s.toUpperCase() && /[A-Z]/.test(s) ? s.toLowerCase().replace(/\b\p{L}/gu, (c) => c.toUpperCase()) : s;
}

async function initAreas() {
  const polygons = Array.isArray(config.polygons) ? config.polygons : [];
  if (!polygons.length) return;
  const select = $('area-select');
  $('area-section').hidden = false;
  const intersects = (a, b) => !(a[2] < b[0] || a[0] > b[2] || a[3] < b[1] || a[1] > b[3]);
  for (const p of polygons) {
    try {
      // The server names each polygon dataset's label field (`name`, `community`, ...).
      const props = p.label ? `&properties=${encodeURIComponent(p.label)}` : '';
      const fc = await getJSON(withQuery(p.items, `limit=1000${props}`), 'application/geo+json, application/json');
      const entries = [];
      for (const f of fc.features ?? []) {
        if (f.id === undefined || f.id === null) continue;
        const bbox = f.bbox ?? bboxOfGeometry(f.geometry);
        if (bbox && Array.isArray(config.bounds) && config.bounds.length === 4 && !intersects(bbox, config.bounds)) continue;
        entries.push({ key: `${p.id}/${f.id}`, dataset: p, id: String(f.id), name: areaLabel(f, p.label), bbox, geometry: f.geometry ?? null });
      }
      if (!entries.length) continue;
      entries.sort((a, b) => a.name.localeCompare(b.name, 'en'));
      const group = el('optgroup', { label: p.title ?? p.id });
      for (const entry of entries) {
        areaIndex.set(entry.key, entry);
        group.append(el('option', { value: entry.key, text: entry.name }));
      }
      select.append(group);
    } catch (e) {
      console.warn(`Areas of ${p.id} not loaded:`, e.message);
    }
  }
  select.addEventListener('change', () => chooseArea(select.value, { fit: true }));
  if (state.within) {
    if (areaIndex.has(state.within)) select.value = state.within;
    await chooseArea(state.within, { fit: !state.view, apply: false });
  }
}

async function chooseArea(key, { fit = true, apply = true } = {}) {
  const outline = map.getSource('tessera-within');
  if (!key) {
    state.within = null;
    outline?.setData({ type: 'FeatureCollection', features: [] });
    if (apply) applyFilters();
    setStatus('Showing every area.');
    return;
  }
  state.within = key;
  if (apply) applyFilters();
  let entry = areaIndex.get(key);
  if (!entry) {
    const slash = key.indexOf('/');
    const dataset = (config.polygons ?? []).find((p) => p.id === key.slice(0, slash));
    if (!dataset) return;
    entry = { key, dataset, id: key.slice(slash + 1), name: key.slice(slash + 1), bbox: null, geometry: null };
  }
  if (!entry.geometry) {
    try {
      const f = await getJSON(`${entry.dataset.items.replace(/\?.*$/, '')}/${encodeURIComponent(entry.id)}`, 'application/geo+json, application/json');
      entry.geometry = f.geometry;
      entry.bbox = f.bbox ?? bboxOfGeometry(f.geometry);
    } catch (e) {
      console.warn('Area outline not loaded:', e.message);
    }
  }
  if (state.within !== key) return;
  if (entry.geometry) outline?.setData({ type: 'Feature', properties: {}, geometry: entry.geometry });
  if (fit && entry.bbox) {
    const [w, s, e, n] = entry.bbox;
    map.fitBounds([[w, s], [e, n]], { padding: 40, duration: 600 });
  }
  setStatus(`Showing only what lies within ${entry.name}.`);
}

// ------------------------------------------------------------------ links

function pageUrl() {
  return location.origin + location.pathname;
}

function escapeAttr(s) {
  return String(s).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function updateLinks() {
  if (!map) return;
  const hash = buildHash();
  history.replaceState(null, '', location.pathname + location.search + hash);
  const common = [['bbox', bboxParam()], ...filterPairs()];
  const csv = $('download-csv');
  csv.href = withQuery(config.items, qs([['f', 'csv'], ...common]));
  csv.setAttribute('download', `${config.id}.csv`);
  const geojson = $('download-geojson');
  geojson.href = withQuery(config.items, qs([['f', 'json'], ['limit', '10000'], ...common]));
  geojson.setAttribute('download', `${config.id}.geojson`);
  const share = pageUrl() + hash;
  const embedUrl = `${pageUrl()}?embed=1${hash}`;
  $('share-url').value = share;
  $('embed-code').value = `<iframe src="${escapeAttr(embedUrl)}" width="100%" height="480" style="border:0" title="${escapeAttr(`Map: ${config.title}`)}" loading="lazy" allowfullscreen></iframe>`;
  $('open-full').href = share;
}

async function copyFrom(id, button) {
  const field = $(id);
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand?.('copy');
  }
  button.textContent = 'Copied';
  setStatus('Copied to the clipboard.');
  setTimeout(() => {
    button.textContent = label;
  }, 1500);
}

// ------------------------------------------------------------------ chrome

function initChrome() {
  if (embed) {
    document.body.classList.add('embed');
    $('open-full').hidden = false;
  }
  const toggle = $('panel-toggle');
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    document.body.classList.toggle('panel-open', open);
    if (open) $('panel').querySelector('input, select, button, a')?.focus();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && document.body.classList.contains('panel-open')) {
      document.body.classList.remove('panel-open');
      toggle.setAttribute('aria-expanded', 'false');
      toggle.focus();
    }
  });
  for (const button of document.querySelectorAll('button.copy')) {
    button.addEventListener('click', () => copyFrom(button.dataset.copy, button));
  }
}

// ------------------------------------------------------------------ start

let resolveReady;
const ready = new Promise((r) => {
  resolveReady = r;
});

window.tessera = {
  config,
  state,
  embed,
  ready,
  get map() {
    return map;
  },
  get idleCount() {
    return idleCount;
  },
  get buckets() {
    return buckets;
  },
  // tests: filters applied (tilesVersion) and rendered (idleTilesVersion)
  get tilesVersion() {
    return tilesVersion;
  },
  get idleTilesVersion() {
    return idleTilesVersion;
  },
  tileTemplate,
  filterQuery: () => qs(filterPairs()),
  bboxParam: () => (map ? bboxParam() : null),
  setDatetime,
  setStatus,
  // An extension's panel section goes here (after the area filter).
  panel: (section) => $('panel-extensions').append(section),
};

async function main() {
  const fromHash = parseHash(location.hash);
  Object.assign(state, fromHash);
  adoptQueryFilters(fromHash);
  if (state.cats && config.category) {
    const known = new Set(config.category.values.map((v) => v.value));
    if ([...state.cats].every((v) => known.has(v)) && state.cats.size === known.size) state.cats = null;
  }
  initChrome();
  renderLegend();
  renderLegendState();
  initTime();

  let style;
  try {
    style = await loadStyle();
  } catch (e) {
    console.error('Map style not loaded:', e.message);
    setStatus('The map could not be loaded.');
    return;
  }
  map = new maplibregl.Map({
    container: 'map',
    style,
    ...initialView(),
    cooperativeGestures: embed,
    dragRotate: false,
    pitchWithRotate: false,
    maxPitch: 0,
  });
  window.tesseraMap = map;
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');

  map.on('error', (e) => {
    console.error('Map error:', e.error?.message ?? e.error ?? e);
    setStatus('Some map data could not be loaded.');
  });
  map.on('idle', () => {
    idleCount++;
    idleTilesVersion = tilesVersion;
    updateLegendCounts();
  });

  map.on('load', async () => {
    interactiveLayers = map.getStyle().layers
      .filter((l) => l.source === 'data' && ['circle', 'fill', 'line', 'symbol'].includes(l.type))
      .map((l) => l.id);
    map.addSource('tessera-within', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({ id: 'tessera-within-casing', type: 'line', source: 'tessera-within', paint: { 'line-color': '#ffffff', 'line-width': 5 } });
    map.addLayer({ id: 'tessera-within-line', type: 'line', source: 'tessera-within', paint: { 'line-color': '#1b1b1b', 'line-width': 2.5, 'line-dasharray': [2, 1] } });

    map.on('click', (e) => {
      const f = pickFeature(e.point);
      if (f) showFeature(f, e.lngLat);
    });
    map.on('mousemove', (e) => {
      const f = pickFeature(e.point, 4);
      map.getCanvas().style.cursor = f ? 'pointer' : '';
      showClusterHover(f);
    });
    map.getCanvas().addEventListener('mouseleave', () => showClusterHover(null));
    map.on('movestart', () => showClusterHover(null));
    map.getCanvas().addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      // Otherwise the same key press would reach the popup's close button.
      e.preventDefault();
      const f = nearestToCentre();
      if (f) showFeature(f, map.getCenter());
      else setStatus('No feature near the centre of the map.');
    });
    map.on('moveend', () => {
      legendCountsDirty = true;
      updateLinks();
      scheduleHistogram();
      announce('tessera:view');
    });

    updateLinks();
    loadHistogram();
    await initAreas();
    map.once('idle', () => resolveReady(map));
    map.triggerRepaint();
  });

  window.addEventListener('hashchange', () => {
    const next = parseHash(location.hash);
    if (next.view) map.jumpTo({ center: [next.view.lon, next.view.lat], zoom: next.view.z });
    const withinChanged = next.within !== state.within;
    state.datetime = next.datetime;
    state.cats = next.cats;
    if (buckets.length) syncSliderToState();
    if (withinChanged) {
      $('area-select').value = areaIndex.has(next.within) ? next.within : '';
      chooseArea(next.within, { fit: !next.view });
    } else {
      applyFilters();
    }
  });
}

main();
