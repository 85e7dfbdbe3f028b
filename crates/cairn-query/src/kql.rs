//! KQL, the Kibana Query Language, into [`Query`].
//!
//! Follows Kibana's grammar: `field:value`, `field:(a or b and not c)`, quoted phrases,
//! `*` wildcards in values and field names, `field:*` (exists), `field < 10`, `<=`, `>`,
//! `>=`, case-insensitive `and`/`or`/`not` (`and` binds tighter than `or`), groups,
//! unqualified values (searched in the default fields), backslash escapes (`\:`, `\*`,
//! `\"`, `\\`, `\(`, `\or`, `\t`, `\uXXXX`), and nested-field syntax `a:{ b:c }`, mapped
//! to the dotted field `a.b`.
//!
//! Like Kibana: an unquoted value may contain spaces (`message: null pointer` is one
//! value, a [`Query::Match`], so its words are OR'ed by the match query); a quoted value
//! is a [`Query::MatchPhrase`]; `and` builds a bool `filter`, `or` a bool `should`, `not`
//! a bool `must_not`; an empty query matches everything.
//!
//! Departure: Kibana treats `not ` as a keyword anywhere inside an unquoted value (so
//! `cannot x` is a syntax error there); Cairn only at the start of a word.

use crate::ast::*;
use crate::error::{ErrorKind, QueryError};
use crate::limits::Limits;

/// Options for KQL parsing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KqlOptions {
    /// Fields for unqualified values; empty = [`ALL_FIELDS`].
    pub default_fields: Vec<(String, f32)>,
    /// Wildcard and prefix queries are case-insensitive (Kibana's
    /// `query:caseInsensitive`-style option, ES `kql` query `case_insensitive`).
    pub case_insensitive: bool,
    /// Time zone carried onto ranges (Kibana's `dateFormat:tz`).
    pub time_zone: Option<String>,
    /// Reject values starting with `*` (Kibana's `query:allowLeadingWildcards` = false).
    pub disallow_leading_wildcards: bool,
}

/// Parse a KQL query. Syntax errors are `KQLSyntaxError` with the character offset in
/// `offset` and a Kibana-style message (`Expected ... but ... found.` plus the query and a
/// caret line).
pub fn parse(query: &str, opts: &KqlOptions, limits: &Limits) -> Result<Query, QueryError> {
    let chars: Vec<char> = query.chars().collect();
    if chars.len() > limits.max_query_string_length {
        return Err(QueryError::new(
            ErrorKind::KqlSyntaxError,
            format!(
                "query is longer than the maximum of {} characters",
                limits.max_query_string_length
            ),
        ));
    }
    let mut p = KqlParser {
        text: query,
        chars: &chars,
        pos: 0,
        opts,
        limits,
        leaves: 0,
        furthest: 0,
        expected: Vec::new(),
    };
    p.spaces();
    if p.pos >= chars.len() {
        return Ok(Query::match_all());
    }
    let q = p.or_query(0, "", None)?;
    p.spaces();
    if p.pos < chars.len() {
        p.expect_at(p.pos, &["AND", "OR", "end of input"]);
        return Err(p.error());
    }
    Ok(q)
}

/// A value as written: its text (escapes resolved), whether it was quoted, and for
/// unquoted values the wildcard pattern form (literal `*`/`?`/`\` escaped, `*` wildcards kept).
#[derive(Debug, Clone)]
struct Literal {
    text: String,
    quoted: bool,
    pattern: Option<String>,
    start: usize,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{00A0}')
}

fn is_special(c: char) -> bool {
    matches!(
        c,
        '\\' | '(' | ')' | ':' | '<' | '>' | '"' | '*' | '{' | '}'
    )
}

struct KqlParser<'a> {
    text: &'a str,
    chars: &'a [char],
    pos: usize,
    opts: &'a KqlOptions,
    limits: &'a Limits,
    leaves: usize,
    furthest: usize,
    expected: Vec<&'static str>,
}

