//! Maximum inner product search (MIPS): the top-K items by f(x)·β_a.
//!
//! [`exact`] scans the whole catalogue (O(P·d), memory-bound when vectorised); [`hnsw`] is a
//! graph index (Malkov & Yashunin) searched greedily, sub-linear in P, for inner product directly
//! or for L2 distance on the MIPS→NN augmented vectors x̃ = [x, √(φ² − ‖x‖²)], q̃ = [q, 0]
//! (Bachrach et al. 2014): ‖x̃ − q̃‖² = φ² + ‖q‖² − 2 x·q, so the nearest x̃ is the largest x·q.

pub mod data;
pub mod exact;
pub mod hnsw;
pub mod int_screened;
pub mod lesson;
pub mod quantized;
#[cfg(target_arch = "x86_64")]
pub mod screened;

/// P vectors of dimension d, contiguous f32 (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Vectors {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Vectors {
    pub fn new(dim: usize) -> Vectors {
        Vectors { dim, data: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn push(&mut self, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim);
        self.data.extend_from_slice(v);
    }

    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }

    /// The augmented vectors [x, √(φ² − ‖x‖²)] with φ = max ‖x‖: all of norm φ.
    pub fn augmented(&self) -> Vectors {
        let norms: Vec<f32> = (0..self.len()).map(|i| dot(self.row(i), self.row(i))).collect();
        let phi2 = norms.iter().copied().fold(0.0f32, f32::max);
        let mut out = Vectors::new(self.dim + 1);
        for (i, n) in norms.iter().enumerate() {
            out.data.extend_from_slice(self.row(i));
            out.data.push((phi2 - n).max(0.0).sqrt());
        }
        out
    }
}

/// Dot product with 8 independent accumulators: a fixed summation order (the same bits natively
/// and in wasm). Natively the 8 lanes are one AVX register when the CPU has AVX (checked at run
/// time, so one binary runs everywhere), else two SSE registers by the vectoriser; in wasm two
/// simd128 registers. Never a fused multiply-add: it rounds once instead of twice, and the sums
/// would then differ between the CPU and the browser.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    one::<false>(a, b)
}

/// Squared L2 distance, same structure as [`dot`].
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    one::<true>(a, b)
}

/// One row against one query, term x·y (or (x − y)² when `L2`): acc[j] += term over chunks of 8,
/// lane by lane, then the lanes summed pairwise and the tail added.
#[inline(always)]
fn one<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len()) / 8 * 8;
    let mut tail = 0.0f32;
    for (x, y) in a[n..].iter().zip(&b[n..]) {
        tail += term::<L2>(*x, *y);
    }
    #[cfg(target_arch = "x86_64")]
    if avx::available() {
        // SAFETY: the CPU has AVX (checked just above).
        return unsafe { avx::one::<L2>(&a[..n], &b[..n], tail) };
    }
    reduce(&lanes8::<L2>(&a[..n], &b[..n]), tail)
}

#[inline(always)]
fn term<const L2: bool>(x: f32, y: f32) -> f32 {
    if L2 {
        (x - y) * (x - y)
    } else {
        x * y
    }
}

/// The 8 lanes summed in a fixed order, then the tail.
#[inline(always)]
fn reduce(a: &[f32; 8], tail: f32) -> f32 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + tail
}

/// Dot products of four rows with one query, interleaved so that the four accumulation chains
/// run in parallel (a single chain waits on each addition's latency). Each row is summed in
/// exactly the order [`dot`] uses, so the results are bit-identical to four `dot` calls.
#[inline]
pub fn dot4(rows: [&[f32]; 4], q: &[f32]) -> [f32; 4] {
    four::<false>(rows, q)
}

/// Squared L2 distances of four rows to one query: bit-identical to four [`l2`] calls.
#[inline]
pub fn l2_4(rows: [&[f32]; 4], q: &[f32]) -> [f32; 4] {
    four::<true>(rows, q)
}

