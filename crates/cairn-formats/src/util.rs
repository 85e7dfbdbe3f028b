//! Shared building blocks: nested-field insertion, tokenizers, IP/URL helpers,
//! percent-decoding.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::Value;

use crate::time::Ts;
use crate::Event;

/// A field path: static for the fixed ECS names, owned for computed ones.
pub(crate) type Path = Cow<'static, str>;

/// Fields collected by a parser as (dotted path, value) pairs. They become a nested
/// [`Event`] with [`Fields::build`] (one map insertion per key: setting nested paths one
/// by one would hash every level of every path, which dominated parse time), or go
/// straight to the event's JSON text with [`Fields::write_json`], which builds no map at
/// all (what `cairn import` sends). Both give the same object: a path set twice keeps
/// its first position and its last value, as a sequence of nested inserts would.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields {
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

    /// The value at a dotted path of the event these fields make: the last one set at
    /// exactly that path, or inside an object value set at a prefix of it.
    pub fn get(&self, path: &str) -> Option<&Value> {
        for (p, v) in self.paths.iter().zip(&self.values).rev() {
            let p = p.as_ref();
            if p == path {
                return Some(v);
            }
            if let Some(rest) = path.strip_prefix(p).and_then(|r| r.strip_prefix('.')) {
                return v.as_object().and_then(|o| get_path(o, rest));
            }
        }
        None
    }

    /// Set a field (a later value at the same path wins).
    pub fn set(&mut self, path: impl Into<Cow<'static, str>>, v: Value) {
        self.paths.push(path.into());
        self.values.push(v);
    }

    /// Write the event's JSON object to `out`: the same text as serializing
    /// [`Fields::build`]'s map, without building it.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut entries: Vec<(u32, &str, &Value)> = Vec::with_capacity(self.paths.len());
        entries.extend(
            self.paths
                .iter()
                .zip(&self.values)
                .map(|(p, v)| (0, p.as_ref(), v)),
        );
        let n = entries.len();
        let mut scratch = Scratch {
            slots: Vec::with_capacity(n * 2),
            plan: Vec::with_capacity(n * 2),
            sorted: Vec::with_capacity(n),
        };
        write_level(&mut entries, &mut scratch, out);
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

/// Give each entry its slot at this level (every leaf its own; dotted paths share their
/// head's group), pushing the slots as (key, is group) onto `slots`; slot ids count from
/// the `slots` length on entry.
fn assign_slots<'a, V>(entries: &mut [(u32, &'a str, V)], slots: &mut Vec<(&'a str, bool)>) {
    let base = slots.len();
    // Parsers set a group's paths one after another: try the last group first.
    let mut last_group = usize::MAX;
    for e in entries.iter_mut() {
        let path = e.1;
        e.0 = match first_dot(path) {
            None => {
                slots.push((path, false));
                (slots.len() - 1 - base) as u32
            }
            Some(i) => {
                let head = &path[..i];
                let level = &slots[base..];
                let found = match level.get(last_group) {
                    Some(&(k, true)) if k == head => Some(last_group),
                    _ => level.iter().rposition(|&(k, g)| g && k == head),
                };
                last_group = match found {
                    Some(s) => s,
                    None => {
                        slots.push((head, true));
                        slots.len() - 1 - base
                    }
                };
                last_group as u32
            }
        };
    }
}

/// Reusable vectors of [`write_level`]: each level pushes its slots and plan at the end
/// and truncates them when done, so a whole event needs three allocations.
struct Scratch<'a, 'v> {
    slots: Vec<(&'a str, bool)>,
    plan: Vec<(u32, u32, u32)>,
    sorted: Vec<(u32, &'a str, &'v Value)>,
}

/// Write one level of the event as a JSON object, the text `build_level`'s map would
/// serialize to: keys in the order of their first slot, each with its last slot's value
/// (`IndexMap::insert` keeps the position and replaces the value).
fn write_level<'a, 'v>(
    entries: &mut [(u32, &'a str, &'v Value)],
    scratch: &mut Scratch<'a, 'v>,
    out: &mut Vec<u8>,
) {
    const SKIP: u32 = u32::MAX;
    let base = scratch.slots.len();
    assign_slots(entries, &mut scratch.slots);
    let n = scratch.slots.len() - base;
    // Per slot: where its entries are once grouped, and the slot whose value is written
    // at its position (itself, a later slot of the same key, or SKIP when an earlier
    // slot has the key). Keys rarely repeat: a 64-bit filter of (length, last byte)
    // spares the comparisons with earlier keys for most of them.
    scratch.plan.extend((0..n as u32).map(|s| (0, 0, s)));
    let (slots, plan) = (&scratch.slots[base..], &mut scratch.plan[base..]);
    let mut seen = 0u64;
    for (s, &(key, _)) in slots.iter().enumerate() {
        let bit = 1u64 << ((key.len() * 7 + key.bytes().last().map_or(0, usize::from)) & 63);
        if seen & bit != 0 {
            if let Some(first) = slots[..s].iter().position(|&(k, _)| k == key) {
                plan[first].2 = s as u32;
                plan[s].2 = SKIP;
            }
        }
        seen |= bit;
    }
    // Group the entries by slot, stably (a counting sort: slot ids are small): each
    // slot's range starts where the previous one ends and grows as its entries land.
    for e in entries.iter() {
        plan[e.0 as usize].1 += 1;
    }
    let mut at = 0u32;
    for p in plan.iter_mut() {
        p.0 = at;
        at += p.1;
        p.1 = p.0;
    }
    if !entries.is_sorted_by_key(|e| e.0) {
        scratch.sorted.clear();
        scratch.sorted.extend_from_slice(entries);
        for e in &scratch.sorted {
            let p = &mut plan[e.0 as usize];
            entries[p.1 as usize] = *e;
            p.1 += 1;
        }
    } else {
        for e in entries.iter() {
            plan[e.0 as usize].1 += 1;
        }
    }
    out.push(b'{');
    let mut first = true;
    for s in 0..n {
        let winner = scratch.plan[base + s].2;
        if winner == SKIP {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        let key = scratch.slots[base + s].0;
        write_json_str(out, key);
        out.push(b':');
        let w = base + winner as usize;
        let (a, b) = (scratch.plan[w].0 as usize, scratch.plan[w].1 as usize);
        if scratch.slots[w].1 {
            for e in &mut entries[a..b] {
                e.1 = &e.1[key.len() + 1..];
            }
            write_level(&mut entries[a..b], scratch, out);
        } else {
            write_json_value(out, entries[a].2);
        }
    }
    out.push(b'}');
    scratch.slots.truncate(base);
    scratch.plan.truncate(base);
}

/// A JSON value: strings (and object keys) through [`write_json_str`], numbers,
/// booleans and null through serde_json.
pub(crate) fn write_json_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => write_json_str(out, s),
        Value::Object(o) => write_json_object(out, o),
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_value(out, v);
            }
            out.push(b']');
        }
        // Writing to a Vec cannot fail, and a Value always serializes.
        _ => {
            let _ = serde_json::to_writer(&mut *out, v);
        }
    }
}

