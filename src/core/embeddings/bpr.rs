//! BPR (Rendle et al. 2009) on item embeddings, by hand.
//!
//! A user is the mean of the embeddings of their observed items, optionally mapped by a learned
//! d × d matrix W: q(u) = W · mean_{k ∈ history(u)} e_k. An item is scored s(u, i) = q(u)·e_i + b_i.
//! One embedding table serves both roles (tied), so the items a user is made of and the items
//! they are scored against live in one space, the one the rSVD initialises and the plots show.
//!
//! For a triple (u, i, j) with i observed and j not, the loss is −ln σ(s(u,i) − s(u,j)). Its
//! gradient flows into e_i and e_j (scoring), b_i and b_j, W, and every e_k of the history through
//! the mean. In training the positive i is left out of its own query
//! (q = W·(Σ_k e_k − e_i)/(n − 1)): with it inside, the model would learn to recognise items by
//! themselves (e_i·e_i) instead of predicting them from the others, which is what held-out
//! evaluation asks of it.
//!
//! One optimiser step per user: that user's triples (every observed item once as the positive,
//! with `negatives` negatives each) averaged. The query is computed once per user, so the step
//! costs O(n·negatives·d) for the scores plus O(n·d) to backpropagate into the history (O(n·d²)
//! with W). Negatives are drawn uniformly among the items the user has not observed, by rejection
//! with u32 draws. L2 applies to the rows a step touches (as in sparse SGD), and pulls W toward
//! the identity it starts from.

use super::sparse::{axpy, dot, Csr, DenseMatrix};
use crate::core::math::{exp, ln, pow};
use crate::core::progress::{self, Progress};
use crate::core::rng::{self, Rng, Stream};
use serde::{Deserialize, Serialize};

