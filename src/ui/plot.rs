//! The plot widget: draws a [`PlotSpec`] with plotters on a canvas sized to its column and to the
//! screen's pixel ratio (sharp on HiDPI), with "CSV" and "PNG" downloads.

use crate::plot::{
    describe_change, fmt_log10_tick, labels_collide, log10_ticks, log_labels_with_room, wrap_words, Frame, LegendAt, PlotSpec, PointRef,
    Style,
};
use crate::ui::dom;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_canvas::CanvasBackend;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};
use yew::prelude::*;

/// Okabe–Ito (distinguishable with every kind of colour vision), then two darker extras, then
/// the reference grey.
const PALETTE: [RGBColor; 11] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(240, 228, 66),
    RGBColor(140, 30, 30),
    RGBColor(90, 60, 150),
    RGBColor(50, 50, 50),
];

pub fn color(index: u32) -> RGBColor {
    PALETTE[index as usize % PALETTE.len()]
}

#[derive(Properties, PartialEq)]
pub struct PlotProps {
    pub spec: Rc<PlotSpec>,
    /// CSS height in pixels.
    #[prop_or(300.0)]
    pub height: f64,
}

/// What a plot knows of its page: the parameters of the run it shows (a pinned run's legend
/// says what changed since).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlotContext {
    pub query: AttrValue,
}

/// CSS pixels around the pointer within which a point counts as hovered.
const HOVER_RADIUS: f64 = 18.0;

fn css_color(index: u32) -> String {
    let RGBColor(r, g, b) = color(index);
    format!("rgb({r},{g},{b})")
}

