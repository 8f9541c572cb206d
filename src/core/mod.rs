//! The pure core: all math and simulation, no yew/web-sys. Tested natively with `cargo test`.

pub mod bench;
pub mod budget;
pub mod chacha;
pub mod claims;
pub mod embeddings;
pub mod exp_lanes;
pub mod experiment;
pub mod horvitz_thompson;
pub mod math;
pub mod mips;
pub mod packed;
pub mod params;
pub mod progress;
pub mod prr;
pub mod putting_it_together;
pub mod reinforce;
pub mod rng;
pub mod slate_world;
pub mod stages;
pub mod stats;
