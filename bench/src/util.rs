//! Small helpers shared by the subcommands: sizes, a seeded RNG, timestamp formatting.

use anyhow::{bail, Context, Result};

/// Parses a size such as `1GB`, `5mb`, `256MiB`, `512k` or `1048576`.
///
/// Suffixes are binary (1 KB = 1024 bytes), as in Elasticsearch's byte-size settings.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid size {s:?}: bad number"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => bail!("invalid size {s:?}: unknown unit {other:?}"),
    };
    if !(n.is_finite() && n >= 0.0) {
        bail!("invalid size {s:?}");
    }
    Ok((n * mult as f64) as u64)
}

/// Human-readable binary size.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// xoshiro256** seeded through splitmix64: fast, and its output depends only on the
/// seed (not on any crate version), so `gen --seed N` is reproducible forever.
#[derive(Clone)]
pub struct Rng {
    s: [u64; 4],
}

pub fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng {
            s: [
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
            ],
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)`; `n` must be > 0.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `[lo, hi]`.
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Skewed index in `[0, n)`: small indexes are much more likely (roughly
    /// Zipf-like for `power` around 2–4).
    #[inline]
    pub fn skewed(&mut self, n: usize, power: i32) -> usize {
        let i = (self.f64().powi(power) * n as f64) as usize;
        i.min(n - 1)
    }

    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Log-normal-ish positive value with the given median.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        // Box–Muller.
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * z).exp()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub fn push_hex(out: &mut Vec<u8>, mut v: u64, digits: usize) {
    let start = out.len();
    out.resize(start + digits, b'0');
    for i in (0..digits).rev() {
        out[start + i] = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

struct Parts {
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    ms: u32,
}

fn parts(epoch_ms: i64) -> Parts {
    let secs = epoch_ms.div_euclid(1000);
    let ms = epoch_ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    Parts {
        y,
        mo,
        d,
        h: sod / 3600,
        mi: sod / 60 % 60,
        s: sod % 60,
        ms,
    }
}

/// `2024-05-01T12:34:56.789Z`
pub fn push_rfc3339_ms(out: &mut Vec<u8>, epoch_ms: i64) {
    let p = parts(epoch_ms);
    push_u64(out, p.y as u64);
    out.push(b'-');
    push_2(out, p.mo);
    out.push(b'-');
    push_2(out, p.d);
    out.push(b'T');
    push_2(out, p.h);
    out.push(b':');
    push_2(out, p.mi);
    out.push(b':');
    push_2(out, p.s);
    out.push(b'.');
    out.push(b'0' + (p.ms / 100) as u8);
    push_2(out, p.ms % 100);
    out.push(b'Z');
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// nginx `$time_local` in UTC: `01/May/2024:12:34:56 +0000`
pub fn push_clf_time(out: &mut Vec<u8>, epoch_ms: i64) {
    let p = parts(epoch_ms);
    push_2(out, p.d);
    out.push(b'/');
    out.extend_from_slice(MONTHS[(p.mo - 1) as usize].as_bytes());
    out.push(b'/');
    push_u64(out, p.y as u64);
    out.push(b':');
    push_2(out, p.h);
    out.push(b':');
    push_2(out, p.mi);
    out.push(b':');
    push_2(out, p.s);
    out.extend_from_slice(b" +0000");
}

/// Appends `s` as a JSON string literal (with quotes).
pub fn push_json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(b"\\u00");
                push_hex(out, b as u64, 2);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("5mb").unwrap(), 5 << 20);
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("12xb").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn times() {
        let mut v = Vec::new();
        push_rfc3339_ms(&mut v, 1_714_566_896_789);
        assert_eq!(std::str::from_utf8(&v).unwrap(), "2024-05-01T12:34:56.789Z");
        v.clear();
        push_clf_time(&mut v, 1_714_566_896_789);
        assert_eq!(
            std::str::from_utf8(&v).unwrap(),
            "01/May/2024:12:34:56 +0000"
        );
    }

    #[test]
    fn json_escape() {
        let mut v = Vec::new();
        push_json_str(&mut v, b"a\"b\\c\nd\x01e");
        let s: String = serde_json::from_slice(&v).unwrap();
        assert_eq!(s, "a\"b\\c\nd\x01e");
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            assert!(r.below(10) < 10);
            assert!(r.skewed(10, 3) < 10);
        }
    }
}
