//! The batched exact top-K screened by exact integer sums: the answers of the plain kernels, bit
//! for bit, at the speed of 16-bit integer multiply-adds, which every SIMD unit has (the browser's
//! simd128 has no fused multiply-add, so [`super::screened`] cannot run there).
//!
//! Each block of the catalogue is copied to 16-bit codes while it is in cache, and so is each
//! query. A row x gets a power-of-two step s_x with max_j |x_j| < 2^b s_x and codes
//! X_j = round(x_j / s_x), so |x_j − s_x X_j| ≤ s_x / 2 exactly: a power-of-two scaling does not
//! round unless its result is subnormal, and such a result (below 2⁻¹²⁶) gets the code 0, an
//! error of |x_j| ≤ s_x / 2. A query q gets its step s_q and codes Q_j the same way. A code is at
//! most 2^b in size (≤ 4096), and the integer I = Σ_j X_j Q_j is exact in any order
//! (|I| ≤ d 2^2b ≤ 2³⁰), so every kernel below gives the same I. Then, with v = x·q the exact
//! inner product and c the declared f32 score ([`super::dot`]):
//!
//! - |v − s_x s_q I| ≤ (s_q / 2) ‖x‖₁ + (s_x / 2) s_q ‖Q‖₁ (the two roundings of the codes);
//! - |c − v| ≤ γ ‖x‖₁ ‖q‖∞ + d 2⁻¹⁴⁹ (any f32 summation of d products, γ = n u / (1 − n u),
//!   n = d + 8, u = 2⁻²⁴; the last term for products that underflow: each is off by at most
//!   2⁻¹⁵⁰, and additions whose result is subnormal are exact);
//! - in units of s_q, the screen's score F = fl(I) s_x is within u |I| s_x of I s_x, and the
//!   rounding of F ± M is at most u (|F| + M): the u |F| parts are covered by a 3u term, since
//!   |I| s_x ≤ (‖x‖₁ + d s_x / 2)(‖q‖∞ / s_q + 1/2), and the u M part, with the roundings of M's
//!   own products and sums, by rounding α, β and κ up by 2⁻¹⁸ ((1 + 2⁻¹⁸)(1 − u)⁶ > 1). κ may
//!   round to a subnormal or to 0 in f32; the α ‖x‖₁ term (≥ 2⁻⁶¹ for a row not all zeros) covers
//!   that, and a row of zeros has c = ±0 = F.
//!
//! So M = α_q ‖x‖₁ + β_q s_x + κ_q bounds |c / s_q − F| (α, β, κ per query, below), and as in
//! [`super::screened`]: T, the K-th largest lower bound F − M seen so far, is at most the K-th
//! largest declared score (in units of s_q); an item whose F + M is below T is not in the top K;
//! the items left are scored again by [`super::dot`] and ranked as [`super::exact::top_k`] ranks.
//! The argument assumes IEEE f32 arithmetic rounding to nearest with gradual underflow, as on
//! x86-64 (SSE) and in wasm; not flush-to-zero modes or x87's excess precision.
//!
//! A row whose largest entry is below 2⁻⁶⁰ (other than all zeros), a query whose largest entry is
//! below it, or entries not finite or too large for the bound make [`top_k_batch`] give `None`:
//! the caller then scores in the declared order.

use super::exact::Best;
use super::Vectors;

/// Codes per row and query are padded with zeros to a multiple of this (whole SIMD loads).
const LANES: usize = 16;

/// Catalogue codes screened per block: 16 KiB (128 rows at d = 64).
const BLOCK_BYTES: usize = 16 * 1024;

/// Rows or queries whose largest entry is below this (2⁻⁶⁰), unless all zeros, are not screened:
/// their steps would leave the range in which the bound above is simple to keep.
const SMALLEST_ENTRY: f32 = 1.0 / (1u64 << 60) as f32;

/// Rows whose ‖x‖₁ reaches this (2¹⁰⁰) are not screened: no bound or score in units of s_q may
/// overflow.
const LARGEST_L1: f32 = 1.2676506e30;

