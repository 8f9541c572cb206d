//! The lesson "REINFORCE at catalogue scale": the same softmax policy trained with the exact
//! gradient and with two sampled estimators (uniform and MIPS-mixture proposals), side by side;
//! what ε does to the mixture; iterations per second as the catalogue grows; and the variance of
//! REINFORCE for Plackett–Luce slates with and without a baseline.
//!
//! Its parts run in slices ([`Stepper`]) so that the page shows the curves while they grow and
//! can pause. Part 0 trains the methods, interleaved by time; part 1 runs the ε study, the slate
//! study and the speed sweep. Slicing changes only the timings, never a hit rate.
//!
//! The work is split into the stages of [`REINFORCE_GRAPH`]; a worker keeps finished stages
//! (worlds and indexes, each method's finished run, each point of the studies, each timing) in
//! its cache, and a job starts by taking what the cache has: a change of ε retrains the mixture
//! and retimes it, and reuses everything else.

#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::plackett_luce::{variance_study, SlateProblem, VariancePoint};
use super::{
    hit_at_1_exact, hit_at_1_index, CatalogueIndex, CatalogueWorld, Method, Sampling, Trainer, WorldConfig, EVAL_EF, POPULARITY_SPREAD,
};
use crate::core::budget::Estimate;
use crate::core::claims::Claim;
use crate::core::embeddings::WorldSpec;
use crate::core::experiment::{Experiment, Part, Stepper};
use crate::core::math::exp;
use crate::core::params::{Checked, Issue, Kind, LessonParams, Preset, Spec};
use crate::core::progress::{staged, Progress};
use crate::core::stages::{bytes_of, Footprint, Graph, Key, Stage, StageCache};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
pub struct ReinforceParams {
    pub items: i64,
    pub dim: i64,
    pub users: i64,
    pub topics: i64,
    pub interactions: i64,
    pub methods: Vec<&'static str>,
    pub samples: i64,
    pub epsilon: f64,
    pub top_t: i64,
    pub batch: i64,
    pub learning_rate: f64,
    pub theta_init: f64,
    pub iterations: i64,
    pub eval_users: i64,
    pub speed_sweep: &'static str,
    pub slate_items: i64,
    pub slate_size: i64,
    pub slate_repeats: i64,
    pub seed: u64,
}

impl Default for ReinforceParams {
    fn default() -> Self {
        ReinforceParams {
            items: 20_000,
            dim: 32,
            users: 5000,
            topics: 32,
            interactions: 40,
            methods: vec!["exact", "uniform", "mixture"],
            samples: 256,
            epsilon: 0.2,
            top_t: 64,
            batch: 32,
            learning_rate: 0.1,
            theta_init: 20.0,
            iterations: 200,
            eval_users: 1000,
            speed_sweep: "1e5",
            slate_items: 50,
            slate_size: 5,
            slate_repeats: 400,
            seed: 1,
        }
    }
}

const METHODS: &[(&str, &str)] = &[
    ("exact", "expected gradient, exact (O(P))"),
    ("reinforce", "REINFORCE, sampled (O(P))"),
    ("uniform", "SNIS, uniform proposal"),
    ("mixture", "SNIS, MIPS mixture proposal"),
];
const SWEEPS: &[(&str, &str)] = &[("off", "off"), ("1e4", "P up to 10,000"), ("1e5", "P up to 100,000"), ("3e5", "P up to 300,000")];

const SPECS: &[Spec] = &[
    Spec { name: "items", label: "Items P", help: "catalogue size", kind: Kind::Int { min: 1000, max: 300_000, log: true } },
    Spec { name: "dim", label: "Dimension d", help: "embedding size (θ is d × d)", kind: Kind::Int { min: 2, max: 64, log: false } },
    Spec {
        name: "users",
        label: "Users",
        help: "every fifth is kept for validation",
        kind: Kind::Int { min: 200, max: 50_000, log: true },
    },
    Spec { name: "topics", label: "Topics", help: "item clusters; users like two each", kind: Kind::Int { min: 1, max: 500, log: true } },
    Spec {
        name: "interactions",
        label: "Items per user",
        help: "mean; half observed (the context), half held out (the reward)",
        kind: Kind::Int { min: 6, max: 500, log: true },
    },
    Spec { name: "methods", label: "Methods", help: "gradient estimators to train with", kind: Kind::Set(METHODS) },
    Spec {
        name: "samples",
        label: "Samples S",
        help: "items drawn per context by the SNIS estimators",
        kind: Kind::Int { min: 2, max: 10_000, log: true },
    },
    Spec {
        name: "epsilon",
        label: "ε",
        help: "uniform share of the mixture proposal",
        kind: Kind::Float { min: 0.0, max: 1.0, log: false },
    },
    Spec {
        name: "top_t",
        label: "Top T",
        help: "size of the MIPS set the mixture's κ lives on",
        kind: Kind::Int { min: 1, max: 2048, log: true },
    },
    Spec { name: "batch", label: "Batch", help: "contexts per gradient step", kind: Kind::Int { min: 1, max: 1024, log: true } },
    Spec { name: "learning_rate", label: "Learning rate", help: "Adam step size", kind: Kind::Float { min: 1e-5, max: 1.0, log: true } },
    Spec {
        name: "theta_init",
        label: "Initial θ scale",
        help: "θ starts at this multiple of the identity (0: the uniform policy, as FOPO starts)",
        kind: Kind::Float { min: 0.0, max: 50.0, log: false },
    },
    Spec {
        name: "iterations",
        label: "Iterations",
        help: "gradient steps per method",
        kind: Kind::Int { min: 1, max: 100_000, log: true },
    },
    Spec {
        name: "eval_users",
        label: "Validation users",
        help: "users hit@1 is measured on",
        kind: Kind::Int { min: 20, max: 10_000, log: true },
    },
    Spec {
        name: "speed_sweep",
        label: "Speed sweep",
        help: "time every method on catalogues from 1,000 items up",
        kind: Kind::Choice(SWEEPS),
    },
    Spec {
        name: "slate_items",
        label: "Slate catalogue",
        help: "items of the Plackett–Luce study",
        kind: Kind::Int { min: 2, max: 1000, log: true },
    },
    Spec { name: "slate_size", label: "Slate size K", help: "positions per slate", kind: Kind::Int { min: 1, max: 20, log: false } },
    Spec {
        name: "slate_repeats",
        label: "Repeats",
        help: "gradient estimates per point of the variance study",
        kind: Kind::Int { min: 10, max: 10_000, log: true },
    },
    Spec { name: "seed", label: "Seed", help: "", kind: Kind::Seed },
];

/// Multiply-adds the exact gradient may cost in one run (iterations × batch × P × d): about a
/// minute in a tab.
const MAX_EXACT_WORK: f64 = 6e10;
/// Work of the sampled estimators in one run, in multiply-adds: per context S·d for the draws,
/// 30·T·d for the index search (a beam of width T visits about 30·T points), d² for the query;
/// contexts = iterations × batch × (sampled methods + the ε study's runs). About a minute in a tab.
const MAX_SAMPLED_WORK: f64 = 3e10;
/// Exact hit@1 evaluations: validation users × P × d for the initial policy and each method's final one.
const MAX_EVALUATION_WORK: f64 = 2e10;
/// The speed sweep's exact timing (at least 4 steps of batch × P × d at its largest P).
const MAX_SWEEP_WORK: f64 = 2e10;
/// users × items per user: the world's interactions.
const MAX_INTERACTIONS: f64 = 5e6;
/// Plackett–Luce work: repeats × Σ slates × P × K.
const MAX_SLATE_WORK: f64 = 2e9;
/// The tutorial's FOPO run, scaled to this catalogue: θ from 0 (the uniform policy), S = 1,000,
/// ε = 0.8, T = 256, batch 32, lr 10⁻⁴, and one pass over the training users (4,000 users ÷ 32 =
/// 125 steps), with sampled REINFORCE beside the expected gradient.
const PRESETS: &[Preset] = &[Preset {
    name: "tutorial",
    label: "Tutorial (FOPO)",
    about: "the tutorial's settings: θ₀ = 0, S = 1,000, ε = 0.8, T = 256, batch 32, lr 0.0001, one pass over the training users",
    query: "methods=exact,reinforce,uniform,mixture&theta_init=0&samples=1000&epsilon=0.8&top_t=256&batch=32&learning_rate=0.0001\
            &iterations=125",
}];

/// Slates per estimate in the variance study.
pub const SLATE_SAMPLES: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];
/// ε values of the ε study (1 is the uniform proposal).
pub const EPSILONS: [f64; 7] = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0];
/// The catalogue sizes of the speed sweep, up to its limit.
pub const SWEEP_ITEMS: [u32; 6] = [1000, 3000, 10_000, 30_000, 100_000, 300_000];
/// The tutorial's numbers (validation hit@1 via the index / exact argmax, iterations per second).
pub const PUBLISHED: [(&str, f64, f64, f64); 3] = [
    ("REINFORCE (sampled)", 0.1922, 0.2264, 3.53),
    ("SNIS, uniform proposal", 0.2174, 0.2266, 52.8),
    ("SNIS, MIPS mixture (ε = 0.8, T = 256)", 0.2246, 0.2252, 33.5),
];

