//! The lesson "Reward and rank": PRR, its ablations and the IPS policy-learning family trained on
//! the same logs, deployed in a simulated A/B test; training curves; per-slate estimates against
//! the truth; CTR as K and P grow; the cost of an epoch as P grows.

use super::policy_learning::{self, LoggedExample, Objective, SoftmaxPolicy};
use super::reading::thousands;
use super::{train_watched, Example, Model, ModelPolicy, Variant};
use crate::core::budget::Estimate;
use crate::core::claims::Claim;
use crate::core::experiment::{Experiment, Part};
use crate::core::math::{exp, ln, pow};
use crate::core::params::{Checked, Issue, Kind, LessonParams, Preset, Spec};
use crate::core::progress::{staged, Progress};
use crate::core::rng;
use crate::core::slate_world::lesson::CLICK_MODELS;
use crate::core::slate_world::policy::{all_slates, Logging, LoggingKind, Oracle, PerCategory, PlackettLuce, SlatePolicy};
use crate::core::slate_world::simulate::{ab_test_expected_rewards, deterministic_ctr_on, log_data, LoggedData};
use crate::core::slate_world::{ClickModel, SyntheticSpec, World, MAX_SLATE};
use crate::core::stages::{bytes_of, small_buffer_bytes as small, Footprint, Graph, Key, Stage, StageCache, PER_BUFFER};
use crate::core::stats::{mean_se, MeanSe};
use serde::{Deserialize, Serialize};
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
pub struct PrrParams {
    pub world: &'static str,
    pub click_model: &'static str,
    pub items: i64,
    pub slate_size: i64,
    pub contexts: i64,
    pub engagement_features: i64,
    pub users: i64,
    pub logging: &'static str,
    pub logs: i64,
    pub model_dim: i64,
    pub epochs: i64,
    pub batch: i64,
    pub learning_rate: f64,
    pub init: &'static str,
    pub impressions: i64,
    pub methods: Vec<&'static str>,
    pub sweep: &'static str,
    pub timing_max_items: i64,
    pub seed: u64,
}

impl Default for PrrParams {
    fn default() -> Self {
        PrrParams {
            world: "toy",
            click_model: "prr",
            items: 200,
            slate_size: 4,
            contexts: 20,
            engagement_features: 4,
            users: 1000,
            logging: "uniform",
            logs: 20_000,
            model_dim: 6,
            epochs: 40,
            batch: 256,
            learning_rate: 0.03,
            init: "calibrated",
            impressions: 20_000,
            methods: METHODS.iter().map(|m| m.0).collect(),
            sweep: "none",
            timing_max_items: 100_000,
            seed: 1,
        }
    }
}

pub const WORLDS: &[(&str, &str)] =
    &[("toy", "Toy: 7 items, 4 contexts, slates of 2–4 (the notebook)"), ("synthetic", "Synthetic: choose P, K, contexts")];
pub const LOGGING: &[(&str, &str)] = &[("uniform", "Uniform without replacement"), ("popularity", "Popularity-proportional (“top-K pop”)")];
pub const INITS: &[(&str, &str)] = &[
    ("calibrated", "Calibrated: θ₀ matches the logged CTR, α = −2 (few epochs suffice)"),
    ("notebook", "The notebook's: random weights, N(0, (2/(m+n))²) per table"),
];
pub const SWEEPS: &[(&str, &str)] =
    &[("none", "No sweep"), ("k", "CTR as K grows (2, 4, 6, 8, 10)"), ("p", "CTR as P grows (50 … 2,000)"), ("both", "Both sweeps")];

/// (name, label, published row index). The order is the order of the paper's table.
pub const METHODS: &[(&str, &str)] = &[
    ("oracle", "Oracle"),
    ("random", "Random"),
    ("prr", "PRR"),
    ("prr-bias", "PRR-bias"),
    ("ranking", "Ranking"),
    ("reward", "Reward"),
    ("slate-ips", "Slate IPS"),
    ("top-k-slate-ips", "Top-K slate IPS"),
    ("iips", "IIPS"),
    ("top-k-iips", "Top-K IIPS"),
];

/// The PRR paper's simulated A/B CTR (%), one row per method in [`METHODS`] order, for the
/// settings in [`PUBLISHED_SETTINGS`] (K columns: N_train = 10k; P columns: K = 5, N_train = 10k).
pub const PUBLISHED_SETTINGS: &[&str] = &["toy", "K = 2", "K = 6", "K = 18", "P = 1k", "P = 5k", "P = 10k"];
pub const PUBLISHED_CTR: [[f64; 7]; 10] = [
    [8.58, 72.62, 64.43, 27.08, 49.21, 76.94, 78.01],
    [7.22, 3.39, 7.72, 5.24, 3.65, 7.00, 5.68],
    [8.56, 50.47, 61.70, 26.70, 42.63, 58.01, 57.18],
    [8.54, 36.0, 60.12, 25.44, 42.88, 49.98, 44.31],
    [8.53, 35.79, 48.88, 26.31, 26.15, 50.57, 49.72],
    [7.68, 42.04, 22.28, 5.43, 2.83, 38.35, 19.14],
    [7.93, 20.02, 26.67, 3.31, 20.93, 29.19, 18.01],
    [7.93, 20.02, 17.84, 3.31, 27.23, 25.38, 15.76],
    [8.52, 40.42, 48.91, 25.36, 36.56, 51.47, 34.85],
    [8.56, 40.86, 52.77, 25.60, 43.01, 53.96, 37.24],
];

/// The standard errors the paper prints beside [`PUBLISHED_CTR`] (points, same layout): an ordering
/// the paper's own noise does not separate is not one to reproduce.
pub const PUBLISHED_SE: [[f64; 7]; 10] = [
    [0.2, 0.45, 0.48, 0.44, 0.50, 0.42, 0.41],
    [0.18, 0.18, 0.27, 0.22, 0.19, 0.26, 0.23],
    [0.2, 0.5, 0.49, 0.44, 0.49, 0.49, 0.49],
    [0.2, 0.48, 0.49, 0.44, 0.49, 0.5, 0.5],
    [0.2, 0.48, 0.5, 0.44, 0.44, 0.5, 0.5],
    [0.19, 0.49, 0.42, 0.23, 0.17, 0.49, 0.39],
    [0.19, 0.4, 0.44, 0.18, 0.41, 0.45, 0.38],
    [0.19, 0.4, 0.38, 0.18, 0.45, 0.44, 0.36],
    [0.2, 0.49, 0.5, 0.44, 0.48, 0.5, 0.48],
    [0.2, 0.49, 0.5, 0.44, 0.5, 0.5, 0.48],
];

const SWEEP_K: &[u32] = &[2, 4, 6, 8, 10];
const SWEEP_P: &[u32] = &[50, 100, 200, 500, 1000, 2000];
const TIMING_P: &[u32] = &[100, 1000, 10_000, 100_000];
/// Logged rows each timed epoch runs over.
const TIMING_EXAMPLES: u32 = 2000;
/// Users whose exact CTR is tracked after every epoch.
const CURVE_USERS: u32 = 500;
/// Most (context, slate) pairs in the per-slate scatter.
const SCATTER_MAX_POINTS: f64 = 2000.0;
/// Largest training work one run may ask for: IPS-family epochs cost P·d per clicked row. (Counted
/// over every row, clicked or not; the time estimate, which counts clicked rows, asks before a
/// long run.)
const MAX_IPS_WORK: f64 = 1e11;
/// Largest number of (row, epoch, method, world) visits in one run (about a minute in a tab).
const MAX_ROW_EPOCHS: f64 = 1.5e8;

const SPECS: &[Spec] = &[
    Spec { name: "world", label: "World", help: "the notebook's toy world, or a synthetic one", kind: Kind::Choice(WORLDS) },
    Spec { name: "click_model", label: "Click model", help: "how simulated users click", kind: Kind::Choice(CLICK_MODELS) },
    Spec {
        name: "items",
        label: "Catalogue size P",
        help: "items in the synthetic catalogue (also the K sweep's P)",
        kind: Kind::Int { min: 2, max: 20_000, log: true },
    },
    Spec {
        name: "slate_size",
        label: "Slate size K",
        help: "positions per slate (synthetic world; also the P sweep's K)",
        kind: Kind::Int { min: 1, max: MAX_SLATE as i64, log: false },
    },
    Spec { name: "contexts", label: "Context categories", help: "kinds of users z", kind: Kind::Int { min: 1, max: 100, log: false } },
    Spec {
        name: "engagement_features",
        label: "Engagement features",
        help: "dimension of y, which sets θ₀ (how likely a user ignores the banner)",
        kind: Kind::Int { min: 1, max: 16, log: false },
    },
    Spec { name: "users", label: "Users", help: "size of the user population", kind: Kind::Int { min: 1, max: 50_000, log: true } },
    Spec {
        name: "logging", label: "Logging policy π₀", help: "the policy that produced the training logs", kind: Kind::Choice(LOGGING)
    },
    Spec {
        name: "logs",
        label: "Logged impressions N",
        help: "training rows (the paper uses 10k–100k)",
        kind: Kind::Int { min: 100, max: 500_000, log: true },
    },
    Spec {
        name: "model_dim",
        label: "Learned embedding dimension",
        help: "dimension of Ψ and g(z) in every learned model",
        kind: Kind::Int { min: 1, max: 64, log: true },
    },
    Spec {
        name: "epochs",
        label: "Epochs",
        help: "passes over the logs, for every learned method",
        kind: Kind::Int { min: 1, max: 500, log: true },
    },
    Spec { name: "batch", label: "Batch size", help: "rows per Adam step", kind: Kind::Int { min: 1, max: 8192, log: true } },
    Spec {
        name: "learning_rate",
        label: "Learning rate",
        help: "Adam's step size, for every learned method",
        kind: Kind::Float { min: 1e-4, max: 1.0, log: true },
    },
    Spec { name: "init", label: "Initialisation", help: "where the click models (PRR and its ablations) start", kind: Kind::Choice(INITS) },
    Spec {
        name: "impressions",
        label: "A/B impressions",
        help: "fresh impressions each policy is deployed on",
        kind: Kind::Int { min: 100, max: 2_000_000, log: true },
    },
    Spec { name: "methods", label: "Methods", help: "which policies to train and test", kind: Kind::Set(METHODS) },
    Spec { name: "sweep", label: "Sweep", help: "retrain every method on synthetic worlds of growing K or P", kind: Kind::Choice(SWEEPS) },
    Spec {
        name: "timing_max_items",
        label: "Largest P timed",
        help: "epoch time of PRR and slate IPS is measured at P = 100, 1k, 10k, 100k up to this",
        kind: Kind::Int { min: 100, max: 100_000, log: true },
    },
    Spec { name: "seed", label: "Seed", help: "same seed and parameters → same numbers", kind: Kind::Seed },
];

impl LessonParams for PrrParams {
    fn specs() -> &'static [Spec] {
        SPECS
    }

    crate::fields!(
        world,
        click_model,
        items,
        slate_size,
        contexts,
        engagement_features,
        users,
        logging,
        logs,
        model_dim,
        epochs,
        batch,
        learning_rate,
        init,
        impressions,
        methods,
        sweep,
        timing_max_items,
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
        if self.sweep_k() && self.items < 10 {
            issues
                .push(Issue { param: "items", message: format!("the K sweep goes up to K = 10 and needs P ≥ 10 (P is {})", self.items) });
        }
        let ips_methods = self.methods.iter().filter(|m| m.contains("ips")).count() as f64;
        let largest_p = if self.sweep_p() { SWEEP_P[SWEEP_P.len() - 1].max(self.items as u32) } else { self.items as u32 } as f64;
        let work = ips_methods * self.logs as f64 * self.epochs as f64 * largest_p * self.model_dim as f64;
        if (self.world == "synthetic" || self.sweep_p()) && work > MAX_IPS_WORK {
            issues.push(Issue {
                param: "epochs",
                message: format!(
                    "IPS training would cost about {:.0e} operations (methods × N × epochs × P × d), more than a tab runs \
                     in reasonable time ({MAX_IPS_WORK:.0e}); lower N, epochs or P, or run the CLI",
                    work
                ),
            });
        }
        let learned = self.methods.iter().filter(|m| variant(m).is_some() || objective(m).is_some()).count() as f64;
        let row_epochs = self.logs as f64 * self.epochs as f64 * learned * worlds(self) as f64;
        if row_epochs > MAX_ROW_EPOCHS {
            issues.push(Issue {
                param: "logs",
                message: format!(
                    "N × epochs × learned methods × worlds = {row_epochs:.1e} row visits, more than a tab trains in about a minute \
                     ({MAX_ROW_EPOCHS:.1e}); lower N or the epochs, untick methods, or run the CLI"
                ),
            });
        }
        issues
    }

    fn is_active(&self, name: &str) -> bool {
        let synthetic = self.world == "synthetic" || self.sweep != "none";
        let models = self.methods.iter().any(|m| variant(m).is_some());
        match name {
            // The toy world logs one fresh session per impression (as the notebook does): its
            // population is not a knob.
            "items" | "slate_size" | "contexts" | "engagement_features" | "users" => synthetic,
            "init" => models,
            _ => true,
        }
    }

    fn presets() -> &'static [Preset] {
        PRESETS
    }
}

