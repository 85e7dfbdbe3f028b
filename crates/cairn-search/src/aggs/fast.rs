//! The fast path for the aggregation every log UI sends on every refresh: a top-level
//! `date_histogram` on `@timestamp` with a uniform interval and nothing under it (the
//! Discover histogram, a dashboard's count-over-time panel).
//!
//! The general collector takes one document at a time through the aggregation tree
//! (per document: a column iterator, the rounder with its time-zone arithmetic, an
//! ordered-map lookup). Here matching documents come from the scorer in blocks, their
//! timestamps are read in one batched column call, and counts go into a dense array
//! indexed by bucket number; the ordered map is built once per segment. Same answer,
//! several times less work per document.

use std::collections::BTreeMap;

use cairn_core::EsError;
use cairn_query::datemath::TimeZone;
use tantivy::query::Weight;
use tantivy::{DocId, DocSet, TERMINATED};

use super::collect::{tantivy_err, Prep};
use super::dates::{CalendarUnit, Interval};
use super::parse::{AggNode, Kind};
use super::partial::{Bucket, Partial};
use super::{AggContext, AggTarget};

const BLOCK: usize = tantivy::COLLECT_BLOCK_BUFFER_LEN;
/// Most buckets a segment may span for the dense array (beyond: a map).
const DENSE_MAX: i64 = 1 << 20;

/// A histogram this path can answer: `key = floor((ms - shift) / interval) * interval + shift`.
pub(crate) struct FastHist {
    interval: i64,
    /// `offset - tz_offset`, in millis.
    shift: i64,
}

impl FastHist {
    pub(crate) fn new(nodes: &[AggNode], preps: &[Prep]) -> Option<FastHist> {
        let ([node], [prep]) = (nodes, preps) else {
            return None;
        };
        if !matches!(node.kind, Kind::DateHistogram(_)) || !node.subs.is_empty() {
            return None;
        }
        if !prep.is_plain_timestamp_histogram() {
            return None;
        }
        let r = prep.rounder()?;
        // Uniform intervals only: in a fixed-offset zone a minute, an hour and a day are
        // always the same length (not so for weeks, which start on Mondays, months...).
        let interval = match r.interval {
            Interval::Fixed(i) if i > 0 => i,
            Interval::Calendar(CalendarUnit::Minute) => 60_000,
            Interval::Calendar(CalendarUnit::Hour) => 3_600_000,
            Interval::Calendar(CalendarUnit::Day) => 86_400_000,
            _ => return None,
        };
        let tz_off = match r.tz {
            TimeZone::Fixed(o) => i64::from(o.local_minus_utc()) * 1000,
            TimeZone::Named(_) => return None,
        };
        Some(FastHist {
            interval,
            shift: r.offset - tz_off,
        })
    }

    fn bucket(&self, ms: i64) -> i64 {
        (ms - self.shift).div_euclid(self.interval)
    }

    /// Collects one target (partition) over all its segments.
    pub(crate) fn collect(
        &self,
        t: &AggTarget<'_>,
        weight: &dyn Weight,
        ctx: &AggContext,
    ) -> Result<(Vec<Partial>, bool), EsError> {
        let mut map: BTreeMap<i64, Bucket> = BTreeMap::new();
        let mut truncated = false;
        let mut docs = [0 as DocId; BLOCK];
        let mut live = Vec::with_capacity(BLOCK);
        let mut vals = vec![None; BLOCK];
        for sr in t.searcher.segment_readers() {
            if truncated || ctx.expired() {
                truncated = true;
                break;
            }
            let Some(col) = sr
                .fast_fields()
                .column_opt::<tantivy::DateTime>("@ts")
                .map_err(tantivy_err)?
            else {
                continue;
            };
            let lo = self.bucket(col.min_value().into_timestamp_micros().div_euclid(1000));
            let hi = self.bucket(col.max_value().into_timestamp_micros().div_euclid(1000));
            let span = hi.saturating_sub(lo).saturating_add(1);
            let mut dense = if (1..=DENSE_MAX).contains(&span) {
                vec![0u64; span as usize]
            } else {
                Vec::new()
            };
            let mut sparse: BTreeMap<i64, u64> = BTreeMap::new();
            let alive = sr.alive_bitset();
            let mut scorer = weight.scorer(sr, 1.0).map_err(tantivy_err)?;
            if scorer.doc() == TERMINATED {
                continue;
            }
            let mut blocks: u32 = 0;
            loop {
                blocks = blocks.wrapping_add(1);
                if blocks.is_multiple_of(1024) && ctx.expired() {
                    truncated = true;
                    break;
                }
                let n = scorer.fill_buffer(&mut docs);
                if n == 0 {
                    break;
                }
                live.clear();
                match alive {
                    Some(a) => live.extend(docs[..n].iter().copied().filter(|&d| a.is_alive(d))),
                    None => live.extend_from_slice(&docs[..n]),
                }
                let out = &mut vals[..live.len()];
                out.fill(None);
                col.first_vals(&live, out);
                for v in out.iter().flatten() {
                    let b = self.bucket(v.into_timestamp_micros().div_euclid(1000));
                    match dense.get_mut((b - lo) as usize) {
                        Some(c) if b >= lo => *c += 1,
                        _ => *sparse.entry(b).or_default() += 1,
                    }
                }
                if n < BLOCK {
                    break;
                }
            }
            let counts = dense
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| (lo + i as i64, c))
                .chain(sparse);
            for (b, c) in counts {
                let key = b * self.interval + self.shift;
                match map.get_mut(&key) {
                    Some(x) => x.doc_count += c,
                    None => {
                        if map.len() >= ctx.max_buckets {
                            return Err(super::collect::too_many(ctx.max_buckets, map.len() + 1));
                        }
                        map.insert(
                            key,
                            Bucket {
                                doc_count: c,
                                subs: Vec::new(),
                            },
                        );
                    }
                }
            }
        }
        Ok((vec![Partial::Hist(map)], truncated))
    }
}
