//! Elasticsearch date math and date parsing.
//!
//! - Expressions: `now`, `now-15m/m`, `2024-01-01||+1M/d`; units `y M w d h H m s`;
//!   `+`/`-` with an optional count (`+d` = `+1d`); `/unit` rounds.
//! - Rounding direction follows ES: bounds that include the rounded interval's end
//!   (`lte`, and `gt`, which excludes the whole interval) round *up* to the last
//!   millisecond of the interval; `gte` and `lt` round down. A date without math that
//!   omits fields (`2024-01-01` for `lte`) is filled with the maximum values when rounding
//!   up, as ES's round-up parser does.
//! - Time zones: fixed offsets (`+01:00`, `-0800`, `Z`, `UTC`, `GMT+2`) and IANA names
//!   (`Europe/Paris`) apply to dates without an explicit offset and to rounding.
//! - Formats: `strict_date_optional_time` / `date_optional_time` (ISO 8601 with optional
//!   parts), `epoch_millis`, `epoch_second`, ES's named formats (`basic_date`,
//!   `basic_date_time`, `date_time`, `date_hour_minute_second`, `year_month`, ...) and
//!   Java-style patterns (`yyyy-MM-dd HH:mm:ss`, `dd/MMM/yyyy:HH:mm:ss Z`, quotes for
//!   literals), combined with `||`. The default is `strict_date_optional_time||epoch_millis`.
//!
//! Time is always injected (`now_millis`), never read from the clock.

use std::ops::Bound;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, Months, NaiveDate, NaiveDateTime,
    NaiveTime, TimeZone as _, Timelike, Utc,
};
use serde_json::Value;

use crate::error::QueryError;

/// ES's default date format.
pub const DEFAULT_DATE_FORMAT: &str = "strict_date_optional_time||epoch_millis";

/// A time zone: a fixed offset or an IANA zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeZone {
    /// Fixed offset from UTC.
    Fixed(FixedOffset),
    /// IANA zone with its DST rules.
    Named(chrono_tz::Tz),
}

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone::utc()
    }
}

impl TimeZone {
    /// UTC.
    pub fn utc() -> TimeZone {
        TimeZone::Fixed(chrono::Offset::fix(&Utc))
    }

    /// Local wall-clock time of an instant.
    pub fn to_local(&self, millis: i64) -> Option<NaiveDateTime> {
        let utc = DateTime::<Utc>::from_timestamp_millis(millis)?;
        Some(match self {
            TimeZone::Fixed(o) => utc.with_timezone(o).naive_local(),
            TimeZone::Named(tz) => utc.with_timezone(tz).naive_local(),
        })
    }

    /// The instant of a local wall-clock time (earliest on overlaps; on a DST gap, the
    /// time is moved forward by the gap, like java.time).
    pub fn from_local(&self, local: &NaiveDateTime) -> Option<i64> {
        fn pick<T: chrono::TimeZone>(r: LocalResult<DateTime<T>>) -> Option<i64> {
            match r {
                LocalResult::Single(d) => Some(d.timestamp_millis()),
                LocalResult::Ambiguous(a, _) => Some(a.timestamp_millis()),
                LocalResult::None => None,
            }
        }
        let direct = match self {
            TimeZone::Fixed(o) => pick(o.from_local_datetime(local)),
            TimeZone::Named(tz) => pick(tz.from_local_datetime(local)),
        };
        if direct.is_some() {
            return direct;
        }
        // DST gap: try one hour later (every real gap is <= 1h... or 30 min; try both).
        for mins in [30i64, 60, 120] {
            let shifted = local.checked_add_signed(Duration::minutes(mins))?;
            let r = match self {
                TimeZone::Fixed(o) => pick(o.from_local_datetime(&shifted)),
                TimeZone::Named(tz) => pick(tz.from_local_datetime(&shifted)),
            };
            if r.is_some() {
                return r;
            }
        }
        None
    }
}

