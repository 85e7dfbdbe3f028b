//! Hand-written timestamp parsing and RFC 3339 formatting (no clock, no allocation
//! except the output string). All results are UTC.

/// A UTC instant with the number of fractional digits the source gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ts {
    pub secs: i64,
    pub nanos: u32,
    /// Fractional digits written by the source (0..=9).
    pub digits: u8,
}

/// Smallest and largest second we format (years 0000..=9999).
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

impl Ts {
    pub fn new(secs: i64, nanos: u32, digits: u8) -> Option<Ts> {
        if !(MIN_SECS..=MAX_SECS).contains(&secs) || nanos >= 1_000_000_000 {
            return None;
        }
        Some(Ts {
            secs,
            nanos,
            digits: digits.min(9),
        })
    }

    /// Epoch milliseconds.
    pub fn from_millis(ms: i64) -> Option<Ts> {
        Ts::new(
            ms.div_euclid(1000),
            (ms.rem_euclid(1000) as u32) * 1_000_000,
            3,
        )
    }

    /// RFC 3339 in UTC (`Z`), at least millisecond precision, more if the source had more.
    pub fn to_rfc3339(self) -> String {
        let mut s = String::with_capacity(30);
        self.write_rfc3339(&mut s);
        s
    }

    pub fn write_rfc3339(self, s: &mut String) {
        // Into a stack buffer, then one append: pushing char by char cost a capacity
        // check per byte (~3% of an ALB line, which has three timestamps).
        let mut buf = Digits::default();
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        buf.num(y.max(0) as u32, 4);
        buf.byte(b'-');
        buf.num(m, 2);
        buf.byte(b'-');
        buf.num(d, 2);
        buf.byte(b'T');
        buf.num(sod / 3600, 2);
        buf.byte(b':');
        buf.num((sod / 60) % 60, 2);
        buf.byte(b':');
        buf.num(sod % 60, 2);
        buf.byte(b'.');
        let digits = self.digits.clamp(3, 9) as u32;
        let frac = self.nanos / 10u32.pow(9 - digits);
        buf.num(frac, digits as usize);
        buf.byte(b'Z');
        // Only ASCII digits and separators were written.
        if let Ok(text) = std::str::from_utf8(&buf.bytes[..buf.len]) {
            s.push_str(text);
        }
    }
}

/// A fixed buffer for a timestamp's text (a year of up to 10 digits, 9 fraction digits
/// and separators: under 40 bytes).
struct Digits {
    bytes: [u8; 40],
    len: usize,
}

impl Default for Digits {
    fn default() -> Self {
        Digits {
            bytes: [0; 40],
            len: 0,
        }
    }
}

