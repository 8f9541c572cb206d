//! Exact top-K MIPS: one pass over the catalogue, dot products four rows at a time, top-K kept in a
//! small sorted buffer; for a batch of queries, one pass for all of them ([`top_k_batch`]).

use super::{dot, dot4, dot_block, Vectors};

/// Calls `f(i, items[i]·query)` for every item in order: four rows at a time (independent
/// accumulation chains), the rest one by one. Bit-identical to `dot` per row.
#[inline]
pub fn for_each_score(items: &Vectors, query: &[f32], f: impl FnMut(usize, f32)) {
    score_range(items, query, 0, items.len(), f);
}

/// [`for_each_score`] over the items `start..end` only.
#[inline]
fn score_range(items: &Vectors, query: &[f32], start: usize, end: usize, mut f: impl FnMut(usize, f32)) {
    let fours = start + (end - start) / 4 * 4;
    let mut i = start;
    while i < fours {
        let scores = dot4([items.row(i), items.row(i + 1), items.row(i + 2), items.row(i + 3)], query);
        for (j, s) in scores.into_iter().enumerate() {
            f(i + j, s);
        }
        i += 4;
    }
    for i in fours..end {
        f(i, dot(items.row(i), query));
    }
}

/// The K best (score, item) pairs, best first. Ties: the smaller item id first.
pub fn top_k(items: &Vectors, query: &[f32], k: usize) -> Vec<(f32, u32)> {
    let mut best = Best::new(k);
    for_each_score(items, query, |i, s| best.offer(s, i as u32));
    best.list
}

/// The K best so far, best first, in a buffer of ≤ K + 1 slots (K is small; a heap would not beat
/// an insertion into a short sorted list). Offered in item order, ties keep the earlier item.
pub(super) struct Best<S> {
    pub(super) list: Vec<(S, u32)>,
    k: usize,
    threshold: S,
}

/// A score [`Best`] can rank: f32 inner products, or the int8 scan's integer sums.
pub(super) trait Score: Copy + PartialOrd {
    const LOWEST: Self;
}

impl Score for f32 {
    const LOWEST: f32 = f32::NEG_INFINITY;
}

impl Score for i32 {
    const LOWEST: i32 = i32::MIN;
}

impl<S: Score> Best<S> {
    pub(super) fn new(k: usize) -> Best<S> {
        Best { list: Vec::with_capacity(k + 1), k, threshold: S::LOWEST }
    }

    /// The K-th best score once K were offered (a score must beat it to enter), the lowest
    /// score before.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline(always)]
    pub(super) fn threshold(&self) -> S {
        self.threshold
    }

    #[inline(always)]
    pub(super) fn offer(&mut self, score: S, item: u32) {
        if self.list.len() < self.k || score > self.threshold {
            let pos = self.list.partition_point(|(b, _)| *b >= score);
            self.list.insert(pos, (score, item));
            if self.list.len() > self.k {
                self.list.pop();
            }
            if self.list.len() == self.k {
                self.threshold = self.list[self.k - 1].0;
            }
        }
    }
}

/// Per query, the items a screen has not excluded: (item, upper bound).
pub(super) type Kept = Vec<Vec<(u32, f32)>>;

/// The start of a screen: per query, the K largest lower bounds so far (their K-th is T), and
/// the items not yet excluded.
pub(super) fn screen_state(queries: usize, k: usize, items: usize) -> (Vec<Best<f32>>, Kept) {
    let lower = (0..queries).map(|_| Best::new(k)).collect();
    let kept = (0..queries).map(|_| Vec::with_capacity(k.saturating_mul(4).min(items))).collect();
    (lower, kept)
}

/// The end of a screen ([`super::screened`], [`super::int_screened`]): per query, the kept items
/// whose upper bound reaches the final T (the K-th largest lower bound), scored again by `dot` and
/// offered in item order, so the list is [`top_k`]'s, ties included.
pub(super) fn rescore_kept(
    items: &Vectors,
    queries: &[&[f32]],
    kept: &[Vec<(u32, f32)>],
    lower: &[Best<f32>],
    k: usize,
) -> Vec<Vec<(f32, u32)>> {
    kept.iter()
        .zip(lower)
        .zip(queries)
        .map(|((kept, lower), query)| {
            let threshold = lower.threshold();
            let mut best = Best::new(k);
            for &(item, upper) in kept {
                if upper >= threshold {
                    best.offer(dot(items.row(item as usize), query), item);
                }
            }
            best.list
        })
        .collect()
}

/// Bytes of catalogue scored against the whole batch before the next block is read: small enough
/// to stay in the core's L1 or L2 cache while every query passes over it.
const BATCH_BLOCK_BYTES: usize = 16 * 1024;

/// Calls `f(q, i, queries[q]·items[i])` for every query and item, in one pass over the catalogue:
/// the items in blocks of ~16 KiB, each block scored against every query while it is in cache
/// ([`dot_block`]), then handed over query by query. One query alone is bound by reading the
/// catalogue from memory; a batch of B shares that read. Each score is bit-identical to `dot`,
/// and each query sees its items in order.
pub fn for_each_score_batch(items: &Vectors, queries: &[&[f32]], mut f: impl FnMut(usize, usize, f32)) {
    let n = items.len();
    let rows_per_block = (BATCH_BLOCK_BYTES / (items.dim.max(1) * 4)).max(4) / 4 * 4;
    let mut scores = vec![0.0f32; rows_per_block * queries.len()];
    let mut start = 0;
    while start < n {
        let end = (start + rows_per_block).min(n);
        let rows = end - start;
        dot_block(items, start, end, queries, &mut scores);
        for q in 0..queries.len() {
            for (r, &s) in scores[q * rows..(q + 1) * rows].iter().enumerate() {
                f(q, start + r, s);
            }
        }
        start = end;
    }
}