/// Nor rows whose ‖x‖₁ times the largest query entry reaches this: no declared score may overflow
/// (it is at most ‖x‖₁ ‖q‖∞ (1 + γ)).
const LARGEST_SCORE: f32 = 1e30;

/// Codes per row or query: d padded with zeros to whole SIMD loads.
fn code_stride(dim: usize) -> usize {
    dim.div_ceil(LANES) * LANES
}

/// The code range 2^b: the largest b ≤ 12 with d 2^2b ≤ 2^30 (so the integer sums fit in i32).
fn code_bits(dim: usize) -> Option<u32> {
    let log_dim = dim.next_power_of_two().trailing_zeros();
    let bits = (30u32.checked_sub(log_dim)? / 2).min(12);
    (bits >= 4).then_some(bits)
}

/// The power-of-two step of a vector whose largest |entry| is `largest` (finite, ≥ 2⁻⁶⁰): the
/// exponent E with largest < 2^(bits + E), as (2^E, 2^−E).
fn step_of(largest: f32, bits: u32) -> (f32, f32) {
    let exponent = ((largest.to_bits() >> 23) & 0xff) as i32 - 127; // a normal number here
    let e = exponent + 1 - bits as i32; // −71 ≤ e ≤ 124: both powers are normal f32
    (f32::from_bits(((e + 127) as u32) << 23), f32::from_bits(((127 - e) as u32) << 23))
}

/// 1.5 · 2²³: for |x| ≤ 2²², x + SHIFT has no fraction bits left, and its low mantissa bits hold
/// round(x) (ties to even) offset by 2²² — plain adds and integer ops, which vectorize everywhere
/// (`round` is a libm call on baseline x86-64, and saturating casts add fix-ups).
const SHIFT: f32 = 12_582_912.0;

/// round(x) for |x| ≤ 2²².
#[inline(always)]
fn nearest(x: f32) -> i32 {
    (x + SHIFT).to_bits() as i32 - SHIFT.to_bits() as i32
}

/// The values' largest |entry| and Σ|entry| in f32 (eight partial sums: any order is within the
/// bound), or `None` when not finite.
fn largest_and_l1(values: &[f32]) -> Option<(f32, f32)> {
    let mut largest = [0.0f32; 8];
    let mut l1 = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for j in 0..8 {
            let v = chunk[j].abs();
            // Not f32::max, whose NaN rule keeps this from vectorizing: a NaN makes the sum NaN.
            largest[j] = if v > largest[j] { v } else { largest[j] };
            l1[j] += v;
        }
    }
    for (j, &v) in chunks.remainder().iter().enumerate() {
        largest[j] = if v.abs() > largest[j] { v.abs() } else { largest[j] };
        l1[j] += v.abs();
    }
    let largest = largest.iter().fold(0.0f32, |m, &v| if v > m { v } else { m });
    let l1: f32 = l1.iter().sum();
    l1.is_finite().then_some((largest, l1)) // NaN and ∞ make the sum not finite
}

/// Writes round(value / step) into `codes`, padded with zeros (|value / step| ≤ 2¹²).
fn encode(values: &[f32], inverse_step: f32, codes: &mut [i16]) {
    for (c, &v) in codes.iter_mut().zip(values) {
        *c = nearest(v * inverse_step) as i16;
    }
    for c in codes[values.len()..].iter_mut() {
        *c = 0;
    }
}

/// A query's codes and the coefficients of its margin M = α ‖x‖₁ + β s_x + κ (module comment),
/// rounded up so that M evaluated in f32 still bounds the error.
struct Query {
    codes: Vec<i16>,
    alpha: f32,
    beta: f32,
    kappa: f32,
}