impl LessonParams for ReinforceParams {
    fn specs() -> &'static [Spec] {
        SPECS
    }

    crate::fields!(
        items,
        dim,
        users,
        topics,
        interactions,
        methods,
        samples,
        epsilon,
        top_t,
        batch,
        learning_rate,
        theta_init,
        iterations,
        eval_users,
        speed_sweep,
        slate_items,
        slate_size,
        slate_repeats,
        seed
    );

    fn presets() -> &'static [Preset] {
        PRESETS
    }

    fn cross_check(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        if self.interactions * 2 > self.items {
            issues.push(Issue {
                param: "interactions",
                message: format!("{} items per user is more than half the catalogue (P = {})", self.interactions, self.items),
            });
        }
        if self.topics > self.items {
            issues.push(Issue {
                param: "topics",
                message: format!("{} topics need at least as many items (P = {})", self.topics, self.items),
            });
        }
        if self.top_t > self.items {
            issues.push(Issue { param: "top_t", message: format!("T = {} is more than the catalogue (P = {})", self.top_t, self.items) });
        }
        if self.eval_users * 5 > self.users {
            issues.push(Issue {
                param: "eval_users",
                message: format!("only {} of the {} users are kept for validation (every fifth)", self.users / 5, self.users),
            });
        }
        if self.slate_size > self.slate_items {
            issues.push(Issue {
                param: "slate_size",
                message: format!("K = {} is more than the slate catalogue ({})", self.slate_size, self.slate_items),
            });
        }
        let interactions = self.users as f64 * self.interactions as f64;
        if interactions > MAX_INTERACTIONS {
            issues.push(Issue {
                param: "users",
                message: format!("users × items per user = {interactions:.0} is more than a tab builds quickly ({MAX_INTERACTIONS:.0e})"),
            });
        }
        let full_passes = self.methods.iter().filter(|m| matches!(**m, "exact" | "reinforce")).count() as f64;
        let exact_work = full_passes * self.iterations as f64 * self.batch as f64 * self.items as f64 * self.dim as f64;
        if exact_work > MAX_EXACT_WORK {
            issues.push(Issue {
                param: "iterations",
                message: format!(
                    "the exact gradient and sampled REINFORCE would cost {exact_work:.1e} multiply-adds (iterations × batch × P × d \
                     each), more than a tab does in a minute ({MAX_EXACT_WORK:.0e}); lower the iterations, the batch or P, or leave \
                     them out"
                ),
            });
        }
        // The ε study trains the mixture once per ε.
        let sampled_runs = self.methods.iter().filter(|m| **m != "exact").count() + EPSILONS.len();
        let d = self.dim as f64;
        let per_context = self.samples as f64 * d + 30.0 * self.top_t as f64 * d + d * d;
        let sampled = self.iterations as f64 * self.batch as f64 * sampled_runs as f64 * per_context;
        if sampled > MAX_SAMPLED_WORK {
            issues.push(Issue {
                param: "samples",
                message: format!(
                    "the sampled estimators would cost {sampled:.1e} multiply-adds (iterations × batch × (S·d + 30·T·d + d²), for \
                     each sampled method and the {} runs of the ε study), more than a tab does in a minute ({MAX_SAMPLED_WORK:.0e}); \
                     lower S, T, the batch or the iterations",
                    EPSILONS.len()
                ),
            });
        }
        let evaluation = self.eval_users as f64 * self.items as f64 * d * (self.methods.len() + 1) as f64;
        if evaluation > MAX_EVALUATION_WORK {
            issues.push(Issue {
                param: "eval_users",
                message: format!(
                    "exact hit@1 on {} users would cost {evaluation:.1e} multiply-adds (users × P × d per policy), more than \
                     {MAX_EVALUATION_WORK:.0e}; use fewer validation users or a smaller P",
                    self.eval_users
                ),
            });
        }
        if let Some(&largest) = self.sweep_items().last() {
            let sweep = 4.0 * self.batch as f64 * largest as f64 * d;
            if sweep > MAX_SWEEP_WORK {
                issues.push(Issue {
                    param: "speed_sweep",
                    message: format!(
                        "timing the exact gradient at P = {largest} with batch {} and d = {} would cost {sweep:.1e} \
                         multiply-adds (more than {MAX_SWEEP_WORK:.0e}); a smaller sweep, batch or d",
                        self.batch, self.dim
                    ),
                });
            }
        }
        let slate_work =
            self.slate_repeats as f64 * SLATE_SAMPLES.iter().sum::<u32>() as f64 * 2.0 * self.slate_items as f64 * self.slate_size as f64;
        if slate_work > MAX_SLATE_WORK {
            issues.push(Issue {
                param: "slate_repeats",
                message: format!("the slate study would cost {slate_work:.1e} operations (more than {MAX_SLATE_WORK:.0e}); lower the repeats, the catalogue or K"),
            });
        }
        issues
    }
}

impl ReinforceParams {
    pub fn world_config(&self, items: u32) -> WorldConfig {
        WorldConfig {
            users: self.users as u32,
            items,
            topics: (self.topics as u32).min(items),
            interactions: (self.interactions as u32).min(items / 2),
            dim: self.dim as u32,
            seed: self.seed,
        }
    }

    pub fn sampling(&self) -> Sampling {
        Sampling { samples: self.samples as u32, epsilon: self.epsilon, top_t: self.top_t as u32 }
    }

    pub fn methods(&self) -> Vec<Method> {
        self.methods.iter().filter_map(|m| Method::from_id(m)).collect()
    }

    /// Iterations between two points of a learning curve (about 20 points).
    pub fn eval_every(&self) -> u32 {
        ((self.iterations as u32).div_ceil(20)).max(1)
    }

    pub fn sweep_items(&self) -> Vec<u32> {
        let limit = match self.speed_sweep {
            "1e4" => 10_000,
            "1e5" => 100_000,
            "3e5" => 300_000,
            _ => 0,
        };
        SWEEP_ITEMS.into_iter().filter(|&p| p <= limit).collect()
    }
}

/// The world as built for training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldSummary {
    pub items: u32,
    /// Items with an embedding (at least one observed interaction): the index holds these.
    pub warm_items: u32,
    pub train_users: u32,
    pub eval_users: u32,
    pub dim: u32,
    pub world_ms: f64,
    pub index_ms: f64,
    /// θ starts at this multiple of the identity.
    pub initial_scale: f64,
    pub initial_hit_index: f64,
    /// None in a part's first results: the curves (which start at the hit by index) are posted
    /// before this exact pass over the catalogue (stage `start-exact`).
    pub initial_hit_exact: Option<f64>,
}

/// One point of a learning curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub iteration: u32,
    /// Training time so far (gradient steps only, not the evaluations).
    pub training_ms: f64,
    pub hit_index: f64,
    /// Mean effective sample size of the weights since the previous point (P for exact; 0 at
    /// iteration 0).
    pub effective_samples: f64,
}

/// One method's training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodRun {
    pub method: Method,
    pub curve: Vec<CurvePoint>,
    pub iterations: u32,
    pub training_ms: f64,
    /// Once finished: hit@1 by the exact argmax (by the index: the curve's last point).
    pub final_hit_exact: Option<f64>,
}

/// Iterations per second from a count and milliseconds (0 before anything was timed).
fn per_second(iterations: u32, ms: f64) -> f64 {
    if ms > 0.0 {
        iterations as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

impl MethodRun {
    pub fn iterations_per_second(&self) -> f64 {
        per_second(self.iterations, self.training_ms)
    }

    /// hit@1 through the index at the latest curve point.
    pub fn latest_hit_index(&self) -> Option<f64> {
        self.curve.last().map(|p| p.hit_index)
    }

    /// Mean effective sample size over the curve's points after the start (None before any).
    pub fn mean_effective_samples(&self) -> Option<f64> {
        let points = &self.curve[1.min(self.curve.len())..];
        (!points.is_empty()).then(|| points.iter().map(|p| p.effective_samples).sum::<f64>() / points.len() as f64)
    }
}

impl ReinforceReport {
    /// A method's training iterations per second over those of the exact gradient, when both ran.
    pub fn training_speed_up(&self, method: Method) -> Option<f64> {
        self.training_speed_ratio(method, Method::Exact)
    }

    /// A method's training iterations per second over those of `reference`, when both ran.
    pub fn training_speed_ratio(&self, method: Method, reference: Method) -> Option<f64> {
        let rate = |m| self.training.iter().find(|t| t.method == m && t.iterations > 0).map(MethodRun::iterations_per_second);
        let base = rate(reference).filter(|e| *e > 0.0)?;
        Some(rate(method)? / base)
    }

    pub fn run(&self, method: Method) -> Option<&MethodRun> {
        self.training.iter().find(|t| t.method == method)
    }
}

/// The mixture trained with one ε.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpsilonPoint {
    pub epsilon: f64,
    pub hit_index: f64,
    pub effective_samples: f64,
}

/// One method timed on one catalogue size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodSpeed {
    pub method: Method,
    pub iterations: u32,
    pub ms: f64,
}

impl MethodSpeed {
    pub fn per_second(&self) -> f64 {
        per_second(self.iterations, self.ms)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeedPoint {
    pub items: u32,
    pub warm_items: u32,
    pub build_ms: f64,
    pub methods: Vec<MethodSpeed>,
}

impl SpeedPoint {
    pub fn per_second(&self, method: Method) -> Option<f64> {
        self.methods.iter().find(|m| m.method == method).map(|m| m.per_second())
    }

    /// Iterations per second of `method` over those of the exact gradient.
    pub fn speed_up(&self, method: Method) -> Option<f64> {
        let exact = self.per_second(Method::Exact)?;
        (exact > 0.0).then(|| self.per_second(method).unwrap_or(0.0) / exact)
    }
}

/// The report, and also each part's partial result (merging concatenates).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReinforceReport {
    pub world: Option<WorldSummary>,
    pub training: Vec<MethodRun>,
    pub epsilon: Vec<EpsilonPoint>,
    pub speed: Vec<SpeedPoint>,
    pub slates: Vec<VariancePoint>,
    pub errors: Vec<String>,
}

pub struct ReinforceLesson;

/// What a part does, in order.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Job {
    Training,
    Epsilon,
    Slates,
    Speed,
}

/// The jobs in two groups: the training, and everything else.
fn groups(params: &ReinforceParams) -> [Vec<Job>; 2] {
    let mut rest = vec![Job::Epsilon, Job::Slates];
    if !params.sweep_items().is_empty() {
        rest.push(Job::Speed);
    }
    [vec![Job::Training], rest]
}