/// The notebook's training of the toy world, and the paper's synthetic settings, one per column
/// of its table.
const PRESETS: &[Preset] = &[
    Preset {
        name: "notebook",
        label: "Notebook (toy)",
        about: "the notebook's toy run: 20,000 logged sessions, embeddings of 6, its initialisation, Adam lr 0.005, batch 1,024, \
                240 epochs",
        query: "world=toy&logs=20000&impressions=20000&model_dim=6&init=notebook&learning_rate=0.005&batch=1024&epochs=240",
    },
    Preset {
        name: "paper-k2",
        label: "Paper K = 2",
        about: "the paper's K = 2 column: synthetic, P = 1,000 (its table's caption; its text says 10,000), N = 10,000 logs, \
                20 contexts, 4 engagement features",
        query: "world=synthetic&items=1000&slate_size=2&contexts=20&engagement_features=4&logs=10000",
    },
    Preset {
        name: "paper-k6",
        label: "Paper K = 6",
        about: "the paper's K = 6 column: synthetic, P = 1,000, N = 10,000 logs, 20 contexts, 4 engagement features",
        query: "world=synthetic&items=1000&slate_size=6&contexts=20&engagement_features=4&logs=10000",
    },
    Preset {
        name: "paper-k18",
        label: "Paper K = 18",
        about: "the paper's K = 18 column: synthetic, P = 1,000, N = 10,000 logs, 20 contexts, 4 engagement features",
        query: "world=synthetic&items=1000&slate_size=18&contexts=20&engagement_features=4&logs=10000",
    },
    Preset {
        name: "paper-p1k",
        label: "Paper P = 1k",
        about: "the paper's P = 1k column: synthetic, K = 5, N = 10,000 logs, 20 contexts, 4 engagement features",
        query: "world=synthetic&items=1000&slate_size=5&contexts=20&engagement_features=4&logs=10000",
    },
    Preset {
        name: "paper-p5k",
        label: "Paper P = 5k",
        about: "the paper's P = 5k column: synthetic, K = 5, N = 10,000 logs, 20 contexts, 4 engagement features",
        query: "world=synthetic&items=5000&slate_size=5&contexts=20&engagement_features=4&logs=10000",
    },
    Preset {
        name: "paper-p10k",
        label: "Paper P = 10k",
        about: "the paper's P = 10k column: synthetic, K = 5, N = 10,000 logs, 20 contexts, 4 engagement features",
        query: "world=synthetic&items=10000&slate_size=5&contexts=20&engagement_features=4&logs=10000",
    },
];

impl PrrParams {
    fn sweep_k(&self) -> bool {
        matches!(self.sweep, "k" | "both")
    }

    fn sweep_p(&self) -> bool {
        matches!(self.sweep, "p" | "both")
    }

    /// The main world's parameters as its stages see them. The toy world reads none of the
    /// synthetic world's knobs: they are set to fixed values, so that changing them (for a sweep)
    /// keeps the toy world's stages.
    fn main_world(&self) -> PrrParams {
        if self.world == "synthetic" {
            return self.clone();
        }
        let fixed = PrrParams::default();
        PrrParams {
            items: fixed.items,
            slate_size: fixed.slate_size,
            contexts: fixed.contexts,
            engagement_features: fixed.engagement_features,
            // One fresh session per logged impression: the population is the logs' sessions.
            users: self.logs,
            ..self.clone()
        }
    }

    /// A point of the K sweep: the synthetic world at the main P, with slates of `k`. It shares
    /// its stages with the main world when that is the same synthetic world.
    fn k_point(&self, k: u32) -> PrrParams {
        PrrParams { world: "synthetic", slate_size: k as i64, ..self.clone() }
    }

    /// A point of the P sweep: the synthetic world of `items` items, with the main K.
    fn p_point(&self, items: u32) -> PrrParams {
        PrrParams { world: "synthetic", items: items as i64, ..self.clone() }
    }

    fn click_model(&self) -> ClickModel {
        if self.click_model == "pbm" {
            ClickModel::Pbm
        } else {
            ClickModel::Prr
        }
    }

    pub fn synthetic_world(&self, items: u32, slate_size: u32, users: u32) -> World {
        let spec = SyntheticSpec::with_contexts(items, slate_size, self.contexts as u32, users, self.engagement_features as u32);
        World::synthetic(self.seed, spec, self.click_model())
    }

    /// The world the logs come from: a synthetic world and its population, or the toy world with
    /// one fresh session per logged impression.
    pub fn build_world(&self) -> World {
        if self.world == "synthetic" {
            self.synthetic_world(self.items as u32, self.slate_size as u32, self.users as u32)
        } else {
            World::toy_fresh(self.seed, self.logs as u32, self.click_model(), false)
        }
    }

    /// The world the A/B test deploys in: the same one for a synthetic world (its population),
    /// fresh sessions of the same toy world (as the notebook's A/B test draws them).
    fn ab_world(&self) -> Option<World> {
        (self.world == "toy").then(|| World::toy_fresh(self.seed, self.impressions as u32, self.click_model(), true))
    }

    fn logging_kind(&self) -> LoggingKind {
        if self.logging == "popularity" {
            LoggingKind::Popularity
        } else {
            LoggingKind::Uniform
        }
    }

    /// The published column closest to this setting, by name.
    pub fn published_setting(&self) -> usize {
        if self.world == "toy" {
            return 0;
        }
        let nearest = |candidates: &[(usize, f64)], x: f64| {
            candidates.iter().min_by(|a, b| (a.1.ln() - x.ln()).abs().total_cmp(&(b.1.ln() - x.ln()).abs())).map(|c| c.0).unwrap_or(0)
        };
        if self.slate_size == 5 {
            nearest(&[(4, 1000.0), (5, 5000.0), (6, 10_000.0)], self.items as f64)
        } else {
            nearest(&[(1, 2.0), (2, 6.0), (3, 18.0)], self.slate_size as f64)
        }
    }
}

/// What a method becomes once trained: a deployable slate policy.
enum Trained {
    Oracle,
    Random(PlackettLuce),
    Model(Model),
    Softmax(SoftmaxPolicy),
}

impl Trained {
    fn policy<'a>(&'a self, label: &str) -> Box<dyn SlatePolicy + 'a> {
        match self {
            Trained::Oracle => Box::new(PerCategory::new(Oracle)),
            Trained::Random(pl) => Box::new(Logging { policy: pl }),
            Trained::Model(m) => Box::new(PerCategory::new(ModelPolicy { model: m, label: label.into() })),
            Trained::Softmax(s) => Box::new(PerCategory::new(policy_learning::Deployed { policy: s, label: label.into() })),
        }
    }
}

fn variant(name: &str) -> Option<Variant> {
    match name {
        "prr" => Some(Variant::Prr),
        "prr-bias" => Some(Variant::PrrBias),
        "ranking" => Some(Variant::Ranking),
        "reward" => Some(Variant::Reward),
        _ => None,
    }
}

fn objective(name: &str) -> Option<Objective> {
    match name {
        "slate-ips" => Some(Objective::SlateIps),
        "top-k-slate-ips" => Some(Objective::TopKSlateIps),
        "iips" => Some(Objective::Iips),
        "top-k-iips" => Some(Objective::TopKIips),
        _ => None,
    }
}

pub fn method_label(name: &str) -> &'static str {
    METHODS.iter().find(|m| m.0 == name).map_or("?", |m| m.1)
}

/// Training curves of one learned method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub name: String,
    /// Mean training loss per epoch (cross-entropy for the models; the IPS objective, to be
    /// maximised, for policy learning).
    pub loss: Vec<f64>,
    /// Exact CTR of the deployed policy after each epoch, on the first users.
    pub ctr: Vec<f64>,
}

/// One method's A/B result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    pub name: String,
    pub ctr: f64,
    pub se: f64,
    /// Training time per epoch (ms); absent for the untrained references.
    pub epoch_ms: Option<f64>,
}

/// One (context, slate) of the smallest slate size: its true CTR, and what the models and IPS
/// say about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlatePoint {
    pub context: String,
    pub slate: Vec<String>,
    pub truth: f64,
    pub prr: Option<f64>,
    pub reward: Option<f64>,
    /// Mean of click / π₀(slate) over the logged rows of this context and size with this slate.
    pub ips: f64,
    pub rows: u32,
}

/// Everything a world yields: the A/B table, and for the main world the curves and the scatter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldResult {
    pub items: u32,
    pub slate_size: u32,
    pub logged_ctr: f64,
    pub logged_se: f64,
    pub methods: Vec<MethodResult>,
    pub curves: Vec<Curve>,
    pub scatter: Vec<SlatePoint>,
    pub scatter_slate_size: u32,
    /// Oracle's and random's CTR on the users the curves are measured on (with `detail`).
    pub curve_oracle: Option<f64>,
    pub curve_random: Option<f64>,
    /// Differences between the methods' A/B CTRs, paired impression by impression (every policy
    /// meets the same traffic), for every pair of methods (main world, up to
    /// [`PAIRED_MAX_IMPRESSIONS`] impressions).
    #[serde(default)]
    pub paired: Vec<PairedDifference>,
}

/// `first`'s A/B CTR minus `second`'s, with the standard error of the paired differences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub first: String,
    pub second: String,
    pub mean: f64,
    pub se: f64,
}

impl WorldResult {
    /// A world's A/B table alone (a sweep point): no curves, scatter or paired differences.
    fn table(items: u32, slate_size: u32, (logged_ctr, logged_se): (f64, f64), methods: Vec<MethodResult>) -> WorldResult {
        WorldResult {
            items,
            slate_size,
            logged_ctr,
            logged_se,
            methods,
            curves: Vec::new(),
            scatter: Vec::new(),
            scatter_slate_size: 0,
            curve_oracle: None,
            curve_random: None,
            paired: Vec::new(),
        }
    }

    /// The paired difference `first` − `second`, if computed (either order).
    pub fn paired_difference(&self, first: &str, second: &str) -> Option<PairedDifference> {
        self.paired.iter().find_map(|d| {
            if d.first == first && d.second == second {
                Some(d.clone())
            } else if d.first == second && d.second == first {
                Some(PairedDifference { first: first.into(), second: second.into(), mean: -d.mean, se: d.se })
            } else {
                None
            }
        })
    }
}

/// Most A/B impressions whose per-impression rewards are kept for pairing (4 bytes each, per
/// method); above, differences are read with independent standard errors.
pub const PAIRED_MAX_IMPRESSIONS: u32 = 200_000;

/// Epoch time of PRR and of slate IPS at one catalogue size, on the same logged rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimingPoint {
    pub items: u32,
    pub examples: u32,
    pub clicked: u32,
    pub prr_ms_per_epoch: f64,
    pub slate_ips_ms_per_epoch: f64,
}

/// The runs a lesson run is made of, each run by one part (see [`assignment`]). The main world's
/// methods run in units (see [`main_units`]), so that two workers share its trainings: each part
/// with a unit logs the world itself, which is cheap next to training.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Job {
    /// The main world's methods of unit `u` of [`main_units`].
    Main(u32),
    /// Job `g` of [`timing_jobs`].
    Timing(u32),
    SweepK(u32),
    SweepP(u32),
}

fn jobs(p: &PrrParams) -> Vec<Job> {
    let mut jobs: Vec<Job> = (0..main_units(p).len() as u32).map(Job::Main).collect();
    jobs.extend(sweep_points(p).into_iter().filter(|job| !is_main_world(p, *job)));
    jobs.extend((0..timing_jobs(p).len() as u32).map(Job::Timing));
    jobs
}

/// The sizes each timing job runs. The timing's sizes (those up to `timing_max_items`) are split:
/// the largest alone (at P = 10⁵ about 60 % of the timing), the others together, so that two
/// parts share a timing, which reruns with every K. Each job first runs the smallest size, whose
/// measurement is dropped (a fresh worker's code is still being optimised by the browser's
/// compiler then).
fn timing_jobs(p: &PrrParams) -> Vec<Vec<u32>> {
    let sizes: Vec<u32> = TIMING_P.iter().copied().filter(|&items| items as i64 <= p.timing_max_items).collect();
    let groups = match sizes.split_last() {
        Some((&largest, rest)) if !rest.is_empty() => vec![rest.to_vec(), vec![largest]],
        _ => return vec![sizes.first().map(|&only| vec![only, only]).unwrap_or_default()],
    };
    groups.into_iter().map(|group| std::iter::once(sizes[0]).chain(group).collect()).collect()
}

/// The sweep's worlds, in the report's order: K points at the main P, P points (those ≥ K) at
/// the main K.
fn sweep_points(p: &PrrParams) -> Vec<Job> {
    let mut points = Vec::new();
    if p.sweep_k() {
        points.extend(SWEEP_K.iter().map(|&k| Job::SweepK(k)));
    }
    if p.sweep_p() {
        points.extend(SWEEP_P.iter().filter(|&&items| items >= p.slate_size as u32).map(|&items| Job::SweepP(items)));
    }
    points
}

