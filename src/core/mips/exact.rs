//! Exact top-K MIPS: one pass over the catalogue, dot products in blocks, top-K kept in a small
//! sorted buffer (K is small; a heap would not beat an insertion into ≤ K slots).

use super::{dot, dot4, Vectors};

/// Calls `f(i, items[i]·query)` for every item in order: four rows at a time (independent
/// accumulation chains), the rest one by one. Bit-identical to `dot` per row.
#[inline]
pub fn for_each_score(items: &Vectors, query: &[f32], mut f: impl FnMut(usize, f32)) {
    let n = items.len();
    let blocks = n / 4 * 4;
    let mut i = 0;
    while i < blocks {
        let scores = dot4([items.row(i), items.row(i + 1), items.row(i + 2), items.row(i + 3)], query);
        for (j, s) in scores.into_iter().enumerate() {
            f(i + j, s);
        }
        i += 4;
    }
    for i in blocks..n {
        f(i, dot(items.row(i), query));
    }
}

/// The K best (score, item) pairs, best first. Ties: the smaller item id first.
pub fn top_k(items: &Vectors, query: &[f32], k: usize) -> Vec<(f32, u32)> {
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    let mut threshold = f32::NEG_INFINITY;
    for_each_score(items, query, |i, s| {
        if best.len() < k || s > threshold {
            let pos = best.partition_point(|(b, _)| *b >= s);
            best.insert(pos, (s, i as u32));
            if best.len() > k {
                best.pop();
            }
            if best.len() == k {
                threshold = best[k - 1].0;
            }
        }
    });
    best
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
}
