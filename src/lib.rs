//! Reward-optimizing recommendation, as an interactive tutorial.
//!
//! `core` holds all the math and simulation (pure Rust, tested natively); `lessons` is the one
//! list of lessons; `ui` (wasm only) wires parameters to the core and results to plots; `worker`
//! runs experiments off the main thread.

pub mod core;
pub mod lesson_text;
pub mod lessons;
pub mod plot;
#[cfg(not(target_arch = "wasm32"))]
pub mod serve;
#[cfg(target_arch = "wasm32")]
pub mod ui;
