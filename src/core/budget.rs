//! What a run will cost, known before it starts.
//!
//! Every lesson estimates the work of a query from its parameters alone: a few [`Term`]s, each a
//! count of the elementary steps of one of its stages (rows simulated, distances computed,
//! gradient steps…) times the time one step takes, measured natively on the reference machine
//! (this project's 2-core CI machine) by `rorec calibrate`. The page and the CLI then decide from
//! the estimate whether to run at once, to ask first (a long wait should be a choice), or to
//! refuse and say what to lower.

use std::fmt::Write as _;

/// Runs estimated above this many seconds (where they would run) start only when asked.
pub const ASK_ABOVE_SECONDS: f64 = 12.0;
/// Runs estimated above this many seconds are refused, with what to lower.
pub const BUDGET_SECONDS: f64 = 120.0;
/// How much slower the same work runs in the page than natively on one core, per worker, unless a
/// term says otherwise ([`Estimate::term_in_page`]). The `.ci/bench` kernels run 1.2–2.9× slower
/// in wasm, but a whole lesson in the page (headless Chromium, `ONLY=live .ci/bench`, the page's
/// loading left out) took 0.6–2.0× its native estimate divided over two workers, for the five
/// defaults that take over a second. Fast MIPS's terms are measured apart: at the notebook's
/// sizes its graphs build 1.8× slower in wasm (no eight-lane AVX there, no prefetch).
pub const WASM_SLOWDOWN: f64 = 1.0;
/// A preview estimated to take at most this long in the page is quick: it may run with the cores
/// to itself (the full run waits for it), and a lesson whose natural preview is slower offers a
/// smaller one, so that the page shows a first result within about a second of opening.
pub const QUICK_PREVIEW_SECONDS: f64 = 1.0;
/// Parallel parts' efficiency on two cores (two workers finish a split run in about 1/1.8 of
/// the time of one).
pub const PARALLEL_EFFICIENCY: f64 = 0.9;

/// One term of an estimate: a stage's step count times its time per step.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// What the work is, in the learner's words ("building the graphs").
    pub what: &'static str,
    /// The parameters that make it grow: what to lower when it is too much.
    pub grows_with: &'static [&'static str],
    /// Elementary steps (any unit the lesson counts in; `ns_per_step` is per that unit).
    pub steps: f64,
    /// Nanoseconds per step, natively on one core of the reference machine.
    pub ns_per_step: f64,
    /// How much slower a step runs in the page's wasm ([`WASM_SLOWDOWN`] unless measured apart).
    pub wasm_slowdown: f64,
}

impl Term {
    /// Seconds natively on one core.
    pub fn seconds(&self) -> f64 {
        self.steps * self.ns_per_step * 1e-9
    }

    /// Seconds on one core where the run happens (in the page, at the term's wasm slowdown).
    pub fn seconds_at(&self, place: Place) -> f64 {
        match place {
            Place::Native => self.seconds(),
            Place::Page { .. } => self.seconds() * self.wasm_slowdown,
        }
    }
}

/// The estimated work of one query, from scratch (a run that reuses cached stages takes less).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    pub terms: Vec<Term>,
    /// Parts the run splits into (one per worker in the page); the page divides by the parts it
    /// can run at once.
    pub parts: u32,
}

impl Estimate {
    pub fn new() -> Self {
        Estimate { terms: Vec::new(), parts: 1 }
    }

    /// Adds a term (skipped when it has no steps, so the message never names idle work).
    pub fn term(self, what: &'static str, grows_with: &'static [&'static str], steps: f64, ns_per_step: f64) -> Self {
        self.term_in_page(what, grows_with, steps, ns_per_step, WASM_SLOWDOWN)
    }

    /// A term whose steps run `wasm_slowdown` times slower in the page than natively (measured
    /// apart, where the native code has kernels the browser lacks: AVX's eight lanes, FMA).
    pub fn term_in_page(
        mut self,
        what: &'static str,
        grows_with: &'static [&'static str],
        steps: f64,
        ns_per_step: f64,
        wasm_slowdown: f64,
    ) -> Self {
        if steps > 0.0 {
            self.terms.push(Term { what, grows_with, steps, ns_per_step, wasm_slowdown });
        }
        self
    }

    pub fn parts(mut self, parts: u32) -> Self {
        self.parts = parts.max(1);
        self
    }

    /// Seconds natively on one core (the CLI).
    pub fn native_seconds(&self) -> f64 {
        self.terms.iter().map(Term::seconds).sum()
    }

    /// Seconds in the browser with `cores` workers (parts beyond the cores wait their turn).
    pub fn page_seconds(&self, cores: u32) -> f64 {
        let parallel = self.parts.min(cores.max(1)) as f64;
        let speedup = if parallel > 1.0 { parallel * PARALLEL_EFFICIENCY } else { 1.0 };
        self.terms.iter().map(|t| t.seconds_at(Place::Page { cores })).sum::<f64>() / speedup
    }

    /// Seconds where the run would happen.
    pub fn seconds(&self, place: Place) -> f64 {
        match place {
            Place::Native => self.native_seconds(),
            Place::Page { cores } => self.page_seconds(cores),
        }
    }

