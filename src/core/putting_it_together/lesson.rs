//! The lesson "Putting it together": one world with continuous user contexts, logs split three
//! ways, seven candidate policies (PRR with a linear and with a deep query tower among them), each
//! served through the MIPS index, judged offline by five estimators on held-out logs and online
//! by an A/B test on fresh users; and the deep tower's gain as the world's non-linearity grows.

use super::ope::{self, ESTIMATORS};
use super::tower::{Activation, Tower};
use super::ENGAGEMENT_FEATURES;
use super::{
    fit, most_clicked, populations, svd_item_init, Fit, Fixed, Head, Population, Remembered, Scratch, Served, TowerModel, WorldSpec,
};
use crate::core::budget::Estimate;
use crate::core::experiment::{Experiment, Part};
use crate::core::horvitz_thompson::estimators::{estimate, Row};
use crate::core::mips::hnsw::{Config, MipsIndex};
use crate::core::mips::Vectors;
use crate::core::params::{Checked, Issue, Kind, LessonParams, Preset, Spec};
use crate::core::progress::{staged, Progress};
use crate::core::prr::reading::thousands;
use crate::core::rng::{self, Stream};
use crate::core::slate_world::policy::{Logging, LoggingKind, Oracle, PlackettLuce, SlatePolicy};
use crate::core::slate_world::simulate::{ab_test_expected_rewards, log_data, LoggedRow};
use crate::core::stages::{bytes_of, small_buffer_bytes, Footprint, Graph, Stage, StageCache};
use crate::core::stats::{mean_se, MeanSe};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
pub struct CapstoneParams {
    pub nonlinearity: f64,
    pub items: i64,
    pub slate_size: i64,
    pub context_features: i64,
    pub users: i64,
    pub logging: &'static str,
    pub logs: i64,
    pub validation_share: f64,
    pub eval_share: f64,
    pub model_dim: i64,
    pub item_init: &'static str,
    pub hidden_layers: i64,
    pub hidden_width: i64,
    pub activation: &'static str,
    pub epochs: i64,
    pub batch: i64,
    pub learning_rate: f64,
    pub ef_search: i64,
    pub impressions: i64,
    pub sweep: &'static str,
    pub seed: u64,
}

impl Default for CapstoneParams {
    fn default() -> Self {
        CapstoneParams {
            nonlinearity: 0.5,
            items: 200,
            slate_size: 4,
            context_features: 6,
            users: 2000,
            logging: "uniform",
            logs: 20_000,
            validation_share: 0.2,
            eval_share: 0.25,
            model_dim: 8,
            item_init: "svd",
            hidden_layers: 2,
            hidden_width: 32,
            activation: "relu",
            epochs: 20,
            batch: 128,
            learning_rate: 0.01,
            ef_search: 32,
            impressions: 20_000,
            sweep: "on",
            seed: 1,
        }
    }
}

pub const LOGGING: &[(&str, &str)] = &[("uniform", "Uniform without replacement"), ("popularity", "Popularity-proportional")];
pub const ITEM_INITS: &[(&str, &str)] =
    &[("svd", "Randomized SVD of the logged clicks (the embeddings lesson)"), ("random", "Random, N(0, 0.1²)")];
pub const ACTIVATIONS: &[(&str, &str)] = &[("relu", "ReLU"), ("gelu", "GELU")];
pub const SWEEPS: &[(&str, &str)] = &[("on", "Sweep the non-linearity λ (0, ¼, ½, ¾, 1)"), ("off", "No sweep")];

/// The candidates, in display order: (name, label, deployable). The oracle knows the simulator: a
/// reference, never shipped.
pub const CANDIDATES: &[(&str, &str, bool)] = &[
    ("logging", "Logging policy π₀", true),
    ("popularity", "Popularity (most clicked)", true),
    ("linear-prr", "PRR, linear g(z)", true),
    ("deep-prr", "PRR, deep g(z)", true),
    ("deep-reward", "Reward only, deep g(z)", true),
    ("iips", "IIPS policy, deep g(z)", true),
    ("oracle", "Oracle", false),
];

/// The candidates served by a learned model through the MIPS index.
pub const SERVED: &[&str] = &["linear-prr", "deep-prr", "deep-reward", "iips"];
/// The direct method's reward model: a deep PRR trained on the validation split.
const REWARD_MODEL: &str = "reward-model";

pub fn candidate_label(name: &str) -> &'static str {
    match name {
        REWARD_MODEL => "DM reward model (deep PRR on the validation split)",
        _ => CANDIDATES.iter().find(|c| c.0 == name).map_or("?", |c| c.1),
    }
}

/// The non-linearities of the sweep.
pub const SWEEP_POINTS: &[f64] = &[0.0, 0.25, 0.5, 0.75, 1.0];
/// The HNSW graph every served candidate is indexed with (the fast-MIPS lesson's defaults).
pub const INDEX_M: usize = 16;
pub const INDEX_EF_CONSTRUCTION: usize = 100;
/// Slates drawn per held-out row for the direct method's value of the (random) logging policy.
const LOGGING_MODEL_DRAWS: u32 = 16;
/// Fewest rows a split may have.
const MIN_SPLIT_ROWS: u32 = 200;
/// Most affinity entries (users × items, both populations) a tab keeps.
const MAX_AFFINITIES: f64 = 4e6;
/// Most training multiply-adds in one run (about a minute in a tab).
const MAX_TRAINING_FLOPS: f64 = 6e10;

const SPECS: &[Spec] = &[
    Spec {
        name: "nonlinearity",
        label: "World non-linearity λ",
        help: "0: the true query is linear in the context z; 1: a random ReLU network of z",
        kind: Kind::Float { min: 0.0, max: 1.0, log: false },
    },
    Spec { name: "items", label: "Catalogue size P", help: "items in the catalogue", kind: Kind::Int { min: 10, max: 5000, log: true } },
    Spec { name: "slate_size", label: "Slate size K", help: "positions per slate", kind: Kind::Int { min: 1, max: 8, log: false } },
    Spec {
        name: "context_features",
        label: "Context features c",
        help: "dimension of the context z every model's query tower reads",
        kind: Kind::Int { min: 1, max: 16, log: false },
    },
    Spec {
        name: "users",
        label: "Users per population",
        help: "users whose impressions are logged; as many fresh ones meet the A/B test",
        kind: Kind::Int { min: 100, max: 20_000, log: true },
    },
    Spec { name: "logging", label: "Logging policy π₀", help: "the policy that produced the logs", kind: Kind::Choice(LOGGING) },
    Spec {
        name: "logs",
        label: "Logged impressions N",
        help: "split into training, validation and evaluation rows",
        kind: Kind::Int { min: 1000, max: 200_000, log: true },
    },
    Spec {
        name: "validation_share",
        label: "Validation share",
        help: "share of the logs for the curves and the direct method's reward model",
        kind: Kind::Float { min: 0.05, max: 0.8, log: false },
    },
    Spec {
        name: "eval_share",
        label: "Evaluation share",
        help: "share of the logs the off-policy estimators see (no model trains on them)",
        kind: Kind::Float { min: 0.05, max: 0.8, log: false },
    },
    Spec {
        name: "model_dim",
        label: "Embedding dimension d",
        help: "dimension of Ψ and g(z) in every learned model",
        kind: Kind::Int { min: 1, max: 32, log: true },
    },
    Spec { name: "item_init", label: "Item embeddings start", help: "where Ψ starts before fine-tuning", kind: Kind::Choice(ITEM_INITS) },
    Spec {
        name: "hidden_layers",
        label: "Hidden layers",
        help: "of the deep query tower (the linear one has none)",
        kind: Kind::Int { min: 1, max: 3, log: false },
    },
    Spec {
        name: "hidden_width",
        label: "Hidden width",
        help: "units per hidden layer of the deep tower",
        kind: Kind::Int { min: 1, max: 128, log: true },
    },
    Spec { name: "activation", label: "Activation", help: "of the deep tower's hidden layers", kind: Kind::Choice(ACTIVATIONS) },
    Spec { name: "epochs", label: "Epochs", help: "passes over the training rows", kind: Kind::Int { min: 1, max: 200, log: true } },
    Spec { name: "batch", label: "Batch size", help: "rows per Adam step", kind: Kind::Int { min: 1, max: 4096, log: true } },
    Spec {
        name: "learning_rate",
        label: "Learning rate",
        help: "Adam's step size, every model",
        kind: Kind::Float { min: 1e-4, max: 0.3, log: true },
    },
    Spec {
        name: "ef_search",
        label: "ef_search",
        help: "beam width of the HNSW search that serves every learned candidate",
        kind: Kind::Int { min: 1, max: 512, log: true },
    },
    Spec {
        name: "impressions",
        label: "A/B impressions",
        help: "fresh impressions each candidate is deployed on",
        kind: Kind::Int { min: 1000, max: 500_000, log: true },
    },
    Spec {
        name: "sweep",
        label: "Non-linearity sweep",
        help: "retrain both PRR towers in worlds of λ = 0 … 1",
        kind: Kind::Choice(SWEEPS),
    },
    Spec { name: "seed", label: "Seed", help: "same seed and parameters → same numbers", kind: Kind::Seed },
];

