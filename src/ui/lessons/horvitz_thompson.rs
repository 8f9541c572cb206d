//! UI of the lesson "Horvitz–Thompson for slates": the variance lab's report as tables and plots.
//! The estimators are in `core::horvitz_thompson`.

use crate::core::horvitz_thompson::lesson::{HorvitzThompsonLesson, HorvitzThompsonReport, SpreadPoint};
use crate::core::stats::quantile;
use crate::plot::{fmt_sig, LegendAt, PlotSpec, Series, Style, TableSpec, REFERENCE};
use crate::ui::lesson_page::{use_lesson, waiting, LessonProps};
use crate::ui::plot::Plot;
use crate::ui::widgets::Table;
use std::rc::Rc;
use yew::prelude::*;

pub fn view(props: LessonProps) -> Html {
    html! { <HorvitzThompsonPage ..props /> }
}

#[component]
fn HorvitzThompsonPage(props: &LessonProps) -> Html {
    let state = use_lesson::<HorvitzThompsonLesson>(props);
    let figures = use_memo(state.report.clone(), |r| r.as_deref().map(Figures::from));
    let text = props.lesson.text();
    let synthetic = state.params.world == "synthetic";
    state.render(text, props.slide.as_ref(), |name, _args| {
        let Some(f) = figures.as_ref() else { return waiting() };
        let plot = |spec: &Option<Rc<PlotSpec>>, why_not: &str| match spec {
            Some(spec) => html! { <Plot spec={spec.clone()} /> },
            None => html! { <p class="hint">{ why_not.to_string() }</p> },
        };
        match name {
            "truth" => html! { <div class="callout" data-testid="truth">{ f.truth_line.clone() }</div> },
            "estimator-table" => html! { <Table spec={f.table.clone()} caption={f.table_caption.clone()} /> },
            "distributions" => html! {
                <>
                    <Plot spec={f.distributions.clone()} height={340.0} />
                    if !f.clipped_note.is_empty() { <p class="hint">{ f.clipped_note.clone() }</p> }
                </>
            },
            "bias-variance" => html! { <Plot spec={f.bias_variance.clone()} /> },
            "mse-vs-n" => html! { <Plot spec={f.mse_vs_n.clone()} height={380.0} /> },
            // About as tall as the plot it stands for: the controls below stay where they were
            // while their slider is dragged. (The toy world has no curve over P to wait for.)
            "spread-vs-k" | "spread-vs-p" if f.spreads_pending && (name == "spread-vs-k" || synthetic) => {
                html! { <p class="hint plot-pending">{ "This preview leaves the spread curves out; the full report draws them." }</p> }
            }
            "spread-vs-k" => html! { <Plot spec={f.spread_vs_k.clone()} /> },
            "spread-vs-p" => plot(&f.spread_vs_p, "The toy world has 7 items; choose the synthetic world to vary P."),
            "cap-sweep" => html! { <Plot spec={f.cap_sweep.clone()} /> },
            "scatter" => {
                plot(&f.scatter, "This logging policy draws slates with repeated items, which this picture does not list; choose a policy without replacement.")
            }
            other => html! { <p class="inline-error">{ format!("unknown widget “{other}”") }</p> },
        }
    })
}

struct Figures {
    truth_line: String,
    table: Rc<TableSpec>,
    table_caption: AttrValue,
    distributions: Rc<PlotSpec>,
    clipped_note: String,
    bias_variance: Rc<PlotSpec>,
    mse_vs_n: Rc<PlotSpec>,
    spread_vs_k: Rc<PlotSpec>,
    spread_vs_p: Option<Rc<PlotSpec>>,
    /// A preview without the spreads.
    spreads_pending: bool,
    cap_sweep: Rc<PlotSpec>,
    scatter: Option<Rc<PlotSpec>>,
}

fn pct(x: f64) -> String {
    format!("{:.3} %", x * 100.0)
}

fn log10_floor(x: f64) -> f64 {
    x.max(1e-14).log10()
}

fn spread_plot(id: &str, title: &str, x_label: &str, points: &[SpreadPoint], x: impl Fn(&SpreadPoint) -> f64, x_log: bool) -> PlotSpec {
    let mut spec = PlotSpec::new(id, title, x_label, "s.d. of the estimate, clicks/slate (log)");
    for (name, color, pick) in [
        ("HT / slate IPS", 0, (|p: &SpreadPoint| p.ht_sd) as fn(&SpreadPoint) -> f64),
        ("item-position IPS", 5, |p: &SpreadPoint| p.iips_sd),
        ("pseudo-inverse", 6, |p: &SpreadPoint| p.pi_sd),
    ] {
        spec.series.push(Series::new(name, Style::LinePoints, points.iter().map(|p| (x(p), log10_floor(pick(p)))).collect(), color));
    }
    spec.y_is_log10 = true;
    spec.x_is_log10 = x_log;
    spec.legend_at = LegendAt::UpperLeft;
    spec
}

