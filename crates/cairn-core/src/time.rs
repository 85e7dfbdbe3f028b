//! Date parsing with Elasticsearch's default semantics.
//!
//! Times are carried as microseconds since the Unix epoch (UTC). The default format,
//! as in Elasticsearch, is `strict_date_optional_time||epoch_millis`; Cairn also accepts
//! a space instead of the `T` separator, which many shippers write. A mapping's `format`
//! may name several formats separated by `||`: the named formats `epoch_millis`,
//! `epoch_second`, `strict_date_optional_time`, `date_optional_time`,
//! `strict_date_time`, `date_time`, `strict_date`, `date`, `basic_date_time` and
//! `basic_date`, or a Java-style pattern such as `yyyy-MM-dd HH:mm:ss.SSS` (letters
//! `yyyy`/`uuuu`, `MM`, `dd`, `HH`, `mm`, `ss`, `S…`, `Z`/`X…`/`XXX`, quoted literals).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

pub const MICROS_PER_MILLI: i64 = 1_000;
pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;

/// The index keeps dates as i64 nanoseconds (tantivy's `DateTime`), so only dates from
/// about 1677-09-21 to 2262-04-11 can be indexed; a date value outside that range is a
/// malformed date for a `date` field (found by fuzzing: it overflowed).
pub const MIN_INDEXABLE_MICROS: i64 = i64::MIN / 1_000;
pub const MAX_INDEXABLE_MICROS: i64 = i64::MAX / 1_000;

/// Whether a timestamp in microseconds can be indexed as a date.
pub fn indexable_micros(t: i64) -> bool {
    (MIN_INDEXABLE_MICROS..=MAX_INDEXABLE_MICROS).contains(&t)
}

/// Current time in microseconds. `CAIRN_NOW` (RFC 3339 or epoch millis) overrides the
/// clock, so tests over old sample data behave the same on any day.
pub fn now_micros() -> i64 {
    if let Ok(v) = std::env::var("CAIRN_NOW") {
        if let Some(t) = parse_default(&v) {
            return t;
        }
    }
    Utc::now().timestamp_micros()
}

/// Parses a JSON value as a date with the default format.
pub fn parse_value(v: &Value, format: Option<&str>) -> Option<i64> {
    match v {
        Value::String(s) => match format {
            Some(f) => parse_with_format(s, f),
            None => parse_default(s),
        },
        Value::Number(n) => {
            let epoch_second =
                format.is_some_and(|f| f.split("||").next().map(str::trim) == Some("epoch_second"));
            let f = n.as_f64()?;
            if !f.is_finite() {
                return None;
            }
            let micros = if epoch_second {
                f * MICROS_PER_SEC as f64
            } else {
                f * MICROS_PER_MILLI as f64
            };
            if micros.abs() > 9.0e18 {
                return None;
            }
            Some(micros as i64)
        }
        _ => None,
    }
}

/// `strict_date_optional_time||epoch_millis` (plus a space as date/time separator).
pub fn parse_default(s: &str) -> Option<i64> {
    parse_iso(s).or_else(|| parse_epoch(s, MICROS_PER_MILLI))
}

fn parse_epoch(s: &str, unit_micros: i64) -> Option<i64> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    let micros = f * unit_micros as f64;
    if !micros.is_finite() || micros.abs() > 9.0e18 {
        return None;
    }
    Some(micros as i64)
}

/// Parses with an Elasticsearch `format` string (`a||b||c`).
pub fn parse_with_format(s: &str, format: &str) -> Option<i64> {
    for f in format.split("||") {
        let f = f.trim();
        let r = match f {
            "epoch_millis" => parse_epoch(s, MICROS_PER_MILLI),
            "epoch_second" => parse_epoch(s, MICROS_PER_SEC),
            "strict_date_optional_time"
            | "date_optional_time"
            | "strict_date_time"
            | "date_time"
            | "strict_date_optional_time_nanos"
            | "iso8601" => parse_iso(s),
            "strict_date" | "date" | "yyyy-MM-dd" => parse_iso(s).filter(|_| s.len() == 10),
            "basic_date_time" => parse_pattern(s, "yyyyMMdd'T'HHmmss.SSSZ"),
            "basic_date_time_no_millis" => parse_pattern(s, "yyyyMMdd'T'HHmmssZ"),
            "basic_date" => parse_pattern(s, "yyyyMMdd"),
            pattern => parse_pattern(s, pattern),
        };
        if r.is_some() {
            return r;
        }
    }
    None
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let end = self.i.checked_add(n)?;
        let slice = self.b.get(self.i..end)?;
        let mut v = 0u32;
        for &c in slice {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u32;
        }
        self.i = end;
        Some(v)
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

/// ISO 8601 as `strict_date_optional_time`: `yyyy[-MM[-dd[THH[:mm[:ss[.f]]]]]][zone]`.
pub fn parse_iso(s: &str) -> Option<i64> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = c.digits(4)? as i32;
    let (mut month, mut day) = (1, 1);
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0i64);
    let mut offset_secs: i32 = 0;
    if c.eat(b'-') {
        month = c.digits(2)?;
        if c.eat(b'-') {
            day = c.digits(2)?;
            if c.eat(b'T') || c.eat(b' ') {
                hour = c.digits(2)?;
                if c.eat(b':') {
                    minute = c.digits(2)?;
                    if c.eat(b':') {
                        second = c.digits(2)?;
                        if c.eat(b'.') || c.eat(b',') {
                            let start = c.i;
                            let mut frac: i64 = 0;
                            let mut n = 0;
                            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                                if n < 6 {
                                    frac = frac * 10 + (d - b'0') as i64;
                                }
                                n += 1;
                                c.i += 1;
                            }
                            if c.i == start || n > 9 {
                                return None;
                            }
                            for _ in n..6 {
                                frac *= 10;
                            }
                            micros = frac;
                        }
                    }
                }
                offset_secs = parse_zone(&mut c)?;
            } else {
                offset_secs = parse_zone(&mut c)?;
            }
        }
    }
    if !c.done() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let t = date.and_hms_opt(hour, minute, second)?;
    let secs = t.and_utc().timestamp() - offset_secs as i64;
    secs.checked_mul(MICROS_PER_SEC)?.checked_add(micros)
}

