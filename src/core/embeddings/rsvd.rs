//! Randomized SVD (Halko, Martinsson & Tropp 2011) of a sparse matrix, the item embeddings it
//! gives, the PMI co-occurrence variant, and the exact spectrum of small matrices for comparison.
//!
//! For A (n × m), rank k, oversampling p, q power iterations, l = k + p:
//!
//! Ω ~ N(0, 1)^{m×l};  Y = AΩ;  Q = orth(Y);  q times { Z = orth(AᵀQ); Q = orth(AZ) };
//! Bᵀ = AᵀQ (m × l);  B = U_B Σ Vᵀ;  A ≈ (Q U_B) Σ Vᵀ, truncated to k.
//!
//! Only A's non-zeros and dense n × l, m × l and l × l blocks are ever stored. Between the power
//! iteration's products only the span matters: there orth is one Cholesky QR ([`basis`]); the
//! last one, which B is built from, is two (orthonormal to rounding when κ(Y) < 10⁸; [`basis`]
//! falls back to Householder far below that). The SVD of the small B is taken from
//! the eigen-decomposition of the l × l Gram
//! matrix B·Bᵀ = U_B Σ² U_Bᵀ, then V = BᵀU_B Σ⁻¹, rather than from nalgebra's SVD: that one calls
//! `f64::hypot`, which is the platform's C library natively and a different implementation in
//! wasm (they disagree in the last bit on about one input in eight), while QR and the symmetric
//! eigen-decomposition only use +, ×, ÷ and √. Squaring costs accuracy only for singular values
//! below ~10⁻⁸ σ₁, far below anything kept here.

use super::sparse::{Csr, DenseMatrix};
use crate::core::math::ln;
use crate::core::progress::Progress;
use crate::core::rng::{self, Stream};
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RsvdParams {
    /// k: singular triplets kept.
    pub rank: u32,
    /// p: extra random directions (the sketch has l = k + p columns, capped at min(n, m)).
    pub oversampling: u32,
    /// q: power iterations (each multiplies by AᵀA once more: errors shrink like (σ_{l+1}/σ_j)^{2q+1}).
    pub power_iterations: u32,
    pub seed: u64,
}

impl RsvdParams {
    pub fn new(rank: u32, oversampling: u32, power_iterations: u32, seed: u64) -> RsvdParams {
        RsvdParams { rank, oversampling, power_iterations, seed }
    }
}

/// A rank-k factorisation A ≈ U diag(σ) Vᵀ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rsvd {
    /// σ_1 ≥ … ≥ σ_k ≥ 0.
    pub singular_values: Vec<f64>,
    /// V: m × k (one row per column of A: per item).
    pub right: DenseMatrix,
    /// U: n × k, if asked for.
    pub left: Option<DenseMatrix>,
}

/// The randomized SVD of A. Errors on k = 0 or k > min(n, m). Reports progress after each
/// product with A (2q + 2 of them, the bulk of the cost: O(nnz · l) each).
pub fn randomized_svd(a: &Csr, params: &RsvdParams, want_left: bool, progress: &mut dyn Progress) -> Result<Rsvd, String> {
    let k = params.rank;
    let smaller = a.rows.min(a.cols);
    if k == 0 || k > smaller {
        return Err(format!("rank must be between 1 and min(rows, columns) = {smaller} (got {k})"));
    }
    let l = (k + params.oversampling).min(smaller);
    let steps = 2.0 * params.power_iterations as f64 + 2.0;
    let mut done = 0.0;
    let mut tick = |progress: &mut dyn Progress, stage: &str| {
        done += 1.0;
        progress.report(done / steps, stage);
    };

    // Ω is drawn row after row, so the first items' rows do not depend on the number of items.
    let mut omega_rng = rng::seeded(params.seed, Stream::Embeddings);
    let mut omega = DenseMatrix::zeros(a.cols, l);
    omega.data.iter_mut().for_each(|x| *x = rng::normal(&mut omega_rng));

    progress.report(0.0, "rSVD: sketch Y = AΩ");
    let mut y = a.mul_dense(&omega);
    tick(progress, "rSVD: sketch Y = AΩ");
    for it in 0..params.power_iterations {
        let z = a.transpose_mul_dense(&basis(&y));
        tick(progress, &format!("rSVD: power iteration {}/{}", it + 1, params.power_iterations));
        y = a.mul_dense(&basis(&z));
        tick(progress, &format!("rSVD: power iteration {}/{}", it + 1, params.power_iterations));
    }
    // B = QᵀA needs Q orthonormal to rounding: a second Cholesky QR gives that (CholQR2).
    let q = basis(&basis(&y));
    let b_transposed = a.transpose_mul_dense(&q); // Bᵀ = AᵀQ, m × l
    let (singular_values, u_b, right) = small_svd(&b_transposed, k);
    let left = want_left.then(|| q.mul(&u_b));
    tick(progress, "rSVD: SVD of the small B");
    Ok(Rsvd { singular_values, right, left })
}

