//! Shared widgets, written once: parameter controls (slider + number entry with inline
//! validation, choice, seed with "new seed"), run / cancel / reset with a progress bar, tables.

use crate::core::params::{self, Issue, Kind, LessonParams, Preset, Spec, Value};
use crate::plot::TableSpec;
use crate::ui::dom;
use crate::ui::worker::RunStatus;
use std::collections::HashMap;
use std::rc::Rc;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ParamPanelProps<P: LessonParams> {
    pub params: P,
    pub on_change: Callback<P>,
    /// Show only these parameters (a section's own controls); all when None.
    #[prop_or_default]
    pub only: Option<Vec<String>>,
    /// Problems found in the URL, shown next to their controls until edited.
    #[prop_or_default]
    pub url_issues: Rc<Vec<Issue>>,
    /// Element ids are `<id_prefix>-<name>`: unique when a parameter appears in several panels.
    #[prop_or(AttrValue::Static("param"))]
    pub id_prefix: AttrValue,
    /// A slider is being dragged: the parameters it would give (valid ones only), for a preview.
    #[prop_or_default]
    pub on_drag: Option<Callback<P>>,
}

#[derive(Clone, PartialEq)]
struct Draft<P> {
    text: String,
    message: Option<String>,
    base: P,
}

/// A panel of controls for a lesson's parameter struct.
#[component]
pub fn ParamPanel<P: LessonParams>(props: &ParamPanelProps<P>) -> Html {
    // What the learner typed but is not (yet) valid, with the message explaining why, and the
    // parameters it was typed against: once those change (a commit, reset, URL edit), it is void.
    let drafts = use_state(HashMap::<&'static str, Draft<P>>::new);
    let commit = {
        let (drafts, params, on_change) = (drafts.clone(), props.params.clone(), props.on_change.clone());
        Callback::from(move |(name, text): (&'static str, String)| {
            let mut map = (*drafts).clone();
            match with_value(&params, name, &text) {
                Err(issue) => {
                    map.insert(name, Draft { text, message: Some(issue.message), base: params.clone() });
                    drafts.set(map);
                }
                Ok(next) => {
                    map.remove(name);
                    drafts.set(map);
                    if next != params {
                        on_change.emit(next);
                    }
                }
            }
        })
    };
    let preview = {
        let (drafts, params) = (drafts.clone(), props.params.clone());
        Callback::from(move |(name, text): (&'static str, String)| {
            let mut map = (*drafts).clone();
            map.insert(name, Draft { text, message: None, base: params.clone() });
            drafts.set(map);
        })
    };
    let drag = {
        let (params, on_drag) = (props.params.clone(), props.on_drag.clone());
        Callback::from(move |(name, text): (&'static str, String)| {
            let Some(on_drag) = &on_drag else { return };
            if let Some(next) = with_value(&params, name, &text).ok().filter(|next| *next != params) {
                on_drag.emit(next);
            }
        })
    };
    let specs = P::specs().iter().filter(|s| props.only.as_ref().is_none_or(|only| only.iter().any(|o| o == s.name)));
    html! {
        <div class={classes!("param-panel", props.only.is_some().then_some("compact"))}>
            { for specs.map(|spec| {
                let value = props.params.get(spec.name);
                let draft = drafts.get(spec.name).filter(|d| d.base == props.params);
                let url_issue = props.url_issues.iter().find(|i| i.param == spec.name).map(|i| i.message.clone());
                let message = match draft {
                    Some(d) => d.message.clone(),
                    None => url_issue,
                };
                let text = draft.map(|d| d.text.clone()).unwrap_or_else(|| value.to_string());
                control(spec, &props.id_prefix, &value, text, message, props.params.is_active(spec.name), &commit, &preview, &drag)
            }) }
        </div>
    }
}

/// The parameters with one value changed from text, or the first problem with it (its range,
/// then the checks between fields).
fn with_value<P: LessonParams>(params: &P, name: &'static str, text: &str) -> Result<P, Issue> {
    let mut next = params.clone();
    params::set_from_text(&mut next, name, text)?;
    match next.cross_check().into_iter().next() {
        Some(issue) => Err(issue),
        None => Ok(next),
    }
}

#[allow(clippy::too_many_arguments)]
fn control(
    spec: &'static Spec,
    id_prefix: &str,
    value: &Value,
    text: String,
    message: Option<String>,
    active: bool,
    commit: &Callback<(&'static str, String)>,
    preview: &Callback<(&'static str, String)>,
    drag: &Callback<(&'static str, String)>,
) -> Html {
    let name = spec.name;
    let id = format!("{id_prefix}-{name}");
    let on_text_change = {
        let commit = commit.clone();
        Callback::from(move |e: Event| commit.emit((name, e.target_unchecked_into::<HtmlInputElement>().value())))
    };
    // Typing is kept as a draft at every keystroke: the page re-renders while a run reports
    // progress, and a controlled input would otherwise snap back to the committed value.
    let on_typing = {
        let preview = preview.clone();
        Callback::from(move |e: InputEvent| preview.emit((name, e.target_unchecked_into::<HtmlInputElement>().value())))
    };
    let input_box = |extra: Html| {
        html! {
            <div class={classes!("control", (!active).then_some("inactive"), message.is_some().then_some("invalid"))} data-param={name}>
                <label for={id.clone()} title={spec.help}>{ spec.label }</label>
                <div class="control-row">
                    { extra }
                    <input id={id.clone()} class="number" type="text" inputmode="decimal" value={text.clone()}
                        disabled={!active} oninput={on_typing.clone()} onchange={on_text_change.clone()} aria-invalid={message.is_some().to_string()} />
                </div>
                if let Some(m) = &message { <p class="inline-error" role="alert">{ m.clone() }</p> }
                else if !active { <p class="hint">{ "not used by the current choices" }</p> }
            </div>
        }
    };
    match spec.kind {
        Kind::Int { .. } | Kind::Float { .. } => {
            let (lo, hi, log) = match spec.kind {
                Kind::Int { min, max, log } => (min as f64, max as f64, log),
                Kind::Float { min, max, log } => (min, max, log),
                _ => unreachable!(),
            };
            let is_int = matches!(spec.kind, Kind::Int { .. });
            let current = text.trim().parse::<f64>().ok().unwrap_or(match value {
                Value::Int(v) => *v as f64,
                Value::Float(v) => *v,
                _ => lo,
            });
            let to_pos = move |v: f64| -> f64 {
                if log && lo > 0.0 {
                    (v.max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln()) * 1000.0
                } else {
                    (v - lo) / (hi - lo) * 1000.0
                }
            };
            let from_pos = move |p: f64| -> String {
                let v = if log && lo > 0.0 { (lo.ln() + p / 1000.0 * (hi.ln() - lo.ln())).exp() } else { lo + p / 1000.0 * (hi - lo) };
                if is_int {
                    format!("{}", v.round() as i64)
                } else {
                    let digits = if v.abs() >= 10.0 {
                        1
                    } else if v.abs() >= 1.0 {
                        2
                    } else {
                        3
                    };
                    format!("{v:.digits$}")
                }
            };
            let on_input = {
                let (preview, drag) = (preview.clone(), drag.clone());
                Callback::from(move |e: InputEvent| {
                    let pos: f64 = e.target_unchecked_into::<HtmlInputElement>().value().parse().unwrap_or(0.0);
                    preview.emit((name, from_pos(pos)));
                    // The figures follow the drag from the cheapest stages; release commits.
                    drag.emit((name, from_pos(pos)));
                })
            };
            let on_release = {
                let commit = commit.clone();
                Callback::from(move |e: Event| {
                    let pos: f64 = e.target_unchecked_into::<HtmlInputElement>().value().parse().unwrap_or(0.0);
                    commit.emit((name, from_pos(pos)));
                })
            };
            let slider = html! {
                <input class="slider" type="range" min="0" max="1000" step="1" aria-label={spec.label}
                    value={format!("{:.0}", to_pos(current).clamp(0.0, 1000.0))} disabled={!active}
                    oninput={on_input} onchange={on_release} />
            };
            input_box(slider)
        }
        Kind::Choice(options) => {
            let on_select = {
                let commit = commit.clone();
                Callback::from(move |e: Event| commit.emit((name, e.target_unchecked_into::<HtmlSelectElement>().value())))
            };
            let selected = value.to_string();
            html! {
                <div class={classes!("control", "choice", (!active).then_some("inactive"))} data-param={name}>
                    <label for={id.clone()} title={spec.help}>{ spec.label }</label>
                    <select id={id} onchange={on_select} disabled={!active}>
                        { for options.iter().map(|(v, label)| html! { <option value={*v} selected={selected == *v}>{ *label }</option> }) }
                    </select>
                    if let Some(m) = &message { <p class="inline-error" role="alert">{ m.clone() }</p> }
                </div>
            }
        }
        Kind::Set(options) => {
            let chosen: Vec<String> = value.to_string().split(',').map(String::from).collect();
            html! {
                <div class={classes!("control", "set", (!active).then_some("inactive"))} data-param={name}>
                    <label title={spec.help}>{ spec.label }</label>
                    <div class="checkboxes" id={id.clone()}>
                        { for options.iter().map(|(v, label)| {
                            let on_toggle = {
                                let (commit, chosen) = (commit.clone(), chosen.clone());
                                Callback::from(move |e: Event| {
                                    let on = e.target_unchecked_into::<HtmlInputElement>().checked();
                                    let mut next: Vec<String> = chosen.iter().filter(|c| c.as_str() != *v).cloned().collect();
                                    if on {
                                        next.push(v.to_string());
                                    }
                                    commit.emit((name, next.join(",")));
                                })
                            };
                            html! {
                                <label class="check" title={*label}>
                                    <input type="checkbox" value={*v} checked={chosen.iter().any(|c| c == v)} onchange={on_toggle} />
                                    { *label }
                                </label>
                            }
                        }) }
                    </div>
                    if let Some(m) = &message { <p class="inline-error" role="alert">{ m.clone() }</p> }
                </div>
            }
        }
        Kind::Seed => {
            // Seed: a number and a "new seed" button.
            let on_new = {
                let commit = commit.clone();
                Callback::from(move |_| commit.emit((name, dom::random_seed().to_string())))
            };
            input_box(html! { <button class="small" onclick={on_new} title="Draw a fresh random seed">{ "new seed" }</button> })
        }
    }
}

/// What the estimate of the shown parameters says before they run.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    /// A long run: it starts when the reader asks.
    Ask(AttrValue),
    /// Over the budget: it does not start; the message says what to lower.
    Refuse(AttrValue),
}

#[derive(Properties, PartialEq)]
pub struct RunControlsProps {
    pub status: RunStatus,
    /// Wall time of the last finished run.
    pub elapsed_ms: f64,
    pub on_run: Callback<()>,
    pub on_cancel: Callback<()>,
    pub on_reset: Callback<()>,
    /// Lessons with iterative training give a "step" action.
    #[prop_or_default]
    pub on_step: Option<Callback<()>>,
    /// Lessons whose runs go in slices can pause: Some(callback(pause?)).
    #[prop_or_default]
    pub on_pause: Option<Callback<bool>>,
    #[prop_or_default]
    pub paused: bool,
    pub auto_run: bool,
    pub on_auto_run: Callback<bool>,
    #[prop_or_default]
    pub gate: Option<Gate>,
    /// The figures show a preview: what it leaves out.
    #[prop_or_default]
    pub preview_note: Option<AttrValue>,
    /// The preview is the results so far of a dragged slider's run.
    #[prop_or_default]
    pub dragging: bool,
}

/// Run / step / cancel / reset, the auto-run switch, and the progress bar.
#[component]
pub fn RunControls(props: &RunControlsProps) -> Html {
    let running = matches!(props.status, RunStatus::Running { .. });
    let on_run = props.on_run.reform(|_: MouseEvent| ());
    let on_cancel = props.on_cancel.reform(|_: MouseEvent| ());
    let on_reset = props.on_reset.reform(|_: MouseEvent| ());
    let on_auto = props.on_auto_run.reform(|e: Event| e.target_unchecked_into::<HtmlInputElement>().checked());
    html! {
        <div class="run-controls">
            <div class="buttons">
                <button class="primary" onclick={on_run.clone()} disabled={running || matches!(props.gate, Some(Gate::Refuse(_)))}>{ "Run" }</button>
                if let Some(step) = &props.on_step {
                    <button onclick={step.reform(|_: MouseEvent| ())} disabled={running}>{ "Step" }</button>
                }
                if let Some(pause) = &props.on_pause {
                    <button class="pause" onclick={pause.reform({ let paused = props.paused; move |_: MouseEvent| !paused })} disabled={!running}>
                        { if props.paused { "Resume" } else { "Pause" } }
                    </button>
                }
                <button onclick={on_cancel} disabled={!running}>{ "Cancel" }</button>
                <button onclick={on_reset} title="All parameters back to their defaults">{ "Reset" }</button>
                <label class="auto"><input type="checkbox" checked={props.auto_run} onchange={on_auto} />{ " rerun when a control changes" }</label>
            </div>
            <div class="status" aria-live="polite">
                { match &props.gate {
                    Some(Gate::Refuse(m)) => html! { <p class="inline-error gate" role="alert" data-gate="refuse">{ m.clone() }</p> },
                    Some(Gate::Ask(m)) => html! {
                        <p class="gate" data-gate="ask">{ m.clone() }{ " " }<button class="primary small" onclick={on_run}>{ "Start" }</button></p>
                    },
                    None => html! {},
                } }
                // Gated: the status of the previous run would only confuse.
                if props.gate.is_none() || running { { match &props.status {
                    RunStatus::Running { fraction, stage } => html! {
                        <>
                            <progress max="1" value={fraction.to_string()} />
                            <span class="stage">{
                                if props.paused { format!("paused at {:.0} % ({stage})", fraction * 100.0) }
                                else { format!("{stage}… {:.0} %", fraction * 100.0) }
                            }</span>
                            if let Some(note) = &props.preview_note {
                                <span class="hint preview-note">{
                                    if props.dragging { format!(" — showing a preview ({note}); release the control for the full result") }
                                    else { format!(" — showing a preview ({note}); the full result follows") }
                                }</span>
                            }
                        </>
                    },
                    RunStatus::Preview => html! {
                        <span class="hint">{ "preview" }{ props.preview_note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default() }{ " — release the control for the full result" }</span>
                    },
                    RunStatus::Done => html! { <span class="ok">{ format!("computed in {:.0} ms", props.elapsed_ms) }</span> },
                    RunStatus::Failed(m) => html! { <span class="inline-error">{ m.clone() }</span> },
                    RunStatus::Cancelled => html! { <span class="hint">{ "cancelled; the results shown are from the previous run" }</span> },
                    RunStatus::Idle => html! { <span class="hint">{ "not run yet" }</span> },
                } } }
            </div>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct TableProps {
    pub spec: Rc<TableSpec>,
    #[prop_or_default]
    pub caption: AttrValue,
}

/// A result table with a "CSV" download.
#[component]
pub fn Table(props: &TableProps) -> Html {
    let on_csv = {
        let spec = props.spec.clone();
        Callback::from(move |_| dom::download_text(&format!("{}.csv", spec.id), "text/csv", &spec.to_csv()))
    };
    html! {
        <div class="table-wrap" data-table={props.spec.id.clone()}>
            <table>
                if !props.caption.is_empty() { <caption>{ props.caption.clone() }</caption> }
                <thead><tr>{ for props.spec.headers.iter().map(|h| html! { <th>{ h.clone() }</th> }) }</tr></thead>
                <tbody>
                    { for props.spec.rows.iter().map(|row| html! {
                        <tr>{ for row.iter().map(|c| html! { <td>{ c.clone() }</td> }) }</tr>
                    }) }
                </tbody>
            </table>
            // Named for its table: a page has many CSV buttons.
            <button class="small" onclick={on_csv} title="Download this table as CSV"
                aria-label={format!("CSV: {}", if props.caption.is_empty() { props.spec.id.replace('-', " ") } else { props.caption.to_string() })}>{ "CSV" }</button>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct PresetBarProps {
    pub presets: &'static [Preset],
    /// The preset the shown parameters equal, if any.
    pub current: Option<&'static str>,
    /// A preset was picked: its name.
    pub on_pick: Callback<&'static str>,
}

/// One button per named setting of the lesson; the one the parameters equal is pressed.
#[component]
pub fn PresetBar(props: &PresetBarProps) -> Html {
    if props.presets.is_empty() {
        return html! {};
    }
    let current = props.presets.iter().find(|p| Some(p.name) == props.current);
    html! {
        <div class="preset-bar" role="group" aria-label="Presets">
            <span class="label">{ "Presets:" }</span>
            { for props.presets.iter().map(|preset| {
                let name = preset.name;
                let pressed = props.current == Some(name);
                let onclick = props.on_pick.reform(move |_| name);
                html! {
                    <button class={classes!("small", pressed.then_some("pressed"))} aria-pressed={pressed.to_string()}
                        title={format!("{} — sets {}", preset.about, preset.query.replace('&', ", "))} {onclick}
                        data-preset={name}>{ preset.label }</button>
                }
            }) }
            <span class="hint">{ current.map_or("(or your own values)".to_string(), |p| p.about.to_string()) }</span>
        </div>
    }
}

/// A box listing problems found in the page address.
pub fn url_issues_notice(issues: &[Issue]) -> Html {
    if issues.is_empty() {
        return html! {};
    }
    html! {
        <div class="notice" role="status" data-testid="url-issues">
            <strong>{ "Some values in the address could not be used:" }</strong>
            <ul>{ for issues.iter().map(|i| html! {
                <li>{ if i.param.is_empty() { i.message.clone() } else { format!("{}: {}", i.param, i.message) } }</li>
            }) }</ul>
        </div>
    }
}
