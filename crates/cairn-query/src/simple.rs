//! `simple_query_string` syntax into [`Query`].
//!
//! Operators (each can be switched off with `flags`): `+` AND, `|` OR, `-` NOT, `"..."`
//! phrase, `~N` after a phrase (slop) or a term (fuzzy), `*` at the end of a term
//! (prefix), `( )` precedence, `\` escape, whitespace (split + default operator). Like
//! ES, this syntax never fails: unbalanced quotes or parentheses are read leniently.
//! Operators bind left to right without precedence (`a | b + c` is `(a | b) + c`), as in
//! Lucene's `SimpleQueryParser`.

use crate::ast::*;
use crate::error::QueryError;
use crate::limits::Limits;

/// `simple_query_string` flags (ES `SimpleQueryStringFlag` values).
pub mod flags {
    /// Every operator.
    pub const ALL: u32 = u32::MAX;
    /// No operator.
    pub const NONE: u32 = 0;
    /// `+`
    pub const AND: u32 = 1;
    /// `-`
    pub const NOT: u32 = 2;
    /// `|`
    pub const OR: u32 = 4;
    /// trailing `*`
    pub const PREFIX: u32 = 8;
    /// `"..."`
    pub const PHRASE: u32 = 16;
    /// `( )`
    pub const PRECEDENCE: u32 = 32;
    /// `\`
    pub const ESCAPE: u32 = 64;
    /// whitespace splits terms
    pub const WHITESPACE: u32 = 128;
    /// `~N` after a term
    pub const FUZZY: u32 = 256;
    /// `~N` after a phrase
    pub const NEAR: u32 = 512;
    /// alias of NEAR
    pub const SLOP: u32 = 512;
}

/// Parse ES's `flags` string (`"OR|AND|PREFIX"`).
pub fn parse_flags(s: &str) -> Result<u32, QueryError> {
    let mut v = 0u32;
    for part in s.split('|') {
        let name = part.trim().to_ascii_uppercase();
        if name.is_empty() {
            continue;
        }
        v |= match name.as_str() {
            "ALL" => flags::ALL,
            "NONE" => flags::NONE,
            "AND" => flags::AND,
            "NOT" => flags::NOT,
            "OR" => flags::OR,
            "PREFIX" => flags::PREFIX,
            "PHRASE" => flags::PHRASE,
            "PRECEDENCE" => flags::PRECEDENCE,
            "ESCAPE" => flags::ESCAPE,
            "WHITESPACE" => flags::WHITESPACE,
            "FUZZY" => flags::FUZZY,
            "NEAR" | "SLOP" => flags::NEAR,
            _ => {
                return Err(QueryError::illegal_argument(format!(
                    "Unknown simple_query_string flag [{}]",
                    part.trim()
                )))
            }
        };
    }
    Ok(v)
}

/// Options of a `simple_query_string` query.
#[derive(Debug, Clone, PartialEq)]
pub struct SimpleQueryStringOptions {
    /// Fields with boosts; empty = [`ALL_FIELDS`].
    pub fields: Vec<(String, f32)>,
    /// Operator where none is written (default OR).
    pub default_operator: Operator,
    /// Enabled operators.
    pub flags: u32,
    /// Set on generated match queries.
    pub lenient: bool,
    /// Accepted for compatibility.
    pub analyze_wildcard: bool,
    /// Applied to the top-level boolean query.
    pub minimum_should_match: Option<MinimumShouldMatch>,
    /// Fuzzy prefix length.
    pub fuzzy_prefix_length: u32,
    /// Fuzzy max expansions.
    pub fuzzy_max_expansions: u32,
    /// Fuzzy transpositions.
    pub fuzzy_transpositions: bool,
}

impl Default for SimpleQueryStringOptions {
    fn default() -> Self {
        SimpleQueryStringOptions {
            fields: Vec::new(),
            default_operator: Operator::Or,
            flags: flags::ALL,
            lenient: false,
            analyze_wildcard: false,
            minimum_should_match: None,
            fuzzy_prefix_length: 0,
            fuzzy_max_expansions: 50,
            fuzzy_transpositions: true,
        }
    }
}