/// Parse a time zone as ES accepts it (`+01:00`, `-08`, `+0530`, `Z`, `UTC`, `GMT+1`,
/// `Europe/Paris`).
pub fn parse_time_zone(s: &str) -> Result<TimeZone, QueryError> {
    let t = s.trim();
    let bad = || QueryError::illegal_argument(format!("Unknown time-zone ID: {s}"));
    if t.eq_ignore_ascii_case("Z")
        || t.eq_ignore_ascii_case("UTC")
        || t.eq_ignore_ascii_case("GMT")
        || t.eq_ignore_ascii_case("UT")
    {
        return Ok(TimeZone::utc());
    }
    let rest = ["UTC", "GMT", "UT"]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .filter(|r| r.starts_with('+') || r.starts_with('-'))
        .unwrap_or(t);
    if rest.starts_with('+') || rest.starts_with('-') {
        let chars: Vec<char> = rest.chars().collect();
        return parse_offset(&chars, 0)
            .filter(|(_, used)| *used == chars.len())
            .map(|(o, _)| TimeZone::Fixed(o))
            .ok_or_else(bad);
    }
    t.parse::<chrono_tz::Tz>()
        .map(TimeZone::Named)
        .map_err(|_| bad())
}

/// Parse `±HH`, `±HHmm`, `±HH:mm` (and `±H`) at `at`: (offset, chars used).
fn parse_offset(chars: &[char], at: usize) -> Option<(FixedOffset, usize)> {
    let sign = match chars.get(at)? {
        '+' => 1,
        '-' | '\u{2212}' => -1,
        _ => return None,
    };
    let mut i = at + 1;
    let digits = |i: usize, n: usize| -> Option<u32> {
        let s: String = chars.get(i..i + n)?.iter().collect();
        if s.chars().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (h, hl) = match digits(i, 2) {
        Some(h) => (h, 2),
        None => (digits(i, 1)?, 1),
    };
    i += hl;
    let mut m = 0;
    if chars.get(i) == Some(&':') {
        m = digits(i + 1, 2)?;
        i += 3;
    } else if let Some(mm) = digits(i, 2) {
        m = mm;
        i += 2;
    }
    if h > 18 || m > 59 {
        return None;
    }
    let secs = sign * (h as i32 * 3600 + m as i32 * 60);
    Some((FixedOffset::east_opt(secs)?, i - at))
}

/// How precise a parsed date was (for round-up filling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Precision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Fraction,
    Exact,
}

/// Components parsed from a date string.
#[derive(Debug, Default)]
struct Parts {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    hour: Option<u32>,
    minute: Option<u32>,
    second: Option<u32>,
    nanos: Option<u32>,
    pm: Option<bool>,
    offset: Option<FixedOffset>,
}

impl Parts {
    fn precision(&self) -> Precision {
        if self.nanos.is_some() {
            Precision::Fraction
        } else if self.second.is_some() {
            Precision::Second
        } else if self.minute.is_some() {
            Precision::Minute
        } else if self.hour.is_some() {
            Precision::Hour
        } else if self.day.is_some() {
            Precision::Day
        } else if self.month.is_some() {
            Precision::Month
        } else {
            Precision::Year
        }
    }

    /// Resolve to epoch millis. Round-up fills missing fields with their maximum.
    fn to_millis(&self, tz: &TimeZone, round_up: bool) -> Option<i64> {
        let year = self.year.unwrap_or(1970);
        let month =
            self.month
                .unwrap_or(if round_up && self.month.is_none() && self.year.is_some() {
                    12
                } else {
                    1
                });
        let date_first = NaiveDate::from_ymd_opt(year, month, 1)?;
        let day = match self.day {
            Some(d) => d,
            None if round_up && self.year.is_some() => last_day_of_month(date_first)?,
            None => 1,
        };
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        let mut hour = self.hour.unwrap_or(if round_up { 23 } else { 0 });
        if let Some(pm) = self.pm {
            if hour > 12 || hour == 0 {
                return None;
            }
            hour %= 12;
            if pm {
                hour += 12;
            }
        }
        let minute = self.minute.unwrap_or(if round_up { 59 } else { 0 });
        let second = self.second.unwrap_or(if round_up { 59 } else { 0 });
        let nanos = self.nanos.unwrap_or(if round_up { 999_999_999 } else { 0 });
        let time = NaiveTime::from_hms_nano_opt(hour, minute, second.min(59), nanos)?;
        let local = NaiveDateTime::new(date, time);
        let millis = match self.offset {
            Some(o) => TimeZone::Fixed(o).from_local(&local)?,
            None => tz.from_local(&local)?,
        };
        Some(millis)
    }
}

fn last_day_of_month(first: NaiveDate) -> Option<u32> {
    let next = first.checked_add_months(Months::new(1))?;
    Some(next.pred_opt()?.day())
}

