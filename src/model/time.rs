//! Parsing the date and time formats that open-data portals publish into UTC intervals.
//!
//! A value's precision becomes an interval: `2018-10` covers the whole month, `20160513`
//! the whole day, `3/14/2025 1:20` is an instant. Values without an offset are read in the
//! dataset's time zone (UTC unless configured), because portals publish local wall time.

use crate::model::TimeRange;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The formats Tessera recognises, in the order they are tried when inferring a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339 / ISO 8601 date-time, with or without an offset (`T` or space separator).
    Iso,
    /// `YYYY-MM-DD`.
    IsoDate,
    /// `YYYY-MM`, a whole month.
    YearMonth,
    /// `M/D/YYYY`, optionally followed by `H:MM[:SS]` and an optional `AM`/`PM`.
    UsSlash,
    /// `YYYYMMDD`: only inferred for columns named like a date, since it is also an integer.
    Compact,
    /// `MMDDYYYY`: likewise.
    CompactUs,
}

impl TimeFormat {
    pub const ALL: [TimeFormat; 6] = [
        TimeFormat::Iso,
        TimeFormat::IsoDate,
        TimeFormat::YearMonth,
        TimeFormat::UsSlash,
        TimeFormat::Compact,
        TimeFormat::CompactUs,
    ];

    /// Whether a value in this format can also be read as a plain integer.
    pub fn is_numeric_lookalike(self) -> bool {
        matches!(self, TimeFormat::Compact | TimeFormat::CompactUs)
    }

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Parses `s` in this format; `None` when it does not match.
    pub fn parse(self, s: &str, tz: &TimeZone) -> Option<TimeRange> {
        let s = s.trim();
        match self {
            TimeFormat::Iso => parse_iso(s, tz),
            // Separators are checked as bytes and fields taken with `get`: a value may be
            // any text (`Kraków`, `2024年`), and a byte index inside a character panics.
            TimeFormat::IsoDate => {
                let b = s.as_bytes();
                (b.len() == 10 && b[4] == b'-' && b[7] == b'-').then_some(())?;
                whole_day(parse_ymd(s.get(0..4)?, s.get(5..7)?, s.get(8..)?)?, tz)
            }
            TimeFormat::YearMonth => {
                (s.len() == 7 && s.as_bytes()[4] == b'-').then_some(())?;
                let d = parse_ymd(s.get(0..4)?, s.get(5..7)?, "01")?;
                let start = local(d.to_datetime(Time::midnight()), tz)?;
                let end = local(
                    d.checked_add(1.month()).ok()?.to_datetime(Time::midnight()),
                    tz,
                )?;
                Some(TimeRange {
                    start,
                    end: end - 1,
                })
            }
            TimeFormat::Compact => {
                (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
                whole_day(parse_ymd(&s[0..4], &s[4..6], &s[6..8])?, tz)
            }
            TimeFormat::CompactUs => {
                (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
                whole_day(parse_ymd(&s[4..8], &s[0..2], &s[2..4])?, tz)
            }
            TimeFormat::UsSlash => parse_us_slash(s, tz),
        }
    }
}

/// Formats a Unix time as RFC 3339 in UTC, the form in which date-times are served.
pub fn format_utc(secs: i64) -> String {
    match Timestamp::from_second(secs) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => String::new(),
    }
}

/// Parses a time zone name (`UTC`, `America/New_York`).
pub fn parse_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|e| format!("unknown time zone `{name}`: {e}"))
}

fn parse_ymd(y: &str, m: &str, d: &str) -> Option<Date> {
    let num = |s: &str| -> Option<i16> {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
        s.parse().ok()
    };
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    if !(1000..=9999).contains(&y) {
        return None;
    }
    Date::new(y, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()
}

fn local(dt: DateTime, tz: &TimeZone) -> Option<i64> {
    // Ambiguous wall times (DST fall-back) resolve to the earlier instant, gaps move forward.
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .ok()
        .map(|t| t.as_second())
}

fn whole_day(d: Date, tz: &TimeZone) -> Option<TimeRange> {
    let start = local(d.to_datetime(Time::midnight()), tz)?;
    let end = local(d.tomorrow().ok()?.to_datetime(Time::midnight()), tz)?;
    Some(TimeRange {
        start,
        end: end - 1,
    })
}

fn parse_iso(s: &str, tz: &TimeZone) -> Option<TimeRange> {
    // Must look like a date followed by a time, so that "2018" or "12" never match.
    if s.len() < 16 || s.as_bytes()[4] != b'-' || !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return None;
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        let t = ts.as_second();
        return Some(TimeRange { start: t, end: t });
    }
    let dt: DateTime = s.replace(' ', "T").parse().ok()?;
    let t = local(dt, tz)?;
    Some(TimeRange { start: t, end: t })
}

