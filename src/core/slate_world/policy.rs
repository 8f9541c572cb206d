//! Policies that fill slates, with exact propensities.
//!
//! The three logging policies are all Plackett–Luce (PL): pick position 1 with probability ∝ w_a,
//! then position 2 among the remaining items, and so on. So the slate propensity is
//!
//! π_0(A | x) = Π_k w_{a_k} / (W − Σ_{j<k} w_{a_j}),   W = Σ_a w_a,
//!
//! which is 1/(P(P−1)…(P−K+1)) for the uniform policy (all w equal). The per-position
//! (item-position) propensity π_0(a at k | x) is a sum over every prefix; we compute it exactly
//! with the "exponential race" view of PL: item i arrives at T_i ~ Exp(w_i) and the slate is the
//! arrival order, so
//!
//! π_0(a at k) = ∫_0^∞ w_a e^{−w_a t} · P(exactly k−1 other items arrived before t) dt,
//!
//! where the inner probability is a Poisson-binomial, and the integral is a trapezoid rule in
//! log t (its error falls like e^{−π²/h}; h = 0.25 gives ≈1e−17).

use super::World;
use crate::core::math::{exp, ln};
use crate::core::rng::{self, Guide, Rng};

/// Anything that fills a slate for a user: logging policies, the oracle, learned policies.
pub trait SlatePolicy {
    /// Fill `slate` with `size` distinct items for user `user` of `world`.
    fn choose(&self, world: &World, user: u32, size: u32, rng: &mut Rng, slate: &mut Vec<u32>);
    fn name(&self) -> String;
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoggingKind {
    /// Uniform without replacement.
    Uniform,
    /// Probability ∝ the item's popularity, without replacement.
    Popularity,
    /// Probability ∝ exp(g(z)·Ψ_a / temperature), without replacement (depends on the context).
    Softmax { temperature: f64 },
}

impl LoggingKind {
    pub fn label(&self) -> String {
        match self {
            LoggingKind::Uniform => "uniform".into(),
            LoggingKind::Popularity => "popularity".into(),
            LoggingKind::Softmax { temperature } => format!("softmax (τ = {temperature})"),
        }
    }
}

/// A Plackett–Luce policy with one weight vector per context category (or one shared vector).
#[derive(Clone, Debug)]
pub struct PlackettLuce {
    pub kind: LoggingKind,
    items: u32,
    /// weights[table][a]; `per_category` says whether table = category or table = 0.
    weights: Vec<Vec<f64>>,
    /// Cumulative sums of each weight table, and their guide tables: a draw is about one
    /// comparison instead of a binary search's log₂ P dependent loads (the same item).
    cumulative: Vec<Vec<f64>>,
    guides: Vec<Guide>,
    per_category: bool,
}

impl PlackettLuce {
    pub fn new(world: &World, kind: LoggingKind) -> PlackettLuce {
        let items = world.items();
        let (weights, per_category) = match kind {
            LoggingKind::Uniform => (vec![vec![1.0; items as usize]], false),
            LoggingKind::Popularity => (vec![world.item_popularity.clone()], false),
            LoggingKind::Softmax { temperature } => {
                let tables = (0..world.categories())
                    .map(|z| {
                        let logits: Vec<f64> = (0..items).map(|a| world.affinity(z, a) / temperature).collect();
                        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        logits.iter().map(|l| exp(l - max)).collect()
                    })
                    .collect();
                (tables, true)
            }
        };
        let cumulative: Vec<Vec<f64>> = weights
            .iter()
            .map(|w| {
                let mut acc = 0.0;
                w.iter()
                    .map(|x| {
                        acc += x;
                        acc
                    })
                    .collect()
            })
            .collect();
        let guides = cumulative.iter().map(|c| Guide::new(c)).collect();
        PlackettLuce { kind, items, weights, cumulative, guides, per_category }
    }

    /// Which weight table a category uses: categories sharing one share their propensities.
    pub fn table(&self, category: u32) -> usize {
        if self.per_category {
            category as usize
        } else {
            0
        }
    }

    pub fn tables(&self) -> usize {
        self.weights.len()
    }

    pub fn weights(&self, category: u32) -> &[f64] {
        &self.weights[self.table(category)]
    }

