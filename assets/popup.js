// What a feature's popup says, as a person reads it: a title from a name field, the
// fields that mean something (ids, coordinates and geometry text hidden), times in the
// dataset's time zone and in words. Stacks (points at exactly one position, tiles'
// `count` property) say how many are there, their category mix, and list the first few.
// Pure functions of the map config's `display` object (see `display_config` in
// src/http/maps.rs) plus DOM building; map.js calls them.

// Field names that are bookkeeping rather than information for a reader.
const TECHNICAL =
  /^(fid|id|gid|uuid|globalid|objectid|object_?id|the_geom|geom|geometry|wkt|shape|lat|lon|lng|long|latitude|longitude|x|y|point_x|point_y|[xy][ _]coordinate.*)$/i;
// "Unique Key", "Crime ID", "cartodb_id": identifiers by their name.
const ID_NAME = /(^|[\s_-])(id|key)$/i;
const WKT = /^\s*(POINT|MULTIPOINT|LINESTRING|MULTILINESTRING|POLYGON|MULTIPOLYGON|GEOMETRYCOLLECTION)\s*(Z|M|ZM)?\s*\(/i;
const LATLON_TEXT = /^\(?\s*-?\d{1,3}\.\d+\s*,\s*-?\d{1,3}\.\d+\s*\)?$/;

export function isTechnical(name, value) {
  if (TECHNICAL.test(name) || ID_NAME.test(name) || /^[_:@]/.test(name)) return true;
  return typeof value === 'string' && (WKT.test(value) || LATLON_TEXT.test(value));
}

const EMPTY = (v) => v === null || v === undefined || v === '';

// "6 Mar 2025, 3:57 PM" in `timeZone` (the dataset's; UTC when unknown or invalid),
// "6 Mar 2025" for dates, "January 2019" for months; null when `v` is not one.
export function formatTime(v, type, timeZone) {
  if (typeof v !== 'string') return null;
  const ymd = /^(\d{4})-(\d{2})(?:-(\d{2}))?/.exec(v);
  if (!ymd) return null;
  if (type === 'month' || (type === 'date' && !ymd[3])) {
    const at = Date.UTC(+ymd[1], +ymd[2] - 1, 1);
    return new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(at);
  }
  if (type === 'date') {
    const at = Date.UTC(+ymd[1], +ymd[2] - 1, +ymd[3]);
    return new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }).format(at);
  }
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return null;
  const opts = { day: 'numeric', month: 'short', year: 'numeric', hour: 'numeric', minute: '2-digit', hour12: true };
  let parts;
  try {
    parts = new Intl.DateTimeFormat('en-US', { ...opts, timeZone: timeZone || 'UTC' }).formatToParts(d);
  } catch {
    parts = new Intl.DateTimeFormat('en-US', { ...opts, timeZone: 'UTC' }).formatToParts(d);
  }
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  return `${p.day} ${p.month} ${p.year}, ${p.hour}:${p.minute} ${p.dayPeriod}`;
}

export function formatValue(v, name, display) {
  if (EMPTY(v)) return '—';
  const type = display?.timeFields?.[name];
  if (type) {
    const t = formatTime(v, type, display.timeZone);
    if (t) return t;
  }
  if (typeof v === 'number') return Number.isInteger(v) ? new Intl.NumberFormat('en').format(v) : String(+v.toFixed(6));
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// The popup's heading: the title field's value, else the category's, else the dataset.
export function featureTitle(props, config) {
  const display = config.display ?? {};
  const candidates = [display.titleField, config.category?.field];
  for (const f of candidates) if (f && !EMPTY(props?.[f])) return String(props[f]);
  return config.title;
}

// [name, shown text] of the fields to list: `popupFields` in order when the manifest
// names them, else every non-empty, non-technical field except the heading's.
export function shownFields(props, config) {
  const display = config.display ?? {};
  const names = display.popupFields?.length
    ? display.popupFields
    : Object.keys(props ?? {}).filter((k) => k !== display.titleField && !isTechnical(k, props[k]));
  return names.filter((k) => !EMPTY(props?.[k])).map((k) => [k, formatValue(props[k], k, display)]);
}

// A stack's category mix, commonest first: [[category, count], …].
export function stackMix(props) {
  try {
    const mix = JSON.parse(props.cat_mix ?? '{}');
    return Object.entries(mix).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  } catch {
    return [];
  }
}

// A cluster's category mix from its `count:<category>` properties, in words and in the
// legend's terms: the legend's categories present, commonest first, then "other" for the
// rest (categories past the legend, and members without a category), as the legend
// draws them grey. [[category or '', count], …] with '' for "other" last.
export function clusterMix(props, legendValues) {
  const shown = new Set(legendValues);
  const mix = [];
  let other = Number(props.point_count) || 0;
  for (const [k, v] of Object.entries(props ?? {})) {
    if (!k.startsWith('count:')) continue;
    const cat = k.slice(6);
    const n = Number(v) || 0;
    if (shown.has(cat) && n > 0) {
      mix.push([cat, n]);
      other -= n;
    }
  }
  mix.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (other > 0) mix.push(['', other]);
  return mix;
}

// "412 incidents: 200 Theft, 150 Burglary, 62 other", with `format` for the numbers.
export function clusterSummary(props, legendValues, noun, format) {
  const head = `${format(Number(props.point_count) || 0)} ${noun}`;
  const parts = clusterMix(props, legendValues).map(([c, n]) => `${format(n)} ${c || 'other'}`);
  return parts.length ? `${head}: ${parts.join(', ')}` : head;
}
