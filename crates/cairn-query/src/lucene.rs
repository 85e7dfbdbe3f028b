//! Lucene `query_string` syntax (as Elasticsearch's `query_string` query and the `q=`
//! URI parameter accept it) into [`Query`].
//!
//! Supported: `field:value`, `field:"a phrase"~2`, wildcards `*` `?`, fuzzy `term~`,
//! `term~1`, `term~0.8` (old similarity, converted to edits like Lucene), boosts `^2`,
//! ranges `[a TO b]`, `{a TO b}`, mixed `[a TO b}`, open `*` ends, `field:>=10` `>` `<` `<=`,
//! `AND` `OR` `NOT` `&&` `||` `!`, `+`/`-`, groups `( )` and `field:( )`, `_exists_:field`,
//! regex `/.../`, backslash escapes, field patterns (`city.\*:x`), default fields and
//! default operator, with Lucene's classic rules for mixing `AND`/`OR`.
//!
//! Mapping to the AST: a bare term is a [`Query::Match`] (analyzed per field by the
//! search layer, so it is an exact term on keyword fields, like ES); a quoted phrase is a
//! [`Query::MatchPhrase`]; `foo*` is a [`Query::Prefix`]; other wildcard terms are
//! [`Query::Wildcard`]; `field:*` is [`Query::Exists`] and `*`/`*:*` is `match_all`.
//! Term-level patterns (wildcard, prefix, fuzzy, regexp) are kept as typed: ES lowercases
//! them on text fields via the field's normalizer, which the search layer and the
//! evaluator do for text fields.

use crate::ast::*;
use crate::error::{ErrorKind, QueryError};
use crate::limits::Limits;

/// Options of a `query_string` query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryStringOptions {
    /// Fields for unqualified terms, with boosts. Empty = [`ALL_FIELDS`].
    pub default_fields: Vec<(String, f32)>,
    /// Operator between clauses without an explicit one (default OR).
    pub default_operator: Operator,
    /// Accepted for compatibility (Cairn does not analyze wildcard terms).
    pub analyze_wildcard: bool,
    /// Allow `*` or `?` as first char of a term (default true).
    pub allow_leading_wildcard: bool,
    /// Ignore type errors (set on generated match queries).
    pub lenient: bool,
    /// Fuzziness for `term~` without a number (default AUTO).
    pub fuzziness: Fuzziness,
    /// Fuzzy prefix length (default 0).
    pub fuzzy_prefix_length: u32,
    /// Fuzzy max expansions (default 50).
    pub fuzzy_max_expansions: u32,
    /// Fuzzy transpositions (default true).
    pub fuzzy_transpositions: bool,
    /// Default slop of phrases (default 0).
    pub phrase_slop: u32,
    /// For regexps (default 10000).
    pub max_determinized_states: u32,
    /// Time zone carried onto ranges.
    pub time_zone: Option<String>,
    /// Applied to the top-level boolean query.
    pub minimum_should_match: Option<MinimumShouldMatch>,
}

impl Default for QueryStringOptions {
    fn default() -> Self {
        QueryStringOptions {
            default_fields: Vec::new(),
            default_operator: Operator::Or,
            analyze_wildcard: false,
            allow_leading_wildcard: true,
            lenient: false,
            fuzziness: Fuzziness::default(),
            fuzzy_prefix_length: 0,
            fuzzy_max_expansions: 50,
            fuzzy_transpositions: true,
            phrase_slop: 0,
            max_determinized_states: 10_000,
            time_zone: None,
            minimum_should_match: None,
        }
    }
}

/// Parse a Lucene query string with default options.
pub fn parse(query: &str, limits: &Limits) -> Result<Query, QueryError> {
    parse_query_string(query, &QueryStringOptions::default(), limits)
}

/// Parse a Lucene query string.
///
/// Errors: `query_shard_exception` "Failed to parse query [...]" caused by a
/// `parse_exception` "Cannot parse '...': ... at line 1, column N.", both carrying the
/// character offset.
pub fn parse_query_string(
    query: &str,
    opts: &QueryStringOptions,
    limits: &Limits,
) -> Result<Query, QueryError> {
    let chars: Vec<char> = query.chars().collect();
    if chars.len() > limits.max_query_string_length {
        return Err(syntax_error(
            query,
            0,
            &format!(
                "query is longer than the maximum of {} characters",
                limits.max_query_string_length
            ),
        ));
    }
    if query.trim().is_empty() {
        return Ok(Query::MatchNone);
    }
    let mut p = LuceneParser {
        text: query,
        chars: &chars,
        pos: 0,
        opts,
        limits,
        leaves: 0,
    };
    let q = p.query(None, 0)?;
    p.skip_ws();
    if p.pos < chars.len() {
        return Err(p.unexpected());
    }
    let q = match (q, &opts.minimum_should_match) {
        (
            Query::Bool {
                must,
                should,
                must_not,
                filter,
                boost,
                ..
            },
            Some(m),
        ) => Query::Bool {
            must,
            should,
            must_not,
            filter,
            minimum_should_match: Some(m.clone()),
            boost,
        },
        (q, _) => q,
    };
    Ok(q)
}