/// Orthonormal columns spanning those of x (Householder QR; x has at least as many rows as
/// columns). A rank-deficient x still gives orthonormal columns (zero reflections are skipped).
pub fn orthonormalize(x: &DenseMatrix) -> DenseMatrix {
    assert!(x.rows >= x.cols, "orthonormalize: {}×{} has more columns than rows", x.rows, x.cols);
    DenseMatrix::from_nalgebra(&x.to_nalgebra().qr().q())
}

/// Columns spanning those of x, well conditioned but not necessarily orthonormal: what a power
/// iteration needs between its products (only the span is carried on). Applied twice, orthonormal
/// to rounding (Yamamoto et al. 2015, CholeskyQR2).
///
/// Cholesky QR: the Gram matrix G = XᵀX in one pass over the rows, G = RᵀR, then X R⁻¹ in a
/// second pass. About a quarter of Householder's arithmetic (which also forms Q from its
/// reflections), and row by row, so each pass streams the n × l block once (and the browser runs
/// the per-row functions as optimised code from their first rows on). When X is ill
/// conditioned (a pivot of R² below 10⁻¹⁰ of its column's squared norm, so κ(X) ≳ 10⁵, or
/// X rank deficient), it falls back to Householder.
pub fn basis(x: &DenseMatrix) -> DenseMatrix {
    let l = x.cols as usize;
    let mut gram = vec![0.0; l * l];
    for r in 0..x.rows {
        add_outer_upper(&mut gram, x.row(r));
    }
    let Some(r_inverse) = inverse_cholesky_factor(&gram, l) else { return orthonormalize(x) };
    let mut out = DenseMatrix::zeros(x.rows, x.cols);
    for r in 0..x.rows {
        times_upper(out.row_mut(r), x.row(r), &r_inverse);
    }
    out
}

/// R⁻¹ (row-major, upper triangular) for G = RᵀR given G's upper triangle; None when a pivot
/// R_jj² falls below 10⁻¹⁰ G_jj (or G is not positive definite).
fn inverse_cholesky_factor(gram: &[f64], l: usize) -> Option<Vec<f64>> {
    let mut r = vec![0.0; l * l];
    for j in 0..l {
        let pivot = gram[j * l + j] - (0..j).map(|k| r[k * l + j] * r[k * l + j]).sum::<f64>();
        if !(pivot > 1e-10 * gram[j * l + j]) {
            return None;
        }
        let r_jj = pivot.sqrt();
        r[j * l + j] = r_jj;
        for c in j + 1..l {
            r[j * l + c] = (gram[j * l + c] - (0..j).map(|k| r[k * l + j] * r[k * l + c]).sum::<f64>()) / r_jj;
        }
    }
    // Back substitution, column by column of the identity: R W = I.
    let mut w = vec![0.0; l * l];
    for c in 0..l {
        for i in (0..=c).rev() {
            let above: f64 = (i + 1..=c).map(|k| r[i * l + k] * w[k * l + c]).sum();
            w[i * l + c] = (if i == c { 1.0 } else { 0.0 } - above) / r[i * l + i];
        }
    }
    Some(w)
}

