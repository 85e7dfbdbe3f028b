//! syslog: RFC 5424 and RFC 3164 (BSD) lines, with or without the `<PRI>` part (files
//! written by a local daemon have none).

use serde_json::{Map, Value};

use crate::time;
use crate::util::*;

const SEVERITY: [&str; 8] = [
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
];

const FACILITY: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Context for RFC 3164's year-less timestamps.
pub(crate) struct SyslogCtx {
    /// Caller's "now" (epoch seconds) used to pick the year; `None` → no `@timestamp`.
    pub reference_time: Option<i64>,
    /// Offset east of UTC for zone-less times.
    pub offset: i32,
}

fn set_pri(ev: &mut Fields, pri: u32) {
    set(ev, "log.syslog.priority", Value::from(pri));
    let fac = pri / 8;
    let sev = pri % 8;
    set(ev, "log.syslog.facility.code", Value::from(fac));
    if let Some(n) = FACILITY.get(fac as usize) {
        set_str(ev, "log.syslog.facility.name", n);
    }
    set(ev, "log.syslog.severity.code", Value::from(sev));
    set_str(ev, "log.syslog.severity.name", SEVERITY[sev as usize]);
}

fn set_process(ev: &mut Fields, app: &str, pid: Option<&str>) {
    set_opt(ev, "process.name", app);
    if let Some(pid) = pid.filter(|p| !is_null(p)) {
        match parse_i64(pid) {
            Some(n) => set(ev, "process.pid", Value::from(n)),
            None => set_str(ev, "log.syslog.procid", pid),
        }
    }
}

pub(crate) fn parse_syslog(line: &str, ev: &mut Fields, ctx: &SyslogCtx) -> Result<(), String> {
    let mut rest = line;
    if let Some(r) = line.strip_prefix('<') {
        let close = r.find('>').ok_or("unterminated <PRI>")?;
        let pri: u32 = r[..close]
            .parse()
            .ok()
            .filter(|p| *p <= 191 && close <= 3)
            .ok_or_else(|| format!("invalid PRI: {}", clip(&r[..close])))?;
        set_pri(ev, pri);
        rest = &r[close + 1..];
        if let Some(after) = rest.strip_prefix("1 ") {
            set(ev, "log.syslog.version", Value::from(1));
            return parse_5424(after, ev, ctx);
        }
    }
    set_str(ev, "event.kind", "event");
    parse_3164(rest, ev, ctx)
}

fn next_field<'a>(s: &mut &'a str) -> Option<&'a str> {
    let t = s.trim_start_matches(' ');
    if t.is_empty() {
        *s = t;
        return None;
    }
    let end = t.find(' ').unwrap_or(t.len());
    let (f, r) = t.split_at(end);
    *s = r.strip_prefix(' ').unwrap_or(r);
    Some(f)
}

fn parse_5424(s: &str, ev: &mut Fields, ctx: &SyslogCtx) -> Result<(), String> {
    let mut rest = s;
    let ts = next_field(&mut rest).ok_or("RFC 5424: missing timestamp")?;
    let host = next_field(&mut rest).ok_or("RFC 5424: missing hostname")?;
    let app = next_field(&mut rest).ok_or("RFC 5424: missing app-name")?;
    let procid = next_field(&mut rest).ok_or("RFC 5424: missing procid")?;
    let msgid = next_field(&mut rest).ok_or("RFC 5424: missing msgid")?;
    set_str(ev, "event.kind", "event");
    if !is_null(ts) {
        let t = time::parse_iso(ts, ctx.offset)
            .ok_or_else(|| format!("RFC 5424: invalid timestamp: {}", clip(ts)))?;
        set_ts(ev, "@timestamp", t);
    }
    set_opt(ev, "host.hostname", host);
    set_process(ev, app, Some(procid));
    set_opt(ev, "log.syslog.msgid", msgid);
    // STRUCTURED-DATA: `-` or one or more `[id k="v" …]`.
    let mut r = rest;
    if let Some(after) = r.strip_prefix('-') {
        r = after;
    } else if r.starts_with('[') {
        let mut sd = Map::new();
        while let Some(body) = r.strip_prefix('[') {
            let (elem, after) = parse_sd_element(body)?;
            if let Some((id, params)) = elem {
                sd.insert(id, Value::Object(params));
            }
            r = after;
        }
        if !sd.is_empty() {
            set(ev, "log.syslog.structured_data", Value::Object(sd));
        }
    } else if !r.is_empty() {
        return Err("RFC 5424: invalid structured data".into());
    }
    let msg = r.strip_prefix(' ').unwrap_or(r);
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    if !msg.is_empty() {
        set_str(ev, "message", msg);
    }
    Ok(())
}

type SdElem = Option<(String, Map<String, Value>)>;