impl Digits {
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `v` in decimal, zero-padded to at least `width` digits.
    fn num(&mut self, mut v: u32, width: usize) {
        let mut tmp = [b'0'; 10];
        let mut i = tmp.len();
        while v > 0 && i > 0 {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        let start = tmp.len().saturating_sub(width).min(i);
        for &b in &tmp[start..] {
            self.byte(b);
        }
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parse exactly `n` ASCII digits at `b[at..at+n]`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Build an instant from calendar fields and an offset east of UTC in seconds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn from_parts(
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    nanos: u32,
    frac_digits: u8,
    offset: i32,
) -> Option<Ts> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    let s = s.min(59); // leap second: clamp
    let secs = days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64 - offset as i64;
    Ts::new(secs, nanos, frac_digits)
}

/// Fraction after a `.`/`,` at `b[at]` (which must be the separator). Returns
/// (nanos, digits, next index).
fn fraction(b: &[u8], at: usize) -> (u32, u8, usize) {
    let mut i = at + 1;
    let mut nanos = 0u32;
    let mut n = 0u8;
    while i < b.len() && b[i].is_ascii_digit() {
        if n < 9 {
            nanos = nanos * 10 + (b[i] - b'0') as u32;
            n += 1;
        }
        i += 1;
    }
    let mut scale = n;
    while scale < 9 {
        nanos *= 10;
        scale += 1;
    }
    (nanos, n, i)
}

/// Zone designator at `b[i..]`: `Z`, `+hh:mm`, `+hhmm`, `+hh`; empty → `default`.
/// Must consume the rest of the input.
fn zone(b: &[u8], i: usize, default: i32) -> Option<i32> {
    let rest = b.get(i..)?;
    match rest.first() {
        None => Some(default),
        Some(b'Z') | Some(b'z') if rest.len() == 1 => Some(0),
        Some(&c @ (b'+' | b'-')) => {
            let sign = if c == b'-' { -1 } else { 1 };
            let hh = digits(rest, 1, 2)?;
            let mm = match rest.len() {
                3 => 0,
                5 => digits(rest, 3, 2)?,
                6 if rest[3] == b':' => digits(rest, 4, 2)?,
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            Some(sign * (hh * 3600 + mm * 60) as i32)
        }
        _ => None,
    }
}

/// ISO 8601 / RFC 3339: `YYYY-MM-DD[T ]HH:MM:SS[.f+][Z|±hh[:mm]]`; also `/` as the date
/// separator (nginx error log). No zone → `default_offset`.
pub(crate) fn parse_iso(s: &str, default_offset: i32) -> Option<Ts> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let sep = b[4];
    if !(sep == b'-' || sep == b'/')
        || b[7] != sep
        || !(b[10] == b'T' || b[10] == b' ' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let y = digits(b, 0, 4)? as i64;
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    let h = digits(b, 11, 2)?;
    let mi = digits(b, 14, 2)?;
    let sec = digits(b, 17, 2)?;
    let (nanos, nd, i) = match b.get(19) {
        Some(b'.') | Some(b',') => fraction(b, 19),
        _ => (0, 0, 19),
    };
    let off = zone(b, i, default_offset)?;
    from_parts(y, mo, d, h, mi, sec, nanos, nd, off)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// English month name, abbreviated or full, any case.
pub(crate) fn month(name: &str) -> Option<u32> {
    if name.len() < 3 {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let idx = MONTHS.iter().position(|m| lower.starts_with(m))?;
    const FULL: [&str; 12] = [
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
    if lower.len() == 3 || FULL[idx] == lower || (idx == 8 && lower == "sept") {
        Some(idx as u32 + 1)
    } else {
        None
    }
}

/// Common log format time: `06/Feb/2019:00:00:38 +0000` (also full month names, an
/// optional fraction and a missing zone).
pub(crate) fn parse_clf(s: &str, default_offset: i32) -> Option<Ts> {
    let (d, rest) = s.split_once('/')?;
    let (mon, rest) = rest.split_once('/')?;
    let d: u32 = d.parse().ok()?;
    let mo = month(mon)?;
    let b = rest.as_bytes();
    let y = digits(b, 0, 4)? as i64;
    if b.get(4) != Some(&b':') || b.get(7) != Some(&b':') || b.get(10) != Some(&b':') {
        return None;
    }
    let h = digits(b, 5, 2)?;
    let mi = digits(b, 8, 2)?;
    let sec = digits(b, 11, 2)?;
    let (nanos, nd, mut i) = match b.get(13) {
        Some(b'.') => fraction(b, 13),
        _ => (0, 0, 13),
    };
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let off = zone(b, i, default_offset)?;
    from_parts(y, mo, d, h, mi, sec, nanos, nd, off)
}

/// `HH:MM:SS[.frac]` → (h, m, s, nanos, digits).
pub(crate) fn parse_hms(s: &str) -> Option<(u32, u32, u32, u32, u8)> {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = digits(b, 0, 2)?;
    let m = digits(b, 3, 2)?;
    let sec = digits(b, 6, 2)?;
    let (nanos, nd, i) = match b.get(8) {
        Some(b'.') | Some(b',') => fraction(b, 8),
        None => (0, 0, 8),
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    Some((h, m, sec, nanos, nd))
}

/// `YYYY-MM-DD` and `HH:MM:SS[.f]` in separate fields (CloudFront, IIS), UTC.
pub(crate) fn parse_date_time(date: &str, time: &str) -> Option<Ts> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(b, 0, 4)? as i64;
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    let (h, mi, s, nanos, nd) = parse_hms(time)?;
    from_parts(y, mo, d, h, mi, s, nanos, nd, 0)
}

/// Epoch seconds with an optional fraction: `1418530010`, `1607455519.995`.
pub(crate) fn parse_epoch_secs(s: &str) -> Option<Ts> {
    let b = s.as_bytes();
    let dot = memchr::memchr(b'.', b).unwrap_or(b.len());
    let int = &s[..dot];
    if int.is_empty() || int.len() > 12 || !int.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let (nanos, nd, i) = if dot < b.len() {
        fraction(b, dot)
    } else {
        (0, 0, dot)
    };
    if i != b.len() {
        return None;
    }
    Ts::new(secs, nanos, nd)
}

/// A number that is probably an epoch (seconds, ms, µs or ns, told apart by magnitude).
pub(crate) fn from_epoch_number(v: f64) -> Option<Ts> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let (secs, nanos, digits) = if v >= 1e17 {
        ((v / 1e9) as i64, (v % 1e9) as u32, 9)
    } else if v >= 1e14 {
        ((v / 1e6) as i64, ((v % 1e6) * 1e3) as u32, 6)
    } else if v >= 1e11 {
        ((v / 1e3) as i64, ((v % 1e3) * 1e6) as u32, 3)
    } else {
        let secs = v.trunc();
        (
            secs as i64,
            (((v - secs) * 1e3).round() as u32).min(999) * 1_000_000,
            3,
        )
    };
    Ts::new(secs, nanos, digits)
}

/// Any of the textual time formats we know, for free-form time fields (JSON, logfmt).
pub(crate) fn parse_any(s: &str, default_offset: i32) -> Option<Ts> {
    let s = s.trim();
    if let Some(ts) = parse_iso(s, default_offset) {
        return Some(ts);
    }
    if s.bytes().all(|c| c.is_ascii_digit() || c == b'.') && !s.is_empty() {
        let v: f64 = s.parse().ok()?;
        return from_epoch_number(v);
    }
    parse_clf(s, default_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_roundtrip() {
        for days in [-800_000i64, -1, 0, 1, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn iso_variants() {
        let t = parse_iso("2018-07-02T22:23:00.186641Z", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2018-07-02T22:23:00.186641Z");
        let t = parse_iso("2018-12-20T02:59:40", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2018-12-20T02:59:40.000Z");
        let t = parse_iso("2016-12-26T16:22:13+02:00", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2016-12-26T14:22:13.000Z");
        let t = parse_iso("2017-09-12T22:32:21.212861448Z", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2017-09-12T22:32:21.212861448Z");
        let t = parse_iso("2016/10/25 14:49:34", 3600).unwrap();
        assert_eq!(t.to_rfc3339(), "2016-10-25T13:49:34.000Z");
        assert!(parse_iso("2018-02-30T00:00:00Z", 0).is_none());
        assert!(parse_iso("2018-07-02T22:23:00Zjunk", 0).is_none());
    }

    #[test]
    fn clf_variants() {
        let t = parse_clf("06/Feb/2019:00:00:38 +0000", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2019-02-06T00:00:38.000Z");
        let t = parse_clf("26/Dec/2016:16:16:29 +0200", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2016-12-26T14:16:29.000Z");
        let t = parse_clf("06/February/2019:00:00:38 -0130", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2019-02-06T01:30:38.000Z");
        assert!(parse_clf("06/Foo/2019:00:00:38 +0000", 0).is_none());
    }

    #[test]
    fn epochs() {
        assert_eq!(
            parse_epoch_secs("1418530070").unwrap().to_rfc3339(),
            "2014-12-14T04:07:50.000Z"
        );
        assert_eq!(
            parse_epoch_secs("1607455519.995").unwrap().to_rfc3339(),
            "2020-12-08T19:25:19.995Z"
        );
        assert_eq!(
            Ts::from_millis(1693457862729).unwrap().to_rfc3339(),
            "2023-08-31T04:57:42.729Z"
        );
        assert!(parse_epoch_secs("99999999999999999999").is_none());
    }
}
