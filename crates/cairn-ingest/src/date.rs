//! Dates for the `date` processor: `ISO8601`, `UNIX`, `UNIX_MS`, `TAI64N` and Java
//! `DateTimeFormatter` patterns (the letters log timestamps use), parsing and formatting,
//! with IANA time zones.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

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
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A time zone: a fixed offset or an IANA zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

impl Zone {
    /// `UTC`, `Z`, `+01:00`, `-0500`, `Europe/Amsterdam`, ...
    pub fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("UTC") || t == "Z" || t.eq_ignore_ascii_case("GMT") {
            return Ok(Zone::Fixed(FixedOffset::east_opt(0).unwrap_or(Utc.fix())));
        }
        if let Some(off) = parse_offset_str(t) {
            return Ok(Zone::Fixed(off));
        }
        for prefix in ["UTC", "GMT"] {
            if let Some(r) = t.strip_prefix(prefix) {
                if let Some(off) = parse_offset_str(r) {
                    return Ok(Zone::Fixed(off));
                }
            }
        }
        t.parse::<Tz>()
            .map(Zone::Named)
            .map_err(|_| format!("Unknown time-zone ID: {t}"))
    }

    fn id(&self) -> String {
        match self {
            Zone::Fixed(f) if f.local_minus_utc() == 0 => "Z".into(),
            Zone::Fixed(f) => format_offset(f.local_minus_utc(), true, false),
            Zone::Named(tz) => tz.name().to_string(),
        }
    }

    /// The instant of a local date-time in this zone (gaps move forward, overlaps take
    /// the earlier instant).
    fn resolve_local(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Zone::Fixed(f) => f
                .from_local_datetime(&local)
                .single()
                .map(|d| d.with_timezone(&Utc)),
            Zone::Named(tz) => {
                let r = tz.from_local_datetime(&local);
                match r.earliest() {
                    Some(d) => Some(d.with_timezone(&Utc)),
                    None => tz
                        .from_local_datetime(&(local + chrono::Duration::hours(1)))
                        .earliest()
                        .map(|d| d.with_timezone(&Utc)),
                }
            }
        }
    }

    /// Local time, offset seconds and abbreviation of an instant in this zone.
    fn local(&self, t: DateTime<Utc>) -> (NaiveDateTime, i32, String) {
        match self {
            Zone::Fixed(f) => {
                let d = t.with_timezone(f);
                (d.naive_local(), f.local_minus_utc(), self.id())
            }
            Zone::Named(tz) => {
                let d = t.with_timezone(tz);
                let off = d.offset().fix().local_minus_utc();
                (d.naive_local(), off, d.format("%Z").to_string())
            }
        }
    }
}

