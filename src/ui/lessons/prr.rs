//! UI of the lesson "Reward and rank": the A/B table beside the published one, training curves,
//! the per-slate scatter, the K and P sweeps and the epoch-time plot. The models are in
//! `core::prr`.

use crate::core::prr::lesson::{method_label, PrrLesson, PrrReport, WorldResult, METHODS, PUBLISHED_CTR, PUBLISHED_SETTINGS};
use crate::plot::{fmt_pct_se, fmt_sig, LegendAt, PlotSpec, Series, Style, TableSpec, REFERENCE};
use crate::ui::lesson_page::{use_lesson, waiting, LessonProps};
use crate::ui::plot::Plot;
use crate::ui::widgets::Table;
use std::rc::Rc;
use yew::prelude::*;

pub fn view(props: LessonProps) -> Html {
    html! { <PrrPage ..props /> }
}

#[component]
fn PrrPage(props: &LessonProps) -> Html {
    let state = use_lesson::<PrrLesson>(props);
    let figures = use_memo(state.report.clone(), |r| r.as_deref().map(Figures::from));
    let text = props.lesson.text();
    state.render(text, props.slide.as_ref(), |name, _args| {
        let Some(f) = figures.as_ref() else { return waiting() };
        let plot = |spec: &Option<Rc<PlotSpec>>, why_not: &str| match spec {
            Some(spec) => html! { <Plot spec={spec.clone()} /> },
            None => html! { <p class="hint">{ why_not.to_string() }</p> },
        };
        match name {
            "ab-table" => html! {
                <>
                    <Table spec={f.ab_table.clone()} caption={f.ab_caption.clone()} />
                    <p class="hint">{ f.ab_note.clone() }</p>
                </>
            },
            // What this run shows, computed from its report (core::prr::reading).
            "ab-reading" => html! {
                <div class="reading" data-reading="ab">{ for f.ab_reading.iter().map(|s| html! { <p>{ s.clone() }</p> }) }</div>
            },
            "scatter-reading" => match &f.scatter_reading {
                Some(s) => html! { <div class="reading" data-reading="scatter"><p>{ s.clone() }</p></div> },
                None => html! {},
            },
            "published-table" => html! { <Table spec={f.published_table.clone()} caption={f.published_caption.clone()} /> },
            // The paper's orderings in the closest column, checked against this run.
            "orderings" => html! {
                <>
                    <div class="reading" data-reading="orderings"><p>{ f.ordering_summary.clone() }</p></div>
                    <Table spec={f.orderings.clone()} caption={f.orderings_caption.clone()} />
                </>
            },
            "ctr-curves" => html! { <Plot spec={f.ctr_curves.clone()} height={340.0} /> },
            "loss-curves" => html! {
                <div class="plot-pair">
                    <Plot spec={f.loss_curves.clone()} height={280.0} />
                    <Plot spec={f.ips_curves.clone()} height={280.0} />
                </div>
            },
            "scatter" => plot(
                &f.scatter,
                "The per-slate view lists every (context, slate) pair: it needs the toy world (or few enough slates), uniform logging, \
                 and the PRR and Reward methods.",
            ),
            "sweep-k" => plot(&f.sweep_k, "Choose the sweep “CTR as K grows” (or both) below, and run."),
            "sweep-p" => plot(&f.sweep_p, "Choose the sweep “CTR as P grows” (or both) below, and run."),
            // About as tall as the plot it stands for, so that the controls below stay put.
            "epoch-time" if f.timing_pending => {
                html! { <p class="hint plot-pending">{ "This preview leaves the epoch timing out; the full report measures it." }</p> }
            }
            "epoch-time" => html! {
                <>
                    <Plot spec={f.epoch_time.clone()} />
                    <Table spec={f.epoch_table.clone()} caption={f.epoch_caption.clone()} />
                </>
            },
            other => html! { <p class="inline-error">{ format!("unknown widget “{other}”") }</p> },
        }
    })
}

/// One colour per method in every plot; the oracle is the reference grey.
fn method_color(name: &str) -> u32 {
    match name {
        "oracle" => REFERENCE,
        "random" => 6,
        "prr" => 0,
        "prr-bias" => 5,
        "ranking" => 2,
        "reward" => 1,
        "slate-ips" => 8,
        "top-k-slate-ips" => 3,
        "iips" => 4,
        _ => 9,
    }
}

