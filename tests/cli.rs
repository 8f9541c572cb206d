//! The command-line twin: same parameter names as the URL, same JSON as the page's worker.

use std::process::Command;

fn rorec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rorec")).args(args).output().expect("rorec runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn run_prints_the_report_of_the_library() {
    let query = "world=toy&logs=1500&seed=4";
    let (code, stdout, _) = rorec(&["run", "slate-world", "--world", "toy", "--logs=1500", "seed=4"]);
    assert_eq!(code, 0);
    let expected = (reward_reco::lessons::find("slate-world").unwrap().run)(query, &mut ()).unwrap();
    assert_eq!(stdout.trim(), expected);
    // A page address works too.
    let (_, from_url, _) = rorec(&["run", "slate-world", "http://127.0.0.1:8000/#/slate-world?world=toy&logs=1500&seed=4"]);
    assert_eq!(from_url.trim(), expected);
}

#[test]
fn csv_has_one_line_per_impression() {
    let file = std::env::temp_dir().join(format!("rorec-test-{}.csv", std::process::id()));
    let (code, _, _) = rorec(&["run", "slate-world", "--logs", "250", "--csv", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let csv = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(csv.lines().count(), 251);
    assert!(csv.starts_with("row,user,category,y1,y2,slate_size,item_1"));
}

#[test]
fn bad_parameters_are_refused_with_a_reason() {
    let (code, _, stderr) = rorec(&["run", "slate-world", "--logs", "abc"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("logs"), "{stderr}");
    let (code, _, stderr) = rorec(&["run", "nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no lesson"));
    let (code, stdout, _) = rorec(&["params", "slate-world"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("--slate_size"));
    let (_, url, _) = rorec(&["url", "slate-world", "--logs", "500"]);
    assert!(url.starts_with("#/slate-world?") && url.contains("logs=500"));
}

#[test]
fn a_failed_run_exits_non_zero_with_the_message_on_stderr() {
    let (code, stdout, stderr) = rorec(&[
        "run",
        "embeddings",
        "users=300",
        "items=4888",
        "epochs=1",
        "eval_users=50",
        "dim=8",
        "oversampling=4",
        "density=0.051",
        "source=pmi",
    ]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.trim().is_empty(), "no report on stdout: {stdout}");
    assert!(stderr.contains("more than 5000000 non-zeros"), "{stderr}");
}

#[test]
fn messages_name_the_value_at_fault_and_never_promise_a_default() {
    // A conflict blames the field the check names, with the values given.
    let (code, _, stderr) = rorec(&["run", "reward-and-rank", "world=synthetic", "items=3", "slate_size=8"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("  slate_size: a slate of K = 8 needs at least 8 items, P is 3"), "{stderr}");
    assert!(!stderr.contains("world:") && !stderr.contains("default "), "{stderr}");
    // Unknown names are named (with the nearest real one), repeated names refused, huge numbers
    // out of range rather than "not whole"; everything is listed at once.
    let (code, _, stderr) = rorec(&["run", "slate-world", "x=1", "logz=3", "logs=500", "logs=600", "items=1e16"]);
    assert_eq!(code, 2);
    for line in [
        "  unknown parameter “x”\n",
        "  unknown parameter “logz”: did you mean “logs”?\n",
        "  logs: given twice (500 and 600); give it once\n",
        "  items: 1e16 is outside 2…",
        "`rorec params slate-world` lists the parameters",
    ] {
        assert!(stderr.contains(line), "{line:?} in {stderr}");
    }
    assert!(!stderr.contains("  : ") && !stderr.contains("using the default"), "{stderr}");
    // Another lesson's address is refused, with the command that would run it.
    let (code, _, stderr) = rorec(&["run", "slate-world", "http://127.0.0.1:8000/#/embeddings?users=300"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("an address of the lesson “embeddings”, not “slate-world”"), "{stderr}");
    assert!(stderr.contains("rorec run embeddings"), "{stderr}");
    // A tiny real stays short in the canonical address and reads back as the same value.
    let (code, url, _) = rorec(&["url", "horvitz-thompson", "epsilon=1e-320"]);
    assert_eq!(code, 0);
    assert!(url.contains("&epsilon=1e-320&"), "{url}");
    assert!(url.len() < 400, "{url}");
}

#[test]
fn a_target_that_never_shows_the_logged_slates_still_gives_a_report() {
    // Every importance weight is 0 in some spread points: their median log weight is absent
    // (null), not NaN, which JSON writes as null and then cannot read back as a number, so the
    // page (which merges its parts from JSON) could not finish.
    use reward_reco::core::experiment::Part;
    let lesson = reward_reco::lessons::find("horvitz-thompson").unwrap();
    let (query, _) = (lesson.canonical)("world=toy&logging=factored-softmax&logs=300&replications=4");
    let parts: Vec<String> = (0..2).map(|index| (lesson.run_part)(&query, Part::new(index, 2), &mut ()).unwrap()).collect();
    let merged = (lesson.merge)(&query, &parts).expect("the page can merge the parts");
    let (code, stdout, stderr) = rorec(&["run", "horvitz-thompson", &query]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), merged);
}

#[test]
fn runs_over_the_budget_are_refused_with_the_estimate_and_what_to_lower() {
    let (code, stdout, stderr) = rorec(&["run", "fast-mips", "--base_items", "1000000", "--sizes", "1"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "nothing ran");
    assert!(stderr.contains("the limit is 2 min") && stderr.contains("Lower base_items") && stderr.contains("--no-budget"), "{stderr}");
    // The estimate, term by term, without running anything.
    let (code, stdout, _) = rorec(&["estimate", "fast-mips", "--base_items", "1000000", "--sizes", "1"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("building the graphs (grows with base_items"), "{stdout}");
    // A run under the threshold prints no estimate, only its report.
    let (code, _, stderr) = rorec(&["run", "slate-world", "--logs", "300"]);
    assert_eq!(code, 0);
    assert!(!stderr.contains("estimated"), "{stderr}");
}