impl From<&HorvitzThompsonReport> for Figures {
    fn from(r: &HorvitzThompsonReport) -> Figures {
        let t = &r.truth;
        let how = if t.method == "enumeration" {
            format!("exact, by enumerating {} (user, slate) pairs", t.count)
        } else {
            format!("Monte Carlo over {} slates drawn from π, ± {}", t.count, pct(t.se))
        };
        let mut truth_line =
            format!("True value of π: V(π) = {} expected clicks per slate ({how}). π₀ = {}; π = {}.", pct(t.value), r.logging, r.target);
        if t.uncovered_mass > 0.0 {
            truth_line.push_str(&format!(
                " Warning: π puts {:.1} % of its mass on slates π₀ never shows (repeated items): no importance weight can see them.",
                t.uncovered_mass * 100.0
            ));
        }

        let table = TableSpec {
            id: "estimators".into(),
            headers: ["estimator", "mean", "bias", "variance", "MSE", "√MSE", "mean reported s.e.", "95 % coverage", "mean ESS"]
                .map(String::from)
                .to_vec(),
            rows: r
                .estimators
                .iter()
                .map(|e| {
                    vec![
                        e.label.clone(),
                        pct(e.mean),
                        format!("{:+.3} %", e.bias * 100.0),
                        fmt_sig(e.variance),
                        fmt_sig(e.mse),
                        pct(e.mse.sqrt()),
                        pct(e.mean_reported_se),
                        format!("{:.0} %", e.coverage * 100.0),
                        format!("{:.0}", e.mean_ess),
                    ]
                })
                .collect(),
        };
        let table_caption = format!("{} replications of N = {} logged rows each; truth {}", r.replications, r.logs, pct(t.value)).into();

        // Strip plot: every replication's estimate, jittered around its estimator's column.
        let mut distributions =
            PlotSpec::new("estimator-distributions", "Estimates over the replications (line: the truth)", "", "estimated V(π) (%)");
        let mut all: Vec<f64> = r.estimators.iter().flat_map(|e| e.values.iter().map(|v| v * 100.0)).filter(|v| v.is_finite()).collect();
        all.sort_by(f64::total_cmp);
        let (lo, hi) = (quantile(&all, 0.01).min(t.value * 100.0), quantile(&all, 0.99).max(t.value * 100.0));
        let pad = (hi - lo).max(1e-6) * 0.08;
        let (y0, y1) = (lo - pad, hi + pad);
        let mut clipped = 0;
        for (i, e) in r.estimators.iter().enumerate() {
            let x = i as f64 + 1.0;
            let points: Vec<(f64, f64)> = e
                .values
                .iter()
                .enumerate()
                .map(|(j, v)| (x + ((j as f64 * 0.618_034) % 1.0 - 0.5) * 0.6, v * 100.0))
                .filter(|(_, v)| {
                    let inside = *v >= y0 && *v <= y1;
                    clipped += usize::from(!inside);
                    inside
                })
                .collect();
            distributions.series.push(Series::new(e.label.clone(), Style::Points, points, i as u32));
        }
        let n = r.estimators.len() as f64;
        distributions
            .series
            .push(Series::new("truth", Style::Line, vec![(0.5, t.value * 100.0), (n + 0.5, t.value * 100.0)], REFERENCE).dashed());
        distributions.x_ticks = Some(r.estimators.iter().enumerate().map(|(i, e)| (i as f64 + 1.0, e.name.clone())).collect());
        distributions.legend = false;
        distributions.y_range = Some((y0, y1));
        let clipped_note = if clipped > 0 {
            format!("{clipped} estimates fall outside the plotted range (the 1 %–99 % quantiles of all estimates): heavy tails.")
        } else {
            String::new()
        };

        let mut bias_variance = PlotSpec::new("bias-variance", "Bias², variance and MSE of each estimator", "", "(log scale)");
        for (name, color, pick) in [
            ("bias²", 1, (|e: &crate::core::horvitz_thompson::lesson::EstimatorSummary| e.bias * e.bias) as fn(&_) -> f64),
            ("variance", 0, |e| e.variance),
            ("MSE", REFERENCE, |e| e.mse),
        ] {
            let pts = r.estimators.iter().enumerate().map(|(i, e)| (i as f64 + 1.0, log10_floor(pick(e)))).collect();
            bias_variance.series.push(Series::new(name, if name == "MSE" { Style::LinePoints } else { Style::Points }, pts, color));
        }
        bias_variance.x_ticks = distributions.x_ticks.clone();
        bias_variance.y_is_log10 = true;

        let mut mse_vs_n = PlotSpec::new("mse-vs-n", "MSE as the log grows (log–log)", "logged rows N (log scale)", "MSE (log scale)");
        for (i, e) in r.estimators.iter().enumerate() {
            let pts = r.n_grid.iter().zip(&r.mse_vs_n[i]).map(|(n, m)| ((*n as f64).log10(), log10_floor(*m))).collect();
            mse_vs_n.series.push(Series::new(e.label.clone(), Style::LinePoints, pts, i as u32));
        }
        if let (Some(first), Some(&n0), Some(&n1)) = (r.mse_vs_n.first(), r.n_grid.first(), r.n_grid.last()) {
            // Reference slope −1 (variance ∝ 1/N) through the first estimator's first point.
            let start = log10_floor(first[0]);
            let (x0, x1) = ((n0 as f64).log10(), (n1 as f64).log10());
            mse_vs_n.series.push(Series::new("∝ 1/N", Style::Line, vec![(x0, start), (x1, start - (x1 - x0))], REFERENCE).dashed());
        }
        mse_vs_n.legend_at = LegendAt::LowerLeft;
        mse_vs_n.x_is_log10 = true;
        mse_vs_n.y_is_log10 = true;

        let mut spread_vs_k = spread_plot(
            "spread-vs-k",
            &format!("Spread of the estimate with N = {} rows as K grows (P = {})", r.logs, r.spread_vs_k.first().map_or(0, |p| p.p)),
            "slate size K",
            &r.spread_vs_k,
            |p| p.k as f64,
            false,
        );
        // Every slate size named: on a phone the axis had room for three automatic labels, and
        // the round step that allows (5) left one label on the axis.
        spread_vs_k.x_ticks = Some(r.spread_vs_k.iter().map(|p| (p.k as f64, p.k.to_string())).collect());
        let spread_vs_p = (!r.spread_vs_p.is_empty()).then(|| {
            Rc::new(spread_plot(
                "spread-vs-p",
                &format!("Spread of the estimate with N = {} rows as P grows (K = {})", r.logs, r.spread_vs_p[0].k),
                "catalogue size P (log scale)",
                &r.spread_vs_p,
                |p| (p.p as f64).log10(),
                true,
            ))
        });

        let mut cap_sweep =
            PlotSpec::new("cap-sweep", "Capped IPS: the bias–variance trade-off of the cap M", "cap M (log scale)", "(log scale)");
        let xs: Vec<f64> = r.cap_grid.iter().map(|m| m.log10()).collect();
        for (name, color, values) in [("bias²", 1, &r.cap_bias2), ("variance", 0, &r.cap_variance), ("MSE", REFERENCE, &r.cap_mse)] {
            cap_sweep.series.push(Series::new(
                name,
                Style::LinePoints,
                xs.iter().zip(values.iter()).map(|(x, v)| (*x, log10_floor(*v))).collect(),
                color,
            ));
        }
        cap_sweep.x_is_log10 = true;
        cap_sweep.legend_at = LegendAt::LowerRight;
        cap_sweep.y_is_log10 = true;

        let scatter = (!r.scatter.is_empty()).then(|| {
            let mut spec = PlotSpec::new(
                "per-slate-ips",
                &format!(
                    "Each slate of size {} shown to everybody: true value vs IPS estimate (replication 1{})",
                    r.scatter_slate_size,
                    if r.scatter_world == "toy" { ", the notebook's toy world" } else { "" }
                ),
                "true value of the slate (%)",
                "IPS estimate (%)",
            );
            spec.series.push(Series::new("slates", Style::Points, r.scatter.iter().map(|s| (s.truth * 100.0, s.ips * 100.0)).collect(), 0));
            let max = r.scatter.iter().map(|s| s.truth).fold(0.0, f64::max) * 100.0;
            spec.series.push(Series::new("estimate = truth", Style::Line, vec![(0.0, 0.0), (max, max)], REFERENCE).dashed());
            Rc::new(spec)
        });

        Figures {
            truth_line,
            table: Rc::new(table),
            table_caption,
            distributions: Rc::new(distributions),
            clipped_note,
            bias_variance: Rc::new(bias_variance),
            mse_vs_n: Rc::new(mse_vs_n),
            spread_vs_k: Rc::new(spread_vs_k),
            spread_vs_p,
            spreads_pending: r.spreads_pending,
            cap_sweep: Rc::new(cap_sweep),
            scatter,
        }
    }
}
