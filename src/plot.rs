//! A plot described as data: what the lesson wants drawn, independent of how (the `ui::plot`
//! component draws it with plotters on a canvas). Pure, so that its CSV export is tested natively.

use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq)]
pub enum Style {
    Line,
    /// A line with a marker at each point.
    LinePoints,
    Points,
    /// Vertical bars of the given width, from 0 (or the y-axis floor) to y.
    Bars {
        width: f64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
    /// ± half-widths of error bars, one per point.
    pub errors: Option<Vec<f64>>,
    /// Index in the palette, so that a policy keeps its colour across plots.
    pub color: u32,
    pub dashed: bool,
}

impl Series {
    pub fn new(name: impl Into<String>, style: Style, points: Vec<(f64, f64)>, color: u32) -> Series {
        Series { name: name.into(), style, points, errors: None, color, dashed: false }
    }

    pub fn with_errors(mut self, errors: Vec<f64>) -> Series {
        self.errors = Some(errors);
        self
    }

    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }
}

/// A vertical reference line with a label (e.g. the true value).
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    pub color: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlotSpec {
    /// File name stem for the CSV/PNG downloads.
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    /// Tick labels for a categorical x axis (bar charts by position, say).
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// Values on an axis are log10 of the quantity: ticks read 10^v.
    pub x_is_log10: bool,
    pub y_is_log10: bool,
    /// Force y to include 0 (bar charts, rates).
    pub y_from_zero: bool,
    /// Draw the series legend (off when the x axis already names every bar).
    pub legend: bool,
    /// Fixed y range (heavy-tailed data would otherwise squash everything else).
    pub y_range: Option<(f64, f64)>,
    pub legend_at: LegendAt,
}

/// Where the legend goes: the corner the data leave free.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum LegendAt {
    #[default]
    UpperRight,
    UpperLeft,
    LowerLeft,
    LowerRight,
}

/// Palette index of reference lines (truth, slopes): a dark grey that no series uses.
pub const REFERENCE: u32 = 10;

impl PlotSpec {
    pub fn new(id: &str, title: &str, x_label: &str, y_label: &str) -> PlotSpec {
        PlotSpec {
            id: id.into(),
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            markers: Vec::new(),
            x_ticks: None,
            x_is_log10: false,
            y_is_log10: false,
            y_from_zero: false,
            legend: true,
            y_range: None,
            legend_at: LegendAt::UpperRight,
        }
    }

    /// x and y ranges covering every point, error bar and marker, with a little padding.
    pub fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let mut x = (f64::INFINITY, f64::NEG_INFINITY);
        let mut y = (f64::INFINITY, f64::NEG_INFINITY);
        for s in &self.series {
            for (i, (px, py)) in s.points.iter().enumerate() {
                if !px.is_finite() || !py.is_finite() {
                    continue;
                }
                let e = s.errors.as_ref().and_then(|e| e.get(i)).copied().unwrap_or(0.0);
                let half = if let Style::Bars { width } = s.style { width / 2.0 } else { 0.0 };
                x = (x.0.min(px - half), x.1.max(px + half));
                y = (y.0.min(py - e), y.1.max(py + e));
                if matches!(s.style, Style::Bars { .. }) {
                    y = (y.0.min(0.0), y.1.max(0.0));
                }
            }
        }
        for m in &self.markers {
            x = (x.0.min(m.x), x.1.max(m.x));
        }
        if self.y_from_zero {
            y.0 = y.0.min(0.0);
        }
        if !x.0.is_finite() {
            x = (0.0, 1.0);
        }
        if !y.0.is_finite() {
            y = (0.0, 1.0);
        }
        let pad = |(lo, hi): (f64, f64), keep_zero: bool| {
            let span = if hi - lo > 1e-12 { hi - lo } else { lo.abs().max(1.0) };
            let lo2 = if keep_zero && lo == 0.0 { 0.0 } else { lo - 0.05 * span };
            (lo2, hi + 0.05 * span)
        };
        (pad(x, false), self.y_range.unwrap_or_else(|| pad(y, true)))
    }

    /// Every point of every series, long format: series,x,y[,error].
    pub fn to_csv(&self) -> String {
        let mut out = format!("series,{},{},error\n", csv_cell(&self.x_label), csv_cell(&self.y_label));
        for s in &self.series {
            for (i, (x, y)) in s.points.iter().enumerate() {
                let e = s.errors.as_ref().and_then(|e| e.get(i)).map(|e| e.to_string()).unwrap_or_default();
                let _ = writeln!(out, "{},{x},{y},{e}", csv_cell(&s.name));
            }
        }
        for m in &self.markers {
            let _ = writeln!(out, "{},{},,", csv_cell(&format!("marker: {}", m.label)), m.x);
        }
        out
    }
}