    /// The term that costs the most where the run would happen (a term's wasm slowdown can make
    /// another term the largest in the page).
    pub fn largest(&self, place: Place) -> Option<&Term> {
        self.terms.iter().max_by(|a, b| a.seconds_at(place).total_cmp(&b.seconds_at(place)))
    }

    /// The estimate term by term, for `rorec estimate`.
    pub fn breakdown(&self) -> String {
        let mut out = String::new();
        let mut terms: Vec<&Term> = self.terms.iter().collect();
        terms.sort_by(|a, b| b.seconds().total_cmp(&a.seconds()));
        for t in terms {
            let _ = writeln!(out, "  {:>9}  {} (grows with {})", duration(t.seconds()), t.what, t.grows_with.join(", "));
        }
        out
    }
}

/// What to do with a query, given its estimate where it would run.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Cheap enough: run it.
    Run,
    /// Long: say how long, and start only when asked.
    Ask { seconds: f64, message: String },
    /// Too long: refuse, with the estimate and what to lower.
    Refuse { seconds: f64, message: String },
}

/// Where a run happens: natively on one core (the CLI), or in the page's wasm workers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Place {
    Native,
    Page { cores: u32 },
}

/// The verdict for an estimate where the run would happen: its time there, and the term that
/// costs the most there.
pub fn verdict(estimate: &Estimate, place: Place) -> Verdict {
    let seconds = estimate.seconds(place);
    let main = estimate.largest(place);
    let what = main.map(|t| t.what).unwrap_or("the run");
    let lower = main.map(|t| or_list(t.grows_with)).unwrap_or_default();
    if seconds > BUDGET_SECONDS {
        Verdict::Refuse {
            seconds,
            message: format!(
                "This run would take about {} (estimated from its parameters; the limit is {}), most of it {what}. Lower {lower}.",
                duration(seconds),
                duration(BUDGET_SECONDS)
            ),
        }
    } else if seconds > ASK_ABOVE_SECONDS {
        Verdict::Ask {
            seconds,
            message: format!("This run will take about {}, most of it {what} (grows with {lower}).", duration(seconds)),
        }
    } else {
        Verdict::Run
    }
}

/// "a, b or c".
fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A duration as a reader says it: "0.4 s", "25 s", "6 min 20 s", "2 h 5 min".
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "forever".into();
    }
    if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        let s = seconds.round() as u64;
        if s.is_multiple_of(60) || s >= 1200 {
            format!("{} min", (seconds / 60.0).round() as u64)
        } else {
            format!("{} min {} s", s / 60, s % 60)
        }
    } else {
        let m = (seconds / 60.0).round() as u64;
        format!("{} h {} min", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(0.42), "0.4 s");
        assert_eq!(duration(25.2), "25 s");
        assert_eq!(duration(380.0), "6 min 20 s");
        assert_eq!(duration(120.0), "2 min");
        assert_eq!(duration(7500.0), "2 h 5 min");
    }

    #[test]
    fn verdicts_follow_the_thresholds_and_name_what_to_lower() {
        let estimate = |s: f64| {
            Estimate::new().term("building the graphs", &["base_items", "sizes"], s * 1e9, 1.0).term("searching", &["queries"], 1.0, 1.0)
        };
        assert_eq!(verdict(&estimate(1.0), Place::Native), Verdict::Run);
        let Verdict::Ask { message, .. } = verdict(&estimate(30.0), Place::Native) else { panic!() };
        assert!(message.contains("30 s") && message.contains("building the graphs"), "{message}");
        let Verdict::Refuse { message, .. } = verdict(&estimate(400.0), Place::Native) else { panic!() };
        assert!(message.contains("6 min 40 s") && message.contains("Lower base_items or sizes"), "{message}");
        // The page names the term that costs the most in wasm: 20 s natively of a term that runs
        // at the same speed there, against 15 s of one that runs 3 times slower.
        let mixed = Estimate::new().term_in_page("building the graphs", &["base_items"], 20e9, 1.0, 1.0).term_in_page(
            "scanning",
            &["queries"],
            15e9,
            1.0,
            3.0,
        );
        let Verdict::Ask { message, .. } = verdict(&mixed, Place::Native) else { panic!() };
        assert!(message.contains("35 s") && message.contains("most of it building the graphs"), "{message}");
        let Verdict::Ask { message, .. } = verdict(&mixed, Place::Page { cores: 1 }) else { panic!() };
        assert!(message.contains("65 s") && message.contains("most of it scanning"), "{message}");
    }

    #[test]
    fn the_page_divides_parallel_parts_over_its_cores() {
        let e = Estimate::new().term("work", &["n"], 1e9, 1.0).parts(4);
        assert_eq!(e.native_seconds(), 1.0);
        assert!((e.page_seconds(1) - WASM_SLOWDOWN).abs() < 1e-12);
        assert!((e.page_seconds(2) - WASM_SLOWDOWN / (2.0 * PARALLEL_EFFICIENCY)).abs() < 1e-12);
        // A term measured slower in wasm counts so in the page only.
        let e = e.term_in_page("scanning", &["n"], 1e9, 1.0, 2.5);
        assert_eq!(e.native_seconds(), 2.0);
        assert!((e.page_seconds(1) - (WASM_SLOWDOWN + 2.5)).abs() < 1e-12);
    }
}
