//! Bounds on the work a query may ask for.

use crate::error::{ErrorKind, QueryError};

/// Configurable query limits, with Elasticsearch 8's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `indices.query.bool.max_nested_depth` (ES default 30): how many query objects may be
    /// nested inside one another, the top-level query counting as 1.
    pub max_nested_depth: usize,
    /// Max leaf clauses in a query and max clauses in one bool (Lucene's
    /// `maxClauseCount`; ES 8 derives it from the heap, Cairn uses a fixed 4096).
    pub max_clause_count: usize,
    /// Default `max_determinized_states` for regexp queries (Lucene default 10000).
    pub max_determinized_states: u32,
    /// `index.max_regex_length` (ES default 1000).
    pub max_regex_length: usize,
    /// `index.max_terms_count` (ES default 65536): values in one `terms` query.
    pub max_terms_count: usize,
    /// Max parenthesis nesting in a Lucene / KQL / simple query string (Cairn's own bound:
    /// the parsers are recursive and must not overflow the stack).
    pub max_query_string_depth: usize,
    /// Max length in characters of a Lucene / KQL / simple query string (Cairn's own bound).
    pub max_query_string_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nested_depth: 30,
            max_clause_count: 4096,
            max_determinized_states: 10_000,
            max_regex_length: 1000,
            max_terms_count: 65_536,
            max_query_string_depth: 100,
            max_query_string_length: 1_000_000,
        }
    }
}

impl Limits {
    /// The error ES gives when a query nests too deeply.
    pub fn nested_depth_error(&self) -> QueryError {
        QueryError::illegal_argument(
            "The nested depth of the query exceeds the maximum nested depth for queries set in [indices.query.bool.max_nested_depth]",
        )
    }

    /// The error Lucene/ES give when a query has too many leaf clauses in total.
    pub fn too_many_nested_clauses_error(&self) -> QueryError {
        QueryError::new(
            ErrorKind::TooManyNestedClauses,
            format!(
                "Query contains too many nested clauses; maxClauseCount is set to {}",
                self.max_clause_count
            ),
        )
    }

    /// The error Lucene/ES give when one boolean query has too many clauses.
    pub fn too_many_clauses_error(&self) -> QueryError {
        QueryError::new(
            ErrorKind::TooManyClauses,
            format!("maxClauseCount is set to {}", self.max_clause_count),
        )
    }

    /// The error ES gives for a regex longer than `index.max_regex_length`.
    pub fn regex_length_error(&self, len: usize) -> QueryError {
        QueryError::illegal_argument(format!(
            "The length of regex [{len}] used in the Regexp Query request has exceeded the allowed maximum of [{}]. This maximum can be set by changing the [index.max_regex_length] index level setting.",
            self.max_regex_length
        ))
    }

    /// The error ES gives for a terms query with too many values.
    pub fn terms_count_error(&self, count: usize) -> QueryError {
        QueryError::illegal_argument(format!(
            "The number of terms [{count}] used in the Terms Query request has exceeded the allowed maximum of [{}]. This maximum can be set by changing the [index.max_terms_count] index level setting.",
            self.max_terms_count
        ))
    }

    /// Check a finished query tree against the clause limits (leaf count and per-bool count).
    /// Works iteratively, so it is safe on any tree.
    pub fn check_clauses(&self, query: &crate::Query) -> Result<(), QueryError> {
        let mut leaves = 0usize;
        let mut stack: Vec<&crate::Query> = vec![query];
        while let Some(q) = stack.pop() {
            let children = q.children();
            if children.len() > self.max_clause_count {
                return Err(self.too_many_clauses_error());
            }
            if !q.is_compound() {
                leaves += 1;
                if leaves > self.max_clause_count {
                    return Err(self.too_many_nested_clauses_error());
                }
            }
            stack.extend(children);
        }
        Ok(())
    }
}
