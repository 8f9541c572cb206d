//! `rorec`: the command-line twin of the tutorial. Runs any lesson's experiment with the same
//! parameter names as the page's URL and prints the same JSON report; writes logged datasets as
//! CSV; serves the built app on 127.0.0.1.

use reward_reco::core::budget;
use reward_reco::core::params::{self as crate_params, Kind};
use reward_reco::lessons::{self, Lesson, LESSONS};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage:
  rorec list                                  the lessons
  rorec params <lesson>                       a lesson's parameters, ranges, defaults and presets
  rorec run <lesson> [--preset NAME] [--name value | name=value | '#/<lesson>?query']... [--csv FILE] [--pretty]
                                              run the experiment, print its report as JSON
                                              (estimated above 2 min: refused unless --no-budget)
  rorec estimate <lesson> [parameters...]     the estimated time of a run, term by term
  rorec calibrate [lesson...]                 time each lesson's calibration queries against their estimates
  rorec url <lesson> [parameters...]          the page address for these parameters
  rorec serve [--dir DIR] [--port PORT]       serve the built app (default dist/, port 8000)
  rorec bench [NAME...]                       time the benchmark workloads natively (JSON lines)
  rorec mips-export DIR [clustered|gaussian]  write 1e5 × 64 items, 1,000 queries and the exact top-10 to DIR
  rorec mips-eval DIR [M EF_CONSTRUCTION]     our HNSW on DIR's vectors, one thread: recall@10 and queries/s per ef";

/// A closed pipe (`rorec estimate … | head -1`) ends the program quietly, as it does any Unix
/// tool: Rust ignores SIGPIPE, so without this the next `println!` panics.
#[cfg(unix)]
fn default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: restores the default disposition of one signal before any thread is started.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Not for the server: a browser that drops a connection must not end it.
    #[cfg(unix)]
    if args.first().map(String::as_str) != Some("serve") {
        default_sigpipe();
    }
    let result = match args.first().map(String::as_str) {
        Some("list") => {
            for l in LESSONS {
                println!("{:<16} {} — {}", l.id, l.title(), l.blurb);
            }
            Ok(())
        }
        Some("params") => lesson_arg(&args).map(print_params),
        Some("run") => lesson_arg(&args).and_then(|l| run(l, &args[2..])),
        Some("estimate") => lesson_arg(&args).and_then(|l| estimate(l, &args[2..])),
        Some("calibrate") => calibrate(&args[1..]),
        Some("url") => lesson_arg(&args).and_then(|l| {
            let (query, _) = parse_params(l, &args[2..])?;
            println!("#/{}?{}", l.id, query);
            Ok(())
        }),
        Some("serve") => serve(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("mips-export") => mips_export(&args[1..]),
        Some("mips-eval") => mips_eval(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

fn lesson_arg(args: &[String]) -> Result<&'static Lesson, String> {
    let id = args.get(1).ok_or(USAGE)?;
    lessons::find(id).ok_or_else(|| format!("no lesson “{id}”; `rorec list` shows them"))
}

fn print_params(lesson: &Lesson) {
    let (defaults, _) = (lesson.canonical)("");
    println!("{} parameters (URL and CLI names):", lesson.id);
    for spec in (lesson.specs)() {
        let range = match spec.kind {
            Kind::Int { min, max, .. } => format!("integer {min}…{max}"),
            Kind::Float { min, max, .. } => format!("number {min}…{max}"),
            Kind::Choice(options) => options.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(" | "),
            Kind::Seed => "seed (u64)".into(),
            Kind::Set(options) => format!("any of {}", options.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(",")),
        };
        let default = defaults.split('&').find_map(|kv| kv.strip_prefix(&format!("{}=", spec.name))).unwrap_or("");
        println!("  --{:<14} {:<44} default {:<10} {}", spec.name, range, default, spec.help);
    }
    let presets = (lesson.presets)();
    if !presets.is_empty() {
        println!("presets (--preset NAME; values given after it replace the preset's):");
        for p in presets {
            println!("  {:<16} {} — {}\n  {:<16} {}", p.name, p.label, p.about, "", p.query);
        }
    }
}

/// Parameters from `--name value`, `--name=value`, `name=value` or a pasted page address.
/// Returns the canonical query and the remaining options.
fn parse_params(lesson: &Lesson, args: &[String]) -> Result<(String, Vec<(String, String)>), String> {
    let mut pairs: Vec<String> = Vec::new();
    let mut preset: Option<&crate_params::Preset> = None;
    let mut options = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if let Some(name) = arg.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None if matches!(name, "pretty" | "no-budget") => (name.to_string(), String::new()),
                None => {
                    i += 1;
                    (name.to_string(), args.get(i).cloned().ok_or(format!("--{name} needs a value"))?)
                }
            };
            if name == "preset" {
                let presets = (lesson.presets)();
                let names = || presets.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
                preset = Some(presets.iter().find(|p| p.name == value).ok_or_else(|| {
                    if presets.is_empty() {
                        format!("{} has no presets", lesson.id)
                    } else {
                        format!("no preset “{value}” in {}; presets: {}", lesson.id, names())
                    }
                })?);
            } else if matches!(name.as_str(), "csv" | "pretty" | "no-budget") {
                options.push((name, value));
            } else {
                pairs.push(format!("{name}={value}"));
            }
        } else if let Some((address, query)) = arg.split_once('?') {
            // A pasted page address must be this lesson's: another lesson's parameters would be
            // read against the wrong names.
            let named = address.rsplit_once("#/").map(|(_, id)| id.trim_end_matches('/')).filter(|id| !id.is_empty());
            if let Some(other) = named.filter(|id| *id != lesson.id) {
                return Err(format!("“{arg}” is an address of the lesson “{other}”, not “{}”: run `rorec run {other} '{arg}'`", lesson.id));
            }
            pairs.extend(query.split('&').map(String::from));
        } else if arg.contains('=') {
            pairs.extend(arg.split('&').map(String::from));
        } else {
            return Err(format!("cannot read “{arg}”\n{USAGE}"));
        }
        i += 1;
    }
    // A preset's values come first; a value given on the command line replaces the preset's.
    if let Some(preset) = preset {
        let given = |name: &str| pairs.iter().any(|p| p.split('=').next() == Some(name));
        let from_preset: Vec<String> =
            preset.query.split('&').filter(|kv| !given(kv.split('=').next().unwrap_or(""))).map(String::from).collect();
        pairs = from_preset.into_iter().chain(pairs).collect();
    }
    let query = (lesson.strict)(&pairs.join("&")).map_err(|issues| {
        let lines: Vec<String> = issues
            .iter()
            .map(|i| if i.param.is_empty() { format!("  {}", i.message) } else { format!("  {}: {}", i.param, i.message) })
            .collect();
        format!(
            "bad parameters, nothing was run:\n{}\n`rorec params {}` lists the parameters with their ranges and defaults",
            lines.join("\n"),
            lesson.id
        )
    })?;
    Ok((query, options))
}

