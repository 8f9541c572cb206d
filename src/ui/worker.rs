//! Runs experiments in a Web Worker (the same wasm, loaded by www/worker.js), so that the page
//! stays responsive; progress and (for experiments that run in slices) the results so far arrive
//! as messages, pausing is a message, and cancelling terminates the worker.

use crate::lessons::Lesson;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};
use yew::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    Idle,
    Running {
        fraction: f64,
        stage: String,
    },
    /// A drag preview is shown; the full result follows when the control is released.
    Preview,
    Done,
    Failed(String),
    Cancelled,
}

#[derive(Debug)]
pub struct RunState<R> {
    pub status: RunStatus,
    /// The latest finished report (kept while a new run is under way, so plots don't blank).
    pub report: Option<Rc<R>>,
    /// The query that produced `report`.
    pub report_query: String,
    pub elapsed_ms: f64,
    /// The run is paused (between two slices of its parts).
    pub paused: bool,
    /// `report` is a preview (see core::experiment::Experiment::preview): of which query, and
    /// what it leaves out.
    pub preview: Option<Shown>,
    /// `report` is the results so far of a run for a slider being dragged (a lesson that runs in
    /// slices and has no cheaper preview): shown as its preview while the run goes on.
    pub dragging: bool,
    /// The last finished report and its query: what `report` falls back to when a run whose
    /// live results were showing is cancelled or fails.
    finished: Option<(Rc<R>, String)>,
    current: u32,
    started_at: f64,
    paused_at: f64,
    paused_ms: f64,
}

impl<R> Default for RunState<R> {
    fn default() -> Self {
        RunState {
            status: RunStatus::Idle,
            report: None,
            report_query: String::new(),
            elapsed_ms: 0.0,
            paused: false,
            preview: None,
            dragging: false,
            finished: None,
            current: 0,
            started_at: 0.0,
            paused_at: 0.0,
            paused_ms: 0.0,
        }
    }
}

pub enum Action<R> {
    Start {
        id: u32,
    },
    Progress {
        id: u32,
        fraction: f64,
        stage: String,
    },
    /// A preview's report: the cheaper query it computed, the query it previews, its note, and
    /// whether it is the last thing this run computes (a drag preview).
    Preview {
        id: u32,
        report: Rc<R>,
        query: String,
        shown: Shown,
        last: bool,
    },
    /// The results so far of a run in slices; `dragging`: of a run for a dragged slider.
    Live {
        id: u32,
        report: Rc<R>,
        query: String,
        dragging: bool,
    },
    Done {
        id: u32,
        report: Rc<R>,
        query: String,
    },
    Failed {
        id: u32,
        message: String,
    },
    Pause(bool),
    Cancel,
}

impl<R> Reducible for RunState<R> {
    type Action = Action<R>;

    fn reduce(self: Rc<Self>, action: Action<R>) -> Rc<Self> {
        let now = js_sys::Date::now();
        let mut next = RunState {
            status: self.status.clone(),
            report: self.report.clone(),
            report_query: self.report_query.clone(),
            elapsed_ms: self.elapsed_ms,
            paused: self.paused,
            preview: self.preview.clone(),
            dragging: self.dragging,
            finished: self.finished.clone(),
            current: self.current,
            started_at: self.started_at,
            paused_at: self.paused_at,
            paused_ms: self.paused_ms,
        };
        let restore_finished = |next: &mut RunState<R>| {
            next.paused = false;
            next.preview = None;
            next.dragging = false;
            if let Some((report, query)) = next.finished.clone() {
                next.report = Some(report);
                next.report_query = query;
            } else {
                next.report = None;
                next.report_query = String::new();
            }
        };
        match action {
            Action::Start { id } => {
                next.current = id;
                next.dragging = false;
                next.started_at = now;
                next.paused = false;
                next.paused_ms = 0.0;
                next.status = RunStatus::Running { fraction: 0.0, stage: "starting".into() };
            }
            Action::Preview { id, report, query, shown, last } if id == self.current => {
                next.report = Some(report);
                next.report_query = query;
                next.preview = Some(shown);
                next.dragging = false;
                if last {
                    next.status = RunStatus::Preview;
                }
            }
            Action::Live { id, report, query, dragging } if id == self.current => {
                // A dragged slider's run shows its results so far as its preview: the slider's
                // value is not the page's parameters until it is released.
                next.preview = dragging.then(|| Shown { of: query.clone(), note: "results so far".into() });
                next.dragging = dragging;
                next.report = Some(report);
                next.report_query = query;
            }
            Action::Pause(paused) if matches!(self.status, RunStatus::Running { .. }) && paused != self.paused => {
                next.paused = paused;
                if paused {
                    next.paused_at = now;
                } else {
                    next.paused_ms += now - self.paused_at;
                }
            }
            Action::Progress { id, fraction, stage } if id == self.current => {
                next.status = RunStatus::Running { fraction, stage };
            }
            Action::Done { id, report, query } if id == self.current => {
                next.status = RunStatus::Done;
                next.preview = None;
                next.dragging = false;
                next.finished = Some((report.clone(), query.clone()));
                next.report = Some(report);
                next.report_query = query;
                next.elapsed_ms = now - self.started_at - self.paused_ms;
            }
            Action::Failed { id, message } if id == self.current => {
                next.status = RunStatus::Failed(message);
                restore_finished(&mut next);
            }
            Action::Cancel => {
                next.status = RunStatus::Cancelled;
                restore_finished(&mut next);
            }
            _ => return self, // a message from a run that was superseded
        }
        Rc::new(next)
    }
}

