// Map-page module: a "Dashboard" section in the panel whose link opens the dataset's
// dashboard with the map's current filters and, for located data, the current view as
// `bbox`. It follows the map through map.js's `tessera:filters` and `tessera:view` events.

const t = window.tessera;
const base = t.config.dashboard;

const section = document.createElement('section');
section.className = 'panel-section';
section.setAttribute('aria-labelledby', 'dashboard-tab-title');
section.innerHTML = `<h2 id="dashboard-tab-title">Dashboard</h2>
<p class="hint">Totals, the change on the previous period, counts over time and the top
categories for what the map shows.</p>
<p><a id="dashboard-link" href="${base}">Open the dashboard of this view</a></p>`;
t.panel(section);
const link = section.querySelector('#dashboard-link');

function update(query) {
  const pairs = query ? [query] : [];
  // Data without positions would match no box: their dashboard follows the filters only.
  const bbox = t.config.bounds ? t.bboxParam() : null;
  if (bbox) pairs.push(`bbox=${bbox}`);
  link.href = pairs.length ? `${base}?${pairs.join('&')}` : base;
}

document.addEventListener('tessera:filters', (e) => update(e.detail.query));
document.addEventListener('tessera:view', (e) => update(e.detail.query));
t.ready.then(() => update(t.filterQuery()));
