//! The slate world: a catalogue, a population of users, and a click model.
//!
//! Everything the later lessons simulate comes from here. A user (context) x = (z, y) has a
//! context category z (with an embedding g(z)) and engagement features y. Showing a slate
//! A = (a_1..a_K) gives one of K+1 outcomes under the PRR oracle:
//!
//! θ_0 = exp(y·φ + b),  θ_k = exp(g(z)·Ψ_{a_k} + γ_k) + exp(α_k),  outcome ~ Categorical(θ / Σθ),
//!
//! so P(click) = 1 − θ_0/Z. The reward of a slate is whether anything was clicked: not a sum of
//! per-item rewards, because the K items compete for one click. A position-based model (PBM:
//! independent clicks with probability examination_k · attraction(z, a)) is the alternative.
//!
//! Submodules: [`policy`] (logging policies with exact propensities), [`simulate`] (logged data, exact
//! and Monte-Carlo CTR, A/B tests) and [`lesson`] (lesson 1's experiment).

pub mod distribution;
pub mod lesson;
pub mod policy;
pub mod simulate;

use crate::core::math::exp;
use crate::core::rng::{self, Rng, Stream};
use serde::{Deserialize, Serialize};

/// Largest slate any world produces (the PRR paper's K = 18 column needs more than 10). The
/// slate-world and Horvitz–Thompson lessons stop at [`lesson::MAX_K`].
pub const MAX_SLATE: u32 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClickModel {
    /// PRR oracle: one click at most, K+1 competing outcomes.
    Prr,
    /// Position-based model: independent clicks, examination 1/k.
    Pbm,
}

/// A user of the population: a context category z and engagement features y.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub category: u32,
    pub engagement: Vec<f64>,
    /// ln θ_0 = y·φ + b: how reluctant this user is to click at all.
    pub log_no_click: f64,
    /// θ_0 = exp(ln θ_0), computed once: every simulated impression of the user needs it.
    no_click_weight: f64,
}

impl User {
    pub fn new(category: u32, engagement: Vec<f64>, log_no_click: f64) -> User {
        User { category, engagement, log_no_click, no_click_weight: exp(log_no_click) }
    }

    /// θ_0 = exp(y·φ + b).
    pub fn no_click_weight(&self) -> f64 {
        self.no_click_weight
    }
}

/// Slate sizes of the toy world (the notebook's banners of 2 to 4 items).
pub const TOY_SLATE_SIZES: [u32; 3] = [2, 3, 4];

/// How many positions a banner has: fixed K, or uniform in min..=max (the toy world).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlateSizes {
    pub min: u32,
    pub max: u32,
}

#[derive(Clone, Debug)]
pub struct World {
    pub name: String,
    pub item_names: Vec<String>,
    pub category_names: Vec<String>,
    pub dim: u32,
    /// Ψ: P × d, row-major.
    pub item_embeddings: Vec<f64>,
    pub item_topic: Vec<u32>,
    /// Popularity weights (> 0) used by the popularity logging policy.
    pub item_popularity: Vec<f64>,
    /// g(z): C × d, row-major.
    pub category_embeddings: Vec<f64>,
    pub users: Vec<User>,
    /// γ_k (position effect) and α_k (noise clicks), for k = 1..MAX_SLATE.
    pub position_gamma: Vec<f64>,
    pub position_alpha: Vec<f64>,
    pub slate_sizes: SlateSizes,
    pub click_model: ClickModel,
    /// Impressions take the users in order, each a fresh session (the notebook's simulator),
    /// instead of drawing them at random from the population.
    pub fresh_sessions: bool,
    /// g(z)·Ψ_a and its exp, C × P, cached because every simulation needs them.
    affinity: Vec<f64>,
    exp_affinity: Vec<f64>,
    /// exp γ_k and exp α_k, for the same reason (PRR's θ_k = exp(g·Ψ_a) exp γ_k + exp α_k).
    exp_position_gamma: Vec<f64>,
    exp_position_alpha: Vec<f64>,
}