fn run(lesson: &Lesson, args: &[String]) -> Result<(), String> {
    let (query, options) = parse_params(lesson, args)?;
    // The same budget as the page's, for the time here (natively, one core).
    let estimate = (lesson.estimate)(&query)?;
    match budget::verdict(&estimate, budget::Place::Native) {
        budget::Verdict::Refuse { message, .. } if !options.iter().any(|(n, _)| n == "no-budget") => {
            return Err(format!(
                "{message}
(--no-budget runs it anyway; `rorec estimate {} …` shows the estimate term by term)",
                lesson.id
            ));
        }
        budget::Verdict::Run => {}
        budget::Verdict::Ask { seconds, .. } | budget::Verdict::Refuse { seconds, .. } => {
            eprintln!("estimated: about {} natively", budget::duration(seconds))
        }
    }
    let mut last = -1.0;
    let start = std::time::Instant::now();
    let mut progress = reward_reco::core::progress::Timed {
        report: |fraction: f64, stage: &str| {
            if fraction - last >= 0.1 || fraction >= 1.0 && last < 1.0 {
                eprintln!("[{:>3.0}%] {stage}", fraction * 100.0);
                last = fraction;
            }
        },
        clock: || start.elapsed().as_secs_f64() * 1000.0,
    };
    let json = (lesson.run)(&query, &mut progress)?;
    if options.iter().any(|(n, _)| n == "pretty") {
        let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        println!("{}", serde_json::to_string_pretty(&value).unwrap());
    } else {
        println!("{json}");
    }
    if let Some((_, file)) = options.iter().find(|(n, _)| n == "csv") {
        let csv_fn = lesson.dataset_csv.ok_or(format!("{} has no dataset to write", lesson.id))?;
        std::fs::write(file, csv_fn(&query)?).map_err(|e| format!("{file}: {e}"))?;
        eprintln!("wrote {file}");
    }
    Ok(())
}

