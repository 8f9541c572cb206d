//! The lesson "Embeddings": a synthetic implicit-feedback world, item embeddings from a randomized
//! SVD (of the interactions or of their PPMI co-occurrences), a query = the mean of a user's items,
//! then BPR from the SVD start and from a random start, side by side; ranking metrics against
//! popularity and the world's own probabilities.

use super::bpr::{BprModel, BprParams, BprTrainer, Init, Optimizer};
use super::metrics::{self, RankingMetrics, UserTable};
use super::rsvd::{self, max_relative_error, PmiParams, RsvdParams};
use super::sparse::{Csr, DenseMatrix};
use super::{InteractionWorld, WorldSpec};
use crate::core::budget::Estimate;
use crate::core::experiment::{Experiment, Part};
use crate::core::math::{exp, ln};
use crate::core::params::{Checked, Issue, Kind, LessonParams, Spec};
use crate::core::progress::{staged, Progress};
use crate::core::stages::{bytes_of, Footprint, Graph, Stage, StageCache};
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingsParams {
    pub users: i64,
    pub items: i64,
    pub topics: i64,
    pub density: f64,
    pub source: &'static str,
    pub dim: i64,
    pub oversampling: i64,
    pub power_iterations: i64,
    pub optimizer: &'static str,
    pub learning_rate: f64,
    pub negatives: i64,
    pub epochs: i64,
    pub query_map: &'static str,
    pub top_k: i64,
    pub eval_users: i64,
    pub user: i64,
    pub seed: u64,
}

impl Default for EmbeddingsParams {
    fn default() -> Self {
        EmbeddingsParams {
            users: 3000,
            items: 1500,
            topics: 10,
            density: 0.02,
            source: "interactions",
            dim: 32,
            oversampling: 10,
            power_iterations: 2,
            optimizer: "adam",
            learning_rate: 0.003,
            negatives: 1,
            epochs: 10,
            query_map: "off",
            top_k: 10,
            eval_users: 1000,
            user: 0,
            seed: 1,
        }
    }
}

pub const SOURCES: &[(&str, &str)] =
    &[("interactions", "SVD of the user × item interactions"), ("pmi", "SVD of the item × item PPMI co-occurrences")];
pub const OPTIMIZERS: &[(&str, &str)] = &[("adam", "Adam (lazy: touched rows only)"), ("sgd", "Plain SGD")];
pub const QUERY_MAPS: &[(&str, &str)] = &[("off", "query = mean of the user's items"), ("on", "query = W · mean, W learned (d × d)")];

/// Work a tab is asked for: rSVD touches every non-zero (2q + 2)(k + p) times; a BPR epoch every
/// observed interaction (1 + negatives) times with d-vectors, and the query's history too.
const MAX_RSVD_WORK: f64 = 2e10;
const MAX_BPR_WORK: f64 = 2e10;
/// Rows and columns of the block whose exact spectrum is computed.
const BLOCK_USERS: u32 = 600;
const BLOCK_ITEMS: u32 = 300;
/// Items drawn on the 2-D maps.
const MAP_ITEMS: u32 = 1500;
const POWER_ITERATION_GRID: [u32; 6] = [0, 1, 2, 3, 4, 6];

const SPECS: &[Spec] = &[
    Spec { name: "users", label: "Users", help: "rows of the interaction matrix", kind: Kind::Int { min: 20, max: 50_000, log: true } },
    Spec {
        name: "items",
        label: "Items P",
        help: "columns of the interaction matrix",
        kind: Kind::Int { min: 20, max: 20_000, log: true },
    },
    Spec {
        name: "topics",
        label: "Topics",
        help: "latent tastes; each user likes 2 of them",
        kind: Kind::Int { min: 1, max: 64, log: false },
    },
    Spec {
        name: "density",
        label: "Density",
        help: "share of the matrix that is non-zero (1 % = 0.01)",
        kind: Kind::Float { min: 0.001, max: 0.2, log: true },
    },
    Spec { name: "source", label: "SVD of", help: "which matrix the embeddings factorise", kind: Kind::Choice(SOURCES) },
    Spec { name: "dim", label: "Embedding dimension d", help: "rank of the SVD", kind: Kind::Int { min: 2, max: 128, log: true } },
    Spec {
        name: "oversampling",
        label: "Oversampling p",
        help: "extra random directions beyond d",
        kind: Kind::Int { min: 0, max: 64, log: false },
    },
    Spec {
        name: "power_iterations",
        label: "Power iterations q",
        help: "passes of (A Aᵀ) that sharpen the spectrum",
        kind: Kind::Int { min: 0, max: 8, log: false },
    },
    Spec { name: "optimizer", label: "Optimizer", help: "how BPR steps", kind: Kind::Choice(OPTIMIZERS) },
    Spec {
        name: "learning_rate",
        label: "BPR learning rate",
        help: "step size (Adam: ~0.001–0.01; SGD: ~0.05–0.5)",
        kind: Kind::Float { min: 1e-5, max: 2.0, log: true },
    },
    Spec { name: "negatives", label: "Negatives", help: "sampled negatives per positive", kind: Kind::Int { min: 1, max: 20, log: false } },
    Spec {
        name: "epochs",
        label: "BPR epochs",
        help: "passes over the observed interactions",
        kind: Kind::Int { min: 1, max: 200, log: true },
    },
    Spec { name: "query_map", label: "Query function", help: "how a user's items become a query", kind: Kind::Choice(QUERY_MAPS) },
    Spec { name: "top_k", label: "K (metrics)", help: "recall@K, precision@K, NDCG@K", kind: Kind::Int { min: 1, max: 100, log: true } },
    Spec {
        name: "eval_users",
        label: "Evaluated users",
        help: "users the metrics average over (the first ones)",
        kind: Kind::Int { min: 10, max: 50_000, log: true },
    },
    Spec {
        name: "user",
        label: "User shown",
        help: "whose history and top-K the table lists",
        kind: Kind::Int { min: 0, max: 49_999, log: false },
    },
    Spec { name: "seed", label: "Seed", help: "same seed and parameters → same numbers", kind: Kind::Seed },
];