/// out = row · W for an upper-triangular W (row-major, `row.len()` columns).
#[inline(never)]
fn times_upper(out: &mut [f64], row: &[f64], w: &[f64]) {
    let l = row.len();
    for (k, &x) in row.iter().enumerate() {
        for (o, &w_kc) in out[k..].iter_mut().zip(&w[k * l + k..(k + 1) * l]) {
            *o += x * w_kc;
        }
    }
}

/// The top k singular triplets of B from Bᵀ (m × l): σ, U_B (l × k) and V (m × k). Signs are
/// fixed so that the largest entry of each column of V is positive (ties: the first), so that
/// embeddings do not flip between runs with different q.
fn small_svd(b_transposed: &DenseMatrix, k: u32) -> (Vec<f64>, DenseMatrix, DenseMatrix) {
    let l = b_transposed.cols;
    // Gram G = B Bᵀ = (Bᵀ)ᵀ Bᵀ, upper triangle then mirrored (exactly symmetric).
    // Row-major l × l; each row of Bᵀ added by a call of its own (see `sparse`'s module note).
    let mut upper = vec![0.0; l as usize * l as usize];
    for j in 0..b_transposed.rows {
        add_outer_upper(&mut upper, b_transposed.row(j));
    }
    let mut gram = DMatrix::<f64>::zeros(l as usize, l as usize);
    for a in 0..l as usize {
        for b in a..l as usize {
            gram[(a, b)] = upper[a * l as usize + b];
            gram[(b, a)] = upper[a * l as usize + b];
        }
    }
    let eigen = gram.symmetric_eigen();
    let mut order: Vec<usize> = (0..l as usize).collect();
    order.sort_by(|&x, &y| eigen.eigenvalues[y].total_cmp(&eigen.eigenvalues[x]).then(x.cmp(&y)));

    let mut singular_values = Vec::with_capacity(k as usize);
    let mut u_b = DenseMatrix::zeros(l, k);
    for (c, &e) in order.iter().take(k as usize).enumerate() {
        singular_values.push(eigen.eigenvalues[e].max(0.0).sqrt());
        for r in 0..l {
            *u_b.get_mut(r, c as u32) = eigen.eigenvectors[(r as usize, e)];
        }
    }
    // V = Bᵀ U_B, each column divided by its norm (= σ in exact arithmetic, and robust when σ ≈ 0:
    // a zero column stays zero).
    let mut right = b_transposed.mul(&u_b);
    for c in 0..k {
        let norm = (0..right.rows).map(|r| right.get(r, c) * right.get(r, c)).sum::<f64>().sqrt();
        let mut largest = 0.0f64;
        for r in 0..right.rows {
            let v = right.get(r, c);
            if v.abs() > largest.abs() {
                largest = v;
            }
        }
        let scale = if norm > 0.0 { largest.signum() / norm } else { 0.0 };
        for r in 0..right.rows {
            *right.get_mut(r, c) *= scale;
        }
        if largest < 0.0 {
            for r in 0..l {
                *u_b.get_mut(r, c) = -u_b.get(r, c);
            }
        }
    }
    (singular_values, u_b, right)
}

/// upper += row rowᵀ on and above the diagonal (row-major, `row.len()` columns).
#[inline(never)]
fn add_outer_upper(upper: &mut [f64], row: &[f64]) {
    let l = row.len();
    for a in 0..l {
        let ra = row[a];
        for (g, &rb) in upper[a * l + a..(a + 1) * l].iter_mut().zip(&row[a..]) {
            *g += ra * rb;
        }
    }
}

/// Item embeddings from a factorisation: row i of V·diag(√σ) (items × k, f64).
///
/// The √σ split is symmetric: A ≈ (U√Σ)(V√Σ)ᵀ, so user and item factors carry the same scale and
/// a dot product of the two reproduces A's rank-k approximation. A user represented by the mean
/// of their items' rows then scores item j by Σ_i∈history (VΣVᵀ)_ij / |history|: item–item
/// similarities weighted by σ, dominated by the leading directions.
pub fn item_embeddings(svd: &Rsvd) -> DenseMatrix {
    scale_by_sqrt_sigma(&svd.right, &svd.singular_values)
}