fn published_row(name: &str) -> Option<&'static [f64; 7]> {
    METHODS.iter().position(|m| m.0 == name).map(|i| &PUBLISHED_CTR[i])
}

struct Figures {
    ab_table: Rc<TableSpec>,
    ab_caption: AttrValue,
    ab_note: String,
    published_table: Rc<TableSpec>,
    published_caption: AttrValue,
    ctr_curves: Rc<PlotSpec>,
    loss_curves: Rc<PlotSpec>,
    ips_curves: Rc<PlotSpec>,
    scatter: Option<Rc<PlotSpec>>,
    sweep_k: Option<Rc<PlotSpec>>,
    sweep_p: Option<Rc<PlotSpec>>,
    epoch_time: Rc<PlotSpec>,
    ab_reading: Vec<String>,
    orderings: Rc<TableSpec>,
    orderings_caption: AttrValue,
    ordering_summary: String,
    scatter_reading: Option<String>,
    epoch_table: Rc<TableSpec>,
    epoch_caption: AttrValue,
    /// A preview without the epoch timing.
    timing_pending: bool,
}

fn sweep_plot(id: &str, title: &str, x_label: &str, worlds: &[WorldResult], x: impl Fn(&WorldResult) -> f64, x_log: bool) -> PlotSpec {
    let mut spec = PlotSpec::new(id, title, x_label, "A/B CTR (%)");
    let Some(first) = worlds.first() else { return spec };
    for (m, method) in first.methods.iter().enumerate() {
        let points = worlds.iter().map(|w| (if x_log { x(w).log10() } else { x(w) }, w.methods[m].ctr * 100.0)).collect();
        let errors = worlds.iter().map(|w| 1.96 * w.methods[m].se * 100.0).collect();
        let mut series = Series::new(method_label(&method.name), Style::LinePoints, points, method_color(&method.name)).with_errors(errors);
        if method.name == "oracle" || method.name == "random" {
            series = series.dashed();
        }
        spec.series.push(series);
    }
    spec.x_is_log10 = x_log;
    spec.y_from_zero = true;
    spec.legend_at = LegendAt::UpperLeft;
    spec
}

