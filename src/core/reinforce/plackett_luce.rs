//! Plackett–Luce slates: a softmax policy extended to ordered slates of K distinct items.
//!
//! p(σ) = Π_k exp(f_{σ_k}) / Σ_{a ∉ σ_<k} exp(f_a): pick the first item by softmax, remove it,
//! pick the next among the rest, and so on. Sampling does not need the sequence of normalisers:
//! adding independent Gumbel noise to every logit and keeping the K largest gives exactly this
//! distribution (Gumbel-top-k). The log-probability and its gradient do need them, K softmaxes.
//!
//! REINFORCE for slates is the same score-function estimator as for single items,
//! ĝ = (r(σ) − b) ∇ log p(σ), and a baseline b that does not depend on σ keeps it unbiased while
//! removing much of its variance. Here b is the mean reward of the other slates of the same
//! batch (leave-one-out), which is independent of σ.

use crate::core::math::{exp, ln, log10};
use crate::core::rng::{self, Rng, Stream};
use serde::{Deserialize, Serialize};

/// A slate: K distinct item ids, first position first.
pub type Slate = Vec<u32>;

/// A Plackett–Luce sample by Gumbel-top-k: the K items with the largest f_a + G_a,
/// G_a = −ln(−ln U_a), in decreasing order.
pub fn gumbel_top_k(logits: &[f64], k: u32, rng: &mut Rng, keys: &mut Vec<(f64, u32)>) -> Slate {
    keys.clear();
    keys.extend(logits.iter().enumerate().map(|(a, f)| {
        // u in (0, 1]; at u = 1, −ln u = 0 is clamped to the smallest positive double.
        let u = 1.0 - rng::uniform(rng);
        (f - ln((-ln(u)).max(f64::MIN_POSITIVE)), a as u32)
    }));
    let k = (k as usize).min(keys.len());
    // Partial selection then a sort of the K chosen: O(P + K log K).
    keys.select_nth_unstable_by(k.saturating_sub(1), |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let chosen = &mut keys[..k];
    chosen.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    chosen.iter().map(|&(_, a)| a).collect()
}

/// log p(σ): the sum over positions of the chosen item's log-softmax among the items not yet
/// placed.
pub fn log_probability(logits: &[f64], slate: &[u32]) -> f64 {
    // Shifted by the largest logit (no overflow); the mass left is re-summed at each position
    // rather than decremented (no cancellation when the slate takes most of it).
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut placed = vec![false; logits.len()];
    let mut total = 0.0;
    for &a in slate {
        let remaining: f64 = logits.iter().zip(&placed).filter(|(_, p)| !**p).map(|(&f, _)| exp(f - max)).sum();
        total += logits[a as usize] - max - ln(remaining);
        placed[a as usize] = true;
    }
    total
}

/// ∇_f log p(σ) = Σ_k (e_{σ_k} − softmax over the items not in σ_<k).
pub fn score_gradient(logits: &[f64], slate: &[u32], out: &mut [f64]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = logits.iter().map(|&f| exp(f - max)).collect();
    let mut placed = vec![false; logits.len()];
    for &a in slate {
        let remaining_mass: f64 = weights.iter().zip(&placed).filter(|(_, p)| !**p).map(|(w, _)| w).sum();
        for (b, o) in out.iter_mut().enumerate() {
            if !placed[b] {
                *o -= weights[b] / remaining_mass;
            }
        }
        out[a as usize] += 1.0;
        placed[a as usize] = true;
    }
}

/// A toy slate problem: logits f (the policy, which the gradient is about), graded relevance per
/// item, and a reward DCG(σ) = Σ_k relevance(σ_k) / log2(k + 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlateProblem {
    pub logits: Vec<f64>,
    pub relevance: Vec<f64>,
    pub slate_size: u32,
}

impl SlateProblem {
    /// Logits N(0, 1), relevance uniform in [0, 1] — a policy that does not yet know what is
    /// relevant, as at the start of training.
    pub fn generate(items: u32, slate_size: u32, seed: u64) -> SlateProblem {
        let mut rng = rng::seeded(seed, Stream::PlackettLuce);
        let logits = (0..items).map(|_| rng::normal(&mut rng)).collect();
        let relevance = (0..items).map(|_| rng::uniform(&mut rng)).collect();
        SlateProblem { logits, relevance, slate_size: slate_size.min(items) }
    }

    pub fn reward(&self, slate: &[u32]) -> f64 {
        slate.iter().enumerate().map(|(k, &a)| self.relevance[a as usize] / (log10(k as f64 + 2.0) / log10(2.0))).sum()
    }
}

/// One REINFORCE estimate of ∇_f E_σ[r(σ)] from `samples` slates, with or without the
/// leave-one-out baseline (which needs at least two slates; with one it is 0).
pub fn reinforce_estimate(problem: &SlateProblem, samples: u32, baseline: bool, rng: &mut Rng, out: &mut [f64]) {
    let mut keys = Vec::new();
    let slates: Vec<Slate> = (0..samples).map(|_| gumbel_top_k(&problem.logits, problem.slate_size, rng, &mut keys)).collect();
    let rewards: Vec<f64> = slates.iter().map(|s| problem.reward(s)).collect();
    let total: f64 = rewards.iter().sum();
    let mut score = vec![0.0; problem.logits.len()];
    out.iter_mut().for_each(|o| *o = 0.0);
    for (slate, &r) in slates.iter().zip(&rewards) {
        let b = if baseline && samples > 1 { (total - r) / (samples - 1) as f64 } else { 0.0 };
        score_gradient(&problem.logits, slate, &mut score);
        out.iter_mut().zip(&score).for_each(|(o, s)| *o += (r - b) * s / samples as f64);
    }
}

