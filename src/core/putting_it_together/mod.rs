//! Putting it together: a world with continuous user contexts whose true query is partly
//! non-linear, PRR with a deep query tower g(z) trained on logs, serving through the MIPS index,
//! and the off-policy estimators judged by an A/B test.
//!
//! **The world.** The synthetic slate world's catalogue (items around topic directions) and PRR
//! click model, with a population whose users each carry context features z ∈ ℝᶜ, z ~ N(0, I),
//! and engagement features y. User z's true query is
//!
//! u(z) = s · ((1 − λ) L̂(z) + λ N̂(z)) / √((1 − λ)² + λ²),
//!
//! where L̂(z) = Az (scaled to unit RMS norm) is linear, N̂(z) = W₂ ReLU(W₁z + b₁) (centred and scaled
//! to unit RMS norm) is a random one-hidden-layer network, and λ ∈ [0, 1] (the world's
//! non-linearity) mixes them. A linear g(z) = Γz + β can represent u only at λ = 0.
//!
//! **The models** ([`TowerModel`]): PRR's θ_0 = exp(y·φ + b), θ_k = exp(g(z)·Ψ_{a_k} + γ_k) + exp(α_k)
//! with g a [`tower::Tower`] (linear or MLP); the reward-only head; and a softmax policy
//! π(a | z) ∝ exp(g(z)·Ψ_a) trained by IIPS. Every one serves through MIPS: the top-K items by
//! g(z)·Ψ_a, the best one in the position with the largest γ.

pub mod lesson;
pub mod ope;
pub mod reading;
pub mod tower;

use crate::core::exp_lanes::exp_in_place;
use crate::core::mips::hnsw::MipsIndex;
use crate::core::prr::policy_learning::score_gradient;
use crate::core::prr::{calibrated_bias, outcome_loss, Adam, Gradient, Variant, NOISE_CLICK_LOG_WEIGHT};
use crate::core::rng::{self, Rng, Stream};
use crate::core::slate_world::policy::{top_k_by, SlatePolicy};
use crate::core::slate_world::simulate::LoggedRow;
use crate::core::slate_world::{ClickModel, SyntheticSpec, User, World};
use std::cell::RefCell;
use tower::{PassWeights, Tower, Trace};

/// Dimension of the world's true embeddings (the synthetic world's).
pub const WORLD_DIM: u32 = 8;
/// Topics the catalogue's items cluster around.
const TOPICS: u32 = 8;
/// Engagement features y (the PRR paper's 4).
pub const ENGAGEMENT_FEATURES: u32 = 4;
/// RMS norm s of the true query u(z): a user's favourite items score about s·|Ψ_a|.
const QUERY_SCALE: f64 = 4.0;
/// Hidden units of the world's non-linear part N(z).
const TRUE_HIDDEN: usize = 32;
/// Contexts drawn to measure the RMS norms that scale L and N.
const REFERENCE_CONTEXTS: u32 = 2000;

/// What a world is made of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldSpec {
    pub items: u32,
    pub slate_size: u32,
    pub context_features: u32,
    pub users: u32,
    pub nonlinearity: f64,
    pub seed: u64,
}

/// A world's users with their context features: `world.users[i]` is category i, and row i of
/// `contexts` (users × features) is its z.
#[derive(Clone, Debug)]
pub struct Population {
    pub world: World,
    pub contexts: Vec<f64>,
    pub features: usize,
}

impl Population {
    pub fn context(&self, user: u32) -> &[f64] {
        &self.contexts[user as usize * self.features..(user as usize + 1) * self.features]
    }

    pub fn engagement(&self, user: u32) -> &[f64] {
        &self.world.users[user as usize].engagement
    }
}

/// The world's true query map u(z).
struct TrueQuery {
    features: usize,
    linear: Vec<f64>,
    hidden_weights: Vec<f64>,
    hidden_biases: Vec<f64>,
    output_weights: Vec<f64>,
    linear_scale: f64,
    /// The least-squares affine fit of the network on the reference contexts, (c + 1) × d
    /// column-major (empty while it is being fitted).
    affine_fit: Vec<f64>,
    nonlinear_scale: f64,
    nonlinearity: f64,
}