type Handler = Closure<dyn FnMut(MessageEvent)>;
type ErrorHandler = Closure<dyn FnMut(web_sys::Event)>;
/// A worker with the two handlers that must live as long as it does.
type LiveWorker = (Worker, Handler, ErrorHandler);

/// A preview on screen: the query it previews and what it leaves out.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    pub of: String,
    pub note: String,
}

/// What the page asked for.
#[derive(Clone, Debug)]
enum Request {
    /// The full report (after its preview, where the lesson has one).
    Full(String),
    /// Only the preview of this query (a slider being dragged).
    Preview(String),
}

/// A job that computes a preview.
#[derive(Clone)]
struct PreviewJob {
    shown: Shown,
    /// The run whose preview it is (its report is shown under that run's id).
    shows_for: u32,
    /// Nothing follows (a drag preview); else the full run follows it in the same workers.
    last: bool,
    /// When it was posted (ms, `Date.now()`): see [`HOLD_IF_PREVIEW_UNDER_MS`].
    posted_at: f64,
}

impl PreviewJob {
    /// The preview of run `shows_for`, for the page's query `of`, posted now.
    fn new(of: String, note: String, shows_for: u32, last: bool) -> PreviewJob {
        PreviewJob { shown: Shown { of, note }, shows_for, last, posted_at: js_sys::Date::now() }
    }
}

/// One run: the same query split into `parts`, one per worker, merged when all are in.
struct Job {
    id: u32,
    query: String,
    preview: Option<PreviewJob>,
    partials: Vec<Option<String>>,
    /// Each part's results so far (parts that run in slices).
    lives: Vec<Option<String>>,
    fractions: Vec<f64>,
    /// Opened with its first part alone (see [`Dispatch::FirstPartAlone`]): the other parts, held
    /// back or just released, count as not started until they post results so far.
    first_part_alone: bool,
}

#[derive(Default)]
struct Slot {
    workers: Vec<LiveWorker>,
    next_id: u32,
    job: Option<Job>,
    /// The preview of `job`, computed first in the same workers (each worker then runs its part
    /// of `job` behind its part of the preview, and finds the shared stages in its cache).
    preview_job: Option<Job>,
    pending: Option<Request>,
    /// The job under way is paused: a new query replaces it rather than waiting behind it.
    paused: bool,
    /// Parts of `job` (worker index, message) held until its preview has been drawn (the page's
    /// opening run, see [`Dispatch::AfterPreview`]).
    held: Vec<(usize, js_sys::Object)>,
    /// A report (or a preview) of this page has come in (shown, or held back): later runs answer
    /// a change (with stages cached, unless the workers were replaced), not the page's opening.
    shown: bool,
    /// A change's finished preview, not yet shown (see [`PREVIEW_HOLD_MS`]): the run it previews
    /// and the closure that shows it.
    held_preview: Option<(u32, Box<dyn FnOnce()>)>,
    /// Queries whose full run finished in these workers, latest last (at most
    /// [`FINISHED_REMEMBERED`]): their stages are in the workers' caches, so going back to one
    /// runs the full query at once, without first computing a preview the caches may lack.
    finished: Vec<String>,
    /// The latest progress of the job under way (its id, fraction and stage), not drawn yet: the
    /// page draws progress at most every [`PROGRESS_EVERY_MS`] (a drawing is scheduled while
    /// this is Some).
    progress: Option<(u32, f64, String)>,
    /// The query whose drag preview is on screen: if the slider is released there, the full run
    /// starts without a preview first (the figures already show one).
    drag_look_of: Option<String>,
}

/// How often the page draws a run's progress at most. Workers report each stage (a drag's
/// preview of reward and rank posted 38 reports in ~100 ms), and each drawing is a render and a
/// paint on the main thread, which shares the 2 cores with the workers computing.
const PROGRESS_EVERY_MS: i32 = 100;

/// How many finished queries a slot remembers.
const FINISHED_REMEMBERED: usize = 32;

/// How long a change's finished preview waits for its full report before it is shown. A change
/// whose stages are cached gets its full report 15–40 ms after its preview (headless Chromium,
/// the 2-core machine of the README's live table); drawing the preview first cost a render round
/// of the whole page, for a figure replaced a moment later.
const PREVIEW_HOLD_MS: i32 = 60;