/// Dot products of the rows `start..end` of `items` with every query, written query by query:
/// `out[q · (end − start) + r]` = `dot(items.row(start + r), queries[q])`, bit for bit. The
/// batched exact scan's kernel: natively with AVX, four rows by three queries at a time (twelve
/// accumulation chains; each row is loaded once for the three), so the arithmetic, not the
/// loads or the calls, sets the pace.
pub fn dot_block(items: &Vectors, start: usize, end: usize, queries: &[&[f32]], out: &mut [f32]) {
    let rows = end - start;
    assert!(out.len() >= rows * queries.len() && end <= items.len());
    assert!(queries.iter().all(|q| q.len() == items.dim));
    let block = &items.data[start * items.dim..end * items.dim];
    #[cfg(target_arch = "x86_64")]
    if avx::available() && items.dim >= 8 {
        // SAFETY: the CPU has AVX (checked just above); the lengths are asserted above.
        unsafe { avx::dot_block(block, items.dim, queries, out) };
        return;
    }
    let row = |r: usize| &block[r * items.dim..(r + 1) * items.dim];
    let fours = rows / 4 * 4;
    for (q, query) in queries.iter().enumerate() {
        for r in (0..fours).step_by(4) {
            out[q * rows + r..q * rows + r + 4].copy_from_slice(&dot4([row(r), row(r + 1), row(r + 2), row(r + 3)], query));
        }
    }
    for (q, query) in queries.iter().enumerate() {
        for r in fours..rows {
            out[q * rows + r] = dot(row(r), query);
        }
    }
}

/// Four rows against one query, each row in [`dot`]'s order.
#[inline(always)]
fn four<const L2: bool>(rows: [&[f32]; 4], q: &[f32]) -> [f32; 4] {
    let n = q.len() / 8 * 8;
    let mut tails = [0.0f32; 4];
    for r in 0..4 {
        for (x, y) in rows[r][n..].iter().zip(&q[n..]) {
            tails[r] += term::<L2>(*x, *y);
        }
    }
    let whole = ([&rows[0][..n], &rows[1][..n], &rows[2][..n], &rows[3][..n]], &q[..n]);
    #[cfg(target_arch = "x86_64")]
    if avx::available() {
        // SAFETY: the CPU has AVX (checked just above).
        return unsafe { avx::four::<L2>(whole.0, whole.1, tails) };
    }
    let acc = four_lanes::<L2>(whole.0, whole.1);
    [reduce(&acc[0], tails[0]), reduce(&acc[1], tails[1]), reduce(&acc[2], tails[2]), reduce(&acc[3], tails[3])]
}

/// acc[j] += term(x[j], y[j]) over whole chunks of 8 (`a` and `b` have a multiple of 8 floats).
#[inline(always)]
fn lanes8<const L2: bool>(a: &[f32], b: &[f32]) -> [f32; 8] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let mut acc = simd::zero();
        for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
            acc = if L2 { simd::sq_diff_add(acc, x, y) } else { simd::mul_add(acc, x, y) };
        }
        simd::to_array(acc)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let mut acc = [0.0f32; 8];
        for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
            for j in 0..8 {
                acc[j] += term::<L2>(x[j], y[j]);
            }
        }
        acc
    }
}

/// [`lanes8`] for four rows at once (four independent chains).
#[inline(always)]
fn four_lanes<const L2: bool>(rows: [&[f32]; 4], q: &[f32]) -> [[f32; 8]; 4] {
    let mut acc = [[0.0f32; 8]; 4];
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let mut v = [simd::zero(); 4];
        let mut i = 0;
        while i < q.len() {
            let y = &q[i..i + 8];
            for r in 0..4 {
                v[r] = if L2 { simd::sq_diff_add(v[r], &rows[r][i..i + 8], y) } else { simd::mul_add(v[r], &rows[r][i..i + 8], y) };
            }
            i += 8;
        }
        for r in 0..4 {
            acc[r] = simd::to_array(v[r]);
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        // Fixed-size chunks: no bounds checks in the loop, so LLVM vectorises it.
        let (r0, r1, r2, r3) = (rows[0], rows[1], rows[2], rows[3]);
        for ((((y, a), b), c), d) in
            q.chunks_exact(8).zip(r0.chunks_exact(8)).zip(r1.chunks_exact(8)).zip(r2.chunks_exact(8)).zip(r3.chunks_exact(8))
        {
            for j in 0..8 {
                acc[0][j] += term::<L2>(a[j], y[j]);
                acc[1][j] += term::<L2>(b[j], y[j]);
                acc[2][j] += term::<L2>(c[j], y[j]);
                acc[3][j] += term::<L2>(d[j], y[j]);
            }
        }
    }
    acc
}

