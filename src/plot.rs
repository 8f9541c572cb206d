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
    /// A pinned earlier run, drawn faint under the current one.
    pub ghost: bool,
}

impl Series {
    pub fn new(name: impl Into<String>, style: Style, points: Vec<(f64, f64)>, color: u32) -> Series {
        Series { name: name.into(), style, points, errors: None, color, dashed: false, ghost: false }
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

/// Where the plotting area lies on the canvas (in canvas pixels) and which data ranges it shows:
/// enough to go from a point to its pixel and back (hover, keyboard focus).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

impl Frame {
    pub fn to_pixel(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (self.left + (x - self.x.0) / (self.x.1 - self.x.0) * self.width, self.top + (self.y.1 - y) / (self.y.1 - self.y.0) * self.height)
    }
}

/// A point of a drawn spec: (series index, point index).
pub type PointRef = (usize, usize);

impl PlotSpec {
    /// What is drawn: the series not hidden (by name), and under them the pinned run's series as
    /// faint ghosts named "… (pinned: what changed)".
    pub fn view(&self, hidden: &[String], pinned: Option<(&PlotSpec, &str)>) -> PlotSpec {
        let mut drawn = self.clone();
        drawn.series.retain(|s| !hidden.contains(&s.name));
        if let Some((ghost, change)) = pinned {
            let ghosts = ghost.series.iter().filter(|s| !hidden.contains(&s.name) && !s.ghost).map(|s| Series {
                name: format!("{} (pinned: {change})", s.name),
                ghost: true,
                errors: None,
                ..s.clone()
            });
            drawn.series = ghosts.chain(drawn.series).collect();
        }
        drawn
    }

    /// The point drawn nearest to `pixel`, within `radius` pixels (ghosts included last: a
    /// current point wins a tie).
    pub fn nearest(&self, frame: &Frame, pixel: (f64, f64), radius: f64) -> Option<PointRef> {
        let mut best: Option<(f64, PointRef)> = None;
        for (s, series) in self.series.iter().enumerate() {
            for (i, &p) in series.points.iter().enumerate() {
                if !p.0.is_finite() || !p.1.is_finite() {
                    continue;
                }
                let (px, py) = frame.to_pixel(p);
                let d = (px - pixel.0).hypot(py - pixel.1) + if series.ghost { 0.5 } else { 0.0 };
                if d <= radius && best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, (s, i)));
                }
            }
        }
        best.map(|(_, r)| r)
    }

    /// Every finite point in reading order (series by series, left to right): the keyboard walks
    /// through them.
    pub fn points_in_order(&self) -> Vec<PointRef> {
        let mut order = Vec::new();
        for (s, series) in self.series.iter().enumerate().filter(|(_, s)| !s.ghost) {
            let mut indices: Vec<usize> =
                (0..series.points.len()).filter(|&i| series.points[i].0.is_finite() && series.points[i].1.is_finite()).collect();
            indices.sort_by(|a, b| series.points[*a].0.total_cmp(&series.points[*b].0));
            order.extend(indices.into_iter().map(|i| (s, i)));
        }
        order
    }

    /// A point's x and y as a reader reads them: back from log10 axes, categorical ticks by name.
    fn point_text(&self, (x, y): (f64, f64)) -> (String, String) {
        let x_text = match (&self.x_ticks, self.category_of(x)) {
            (Some(ticks), Some(c)) => ticks[c].1.clone(),
            (None, _) if self.x_is_log10 => fmt_short(10f64.powf(x)),
            _ => fmt_short(x),
        };
        let y_text = if self.y_is_log10 { fmt_short(10f64.powf(y)) } else { fmt_short(y) };
        (x_text, y_text)
    }

    /// Whether every point of series `s` sits at the same categorical tick.
    fn is_one_category(&self, s: usize) -> bool {
        let mut categories = self.series[s].points.iter().map(|&(x, _)| self.category_of(x));
        let first = categories.next().flatten();
        first.is_some() && categories.all(|c| c == first)
    }

    /// The categorical tick x sits at or around (a jittered strip plot's point: within half a
    /// step), the nearest one; None without categorical ticks.
    fn category_of(&self, x: f64) -> Option<usize> {
        let ticks = self.x_ticks.as_ref()?;
        (0..ticks.len())
            .filter(|&i| (ticks[i].0 - x).abs() < 0.5)
            .min_by(|&a, &b| (ticks[a].0 - x).abs().total_cmp(&(ticks[b].0 - x).abs()))
    }

    fn error_text(series: &Series, i: usize) -> Option<String> {
        series.errors.as_ref().and_then(|e| e.get(i)).filter(|e| e.is_finite() && **e > 0.0).map(|e| fmt_short(*e))
    }

    /// A point in words: its series, then x and y with the axes' names (which carry the units),
    /// read back from log10 axes and categorical ticks, with the error bar if any.
    pub fn describe(&self, (s, i): PointRef) -> String {
        let series = &self.series[s];
        let (x_text, y_text) = self.point_text(series.points[i]);
        let error = Self::error_text(series, i).map(|e| format!(" ± {e}")).unwrap_or_default();
        if self.x_label.is_empty() {
            // An unnamed categorical axis: the category is the x.
            return format!("{}: {x_text}; {} = {y_text}{error}", series.name, self.y_label);
        }
        format!("{}: {} = {x_text}; {} = {y_text}{error}", series.name, self.x_label, self.y_label)
    }

    /// What the plot shows in one sentence, computed from its points: the description of the
    /// canvas for a reader who cannot see it, and a caption for one who skims.
    pub fn summary(&self) -> String {
        let order = self.points_in_order();
        let (Some(&first), Some(&last)) = (order.first(), order.last()) else {
            return format!("{}: no points yet.", self.title);
        };
        let y_of = |(s, i): PointRef| self.series[s].points[i].1;
        let highest = order.iter().copied().fold(first, |best, p| if y_of(p) > y_of(best) { p } else { best });
        let lowest = order.iter().copied().fold(last, |best, p| if y_of(p) < y_of(best) { p } else { best });
        let at = |(s, i): PointRef| {
            let (x, y) = self.point_text(self.series[s].points[i]);
            // A series that is one category (a strip plot's column) is named by its series: x adds nothing.
            if self.x_label.is_empty() && self.is_one_category(s) {
                y
            } else if self.x_label.is_empty() {
                format!("{y} at {x}")
            } else {
                format!("{y} at {} = {x}", self.x_label)
            }
        };
        let names: Vec<&str> = self.series.iter().filter(|s| !s.ghost && !s.points.is_empty()).map(|s| s.name.as_str()).collect();
        if names.len() == 1 {
            format!("{}: {} from {} to {}, over {} points.", names[0], self.y_label, at(lowest), at(highest), order.len())
        } else {
            let listed = if names.len() <= 6 { names.join(", ") } else { format!("{}, …", names[..6].join(", ")) };
            format!(
                "{} series ({listed}); the highest {} is {}'s {}, the lowest {}'s {}.",
                names.len(),
                self.y_label,
                self.series[highest.0].name,
                at(highest),
                self.series[lowest.0].name,
                at(lowest)
            )
        }
    }

    /// The plotted numbers as a table (the current run's series; at most `max_rows` rows, the
    /// CSV has them all), and how many rows there are in all.
    pub fn data_table(&self, max_rows: usize) -> (TableSpec, usize) {
        let order = self.points_in_order();
        let with_errors = order.iter().any(|&(s, i)| Self::error_text(&self.series[s], i).is_some());
        let mut headers = vec!["series".to_string(), self.x_label.clone(), self.y_label.clone()];
        if with_errors {
            headers.push("±".to_string());
        }
        let rows = order
            .iter()
            .take(max_rows)
            .map(|&(s, i)| {
                let series = &self.series[s];
                let (x, y) = self.point_text(series.points[i]);
                let mut row = vec![series.name.clone(), x, y];
                if with_errors {
                    row.push(Self::error_text(series, i).unwrap_or_default());
                }
                row
            })
            .collect();
        (TableSpec { id: format!("{}-data", self.id), headers, rows }, order.len())
    }
}

