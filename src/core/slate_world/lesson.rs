//! Lesson 1, "The slate world": log data from a logging policy and look at it — the rows, the CTR
//! by position, how small slate propensities get, and exact vs simulated CTR.

use super::policy::{Logging, LoggingKind, Oracle, PlackettLuce};
use super::simulate::{
    ab_test, deterministic_ctr, enumerable, log_data, policy_ctr_with, LoggedData, LoggedRow, PolicyCtr, SlateRewards,
    SLATE_REWARDS_MAX_SUMS,
};
use super::{log10, ClickModel, SyntheticSpec, World, TOY_CATEGORIES, TOY_ITEMS};
use crate::core::budget::Estimate;
use crate::core::claims::{rising, Claim};
use crate::core::experiment::{Experiment, Part};
use crate::core::math::{exp, ln, pow};
use crate::core::params::{Checked, Issue, Kind, LessonParams, Spec};
use crate::core::progress::{staged, Progress};
use crate::core::rng::{self, Stream};
use crate::core::stages::{bytes_of, Footprint, Graph, Stage, StageCache};
use crate::core::stats::{quantile, Histogram, MeanSe};
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// Largest P·d a browser tab is asked to hold for this lesson (f64: 32 MB).
pub const MAX_CATALOGUE_NUMBERS: i64 = 4_000_000;
/// Work allowed for exact enumeration of a policy's CTR (users × slates × K).
pub const ENUMERATION_BUDGET: f64 = 3e7;
/// Work allowed for exact per-position propensities (tables × P × K² × quadrature nodes).
pub const MARGINALS_BUDGET: f64 = 4e9;

/// Largest slate this lesson and the Horvitz–Thompson lab offer (their enumerations and sweeps
/// grow fast with K; the worlds themselves go to [`super::MAX_SLATE`]).
pub const MAX_K: u32 = 10;
#[derive(Clone, Debug, PartialEq)]
pub struct SlateWorldParams {
    pub world: &'static str,
    pub click_model: &'static str,
    pub items: i64,
    pub slate_size: i64,
    pub dim: i64,
    pub contexts: i64,
    pub topics: i64,
    pub users: i64,
    pub logging: &'static str,
    pub temperature: f64,
    pub logs: i64,
    pub seed: u64,
}

impl Default for SlateWorldParams {
    fn default() -> Self {
        SlateWorldParams {
            world: "toy",
            click_model: "prr",
            items: 200,
            slate_size: 4,
            dim: 16,
            contexts: 20,
            topics: 8,
            users: 1000,
            logging: "uniform",
            temperature: 1.0,
            logs: 20_000,
            seed: 2,
        }
    }
}

pub const WORLDS: &[(&str, &str)] = &[("toy", "Toy: 7 items, 4 contexts, slates of 2–4"), ("synthetic", "Synthetic: choose P, K, d")];
pub const CLICK_MODELS: &[(&str, &str)] = &[("prr", "PRR oracle (one click at most)"), ("pbm", "Position-based (independent clicks)")];
pub const LOGGING: &[(&str, &str)] = &[
    ("uniform", "Uniform without replacement"),
    ("popularity", "Popularity-proportional"),
    ("softmax", "Softmax on scores (Plackett–Luce)"),
];

const SPECS: &[Spec] = &[
    Spec { name: "world", label: "World", help: "the notebook's toy world, or a synthetic one of any size", kind: Kind::Choice(WORLDS) },
    Spec { name: "click_model", label: "Click model", help: "how users click on a slate", kind: Kind::Choice(CLICK_MODELS) },
    Spec {
        name: "items",
        label: "Catalogue size P",
        help: "items in the synthetic catalogue",
        kind: Kind::Int { min: 2, max: 200_000, log: true },
    },
    Spec {
        name: "slate_size",
        label: "Slate size K",
        help: "positions in a banner",
        kind: Kind::Int { min: 1, max: MAX_K as i64, log: false },
    },
    Spec {
        name: "dim",
        label: "Embedding dimension d",
        help: "dimension of item and context embeddings",
        kind: Kind::Int { min: 2, max: 128, log: true },
    },
    Spec { name: "contexts", label: "Context categories", help: "kinds of users (z)", kind: Kind::Int { min: 1, max: 100, log: false } },
    Spec {
        name: "topics",
        label: "Topics",
        help: "item topics; each context likes 1 + Poisson(1) of them",
        kind: Kind::Int { min: 1, max: 64, log: false },
    },
    Spec { name: "users", label: "Users", help: "size of the user population", kind: Kind::Int { min: 1, max: 100_000, log: true } },
    Spec { name: "logging", label: "Logging policy π₀", help: "the policy that filled the logged slates", kind: Kind::Choice(LOGGING) },
    Spec {
        name: "temperature",
        label: "Softmax temperature τ",
        help: "lower = more peaked on the best items",
        kind: Kind::Float { min: 0.05, max: 20.0, log: true },
    },
    Spec {
        name: "logs",
        label: "Logged impressions N",
        help: "rows in the logged dataset (and impressions of the A/B test)",
        kind: Kind::Int { min: 10, max: 2_000_000, log: true },
    },
    Spec { name: "seed", label: "Seed", help: "same seed and parameters → same numbers", kind: Kind::Seed },
];

