//! The lesson "Horvitz–Thompson for slates": a variance lab. R replications of N logged rows; each
//! estimator's distribution, bias², variance and MSE; MSE as N grows; the cap-M trade-off; HT's
//! spread as K and P grow; per-slate IPS estimates against the truth.

use super::estimators::{self, estimate, Kind, Pair, Row};
use super::{world_bytes, Lab, RawRow, Truth};
use crate::core::budget::Estimate;
use crate::core::claims::Claim;
use crate::core::experiment::{Experiment, Part};
use crate::core::math::{log10, pow, sq};
use crate::core::params::{Checked, Issue, Kind as ParamKind, LessonParams, Spec};
use crate::core::progress::{staged, Progress};
use crate::core::rng;
use crate::core::slate_world::distribution::Distribution;
use crate::core::slate_world::lesson::MAX_K;
use crate::core::slate_world::lesson::{
    log2, ordered_slates, peaked_share, race_ops, scan_ops, to_lower, world_ops, AFFINITY_SPREAD, CLICK_MODELS, EXP_OPS, NORMAL_OPS,
    POPULARITY_LOG_SPREAD, TOY_SLATE_SIZES, WORLDS,
};
use crate::core::slate_world::policy::LoggingKind;
use crate::core::slate_world::{ClickModel, SyntheticSpec, World, TOY_CATEGORIES, TOY_ITEMS};
use crate::core::stages::{bytes_of, Footprint, Graph, Stage, StageCache};
use crate::core::stats::Running;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
pub struct HorvitzThompsonParams {
    pub world: &'static str,
    pub click_model: &'static str,
    pub items: i64,
    pub slate_size: i64,
    pub contexts: i64,
    pub users: i64,
    pub logging: &'static str,
    pub logging_temperature: f64,
    pub target: &'static str,
    pub target_temperature: f64,
    pub epsilon: f64,
    pub cap: f64,
    pub model_noise: f64,
    pub logs: i64,
    pub replications: i64,
    pub estimators: Vec<&'static str>,
    pub seed: u64,
}

impl Default for HorvitzThompsonParams {
    fn default() -> Self {
        HorvitzThompsonParams {
            world: "synthetic",
            click_model: "prr",
            items: 20,
            slate_size: 5,
            contexts: 4,
            users: 400,
            logging: "uniform",
            logging_temperature: 1.0,
            target: "plackett-luce",
            target_temperature: 1.0,
            epsilon: 0.1,
            cap: 1000.0,
            model_noise: 0.5,
            logs: 10_000,
            replications: 500,
            estimators: estimators::CHOICES.iter().map(|(n, _)| *n).collect(),
            seed: 1,
        }
    }
}

pub const LOGGING: &[(&str, &str)] = &[
    ("uniform", "Uniform without replacement (PL)"),
    ("popularity", "Popularity-proportional (PL)"),
    ("softmax", "Softmax on scores (PL)"),
    ("factored-uniform", "Factored uniform (with replacement)"),
    ("factored-softmax", "Factored softmax (with replacement)"),
];

pub const TARGETS: &[(&str, &str)] = &[
    ("plackett-luce", "Plackett–Luce softmax on scores"),
    ("factored", "Factored softmax Π softmax(f(x)·β) (MIPS-friendly)"),
    ("epsilon-top-k", "ε-greedy top-K"),
];

const SPECS: &[Spec] = &[
    Spec { name: "world", label: "World", help: "the toy world, or a synthetic one", kind: ParamKind::Choice(WORLDS) },
    Spec {
        name: "click_model",
        label: "Click model",
        help: "PRR (one click at most) or position-based (item-position)",
        kind: ParamKind::Choice(CLICK_MODELS),
    },
    Spec {
        name: "items",
        label: "Catalogue size P",
        help: "items in the synthetic catalogue",
        kind: ParamKind::Int { min: 2, max: 5000, log: true },
    },
    Spec {
        name: "slate_size",
        label: "Slate size K",
        help: "positions per slate (synthetic world)",
        kind: ParamKind::Int { min: 1, max: MAX_K as i64, log: false },
    },
    Spec { name: "contexts", label: "Context categories", help: "kinds of users", kind: ParamKind::Int { min: 1, max: 50, log: false } },
    Spec { name: "users", label: "Users", help: "size of the user population", kind: ParamKind::Int { min: 1, max: 20_000, log: true } },
    Spec { name: "logging", label: "Logging policy π₀", help: "the policy that produced the logs", kind: ParamKind::Choice(LOGGING) },
    Spec {
        name: "logging_temperature",
        label: "π₀ temperature",
        help: "softmax temperature of the logging policy",
        kind: ParamKind::Float { min: 0.05, max: 20.0, log: true },
    },
    Spec { name: "target", label: "Target policy π", help: "the policy whose CTR we estimate", kind: ParamKind::Choice(TARGETS) },
    Spec {
        name: "target_temperature",
        label: "π temperature",
        help: "lower = π more concentrated = larger weights",
        kind: ParamKind::Float { min: 0.05, max: 20.0, log: true },
    },
    Spec {
        name: "epsilon",
        label: "ε of top-K",
        help: "probability that ε-greedy shows a uniform slate",
        kind: ParamKind::Float { min: 0.0, max: 1.0, log: false },
    },
    Spec {
        name: "cap",
        label: "Cap M",
        help: "weight cap of capped / filtered IPS and NCIS",
        kind: ParamKind::Float { min: 1.0, max: 1e9, log: true },
    },
    Spec {
        name: "model_noise",
        label: "Reward-model noise σ",
        help: "noise on the affinities of the DM / DR reward model",
        kind: ParamKind::Float { min: 0.0, max: 3.0, log: false },
    },
    Spec {
        name: "logs",
        label: "Logged rows N",
        help: "rows per replication",
        kind: ParamKind::Int { min: 10, max: 1_000_000, log: true },
    },
    Spec {
        name: "replications",
        label: "Replications R",
        help: "independent logged datasets",
        kind: ParamKind::Int { min: 2, max: 10_000, log: true },
    },
    Spec {
        name: "estimators",
        label: "Estimators",
        help: "which estimators to compute and show",
        kind: ParamKind::Set(estimators::CHOICES),
    },
    Spec { name: "seed", label: "Seed", help: "same seed and parameters → same numbers", kind: ParamKind::Seed },
];

/// Rows one tab is asked to simulate in a lab run (R × N).
pub const MAX_ROWS: i64 = 30_000_000;

impl LessonParams for HorvitzThompsonParams {
    fn specs() -> &'static [Spec] {
        SPECS
    }

    crate::fields!(
        world,
        click_model,
        items,
        slate_size,
        contexts,
        users,
        logging,
        logging_temperature,
        target,
        target_temperature,
        epsilon,
        cap,
        model_noise,
        logs,
        replications,
        estimators,
        seed
    );

    fn cross_check(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        if self.world == "synthetic" && self.slate_size > self.items {
            issues.push(Issue {
                param: "slate_size",
                message: format!("a slate of K = {} needs at least {} items, P is {}", self.slate_size, self.slate_size, self.items),
            });
        }
        if self.logs * self.replications > MAX_ROWS {
            issues.push(Issue {
                param: "replications",
                message: format!(
                    "R × N = {} rows is more than this lab simulates in a tab ({MAX_ROWS}); lower R or N, or run the CLI",
                    self.logs * self.replications
                ),
            });
        }
        issues
    }

    fn is_active(&self, name: &str) -> bool {
        match name {
            "items" | "slate_size" | "contexts" => self.world == "synthetic",
            "logging_temperature" => self.logging.ends_with("softmax"),
            "target_temperature" => self.target != "epsilon-top-k",
            "epsilon" => self.target == "epsilon-top-k",
            "cap" => ["capped", "filtered", "ncis"].iter().any(|e| self.estimators.contains(e)),
            "model_noise" => ["dm", "dr"].iter().any(|e| self.estimators.contains(e)),
            _ => true,
        }
    }
}

impl HorvitzThompsonParams {
    fn world_with(&self, items: u32, slate_size: u32, users: u32) -> World {
        let model = if self.click_model == "pbm" { ClickModel::Pbm } else { ClickModel::Prr };
        if self.world == "synthetic" {
            World::synthetic(self.seed, SyntheticSpec::with_contexts(items, slate_size, self.contexts as u32, users, 4), model)
        } else {
            World::toy(self.seed, users, model)
        }
    }

    pub fn build_world(&self) -> World {
        self.world_with(self.items as u32, self.slate_size as u32, self.users as u32)
    }

    pub fn logging_policy(&self, world: &World) -> Distribution {
        match self.logging {
            "popularity" => Distribution::plackett_luce(world, LoggingKind::Popularity),
            "softmax" => Distribution::plackett_luce(world, LoggingKind::Softmax { temperature: self.logging_temperature }),
            "factored-uniform" => Distribution::factored_uniform(world),
            "factored-softmax" => Distribution::factored_softmax(world, self.logging_temperature),
            _ => Distribution::plackett_luce(world, LoggingKind::Uniform),
        }
    }