/// Cursor over a date string.
struct Scan<'a> {
    c: &'a [char],
    i: usize,
}

impl Scan<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i < self.c.len() && self.i - start < max && self.c[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        let s: String = self.c[start..self.i].iter().collect();
        s.parse().ok()
    }
    fn eat(&mut self, ch: char) -> bool {
        if self.c.get(self.i) == Some(&ch) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i >= self.c.len()
    }
    fn fraction(&mut self) -> Option<u32> {
        let start = self.i;
        while self.i < self.c.len() && self.i - start < 9 && self.c[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 {
            return None;
        }
        let s: String = self.c[start..self.i].iter().collect();
        let v: u32 = s.parse().ok()?;
        Some(v * 10u32.pow(9 - n as u32))
    }
    fn offset(&mut self) -> Option<FixedOffset> {
        if self.eat('Z') || self.eat('z') {
            return FixedOffset::east_opt(0);
        }
        let (o, used) = parse_offset(self.c, self.i)?;
        self.i += used;
        Some(o)
    }
}

/// ISO 8601 with optional parts (`strict_date_optional_time`; `strict` = fixed widths).
fn parse_iso(s: &str, strict: bool) -> Option<Parts> {
    let chars: Vec<char> = s.chars().collect();
    let mut sc = Scan { c: &chars, i: 0 };
    let mut p = Parts::default();
    let neg = sc.eat('-');
    let y = sc.digits(if strict { 4 } else { 1 }, 9)? as i32;
    p.year = Some(if neg { -y } else { y });
    let w = |strict: bool| if strict { 2 } else { 1 };
    if sc.eat('-') {
        p.month = Some(sc.digits(w(strict), 2)?);
        if sc.eat('-') {
            p.day = Some(sc.digits(w(strict), 2)?);
        }
    }
    if sc.eat('T') || (!strict && sc.eat(' ')) {
        p.day?;
        p.hour = Some(sc.digits(w(strict), 2)?);
        if sc.eat(':') {
            p.minute = Some(sc.digits(w(strict), 2)?);
            if sc.eat(':') {
                p.second = Some(sc.digits(w(strict), 2)?);
                if sc.eat('.') || sc.eat(',') {
                    p.nanos = Some(sc.fraction()?);
                }
            }
        }
        if !sc.done() {
            p.offset = Some(sc.offset()?);
        }
    } else if !sc.done() && p.day.is_some() {
        // A date followed directly by an offset (`2024-01-01Z`) is accepted by ES.
        p.offset = Some(sc.offset()?);
    }
    if !sc.done() {
        return None;
    }
    Some(p)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const MONTHS_FULL: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAYS_FULL: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Parse with a Java-style pattern (`yyyy-MM-dd'T'HH:mm:ss.SSSZ`).
fn parse_pattern(s: &str, pattern: &str) -> Option<Parts> {
    let chars: Vec<char> = s.chars().collect();
    let pat: Vec<char> = pattern.chars().collect();
    let mut sc = Scan { c: &chars, i: 0 };
    let mut p = Parts::default();
    let mut k = 0;
    while k < pat.len() {
        let ch = pat[k];
        if ch == '\'' {
            // quoted literal ('' is a quote)
            k += 1;
            if pat.get(k) == Some(&'\'') {
                if !sc.eat('\'') {
                    return None;
                }
                k += 1;
                continue;
            }
            while k < pat.len() && pat[k] != '\'' {
                if !sc.eat(pat[k]) {
                    return None;
                }
                k += 1;
            }
            k += 1;
            continue;
        }
        if !ch.is_ascii_alphabetic() {
            if !sc.eat(ch) {
                return None;
            }
            k += 1;
            continue;
        }
        let mut n = 1;
        while pat.get(k + n) == Some(&ch) {
            n += 1;
        }
        k += n;
        match ch {
            'y' | 'u' | 'Y' => {
                if n == 2 {
                    p.year = Some(2000 + sc.digits(2, 2)? as i32);
                } else {
                    let neg = sc.eat('-');
                    // Adjacent numeric fields (`yyyyMMdd`) bound the year to its width.
                    let max = if pat.get(k).is_some_and(|c| c.is_ascii_alphabetic()) {
                        n.max(4)
                    } else {
                        9
                    };
                    let y = sc.digits(n.min(4), max)? as i32;
                    p.year = Some(if neg { -y } else { y });
                }
            }
            'M' | 'L' => {
                if n >= 3 {
                    let rest: String = chars[sc.i..].iter().collect::<String>().to_lowercase();
                    let list: &[&str] = if n == 3 { &MONTHS } else { &MONTHS_FULL };
                    let idx = list.iter().position(|m| rest.starts_with(m))?;
                    sc.i += list[idx].chars().count();
                    p.month = Some(idx as u32 + 1);
                } else {
                    p.month = Some(sc.digits(n, 2)?);
                }
            }
            'd' => p.day = Some(sc.digits(n, 2)?),
            'H' | 'k' => p.hour = Some(sc.digits(n, 2)?),
            'h' | 'K' => p.hour = Some(sc.digits(n, 2)?),
            'a' => {
                let rest: String = chars[sc.i..]
                    .iter()
                    .take(2)
                    .collect::<String>()
                    .to_lowercase();
                p.pm = Some(match rest.as_str() {
                    "am" => false,
                    "pm" => true,
                    _ => return None,
                });
                sc.i += 2;
            }
            'm' => p.minute = Some(sc.digits(n, 2)?),
            's' => p.second = Some(sc.digits(n, 2)?),
            'S' | 'n' => p.nanos = Some(sc.fraction()?),
            'E' => {
                let rest: String = chars[sc.i..].iter().collect::<String>().to_lowercase();
                let list: &[&str] = if n >= 4 { &DAYS_FULL } else { &DAYS };
                let idx = list.iter().position(|d| rest.starts_with(d))?;
                sc.i += list[idx].chars().count();
            }
            'Z' | 'X' | 'x' | 'O' => {
                if ch == 'O' {
                    for pre in ["GMT", "UTC"] {
                        let rest: String = chars[sc.i..].iter().take(3).collect();
                        if rest == pre {
                            sc.i += 3;
                        }
                    }
                    if sc.done() {
                        p.offset = FixedOffset::east_opt(0);
                        continue;
                    }
                }
                p.offset = Some(sc.offset()?);
            }
            _ => return None,
        }
    }
    if !sc.done() {
        return None;
    }
    if p.year.is_none() && (p.month.is_some() || p.day.is_some()) {
        p.year = Some(1970);
    }
    Some(p)
}

/// ES named formats as Java patterns.
fn named_pattern(name: &str) -> Option<&'static str> {
    let n = name.strip_prefix("strict_").unwrap_or(name);
    Some(match n {
        "basic_date" => "yyyyMMdd",
        "basic_date_time" => "yyyyMMdd'T'HHmmss.SSSZ",
        "basic_date_time_no_millis" => "yyyyMMdd'T'HHmmssZ",
        "basic_time" => "HHmmss.SSSZ",
        "basic_time_no_millis" => "HHmmssZ",
        "basic_t_time" => "'T'HHmmss.SSSZ",
        "basic_t_time_no_millis" => "'T'HHmmssZ",
        "date" | "year_month_day" => "yyyy-MM-dd",
        "date_hour" => "yyyy-MM-dd'T'HH",
        "date_hour_minute" => "yyyy-MM-dd'T'HH:mm",
        "date_hour_minute_second" => "yyyy-MM-dd'T'HH:mm:ss",
        "date_hour_minute_second_millis" | "date_hour_minute_second_fraction" => {
            "yyyy-MM-dd'T'HH:mm:ss.SSS"
        }
        "date_time" => "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
        "date_time_no_millis" => "yyyy-MM-dd'T'HH:mm:ssZ",
        "hour" => "HH",
        "hour_minute" => "HH:mm",
        "hour_minute_second" => "HH:mm:ss",
        "hour_minute_second_millis" | "hour_minute_second_fraction" => "HH:mm:ss.SSS",
        "time" => "HH:mm:ss.SSSZ",
        "time_no_millis" => "HH:mm:ssZ",
        "t_time" => "'T'HH:mm:ss.SSSZ",
        "t_time_no_millis" => "'T'HH:mm:ssZ",
        "year" => "yyyy",
        "year_month" => "yyyy-MM",
        _ => return None,
    })
}

