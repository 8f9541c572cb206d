//! Slate policies as probability distributions with exact propensities: Plackett–Luce (without
//! replacement), factored (each position drawn independently, so repeats are possible), and an
//! ε-smoothed deterministic top-K. Logging and target policies of the estimator lessons are these.

use super::policy::{top_k_by, LoggingKind, PlackettLuce};
use super::World;
use crate::core::math::exp;
use crate::core::rng::{self, Rng};

#[derive(Clone, Debug)]
pub enum Distribution {
    /// Without replacement: π(A) = Π_k w_{a_k} / (W − Σ_{j<k} w_{a_j}).
    PlackettLuce(PlackettLuce),
    /// With replacement, one independent draw per position: π(A) = Π_k p(a_k).
    Factored(Factored),
    /// The top-K slate by score with probability 1 − ε, a uniform slate with probability ε.
    EpsilonTopK(EpsilonTopK),
}

#[derive(Clone, Debug)]
pub struct Factored {
    pub label: String,
    /// probs[table][a], one table per category or one shared.
    probs: Vec<Vec<f64>>,
    cumulative: Vec<Vec<f64>>,
    per_category: bool,
}

#[derive(Clone, Debug)]
pub struct EpsilonTopK {
    pub epsilon: f64,
    items: u32,
    /// The best `max_size` items of each category, best first.
    top: Vec<Vec<u32>>,
    uniform: PlackettLuce,
}

impl Factored {
    /// p(a | z) ∝ w_a(z): `weights` gives one table per category (softmax) or one for all.
    pub fn new(label: String, weights: Vec<Vec<f64>>, per_category: bool) -> Factored {
        let probs: Vec<Vec<f64>> = weights
            .into_iter()
            .map(|w| {
                let total: f64 = w.iter().sum();
                w.into_iter().map(|x| x / total).collect()
            })
            .collect();
        let cumulative = probs
            .iter()
            .map(|p| {
                let mut acc = 0.0;
                p.iter()
                    .map(|x| {
                        acc += x;
                        acc
                    })
                    .collect()
            })
            .collect();
        Factored { label, probs, cumulative, per_category }
    }

    fn table(&self, category: u32) -> usize {
        if self.per_category {
            category as usize
        } else {
            0
        }
    }

    pub fn probs(&self, category: u32) -> &[f64] {
        &self.probs[self.table(category)]
    }
}

/// exp(g(z)·Ψ_a / τ) per category, shifted for stability.
pub fn softmax_weights(world: &World, temperature: f64) -> Vec<Vec<f64>> {
    (0..world.categories())
        .map(|z| {
            let logits: Vec<f64> = (0..world.items()).map(|a| world.affinity(z, a) / temperature).collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            logits.iter().map(|l| exp(l - max)).collect()
        })
        .collect()
}

impl Distribution {
    pub fn plackett_luce(world: &World, kind: LoggingKind) -> Distribution {
        Distribution::PlackettLuce(PlackettLuce::new(world, kind))
    }

    pub fn factored_uniform(world: &World) -> Distribution {
        Distribution::Factored(Factored::new("factored uniform".into(), vec![vec![1.0; world.items() as usize]], false))
    }

    pub fn factored_softmax(world: &World, temperature: f64) -> Distribution {
        Distribution::Factored(Factored::new(format!("factored softmax (τ = {temperature})"), softmax_weights(world, temperature), true))
    }

    pub fn epsilon_top_k(world: &World, epsilon: f64) -> Distribution {
        let max_size = world.slate_sizes.max.min(world.items());
        let top = (0..world.categories()).map(|z| top_k_by(world.items(), max_size, |a| world.affinity(z, a))).collect();
        Distribution::EpsilonTopK(EpsilonTopK {
            epsilon,
            items: world.items(),
            top,
            uniform: PlackettLuce::new(world, LoggingKind::Uniform),
        })
    }

    pub fn label(&self) -> String {
        match self {
            Distribution::PlackettLuce(p) => format!("Plackett–Luce {}", p.kind.label()),
            Distribution::Factored(f) => f.label.clone(),
            Distribution::EpsilonTopK(e) => format!("ε-greedy top-K (ε = {})", e.epsilon),
        }
    }

    /// Can a slate hold the same item twice?
    pub fn with_replacement(&self) -> bool {
        matches!(self, Distribution::Factored(_))
    }

    pub fn sample(&self, category: u32, size: u32, rng: &mut Rng, slate: &mut Vec<u32>) {
        match self {
            Distribution::PlackettLuce(p) => p.sample(category, size, rng, slate),
            Distribution::Factored(f) => {
                slate.clear();
                let cumulative = &f.cumulative[f.table(category)];
                let n = cumulative.len();
                for _ in 0..size {
                    let target = rng::uniform(rng) * cumulative[n - 1];
                    slate.push(cumulative.partition_point(|c| *c <= target).min(n - 1) as u32);
                }
            }
            Distribution::EpsilonTopK(e) => {
                if rng::uniform(rng) < e.epsilon {
                    e.uniform.sample(category, size, rng, slate);
                } else {
                    slate.clear();
                    slate.extend_from_slice(&e.top[category as usize][..size as usize]);
                }
            }
        }
    }

