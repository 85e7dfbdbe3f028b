//! Facts about a query that a search layer can use before running it: the fields it
//! names, and the time window every match must fall in (for partition pruning).

use std::ops::Bound;

use crate::ast::Query;
use crate::datemath;
use crate::error::QueryError;

/// A (lower, upper) window in epoch milliseconds.
pub type TimeWindow = (Bound<i64>, Bound<i64>);

/// Every field name or pattern the query mentions, in first-seen order, without duplicates.
pub fn referenced_fields(query: &Query) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack = vec![query];
    while let Some(q) = stack.pop() {
        let names: Vec<&str> = match q {
            Query::Term { field, .. }
            | Query::Terms { field, .. }
            | Query::Range { field, .. }
            | Query::Exists { field, .. }
            | Query::Prefix { field, .. }
            | Query::Wildcard { field, .. }
            | Query::Regexp { field, .. }
            | Query::Fuzzy { field, .. }
            | Query::Match { field, .. }
            | Query::MatchPhrase { field, .. }
            | Query::MatchPhrasePrefix { field, .. }
            | Query::MatchBoolPrefix { field, .. } => vec![field.as_str()],
            Query::MultiMatch { fields, .. } if fields.is_empty() => vec![crate::ALL_FIELDS],
            Query::MultiMatch { fields, .. } => fields.iter().map(|(f, _)| f.as_str()).collect(),
            _ => Vec::new(),
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
        let mut children = q.children();
        children.reverse();
        stack.extend(children);
    }
    out
}

/// The window (epoch millis) that every document matching `query` must have `field` in,
/// from the `range` clauses on exactly `field` that the query requires (top level, and
/// `must`/`filter` of required bools, `constant_score`). `None` when nothing bounds it.
/// Ranges are resolved as dates with ES's rounding rules.
pub fn time_range(
    query: &Query,
    field: &str,
    now_millis: i64,
) -> Result<Option<TimeWindow>, QueryError> {
    let mut lower: Bound<i64> = Bound::Unbounded;
    let mut upper: Bound<i64> = Bound::Unbounded;
    let mut found = false;
    let mut stack = vec![query];
    while let Some(q) = stack.pop() {
        match q {
            Query::Range {
                field: f,
                gt,
                gte,
                lt,
                lte,
                format,
                time_zone,
                ..
            } if f == field => {
                let (lo, hi) = datemath::resolve_range(
                    gt.as_ref(),
                    gte.as_ref(),
                    lt.as_ref(),
                    lte.as_ref(),
                    format.as_deref(),
                    time_zone.as_deref(),
                    now_millis,
                )?;
                lower = tighter_lower(lower, lo);
                upper = tighter_upper(upper, hi);
                found = true;
            }
            Query::Bool { must, filter, .. } => {
                stack.extend(must.iter());
                stack.extend(filter.iter());
            }
            Query::ConstantScore { filter, .. } => stack.push(filter),
            Query::Boosting { positive, .. } => stack.push(positive),
            _ => {}
        }
    }
    Ok(found.then_some((lower, upper)))
}

fn tighter_lower(a: Bound<i64>, b: Bound<i64>) -> Bound<i64> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.max(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.max(y)),
        (Bound::Included(i), Bound::Excluded(e)) | (Bound::Excluded(e), Bound::Included(i)) => {
            if e >= i {
                Bound::Excluded(e)
            } else {
                Bound::Included(i)
            }
        }
    }
}

fn tighter_upper(a: Bound<i64>, b: Bound<i64>) -> Bound<i64> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.min(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.min(y)),
        (Bound::Included(i), Bound::Excluded(e)) | (Bound::Excluded(e), Bound::Included(i)) => {
            if e <= i {
                Bound::Excluded(e)
            } else {
                Bound::Included(i)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{dsl, kql, Limits};
    use serde_json::json;

    #[test]
    fn fields() {
        let q = dsl::parse(
            &json!({"bool": {"must": [{"term": {"a": 1}}, {"multi_match": {"query": "x", "fields": ["b", "a"]}}], "filter": {"exists": {"field": "c"}}}}),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(referenced_fields(&q), vec!["a", "b", "c"]);
    }

    #[test]
    fn time_window_from_required_ranges() {
        let now = 1_700_000_000_000;
        let q = dsl::parse(
            &json!({"bool": {"filter": [
                {"range": {"@timestamp": {"gte": "now-1h"}}},
                {"bool": {"must": {"range": {"@timestamp": {"lt": "now"}}}}},
                {"range": {"@timestamp": {"gte": "now-2h"}}}
            ], "should": [{"range": {"@timestamp": {"gte": "now-1m"}}}]}}),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            time_range(&q, "@timestamp", now).unwrap(),
            Some((Bound::Included(now - 3_600_000), Bound::Excluded(now)))
        );
        let q = kql::parse(
            "a:1 or @timestamp > now",
            &kql::KqlOptions::default(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(time_range(&q, "@timestamp", now).unwrap(), None);
        let q = kql::parse(
            "a:1 and @timestamp > now",
            &kql::KqlOptions::default(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            time_range(&q, "@timestamp", now).unwrap(),
            Some((Bound::Excluded(now), Bound::Unbounded))
        );
    }
}