/// Lane sums of the integer kernels' accumulators on x86-64 (the int8 scan's and the integer
/// screen's; integer sums, exact in any order). The wasm one is `simd::lane_sums_i32`.
#[cfg(target_arch = "x86_64")]
pub(super) mod int_lanes {
    use core::arch::x86_64::*;

    /// Four rows' 8-lane sums in one go: horizontal adds pair the lanes up until each row's total
    /// sits in one lane.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn sums_avx2([a, b, c, d]: [__m256i; 4]) -> [i32; 4] {
        let pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
        let totals = _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256::<1>(pairs));
        let mut out = [0i32; 4];
        // SAFETY: a 16-byte store into a 16-byte array.
        unsafe { _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, totals) };
        out
    }

    /// One 4-lane sum (SSE2, part of every x86-64 CPU).
    #[inline(always)]
    pub fn sum_sse2(a: __m128i) -> i32 {
        let mut lanes = [0i32; 4];
        // SAFETY: a 16-byte store into a 16-byte array.
        unsafe { _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, a) };
        lanes.iter().sum()
    }
}

/// The 8 lanes in one 256-bit AVX register, natively on CPUs that have it: the same lane-wise
/// multiplies and adds as the portable loop (no FMA), so the same bits in half the instructions.
#[cfg(target_arch = "x86_64")]
mod avx {
    use core::arch::x86_64::*;

