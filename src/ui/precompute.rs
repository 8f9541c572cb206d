//! Ready before the reader gets there: once a lesson's run has finished, the next lesson's
//! default report (and, in presenter mode, the reports of the presets the next slides offer) are
//! computed one after the other in one background worker and kept, so that moving on shows
//! results at once. A background run is the whole experiment in one part, which gives the same
//! report as the page's split run (the core's tests check that parts never change numbers).

use crate::lessons::Lesson;
use std::cell::RefCell;
use std::collections::VecDeque;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

/// Background work starts once the page has been settled this long. Started at once, the next
/// lesson's run began in a new worker after every answered change (14 ms of the main thread to
/// start the worker, a core taken while the page drew its figures) and was stopped by the next
/// change, its work lost, while a reader moved a knob again and again.
const SETTLED_MS: i32 = 1000;

/// Reports kept, most recent last (lesson id, canonical query, report JSON): a lesson's presets
/// and the next lesson's defaults.
const KEPT: usize = 12;

struct Background {
    worker: Worker,
    lesson: &'static str,
    query: String,
    // Kept alive as long as the worker runs.
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

thread_local! {
    static READY: RefCell<Vec<(&'static str, String, String)>> = const { RefCell::new(Vec::new()) };
    static RUNNING: RefCell<Option<Background>> = const { RefCell::new(None) };
    /// What to compute after the running one, in order.
    static PENDING: RefCell<VecDeque<(&'static Lesson, String)>> = const { RefCell::new(VecDeque::new()) };
    /// Counts the calls of `prepare_all` and `stop`: a delayed start is void once a later call came.
    static GENERATION: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn next_generation() -> u32 {
    GENERATION.with(|g| {
        g.set(g.get().wrapping_add(1));
        g.get()
    })
}

/// The report computed in the background for this lesson and query, if there is one.
pub fn ready(lesson: &str, query: &str) -> Option<String> {
    READY.with(|r| r.borrow().iter().find(|(l, q, _)| *l == lesson && q == query).map(|(_, _, json)| json.clone()))
}

/// Compute `lesson`'s default report in the background, unless it is ready or under way.
pub fn prepare(lesson: &'static Lesson) {
    prepare_all(vec![(lesson, (lesson.canonical)("").0)]);
}

/// Compute these reports in the background, in this order (canonical queries), skipping those
/// ready, once the page has been settled for [`SETTLED_MS`] (unless it is stopped or asked for
/// others meanwhile); then a run under way that is among them goes on, any other stops.
pub fn prepare_all(wanted: Vec<(&'static Lesson, String)>) {
    let generation = next_generation();
    crate::ui::dom::after(SETTLED_MS, move || {
        if GENERATION.with(|g| g.get()) == generation {
            prepare_now(wanted);
        }
    });
}

fn prepare_now(wanted: Vec<(&'static Lesson, String)>) {
    let running = RUNNING.with(|r| r.borrow().as_ref().map(|b| (b.lesson, b.query.clone())));
    let keeps_running = running.as_ref().is_some_and(|(id, query)| wanted.iter().any(|(l, q)| l.id == *id && q == query));
    if !keeps_running {
        stop_running();
    }
    let queue: VecDeque<(&'static Lesson, String)> = wanted
        .into_iter()
        .filter(|(l, q)| ready(l.id, q).is_none() && running.as_ref().is_none_or(|(id, query)| !(l.id == *id && q == query)))
        .collect();
    PENDING.with(|p| *p.borrow_mut() = queue);
    if !keeps_running {
        start_next();
    }
}

/// Start the first pending report that is not ready yet.
fn start_next() {
    while let Some((lesson, query)) = PENDING.with(|p| p.borrow_mut().pop_front()) {
        if ready(lesson.id, &query).is_none() {
            start(lesson, query);
            return;
        }
    }
}

fn start(lesson: &'static Lesson, query: String) {
    let Ok(worker) = crate::ui::worker::new_worker() else {
        return;
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data();
        let get = |k: &str| js_sys::Reflect::get(&data, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
        if let Some(part) = get("result").as_string() {
            let finished = RUNNING.with(|r| r.borrow().as_ref().map(|b| (b.lesson, b.query.clone())));
            if let Some((id, query)) = finished {
                if let Ok(json) = (lesson.merge)(&query, &[part]) {
                    READY.with(|r| {
                        let mut r = r.borrow_mut();
                        r.retain(|(l, q, _)| !(*l == id && *q == query));
                        r.push((id, query, json));
                        let excess = r.len().saturating_sub(KEPT);
                        r.drain(..excess);
                    });
                }
            }
            next_later();
        } else if get("error").is_string() || get("panic").is_string() {
            // Nothing is kept; the lesson computes as usual when the reader gets there.
            next_later();
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let message = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&message, &JsValue::from_str(k), &v);
    };
    set("id", JsValue::from(1u32));
    set("lesson", JsValue::from_str(lesson.id));
    set("query", JsValue::from_str(&query));
    set("part", JsValue::from(0u32));
    set("parts", JsValue::from(1u32));
    if worker.post_message(&message).is_ok() {
        RUNNING.with(|r| *r.borrow_mut() = Some(Background { worker, lesson: lesson.id, query, _on_message: on_message }));
    }
}

/// Stop the background work (the reader needs the cores): the run under way and what was queued.
pub fn stop() {
    next_generation();
    PENDING.with(|p| p.borrow_mut().clear());
    stop_running();
}

fn stop_running() {
    if let Some(background) = RUNNING.with(|r| r.borrow_mut().take()) {
        background.worker.terminate();
        // Dropping the handler from inside itself would free a running closure.
        std::mem::forget(background._on_message);
    }
}

/// From inside the worker's own message handler: end this run, then start the next pending one.
fn next_later() {
    crate::ui::dom::after(0, || {
        stop_running();
        start_next();
    });
}