/// Only a preview that came this soon after its change is held. One that took longer computed
/// stages the cache did not have, and its full run needs them and more, so it will not come within
/// the hold: the preview is shown at once (on embeddings, a new power_iterations' preview took
/// ~190 ms, and the hold put its first figure 60 ms later).
const HOLD_IF_PREVIEW_UNDER_MS: f64 = 80.0;

impl Slot {
    fn terminate(&mut self) {
        for (worker, on_message, on_error) in self.workers.drain(..) {
            worker.terminate();
            // Terminating can happen inside one of these handlers: dropping it there would free a
            // running closure, so they are leaked (two small closures per terminated worker).
            on_message.forget();
            on_error.forget();
        }
        self.job = None;
        self.preview_job = None;
        self.paused = false;
        self.held.clear();
        self.held_preview = None;
        self.drag_look_of = None;
        // Fresh workers next time, with empty caches.
        self.finished.clear();
    }
}

/// How a job's parts reach the workers.
#[derive(Clone, Copy)]
enum Dispatch {
    /// Each worker drops what it is running and starts its part.
    Now,
    /// Behind a preview of `parts` parts: those workers queue their part behind their part of
    /// the preview, the others start theirs at once; unless the preview is to run `alone`: then
    /// every part waits until the preview has been drawn ([`release_after_paint`]). A page's
    /// opening run with a quick preview runs it alone: on the 2-core machine of the README's live
    /// table the capstone's preview took 650–670 ms alone in its worker and ~990 ms beside a part
    /// of the full run, and its figures 230–260 ms to appear once both workers ran the full run.
    /// A long preview (fast MIPS: 2–3 s) would delay the full run as much, and a change's preview
    /// mostly finds its stages cached: making fast MIPS's full run wait for its preview took
    /// ef_search's answers from 183–352 to 242–481 ms.
    AfterPreview { parts: u32, alone: bool },
    /// The page's opening run of a lesson that can show its first part's results so far without
    /// the others (see `Experiment::not_started`): part 0 starts at once; the others wait until
    /// its first results so far have been drawn ([`release_after_paint`]), or until it finishes.
    /// On the 2-core machine of the README's live table, REINFORCE's two parts each built the
    /// same world at once beside the page's first render, and its first curves waited for both.
    FirstPartAlone,
}

/// What a lesson gets from [`use_experiment`].
pub struct Experiment<R> {
    pub state: UseReducerHandle<RunState<R>>,
    /// Run for a query (queued if a run is under way: the latest request wins).
    pub run: Callback<String>,
    /// Show the preview of a query (a slider being dragged; queued like runs).
    pub preview: Callback<String>,
    pub cancel: Callback<()>,
    /// Pause (true) or resume (false) the run under way.
    pub pause: Callback<bool>,
}

#[hook]
pub fn use_experiment<R: DeserializeOwned + 'static>(lesson: &'static Lesson) -> Experiment<R> {
    let state = use_reducer(RunState::<R>::default);
    let slot = use_mut_ref(Slot::default);
    {
        let slot = slot.clone();
        use_effect_with((), move |_| move || slot.borrow_mut().terminate());
    }
    let run = {
        let (slot, dispatcher) = (slot.clone(), state.dispatcher());
        Callback::from(move |query: String| start::<R>(&slot, &dispatcher, lesson, Request::Full(query)))
    };
    let preview = {
        let (slot, dispatcher) = (slot.clone(), state.dispatcher());
        Callback::from(move |query: String| start::<R>(&slot, &dispatcher, lesson, Request::Preview(query)))
    };
    let cancel = {
        let (slot, dispatcher) = (slot.clone(), state.dispatcher());
        Callback::from(move |_| {
            let mut s = slot.borrow_mut();
            s.pending = None;
            s.terminate();
            dispatcher.dispatch(Action::Cancel);
        })
    };
    let pause = {
        let (slot, dispatcher) = (slot.clone(), state.dispatcher());
        Callback::from(move |paused: bool| {
            let mut s = slot.borrow_mut();
            if s.job.is_none() {
                return;
            }
            s.paused = paused;
            let message = pause_message(paused);
            for (worker, _, _) in &s.workers {
                let _ = worker.post_message(&message);
            }
            dispatcher.dispatch(Action::Pause(paused));
        })
    };
    Experiment { state, run, preview, cancel, pause }
}

/// Workers to use: one per core the browser reports (at least one).
pub fn cores() -> u32 {
    (crate::ui::dom::window().navigator().hardware_concurrency() as u32).clamp(1, 16)
}

