//! UI of the lesson "Fast MIPS": the notebook's timing experiment, recall histograms and the
//! recall–speed curve. The search code is in `core::mips`.

use crate::core::mips::lesson::{MipsLesson, MipsReport, PUBLISHED_RATIOS};
use crate::plot::{fmt_sig, LegendAt, PlotSpec, Series, Style, TableSpec, REFERENCE};
use crate::ui::lesson_page::{use_lesson, waiting, LessonProps};
use crate::ui::plot::Plot;
use crate::ui::widgets::Table;
use std::rc::Rc;
use yew::prelude::*;

pub fn view(props: LessonProps) -> Html {
    html! { <FastMipsPage ..props /> }
}

#[component]
fn FastMipsPage(props: &LessonProps) -> Html {
    let state = use_lesson::<MipsLesson>(props);
    let figures = use_memo(state.report.clone(), |r| r.as_deref().map(Figures::from));
    let text = props.lesson.text();
    state.render(text, props.slide.as_ref(), |name, _args| {
        let Some(f) = figures.as_ref() else { return waiting() };
        match name {
            "times" => html! { <Plot spec={f.times.clone()} /> },
            "ratio" => html! { <Plot spec={f.ratio.clone()} /> },
            "size-table" => html! { <Table spec={f.table.clone()} caption={f.table_caption.clone()} /> },
            "int8-note" => html! { <p data-testid="int8-note">{ f.int8_note.clone() }</p> },
            "recall-histogram" => html! { <Plot spec={f.histogram.clone()} height={260.0} /> },
            "recall-speed" => html! {
                <>
                    <Plot spec={f.recall_speed.clone()} />
                    <p class="hint">{ f.build_note.clone() }</p>
                </>
            },
            other => html! { <p class="inline-error">{ format!("unknown widget “{other}”") }</p> },
        }
    })
}

struct Figures {
    times: Rc<PlotSpec>,
    ratio: Rc<PlotSpec>,
    table: Rc<TableSpec>,
    table_caption: AttrValue,
    histogram: Rc<PlotSpec>,
    recall_speed: Rc<PlotSpec>,
    build_note: String,
    int8_note: String,
}

