//! Per-segment `_id` filters: the cheap "certainly not here" in front of the term
//! dictionary.
//!
//! Every `create` (and explicit-id `index`) must prove its id is nowhere in the index,
//! and almost always it is not: the agent and `cairn import` send deterministic ids so
//! a replay cannot duplicate. Probing each segment's `_id` term dictionary for each
//! document cost ~8% of the server's CPU on an agent load (tantivy_fst `Fst::get`, perf
//! `cpu-clock`), and more as segments accumulate. Segments are immutable, so each gets
//! a binary fuse filter (`xorf`, ~9 bits per id, ~0.4% false positives) built from its
//! `_id` terms the first time it is probed; a negative answer skips the dictionary, a
//! positive one (a real hit or a false positive) goes on to the exact probe. Deleted
//! documents stay in the filter, which is only ever a superset. The list for the
//! current searcher generation is kept, so a bulk request takes one lock per document
//! and partition; filters of segments that merges retired are dropped when the cache
//! outgrows the live segment count.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::index::SegmentId;
use tantivy::schema::Field;
use tantivy::{Searcher, SegmentReader};
use xorf::{BinaryFuse8, Filter};

/// What is known of one segment's ids.
pub(crate) enum SegmentIds {
    /// The segment has no ids at all.
    Empty,
    /// Ids whose hash is not in the filter are not in the segment.
    Filter(BinaryFuse8),
    /// No filter could be built (its construction failed): always probe.
    Unknown,
}

impl SegmentIds {
    /// Whether the segment may hold an id with this key (false: it certainly does not).
    pub(crate) fn may_hold(&self, key: u64) -> bool {
        match self {
            SegmentIds::Empty => false,
            SegmentIds::Filter(f) => f.contains(&key),
            SegmentIds::Unknown => true,
        }
    }
}

/// The filters of one searcher's segments, in its segment order.
pub(crate) type SearcherIds = Arc<Vec<Arc<SegmentIds>>>;

/// The filters of one partition's segments.
#[derive(Default)]
pub(crate) struct IdFilters {
    segments: Mutex<HashMap<SegmentId, Arc<SegmentIds>>>,
    /// The list for the searcher generation asked for last: a bulk request asks for
    /// every document, and the generation changes once per refresh.
    current: Mutex<Option<(u64, SearcherIds)>>,
}

/// The key an id is filed under (std's SipHash with fixed keys: stable for the life of
/// the process, which is as long as a filter lives).
pub(crate) fn id_key(id: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(id);
    h.finish()
}

impl IdFilters {
    /// The filters of `searcher`'s segments (in `segment_readers()` order), building
    /// those of segments not seen before and forgetting those of retired segments.
    pub(crate) fn for_searcher(&self, searcher: &Searcher, field: Field) -> SearcherIds {
        let generation = searcher.generation().generation_id();
        if let Some((g, ids)) = &*self.current.lock() {
            if *g == generation {
                return ids.clone();
            }
        }
        let readers = searcher.segment_readers();
        let mut list = Vec::with_capacity(readers.len());
        for seg in readers {
            let known = self.segments.lock().get(&seg.segment_id()).cloned();
            list.push(match known {
                Some(ids) => ids,
                None => {
                    // Built outside the lock; two threads may build the same filter,
                    // and the second insert is harmless.
                    let ids = Arc::new(build(seg, field));
                    self.segments.lock().insert(seg.segment_id(), ids.clone());
                    ids
                }
            });
        }
        // Merges retire segments continuously during ingest.
        {
            let mut map = self.segments.lock();
            if map.len() > readers.len() * 2 + 8 {
                let keep: HashSet<SegmentId> =
                    readers.iter().map(SegmentReader::segment_id).collect();
                map.retain(|id, _| keep.contains(id));
            }
        }
        let list = Arc::new(list);
        *self.current.lock() = Some((generation, list.clone()));
        list
    }

    /// Filters held (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.segments.lock().len()
    }
}

/// The filter of one segment, from its `_id` term dictionary.
fn build(seg: &SegmentReader, field: Field) -> SegmentIds {
    let Ok(inverted) = seg.inverted_index(field) else {
        return SegmentIds::Unknown;
    };
    let terms = inverted.terms();
    let mut keys = Vec::with_capacity(terms.num_terms());
    let Ok(mut stream) = terms.stream() else {
        return SegmentIds::Unknown;
    };
    while stream.advance() {
        keys.push(id_key(stream.key()));
    }
    if keys.is_empty() {
        return SegmentIds::Empty;
    }
    // Distinct terms, but two may share a 64-bit hash; the filter needs distinct keys.
    keys.sort_unstable();
    keys.dedup();
    match BinaryFuse8::try_from(&keys) {
        Ok(f) => SegmentIds::Filter(f),
        Err(e) => {
            tracing::debug!(segment = %seg.segment_id(), error = e, "no _id filter for segment");
            SegmentIds::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{Schema, STRING};
    use tantivy::{doc, Index};

    #[test]
    fn filters_rule_out_absent_ids_and_never_a_present_one() {
        let mut schema = Schema::builder();
        let id = schema.add_text_field("_id", STRING);
        let index = Index::create_in_ram(schema.build());
        let mut w = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for i in 0..5_000 {
            w.add_document(doc!(id => format!("doc-{i}"))).unwrap();
        }
        w.commit().unwrap();
        // A second segment, then one doc deleted: a deleted id may still pass.
        for i in 5_000..6_000 {
            w.add_document(doc!(id => format!("doc-{i}"))).unwrap();
        }
        w.commit().unwrap();
        let reader = index.reader().unwrap();
        let searcher = reader.searcher();
        let filters = IdFilters::default();
        let list = filters.for_searcher(&searcher, id);
        let holds = |name: &str| {
            let key = id_key(name.as_bytes());
            list.iter().any(|s| s.may_hold(key))
        };
        for i in 0..6_000 {
            assert!(holds(&format!("doc-{i}")), "doc-{i}");
        }
        let false_positives = (0..10_000)
            .filter(|i| holds(&format!("absent-{i}")))
            .count();
        // ~0.4% per segment, two segments.
        assert!(false_positives < 200, "{false_positives} false positives");
        assert_eq!(filters.len(), 2);
        let again = filters.for_searcher(&searcher, id);
        assert!(
            Arc::ptr_eq(&list, &again),
            "one list per searcher generation"
        );
    }
}
