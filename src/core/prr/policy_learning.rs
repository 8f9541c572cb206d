//! Policy learning with importance weights, the baselines PRR is compared with: a MIPS-friendly
//! factored softmax policy π(a | z) = softmax_a(g(z)·Ψ_a) trained to maximise an IPS estimate of
//! its reward on the logs. Each gradient needs the full softmax, O(P) per example — the cost that
//! PRR's O(K) avoids.
//!
//! Objectives per logged row (w.r.t. the policy's slate view):
//! - slate IPS: c · Π_k π(a_k) / π₀(A);
//! - item-position IPS (IIPS): Σ_k c_k · π(a_k) / π₀^{(k)}(a_k);
//! - top-K variants (Chen et al. 2019): π(a) replaced by α(a) = 1 − (1 − π(a))^{K*}, the
//!   probability that a appears among K* independent draws. The PRR paper sets K* = 3 in all its
//!   experiments, whatever the slate size ([`TOP_K_SPREAD`]).

use super::{minibatch_adam, Gradient, Trainable};
use crate::core::math::pow;
use crate::core::rng::{self, Rng, Stream};
use crate::core::slate_world::policy::{top_k_by, SlatePolicy};
use crate::core::slate_world::World;

/// K* of the top-K correction: how many items the policy's mass is spread over (the PRR paper:
/// "We set it to 3 on all of our experiments").
pub const TOP_K_SPREAD: f64 = 3.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    SlateIps,
    TopKSlateIps,
    Iips,
    TopKIips,
}

/// A logged row as policy learning sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedExample {
    pub category: u32,
    pub slate: Vec<u32>,
    pub clicks: Vec<u8>,
    pub slate_propensity: f64,
    pub position_propensity: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxPolicy {
    pub items: usize,
    pub categories: usize,
    pub dim: usize,
    /// Ψ (items × dim) then Γ (categories × dim).
    pub params: Vec<f64>,
}

impl SoftmaxPolicy {
    pub fn new(items: usize, categories: usize, dim: usize, seed: u64) -> SoftmaxPolicy {
        let mut rng = rng::seeded(seed, Stream::Model);
        let params = (0..(items + categories) * dim).map(|_| 0.1 * rng::normal(&mut rng)).collect();
        SoftmaxPolicy { items, categories, dim, params }
    }

    fn psi(&self, a: usize) -> &[f64] {
        &self.params[a * self.dim..(a + 1) * self.dim]
    }

    fn g(&self, z: usize) -> &[f64] {
        let s = (self.items + z) * self.dim;
        &self.params[s..s + self.dim]
    }

    pub fn score(&self, z: u32, a: u32) -> f64 {
        self.g(z as usize).iter().zip(self.psi(a as usize)).map(|(x, y)| x * y).sum()
    }

    /// π(· | z) over the whole catalogue.
    pub fn probabilities(&self, z: u32, out: &mut Vec<f64>) {
        out.clear();
        out.extend((0..self.items as u32).map(|a| self.score(z, a)));
        crate::core::math::softmax_in_place(out);
    }