/// Whether a sweep point is the main world (synthetic, at its K or its P): no job of its own,
/// its table is the main world's (same stages, so the same numbers; see [`as_sweep_point`]).
fn is_main_world(p: &PrrParams, job: Job) -> bool {
    p.world == "synthetic"
        && match job {
            Job::SweepK(k) => k as i64 == p.slate_size,
            Job::SweepP(items) => items as i64 == p.items,
            _ => false,
        }
}

/// The main world's result as a sweep point shows it: its table only.
fn as_sweep_point(main: &WorldResult) -> WorldResult {
    WorldResult::table(main.items, main.slate_size, (main.logged_ctr, main.logged_se), main.methods.clone())
}

/// Worlds the run trains in: the main one and the sweep's.
fn worlds(p: &PrrParams) -> usize {
    jobs(p).iter().filter(|j| matches!(j, Job::SweepK(_) | Job::SweepP(_))).count() + 1
}

/// The main world's methods (their places in the list) in the units parts run apart: each method
/// alone, but PRR and Reward together, since the scatter reads both models. The unit holding
/// PRR (or else Reward, or else the first unit) computes the scatter; the first unit also the
/// world's own numbers (logged CTR, the curves' references).
fn main_units(p: &PrrParams) -> Vec<Vec<u32>> {
    let place = |name: &str| p.methods.iter().position(|m| *m == name).map(|m| m as u32);
    let joint = place("prr").zip(place("reward")).map(|(a, b)| (a.min(b), a.max(b)));
    let mut units = Vec::new();
    for m in 0..p.methods.len() as u32 {
        match joint {
            Some((first, second)) if m == first => units.push(vec![first, second]),
            Some((_, second)) if m == second => {}
            _ => units.push(vec![m]),
        }
    }
    if units.is_empty() {
        units.push(Vec::new());
    }
    units
}

/// The unit of [`main_units`] that computes the scatter.
fn scatter_unit(p: &PrrParams, units: &[Vec<u32>]) -> usize {
    let chosen = |name: &str| p.methods.iter().position(|m| *m == name).map(|m| m as u32);
    chosen("prr").or(chosen("reward")).and_then(|m| units.iter().position(|u| u.contains(&m))).unwrap_or(0)
}

/// A cheaper look at a query (see [`PrrLesson::preview`]): a twentieth of the epochs, no sweep,
/// the timing at P = 100 only, and a `logs_divisor`-th of the logs and an
/// `impressions_divisor`-th of the impressions (at least 1,000 of each, where valid); and its note.
fn cheaper_look(params: &PrrParams, logs_divisor: i64, impressions_divisor: i64) -> (PrrParams, String) {
    let epochs = (params.epochs / 20).max(1);
    let mut look = PrrParams { epochs, sweep: "none", timing_max_items: 100, ..params.clone() };
    let mut note = format!("after {epochs} of {} epochs", params.epochs);
    let fewer = PrrParams { impressions: (params.impressions / impressions_divisor).max(1000), ..look.clone() };
    if fewer.impressions < params.impressions && crate::core::params::check(fewer.clone()).is_ok() {
        let (some, all) = (thousands(fewer.impressions as u64), thousands(params.impressions as u64));
        note.push_str(&format!(", A/B tested on {some} of the {all} impressions"));
        look = fewer;
    }
    if params.sweep != "none" {
        note.push_str(", without the sweep");
    }
    let fewer = PrrParams { logs: (params.logs / logs_divisor).max(1000), ..look.clone() };
    if fewer.logs < params.logs && crate::core::params::check(fewer.clone()).is_ok() {
        note = format!("on {} of the {} logged impressions, {note}", thousands(fewer.logs as u64), thousands(params.logs as u64));
        look = fewer;
    }
    (look, note)
}

/// Which part runs each job: the costliest first, each to the part with the least work so far
/// (longest processing time first), by [`placement_cost`]. The main world's units and the timing
/// are placed first, the sweep worlds then on top, so that a change of the sweep leaves the main
/// world's trainings on the workers whose caches hold them; and the costs leave out the A/B tests,
/// so that a change of the impressions (which re-tests only) does too. (A change of the methods
/// or of the timing's sizes can move a unit: it then retrains on its new worker.)
fn assignment(p: &PrrParams, jobs: &[Job], parts: u32, preview: bool) -> Vec<u32> {
    // A preview's timing is left out (or cached): no work. (Not read from the cache, which
    // differs between workers, while every part must agree on the placement.)
    let costs: Vec<f64> =
        jobs.iter().map(|job| if preview && matches!(job, Job::Timing(_)) { 0.0 } else { placement_cost(p, *job) }).collect();
    let sweep = |j: usize| matches!(jobs[j], Job::SweepK(_) | Job::SweepP(_));
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| sweep(a).cmp(&sweep(b)).then(costs[b].total_cmp(&costs[a])).then(a.cmp(&b)));
    let mut load = vec![0.0_f64; parts.max(1) as usize];
    let mut part_of = vec![0; jobs.len()];
    for j in order {
        // The first of the least loaded parts.
        let least = (0..load.len()).min_by(|&a, &b| load[a].total_cmp(&load[b])).unwrap_or(0);
        load[least] += costs[j];
        part_of[j] = least as u32;
    }
    part_of
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JobResult {
    Main(MainUnit),
    Timing(Vec<TimingPoint>),
    SweepK(WorldResult),
    SweepP(WorldResult),
}

/// What a unit of the main world's methods yields (see [`main_units`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MainUnit {
    /// The world's own numbers (the first unit).
    pub header: Option<MainHeader>,
    pub methods: Vec<PlacedMethod>,
    /// The scatter (the unit with PRR and Reward, or the first).
    pub scatter: Option<Scatter>,
}

/// The main world's own numbers, beside its methods'.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MainHeader {
    pub items: u32,
    pub slate_size: u32,
    pub logged_ctr: f64,
    pub logged_se: f64,
    pub curve_oracle: f64,
    pub curve_random: f64,
}

/// A method of the main world, at its place in the chosen list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacedMethod {
    pub place: u32,
    pub result: MethodResult,
    /// Its training curves, if it learns.
    pub curve: Option<Curve>,
    /// Its A/B test's per-impression expected rewards, for the paired differences (empty above
    /// [`PAIRED_MAX_IMPRESSIONS`]).
    #[serde(with = "crate::core::packed::f32s")]
    pub rewards: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrrReport {
    pub world: String,
    pub logs: u32,
    pub impressions: u32,
    pub epochs: u32,
    pub main: WorldResult,
    /// Column of [`PUBLISHED_SETTINGS`] closest to this setting.
    pub published_setting: u32,
    pub sweep_k: Vec<WorldResult>,
    pub sweep_p: Vec<WorldResult>,
    pub timing: Vec<TimingPoint>,
    /// A preview left the epoch timing out (it was not cached): the full report has it.
    #[serde(default)]
    pub timing_pending: bool,
}

/// The lesson's stages. Each world (the main one, or a sweep point's) is logged, every chosen
/// method is trained on its logs and A/B tested; the main world also gets the curves' references
/// and the scatter. The timing job stands apart. A world's stages see it through its own
/// parameters ([`PrrParams::main_world`], [`PrrParams::k_point`], [`PrrParams::p_point`]: a sweep
/// point's K or P replaces the main one), so that a key names the world its result was computed
/// in, and a sweep point that is the main world shares its stages.
///
/// A change of epochs, batch, learning rate or model dimension retrains and re-tests (world and
/// logs kept); of the impressions, re-tests only; of the methods, trains the methods whose place
/// in the list changed (a method's shuffling stream is its place) or whose worker changed (see
/// [`assignment`]); of the sweep, runs the new sweep worlds only (a K point that is the main world
/// is the main world's table, see [`is_main_world`]); of the slate size, reruns the main world
/// and the timing (both read K).
const PRR_GRAPH: Graph = Graph {
    lesson: "reward-and-rank",
    stages: &[
        // A slate world: the toy one, or a synthetic one of P items, slates of K.
        Stage {
            name: "world",
            reads: &["world", "click_model", "items", "slate_size", "contexts", "engagement_features", "users", "seed"],
            uses: &[],
        },
        // N impressions logged by π₀, as the rows the models and the IPS learners train on.
        Stage { name: "logs", reads: &["logging", "logs"], uses: &["world"] },
        // One learned method trained on the logs; the key adds the method, its place in the list
        // (its shuffling stream) and whether the CTR curve was tracked.
        Stage { name: "training", reads: &["model_dim", "epochs", "batch", "learning_rate", "init"], uses: &["logs"] },
        // The A/B test's traffic: fresh sessions of the toy world (a synthetic world's own
        // population is its traffic).
        Stage { name: "ab_world", reads: &["impressions"], uses: &["world"] },
        // The simulated A/B test of a trained method (the key adds the method and its place).
        Stage { name: "ab_test", reads: &[], uses: &["training", "ab_world"] },
        // The A/B test of the oracle or the random policy, which learn nothing.
        Stage { name: "reference_ab_test", reads: &[], uses: &["ab_world"] },
        // Oracle's and random's CTR on the curves' users (main world).
        Stage { name: "curve_references", reads: &[], uses: &["world"] },
        // Per-slate truth, PRR's and Reward's predictions and IPS from the logs (main world; the
        // key adds the places of PRR and Reward).
        Stage { name: "scatter", reads: &[], uses: &["logs", "training"] },
        // One world's table, curves and scatter for the chosen methods (assembled, not kept).
        Stage {
            name: "world_result",
            reads: &["methods"],
            uses: &["logs", "training", "ab_world", "ab_test", "reference_ab_test", "curve_references", "scatter"],
        },
        // Which sweep worlds run: K points at the main P, P points (those ≥ K) at the main K.
        Stage { name: "sweeps", reads: &["sweep", "slate_size"], uses: &["world_result"] },
        // Epoch time of PRR and slate IPS as P grows, on small worlds of its own.
        Stage {
            name: "timing",
            reads: &[
                "timing_max_items",
                "slate_size",
                "contexts",
                "engagement_features",
                "click_model",
                "model_dim",
                "batch",
                "learning_rate",
                "seed",
            ],
            uses: &[],
        },
    ],
};

pub struct PrrLesson;

/// A world the run logs, trains and tests in, as its costs see it.
struct WorldCost {
    items: f64,
    min_size: f64,
    max_size: f64,
    contexts: f64,
    features: f64,
    /// The main world, which also gets the curves and the scatter.
    detail: bool,
}

/// The toy world's slate sizes (as [`World::toy`] draws them).
const TOY_SLATE_SIZES: (f64, f64) = (2.0, 4.0);
/// The toy world's engagement features (as [`World::toy`] draws them).
const TOY_FEATURES: f64 = 2.0;

/// The worlds of the run's jobs (the timing job has small worlds of its own; a sweep point that
/// is the main world has no job).
fn world_costs(p: &PrrParams) -> Vec<WorldCost> {
    jobs(p).into_iter().filter(|job| !matches!(job, Job::Main(u) if *u > 0)).filter_map(|job| world_cost(p, job)).collect()
}

/// The world a job trains in (every unit of the main world's gives the main world).
fn world_cost(p: &PrrParams, job: Job) -> Option<WorldCost> {
    let synthetic = |items: f64, k: f64, detail: bool| WorldCost {
        items,
        min_size: k,
        max_size: k,
        contexts: p.contexts as f64,
        features: p.engagement_features as f64,
        detail,
    };
    match job {
        Job::Main(_) if p.world == "synthetic" => Some(synthetic(p.items as f64, p.slate_size as f64, true)),
        Job::Main(_) => Some(WorldCost {
            items: crate::core::slate_world::TOY_ITEMS.len() as f64,
            min_size: TOY_SLATE_SIZES.0,
            max_size: TOY_SLATE_SIZES.1,
            contexts: crate::core::slate_world::TOY_CATEGORIES.len() as f64,
            features: TOY_FEATURES,
            detail: true,
        }),
        Job::SweepK(k) => Some(synthetic(p.items as f64, k as f64, false)),
        Job::SweepP(items) => Some(synthetic(items as f64, p.slate_size as f64, false)),
        Job::Timing(_) => None,
    }
}

/// Share of logged rows with a click: the IPS learners pay the full softmax on those only. It
/// saturates with K (measured: 1.5 % at K = 1, 5 % at K = 4, 6–9 % at K = 10).
fn clicked_share(k: f64) -> f64 {
    0.09 * (1.0 - exp(-k / 5.0))
}

/// Expected distinct values among `draws` uniform draws out of `n`.
fn distinct(draws: f64, n: f64) -> f64 {
    n * (1.0 - exp(-draws / n.max(1.0)))
}

/// Quadrature nodes of the popularity policy's exact position marginals: steps of 0.25 in ln t
/// from ln(1e-15/W) to ln(40/w_min), with W ≈ P and w_min ≈ 0.2.
fn marginal_nodes(items: f64) -> f64 {
    4.0 * (40.0 + ln(items))
}

/// Steps of an IPS softmax gradient on one logged row: P·(d + exp) on a clicked row, almost
/// nothing on the others (they are skipped).
fn ips_row_steps(items: f64, dim: f64, clicked: f64) -> f64 {
    clicked * items * (dim + 5.0) + IPS_UNCLICKED_ROW
}