    /// π(A | x), exact.
    pub fn slate_propensity(&self, category: u32, slate: &[u32]) -> f64 {
        match self {
            Distribution::PlackettLuce(p) => {
                if has_repeats(slate) {
                    0.0
                } else {
                    p.slate_propensity(category, slate)
                }
            }
            Distribution::Factored(f) => slate.iter().map(|&a| f.probs(category)[a as usize]).product(),
            Distribution::EpsilonTopK(e) => {
                if has_repeats(slate) {
                    return 0.0;
                }
                let top = &e.top[category as usize];
                let greedy = if slate.len() <= top.len() && top[..slate.len()] == *slate { 1.0 - e.epsilon } else { 0.0 };
                greedy + e.epsilon * e.uniform.slate_propensity(category, slate)
            }
        }
    }

    /// π^{(k)}(a | x) for every item a and position k < positions: an items × positions table.
    pub fn position_table(&self, category: u32, positions: u32) -> Vec<f64> {
        match self {
            Distribution::PlackettLuce(p) => p.position_marginals(category, positions),
            Distribution::Factored(f) => {
                // Same stride as the other tables: min(positions, items).
                let probs = f.probs(category);
                let stride = positions.min(probs.len() as u32) as usize;
                probs.iter().flat_map(|p| std::iter::repeat_n(*p, stride)).collect()
            }
            Distribution::EpsilonTopK(e) => {
                let positions = positions.min(e.items) as usize;
                let mut table = vec![e.epsilon / e.items as f64; e.items as usize * positions];
                for (k, &a) in e.top[category as usize].iter().take(positions).enumerate() {
                    table[a as usize * positions + k] += 1.0 - e.epsilon;
                }
                table
            }
        }
    }

    /// Every ordered slate of `size` out of `items` this policy can show, with its probability
    /// (repeats only for policies with replacement; zero-probability slates skipped).
    pub fn for_each_slate(&self, category: u32, size: u32, items: u32, visit: &mut dyn FnMut(&[u32], f64)) {
        fn walk(d: &Distribution, category: u32, size: u32, items: u32, slate: &mut Vec<u32>, visit: &mut dyn FnMut(&[u32], f64)) {
            if slate.len() as u32 == size {
                let p = d.slate_propensity(category, slate);
                if p > 0.0 {
                    visit(slate, p);
                }
                return;
            }
            for a in 0..items {
                if !d.with_replacement() && slate.contains(&a) {
                    continue;
                }
                slate.push(a);
                walk(d, category, size, items, slate, visit);
                slate.pop();
            }
        }
        walk(self, category, size, items, &mut Vec::with_capacity(size as usize), visit);
    }

    /// How many weight tables (shared propensity tables) this distribution has.
    pub fn table_of(&self, category: u32) -> usize {
        match self {
            Distribution::PlackettLuce(p) => p.table(category),
            Distribution::Factored(f) => f.table(category),
            Distribution::EpsilonTopK(_) => category as usize,
        }
    }
}

pub fn has_repeats(slate: &[u32]) -> bool {
    slate.iter().enumerate().any(|(i, a)| slate[..i].contains(a))
}

#[cfg(test)]
mod tests {
    use super::super::{ClickModel, SyntheticSpec};
    use super::*;
    use crate::core::rng::{seeded, Stream};

    fn world() -> World {
        World::synthetic(
            3,
            SyntheticSpec { items: 6, slate_size: 3, dim: 6, categories: 2, topics: 3, users: 20, engagement_features: 2 },
            ClickModel::Prr,
        )
    }

    fn all_tuples(n: u32, k: u32) -> Vec<Vec<u32>> {
        let mut out: Vec<Vec<u32>> = vec![vec![]];
        for _ in 0..k {
            out = out.iter().flat_map(|s| (0..n).map(move |a| [s.clone(), vec![a]].concat())).collect();
        }
        out
    }

    fn distributions(w: &World) -> Vec<Distribution> {
        vec![
            Distribution::plackett_luce(w, LoggingKind::Softmax { temperature: 0.5 }),
            Distribution::factored_uniform(w),
            Distribution::factored_softmax(w, 0.7),
            Distribution::epsilon_top_k(w, 0.2),
        ]
    }

    #[test]
    fn propensities_sum_to_one_and_tables_are_marginals() {
        let w = world();
        for d in distributions(&w) {
            for z in 0..2 {
                let mut total = 0.0;
                let mut marginal = [0.0; 6 * 3];
                for s in all_tuples(6, 3) {
                    let p = d.slate_propensity(z, &s);
                    total += p;
                    for (k, &a) in s.iter().enumerate() {
                        marginal[a as usize * 3 + k] += p;
                    }
                }
                assert!((total - 1.0).abs() < 1e-12, "{}: {total}", d.label());
                let table = d.position_table(z, 3);
                for (m, t) in marginal.iter().zip(&table) {
                    assert!((m - t).abs() < 1e-10, "{}: {m} vs {t}", d.label());
                }
            }
        }
    }

    #[test]
    fn sampling_frequencies_match_propensities() {
        let w = world();
        let mut rng = seeded(5, Stream::Logs);
        let mut slate = Vec::new();
        for d in distributions(&w) {
            let mut counts = std::collections::HashMap::new();
            let draws = 40_000;
            for _ in 0..draws {
                d.sample(1, 2, &mut rng, &mut slate);
                *counts.entry(slate.clone()).or_insert(0u32) += 1;
            }
            for s in all_tuples(6, 2) {
                let p = d.slate_propensity(1, &s);
                let f = *counts.get(&s).unwrap_or(&0) as f64 / draws as f64;
                assert!((f - p).abs() < 4.5 * (p * (1.0 - p) / draws as f64).sqrt() + 2e-4, "{} {s:?}: {f} vs {p}", d.label());
            }
        }
    }
}
