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