    pub fn target_policy(&self, world: &World) -> Distribution {
        match self.target {
            "factored" => Distribution::factored_softmax(world, self.target_temperature),
            "epsilon-top-k" => Distribution::epsilon_top_k(world, self.epsilon),
            _ => Distribution::plackett_luce(world, LoggingKind::Softmax { temperature: self.target_temperature }),
        }
    }

    pub fn lab(&self, world: World, with_model: bool) -> Lab {
        let (logging, target) = (self.logging_policy(&world), self.target_policy(&world));
        Lab::new(world, logging, target, with_model.then_some(self.model_noise), self.seed)
    }

    fn kinds(&self) -> Vec<Kind> {
        self.estimators.iter().filter_map(|n| Kind::from_name(n)).collect()
    }

    /// Whether an estimator needs the reward model (DM, DR).
    fn with_model(&self) -> bool {
        self.kinds().iter().any(|k| matches!(k, Kind::Dm | Kind::Dr))
    }
}

/// Estimates of one replication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    /// One per chosen estimator, at full N.
    pub estimates: Vec<estimators::Estimate>,
    /// prefix[c][e]: estimator e on the first `n_grid[c]` rows.
    pub prefix: Vec<Vec<f64>>,
    /// Capped IPS at each cap of `cap_grid`.
    pub capped: Vec<f64>,
}

/// Spread of single-row terms at one (K, P): the standard deviation of HT, IIPS and PI estimates
/// with N rows is √(row variance / N).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpreadPoint {
    pub k: u32,
    pub p: u32,
    pub ht_sd: f64,
    pub iips_sd: f64,
    pub pi_sd: f64,
    /// Median log10 of the slate weight π/π₀ over the rows.
    /// None when π never shows a logged slate (every weight 0): there is no log to take.
    pub median_log10_weight: Option<f64>,
    /// Fraction of rows whose weight is 0 (π never shows that slate).
    pub zero_weight_share: f64,
}

/// True and IPS-estimated value of one slate shown to everybody (the notebook's scatter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlatePoint {
    pub slate: Vec<String>,
    pub truth: f64,
    pub ips: f64,
    pub rows: u32,
}

/// What part 0 adds to its replications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Extras {
    pub truth: Truth,
    pub scatter: Vec<SlatePoint>,
    pub scatter_slate_size: u32,
    /// The world of the scatter: the lesson's, or the toy world when the lesson's has too many slates.
    pub scatter_world: String,
    pub logging_label: String,
    pub target_label: String,
}

/// What the last part adds to its replications (the other heavy extra, so that part 0 does not
/// carry both: the preview's first figure waited for the slower worker).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spreads {
    pub spread_vs_k: Vec<SpreadPoint>,
    pub spread_vs_p: Vec<SpreadPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialReport {
    pub first_replication: u32,
    pub replications: Vec<Replication>,
    pub extras: Option<Extras>,
    pub spreads: Option<Spreads>,
    /// The last part of a preview that left the spreads out (see [`Part::preview`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spreads_left_out: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstimatorSummary {
    pub name: String,
    pub label: String,
    /// The estimate of every replication, in replication order.
    pub values: Vec<f64>,
    pub mean: f64,
    pub bias: f64,
    pub variance: f64,
    pub mse: f64,
    /// Mean of the standard errors the estimator reports for itself.
    pub mean_reported_se: f64,
    /// Share of replications whose ±1.96 s.e. interval holds the truth.
    pub coverage: f64,
    pub mean_ess: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HorvitzThompsonReport {
    pub truth: Truth,
    pub logging: String,
    pub target: String,
    pub logs: u32,
    pub replications: u32,
    pub estimators: Vec<EstimatorSummary>,
    pub n_grid: Vec<u32>,
    /// mse_vs_n[e][c].
    pub mse_vs_n: Vec<Vec<f64>>,
    pub cap_grid: Vec<f64>,
    pub cap_bias2: Vec<f64>,
    pub cap_variance: Vec<f64>,
    pub cap_mse: Vec<f64>,
    pub spread_vs_k: Vec<SpreadPoint>,
    pub spread_vs_p: Vec<SpreadPoint>,
    /// A preview left the spreads out (they were not cached): the full report has them. Absent
    /// from the JSON when false (a full report's JSON is as it was before the field).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spreads_pending: bool,
    pub scatter: Vec<SlatePoint>,
    pub scatter_slate_size: u32,
    pub scatter_world: String,
}

pub struct HorvitzThompsonLesson;

/// Prefix sizes for MSE vs N: N, N/2, N/4, … down to ≥ 10 rows, increasing.
pub fn n_grid(n: u32) -> Vec<u32> {
    let mut grid = vec![n];
    while *grid.last().unwrap() / 2 >= 10 && grid.len() < 9 {
        grid.push(grid.last().unwrap() / 2);
    }
    grid.reverse();
    grid
}

/// Caps for the bias–variance sweep: 1 to 1e8, four per decade.
pub fn cap_grid() -> Vec<f64> {
    (0..=32).map(|i| pow(10.0, i as f64 / 4.0)).collect()
}

/// Budget (users × slates × K) for an exact truth.
const TRUTH_BUDGET: f64 = 3e7;
const TRUTH_DRAWS: u32 = 400_000;
/// Rows per point of the K and P sweeps.
const SPREAD_ROWS: u32 = 4000;
/// Largest K of the sweep over K.
const SPREAD_MAX_K: u32 = 8;
/// Catalogue sizes of the sweep over P (those ≥ K), and their worlds' users.
const SPREAD_ITEMS: [u32; 9] = [5, 10, 20, 50, 100, 200, 500, 1000, 2000];
const SPREAD_USERS: u32 = 200;
/// Most slates the per-slate scatter shows.
const SCATTER_MAX_SLATES: f64 = 2000.0;

/// The lesson's stages. Replications are simulated in blocks (the block's range is part of its
/// key) and kept as (weight, reward) pairs next to the estimates that ignore the cap, so a change
/// of the cap M only re-estimates; a change of the estimators too (unless it adds or drops the
/// reward model). A change of the target policy keeps the world and the scatter; of N, the world,
/// the policies, the truth and the spreads (divided by √N at the end); of R, every block already
/// simulated.
const HT_GRAPH: Graph = Graph {
    lesson: "horvitz-thompson",
    stages: &[
        // The world: users, items, the click model.
        Stage { name: "world", reads: &["world", "click_model", "items", "slate_size", "contexts", "users", "seed"], uses: &[] },
        // The logging and target policies with their position tables (a lab without reward model).
        Stage { name: "policies", reads: &["logging", "logging_temperature", "target", "target_temperature", "epsilon"], uses: &["world"] },
        // The reward model f̂ of DM and DR and E_π f̂ per user, or none: of the estimators, it reads
        // only whether DM or DR is among them, and σ only then (its key is made of `model_view`).
        Stage { name: "model", reads: &["model_noise", "estimators"], uses: &["policies"] },
        // A block of replications (its range in the key, aligned on multiples of the block size):
        // each one's rows as (weight, reward) pairs, the estimates that ignore the cap (at N and on
        // the prefixes of the N grid), capped IPS over the cap grid.
        Stage { name: "replications", reads: &["logs", "seed"], uses: &["model"] },
        // A part's replications (its range in the key): the chosen estimators, the cap's from the
        // pairs.
        Stage { name: "estimates", reads: &["cap", "estimators", "replications"], uses: &["replications"] },
        // V(π).
        Stage { name: "truth", reads: &[], uses: &["policies"] },
        // Row-level spread of HT, IIPS and PI as K and P grow (their own worlds and policies).
        Stage {
            name: "spreads",
            reads: &["logging", "logging_temperature", "target", "target_temperature", "epsilon", "seed"],
            uses: &["world"],
        },
        // Per-slate IPS against the truth: logged rows of replication 0 (the target plays no part).
        Stage { name: "scatter", reads: &["logging", "logging_temperature", "logs", "seed"], uses: &["world"] },
        // What part 0 adds to the report: the truth, the scatter and the policies' names.
        Stage { name: "extras", reads: &[], uses: &["policies", "truth", "scatter"] },
        // What the last part adds: the spreads per row divided by √N.
        Stage { name: "spreads-of-the-mean", reads: &["logs"], uses: &["spreads"] },
    ],
};

/// What part 0's extras (truth, scatter) and the last part's spreads cost, in replications
/// (measured at the defaults, natively), to weigh the parts' progress.
const EXTRAS_IN_REPLICATIONS: f64 = 45.0;
const SPREADS_IN_REPLICATIONS: f64 = 65.0;

/// Rows per block of replications (about 2.3 MB kept per block).
const BLOCK_ROWS: u32 = 250_000;

/// Replications per block with N rows each.
fn block_size(logs: u32) -> u32 {
    #[cfg(test)]
    let block_rows = tests::BLOCK_ROWS.with(|b| b.get());
    #[cfg(not(test))]
    let block_rows = BLOCK_ROWS;
    (block_rows / logs.max(1)).max(1)
}

/// Part `part`'s replications. The parts' work is made about even, counting part 0's extras
/// and, outside a preview (which leaves them out unless cached), the last part's spreads in
/// replications ([`EXTRAS_IN_REPLICATIONS`], [`SPREADS_IN_REPLICATIONS`]); the bounds fall on
/// multiples of the block size, as the cached blocks do. Equal shares gave a preview of 50
/// replications (two blocks) 25 replications and the extras in part 0 against 25 in part 1: it
/// waited for part 0. Now part 0 computes the extras, part 1 the replications.
fn replications_of(p: &HorvitzThompsonParams, part: Part) -> std::ops::Range<u32> {
    let all = p.replications as u32;
    let size = block_size(p.logs as u32);
    let spreads = if part.preview { 0.0 } else { SPREADS_IN_REPLICATIONS };
    let total = all as f64 + EXTRAS_IN_REPLICATIONS + spreads;
    let bound = |i: u32| -> u32 {
        if i == 0 {
            0
        } else if i >= part.count {
            all
        } else {
            let at = total * i as f64 / part.count as f64 - EXTRAS_IN_REPLICATIONS;
            (((at / size as f64).round().max(0.0) as u32) * size).min(all)
        }
    };
    bound(part.index)..bound(part.index + 1)
}

/// `range` cut at the multiples of `size`: the same replications make the same blocks whatever
/// the parts' bounds (which move with R).
fn blocks(range: std::ops::Range<u32>, size: u32) -> Vec<std::ops::Range<u32>> {
    let mut out = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = ((start / size + 1) * size).min(range.end);
        out.push(start..end);
        start = end;
    }
    out
}

