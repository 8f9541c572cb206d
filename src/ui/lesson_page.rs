//! What every lesson page shares: parameters from the URL, the experiment run in the worker, the
//! shared widgets (`{{params}}`, `{{controls …}}`, `{{run}}`), and the prose with its sections.

use crate::core::budget::{self, Verdict};
use crate::core::experiment::Experiment as CoreExperiment;
use crate::core::params::{from_query, matching_preset, preset_params, to_query, Issue, LessonParams};
use crate::lesson_text::{LessonText, Part, Reveal, Slide};
use crate::lessons::Lesson;
use crate::ui::plot::PlotContext;
use crate::ui::widgets::{url_issues_notice, Gate, ParamPanel, PresetBar, RunControls};
use crate::ui::worker::{use_experiment, Experiment, RunState, RunStatus};
use std::rc::Rc;
use yew::prelude::*;

/// A registered lesson, handed to its page by the app (pages never look the registry up).
#[derive(Clone, Copy)]
pub struct LessonRef(pub &'static Lesson);

impl PartialEq for LessonRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl std::ops::Deref for LessonRef {
    type Target = Lesson;
    fn deref(&self) -> &Lesson {
        self.0
    }
}

#[derive(Properties, Clone, PartialEq)]
pub struct LessonProps {
    /// The lesson: its text, its experiment's entry points (for the worker).
    pub lesson: LessonRef,
    /// The query part of the URL hash (`a=1&b=2`).
    pub query: AttrValue,
    /// Presenter mode: the one slide to show.
    pub slide: Option<Slide>,
    /// Parameters changed: the app writes the new query into the URL.
    pub on_query: Callback<String>,
    /// The lesson after this one: its default report is computed in the background once this
    /// lesson's run has finished.
    #[prop_or_default]
    pub next: Option<LessonRef>,
}

/// A lesson's live state, handed to its UI module.
pub struct LessonState<E: CoreExperiment> {
    pub params: E::Params,
    pub url_issues: Rc<Vec<Issue>>,
    pub run: UseReducerHandle<RunState<E::Report>>,
    /// The latest report, if any.
    pub report: Option<Rc<E::Report>>,
    experiment: Experiment<E::Report>,
    canonical: String,
    /// The lesson runs in slices (pause is offered).
    steps: bool,
    /// Whether the shown parameters run at once, after asking, or not at all (their estimate).
    verdict: Rc<Verdict>,
    auto_run: UseStateHandle<bool>,
    on_query: Callback<String>,
    /// How many of the lesson's parts (prose and widgets, in reading order) are in the page: at
    /// first only the prose before its first widget, so that the first render is a short task;
    /// then a widget or two more per task (see [`use_lesson`]).
    parts_shown: usize,
}

/// The number of the lesson's parts in the page: it only grows (a late timer cannot take one away).
#[derive(PartialEq)]
struct PartsShown(usize);

impl Reducible for PartsShown {
    type Action = usize;
    fn reduce(self: Rc<Self>, at_least: usize) -> Rc<Self> {
        if at_least > self.0 {
            Rc::new(PartsShown(at_least))
        } else {
            self
        }
    }
}

/// The rest of a lesson's text appears with its first report, or after this long without one.
const REVEAL_LATEST_MS: i32 = 1500;

#[hook]
pub fn use_lesson<E: CoreExperiment + 'static>(props: &LessonProps) -> LessonState<E> {
    let parsed = use_memo(props.query.clone(), |q| {
        let (params, issues) = from_query::<E::Params>(q);
        ((*params).clone(), Rc::new(issues))
    });
    let (params, url_issues) = (parsed.0.clone(), parsed.1.clone());
    let canonical = to_query(&params);
    let lesson = props.lesson.0;
    let experiment = use_experiment::<E::Report>(lesson);
    // Whether the lesson runs in slices does not depend on the values: asked once per page.
    let steps = *use_memo(lesson.id, |_| (lesson.steps)(""));
    let auto_run = use_state(|| true);
    let reveal = use_memo(lesson.id, |_| Reveal::of(lesson.text()));
    let parts_shown = use_reducer_eq(|| PartsShown(reveal.first()));
    {
        // The text up to the first figure in growing steps, the rest once the first report is on
        // screen (or after REVEAL_LATEST_MS), a few widgets per task (see `Reveal`): laying out and
        // painting the whole lesson while the first run computes took the main thread ~0.5 s of the
        // capstone's first second, beside the workers on 2 cores, and laying out all its other
        // sections in one task took 54–70 ms.
        let (shown, reveal) = (parts_shown.clone(), reveal.clone());
        let has_report = experiment.state.report.is_some();
        // A slide shows its own part of the text, whatever has been revealed.
        let presenting = props.slide.is_some();
        use_effect_with((lesson.id, has_report, parts_shown.0, presenting), move |&(_, has_report, count, presenting)| {
            if count < reveal.all() && !presenting {
                let delay = if reveal.waits_for_report(count, has_report) { REVEAL_LATEST_MS } else { 0 };
                let next = reveal.next(count, has_report);
                crate::ui::dom::after(delay, move || shown.dispatch(next));
            }
        });
    }
    // After a render that changes what is laid out (a report arrived, the last section appeared,
    // another slide): the boxes that now scroll. Not on every progress tick or drag preview.
    let all_shown = parts_shown.0 >= reveal.all();
    let layout = (experiment.state.report.as_ref().map(|r| Rc::as_ptr(r) as usize), all_shown, props.slide.clone());
    use_effect_with(layout, |(_, all_shown, slide)| {
        // Measured at the next frame, whose layout the measuring then is (from a timer it forced
        // a layout of its own: 87 ms in a task on the capstone's opening, the text still coming).
        if *all_shown || slide.is_some() {
            crate::ui::dom::before_next_frame(crate::ui::dom::mark_scrollable_regions);
        }
    });
    // Estimated before anything runs: long runs start only when asked, too long ones not at all.
    let verdict = use_memo(canonical.clone(), |query| page_verdict(lesson, query));
    {
        let (run, auto, runs_at_once) = (experiment.run.clone(), *auto_run, *verdict == Verdict::Run);
        use_effect_with(canonical.clone(), move |query| {
            if auto && runs_at_once {
                run.emit(query.clone());
            }
        });
    }
    {
        // Settled: get ready in the background what the reader is likely to ask for next — when
        // presenting, the presets this slide or the next one offers; then the next lesson.
        let (done, next, slide) = (experiment.state.status == RunStatus::Done, props.next, props.slide.clone());
        let this = props.lesson;
        use_effect_with((done, next, slide), move |(done, next, slide)| {
            if !*done {
                return;
            }
            let mut wanted = Vec::new();
            if let Some(slide) = slide {
                let text = this.text();
                let slides = text.slides();
                let index = slides.iter().position(|s| s == slide).unwrap_or(0);
                if slides[index..].iter().take(2).any(|s| offers_presets(text, s)) {
                    // Not the presets that would ask before they start (a long run is the
                    // reader's choice, and it would hold a core while the room watches).
                    wanted.extend(
                        (this.presets)()
                            .iter()
                            .filter_map(|p| (this.strict)(p.query).ok().map(|query| (this.0, query)))
                            .filter(|(_, query)| page_verdict(this.0, query) == Verdict::Run),
                    );
                }
            }
            if let Some(next) = next {
                wanted.push((next.0, (next.canonical)("").0));
            }
            if !wanted.is_empty() {
                crate::ui::precompute::prepare_all(wanted);
            }
        });
    }
    LessonState {
        params,
        url_issues,
        run: experiment.state.clone(),
        report: experiment.state.report.clone(),
        experiment,
        canonical,
        steps,
        verdict,
        auto_run,
        on_query: props.on_query.clone(),
        parts_shown: parts_shown.0,
    }
}

