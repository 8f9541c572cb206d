//! The app shell: hash routing (`#/<lesson-id>?<params>`), table of contents, prev/next,
//! presenter mode and keyboard shortcuts.

use crate::lessons::{self, LESSONS};
use crate::ui::dom;
use crate::ui::lesson_page::{LessonProps, LessonRef};
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
    pub section: usize,
    pub help: bool,
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
}

fn section_count(lesson: &str) -> usize {
    lessons::find(lesson).map_or(1, |l| l.text().sections.len().max(1))
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
                    next.section = 0;
                }
                next.route = route.clone();
                next.url = route;
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
                } else if self.presenter {
                    next.presenter = false;
                    dom::request_fullscreen(false);
                }
            }
            AppAction::Next => {
                if next.section + 1 < section_count(&self.route.lesson) {
                    next.section += 1;
                } else if let Some(l) = lesson_index(&self.route.lesson).and_then(|i| LESSONS.get(i + 1)) {
                    next.route = Route { lesson: l.id.into(), query: String::new() };
                    next.section = 0;
                }
            }
            AppAction::Prev => {
                if next.section > 0 {
                    next.section -= 1;
                } else if let Some(l) = lesson_index(&self.route.lesson).filter(|i| *i > 0).map(|i| &LESSONS[i - 1]) {
                    next.route = Route { lesson: l.id.into(), query: String::new() };
                    next.section = section_count(l.id) - 1;
                }
            }
        }
        if next == *self {
            self
        } else {
            Rc::new(next)
        }
    }
}

pub const SHORTCUTS: &[(&str, &str)] = &[
    ("p", "presenter mode on / off (full window, large type, one section at a time)"),
    ("→ ↓ PageDown Space", "next section (presenter mode), then the next lesson"),
    ("← ↑ PageUp", "previous section (presenter mode)"),
    ("Esc", "leave presenter mode, close this list"),
    ("?", "show / hide this list"),
];

#[component]
pub fn App() -> Html {
    let state = use_reducer(|| {
        let route = Route::parse(&dom::hash());
        AppState { url: route.clone(), route, presenter: false, section: 0, help: false }
    });
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
                let in_field = e
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                    .map(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
                    .unwrap_or(false);
                let key = e.key();
                if in_field && key != "Escape" {
                    return;
                }
                let action = match key.as_str() {
                    "p" | "P" => Some(AppAction::TogglePresenter),
                    "?" => Some(AppAction::ToggleHelp),
                    "Escape" => Some(AppAction::Escape),
                    "ArrowRight" | "ArrowDown" | "PageDown" | " " if presenter => Some(AppAction::Next),
                    "ArrowLeft" | "ArrowUp" | "PageUp" if presenter => Some(AppAction::Prev),
                    _ => None,
                };
                if let Some(action) = action {
                    e.prevent_default();
                    dispatcher.dispatch(action);
                }
            });
            let window = dom::window();
            let _ = window.add_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref());
            move || {
                let _ = window.remove_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref());
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
    let section = state.presenter.then_some(state.section);

    html! {
        <div class={classes!("app", state.presenter.then_some("presenter"))}>
            <nav class="toc" aria-label="Lessons">
                <p class="brand">{ "Reward-optimizing recommendation" }</p>
                <p class="sub">{ "KDD'22 tutorial, live in your browser" }</p>
                <ol>
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
                    Some(l) => (l.view)(LessonProps {
                        lesson: LessonRef(l),
                        query: state.route.query.clone().into(),
                        section,
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
                        <span>{ format!("{} — {} / {}", lesson.map_or("", |l| l.title()), state.section + 1, section_count(&state.route.lesson)) }</span>
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