/// The toy world's catalogue and categories (as in the PRR notebook).
pub const TOY_ITEMS: [&str; 7] = ["running shoes", "phone", "boots", "mic", "carpet", "pillow", "tennis balls"];
pub const TOY_CATEGORIES: [&str; 4] = ["sports", "tech", "house", "fashion"];

/// The notebook's oracle lookup table (its `product_lookup`): item a's embedding Ψ_a, one entry
/// per category. g(z) is one-hot(z), so g(z)·Ψ_a is entry z of row a, graded in [−1, 1].
const TOY_ITEM_EMBEDDINGS: [[f64; 4]; 7] = [
    // sports tech  house fashion
    [1.0, -0.4, -0.6, 0.8],  // running shoes
    [-0.2, 1.0, 0.2, 0.0],   // phone
    [-0.6, -0.6, 0.0, 1.0],  // boots
    [-1.0, 0.8, -0.2, -0.8], // mic
    [0.0, 0.0, 1.0, 0.6],    // carpet
    [-0.8, -0.2, 0.8, 0.4],  // pillow
    [0.8, -1.0, -1.0, -1.0], // tennis balls
];

/// Scale of g(z) in the synthetic world: a matching item scores ≈ 4, an unrelated one ≈ 0.
const AFFINITY_STRENGTH: f64 = 4.0;
/// Parameters of a synthetic world (the toy world has none but the seed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyntheticSpec {
    pub items: u32,
    pub slate_size: u32,
    pub dim: u32,
    pub categories: u32,
    pub topics: u32,
    pub users: u32,
    pub engagement_features: u32,
}

impl SyntheticSpec {
    /// The lessons' recipe: d = 8 and two topics per context category.
    pub fn with_contexts(items: u32, slate_size: u32, contexts: u32, users: u32, engagement_features: u32) -> SyntheticSpec {
        SyntheticSpec { items, slate_size, dim: 8, categories: contexts, topics: (contexts * 2).max(2), users, engagement_features }
    }
}

impl World {
    /// The notebook's toy world (its `Oracle` and `Simulator`): 7 items, 4 categories, the
    /// notebook's lookup table as Ψ with g(z) = one-hot(z), slates of 2–4, 2 engagement features
    /// with φ ~ N(8, 0.1²) each plus a bias b ~ N(0, 1), α_k ~ N(0, 1), γ_k = 1 − (k−1)/40.
    /// A population of `users` users, each a session as the notebook draws them (category uniform,
    /// y ~ U[0,1]²), which impressions draw from at random.
    pub fn toy(seed: u64, users: u32, click_model: ClickModel) -> World {
        Self::toy_sessions(seed, users, click_model, rng::seeded(seed, Stream::Users))
    }

    /// The toy world as the notebook's simulator runs it: `sessions` fresh sessions taken in
    /// order, one per impression, so that no session is shown twice. `test` draws an independent
    /// set of sessions (the A/B test's) of the same world: the same hidden parameters.
    pub fn toy_fresh(seed: u64, sessions: u32, click_model: ClickModel, test: bool) -> World {
        let mut world = Self::toy_sessions(seed, sessions, click_model, rng::substream(seed, Stream::Users, u32::from(test)));
        world.fresh_sessions = true;
        world
    }

    fn toy_sessions(seed: u64, users: u32, click_model: ClickModel, mut sessions: Rng) -> World {
        let mut rng = rng::seeded(seed, Stream::World);
        let dim = TOY_CATEGORIES.len() as u32;
        let item_embeddings: Vec<f64> = TOY_ITEM_EMBEDDINGS.iter().flatten().copied().collect();
        let mut category_embeddings = vec![0.0; (dim * dim) as usize];
        for z in 0..dim as usize {
            category_embeddings[z * dim as usize + z] = 1.0;
        }
        let item_topic = TOY_ITEM_EMBEDDINGS.iter().map(|row| (0..4).max_by(|&x, &y| row[x].total_cmp(&row[y])).unwrap() as u32).collect();
        // As in the synthetic world, an item's popularity is the norm of its embedding.
        let item_popularity = TOY_ITEM_EMBEDDINGS.iter().map(|row| dot(row, row).sqrt()).collect();
        let (phi, bias) = engagement_weights(&mut rng, 2, 8.0);
        let (position_gamma, position_alpha) = position_effects(&mut rng);
        let population = population(&mut sessions, users, 2, &phi, bias, |rng| rng::index(rng, 4));
        World::assemble(
            "toy".into(),
            TOY_ITEMS.iter().map(|s| s.to_string()).collect(),
            TOY_CATEGORIES.iter().map(|s| s.to_string()).collect(),
            dim,
            item_embeddings,
            item_topic,
            item_popularity,
            category_embeddings,
            population,
            position_gamma,
            position_alpha,
            SlateSizes { min: TOY_SLATE_SIZES[0], max: TOY_SLATE_SIZES[TOY_SLATE_SIZES.len() - 1] },
            click_model,
        )
    }