struct WorldStage(World);

/// A lab without reward model.
struct Policies(Lab);

/// A copy of the policies' lab with a reward model, when DM or DR is chosen.
struct Model(Option<Lab>);

/// What a block of replications keeps of one replication besides its pairs.
struct Fixed {
    /// Per estimator of `estimators::ALL`: at N, and on each prefix of the N grid; None for the
    /// cap's estimators (and for DM and DR without a reward model).
    estimates: Vec<Option<(estimators::Estimate, Vec<f64>)>>,
    /// Capped IPS at each cap of `cap_grid`.
    capped: Vec<f64>,
}

struct Block {
    fixed: Vec<Fixed>,
    /// The rows of every replication of the block, one replication after the other.
    pairs: Vec<Pair>,
}

/// Spreads at the row level: `SpreadPoint`s whose standard deviations are not yet divided by √N.
struct RowSpreads(Vec<SpreadPoint>, Vec<SpreadPoint>);

struct Scatter(Vec<SlatePoint>, u32, &'static str);

impl Footprint for WorldStage {
    fn footprint(&self) -> usize {
        world_bytes(&self.0)
    }
}

impl Footprint for Policies {
    fn footprint(&self) -> usize {
        self.0.own_bytes() + self.0.table_bytes()
    }
}

impl Footprint for Model {
    fn footprint(&self) -> usize {
        // Its position tables are the policies'.
        self.0.as_ref().map_or(0, Lab::own_bytes)
    }
}

impl Footprint for Block {
    fn footprint(&self) -> usize {
        let fixed = |f: &Fixed| {
            bytes_of(&f.estimates) + f.estimates.iter().flatten().map(|(_, p)| bytes_of(p)).sum::<usize>() + bytes_of(&f.capped)
        };
        bytes_of(&self.pairs) + bytes_of(&self.fixed) + self.fixed.iter().map(fixed).sum::<usize>()
    }
}

impl Footprint for Replication {
    fn footprint(&self) -> usize {
        bytes_of(&self.estimates) + bytes_of(&self.prefix) + self.prefix.iter().map(|p| bytes_of(p)).sum::<usize>() + bytes_of(&self.capped)
    }
}

impl Footprint for Truth {
    fn footprint(&self) -> usize {
        self.method.capacity()
    }
}

impl Footprint for RowSpreads {
    fn footprint(&self) -> usize {
        bytes_of(&self.0) + bytes_of(&self.1)
    }
}

fn slate_points_bytes(points: &[SlatePoint]) -> usize {
    bytes_of(points) + points.iter().map(|s| bytes_of(&s.slate) + s.slate.iter().map(String::capacity).sum::<usize>()).sum::<usize>()
}

impl Footprint for Scatter {
    fn footprint(&self) -> usize {
        slate_points_bytes(&self.0)
    }
}

impl Footprint for Extras {
    fn footprint(&self) -> usize {
        self.truth.footprint() + slate_points_bytes(&self.scatter) + self.logging_label.capacity() + self.target_label.capacity()
    }
}

/// What the model stage, and the stages that use it, read of the parameters: the estimators only
/// as whether DM or DR is among them, σ only then. Their keys are made of this, so that choosing
/// other estimators, or another σ while no estimator uses the model, reuses them.
fn model_view(p: &HorvitzThompsonParams) -> HorvitzThompsonParams {
    let with_model = p.with_model();
    HorvitzThompsonParams {
        estimators: if with_model { vec!["dm"] } else { Vec::new() },
        model_noise: if with_model { p.model_noise } else { 0.0 },
        ..p.clone()
    }
}

fn world_stage(p: &HorvitzThompsonParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<WorldStage> {
    cache.get_or_compute(HT_GRAPH.key("world", p), |_| {
        progress.report(0.0, "building the world");
        WorldStage(p.build_world())
    })
}

fn policies_stage(p: &HorvitzThompsonParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Policies> {
    cache.get_or_compute(HT_GRAPH.key("policies", p), |cache| {
        let world = world_stage(p, cache, progress);
        progress.report(0.0, "building the policies");
        Policies(p.lab(world.0.clone(), false))
    })
}

fn model_stage(p: &HorvitzThompsonParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Model> {
    cache.get_or_compute(HT_GRAPH.key("model", &model_view(p)), |cache| {
        if !p.with_model() {
            return Model(None);
        }
        let policies = policies_stage(p, cache, progress);
        progress.report(0.0, "building the reward model");
        Model(Some(policies.0.with_reward_model(p.model_noise, p.seed)))
    })
}

/// Replications `range` (within one block), simulated.
fn block_stage(p: &HorvitzThompsonParams, range: std::ops::Range<u32>, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Block> {
    let key = |p: &HorvitzThompsonParams| HT_GRAPH.key("replications", &model_view(p)).with(format!("{}..{}", range.start, range.end));
    if !p.with_model() {
        // The reward model draws no random numbers and only adds DM and DR: a block simulated
        // with it holds all that this one would (dropping DM and DR reuses it).
        let with_model = HorvitzThompsonParams { estimators: vec!["dm"], ..p.clone() };
        if let Some(block) = cache.get::<Block>(&key(&with_model)) {
            return block;
        }
    }
    cache.get_or_compute(key(p), |cache| {
        let policies = policies_stage(p, cache, progress);
        let model = model_stage(p, cache, progress);
        let lab = model.0.as_ref().unwrap_or(&policies.0);
        let (grid, caps) = (n_grid(p.logs as u32), cap_grid());
        let mut rows = Vec::new();
        let mut block = Block { fixed: Vec::with_capacity(range.len()), pairs: Vec::with_capacity(range.len() * p.logs as usize) };
        let count = range.len() as f64;
        for (i, r) in range.enumerate() {
            progress.report(i as f64 / count, "replications");
            lab.simulate(p.logs as u32, &mut rng::replication(p.seed, r), &mut rows, None);
            let estimates = estimators::ALL
                .iter()
                .map(|&kind| {
                    let needs_model = matches!(kind, Kind::Dm | Kind::Dr);
                    (!kind.uses_cap() && (model.0.is_some() || !needs_model))
                        .then(|| estimators::estimate_with_prefixes(kind, f64::NAN, &rows, &grid))
                })
                .collect();
            let capped = caps.iter().map(|&m| estimate(Kind::CappedIps, m, &rows).value).collect();
            block.fixed.push(Fixed { estimates, capped });
            block.pairs.extend(rows.iter().map(Pair::of));
        }
        block
    })
}

/// The replications of `range` (a part's), estimated.
fn estimates_stage(
    p: &HorvitzThompsonParams,
    range: std::ops::Range<u32>,
    cache: &mut StageCache,
    progress: &mut dyn Progress,
) -> Rc<Vec<Replication>> {
    let key = HT_GRAPH.key("estimates", p).with(format!("{}..{}", range.start, range.end));
    cache.get_or_compute(key, |cache| {
        let (kinds, grid, n) = (p.kinds(), n_grid(p.logs as u32), p.logs as usize);
        let blocks = blocks(range.clone(), block_size(p.logs as u32));
        let mut replications = Vec::with_capacity(range.len());
        for (b, replications_of_block) in blocks.iter().enumerate() {
            let share = |b: usize| b as f64 / blocks.len() as f64;
            let block = block_stage(p, replications_of_block.clone(), cache, &mut staged(progress, share(b), share(b + 1)));
            for (i, fixed) in block.fixed.iter().enumerate() {
                let pairs = &block.pairs[i * n..(i + 1) * n];
                let mut by_kind = Vec::with_capacity(kinds.len());
                for &kind in &kinds {
                    by_kind.push(match &fixed.estimates[kind.index()] {
                        Some(kept) => std::borrow::Cow::Borrowed(kept),
                        None => std::borrow::Cow::Owned(
                            estimators::weighted(kind, p.cap, pairs, &grid).expect("the block keeps what the pairs cannot give"),
                        ),
                    });
                }
                replications.push(Replication {
                    estimates: by_kind.iter().map(|e| e.0).collect(),
                    prefix: (0..grid.len()).map(|c| by_kind.iter().map(|e| e.1[c]).collect()).collect(),
                    capped: fixed.capped.clone(),
                });
            }
        }
        replications
    })
}

fn truth_stage(p: &HorvitzThompsonParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Truth> {
    cache.get_or_compute(HT_GRAPH.key("truth", p), |cache| {
        let policies = policies_stage(p, cache, progress);
        progress.report(0.0, "the truth");
        policies.0.truth(TRUTH_BUDGET, TRUTH_DRAWS, p.seed)
    })
}

fn spreads_stage(p: &HorvitzThompsonParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<RowSpreads> {
    cache.get_or_compute(HT_GRAPH.key("spreads", p), |cache| {
        let world = world_stage(p, cache, progress);
        progress.report(0.0, "spread as K and P grow");
        let (by_k, by_p) = row_spreads(p, &world.0);
        RowSpreads(by_k, by_p)
    })
}

fn scatter_stage(p: &HorvitzThompsonParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Scatter> {
    cache.get_or_compute(HT_GRAPH.key("scatter", p), |cache| {
        let world = world_stage(p, cache, progress);
        progress.report(0.0, "per-slate estimates");
        let (points, size, on) = scatter(p, &world.0);
        Scatter(points, size, on)
    })
}

fn extras_stage(p: &HorvitzThompsonParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Extras> {
    cache.get_or_compute(HT_GRAPH.key("extras", p), |cache| {
        let truth = truth_stage(p, cache, &mut staged(progress, 0.0, 0.9));
        let scatter = scatter_stage(p, cache, &mut staged(progress, 0.9, 1.0));
        let policies = policies_stage(p, cache, progress);
        Extras {
            truth: (*truth).clone(),
            scatter: scatter.0.clone(),
            scatter_slate_size: scatter.1,
            scatter_world: scatter.2.into(),
            logging_label: policies.0.logging.label(),
            target_label: policies.0.target.label(),
        }
    })
}

/// The spreads of one row's estimate divided by √N: those of the mean over the logs.
fn spreads_of_the_mean(p: &HorvitzThompsonParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Spreads {
    let spreads = spreads_stage(p, cache, progress);
    let root_n = (p.logs as f64).sqrt();
    let per_n = |points: &[SpreadPoint]| -> Vec<SpreadPoint> {
        points
            .iter()
            .map(|s| SpreadPoint { ht_sd: s.ht_sd / root_n, iips_sd: s.iips_sd / root_n, pi_sd: s.pi_sd / root_n, ..s.clone() })
            .collect()
    };
    Spreads { spread_vs_k: per_n(&spreads.0), spread_vs_p: per_n(&spreads.1) }
}

// What the stages cost, for the estimate. The `*_OPS` are in units of about one multiply-add (see
// `slate_world::lesson::world_ops`); positions are slate positions drawn or enumerated.

/// Work of a simulated slate position besides its draw's binary search: the logging draw, the
/// click model's θ (two exps), both propensities and both position tables.
const POSITION_OPS: f64 = 20.0;
/// Work of a simulated slate position for the reward model: its θ (two exps).
const MODEL_POSITION_OPS: f64 = 16.0;
/// Work of a simulated row besides its positions: user, size, outcome draw, θ₀.
const ROW_OPS: f64 = 60.0;
/// Work of one estimator's pass over one row (a few running sums).
const PASS_OPS: f64 = 1.5;
/// An enumerated (user, slate position) costs about this share of a drawn one (no draw, no tries).
const ENUMERATED_SHARE: f64 = 0.4;
/// Positions a raw row of the scatter costs besides its slate (its five vectors).
const RAW_ROW_POSITIONS: f64 = 4.0;
/// What `Lab::compute_model_values` draws per user and slate size when it cannot enumerate.
const MODEL_DRAWS_PER_USER: f64 = super::MODEL_DRAWS as f64;
use super::MODEL_ENUMERATION_BUDGET;

/// Nanoseconds per unit of simulating and estimating the replications (about a multiply-add).
const NS_PER_REPLICATION_OP: f64 = 1.18;
/// Nanoseconds per unit of building worlds and position tables (`world_ops`, `race_ops`).
const NS_PER_BUILD_OP: f64 = 0.49;
/// Nanoseconds per slate position the reward model's values draw from π (a draw and its θ).
const NS_PER_MODEL_POSITION: f64 = 55.0;
/// Nanoseconds per slate position the truth and the spreads draw.
const NS_PER_TRUTH_POSITION: f64 = 60.8;
/// Nanoseconds per (user, slate position) of the scatter's true values (a θ term: two exps).
const NS_PER_SCATTER_POSITION: f64 = 15.4;
/// Nanoseconds per (item, chosen item) comparison of a peaked softmax's scans.
const NS_PER_SCANNED_ITEM: f64 = 1.47;

/// Passes over a row's estimators: a ratio estimator makes two.
fn passes(kind: &Kind) -> f64 {
    if matches!(kind, Kind::Snips | Kind::Ncis) {
        2.0
    } else {
        1.0
    }
}

/// What the lesson's text states about its results (see [`crate::core::claims`]).
const CLAIMS: &[Claim<HorvitzThompsonReport>] = &[Claim {
    sentence: "bounded variance, a downward bias",
    asserts: "capped and filtered IPS: bias ≤ 2 standard errors of their mean over the replications",
    check: capped_and_filtered_bias_down,
}];

fn capped_and_filtered_bias_down(r: &HorvitzThompsonReport) -> Option<Result<(), String>> {
    let checked: Vec<&EstimatorSummary> = r.estimators.iter().filter(|e| matches!(e.name.as_str(), "capped" | "filtered")).collect();
    if checked.is_empty() || r.replications < 2 {
        return None;
    }
    Some(checked.iter().try_for_each(|e| {
        let two_se = 2.0 * (e.variance / r.replications as f64).sqrt();
        if e.bias <= two_se {
            Ok(())
        } else {
            Err(format!("{}: bias {:+.5} > 2 s.e. {two_se:.5}", e.name, e.bias))
        }
    }))
}

impl Experiment for HorvitzThompsonLesson {
    fn claims() -> &'static [Claim<HorvitzThompsonReport>] {
        CLAIMS
    }

    const GRAPH: Graph = HT_GRAPH;
    type Params = HorvitzThompsonParams;
    type Report = HorvitzThompsonReport;
    type Partial = PartialReport;

    fn estimate(params: &Checked<HorvitzThompsonParams>) -> Estimate {
        let p: &HorvitzThompsonParams = params;
        let synthetic = p.world == "synthetic";
        let active =
            |synthetic_names: &'static [&'static str], toy_names: &'static [&'static str]| to_lower(p.world, synthetic_names, toy_names);
        let spec = SyntheticSpec::with_contexts(p.items as u32, p.slate_size as u32, p.contexts as u32, p.users as u32, 4);
        let (items, categories, dim) = if synthetic {
            (p.items as f64, p.contexts as f64, f64::from(spec.dim))
        } else {
            (TOY_ITEMS.len() as f64, TOY_CATEGORIES.len() as f64, TOY_CATEGORIES.len() as f64)
        };
        let sizes: Vec<f64> = if synthetic { vec![p.slate_size as f64] } else { TOY_SLATE_SIZES.iter().map(|&k| f64::from(k)).collect() };
        let mean_size = sizes.iter().sum::<f64>() / sizes.len() as f64;
        let (min_size, max_size) = (sizes.iter().copied().fold(f64::INFINITY, f64::min), sizes.iter().copied().fold(0.0, f64::max));
        let (users, rows, replications) = (p.users as f64, p.logs as f64, p.replications as f64);
        let model = if p.with_model() { 1.0 } else { 0.0 };

        // Without kept stages (the CLI, a fresh worker) every block of replications rebuilds the
        // world and the lab, twice with a reward model (the model stage builds its own); the truth
        // and the extras build theirs.
        let blocks = (replications / f64::from(block_size(p.logs as u32))).ceil();
        let labs = blocks * (1.0 + model) + 2.0;

        // Position tables of a lab over `n` items: an exponential race per weight table of a
        // non-uniform Plackett–Luce policy, a fill for the others.
        let logging_tables = |n: f64, positions: f64| {
            let q = positions.min(n);
            match p.logging {
                "popularity" => race_ops(n, q, POPULARITY_LOG_SPREAD),
                "softmax" => categories * (race_ops(n, q, AFFINITY_SPREAD / p.logging_temperature) + n * EXP_OPS),
                "factored-softmax" => categories * n * (q + EXP_OPS),
                _ => n * q,
            }
        };
        let target_tables = |n: f64, positions: f64| {
            let q = positions.min(n);
            match p.target {
                "factored" => categories * n * (q + EXP_OPS),
                "epsilon-top-k" => categories * n * (q + 1.0),
                _ => categories * (race_ops(n, q, AFFINITY_SPREAD / p.target_temperature) + n * EXP_OPS),
            }
        };
        let lab = |n: f64, positions: f64| logging_tables(n, positions) + target_tables(n, positions);
        // The sweeps' points: K = 1..8 on this catalogue, and P of the sweep (≥ K) at this K.
        let spread_ks: Vec<f64> = (1..=items.min(f64::from(SPREAD_MAX_K)) as u32).map(f64::from).collect();
        let spread_items: Vec<f64> =
            if synthetic { SPREAD_ITEMS.iter().map(|&n| f64::from(n)).filter(|&n| n >= max_size).collect() } else { Vec::new() };
        let scatter_slates = ordered_slates(items, min_size);
        let scatter_runs = scatter_slates <= SCATTER_MAX_SLATES && !p.logging.starts_with("factored");

        let world = world_ops(items, categories, dim, users);
        let builds = labs * (world + lab(items, max_size))
            + 2.0 * world // the spreads' and the scatter's
            + model * blocks * categories * items * (NORMAL_OPS + EXP_OPS) // the reward model's noisy affinities
            + spread_ks.iter().map(|&k| lab(items, k)).sum::<f64>()
            + spread_items.iter().map(|&n| world_ops(n, categories, dim, f64::from(SPREAD_USERS)) + lab(n, max_size)).sum::<f64>()
            + if scatter_runs { 2.0 * logging_tables(items, max_size) } else { 0.0 };

        // R × N rows: a binary search per logging draw; then the estimators that ignore the cap,
        // capped IPS over the cap grid, the pairs kept, and the chosen estimators of the cap.
        let kept: f64 =
            estimators::ALL.iter().filter(|k| !k.uses_cap() && (model > 0.0 || !matches!(k, Kind::Dm | Kind::Dr))).map(passes).sum();
        let chosen: f64 = p.kinds().iter().filter(|k| k.uses_cap()).map(passes).sum();
        let row_passes = kept + cap_grid().len() as f64 + 1.0 + chosen;
        let row = mean_size * (POSITION_OPS + log2(items) + model * MODEL_POSITION_OPS) + ROW_OPS + row_passes * PASS_OPS;
        let replication_work = replications * rows * row;

        // E_π f̂ per user and slate size, in every block: by enumeration of π's slates when they
        // are few, else by MODEL_DRAWS draws.
        let target_slates = |k: f64| if p.target == "factored" { pow(items, k) } else { ordered_slates(items, k) };
        let enumeration_work = users * sizes.iter().map(|&k| target_slates(k) * k).sum::<f64>();
        let model_enumerated = enumeration_work <= MODEL_ENUMERATION_BUDGET;
        let model_positions =
            if model_enumerated { enumeration_work * ENUMERATED_SHARE } else { users * MODEL_DRAWS_PER_USER * sizes.iter().sum::<f64>() };
        let model_work = model * blocks * model_positions;

        // V(π) by enumeration within its budget, else by draws; each sweep point simulates,
        // estimates its truth and samples its HT spread, SPREAD_ROWS each.
        let truth_enumerated = enumeration_work <= TRUTH_BUDGET;
        let truth = if truth_enumerated { enumeration_work * ENUMERATED_SHARE } else { f64::from(TRUTH_DRAWS) * (mean_size + 1.0) };
        let spread_positions = spread_ks.iter().map(|k| k + 1.0).sum::<f64>() + spread_items.len() as f64 * (max_size + 1.0);
        let truth_work = truth + 3.0 * f64::from(SPREAD_ROWS) * spread_positions;

        // Every slate of the smallest size against every user, after N raw rows.
        let scatter_work = if scatter_runs { scatter_slates * users * min_size + rows * (mean_size + RAW_ROW_POSITIONS) } else { 0.0 };

        // Draws from a peaked softmax Plackett–Luce policy scan the catalogue: the target's for the
        // truth, the reward model and the sweeps (truth and HT spread), the logging policy's for
        // every row, the sweeps and the scatter.
        let mean_scan = sizes.iter().map(|&k| scan_ops(items, k)).sum::<f64>() / sizes.len() as f64;
        let sweep_scans =
            spread_ks.iter().map(|&k| scan_ops(items, k)).sum::<f64>() + spread_items.iter().map(|&n| scan_ops(n, max_size)).sum::<f64>();
        let target_scans = if p.target == "plackett-luce" {
            let truth_draws = if truth_enumerated { 0.0 } else { f64::from(TRUTH_DRAWS) * mean_scan };
            let model_draws = if model_enumerated {
                0.0
            } else {
                model * blocks * users * MODEL_DRAWS_PER_USER * sizes.iter().map(|&k| scan_ops(items, k)).sum::<f64>()
            };
            (truth_draws + model_draws + 2.0 * f64::from(SPREAD_ROWS) * sweep_scans) * peaked_share(p.target_temperature)
        } else {
            0.0
        };
        let logging_scans = if p.logging == "softmax" {
            let scatter_draws = if scatter_runs { rows * mean_scan } else { 0.0 };
            (replications * rows * mean_scan + f64::from(SPREAD_ROWS) * sweep_scans + scatter_draws) * peaked_share(p.logging_temperature)
        } else {
            0.0
        };
        let peaked_logging = logging_scans > target_scans;

        Estimate::new()
            .term(
                "simulating the replications and their estimates",
                active(&["replications", "logs", "slate_size"], &["replications", "logs"]),
                replication_work,
                NS_PER_REPLICATION_OP,
            )
            .term(
                "building the worlds and the policies' per-position propensities",
                active(&["items", "slate_size", "contexts", "replications"], &["replications"]),
                builds,
                NS_PER_BUILD_OP,
            )
            .term(
                "computing the reward model's value for every user",
                &["users", "replications", "estimators"],
                model_work,
                NS_PER_MODEL_POSITION,
            )
            .term(
                "computing the true value and the spread curves",
                match (synthetic, truth_enumerated) {
                    (true, true) => &["users", "items", "slate_size"],
                    (true, false) => &["slate_size"],
                    (false, _) => &["users"],
                },
                truth_work,
                NS_PER_TRUTH_POSITION,
            )
            .term("comparing per-slate estimates with their true values", &["users", "logs"], scatter_work, NS_PER_SCATTER_POSITION)
            .term(
                "drawing slates from a very peaked softmax policy",
                match (synthetic, peaked_logging) {
                    (true, true) => &["items", "slate_size", "replications", "logs"],
                    (true, false) => &["items", "slate_size"],
                    (false, true) => &["replications", "logs"],
                    (false, false) => &["users"],
                },
                target_scans + logging_scans,
                NS_PER_SCANNED_ITEM,
            )
    }

    /// Each term dominates at least one query: the defaults, many replications, long logs with
    /// K = 10, many users (the reward model), a large catalogue with K = 10 (the position tables),
    /// the toy truth by enumeration, the scatter, peaked target and logging policies, the toy world
    /// (exact reward model), ε-greedy top-K against popularity logging.
    const CALIBRATION: &'static [&'static str] = &[
        "",
        "replications=1000&estimators=ips,capped,snips,iips,pi",
        "logs=40000&replications=100&slate_size=10",
        "users=4000&replications=200",
        "items=2000&slate_size=10&contexts=5&replications=40&estimators=ips,capped",
        "world=toy&users=7000&replications=4&logs=200&estimators=ips,capped",
        "items=44&slate_size=2&users=20000&replications=4&logs=1000&estimators=ips,capped",
        "target_temperature=0.1&items=300&replications=20&estimators=ips,capped",
        "logging=softmax&logging_temperature=0.2&items=200&replications=50&estimators=ips,capped",
        "world=toy&replications=2000&logs=2000",
        "target=epsilon-top-k&logging=popularity&slate_size=8&items=200&replications=300",
    ];

    fn parts(params: &Checked<HorvitzThompsonParams>) -> u32 {
        params.replications as u32
    }

    fn run_part(params: &Checked<HorvitzThompsonParams>, part: Part, cache: &mut StageCache, progress: &mut dyn Progress) -> PartialReport {
        let p: &HorvitzThompsonParams = params;
        let range = replications_of(p, part);
        // Part 0 also computes the truth and the scatter, the last part the spreads: at the
        // defaults, natively, worth about 45 and 65 replications' time (0.14 s and 0.20 s). A
        // preview leaves the spreads out unless they are cached: they were about half the work
        // of the page's opening preview, and the full run computes them next.
        let (first, is_last) = (part.index == 0, part.index + 1 == part.count);
        let spreads_left_out = is_last && part.preview && !cache.contains(&HT_GRAPH.key("spreads", p));
        // Whether this part computes the spreads.
        let last = is_last && !spreads_left_out;
        let count = range.len().max(1) as f64;
        let extra_work = if first { EXTRAS_IN_REPLICATIONS } else { 0.0 } + if last { SPREADS_IN_REPLICATIONS } else { 0.0 };
        let done = count / (count + extra_work);
        let replications = estimates_stage(p, range.clone(), cache, &mut staged(progress, 0.0, done)).as_ref().clone();
        let split = done + (1.0 - done) * if first { EXTRAS_IN_REPLICATIONS / extra_work } else { 0.0 };
        let extras = first.then(|| extras_stage(p, cache, &mut staged(progress, done, split)).as_ref().clone());
        let spreads = last.then(|| spreads_of_the_mean(p, cache, &mut staged(progress, split, 1.0)));
        progress.report(1.0, "done");
        PartialReport { first_replication: range.start, replications, extras, spreads, spreads_left_out }
    }

    /// The first replications: a tenth of them, at most one block. At the defaults that is 25
    /// replications, on the worker beside the one computing the extras (the truth, the scatter):
    /// with two blocks (50) the first figure waited for them, ~220 ms after the extras.
    fn preview(params: &Checked<HorvitzThompsonParams>) -> Option<(HorvitzThompsonParams, String)> {
        let all = params.replications as u32;
        let first = (all / 10).min(block_size(params.logs as u32)).max(2);
        (first < all).then(|| {
            (HorvitzThompsonParams { replications: first as i64, ..(**params).clone() }, format!("the first {first} of {all} replications"))
        })
    }

    fn merge(params: &Checked<HorvitzThompsonParams>, mut partials: Vec<PartialReport>) -> HorvitzThompsonReport {
        let p: &HorvitzThompsonParams = params;
        partials.sort_by_key(|x| x.first_replication);
        let extras = partials.iter_mut().find_map(|x| x.extras.take()).expect("part 0 carries the extras");
        let spreads_pending = partials.iter().any(|x| x.spreads_left_out);
        let spreads = match partials.iter_mut().find_map(|x| x.spreads.take()) {
            Some(spreads) => spreads,
            None if spreads_pending => Spreads { spread_vs_k: Vec::new(), spread_vs_p: Vec::new() },
            None => panic!("the last part carries the spreads unless it is a preview's"),
        };
        let reps: Vec<Replication> = partials.into_iter().flat_map(|x| x.replications).collect();
        let truth = extras.truth.value;
        let kinds = p.kinds();
        let estimators = kinds
            .iter()
            .enumerate()
            .map(|(e, kind)| {
                let values: Vec<f64> = reps.iter().map(|r| r.estimates[e].value).collect();
                let (mean, variance) = mean_var(&values);
                let covered = reps.iter().filter(|r| (r.estimates[e].value - truth).abs() <= 1.96 * r.estimates[e].se).count();
                EstimatorSummary {
                    name: kind.name().into(),
                    label: kind.label().into(),
                    mean,
                    bias: mean - truth,
                    variance,
                    mse: sq(mean - truth) + variance,
                    mean_reported_se: reps.iter().map(|r| r.estimates[e].se).sum::<f64>() / reps.len() as f64,
                    coverage: covered as f64 / reps.len() as f64,
                    mean_ess: reps.iter().map(|r| r.estimates[e].ess).sum::<f64>() / reps.len() as f64,
                    values,
                }
            })
            .collect();
        let grid = n_grid(p.logs as u32);
        let mse_vs_n = (0..kinds.len())
            .map(|e| (0..grid.len()).map(|c| reps.iter().map(|r| sq(r.prefix[c][e] - truth)).sum::<f64>() / reps.len() as f64).collect())
            .collect();
        let caps = cap_grid();
        let (mut cap_bias2, mut cap_variance, mut cap_mse) = (Vec::new(), Vec::new(), Vec::new());
        for c in 0..caps.len() {
            let values: Vec<f64> = reps.iter().map(|r| r.capped[c]).collect();
            let (mean, var) = mean_var(&values);
            cap_bias2.push(sq(mean - truth));
            cap_variance.push(var);
            cap_mse.push(sq(mean - truth) + var);
        }
        HorvitzThompsonReport {
            truth: extras.truth,
            logging: extras.logging_label,
            target: extras.target_label,
            logs: p.logs as u32,
            replications: reps.len() as u32,
            estimators,
            n_grid: grid,
            mse_vs_n,
            cap_grid: caps,
            cap_bias2,
            cap_variance,
            cap_mse,
            spread_vs_k: spreads.spread_vs_k,
            spread_vs_p: spreads.spread_vs_p,
            spreads_pending,
            scatter: extras.scatter,
            scatter_slate_size: extras.scatter_slate_size,
            scatter_world: extras.scatter_world,
        }
    }
}

fn mean_var(values: &[f64]) -> (f64, f64) {
    let mut r = Running::default();
    values.iter().for_each(|v| r.push(*v));
    let s = r.summary();
    (s.mean, s.se * s.se * s.n as f64)
}

/// Row-level spread of HT / IIPS / PI for the current world at K = 1..8 (same P), and for
/// synthetic worlds of growing P (same K): the standard deviations of single-row terms, to be
/// divided by √N.
fn row_spreads(p: &HorvitzThompsonParams, world: &World) -> (Vec<SpreadPoint>, Vec<SpreadPoint>) {
    let point = |lab: &Lab, seed_offset: u32| -> SpreadPoint {
        let mut rows = Vec::new();
        let mut rng = rng::replication(p.seed ^ 0x5eed, seed_offset);
        lab.simulate(SPREAD_ROWS, &mut rng, &mut rows, None);
        let sd = |f: &dyn Fn(&Row) -> f64| {
            let mut r = Running::default();
            rows.iter().for_each(|row| r.push(f(row)));
            let s = r.summary();
            s.se * (s.n as f64).sqrt()
        };
        let value = lab.truth(0.0, SPREAD_ROWS, p.seed ^ seed_offset as u64).value;
        let mut logw: Vec<f64> = rows.iter().filter(|r| r.weight > 0.0).map(|r| log10(r.weight)).collect();
        logw.sort_by(f64::total_cmp);
        SpreadPoint {
            k: lab.world.slate_sizes.max,
            p: lab.world.items(),
            ht_sd: lab.ht_row_sd(value, SPREAD_ROWS, &mut rng),
            iips_sd: sd(&|r| r.item_position_term),
            pi_sd: sd(&|r| r.reward * r.pseudo_inverse_factor),
            median_log10_weight: (!logw.is_empty()).then(|| crate::core::stats::quantile(&logw, 0.5)),
            zero_weight_share: rows.iter().filter(|r| r.weight == 0.0).count() as f64 / rows.len() as f64,
        }
    };
    let max_k = world.items().min(SPREAD_MAX_K);
    let by_k = (1..=max_k)
        .map(|k| {
            let mut world = world.clone();
            world.slate_sizes.min = k;
            world.slate_sizes.max = k;
            point(&p.lab(world, false), k)
        })
        .collect();
    let by_p = if p.world == "synthetic" {
        let k = p.slate_size as u32;
        SPREAD_ITEMS
            .into_iter()
            .filter(|&items| items >= k)
            .map(|items| point(&p.lab(p.world_with(items, k, SPREAD_USERS), false), 100 + items))
            .collect()
    } else {
        Vec::new()
    };
    (by_k, by_p)
}

/// Per-slate IPS estimate of "show this slate to everybody" against its true value, for the
/// smallest slate size, when there are at most 2,000 such slates. The logged rows of replication
/// 0 do not depend on the target policy (it only weighs them): the lab here uses the logging
/// policy as its target.
/// The notebook's picture, on the lesson's world when its slates can be listed, else on the toy
/// world (the notebook's own setting) with the same users, click model, logging and seed.
fn scatter(p: &HorvitzThompsonParams, world: &World) -> (Vec<SlatePoint>, u32, &'static str) {
    let listable = |world: &World| {
        let size = world.slate_sizes.min;
        let count: f64 = (0..size).map(|j| (world.items() - j) as f64).product();
        count <= SCATTER_MAX_SLATES && !p.logging_policy(world).with_replacement()
    };
    if listable(world) {
        let (points, size) = scatter_on(p, world);
        return (points, size, p.world);
    }
    let toy = HorvitzThompsonParams { world: "toy", ..p.clone() }.build_world();
    if p.world != "toy" && listable(&toy) {
        let (points, size) = scatter_on(p, &toy);
        return (points, size, "toy");
    }
    (Vec::new(), world.slate_sizes.min, p.world)
}

fn scatter_on(p: &HorvitzThompsonParams, world: &World) -> (Vec<SlatePoint>, u32) {
    let size = world.slate_sizes.min;
    let logging = p.logging_policy(world);
    let lab = Lab::new(world.clone(), logging.clone(), logging, None, p.seed);
    let (mut rows, mut raw) = (Vec::new(), Vec::<RawRow>::new());
    lab.simulate(p.logs as u32, &mut rng::replication(p.seed, 0), &mut rows, Some(&mut raw));
    let mut sums: std::collections::HashMap<Vec<u32>, (f64, u32)> = std::collections::HashMap::new();
    let mut rows_of_size = 0u32;
    for r in raw.iter().filter(|r| r.slate.len() as u32 == size) {
        rows_of_size += 1;
        let e = sums.entry(r.slate.clone()).or_insert((0.0, 0));
        e.0 += r.row.reward / r.logging_propensity;
        e.1 += 1;
    }
    let mut points = Vec::new();
    // Categories share nothing here: any category's table lists every distinct slate.
    lab.logging.for_each_slate(0, size, world.items(), &mut |s, _| {
        let truth = world.users.iter().map(|u| world.expected_clicks(u, s)).sum::<f64>() / world.users.len() as f64;
        let (sum, n) = sums.get(s).copied().unwrap_or((0.0, 0));
        points.push(SlatePoint {
            slate: s.iter().map(|&a| world.item_names[a as usize].clone()).collect(),
            truth,
            ips: sum / rows_of_size.max(1) as f64,
            rows: n,
        });
    });
    (points, size)
}

/// Replication 0's logged rows as CSV: slates, clicks, slate and per-position propensities under
/// both policies, the reward model's terms; the truth and every estimator's value on these rows in
/// the trailing comment lines.
pub fn dataset_csv(query: &str) -> Result<String, String> {
    let (params, issues) = crate::core::params::from_query::<HorvitzThompsonParams>(query);
    if let Some(issue) = issues.first() {
        return Err(format!("{}: {}", issue.param, issue.message));
    }
    let lab = params.lab(params.build_world(), true);
    let (mut rows, mut raw) = (Vec::new(), Vec::new());
    lab.simulate(params.logs as u32, &mut rng::replication(params.seed, 0), &mut rows, Some(&mut raw));
    let k = lab.world.slate_sizes.max as usize;
    let mut header: Vec<String> = ["row", "user", "category", "slate_size"].map(String::from).to_vec();
    header.extend((1..=k).map(|i| format!("item_{i}")));
    header.extend((1..=k).map(|i| format!("click_{i}")));
    header.extend(["reward", "logging_slate_propensity", "target_slate_propensity"].map(String::from));
    header.extend((1..=k).map(|i| format!("logging_position_propensity_{i}")));
    header.extend((1..=k).map(|i| format!("target_position_propensity_{i}")));
    header.extend(["model_reward", "model_value"].map(String::from));
    let mut out = header.join(",") + "\n";
    for (i, r) in raw.iter().enumerate() {
        let pad = |v: Vec<String>| {
            let mut v = v;
            v.resize(k, String::new());
            v
        };
        let mut cells =
            vec![i.to_string(), r.user.to_string(), lab.world.users[r.user as usize].category.to_string(), r.slate.len().to_string()];
        cells.extend(pad(r.slate.iter().map(|a| a.to_string()).collect()));
        cells.extend(pad(r.clicks.iter().map(|c| c.to_string()).collect()));
        cells.extend([r.row.reward.to_string(), format!("{:e}", r.logging_propensity), format!("{:e}", r.target_propensity)]);
        cells.extend(pad(r.logging_position.iter().map(|p| format!("{p:e}")).collect()));
        cells.extend(pad(r.target_position.iter().map(|p| format!("{p:e}")).collect()));
        cells.extend([r.row.model_reward.to_string(), r.row.model_value.to_string()]);
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    let truth = lab.truth(TRUTH_BUDGET, TRUTH_DRAWS, params.seed);
    out.push_str(&format!("# truth,{},{},{}\n", truth.value, truth.se, truth.method));
    for kind in estimators::ALL {
        let e = estimate(kind, params.cap, &rows);
        out.push_str(&format!("# {},{},{}\n", kind.name(), e.value, e.se));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::experiment::{merge_query, run_part_query, run_part_query_cached, run_query};
    use crate::core::params::{check, parse_strict, to_query};
    use crate::core::stages::WORKER_BUDGET_BYTES;

    thread_local! {
        /// `BLOCK_ROWS`, smaller in a test that wants many blocks of few rows.
        pub static BLOCK_ROWS: std::cell::Cell<u32> = const { std::cell::Cell::new(super::BLOCK_ROWS) };
    }

    #[test]
    fn blocks_are_aligned_on_multiples_of_their_size() {
        assert_eq!(blocks(0..7, 3), vec![0..3, 3..6, 6..7]);
        assert_eq!(blocks(4..9, 3), vec![4..6, 6..9]);
        assert_eq!(blocks(5..5, 3), Vec::<std::ops::Range<u32>>::new());
        assert_eq!(block_size(10_000), 25);
        assert_eq!(block_size(1_000_000), 1);
    }

    #[test]
    fn the_graph_reads_every_parameter() {
        HT_GRAPH.validate::<HorvitzThompsonParams>().unwrap();
        // The cap and the estimators are read only by the estimates (the model sees the
        // estimators through `model_view`).
        assert_eq!(HT_GRAPH.inputs::<HorvitzThompsonParams>("replications").len(), 15);
        assert!(!HT_GRAPH.inputs::<HorvitzThompsonParams>("replications").contains(&"cap"));
        assert!(HT_GRAPH.inputs::<HorvitzThompsonParams>("extras").contains(&"target_temperature"));
        assert!(!HT_GRAPH.inputs::<HorvitzThompsonParams>("scatter").contains(&"target"));
    }

    /// Every knob, with blocks of a few replications (so that parts cut blocks, and a change of R
    /// reuses some): the cached reports are the fresh ones.
    #[test]
    fn a_walk_through_parameter_changes_gives_what_a_fresh_run_gives() {
        BLOCK_ROWS.with(|b| b.set(600));
        let choices: &[(&str, &[&str])] = &[
            ("cap", &["2", "10", "1000"]),
            ("slate_size", &["1", "2", "3"]),
            ("target_temperature", &["0.5", "2"]),
            ("logs", &["100", "200"]),
            ("replications", &["4", "6", "9"]),
            ("seed", &["1", "2"]),
            ("estimators", &["ips,capped,ncis", "ips,snips,capped,filtered,ncis,iips,pi,dm,dr", "dr,filtered"]),
            ("model_noise", &["0", "0.5", "1.5"]),
            ("target", &["plackett-luce", "factored", "epsilon-top-k"]),
            ("epsilon", &["0.1", "0.4"]),
            ("logging", &["uniform", "popularity", "softmax", "factored-uniform"]),
            ("logging_temperature", &["0.5", "2"]),
            ("world", &["synthetic", "toy"]),
            ("click_model", &["prr", "pbm"]),
            ("items", &["6", "8"]),
            ("contexts", &["2", "3"]),
            ("users", &["30", "50"]),
        ];
        let base = "items=6&slate_size=2&users=30&contexts=2&logs=200&replications=6";
        let stats = crate::core::stages::tests::walk::<HorvitzThompsonLesson>(base, choices, 100, 7);
        assert!(stats.hits > 100, "{stats:?}");
        println!("{stats:?}");
    }

    /// Runs `queries` one after the other, each part with its worker's cache, and checks each
    /// report against a fresh run; returns the caches' misses after each query.
    fn run_in_turn(queries: &[&str]) -> Vec<u64> {
        let mut caches: Vec<StageCache> = (0..2).map(|_| StageCache::new(WORKER_BUDGET_BYTES)).collect();
        queries
            .iter()
            .map(|query| {
                let partials: Vec<String> = (0..2)
                    .map(|index| {
                        run_part_query_cached::<HorvitzThompsonLesson>(query, Part::new(index, 2), &mut caches[index as usize], &mut ())
                            .unwrap()
                    })
                    .collect();
                let cached = merge_query::<HorvitzThompsonLesson>(query, &partials).unwrap();
                assert!(cached == run_query::<HorvitzThompsonLesson>(query, &mut ()).unwrap(), "{query}");
                caches.iter().map(|c| c.stats.misses).sum()
            })
            .collect()
    }

    #[test]
    fn dropping_the_reward_model_reuses_the_blocks_simulated_with_it() {
        BLOCK_ROWS.with(|b| b.set(600));
        let with_model = "items=6&slate_size=2&users=30&logs=200&replications=9&model_noise=0.7&seed=4";
        let misses = run_in_turn(&[with_model, &format!("{with_model}&estimators=ips,capped,ncis,pi")]);
        // The second query computes both parts' estimates, nothing else.
        assert_eq!(misses[1] - misses[0], 2, "{misses:?}");
    }

    /// The times of a run at the defaults with an empty cache per worker, then of runs that change
    /// one knob (each twice: the second finds everything kept), the workers' parts one after the
    /// other (the page runs them side by side: its time is about the slower part's).
    #[test]
    #[ignore]
    fn time_knob_changes_at_the_defaults() {
        let p = HorvitzThompsonParams::default();
        let parts = 2;
        let mut caches: Vec<StageCache> = (0..parts).map(|_| StageCache::new(WORKER_BUDGET_BYTES)).collect();
        let mut run = |label: &str, query: &str| {
            let mut ms = Vec::new();
            for (index, cache) in caches.iter_mut().enumerate() {
                let start = std::time::Instant::now();
                run_part_query_cached::<HorvitzThompsonLesson>(query, Part::new(index as u32, parts), cache, &mut ()).unwrap();
                ms.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            let kept: Vec<String> =
                caches.iter().map(|c| format!("{:.1} MB in {} entries", c.used_bytes() as f64 / 1e6, c.len())).collect();
            println!("{label:<28} parts {:>8.1} ms {:>8.1} ms   kept: {}", ms[0], ms[1], kept.join(", "));
        };
        let defaults = to_query(&p);
        run("cold (defaults)", &defaults);
        run("defaults again", &defaults);
        for change in ["cap=100", "slate_size=4", "target_temperature=0.5", "logs=5000", "replications=600", "estimators=ips,capped,snips"]
        {
            let query = to_query(&*crate::core::params::from_query::<HorvitzThompsonParams>(change).0);
            run(change, &query);
            run(&format!("{change} (again)"), &query);
        }
    }

    #[test]
    fn the_estimate_grows_with_the_sizes_and_the_calibration_queries_parse() {
        let seconds = |q: &str| HorvitzThompsonLesson::estimate(&parse_strict::<HorvitzThompsonParams>(q).unwrap()).native_seconds();
        let defaults = seconds("");
        for bigger in
            ["replications=2000", "logs=40000", "items=500", "slate_size=8", "users=4000", "contexts=20", "target_temperature=0.1"]
        {
            assert!(seconds(bigger) > defaults, "{bigger}");
        }
        assert!(seconds("estimators=ips,capped") < defaults, "the reward model costs");
        assert!(seconds("world=toy&users=4000") > seconds("world=toy"));
        for q in HorvitzThompsonLesson::CALIBRATION {
            assert!(parse_strict::<HorvitzThompsonParams>(q).is_ok(), "{q}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(check(HorvitzThompsonParams::default()).is_ok());
        assert_eq!(n_grid(10_000), vec![19, 39, 78, 156, 312, 625, 1250, 2500, 5000, 10_000][1..].to_vec());
    }

    #[test]
    fn parts_share_the_replications_in_whole_blocks_and_even_work() {
        for (replications, logs) in [(500, 10_000), (50, 10_000), (9, 300), (1000, 2000), (3, 100_000)] {
            let p = HorvitzThompsonParams { replications, logs, ..Default::default() };
            let size = block_size(logs as u32);
            for count in 1..6u32 {
                for preview in [false, true] {
                    let mut next = 0;
                    for index in 0..count {
                        let range = replications_of(&p, Part { preview, ..Part::new(index, count) });
                        assert_eq!(range.start, next, "R {replications}, {count} parts");
                        assert!(range.start <= range.end);
                        assert!(range.start.is_multiple_of(size) || range.start == replications as u32);
                        next = range.end;
                    }
                    assert_eq!(next, replications as u32, "R {replications}, {count} parts");
                }
            }
        }
        // The default's opening preview (one block of 25): part 0 computes the extras only.
        let p = HorvitzThompsonParams { replications: 25, ..Default::default() };
        assert_eq!(replications_of(&p, Part { preview: true, ..Part::new(0, 2) }), 0..0);
        assert_eq!(replications_of(&p, Part { preview: true, ..Part::new(1, 2) }), 0..25);
        // The default's full run on two cores: 250 and 250, as equal shares gave.
        let p = HorvitzThompsonParams::default();
        assert_eq!(replications_of(&p, Part::new(0, 2)), 0..250);
    }

    #[test]
    fn parts_give_the_same_report_as_one_run() {
        let q = "world=toy&logs=300&replications=9&seed=3";
        let whole = run_query::<HorvitzThompsonLesson>(q, &mut ()).unwrap();
        let parts: Vec<String> =
            (0..3).map(|i| run_part_query::<HorvitzThompsonLesson>(q, Part::new(i, 3), &mut ()).unwrap()).rev().collect();
        assert_eq!(merge_query::<HorvitzThompsonLesson>(q, &parts).unwrap(), whole);
        let report: HorvitzThompsonReport = serde_json::from_str(&whole).unwrap();
        assert_eq!(report.estimators.len(), 9);
        assert_eq!(report.estimators[0].values.len(), 9);
        assert!(!report.scatter.is_empty(), "the toy world has 42 slates of size 2");
        assert_eq!(report.truth.method, "enumeration");
    }

    #[test]
    fn a_preview_leaves_the_spreads_out_unless_they_are_cached() {
        let q = "world=toy&logs=300&replications=4&seed=3";
        let parts: Vec<Part> = (0..2).map(|i| Part { preview: true, ..Part::new(i, 2) }).collect();
        let preview = |cache: &mut StageCache| crate::core::stages::tests::report_of_parts::<HorvitzThompsonLesson>(q, &parts, cache);
        let mut cache = StageCache::new(crate::core::stages::WORKER_BUDGET_BYTES);
        let first = preview(&mut cache);
        let full: HorvitzThompsonReport = serde_json::from_str(&run_query::<HorvitzThompsonLesson>(q, &mut ()).unwrap()).unwrap();
        assert!(!full.spreads_pending && !full.spread_vs_k.is_empty());
        // Everything else is the full run's.
        assert_eq!(first, HorvitzThompsonReport { spread_vs_k: vec![], spread_vs_p: vec![], spreads_pending: true, ..full.clone() });
        // Once the full run's last part has computed them in this worker, a preview shows them.
        run_part_query_cached::<HorvitzThompsonLesson>(q, Part::new(1, 2), &mut cache, &mut ()).unwrap();
        assert_eq!(preview(&mut cache), full);
    }

    #[test]
    fn ht_spread_grows_with_k() {
        let mut p = HorvitzThompsonParams { logs: 1000, replications: 2, ..Default::default() };
        p.estimators = vec!["ips"];
        let q = to_query(&p);
        let r: HorvitzThompsonReport = serde_json::from_str(&run_query::<HorvitzThompsonLesson>(&q, &mut ()).unwrap()).unwrap();
        let first = &r.spread_vs_k[0];
        let last = r.spread_vs_k.last().unwrap();
        assert!(last.median_log10_weight.unwrap().abs() > first.median_log10_weight.unwrap().abs());
        assert!(last.ht_sd > first.ht_sd, "{first:?} vs {last:?}");
        assert!(!r.spread_vs_p.is_empty());
    }

    #[test]
    fn the_notebook_picture_falls_back_to_the_toy_world_when_slates_cannot_be_listed() {
        let report =
            |q: &str| -> HorvitzThompsonReport { serde_json::from_str(&run_query::<HorvitzThompsonLesson>(q, &mut ()).unwrap()).unwrap() };
        // The default synthetic world has 20·19·18·17·16 slates of five: the toy world's are drawn.
        let r = report("replications=2&logs=400&estimators=ips");
        assert_eq!(r.scatter_world, "toy");
        assert_eq!(r.scatter.len(), 42, "the 7·6 ordered slates of two");
        // Listable slates (P = 6, K = 2): the lesson's own world.
        let r = report("items=6&slate_size=2&replications=2&logs=400&estimators=ips");
        assert_eq!(r.scatter_world, "synthetic");
        assert_eq!(r.scatter.len(), 30);
    }

    #[test]
    fn capping_trades_bias_for_variance() {
        let q = "logs=2000&replications=40&estimators=ips,capped&target_temperature=0.5";
        let r: HorvitzThompsonReport = serde_json::from_str(&run_query::<HorvitzThompsonLesson>(q, &mut ()).unwrap()).unwrap();
        // Tight caps: large bias, small variance; loose caps: the reverse.
        let (first, last) = (0, r.cap_grid.len() - 1);
        assert!(r.cap_bias2[first] > r.cap_bias2[last]);
        assert!(r.cap_variance[first] < r.cap_variance[last]);
    }
}
