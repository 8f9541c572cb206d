//! A third way between the exact scan and a graph: scan an **int8 copy** of the catalogue (a
//! quarter of the bytes), keep a shortlist of the R best by the approximate scores, and re-rank
//! that shortlist exactly with the f32 vectors.
//!
//! Each dimension j has its own step s_j = max_a |x_aj| / 127 and code X_aj = round(x_aj / s_j),
//! so x_aj ≈ s_j·X_aj. A query's scores are q·x_a ≈ Σ_j (q_j s_j) X_aj: the weights w_j = q_j s_j
//! are themselves rounded to int8 codes Q_j = round(127 w_j / max|w|), and the scan ranks items
//! by the integer Σ_j Q_j X_aj. Integer sums are exact in any order, so every kernel below (SSE2,
//! AVX2, wasm simd128, portable) gives the same scores, natively and in the browser.

use super::exact::Best;
use super::{dot, Vectors};

/// Codes per row are padded with zeros to a multiple of this (whole SIMD loads, no tail).
const LANES: usize = 16;

pub struct Quantized {
    dim: usize,
    /// `dim` rounded up to [`LANES`].
    stride: usize,
    codes: Vec<i8>,
    /// Per dimension, the value of one code step.
    steps: Vec<f32>,
}

impl Quantized {
    pub fn new(items: &Vectors) -> Quantized {
        let dim = items.dim;
        let stride = dim.div_ceil(LANES) * LANES;
        let mut largest = vec![0.0f32; dim];
        for i in 0..items.len() {
            for (m, x) in largest.iter_mut().zip(items.row(i)) {
                *m = m.max(x.abs());
            }
        }
        let steps: Vec<f32> = largest.iter().map(|m| if *m > 0.0 { m / 127.0 } else { 1.0 }).collect();
        let mut codes = vec![0i8; items.len() * stride];
        for i in 0..items.len() {
            for ((c, x), s) in codes[i * stride..].iter_mut().zip(items.row(i)).zip(&steps) {
                *c = code(x / s);
            }
        }
        Quantized { dim, stride, codes, steps }
    }

