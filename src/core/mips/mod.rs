//! Maximum inner product search (MIPS): the top-K items by f(x)·β_a.
//!
//! [`exact`] scans the whole catalogue (O(P·d), memory-bound when vectorised); [`hnsw`] is a
//! graph index (Malkov & Yashunin) searched greedily, sub-linear in P, for inner product directly
//! or for L2 distance on the MIPS→NN augmented vectors x̃ = [x, √(φ² − ‖x‖²)], q̃ = [q, 0]
//! (Bachrach et al. 2014): ‖x̃ − q̃‖² = φ² + ‖q‖² − 2 x·q, so the nearest x̃ is the largest x·q.

pub mod data;
pub mod exact;
pub mod hnsw;
pub mod lesson;

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
/// and in wasm) that LLVM vectorises natively. The browser build is optimised for size, which
/// turns the vectoriser off, so there the same lanes are written with simd128 intrinsics.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let acc = lanes8(ca, cb, |x, y| x * y, simd::mul_add);
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// Squared L2 distance, same structure as [`dot`].
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let acc = lanes8(ca, cb, |x, y| (x - y) * (x - y), simd::sq_diff_add);
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += (x - y) * (x - y);
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
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

/// Four rows against one query, term x·y (or (x − y)² when `L2`), each row in [`dot`]'s order.
#[inline(always)]
fn four<const L2: bool>(rows: [&[f32]; 4], q: &[f32]) -> [f32; 4] {
    let term = |x: f32, y: f32| if L2 { (x - y) * (x - y) } else { x * y };
    let n = q.len() / 8 * 8;
    let mut acc = [[0.0f32; 8]; 4];
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let mut v = [simd::zero(); 4];
        let mut i = 0;
        while i < n {
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
        let (r0, r1, r2, r3) = (&rows[0][..n], &rows[1][..n], &rows[2][..n], &rows[3][..n]);
        for ((((y, a), b), c), d) in
            q[..n].chunks_exact(8).zip(r0.chunks_exact(8)).zip(r1.chunks_exact(8)).zip(r2.chunks_exact(8)).zip(r3.chunks_exact(8))
        {
            for j in 0..8 {
                acc[0][j] += term(a[j], y[j]);
                acc[1][j] += term(b[j], y[j]);
                acc[2][j] += term(c[j], y[j]);
                acc[3][j] += term(d[j], y[j]);
            }
        }
    }
    let mut out = [0.0f32; 4];
    for r in 0..4 {
        let a = &acc[r];
        let mut tail = 0.0f32;
        for (x, y) in rows[r][n..].iter().zip(&q[n..]) {
            tail += term(*x, *y);
        }
        out[r] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + tail;
    }
    out
}

/// acc[j] += term(x[j], y[j]) over chunks of 8, lane by lane.
#[inline(always)]
fn lanes8<'a>(
    ca: std::slice::ChunksExact<'a, f32>,
    cb: std::slice::ChunksExact<'a, f32>,
    _term: impl Fn(f32, f32) -> f32,
    _vector: impl Fn(simd::Acc, &[f32], &[f32]) -> simd::Acc,
) -> [f32; 8] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let mut acc = simd::zero();
        for (x, y) in ca.zip(cb) {
            acc = _vector(acc, x, y);
        }
        simd::to_array(acc)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let mut acc = [0.0f32; 8];
        for (x, y) in ca.zip(cb) {
            for j in 0..8 {
                acc[j] += _term(x[j], y[j]);
            }
        }
        acc
    }
}

/// Two f32x4 registers = the 8 lanes above (no fused multiply-add, as in the scalar code).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
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

/// Natively the vectoriser does the work; this keeps the signatures the same.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod simd {
    pub type Acc = ();

    pub fn mul_add(_: Acc, _: &[f32], _: &[f32]) -> Acc {}

    pub fn sq_diff_add(_: Acc, _: &[f32], _: &[f32]) -> Acc {}
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