fn parse_epoch(s: &str, unit_millis: f64) -> Option<(i64, bool)> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '.')
    {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some((i.checked_mul(unit_millis as i64)?, true));
    }
    let f = t.parse::<f64>().ok()?;
    let v = (f * unit_millis).floor();
    if !v.is_finite() || v.abs() > 9.0e18 {
        return None;
    }
    Some((v as i64, true))
}

/// Parse a date (no math) to epoch millis with `format` (`a||b`; default
/// [`DEFAULT_DATE_FORMAT`]). `round_up` fills omitted fields with their maximum.
pub fn parse_date(
    s: &str,
    format: Option<&str>,
    tz: &TimeZone,
    round_up: bool,
) -> Result<i64, QueryError> {
    let fmt = format.unwrap_or(DEFAULT_DATE_FORMAT);
    for f in fmt.split("||") {
        let f = f.trim();
        let parsed = match f {
            "epoch_millis" => parse_epoch(s, 1.0).map(|(m, _)| m),
            "epoch_second" => parse_epoch(s, 1000.0).map(|(m, _)| m),
            "strict_date_optional_time" | "strict_date_optional_time_nanos" | "iso8601" => {
                parse_iso(s, true).and_then(|p| p.to_millis(tz, round_up))
            }
            "date_optional_time" => parse_iso(s, false).and_then(|p| p.to_millis(tz, round_up)),
            other => {
                let pattern = named_pattern(other).unwrap_or(other);
                parse_pattern(s, pattern).and_then(|p| {
                    if p.precision() == Precision::Exact {
                        None
                    } else {
                        p.to_millis(tz, round_up)
                    }
                })
            }
        };
        if let Some(m) = parsed {
            return Ok(m);
        }
    }
    Err(QueryError::parse(format!(
        "failed to parse date field [{s}] with format [{fmt}]"
    )))
}