/// The lesson's stages. A catalogue world and its index exist once per catalogue size (the
/// lesson's P and each size of the speed sweep; the size is part of their keys). Each method's
/// settings are a stage without a result of its own, so that a training or a timing depends on
/// its own method's settings only: a change of ε or T retrains and retimes the mixture (and T
/// reruns the ε study); the exact and uniform runs, the worlds, the indexes, the ε study and the
/// slates are reused.
pub const REINFORCE_GRAPH: Graph = Graph {
    lesson: "reinforce",
    stages: &[
        // Users, items and held-out rewards, and the items' SVD embeddings, at one catalogue size
        // (all validation users: how many are evaluated is read by `start`).
        Stage { name: "world", reads: &["dim", "users", "topics", "interactions", "seed"], uses: &[] },
        // The HNSW index over one world's warm items (fixed settings; its seed is the world's).
        Stage { name: "index", reads: &[], uses: &["world"] },
        // The lesson's world at P = items evaluated on eval_users validation users: the world's
        // summary and the initial policy's hit@1 by the index (where every learning curve starts).
        Stage { name: "start", reads: &["items", "eval_users", "theta_init"], uses: &["world", "index"] },
        // The initial policy's hit@1 by exact search: computed after the first curves are posted.
        Stage { name: "start-exact", reads: &["items", "eval_users", "theta_init"], uses: &["world"] },
        // What each method's trainer reads (stages without a result of their own).
        Stage { name: "exact", reads: &["batch", "learning_rate", "theta_init"], uses: &[] },
        Stage { name: "reinforce", reads: &["batch", "learning_rate", "theta_init", "samples"], uses: &[] },
        Stage { name: "uniform", reads: &["batch", "learning_rate", "theta_init", "samples"], uses: &[] },
        Stage { name: "mixture", reads: &["batch", "learning_rate", "theta_init", "samples", "epsilon", "top_t"], uses: &[] },
        // One method trained on the lesson's world: its learning curve and final hit@1, kept
        // once finished.
        Stage { name: "train-exact", reads: &["iterations"], uses: &["start", "exact"] },
        Stage { name: "train-reinforce", reads: &["iterations"], uses: &["start", "reinforce"] },
        Stage { name: "train-uniform", reads: &["iterations"], uses: &["start", "uniform"] },
        Stage { name: "train-mixture", reads: &["iterations"], uses: &["start", "mixture"] },
        // Which of the runs the report shows (no result of its own).
        Stage { name: "training", reads: &["methods"], uses: &["train-exact", "train-reinforce", "train-uniform", "train-mixture"] },
        // The mixture trained with one ε of the study (that ε is part of the key; the lesson's ε
        // is not read).
        Stage { name: "epsilon-study", reads: &["samples", "top_t", "batch", "learning_rate", "iterations"], uses: &["start"] },
        // One point of the Plackett–Luce variance study (its slate count is part of the key).
        Stage { name: "slates", reads: &["slate_items", "slate_size", "slate_repeats", "seed"], uses: &[] },
        // The speed sweep's catalogue sizes (no result of its own).
        Stage { name: "speed", reads: &["speed_sweep"], uses: &[] },
        // One method timed on one catalogue size of the sweep (the size is part of the key).
        Stage { name: "time-exact", reads: &[], uses: &["index", "exact"] },
        Stage { name: "time-reinforce", reads: &[], uses: &["index", "reinforce"] },
        Stage { name: "time-uniform", reads: &[], uses: &["index", "uniform"] },
        Stage { name: "time-mixture", reads: &[], uses: &["index", "mixture"] },
    ],
};

fn train_stage(method: Method) -> &'static str {
    match method {
        Method::Exact => "train-exact",
        Method::Sampled => "train-reinforce",
        Method::Uniform => "train-uniform",
        Method::Mixture => "train-mixture",
    }
}

fn time_stage(method: Method) -> &'static str {
    match method {
        Method::Exact => "time-exact",
        Method::Sampled => "time-reinforce",
        Method::Uniform => "time-uniform",
        Method::Mixture => "time-mixture",
    }
}

/// The key of `method` timed on the sweep's catalogue of `items` items (stage `time-…`).
fn time_key(params: &ReinforceParams, method: Method, items: u32) -> Key {
    REINFORCE_GRAPH.key(time_stage(method), params).with(items)
}

/// A catalogue world with all its validation users, and how long it took to build.
struct BuiltWorld {
    world: CatalogueWorld,
    ms: f64,
}

/// A world's index (searching needs `&mut`: its visit marks), and how long it took to build.
struct BuiltIndex {
    index: RefCell<CatalogueIndex>,
    ms: f64,
}

/// A method timed on one catalogue, with what the speed point shows of that catalogue.
#[derive(Clone)]
struct Timing {
    speed: MethodSpeed,
    warm_items: u32,
    build_ms: f64,
}

impl Footprint for BuiltWorld {
    fn footprint(&self) -> usize {
        let w = &self.world;
        bytes_of(&w.items.data)
            + bytes_of(&w.contexts)
            + bytes_of(&w.held_out.row_offsets)
            + bytes_of(&w.held_out.col_ids)
            + bytes_of(&w.held_out.values)
            + bytes_of(&w.train_users)
            + bytes_of(&w.validation_users)
    }
}

impl Footprint for BuiltIndex {
    fn footprint(&self) -> usize {
        let index = self.index.borrow();
        index.index.graph.memory_bytes() + bytes_of(&index.ids)
    }
}

impl Footprint for MethodRun {
    fn footprint(&self) -> usize {
        bytes_of(&self.curve)
    }
}

/// A world and its index, as a part holds them while it trains.
#[derive(Clone)]
struct Built {
    world: Rc<BuiltWorld>,
    index: Rc<BuiltIndex>,
}

/// The catalogue world of `items` items (stage `world`).
fn world(params: &ReinforceParams, items: u32, cache: &mut StageCache, progress: &mut dyn Progress) -> Result<Rc<BuiltWorld>, String> {
    let key = REINFORCE_GRAPH.key("world", params).with(items);
    if let Some(world) = cache.get::<BuiltWorld>(&key) {
        return Ok(world);
    }
    cache.stats.misses += 1;
    let start = progress.now_ms();
    let world = CatalogueWorld::build(&params.world_config(items), progress)?;
    let built = Rc::new(BuiltWorld { world, ms: progress.now_ms() - start });
    cache.insert(key, Rc::clone(&built));
    Ok(built)
}

/// The world of `items` items and its index (stages `world` and `index`).
fn build(params: &ReinforceParams, items: u32, cache: &mut StageCache, progress: &mut dyn Progress) -> Result<Built, String> {
    let world = world(params, items, cache, &mut staged(progress, 0.0, 0.4))?;
    let index = cache.get_or_compute(REINFORCE_GRAPH.key("index", params).with(items), |_| {
        let start = progress.now_ms();
        let index = world.world.index(params.seed, &mut staged(progress, 0.4, 1.0));
        BuiltIndex { index: RefCell::new(index), ms: progress.now_ms() - start }
    });
    Ok(Built { world, index })
}

/// The validation users hit@1 is measured on: the first `eval_users`.
fn evaluated<'a>(params: &ReinforceParams, world: &'a CatalogueWorld) -> &'a [u32] {
    &world.validation_users[..world.validation_users.len().min(params.eval_users as usize)]
}

/// The lesson world's summary and the initial policy's hit@1 (stage `start`).
fn start(params: &ReinforceParams, built: &Built, cache: &mut StageCache) -> Rc<WorldSummary> {
    cache.get_or_compute(REINFORCE_GRAPH.key("start", params), |_| {
        let world = &built.world.world;
        let users = evaluated(params, world);
        let mut index = built.index.index.borrow_mut();
        let initial = super::Policy::scaled_identity(world.dim, params.theta_init);
        WorldSummary {
            items: world.item_count(),
            warm_items: index.ids.len() as u32,
            train_users: world.train_users.len() as u32,
            eval_users: users.len() as u32,
            dim: world.dim,
            world_ms: built.world.ms,
            index_ms: built.index.ms,
            initial_scale: params.theta_init,
            initial_hit_index: hit_at_1_index(world, users, &mut index, &initial),
            initial_hit_exact: None,
        }
    })
}

/// The initial policy's hit@1 by exact search (stage `start-exact`).
fn start_exact(params: &ReinforceParams, world: &CatalogueWorld, cache: &mut StageCache) -> f64 {
    *cache.get_or_compute(REINFORCE_GRAPH.key("start-exact", params), |_| {
        hit_at_1_exact(world, evaluated(params, world), &super::Policy::scaled_identity(world.dim, params.theta_init))
    })
}

/// E[1 − exp(−r·w)] for an item popularity w, log-normal of mean 1 and σ = [`POPULARITY_SPREAD`]:
/// the share of a group of items drawn at least once when each gets r draws on average. A midpoint
/// rule over z in [−4, 4], w = exp(σz − σ²/2).
fn coverage(rate: f64) -> f64 {
    let sigma = POPULARITY_SPREAD;
    let (mut covered, mut total) = (0.0, 0.0);
    for i in 0..17 {
        let z = -4.0 + 0.5 * i as f64;
        let weight = exp(-z * z / 2.0);
        covered += weight * (1.0 - exp(-rate * exp(sigma * z - sigma * sigma / 2.0)));
        total += weight;
    }
    covered / total
}

/// Drawing the users' items ([`crate::core::embeddings::InteractionWorld::generate`]): each user
/// draws from their topics until they hold `count` distinct items, rejecting repeats, and after
/// 50·count + 1000 attempts finishes with an O(P) draw per missing item. The expected attempts and
/// fallback draws over all users (and their log-normal activity). Rejections pile up when users
/// want about as many items as their topics hold: many topics of few items each.
fn interaction_draws(users: f64, items: f64, topics: f64, interactions: f64) -> (f64, f64) {
    let spec = WorldSpec::new(1, 1, 1, 0.0);
    let liked = (spec.topics_per_user as f64).min(topics);
    let per_topic = items / topics;
    let liked_share = (1.0 - spec.uniform_floor) / liked + spec.uniform_floor / topics;
    // Distinct items after `a` attempts: from the liked topics, and from the floor over all items.
    let distinct = |a: f64| liked * per_topic * coverage(a * liked_share / per_topic) + items * coverage(a * spec.uniform_floor / items);
    let sigma = spec.activity_spread;
    let (mut attempts, mut fallback, mut total) = (0.0, 0.0, 0.0);
    for i in 0..9 {
        let z = -3.0 + 0.75 * i as f64;
        let weight = exp(-z * z / 2.0);
        total += weight;
        let count = (interactions * exp(sigma * z - sigma * sigma / 2.0)).round().max(3.0).min((items / 2.0).floor());
        let cap = 50.0 * count + 1000.0;
        if distinct(cap) < count {
            attempts += weight * cap;
            fallback += weight * (count - distinct(cap));
        } else {
            // The attempts that reach `count` distinct items, by bisection in log scale.
            let (mut low, mut high) = (count, cap);
            for _ in 0..20 {
                let middle = (low * high).sqrt();
                if distinct(middle) < count {
                    low = middle;
                } else {
                    high = middle;
                }
            }
            attempts += weight * high;
        }
    }
    (users * attempts / total, users * fallback / total)
}

/// Items with an observed interaction (the index holds those): each item's expected observed
/// draws, as its popularity makes them.
fn warm_items(params: &ReinforceParams, items: u32) -> f64 {
    let config = params.world_config(items);
    let observed = config.users as f64 * config.interactions as f64 * (1.0 - HELD_OUT);
    config.items as f64 * coverage(observed / config.items as f64)
}