impl LessonParams for SlateWorldParams {
    fn specs() -> &'static [Spec] {
        SPECS
    }

    crate::fields!(world, click_model, items, slate_size, dim, contexts, topics, users, logging, temperature, logs, seed);

    fn cross_check(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        let synthetic = self.world == "synthetic";
        if synthetic && self.slate_size > self.items {
            issues.push(Issue {
                param: "slate_size",
                message: format!("a slate of K = {} needs at least {} items, P is {}", self.slate_size, self.slate_size, self.items),
            });
        }
        if synthetic && self.items * self.dim.max(self.contexts) > MAX_CATALOGUE_NUMBERS {
            issues.push(Issue {
                param: "items",
                message: format!(
                    "P × max(d, contexts) = {} numbers is more than a browser tab should hold here ({}); lower P or d, or run the CLI",
                    self.items * self.dim.max(self.contexts),
                    MAX_CATALOGUE_NUMBERS
                ),
            });
        }
        if self.logs * (self.slate_size.max(4)) > 8_000_000 {
            issues.push(Issue {
                param: "logs",
                message: format!(
                    "N × K = {} logged positions is too many for one tab (8,000,000); lower N or use the CLI",
                    self.logs * self.slate_size.max(4)
                ),
            });
        }
        if synthetic && self.logging != "uniform" {
            let tables = if self.logging == "softmax" { self.contexts } else { 1 } as f64;
            let k = self.slate_size as f64;
            let work = tables * self.items as f64 * k * k * 250.0;
            if work > MARGINALS_BUDGET {
                issues.push(Issue {
                    param: "items",
                    message: format!(
                        "exact per-position propensities of this policy would take ≈{:.0} G operations; lower P, K or the contexts",
                        work / 1e9
                    ),
                });
            }
        }
        issues
    }

    fn is_active(&self, name: &str) -> bool {
        match name {
            "items" | "slate_size" | "dim" | "contexts" | "topics" => self.world == "synthetic",
            "temperature" => self.logging == "softmax",
            _ => true,
        }
    }
}

impl SlateWorldParams {
    pub fn click_model(&self) -> ClickModel {
        if self.click_model == "pbm" {
            ClickModel::Pbm
        } else {
            ClickModel::Prr
        }
    }

    pub fn logging_kind(&self) -> LoggingKind {
        logging_kind(self.logging, self.temperature)
    }

    /// These parameters as the logs see them: the temperature matters only under softmax logging,
    /// so elsewhere it is the default's (a new temperature then keeps the logs and the A/B test).
    fn as_logged(&self) -> SlateWorldParams {
        let softmax = matches!(self.logging_kind(), LoggingKind::Softmax { .. });
        let temperature = if softmax { self.temperature } else { SlateWorldParams::default().temperature };
        SlateWorldParams { temperature, ..self.clone() }
    }

    /// The world these parameters describe.
    pub fn build_world(&self) -> World {
        if self.world == "synthetic" {
            World::synthetic(
                self.seed,
                SyntheticSpec {
                    items: self.items as u32,
                    slate_size: self.slate_size as u32,
                    dim: self.dim as u32,
                    categories: self.contexts as u32,
                    topics: self.topics as u32,
                    users: self.users as u32,
                    engagement_features: 4,
                },
                self.click_model(),
            )
        } else {
            World::toy(self.seed, self.users as u32, self.click_model())
        }
    }
}

pub fn logging_kind(name: &str, temperature: f64) -> LoggingKind {
    match name {
        "popularity" => LoggingKind::Popularity,
        "softmax" => LoggingKind::Softmax { temperature },
        _ => LoggingKind::Uniform,
    }
}

/// One logged row, as shown in the lesson's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowView {
    /// Its place in the log (1 = the first impression).
    pub row: u32,
    pub user: u32,
    pub context: String,
    pub engagement: Vec<f64>,
    pub slate: Vec<String>,
    pub clicks: Vec<u8>,
    pub slate_propensity: f64,
    pub position_propensity: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionCtr {
    pub position: u32,
    pub impressions: u64,
    pub clicks: u64,
    pub ctr: f64,
    pub se: f64,
}