/// Resolve a date math expression to epoch millis.
///
/// `round_up`: true for `lte` and `gt` bounds (see the module doc).
pub fn resolve(
    expr: &str,
    now_millis: i64,
    round_up: bool,
    format: Option<&str>,
    tz: &TimeZone,
) -> Result<i64, QueryError> {
    let (anchor, math) = if let Some(rest) = expr.strip_prefix("now") {
        (now_millis, rest)
    } else if let Some((date, math)) = expr.split_once("||") {
        (parse_date(date, format, tz, false)?, math)
    } else {
        return parse_date(expr, format, tz, round_up);
    };
    apply_math(anchor, math, round_up, tz, expr)
}

/// Resolve a JSON range bound: numbers are epoch millis (or seconds with `epoch_second`),
/// strings are date math.
pub fn resolve_value(
    v: &Value,
    now_millis: i64,
    round_up: bool,
    format: Option<&str>,
    tz: &TimeZone,
) -> Result<i64, QueryError> {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            let fmt = format.unwrap_or(DEFAULT_DATE_FORMAT);
            if fmt.split("||").any(|f| f.trim() == "epoch_second") && !fmt.contains("epoch_millis")
            {
                parse_date(&s, Some("epoch_second"), tz, round_up)
            } else {
                parse_date(&s, Some("epoch_millis"), tz, round_up)
            }
        }
        Value::String(s) => resolve(s, now_millis, round_up, format, tz),
        other => Err(QueryError::parse(format!(
            "failed to parse date field [{other}] with format [{}]",
            format.unwrap_or(DEFAULT_DATE_FORMAT)
        ))),
    }
}

/// Resolve the four bounds of a range on a date field to millisecond bounds, with ES's
/// rounding rules (`gt`/`lte` round up). When both an exclusive and an inclusive bound
/// are given on one side, the tighter one wins.
pub fn resolve_range(
    gt: Option<&Value>,
    gte: Option<&Value>,
    lt: Option<&Value>,
    lte: Option<&Value>,
    format: Option<&str>,
    time_zone: Option<&str>,
    now_millis: i64,
) -> Result<(Bound<i64>, Bound<i64>), QueryError> {
    let tz = match time_zone {
        Some(t) => parse_time_zone(t)?,
        None => TimeZone::utc(),
    };
    let lower = match (gt, gte) {
        (Some(v), None) => Bound::Excluded(resolve_value(v, now_millis, true, format, &tz)?),
        (None, Some(v)) => Bound::Included(resolve_value(v, now_millis, false, format, &tz)?),
        (Some(a), Some(b)) => {
            let a = resolve_value(a, now_millis, true, format, &tz)?;
            let b = resolve_value(b, now_millis, false, format, &tz)?;
            if a >= b {
                Bound::Excluded(a)
            } else {
                Bound::Included(b)
            }
        }
        (None, None) => Bound::Unbounded,
    };
    let upper = match (lt, lte) {
        (Some(v), None) => Bound::Excluded(resolve_value(v, now_millis, false, format, &tz)?),
        (None, Some(v)) => Bound::Included(resolve_value(v, now_millis, true, format, &tz)?),
        (Some(a), Some(b)) => {
            let a = resolve_value(a, now_millis, false, format, &tz)?;
            let b = resolve_value(b, now_millis, true, format, &tz)?;
            if a <= b {
                Bound::Excluded(a)
            } else {
                Bound::Included(b)
            }
        }
        (None, None) => Bound::Unbounded,
    };
    Ok((lower, upper))
}

