//! Shared building blocks: nested-field insertion, tokenizers, IP/URL helpers,
//! percent-decoding.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::Value;

use crate::time::Ts;
use crate::Event;

/// A field path: static for the fixed ECS names, owned for computed ones.
pub(crate) type Path = Cow<'static, str>;

/// Fields collected by a parser as (dotted path, value) pairs, turned into a nested
/// [`Event`] at the end with one map insertion per key (setting nested paths one by one
/// would hash every level of every path, which dominated parse time).
#[derive(Debug, Default)]
pub(crate) struct Fields {
    // Two parallel vectors rather than one of pairs: `build` borrows the paths while it
    // moves the values out, without first splitting a vector of pairs (which cost ~5%).
    paths: Vec<Path>,
    values: Vec<Value>,
}

impl Fields {
    pub fn new() -> Self {
        Fields {
            paths: Vec::with_capacity(48),
            values: Vec::with_capacity(48),
        }
    }

    /// The last value set at exactly this path.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let i = self.paths.iter().rposition(|p| p.as_ref() == path)?;
        self.values.get(i)
    }

    /// Build the nested event (a later value for the same path wins).
    pub fn build(self) -> Event {
        // One scratch vector for every level: (slot id at the current level, remaining
        // path, value). Each level sorts its slice so that the items of a group are
        // contiguous and builds the group from that sub-slice: no per-group vectors
        // (they, their regrowth and memchr on short paths cost ~10% of an ALB line).
        let mut entries: Vec<(u32, &str, Value)> = Vec::with_capacity(self.paths.len());
        entries.extend(
            self.paths
                .iter()
                .zip(self.values)
                .map(|(p, v)| (0, p.as_ref(), v)),
        );
        build_level(&mut entries)
    }
}

/// Position of the first `.`: paths are short, a plain loop beats memchr's SIMD setup.
#[inline]
fn first_dot(path: &str) -> Option<usize> {
    path.as_bytes().iter().position(|&c| c == b'.')
}

/// Build one level of the event from `entries` (paths relative to this level). Keys come
/// out in the order their first entry was set; a leaf set twice keeps its first position
/// and its last value (`IndexMap::insert`), as a sequence of nested inserts would.
fn build_level(entries: &mut [(u32, &str, Value)]) -> Event {
    // Slot per entry: every leaf gets its own; dotted paths share their head's group.
    let mut slots: Vec<(&str, bool)> = Vec::with_capacity(entries.len());
    for e in entries.iter_mut() {
        let path = e.1;
        e.0 = match first_dot(path) {
            None => {
                slots.push((path, false));
                (slots.len() - 1) as u32
            }
            Some(i) => {
                let head = &path[..i];
                match slots.iter().rposition(|&(k, g)| g && k == head) {
                    Some(s) => s as u32,
                    None => {
                        slots.push((head, true));
                        (slots.len() - 1) as u32
                    }
                }
            }
        };
    }
    // Stable: entries of one group keep their order.
    if !entries.is_sorted_by_key(|e| e.0) {
        entries.sort_by_key(|e| e.0);
    }
    let mut map = Event::with_capacity(slots.len());
    let mut i = 0;
    while i < entries.len() {
        let slot = entries[i].0 as usize;
        let (key, group) = slots[slot];
        if !group {
            map.insert(key.to_owned(), std::mem::take(&mut entries[i].2));
            i += 1;
            continue;
        }
        let mut j = i;
        while j < entries.len() && entries[j].0 as usize == slot {
            let p = entries[j].1;
            entries[j].1 = &p[key.len() + 1..];
            j += 1;
        }
        let child = build_level(&mut entries[i..j]);
        map.insert(key.to_owned(), Value::Object(child));
        i = j;
    }
    map
}

/// Record `v` at a dotted path (`"http.response.status_code"`).
#[inline]
pub(crate) fn set(ev: &mut Fields, path: impl Into<Path>, v: Value) {
    ev.paths.push(path.into());
    ev.values.push(v);
}

