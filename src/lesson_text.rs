//! Lesson prose, rendered from `lessons/<id>.md` at build time (see build.rs).

#[derive(Debug)]
pub struct LessonText {
    pub title: &'static str,
    pub sections: &'static [Section],
}

/// A `## ` section of a lesson: one slide in presenter mode.
#[derive(Debug)]
pub struct Section {
    pub heading: &'static str,
    /// Speaker notes (HTML), shown only in the speaker view.
    pub notes: &'static str,
    pub parts: &'static [Part],
}

#[derive(Debug, PartialEq)]
pub enum Part {
    /// Rendered HTML with MathML formulas.
    Html(&'static str),
    /// A live widget: its name, then optional arguments (`controls items slate_size`).
    Widget(&'static str),
}

impl Part {
    /// A widget's name (its first word); None for prose.
    pub fn widget_name(&self) -> Option<&'static str> {
        match self {
            Part::Widget(spec) => spec.split_whitespace().next(),
            Part::Html(_) => None,
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/lesson_texts.rs"));

pub fn text(id: &str) -> Option<&'static LessonText> {
    TEXTS.iter().find(|(i, _)| *i == id).map(|(_, t)| t)
}

/// One slide of presenter mode: parts `parts` of section `section`. A long section is shown as
/// several slides, each holding at most one figure with the prose that leads to it (controls and
/// run buttons stay with the figure they serve).
#[derive(Clone, Debug, PartialEq)]
pub struct Slide {
    pub section: usize,
    pub parts: std::ops::Range<usize>,
    /// This slide is the `part`-th (from 0) of `of` slides of its section.
    pub part: usize,
    pub of: usize,
}

/// Widgets that set parameters or start runs: not figures of their own.
const CONTROL_WIDGETS: &[&str] = &["params", "controls", "run", "presets"];

fn is_figure(part: &Part) -> bool {
    part.widget_name().is_some_and(|name| !CONTROL_WIDGETS.contains(&name))
}

impl LessonText {
    /// The slides of presenter mode, in order: a new slide starts when prose or a second figure
    /// follows a figure.
    pub fn slides(&self) -> Vec<Slide> {
        let mut slides = Vec::new();
        for (s, section) in self.sections.iter().enumerate() {
            let first = slides.len();
            let mut start = 0;
            let mut has_figure = false;
            for (i, part) in section.parts.iter().enumerate() {
                let breaks = has_figure && (matches!(part, Part::Html(_)) || is_figure(part));
                if breaks {
                    slides.push(Slide { section: s, parts: start..i, part: 0, of: 0 });
                    start = i;
                    has_figure = false;
                }
                has_figure |= is_figure(part);
            }
            slides.push(Slide { section: s, parts: start..section.parts.len().max(start), part: 0, of: 0 });
            let of = slides.len() - first;
            for (k, slide) in slides[first..].iter_mut().enumerate() {
                slide.part = k;
                slide.of = of;
            }
        }
        slides
    }
}

impl LessonText {
    /// The start of a slide's prose as plain text (formulas as their TeX), at most about `chars`
    /// characters: for the overview and the speaker view's "next slide".
    pub fn slide_preview(&self, slide: &Slide, chars: usize) -> String {
        let mut text = String::new();
        for part in &self.sections[slide.section].parts[slide.parts.clone()] {
            match part {
                Part::Html(html) => text.push_str(&plain_text(html)),
                Part::Widget(_) => text.push_str(&format!(" [{}] ", part.widget_name().unwrap_or_default())),
            }
            if text.len() > chars {
                break;
            }
        }
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match text.char_indices().nth(chars) {
            Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
            None => text,
        }
    }
}

/// The words of rendered HTML: tags dropped; a formula's MathML dropped for its TeX annotation.
pub fn plain_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        if rest.starts_with("<math") {
            // The TeX, between `$`, instead of the presentation markup.
            let end = rest.find("</math>").map_or(rest.len(), |e| e + "</math>".len());
            let math = &rest[..end];
            if let Some(tex) = math.split_once("application/x-tex\">").and_then(|(_, t)| t.split_once("</annotation>")).map(|(t, _)| t) {
                out.push('$');
                out.push_str(tex);
                out.push('$');
            }
            rest = &rest[end..];
        } else {
            rest = rest.find('>').map_or("", |e| &rest[e + 1..]);
        }
    }
    out.push_str(rest);
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// How a lesson page adds its text, a few parts per task, so that no task of the page is long
/// (see `ui::lesson_page`). It stops before widgets: building a widget is most of a part's cost (a
/// parameter panel is ~110 elements), so a step adds whole widgets, each with the prose after it.
/// Rendered a section or more at a time, the capstone's three opening sections made one 65–123 ms
/// task, Horvitz–Thompson's first (its panel and prose) ~55 ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Reveal {
    /// Counts of parts (in reading order) at which the page may stop: before each widget, and all.
    stops: Vec<usize>,
    /// The count once the first figure is in (the stop after it), so that the first report draws.
    first_figure: usize,
}

/// Widgets added per step once the first report is on screen: two halve the time the whole text
/// takes to appear, and no step is a long task.
pub const WIDGETS_PER_STEP: usize = 2;

impl Reveal {
    pub fn of(text: &LessonText) -> Reveal {
        let parts = || text.sections.iter().flat_map(|s| s.parts.iter());
        let mut stops: Vec<usize> = parts().enumerate().filter(|(_, p)| p.widget_name().is_some()).map(|(i, _)| i).collect();
        let all = parts().count();
        stops.push(all);
        let figure = parts().position(is_figure).unwrap_or(all);
        let first_figure = stops.iter().copied().find(|&stop| stop > figure).unwrap_or(all);
        Reveal { stops, first_figure }
    }

