//! iCalendar (RFC 5545, <https://www.rfc-editor.org/rfc/rfc5545>): one `VEVENT` per item
//! that has a time, so any items query can be subscribed to in a calendar application.
//!
//! Times are written in UTC (`DTSTART:20220505T130000Z`) rather than with a `TZID` and a
//! `VTIMEZONE`: a `VTIMEZONE` has to spell out the zone's daylight-saving rules, which
//! Tessera would have to derive from the tz database for the years of the data, and a
//! mistake there silently moves events by an hour. UTC instants are exact, and every
//! calendar application shows them in its user's zone. The dataset's zone is named in
//! `X-WR-TIMEZONE` as a hint. Whole local days (date-only data) are `VALUE=DATE` events,
//! whose `DTEND` is the day after the last one (RFC 5545 §3.6.1: the end is exclusive).
//!
//! Items without a time cannot be events: they are left out, and the calendar says how
//! many were in `X-TESSERA-SKIPPED` (iCalendar has no comments; an `X-` property is how
//! it carries what the standard does not name, §3.8.8.2).

use super::geojson::whole_days;
use super::{Collection, FeatureWriter};
use crate::model::{DatasetInfo, Value};
use crate::store::{StoredFeature, StoredGeometry};
use std::io::{self, Write};

/// Content lines are folded to at most this many octets, CRLF excluded (§3.1).
const LINE_OCTETS: usize = 75;

/// Field names that title an event, best first (compared ignoring case).
const TITLE_FIELDS: &[&str] = &["event name", "name", "title", "summary", "event"];

/// Words in a field name that make it part of an event's place.
const PLACE_WORDS: &[&str] = &[
    "location",
    "address",
    "borough",
    "place",
    "venue",
    "neighbourhood",
    "neighborhood",
];

#[derive(Debug)]
pub struct IcsWriter<W: Write> {
    out: W,
    /// Matching items without a time, counted before writing (the calendar's properties
    /// come before its events, so the writer cannot count them itself).
    skipped: Option<u64>,
    line: Vec<u8>,
    roles: Option<Roles>,
}

/// Which fields give an event's title and place.
#[derive(Debug)]
struct Roles {
    title: Option<usize>,
    place: Vec<usize>,
    host: String,
    stamp: String,
}

impl<W: Write> IcsWriter<W> {
    pub fn new(out: W, skipped: Option<u64>) -> Self {
        Self {
            out,
            skipped,
            line: Vec::with_capacity(256),
            roles: None,
        }
    }

    /// Writes one content line, folded, ending in CRLF.
    fn put(&mut self, name: &str, value: &str) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(name.as_bytes());
        self.line.push(b':');
        self.line.extend_from_slice(value.as_bytes());
        let mut folded = Vec::with_capacity(self.line.len() + 8);
        fold(&self.line, &mut folded);
        self.out.write_all(&folded)
    }
}

