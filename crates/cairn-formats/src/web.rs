//! Web server logs: nginx/Apache access (combined, common, with vhost or forwarded
//! address lists, Apache `ssl_request_log`), nginx and Apache error logs, IIS W3C.

use serde_json::Value;

use crate::time;
use crate::util::*;

fn web_common(ev: &mut Fields, dataset: &str) {
    set_str(ev, "event.kind", "event");
    set_str(ev, "event.category", "web");
    set_str(ev, "event.dataset", dataset);
}

fn status_outcome(ev: &mut Fields, code: i64) {
    set(ev, "http.response.status_code", Value::from(code));
    set_str(
        ev,
        "event.outcome",
        if code >= 400 { "failure" } else { "success" },
    );
}

/// nginx/Apache access line. `dataset` is `nginx.access` or `apache.access`; the
/// forwarded-address list goes to `{dataset}.remote_ip_list`.
pub(crate) fn parse_access(line: &str, ev: &mut Fields, dataset: &str) -> Result<(), String> {
    let b = line.as_bytes();
    let open = memchr::memchr(b'[', b).ok_or("no [time] field")?;
    let close = memchr::memchr(b']', &b[open..])
        .map(|k| open + k)
        .ok_or("unterminated [time] field")?;
    let ts_text = &line[open + 1..close];
    let ts = time::parse_clf(ts_text, 0)
        .ok_or_else(|| format!("time: invalid timestamp: {}", clip(ts_text)))?;
    let prefix = line[..open].trim();
    let after = &line[close + 1..];
    web_common(ev, dataset);
    set_ts(ev, "@timestamp", ts);
    if prefix.is_empty() {
        return parse_ssl_request(after, ev);
    }
    // Fast path for the common `client ident user` prefix (no vhost, no address list):
    // the general grouping below allocates four vectors per line.
    if memchr::memchr2(b',', b'"', prefix.as_bytes()).is_none() {
        let mut it = prefix.split_whitespace();
        if let (Some(client), Some(_ident), Some(user), None) =
            (it.next(), it.next(), it.next(), it.next())
        {
            set_opt(ev, "user.name", user);
            set_addr(ev, "source", client);
            return parse_access_tail(after, ev);
        }
    }
    // Prefix: [vhost] addr[, addr…] [addr] ident user
    let words: Vec<&str> = prefix.split_whitespace().collect();
    if words.len() < 3 {
        return Err("expected `client ident user` before [time]".into());
    }
    let user = words[words.len() - 1];
    set_opt(ev, "user.name", user);
    let head = &words[..words.len() - 2];
    // Group comma-continued words into items; strip quotes.
    let mut items: Vec<Vec<&str>> = Vec::new();
    let mut continuing = false;
    for w in head {
        let w = w.trim_matches('"');
        let ends_with_comma = w.ends_with(',');
        let parts: Vec<&str> = w
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if continuing {
            if let Some(last) = items.last_mut() {
                last.extend(parts);
            }
        } else {
            items.push(parts);
        }
        continuing = ends_with_comma;
    }
    items.retain(|i| !i.is_empty());
    let mut addrs: Vec<&str> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if i == 0 && items.len() >= 2 && item.len() == 1 {
            // Virtual host first (`%v` / `$host`).
            let (host, port) = split_host_port(item[0]);
            set_str(ev, "destination.domain", host);
            if let Some(p) = port {
                set(ev, "destination.port", Value::from(p));
            }
            continue;
        }
        addrs.extend(item.iter().copied());
    }
    if let Some(first) = addrs.first() {
        set_addr(ev, "source", first);
    }
    if addrs.len() > 1 {
        set(
            ev,
            format!("{dataset}.remote_ip_list"),
            Value::Array(
                addrs
                    .iter()
                    .map(|a| Value::String((*a).to_owned()))
                    .collect(),
            ),
        );
    }
    parse_access_tail(after, ev)
}

/// The part of an access line after `[time]`: request, status, bytes, referrer, agent.
fn parse_access_tail(after: &str, ev: &mut Fields) -> Result<(), String> {
    let mut toks = Tokens::new(after, false);
    let req = toks.next().ok_or("missing request field")?;
    if !req.quoted {
        return Err("request field is not quoted".into());
    }
    set_request_line(ev, &req.text());
    let status = toks.next().ok_or("missing status field")?;
    let code = parse_i64(status.raw)
        .ok_or_else(|| format!("status: not an integer: {}", clip(status.raw)))?;
    status_outcome(ev, code);
    if let Some(bytes) = toks.next() {
        set_int(ev, "http.response.body.bytes", bytes.raw, "bytes")?;
    }
    if let Some(r) = toks.next().and_then(|t| t.value()) {
        set_str(ev, "http.request.referrer", &r);
    }
    if let Some(ua) = toks.next().and_then(|t| t.value()) {
        set_str(ev, "user_agent.original", &ua);
    }
    Ok(())
}

