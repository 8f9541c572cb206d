//! One UI module per lesson: it turns the lesson's report into plots and tables.

pub mod embeddings;
pub mod fast_mips;
pub mod horvitz_thompson;
pub mod prr;
pub mod putting_it_together;
pub mod reinforce;
pub mod slate_world;