#[component]
pub fn Plot(props: &PlotProps) -> Html {
    let canvas = use_node_ref();
    let resize_tick = use_state(|| 0u32);
    let error = use_state(|| None::<String>);
    // The interaction layer: series hidden from the legend, a pinned earlier run, the point
    // under the pointer or the keyboard focus, and where the last drawing put the data.
    let hidden = use_state(Vec::<String>::new);
    let pinned = use_state(|| None::<(Rc<PlotSpec>, AttrValue)>);
    let focus = use_state(|| None::<PointRef>);
    let frame = use_mut_ref(|| None::<Frame>);
    let context = use_context::<PlotContext>().unwrap_or_default();
    let change = pinned.as_ref().map(|(_, query)| describe_change(query, &context.query));
    let drawn = use_memo((props.spec.clone(), (*hidden).clone(), (*pinned).clone(), change.clone()), |(spec, hidden, pinned, change)| {
        Rc::new(spec.view(hidden, pinned.as_ref().map(|(ghost, _)| (&**ghost, change.as_deref().unwrap_or("")))))
    });
    {
        // Redraw when the window (or presenter mode) changes the column's width.
        let resize_tick = resize_tick.clone();
        use_effect_with((), move |_| {
            let listener = Closure::<dyn FnMut()>::new(move || resize_tick.set(js_sys::Math::random().to_bits() as u32));
            let window = dom::window();
            let _ = window.add_event_listener_with_callback("resize", listener.as_ref().unchecked_ref());
            let _ = window.add_event_listener_with_callback(crate::ui::slides::ZOOM_EVENT, listener.as_ref().unchecked_ref());
            move || {
                let _ = window.remove_event_listener_with_callback("resize", listener.as_ref().unchecked_ref());
                let _ = window.remove_event_listener_with_callback(crate::ui::slides::ZOOM_EVENT, listener.as_ref().unchecked_ref());
            }
        });
    }
    {
        let (canvas, height, error, frame, focus) = (canvas.clone(), props.height, error.clone(), frame.clone(), focus.clone());
        use_effect_with(((*drawn).clone(), *resize_tick), move |(spec, _)| {
            // A new drawing: the focused point may no longer exist.
            focus.set(None);
            // Each plot draws in a task of its own, so that a page of plots does not hold the
            // main thread in one long task.
            let spec = spec.clone();
            dom::after(0, move || {
                if let Some(el) = canvas.cast::<HtmlCanvasElement>() {
                    let result = draw(&el, &spec, height, false);
                    *frame.borrow_mut() = result.as_ref().ok().copied();
                    let message = result.err();
                    if *error != message {
                        error.set(message);
                    }
                }
            });
        });
    }
    let on_csv = {
        let spec = props.spec.clone();
        Callback::from(move |_| dom::download_text(&format!("{}.csv", spec.id), "text/csv", &spec.to_csv()))
    };
    let on_png = {
        let (canvas, drawn, height) = (canvas.clone(), drawn.clone(), props.height);
        Callback::from(move |_| {
            if let Some(el) = canvas.cast::<HtmlCanvasElement>() {
                // The image carries its legend (on screen the legend is the row of buttons).
                let _ = draw(&el, &drawn, height, true);
                if let Ok(url) = el.to_data_url() {
                    dom::download_url(&format!("{}.png", drawn.id), &url);
                }
                let _ = draw(&el, &drawn, height, false);
            }
        })
    };
    let on_pin = {
        let (pinned, spec, query) = (pinned.clone(), props.spec.clone(), context.query.clone());
        Callback::from(move |_| pinned.set(if pinned.is_some() { None } else { Some((spec.clone(), query.clone())) }))
    };
    let on_move = {
        let (drawn, frame, focus, canvas) = (drawn.clone(), frame.clone(), focus.clone(), canvas.clone());
        Callback::from(move |e: MouseEvent| {
            let Some(el) = canvas.cast::<HtmlCanvasElement>() else { return };
            // Canvas pixels per screen pixel, measured: right under any CSS zoom (presenter slides).
            let rect = el.get_bounding_client_rect();
            let ratio = el.width() as f64 / rect.width().max(1.0);
            let pixel = ((e.client_x() as f64 - rect.left()) * ratio, (e.client_y() as f64 - rect.top()) * ratio);
            let hit = frame.borrow().as_ref().and_then(|f| drawn.nearest(f, pixel, HOVER_RADIUS * ratio));
            if *focus != hit {
                focus.set(hit);
            }
        })
    };
    let on_leave = {
        let focus = focus.clone();
        Callback::from(move |_: MouseEvent| focus.set(None))
    };
    let on_key = {
        let (drawn, focus) = (drawn.clone(), focus.clone());
        Callback::from(move |e: KeyboardEvent| {
            let order = drawn.points_in_order();
            if order.is_empty() {
                return;
            }
            let at = focus.and_then(|f| order.iter().position(|p| *p == f));
            let next_series = |step: isize| {
                let current = at.map_or(0, |i| order[i].0);
                let series: Vec<usize> = order.iter().map(|p| p.0).fold(Vec::new(), |mut v, s| {
                    if v.last() != Some(&s) {
                        v.push(s);
                    }
                    v
                });
                let k = series.iter().position(|s| *s == current).unwrap_or(0) as isize;
                let target = series[(k + step).rem_euclid(series.len() as isize) as usize];
                order.iter().position(|p| p.0 == target)
            };
            let moved = match e.key().as_str() {
                "ArrowRight" => Some(at.map_or(0, |i| (i + 1).min(order.len() - 1))),
                "ArrowLeft" => Some(at.map_or(0, |i| i.saturating_sub(1))),
                "ArrowDown" => next_series(1),
                "ArrowUp" => next_series(-1),
                "Home" => Some(0),
                "End" => Some(order.len() - 1),
                "Escape" => {
                    focus.set(None);
                    return;
                }
                _ => return,
            };
            // The arrows read the plot here; they must not also turn the presenter's slides.
            e.prevent_default();
            e.stop_propagation();
            focus.set(moved.map(|i| order[i]));
        })
    };
    let on_focus = {
        let (drawn, focus) = (drawn.clone(), focus.clone());
        Callback::from(move |_: FocusEvent| {
            if focus.is_none() {
                focus.set(drawn.points_in_order().first().copied());
            }
        })
    };
    let on_blur = {
        let focus = focus.clone();
        Callback::from(move |_: FocusEvent| focus.set(None))
    };
    // The focused point: its words, and where to put the ring and the label (CSS pixels).
    let ratio = canvas.cast::<web_sys::Element>().map_or_else(dom::device_pixel_ratio, |el| dom::pixel_ratio_of(&el));
    let focused = focus.filter(|(s, i)| drawn.series.get(*s).is_some_and(|series| *i < series.points.len())).and_then(|point| {
        let frame = (*frame.borrow())?;
        let (x, y) = frame.to_pixel(drawn.series[point.0].points[point.1]);
        Some((drawn.describe(point), x / ratio, y / ratio))
    });
    let legend = props.spec.legend && props.spec.series.len() + props.spec.markers.len() > 1;
    let toggle = |name: String| {
        let hidden = hidden.clone();
        Callback::from(move |_| {
            let mut next = (*hidden).clone();
            match next.iter().position(|n| *n == name) {
                Some(i) => {
                    next.remove(i);
                }
                None => next.push(name.clone()),
            }
            hidden.set(next);
        })
    };
    let title = props.spec.title.clone();
    // Words for the canvas: a sentence computed from the data, and the numbers on request.
    let summary = use_memo(props.spec.clone(), |spec| spec.summary());
    let show_data = use_state(|| false);
    let on_data = {
        let show_data = show_data.clone();
        Callback::from(move |_: MouseEvent| show_data.set(!*show_data))
    };
    let summary_id = format!("{}-summary", props.spec.id);
    html! {
        <figure class="plot" data-plot={props.spec.id.clone()}>
            <div class="plot-canvas">
                <canvas ref={canvas} role="img" tabindex="0" aria-describedby={summary_id.clone()}
                    aria-label={format!("{title}. Arrow keys read the points; the Data button shows every value.")}
                    style={format!("height:{}px", props.height)}
                    onmousemove={on_move} onmouseleave={on_leave} onkeydown={on_key} onfocus={on_focus} onblur={on_blur} />
                if let Some((text, x, y)) = &focused {
                    <span class="plot-ring" style={format!("left:{x:.1}px;top:{y:.1}px")} />
                    <span class={classes!("plot-tip", (*x > 260.0).then_some("left"))} style={format!("left:{x:.1}px;top:{y:.1}px")}>{ text.clone() }</span>
                }
                <span class="visually-hidden" role="status" aria-live="polite">{ focused.as_ref().map(|f| f.0.clone()).unwrap_or_default() }</span>
            </div>
            if let Some(e) = &*error { <p class="inline-error">{ format!("This plot could not be drawn: {e}") }</p> }
            <figcaption>
                if legend {
                    <span class="plot-legend" role="group" aria-label={format!("Series of “{title}”: click to hide or show")}>
                        { for props.spec.series.iter().map(|s| {
                            let shown = !hidden.contains(&s.name);
                            html! {
                                <button class={classes!("legend-entry", (!shown).then_some("off"))} aria-pressed={shown.to_string()}
                                    title={if shown { format!("Hide “{}”", s.name) } else { format!("Show “{}”", s.name) }}
                                    onclick={toggle(s.name.clone())}>
                                    <span class={classes!("swatch", s.dashed.then_some("dashed"))} style={format!("background:{}", css_color(s.color))} />
                                    { s.name.clone() }
                                </button>
                            }
                        }) }
                        { for props.spec.markers.iter().map(|m| html! {
                            <span class="legend-entry marker"><span class="swatch line" style={format!("border-color:{}", css_color(m.color))} />{ m.label.clone() }</span>
                        }) }
                    </span>
                }
                if let Some(change) = &change {
                    <span class="ghost-note">{ format!("faint: the pinned run ({change})") }</span>
                }
                <span class="plot-buttons">
                    <button class="small" onclick={on_data} aria-expanded={show_data.to_string()} aria-label={format!("Data: {}", props.spec.title)}
                        title="Show the plotted numbers as a table">{ "Data" }</button>
                    <button class="small" onclick={on_pin} aria-pressed={pinned.is_some().to_string()} aria-label={format!("Pin: {}", props.spec.title)}
                        title="Keep this run as a faint ghost under the next ones, to compare before and after">
                        { if pinned.is_some() { "Unpin" } else { "Pin" } }
                    </button>
                    <button class="small" onclick={on_csv} title="Download the plotted data as CSV" aria-label={format!("CSV: {}", props.spec.title)}>{ "CSV" }</button>
                    <button class="small" onclick={on_png} title="Save the plot as a PNG image" aria-label={format!("PNG: {}", props.spec.title)}>{ "PNG" }</button>
                </span>
            </figcaption>
            <p class="plot-summary" id={summary_id}>{ (*summary).clone() }</p>
            if *show_data {
                { data_table(&props.spec) }
            }
        </figure>
    }
}