impl TrueQuery {
    fn new(features: usize, nonlinearity: f64, seed: u64) -> TrueQuery {
        let d = WORLD_DIM as usize;
        let mut rng = rng::substream(seed, Stream::World, 100);
        let mut normal = |n: usize, sd: f64| (0..n).map(|_| sd * rng::normal(&mut rng)).collect::<Vec<f64>>();
        let linear = normal(d * features, 1.0);
        let hidden_weights = normal(TRUE_HIDDEN * features, (2.0 / features as f64).sqrt());
        let hidden_biases = normal(TRUE_HIDDEN, 0.5);
        let output_weights = normal(d * TRUE_HIDDEN, (1.0 / TRUE_HIDDEN as f64).sqrt());
        let mut query = TrueQuery {
            features,
            linear,
            hidden_weights,
            hidden_biases,
            output_weights,
            linear_scale: 1.0,
            affine_fit: Vec::new(),
            nonlinear_scale: 1.0,
            nonlinearity,
        };
        // N keeps only what no affine map of z explains (a ReLU network has a linear part:
        // ReLU(x) = x/2 + |x|/2): the least-squares affine fit of N on a reference sample of
        // contexts is subtracted. Then both parts are scaled to unit RMS norm.
        let mut reference = rng::substream(seed, Stream::World, 101);
        let sample: Vec<Vec<f64>> = (0..REFERENCE_CONTEXTS).map(|_| (0..features).map(|_| rng::normal(&mut reference)).collect()).collect();
        let n = sample.len() as f64;
        query.affine_fit = affine_least_squares(&sample, |z| query.nonlinear_raw(z), d);
        let (mut linear_sq, mut nonlinear_sq) = (0.0, 0.0);
        for z in &sample {
            linear_sq += query.linear_part(z).iter().map(|x| x * x).sum::<f64>();
            nonlinear_sq += query.nonlinear_part(z).iter().map(|x| x * x).sum::<f64>();
        }
        query.linear_scale = (linear_sq / n).sqrt().max(1e-12);
        query.nonlinear_scale = (nonlinear_sq / n).sqrt().max(1e-12);
        query
    }

    fn linear_part(&self, z: &[f64]) -> Vec<f64> {
        self.linear.chunks_exact(self.features).map(|row| row.iter().zip(z).map(|(a, x)| a * x).sum()).collect()
    }

    fn nonlinear_raw(&self, z: &[f64]) -> Vec<f64> {
        let hidden: Vec<f64> = self
            .hidden_weights
            .chunks_exact(self.features)
            .zip(&self.hidden_biases)
            .map(|(row, b)| (b + row.iter().zip(z).map(|(w, x)| w * x).sum::<f64>()).max(0.0))
            .collect();
        self.output_weights.chunks_exact(TRUE_HIDDEN).map(|row| row.iter().zip(&hidden).map(|(w, h)| w * h).sum()).collect()
    }

    /// N(z) minus its affine fit: the part of the network no linear tower can represent.
    fn nonlinear_part(&self, z: &[f64]) -> Vec<f64> {
        let c = self.features;
        let mut out = self.nonlinear_raw(z);
        if self.affine_fit.is_empty() {
            return out;
        }
        for (j, o) in out.iter_mut().enumerate() {
            let column = &self.affine_fit[j * (c + 1)..(j + 1) * (c + 1)];
            *o -= column[c] + column[..c].iter().zip(z).map(|(b, x)| b * x).sum::<f64>();
        }
        out
    }

    fn query(&self, z: &[f64]) -> Vec<f64> {
        let lambda = self.nonlinearity;
        let norm = ((1.0 - lambda) * (1.0 - lambda) + lambda * lambda).sqrt();
        let l = self.linear_part(z);
        let nl = self.nonlinear_part(z);
        l.iter()
            .zip(&nl)
            .map(|(l, n)| QUERY_SCALE * ((1.0 - lambda) * l / self.linear_scale + lambda * n / self.nonlinear_scale) / norm)
            .collect()
    }
}

/// The least-squares affine fit of f on the sample: for each output j, the c weights then the
/// offset, (c + 1) × `outputs` column-major. Plain loops and a hand-written Cholesky: a matrix
/// product library would use fused multiply-adds natively and not in wasm, and the world must
/// be the same bits in both.
fn affine_least_squares(sample: &[Vec<f64>], f: impl Fn(&[f64]) -> Vec<f64>, outputs: usize) -> Vec<f64> {
    let c = sample.first().map_or(0, |z| z.len());
    let n = c + 1;
    let mut gram = vec![0.0; n * n];
    let mut right = vec![0.0; n * outputs];
    for z in sample {
        let x: Vec<f64> = z.iter().copied().chain([1.0]).collect();
        let y = f(z);
        for i in 0..n {
            for k in 0..n {
                gram[i * n + k] += x[i] * x[k];
            }
            for j in 0..outputs {
                right[j * n + i] += x[i] * y[j];
            }
        }
    }
    // Cholesky: gram = L Lᵀ (the reference contexts make it positive definite).
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..=i {
            let mut sum = gram[i * n + k];
            for m in 0..k {
                sum -= l[i * n + m] * l[k * n + m];
            }
            l[i * n + k] = if i == k { sum.max(1e-300).sqrt() } else { sum / l[k * n + k] };
        }
    }
    let mut out = vec![0.0; n * outputs];
    for j in 0..outputs {
        let b = &right[j * n..(j + 1) * n];
        let mut y = vec![0.0; n];
        for i in 0..n {
            let mut sum = b[i];
            for m in 0..i {
                sum -= l[i * n + m] * y[m];
            }
            y[i] = sum / l[i * n + i];
        }
        for i in (0..n).rev() {
            let mut sum = y[i];
            for m in i + 1..n {
                sum -= l[m * n + i] * out[j * n + m];
            }
            out[j * n + i] = sum / l[i * n + i];
        }
    }
    out
}