fn encode_query(query: &[f32], dim: usize, stride: usize, bits: u32) -> Option<Query> {
    let (largest, _) = largest_and_l1(query)?;
    if largest < SMALLEST_ENTRY {
        return None;
    }
    let (step, inverse_step) = step_of(largest, bits);
    let mut codes = vec![0i16; stride];
    encode(query, inverse_step, &mut codes);
    let u = f64::from(f32::EPSILON / 2.0);
    let n = (dim + 8) as f64;
    let gamma = n * u / (1.0 - n * u);
    let ratio = f64::from(largest) / f64::from(step); // ‖q‖∞ / s_q, exact
    let code_l1: f64 = codes.iter().map(|&c| f64::from(c).abs()).sum();
    let alpha = gamma * ratio + 0.5 + 3.0 * u * (ratio + 0.5);
    let beta = code_l1 / 2.0 + 3.0 * u * (dim as f64 / 2.0) * (ratio + 0.5);
    let kappa = dim as f64 * 2f64.powi(-148) / f64::from(step);
    // Up by 2⁻¹⁸: the f32 products and sums of M (a few roundings of u each) and f64 → f32 here.
    let up = |v: f64| (v * (1.0 + 2f64.powi(-18))) as f32;
    Some(Query { codes, alpha: up(alpha), beta: up(beta), kappa: up(kappa) })
}

/// The K best (score, item) pairs of each query, as [`super::exact::top_k_batch`] gives them;
/// `None` when a vector is not finite, too long or too short for the bound, or d too large. Each
/// block of rows is encoded while in cache.
pub fn top_k_batch(items: &Vectors, queries: &[&[f32]], k: usize) -> Option<Vec<Vec<(f32, u32)>>> {
    let bits = code_bits(items.dim)?;
    screen_batch(items, Rows::Encode { bits, buffers: Default::default() }, queries, k)
}

/// A catalogue's codes, steps and ‖x‖₁ bounds, made once for all the batches searched against it:
/// a row's codes do not depend on the queries. They take half the memory of the f32 rows (at d a
/// multiple of 16), and a batch then reads them instead of encoding its rows (a third of a batch's
/// time in the browser).
pub struct EncodedRows {
    bits: u32,
    codes: Vec<i16>,
    steps: Vec<f32>,
    l1s: Vec<f32>,
    /// The largest ‖x‖₁ of a row (as computed, before rounding up): with a batch's largest entry,
    /// the check that no declared score may overflow.
    largest_l1: f32,
}

impl EncodedRows {
    /// `None` when a row is not finite, too long or too short for the bound, or d too large.
    pub fn new(items: &Vectors) -> Option<EncodedRows> {
        let bits = code_bits(items.dim)?;
        let stride = code_stride(items.dim);
        let mut codes = vec![0i16; items.len() * stride];
        let (mut steps, mut l1s) = (vec![0.0f32; items.len()], vec![0.0f32; items.len()]);
        // 0 as the largest query entry: the check that needs the queries is made per batch.
        let largest_l1 = encode_rows(items, 0..items.len(), bits, 0.0, &mut codes, &mut steps, &mut l1s)?;
        Some(EncodedRows { bits, codes, steps, l1s, largest_l1 })
    }
}

/// [`top_k_batch`] with the rows' codes made beforehand (`encoded` must be of `items`).
pub fn top_k_batch_encoded(items: &Vectors, encoded: &EncodedRows, queries: &[&[f32]], k: usize) -> Option<Vec<Vec<(f32, u32)>>> {
    debug_assert_eq!(encoded.steps.len(), items.len());
    screen_batch(items, Rows::Encoded(encoded), queries, k)
}

/// Where a block's codes come from.
enum Rows<'a> {
    /// Encoded block by block into these buffers.
    Encode {
        bits: u32,
        buffers: (Vec<i16>, Vec<f32>, Vec<f32>),
    },
    Encoded(&'a EncodedRows),
}