    /// std caches the CPUID answer: this is one load and a bit test.
    #[inline(always)]
    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx")
    }

    #[inline]
    #[target_feature(enable = "avx")]
    fn step<const L2: bool>(acc: __m256, x: __m256, y: __m256) -> __m256 {
        let t = if L2 {
            let d = _mm256_sub_ps(x, y);
            _mm256_mul_ps(d, d)
        } else {
            _mm256_mul_ps(x, y)
        };
        _mm256_add_ps(acc, t)
    }

    /// One row against one query, whole: as [`four`], for one row.
    ///
    /// # Safety
    /// The CPU must have AVX. `a` and `b` hold the same multiple of 8 floats.
    #[target_feature(enable = "avx")]
    pub unsafe fn one<const L2: bool>(a: &[f32], b: &[f32], tail: f32) -> f32 {
        let n = a.len().min(b.len()) / 8 * 8;
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 ≤ n ≤ both lengths; loadu needs no alignment.
            let (x, y) = unsafe { (_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i))) };
            acc = step::<L2>(acc, x, y);
            i += 8;
        }
        // [a0+a1, a2+a3, ..| a4+a5, a6+a7, ..] → [(a0+a1)+(a2+a3) ..| (a4+a5)+(a6+a7) ..].
        let pairs = _mm256_hadd_ps(acc, acc);
        let quads = _mm256_hadd_ps(pairs, pairs);
        let sum = _mm_add_ss(_mm256_castps256_ps128(quads), _mm256_extractf128_ps::<1>(quads));
        _mm_cvtss_f32(_mm_add_ss(sum, _mm_set_ss(tail)))
    }

    /// Four rows against one query, whole: the lanes, then [`finish`]. Bit-identical to the
    /// portable path, without storing the lanes to memory.
    ///
    /// # Safety
    /// The CPU must have AVX. Every row holds at least `q.len()` floats, a multiple of 8.
    #[target_feature(enable = "avx")]
    pub unsafe fn four<const L2: bool>(rows: [&[f32]; 4], q: &[f32], tails: [f32; 4]) -> [f32; 4] {
        let n = q.len() / 8 * 8;
        assert!(rows.iter().all(|r| r.len() >= n));
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 ≤ n ≤ every length (asserted above); loadu needs no alignment.
            unsafe {
                let y = _mm256_loadu_ps(q.as_ptr().add(i));
                for r in 0..4 {
                    acc[r] = step::<L2>(acc[r], _mm256_loadu_ps(rows[r].as_ptr().add(i)), y);
                }
            }
            i += 8;
        }
        finish(acc, tails)
    }

    const BG: usize = 3;

    /// [`super::dot_block`] on a contiguous block of rows of `dim` floats (`dim` ≥ 8).
    ///
    /// # Safety
    /// The CPU must have AVX. `rows` holds whole rows, every query `dim` floats, and `out` at
    /// least rows × queries floats.
    #[target_feature(enable = "avx")]
    pub unsafe fn dot_block(rows: &[f32], dim: usize, queries: &[&[f32]], out: &mut [f32]) {
        let count = rows.len() / dim;
        let mut q = 0;
        while q + BG <= queries.len() {
            // SAFETY: as this function's.
            unsafe { block_group::<BG>(rows, dim, core::array::from_fn(|g| queries[q + g]), &mut out[q * count..]) };
            q += BG;
        }
        while q < queries.len() {
            // SAFETY: as this function's.
            unsafe { block_group::<1>(rows, dim, [queries[q]], &mut out[q * count..]) };
            q += 1;
        }
    }

    /// G queries against every row of the block: four rows at a time, each of their 8-float
    /// chunks loaded once and multiplied by the G queries' chunks (4·G chains in flight), summed
    /// in [`super::dot`]'s order; the rows left over after the fours one by one.
    #[inline]
    // Registers indexed by row and query read clearer than zipped iterators.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx")]
    unsafe fn block_group<const G: usize>(rows: &[f32], dim: usize, queries: [&[f32]; G], out: &mut [f32]) {
        let count = rows.len() / dim;
        let whole = dim / 8 * 8;
        assert!(dim >= 8 && out.len() >= G * count && queries.iter().all(|q| q.len() == dim));
        let fours = count / 4 * 4;
        let base = rows.as_ptr();
        let mut r = 0;
        while r < fours {
            let mut acc = [[_mm256_setzero_ps(); 4]; G];
            let mut i = 0;
            while i < whole {
                // SAFETY: rows r..r + 4 ≤ count are whole rows and i + 8 ≤ whole ≤ dim.
                unsafe {
                    let mut y = [_mm256_setzero_ps(); G];
                    for g in 0..G {
                        y[g] = _mm256_loadu_ps(queries[g].as_ptr().add(i));
                    }
                    for k in 0..4 {
                        let x = _mm256_loadu_ps(base.add((r + k) * dim + i));
                        for g in 0..G {
                            acc[g][k] = _mm256_add_ps(acc[g][k], _mm256_mul_ps(x, y[g]));
                        }
                    }
                }
                i += 8;
            }
            for g in 0..G {
                let mut tails = [0.0f32; 4];
                for (k, t) in tails.iter_mut().enumerate() {
                    let row = &rows[(r + k) * dim..(r + k + 1) * dim];
                    for (x, y) in row[whole..].iter().zip(&queries[g][whole..]) {
                        *t += x * y;
                    }
                }
                out[g * count + r..g * count + r + 4].copy_from_slice(&finish(acc[g], tails));
            }
            r += 4;
        }
        for r in fours..count {
            for g in 0..G {
                out[g * count + r] = super::dot(&rows[r * dim..(r + 1) * dim], queries[g]);
            }
        }
    }

    /// Four rows' lanes summed as [`super::reduce`] does, by horizontal adds (each adds two
    /// neighbouring lanes, as the scalar code does): [r0: a0+a1, a2+a3, r1: a0+a1, a2+a3 | r0:
    /// a4+a5, a6+a7, r1: a4+a5, a6+a7], the same for r2, r3; then [r0..r3: (a0+a1)+(a2+a3) |
    /// r0..r3: (a4+a5)+(a6+a7)]; the two halves added; then the tails.
    #[inline]
    #[target_feature(enable = "avx")]
    fn finish(acc: [__m256; 4], tails: [f32; 4]) -> [f32; 4] {
        let pairs01 = _mm256_hadd_ps(acc[0], acc[1]);
        let pairs23 = _mm256_hadd_ps(acc[2], acc[3]);
        let quads = _mm256_hadd_ps(pairs01, pairs23);
        let sums = _mm_add_ps(_mm256_castps256_ps128(quads), _mm256_extractf128_ps::<1>(quads));
        let mut out = [0.0f32; 4];
        // SAFETY: `tails` and `out` hold 4 floats; loadu/storeu need no alignment.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), _mm_add_ps(sums, _mm_loadu_ps(tails.as_ptr()))) };
        out
    }
}