/// The logging population (whose impressions are logged) and the fresh one (the A/B test's new
/// users): the same catalogue, click model and true query map, independent users.
pub fn populations(spec: &WorldSpec) -> (Population, Population) {
    let base = World::synthetic(
        spec.seed,
        SyntheticSpec {
            items: spec.items,
            slate_size: spec.slate_size,
            dim: WORLD_DIM,
            categories: 1,
            topics: TOPICS,
            users: 2 * spec.users,
            engagement_features: ENGAGEMENT_FEATURES,
        },
        ClickModel::Prr,
    );
    let query = TrueQuery::new(spec.context_features as usize, spec.nonlinearity, spec.seed);
    let features = spec.context_features as usize;
    let population = |which: u32, users: &[User]| {
        let mut rng = rng::substream(spec.seed, Stream::Users, 100 + which);
        let contexts: Vec<f64> = (0..users.len() * features).map(|_| rng::normal(&mut rng)).collect();
        let embeddings: Vec<f64> = contexts.chunks_exact(features).flat_map(|z| query.query(z)).collect();
        Population { world: base.with_user_embeddings(users.to_vec(), embeddings), contexts, features }
    };
    let half = spec.users as usize;
    (population(0, &base.users[..half]), population(1, &base.users[half..]))
}

/// What a [`TowerModel`] learns from a logged row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// PRR: the cross-entropy of the K + 1 outcomes (no click, click at k).
    Prr,
    /// Reward only: whether the slate was clicked (θ_0 against Σ_k θ_k).
    Reward,
    /// A softmax policy π(a | z) ∝ exp(g(z)·Ψ_a) maximising the item-position IPS objective
    /// Σ_k c_k π(a_k | z) / π₀^{(k)}(a_k | z).
    Iips,
}

/// Item embeddings Ψ, a query tower g and the PRR head's θ_0 and position weights, in one flat
/// vector: Ψ (P × d), the tower, φ, b, γ (K), α (K).
#[derive(Clone, Debug, PartialEq)]
pub struct TowerModel {
    pub head: Head,
    pub items: usize,
    pub dim: usize,
    pub tower: Tower,
    pub features: usize,
    pub positions: usize,
    /// Read by [`TowerModel::params`], changed through [`TowerModel::params_mut`] only.
    params: Vec<f64>,
    /// The tower's parameter count (asked for in every row's gradient).
    tower_len: usize,
    pass_weights: PassWeightsCache,
}

/// The tower's [`PassWeights`], made from the parameters at the first pass after they
/// change: every query between two Adam steps (a batch's rows, an evaluation's users) reuses them.
#[derive(Clone, Debug, Default)]
struct PassWeightsCache(std::sync::OnceLock<PassWeights>);

impl PartialEq for PassWeightsCache {
    /// A function of the parameters, which the models' equality compares.
    fn eq(&self, _: &PassWeightsCache) -> bool {
        true
    }
}

/// Reusable buffers of one training or serving loop.
#[derive(Default)]
pub struct Scratch {
    trace: Trace,
    theta: Vec<f64>,
    d_theta: Vec<f64>,
    d_query: Vec<f64>,
    d_scores: Vec<f64>,
    probabilities: Vec<f64>,
}