impl<E: CoreExperiment + 'static> LessonState<E> {
    /// `{{params}}` (all controls) and `{{controls a b}}` (some), and `{{run}}`.
    fn shared_widget(&self, name: &str, args: &[&str]) -> Option<Html> {
        let on_change = self.on_query.reform(|p: E::Params| to_query(&p));
        match name {
            "params" | "controls" => {
                let only = (name == "controls").then(|| args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                let id_prefix: AttrValue = if name == "params" { "param".into() } else { format!("ctl-{}", args.join("-")).into() };
                let on_drag = Some(self.experiment.preview.reform(|p: E::Params| to_query(&p)));
                // On a phone the controls fold into a drawer beside their figure (open on a wide
                // screen, where the summary line is hidden).
                let summary = if name == "params" { "Parameters of this lesson" } else { "Controls for this figure" };
                Some(html! {
                    <details class="drawer" open={!crate::ui::dom::is_narrow()}>
                        <summary>{ summary }</summary>
                        <ParamPanel<E::Params> params={self.params.clone()} {on_change} {only} {id_prefix} url_issues={self.url_issues.clone()} {on_drag} />
                    </details>
                })
            }
            "presets" => {
                let current = matching_preset::<E::Params>(&self.params).map(|p| p.name);
                let on_pick = self.on_query.reform(|name: &'static str| {
                    let preset = <E::Params as LessonParams>::presets().iter().find(|p| p.name == name);
                    // A preset is checked by a test; should one fail here, the defaults stand in.
                    let params = preset.and_then(|p| preset_params::<E::Params>(p).ok()).map_or_else(E::Params::default, |c| (*c).clone());
                    to_query(&params)
                });
                Some(html! { <PresetBar presets={<E::Params as LessonParams>::presets()} {current} {on_pick} /> })
            }
            "run" => {
                let canonical = self.canonical.clone();
                let on_run = self.experiment.run.reform(move |_| canonical.clone());
                let on_reset = self.on_query.reform(|_| to_query(&<E::Params as Default>::default()));
                let auto_run = self.auto_run.clone();
                let on_auto_run = Callback::from(move |on: bool| auto_run.set(on));
                let on_pause = self.steps.then(|| self.experiment.pause.clone());
                // The estimate speaks only while the shown parameters have no result yet.
                let gate = match &*self.verdict {
                    Verdict::Ask { message, .. } if self.is_gated() => Some(Gate::Ask(message.clone().into())),
                    Verdict::Refuse { message, .. } => Some(Gate::Refuse(message.clone().into())),
                    _ => None,
                };
                Some(html! {
                    <RunControls status={self.run.status.clone()} elapsed_ms={self.run.elapsed_ms}
                        {on_run} on_cancel={self.experiment.cancel.clone()} {on_reset} {on_pause} paused={self.run.paused}
                        auto_run={*self.auto_run} {on_auto_run} {gate} preview_note={self.preview_note()}
                        dragging={self.run.dragging} />
                })
            }
            _ => None,
        }
    }

    /// The report is from other parameters than those shown (a run is under way or was cancelled)
    /// and is not a preview of them.
    pub fn is_stale(&self) -> bool {
        self.run.report_query != self.canonical && !self.is_preview()
    }

    /// The report is a preview: of the parameters shown (the full result is under way), or of
    /// those a slider is being dragged to.
    pub fn is_preview(&self) -> bool {
        self.run.preview.is_some()
    }

    /// The shown parameters wait for Start, or are refused: nothing computes for them.
    fn is_gated(&self) -> bool {
        !matches!(*self.verdict, Verdict::Run) && self.is_stale() && !matches!(self.run.status, RunStatus::Running { .. })
    }

    fn preview_note(&self) -> Option<AttrValue> {
        self.run.preview.as_ref().filter(|p| !p.note.is_empty()).map(|p| AttrValue::from(p.note.clone()))
    }

    /// Render the lesson's text with its widgets; `widget` draws the lesson's own widgets.
    pub fn render(&self, text: &LessonText, slide: Option<&Slide>, widget: impl Fn(&str, &[&str]) -> Html) -> Html {
        let render_part = |part: &Part| match part {
            Part::Html(h) => Html::from_html_unchecked(AttrValue::from(*h)),
            Part::Widget(spec) => {
                let mut words = spec.split_whitespace();
                let name = words.next().unwrap_or_default();
                let args: Vec<&str> = words.collect();
                let inner = self.shared_widget(name, &args).unwrap_or_else(|| widget(name, &args));
                let state = if self.is_stale() { Some("stale") } else { self.is_preview().then_some("preview") };
                html! { <div class={classes!("widget", state)} data-widget={name.to_string()}>{ inner }</div> }
            }
        };
        let shown = if slide.is_some() { usize::MAX } else { self.parts_shown };
        let sections = text
            .sections
            .iter()
            .zip(Reveal::in_sections(text, shown))
            .enumerate()
            .filter(|(i, (_, in_page))| slide.is_none_or(|s| s.section == *i) && *in_page > 0);
        html! {
            // Plots learn the parameters of the report they show (a pinned run's legend says
            // what changed since).
            <ContextProvider<PlotContext> context={PlotContext { query: self.run.report_query.clone().into() }}>
                <article class={classes!("lesson", self.is_gated().then_some("gated"))}>
                    if slide.is_none_or(|s| s.section == 0 && s.part == 0) { <h1>{ text.title }</h1> }
                    { url_issues_notice(&self.url_issues) }
                    // One list of its own, keyed by section (`for` would put the sections among
                    // the article's unkeyed children, which Yew pairs from the end).
                    { sections.map(|(i, (s, in_page))| html! {
                        <section key={i} class="lesson-section" data-section={i.to_string()} aria-label={s.heading}>
                            // A section's later slides repeat its heading, small.
                            if let Some(slide) = slide.filter(|slide| slide.part > 0) {
                                <p class="slide-continued">{ format!("{} ({}/{})", s.heading, slide.part + 1, slide.of) }</p>
                            }
                            { match slide {
                                // A slide: its prose beside its figure, as on a 16:9 slide.
                                Some(slide) => slide_columns(&s.parts[slide.parts.clone()], &render_part),
                                // Keyed by position: Yew pairs an unkeyed list's children from its
                                // end, so each part added to the page would patch every part before
                                // it into its neighbour (widgets rebuilt, a plot's canvas moved to
                                // the next plot, the formulas parsed again).
                                None => s.parts[..in_page]
                                    .iter()
                                    .enumerate()
                                    .map(|(j, part)| Html::from(yew::virtual_dom::VList::with_children(vec![render_part(part)], Some(j.into()))))
                                    .collect::<Html>(),
                            } }
                        </section>
                    }).collect::<Html>() }
                </article>
            </ContextProvider<PlotContext>>
        }
    }
}

