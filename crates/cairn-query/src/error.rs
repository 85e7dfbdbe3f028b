//! Errors in the shape Elasticsearch 8 reports them (`type`, `reason`, optional position).

use serde::Serialize;

/// The Elasticsearch exception type an error is reported as (the `type` of an ES `error` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// `parsing_exception`: malformed query DSL (unknown query, unknown key, wrong token).
    ParsingException,
    /// `x_content_parse_exception`: a value of the wrong type inside a known key.
    XContentParseException,
    /// `illegal_argument_exception`: a well-formed but invalid value (limits, bad enum value).
    IllegalArgumentException,
    /// `query_shard_exception`: ES wraps query_string syntax errors in this.
    QueryShardException,
    /// `parse_exception`: the cause of a query_string syntax error; also date math errors.
    ParseException,
    /// `too_many_nested_clauses`: the total number of leaf clauses exceeds `max_clause_count`.
    TooManyNestedClauses,
    /// `too_many_clauses`: one boolean query has more than `max_clause_count` clauses.
    TooManyClauses,
    /// `KQLSyntaxError`: what Kibana reports for KQL syntax errors.
    KqlSyntaxError,
    /// `query_validation_exception`: inconsistent query options.
    QueryValidationException,
}

impl ErrorKind {
    /// The ES `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ParsingException => "parsing_exception",
            ErrorKind::XContentParseException => "x_content_parse_exception",
            ErrorKind::IllegalArgumentException => "illegal_argument_exception",
            ErrorKind::QueryShardException => "query_shard_exception",
            ErrorKind::ParseException => "parse_exception",
            ErrorKind::TooManyNestedClauses => "too_many_nested_clauses",
            ErrorKind::TooManyClauses => "too_many_clauses",
            ErrorKind::KqlSyntaxError => "KQLSyntaxError",
            ErrorKind::QueryValidationException => "query_validation_exception",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A query error: ES `type` + `reason`, plus where it happened when known.
///
/// `line`/`col` are ES-style 1-based positions (only known for string syntaxes: query
/// strings are one line, so `line` is 1 and `col` is the 1-based character column).
/// `offset` is the 0-based character offset into the query string (KQL / Lucene), for UIs.
/// `caused_by` mirrors ES's nested cause (e.g. query_string errors are a
/// `query_shard_exception` caused by a `parse_exception`).
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("[{kind}] {reason}")]
pub struct QueryError {
    /// ES exception type.
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    /// ES `reason` text.
    pub reason: String,
    /// 1-based line (ES `line`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column (ES `col`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub col: Option<u32>,
    /// 0-based character offset in a query string (not an ES field; for UIs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// ES `caused_by`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<Box<QueryError>>,
}

impl QueryError {
    /// A new error without position.
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        QueryError {
            kind,
            reason: reason.into(),
            line: None,
            col: None,
            offset: None,
            caused_by: None,
        }
    }

    /// `parsing_exception`.
    pub fn parsing(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::ParsingException, reason)
    }

    /// `x_content_parse_exception`.
    pub fn x_content(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::XContentParseException, reason)
    }

    /// `illegal_argument_exception`.
    pub fn illegal_argument(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::IllegalArgumentException, reason)
    }

    /// `parse_exception`.
    pub fn parse(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::ParseException, reason)
    }

    /// Attach a 0-based character offset in a one-line query string (sets `line`=1, `col`=offset+1).
    pub fn at_offset(mut self, offset: usize) -> Self {
        self.offset = Some(offset);
        self.line = Some(1);
        self.col = Some(u32::try_from(offset.saturating_add(1)).unwrap_or(u32::MAX));
        self
    }

    /// Attach a cause.
    pub fn caused_by(mut self, cause: QueryError) -> Self {
        self.caused_by = Some(Box::new(cause));
        self
    }

    /// The ES `type` string.
    pub fn type_name(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The HTTP status ES answers with for this error (always 400 for query errors).
    pub fn status(&self) -> u16 {
        400
    }

    /// The innermost cause (ES `root_cause` is built from it).
    pub fn root_cause(&self) -> &QueryError {
        let mut e = self;
        while let Some(c) = &e.caused_by {
            e = c;
        }
        e
    }
}