    /// A synthetic world (the PRR paper's larger setting, scaled to a browser tab): items around
    /// `topics` random unit directions with log-normal norms (the norm is the popularity), context
    /// categories that like 1 + Poisson(1) topics, g(z) = 4 · mean of their topic directions.
    pub fn synthetic(seed: u64, spec: SyntheticSpec, click_model: ClickModel) -> World {
        let mut rng = rng::seeded(seed, Stream::World);
        let d = spec.dim as usize;
        let topics: Vec<Vec<f64>> = (0..spec.topics).map(|_| unit_vector(&mut rng, d)).collect();
        let mut item_embeddings = Vec::with_capacity(spec.items as usize * d);
        let mut item_topic = Vec::with_capacity(spec.items as usize);
        let mut item_popularity = Vec::with_capacity(spec.items as usize);
        let noise_scale = 0.6 / (d as f64).sqrt();
        for _ in 0..spec.items {
            let topic = rng::index(&mut rng, spec.topics);
            let norm = exp(0.35 * rng::normal(&mut rng));
            for t in &topics[topic as usize] {
                item_embeddings.push(norm * (t + noise_scale * rng::normal(&mut rng)));
            }
            item_topic.push(topic);
            item_popularity.push(norm);
        }
        let mut category_embeddings = Vec::with_capacity(spec.categories as usize * d);
        let mut category_names = Vec::new();
        for c in 0..spec.categories {
            let liked = (1 + rng::poisson(&mut rng, 1.0)).min(spec.topics);
            let mut chosen: Vec<u32> = Vec::new();
            while (chosen.len() as u32) < liked {
                let t = rng::index(&mut rng, spec.topics);
                if !chosen.contains(&t) {
                    chosen.push(t);
                }
            }
            chosen.sort_unstable();
            let mut g = vec![0.0; d];
            for t in &chosen {
                for (gj, tj) in g.iter_mut().zip(&topics[*t as usize]) {
                    *gj += AFFINITY_STRENGTH * tj / chosen.len() as f64;
                }
            }
            category_embeddings.extend_from_slice(&g);
            let names: Vec<String> = chosen.iter().map(|t| format!("t{t}")).collect();
            category_names.push(format!("z{c} ({})", names.join("+")));
        }
        let (phi, bias) = engagement_weights(&mut rng, spec.engagement_features, 18.0 / spec.engagement_features as f64);
        let (position_gamma, position_alpha) = position_effects(&mut rng);
        let categories = spec.categories;
        let mut sessions = rng::seeded(seed, Stream::Users);
        let population = population(&mut sessions, spec.users, spec.engagement_features, &phi, bias, |rng| rng::index(rng, categories));
        World::assemble(
            "synthetic".into(),
            (0..spec.items).map(|a| format!("item {a}")).collect(),
            category_names,
            spec.dim,
            item_embeddings,
            item_topic,
            item_popularity,
            category_embeddings,
            population,
            position_gamma,
            position_alpha,
            SlateSizes { min: spec.slate_size, max: spec.slate_size },
            click_model,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        name: String,
        item_names: Vec<String>,
        category_names: Vec<String>,
        dim: u32,
        item_embeddings: Vec<f64>,
        item_topic: Vec<u32>,
        item_popularity: Vec<f64>,
        category_embeddings: Vec<f64>,
        users: Vec<User>,
        position_gamma: Vec<f64>,
        position_alpha: Vec<f64>,
        slate_sizes: SlateSizes,
        click_model: ClickModel,
    ) -> World {
        let mut world = World {
            name,
            item_names,
            category_names,
            dim,
            item_embeddings,
            item_topic,
            item_popularity,
            category_embeddings,
            users,
            position_gamma,
            position_alpha,
            slate_sizes,
            click_model,
            fresh_sessions: false,
            affinity: Vec::new(),
            exp_affinity: Vec::new(),
            exp_position_gamma: Vec::new(),
            exp_position_alpha: Vec::new(),
        };
        world.exp_position_gamma = world.position_gamma.iter().map(|g| exp(*g)).collect();
        world.exp_position_alpha = world.position_alpha.iter().map(|a| exp(*a)).collect();
        let (items, categories) = (world.items(), world.categories());
        let mut cache = Vec::with_capacity((items * categories) as usize);
        for z in 0..categories {
            for a in 0..items {
                cache.push(dot(world.category_embedding(z), world.item_embedding(a)));
            }
        }
        world.exp_affinity = cache.iter().map(|s| exp(*s)).collect();
        world.affinity = cache;
        world
    }

    /// This world's catalogue, positions and click model for another population, in which every
    /// user has a context embedding of their own (continuous contexts): user i becomes category i,
    /// with row i of `embeddings` (users × d) as its g. The capstone lesson's worlds.
    pub fn with_user_embeddings(&self, users: Vec<User>, embeddings: Vec<f64>) -> World {
        assert_eq!(embeddings.len(), users.len() * self.dim as usize, "one embedding per user");
        let users: Vec<User> = users.into_iter().enumerate().map(|(i, u)| User { category: i as u32, ..u }).collect();
        let names = (0..users.len()).map(|i| format!("user {i}")).collect();
        World::assemble(
            self.name.clone(),
            self.item_names.clone(),
            names,
            self.dim,
            self.item_embeddings.clone(),
            self.item_topic.clone(),
            self.item_popularity.clone(),
            embeddings,
            users,
            self.position_gamma.clone(),
            self.position_alpha.clone(),
            self.slate_sizes,
            self.click_model,
        )
    }

    pub fn items(&self) -> u32 {
        self.item_topic.len() as u32
    }

    pub fn categories(&self) -> u32 {
        self.category_names.len() as u32
    }

    pub fn item_embedding(&self, a: u32) -> &[f64] {
        let d = self.dim as usize;
        &self.item_embeddings[a as usize * d..(a as usize + 1) * d]
    }

    pub fn category_embedding(&self, z: u32) -> &[f64] {
        let d = self.dim as usize;
        &self.category_embeddings[z as usize * d..(z as usize + 1) * d]
    }

    /// g(z)·Ψ_a: how much category z likes item a (cached).
    #[inline]
    pub fn affinity(&self, z: u32, a: u32) -> f64 {
        self.affinity[(z * self.items() + a) as usize]
    }

    /// A copy of this world whose affinities carry multiplicative noise exp(σ·ε), ε ~ N(0, 1):
    /// a stand-in for a learned reward model that is right on average but not item by item.
    pub fn with_affinity_noise(&self, sigma: f64, seed: u64) -> World {
        let mut rng = rng::seeded(seed, Stream::Model);
        let mut noisy = self.clone();
        for s in noisy.affinity.iter_mut() {
            *s += sigma * rng::normal(&mut rng);
        }
        noisy.exp_affinity = noisy.affinity.iter().map(|s| exp(*s)).collect();
        noisy
    }

    /// exp(g(z)·Ψ_a), cached.
    #[inline]
    pub fn exp_affinity(&self, z: u32, a: u32) -> f64 {
        self.exp_affinity[(z * self.items() + a) as usize]
    }

    /// PRR's θ_k of item `a` at position `k` for category `z`: exp(g(z)·Ψ_a) exp(γ_k) + exp(α_k).
    #[inline]
    pub fn position_theta(&self, z: u32, k: usize, a: u32) -> f64 {
        self.exp_affinity(z, a) * self.exp_position_gamma[k] + self.exp_position_alpha[k]
    }

    /// Probability of each outcome: entry 0 = no click, entry k = click at position k (PRR), or the
    /// per-position click probabilities with entry 0 = P(no click at all) (PBM).
    pub fn outcome_probabilities(&self, user: &User, slate: &[u32], out: &mut Vec<f64>) {
        out.clear();
        match self.click_model {
            ClickModel::Prr => {
                out.push(1.0);
                let theta0 = user.no_click_weight;
                let mut total = theta0;
                for (k, &a) in slate.iter().enumerate() {
                    let theta = self.position_theta(user.category, k, a);
                    out.push(theta);
                    total += theta;
                }
                out[0] = theta0;
                out.iter_mut().for_each(|t| *t /= total);
            }
            ClickModel::Pbm => {
                out.push(1.0);
                for (k, &a) in slate.iter().enumerate() {
                    let p = self.pbm_click(user, k as u32, a);
                    out[0] *= 1.0 - p;
                    out.push(p);
                }
            }
        }
    }

    /// PBM: examination 1/k times attraction σ(g(z)·Ψ_a + γ_k − ln θ_0).
    fn pbm_click(&self, user: &User, position: u32, a: u32) -> f64 {
        let examination = 1.0 / (position + 1) as f64;
        let logit = self.affinity(user.category, a) + self.position_gamma[position as usize] - user.log_no_click;
        examination / (1.0 + exp(-logit))
    }

    /// Expected reward (probability of at least one click) of showing `slate` to `user`.
    pub fn expected_reward(&self, user: &User, slate: &[u32]) -> f64 {
        match self.click_model {
            ClickModel::Prr => {
                let mut clicks = 0.0;
                for (k, &a) in slate.iter().enumerate() {
                    clicks += self.position_theta(user.category, k, a);
                }
                let theta0 = user.no_click_weight;
                clicks / (theta0 + clicks)
            }
            ClickModel::Pbm => {
                let mut none = 1.0;
                for (k, &a) in slate.iter().enumerate() {
                    none *= 1.0 - self.pbm_click(user, k as u32, a);
                }
                1.0 - none
            }
        }
    }

    /// Expected number of clicks on the slate: the same as `expected_reward` under PRR (one click
    /// at most), Σ_k P(click at k) under PBM.
    pub fn expected_clicks(&self, user: &User, slate: &[u32]) -> f64 {
        match self.click_model {
            ClickModel::Prr => self.expected_reward(user, slate),
            ClickModel::Pbm => slate.iter().enumerate().map(|(k, &a)| self.pbm_click(user, k as u32, a)).sum(),
        }
    }

    /// E[(clicks on the slate)²]: the second moment an importance-weighted estimator's variance
    /// depends on (= P(click) under PRR; Σ p_k(1 − p_k) + (Σ p_k)² under PBM).
    pub fn expected_squared_clicks(&self, user: &User, slate: &[u32]) -> f64 {
        match self.click_model {
            ClickModel::Prr => self.expected_reward(user, slate),
            ClickModel::Pbm => {
                let p: Vec<f64> = slate.iter().enumerate().map(|(k, &a)| self.pbm_click(user, k as u32, a)).collect();
                let mean: f64 = p.iter().sum();
                p.iter().map(|q| q * (1.0 - q)).sum::<f64>() + mean * mean
            }
        }
    }

    /// Draw the per-position clicks of one impression into `clicks` (0/1 per position).
    pub fn sample_clicks(&self, user: &User, slate: &[u32], rng: &mut Rng, scratch: &mut Vec<f64>, clicks: &mut Vec<u8>) {
        clicks.clear();
        clicks.resize(slate.len(), 0);
        self.outcome_probabilities(user, slate, scratch);
        match self.click_model {
            ClickModel::Prr => {
                let outcome = rng::categorical(rng, scratch);
                if outcome > 0 {
                    clicks[outcome as usize - 1] = 1;
                }
            }
            ClickModel::Pbm => {
                for k in 0..slate.len() {
                    clicks[k] = u8::from(rng::uniform(rng) < scratch[k + 1]);
                }
            }
        }
    }

    /// Draw the slate size of one impression.
    /// The user of impression `i`: the next fresh session, or one drawn from the population.
    pub fn impression_user(&self, i: u32, rng: &mut Rng) -> u32 {
        let users = self.users.len() as u32;
        if self.fresh_sessions {
            i % users
        } else {
            rng::index(rng, users)
        }
    }

    pub fn sample_slate_size(&self, rng: &mut Rng) -> u32 {
        self.slate_sizes.min + rng::index(rng, self.slate_sizes.max - self.slate_sizes.min + 1)
    }
}

pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

fn unit_vector(rng: &mut Rng, d: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..d).map(|_| rng::normal(rng)).collect();
    let norm = dot(&v, &v).sqrt().max(1e-12);
    v.into_iter().map(|x| x / norm).collect()
}

