//! The speaker view (`s` in presenter mode): a second window, for the presenter's screen, with
//! the current slide's speaker notes, the next slide, a timer and the clock. It follows the
//! presenting window over a BroadcastChannel, and its arrow keys drive it (as reveal.js's).

use crate::lessons::{self, LESSONS};
use crate::ui::dom;
use crate::ui::slides::{channel, parse_message, post, NEXT_KEYS, PREV_KEYS};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use yew::prelude::*;

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn clock_text(ms: f64) -> String {
    let seconds = (ms / 1000.0).max(0.0) as u64;
    format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

#[component]
pub fn SpeakerView() -> Html {
    // (lesson, slide) the presenting window shows; None until it answers.
    let shown = use_state(|| None::<(String, usize)>);
    let started = use_state(now_ms);
    let tick = use_state(|| 0u32);
    let channel = use_memo((), |_| channel());
    {
        let (channel, shown) = (channel.clone(), shown.clone());
        use_effect_with((), move |_| {
            let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let text = e.data().as_string().unwrap_or_default();
                if let Some(("state", lesson, slide)) = parse_message(&text) {
                    shown.set(Some((lesson.to_string(), slide)));
                }
            });
            if let Some(c) = channel.as_ref() {
                c.set_onmessage(Some(listener.as_ref().unchecked_ref()));
            }
            post(&channel, "hello");
            dom::document().set_title("Speaker view — Reward-optimizing recommendation");
            move || drop(listener)
        });
    }
    {
        // The timer and the clock move once a second.
        let tick = tick.clone();
        use_effect_with((), move |_| {
            let step = Closure::<dyn FnMut()>::new(move || tick.set(js_sys::Math::random().to_bits() as u32));
            let id = dom::window().set_interval_with_callback_and_timeout_and_arguments_0(step.as_ref().unchecked_ref(), 1000).ok();
            move || {
                if let Some(id) = id {
                    dom::window().clear_interval_with_handle(id);
                }
                drop(step);
            }
        });
    }
    {
        let channel = channel.clone();
        use_effect_with((), move |_| {
            let on_key = Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(move |e: web_sys::KeyboardEvent| {
                let key = e.key();
                let command = if NEXT_KEYS.contains(&key.as_str()) {
                    Some("next")
                } else if PREV_KEYS.contains(&key.as_str()) {
                    Some("prev")
                } else {
                    None
                };
                if let Some(command) = command {
                    e.prevent_default();
                    post(&channel, command);
                }
            });
            let window = dom::window();
            let _ = window.add_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref());
            move || {
                let _ = window.remove_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref());
            }
        });
    }
    let _ = *tick;
    let elapsed = now_ms() - *started;
    let reset = {
        let started = started.clone();
        Callback::from(move |_: MouseEvent| started.set(now_ms()))
    };
    let command = |name: &'static str| {
        let channel = channel.clone();
        Callback::from(move |_: MouseEvent| post(&channel, name))
    };
    let time_of_day = {
        let date = js_sys::Date::new_0();
        format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
    };
    let body = match &*shown {
        None => html! { <p class="hint">{ "Waiting for the presenting window… (open this view with s in presenter mode)" }</p> },
        Some((lesson_id, index)) => match lessons::find(lesson_id) {
            None => html! { <p>{ format!("The presenting window shows “{lesson_id}”.") }</p> },
            Some(lesson) => {
                let text = lesson.text();
                let slides = text.slides();
                let index = (*index).min(slides.len().saturating_sub(1));
                let slide = &slides[index];
                let section = &text.sections[slide.section];
                let part = if slide.of > 1 { format!(" ({}/{})", slide.part + 1, slide.of) } else { String::new() };
                // The next slide: of this lesson, or the next lesson's first.
                let next = match slides.get(index + 1) {
                    Some(n) => Some((text.title, text.sections[n.section].heading, text.slide_preview(n, 320))),
                    None => LESSONS.iter().position(|l| l.id == lesson.id).and_then(|i| LESSONS.get(i + 1)).map(|l| {
                        let t = l.text();
                        let first = &t.slides()[0];
                        (t.title, t.sections[first.section].heading, t.slide_preview(first, 320))
                    }),
                };
                html! {
                    <>
                        <section class="speaker-current" aria-label="Current slide">
                            <p class="where">{ format!("{} — slide {} of {}", text.title, index + 1, slides.len()) }</p>
                            <h2>{ format!("{}{part}", section.heading) }</h2>
                            <div class="notes">
                                if section.notes.is_empty() {
                                    <p class="hint">{ "No speaker notes for this section." }</p>
                                } else {
                                    { Html::from_html_unchecked(AttrValue::from(section.notes)) }
                                }
                            </div>
                        </section>
                        <section class="speaker-next" aria-label="Next slide">
                            <h3>{ "Next" }</h3>
                            { match next {
                                Some((lesson_title, heading, preview)) => html! {
                                    <>
                                        <p class="where">{ lesson_title }</p>
                                        <p><strong>{ heading }</strong></p>
                                        <p class="preview">{ preview }</p>
                                    </>
                                },
                                None => html! { <p>{ "The end of the tutorial." }</p> },
                            } }
                        </section>
                    </>
                }
            }
        },
    };
    html! {
        <div class="speaker-view">
            <header class="speaker-bar">
                <span class="timer" aria-label="Time since the speaker view opened">{ clock_text(elapsed) }</span>
                <button onclick={reset}>{ "Reset timer" }</button>
                <span class="clock" aria-label="Time of day">{ time_of_day }</span>
                <span class="spacer" />
                <button onclick={command("prev")} title="Previous slide (←)">{ "← previous" }</button>
                <button onclick={command("next")} title="Next slide (→)">{ "next →" }</button>
            </header>
            <main class="speaker-body">{ body }</main>
        </div>
    }
}
