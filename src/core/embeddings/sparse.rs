//! Sparse users × items matrices (CSR) and the row-major dense blocks they multiply.
//!
//! Every product here is a plain loop with a fixed summation order (rows ascending, then the
//! stored order within a row), so that native and wasm give the same bits. nalgebra's `DMatrix`
//! products are avoided on purpose: above 5×5 they go through `matrixmultiply`, whose x86 kernels
//! are picked at run time (AVX, FMA) and round differently from the wasm build.
//!
//! The products call a function that is never inlined once per row ([`combine_rows`],
//! [`scatter_row`]). A browser runs a wasm function first as quickly compiled baseline code, and
//! uses its optimised code only from the function's next call on (V8 has no on-stack replacement
//! for wasm): a product written as one loop runs once, for long, entirely in baseline code, which
//! made a page's first world build about twice as slow as its next ones. (`.ci/build` keeps
//! wasm-opt from inlining such a function back into its only caller.)

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// A dense matrix stored row after row (`data[r * cols + c]`). Rows are what the sparse products
/// read and write (one item's embedding, one user's projection), so they are contiguous.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseMatrix {
    pub rows: u32,
    pub cols: u32,
    pub data: Vec<f64>,
}

impl DenseMatrix {
    pub fn zeros(rows: u32, cols: u32) -> DenseMatrix {
        DenseMatrix { rows, cols, data: vec![0.0; rows as usize * cols as usize] }
    }

    pub fn identity(size: u32) -> DenseMatrix {
        let mut out = DenseMatrix::zeros(size, size);
        for i in 0..size {
            *out.get_mut(i, i) = 1.0;
        }
        out
    }

    #[inline]
    pub fn row(&self, r: u32) -> &[f64] {
        let w = self.cols as usize;
        &self.data[r as usize * w..(r as usize + 1) * w]
    }

    #[inline]
    pub fn row_mut(&mut self, r: u32) -> &mut [f64] {
        let w = self.cols as usize;
        &mut self.data[r as usize * w..(r as usize + 1) * w]
    }

    #[inline]
    pub fn get(&self, r: u32, c: u32) -> f64 {
        self.data[r as usize * self.cols as usize + c as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, r: u32, c: u32) -> &mut f64 {
        &mut self.data[r as usize * self.cols as usize + c as usize]
    }

    /// To nalgebra (column-major), for the small dense factorisations.
    pub fn to_nalgebra(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.rows as usize, self.cols as usize, &self.data)
    }

    pub fn from_nalgebra(m: &DMatrix<f64>) -> DenseMatrix {
        let (rows, cols) = m.shape();
        let mut out = DenseMatrix::zeros(rows as u32, cols as u32);
        for r in 0..rows {
            for c in 0..cols {
                out.data[r * cols + c] = m[(r, c)];
            }
        }
        out
    }

    /// self · other (plain loops, fixed order: see the module comment).
    pub fn mul(&self, other: &DenseMatrix) -> DenseMatrix {
        assert_eq!(self.cols, other.rows, "dense product: {}×{} · {}×{}", self.rows, self.cols, other.rows, other.cols);
        let mut out = DenseMatrix::zeros(self.rows, other.cols);
        for r in 0..self.rows {
            combine_rows(out.row_mut(r), (0..self.cols).zip(self.row(r).iter().copied()), other);
        }
        out
    }

    /// selfᵀ · other.
    pub fn transpose_mul(&self, other: &DenseMatrix) -> DenseMatrix {
        assert_eq!(self.rows, other.rows, "dense product: ({}×{})ᵀ · {}×{}", self.rows, self.cols, other.rows, other.cols);
        let mut out = DenseMatrix::zeros(self.cols, other.cols);
        for r in 0..self.rows {
            scatter_row(&mut out, (0..self.cols).zip(self.row(r).iter().copied()), other.row(r));
        }
        out
    }
}

/// out_row += Σ a · x row c over the (c, a) pairs, in their order (one row of a product, in a
/// function of its own: see the module's note).
#[inline(never)]
fn combine_rows(out_row: &mut [f64], terms: impl Iterator<Item = (u32, f64)>, x: &DenseMatrix) {
    for (c, a) in terms {
        axpy(out_row, a, x.row(c));
    }
}

/// out row c += a · x_row over the (c, a) pairs, in their order (one row of a transposed
/// product, in a function of its own: see the module's note).
#[inline(never)]
fn scatter_row(out: &mut DenseMatrix, terms: impl Iterator<Item = (u32, f64)>, x_row: &[f64]) {
    for (c, a) in terms {
        axpy(out.row_mut(c), a, x_row);
    }
}

