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
/// and in wasm) that LLVM turns into SIMD.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// Squared L2 distance, same structure as [`dot`].
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            let d = x[j] - y[j];
            acc[j] += d * d;
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += (x - y) * (x - y);
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
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
