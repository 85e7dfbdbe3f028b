//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), for
//! `aggregation: {schedule: ...}` and `limit_execution`, evaluated in UTC or the rule's
//! `query_timezone`.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};

#[derive(Clone, Debug)]
pub struct Cron {
    minute: Vec<bool>,
    hour: Vec<bool>,
    dom: Vec<bool>,
    month: Vec<bool>,
    dow: Vec<bool>,
    dom_any: bool,
    dow_any: bool,
}

fn field(spec: &str, min: u32, max: u32, what: &str) -> Result<(Vec<bool>, bool), String> {
    let mut set = vec![false; max as usize + 1];
    let any = spec == "*" || spec == "?";
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("invalid step in {what} [{part}]"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a
                .parse::<u32>()
                .map_err(|_| format!("invalid {what} [{part}]"))?;
            let b = b
                .parse::<u32>()
                .map_err(|_| format!("invalid {what} [{part}]"))?;
            (a, b)
        } else {
            let a = range
                .parse::<u32>()
                .map_err(|_| format!("invalid {what} [{part}]"))?;
            (a, if part.contains('/') { max } else { a })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{what} [{part}] out of range {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok((set, any))
}

impl Cron {
    pub fn parse(s: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "cron expression [{s}] must have 5 fields (minute hour day month weekday)"
            ));
        }
        let (minute, _) = field(parts[0], 0, 59, "minute")?;
        let (hour, _) = field(parts[1], 0, 23, "hour")?;
        let (dom, dom_any) = field(parts[2], 1, 31, "day of month")?;
        let (month, _) = field(parts[3], 1, 12, "month")?;
        let (mut dow, dow_any) = field(parts[4], 0, 7, "day of week")?;
        if dow[7] {
            dow[0] = true;
        }
        Ok(Cron {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_any,
            dow_any,
        })
    }

    fn matches<T: TimeZone>(&self, t: &DateTime<T>) -> bool {
        let day_ok = {
            let d = self.dom[t.day() as usize];
            let w = self.dow[t.weekday().num_days_from_sunday() as usize];
            // Vixie cron: when both day fields are restricted, either may match.
            match (self.dom_any, self.dow_any) {
                (true, true) => true,
                (true, false) => w,
                (false, true) => d,
                (false, false) => d || w,
            }
        };
        self.minute[t.minute() as usize]
            && self.hour[t.hour() as usize]
            && self.month[t.month() as usize]
            && day_ok
    }

    /// True if the minute containing `micros` matches.
    pub fn matches_micros(&self, micros: i64, tz: Option<chrono_tz::Tz>) -> bool {
        let Some(utc) = DateTime::<Utc>::from_timestamp_micros(micros) else {
            return false;
        };
        match tz {
            Some(tz) => self.matches(&utc.with_timezone(&tz)),
            None => self.matches(&utc),
        }
    }

    /// The first matching minute strictly after `micros` (searched up to ~4 years ahead).
    pub fn next_after(&self, micros: i64, tz: Option<chrono_tz::Tz>) -> Option<i64> {
        let minute = 60_000_000i64;
        let mut t = micros.div_euclid(minute) * minute + minute;
        for _ in 0..(4 * 366 * 24 * 60) {
            if self.matches_micros(t, tz) {
                return Some(t);
            }
            t += minute;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_times() {
        let c = Cron::parse("*/15 * * * *").unwrap();
        let t0 = cairn_core::time::parse_default("2024-01-01T10:07:30Z").unwrap();
        assert_eq!(
            c.next_after(t0, None),
            cairn_core::time::parse_default("2024-01-01T10:15:00Z")
        );
        let c = Cron::parse("0 9 * * 1-5").unwrap();
        // 2024-01-06 is a Saturday: next is Monday 09:00 (in Paris: 08:00 UTC).
        let sat = cairn_core::time::parse_default("2024-01-06T12:00:00Z").unwrap();
        assert_eq!(
            c.next_after(sat, None),
            cairn_core::time::parse_default("2024-01-08T09:00:00Z")
        );
        assert_eq!(
            c.next_after(sat, Some(chrono_tz::Europe::Paris)),
            cairn_core::time::parse_default("2024-01-08T08:00:00Z")
        );
        assert!(Cron::parse("61 * * * *").is_err());
    }
}
