//! What every lesson's experiment looks like to the app, the worker and the CLI.

use super::params::{from_query, Checked, LessonParams};
use super::progress::Progress;
use serde::{de::DeserializeOwned, Serialize};

pub trait Experiment {
    type Params: LessonParams;
    type Report: Serialize + DeserializeOwned + Clone + PartialEq + 'static;

    fn run(params: &Checked<Self::Params>, progress: &mut dyn Progress) -> Self::Report;
}

/// Run an experiment from a query string and return its report as JSON. Strict: any bad value is
/// an error (the app only sends canonical queries; the CLI should not guess).
pub fn run_query<E: Experiment>(query: &str, progress: &mut dyn Progress) -> Result<String, String> {
    let (params, issues) = from_query::<E::Params>(query);
    if !issues.is_empty() {
        let lines: Vec<String> = issues
            .iter()
            .map(|i| if i.param.is_empty() { i.message.clone() } else { format!("{}: {}", i.param, i.message) })
            .collect();
        return Err(lines.join("\n"));
    }
    let report = E::run(&params, progress);
    serde_json::to_string(&report).map_err(|e| e.to_string())
}