/// The exact gradient by enumerating every ordered slate (tiny catalogues only).
pub fn exact_gradient(problem: &SlateProblem) -> Vec<f64> {
    let mut out = vec![0.0; problem.logits.len()];
    let mut score = vec![0.0; problem.logits.len()];
    for slate in crate::core::slate_world::policy::all_slates(problem.logits.len() as u32, problem.slate_size) {
        let p = exp(log_probability(&problem.logits, &slate));
        score_gradient(&problem.logits, &slate, &mut score);
        let r = problem.reward(&slate);
        out.iter_mut().zip(&score).for_each(|(o, s)| *o += p * r * s);
    }
    out
}

/// The variance of both estimators at one number of slates per estimate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariancePoint {
    pub samples: u32,
    /// Total variance (trace of the covariance) of the estimate, without and with the baseline.
    pub variance_plain: f64,
    pub variance_baseline: f64,
    /// ‖mean estimate‖², the scale the variances compare to.
    pub squared_norm: f64,
}

impl VariancePoint {
    /// How many times smaller the variance is with the baseline.
    pub fn variance_reduction(&self) -> Option<f64> {
        (self.variance_baseline > 0.0).then(|| self.variance_plain / self.variance_baseline)
    }
}

/// Total variance over `repeats` independent estimates, for each entry of `samples_list`.
pub fn variance_study(problem: &SlateProblem, samples_list: &[u32], repeats: u32, seed: u64) -> Vec<VariancePoint> {
    let n = problem.logits.len();
    samples_list
        .iter()
        .enumerate()
        .map(|(i, &samples)| {
            let mut results = [(0.0, 0.0); 2];
            for (b, baseline) in [false, true].into_iter().enumerate() {
                // Both estimators on the same draws (common random numbers).
                let mut rng = rng::substream(seed, Stream::PlackettLuce, i as u32 + 1);
                let mut sum = vec![0.0; n];
                let mut sum_sq = vec![0.0; n];
                let mut estimate = vec![0.0; n];
                for _ in 0..repeats {
                    reinforce_estimate(problem, samples, baseline, &mut rng, &mut estimate);
                    for j in 0..n {
                        sum[j] += estimate[j];
                        sum_sq[j] += estimate[j] * estimate[j];
                    }
                }
                let r = repeats as f64;
                let variance: f64 = (0..n).map(|j| (sum_sq[j] - sum[j] * sum[j] / r) / (r - 1.0).max(1.0)).sum();
                let norm: f64 = sum.iter().map(|s| (s / r) * (s / r)).sum();
                results[b] = (variance, norm);
            }
            VariancePoint { samples, variance_plain: results[0].0, variance_baseline: results[1].0, squared_norm: results[1].1 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::slate_world::policy::all_slates;

    #[test]
    fn gumbel_top_k_samples_plackett_luce() {
        let problem = SlateProblem::generate(5, 2, 3);
        let slates = all_slates(5, 2);
        let total_probability: f64 = slates.iter().map(|s| exp(log_probability(&problem.logits, s))).sum();
        assert!((total_probability - 1.0).abs() < 1e-12, "{total_probability}");
        let mut rng = rng::seeded(9, Stream::MonteCarlo);
        let mut keys = Vec::new();
        let draws = 200_000;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..draws {
            *counts.entry(gumbel_top_k(&problem.logits, 2, &mut rng, &mut keys)).or_insert(0u32) += 1;
        }
        for slate in &slates {
            let p = exp(log_probability(&problem.logits, slate));
            let frequency = *counts.get(slate).unwrap_or(&0) as f64 / draws as f64;
            let se = (p * (1.0 - p) / draws as f64).sqrt();
            assert!((frequency - p).abs() < 5.0 * se + 1e-4, "{slate:?}: {frequency} vs {p}");
        }
    }

    #[test]
    fn score_gradient_matches_finite_differences() {
        let problem = SlateProblem::generate(6, 3, 4);
        let slate = vec![4, 0, 2];
        let mut analytic = vec![0.0; 6];
        score_gradient(&problem.logits, &slate, &mut analytic);
        for a in 0..6 {
            let mut plus = problem.logits.clone();
            plus[a] += 1e-6;
            let mut minus = problem.logits.clone();
            minus[a] -= 1e-6;
            let numeric = (log_probability(&plus, &slate) - log_probability(&minus, &slate)) / 2e-6;
            assert!((numeric - analytic[a]).abs() < 1e-6, "{a}: {numeric} vs {}", analytic[a]);
        }
    }

    #[test]
    fn both_estimators_are_unbiased_and_the_baseline_cuts_variance() {
        let problem = SlateProblem::generate(5, 2, 7);
        let exact = exact_gradient(&problem);
        let mut rng = rng::seeded(2, Stream::MonteCarlo);
        for baseline in [false, true] {
            let mut mean = vec![0.0; 5];
            let mut estimate = vec![0.0; 5];
            let repeats = 20_000;
            for _ in 0..repeats {
                reinforce_estimate(&problem, 4, baseline, &mut rng, &mut estimate);
                mean.iter_mut().zip(&estimate).for_each(|(m, e)| *m += e / repeats as f64);
            }
            for (m, e) in mean.iter().zip(&exact) {
                assert!((m - e).abs() < 0.01, "baseline {baseline}: {mean:?} vs {exact:?}");
            }
        }
        let study = variance_study(&SlateProblem::generate(20, 5, 1), &[2, 8], 300, 1);
        for point in &study {
            assert!(point.variance_baseline < 0.5 * point.variance_plain, "{point:?}");
        }
        assert!(study[1].variance_plain < study[0].variance_plain);
    }
}