/// Read a dotted path.
pub fn get_path<'a>(ev: &'a Event, path: &str) -> Option<&'a Value> {
    let mut cur = ev;
    let mut rest = path;
    while let Some(i) = memchr::memchr(b'.', rest.as_bytes()) {
        cur = cur.get(&rest[..i])?.as_object()?;
        rest = &rest[i + 1..];
    }
    cur.get(rest)
}

#[inline]
pub(crate) fn set_str(ev: &mut Fields, path: impl Into<Path>, s: &str) {
    set(ev, path, Value::String(s.to_owned()));
}

/// Set a string unless it is the null token `-` (or empty).
#[inline]
pub(crate) fn set_opt(ev: &mut Fields, path: impl Into<Path>, s: &str) {
    if !is_null(s) {
        set_str(ev, path, s);
    }
}

#[inline]
pub(crate) fn is_null(s: &str) -> bool {
    s.is_empty() || s == "-"
}

/// Integer field: `-` → absent; anything unparsable is an error naming the field.
pub(crate) fn set_int(
    ev: &mut Fields,
    path: impl Into<Path>,
    s: &str,
    field: &str,
) -> Result<(), String> {
    if is_null(s) {
        return Ok(());
    }
    match parse_i64(s) {
        Some(v) => {
            set(ev, path, Value::from(v));
            Ok(())
        }
        None => Err(format!("{field}: not an integer: {}", clip(s))),
    }
}

/// Integer field, lenient: unparsable values are kept nowhere rather than failing the line.
pub(crate) fn set_int_lenient(ev: &mut Fields, path: impl Into<Path>, s: &str) {
    if let Some(v) = parse_i64(s) {
        set(ev, path, Value::from(v));
    }
}

pub(crate) fn parse_i64(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return s.parse().ok();
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(if neg { -v } else { v })
}

/// Float field; `-` → absent, `-1` (ELB "not dispatched") → absent when `sentinel`.
pub(crate) fn set_float(
    ev: &mut Fields,
    path: impl Into<Path>,
    s: &str,
    field: &str,
    minus_one_is_null: bool,
) -> Result<(), String> {
    if is_null(s) || (minus_one_is_null && (s == "-1" || s == "-1.0" || s == "-1.000")) {
        return Ok(());
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            set(ev, path, Value::from(v));
            Ok(())
        }
        _ => Err(format!("{field}: not a number: {}", clip(s))),
    }
}

pub(crate) fn set_ts(ev: &mut Fields, path: impl Into<Path>, ts: Ts) {
    set(ev, path, Value::String(ts.to_rfc3339()));
}

/// Shorten a value for an error message.
pub(crate) fn clip(s: &str) -> &str {
    if s.len() <= 64 {
        return s;
    }
    let mut end = 64;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One token of a space-separated line with optional `"…"` and `[…]` fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok<'a> {
    pub raw: &'a str,
    pub quoted: bool,
    /// The quoted value contained `\"` escapes.
    pub escaped: bool,
}

impl<'a> Tok<'a> {
    /// Value with `\"` unescaped; `None` for the null token `-`.
    pub fn value(&self) -> Option<Cow<'a, str>> {
        if is_null(self.raw) {
            return None;
        }
        Some(self.text())
    }

    pub fn text(&self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(self.raw.replace("\\\"", "\""))
        } else {
            Cow::Borrowed(self.raw)
        }
    }
}

/// Tokenizer for ELB / S3 / web access lines: tokens split on runs of spaces; a token
/// starting with `"` runs to the next `"` followed by a space or the end of the line
/// (`\"` inside is a literal quote); with `brackets`, a token starting with `[` runs to
/// the next `]`.
pub(crate) struct Tokens<'a> {
    s: &'a str,
    pos: usize,
    brackets: bool,
}