/// φ_f ~ N(mean, 0.1²) per engagement feature, and a bias b ~ N(0, 1).
fn engagement_weights(rng: &mut Rng, features: u32, mean: f64) -> (Vec<f64>, f64) {
    let phi = (0..features).map(|_| mean + 0.1 * rng::normal(rng)).collect();
    (phi, rng::normal(rng))
}

/// γ_k = 1 − (k−1)/40 (earlier positions are seen more) and α_k ~ N(0, 1) (noise clicks).
fn position_effects(rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let gamma = (0..MAX_SLATE).map(|k| 1.0 - k as f64 / 40.0).collect();
    let alpha = (0..MAX_SLATE).map(|_| rng::normal(rng)).collect();
    (gamma, alpha)
}

/// The user population: each user has a category and y ~ U[0,1]^F, θ_0 = exp(y·φ + b).
fn population(rng: &mut Rng, users: u32, features: u32, phi: &[f64], bias: f64, mut category: impl FnMut(&mut Rng) -> u32) -> Vec<User> {
    (0..users)
        .map(|_| {
            let category = category(rng);
            let engagement: Vec<f64> = (0..features).map(|_| rng::uniform(rng)).collect();
            let log_no_click = dot(&engagement, phi) + bias;
            User::new(category, engagement, log_no_click)
        })
        .collect()
}