/// [`fmt_sig`] without trailing zeros (1, 0.5 rather than 1.00, 0.500).
fn fmt_short(x: f64) -> String {
    let text = fmt_sig(x);
    if text.contains('.') && !text.contains('e') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A plot title's lines: its words wrapped greedily so that every line `fits` (a word that fits
/// no line gets one of its own). Drawn as one line, a title wider than its canvas lost both ends
/// on a phone.
pub fn wrap_words(text: &str, fits: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if line.is_empty() {
            line = word.to_string();
            continue;
        }
        let longer = format!("{line} {word}");
        if fits(&longer) {
            line = longer;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Whether labels centred at `centres` (in order) with these `widths` would touch (closer than
/// `gap`): then they are drawn on two alternating rows.
pub fn labels_collide(centres: &[f64], widths: &[f64], gap: f64) -> bool {
    centres.windows(2).zip(widths.windows(2)).any(|(c, w)| c[1] - c[0] < (w[0] + w[1]) / 2.0 + gap)
}

/// Which log-axis ticks get a label, given each tick's value (log10 units) and its position in
/// pixels along the axis: whole decades first, then 5 and 2 × 10^k, then the other digits, each
/// only where it is at least `room` pixels from every label already placed (every grid line stays
/// drawn). On a short axis 0.09 and 0.1 would otherwise print over each other.
pub fn log_labels_with_room(ticks: &[(f64, f64)], room: f64) -> Vec<bool> {
    let priority = |v: f64| {
        let mantissa = 10f64.powf(v - v.floor()).round() as u32;
        match mantissa {
            1 | 10 => 0,
            5 => 1,
            2 => 2,
            _ => 3,
        }
    };
    let mut order: Vec<usize> = (0..ticks.len()).collect();
    order.sort_by_key(|&i| priority(ticks[i].0));
    let mut placed: Vec<f64> = Vec::new();
    let mut labelled = vec![false; ticks.len()];
    for i in order {
        let at = ticks[i].1;
        if placed.iter().all(|other| (at - other).abs() >= room) {
            placed.push(at);
            labelled[i] = true;
        }
    }
    labelled
}

/// What changed between two parameter queries (`a=1&b=2`), for a pinned run's legend:
/// "ef_search 16 → 64, k 4 → 10"; "same parameters" when nothing did.
pub fn describe_change(before: &str, after: &str) -> String {
    let pairs = |q: &str| -> Vec<(String, String)> {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map_or((p.to_string(), String::new()), |(n, v)| (n.into(), v.into())))
            .collect()
    };
    let (old, new) = (pairs(before), pairs(after));
    let changes: Vec<String> = new
        .iter()
        .filter_map(|(name, value)| {
            let previous = old.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("");
            (previous != value).then(|| format!("{name} {previous} → {value}"))
        })
        .collect();
    if changes.is_empty() {
        "same parameters".into()
    } else {
        changes.join(", ")
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
    #[test]
    fn labels_collide_when_neighbours_overlap() {
        assert!(!labels_collide(&[0.0, 50.0, 100.0], &[40.0, 40.0, 40.0], 6.0));
        assert!(labels_collide(&[0.0, 30.0, 60.0], &[40.0, 20.0, 40.0], 6.0), "the first two touch");
        assert!(!labels_collide(&[10.0], &[500.0], 6.0), "one label never collides");
    }

    #[test]
    fn titles_wrap_at_word_boundaries() {
        let fits = |line: &str| line.chars().count() <= 12;
        assert_eq!(wrap_words("recall against speed as ef grows", fits), ["recall", "against", "speed as ef", "grows"]);
        assert_eq!(wrap_words("short title", fits), ["short title"]);
        // A word wider than a line keeps a line of its own; spaces collapse.
        assert_eq!(wrap_words("a  extraordinarily long", fits), ["a", "extraordinarily", "long"]);
        assert!(wrap_words("", fits).is_empty());
    }

    #[test]
    fn hover_finds_the_nearest_point_and_describes_it_in_axis_units() {
        let mut spec = PlotSpec::new("p", "t", "ef_search", "recall@10");
        spec.series.push(Series::new("ip", Style::Line, vec![(1.0, 0.5), (2.0, 0.9)], 0).with_errors(vec![0.1, 0.0]));
        spec.series.push(Series::new("l2", Style::Line, vec![(1.0, 0.2), (2.0, 0.95)], 1));
        let frame = Frame { left: 10.0, top: 0.0, width: 100.0, height: 100.0, x: (0.0, 2.0), y: (0.0, 1.0) };
        assert_eq!(frame.to_pixel((1.0, 0.5)), (60.0, 50.0));
        assert_eq!(spec.nearest(&frame, (61.0, 48.0), 8.0), Some((0, 0)));
        assert_eq!(spec.nearest(&frame, (61.0, 79.0), 8.0), Some((1, 0)));
        assert_eq!(spec.nearest(&frame, (30.0, 30.0), 8.0), None);
        assert_eq!(spec.describe((0, 0)), "ip: ef_search = 1; recall@10 = 0.5 ± 0.1");
        spec.x_is_log10 = true;
        assert_eq!(spec.describe((1, 1)), "l2: ef_search = 100; recall@10 = 0.95");
        assert_eq!(spec.points_in_order(), vec![(0, 0), (0, 1), (1, 0), (1, 1)]);
    }

    #[test]
    fn a_summary_and_a_data_table_say_what_the_plot_shows() {
        let mut spec = PlotSpec::new("recall", "Recall", "ef_search", "recall@10");
        assert_eq!(spec.summary(), "Recall: no points yet.");
        spec.series.push(Series::new("ip", Style::Line, vec![(1.0, 0.5), (2.0, 0.9)], 0).with_errors(vec![0.1, 0.0]));
        assert_eq!(spec.summary(), "ip: recall@10 from 0.5 at ef_search = 1 to 0.9 at ef_search = 2, over 2 points.");
        spec.series.push(Series::new("l2", Style::Line, vec![(1.0, 0.2), (2.0, 0.95)], 1));
        assert_eq!(
            spec.summary(),
            "2 series (ip, l2); the highest recall@10 is l2's 0.95 at ef_search = 2, the lowest l2's 0.2 at ef_search = 1."
        );
        let (table, total) = spec.data_table(3);
        assert_eq!(total, 4);
        assert_eq!(table.headers, ["series", "ef_search", "recall@10", "±"]);
        assert_eq!(table.rows.len(), 3);
        assert_eq!(table.rows[0], ["ip", "1", "0.5", "0.1"]);
        assert_eq!(table.rows[1], ["ip", "2", "0.9", ""]);
    }

    #[test]
    fn a_strip_plot_names_its_points_by_category_not_by_their_jitter() {
        // Jittered columns on an unnamed categorical axis, as the HT lesson's estimates.
        let mut spec = PlotSpec::new("strip", "Estimates", "", "V (%)");
        spec.series.push(Series::new("HT / slate IPS", Style::Points, vec![(0.8, 30.0), (1.2, 37.4)], 0));
        spec.series.push(Series::new("SNIPS", Style::Points, vec![(1.9, 31.0), (2.3, 29.0)], 1));
        spec.x_ticks = Some(vec![(1.0, "ht".to_string()), (2.0, "snips".to_string())]);
        assert_eq!(spec.summary(), "2 series (HT / slate IPS, SNIPS); the highest V (%) is HT / slate IPS's 37.4, the lowest SNIPS's 29.");
        assert_eq!(spec.describe((0, 1)), "HT / slate IPS: ht; V (%) = 37.4");
        // A series spanning categories (bias², variance… per estimator) keeps its category.
        let mut bars = PlotSpec::new("bars", "Bias and variance", "", "(log scale)");
        bars.series.push(Series::new("MSE", Style::Points, vec![(1.0, 3.0), (2.0, 1.0)], 0));
        bars.series.push(Series::new("bias²", Style::Points, vec![(1.0, 0.5), (2.0, 0.25)], 1));
        bars.x_ticks = spec.x_ticks.clone();
        assert_eq!(bars.summary(), "2 series (MSE, bias²); the highest (log scale) is MSE's 3 at ht, the lowest bias²'s 0.25 at snips.");
    }

    #[test]
    fn hidden_series_vanish_and_a_pinned_run_is_drawn_faint_underneath() {
        let mut now = PlotSpec::new("p", "t", "x", "y");
        now.series.push(Series::new("a", Style::Line, vec![(0.0, 1.0)], 0));
        now.series.push(Series::new("b", Style::Line, vec![(0.0, 2.0)], 1));
        let mut before = now.clone();
        before.series[0].points = vec![(0.0, 0.5)];
        let change = describe_change("ef_search=16&k=4&seed=1", "ef_search=64&k=4&seed=1");
        assert_eq!(change, "ef_search 16 → 64");
        assert_eq!(describe_change("a=1", "a=1"), "same parameters");
        let drawn = now.view(&["b".to_string()], Some((&before, &change)));
        let names: Vec<&str> = drawn.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a (pinned: ef_search 16 → 64)", "a"]);
        assert!(drawn.series[0].ghost && !drawn.series[1].ghost);
        assert_eq!(drawn.series[0].points, vec![(0.0, 0.5)]);
        // The keyboard walks the current series only.
        assert_eq!(drawn.points_in_order(), vec![(1, 0)]);
    }

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
    fn log_labels_keep_their_room_decades_first() {
        let at = |values: &[f64], pixels_per_decade: f64| -> Vec<(f64, f64)> {
            values.iter().map(|&v: &f64| (v.log10(), pixels_per_decade * v.log10())).collect()
        };
        // 0.07, 0.09, 0.1 at 200 px a decade (0.09 is 9.2 px below 0.1): left to right would
        // label 0.07 and 0.09; the decade goes first, and 0.09 has no room beside it.
        assert_eq!(log_labels_with_room(&at(&[0.07, 0.09, 0.1], 200.0), 14.0), [true, false, true]);
        // 2 and 5 before the other digits: 3 and 4 lie within 40 px of 2 or 5, 2 and 5 do not
        // lie within 40 px of each other (80 px at 200 px a decade).
        assert_eq!(log_labels_with_room(&at(&[2.0, 3.0, 4.0, 5.0], 200.0), 40.0), [true, false, false, true]);
        // 5 before 2 where only one fits.
        assert_eq!(log_labels_with_room(&at(&[2.0, 5.0], 200.0), 100.0), [false, true]);
        // Room enough: every tick.
        let all = at(&[0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1], 200.0);
        assert!(log_labels_with_room(&all, 1.0).iter().all(|&l| l));
        // Whatever is labelled keeps its room.
        let labelled = log_labels_with_room(&all, 14.0);
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                if i != j && labelled[i] && labelled[j] {
                    assert!((a.1 - b.1).abs() >= 14.0, "{i} {j}");
                }
            }
        }
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