/// Elementary steps (≈ ns) of building the catalogue world of `items` items.
fn world_steps(params: &ReinforceParams, items: u32) -> f64 {
    let config = params.world_config(items);
    let (users, items, topics) = (config.users as f64, config.items as f64, config.topics as f64);
    let (interactions, dim) = (config.interactions as f64, config.dim as f64);
    let sketch = (dim + RSVD_OVERSAMPLING).min(users).min(items);
    let observed = users * interactions * (1.0 - HELD_OUT);
    let (attempts, fallback) = interaction_draws(users, items, topics, interactions);
    // Each attempt draws a topic (a scan over the topics), an item, and checks for a repeat.
    attempts * (topics + 40.0)
        + fallback * 2.0 * items
        + users * topics * 3.0
        // The rSVD: 2q + 2 sparse products, q + 1 QRs of users × l and q of items × l, the Gram
        // matrix, V, Ω's normals; then the contexts.
        + (2.0 * RSVD_POWER_ITERATIONS + 2.0) * observed * (sketch / 2.0 + 10.0)
        + ((RSVD_POWER_ITERATIONS + 1.0) * users + RSVD_POWER_ITERATIONS * items) * sketch * sketch
        + items * (sketch * sketch / 2.0 + sketch * dim / 2.0 + 25.0 * sketch + 100.0)
        + observed * dim
}

/// How much more a distance costs in a graph of `points` points, which no longer fits the caches
/// (measured: about twice at 10⁵ points).
fn graph_factor(points: f64) -> f64 {
    1.0 + points / 1e5
}

/// Distances a beam search of width `width` computes: about 45 per slot of the beam, and the
/// descent through the upper layers.
fn search_distances(width: f64) -> f64 {
    45.0 * width + 50.0
}

/// Share of each user's items held out as the reward (as [`CatalogueWorld::build`] splits them).
const HELD_OUT: f64 = 0.5;
/// The rSVD's oversampling and power iterations (as [`CatalogueWorld::build`] asks for them).
const RSVD_OVERSAMPLING: f64 = 10.0;
const RSVD_POWER_ITERATIONS: f64 = 2.0;
/// Distances an insertion into the HNSW graph computes (its search at ef = 48, then linking and
/// pruning the 12 neighbours' lists).
const INDEX_DISTANCES_PER_INSERT: f64 = 1500.0;
/// A distance's fixed work (the visit mark, the heaps), in dimensions.
const DISTANCE_FIXED: f64 = 32.0;
/// An item's exp and accumulation in the exact gradient, beyond its d multiply-adds, in dimensions.
const EXACT_ITEM_FIXED: f64 = 16.0;
/// A sampled item's fixed work (the draw, its reward lookup, a row fetched from anywhere), in
/// dimensions.
const SAMPLE_FIXED: f64 = 100.0;
/// An Adam step's entry, in the per-context d × d visits (its square root and division).
const ADAM_ENTRY_IN_VISITS: f64 = 3.0;
/// A top-K scan's fixed work per item, in dimensions.
const SCAN_FIXED: f64 = 8.0;
/// A Plackett–Luce slate's work per item besides its K softmax passes (the Gumbel key's two logs,
/// the selection, the exp), in passes.
const SLATE_ITEM_FIXED: f64 = 13.0;
/// Steps the speed sweep runs beyond its clock: the warm-up step and the [`TIMING_MIN_STEPS`]
/// (which slow methods need past [`TIMING_MIN_MS`]).
const SWEEP_STEPS_PER_METHOD: f64 = 1.0 + TIMING_MIN_STEPS as f64;

/// ns per elementary step of building a world (draws, sparse products, QR multiply-adds).
const NS_PER_WORLD_STEP: f64 = 0.90;
/// ns per distance-dimension of building an index.
const NS_PER_INDEX_STEP: f64 = 0.312;
/// ns per item-dimension of the exact gradient (f32 score, exp, f64 accumulation).
const NS_PER_EXACT_STEP: f64 = 0.779;
/// ns per sample-dimension of the SNIS estimators.
const NS_PER_SAMPLE_STEP: f64 = 0.418;
/// ns per distance-dimension of the mixture's searches for its top T.
const NS_PER_SEARCH_STEP: f64 = 0.112;
/// ns per entry of a context's d × d query and gradient.
const NS_PER_SQUARE_STEP: f64 = 2.34;
/// ns per distance-dimension of the hit@1 searches.
const NS_PER_EVALUATION_SEARCH_STEP: f64 = 0.075;
/// ns per item-dimension of the exact hit@1 scans.
const NS_PER_EVALUATION_SCAN_STEP: f64 = 0.289;
/// ns per timed method of the speed sweep: its ≈ 300 ms of clock.
const NS_PER_SWEEP_TIMING: f64 = 2.52e8;
/// ns per (slate, item, pass) of the Plackett–Luce study.
const NS_PER_SLATE_STEP: f64 = 2.18;

/// What the lesson's text states about its results (see [`crate::core::claims`]).
const CLAIMS: &[Claim<ReinforceReport>] = &[
    Claim {
        sentence: "The exact gradient's cost grows linearly in $P$.",
        asserts: "in the speed sweep, the exact gradient's time per iteration grows with P, by at least a third of P's growth overall",
        check: exact_cost_grows_with_p,
    },
    Claim {
        sentence: "The speed-up of the sampled methods over exact REINFORCE therefore grows with the catalogue.",
        asserts: "the uniform and mixture speed-ups over exact are larger at the sweep's largest P than at its smallest",
        check: speed_up_grows_with_p,
    },
    Claim {
        sentence: "just as expensive per context",
        asserts: "at the sweep's largest P, sampled REINFORCE runs within 2× of the exact gradient's iterations per second",
        check: sampled_reinforce_as_expensive_as_exact,
    },
    Claim {
        sentence: "and it removes most of the variance",
        asserts: "with two or more slates per estimate, the baseline divides the gradient's variance by more than 2",
        check: baseline_removes_most_variance,
    },
];

/// The sweep's smallest and largest catalogues, when it ran over at least a tenfold range.
fn sweep_ends(r: &ReinforceReport) -> Option<(&SpeedPoint, &SpeedPoint)> {
    let (first, last) = (r.speed.first()?, r.speed.last()?);
    (last.items >= 10 * first.items).then_some((first, last))
}

fn exact_cost_grows_with_p(r: &ReinforceReport) -> Option<Result<(), String>> {
    let (first, last) = sweep_ends(r)?;
    let cost = |p: &SpeedPoint| p.per_second(Method::Exact).map(|s| 1.0 / s);
    let growth = cost(last)? / cost(first)?;
    let p_growth = last.items as f64 / first.items as f64;
    Some(if growth >= p_growth / 3.0 { Ok(()) } else { Err(format!("P ×{p_growth:.0}, time per iteration ×{growth:.1}")) })
}

fn speed_up_grows_with_p(r: &ReinforceReport) -> Option<Result<(), String>> {
    let (first, last) = sweep_ends(r)?;
    Some([Method::Uniform, Method::Mixture].into_iter().try_for_each(|m| {
        let (small, large) = (first.speed_up(m).unwrap_or(0.0), last.speed_up(m).unwrap_or(0.0));
        if large > small {
            Ok(())
        } else {
            Err(format!("{}: ×{small:.1} at P = {}, ×{large:.1} at P = {}", m.id(), first.items, last.items))
        }
    }))
}

fn sampled_reinforce_as_expensive_as_exact(r: &ReinforceReport) -> Option<Result<(), String>> {
    let last = r.speed.last()?;
    let ratio = last.per_second(Method::Sampled)? / last.per_second(Method::Exact)?;
    Some(if (0.5..=2.0).contains(&ratio) {
        Ok(())
    } else {
        Err(format!("at P = {}, REINFORCE runs {ratio:.2}× the exact gradient's iterations per second", last.items))
    })
}

fn baseline_removes_most_variance(r: &ReinforceReport) -> Option<Result<(), String>> {
    let points: Vec<&VariancePoint> = r.slates.iter().filter(|p| p.samples >= 2).collect();
    if points.is_empty() {
        return None;
    }
    Some(points.iter().try_for_each(|p| match p.variance_reduction() {
        Some(reduction) if reduction > 2.0 => Ok(()),
        other => Err(format!("{} slates per estimate: variance divided by {other:?}", p.samples)),
    }))
}