impl TowerModel {
    /// Ψ from `item_init` (P × d) when given, else N(0, 0.1²); the tower He-initialised; noise clicks
    /// small (α = −2) and θ_0 set so that the predicted CTR matches `ctr` (as the PRR lesson's
    /// calibrated start).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        head: Head,
        items: usize,
        dim: usize,
        tower: Tower,
        features: usize,
        positions: usize,
        item_init: Option<&[f64]>,
        ctr: f64,
        seed: u64,
    ) -> TowerModel {
        let len = items * dim + tower.len() + features + 1 + 2 * positions;
        let tower_len = tower.len();
        let mut model = TowerModel {
            head,
            items,
            dim,
            tower,
            features,
            positions,
            params: vec![0.0; len],
            tower_len,
            pass_weights: PassWeightsCache::default(),
        };
        let mut rng = rng::seeded(seed, Stream::Model);
        match item_init {
            Some(psi) => model.params[..items * dim].copy_from_slice(psi),
            None => model.params[..items * dim].iter_mut().for_each(|p| *p = 0.1 * rng::normal(&mut rng)),
        }
        let range = model.tower_range();
        let tower = model.tower.clone();
        tower.init(&mut model.params[range], &mut rng);
        for k in 0..positions {
            let i = model.alpha_index(k);
            model.params[i] = NOISE_CLICK_LOG_WEIGHT;
        }
        let b = model.bias_index();
        model.params[b] = calibrated_bias(ctr, positions as f64);
        model
    }

    /// Ψ, the tower, φ, b, γ, α in one flat vector.
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// The parameters, to change: the tower's forward weights are made again at the next pass.
    pub fn params_mut(&mut self) -> &mut Vec<f64> {
        self.pass_weights = PassWeightsCache::default();
        &mut self.params
    }

    fn pass_weights(&self) -> &PassWeights {
        self.pass_weights.0.get_or_init(|| self.tower.pass_weights(&self.params[self.tower_range()]))
    }

    fn tower_range(&self) -> std::ops::Range<usize> {
        let start = self.items * self.dim;
        start..start + self.tower_len
    }

    fn phi_start(&self) -> usize {
        self.tower_range().end
    }

    fn bias_index(&self) -> usize {
        self.phi_start() + self.features
    }

    fn gamma_index(&self, k: usize) -> usize {
        self.bias_index() + 1 + k
    }

    fn alpha_index(&self, k: usize) -> usize {
        self.bias_index() + 1 + self.positions + k
    }

    pub fn psi(&self, a: u32) -> &[f64] {
        &self.params[a as usize * self.dim..(a as usize + 1) * self.dim]
    }

    /// The item table Ψ, P × d, row-major.
    pub fn item_table(&self) -> &[f64] {
        &self.params[..self.items * self.dim]
    }

    /// g(z), left in `scratch.trace.output`.
    pub fn query<'s>(&self, z: &[f64], scratch: &'s mut Scratch) -> &'s [f64] {
        self.tower.forward(self.pass_weights(), z, &mut scratch.trace);
        &scratch.trace.output
    }

    /// Positions by decreasing learned γ (the IIPS policy has none: position 1 first).
    pub fn position_order(&self, size: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..size).collect();
        if self.head != Head::Iips {
            order.sort_by(|&i, &j| self.params[self.gamma_index(j)].total_cmp(&self.params[self.gamma_index(i)]).then(i.cmp(&j)));
        }
        order
    }

    fn thetas(&self, query: &[f64], engagement: &[f64], slate: &[u32], out: &mut Vec<f64>) {
        self.thetas_and_alphas(query, engagement, slate, out);
        out.truncate(slate.len() + 1);
    }

    /// θ_0..θ_K in `out`, followed by each position's exp(α_k), which the gradient needs too.
    fn thetas_and_alphas(&self, query: &[f64], engagement: &[f64], slate: &[u32], out: &mut Vec<f64>) {
        // First the 2K + 1 exponents (log θ_0, each position's g·Ψ_a + γ_k, each position's α_k),
        // exponentiated together two lanes at a time (the same bits as one by one); then
        // θ_k = exp(g·Ψ_a + γ_k) + exp(α_k) in place.
        out.clear();
        out.push(self.params[self.bias_index()] + engagement.iter().zip(&self.params[self.phi_start()..]).map(|(y, p)| y * p).sum::<f64>());
        out.extend(
            slate
                .iter()
                .enumerate()
                .map(|(k, &a)| query.iter().zip(self.psi(a)).map(|(x, y)| x * y).sum::<f64>() + self.params[self.gamma_index(k)]),
        );
        out.extend((0..slate.len()).map(|k| self.params[self.alpha_index(k)]));
        exp_in_place(out);
        let k_len = slate.len();
        for k in 0..k_len {
            out[k + 1] += out[k_len + 1 + k];
        }
    }

    /// The model's probability that the user (z, y) clicks on `slate`: 1 − θ_0/Z. The direct
    /// method's reward model.
    pub fn click_probability(&self, z: &[f64], engagement: &[f64], slate: &[u32], scratch: &mut Scratch) -> f64 {
        self.tower.forward(self.pass_weights(), z, &mut scratch.trace);
        let query = std::mem::take(&mut scratch.trace.output);
        let p = self.click_probability_for(&query, engagement, slate, scratch);
        scratch.trace.output = query;
        p
    }

    /// [`TowerModel::click_probability`] for a query g(z) already computed (several slates for one
    /// user cost one pass through the tower).
    pub fn click_probability_for(&self, query: &[f64], engagement: &[f64], slate: &[u32], scratch: &mut Scratch) -> f64 {
        let mut theta = std::mem::take(&mut scratch.theta);
        self.thetas(query, engagement, slate, &mut theta);
        let total: f64 = theta.iter().sum();
        let p = 1.0 - theta[0] / total;
        scratch.theta = theta;
        p
    }

    /// One logged row's loss (the cross-entropy for the PRR and reward heads; the IIPS objective,
    /// to be maximised, for the policy) and, with `grad`, its gradient × `weight` added: the
    /// item, θ_0 and position entries to the sparse gradient, the tower's to the dense slice.
    pub fn row_loss(
        &self,
        z: &[f64],
        engagement: &[f64],
        row: &LoggedRow,
        weight: f64,
        grad: Option<(&mut Gradient, &mut [f32])>,
        scratch: &mut Scratch,
    ) -> f64 {
        if self.head == Head::Iips {
            return self.iips_objective(z, row, weight, grad, scratch);
        }
        self.tower.forward(self.pass_weights(), z, &mut scratch.trace);
        let mut terms = std::mem::take(&mut scratch.theta);
        self.thetas_and_alphas(&scratch.trace.output, engagement, &row.slate, &mut terms);
        let k_len = row.slate.len();
        let (theta, alphas) = terms.split_at(k_len + 1);
        let c = row.clicks.iter().position(|c| *c > 0).map_or(0, |k| k + 1);
        let mut d_theta = std::mem::take(&mut scratch.d_theta);
        d_theta.clear();
        d_theta.resize(k_len + 1, 0.0);
        let variant = if self.head == Head::Prr { Variant::Prr } else { Variant::Reward };
        let loss = outcome_loss(variant, theta, c, &mut d_theta);
        if let Some((grad, tower_grad)) = grad {
            let d_log0 = d_theta[0] * theta[0] * weight;
            grad.add(self.bias_index(), d_log0);
            for (f, y) in engagement.iter().enumerate() {
                grad.add(self.phi_start() + f, d_log0 * y);
            }
            let mut d_query = std::mem::take(&mut scratch.d_query);
            d_query.clear();
            d_query.resize(self.dim, 0.0);
            for (k, &a) in row.slate.iter().enumerate() {
                let alpha = alphas[k];
                let u = theta[k + 1] - alpha; // exp(g·Ψ_a + γ_k)
                let ds = d_theta[k + 1] * u; // ∂L/∂s_k, unweighted
                grad.add(self.gamma_index(k), ds * weight);
                grad.add(self.alpha_index(k), d_theta[k + 1] * alpha * weight);
                let start = a as usize * self.dim;
                grad.add_scaled(start, ds * weight, &scratch.trace.output);
                for (dq, psi) in d_query.iter_mut().zip(&self.params[start..start + self.dim]) {
                    *dq += ds * psi;
                }
            }
            self.tower.backward(self.pass_weights(), &mut scratch.trace, &d_query, weight, tower_grad);
            scratch.d_query = d_query;
        }
        scratch.theta = terms;
        scratch.d_theta = d_theta;
        loss
    }

    /// π(· | z) over the catalogue for the query in `scratch.trace.output`.
    fn softmax(&self, scratch: &mut Scratch) {
        let (query, probabilities) = (&scratch.trace.output, &mut scratch.probabilities);
        probabilities.clear();
        probabilities.extend(self.item_table().chunks_exact(self.dim).map(|psi| psi.iter().zip(query).map(|(x, y)| x * y).sum::<f64>()));
        crate::core::math::softmax_in_place(probabilities);
    }

    /// Σ_k c_k π(a_k | z) / π₀^{(k)}(a_k | z) and its gradient (the PRR lesson's IIPS learner,
    /// with the tower's query). Unclicked rows add nothing and skip the O(P) softmax.
    fn iips_objective(
        &self,
        z: &[f64],
        row: &LoggedRow,
        weight: f64,
        grad: Option<(&mut Gradient, &mut [f32])>,
        scratch: &mut Scratch,
    ) -> f64 {
        if !row.clicks.iter().any(|c| *c > 0) {
            return 0.0;
        }
        self.tower.forward(self.pass_weights(), z, &mut scratch.trace);
        self.softmax(scratch);
        let mut value = 0.0;
        let mut coefs: Vec<(u32, f64)> = Vec::with_capacity(row.slate.len());
        for (k, &a) in row.slate.iter().enumerate() {
            let term = row.clicks[k] as f64 * scratch.probabilities[a as usize] / row.position_propensity[k];
            value += term;
            coefs.push((a, term));
        }
        let Some((grad, tower_grad)) = grad else { return value };
        // ∂value/∂s_b = Σ_k term_k (1{b = a_k} − π_b), s_b = g(z)·Ψ_b.
        let mut d_scores = std::mem::take(&mut scratch.d_scores);
        score_gradient(&scratch.probabilities, &coefs, &mut d_scores);
        let mut d_query = std::mem::take(&mut scratch.d_query);
        d_query.clear();
        d_query.resize(self.dim, 0.0);
        for (b, &ds) in d_scores.iter().enumerate() {
            let start = b * self.dim;
            grad.add_scaled(start, ds * weight, &scratch.trace.output);
            for (dq, psi) in d_query.iter_mut().zip(&self.params[start..start + self.dim]) {
                *dq += ds * psi;
            }
        }
        self.tower.backward(self.pass_weights(), &mut scratch.trace, &d_query, weight, tower_grad);
        scratch.d_query = d_query;
        scratch.d_scores = d_scores;
        value
    }
}