    /// Draw a slate of `size` distinct items. Exact PL sampling: draw from the full distribution
    /// and reject repeats (cheap while the chosen items hold little mass), falling back to a scan
    /// over the remaining items when rejections pile up.
    pub fn sample(&self, category: u32, size: u32, rng: &mut Rng, slate: &mut Vec<u32>) {
        slate.clear();
        let t = self.table(category);
        let (weights, cumulative, guide) = (&self.weights[t], &self.cumulative[t], &self.guides[t]);
        let total = *cumulative.last().unwrap();
        while (slate.len() as u32) < size {
            let mut drawn = None;
            for _ in 0..32 {
                let target = rng::uniform(rng) * total;
                let a = guide.partition_point(cumulative, target).min(self.items as usize - 1) as u32;
                if !slate.contains(&a) {
                    drawn = Some(a);
                    break;
                }
            }
            let a = drawn.unwrap_or_else(|| {
                // Summed directly: `total − chosen` cancels when the chosen items hold nearly all
                // the mass (a low softmax temperature).
                let remaining: f64 = weights.iter().enumerate().filter(|(i, _)| !slate.contains(&(*i as u32))).map(|(_, w)| w).sum();
                let mut target = rng::uniform(rng) * remaining;
                let mut last = 0;
                for (i, w) in weights.iter().enumerate() {
                    if slate.contains(&(i as u32)) {
                        continue;
                    }
                    last = i as u32;
                    if target < *w {
                        return i as u32;
                    }
                    target -= w;
                }
                last
            });
            slate.push(a);
        }
    }

    /// π_0(A | x): exact slate propensity.
    pub fn slate_propensity(&self, category: u32, slate: &[u32]) -> f64 {
        let weights = self.weights(category);
        let total = *self.cumulative[self.table(category)].last().unwrap();
        let mut used = 0.0;
        let mut p = 1.0;
        for (k, &a) in slate.iter().enumerate() {
            let w = weights[a as usize];
            let mut remaining = total - used;
            if remaining < 1e-3 * total {
                // The subtraction loses digits (relative error ≈ 1e-16·W/remaining): sum the
                // items still available directly.
                remaining = weights.iter().enumerate().filter(|(i, _)| !slate[..k].contains(&(*i as u32))).map(|(_, w)| w).sum();
            }
            p *= w / remaining.max(w);
            used += w;
        }
        p
    }

    /// π_0(a at k | x) for every item a and position k < `positions`: an items × positions table.
    pub fn position_marginals(&self, category: u32, positions: u32) -> Vec<f64> {
        let p = self.items as usize;
        let positions = positions.min(self.items) as usize;
        if matches!(self.kind, LoggingKind::Uniform) {
            return vec![1.0 / p as f64; p * positions];
        }
        position_marginals(self.weights(category), positions)
    }
}

/// Exact PL item-position marginals by the exponential race (see the module comment).
/// Cost O(nodes · P · K²) with nodes ≈ 150–250: fine for tens of thousands of items.
pub fn position_marginals(weights: &[f64], positions: usize) -> Vec<f64> {
    let p = weights.len();
    let mut out = vec![0.0; p * positions];
    if p == 0 || positions == 0 {
        return out;
    }
    let total: f64 = weights.iter().sum();
    let w_min = weights.iter().copied().filter(|w| *w > 0.0).fold(f64::INFINITY, f64::min);
    // Below t_lo every arrival is unlikely (mass ≤ 1e-15 relative); above t_hi even the slowest
    // item has arrived with probability 1 − e^{−40}.
    let (s_lo, s_hi) = (ln(1e-15 / total), ln(40.0 / w_min));
    let h = 0.25;
    let nodes = ((s_hi - s_lo) / h).ceil() as usize + 1;
    let k = positions;
    // prefix[i] = Poisson-binomial of items < i, suffix likewise for items > i, truncated to k terms.
    let mut suffix = vec![0.0; (p + 1) * k];
    let mut prefix = vec![0.0; k];
    let mut arrived = vec![0.0; p];
    for node in 0..nodes {
        let s = s_lo + h * node as f64;
        let t = exp(s);
        for (i, w) in weights.iter().enumerate() {
            // 1 − e^{−w t}, accurate for small w t.
            arrived[i] = -libm::expm1(-w * t);
        }
        // suffix polynomials, from the end.
        suffix[p * k..].iter_mut().for_each(|c| *c = 0.0);
        suffix[p * k] = 1.0;
        for i in (0..p).rev() {
            let (q, a) = (1.0 - arrived[i], arrived[i]);
            for j in 0..k {
                let prev = if j > 0 { suffix[(i + 1) * k + j - 1] } else { 0.0 };
                suffix[i * k + j] = q * suffix[(i + 1) * k + j] + a * prev;
            }
        }
        prefix.iter_mut().for_each(|c| *c = 0.0);
        prefix[0] = 1.0;
        for i in 0..p {
            let w = weights[i];
            // density of item i arriving at t, times the Jacobian dt = t ds, times the rule's h.
            let density = w * exp(-w * t) * t * h;
            if density > 0.0 {
                let after = &suffix[(i + 1) * k..(i + 2) * k];
                for m in 0..k {
                    // P(exactly m others arrived) = Σ_j prefix[j] · after[m − j]
                    let mut others = 0.0;
                    for j in 0..=m {
                        others += prefix[j] * after[m - j];
                    }
                    out[i * positions + m] += density * others;
                }
            }
            let (q, a) = (1.0 - arrived[i], arrived[i]);
            for j in (0..k).rev() {
                let prev = if j > 0 { prefix[j - 1] } else { 0.0 };
                prefix[j] = q * prefix[j] + a * prev;
            }
        }
    }
    out
}

/// The oracle: knows the click model and shows each user the best slate — the items with the
/// largest affinity, the best one in the position with the largest γ.
#[derive(Clone, Debug, Default)]
/// A policy whose slate depends on the user only through the user's category (a deterministic
/// model of the context, as PRR's decision rule and a deployed softmax policy are), each
/// category's slate of each size computed once: an A/B test of 20,000 impressions over 20
/// categories scores the catalogue 20 times instead of 20,000 (the same slates).
pub struct PerCategory<P> {
    pub policy: P,
    slates: std::cell::RefCell<std::collections::HashMap<(u32, u32), Vec<u32>>>,
}

impl<P: SlatePolicy> PerCategory<P> {
    pub fn new(policy: P) -> PerCategory<P> {
        PerCategory { policy, slates: Default::default() }
    }
}

impl<P: SlatePolicy> SlatePolicy for PerCategory<P> {
    fn choose(&self, world: &World, user: u32, size: u32, rng: &mut Rng, slate: &mut Vec<u32>) {
        let key = (world.users[user as usize].category, size);
        let mut slates = self.slates.borrow_mut();
        let kept = slates.entry(key).or_insert_with(|| {
            let mut fresh = Vec::new();
            self.policy.choose(world, user, size, rng, &mut fresh);
            fresh
        });
        slate.clone_from(kept);
    }