/// y += a·x, element by element (each element its own sum: vectorising it changes no bit).
#[inline]
pub fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// x·y in index order.
#[inline]
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (a, b) in x.iter().zip(y) {
        s += a * b;
    }
    s
}

/// Compressed sparse rows: row r holds `col_ids[row_offsets[r]..row_offsets[r + 1]]` (ascending,
/// no duplicates) with `values` alongside. Ids and offsets are u32 on every platform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Csr {
    pub rows: u32,
    pub cols: u32,
    pub row_offsets: Vec<u32>,
    pub col_ids: Vec<u32>,
    pub values: Vec<f64>,
}

impl Csr {
    /// A 0/1 matrix from each row's column ids (sorted here; duplicates are a bug of the caller).
    pub fn from_rows(cols: u32, rows: &[Vec<u32>]) -> Csr {
        let mut out = Csr::with_capacity(cols, rows.iter().map(|r| r.len()).sum());
        for row in rows {
            let mut ids = row.clone();
            ids.sort_unstable();
            debug_assert!(ids.windows(2).all(|w| w[0] < w[1]), "duplicate column in a row");
            debug_assert!(ids.last().is_none_or(|&c| c < cols));
            out.push_row(ids.iter().map(|&c| (c, 1.0)));
        }
        out
    }

    /// An empty matrix with `cols` columns, to be filled by [`Csr::push_row`].
    pub fn with_capacity(cols: u32, nonzeros: usize) -> Csr {
        Csr { rows: 0, cols, row_offsets: vec![0], col_ids: Vec::with_capacity(nonzeros), values: Vec::with_capacity(nonzeros) }
    }

    /// Appends a row given as (column, value) pairs in ascending column order.
    pub fn push_row(&mut self, entries: impl IntoIterator<Item = (u32, f64)>) {
        for (c, v) in entries {
            self.col_ids.push(c);
            self.values.push(v);
        }
        assert!(self.col_ids.len() <= u32::MAX as usize, "more than 2³² non-zeros");
        self.row_offsets.push(self.col_ids.len() as u32);
        self.rows += 1;
    }

    pub fn nonzeros(&self) -> u32 {
        self.col_ids.len() as u32
    }

    #[inline]
    fn range(&self, r: u32) -> std::ops::Range<usize> {
        self.row_offsets[r as usize] as usize..self.row_offsets[r as usize + 1] as usize
    }

    /// Row r's column ids (ascending).
    #[inline]
    pub fn row_ids(&self, r: u32) -> &[u32] {
        &self.col_ids[self.range(r)]
    }

    #[inline]
    pub fn row_values(&self, r: u32) -> &[f64] {
        &self.values[self.range(r)]
    }

    pub fn row_len(&self, r: u32) -> u32 {
        self.row_offsets[r as usize + 1] - self.row_offsets[r as usize]
    }

    /// Whether (r, c) is stored (binary search in the row).
    pub fn contains(&self, r: u32, c: u32) -> bool {
        self.row_ids(r).binary_search(&c).is_ok()
    }