impl LessonParams for EmbeddingsParams {
    fn specs() -> &'static [Spec] {
        SPECS
    }

    crate::fields!(
        users,
        items,
        topics,
        density,
        source,
        dim,
        oversampling,
        power_iterations,
        optimizer,
        learning_rate,
        negatives,
        epochs,
        query_map,
        top_k,
        eval_users,
        user,
        seed
    );

    fn cross_check(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        if self.topics > self.items {
            issues.push(Issue {
                param: "topics",
                message: format!("{} topics need at least as many items (P is {})", self.topics, self.items),
            });
        }
        let columns = if self.source == "pmi" { self.items } else { self.items.min(self.users) };
        if self.dim + self.oversampling > columns {
            issues.push(Issue {
                param: "dim",
                message: format!("d + p = {} is more than the matrix's smaller side ({columns})", self.dim + self.oversampling),
            });
        }
        if self.user >= self.users {
            issues.push(Issue { param: "user", message: format!("there are {} users (0 … {})", self.users, self.users - 1) });
        }
        let nonzeros = self.users as f64 * self.items as f64 * self.density;
        let rsvd_work = nonzeros * (2 * self.power_iterations + 2) as f64 * (self.dim + self.oversampling) as f64;
        if rsvd_work > MAX_RSVD_WORK {
            issues.push(Issue {
                param: "density",
                message: format!(
                    "the SVD would take about {rsvd_work:.0e} operations (non-zeros × (2q + 2) × (d + p)), more than a tab runs \
                     quickly ({MAX_RSVD_WORK:.0e}); lower users, items, density, d or q"
                ),
            });
        }
        // Each positive's query is its user's history mean, so a user costs n_u² d per epoch.
        let per_user = self.items as f64 * self.density;
        let bpr_work = self.users as f64 * per_user * (per_user + self.negatives as f64 + 1.0) * self.dim as f64 * self.epochs as f64 * 2.0;
        if bpr_work > MAX_BPR_WORK {
            issues.push(Issue {
                param: "epochs",
                message: format!(
                    "BPR would take about {bpr_work:.0e} operations (two starts × epochs × users × n_u × (n_u + negatives) × d), \
                     more than a tab runs quickly ({MAX_BPR_WORK:.0e}); lower the epochs, density or d"
                ),
            });
        }
        issues
    }
}

impl EmbeddingsParams {
    pub fn world(&self) -> Result<InteractionWorld, String> {
        InteractionWorld::generate(&WorldSpec::new(self.users as u32, self.items as u32, self.topics as u32, self.density), self.seed)
    }

    fn rsvd_params(&self, power_iterations: u32) -> RsvdParams {
        RsvdParams::new(self.dim as u32, self.oversampling as u32, power_iterations, self.seed)
    }

    fn bpr_params(&self) -> BprParams {
        let optimizer = if self.optimizer == "sgd" { Optimizer::Sgd } else { Optimizer::Adam };
        BprParams { negatives: self.negatives as u32, ..BprParams::new(self.epochs as u32, optimizer, self.learning_rate, self.seed) }
    }
}

/// The spectrum of a block of the matrix, exact and randomized, and rSVD's error as q grows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    pub block_users: u32,
    pub block_items: u32,
    pub exact: Vec<f64>,
    pub randomized: Vec<f64>,
    /// (q, max relative error of the top d singular values) on the block.
    pub error_vs_q: Vec<(u32, f64)>,
    /// The top d singular values of the whole matrix (the embeddings' scale).
    pub full: Vec<f64>,
}

/// One training run of BPR: the metrics before training (epoch 0) and after each epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Training {
    pub init: String,
    pub loss: Vec<f64>,
    pub metrics: Vec<RankingMetrics>,
    pub epoch_ms: f64,
    pub triples_per_epoch: f64,
}

/// Items projected on the first two principal components of their embeddings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemMap {
    pub title: String,
    /// (x, y, topic) per drawn item.
    pub points: Vec<(f64, f64, u32)>,
    /// Share of the embeddings' variance the two components hold.
    pub explained: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FromSvd {
    pub nonzeros: u32,
    pub spectrum: Spectrum,
    pub svd_ms: f64,
    pub ppmi_nonzeros: Option<u32>,
    pub popularity: RankingMetrics,
    pub oracle: RankingMetrics,
    pub training: Training,
    pub map_before: ItemMap,
    pub map_after: ItemMap,
    pub user_before: UserTable,
    pub user_after: UserTable,
}

/// What one of the two jobs yields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Job {
    FromSvd(Box<FromSvd>),
    FromRandom(Training),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsReport {
    pub users: u32,
    pub items: u32,
    pub dim: u32,
    pub top_k: u32,
    pub eval_users: u32,
    pub svd: FromSvd,
    pub random: Training,
}

pub struct EmbeddingsLesson;

