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
    pub parts: &'static [Part],
}

#[derive(Debug, PartialEq)]
pub enum Part {
    /// Rendered HTML with MathML formulas.
    Html(&'static str),
    /// A live widget: its name, then optional arguments (`controls items slate_size`).
    Widget(&'static str),
}

include!(concat!(env!("OUT_DIR"), "/lesson_texts.rs"));

pub fn text(id: &str) -> Option<&'static LessonText> {
    TEXTS.iter().find(|(i, _)| *i == id).map(|(_, t)| t)
}
