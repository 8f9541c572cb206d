//! REINFORCE at catalogue scale: a softmax policy over P items, trained to recommend a user's
//! held-out items, with three estimators of the same gradient.
//!
//! The objective for a context x is J(θ) = Σ_a π_θ(a|x) r(a, x), with π_θ(a|x) = softmax_a(f_a),
//! f_a = x θ E_aᵀ, E the fixed item embeddings and θ a d × d matrix. Its gradient is the
//! covariance of reward and score gradient under π:
//!
//! ∇J = Σ_a π_a (r_a − r̄) ∇f_a = xᵀ c,  c = Σ_a π_a (r_a − r̄) E_a,  r̄ = Σ_a π_a r_a.
//!
//! - [`Method::Exact`] computes c over the whole catalogue: P dot products and P exponentials
//!   for the normaliser. Sampling a ~ π for a REINFORCE estimate needs the same normaliser, so
//!   this is what REINFORCE costs per context, computed without sampling noise.
//! - [`Method::Sampled`] is REINFORCE as the tutorial runs it: the same O(P) normaliser, then S
//!   actions a_s ~ π and c ≈ (1/S) Σ_s r_s (E_{a_s} − Σ_b π_b E_b), the score-function estimate
//!   (the expected score is subtracted exactly, so it needs no other baseline). It is noisy where
//!   [`Method::Exact`] is not.
//! - [`Method::Uniform`] estimates the covariance by self-normalised importance sampling with
//!   a_s ~ uniform: ω_s ∝ exp(f_s)/q(a_s), c ≈ Σ_s ω̄_s (r_s − r̄_ω) E_{a_s}. No normaliser.
//! - [`Method::Mixture`] samples from q = ε/P + (1 − ε)·κ, κ the softmax restricted to the top-T
//!   items that the HNSW index returns for the query xθ: the samples land where π has its mass.

pub mod lesson;
pub mod plackett_luce;

use crate::core::embeddings::rsvd::{item_embeddings, randomized_svd, RsvdParams};
use crate::core::embeddings::{Csr, InteractionWorld, WorldSpec};
use crate::core::exp_lanes::exp_in_place;
use crate::core::math::{exp, ln};
use crate::core::mips::hnsw::{Config, MipsIndex};

use crate::core::mips::exact::{for_each_score, for_each_score_batch};
use crate::core::mips::{dot, Vectors};
use crate::core::progress::{staged, Progress};
use crate::core::prr::{Adam, Gradient};
use crate::core::rng::{self, Rng};
use serde::{Deserialize, Serialize};

/// The recipe of a catalogue world.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldConfig {
    pub users: u32,
    pub items: u32,
    pub topics: u32,
    /// Mean number of items a user interacted with (half observed, half held out).
    pub interactions: u32,
    pub dim: u32,
    pub seed: u64,
}

/// Users as contexts, items as embeddings, and what each user would reward.
pub struct CatalogueWorld {
    pub dim: u32,
    /// E: one row per item (P × d), unit length (see [`CatalogueWorld::build`]).
    pub items: Vectors,
    /// x_u: the mean of the user's observed items' rows of E (users × d).
    pub contexts: Vec<f64>,
    /// r(a, x_u) = 1 where a is in row u.
    pub held_out: Csr,
    pub train_users: Vec<u32>,
    pub validation_users: Vec<u32>,
}

/// σ of the log-normal item popularity: steeper than the embeddings lesson's 1.0, so that a
/// user's best items stand out in a catalogue of 10⁵ (real catalogues are steeper still).
pub const POPULARITY_SPREAD: f64 = 2.0;

/// Every fifth user is kept for validation; the policy never trains on them.
const VALIDATION_EVERY: u32 = 5;