impl<'a> Tokens<'a> {
    pub fn new(s: &'a str, brackets: bool) -> Self {
        Tokens {
            s,
            pos: 0,
            brackets,
        }
    }
}

impl<'a> Tokens<'a> {
    /// All tokens, in a vector sized for the longest AWS record (ALB has 34 fields):
    /// growing one from empty reallocated it four times per line.
    pub fn collect_all(self) -> Vec<Tok<'a>> {
        let mut v = Vec::with_capacity(40);
        v.extend(self);
        v
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Tok<'a>;

    fn next(&mut self) -> Option<Tok<'a>> {
        let b = self.s.as_bytes();
        let mut i = self.pos;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            self.pos = i;
            return None;
        }
        if b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            let mut escaped = false;
            loop {
                match memchr::memchr(b'"', &b[j..]) {
                    None => {
                        // Unterminated: the rest of the line.
                        self.pos = b.len();
                        return Some(Tok {
                            raw: &self.s[start..],
                            quoted: true,
                            escaped,
                        });
                    }
                    Some(k) => {
                        let q = j + k;
                        if q > start && b[q - 1] == b'\\' {
                            escaped = true;
                            j = q + 1;
                            continue;
                        }
                        if q + 1 == b.len() || b[q + 1] == b' ' {
                            self.pos = q + 1;
                            return Some(Tok {
                                raw: &self.s[start..q],
                                quoted: true,
                                escaped,
                            });
                        }
                        j = q + 1;
                    }
                }
            }
        }
        if self.brackets && b[i] == b'[' {
            if let Some(k) = memchr::memchr(b']', &b[i..]) {
                self.pos = i + k + 1;
                return Some(Tok {
                    raw: &self.s[i + 1..i + k],
                    quoted: true,
                    escaped: false,
                });
            }
        }
        let end = memchr::memchr(b' ', &b[i..]).map_or(b.len(), |k| i + k);
        self.pos = end;
        Some(Tok {
            raw: &self.s[i..end],
            quoted: false,
            escaped: false,
        })
    }
}

/// Split `host:port` on the last `:`; `[v6]:port` accepted. Port must be numeric.
pub(crate) fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(inner) = s.strip_prefix('[') {
        if let Some(close) = inner.find(']') {
            let host = &inner[..close];
            let port = inner[close + 1..]
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok());
            return (host, port);
        }
    }
    match s.rfind(':') {
        Some(i) => match s[i + 1..].parse::<u16>() {
            Ok(p) if !s[i + 1..].is_empty() && s[i + 1..].bytes().all(|c| c.is_ascii_digit()) => {
                (&s[..i], Some(p))
            }
            _ => (s, None),
        },
        None => (s, None),
    }
}

#[inline]
pub(crate) fn is_ip(s: &str) -> bool {
    // Cheap pre-check before the std parser.
    !s.is_empty() && s.len() <= 45 && s.parse::<IpAddr>().is_ok()
}

/// `{prefix}.address`, `{prefix}.ip`, `{prefix}.port` without allocating for the usual prefixes.
fn addr_paths(prefix: &str) -> (Path, Path, Path) {
    let st = |a: &'static str, b: &'static str, c: &'static str| {
        (Cow::Borrowed(a), Cow::Borrowed(b), Cow::Borrowed(c))
    };
    match prefix {
        "source" => st("source.address", "source.ip", "source.port"),
        "destination" => st("destination.address", "destination.ip", "destination.port"),
        "client" => st("client.address", "client.ip", "client.port"),
        "aws.elb.backend" => st(
            "aws.elb.backend.address",
            "aws.elb.backend.ip",
            "aws.elb.backend.port",
        ),
        _ => (
            Cow::Owned(format!("{prefix}.address")),
            Cow::Owned(format!("{prefix}.ip")),
            Cow::Owned(format!("{prefix}.port")),
        ),
    }
}