/// Appends `line` to `out` folded at [`LINE_OCTETS`]: a CRLF and a space before each
/// continuation, never inside a UTF-8 character (`line` is UTF-8, so a cut is only made
/// before a byte that does not continue a character).
pub fn fold(line: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    let mut room = LINE_OCTETS;
    while line.len() - start > room {
        let mut cut = start + room;
        while cut > start && (line[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        out.extend_from_slice(&line[start..cut]);
        out.extend_from_slice(b"\r\n ");
        start = cut;
        room = LINE_OCTETS - 1; // the leading space counts
    }
    out.extend_from_slice(&line[start..]);
    out.extend_from_slice(b"\r\n");
}

/// A TEXT value escaped (§3.3.11): backslash, semicolon, comma and newline; other
/// control characters, which TEXT may not hold, become spaces.
pub fn escape_text(s: &str) -> String {
    let mut e = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => e.push_str("\\\\"),
            ';' => e.push_str("\\;"),
            ',' => e.push_str("\\,"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => e.push_str("\\n"),
            '\t' => e.push('\t'),
            c if c.is_control() => e.push(' '),
            c => e.push(c),
        }
    }
    e
}

/// A UTC instant in iCalendar's form (`20220505T130000Z`).
fn utc(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Text(s) if s.trim().is_empty() => None,
        Value::Text(s) => Some(s.trim().to_owned()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
    }
}

fn roles(c: &Collection<'_>) -> Roles {
    let ds = c.ds;
    let lower: Vec<String> = ds
        .fields
        .iter()
        .map(|f| f.name.to_ascii_lowercase())
        .collect();
    let title = TITLE_FIELDS
        .iter()
        .find_map(|t| lower.iter().position(|n| n == t))
        .or_else(|| lower.iter().position(|n| n.contains("name")));
    let place = (0..lower.len())
        .filter(|&i| Some(i) != title && PLACE_WORDS.iter().any(|w| lower[i].contains(w)))
        .collect();
    let host = c
        .base
        .split_once("://")
        .map_or(c.base, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    // The dataset's version time: the same data gives the same bytes.
    let stamp = ds
        .updated
        .parse::<jiff::Timestamp>()
        .map(|t| utc(t.as_second()))
        .unwrap_or_else(|_| utc(0));
    Roles {
        title,
        place,
        host,
        stamp,
    }
}

impl<W: Write> FeatureWriter<W> for IcsWriter<W> {
    fn content_type(&self) -> &'static str {
        "text/calendar; charset=utf-8"
    }
    fn extension(&self) -> &'static str {
        "ics"
    }
    fn begin(&mut self, c: &Collection<'_>) -> io::Result<()> {
        self.roles = Some(roles(c));
        self.put("BEGIN", "VCALENDAR")?;
        self.put(
            "PRODID",
            &format!("-//Tessera//Tessera {}//EN", env!("CARGO_PKG_VERSION")),
        )?;
        self.put("VERSION", "2.0")?;
        self.put("CALSCALE", "GREGORIAN")?;
        self.put("METHOD", "PUBLISH")?;
        self.put("X-WR-CALNAME", &escape_text(&c.ds.meta.title))?;
        if let Some(z) = c.ds.timezone.as_deref() {
            self.put("X-WR-TIMEZONE", &escape_text(z))?;
        }
        if let Some(n) = self.skipped {
            self.put("X-TESSERA-SKIPPED", &n.to_string())?;
        }
        Ok(())
    }

    fn feature(&mut self, c: &Collection<'_>, f: StoredFeature) -> io::Result<()> {
        let Some(t) = f.time else {
            return Ok(());
        };
        let roles = self.roles.take().unwrap_or_else(|| roles(c));
        let result = write_event(self, c.ds, c.base, &roles, &f, t);
        self.roles = Some(roles);
        result
    }

    fn finish(mut self: Box<Self>, _: &Collection<'_>) -> io::Result<W> {
        self.put("END", "VCALENDAR")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_event<W: Write>(
    w: &mut IcsWriter<W>,
    ds: &DatasetInfo,
    base: &str,
    roles: &Roles,
    f: &StoredFeature,
    t: crate::model::TimeRange,
) -> io::Result<()> {
    w.put("BEGIN", "VEVENT")?;
    w.put(
        "UID",
        &escape_text(&format!("{}.{}@{}", f.id, ds.id, roles.host)),
    )?;
    w.put("DTSTAMP", &roles.stamp)?;
    match whole_days(ds, t) {
        Some((first, last)) => {
            let day_after = last.tomorrow().unwrap_or(last);
            w.put("DTSTART;VALUE=DATE", &first.strftime("%Y%m%d").to_string())?;
            w.put(
                "DTEND;VALUE=DATE",
                &day_after.strftime("%Y%m%d").to_string(),
            )?;
        }
        None => {
            w.put("DTSTART", &utc(t.start))?;
            // An instant has no DTEND: the event then takes no time (§3.6.1).
            if t.end > t.start {
                w.put("DTEND", &utc(t.end))?;
            }
        }
    }
    let value = |i: usize| f.values.get(i).and_then(text_of);
    let summary = roles
        .title
        .and_then(value)
        .or_else(|| {
            let cat = ds.meta.category.as_deref()?;
            value(ds.field_index(cat)?)
        })
        .unwrap_or_else(|| format!("{} {}", ds.meta.title, f.id));
    w.put("SUMMARY", &escape_text(&summary))?;
    let place: Vec<String> = roles.place.iter().filter_map(|&i| value(i)).collect();
    if !place.is_empty() {
        w.put("LOCATION", &escape_text(&place.join(", ")))?;
    }
    if let Some(StoredGeometry::Point { lon, lat }) = f.geometry {
        w.put("GEO", &format!("{lat};{lon}"))?;
    }
    let description: Vec<String> = ds
        .fields
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != roles.title && !roles.place.contains(i))
        .filter_map(|(i, field)| Some(format!("{}: {}", field.name, value(i)?)))
        .collect();
    if !description.is_empty() {
        w.put("DESCRIPTION", &escape_text(&description.join("\n")))?;
    }
    let id = serde_urlencoded::to_string([("", &f.id)]).unwrap_or_default();
    w.put(
        "URL",
        &format!("{base}/collections/{}/items/{}", ds.id, &id[1..]),
    )?;
    w.put("END", "VEVENT")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unfold(b: &[u8]) -> Vec<u8> {
        String::from_utf8(b.to_vec())
            .unwrap()
            .replace("\r\n ", "")
            .into_bytes()
    }

    #[test]
    fn folding_keeps_lines_short_and_characters_whole() {
        // 2-, 3- and 4-byte characters at every offset around the fold.
        for pad in 0..4 {
            let line = format!(
                "SUMMARY:{}{}",
                "x".repeat(pad),
                "Kraków São Paulo 東京 🎉 ".repeat(20)
            );
            let mut out = Vec::new();
            fold(line.as_bytes(), &mut out);
            let text = std::str::from_utf8(&out).expect("every fold on a character boundary");
            assert!(text.ends_with("\r\n"));
            for l in text.trim_end_matches("\r\n").split("\r\n") {
                assert!(l.len() <= LINE_OCTETS, "{} octets: {l}", l.len());
            }
            assert!(text.matches("\r\n ").count() >= 4);
            assert_eq!(unfold(&out), format!("{line}\r\n").into_bytes());
        }
        let mut short = Vec::new();
        fold(b"VERSION:2.0", &mut short);
        assert_eq!(short, b"VERSION:2.0\r\n");
    }

    #[test]
    fn text_escaping_covers_what_rfc_5545_reserves() {
        assert_eq!(
            escape_text("a\\b;c,d\ne\r\nf\u{7}"),
            "a\\\\b\\;c\\,d\\ne\\nf "
        );
        assert_eq!(escape_text("Kraków: 1"), "Kraków: 1");
    }
}