/// A trained model's curves.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Fit {
    /// Mean loss (or IIPS objective) on the training rows, per epoch, as trained.
    pub train_loss: Vec<f64>,
    /// Mean loss (or objective) on the validation rows after each epoch.
    pub validation_loss: Vec<f64>,
    /// The epoch (1-based) whose parameters were kept: the best on the validation rows.
    pub best_epoch: u32,
}

/// Mini-batch Adam over shuffled `train` rows (the PRR lesson's loop, with the tower's gradient
/// summed densely per batch, in f32 as the tower computes, and handed to Adam once): minimises the PRR and reward losses,
/// maximises the IIPS objective. Early stopping: the parameters kept are those of the epoch with
/// the best validation loss (objective), so that a tower that starts memorising its training
/// users is taken before it does. `after_epoch(epoch)` reports progress.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    model: &mut TowerModel,
    population: &Population,
    train: &[LoggedRow],
    validation: &[LoggedRow],
    epochs: u32,
    batch: usize,
    learning_rate: f64,
    rng: &mut Rng,
    mut after_epoch: impl FnMut(u32),
) -> Fit {
    let size = model.params.len();
    let sign = if model.head == Head::Iips { -1.0 } else { 1.0 };
    let mut adam = Adam::new(size, learning_rate);
    let mut grad = Gradient::new(size);
    let tower_range = model.tower_range();
    let mut tower_grad = vec![0.0f32; tower_range.len()];
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    let mut scratch = Scratch::default();
    let mut result = Fit::default();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for epoch in 0..epochs {
        for i in (1..order.len()).rev() {
            let j = rng::index(rng, i as u32 + 1) as usize;
            order.swap(i, j);
        }
        let mut total = 0.0;
        for chunk in order.chunks(batch.max(1)) {
            grad.clear();
            tower_grad.iter_mut().for_each(|g| *g = 0.0);
            let weight = 1.0 / chunk.len() as f64;
            for &i in chunk {
                let row = &train[i as usize];
                let (z, y) = (population.context(row.user), population.engagement(row.user));
                total += model.row_loss(z, y, row, weight, Some((&mut grad, &mut tower_grad)), &mut scratch);
            }
            adam.step_with_dense(model.params_mut(), &grad, tower_range.start, &tower_grad, sign);
        }
        result.train_loss.push(total / train.len().max(1) as f64);
        let held_out = mean_loss(model, population, validation, &mut scratch);
        result.validation_loss.push(held_out);
        if best.as_ref().is_none_or(|(loss, _)| sign * held_out < sign * loss) {
            best = Some((held_out, model.params.clone()));
            result.best_epoch = epoch + 1;
        }
        after_epoch(epoch);
    }
    if let Some((_, params)) = best {
        *model.params_mut() = params;
    }
    result
}