/// Entries one Adam step of an IPS policy moves, on average: every item's row once the batch
/// has a click.
fn ips_adam_entries(items: f64, dim: f64, clicked: f64, batch: f64) -> f64 {
    (1.0 - pow(1.0 - clicked, batch)) * (items + 1.0) * dim + ADAM_STEP_FIXED
}

impl WorldCost {
    fn slate_size(&self) -> f64 {
        (self.min_size + self.max_size) / 2.0
    }

    /// Slate positions of logging the impressions.
    fn logged_positions(&self, p: &PrrParams) -> f64 {
        p.logs as f64 * (self.slate_size() + LOG_ROW_FIXED_POSITIONS)
    }

    /// Steps of the popularity policy's position propensities (none for uniform logging): per
    /// node and item, two exps, the suffix and prefix updates and the convolution.
    fn marginal_steps(&self, p: &PrrParams) -> f64 {
        if p.logging != "popularity" {
            return 0.0;
        }
        let positions = self.max_size.min(self.items);
        marginal_nodes(self.items) * self.items * (positions * (positions + 1.0) / 2.0 + 2.0 * positions + 20.0)
    }

    /// Gradient steps of one epoch of click model `name` (PRR or an ablation): the ranking-only
    /// model learns from clicked rows only.
    fn model_steps(&self, p: &PrrParams, name: &str) -> f64 {
        let rows = if variant(name) == Some(Variant::Ranking) { clicked_share(self.slate_size()) } else { 1.0 };
        rows * p.logs as f64 * (self.slate_size() * (p.model_dim as f64 + MODEL_POSITION_FIXED) + MODEL_ROW_FIXED)
    }

    /// Gradient steps of one epoch of an IPS policy.
    fn ips_steps(&self, p: &PrrParams) -> f64 {
        p.logs as f64 * ips_row_steps(self.items, p.model_dim as f64, clicked_share(self.slate_size()))
    }

    /// Clicked rows of one epoch of an IPS policy: each also has a fixed cost (its buffers, the
    /// objective's factors), which dominates at small P.
    fn ips_clicked_rows(&self, p: &PrrParams) -> f64 {
        p.logs as f64 * clicked_share(self.slate_size())
    }

    /// Entries the Adam steps of one epoch of a click model move: the rows each batch touched
    /// (K items and a context per row), and the θ_0 and position weights.
    fn model_adam_entries(&self, p: &PrrParams) -> f64 {
        let (batch, dim) = (p.batch as f64, p.model_dim as f64);
        let entries = (distinct(batch * self.slate_size(), self.items) + distinct(batch, self.contexts)) * dim
            + self.features
            + 1.0
            + 2.0 * self.max_size;
        (p.logs as f64 / batch).ceil() * (entries + ADAM_STEP_FIXED)
    }

    /// Entries the Adam steps of one epoch of an IPS policy move.
    fn ips_adam_entries(&self, p: &PrrParams) -> f64 {
        let (batch, dim) = (p.batch as f64, p.model_dim as f64);
        (p.logs as f64 / batch).ceil() * ips_adam_entries(self.items, dim, clicked_share(self.slate_size()), batch)
    }

    fn curve_users(&self, p: &PrrParams) -> f64 {
        // The toy world's population is its logged sessions.
        (p.main_world().users as f64).min(CURVE_USERS as f64)
    }

    /// Scoring steps of one learned policy's curve: its slate for every curve user and size
    /// after every epoch.
    fn curve_steps(&self, p: &PrrParams) -> f64 {
        let sizes = self.max_size - self.min_size + 1.0;
        let per_epoch = self.items * (p.model_dim as f64 + 2.0) + SLATE_FIXED_SCORING_STEPS;
        self.curve_users(p) * sizes * p.epochs as f64 * per_epoch
    }

    /// (slate, user) evaluations of the scatter (none when it is too large or the logging is not
    /// uniform): a true CTR counts 1, a model's prediction 2.
    fn scatter_evaluations(&self, p: &PrrParams) -> f64 {
        let slates: f64 = (0..self.min_size as u32).map(|j| self.items - j as f64).product();
        if p.logging != "uniform" || slates * self.contexts > SCATTER_MAX_POINTS {
            return 0.0;
        }
        let predictors = p.methods.iter().filter(|m| matches!(**m, "prr" | "reward")).count() as f64;
        // The toy world's population is its logged sessions.
        slates * p.main_world().users as f64 * (1.0 + 2.0 * predictors)
    }

    /// Time (ns) of training method `name` here, with its curve on the main world; nothing for
    /// the oracle and the random policy.
    fn training_ns(&self, p: &PrrParams, name: &str) -> f64 {
        let epochs = p.epochs as f64;
        let curve = if self.detail { self.curve_steps(p) * NS_PER_CURVE_STEP } else { 0.0 };
        if variant(name).is_some() {
            epochs * (self.model_steps(p, name) * NS_PER_MODEL_STEP + self.model_adam_entries(p) * NS_PER_ADAM_ENTRY) + curve
        } else if objective(name).is_some() {
            epochs
                * (self.ips_steps(p) * NS_PER_IPS_STEP
                    + self.ips_clicked_rows(p) * NS_PER_IPS_CLICKED_ROW
                    + self.ips_adam_entries(p) * NS_PER_ADAM_ENTRY)
                + curve
        } else {
            0.0
        }
    }
}

/// The work of timing jobs (some of [`timing_jobs`]): their trainings timed over ≈ 30 ms of clock
/// each, and the item-dimensions of their slate-IPS epochs where those are slow (large P).
fn timing_steps(p: &PrrParams, jobs: &[Vec<u32>]) -> (f64, f64) {
    let (batch, dim) = (p.batch as f64, p.model_dim as f64);
    let runs: Vec<f64> = jobs.iter().flatten().map(|&items| items as f64).collect();
    let timed_trainings = 2.0 * runs.len() as f64;
    let examples = TIMING_EXAMPLES as f64;
    let timed_ips: f64 = runs
        .iter()
        .map(|&items| {
            let clicked = clicked_share((p.slate_size as f64).min(items));
            let adam = (examples / batch).ceil() * ips_adam_entries(items, dim, clicked, batch);
            TIMED_SLOW_EPOCHS * (examples * ips_row_steps(items, dim, clicked) + adam * NS_PER_ADAM_ENTRY / NS_PER_TIMED_IPS_STEP)
        })
        .sum();
    (timed_trainings, timed_ips)
}

/// A job's time natively (ns) for placing it on a part: its trainings (and for a sweep world, its
/// logging), not its A/B tests (see [`assignment`]).
fn placement_cost(p: &PrrParams, job: Job) -> f64 {
    match job {
        Job::Timing(group) => {
            let jobs = timing_jobs(p);
            let (timed_trainings, timed_ips) = timing_steps(p, &jobs[group as usize..=group as usize]);
            timed_trainings * NS_PER_TIMED_TRAINING + timed_ips * NS_PER_TIMED_IPS_STEP
        }
        Job::Main(u) => {
            let world = world_cost(p, job).expect("the main world");
            let units = main_units(p);
            let scatter =
                if u as usize == scatter_unit(p, &units) { world.scatter_evaluations(p) * NS_PER_SCATTER_EVALUATION } else { 0.0 };
            units[u as usize].iter().map(|&m| world.training_ns(p, p.methods[m as usize])).sum::<f64>() + scatter
        }
        Job::SweepK(_) | Job::SweepP(_) => {
            let world = world_cost(p, job).expect("a sweep world");
            world.logged_positions(p) * NS_PER_LOGGED_POSITION
                + world.marginal_steps(p) * NS_PER_MARGINAL_STEP
                + p.methods.iter().map(|name| world.training_ns(p, name)).sum::<f64>()
        }
    }
}

/// A logged row's fixed work (drawing the user, the propensities, the rows' copies for both
/// kinds of learners), in slate positions.
const LOG_ROW_FIXED_POSITIONS: f64 = 8.0;
/// An A/B impression's fixed work (drawing the user, the slate's buffers), in slate positions.
const AB_FIXED_POSITIONS: f64 = 3.0;
/// A deterministic slate's fixed work (buffers, the position order, its expected reward), in
/// item-scoring steps.
const SLATE_FIXED_SCORING_STEPS: f64 = 270.0;
/// A click model's row: fixed work (the shuffle, θ_0, its buffers) in position-dimensions.
const MODEL_ROW_FIXED: f64 = 72.0;
/// A click model's position: its four exps, in dimensions.
const MODEL_POSITION_FIXED: f64 = 10.0;
/// An IPS row without a click (skipped), in item-dimensions.
const IPS_UNCLICKED_ROW: f64 = 4.0;
/// An Adam step's fixed work (the batch's bookkeeping, the bias correction), in entries.
const ADAM_STEP_FIXED: f64 = 20.0;
/// Epochs of a timed slate-IPS training whose epoch is slow (≥ 15 ms): its first 3 already
/// span the clock [`ms_per_epoch`] reads (faster trainings fit in its 30 ms).
const TIMED_SLOW_EPOCHS: f64 = 3.0;

/// ns per logged slate position.
const NS_PER_LOGGED_POSITION: f64 = 53.2;
/// ns per (quadrature node, item, inner multiply-add) of the popularity policy's marginals.
const NS_PER_MARGINAL_STEP: f64 = 0.586;
/// ns per position-dimension of a click model's gradient (PRR and its ablations).
const NS_PER_MODEL_STEP: f64 = 2.91;
/// ns per item-dimension of an IPS softmax gradient.
const NS_PER_IPS_STEP: f64 = 1.29;
/// ns of an IPS learner's fixed work per clicked row.
const NS_PER_IPS_CLICKED_ROW: f64 = 2870.0;
/// ns per parameter entry an Adam step moves.
const NS_PER_ADAM_ENTRY: f64 = 10.4;
/// ns per slate position of an A/B impression, besides ranking the catalogue.
const NS_PER_AB_POSITION: f64 = 30.1;
/// ns per item-scoring step of an A/B impression (a multiply-add of g(z)·Ψ_a, or the top-K
/// comparison).
const NS_PER_SCORING_STEP: f64 = 0.453;
/// ns per item-scoring step of the curves' exact CTR after each epoch.
const NS_PER_CURVE_STEP: f64 = 0.393;
/// ns per (slate, user) evaluation of the scatter (a true CTR counts 1, a model's prediction 2).
const NS_PER_SCATTER_EVALUATION: f64 = 39.3;
/// ns per timed training: mostly the ≈ 30 ms of clock [`ms_per_epoch`] times it over.
const NS_PER_TIMED_TRAINING: f64 = 3.70e7;
/// ns per item-dimension of a timed slate-IPS epoch (its Adam entries converted at
/// [`NS_PER_ADAM_ENTRY`]).
const NS_PER_TIMED_IPS_STEP: f64 = 0.900;

/// What the lesson's text states about its results (see [`crate::core::claims`]).
const CLAIMS: &[Claim<PrrReport>] = &[Claim {
    sentence: "costs $O(K)$ per logged row whatever the catalogue size",
    asserts: "over the timed catalogues (P up a thousandfold), PRR's epoch time grows less than √P does (memory effects \
              only; an O(P) cost would grow about as P does), and slate IPS's grows at least 10× more than PRR's",
    check: prr_epoch_flat_in_p,
}];

fn prr_epoch_flat_in_p(r: &PrrReport) -> Option<Result<(), String>> {
    let (first, last) = (r.timing.first()?, r.timing.last()?);
    if last.items < 100 * first.items {
        return None; // too narrow a range to say anything about growth
    }
    let prr = last.prr_ms_per_epoch / first.prr_ms_per_epoch;
    let ips = last.slate_ips_ms_per_epoch / first.slate_ips_ms_per_epoch;
    let p_growth = last.items as f64 / first.items as f64;
    // √P, not a fixed fraction of P: how much a larger table misses the caches depends on the
    // machine (×5 to ×11 over P ×1000 on the machines this ran on), an O(P) cost does not.
    Some(if prr < p_growth.sqrt() && ips > 10.0 * prr {
        Ok(())
    } else {
        Err(format!("from P = {} to {}: PRR ×{prr:.1}, slate IPS ×{ips:.1}", first.items, last.items))
    })
}