/// Where the item embeddings start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Init {
    /// Given embeddings, items × d (e.g. [`super::rsvd::item_embeddings`]).
    Embeddings(DenseMatrix),
    /// Independent N(0, std²) entries (0.1 in the lesson), drawn from `Stream::Model` of the seed.
    Random { dim: u32, std: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Optimizer {
    Sgd,
    /// Adam with β = (0.9, 0.999), ε = 10⁻⁸; lazy: only the rows a step touches are updated
    /// (their moments too), with the global step count in the bias correction.
    Adam,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BprParams {
    pub epochs: u32,
    pub learning_rate: f64,
    /// L2 weight on the touched embeddings and biases, and on W − I.
    pub l2: f64,
    /// Negatives per positive.
    pub negatives: u32,
    pub optimizer: Optimizer,
    /// Seeds `Stream::Bpr`: the user order and the negatives.
    pub seed: u64,
}

impl BprParams {
    pub fn new(epochs: u32, optimizer: Optimizer, learning_rate: f64, seed: u64) -> BprParams {
        BprParams { epochs, learning_rate, l2: 1e-3, negatives: 1, optimizer, seed }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BprModel {
    /// items × d, one row per item, used in the query mean and in the scores.
    pub item_embeddings: DenseMatrix,
    pub item_bias: Vec<f64>,
    /// W (d × d), when the query is mapped.
    pub query_map: Option<DenseMatrix>,
}

impl BprModel {
    /// A model over `items` items; biases start at 0 and W (if `query_map`) at the identity, so an
    /// untrained model from SVD embeddings scores exactly as "mean of the history's embeddings".
    pub fn new(init: Init, items: u32, query_map: bool, seed: u64) -> Result<BprModel, String> {
        let item_embeddings = match init {
            Init::Embeddings(e) => {
                if e.rows != items || e.cols == 0 {
                    return Err(format!("initial embeddings are {}×{}, expected {items} rows and ≥ 1 column", e.rows, e.cols));
                }
                e
            }
            Init::Random { dim, std } => {
                if dim == 0 || !(std >= 0.0) {
                    return Err(format!("random init needs dim ≥ 1 and std ≥ 0 (got {dim}, {std})"));
                }
                let mut rng = rng::seeded(seed, Stream::Model);
                let mut e = DenseMatrix::zeros(items, dim);
                e.data.iter_mut().for_each(|x| *x = std * rng::normal(&mut rng));
                e
            }
        };
        let dim = item_embeddings.cols;
        Ok(BprModel { item_embeddings, item_bias: vec![0.0; items as usize], query_map: query_map.then(|| DenseMatrix::identity(dim)) })
    }

    pub fn items(&self) -> u32 {
        self.item_embeddings.rows
    }

    pub fn dim(&self) -> u32 {
        self.item_embeddings.cols
    }

    /// The query of a user with this history (W · mean of the history's embeddings).
    pub fn query(&self, history: &[u32]) -> Vec<f64> {
        query(&self.item_embeddings, history, self.query_map.as_ref())
    }

    /// s = query·e_i + b_i.
    pub fn score(&self, query: &[f64], item: u32) -> f64 {
        dot(query, self.item_embeddings.row(item)) + self.item_bias[item as usize]
    }

    /// The scores of every item.
    pub fn scores(&self, query: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend((0..self.items()).map(|i| self.score(query, i)));
    }
}

/// The mean of the embeddings of `history` (zero for an empty history), mapped by W if given.
pub fn query(item_embeddings: &DenseMatrix, history: &[u32], query_map: Option<&DenseMatrix>) -> Vec<f64> {
    let mut mean = vec![0.0; item_embeddings.cols as usize];
    for &i in history {
        axpy(&mut mean, 1.0, item_embeddings.row(i));
    }
    if !history.is_empty() {
        let inv = 1.0 / history.len() as f64;
        mean.iter_mut().for_each(|x| *x *= inv);
    }
    match query_map {
        Some(w) => map(w, &mean),
        None => mean,
    }
}

/// W·x.
fn map(w: &DenseMatrix, x: &[f64]) -> Vec<f64> {
    let mut out = Vec::new();
    map_into(w, x, &mut out);
    out
}

fn map_into(w: &DenseMatrix, x: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend((0..w.rows).map(|a| dot(w.row(a), x)));
}

/// −ln σ(x) = ln(1 + e^{−x}), without overflow for either sign.
pub fn bpr_loss(x: f64) -> f64 {
    if x >= 0.0 {
        ln(1.0 + exp(-x))
    } else {
        -x + ln(1.0 + exp(x))
    }
}

/// σ(−x) = 1/(1 + e^x) = −d/dx bpr_loss(x), without overflow.
fn sigmoid_of_negative(x: f64) -> f64 {
    if x >= 0.0 {
        let e = exp(-x);
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + exp(x))
    }
}

/// Gradient buffers of one step: dense in shape, but only the touched rows are non-zero and
/// cleared between steps.
struct Gradient {
    dim: usize,
    rows: Vec<f64>,
    bias: Vec<f64>,
    map: Vec<f64>,
    touched: Vec<u32>,
    is_touched: Vec<bool>,
}

impl Gradient {
    fn new(items: u32, dim: u32, with_map: bool) -> Gradient {
        let (n, d) = (items as usize, dim as usize);
        Gradient {
            dim: d,
            rows: vec![0.0; n * d],
            bias: vec![0.0; n],
            map: if with_map { vec![0.0; d * d] } else { Vec::new() },
            touched: Vec::new(),
            is_touched: vec![false; n],
        }
    }

    fn clear(&mut self) {
        for &i in &self.touched {
            let i = i as usize;
            self.rows[i * self.dim..(i + 1) * self.dim].iter_mut().for_each(|x| *x = 0.0);
            self.bias[i] = 0.0;
            self.is_touched[i] = false;
        }
        self.touched.clear();
        self.map.iter_mut().for_each(|x| *x = 0.0);
    }

    #[inline]
    fn touch(&mut self, item: u32) {
        if !self.is_touched[item as usize] {
            self.is_touched[item as usize] = true;
            self.touched.push(item);
        }
    }

    #[inline]
    fn row(&mut self, item: u32) -> &mut [f64] {
        self.touch(item);
        let i = item as usize;
        &mut self.rows[i * self.dim..(i + 1) * self.dim]
    }
}

/// Per-user scratch vectors.
#[derive(Default)]
struct Scratch {
    sum: Vec<f64>,
    mean: Vec<f64>,
    query: Vec<f64>,
    difference: Vec<f64>,
    /// d loss / d query, one per history slot (n × d).
    query_gradients: Vec<f64>,
    /// d loss / d mean, one per history slot (n × d).
    mean_gradients: Vec<f64>,
    total: Vec<f64>,
}

/// One user's triples: positive history[t / per_positive], negative negatives[t]. Adds the
/// gradient of the mean loss over the triples to `grad` (no L2) and returns the sum of the losses.
/// Users with fewer than 2 observed items have no leave-one-out query and give nothing.
fn user_loss_and_gradient(model: &BprModel, history: &[u32], negatives: &[u32], grad: &mut Gradient, scratch: &mut Scratch) -> f64 {
    let n = history.len();
    if n < 2 || negatives.is_empty() {
        return 0.0;
    }
    let d = model.dim() as usize;
    let per_positive = negatives.len() / n;
    let embeddings = &model.item_embeddings;
    let inv_triples = 1.0 / negatives.len() as f64;
    let inv_rest = 1.0 / (n - 1) as f64;

    let Scratch { sum, mean, query, difference, query_gradients, mean_gradients, total } = scratch;
    sum.clear();
    sum.resize(d, 0.0);
    for &k in history {
        axpy(sum, 1.0, embeddings.row(k));
    }
    query_gradients.clear();
    query_gradients.resize(n * d, 0.0);
    mean.resize(d, 0.0);
    difference.resize(d, 0.0);

    let mut loss = 0.0;
    for (slot, &i) in history.iter().enumerate() {
        // Leave-one-out mean of the history, then the query.
        let positive = embeddings.row(i);
        for a in 0..d {
            mean[a] = (sum[a] - positive[a]) * inv_rest;
        }
        match &model.query_map {
            Some(w) => map_into(w, mean, query),
            None => query.clone_from(mean),
        }
        let query_gradient = &mut query_gradients[slot * d..(slot + 1) * d];
        for &j in &negatives[slot * per_positive..(slot + 1) * per_positive] {
            let negative = embeddings.row(j);
            for a in 0..d {
                difference[a] = positive[a] - negative[a];
            }
            let x = dot(query, difference) + model.item_bias[i as usize] - model.item_bias[j as usize];
            loss += bpr_loss(x);
            let g = -sigmoid_of_negative(x) * inv_triples; // d(mean loss)/dx
            axpy(grad.row(i), g, query);
            axpy(grad.row(j), -g, query);
            grad.bias[i as usize] += g;
            grad.bias[j as usize] -= g;
            axpy(query_gradient, g, difference);
        }
    }

    // Back through q = W·mean: dW += dq meanᵀ, d mean = Wᵀ dq (per slot: each has its own mean).
    mean_gradients.clear();
    match &model.query_map {
        Some(w) => {
            mean_gradients.resize(n * d, 0.0);
            for (slot, &i) in history.iter().enumerate() {
                let positive = embeddings.row(i);
                for b in 0..d {
                    mean[b] = (sum[b] - positive[b]) * inv_rest;
                }
                let query_gradient = &query_gradients[slot * d..(slot + 1) * d];
                let mean_gradient = &mut mean_gradients[slot * d..(slot + 1) * d];
                for (a, &dq) in query_gradient.iter().enumerate() {
                    axpy(&mut grad.map[a * d..(a + 1) * d], dq, mean);
                    axpy(mean_gradient, dq, w.row(a as u32));
                }
            }
        }
        None => mean_gradients.extend_from_slice(query_gradients),
    }
    // Back through the leave-one-out means: item k feeds every slot but its own.
    total.clear();
    total.resize(d, 0.0);
    for slot in 0..n {
        axpy(total, 1.0, &mean_gradients[slot * d..(slot + 1) * d]);
    }
    for (slot, &k) in history.iter().enumerate() {
        let row = grad.row(k);
        let own = &mean_gradients[slot * d..(slot + 1) * d];
        for a in 0..d {
            row[a] += (total[a] - own[a]) * inv_rest;
        }
    }
    loss
}

/// Adam moments, shaped like the parameters.
struct AdamState {
    rows_m: Vec<f64>,
    rows_v: Vec<f64>,
    bias_m: Vec<f64>,
    bias_v: Vec<f64>,
    map_m: Vec<f64>,
    map_v: Vec<f64>,
    step: u32,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f64 = 1e-8;

/// One Adam update of one parameter (corrections c1 = 1 − β₁ᵗ, c2 = 1 − β₂ᵗ).
#[inline]
fn adam_update(param: &mut f64, m: &mut f64, v: &mut f64, g: f64, learning_rate: f64, c1: f64, c2: f64) {
    *m = BETA1 * *m + (1.0 - BETA1) * g;
    *v = BETA2 * *v + (1.0 - BETA2) * g * g;
    *param -= learning_rate * (*m / c1) / ((*v / c2).sqrt() + EPSILON);
}

/// Trains a model epoch after epoch, keeping the optimiser's state and the random stream between
/// calls (a live lesson redraws after each epoch). An epoch visits the users in a fresh random
/// order; for each, every observed item is a positive once, with `negatives` negatives.
pub struct BprTrainer {
    params: BprParams,
    rng: Rng,
    gradient: Gradient,
    scratch: Scratch,
    adam: Option<AdamState>,
    order: Vec<u32>,
    observed_mark: Vec<bool>,
    negatives: Vec<u32>,
    pub epochs_done: u32,
}

impl BprTrainer {
    /// Errors if the model and the data disagree on the number of items, or on bad parameters.
    pub fn new(model: &BprModel, observed: &Csr, params: &BprParams) -> Result<BprTrainer, String> {
        if observed.cols != model.items() {
            return Err(format!("the model has {} items, the data {}", model.items(), observed.cols));
        }
        if params.negatives == 0 {
            return Err("BPR needs at least one negative per positive".into());
        }
        if !(params.learning_rate > 0.0 && params.learning_rate.is_finite() && params.l2 >= 0.0) {
            return Err(format!("learning rate must be > 0 and l2 ≥ 0 (got {}, {})", params.learning_rate, params.l2));
        }
        if let Some(u) = (0..observed.rows).find(|&u| observed.row_len(u) >= observed.cols) {
            return Err(format!("user {u} has observed every item: no negative to sample"));
        }
        let (items, dim) = (model.items(), model.dim());
        let with_map = model.query_map.is_some();
        let adam = (params.optimizer == Optimizer::Adam).then(|| {
            let map_len = if with_map { dim as usize * dim as usize } else { 0 };
            let rows_len = items as usize * dim as usize;
            AdamState {
                rows_m: vec![0.0; rows_len],
                rows_v: vec![0.0; rows_len],
                bias_m: vec![0.0; items as usize],
                bias_v: vec![0.0; items as usize],
                map_m: vec![0.0; map_len],
                map_v: vec![0.0; map_len],
                step: 0,
            }
        });
        Ok(BprTrainer {
            params: params.clone(),
            rng: rng::seeded(params.seed, Stream::Bpr),
            gradient: Gradient::new(items, dim, with_map),
            scratch: Scratch::default(),
            adam,
            order: (0..observed.rows).collect(),
            observed_mark: vec![false; items as usize],
            negatives: Vec::new(),
            epochs_done: 0,
        })
    }

    /// One epoch; the mean loss over its triples (each measured before its step).
    pub fn epoch(&mut self, model: &mut BprModel, observed: &Csr, progress: &mut dyn Progress) -> f64 {
        super::shuffle(&mut self.order, &mut self.rng);
        let stage = format!("BPR: epoch {}", self.epochs_done + 1);
        let users = self.order.len();
        let mut loss = 0.0;
        let mut triples = 0u64;
        for position in 0..users {
            if position % 256 == 0 {
                progress.report(position as f64 / users as f64, &stage);
            }
            let user = self.order[position];
            let history = observed.row_ids(user);
            if history.len() < 2 {
                continue;
            }
            self.sample_negatives(history, model.items());
            self.gradient.clear();
            loss += user_loss_and_gradient(model, history, &self.negatives, &mut self.gradient, &mut self.scratch);
            triples += self.negatives.len() as u64;
            self.step(model);
        }
        self.epochs_done += 1;
        progress.report(1.0, &stage);
        if triples == 0 {
            0.0
        } else {
            loss / triples as f64
        }
    }

    /// `negatives` per observed item, uniform over the items not in `history` (rejection).
    fn sample_negatives(&mut self, history: &[u32], items: u32) {
        for &i in history {
            self.observed_mark[i as usize] = true;
        }
        self.negatives.clear();
        for _ in 0..history.len() as u32 * self.params.negatives {
            let j = loop {
                let j = rng::index(&mut self.rng, items);
                if !self.observed_mark[j as usize] {
                    break j;
                }
            };
            self.negatives.push(j);
        }
        for &i in history {
            self.observed_mark[i as usize] = false;
        }
    }

    /// L2 on the touched rows, then the update of the touched rows, their biases and W.
    fn step(&mut self, model: &mut BprModel) {
        let (learning_rate, l2) = (self.params.learning_rate, self.params.l2);
        let grad = &mut self.gradient;
        let d = grad.dim;
        for &i in &grad.touched {
            let i = i as usize;
            let row = &mut model.item_embeddings.data[i * d..(i + 1) * d];
            axpy(&mut grad.rows[i * d..(i + 1) * d], l2, row);
            grad.bias[i] += l2 * model.item_bias[i];
        }
        if let Some(w) = &model.query_map {
            for a in 0..d {
                for b in 0..d {
                    let identity = if a == b { 1.0 } else { 0.0 };
                    grad.map[a * d + b] += l2 * (w.data[a * d + b] - identity);
                }
            }
        }
        match &mut self.adam {
            None => {
                for &i in &grad.touched {
                    let i = i as usize;
                    axpy(&mut model.item_embeddings.data[i * d..(i + 1) * d], -learning_rate, &grad.rows[i * d..(i + 1) * d]);
                    model.item_bias[i] -= learning_rate * grad.bias[i];
                }
                if let Some(w) = &mut model.query_map {
                    axpy(&mut w.data, -learning_rate, &grad.map);
                }
            }
            Some(adam) => {
                adam.step += 1;
                let c1 = 1.0 - pow(BETA1, adam.step as f64);
                let c2 = 1.0 - pow(BETA2, adam.step as f64);
                for &i in &grad.touched {
                    let i = i as usize;
                    for p in i * d..(i + 1) * d {
                        let param = &mut model.item_embeddings.data[p];
                        adam_update(param, &mut adam.rows_m[p], &mut adam.rows_v[p], grad.rows[p], learning_rate, c1, c2);
                    }
                    adam_update(&mut model.item_bias[i], &mut adam.bias_m[i], &mut adam.bias_v[i], grad.bias[i], learning_rate, c1, c2);
                }
                if let Some(w) = &mut model.query_map {
                    for p in 0..d * d {
                        adam_update(&mut w.data[p], &mut adam.map_m[p], &mut adam.map_v[p], grad.map[p], learning_rate, c1, c2);
                    }
                }
            }
        }
    }
}

/// `params.epochs` epochs of BPR; the mean loss of each epoch.
pub fn train(model: &mut BprModel, observed: &Csr, params: &BprParams, progress: &mut dyn Progress) -> Result<Vec<f64>, String> {
    let mut trainer = BprTrainer::new(model, observed, params)?;
    let epochs = params.epochs.max(1) as f64;
    let mut losses = Vec::with_capacity(params.epochs as usize);
    for e in 0..params.epochs {
        let mut stage = progress::staged(progress, e as f64 / epochs, (e + 1) as f64 / epochs);
        losses.push(trainer.epoch(model, observed, &mut stage));
    }
    Ok(losses)
}

#[cfg(test)]
mod tests {
    use super::super::tests::small_world;
    use super::*;

    fn perturbed_model(with_map: bool) -> BprModel {
        let mut model = BprModel::new(Init::Random { dim: 3, std: 0.5 }, 7, with_map, 1).unwrap();
        let mut rng = rng::seeded(2, Stream::Sweep);
        model.item_bias.iter_mut().for_each(|b| *b = 0.3 * rng::normal(&mut rng));
        if let Some(w) = &mut model.query_map {
            w.data.iter_mut().for_each(|x| *x += 0.4 * rng::normal(&mut rng));
        }
        model
    }

    /// Every parameter of the model as one vector (embeddings, biases, W), for finite differences.
    fn parameter(model: &mut BprModel, p: usize) -> &mut f64 {
        let e = model.item_embeddings.data.len();
        let b = model.item_bias.len();
        if p < e {
            &mut model.item_embeddings.data[p]
        } else if p < e + b {
            &mut model.item_bias[p - e]
        } else {
            &mut model.query_map.as_mut().unwrap().data[p - e - b]
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for with_map in [false, true] {
            let model = perturbed_model(with_map);
            let history = [1u32, 2, 4];
            // Two negatives per positive, one repeated, none in the history.
            let negatives = [0u32, 5, 6, 0, 3, 5];
            let mut grad = Gradient::new(7, 3, with_map);
            let mut scratch = Scratch::default();
            user_loss_and_gradient(&model, &history, &negatives, &mut grad, &mut scratch);
            let analytic: Vec<f64> = grad.rows.iter().chain(&grad.bias).chain(&grad.map).copied().collect();
            let mean_loss = |m: &BprModel| {
                let mut sink = Gradient::new(7, 3, with_map);
                user_loss_and_gradient(m, &history, &negatives, &mut sink, &mut Scratch::default()) / negatives.len() as f64
            };
            for (p, &want) in analytic.iter().enumerate() {
                let h = 1e-6;
                let mut plus = model.clone();
                *parameter(&mut plus, p) += h;
                let mut minus = model.clone();
                *parameter(&mut minus, p) -= h;
                let numeric = (mean_loss(&plus) - mean_loss(&minus)) / (2.0 * h);
                assert!((numeric - want).abs() < 1e-7 * (1.0 + numeric.abs()), "W {with_map}, parameter {p}: numeric {numeric} vs {want}");
            }
        }
    }

    #[test]
    fn loss_is_stable_at_extremes() {
        assert!((bpr_loss(0.0) - std::f64::consts::LN_2).abs() < 1e-15);
        assert!(bpr_loss(800.0) == 0.0 && (bpr_loss(-800.0) - 800.0).abs() < 1e-9);
        assert!((sigmoid_of_negative(-800.0) - 1.0).abs() < 1e-15 && sigmoid_of_negative(800.0) == 0.0);
    }

    #[test]
    fn loss_decreases_with_both_optimisers_and_initialisations() {
        let world = small_world(1);
        for (optimizer, learning_rate) in [(Optimizer::Adam, 0.01), (Optimizer::Sgd, 0.5)] {
            for with_map in [false, true] {
                let mut model = BprModel::new(Init::Random { dim: 16, std: 0.1 }, world.items(), with_map, 3).unwrap();
                let params = BprParams::new(6, optimizer, learning_rate, 4);
                let losses = train(&mut model, &world.observed, &params, &mut ()).unwrap();
                println!("{optimizer:?}, W {with_map}: losses {losses:.4?}");
                assert!(losses.windows(2).all(|w| w[1] < w[0]), "{optimizer:?} W {with_map}: {losses:?}");
                assert!(losses[5] < 0.9 * losses[0], "{optimizer:?} W {with_map}: {losses:?}");
            }
        }
    }

    #[test]
    fn progress_is_reported_and_monotone() {
        let world = small_world(1);
        let mut model = BprModel::new(Init::Random { dim: 4, std: 0.1 }, world.items(), false, 3).unwrap();
        let mut reports: Vec<f64> = Vec::new();
        let mut record = |f: f64, _: &str| reports.push(f);
        train(&mut model, &world.observed, &BprParams::new(3, Optimizer::Adam, 0.01, 1), &mut record).unwrap();
        assert!(reports.windows(2).all(|w| w[1] >= w[0]) && *reports.last().unwrap() == 1.0, "{reports:?}");
        assert!(reports.len() < 30, "too chatty: {}", reports.len());
    }

    #[test]
    fn bad_inputs_are_refused() {
        let world = small_world(1);
        let model = BprModel::new(Init::Random { dim: 4, std: 0.1 }, world.items() + 1, false, 3).unwrap();
        assert!(BprTrainer::new(&model, &world.observed, &BprParams::new(1, Optimizer::Sgd, 0.1, 1)).is_err());
        let model = BprModel::new(Init::Random { dim: 4, std: 0.1 }, world.items(), false, 3).unwrap();
        let params = BprParams { negatives: 0, ..BprParams::new(1, Optimizer::Sgd, 0.1, 1) };
        assert!(BprTrainer::new(&model, &world.observed, &params).is_err());
        assert!(BprModel::new(Init::Embeddings(DenseMatrix::zeros(3, 2)), 4, false, 1).is_err());
    }
}
