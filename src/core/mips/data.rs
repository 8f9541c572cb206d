//! Catalogues and queries for the MIPS lesson: the notebook's uniform vectors, and clustered,
//! matrix-factorisation-like embeddings (items around topic directions with varying norms; a
//! query is the mean of a few items a user interacted with).

use super::Vectors;
use crate::core::math::exp;
use crate::core::rng::{self, Stream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// U[0,1]^d items and queries, as in the tutorial's notebook.
    Uniform,
    /// Clustered, MF-like.
    Clustered,
    /// N(0, 1) items and queries.
    Gaussian,
}

/// `items` and `queries` vectors of dimension `dim`.
pub fn generate(kind: Kind, items: usize, queries: usize, dim: usize, seed: u64) -> (Vectors, Vectors) {
    let catalogue = generate_items(kind, items, dim, seed);
    let queries = generate_queries(kind, &catalogue, queries, seed);
    (catalogue.vectors, queries)
}

/// A catalogue, and each item's cluster where the kind has clusters (what the queries draw on).
pub struct Items {
    pub vectors: Vectors,
    pub cluster_of: Vec<u32>,
}

const CLUSTERS: u32 = 64;

/// `items` vectors of dimension `dim`. Drawn one after another from one stream: a smaller
/// catalogue is the first rows of a larger one (the MIPS lesson's graphs grow on that).
pub fn generate_items(kind: Kind, items: usize, dim: usize, seed: u64) -> Items {
    let mut rng = rng::seeded(seed, Stream::World);
    let mut catalogue = Vectors::new(dim);
    let mut cluster_of = Vec::new();
    match kind {
        Kind::Uniform => catalogue.data = (0..items * dim).map(|_| rng::uniform(&mut rng) as f32).collect(),
        Kind::Gaussian => catalogue.data = (0..items * dim).map(|_| rng::normal(&mut rng) as f32).collect(),
        Kind::Clustered => {
            let centers: Vec<Vec<f64>> = (0..CLUSTERS)
                .map(|_| {
                    let v: Vec<f64> = (0..dim).map(|_| rng::normal(&mut rng)).collect();
                    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                    v.into_iter().map(|x| x / n).collect()
                })
                .collect();
            let noise = 0.7 / (dim as f64).sqrt();
            cluster_of.reserve(items);
            for _ in 0..items {
                let c = rng::index(&mut rng, CLUSTERS);
                let norm = exp(0.35 * rng::normal(&mut rng));
                cluster_of.push(c);
                for center in &centers[c as usize] {
                    catalogue.data.push((norm * (center + noise * rng::normal(&mut rng))) as f32);
                }
            }
        }
    }
    Items { vectors: catalogue, cluster_of }
}

/// `queries` query vectors for a catalogue made by [`generate_items`] with the same kind.
pub fn generate_queries(kind: Kind, items: &Items, queries: usize, seed: u64) -> Vectors {
    let dim = items.vectors.dim;
    let mut qrng = rng::seeded(seed, Stream::Users);
    let mut qs = Vectors::new(dim);
    match kind {
        Kind::Uniform => qs.data = (0..queries * dim).map(|_| rng::uniform(&mut qrng) as f32).collect(),
        Kind::Gaussian => qs.data = (0..queries * dim).map(|_| rng::normal(&mut qrng) as f32).collect(),
        Kind::Clustered => {
            // A query: the mean of 5 items of one cluster (a user's history), as the embeddings
            // lesson's query function does.
            let mut members: Vec<Vec<u32>> = vec![Vec::new(); CLUSTERS as usize];
            for (i, c) in items.cluster_of.iter().enumerate() {
                members[*c as usize].push(i as u32);
            }
            for _ in 0..queries {
                let c = loop {
                    let c = rng::index(&mut qrng, CLUSTERS) as usize;
                    if !members[c].is_empty() {
                        break c;
                    }
                };
                let mut q = vec![0.0f32; dim];
                for _ in 0..5 {
                    let item = members[c][rng::index(&mut qrng, members[c].len() as u32) as usize];
                    for (qj, x) in q.iter_mut().zip(items.vectors.row(item as usize)) {
                        *qj += x / 5.0;
                    }
                }
                qs.push(&q);
            }
        }
    }
    qs
}