impl CatalogueWorld {
    /// The embeddings lesson's world with half of each user's items held out, item embeddings
    /// from a randomized SVD of the observed half, scaled to unit length: with V√σ rows as they
    /// come, every logit x θ E_aᵀ of the initial policy is tiny and π is uniform over P.
    pub fn build(config: &WorldConfig, progress: &mut dyn Progress) -> Result<CatalogueWorld, String> {
        let density = config.interactions as f64 / config.items as f64;
        let spec = WorldSpec {
            held_out_fraction: 0.5,
            popularity_spread: POPULARITY_SPREAD,
            ..WorldSpec::new(config.users, config.items, config.topics, density)
        };
        progress.report(0.0, "drawing the world");
        let world = InteractionWorld::generate(&spec, config.seed)?;
        let svd =
            randomized_svd(&world.observed, &RsvdParams::new(config.dim, 10, 2, config.seed), false, &mut staged(progress, 0.1, 1.0))?;
        let embeddings = item_embeddings(&svd);
        let dim = embeddings.cols;
        let mut items = Vectors::new(dim as usize);
        let mut row = vec![0.0f32; dim as usize];
        for i in 0..embeddings.rows {
            let e = embeddings.row(i);
            let norm = e.iter().map(|v| v * v).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            row.iter_mut().zip(e).for_each(|(r, v)| *r = (v * scale) as f32);
            items.push(&row);
        }
        let mut contexts = vec![0.0; config.users as usize * dim as usize];
        for u in 0..config.users {
            let history = world.history(u);
            let x = &mut contexts[u as usize * dim as usize..(u as usize + 1) * dim as usize];
            for &i in history {
                x.iter_mut().zip(items.row(i as usize)).for_each(|(x, e)| *x += *e as f64);
            }
            let n = history.len().max(1) as f64;
            x.iter_mut().for_each(|v| *v /= n);
        }
        let (validation_users, train_users) = (0..config.users).partition(|u| u % VALIDATION_EVERY == 0);
        Ok(CatalogueWorld { dim, items, contexts, held_out: world.held_out, train_users, validation_users })
    }

    pub fn item_count(&self) -> u32 {
        self.items.len() as u32
    }

    pub fn context(&self, user: u32) -> &[f64] {
        let d = self.dim as usize;
        &self.contexts[user as usize * d..(user as usize + 1) * d]
    }

    /// r(a, x_u).
    pub fn reward(&self, user: u32, item: u32) -> f64 {
        if self.held_out.row_ids(user).binary_search(&item).is_ok() {
            1.0
        } else {
            0.0
        }
    }

    /// The HNSW index over the items that have an embedding (inner product space, the MIPS
    /// lesson's graph). Cold items (zero rows) score 0 for every query and are left out: a
    /// graph over thousands of identical points only slows the build down.
    pub fn index(&self, seed: u64, progress: &mut dyn Progress) -> CatalogueIndex {
        let ids: Vec<u32> = (0..self.item_count()).filter(|&a| self.items.row(a as usize).iter().any(|v| *v != 0.0)).collect();
        let mut warm = Vectors::new(self.dim as usize);
        for &a in &ids {
            warm.push(self.items.row(a as usize));
        }
        CatalogueIndex { index: MipsIndex::build(&warm, false, Config { m: 12, ef_construction: 48, seed }, progress), ids }
    }
}

/// The HNSW index and the catalogue ids of its points.
pub struct CatalogueIndex {
    pub index: MipsIndex,
    pub ids: Vec<u32>,
}

impl CatalogueIndex {
    /// Catalogue ids of the (approximate) top-k items for the query h.
    pub fn search(&mut self, h: &[f32], k: u32, ef: u32) -> Vec<u32> {
        self.index.search(h, k as usize, ef as usize).into_iter().map(|i| self.ids[i as usize]).collect()
    }
}

/// The policy's parameters: θ, d × d row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub dim: u32,
    pub theta: Vec<f64>,
}

impl Policy {
    /// θ = scale · I: the initial policy scores items by scale · x·E_a, the "mean of my items"
    /// recommender of the embeddings lesson turned into a softmax (scale 0: the uniform policy,
    /// where FOPO starts).
    pub fn scaled_identity(dim: u32, scale: f64) -> Policy {
        let mut theta = vec![0.0; dim as usize * dim as usize];
        for i in 0..dim as usize {
            theta[i * dim as usize + i] = scale;
        }
        Policy { dim, theta }
    }

    /// The query h = xθ, so that f_a = h·E_a (f32, the index's precision).
    pub fn query(&self, x: &[f64], out: &mut Vec<f32>) {
        let d = self.dim as usize;
        out.clear();
        out.extend((0..d).map(|j| (0..d).map(|i| x[i] * self.theta[i * d + j]).sum::<f64>() as f32));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    Exact,
    Uniform,
    Mixture,
    Sampled,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::Exact, Method::Sampled, Method::Uniform, Method::Mixture];

    pub fn id(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Sampled => "reinforce",
            Method::Uniform => "uniform",
            Method::Mixture => "mixture",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::Exact => "expected gradient, exact (O(P))",
            Method::Sampled => "REINFORCE, sampled (O(P))",
            Method::Uniform => "SNIS, uniform proposal",
            Method::Mixture => "SNIS, MIPS mixture proposal",
        }
    }

    pub fn from_id(id: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.id() == id)
    }
}

/// The sampled estimators' settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// S: samples per context.
    pub samples: u32,
    /// ε: the uniform share of the mixture proposal.
    pub epsilon: f64,
    /// T: the size of the MIPS top set κ lives on.
    pub top_t: u32,
}

