//! HNSW (hierarchical navigable small world graphs, Malkov & Yashunin 2018), written here.
//!
//! Every item is a node on layer 0 and, with probability decaying geometrically, on higher layers.
//! A search enters at the top, walks greedily down the sparse layers, then runs a beam search of
//! width `ef` on layer 0. Building inserts items one by one with the same search (width
//! `ef_construction`) and links each to `M` neighbours chosen by the paper's diversity heuristic.
//! Deterministic for a seed: levels come from a ChaCha stream, ties break by item id.

use super::{dot, l2, Vectors};
use crate::core::math::ln;
use crate::core::progress::Progress;
use crate::core::rng::{self, Stream};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Distance −x·q: the graph navigates inner products directly (not a metric).
    InnerProduct,
    /// Squared L2 distance, for the augmented vectors.
    L2,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub m: usize,
    pub ef_construction: usize,
    pub seed: u64,
}

pub struct Hnsw {
    pub space: Space,
    pub vectors: Vectors,
    m: usize,
    m0: usize,
    /// Slots per node on layer 0: m0 plus a few spare ones for the connectivity repair.
    stride0: usize,
    ef_construction: usize,
    /// Layer-0 links: `stride0` slots per node, `count0` used.
    links0: Vec<u32>,
    count0: Vec<u16>,
    /// Links on layers ≥ 1, for the few nodes that have them: upper[node][layer − 1].
    upper: Vec<Vec<Vec<u32>>>,
    levels: Vec<u8>,
    entry: u32,
    max_level: u8,
    visited: Vec<u32>,
    stamp: u32,
    /// Buffers reused by every search (no allocation per query).
    candidates: BinaryHeap<std::cmp::Reverse<Near>>,
    results: BinaryHeap<Near>,
    scratch: Vec<u32>,
    /// Distance computations since the counter was last read.
    pub distance_count: u64,
}