fn start<R: DeserializeOwned + 'static>(
    slot_rc: &Rc<RefCell<Slot>>,
    dispatcher: &UseReducerDispatcher<RunState<R>>,
    lesson: &'static Lesson,
    request: Request,
) {
    let mut slot = slot_rc.borrow_mut();
    if slot.job.is_some() {
        if !slot.paused {
            slot.pending = Some(request);
            return;
        }
        // Waiting behind a paused run would wait forever: drop it (fresh workers).
        slot.terminate();
    }
    // Whatever this request is, the drag's preview on screen is of use to it only below.
    let drag_look_of = slot.drag_look_of.take();
    slot.paused = false;
    // This request supersedes anything queued.
    slot.pending = None;
    slot.next_id += 1;
    let id = slot.next_id;
    dispatcher.dispatch(Action::Start { id });
    let (query, then_full) = match request {
        Request::Full(query) => {
            // Computed in the background while the reader was on the previous lesson: shown at once.
            if let Some(json) = crate::ui::precompute::ready(lesson.id, &query) {
                if let Ok(report) = serde_json::from_str::<R>(&json) {
                    crate::ui::dom::publish_report(lesson.id, &json);
                    slot.shown = true;
                    dispatcher.dispatch(Action::Done { id, report: Rc::new(report), query });
                    return;
                }
            }
            (query, true)
        }
        Request::Preview(query) => (query, false),
    };
    // The reader is computing here: the cores are theirs.
    crate::ui::precompute::stop();
    slot.preview_job = None;
    slot.held.clear();
    slot.held_preview = None;
    // The page's opening run shows the lesson's first look; a change, its preview; a drag, its
    // drag preview; a query these workers have finished before (a knob moved back), or a release
    // where the drag's preview is on screen, none.
    let released_on_look = drag_look_of.is_some_and(|q| q == query);
    let look = if slot.finished.contains(&query) || (then_full && released_on_look) {
        None
    } else if !then_full {
        (lesson.drag_preview)(&query)
    } else if !slot.shown {
        (lesson.first_look)(&query)
    } else {
        (lesson.preview)(&query)
    };
    if !then_full {
        // A drag: its drag preview; or, with none cheaper (or a value these workers finished),
        // the full run shown as the drag's preview (later stages are cached anyway).
        let (posted, note) = look.unwrap_or_else(|| (query.clone(), String::new()));
        let preview = PreviewJob::new(query, note, id, true);
        slot.job = launch(&mut slot, slot_rc, dispatcher, lesson, id, posted, Some(preview), Dispatch::Now, cores());
        return;
    }
    match look {
        Some((cheaper, note)) => {
            slot.next_id += 1;
            let preview_id = slot.next_id;
            let preview = PreviewJob::new(query.clone(), note, id, false);
            let (alone, workers) = if slot.shown { (false, cores()) } else { opening_look(lesson, &cheaper, cores()) };
            let parts = (lesson.parts)(&cheaper, workers);
            slot.preview_job = launch(&mut slot, slot_rc, dispatcher, lesson, preview_id, cheaper, Some(preview), Dispatch::Now, workers);
            slot.job = launch(&mut slot, slot_rc, dispatcher, lesson, id, query, None, Dispatch::AfterPreview { parts, alone }, cores());
        }
        None => {
            let dispatch = if !slot.shown && opens_first_part_alone(lesson, &query) { Dispatch::FirstPartAlone } else { Dispatch::Now };
            slot.job = launch(&mut slot, slot_rc, dispatcher, lesson, id, query, None, dispatch, cores());
        }
    }
}

/// Runs `query` as job `id` in the slot's first `workers` workers (at most), one part each,
/// dispatched as `dispatch` says.
#[allow(clippy::too_many_arguments)]
fn launch<R: DeserializeOwned + 'static>(
    slot: &mut Slot,
    slot_rc: &Rc<RefCell<Slot>>,
    dispatcher: &UseReducerDispatcher<RunState<R>>,
    lesson: &'static Lesson,
    id: u32,
    query: String,
    preview: Option<PreviewJob>,
    dispatch: Dispatch,
    workers: u32,
) -> Option<Job> {
    let parts = (lesson.parts)(&query, workers);
    while (slot.workers.len() as u32) < parts {
        let index = slot.workers.len() as u32;
        match spawn::<R>(slot_rc.clone(), dispatcher.clone(), lesson, index) {
            Ok(w) => slot.workers.push(w),
            Err(message) => {
                dispatcher.dispatch(Action::Failed { id, message });
                return None;
            }
        }
    }
    let job = Job {
        id,
        query: query.clone(),
        preview,
        partials: vec![None; parts as usize],
        lives: vec![None; parts as usize],
        fractions: vec![0.0; parts as usize],
        first_part_alone: matches!(dispatch, Dispatch::FirstPartAlone),
    };
    // A preview (the full run follows it, or follows the release of the dragged slider) may
    // leave out what is costly and not cached yet. Not the full query itself shown as a drag's
    // preview (a knob dragged back to a value it had, or a lesson without a cheaper look):
    // a preview's parts may share the work out differently (reward and rank's place no
    // timing), and a finished query's retrained there what the full run's workers had cached
    // (1.1 s natively instead of 2 ms); an unfinished one's, what the release's full run then
    // needs where the full run places it.
    let cheaper = job.preview.as_ref().is_some_and(|p| p.shown.of != query);
    for (index, (worker, _, _)) in slot.workers.iter().take(parts as usize).enumerate() {
        let message = part_message(id, &Post { lesson: lesson.id, query: query.clone(), part: index as u32, parts, cheaper });
        match dispatch {
            Dispatch::AfterPreview { alone: true, .. } => slot.held.push((index, message)),
            Dispatch::FirstPartAlone if index > 0 => slot.held.push((index, message)),
            Dispatch::AfterPreview { parts, alone: false } => {
                set_field(&message, "queue", JsValue::from_bool((index as u32) < parts));
                let _ = worker.post_message(&message);
            }
            Dispatch::Now | Dispatch::FirstPartAlone => {
                let _ = worker.post_message(&message);
            }
        }
    }
    Some(job)
}

