//! UI of the lesson "Putting it together": the candidates' A/B table with every estimator beside
//! it, offline estimates against the A/B CTR, what each estimator would ship, the towers' curves,
//! serving through the index, and the non-linearity sweep. The models and estimators are in
//! `core::putting_it_together`.

use crate::core::horvitz_thompson::estimators::Kind;
use crate::core::putting_it_together::lesson::{
    candidate_label, CapstoneLesson, CapstoneReport, CANDIDATES, INDEX_EF_CONSTRUCTION, INDEX_M, SERVED,
};
use crate::core::putting_it_together::ope::ESTIMATORS;
use crate::core::putting_it_together::reading;
use crate::plot::{fmt_pct_se, LegendAt, Marker, PlotSpec, Series, Style, TableSpec, REFERENCE};
use crate::ui::lesson_page::{use_lesson, waiting, LessonProps};
use crate::ui::plot::Plot;
use crate::ui::widgets::Table;
use std::rc::Rc;
use yew::prelude::*;

pub fn view(props: LessonProps) -> Html {
    html! { <CapstonePage ..props /> }
}

#[component]
fn CapstonePage(props: &LessonProps) -> Html {
    let state = use_lesson::<CapstoneLesson>(props);
    let figures = use_memo(state.report.clone(), |r| r.as_deref().map(Figures::from));
    let text = props.lesson.text();
    state.render(text, props.slide.as_ref(), |name, _args| {
        let Some(f) = figures.as_ref() else { return waiting() };
        let reading = |key: &str, lines: &[String]| {
            html! { <div class="reading" data-reading={key.to_string()}>{ for lines.iter().map(|s| html! { <p>{ s.clone() }</p> }) }</div> }
        };
        match name {
            "ab-table" => html! { <Table spec={f.ab_table.clone()} caption={f.ab_caption.clone()} /> },
            "ab-reading" => reading("ab", &f.ab_reading),
            "curves" => html! {
                <div class="plot-pair">
                    <Plot spec={f.validation_curves.clone()} height={280.0} />
                    <Plot spec={f.train_curves.clone()} height={280.0} />
                </div>
            },
            "curves-reading" => reading("curves", &f.curves_reading),
            "serving" => html! { <Table spec={f.serving.clone()} caption={f.serving_caption.clone()} /> },
            "serving-reading" => reading("serving", &f.serving_reading),
            "estimates" => html! { <Plot spec={f.estimates.clone()} height={360.0} /> },
            "estimates-table" => html! { <Table spec={f.estimates_table.clone()} caption={f.estimates_caption.clone()} /> },
            "offline-reading" => reading("offline", &f.offline_reading),
            "judgements" => html! {
                <>
                    <Plot spec={f.tau.clone()} height={240.0} />
                    <Table spec={f.judgements.clone()} caption={f.judgements_caption.clone()} />
                </>
            },
            "shipping-reading" => reading("shipping", &f.shipping_reading),
            "sweep" => match &f.sweep {
                Some(spec) => html! { <Plot spec={spec.clone()} height={320.0} /> },
                None => html! { <p class="hint">{ "Turn the non-linearity sweep on (below) and run." }</p> },
            },
            "sweep-reading" => reading("sweep", &f.sweep_reading),
            other => html! { <p class="inline-error">{ format!("unknown widget “{other}”") }</p> },
        }
    })
}

/// One colour per candidate in every plot; the oracle is the reference grey.
fn candidate_color(name: &str) -> u32 {
    match name {
        "oracle" => REFERENCE,
        "logging" => 6,
        "popularity" => 7,
        "linear-prr" => 5,
        "deep-prr" => 0,
        "deep-reward" => 1,
        "iips" => 4,
        _ => 9,
    }
}

fn estimator_color(kind: Kind) -> u32 {
    match kind {
        Kind::Ips => 8,
        Kind::Iips => 4,
        Kind::Pi => 3,
        Kind::Dm => 2,
        _ => 0,
    }
}

/// Sideways shift between estimators in the offline-vs-A/B plot (points of CTR).
const DODGE_POINTS: f64 = 0.5;