/// Ask the cache for a row before it is read: a hint on x86-64 (one per 64-byte line), nothing
/// elsewhere. It changes no result.
#[inline(always)]
fn prefetch(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = row.as_ptr() as *const i8;
        for line in (0..std::mem::size_of_val(row)).step_by(64) {
            // SAFETY: the address lies inside `row`; a prefetch never faults nor writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Extra layer-0 slots per node, used only by the reachability repair.
const SPARE_LINKS: usize = 4;

/// (distance, id), ordered by distance then id: total and deterministic.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Near(f32, u32);
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl Hnsw {
    /// Build over `vectors` (already augmented for L2-on-augmented search).
    pub fn build(vectors: Vectors, space: Space, config: Config, progress: &mut dyn Progress) -> Hnsw {
        let n = vectors.len();
        let m = config.m.max(2);
        let mut index = Hnsw {
            space,
            m,
            m0: 2 * m,
            stride0: 2 * m + SPARE_LINKS,
            ef_construction: config.ef_construction.max(m),
            links0: vec![0; n * (2 * m + SPARE_LINKS)],
            count0: vec![0; n],
            upper: vec![Vec::new(); n],
            levels: vec![0; n],
            entry: 0,
            max_level: 0,
            visited: vec![0; n],
            stamp: 0,
            candidates: BinaryHeap::new(),
            results: BinaryHeap::new(),
            scratch: Vec::new(),
            distance_count: 0,
            vectors,
        };
        let mut rng = rng::seeded(config.seed, Stream::Model);
        let level_scale = 1.0 / ln(m as f64);
        for i in 0..n {
            if i % 2048 == 0 {
                progress.report(i as f64 / n as f64, "building the HNSW graph");
            }
            let level = ((-ln(1.0 - rng::uniform(&mut rng)) * level_scale) as u32).min(16) as u8;
            index.insert(i as u32, level);
        }
        progress.report(1.0, "building the HNSW graph");
        index.repair_reachability();
        index.distance_count = 0;
        index
    }

    /// Pruning can leave a few nodes with no way in from the entry point: they could never be
    /// found. Link each such node from its nearest reachable out-neighbour (in a spare slot), so
    /// that a wide enough search reaches every item.
    fn repair_reachability(&mut self) {
        let n = self.len();
        if n == 0 {
            return;
        }
        for _ in 0..8 {
            let mut reached = vec![false; n];
            let mut stack = vec![self.entry];
            reached[self.entry as usize] = true;
            while let Some(v) = stack.pop() {
                for &w in self.neighbours(v, 0) {
                    if !reached[w as usize] {
                        reached[w as usize] = true;
                        stack.push(w);
                    }
                }
            }
            let lost: Vec<u32> = (0..n as u32).filter(|&v| !reached[v as usize]).collect();
            if lost.is_empty() {
                return;
            }
            for v in lost {
                // The best reachable node with a free slot: among v's own out-links first, else
                // among what a search for v finds (everything a search finds is reachable).
                let stride = self.stride0;
                let mut from =
                    self.neighbours(v, 0).iter().copied().find(|&w| reached[w as usize] && (self.count0[w as usize] as usize) < stride);
                if from.is_none() {
                    let query = self.vectors.row(v as usize).to_vec();
                    let entry = [Near(self.distance_to(&query, self.entry), self.entry)];
                    let found = self.search_layer(&query, &entry, 64, 0);
                    from =
                        found.iter().map(|n| n.1).find(|&w| w != v && reached[w as usize] && (self.count0[w as usize] as usize) < stride);
                }
                if let Some(w) = from {
                    let at = w as usize * self.stride0 + self.count0[w as usize] as usize;
                    self.links0[at] = v;
                    self.count0[w as usize] += 1;
                }
            }
        }
    }

    #[inline]
    fn distance_to(&mut self, query: &[f32], node: u32) -> f32 {
        self.distance_count += 1;
        let v = self.vectors.row(node as usize);
        match self.space {
            Space::InnerProduct => -dot(v, query),
            Space::L2 => l2(v, query),
        }
    }

    fn distance_between(&mut self, a: u32, b: u32) -> f32 {
        self.distance_count += 1;
        let (x, y) = (self.vectors.row(a as usize), self.vectors.row(b as usize));
        match self.space {
            Space::InnerProduct => -dot(x, y),
            Space::L2 => l2(x, y),
        }
    }

    fn neighbours(&self, node: u32, layer: u8) -> &[u32] {
        if layer == 0 {
            let start = node as usize * self.stride0;
            &self.links0[start..start + self.count0[node as usize] as usize]
        } else {
            &self.upper[node as usize][layer as usize - 1]
        }
    }

    fn set_neighbours(&mut self, node: u32, layer: u8, list: &[u32]) {
        if layer == 0 {
            let start = node as usize * self.stride0;
            self.links0[start..start + list.len()].copy_from_slice(list);
            self.count0[node as usize] = list.len() as u16;
        } else {
            self.upper[node as usize][layer as usize - 1] = list.to_vec();
        }
    }

    fn next_stamp(&mut self) -> u32 {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.visited.iter_mut().for_each(|v| *v = 0);
            self.stamp = 1;
        }
        self.stamp
    }

    /// Beam search on one layer from `entries`; the `ef` nearest found, nearest first.
    fn search_layer(&mut self, query: &[f32], entries: &[Near], ef: usize, layer: u8) -> Vec<Near> {
        let stamp = self.next_stamp();
        let mut candidates = std::mem::take(&mut self.candidates);
        let mut results = std::mem::take(&mut self.results);
        let mut scratch = std::mem::take(&mut self.scratch);
        candidates.clear();
        results.clear();
        for e in entries {
            self.visited[e.1 as usize] = stamp;
            candidates.push(std::cmp::Reverse(*e));
            results.push(*e);
        }
        while results.len() > ef {
            results.pop();
        }
        while let Some(std::cmp::Reverse(current)) = candidates.pop() {
            let worst = results.peek().map_or(f32::INFINITY, |w| w.0);
            if current.0 > worst && results.len() >= ef {
                break;
            }
            // The neighbours not seen yet, marked as seen; then their rows are asked of memory
            // all at once, before the first is read: a search is bound by the latency of these
            // reads (72 % of the distance time was the first load of a row), and several misses
            // in flight overlap. The distances that follow are computed in the same order as
            // without the hint, so results are unchanged.
            scratch.clear();
            let links = if layer == 0 {
                let start = current.1 as usize * self.stride0;
                &self.links0[start..start + self.count0[current.1 as usize] as usize]
            } else {
                &self.upper[current.1 as usize][layer as usize - 1]
            };
            for &next in links {
                if self.visited[next as usize] != stamp {
                    self.visited[next as usize] = stamp;
                    scratch.push(next);
                }
            }
            for &next in &scratch {
                prefetch(self.vectors.row(next as usize));
            }
            for &next in &scratch {
                let d = self.distance_to(query, next);
                let worst = results.peek().map_or(f32::INFINITY, |w| w.0);
                if results.len() < ef || d < worst {
                    candidates.push(std::cmp::Reverse(Near(d, next)));
                    results.push(Near(d, next));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        let mut out: Vec<Near> = results.drain().collect();
        out.sort();
        self.candidates = candidates;
        self.results = results;
        self.scratch = scratch;
        out
    }

    /// The paper's heuristic: keep a candidate only if it is nearer to the base than to every
    /// neighbour kept so far (spreads the links in different directions).
    fn select(&mut self, candidates: &[Near], max: usize) -> Vec<u32> {
        let mut kept: Vec<Near> = Vec::with_capacity(max);
        for c in candidates {
            if kept.len() >= max {
                break;
            }
            let mut good = true;
            // Indexing, not iterating: distance_between needs `self` mutably (it counts).
            #[allow(clippy::needless_range_loop)]
            for i in 0..kept.len() {
                let k = kept[i].1;
                if self.distance_between(c.1, k) < c.0 {
                    good = false;
                    break;
                }
            }
            if good {
                kept.push(*c);
            }
        }
        kept.into_iter().map(|k| k.1).collect()
    }

    fn insert(&mut self, node: u32, level: u8) {
        self.levels[node as usize] = level;
        self.upper[node as usize] = vec![Vec::new(); level as usize];
        if node == 0 {
            self.entry = 0;
            self.max_level = level;
            return;
        }
        let query = self.vectors.row(node as usize).to_vec();
        let mut entry = vec![Near(self.distance_to(&query, self.entry), self.entry)];
        let mut layer = self.max_level;
        while layer > level {
            entry = self.search_layer(&query, &entry, 1, layer);
            layer -= 1;
        }
        let top = level.min(self.max_level);
        for layer in (0..=top).rev() {
            let found = self.search_layer(&query, &entry, self.ef_construction, layer);
            let max = if layer == 0 { self.m0 } else { self.m };
            let chosen = self.select(&found, self.m);
            self.set_neighbours(node, layer, &chosen);
            for &other in &chosen {
                let mut list = self.neighbours(other, layer).to_vec();
                if list.len() < max {
                    list.push(node);
                    self.set_neighbours(other, layer, &list);
                } else {
                    // Over capacity: keep the `max` nearest of the old links and the new one (the
                    // diversity heuristic here would cost O(M²) distances per link).
                    list.push(node);
                    let base = self.vectors.row(other as usize).to_vec();
                    let mut scored: Vec<Near> = list.iter().map(|&x| Near(self.distance_to(&base, x), x)).collect();
                    scored.sort();
                    let pruned = self.select(&scored, max);
                    self.set_neighbours(other, layer, &pruned);
                }
            }
            entry = found;
        }
        if level > self.max_level {
            self.max_level = level;
            self.entry = node;
        }
    }

    /// The `k` best items for `query` (already transformed for the index's space), searching with
    /// beam width `ef` ≥ k. Returns (distance, id) nearest first.
    pub fn search(&mut self, query: &[f32], k: usize, ef: usize) -> Vec<(f32, u32)> {
        if self.vectors.is_empty() {
            return Vec::new();
        }
        let mut entry = vec![Near(self.distance_to(query, self.entry), self.entry)];
        let mut layer = self.max_level;
        while layer > 0 {
            entry = self.search_layer(query, &entry, 1, layer);
            layer -= 1;
        }
        let found = self.search_layer(query, &entry, ef.max(k), 0);
        found.into_iter().take(k).map(|n| (n.0, n.1)).collect()
    }

    /// Bytes held: vectors plus links.
    pub fn memory_bytes(&self) -> usize {
        let upper: usize = self.upper.iter().map(|l| l.iter().map(|v| v.len() * 4 + 24).sum::<usize>() + 24).sum();
        self.vectors.bytes() + self.links0.len() * 4 + self.count0.len() * 2 + upper + self.levels.len() + self.visited.len() * 4
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }
}

/// An index for MIPS of either kind, with the query transform it needs.
pub struct MipsIndex {
    pub graph: Hnsw,
    pub augmented: bool,
}

impl MipsIndex {
    pub fn build(items: &Vectors, augmented: bool, config: Config, progress: &mut dyn Progress) -> MipsIndex {
        let (vectors, space) = if augmented { (items.augmented(), Space::L2) } else { (items.clone(), Space::InnerProduct) };
        MipsIndex { graph: Hnsw::build(vectors, space, config, progress), augmented }
    }

    /// Item ids of the (approximate) top-k by inner product.
    pub fn search(&mut self, query: &[f32], k: usize, ef: usize) -> Vec<u32> {
        if self.augmented {
            let mut q = query.to_vec();
            q.push(0.0);
            self.graph.search(&q, k, ef).into_iter().map(|(_, i)| i).collect()
        } else {
            self.graph.search(query, k, ef).into_iter().map(|(_, i)| i).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{data, exact, recall};
    use super::*;

    fn mean_recall(index: &mut MipsIndex, items: &Vectors, queries: &Vectors, k: usize, ef: usize) -> f64 {
        (0..queries.len()).map(|q| recall(&index.search(queries.row(q), k, ef), &exact::top_k_ids(items, queries.row(q), k))).sum::<f64>()
            / queries.len() as f64
    }

    #[test]
    fn recall_rises_with_ef_to_one() {
        for kind in [data::Kind::Clustered, data::Kind::Uniform] {
            let (items, queries) = data::generate(kind, 3000, 40, 16, 5);
            for augmented in [false, true] {
                let mut index = MipsIndex::build(&items, augmented, Config { m: 12, ef_construction: 80, seed: 1 }, &mut ());
                let low = mean_recall(&mut index, &items, &queries, 10, 10);
                let mid = mean_recall(&mut index, &items, &queries, 10, 64);
                let all = mean_recall(&mut index, &items, &queries, 10, 3000);
                assert!(low <= mid + 1e-9 && mid <= all + 1e-9, "{kind:?} aug={augmented}: {low} {mid} {all}");
                assert!(all >= 0.999, "{kind:?} aug={augmented}: exhaustive beam recall {all}");
                assert!(mid >= 0.8, "{kind:?} aug={augmented}: ef=64 recall {mid}");
            }
        }
    }

    #[test]
    fn build_is_deterministic_and_counts_distances() {
        let (items, queries) = data::generate(data::Kind::Clustered, 1000, 5, 8, 2);
        let config = Config { m: 8, ef_construction: 40, seed: 3 };
        let mut a = MipsIndex::build(&items, false, config, &mut ());
        let mut b = MipsIndex::build(&items, false, config, &mut ());
        assert_eq!(a.graph.links0, b.graph.links0);
        let ra = a.search(queries.row(0), 5, 32);
        assert_eq!(ra, b.search(queries.row(0), 5, 32));
        assert!(a.graph.distance_count > 0 && a.graph.distance_count < 1000, "{}", a.graph.distance_count);
        assert!(a.graph.memory_bytes() > items.bytes());
    }
}