/// `{prefix}.address` always, `{prefix}.ip` when the text is an IP address.
pub(crate) fn set_addr(ev: &mut Fields, prefix: &str, s: &str) {
    if is_null(s) {
        return;
    }
    let (address, ip, _) = addr_paths(prefix);
    set_str(ev, address, s);
    if is_ip(s) {
        set_str(ev, ip, s);
    }
}

/// `ip:port` into `{prefix}.ip` + `{prefix}.port` (and `{prefix}.address` when
/// `with_address`); a token whose host part is not an IP is kept whole in
/// `{prefix}.address` with no `.ip` (anonymised samples hold such tokens).
pub(crate) fn set_ip_port(ev: &mut Fields, prefix: &str, s: &str, with_address: bool) {
    if is_null(s) {
        return;
    }
    let (host, p) = split_host_port(s);
    let (address, ip, port) = addr_paths(prefix);
    if is_ip(host) {
        if with_address {
            set_str(ev, address, host);
        }
        set_str(ev, ip, host);
        if let Some(p) = p {
            set(ev, port, Value::from(p));
        }
    } else {
        set_str(ev, address, s);
    }
}

/// Parts of a URL as logged.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct UrlParts<'a> {
    pub scheme: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub port: Option<u16>,
    pub path: Option<&'a str>,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

pub(crate) fn url_parts(u: &str) -> UrlParts<'_> {
    let mut p = UrlParts::default();
    let mut rest = u;
    if let Some(i) = u.find("://") {
        let scheme = &u[..i];
        if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.')
        {
            p.scheme = Some(scheme);
            rest = &u[i + 3..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let mut auth = &rest[..end];
            if let Some(at) = auth.rfind('@') {
                auth = &auth[at + 1..];
            }
            let (host, port) = split_host_port(auth);
            if port.is_some() {
                p.port = port;
            }
            if !host.is_empty() {
                p.domain = Some(host);
            }
            rest = &rest[end..];
        }
    } else if !u.starts_with('/') {
        return p;
    }
    let (before_frag, frag) = match rest.find('#') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (path, query) = match before_frag.find('?') {
        Some(i) => (&before_frag[..i], Some(&before_frag[i + 1..])),
        None => (before_frag, None),
    };
    if !path.is_empty() {
        p.path = Some(path);
    }
    p.query = query.filter(|q| !q.is_empty());
    p.fragment = frag.filter(|f| !f.is_empty());
    p
}

/// Write `url.original` and the derived `url.*` parts.
pub(crate) fn set_url(ev: &mut Fields, url: &str) {
    if is_null(url) {
        return;
    }
    set_str(ev, "url.original", url);
    let p = url_parts(url);
    if let Some(s) = p.scheme {
        set_str(ev, "url.scheme", s);
    }
    if let Some(s) = p.domain {
        set_str(ev, "url.domain", s);
    }
    if let Some(port) = p.port {
        set(ev, "url.port", Value::from(port));
    }
    if let Some(s) = p.path {
        set_str(ev, "url.path", s);
    }
    if let Some(s) = p.query {
        set_str(ev, "url.query", s);
    }
    if let Some(s) = p.fragment {
        set_str(ev, "url.fragment", s);
    }
}