/// The lesson's stages. The SVD start (part 0) and the random start (part 1) share only the
/// world. A change of q (power_iterations) reruns the SVD of the whole matrix and the training
/// from it; the random start, the baselines and the block's exact spectrum stay. A change of the
/// user shown reruns no training.
const EMBEDDINGS_GRAPH: Graph = Graph {
    lesson: "embeddings",
    stages: &[
        // Users, items, topics and the sparse interactions, split into observed and held out.
        Stage { name: "world", reads: &["users", "items", "topics", "density", "seed"], uses: &[] },
        // Popularity's and the world's own ranking metrics.
        Stage { name: "baselines", reads: &["top_k", "eval_users"], uses: &["world"] },
        // The matrix factorised: the observed interactions, or their PPMI co-occurrences.
        Stage { name: "matrix", reads: &["source"], uses: &["world"] },
        // The exact spectrum of a block of it and rSVD's error there for q = 0, 1, 2, …
        Stage { name: "block_spectrum", reads: &["dim", "oversampling"], uses: &["matrix"] },
        // The randomized SVD of the whole matrix: item embeddings and singular values.
        Stage { name: "svd", reads: &["dim", "oversampling", "power_iterations"], uses: &["matrix"] },
        // BPR from the SVD embeddings: curves, the trained model, the item maps.
        Stage {
            name: "svd_training",
            reads: &["optimizer", "learning_rate", "negatives", "epochs", "query_map", "top_k", "eval_users"],
            uses: &["svd"],
        },
        // BPR from a random start.
        Stage {
            name: "random_training",
            reads: &["dim", "optimizer", "learning_rate", "negatives", "epochs", "query_map", "top_k", "eval_users"],
            uses: &["world"],
        },
        // One user's top-K before and after training.
        Stage { name: "user_tables", reads: &["user"], uses: &["svd_training"] },
    ],
};

/// Householder QR of an m × l block and its thin Q: about 4·m·l² multiply-adds.
const QR_FLOPS_PER_ROW_AND_RANK_SQUARED: f64 = 4.0;
/// A symmetric eigen-decomposition with its vectors (tridiagonalisation, QL): about 9·n³.
const EIGEN_FLOPS_PER_CUBE: f64 = 9.0;
/// A stored co-occurrence (sorted, its PMI's logarithm, pushed twice) costs about this many
/// item-pair visits.
const PMI_ENTRY_IN_PAIR_VISITS: f64 = 8.0;
/// BPR reads and updates rows in random order: each doubling of its arrays beyond a core's cache
/// (1 MiB on the reference machine) makes a row-dimension about 20 % slower (measured: d = 128
/// trains 5× slower than d = 32, not 4×).
const CORE_CACHE_BYTES: f64 = 1_048_576.0;
const SLOWDOWN_PER_DOUBLING: f64 = 0.2;

/// ns per drawn interaction × (topics + log₂ items): a topic's categorical draw, then a binary
/// search among its items.
const NS_PER_WORLD_STEP: f64 = 116.6;
/// ns per item-pair visit while counting co-occurrences for PMI.
const NS_PER_PMI_PAIR: f64 = 17.3;
/// ns per multiply-add of the randomized SVD of the whole matrix (sparse products, QRs, small SVD).
const NS_PER_SVD_FLOP: f64 = 0.415;
/// ns per multiply-add of the block's exact and randomized spectra.
const NS_PER_BLOCK_FLOP: f64 = 0.167;
/// ns per observed interaction × dimension of a BPR epoch: the positive's leave-one-out query, the
/// back-propagation into the history, its row's update.
const NS_PER_POSITIVE_DIM: f64 = 7.78;
/// ns per sampled negative × dimension of a BPR epoch: its score, its gradient, its row's update.
const NS_PER_NEGATIVE_DIM: f64 = 8.94;
/// ns per multiply-add with the query map W (3·d² per positive, 2·d² per user's step).
const NS_PER_QUERY_MAP_FLOP: f64 = 0.39;
/// ns per item × (dimension + 1) while evaluating: the item's score and its top-K test.
const NS_PER_EVAL_STEP: f64 = 0.408;

fn log2(x: f64) -> f64 {
    ln(x) / ln(2.0)
}

/// Multiply-adds of [`rsvd::randomized_svd`] on a rows × cols matrix with `nonzeros` entries,
/// rank k, sketch width l, q power iterations: Ω, the 2q + 2 sparse products, the 1 + 2q QRs
/// (1 + q of rows × l, q of cols × l), the small SVD (Gram matrix, eigen-decomposition, V) and U
/// when asked for.
fn rsvd_flops(rows: f64, cols: f64, nonzeros: f64, k: f64, l: f64, q: f64, want_left: bool) -> f64 {
    let products = (2.0 * q + 2.0) * nonzeros * l;
    let qrs = QR_FLOPS_PER_ROW_AND_RANK_SQUARED * l * l * ((1.0 + q) * rows + q * cols);
    let small_svd = cols * l * l / 2.0 + EIGEN_FLOPS_PER_CUBE * l * l * l + cols * l * k;
    let left = if want_left { rows * l * k } else { 0.0 };
    cols * l + products + qrs + small_svd + left
}

/// Multiply-adds of [`item_map`]: the covariance of the first `MAP_ITEMS` items, its eigenvectors.
fn item_map_flops(items: f64, dim: f64) -> f64 {
    items.min(MAP_ITEMS as f64) * dim * dim + EIGEN_FLOPS_PER_CUBE * dim * dim * dim
}