/// Buffers reused by every context (no allocation per gradient).
#[derive(Default)]
pub struct Scratch {
    scores: Vec<f32>,
    weights: Vec<f64>,
    sampled: Vec<u32>,
    rewards: Vec<f64>,
    /// The top-T set as (item, κ), sorted by item (for looking up q(a) of any draw).
    top: Vec<(u32, f64)>,
    /// The same items in the index's rank order, with κ's running sum (for drawing from κ).
    ranked: Vec<u32>,
    kappa_cumulative: Vec<f64>,
    /// The exact gradient's two sums over items, Σ w_a E_a over all and over the rewarded ones.
    all_sum: Vec<f64>,
    rewarded_sum: Vec<f64>,
    /// A group's per-user maxima and normalisers (the exact gradient of several contexts at once).
    group_max: Vec<f64>,
    group_total: Vec<f64>,
}

/// What one estimate of c looked like: the effective sample size of the self-normalised
/// weights, (Σω)²/Σω², which is S for perfect proposals and 1 when one sample takes all.
#[derive(Clone, Copy, Debug, Default)]
pub struct EstimateInfo {
    pub effective_samples: f64,
}

/// c for one context, exactly: π over the whole catalogue.
pub fn direction_exact(world: &CatalogueWorld, user: u32, h: &[f32], out: &mut [f64], scratch: &mut Scratch) {
    let items = &world.items;
    scores_all(items, h, &mut scratch.scores);
    let max = scratch.scores.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let d = world.dim as usize;
    // Σ_a w_a E_a and Z, then the held-out items' share.
    let mut total = 0.0;
    let (mean, rewarded) = (&mut scratch.all_sum, &mut scratch.rewarded_sum);
    mean.clear();
    mean.resize(d, 0.0);
    rewarded.clear();
    rewarded.resize(d, 0.0);
    let weights = &mut scratch.weights;
    weights.clear();
    weights.extend(scratch.scores.iter().map(|&s| s as f64 - max));
    exp_in_place(weights);
    for (a, &w) in weights.iter().enumerate() {
        total += w;
        mean.iter_mut().zip(items.row(a)).for_each(|(m, e)| *m += w * *e as f64);
    }
    let mut reward_mass = 0.0;
    for &a in world.held_out.row_ids(user) {
        let w = weights[a as usize];
        reward_mass += w;
        rewarded.iter_mut().zip(items.row(a as usize)).for_each(|(m, e)| *m += w * *e as f64);
    }
    let r_bar = reward_mass / total;
    for j in 0..d {
        out[j] = (rewarded[j] - r_bar * mean[j]) / total;
    }
}

/// Contexts per pass of the exact gradient over the catalogue ([`directions_exact`]): their
/// G × P scores are kept between the passes (8 × 10⁵ f32 = 3.2 MB).
pub const EXACT_GROUP: usize = 8;

/// Items per block of [`directions_exact`]'s second pass: a block's embeddings (256 × d f32,
/// 32 KiB at d = 32) stay in cache while every context of the group sums over them.
const EXACT_BLOCK_ITEMS: usize = 256;

/// c for several contexts at once, exactly: the same numbers as [`direction_exact`] on each, bit
/// for bit (each context's sums run over the items in the same order), with the catalogue read
/// once per group instead of once per context: the scores by the batched exact scan, then
/// Σ_a w_a E_a and Z block by block. `out[g]` receives c for `users[g]`.
pub fn directions_exact(world: &CatalogueWorld, users: &[u32], queries: &[&[f32]], out: &mut [Vec<f64>], scratch: &mut Scratch) {
    let items = &world.items;
    let (n, d, group) = (items.len(), world.dim as usize, users.len());
    let scores = &mut scratch.scores;
    scores.clear();
    scores.resize(group * n, 0.0);
    for_each_score_batch(items, queries, |g, a, s| scores[g * n + a] = s);
    let max = &mut scratch.group_max;
    max.clear();
    max.extend(scores.chunks_exact(n.max(1)).map(|row| row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64));
    let (mean, total) = (&mut scratch.all_sum, &mut scratch.group_total);
    mean.clear();
    mean.resize(group * d, 0.0);
    total.clear();
    total.resize(group, 0.0);
    let mut start = 0;
    while start < n {
        let end = (start + EXACT_BLOCK_ITEMS).min(n);
        for g in 0..group {
            let (row, m) = (&scores[g * n..(g + 1) * n], &mut mean[g * d..(g + 1) * d]);
            let weights = &mut scratch.weights;
            weights.clear();
            weights.extend(row[start..end].iter().map(|&s| s as f64 - max[g]));
            exp_in_place(weights);
            for (a, &w) in (start..end).zip(weights.iter()) {
                total[g] += w;
                m.iter_mut().zip(items.row(a)).for_each(|(m, e)| *m += w * *e as f64);
            }
        }
        start = end;
    }
    for g in 0..group {
        let row = &scores[g * n..(g + 1) * n];
        let rewarded = &mut scratch.rewarded_sum;
        rewarded.clear();
        rewarded.resize(d, 0.0);
        let mut reward_mass = 0.0;
        for &a in world.held_out.row_ids(users[g]) {
            let w = exp(row[a as usize] as f64 - max[g]);
            reward_mass += w;
            rewarded.iter_mut().zip(items.row(a as usize)).for_each(|(m, e)| *m += w * *e as f64);
        }
        let r_bar = reward_mass / total[g];
        let m = &mean[g * d..(g + 1) * d];
        out[g].resize(d, 0.0);
        for j in 0..d {
            out[g][j] = (rewarded[j] - r_bar * m[j]) / total[g];
        }
    }
}