fn syntax_error(text: &str, offset: usize, detail: &str) -> QueryError {
    // JavaCC reports <EOF> at the column of the last character, other tokens at their
    // own 1-based column.
    let column = if detail.contains("<EOF>") {
        offset.max(1)
    } else {
        offset + 1
    };
    let encountered = format!("{detail} at line 1, column {column}.");
    let inner = QueryError::parse(encountered.clone()).at_offset(offset);
    let cause = QueryError::parse(format!("Cannot parse '{text}': {encountered}"))
        .at_offset(offset)
        .caused_by(inner);
    QueryError::new(
        ErrorKind::QueryShardException,
        format!("Failed to parse query [{text}]"),
    )
    .at_offset(offset)
    .caused_by(cause)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conj {
    None,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modifier {
    None,
    Required,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occur {
    Must,
    Should,
    MustNot,
}

struct Clause {
    occur: Occur,
    query: Query,
    explicit: bool,
}

fn is_ws(c: char) -> bool {
    c.is_whitespace() || c == '\u{3000}'
}

/// Characters that end a term (besides whitespace).
fn is_term_stop(c: char) -> bool {
    matches!(
        c,
        '(' | ')' | ':' | '^' | '[' | ']' | '"' | '{' | '}' | '~' | '/' | '!'
    )
}

/// Characters that may not start a term (`*` and `?` may, for wildcard terms).
fn is_term_start_stop(c: char) -> bool {
    is_term_stop(c) || c == '+' || c == '-'
}

/// A raw term as written (escapes kept) plus where it started.
struct RawTerm {
    raw: String,
    start: usize,
}

impl RawTerm {
    fn unescaped(&self) -> String {
        unescape(&self.raw)
    }
    /// Has an unescaped `*` or `?`.
    fn has_wildcard(&self) -> bool {
        let mut esc = false;
        for c in self.raw.chars() {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '*' || c == '?' {
                return true;
            }
        }
        false
    }
}

/// Remove backslash escapes.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            } else {
                out.push('\\');
            }
        } else {
            out.push(c);
        }
    }
    out
}

struct LuceneParser<'a> {
    text: &'a str,
    chars: &'a [char],
    pos: usize,
    opts: &'a QueryStringOptions,
    limits: &'a Limits,
    leaves: usize,
}

