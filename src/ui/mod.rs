//! The browser app (wasm only): a thin layer that wires lesson parameters to the core and the
//! core's reports to plots and tables. No math lives here.

pub mod app;
pub mod dom;
pub mod lesson_page;
pub mod lessons;
pub mod plot;
pub mod precompute;
pub mod slides;
pub mod speaker;
pub mod widgets;
pub mod worker;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Start the app in the page (called by index.html).
#[wasm_bindgen]
pub fn run_app() {
    // Through Yew, which would otherwise replace our hook with its own when rendering starts.
    yew::set_custom_panic_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        dom::show_panic_panel(&info.to_string());
    }));
    let root = dom::document().get_element_by_id("app").expect("index.html has #app");
    root.set_inner_html(""); // the "Loading…" line
                             // The speaker view (opened with `s` in presenter mode) is the same app in a second window.
    if slides::is_speaker_window() {
        yew::Renderer::<speaker::SpeakerView>::with_root(root).render();
    } else {
        yew::Renderer::<app::App>::with_root(root).render();
    }
}

thread_local! {
    /// This worker's stage results, kept across runs: a run reuses every stage whose inputs did
    /// not change since an earlier run in the same worker.
    static WORKER_CACHE: std::cell::RefCell<crate::core::stages::StageCache> =
        const { std::cell::RefCell::new(crate::core::stages::StageCache::new(crate::core::stages::WORKER_BUDGET_BYTES)) };
}

/// One part of one experiment, run in slices by www/worker.js inside a Web Worker: the worker
/// calls `step` until it returns true, posting `live()` between slices and pausing on request.
#[wasm_bindgen]
pub struct PartRun {
    stepper: Box<dyn crate::core::experiment::Stepper>,
    /// The worker's own clock (performance.now exists in workers too).
    clock: Box<dyn Fn() -> f64>,
}

#[wasm_bindgen]
impl PartRun {
    #[wasm_bindgen(constructor)]
    /// `preview`: a preview's part (see [`crate::core::experiment::Part::preview`]).
    pub fn new(lesson: &str, query: &str, part: u32, parts: u32, preview: bool) -> Result<PartRun, JsValue> {
        std::panic::set_hook(Box::new(|info| {
            console_error_panic_hook::hook(info);
            worker::post_panic(&info.to_string());
        }));
        let lesson = crate::lessons::find(lesson).ok_or_else(|| JsValue::from_str(&format!("no lesson {lesson}")))?;
        let part = crate::core::experiment::Part { preview, ..crate::core::experiment::Part::new(part, parts.max(1)) };
        let stepper = (lesson.start)(query, part).map_err(|e| JsValue::from_str(&e))?;
        let performance = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance")).ok();
        let now_fn = performance.as_ref().and_then(|p| js_sys::Reflect::get(p, &JsValue::from_str("now")).ok());
        let clock = Box::new(move || match (&performance, &now_fn) {
            (Some(p), Some(f)) => f.unchecked_ref::<js_sys::Function>().call0(p).ok().and_then(|v| v.as_f64()).unwrap_or(0.0),
            _ => js_sys::Date::now(),
        });
        Ok(PartRun { stepper, clock })
    }

    /// Work for about `budget_ms`; `progress(fraction, stage)` is called as it goes. True when
    /// the part is finished (then `partial()` is its result).
    pub fn step(&mut self, budget_ms: f64, progress: &js_sys::Function) -> bool {
        let mut last = -1.0;
        let clock = &self.clock;
        let mut report = crate::core::progress::Timed {
            report: |fraction: f64, stage: &str| {
                // Throttled: a message per 1 % is plenty for a progress bar.
                if (fraction - last).abs() >= 0.01 || fraction >= 1.0 {
                    last = fraction;
                    let _ = progress.call2(&JsValue::NULL, &JsValue::from_f64(fraction), &JsValue::from_str(stage));
                }
            },
            clock: || clock(),
        };
        WORKER_CACHE.with(|cache| self.stepper.step(budget_ms, &mut cache.borrow_mut(), &mut report))
    }

    /// The part's result (JSON), or the error that replaced it.
    pub fn partial(&self) -> Result<String, JsValue> {
        self.stepper.partial_json().map_err(|e| JsValue::from_str(&e))
    }

    /// The result so far, for parts that run in slices (else undefined).
    pub fn live(&self) -> Option<String> {
        if self.stepper.is_live() {
            self.stepper.partial_json().ok()
        } else {
            None
        }
    }
}

/// Time a benchmark workload in this browser (see core::bench); the result as JSON.
#[wasm_bindgen]
pub fn bench(name: &str) -> Result<String, JsValue> {
    let performance = dom::window().performance().ok_or("no performance clock")?;
    let now = move || performance.now();
    let result = crate::core::bench::run(name, &now).map_err(|e| JsValue::from_str(&e))?;
    serde_json::to_string(&result).map_err(|e| JsValue::from_str(&e.to_string()))
}

/// For the browser tests: whether the lesson's default report was computed in the background.
#[wasm_bindgen]
pub fn precomputed(lesson: &str) -> bool {
    crate::lessons::find(lesson).is_some_and(|l| precompute::ready(l.id, &(l.canonical)("").0).is_some())
}

/// For the browser tests: whether this query's report was computed in the background.
#[wasm_bindgen]
pub fn precomputed_query(lesson: &str, query: &str) -> bool {
    crate::lessons::find(lesson).is_some_and(|l| (l.strict)(query).is_ok_and(|q| precompute::ready(l.id, &q).is_some()))
}

/// For the browser tests: panic on purpose, to check that the error panel appears.
#[wasm_bindgen]
pub fn debug_panic() {
    panic!("deliberate panic requested by debug_panic()");
}
