//! Renders `lessons/*.md` into HTML at build time, with `$…$` and `$$…$$` turned into MathML (no
//! fonts, scripts or CDNs at run time). A line `{{name}}` places the lesson's live widget `name`;
//! `## ` headings cut the lesson into sections (one slide each in presenter mode).

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
    let mut out = String::from("pub static TEXTS: &[(&str, LessonText)] = &[\n");
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let id = path.file_stem().unwrap().to_string_lossy().into_owned();
        let source = fs::read_to_string(&path).unwrap();
        let (title, sections) = split(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        writeln!(out, "    ({id:?}, LessonText {{ title: {title:?}, sections: &[").unwrap();
        for (heading, parts) in sections {
            writeln!(out, "        Section {{ heading: {heading:?}, parts: &[").unwrap();
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

type Sections = Vec<(String, Vec<Part>)>;

fn split(source: &str) -> Result<(String, Sections), String> {
    let mut title = None;
    let mut sections: Sections = vec![(String::new(), Vec::new())];
    let mut chunk = String::new();
    let flush = |chunk: &mut String, sections: &mut Sections| -> Result<(), String> {
        if !chunk.trim().is_empty() {
            let html = render(chunk)?;
            sections.last_mut().unwrap().1.push(Part::Html(html));
        }
        chunk.clear();
        Ok(())
    };
    for line in source.lines() {
        let trimmed = line.trim();
        if let Some(t) = trimmed.strip_prefix("# ") {
            title.get_or_insert_with(|| t.to_string());
        } else if let Some(h) = trimmed.strip_prefix("## ") {
            flush(&mut chunk, &mut sections)?;
            sections.push((h.to_string(), Vec::new()));
            chunk.push_str(line);
            chunk.push('\n');
        } else if let Some(name) = trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
            flush(&mut chunk, &mut sections)?;
            sections.last_mut().unwrap().1.push(Part::Widget(name.trim().to_string()));
        } else {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    flush(&mut chunk, &mut sections)?;
    if sections[0].1.is_empty() {
        sections.remove(0);
    }
    let title = title.ok_or("no `# title` line")?;
    if sections.first().is_some_and(|s| s.0.is_empty()) {
        sections[0].0 = title.clone();
    }
    Ok((title, sections))
}

fn render(markdown: &str) -> Result<String, String> {
    let options = Options::ENABLE_MATH | Options::ENABLE_TABLES | Options::ENABLE_SMART_PUNCTUATION;
    let mut error = None;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::InlineMath(tex) => math(&tex, latex2mathml::DisplayStyle::Inline, &mut error),
        Event::DisplayMath(tex) => math(&tex, latex2mathml::DisplayStyle::Block, &mut error),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn math<'a>(tex: &str, style: latex2mathml::DisplayStyle, error: &mut Option<String>) -> Event<'a> {
    match latex2mathml::latex_to_mathml(tex, style) {
        // latex2mathml reports some errors inside its output rather than as an Err.
        Ok(mathml) if mathml.contains("PARSE ERROR") => {
            error.get_or_insert_with(|| format!("formula `{tex}`: {mathml}"));
            Event::Text(CowStr::from(String::new()))
        }
        // An inline formula sits in a span of its own, so that on a narrow screen a wide one can
        // scroll inside it instead of widening the page (the math element keeps its own layout).
        Ok(mathml) if matches!(style, latex2mathml::DisplayStyle::Inline) => {
            Event::Html(CowStr::from(format!("<span class=\"imath\">{mathml}</span>")))
        }
        Ok(mathml) => Event::Html(CowStr::from(mathml)),
        Err(e) => {
            error.get_or_insert_with(|| format!("formula `{tex}`: {e}"));
            Event::Text(CowStr::from(String::new()))
        }
    }
}