fn estimate(lesson: &Lesson, args: &[String]) -> Result<(), String> {
    let (query, _) = parse_params(lesson, args)?;
    let estimate = (lesson.estimate)(&query)?;
    println!(
        "{}: about {} natively on one core, about {} in the browser on 2 cores ({} part{})",
        lesson.id,
        budget::duration(estimate.native_seconds()),
        budget::duration(estimate.page_seconds(2)),
        estimate.parts,
        if estimate.parts == 1 { "" } else { "s" }
    );
    print!("{}", estimate.breakdown());
    Ok(())
}

/// An estimate's term as calibration fits it: what it counts, its steps, its time per step (ns).
type Term = (&'static str, f64, f64);

/// Runs every calibration query of the lessons named (all when none), prints measured against
/// estimated time, and per term the time per step that fits the measurements best (least squares
/// on the relative error, non-negative), to be copied into the lesson's constants.
fn calibrate(names: &[String]) -> Result<(), String> {
    let lessons: Vec<&Lesson> = if names.is_empty() {
        LESSONS.iter().collect()
    } else {
        names.iter().map(|n| lessons::find(n).ok_or_else(|| format!("no lesson “{n}”"))).collect::<Result<_, _>>()?
    };
    for lesson in lessons {
        // Per calibration query: its estimate's terms (what, steps, ns per step), and the
        // measured seconds.
        let mut rows: Vec<(Vec<Term>, f64)> = Vec::new();
        println!("{}", lesson.id);
        for query in lesson.calibration {
            let (canonical, _) = (lesson.canonical)(query);
            let estimate = (lesson.estimate)(&canonical)?;
            let start = std::time::Instant::now();
            let mut clock =
                reward_reco::core::progress::Timed { report: |_: f64, _: &str| {}, clock: || start.elapsed().as_secs_f64() * 1000.0 };
            (lesson.run)(&canonical, &mut clock)?;
            let measured = start.elapsed().as_secs_f64();
            println!(
                "  measured {:>8.3} s  estimated {:>8.3} s  ratio {:>5.2}  {query}",
                measured,
                estimate.native_seconds(),
                estimate.native_seconds() / measured
            );
            rows.push((estimate.terms.iter().map(|t| (t.what, t.steps, t.ns_per_step)).collect(), measured));
        }
        // Fit a scale per term (coordinate descent, scales ≥ 0) on Σ (estimate / measured − 1)².
        let mut names: Vec<&str> = Vec::new();
        for (terms, _) in &rows {
            for (what, _, _) in terms {
                if !names.contains(what) {
                    names.push(what);
                }
            }
        }
        let column = |row: &(Vec<(&str, f64, f64)>, f64), name: &str| {
            row.0.iter().filter(|t| t.0 == name).map(|t| t.1 * t.2 * 1e-9 / row.1).sum::<f64>()
        };
        let mut scale = vec![1.0; names.len()];
        for _ in 0..500 {
            for j in 0..names.len() {
                let (mut num, mut den) = (0.0, 0.0);
                for row in &rows {
                    let a = column(row, names[j]);
                    let others: f64 = (0..names.len()).filter(|&i| i != j).map(|i| scale[i] * column(row, names[i])).sum();
                    num += a * (1.0 - others);
                    den += a * a;
                }
                if den > 0.0 {
                    scale[j] = (num / den).max(0.0);
                }
            }
        }
        let worst = rows
            .iter()
            .map(|row| {
                let fitted: f64 = names.iter().zip(&scale).map(|(n, s)| s * column(row, n)).sum();
                fitted.max(1e-12).ln().abs()
            })
            .fold(0.0, f64::max);
        for (name, s) in names.iter().zip(&scale) {
            let ns = rows.iter().flat_map(|r| r.0.iter()).find(|t| t.0 == *name).map(|t| t.2).unwrap_or(0.0);
            println!("  fit: {:<50} ns per step {:>12.4} (now {ns:.4}, ×{s:.3})", name, ns * s);
        }
        println!("  fitted estimates are within ×{:.2} of the measurements", worst.exp());
    }
    Ok(())
}

fn bench(names: &[String]) -> Result<(), String> {
    if names.first().map(String::as_str) == Some("--list") {
        reward_reco::core::bench::NAMES.iter().for_each(|n| println!("{n}"));
        return Ok(());
    }
    let start = std::time::Instant::now();
    let now = move || start.elapsed().as_secs_f64() * 1000.0;
    let names: Vec<&str> =
        if names.is_empty() { reward_reco::core::bench::NAMES.to_vec() } else { names.iter().map(String::as_str).collect() };
    for name in names {
        let r = reward_reco::core::bench::run(name, &now)?;
        println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// Raw little-endian f32 / u32 files, so that other tools read exactly the same vectors.
fn write_f32(path: &Path, values: &[f32]) -> Result<(), String> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_f32(path: &Path) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

const EXPORT_DIM: usize = 64;

fn mips_export(args: &[String]) -> Result<(), String> {
    use reward_reco::core::mips::{data, exact};
    let dir = PathBuf::from(args.first().ok_or(USAGE)?);
    let kind = match args.get(1).map(String::as_str) {
        Some("gaussian") => data::Kind::Gaussian,
        _ => data::Kind::Clustered,
    };
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (items, queries) = data::generate(kind, 100_000, 1000, EXPORT_DIM, 7);
    let truth: Vec<f32> = (0..queries.len()).flat_map(|q| exact::top_k_ids(&items, queries.row(q), 10)).map(|i| i as f32).collect();
    write_f32(&dir.join("items.f32"), &items.data)?;
    write_f32(&dir.join("queries.f32"), &queries.data)?;
    write_f32(&dir.join("truth.f32"), &truth)?;
    println!(
        "wrote {} items and {} queries of dimension {EXPORT_DIM} with their exact top-10 to {}",
        items.len(),
        queries.len(),
        dir.display()
    );
    Ok(())
}

fn mips_eval(args: &[String]) -> Result<(), String> {
    use reward_reco::core::mips::hnsw::{Config, MipsIndex};
    use reward_reco::core::mips::{recall, Vectors};
    let dir = PathBuf::from(args.first().ok_or(USAGE)?);
    let m: usize = args.get(1).and_then(|x| x.parse().ok()).unwrap_or(16);
    let ef_construction: usize = args.get(2).and_then(|x| x.parse().ok()).unwrap_or(100);
    let items = Vectors { dim: EXPORT_DIM, data: read_f32(&dir.join("items.f32"))? };
    let queries = Vectors { dim: EXPORT_DIM, data: read_f32(&dir.join("queries.f32"))? };
    let truth: Vec<u32> = read_f32(&dir.join("truth.f32"))?.into_iter().map(|x| x as u32).collect();
    let start = std::time::Instant::now();
    let mut index = MipsIndex::build(&items, false, Config { m, ef_construction, seed: 1 }, &mut ());
    let build = start.elapsed().as_secs_f64();
    for ef in [10, 16, 24, 32, 48, 64, 96, 128, 192, 256] {
        index.graph.distance_count = 0;
        let start = std::time::Instant::now();
        let found: Vec<Vec<u32>> = (0..queries.len()).map(|q| index.search(queries.row(q), 10, ef)).collect();
        let secs = start.elapsed().as_secs_f64();
        let distances = index.graph.distance_count as f64 / queries.len() as f64;
        let r = found.iter().enumerate().map(|(q, f)| recall(f, &truth[q * 10..q * 10 + 10])).sum::<f64>() / queries.len() as f64;
        println!(
            "{{\"library\":\"rorec\",\"m\":{m},\"ef_construction\":{ef_construction},\"build_s\":{build:.2},\"ef\":{ef},\"recall\":{r:.4},\"qps\":{:.0},\"distances_per_query\":{distances:.0}}}",
            queries.len() as f64 / secs
        );
    }
    Ok(())
}

fn serve(args: &[String]) -> Result<(), String> {
    let mut dir = PathBuf::from("dist");
    let mut port = 8000u16;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--dir" => dir = PathBuf::from(args.get(i + 1).ok_or("--dir needs a folder")?),
            "--port" => port = args.get(i + 1).and_then(|p| p.parse().ok()).ok_or("--port needs a number")?,
            other => return Err(format!("cannot read “{other}”\n{USAGE}")),
        }
        i += 2;
    }
    if !dir.join("index.html").exists() {
        return Err(format!("{} has no index.html: build the app first (.ci/serve does both)", dir.display()));
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("port {port}: {e}"))?;
    println!("Serving {} — open http://127.0.0.1:{port}/", dir.display());
    reward_reco::serve::serve(listener, &dir, reward_reco::serve::Limits::default()).map_err(|e| format!("{}: {e}", dir.display()))
}
