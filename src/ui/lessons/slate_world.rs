//! UI of lesson 1, "The slate world": turns a [`SlateWorldReport`] into tables and plots.
//! The math is in `core::slate_world`.

use crate::core::slate_world::lesson::{SlateWorldLesson, SlateWorldReport};
use crate::core::slate_world::simulate::CtrMethod;
use crate::plot::{fmt_pct_se, fmt_sig, Marker, PlotSpec, Series, Style, TableSpec};
use crate::ui::lesson_page::{use_lesson, waiting, LessonProps};
use crate::ui::plot::Plot;
use crate::ui::widgets::Table;
use std::rc::Rc;
use yew::prelude::*;

pub fn view(props: LessonProps) -> Html {
    html! { <SlateWorldPage ..props /> }
}

#[component]
fn SlateWorldPage(props: &LessonProps) -> Html {
    let state = use_lesson::<SlateWorldLesson>(props);
    let figures = use_memo(state.report.clone(), |r| r.as_deref().map(Figures::from));
    let text = props.lesson.text();
    state.render(text, props.slide.as_ref(), |name, _args| {
        let Some(f) = figures.as_ref() else {
            return waiting();
        };
        match name {
            "log-table" => {
                html! { <Table spec={f.log_table.clone()} caption={f.log_caption.clone()} /> }
            }
            "position-ctr" => html! { <Plot spec={f.position_ctr.clone()} /> },
            "propensity-hist" => html! { <Plot spec={f.propensity_hist.clone()} /> },
            "propensity-vs-k" => html! { <Plot spec={f.propensity_vs_k.clone()} /> },
            "policy-ctr" => html! {
                <>
                    <Table spec={f.policy_table.clone()} />
                    <Plot spec={f.policy_plot.clone()} height={260.0} />
                </>
            },
            other => html! { <p class="inline-error">{ format!("unknown widget “{other}”") }</p> },
        }
    })
}

/// Everything the page draws, built once per report.
struct Figures {
    log_table: Rc<TableSpec>,
    log_caption: AttrValue,
    position_ctr: Rc<PlotSpec>,
    propensity_hist: Rc<PlotSpec>,
    propensity_vs_k: Rc<PlotSpec>,
    policy_table: Rc<TableSpec>,
    policy_plot: Rc<PlotSpec>,
}

/// Colour of each logging policy (and of the oracle), the same in every plot.
fn policy_color(label: &str) -> u32 {
    match label.split_whitespace().next().unwrap_or_default() {
        "uniform" => 0,
        "popularity" => 1,
        "softmax" => 2,
        _ => 3,
    }
}