    fn name(&self) -> String {
        self.policy.name()
    }
}

pub struct Oracle;

impl SlatePolicy for Oracle {
    fn choose(&self, world: &World, user: u32, size: u32, _rng: &mut Rng, slate: &mut Vec<u32>) {
        let z = world.users[user as usize].category;
        let top = top_k_by(world.items(), size, |a| world.affinity(z, a));
        let mut positions: Vec<u32> = (0..size).collect();
        positions.sort_by(|&i, &j| world.position_gamma[j as usize].total_cmp(&world.position_gamma[i as usize]));
        slate.clear();
        slate.resize(size as usize, 0);
        for (rank, &pos) in positions.iter().enumerate() {
            slate[pos as usize] = top[rank];
        }
    }

    fn name(&self) -> String {
        "oracle".into()
    }
}

/// Indices of the `k` largest scores, best first (ties: smaller index first).
pub fn top_k_by(n: u32, k: u32, score: impl Fn(u32) -> f64) -> Vec<u32> {
    let mut best: Vec<(f64, u32)> = Vec::with_capacity(k as usize + 1);
    for a in 0..n {
        let s = score(a);
        if (best.len() as u32) < k || s > best.last().unwrap().0 {
            let pos = best.partition_point(|(b, _)| *b >= s);
            best.insert(pos, (s, a));
            best.truncate(k as usize);
        }
    }
    best.into_iter().map(|(_, a)| a).collect()
}

/// A logging policy deployed as a slate policy.
pub struct Logging<'a> {
    pub policy: &'a PlackettLuce,
}

impl SlatePolicy for Logging<'_> {
    fn choose(&self, world: &World, user: u32, size: u32, rng: &mut Rng, slate: &mut Vec<u32>) {
        self.policy.sample(world.users[user as usize].category, size, rng, slate);
    }
    fn name(&self) -> String {
        self.policy.kind.label()
    }
}