/// One part of a run as posted to its worker (www/worker.js reads these fields).
#[derive(Clone, Debug, PartialEq)]
struct Post {
    lesson: &'static str,
    query: String,
    part: u32,
    parts: u32,
    /// A cheaper look than the page's query (it may leave out what is costly and not cached).
    cheaper: bool,
}

fn part_message(id: u32, post: &Post) -> js_sys::Object {
    let message = js_sys::Object::new();
    set_field(&message, "id", JsValue::from(id));
    set_field(&message, "lesson", JsValue::from_str(post.lesson));
    set_field(&message, "query", JsValue::from_str(&post.query));
    set_field(&message, "part", JsValue::from(post.part));
    set_field(&message, "parts", JsValue::from(post.parts));
    set_field(&message, "preview", JsValue::from_bool(post.cheaper));
    message
}

fn set_field(message: &js_sys::Object, key: &str, value: JsValue) {
    let _ = js_sys::Reflect::set(message, &JsValue::from_str(key), &value);
}

/// How a page's opening look at a lesson runs: whether alone, the full run's parts held until it
/// has been drawn (see [`Dispatch::AfterPreview`]), where it is quick on the workers it gets; and
/// on how many workers (one where the lesson's look repeats costly stages in each part, see
/// `Experiment::FIRST_LOOK_IN_ONE_PART`, and runs alone).
fn opening_look(lesson: &Lesson, look: &str, cores: u32) -> (bool, u32) {
    let estimate = (lesson.estimate)(look).ok();
    let quick_on = |workers| estimate.as_ref().is_some_and(|e| e.page_seconds(workers) <= crate::core::budget::QUICK_PREVIEW_SECONDS);
    if lesson.first_look_in_one_part && quick_on(1) {
        (true, 1)
    } else {
        (quick_on(cores), cores)
    }
}

/// Whether a page's opening run without a look starts with its first part alone (see
/// [`Dispatch::FirstPartAlone`]).
fn opens_first_part_alone(lesson: &Lesson, query: &str) -> bool {
    (lesson.steps)(query) && (lesson.merges_without_parts)(query)
}

/// The parts a page opened on `query` posts at once, as [`start`] and [`launch`] post them on a
/// fresh page (part i to worker i): the first look's parts (see [`opening_look`]), and the full
/// run's parts in workers the look does not use unless the look runs alone; or, without a look,
/// the full run's parts (only the first where it opens alone). Parts queued or held behind these
/// are not among them.
fn opening_posts(lesson: &'static Lesson, query: &str, cores: u32) -> Vec<Post> {
    let post = |query: &str, part, parts, cheaper| Post { lesson: lesson.id, query: query.to_string(), part, parts, cheaper };
    let parts = (lesson.parts)(query, cores);
    match (lesson.first_look)(query) {
        Some((look, _)) => {
            let (alone, workers) = opening_look(lesson, &look, cores);
            let look_parts = (lesson.parts)(&look, workers);
            let mut posts: Vec<Post> = (0..look_parts).map(|i| post(&look, i, look_parts, look != query)).collect();
            if !alone {
                posts.extend((look_parts..parts).map(|i| post(query, i, parts, false)));
            }
            posts
        }
        None => (0..if opens_first_part_alone(lesson, query) { 1 } else { parts }).map(|i| post(query, i, parts, false)).collect(),
    }
}

