//! Simulation on a slate world: logged datasets, the exact or Monte-Carlo CTR of a policy, and
//! simulated A/B tests on fresh traffic.

use super::distribution::Distribution;
use super::policy::{LoggingKind, PlackettLuce, SlatePolicy};
use super::{ClickModel, World};
use crate::core::progress::Progress;
use crate::core::rng::{self, Stream};
use crate::core::stats::{MeanSe, Running};
use serde::{Deserialize, Serialize};

/// One logged impression.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedRow {
    pub user: u32,
    pub slate: Vec<u32>,
    /// 1 if position k was clicked.
    pub clicks: Vec<u8>,
    /// π_0(A | x).
    pub slate_propensity: f64,
    /// π_0(a_k at k | x), one per position.
    pub position_propensity: Vec<f64>,
}

impl LoggedRow {
    /// The slate-level reward c: was anything clicked?
    pub fn reward(&self) -> bool {
        self.clicks.iter().any(|c| *c > 0)
    }
}

#[derive(Clone, Debug)]
pub struct LoggedData {
    pub policy: LoggingKind,
    pub rows: Vec<LoggedRow>,
}

/// Log `n` impressions of `policy` on `world`: a random user, a slate from the policy, clicks
/// from the click model, and the propensities a later estimator needs.
pub fn log_data(world: &World, policy: &PlackettLuce, n: u32, seed: u64, progress: &mut dyn Progress) -> LoggedData {
    let mut rng = rng::seeded(seed, Stream::Logs);
    let max_size = world.slate_sizes.max;
    // Per-position propensities depend only on the policy's weight table (one per category, or
    // one for all): computed once per table, lazily.
    let mut marginals: Vec<Option<Vec<f64>>> = vec![None; policy.tables()];
    let mut rows = Vec::with_capacity(n as usize);
    let (mut scratch, mut slate, mut clicks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        if i % 4096 == 0 {
            progress.report(i as f64 / n as f64, "logging impressions");
        }
        let user = world.impression_user(i, &mut rng);
        let u = &world.users[user as usize];
        let size = world.sample_slate_size(&mut rng);
        policy.sample(u.category, size, &mut rng, &mut slate);
        world.sample_clicks(u, &slate, &mut rng, &mut scratch, &mut clicks);
        let table = marginals[policy.table(u.category)].get_or_insert_with(|| policy.position_marginals(u.category, max_size));
        let stride = max_size.min(world.items()) as usize;
        let position_propensity = slate.iter().enumerate().map(|(k, &a)| table[a as usize * stride + k]).collect();
        rows.push(LoggedRow {
            user,
            slate: slate.clone(),
            clicks: clicks.clone(),
            slate_propensity: policy.slate_propensity(u.category, &slate),
            position_propensity,
        });
    }
    progress.report(1.0, "logging impressions");
    LoggedData { policy: policy.kind, rows }
}

impl LoggedData {
    pub fn ctr(&self) -> MeanSe {
        let mut r = Running::default();
        self.rows.iter().for_each(|row| r.push(f64::from(u8::from(row.reward()))));
        r.summary()
    }

