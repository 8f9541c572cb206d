//! UI of the lesson "Embeddings": spectrum and rSVD error, BPR curves from the SVD and from a
//! random start, the metrics table, 2-D maps of the item embeddings, one user's top-K before and
//! after. The math is in `core::embeddings`.

use crate::core::embeddings::lesson::{EmbeddingsLesson, EmbeddingsReport, ItemMap};
use crate::core::embeddings::metrics::{ItemRow, RankingMetrics, UserTable};
use crate::plot::{fmt_sig, LegendAt, PlotSpec, Series, Style, TableSpec, REFERENCE};
use crate::ui::lesson_page::{use_lesson, waiting, LessonProps};
use crate::ui::plot::Plot;
use crate::ui::widgets::Table;
use std::rc::Rc;
use yew::prelude::*;

pub fn view(props: LessonProps) -> Html {
    html! { <EmbeddingsPage ..props /> }
}

#[component]
fn EmbeddingsPage(props: &LessonProps) -> Html {
    let state = use_lesson::<EmbeddingsLesson>(props);
    let figures = use_memo(state.report.clone(), |r| r.as_deref().map(|r| r.as_ref().map(Figures::from).map_err(|e| e.clone())));
    let text = props.lesson.text();
    state.render(text, props.slide.as_ref(), |name, _args| {
        let f = match figures.as_ref() {
            None => return waiting(),
            Some(Err(e)) => return html! { <p class="inline-error">{ format!("This setting cannot be computed: {e}") }</p> },
            Some(Ok(f)) => f,
        };
        match name {
            "svd-summary" => html! { <div class="callout" data-testid="svd-summary">{ f.summary.clone() }</div> },
            "spectrum" => html! {
                <div class="plot-pair">
                    <Plot spec={f.spectrum.clone()} height={280.0} />
                    <Plot spec={f.error_vs_q.clone()} height={280.0} />
                </div>
            },
            "training" => html! {
                <div class="plot-pair">
                    <Plot spec={f.loss.clone()} height={280.0} />
                    <Plot spec={f.recall.clone()} height={280.0} />
                </div>
            },
            "metrics-table" => html! { <Table spec={f.metrics.clone()} caption={f.metrics_caption.clone()} /> },
            // What this run shows, computed from its report (core::embeddings::reading).
            "training-reading" => html! {
                <div class="reading" data-reading="training">{ for f.reading.iter().map(|s| html! { <p>{ s.clone() }</p> }) }</div>
            },
            "maps" => html! {
                <div class="plot-pair">
                    <Plot spec={f.map_before.clone()} height={320.0} />
                    <Plot spec={f.map_after.clone()} height={320.0} />
                </div>
            },
            "user-table" => html! {
                <>
                    <Table spec={f.user_table.clone()} caption={f.user_caption.clone()} />
                    <p class="hint">{ f.user_history.clone() }</p>
                </>
            },
            other => html! { <p class="inline-error">{ format!("unknown widget “{other}”") }</p> },
        }
    })
}

struct Figures {
    summary: String,
    spectrum: Rc<PlotSpec>,
    error_vs_q: Rc<PlotSpec>,
    loss: Rc<PlotSpec>,
    recall: Rc<PlotSpec>,
    metrics: Rc<TableSpec>,
    metrics_caption: AttrValue,
    reading: Vec<String>,
    map_before: Rc<PlotSpec>,
    map_after: Rc<PlotSpec>,
    user_table: Rc<TableSpec>,
    user_caption: AttrValue,
    user_history: String,
}

const SVD_COLOR: u32 = 0;
const RANDOM_COLOR: u32 = 1;

