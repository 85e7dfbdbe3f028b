//! `highlight`: marks the query's terms in text fields of `_source`.
//!
//! Terms come from the query's full-text leaves (match, match_phrase, query_string
//! terms, term/prefix/wildcard values); fields are matched by name pattern.
//! Fragments are cut around matches (`fragment_size`, `number_of_fragments`; 0 means
//! the whole field), with `pre_tags`/`post_tags` (default `<em>`/`</em>`).

use cairn_query::Query;
use serde_json::{Map, Value};

pub struct Highlighter {
    fields: Vec<String>,
    terms: Vec<String>,
    prefixes: Vec<String>,
    pre: String,
    post: String,
    fragment_size: usize,
    fragments: usize,
}

fn collect(q: &Query, terms: &mut Vec<String>, prefixes: &mut Vec<String>) {
    match q {
        Query::Match { query, .. }
        | Query::MatchPhrase { query, .. }
        | Query::MultiMatch { query, .. }
        | Query::MatchBoolPrefix { query, .. } => {
            terms.extend(cairn_search::compile::analyze(query));
        }
        Query::MatchPhrasePrefix { query, .. } => {
            let mut t = cairn_search::compile::analyze(query);
            if let Some(last) = t.pop() {
                prefixes.push(last);
            }
            terms.extend(t);
        }
        Query::Term { value, .. } => {
            if let Some(s) = value.as_str() {
                terms.extend(cairn_search::compile::analyze(s));
            }
        }
        Query::Terms { values, .. } => {
            for v in values.iter().filter_map(Value::as_str) {
                terms.extend(cairn_search::compile::analyze(v));
            }
        }
        Query::Prefix { value, .. } => prefixes.push(value.to_lowercase()),
        Query::Wildcard { pattern, .. } => {
            let head: String = pattern
                .chars()
                .take_while(|c| *c != '*' && *c != '?')
                .collect();
            if !head.is_empty() {
                prefixes.push(head.to_lowercase());
            }
        }
        Query::Fuzzy { value, .. } => terms.push(value.to_lowercase()),
        Query::Bool {
            must,
            should,
            filter,
            ..
        } => {
            for c in must.iter().chain(should).chain(filter) {
                collect(c, terms, prefixes);
            }
        }
        Query::ConstantScore { filter, .. } => collect(filter, terms, prefixes),
        Query::DisMax { queries, .. } => {
            for c in queries {
                collect(c, terms, prefixes);
            }
        }
        Query::Boosting { positive, .. } => collect(positive, terms, prefixes),
        _ => {}
    }
}

impl Highlighter {
    pub fn new(spec: &Value, query: &Query) -> Highlighter {
        let tag = |k: &str, d: &str| -> String {
            spec.get(k)
                .and_then(|v| v.as_array().and_then(|a| a.first()).or(Some(v)))
                .and_then(Value::as_str)
                .unwrap_or(d)
                .to_string()
        };
        let fields = match spec.get("fields") {
            Some(Value::Object(o)) => o.keys().cloned().collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|f| match f {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.keys().next().cloned(),
                    _ => None,
                })
                .collect(),
            _ => vec!["*".to_string()],
        };
        let mut terms = Vec::new();
        let mut prefixes = Vec::new();
        collect(query, &mut terms, &mut prefixes);
        Highlighter {
            fields,
            terms,
            prefixes,
            pre: tag("pre_tags", "<em>"),
            post: tag("post_tags", "</em>"),
            fragment_size: spec
                .get("fragment_size")
                .and_then(Value::as_u64)
                .unwrap_or(100) as usize,
            fragments: spec
                .get("number_of_fragments")
                .and_then(Value::as_u64)
                .unwrap_or(5) as usize,
        }
    }

    fn is_hit(&self, token: &str) -> bool {
        let t = token.to_lowercase();
        self.terms.contains(&t) || self.prefixes.iter().any(|p| t.starts_with(p.as_str()))
    }

    fn mark(&self, text: &str) -> Option<Vec<String>> {
        // Token boundaries as the analyzer sees them.
        let mut spans = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            if c.is_alphanumeric() {
                start.get_or_insert(i);
            } else if let Some(s) = start.take() {
                spans.push((s, i));
            }
        }
        if let Some(s) = start {
            spans.push((s, text.len()));
        }
        let hits: Vec<(usize, usize)> = spans
            .into_iter()
            .filter(|(s, e)| self.is_hit(&text[*s..*e]))
            .collect();
        if hits.is_empty() {
            return None;
        }
        let render = |from: usize, to: usize| -> String {
            let mut out = String::new();
            let mut pos = from;
            for (s, e) in hits.iter().filter(|(s, e)| *s >= from && *e <= to) {
                out.push_str(&text[pos..*s]);
                out.push_str(&self.pre);
                out.push_str(&text[*s..*e]);
                out.push_str(&self.post);
                pos = *e;
            }
            out.push_str(&text[pos..to]);
            out
        };
        if self.fragments == 0 || text.len() <= self.fragment_size {
            return Some(vec![render(0, text.len())]);
        }
        let mut frags = Vec::new();
        let mut covered_to = 0;
        for (s, _) in &hits {
            if *s < covered_to || frags.len() >= self.fragments {
                continue;
            }
            let mut from = s.saturating_sub(self.fragment_size / 4);
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            let mut to = (from + self.fragment_size).min(text.len());
            while !text.is_char_boundary(to) {
                to += 1;
            }
            frags.push(render(from, to));
            covered_to = to;
        }
        Some(frags)
    }

    pub fn highlight(&self, src: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        let mut leaves = Vec::new();
        fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
            match v {
                Value::Object(o) => {
                    for (k, c) in o {
                        let p = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&p, c, out);
                    }
                }
                Value::Array(a) => a.iter().for_each(|c| walk(prefix, c, out)),
                Value::String(s) => out.push((prefix.to_string(), s.clone())),
                _ => {}
            }
        }
        walk("", src, &mut leaves);
        for (path, text) in leaves {
            if !self
                .fields
                .iter()
                .any(|f| cairn_core::mapping::wildcard_match(f, &path))
            {
                continue;
            }
            if let Some(frags) = self.mark(&text) {
                let e = out.entry(path).or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(a) = e {
                    a.extend(frags.into_iter().map(Value::String));
                }
            }
        }
        out
    }
}
