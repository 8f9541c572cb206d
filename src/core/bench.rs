//! Workloads timed by the benchmarks: the same code natively (`rorec bench`, criterion) and in the
//! browser (`window.rorec.bench`, driven by tests/e2e/bench.mjs), so that wasm/native ratios come
//! from one run of one definition. The clock is the caller's (std's Instant does not exist in
//! wasm32-unknown-unknown).

use crate::core::experiment::run_query;
use crate::core::horvitz_thompson::estimators::{self, estimate, Row};
use crate::core::horvitz_thompson::lesson::{HorvitzThompsonLesson, HorvitzThompsonParams};
use crate::core::mips::hnsw::{Config, MipsIndex};
use crate::core::mips::{data, exact, recall};
use crate::core::rng;
use crate::core::slate_world::lesson::SlateWorldLesson;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub name: String,
    /// What was counted.
    pub unit: String,
    pub count: f64,
    pub milliseconds: f64,
    pub per_second: f64,
}

pub const NAMES: &[&str] = &[
    "estimators",
    "rng-chacha8-uniforms",
    "simulate",
    "slate-world-default",
    "ht-lab-default-one-thread",
    "memory-read-1e5x64",
    "mips-exact-top10-1e5x64",
    "mips-exact-batch32-top10-1e5x64",
    "mips-exact-batches32-top10-1e5x64",
    "mips-int8-top10-shortlist100-1e5x64",
    "mips-hnsw-top10-1e5x64",
    "mips-hnsw-top4-200x8",
    "mips-hnsw-build-uniform-3e4x100",
    "rsvd-20000x10000-1pct-rank32-q2",
    "bpr-epoch-default-world",
    "prr-epoch-1e3",
    "prr-epoch-1e4",
    "prr-epoch-1e5",
    "slate-ips-epoch-1e3",
    "slate-ips-epoch-1e4",
    "slate-ips-epoch-1e5",
    "reinforce-step-1e5-exact",
    "reinforce-step-1e5-uniform",
    "reinforce-step-1e5-mixture",
    "reinforce-world-default",
    "capstone-tower-w128",
];

fn result(name: &str, unit: &str, count: f64, milliseconds: f64) -> BenchResult {
    BenchResult { name: name.into(), unit: unit.into(), count, milliseconds, per_second: count / (milliseconds / 1000.0) }
}

/// The default lab's world and policies, with `rows` simulated rows.
fn default_rows(rows: u32) -> (crate::core::horvitz_thompson::Lab, Vec<Row>) {
    let params = HorvitzThompsonParams::default();
    let lab = params.lab(params.build_world(), true);
    let mut out = Vec::new();
    lab.simulate(rows, &mut rng::replication(params.seed, 0), &mut out, None);
    (lab, out)
}

/// Batches of 32 queries (`search`) against the same queries one by one, in five interleaved rounds
/// of two passes: the unit gives the median of the rounds' throughput ratios, the time is the batches'.
fn batch_against_singles(
    name: &str,
    items: &crate::core::mips::Vectors,
    queries: &crate::core::mips::Vectors,
    now: &dyn Fn() -> f64,
    search: impl Fn(&[&[f32]]) -> Vec<Vec<(f32, u32)>>,
) -> Result<BenchResult, String> {
    let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
    let (rounds, passes) = (5, 2);
    let mut sink = 0u64;
    let (mut ms, mut ratios) = (0.0, Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let start = now();
        for query in &batch {
            sink += exact::top_k_ids(items, query, 10)[0] as u64;
        }
        let single_ms = now() - start;
        let start = now();
        for _ in 0..passes {
            sink += search(&batch).iter().map(|t| t[0].1 as u64).sum::<u64>();
        }
        let batch_ms = now() - start;
        ms += batch_ms;
        ratios.push(single_ms * passes as f64 / batch_ms);
    }
    assert!(sink > 0);
    ratios.sort_by(f64::total_cmp);
    let speedup = ratios[rounds / 2];
    Ok(result(
        name,
        &format!("queries ({speedup:.1}× the throughput of the same 32 queries one by one, median of {rounds} rounds)"),
        (rounds * passes * batch.len()) as f64,
        ms,
    ))
}