/// Mean loss (or IIPS objective) of `rows`.
pub fn mean_loss(model: &TowerModel, population: &Population, rows: &[LoggedRow], scratch: &mut Scratch) -> f64 {
    let total: f64 =
        rows.iter().map(|row| model.row_loss(population.context(row.user), population.engagement(row.user), row, 1.0, None, scratch)).sum();
    total / rows.len().max(1) as f64
}

/// Item embeddings to start Ψ from: the randomized SVD of the training rows' user × item click
/// matrix (the embeddings lesson's machinery), rows V·√Σ, rescaled to a mean norm of
/// [`SVD_INIT_NORM`]. None when the clicks cannot carry `dim` directions.
pub fn svd_item_init(population: &Population, train: &[LoggedRow], items: u32, dim: u32, seed: u64) -> Option<Vec<f64>> {
    use crate::core::embeddings::rsvd::{item_embeddings, randomized_svd, RsvdParams};
    use crate::core::embeddings::sparse::Csr;
    let users = population.world.users.len();
    let mut clicked: Vec<Vec<u32>> = vec![Vec::new(); users];
    for row in train {
        for (k, &a) in row.slate.iter().enumerate() {
            if row.clicks[k] > 0 && !clicked[row.user as usize].contains(&a) {
                clicked[row.user as usize].push(a);
            }
        }
    }
    clicked.iter_mut().for_each(|c| c.sort_unstable());
    let matrix = Csr::from_rows(items, &clicked);
    let svd = randomized_svd(&matrix, &RsvdParams::new(dim, 8, 2, seed), false, &mut ()).ok()?;
    let embeddings = item_embeddings(&svd);
    let mean_norm = (0..items).map(|a| embeddings.row(a).iter().map(|x| x * x).sum::<f64>().sqrt()).sum::<f64>() / items as f64;
    if mean_norm.is_nan() || mean_norm <= 1e-12 {
        return None;
    }
    Some(embeddings.data.iter().map(|x| x * SVD_INIT_NORM / mean_norm).collect())
}

/// Mean row norm of Ψ when it starts from the SVD.
pub const SVD_INIT_NORM: f64 = 0.5;

/// A candidate served by MIPS: the top-K items by g(z)·Ψ_a (through the HNSW index when given,
/// else an exact scan), the best item in the best position. A user's query does not change:
/// wrapped in [`Remembered`], an A/B test computes each user's slate once.
pub struct Served<'a> {
    pub model: &'a TowerModel,
    pub population: &'a Population,
    pub index: Option<&'a RefCell<MipsIndex>>,
    pub ef: usize,
    pub label: String,
    scratch: RefCell<Scratch>,
}

impl<'a> Served<'a> {
    pub fn new(
        model: &'a TowerModel,
        population: &'a Population,
        index: Option<&'a RefCell<MipsIndex>>,
        ef: usize,
        label: &str,
    ) -> Served<'a> {
        Served { model, population, index, ef, label: label.into(), scratch: RefCell::default() }
    }

    /// The slate for `user`.
    pub fn slate_for(&self, user: u32, size: u32, scratch: &mut Scratch) -> Vec<u32> {
        let query = self.model.query(self.population.context(user), scratch);
        let top = match self.index {
            Some(index) => {
                let q: Vec<f32> = query.iter().map(|x| *x as f32).collect();
                index.borrow_mut().search(&q, size as usize, self.ef.max(size as usize))
            }
            None => top_k_by(self.model.items as u32, size, |a| query.iter().zip(self.model.psi(a)).map(|(x, y)| x * y).sum()),
        };
        let mut slate = vec![0; top.len()];
        for (rank, pos) in self.model.position_order(top.len()).into_iter().enumerate() {
            slate[pos] = top[rank];
        }
        slate
    }
}

