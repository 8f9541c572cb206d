//! The batched exact top-K at the speed of fused multiply-adds, with the answers of the plain
//! kernels, bit for bit.
//!
//! Scoring B queries against one block of the catalogue in cache is bound by arithmetic, and a
//! fused multiply-add (FMA) does a multiply and an add in one instruction. But it rounds once
//! where the declared order ([`super::dot`]) rounds twice, and the browser has no FMA: its scores
//! would differ in the last bits, and so could the top K. So the FMA scores only *screen*:
//!
//! - Any summation of the d products x_j q_j in f32, fused or not, in any order, is within
//!   γ · Σ|x_j q_j| ≤ γ ‖x‖ ‖q‖ of the exact sum (γ = n u / (1 − n u), u = 2⁻²⁴, n the most
//!   roundings a term sees: ≤ d + 8 here). So the screened score f and the declared score c of an
//!   item differ by at most 2γ ‖x‖ ‖q‖; the margin e = 6γ ‖x‖ ‖q‖ also covers the roundings of
//!   the norms and of f ± e themselves. The bound is relative: products that underflow add an
//!   absolute error (≤ 2⁻¹⁵⁰ each), which the slack covers only while ‖x‖ and ‖q‖ are not tiny,
//!   so a vector of norm below 2⁻⁴⁰ (other than all zeros, whose scores are exactly 0 both
//!   ways) is not screened.
//! - T, the K-th largest lower bound f − e seen so far, is at most the K-th largest declared
//!   score. An item with f + e < T has c < T, so it is not in the top K, whatever the ties.
//! - The items left (≈ K + a few) are scored again by [`super::dot`] and ranked as
//!   [`super::exact::top_k`] ranks: the same list, bit for bit (tests compare them).
//!
//! Only natively on x86-64 CPUs with AVX and FMA (detected at run time); elsewhere, and when a
//! vector is not finite, too long or too short for the bound, [`super::exact::top_k_batch`]
//! scores in the declared order.

use super::exact::Best;
use super::hnsw::prefetch;
use super::{dot, Vectors};
use core::arch::x86_64::*;

/// Catalogue rows screened per block: 16 KiB (at d = 64, with 32 queries' chunks and scores,
/// about what a 32 KiB L1 holds; the rest comes from L2).
const BLOCK_BYTES: usize = 16 * 1024;

/// Far below f32's overflow (3.4e38), so that no partial sum, margin or bound overflows: an item
/// whose norm times the longest query's reaches it is not screened.
const LARGEST_NORM_PRODUCT: f32 = 1e30;

/// Vectors shorter than this (2⁻⁴⁰), unless all zeros, are not screened (underflow, above).
const SMALLEST_NORM: f32 = 1.0 / (1u64 << 40) as f32;

pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("fma")
}

