// Tessera catalog page: renders the dataset list the server embeds as JSON:
// {"datasets":[{"id","title","description","kind","attribution","licence",
//   "count","time":[a,b]|null,"map":"/maps/ID","api":"/collections/ID",
//   "preview","tilejson","style","csv","geojson"}]}
const $ = (id) => document.getElementById(id);
const catalog = JSON.parse($('tessera-catalog').textContent);
const datasets = catalog.datasets ?? [];
const fmt = new Intl.NumberFormat('en');
const date = (s) => (s ? String(s).slice(0, 10) : '');

function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else n.setAttribute(k, v);
  }
  for (const c of children) if (c) n.append(c);
  return n;
}

function card(d) {
  const facts = [];
  if (d.kind) facts.push(d.kind);
  if (Number.isFinite(d.count)) facts.push(`${fmt.format(d.count)} features`);
  if (Array.isArray(d.time) && d.time[0]) facts.push(`${date(d.time[0])} to ${date(d.time[1])}`);
  const title = d.title ?? d.id;
  const link = (href, text, label) => (href ? el('a', { href, text, 'aria-label': `${label} of ${title}` }) : null);
  return el('li', { class: 'dataset', 'data-id': d.id },
    d.preview ? el('a', { href: d.map, tabindex: '-1', 'aria-hidden': 'true' },
      el('img', { class: 'preview', src: d.preview, alt: '', width: '160', height: '100', loading: 'lazy' })) : null,
    el('h2', {}, el('a', { href: d.map ?? `/maps/${encodeURIComponent(d.id)}`, text: title })),
    d.description ? el('p', { text: d.description }) : null,
    el('p', { class: 'facts', text: facts.join(' · ') }),
    el('p', { class: 'source', text: [d.attribution, d.licence].filter(Boolean).join(' — ') }),
    el('p', { class: 'links' },
      el('a', { href: d.map ?? `/maps/${encodeURIComponent(d.id)}`, text: 'Map', 'aria-label': `Map of ${d.title ?? d.id}` }),
      el('a', { href: d.api ?? `/collections/${encodeURIComponent(d.id)}`, text: 'API', 'aria-label': `API of ${d.title ?? d.id}` }),
      link(d.geojson, 'GeoJSON', 'GeoJSON download'),
      link(d.csv, 'CSV', 'CSV download'),
      link(d.tilejson, 'TileJSON', 'TileJSON'),
      link(d.style, 'Style', 'MapLibre style')));
}

function render() {
  const q = $('filter').value.trim().toLowerCase();
  const shown = datasets.filter((d) => !q || [d.title, d.description, d.id, d.kind].join(' ').toLowerCase().includes(q));
  $('datasets').replaceChildren(...shown.map(card));
  $('count').textContent = `${shown.length} of ${datasets.length} datasets`;
}

$('filter').addEventListener('input', render);
render();
