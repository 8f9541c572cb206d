//! Renders `lessons/*.md` into HTML at build time, with `$…$` and `$$…$$` turned into MathML Core
//! (no fonts, scripts or CDNs at run time). A line `{{name}}` places the lesson's live widget
//! `name`; `## ` headings cut the lesson into sections (one or more slides each in presenter mode).
//! A paragraph that begins `Note: ` is a speaker note: kept apart from the text and shown only in
//! the presenter's speaker view (as in reveal.js's Markdown).

use math_core::{LatexToMathML, MathCoreConfig, MathDisplay};
use pulldown_cmark::{html, CowStr, Event, Options, Parser};
use std::fmt::Write as _;
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=lessons");
    let mut entries: Vec<_> = fs::read_dir("lessons")
        .expect("the lessons/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    entries.sort();
    // The TeX source rides along as an annotation: screen readers and copy-paste can use it, and a
    // test checks each formula's MathML against it.
    let config = MathCoreConfig { annotation: true, ..MathCoreConfig::default() };
    let converter = LatexToMathML::new(config).expect("a MathML configuration");
    let mut out = String::from("pub static TEXTS: &[(&str, LessonText)] = &[\n");
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let id = path.file_stem().unwrap().to_string_lossy().into_owned();
        let source = fs::read_to_string(&path).unwrap();
        let (title, sections) = split(&source, &converter).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        writeln!(out, "    ({id:?}, LessonText {{ title: {title:?}, sections: &[").unwrap();
        for Sec { heading, parts, notes } in sections {
            writeln!(out, "        Section {{ heading: {heading:?}, notes: {notes:?}, parts: &[").unwrap();
            for part in parts {
                match part {
                    Part::Html(h) => writeln!(out, "            Part::Html({h:?}),").unwrap(),
                    Part::Widget(w) => writeln!(out, "            Part::Widget({w:?}),").unwrap(),
                }
            }
            writeln!(out, "        ] }},").unwrap();
        }
        writeln!(out, "    ] }}),").unwrap();
    }
    out.push_str("];\n");
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join("lesson_texts.rs"), out).unwrap();
}

enum Part {
    Html(String),
    Widget(String),
}

struct Sec {
    heading: String,
    parts: Vec<Part>,
    /// The speaker notes, rendered.
    notes: String,
}

fn split(source: &str, converter: &LatexToMathML) -> Result<(String, Vec<Sec>), String> {
    let mut title = None;
    let mut sections = vec![Sec { heading: String::new(), parts: Vec::new(), notes: String::new() }];
    let mut chunk = String::new();
    // Markdown of the speaker note being read (a `Note: ` paragraph runs to the next blank line).
    let mut note: Option<String> = None;
    let flush = |chunk: &mut String, sections: &mut Vec<Sec>| -> Result<(), String> {
        if !chunk.trim().is_empty() {
            let html = render(chunk, converter)?;
            sections.last_mut().unwrap().parts.push(Part::Html(html));
        }
        chunk.clear();
        Ok(())
    };
    let flush_note = |note: &mut Option<String>, sections: &mut Vec<Sec>| -> Result<(), String> {
        if let Some(markdown) = note.take() {
            let html = render(&markdown, converter)?;
            sections.last_mut().unwrap().notes.push_str(&html);
        }
        Ok(())
    };
    for line in source.lines() {
        let trimmed = line.trim();
        if note.is_some() {
            if trimmed.is_empty() {
                flush_note(&mut note, &mut sections)?;
            } else {
                let n = note.as_mut().unwrap();
                n.push_str(line);
                n.push('\n');
            }
            continue;
        }
        if let Some(t) = trimmed.strip_prefix("# ") {
            title.get_or_insert_with(|| t.to_string());
        } else if let Some(h) = trimmed.strip_prefix("## ") {
            flush(&mut chunk, &mut sections)?;
            sections.push(Sec { heading: h.to_string(), parts: Vec::new(), notes: String::new() });
            chunk.push_str(line);
            chunk.push('\n');
        } else if let Some(name) = trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
            flush(&mut chunk, &mut sections)?;
            sections.last_mut().unwrap().parts.push(Part::Widget(name.trim().to_string()));
        } else if let Some(text) = line.strip_prefix("Note: ") {
            note = Some(format!("{text}\n"));
        } else {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    flush_note(&mut note, &mut sections)?;
    flush(&mut chunk, &mut sections)?;
    if sections[0].parts.is_empty() && sections[0].notes.is_empty() {
        sections.remove(0);
    }
    let title = title.ok_or("no `# title` line")?;
    if sections.first().is_some_and(|s| s.heading.is_empty()) {
        sections[0].heading = title.clone();
    }
    Ok((title, sections))
}

fn render(markdown: &str, converter: &LatexToMathML) -> Result<String, String> {
    let options = Options::ENABLE_MATH | Options::ENABLE_TABLES | Options::ENABLE_SMART_PUNCTUATION;
    let mut error = None;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::InlineMath(tex) => math(&tex, MathDisplay::Inline, converter, &mut error),
        Event::DisplayMath(tex) => math(&tex, MathDisplay::Block, converter, &mut error),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn math<'a>(tex: &str, display: MathDisplay, converter: &LatexToMathML, error: &mut Option<String>) -> Event<'a> {
    match converter.convert_with_local_state(tex, display).map(|converted| converted.mathml) {
        // An inline formula sits in a span of its own, so that on a narrow screen a wide one can
        // scroll inside it instead of widening the page (the math element keeps its own layout).
        Ok(mathml) if display == MathDisplay::Inline => Event::Html(CowStr::from(format!("<span class=\"imath\">{mathml}</span>"))),
        Ok(mathml) => Event::Html(CowStr::from(mathml)),
        Err(e) => {
            error.get_or_insert_with(|| format!("formula `{tex}`: {e:?}"));
            Event::Text(CowStr::from(String::new()))
        }
    }
}