/// The part of the page's opening run that worker `worker` of the page's first `cores` gets (see
/// [`opening_posts`]) for the address `hash` (without its `#`), as a message of job 0; null if
/// none, or where the page would not run at once. www/main.js asks each worker it starts while
/// the page loads to start its part as soon as it has the wasm (the planning, which estimates the
/// run, is then the worker's, not the main thread's: 10–30 ms of fresh wasm); when the app posts the
/// same part, the worker adopts the run under way (www/worker.js). The run has a head start of the
/// page's instantiation and first render. Runs in a worker: nothing here may need `window`.
#[wasm_bindgen]
pub fn opening_part(hash: &str, cores: u32, worker: u32) -> JsValue {
    let route = crate::ui::app::Route::parse(hash);
    let Some(lesson) = crate::lessons::find(&route.lesson) else { return JsValue::NULL };
    let query = (lesson.canonical)(&route.query).0;
    if crate::ui::lesson_page::verdict_on(lesson, &query, cores) != crate::core::budget::Verdict::Run {
        return JsValue::NULL;
    }
    opening_posts(lesson, &query, cores).into_iter().find(|p| p.part == worker).map_or(JsValue::NULL, |p| part_message(0, &p).into())
}

/// Posts the held parts of run `id` once its preview has been drawn: after the next frame, or
/// after 200 ms where no frame comes (a tab in the background draws none).
fn release_after_paint(slot_rc: &Rc<RefCell<Slot>>, id: u32) {
    if slot_rc.borrow().held.is_empty() {
        return;
    }
    let post = {
        let slot_rc = slot_rc.clone();
        move || {
            let mut slot = slot_rc.borrow_mut();
            if slot.job.as_ref().is_some_and(|j| j.id == id) {
                post_held(&mut slot);
            }
        }
    };
    let window = crate::ui::dom::window();
    let after_frame = {
        let post = post.clone();
        Closure::once_into_js(move || {
            // In the frame's callback the page has not painted yet: one task later it has.
            crate::ui::dom::after(0, post);
        })
    };
    let _ = window.request_animation_frame(after_frame.unchecked_ref());
    crate::ui::dom::after(200, post);
}

/// Shows the finished preview of run `id` after [`PREVIEW_HOLD_MS`], unless its full report (or
/// its results so far, or another run) came first.
fn hold_preview(slot_rc: &Rc<RefCell<Slot>>, id: u32, show: Box<dyn FnOnce()>) {
    slot_rc.borrow_mut().held_preview = Some((id, show));
    let slot_rc = slot_rc.clone();
    crate::ui::dom::after(PREVIEW_HOLD_MS, move || {
        // Only this run's preview: a later run's may be held by now, with a timer of its own.
        let show = slot_rc.borrow_mut().held_preview.take_if(|(held, _)| *held == id);
        if let Some((_, show)) = show {
            show();
        }
    });
}

/// What one message from worker `index` means for the current job.
enum Outcome {
    /// The job's progress, and whether it is a preview.
    Progress(f64, bool),
    /// Every part has results so far (or its final ones, or has not started where the lesson can
    /// do without it): merged, the query, and whether the run is a dragged slider's.
    Live(Result<(String, String, bool), String>),
    /// All parts are in: the merged report's JSON, the query, and what preview it was.
    Finished(Result<(String, String, Option<PreviewJob>), String>),
    Waiting,
}