/// Quantiles of log10 π₀(A|x) over sampled slates of size k.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropensityQuantiles {
    pub k: u32,
    pub p05: f64,
    pub median: f64,
    pub p95: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropensityCurve {
    pub policy: String,
    pub points: Vec<PropensityQuantiles>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlateWorldReport {
    pub world: String,
    pub items: u32,
    pub categories: u32,
    pub users: u32,
    pub slate_sizes: (u32, u32),
    pub logging: String,
    /// Number of distinct ordered slates the world can show.
    pub slate_count: f64,
    pub first_rows: Vec<RowView>,
    pub logged_ctr: MeanSe,
    pub ctr_by_position: Vec<PositionCtr>,
    pub log10_propensity: Histogram,
    /// Median log10 slate propensity of the logged rows.
    pub median_log10_propensity: f64,
    pub propensity_vs_k: Vec<PropensityCurve>,
    /// Exact (or Monte-Carlo) CTR of every logging policy and of the oracle.
    pub policy_ctr: Vec<PolicyCtr>,
    /// The chosen logging policy deployed on N fresh impressions.
    pub ab_test: MeanSe,
}

pub struct SlateWorldLesson;

/// Rows shown in the table.
pub const SHOWN_ROWS: usize = 12;
/// Of those, how many are kept for the first clicked rows when the first ones hold fewer clicks.
const SHOWN_CLICKED_ROWS: usize = 4;
/// Slates sampled per K for the propensity-vs-K curves.
const SWEEP_SLATES: u32 = 2000;
/// Draws of a policy's Monte-Carlo CTR when its slates are too many to enumerate.
const CTR_DRAWS: u32 = 20_000;

/// The lesson's stages. The world is built once per world setting; the policies that do not
/// depend on the temperature (uniform, popularity) and the oracle are summarised once per world,
/// and so is every slate's reward (what the exact CTRs weigh); a change of the temperature reruns
/// the softmax policy's curve and reweighs the slates' rewards for its CTR, and (under softmax
/// logging) the logs and the A/B test.
const SLATE_WORLD_GRAPH: Graph = Graph {
    lesson: "slate-world",
    stages: &[
        // Catalogue, users and click model.
        Stage {
            name: "world",
            reads: &["world", "click_model", "items", "slate_size", "dim", "contexts", "topics", "users", "seed"],
            uses: &[],
        },
        // Every ordered slate's reward summed over each category's users: what an exact CTR
        // weighs by a policy's propensities (kept when the slates are few enough).
        Stage { name: "slate_rewards", reads: &[], uses: &["world"] },
        // Propensity-vs-K curves and exact CTR of the uniform and popularity policies, and the oracle.
        Stage { name: "fixed_policies", reads: &[], uses: &["world", "slate_rewards"] },
        // The same for the softmax policy at the chosen temperature.
        Stage { name: "softmax_policy", reads: &["temperature"], uses: &["world", "slate_rewards"] },
        // The logged dataset under the logging policy, summarised (rows shown, CTRs, propensities).
        // The temperature is read under softmax logging only (the key leaves it out otherwise).
        Stage { name: "logs", reads: &["logging", "temperature", "logs"], uses: &["world"] },
        // An A/B test of the logging policy on N fresh impressions (the temperature: as the logs).
        Stage { name: "ab_test", reads: &["logging", "temperature", "logs"], uses: &["world"] },
    ],
};

impl Footprint for World {
    fn footprint(&self) -> usize {
        let names: usize = self.item_names.iter().chain(&self.category_names).map(|n| n.capacity() + 24).sum();
        let users: usize = self.users.iter().map(|u| bytes_of(&u.engagement) + std::mem::size_of_val(u)).sum();
        // Ψ, g(z), popularity and topics, plus the C × P affinity table and its exp.
        let tables = self.item_embeddings.len() + self.category_embeddings.len() + self.item_popularity.len() * 2;
        names + users + tables * 8 + 2 * 8 * self.categories() as usize * self.items() as usize
    }
}

/// A policy's propensity-vs-K curve and exact (or Monte-Carlo) CTR.
struct PolicySummary {
    curve: PropensityCurve,
    ctr: PolicyCtr,
}

impl Footprint for PolicySummary {
    fn footprint(&self) -> usize {
        bytes_of(&self.curve.points)
    }
}

/// What the page shows of the logged dataset.
struct LogSummary {
    first_rows: Vec<RowView>,
    logged_ctr: MeanSe,
    ctr_by_position: Vec<PositionCtr>,
    log10_propensity: Histogram,
    median_log10_propensity: f64,
}

impl Footprint for LogSummary {
    fn footprint(&self) -> usize {
        self.first_rows.iter().map(|r| r.slate.len() * 32 + r.position_propensity.len() * 9 + r.context.len() + 64).sum::<usize>()
            + bytes_of(&self.ctr_by_position)
            + bytes_of(&self.log10_propensity.counts)
            + bytes_of(&self.log10_propensity.edges)
    }
}

fn world(p: &SlateWorldParams, cache: &mut StageCache) -> Rc<World> {
    cache.get_or_compute(SLATE_WORLD_GRAPH.key("world", p), |_| p.build_world())
}

fn policy_summary(world: &World, rewards: &KeptSlateRewards, kind: LoggingKind, seed: u64) -> PolicySummary {
    let policy = PlackettLuce::new(world, kind);
    let ctr = policy_ctr_with(world, &policy, rewards.0.as_ref(), ENUMERATION_BUDGET, CTR_DRAWS, seed);
    PolicySummary { curve: propensity_curve(world, &policy, seed), ctr }
}

/// The slates' summed rewards, when the CTRs enumerate and the table is small enough.
struct KeptSlateRewards(Option<SlateRewards>);

impl Footprint for KeptSlateRewards {
    fn footprint(&self) -> usize {
        self.0.as_ref().map_or(0, SlateRewards::bytes)
    }
}

fn slate_rewards(p: &SlateWorldParams, cache: &mut StageCache) -> Rc<KeptSlateRewards> {
    cache.get_or_compute(SLATE_WORLD_GRAPH.key("slate_rewards", p), |cache| {
        let world = world(p, cache);
        KeptSlateRewards(if enumerable(&world, ENUMERATION_BUDGET) { SlateRewards::of(&world) } else { None })
    })
}

/// Uniform, popularity (and the oracle's CTR).
fn fixed_policies(p: &SlateWorldParams, cache: &mut StageCache) -> Rc<(Vec<PolicySummary>, PolicyCtrRow)> {
    cache.get_or_compute(SLATE_WORLD_GRAPH.key("fixed_policies", p), |cache| {
        let (world, rewards) = (world(p, cache), slate_rewards(p, cache));
        let summaries =
            [LoggingKind::Uniform, LoggingKind::Popularity].into_iter().map(|k| policy_summary(&world, &rewards, k, p.seed)).collect();
        (summaries, PolicyCtrRow(deterministic_ctr(&world, &Oracle)))
    })
}

fn softmax_policy(p: &SlateWorldParams, cache: &mut StageCache) -> Rc<PolicySummary> {
    cache.get_or_compute(SLATE_WORLD_GRAPH.key("softmax_policy", p), |cache| {
        let (world, rewards) = (world(p, cache), slate_rewards(p, cache));
        policy_summary(&world, &rewards, LoggingKind::Softmax { temperature: p.temperature }, p.seed)
    })
}

/// The oracle's CTR row, as a stage value.
struct PolicyCtrRow(PolicyCtr);

impl Footprint for (Vec<PolicySummary>, PolicyCtrRow) {
    fn footprint(&self) -> usize {
        self.0.footprint()
    }
}

fn logs(p: &SlateWorldParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<LogSummary> {
    cache.get_or_compute(SLATE_WORLD_GRAPH.key("logs", &p.as_logged()), |cache| {
        let world = world(p, cache);
        let policy = PlackettLuce::new(&world, p.logging_kind());
        let data = log_data(&world, &policy, p.logs as u32, p.seed, progress);
        summarise_logs(&world, &data)
    })
}

fn summarise_logs(world: &World, data: &LoggedData) -> LogSummary {
    // The first rows, and, when they hold few clicks (a CTR of a few percent), the first clicked
    // rows after them, so that the table shows what a click looks like in the log.
    let head = SHOWN_ROWS - SHOWN_CLICKED_ROWS;
    let clicked = |r: &&LoggedRow| r.clicks.iter().any(|c| *c > 0);
    let enough = data.rows.iter().take(head).filter(clicked).count() >= SHOWN_CLICKED_ROWS;
    let tail = data.rows.iter().enumerate().skip(head).filter(|(_, r)| enough || clicked(r)).take(SHOWN_CLICKED_ROWS);
    let chosen = data.rows.iter().enumerate().take(head).chain(tail);
    let first_rows = chosen.map(|(index, row)| {
        let u = &world.users[row.user as usize];
        RowView {
            row: index as u32 + 1,
            user: row.user,
            context: world.category_names[u.category as usize].clone(),
            engagement: u.engagement.clone(),
            slate: row.slate.iter().map(|&a| world.item_names[a as usize].clone()).collect(),
            clicks: row.clicks.clone(),
            slate_propensity: row.slate_propensity,
            position_propensity: row.position_propensity.clone(),
        }
    });

    let max_size = world.slate_sizes.max as usize;
    let mut shown = vec![0u64; max_size];
    let mut clicked = vec![0u64; max_size];
    for row in &data.rows {
        for (k, c) in row.clicks.iter().enumerate() {
            shown[k] += 1;
            clicked[k] += u64::from(*c);
        }
    }
    let ctr_by_position = (0..max_size)
        .map(|k| {
            let p = clicked[k] as f64 / shown[k].max(1) as f64;
            PositionCtr {
                position: k as u32 + 1,
                impressions: shown[k],
                clicks: clicked[k],
                ctr: p,
                se: (p * (1.0 - p) / shown[k].max(1) as f64).sqrt(),
            }
        })
        .collect();

    let mut log_props: Vec<f64> = data.rows.iter().map(|r| log10(r.slate_propensity)).collect();
    let log10_propensity = Histogram::of(&log_props, 30);
    log_props.sort_by(f64::total_cmp);
    let median_log10_propensity = quantile(&log_props, 0.5);
    LogSummary { first_rows: first_rows.collect(), logged_ctr: data.ctr(), ctr_by_position, log10_propensity, median_log10_propensity }
}

fn ab(p: &SlateWorldParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<MeanSe> {
    cache.get_or_compute(SLATE_WORLD_GRAPH.key("ab_test", &p.as_logged()), |cache| {
        let world = world(p, cache);
        let policy = PlackettLuce::new(&world, p.logging_kind());
        ab_test(&world, &Logging { policy: &policy }, p.logs as u32, p.seed, progress)
    })
}

// What the stages cost, for this lesson's estimate and for the lessons that use its worlds and
// policies. The `*_ops` counts are in units of about one multiply-add.

pub use super::TOY_SLATE_SIZES;

/// What a learner can lower in an estimate's term: the toy world has none of the synthetic
/// world's sizes.
pub fn to_lower(world: &str, synthetic: &'static [&'static str], toy: &'static [&'static str]) -> &'static [&'static str] {
    if world == "synthetic" {
        synthetic
    } else {
        toy
    }
}
/// Work of a standard normal draw, in multiply-adds.
pub const NORMAL_OPS: f64 = 10.0;
/// Work of an exp (libm), in multiply-adds.
pub const EXP_OPS: f64 = 8.0;
/// Work per item besides its embedding: its name.
const ITEM_OPS: f64 = 60.0;
/// Work per user: engagement draws, θ₀ and the user's vector.
const USER_OPS: f64 = 60.0;
/// ln(w_max / w_min) of the popularity weights (log-normal norms, σ = 0.35).
pub const POPULARITY_LOG_SPREAD: f64 = 1.6;
/// Range of the affinities g(z)·Ψ_a within a category of the synthetic worlds: softmax weights at
/// temperature τ span e^(range/τ).
pub const AFFINITY_SPREAD: f64 = 15.0;
/// Draws `PlackettLuce::sample` tries before it scans the remaining items.
const REJECTION_TRIES: f64 = 32.0;
/// Affinity gap between a category's best items: at temperature τ the items already in a slate
/// hold about 1 − e^(−gap/τ) of the softmax mass, and a new draw hits them that often.
const TOP_AFFINITY_GAP: f64 = 1.0;

