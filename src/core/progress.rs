//! Progress reports from long computations (to a worker's message port, a terminal, or nowhere).
//! Cancelling is the caller's business: the browser terminates the worker, the CLI is killed.

pub trait Progress {
    /// `fraction` of the current stage done, in [0, 1].
    fn report(&mut self, fraction: f64, stage: &str);

    /// A monotonic clock in milliseconds, for experiments that time things (std's Instant does
    /// not exist in the browser, so the caller provides it). 0 where nobody measures.
    fn now_ms(&mut self) -> f64 {
        0.0
    }
}

/// No progress wanted.
impl Progress for () {
    fn report(&mut self, _fraction: f64, _stage: &str) {}
}

impl<F: FnMut(f64, &str)> Progress for F {
    fn report(&mut self, fraction: f64, stage: &str) {
        self(fraction, stage)
    }
}

/// Maps a sub-task's [0, 1] onto [start, end] of the whole run.
pub struct Staged<'a> {
    pub inner: &'a mut dyn Progress,
    pub start: f64,
    pub end: f64,
}

impl Progress for Staged<'_> {
    fn report(&mut self, fraction: f64, stage: &str) {
        self.inner.report(self.start + (self.end - self.start) * fraction, stage)
    }

    fn now_ms(&mut self) -> f64 {
        self.inner.now_ms()
    }
}

/// Progress through a callback, with a clock.
pub struct Timed<F: FnMut(f64, &str), C: FnMut() -> f64> {
    pub report: F,
    pub clock: C,
}

impl<F: FnMut(f64, &str), C: FnMut() -> f64> Progress for Timed<F, C> {
    fn report(&mut self, fraction: f64, stage: &str) {
        (self.report)(fraction, stage)
    }

    fn now_ms(&mut self) -> f64 {
        (self.clock)()
    }
}

pub fn staged(inner: &mut dyn Progress, start: f64, end: f64) -> Staged<'_> {
    Staged { inner, start, end }
}