/// One SD element after its `[`; returns it and the text after its `]`.
fn parse_sd_element(s: &str) -> Result<(SdElem, &str), String> {
    let b = s.as_bytes();
    let id_end = s
        .find([' ', ']'])
        .ok_or("RFC 5424: unterminated SD element")?;
    let id = &s[..id_end];
    let mut params = Map::new();
    let mut i = id_end;
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        match b.get(i) {
            None => return Err("RFC 5424: unterminated SD element".into()),
            Some(b']') => {
                i += 1;
                break;
            }
            _ => {}
        }
        let eq = s[i..]
            .find('=')
            .map(|k| i + k)
            .ok_or("RFC 5424: SD param without =")?;
        let name = &s[i..eq];
        if b.get(eq + 1) != Some(&b'"') {
            return Err("RFC 5424: SD param value not quoted".into());
        }
        let mut j = eq + 2;
        let mut val = String::new();
        let mut seg = j;
        loop {
            match b.get(j) {
                None => return Err("RFC 5424: unterminated SD param value".into()),
                Some(b'\\') if matches!(b.get(j + 1), Some(b'"' | b'\\' | b']')) => {
                    val.push_str(&s[seg..j]);
                    val.push(b[j + 1] as char);
                    j += 2;
                    seg = j;
                }
                Some(b'"') => {
                    val.push_str(&s[seg..j]);
                    j += 1;
                    break;
                }
                _ => j += 1,
            }
        }
        params.insert(name.to_owned(), Value::String(val));
        i = j;
    }
    let elem = if id.is_empty() {
        None
    } else {
        Some((id.to_owned(), params))
    };
    Ok((elem, &s[i..]))
}

/// `Mmm dd hh:mm:ss host tag[pid]: msg`, or an ISO timestamp in place of the BSD one.
fn parse_3164(s: &str, ev: &mut Fields, ctx: &SyslogCtx) -> Result<(), String> {
    let mut rest = s.trim_start();
    // Timestamp.
    let first = rest.split(' ').next().unwrap_or("");
    if first.len() >= 19 && first.as_bytes()[0].is_ascii_digit() {
        let t = time::parse_iso(first, ctx.offset)
            .ok_or_else(|| format!("invalid timestamp: {}", clip(first)))?;
        set_ts(ev, "@timestamp", t);
        rest = &rest[first.len()..];
    } else {
        let mon = time::month(first).ok_or("not a syslog line: no timestamp")?;
        let mut r = rest[first.len()..].trim_start();
        let day_end = r.find(' ').ok_or("not a syslog line: no day")?;
        let day: u32 = r[..day_end].parse().map_err(|_| "invalid day")?;
        r = r[day_end..].trim_start();
        let hms_end = r.find(' ').unwrap_or(r.len());
        let (h, mi, sec, nanos, nd) =
            time::parse_hms(&r[..hms_end]).ok_or("invalid time of day")?;
        rest = &r[hms_end..];
        // Optional year after the time (some daemons add it).
        let mut year = None;
        let t = rest.trim_start();
        if t.len() >= 5
            && t.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && t.as_bytes()[4] == b' '
        {
            year = t[..4].parse::<i64>().ok();
            rest = &t[4..];
        }
        let ts = match (year, ctx.reference_time) {
            (Some(y), _) => time::from_parts(y, mon, day, h, mi, sec, nanos, nd, ctx.offset),
            (None, Some(now)) => {
                let (ry, _, _) = time::civil_from_days(now.div_euclid(86_400));
                let cand = time::from_parts(ry, mon, day, h, mi, sec, nanos, nd, ctx.offset);
                match cand {
                    // More than a day ahead of "now": last year's line.
                    Some(c) if c.secs > now + 86_400 => {
                        time::from_parts(ry - 1, mon, day, h, mi, sec, nanos, nd, ctx.offset)
                    }
                    // Feb 29 in a non-leap reference year.
                    None => time::from_parts(ry - 1, mon, day, h, mi, sec, nanos, nd, ctx.offset),
                    c => c,
                }
            }
            (None, None) => None,
        };
        match ts {
            Some(ts) => set_ts(ev, "@timestamp", ts),
            None if ctx.reference_time.is_none() && year.is_none() => {}
            None => return Err("invalid date".into()),
        }
    }
    let mut r = rest.trim_start();
    // Host: the next word unless it already is the tag (`tag:` / `tag[pid]:`).
    let word_end = r.find(' ').unwrap_or(r.len());
    let word = &r[..word_end];
    if !(word.ends_with(':') || word.ends_with("]:")) && word_end < r.len() {
        set_opt(ev, "host.hostname", word);
        r = r[word_end..].trim_start();
    }
    // Tag.
    let tag_end = r.find(": ").map(|i| (i, i + 2)).or_else(|| {
        if r.ends_with(':') {
            Some((r.len() - 1, r.len()))
        } else {
            None
        }
    });
    if let Some((te, me)) = tag_end {
        let tag = &r[..te];
        if !tag.is_empty() && !tag.contains(' ') {
            match tag.find('[') {
                Some(b) if tag.ends_with(']') => {
                    set_process(ev, &tag[..b], Some(&tag[b + 1..tag.len() - 1]))
                }
                _ => set_process(ev, tag, None),
            }
            r = &r[me..];
        }
    }
    set_str(ev, "message", r);
    Ok(())
}
