// Map-page module for datasets whose items have a start and an end (`config.endTime`): a
// calendar in the panel, in month, week or list view, kept in step with the map.
// - Picking a day filters the map to that day (tessera.setDatetime), picking it again
//   clears the filter.
// - When the map stops moving (`tessera:view`) or a filter changes (`tessera:filters`),
//   the calendar shows the items in view (items query with the filters and `bbox`; data
//   without positions uses the whole query), at most LIMIT of them, and says how many
//   more there are.
// - "Download .ics" is the same query as iCalendar (f=ics).
// Days are days in the dataset's zone (`config.timezone`), as everywhere in Tessera.

const t = window.tessera;

const sheet = document.createElement('link');
sheet.rel = 'stylesheet';
sheet.href = new URL('calendar.css', import.meta.url).href;
document.head.append(sheet);

const config = t.config;
const LIMIT = 500;
const LIST_ROWS = 50;
const DAY_MS = 86400000;

const zone = config.timezone || 'UTC';
const dayKey = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
const dayWords = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const monthWords = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', month: 'long', year: 'numeric' });
const timeWords = new Intl.DateTimeFormat('en-GB', { timeZone: zone, day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit' });

// A civil date is a UTC midnight here: arithmetic on it never meets a DST change.
const civil = (key) => new Date(`${key}T00:00:00Z`);
const keyOf = (d) => d.toISOString().slice(0, 10);

// The instant of local midnight starting civil date `d` in the dataset's zone.
function localMidnight(d) {
  const guess = d.getTime();
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(new Date(guess))
      .map((p) => [p.type, p.value]),
  );
  const asUtc = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  return new Date(guess - (asUtc - guess));
}

const iso = (date) => date.toISOString().replace('.000Z', 'Z');

function startOf(f) {
  const tm = f.time || {};
  if (tm.timestamp) return new Date(tm.timestamp);
  if (tm.date) return localMidnight(civil(tm.date));
  if (tm.interval) return tm.interval[0].length === 10 ? localMidnight(civil(tm.interval[0])) : new Date(tm.interval[0]);
  return null;
}

function titleOf(f) {
  const p = f.properties || {};
  const key = Object.keys(p).find((k) => /^(event name|name|title)$/i.test(k)) || Object.keys(p).find((k) => /name/i.test(k));
  return key && p[key] ? String(p[key]) : `Item ${f.id}`;
}

// ------------------------------------------------------------------ the panel section

const section = document.createElement('section');
section.className = 'panel-section calendar';
section.setAttribute('aria-labelledby', 'calendar-title');
section.innerHTML = `<h2 id="calendar-title">Calendar</h2>
<div class="calendar-views" role="group" aria-label="Calendar view">
  <button type="button" data-view="month" aria-pressed="true">Month</button>
  <button type="button" data-view="week" aria-pressed="false">Week</button>
  <button type="button" data-view="list" aria-pressed="false">List</button>
</div>
<div class="calendar-nav">
  <button type="button" id="calendar-prev" aria-label="Previous">‹</button>
  <h3 id="calendar-range" aria-live="polite"></h3>
  <button type="button" id="calendar-next" aria-label="Next">›</button>
</div>
<div id="calendar-body"></div>
<p id="calendar-note" class="hint" role="status"></p>
<p><a id="calendar-ics" download>Download .ics</a> <span class="hint">(the whole query, for a calendar application)</span></p>`;
t.panel(section);
const $ = (id) => section.querySelector(`#${id}`);

const extentEnd = config.time ? config.time[1].slice(0, 10) : keyOf(new Date());
const cal = {
  view: 'month',
  // The civil date the views are built around.
  anchor: civil((t.state.datetime?.[0] || extentEnd).slice(0, 10)),
  items: [],
  matched: 0,
  picked: null,
};

// The filters of the map without its time filter: the calendar shows its own range.
function filtersWithoutTime(query) {
  return (query || '').split('&').filter((p) => p && !p.startsWith('datetime=')).join('&');
}

function viewRange() {
  const a = cal.anchor;
  if (cal.view === 'week') {
    const monday = new Date(a.getTime() - ((a.getUTCDay() + 6) % 7) * DAY_MS);
    return [monday, new Date(monday.getTime() + 6 * DAY_MS)];
  }
  const first = new Date(Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), 1));
  const last = new Date(Date.UTC(a.getUTCFullYear(), a.getUTCMonth() + 1, 0));
  return [first, last];
}

let lastQuery = t.filterQuery();
let loadSeq = 0;

