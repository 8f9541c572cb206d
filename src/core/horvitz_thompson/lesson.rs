//! The lesson "Horvitz–Thompson for slates": a variance lab. R replications of N logged rows; each
//! estimator's distribution, bias², variance and MSE; MSE as N grows; the cap-M trade-off; HT's
//! spread as K and P grow; per-slate IPS estimates against the truth.

use super::estimators::{self, estimate, Kind, Row};
use super::{Lab, RawRow, Truth};
use crate::core::stages::{Graph, Stage, StageCache};
use crate::core::experiment::{Experiment, Part};
use crate::core::math::{log10, pow, sq};
use crate::core::params::{Checked, Issue, Kind as ParamKind, LessonParams, Spec};
use crate::core::progress::Progress;
use crate::core::rng;
use crate::core::slate_world::distribution::Distribution;
use crate::core::slate_world::lesson::{CLICK_MODELS, WORLDS};
use crate::core::slate_world::policy::LoggingKind;
use crate::core::slate_world::{ClickModel, SyntheticSpec, World, MAX_SLATE};
use crate::core::stats::Running;
use serde::{Deserialize, Serialize};

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
        kind: ParamKind::Int { min: 1, max: MAX_SLATE as i64, log: false },
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
    pub median_log10_weight: f64,
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Extras {
    pub truth: Truth,
    pub spread_vs_k: Vec<SpreadPoint>,
    pub spread_vs_p: Vec<SpreadPoint>,
    pub scatter: Vec<SlatePoint>,
    pub scatter_slate_size: u32,
    pub logging_label: String,
    pub target_label: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialReport {
    pub first_replication: u32,
    pub replications: Vec<Replication>,
    pub extras: Option<Extras>,
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
    pub scatter: Vec<SlatePoint>,
    pub scatter_slate_size: u32,
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

impl Experiment for HorvitzThompsonLesson {
    // One stage for now: every parameter reruns everything.
    const GRAPH: Graph = Graph { lesson: "horvitz-thompson", stages: &[Stage { name: "run", reads: &["world", "click_model", "items", "slate_size", "contexts", "users", "logging", "logging_temperature", "target", "target_temperature", "epsilon", "cap", "model_noise", "logs", "replications", "estimators", "seed"], uses: &[] }] };
    type Params = HorvitzThompsonParams;
    type Report = HorvitzThompsonReport;
    type Partial = PartialReport;

    fn parts(params: &Checked<HorvitzThompsonParams>) -> u32 {
        params.replications as u32
    }

    fn run_part(params: &Checked<HorvitzThompsonParams>, part: Part, _cache: &mut StageCache, progress: &mut dyn Progress) -> PartialReport {
        let p: &HorvitzThompsonParams = params;
        progress.report(0.0, "building the world and the policies");
        let lab = p.lab(p.build_world(), p.kinds().iter().any(|k| matches!(k, Kind::Dm | Kind::Dr)));
        let kinds = p.kinds();
        let (grid, caps) = (n_grid(p.logs as u32), cap_grid());
        let range = part.range(p.replications as u32);
        let total = range.len().max(1) as f64 + if part.index == 0 { 3.0 } else { 0.0 };
        let mut rows = Vec::new();
        let mut replications = Vec::with_capacity(range.len());
        for (i, r) in range.clone().enumerate() {
            progress.report(i as f64 / total, "replications");
            lab.simulate(p.logs as u32, &mut rng::replication(p.seed, r), &mut rows, None);
            replications.push(Replication {
                estimates: kinds.iter().map(|k| estimate(*k, p.cap, &rows)).collect(),
                prefix: grid.iter().map(|&n| kinds.iter().map(|k| estimate(*k, p.cap, &rows[..n as usize]).value).collect()).collect(),
                capped: caps.iter().map(|&m| estimate(Kind::CappedIps, m, &rows).value).collect(),
            });
        }
        let extras = (part.index == 0).then(|| {
            progress.report((total - 3.0) / total, "the truth");
            let truth = lab.truth(TRUTH_BUDGET, TRUTH_DRAWS, p.seed);
            progress.report((total - 2.0) / total, "spread as K and P grow");
            let (spread_vs_k, spread_vs_p) = spreads(p, &lab);
            progress.report((total - 1.0) / total, "per-slate estimates");
            let (scatter, scatter_slate_size) = scatter(p, &lab);
            Extras {
                truth,
                spread_vs_k,
                spread_vs_p,
                scatter,
                scatter_slate_size,
                logging_label: lab.logging.label(),
                target_label: lab.target.label(),
            }
        });
        progress.report(1.0, "done");
        PartialReport { first_replication: range.start, replications, extras }
    }

    fn merge(params: &Checked<HorvitzThompsonParams>, mut partials: Vec<PartialReport>) -> HorvitzThompsonReport {
        let p: &HorvitzThompsonParams = params;
        partials.sort_by_key(|x| x.first_replication);
        let extras = partials.iter_mut().find_map(|x| x.extras.take()).expect("part 0 carries the extras");
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
            spread_vs_k: extras.spread_vs_k,
            spread_vs_p: extras.spread_vs_p,
            scatter: extras.scatter,
            scatter_slate_size: extras.scatter_slate_size,
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
/// synthetic worlds of growing P (same K).
fn spreads(p: &HorvitzThompsonParams, lab: &Lab) -> (Vec<SpreadPoint>, Vec<SpreadPoint>) {
    let n = p.logs as f64;
    let point = |lab: &Lab, seed_offset: u32| -> SpreadPoint {
        let mut rows = Vec::new();
        let mut rng = rng::replication(p.seed ^ 0x5eed, seed_offset);
        lab.simulate(SPREAD_ROWS, &mut rng, &mut rows, None);
        let sd = |f: &dyn Fn(&Row) -> f64| {
            let mut r = Running::default();
            rows.iter().for_each(|row| r.push(f(row)));
            let s = r.summary();
            s.se * (s.n as f64).sqrt() / n.sqrt()
        };
        let value = lab.truth(0.0, SPREAD_ROWS, p.seed ^ seed_offset as u64).value;
        let mut logw: Vec<f64> = rows.iter().filter(|r| r.weight > 0.0).map(|r| log10(r.weight)).collect();
        logw.sort_by(f64::total_cmp);
        SpreadPoint {
            k: lab.world.slate_sizes.max,
            p: lab.world.items(),
            ht_sd: lab.ht_row_sd(value, SPREAD_ROWS, &mut rng) / n.sqrt(),
            iips_sd: sd(&|r| r.item_position_term),
            pi_sd: sd(&|r| r.reward * r.pseudo_inverse_factor),
            median_log10_weight: crate::core::stats::quantile(&logw, 0.5),
            zero_weight_share: rows.iter().filter(|r| r.weight == 0.0).count() as f64 / rows.len() as f64,
        }
    };
    let max_k = lab.world.items().min(8);
    let by_k = (1..=max_k)
        .map(|k| {
            let mut world = lab.world.clone();
            world.slate_sizes.min = k;
            world.slate_sizes.max = k;
            point(&p.lab(world, false), k)
        })
        .collect();
    let by_p = if p.world == "synthetic" {
        let k = p.slate_size as u32;
        [5u32, 10, 20, 50, 100, 200, 500, 1000, 2000]
            .into_iter()
            .filter(|&items| items >= k)
            .map(|items| point(&p.lab(p.world_with(items, k, 200), false), 100 + items))
            .collect()
    } else {
        Vec::new()
    };
    (by_k, by_p)
}

/// Per-slate IPS estimate of "show this slate to everybody" against its true value, for the
/// smallest slate size, when there are at most 2,000 such slates.
fn scatter(p: &HorvitzThompsonParams, lab: &Lab) -> (Vec<SlatePoint>, u32) {
    let world = &lab.world;
    let size = world.slate_sizes.min;
    let count: f64 = (0..size).map(|j| (world.items() - j) as f64).product();
    if count > 2000.0 || lab.logging.with_replacement() {
        return (Vec::new(), size);
    }
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
    use crate::core::experiment::{merge_query, run_part_query, run_query};
    use crate::core::params::{check, to_query};

    #[test]
    fn defaults_are_valid() {
        assert!(check(HorvitzThompsonParams::default()).is_ok());
        assert_eq!(n_grid(10_000), vec![19, 39, 78, 156, 312, 625, 1250, 2500, 5000, 10_000][1..].to_vec());
    }

    #[test]
    fn parts_give_the_same_report_as_one_run() {
        let q = "world=toy&logs=300&replications=9&seed=3";
        let whole = run_query::<HorvitzThompsonLesson>(q, &mut ()).unwrap();
        let parts: Vec<String> =
            (0..3).map(|i| run_part_query::<HorvitzThompsonLesson>(q, Part { index: i, count: 3 }, &mut ()).unwrap()).rev().collect();
        assert_eq!(merge_query::<HorvitzThompsonLesson>(q, &parts).unwrap(), whole);
        let report: HorvitzThompsonReport = serde_json::from_str(&whole).unwrap();
        assert_eq!(report.estimators.len(), 9);
        assert_eq!(report.estimators[0].values.len(), 9);
        assert!(!report.scatter.is_empty(), "the toy world has 42 slates of size 2");
        assert_eq!(report.truth.method, "enumeration");
    }

    #[test]
    fn ht_spread_grows_with_k() {
        let mut p = HorvitzThompsonParams { logs: 1000, replications: 2, ..Default::default() };
        p.estimators = vec!["ips"];
        let q = to_query(&p);
        let r: HorvitzThompsonReport = serde_json::from_str(&run_query::<HorvitzThompsonLesson>(&q, &mut ()).unwrap()).unwrap();
        let first = &r.spread_vs_k[0];
        let last = r.spread_vs_k.last().unwrap();
        assert!(last.median_log10_weight.abs() > first.median_log10_weight.abs());
        assert!(last.ht_sd > first.ht_sd, "{first:?} vs {last:?}");
        assert!(!r.spread_vs_p.is_empty());
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