/// The K best (score, item) pairs of each query, as [`super::exact::top_k_batch`] gives them; `None`
/// when a vector is not finite, too long or too short for the bound, or d is too large for it (the
/// caller then scores in the declared order). The CPU must have AVX and FMA ([`available`]).
pub fn top_k_batch(items: &Vectors, queries: &[&[f32]], k: usize) -> Option<Vec<Vec<(f32, u32)>>> {
    assert!(available());
    let dim = items.dim;
    if k == 0 || dim == 0 || queries.iter().any(|q| q.len() != dim) {
        return None;
    }
    let (n, u) = ((dim + 8) as f64, f64::from(f32::EPSILON / 2.0));
    if n * u > 0.01 {
        return None; // γ grows without bound as n u → 1
    }
    let gamma = n * u / (1.0 - n * u);
    // Per query: 6γ‖q‖, the margin per unit of item norm (the norm in f64: no underflow).
    let mut margin_per_norm = Vec::with_capacity(queries.len());
    let mut largest_query = 0.0f32;
    for q in queries {
        let norm = q.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        if !norm.is_finite() || (norm < f64::from(SMALLEST_NORM) && q.iter().any(|&v| v != 0.0)) {
            return None;
        }
        margin_per_norm.push((6.0 * gamma * norm) as f32);
        largest_query = largest_query.max(norm as f32);
    }
    let rows_per_block = (BLOCK_BYTES / (dim * 4)).max(4) / 4 * 4;
    let mut scores = vec![0.0f32; rows_per_block * queries.len()];
    let mut norms = vec![0.0f32; rows_per_block];
    let (mut lower, mut kept) = super::exact::screen_state(queries.len(), k, items.len());
    let mut start = 0;
    while start < items.len() {
        let end = (start + rows_per_block).min(items.len());
        let rows = end - start;
        let block = &items.data[start * dim..end * dim];
        let next = &items.data[end * dim..(end + rows_per_block).min(items.len()) * dim];
        // SAFETY: the CPU has AVX and FMA (asserted above); the block holds whole rows, every
        // query `dim` floats, `norms` `rows` floats and `scores` rows × queries floats.
        unsafe {
            fma_norms(block, dim, &mut norms[..rows]);
            fma_block(block, dim, queries, &mut scores, next);
        }
        // No short cut: this compiles to vector compares (NaN and ∞ fail the test).
        let fits = |ok: bool, &norm: &f32| ok & (norm * largest_query < LARGEST_NORM_PRODUCT) & ((norm >= SMALLEST_NORM) | (norm == 0.0));
        if !norms[..rows].iter().fold(true, fits) {
            return None;
        }
        // A norm of 0 must be a row of zeros, not tiny values whose squares underflowed.
        for (r, _) in norms[..rows].iter().enumerate().filter(|(_, &norm)| norm == 0.0) {
            if block[r * dim..(r + 1) * dim].iter().any(|&x| x != 0.0) {
                return None;
            }
        }
        for (q, row_scores) in scores.chunks_exact(rows).take(queries.len()).enumerate() {
            // SAFETY: the CPU has AVX and FMA (asserted above).
            unsafe { screen(row_scores, &norms[..rows], margin_per_norm[q], start as u32, &mut lower[q], &mut kept[q]) };
        }
        start = end;
    }
    Some(super::exact::rescore_kept(items, queries, &kept, &lower, k))
}

/// One query's scores of one block: keeps the items whose upper bound f + e reaches T, and
/// offers their lower bounds f − e to raise T. Eight rows at a time against the T of the eight's
/// start (an older, lower T only keeps more), then the kept ones one by one.
///
/// # Safety
/// The CPU must have AVX and FMA.
#[target_feature(enable = "avx,fma")]
unsafe fn screen(scores: &[f32], norms: &[f32], margin: f32, first_item: u32, lower: &mut Best<f32>, kept: &mut Vec<(u32, f32)>) {
    let margin8 = _mm256_set1_ps(margin);
    let mut keep = |r: usize, lower: &mut Best<f32>| {
        let e = margin * norms[r];
        let upper = scores[r] + e;
        if upper >= lower.threshold() {
            let item = first_item + r as u32;
            kept.push((item, upper));
            lower.offer(scores[r] - e, item);
        }
    };
    let eights = scores.len().min(norms.len()) / 8 * 8;
    let mut r = 0;
    while r < eights {
        // SAFETY: r + 8 ≤ eights ≤ both lengths.
        let upper = unsafe { _mm256_fmadd_ps(margin8, _mm256_loadu_ps(norms.as_ptr().add(r)), _mm256_loadu_ps(scores.as_ptr().add(r))) };
        let reach = _mm256_cmp_ps::<_CMP_GE_OQ>(upper, _mm256_set1_ps(lower.threshold()));
        let mut bits = _mm256_movemask_ps(reach) as u32;
        while bits != 0 {
            keep(r + bits.trailing_zeros() as usize, lower);
            bits &= bits - 1;
        }
        r += 8;
    }
    for r in eights..scores.len().min(norms.len()) {
        keep(r, lower);
    }
}