/// Two f32x4 registers = the 8 lanes above (no fused multiply-add, as in the scalar code).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) mod simd {
    use core::arch::wasm32::*;

    pub type Acc = (v128, v128);

    #[inline(always)]
    pub fn zero() -> Acc {
        (f32x4_splat(0.0), f32x4_splat(0.0))
    }

    #[inline(always)]
    fn load(x: &[f32]) -> (v128, v128) {
        // SAFETY: x has exactly 8 f32s (a chunks_exact(8) chunk); v128_load is unaligned-safe.
        unsafe { (v128_load(x.as_ptr() as *const v128), v128_load(x.as_ptr().add(4) as *const v128)) }
    }

    #[inline(always)]
    pub fn mul_add(acc: Acc, x: &[f32], y: &[f32]) -> Acc {
        let ((x0, x1), (y0, y1)) = (load(x), load(y));
        (f32x4_add(acc.0, f32x4_mul(x0, y0)), f32x4_add(acc.1, f32x4_mul(x1, y1)))
    }

    #[inline(always)]
    pub fn sq_diff_add(acc: Acc, x: &[f32], y: &[f32]) -> Acc {
        let ((x0, x1), (y0, y1)) = (load(x), load(y));
        let (d0, d1) = (f32x4_sub(x0, y0), f32x4_sub(x1, y1));
        (f32x4_add(acc.0, f32x4_mul(d0, d0)), f32x4_add(acc.1, f32x4_mul(d1, d1)))
    }

    /// The lane sums of four i32x4 vectors, as one array: two rounds of shuffles and adds instead
    /// of four lane extractions and three adds per vector (integer sums: exact in any order).
    #[inline(always)]
    pub fn lane_sums_i32([a, b, c, d]: [v128; 4]) -> [i32; 4] {
        // (a0 + a2, b0 + b2, a1 + a3, b1 + b3), and the same for c and d.
        let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
        let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
        let sums = i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd));
        [i32x4_extract_lane::<0>(sums), i32x4_extract_lane::<1>(sums), i32x4_extract_lane::<2>(sums), i32x4_extract_lane::<3>(sums)]
    }

    #[inline(always)]
    pub fn to_array(acc: Acc) -> [f32; 8] {
        [
            f32x4_extract_lane::<0>(acc.0),
            f32x4_extract_lane::<1>(acc.0),
            f32x4_extract_lane::<2>(acc.0),
            f32x4_extract_lane::<3>(acc.0),
            f32x4_extract_lane::<0>(acc.1),
            f32x4_extract_lane::<1>(acc.1),
            f32x4_extract_lane::<2>(acc.1),
            f32x4_extract_lane::<3>(acc.1),
        ]
    }
}

