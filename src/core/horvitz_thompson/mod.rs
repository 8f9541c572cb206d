//! Horvitz–Thompson (IPS) for slates and its lower-variance variants: the off-policy "lab".
//!
//! A [`Lab`] fixes a world, a logging policy π₀, a target policy π and a reward model f̂, and
//! simulates logged rows with everything the estimators in [`estimators`] need. The lesson
//! ([`lesson`]) replicates that many times to show each estimator's bias, variance and MSE.
//!
//! The reward of a row is the number of clicks on the slate (with the PRR click model at most one,
//! so this is the CTR); the truth V(π) is its expectation under π.

pub mod estimators;
pub mod lesson;

use crate::core::rng::{self, Rng, Stream};
use crate::core::slate_world::distribution::Distribution;
use crate::core::slate_world::World;
use crate::core::stages::bytes_of;
use crate::core::stats::Running;
use estimators::Row;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// One logged row with everything an export needs.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRow {
    pub user: u32,
    pub slate: Vec<u32>,
    pub clicks: Vec<u8>,
    pub logging_propensity: f64,
    pub target_propensity: f64,
    pub logging_position: Vec<f64>,
    pub target_position: Vec<f64>,
    pub row: Row,
}

/// Position tables, items × positions, one per weight table of a policy (None: unused).
type Tables = Rc<Vec<Option<Vec<f64>>>>;

#[derive(Clone)]
pub struct Lab {
    pub world: World,
    pub logging: Distribution,
    pub target: Distribution,
    /// The reward model f̂: the world's click model with noisy affinities.
    pub model: World,
    positions: u32,
    /// Position tables (items × positions), per weight table of each policy; shared by a lab and
    /// its copy with a reward model.
    logging_tables: Tables,
    target_tables: Tables,
    /// E_{A~π} f̂(A, x) per user and slate size (empty when the lab has no model).
    model_values: Vec<Vec<f64>>,
}

/// How V(π) was obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub value: f64,
    /// 0 when exact.
    pub se: f64,
    /// "enumeration" or "monte_carlo".
    pub method: String,
    /// Slates (or draws) behind it.
    pub count: u64,
    /// Probability that π shows a slate π₀ never shows: there, no importance-weighted estimator can
    /// see π's reward, so they are biased by up to this mass.
    pub uncovered_mass: f64,
}

/// About how many heap bytes a world holds (its affinity tables are private: C × P twice).
pub fn world_bytes(world: &World) -> usize {
    let strings = |v: &[String]| v.iter().map(|s| s.capacity() + 24).sum::<usize>();
    strings(&world.item_names)
        + strings(&world.category_names)
        + world.name.capacity()
        + bytes_of(&world.item_embeddings)
        + bytes_of(&world.item_topic)
        + bytes_of(&world.item_popularity)
        + bytes_of(&world.category_embeddings)
        + world.users.iter().map(|u| std::mem::size_of_val(u) + bytes_of(&u.engagement)).sum::<usize>()
        + bytes_of(&world.position_gamma)
        + bytes_of(&world.position_alpha)
        + 2 * 8 * (world.categories() * world.items()) as usize
}

/// Samples per user for E_{A~π} f̂(A, x) when the slates cannot be enumerated.
pub(crate) const MODEL_DRAWS: u32 = 256;
/// The reward model's values are enumerated when users × slates × K stays within this.
pub(crate) const MODEL_ENUMERATION_BUDGET: f64 = 2e7;

impl Lab {
    /// `model_noise` = None builds no reward model (the sweeps need none).
    pub fn new(world: World, logging: Distribution, target: Distribution, model_noise: Option<f64>, seed: u64) -> Lab {
        let positions = world.slate_sizes.max;
        let tables_of = |d: &Distribution| (0..world.categories()).map(|z| d.table_of(z)).max().unwrap_or(0) + 1;
        let (mut logging_tables, mut target_tables) = (vec![None; tables_of(&logging)], vec![None; tables_of(&target)]);
        // Tables for every category up front: they are shared, read-only, by every replication.
        for z in 0..world.categories() {
            let (l, t) = (logging.table_of(z), target.table_of(z));
            if logging_tables[l].is_none() {
                logging_tables[l] = Some(logging.position_table(z, positions));
            }
            if target_tables[t].is_none() {
                target_tables[t] = Some(target.position_table(z, positions));
            }
        }
        let mut lab = Lab {
            logging_tables: Rc::new(logging_tables),
            target_tables: Rc::new(target_tables),
            model: world.clone(),
            world,
            logging,
            target,
            positions,
            model_values: Vec::new(),
        };
        if let Some(sigma) = model_noise {
            lab.add_reward_model(sigma, seed);
        }
        lab
    }

