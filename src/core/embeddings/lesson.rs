//! The lesson "Embeddings": a synthetic implicit-feedback world, item embeddings from a randomized
//! SVD (of the interactions or of their PPMI co-occurrences), a query = the mean of a user's items,
//! then BPR from the SVD start and from a random start, side by side; ranking metrics against
//! popularity and the world's own probabilities.

use super::bpr::{BprModel, BprParams, BprTrainer, Init, Optimizer};
use super::metrics::{self, RankingMetrics, UserTable};
use super::rsvd::{self, max_relative_error, PmiParams, RsvdParams};
use super::sparse::{Csr, DenseMatrix};
use super::{InteractionWorld, WorldSpec};
use crate::core::experiment::{Experiment, Part};
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
            (0..2).map(|i| run_part_query::<EmbeddingsLesson>(q, Part { index: i, count: 2 }, &mut ()).unwrap()).collect();
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
