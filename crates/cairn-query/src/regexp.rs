//! Lucene regular expressions and wildcard patterns, translated to Rust `regex` syntax.
//!
//! Lucene's `RegExp` syntax differs from Rust's: it is always anchored, `.` matches any
//! char (newlines too), `"..."` quotes a literal string, `#` is the empty language, `@`
//! any string, `<n-m>` a numeric interval, `&` intersection and `~` complement. The
//! translation covers everything except intersection and complement, which have no
//! equivalent in a Rust regex; a pattern using them is rejected (with the flags that
//! enable them disabled, `&` and `~` are plain characters, as in Lucene).

use crate::error::QueryError;

/// Lucene `RegExp` syntax flags (the values of ES `flags_value`).
pub mod flags {
    /// `&` intersection.
    pub const INTERSECTION: u32 = 0x0001;
    /// `~` complement.
    pub const COMPLEMENT: u32 = 0x0002;
    /// `#` empty language.
    pub const EMPTY: u32 = 0x0004;
    /// `@` any string.
    pub const ANYSTRING: u32 = 0x0008;
    /// `<identifier>` named automata (not supported by Cairn; the syntax stays literal).
    pub const AUTOMATON: u32 = 0x0010;
    /// `<n-m>` numeric interval.
    pub const INTERVAL: u32 = 0x0020;
    /// Every flag (ES default).
    pub const ALL: u32 = 0xffff;
    /// No flag.
    pub const NONE: u32 = 0;
}

/// Parse ES's `flags` string (`"INTERSECTION|COMPLEMENT|EMPTY"`, `ALL`, `NONE`,
/// case-insensitive, `|`-separated). Unknown names are an error, as in ES.
pub fn parse_flags(s: &str) -> Result<u32, QueryError> {
    let mut value = 0u32;
    if s.trim().is_empty() {
        return Ok(flags::ALL);
    }
    for part in s.split('|') {
        let name = part.trim().to_ascii_uppercase();
        value |= match name.as_str() {
            "INTERSECTION" => flags::INTERSECTION,
            "COMPLEMENT" => flags::COMPLEMENT,
            "EMPTY" => flags::EMPTY,
            "ANYSTRING" => flags::ANYSTRING,
            "INTERVAL" => flags::INTERVAL,
            "NONE" => flags::NONE,
            "ALL" => flags::ALL,
            _ => {
                return Err(QueryError::parse(format!(
                    "Unknown regexp flag [{}]",
                    part.trim()
                )))
            }
        };
    }
    Ok(value)
}

const MAX_REGEX_NESTING: usize = 100;
const MAX_INTERVAL_SPAN: u64 = 1000;

/// Translate a Lucene regex into an anchored Rust regex (`\A(?:...)\z`), with `(?i)` when
/// `case_insensitive`.
pub fn lucene_regex_to_rust(
    pattern: &str,
    flag_bits: u32,
    case_insensitive: bool,
) -> Result<String, QueryError> {
    let body = lucene_regex_body(pattern, flag_bits)?;
    let mut out = String::with_capacity(body.len() + 16);
    if case_insensitive {
        out.push_str("(?i)");
    }
    out.push_str(r"\A(?:");
    out.push_str(&body);
    out.push_str(r")\z");
    Ok(out)
}

/// Translate a Lucene regex into Rust `regex` syntax without anchors or flags: for
/// engines that always match whole terms (tantivy's `RegexQuery`).
pub fn lucene_regex_body(pattern: &str, flag_bits: u32) -> Result<String, QueryError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut t = RegexTranslator {
        chars: &chars,
        pos: 0,
        flags: flag_bits,
        out: String::with_capacity(pattern.len() * 2 + 16),
        depth: 0,
    };
    t.union()?;
    if t.pos < chars.len() {
        return Err(t.err("expected end of string"));
    }
    Ok(t.out)
}

/// Compile a Lucene regex for matching whole values. The compiled size is bounded, which
/// plays the role of Lucene's `max_determinized_states`.
pub fn compile_lucene_regex(
    pattern: &str,
    flag_bits: u32,
    case_insensitive: bool,
    max_determinized_states: u32,
) -> Result<regex::Regex, QueryError> {
    let translated = lucene_regex_to_rust(pattern, flag_bits, case_insensitive)?;
    build_regex(&translated, max_determinized_states, pattern)
}