/// All ordered slates of `size` distinct items out of `n` (n!/(n−size)! of them: small n only).
pub fn all_slates(n: u32, size: u32) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = vec![vec![]];
    for _ in 0..size {
        out = out.iter().flat_map(|s| (0..n).filter(|a| !s.contains(a)).map(move |a| [s.as_slice(), &[a]].concat())).collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::{seeded, Stream};

    fn worlds() -> Vec<World> {
        use super::super::{ClickModel, SyntheticSpec};
        vec![
            World::toy(5, 40, ClickModel::Prr),
            World::synthetic(
                2,
                SyntheticSpec { items: 8, slate_size: 3, dim: 6, categories: 3, topics: 3, users: 30, engagement_features: 2 },
                ClickModel::Prr,
            ),
        ]
    }

    #[test]
    fn slate_propensities_sum_to_one() {
        for world in worlds() {
            // τ = 0.02: the first item holds nearly all the mass, the cancellation case.
            for kind in [
                LoggingKind::Uniform,
                LoggingKind::Popularity,
                LoggingKind::Softmax { temperature: 0.7 },
                LoggingKind::Softmax { temperature: 0.02 },
            ] {
                let policy = PlackettLuce::new(&world, kind);
                for size in 1..=3 {
                    for z in 0..world.categories() {
                        let total: f64 = all_slates(world.items(), size).iter().map(|s| policy.slate_propensity(z, s)).sum();
                        assert!((total - 1.0).abs() < 1e-12, "{kind:?} K={size}: {total}");
                    }
                }
            }
        }
        // Uniform, 2 of 7: 1/42 as in the notebook.
        let toy = World::toy(1, 10, super::super::ClickModel::Prr);
        let uniform = PlackettLuce::new(&toy, LoggingKind::Uniform);
        assert!((uniform.slate_propensity(0, &[3, 5]) - 1.0 / 42.0).abs() < 1e-15);
    }

    #[test]
    fn position_marginals_match_enumeration() {
        for world in worlds() {
            for kind in [LoggingKind::Uniform, LoggingKind::Popularity, LoggingKind::Softmax { temperature: 0.3 }] {
                let policy = PlackettLuce::new(&world, kind);
                let z = 1;
                let k = 3;
                let marginals = policy.position_marginals(z, k);
                let mut brute = vec![0.0; (world.items() * k) as usize];
                for s in all_slates(world.items(), k) {
                    let p = policy.slate_propensity(z, &s);
                    for (pos, &a) in s.iter().enumerate() {
                        brute[a as usize * k as usize + pos] += p;
                    }
                }
                for (m, b) in marginals.iter().zip(&brute) {
                    assert!((m - b).abs() < 1e-10, "{kind:?}: {m} vs {b}");
                }
            }
        }
    }

    #[test]
    fn marginals_with_extreme_weights() {
        // Weights over 12 orders of magnitude: still a distribution per position.
        let weights: Vec<f64> = (0..40).map(|i| 10f64.powf(i as f64 * 0.3)).collect();
        let m = position_marginals(&weights, 4);
        for k in 0..4 {
            let total: f64 = (0..40).map(|a| m[a * 4 + k]).sum();
            assert!((total - 1.0).abs() < 1e-9, "position {k}: {total}");
        }
        // First position is just w_a / W.
        let w_total: f64 = weights.iter().sum();
        assert!((m[39 * 4] - weights[39] / w_total).abs() < 1e-12);
    }

    #[test]
    fn sampling_matches_propensities() {
        let world = &worlds()[0];
        let policy = PlackettLuce::new(world, LoggingKind::Softmax { temperature: 1.0 });
        let mut rng = seeded(11, Stream::Logs);
        let mut counts = std::collections::HashMap::new();
        let mut slate = Vec::new();
        let draws = 60_000;
        for _ in 0..draws {
            policy.sample(2, 2, &mut rng, &mut slate);
            *counts.entry(slate.clone()).or_insert(0u32) += 1;
        }
        for s in all_slates(7, 2) {
            let p = policy.slate_propensity(2, &s);
            let freq = *counts.get(&s).unwrap_or(&0) as f64 / draws as f64;
            let se = (p * (1.0 - p) / draws as f64).sqrt();
            assert!((freq - p).abs() < 4.5 * se + 1e-4, "{s:?}: {freq} vs {p}");
        }
    }

    #[test]
    fn oracle_puts_best_item_first() {
        let world = &worlds()[0];
        let mut slate = Vec::new();
        let user = world.users.iter().position(|u| u.category == 2).unwrap() as u32;
        Oracle.choose(world, user, 3, &mut seeded(1, Stream::Logs), &mut slate);
        assert_eq!(slate[0], 4); // carpet, for "house" (1.0 in the notebook's table)
        assert_eq!(top_k_by(5, 2, |a| -((a as f64) - 2.2).abs()), vec![2, 3]);
    }
}