impl Rows<'_> {
    fn bits(&self) -> u32 {
        match self {
            Rows::Encode { bits, .. } => *bits,
            Rows::Encoded(encoded) => encoded.bits,
        }
    }

    /// The codes, steps and ‖x‖₁ bounds of the rows `range`; `None` as [`top_k_batch`] gives it.
    fn block(&mut self, items: &Vectors, range: std::ops::Range<usize>, largest_entry: f32) -> Option<(&[i16], &[f32], &[f32])> {
        let stride = code_stride(items.dim);
        match self {
            Rows::Encode { bits, buffers: (codes, steps, l1s) } => {
                let rows = range.len();
                codes.resize(rows * stride, 0);
                steps.resize(rows, 0.0);
                l1s.resize(rows, 0.0);
                encode_rows(items, range, *bits, largest_entry, codes, steps, l1s)?;
                Some((&codes[..], &steps[..], &l1s[..]))
            }
            Rows::Encoded(encoded) => {
                if encoded.largest_l1 * largest_entry >= LARGEST_SCORE {
                    return None;
                }
                Some((&encoded.codes[range.start * stride..range.end * stride], &encoded.steps[range.clone()], &encoded.l1s[range]))
            }
        }
    }
}

fn screen_batch(items: &Vectors, mut rows_of: Rows, queries: &[&[f32]], k: usize) -> Option<Vec<Vec<(f32, u32)>>> {
    let dim = items.dim;
    if k == 0 || dim == 0 || queries.is_empty() || queries.iter().any(|q| q.len() != dim) {
        return None;
    }
    let bits = rows_of.bits();
    let stride = code_stride(dim);
    let encoded: Vec<Query> = queries.iter().map(|q| encode_query(q, dim, stride, bits)).collect::<Option<_>>()?;
    let query_codes: Vec<&[i16]> = encoded.iter().map(|q| &q.codes[..]).collect();
    let largest_entry = queries.iter().flat_map(|q| q.iter()).fold(0.0f32, |m, v| m.max(v.abs()));
    let rows_per_block = (BLOCK_BYTES / (stride * 2)).max(4) / 4 * 4;
    let mut sums = vec![0i32; rows_per_block * queries.len()];
    let mut uppers = vec![0.0f32; rows_per_block];
    let mut lowers = vec![0.0f32; rows_per_block];
    let (mut lower, mut kept) = super::exact::screen_state(queries.len(), k, items.len());
    let mut start = 0;
    while start < items.len() {
        let end = (start + rows_per_block).min(items.len());
        let rows = end - start;
        let (codes, steps, l1s) = rows_of.block(items, start..end, largest_entry)?;
        kernels::block(codes, stride, &query_codes, &mut sums[..rows * queries.len()]);
        for (q, query) in encoded.iter().enumerate() {
            let sums = &sums[q * rows..(q + 1) * rows];
            screen(query, sums, steps, l1s, start as u32, (&mut uppers, &mut lowers), &mut lower[q], &mut kept[q]);
        }
        start = end;
    }
    Some(super::exact::rescore_kept(items, queries, &kept, &lower, k))
}

/// Codes, steps s_x and upper bounds of ‖x‖₁ of the rows `range` (`codes` has [`code_stride`]
/// codes per row), and the largest ‖x‖₁ as computed; `None` when a row is not finite, too long or
/// too short for the bound.
#[inline(never)]
fn encode_rows(
    items: &Vectors,
    range: std::ops::Range<usize>,
    bits: u32,
    largest_entry: f32,
    codes: &mut [i16],
    steps: &mut [f32],
    l1s: &mut [f32],
) -> Option<f32> {
    let stride = code_stride(items.dim);
    // 2 (d + 8) u: more than the relative error of an f32 sum of d non-negative terms (any order)
    // and of this product.
    let l1_up = 1.0 + (items.dim + 8) as f32 * f32::EPSILON;
    let mut largest_l1 = 0.0f32;
    for (r, i) in range.enumerate() {
        let row = items.row(i);
        let (largest, l1) = largest_and_l1(row)?;
        let codes = &mut codes[r * stride..(r + 1) * stride];
        if largest == 0.0 {
            codes.fill(0); // a row of zeros (or −0): I = 0, M = κ, and its score is ±0
            (steps[r], l1s[r]) = (0.0, 0.0);
        } else if largest < SMALLEST_ENTRY || l1 >= LARGEST_L1 || l1 * largest_entry >= LARGEST_SCORE {
            return None;
        } else {
            let (step, inverse_step) = step_of(largest, bits);
            encode(row, inverse_step, codes);
            (steps[r], l1s[r]) = (step, l1 * l1_up);
            largest_l1 = largest_l1.max(l1);
        }
    }
    Some(largest_l1)
}