fn parse_offset_str(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.chars().next()? {
        '+' => (1, &s[1..]),
        '-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || digits.is_empty() {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 18 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn format_offset(secs: i32, colon: bool, z_for_zero: bool) -> String {
    if secs == 0 && z_for_zero {
        return "Z".into();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    if colon {
        format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    } else {
        format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(String),
    Field(char, usize),
}

/// A compiled Java date pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct JavaPattern {
    toks: Vec<Tok>,
}

const SUPPORTED: &str = "yuYMLdDHhkKmsSnaEVzZXx";

impl JavaPattern {
    pub fn parse(p: &str) -> Result<JavaPattern, String> {
        let chars: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let mut lit = String::new();
                i += 1;
                if chars.get(i) == Some(&'\'') {
                    toks.push(Tok::Lit("'".into()));
                    i += 1;
                    continue;
                }
                loop {
                    match chars.get(i) {
                        None => return Err(format!("Invalid format: [{p}]: unterminated quote")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            lit.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(x) => {
                            lit.push(*x);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Lit(lit));
                continue;
            }
            if c == '[' || c == ']' {
                return Err(format!(
                    "Invalid format: [{p}]: optional sections [..] are not supported by cairn"
                ));
            }
            if c.is_ascii_alphabetic() {
                if !SUPPORTED.contains(c) {
                    return Err(format!(
                        "Invalid format: [{p}]: unknown pattern letter: {c}"
                    ));
                }
                let mut n = 1;
                while chars.get(i + n) == Some(&c) {
                    n += 1;
                }
                toks.push(Tok::Field(c, n));
                i += n;
                continue;
            }
            match toks.last_mut() {
                Some(Tok::Lit(l)) => l.push(c),
                _ => toks.push(Tok::Lit(c.to_string())),
            }
            i += 1;
        }
        Ok(JavaPattern { toks })
    }

    /// Parses `s` (the whole string must match). Without a zone in the text, `zone` applies.
    pub fn parse_date(&self, s: &str, zone: &Zone, now_year: i32) -> Result<DateTime<Utc>, String> {
        let b = s.as_bytes();
        let mut pos = 0usize;
        let mut year: Option<i32> = None;
        let mut month = 1u32;
        let mut day = 1u32;
        let mut doy: Option<u32> = None;
        let mut hour = 0u32;
        let mut hour12: Option<u32> = None;
        let mut pm: Option<bool> = None;
        let mut minute = 0u32;
        let mut second = 0u32;
        let mut nanos = 0u32;
        let mut offset: Option<Zone> = None;
        let err = |what: &str| format!("Text '{s}' could not be parsed: {what}");
        let next_is_digit_field = |idx: usize| -> bool {
            matches!(self.toks.get(idx + 1), Some(Tok::Field(c, _)) if "yuYdDHhkKmsSn".contains(*c) || (*c == 'M' && matches!(self.toks.get(idx + 1), Some(Tok::Field(_, n)) if *n <= 2)))
        };
        for (ti, t) in self.toks.iter().enumerate() {
            match t {
                Tok::Lit(l) => {
                    if s[pos..].starts_with(l.as_str()) {
                        pos += l.len();
                    } else {
                        return Err(err(&format!("expected [{l}] at index {pos}")));
                    }
                }
                Tok::Field(c, n) => {
                    let n = *n;
                    let fixed = next_is_digit_field(ti);
                    let mut num = |min: usize, max: usize| -> Result<i64, String> {
                        let start = pos;
                        let mut neg = false;
                        if (*c == 'y' || *c == 'u')
                            && pos < b.len()
                            && (b[pos] == b'-' || b[pos] == b'+')
                            && n >= 4
                        {
                            neg = b[pos] == b'-';
                            pos += 1;
                        }
                        let ds = pos;
                        while pos < b.len() && b[pos].is_ascii_digit() && pos - ds < max {
                            pos += 1;
                        }
                        if pos - ds < min {
                            return Err(err(&format!("expected a number at index {start}")));
                        }
                        let v: i64 = s[ds..pos].parse().map_err(|_| err("bad number"))?;
                        Ok(if neg { -v } else { v })
                    };
                    let width = |n: usize| if fixed || n >= 2 { (n, n) } else { (1, 2) };
                    match c {
                        'y' | 'u' | 'Y' => {
                            if n == 2 {
                                year = Some(2000 + num(2, 2)? as i32);
                            } else {
                                let (min, max) = if fixed { (n.max(4), n.max(4)) } else { (1, 9) };
                                year = Some(num(min, max)? as i32);
                            }
                        }
                        'M' | 'L' => {
                            if n >= 3 {
                                let (idx, len) = match_name(&s[pos..], &MONTHS, n == 3)
                                    .ok_or_else(|| err("unknown month name"))?;
                                month = idx as u32 + 1;
                                pos += len;
                            } else {
                                let (a, z) = width(n);
                                month = num(a, z)? as u32;
                            }
                        }
                        'd' => {
                            let (a, z) = width(n);
                            day = num(a, z)? as u32;
                        }
                        'D' => {
                            let (a, z) = if n >= 3 { (3, 3) } else { (1, 3) };
                            doy = Some(num(a, z)? as u32);
                        }
                        'H' | 'k' => {
                            let (a, z) = width(n);
                            hour = num(a, z)? as u32;
                            if *c == 'k' && hour == 24 {
                                hour = 0;
                            }
                        }
                        'h' | 'K' => {
                            let (a, z) = width(n);
                            hour12 = Some(num(a, z)? as u32);
                        }
                        'm' => {
                            let (a, z) = width(n);
                            minute = num(a, z)? as u32;
                        }
                        's' => {
                            let (a, z) = width(n);
                            second = num(a, z)? as u32;
                        }
                        'S' => {
                            let start = pos;
                            let max = if fixed { n } else { 9 };
                            while pos < b.len() && b[pos].is_ascii_digit() && pos - start < max {
                                pos += 1;
                            }
                            if pos == start {
                                return Err(err(&format!(
                                    "expected fraction digits at index {start}"
                                )));
                            }
                            let frac = &s[start..pos];
                            let padded = format!("{frac:0<9}");
                            nanos = padded[..9].parse().map_err(|_| err("bad fraction"))?;
                        }
                        'n' => {
                            nanos = num(1, 9)? as u32;
                        }
                        'a' => {
                            let r = &s[pos..];
                            let head = r.get(..2).unwrap_or("");
                            if head.eq_ignore_ascii_case("AM") {
                                pm = Some(false);
                            } else if head.eq_ignore_ascii_case("PM") {
                                pm = Some(true);
                            } else {
                                return Err(err("expected AM or PM"));
                            }
                            pos += 2;
                        }
                        'E' => {
                            let (_, len) = match_name(&s[pos..], &DAYS, n <= 3)
                                .ok_or_else(|| err("unknown day name"))?;
                            pos += len;
                        }
                        'Z' | 'X' | 'x' => {
                            let r = &s[pos..];
                            if r.starts_with('Z') && *c != 'x' {
                                offset = Some(Zone::Fixed(Utc.fix()));
                                pos += 1;
                            } else {
                                let mut end = 0;
                                let rb = r.as_bytes();
                                if !rb.is_empty() && (rb[0] == b'+' || rb[0] == b'-') {
                                    end = 1;
                                    while end < rb.len()
                                        && end < 6
                                        && (rb[end].is_ascii_digit() || rb[end] == b':')
                                    {
                                        end += 1;
                                    }
                                }
                                let off = parse_offset_str(&r[..end])
                                    .ok_or_else(|| err("expected a zone offset"))?;
                                offset = Some(Zone::Fixed(off));
                                pos += end;
                            }
                        }
                        'z' | 'V' => {
                            let r = &s[pos..];
                            let end = r
                                .find(|ch: char| {
                                    !(ch.is_ascii_alphanumeric()
                                        || ch == '/'
                                        || ch == '_'
                                        || ch == '+'
                                        || ch == '-'
                                        || ch == ':')
                                })
                                .unwrap_or(r.len());
                            let z = Zone::parse(&r[..end]).map_err(|e| err(&e))?;
                            offset = Some(z);
                            pos += end;
                        }
                        _ => return Err(err("unsupported pattern letter")),
                    }
                }
            }
        }
        if pos != s.len() {
            return Err(err(&format!("unparsed text found at index {pos}")));
        }
        if let Some(h) = hour12 {
            let h = h % 12;
            hour = if pm == Some(true) { h + 12 } else { h };
        } else if pm == Some(true) && hour < 12 {
            hour += 12;
        }
        let year = year.unwrap_or(now_year);
        let date = match doy {
            Some(d) => NaiveDate::from_yo_opt(year, d),
            None => NaiveDate::from_ymd_opt(year, month, day),
        }
        .ok_or_else(|| err("invalid date"))?;
        let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
            .ok_or_else(|| err("invalid time"))?;
        let z = offset.unwrap_or(*zone);
        z.resolve_local(NaiveDateTime::new(date, time))
            .ok_or_else(|| err("invalid local time"))
    }

    /// Formats an instant in `zone`.
    pub fn format(&self, t: DateTime<Utc>, zone: &Zone) -> String {
        let (local, off, abbr) = zone.local(t);
        let mut out = String::new();
        for tok in &self.toks {
            match tok {
                Tok::Lit(l) => out.push_str(l),
                Tok::Field(c, n) => {
                    let n = *n;
                    match c {
                        'y' | 'u' | 'Y' => {
                            if n == 2 {
                                out.push_str(&format!("{:02}", local.year().rem_euclid(100)));
                            } else {
                                out.push_str(&format!("{:0w$}", local.year(), w = n));
                            }
                        }
                        'M' | 'L' => match n {
                            1 => out.push_str(&local.month().to_string()),
                            2 => out.push_str(&format!("{:02}", local.month())),
                            3 => out.push_str(&MONTHS[local.month0() as usize][..3]),
                            _ => out.push_str(MONTHS[local.month0() as usize]),
                        },
                        'd' => out.push_str(&format!("{:0w$}", local.day(), w = n)),
                        'D' => out.push_str(&format!("{:0w$}", local.ordinal(), w = n)),
                        'H' => out.push_str(&format!("{:0w$}", local.hour(), w = n)),
                        'k' => {
                            let h = if local.hour() == 0 { 24 } else { local.hour() };
                            out.push_str(&format!("{:0w$}", h, w = n))
                        }
                        'h' => {
                            let h = local.hour() % 12;
                            let h = if h == 0 { 12 } else { h };
                            out.push_str(&format!("{:0w$}", h, w = n))
                        }
                        'K' => out.push_str(&format!("{:0w$}", local.hour() % 12, w = n)),
                        'm' => out.push_str(&format!("{:0w$}", local.minute(), w = n)),
                        's' => out.push_str(&format!("{:0w$}", local.second(), w = n)),
                        'S' => {
                            let ns = format!("{:09}", local.nanosecond().min(999_999_999));
                            if n <= 9 {
                                out.push_str(&ns[..n]);
                            } else {
                                out.push_str(&ns);
                                out.push_str(&"0".repeat(n - 9));
                            }
                        }
                        'n' => out.push_str(&local.nanosecond().to_string()),
                        'a' => out.push_str(if local.hour() < 12 { "AM" } else { "PM" }),
                        'E' => {
                            let d = DAYS[local.weekday().num_days_from_monday() as usize];
                            out.push_str(if n <= 3 { &d[..3] } else { d });
                        }
                        'X' => match n {
                            1 => {
                                if off == 0 {
                                    out.push('Z')
                                } else {
                                    let s = format_offset(off, false, false);
                                    if off % 3600 == 0 {
                                        out.push_str(&s[..3])
                                    } else {
                                        out.push_str(&s)
                                    }
                                }
                            }
                            2 | 4 => out.push_str(&format_offset(off, false, true)),
                            _ => out.push_str(&format_offset(off, true, true)),
                        },
                        'x' => match n {
                            1 | 2 | 4 => out.push_str(&format_offset(off, false, false)),
                            _ => out.push_str(&format_offset(off, true, false)),
                        },
                        'Z' => match n {
                            1..=3 => out.push_str(&format_offset(off, false, false)),
                            4 => {
                                out.push_str("GMT");
                                if off != 0 {
                                    out.push_str(&format_offset(off, true, false));
                                }
                            }
                            _ => out.push_str(&format_offset(off, true, true)),
                        },
                        'z' => out.push_str(&abbr),
                        'V' => out.push_str(&zone.id()),
                        _ => {}
                    }
                }
            }
        }
        out
    }
}

fn match_name(s: &str, names: &[&str], short: bool) -> Option<(usize, usize)> {
    for (i, full) in names.iter().enumerate() {
        let cand: &str = if short { &full[..3] } else { full };
        if s.len() >= cand.len()
            && s.is_char_boundary(cand.len())
            && s[..cand.len()].eq_ignore_ascii_case(cand)
        {
            return Some((i, cand.len()));
        }
    }
    if short {
        // Java's short month "Sept" (some locales) and full names where short expected.
        for (i, full) in names.iter().enumerate() {
            if s.len() >= full.len()
                && s.is_char_boundary(full.len())
                && s[..full.len()].eq_ignore_ascii_case(full)
            {
                return Some((i, full.len()));
            }
        }
    }
    None
}

/// ISO 8601 as Elasticsearch's `ISO8601` format accepts it: a date, optionally `T` (or a
/// space) and a time with optional fraction, optionally an offset (`Z`, `+HH`, `+HHMM`,
/// `+HH:MM`). Without an offset, `zone` applies.
pub fn parse_iso8601(s: &str, zone: &Zone) -> Result<DateTime<Utc>, String> {
    let err = || format!("failed to parse date field [{s}] with format [iso8601]");
    let s = s.trim();
    // Split the offset off.
    let (body, off): (&str, Option<Zone>) =
        if let Some(b) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
            (b, Some(Zone::Fixed(Utc.fix())))
        } else {
            let tpos = s.find(['T', ' ']);
            match tpos {
                Some(tp) => {
                    let time = &s[tp + 1..];
                    match time.rfind(['+', '-']) {
                        Some(p) => {
                            let o = parse_offset_str(&time[p..]).ok_or_else(err)?;
                            (&s[..tp + 1 + p], Some(Zone::Fixed(o)))
                        }
                        None => (s, None),
                    }
                }
                None => (s, None),
            }
        };
    let (date_s, time_s) = match body.find(['T', ' ']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let dparts: Vec<&str> = date_s.split('-').collect();
    let num = |x: &str| -> Result<u32, String> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        x.parse::<u32>().map_err(|_| err())
    };
    let year = dparts.first().ok_or_else(err).and_then(|y| {
        if y.len() < 4 {
            Err(err())
        } else {
            num(y).map(|v| v as i32)
        }
    })?;
    let month = match dparts.get(1) {
        Some(m) => num(m)?,
        None => 1,
    };
    let day = match dparts.get(2) {
        Some(d) => num(d)?,
        None => 1,
    };
    if dparts.len() > 3 {
        return Err(err());
    }
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(err)?;
    let mut h = 0;
    let mut mi = 0;
    let mut sec = 0;
    let mut nanos = 0;
    if let Some(t) = time_s {
        let (hms, frac) = match t.find(['.', ',']) {
            Some(p) => (&t[..p], Some(&t[p + 1..])),
            None => (t, None),
        };
        let parts: Vec<&str> = if hms.contains(':') {
            hms.split(':').collect()
        } else {
            // Basic format HHmmss.
            let mut v = Vec::new();
            let mut i = 0;
            while i < hms.len() {
                let e = (i + 2).min(hms.len());
                if !hms.is_char_boundary(i) || !hms.is_char_boundary(e) {
                    return Err(err());
                }
                v.push(&hms[i..e]);
                i = e;
            }
            v
        };
        if parts.is_empty() || parts.len() > 3 {
            return Err(err());
        }
        h = num(parts[0])?;
        if let Some(m) = parts.get(1) {
            mi = num(m)?;
        }
        if let Some(x) = parts.get(2) {
            sec = num(x)?;
        }
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            nanos = format!("{f:0<9}").parse::<u32>().map_err(|_| err())?;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(h, mi, sec, nanos).ok_or_else(err)?;
    off.unwrap_or(*zone)
        .resolve_local(NaiveDateTime::new(date, time))
        .ok_or_else(err)
}

/// `UNIX`: seconds since the epoch, with an optional fraction.
pub fn parse_unix(s: &str) -> Result<DateTime<Utc>, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("[{s}] is not a UNIX timestamp"))?;
    if !v.is_finite() {
        return Err(format!("[{s}] is not a UNIX timestamp"));
    }
    let ms = (v * 1000.0).round() as i64;
    DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("[{s}] is out of range"))
}

/// `UNIX_MS`: milliseconds since the epoch.
pub fn parse_unix_ms(s: &str) -> Result<DateTime<Utc>, String> {
    let v: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("[{s}] is not a UNIX_MS timestamp"))?;
    DateTime::from_timestamp_millis(v).ok_or_else(|| format!("[{s}] is out of range"))
}

/// `TAI64N` labels (`@4000000052f88ea32489532c`), as Elasticsearch reads them.
pub fn parse_tai64n(s: &str) -> Result<DateTime<Utc>, String> {
    let input = s.trim().strip_prefix('@').unwrap_or(s.trim());
    let bad = || format!("[{s}] is not a TAI64N label");
    if input.len() < 24 || !input.is_ascii() {
        return Err(bad());
    }
    let base = i64::from_str_radix(&input[1..16], 16).map_err(|_| bad())?;
    let rest = i64::from_str_radix(&input[16..24], 16).map_err(|_| bad())?;
    let ms = base
        .checked_mul(1000)
        .and_then(|v| v.checked_sub(10_000))
        .and_then(|v| v.checked_add(rest / 1_000_000))
        .ok_or_else(bad)?;
    DateTime::from_timestamp_millis(ms).ok_or_else(bad)
}
