//! Mergeable sketches: cardinality (exact set of hashes below `precision_threshold`,
//! HyperLogLog above) and percentiles (exact values for small sets, a merging
//! t-digest above).

use std::collections::HashSet;

/// 64-bit hash of bytes: FNV-1a followed by a murmur3-style finalizer.
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h)
}

pub(crate) fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

const HLL_P: u32 = 14;
const HLL_M: usize = 1 << HLL_P;

#[derive(Debug, Clone)]
pub(crate) struct Cardinality {
    threshold: usize,
    exact: Option<HashSet<u64>>,
    registers: Vec<u8>,
}

impl Cardinality {
    pub fn new(threshold: usize) -> Self {
        Cardinality {
            threshold,
            exact: Some(HashSet::new()),
            registers: Vec::new(),
        }
    }

    fn switch_to_hll(&mut self) {
        if let Some(set) = self.exact.take() {
            self.registers = vec![0u8; HLL_M];
            for h in set {
                self.hll_add(h);
            }
        }
    }

    fn hll_add(&mut self, h: u64) {
        let idx = (h >> (64 - HLL_P)) as usize;
        let rest = (h << HLL_P) | (1u64 << (HLL_P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(r) = self.registers.get_mut(idx) {
            if *r < rank {
                *r = rank;
            }
        }
    }

    pub fn add_hash(&mut self, h: u64) {
        match &mut self.exact {
            Some(set) => {
                set.insert(h);
                if set.len() > self.threshold {
                    self.switch_to_hll();
                }
            }
            None => self.hll_add(h),
        }
    }

    pub fn merge(&mut self, other: Cardinality) {
        match other.exact {
            Some(set) => {
                for h in set {
                    self.add_hash(h);
                }
            }
            None => {
                self.switch_to_hll();
                for (a, b) in self.registers.iter_mut().zip(other.registers) {
                    if *a < b {
                        *a = b;
                    }
                }
            }
        }
    }

    pub fn estimate(&self) -> u64 {
        if let Some(set) = &self.exact {
            return set.len() as u64;
        }
        let m = HLL_M as f64;
        let mut sum = 0.0;
        let mut zeros = 0usize;
        for &r in &self.registers {
            sum += 2f64.powi(-i32::from(r));
            if r == 0 {
                zeros += 1;
            }
        }
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let est = if raw <= 2.5 * m && zeros > 0 {
            // Linear counting is far more accurate in the small range.
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        est.round() as u64
    }
}

/// Values kept exactly up to this count; a t-digest beyond.
const EXACT_LIMIT: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct Digest {
    compression: f64,
    /// Unmerged values (all values while the set is small).
    buffer: Vec<f64>,
    /// (mean, weight), sorted by mean; empty while exact.
    centroids: Vec<(f64, f64)>,
    count: u64,
    min: f64,
    max: f64,
}

impl Digest {
    pub fn new(compression: f64) -> Self {
        Digest {
            compression,
            buffer: Vec::new(),
            centroids: Vec::new(),
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    pub fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.buffer.push(v);
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.count as usize > EXACT_LIMIT && self.buffer.len() >= EXACT_LIMIT {
            self.compress();
        }
    }

    fn is_exact(&self) -> bool {
        self.centroids.is_empty()
    }

    fn compress(&mut self) {
        let mut all: Vec<(f64, f64)> = std::mem::take(&mut self.centroids);
        all.extend(self.buffer.drain(..).map(|v| (v, 1.0)));
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = all.iter().map(|c| c.1).sum();
        let mut out: Vec<(f64, f64)> = Vec::with_capacity(self.compression as usize * 2);
        let mut cum = 0.0;
        for (mean, w) in all {
            if let Some(last) = out.last_mut() {
                let q = (cum - last.1 / 2.0 + (last.1 + w) / 2.0) / total;
                let limit = (4.0 * total * q * (1.0 - q) / self.compression).max(1.0);
                if last.1 + w <= limit {
                    let nw = last.1 + w;
                    last.0 += (mean - last.0) * w / nw;
                    last.1 = nw;
                    cum += w;
                    continue;
                }
            }
            out.push((mean, w));
            cum += w;
        }
        self.centroids = out;
    }

    pub fn merge(&mut self, mut other: Digest) {
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.buffer.append(&mut other.buffer);
        let other_centroids = !other.centroids.is_empty();
        if other_centroids {
            self.centroids.append(&mut other.centroids);
            self.centroids.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        if other_centroids || !self.is_exact() || self.count as usize > EXACT_LIMIT {
            self.compress();
        }
    }

    /// The value at quantile `q` in [0, 1]; `None` when empty.
    pub fn quantile(&mut self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        if self.is_exact() {
            self.buffer.sort_by(|a, b| a.total_cmp(b));
            let n = self.buffer.len();
            let pos = q * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            let (a, b) = (self.buffer[lo.min(n - 1)], self.buffer[hi.min(n - 1)]);
            return Some(a + (b - a) * (pos - lo as f64));
        }
        if !self.buffer.is_empty() {
            self.compress();
        }
        let total: f64 = self.centroids.iter().map(|c| c.1).sum();
        let target = q * total;
        let mut cum = 0.0;
        let mut prev: Option<(f64, f64)> = None; // (center position, mean)
        for &(mean, w) in &self.centroids {
            let center = cum + w / 2.0;
            if target < center {
                return Some(match prev {
                    None => self.min + (mean - self.min) * (target / center.max(1e-12)),
                    Some((pc, pm)) => pm + (mean - pm) * (target - pc) / (center - pc),
                });
            }
            prev = Some((center, mean));
            cum += w;
        }
        match prev {
            Some((pc, pm)) => Some(if total > pc {
                pm + (self.max - pm) * ((target - pc) / (total - pc)).min(1.0)
            } else {
                self.max
            }),
            None => Some(self.max),
        }
    }
}
