//! The app shell: hash routing (`#/<lesson-id>?<params>`), table of contents, prev/next,
//! presenter mode and keyboard shortcuts.

use crate::lessons::{self, LESSONS};
use crate::ui::lesson_page::{LessonProps, LessonRef};
use crate::ui::{dom, slides};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use yew::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub lesson: String,
    pub query: String,
}

impl Route {
    /// `/slate-world?a=1` → lesson and query; an empty hash is the first lesson.
    pub fn parse(hash: &str) -> Route {
        let path = hash.trim_start_matches('/');
        let (lesson, query) = path.split_once('?').unwrap_or((path, ""));
        let lesson = if lesson.is_empty() { LESSONS[0].id } else { lesson };
        Route { lesson: lesson.to_string(), query: query.to_string() }
    }

    pub fn to_hash(&self) -> String {
        if self.query.is_empty() {
            format!("/{}", self.lesson)
        } else {
            format!("/{}?{}", self.lesson, self.query)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppState {
    /// What the app shows.
    pub route: Route,
    /// The address as the app last read or wrote it. The address is the truth: the app writes
    /// `route` into it only while it still reads `url` (a newer address wins over older state).
    pub url: Route,
    pub presenter: bool,
    /// The slide shown in presenter mode (an index into the lesson's `slides()`).
    pub slide: usize,
    pub help: bool,
    /// Presenter mode: the overview of the lesson's slides is open.
    pub overview: bool,
    /// Presenter mode: the screen is blanked (a clicker's "blank" button).
    pub black: bool,
    /// On a phone: the contents menu is open.
    pub menu: bool,
}

pub enum AppAction {
    /// The URL changed (link, back button, hand edit).
    HashChanged(Route),
    /// A lesson changed its parameters: (lesson, query). Ignored when that lesson is no longer
    /// the one shown (a late change from a page the reader already left).
    SetQuery(String, String),
    /// The app wrote this route into the address.
    UrlWritten(Route),
    TogglePresenter,
    ToggleHelp,
    Escape,
    Next,
    Prev,
    First,
    Last,
    /// Go to a slide of the current lesson (from the overview).
    GoTo(usize),
    ToggleOverview,
    ToggleBlack,
    Fullscreen,
    /// Open the speaker view in a window of its own.
    OpenSpeakerView,
    /// On a phone: open or close the contents.
    ToggleMenu,
}

fn slide_count(lesson: &str) -> usize {
    lessons::find(lesson).map_or(1, |l| l.text().slides().len().max(1))
}

fn lesson_index(lesson: &str) -> Option<usize> {
    LESSONS.iter().position(|l| l.id == lesson)
}

impl Reducible for AppState {
    type Action = AppAction;

    fn reduce(self: Rc<Self>, action: AppAction) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            AppAction::HashChanged(route) => {
                if route.lesson != self.route.lesson {
                    next.slide = 0;
                }
                next.route = route.clone();
                next.url = route;
                next.menu = false;
            }
            AppAction::SetQuery(lesson, query) => {
                if lesson == self.route.lesson {
                    next.route.query = query;
                }
            }
            AppAction::UrlWritten(route) => next.url = route,
            AppAction::TogglePresenter => {
                next.presenter = !self.presenter;
                dom::request_fullscreen(next.presenter);
            }
            AppAction::ToggleHelp => next.help = !self.help,
            AppAction::Escape => {
                if self.help {
                    next.help = false;
                } else if self.overview {
                    next.overview = false;
                } else if self.black {
                    next.black = false;
                } else if self.presenter {
                    next.presenter = false;
                    dom::request_fullscreen(false);
                }
            }
            AppAction::Next => {
                next.black = false;
                if next.slide + 1 < slide_count(&self.route.lesson) {
                    next.slide += 1;
                } else if let Some(l) = lesson_index(&self.route.lesson).and_then(|i| LESSONS.get(i + 1)) {
                    next.route = Route { lesson: l.id.into(), query: String::new() };
                    next.slide = 0;
                }
            }
            AppAction::Prev => {
                next.black = false;
                if next.slide > 0 {
                    next.slide -= 1;
                } else if let Some(l) = lesson_index(&self.route.lesson).filter(|i| *i > 0).map(|i| &LESSONS[i - 1]) {
                    next.route = Route { lesson: l.id.into(), query: String::new() };
                    next.slide = slide_count(l.id) - 1;
                }
            }
            AppAction::First => next.slide = 0,
            AppAction::Last => next.slide = slide_count(&self.route.lesson) - 1,
            AppAction::GoTo(slide) => {
                next.slide = slide.min(slide_count(&self.route.lesson) - 1);
                next.overview = false;
            }
            AppAction::ToggleOverview => next.overview = self.presenter && !self.overview,
            AppAction::ToggleMenu => next.menu = !self.menu,
            AppAction::ToggleBlack => next.black = self.presenter && !self.black,
            AppAction::Fullscreen => dom::toggle_fullscreen(),
            AppAction::OpenSpeakerView => slides::open_speaker_view(),
        }
        if next == *self {
            self
        } else {
            Rc::new(next)
        }
    }
}

pub const SHORTCUTS: &[(&str, &str)] = &[
    ("p", "presenter mode on / off (full window, large type, one slide at a time)"),
    ("→ ↓ PageDown Space n", "next slide (presenter mode), then the next lesson — also when a slider or a list has focus"),
    ("← ↑ PageUp Backspace", "previous slide (presenter mode)"),
    ("Home End", "first / last slide of the lesson (presenter mode)"),
    ("o", "overview of the lesson's slides (presenter mode)"),
    ("s", "speaker view: notes, the next slide and a timer, in a window of its own (presenter mode)"),
    ("b .", "blank the screen / show it again (presenter mode)"),
    ("f", "full screen on / off (presenter mode)"),
    ("Esc", "leave a control, close a list or the overview, leave presenter mode"),
    ("?", "show / hide this list"),
];

/// A form control that acts on keys of its own (arrows move a slider, Space presses a button).
fn is_control(el: &web_sys::Element) -> bool {
    matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA" | "BUTTON" | "A" | "SUMMARY") || is_text_field(el)
}

/// An element that takes typed text: the arrows and Space belong to it even in presenter mode.
fn is_text_field(el: &web_sys::Element) -> bool {
    match el.tag_name().as_str() {
        "TEXTAREA" => true,
        "INPUT" => {
            let kind = el.get_attribute("type").unwrap_or_default().to_ascii_lowercase();
            !matches!(kind.as_str(), "range" | "checkbox" | "radio" | "button" | "submit" | "reset" | "color" | "file")
        }
        _ => el.get_attribute("contenteditable").is_some_and(|v| v != "false"),
    }
}

/// The keys of a presentation (those reveal.js answers, and those clickers send: PageUp/PageDown,
/// and `b` or `.` for their "blank screen" button).
fn presenter_key(key: &str) -> Option<AppAction> {
    match key {
        _ if slides::NEXT_KEYS.contains(&key) => Some(AppAction::Next),
        _ if slides::PREV_KEYS.contains(&key) => Some(AppAction::Prev),
        "Home" => Some(AppAction::First),
        "End" => Some(AppAction::Last),
        "b" | "B" | "." | "v" | "V" => Some(AppAction::ToggleBlack),
        "f" | "F" => Some(AppAction::Fullscreen),
        "o" | "O" => Some(AppAction::ToggleOverview),
        "s" | "S" => Some(AppAction::OpenSpeakerView),
        _ => None,
    }
}

#[component]
pub fn App() -> Html {
    let state = use_reducer(|| {
        let route = Route::parse(&dom::hash());
        AppState { url: route.clone(), route, presenter: false, slide: 0, help: false, overview: false, black: false, menu: false }
    });
    // The first render is the page's frame alone (the contents, the links to the neighbouring
    // lessons); the lesson follows in a task of its own. As one task the two took 65–85 ms, traced.
    let lesson_mounted = use_state_eq(|| false);
    {
        let lesson_mounted = lesson_mounted.clone();
        use_effect_with((), move |_| dom::after(0, move || lesson_mounted.set(true)));
    }
    {
        // URL → state.
        let dispatcher = state.dispatcher();
        use_effect_with((), move |_| {
            let on_hash = Closure::<dyn FnMut()>::new(move || dispatcher.dispatch(AppAction::HashChanged(Route::parse(&dom::hash()))));
            let window = dom::window();
            let _ = window.add_event_listener_with_callback("hashchange", on_hash.as_ref().unchecked_ref());
            move || {
                let _ = window.remove_event_listener_with_callback("hashchange", on_hash.as_ref().unchecked_ref());
            }
        });
    }
    {
        // state → URL: a new lesson is a history entry, a parameter change replaces the entry.
        // Effects run after rendering, and the address may have moved on in between (a link
        // clicked twice, a script setting location.hash): then a hashchange is on its way and
        // this state is already old, so nothing is written and the newer address wins.
        let dispatcher = state.dispatcher();
        use_effect_with((state.route.clone(), state.url.clone()), move |(route, url)| {
            let live = Route::parse(&dom::hash());
            if route != url && live == *url {
                if live.lesson != route.lesson {
                    let _ = dom::window().location().set_hash(&route.to_hash());
                } else {
                    dom::replace_hash(&route.to_hash());
                }
                dispatcher.dispatch(AppAction::UrlWritten(route.clone()));
            }
        });
    }
    {
        let dispatcher = state.dispatcher();
        let presenter = state.presenter;
        use_effect_with(presenter, move |presenter| {
            let presenter = *presenter;
            let on_key = Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(move |e: web_sys::KeyboardEvent| {
                if e.ctrl_key() || e.meta_key() || e.alt_key() {
                    return;
                }
                let focused = e.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok());
                let key = e.key();
                if key == "Escape" {
                    // Escape first leaves a control (so that the next keys navigate again).
                    if let Some(el) = focused.as_ref().filter(|el| is_control(el)) {
                        if let Some(el) = el.dyn_ref::<web_sys::HtmlElement>() {
                            let _ = el.blur();
                        }
                        e.prevent_default();
                        return;
                    }
                }
                // A text field keeps its keys. Outside presenter mode every control does; in
                // presenter mode a slider, a select or a button never swallows a clicker's keys.
                if focused.as_ref().is_some_and(|el| if presenter { is_text_field(el) } else { is_control(el) }) && key != "Escape" {
                    return;
                }
                let action = match key.as_str() {
                    "p" | "P" => Some(AppAction::TogglePresenter),
                    "?" => Some(AppAction::ToggleHelp),
                    "Escape" => Some(AppAction::Escape),
                    _ if presenter => presenter_key(&key),
                    _ => None,
                };
                if let Some(action) = action {
                    e.prevent_default();
                    e.stop_propagation();
                    dispatcher.dispatch(action);
                }
            });
            let window = dom::window();
            // Capture phase: the app sees a key before the focused control acts on it.
            let _ = window.add_event_listener_with_callback_and_bool("keydown", on_key.as_ref().unchecked_ref(), true);
            move || {
                let _ = window.remove_event_listener_with_callback_and_bool("keydown", on_key.as_ref().unchecked_ref(), true);
            }
        });
    }