impl KqlParser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn spaces(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if is_space(c)) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn expect_at(&mut self, at: usize, what: &[&'static str]) {
        if at > self.furthest {
            self.furthest = at;
            self.expected.clear();
        }
        if at == self.furthest {
            for w in what {
                if !self.expected.contains(w) {
                    self.expected.push(w);
                }
            }
        }
    }

    fn error(&self) -> QueryError {
        let at = self.furthest.min(self.chars.len());
        let found = match self.chars.get(at) {
            None => "end of input".to_string(),
            Some(c) => format!("\"{c}\""),
        };
        let mut expected: Vec<&str> = self.expected.clone();
        expected.sort_unstable();
        expected.dedup();
        // Kibana lists the expectations sorted, comma-separated.
        let list = if expected.is_empty() {
            "end of input".to_string()
        } else {
            expected.join(", ")
        };
        QueryError::new(
            ErrorKind::KqlSyntaxError,
            format!(
                "Expected {list} but {found} found.\n{}\n{}^",
                self.text,
                "-".repeat(at)
            ),
        )
        .at_offset(at)
    }

    fn fail<T>(&mut self, what: &[&'static str]) -> Result<T, QueryError> {
        self.expect_at(self.pos, what);
        Err(self.error())
    }

    fn count_leaf(&mut self, n: usize) -> Result<(), QueryError> {
        self.leaves += n;
        if self.leaves > self.limits.max_clause_count {
            return Err(self.limits.too_many_nested_clauses_error());
        }
        Ok(())
    }

    /// Case-insensitive ASCII word at `at`.
    fn word_at(&self, at: usize, word: &str) -> bool {
        let n = word.len();
        at + n <= self.chars.len()
            && self.chars[at..at + n]
                .iter()
                .zip(word.chars())
                .all(|(a, b)| a.to_ascii_lowercase() == b)
    }

    /// `Space+ word Space+` at the current position: consume and return true.
    fn binary_keyword(&mut self, word: &str) -> bool {
        let save = self.pos;
        if self.spaces() == 0 {
            self.pos = save;
            return false;
        }
        if self.word_at(self.pos, word) {
            let after = self.pos + word.len();
            if matches!(self.chars.get(after), Some(c) if is_space(*c)) {
                self.pos = after;
                self.spaces();
                return true;
            }
        }
        self.pos = save;
        false
    }

    /// `not Space+`
    fn not_keyword(&mut self) -> bool {
        if self.word_at(self.pos, "not")
            && matches!(self.chars.get(self.pos + 3), Some(c) if is_space(*c))
        {
            self.pos += 3;
            self.spaces();
            return true;
        }
        false
    }

    /// Is there a keyword (` or `, ` and `, word-initial `not `) at `at`?
    fn keyword_at(&self, at: usize, word_start: bool) -> bool {
        let sp = |i: usize| matches!(self.chars.get(i), Some(c) if is_space(*c));
        if sp(at) {
            if self.word_at(at + 1, "or") && sp(at + 3) {
                return true;
            }
            if self.word_at(at + 1, "and") && sp(at + 4) {
                return true;
            }
        }
        word_start && self.word_at(at, "not") && sp(at + 3)
    }

    fn or_query(
        &mut self,
        depth: usize,
        prefix: &str,
        field: Option<&str>,
    ) -> Result<Query, QueryError> {
        let mut items = vec![self.and_query(depth, prefix, field)?];
        while self.binary_keyword("or") {
            items.push(self.and_query(depth, prefix, field)?);
        }
        if items.len() == 1 {
            return Ok(items.pop().unwrap_or(Query::MatchNone));
        }
        Ok(Query::Bool {
            must: Vec::new(),
            should: items,
            must_not: Vec::new(),
            filter: Vec::new(),
            minimum_should_match: Some(MinimumShouldMatch::Value(MsmValue::Count(1))),
            boost: None,
        })
    }

    fn and_query(
        &mut self,
        depth: usize,
        prefix: &str,
        field: Option<&str>,
    ) -> Result<Query, QueryError> {
        let mut items = vec![self.not_query(depth, prefix, field)?];
        while self.binary_keyword("and") {
            items.push(self.not_query(depth, prefix, field)?);
        }
        if items.len() == 1 {
            return Ok(items.pop().unwrap_or(Query::MatchNone));
        }
        Ok(Query::Bool {
            must: Vec::new(),
            should: Vec::new(),
            must_not: Vec::new(),
            filter: items,
            minimum_should_match: None,
            boost: None,
        })
    }

    fn not_query(
        &mut self,
        depth: usize,
        prefix: &str,
        field: Option<&str>,
    ) -> Result<Query, QueryError> {
        if self.not_keyword() {
            let inner = self.sub_query(depth, prefix, field)?;
            return Ok(Query::Bool {
                must: Vec::new(),
                should: Vec::new(),
                must_not: vec![inner],
                filter: Vec::new(),
                minimum_should_match: None,
                boost: None,
            });
        }
        self.sub_query(depth, prefix, field)
    }

    /// `(` OrQuery `)` / nested / expression. `field` is set inside a value list
    /// (`field:( ... )`), where only values (not expressions) are allowed.
    fn sub_query(
        &mut self,
        depth: usize,
        prefix: &str,
        field: Option<&str>,
    ) -> Result<Query, QueryError> {
        if self.peek() == Some('(') {
            if depth + 1 > self.limits.max_query_string_depth {
                self.expect_at(self.pos, &["a less deeply nested query"]);
                return Err(self.error());
            }
            self.pos += 1;
            self.spaces();
            let q = self.or_query(depth + 1, prefix, field)?;
            self.spaces();
            if self.peek() != Some(')') {
                return self.fail(&["\")\"", "AND", "OR"]);
            }
            self.pos += 1;
            return Ok(q);
        }
        match field {
            Some(f) => {
                let lit = self.value_literal()?;
                self.is_query(Some(f), lit)
            }
            None => self.expression(depth, prefix),
        }
    }

    /// FieldRangeExpression / NestedQuery / FieldValueExpression / ValueExpression.
    fn expression(&mut self, depth: usize, prefix: &str) -> Result<Query, QueryError> {
        let start = self.pos;
        if let Some(field_lit) = self.literal(true)? {
            let after_field = self.pos;
            self.spaces();
            let full_field = |lit: &Literal| format!("{prefix}{}", lit.text);
            match self.peek() {
                Some(':') => {
                    self.pos += 1;
                    self.spaces();
                    let field = full_field(&field_lit);
                    if self.peek() == Some('{') {
                        if depth + 1 > self.limits.max_query_string_depth {
                            return self.fail(&["a less deeply nested query"]);
                        }
                        self.pos += 1;
                        self.spaces();
                        let nested_prefix = format!("{field}.");
                        let q = self.or_query(depth + 1, &nested_prefix, None)?;
                        self.spaces();
                        if self.peek() != Some('}') {
                            return self.fail(&["\"}\"", "AND", "OR"]);
                        }
                        self.pos += 1;
                        return Ok(q);
                    }
                    return self.list_of_values(depth, &field);
                }
                Some('<') | Some('>') => {
                    let op_start = self.pos;
                    let op = if self.chars.get(self.pos + 1) == Some(&'=') {
                        self.pos += 2;
                        if self.chars[op_start] == '<' {
                            "lte"
                        } else {
                            "gte"
                        }
                    } else {
                        self.pos += 1;
                        if self.chars[op_start] == '<' {
                            "lt"
                        } else {
                            "gt"
                        }
                    };
                    self.spaces();
                    let Some(value) = self.literal(false)? else {
                        return self.fail(&["literal"]);
                    };
                    let field = full_field(&field_lit);
                    return self.range(&field, op, value);
                }
                _ => {
                    // Not a field: the literal is a value.
                    self.pos = after_field;
                    let _ = start;
                    let field = if prefix.is_empty() {
                        None
                    } else {
                        Some(format!("{prefix}*"))
                    };
                    return self.is_query(field.as_deref(), field_lit);
                }
            }
        }
        self.fail(&["\"(\"", "NOT", "field name", "value", "whitespace"])
    }

    fn list_of_values(&mut self, depth: usize, field: &str) -> Result<Query, QueryError> {
        if self.peek() == Some('(') {
            return self.sub_query(depth, "", Some(field));
        }
        let lit = self.value_literal()?;
        self.is_query(Some(field), lit)
    }

    fn value_literal(&mut self) -> Result<Literal, QueryError> {
        if self.not_keyword() {
            // `field:not x` is not a value; Kibana reports it as a syntax error here.
            self.pos -= 1;
            return self.fail(&["\"(\"", "value", "whitespace"]);
        }
        match self.literal(false)? {
            Some(l) => Ok(l),
            None => self.fail(&["\"(\"", "value", "whitespace"]),
        }
    }

    /// QuotedString / UnquotedLiteral. `for_field`: we are maybe reading a field name
    /// (no difference in what is accepted; kept for clarity).
    fn literal(&mut self, _for_field: bool) -> Result<Option<Literal>, QueryError> {
        let start = self.pos;
        if self.peek() == Some('"') {
            self.pos += 1;
            let mut text = String::new();
            loop {
                match self.peek() {
                    None => {
                        self.expect_at(self.pos, &["\"\\\"\""]);
                        return Err(self.error());
                    }
                    Some('"') => {
                        self.pos += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some((c, n)) = self.escape_in_quotes() {
                            text.push(c);
                            self.pos += n;
                        } else {
                            text.push('\\');
                            self.pos += 1;
                        }
                    }
                    Some(c) => {
                        text.push(c);
                        self.pos += 1;
                    }
                }
            }
            return Ok(Some(Literal {
                text,
                quoted: true,
                pattern: None,
                start,
            }));
        }
        let mut text = String::new();
        let mut pattern = String::new();
        let mut has_wildcard = false;
        let mut word_start = true;
        while let Some(c) = self.peek() {
            if c == '\\' {
                match self.escape_unquoted() {
                    Some((s, n)) => {
                        for ch in s.chars() {
                            text.push(ch);
                            if matches!(ch, '*' | '?' | '\\') {
                                pattern.push('\\');
                            }
                            pattern.push(ch);
                        }
                        self.pos += n;
                        word_start = false;
                        continue;
                    }
                    None => {
                        // A lone backslash before an ordinary char is a syntax error in Kibana.
                        self.expect_at(self.pos + 1, &["escaped character"]);
                        return Err(self.error());
                    }
                }
            }
            if c == '*' {
                text.push('*');
                pattern.push('*');
                has_wildcard = true;
                self.pos += 1;
                word_start = false;
                continue;
            }
            if is_special(c) || self.keyword_at(self.pos, word_start) {
                break;
            }
            text.push(c);
            if c == '?' {
                pattern.push('\\');
            }
            pattern.push(c);
            word_start = is_space(c);
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        // Trim as Kibana does (whitespace is part of the chars but not of the value).
        let trimmed = text.trim().to_string();
        if trimmed.is_empty() {
            self.pos = start;
            return Ok(None);
        }
        let pattern = if has_wildcard {
            Some(trim_pattern(&pattern))
        } else {
            None
        };
        // Give back trailing whitespace so the keyword rules (`Space+ or`) still see it.
        while self.pos > start && self.chars.get(self.pos - 1).is_some_and(|c| is_space(*c)) {
            self.pos -= 1;
        }
        Ok(Some(Literal {
            text: trimmed,
            quoted: false,
            pattern,
            start,
        }))
    }

    /// `\t \r \n \uXXXX \\ \"` inside quotes: (char, consumed length).
    fn escape_in_quotes(&self) -> Option<(char, usize)> {
        let n = self.chars.get(self.pos + 1).copied()?;
        match n {
            't' => Some(('\t', 2)),
            'r' => Some(('\r', 2)),
            'n' => Some(('\n', 2)),
            '\\' | '"' => Some((n, 2)),
            'u' => self.unicode_escape().map(|c| (c, 6)),
            _ => None,
        }
    }

    fn unicode_escape(&self) -> Option<char> {
        if self.pos + 6 > self.chars.len() {
            return None;
        }
        let hex: String = self.chars[self.pos + 2..self.pos + 6].iter().collect();
        u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
    }

    /// Escapes in unquoted literals: whitespace escapes, special chars, unicode, keywords.
    fn escape_unquoted(&self) -> Option<(String, usize)> {
        let n = self.chars.get(self.pos + 1).copied()?;
        match n {
            't' => Some(("\t".into(), 2)),
            'r' => Some(("\r".into(), 2)),
            'n' => Some(("\n".into(), 2)),
            c if is_special(c) => Some((c.to_string(), 2)),
            'u' if self.unicode_escape().is_some() => {
                self.unicode_escape().map(|c| (c.to_string(), 6))
            }
            _ => {
                for kw in ["and", "not", "or"] {
                    if self.word_at(self.pos + 1, kw) {
                        let s: String = self.chars[self.pos + 1..self.pos + 1 + kw.len()]
                            .iter()
                            .collect();
                        return Some((s, 1 + kw.len()));
                    }
                }
                None
            }
        }
    }

    fn per_field(
        &mut self,
        field: Option<&str>,
        make: &dyn Fn(&str) -> Query,
    ) -> Result<Query, QueryError> {
        if let Some(f) = field {
            self.count_leaf(1)?;
            return Ok(make(f));
        }
        match self.opts.default_fields.as_slice() {
            [] => {
                self.count_leaf(1)?;
                Ok(make(ALL_FIELDS))
            }
            [(f, _)] => {
                self.count_leaf(1)?;
                Ok(make(f))
            }
            many => {
                self.count_leaf(many.len())?;
                Ok(Query::Bool {
                    must: Vec::new(),
                    should: many.iter().map(|(f, _)| make(f)).collect(),
                    must_not: Vec::new(),
                    filter: Vec::new(),
                    minimum_should_match: Some(MinimumShouldMatch::Value(MsmValue::Count(1))),
                    boost: None,
                })
            }
        }
    }

    /// Kibana's `is(field, value)`.
    fn is_query(&mut self, field: Option<&str>, lit: Literal) -> Result<Query, QueryError> {
        if lit.quoted {
            let text = lit.text;
            return self.per_field(field, &|f| Query::MatchPhrase {
                field: f.to_string(),
                query: text.clone(),
                slop: 0,
                zero_terms_query: ZeroTermsQuery::None,
                boost: None,
            });
        }
        if let Some(pattern) = lit.pattern {
            if pattern == "*" {
                let all_fields = match field {
                    None => true,
                    Some(f) => f == "*",
                };
                if all_fields {
                    self.count_leaf(1)?;
                    return Ok(Query::match_all());
                }
                return self.per_field(field, &|f| Query::Exists {
                    field: f.to_string(),
                    boost: None,
                });
            }
            if self.opts.disallow_leading_wildcards && pattern.starts_with('*') {
                let at = lit.start;
                return Err(QueryError::new(
                    ErrorKind::KqlSyntaxError,
                    "Leading wildcards are disabled. See query:allowLeadingWildcards in Advanced Settings.",
                )
                .at_offset(at));
            }
            let ci = self.opts.case_insensitive;
            let body = pattern
                .strip_suffix('*')
                .filter(|b| !b.ends_with('\\') && !has_unescaped_star(b));
            if let Some(body) = body {
                let prefix = crate::lucene::unescape(body);
                return self.per_field(field, &|f| Query::Prefix {
                    field: f.to_string(),
                    value: prefix.clone(),
                    case_insensitive: ci,
                    boost: None,
                });
            }
            return self.per_field(field, &|f| Query::Wildcard {
                field: f.to_string(),
                pattern: pattern.clone(),
                case_insensitive: ci,
                boost: None,
            });
        }
        let text = lit.text;
        let lenient = field.is_none();
        self.per_field(field, &|f| {
            let mut q = Query::match_text(f, text.clone());
            if let Query::Match { lenient: l, .. } = &mut q {
                *l = lenient;
            }
            q
        })
    }

    fn range(&mut self, field: &str, op: &str, value: Literal) -> Result<Query, QueryError> {
        self.count_leaf(1)?;
        let v = Some(serde_json::Value::String(value.text));
        Ok(Query::Range {
            field: field.to_string(),
            gt: if op == "gt" { v.clone() } else { None },
            gte: if op == "gte" { v.clone() } else { None },
            lt: if op == "lt" { v.clone() } else { None },
            lte: if op == "lte" { v } else { None },
            format: None,
            time_zone: self.opts.time_zone.clone(),
            boost: None,
        })
    }
}

fn has_unescaped_star(s: &str) -> bool {
    let mut esc = false;
    for c in s.chars() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == '*' {
            return true;
        }
    }
    false
}

/// Trim unescaped leading/trailing whitespace from a pattern.
fn trim_pattern(p: &str) -> String {
    let trimmed_start = p.trim_start();
    // Trailing: a space preceded by a backslash is escaped only for `\*`/`\?`/`\\`, which
    // are never spaces, so a plain trim is correct.
    trimmed_start.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Query {
        parse(s, &KqlOptions::default(), &Limits::default())
            .unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn err(s: &str) -> QueryError {
        parse(s, &KqlOptions::default(), &Limits::default()).unwrap_err()
    }

    fn m(f: &str, q: &str) -> Query {
        Query::match_text(f, q)
    }

    fn mu(q: &str) -> Query {
        let mut x = Query::match_text("*", q);
        if let Query::Match { lenient, .. } = &mut x {
            *lenient = true;
        }
        x
    }

    fn or(items: Vec<Query>) -> Query {
        Query::Bool {
            must: vec![],
            should: items,
            must_not: vec![],
            filter: vec![],
            minimum_should_match: Some(MinimumShouldMatch::Value(MsmValue::Count(1))),
            boost: None,
        }
    }

    fn and(items: Vec<Query>) -> Query {
        Query::Bool {
            must: vec![],
            should: vec![],
            must_not: vec![],
            filter: items,
            minimum_should_match: None,
            boost: None,
        }
    }

    fn not(q: Query) -> Query {
        Query::Bool {
            must: vec![],
            should: vec![],
            must_not: vec![q],
            filter: vec![],
            minimum_should_match: None,
            boost: None,
        }
    }

    fn phrase(f: &str, q: &str) -> Query {
        Query::MatchPhrase {
            field: f.into(),
            query: q.into(),
            slop: 0,
            zero_terms_query: ZeroTermsQuery::None,
            boost: None,
        }
    }

    #[test]
    fn field_value() {
        assert_eq!(p("status:200"), m("status", "200"));
        assert_eq!(p("status : 200"), m("status", "200"));
        assert_eq!(p("message: null pointer"), m("message", "null pointer"));
        assert_eq!(
            p("message:\"null pointer\""),
            phrase("message", "null pointer")
        );
        assert_eq!(p("foo"), mu("foo"));
        assert_eq!(p("foo bar"), mu("foo bar"));
        assert_eq!(p("\"foo bar\""), phrase("*", "foo bar"));
        assert_eq!(p(""), Query::match_all());
        assert_eq!(p("   "), Query::match_all());
    }

    #[test]
    fn boolean_logic() {
        assert_eq!(p("a or b"), or(vec![mu("a"), mu("b")]));
        assert_eq!(p("a OR b"), or(vec![mu("a"), mu("b")]));
        assert_eq!(p("a and b"), and(vec![mu("a"), mu("b")]));
        assert_eq!(
            p("a or b and c"),
            or(vec![mu("a"), and(vec![mu("b"), mu("c")])])
        );
        assert_eq!(p("not a"), not(mu("a")));
        assert_eq!(p("NOT status:200"), not(m("status", "200")));
        assert_eq!(
            p("(a or b) and c"),
            and(vec![or(vec![mu("a"), mu("b")]), mu("c")])
        );
        assert_eq!(
            p("status:(200 or 404 and not 500)"),
            or(vec![
                m("status", "200"),
                and(vec![m("status", "404"), not(m("status", "500"))])
            ])
        );
        assert_eq!(p("cannot x"), mu("cannot x"));
        assert_eq!(
            p("orange and android"),
            and(vec![mu("orange"), mu("android")])
        );
    }

    #[test]
    fn wildcards_and_exists() {
        assert_eq!(
            p("host:*"),
            Query::Exists {
                field: "host".into(),
                boost: None
            }
        );
        assert_eq!(p("*"), Query::match_all());
        assert_eq!(p("*:*"), Query::match_all());
        assert_eq!(
            p("host:web*"),
            Query::Prefix {
                field: "host".into(),
                value: "web".into(),
                case_insensitive: false,
                boost: None
            }
        );
        assert_eq!(
            p("host:w*b?x"),
            Query::Wildcard {
                field: "host".into(),
                pattern: "w*b\\?x".into(),
                case_insensitive: false,
                boost: None
            }
        );
        assert_eq!(p("path:a\\*b"), m("path", "a*b"));
        assert_eq!(p("machine.os*:windows"), m("machine.os*", "windows"));
        let opts = KqlOptions {
            case_insensitive: true,
            ..Default::default()
        };
        match parse("h:Web*x", &opts, &Limits::default()).unwrap() {
            Query::Wildcard {
                case_insensitive, ..
            } => assert!(case_insensitive),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(
            p("bytes > 1000"),
            Query::Range {
                field: "bytes".into(),
                gt: Some(json!("1000")),
                gte: None,
                lt: None,
                lte: None,
                format: None,
                time_zone: None,
                boost: None
            }
        );
        assert_eq!(
            p("@timestamp <= \"2024-01-01T00:00:00\""),
            Query::Range {
                field: "@timestamp".into(),
                gt: None,
                gte: None,
                lt: None,
                lte: Some(json!("2024-01-01T00:00:00")),
                format: None,
                time_zone: None,
                boost: None
            }
        );
        assert!(matches!(p("a>=1 and a<5"), Query::Bool { .. }));
        assert!(matches!(p("@timestamp < now-1d"), Query::Range { .. }));
    }

    #[test]
    fn nested_and_escapes() {
        assert_eq!(p("user:{ name:bob }"), m("user.name", "bob"));
        assert_eq!(
            p("a:{ b:{ c:1 } and d:2 }"),
            and(vec![m("a.b.c", "1"), m("a.d", "2")])
        );
        assert_eq!(p("url:http\\://x"), m("url", "http://x"));
        assert_eq!(p("f:\\or"), m("f", "or"));
        assert_eq!(p("f:\"a \\\"q\\\" b\""), phrase("f", "a \"q\" b"));
        assert_eq!(p("f:caf\\u00e9"), m("f", "café"));
        assert_eq!(p("f:true"), m("f", "true"));
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let e = err("status:(200");
        assert_eq!(e.kind, ErrorKind::KqlSyntaxError);
        assert_eq!(e.offset, Some(11));
        assert!(e.reason.starts_with("Expected"), "{}", e.reason);
        assert!(e.reason.contains("but end of input found."), "{}", e.reason);
        let e = err("a and ");
        assert_eq!(e.kind, ErrorKind::KqlSyntaxError);
        assert_eq!(
            err("status:(200").reason,
            "Expected \")\", AND, OR but end of input found.\nstatus:(200\n-----------^"
        );
        let e = err("foo:");
        assert_eq!(e.offset, Some(4));
        assert_eq!(e.col, Some(5));
        assert_eq!(e.line, Some(1));
        let e = err(")");
        assert_eq!(e.offset, Some(0));
        let e = err("a:\"unterminated");
        assert_eq!(e.offset, Some(15));
        let e = err("a:(b))");
        assert_eq!(e.offset, Some(5));
        let e = err("foo not bar");
        assert_eq!(e.kind, ErrorKind::KqlSyntaxError);
    }

    #[test]
    fn bounded() {
        let e = err(&"(".repeat(100_000));
        assert_eq!(e.kind, ErrorKind::KqlSyntaxError);
        let e = err(&"a:{".repeat(100_000));
        assert_eq!(e.kind, ErrorKind::KqlSyntaxError);
        let s = vec!["a"; 10_000].join(" or ");
        assert_eq!(err(&s).kind, ErrorKind::TooManyNestedClauses);
    }
}