fn scale_by_sqrt_sigma(vectors: &DenseMatrix, singular_values: &[f64]) -> DenseMatrix {
    let mut out = vectors.clone();
    let roots: Vec<f64> = singular_values.iter().map(|s| s.sqrt()).collect();
    for r in 0..out.rows {
        out.row_mut(r).iter_mut().zip(&roots).for_each(|(x, s)| *x *= s);
    }
    out
}

/// Limits of the PMI variant: the co-occurrence matrix is built explicitly, which costs
/// Σ_u n_u² (every pair of items of every user) and stores up to items² entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmiParams {
    /// The shift of shifted positive PMI: keep max(PMI − ln shift, 0). 1 = plain positive PMI.
    pub shift: f64,
    /// Refuse when Σ_u n_u² (item pairs to count) exceeds this.
    pub max_pairs: u64,
    /// Refuse when the co-occurrence matrix would have more non-zeros than this.
    pub max_nonzeros: u64,
}

impl Default for PmiParams {
    fn default() -> PmiParams {
        // ~50 M pair visits (about a second natively) and ≤ 5 M stored entries (~60 MB).
        PmiParams { shift: 1.0, max_pairs: 50_000_000, max_nonzeros: 5_000_000 }
    }
}

/// The item × item shifted positive PMI matrix of a users × items interaction matrix:
/// C = AᵀA without its diagonal (an item co-occurring with itself says nothing),
/// c_i = Σ_j C_ij, total = Σ_i c_i, PMI_ij = ln(C_ij · total / (c_i c_j)), kept when
/// PMI − ln(shift) > 0. Errors (with the sizes) when over the budgets of `params`.
pub fn ppmi_matrix(interactions: &Csr, params: &PmiParams) -> Result<Csr, String> {
    if !(params.shift > 0.0) {
        return Err(format!("PMI shift must be > 0 (got {})", params.shift));
    }
    let pairs: u64 = (0..interactions.rows).map(|u| interactions.row_len(u) as u64 * interactions.row_len(u) as u64).sum();
    if pairs > params.max_pairs {
        return Err(format!(
            "PMI: counting co-occurrences would visit {pairs} item pairs, over the budget of {} (fewer users, or a sparser world)",
            params.max_pairs
        ));
    }
    let m = interactions.cols;
    let by_item = interactions.transpose();
    // Gustavson's row-by-row product: row i of C = Σ_{u ∋ i} row u of A, in a dense accumulator.
    let mut accumulator = vec![0.0; m as usize];
    // stamp[j] == i + 1 when column j of row i is already in `touched`.
    let mut stamp = vec![0u32; m as usize];
    let mut touched: Vec<u32> = Vec::new();
    let mut cooccurrence = Csr::with_capacity(m, 0);
    for i in 0..m {
        for (&u, &a_ui) in by_item.row_ids(i).iter().zip(by_item.row_values(i)) {
            for (&j, &a_uj) in interactions.row_ids(u).iter().zip(interactions.row_values(u)) {
                if j == i {
                    continue;
                }
                if stamp[j as usize] != i + 1 {
                    stamp[j as usize] = i + 1;
                    touched.push(j);
                }
                accumulator[j as usize] += a_ui * a_uj;
            }
        }
        touched.sort_unstable();
        if cooccurrence.col_ids.len() as u64 + touched.len() as u64 > params.max_nonzeros {
            return Err(format!(
                "PMI: the co-occurrence matrix has more than {} non-zeros (reached at item {i} of {m}); use fewer items or users",
                params.max_nonzeros
            ));
        }
        cooccurrence.push_row(touched.iter().map(|&j| (j, accumulator[j as usize])));
        for &j in &touched {
            accumulator[j as usize] = 0.0;
        }
        touched.clear();
    }

    let marginals: Vec<f64> = (0..m).map(|i| cooccurrence.row_values(i).iter().sum()).collect();
    let total: f64 = marginals.iter().sum();
    let ln_shift = ln(params.shift);
    let mut ppmi = Csr::with_capacity(m, cooccurrence.col_ids.len());
    for i in 0..m {
        let entries: Vec<(u32, f64)> = cooccurrence
            .row_ids(i)
            .iter()
            .zip(cooccurrence.row_values(i))
            .map(|(&j, &c)| (j, ln(c * total / (marginals[i as usize] * marginals[j as usize])) - ln_shift))
            .filter(|&(_, v)| v > 0.0)
            .collect();
        ppmi.push_row(entries);
    }
    Ok(ppmi)
}