impl Experiment for EmbeddingsLesson {
    const GRAPH: Graph = EMBEDDINGS_GRAPH;
    const TIMINGS: &'static [&'static str] = &["Ok.svd.svd_ms", "Ok.svd.training.epoch_ms", "Ok.random.epoch_ms"];
    type Params = EmbeddingsParams;
    /// An error when the world or the SVD cannot be built for these parameters (shown in place
    /// of the results; the parameter checks catch what they can first).
    type Report = Result<EmbeddingsReport, String>;
    type Partial = Vec<Result<Job, String>>;

    /// Two jobs, run in parallel on the page: the SVD start (and everything derived from the
    /// SVD), and the random start.
    fn parts(_params: &Checked<EmbeddingsParams>) -> u32 {
        2
    }

    /// A term per costly stage: the world, PMI's co-occurrences, the SVD of the whole matrix, the
    /// block's spectra, BPR from both starts (positives, negatives, W) and the metrics before
    /// training and after every epoch (the baselines' rankings with them). The user tables are small.
    fn estimate(params: &Checked<EmbeddingsParams>) -> Estimate {
        let p: &EmbeddingsParams = params;
        let spec = WorldSpec::new(p.users as u32, p.items as u32, p.topics as u32, p.density);
        let (users, items, topics, dim) = (p.users as f64, p.items as f64, p.topics as f64, p.dim as f64);
        let (oversampling, power_iterations, epochs) = (p.oversampling as f64, p.power_iterations as f64, p.epochs as f64);
        // A user's interactions (activity has mean 1; the clamps of `generate`), then the observed ones.
        let drawn = (p.density * items).clamp(3.0, (p.items / 2) as f64);
        let held = (spec.held_out_fraction * drawn).round().clamp(1.0, (drawn - 2.0).max(1.0));
        let history = drawn - held;
        let observed = users * history;
        let world = users * drawn * (topics + log2(items));

        // PMI visits every pair of every user's items, Σ n_u² (log-normal activity: E[n_u²] =
        // n² e^{σ²}), and stores the distinct pairs (as if spread evenly: topics make fewer).
        let pmi = p.source == "pmi";
        let pairs = users * history * history * exp(spec.activity_spread * spec.activity_spread);
        let cooccurrences = items * items * (1.0 - exp(-pairs / (items * items)));
        // Over its pair budget PMI refuses before counting, and the SVD job ends there; the random
        // start still trains.
        let svd_job = !(pmi && pairs > PmiParams::default().max_pairs as f64);
        let matrix = if pmi && svd_job { pairs + PMI_ENTRY_IN_PAIR_VISITS * cooccurrences } else { 0.0 };
        let (rows, cols, nonzeros) = if pmi { (items, items, cooccurrences) } else { (users, items, observed) };

        let (svd, block) = if svd_job {
            let l = (dim + oversampling).min(rows.min(cols));
            let svd = rsvd_flops(rows, cols, nonzeros, dim, l, power_iterations, pmi) + 2.0 * item_map_flops(items, dim);
            // The block: its exact spectrum, then rSVD at each q of the grid and at q itself.
            let (block_rows, block_cols) = (rows.min(BLOCK_USERS as f64), cols.min(BLOCK_ITEMS as f64));
            let block_nonzeros = nonzeros * (block_rows / rows) * (block_cols / cols);
            let smaller = block_rows.min(block_cols);
            let block_rank = dim.min((smaller - oversampling).max(0.0)).max(1.0);
            let block_l = (block_rank + oversampling).min(smaller);
            let exact = block_rows * block_cols * block_cols + EIGEN_FLOPS_PER_CUBE * block_cols * block_cols * block_cols;
            let randomized: f64 = POWER_ITERATION_GRID
                .iter()
                .map(|&q| q as f64)
                .chain([power_iterations])
                .map(|q| rsvd_flops(block_rows, block_cols, block_nonzeros, block_rank, block_l, q, false))
                .sum();
            (svd, exact + randomized)
        } else {
            (0.0, 0.0)
        };

        let starts = if svd_job { 2.0 } else { 1.0 };
        // The embeddings, the gradient's rows and (Adam) both moments, 8 bytes an entry.
        let arrays = if p.optimizer == "adam" { 4.0 } else { 2.0 };
        let slowdown = 1.0 + SLOWDOWN_PER_DOUBLING * log2(items * dim * 8.0 * arrays / CORE_CACHE_BYTES).max(0.0);
        let positives = starts * epochs * observed * dim * slowdown;
        let negatives = positives * p.negatives as f64;
        let map_on = p.query_map == "on";
        let query_map = if map_on { starts * epochs * (3.0 * observed + 2.0 * users) * dim * dim } else { 0.0 };
        // Each start's metrics before training and after every epoch (the query, then every
        // item's score), and popularity's and the oracle's once (a score and a test per item).
        let eval_users = (p.eval_users as f64).min(users);
        let per_user = items * (dim + 1.0) + history * dim + if map_on { dim * dim } else { 0.0 };
        let baselines = if svd_job { 2.0 * eval_users * items * 2.0 } else { 0.0 };
        let evaluation = starts * (epochs + 1.0) * eval_users * per_user + baselines;

        Estimate::new()
            .term("building the interaction world", &["users", "density", "topics", "items"], world, NS_PER_WORLD_STEP)
            .term("counting item co-occurrences for PMI", &["users", "density", "items"], matrix, NS_PER_PMI_PAIR)
            .term(
                "computing the randomized SVD",
                &["users", "items", "density", "dim", "oversampling", "power_iterations"],
                svd,
                NS_PER_SVD_FLOP,
            )
            .term("computing a block's spectrum for the plot", &["dim", "oversampling"], block, NS_PER_BLOCK_FLOP)
            .term("training BPR", &["epochs", "users", "density", "items", "dim"], positives, NS_PER_POSITIVE_DIM)
            .term(
                "scoring BPR's sampled negatives",
                &["negatives", "epochs", "users", "density", "items", "dim"],
                negatives,
                NS_PER_NEGATIVE_DIM,
            )
            .term("learning the query map W", &["dim", "epochs", "users", "density", "items"], query_map, NS_PER_QUERY_MAP_FLOP)
            .term("evaluating the rankings after every epoch", &["eval_users", "items", "epochs", "dim"], evaluation, NS_PER_EVAL_STEP)
    }

    /// Each term dominates at least one of these, a few seconds each natively.
    const CALIBRATION: &'static [&'static str] = &[
        // Training BPR: at the defaults, with 4× the rows, with rows beyond a core's cache.
        "",
        "users=12000",
        "dim=128&epochs=5",
        "users=20000&items=20000&density=0.002&dim=64&epochs=1&eval_users=100",
        // The sampled negatives; the query map; the evaluation.
        "negatives=8",
        "query_map=on&dim=48&epochs=5",
        "users=10000&items=3000&density=0.005&eval_users=10000&epochs=3",
        // The SVD of the whole matrix; the block's spectra.
        "users=20000&items=2000&density=0.01&dim=16&oversampling=64&power_iterations=8&epochs=1&eval_users=100",
        "users=800&items=400&dim=128&oversampling=64&epochs=1&eval_users=100",
        // The world (64 topics to scan per draw); PMI's counts; PMI and SGD at the defaults.
        "users=50000&items=2000&topics=64&density=0.03&dim=2&oversampling=0&epochs=1&eval_users=10",
        "users=20000&items=800&density=0.06&source=pmi&dim=2&oversampling=0&epochs=1&eval_users=10",
        "source=pmi&optimizer=sgd&learning_rate=0.1",
    ];

    fn run_part(
        params: &Checked<EmbeddingsParams>,
        part: Part,
        cache: &mut StageCache,
        progress: &mut dyn Progress,
    ) -> Vec<Result<Job, String>> {
        let p: &EmbeddingsParams = params;
        let jobs: Vec<u32> = part.range(2).collect();
        let count = jobs.len().max(1) as f64;
        let mut out = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let mut stage = staged(progress, i as f64 / count, (i + 1) as f64 / count);
            out.push(if *job == 0 {
                from_svd(p, cache, &mut stage).map(|r| Job::FromSvd(Box::new(r)))
            } else {
                (*random_training(p, cache, &mut stage)).clone().map(Job::FromRandom)
            });
        }
        progress.report(1.0, "done");
        out
    }

    /// One epoch of BPR (the world, the matrix and the SVD are the full run's).
    fn preview(params: &Checked<EmbeddingsParams>) -> Option<(EmbeddingsParams, String)> {
        (params.epochs > 1)
            .then(|| (EmbeddingsParams { epochs: 1, ..(**params).clone() }, format!("after 1 of {} BPR epochs", params.epochs)))
    }

    fn merge(params: &Checked<EmbeddingsParams>, partials: Vec<Vec<Result<Job, String>>>) -> Result<EmbeddingsReport, String> {
        let (mut svd, mut random) = (None, None);
        for job in partials.into_iter().flatten() {
            match job? {
                Job::FromSvd(s) => svd = Some(*s),
                Job::FromRandom(t) => random = Some(t),
            }
        }
        Ok(EmbeddingsReport {
            users: params.users as u32,
            items: params.items as u32,
            dim: params.dim as u32,
            top_k: params.top_k as u32,
            eval_users: (params.eval_users as u32).min(params.users as u32),
            svd: svd.ok_or("the SVD job did not run")?,
            random: random.ok_or("the random-start job did not run")?,
        })
    }

    fn failure(report: &Result<EmbeddingsReport, String>) -> Option<&str> {
        report.as_ref().err().map(String::as_str)
    }
}