/// Run benchmark `name`; `now()` returns milliseconds.
pub fn run(name: &str, now: &dyn Fn() -> f64) -> Result<BenchResult, String> {
    match name {
        "estimators" => {
            // Slate-estimates: one estimator applied to one logged row.
            let (_, rows) = default_rows(10_000);
            let reps = 400;
            let start = now();
            let mut sink = 0.0;
            for _ in 0..reps {
                for kind in estimators::ALL {
                    sink += estimate(kind, 1000.0, &rows).value;
                }
            }
            let elapsed = now() - start;
            assert!(sink.is_finite());
            Ok(result(name, "slate-estimates", (reps * estimators::ALL.len() * rows.len()) as f64, elapsed))
        }
        "rng-chacha8-uniforms" => {
            // The generator alone: in the browser the simd128 block function of `core::chacha`.
            let mut rng = rng::seeded(1, rng::Stream::MonteCarlo);
            let n = 4_000_000u32;
            let start = now();
            std::hint::black_box((0..n).map(|_| rng::uniform(&mut rng)).sum::<f64>());
            Ok(result(name, "uniform f64 draws", n as f64, now() - start))
        }
        "simulate" => {
            let (lab, mut rows) = default_rows(10);
            let n = 200_000;
            let start = now();
            lab.simulate(n, &mut rng::replication(1, 1), &mut rows, None);
            Ok(result(name, "logged rows", n as f64, now() - start))
        }
        "slate-world-default" => {
            let start = now();
            run_query::<SlateWorldLesson>("", &mut ())?;
            Ok(result(name, "runs", 1.0, now() - start))
        }
        "ht-lab-default-one-thread" => {
            let start = now();
            run_query::<HorvitzThompsonLesson>("", &mut ())?;
            let ms = now() - start;
            let p = HorvitzThompsonParams::default();
            Ok(result(name, "logged rows", (p.logs * p.replications) as f64, ms))
        }
        "memory-read-1e5x64" => {
            // The bandwidth limit of the scan: only read the 25.6 MB (sum with 8 lanes), per "query".
            let (items, _) = data::generate(data::Kind::Clustered, 100_000, 1, 64, 1);
            let reads = 200;
            let start = now();
            let mut sink = 0.0f32;
            for r in 0..reads {
                let mut acc = [0.0f32; 8];
                for chunk in items.data.chunks_exact(8) {
                    for j in 0..8 {
                        acc[j] += chunk[j];
                    }
                }
                sink += acc.iter().sum::<f32>() * (r as f32 + 1.0);
            }
            let ms = now() - start;
            assert!(sink.is_finite());
            Ok(result(name, "full reads", reads as f64, ms))
        }
        "mips-exact-top10-1e5x64" => {
            // The memory-bound scan: 1e5 × 64 f32 = 25.6 MB read per query.
            let (items, queries) = data::generate(data::Kind::Clustered, 100_000, 200, 64, 1);
            let start = now();
            let mut sink = 0u64;
            for q in 0..queries.len() {
                sink += exact::top_k_ids(&items, queries.row(q), 10)[0] as u64;
            }
            let ms = now() - start;
            assert!(sink > 0);
            Ok(result(name, "queries", queries.len() as f64, ms))
        }
        "mips-exact-batch32-top10-1e5x64" => {
            // 32 queries per pass over the catalogue (exact::top_k_batch), against the same 32
            // queries one by one, interleaved in five rounds of this run (the single queries are
            // bound by memory, which other work on the machine slows): the unit gives the median
            // of the rounds' throughput ratios; the time is the batches'.
            let (items, queries) = data::generate(data::Kind::Clustered, 100_000, 32, 64, 1);
            batch_against_singles(name, &items, &queries, now, |batch| exact::top_k_batch(&items, batch, 10))
        }
        "mips-exact-batches32-top10-1e5x64" => {
            // The same, batch after batch against one catalogue (exact::BatchSearch, as the
            // REINFORCE evaluation and the MIPS lesson's exact answers search): the integer
            // screen's codes of the rows are made once, at an untimed first batch.
            let (items, queries) = data::generate(data::Kind::Clustered, 100_000, 32, 64, 1);
            let search = exact::BatchSearch::new(&items);
            let batch: Vec<&[f32]> = (0..queries.len()).map(|q| queries.row(q)).collect();
            for _ in 0..2 {
                search.top_k_batch(&batch, 10);
            }
            batch_against_singles(name, &items, &queries, now, |batch| search.top_k_batch(batch, 10))
        }
        "mips-int8-top10-shortlist100-1e5x64" => {
            // The int8 copy scanned for a shortlist of 100, re-ranked exactly; against the f32
            // scan of the same 200 queries in this run (the unit gives both ratios and recall).
            use crate::core::mips::quantized::Quantized;
            let (items, queries) = data::generate(data::Kind::Clustered, 100_000, 200, 64, 1);
            let start = now();
            let truth: Vec<Vec<u32>> = (0..queries.len()).map(|q| exact::top_k_ids(&items, queries.row(q), 10)).collect();
            let exact_ms = now() - start;
            let quantized = Quantized::new(&items);
            let start = now();
            let found: Vec<Vec<u32>> = (0..queries.len())
                .map(|q| quantized.top_k(&items, queries.row(q), 10, 100).into_iter().map(|(_, i)| i).collect())
                .collect();
            let ms = now() - start;
            let r = found.iter().zip(&truth).map(|(f, t)| recall(f, t)).sum::<f64>() / queries.len() as f64;
            Ok(result(name, &format!("queries ({:.2}× the f32 scan's speed, recall@10 = {r:.3})", exact_ms / ms), queries.len() as f64, ms))
        }
        "mips-hnsw-top10-1e5x64" => {
            // The index at ef_search = 16, which gives recall@10 ≥ 0.95 on these vectors (printed).
            let (items, queries) = data::generate(data::Kind::Clustered, 100_000, 1000, 64, 1);
            let mut index = MipsIndex::build(&items, false, Config { m: 16, ef_construction: 64, seed: 1 }, &mut ());
            let truth: Vec<Vec<u32>> = (0..queries.len()).map(|q| exact::top_k_ids(&items, queries.row(q), 10)).collect();
            let start = now();
            let found: Vec<Vec<u32>> = (0..queries.len()).map(|q| index.search(queries.row(q), 10, 16)).collect();
            let ms = now() - start;
            let r = found.iter().zip(&truth).map(|(f, t)| recall(f, t)).sum::<f64>() / queries.len() as f64;
            Ok(result(name, &format!("queries (recall@10 = {r:.3})"), queries.len() as f64, ms))
        }
        "mips-hnsw-top4-200x8" => {
            // The capstone's serving: a 200-item catalogue in d = 8, top 4 at ef_search 32 (a
            // search visits most of the graph, so it is bound by bookkeeping, not distances).
            let (items, queries) = data::generate(data::Kind::Clustered, 200, 1000, 8, 1);
            let mut index = MipsIndex::build(&items, false, Config { m: 16, ef_construction: 64, seed: 1 }, &mut ());
            let searches = 100_000;
            let start = now();
            let mut found = 0u64;
            for q in 0..searches {
                found += index.search(queries.row(q % queries.len()), 4, 32).len() as u64;
            }
            let ms = now() - start;
            assert_eq!(found, 4 * searches as u64);
            Ok(result(name, "queries", searches as f64, ms))
        }
        "mips-hnsw-build-uniform-3e4x100" => {
            // The fast-MIPS lesson's graph: inner products on its uniform vectors (d = 100), M 16,
            // ef_construction 64, repaired; 30,000 items (the notebook's sizes reach 137,854).
            let (items, _) = data::generate(data::Kind::Uniform, 30_000, 1, 100, 1);
            let start = now();
            let index = MipsIndex::build(&items, false, Config { m: 16, ef_construction: 64, seed: 1 }, &mut ());
            let ms = now() - start;
            assert_eq!(index.graph.len(), items.len());
            Ok(result(name, "insertions", items.len() as f64, ms))
        }
        "rsvd-20000x10000-1pct-rank32-q2" => {
            // The size: a 20,000 × 10,000 sparse matrix at 1 %, rank 32, p = 10, q = 2.
            use crate::core::embeddings::{rsvd, InteractionWorld, WorldSpec};
            let world = InteractionWorld::generate(&WorldSpec::new(20_000, 10_000, 20, 0.01), 1)?;
            let start = now();
            let svd = rsvd::randomized_svd(&world.observed, &rsvd::RsvdParams::new(32, 10, 2, 1), false, &mut ())?;
            let ms = now() - start;
            assert!(svd.singular_values[0] > 0.0);
            Ok(result(name, &format!("factorisations ({} non-zeros)", world.observed.nonzeros()), 1.0, ms))
        }
        "bpr-epoch-default-world" => {
            // One BPR epoch (Adam, 1 negative) from the SVD start, on the lesson's default world.
            use crate::core::embeddings::bpr::{BprModel, BprTrainer, Init};
            use crate::core::embeddings::lesson::EmbeddingsParams;
            use crate::core::embeddings::rsvd;
            let p = EmbeddingsParams::default();
            let world = p.world()?;
            let svd = rsvd::randomized_svd(&world.observed, &rsvd::RsvdParams::new(p.dim as u32, 10, 2, 1), false, &mut ())?;
            let mut model = BprModel::new(Init::Embeddings(rsvd::item_embeddings(&svd)), world.items(), false, 1)?;
            let params = crate::core::embeddings::bpr::BprParams::new(3, crate::core::embeddings::bpr::Optimizer::Adam, p.learning_rate, 1);
            let mut trainer = BprTrainer::new(&model, &world.observed, &params)?;
            let start = now();
            for _ in 0..3 {
                trainer.epoch(&mut model, &world.observed, &mut ());
            }
            let ms = now() - start;
            Ok(result(name, "triples", 3.0 * world.observed.nonzeros() as f64, ms))
        }
        epoch if epoch.starts_with("prr-epoch-") || epoch.starts_with("slate-ips-epoch-") => {
            // One training epoch over the same 2,000 logged rows (the lesson's timing), at P = 1e3..1e5.
            let items: u32 = match &epoch[epoch.len() - 3..] {
                "1e3" => 1000,
                "1e4" => 10_000,
                _ => 100_000,
            };
            let mut clock = crate::core::progress::Timed { report: |_: f64, _: &str| {}, clock: now };
            let params = crate::core::prr::lesson::PrrParams::default();
            let point = crate::core::prr::lesson::timing_point(&params, items, &mut clock);
            let ms = if epoch.starts_with("prr") { point.prr_ms_per_epoch } else { point.slate_ips_ms_per_epoch };
            Ok(result(name, &format!("epochs (2,000 rows, {} clicked)", point.clicked), 1.0, ms))
        }
        "reinforce-world-default" => {
            // The REINFORCE lesson's default world: interactions, their randomized SVD and the
            // users' contexts (most of what its page computes before its first figure; the HNSW
            // index over the world, the rest of it, is not timed here). Its first call follows
            // the REINFORCE steps, which build worlds of their own with the same code.
            let params = crate::core::reinforce::lesson::ReinforceParams::default();
            let start = now();
            let world = crate::core::reinforce::CatalogueWorld::build(&params.world_config(params.items as u32), &mut ())?;
            let ms = now() - start;
            assert_eq!(world.item_count(), params.items as u32);
            Ok(result(name, "worlds", 1.0, ms))
        }
        step if step.starts_with("reinforce-step-1e5-") => {
            // Gradient steps of one estimator on the lesson's default world at P = 100,000 (batch
            // 32, d = 32, S = 256, ε = 0.2, T = 64); world and index are built first, untimed.
            use crate::core::reinforce::lesson::ReinforceParams;
            use crate::core::reinforce::{CatalogueWorld, Method, Trainer};
            let method = Method::from_id(&step["reinforce-step-1e5-".len()..]).ok_or("no such method")?;
            let params = ReinforceParams { items: 100_000, ..ReinforceParams::default() };
            let world = CatalogueWorld::build(&params.world_config(100_000), &mut ())?;
            let mut index = world.index(params.seed, &mut ());
            let mut trainer = Trainer::new(method, world.dim, params.theta_init, params.learning_rate, params.seed);
            let sampling = params.sampling();
            trainer.step(&world, &mut index, &sampling, params.batch as u32);
            let steps = match method {
                Method::Exact | Method::Sampled => 8,
                Method::Uniform => 400,
                Method::Mixture => 200,
            };
            let start = now();
            for _ in 0..steps {
                trainer.step(&world, &mut index, &sampling, params.batch as u32);
            }
            Ok(result(name, "iterations (batch 32)", steps as f64, now() - start))
        }
        "capstone-tower-w128" => {
            // The capstone's deep query tower at the hidden_width slider's top (6 → 128 → 128 →
            // 8, ReLU): one training row's forward and backward pass, as its drag computes them.
            use crate::core::putting_it_together::tower::{Activation, Tower, Trace};
            let tower = Tower::mlp(6, 2, 128, 8, Activation::Relu);
            let mut rng = rng::seeded(1, rng::Stream::Model);
            let mut params = vec![0.0; tower.len()];
            tower.init(&mut params, &mut rng);
            let weights = tower.pass_weights(&params);
            let contexts: Vec<[f64; 6]> = (0..64).map(|_| std::array::from_fn(|_| rng::normal(&mut rng))).collect();
            let (mut trace, mut grad) = (Trace::default(), vec![0.0f32; tower.len()]);
            let rows = 20_000;
            let start = now();
            for r in 0..rows {
                tower.forward(&weights, &contexts[r % contexts.len()], &mut trace);
                let d_output = trace.output.clone();
                tower.backward(&weights, &mut trace, &d_output, 1e-3, &mut grad);
            }
            let ms = now() - start;
            assert!(grad.iter().all(|g| g.is_finite()));
            Ok(result(name, "rows (forward + backward)", rows as f64, ms))
        }
        other => Err(format!("no benchmark “{other}”; there are {}", NAMES.join(", "))),
    }
}