fn on_worker_message(slot: &mut Slot, lesson: &'static Lesson, index: usize, id: u32, data: &JsValue) -> Outcome {
    let get = |k: &str| js_sys::Reflect::get(data, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
    if let Some(panic) = get("panic").as_string() {
        // The worker's wasm instance is dead after a panic: start fresh workers next time.
        slot.terminate();
        return Outcome::Finished(Err(format!("the computation crashed: {panic}")));
    }
    let in_preview = slot.preview_job.as_ref().is_some_and(|j| j.id == id);
    // A full run asked for behind this one: a dragged slider was released.
    let released = matches!(slot.pending, Some(Request::Full(_)));
    let job = if in_preview { slot.preview_job.as_mut() } else { slot.job.as_mut().filter(|j| j.id == id) };
    let Some(job) = job else {
        return Outcome::Waiting;
    };
    if in_preview && get("progress").as_f64().is_some() {
        return Outcome::Waiting; // the full run's progress is the one shown
    }
    if let Some(fraction) = get("progress").as_f64() {
        // Never backwards: a lesson's stages report within their own shares, and a stage found in
        // the cache, or one that reports its start after a later one, would move the bar back.
        job.fractions[index] = job.fractions[index].max(fraction);
        return Outcome::Progress(job.fractions.iter().sum::<f64>() / job.fractions.len() as f64, job.preview.is_some());
    }
    if let Some(json) = get("live").as_string() {
        job.lives[index] = Some(json);
        return results_so_far(lesson, job, released);
    }
    if let Some(json) = get("result").as_string() {
        job.partials[index] = Some(json);
        if !job.partials.iter().all(Option::is_some) {
            if in_preview {
                return Outcome::Waiting;
            }
            // This part's final results beside the others' so far (a lesson in slices), then the
            // parts it held back start (it finished before it had posted results so far).
            let outcome = results_so_far(lesson, job, released);
            post_held(slot);
            return outcome;
        }
        let job = if in_preview {
            slot.preview_job.take().expect("a preview job")
        } else {
            // A preview still out (it had more parts than the run) is of no use any more.
            slot.preview_job = None;
            slot.job.take().expect("a job")
        };
        let partials: Vec<String> = job.partials.into_iter().flatten().collect();
        return Outcome::Finished((lesson.merge)(&job.query, &partials).map(|json| (json, job.query, job.preview)));
    }
    let message = get("error").as_string().unwrap_or_else(|| "unknown worker message".into());
    // The job's other parts are still computing for nothing: stop them (fresh workers next time).
    slot.terminate();
    Outcome::Finished(Err(message))
}

/// The results so far of `job`'s parts, merged. A part with nothing yet counts as not started in
/// a run opened with its first part alone (where the lesson can merge without it); in any other
/// run there is nothing to show until every part has posted (the figures keep the last report).
fn results_so_far(lesson: &'static Lesson, job: &Job, released: bool) -> Outcome {
    let latest: Vec<Option<&str>> = job.partials.iter().zip(&job.lives).map(|(done, live)| done.as_deref().or(live.as_deref())).collect();
    if !job.first_part_alone && latest.iter().any(Option::is_none) {
        return Outcome::Waiting;
    }
    match (lesson.merge_so_far)(&job.query, &latest) {
        Some(merged) => {
            let dragging = !released && job.preview.as_ref().is_some_and(|p| p.last);
            Outcome::Live(merged.map(|json| (json, job.query.clone(), dragging)))
        }
        None => Outcome::Waiting,
    }
}

/// Keeps run `id`'s latest progress, drawn within [`PROGRESS_EVERY_MS`] if that run is still
/// under way then (a run that finished meanwhile would be marked running again).
fn draw_progress_later<R: 'static>(
    slot_rc: &Rc<RefCell<Slot>>,
    dispatcher: &UseReducerDispatcher<RunState<R>>,
    id: u32,
    fraction: f64,
    stage: String,
) {
    if slot_rc.borrow_mut().progress.replace((id, fraction, stage)).is_some() {
        return; // a drawing is scheduled: it takes this one
    }
    let (slot_rc, dispatcher) = (slot_rc.clone(), dispatcher.clone());
    crate::ui::dom::after(PROGRESS_EVERY_MS, move || {
        let mut slot = slot_rc.borrow_mut();
        let Some((id, fraction, stage)) = slot.progress.take() else { return };
        if slot.job.as_ref().is_some_and(|j| j.id == id) {
            drop(slot);
            dispatcher.dispatch(Action::Progress { id, fraction, stage });
        }
    });
}

/// The message that pauses (true) or resumes (false) a worker's run.
fn pause_message(paused: bool) -> js_sys::Object {
    let message = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&message, &JsValue::from_str("pause"), &JsValue::from_bool(paused));
    message
}

/// Posts the parts held back (see [`Dispatch`]), paused if the run was paused meanwhile.
fn post_held(slot: &mut Slot) {
    for (index, message) in std::mem::take(&mut slot.held) {
        if let Some((worker, _, _)) = slot.workers.get(index) {
            let _ = worker.post_message(&message);
            if slot.paused {
                let _ = worker.post_message(&pause_message(true));
            }
        }
    }
}

/// A worker running www/worker.js: one of those www/main.js started while the page loaded (already
/// given the compiled wasm), or a new one, started by www/main.js so that it gets the compiled
/// wasm too (or, without main.js, one that loads the wasm itself).
pub fn new_worker() -> Result<Worker, String> {
    let window = crate::ui::dom::window();
    let spares =
        js_sys::Reflect::get(&window, &JsValue::from_str("__rorecSpareWorkers")).ok().and_then(|v| v.dyn_into::<js_sys::Array>().ok());
    if let Some(worker) = spares.filter(|s| s.length() > 0).and_then(|s| s.shift().dyn_into::<Worker>().ok()) {
        return Ok(worker);
    }
    let start =
        js_sys::Reflect::get(&window, &JsValue::from_str("__rorecStartWorker")).ok().and_then(|v| v.dyn_into::<js_sys::Function>().ok());
    if let Some(worker) = start.and_then(|f| f.call0(&JsValue::NULL).ok()).and_then(|w| w.dyn_into::<Worker>().ok()) {
        return Ok(worker);
    }
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    Worker::new_with_options("./worker.js", &options).map_err(|e| format!("cannot start a worker: {e:?}"))
}