/// Singular values of a small dense block from the eigenvalues of its Gram matrix AᵀA
/// (nalgebra's symmetric eigensolver uses only + − × ÷ √, so native and wasm agree bit for bit;
/// accurate down to about 1e-8 of the largest value, far below what the plot shows).
fn block_singular_values(block: &Csr) -> Vec<f64> {
    let dense: DMatrix<f64> = block.to_dense();
    let gram = dense.transpose() * &dense;
    let mut values: Vec<f64> = SymmetricEigen::new(gram).eigenvalues.iter().map(|l| l.max(0.0).sqrt()).collect();
    values.sort_by(|a, b| b.total_cmp(a));
    values
}

/// The first two principal components of the item embeddings (first `MAP_ITEMS` items).
fn item_map(title: &str, embeddings: &DenseMatrix, topics: &[u32]) -> ItemMap {
    let (items, d) = (embeddings.rows.min(MAP_ITEMS), embeddings.cols as usize);
    let mut mean = vec![0.0; d];
    for i in 0..items {
        embeddings.row(i).iter().zip(mean.iter_mut()).for_each(|(x, m)| *m += x / items as f64);
    }
    let mut covariance = DMatrix::<f64>::zeros(d, d);
    for i in 0..items {
        let row: Vec<f64> = embeddings.row(i).iter().zip(&mean).map(|(x, m)| x - m).collect();
        for a in 0..d {
            for b in 0..d {
                covariance[(a, b)] += row[a] * row[b];
            }
        }
    }
    let eigen = SymmetricEigen::new(covariance);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let total: f64 = eigen.eigenvalues.iter().map(|l| l.max(0.0)).sum();
    // Each axis's sign: its largest entry positive, so that reruns do not flip the picture.
    let axis = |j: usize| {
        let v: Vec<f64> = eigen.eigenvectors.column(order[j]).iter().copied().collect();
        let largest = v.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if largest < 0.0 {
            v.iter().map(|x| -x).collect()
        } else {
            v
        }
    };
    let (x_axis, y_axis) = (axis(0), axis(1.min(d - 1)));
    let points = (0..items)
        .map(|i| {
            let row: Vec<f64> = embeddings.row(i).iter().zip(&mean).map(|(x, m)| x - m).collect();
            let project = |v: &[f64]| row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
            (project(&x_axis), project(&y_axis), topics[i as usize])
        })
        .collect();
    let explained = if total > 0.0 {
        (eigen.eigenvalues[order[0]].max(0.0) + if d > 1 { eigen.eigenvalues[order[1]].max(0.0) } else { 0.0 }) / total
    } else {
        0.0
    };
    ItemMap { title: title.into(), points, explained }
}