    /// This lab with a reward model f̂ of affinity noise σ (the position tables are shared): the
    /// lab `Lab::new` builds with `Some(sigma)`.
    pub fn with_reward_model(&self, sigma: f64, seed: u64) -> Lab {
        let mut lab = self.clone();
        lab.add_reward_model(sigma, seed);
        lab
    }

    fn add_reward_model(&mut self, sigma: f64, seed: u64) {
        self.model = self.world.with_affinity_noise(sigma, seed);
        self.model_values = self.compute_model_values(seed);
    }

    /// Heap bytes of what this lab does not share with others (its position tables are shared
    /// with its copy that has a reward model).
    pub fn own_bytes(&self) -> usize {
        let distribution = |d: &Distribution| {
            // Weights and cumulative weights (or probabilities) per table.
            let tables = (0..self.world.categories()).map(|z| d.table_of(z)).max().unwrap_or(0) + 1;
            tables * self.world.items() as usize * 16
        };
        world_bytes(&self.world)
            + world_bytes(&self.model)
            + distribution(&self.logging)
            + distribution(&self.target)
            + self.model_values.iter().map(|v| bytes_of(v) + 24).sum::<usize>()
    }

    /// Heap bytes of the position tables.
    pub fn table_bytes(&self) -> usize {
        let tables = |t: &Tables| t.iter().flatten().map(|v| bytes_of(v) + 24).sum::<usize>();
        tables(&self.logging_tables) + tables(&self.target_tables)
    }

    fn sizes(&self) -> std::ops::RangeInclusive<u32> {
        self.world.slate_sizes.min..=self.world.slate_sizes.max
    }

    /// Ordered slates of one size the target can show: P^K with repeats, P!/(P−K)! without.
    fn slates_per_size(&self, size: u32) -> f64 {
        let p = self.world.items() as f64;
        if self.target.with_replacement() {
            (0..size).map(|_| p).product()
        } else {
            (0..size).map(|j| p - j as f64).product()
        }
    }

    fn enumeration_work(&self) -> f64 {
        self.sizes().map(|k| self.slates_per_size(k) * k as f64).sum::<f64>() * self.world.users.len() as f64
    }