pub(crate) fn build_regex(
    translated: &str,
    max_states: u32,
    original: &str,
) -> Result<regex::Regex, QueryError> {
    // ~100 bytes of compiled program per automaton state is a generous stand-in.
    let size = (max_states as usize).saturating_mul(100).max(10_000);
    regex::RegexBuilder::new(translated)
        .size_limit(size)
        .dfa_size_limit(size)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => QueryError::illegal_argument(format!(
                "Determinizing automaton for [{original}] would result in more than {max_states} states."
            )),
            other => QueryError::illegal_argument(format!(
                "failed to compile regular expression [{original}]: {other}"
            )),
        })
}

/// Translate a wildcard pattern (`*` any sequence, `?` one char, `\` escapes) into an
/// anchored Rust regex.
pub fn wildcard_to_rust(pattern: &str, case_insensitive: bool) -> String {
    let body = wildcard_body(pattern);
    let mut out = String::with_capacity(body.len() + 16);
    if case_insensitive {
        out.push_str("(?i)");
    }
    out.push_str(r"\A(?:");
    out.push_str(&body);
    out.push_str(r")\z");
    out
}

/// A wildcard pattern in Rust `regex` syntax without anchors or flags.
pub fn wildcard_body(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str("(?s:.*)"),
            '?' => out.push_str("(?s:.)"),
            '\\' => {
                if let Some(n) = chars.next() {
                    push_literal(&mut out, n);
                } else {
                    push_literal(&mut out, '\\');
                }
            }
            other => push_literal(&mut out, other),
        }
    }
    out
}

/// Compile a wildcard pattern for matching whole values.
pub fn compile_wildcard(pattern: &str, case_insensitive: bool) -> Result<regex::Regex, QueryError> {
    build_regex(
        &wildcard_to_rust(pattern, case_insensitive),
        10_000,
        pattern,
    )
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

fn push_class_char(out: &mut String, c: char) {
    out.push_str(&format!("\\x{{{:X}}}", c as u32));
}

struct RegexTranslator<'a> {
    chars: &'a [char],
    pos: usize,
    flags: u32,
    out: String,
    depth: usize,
}