impl LessonParams for CapstoneParams {
    fn specs() -> &'static [Spec] {
        SPECS
    }

    crate::fields!(
        nonlinearity,
        items,
        slate_size,
        context_features,
        users,
        logging,
        logs,
        validation_share,
        eval_share,
        model_dim,
        item_init,
        hidden_layers,
        hidden_width,
        activation,
        epochs,
        batch,
        learning_rate,
        ef_search,
        impressions,
        sweep,
        seed
    );

    fn cross_check(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        if self.slate_size > self.items {
            issues.push(Issue {
                param: "slate_size",
                message: format!("a slate of K = {} needs at least {} items, P is {}", self.slate_size, self.slate_size, self.items),
            });
        }
        let (train, validation, evaluation) = self.split_rows();
        if self.validation_share + self.eval_share > 0.9 {
            issues.push(Issue {
                param: "eval_share",
                message: format!(
                    "validation {:.0} % + evaluation {:.0} % leave {:.0} % of the logs for training; keep at least 10 %",
                    100.0 * self.validation_share,
                    100.0 * self.eval_share,
                    100.0 * (1.0 - self.validation_share - self.eval_share)
                ),
            });
        } else {
            for (param, name, rows) in
                [("eval_share", "evaluation", evaluation), ("validation_share", "validation", validation), ("logs", "training", train)]
            {
                if rows < MIN_SPLIT_ROWS {
                    issues.push(Issue {
                        param,
                        message: format!(
                            "the {name} split would have {rows} rows; it needs at least {MIN_SPLIT_ROWS} (raise N or this share)"
                        ),
                    });
                }
            }
        }
        let affinities = 2.0 * self.users as f64 * self.items as f64;
        if affinities > MAX_AFFINITIES {
            issues.push(Issue {
                param: "users",
                message: format!(
                    "2 populations × {} users × {} items = {affinities:.1e} affinities, more than a tab keeps ({MAX_AFFINITIES:.0e}); lower the users or P",
                    self.users, self.items
                ),
            });
        }
        // The IIPS policy's softmax, converted to multiply-adds at the measured times per step.
        let flops = self.training_flops() + self.softmax_steps() * NS_PER_SOFTMAX_STEP / NS_PER_TRAINING_FLOP;
        if flops > MAX_TRAINING_FLOPS {
            issues.push(Issue {
                param: "epochs",
                message: format!(
                    "training would take about {flops:.1e} multiply-adds, more than a tab runs in about a minute ({MAX_TRAINING_FLOPS:.0e}); \
                     lower the epochs, N, the hidden width or P, or turn the sweep off"
                ),
            });
        }
        issues
    }

    fn presets() -> &'static [Preset] {
        PRESETS
    }
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "linear-world",
        label: "Linear world (λ = 0)",
        about: "the true query is a linear map of z: the linear tower can represent it exactly",
        query: "nonlinearity=0",
    },
    Preset {
        name: "nonlinear-world",
        label: "Non-linear world (λ = 1)",
        about: "the true query is a random ReLU network of z: only the deep tower can represent it",
        query: "nonlinearity=1",
    },
    Preset {
        name: "small-catalogue",
        label: "Small catalogue (P = 20, K = 2)",
        about: "few enough slates that slate IPS finds logged rows matching a candidate's slate",
        query: "items=20&slate_size=2",
    },
];

impl CapstoneParams {
    /// Training, validation and evaluation rows.
    pub fn split_rows(&self) -> (u32, u32, u32) {
        let logs = self.logs as f64;
        let validation = (logs * self.validation_share).round() as u32;
        let evaluation = (logs * self.eval_share).round() as u32;
        ((self.logs as u32).saturating_sub(validation + evaluation), validation, evaluation)
    }

    fn world_spec(&self) -> WorldSpec {
        WorldSpec {
            items: self.items as u32,
            slate_size: self.slate_size as u32,
            context_features: self.context_features as u32,
            users: self.users as u32,
            nonlinearity: self.nonlinearity,
            seed: self.seed,
        }
    }

    fn activation(&self) -> Activation {
        if self.activation == "gelu" {
            Activation::Gelu
        } else {
            Activation::Relu
        }
    }

    fn deep_tower(&self) -> Tower {
        Tower::mlp(
            self.context_features as usize,
            self.hidden_layers as usize,
            self.hidden_width as usize,
            self.model_dim as usize,
            self.activation(),
        )
    }

    fn tower_of(&self, name: &str) -> Tower {
        if name == "linear-prr" {
            Tower::linear(self.context_features as usize, self.model_dim as usize)
        } else {
            self.deep_tower()
        }
    }

    /// The parameters a training of `name` sees: the linear tower reads none of the deep tower's
    /// knobs, so they are set to the defaults (a change of the hidden width keeps it).
    fn for_training(&self, name: &str) -> CapstoneParams {
        if name == "linear-prr" {
            let d = CapstoneParams::default();
            CapstoneParams { hidden_layers: d.hidden_layers, hidden_width: d.hidden_width, activation: d.activation, ..self.clone() }
        } else {
            self.clone()
        }
    }

    /// A point of the sweep: this run at another non-linearity.
    fn at(&self, nonlinearity: f64) -> CapstoneParams {
        CapstoneParams { nonlinearity, ..self.clone() }
    }

    fn logging_kind(&self) -> LoggingKind {
        if self.logging == "popularity" {
            LoggingKind::Popularity
        } else {
            LoggingKind::Uniform
        }
    }

    /// Steps of the IIPS policy's softmax over the catalogue: one per item and (2d + 4) work, on the
    /// clicked training rows (about a third) of each epoch and on the validation pass.
    fn softmax_steps(&self) -> f64 {
        let (train, validation, _) = self.split_rows();
        self.epochs as f64 * (train + validation) as f64 / 3.0 * self.items as f64 * (2.0 * self.model_dim as f64 + 4.0)
    }

    /// Multiply-adds of the run's trainings (forward and backward ≈ 3 forward passes per row and
    /// epoch, plus each epoch's validation pass).
    fn training_flops(&self) -> f64 {
        let (train, validation, _) = self.split_rows();
        let (train, validation, epochs) = (train as f64, validation as f64, self.epochs as f64);
        let head = (self.slate_size * self.model_dim) as f64 * 4.0;
        let deep = self.deep_tower().flops() as f64 + head;
        let linear = self.tower_of("linear-prr").flops() as f64 + head;
        let one = |flops: f64, rows: f64, held_out: f64| epochs * (3.0 * rows + held_out) * flops;
        // Deep PRR, reward only and the IIPS policy on the training rows; the reward model on the
        // validation rows; the linear PRR.
        let main = 3.0 * one(deep, train, validation) + one(deep, validation, train) + one(linear, train, validation);
        let sweep = if self.sweep == "on" {
            SWEEP_POINTS.len() as f64 * (one(deep, train, validation) + one(linear, train, validation))
        } else {
            0.0
        };
        main + sweep
    }
}

/// One candidate's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateResult {
    pub name: String,
    pub deployable: bool,
    /// A/B test on fresh users: mean expected reward per impression, and its standard error.
    pub ab_ctr: f64,
    pub ab_se: f64,
    /// One per estimator of [`ESTIMATORS`], in that order.
    pub estimates: Vec<EstimateResult>,
    /// Held-out rows whose logged slate is the candidate's slate (None: the candidate is π₀).
    pub slate_matches: Option<u32>,
    /// Held-out (row, position) pairs whose logged item is the candidate's item there.
    pub position_matches: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstimateResult {
    pub estimator: String,
    pub value: f64,
    pub se: f64,
}

/// How one estimator fares against the A/B test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub estimator: String,
    /// Kendall's τ_b between its estimates and the A/B CTRs over all candidates (None: its
    /// estimates are all tied).
    pub kendall_tau: Option<f64>,
    /// The deployable candidate it ranks first, that candidate's A/B CTR, and how much less that
    /// is than the best deployable candidate's (points of CTR as a fraction).
    pub shipped: Option<String>,
    pub shipped_ab_ctr: Option<f64>,
    pub ctr_lost: Option<f64>,
}

/// A trained model's curves and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveResult {
    pub name: String,
    pub train_loss: Vec<f64>,
    pub validation_loss: Vec<f64>,
    /// The epoch whose parameters the model kept (1-based): the lowest validation loss, or the
    /// highest validation objective for the IIPS policy.
    pub best_epoch: u32,
    pub ms_per_epoch: f64,
}