/// One query's integer sums of one block: keeps the items whose upper bound F + M reaches T, and
/// offers their lower bounds F − M to raise T.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn screen(
    query: &Query,
    sums: &[i32],
    steps: &[f32],
    l1s: &[f32],
    first_item: u32,
    (uppers, lowers): (&mut [f32], &mut [f32]),
    lower: &mut Best<f32>,
    kept: &mut Vec<(u32, f32)>,
) {
    let rows = sums.len();
    // In a loop of its own, so that it vectorizes; the keeping below is sequential.
    for (((upper, lower), (&sum, &step)), &l1) in uppers.iter_mut().zip(lowers.iter_mut()).zip(sums.iter().zip(steps)).zip(l1s) {
        let score = sum as f32 * step;
        let margin = query.alpha * l1 + query.beta * step + query.kappa;
        (*upper, *lower) = (score + margin, score - margin);
    }
    // Eight rows at a time against the T of the eight's start (an older, lower T only keeps
    // more), then the eight one by one if any reaches it.
    for (eight, uppers) in uppers[..rows].chunks(8).enumerate() {
        let threshold = lower.threshold();
        if uppers.iter().fold(false, |any, &upper| any | (upper >= threshold)) {
            for (j, &upper) in uppers.iter().enumerate() {
                if upper >= lower.threshold() {
                    let r = eight * 8 + j;
                    kept.push((first_item + r as u32, upper));
                    lower.offer(lowers[r], first_item + r as u32);
                }
            }
        }
    }
}

/// `sums[g · rows + r]` = Σ_j codes of row r · codes of query g, exact: four rows by two queries
/// at a time (eight accumulators, which with the four rows' and two queries' loads fit the
/// sixteen vector registers of x86-64 and of V8's simd128), the last query alone.
mod kernels {
    #[cfg(target_arch = "x86_64")]
    use super::LANES;

    #[inline(never)]
    pub fn block(codes: &[i16], stride: usize, queries: &[&[i16]], sums: &mut [i32]) {
        let rows = codes.len() / stride;
        let fours = rows / 4 * 4;
        let mut g = 0;
        while g < queries.len() {
            let pair = g + 1 < queries.len();
            let (first, second) = (queries[g], queries[if pair { g + 1 } else { g }]);
            let mut r = 0;
            while r < fours {
                let tile = [
                    &codes[r * stride..][..stride],
                    &codes[(r + 1) * stride..][..stride],
                    &codes[(r + 2) * stride..][..stride],
                    &codes[(r + 3) * stride..][..stride],
                ];
                let out = tile4x2(tile, first, second);
                for (i, &s) in out[0].iter().enumerate() {
                    sums[g * rows + r + i] = s;
                }
                if pair {
                    for (i, &s) in out[1].iter().enumerate() {
                        sums[(g + 1) * rows + r + i] = s;
                    }
                }
                r += 4;
            }
            for r in fours..rows {
                let row = &codes[r * stride..][..stride];
                sums[g * rows + r] = portable(row, first);
                if pair {
                    sums[(g + 1) * rows + r] = portable(row, second);
                }
            }
            g += if pair { 2 } else { 1 };
        }
    }