/// c for one context by REINFORCE: π over the whole catalogue (as for the exact direction),
/// `samples` actions drawn from it, and the score-function estimate with the exact expected score.
pub fn direction_sampled(
    world: &CatalogueWorld,
    user: u32,
    h: &[f32],
    samples: u32,
    rng: &mut Rng,
    out: &mut [f64],
    scratch: &mut Scratch,
) {
    let items = &world.items;
    scores_all(items, h, &mut scratch.scores);
    let max = scratch.scores.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let d = world.dim as usize;
    // Running sums of the weights (for drawing by bisection) and Σ_a w_a E_a.
    let mean = &mut scratch.all_sum;
    mean.clear();
    mean.resize(d, 0.0);
    scratch.weights.clear();
    scratch.weights.extend(scratch.scores.iter().map(|&s| s as f64 - max));
    exp_in_place(&mut scratch.weights);
    let mut total = 0.0;
    for (a, running) in scratch.weights.iter_mut().enumerate() {
        let w = *running;
        total += w;
        *running = total;
        mean.iter_mut().zip(items.row(a)).for_each(|(m, e)| *m += w * *e as f64);
    }
    mean.iter_mut().for_each(|m| *m /= total);
    out.iter_mut().for_each(|o| *o = 0.0);
    let last = scratch.weights.len() - 1;
    for _ in 0..samples {
        let point = rng::uniform(rng) * total;
        let a = scratch.weights.partition_point(|&c| c <= point).min(last);
        let r = world.reward(user, a as u32);
        if r != 0.0 {
            out.iter_mut().zip(items.row(a)).zip(mean.iter()).for_each(|((o, e), m)| *o += r * (*e as f64 - m));
        }
    }
    out.iter_mut().for_each(|o| *o /= samples.max(1) as f64);
}

/// Every item's score h·E_a (the exact MIPS scan's dot products).
pub fn scores_all(items: &Vectors, h: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.reserve(items.len());
    for_each_score(items, h, |_, s| out.push(s));
}

/// The mixture's MIPS part: κ, the softmax of f restricted to the index's top-T for h, and
/// ln q(a) = ln(ε/P + (1 − ε)·κ(a)) for each of those items (every other item has ln(ε/P)).
fn mips_top(index: &mut CatalogueIndex, items: &Vectors, h: &[f32], sampling: &Sampling, scratch: &mut Scratch) {
    let found = index.search(h, sampling.top_t, sampling.top_t);
    scratch.top.clear();
    scratch.top.extend(found.iter().map(|&a| (a, dot(items.row(a as usize), h) as f64)));
    let max = scratch.top.iter().map(|t| t.1).fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for t in scratch.top.iter_mut() {
        t.1 = exp(t.1 - max);
        total += t.1;
    }
    scratch.kappa_cumulative.clear();
    scratch.ranked.clear();
    let mut running = 0.0;
    let uniform_part = sampling.epsilon / items.len() as f64;
    for t in scratch.top.iter_mut() {
        let kappa = t.1 / total;
        running += kappa;
        scratch.kappa_cumulative.push(running);
        scratch.ranked.push(t.0);
        t.1 = ln(uniform_part + (1.0 - sampling.epsilon) * kappa);
    }
    scratch.top.sort_unstable_by_key(|t| t.0);
}