/// log₂ through libm.
pub fn log2(x: f64) -> f64 {
    ln(x) / std::f64::consts::LN_2
}

/// Ordered slates of `size` distinct items out of `items`, P!/(P−K)!, as f64 (it overflows u64).
pub fn ordered_slates(items: f64, size: f64) -> f64 {
    (0..size as u32).map(|j| items - j as f64).product()
}

/// Work of `World::synthetic`: item embeddings (a normal per coordinate) and names, the users, and
/// the C × P affinity table with its exp.
pub fn world_ops(items: f64, categories: f64, dim: f64, users: f64) -> f64 {
    items * (dim * NORMAL_OPS + ITEM_OPS) + categories * items * (dim + EXP_OPS) + users * USER_OPS
}

/// Work of one table of exact per-position propensities (`policy::position_marginals`) for
/// `items` weights whose logs span `log_spread`: its quadrature nodes (the log-time range
/// ln(40 W / (1e-15 w_min)) over h = 0.25) × items × (the convolution up to `positions`, the
/// suffix and prefix updates, an expm1 and an exp).
pub fn race_ops(items: f64, positions: f64, log_spread: f64) -> f64 {
    let nodes = (ln(40.0 / 1e-15) + ln(items.max(1.0)) + log_spread) / 0.25 + 1.0;
    nodes * items * (positions * (positions + 1.0) / 2.0 + 3.0 * positions + 2.0 * EXP_OPS)
}