/// `out[g · rows + r]` = row r of the block · query g, by FMAs in any order (within the bound
/// above): four rows by three queries at a time (twelve chains: with the three queries' chunks and
/// a row's, all sixteen AVX registers; 2 % more queries/s than two at a time), the last queries
/// by two or one; a last partial chunk of 8 by masked loads (zeros beyond the row). `next` is
/// the block scored after this one, prefetched meanwhile.
///
/// # Safety
/// The CPU must have AVX and FMA. `block` holds whole rows of `dim` floats, every query `dim`
/// floats, and `out` at least rows × queries floats.
#[target_feature(enable = "avx,fma")]
unsafe fn fma_block(block: &[f32], dim: usize, queries: &[&[f32]], out: &mut [f32], next: &[f32]) {
    let rows = block.len() / dim;
    assert!(out.len() >= rows * queries.len() && queries.iter().all(|q| q.len() == dim));
    // The next block's cache lines, asked of memory a few per tile step while this block is
    // scored (spread over its steps), so that the arithmetic overlaps the next block's reads.
    let steps = (rows / 4) * queries.len().div_ceil(3).max(1);
    let lines_per_step = next.len().div_ceil(FLOATS_PER_LINE).div_ceil(steps.max(1)).max(1);
    let mut ahead = Ahead { chunks: next.chunks(lines_per_step * FLOATS_PER_LINE) };
    let mut q = 0;
    while q + 3 <= queries.len() {
        // SAFETY: as this function's.
        unsafe { fma_tile::<3>(block, dim, [queries[q], queries[q + 1], queries[q + 2]], &mut out[q * rows..], &mut ahead) };
        q += 3;
    }
    while q + 2 <= queries.len() {
        // SAFETY: as this function's.
        unsafe { fma_tile::<2>(block, dim, [queries[q], queries[q + 1]], &mut out[q * rows..], &mut ahead) };
        q += 2;
    }
    if q < queries.len() {
        // SAFETY: as this function's.
        unsafe { fma_tile::<1>(block, dim, [queries[q]], &mut out[q * rows..], &mut ahead) };
    }
    while ahead.step() {}
}

/// f32 values per 64-byte cache line.
const FLOATS_PER_LINE: usize = 16;

/// The next block's lines still to prefetch, a chunk of them per [`Ahead::step`].
struct Ahead<'a> {
    chunks: std::slice::Chunks<'a, f32>,
}

impl Ahead<'_> {
    /// Prefetches the next chunk's lines, if any are left; whether any were.
    #[inline(always)]
    fn step(&mut self) -> bool {
        self.chunks.next().map(prefetch).is_some()
    }
}

/// G queries against every row of the block (see [`fma_block`]).
#[inline]
// Registers indexed by row and query read clearer than zipped iterators.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx,fma")]
unsafe fn fma_tile<const G: usize>(block: &[f32], dim: usize, queries: [&[f32]; G], out: &mut [f32], ahead: &mut Ahead<'_>) {
    let rows = block.len() / dim;
    let (whole, rest) = (dim / 8 * 8, dim % 8);
    let mask = tail_mask(rest);
    let fours = rows / 4 * 4;
    let base = block.as_ptr();
    let mut r = 0;
    while r < fours {
        ahead.step();
        let mut acc = [[_mm256_setzero_ps(); 4]; G];
        let mut i = 0;
        while i < whole {
            // SAFETY: rows r..r + 4 ≤ rows are whole rows of the block and i + 8 ≤ dim.
            unsafe {
                let y: [__m256; G] = core::array::from_fn(|g| _mm256_loadu_ps(queries[g].as_ptr().add(i)));
                for k in 0..4 {
                    let x = _mm256_loadu_ps(base.add((r + k) * dim + i));
                    for g in 0..G {
                        acc[g][k] = _mm256_fmadd_ps(x, y[g], acc[g][k]);
                    }
                }
            }
            i += 8;
        }
        if rest > 0 {
            // SAFETY: masked lanes are not read; the unmasked ones lie within each row.
            unsafe {
                let y: [__m256; G] = core::array::from_fn(|g| _mm256_maskload_ps(queries[g].as_ptr().add(whole), mask));
                for k in 0..4 {
                    let x = _mm256_maskload_ps(base.add((r + k) * dim + whole), mask);
                    for g in 0..G {
                        acc[g][k] = _mm256_fmadd_ps(x, y[g], acc[g][k]);
                    }
                }
            }
        }
        for g in 0..G {
            // SAFETY: g · rows + r + 4 ≤ out.len() (asserted by the caller).
            unsafe { _mm_storeu_ps(out.as_mut_ptr().add(g * rows + r), sums4(acc[g])) };
        }
        r += 4;
    }
    for r in fours..rows {
        for g in 0..G {
            out[g * rows + r] = dot(&block[r * dim..(r + 1) * dim], queries[g]);
        }
    }
}