fn map_plot(id: &str, map: &ItemMap, topics: u32) -> PlotSpec {
    let mut spec =
        PlotSpec::new(id, &format!("{} — PCA, {:.0} % of variance", map.title, map.explained * 100.0), "component 1", "component 2");
    for t in 0..topics {
        let points: Vec<(f64, f64)> = map.points.iter().filter(|p| p.2 == t).map(|p| (p.0, p.1)).collect();
        if !points.is_empty() {
            spec.series.push(Series::new(format!("topic {t}"), Style::Points, points, t));
        }
    }
    // The colours are the topics: a legend would cover the clusters it describes.
    spec.legend = false;
    spec
}

/// "✓ 76 (t5)": item 76 of topic 5, one of the user's held-out items.
fn item_label(row: &ItemRow) -> String {
    format!("{}{} (t{})", if row.held_out { "✓ " } else { "" }, row.item, row.topic)
}

impl From<&EmbeddingsReport> for Figures {
    fn from(r: &EmbeddingsReport) -> Figures {
        let s = &r.svd;
        let sp = &s.spectrum;
        let triples_per_s = s.training.triples_per_epoch / (s.training.epoch_ms / 1000.0).max(1e-9);
        let summary = format!(
            "{} users × {} items, {} observed interactions ({:.2} % of the matrix){}. Randomized SVD of rank {} in {:.0} ms; one BPR epoch \
             ({} triples) in {:.0} ms, {} triples/s.",
            r.users,
            r.items,
            s.nonzeros,
            s.nonzeros as f64 / (r.users as f64 * r.items as f64) * 100.0,
            s.ppmi_nonzeros.map_or(String::new(), |n| format!("; PPMI co-occurrence matrix with {n} non-zeros")),
            r.dim,
            s.svd_ms,
            fmt_sig(s.training.triples_per_epoch),
            s.training.epoch_ms,
            fmt_sig(triples_per_s)
        );

        let mut spectrum = PlotSpec::new(
            "spectrum",
            &format!("Singular values of a {} × {} block: exact vs randomized", sp.block_users, sp.block_items),
            "index j",
            "σ_j",
        );
        let shown = (sp.randomized.len() * 2).min(sp.exact.len());
        spectrum.series.push(
            Series::new(
                "exact (eigenvalues of AᵀA)",
                Style::Line,
                sp.exact.iter().take(shown).enumerate().map(|(j, v)| (j as f64 + 1.0, *v)).collect(),
                REFERENCE,
            )
            .dashed(),
        );
        spectrum.series.push(Series::new(
            "randomized (this run's p, q)",
            Style::LinePoints,
            sp.randomized.iter().enumerate().map(|(j, v)| (j as f64 + 1.0, *v)).collect(),
            SVD_COLOR,
        ));
        spectrum.y_from_zero = true;
        spectrum.legend_at = LegendAt::UpperRight;

        let mut error_vs_q = PlotSpec::new(
            "rsvd-error-vs-q",
            "Largest relative error of the top singular values, as q grows",
            "power iterations q",
            "max_j |σ̂_j − σ_j| / σ_j (log scale)",
        );
        error_vs_q.series.push(Series::new(
            "same block, same d and p",
            Style::LinePoints,
            sp.error_vs_q.iter().map(|(q, e)| (*q as f64, e.max(1e-16).log10())).collect(),
            SVD_COLOR,
        ));
        error_vs_q.y_is_log10 = true;
        error_vs_q.legend = false;

        let epochs = |n: usize, from: usize| (from..from + n).map(|e| e as f64);
        let mut loss = PlotSpec::new("bpr-loss", "BPR loss per epoch", "epoch", "mean −ln σ(s⁺ − s⁻)");
        for (t, color) in [(&s.training, SVD_COLOR), (&r.random, RANDOM_COLOR)] {
            let label = if t.init == "svd" { "from the SVD" } else { "from random" };
            loss.series.push(Series::new(label, Style::LinePoints, epochs(t.loss.len(), 1).zip(t.loss.iter().copied()).collect(), color));
        }
        loss.legend_at = LegendAt::UpperRight;

        let mut recall = PlotSpec::new(
            "recall-per-epoch",
            &format!("Recall@{} on held-out items (epoch 0 = before BPR)", r.top_k),
            "epoch",
            &format!("recall@{}", r.top_k),
        );
        for (t, color) in [(&s.training, SVD_COLOR), (&r.random, RANDOM_COLOR)] {
            let label = if t.init == "svd" { "BPR from the SVD" } else { "BPR from random" };
            recall.series.push(Series::new(
                label,
                Style::LinePoints,
                epochs(t.metrics.len(), 0).zip(t.metrics.iter().map(|m| m.recall)).collect(),
                color,
            ));
        }
        let last = s.training.metrics.len().saturating_sub(1) as f64;
        for (label, m, color) in [("popularity", &s.popularity, 6), ("the world's true probabilities", &s.oracle, REFERENCE)] {
            recall.series.push(Series::new(label, Style::Line, vec![(0.0, m.recall), (last, m.recall)], color).dashed());
        }
        recall.y_from_zero = true;
        recall.legend_at = LegendAt::LowerRight;

        let row = |name: &str, m: &RankingMetrics| {
            vec![name.to_string(), format!("{:.4}", m.recall), format!("{:.4}", m.precision), format!("{:.4}", m.ndcg)]
        };
        let k = r.top_k;
        let metrics = TableSpec {
            id: "ranking-metrics".into(),
            headers: vec!["ranking".into(), format!("recall@{k}"), format!("precision@{k}"), format!("NDCG@{k}")],
            rows: vec![
                row("popularity (same list for everyone)", &s.popularity),
                row("SVD embeddings, query = mean of history", &s.training.metrics[0]),
                row("SVD, then BPR", s.training.metrics.last().unwrap_or(&s.training.metrics[0])),
                row("random, then BPR", r.random.metrics.last().unwrap_or(&r.random.metrics[0])),
                row("the world's true probabilities (best possible)", &s.oracle),
            ],
        };
        let metrics_caption =
            format!("Over the first {} users' held-out items; each user's observed items are excluded from their ranking.", r.eval_users)
                .into();

        let topics = s.map_before.points.iter().map(|p| p.2).max().map_or(1, |t| t + 1);
        let map_before = map_plot("item-map-svd", &s.map_before, topics);
        let map_after = map_plot("item-map-bpr", &s.map_after, topics);

        let (before, after): (&UserTable, &UserTable) = (&s.user_before, &s.user_after);
        let user_table = TableSpec {
            id: "user-top-k".into(),
            headers: ["rank", "SVD: item (topic)", "SVD: score", "SVD then BPR: item (topic)", "SVD then BPR: score"]
                .map(String::from)
                .to_vec(),
            rows: (0..before.top.len().max(after.top.len()))
                .map(|i| {
                    let cell =
                        |t: &UserTable| t.top.get(i).map_or((String::new(), String::new()), |r| (item_label(r), format!("{:.3}", r.score)));
                    let ((b_item, b_score), (a_item, a_score)) = (cell(before), cell(after));
                    vec![(i + 1).to_string(), b_item, b_score, a_item, a_score]
                })
                .collect(),
        };
        let user_caption = format!(
            "User {}: top {} before and after BPR; ✓ = one of the user's held-out items ({} hits before, {} after).",
            before.user, k, before.hits, after.hits
        )
        .into();
        let user_history = format!(
            "Observed history ({} items, best scored after BPR first): {}. Held out: {}.",
            after.history.len(),
            after.history.iter().map(item_label).collect::<Vec<_>>().join(", "),
            after.held_out.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        );

        Figures {
            summary,
            spectrum: Rc::new(spectrum),
            error_vs_q: Rc::new(error_vs_q),
            loss: Rc::new(loss),
            recall: Rc::new(recall),
            metrics: Rc::new(metrics),
            metrics_caption,
            reading: crate::core::embeddings::reading::training_reading(r),
            map_before: Rc::new(map_before),
            map_after: Rc::new(map_after),
            user_table: Rc::new(user_table),
            user_caption,
            user_history,
        }
    }
}