/// Share of a softmax Plackett–Luce policy's draws (after a slate's first position) that exhaust
/// the rejection tries and scan every item. Rarer than 1 in 1000, the scans cost less than the
/// tries themselves (which the per-position costs include): counted as none.
pub fn peaked_share(temperature: f64) -> f64 {
    let share = pow(1.0 - exp(-TOP_AFFINITY_GAP / temperature), REJECTION_TRIES);
    if share < 1e-3 {
        0.0
    } else {
        share
    }
}

/// (Item, chosen item) comparisons of a slate of `size` drawn by scanning at every position after
/// the first (`PlackettLuce::sample`'s fallback; `slate_propensity`'s is alike).
pub fn scan_ops(items: f64, size: f64) -> f64 {
    items * size * (size - 1.0) / 2.0
}

/// Work of a simulated slate position besides its draw's binary search: the click model's θ (two
/// exps), the propensities, the position table.
const POSITION_OPS: f64 = 20.0;
/// Work of a simulated row besides its positions: user, size, outcome draw, θ₀, the row's vectors.
const ROW_OPS: f64 = 60.0;

/// Nanoseconds per unit of `world_ops` (about a multiply-add).
const NS_PER_WORLD_OP: f64 = 3.78;
/// Nanoseconds per item the oracle scans for one user and slate size.
const NS_PER_ORACLE_ITEM: f64 = 0.98;
/// Nanoseconds per enumerated (user, slate position): a θ term of the click model (two exps).
const NS_PER_ENUMERATED_POSITION: f64 = 12.5;
/// Nanoseconds per unit of `race_ops` (about a multiply-add).
const NS_PER_RACE_OP: f64 = 0.61;
/// Nanoseconds per unit of simulating impressions (about a multiply-add or a binary-search step).
const NS_PER_SIMULATION_OP: f64 = 1.31;
/// Nanoseconds per (item, chosen item) comparison of a peaked softmax's scans.
const NS_PER_SCANNED_ITEM: f64 = 1.22;