impl SlatePolicy for Served<'_> {
    fn choose(&self, _world: &World, user: u32, size: u32, _rng: &mut Rng, slate: &mut Vec<u32>) {
        *slate = self.slate_for(user, size, &mut self.scratch.borrow_mut());
    }

    fn name(&self) -> String {
        self.label.clone()
    }
}

/// A deterministic policy's slates, each computed once per user (and slate size): the oracle
/// and a served candidate answer every impression of an A/B test with a scan or a search
/// otherwise.
pub struct Remembered<'a> {
    policy: &'a dyn SlatePolicy,
    memo: RefCell<Vec<Option<Vec<u32>>>>,
}

impl<'a> Remembered<'a> {
    pub fn new(policy: &'a dyn SlatePolicy, users: usize) -> Remembered<'a> {
        Remembered { policy, memo: RefCell::new(vec![None; users]) }
    }

    /// The same, with the slates of the first users already known (one per user, as the policy
    /// gives them): `choose` returns them instead of computing them again.
    pub fn with_slates(self, slates: Vec<Vec<u32>>) -> Remembered<'a> {
        for (kept, slate) in self.memo.borrow_mut().iter_mut().zip(slates) {
            *kept = Some(slate);
        }
        self
    }
}

impl SlatePolicy for Remembered<'_> {
    fn choose(&self, world: &World, user: u32, size: u32, rng: &mut Rng, slate: &mut Vec<u32>) {
        let mut memo = self.memo.borrow_mut();
        let kept = &mut memo[user as usize];
        if kept.as_ref().is_none_or(|s| s.len() != size as usize) {
            let mut fresh = Vec::new();
            self.policy.choose(world, user, size, rng, &mut fresh);
            *kept = Some(fresh);
        }
        slate.clear();
        slate.extend_from_slice(kept.as_ref().expect("just computed"));
    }

    fn name(&self) -> String {
        self.policy.name()
    }
}

/// The same slate for everyone: a fixed list (the most clicked items of the logs, say).
pub struct Fixed {
    pub slate: Vec<u32>,
    pub label: String,
}

impl SlatePolicy for Fixed {
    fn choose(&self, _world: &World, _user: u32, size: u32, _rng: &mut Rng, slate: &mut Vec<u32>) {
        slate.clear();
        slate.extend(self.slate.iter().take(size as usize));
    }

    fn name(&self) -> String {
        self.label.clone()
    }
}

/// The `size` items clicked most often in `rows` (ties: smaller id), most clicked first.
pub fn most_clicked(rows: &[LoggedRow], items: u32, size: u32) -> Vec<u32> {
    let mut counts = vec![0u32; items as usize];
    for row in rows {
        for (k, &a) in row.slate.iter().enumerate() {
            counts[a as usize] += u32::from(row.clicks[k]);
        }
    }
    top_k_by(items, size, |a| counts[a as usize] as f64)
}