/// Train BPR from `model`, recording the metrics before training and after each epoch.
fn train(
    p: &EmbeddingsParams,
    world: &InteractionWorld,
    model: &mut BprModel,
    init: &str,
    progress: &mut dyn Progress,
) -> Result<Training, String> {
    let params = p.bpr_params();
    let mut trainer = BprTrainer::new(model, &world.observed, &params)?;
    let (k, eval_users) = (p.top_k as u32, p.eval_users as u32);
    let mut metrics = vec![metrics::evaluate_model(model, world, k, eval_users)];
    let mut loss = Vec::new();
    let mut training_ms = 0.0;
    let epochs = params.epochs;
    for epoch in 0..epochs {
        let mut stage = staged(progress, epoch as f64 / epochs as f64, (epoch + 1) as f64 / epochs as f64);
        let start = stage.now_ms();
        loss.push(trainer.epoch(model, &world.observed, &mut stage));
        training_ms += stage.now_ms() - start;
        metrics.push(metrics::evaluate_model(model, world, k, eval_users));
    }
    Ok(Training {
        init: init.into(),
        loss,
        metrics,
        epoch_ms: training_ms / epochs.max(1) as f64,
        triples_per_epoch: world.observed.nonzeros() as f64 * params.negatives as f64,
    })
}

type Stage_<T> = Rc<Result<T, String>>;

fn world(p: &EmbeddingsParams, cache: &mut StageCache) -> Stage_<InteractionWorld> {
    cache.get_or_compute(EMBEDDINGS_GRAPH.key("world", p), |_| p.world())
}

/// The world, or the error that replaced it.
fn world_or_error(p: &EmbeddingsParams, cache: &mut StageCache) -> Result<Rc<Result<InteractionWorld, String>>, String> {
    let world = world(p, cache);
    match &*world {
        Ok(_) => Ok(world),
        Err(e) => Err(e.clone()),
    }
}

/// A stage's value, or its error.
fn value<T>(stage: &Rc<Result<T, String>>) -> Result<&T, String> {
    (**stage).as_ref().map_err(Clone::clone)
}

fn ok<T>(value: &Result<T, String>) -> &T {
    value.as_ref().expect("checked by world_or_error")
}

struct Baselines {
    popularity: RankingMetrics,
    oracle: RankingMetrics,
}

fn baselines(p: &EmbeddingsParams, cache: &mut StageCache) -> Stage_<Baselines> {
    cache.get_or_compute(EMBEDDINGS_GRAPH.key("baselines", p), |cache| {
        let world = world_or_error(p, cache)?;
        let world = ok(&world);
        let (k, eval_users) = (p.top_k as u32, p.eval_users as u32);
        Ok(Baselines {
            popularity: metrics::evaluate_popularity(world, k, eval_users),
            oracle: metrics::evaluate(&world.observed, &world.held_out, k, eval_users, &mut |u, _, out| world.true_scores(u, out)),
        })
    })
}

/// The PPMI matrix when the source is PMI (None: the observed interactions themselves).
fn matrix(p: &EmbeddingsParams, cache: &mut StageCache) -> Stage_<Option<Csr>> {
    cache.get_or_compute(EMBEDDINGS_GRAPH.key("matrix", p), |cache| {
        let world = world_or_error(p, cache)?;
        if p.source == "pmi" {
            Ok(Some(rsvd::ppmi_matrix(&ok(&world).observed, &PmiParams::default())?))
        } else {
            Ok(None)
        }
    })
}

/// The block's exact singular values and rSVD's error there as q grows (independent of q).
struct BlockSpectrum {
    block_users: u32,
    block_items: u32,
    exact: Vec<f64>,
    error_vs_q: Vec<(u32, f64)>,
}

fn block_of(matrix: &Csr) -> Csr {
    matrix.block(BLOCK_USERS.min(matrix.rows), BLOCK_ITEMS.min(matrix.cols))
}

fn block_params(p: &EmbeddingsParams, block: &Csr, q: u32) -> RsvdParams {
    let smaller = block.rows.min(block.cols);
    let rank = (p.dim as u32).min(smaller.saturating_sub(p.oversampling as u32)).max(1);
    RsvdParams { rank, ..p.rsvd_params(q) }
}