    fn compute_model_values(&self, seed: u64) -> Vec<Vec<f64>> {
        let users = self.world.users.len();
        let exact = self.enumeration_work() <= MODEL_ENUMERATION_BUDGET;
        let mut rng = rng::seeded(seed, Stream::Model);
        let mut slate = Vec::new();
        (0..users)
            .map(|u| {
                let user = &self.world.users[u];
                self.sizes()
                    .map(|size| {
                        if exact {
                            let mut total = 0.0;
                            self.target.for_each_slate(user.category, size, self.world.items(), &mut |s, p| {
                                total += p * self.model.expected_clicks(user, s);
                            });
                            total
                        } else {
                            let mut sum = 0.0;
                            for _ in 0..MODEL_DRAWS {
                                self.target.sample(user.category, size, &mut rng, &mut slate);
                                sum += self.model.expected_clicks(user, &slate);
                            }
                            sum / MODEL_DRAWS as f64
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// V(π): exact by enumeration when users × slates × K ≤ `budget`, else Monte Carlo.
    pub fn truth(&self, budget: f64, draws: u32, seed: u64) -> Truth {
        let users = self.world.users.len() as u32;
        let sizes = self.sizes().count() as f64;
        if self.enumeration_work() <= budget {
            let (mut total, mut uncovered, mut count) = (0.0, 0.0, 0u64);
            for user in &self.world.users {
                for size in self.sizes() {
                    self.target.for_each_slate(user.category, size, self.world.items(), &mut |s, p| {
                        count += 1;
                        total += p * self.world.expected_clicks(user, s);
                        if self.logging.slate_propensity(user.category, s) == 0.0 {
                            uncovered += p;
                        }
                    });
                }
            }
            let norm = users as f64 * sizes;
            Truth { value: total / norm, se: 0.0, method: "enumeration".into(), count, uncovered_mass: uncovered / norm }
        } else {
            let mut rng = rng::seeded(seed, Stream::MonteCarlo);
            let (mut running, mut uncovered) = (Running::default(), 0u64);
            let mut slate = Vec::new();
            for _ in 0..draws {
                let user = &self.world.users[rng::index(&mut rng, users) as usize];
                let size = self.world.sample_slate_size(&mut rng);
                self.target.sample(user.category, size, &mut rng, &mut slate);
                running.push(self.world.expected_clicks(user, &slate));
                if self.logging.slate_propensity(user.category, &slate) == 0.0 {
                    uncovered += 1;
                }
            }
            let s = running.summary();
            Truth {
                value: s.mean,
                se: s.se,
                method: "monte_carlo".into(),
                count: draws as u64,
                uncovered_mass: uncovered as f64 / draws as f64,
            }
        }
    }

    /// Standard deviation of one row's HT term w·r, from the second moment
    /// E_{π₀}[w² r²] = E_{A~π}[w · E(r² | A, x)]: sampling from π sees the rare slates with huge
    /// weights that a sample from π₀ would almost always miss. Slates π₀ never shows are left out
    /// (they are the estimator's bias, not its variance).
    pub fn ht_row_sd(&self, value: f64, draws: u32, rng: &mut Rng) -> f64 {
        let users = self.world.users.len() as u32;
        let mut slate = Vec::new();
        let mut second = 0.0;
        for _ in 0..draws {
            let user = &self.world.users[rng::index(rng, users) as usize];
            let size = self.world.sample_slate_size(rng);
            self.target.sample(user.category, size, rng, &mut slate);
            let logging = self.logging.slate_propensity(user.category, &slate);
            if logging > 0.0 {
                let w = self.target.slate_propensity(user.category, &slate) / logging;
                second += w * self.world.expected_squared_clicks(user, &slate);
            }
        }
        (second / draws as f64 - value * value).max(0.0).sqrt()
    }

    /// Simulate `n` logged rows into `rows` (cleared first); keep the raw rows too when asked.
    pub fn simulate(&self, n: u32, rng: &mut Rng, rows: &mut Vec<Row>, mut raw: Option<&mut Vec<RawRow>>) {
        rows.clear();
        let users = self.world.users.len() as u32;
        let (mut slate, mut clicks, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        let stride = self.positions.min(self.world.items()) as usize;
        for _ in 0..n {
            let u = rng::index(rng, users);
            let user = &self.world.users[u as usize];
            let z = user.category;
            let size = self.world.sample_slate_size(rng);
            self.logging.sample(z, size, rng, &mut slate);
            self.world.sample_clicks(user, &slate, rng, &mut scratch, &mut clicks);
            let reward: f64 = clicks.iter().map(|c| *c as f64).sum();
            let logging_propensity = self.logging.slate_propensity(z, &slate);
            let target_propensity = self.target.slate_propensity(z, &slate);
            let logging_table = self.logging_tables[self.logging.table_of(z)].as_ref().expect("tables built");
            let target_table = self.target_tables[self.target.table_of(z)].as_ref().expect("tables built");
            let (mut item_position_term, mut weight_sum) = (0.0, 0.0);
            for (k, &a) in slate.iter().enumerate() {
                let w_k = target_table[a as usize * stride + k] / logging_table[a as usize * stride + k];
                item_position_term += clicks[k] as f64 * w_k;
                weight_sum += w_k;
            }
            let (model_reward, model_value) = if self.model_values.is_empty() {
                (0.0, 0.0)
            } else {
                (self.model.expected_clicks(user, &slate), self.model_values[u as usize][(size - self.world.slate_sizes.min) as usize])
            };
            let row = Row {
                reward,
                weight: target_propensity / logging_propensity,
                item_position_term,
                pseudo_inverse_factor: weight_sum - (slate.len() as f64 - 1.0),
                model_reward,
                model_value,
            };
            rows.push(row);
            if let Some(raw) = raw.as_deref_mut() {
                raw.push(RawRow {
                    user: u,
                    slate: slate.clone(),
                    clicks: clicks.clone(),
                    logging_propensity,
                    target_propensity,
                    logging_position: slate.iter().enumerate().map(|(k, &a)| logging_table[a as usize * stride + k]).collect(),
                    target_position: slate.iter().enumerate().map(|(k, &a)| target_table[a as usize * stride + k]).collect(),
                    row,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::estimators::{estimate, Kind};
    use super::*;
    use crate::core::slate_world::policy::LoggingKind;
    use crate::core::slate_world::{ClickModel, SyntheticSpec};
    use crate::core::stats::Running;

    fn world(model: ClickModel, slate: u32) -> World {
        World::synthetic(
            11,
            SyntheticSpec { items: 6, slate_size: slate, dim: 6, categories: 3, topics: 3, users: 40, engagement_features: 2 },
            model,
        )
    }

    /// Mean of an estimator over replications, and the standard error of that mean.
    fn replicate(lab: &Lab, kind: Kind, n: u32, reps: u32) -> (f64, f64) {
        let mut running = Running::default();
        let mut rows = Vec::new();
        for r in 0..reps {
            lab.simulate(n, &mut rng::replication(99, r), &mut rows, None);
            running.push(estimate(kind, 10.0, &rows).value);
        }
        let s = running.summary();
        (s.mean, s.se)
    }

    #[test]
    fn ht_is_unbiased() {
        let w = world(ClickModel::Prr, 3);
        let lab = Lab::new(
            w.clone(),
            Distribution::plackett_luce(&w, LoggingKind::Popularity),
            Distribution::plackett_luce(&w, LoggingKind::Softmax { temperature: 0.7 }),
            Some(0.3),
            1,
        );
        let truth = lab.truth(1e9, 0, 0);
        assert_eq!(truth.method, "enumeration");
        assert_eq!(truth.uncovered_mass, 0.0);
        let (mean, se) = replicate(&lab, Kind::Ips, 400, 300);
        assert!((mean - truth.value).abs() < 3.0 * se, "IPS {mean} ± {se} vs {}", truth.value);
        // DR is unbiased too (the model is wrong, the weights fix it).
        let (mean, se) = replicate(&lab, Kind::Dr, 400, 300);
        assert!((mean - truth.value).abs() < 3.0 * se, "DR {mean} ± {se} vs {}", truth.value);
        // SNIPS is consistent: close with many rows.
        let (mean, _) = replicate(&lab, Kind::Snips, 5000, 20);
        assert!((mean - truth.value).abs() < 0.02, "SNIPS {mean} vs {}", truth.value);
        // Capping only shrinks weights: with positive rewards its bias is ≤ 0.
        let (capped, se) = replicate(&lab, Kind::CappedIps, 400, 300);
        assert!(capped < truth.value + 2.0 * se, "capped {capped} vs {}", truth.value);
    }

    #[test]
    fn iips_is_unbiased_under_an_item_position_model() {
        let w = world(ClickModel::Pbm, 3);
        let lab = Lab::new(
            w.clone(),
            Distribution::plackett_luce(&w, LoggingKind::Uniform),
            Distribution::plackett_luce(&w, LoggingKind::Softmax { temperature: 0.5 }),
            None,
            1,
        );
        let truth = lab.truth(1e9, 0, 0);
        let (mean, se) = replicate(&lab, Kind::Iips, 400, 300);
        assert!((mean - truth.value).abs() < 3.0 * se, "IIPS {mean} ± {se} vs {}", truth.value);
    }

    #[test]
    fn pseudo_inverse_is_unbiased_for_additive_rewards_and_factored_logging() {
        let w = world(ClickModel::Pbm, 2);
        let lab = Lab::new(w.clone(), Distribution::factored_uniform(&w), Distribution::factored_softmax(&w, 0.6), None, 1);
        let truth = lab.truth(1e9, 0, 0);
        let (mean, se) = replicate(&lab, Kind::Pi, 400, 300);
        assert!((mean - truth.value).abs() < 3.0 * se, "PI {mean} ± {se} vs {}", truth.value);
    }

    #[test]
    fn uncovered_target_mass_is_reported() {
        let w = world(ClickModel::Prr, 2);
        let lab = Lab::new(w.clone(), Distribution::plackett_luce(&w, LoggingKind::Uniform), Distribution::factored_uniform(&w), None, 1);
        // A uniform factored target repeats an item with probability 1/6 for K = 2.
        assert!((lab.truth(1e9, 0, 0).uncovered_mass - 1.0 / 6.0).abs() < 1e-12);
        let mc = lab.truth(0.0, 50_000, 3);
        assert_eq!(mc.method, "monte_carlo");
        assert!((mc.uncovered_mass - 1.0 / 6.0).abs() < 0.01);
    }

    #[test]
    fn raw_rows_match_rows() {
        let w = world(ClickModel::Prr, 3);
        let lab =
            Lab::new(w.clone(), Distribution::plackett_luce(&w, LoggingKind::Uniform), Distribution::epsilon_top_k(&w, 0.3), Some(0.2), 1);
        let (mut rows, mut raw) = (Vec::new(), Vec::new());
        lab.simulate(50, &mut rng::replication(1, 0), &mut rows, Some(&mut raw));
        for (r, x) in rows.iter().zip(&raw) {
            assert_eq!(*r, x.row);
            assert!((r.weight - x.target_propensity / x.logging_propensity).abs() < 1e-12);
            // Uniform logging of 3 of 6: 1/120.
            assert!((x.logging_propensity - 1.0 / 120.0).abs() < 1e-15);
        }
    }
}