/// c for one context by self-normalised importance sampling. `index` is used by the mixture
/// proposal only (ε = 1 or `index: None` gives the uniform proposal).
#[allow(clippy::too_many_arguments)]
pub fn direction_snis(
    world: &CatalogueWorld,
    index: Option<&mut CatalogueIndex>,
    user: u32,
    h: &[f32],
    sampling: &Sampling,
    rng: &mut Rng,
    out: &mut [f64],
    scratch: &mut Scratch,
) -> EstimateInfo {
    let p = world.item_count();
    let items = &world.items;
    let mut use_kappa = false;
    if let Some(index) = index {
        if sampling.epsilon < 1.0 {
            mips_top(index, items, h, sampling, scratch);
            use_kappa = !scratch.ranked.is_empty();
        }
    }
    let epsilon = if use_kappa { sampling.epsilon } else { 1.0 };
    // ln q of an item outside the top set (all items, for the uniform proposal).
    let ln_q_outside = ln(epsilon / p as f64);
    scratch.sampled.clear();
    scratch.weights.clear();
    scratch.rewards.clear();
    for _ in 0..sampling.samples {
        let a = if !use_kappa || rng::uniform(rng) < epsilon {
            rng::index(rng, p)
        } else {
            let point = rng::uniform(rng) * scratch.kappa_cumulative.last().copied().unwrap_or(1.0);
            let slot = scratch.kappa_cumulative.partition_point(|&c| c <= point).min(scratch.ranked.len() - 1);
            scratch.ranked[slot]
        };
        let ln_q = if !use_kappa {
            ln_q_outside
        } else {
            scratch.top.binary_search_by_key(&a, |t| t.0).map(|k| scratch.top[k].1).unwrap_or(ln_q_outside)
        };
        scratch.sampled.push(a);
        scratch.rewards.push(world.reward(user, a));
        // ln ω = f − ln q; normalised below.
        scratch.weights.push(dot(items.row(a as usize), h) as f64 - ln_q);
    }
    let max = scratch.weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    scratch.weights.iter_mut().for_each(|w| *w -= max);
    exp_in_place(&mut scratch.weights);
    let mut total = 0.0;
    let mut squares = 0.0;
    for w in scratch.weights.iter() {
        total += *w;
        squares += *w * *w;
    }
    let mut r_bar = 0.0;
    for (w, &r) in scratch.weights.iter_mut().zip(&scratch.rewards) {
        *w /= total;
        r_bar += *w * r;
    }
    out.iter_mut().for_each(|o| *o = 0.0);
    for ((&w, &a), &r) in scratch.weights.iter().zip(&scratch.sampled).zip(&scratch.rewards) {
        let centred = r - r_bar;
        if centred != 0.0 {
            out.iter_mut().zip(items.row(a as usize)).for_each(|(o, e)| *o += w * centred * *e as f64);
        }
    }
    EstimateInfo { effective_samples: total * total / squares }
}

/// One method's training run: θ, its optimiser, its own sample stream, and the shared stream of
/// user batches (every method sees the same users in the same order: common random numbers).
pub struct Trainer {
    pub method: Method,
    pub policy: Policy,
    adam: Adam,
    sample_rng: Rng,
    batch_rng: Rng,
    scratch: Scratch,
    query: Vec<f32>,
    direction: Vec<f64>,
    gradient: Gradient,
    pub iterations: u32,
}

impl Trainer {
    pub fn new(method: Method, dim: u32, initial_scale: f64, learning_rate: f64, seed: u64) -> Trainer {
        let size = dim as usize * dim as usize;
        Trainer {
            method,
            policy: Policy::scaled_identity(dim, initial_scale),
            adam: Adam::new(size, learning_rate),
            sample_rng: rng::substream(seed, rng::Stream::Reinforce, method as u32),
            batch_rng: rng::seeded(seed, rng::Stream::ReinforceBatches),
            scratch: Scratch::default(),
            query: Vec::new(),
            direction: vec![0.0; dim as usize],
            gradient: Gradient::new(size),
            iterations: 0,
        }
    }