fn apply_math(
    mut millis: i64,
    math: &str,
    round_up: bool,
    tz: &TimeZone,
    expr: &str,
) -> Result<i64, QueryError> {
    let chars: Vec<char> = math.chars().collect();
    let mut i = 0;
    let overflow =
        || QueryError::parse(format!("failed to parse date math [{expr}]: out of range"));
    while i < chars.len() {
        let op = chars[i];
        i += 1;
        let round = match op {
            '/' => true,
            '+' | '-' => false,
            _ => {
                return Err(QueryError::parse(format!(
                    "operator not supported for date math [{math}]"
                )))
            }
        };
        let mut num: i64 = 1;
        if !round {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i > start {
                let s: String = chars[start..i].iter().collect();
                num = s.parse::<i64>().map_err(|_| overflow())?;
            }
            if op == '-' {
                num = -num;
            }
        } else if i < chars.len() && chars[i].is_ascii_digit() {
            return Err(QueryError::parse(format!(
                "rounding `/` can only be used on single unit types [{math}]"
            )));
        }
        let Some(&unit) = chars.get(i) else {
            return Err(QueryError::parse(format!("truncated date math [{math}]")));
        };
        i += 1;
        if !matches!(unit, 'y' | 'M' | 'w' | 'd' | 'h' | 'H' | 'm' | 's') {
            return Err(QueryError::parse(format!(
                "unit [{unit}] not supported for date math [{math}]"
            )));
        }
        millis = if round {
            round_millis(millis, unit, round_up, tz).ok_or_else(overflow)?
        } else {
            add_units(millis, num, unit, tz).ok_or_else(overflow)?
        };
    }
    Ok(millis)
}

fn add_units(millis: i64, n: i64, unit: char, tz: &TimeZone) -> Option<i64> {
    match unit {
        'h' | 'H' => millis.checked_add(n.checked_mul(3_600_000)?),
        'm' => millis.checked_add(n.checked_mul(60_000)?),
        's' => millis.checked_add(n.checked_mul(1000)?),
        _ => {
            let local = tz.to_local(millis)?;
            let shifted = match unit {
                'y' => shift_months(local, n.checked_mul(12)?)?,
                'M' => shift_months(local, n)?,
                'w' => local.checked_add_signed(Duration::try_days(n.checked_mul(7)?)?)?,
                'd' => local.checked_add_signed(Duration::try_days(n)?)?,
                _ => return None,
            };
            tz.from_local(&shifted)
        }
    }
}

fn shift_months(local: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let m = u32::try_from(n.unsigned_abs()).ok()?;
    if n >= 0 {
        local.checked_add_months(Months::new(m))
    } else {
        local.checked_sub_months(Months::new(m))
    }
}

/// Round down to the start of the unit, or (round_up) to the last millisecond of it.
fn round_millis(millis: i64, unit: char, round_up: bool, tz: &TimeZone) -> Option<i64> {
    let local = tz.to_local(millis)?;
    let date = local.date();
    let start_local = match unit {
        'y' => NaiveDate::from_ymd_opt(date.year(), 1, 1)?.and_hms_opt(0, 0, 0)?,
        'M' => NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?.and_hms_opt(0, 0, 0)?,
        'w' => {
            let back = i64::from(date.weekday().num_days_from_monday());
            date.checked_sub_signed(Duration::try_days(back)?)?
                .and_hms_opt(0, 0, 0)?
        }
        'd' => date.and_hms_opt(0, 0, 0)?,
        'h' | 'H' => date.and_hms_opt(local.hour(), 0, 0)?,
        'm' => date.and_hms_opt(local.hour(), local.minute(), 0)?,
        's' => date.and_hms_opt(local.hour(), local.minute(), local.second())?,
        _ => return None,
    };
    let start = tz.from_local(&start_local)?;
    if !round_up {
        return Some(start);
    }
    let next = add_units(start, 1, unit, tz)?;
    next.checked_sub(1)
}

