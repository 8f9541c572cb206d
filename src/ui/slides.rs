//! Presenter mode's machinery: slides scaled to fit the screen, the overview of a lesson's slides,
//! the link to the speaker view (a second window of the app), and the document title.

use crate::lesson_text::LessonText;
use crate::ui::app::{AppAction, AppState};
use crate::ui::dom;
use crate::ui::lesson_page::LessonRef;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use yew::prelude::*;

/// The size a slide is designed for (CSS pixels at zoom 1), as reveal.js's 960×700: on a larger
/// screen the whole slide, plot fonts included, is scaled up; on a smaller one, down.
pub const DESIGN_WIDTH: f64 = 1280.0;
pub const DESIGN_HEIGHT: f64 = 720.0;
/// Below this a slide would be unreadable; such a slide scrolls instead (none does at 1280×720).
const MIN_ZOOM: f64 = 0.3;

/// The channel the presenting window and its speaker view talk on.
const CHANNEL: &str = "rorec-presenter";

/// The event plots redraw on when a slide's zoom changes (their pixels follow the zoom).
pub const ZOOM_EVENT: &str = "rorec-zoom";

pub fn is_speaker_window() -> bool {
    dom::window().location().search().unwrap_or_default().contains("speaker")
}

pub fn open_speaker_view() {
    let location = dom::window().location();
    let base = format!("{}{}", location.origin().unwrap_or_default(), location.pathname().unwrap_or_default());
    let _ = dom::window().open_with_url_and_target_and_features(&format!("{base}?speaker"), "rorec-speaker", "width=900,height=640");
}

/// The presenting window's link to its speaker view (and back).
pub fn channel() -> Option<web_sys::BroadcastChannel> {
    web_sys::BroadcastChannel::new(CHANNEL).ok()
}

pub fn post(channel: &Option<web_sys::BroadcastChannel>, message: &str) {
    if let Some(channel) = channel {
        let _ = channel.post_message(&JsValue::from_str(message));
    }
}

/// The keys that step forward and back through slides, in the presenting window and in the
/// speaker view alike.
pub const NEXT_KEYS: &[&str] = &["ArrowRight", "ArrowDown", "PageDown", " ", "n", "N"];
pub const PREV_KEYS: &[&str] = &["ArrowLeft", "ArrowUp", "PageUp", "Backspace"];

/// What the presenting window tells the speaker view: `state`, lesson, slide.
pub fn state_message(lesson: &str, slide: usize) -> String {
    format!("state\t{lesson}\t{slide}")
}

/// Reads a `state` message: (kind, lesson, slide).
pub fn parse_message(message: &str) -> Option<(&str, &str, usize)> {
    let mut fields = message.split('\t');
    let kind = fields.next()?;
    let lesson = fields.next()?;
    let slide = fields.next()?.parse().ok()?;
    Some((kind, lesson, slide))
}

/// Keeps a speaker view in step: every slide change is posted; the speaker view's "next",
/// "prev" and "hello" (send me where you are) are answered.
#[hook]
pub fn use_speaker_link(state: &UseReducerHandle<AppState>) {
    let latest = use_mut_ref(String::new);
    *latest.borrow_mut() = state_message(&state.route.lesson, state.slide);
    let link = use_memo((), |_| channel());
    {
        let (link, message) = (link.clone(), latest.borrow().clone());
        use_effect_with(message, move |message| {
            post(&link, message);
        });
    }
    {
        let (link, dispatcher, latest) = (link.clone(), state.dispatcher(), latest.clone());
        use_effect_with((), move |_| {
            let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new({
                let link = link.clone();
                move |e: web_sys::MessageEvent| {
                    let text = e.data().as_string().unwrap_or_default();
                    match text.as_str() {
                        "next" => dispatcher.dispatch(AppAction::Next),
                        "prev" => dispatcher.dispatch(AppAction::Prev),
                        "hello" => post(&link, &latest.borrow()),
                        _ => {}
                    }
                }
            });
            if let Some(channel) = link.as_ref() {
                channel.set_onmessage(Some(listener.as_ref().unchecked_ref()));
            }
            move || {
                if let Some(channel) = link.as_ref() {
                    channel.set_onmessage(None);
                }
                drop(listener);
            }
        });
    }
}