/// What the lesson's text states about its results (see [`crate::core::claims`]).
const CLAIMS: &[Claim<SlateWorldReport>] = &[Claim {
    sentence: "propensities shrink geometrically with $K$",
    asserts: "each logging policy's median log10 slate propensity falls as K grows, up to K = P − 1 (at K = P the last \
              factor is 1)",
    check: propensities_shrink_with_k,
}];

fn propensities_shrink_with_k(r: &SlateWorldReport) -> Option<Result<(), String>> {
    Some(r.propensity_vs_k.iter().try_for_each(|curve| {
        let falling: Vec<f64> = curve.points.iter().filter(|p| p.k < r.items).map(|p| -p.median).collect();
        rising(&falling, 1.0).map_err(|e| format!("{}: medians (negated) {e}", curve.policy))
    }))
}

impl Experiment for SlateWorldLesson {
    fn claims() -> &'static [Claim<SlateWorldReport>] {
        CLAIMS
    }

    const GRAPH: Graph = SLATE_WORLD_GRAPH;
    type Params = SlateWorldParams;
    type Report = SlateWorldReport;
    type Partial = SlateWorldReport;

    fn estimate(params: &Checked<SlateWorldParams>) -> Estimate {
        let p: &SlateWorldParams = params;
        let synthetic = p.world == "synthetic";
        let active =
            |synthetic_names: &'static [&'static str], toy_names: &'static [&'static str]| to_lower(p.world, synthetic_names, toy_names);
        let (items, categories, dim) = if synthetic {
            (p.items as f64, p.contexts as f64, p.dim as f64)
        } else {
            (TOY_ITEMS.len() as f64, TOY_CATEGORIES.len() as f64, TOY_CATEGORIES.len() as f64)
        };
        let sizes: Vec<f64> = if synthetic { vec![p.slate_size as f64] } else { TOY_SLATE_SIZES.iter().map(|&k| f64::from(k)).collect() };
        let size_count = sizes.len() as f64;
        let mean_size = sizes.iter().sum::<f64>() / size_count;
        let max_size = sizes.iter().copied().fold(0.0, f64::max);
        let (users, rows) = (p.users as f64, p.logs as f64);
        let softmax_logging = p.logging == "softmax";

        // The world, and the softmax policy's C × P weights: in its own stage, and again in the
        // logs and the A/B test under softmax logging.
        let softmax_weights = if softmax_logging { 3.0 } else { 1.0 };
        let world_work = world_ops(items, categories, dim, users) + softmax_weights * categories * items * EXP_OPS;

        // The oracle scans every item for each user and slate size.
        let oracle = users * size_count * items;

        // The three policies' exact CTR when users × slates × K fits the budget (`policy_ctr`).
        let slates: Vec<f64> = sizes.iter().map(|&k| ordered_slates(items, k)).collect();
        let enumerated = slates.iter().sum::<f64>() * max_size * users <= ENUMERATION_BUDGET;
        let enumeration = if enumerated {
            let positions: f64 = sizes.iter().zip(&slates).map(|(k, s)| k * s).sum();
            let met = categories.min(users);
            if met * slates.iter().sum::<f64>() <= SLATE_REWARDS_MAX_SUMS {
                // Every slate's reward once per user (the kept sums), then each policy's
                // propensity once per category.
                positions * (users + 3.0 * met)
            } else {
                3.0 * positions * (users + met)
            }
        } else {
            0.0
        };

        // Exact per-position propensities of the logged rows: one table under popularity, one per
        // category met under softmax (uniform needs none).
        let positions = max_size.min(items);
        let race = match p.logging {
            "popularity" => race_ops(items, positions, POPULARITY_LOG_SPREAD),
            "softmax" => categories.min(users) * race_ops(items, positions, AFFINITY_SPREAD / p.temperature),
            _ => 0.0,
        };

        // N logged rows and N A/B impressions (a binary search per position), the logged
        // propensities sorted for their median.
        let row = mean_size * (POSITION_OPS + log2(items)) + ROW_OPS;
        let simulation = rows * (2.0 * row + log2(rows));

        // Draws from a peaked softmax policy scan the catalogue: its propensity curve (2,000
        // slates per K up to 10), its Monte-Carlo CTR, and the logs and A/B test under softmax logging.
        let curve: f64 = (1..=items.min(f64::from(MAX_K)) as u32).map(|k| f64::from(SWEEP_SLATES) * scan_ops(items, f64::from(k))).sum();
        let mean_scan = sizes.iter().map(|&k| scan_ops(items, k)).sum::<f64>() / size_count;
        let ctr_draws = if enumerated { 0.0 } else { f64::from(CTR_DRAWS) };
        let logged_draws = if softmax_logging { 2.0 * rows } else { 0.0 };
        let scans = (curve + (ctr_draws + logged_draws) * mean_scan) * peaked_share(p.temperature);

        Estimate::new()
            .term("building the world", active(&["items", "contexts", "dim", "users"], &["users"]), world_work, NS_PER_WORLD_OP)
            .term("finding every user's best slate (the oracle)", active(&["users", "items"], &["users"]), oracle, NS_PER_ORACLE_ITEM)
            .term(
                "computing each policy's exact CTR over every slate",
                active(&["users", "items", "slate_size"], &["users"]),
                enumeration,
                NS_PER_ENUMERATED_POSITION,
            )
            .term(
                "computing the logging policy's exact per-position propensities",
                active(&["items", "slate_size", "contexts"], &["logging"]),
                race,
                NS_PER_RACE_OP,
            )
            .term(
                "simulating the logged impressions and the A/B test",
                active(&["logs", "slate_size"], &["logs"]),
                simulation,
                NS_PER_SIMULATION_OP,
            )
            .term(
                "drawing slates from the peaked softmax policy",
                match (synthetic, softmax_logging) {
                    (true, true) => &["items", "slate_size", "logs"],
                    (true, false) => &["items", "slate_size"],
                    (false, _) => &["logs"],
                },
                scans,
                NS_PER_SCANNED_ITEM,
            )
    }

    /// Each term dominates at least one query: toy enumeration at its budget, long logs (toy and
    /// synthetic with K = 10), the oracle over many users, the exponential race under softmax and
    /// popularity, a peaked softmax (τ = 0.1 and 0.3), a large world, a synthetic enumeration.
    const CALIBRATION: &'static [&'static str] = &[
        "users=6800",
        "logs=1000000",
        "world=synthetic&items=2000&slate_size=10&logs=400000",
        "world=synthetic&items=20000&users=40000",
        "world=synthetic&items=20000&logging=softmax",
        "world=synthetic&items=50000&slate_size=8&logging=popularity",
        "world=synthetic&items=2000&temperature=0.1",
        "world=synthetic&items=2000&slate_size=8&temperature=0.3",
        "world=synthetic&items=40000&contexts=100&dim=100&users=1&logs=10",
        "world=synthetic&items=12&slate_size=4&users=600",
    ];

    fn merge(_params: &Checked<SlateWorldParams>, mut partials: Vec<SlateWorldReport>) -> SlateWorldReport {
        partials.pop().expect("one part")
    }

    fn run_part(params: &Checked<SlateWorldParams>, _part: Part, cache: &mut StageCache, progress: &mut dyn Progress) -> SlateWorldReport {
        let p: &SlateWorldParams = params;
        progress.report(0.0, "building the world");
        let world = world(p, cache);
        let logged = logs(p, cache, &mut staged(progress, 0.05, 0.55));

        progress.report(0.55, "propensities and exact CTR of each policy");
        let fixed = fixed_policies(p, cache);
        let softmax = softmax_policy(p, cache);
        let summaries = [&fixed.0[0], &fixed.0[1], &*softmax];
        let propensity_vs_k = summaries.iter().map(|s| s.curve.clone()).collect();
        let mut policy_ctr_rows: Vec<PolicyCtr> = summaries.iter().map(|s| s.ctr.clone()).collect();
        policy_ctr_rows.push(fixed.1 .0.clone());

        let ab_test = ab(p, cache, &mut staged(progress, 0.85, 1.0));
        progress.report(1.0, "done");

        SlateWorldReport {
            world: world.name.clone(),
            items: world.items(),
            categories: world.categories(),
            users: world.users.len() as u32,
            slate_sizes: (world.slate_sizes.min, world.slate_sizes.max),
            logging: p.logging_kind().label(),
            slate_count: super::simulate::slate_count(&world),
            first_rows: logged.first_rows.clone(),
            logged_ctr: logged.logged_ctr,
            ctr_by_position: logged.ctr_by_position.clone(),
            log10_propensity: logged.log10_propensity.clone(),
            median_log10_propensity: logged.median_log10_propensity,
            propensity_vs_k,
            policy_ctr: policy_ctr_rows,
            ab_test: *ab_test,
        }
    }
}