/// Fraction of `truth` found in `found` (recall@K with K = truth.len()).
pub fn recall(found: &[u32], truth: &[u32]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    truth.iter().filter(|t| found.contains(t)).count() as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_l2_match_naive() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..19).map(|i| (i as f32).sin()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
        let naive_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((l2(&a, &b) - naive_l2).abs() < 1e-3);
    }

    /// The summation order every build must follow, written out lane by lane in plain Rust.
    fn in_the_declared_order(a: &[f32], b: &[f32], squared_difference: bool) -> f32 {
        let t = |x: f32, y: f32| if squared_difference { (x - y) * (x - y) } else { x * y };
        let n = a.len() / 8 * 8;
        let mut lanes = [0.0f32; 8];
        for i in (0..n).step_by(8) {
            for j in 0..8 {
                lanes[j] += t(a[i + j], b[i + j]);
            }
        }
        let mut tail = 0.0f32;
        for i in n..a.len() {
            tail += t(a[i], b[i]);
        }
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])) + tail
    }

    #[test]
    fn every_kernel_sums_in_the_declared_order_bit_for_bit() {
        // Natively on an AVX machine this checks the AVX kernels, elsewhere the portable loops and
        // in wasm the simd128 ones: all must give these bits, so results agree across them.
        for len in [0, 1, 7, 8, 9, 31, 64, 65, 100] {
            let rows: Vec<Vec<f32>> = (0..4).map(|r| (0..len).map(|i| ((i * 13 + r * 5) % 17) as f32 * 0.31 - 2.3).collect()).collect();
            let q: Vec<f32> = (0..len).map(|i| (i as f32 * 1.7).sin() * 1.9).collect();
            let refs = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
            let (d4, l4) = (dot4(refs, &q), l2_4(refs, &q));
            for r in 0..4 {
                let (want_dot, want_l2) = (in_the_declared_order(&rows[r], &q, false), in_the_declared_order(&rows[r], &q, true));
                assert_eq!(dot(&rows[r], &q).to_bits(), want_dot.to_bits(), "dot, length {len}");
                assert_eq!(l2(&rows[r], &q).to_bits(), want_l2.to_bits(), "l2, length {len}");
                assert_eq!(d4[r].to_bits(), want_dot.to_bits(), "dot4, length {len}");
                assert_eq!(l4[r].to_bits(), want_l2.to_bits(), "l2_4, length {len}");
            }
            // The block kernel: 4 + 1 rows (a row outside the fours) against 1 to 5 queries
            // (whole groups and a rest).
            if len > 0 {
                let mut items = Vectors::new(len);
                rows.iter().chain([&q]).for_each(|r| items.push(r));
                let queries: Vec<Vec<f32>> = (0..5).map(|j| q.iter().map(|y| y * (0.3 - j as f32) + 0.1).collect()).collect();
                for count in 1..=5 {
                    let batch: Vec<&[f32]> = queries[..count].iter().map(|q| &q[..]).collect();
                    let mut out = vec![0.0f32; 5 * count];
                    dot_block(&items, 0, 5, &batch, &mut out);
                    for (j, query) in batch.iter().enumerate() {
                        for r in 0..5 {
                            let want = in_the_declared_order(items.row(r), query, false);
                            assert_eq!(out[j * 5 + r].to_bits(), want.to_bits(), "dot_block, length {len}, query {j} of {count}, row {r}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dot4_and_l2_4_are_four_dots_and_four_l2s() {
        let rows: Vec<Vec<f32>> = (0..4).map(|r| (0..21).map(|i| ((i * 7 + r * 3) % 11) as f32 * 0.37 - 1.1).collect()).collect();
        let q: Vec<f32> = (0..21).map(|i| (i as f32 * 0.9).cos()).collect();
        let four = dot4([&rows[0], &rows[1], &rows[2], &rows[3]], &q);
        let four_l2 = l2_4([&rows[0], &rows[1], &rows[2], &rows[3]], &q);
        for r in 0..4 {
            assert_eq!(four[r].to_bits(), dot(&rows[r], &q).to_bits());
            assert_eq!(four_l2[r].to_bits(), l2(&rows[r], &q).to_bits());
        }
    }

    #[test]
    fn augmentation_preserves_the_mips_order() {
        let mut v = Vectors::new(3);
        for row in [[1.0, 0.0, 0.0], [0.5, 0.5, 0.1], [2.0, -1.0, 0.3], [0.1, 0.1, 0.1]] {
            v.push(&row);
        }
        let aug = v.augmented();
        let q = [0.3f32, 0.9, -0.2];
        let q_aug = [0.3f32, 0.9, -0.2, 0.0];
        let mut by_ip: Vec<usize> = (0..4).collect();
        by_ip.sort_by(|&i, &j| dot(v.row(j), &q).total_cmp(&dot(v.row(i), &q)));
        let mut by_l2: Vec<usize> = (0..4).collect();
        by_l2.sort_by(|&i, &j| l2(aug.row(i), &q_aug).total_cmp(&l2(aug.row(j), &q_aug)));
        assert_eq!(by_ip, by_l2);
        // Every augmented vector has the same norm φ.
        let n0 = dot(aug.row(0), aug.row(0));
        for i in 1..4 {
            assert!((dot(aug.row(i), aug.row(i)) - n0).abs() < 1e-5);
        }
    }
}
