//! Dissect: split a string on the literal text between `%{key}`s (no regular expressions).
//! Key modifiers as in Elasticsearch: `%{+key}` (append, `%{+key/2}` ordered), `%{?key}` and
//! `%{}` (skip), `%{*key}`/`%{&key}` (reference: name/value pair), `%{key->}` (skip
//! repeated delimiters after the value).

/// (ordinal, position in the pattern, value) of one `%{+key}` piece.
type AppendPart = (i64, usize, String);

#[derive(Debug, Clone, PartialEq)]
enum Modifier {
    None,
    Append,
    Skip,
    FieldName,
    FieldValue,
}

#[derive(Debug, Clone, PartialEq)]
struct Key {
    name: String,
    modifier: Modifier,
    right_pad: bool,
    ordinal: i64,
}

/// A compiled dissect pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Dissect {
    pattern: String,
    leading: String,
    /// Each key with the delimiter that follows it ("" for the last).
    parts: Vec<(Key, String)>,
    append_separator: String,
}

impl Dissect {
    /// Parses a pattern. `Err` is Elasticsearch's message.
    pub fn parse(pattern: &str, append_separator: &str) -> Result<Dissect, String> {
        let mut leading = String::new();
        let mut parts: Vec<(Key, String)> = Vec::new();
        let mut rest = pattern;
        let mut first = true;
        loop {
            let Some(start) = rest.find("%{") else {
                if first {
                    leading.push_str(rest);
                } else if let Some(last) = parts.last_mut() {
                    last.1.push_str(rest);
                }
                break;
            };
            let text = &rest[..start];
            if first {
                leading.push_str(text);
            } else if let Some(last) = parts.last_mut() {
                last.1.push_str(text);
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!("Unable to parse pattern: {pattern}"));
            };
            let raw = &after[..end];
            parts.push((parse_key(raw), String::new()));
            first = false;
            rest = &after[end + 1..];
        }
        if parts.is_empty() {
            return Err(format!(
                "Unable to find any keys or delimiters for pattern: {pattern}"
            ));
        }
        if parts.iter().all(|(k, _)| k.modifier == Modifier::Skip) {
            return Err(format!(
                "Unable to parse pattern: {pattern}: the pattern must contain at least one key that is not a skip key"
            ));
        }
        // Reference keys come in pairs.
        for (k, _) in &parts {
            let partner = match k.modifier {
                Modifier::FieldName => Modifier::FieldValue,
                Modifier::FieldValue => Modifier::FieldName,
                _ => continue,
            };
            if !parts
                .iter()
                .any(|(o, _)| o.modifier == partner && o.name == k.name)
            {
                return Err(format!(
                    "Unable to parse pattern: {pattern}: found invalid key/reference associations: reference key [{}] has no matching {} key",
                    k.name,
                    if partner == Modifier::FieldName { "*" } else { "&" }
                ));
            }
        }
        Ok(Dissect {
            pattern: pattern.to_string(),
            leading,
            parts,
            append_separator: append_separator.to_string(),
        })
    }

    /// Splits `input`: the fields in pattern order, or Elasticsearch's failure message.
    pub fn apply(&self, input: &str) -> Result<Vec<(String, String)>, String> {
        let fail = || {
            format!(
                "Unable to find match for dissect pattern: {} against source: {input}",
                self.pattern
            )
        };
        let mut pos = match input.strip_prefix(self.leading.as_str()) {
            Some(_) => self.leading.len(),
            None => return Err(fail()),
        };
        let mut values: Vec<(&Key, &str)> = Vec::with_capacity(self.parts.len());
        for (key, delim) in &self.parts {
            let rest = &input[pos..];
            if delim.is_empty() {
                // Last key takes the rest; adjacent keys without a delimiter get "".
                let is_last = std::ptr::eq(key, &self.parts[self.parts.len() - 1].0);
                if is_last {
                    values.push((key, rest));
                    pos = input.len();
                } else {
                    values.push((key, ""));
                }
                continue;
            }
            let Some(off) = rest.find(delim.as_str()) else {
                return Err(fail());
            };
            values.push((key, &rest[..off]));
            pos += off + delim.len();
            if key.right_pad {
                while input[pos..].starts_with(delim.as_str()) {
                    pos += delim.len();
                }
            }
        }
        // Assemble.
        let mut out: Vec<(String, String)> = Vec::new();
        let mut appends: Vec<(String, Vec<AppendPart>)> = Vec::new();
        let appended: Vec<&str> = self
            .parts
            .iter()
            .filter(|(k, _)| k.modifier == Modifier::Append)
            .map(|(k, _)| k.name.as_str())
            .collect();
        for (n, (key, val)) in values.iter().enumerate() {
            match key.modifier {
                Modifier::Skip | Modifier::FieldName | Modifier::FieldValue => {}
                Modifier::Append | Modifier::None
                    if key.modifier == Modifier::Append
                        || appended.contains(&key.name.as_str()) =>
                {
                    match appends.iter_mut().find(|(k, _)| *k == key.name) {
                        Some((_, v)) => v.push((key.ordinal, n, (*val).to_string())),
                        None => appends
                            .push((key.name.clone(), vec![(key.ordinal, n, (*val).to_string())])),
                    }
                }
                _ => out.push((key.name.clone(), (*val).to_string())),
            }
        }
        for (name, mut vals) in appends {
            vals.sort_by_key(|(ord, n, _)| (*ord, *n));
            let joined = vals
                .into_iter()
                .map(|(_, _, v)| v)
                .collect::<Vec<_>>()
                .join(&self.append_separator);
            out.push((name, joined));
        }
        for (key, val) in &values {
            if key.modifier == Modifier::FieldName {
                if let Some((_, v)) = values
                    .iter()
                    .find(|(k, _)| k.modifier == Modifier::FieldValue && k.name == key.name)
                {
                    out.push(((*val).to_string(), (*v).to_string()));
                }
            }
        }
        Ok(out)
    }
}

fn parse_key(raw: &str) -> Key {
    let mut s = raw;
    let right_pad = s.ends_with("->");
    if right_pad {
        s = &s[..s.len() - 2];
    }
    let (modifier, body) = match s.chars().next() {
        Some('+') => (Modifier::Append, &s[1..]),
        Some('?') => (Modifier::Skip, &s[1..]),
        Some('*') => (Modifier::FieldName, &s[1..]),
        Some('&') => (Modifier::FieldValue, &s[1..]),
        _ if s.is_empty() => (Modifier::Skip, s),
        _ => (Modifier::None, s),
    };
    let (name, ordinal) = match (modifier == Modifier::Append, body.rsplit_once('/')) {
        (true, Some((n, o))) if o.chars().all(|c| c.is_ascii_digit()) && !o.is_empty() => {
            (n, o.parse::<i64>().unwrap_or(0))
        }
        _ => (body, 0),
    };
    Key {
        name: name.to_string(),
        modifier,
        right_pad,
        ordinal,
    }
}
