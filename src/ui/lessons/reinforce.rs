//! UI of the lesson "REINFORCE at catalogue scale": learning curves by iteration and by wall
//! time, effective sample sizes, the ε study, iterations per second and speed-up as P grows, and
//! the Plackett–Luce variance study. The math is in `core::reinforce`.

use crate::core::params::from_query;
use crate::core::reinforce::lesson::{
    MethodRun, ReinforceLesson, ReinforceParams, ReinforceReport, SpeedPoint, PUBLISHED, TIMING_MIN_MS, TIMING_MIN_STEPS,
};
use crate::core::reinforce::Method;
use crate::plot::{fmt_sig, LegendAt, PlotSpec, Series, Style, TableSpec, REFERENCE};
use crate::ui::lesson_page::{use_lesson, waiting, LessonProps};
use crate::ui::plot::Plot;
use crate::ui::widgets::Table;
use crate::ui::worker::RunStatus;
use std::rc::Rc;
use yew::prelude::*;

pub fn view(props: LessonProps) -> Html {
    html! { <ReinforcePage ..props /> }
}

#[component]
fn ReinforcePage(props: &LessonProps) -> Html {
    let state = use_lesson::<ReinforceLesson>(props);
    let figures = use_memo(state.report.clone(), |r| r.as_deref().map(Figures::from));
    // Whether the shown report's parameters have the speed sweep off (else no points yet means
    // its part has not posted them).
    let sweep_off = *use_memo(state.run.report_query.clone(), |q| from_query::<ReinforceParams>(q).0.sweep_items().is_empty());
    let text = props.lesson.text();
    state.render(text, props.slide.as_ref(), |name, _args| {
        let Some(f) = figures.as_ref() else { return waiting() };
        let errors = html! { <>{ for f.errors.iter().map(|e| html! { <p class="inline-error">{ e.clone() }</p> }) }</> };
        match name {
            "world-summary" => html! { <>{ errors }<div class="callout" data-testid="world-summary">{ f.summary.clone() }</div></> },
            "curves" => html! {
                <div class="plot-pair">
                    <Plot spec={f.by_iteration.clone()} height={300.0} />
                    <Plot spec={f.by_time.clone()} height={300.0} />
                </div>
            },
            "results-table" => html! { <Table spec={f.results.clone()} caption={f.results_caption.clone()} /> },
            "published-table" => html! {
                <Table spec={f.published.clone()} caption="Ours (this run) beside the tutorial's notebook (Twitch, P = 790,100, d = 10, GPU); speed relative to sampled REINFORCE" />
            },
            "effective-samples" => html! { <Plot spec={f.effective.clone()} height={280.0} /> },
            "epsilon" => html! {
                <div class="plot-pair">
                    <Plot spec={f.epsilon_hit.clone()} height={280.0} />
                    <Plot spec={f.epsilon_effective.clone()} height={280.0} />
                </div>
            },
            "speed" => {
                if f.speed_table.rows.is_empty() {
                    // No points: the sweep is off, or its part has not posted them yet.
                    return match (sweep_off, &state.run.status) {
                        (true, _) => html! { <p class="hint">{ "The speed sweep is off (turn it on above)." }</p> },
                        (_, RunStatus::Running { .. }) => waiting(),
                        _ => html! { <p class="hint">{ "The speed sweep gave no points (see the messages above)." }</p> },
                    };
                }
                html! {
                    <>
                        <div class="plot-pair">
                            <Plot spec={f.speed.clone()} height={300.0} />
                            <Plot spec={f.speed_up.clone()} height={300.0} />
                        </div>
                        <Table spec={f.speed_table.clone()} caption={f.speed_caption.clone()} />
                    </>
                }
            }
            "slates" => html! {
                <>
                    <Plot spec={f.slates.clone()} height={300.0} />
                    <Table spec={f.slate_table.clone()} caption="Total variance (trace of the covariance) of one gradient estimate, over the repeats." />
                </>
            },
            other => html! { <p class="inline-error">{ format!("unknown widget “{other}”") }</p> },
        }
    })
}