impl LuceneParser<'_> {
    fn err_at(&self, offset: usize, detail: &str) -> QueryError {
        syntax_error(self.text, offset, detail)
    }

    fn unexpected(&self) -> QueryError {
        match self.peek() {
            None => self.err_at(self.pos, "Encountered \"<EOF>\""),
            Some(c) => self.err_at(self.pos, &format!("Encountered \"{c}\"")),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(c) if is_ws(c)) {
            self.pos += 1;
        }
    }

    fn count_leaf(&mut self, n: usize) -> Result<(), QueryError> {
        self.leaves += n;
        if self.leaves > self.limits.max_clause_count {
            return Err(self.limits.too_many_nested_clauses_error());
        }
        Ok(())
    }

    /// If the next token is exactly `word` (followed by whitespace, `(`, `"`, a modifier or EOF), consume it.
    fn keyword(&mut self, word: &str) -> bool {
        let n = word.chars().count();
        if self.pos + n > self.chars.len() {
            return false;
        }
        if !self.chars[self.pos..self.pos + n]
            .iter()
            .copied()
            .eq(word.chars())
        {
            return false;
        }
        // A keyword is a whole token: the next char must not continue a term.
        match self.chars.get(self.pos + n) {
            None => {}
            Some(&c) if is_ws(c) || c == '(' || c == '"' || c == ')' => {}
            Some(&c) if (word == "&&" || word == "||") && !c.is_alphanumeric() => {}
            _ => return false,
        }
        self.pos += n;
        true
    }

    fn conjunction(&mut self) -> Conj {
        if self.keyword("AND") || self.keyword("&&") {
            Conj::And
        } else if self.keyword("OR") || self.keyword("||") {
            Conj::Or
        } else {
            Conj::None
        }
    }

    fn modifier(&mut self) -> Modifier {
        match self.peek() {
            Some('+') => {
                self.pos += 1;
                Modifier::Required
            }
            Some('-') | Some('!') => {
                self.pos += 1;
                Modifier::Not
            }
            _ => {
                if self.keyword("NOT") {
                    Modifier::Not
                } else {
                    Modifier::None
                }
            }
        }
    }

    /// `Query ::= Modifiers Clause (Conjunction Modifiers Clause)*`
    fn query(&mut self, field: Option<&str>, depth: usize) -> Result<Query, QueryError> {
        let mut clauses: Vec<Clause> = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(')') => break,
                _ => {}
            }
            let conj_start = self.pos;
            let conj = if clauses.is_empty() {
                Conj::None
            } else {
                self.conjunction()
            };
            if clauses.is_empty() && (self.keyword("AND") || self.keyword("OR")) {
                return Err(self.err_at(conj_start, "Encountered \" <AND/OR> \"\""));
            }
            self.skip_ws();
            let mods = self.modifier();
            self.skip_ws();
            if matches!(self.peek(), None | Some(')')) {
                return Err(self.unexpected());
            }
            let q = self.clause(field, depth)?;
            self.push_clause(&mut clauses, conj, mods, q);
        }
        if clauses.is_empty() {
            return Err(self.unexpected());
        }
        Ok(self.build_bool(clauses))
    }

    /// Lucene classic `QueryParserBase.addClause`.
    fn add_clause(&self, clauses: &mut [Clause], conj: Conj, mods: Modifier, q: Query) -> Clause {
        let op_and = self.opts.default_operator == Operator::And;
        if let Some(last) = clauses.last_mut() {
            if conj == Conj::And && last.occur != Occur::MustNot {
                last.occur = Occur::Must;
                last.explicit = true;
            }
            if op_and && conj == Conj::Or && last.occur != Occur::MustNot {
                last.occur = Occur::Should;
                last.explicit = true;
            }
        }
        let (required, prohibited) = if !op_and {
            let prohibited = mods == Modifier::Not;
            let mut required = mods == Modifier::Required;
            if conj == Conj::And && !prohibited {
                required = true;
            }
            (required, prohibited)
        } else {
            let prohibited = mods == Modifier::Not;
            (!prohibited && conj != Conj::Or, prohibited)
        };
        let occur = if prohibited {
            Occur::MustNot
        } else if required {
            Occur::Must
        } else {
            Occur::Should
        };
        Clause {
            occur,
            query: q,
            explicit: mods != Modifier::None || conj != Conj::None,
        }
    }

    fn build_bool(&self, clauses: Vec<Clause>) -> Query {
        if clauses.len() == 1 {
            let only = &clauses[0];
            if !only.explicit && only.occur != Occur::MustNot {
                if let Some(c) = clauses.into_iter().next() {
                    return c.query;
                }
                return Query::MatchNone;
            }
        }
        let mut must = Vec::new();
        let mut should = Vec::new();
        let mut must_not = Vec::new();
        for c in clauses {
            match c.occur {
                Occur::Must => must.push(c.query),
                Occur::Should => should.push(c.query),
                Occur::MustNot => must_not.push(c.query),
            }
        }
        Query::Bool {
            must,
            should,
            must_not,
            filter: Vec::new(),
            minimum_should_match: None,
            boost: None,
        }
    }
}

// The add_clause above takes `&mut [Clause]` for the previous clause and returns the new one;
// the caller pushes it. Keep the call site small:
impl LuceneParser<'_> {
    fn push_clause(&self, clauses: &mut Vec<Clause>, conj: Conj, mods: Modifier, q: Query) {
        let c = self.add_clause(clauses, conj, mods, q);
        clauses.push(c);
    }
}