    /// Number of stored entries per column (for 0/1 matrices: the column's count).
    pub fn column_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.cols as usize];
        for &c in &self.col_ids {
            counts[c as usize] += 1;
        }
        counts
    }

    /// A·X for a dense X (cols × w, row-major): out row r = Σ_c a_rc · X row c.
    pub fn mul_dense(&self, x: &DenseMatrix) -> DenseMatrix {
        assert_eq!(self.cols, x.rows, "A·X: A is {}×{}, X has {} rows", self.rows, self.cols, x.rows);
        let mut out = DenseMatrix::zeros(self.rows, x.cols);
        for r in 0..self.rows {
            let range = self.range(r);
            combine_rows(out.row_mut(r), self.col_ids[range.clone()].iter().copied().zip(self.values[range].iter().copied()), x);
        }
        out
    }

    /// Aᵀ·X for a dense X (rows × w, row-major), without building Aᵀ: row r of X is scattered
    /// into the output rows of its columns (rows ascending, so each output row sums in the same
    /// order as a product with a stored transpose would).
    pub fn transpose_mul_dense(&self, x: &DenseMatrix) -> DenseMatrix {
        assert_eq!(self.rows, x.rows, "Aᵀ·X: A is {}×{}, X has {} rows", self.rows, self.cols, x.rows);
        let mut out = DenseMatrix::zeros(self.cols, x.cols);
        for r in 0..self.rows {
            let range = self.range(r);
            scatter_row(&mut out, self.col_ids[range.clone()].iter().copied().zip(self.values[range].iter().copied()), x.row(r));
        }
        out
    }

    /// Aᵀ as a CSR matrix (a counting sort by column: rows stay ascending within each column).
    pub fn transpose(&self) -> Csr {
        let counts = self.column_counts();
        let mut row_offsets = Vec::with_capacity(self.cols as usize + 1);
        row_offsets.push(0u32);
        for c in &counts {
            row_offsets.push(row_offsets.last().unwrap() + c);
        }
        let mut next: Vec<u32> = row_offsets[..self.cols as usize].to_vec();
        let mut col_ids = vec![0u32; self.col_ids.len()];
        let mut values = vec![0.0; self.values.len()];
        for r in 0..self.rows {
            let range = self.range(r);
            for (&c, &v) in self.col_ids[range.clone()].iter().zip(&self.values[range]) {
                let slot = next[c as usize] as usize;
                col_ids[slot] = r;
                values[slot] = v;
                next[c as usize] += 1;
            }
        }
        Csr { rows: self.cols, cols: self.rows, row_offsets, col_ids, values }
    }

    /// The top-left `rows × cols` block (the first users × the first items), still sparse: the
    /// sub-matrix whose spectrum can be computed exactly for comparison.
    pub fn block(&self, rows: u32, cols: u32) -> Csr {
        let rows = rows.min(self.rows);
        let cols = cols.min(self.cols);
        let mut out = Csr::with_capacity(cols, 0);
        for r in 0..rows {
            let ids = self.row_ids(r);
            let end = ids.partition_point(|&c| c < cols);
            out.push_row(ids[..end].iter().copied().zip(self.row_values(r)[..end].iter().copied()));
        }
        out
    }

    /// The whole matrix as a dense nalgebra matrix: for small matrices only (see [`Csr::block`]).
    pub fn to_dense(&self) -> DMatrix<f64> {
        let mut out = DMatrix::zeros(self.rows as usize, self.cols as usize);
        for r in 0..self.rows {
            for (&c, &v) in self.row_ids(r).iter().zip(self.row_values(r)) {
                out[(r as usize, c as usize)] = v;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::{self, Stream};

    fn random_sparse(rows: u32, cols: u32, per_row: u32, seed: u64) -> Csr {
        let mut rng = rng::seeded(seed, Stream::Sweep);
        let mut out = Csr::with_capacity(cols, 0);
        for _ in 0..rows {
            let mut ids: Vec<u32> = (0..per_row).map(|_| rng::index(&mut rng, cols)).collect();
            ids.sort_unstable();
            ids.dedup();
            let entries: Vec<(u32, f64)> = ids.iter().map(|&c| (c, rng::normal(&mut rng))).collect();
            out.push_row(entries);
        }
        out
    }

    fn random_dense(rows: u32, cols: u32, seed: u64) -> DenseMatrix {
        let mut rng = rng::seeded(seed, Stream::Sweep);
        let mut out = DenseMatrix::zeros(rows, cols);
        out.data.iter_mut().for_each(|x| *x = rng::normal(&mut rng));
        out
    }

    #[test]
    fn sparse_products_match_dense_ones() {
        let a = random_sparse(37, 23, 6, 1);
        let dense = a.to_dense();
        let x = random_dense(23, 5, 2);
        let y = random_dense(37, 5, 3);
        let ax = DenseMatrix::from_nalgebra(&(&dense * x.to_nalgebra()));
        let aty = DenseMatrix::from_nalgebra(&(dense.transpose() * y.to_nalgebra()));
        let close = |p: &DenseMatrix, q: &DenseMatrix| p.data.iter().zip(&q.data).all(|(u, v)| (u - v).abs() < 1e-12);
        assert!(close(&a.mul_dense(&x), &ax));
        assert!(close(&a.transpose_mul_dense(&y), &aty));
        // Through the stored transpose: the same sums in the same order, so the same bits.
        assert_eq!(a.transpose().mul_dense(&y), a.transpose_mul_dense(&y));
        assert_eq!(a.transpose().transpose(), a);
        // The dense helpers too.
        let b = random_dense(5, 4, 4);
        let xb = DenseMatrix::from_nalgebra(&(x.to_nalgebra() * b.to_nalgebra()));
        assert!(close(&x.mul(&b), &xb));
        let xtx = DenseMatrix::from_nalgebra(&(x.to_nalgebra().transpose() * x.to_nalgebra()));
        assert!(close(&x.transpose_mul(&x), &xtx));
    }

    #[test]
    fn block_and_contains() {
        let a = random_sparse(30, 40, 8, 5);
        let block = a.block(10, 15);
        let dense = a.to_dense();
        assert_eq!(block.to_dense(), dense.view((0, 0), (10, 15)).into_owned());
        for r in 0..30 {
            for c in 0..40 {
                assert_eq!(a.contains(r, c), dense[(r as usize, c as usize)] != 0.0);
            }
        }
    }
}