thread_local! {
    static FIT_GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Scales the shown slide to fit the window: at most the design size's scale, less when the
/// slide is taller than the room above the bar; refitted when its figures arrive, the slide
/// changes or the window is resized. Returns the zoom.
#[hook]
pub fn use_slide_fit(presenter: bool, slide_key: (String, usize)) -> f64 {
    let zoom = use_state(|| 1.0_f64);
    {
        let zoom = zoom.clone();
        use_effect_with((presenter, slide_key), move |(presenter, _)| {
            // Timers of an earlier slide may still fire: only this slide's fits act.
            let generation = FIT_GENERATION.with(|g| {
                g.set(g.get() + 1);
                g.get()
            });
            if !*presenter {
                // Not presenting: the article lays out unzoomed, and nothing watches it.
                if let Some(article) = dom::document().query_selector("main article.lesson").ok().flatten() {
                    let _ = article.unchecked_into::<web_sys::HtmlElement>().style().remove_property("zoom");
                }
                if *zoom != 1.0 {
                    zoom.set(1.0);
                }
                return Box::new(|| ()) as Box<dyn FnOnce()>;
            }
            let fit = {
                let zoom = zoom.clone();
                Rc::new(move |restart: bool| {
                    if FIT_GENERATION.with(|g| g.get()) != generation {
                        return;
                    }
                    let Some(article) = dom::document().query_selector("main article.lesson").ok().flatten() else {
                        return;
                    };
                    let article: web_sys::HtmlElement = article.unchecked_into();
                    let window = dom::window();
                    let width = window.inner_width().ok().and_then(|v| v.as_f64()).unwrap_or(DESIGN_WIDTH);
                    let height = window.inner_height().ok().and_then(|v| v.as_f64()).unwrap_or(DESIGN_HEIGHT);
                    let design = (width / DESIGN_WIDTH).min(height / DESIGN_HEIGHT);
                    let bar = dom::document()
                        .query_selector(".presenter-bar")
                        .ok()
                        .flatten()
                        .map_or(0.0, |b| b.get_bounding_client_rect().height());
                    let top = article.get_bounding_client_rect().top();
                    let was = article.style().get_property_value("zoom").ok().and_then(|z| z.parse::<f64>().ok()).unwrap_or(1.0);
                    // The room between the article's top and the bar, with a little air.
                    let room = (height - bar - top - 8.0).max(100.0);
                    // The largest zoom (up to the design scale) at which the slide fits. Its
                    // height depends on its width (a narrower column wraps more), so the zoom is
                    // searched, each try measured (a layout of one slide).
                    let height_at = |z: f64| {
                        let _ = article.style().set_property("zoom", &format!("{z:.4}"));
                        article.get_bounding_client_rect().height()
                    };
                    let next = if height_at(design) <= room {
                        design
                    } else {
                        let (mut fits, mut too_big) = (MIN_ZOOM, design);
                        for _ in 0..7 {
                            let z = 0.5 * (fits + too_big);
                            if height_at(z) <= room {
                                fits = z;
                            } else {
                                too_big = z;
                            }
                        }
                        fits
                    };
                    let _ = article.style().set_property("zoom", &format!("{next:.4}"));
                    if restart || (next - was).abs() / was > 0.005 {
                        zoom.set(next);
                        if let Ok(event) = web_sys::Event::new(ZOOM_EVENT) {
                            let _ = window.dispatch_event(&event);
                        }
                    }
                })
            };
            // Fit after this render, and again whenever the slide's height changes (a figure
            // arrives) or the window is resized.
            // The first measure can see the page before its layout settles: measure again.
            for (delay, restart) in [(0, true), (150, false), (600, false)] {
                let fit = fit.clone();
                dom::after(delay, move || fit(restart));
            }
            let on_resize = {
                let fit = fit.clone();
                Closure::<dyn FnMut()>::new(move || fit(true))
            };
            let on_grow = {
                let fit = fit.clone();
                Closure::<dyn FnMut()>::new(move || fit(false))
            };
            let observer = web_sys::ResizeObserver::new(on_grow.as_ref().unchecked_ref()).ok();
            if let (Some(observer), Some(article)) =
                (observer.as_ref(), dom::document().query_selector("main article.lesson").ok().flatten())
            {
                observer.observe(&article);
            }
            let window = dom::window();
            let _ = window.add_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
            Box::new(move || {
                let _ = window.remove_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
                if let Some(observer) = observer {
                    observer.disconnect();
                }
                drop((on_resize, on_grow));
            })
        });
    }
    *zoom
}

/// Each page says which lesson (and, presenting, which slide) it shows: tabs, history and
/// screen readers tell them apart.
#[hook]
pub fn use_document_title(lesson: Option<&'static str>, heading: Option<&'static str>) {
    use_effect_with((lesson, heading), |(lesson, heading)| {
        let title = match (lesson, heading) {
            (Some(l), Some(h)) if h != l => format!("{h} — {l}"),
            (Some(l), _) => format!("{l} — Reward-optimizing recommendation"),
            _ => "Reward-optimizing recommendation — an interactive tutorial".to_string(),
        };
        dom::document().set_title(&title);
    });
}

#[derive(Properties, PartialEq)]
pub struct OverviewProps {
    pub lesson: LessonRef,
    pub current: usize,
    pub on_pick: Callback<usize>,
}

/// All slides of the lesson at a glance (`o`): a click (or Enter on one) goes there.
#[component]
pub fn Overview(props: &OverviewProps) -> Html {
    let text: &LessonText = props.lesson.text();
    let slides = text.slides();
    let current = use_node_ref();
    {
        let current = current.clone();
        use_effect_with((), move |_| {
            if let Some(button) = current.cast::<web_sys::HtmlElement>() {
                let _ = button.focus();
            }
        });
    }
    html! {
        <div class="overview" role="dialog" aria-label="All slides of this lesson">
            <h2>{ format!("{} — {} slides", text.title, slides.len()) }</h2>
            <ol>
                { for slides.iter().enumerate().map(|(i, slide)| {
                    let on_pick = props.on_pick.reform(move |_: MouseEvent| i);
                    let heading = text.sections[slide.section].heading;
                    let label = if slide.of > 1 { format!("{heading} ({}/{})", slide.part + 1, slide.of) } else { heading.to_string() };
                    html! {
                        <li>
                            <button onclick={on_pick} class={classes!((i == props.current).then_some("current"))}
                                ref={if i == props.current { current.clone() } else { NodeRef::default() }}>
                                <span class="number">{ i + 1 }</span>
                                <strong>{ label }</strong>
                                <span class="preview">{ text.slide_preview(slide, 140) }</span>
                            </button>
                        </li>
                    }
                }) }
            </ol>
            <p class="hint">{ "Click a slide, or press o or Esc to close." }</p>
        </div>
    }
}