struct Figures {
    errors: Vec<String>,
    summary: String,
    by_iteration: Rc<PlotSpec>,
    by_time: Rc<PlotSpec>,
    results: Rc<TableSpec>,
    results_caption: AttrValue,
    published: Rc<TableSpec>,
    effective: Rc<PlotSpec>,
    epsilon_hit: Rc<PlotSpec>,
    epsilon_effective: Rc<PlotSpec>,
    speed: Rc<PlotSpec>,
    speed_up: Rc<PlotSpec>,
    speed_table: Rc<TableSpec>,
    speed_caption: AttrValue,
    slates: Rc<PlotSpec>,
    slate_table: Rc<TableSpec>,
}

fn color(method: Method) -> u32 {
    method as u32
}

fn short(method: Method) -> &'static str {
    match method {
        Method::Exact => "expected gradient",
        Method::Sampled => "REINFORCE sampled",
        Method::Uniform => "SNIS uniform",
        Method::Mixture => "SNIS + MIPS mixture",
    }
}

impl From<&ReinforceReport> for Figures {
    fn from(r: &ReinforceReport) -> Figures {
        let summary = match &r.world {
            Some(w) => format!(
                "{} items, {} with an embedding (the others no user in the observed half touched: they score 0 and the index leaves them out); \
                 {} training users, hit@1 over {} validation users; d = {}. World and SVD in {:.0} ms, HNSW index in {:.0} ms. The initial policy \
                 (θ = {}·I) has hit@1 {:.3} through the index, {} by exact argmax.",
                w.items,
                w.warm_items,
                w.train_users,
                w.eval_users,
                w.dim,
                w.world_ms,
                w.index_ms,
                w.initial_scale,
                w.initial_hit_index,
                w.initial_hit_exact.map_or_else(|| "(computing…)".to_string(), |h| format!("{h:.3}"))
            ),
            None => "building the world…".into(),
        };

        let mut by_iteration = PlotSpec::new("hit-vs-iteration", "hit@1 (through the index) as training goes", "iteration", "hit@1");
        let mut by_time = PlotSpec::new("hit-vs-time", "The same curves against training time", "training time (s)", "hit@1");
        let mut effective =
            PlotSpec::new("effective-samples", "Effective sample size of the SNIS weights, (Σω)²/Σω²", "iteration", "ESS (log scale)");
        for run in &r.training {
            let c = color(run.method);
            by_iteration.series.push(Series::new(
                short(run.method),
                Style::LinePoints,
                run.curve.iter().map(|p| (p.iteration as f64, p.hit_index)).collect(),
                c,
            ));
            by_time.series.push(Series::new(
                short(run.method),
                Style::LinePoints,
                run.curve.iter().map(|p| (p.training_ms / 1000.0, p.hit_index)).collect(),
                c,
            ));
            // The weights of self-normalised sampling only: the others draw from π itself.
            if matches!(run.method, Method::Uniform | Method::Mixture) {
                effective.series.push(Series::new(
                    short(run.method),
                    Style::LinePoints,
                    run.curve.iter().skip(1).map(|p| (p.iteration as f64, p.effective_samples.max(1.0).log10())).collect(),
                    c,
                ));
            }
        }
        by_iteration.legend_at = LegendAt::UpperLeft;
        by_time.legend_at = LegendAt::LowerRight;
        effective.y_is_log10 = true;
        // ESS ≥ 1 (log10 ≥ 0); room above the highest line for the legend.
        let top = effective.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max);
        effective.y_range = Some((0.0, top + 0.6));
        effective.legend_at = LegendAt::UpperRight;