/// Apache `ssl_request_log`: `[time] client protocol cipher "request" bytes`.
fn parse_ssl_request(after: &str, ev: &mut Fields) -> Result<(), String> {
    let mut toks = Tokens::new(after, false);
    let client = toks.next().ok_or("missing client")?;
    set_addr(ev, "source", client.raw);
    if let Some(p) = toks.next() {
        set_tls_version(ev, p.raw);
    }
    if let Some(c) = toks.next() {
        set_opt(ev, "tls.cipher", c.raw);
    }
    let req = toks.next().ok_or("missing request field")?;
    set_request_line(ev, &req.text());
    if let Some(bytes) = toks.next() {
        set_int(ev, "http.response.body.bytes", bytes.raw, "bytes")?;
    }
    Ok(())
}

/// nginx error log: `YYYY/MM/DD HH:MM:SS [level] pid#tid: *cid message`.
pub(crate) fn parse_nginx_error(line: &str, ev: &mut Fields, offset: i32) -> Result<(), String> {
    let ts_text = line.get(..19).ok_or("line too short for a timestamp")?;
    let ts = time::parse_iso(ts_text, offset)
        .ok_or_else(|| format!("time: invalid timestamp: {}", clip(ts_text)))?;
    let rest = line[19..].trim_start();
    let rest = rest.strip_prefix('[').ok_or("missing [level]")?;
    let (level, rest) = rest.split_once(']').ok_or("unterminated [level]")?;
    web_common(ev, "nginx.error");
    set(ev, "event.category", Value::String("web".into()));
    set_ts(ev, "@timestamp", ts);
    set_str(ev, "log.level", level);
    let mut rest = rest.trim_start();
    if let Some((ids, msg)) = rest.split_once(": ") {
        if let Some((pid, tid)) = ids.split_once('#') {
            if let (Some(p), Some(t)) = (parse_i64(pid), parse_i64(tid)) {
                set(ev, "process.pid", Value::from(p));
                set(ev, "process.thread.id", Value::from(t));
                rest = msg;
            }
        }
    }
    if let Some(r) = rest.strip_prefix('*') {
        if let Some((cid, msg)) = r.split_once(' ') {
            if let Some(c) = parse_i64(cid) {
                set(ev, "nginx.error.connection_id", Value::from(c));
                rest = msg;
            }
        }
    }
    set_str(ev, "message", rest);
    Ok(())
}

/// Apache error log: `[Wed Oct 11 14:32:52.123456 2000] [module:level] [pid N:tid M]
/// [client ip:port] message` (2.2 style `[level]` and `[client ip]` too).
pub(crate) fn parse_apache_error(line: &str, ev: &mut Fields, offset: i32) -> Result<(), String> {
    let rest = line.strip_prefix('[').ok_or("missing [time]")?;
    let (ts_text, mut rest) = rest.split_once(']').ok_or("unterminated [time]")?;
    let ts = apache_error_time(ts_text, offset)
        .ok_or_else(|| format!("time: invalid timestamp: {}", clip(ts_text)))?;
    web_common(ev, "apache.error");
    set_ts(ev, "@timestamp", ts);
    let mut seen_level = false;
    loop {
        let r = rest.trim_start();
        let Some(inner) = r.strip_prefix('[') else {
            rest = r;
            break;
        };
        let Some((group, after)) = inner.split_once(']') else {
            rest = r;
            break;
        };
        if let Some(p) = group.strip_prefix("pid ") {
            let (pid, tid) = match p.split_once(":tid ") {
                Some((a, b)) => (a, Some(b)),
                None => (p, None),
            };
            set_int_lenient(ev, "process.pid", pid.trim());
            if let Some(t) = tid {
                set_int_lenient(ev, "process.thread.id", t.trim());
            }
        } else if let Some(c) = group.strip_prefix("client ") {
            set_ip_port(ev, "source", c.trim(), true);
        } else if !seen_level {
            seen_level = true;
            match group.split_once(':') {
                Some((module, level)) => {
                    set_str(ev, "apache.error.module", module);
                    set_str(ev, "log.level", level);
                }
                None => set_str(ev, "log.level", group),
            }
        } else {
            rest = r;
            break;
        }
        rest = after;
    }
    set_str(ev, "message", rest.trim_start());
    Ok(())
}

/// `Mon Dec 26 16:15:55.103786 2016` (weekday ignored).
fn apache_error_time(s: &str, offset: i32) -> Option<time::Ts> {
    let mut it = s.split_whitespace();
    let _wd = it.next()?;
    let mon = time::month(it.next()?)?;
    let day: u32 = it.next()?.parse().ok()?;
    let hms = it.next()?;
    let year: i64 = it.next()?.parse().ok()?;
    let (h, m, sec, nanos, nd) = time::parse_hms(hms)?;
    time::from_parts(year, mon, day, h, m, sec, nanos, nd, offset)
}

/// IIS columns when no `#Fields:` header was seen (the IIS 8.5+ default selection).
pub const IIS_DEFAULT_FIELDS: [&str; 15] = [
    "date",
    "time",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs(User-Agent)",
    "cs(Referer)",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "time-taken",
];