    /// The objective's value on one row, and its gradient (to be maximised) added to `grad`.
    pub fn objective_and_gradient(
        &self,
        objective: Objective,
        e: &LoggedExample,
        weight: f64,
        grad: &mut Gradient,
        probs: &mut Vec<f64>,
    ) -> f64 {
        let reward: f64 = e.clicks.iter().map(|c| *c as f64).sum();
        if reward == 0.0 {
            // Every objective weights the row by its clicks: an unclicked row adds nothing, and
            // skipping its O(P) softmax is what makes IPS training affordable at low CTR.
            return 0.0;
        }
        self.probabilities(e.category, probs);
        let k = TOP_K_SPREAD;
        // coef[a] = d(objective)/d(log π(a)) for the items of the slate (summed over positions).
        let mut coefs: Vec<(u32, f64)> = Vec::with_capacity(e.slate.len());
        let value = match objective {
            Objective::SlateIps | Objective::TopKSlateIps => {
                let mut product = 1.0;
                let mut factors = Vec::with_capacity(e.slate.len());
                for &a in &e.slate {
                    let p = probs[a as usize];
                    let (f, dlog) = match objective {
                        Objective::SlateIps => (p, 1.0),
                        _ => {
                            // α = 1 − (1 − p)^K; d log α / d log p = K (1 − p)^{K−1} p / α.
                            let alpha = 1.0 - pow(1.0 - p, k);
                            (alpha, k * pow(1.0 - p, k - 1.0) * p / alpha.max(1e-300))
                        }
                    };
                    product *= f;
                    factors.push(dlog);
                }
                let value = reward * product / e.slate_propensity;
                for (&a, dlog) in e.slate.iter().zip(factors) {
                    coefs.push((a, value * dlog));
                }
                value
            }
            Objective::Iips | Objective::TopKIips => {
                let mut value = 0.0;
                for (pos, &a) in e.slate.iter().enumerate() {
                    let p = probs[a as usize];
                    let c = e.clicks[pos] as f64;
                    let (f, dlog) = match objective {
                        Objective::Iips => (p, 1.0),
                        _ => {
                            let alpha = 1.0 - pow(1.0 - p, k);
                            (alpha, k * pow(1.0 - p, k - 1.0) * p / alpha.max(1e-300))
                        }
                    };
                    let term = c * f / e.position_propensity[pos];
                    value += term;
                    coefs.push((a, term * dlog));
                }
                value
            }
        };
        // d log π(a) / d score_b = 1{a = b} − π(b); score_b = g(z)·Ψ_b.
        let total: f64 = coefs.iter().map(|(_, c)| c).sum();
        if total == 0.0 {
            return value;
        }
        let z = e.category as usize;
        let g_start = (self.items + z) * self.dim;
        let mut d_scores = Vec::with_capacity(self.items);
        score_gradient(probs, &coefs, &mut d_scores);
        // Γ_z's entries gather a term from every item: summed in a local copy, in the order one
        // `add` per term would (bit for bit), and written back once.
        let mut g_sum: Vec<f64> = (0..self.dim).map(|d| grad.value(g_start + d)).collect();
        let mut touched_g = false;
        let g_row = &self.params[g_start..g_start + self.dim];
        for (b, ds) in d_scores.iter().enumerate() {
            let ds = ds * weight;
            if ds == 0.0 {
                continue;
            }
            touched_g = true;
            let psi_start = b * self.dim;
            grad.add_scaled(psi_start, ds, g_row);
            for (sum, psi) in g_sum.iter_mut().zip(&self.params[psi_start..psi_start + self.dim]) {
                *sum += ds * psi;
            }
        }
        if touched_g {
            for (d, sum) in g_sum.into_iter().enumerate() {
                grad.set(g_start + d, sum);
            }
        }
        value
    }
}

/// ∂objective/∂s_b for every item b of a softmax π(a) ∝ exp(s_a), given the objective's
/// ∂/∂log π(a) for the items it names (`coefs`, summed in their order): Σ_a coef_a (1{b = a} − π_b).
pub fn score_gradient(probabilities: &[f64], coefs: &[(u32, f64)], out: &mut Vec<f64>) {
    let total: f64 = coefs.iter().map(|(_, c)| c).sum();
    out.clear();
    out.extend(probabilities.iter().map(|p| -total * p));
    for (a, c) in coefs {
        out[*a as usize] += c;
    }
}

impl Trainable for SoftmaxPolicy {
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }
}

/// Maximise the objective by mini-batch Adam; the mean objective of each epoch.
pub fn train(
    policy: &mut SoftmaxPolicy,
    objective: Objective,
    examples: &[LoggedExample],
    epochs: u32,
    batch: usize,
    learning_rate: f64,
    rng: &mut Rng,
) -> Vec<f64> {
    train_watched(policy, objective, examples, epochs, batch, learning_rate, rng, |_, _, _| {})
}