    /// One gradient step on `batch` training users drawn uniformly. Returns the mean effective
    /// sample size of the sampled estimators (P for the exact one).
    pub fn step(&mut self, world: &CatalogueWorld, index: &mut CatalogueIndex, sampling: &Sampling, batch: u32) -> f64 {
        let d = world.dim as usize;
        self.gradient.clear();
        if self.method == Method::Exact {
            return self.step_exact(world, batch);
        }
        let mut effective = 0.0;
        for _ in 0..batch {
            let user = world.train_users[rng::index(&mut self.batch_rng, world.train_users.len() as u32) as usize];
            let x = world.context(user);
            self.policy.query(x, &mut self.query);
            match self.method {
                Method::Exact => unreachable!("step_exact"),
                Method::Sampled => {
                    let samples = sampling.samples;
                    direction_sampled(world, user, &self.query, samples, &mut self.sample_rng, &mut self.direction, &mut self.scratch);
                    // Draws from π itself: every sample counts fully.
                    effective += samples as f64;
                }
                Method::Uniform | Method::Mixture => {
                    let index = (self.method == Method::Mixture).then_some(&mut *index);
                    let info = direction_snis(
                        world,
                        index,
                        user,
                        &self.query,
                        sampling,
                        &mut self.sample_rng,
                        &mut self.direction,
                        &mut self.scratch,
                    );
                    effective += info.effective_samples;
                }
            }
            // ∇θ = xᵀ c, averaged over the batch.
            for (i, xi) in x.iter().enumerate() {
                let xi = xi / batch as f64;
                self.direction.iter().enumerate().for_each(|(j, c)| self.gradient.add(i * d + j, xi * c));
            }
        }
        // Ascent: the objective is a reward.
        self.adam.step(&mut self.policy.theta, &self.gradient, -1.0);
        self.iterations += 1;
        effective / batch as f64
    }

    /// The exact gradient's step: the batch's users drawn first (the same draws as one by one),
    /// their directions computed [`EXACT_GROUP`] at a time in one pass over the catalogue each,
    /// then added to the gradient in the batch's order, so the step is the one `direction_exact`
    /// user by user would take, bit for bit.
    fn step_exact(&mut self, world: &CatalogueWorld, batch: u32) -> f64 {
        let d = world.dim as usize;
        let users: Vec<u32> =
            (0..batch).map(|_| world.train_users[rng::index(&mut self.batch_rng, world.train_users.len() as u32) as usize]).collect();
        let queries: Vec<Vec<f32>> = users
            .iter()
            .map(|&user| {
                let mut query = Vec::new();
                self.policy.query(world.context(user), &mut query);
                query
            })
            .collect();
        let mut directions = vec![Vec::new(); EXACT_GROUP.min(users.len())];
        for (group, group_queries) in users.chunks(EXACT_GROUP).zip(queries.chunks(EXACT_GROUP)) {
            let refs: Vec<&[f32]> = group_queries.iter().map(Vec::as_slice).collect();
            directions_exact(world, group, &refs, &mut directions, &mut self.scratch);
            // ∇θ = xᵀ c, averaged over the batch.
            for (&user, c) in group.iter().zip(&directions) {
                for (i, xi) in world.context(user).iter().enumerate() {
                    let xi = xi / batch as f64;
                    c.iter().enumerate().for_each(|(j, c)| self.gradient.add(i * d + j, xi * c));
                }
            }
        }
        self.adam.step(&mut self.policy.theta, &self.gradient, -1.0);
        self.iterations += 1;
        world.item_count() as f64
    }
}

/// The search width used when the index recommends (hit@1 via the index).
pub const EVAL_EF: u32 = 32;

/// Share of `users` (validation users) whose top item, found by `top_item`, is one of their
/// held-out items.
fn hit_at_1(world: &CatalogueWorld, users: &[u32], policy: &Policy, mut top_item: impl FnMut(&[f32]) -> Option<u32>) -> f64 {
    let mut query = Vec::new();
    let hits: u32 = users
        .iter()
        .map(|&u| {
            policy.query(world.context(u), &mut query);
            top_item(&query).map_or(0, |a| world.reward(u, a) as u32)
        })
        .sum();
    hits as f64 / users.len().max(1) as f64
}

/// hit@1 on `users` with the top item found by the index (how the policy is served).
pub fn hit_at_1_index(world: &CatalogueWorld, users: &[u32], index: &mut CatalogueIndex, policy: &Policy) -> f64 {
    hit_at_1(world, users, policy, |query| index.search(query, 1, EVAL_EF).first().copied())
}

/// Users per pass of [`hit_at_1_exact`] over the catalogue.
const EXACT_EVAL_GROUP: usize = 32;