    {
        // A turned phone or a resized window changes which boxes scroll.
        use_effect_with((), |_| {
            let on_resize = Closure::<dyn FnMut()>::new(dom::mark_scrollable_regions);
            let window = dom::window();
            let _ = window.add_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
            move || {
                let _ = window.remove_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
            }
        });
    }
    let lesson = lessons::find(&state.route.lesson);
    let index = lesson_index(&state.route.lesson);
    let on_query = {
        let dispatcher = state.dispatcher();
        let lesson = state.route.lesson.clone();
        Callback::from(move |q: String| dispatcher.dispatch(AppAction::SetQuery(lesson.clone(), q)))
    };
    let toggle_presenter = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(AppAction::TogglePresenter))
    };
    let toggle_help = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(AppAction::ToggleHelp))
    };
    let step = |action: fn() -> AppAction| {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(action()))
    };
    let slides = lesson.map(|l| l.text().slides()).unwrap_or_default();
    let slide = state.presenter.then(|| slides.get(state.slide).cloned()).flatten();
    let zoom = slides::use_slide_fit(state.presenter, (state.route.lesson.clone(), state.slide));
    slides::use_speaker_link(&state);
    slides::use_document_title(
        lesson.map(|l| l.title()),
        slide.as_ref().and_then(|s| lesson.map(|l| l.text().sections[s.section].heading)),
    );

    html! {
        <div class={classes!("app", state.presenter.then_some("presenter"))} data-zoom={state.presenter.then(|| format!("{zoom:.3}"))}>
            <nav class={classes!("toc", state.menu.then_some("open"))} aria-label="Lessons">
                <div class="toc-head">
                    <p class="brand">{ "Reward-optimizing recommendation" }</p>
                    // Only on a narrow screen: the contents fold into this menu.
                    <button class="toc-toggle" aria-expanded={state.menu.to_string()} aria-controls="toc-list" onclick={step(|| AppAction::ToggleMenu)}>
                        { if state.menu { "Close" } else { "Contents" } }
                    </button>
                </div>
                <p class="sub">{ "KDD'22 tutorial, live in your browser" }</p>
                <ol id="toc-list">
                    { for LESSONS.iter().map(|l| html! {
                        <li class={classes!((l.id == state.route.lesson).then_some("current"))}>
                            <a href={format!("#/{}", l.id)} aria-current={(l.id == state.route.lesson).then_some("page")}>{ l.title() }</a>
                            <span class="blurb">{ l.blurb }</span>
                        </li>
                    }) }
                </ol>
                <div class="toc-buttons">
                    <button onclick={toggle_presenter.clone()} title="Presenter mode (p)">{ "Present (p)" }</button>
                    <button onclick={toggle_help.clone()} title="Keyboard shortcuts (?)">{ "Shortcuts (?)" }</button>
                </div>
            </nav>
            <main>
                { match lesson {
                    Some(_) if !*lesson_mounted => Html::default(),
                    Some(l) => (l.view)(LessonProps {
                        lesson: LessonRef(l),
                        query: state.route.query.clone().into(),
                        slide: slide.clone(),
                        on_query,
                        next: index.and_then(|i| LESSONS.get(i + 1)).map(LessonRef),
                    }),
                    None => html! {
                        <div class="notice" role="alert">
                            <p>{ format!("There is no lesson “{}”. ", state.route.lesson) }
                               <a href={format!("#/{}", LESSONS[0].id)}>{ "Start with the first lesson." }</a></p>
                        </div>
                    },
                } }
                if state.presenter {
                    <div class="presenter-bar">
                        <button onclick={step(|| AppAction::Prev)} title="Previous (←, PageUp)">{ "←" }</button>
                        <span class="where">{ format!("{} — {} / {}", lesson.map_or("", |l| l.title()), state.slide + 1, slides.len().max(1)) }</span>
                        <button onclick={step(|| AppAction::ToggleOverview)} title="All slides (o)">{ "slides" }</button>
                        <button onclick={step(|| AppAction::OpenSpeakerView)} title="Speaker view (s)">{ "speaker" }</button>
                        <button onclick={step(|| AppAction::Next)} title="Next (→, PageDown)">{ "→" }</button>
                        <button onclick={toggle_presenter} title="Leave presenter mode (Esc)">{ "exit" }</button>
                    </div>
                } else {
                    <nav class="prev-next" aria-label="Previous and next lesson">
                        { index.and_then(|i| i.checked_sub(1)).map(|i| html! { <a href={format!("#/{}", LESSONS[i].id)}>{ format!("← {}", LESSONS[i].title()) }</a> }).unwrap_or_default() }
                        <span />
                        { index.and_then(|i| LESSONS.get(i + 1)).map(|l| html! { <a href={format!("#/{}", l.id)}>{ format!("{} →", l.title()) }</a> }).unwrap_or_default() }
                    </nav>
                }
            </main>
            if state.presenter && state.overview {
                if let Some(l) = lesson {
                    <slides::Overview lesson={LessonRef(l)} current={state.slide} on_pick={
                        let d = state.dispatcher();
                        Callback::from(move |i: usize| d.dispatch(AppAction::GoTo(i)))
                    } />
                }
            }
            if state.presenter && state.black {
                <div class="blackout" onclick={step(|| AppAction::ToggleBlack)} aria-label="Blank screen: press b or click to show the slide" />
            }
            if state.help {
                <div class="overlay" onclick={toggle_help.clone()}>
                    <div class="shortcuts" role="dialog" aria-label="Keyboard shortcuts">
                        <h2>{ "Keyboard shortcuts" }</h2>
                        <dl>{ for SHORTCUTS.iter().map(|(k, d)| html! { <><dt><kbd>{ *k }</kbd></dt><dd>{ *d }</dd></> }) }</dl>
                        <p class="hint">{ "Click anywhere or press Esc to close." }</p>
                    </div>
                </div>
            }
        </div>
    }
}