fn parse_zone(c: &mut Cursor) -> Option<i32> {
    match c.peek() {
        None => Some(0),
        Some(b'Z') | Some(b'z') => {
            c.i += 1;
            Some(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let h = c.digits(2)? as i32;
            c.eat(b':');
            let m = if c.done() { 0 } else { c.digits(2)? as i32 };
            let off = h * 3600 + m * 60;
            Some(if sign == b'-' { -off } else { off })
        }
        _ => None,
    }
}

/// A Java `DateTimeFormatter`-style pattern, translated to chrono.
fn parse_pattern(s: &str, pattern: &str) -> Option<i64> {
    let mut fmt = String::new();
    let mut has_zone = false;
    let mut has_time = false;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '%' {
                    fmt.push_str("%%");
                } else {
                    fmt.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == ch {
            n += 1;
        }
        match ch {
            'y' | 'u' => fmt.push_str(if n == 2 { "%y" } else { "%Y" }),
            'M' => fmt.push_str(match n {
                1 | 2 => "%m",
                3 => "%b",
                _ => "%B",
            }),
            'd' => fmt.push_str("%d"),
            'H' => {
                fmt.push_str("%H");
                has_time = true
            }
            'm' => fmt.push_str("%M"),
            's' => fmt.push_str("%S"),
            'S' => fmt.push_str("%.f"),
            'E' => fmt.push_str(if n >= 4 { "%A" } else { "%a" }),
            'Z' | 'X' | 'x' => {
                fmt.push_str(if n >= 3 { "%:z" } else { "%z" });
                has_zone = true;
            }
            '%' => fmt.push_str("%%"),
            other => {
                for _ in 0..n {
                    fmt.push(other);
                }
            }
        }
        i += n;
    }
    // chrono's %.f expects the dot to be part of the directive.
    let fmt = fmt.replace(".%.f", "%.f").replace(",%.f", "%.f");
    if has_zone {
        let s_norm = s.replace('Z', "+0000");
        return DateTime::parse_from_str(&s_norm, &fmt)
            .ok()
            .map(|d| d.timestamp_micros());
    }
    if has_time {
        return NaiveDateTime::parse_from_str(s, &fmt)
            .ok()
            .map(|d| d.and_utc().timestamp_micros());
    }
    NaiveDate::parse_from_str(s, &fmt)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_micros())
}

/// Formats microseconds as RFC 3339 with millisecond precision (`2024-01-02T03:04:05.678Z`).
pub fn format_millis(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => micros.to_string(),
    }
}

/// Parses a duration such as `30s`, `1d`, `500ms`, `2h`, `7d` into microseconds
/// (Elasticsearch's time units: d, h, m, s, ms, micros, nanos).
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit_micros: f64 = match unit {
        "d" => 86_400e6,
        "h" => 3_600e6,
        "m" => 60e6,
        "s" => 1e6,
        "ms" => 1e3,
        "micros" => 1.0,
        "nanos" => 1e-3,
        _ => return None,
    };
    let v = n * unit_micros;
    if v.is_finite() && (0.0..9.0e18).contains(&v) {
        Some(v as i64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms() {
        assert_eq!(parse_default("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_default("1970-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(parse_default("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_default("1970-01-01 00:00:02"), Some(2_000_000));
        assert_eq!(parse_default("1970-01-02"), Some(MICROS_PER_DAY));
        assert_eq!(
            parse_default("1970-01-01T00:00:00.123456789Z"),
            Some(123_456)
        );
        // As in Elasticsearch, a bare 4-digit string is a year; longer digit runs are epoch millis.
        assert_eq!(parse_default("15000"), Some(15_000_000));
        assert_eq!(parse_default("nope"), None);
        assert_eq!(parse_default("2024-13-01"), None);
    }

    #[test]
    fn patterns() {
        assert_eq!(
            parse_with_format("1970/01/01 00:00:03", "yyyy/MM/dd HH:mm:ss"),
            Some(3_000_000)
        );
        assert_eq!(parse_with_format("5", "epoch_second"), Some(5_000_000));
        assert_eq!(
            parse_with_format("x||1970-01-01", "epoch_millis||yyyy-MM-dd"),
            None
        );
        assert_eq!(
            parse_with_format("1970-01-01", "epoch_millis||yyyy-MM-dd"),
            Some(0)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(1_000_000));
        assert_eq!(parse_duration("7d"), Some(7 * MICROS_PER_DAY));
        assert_eq!(parse_duration("10x"), None);
    }
}