    pub fn portable(row: &[i16], query: &[i16]) -> i32 {
        row.iter().zip(query).map(|(&x, &y)| x as i32 * y as i32).sum()
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline]
    fn tile4x2(rows: [&[i16]; 4], first: &[i16], second: &[i16]) -> [[i32; 4]; 2] {
        use core::arch::wasm32::*;
        let mut acc = [[i32x4_splat(0); 4]; 2];
        for start in (0..first.len()).step_by(8) {
            // SAFETY: rows and queries have `stride` codes, a multiple of 8: the loads are in bounds.
            let (q0, q1) =
                unsafe { (v128_load(first.as_ptr().add(start) as *const v128), v128_load(second.as_ptr().add(start) as *const v128)) };
            for r in 0..4 {
                let x = unsafe { v128_load(rows[r].as_ptr().add(start) as *const v128) };
                acc[0][r] = i32x4_add(acc[0][r], i32x4_dot_i16x8(x, q0));
                acc[1][r] = i32x4_add(acc[1][r], i32x4_dot_i16x8(x, q1));
            }
        }
        acc.map(super::super::simd::lane_sums_i32)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn tile4x2(rows: [&[i16]; 4], first: &[i16], second: &[i16]) -> [[i32; 4]; 2] {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked above).
            unsafe { avx2(rows, first, second) }
        } else {
            // SAFETY: SSE2 is part of every x86-64 CPU.
            unsafe { sse2(rows, first, second) }
        }
    }

    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    #[inline]
    fn tile4x2(rows: [&[i16]; 4], first: &[i16], second: &[i16]) -> [[i32; 4]; 2] {
        [rows.map(|r| portable(r, first)), rows.map(|r| portable(r, second))]
    }

    /// 16 codes per step, multiplied pairwise and summed into 8 i32 lanes (`vpmaddwd`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(rows: [&[i16]; 4], first: &[i16], second: &[i16]) -> [[i32; 4]; 2] {
        use core::arch::x86_64::*;
        let mut acc = [[_mm256_setzero_si256(); 4]; 2];
        for start in (0..first.len()).step_by(LANES) {
            // SAFETY: rows and queries have `stride` codes, a multiple of 16: the loads are in bounds.
            let (q0, q1) = unsafe {
                (
                    _mm256_loadu_si256(first.as_ptr().add(start) as *const __m256i),
                    _mm256_loadu_si256(second.as_ptr().add(start) as *const __m256i),
                )
            };
            for r in 0..4 {
                let x = unsafe { _mm256_loadu_si256(rows[r].as_ptr().add(start) as *const __m256i) };
                acc[0][r] = _mm256_add_epi32(acc[0][r], _mm256_madd_epi16(x, q0));
                acc[1][r] = _mm256_add_epi32(acc[1][r], _mm256_madd_epi16(x, q1));
            }
        }
        // SAFETY: AVX2 is present (this function's own requirement). Not in a closure, which would
        // not inherit the feature and so could not inline the sums.
        let [first, second] = acc;
        unsafe { [super::super::int_lanes::sums_avx2(first), super::super::int_lanes::sums_avx2(second)] }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    unsafe fn sse2(rows: [&[i16]; 4], first: &[i16], second: &[i16]) -> [[i32; 4]; 2] {
        use core::arch::x86_64::*;
        let mut acc = [[_mm_setzero_si128(); 4]; 2];
        for start in (0..first.len()).step_by(8) {
            // SAFETY: as in avx2.
            let (q0, q1) = unsafe {
                (
                    _mm_loadu_si128(first.as_ptr().add(start) as *const __m128i),
                    _mm_loadu_si128(second.as_ptr().add(start) as *const __m128i),
                )
            };
            for r in 0..4 {
                let x = unsafe { _mm_loadu_si128(rows[r].as_ptr().add(start) as *const __m128i) };
                acc[0][r] = _mm_add_epi32(acc[0][r], _mm_madd_epi16(x, q0));
                acc[1][r] = _mm_add_epi32(acc[1][r], _mm_madd_epi16(x, q1));
            }
        }
        acc.map(|g| g.map(super::super::int_lanes::sum_sse2))
    }

    #[cfg(all(test, target_arch = "x86_64"))]
    pub fn both_x86(rows: [&[i16]; 4], first: &[i16], second: &[i16]) -> ([[i32; 4]; 2], Option<[[i32; 4]; 2]>) {
        // SAFETY: SSE2 is baseline on x86-64; AVX2 only when detected.
        let sse = unsafe { sse2(rows, first, second) };
        let avx = std::arch::is_x86_feature_detected!("avx2").then(|| unsafe { avx2(rows, first, second) });
        (sse, avx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{data, exact};
    use super::*;

    /// The batch screened both ways (rows encoded block by block, and beforehand): the same answer.
    fn both(items: &Vectors, batch: &[&[f32]], k: usize) -> Option<Vec<Vec<(f32, u32)>>> {
        let on_the_fly = top_k_batch(items, batch, k);
        let beforehand = EncodedRows::new(items).and_then(|encoded| top_k_batch_encoded(items, &encoded, batch, k));
        assert_eq!(on_the_fly, beforehand);
        on_the_fly
    }

    fn declared_order(items: &Vectors, queries: &[&[f32]], k: usize) -> Vec<Vec<(f32, u32)>> {
        queries.iter().map(|q| exact::top_k(items, q, k)).collect()
    }

    #[test]
    fn steps_are_powers_of_two_that_keep_codes_in_range() {
        for largest in [SMALLEST_ENTRY, 1e-9, 0.3, 1.0, 1.5, 2.0, 1e30, f32::MAX] {
            for bits in [4, 11, 12] {
                let (step, inverse) = step_of(largest, bits);
                assert_eq!(step * inverse, 1.0);
                assert_eq!(step.to_bits() & 0x7f_ffff, 0, "a power of two");
                let top = largest * inverse;
                assert!(top < (1u32 << bits) as f32 && top >= (1u32 << (bits - 1)) as f32, "{largest} {bits}: {top}");
            }
        }
        assert_eq!(code_bits(64), Some(12));
        assert_eq!(code_bits(100), Some(11));
        assert_eq!(code_bits(1 << 22), Some(4));
        assert_eq!(code_bits(1 << 24), None);
        assert_eq!(nearest(2.5), 2);
        assert_eq!(nearest(-3.5), -4);
        assert_eq!(nearest(-0.4), 0);
        assert_eq!(nearest(4096.49), 4096);
        assert_eq!(nearest(-4096.0), -4096);
    }

    #[test]
    fn every_kernel_gives_the_integer_sum() {
        let stride = 48;
        let rows: Vec<Vec<i16>> = (0..4).map(|r| (0..stride).map(|j| ((j * 37 + r * 11) % 8193) as i16 - 4096).collect()).collect();
        let first: Vec<i16> = (0..stride).map(|j| ((j * 171) % 8193) as i16 - 4096).collect();
        let second = vec![4096i16; stride];
        let tile = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
        let expected = [tile.map(|r| kernels::portable(r, &first)), tile.map(|r| kernels::portable(r, &second))];
        let mut sums = vec![0; 8];
        let codes: Vec<i16> = rows.concat();
        kernels::block(&codes, stride, &[&first, &second], &mut sums);
        assert_eq!(sums, [expected[0], expected[1]].concat());
        #[cfg(target_arch = "x86_64")]
        {
            let (sse, avx) = kernels::both_x86(tile, &first, &second);
            assert_eq!(sse, expected);
            if let Some(avx) = avx {
                assert_eq!(avx, expected);
            }
        }
        // The extremes of the codes (±2¹² over 48 entries) do not overflow.
        let big = vec![-4096i16; stride];
        assert_eq!(kernels::portable(&big, &big), 48 * 4096 * 4096);
    }

    #[test]
    fn the_screened_batch_equals_the_declared_order_bit_for_bit() {
        for kind in [data::Kind::Clustered, data::Kind::Gaussian, data::Kind::Uniform] {
            for (n, dim, queries) in [(3001, 64, 32), (1030, 33, 13), (9, 5, 3), (500, 8, 1), (2000, 100, 8)] {
                let (items, qs) = data::generate(kind, n, queries, dim, 11);
                let batch: Vec<&[f32]> = (0..qs.len()).map(|q| qs.row(q)).collect();
                for k in [1, 4, 10] {
                    let screened = both(&items, &batch, k).expect("screened");
                    assert_eq!(screened, declared_order(&items, &batch, k), "{kind:?} n {n} d {dim} k {k}");
                }
            }
        }
    }

    #[test]
    fn ties_zeros_and_near_ties_rank_as_the_declared_order_does() {
        // 400 copies of one vector nudged by a few ulps, duplicates, rows of zeros and a large
        // row: near ties that the quantized scores cannot tell apart must all be kept.
        let (base, queries) = data::generate(data::Kind::Gaussian, 1, 6, 24, 5);
        let mut rows = Vec::new();
        for i in 0..400u32 {
            let mut row = base.row(0).to_vec();
            row[(i % 24) as usize] = f32::from_bits(row[(i % 24) as usize].to_bits() + (i % 5));
            rows.extend(row);
        }
        rows.extend(vec![0.0f32; 24]);
        rows.extend(vec![-0.0f32; 24]);
        rows.extend(base.row(0).iter().map(|x| x * 1e6));
        rows.extend(base.row(0));
        let items = Vectors { dim: 24, data: rows };
        let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
        let negated: Vec<f32> = queries.row(0).iter().map(|x| -x).collect();
        let mut with_negated = batch.clone();
        with_negated.push(&negated);
        for k in [1, 3, 10, 402, 1000] {
            assert_eq!(both(&items, &with_negated, k).unwrap(), declared_order(&items, &with_negated, k), "k {k}");
        }
    }

    #[test]
    fn vectors_the_bound_cannot_cover_are_left_to_the_declared_order() {
        let (items, queries) = data::generate(data::Kind::Gaussian, 20, 2, 8, 3);
        let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
        assert!(both(&items, &batch, 3).is_some());
        for bad in [f32::NAN, f32::INFINITY, 1e-30, 1e31] {
            // A tiny row is tiny throughout; the other values go into one entry.
            let mut data = items.data.clone();
            if bad.abs() < 1.0 {
                data[5 * 8..6 * 8].iter_mut().for_each(|x| *x *= bad);
            } else {
                data[5 * 8 + 2] = bad;
            }
            let bad_items = Vectors { dim: 8, data };
            assert!(both(&bad_items, &batch, 3).is_none(), "row entry {bad}");
            let bad_query: Vec<f32> = queries.row(0).iter().map(|&x| if bad.abs() < 1.0 { x * bad } else { x + bad }).collect();
            assert!(both(&items, &[&bad_query[..]], 3).is_none(), "query times {bad}");
        }
        let zero_query = [0.0f32; 8];
        assert!(both(&items, &[&zero_query[..]], 3).is_none());
    }

    #[test]
    fn the_screen_keeps_few_items() {
        // Not a bound the answers need, but the reason for the screen: on clustered data most
        // items are excluded by the integer scores (a screen that keeps everything is correct and
        // useless). Counted through the margins of one query, as top_k_batch keeps them.
        let (items, queries) = data::generate(data::Kind::Clustered, 20_000, 4, 64, 7);
        let bits = code_bits(64).unwrap();
        for q in 0..queries.len() {
            let query = encode_query(queries.row(q), 64, 64, bits).unwrap();
            let mut scored: Vec<(f32, f32)> = (0..items.len())
                .map(|i| {
                    let row = items.row(i);
                    let (largest, l1) = largest_and_l1(row).unwrap();
                    let (step, inverse) = step_of(largest, bits);
                    let mut codes = vec![0i16; 64];
                    encode(row, inverse, &mut codes);
                    let score = kernels::portable(&codes, &query.codes) as f32 * step;
                    let margin = query.alpha * l1 * 1.001 + query.beta * step + query.kappa;
                    (score - margin, score + margin)
                })
                .collect();
            let mut lowers: Vec<f32> = scored.iter().map(|s| s.0).collect();
            lowers.sort_by(|a, b| b.total_cmp(a));
            let threshold = lowers[9];
            scored.retain(|s| s.1 >= threshold);
            assert!(scored.len() < 40, "query {q}: {} of 20,000 kept", scored.len());
            // 10–11 here
        }
    }
}