impl Experiment for PrrLesson {
    fn claims() -> &'static [Claim<PrrReport>] {
        CLAIMS
    }

    const GRAPH: Graph = PRR_GRAPH;
    const TIMINGS: &'static [&'static str] = &[
        "main.methods.epoch_ms",
        "sweep_k.methods.epoch_ms",
        "sweep_p.methods.epoch_ms",
        "timing.prr_ms_per_epoch",
        "timing.slate_ips_ms_per_epoch",
    ];
    type Params = PrrParams;
    type Report = PrrReport;
    type Partial = Vec<(u32, JobResult)>;

    fn parts(params: &Checked<PrrParams>) -> u32 {
        jobs(params).len() as u32
    }

    fn estimate(params: &Checked<PrrParams>) -> Estimate {
        let p: &PrrParams = params;
        let (epochs, dim) = (p.epochs as f64, p.model_dim as f64);
        let impressions = p.impressions as f64;
        let count = |is: fn(&str) -> bool| p.methods.iter().filter(|m| is(m)).count() as f64;
        let models = count(|m| variant(m).is_some());
        let ips = count(|m| objective(m).is_some());
        let learned = models + ips;
        let tested = p.methods.len() as f64;
        let oracle = count(|m| m == "oracle");
        let (mut logged, mut marginals, mut model_steps, mut ips_steps, mut ips_rows, mut adam) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut ab, mut ranking, mut curves, mut scatter) = (0.0, 0.0, 0.0, 0.0);
        for w in world_costs(p) {
            let k = w.slate_size();
            logged += w.logged_positions(p);
            marginals += w.marginal_steps(p);
            model_steps += epochs * p.methods.iter().filter(|m| variant(m).is_some()).map(|m| w.model_steps(p, m)).sum::<f64>();
            ips_steps += epochs * ips * w.ips_steps(p);
            ips_rows += epochs * ips * w.ips_clicked_rows(p);
            adam += epochs * (models * w.model_adam_entries(p) + ips * w.ips_adam_entries(p));
            ab += impressions * tested * (k + AB_FIXED_POSITIONS);
            // Learned policies and the oracle rank the whole catalogue for each slate.
            ranking += impressions * w.items * (learned * (dim + 2.0) + oracle * 2.0);
            if w.detail {
                // The oracle's and random's slates for every curve user and size, once.
                let sizes = w.max_size - w.min_size + 1.0;
                curves += learned * w.curve_steps(p) + w.curve_users(p) * sizes * (2.0 * w.items + 2.0 * SLATE_FIXED_SCORING_STEPS);
                scatter += w.scatter_evaluations(p);
            }
        }
        let (timed_trainings, timed_ips) = timing_steps(p, &timing_jobs(p));
        Estimate::new()
            .term("logging the impressions", &["logs", "sweep"], logged, NS_PER_LOGGED_POSITION)
            .term(
                "computing the popularity policy's position propensities",
                &["items", "slate_size", "sweep"],
                marginals,
                NS_PER_MARGINAL_STEP,
            )
            .term("training PRR and its ablations", &["logs", "epochs", "methods", "slate_size", "sweep"], model_steps, NS_PER_MODEL_STEP)
            .term(
                "training the IPS policies (a softmax over all P items per clicked row)",
                &["logs", "epochs", "items", "model_dim", "methods", "sweep"],
                ips_steps,
                NS_PER_IPS_STEP,
            )
            .term(
                "the IPS policies' fixed work per clicked row",
                &["logs", "epochs", "slate_size", "methods", "sweep"],
                ips_rows,
                NS_PER_IPS_CLICKED_ROW,
            )
            .term(
                "updating the learned parameters (Adam)",
                &["logs", "epochs", "items", "model_dim", "methods", "sweep"],
                adam,
                NS_PER_ADAM_ENTRY,
            )
            .term("A/B testing the policies", &["impressions", "methods", "sweep"], ab, NS_PER_AB_POSITION)
            .term(
                "ranking the catalogue for each A/B impression",
                &["impressions", "items", "model_dim", "methods", "sweep"],
                ranking,
                NS_PER_SCORING_STEP,
            )
            .term("tracking the training curves", &["epochs", "items", "model_dim", "methods"], curves, NS_PER_CURVE_STEP)
            .term("comparing each slate's estimates with the truth", &["users"], scatter, NS_PER_SCATTER_EVALUATION)
            .term("timing epochs as P grows", &["timing_max_items"], timed_trainings, NS_PER_TIMED_TRAINING)
            .term("timing slate-IPS epochs at the largest P", &["timing_max_items", "model_dim"], timed_ips, NS_PER_TIMED_IPS_STEP)
    }

    /// One query per term where it dominates (in this order), the defaults last.
    const CALIBRATION: &'static [&'static str] = &[
        "world=synthetic&slate_size=10&sweep=k&logs=500000&methods=oracle,random&epochs=1&impressions=100&timing_max_items=100",
        "world=synthetic&items=20000&slate_size=10&sweep=k&logging=popularity&methods=oracle,random&logs=1000&epochs=1\
         &impressions=100&timing_max_items=100",
        "methods=prr,prr-bias,ranking,reward&logs=50000&epochs=40&impressions=100&timing_max_items=100",
        "world=synthetic&items=2000&methods=slate-ips,iips&epochs=20&impressions=100&timing_max_items=100",
        "world=synthetic&batch=1&model_dim=32&methods=slate-ips,iips&epochs=10&impressions=100&timing_max_items=100",
        "world=synthetic&items=20&slate_size=10&methods=slate-ips,top-k-iips&logs=50000&epochs=40&impressions=100&timing_max_items=100",
        "epochs=1&logs=100&impressions=2000000&timing_max_items=100",
        "world=synthetic&items=20000&model_dim=24&methods=oracle,prr,slate-ips&epochs=1&logs=100&impressions=10000&timing_max_items=100",
        "world=synthetic&items=20000&logs=100&epochs=40&impressions=100&methods=prr,iips&timing_max_items=100",
        "world=synthetic&items=2000&slate_size=1&contexts=1&users=5000&methods=prr,reward&logs=1000&epochs=1&impressions=100\
         &timing_max_items=100",
        "methods=oracle&logs=100&impressions=100&epochs=1&model_dim=2&timing_max_items=10000",
        "methods=oracle&logs=100&impressions=100&epochs=1&model_dim=16",
        "",
    ];

    fn run_part(params: &Checked<PrrParams>, part: Part, cache: &mut StageCache, progress: &mut dyn Progress) -> Vec<(u32, JobResult)> {
        let p: &PrrParams = params;
        let all = jobs(p);
        let mine = part.jobs_placed(&assignment(p, &all, part.count, part.preview));
        let count = mine.len().max(1) as f64;
        let mut out = Vec::new();
        for (i, &j) in mine.iter().enumerate() {
            let mut stage = staged(progress, i as f64 / count, (i + 1) as f64 / count);
            let result = match all[j] {
                Job::Main(unit) => JobResult::Main(run_main_unit(p, unit as usize, cache, &mut stage)),
                // A preview leaves the timing out unless it is cached: a clock-bound job that
                // would delay the first look (the full run, next, measures it).
                Job::Timing(group) => {
                    JobResult::Timing(timing_stage(p, group, !part.preview, cache, &mut stage).map_or_else(Vec::new, |t| t.0.clone()))
                }
                Job::SweepK(k) => JobResult::SweepK(run_world(&p.k_point(k), cache, &mut stage)),
                Job::SweepP(items) => JobResult::SweepP(run_world(&p.p_point(items), cache, &mut stage)),
            };
            out.push((j as u32, result));
        }
        progress.report(1.0, "done");
        out
    }

    /// A twentieth of the epochs on the main world, A/B tested on a quarter of the impressions
    /// (at least 1,000): no sweep, and the epoch timing at P = 100 only (which the page's preview
    /// parts leave out unless cached, see [`Part::preview`]) (the full run's logs are
    /// the preview's; its learned policies, trained longer, are A/B tested anew anyway, and only
    /// the oracle's and the random policy's A/B tests are computed twice). The default's
    /// preview (2 of 40 epochs) computes in ~0.52 s natively, 0.66 s with a tenth. On the
    /// synthetic world with K = 5 the A/B test of its ten policies on all 20,000 impressions was a
    /// quarter of it: 0.68 s natively, 0.51 s on 5,000.
    fn preview(params: &Checked<PrrParams>) -> Option<(PrrParams, String)> {
        Some(cheaper_look(params, 1, 4))
    }

    /// When the page opens: the preview on a quarter of the logs (at least 1,000 rows), as the
    /// capstone's does. The default's preview took ~0.48 s natively and about 1 s to the page's
    /// first figure; on a quarter of the logs it takes ~0.29 s. (The full run that follows logs
    /// its own rows; a change's preview keeps the full run's logs, which it shares.)
    fn first_look(params: &Checked<PrrParams>) -> Option<(PrrParams, String)> {
        Some(cheaper_look(params, 4, 4))
    }

    /// While a slider is dragged: the first look, A/B tested on a sixteenth of the impressions (at
    /// least 1,000). A drag of K changes the world, so every value it previews trains anew: at
    /// K = 8 the change's preview (2 epochs on all the logs, then 5,000 impressions per policy)
    /// took 134–143 ms per part natively, about 250 ms in the page; this takes 35–37 ms. (Its
    /// quarter of the logs is the first look's: a drag of a knob that keeps the world, right after
    /// the page opened, finds those logs and trainings cached.)
    fn drag_preview(params: &Checked<PrrParams>) -> Option<(PrrParams, String)> {
        Some(cheaper_look(params, 4, 16))
    }

    fn merge(params: &Checked<PrrParams>, partials: Vec<Vec<(u32, JobResult)>>) -> PrrReport {
        let p: &PrrParams = params;
        let mut results: Vec<(u32, JobResult)> = partials.into_iter().flatten().collect();
        results.sort_by_key(|r| r.0);
        let (mut main, mut timing, mut sweep_k, mut sweep_p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut timing_pending = false;
        for (_, r) in results {
            match r {
                JobResult::Main(unit) => main.push(unit),
                JobResult::Timing(t) => {
                    // A preview's group that was not cached.
                    timing_pending |= t.is_empty();
                    timing.extend(t);
                }
                JobResult::SweepK(w) => sweep_k.push(w),
                JobResult::SweepP(w) => sweep_p.push(w),
            }
        }
        let main = main_world_result(main);
        // The sweep points in order, the main world's in its place.
        let (mut computed_k, mut computed_p) = (sweep_k.into_iter(), sweep_p.into_iter());
        let (mut sweep_k, mut sweep_p) = (Vec::new(), Vec::new());
        for point in sweep_points(p) {
            let (out, computed) = match point {
                Job::SweepK(_) => (&mut sweep_k, &mut computed_k),
                _ => (&mut sweep_p, &mut computed_p),
            };
            out.push(if is_main_world(p, point) { as_sweep_point(&main) } else { computed.next().expect("every sweep point ran") });
        }
        PrrReport {
            world: if p.world == "toy" { "toy".into() } else { format!("synthetic, P = {}, K = {}", p.items, p.slate_size) },
            logs: p.logs as u32,
            impressions: p.impressions as u32,
            epochs: p.epochs as u32,
            main,
            published_setting: p.published_setting() as u32,
            sweep_k,
            sweep_p,
            timing_pending,
            timing,
        }
    }
}

pub fn model_examples(world: &World, data: &LoggedData) -> Vec<Example> {
    data.rows.iter().map(|r| Example::from_logged(world, r)).collect()
}

pub fn logged_examples(world: &World, data: &LoggedData) -> Vec<LoggedExample> {
    data.rows
        .iter()
        .map(|r| LoggedExample {
            category: world.users[r.user as usize].category,
            slate: r.slate.clone(),
            clicks: r.clicks.clone(),
            slate_propensity: r.slate_propensity,
            position_propensity: r.position_propensity.clone(),
        })
        .collect()
}

/// Stage results, each a pure function of its key (timings aside).
struct WorldStage(World);

/// A world's logged impressions, as the two kinds of learners read them.
struct Logs {
    model_rows: Vec<Example>,
    ips_rows: Vec<LoggedExample>,
    logged: MeanSe,
    policy: LoggingKind,
}

/// One learned method after training.
struct Training {
    trained: Trained,
    /// Mean training loss (or IPS objective) per epoch.
    loss: Vec<f64>,
    /// Exact CTR on the curves' users after each epoch, when tracked.
    curve: Option<Vec<f64>>,
    epoch_ms: f64,
}

/// An A/B test's CTR, and its per-impression expected rewards (for paired differences; empty
/// above [`PAIRED_MAX_IMPRESSIONS`]).
struct AbResult {
    summary: MeanSe,
    rewards: Vec<f32>,
}

struct CurveReferences {
    oracle: f64,
    random: f64,
}

/// The scatter of the main world (see [`scatter`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scatter {
    pub points: Vec<SlatePoint>,
    pub slate_size: u32,
}

struct Timing(Vec<TimingPoint>);

fn strings_footprint(strings: &[String]) -> usize {
    strings.iter().map(|s| s.capacity() + PER_BUFFER).sum::<usize>() + bytes_of(strings)
}

impl Footprint for WorldStage {
    fn footprint(&self) -> usize {
        let w = &self.0;
        strings_footprint(&w.item_names)
            + strings_footprint(&w.category_names)
            + bytes_of(&w.item_embeddings)
            + bytes_of(&w.item_topic)
            + bytes_of(&w.item_popularity)
            + bytes_of(&w.category_embeddings)
            + w.users.iter().map(|u| small(&u.engagement)).sum::<usize>()
            + bytes_of(&w.users)
            + bytes_of(&w.position_gamma)
            + bytes_of(&w.position_alpha)
            // The world's private tables g(z)·Ψ_a and their exp: C × P numbers each.
            + 2 * std::mem::size_of::<f64>() * w.items() as usize * w.categories() as usize
    }
}