fn spawn<R: DeserializeOwned + 'static>(
    slot_rc: Rc<RefCell<Slot>>,
    dispatcher: UseReducerDispatcher<RunState<R>>,
    lesson: &'static Lesson,
    index: u32,
) -> Result<LiveWorker, String> {
    let worker = new_worker()?;
    let on_message = {
        let (slot_rc, dispatcher) = (slot_rc.clone(), dispatcher.clone());
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            let id = js_sys::Reflect::get(&data, &JsValue::from_str("id")).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) as u32;
            let current = slot_rc.borrow().job.as_ref().map(|j| j.id).unwrap_or(id);
            let outcome = on_worker_message(&mut slot_rc.borrow_mut(), lesson, index as usize, id, &data);
            // The full run's report, its results so far or its failure replace its preview, shown
            // or held: a held one is of no use any more.
            if id == current && matches!(outcome, Outcome::Live(_) | Outcome::Finished(_)) {
                slot_rc.borrow_mut().held_preview = None;
            }
            match outcome {
                Outcome::Waiting => return,
                Outcome::Live(Ok((json, query, dragging))) => {
                    if let Ok(report) = serde_json::from_str::<R>(&json) {
                        dispatcher.dispatch(Action::Live { id, report: Rc::new(report), query, dragging });
                    }
                    // The parts held behind the first one's results so far (see Dispatch).
                    release_after_paint(&slot_rc, id);
                    return;
                }
                // A live view that cannot be merged is skipped: the final merge will report it.
                Outcome::Live(Err(_)) => {
                    release_after_paint(&slot_rc, id);
                    return;
                }
                Outcome::Progress(fraction, preview) => {
                    let stage =
                        js_sys::Reflect::get(&data, &JsValue::from_str("stage")).ok().and_then(|v| v.as_string()).unwrap_or_default();
                    let stage = if preview { format!("preview: {stage}") } else { stage };
                    draw_progress_later(&slot_rc, &dispatcher, id, fraction, stage);
                    return;
                }
                Outcome::Finished(Ok((json, query, preview))) => match (serde_json::from_str::<R>(&json), preview) {
                    (Ok(report), None) => {
                        crate::ui::dom::publish_report(lesson.id, &json);
                        let mut slot = slot_rc.borrow_mut();
                        slot.shown = true;
                        slot.finished.retain(|q| *q != query);
                        slot.finished.push(query.clone());
                        let excess = slot.finished.len().saturating_sub(FINISHED_REMEMBERED);
                        slot.finished.drain(..excess);
                        drop(slot);
                        dispatcher.dispatch(Action::Done { id, report: Rc::new(report), query });
                    }
                    (Ok(report), Some(preview)) => {
                        let (id, last, posted_at) = (preview.shows_for, preview.last, preview.posted_at);
                        let shown_of = last.then(|| preview.shown.of.clone());
                        let show = {
                            let dispatcher = dispatcher.clone();
                            move || dispatcher.dispatch(Action::Preview { id, report: Rc::new(report), query, shown: preview.shown, last })
                        };
                        let answers_a_change = std::mem::replace(&mut slot_rc.borrow_mut().shown, true);
                        if let Some(of) = shown_of {
                            slot_rc.borrow_mut().drag_look_of = Some(of);
                            show();
                        } else if answers_a_change {
                            // The full run is under way behind it: a preview from the cache is
                            // shown only if the full run takes a while; one that computed, at once.
                            let took = js_sys::Date::now() - posted_at;
                            if took < HOLD_IF_PREVIEW_UNDER_MS {
                                hold_preview(&slot_rc, id, Box::new(show));
                            } else {
                                show();
                            }
                            return;
                        } else {
                            show();
                            // The full run, in the same workers (parts held for this: see Dispatch).
                            release_after_paint(&slot_rc, id);
                            return;
                        }
                    }
                    (Err(e), _) => dispatcher.dispatch(Action::Failed { id, message: format!("unreadable report: {e}") }),
                },
                Outcome::Finished(Err(message)) => dispatcher.dispatch(Action::Failed { id: current, message }),
            }
            let pending = slot_rc.borrow_mut().pending.take();
            if let Some(request) = pending {
                start::<R>(&slot_rc, &dispatcher, lesson, request);
            }
        })
    };
    let on_error = {
        let (slot_rc, dispatcher) = (slot_rc.clone(), dispatcher.clone());
        Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            let text = js_sys::Reflect::get(&event, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_else(|| "the worker could not load".into());
            let id = slot_rc.borrow().job.as_ref().map(|j| j.id).unwrap_or(0);
            dispatcher.dispatch(Action::Failed { id, message: format!("worker error: {text}") });
            let pending = {
                let mut slot = slot_rc.borrow_mut();
                slot.terminate();
                slot.pending.take()
            };
            if let Some(request) = pending {
                start::<R>(&slot_rc, &dispatcher, lesson, request);
            }
        })
    };
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok((worker, on_message, on_error))
}

/// Inside the worker: tell the page that the computation panicked.
pub fn post_panic(message: &str) {
    if let Ok(scope) = js_sys::global().dyn_into::<web_sys::DedicatedWorkerGlobalScope>() {
        let data = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&data, &JsValue::from_str("panic"), &JsValue::from_str(message));
        let _ = scope.post_message(&data);
    }
}