impl Experiment for ReinforceLesson {
    fn claims() -> &'static [Claim<ReinforceReport>] {
        CLAIMS
    }

    const GRAPH: Graph = REINFORCE_GRAPH;
    const TIMINGS: &'static [&'static str] = &[
        "world.world_ms",
        "world.index_ms",
        "training.training_ms",
        "training.curve.training_ms",
        "speed.build_ms",
        "speed.methods.ms",
        "speed.methods.iterations",
    ];
    type Params = ReinforceParams;
    type Report = ReinforceReport;
    type Partial = ReinforceReport;

    fn parts(_params: &Checked<ReinforceParams>) -> u32 {
        2
    }

    fn estimate(params: &Checked<ReinforceParams>) -> Estimate {
        let p: &ReinforceParams = params;
        let (items, dim, batch, iterations) = (p.items as f64, p.dim as f64, p.batch as f64, p.iterations as f64);
        let (samples, top_t, eval_users) = (p.samples as f64, p.top_t as f64, p.eval_users as f64);
        let methods = p.methods();
        let chosen = |m: Method| if methods.contains(&m) { 1.0 } else { 0.0 };
        let searching = |epsilon: f64| if epsilon < 1.0 { 1.0 } else { 0.0 };
        let studied = EPSILONS.len() as f64;
        let sweep = p.sweep_items();
        // The lesson's world is built once (the ε study reuses it), each size of the sweep once more.
        let worlds: Vec<u32> = std::iter::once(p.items as u32).chain(sweep.iter().copied()).collect();
        let world: f64 = worlds.iter().map(|&size| world_steps(p, size)).sum();
        let index: f64 = worlds
            .iter()
            .map(|&size| {
                let warm = warm_items(p, size);
                warm * INDEX_DISTANCES_PER_INSERT * (dim + DISTANCE_FIXED) * graph_factor(warm)
            })
            .sum();
        // Contexts each estimator sees: the lesson's trainings, the ε study's runs of the mixture,
        // and the sweep's steps beyond its clock (every method, at every size).
        let lesson_contexts = iterations * batch;
        let sweep_contexts = SWEEP_STEPS_PER_METHOD * batch;
        let sweep_items: f64 = sweep.iter().map(|&size| size as f64).sum();
        // The exact gradient and sampled REINFORCE both score all P items per context (the sweep
        // times both).
        let full_passes = chosen(Method::Exact) + chosen(Method::Sampled);
        let exact = (full_passes * lesson_contexts * items + 2.0 * sweep_contexts * sweep_items) * (dim + EXACT_ITEM_FIXED);
        // REINFORCE's draws from π cost about what the SNIS draws do.
        let sampled_runs = chosen(Method::Sampled) + chosen(Method::Uniform) + chosen(Method::Mixture) + studied;
        let sampled = (lesson_contexts * sampled_runs + sweep_contexts * 2.0 * sweep.len() as f64) * samples * (dim + SAMPLE_FIXED);
        let lesson_graph = graph_factor(warm_items(p, p.items as u32));
        let search_runs = chosen(Method::Mixture) * searching(p.epsilon) + EPSILONS.iter().map(|&e| searching(e)).sum::<f64>();
        let sweep_graphs: f64 = sweep.iter().map(|&size| graph_factor(warm_items(p, size))).sum();
        let searches = lesson_contexts * search_runs * lesson_graph + sweep_contexts * searching(p.epsilon) * sweep_graphs;
        let search = searches * search_distances(top_t) * (dim + DISTANCE_FIXED);
        // Every context forms its query xθ and adds xᵀc to the gradient; every step moves θ.
        let runs = methods.len() as f64 + studied;
        let sweep_runs = Method::ALL.len() as f64 * sweep.len() as f64;
        let contexts = lesson_contexts * runs + sweep_contexts * sweep_runs;
        let steps = iterations * runs + SWEEP_STEPS_PER_METHOD * sweep_runs;
        let square = (contexts + ADAM_ENTRY_IN_VISITS * steps) * dim * dim;
        // hit@1 through the index: the initial policy, each curve point of each method, each ε;
        // exactly: the initial policy and each method's final one.
        let every = p.eval_every() as f64;
        let points = (iterations / every).floor() + if (iterations % every) > 0.0 { 1.0 } else { 0.0 };
        let index_evaluations = 1.0 + points * methods.len() as f64 + studied;
        let evaluation_search = eval_users * index_evaluations * search_distances(EVAL_EF as f64) * (dim + DISTANCE_FIXED) * lesson_graph;
        let evaluation_scan = eval_users * (1.0 + methods.len() as f64) * items * (dim + SCAN_FIXED);
        // Per repeat, with and without the baseline, every slate count: a Gumbel-top-K draw and K
        // softmax passes over the slate catalogue per slate.
        let slate_items = p.slate_items as f64;
        let slate_passes = (p.slate_size as f64).min(slate_items) + SLATE_ITEM_FIXED;
        let slates = 2.0 * p.slate_repeats as f64 * SLATE_SAMPLES.iter().sum::<u32>() as f64 * slate_items * slate_passes;
        Estimate::new()
            .term(
                "building the worlds (the users' items and their SVD)",
                &["users", "interactions", "topics", "items", "dim", "speed_sweep"],
                world,
                NS_PER_WORLD_STEP,
            )
            .term("building the HNSW indexes", &["items", "users", "interactions", "dim", "speed_sweep"], index, NS_PER_INDEX_STEP)
            .term(
                "training with the exact gradient (all P items per user)",
                &["iterations", "batch", "items", "dim", "methods", "speed_sweep"],
                exact,
                NS_PER_EXACT_STEP,
            )
            .term("drawing the sampled estimators' samples", &["samples", "iterations", "batch", "dim"], sampled, NS_PER_SAMPLE_STEP)
            .term("searching the index for the mixture's top T", &["top_t", "iterations", "batch", "dim"], search, NS_PER_SEARCH_STEP)
            .term("forming the queries and gradients (d × d per user)", &["dim", "iterations", "batch"], square, NS_PER_SQUARE_STEP)
            .term("measuring hit@1 through the index", &["eval_users", "methods"], evaluation_search, NS_PER_EVALUATION_SEARCH_STEP)
            .term("measuring hit@1 exactly", &["eval_users", "items", "dim", "methods"], evaluation_scan, NS_PER_EVALUATION_SCAN_STEP)
            .term("timing the estimators as P grows", &["speed_sweep"], sweep_runs, NS_PER_SWEEP_TIMING)
            .term("the Plackett–Luce variance study", &["slate_repeats", "slate_items", "slate_size"], slates, NS_PER_SLATE_STEP)
    }

    /// One query per term where it dominates (the world twice: its draws, its SVD), then a mix.
    const CALIBRATION: &'static [&'static str] = &[
        "users=20000&topics=500&methods=uniform&iterations=1&batch=1&speed_sweep=off&slate_repeats=10&eval_users=20",
        "users=50000&dim=64&methods=uniform&iterations=1&batch=1&speed_sweep=off&slate_repeats=10&eval_users=20",
        "items=300000&users=20000&dim=8&methods=uniform&iterations=1&batch=1&speed_sweep=off&slate_repeats=10&eval_users=20",
        "items=50000&dim=16&methods=exact&iterations=200&samples=16&top_t=4&speed_sweep=off&slate_repeats=10&eval_users=20",
        "methods=uniform&samples=4000&iterations=100&top_t=4&speed_sweep=off&slate_repeats=10&eval_users=20",
        "methods=mixture&samples=2&top_t=1024&iterations=40&speed_sweep=off&slate_repeats=10&eval_users=20",
        "dim=64&methods=uniform&samples=2&top_t=1&batch=1&iterations=20000&speed_sweep=off&slate_repeats=10&eval_users=20",
        "users=20000&eval_users=4000&iterations=20&batch=1&samples=16&top_t=4&speed_sweep=off&slate_repeats=10",
        "users=50000&eval_users=10000&items=100000&dim=4&methods=uniform&iterations=1&batch=1&samples=16&top_t=4&speed_sweep=off\
         &slate_repeats=10",
        "speed_sweep=1e4&methods=uniform&iterations=10&samples=16&top_t=4&slate_repeats=10&eval_users=20",
        "slate_items=500&slate_size=10&slate_repeats=400&iterations=1&batch=1&speed_sweep=off&eval_users=20",
        "speed_sweep=off",
    ];

    fn run_part(params: &Checked<ReinforceParams>, part: Part, cache: &mut StageCache, progress: &mut dyn Progress) -> ReinforceReport {
        let mut stepper = ReinforcePart::new(params, part);
        while !stepper.step(f64::INFINITY, cache, progress) {}
        stepper.report
    }

    fn stepper(params: &Checked<ReinforceParams>, part: Part) -> Option<Box<dyn Stepper>> {
        Some(Box::new(ReinforcePart::new(params, part)))
    }

    /// Nothing yet: the page opens with the training's part alone, and shows its first curves
    /// before the studies' part has built its own copy of the world.
    fn not_started(_params: &Checked<ReinforceParams>) -> Option<ReinforceReport> {
        Some(ReinforceReport::default())
    }

    fn merge(_params: &Checked<ReinforceParams>, partials: Vec<ReinforceReport>) -> ReinforceReport {
        let mut report = ReinforceReport::default();
        for p in partials {
            report.world = report.world.or(p.world);
            report.training.extend(p.training);
            report.epsilon.extend(p.epsilon);
            report.speed.extend(p.speed);
            report.slates.extend(p.slates);
            report.errors.extend(p.errors);
        }
        report
    }
}

/// One part: its jobs in order, each run in slices. Finished stages go to the worker's cache;
/// a job starts by taking what the cache has and runs only the rest.
pub struct ReinforcePart {
    params: ReinforceParams,
    jobs: VecDeque<JobState>,
    total_jobs: usize,
    /// The lesson's world and index once the training had them, for the ε study of the same
    /// part (with a disabled cache too: one part for everything, as in the CLI).
    built: Option<Built>,
    pub report: ReinforceReport,
}

enum JobState {
    Pending(Job),
    Training(Box<TrainingState>),
    Epsilon(Box<EpsilonState>),
    Speed { remaining: VecDeque<u32> },
    Slates { problem: Option<SlateProblem>, remaining: VecDeque<(u32, u32)> },
}

/// A method still training.
struct Active {
    trainer: Trainer,
    /// Σ effective sample size since the last curve point.
    effective: f64,
}

struct TrainingState {
    /// The lesson's world and index (None when every method's run came from the cache).
    built: Option<Built>,
    /// Per method of the report: its trainer while it trains, None once finished or cached.
    runs: Vec<Option<Active>>,
}

struct EpsilonState {
    /// The lesson's world and index (None when every point came from the cache).
    built: Option<Built>,
    /// Per ε of the study: its point if the cache had it.
    cached: Vec<Option<Rc<EpsilonPoint>>>,
    next: usize,
    trainer: Option<(Trainer, f64)>,
}

impl ReinforcePart {
    pub fn new(params: &ReinforceParams, part: Part) -> ReinforcePart {
        let [first, second] = groups(params);
        let jobs: Vec<Job> = match (part.count, part.index) {
            (1, _) => first.into_iter().chain(second).collect(),
            (_, 0) => first,
            (_, 1) => second,
            _ => Vec::new(),
        };
        ReinforcePart {
            params: params.clone(),
            total_jobs: jobs.len(),
            jobs: jobs.into_iter().map(JobState::Pending).collect(),
            built: None,
            report: ReinforceReport::default(),
        }
    }

    /// Whether the next job is the speed sweep with a timing it does not find in the cache.
    fn speed_computes_next(&self, cache: &StageCache) -> bool {
        matches!(self.jobs.front(), Some(JobState::Pending(Job::Speed)))
            && self
                .params
                .sweep_items()
                .iter()
                .any(|&items| Method::ALL.into_iter().any(|method| !cache.contains(&time_key(&self.params, method, items))))
    }

    /// Progress of the whole part: the share of its jobs finished.
    fn overall(&self) -> f64 {
        let done = self.total_jobs - self.jobs.len();
        (done as f64 / self.total_jobs.max(1) as f64).min(1.0)
    }