/// The K best (score, item) pairs of each query, in one pass over the catalogue (see
/// [`for_each_score_batch`]): the same lists as [`top_k`] on each query, bit for bit.
///
/// The scores first screen the catalogue, and only the items the screen cannot exclude are scored
/// as `dot` does: natively on x86-64 CPUs with AVX and FMA by fused multiply-adds
/// ([`super::screened`]), elsewhere (in the browser) by exact integer sums of 16-bit codes
/// ([`super::int_screened`]).
pub fn top_k_batch(items: &Vectors, queries: &[&[f32]], k: usize) -> Vec<Vec<(f32, u32)>> {
    #[cfg(target_arch = "x86_64")]
    if super::screened::available() {
        if let Some(found) = super::screened::top_k_batch(items, queries, k) {
            return found;
        }
    }
    if let Some(found) = super::int_screened::top_k_batch(items, queries, k) {
        return found;
    }
    declared_order_batch(items, queries, k)
}

fn declared_order_batch(items: &Vectors, queries: &[&[f32]], k: usize) -> Vec<Vec<(f32, u32)>> {
    let mut best: Vec<Best<f32>> = queries.iter().map(|_| Best::new(k)).collect();
    for_each_score_batch(items, queries, |q, i, s| best[q].offer(s, i as u32));
    best.into_iter().map(|b| b.list).collect()
}

/// One catalogue searched batch after batch: [`top_k_batch`]'s answers, bit for bit. From the
/// second batch on, the integer screen reads the rows' codes made once
/// ([`super::int_screened::EncodedRows`]) instead of encoding each block again: in the browser
/// that was a third of a batch's time. (Natively, with FMA, the screen needs no codes.)
pub struct BatchSearch<'a> {
    items: &'a Vectors,
    batches: std::cell::Cell<u32>,
    encoded: std::cell::OnceCell<Option<super::int_screened::EncodedRows>>,
}

impl<'a> BatchSearch<'a> {
    pub fn new(items: &'a Vectors) -> BatchSearch<'a> {
        BatchSearch { items, batches: std::cell::Cell::new(0), encoded: std::cell::OnceCell::new() }
    }

    /// The K best (score, item) pairs of each query.
    pub fn top_k_batch(&self, queries: &[&[f32]], k: usize) -> Vec<Vec<(f32, u32)>> {
        self.batches.set(self.batches.get() + 1);
        #[cfg(target_arch = "x86_64")]
        if super::screened::available() {
            return top_k_batch(self.items, queries, k);
        }
        // A first batch encodes block by block, in cache; only a second makes the codes worth keeping.
        if self.batches.get() == 1 {
            return top_k_batch(self.items, queries, k);
        }
        let encoded = self.encoded.get_or_init(|| super::int_screened::EncodedRows::new(self.items));
        match encoded.as_ref().and_then(|encoded| super::int_screened::top_k_batch_encoded(self.items, encoded, queries, k)) {
            Some(found) => found,
            None => declared_order_batch(self.items, queries, k),
        }
    }
}

/// Item ids only.
pub fn top_k_ids(items: &Vectors, query: &[f32], k: usize) -> Vec<u32> {
    top_k(items, query, k).into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::super::data;
    use super::*;

    #[test]
    fn equals_a_full_sort() {
        let (items, queries) = data::generate(data::Kind::Clustered, 2000, 20, 33, 7);
        for q in 0..queries.len() {
            let query = queries.row(q);
            let mut all: Vec<(f32, u32)> = (0..items.len()).map(|i| (dot(items.row(i), query), i as u32)).collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(top_k(&items, query, 10), all[..10].to_vec());
        }
    }

    #[test]
    fn a_batch_finds_what_each_query_finds_alone() {
        // 2001 items: the last block is partial and ends in a row that is not in a group of four.
        for (dim, n) in [(33, 2001), (64, 1030), (5, 9)] {
            let (items, queries) = data::generate(data::Kind::Clustered, n, 13, dim, 3);
            let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
            let together = top_k_batch(&items, &batch, 10);
            for (q, found) in together.iter().enumerate() {
                assert_eq!(*found, top_k(&items, queries.row(q), 10), "dim {dim}, query {q}");
            }
            let search = BatchSearch::new(&items);
            for _ in 0..3 {
                assert_eq!(search.top_k_batch(&batch, 10), together, "dim {dim}: batch after batch");
            }
            let mut seen = vec![0u32; queries.len()];
            for_each_score_batch(&items, &batch, |q, i, s| {
                assert_eq!(i as u32, seen[q], "each query sees its items in order");
                assert_eq!(s.to_bits(), dot(items.row(i), batch[q]).to_bits());
                seen[q] += 1;
            });
            assert!(seen.iter().all(|&c| c as usize == n));
        }
    }
}