/// A slide's prose in one column and its widgets in the other (one column when it has only one
/// kind).
fn slide_columns(parts: &[Part], render_part: &dyn Fn(&Part) -> Html) -> Html {
    let (prose, widgets): (Vec<&Part>, Vec<&Part>) = parts.iter().partition(|p| matches!(p, Part::Html(_)));
    if prose.is_empty() || widgets.is_empty() {
        return parts.iter().map(render_part).collect();
    }
    html! {
        <div class="slide-columns">
            <div class="slide-text">{ for prose.into_iter().map(render_part) }</div>
            <div class="slide-figure">{ for widgets.into_iter().map(render_part) }</div>
        </div>
    }
}

/// Whether this page runs `query` at once, asks first or refuses, from its estimate on this
/// machine's cores.
fn page_verdict(lesson: &Lesson, query: &str) -> Verdict {
    verdict_on(lesson, query, crate::ui::worker::cores())
}

/// [`page_verdict`] on `cores` cores (callable in a worker, which has no `window` to ask).
pub(crate) fn verdict_on(lesson: &Lesson, query: &str, cores: u32) -> Verdict {
    match (lesson.estimate)(query) {
        Ok(estimate) => budget::verdict(&estimate, budget::Place::Page { cores }),
        Err(_) => Verdict::Run, // bad parameters: the run reports them
    }
}

/// Whether a slide shows the preset buttons.
fn offers_presets(text: &LessonText, slide: &Slide) -> bool {
    text.sections
        .get(slide.section)
        .is_some_and(|section| section.parts[slide.parts.clone()].iter().any(|part| part.widget_name() == Some("presets")))
}

/// Placeholder shown by a lesson widget before the first report arrives.
pub fn waiting() -> Html {
    // Which of the two shows depends on the article's class (a gated run has not started).
    html! {
        <p class="hint waiting">
            <span class="when-computing">{ "computing…" }</span>
            <span class="when-gated">{ "not started: the run controls above say why" }</span>
        </p>
    }
}
