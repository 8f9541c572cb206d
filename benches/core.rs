//! Native criterion benchmarks of the hot paths. The wasm/native ratios come from
//! `.ci/bench` (the same workloads, core::bench, timed natively and in headless Chromium).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reward_reco::core::horvitz_thompson::estimators::{self, estimate};
use reward_reco::core::horvitz_thompson::lesson::HorvitzThompsonParams;
use reward_reco::core::rng;
use std::hint::black_box;

fn estimators_and_simulation(c: &mut Criterion) {
    let params = HorvitzThompsonParams::default();
    let lab = params.lab(params.build_world(), true);
    let mut rows = Vec::new();
    lab.simulate(10_000, &mut rng::replication(1, 0), &mut rows, None);

    let mut group = c.benchmark_group("horvitz-thompson");
    group.throughput(Throughput::Elements((rows.len() * estimators::ALL.len()) as u64));
    group.bench_function("all estimators on 10k rows (slate-estimates)", |b| {
        b.iter(|| estimators::ALL.iter().map(|k| estimate(*k, 1000.0, black_box(&rows)).value).sum::<f64>())
    });
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("simulate 10k logged rows", |b| {
        let mut out = Vec::new();
        let mut r = rng::replication(2, 0);
        b.iter(|| lab.simulate(10_000, &mut r, &mut out, None))
    });
    group.finish();
}

/// One gradient step of each REINFORCE estimator (batch 32) at P = 20,000, the lesson's default.
fn reinforce_steps(c: &mut Criterion) {
    use reward_reco::core::reinforce::lesson::ReinforceParams;
    use reward_reco::core::reinforce::{CatalogueWorld, Method, Trainer};
    let params = ReinforceParams::default();
    let world = CatalogueWorld::build(&params.world_config(params.items as u32), &mut ()).expect("the default world");
    let mut index = world.index(params.seed, &mut ());
    let sampling = params.sampling();
    let mut group = c.benchmark_group("reinforce P = 20,000");
    group.sample_size(10);
    for method in Method::ALL {
        let mut trainer = Trainer::new(method, world.dim, params.theta_init, params.learning_rate, params.seed);
        group.bench_function(format!("{} step", method.id()), |b| b.iter(|| trainer.step(&world, &mut index, &sampling, 32)));
    }
    group.finish();
}

criterion_group!(benches, estimators_and_simulation, reinforce_steps);
criterion_main!(benches);