impl From<&PrrReport> for Figures {
    fn from(r: &PrrReport) -> Figures {
        let w = &r.main;
        let setting = r.published_setting as usize;
        let oracle = w.methods.iter().find(|m| m.name == "oracle").map(|m| m.ctr);
        let ab_table = TableSpec {
            id: "ab-test".into(),
            headers: [
                "policy",
                "A/B CTR (measured here)",
                "gap to oracle (points)",
                "ms per training epoch",
                &format!("published CTR, {}", PUBLISHED_SETTINGS[setting]),
            ]
            .map(String::from)
            .to_vec(),
            rows: w
                .methods
                .iter()
                .map(|m| {
                    vec![
                        method_label(&m.name).to_string(),
                        fmt_pct_se(m.ctr, m.se),
                        oracle.map_or("–".into(), |o| format!("{:.2}", (o - m.ctr) * 100.0)),
                        m.epoch_ms.map_or("–".into(), |ms| format!("{ms:.1}")),
                        published_row(&m.name).map_or("–".into(), |row| format!("{:.2} %", row[setting])),
                    ]
                })
                .collect(),
        };
        let ab_caption = format!(
            "World: {}. Logged CTR {} over N = {} impressions; each policy A/B tested on {} fresh impressions after {} epochs.",
            r.world,
            fmt_pct_se(w.logged_ctr, w.logged_se),
            r.logs,
            r.impressions,
            r.epochs
        )
        .into();
        let ab_note = format!(
            "The last column is the PRR paper's number for its closest setting ({}), a reference measured on the paper's own \
             simulator, not a target: compare the order of the methods and their gaps, not the levels. Every policy meets \
             the same simulated users, so gaps are sharper than the ± (one standard error) suggests.",
            PUBLISHED_SETTINGS[setting]
        );

        let published_table = TableSpec {
            id: "published-ab-ctr".into(),
            headers: std::iter::once("policy".to_string()).chain(PUBLISHED_SETTINGS.iter().map(|s| s.to_string())).collect(),
            rows: METHODS
                .iter()
                .zip(PUBLISHED_CTR.iter())
                .map(|((_, label), row)| std::iter::once(label.to_string()).chain(row.iter().map(|v| format!("{v:.2}"))).collect())
                .collect(),
        };
        let checks = crate::core::prr::reading::ordering_checks(w, setting);
        let orderings = TableSpec {
            id: "published-orderings".into(),
            headers: ["ordering", "paper (points)", "this run (points)", "mark", "reading"].map(String::from).to_vec(),
            rows: checks
                .iter()
                .map(|c| {
                    vec![
                        format!("{} − {}", method_label(c.first), method_label(c.second)),
                        format!("{:+.2} ± {:.2}", c.published, c.published_2se),
                        format!("{:+.2} ± {}", c.ours, crate::core::prr::reading::margin(c.ours_2se)),
                        c.mark().to_string(),
                        c.words(),
                    ]
                })
                .collect(),
        };
        let published_caption =
            "Published (PRR paper): simulated A/B CTR in %. K columns: N = 10k logs; P columns: K = 5, N = 10k. Not computed here.".into();

        let epochs = |n: usize| (1..=n).map(|e| e as f64);
        let mut ctr_curves = PlotSpec::new(
            "ctr-per-epoch",
            "CTR of each learned policy after every epoch (first 500 users, exact)",
            "epoch",
            "CTR of the deployed policy (%)",
        );
        for c in &w.curves {
            ctr_curves.series.push(Series::new(
                method_label(&c.name),
                Style::Line,
                epochs(c.ctr.len()).zip(c.ctr.iter().map(|v| v * 100.0)).collect(),
                method_color(&c.name),
            ));
        }
        let last_epoch = w.curves.first().map_or(1, |c| c.ctr.len()) as f64;
        for (name, value) in [("oracle", w.curve_oracle), ("random", w.curve_random)] {
            if let Some(v) = value {
                let points = vec![(1.0, v * 100.0), (last_epoch, v * 100.0)];
                ctr_curves.series.push(Series::new(method_label(name), Style::Line, points, method_color(name)).dashed());
            }
        }
        ctr_curves.legend_at = LegendAt::LowerRight;

        let mut loss_curves = PlotSpec::new("model-loss", "Reward / rank models: training loss", "epoch", "cross-entropy per row");
        let mut ips_curves =
            PlotSpec::new("ips-objective", "IPS policy learning: objective (maximised)", "epoch", "IPS estimate of clicks");
        for c in &w.curves {
            let target = if c.name.contains("ips") { &mut ips_curves } else { &mut loss_curves };
            target.series.push(Series::new(
                method_label(&c.name),
                Style::Line,
                epochs(c.loss.len()).zip(c.loss.iter().copied()).collect(),
                method_color(&c.name),
            ));
        }
        loss_curves.legend_at = LegendAt::UpperRight;
        ips_curves.legend_at = LegendAt::LowerRight;

        let scatter = (!w.scatter.is_empty() && w.scatter.iter().any(|s| s.prr.is_some() || s.reward.is_some())).then(|| {
            let mut spec = PlotSpec::new(
                "per-slate-ctr",
                &format!("Every (context, slate of {}): what each method believes its CTR is, against the truth", w.scatter_slate_size),
                "true CTR of the slate in its context (%)",
                "estimated CTR (%)",
            );
            let max = w.scatter.iter().map(|s| s.truth).fold(0.0, f64::max) * 100.0;
            spec.series.push(Series::new("Oracle (estimate = truth)", Style::Line, vec![(0.0, 0.0), (max, max)], REFERENCE).dashed());
            spec.series.push(Series::new(
                "IPS: click / π₀(slate)",
                Style::Points,
                w.scatter.iter().map(|s| (s.truth * 100.0, s.ips * 100.0)).collect(),
                method_color("slate-ips"),
            ));
            for (name, pick) in
                [("reward", (|s: &_| s.reward) as fn(&crate::core::prr::lesson::SlatePoint) -> Option<f64>), ("prr", |s| s.prr)]
            {
                let points: Vec<(f64, f64)> = w.scatter.iter().filter_map(|s| pick(s).map(|v| (s.truth * 100.0, v * 100.0))).collect();
                if !points.is_empty() {
                    spec.series.push(Series::new(method_label(name), Style::Points, points, method_color(name)));
                }
            }
            // IPS estimates of rarely logged slates reach many times the truth: keep the plot on the models.
            let top = w.scatter.iter().map(|s| s.truth.max(s.prr.unwrap_or(0.0)).max(s.reward.unwrap_or(0.0))).fold(0.0, f64::max);
            spec.y_range = Some((0.0, top * 100.0 * 2.0));
            spec.legend_at = LegendAt::UpperLeft;
            Rc::new(spec)
        });

        let sweep_k = (!r.sweep_k.is_empty()).then(|| {
            Rc::new(sweep_plot(
                "ctr-vs-k",
                &format!("A/B CTR as the slate grows (P = {}, N = {})", r.sweep_k[0].items, r.logs),
                "slate size K",
                &r.sweep_k,
                |w| w.slate_size as f64,
                false,
            ))
        });
        let sweep_p = (!r.sweep_p.is_empty()).then(|| {
            Rc::new(sweep_plot(
                "ctr-vs-p",
                &format!("A/B CTR as the catalogue grows (K = {}, N = {})", r.sweep_p[0].slate_size, r.logs),
                "catalogue size P (log scale)",
                &r.sweep_p,
                |w| w.items as f64,
                true,
            ))
        });

        let mut epoch_time = PlotSpec::new(
            "epoch-time-vs-p",
            "Training time per epoch as the catalogue grows",
            "catalogue size P (log scale)",
            "ms per epoch (log scale)",
        );
        for (name, pick) in [
            ("prr", (|t: &_| t.prr_ms_per_epoch) as fn(&crate::core::prr::lesson::TimingPoint) -> f64),
            ("slate-ips", |t| t.slate_ips_ms_per_epoch),
        ] {
            epoch_time.series.push(Series::new(
                method_label(name),
                Style::LinePoints,
                r.timing.iter().map(|t| ((t.items as f64).log10(), pick(t).max(1e-4).log10())).collect(),
                method_color(name),
            ));
        }
        epoch_time.x_is_log10 = true;
        epoch_time.y_is_log10 = true;
        epoch_time.legend_at = LegendAt::UpperLeft;
        let epoch_table = TableSpec {
            id: "epoch-time".into(),
            headers: [
                "P",
                "logged rows",
                "clicked rows",
                "PRR ms/epoch",
                "slate IPS ms/epoch",
                "slate IPS µs per clicked row",
                "slate IPS / PRR",
            ]
            .map(String::from)
            .to_vec(),
            rows: r
                .timing
                .iter()
                .map(|t| {
                    vec![
                        t.items.to_string(),
                        t.examples.to_string(),
                        t.clicked.to_string(),
                        fmt_sig(t.prr_ms_per_epoch),
                        fmt_sig(t.slate_ips_ms_per_epoch),
                        fmt_sig(t.slate_ips_ms_per_epoch * 1000.0 / t.clicked.max(1) as f64),
                        format!("{:.1}×", t.slate_ips_ms_per_epoch / t.prr_ms_per_epoch.max(1e-9)),
                    ]
                })
                .collect(),
        };
        let epoch_caption = "Measured in this run, on the same logged rows for both methods (synthetic worlds, uniform logging).".into();

        Figures {
            ab_table: Rc::new(ab_table),
            ab_caption,
            ab_note,
            published_table: Rc::new(published_table),
            published_caption,
            ctr_curves: Rc::new(ctr_curves),
            loss_curves: Rc::new(loss_curves),
            ips_curves: Rc::new(ips_curves),
            scatter,
            sweep_k,
            sweep_p,
            epoch_time: Rc::new(epoch_time),
            ab_reading: crate::core::prr::reading::ab_reading(&r.main, r.impressions as u64),
            orderings: Rc::new(orderings),
            orderings_caption: format!(
                "Each row: the first method's CTR minus the second's, in points, in the paper's {} column and in this run (± two \
                 standard errors of the difference, paired impression by impression where the run kept them). ✓ same order and \
                 separated, ≈ not separated by this run, ✗ reversed, · the paper's own difference is within its ± two standard \
                 errors (not an ordering it established).",
                PUBLISHED_SETTINGS[setting]
            )
            .into(),
            ordering_summary: crate::core::prr::reading::ordering_summary(&checks, setting),
            scatter_reading: crate::core::prr::reading::scatter_reading(&r.main),
            epoch_table: Rc::new(epoch_table),
            epoch_caption,
            timing_pending: r.timing_pending,
        }
    }
}