/// Item embeddings from the PMI matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmiEmbeddings {
    pub ppmi_nonzeros: u32,
    pub singular_values: Vec<f64>,
    /// U·diag(√σ), items × k.
    pub item_embeddings: DenseMatrix,
}

/// Shifted positive PMI, then its randomized SVD; embeddings U√σ (Levy & Goldberg's symmetric
/// split; the matrix is symmetric, so U and V differ only where PPMI has negative eigenvalues).
pub fn pmi_embeddings(
    interactions: &Csr,
    pmi: &PmiParams,
    params: &RsvdParams,
    progress: &mut dyn Progress,
) -> Result<PmiEmbeddings, String> {
    progress.report(0.0, "PMI: counting co-occurrences");
    let ppmi = ppmi_matrix(interactions, pmi)?;
    embed_ppmi(&ppmi, params, progress)
}

/// The randomized SVD of a PPMI matrix already built by [`ppmi_matrix`], embeddings U√σ.
pub fn embed_ppmi(ppmi: &Csr, params: &RsvdParams, progress: &mut dyn Progress) -> Result<PmiEmbeddings, String> {
    let svd = randomized_svd(ppmi, params, true, progress)?;
    let left = svd.left.as_ref().expect("asked for U");
    Ok(PmiEmbeddings {
        ppmi_nonzeros: ppmi.nonzeros(),
        item_embeddings: scale_by_sqrt_sigma(left, &svd.singular_values),
        singular_values: svd.singular_values,
    })
}

/// All singular values of a small dense matrix, largest first, by nalgebra's SVD: the reference
/// curve rSVD is compared with. (Its 2×2 step calls `f64::hypot`, so native and wasm may differ
/// in the last bit here: it is a reference to plot, nothing downstream uses it.) Use
/// [`Csr::block`] and [`Csr::to_dense`] to get a block of a large matrix.
pub fn exact_singular_values(dense: &DMatrix<f64>) -> Vec<f64> {
    if dense.is_empty() {
        return Vec::new();
    }
    let mut values: Vec<f64> = dense.clone().svd(false, false).singular_values.iter().copied().collect();
    values.sort_by(|a, b| b.total_cmp(a));
    values
}