    /// Set up a job; None when it cannot run (its error is in the report).
    fn start(&mut self, kind: Job, cache: &mut StageCache, progress: &mut dyn Progress) -> Option<JobState> {
        let params = &self.params;
        match kind {
            Job::Training => {
                let methods = params.methods();
                let finished: Vec<Option<Rc<MethodRun>>> =
                    methods.iter().map(|&m| cache.get::<MethodRun>(&REINFORCE_GRAPH.key(train_stage(m), params))).collect();
                cache.stats.misses += finished.iter().filter(|f| f.is_none()).count() as u64;
                let mut summary = cache.get::<WorldSummary>(&REINFORCE_GRAPH.key("start", params));
                let initial_exact = cache.get::<f64>(&REINFORCE_GRAPH.key("start-exact", params));
                let mut built = None;
                if summary.is_none() || initial_exact.is_none() || finished.iter().any(Option::is_none) {
                    match build(params, params.items as u32, cache, &mut staged(progress, 0.0, 0.2)) {
                        Ok(b) => {
                            summary = summary.or_else(|| Some(start(params, &b, cache)));
                            built = Some(b);
                        }
                        Err(e) => {
                            self.report.errors.push(format!("the world could not be built: {e}"));
                            return None;
                        }
                    }
                }
                let summary = summary.expect("computed when not cached");
                // Without the exact hit (when not cached): the first training step computes it,
                // after these first curves are posted.
                self.report.world = Some(WorldSummary { initial_hit_exact: initial_exact.map(|h| *h), ..(*summary).clone() });
                let mut runs = Vec::new();
                for (&method, finished) in methods.iter().zip(finished) {
                    match finished {
                        Some(run) => {
                            self.report.training.push((*run).clone());
                            runs.push(None);
                        }
                        None => {
                            let start =
                                CurvePoint { iteration: 0, training_ms: 0.0, hit_index: summary.initial_hit_index, effective_samples: 0.0 };
                            self.report.training.push(MethodRun {
                                method,
                                curve: vec![start],
                                iterations: 0,
                                training_ms: 0.0,
                                final_hit_exact: None,
                            });
                            let trainer = Trainer::new(method, summary.dim, params.theta_init, params.learning_rate, params.seed);
                            runs.push(Some(Active { trainer, effective: 0.0 }));
                        }
                    }
                }
                Some(JobState::Training(Box::new(TrainingState { built, runs })))
            }
            // The training's world when this part trained (one part for everything, as in the
            // CLI): the same seed and parameters build the same world.
            Job::Epsilon => {
                let cached: Vec<Option<Rc<EpsilonPoint>>> =
                    EPSILONS.iter().map(|&e| cache.get::<EpsilonPoint>(&REINFORCE_GRAPH.key("epsilon-study", params).with(e))).collect();
                cache.stats.misses += cached.iter().filter(|c| c.is_none()).count() as u64;
                let mut built = None;
                if cached.iter().any(Option::is_none) {
                    let lesson = match self.built.take() {
                        Some(b) => Ok(b),
                        None => build(params, params.items as u32, cache, &mut staged(progress, 0.0, 0.3)),
                    };
                    match lesson {
                        Ok(b) => built = Some(b),
                        Err(e) => {
                            self.report.errors.push(format!("the ε study's world could not be built: {e}"));
                            return None;
                        }
                    }
                }
                Some(JobState::Epsilon(Box::new(EpsilonState { built, cached, next: 0, trainer: None })))
            }
            Job::Speed => Some(JobState::Speed { remaining: params.sweep_items().into() }),
            Job::Slates => {
                let remaining = SLATE_SAMPLES.iter().enumerate().map(|(i, &s)| (i as u32, s)).collect();
                Some(JobState::Slates { problem: None, remaining })
            }
        }
    }

    /// Advance the front job by about `budget_ms`; true when it is finished.
    fn step_job(&mut self, budget_ms: f64, cache: &mut StageCache, progress: &mut dyn Progress) -> bool {
        let started = progress.now_ms();
        let params = self.params.clone();
        let done_jobs = self.total_jobs - self.jobs.len();
        let total = self.total_jobs.max(1) as f64;
        let mut stage = staged(progress, done_jobs as f64 / total, (done_jobs + 1) as f64 / total);
        let Some(job) = self.jobs.front_mut() else { return true };
        match job {
            JobState::Pending(kind) => {
                let kind = *kind;
                match self.start(kind, cache, &mut stage) {
                    Some(state) => {
                        self.jobs[0] = state;
                        false
                    }
                    None => true,
                }
            }
            JobState::Training(state) => {
                step_training(&params, state, &mut self.report, cache, budget_ms, started, &mut staged(&mut stage, 0.2, 1.0))
            }
            JobState::Epsilon(state) => step_epsilon(&params, state, &mut self.report, cache, budget_ms, started, &mut stage),
            JobState::Speed { remaining } => {
                let total = params.sweep_items().len().max(1) as f64;
                let Some(items) = remaining.pop_front() else { return true };
                let done = total - remaining.len() as f64 - 1.0;
                let mut point_progress = staged(&mut stage, done / total, (done + 1.0) / total);
                match time_methods(&params, items, cache, &mut point_progress) {
                    Ok(point) => self.report.speed.push(point),
                    Err(e) => self.report.errors.push(format!("speed sweep at P = {items}: {e}")),
                }
                remaining.is_empty()
            }
            JobState::Slates { problem, remaining } => {
                let Some((i, samples)) = remaining.pop_front() else { return true };
                stage.report(i as f64 / SLATE_SAMPLES.len() as f64, "Plackett–Luce gradient variance");
                let key = REINFORCE_GRAPH.key("slates", &params).with(format!("{i}:{samples}"));
                let point = cache.get_or_compute(key, |_| {
                    let problem = problem
                        .get_or_insert_with(|| SlateProblem::generate(params.slate_items as u32, params.slate_size as u32, params.seed));
                    // One point at a time, each with its own stream (the same numbers in any slicing).
                    let seed = params.seed ^ (i as u64 + 1) << 40;
                    variance_study(problem, &[samples], params.slate_repeats as u32, seed).pop().expect("one point per slate count")
                });
                self.report.slates.push((*point).clone());
                remaining.is_empty()
            }
        }
    }
}

impl Stepper for ReinforcePart {
    fn step(&mut self, budget_ms: f64, cache: &mut StageCache, progress: &mut dyn Progress) -> bool {
        let started = progress.now_ms();
        loop {
            if self.jobs.is_empty() {
                progress.report(1.0, "done");
                return true;
            }
            let remaining = budget_ms - (progress.now_ms() - started);
            if self.step_job(remaining.max(1.0), cache, progress) {
                if let Some(JobState::Training(state)) = self.jobs.pop_front() {
                    self.built = state.built;
                }
                progress.report(self.overall(), "next");
                // The speed sweep does not slice: before it computes, hand back, so that the
                // results so far (after a change of ε, the cached ε study and slates) are posted
                // while it retimes a method.
                if self.speed_computes_next(cache) {
                    return false;
                }
            }
            if progress.now_ms() - started >= budget_ms {
                return self.jobs.is_empty();
            }
        }
    }

    fn partial_json(&self) -> Result<String, String> {
        serde_json::to_string(&self.report).map_err(|e| e.to_string())
    }
}

/// Train every unfinished method for its share of the budget, then hand back. A method that
/// finishes goes to the cache.
fn step_training(
    params: &ReinforceParams,
    state: &mut TrainingState,
    report: &mut ReinforceReport,
    cache: &mut StageCache,
    budget_ms: f64,
    started: f64,
    progress: &mut dyn Progress,
) -> bool {
    let total = params.iterations as u32;
    let eval_every = params.eval_every();
    let sampling = params.sampling();
    if let (Some(summary), Some(built)) = (report.world.as_mut(), state.built.as_ref()) {
        if summary.initial_hit_exact.is_none() {
            summary.initial_hit_exact = Some(start_exact(params, &built.world.world, cache));
        }
    }
    let active = state.runs.iter().filter(|r| r.is_some()).count().max(1);
    let slice = (budget_ms - (progress.now_ms() - started)).max(1.0) / active as f64;
    for (k, slot) in state.runs.iter_mut().enumerate() {
        let Some(Active { trainer, effective }) = slot else { continue };
        let built = state.built.as_ref().expect("methods train on a built world");
        let world = &built.world.world;
        let users = evaluated(params, world);
        let mut index = built.index.index.borrow_mut();
        let run = &mut report.training[k];
        let slice_start = progress.now_ms();
        loop {
            // Time a block of steps up to the next curve point or the end of the slice.
            let block_start = progress.now_ms();
            loop {
                *effective += trainer.step(world, &mut index, &sampling, params.batch as u32);
                let at_point = trainer.iterations % eval_every == 0 || trainer.iterations == total;
                if at_point || progress.now_ms() - slice_start >= slice {
                    break;
                }
            }
            let now = progress.now_ms();
            run.training_ms += now - block_start;
            run.iterations = trainer.iterations;
            if trainer.iterations % eval_every == 0 || trainer.iterations == total {
                let since = (trainer.iterations - run.curve.last().map(|p| p.iteration).unwrap_or(0)).max(1);
                run.curve.push(CurvePoint {
                    iteration: trainer.iterations,
                    training_ms: run.training_ms,
                    hit_index: hit_at_1_index(world, users, &mut index, &trainer.policy),
                    effective_samples: *effective / since as f64,
                });
                *effective = 0.0;
            }
            if trainer.iterations == total {
                run.final_hit_exact = Some(hit_at_1_exact(world, users, &trainer.policy));
                cache.insert(REINFORCE_GRAPH.key(train_stage(run.method), params), Rc::new(run.clone()));
                *slot = None;
                break;
            }
            if progress.now_ms() - slice_start >= slice {
                break;
            }
        }
    }
    let done: f64 = report.training.iter().map(|r| r.iterations as f64 / total as f64).sum::<f64>() / report.training.len().max(1) as f64;
    progress.report(done, "training");
    state.runs.iter().all(Option::is_none)
}