fn parse_us_slash(s: &str, tz: &TimeZone) -> Option<TimeRange> {
    let mut parts = s.split_whitespace();
    let date = parts.next()?;
    let mut dmy = date.split('/');
    let (m, d, y) = (dmy.next()?, dmy.next()?, dmy.next()?);
    if dmy.next().is_some() || y.len() != 4 || m.len() > 2 || d.len() > 2 {
        return None;
    }
    let date = parse_ymd(y, m, d)?;
    let Some(clock) = parts.next() else {
        return whole_day(date, tz);
    };
    let meridiem = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let mut hms = clock.split(':');
    let num = |p: Option<&str>| -> Option<i8> {
        let p = p?;
        (!p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
        p.parse().ok()
    };
    let mut h = num(hms.next())?;
    let min = num(hms.next())?;
    let sec = match hms.next() {
        Some(p) => num(Some(p))?,
        None => 0,
    };
    match meridiem.map(str::to_ascii_uppercase).as_deref() {
        None => {}
        Some("AM") if (1..=12).contains(&h) => h %= 12,
        Some("PM") if (1..=12).contains(&h) => h = h % 12 + 12,
        Some(_) => return None,
    }
    let t = local(date.to_datetime(Time::new(h, min, sec, 0).ok()?), tz)?;
    Some(TimeRange { start: t, end: t })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(f: TimeFormat, s: &str) -> Option<(String, String)> {
        f.parse(s, &TimeZone::UTC)
            .map(|r| (format_utc(r.start), format_utc(r.end)))
    }
    fn pair(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.into(), b.into()))
    }

    #[test]
    fn each_format_of_the_shared_data() {
        use TimeFormat::*;
        assert_eq!(
            utc(Iso, "2017-01-01T06:00:42Z"),
            pair("2017-01-01T06:00:42Z", "2017-01-01T06:00:42Z")
        );
        assert_eq!(
            utc(Iso, "2017-01-01T06:00:42+02:00"),
            pair("2017-01-01T04:00:42Z", "2017-01-01T04:00:42Z")
        );
        assert_eq!(
            utc(IsoDate, "2013-01-31"),
            pair("2013-01-31T00:00:00Z", "2013-01-31T23:59:59Z")
        );
        assert_eq!(
            utc(YearMonth, "2018-11"),
            pair("2018-11-01T00:00:00Z", "2018-11-30T23:59:59Z")
        );
        assert_eq!(
            utc(YearMonth, "2018-12"),
            pair("2018-12-01T00:00:00Z", "2018-12-31T23:59:59Z")
        );
        assert_eq!(
            utc(Compact, "20160513"),
            pair("2016-05-13T00:00:00Z", "2016-05-13T23:59:59Z")
        );
        assert_eq!(
            utc(CompactUs, "10142018"),
            pair("2018-10-14T00:00:00Z", "2018-10-14T23:59:59Z")
        );
        assert_eq!(
            utc(UsSlash, "3/14/2025 1:20"),
            pair("2025-03-14T01:20:00Z", "2025-03-14T01:20:00Z")
        );
        assert_eq!(
            utc(UsSlash, "05/05/2022 04:00:00 PM"),
            pair("2022-05-05T16:00:00Z", "2022-05-05T16:00:00Z")
        );
        assert_eq!(
            utc(UsSlash, "05/05/2022 12:10:00 AM"),
            pair("2022-05-05T00:10:00Z", "2022-05-05T00:10:00Z")
        );
        assert_eq!(
            utc(UsSlash, "5/5/2022"),
            pair("2022-05-05T00:00:00Z", "2022-05-05T23:59:59Z")
        );
    }

    #[test]
    fn rejects_lookalikes() {
        use TimeFormat::*;
        assert_eq!(utc(Iso, "2018"), None);
        assert_eq!(utc(IsoDate, "2018-13-01"), None);
        assert_eq!(utc(YearMonth, "2018-1"), None);
        assert_eq!(utc(Compact, "20161313"), None);
        assert_eq!(utc(Compact, "1234567"), None);
        assert_eq!(utc(CompactUs, "13142018"), None);
        assert_eq!(utc(UsSlash, "3/14/25 1:20"), None);
        assert_eq!(utc(UsSlash, "13/14/2025"), None);
        assert_eq!(utc(UsSlash, "3/14/2025 13:00 PM"), None);
        assert_eq!(utc(UsSlash, "N/A"), None);
    }

    /// Regression: `Kraków` is 7 bytes with `ó` across byte 4, which the YearMonth check
    /// sliced and panicked on (import exit 101, items `datetime=Kraków` a 500).
    #[test]
    fn multibyte_text_is_not_a_time_regression_krakow() {
        for s in [
            "Kraków",
            "Gdańsk",
            "2024年",
            "2024年1月",
            "20ó4-01",
            "2024-0ó",
            "ó",
            "2024-01-0ó",
        ] {
            for f in TimeFormat::ALL {
                assert_eq!(f.parse(s, &TimeZone::UTC), None, "{f:?} {s}");
            }
        }
    }

    #[test]
    fn naive_times_use_the_dataset_zone() {
        let ny = parse_zone("America/New_York").unwrap();
        let r = TimeFormat::UsSlash.parse("3/14/2025 1:20", &ny).unwrap();
        assert_eq!(format_utc(r.start), "2025-03-14T05:20:00Z");
        // An explicit offset wins over the zone.
        let r = TimeFormat::Iso.parse("2017-01-01T06:00:42Z", &ny).unwrap();
        assert_eq!(format_utc(r.start), "2017-01-01T06:00:42Z");
        assert!(parse_zone("Mars/Olympus").is_err());
    }
}