    /// The parts in the first render: the prose before the first widget.
    pub fn first(&self) -> usize {
        self.stops[0]
    }

    pub fn all(&self) -> usize {
        *self.stops.last().expect("the last stop is all parts")
    }

    /// How many of each section's parts a page holding its first `shown` parts shows.
    pub fn in_sections(text: &LessonText, shown: usize) -> impl Iterator<Item = usize> + '_ {
        text.sections.iter().scan(0, move |before, section| {
            let in_page = shown.saturating_sub(*before).min(section.parts.len());
            *before += section.parts.len();
            Some(in_page)
        })
    }

    /// Whether the page, with `count` parts in, waits for the first report before adding more.
    pub fn waits_for_report(&self, count: usize, has_report: bool) -> bool {
        count == self.first_figure && !has_report && count < self.all()
    }

    /// The parts in the page after the step from `count`. Up to the first figure the steps grow
    /// (one widget, then two, then four: each about as large as all before it, so that a deep first
    /// figure is a few frames away, not one per widget), and the figure comes at once when the
    /// report is already there; after it, [`WIDGETS_PER_STEP`] at a time.
    pub fn next(&self, count: usize, has_report: bool) -> usize {
        let ahead = |widgets: usize| self.stops.iter().copied().filter(|&stop| stop > count).nth(widgets - 1).unwrap_or(self.all());
        if count < self.first_figure && has_report {
            self.first_figure
        } else if count < self.first_figure {
            let widgets_in = self.stops.iter().filter(|&&stop| stop <= count).count().saturating_sub(1);
            ahead(widgets_in + 1).min(self.first_figure)
        } else {
            ahead(WIDGETS_PER_STEP)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_comes_in_growing_steps_to_its_first_figure_then_two_widgets_at_a_time() {
        const PARTS: [&[Part]; 3] = [
            &[Part::Html("a"), Part::Widget("params"), Part::Html("b"), Part::Widget("run"), Part::Html("c")],
            &[Part::Html("d"), Part::Widget("controls x"), Part::Widget("plot-a"), Part::Html("e")],
            &[Part::Html("f"), Part::Widget("plot-b"), Part::Widget("plot-c"), Part::Widget("plot-d"), Part::Html("g")],
        ];
        let sections = [
            Section { heading: "1", notes: "", parts: PARTS[0] },
            Section { heading: "2", notes: "", parts: PARTS[1] },
            Section { heading: "3", notes: "", parts: PARTS[2] },
        ];
        let sections: &'static [Section] = Box::leak(Box::new(sections));
        let reveal = Reveal::of(&LessonText { title: "t", sections });
        // Parts in reading order: 0 a, 1 params, 2 b, 3 run, 4 c, 5 d, 6 controls, 7 plot-a, 8 e,
        // 9 f, 10 plot-b, 11 plot-c, 12 plot-d, 13 g.
        assert_eq!(reveal.first(), 1, "the prose before the first widget");
        assert_eq!(reveal.all(), 14);
        // One widget (params), then two (run, controls), then up to the first figure (plot-a).
        assert_eq!(reveal.next(1, false), 3);
        assert_eq!(reveal.next(3, false), 7);
        assert_eq!(reveal.next(7, false), 10);
        assert!(reveal.waits_for_report(10, false) && !reveal.waits_for_report(10, true) && !reveal.waits_for_report(7, false));
        // The report before its figure: the figure at once.
        assert_eq!(reveal.next(3, true), 10);
        // Then two widgets a step, the last step to the end.
        assert_eq!(reveal.next(10, true), 12);
        assert_eq!(reveal.next(12, true), 14);
        let text = LessonText { title: "t", sections };
        assert_eq!(Reveal::in_sections(&text, 7).collect::<Vec<_>>(), [5, 2, 0]);
        assert_eq!(Reveal::in_sections(&text, usize::MAX).collect::<Vec<_>>(), [5, 4, 5]);
        // A text without a figure never waits; one without widgets is whole at once.
        let prose: &'static [Section] =
            Box::leak(Box::new([Section { heading: "1", notes: "", parts: &[Part::Html("a"), Part::Widget("params"), Part::Html("b")] }]));
        let reveal = Reveal::of(&LessonText { title: "t", sections: prose });
        assert_eq!((reveal.first(), reveal.all(), reveal.next(1, false)), (1, 3, 3));
        assert!(!reveal.waits_for_report(3, false));
        let none: &'static [Section] = Box::leak(Box::new([Section { heading: "1", notes: "", parts: &[Part::Html("a")] }]));
        assert_eq!(Reveal::of(&LessonText { title: "t", sections: none }).first(), 1);
    }

    /// Every `<math>…</math>` of every lesson (text and speaker notes), with its TeX source.
    fn formulas() -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        for (id, text) in TEXTS {
            let htmls = text.sections.iter().flat_map(|s| {
                s.parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Html(h) => Some(*h),
                        Part::Widget(_) => None,
                    })
                    .chain(std::iter::once(s.notes))
            });
            for html in htmls {
                let mut rest = html;
                while let Some(start) = rest.find("<math") {
                    let end = rest[start..].find("</math>").expect("a closed math element") + start + "</math>".len();
                    let math = &rest[start..end];
                    let tex_start =
                        math.find("encoding=\"application/x-tex\">").expect("the TeX annotation") + "encoding=\"application/x-tex\">".len();
                    let tex_end = math[tex_start..].find("</annotation>").unwrap() + tex_start;
                    let tex = math[tex_start..tex_end].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
                    let shown = math[..math.find("<annotation").unwrap()].to_string();
                    out.push((*id, tex, shown));
                    rest = &rest[end..];
                }
            }
        }
        out
    }

    /// The text nodes of a piece of MathML.
    fn text_nodes(mathml: &str) -> Vec<&str> {
        mathml.split('<').filter_map(|piece| piece.split_once('>').map(|(_, text)| text)).filter(|t| !t.is_empty()).collect()
    }

    /// How many times a script follows the other script on the same base (`x_a^b`, `x^b_{a}`).
    fn double_scripts(tex: &str) -> usize {
        let bytes = tex.as_bytes();
        let mut count = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'_' || bytes[i] == b'^' {
                // Skip the script: a braced group, a command, or one character.
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] == b' ' {
                    j += 1;
                }
                if j < bytes.len() && bytes[j] == b'{' {
                    let mut depth = 0;
                    while j < bytes.len() {
                        depth += match bytes[j] {
                            b'{' => 1,
                            b'}' => -1,
                            _ => 0,
                        };
                        j += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                } else if j < bytes.len() && bytes[j] == b'\\' {
                    j += 1;
                    while j < bytes.len() && bytes[j].is_ascii_alphabetic() {
                        j += 1;
                    }
                } else {
                    j += 1;
                }
                while j < bytes.len() && bytes[j] == b' ' {
                    j += 1;
                }
                let other = if bytes[i] == b'_' { b'^' } else { b'_' };
                if j < bytes.len() && bytes[j] == other {
                    count += 1;
                }
                i = j;
            } else {
                i += 1;
            }
        }
        count
    }

    #[test]
    fn every_formula_is_typeset_right() {
        let formulas = formulas();
        assert!(formulas.len() > 100, "only {} formulas found", formulas.len());
        for (id, tex, shown) in &formulas {
            // A minus sign is U+2212, never the hyphen.
            for text in text_nodes(shown) {
                assert!(!text.contains('-'), "{id}: `{tex}` shows a hyphen for a minus: {shown}");
            }
            // Sub- and superscript on one base are one msubsup (or munderover), not a script
            // nested in the other.
            let joint = shown.matches("<msubsup").count() + shown.matches("<munderover").count();
            assert!(joint >= double_scripts(tex), "{id}: `{tex}` nests its scripts: {shown}");
            // Accents are accents.
            let accents = ["\\hat", "\\tilde", "\\bar", "\\vec", "\\widehat"].iter().map(|a| tex.matches(a).count()).sum::<usize>();
            assert!(shown.matches("<mover accent=\"true\"").count() >= accents, "{id}: `{tex}`'s accents: {shown}");
            assert!(!shown.contains("<mo>^</mo>"), "{id}: `{tex}` shows a caret: {shown}");
        }
    }

    #[test]
    fn the_script_counter_sees_what_a_reader_sees() {
        assert_eq!(double_scripts(r"\pi_0^{(k)}(a)"), 1);
        assert_eq!(double_scripts(r"V_d^\top U_{a}"), 1);
        assert_eq!(double_scripts(r"\sum_{j=0}^{K} x_j"), 1);
        assert_eq!(double_scripts(r"x_{a^b} + y^2"), 0);
    }

    #[test]
    fn slide_previews_are_plain_words() {
        let text = super::text("slate-world").unwrap();
        let slides = text.slides();
        let preview = text.slide_preview(&slides[1], 120);
        assert!(!preview.contains('<') && !preview.is_empty(), "{preview}");
        assert!(preview.chars().count() <= 121);
        assert_eq!(
            plain_text("<p>a <math><mi>x</mi><annotation encoding=\"application/x-tex\">x</annotation></math> &amp; b</p>"),
            "a $x$ & b"
        );
    }

    #[test]
    fn slides_cover_every_part_once_in_order_with_at_most_one_figure_each() {
        for (id, text) in TEXTS {
            let slides = text.slides();
            let mut expected = (0, 0);
            for slide in &slides {
                if slide.section != expected.0 {
                    assert_eq!(expected.1, text.sections[expected.0].parts.len(), "{id}");
                    expected = (slide.section, 0);
                }
                assert_eq!(slide.parts.start, expected.1, "{id}: slide {slide:?}");
                expected.1 = slide.parts.end;
                let figures = text.sections[slide.section].parts[slide.parts.clone()].iter().filter(|p| is_figure(p)).count();
                assert!(figures <= 1, "{id}: {figures} figures on {slide:?}");
                assert!(slide.part < slide.of);
            }
            assert_eq!(expected, (text.sections.len() - 1, text.sections.last().unwrap().parts.len()), "{id}");
        }
    }
}