/// Train the mixture with the next ε values, within the budget (points in the cache are taken
/// as they are). A finished point goes to the cache.
fn step_epsilon(
    params: &ReinforceParams,
    state: &mut EpsilonState,
    report: &mut ReinforceReport,
    cache: &mut StageCache,
    budget_ms: f64,
    started: f64,
    progress: &mut dyn Progress,
) -> bool {
    let total = params.iterations as u32;
    loop {
        if state.next >= EPSILONS.len() {
            return true;
        }
        let epsilon = EPSILONS[state.next];
        if let Some(point) = &state.cached[state.next] {
            report.epsilon.push((**point).clone());
            state.next += 1;
            continue;
        }
        let built = state.built.as_ref().expect("the ε study trains on a built world");
        let world = &built.world.world;
        let mut index = built.index.index.borrow_mut();
        let sampling = Sampling { epsilon, ..params.sampling() };
        let (trainer, effective) = state
            .trainer
            .get_or_insert_with(|| (Trainer::new(Method::Mixture, world.dim, params.theta_init, params.learning_rate, params.seed), 0.0));
        while trainer.iterations < total {
            *effective += trainer.step(world, &mut index, &sampling, params.batch as u32);
            if progress.now_ms() - started >= budget_ms {
                break;
            }
        }
        let fraction = 0.3 + 0.7 * (state.next as f64 + trainer.iterations as f64 / total as f64) / EPSILONS.len() as f64;
        progress.report(fraction, "ε study");
        if trainer.iterations < total {
            return false;
        }
        let point = EpsilonPoint {
            epsilon,
            hit_index: hit_at_1_index(world, evaluated(params, world), &mut index, &trainer.policy),
            effective_samples: *effective / total as f64,
        };
        cache.insert(REINFORCE_GRAPH.key("epsilon-study", params).with(epsilon), Rc::new(point.clone()));
        report.epsilon.push(point);
        state.trainer = None;
        state.next += 1;
        if progress.now_ms() - started >= budget_ms {
            return state.next >= EPSILONS.len();
        }
    }
}

/// The speed sweep times each method for at least this many steps and milliseconds.
pub const TIMING_MIN_STEPS: u32 = 3;
pub const TIMING_MIN_MS: f64 = 300.0;

/// Iterations per second of every method on a catalogue of `items` (the same users, d, S, ε, T
/// and batch as the lesson's run): each method warms up for one step, then runs for at least
/// [`TIMING_MIN_STEPS`] steps and [`TIMING_MIN_MS`]. Timings in the cache are reused (the world
/// is built only for a method that is not).
fn time_methods(params: &ReinforceParams, items: u32, cache: &mut StageCache, progress: &mut dyn Progress) -> Result<SpeedPoint, String> {
    let sampling = params.sampling();
    let mut built: Option<Built> = None;
    let mut timings = Vec::new();
    for (k, method) in Method::ALL.into_iter().enumerate() {
        let key = time_key(params, method, items);
        if let Some(timing) = cache.get::<Timing>(&key) {
            timings.push((*timing).clone());
            continue;
        }
        cache.stats.misses += 1;
        let b = match &built {
            Some(b) => b,
            None => built.insert(build(params, items, cache, &mut staged(progress, 0.0, 0.7))?),
        };
        let (world, mut index) = (&b.world.world, b.index.index.borrow_mut());
        progress.report(0.7 + 0.1 * k as f64, "timing the estimators");
        let mut trainer = Trainer::new(method, world.dim, params.theta_init, params.learning_rate, params.seed);
        trainer.step(world, &mut index, &sampling, params.batch as u32);
        let t0 = progress.now_ms();
        // Without a clock (tests), three steps.
        let timed = t0 > 0.0;
        let mut iterations = 0;
        while iterations < TIMING_MIN_STEPS || (timed && progress.now_ms() - t0 < TIMING_MIN_MS && iterations < 100_000) {
            trainer.step(world, &mut index, &sampling, params.batch as u32);
            iterations += 1;
        }
        let timing = Timing {
            speed: MethodSpeed { method, iterations, ms: progress.now_ms() - t0 },
            warm_items: index.ids.len() as u32,
            build_ms: b.world.ms + b.index.ms,
        };
        cache.insert(key, Rc::new(timing.clone()));
        timings.push(timing);
    }
    let first = &timings[0];
    Ok(SpeedPoint {
        items,
        warm_items: first.warm_items,
        build_ms: first.build_ms,
        methods: timings.iter().map(|t| t.speed.clone()).collect(),
    })
}