/// `decades`: the axis span in powers of ten; wide log axes label whole powers only.
fn tick_label(v: f64, is_log10: bool, decades: f64) -> String {
    if is_log10 {
        if decades >= 1.5 && (v - v.round()).abs() > 1e-9 {
            String::new()
        } else {
            fmt_log10_tick(v)
        }
    } else {
        let a = v.abs();
        // A tick at zero computed as a sum of steps lands at ±1e-17: it reads "0".
        if a < 1e-9 * decades.abs() {
            return "0".into();
        }
        if a != 0.0 && !(1e-3..1e7).contains(&a) {
            // Three significant digits at most: ticks 1.2e7 and 1.4e7 must not both read "1e7".
            let s = format!("{v:.2e}");
            let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, ""));
            format!("{}e{exponent}", mantissa.trim_end_matches('0').trim_end_matches('.'))
        } else {
            let s = format!("{v:.4}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

/// Draw at device pixels: canvas.width = CSS width × devicePixelRatio, fonts and lines scaled.
/// `legend`: draw the series legend on the canvas too (the PNG export; on screen the legend is
/// the row of toggle buttons under the plot). Returns where the data landed, for hover.
/// Dots at `points`, as one path filled once on the canvas, clipped to the plotting area. Drawn
/// through plotters, every dot is a change of the canvas's fill style and a fill of its own: a
/// scatter of a few thousand replications then held the main thread for about 70 ms.
fn fill_dots<DB: DrawingBackend>(
    canvas: &HtmlCanvasElement,
    chart: &ChartContext<DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>,
    points: impl Iterator<Item = (f64, f64)>,
    radius: i32,
    color: RGBAColor,
) -> Result<(), String> {
    use wasm_bindgen::JsCast;
    let context = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
        .ok_or("no 2-D context")?;
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    context.save();
    context.begin_path();
    context.rect(xs.start as f64, ys.start as f64, (xs.end - xs.start) as f64, (ys.end - ys.start) as f64);
    context.clip();
    context.begin_path();
    let r = radius.max(1) as f64;
    for p in points {
        let (x, y) = chart.backend_coord(&p);
        context.move_to(x as f64 + r, y as f64);
        let _ = context.arc(x as f64, y as f64, r, 0.0, std::f64::consts::TAU);
    }
    let RGBAColor(red, green, blue, alpha) = color;
    context.set_fill_style_str(&format!("rgba({red},{green},{blue},{alpha})"));
    context.fill();
    context.restore();
    Ok(())
}

/// Rows shown in a plot's data table (the scatter of replications has thousands; the CSV has all).
const DATA_ROWS: usize = 400;

fn data_table(spec: &PlotSpec) -> Html {
    let (table, total) = spec.data_table(DATA_ROWS);
    let caption = if total > table.rows.len() {
        format!("The numbers of “{}”: the first {} of {total} points (the CSV has every one).", spec.title, table.rows.len())
    } else {
        format!("The numbers of “{}”.", spec.title)
    };
    html! { <crate::ui::widgets::Table spec={Rc::new(table)} caption={AttrValue::from(caption)} /> }
}

pub fn draw(canvas: &HtmlCanvasElement, spec: &PlotSpec, css_height: f64, legend: bool) -> Result<Frame, String> {
    let ratio = dom::pixel_ratio_of(canvas);
    let css_width = canvas.parent_element().map(|p| p.client_width() as f64).unwrap_or(600.0).max(200.0);
    canvas.set_width((css_width * ratio) as u32);
    canvas.set_height((css_height * ratio) as u32);
    canvas.style().set_property("width", &format!("{css_width}px")).ok();
    let px = |v: f64| (v * ratio).round() as i32;
    let font = |size: f64| ("sans-serif", size * ratio).into_font();
    let backend = CanvasBackend::with_canvas_object(canvas.clone()).ok_or("no 2-D context")?;
    let root = backend.into_drawing_area();
    let e = |err: DrawingAreaErrorKind<_>| format!("{err:?}");
    root.fill(&WHITE).map_err(e)?;
    let ((x0, x1), (y0, y1)) = spec.ranges();
    // The title, wrapped to the canvas's width (plotters' caption is one line, centred).
    let title_font = font(15.0);
    let title_width = css_width * ratio - 2.0 * px(10.0) as f64;
    // Measured by the canvas (plotters' own measure lays out a fixed span, which wraps at the
    // viewport's width: at a device pixel ratio of 2 a phone's long title measured as fitting).
    let context = canvas.get_context("2d").ok().flatten().and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok());
    let text_width = |size: f64, text: &str| -> f64 {
        context.as_ref().map_or(0.0, |c| {
            c.set_font(&format!("{}px sans-serif", size * ratio));
            c.measure_text(text).map_or(0.0, |m| m.width())
        })
    };
    let fits = |line: &str| text_width(15.0, line) <= title_width;
    let lines = if fits(&spec.title) { vec![spec.title.clone()] } else { wrap_words(&spec.title, fits) };
    let line_height = px(19.0);
    for (i, line) in lines.iter().enumerate() {
        let at = ((css_width * ratio / 2.0) as i32, px(8.0) + i as i32 * line_height);
        root.draw(&Text::new(line.as_str(), at, title_font.color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)))).map_err(e)?;
    }
    let below_title = root.margin(px(8.0) + lines.len() as i32 * line_height, 0, 0, 0);
    // The x label nearest the right end is centred on its tick: the right margin holds what of
    // it passes the plot's edge (a 10 px margin cut "1050" in two on a phone). Plotters' own
    // ticks are not known here: their label at the edge is the worst case.
    let last_tick = match &spec.x_ticks {
        Some(ticks) => ticks.iter().max_by(|a, b| a.0.total_cmp(&b.0)).cloned(),
        None if spec.x_is_log10 => log10_ticks(x0, x1).pop().or_else(|| Some((x1, tick_label(x1, true, x1 - x0)))),
        None => Some((x1, tick_label(x1, false, x1 - x0))),
    };
    let right_margin = last_tick.map_or(10.0, |(at, label)| {
        let half = text_width(12.0, &label) / ratio / 2.0;
        // The plot's width with the largest margin this can take: the tick's room is then least.
        let room = if x1 > x0 { (x1 - at).max(0.0) / (x1 - x0) * (css_width - 72.0 - half).max(0.0) } else { 0.0 };
        (half + 3.0 - room).max(10.0)
    });
    // Named x ticks (categories) that would touch are drawn on two alternating rows, below.
    let named_ticks = spec.x_ticks.clone().unwrap_or_default();
    let staggered = {
        // The plot's width: the canvas less the margins and the y labels' area (as built below).
        let plot_width = css_width - 10.0 - right_margin - 62.0;
        let centres: Vec<f64> = named_ticks.iter().map(|(v, _)| (v - x0) / (x1 - x0) * plot_width).collect();
        let widths: Vec<f64> = named_ticks.iter().map(|(_, label)| text_width(12.0, label) / ratio).collect();
        labels_collide(&centres, &widths, 6.0)
    };
    let mut chart = ChartBuilder::on(&below_title)
        .margin(px(10.0))
        .margin_right(px(right_margin))
        .x_label_area_size(px(if staggered { 58.0 } else { 44.0 }))
        .y_label_area_size(px(62.0))
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    // Log axes get round ticks (1, 2, 5 × 10^k), drawn below; plotters' own evenly spaced ones
    // would read 3.16, 6.31, …, so they stay unlabelled and without grid lines.
    let (x_log_ticks, y_log_ticks) = (
        if spec.x_is_log10 && spec.x_ticks.is_none() { log10_ticks(x0, x1) } else { Vec::new() },
        if spec.y_is_log10 { log10_ticks(y0, y1) } else { Vec::new() },
    );
    let x_ticks = spec.x_ticks.clone();
    let x_round = !x_log_ticks.is_empty();
    let x_format = move |v: &f64| match &x_ticks {
        Some(_) if staggered => String::new(),
        Some(ticks) => ticks.iter().find(|(t, _)| (t - v).abs() < 1e-6).map(|(_, l)| l.clone()).unwrap_or_default(),
        None if x_round => String::new(),
        None => tick_label(*v, spec.x_is_log10, x1 - x0),
    };
    let y_round = !y_log_ticks.is_empty();
    let y_format = |v: &f64| if y_round { String::new() } else { tick_label(*v, spec.y_is_log10, y1 - y0) };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(spec.x_label.as_str())
        .y_desc(spec.y_label.as_str())
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(220, 220, 220));
    if let Some(ticks) = &spec.x_ticks {
        mesh.x_labels(ticks.len() + 1);
    } else {
        // About one label per 70 CSS pixels: on a phone, ten would overlap.
        mesh.x_labels(((css_width - 80.0) / 70.0).clamp(3.0, 10.0) as usize);
    }
    if x_round {
        mesh.disable_x_mesh();
        mesh.set_tick_mark_size(LabelAreaPosition::Bottom, 0);
    }
    if y_round {
        mesh.disable_y_mesh();
        mesh.set_tick_mark_size(LabelAreaPosition::Left, 0);
    }
    mesh.draw().map_err(e)?;
    if staggered {
        for (i, (v, label)) in named_ticks.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(*v, y0));
            let style = font(12.0).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(label.clone(), (x, y + px(6.0 + 15.0 * (i % 2) as f64)), style)).map_err(e)?;
        }
    }
    let grid = RGBColor(220, 220, 220).stroke_width(1);
    // A label only where it has room (56 CSS pixels from any other): 1, 2, 5 × 10^k over several
    // decades would overlap on a phone. Whole decades first; every grid line stays.
    let along_x: Vec<(f64, f64)> = x_log_ticks.iter().map(|(v, _)| (*v, chart.backend_coord(&(*v, y0)).0 as f64)).collect();
    for ((v, label), show) in x_log_ticks.iter().zip(log_labels_with_room(&along_x, px(56.0) as f64)) {
        chart.draw_series(std::iter::once(PathElement::new(vec![(*v, y0), (*v, y1)], grid))).map_err(e)?;
        if show {
            let (x, y) = chart.backend_coord(&(*v, y0));
            let style = font(12.0).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(label.clone(), (x, y + px(6.0)), style)).map_err(e)?;
        }
    }
    // A label's height plus a little: 0.09 and 0.1 on a short axis would overlap.
    let along_y: Vec<(f64, f64)> = y_log_ticks.iter().map(|(v, _)| (*v, chart.backend_coord(&(x0, *v)).1 as f64)).collect();
    for ((v, label), show) in y_log_ticks.iter().zip(log_labels_with_room(&along_y, px(15.0) as f64)) {
        chart.draw_series(std::iter::once(PathElement::new(vec![(x0, *v), (x1, *v)], grid))).map_err(e)?;
        if show {
            let (x, y) = chart.backend_coord(&(x0, *v));
            let style = font(12.0).color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(label.clone(), (x - px(6.0), y), style)).map_err(e)?;
        }
    }
    let stroke = px(2.0).max(1) as u32;
    for series in &spec.series {
        // A pinned run: faint and thin, under the current series (which come after it).
        let (c, stroke) =
            if series.ghost { (color(series.color).mix(0.35), px(1.5).max(1) as u32) } else { (color(series.color).mix(1.0), stroke) };
        let style = c.stroke_width(stroke);
        let points = series.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite());
        let legend_style = style;
        let anno = match series.style {
            Style::Line | Style::LinePoints if series.dashed => {
                chart.draw_series(DashedLineSeries::new(points.clone(), px(6.0), px(4.0), style)).map_err(e)?
            }
            Style::Line | Style::LinePoints => chart.draw_series(LineSeries::new(points.clone(), style)).map_err(e)?,
            Style::Points => {
                fill_dots(canvas, &chart, points.clone(), px(3.0), c)?;
                chart.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>()).map_err(e)?
            }
            Style::Bars { width } => chart
                .draw_series(
                    points.clone().map(|(x, y)| Rectangle::new([(x - width / 2.0, 0.0), (x + width / 2.0, y)], c.mix(0.85).filled())),
                )
                .map_err(e)?,
        };
        anno.label(series.name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - px(4.0)), (x + px(14.0), y + px(4.0))], legend_style.color.filled()));
        // A line through one point draws nothing (a preview after one epoch): show the point.
        let lone_point = series.style == Style::Line && points.clone().count() == 1;
        if series.style == Style::LinePoints || lone_point {
            fill_dots(canvas, &chart, points.clone(), px(3.0), c)?;
        }
        if let Some(errors) = &series.errors {
            let bars = series.points.iter().zip(errors).filter(|((x, y), err)| x.is_finite() && y.is_finite() && err.is_finite());
            let dark = RGBColor(40, 40, 40).stroke_width(px(1.5).max(1) as u32);
            chart.draw_series(bars.map(|((x, y), err)| PathElement::new(vec![(*x, y - err), (*x, y + err)], dark))).map_err(e)?;
        }
    }
    for marker in &spec.markers {
        let c = color(marker.color);
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(marker.x, y0), (marker.x, y1)],
                px(5.0),
                px(4.0),
                c.stroke_width(stroke),
            )))
            .map_err(e)?
            .label(marker.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + px(14.0), y)], c.stroke_width(stroke)));
    }
    if legend && spec.legend && spec.series.len() + spec.markers.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(font(12.0))
            .position(match spec.legend_at {
                LegendAt::UpperRight => SeriesLabelPosition::UpperRight,
                LegendAt::UpperLeft => SeriesLabelPosition::UpperLeft,
                LegendAt::LowerLeft => SeriesLabelPosition::LowerLeft,
                LegendAt::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    Ok(Frame {
        left: xs.start as f64,
        top: ys.start as f64,
        width: (xs.end - xs.start) as f64,
        height: (ys.end - ys.start) as f64,
        x: (x0, x1),
        y: (y0, y1),
    })
}