        let results = TableSpec {
            id: "reinforce-results".into(),
            headers: [
                "method",
                "iterations",
                "training time",
                "iterations/s",
                "vs exact",
                "hit@1 (index)",
                "hit@1 (exact argmax)",
                "mean ESS",
            ]
            .map(String::from)
            .to_vec(),
            rows: r
                .training
                .iter()
                .map(|t| {
                    let mean_ess = t.mean_effective_samples().map_or(String::new(), fmt_sig);
                    vec![
                        t.method.label().to_string(),
                        t.iterations.to_string(),
                        format!("{:.2} s", t.training_ms / 1000.0),
                        fmt_sig(t.iterations_per_second()),
                        r.training_speed_up(t.method).map_or(String::new(), |v| format!("{v:.1}×")),
                        t.latest_hit_index().map_or(String::new(), |h| format!("{h:.3}")),
                        t.final_hit_exact.map_or("(at the end)".into(), |h| format!("{h:.3}")),
                        match t.method {
                            Method::Exact => "P (no sampling)".into(),
                            Method::Sampled => "S (draws from π)".into(),
                            _ => mean_ess,
                        },
                    ]
                })
                .collect(),
        };
        let results_caption =
            "Training time counts gradient steps only (not the hit@1 evaluations). hit@1: share of validation users whose top item \
                               is one of their held-out items."
                .into();
        // The tutorial's rows beside ours: its REINFORCE samples actions (our sampled one).
        let published = TableSpec {
            id: "published-fopo".into(),
            headers: [
                "method",
                "hit@1 index: ours",
                "tutorial",
                "hit@1 exact argmax: ours",
                "tutorial",
                "speed vs REINFORCE: ours",
                "tutorial",
            ]
            .map(String::from)
            .to_vec(),
            rows: [Method::Sampled, Method::Uniform, Method::Mixture]
                .into_iter()
                .zip(PUBLISHED.iter())
                .map(|(method, (name, index, exact, rate))| {
                    let ours = r.run(method);
                    let hit = |h: Option<f64>| h.map_or("not run".into(), |h| format!("{h:.4}"));
                    vec![
                        name.to_string(),
                        hit(ours.and_then(MethodRun::latest_hit_index)),
                        format!("{index:.4}"),
                        hit(ours.and_then(|o| o.final_hit_exact)),
                        format!("{exact:.4}"),
                        r.training_speed_ratio(method, Method::Sampled).map_or("–".into(), |v| format!("{v:.1}×")),
                        format!("{:.1}×", rate / PUBLISHED[0].3),
                    ]
                })
                .collect(),
        };

        let mut epsilon_hit =
            PlotSpec::new("epsilon-hit", "Mixture proposal: hit@1 after training, by ε", "ε (uniform share of q)", "hit@1 (index)");
        epsilon_hit.series.push(Series::new(
            "SNIS + MIPS mixture",
            Style::LinePoints,
            r.epsilon.iter().map(|p| (p.epsilon, p.hit_index)).collect(),
            color(Method::Mixture),
        ));
        if let Some(w) = &r.world {
            epsilon_hit.series.push(
                Series::new("initial policy", Style::Line, vec![(0.0, w.initial_hit_index), (1.0, w.initial_hit_index)], REFERENCE)
                    .dashed(),
            );
        }
        epsilon_hit.y_from_zero = true;
        epsilon_hit.legend_at = LegendAt::LowerLeft;
        let mut epsilon_effective =
            PlotSpec::new("epsilon-ess", "… and the effective sample size during training", "ε", "mean ESS (log scale)");
        epsilon_effective.series.push(Series::new(
            "SNIS + MIPS mixture",
            Style::LinePoints,
            r.epsilon.iter().map(|p| (p.epsilon, p.effective_samples.max(1.0).log10())).collect(),
            color(Method::Mixture),
        ));
        epsilon_effective.y_is_log10 = true;
        epsilon_effective.legend = false;