impl From<&SlateWorldReport> for Figures {
    fn from(r: &SlateWorldReport) -> Figures {
        let log_table = TableSpec {
            id: "logged-rows".into(),
            headers: ["#", "user", "context z", "engagement y", "slate A", "click", "π₀(A | x)", "π₀⁽ᵏ⁾(aₖ | x) per position"]
                .map(String::from)
                .to_vec(),
            rows: r
                .first_rows
                .iter()
                .map(|row| {
                    let click = match row.clicks.iter().position(|c| *c > 0) {
                        None => "none".to_string(),
                        Some(_) => row
                            .clicks
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| **c > 0)
                            .map(|(k, _)| format!("{}: {}", k + 1, row.slate[k]))
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    vec![
                        row.row.to_string(),
                        row.user.to_string(),
                        row.context.clone(),
                        row.engagement.iter().map(|y| format!("{y:.2}")).collect::<Vec<_>>().join(", "),
                        row.slate.join(" · "),
                        click,
                        fmt_sig(row.slate_propensity),
                        row.position_propensity.iter().map(|p| fmt_sig(*p)).collect::<Vec<_>>().join(" · "),
                    ]
                })
                .collect(),
        };
        let shown_in_order = r.first_rows.iter().enumerate().all(|(i, row)| row.row as usize == i + 1);
        let log_caption = format!(
            "{} of {} logged impressions ({} logging; {} of {} users)",
            if shown_in_order {
                format!("The first {}", r.first_rows.len())
            } else {
                let head = r.first_rows.iter().take_while(|row| row.row as usize <= r.first_rows.len()).count();
                format!("The first {head}, then the first clicked ones (#)")
            },
            r.logged_ctr.n,
            r.logging,
            r.world,
            r.users
        );

        let mut position_ctr =
            PlotSpec::new("ctr-by-position", "Click-through rate by position", "position k", "CTR at position k (%), ± 1 s.e.");
        position_ctr.series.push(
            Series::new(
                "logged CTR",
                Style::Bars { width: 0.6 },
                r.ctr_by_position.iter().map(|p| (p.position as f64, p.ctr * 100.0)).collect(),
                policy_color(&r.logging),
            )
            .with_errors(r.ctr_by_position.iter().map(|p| p.se * 100.0).collect()),
        );
        position_ctr.x_ticks = Some(r.ctr_by_position.iter().map(|p| (p.position as f64, p.position.to_string())).collect());
        position_ctr.y_from_zero = true;

        let h = &r.log10_propensity;
        let mut propensity_hist = PlotSpec::new(
            "log10-slate-propensity",
            &format!("Slate propensities of the {} logged rows", r.logged_ctr.n),
            "slate propensity π₀(A | x) (log scale)",
            "logged rows",
        );
        let width = if h.edges.len() > 1 { h.edges[1] - h.edges[0] } else { 1.0 };
        propensity_hist.series.push(Series::new(
            "rows",
            Style::Bars { width: width * 0.95 },
            h.counts.iter().enumerate().map(|(i, c)| (h.edges[i] + width / 2.0, *c as f64)).collect(),
            policy_color(&r.logging),
        ));
        propensity_hist.markers.push(Marker {
            x: r.median_log10_propensity,
            label: format!("median {}", fmt_sig(10f64.powf(r.median_log10_propensity))),
            color: crate::plot::REFERENCE,
        });
        propensity_hist.x_is_log10 = true;
        propensity_hist.y_from_zero = true;

        let mut propensity_vs_k = PlotSpec::new(
            "slate-propensity-vs-k",
            &format!("Slate propensity as K grows (P = {})", r.items),
            "slate size K",
            "π₀(A | x), median (log scale)",
        );
        for curve in &r.propensity_vs_k {
            let color = policy_color(&curve.policy);
            propensity_vs_k.series.push(Series::new(
                curve.policy.clone(),
                Style::LinePoints,
                curve.points.iter().map(|q| (q.k as f64, q.median)).collect(),
                color,
            ));
            if curve.policy == r.logging && curve.policy != "uniform" {
                for (name, pick) in [("5 %", 0), ("95 %", 1)] {
                    let pts = curve.points.iter().map(|q| (q.k as f64, if pick == 0 { q.p05 } else { q.p95 })).collect();
                    propensity_vs_k.series.push(Series::new(format!("{} {name}", curve.policy), Style::Line, pts, color).dashed());
                }
            }
        }
        propensity_vs_k.y_is_log10 = true;
        propensity_vs_k.x_ticks = r.propensity_vs_k.first().map(|c| c.points.iter().map(|q| (q.k as f64, q.k.to_string())).collect());

        let method = |m: &CtrMethod| match m {
            CtrMethod::Enumeration { slates } => {
                format!("exact: sums over all {slates} (context, slate) pairs")
            }
            CtrMethod::Deterministic => "exact: one slate per user".to_string(),
            CtrMethod::MonteCarlo { draws } => {
                format!("Monte Carlo: {draws} sampled slates (too many to enumerate)")
            }
        };
        let mut rows: Vec<Vec<String>> = r
            .policy_ctr
            .iter()
            .map(|p| vec![p.policy.clone(), "expected CTR".into(), fmt_pct_se(p.ctr, p.se), method(&p.method)])
            .collect();
        rows.push(vec![
            r.logging.clone(),
            "logged clicks".into(),
            fmt_pct_se(r.logged_ctr.mean, r.logged_ctr.se),
            format!("{} logged impressions", r.logged_ctr.n),
        ]);
        rows.push(vec![
            r.logging.clone(),
            "A/B test".into(),
            fmt_pct_se(r.ab_test.mean, r.ab_test.se),
            format!("{} fresh impressions", r.ab_test.n),
        ]);
        let policy_table =
            TableSpec { id: "policy-ctr".into(), headers: ["policy", "measure", "CTR", "how"].map(String::from).to_vec(), rows };

        let mut policy_plot =
            PlotSpec::new("policy-ctr", "Expected CTR of each policy; the chosen one's logged and A/B CTR (± 1 s.e.)", "", "CTR (%)");
        let mut ticks = Vec::new();
        for (i, p) in r.policy_ctr.iter().enumerate() {
            let x = i as f64 + 1.0;
            ticks.push((x, p.policy.split(" (").next().unwrap_or_default().to_string()));
            policy_plot.series.push(
                Series::new(p.policy.clone(), Style::Bars { width: 0.6 }, vec![(x, p.ctr * 100.0)], policy_color(&p.policy))
                    .with_errors(vec![p.se * 100.0]),
            );
        }
        let n = r.policy_ctr.len() as f64;
        ticks.push((n + 1.0, "logged".into()));
        ticks.push((n + 2.0, "A/B test".into()));
        let chosen = policy_color(&r.logging);
        policy_plot.series.push(
            Series::new(
                format!("{} (logged, A/B)", r.logging),
                Style::Bars { width: 0.6 },
                vec![(n + 1.0, r.logged_ctr.mean * 100.0), (n + 2.0, r.ab_test.mean * 100.0)],
                chosen,
            )
            .with_errors(vec![r.logged_ctr.se * 100.0, r.ab_test.se * 100.0]),
        );
        policy_plot.x_ticks = Some(ticks);
        policy_plot.legend = false;
        policy_plot.y_from_zero = true;

        Figures {
            log_table: Rc::new(log_table),
            log_caption: log_caption.into(),
            position_ctr: Rc::new(position_ctr),
            propensity_hist: Rc::new(propensity_hist),
            propensity_vs_k: Rc::new(propensity_vs_k),
            policy_table: Rc::new(policy_table),
            policy_plot: Rc::new(policy_plot),
        }
    }
}