impl Footprint for Logs {
    fn footprint(&self) -> usize {
        let model: usize = self.model_rows.iter().map(|e| small(&e.engagement) + small(&e.slate)).sum();
        let ips: usize = self.ips_rows.iter().map(|e| small(&e.slate) + small(&e.clicks) + small(&e.position_propensity)).sum();
        model + bytes_of(&self.model_rows) + ips + bytes_of(&self.ips_rows)
    }
}

impl Footprint for Training {
    fn footprint(&self) -> usize {
        let trained = match &self.trained {
            Trained::Model(m) => bytes_of(&m.params),
            Trained::Softmax(s) => bytes_of(&s.params),
            Trained::Oracle | Trained::Random(_) => 0,
        };
        trained + bytes_of(&self.loss) + self.curve.as_deref().map_or(0, bytes_of)
    }
}

impl Footprint for Scatter {
    fn footprint(&self) -> usize {
        // The context's buffer, the slate's buffer and its names.
        let point = |s: &SlatePoint| s.context.capacity() + 2 * PER_BUFFER + strings_footprint(&s.slate);
        self.points.iter().map(point).sum::<usize>() + bytes_of(&self.points)
    }
}

impl Footprint for Timing {
    fn footprint(&self) -> usize {
        bytes_of(&self.0)
    }
}

/// The world `q` describes.
fn world_stage(q: &PrrParams, cache: &mut StageCache) -> Rc<WorldStage> {
    cache.get_or_compute(PRR_GRAPH.key("world", q), |_| WorldStage(q.build_world()))
}

fn logs_stage(q: &PrrParams, world: &World, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Logs> {
    cache.get_or_compute(PRR_GRAPH.key("logs", q), |_| {
        progress.report(0.0, "logging impressions");
        let logging = PlackettLuce::new(world, q.logging_kind());
        let data = log_data(world, &logging, q.logs as u32, q.seed, progress);
        Logs { model_rows: model_examples(world, &data), ips_rows: logged_examples(world, &data), logged: data.ctr(), policy: data.policy }
    })
}

/// Method `name`, at place `m` of the chosen methods, trained on the logs; with `curve`, its
/// exact CTR on the curves' users after each epoch too. A kept training with the curve serves a
/// request without (tracking the curve does not change the training).
#[allow(clippy::too_many_arguments)]
fn training_stage(
    q: &PrrParams,
    name: &str,
    m: u32,
    curve: bool,
    world: &World,
    logs: &Logs,
    cache: &mut StageCache,
    progress: &mut dyn Progress,
) -> Rc<Training> {
    let key = |curve: bool| PRR_GRAPH.key("training", q).with(format_args!("{name}#{m}{}", if curve { "+curve" } else { "" }));
    if !curve {
        if let Some(kept) = cache.get::<Training>(&key(true)) {
            return kept;
        }
    }
    cache.get_or_compute(key(curve), |_| train(q, name, m, curve, world, logs, progress))
}

fn train(q: &PrrParams, name: &str, m: u32, curve: bool, world: &World, logs: &Logs, stage: &mut dyn Progress) -> Training {
    let (items, categories) = (world.items() as usize, world.categories() as usize);
    let positions = world.slate_sizes.max as usize;
    let features = world.users[0].engagement.len();
    let (dim, epochs, batch, lr) = (q.model_dim as usize, q.epochs as u32, q.batch as usize, q.learning_rate);
    let stage_name = format!("training {}", method_label(name));
    stage.report(0.0, &stage_name);
    let mut shuffle = rng::replication(q.seed, m);
    let (mut eval_ms, mut ctr_curve) = (0.0, Vec::new());
    let t0 = stage.now_ms();
    let (trained, loss) = if let Some(v) = variant(name) {
        let mut model = Model::new(v, items, categories, dim, features, positions, q.seed);
        if q.init == "notebook" {
            model.notebook_init(q.seed);
        } else {
            model.calibrate(&logs.model_rows);
        }
        let loss = train_watched(&mut model, &logs.model_rows, epochs, batch, lr, &mut shuffle, |m, epoch, _| {
            stage.report((epoch + 1) as f64 / (epochs + 1) as f64, &stage_name);
            if curve {
                let t = stage.now_ms();
                ctr_curve.push(deterministic_ctr_on(world, &PerCategory::new(ModelPolicy { model: m, label: String::new() }), CURVE_USERS));
                eval_ms += stage.now_ms() - t;
            }
        });
        (Trained::Model(model), loss)
    } else {
        let o = objective(name).unwrap_or_else(|| panic!("{name} learns nothing"));
        let mut policy = SoftmaxPolicy::new(items, categories, dim, q.seed);
        let loss = policy_learning::train_watched(&mut policy, o, &logs.ips_rows, epochs, batch, lr, &mut shuffle, |s, epoch, _| {
            stage.report((epoch + 1) as f64 / (epochs + 1) as f64, &stage_name);
            if curve {
                let t = stage.now_ms();
                ctr_curve.push(deterministic_ctr_on(
                    world,
                    &PerCategory::new(policy_learning::Deployed { policy: s, label: String::new() }),
                    CURVE_USERS,
                ));
                eval_ms += stage.now_ms() - t;
            }
        });
        (Trained::Softmax(policy), loss)
    };
    let train_ms = stage.now_ms() - t0 - eval_ms;
    Training { trained, loss, curve: curve.then_some(ctr_curve), epoch_ms: train_ms / epochs as f64 }
}

/// An A/B test under `key` (an `ab_test` or `reference_ab_test` key).
fn ab_stage(key: Key, cache: &mut StageCache, test: impl FnOnce() -> AbResult) -> Rc<AbResult> {
    cache.get_or_compute(key, |_| test())
}

/// The A/B test's traffic for the world `q` describes (the world itself when it has no other).
fn ab_world_stage(q: &PrrParams, world: &Rc<WorldStage>, cache: &mut StageCache) -> Rc<WorldStage> {
    if q.world != "toy" {
        return world.clone();
    }
    cache.get_or_compute(PRR_GRAPH.key("ab_world", q), |_| WorldStage(q.ab_world().expect("a toy world")))
}

/// Deploy a method on fresh impressions of the world.
fn ab_test(q: &PrrParams, world: &World, trained: &Trained, label: &str) -> AbResult {
    let rewards = ab_test_expected_rewards(world, trained.policy(label).as_ref(), q.impressions as u32, q.seed, &mut ());
    let summary = mean_se(rewards.iter().copied());
    let kept = if q.impressions as u32 <= PAIRED_MAX_IMPRESSIONS { rewards.iter().map(|r| *r as f32).collect() } else { Vec::new() };
    AbResult { summary, rewards: kept }
}

/// Every pair of tested methods' paired difference (both A/B tests kept their rewards).
fn paired_differences(tests: &[(&str, &[f32])]) -> Vec<PairedDifference> {
    let mut out = Vec::new();
    for (i, (first, a)) in tests.iter().enumerate() {
        for (second, b) in &tests[i + 1..] {
            if a.is_empty() || a.len() != b.len() {
                continue;
            }
            let d = mean_se(a.iter().zip(b.iter()).map(|(x, y)| f64::from(*x) - f64::from(*y)));
            out.push(PairedDifference { first: first.to_string(), second: second.to_string(), mean: d.mean, se: d.se });
        }
    }
    out
}

fn curve_references_stage(q: &PrrParams, world: &World, cache: &mut StageCache) -> Rc<CurveReferences> {
    cache.get_or_compute(PRR_GRAPH.key("curve_references", q), |_| {
        // Random: one uniform slate per user and size.
        let uniform = PlackettLuce::new(world, LoggingKind::Uniform);
        CurveReferences {
            oracle: deterministic_ctr_on(world, &Oracle, CURVE_USERS),
            random: deterministic_ctr_on(world, &Logging { policy: &uniform }, CURVE_USERS),
        }
    })
}

/// The scatter with the PRR and Reward models trained at places `prr` and `reward` (if chosen).
fn scatter_stage(
    q: &PrrParams,
    world: &World,
    logs: &Logs,
    prr: Option<(u32, &Training)>,
    reward: Option<(u32, &Training)>,
    cache: &mut StageCache,
) -> Rc<Scatter> {
    let place = |m: Option<(u32, &Training)>| m.map_or("-".to_string(), |(m, _)| m.to_string());
    let key = PRR_GRAPH.key("scatter", q).with(format_args!("prr#{}|reward#{}", place(prr), place(reward)));
    fn model(m: Option<(u32, &Training)>) -> Option<&Model> {
        match m.map(|m| &m.1.trained) {
            Some(Trained::Model(model)) => Some(model),
            _ => None,
        }
    }
    cache.get_or_compute(key, |_| {
        let (points, slate_size) = scatter(world, &logs.ips_rows, logs.policy, model(prr), model(reward));
        Scatter { points, slate_size }
    })
}

/// Timing group `group`; unless `compute`, only if it is cached.
fn timing_stage(p: &PrrParams, group: u32, compute: bool, cache: &mut StageCache, progress: &mut dyn Progress) -> Option<Rc<Timing>> {
    cache.get_or_compute_if(compute, PRR_GRAPH.key("timing", p).with(group), |_| Timing(timing(p, group, progress)))
}

/// The world `q` describes, its logs and its A/B test's traffic.
fn logged_world(q: &PrrParams, cache: &mut StageCache, progress: &mut dyn Progress) -> (Rc<WorldStage>, Rc<Logs>, Rc<WorldStage>) {
    progress.report(0.0, "logging impressions");
    let world = world_stage(q, cache);
    let logs = logs_stage(q, &world.0, cache, &mut staged(progress, 0.0, 0.05));
    let traffic = ab_world_stage(q, &world, cache);
    (world, logs, traffic)
}

/// One chosen method of a world, A/B tested.
struct MethodRun {
    result: MethodResult,
    ab: Rc<AbResult>,
    /// Its training, if it learns.
    training: Option<Rc<Training>>,
}

/// Method `name`, at place `m` of the chosen methods, trained on the logs if it learns (with
/// `curve`, tracking its CTR after each epoch) and A/B tested on `traffic`.
#[allow(clippy::too_many_arguments)]
fn run_method(
    q: &PrrParams,
    name: &str,
    m: u32,
    curve: bool,
    (world, logs, traffic): (&World, &Logs, &World),
    cache: &mut StageCache,
    stage: &mut dyn Progress,
) -> MethodRun {
    let epochs = q.epochs as u32;
    let label = method_label(name);
    let (ab, training) = if variant(name).is_some() || objective(name).is_some() {
        let training = training_stage(q, name, m, curve, world, logs, cache, stage);
        stage.report(epochs as f64 / (epochs + 1) as f64, &format!("A/B test of {label}"));
        let key = PRR_GRAPH.key("ab_test", q).with(format_args!("{name}#{m}"));
        (ab_stage(key, cache, || ab_test(q, traffic, &training.trained, label)), Some(training))
    } else {
        stage.report(epochs as f64 / (epochs + 1) as f64, &format!("A/B test of {label}"));
        let key = PRR_GRAPH.key("reference_ab_test", q).with(name);
        let ab = ab_stage(key, cache, || {
            let reference =
                if name == "oracle" { Trained::Oracle } else { Trained::Random(PlackettLuce::new(world, LoggingKind::Uniform)) };
            ab_test(q, traffic, &reference, label)
        });
        (ab, None)
    };
    let result =
        MethodResult { name: name.to_string(), ctr: ab.summary.mean, se: ab.summary.se, epoch_ms: training.as_ref().map(|t| t.epoch_ms) };
    MethodRun { result, ab, training }
}

/// The staged progress of method `i` of `count` a world runs (after its logging).
fn method_stage(progress: &mut dyn Progress, i: usize, count: usize) -> impl Progress + '_ {
    let count = count.max(1) as f64;
    staged(progress, 0.05 + 0.9 * i as f64 / count, 0.05 + 0.9 * (i + 1) as f64 / count)
}

/// A sweep point's world: log N rows in the world `q` describes, train every chosen method on
/// them and A/B test each (its table only).
fn run_world(q: &PrrParams, cache: &mut StageCache, progress: &mut dyn Progress) -> WorldResult {
    let (world, logs, traffic) = logged_world(q, cache, progress);
    let mut methods = Vec::new();
    for (m, name) in q.methods.iter().enumerate() {
        let mut stage = method_stage(progress, m, q.methods.len());
        methods.push(run_method(q, name, m as u32, false, (&world.0, &logs, &traffic.0), cache, &mut stage).result);
    }
    progress.report(1.0, "done");
    WorldResult::table(world.0.items(), world.0.slate_sizes.max, (logs.logged.mean, logs.logged.se), methods)
}