async function load(query = lastQuery) {
  lastQuery = query;
  const [first, last] = viewRange();
  const pairs = [
    `datetime=${encodeURIComponent(iso(localMidnight(first)))}/${encodeURIComponent(iso(new Date(localMidnight(new Date(last.getTime() + DAY_MS)).getTime() - 1000)))}`,
    `limit=${LIMIT}`,
  ];
  const rest = filtersWithoutTime(query);
  if (rest) pairs.push(rest);
  const bbox = config.bounds && t.map ? t.bboxParam() : null;
  if (bbox) pairs.push(`bbox=${bbox}`);
  const icsPairs = [filtersWithoutTime(query), bbox ? `bbox=${bbox}` : '', t.state.datetime ? `datetime=${encodeURIComponent(t.state.datetime[0])}/${encodeURIComponent(t.state.datetime[1])}` : ''];
  $('calendar-ics').href = `${config.items}?${['f=ics', ...icsPairs.filter(Boolean)].join('&')}`;
  const seq = ++loadSeq;
  try {
    const r = await fetch(`${config.items}?${pairs.join('&')}`, { headers: { accept: 'application/geo+json' } });
    if (!r.ok) throw new Error(String(r.status));
    const fc = await r.json();
    if (seq !== loadSeq) return; // a newer view has been asked for
    cal.items = fc.features.map((f) => ({ f, start: startOf(f) })).filter((x) => x.start);
    cal.items.sort((x, y) => x.start - y.start);
    cal.matched = fc.numberMatched ?? cal.items.length;
  } catch (e) {
    cal.items = [];
    cal.matched = 0;
    $('calendar-note').textContent = `The calendar could not be loaded (${e.message}).`;
    return;
  }
  render();
}

function countsByDay() {
  const counts = new Map();
  for (const { start } of cal.items) {
    const k = dayKey.format(start);
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  return counts;
}

function pick(key) {
  if (cal.picked === key) {
    cal.picked = null;
    t.setDatetime(null);
    t.setStatus('Showing every day.');
  } else {
    cal.picked = key;
    const d = civil(key);
    const end = new Date(localMidnight(new Date(d.getTime() + DAY_MS)).getTime() - 1000);
    t.setDatetime([iso(localMidnight(d)), iso(end)]);
    t.setStatus(`Showing ${dayWords.format(d)}.`);
  }
  render();
}

function dayButton(d, counts) {
  const key = keyOf(d);
  const n = counts.get(key) || 0;
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'calendar-day';
  b.dataset.day = key;
  b.dataset.count = n;
  b.setAttribute('aria-pressed', String(cal.picked === key));
  // The name in words, read out instead of the bare digits shown (an aria-label would
  // hide the visible text from the name: axe's label-content-name-mismatch).
  b.innerHTML = `<span class="calendar-date" aria-hidden="true">${d.getUTCDate()}</span>${n ? `<span class="calendar-count" aria-hidden="true">${n}</span>` : ''}`
    + `<span class="visually-hidden">${dayWords.format(d)}: ${n} ${n === 1 ? 'item' : 'items'}</span>`;
  b.addEventListener('click', () => pick(key));
  return b;
}

function render() {
  const [first, last] = viewRange();
  const counts = countsByDay();
  const body = $('calendar-body');
  body.replaceChildren();
  $('calendar-range').textContent = cal.view === 'month' ? monthWords.format(first) : `${dayWords.format(first)} – ${dayWords.format(last)}`;
  if (cal.view === 'list') {
    const ol = document.createElement('ol');
    ol.className = 'calendar-list';
    for (const { f, start } of cal.items.slice(0, LIST_ROWS)) {
      const li = document.createElement('li');
      li.dataset.id = f.id;
      const when = document.createElement('time');
      when.dateTime = start.toISOString();
      when.textContent = timeWords.format(start);
      li.append(when, ` ${titleOf(f)}`);
      ol.append(li);
    }
    body.append(ol);
  } else {
    const grid = document.createElement('div');
    grid.className = `calendar-grid ${cal.view}`;
    for (const name of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']) {
      const h = document.createElement('span');
      h.className = 'calendar-weekday';
      h.setAttribute('aria-hidden', 'true');
      h.textContent = name;
      grid.append(h);
    }
    const lead = (first.getUTCDay() + 6) % 7;
    for (let i = 0; i < lead; i++) grid.append(document.createElement('span'));
    for (let d = first; d <= last; d = new Date(d.getTime() + DAY_MS)) grid.append(dayButton(d, counts));
    body.append(grid);
  }
  const shown = cal.view === 'list' ? Math.min(LIST_ROWS, cal.items.length) : cal.items.length;
  const more = cal.matched - shown;
  const where = config.bounds ? 'in view' : 'matching';
  $('calendar-note').textContent = `${cal.matched.toLocaleString('en')} ${where} in this ${cal.view === 'week' ? 'week' : 'month'}` +
    (more > 0 ? `; ${more.toLocaleString('en')} more not ${cal.view === 'list' ? 'listed' : 'counted on the days'} (showing the first ${shown}).` : '.');
}

for (const b of section.querySelectorAll('[data-view]')) {
  b.addEventListener('click', () => {
    cal.view = b.dataset.view;
    for (const o of section.querySelectorAll('[data-view]')) o.setAttribute('aria-pressed', String(o === b));
    load();
  });
}

function step(sign) {
  const a = cal.anchor;
  cal.anchor = cal.view === 'week' ? new Date(a.getTime() + sign * 7 * DAY_MS) : new Date(Date.UTC(a.getUTCFullYear(), a.getUTCMonth() + sign, 1));
  load();
}
$('calendar-prev').addEventListener('click', () => step(-1));
$('calendar-next').addEventListener('click', () => step(1));

document.addEventListener('tessera:view', (e) => load(e.detail.query));
document.addEventListener('tessera:filters', (e) => load(e.detail.query));
window.tesseraCalendar = cal;
t.ready.then(() => load(t.filterQuery()));
render();