/// E_{A~π₀} under a logging slate sampler, by `draws` slates (the DM's value of the logging policy).
pub fn expected_over_slates(draws: u32, mut sample: impl FnMut(&mut Vec<u32>), mut value: impl FnMut(&[u32]) -> f64) -> f64 {
    let mut slate = Vec::new();
    let mut total = 0.0;
    for _ in 0..draws {
        sample(&mut slate);
        total += value(&slate);
    }
    total / draws.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::tower::Activation;
    use super::*;
    use crate::core::slate_world::policy::{LoggingKind, Oracle, PlackettLuce};
    use crate::core::slate_world::simulate::{deterministic_ctr_on, log_data};

    fn spec(nonlinearity: f64) -> WorldSpec {
        WorldSpec { items: 60, slate_size: 3, context_features: 4, users: 300, nonlinearity, seed: 3 }
    }

    #[test]
    fn populations_share_the_world_and_differ_in_users() {
        let (logged, fresh) = populations(&spec(0.5));
        assert_eq!(logged.world.users.len(), 300);
        assert_eq!(fresh.world.users.len(), 300);
        assert_eq!(logged.world.item_embeddings, fresh.world.item_embeddings);
        assert_ne!(logged.contexts[..4], fresh.contexts[..4]);
        assert_eq!(logged.world.users[7].category, 7);
        // RMS norm of the true query ≈ s.
        let rms = (logged.world.category_embeddings.iter().map(|x| x * x).sum::<f64>() / 300.0).sqrt();
        assert!((rms - QUERY_SCALE).abs() < 0.6, "{rms}");
        // λ = 0: the true map is linear without offset, so u(−z) = −u(z); at λ = 1 it is not.
        let d = WORLD_DIM as usize;
        let (linear, _) = populations(&spec(0.0));
        let z0 = linear.context(0).to_vec();
        let minus: Vec<f64> = z0.iter().map(|x| -x).collect();
        let query = TrueQuery::new(4, 0.0, 3);
        query.query(&minus).iter().zip(&linear.world.category_embeddings[..d]).for_each(|(a, b)| assert!((a + b).abs() < 1e-9));
        let bent = TrueQuery::new(4, 1.0, 3);
        let (p, m) = (bent.query(&z0), bent.query(&minus));
        assert!(p.iter().zip(&m).any(|(a, b)| (a + b).abs() > 1e-3), "λ = 1 is not odd");
    }

    #[test]
    fn the_affine_fit_recovers_an_affine_map() {
        let mut r = rng::seeded(1, Stream::Sweep);
        let sample: Vec<Vec<f64>> = (0..50).map(|_| vec![rng::normal(&mut r), rng::normal(&mut r)]).collect();
        let fit = affine_least_squares(&sample, |z| vec![2.0 * z[0] - z[1] + 0.5, -3.0 * z[1]], 2);
        let expected = [2.0, -1.0, 0.5, 0.0, -3.0, 0.0];
        fit.iter().zip(expected).for_each(|(a, b)| assert!((a - b).abs() < 1e-9, "{fit:?}"));
    }

    fn gradient_check(head: Head, tower: Tower, outcome: Option<usize>) {
        let mut model = TowerModel::new(head, 5, 3, tower, 2, 3, None, 0.2, 4);
        let mut r = rng::seeded(9, Stream::Sweep);
        model.params_mut().iter_mut().for_each(|p| *p += 0.2 * rng::normal(&mut r));
        let mut clicks = vec![0u8; 3];
        if let Some(k) = outcome {
            clicks[k] = 1;
        }
        let row = LoggedRow { user: 0, slate: vec![4, 1, 2], clicks, slate_propensity: 0.02, position_propensity: vec![0.2, 0.25, 0.3] };
        let (z, y) = ([0.3, -0.8, 1.1, 0.5], [0.4, 0.9]);
        let mut scratch = Scratch::default();
        let mut grad = Gradient::new(model.params.len());
        let mut tower_grad = vec![0.0f32; model.tower.len()];
        model.row_loss(&z, &y, &row, 1.0, Some((&mut grad, &mut tower_grad)), &mut scratch);
        let tower_start = model.tower_range().start;
        for i in 0..model.params.len() {
            // The tower computes in f32: its weights take a larger step, and the check a looser
            // tolerance (f32 rounding over 2h), than the heads' f64 parameters.
            let in_tower = model.tower_range().contains(&i);
            let (h, tolerance) = if in_tower { (1e-3, 1e-3) } else { (1e-6, 1e-6) };
            let (mut plus, mut minus) = (model.clone(), model.clone());
            plus.params_mut()[i] += h;
            minus.params_mut()[i] -= h;
            let numeric =
                (plus.row_loss(&z, &y, &row, 1.0, None, &mut scratch) - minus.row_loss(&z, &y, &row, 1.0, None, &mut scratch)) / (2.0 * h);
            let analytic = if in_tower { tower_grad[i - tower_start] as f64 } else { grad[i] };
            assert!(
                (numeric - analytic).abs() < tolerance * (1.0 + numeric.abs()),
                "{head:?} outcome {outcome:?} param {i}: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for head in [Head::Prr, Head::Reward, Head::Iips] {
            for outcome in [None, Some(0), Some(2)] {
                gradient_check(head, Tower::linear(4, 3), outcome);
                gradient_check(head, Tower::mlp(4, 2, 5, 3, Activation::Gelu), outcome);
                gradient_check(head, Tower::mlp(4, 1, 6, 3, Activation::Relu), outcome);
            }
        }
    }

    #[test]
    fn the_deep_tower_learns_a_nonlinear_world_better_than_the_linear_one() {
        let (logged, fresh) =
            populations(&WorldSpec { items: 100, slate_size: 3, context_features: 4, users: 1500, nonlinearity: 1.0, seed: 2 });
        let logging = PlackettLuce::new(&logged.world, LoggingKind::Uniform);
        let data = log_data(&logged.world, &logging, 30_000, 2, &mut ());
        let (train, validation) = data.rows.split_at(25_000);
        let ctr = data.ctr().mean;
        let train_model = |tower: Tower| {
            let mut model = TowerModel::new(Head::Prr, 100, 8, tower, ENGAGEMENT_FEATURES as usize, 3, None, ctr, 1);
            let f = fit(&mut model, &logged, train, validation, 15, 128, 0.01, &mut rng::seeded(1, Stream::Sweep), |_| {});
            (model, f)
        };
        let (linear, linear_fit) = train_model(Tower::linear(4, 8));
        let (deep, deep_fit) = train_model(Tower::mlp(4, 2, 32, 8, Activation::Relu));
        assert!(deep_fit.validation_loss.last() < linear_fit.validation_loss.last(), "{deep_fit:?}\n{linear_fit:?}");
        let ctr_of = |m: &TowerModel| deterministic_ctr_on(&fresh.world, &Served::new(m, &fresh, None, 0, ""), 1500);
        let (l, d, o) = (ctr_of(&linear), ctr_of(&deep), deterministic_ctr_on(&fresh.world, &Oracle, 1500));
        assert!(d > l && o >= d, "linear {l}, deep {d}, oracle {o}");
    }
}