impl From<&MipsReport> for Figures {
    fn from(r: &MipsReport) -> Figures {
        let index_label = if r.index == "hnsw-augmented" { "HNSW, augmented L2" } else { "HNSW, inner product" };
        let mut times =
            PlotSpec::new("search-time-vs-p", "Time per query as the catalogue grows", "catalogue size P", "ms per query (log scale)");
        times.series.push(Series::new(
            "exact scan",
            Style::LinePoints,
            r.sizes.iter().map(|s| (s.items as f64, s.exact_ms_per_query.max(1e-6).log10())).collect(),
            1,
        ));
        times.series.push(Series::new(
            format!("{index_label}, ef = {}", r.ef_search),
            Style::LinePoints,
            r.sizes.iter().map(|s| (s.items as f64, s.approx_ms_per_query.max(1e-6).log10())).collect(),
            0,
        ));
        times.series.push(Series::new(
            format!("int8 scan, exact re-rank of R = {}", r.shortlist),
            Style::LinePoints,
            r.sizes.iter().map(|s| (s.items as f64, s.int8_ms_per_query.max(1e-6).log10())).collect(),
            3,
        ));
        times.y_is_log10 = true;
        times.legend_at = LegendAt::LowerRight;

        let mut ratio = PlotSpec::new("speedup-vs-p", "Exact time / approximate time", "catalogue size P", "speed-up (×)");
        ratio.series.push(Series::new(
            format!("{index_label}, measured here"),
            Style::LinePoints,
            r.sizes.iter().map(|s| (s.items as f64, s.exact_ms_per_query / s.approx_ms_per_query.max(1e-9))).collect(),
            0,
        ));
        ratio.series.push(Series::new(
            "int8 scan + re-rank, measured here",
            Style::LinePoints,
            r.sizes.iter().map(|s| (s.items as f64, s.exact_ms_per_query / s.int8_ms_per_query.max(1e-9))).collect(),
            3,
        ));
        ratio.series.push(
            Series::new(
                "published (notebook: faiss, Colab CPU, P = 10,000·1.3^i)",
                Style::LinePoints,
                (0..11)
                    .map(|i| (10_000.0 * 1.3f64.powi(i), PUBLISHED_RATIOS[i as usize]))
                    .filter(|(p, _)| *p <= r.sizes.last().map_or(0.0, |s| s.items as f64) * 1.01)
                    .collect(),
                REFERENCE,
            )
            .dashed(),
        );
        ratio.y_from_zero = true;
        ratio.legend_at = LegendAt::LowerRight;

        let table = TableSpec {
            id: "mips-sizes".into(),
            headers: [
                "P",
                "build (s)",
                "memory (MB)",
                "exact (ms)",
                "graph (ms)",
                "int8 (ms)",
                "graph speed-up",
                "graph recall@K",
                "int8 recall@K",
                "graph inner products",
            ]
            .map(String::from)
            .to_vec(),
            rows: r
                .sizes
                .iter()
                .map(|s| {
                    vec![
                        s.items.to_string(),
                        format!("{:.2}", s.build_ms / 1000.0),
                        format!("{:.1}", s.memory_bytes as f64 / 1e6),
                        format!("{:.3}", s.exact_ms_per_query),
                        format!("{:.3}", s.approx_ms_per_query),
                        format!("{:.3}", s.int8_ms_per_query),
                        format!("{:.1}×", s.exact_ms_per_query / s.approx_ms_per_query.max(1e-9)),
                        format!("{:.3}", s.recall),
                        format!("{:.3}", s.int8_recall),
                        fmt_sig(s.approx_distances_per_query),
                    ]
                })
                .collect(),
        };
        let table_caption =
            format!(
                "Per query: times (ms) and inner products (the exact scan computes P). d = {}, K = {}, {} queries per size, graph: {index_label}, ef_search = {}; int8 shortlist R = {}",
                r.dim, r.k, r.queries, r.ef_search, r.shortlist
            )
            .into();

        let first = &r.sizes[0];
        let total = first.recall_histogram.iter().sum::<u32>().max(1) as f64;
        let mut histogram = PlotSpec::new(
            "recall-histogram",
            &format!("How many of the true top {} each query found (P = {})", r.k, first.items),
            "true top-K items found",
            "share of queries (%)",
        );
        histogram.series.push(Series::new(
            "queries",
            Style::Bars { width: 0.6 },
            first.recall_histogram.iter().enumerate().map(|(j, c)| (j as f64, *c as f64 / total * 100.0)).collect(),
            0,
        ));
        histogram.x_ticks = Some((0..=r.k).map(|j| (j as f64, format!("{j}/{}", r.k))).collect());
        histogram.y_from_zero = true;
        histogram.legend = false;

        let c = &r.curves;
        let mut recall_speed = PlotSpec::new(
            "recall-speed",
            &format!(
                "Recall against speed as ef_search (ef = {} … {}) or the int8 shortlist grows (P = {})",
                c.inner_product.first().map_or(0, |p| p.ef),
                c.inner_product.last().map_or(0, |p| p.ef),
                c.items,
            ),
            "recall@K",
            "speed-up over the exact scan (log scale)",
        );
        for (name, color, points) in [("HNSW on inner products", 0, &c.inner_product), ("HNSW on augmented vectors (L2)", 2, &c.augmented)]
        {
            recall_speed.series.push(Series::new(
                name,
                Style::LinePoints,
                points.iter().map(|p| (p.recall, (c.exact_ms_per_query / p.ms_per_query.max(1e-9)).max(1e-3).log10())).collect(),
                color,
            ));
        }
        recall_speed.series.push(Series::new(
            format!("int8 scan, re-rank R = {} … {}", c.int8.first().map_or(0, |p| p.shortlist), c.int8.last().map_or(0, |p| p.shortlist)),
            Style::LinePoints,
            c.int8.iter().map(|p| (p.recall, (c.exact_ms_per_query / p.ms_per_query.max(1e-9)).max(1e-3).log10())).collect(),
            3,
        ));
        recall_speed.y_is_log10 = true;
        recall_speed.legend_at = LegendAt::LowerLeft;
        let build_note = format!(
            "Building the index over P = {} took {:.2} s (inner product) and {:.2} s (augmented); the exact scan takes {:.3} ms per query.",
            c.items,
            c.build_ms_inner_product / 1000.0,
            c.build_ms_augmented / 1000.0,
            c.exact_ms_per_query
        );

        let largest = r.sizes.last().expect("a report has at least one size");
        let f32_bytes = largest.items as f64 * r.dim as f64 * 4.0;
        let int8_note = format!(
            "At P = {}, the int8 copy holds {:.1} MB against {:.1} MB of f32 vectors, and making it took {:.0} ms (the graph: {:.2} s). \
             With a shortlist of R = {}, its scan and re-ranking took {:.3} ms per query, against {:.3} ms for the exact scan \
             ({:.1}× faster) and {:.3} ms for the graph; it found {:.1} % of the true top {} (the graph: {:.1} %).",
            largest.items,
            largest.int8_bytes as f64 / 1e6,
            f32_bytes / 1e6,
            largest.int8_build_ms,
            largest.build_ms / 1000.0,
            r.shortlist,
            largest.int8_ms_per_query,
            largest.exact_ms_per_query,
            largest.exact_ms_per_query / largest.int8_ms_per_query.max(1e-9),
            largest.approx_ms_per_query,
            largest.int8_recall * 100.0,
            r.k,
            largest.recall * 100.0,
        );

        Figures {
            int8_note,
            times: Rc::new(times),
            ratio: Rc::new(ratio),
            table: Rc::new(table),
            table_caption,
            histogram: Rc::new(histogram),
            recall_speed: Rc::new(recall_speed),
            build_note,
        }
    }
}