    pub fn len(&self) -> usize {
        self.codes.len() / self.stride.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Bytes of the int8 copy (a quarter of the f32 catalogue's, plus the padding).
    pub fn bytes(&self) -> usize {
        self.codes.len() + self.steps.len() * 4
    }

    /// The query's integer weights Q_j (as i16, padded), see the module comment.
    pub fn query_codes(&self, query: &[f32]) -> Vec<i16> {
        let weights: Vec<f32> = query.iter().zip(&self.steps).map(|(q, s)| q * s).collect();
        let largest = weights.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let mut codes = vec![0i16; self.stride];
        if largest > 0.0 {
            for (c, w) in codes.iter_mut().zip(&weights) {
                *c = code(w * 127.0 / largest) as i16;
            }
        }
        codes
    }

    fn row(&self, i: usize) -> &[i8] {
        &self.codes[i * self.stride..(i + 1) * self.stride]
    }

    /// Calls `f(i, score_i)` for every item in order, with the integer approximate score.
    pub fn for_each_score(&self, query_codes: &[i16], mut f: impl FnMut(usize, i32)) {
        debug_assert_eq!(query_codes.len(), self.stride);
        let n = self.len();
        let fours = n / 4 * 4;
        let mut i = 0;
        while i < fours {
            let scores = kernels::four([self.row(i), self.row(i + 1), self.row(i + 2), self.row(i + 3)], query_codes);
            for (j, s) in scores.into_iter().enumerate() {
                f(i + j, s);
            }
            i += 4;
        }
        for i in fours..n {
            f(i, kernels::portable(self.row(i), query_codes));
        }
    }

    /// The `shortlist` best items by the int8 scores, in item order.
    pub fn shortlist(&self, query: &[f32], shortlist: usize) -> Vec<u32> {
        let query_codes = self.query_codes(query);
        let mut best = Best::new(shortlist.max(1));
        self.for_each_score(&query_codes, |i, s| best.offer(s, i as u32));
        let mut ids: Vec<u32> = best.list.into_iter().map(|(_, i)| i).collect();
        ids.sort_unstable();
        ids
    }

    /// The K best (score, item) pairs by exact inner product among the int8 shortlist of
    /// `shortlist` items, best first, ties to the smaller id: exactly [`super::exact::top_k`]
    /// whenever the shortlist holds the true top K (always when `shortlist` ≥ P).
    pub fn top_k(&self, items: &Vectors, query: &[f32], k: usize, shortlist: usize) -> Vec<(f32, u32)> {
        debug_assert_eq!(items.dim, self.dim);
        let mut best = Best::new(k);
        for i in self.shortlist(query, shortlist.max(k)) {
            best.offer(dot(items.row(i as usize), query), i);
        }
        best.list
    }
}

/// The nearest integer code, saturated to ±127.
fn code(x: f32) -> i8 {
    x.round().clamp(-127.0, 127.0) as i8
}

/// Σ row[j]·query[j] over int8 rows and i16 query codes (within ±127), four rows at a time.
mod kernels {
    use super::LANES;

    pub fn portable(row: &[i8], query: &[i16]) -> i32 {
        row.iter().zip(query).map(|(&x, &y)| x as i32 * y as i32).sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn four(rows: [&[i8]; 4], query: &[i16]) -> [i32; 4] {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked above).
            unsafe { avx2(rows, query) }
        } else {
            // SAFETY: SSE2 is part of every x86-64 CPU.
            unsafe { sse2(rows, query) }
        }
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline]
    pub fn four(rows: [&[i8]; 4], query: &[i16]) -> [i32; 4] {
        use core::arch::wasm32::*;
        let mut acc = [i32x4_splat(0); 4];
        for start in (0..query.len()).step_by(LANES) {
            // SAFETY: rows and query have `stride` entries, a multiple of 16: both loads are in bounds.
            let (q0, q1) = unsafe {
                let q = query.as_ptr().add(start);
                (v128_load(q as *const v128), v128_load(q.add(8) as *const v128))
            };
            for r in 0..4 {
                let bytes = unsafe { v128_load(rows[r].as_ptr().add(start) as *const v128) };
                let (lo, hi) = (i16x8_extend_low_i8x16(bytes), i16x8_extend_high_i8x16(bytes));
                acc[r] = i32x4_add(acc[r], i32x4_add(i32x4_dot_i16x8(lo, q0), i32x4_dot_i16x8(hi, q1)));
            }
        }
        super::super::simd::lane_sums_i32(acc)
    }

    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    #[inline]
    pub fn four(rows: [&[i8]; 4], query: &[i16]) -> [i32; 4] {
        rows.map(|r| portable(r, query))
    }

    /// 16 codes per step: widened to i16, multiplied pairwise and summed into 8 i32 lanes
    /// (`vpmaddwd`), which cannot overflow: |code·query| ≤ 127².
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(rows: [&[i8]; 4], query: &[i16]) -> [i32; 4] {
        use core::arch::x86_64::*;
        let mut acc = [_mm256_setzero_si256(); 4];
        for start in (0..query.len()).step_by(LANES) {
            // SAFETY: rows and query have `stride` entries, a multiple of 16: the loads are in bounds.
            let q = unsafe { _mm256_loadu_si256(query.as_ptr().add(start) as *const __m256i) };
            for r in 0..4 {
                let bytes = unsafe { _mm_loadu_si128(rows[r].as_ptr().add(start) as *const __m128i) };
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(_mm256_cvtepi8_epi16(bytes), q));
            }
        }
        // SAFETY: AVX2 is present (this function's own requirement).
        unsafe { super::super::int_lanes::sums_avx2(acc) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    unsafe fn sse2(rows: [&[i8]; 4], query: &[i16]) -> [i32; 4] {
        use core::arch::x86_64::*;
        let mut acc = [_mm_setzero_si128(); 4];
        for start in (0..query.len()).step_by(LANES) {
            // SAFETY: as in avx2.
            let (q0, q1) = unsafe {
                let q = query.as_ptr().add(start);
                (_mm_loadu_si128(q as *const __m128i), _mm_loadu_si128(q.add(8) as *const __m128i))
            };
            for r in 0..4 {
                let bytes = unsafe { _mm_loadu_si128(rows[r].as_ptr().add(start) as *const __m128i) };
                // Each byte twice in a 16-bit lane, then an arithmetic shift: the byte sign-extended.
                let lo = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(bytes, bytes));
                let hi = _mm_srai_epi16::<8>(_mm_unpackhi_epi8(bytes, bytes));
                acc[r] = _mm_add_epi32(acc[r], _mm_add_epi32(_mm_madd_epi16(lo, q0), _mm_madd_epi16(hi, q1)));
            }
        }
        acc.map(super::super::int_lanes::sum_sse2)
    }

    #[cfg(all(test, target_arch = "x86_64"))]
    pub fn both_x86(rows: [&[i8]; 4], query: &[i16]) -> ([i32; 4], Option<[i32; 4]>) {
        // SAFETY: SSE2 is baseline on x86-64; AVX2 only when detected.
        let sse = unsafe { sse2(rows, query) };
        let avx = std::arch::is_x86_feature_detected!("avx2").then(|| unsafe { avx2(rows, query) });
        (sse, avx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{data, exact};
    use super::*;

    #[test]
    fn every_kernel_gives_the_integer_sum() {
        let (items, queries) = data::generate(data::Kind::Gaussian, 9, 2, 37, 5);
        let q = Quantized::new(&items);
        let codes = q.query_codes(queries.row(0));
        assert!(codes.iter().any(|c| c.abs() == 127), "the largest weight gets the largest code");
        let rows = [q.row(0), q.row(1), q.row(2), q.row(3)];
        let expected = rows.map(|r| kernels::portable(r, &codes));
        assert_eq!(kernels::four(rows, &codes), expected);
        #[cfg(target_arch = "x86_64")]
        {
            let (sse, avx) = kernels::both_x86(rows, &codes);
            assert_eq!(sse, expected);
            if let Some(avx) = avx {
                assert_eq!(avx, expected);
            }
        }
        // Extreme codes: no overflow at ±127 everywhere.
        let big = [vec![-127i8; 32], vec![127i8; 32], vec![-127i8; 32], vec![0i8; 32]];
        let query = vec![-127i16; 32];
        let rows = [&big[0][..], &big[1][..], &big[2][..], &big[3][..]];
        assert_eq!(kernels::four(rows, &query), [32 * 16129, -32 * 16129, 32 * 16129, 0]);
    }

    #[test]
    fn codes_approximate_the_vectors() {
        let (items, _) = data::generate(data::Kind::Clustered, 500, 1, 24, 2);
        let q = Quantized::new(&items);
        for i in 0..items.len() {
            for (j, x) in items.row(i).iter().enumerate() {
                let back = q.row(i)[j] as f32 * q.steps[j];
                assert!((back - x).abs() <= q.steps[j] * 0.5 + 1e-6, "{i},{j}: {back} vs {x}");
            }
        }
        assert!(q.row(0)[24..].iter().all(|&c| c == 0), "padding is zero");
    }

    #[test]
    fn a_full_shortlist_is_the_exact_answer_and_recall_rises_with_it() {
        for kind in [data::Kind::Uniform, data::Kind::Clustered, data::Kind::Gaussian] {
            let (items, queries) = data::generate(kind, 3001, 30, 19, 4);
            let q = Quantized::new(&items);
            let mut recalls = Vec::new();
            for shortlist in [10, 40, 3001] {
                let mut total = 0.0;
                for j in 0..queries.len() {
                    let truth = exact::top_k(&items, queries.row(j), 10);
                    let found = q.top_k(&items, queries.row(j), 10, shortlist);
                    if shortlist >= items.len() {
                        assert_eq!(found, truth, "{kind:?}");
                    }
                    let ids: Vec<u32> = found.iter().map(|f| f.1).collect();
                    total += super::super::recall(&ids, &truth.iter().map(|t| t.1).collect::<Vec<_>>());
                }
                recalls.push(total / queries.len() as f64);
            }
            assert!(recalls[0] <= recalls[1] && recalls[1] <= recalls[2] && recalls[2] == 1.0, "{kind:?}: {recalls:?}");
            assert!(recalls[1] > 0.9, "{kind:?}: {recalls:?}");
        }
    }
}