impl RegexTranslator<'_> {
    fn err(&self, what: &str) -> QueryError {
        let pattern: String = self.chars.iter().collect();
        QueryError::illegal_argument(format!(
            "invalid regular expression [{pattern}]: {what} at position {}",
            self.pos
        ))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    fn union(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_REGEX_NESTING {
            return Err(self.err("too deeply nested"));
        }
        self.inter()?;
        while self.peek() == Some('|') {
            self.pos += 1;
            self.out.push('|');
            self.inter()?;
        }
        self.depth -= 1;
        Ok(())
    }

    fn inter(&mut self) -> Result<(), QueryError> {
        self.concat()?;
        if self.peek() == Some('&') && self.has(flags::INTERSECTION) {
            return Err(self.err("the intersection operator [&] is not supported"));
        }
        Ok(())
    }

    fn concat(&mut self) -> Result<(), QueryError> {
        // Empty concatenation is allowed (e.g. `a|` or `()`).
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' || (c == '&' && self.has(flags::INTERSECTION)) {
                break;
            }
            self.repeat()?;
        }
        Ok(())
    }

    fn repeat(&mut self) -> Result<(), QueryError> {
        let start = self.out.len();
        self.complement()?;
        loop {
            match self.peek() {
                Some('?') | Some('*') | Some('+') => {
                    let c = self.peek().unwrap_or('*');
                    self.pos += 1;
                    self.wrap_group(start);
                    self.out.push(c);
                }
                Some('{') => {
                    // {n}, {n,}, {n,m}
                    let save = self.pos;
                    self.pos += 1;
                    let n = self.number();
                    let Some(n) = n else {
                        self.pos = save;
                        return Err(self.err("expected integer in repeat"));
                    };
                    let mut spec = format!("{{{n}");
                    if self.peek() == Some(',') {
                        self.pos += 1;
                        spec.push(',');
                        if let Some(m) = self.number() {
                            if m < n {
                                return Err(self.err("invalid repeat range"));
                            }
                            spec.push_str(&m.to_string());
                        }
                    }
                    if self.peek() != Some('}') {
                        return Err(self.err("expected '}'"));
                    }
                    self.pos += 1;
                    spec.push('}');
                    self.wrap_group(start);
                    self.out.push_str(&spec);
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn wrap_group(&mut self, start: usize) {
        let inner = self.out.split_off(start);
        self.out.push_str("(?:");
        self.out.push_str(&inner);
        self.out.push(')');
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            return None;
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        // Rust regex caps repetitions at 1000; larger values are rejected, like Lucene's
        // automaton limits would in practice.
        s.parse::<u32>().ok().filter(|n| *n <= 1000)
    }

    fn complement(&mut self) -> Result<(), QueryError> {
        if self.peek() == Some('~') && self.has(flags::COMPLEMENT) {
            return Err(self.err("the complement operator [~] is not supported"));
        }
        self.char_class_or_simple()
    }

    fn char_class_or_simple(&mut self) -> Result<(), QueryError> {
        if self.peek() == Some('[') {
            self.pos += 1;
            let mut class = String::from("[");
            if self.peek() == Some('^') {
                self.pos += 1;
                class.push('^');
            }
            let mut any = false;
            loop {
                match self.peek() {
                    None => return Err(self.err("expected ']'")),
                    Some(']') if any => {
                        self.pos += 1;
                        break;
                    }
                    Some(_) => {
                        if let Some(shorthand) = self.shorthand_class(true) {
                            class.push_str(shorthand);
                            any = true;
                            continue;
                        }
                        let from = self.char_exp()?;
                        if self.peek() == Some('-')
                            && self.chars.get(self.pos + 1).is_some_and(|c| *c != ']')
                        {
                            self.pos += 1;
                            let to = self.char_exp()?;
                            if to < from {
                                return Err(self.err("invalid character class range"));
                            }
                            push_class_char(&mut class, from);
                            class.push('-');
                            push_class_char(&mut class, to);
                        } else {
                            push_class_char(&mut class, from);
                        }
                        any = true;
                    }
                }
            }
            class.push(']');
            self.out.push_str(&class);
            return Ok(());
        }
        self.simple()
    }

    /// `\d \D \w \W \s \S`, as Lucene defines them (ASCII).
    fn shorthand_class(&mut self, in_class: bool) -> Option<&'static str> {
        if self.peek() != Some('\\') {
            return None;
        }
        let c = self.chars.get(self.pos + 1).copied()?;
        let s = match (c, in_class) {
            ('d', _) => "0-9",
            ('w', _) => "a-zA-Z0-9_",
            ('s', _) => r" \t\n\r",
            ('D', false) => "[^0-9]",
            ('W', false) => "[^a-zA-Z0-9_]",
            ('S', false) => r"[^ \t\n\r]",
            _ => return None,
        };
        self.pos += 2;
        Some(s)
    }

    fn char_exp(&mut self) -> Result<char, QueryError> {
        match self.peek() {
            None => Err(self.err("unexpected end of string")),
            Some('\\') => {
                self.pos += 1;
                let c = self
                    .peek()
                    .ok_or_else(|| self.err("unexpected end of string"))?;
                self.pos += 1;
                Ok(c)
            }
            Some(c) => {
                self.pos += 1;
                Ok(c)
            }
        }
    }

    fn simple(&mut self) -> Result<(), QueryError> {
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected end of string"));
        };
        match c {
            '.' => {
                self.pos += 1;
                self.out.push_str("(?s:.)");
            }
            '#' if self.has(flags::EMPTY) => {
                self.pos += 1;
                self.out.push_str(r"[^\x{0}-\x{10FFFF}]");
            }
            '@' if self.has(flags::ANYSTRING) => {
                self.pos += 1;
                self.out.push_str("(?s:.*)");
            }
            '"' => {
                self.pos += 1;
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c != '"') {
                    self.pos += 1;
                }
                if self.peek() != Some('"') {
                    return Err(self.err("expected '\"'"));
                }
                let lit: String = self.chars[start..self.pos].iter().collect();
                self.pos += 1;
                self.out.push_str("(?:");
                self.out.push_str(&regex::escape(&lit));
                self.out.push(')');
            }
            '(' => {
                self.pos += 1;
                self.out.push_str("(?:");
                if self.peek() != Some(')') {
                    self.union()?;
                }
                if self.peek() != Some(')') {
                    return Err(self.err("expected ')'"));
                }
                self.pos += 1;
                self.out.push(')');
            }
            '<' if self.has(flags::INTERVAL) => {
                let save = self.pos;
                self.pos += 1;
                if let Some(alt) = self.interval()? {
                    self.out.push_str(&alt);
                } else {
                    // Not an interval: `<` is literal.
                    self.pos = save + 1;
                    push_literal(&mut self.out, '<');
                }
            }
            _ => {
                if let Some(shorthand) = self.shorthand_class(false) {
                    if shorthand.starts_with('[') {
                        self.out.push_str(shorthand);
                    } else {
                        self.out.push('[');
                        self.out.push_str(shorthand);
                        self.out.push(']');
                    }
                    return Ok(());
                }
                let c = self.char_exp()?;
                push_literal(&mut self.out, c);
            }
        }
        Ok(())
    }

    /// `<n-m>` after the `<`: an alternation of the numbers in the interval (Lucene: numbers
    /// with optional leading zeros; when `n` has leading zeros the width is fixed).
    fn interval(&mut self) -> Result<Option<String>, QueryError> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
        }
        let a: String = self.chars[start..self.pos].iter().collect();
        if a.is_empty() || self.peek() != Some('-') {
            return Ok(None);
        }
        self.pos += 1;
        let start_b = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
        }
        let b: String = self.chars[start_b..self.pos].iter().collect();
        if b.is_empty() || self.peek() != Some('>') {
            return Ok(None);
        }
        self.pos += 1;
        let (Ok(mut lo), Ok(mut hi)) = (a.parse::<u64>(), b.parse::<u64>()) else {
            return Err(self.err("numeric interval out of range"));
        };
        if lo > hi {
            std::mem::swap(&mut lo, &mut hi);
        }
        if hi - lo > MAX_INTERVAL_SPAN {
            return Err(self.err("numeric interval too wide"));
        }
        let fixed_width = a.len() > 1 && a.starts_with('0') || b.len() > 1 && b.starts_with('0');
        let width = a.len().max(b.len());
        let mut alt = String::from("(?:");
        for (i, n) in (lo..=hi).enumerate() {
            if i > 0 {
                alt.push('|');
            }
            if fixed_width {
                alt.push_str(&format!("{n:0width$}"));
            } else {
                alt.push_str(&format!("0*{n}"));
            }
        }
        alt.push(')');
        Ok(Some(alt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        compile_lucene_regex(p, flags::ALL, false, 10_000)
            .map(|r| r.is_match(s))
            .unwrap_or(false)
    }

    #[test]
    fn lucene_regex_basics() {
        assert!(m("ab.*", "abc"));
        assert!(!m("ab", "abc"));
        assert!(m("a[bc]+d", "abcbd"));
        assert!(m("a[^x]d", "abd"));
        assert!(!m("a[^b]d", "abd"));
        assert!(m("(foo|bar)baz", "barbaz"));
        assert!(m("a{2,3}", "aaa"));
        assert!(!m("a{2,3}", "aaaa"));
        assert!(m("\"a.b\"c", "a.bc"));
        assert!(!m("\"a.b\"c", "axbc"));
        assert!(m("@x", "anythingx"));
        assert!(m("foo<1-12>", "foo7"));
        assert!(!m("foo<1-12>", "foo13"));
        assert!(m("a\\.b", "a.b"));
        assert!(!m("a\\.b", "axb"));
        assert!(m("\\d+", "123"));
        assert!(m(".", "\n"));
        assert!(!m("#", ""));
    }

    #[test]
    fn unsupported_operators() {
        assert!(lucene_regex_to_rust("a&b", flags::ALL, false).is_err());
        assert!(lucene_regex_to_rust("~a", flags::ALL, false).is_err());
        // With the flags off they are literals.
        let r = compile_lucene_regex("a&b", flags::NONE, false, 10_000).unwrap();
        assert!(r.is_match("a&b"));
        let r = compile_lucene_regex("@", flags::NONE, false, 10_000).unwrap();
        assert!(r.is_match("@"));
    }

    #[test]
    fn bodies_are_unanchored() {
        assert_eq!(lucene_regex_body("ab", flags::ALL).unwrap(), "ab");
        assert_eq!(wildcard_body("a*"), "a(?s:.*)");
        assert_eq!(wildcard_to_rust("a?", true), r"(?i)\A(?:a(?s:.))\z");
    }

    #[test]
    fn flags_parse() {
        assert_eq!(parse_flags("ALL").unwrap(), flags::ALL);
        assert_eq!(
            parse_flags("intersection|EMPTY").unwrap(),
            flags::INTERSECTION | flags::EMPTY
        );
        assert_eq!(
            parse_flags("bogus").unwrap_err().reason,
            "Unknown regexp flag [bogus]"
        );
    }

    #[test]
    fn wildcard() {
        let r = compile_wildcard("fo?b*r", false).unwrap();
        assert!(r.is_match("foobar"));
        assert!(r.is_match("foxbazzr"));
        assert!(!r.is_match("fobar"));
        let r = compile_wildcard("a\\*b", false).unwrap();
        assert!(r.is_match("a*b"));
        assert!(!r.is_match("axb"));
        let r = compile_wildcard("ABC*", true).unwrap();
        assert!(r.is_match("abcdef"));
    }

    #[test]
    fn invalid_regexes_do_not_panic() {
        for p in [
            "(", ")", "[", "[]", "a{", "a{2", "a{3,1}", "\\", "\"", "<1-", "[z-a]",
        ] {
            let _ = compile_lucene_regex(p, flags::ALL, false, 10_000);
        }
    }
}