fn short_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Ips => "slate IPS",
        Kind::Iips => "IIPS",
        Kind::Pi => "PI",
        Kind::Dm => "DM",
        Kind::Dr => "DR",
        _ => kind.label(),
    }
}

struct Figures {
    ab_table: Rc<TableSpec>,
    ab_caption: AttrValue,
    ab_reading: Vec<String>,
    validation_curves: Rc<PlotSpec>,
    train_curves: Rc<PlotSpec>,
    curves_reading: Vec<String>,
    serving: Rc<TableSpec>,
    serving_caption: AttrValue,
    serving_reading: Vec<String>,
    estimates: Rc<PlotSpec>,
    estimates_table: Rc<TableSpec>,
    estimates_caption: AttrValue,
    offline_reading: Vec<String>,
    tau: Rc<PlotSpec>,
    judgements: Rc<TableSpec>,
    judgements_caption: AttrValue,
    shipping_reading: Vec<String>,
    sweep: Option<Rc<PlotSpec>>,
    sweep_reading: Vec<String>,
}

/// A value ± its 95 % half-width, in %.
fn pct_ci(value: f64, se: f64) -> String {
    format!("{:.2} ± {:.2}", 100.0 * value, 196.0 * se)
}

impl From<&CapstoneReport> for Figures {
    fn from(r: &CapstoneReport) -> Figures {
        let m = &r.main;
        let ab_table = TableSpec {
            id: "candidates-ab".into(),
            headers: ["candidate", "A/B CTR (fresh users)", "gap to the best deployable (points)", "best epoch (validation)"]
                .map(String::from)
                .to_vec(),
            rows: m
                .candidates
                .iter()
                .map(|c| {
                    let best = m.candidates.iter().find(|b| b.name == m.best_deployable).map_or(0.0, |b| b.ab_ctr);
                    let curve = m.curves.iter().find(|k| k.name == c.name);
                    vec![
                        candidate_label(&c.name).to_string(),
                        fmt_pct_se(c.ab_ctr, c.ab_se),
                        if c.deployable { format!("{:.2}", 100.0 * (best - c.ab_ctr)) } else { "(reference)".into() },
                        curve.map_or("–".into(), |k| format!("{} of {}", k.best_epoch, k.validation_loss.len())),
                    ]
                })
                .collect(),
        };
        let ab_caption = format!(
            "λ = {}, P = {}, K = {}. Logged CTR {} over N = {} impressions ({} training, {} validation, {} evaluation rows); each \
             candidate deployed on {} impressions of fresh users, the learned ones served through the HNSW index.",
            r.nonlinearity,
            r.items,
            r.slate_size,
            fmt_pct_se(m.logged_ctr, m.logged_se),
            r.logs,
            m.train_rows,
            m.validation_rows,
            m.eval_rows,
            r.impressions
        )
        .into();

        let epochs = |n: usize| (1..=n).map(|e| e as f64);
        let mut validation_curves =
            PlotSpec::new("validation-loss", "Cross-entropy on the validation rows", "epoch", "cross-entropy per row");
        let mut train_curves = PlotSpec::new(
            "training-loss",
            "Cross-entropy on the training rows (mean over each epoch, as it trains)",
            "epoch",
            "cross-entropy per row",
        );
        for c in m.curves.iter().filter(|c| c.name == "linear-prr" || c.name == "deep-prr") {
            let label = candidate_label(&c.name);
            let color = candidate_color(&c.name);
            validation_curves.series.push(Series::new(
                label,
                Style::Line,
                epochs(c.validation_loss.len()).zip(c.validation_loss.iter().copied()).collect(),
                color,
            ));
            train_curves.series.push(Series::new(
                label,
                Style::Line,
                epochs(c.train_loss.len()).zip(c.train_loss.iter().copied()).collect(),
                color,
            ));
        }

        let serving = TableSpec {
            id: "serving".into(),
            headers: ["model", "exact scan µs/slate", "HNSW index µs/slate", "index / exact", "users served the exact slate"]
                .map(String::from)
                .to_vec(),
            // Every served model's row, in a preview too (its times then to come: "…"), so that
            // the table keeps its size when the full report fills it in.
            rows: SERVED
                .iter()
                .map(|name| (*name, m.serving.iter().find(|s| s.name == *name)))
                .filter(|(_, s)| s.is_some() || m.serving_pending)
                .map(|(name, s)| {
                    let Some(s) = s else {
                        return std::iter::once(candidate_label(name)).chain(["…"; 4]).map(String::from).collect();
                    };
                    vec![
                        candidate_label(&s.name).to_string(),
                        format!("{:.1}", s.exact_us_per_slate),
                        format!("{:.1}", s.index_us_per_slate),
                        if s.exact_us_per_slate > 0.0 {
                            format!("{:.2}", s.index_us_per_slate / s.exact_us_per_slate)
                        } else {
                            "–".into()
                        },
                        format!("{} of {}", s.users - s.different, s.users),
                    ]
                })
                .collect(),
        };
        let serving_caption = format!(
            "One slate for each of the fresh users, timed in this tab (query tower included). The index is an HNSW graph (M = {INDEX_M}, \
             ef_construction = {INDEX_EF_CONSTRUCTION}, inner product as the similarity) over the model's {} item vectors, searched with ef_search as set below.",
            r.items
        )
        .into();

        // Offline estimate against the A/B CTR, one series per estimator, the diagonal drawn.
        let top = m.candidates.iter().map(|c| c.ab_ctr).fold(0.0, f64::max) * 100.0;
        let mut estimates =
            PlotSpec::new("offline-vs-ab", "Offline estimate against the A/B test, per candidate", "A/B CTR (%)", "offline estimate (%)");
        estimates.series.push(Series::new("estimate = A/B CTR", Style::Line, vec![(0.0, 0.0), (top * 1.1, top * 1.1)], REFERENCE).dashed());
        for (e, kind) in ESTIMATORS.iter().enumerate() {
            // Dodged sideways, so that five estimators of one candidate do not hide each other.
            let dodge = DODGE_POINTS * (e as f64 - (ESTIMATORS.len() - 1) as f64 / 2.0);
            let points = m.candidates.iter().map(|c| (100.0 * c.ab_ctr + dodge, 100.0 * c.estimates[e].value)).collect();
            let errors = m.candidates.iter().map(|c| 196.0 * c.estimates[e].se).collect();
            estimates.series.push(Series::new(kind.label(), Style::Points, points, estimator_color(*kind)).with_errors(errors));
        }
        estimates.y_range = Some((0.0, top * 1.6));
        estimates.legend_at = LegendAt::UpperLeft;
        let estimates_table = TableSpec {
            id: "offline-estimates".into(),
            headers: std::iter::once("candidate".to_string())
                .chain(std::iter::once("A/B CTR (%)".to_string()))
                .chain(ESTIMATORS.iter().map(|k| format!("{} (%)", short_label(*k))))
                .chain(std::iter::once("rows with its slate".to_string()))
                .collect(),
            rows: m
                .candidates
                .iter()
                .map(|c| {
                    std::iter::once(candidate_label(&c.name).to_string())
                        .chain(std::iter::once(pct_ci(c.ab_ctr, c.ab_se)))
                        .chain(c.estimates.iter().map(|e| pct_ci(e.value, e.se)))
                        .chain(std::iter::once(c.slate_matches.map_or("all (π₀ itself)".into(), |n| n.to_string())))
                        .collect()
                })
                .collect(),
        };
        let estimates_caption = format!(
            "Each estimator on the {} evaluation rows, ± 1.96 standard errors: slate IPS, item-position IPS (IIPS), the \
             pseudo-inverse (PI), the direct method (DM) and doubly robust (DR); the A/B column is the truth they try to predict. \
             The direct method's reward model is a deep PRR trained on the {} validation rows only. In the plot, each estimator's \
             points are shifted sideways by up to ±{} points of A/B CTR so that they do not hide each other, and the y axis stops \
             at {:.0} %: larger estimates are in the table.",
            m.eval_rows,
            m.validation_rows,
            DODGE_POINTS * (ESTIMATORS.len() - 1) as f64 / 2.0,
            top * 1.6
        )
        .into();

        let mut tau =
            PlotSpec::new("kendall-tau", "Kendall τ between each estimator's ordering and the A/B test's", "estimator", "Kendall τ_b");
        for (i, (kind, j)) in ESTIMATORS.iter().zip(&m.judgements).enumerate() {
            if let Some(t) = j.kendall_tau {
                tau.series.push(Series::new(kind.label(), Style::Bars { width: 0.6 }, vec![(i as f64, t)], estimator_color(*kind)));
            }
        }
        tau.x_ticks = Some(ESTIMATORS.iter().enumerate().map(|(i, k)| (i as f64, k.label().to_string())).collect());
        tau.y_range = Some((-1.0, 1.0));
        tau.legend = false;
        let judgements = TableSpec {
            id: "shipping".into(),
            headers: ["estimator", "Kendall τ_b with the A/B ordering", "would ship", "its A/B CTR", "CTR lost (points)"]
                .map(String::from)
                .to_vec(),
            rows: m
                .judgements
                .iter()
                .map(|j| {
                    vec![
                        Kind::from_name(&j.estimator).map_or("?", |k| k.label()).to_string(),
                        j.kendall_tau.map_or("– (all tied)".into(), |t| format!("{t:+.2}")),
                        j.shipped.as_deref().map_or("–", candidate_label).to_string(),
                        j.shipped_ab_ctr.map_or("–".into(), |c| format!("{:.2} %", 100.0 * c)),
                        j.ctr_lost.map_or("–".into(), |c| format!("{:.2}", 100.0 * c)),
                    ]
                })
                .collect(),
        };
        let judgements_caption = format!(
            "τ over all {} candidates; the pick among the {} deployable ones (not the oracle). CTR lost: the best deployable \
             candidate's A/B CTR ({}) minus the pick's.",
            CANDIDATES.len(),
            CANDIDATES.iter().filter(|c| c.2).count(),
            candidate_label(&m.best_deployable)
        )
        .into();

        let sweep = (!r.sweep.is_empty()).then(|| {
            let mut spec = PlotSpec::new(
                "ctr-vs-nonlinearity",
                "A/B CTR as the world's non-linearity grows (exact serving)",
                "non-linearity λ",
                "A/B CTR (%)",
            );
            let line = |name: &str, pick: fn(&crate::core::putting_it_together::lesson::SweepPoint) -> f64| {
                Series::new(
                    candidate_label(name),
                    Style::LinePoints,
                    r.sweep.iter().map(|p| (p.nonlinearity, 100.0 * pick(p))).collect(),
                    candidate_color(name),
                )
            };
            spec.series.push(line("oracle", |p| p.oracle_ctr).dashed());
            spec.series.push(line("linear-prr", |p| p.linear_ctr));
            spec.series.push(line("deep-prr", |p| p.deep_ctr));
            spec.markers.push(Marker { x: r.nonlinearity, label: "this run".into(), color: REFERENCE });
            spec.y_from_zero = true;
            spec.legend_at = LegendAt::LowerLeft;
            Rc::new(spec)
        });

        Figures {
            ab_table: Rc::new(ab_table),
            ab_caption,
            ab_reading: reading::ab(r),
            validation_curves: Rc::new(validation_curves),
            train_curves: Rc::new(train_curves),
            curves_reading: reading::curves(r),
            serving: Rc::new(serving),
            serving_caption,
            serving_reading: reading::serving(r),
            estimates: Rc::new(estimates),
            estimates_table: Rc::new(estimates_table),
            estimates_caption,
            offline_reading: reading::offline(r),
            tau: Rc::new(tau),
            judgements: Rc::new(judgements),
            judgements_caption,
            shipping_reading: reading::shipping(r),
            sweep,
            sweep_reading: reading::sweep(r),
        }
    }
}