/// `METHOD URL HTTP/x.y` into `http.request.method`, `url.*`, `http.version`. The URL
/// may contain spaces; the version may be missing.
pub(crate) fn set_request_line(ev: &mut Fields, req: &str) {
    let req = req.trim();
    if is_null(req) {
        return;
    }
    let Some(sp) = req.find(' ') else {
        // Not a request line (garbage or a TLS handshake sent to a plain port).
        set_str(ev, "url.original", req);
        return;
    };
    let method = &req[..sp];
    let rest = req[sp + 1..].trim_start();
    let (url, version) = match rest.rfind(' ') {
        Some(i) if rest[i + 1..].starts_with("HTTP/") || rest[i + 1..] == *"-" => {
            (rest[..i].trim_end(), Some(&rest[i + 1..]))
        }
        _ => match rest.strip_prefix("HTTP/") {
            // "GET HTTP/1.1": no URL
            Some(_) if !rest.contains(' ') => ("-", Some(rest)),
            _ => (rest, None),
        },
    };
    set_opt(ev, "http.request.method", method);
    set_url(ev, url);
    if let Some(v) = version {
        let v = v.strip_prefix("HTTP/").unwrap_or(v);
        set_opt(ev, "http.version", v);
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decode `%XX` once (invalid escapes kept literally), UTF-8 lossily.
pub(crate) fn pct_decode(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if memchr::memchr(b'%', b).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// `TLSv1.2` / `tlsv12` / `TLSV1.2` → ("tls", "1.2").
pub(crate) fn tls_version(s: &str) -> Option<(&'static str, String)> {
    let lower = s.to_ascii_lowercase();
    let (proto, rest) = if let Some(r) = lower.strip_prefix("tlsv") {
        ("tls", r)
    } else if let Some(r) = lower.strip_prefix("sslv") {
        ("ssl", r)
    } else {
        return None;
    };
    let v = if rest.contains('.') {
        rest.to_owned()
    } else if rest.len() == 2 && rest.bytes().all(|c| c.is_ascii_digit()) {
        format!("{}.{}", &rest[..1], &rest[1..])
    } else if rest.len() == 1 && rest.bytes().all(|c| c.is_ascii_digit()) {
        format!("{rest}.0")
    } else {
        return None;
    };
    Some((proto, v))
}

pub(crate) fn set_tls_version(ev: &mut Fields, s: &str) {
    if let Some((proto, v)) = tls_version(s) {
        set(ev, "tls.version", Value::String(v));
        set_str(ev, "tls.version_protocol", proto);
    }
}

/// Common fields of the AWS formats.
pub(crate) fn aws_common(ev: &mut Fields, dataset: &'static str) {
    set_str(ev, "event.kind", "event");
    set_str(ev, "event.dataset", dataset);
    set_str(ev, "cloud.provider", "aws");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_quotes() {
        let toks: Vec<_> = Tokens::new(r#"a "b c" "d\" e" [x y] "-"  f"#, true)
            .map(|t| t.text().into_owned())
            .collect();
        assert_eq!(toks, vec!["a", "b c", "d\" e", "x y", "-", "f"]);
        let toks: Vec<_> = Tokens::new(r#""h2","http/1.1" "un"quoted" z"#, false)
            .map(|t| t.raw)
            .collect();
        assert_eq!(toks, vec![r#"h2","http/1.1"#, r#"un"quoted"#, "z"]);
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("1.2.3.4:80"), ("1.2.3.4", Some(80)));
        assert_eq!(
            split_host_port("2001:db8::1:443"),
            ("2001:db8::1", Some(443))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:80"),
            ("2001:db8::1", Some(80))
        );
        assert_eq!(split_host_port("host"), ("host", None));
    }

    #[test]
    fn urls() {
        let p = url_parts("https://www.example.com:443/a/b?x=1#f");
        assert_eq!(p.scheme, Some("https"));
        assert_eq!(p.domain, Some("www.example.com"));
        assert_eq!(p.port, Some(443));
        assert_eq!(p.path, Some("/a/b"));
        assert_eq!(p.query, Some("x=1"));
        assert_eq!(p.fragment, Some("f"));
        let p = url_parts("http://[::1]:8080");
        assert_eq!(p.domain, Some("::1"));
        assert_eq!(p.path, None);
    }

    #[test]
    fn pct() {
        assert_eq!(pct_decode("a%20b%2520%zz%"), "a b%20%zz%");
        assert_eq!(pct_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn tls() {
        assert_eq!(tls_version("tlsv12").unwrap().1, "1.2");
        assert_eq!(tls_version("TLSV1.2").unwrap().1, "1.2");
        assert_eq!(tls_version("TLSv1.3").unwrap().1, "1.3");
        assert!(tls_version("foo").is_none());
    }
}