/// The four rows' sums of their eight lanes: [r0: a0+a1, a2+a3, r1: …| r0: a4+a5, a6+a7, r1: …],
/// then the halves added.
#[inline]
#[target_feature(enable = "avx")]
fn sums4(acc: [__m256; 4]) -> __m128 {
    let pairs01 = _mm256_hadd_ps(acc[0], acc[1]);
    let pairs23 = _mm256_hadd_ps(acc[2], acc[3]);
    let quads = _mm256_hadd_ps(pairs01, pairs23);
    _mm_add_ps(_mm256_castps256_ps128(quads), _mm256_extractf128_ps::<1>(quads))
}

/// The mask of a last partial chunk of `rest` < 8 floats: its lanes load, the others read as 0.
#[inline]
#[target_feature(enable = "avx")]
fn tail_mask(rest: usize) -> __m256i {
    let lane = |j: usize| -((rest > j) as i32);
    _mm256_setr_epi32(lane(0), lane(1), lane(2), lane(3), lane(4), lane(5), lane(6), lane(7))
}

/// `norms[r]` = ‖row r‖ of the block, by FMAs (within the bound's slack), four rows at a time.
///
/// # Safety
/// The CPU must have AVX and FMA. `block` holds whole rows of `dim` floats, `norms` one float
/// per row.
#[target_feature(enable = "avx,fma")]
unsafe fn fma_norms(block: &[f32], dim: usize, norms: &mut [f32]) {
    let rows = block.len() / dim;
    assert!(norms.len() == rows);
    let (whole, rest) = (dim / 8 * 8, dim % 8);
    let mask = tail_mask(rest);
    let fours = rows / 4 * 4;
    let base = block.as_ptr();
    let mut r = 0;
    while r < fours {
        // The four rows' chains interleaved: one chain alone waits on each FMA's latency.
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < whole {
            for (k, acc) in acc.iter_mut().enumerate() {
                // SAFETY: row r + k is a whole row of the block and i + 8 ≤ dim.
                let x = unsafe { _mm256_loadu_ps(base.add((r + k) * dim + i)) };
                *acc = _mm256_fmadd_ps(x, x, *acc);
            }
            i += 8;
        }
        if rest > 0 {
            for (k, acc) in acc.iter_mut().enumerate() {
                // SAFETY: masked lanes are not read; the unmasked ones lie within row r + k.
                let x = unsafe { _mm256_maskload_ps(base.add((r + k) * dim + whole), mask) };
                *acc = _mm256_fmadd_ps(x, x, *acc);
            }
        }
        // SAFETY: r + 4 ≤ rows = norms.len().
        unsafe { _mm_storeu_ps(norms.as_mut_ptr().add(r), _mm_sqrt_ps(sums4(acc))) };
        r += 4;
    }
    for r in fours..rows {
        let row = &block[r * dim..(r + 1) * dim];
        norms[r] = dot(row, row).sqrt();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{data, exact};
    use super::*;

    #[test]
    fn the_screened_batch_equals_the_declared_order_bit_for_bit() {
        if !available() {
            return;
        }
        // Dimensions with and without a partial last chunk, fewer rows than a block, a last row
        // outside the fours, query counts that use tiles of three, two and one query, K above
        // the count of near ties.
        for (kind, dim, n, k, count) in [
            (data::Kind::Clustered, 64, 5003, 10, 32),
            (data::Kind::Clustered, 100, 2001, 4, 7),
            (data::Kind::Gaussian, 33, 1030, 10, 8),
            (data::Kind::Uniform, 5, 9, 3, 7),
            (data::Kind::Uniform, 12, 300, 300, 2),
        ] {
            let (items, queries) = data::generate(kind, n, count, dim, 11);
            let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
            let screened = top_k_batch(&items, &batch, k).expect("finite vectors are screened");
            for (q, found) in screened.iter().enumerate() {
                let want = exact::top_k(&items, batch[q], k);
                assert_eq!(found.len(), want.len());
                for (a, b) in found.iter().zip(&want) {
                    assert_eq!((a.0.to_bits(), a.1), (b.0.to_bits(), b.1), "{kind:?}, d {dim}, query {q}");
                }
            }
        }
    }

    #[test]
    fn ties_and_duplicates_rank_as_the_declared_order_does() {
        if !available() {
            return;
        }
        // Every row four times: the screen keeps every copy of a winner, the earlier first.
        let (base, queries) = data::generate(data::Kind::Clustered, 500, 5, 24, 2);
        let mut items = Vectors::new(24);
        for _ in 0..4 {
            items.data.extend_from_slice(&base.data);
        }
        let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
        let screened = top_k_batch(&items, &batch, 10).unwrap();
        for (q, found) in screened.iter().enumerate() {
            assert_eq!(*found, exact::top_k(&items, batch[q], 10));
        }
    }

    #[test]
    fn near_ties_that_fused_and_plain_sums_rank_differently_are_kept() {
        if !available() {
            return;
        }
        // 400 copies of one vector, each coordinate nudged by a few ulps: the scores differ only
        // by roundings, so fused and plain sums often rank them differently. Without the margin
        // (e = 0) this test fails.
        let dim = 40;
        let (base, queries) = data::generate(data::Kind::Gaussian, 1, 6, dim, 9);
        let mut rng = crate::core::rng::seeded(5, crate::core::rng::Stream::World);
        let mut items = Vectors::new(dim);
        for _ in 0..400 {
            let row: Vec<f32> = base
                .row(0)
                .iter()
                .map(|&x| f32::from_bits(x.to_bits().wrapping_add(rand::RngExt::random_range(&mut rng, 0..5u32))))
                .collect();
            items.push(&row);
        }
        let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
        for k in [1, 3, 10] {
            let screened = top_k_batch(&items, &batch, k).unwrap();
            for (q, found) in screened.iter().enumerate() {
                assert_eq!(*found, exact::top_k(&items, batch[q], k), "k {k}, query {q}");
            }
        }
    }

    #[test]
    fn vectors_the_bound_cannot_cover_are_left_to_the_declared_order() {
        if !available() {
            return;
        }
        let items_ok = || data::generate(data::Kind::Uniform, 100, 3, 16, 4).0;
        let (mut items, queries) = data::generate(data::Kind::Uniform, 100, 3, 16, 4);
        let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
        assert!(top_k_batch(&items, &batch, 5).is_some());
        items.data[37] = f32::NAN;
        assert!(top_k_batch(&items, &batch, 5).is_none());
        items.data[37] = 1e35;
        assert!(top_k_batch(&items, &batch, 5).is_none());
        // A row of tiny values whose squares underflow (norm 0 in f32), and a tiny query.
        let mut tiny = items.clone();
        tiny.data[16..32].iter_mut().for_each(|x| *x = 1e-30);
        tiny.data[37] = 0.5;
        assert!(top_k_batch(&tiny, &batch, 5).is_none());
        let small_query: Vec<f32> = batch[0].iter().map(|v| v * 1e-25).collect();
        assert!(top_k_batch(&items_ok(), &[&small_query], 5).is_none());
        // Rows of zeros are screened (their scores are exactly 0 both ways).
        let mut zeros = items_ok();
        zeros.data[..48].iter_mut().for_each(|x| *x = 0.0);
        let found = top_k_batch(&zeros, &batch, 5).expect("zero rows are screened");
        assert_eq!(found[1], exact::top_k(&zeros, batch[1], 5));
        // And the public entry point still answers, in the declared order.
        items.data[37] = f32::INFINITY;
        let found = exact::top_k_batch(&items, &batch, 5);
        assert_eq!(found[0], exact::top_k(&items, batch[0], 5));
    }
}