impl LuceneParser<'_> {
    /// `Clause ::= [field ':'] (Term | '(' Query ')') ['^' boost]`
    fn clause(&mut self, field: Option<&str>, depth: usize) -> Result<Query, QueryError> {
        // Field prefix?
        let save = self.pos;
        let mut field_owned: Option<String> = None;
        if let Some(c) = self.peek() {
            if !is_term_start_stop(c) && !is_ws(c) || c == '\\' {
                let t = self.raw_term();
                let after = self.pos;
                self.skip_ws();
                if self.peek() == Some(':') && !t.raw.is_empty() {
                    self.pos += 1;
                    self.skip_ws();
                    field_owned = Some(t.unescaped());
                } else {
                    self.pos = after;
                    self.pos = save;
                }
            }
        }
        let field: Option<&str> = match &field_owned {
            Some(f) => Some(f.as_str()),
            None => field,
        };
        if field_owned.is_some() && matches!(self.peek(), None | Some(')')) {
            return Err(self.unexpected());
        }
        let q = if self.peek() == Some('(') {
            if depth + 1 > self.limits.max_query_string_depth {
                return Err(self.err_at(self.pos, "query is nested too deeply"));
            }
            self.pos += 1;
            let inner = self.query(field, depth + 1)?;
            self.skip_ws();
            if self.peek() != Some(')') {
                return Err(self.unexpected());
            }
            self.pos += 1;
            let boost = self.boost_suffix()?;
            match boost {
                Some(b) => inner.with_boost(b),
                None => inner,
            }
        } else {
            self.term_clause(field)?
        };
        Ok(q)
    }

    /// Read a raw term (escapes kept).
    fn raw_term(&mut self) -> RawTerm {
        let start = self.pos;
        let mut raw = String::new();
        let mut first = true;
        while let Some(c) = self.peek() {
            if c == '\\' {
                raw.push(c);
                self.pos += 1;
                if let Some(n) = self.peek() {
                    raw.push(n);
                    self.pos += 1;
                }
                first = false;
                continue;
            }
            if is_ws(c) || is_term_stop(c) || (first && (c == '+' || c == '-')) {
                break;
            }
            raw.push(c);
            self.pos += 1;
            first = false;
        }
        RawTerm { raw, start }
    }

    /// `^2` / `^0.5`.
    fn boost_suffix(&mut self) -> Result<Option<f32>, QueryError> {
        if self.peek() != Some('^') {
            return Ok(None);
        }
        let at = self.pos;
        self.pos += 1;
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        match s.parse::<f32>() {
            Ok(b) if b.is_finite() => Ok(Some(b)),
            _ => Err(self.err_at(at + 1, "Encountered invalid boost")),
        }
    }

    /// `~` / `~2` / `~0.8`: returns Some(None) for a bare `~`.
    fn fuzzy_suffix(&mut self) -> Result<Option<Option<f32>>, QueryError> {
        if self.peek() != Some('~') {
            return Ok(None);
        }
        self.pos += 1;
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        if start == self.pos {
            return Ok(Some(None));
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        match s.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(Some(Some(v))),
            _ => Err(self.err_at(start, "Encountered invalid fuzzy value")),
        }
    }

    /// Build one leaf per target field (or `field` if given).
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
            [(f, b)] => {
                self.count_leaf(1)?;
                let q = make(f);
                Ok(if (*b - 1.0).abs() > f32::EPSILON {
                    q.with_boost(*b)
                } else {
                    q
                })
            }
            many => {
                self.count_leaf(many.len())?;
                let should = many
                    .iter()
                    .map(|(f, b)| {
                        let q = make(f);
                        if (*b - 1.0).abs() > f32::EPSILON {
                            q.with_boost(*b)
                        } else {
                            q
                        }
                    })
                    .collect();
                Ok(Query::Bool {
                    must: Vec::new(),
                    should,
                    must_not: Vec::new(),
                    filter: Vec::new(),
                    minimum_should_match: None,
                    boost: None,
                })
            }
        }
    }

    fn term_clause(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        let Some(c) = self.peek() else {
            return Err(self.unexpected());
        };
        let q = match c {
            '"' => self.phrase(field)?,
            '[' | '{' => self.range(field)?,
            '/' => self.regex(field)?,
            c if is_term_start_stop(c) && c != '\\' => return Err(self.unexpected()),
            _ => {
                let t = self.raw_term();
                if t.raw.is_empty() {
                    return Err(self.unexpected());
                }
                self.plain_term(field, t)?
            }
        };
        Ok(q)
    }

    fn phrase(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err_at(start, "Lexical error: unterminated quoted phrase")),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    self.pos += 1;
                    if let Some(n) = self.peek() {
                        text.push(n);
                        self.pos += 1;
                    }
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        let mut slop = self.opts.phrase_slop;
        let mut boost = None;
        for _ in 0..2 {
            if let Some(f) = self.fuzzy_suffix()? {
                if let Some(v) = f {
                    slop = v.max(0.0) as u32;
                }
            } else if let Some(b) = self.boost_suffix()? {
                boost = Some(b);
            }
        }
        let q = self.per_field(field, &|f| Query::MatchPhrase {
            field: f.to_string(),
            query: text.clone(),
            slop,
            zero_terms_query: ZeroTermsQuery::None,
            boost: None,
        })?;
        Ok(match boost {
            Some(b) => q.with_boost(b),
            None => q,
        })
    }

    fn range_bound(&mut self) -> Result<Option<String>, QueryError> {
        self.skip_ws();
        if self.peek() == Some('"') {
            let start = self.pos;
            self.pos += 1;
            let mut s = String::new();
            loop {
                match self.peek() {
                    None => {
                        return Err(
                            self.err_at(start, "Lexical error: unterminated quoted range bound")
                        )
                    }
                    Some('"') => {
                        self.pos += 1;
                        break;
                    }
                    Some('\\') => {
                        self.pos += 1;
                        if let Some(n) = self.peek() {
                            s.push(n);
                            self.pos += 1;
                        }
                    }
                    Some(c) => {
                        s.push(c);
                        self.pos += 1;
                    }
                }
            }
            return Ok(Some(s));
        }
        let start = self.pos;
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if is_ws(c) || c == ']' || c == '}' {
                break;
            }
            s.push(c);
            self.pos += 1;
        }
        if s.is_empty() {
            return Err(if self.peek().is_none() {
                self.unexpected()
            } else {
                self.err_at(
                    start,
                    &format!("Encountered \"{}\"", self.peek().unwrap_or(' ')),
                )
            });
        }
        Ok(if s == "*" { None } else { Some(s) })
    }

    fn range(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        let include_lower = self.peek() == Some('[');
        self.pos += 1;
        let lower = self.range_bound()?;
        self.skip_ws();
        if !(self.peek() == Some('T') && self.peek_at(1) == Some('O')) {
            return Err(self.unexpected());
        }
        self.pos += 2;
        let upper = self.range_bound()?;
        self.skip_ws();
        let include_upper = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        let boost = self.boost_suffix()?;
        let tz = self.opts.time_zone.clone();
        let q = if lower.is_none() && upper.is_none() {
            self.per_field(field, &|f| Query::Exists {
                field: f.to_string(),
                boost: None,
            })?
        } else {
            self.per_field(field, &|f| {
                let lo = lower.clone().map(serde_json::Value::String);
                let hi = upper.clone().map(serde_json::Value::String);
                Query::Range {
                    field: f.to_string(),
                    gt: if include_lower { None } else { lo.clone() },
                    gte: if include_lower { lo } else { None },
                    lt: if include_upper { None } else { hi.clone() },
                    lte: if include_upper { hi } else { None },
                    format: None,
                    time_zone: tz.clone(),
                    boost: None,
                }
            })?
        };
        Ok(match boost {
            Some(b) => q.with_boost(b),
            None => q,
        })
    }

    fn regex(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        let start = self.pos;
        self.pos += 1;
        let mut pattern = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.err_at(start, "Lexical error: unterminated regular expression"))
                }
                Some('/') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') if self.peek_at(1) == Some('/') => {
                    pattern.push('/');
                    self.pos += 2;
                }
                Some('\\') => {
                    pattern.push('\\');
                    self.pos += 1;
                    if let Some(n) = self.peek() {
                        pattern.push(n);
                        self.pos += 1;
                    }
                }
                Some(c) => {
                    pattern.push(c);
                    self.pos += 1;
                }
            }
        }
        let len = pattern.chars().count();
        if len > self.limits.max_regex_length {
            return Err(self.limits.regex_length_error(len));
        }
        let boost = self.boost_suffix()?;
        let states = self.opts.max_determinized_states;
        let q = self.per_field(field, &|f| Query::Regexp {
            field: f.to_string(),
            pattern: pattern.clone(),
            flags: crate::regexp::flags::ALL,
            case_insensitive: false,
            max_determinized_states: states,
            boost: None,
        })?;
        Ok(match boost {
            Some(b) => q.with_boost(b),
            None => q,
        })
    }

    fn plain_term(&mut self, field: Option<&str>, t: RawTerm) -> Result<Query, QueryError> {
        // Suffixes: fuzzy and boost, in either order.
        let mut fuzzy: Option<Option<f32>> = None;
        let mut boost = None;
        for _ in 0..2 {
            if let Some(f) = self.fuzzy_suffix()? {
                fuzzy = Some(f);
            } else if let Some(b) = self.boost_suffix()? {
                boost = Some(b);
            }
        }
        let q = self.term_query(field, &t, fuzzy)?;
        Ok(match boost {
            Some(b) => q.with_boost(b),
            None => q,
        })
    }

    fn term_query(
        &mut self,
        field: Option<&str>,
        t: &RawTerm,
        fuzzy: Option<Option<f32>>,
    ) -> Result<Query, QueryError> {
        let value = t.unescaped();
        if field == Some("_exists_") {
            self.count_leaf(1)?;
            return Ok(Query::Exists {
                field: value,
                boost: None,
            });
        }
        if t.raw == "*" && fuzzy.is_none() {
            // `*` alone: match_all unqualified (or `*:*`), exists on a field.
            return match field {
                None | Some("*") => {
                    self.count_leaf(1)?;
                    Ok(Query::match_all())
                }
                Some(_) => self.per_field(field, &|f| Query::Exists {
                    field: f.to_string(),
                    boost: None,
                }),
            };
        }
        if let Some(f) = fuzzy {
            let fuzziness = match f {
                None => self.opts.fuzziness,
                Some(v) if v >= 1.0 => Fuzziness::Edits(v.min(2.0) as u8),
                Some(v) if v <= 0.0 => Fuzziness::Edits(0),
                Some(v) => {
                    // Lucene's FuzzyQuery.floatToEdits for the old similarity syntax.
                    let len = value.chars().count() as f64;
                    Fuzziness::Edits((((1.0 - f64::from(v)) * len) as u32).min(2) as u8)
                }
            };
            let o = self.opts;
            return self.per_field(field, &|f| Query::Fuzzy {
                field: f.to_string(),
                value: value.clone(),
                fuzziness,
                prefix_length: o.fuzzy_prefix_length,
                max_expansions: o.fuzzy_max_expansions,
                transpositions: o.fuzzy_transpositions,
                boost: None,
            });
        }
        if t.has_wildcard() {
            if !self.opts.allow_leading_wildcard
                && (t.raw.starts_with('*') || t.raw.starts_with('?'))
            {
                return Err(self.err_at(
                    t.start,
                    "'*' or '?' not allowed as first character in WildcardQuery",
                ));
            }
            // `foo*` with no other wildcard: a prefix query.
            let body = t.raw.strip_suffix('*').filter(|b| {
                !b.ends_with('\\')
                    && !RawTerm {
                        raw: b.to_string(),
                        start: 0,
                    }
                    .has_wildcard()
            });
            if let Some(body) = body {
                let prefix = unescape(body);
                return self.per_field(field, &|f| Query::Prefix {
                    field: f.to_string(),
                    value: prefix.clone(),
                    case_insensitive: false,
                    boost: None,
                });
            }
            let pattern = t.raw.clone();
            return self.per_field(field, &|f| Query::Wildcard {
                field: f.to_string(),
                pattern: pattern.clone(),
                case_insensitive: false,
                boost: None,
            });
        }
        // ES extension: `>10`, `>=10`, `<10`, `<=10`.
        if value.len() > 1 && (value.starts_with('>') || value.starts_with('<')) {
            let (op, rest) = if let Some(r) = value.strip_prefix(">=") {
                (">=", r)
            } else if let Some(r) = value.strip_prefix("<=") {
                ("<=", r)
            } else if let Some(r) = value.strip_prefix('>') {
                (">", r)
            } else if let Some(r) = value.strip_prefix('<') {
                ("<", r)
            } else {
                ("", value.as_str())
            };
            if !rest.is_empty() {
                let v = serde_json::Value::String(rest.to_string());
                let tz = self.opts.time_zone.clone();
                return self.per_field(field, &|f| Query::Range {
                    field: f.to_string(),
                    gt: (op == ">").then(|| v.clone()),
                    gte: (op == ">=").then(|| v.clone()),
                    lt: (op == "<").then(|| v.clone()),
                    lte: (op == "<=").then(|| v.clone()),
                    format: None,
                    time_zone: tz.clone(),
                    boost: None,
                });
            }
        }
        let op = self.opts.default_operator;
        let lenient = self.opts.lenient;
        self.per_field(field, &|f| Query::Match {
            field: f.to_string(),
            query: value.clone(),
            operator: op,
            minimum_should_match: None,
            fuzziness: None,
            prefix_length: 0,
            max_expansions: 50,
            lenient,
            zero_terms_query: ZeroTermsQuery::None,
            boost: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Query {
        parse(s, &Limits::default()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn m(f: &str, q: &str) -> Query {
        Query::match_text(f, q)
    }

    fn bool_q(must: Vec<Query>, should: Vec<Query>, must_not: Vec<Query>) -> Query {
        Query::Bool {
            must,
            should,
            must_not,
            filter: vec![],
            minimum_should_match: None,
            boost: None,
        }
    }

    #[test]
    fn single_terms() {
        assert_eq!(p("foo"), m("*", "foo"));
        assert_eq!(p("status:200"), m("status", "200"));
        assert_eq!(p("a.b.c:x"), m("a.b.c", "x"));
        assert_eq!(p("*"), Query::match_all());
        assert_eq!(p("*:*"), Query::match_all());
        assert_eq!(
            p("host:*"),
            Query::Exists {
                field: "host".into(),
                boost: None
            }
        );
        assert_eq!(
            p("_exists_:user.name"),
            Query::Exists {
                field: "user.name".into(),
                boost: None
            }
        );
        assert_eq!(p("foo-bar"), m("*", "foo-bar"));
        assert_eq!(p("field : value"), m("field", "value"));
    }

    #[test]
    fn boolean_operators() {
        assert_eq!(
            p("a AND b"),
            bool_q(vec![m("*", "a"), m("*", "b")], vec![], vec![])
        );
        assert_eq!(
            p("a && b"),
            bool_q(vec![m("*", "a"), m("*", "b")], vec![], vec![])
        );
        assert_eq!(
            p("a OR b"),
            bool_q(vec![], vec![m("*", "a"), m("*", "b")], vec![])
        );
        assert_eq!(
            p("a || b"),
            bool_q(vec![], vec![m("*", "a"), m("*", "b")], vec![])
        );
        assert_eq!(
            p("a b"),
            bool_q(vec![], vec![m("*", "a"), m("*", "b")], vec![])
        );
        assert_eq!(
            p("a NOT b"),
            bool_q(vec![], vec![m("*", "a")], vec![m("*", "b")])
        );
        assert_eq!(
            p("+a -b c"),
            bool_q(vec![m("*", "a")], vec![m("*", "c")], vec![m("*", "b")])
        );
        assert_eq!(p("!a"), bool_q(vec![], vec![], vec![m("*", "a")]));
        assert_eq!(p("NOT a"), bool_q(vec![], vec![], vec![m("*", "a")]));
        // Lucene classic: `a AND b OR c` makes a and b required, c optional.
        assert_eq!(
            p("a AND b OR c"),
            bool_q(vec![m("*", "a"), m("*", "b")], vec![m("*", "c")], vec![])
        );
        // keywords are case-sensitive and whole tokens
        assert_eq!(
            p("a and b"),
            bool_q(
                vec![],
                vec![m("*", "a"), m("*", "and"), m("*", "b")],
                vec![]
            )
        );
        assert_eq!(p("ANDROID"), m("*", "ANDROID"));
    }

    #[test]
    fn default_operator_and() {
        let opts = QueryStringOptions {
            default_operator: Operator::And,
            ..Default::default()
        };
        let q = parse_query_string("a b OR c", &opts, &Limits::default()).unwrap();
        let mut ma = m("*", "a");
        let mut mb = m("*", "b");
        let mut mc = m("*", "c");
        for q in [&mut ma, &mut mb, &mut mc] {
            if let Query::Match { operator, .. } = q {
                *operator = Operator::And;
            }
        }
        assert_eq!(q, bool_q(vec![ma], vec![mb, mc], vec![]));
    }

    #[test]
    fn groups_and_field_groups() {
        assert_eq!(
            p("status:(200 OR 404)"),
            bool_q(vec![], vec![m("status", "200"), m("status", "404")], vec![])
        );
        assert_eq!(
            p("(a OR b) AND c"),
            bool_q(
                vec![
                    bool_q(vec![], vec![m("*", "a"), m("*", "b")], vec![]),
                    m("*", "c")
                ],
                vec![],
                vec![]
            )
        );
        assert_eq!(p("((a))"), m("*", "a"));
        assert_eq!(
            p("f:(a other:b)"),
            bool_q(vec![], vec![m("f", "a"), m("other", "b")], vec![])
        );
    }

    #[test]
    fn phrases_fuzzy_boost() {
        assert_eq!(
            p("msg:\"hello world\"~3"),
            Query::MatchPhrase {
                field: "msg".into(),
                query: "hello world".into(),
                slop: 3,
                zero_terms_query: ZeroTermsQuery::None,
                boost: None
            }
        );
        assert_eq!(
            p("\"say \\\"hi\\\"\""),
            Query::MatchPhrase {
                field: "*".into(),
                query: "say \"hi\"".into(),
                slop: 0,
                zero_terms_query: ZeroTermsQuery::None,
                boost: None
            }
        );
        match p("quikc~") {
            Query::Fuzzy {
                value, fuzziness, ..
            } => {
                assert_eq!(value, "quikc");
                assert_eq!(fuzziness, Fuzziness::default());
            }
            other => panic!("{other:?}"),
        }
        match p("name:quikc~1^2") {
            Query::Fuzzy {
                field,
                fuzziness,
                boost,
                ..
            } => {
                assert_eq!(field, "name");
                assert_eq!(fuzziness, Fuzziness::Edits(1));
                assert_eq!(boost, Some(2.0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p("a^2"), m("*", "a").with_boost(2.0));
        assert_eq!(
            p("(a b)^0.5"),
            bool_q(vec![], vec![m("*", "a"), m("*", "b")], vec![]).with_boost(0.5)
        );
    }

    #[test]
    fn wildcards_and_regex() {
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
            p("host:w?b*1"),
            Query::Wildcard {
                field: "host".into(),
                pattern: "w?b*1".into(),
                case_insensitive: false,
                boost: None
            }
        );
        assert_eq!(p("path:a\\*b"), m("path", "a*b"), "escaped star is literal");
        assert_eq!(
            p("city.\\*:paris"),
            m("city.*", "paris"),
            "escaped star in field name is a pattern"
        );
        match p("name:/joh?n(ath[oa]n)/") {
            Query::Regexp { field, pattern, .. } => {
                assert_eq!(field, "name");
                assert_eq!(pattern, "joh?n(ath[oa]n)");
            }
            other => panic!("{other:?}"),
        }
        let opts = QueryStringOptions {
            allow_leading_wildcard: false,
            ..Default::default()
        };
        let e = parse_query_string("*foo", &opts, &Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::QueryShardException);
    }

    #[test]
    fn ranges() {
        assert_eq!(
            p("age:[10 TO 20}"),
            Query::Range {
                field: "age".into(),
                gt: None,
                gte: Some(json!("10")),
                lt: Some(json!("20")),
                lte: None,
                format: None,
                time_zone: None,
                boost: None
            }
        );
        assert_eq!(
            p("date:{2024-01-01 TO *]"),
            Query::Range {
                field: "date".into(),
                gt: Some(json!("2024-01-01")),
                gte: None,
                lt: None,
                lte: None,
                format: None,
                time_zone: None,
                boost: None
            }
        );
        assert_eq!(
            p("age:[* TO *]"),
            Query::Exists {
                field: "age".into(),
                boost: None
            }
        );
        assert_eq!(
            p("t:[\"2024-01-01 00:00\" TO now]"),
            Query::Range {
                field: "t".into(),
                gt: None,
                gte: Some(json!("2024-01-01 00:00")),
                lt: None,
                lte: Some(json!("now")),
                format: None,
                time_zone: None,
                boost: None
            }
        );
        for (s, gt, gte, lt, lte) in [
            ("age:>10", Some("10"), None, None, None),
            ("age:>=10", None, Some("10"), None, None),
            ("age:<10", None, None, Some("10"), None),
            ("age:<=10", None, None, None, Some("10")),
        ] {
            assert_eq!(
                p(s),
                Query::Range {
                    field: "age".into(),
                    gt: gt.map(|v| json!(v)),
                    gte: gte.map(|v| json!(v)),
                    lt: lt.map(|v| json!(v)),
                    lte: lte.map(|v| json!(v)),
                    format: None,
                    time_zone: None,
                    boost: None
                },
                "{s}"
            );
        }
    }

    #[test]
    fn default_fields() {
        let opts = QueryStringOptions {
            default_fields: vec![("title".into(), 2.0), ("body".into(), 1.0)],
            ..Default::default()
        };
        let q = parse_query_string("foo", &opts, &Limits::default()).unwrap();
        assert_eq!(
            q,
            bool_q(
                vec![],
                vec![m("title", "foo").with_boost(2.0), m("body", "foo")],
                vec![]
            )
        );
        let opts = QueryStringOptions {
            default_fields: vec![("message".into(), 1.0)],
            ..Default::default()
        };
        let q = parse_query_string("foo status:1", &opts, &Limits::default()).unwrap();
        assert_eq!(
            q,
            bool_q(vec![], vec![m("message", "foo"), m("status", "1")], vec![])
        );
    }

    #[test]
    fn empty_is_match_none() {
        assert_eq!(p(""), Query::MatchNone);
        assert_eq!(p("   "), Query::MatchNone);
    }

    #[test]
    fn syntax_errors() {
        for (s, off) in [
            ("foo:(", 5),
            ("(a", 2),
            ("a)", 1),
            ("\"unterminated", 0),
            ("a AND", 5),
            ("AND a", 0),
            ("f:[1 TO", 7),
            ("/abc", 0),
            ("a:", 2),
        ] {
            let e = parse(s, &Limits::default()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::QueryShardException, "{s}");
            assert_eq!(e.reason, format!("Failed to parse query [{s}]"), "{s}");
            assert_eq!(e.offset, Some(off), "{s}: {e:?}");
            let cause = e.caused_by.as_ref().unwrap();
            assert_eq!(cause.kind, ErrorKind::ParseException);
            assert!(
                cause.reason.starts_with(&format!("Cannot parse '{s}'")),
                "{cause:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let s = "(".repeat(100_000);
        let e = parse(&s, &Limits::default()).unwrap_err();
        assert!(e.caused_by.unwrap().reason.contains("nested too deeply"));
        let ok = format!("{}a{}", "(".repeat(50), ")".repeat(50));
        assert_eq!(p(&ok), m("*", "a"));
    }

    #[test]
    fn clause_limit() {
        let s = "a ".repeat(5000);
        let e = parse(&s, &Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooManyNestedClauses);
    }
}