fn block_spectrum(p: &EmbeddingsParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Stage_<BlockSpectrum> {
    cache.get_or_compute(EMBEDDINGS_GRAPH.key("block_spectrum", p), |cache| {
        let world = world_or_error(p, cache)?;
        let matrix = matrix(p, cache);
        let factorised = Option::as_ref(value(&matrix)?).unwrap_or(&ok(&world).observed);
        let block = block_of(factorised);
        let exact = block_singular_values(&block);
        let mut error_vs_q = Vec::new();
        for (i, q) in POWER_ITERATION_GRID.iter().enumerate() {
            progress.report(i as f64 / POWER_ITERATION_GRID.len() as f64, "randomized SVD of a block, as q grows");
            let values = rsvd::randomized_svd(&block, &block_params(p, &block, *q), false, &mut ())?.singular_values;
            error_vs_q.push((*q, max_relative_error(&values, &exact)));
        }
        Ok(BlockSpectrum { block_users: block.rows, block_items: block.cols, exact, error_vs_q })
    })
}

/// The randomized SVD of the whole matrix, and rSVD of the block at the same q.
struct Svd {
    embeddings: DenseMatrix,
    singular_values: Vec<f64>,
    block_randomized: Vec<f64>,
    svd_ms: f64,
    map_before: ItemMap,
}

fn svd(p: &EmbeddingsParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Stage_<Svd> {
    cache.get_or_compute(EMBEDDINGS_GRAPH.key("svd", p), |cache| {
        let world = world_or_error(p, cache)?;
        let world = ok(&world);
        let matrix = matrix(p, cache);
        let ppmi = Option::as_ref(value(&matrix)?);
        progress.report(0.0, "randomized SVD");
        let start = progress.now_ms();
        let rsvd_params = p.rsvd_params(p.power_iterations as u32);
        let (embeddings, singular_values) = match ppmi {
            Some(ppmi) => {
                let pmi = rsvd::embed_ppmi(ppmi, &rsvd_params, &mut ())?;
                (pmi.item_embeddings, pmi.singular_values)
            }
            None => {
                let svd = rsvd::randomized_svd(&world.observed, &rsvd_params, false, &mut ())?;
                (rsvd::item_embeddings(&svd), svd.singular_values)
            }
        };
        let svd_ms = progress.now_ms() - start;
        let block = block_of(ppmi.unwrap_or(&world.observed));
        let block_randomized =
            rsvd::randomized_svd(&block, &block_params(p, &block, p.power_iterations as u32), false, &mut ())?.singular_values;
        let map_before = item_map("SVD embeddings", &embeddings, &world.item_topic);
        Ok(Svd { embeddings, singular_values, block_randomized, svd_ms, map_before })
    })
}

/// BPR from the SVD: the curves, the trained model and its item map.
struct SvdTraining {
    training: Training,
    model: BprModel,
    map_after: ItemMap,
}

fn svd_training(p: &EmbeddingsParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Stage_<SvdTraining> {
    cache.get_or_compute(EMBEDDINGS_GRAPH.key("svd_training", p), |cache| {
        let world = world_or_error(p, cache)?;
        let world = ok(&world);
        let svd = svd(p, cache, progress);
        let svd = value(&svd)?;
        let mut model = BprModel::new(Init::Embeddings(svd.embeddings.clone()), world.items(), p.query_map == "on", p.seed)?;
        let training = train(p, world, &mut model, "svd", progress)?;
        let map_after = item_map("After BPR from the SVD", &model.item_embeddings, &world.item_topic);
        Ok(SvdTraining { training, model, map_after })
    })
}

/// One user's top-K before training (the SVD embeddings as they are) and after.
fn user_tables(p: &EmbeddingsParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Stage_<(UserTable, UserTable)> {
    cache.get_or_compute(EMBEDDINGS_GRAPH.key("user_tables", p), |cache| {
        let world = world_or_error(p, cache)?;
        let world = ok(&world);
        let svd = svd(p, cache, progress);
        let svd = value(&svd)?;
        let trained = svd_training(p, cache, progress);
        let trained = value(&trained)?;
        let (user, k) = (p.user as u32, p.top_k as u32);
        let untrained = BprModel::new(Init::Embeddings(svd.embeddings.clone()), world.items(), p.query_map == "on", p.seed)?;
        let mut scores = Vec::new();
        metrics::model_scores(&untrained, world.history(user), &mut scores);
        let before = metrics::user_table(world, user, &scores, k);
        metrics::model_scores(&trained.model, world.history(user), &mut scores);
        Ok((before, metrics::user_table(world, user, &scores, k)))
    })
}

fn from_svd(p: &EmbeddingsParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Result<FromSvd, String> {
    progress.report(0.0, "building the interaction matrix");
    let world = world_or_error(p, cache)?;
    let world = ok(&world);
    let matrix = matrix(p, cache);
    let ppmi = Option::as_ref(value(&matrix)?);
    let svd = svd(p, cache, &mut staged(progress, 0.05, 0.1));
    let svd = value(&svd)?;
    let block = block_spectrum(p, cache, &mut staged(progress, 0.1, 0.2));
    let block = value(&block)?;
    progress.report(0.2, "baselines");
    let baselines = baselines(p, cache);
    let baselines = value(&baselines)?;
    let trained = svd_training(p, cache, &mut staged(progress, 0.25, 1.0));
    let trained = value(&trained)?;
    let tables = user_tables(p, cache, progress);
    let (user_before, user_after) = value(&tables)?.clone();
    Ok(FromSvd {
        nonzeros: world.observed.nonzeros(),
        spectrum: Spectrum {
            block_users: block.block_users,
            block_items: block.block_items,
            exact: block.exact.clone(),
            randomized: svd.block_randomized.clone(),
            error_vs_q: block.error_vs_q.clone(),
            full: svd.singular_values.clone(),
        },
        svd_ms: svd.svd_ms,
        ppmi_nonzeros: ppmi.map(Csr::nonzeros),
        popularity: baselines.popularity.clone(),
        oracle: baselines.oracle.clone(),
        training: trained.training.clone(),
        map_before: svd.map_before.clone(),
        map_after: trained.map_after.clone(),
        user_before,
        user_after,
    })
}

fn random_training(p: &EmbeddingsParams, cache: &mut StageCache, progress: &mut dyn Progress) -> Stage_<Training> {
    cache.get_or_compute(EMBEDDINGS_GRAPH.key("random_training", p), |cache| {
        // The world is built in this worker too rather than shipped from the other job: on the
        // page the two jobs run in different workers, and building it costs far less than training.
        progress.report(0.0, "building the interaction matrix");
        let world = world_or_error(p, cache)?;
        let world = ok(&world);
        let mut model = BprModel::new(Init::Random { dim: p.dim as u32, std: 0.1 }, world.items(), p.query_map == "on", p.seed)?;
        train(p, world, &mut model, "random", &mut staged(progress, 0.05, 1.0))
    })
}

impl Footprint for Csr {
    fn footprint(&self) -> usize {
        bytes_of(&self.row_offsets) + bytes_of(&self.col_ids) + bytes_of(&self.values)
    }
}

impl Footprint for DenseMatrix {
    fn footprint(&self) -> usize {
        bytes_of(&self.data)
    }
}

impl Footprint for InteractionWorld {
    fn footprint(&self) -> usize {
        self.observed.footprint()
            + self.held_out.footprint()
            + bytes_of(&self.item_topic)
            + bytes_of(&self.item_popularity)
            + bytes_of(&self.user_topic_weights)
    }
}

impl Footprint for Baselines {
    fn footprint(&self) -> usize {
        256
    }
}

impl Footprint for ItemMap {
    fn footprint(&self) -> usize {
        bytes_of(&self.points) + self.title.capacity()
    }
}

impl Footprint for BlockSpectrum {
    fn footprint(&self) -> usize {
        bytes_of(&self.exact) + bytes_of(&self.error_vs_q)
    }
}

impl Footprint for Svd {
    fn footprint(&self) -> usize {
        self.embeddings.footprint() + bytes_of(&self.singular_values) + bytes_of(&self.block_randomized) + self.map_before.footprint()
    }
}

impl Footprint for Training {
    fn footprint(&self) -> usize {
        bytes_of(&self.loss) + bytes_of(&self.metrics)
    }
}

impl Footprint for SvdTraining {
    fn footprint(&self) -> usize {
        self.training.footprint()
            + self.model.item_embeddings.footprint()
            + bytes_of(&self.model.item_bias)
            + self.model.query_map.as_ref().map_or(0, Footprint::footprint)
            + self.map_after.footprint()
    }
}

impl Footprint for UserTable {
    fn footprint(&self) -> usize {
        bytes_of(&self.history) + bytes_of(&self.held_out) + 256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::experiment::{merge_query, run_part_query, run_query};
    use crate::core::params::check;

    #[test]
    fn a_walk_through_parameter_changes_gives_what_a_fresh_run_gives() {
        let choices: &[(&str, &[&str])] = &[
            ("power_iterations", &["0", "1", "3"]),
            ("dim", &["4", "8"]),
            ("oversampling", &["2", "5"]),
            ("source", &["interactions", "pmi"]),
            ("epochs", &["1", "2"]),
            ("optimizer", &["adam", "sgd"]),
            ("learning_rate", &["0.003", "0.05"]),
            ("negatives", &["1", "2"]),
            ("query_map", &["off", "on"]),
            ("top_k", &["5", "10"]),
            ("eval_users", &["40", "80"]),
            ("user", &["0", "7"]),
            ("users", &["120", "150"]),
            ("items", &["80", "100"]),
            ("topics", &["3", "5"]),
            ("density", &["0.05", "0.08"]),
            ("seed", &["1", "2"]),
        ];
        let base = "users=120&items=80&topics=4&density=0.06&dim=6&oversampling=3&epochs=2&eval_users=60";
        let stats = crate::core::stages::tests::walk::<EmbeddingsLesson>(base, choices, 60, 5);
        assert!(stats.hits > 10, "{stats:?}");
    }

    #[test]
    fn the_estimate_grows_with_the_sizes_and_the_calibration_queries_are_valid() {
        use crate::core::params::parse_strict;
        let estimate = |q: &str| EmbeddingsLesson::estimate(&parse_strict::<EmbeddingsParams>(q).unwrap());
        let base = estimate("").native_seconds();
        for q in
            ["users=12000", "items=3000", "density=0.04", "dim=64", "epochs=20", "negatives=4", "eval_users=3000", "power_iterations=6"]
        {
            assert!(estimate(q).native_seconds() > base, "{q}: {} vs {base}", estimate(q).native_seconds());
        }
        assert!(estimate("query_map=on").native_seconds() > base);
        // Over PMI's pair budget the SVD job stops at once: no SVD, one start trains.
        let over = estimate("source=pmi&users=50000&items=2000&density=0.05&dim=2&epochs=1");
        assert!(over.terms.iter().all(|t| t.what != "computing the randomized SVD"), "{over:?}");
        assert!((8..=12).contains(&EmbeddingsLesson::CALIBRATION.len()));
        for q in EmbeddingsLesson::CALIBRATION {
            assert!(parse_strict::<EmbeddingsParams>(q).is_ok(), "{q}: {:?}", parse_strict::<EmbeddingsParams>(q).err());
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(check(EmbeddingsParams::default()).is_ok());
    }

    fn strip(json: &str) -> EmbeddingsReport {
        let mut r: Result<EmbeddingsReport, String> = serde_json::from_str(json).unwrap();
        let r = r.as_mut().unwrap();
        r.svd.svd_ms = 0.0;
        r.svd.training.epoch_ms = 0.0;
        r.random.epoch_ms = 0.0;
        r.clone()
    }

    #[test]
    fn parts_give_the_same_report_and_training_beats_popularity() {
        let q = "users=600&items=300&topics=6&density=0.05&dim=16&epochs=4&eval_users=300";
        let whole = strip(&run_query::<EmbeddingsLesson>(q, &mut ()).unwrap());
        let parts: Vec<String> =
            (0..2).map(|i| run_part_query::<EmbeddingsLesson>(q, Part::new(i, 2), &mut ()).unwrap()).collect();
        assert_eq!(strip(&merge_query::<EmbeddingsLesson>(q, &parts).unwrap()), whole);
        let r = whole;
        assert_eq!(r.svd.training.metrics.len(), 5, "before training and after each of 4 epochs");
        let svd_recall = r.svd.training.metrics.last().unwrap().recall;
        let random_first = r.random.metrics[0].recall;
        let random_last = r.random.metrics.last().unwrap().recall;
        assert!(svd_recall > 1.2 * r.svd.popularity.recall, "{svd_recall} vs popularity {:?}", r.svd.popularity);
        assert!(random_last > random_first, "random start learns: {random_first} → {random_last}");
        assert!(r.svd.oracle.recall >= svd_recall * 0.9);
        // rSVD converges as q grows on the block.
        let errors: Vec<f64> = r.svd.spectrum.error_vs_q.iter().map(|e| e.1).collect();
        assert!(errors.last().unwrap() < &errors[0], "{errors:?}");
        assert_eq!(r.svd.map_before.points.len(), 300);
        assert_eq!(r.svd.user_after.top.len(), 10);
    }

    #[test]
    fn pmi_source_runs_and_bad_sizes_are_refused() {
        let q = "users=400&items=200&topics=5&density=0.05&dim=8&epochs=2&source=pmi&eval_users=100";
        let r = strip(&run_query::<EmbeddingsLesson>(q, &mut ()).unwrap());
        assert!(r.svd.ppmi_nonzeros.unwrap() > 0);
        let issues = check(EmbeddingsParams { users: 50_000, items: 20_000, density: 0.2, ..Default::default() }).unwrap_err();
        assert!(issues.iter().any(|i| i.param == "density"), "{issues:?}");
    }
}