/// Quantiles of log10 π₀(A|x) for K = 1..min(P, MAX_K), from slates sampled for random users.
fn propensity_curve(world: &World, policy: &PlackettLuce, seed: u64) -> PropensityCurve {
    let mut rng = rng::seeded(seed, Stream::Sweep);
    let mut slate = Vec::new();
    let top = world.items().min(MAX_K);
    let points = (1..=top)
        .map(|k| {
            let mut values: Vec<f64> = (0..SWEEP_SLATES)
                .map(|_| {
                    let user = rng::index(&mut rng, world.users.len() as u32);
                    let z = world.users[user as usize].category;
                    policy.sample(z, k, &mut rng, &mut slate);
                    log10(policy.slate_propensity(z, &slate))
                })
                .collect();
            values.sort_by(f64::total_cmp);
            PropensityQuantiles { k, p05: quantile(&values, 0.05), median: quantile(&values, 0.5), p95: quantile(&values, 0.95) }
        })
        .collect();
    PropensityCurve { policy: policy.kind.label(), points }
}

/// The lesson's full logged dataset as CSV (for the CLI's `--csv`).
pub fn dataset_csv(query: &str) -> Result<String, String> {
    let (params, issues) = crate::core::params::from_query::<SlateWorldParams>(query);
    if let Some(issue) = issues.first() {
        return Err(format!("{}: {}", issue.param, issue.message));
    }
    let world = params.build_world();
    let policy = PlackettLuce::new(&world, params.logging_kind());
    Ok(log_data(&world, &policy, params.logs as u32, params.seed, &mut ()).to_csv(&world))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::experiment::run_query;
    use crate::core::params::{check, from_query, parse_strict, to_query};

    #[test]
    fn a_walk_through_parameter_changes_gives_what_a_fresh_run_gives() {
        let choices: &[(&str, &[&str])] = &[
            ("temperature", &["0.3", "1", "4"]),
            ("logging", &["uniform", "popularity", "softmax"]),
            ("world", &["toy", "synthetic"]),
            ("click_model", &["prr", "pbm"]),
            ("items", &["30", "60"]),
            ("slate_size", &["2", "3"]),
            ("dim", &["4", "8"]),
            ("contexts", &["3", "5"]),
            ("topics", &["2", "4"]),
            ("users", &["50", "80"]),
            ("logs", &["300", "500"]),
            ("seed", &["1", "2"]),
        ];
        let stats = crate::core::stages::tests::walk::<SlateWorldLesson>("users=60&logs=400&items=40&dim=6&contexts=4", choices, 40, 3);
        assert!(stats.hits > 10, "{stats:?}");
    }

    #[test]
    fn the_estimate_grows_with_the_sizes_and_the_calibration_queries_parse() {
        let seconds = |q: &str| SlateWorldLesson::estimate(&parse_strict::<SlateWorldParams>(q).unwrap()).native_seconds();
        assert!(seconds("logs=200000") > seconds(""));
        assert!(seconds("users=6000") > seconds(""), "more users to enumerate");
        let synthetic = "world=synthetic";
        for bigger in ["items=20000", "users=20000", "slate_size=10", "dim=128", "contexts=100", "temperature=0.1", "logging=popularity"] {
            assert!(seconds(&format!("{synthetic}&{bigger}")) > seconds(synthetic), "{bigger}");
        }
        assert!(seconds("world=synthetic&items=20000&logging=softmax") > seconds("world=synthetic&items=20000&logging=popularity"));
        for q in SlateWorldLesson::CALIBRATION {
            assert!(parse_strict::<SlateWorldParams>(q).is_ok(), "{q}");
        }
    }

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let p = SlateWorldParams::default();
        assert!(check(p.clone()).is_ok());
        let (back, issues) = from_query::<SlateWorldParams>(&to_query(&p));
        assert!(issues.is_empty());
        assert_eq!(*back, p);
    }

    #[test]
    fn too_large_catalogue_is_refused_with_a_message() {
        let (p, issues) = from_query::<SlateWorldParams>("world=synthetic&items=200000&dim=128");
        assert_eq!(p.items, SlateWorldParams::default().items);
        assert!(issues[0].message.contains("browser tab"), "{issues:?}");
    }

    #[test]
    fn report_is_deterministic_and_sane() {
        let q = "world=toy&logs=3000&seed=5";
        let a = run_query::<SlateWorldLesson>(q, &mut ()).unwrap();
        let b = run_query::<SlateWorldLesson>(q, &mut ()).unwrap();
        assert_eq!(a, b);
        let r: SlateWorldReport = serde_json::from_str(&a).unwrap();
        assert_eq!(r.first_rows.len(), SHOWN_ROWS);
        // The table shows clicks: the first rows, then clicked ones if the first hold few.
        assert!(r.first_rows.iter().filter(|row| row.clicks.iter().any(|c| *c > 0)).count() >= 4);
        assert!(r.first_rows.windows(2).all(|w| w[0].row < w[1].row));
        assert_eq!(r.policy_ctr.len(), 4);
        assert!(r.policy_ctr[3].ctr > r.policy_ctr[0].ctr, "oracle beats uniform");
        // Uniform propensities for K = 2 of 7 are exactly 1/42.
        let k2 = &r.propensity_vs_k[0].points[1];
        assert!((k2.median - log10(1.0 / 42.0)).abs() < 1e-12);
        assert!(run_query::<SlateWorldLesson>("logs=abc", &mut ()).is_err());
    }

    #[test]
    fn synthetic_world_runs_with_every_policy() {
        for logging in ["uniform", "popularity", "softmax"] {
            let q = format!("world=synthetic&items=300&slate_size=5&logs=2000&users=200&logging={logging}");
            let r: SlateWorldReport = serde_json::from_str(&run_query::<SlateWorldLesson>(&q, &mut ()).unwrap()).unwrap();
            assert_eq!(r.ctr_by_position.len(), 5);
            assert!(r.logged_ctr.mean > 0.0 && r.logged_ctr.mean < 1.0);
            // P = 300, K = 5: far too many slates to enumerate.
            assert!(matches!(r.policy_ctr[0].method, super::super::simulate::CtrMethod::MonteCarlo { .. }));
        }
    }
}