/// Unit `unit` of the main world's methods (see [`main_units`]): each trained with its curve and
/// A/B tested, keeping its per-impression rewards for the paired differences; the scatter and
/// the world's own numbers if the unit computes them.
fn run_main_unit(p: &PrrParams, unit: usize, cache: &mut StageCache, progress: &mut dyn Progress) -> MainUnit {
    let q = &p.main_world();
    let units = main_units(q);
    let (world, logs, traffic) = logged_world(q, cache, progress);
    let (mut methods, mut trainings) = (Vec::new(), Vec::new());
    for (i, &m) in units[unit].iter().enumerate() {
        let name = q.methods[m as usize];
        let mut stage = method_stage(progress, i, units[unit].len());
        let run = run_method(q, name, m, true, (&world.0, &logs, &traffic.0), cache, &mut stage);
        let curve =
            run.training.as_ref().map(|t| Curve { name: name.to_string(), loss: t.loss.clone(), ctr: t.curve.clone().unwrap_or_default() });
        if let Some(training) = run.training {
            trainings.push((name, m, training));
        }
        methods.push(PlacedMethod { place: m, result: run.result, curve, rewards: run.ab.rewards.clone() });
    }
    let scatter = (unit == scatter_unit(q, &units)).then(|| {
        let find = |wanted: &str| trainings.iter().find(|(name, ..)| *name == wanted).map(|(_, m, t)| (*m, &**t));
        (*scatter_stage(q, &world.0, &logs, find("prr"), find("reward"), cache)).clone()
    });
    let header = (unit == 0).then(|| {
        let references = curve_references_stage(q, &world.0, cache);
        MainHeader {
            items: world.0.items(),
            slate_size: world.0.slate_sizes.max,
            logged_ctr: logs.logged.mean,
            logged_se: logs.logged.se,
            curve_oracle: references.oracle,
            curve_random: references.random,
        }
    });
    progress.report(1.0, "done");
    MainUnit { header, methods, scatter }
}

/// The main world's result from its units' (in any order).
fn main_world_result(units: Vec<MainUnit>) -> WorldResult {
    let (mut header, mut scatter, mut methods) = (None, None, Vec::new());
    for unit in units {
        header = header.or(unit.header);
        scatter = scatter.or(unit.scatter);
        methods.extend(unit.methods);
    }
    methods.sort_by_key(|m| m.place);
    let header = header.expect("the main world's first unit ran");
    let scatter = scatter.expect("the main world's scatter unit ran");
    let tests: Vec<(&str, &[f32])> = methods.iter().map(|m| (m.result.name.as_str(), m.rewards.as_slice())).collect();
    let paired = paired_differences(&tests);
    WorldResult {
        items: header.items,
        slate_size: header.slate_size,
        logged_ctr: header.logged_ctr,
        logged_se: header.logged_se,
        curves: methods.iter().filter_map(|m| m.curve.clone()).collect(),
        methods: methods.into_iter().map(|m| m.result).collect(),
        scatter: scatter.points,
        scatter_slate_size: scatter.slate_size,
        curve_oracle: Some(header.curve_oracle),
        curve_random: Some(header.curve_random),
        paired,
    }
}

/// Every (context, slate) of the smallest slate size, when there are few enough: the true CTR
/// (mean over the context's users), the PRR and Reward models' predictions for the same users,
/// and the IPS estimate from the logged rows (logged by `policy`).
fn scatter(
    world: &World,
    rows: &[LoggedExample],
    policy: LoggingKind,
    prr: Option<&Model>,
    reward: Option<&Model>,
) -> (Vec<SlatePoint>, u32) {
    let size = world.slate_sizes.min;
    let slates: f64 = (0..size).map(|j| (world.items() - j) as f64).product();
    if slates * world.categories() as f64 > SCATTER_MAX_POINTS || policy != LoggingKind::Uniform {
        return (Vec::new(), size);
    }
    let categories = world.categories() as usize;
    // Logged rows of this size, per context: clicks / π₀ summed per slate, and the row count.
    let mut sums: std::collections::HashMap<(u32, Vec<u32>), (f64, u32)> = std::collections::HashMap::new();
    let mut rows_per_context = vec![0u32; categories];
    for r in rows.iter().filter(|r| r.slate.len() as u32 == size) {
        let z = r.category;
        rows_per_context[z as usize] += 1;
        let e = sums.entry((z, r.slate.clone())).or_insert((0.0, 0));
        e.0 += f64::from(u8::from(r.clicks.iter().any(|c| *c > 0))) / r.slate_propensity;
        e.1 += 1;
    }
    let mut users_of: Vec<Vec<u32>> = vec![Vec::new(); categories];
    for (u, user) in world.users.iter().enumerate() {
        users_of[user.category as usize].push(u as u32);
    }
    let mut points = Vec::new();
    for slate in all_slates(world.items(), size) {
        for z in 0..categories as u32 {
            let users = &users_of[z as usize];
            if users.is_empty() {
                continue;
            }
            let mean = |f: &dyn Fn(&crate::core::slate_world::User) -> f64| {
                users.iter().map(|&u| f(&world.users[u as usize])).sum::<f64>() / users.len() as f64
            };
            let predict = |m: Option<&Model>| {
                m.map(|m| {
                    mean(&|u| {
                        m.click_probability(&Example { category: z, engagement: u.engagement.clone(), slate: slate.clone(), outcome: 0 })
                    })
                })
            };
            let (sum, rows) = sums.get(&(z, slate.clone())).copied().unwrap_or((0.0, 0));
            points.push(SlatePoint {
                context: world.category_names[z as usize].clone(),
                slate: slate.iter().map(|&a| world.item_names[a as usize].clone()).collect(),
                truth: mean(&|u| world.expected_reward(u, &slate)),
                prr: predict(prr),
                reward: predict(reward),
                ips: sum / rows_per_context[z as usize].max(1) as f64,
                rows,
            });
        }
    }
    (points, size)
}

/// Time epochs of PRR and slate IPS over the same logged rows as P grows: PRR's cost per row is
/// O(K·d), slate IPS's O(P·d) (on clicked rows: the softmax normaliser).
fn timing(p: &PrrParams, group: u32, progress: &mut dyn Progress) -> Vec<TimingPoint> {
    let runs = timing_jobs(p).into_iter().nth(group as usize).unwrap_or_default();
    let mut points = Vec::new();
    for (i, &items) in runs.iter().enumerate() {
        let mut stage = staged(progress, i as f64 / runs.len() as f64, (i + 1) as f64 / runs.len() as f64);
        stage.report(0.0, &format!("timing epochs at P = {items}"));
        let point = timing_point(p, items, &mut stage);
        if i > 0 {
            points.push(point);
        }
    }
    points
}

/// Milliseconds per epoch of `train(epochs, tick)`, which builds a fresh model and calls `tick`
/// after each epoch. The time between ticks excludes allocating the optimiser (O(P) for any
/// method) and the first epoch (a fresh model's first touch of its memory). A first 3-epoch run
/// reads the clock over its last two epochs; when those took under [`TIMED_CLOCK_MS`], a second
/// run lasts about that long, so that a browser's coarse clock still reads it well.
fn ms_per_epoch(clock: &mut dyn Progress, train: &mut dyn FnMut(u32, &mut dyn FnMut())) -> f64 {
    let mut timed = |epochs: u32| {
        let mut stamps = vec![clock.now_ms()];
        train(epochs, &mut || stamps.push(clock.now_ms()));
        let span = stamps[stamps.len() - 1] - stamps[1];
        (span / (stamps.len() - 2) as f64, span)
    };
    let (per_epoch, span) = timed(3);
    if span >= TIMED_CLOCK_MS {
        return per_epoch;
    }
    timed(((TIMED_CLOCK_MS / f64::max(per_epoch, 1e-3)).ceil() as u32).clamp(3, 100)).0
}

/// Clock (ms) a timed training is read over: 300 ticks of Chromium's clock in a worker that is
/// not cross-origin isolated (0.1 ms), 30 of Firefox's default (1 ms). It was 60 ms, which made
/// the fast sizes' timing most of the job.
const TIMED_CLOCK_MS: f64 = 30.0;

/// Epoch time of PRR and slate IPS on the same 2,000 logged rows of a synthetic world with
/// `items` items (the benchmarks call this too).
pub fn timing_point(p: &PrrParams, items: u32, stage: &mut dyn Progress) -> TimingPoint {
    let dim = p.model_dim as usize;
    let k = (p.slate_size as u32).min(items);
    let world = p.synthetic_world(items, k, 200);
    let data = log_data(&world, &PlackettLuce::new(&world, LoggingKind::Uniform), TIMING_EXAMPLES, p.seed, &mut ());
    let (model_rows, ips_rows) = (model_examples(&world, &data), logged_examples(&world, &data));
    let clicked = ips_rows.iter().filter(|r| r.clicks.iter().any(|c| *c > 0)).count() as u32;
    let (categories, features) = (world.categories() as usize, world.users[0].engagement.len());
    let batch = p.batch as usize;
    let mut shuffle = rng::seeded(p.seed, rng::Stream::Sweep);
    let prr_ms = ms_per_epoch(stage, &mut |epochs, tick| {
        let mut model = Model::new(Variant::Prr, items as usize, categories, dim, features, k as usize, p.seed);
        model.calibrate(&model_rows);
        train_watched(&mut model, &model_rows, epochs, batch, p.learning_rate, &mut shuffle, |_, _, _| tick());
    });
    stage.report(0.5, &format!("timing epochs at P = {items}"));
    let ips_ms = ms_per_epoch(stage, &mut |epochs, tick| {
        let mut policy = SoftmaxPolicy::new(items as usize, categories, dim, p.seed);
        policy_learning::train_watched(
            &mut policy,
            Objective::SlateIps,
            &ips_rows,
            epochs,
            batch,
            p.learning_rate,
            &mut shuffle,
            |_, _, _| tick(),
        );
    });
    TimingPoint { items, examples: TIMING_EXAMPLES, clicked, prr_ms_per_epoch: prr_ms, slate_ips_ms_per_epoch: ips_ms }
}

impl Footprint for AbResult {
    fn footprint(&self) -> usize {
        bytes_of(&self.rewards)
    }
}