/// Parse a simple query string. Only limit violations are errors.
pub fn parse(
    text: &str,
    opts: &SimpleQueryStringOptions,
    limits: &Limits,
) -> Result<Query, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > limits.max_query_string_length {
        return Err(QueryError::illegal_argument(format!(
            "query is longer than the maximum of {} characters",
            limits.max_query_string_length
        )));
    }
    let mut p = SimpleParser {
        chars: &chars,
        pos: 0,
        opts,
        limits,
        leaves: 0,
    };
    let q = p.sub_query(0)?.unwrap_or(Query::MatchNone);
    Ok(match (q, &opts.minimum_should_match) {
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
        ) if !should.is_empty() => Query::Bool {
            must,
            should,
            must_not,
            filter,
            minimum_should_match: Some(m.clone()),
            boost,
        },
        (q, _) => q,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Must,
    Should,
}

struct SimpleParser<'a> {
    chars: &'a [char],
    pos: usize,
    opts: &'a SimpleQueryStringOptions,
    limits: &'a Limits,
    leaves: usize,
}

impl SimpleParser<'_> {
    fn on(&self, flag: u32) -> bool {
        self.opts.flags & flag != 0
    }

    fn is_space(&self, c: char) -> bool {
        self.on(flags::WHITESPACE) && matches!(c, ' ' | '\t' | '\n' | '\r')
    }

    fn is_operator(&self, c: char) -> bool {
        (c == '+' && self.on(flags::AND))
            || (c == '|' && self.on(flags::OR))
            || (c == '-' && self.on(flags::NOT))
            || ((c == '(' || c == ')') && self.on(flags::PRECEDENCE))
            || (c == '"' && self.on(flags::PHRASE))
    }

    fn sub_query(&mut self, depth: usize) -> Result<Option<Query>, QueryError> {
        let mut top: Option<Query> = None;
        let mut top_op: Option<Op> = None;
        let mut pending_op: Option<Op> = None;
        let mut negate = false;
        while let Some(c) = self.chars.get(self.pos).copied() {
            let branch = if c == '(' && self.on(flags::PRECEDENCE) {
                self.pos += 1;
                if depth + 1 > self.limits.max_query_string_depth {
                    return Err(QueryError::illegal_argument(
                        "simple_query_string is nested too deeply",
                    ));
                }
                self.sub_query(depth + 1)?
            } else if c == ')' && self.on(flags::PRECEDENCE) {
                self.pos += 1;
                if depth > 0 {
                    break;
                }
                continue;
            } else if c == '"' && self.on(flags::PHRASE) {
                self.phrase()?
            } else if c == '+' && self.on(flags::AND) {
                self.pos += 1;
                if top.is_some() {
                    pending_op = Some(Op::Must);
                }
                continue;
            } else if c == '|' && self.on(flags::OR) {
                self.pos += 1;
                if top.is_some() {
                    pending_op = Some(Op::Should);
                }
                continue;
            } else if c == '-' && self.on(flags::NOT) {
                self.pos += 1;
                negate = !negate;
                continue;
            } else if self.is_space(c) {
                self.pos += 1;
                continue;
            } else {
                self.term()?
            };
            let Some(mut branch) = branch else {
                negate = false;
                continue;
            };
            if negate {
                branch = Query::Bool {
                    must: Vec::new(),
                    should: Vec::new(),
                    must_not: vec![branch],
                    filter: Vec::new(),
                    minimum_should_match: None,
                    boost: None,
                };
                negate = false;
            }
            let op = pending_op
                .take()
                .unwrap_or(match self.opts.default_operator {
                    Operator::And => Op::Must,
                    Operator::Or => Op::Should,
                });
            top = Some(match top.take() {
                None => branch,
                Some(prev) => {
                    if top_op == Some(op) {
                        push_into(prev, op, branch)
                    } else {
                        top_op = Some(op);
                        let clauses = vec![prev, branch];
                        let (must, should) = match op {
                            Op::Must => (clauses, Vec::new()),
                            Op::Should => (Vec::new(), clauses),
                        };
                        Query::Bool {
                            must,
                            should,
                            must_not: Vec::new(),
                            filter: Vec::new(),
                            minimum_should_match: None,
                            boost: None,
                        }
                    }
                }
            });
        }
        Ok(top)
    }

    fn phrase(&mut self) -> Result<Option<Query>, QueryError> {
        self.pos += 1;
        let mut text = String::new();
        let mut closed = false;
        while let Some(c) = self.chars.get(self.pos).copied() {
            self.pos += 1;
            if c == '\\' && self.on(flags::ESCAPE) {
                if let Some(n) = self.chars.get(self.pos).copied() {
                    text.push(n);
                    self.pos += 1;
                }
                continue;
            }
            if c == '"' {
                closed = true;
                break;
            }
            text.push(c);
        }
        if !closed {
            // Lucene treats an unclosed quote as a plain term.
            return self.make_terms(&text, None, false);
        }
        let mut slop = 0;
        if self.on(flags::NEAR) {
            if let Some(n) = self.tilde_number() {
                slop = n;
            }
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        self.leaf(&|f| Query::MatchPhrase {
            field: f.to_string(),
            query: text.clone(),
            slop,
            zero_terms_query: ZeroTermsQuery::None,
            boost: None,
        })
        .map(Some)
    }

    fn tilde_number(&mut self) -> Option<u32> {
        if self.chars.get(self.pos) != Some(&'~') {
            return None;
        }
        self.pos += 1;
        let start = self.pos;
        while matches!(self.chars.get(self.pos), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        Some(s.parse::<u32>().unwrap_or(0))
    }

    fn term(&mut self) -> Result<Option<Query>, QueryError> {
        let mut text = String::new();
        let mut fuzzy = None;
        let mut prefix = false;
        while let Some(c) = self.chars.get(self.pos).copied() {
            if c == '\\' && self.on(flags::ESCAPE) {
                self.pos += 1;
                if let Some(n) = self.chars.get(self.pos).copied() {
                    text.push(n);
                    self.pos += 1;
                }
                continue;
            }
            if self.is_space(c) || self.is_operator(c) {
                break;
            }
            if c == '~' && self.on(flags::FUZZY) {
                fuzzy = self.tilde_number();
                break;
            }
            text.push(c);
            self.pos += 1;
        }
        if self.on(flags::PREFIX) && text.ends_with('*') && fuzzy.is_none() {
            text.pop();
            prefix = true;
        }
        self.make_terms(&text, fuzzy, prefix)
    }

    fn make_terms(
        &mut self,
        text: &str,
        fuzzy: Option<u32>,
        prefix: bool,
    ) -> Result<Option<Query>, QueryError> {
        if text.is_empty() {
            if prefix {
                // A lone `*`: everything.
                self.count(1)?;
                return Ok(Some(Query::match_all()));
            }
            return Ok(None);
        }
        let value = text.to_string();
        let o = self.opts;
        let q = if prefix {
            self.leaf(&|f| Query::Prefix {
                field: f.to_string(),
                value: value.clone(),
                case_insensitive: false,
                boost: None,
            })?
        } else if let Some(edits) = fuzzy {
            self.leaf(&|f| Query::Fuzzy {
                field: f.to_string(),
                value: value.clone(),
                fuzziness: Fuzziness::Edits(edits.min(2) as u8),
                prefix_length: o.fuzzy_prefix_length,
                max_expansions: o.fuzzy_max_expansions,
                transpositions: o.fuzzy_transpositions,
                boost: None,
            })?
        } else {
            self.leaf(&|f| Query::Match {
                field: f.to_string(),
                query: value.clone(),
                operator: o.default_operator,
                minimum_should_match: None,
                fuzziness: None,
                prefix_length: 0,
                max_expansions: 50,
                lenient: o.lenient,
                zero_terms_query: ZeroTermsQuery::None,
                boost: None,
            })?
        };
        Ok(Some(q))
    }

    fn count(&mut self, n: usize) -> Result<(), QueryError> {
        self.leaves += n;
        if self.leaves > self.limits.max_clause_count {
            return Err(self.limits.too_many_nested_clauses_error());
        }
        Ok(())
    }

    fn leaf(&mut self, make: &dyn Fn(&str) -> Query) -> Result<Query, QueryError> {
        match self.opts.fields.as_slice() {
            [] => {
                self.count(1)?;
                Ok(make(ALL_FIELDS))
            }
            [(f, b)] => {
                self.count(1)?;
                Ok(boosted(make(f), *b))
            }
            many => {
                self.count(many.len())?;
                Ok(Query::Bool {
                    must: Vec::new(),
                    should: many.iter().map(|(f, b)| boosted(make(f), *b)).collect(),
                    must_not: Vec::new(),
                    filter: Vec::new(),
                    minimum_should_match: None,
                    boost: None,
                })
            }
        }
    }
}

fn boosted(q: Query, b: f32) -> Query {
    if (b - 1.0).abs() > f32::EPSILON {
        q.with_boost(b)
    } else {
        q
    }
}

fn push_into(prev: Query, op: Op, branch: Query) -> Query {
    match (prev, op) {
        (
            Query::Bool {
                mut must,
                should,
                must_not,
                filter,
                minimum_should_match,
                boost,
            },
            Op::Must,
        ) => {
            must.push(branch);
            Query::Bool {
                must,
                should,
                must_not,
                filter,
                minimum_should_match,
                boost,
            }
        }
        (
            Query::Bool {
                must,
                mut should,
                must_not,
                filter,
                minimum_should_match,
                boost,
            },
            Op::Should,
        ) => {
            should.push(branch);
            Query::Bool {
                must,
                should,
                must_not,
                filter,
                minimum_should_match,
                boost,
            }
        }
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Query {
        parse(s, &SimpleQueryStringOptions::default(), &Limits::default()).unwrap()
    }

    fn m(q: &str) -> Query {
        Query::match_text("*", q)
    }

    fn b(must: Vec<Query>, should: Vec<Query>, must_not: Vec<Query>) -> Query {
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
    fn operators() {
        assert_eq!(p("foo"), m("foo"));
        assert_eq!(p("foo bar"), b(vec![], vec![m("foo"), m("bar")], vec![]));
        assert_eq!(p("foo + bar"), b(vec![m("foo"), m("bar")], vec![], vec![]));
        assert_eq!(p("foo | bar"), b(vec![], vec![m("foo"), m("bar")], vec![]));
        assert_eq!(
            p("foo -bar"),
            b(
                vec![],
                vec![m("foo"), b(vec![], vec![], vec![m("bar")])],
                vec![]
            )
        );
        assert_eq!(
            p("a | b + c"),
            b(
                vec![b(vec![], vec![m("a"), m("b")], vec![]), m("c")],
                vec![],
                vec![]
            )
        );
        assert_eq!(
            p("(a + b) | c"),
            b(
                vec![],
                vec![b(vec![m("a"), m("b")], vec![], vec![]), m("c")],
                vec![]
            )
        );
    }

    #[test]
    fn phrases_prefix_fuzzy() {
        assert_eq!(
            p("\"hello world\"~2"),
            Query::MatchPhrase {
                field: "*".into(),
                query: "hello world".into(),
                slop: 2,
                zero_terms_query: ZeroTermsQuery::None,
                boost: None
            }
        );
        assert_eq!(
            p("web*"),
            Query::Prefix {
                field: "*".into(),
                value: "web".into(),
                case_insensitive: false,
                boost: None
            }
        );
        match p("quikc~1") {
            Query::Fuzzy { fuzziness, .. } => assert_eq!(fuzziness, Fuzziness::Edits(1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(p("a\\+b"), m("a+b"));
    }

    #[test]
    fn never_fails_on_syntax() {
        for s in [
            "(", ")", "\"", "((a", "a))", "-", "+|", "~", "\\", "\"a", "*",
        ] {
            parse(s, &SimpleQueryStringOptions::default(), &Limits::default()).unwrap();
        }
        assert_eq!(p(""), Query::MatchNone);
    }

    #[test]
    fn flags_disable_operators() {
        let opts = SimpleQueryStringOptions {
            flags: flags::NONE,
            ..Default::default()
        };
        let q = parse("a+b -c", &opts, &Limits::default()).unwrap();
        assert_eq!(q, m("a+b -c"));
        assert_eq!(parse_flags("OR|AND").unwrap(), flags::OR | flags::AND);
        assert!(parse_flags("BOGUS").is_err());
    }

    #[test]
    fn fields_and_boosts() {
        let opts = SimpleQueryStringOptions {
            fields: vec![("title".into(), 3.0), ("body".into(), 1.0)],
            ..Default::default()
        };
        let q = parse("x", &opts, &Limits::default()).unwrap();
        assert_eq!(
            q,
            b(
                vec![],
                vec![
                    Query::match_text("title", "x").with_boost(3.0),
                    Query::match_text("body", "x")
                ],
                vec![]
            )
        );
    }

    #[test]
    fn deep_and_wide_inputs_are_bounded() {
        let e = parse(
            &"(".repeat(100_000),
            &SimpleQueryStringOptions::default(),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(e.reason.contains("nested too deeply"));
        let e = parse(
            &"a ".repeat(100_000),
            &SimpleQueryStringOptions::default(),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::TooManyNestedClauses);
    }
}
