//! Date histogram intervals (fixed and calendar), rounding in a time zone, and
//! formatting of bucket keys (`key_as_string`) with ES's named formats and Java-style
//! patterns. All instants are epoch milliseconds.

use cairn_core::EsError;
use cairn_query::datemath::TimeZone;

pub(crate) const MS_PER_DAY: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CalendarUnit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interval {
    /// A fixed number of milliseconds.
    Fixed(i64),
    Calendar(CalendarUnit),
}

/// Parses a time value such as `30s`, `1h`, `250ms`, `2d` to milliseconds.
pub(crate) fn parse_time_value(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => MS_PER_DAY,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// `offset` of a date histogram: `+6h`, `-1d`, `30m`.
pub(crate) fn parse_offset(s: &str) -> Result<i64, EsError> {
    let t = s.trim();
    let (neg, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = parse_time_value(rest).ok_or_else(|| {
        EsError::illegal_argument(format!(
            "failed to parse setting [date_histogram.offset] with value [{s}] as a time value: unit is missing or unrecognized"
        ))
    })?;
    Ok(if neg { -v } else { v })
}

impl Interval {
    pub fn parse_fixed(s: &str) -> Result<Interval, EsError> {
        match parse_time_value(s) {
            Some(v) if v > 0 => Ok(Interval::Fixed(v)),
            _ => Err(EsError::illegal_argument(format!(
                "failed to parse setting [date_histogram.fixedInterval] with value [{s}] as a time value: unit is missing or unrecognized"
            ))),
        }
    }

    pub fn parse_calendar(s: &str) -> Result<Interval, EsError> {
        use CalendarUnit::*;
        let u = match s.trim() {
            "minute" | "1m" => Minute,
            "hour" | "1h" => Hour,
            "day" | "1d" => Day,
            "week" | "1w" => Week,
            "month" | "1M" => Month,
            "quarter" | "1q" => Quarter,
            "year" | "1y" => Year,
            _ => {
                return Err(EsError::illegal_argument(format!(
                    "The supplied interval [{s}] could not be parsed as a calendar interval."
                )))
            }
        };
        Ok(Interval::Calendar(u))
    }
}

// Civil-calendar conversions (proleptic Gregorian), days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Wall-clock time of an instant in `tz`, as "local epoch millis".
pub(crate) fn to_local(tz: &TimeZone, ms: i64) -> i64 {
    match tz {
        TimeZone::Fixed(o) => ms + i64::from(o.local_minus_utc()) * 1000,
        TimeZone::Named(_) => tz
            .to_local(ms)
            .map(|n| n.and_utc().timestamp_millis())
            .unwrap_or(ms),
    }
}

/// The instant of a wall-clock time (local epoch millis) in `tz`.
pub(crate) fn from_local(tz: &TimeZone, local: i64) -> i64 {
    match tz {
        TimeZone::Fixed(o) => local - i64::from(o.local_minus_utc()) * 1000,
        TimeZone::Named(_) => TimeZone::utc()
            .to_local(local)
            .and_then(|n| tz.from_local(&n))
            .unwrap_or(local),
    }
}

fn add_months(local: i64, months: i64) -> i64 {
    let days = local.div_euclid(MS_PER_DAY);
    let tod = local.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    days_from_civil(ny, nm, d.min(28)) * MS_PER_DAY + tod
}

fn cal_floor(local: i64, u: CalendarUnit) -> i64 {
    let days = local.div_euclid(MS_PER_DAY);
    match u {
        CalendarUnit::Minute => local.div_euclid(60_000) * 60_000,
        CalendarUnit::Hour => local.div_euclid(3_600_000) * 3_600_000,
        CalendarUnit::Day => days * MS_PER_DAY,
        CalendarUnit::Week => (days - (days + 3).rem_euclid(7)) * MS_PER_DAY,
        CalendarUnit::Month | CalendarUnit::Quarter | CalendarUnit::Year => {
            let (y, m, _) = civil_from_days(days);
            let m0 = match u {
                CalendarUnit::Month => m,
                CalendarUnit::Quarter => (m - 1) / 3 * 3 + 1,
                _ => 1,
            };
            days_from_civil(y, m0, 1) * MS_PER_DAY
        }
    }
}

fn cal_add(local: i64, u: CalendarUnit) -> i64 {
    match u {
        CalendarUnit::Minute => local + 60_000,
        CalendarUnit::Hour => local + 3_600_000,
        CalendarUnit::Day => local + MS_PER_DAY,
        CalendarUnit::Week => local + 7 * MS_PER_DAY,
        CalendarUnit::Month => add_months(local, 1),
        CalendarUnit::Quarter => add_months(local, 3),
        CalendarUnit::Year => add_months(local, 12),
    }
}

/// Rounds instants down to bucket keys.
#[derive(Debug, Clone)]
pub(crate) struct Rounder {
    pub interval: Interval,
    pub tz: TimeZone,
    pub offset: i64,
}

impl Rounder {
    pub fn round(&self, ms: i64) -> i64 {
        let t = ms - self.offset;
        let local = to_local(&self.tz, t);
        let r = match self.interval {
            Interval::Fixed(i) => local.div_euclid(i) * i,
            Interval::Calendar(u) => cal_floor(local, u),
        };
        let mut key = from_local(&self.tz, r);
        // A DST transition can move the local start after the instant; step back.
        if key > t {
            key = from_local(&self.tz, r - 3_600_000).min(t);
        }
        key + self.offset
    }

    /// The key of the bucket after the one starting at `key`.
    pub fn next(&self, key: i64) -> i64 {
        let t = key - self.offset;
        let local = to_local(&self.tz, t);
        let n = match self.interval {
            Interval::Fixed(i) => local + i,
            Interval::Calendar(u) => cal_add(cal_floor(local, u), u),
        };
        let mut next = from_local(&self.tz, n) + self.offset;
        if next <= key {
            next = self.round(key + 3_600_000 * 3);
            if next <= key {
                next = key + 1;
            }
        }
        next
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn named_pattern(name: &str) -> Option<&'static str> {
    Some(match name {
        "strict_date_optional_time"
        | "date_optional_time"
        | "strict_date_optional_time_nanos"
        | "strict_date_time"
        | "date_time"
        | "iso8601" => "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
        "strict_date_time_no_millis" | "date_time_no_millis" => "yyyy-MM-dd'T'HH:mm:ssXXX",
        "strict_date" | "date" => "yyyy-MM-dd",
        "basic_date" => "yyyyMMdd",
        "basic_date_time" => "yyyyMMdd'T'HHmmss.SSSZ",
        "basic_date_time_no_millis" => "yyyyMMdd'T'HHmmssZ",
        "strict_date_hour_minute_second" | "date_hour_minute_second" => "yyyy-MM-dd'T'HH:mm:ss",
        "strict_date_hour_minute_second_millis"
        | "date_hour_minute_second_millis"
        | "strict_date_hour_minute_second_fraction"
        | "date_hour_minute_second_fraction" => "yyyy-MM-dd'T'HH:mm:ss.SSS",
        "strict_date_hour_minute" | "date_hour_minute" => "yyyy-MM-dd'T'HH:mm",
        "strict_date_hour" | "date_hour" => "yyyy-MM-dd'T'HH",
        "strict_year_month" | "year_month" => "yyyy-MM",
        "strict_year" | "year" => "yyyy",
        "strict_hour_minute" | "hour_minute" => "HH:mm",
        "strict_hour_minute_second" | "hour_minute_second" => "HH:mm:ss",
        "strict_hour" | "hour" => "HH",
        _ => return None,
    })
}

fn push_offset(out: &mut String, secs: i64, colon: bool, z_for_zero: bool, minutes: bool) {
    if secs == 0 && z_for_zero {
        out.push('Z');
        return;
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    let (h, m) = (a / 3600, (a % 3600) / 60);
    out.push(sign);
    out.push_str(&format!("{h:02}"));
    if minutes || m != 0 {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{m:02}"));
    }
}

/// Formats an instant with an ES date format (named or Java-style pattern; `a||b`
/// uses the first) in `tz`. The default is `strict_date_optional_time`.
pub(crate) fn format_ms(ms: i64, tz: &TimeZone, format: Option<&str>) -> String {
    let fmt = format
        .and_then(|f| f.split("||").next())
        .map(str::trim)
        .unwrap_or("strict_date_optional_time");
    match fmt {
        "epoch_millis" => return ms.to_string(),
        "epoch_second" => return ms.div_euclid(1000).to_string(),
        _ => {}
    }
    let pattern = named_pattern(fmt).unwrap_or(fmt);
    let local = to_local(tz, ms);
    let off_secs = (local - ms) / 1000;
    let days = local.div_euclid(MS_PER_DAY);
    let tod = local.rem_euclid(MS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        tod / 3_600_000,
        (tod / 60_000) % 60,
        (tod / 1000) % 60,
        tod % 1000,
    );
    let wd = (days + 3).rem_euclid(7) as usize;
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a single quote.
            let mut j = i + 1;
            if j < chars.len() && chars[j] == '\'' {
                out.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        match c {
            'y' | 'u' | 'Y' => {
                if n == 2 {
                    out.push_str(&format!("{:02}", y.rem_euclid(100)));
                } else {
                    out.push_str(&format!("{:0width$}", y, width = n.max(4)));
                }
            }
            'M' | 'L' => match n {
                1 => out.push_str(&mo.to_string()),
                2 => out.push_str(&format!("{mo:02}")),
                3 => out.push_str(&MONTHS[(mo - 1) as usize][..3]),
                _ => out.push_str(MONTHS[(mo - 1) as usize]),
            },
            'd' => out.push_str(&format!("{:0width$}", d, width = n)),
            'H' => out.push_str(&format!("{:0width$}", h, width = n)),
            'h' => {
                let h12 = if h % 12 == 0 { 12 } else { h % 12 };
                out.push_str(&format!("{:0width$}", h12, width = n));
            }
            'a' => out.push_str(if h < 12 { "AM" } else { "PM" }),
            'm' => out.push_str(&format!("{:0width$}", mi, width = n)),
            's' => out.push_str(&format!("{:0width$}", s, width = n)),
            'S' => {
                let frac = format!("{milli:03}000000");
                out.push_str(&frac[..n.min(9)]);
            }
            'E' => {
                if n >= 4 {
                    out.push_str(WEEKDAYS[wd]);
                } else {
                    out.push_str(&WEEKDAYS[wd][..3]);
                }
            }
            'e' => out.push_str(&(wd + 1).to_string()),
            'D' => {
                let doy = days - days_from_civil(y, 1, 1) + 1;
                out.push_str(&format!("{:0width$}", doy, width = n));
            }
            'X' => push_offset(&mut out, off_secs, n >= 3, true, n >= 2),
            'x' => push_offset(&mut out, off_secs, n >= 3, false, n >= 2),
            'Z' => {
                if n >= 5 {
                    push_offset(&mut out, off_secs, true, true, true)
                } else {
                    push_offset(&mut out, off_secs, false, false, true)
                }
            }
            'z' | 'V' | 'O' => push_offset(&mut out, off_secs, true, true, true),
            _ => {
                for _ in 0..n {
                    out.push(c);
                }
            }
        }
        i += n;
    }
    out
}