crate::no_heap_footprint!(CurveReferences);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::experiment::{merge_query, run_part_query, run_query};
    use crate::core::params::check;

    /// Small worlds, a few epochs: every knob gets a couple of values (toy and small synthetic
    /// worlds have a scatter; method lists that move a method's place; every sweep).
    const WALK_BASE: &str = "world=synthetic&items=10&slate_size=2&contexts=3&engagement_features=2&users=150&logs=400&model_dim=3\
                             &epochs=3&batch=64&impressions=300&timing_max_items=100";
    const WALK_CHOICES: &[(&str, &[&str])] = &[
        ("slate_size", &["2", "3", "5"]),
        ("world", &["toy", "synthetic"]),
        ("items", &["10", "30"]),
        ("epochs", &["2", "3"]),
        (
            "methods",
            &["oracle,random,prr,reward", "prr,reward,iips", "random,prr-bias,ranking,slate-ips", "oracle,prr,top-k-slate-ips,top-k-iips"],
        ),
        ("sweep", &["none", "k", "p", "both"]),
        ("logs", &["300", "400"]),
        ("seed", &["1", "2"]),
        ("click_model", &["prr", "pbm"]),
        ("contexts", &["3", "4"]),
        ("engagement_features", &["2", "3"]),
        ("users", &["150", "200"]),
        ("logging", &["uniform", "popularity"]),
        ("model_dim", &["3", "4"]),
        ("batch", &["64", "100"]),
        ("learning_rate", &["0.03", "0.1"]),
        ("impressions", &["300", "400"]),
        ("timing_max_items", &["100", "1000"]),
    ];

    #[test]
    fn a_walk_through_parameter_changes_gives_what_a_fresh_run_gives() {
        let stats = crate::core::stages::tests::walk::<PrrLesson>(WALK_BASE, WALK_CHOICES, 40, 1571);
        assert!(stats.hits > 10, "{stats:?}");
    }

    #[test]
    fn the_stages_of_a_world_are_keyed_by_that_world() {
        let p = PrrParams { world: "synthetic", items: 50, slate_size: 4, ..PrrParams::default() };
        let key = |stage, q: &PrrParams| PRR_GRAPH.key(stage, q);
        // A K point at the main K is the main world; a P point at the main P too.
        assert_eq!(key("training", &p.k_point(4)), key("training", &p.main_world()));
        assert_eq!(key("logs", &p.p_point(50)), key("logs", &p.main_world()));
        assert_ne!(key("world", &p.k_point(6)), key("world", &p.main_world()));
        // The toy world ignores the synthetic world's knobs; the sweep and the methods are no
        // input of a world's training.
        let toy = PrrParams { world: "toy", ..p.clone() };
        let toy2 = PrrParams { world: "toy", items: 80, slate_size: 2, contexts: 7, sweep: "k", ..p.clone() };
        assert_eq!(key("training", &toy.main_world()), key("training", &toy2.main_world()));
        let fewer = PrrParams { methods: vec!["prr"], ..p.clone() };
        assert_eq!(key("ab_test", &p), key("ab_test", &fewer));
        assert_ne!(key("ab_test", &p), key("ab_test", &PrrParams { epochs: 3, ..p.clone() }));
        // Timing reads K but none of the main world's logging, epochs or methods.
        let other = PrrParams { epochs: 3, logs: 1000, methods: vec!["prr"], world: "toy", items: 7, ..p.clone() };
        assert_eq!(key("timing", &p), key("timing", &other));
    }

    /// CPU time of this thread (ms, 10 ms ticks): what a run costs whatever else the machine runs.
    fn thread_cpu_ms() -> f64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |s| s.1).split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
        (tick(11) + tick(12)) * 10.0
    }

    /// Times the browser's two workers (one cache each; the parts run one after the other here)
    /// at the lesson's defaults on the synthetic world: a cold run, then one knob changed at a
    /// time, each query twice; then where a cold main world's time goes, and what each job costs
    /// from scratch. `cargo test --lib --release -- --ignored --nocapture stage_times`
    #[test]
    #[ignore]
    fn stage_times() {
        use crate::core::experiment::run_part_query_cached;
        use crate::core::params::from_query;
        use crate::core::progress::Timed;
        use crate::core::stages::WORKER_BUDGET_BYTES;
        let start = std::time::Instant::now();
        let now = || start.elapsed().as_secs_f64() * 1e3;
        let mut clock = Timed { report: |_: f64, _: &str| {}, clock: now };
        let mut caches: Vec<StageCache> = (0..2).map(|_| StageCache::new(WORKER_BUDGET_BYTES)).collect();
        let base = "world=synthetic";
        let query_of = |change: &str| {
            let (params, issues) = from_query::<PrrParams>(&format!("{base}{change}"));
            assert!(issues.is_empty(), "{issues:?}");
            (crate::core::params::to_query(&*params), params)
        };
        let all_but = |dropped: &str| {
            let kept: Vec<&str> = METHODS.iter().map(|m| m.0).filter(|m| *m != dropped).collect();
            format!("&methods={}", kept.join(","))
        };
        let runs: Vec<(&str, String)> = vec![
            ("cold", String::new()),
            ("slate_size 4→5", "&slate_size=5".into()),
            ("slate_size 4→5 again", "&slate_size=5".into()),
            ("slate_size back to 4", String::new()),
            ("epochs 40→30", "&epochs=30".into()),
            ("epochs 40→30 again", "&epochs=30".into()),
            ("learning_rate 0.03→0.05", "&learning_rate=0.05".into()),
            ("learning_rate 0.03→0.05 again", "&learning_rate=0.05".into()),
            ("impressions 20k→10k", "&impressions=10000".into()),
            ("methods: top-K IIPS off", all_but("top-k-iips")),
            ("methods: top-K IIPS off again", all_but("top-k-iips")),
            ("methods: oracle off (places move)", all_but("oracle")),
            ("methods: oracle off again", all_but("oracle")),
            ("defaults again", String::new()),
            ("sweep k", "&sweep=k".into()),
            ("sweep k again", "&sweep=k".into()),
            ("sweep none again", String::new()),
        ];
        println!("{:<34} {:>20} {:>22}   kept by the workers", "run", "wall ms (parts)", "CPU ms (parts)");
        for (what, change) in &runs {
            let (query, params) = query_of(change);
            let parts = PrrLesson::parts(&params).clamp(1, 2);
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for index in 0..parts {
                let (t, c) = (std::time::Instant::now(), thread_cpu_ms());
                run_part_query_cached::<PrrLesson>(&query, Part::new(index, parts), &mut caches[index as usize], &mut clock).unwrap();
                wall.push(t.elapsed().as_secs_f64() * 1e3);
                cpu.push(thread_cpu_ms() - c);
            }
            let kept: Vec<String> =
                caches.iter().map(|c| format!("{} entries {:.1} MiB", c.len(), c.used_bytes() as f64 / 1048576.0)).collect();
            println!("{what:<34} {:>20} {:>22}   {}", format!("{wall:.0?}"), format!("{cpu:.0?}"), kept.join(", "));
        }
        println!("worker 0: {:?}\nworker 1: {:?}", caches[0].stats, caches[1].stats);
        // A cold main world, by progress message (wall ms; training includes the curve).
        let marks = std::cell::RefCell::new(Vec::<(String, f64)>::new());
        let mut recorder = Timed {
            report: |_: f64, stage: &str| {
                let mut marks = marks.borrow_mut();
                if marks.last().is_none_or(|m| m.0 != stage) {
                    marks.push((stage.to_string(), now()));
                }
            },
            clock: now,
        };
        let (query, params) = query_of("");
        let main = run_part_query_cached::<PrrLesson>(&query, Part::WHOLE, &mut StageCache::disabled(), &mut recorder).unwrap();
        let marks = marks.into_inner();
        for pair in marks.windows(2) {
            println!("  {:<28} {:>6.0} ms", pair[0].0, pair[1].1 - pair[0].1);
        }
        let main: Vec<(u32, JobResult)> = serde_json::from_str(&main).unwrap();
        let ms: Vec<String> = main
            .iter()
            .filter_map(|(_, r)| if let JobResult::Main(unit) = r { Some(&unit.methods) } else { None })
            .flatten()
            .filter_map(|m| m.result.epoch_ms.map(|e| format!("{} {:.0}", m.result.name, e * params.epochs as f64)))
            .collect();
        println!("  training alone (ms): {}", ms.join(", "));
        // Each job from scratch (with both sweeps, and at K = 5): its placement cost and part of two.
        for change in ["&sweep=both", "&slate_size=5"] {
            let (_, params) = query_of(change);
            let all = jobs(&params);
            let part_of = assignment(&params, &all, 2, false);
            for (j, job) in all.iter().enumerate() {
                let (t, c) = (std::time::Instant::now(), thread_cpu_ms());
                let cache = &mut StageCache::disabled();
                match *job {
                    Job::Main(unit) => drop(run_main_unit(&params, unit as usize, cache, &mut clock)),
                    Job::Timing(group) => drop(timing(&params, group, &mut clock)),
                    Job::SweepK(k) => drop(run_world(&params.k_point(k), cache, &mut clock)),
                    Job::SweepP(items) => drop(run_world(&params.p_point(items), cache, &mut clock)),
                }
                println!(
                    "{job:?} (part {}, placed as {:.0} ms): {:.0} ms wall, {:.0} ms CPU",
                    part_of[j],
                    placement_cost(&params, *job) / 1e6,
                    t.elapsed().as_secs_f64() * 1e3,
                    thread_cpu_ms() - c
                );
            }
        }
    }

    #[test]
    fn the_estimate_grows_with_the_sizes_and_the_calibration_queries_are_valid() {
        for query in PrrLesson::CALIBRATION {
            assert!(crate::core::params::parse_strict::<PrrParams>(query).is_ok(), "{query}");
        }
        let seconds = |query: &str| PrrLesson::estimate(&crate::core::params::parse_strict::<PrrParams>(query).unwrap()).native_seconds();
        let base = seconds("world=synthetic");
        let larger = ["logs=40000", "epochs=80", "items=1000", "slate_size=8", "model_dim=24", "impressions=200000", "sweep=k", "sweep=p"];
        for larger in larger {
            assert!(seconds(&format!("world=synthetic&{larger}")) > base, "{larger}");
        }
        assert!(seconds("world=synthetic&timing_max_items=1000") < base);
        assert!(seconds("world=synthetic&batch=16") > base, "smaller batches, more Adam steps");
        assert!(seconds("world=synthetic&logging=popularity") > base);
        // The toy world's population is its logged sessions: the users knob does not change it.
        assert_eq!(seconds("users=20000"), seconds(""));
    }

    #[test]
    fn a_sweep_point_that_is_the_main_world_is_its_table() {
        let q = "world=synthetic&items=50&slate_size=4&contexts=3&users=200&logs=1000&epochs=3&impressions=500\
                 &sweep=both&timing_max_items=100&methods=oracle,prr,iips";
        let p = crate::core::params::parse_strict::<PrrParams>(q).unwrap();
        assert_eq!(jobs(&p).iter().filter(|j| matches!(j, Job::SweepK(_) | Job::SweepP(_))).count(), 5 + 6 - 2);
        let r: PrrReport = serde_json::from_str(&run_query::<PrrLesson>(q, &mut ()).unwrap()).unwrap();
        let without_timings = |w: &WorldResult| {
            let mut w = w.clone();
            w.methods.iter_mut().for_each(|m| m.epoch_ms = m.epoch_ms.map(|_| 0.0));
            w
        };
        let fresh = |q: &PrrParams| without_timings(&run_world(q, &mut StageCache::disabled(), &mut ()));
        assert_eq!(r.sweep_k.iter().map(|w| w.slate_size).collect::<Vec<_>>(), SWEEP_K);
        assert_eq!(r.sweep_p.iter().map(|w| w.items).collect::<Vec<_>>(), [50, 100, 200, 500, 1000, 2000]);
        assert_eq!(without_timings(&r.sweep_k[1]), fresh(&p.k_point(4)));
        assert_eq!(without_timings(&r.sweep_p[0]), fresh(&p.p_point(50)));
        assert_eq!(without_timings(&r.sweep_k[2]), fresh(&p.k_point(6)), "a point of its own");
    }

    #[test]
    fn a_preview_leaves_the_timing_out_unless_cached() {
        use crate::core::stages::{tests::report_of_parts, WORKER_BUDGET_BYTES};
        let q = "logs=1000&epochs=2&impressions=1000&methods=oracle,prr&timing_max_items=100";
        let report = |part: Part, cache: &mut StageCache| report_of_parts::<PrrLesson>(q, &[part], cache);
        let preview = Part { index: 0, count: 1, preview: true };
        let mut cache = StageCache::new(WORKER_BUDGET_BYTES);
        let first = report(preview, &mut cache);
        assert!(first.timing_pending && first.timing.is_empty());
        let full = report(Part::WHOLE, &mut cache);
        assert!(!full.timing_pending && full.timing.len() == 1);
        assert_eq!(first.main, {
            let mut m = full.main.clone();
            m.methods.iter_mut().zip(&first.main.methods).for_each(|(a, b)| a.epoch_ms = b.epoch_ms);
            m
        });
        // Once cached, a preview has it.
        let again = report(preview, &mut cache);
        assert!(!again.timing_pending);
        assert_eq!(again.timing, full.timing);
    }

    #[test]
    fn defaults_are_valid() {
        assert!(check(PrrParams::default()).is_ok());
        assert_eq!(PUBLISHED_CTR.len(), METHODS.len());
    }

    #[test]
    fn parts_give_the_same_report_as_one_run() {
        // PRR and Reward apart in the list: one unit, with the scatter.
        let q = "logs=2000&epochs=5&impressions=2000&sweep=k&items=30&timing_max_items=100&methods=oracle,random,prr,iips,reward";
        let strip = |json: &str| {
            let mut r: PrrReport = serde_json::from_str(json).unwrap();
            r.timing.iter_mut().for_each(|t| (t.prr_ms_per_epoch, t.slate_ips_ms_per_epoch) = (0.0, 0.0));
            for w in std::iter::once(&mut r.main).chain(r.sweep_k.iter_mut()) {
                w.methods.iter_mut().for_each(|m| m.epoch_ms = m.epoch_ms.map(|_| 0.0));
            }
            r
        };
        let whole = strip(&run_query::<PrrLesson>(q, &mut ()).unwrap());
        for count in [2, 3] {
            let parts: Vec<String> = (0..count).map(|i| run_part_query::<PrrLesson>(q, Part::new(i, count), &mut ()).unwrap()).collect();
            assert_eq!(strip(&merge_query::<PrrLesson>(q, &parts).unwrap()), whole, "{count} parts");
        }
        assert_eq!(whole.sweep_k.len(), 5);
        assert_eq!(whole.main.scatter.len(), 42 * 4, "42 slates of size 2 in 4 contexts");
        assert!(whole.main.scatter.iter().all(|s| s.prr.is_some() && s.reward.is_some()));
        assert_eq!(whole.main.curves.len(), 3);
        assert_eq!(whole.main.paired.len(), 10, "every pair of five methods");
        assert_eq!(whole.main.curves[0].ctr.len(), 5);
    }

    #[test]
    fn toy_world_prr_is_near_the_oracle_and_beats_reward_and_random() {
        let q = "logs=20000&epochs=40&methods=oracle,random,prr,reward&timing_max_items=100";
        let r: PrrReport = serde_json::from_str(&run_query::<PrrLesson>(q, &mut ()).unwrap()).unwrap();
        let ctr = |name: &str| r.main.methods.iter().find(|m| m.name == name).unwrap().ctr;
        // Published (toy): Oracle 8.58, PRR 8.56, Reward 7.68, Random 7.22 (%).
        assert!(ctr("oracle") - ctr("prr") < 0.003, "{:?}", r.main.methods);
        assert!(ctr("prr") > ctr("random") + 0.005, "{:?}", r.main.methods);
        // Paired differences agree with the CTRs (rewards kept as f32) and are sharper than
        // independent standard errors.
        let d = r.main.paired_difference("prr", "reward").unwrap();
        let (prr, reward) =
            (r.main.methods.iter().find(|m| m.name == "prr").unwrap(), r.main.methods.iter().find(|m| m.name == "reward").unwrap());
        assert!((d.mean - (prr.ctr - reward.ctr)).abs() < 1e-6, "{d:?}");
        assert!(d.se < (prr.se * prr.se + reward.se * reward.se).sqrt(), "{d:?}");
        // The scatter: PRR's predictions are closer to the truth than the Reward model's.
        let err = |f: &dyn Fn(&SlatePoint) -> f64| r.main.scatter.iter().map(|s| (f(s) - s.truth).abs()).sum::<f64>();
        assert!(err(&|s| s.prr.unwrap()) < err(&|s| s.reward.unwrap()));
    }
}