pub fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A table as data (header + rows of text), with its CSV.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TableSpec {
    pub id: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl TableSpec {
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            out.push_str(&row.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        out
    }
}

/// Numbers for people: 3 significant digits, scientific notation when tiny or huge.
pub fn fmt_sig(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// Tick label of a log10 axis at value v: "1e-3" at whole exponents, the number itself between.
pub fn fmt_log10_tick(v: f64) -> String {
    let r = v.round();
    if (v - r).abs() < 1e-9 {
        format!("1e{r}")
    } else {
        fmt_sig(10f64.powf(v))
    }
}

/// Tick positions of a log10 axis spanning [lo, hi] (in log10 units), with their labels: every
/// digit × 10^k on narrow axes, else 1, 2 and 5 × 10^k, else the powers of ten — the finest
/// that gives at most nine ticks.
pub fn log10_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return Vec::new();
    }
    let candidates = |mantissas: &[u32]| {
        let mut chosen = Vec::new();
        for k in (lo.floor() as i32)..=(hi.ceil() as i32) {
            for &m in mantissas {
                let v = k as f64 + (m as f64).log10();
                if v >= lo - 1e-9 && v <= hi + 1e-9 {
                    chosen.push((v, m, k));
                }
            }
        }
        chosen
    };
    let mut chosen = [&[1, 2, 3, 4, 5, 6, 7, 8, 9][..], &[1, 2, 5], &[1]]
        .into_iter()
        .map(candidates)
        .find(|c| c.len() <= 9)
        .unwrap_or_else(|| candidates(&[1]).into_iter().step_by(2).collect());
    // Very wide axes: every other power, so that labels do not collide.
    while chosen.len() > 9 {
        chosen = chosen.into_iter().step_by(2).collect();
    }
    // One notation per axis: plain numbers when they all are short, else m e k throughout.
    let plain = chosen.iter().all(|&(_, _, k)| (-2..=3).contains(&k));
    chosen.into_iter().map(|(v, m, k)| (v, log10_tick_label(m, k, plain))).collect()
}

/// m × 10^k as a plain number (0.02, 5, 300) or as m e k (2e-5, 1e4).
fn log10_tick_label(m: u32, k: i32, plain: bool) -> String {
    if plain {
        let s = format!("{:.3}", m as f64 * 10f64.powi(k));
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{m}e{k}")
    }
}

/// A probability as a percentage with its standard error: "5.96 ± 0.17 %".
pub fn fmt_pct_se(mean: f64, se: f64) -> String {
    if se > 0.0 {
        format!("{:.2} ± {:.2} %", mean * 100.0, se * 100.0)
    } else {
        format!("{:.2} %", mean * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_every_point_and_quotes() {
        let mut p = PlotSpec::new("t", "T", "x, units", "y");
        p.series.push(Series::new("a \"b\"", Style::Line, vec![(1.0, 2.0), (3.0, 4.0)], 0).with_errors(vec![0.1, 0.2]));
        let csv = p.to_csv();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.starts_with("series,\"x, units\",y,error\n"));
        assert!(csv.contains("\"a \"\"b\"\"\",3,4,0.2"));
    }

    #[test]
    fn ranges_cover_bars_and_errors() {
        let mut p = PlotSpec::new("t", "T", "x", "y");
        p.series.push(Series::new("s", Style::Bars { width: 0.8 }, vec![(1.0, 0.5), (2.0, 0.7)], 0).with_errors(vec![0.1, 0.1]));
        let ((x0, x1), (y0, y1)) = p.ranges();
        assert!(x0 < 0.6 && x1 > 2.4);
        assert_eq!(y0, 0.0);
        assert!(y1 > 0.8);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_sig(0.0596), "0.0596");
        assert_eq!(fmt_sig(123.456), "123");
        assert_eq!(fmt_sig(1.0 / 42.0), "0.0238");
        assert_eq!(fmt_sig(2.5e-9), "2.50e-9");
        assert_eq!(fmt_pct_se(0.0596, 0.0017), "5.96 ± 0.17 %");
        assert_eq!(fmt_log10_tick(-3.0), "1e-3");
        assert_eq!(fmt_log10_tick(-2.5), "0.00316");
    }

    #[test]
    fn log_ticks_are_round_numbers() {
        let labels = |lo: f64, hi: f64| log10_ticks(lo, hi).into_iter().map(|(_, l)| l).collect::<Vec<_>>();
        // 3.2 … 120: 1-2-5 steps.
        assert_eq!(labels(0.5, 2.08), ["5", "10", "20", "50", "100"]);
        // Less than a decade: every digit.
        assert_eq!(labels(0.45, 1.1), ["3", "4", "5", "6", "7", "8", "9", "10"]);
        // Five decades: powers only, all in one notation.
        assert_eq!(labels(2.9, 8.1), ["1e3", "1e4", "1e5", "1e6", "1e7", "1e8"]);
        assert_eq!(labels(2.9, 5.6), ["1e3", "2e3", "5e3", "1e4", "2e4", "5e4", "1e5", "2e5"]);
        assert_eq!(labels(-2.1, -0.9), ["0.01", "0.02", "0.05", "0.1"]);
        assert_eq!(labels(-20.0, 0.0).len(), 6);
        assert!(log10_ticks(1.0, 1.0).is_empty());
        for (v, l) in log10_ticks(-1.0, 3.0) {
            assert!((10f64.powf(v) - l.parse::<f64>().unwrap()).abs() < 1e-9 * 10f64.powf(v), "{v} {l}");
        }
    }
}