        let mut speed = PlotSpec::new(
            "speed-vs-p",
            "Iterations per second as the catalogue grows",
            "catalogue size P (log scale)",
            "iterations/s (log scale)",
        );
        let mut speed_up =
            PlotSpec::new("speed-up-vs-p", "Speed-up over the exact gradient", "catalogue size P (log scale)", "× exact (log scale)");
        // (log10 P, log10 value) for every catalogue where the value is positive.
        let log_log = |value: &dyn Fn(&SpeedPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            r.speed.iter().filter_map(|p| value(p).filter(|v| *v > 0.0).map(|v| ((p.items as f64).log10(), v.log10()))).collect()
        };
        for method in Method::ALL {
            speed.series.push(Series::new(short(method), Style::LinePoints, log_log(&|p| p.per_second(method)), color(method)));
            if method != Method::Exact {
                speed_up.series.push(Series::new(short(method), Style::LinePoints, log_log(&|p| p.speed_up(method)), color(method)));
            }
        }
        if let (Some(first), Some(last)) = (r.speed.first(), r.speed.last()) {
            let (a, b) = ((first.items as f64).log10(), (last.items as f64).log10());
            speed_up.series.push(Series::new("1× (no gain)", Style::Line, vec![(a, 0.0), (b, 0.0)], REFERENCE).dashed());
        }
        speed.x_is_log10 = true;
        speed.y_is_log10 = true;
        speed.legend_at = LegendAt::LowerLeft;
        speed_up.x_is_log10 = true;
        speed_up.y_is_log10 = true;
        speed_up.legend_at = LegendAt::UpperLeft;
        let speed_table = TableSpec {
            id: "speed-vs-p".into(),
            headers: [
                "P",
                "with embedding",
                "world + index",
                "exact it/s",
                "REINFORCE it/s",
                "uniform it/s",
                "mixture it/s",
                "uniform ÷ exact",
                "mixture ÷ exact",
            ]
            .map(String::from)
            .to_vec(),
            rows: r
                .speed
                .iter()
                .map(|p| {
                    let rate = |m| p.per_second(m).map_or(String::new(), fmt_sig);
                    let up = |m| p.speed_up(m).map_or(String::new(), |v| format!("{v:.1}×"));
                    vec![
                        p.items.to_string(),
                        p.warm_items.to_string(),
                        format!("{:.0} ms", p.build_ms),
                        rate(Method::Exact),
                        rate(Method::Sampled),
                        rate(Method::Uniform),
                        rate(Method::Mixture),
                        up(Method::Uniform),
                        up(Method::Mixture),
                    ]
                })
                .collect(),
        };

        let mut slates = PlotSpec::new(
            "slate-gradient-variance",
            "Plackett–Luce REINFORCE: variance of the gradient estimate",
            "slates per estimate (log scale)",
            "total variance (log scale)",
        );
        let log_points = |f: &dyn Fn(&crate::core::reinforce::plackett_luce::VariancePoint) -> f64| -> Vec<(f64, f64)> {
            r.slates.iter().filter(|p| f(p) > 0.0).map(|p| ((p.samples as f64).log10(), f(p).log10())).collect()
        };
        slates.series.push(Series::new("no baseline", Style::LinePoints, log_points(&|p| p.variance_plain), 3));
        slates.series.push(Series::new("leave-one-out baseline", Style::LinePoints, log_points(&|p| p.variance_baseline), 4));
        slates.series.push(Series::new("‖mean gradient‖² (the signal)", Style::Line, log_points(&|p| p.squared_norm), REFERENCE).dashed());
        slates.x_is_log10 = true;
        slates.y_is_log10 = true;
        slates.legend_at = LegendAt::UpperRight;
        let slate_table = TableSpec {
            id: "slate-gradient-variance".into(),
            headers: ["slates per estimate", "variance, no baseline", "variance, baseline", "ratio"].map(String::from).to_vec(),
            rows: r
                .slates
                .iter()
                .map(|p| {
                    let ratio = p.variance_reduction().map_or(String::new(), |v| format!("{v:.1}×"));
                    vec![p.samples.to_string(), fmt_sig(p.variance_plain), fmt_sig(p.variance_baseline), ratio]
                })
                .collect(),
        };

        Figures {
            errors: r.errors.clone(),
            summary,
            by_iteration: Rc::new(by_iteration),
            by_time: Rc::new(by_time),
            results: Rc::new(results),
            results_caption,
            published: Rc::new(published),
            effective: Rc::new(effective),
            epsilon_hit: Rc::new(epsilon_hit),
            epsilon_effective: Rc::new(epsilon_effective),
            speed: Rc::new(speed),
            speed_up: Rc::new(speed_up),
            speed_table: Rc::new(speed_table),
            speed_caption: format!(
                "Each method timed on each catalogue (one run, this machine): a warm-up step, then at least {TIMING_MIN_STEPS} steps and \
                 {TIMING_MIN_MS:.0} ms. Indexed: items with an embedding. Build: world, SVD and HNSW index. ×: iterations/s over those of exact."
            )
            .into(),
            slates: Rc::new(slates),
            slate_table: Rc::new(slate_table),
        }
    }
}