/// The 22 columns IIS writes with every standard W3C field selected, plus the custom
/// `X-Forwarded-For` field (23 columns): seen without a header in real exports.
pub(crate) const IIS_EXTENDED_XFF_FIELDS: [&str; 23] = [
    "date",
    "time",
    "s-sitename",
    "s-computername",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs-version",
    "cs(User-Agent)",
    "cs(Cookie)",
    "cs(Referer)",
    "cs-host",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "sc-bytes",
    "cs-bytes",
    "time-taken",
    "X-Forwarded-For",
];

/// Column layout for an IIS line: the `#Fields:` header when the line has as many columns
/// as it names; otherwise (no header, or a file whose header does not match its lines, as
/// in concatenated or hand-edited logs) a known layout with that many columns, else the
/// header or the default selection.
pub(crate) fn iis_layout<'a>(line: &str, header: Option<&'a [String]>) -> IisLayout<'a> {
    let n = line.split(' ').filter(|s| !s.is_empty()).count();
    match header {
        Some(h) if h.len() == n => IisLayout::Header(h),
        _ if n == IIS_DEFAULT_FIELDS.len() => IisLayout::Known(&IIS_DEFAULT_FIELDS),
        _ if n == IIS_EXTENDED_XFF_FIELDS.len() => IisLayout::Known(&IIS_EXTENDED_XFF_FIELDS),
        Some(h) => IisLayout::Header(h),
        None => IisLayout::Known(&IIS_DEFAULT_FIELDS),
    }
}

pub(crate) enum IisLayout<'a> {
    Header(&'a [String]),
    Known(&'static [&'static str]),
}

/// IIS W3C extended line with the given column names.
pub(crate) fn parse_iis<S: AsRef<str>>(
    line: &str,
    fields: &[S],
    ev: &mut Fields,
) -> Result<(), String> {
    web_common(ev, "iis.access");
    let mut date = None;
    let mut tm = None;
    let mut n = 0;
    for (name, raw) in fields.iter().zip(line.split(' ').filter(|s| !s.is_empty())) {
        n += 1;
        if is_null(raw) {
            continue;
        }
        match name.as_ref() {
            "date" => date = Some(raw),
            "time" => tm = Some(raw),
            "s-ip" => set_addr(ev, "destination", raw),
            "cs-method" => set_str(ev, "http.request.method", raw),
            "cs-uri-stem" => set_str(ev, "url.path", raw),
            "cs-uri-query" => set_str(ev, "url.query", raw),
            "s-port" => set_int(ev, "destination.port", raw, "s-port")?,
            "cs-username" => set_str(ev, "user.name", raw),
            "c-ip" => set_addr(ev, "source", raw),
            "cs(User-Agent)" => set_str(ev, "user_agent.original", &raw.replace('+', " ")),
            "cs(Referer)" => set_str(ev, "http.request.referrer", raw),
            "sc-status" => {
                let code = parse_i64(raw)
                    .ok_or_else(|| format!("sc-status: not an integer: {}", clip(raw)))?;
                status_outcome(ev, code);
            }
            "sc-substatus" => set_int(ev, "iis.access.sub_status", raw, "sc-substatus")?,
            "sc-win32-status" => set_int(ev, "iis.access.win32_status", raw, "sc-win32-status")?,
            "time-taken" => {
                let ms = parse_i64(raw)
                    .ok_or_else(|| format!("time-taken: not an integer: {}", clip(raw)))?;
                set(
                    ev,
                    "event.duration",
                    Value::from(ms.saturating_mul(1_000_000)),
                );
            }
            "s-sitename" => set_str(ev, "iis.access.site_name", raw),
            "s-computername" => set_str(ev, "iis.access.server_name", raw),
            "cs-version" => set_str(ev, "http.version", raw.strip_prefix("HTTP/").unwrap_or(raw)),
            "cs(Cookie)" => set_str(ev, "iis.access.cookie", raw),
            "cs-host" => set_str(ev, "url.domain", raw),
            "sc-bytes" => set_int(ev, "http.response.body.bytes", raw, "sc-bytes")?,
            "cs-bytes" => set_int(ev, "http.request.body.bytes", raw, "cs-bytes")?,
            "X-Forwarded-For" | "x-forwarded-for" => {
                set_str(ev, "iis.access.x_forwarded_for", raw);
                if is_ip(raw) {
                    // An array, as the CloudFront parser writes it.
                    set(
                        ev,
                        "network.forwarded_ip",
                        Value::Array(vec![Value::String(raw.to_owned())]),
                    );
                }
            }
            other => {
                let key: String = other
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                set_str(ev, format!("iis.access.{}", key.trim_matches('_')), raw);
            }
        }
    }
    if n < 2 {
        return Err("not an IIS W3C record".into());
    }
    match (date, tm) {
        (Some(d), Some(t)) => {
            let ts = time::parse_date_time(d, t)
                .ok_or_else(|| format!("date/time: invalid: {} {}", clip(d), clip(t)))?;
            set_ts(ev, "@timestamp", ts);
        }
        (None, None) => {}
        _ => return Err("date/time: one of the two is missing".into()),
    }
    Ok(())
}