/// Serving one slate per fresh user: an exact scan of the catalogue against the HNSW index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServingResult {
    pub name: String,
    pub exact_us_per_slate: f64,
    pub index_us_per_slate: f64,
    /// Share of users whose slate from the index is the exact one.
    pub agreement: f64,
    /// Users served, and how many of them got a slate other than the exact one.
    pub users: u32,
    pub different: u32,
}

/// One world of the non-linearity sweep: A/B CTRs of both PRR towers and the oracle (served
/// exactly, so that the index does not blur the comparison), and the deep tower's paired gain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub nonlinearity: f64,
    pub linear_ctr: f64,
    pub deep_ctr: f64,
    pub oracle_ctr: f64,
    pub gain: f64,
    pub gain_se: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MainResult {
    pub train_rows: u32,
    pub validation_rows: u32,
    pub eval_rows: u32,
    pub logged_ctr: f64,
    pub logged_se: f64,
    /// Whether Ψ started from the SVD of the logged clicks (false: random, by choice or because
    /// the clicks could not carry d directions).
    pub svd_init: bool,
    pub candidates: Vec<CandidateResult>,
    pub judgements: Vec<Judgement>,
    pub best_deployable: String,
    pub curves: Vec<CurveResult>,
    pub serving: Vec<ServingResult>,
    /// A preview left the serving times out (they were not cached): the full report has them.
    #[serde(default)]
    pub serving_pending: bool,
    /// Deep PRR − linear PRR in the A/B test, paired impression by impression.
    pub deep_gain: f64,
    pub deep_gain_se: f64,
}