/// log10 of a positive number (libm: the same bits natively and in wasm).
pub fn log10(x: f64) -> f64 {
    crate::core::math::log10(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn small_synthetic(seed: u64) -> World {
        World::synthetic(
            seed,
            SyntheticSpec { items: 12, slate_size: 3, dim: 8, categories: 3, topics: 4, users: 50, engagement_features: 2 },
            ClickModel::Prr,
        )
    }

    #[test]
    fn outcome_probabilities_sum_to_one() {
        let w = small_synthetic(1);
        let mut out = Vec::new();
        for model in [ClickModel::Prr, ClickModel::Pbm] {
            let mut w = w.clone();
            w.click_model = model;
            for u in &w.users[..10] {
                w.outcome_probabilities(u, &[0, 5, 7], &mut out);
                match model {
                    ClickModel::Prr => assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-12),
                    ClickModel::Pbm => assert!(out.iter().all(|p| (0.0..=1.0).contains(p))),
                }
                let r = w.expected_reward(u, &[0, 5, 7]);
                assert!((r - (1.0 - out[0])).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn reward_is_not_additive() {
        // Two good items compete for one click: the slate is worth less than the sum of the two
        // single-item banners.
        let w = World::toy(3, 100, ClickModel::Prr);
        let u = w.users.iter().find(|u| u.category == 0).unwrap();
        let both = w.expected_reward(u, &[0, 6]);
        let first = w.expected_reward(u, &[0]);
        let second = w.expected_reward(u, &[6]);
        assert!(both < first + second);
    }

    #[test]
    fn worlds_are_reproducible() {
        let a = small_synthetic(9);
        let b = small_synthetic(9);
        assert_eq!(a.item_embeddings, b.item_embeddings);
        assert_eq!(a.users, b.users);
        let c = small_synthetic(10);
        assert_ne!(a.item_embeddings, c.item_embeddings);
    }
}