/// [`train`], calling `after_epoch(policy, epoch, mean objective)` after each epoch.
#[allow(clippy::too_many_arguments)]
pub fn train_watched(
    policy: &mut SoftmaxPolicy,
    objective: Objective,
    examples: &[LoggedExample],
    epochs: u32,
    batch: usize,
    learning_rate: f64,
    rng: &mut Rng,
    after_epoch: impl FnMut(&SoftmaxPolicy, u32, f64),
) -> Vec<f64> {
    let mut probs = Vec::new();
    // Most rows have no click and add nothing (see `objective_and_gradient`): looked up here in one
    // small array, shuffled rows skip them without a cache miss on their slate and clicks.
    let clicked: Vec<bool> = examples.iter().map(|e| e.clicks.iter().any(|&c| c != 0)).collect();
    minibatch_adam(
        policy,
        examples.len(),
        epochs,
        batch,
        learning_rate,
        -1.0,
        rng,
        |p, i, w, grad| if clicked[i] { p.objective_and_gradient(objective, &examples[i], w, grad, &mut probs) } else { 0.0 },
        after_epoch,
    )
}

/// Deploy: the top-K items by g(z)·Ψ, best first (MIPS).
pub struct Deployed<'a> {
    pub policy: &'a SoftmaxPolicy,
    pub label: String,
}

impl SlatePolicy for Deployed<'_> {
    fn choose(&self, world: &World, user: u32, size: u32, _rng: &mut Rng, slate: &mut Vec<u32>) {
        let z = world.users[user as usize].category;
        *slate = top_k_by(self.policy.items as u32, size, |a| self.policy.score(z, a));
    }

    fn name(&self) -> String {
        self.label.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::slate_world::policy::{LoggingKind, PlackettLuce};
    use crate::core::slate_world::simulate::{deterministic_ctr, log_data, policy_ctr};
    use crate::core::slate_world::ClickModel;

    #[test]
    fn gradients_match_finite_differences() {
        let e = LoggedExample {
            category: 1,
            slate: vec![3, 0, 2],
            clicks: vec![0, 1, 0],
            slate_propensity: 1.0 / 60.0,
            position_propensity: vec![0.2, 0.25, 0.2],
        };
        for objective in [Objective::SlateIps, Objective::TopKSlateIps, Objective::Iips, Objective::TopKIips] {
            let policy = SoftmaxPolicy::new(5, 2, 3, 4);
            let mut grad = Gradient::new(policy.params.len());
            let mut probs = Vec::new();
            policy.objective_and_gradient(objective, &e, 1.0, &mut grad, &mut probs);
            for i in 0..policy.params.len() {
                let h = 1e-6;
                let (mut plus, mut minus) = (policy.clone(), policy.clone());
                plus.params[i] += h;
                minus.params[i] -= h;
                let mut sink = Gradient::new(grad.len());
                let numeric = (plus.objective_and_gradient(objective, &e, 1.0, &mut sink, &mut probs)
                    - minus.objective_and_gradient(objective, &e, 1.0, &mut sink, &mut probs))
                    / (2.0 * h);
                assert!((numeric - grad[i]).abs() < 1e-6 * (1.0 + numeric.abs()), "{objective:?} param {i}: {numeric} vs {}", grad[i]);
            }
        }
    }

    #[test]
    fn iips_policy_learning_beats_the_logging_policy_on_the_toy_world() {
        let world = World::toy(2, 1000, ClickModel::Prr);
        let logging = PlackettLuce::new(&world, LoggingKind::Uniform);
        let data = log_data(&world, &logging, 20_000, 2, &mut ());
        let examples: Vec<LoggedExample> = data
            .rows
            .iter()
            .map(|r| LoggedExample {
                category: world.users[r.user as usize].category,
                slate: r.slate.clone(),
                clicks: r.clicks.clone(),
                slate_propensity: r.slate_propensity,
                position_propensity: r.position_propensity.clone(),
            })
            .collect();
        let mut policy = SoftmaxPolicy::new(7, 4, 6, 1);
        let values = train(&mut policy, Objective::TopKIips, &examples, 20, 256, 0.02, &mut rng::seeded(1, Stream::Sweep));
        assert!(values.last().unwrap() > &values[0], "{values:?}");
        let learned = deterministic_ctr(&world, &Deployed { policy: &policy, label: "top-K IIPS".into() }).ctr;
        let uniform = policy_ctr(&world, &logging, 1e9, 0, 0).ctr;
        assert!(learned > uniform, "{learned} vs {uniform}");
    }
}
