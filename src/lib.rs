//! Reward-optimizing recommendation, as an interactive tutorial.
//!
//! `core` holds all the math and simulation (pure Rust, tested natively); `lessons` is the one
//! list of lessons; `ui` (wasm only) wires parameters to the core and results to plots.

pub mod core;