    /// The dataset as CSV: one row per impression, positions spread over columns.
    pub fn to_csv(&self, world: &World) -> String {
        let k = world.slate_sizes.max as usize;
        let mut header = vec!["row".to_string(), "user".into(), "category".into()];
        let features = world.users.first().map_or(0, |u| u.engagement.len());
        header.extend((1..=features).map(|f| format!("y{f}")));
        header.push("slate_size".into());
        header.extend((1..=k).map(|p| format!("item_{p}")));
        header.extend((1..=k).map(|p| format!("click_{p}")));
        header.push("reward".into());
        header.push("slate_propensity".into());
        header.extend((1..=k).map(|p| format!("position_propensity_{p}")));
        let mut out = header.join(",");
        out.push('\n');
        for (i, row) in self.rows.iter().enumerate() {
            let u = &world.users[row.user as usize];
            let mut cells = vec![i.to_string(), row.user.to_string(), u.category.to_string()];
            cells.extend(u.engagement.iter().map(|y| format!("{y}")));
            cells.push(row.slate.len().to_string());
            let pad = |v: Vec<String>| -> Vec<String> {
                let mut v = v;
                v.resize(k, String::new());
                v
            };
            cells.extend(pad(row.slate.iter().map(|a| a.to_string()).collect()));
            cells.extend(pad(row.clicks.iter().map(|c| c.to_string()).collect()));
            cells.push(u8::from(row.reward()).to_string());
            cells.push(format!("{:e}", row.slate_propensity));
            cells.extend(pad(row.position_propensity.iter().map(|p| format!("{p:e}")).collect()));
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// How a policy's CTR was obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CtrMethod {
    /// Every slate of every user weighed by its probability: exact.
    Enumeration { slates: u64 },
    /// The policy is deterministic: one slate per user and size, exact.
    Deterministic,
    /// Too many slates to enumerate: the mean expected reward of sampled slates.
    MonteCarlo { draws: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyCtr {
    pub policy: String,
    pub ctr: f64,
    /// 0 for exact methods.
    pub se: f64,
    pub method: CtrMethod,
}

/// Number of ordered slates of each size the world draws, P!/(P−K)!, as f64 (it overflows u64).
pub fn slate_count(world: &World) -> f64 {
    (world.slate_sizes.min..=world.slate_sizes.max).map(|k| (0..k).map(|j| (world.items() - j) as f64).product::<f64>()).sum()
}

/// The expected CTR of a logging policy: exact by enumeration when users × slates × K fits in
/// `work_budget`, otherwise Monte Carlo with `mc_draws` draws.
pub fn policy_ctr(world: &World, policy: &PlackettLuce, work_budget: f64, mc_draws: u32, seed: u64) -> PolicyCtr {
    policy_ctr_with(world, policy, None, work_budget, mc_draws, seed)
}

/// [`policy_ctr`], weighing the kept [`SlateRewards`] of the world when given (the same number,
/// bit for bit, without recomputing every slate's reward).
pub fn policy_ctr_with(
    world: &World,
    policy: &PlackettLuce,
    rewards: Option<&SlateRewards>,
    work_budget: f64,
    mc_draws: u32,
    seed: u64,
) -> PolicyCtr {
    if enumerable(world, work_budget) {
        match rewards {
            Some(rewards) => weigh(world, policy, rewards),
            None => enumerate_ctr(world, policy),
        }
    } else {
        monte_carlo_ctr(world, &super::policy::Logging { policy }, mc_draws, seed)
    }
}

/// Whether users × slates × K fits in `work_budget` (an exact CTR enumerates).
pub fn enumerable(world: &World, work_budget: f64) -> bool {
    slate_count(world) * world.slate_sizes.max as f64 * world.users.len() as f64 <= work_budget
}

/// For each category with members and each slate size, the members' summed expected reward of
/// every ordered slate (no repeats), in the order [`Distribution::for_each_slate`] visits them.
/// An exact CTR weighs these sums by a policy's slate propensities; they do not depend on the
/// policy, so the slate-world lesson keeps them and a new temperature only reweighs them.
pub struct SlateRewards {
    /// `sums[z][size − min]`, one sum per ordered slate; empty for a category without members.
    sums: Vec<Vec<Vec<f64>>>,
}

/// Most sums a [`SlateRewards`] holds (16 MB); above, the CTRs enumerate without a table.
pub const SLATE_REWARDS_MAX_SUMS: f64 = 2e6;

impl SlateRewards {
    /// The sums, unless they would be more than [`SLATE_REWARDS_MAX_SUMS`].
    pub fn of(world: &World) -> Option<SlateRewards> {
        let members = members_by_category(world);
        let categories_met = members.iter().filter(|m| !m.is_empty()).count() as f64;
        (categories_met * slate_count(world) <= SLATE_REWARDS_MAX_SUMS).then(|| SlateRewards::new(world, members))
    }

    fn new(world: &World, members_by_category: Vec<Vec<u32>>) -> SlateRewards {
        let mut sums = Vec::with_capacity(world.categories() as usize);
        for members in members_by_category {
            let mut by_size = Vec::new();
            if !members.is_empty() {
                for size in world.slate_sizes.min..=world.slate_sizes.max {
                    let mut row = Vec::new();
                    for_each_ordered_slate(world.items(), size, &mut |slate| {
                        row.push(members.iter().map(|&u| world.expected_reward(&world.users[u as usize], slate)).sum::<f64>());
                    });
                    by_size.push(row);
                }
            }
            sums.push(by_size);
        }
        SlateRewards { sums }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.sums.iter().flatten().map(|row| row.len() * 8 + 24).sum::<usize>() + self.sums.len() * 24
    }
}

fn members_by_category(world: &World) -> Vec<Vec<u32>> {
    let mut by_category: Vec<Vec<u32>> = vec![Vec::new(); world.categories() as usize];
    for (i, u) in world.users.iter().enumerate() {
        by_category[u.category as usize].push(i as u32);
    }
    by_category
}

/// Every ordered slate of `size` distinct items of 0..items, in lexicographic order.
fn for_each_ordered_slate(items: u32, size: u32, visit: &mut dyn FnMut(&[u32])) {
    fn walk(items: u32, size: u32, slate: &mut Vec<u32>, visit: &mut dyn FnMut(&[u32])) {
        if slate.len() as u32 == size {
            visit(slate);
            return;
        }
        for a in 0..items {
            if !slate.contains(&a) {
                slate.push(a);
                walk(items, size, slate, visit);
                slate.pop();
            }
        }
    }
    walk(items, size, &mut Vec::with_capacity(size as usize), visit);
}

/// Every slate's reward computed as it is visited (no table kept).
fn enumerate_ctr(world: &World, policy: &PlackettLuce) -> PolicyCtr {
    let sizes = world.slate_sizes.max - world.slate_sizes.min + 1;
    let distribution = Distribution::PlackettLuce(policy.clone());
    let mut total = 0.0;
    let mut slates = 0u64;
    for (z, members) in members_by_category(world).iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        for size in world.slate_sizes.min..=world.slate_sizes.max {
            distribution.for_each_slate(z as u32, size, world.items(), &mut |slate, p| {
                slates += 1;
                total += p * members.iter().map(|&u| world.expected_reward(&world.users[u as usize], slate)).sum::<f64>();
            });
        }
    }
    PolicyCtr {
        policy: policy.kind.label(),
        ctr: total / (world.users.len() as f64 * sizes as f64),
        se: 0.0,
        method: CtrMethod::Enumeration { slates },
    }
}

/// Σ over categories, sizes and slates of π(slate | z) × the members' summed reward, over users ×
/// sizes: as [`Distribution::for_each_slate`] would sum them (slates of propensity 0 skipped).
fn weigh(world: &World, policy: &PlackettLuce, rewards: &SlateRewards) -> PolicyCtr {
    let sizes = world.slate_sizes.max - world.slate_sizes.min + 1;
    debug_assert_eq!(rewards.sums.len(), world.categories() as usize, "the sums of another world");
    let mut total = 0.0;
    let mut slates = 0u64;
    for (z, by_size) in rewards.sums.iter().enumerate() {
        for (size, row) in (world.slate_sizes.min..=world.slate_sizes.max).zip(by_size) {
            let mut next = row.iter();
            for_each_ordered_slate(world.items(), size, &mut |slate| {
                let reward = *next.next().expect("one sum per slate");
                // An ordered slate never repeats an item: the policy's own propensity, without
                // the distribution's check for repeats.
                let p = policy.slate_propensity(z as u32, slate);
                if p > 0.0 {
                    slates += 1;
                    total += p * reward;
                }
            });
        }
    }
    PolicyCtr {
        policy: policy.kind.label(),
        ctr: total / (world.users.len() as f64 * sizes as f64),
        se: 0.0,
        method: CtrMethod::Enumeration { slates },
    }
}

/// Mean expected reward of `draws` impressions (random user, size, slate): an unbiased estimate of
/// the CTR with less noise than sampled clicks.
pub fn monte_carlo_ctr(world: &World, policy: &dyn SlatePolicy, draws: u32, seed: u64) -> PolicyCtr {
    let mut rng = rng::seeded(seed, Stream::MonteCarlo);
    let mut running = Running::default();
    let mut slate = Vec::new();
    for _ in 0..draws {
        let user = rng::index(&mut rng, world.users.len() as u32);
        let size = world.sample_slate_size(&mut rng);
        policy.choose(world, user, size, &mut rng, &mut slate);
        running.push(world.expected_reward(&world.users[user as usize], &slate));
    }
    let s = running.summary();
    PolicyCtr { policy: policy.name(), ctr: s.mean, se: s.se, method: CtrMethod::MonteCarlo { draws: draws as u64 } }
}

/// Exact CTR of a deterministic policy (the oracle): every user, every slate size.
pub fn deterministic_ctr(world: &World, policy: &dyn SlatePolicy) -> PolicyCtr {
    let ctr = deterministic_ctr_on(world, policy, world.users.len() as u32);
    PolicyCtr { policy: policy.name(), ctr, se: 0.0, method: CtrMethod::Deterministic }
}

/// A simulated A/B test: deploy `policy` on `impressions` fresh impressions (new draws of users,
/// slates and clicks) and report the observed CTR with its standard error.
pub fn ab_test(world: &World, policy: &dyn SlatePolicy, impressions: u32, seed: u64, progress: &mut dyn Progress) -> MeanSe {
    let mut rng = rng::seeded(seed, Stream::AbTest);
    let mut running = Running::default();
    let (mut slate, mut scratch, mut clicks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..impressions {
        if i % 4096 == 0 {
            progress.report(i as f64 / impressions as f64, "A/B test");
        }
        let user = rng::index(&mut rng, world.users.len() as u32);
        let size = world.sample_slate_size(&mut rng);
        policy.choose(world, user, size, &mut rng, &mut slate);
        world.sample_clicks(&world.users[user as usize], &slate, &mut rng, &mut scratch, &mut clicks);
        running.push(f64::from(u8::from(clicks.iter().any(|c| *c > 0))));
    }
    running.summary()
}

/// A simulated A/B test that records each impression's expected reward (the probability of a
/// click) instead of a sampled click, as the tutorial's notebooks do: the same mean, a smaller
/// standard error. Users and slate sizes come from `seed` alone, so every policy tested with one
/// seed meets the same traffic (common random numbers make differences between policies sharper).
pub fn ab_test_expected_reward(
    world: &World,
    policy: &dyn SlatePolicy,
    impressions: u32,
    seed: u64,
    progress: &mut dyn Progress,
) -> MeanSe {
    crate::core::stats::mean_se(ab_test_expected_rewards(world, policy, impressions, seed, progress))
}

/// [`ab_test_expected_reward`], impression by impression: with one seed, impression i of every
/// policy meets the same user and slate size, so that differences can be paired.
pub fn ab_test_expected_rewards(
    world: &World,
    policy: &dyn SlatePolicy,
    impressions: u32,
    seed: u64,
    progress: &mut dyn Progress,
) -> Vec<f64> {
    let mut traffic = rng::seeded(seed, Stream::AbTest);
    let mut choices = rng::seeded(seed, Stream::MonteCarlo);
    let mut rewards = Vec::with_capacity(impressions as usize);
    let mut slate = Vec::new();
    for i in 0..impressions {
        if i % 4096 == 0 {
            progress.report(i as f64 / impressions as f64, "A/B test");
        }
        let user = world.impression_user(i, &mut traffic);
        let size = world.sample_slate_size(&mut traffic);
        policy.choose(world, user, size, &mut choices, &mut slate);
        rewards.push(world.expected_reward(&world.users[user as usize], &slate));
    }
    rewards
}

/// Exact CTR of a deterministic policy on the first `users` users (every slate size): cheap
/// enough to call after every training epoch.
pub fn deterministic_ctr_on(world: &World, policy: &dyn SlatePolicy, users: u32) -> f64 {
    let mut rng = rng::seeded(0, Stream::MonteCarlo); // unused by deterministic policies
    let mut slate = Vec::new();
    let users = users.min(world.users.len() as u32).max(1);
    let mut total = 0.0;
    for user in 0..users {
        for size in world.slate_sizes.min..=world.slate_sizes.max {
            policy.choose(world, user, size, &mut rng, &mut slate);
            total += world.expected_reward(&world.users[user as usize], &slate);
        }
    }
    total / (users as f64 * (world.slate_sizes.max - world.slate_sizes.min + 1) as f64)
}

/// θ-mass of the clicks of a slate under PRR (independent of the user's θ_0).
pub fn prr_click_mass(world: &World, category: u32, slate: &[u32]) -> f64 {
    debug_assert_eq!(world.click_model, ClickModel::Prr);
    slate.iter().enumerate().map(|(k, &a)| world.position_theta(category, k, a)).sum()
}

#[cfg(test)]
mod tests {
    use super::super::policy::{Logging, Oracle};
    use super::super::{ClickModel, SyntheticSpec};
    use super::*;

    #[test]
    fn toy_logged_ctr_is_a_few_percent() {
        // The notebook logs ≈ 5.96 ± 0.17 % with the uniform policy.
        let world = World::toy(0, 1000, ClickModel::Prr);
        let policy = PlackettLuce::new(&world, LoggingKind::Uniform);
        let data = log_data(&world, &policy, 20_000, 0, &mut ());
        let ctr = data.ctr();
        assert!((0.03..0.10).contains(&ctr.mean), "{ctr:?}");
        let exact = policy_ctr(&world, &policy, 1e9, 0, 0);
        assert!(matches!(exact.method, CtrMethod::Enumeration { .. }));
        assert!((ctr.mean - exact.ctr).abs() < 4.0 * ctr.se, "{ctr:?} vs {exact:?}");
    }

    #[test]
    fn enumeration_and_monte_carlo_agree() {
        for model in [ClickModel::Prr, ClickModel::Pbm] {
            let world = World::synthetic(
                4,
                SyntheticSpec { items: 9, slate_size: 3, dim: 6, categories: 3, topics: 3, users: 60, engagement_features: 2 },
                model,
            );
            for kind in [LoggingKind::Uniform, LoggingKind::Popularity, LoggingKind::Softmax { temperature: 0.5 }] {
                let policy = PlackettLuce::new(&world, kind);
                let exact = policy_ctr(&world, &policy, 1e9, 0, 0);
                let mc = monte_carlo_ctr(&world, &Logging { policy: &policy }, 40_000, 7);
                assert!(mc.se > 0.0);
                assert!((exact.ctr - mc.ctr).abs() < 4.0 * mc.se, "{model:?} {kind:?}: {exact:?} vs {mc:?}");
            }
        }
    }

    #[test]
    fn weighing_kept_slate_rewards_is_the_enumeration_bit_for_bit() {
        // Toy and synthetic worlds, both click models, a category without users (the toy world
        // with 3 users), and a temperature so low that some slates' propensities are 0.
        let worlds = [
            World::toy(3, 300, ClickModel::Prr),
            World::toy(5, 3, ClickModel::Pbm),
            World::synthetic(
                4,
                SyntheticSpec { items: 9, slate_size: 3, dim: 6, categories: 3, topics: 3, users: 60, engagement_features: 2 },
                ClickModel::Pbm,
            ),
        ];
        for world in &worlds {
            let rewards = SlateRewards::of(world).expect("a small table");
            for kind in [
                LoggingKind::Uniform,
                LoggingKind::Popularity,
                LoggingKind::Softmax { temperature: 1.0 },
                LoggingKind::Softmax { temperature: 0.002 },
            ] {
                let policy = PlackettLuce::new(world, kind);
                let direct = policy_ctr(world, &policy, 1e9, 0, 0);
                let weighed = policy_ctr_with(world, &policy, Some(&rewards), 1e9, 0, 0);
                assert_eq!(direct.ctr.to_bits(), weighed.ctr.to_bits(), "{kind:?}");
                assert_eq!(direct, weighed);
            }
        }
        let skipped = PlackettLuce::new(&worlds[0], LoggingKind::Softmax { temperature: 0.002 });
        let CtrMethod::Enumeration { slates } = policy_ctr(&worlds[0], &skipped, 1e9, 0, 0).method else { panic!("enumerated") };
        let met = members_by_category(&worlds[0]).iter().filter(|m| !m.is_empty()).count() as f64;
        assert!((slates as f64) < slate_count(&worlds[0]) * met, "some slates have propensity 0 at τ = 0.002");
    }

    #[test]
    fn oracle_beats_logging_and_ab_test_is_consistent() {
        let world = World::toy(2, 500, ClickModel::Prr);
        let uniform = PlackettLuce::new(&world, LoggingKind::Uniform);
        let exact = policy_ctr(&world, &uniform, 1e9, 0, 0);
        let oracle = deterministic_ctr(&world, &Oracle);
        assert!(oracle.ctr > exact.ctr);
        let ab = ab_test(&world, &Oracle, 50_000, 3, &mut ());
        assert!((ab.mean - oracle.ctr).abs() < 4.0 * ab.se, "{ab:?} vs {oracle:?}");
    }

    #[test]
    fn same_seed_same_logs() {
        let world = World::toy(8, 100, ClickModel::Pbm);
        let policy = PlackettLuce::new(&world, LoggingKind::Softmax { temperature: 1.0 });
        let a = log_data(&world, &policy, 500, 8, &mut ());
        let b = log_data(&world, &policy, 500, 8, &mut ());
        assert_eq!(a.rows, b.rows);
        assert!(a.to_csv(&world).lines().count() == 501);
        let c = log_data(&world, &policy, 500, 9, &mut ());
        assert_ne!(a.rows, c.rows);
    }

    #[test]
    fn logged_position_propensities_are_marginals() {
        // Empirical frequency of (item, position) in the log ≈ its recorded propensity.
        let world = World::toy(1, 200, ClickModel::Prr);
        let policy = PlackettLuce::new(&world, LoggingKind::Popularity);
        let data = log_data(&world, &policy, 30_000, 1, &mut ());
        let mut at_first = [0u32; 7];
        for row in &data.rows {
            at_first[row.slate[0] as usize] += 1;
        }
        let row0 = data.rows.iter().find(|r| r.slate[0] == 1).unwrap();
        let freq = at_first[1] as f64 / data.rows.len() as f64;
        assert!((freq - row0.position_propensity[0]).abs() < 0.01, "{freq} vs {}", row0.position_propensity[0]);
    }
}