crate::no_heap_footprint!(WorldSummary, EpsilonPoint, VariancePoint, Timing);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::params::{check, from_query, to_query};
    use crate::core::stages::WORKER_BUDGET_BYTES;

    fn small() -> ReinforceParams {
        ReinforceParams {
            items: 2000,
            dim: 8,
            users: 600,
            topics: 10,
            interactions: 20,
            iterations: 40,
            eval_users: 100,
            samples: 64,
            top_t: 16,
            speed_sweep: "1e4",
            slate_items: 8,
            slate_repeats: 30,
            ..ReinforceParams::default()
        }
    }

    fn without_timings(mut r: ReinforceReport) -> ReinforceReport {
        if let Some(w) = r.world.as_mut() {
            w.world_ms = 0.0;
            w.index_ms = 0.0;
        }
        for run in &mut r.training {
            run.training_ms = 0.0;
            run.curve.iter_mut().for_each(|p| p.training_ms = 0.0);
        }
        for p in &mut r.speed {
            p.build_ms = 0.0;
            p.methods.iter_mut().for_each(|m| {
                m.ms = 0.0;
                m.iterations = 0;
            });
        }
        r
    }

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let params = check(ReinforceParams::default()).unwrap();
        let (back, issues) = from_query::<ReinforceParams>(&to_query(&*params));
        assert!(issues.is_empty());
        assert_eq!(*back, *params);
        let (_, issues) = from_query::<ReinforceParams>("items=1000&interactions=600");
        assert_eq!(issues[0].param, "interactions");
        let (_, issues) = from_query::<ReinforceParams>("items=300000&iterations=100000");
        assert!(issues.iter().any(|i| i.param == "iterations" && i.message.contains("multiply-adds")), "{issues:?}");
        // The budgets leave the lesson's large settings possible.
        assert!(check(ReinforceParams { items: 100_000, iterations: 400, speed_sweep: "3e5", ..ReinforceParams::default() }).is_ok());
        let problems = |p: ReinforceParams| check(p).err().unwrap_or_default().into_iter().map(|i| i.param).collect::<Vec<_>>();
        let large = ReinforceParams { items: 300_000, users: 20_000, eval_users: 2000, iterations: 100, ..ReinforceParams::default() };
        assert_eq!(problems(large), ["eval_users"]);
        assert_eq!(
            problems(ReinforceParams { speed_sweep: "3e5", batch: 1024, dim: 64, iterations: 1, ..ReinforceParams::default() }),
            ["speed_sweep"]
        );
        let many_samples = ReinforceParams { samples: 10_000, iterations: 5000, methods: vec!["mixture"], ..ReinforceParams::default() };
        assert_eq!(problems(many_samples), ["samples"]);
    }

    #[test]
    fn the_estimate_grows_with_the_sizes_and_the_calibration_queries_are_valid() {
        for query in ReinforceLesson::CALIBRATION {
            assert!(crate::core::params::parse_strict::<ReinforceParams>(query).is_ok(), "{query}");
        }
        let seconds =
            |query: &str| ReinforceLesson::estimate(&crate::core::params::parse_strict::<ReinforceParams>(query).unwrap()).native_seconds();
        let base = seconds("speed_sweep=off");
        let larger = ["items=40000", "dim=64", "users=10000", "topics=200", "interactions=80", "samples=512", "top_t=128", "batch=64"];
        for larger in larger.into_iter().chain(["iterations=400", "slate_repeats=2000", "slate_items=200", "slate_size=10"]) {
            assert!(seconds(&format!("speed_sweep=off&{larger}")) > base, "{larger}");
        }
        assert!(seconds("speed_sweep=off&eval_users=500") < base);
        assert!(seconds("speed_sweep=off&methods=uniform,mixture") < base);
        assert!(seconds("speed_sweep=off&epsilon=1") < base, "ε = 1 searches less");
        assert!(seconds("speed_sweep=1e4") > base && seconds("speed_sweep=1e5") > seconds("speed_sweep=1e4"));
        // Many topics of few items: rejections pile up while drawing the users' items.
        let world_only = "users=20000&methods=uniform&iterations=1&batch=1&speed_sweep=off&slate_repeats=10&eval_users=20";
        assert!(seconds(&format!("{world_only}&topics=500")) > 3.0 * seconds(world_only));
    }

    #[test]
    fn parts_slices_and_the_whole_agree() {
        let params = check(small()).unwrap();
        let whole =
            ReinforceLesson::merge(&params, vec![ReinforceLesson::run_part(&params, Part::WHOLE, &mut StageCache::disabled(), &mut ())]);
        assert!(whole.errors.is_empty(), "{:?}", whole.errors);
        assert_eq!(whole.training.len(), 3);
        assert_eq!(whole.epsilon.len(), EPSILONS.len());
        assert_eq!(whole.speed.len(), 3);
        assert_eq!(whole.slates.len(), SLATE_SAMPLES.len());
        for run in &whole.training {
            assert_eq!(run.curve.len(), 21, "{:?}", run.method);
            assert!(run.final_hit_exact.is_some());
        }
        // Two parts stepped in tiny slices on a fake clock that advances 1 ms per reading.
        let mut clock = 0.0;
        let mut progress = crate::core::progress::Timed {
            report: |_: f64, _: &str| {},
            clock: || {
                clock += 1.0;
                clock
            },
        };
        let mut partials = Vec::new();
        for index in 0..2 {
            let mut part = ReinforcePart::new(&params, Part::new(index, 2));
            let mut steps = 0;
            while !part.step(5.0, &mut StageCache::disabled(), &mut progress) {
                steps += 1;
            }
            assert!(steps > 3, "part {index} ran in {steps} slices");
            partials.push(part.report);
        }
        let sliced = ReinforceLesson::merge(&params, partials);
        assert_eq!(without_timings(sliced), without_timings(whole));
    }

    /// Small enough for a walk of 20 changes, large enough that every stage does real work.
    const WALK_BASE: &str = "items=1500&dim=6&users=500&topics=8&interactions=16&iterations=20&eval_users=60&samples=32\
                             &top_t=12&batch=8&speed_sweep=1e4&slate_items=6&slate_size=3&slate_repeats=20";

    // The walks' values differ from the base's, so that every pick of a knob changes something
    // (at first at least); 50 changes each, so that every knob is changed a few times.
    #[test]
    fn a_walk_through_parameter_changes_gives_what_a_fresh_run_gives() {
        let choices: &[(&str, &[&str])] = &[
            ("epsilon", &["0", "0.5", "1"]),
            ("top_t", &["8", "16", "24"]),
            ("methods", &["exact,uniform,mixture", "mixture", "exact,reinforce,mixture", "reinforce,uniform"]),
            ("theta_init", &["0", "5"]),
            ("learning_rate", &["0.03", "0.05", "0.2"]),
            ("iterations", &["15", "30"]),
            ("items", &["1200", "2000"]),
            ("seed", &["2", "3"]),
            ("samples", &["16", "64"]),
            ("batch", &["6", "12"]),
            ("eval_users", &["40", "100"]),
        ];
        let stats = crate::core::stages::tests::walk::<ReinforceLesson>(WALK_BASE, choices, 50, 3);
        assert!(stats.hits > 10, "{stats:?}");
    }

    #[test]
    fn a_walk_through_the_world_slate_and_sweep_knobs_gives_what_a_fresh_run_gives() {
        let choices: &[(&str, &[&str])] = &[
            ("dim", &["5", "8"]),
            ("users", &["400", "600"]),
            ("topics", &["6", "10"]),
            ("interactions", &["12", "20"]),
            ("speed_sweep", &["off", "1e4"]),
            ("slate_items", &["5", "8"]),
            ("slate_size", &["2", "4"]),
            ("slate_repeats", &["15", "30"]),
            ("epsilon", &["0.5", "1"]),
        ];
        let stats = crate::core::stages::tests::walk::<ReinforceLesson>(WALK_BASE, choices, 50, 3);
        assert!(stats.hits > 10, "{stats:?}");
    }

    /// Every parameter changed alone from the base (and back), with the workers' caches kept:
    /// each report equals a fresh run's. Unlike the random walk, this catches any stage whose
    /// key misses a parameter that changes its result.
    #[test]
    fn each_parameter_changed_alone_gives_what_a_fresh_run_gives() {
        use crate::core::experiment::{merge_query, run_part_query_cached, run_query};
        let knobs = [
            "items=2000",
            "dim=8",
            "users=600",
            "topics=10",
            "interactions=20",
            "methods=exact,mixture",
            "samples=64",
            "epsilon=0.5",
            "epsilon=1",
            "top_t=16",
            "batch=12",
            "learning_rate=0.03",
            "theta_init=5",
            "iterations=30",
            "eval_users=100",
            "speed_sweep=off",
            "slate_items=8",
            "slate_size=4",
            "slate_repeats=30",
            "seed=2",
        ];
        let names: Vec<&str> = knobs.iter().map(|k| k.split('=').next().unwrap()).collect();
        assert!(ReinforceParams::specs().iter().all(|s| names.contains(&s.name)), "a parameter is never changed");
        let mut caches = [StageCache::new(WORKER_BUDGET_BYTES), StageCache::new(WORKER_BUDGET_BYTES)];
        let strip = |json: &str| {
            let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
            crate::core::stages::tests::without_timings(&mut v, ReinforceLesson::TIMINGS);
            v
        };
        // The base first, so that the first change finds its stages in the caches.
        for change in std::iter::once("").chain(knobs.iter().flat_map(|k| [*k, ""])) {
            let (params, _) = from_query::<ReinforceParams>(&format!("{WALK_BASE}&{change}"));
            let query = to_query(&*params);
            let partials: Vec<String> = (0..2)
                .map(|index| {
                    run_part_query_cached::<ReinforceLesson>(&query, Part::new(index, 2), &mut caches[index as usize], &mut ()).unwrap()
                })
                .collect();
            if change.is_empty() {
                continue;
            }
            let cached = merge_query::<ReinforceLesson>(&query, &partials).unwrap();
            let fresh = run_query::<ReinforceLesson>(&query, &mut ()).unwrap();
            assert!(strip(&cached) == strip(&fresh), "{change}: the cached report differs from a fresh run");
        }
    }

    /// Both parts, stepped in 5 ms slices on a fake clock (1 ms a reading), each with its
    /// worker's cache.
    fn sliced(params: &ReinforceParams, caches: &mut [StageCache; 2], clock: &mut f64) -> ReinforceReport {
        let mut progress = crate::core::progress::Timed {
            report: |_: f64, _: &str| {},
            clock: || {
                *clock += 1.0;
                *clock
            },
        };
        let partials = (0..2)
            .map(|index| {
                let mut part = ReinforcePart::new(params, Part::new(index, 2));
                while !part.step(5.0, &mut caches[index as usize], &mut progress) {}
                part.report
            })
            .collect();
        ReinforceLesson::merge(&check(params.clone()).unwrap(), partials)
    }

    #[test]
    fn small_slices_with_a_kept_cache_give_what_a_fresh_run_gives() {
        let mut caches = [StageCache::new(WORKER_BUDGET_BYTES), StageCache::new(WORKER_BUDGET_BYTES)];
        let mut clock = 0.0;
        for change in ["", "epsilon=0.5", "epsilon=0.5&top_t=16", "epsilon=0.5&methods=mixture,uniform", "epsilon=1&iterations=30", ""] {
            // A change repeats a parameter of the base: the last value wins.
            let (params, issues) = from_query::<ReinforceParams>(&format!("{WALK_BASE}&{change}"));
            assert!(issues.iter().all(|i| i.message.contains("given twice")), "{issues:?}");
            let fresh = ReinforceLesson::merge(
                &params,
                vec![ReinforceLesson::run_part(&params, Part::WHOLE, &mut StageCache::disabled(), &mut ())],
            );
            assert!(fresh.errors.is_empty(), "{:?}", fresh.errors);
            let sliced = sliced(&params, &mut caches, &mut clock);
            assert_eq!(without_timings(sliced), without_timings(fresh), "{change}");
        }
        // The last query was the first: everything came from the caches.
        assert!(caches.iter().all(|c| c.stats.hits > 0));
    }

    #[test]
    fn a_change_of_epsilon_retrains_and_retimes_only_the_mixture() {
        let mut caches = [StageCache::new(WORKER_BUDGET_BYTES), StageCache::new(WORKER_BUDGET_BYTES)];
        let run = |change: &str, caches: &mut [StageCache; 2]| -> [u64; 2] {
            let (params, _) = from_query::<ReinforceParams>(&format!("{WALK_BASE}&{change}"));
            let before = [caches[0].stats.misses, caches[1].stats.misses];
            for index in 0..2 {
                ReinforceLesson::run_part(&params, Part::new(index, 2), &mut caches[index as usize], &mut ());
            }
            [caches[0].stats.misses - before[0], caches[1].stats.misses - before[1]]
        };
        let sizes = small().sweep_items().len() as u64;
        let cold = run("", &mut caches);
        assert!(cold[0] >= 6 && cold[1] > 10, "{cold:?}");
        // Part 0: the mixture's training; part 1: the mixture's timing at every size of the sweep
        // (the ε study and the slates do not read the lesson's ε).
        assert_eq!(run("epsilon=0.5", &mut caches), [1, sizes]);
        assert_eq!(run("", &mut caches), [0, 0]);
        // T also changes the ε study (7 runs of the mixture).
        assert_eq!(run("top_t=16", &mut caches), [1, sizes + EPSILONS.len() as u64]);
        // The slates read nothing of the rest.
        assert_eq!(run("slate_repeats=30", &mut caches), [0, SLATE_SAMPLES.len() as u64]);
        // S: the sampled methods' trainings and timings (REINFORCE's too: it is timed whether
        // chosen or not), and the ε study.
        assert_eq!(run("samples=64", &mut caches), [2, 3 * sizes + EPSILONS.len() as u64]);
        // The batch: every training and timing, and the ε study.
        assert_eq!(run("batch=12", &mut caches), [3, 4 * sizes + EPSILONS.len() as u64]);
        // A new catalogue size: its world, index, start and exact start, the three trainings,
        // the ε study.
        assert_eq!(run("items=2000", &mut caches), [7, 2 + EPSILONS.len() as u64]);
    }

    /// Native times at the lesson's defaults: a cold run with fresh worker caches, then changes
    /// of one knob each, both parts stepped in 200 ms slices (the page's, after a first one of 50 ms)
    /// with a real clock.
    /// `cargo test --lib --release -- --ignored --nocapture timings_of_knob_changes`
    #[test]
    #[ignore]
    fn timings_of_knob_changes() {
        let clock = std::time::Instant::now();
        let mut progress = crate::core::progress::Timed { report: |_: f64, _: &str| {}, clock: || clock.elapsed().as_secs_f64() * 1000.0 };
        let mut caches = [StageCache::new(WORKER_BUDGET_BYTES), StageCache::new(WORKER_BUDGET_BYTES)];
        let changes = [
            ("cold", ""),
            ("epsilon 0.2 → 0.5", "epsilon=0.5"),
            ("epsilon 0.5 → 0.8", "epsilon=0.8"),
            ("epsilon 0.8 → 0.3", "epsilon=0.3"),
            ("epsilon 0.3 → 0.2 (kept)", "epsilon=0.2"),
            ("top_t 64 → 128", "top_t=128"),
            ("learning_rate 0.1 → 0.05", "learning_rate=0.05"),
            ("methods → mixture only", "methods=mixture"),
            ("slate_repeats 400 → 800", "slate_repeats=800"),
            ("speed_sweep 1e5 → 1e4", "speed_sweep=1e4"),
        ];
        for (name, change) in changes {
            let (params, issues) = from_query::<ReinforceParams>(change);
            assert!(issues.is_empty(), "{issues:?}");
            let mut line = format!("{name:28}");
            for index in 0..2u32 {
                let cache = &mut caches[index as usize];
                let misses = cache.stats.misses;
                let t0 = clock.elapsed().as_secs_f64() * 1000.0;
                let mut part = ReinforcePart::new(&params, Part::new(index, 2));
                let mut first = None;
                while !part.step(200.0, cache, &mut progress) {
                    first.get_or_insert(clock.elapsed().as_secs_f64() * 1000.0 - t0);
                }
                let total = clock.elapsed().as_secs_f64() * 1000.0 - t0;
                let first = first.unwrap_or(total);
                // Of which the mixture's gradient steps (the rest: its curve points and final hit@1).
                let mixture = part.report.training.iter().find(|r| r.method == Method::Mixture).map(|r| r.training_ms);
                let steps = mixture.map(|ms| format!(", mixture's steps {ms:.0} ms")).unwrap_or_default();
                line += &format!(
                    " | part {index}: {total:6.0} ms (first slice {first:4.0} ms, {} stages computed{steps}; cache {:.1} MiB)",
                    cache.stats.misses - misses,
                    cache.used_bytes() as f64 / (1 << 20) as f64
                );
            }
            println!("{line}");
        }
        for (i, cache) in caches.iter().enumerate() {
            println!("worker {i}: {} values kept, {:.1} MiB, {:?}", cache.len(), cache.used_bytes() as f64 / (1 << 20) as f64, cache.stats);
        }
    }
}