/// What a share of the main world's candidates yields (see [`MAIN_SHARES`]): the main world's
/// result for the share's candidates, with the curves of its trainings and the serving times of
/// its served candidates (the judgements, which read every candidate, are left to the merge).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MainShare {
    /// Its deep gain and judgements are the merge's.
    pub result: MainResult,
    /// Deep PRR − linear PRR, paired (in the share with both).
    pub deep_gain: Option<MeanSe>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JobResult {
    Main(Box<MainShare>),
    Sweep(SweepPoint),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapstoneReport {
    pub nonlinearity: f64,
    pub items: u32,
    pub slate_size: u32,
    pub logs: u32,
    pub impressions: u32,
    pub epochs: u32,
    pub main: MainResult,
    pub sweep: Vec<SweepPoint>,
}

/// The lesson's stages. The world, its logs and the SVD start are shared by every model; each
/// model is trained, indexed, A/B tested and evaluated offline in stages keyed by its name. A
/// change of ef_search re-serves (the graphs are kept); of the impressions, re-tests; of the
/// evaluation share, re-splits the logs and so retrains (the training rows change); of the
/// non-linearity, rebuilds the world. The sweep's worlds are this run's at other λ: a sweep point
/// at the main λ is the main world's stages.
const GRAPH: Graph = Graph {
    lesson: "putting-it-together",
    stages: &[
        // Catalogue, click model, true query map, and two populations (logged, fresh).
        Stage { name: "world", reads: &["nonlinearity", "items", "slate_size", "context_features", "users", "seed"], uses: &[] },
        // N impressions of π₀ on the logged population, split into training, validation, evaluation.
        Stage { name: "logs", reads: &["logging", "logs", "validation_share", "eval_share"], uses: &["world"] },
        // Ψ's start: the randomized SVD of the training rows' user × item clicks (or random).
        Stage { name: "item_init", reads: &["model_dim", "item_init"], uses: &["logs"] },
        // One model trained (the key adds its name; the linear tower reads no hidden-layer knob).
        Stage {
            name: "training",
            reads: &["hidden_layers", "hidden_width", "activation", "epochs", "batch", "learning_rate"],
            uses: &["logs", "item_init"],
        },
        // The HNSW graph of a model's item embeddings.
        Stage { name: "index", reads: &[], uses: &["training"] },
        // Exact scan against the index, per fresh user.
        Stage { name: "serving", reads: &["ef_search"], uses: &["index", "world"] },
        // A candidate deployed on fresh users, served the index's slates (those "serving" found,
        // or searched here where a preview left "serving" out: the same slates).
        Stage { name: "ab_test", reads: &["impressions"], uses: &["serving"] },
        // The oracle, π₀ and popularity on fresh users (no index).
        Stage { name: "reference_ab_test", reads: &["impressions"], uses: &["logs"] },
        // The reward model's query of each evaluated user and r̂(x, A) of each evaluation row,
        // shared by every candidate's estimates.
        Stage { name: "reward_on_evaluation", reads: &[], uses: &["training"] },
        // A served candidate's slate for each evaluated user of the logged population (searched
        // in its index): kept apart from "ope", so that a change of the reward model alone (a
        // deep knob, for the linear candidate) does not search again.
        Stage { name: "ope_slates", reads: &["ef_search"], uses: &["index", "logs"] },
        // The five estimators of every candidate on the evaluation rows, with the reward model.
        Stage { name: "ope", reads: &[], uses: &["ope_slates", "reward_on_evaluation"] },
        // The worlds of λ = 0 … 1, each with both PRR towers trained and A/B tested exactly.
        Stage { name: "sweep", reads: &["sweep"], uses: &["training", "reference_ab_test", "world"] },
    ],
};

pub struct CapstoneLesson;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Job {
    /// The main world's candidates of share `s` of [`MAIN_SHARES`].
    Main(u32),
    Sweep(f64),
}

/// The main world's candidates in the shares that two workers run side by side: the references
/// with both PRR towers (whose paired gain a share computes), and the other two deep candidates.
/// Each share trains the direct method's reward model, which every candidate's estimates read
/// (the same model in both: same rows, same stream): a drag of a deep knob trains five deep towers
/// on two cores (three and two) instead of four on one. One worker running both shares trains
/// the reward model once.
const MAIN_SHARES: [&[&str]; 2] = [&["logging", "popularity", "linear-prr", "deep-prr", "oracle"], &["deep-reward", "iips"]];

/// Which part runs each job: share s of the main world part s (so that a drag's preview, which
/// has no sweep, runs on two workers); the sweep point at the main λ the first share's part (it
/// reuses that share's PRR trainings); the other sweep points dealt in turn from the part after
/// the shares' on (on two parts, two each). A part that ran a share runs it again for the next
/// query, and finds its trainings cached.
fn assignment(p: &CapstoneParams, jobs: &[Job], parts: u32) -> Vec<u32> {
    let parts = parts.max(1);
    let mut next = MAIN_SHARES.len() as u32 % parts;
    jobs.iter()
        .map(|job| match *job {
            Job::Main(share) => share % parts,
            Job::Sweep(lambda) if lambda == p.nonlinearity => 0,
            Job::Sweep(_) => {
                let part = next;
                next = (next + 1) % parts;
                part
            }
        })
        .collect()
}

/// The main world's shares first, then the sweep's worlds, the one at the main λ first (it
/// shares the main world's PRR trainings on the worker that runs the first share).
fn jobs(p: &CapstoneParams) -> Vec<Job> {
    let mut jobs: Vec<Job> = (0..MAIN_SHARES.len() as u32).map(Job::Main).collect();
    if p.sweep == "on" {
        let mut points: Vec<f64> = SWEEP_POINTS.to_vec();
        if let Some(i) = points.iter().position(|x| *x == p.nonlinearity) {
            let same = points.remove(i);
            points.insert(0, same);
        }
        jobs.extend(points.into_iter().map(Job::Sweep));
    }
    jobs
}

/// ns per multiply-add of training (forward, backward, Adam's share).
const NS_PER_TRAINING_FLOP: f64 = 0.37;
/// ns per logged slate position (with each logged row's share of the evaluation: its split, the
/// reward model's predictions, the logging policy's slates drawn for the direct method). Fitted by
/// `rorec calibrate putting-it-together`, as every constant here.
const NS_PER_LOGGED_POSITION: f64 = 1030.0;
/// ns per (impression, position) of an A/B test.
const NS_PER_AB_POSITION: f64 = 51.0;
/// ns per (user, item, dimension) of serving one slate per user by exact scan (memoised slates),
/// plus the index's build per item.
const NS_PER_SERVING_STEP: f64 = 0.77;
const NS_PER_INDEXED_ITEM: f64 = 1750.0;
/// ns per (held-out row, softmax item) of the IIPS policy's gradient on clicked rows.
const NS_PER_SOFTMAX_STEP: f64 = 0.67;

impl Experiment for CapstoneLesson {
    const GRAPH: Graph = GRAPH;
    const TIMINGS: &'static [&'static str] =
        &["main.curves.ms_per_epoch", "main.serving.exact_us_per_slate", "main.serving.index_us_per_slate"];
    type Params = CapstoneParams;
    type Report = CapstoneReport;
    type Partial = Vec<(u32, JobResult)>;

    /// The parts [`assignment`] uses with a part per job (the sweep point at the main λ shares
    /// the first share's).
    fn parts(params: &Checked<CapstoneParams>) -> u32 {
        let all = jobs(params);
        assignment(params, &all, all.len() as u32).into_iter().max().map_or(1, |last| last + 1)
    }

    /// The first look's two shares each build the world, log it and train the reward model.
    /// Opened with them on both workers beside the page's first render, the longest main-thread
    /// task of the opening was 108–250 ms (median of eight 136), against 76–121 (91) with one
    /// worker; the first figure came no sooner (median 992 ms against 996).
    const FIRST_LOOK_IN_ONE_PART: bool = true;

    fn estimate(params: &Checked<CapstoneParams>) -> Estimate {
        let p: &CapstoneParams = params;
        let worlds = 1.0 + if p.sweep == "on" { SWEEP_POINTS.len() as f64 } else { 0.0 };
        let (_, _, evaluation) = p.split_rows();
        let k = p.slate_size as f64;
        let users = p.users as f64;
        let logged = worlds * p.logs as f64 * (k + 8.0);
        let ab = p.impressions as f64 * k * (CANDIDATES.len() as f64 + 3.0 * (worlds - 1.0));
        let serving = users * p.items as f64 * p.model_dim as f64 * (3.0 * SERVED.len() as f64 + 2.0 * (worlds - 1.0))
            + evaluation as f64 * p.items as f64 * p.model_dim as f64 * SERVED.len() as f64;
        let indexed = p.items as f64 * SERVED.len() as f64;
        let softmax = p.softmax_steps();
        Estimate::new()
            .term("logging the impressions", &["logs", "sweep"], logged, NS_PER_LOGGED_POSITION)
            .term(
                "training the query towers",
                &[
                    "logs",
                    "epochs",
                    "hidden_width",
                    "hidden_layers",
                    "context_features",
                    "model_dim",
                    "slate_size",
                    "validation_share",
                    "eval_share",
                    "sweep",
                ],
                p.training_flops(),
                NS_PER_TRAINING_FLOP,
            )
            .term(
                "the IIPS policy's softmax over the catalogue",
                &["logs", "epochs", "items", "model_dim", "validation_share", "eval_share"],
                softmax,
                NS_PER_SOFTMAX_STEP,
            )
            .term("A/B testing the candidates", &["impressions", "sweep"], ab, NS_PER_AB_POSITION)
            .term("serving a slate to every user", &["users", "items", "model_dim", "sweep"], serving, NS_PER_SERVING_STEP)
            .term("building the MIPS indexes", &["items"], indexed, NS_PER_INDEXED_ITEM)
    }

    const CALIBRATION: &'static [&'static str] = &[
        "sweep=off&epochs=40",
        "sweep=off&epochs=1&impressions=500000",
        "sweep=off&epochs=2&items=5000&users=400",
        "sweep=off&epochs=5&items=2000&users=1000&hidden_width=4",
        "sweep=off&epochs=1&logs=200000",
        "",
    ];

    fn run_part(
        params: &Checked<CapstoneParams>,
        part: Part,
        cache: &mut StageCache,
        progress: &mut dyn Progress,
    ) -> Vec<(u32, JobResult)> {
        let p: &CapstoneParams = params;
        let all = jobs(p);
        let mine = part.jobs_placed(&assignment(p, &all, part.count));
        let count = mine.len().max(1) as f64;
        let mut out = Vec::new();
        for (i, &j) in mine.iter().enumerate() {
            let mut stage = staged(progress, i as f64 / count, (i + 1) as f64 / count);
            let result = match all[j] {
                Job::Main(share) => JobResult::Main(Box::new(run_main_share(p, share, part.preview, cache, &mut stage))),
                Job::Sweep(lambda) => JobResult::Sweep(run_sweep_point(&p.at(lambda), cache, &mut stage)),
            };
            out.push((j as u32, result));
        }
        progress.report(1.0, "done");
        out
    }

    /// The same world with a quarter of the logs (where that leaves every split large enough), a
    /// twentieth of the epochs, no sweep, and A/B tests on a sixteenth of the impressions (at
    /// least 1,000): the page's first figure, each change's first changed figure and each step of
    /// a drag. With the serving times left out of a preview (see [`run_main_share`]), a candidate's
    /// slates are searched only for the users its A/B test and its estimators meet, and searching
    /// was most of a preview's time (HNSW's search, 40 % of it natively, opening): 1,250
    /// impressions meet about 930 of the 2,000 fresh users, 20,000 nearly all. Natively a drag of
    /// hidden_width took 58–74 ms this way, 95–121 ms with all the impressions; the linear
    /// candidate's estimators reuse its slates (stage `ope_slates`). In the page the first figure
    /// came at 800–829 ms instead of 1,088–1,211 (two runs each, alternated).
    fn preview(params: &Checked<CapstoneParams>) -> Option<(CapstoneParams, String)> {
        let epochs = (params.epochs / 20).max(1);
        let mut cheaper = CapstoneParams { epochs, sweep: "off", ..(**params).clone() };
        let fewer = CapstoneParams { logs: (params.logs / 4).max(1000), ..cheaper.clone() };
        let mut note = format!("after {epochs} of {} epochs", params.epochs);
        if fewer.logs < params.logs && crate::core::params::check(fewer.clone()).is_ok() {
            note = format!("on {} of the {} logged impressions, {note}", thousands(fewer.logs as u64), thousands(params.logs as u64));
            cheaper = fewer;
        }
        if params.sweep == "on" {
            note.push_str(", without the sweep");
        }
        let fewer = CapstoneParams { impressions: (params.impressions / 16).max(1000), ..cheaper.clone() };
        if fewer.impressions < params.impressions && crate::core::params::check(fewer.clone()).is_ok() {
            let (some, all) = (thousands(fewer.impressions as u64), thousands(params.impressions as u64));
            note.push_str(&format!(", A/B tested on {some} of the {all} impressions"));
            cheaper = fewer;
        }
        Some((cheaper, note))
    }

    fn merge(params: &Checked<CapstoneParams>, partials: Vec<Vec<(u32, JobResult)>>) -> CapstoneReport {
        let p: &CapstoneParams = params;
        let mut results: Vec<(u32, JobResult)> = partials.into_iter().flatten().collect();
        results.sort_by_key(|r| r.0);
        let mut shares = Vec::new();
        let mut sweep = Vec::new();
        for (_, r) in results {
            match r {
                JobResult::Main(m) => shares.push(*m),
                JobResult::Sweep(s) => sweep.push(s),
            }
        }
        sweep.sort_by(|a, b| a.nonlinearity.total_cmp(&b.nonlinearity));
        CapstoneReport {
            nonlinearity: p.nonlinearity,
            items: p.items as u32,
            slate_size: p.slate_size as u32,
            logs: p.logs as u32,
            impressions: p.impressions as u32,
            epochs: p.epochs as u32,
            main: main_result(shares),
            sweep,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stages

struct Worlds {
    logged: Population,
    fresh: Population,
}

struct Logs {
    train: Vec<LoggedRow>,
    validation: Vec<LoggedRow>,
    evaluation: Vec<LoggedRow>,
    ctr: MeanSe,
}

struct ItemInit(Option<Vec<f64>>);

struct Trained {
    model: TowerModel,
    fit: Fit,
    ms_per_epoch: f64,
}

struct Index(RefCell<MipsIndex>);

struct AbResult {
    summary: MeanSe,
    rewards: Vec<f32>,
}

/// The serving comparison, and the index's slate for each fresh user (the A/B test serves them).
struct Serving {
    result: ServingResult,
    index_slates: Vec<Vec<u32>>,
}

/// The reward model on the evaluation rows: its query g(z) of each logged user who has a row
/// there (computed once per user, not per row and candidate) and r̂(x, A) of each row.
struct RewardOnEvaluation {
    queries: Vec<Option<Vec<f64>>>,
    logged: Vec<f64>,
}

struct Offline {
    estimates: Vec<EstimateResult>,
    slate_matches: Option<u32>,
    position_matches: Option<u32>,
}

fn rows_footprint(rows: &[LoggedRow]) -> usize {
    rows.iter()
        .map(|r| small_buffer_bytes(&r.slate) + small_buffer_bytes(&r.clicks) + small_buffer_bytes(&r.position_propensity))
        .sum::<usize>()
        + bytes_of(rows)
}

fn population_footprint(p: &Population) -> usize {
    crate::core::horvitz_thompson::world_bytes(&p.world) + bytes_of(&p.contexts)
}

impl Footprint for Worlds {
    fn footprint(&self) -> usize {
        population_footprint(&self.logged) + population_footprint(&self.fresh)
    }
}

impl Footprint for Logs {
    fn footprint(&self) -> usize {
        rows_footprint(&self.train) + rows_footprint(&self.validation) + rows_footprint(&self.evaluation)
    }
}

impl Footprint for ItemInit {
    fn footprint(&self) -> usize {
        self.0.as_deref().map_or(0, bytes_of)
    }
}

impl Footprint for Trained {
    fn footprint(&self) -> usize {
        // The tower's weights count twice: the parameters and the forward pass's copy of them.
        bytes_of(self.model.params())
            + self.model.tower.len() * std::mem::size_of::<f64>()
            + bytes_of(&self.fit.train_loss)
            + bytes_of(&self.fit.validation_loss)
    }
}

impl Footprint for Index {
    fn footprint(&self) -> usize {
        self.0.borrow().graph.memory_bytes()
    }
}

impl Footprint for AbResult {
    fn footprint(&self) -> usize {
        bytes_of(&self.rewards)
    }
}

impl Footprint for Offline {
    fn footprint(&self) -> usize {
        self.estimates.iter().map(|e| e.estimator.capacity()).sum::<usize>() + bytes_of(&self.estimates)
    }
}

impl Footprint for Serving {
    fn footprint(&self) -> usize {
        self.index_slates.iter().map(|s| small_buffer_bytes(s)).sum::<usize>() + bytes_of(&self.index_slates)
    }
}

impl Footprint for RewardOnEvaluation {
    fn footprint(&self) -> usize {
        self.queries.iter().map(|q| q.as_deref().map_or(0, bytes_of)).sum::<usize>() + bytes_of(&self.queries) + bytes_of(&self.logged)
    }
}

fn world_stage(q: &CapstoneParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Worlds> {
    cache.get_or_compute(GRAPH.key("world", q), |_| {
        progress.report(0.0, "building the world");
        let (logged, fresh) = populations(&q.world_spec());
        Worlds { logged, fresh }
    })
}

fn logs_stage(q: &CapstoneParams, worlds: &Worlds, cache: &mut StageCache, progress: &mut dyn Progress) -> Rc<Logs> {
    cache.get_or_compute(GRAPH.key("logs", q), |_| {
        let logging = PlackettLuce::new(&worlds.logged.world, q.logging_kind());
        let data = log_data(&worlds.logged.world, &logging, q.logs as u32, q.seed, progress);
        let ctr = data.ctr();
        let (train, validation, _) = q.split_rows();
        let mut rows = data.rows;
        let evaluation = rows.split_off((train + validation) as usize);
        let validation = rows.split_off(train as usize);
        Logs { train: rows, validation, evaluation, ctr }
    })
}

fn item_init_stage(q: &CapstoneParams, worlds: &Worlds, logs: &Logs, cache: &mut StageCache) -> Rc<ItemInit> {
    cache.get_or_compute(GRAPH.key("item_init", q), |_| {
        ItemInit(
            (q.item_init == "svd")
                .then(|| svd_item_init(&worlds.logged, &logs.train, q.items as u32, q.model_dim as u32, q.seed))
                .flatten(),
        )
    })
}

/// Model `name` trained: the candidates on the training rows (validated on the validation rows),
/// the reward model on the validation rows (validated on the training rows). Its shuffling
/// stream is its place in [`CANDIDATES`] (the reward model's after them), not its place in a run.
fn training_stage(
    q: &CapstoneParams,
    name: &'static str,
    worlds: &Worlds,
    logs: &Logs,
    init: &ItemInit,
    cache: &mut StageCache,
    progress: &mut dyn Progress,
) -> Rc<Trained> {
    let key = GRAPH.key("training", &q.for_training(name)).with(name);
    cache.get_or_compute(key, |_| {
        let head = match name {
            "deep-reward" => Head::Reward,
            "iips" => Head::Iips,
            _ => Head::Prr,
        };
        let stream = CANDIDATES.iter().position(|c| c.0 == name).unwrap_or(CANDIDATES.len()) as u32;
        let mut model = TowerModel::new(
            head,
            q.items as usize,
            q.model_dim as usize,
            q.tower_of(name),
            ENGAGEMENT_FEATURES as usize,
            q.slate_size as usize,
            init.0.as_deref(),
            logs.ctr.mean,
            q.seed ^ u64::from(stream),
        );
        let (train, held_out) = if name == REWARD_MODEL { (&logs.validation, &logs.train) } else { (&logs.train, &logs.validation) };
        let label = format!("training {}", candidate_label(name));
        let epochs = q.epochs as u32;
        let start = progress.now_ms();
        let mut shuffle = rng::substream(q.seed, Stream::Model, 1000 + stream);
        let fit = fit(&mut model, &worlds.logged, train, held_out, epochs, q.batch as usize, q.learning_rate, &mut shuffle, |epoch| {
            progress.report((epoch + 1) as f64 / epochs as f64, &label)
        });
        Trained { model, fit, ms_per_epoch: (progress.now_ms() - start) / epochs as f64 }
    })
}

fn index_stage(q: &CapstoneParams, name: &'static str, trained: &Trained, cache: &mut StageCache) -> Rc<Index> {
    cache.get_or_compute(GRAPH.key("index", &q.for_training(name)).with(name), |_| {
        let mut items = Vectors::new(trained.model.dim);
        for a in 0..trained.model.items as u32 {
            items.push(&trained.model.psi(a).iter().map(|x| *x as f32).collect::<Vec<f32>>());
        }
        let config = Config { m: INDEX_M, ef_construction: INDEX_EF_CONSTRUCTION, seed: q.seed };
        // The graph searched by inner product itself: the MIPS→L2 augmentation computes
        // |q|² + M² − 2q·x in f32, which cancels digits when M² is large, and it served the exact
        // slate to only 41–80 % of the users at λ = 0 (100 % this way).
        Index(RefCell::new(MipsIndex::build(&items, false, config, &mut ())))
    })
}

fn ab_test(q: &CapstoneParams, fresh: &Population, policy: &dyn SlatePolicy) -> AbResult {
    let rewards = ab_test_expected_rewards(&fresh.world, policy, q.impressions as u32, q.seed, &mut ());
    AbResult { summary: mean_se(rewards.iter().copied()), rewards: rewards.iter().map(|r| *r as f32).collect() }
}

/// A reference candidate (oracle, π₀, popularity) on fresh users.
fn reference_ab_stage(q: &CapstoneParams, name: &str, worlds: &Worlds, logs: &Logs, cache: &mut StageCache) -> Rc<AbResult> {
    cache.get_or_compute(GRAPH.key("reference_ab_test", q).with(name), |_| {
        let fresh = &worlds.fresh;
        match name {
            "oracle" => ab_test(q, fresh, &Remembered::new(&Oracle, fresh.world.users.len())),
            "logging" => ab_test(q, fresh, &Logging { policy: &PlackettLuce::new(&fresh.world, q.logging_kind()) }),
            _ => ab_test(q, fresh, &Fixed { slate: most_clicked(&logs.train, q.items as u32, q.slate_size as u32), label: name.into() }),
        }
    })
}

/// Deep minus linear, paired impression by impression.
fn paired(a: &AbResult, b: &AbResult) -> MeanSe {
    mean_se(a.rewards.iter().zip(&b.rewards).map(|(x, y)| f64::from(*x) - f64::from(*y)))
}

/// Unless `compute`, only if it is cached.
#[allow(clippy::too_many_arguments)]
fn serving_stage(
    q: &CapstoneParams,
    name: &'static str,
    worlds: &Worlds,
    trained: &Trained,
    index: &Index,
    compute: bool,
    cache: &mut StageCache,
    progress: &mut dyn Progress,
) -> Option<Rc<Serving>> {
    cache.get_or_compute_if(compute, GRAPH.key("serving", &q.for_training(name)).with(name), |_| {
        let fresh = &worlds.fresh;
        let users = fresh.world.users.len() as u32;
        let size = q.slate_size as u32;
        let exact = Served::new(&trained.model, fresh, None, 0, name);
        let indexed = Served::new(&trained.model, fresh, Some(&index.0), q.ef_search as usize, name);
        let mut scratch = Scratch::default();
        let t0 = progress.now_ms();
        let exact_slates: Vec<Vec<u32>> = (0..users).map(|u| exact.slate_for(u, size, &mut scratch)).collect();
        let t1 = progress.now_ms();
        let index_slates: Vec<Vec<u32>> = (0..users).map(|u| indexed.slate_for(u, size, &mut scratch)).collect();
        let t2 = progress.now_ms();
        let same = exact_slates.iter().zip(&index_slates).filter(|(a, b)| a == b).count();
        let result = ServingResult {
            name: name.into(),
            exact_us_per_slate: 1000.0 * (t1 - t0) / users as f64,
            index_us_per_slate: 1000.0 * (t2 - t1) / users as f64,
            agreement: same as f64 / users as f64,
            users,
            different: users - same as u32,
        };
        Serving { result, index_slates }
    })
}

fn reward_on_evaluation_stage(
    q: &CapstoneParams,
    worlds: &Worlds,
    logs: &Logs,
    reward_model: &TowerModel,
    cache: &mut StageCache,
) -> Rc<RewardOnEvaluation> {
    cache.get_or_compute(GRAPH.key("reward_on_evaluation", q), |_| {
        let logged = &worlds.logged;
        let mut scratch = Scratch::default();
        let mut queries: Vec<Option<Vec<f64>>> = vec![None; logged.world.users.len()];
        let logged_model = logs
            .evaluation
            .iter()
            .map(|row| {
                let query =
                    queries[row.user as usize].get_or_insert_with(|| reward_model.query(logged.context(row.user), &mut scratch).to_vec());
                reward_model.click_probability_for(query, logged.engagement(row.user), &row.slate, &mut scratch)
            })
            .collect();
        RewardOnEvaluation { queries, logged: logged_model }
    })
}

/// The five estimators of a candidate on the evaluation rows. `slate_of(user)` is its slate
/// (None: the candidate is π₀ itself).
fn offline(
    q: &CapstoneParams,
    worlds: &Worlds,
    logs: &Logs,
    reward_model: &TowerModel,
    on_evaluation: &RewardOnEvaluation,
    mut slate_of: Option<&mut dyn FnMut(u32) -> Vec<u32>>,
) -> Offline {
    let logged = &worlds.logged;
    let mut scratch = Scratch::default();
    let logging = PlackettLuce::new(&logged.world, q.logging_kind());
    let mut draws = rng::substream(q.seed, Stream::MonteCarlo, 77);
    let (mut slate_matches, mut position_matches) = (0u32, 0u32);
    let mut rows: Vec<Row> = Vec::with_capacity(logs.evaluation.len());
    let mut draw_scratch = Scratch::default();
    // r̂(x, S(x)) of a deterministic candidate depends on the user alone: once per user.
    let mut target_value: Vec<Option<(Vec<u32>, f64)>> = vec![None; logged.world.users.len()];
    for (row, &logged_model) in logs.evaluation.iter().zip(&on_evaluation.logged) {
        let y = logged.engagement(row.user);
        let query = on_evaluation.queries[row.user as usize].as_deref().expect("every evaluated user's query");
        match slate_of.as_mut() {
            Some(slate_of) => {
                let target = slate_of(row.user);
                slate_matches += u32::from(target == row.slate);
                position_matches += row.slate.iter().zip(&target).filter(|(a, b)| a == b).count() as u32;
                let kept = &mut target_value[row.user as usize];
                let target_model = match kept {
                    Some((slate, value)) if *slate == target => *value,
                    _ => {
                        let value = reward_model.click_probability_for(query, y, &target, &mut scratch);
                        *kept = Some((target.clone(), value));
                        value
                    }
                };
                rows.push(ope::deterministic_row(row, &target, logged_model, target_model));
            }
            None => {
                let category = logged.world.users[row.user as usize].category;
                let value = super::expected_over_slates(
                    LOGGING_MODEL_DRAWS,
                    |slate| logging.sample(category, row.slate.len() as u32, &mut draws, slate),
                    |slate| reward_model.click_probability_for(query, y, slate, &mut draw_scratch),
                );
                rows.push(ope::logging_row(row, logged_model, value));
            }
        }
    }
    let estimates = ESTIMATORS
        .iter()
        .map(|kind| {
            let e = estimate(*kind, f64::INFINITY, &rows);
            EstimateResult { estimator: kind.name().into(), value: e.value, se: e.se }
        })
        .collect();
    let deterministic = slate_of.is_some();
    Offline {
        estimates,
        slate_matches: deterministic.then_some(slate_matches),
        position_matches: deterministic.then_some(position_matches),
    }
}

/// A served candidate's slate for every evaluated user of the logged population (None for the
/// others), searched in its index once per user (stage `ope_slates`).
fn ope_slates_stage(
    q: &CapstoneParams,
    name: &'static str,
    worlds: &Worlds,
    logs: &Logs,
    trained: &Trained,
    index: &Index,
    cache: &mut StageCache,
) -> Rc<Vec<Option<Vec<u32>>>> {
    cache.get_or_compute(GRAPH.key("ope_slates", &q.for_training(name)).with(name), |_| {
        let logged = &worlds.logged;
        let searched = Served::new(&trained.model, logged, Some(&index.0), q.ef_search as usize, name);
        let mut scratch = Scratch::default();
        let mut slates: Vec<Option<Vec<u32>>> = vec![None; logged.world.users.len()];
        for row in &logs.evaluation {
            let kept = &mut slates[row.user as usize];
            if kept.is_none() {
                *kept = Some(searched.slate_for(row.user, q.slate_size as u32, &mut scratch));
            }
        }
        slates
    })
}

/// Share `share` of the main world's candidates (see [`MAIN_SHARES`]). A `preview` leaves out the
/// serving times unless cached: they serve every fresh user twice (exact scan and index) for a
/// table the full run, next, measures anyway; the A/B test then searches only the users its
/// impressions meet (see [`CapstoneLesson::drag_preview`]).
fn run_main_share(p: &CapstoneParams, share: u32, preview: bool, cache: &mut StageCache, progress: &mut dyn Progress) -> MainShare {
    let share = MAIN_SHARES[share as usize];
    let worlds = world_stage(p, cache, &mut staged(progress, 0.0, 0.02));
    let logs = logs_stage(p, &worlds, cache, &mut staged(progress, 0.02, 0.05));
    let init = item_init_stage(p, &worlds, &logs, cache);
    // Trainings: the share's served candidates and the reward model.
    let names: Vec<&'static str> = SERVED.iter().copied().filter(|name| share.contains(name)).chain([REWARD_MODEL]).collect();
    let mut trained: Vec<(&'static str, Rc<Trained>)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (from, to) = (0.05 + 0.75 * i as f64 / names.len() as f64, 0.05 + 0.75 * (i + 1) as f64 / names.len() as f64);
        trained.push((name, training_stage(p, name, &worlds, &logs, &init, cache, &mut staged(progress, from, to))));
    }
    let model_of = |name: &str| trained.iter().find(|t| t.0 == name).map(|t| t.1.clone()).expect("trained");
    let reward_model = model_of(REWARD_MODEL);
    progress.report(0.82, "A/B tests and off-policy estimates");
    let on_evaluation = reward_on_evaluation_stage(p, &worlds, &logs, &reward_model.model, cache);
    let mut candidates = Vec::new();
    let mut tests: Vec<(&str, Rc<AbResult>)> = Vec::new();
    let mut serving = Vec::new();
    let mut serving_pending = false;
    for &(name, _, deployable) in CANDIDATES.iter().filter(|c| share.contains(&c.0)) {
        let (ab, offline_result) = if SERVED.contains(&name) {
            let model = model_of(name);
            let index = index_stage(p, name, &model, cache);
            let served = serving_stage(p, name, &worlds, &model, &index, !preview, cache, progress);
            match &served {
                Some(served) => serving.push(served.result.clone()),
                None => serving_pending = true,
            }
            let ab_key = GRAPH.key("ab_test", &p.for_training(name)).with(name);
            let ab = cache.get_or_compute(ab_key, |_| {
                let policy = Served::new(&model.model, &worlds.fresh, Some(&index.0), p.ef_search as usize, name);
                let users = worlds.fresh.world.users.len();
                // The same slates either way (a test checks it): the serving stage's, or searched here.
                let remembered = Remembered::new(&policy, users);
                let remembered = match &served {
                    Some(served) => remembered.with_slates(served.index_slates.clone()),
                    None => remembered,
                };
                ab_test(p, &worlds.fresh, &remembered)
            });
            let slates = ope_slates_stage(p, name, &worlds, &logs, &model, &index, cache);
            // Keyed by every knob: the reward model is deep even when the candidate is linear.
            let offline_result = cache.get_or_compute(GRAPH.key("ope", p).with(name), |_| {
                let slate_of = |user: u32| slates[user as usize].clone().expect("every evaluated user's slate");
                offline(p, &worlds, &logs, &reward_model.model, &on_evaluation, Some(&mut { slate_of }))
            });
            (ab, offline_result)
        } else {
            let ab = reference_ab_stage(p, name, &worlds, &logs, cache);
            let offline_result = cache.get_or_compute(GRAPH.key("ope", p).with(name), |_| {
                let size = p.slate_size as u32;
                match name {
                    "logging" => offline(p, &worlds, &logs, &reward_model.model, &on_evaluation, None),
                    "oracle" => {
                        let world = &worlds.logged.world;
                        let oracle = Remembered::new(&Oracle, world.users.len());
                        let mut slate = Vec::new();
                        let mut unused = rng::seeded(0, Stream::MonteCarlo);
                        offline(
                            p,
                            &worlds,
                            &logs,
                            &reward_model.model,
                            &on_evaluation,
                            Some(&mut |user| {
                                oracle.choose(world, user, size, &mut unused, &mut slate);
                                slate.clone()
                            }),
                        )
                    }
                    _ => {
                        let fixed = most_clicked(&logs.train, p.items as u32, size);
                        offline(p, &worlds, &logs, &reward_model.model, &on_evaluation, Some(&mut |_| fixed.clone()))
                    }
                }
            });
            (ab, offline_result)
        };
        candidates.push(CandidateResult {
            name: name.into(),
            deployable,
            ab_ctr: ab.summary.mean,
            ab_se: ab.summary.se,
            estimates: offline_result.estimates.clone(),
            slate_matches: offline_result.slate_matches,
            position_matches: offline_result.position_matches,
        });
        tests.push((name, ab));
    }
    let ab_of = |name: &str| tests.iter().find(|t| t.0 == name).map(|t| t.1.clone());
    let deep_gain = ab_of("deep-prr").zip(ab_of("linear-prr")).map(|(deep, linear)| paired(&deep, &linear));
    let curves = trained
        .iter()
        .map(|(name, t)| CurveResult {
            name: name.to_string(),
            train_loss: t.fit.train_loss.clone(),
            validation_loss: t.fit.validation_loss.clone(),
            best_epoch: t.fit.best_epoch,
            ms_per_epoch: t.ms_per_epoch,
        })
        .collect();
    progress.report(1.0, "done");
    let result = MainResult {
        train_rows: logs.train.len() as u32,
        validation_rows: logs.validation.len() as u32,
        eval_rows: logs.evaluation.len() as u32,
        logged_ctr: logs.ctr.mean,
        logged_se: logs.ctr.se,
        svd_init: init.0.is_some(),
        candidates,
        judgements: Vec::new(),
        best_deployable: String::new(),
        curves,
        serving,
        serving_pending,
        deep_gain: 0.0,
        deep_gain_se: 0.0,
    };
    MainShare { result, deep_gain }
}

/// The main world's shares (in the order of their jobs) merged: the candidates in the order of
/// [`CANDIDATES`], the curves and the serving times in the order of [`SERVED`] (the reward
/// model's curve, which every share trained alike, once and last: the first share's, with its
/// time per epoch), and the judgements over all candidates.
fn main_result(shares: Vec<MainShare>) -> MainResult {
    let mut shares = shares.into_iter();
    // The page merges only when every part is in (the capstone has no results so far).
    let MainShare { result: mut main, mut deep_gain } = shares.next().expect("every share of the main world");
    for share in shares {
        let other = share.result;
        main.candidates.extend(other.candidates);
        for curve in other.curves {
            match main.curves.iter().find(|c| c.name == curve.name) {
                Some(kept) => debug_assert_eq!(kept.train_loss, curve.train_loss, "{} trained alike in every share", curve.name),
                None => main.curves.push(curve),
            }
        }
        main.serving.extend(other.serving);
        main.serving_pending |= other.serving_pending;
        deep_gain = deep_gain.or(share.deep_gain);
    }
    let gain = deep_gain.unwrap_or_default();
    (main.deep_gain, main.deep_gain_se) = (gain.mean, gain.se);
    let candidates: Vec<&str> = CANDIDATES.iter().map(|c| c.0).collect();
    let models: Vec<&str> = SERVED.iter().copied().chain([REWARD_MODEL]).collect();
    main.candidates = in_order(main.candidates, &candidates, |c| &c.name);
    main.curves = in_order(main.curves, &models, |c| &c.name);
    main.serving = in_order(main.serving, &models, |s| &s.name);
    (main.judgements, main.best_deployable) = judge(&main.candidates);
    main
}

/// `items` in the order of their names in `order`, any other after them (a plain loop: the
/// stable sort's code for the three item types weighed 7 KiB of the gzipped wasm).
fn in_order<T>(mut items: Vec<T>, order: &[&str], name: fn(&T) -> &String) -> Vec<T> {
    let mut ordered = Vec::with_capacity(items.len());
    for wanted in order {
        if let Some(i) = items.iter().position(|item| name(item) == wanted) {
            ordered.push(items.remove(i));
        }
    }
    ordered.extend(items);
    ordered
}

/// Each estimator against the A/B test: Kendall's τ_b over all candidates, and what it would ship.
pub fn judge(candidates: &[CandidateResult]) -> (Vec<Judgement>, String) {
    let ab: Vec<f64> = candidates.iter().map(|c| c.ab_ctr).collect();
    let deployable: Vec<bool> = candidates.iter().map(|c| c.deployable).collect();
    let best = ope::shipped(&ab, &deployable).expect("a deployable candidate");
    let judgements = ESTIMATORS
        .iter()
        .enumerate()
        .map(|(e, kind)| {
            let values: Vec<f64> = candidates.iter().map(|c| c.estimates[e].value).collect();
            let shipped = ope::shipped(&values, &deployable);
            Judgement {
                estimator: kind.name().into(),
                kendall_tau: ope::kendall_tau_b(&values, &ab),
                shipped: shipped.map(|s| candidates[s].name.clone()),
                shipped_ab_ctr: shipped.map(|s| ab[s]),
                ctr_lost: shipped.map(|s| ab[best] - ab[s]),
            }
        })
        .collect();
    (judgements, candidates[best].name.clone())
}

fn run_sweep_point(q: &CapstoneParams, cache: &mut StageCache, progress: &mut dyn Progress) -> SweepPoint {
    let worlds = world_stage(q, cache, &mut staged(progress, 0.0, 0.05));
    let logs = logs_stage(q, &worlds, cache, &mut staged(progress, 0.05, 0.1));
    let init = item_init_stage(q, &worlds, &logs, cache);
    let linear = training_stage(q, "linear-prr", &worlds, &logs, &init, cache, &mut staged(progress, 0.1, 0.3));
    let deep = training_stage(q, "deep-prr", &worlds, &logs, &init, cache, &mut staged(progress, 0.3, 0.95));
    let exact_ab = |name: &'static str, trained: &Trained, cache: &mut StageCache| {
        cache.get_or_compute(GRAPH.key("sweep", &q.for_training(name)).with(name), |_| {
            let scanned = Served::new(&trained.model, &worlds.fresh, None, 0, name);
            ab_test(q, &worlds.fresh, &Remembered::new(&scanned, worlds.fresh.world.users.len()))
        })
    };
    let (l, d) = (exact_ab("linear-prr", &linear, cache), exact_ab("deep-prr", &deep, cache));
    let oracle = reference_ab_stage(q, "oracle", &worlds, &logs, cache);
    let gain = paired(&d, &l);
    progress.report(1.0, "done");
    SweepPoint {
        nonlinearity: q.nonlinearity,
        linear_ctr: l.summary.mean,
        deep_ctr: d.summary.mean,
        oracle_ctr: oracle.summary.mean,
        gain: gain.mean,
        gain_se: gain.se,
    }
}

/// The report's dataset: the logs with their split, for the CSV export.
pub fn dataset_csv(query: &str) -> Result<String, String> {
    let params = crate::core::params::parse_strict::<CapstoneParams>(query)
        .map_err(|issues| issues.iter().map(|i| format!("{}: {}", i.param, i.message)).collect::<Vec<_>>().join("\n"))?;
    let mut cache = StageCache::disabled();
    let worlds = world_stage(&params, &mut cache, &mut ());
    let logs = logs_stage(&params, &worlds, &mut cache, &mut ());
    let mut out = String::from("split,user");
    let features = worlds.logged.features;
    for j in 0..features {
        out.push_str(&format!(",z{}", j + 1));
    }
    for j in 0..ENGAGEMENT_FEATURES {
        out.push_str(&format!(",y{}", j + 1));
    }
    for k in 0..params.slate_size {
        out.push_str(&format!(",item{},click{},propensity{}", k + 1, k + 1, k + 1));
    }
    out.push_str(",slate_propensity\n");
    for (split, rows) in [("train", &logs.train), ("validation", &logs.validation), ("evaluation", &logs.evaluation)] {
        for row in rows.iter() {
            out.push_str(&format!("{split},{}", row.user));
            for v in worlds.logged.context(row.user).iter().chain(worlds.logged.engagement(row.user)) {
                out.push_str(&format!(",{v:.6}"));
            }
            for (k, a) in row.slate.iter().enumerate() {
                out.push_str(&format!(",{a},{},{:.6e}", row.clicks[k], row.position_propensity[k]));
            }
            out.push_str(&format!(",{:.6e}\n", row.slate_propensity));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALK_BASE: &str = "items=30&slate_size=2&context_features=3&users=150&logs=2000&model_dim=3&hidden_width=6&epochs=2&batch=64\
                             &impressions=1000";
    const WALK_CHOICES: &[(&str, &[&str])] = &[
        ("nonlinearity", &["0", "0.5", "1"]),
        ("items", &["30", "40"]),
        ("slate_size", &["2", "3"]),
        ("context_features", &["3", "4"]),
        ("users", &["150", "200"]),
        ("logging", &["uniform", "popularity"]),
        ("logs", &["2000", "2400"]),
        ("validation_share", &["0.2", "0.25"]),
        ("eval_share", &["0.25", "0.3"]),
        ("model_dim", &["3", "4"]),
        ("item_init", &["svd", "random"]),
        ("hidden_layers", &["1", "2"]),
        ("hidden_width", &["6", "8"]),
        ("activation", &["relu", "gelu"]),
        ("epochs", &["2", "3"]),
        ("batch", &["64", "100"]),
        ("learning_rate", &["0.01", "0.03"]),
        ("ef_search", &["8", "32"]),
        ("impressions", &["1000", "1200"]),
        ("sweep", &["on", "off"]),
        ("seed", &["1", "2"]),
    ];

    #[test]
    fn a_walk_through_parameter_changes_gives_what_a_fresh_run_gives() {
        let stats = crate::core::stages::tests::walk::<CapstoneLesson>(WALK_BASE, WALK_CHOICES, 20, 1607);
        assert!(stats.hits > 10, "{stats:?}");
    }

    #[test]
    fn bad_values_are_named_at_their_control() {
        use crate::core::params::parse_strict;
        let issue = |q: &str| parse_strict::<CapstoneParams>(q).unwrap_err();
        assert_eq!(issue("hidden_width=0")[0].param, "hidden_width");
        assert_eq!(issue("hidden_layers=4")[0].param, "hidden_layers");
        assert!(issue("eval_share=0.8&validation_share=0.3")[0].message.contains("training"));
        assert_eq!(issue("logs=1000&eval_share=0.1")[0].param, "eval_share");
        assert_eq!(issue("items=5000&users=20000")[0].param, "users");
    }

    #[test]
    fn the_preview_keeps_the_world_and_a_quarter_of_the_logs_when_every_split_stays_large_enough() {
        let preview = |q: &str| {
            let params = crate::core::params::parse_strict::<CapstoneParams>(q).unwrap();
            let (cheaper, note) = CapstoneLesson::preview(&params).unwrap();
            (params, cheaper, note)
        };
        let (full, cheaper, note) = preview("");
        assert_eq!((cheaper.logs, cheaper.epochs, cheaper.sweep, cheaper.impressions), (5000, 1, "off", 1250));
        assert_eq!(GRAPH.key("world", &cheaper), GRAPH.key("world", &*full));
        assert!(note.contains("5,000 of the 20,000 logged impressions") && note.contains("1 of 20 epochs"), "{note}");
        assert!(note.ends_with("A/B tested on 1,250 of the 20,000 impressions"), "{note}");
        // A quarter of 4000 would leave 50 evaluation rows (200 needed): all the logs, then.
        let (_, cheaper, note) = preview("logs=4000&eval_share=0.05");
        assert_eq!(cheaper.logs, 4000);
        assert!(!note.contains("logged impressions"), "{note}");
    }

    #[test]
    fn serving_the_index_slates_already_found_changes_no_impression_of_the_ab_test() {
        let q = CapstoneParams { items: 40, users: 150, logs: 2000, epochs: 1, impressions: 1500, ..CapstoneParams::default() };
        let mut cache = StageCache::disabled();
        let worlds = world_stage(&q, &mut cache, &mut ());
        let logs = logs_stage(&q, &worlds, &mut cache, &mut ());
        let init = item_init_stage(&q, &worlds, &logs, &mut cache);
        let model = training_stage(&q, "deep-prr", &worlds, &logs, &init, &mut cache, &mut ());
        let index = index_stage(&q, "deep-prr", &model, &mut cache);
        let served = serving_stage(&q, "deep-prr", &worlds, &model, &index, true, &mut cache, &mut ()).expect("computed");
        let policy = Served::new(&model.model, &worlds.fresh, Some(&index.0), q.ef_search as usize, "deep-prr");
        let users = worlds.fresh.world.users.len();
        let searched = ab_test(&q, &worlds.fresh, &Remembered::new(&policy, users));
        let reused = ab_test(&q, &worlds.fresh, &Remembered::new(&policy, users).with_slates(served.index_slates.clone()));
        assert_eq!(searched.rewards, reused.rewards);
        let remembered = ab_test(&q, &worlds.fresh, &Remembered::new(&Oracle, worlds.fresh.world.users.len()));
        assert_eq!(remembered.rewards, ab_test(&q, &worlds.fresh, &Oracle).rewards);
    }

    #[test]
    fn a_preview_leaves_the_serving_times_out_unless_cached() {
        use crate::core::stages::{tests::report_of_parts, WORKER_BUDGET_BYTES};
        let q = "items=40&users=150&logs=2000&epochs=1&impressions=1500&sweep=off";
        let report = |part: Part, cache: &mut StageCache| report_of_parts::<CapstoneLesson>(q, &[part], cache);
        let preview = Part { index: 0, count: 1, preview: true };
        let mut cache = StageCache::new(WORKER_BUDGET_BYTES);
        let first = report(preview, &mut cache);
        assert!(first.main.serving_pending && first.main.serving.is_empty());
        assert_eq!(super::super::reading::serving(&first), vec![super::super::reading::SERVING_PENDING.to_string()]);
        let full = report(Part::WHOLE, &mut cache);
        assert!(!full.main.serving_pending && full.main.serving.len() == SERVED.len());
        let timeless = |r: &CapstoneReport| {
            let mut m = r.main.clone();
            m.curves.iter_mut().for_each(|c| c.ms_per_epoch = 0.0);
            m.serving.iter_mut().for_each(|s| (s.exact_us_per_slate, s.index_us_per_slate) = (0.0, 0.0));
            m
        };
        // The rest is the full run's (the A/B tests searched their own slates), and the full run
        // after the preview is a fresh run's, timings aside.
        let without_serving = |r: &CapstoneReport| MainResult { serving: Vec::new(), serving_pending: false, ..timeless(r) };
        assert_eq!(without_serving(&first), without_serving(&full));
        assert_eq!(timeless(&full), timeless(&report(Part::WHOLE, &mut StageCache::disabled())));
        // Once cached, a preview has them.
        assert!(!report(preview, &mut cache).main.serving_pending);
    }

    #[test]
    fn parts_give_the_same_report_as_one_run() {
        use crate::core::experiment::{merge_query, run_part_query, run_query};
        let strip = |json: &str| {
            let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
            crate::core::stages::tests::without_timings(&mut v, CapstoneLesson::TIMINGS);
            v
        };
        // λ at a sweep point and between two; no sweep.
        for extra in ["nonlinearity=0.5", "nonlinearity=0.6", "sweep=off"] {
            let q = format!("{WALK_BASE}&{extra}");
            let whole = strip(&run_query::<CapstoneLesson>(&q, &mut ()).unwrap());
            let most = CapstoneLesson::parts(&crate::core::params::parse_strict::<CapstoneParams>(&q).unwrap());
            assert_eq!(
                most,
                if extra == "sweep=off" {
                    2
                } else if extra.ends_with("0.6") {
                    7
                } else {
                    6
                }
            );
            for count in 2..=most {
                let parts: Vec<String> =
                    (0..count).map(|i| run_part_query::<CapstoneLesson>(&q, Part::new(i, count), &mut ()).unwrap()).collect();
                assert!(parts.iter().all(|p| p != "[]"), "{extra}, {count} parts: every part has a job");
                assert_eq!(strip(&merge_query::<CapstoneLesson>(&q, &parts).unwrap()), whole, "{extra}, {count} parts");
            }
        }
    }

    #[test]
    fn two_workers_run_the_main_world_in_two_shares() {
        let p = CapstoneParams::default();
        let all = jobs(&p);
        assert_eq!(all.len(), MAIN_SHARES.len() + SWEEP_POINTS.len());
        // The shares apart, the sweep point at the main λ beside the PRR towers it reuses, the
        // other four points two and two.
        let parts = assignment(&p, &all, 2);
        assert_eq!((&parts[..3], parts.iter().filter(|&&q| q == 1).count()), (&[0, 1, 0][..], 3));
        assert!(assignment(&p, &all, 1).iter().all(|&q| q == 0));
        // A preview is the two shares alone; every candidate is in one share.
        let (preview, _) = CapstoneLesson::preview(&crate::core::params::check(p).unwrap()).unwrap();
        assert_eq!(jobs(&preview), vec![Job::Main(0), Job::Main(1)]);
        for (name, _, _) in CANDIDATES {
            assert_eq!(MAIN_SHARES.iter().filter(|share| share.contains(name)).count(), 1, "{name}");
        }
    }

    #[test]
    fn the_linear_tower_ignores_the_deep_knobs() {
        let p = CapstoneParams::default();
        let wider = CapstoneParams { hidden_width: 64, ..p.clone() };
        let key = |q: &CapstoneParams, name| GRAPH.key("training", &q.for_training(name));
        assert_eq!(key(&p, "linear-prr"), key(&wider, "linear-prr"));
        assert_ne!(key(&p, "deep-prr"), key(&wider, "deep-prr"));
        assert_eq!(jobs(&CapstoneParams { nonlinearity: 0.75, ..p.clone() })[MAIN_SHARES.len()], Job::Sweep(0.75));
    }
}