/// Format epoch millis as RFC 3339 UTC with milliseconds (`2024-01-01T00:00:00.000Z`).
pub fn format_millis(millis: i64) -> Option<String> {
    let d = DateTime::<Utc>::from_timestamp_millis(millis)?;
    Some(d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        parse_date(s, None, &TimeZone::utc(), false).unwrap()
    }

    fn r(expr: &str, now: &str, up: bool) -> String {
        let now = ms(now);
        format_millis(resolve(expr, now, up, None, &TimeZone::utc()).unwrap()).unwrap()
    }

    #[test]
    fn now_math() {
        let now = "2024-03-15T10:37:21.123Z";
        assert_eq!(r("now", now, false), "2024-03-15T10:37:21.123Z");
        assert_eq!(r("now-15m", now, false), "2024-03-15T10:22:21.123Z");
        assert_eq!(r("now-15m/m", now, false), "2024-03-15T10:22:00.000Z");
        assert_eq!(r("now-15m/m", now, true), "2024-03-15T10:22:59.999Z");
        assert_eq!(r("now/d", now, false), "2024-03-15T00:00:00.000Z");
        assert_eq!(r("now/d", now, true), "2024-03-15T23:59:59.999Z");
        assert_eq!(r("now+1d", now, false), "2024-03-16T10:37:21.123Z");
        assert_eq!(r("now-1y", now, false), "2023-03-15T10:37:21.123Z");
        assert_eq!(r("now/M", now, false), "2024-03-01T00:00:00.000Z");
        assert_eq!(r("now/M", now, true), "2024-03-31T23:59:59.999Z");
        assert_eq!(r("now/y", now, true), "2024-12-31T23:59:59.999Z");
        assert_eq!(r("now/w", now, false), "2024-03-11T00:00:00.000Z"); // Monday
        assert_eq!(r("now-1h/h", now, false), "2024-03-15T09:00:00.000Z");
        assert_eq!(r("now+d", now, false), "2024-03-16T10:37:21.123Z");
        assert_eq!(r("now-2w", now, false), "2024-03-01T10:37:21.123Z");
        assert_eq!(r("now+30s", now, false), "2024-03-15T10:37:51.123Z");
    }

    #[test]
    fn anchored_math() {
        let now = "2000-01-01T00:00:00Z";
        assert_eq!(r("2024-01-31||+1M", now, false), "2024-02-29T00:00:00.000Z");
        assert_eq!(
            r("2024-01-01||+1M/d", now, false),
            "2024-02-01T00:00:00.000Z"
        );
        assert_eq!(r("2014-11-18||/M", now, false), "2014-11-01T00:00:00.000Z");
        assert_eq!(r("2014-11-18||/M", now, true), "2014-11-30T23:59:59.999Z");
    }

    #[test]
    fn round_up_fills_missing_fields() {
        let now = "2000-01-01T00:00:00Z";
        assert_eq!(r("2024-01-01", now, true), "2024-01-01T23:59:59.999Z");
        assert_eq!(r("2024-01-01", now, false), "2024-01-01T00:00:00.000Z");
        assert_eq!(r("2024-02", now, true), "2024-02-29T23:59:59.999Z");
        assert_eq!(r("2024", now, true), "2024-12-31T23:59:59.999Z");
        assert_eq!(
            r("2024-01-01T10:00:00", now, true),
            "2024-01-01T10:00:00.999Z"
        );
        assert_eq!(
            r("2024-01-01T10:00:00.5Z", now, true),
            "2024-01-01T10:00:00.500Z"
        );
    }

    #[test]
    fn ranges_round_per_es() {
        let now = ms("2014-11-18T12:00:00Z");
        let v = |s: &str| Value::String(s.into());
        let (lo, hi) = resolve_range(
            Some(&v("now/M")),
            None,
            None,
            Some(&v("now/M")),
            None,
            None,
            now,
        )
        .unwrap();
        assert_eq!(lo, Bound::Excluded(ms("2014-11-30T23:59:59.999Z")));
        assert_eq!(hi, Bound::Included(ms("2014-11-30T23:59:59.999Z")));
        let (lo, hi) = resolve_range(
            None,
            Some(&v("now/M")),
            Some(&v("now/M")),
            None,
            None,
            None,
            now,
        )
        .unwrap();
        assert_eq!(lo, Bound::Included(ms("2014-11-01T00:00:00Z")));
        assert_eq!(hi, Bound::Excluded(ms("2014-11-01T00:00:00Z")));
        let (lo, _) = resolve_range(
            None,
            Some(&serde_json::json!(1_700_000_000_000i64)),
            None,
            None,
            None,
            None,
            now,
        )
        .unwrap();
        assert_eq!(lo, Bound::Included(1_700_000_000_000));
    }

    #[test]
    fn time_zones() {
        let paris = parse_time_zone("Europe/Paris").unwrap();
        let plus1 = parse_time_zone("+01:00").unwrap();
        assert_eq!(
            parse_date("2024-01-01T00:00:00", None, &plus1, false).unwrap(),
            ms("2023-12-31T23:00:00Z")
        );
        assert_eq!(
            parse_date("2024-07-01T00:00:00", None, &paris, false).unwrap(),
            ms("2024-06-30T22:00:00Z")
        );
        // Explicit offset wins over the zone.
        assert_eq!(
            parse_date("2024-07-01T00:00:00Z", None, &paris, false).unwrap(),
            ms("2024-07-01T00:00:00Z")
        );
        // Rounding in the zone.
        let now = ms("2024-07-01T21:30:00Z"); // 23:30 in Paris
        assert_eq!(
            resolve("now/d", now, false, None, &paris).unwrap(),
            ms("2024-06-30T22:00:00Z")
        );
        for z in [
            "-08:00",
            "+0530",
            "+05",
            "Z",
            "UTC",
            "GMT+2",
            "America/New_York",
        ] {
            parse_time_zone(z).unwrap_or_else(|e| panic!("{z}: {e:?}"));
        }
        assert_eq!(
            parse_time_zone("Mars/Olympus").unwrap_err().reason,
            "Unknown time-zone ID: Mars/Olympus"
        );
    }

    #[test]
    fn formats() {
        let utc = TimeZone::utc();
        let p = |s: &str, f: &str| parse_date(s, Some(f), &utc, false).unwrap();
        assert_eq!(p("1700000000", "epoch_second"), 1_700_000_000_000);
        assert_eq!(p("1700000000123", "epoch_millis"), 1_700_000_000_123);
        assert_eq!(p("2024-01-02", "yyyy-MM-dd"), ms("2024-01-02T00:00:00Z"));
        assert_eq!(p("20240102", "basic_date"), ms("2024-01-02T00:00:00Z"));
        assert_eq!(
            p("20240102T030405.006Z", "basic_date_time"),
            ms("2024-01-02T03:04:05.006Z")
        );
        assert_eq!(
            p("2024-01-02 03:04:05", "yyyy-MM-dd HH:mm:ss"),
            ms("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            p("10/Oct/2000:13:55:36 -0700", "dd/MMM/yyyy:HH:mm:ss Z"),
            ms("2000-10-10T20:55:36Z")
        );
        assert_eq!(
            p("2024-01-02T03:04:05+01:00", "date_time_no_millis"),
            ms("2024-01-02T02:04:05Z")
        );
        assert_eq!(
            p("2024-01-02", "epoch_millis||yyyy-MM-dd"),
            ms("2024-01-02T00:00:00Z")
        );
        assert_eq!(
            ms("2024-01-02T03:04:05.123456789Z"),
            ms("2024-01-02T03:04:05.123Z")
        );
        assert_eq!(ms("1700000000123"), 1_700_000_000_123);
        assert!(parse_date("2024-13-01", None, &utc, false).is_err());
        assert!(parse_date("yesterday", None, &utc, false).is_err());
        let e = parse_date("foo", None, &utc, false).unwrap_err();
        assert_eq!(
            e.reason,
            "failed to parse date field [foo] with format [strict_date_optional_time||epoch_millis]"
        );
    }

    #[test]
    fn math_errors() {
        let utc = TimeZone::utc();
        for bad in [
            "now*1d",
            "now+1q",
            "now/2d",
            "now+",
            "now+99999999999999999999d",
            "now+9999999999y",
        ] {
            assert!(resolve(bad, 0, false, None, &utc).is_err(), "{bad}");
        }
    }
}