/// hit@1 on `users` with the exact argmax over the catalogue (the policy's true top item): the
/// batched exact top-K, 32 users per pass (the same argmax as one user at a time, bit for bit).
pub fn hit_at_1_exact(world: &CatalogueWorld, users: &[u32], policy: &Policy) -> f64 {
    let mut hits = 0u32;
    let search = crate::core::mips::exact::BatchSearch::new(&world.items);
    for group in users.chunks(EXACT_EVAL_GROUP) {
        let queries: Vec<Vec<f32>> = group
            .iter()
            .map(|&u| {
                let mut query = Vec::new();
                policy.query(world.context(u), &mut query);
                query
            })
            .collect();
        let batch: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        let top = search.top_k_batch(&batch, 1);
        hits += group.iter().zip(&top).map(|(&u, found)| found.first().map_or(0, |&(_, a)| world.reward(u, a) as u32)).sum::<u32>();
    }
    hits as f64 / users.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_world(items: u32, seed: u64) -> CatalogueWorld {
        let config = WorldConfig { users: 600, items, topics: 10, interactions: 20, dim: 8, seed };
        CatalogueWorld::build(&config, &mut ()).unwrap()
    }

    #[test]
    fn exact_hit_at_1_in_batches_is_hit_at_1_one_user_at_a_time() {
        let world = small_world(300, 4);
        let policy = Policy::scaled_identity(world.dim, 8.0);
        let users: Vec<u32> = world.validation_users.iter().copied().take(70).collect();
        let one_by_one =
            hit_at_1(&world, &users, &policy, |q| crate::core::mips::exact::top_k(&world.items, q, 1).first().map(|&(_, a)| a));
        assert_eq!(hit_at_1_exact(&world, &users, &policy).to_bits(), one_by_one.to_bits());
        assert!(one_by_one > 0.0);
    }

    #[test]
    fn snis_converges_to_the_exact_gradient() {
        let world = small_world(300, 1);
        let mut index = world.index(1, &mut ());
        let policy = Policy::scaled_identity(world.dim, 8.0);
        let mut scratch = Scratch::default();
        let mut query = Vec::new();
        let d = world.dim as usize;
        for method in [Method::Uniform, Method::Mixture] {
            let mut errors = Vec::new();
            for samples in [30, 300, 3000, 30000] {
                let sampling = Sampling { samples, epsilon: 0.5, top_t: 32 };
                let mut rng = rng::seeded(5, rng::Stream::MonteCarlo);
                let mut error = 0.0;
                let mut norm = 0.0;
                for &user in world.train_users.iter().take(20) {
                    policy.query(world.context(user), &mut query);
                    let mut exact = vec![0.0; d];
                    direction_exact(&world, user, &query, &mut exact, &mut scratch);
                    let mut estimate = vec![0.0; d];
                    let index = (method == Method::Mixture).then_some(&mut index);
                    direction_snis(&world, index, user, &query, &sampling, &mut rng, &mut estimate, &mut scratch);
                    error += exact.iter().zip(&estimate).map(|(e, s)| (e - s) * (e - s)).sum::<f64>();
                    norm += exact.iter().map(|e| e * e).sum::<f64>();
                }
                errors.push(error / norm);
            }
            assert!(errors.windows(2).all(|w| w[1] < w[0]), "{method:?}: {errors:?}");
            assert!(errors[3] < 0.01, "{method:?}: relative squared error {errors:?}");
        }
    }

    #[test]
    fn exact_directions_of_a_group_are_those_of_each_context_alone() {
        // 300 items: the blocks of the second pass end part-way (256 + 44).
        let world = small_world(300, 3);
        let policy = Policy::scaled_identity(world.dim, 6.0);
        let users: Vec<u32> = world.train_users.iter().copied().take(5).collect();
        let queries: Vec<Vec<f32>> = users
            .iter()
            .map(|&u| {
                let mut q = Vec::new();
                policy.query(world.context(u), &mut q);
                q
            })
            .collect();
        let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        let mut together = vec![Vec::new(); users.len()];
        let mut scratch = Scratch::default();
        directions_exact(&world, &users, &refs, &mut together, &mut scratch);
        for (g, &user) in users.iter().enumerate() {
            let mut alone = vec![0.0; world.dim as usize];
            direction_exact(&world, user, &queries[g], &mut alone, &mut scratch);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&together[g]), bits(&alone), "user {user}");
        }
    }

    #[test]
    fn an_exact_step_in_groups_is_the_step_user_by_user() {
        let world = small_world(300, 5);
        let mut index = world.index(1, &mut ());
        let sampling = Sampling { samples: 16, epsilon: 0.5, top_t: 8 };
        let mut grouped = Trainer::new(Method::Exact, world.dim, 4.0, 0.05, 9);
        let mut by_user = Trainer::new(Method::Exact, world.dim, 4.0, 0.05, 9);
        let d = world.dim as usize;
        // A batch of 11: one full group of 8 and a group of 3.
        for _ in 0..3 {
            grouped.step(&world, &mut index, &sampling, 11);
            let t = &mut by_user;
            t.gradient.clear();
            for _ in 0..11 {
                let user = world.train_users[rng::index(&mut t.batch_rng, world.train_users.len() as u32) as usize];
                t.policy.query(world.context(user), &mut t.query);
                direction_exact(&world, user, &t.query, &mut t.direction, &mut t.scratch);
                for (i, xi) in world.context(user).iter().enumerate() {
                    let xi = xi / 11.0;
                    t.direction.iter().enumerate().for_each(|(j, c)| t.gradient.add(i * d + j, xi * c));
                }
            }
            t.adam.step(&mut t.policy.theta, &t.gradient, -1.0);
        }
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&grouped.policy.theta), bits(&by_user.policy.theta));
    }

    #[test]
    fn sampled_reinforce_converges_to_the_exact_gradient() {
        let world = small_world(300, 4);
        let policy = Policy::scaled_identity(world.dim, 8.0);
        let (mut scratch, mut query) = (Scratch::default(), Vec::new());
        let d = world.dim as usize;
        let mut errors = Vec::new();
        for samples in [10, 100, 1000, 10000] {
            let mut rng = rng::seeded(6, rng::Stream::MonteCarlo);
            let (mut error, mut norm) = (0.0, 0.0);
            for &user in world.train_users.iter().take(20) {
                policy.query(world.context(user), &mut query);
                let (mut exact, mut estimate) = (vec![0.0; d], vec![0.0; d]);
                direction_exact(&world, user, &query, &mut exact, &mut scratch);
                direction_sampled(&world, user, &query, samples, &mut rng, &mut estimate, &mut scratch);
                error += exact.iter().zip(&estimate).map(|(e, s)| (e - s) * (e - s)).sum::<f64>();
                norm += exact.iter().map(|e| e * e).sum::<f64>();
            }
            errors.push(error / norm);
        }
        // Unbiased, with variance ∝ 1/S: the error shrinks about tenfold per tenfold S.
        assert!(errors.windows(2).all(|w| w[1] < w[0] / 3.0), "{errors:?}");
        assert!(errors[3] < 0.02, "{errors:?}");
    }

    #[test]
    fn exact_direction_is_the_gradient_of_the_expected_reward() {
        let world = small_world(200, 2);
        let user = world.train_users[3];
        let x = world.context(user).to_vec();
        let policy = Policy::scaled_identity(world.dim, 5.0);
        let expected_reward = |p: &Policy| {
            let mut q = Vec::new();
            p.query(&x, &mut q);
            let mut scores = Vec::new();
            scores_all(&world.items, &q, &mut scores);
            let weights: Vec<f64> = scores.iter().map(|&s| exp(s as f64)).collect();
            let total: f64 = weights.iter().sum();
            world.held_out.row_ids(user).iter().map(|&a| weights[a as usize]).sum::<f64>() / total
        };
        let mut query = Vec::new();
        policy.query(&x, &mut query);
        let mut c = vec![0.0; world.dim as usize];
        direction_exact(&world, user, &query, &mut c, &mut Scratch::default());
        let d = world.dim as usize;
        for (i, j) in [(0, 0), (1, 3), (4, 2)] {
            let mut plus = policy.clone();
            plus.theta[i * d + j] += 1e-3;
            let mut minus = policy.clone();
            minus.theta[i * d + j] -= 1e-3;
            let numeric = (expected_reward(&plus) - expected_reward(&minus)) / 2e-3;
            let analytic = x[i] * c[j];
            // f32 scores and query: agreement to about two digits.
            assert!((numeric - analytic).abs() < 2e-2 * analytic.abs().max(1e-4), "({i},{j}): {numeric} vs {analytic}");
        }
    }

    #[test]
    fn training_improves_hit_at_1() {
        let config = WorldConfig { users: 2000, items: 3000, topics: 16, interactions: 30, dim: 16, seed: 3 };
        let world = CatalogueWorld::build(&config, &mut ()).unwrap();
        let mut index = world.index(3, &mut ());
        let sampling = Sampling { samples: 128, epsilon: 0.5, top_t: 32 };
        let mut finals = Vec::new();
        for method in [Method::Exact, Method::Mixture] {
            let mut trainer = Trainer::new(method, world.dim, 20.0, 0.05, 3);
            let before = hit_at_1_exact(&world, &world.validation_users, &trainer.policy);
            for _ in 0..150 {
                trainer.step(&world, &mut index, &sampling, 32);
            }
            let after = hit_at_1_exact(&world, &world.validation_users, &trainer.policy);
            assert!(after > before + 0.04, "{method:?}: {before} → {after}");
            finals.push(after);
        }
        // The MIPS mixture learns about as well as the exact gradient.
        assert!((finals[0] - finals[1]).abs() < 0.05, "{finals:?}");
    }
}
