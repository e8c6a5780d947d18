// "By area" mode of the map page: a choropleth of the dataset's counts per area of a
// boundary dataset (/collections/{id}/aggregate and its tiles), following the page's
// filters. A map-page module: it only uses window.tessera and the tessera:filters event.
const t = window.tessera;
const cfg = t.config;
// Viridis in 5 steps: sequential, readable with every common colour-vision deficiency
// and in greyscale (lightness rises steadily).
const COLOURS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];
const SOURCE = 'tessera-choropleth';
const FILL = 'tessera-choropleth-fill';
const LINE = 'tessera-choropleth-line';
const MEASURES = {
  count: { label: 'Count', unit: '' },
  density: { label: 'Per km²', unit: ' per km²' },
  rate: { label: 'Per 1,000 residents', unit: ' per 1,000 residents' },
};
const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

const ui = { on: false, by: null, measure: 'count', data: null, seq: 0 };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** Quantile class breaks (upper bounds) of the values, at most COLOURS.length classes. */
export function quantileBreaks(values) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return [];
  const breaks = [];
  for (let k = 1; k <= COLOURS.length; k++) {
    const b = v[Math.min(v.length - 1, Math.ceil((k * v.length) / COLOURS.length) - 1)];
    if (!breaks.length || b > breaks[breaks.length - 1]) breaks.push(b);
  }
  return breaks;
}

function filterQuery() {
  const q = t.filterQuery();
  return q.startsWith('?') ? q.slice(1) : q;
}

function aggregateUrl(suffix) {
  const base = `${location.origin}/collections/${encodeURIComponent(cfg.id)}/aggregate${suffix}`;
  const q = [`by=${encodeURIComponent(ui.by)}`, filterQuery()].filter(Boolean).join('&');
  return `${base}?${q}`;
}

function removeLayers(map) {
  for (const id of [FILL, LINE]) if (map.getLayer(id)) map.removeLayer(id);
  if (map.getSource(SOURCE)) map.removeSource(SOURCE);
}

function firstDataLayer(map) {
  const layers = map.getStyle().layers || [];
  const hit = layers.find((l) => l.source === 'data');
  return hit ? hit.id : undefined;
}

async function refresh() {
  const map = await t.ready;
  removeLayers(map);
  const seq = ++ui.seq;
  if (!ui.on || !ui.by) {
    section.querySelector('.choropleth-legend').replaceChildren();
    return;
  }
  let data;
  try {
    const r = await fetch(aggregateUrl(''));
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    data = await r.json();
  } catch (e) {
    t.setStatus(`Counts by area could not be loaded (${e.message}).`);
    return;
  }
  if (seq !== ui.seq) return; // a newer request is on its way
  ui.data = data;
  const hasRate = data.areas.some((a) => a.rate !== undefined);
  rateOption.hidden = !hasRate;
  if (!hasRate && ui.measure === 'rate') ui.measure = 'count';
  const values = data.areas.map((a) => a[ui.measure] ?? 0);
  const breaks = quantileBreaks(values);
  const colour = ['step', ['coalesce', ['get', ui.measure], 0], COLOURS[0]];
  breaks.slice(0, -1).forEach((b, i) => colour.push(b + 1e-9, COLOURS[i + 1]));
  map.addSource(SOURCE, { type: 'vector', tiles: [aggregateUrl('/{z}/{x}/{y}.mvt')], maxzoom: 14 });
  const before = firstDataLayer(map);
  map.addLayer({ id: FILL, type: 'fill', source: SOURCE, 'source-layer': ui.by, paint: { 'fill-color': colour, 'fill-opacity': 0.7 } }, before);
  map.addLayer({ id: LINE, type: 'line', source: SOURCE, 'source-layer': ui.by, paint: { 'line-color': '#ffffff', 'line-width': 0.6 } }, before);
  renderLegend(breaks, data);
  t.setStatus(`Showing ${data.total.toLocaleString()} features by area (${MEASURES[ui.measure].label.toLowerCase()}).`);
}

function renderLegend(breaks, data) {
  const unit = MEASURES[ui.measure].unit;
  const items = breaks.map((b, i) => {
    const lo = i === 0 ? 0 : breaks[i - 1];
    const words = i === 0 ? `up to ${fmt.format(b)}${unit}` : `more than ${fmt.format(lo)}, up to ${fmt.format(b)}${unit}`;
    const swatch = el('span', { class: 'choropleth-swatch', 'aria-hidden': 'true' });
    // Through the CSSOM: the page's CSP refuses inline style attributes.
    Object.assign(swatch.style, { background: COLOURS[i], display: 'inline-block', width: '1em', height: '1em' });
    return el('li', {}, swatch, ` ${words}`);
  });
  const top = [...data.areas].sort((a, b) => (b[ui.measure] ?? 0) - (a[ui.measure] ?? 0)).slice(0, 10);
  const list = el('ol', { class: 'choropleth-top' }, ...top.map((a) => el('li', { tabindex: '0' }, `${a.name ?? a.id}: ${fmt.format(a[ui.measure] ?? 0)}${unit}`)));
  section.querySelector('.choropleth-legend').replaceChildren(
    el('ul', { class: 'choropleth-classes', 'aria-label': 'Classes (quantiles)' }, ...items),
    el('p', {}, `Outside every area: ${data.outside.toLocaleString()}.`),
    el('details', {}, el('summary', {}, 'Top 10 areas'), list),
  );
}

const select = el('select', { id: 'choropleth-by', 'aria-label': 'Boundary dataset' }, ...(cfg.polygons || []).map((p) => el('option', { value: p.id }, p.title)));
const toggle = el('input', { type: 'checkbox', id: 'choropleth-on' });
const measure = el('select', { id: 'choropleth-measure', 'aria-label': 'Value shown' }, ...Object.entries(MEASURES).map(([k, m]) => el('option', { value: k }, m.label)));
const rateOption = measure.querySelector('option[value="rate"]');
rateOption.hidden = true;
const section = el(
  'section',
  { class: 'panel-section', 'aria-labelledby': 'choropleth-title' },
  el('h2', { id: 'choropleth-title' }, 'By area'),
  el('label', {}, toggle, ' Show counts by area'),
  el('label', {}, 'Areas ', select),
  el('label', {}, 'Value ', measure),
  el('div', { class: 'choropleth-legend', 'aria-live': 'polite' }),
);

if ((cfg.polygons || []).length) {
  ui.by = cfg.polygons[0].id;
  t.panel(section);
  toggle.addEventListener('change', () => { ui.on = toggle.checked; refresh(); });
  select.addEventListener('change', () => { ui.by = select.value; refresh(); });
  measure.addEventListener('change', () => { ui.measure = measure.value; refresh(); });
  document.addEventListener('tessera:filters', () => { if (ui.on) refresh(); });
  t.ready.then((map) => {
    map.on('mousemove', FILL, (e) => {
      const p = e.features && e.features[0] && e.features[0].properties;
      if (!p) return;
      t.setStatus(`${p.name ?? p.id}: ${fmt.format(p[ui.measure] ?? 0)}${MEASURES[ui.measure].unit}`);
    });
  });
}