/// A JSON object, as serde_json writes it.
pub(crate) fn write_json_object(out: &mut Vec<u8>, o: &Event) {
    out.push(b'{');
    for (i, (k, v)) in o.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, k);
        out.push(b':');
        write_json_value(out, v);
    }
    out.push(b'}');
}

/// A JSON string. Runs of bytes that need no escaping are found eight at a time and
/// copied whole; the rest goes through serde_json's escaping.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let clean = |c: u8| c >= 0x20 && c != b'"' && c != b'\\';
    let mut i = 0;
    while i + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(w);
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // High bit set in a byte's lane when that byte is < 0x20, '"' or '\\'
        // (bytes >= 0x80, UTF-8, are masked out: they never need escaping).
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let bad = (x.wrapping_sub(ONES * 0x20)
            | has_zero(x ^ (ONES * b'"' as u64))
            | has_zero(x ^ (ONES * b'\\' as u64)))
            & !x
            & HIGH;
        if bad != 0 {
            break;
        }
        i += 8;
    }
    if b[i..].iter().all(|&c| clean(c)) {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
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
    let mut slots = Vec::with_capacity(entries.len());
    assign_slots(entries, &mut slots);
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
    ev.set(path, v);
}

/// Set a dotted path in a nested event, creating (or replacing non-object) parents.
pub(crate) fn insert_path(ev: &mut Event, path: &str, v: Value) {
    match path.split_once('.') {
        None => {
            ev.insert(path.to_owned(), v);
        }
        Some((head, rest)) => {
            let slot = ev
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Event::new()));
            if !slot.is_object() {
                *slot = Value::Object(Event::new());
            }
            if let Value::Object(child) = slot {
                insert_path(child, rest, v);
            }
        }
    }
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
    // Most request targets are paths: no scheme to look for (a `://` in a path's query
    // string is not one, and failed the scheme check below anyway).
    let scheme_end = if u.starts_with('/') {
        None
    } else {
        u.find("://")
    };
    if let Some(i) = scheme_end {
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

    #[test]
    fn get_reads_exact_paths_and_inside_object_values() {
        use serde_json::json;
        let mut f = Fields::new();
        f.set(
            "cloud",
            json!({"provider": "aws", "region": {"id": "eu-west-1"}}),
        );
        f.set("log.offset", json!(7));
        assert_eq!(f.get("log.offset"), Some(&json!(7)));
        assert_eq!(f.get("cloud.provider"), Some(&json!("aws")));
        assert_eq!(f.get("cloud.region.id"), Some(&json!("eu-west-1")));
        assert_eq!(f.get("cloud.account"), None);
        assert_eq!(f.get("log"), None, "a group is not a set value");
        assert_eq!(f.get("clou"), None);
    }

    #[test]
    fn written_json_matches_the_built_map_when_paths_repeat_or_collide() {
        use serde_json::json;
        let cases: Vec<Vec<(&'static str, Value)>> = vec![
            vec![("a", json!(1)), ("b", json!(2)), ("a", json!(3))],
            vec![("a", json!(1)), ("a.b", json!(2)), ("c", json!(3))],
            vec![("a.b", json!(1)), ("a", json!(2)), ("a.c", json!(3))],
            vec![
                ("x.y.z", json!("\"q\"")),
                ("x.w", json!(null)),
                ("x.y.v", json!([1])),
            ],
            vec![("k\"ey", json!(1)), ("t\u{1}", json!({"o": 1}))],
            vec![
                ("a", json!("0123456789abcdef\u{1f}")),
                ("b", json!("01234567\\89abcdef")),
                ("c", json!("héllo wörld, ünïcode ✓ \"quoted\" end")),
                ("d", json!("no escapes at all in this longer string value")),
                ("e", json!("\u{7f}\u{80}\u{ff}\t")),
            ],
        ];
        for case in cases {
            let mut f = Fields::new();
            for (p, v) in &case {
                f.set(*p, v.clone());
            }
            let mut out = Vec::new();
            f.write_json(&mut out);
            let want = serde_json::to_string(&f.clone().build()).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "{case:?}");
        }
    }
}