/// max_j |σ̂_j − σ_j| / σ_j over the top k (σ_j > 0): how far rSVD's values are from the exact ones.
pub fn max_relative_error(estimated: &[f64], exact: &[f64]) -> f64 {
    estimated.iter().zip(exact).filter(|(_, &e)| e > 0.0).map(|(s, e)| (s - e).abs() / e).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::super::tests::small_world;
    use super::super::{InteractionWorld, WorldSpec};
    use super::*;

    fn world_matrix() -> Csr {
        // 200 users × 120 items, clear topics: a spectrum with a few large values, then a tail.
        let mut spec = WorldSpec::new(200, 120, 6, 0.1);
        spec.held_out_fraction = 0.0;
        InteractionWorld::generate(&spec, 11).unwrap().observed
    }

    #[test]
    fn singular_values_approach_the_exact_ones_with_power_iterations() {
        let a = world_matrix();
        let exact = exact_singular_values(&a.to_dense());
        // The top 6 (popularity and topics) stand above a flat tail (σ_7 ≈ 6.2 … σ_11 ≈ 5.6): those
        // converge fast; values inside the tail converge slowly (their gaps are small).
        let k = 6;
        let mut errors = Vec::new();
        for q in [0, 1, 3] {
            let svd = randomized_svd(&a, &RsvdParams::new(k, 5, q, 7), true, &mut ()).unwrap();
            let error = max_relative_error(&svd.singular_values, &exact[..k as usize]);
            println!("q = {q}: max relative error of the top {k} singular values {error:.3e}");
            errors.push(error);
            // U Σ Vᵀ of rSVD, against the exact values: σ_j ≤ exact σ_j (a projection only loses).
            for (s, e) in svd.singular_values.iter().zip(&exact) {
                assert!(*s <= e * (1.0 + 1e-10), "σ̂ {s} above σ {e}");
            }
        }
        assert!(errors[1] <= errors[0] && errors[2] <= errors[1], "{errors:?}");
        assert!(errors[2] < 1e-4, "{errors:?}");
    }

    #[test]
    fn factors_are_orthonormal_and_reconstruct() {
        let a = world_matrix();
        let k = 6;
        let svd = randomized_svd(&a, &RsvdParams::new(k, 6, 3, 1), true, &mut ()).unwrap();
        let (u, v) = (svd.left.as_ref().unwrap(), &svd.right);
        for (m, name) in [(u, "U"), (v, "V")] {
            let gram = m.transpose_mul(m);
            for r in 0..k {
                for c in 0..k {
                    let want = if r == c { 1.0 } else { 0.0 };
                    assert!((gram.get(r, c) - want).abs() < 1e-9, "{name}ᵀ{name}[{r},{c}] = {}", gram.get(r, c));
                }
            }
        }
        // Aᵀ u_j = σ_j v_j exactly (V is built as BᵀU_B/σ = AᵀQU_B/σ); A v_j = σ_j u_j up to the
        // part of A v_j outside the sketch's range (first order in the subspace error).
        let (av, atu) = (a.mul_dense(v), a.transpose_mul_dense(u));
        for j in 0..k {
            let sigma = svd.singular_values[j as usize];
            let exact: f64 = (0..a.cols).map(|r| (atu.get(r, j) - sigma * v.get(r, j)).powi(2)).sum();
            assert!(exact.sqrt() < 1e-9 * sigma, "column {j}: ‖Aᵀu − σv‖ = {}", exact.sqrt());
            let residual: f64 = (0..a.rows).map(|r| (av.get(r, j) - sigma * u.get(r, j)).powi(2)).sum();
            assert!(residual.sqrt() < 1e-2 * sigma, "column {j}: ‖Av − σu‖ = {}", residual.sqrt());
        }
    }

    #[test]
    fn rank_deficient_matrices_and_bad_ranks() {
        // Rank 2: two distinct rows repeated. Asking for more than the rank gives zeros, not NaN.
        let rows: Vec<Vec<u32>> = (0..30).map(|r| if r % 2 == 0 { vec![0, 1, 2] } else { vec![3, 4] }).collect();
        let a = Csr::from_rows(10, &rows);
        let svd = randomized_svd(&a, &RsvdParams::new(4, 2, 1, 3), true, &mut ()).unwrap();
        let exact = exact_singular_values(&a.to_dense());
        assert!((svd.singular_values[0] - exact[0]).abs() < 1e-9 && (svd.singular_values[1] - exact[1]).abs() < 1e-9);
        assert!(svd.singular_values[2] < 1e-6 && svd.singular_values.iter().all(|s| s.is_finite()));
        assert!(svd.right.data.iter().all(|x| x.is_finite()));
        assert!(randomized_svd(&a, &RsvdParams::new(0, 2, 1, 3), false, &mut ()).is_err());
        assert!(randomized_svd(&a, &RsvdParams::new(11, 2, 1, 3), false, &mut ()).is_err());
    }

    #[test]
    fn a_cholesky_basis_spans_the_same_columns_and_falls_back_when_ill_conditioned() {
        let world = small_world(3);
        let mut omega_rng = rng::seeded(9, Stream::Embeddings);
        let mut omega = DenseMatrix::zeros(world.observed.cols, 10);
        omega.data.iter_mut().for_each(|x| *x = rng::normal(&mut omega_rng));
        let y = world.observed.mul_dense(&omega);
        // The basis B spans Y's columns: Y = B (BᵀB)⁻¹BᵀY, checked as ‖Y − Q QᵀY‖ with Q = orth(B).
        let in_span = |x: &DenseMatrix, of: &DenseMatrix| {
            let q = orthonormalize(of);
            let projected = q.mul(&q.transpose_mul(x));
            let residual = x.data.iter().zip(&projected.data).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
            residual / x.data.iter().map(|a| a * a).sum::<f64>().sqrt()
        };
        let b = basis(&y);
        assert!(in_span(&y, &b) < 1e-12 && in_span(&b, &y) < 1e-12, "{} {}", in_span(&y, &b), in_span(&b, &y));
        // Nearly orthonormal (Cholesky QR loses orthogonality like κ(Y)² u).
        let gram = b.transpose_mul(&b);
        for r in 0..10 {
            for c in 0..10 {
                assert!((gram.get(r, c) - if r == c { 1.0 } else { 0.0 }).abs() < 1e-8, "BᵀB[{r},{c}] = {}", gram.get(r, c));
            }
        }
        // Twice: orthonormal to rounding.
        let twice = basis(&b);
        let gram = twice.transpose_mul(&twice);
        for r in 0..10 {
            for c in 0..10 {
                assert!((gram.get(r, c) - if r == c { 1.0 } else { 0.0 }).abs() < 1e-14, "QᵀQ[{r},{c}] = {}", gram.get(r, c));
            }
        }
        // A repeated column: Householder's orthonormal columns, no NaN.
        let mut repeated = y.clone();
        for r in 0..y.rows {
            *repeated.get_mut(r, 3) = y.get(r, 2);
        }
        assert_eq!(basis(&repeated), orthonormalize(&repeated));
    }

    #[test]
    fn same_seed_same_bits() {
        let world = small_world(2);
        let params = RsvdParams::new(12, 8, 2, 5);
        let first = randomized_svd(&world.observed, &params, true, &mut ()).unwrap();
        let again = randomized_svd(&world.observed, &params, true, &mut ()).unwrap();
        let bits = |s: &Rsvd| item_embeddings(s).data.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(&first), bits(&again));
        assert_eq!(first, again);
        let other = randomized_svd(&world.observed, &RsvdParams { seed: 6, ..params }, true, &mut ()).unwrap();
        assert_ne!(bits(&first), bits(&other));
    }

    #[test]
    fn ppmi_is_symmetric_positive_and_refuses_over_budget() {
        let world = small_world(4);
        let ppmi = ppmi_matrix(&world.observed, &PmiParams::default()).unwrap();
        assert_eq!(ppmi.rows, world.items());
        assert!(ppmi.values.iter().all(|v| *v > 0.0));
        let dense = ppmi.to_dense();
        assert_eq!(dense, dense.transpose());
        assert!((0..ppmi.rows).all(|i| !ppmi.contains(i, i)));
        // Items of the same topic co-occur more than chance: positive PMI falls within a topic far
        // more often than the 1/8 of random pairs (small counts make many chance pairs positive).
        let same_topic = (0..ppmi.rows)
            .flat_map(|i| ppmi.row_ids(i).iter().map(move |&j| (i, j)))
            .filter(|&(i, j)| world.item_topic[i as usize] == world.item_topic[j as usize])
            .count();
        let share = same_topic as f64 / ppmi.nonzeros() as f64;
        println!("PPMI: {} non-zeros, {:.1} % within a topic", ppmi.nonzeros(), 100.0 * share);
        assert!(share > 2.5 / 8.0, "{same_topic} of {}", ppmi.nonzeros());

        let embeddings = pmi_embeddings(&world.observed, &PmiParams::default(), &RsvdParams::new(8, 8, 2, 1), &mut ()).unwrap();
        assert_eq!((embeddings.item_embeddings.rows, embeddings.item_embeddings.cols), (world.items(), 8));

        let tight = PmiParams { max_pairs: 100, ..PmiParams::default() };
        assert!(ppmi_matrix(&world.observed, &tight).unwrap_err().contains("item pairs"));
        let tight = PmiParams { max_nonzeros: 100, ..PmiParams::default() };
        assert!(ppmi_matrix(&world.observed, &tight).unwrap_err().contains("non-zeros"));
    }
}
