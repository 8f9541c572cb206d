//! What every lesson's experiment looks like to the app, the workers and the CLI.
//!
//! An experiment may split its work into parts (replications, say) that run in parallel, one
//! per worker, and are merged afterwards. Parts must not change the numbers: the merged report is
//! the same for any number of parts (the CLI uses one part, the page up to one per core).

use super::budget::Estimate;
use super::params::{check, parse_strict, to_query, Checked, LessonParams};
use super::progress::Progress;
use super::stages::{Graph, StageCache};
use serde::{de::DeserializeOwned, Serialize};

/// Part `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub index: u32,
    pub count: u32,
    /// A part of a preview (see [`Experiment::preview`]), whose full report the page computes
    /// next: it may leave out an extra that is costly and not cached yet (the report then says
    /// so, and the page shows that figure as still computing). The CLI never sets it.
    pub preview: bool,
}

impl Part {
    pub const WHOLE: Part = Part::new(0, 1);

    pub const fn new(index: u32, count: u32) -> Part {
        Part { index, count, preview: false }
    }

    /// The jobs this part runs, given the part of every job (an experiment's placement).
    pub fn jobs_placed(&self, placement: &[u32]) -> Vec<usize> {
        placement.iter().enumerate().filter(|&(_, &part)| part == self.index).map(|(job, _)| job).collect()
    }

    /// This part's share of `0..total`, as a contiguous range.
    pub fn range(&self, total: u32) -> std::ops::Range<u32> {
        let start = (total as u64 * self.index as u64 / self.count as u64) as u32;
        let end = (total as u64 * (self.index as u64 + 1) / self.count as u64) as u32;
        start..end
    }
}

pub trait Experiment {
    type Params: LessonParams;
    type Report: Serialize + DeserializeOwned + Clone + PartialEq + 'static;
    type Partial: Serialize + DeserializeOwned;

    /// The experiment's stages and what each depends on (see [`super::stages`]).
    const GRAPH: Graph;

    /// The report's fields that hold wall-clock timings: the only fields allowed to differ
    /// between two runs of the same query (or a run that reused cached stages).
    const TIMINGS: &'static [&'static str] = &[];

    /// The sentences of the lesson's prose that state a result, each with the condition it
    /// asserts (see [`super::claims`]).
    fn claims() -> &'static [super::claims::Claim<Self::Report>] {
        &[]
    }

    /// The most parts worth running in parallel for these parameters.
    fn parts(_params: &Checked<Self::Params>) -> u32 {
        1
    }

    /// The work of a query from scratch, from its parameters alone (see [`super::budget`]): a
    /// term per costly stage, each a count of its steps times a time per step measured by
    /// `rorec calibrate` on the queries of `CALIBRATION`.
    fn estimate(params: &Checked<Self::Params>) -> Estimate {
        let _ = params;
        Estimate::new()
    }

    /// Queries that exercise every term of [`Experiment::estimate`], each a few seconds natively:
    /// `rorec calibrate` times them and fits the time per step of each term.
    const CALIBRATION: &'static [&'static str] = &[];

    /// A cheaper query whose report is a meaningful first look at this one (the first
    /// replications, the smallest size, a few epochs), and a note saying what it leaves out. The
    /// page shows it first, then the full report; while a slider is dragged only previews run.
    /// Its stages are keyed like any others, so what it shares with the full run is computed once.
    fn preview(_params: &Checked<Self::Params>) -> Option<(Self::Params, String)> {
        None
    }

    /// The preview shown when a page opens, with nothing cached yet: by default the
    /// [`Experiment::preview`]. A lesson whose preview shares costly stages with the full run (and
    /// so is cheap once they are cached, when a control changes) can offer a smaller first look
    /// here, shown within about a second of opening.
    fn first_look(params: &Checked<Self::Params>) -> Option<(Self::Params, String)> {
        Self::preview(params)
    }

    /// Whether the parts of the [`Experiment::first_look`] each compute the same costly stages
    /// (each builds the world, say). The page then opens with the look in one part when that is
    /// quick enough to run alone (see `opening_look` in `ui::worker`), leaving the other cores to
    /// the page's first render.
    const FIRST_LOOK_IN_ONE_PART: bool = false;

    /// The look shown while a slider is dragged (for the value it is at when the look before has
    /// been computed; the full report follows the release): by default the
    /// [`Experiment::preview`]. A lesson whose preview of a changed world takes more than ~100 ms
    /// can offer a cheaper one here.
    fn drag_preview(params: &Checked<Self::Params>) -> Option<(Self::Params, String)> {
        Self::preview(params)
    }

    /// One part. Stages whose results are in `cache` (same key) are reused, not recomputed.
    fn run_part(params: &Checked<Self::Params>, part: Part, cache: &mut StageCache, progress: &mut dyn Progress) -> Self::Partial;

    /// Experiments that train for a while can run a part in slices instead ([`Stepper`]): the
    /// page then shows the results so far after each slice, and can pause between slices.
    fn stepper(_params: &Checked<Self::Params>, _part: Part) -> Option<Box<dyn Stepper>> {
        None
    }

    fn merge(params: &Checked<Self::Params>, partials: Vec<Self::Partial>) -> Self::Report;

    /// The results so far of a part that has not started, where merging without that part makes
    /// sense. An experiment that runs in slices and has one opens in the page with its first part
    /// alone, until that part's first results so far are drawn: the other parts would share the
    /// cores with it and with the page's first render (see `ui::worker`). None: every part starts
    /// at once, and the page shows results so far only when every part has some.
    fn not_started(_params: &Checked<Self::Params>) -> Option<Self::Partial> {
        None
    }

    /// The message of a report that records a failed run (the page shows it in place of the
    /// figures; the CLI exits non-zero with it).
    fn failure(_report: &Self::Report) -> Option<&str> {
        None
    }
}

/// A part of an experiment that runs in slices of about `budget_ms` (by the progress clock).
/// Slicing must not change the numbers: only the timings may differ from a run in one go.
pub trait Stepper {
    /// Work for about `budget_ms`; true when the part is finished. `cache` is the worker's.
    fn step(&mut self, budget_ms: f64, cache: &mut StageCache, progress: &mut dyn Progress) -> bool;
    /// The part's result so far as the experiment's Partial, in JSON (the final one once
    /// `step` returned true).
    fn partial_json(&self) -> Result<String, String>;
    /// Whether the results so far are worth showing (an experiment in slices: yes).
    fn is_live(&self) -> bool {
        true
    }
}

/// A part that does not slice: all of it in the first step.
struct Whole<E: Experiment> {
    params: Checked<E::Params>,
    part: Part,
    result: Option<Result<String, String>>,
}

impl<E: Experiment> Stepper for Whole<E> {
    fn step(&mut self, _budget_ms: f64, cache: &mut StageCache, progress: &mut dyn Progress) -> bool {
        let partial = E::run_part(&self.params, self.part, cache, progress);
        self.result = Some(serde_json::to_string(&partial).map_err(|e| e.to_string()));
        true
    }

    fn partial_json(&self) -> Result<String, String> {
        self.result.clone().unwrap_or_else(|| Err("not run yet".into()))
    }

    fn is_live(&self) -> bool {
        false
    }
}

/// A part, ready to step (the workers run this).
pub fn start_query<E: Experiment + 'static>(query: &str, part: Part) -> Result<Box<dyn Stepper>, String> {
    let params = strict_params::<E>(query)?;
    Ok(E::stepper(&params, part).unwrap_or_else(|| Box::new(Whole::<E> { params, part, result: None })))
}

/// Whether the experiment's parts run in slices (the page offers pause for those).
pub fn steps<E: Experiment>(query: &str) -> bool {
    strict_params::<E>(query).map(|p| E::stepper(&p, Part::WHOLE).is_some()).unwrap_or(false)
}

fn strict_params<E: Experiment>(query: &str) -> Result<Checked<E::Params>, String> {
    parse_strict::<E::Params>(query).map_err(|issues| {
        let lines: Vec<String> =
            issues.iter().map(|i| if i.param.is_empty() { i.message.clone() } else { format!("{}: {}", i.param, i.message) }).collect();
        lines.join("\n")
    })
}

/// How many parts to use for a query (at most `available`).
pub fn parts_query<E: Experiment>(query: &str, available: u32) -> u32 {
    strict_params::<E>(query).map(|p| E::parts(&p).clamp(1, available.max(1))).unwrap_or(1)
}

/// The estimated work of a query (parts as the experiment would split it).
pub fn estimate_query<E: Experiment>(query: &str) -> Result<Estimate, String> {
    let params = strict_params::<E>(query)?;
    Ok(E::estimate(&params).parts(E::parts(&params)))
}

/// The preview of a query (see [`Experiment::preview`]): its canonical query and its note.
/// None when the experiment has none, or when it would be the query itself.
pub fn preview_query<E: Experiment>(query: &str) -> Option<(String, String)> {
    cheaper_query::<E>(query, E::preview)
}

/// The first look of a query when its page opens (see [`Experiment::first_look`]), as
/// [`preview_query`] gives a preview.
pub fn first_look_query<E: Experiment>(query: &str) -> Option<(String, String)> {
    cheaper_query::<E>(query, E::first_look)
}

/// The look of a query while its slider is dragged (see [`Experiment::drag_preview`]), as
/// [`preview_query`] gives a preview.
pub fn drag_preview_query<E: Experiment>(query: &str) -> Option<(String, String)> {
    cheaper_query::<E>(query, E::drag_preview)
}

type Cheaper<E> = fn(&Checked<<E as Experiment>::Params>) -> Option<(<E as Experiment>::Params, String)>;

fn cheaper_query<E: Experiment>(query: &str, pick: Cheaper<E>) -> Option<(String, String)> {
    let params = strict_params::<E>(query).ok()?;
    let (cheaper, note) = pick(&params)?;
    let cheaper = check(cheaper).ok()?;
    let (cheaper, full) = (to_query(&*cheaper), to_query(&*params));
    (cheaper != full).then_some((cheaper, note))
}

/// One part, as JSON, computed from scratch.
pub fn run_part_query<E: Experiment + 'static>(query: &str, part: Part, progress: &mut dyn Progress) -> Result<String, String> {
    run_part_query_cached::<E>(query, part, &mut StageCache::disabled(), progress)
}

/// One part, as JSON, reusing the stages kept in `cache` (as a worker does), sliced or not.
pub fn run_part_query_cached<E: Experiment + 'static>(
    query: &str,
    part: Part,
    cache: &mut StageCache,
    progress: &mut dyn Progress,
) -> Result<String, String> {
    let mut stepper = start_query::<E>(query, part)?;
    while !stepper.step(f64::INFINITY, cache, progress) {}
    stepper.partial_json()
}

/// Merge the parts' JSON into the report's JSON (the page runs this when all parts are in).
pub fn merge_query<E: Experiment>(query: &str, partials: &[String]) -> Result<String, String> {
    let every: Vec<Option<&str>> = partials.iter().map(|p| Some(p.as_str())).collect();
    merge_so_far_query::<E>(query, &every).expect("every part is in")
}

/// Merge the results so far of the parts into the report's JSON, None standing for a part that
/// has not started. None when a part has not started and the experiment cannot merge without it
/// (see [`Experiment::not_started`]).
pub fn merge_so_far_query<E: Experiment>(query: &str, partials: &[Option<&str>]) -> Option<Result<String, String>> {
    let params = match strict_params::<E>(query) {
        Ok(params) => params,
        Err(e) => return Some(Err(e)),
    };
    let mut merged = Vec::with_capacity(partials.len());
    for partial in partials {
        merged.push(match partial {
            Some(json) => match serde_json::from_str::<E::Partial>(json) {
                Ok(partial) => partial,
                Err(e) => return Some(Err(e.to_string())),
            },
            None => E::not_started(&params)?,
        });
    }
    Some(serde_json::to_string(&E::merge(&params, merged)).map_err(|e| e.to_string()))
}

/// Whether the experiment can merge its results so far without a part that has not started (see
/// [`Experiment::not_started`]).
pub fn merges_without_parts<E: Experiment>(query: &str) -> bool {
    strict_params::<E>(query).is_ok_and(|p| E::not_started(&p).is_some())
}

/// The whole experiment in one part, from scratch, as JSON (the CLI and the tests run this).
/// Within the run, a stage that two later stages read is computed once, as in a worker (the
/// fast-MIPS run builds its first graph once for its sizes and its curves); nothing is kept
/// between runs. Strict: any bad value is an error (the app only sends canonical queries; the
/// CLI should not guess).
pub fn run_query<E: Experiment>(query: &str, progress: &mut dyn Progress) -> Result<String, String> {
    let params = strict_params::<E>(query)?;
    let partial = E::run_part(&params, Part::WHOLE, &mut StageCache::new(super::stages::WORKER_BUDGET_BYTES), progress);
    let report = E::merge(&params, vec![partial]);
    if let Some(message) = E::failure(&report) {
        return Err(message.to_string());
    }
    serde_json::to_string(&report).map_err(|e| e.to_string())
}

/// Run a query and check the lesson's claims on its report: the claims that fail, with why.
pub fn claim_failures_query<E: Experiment>(query: &str, progress: &mut dyn Progress) -> Result<Vec<String>, String> {
    let json = run_query::<E>(query, progress)?;
    let report: E::Report = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    Ok(super::claims::failures(E::claims(), &report))
}

/// The sentences a lesson's claims name.
pub fn claim_sentences<E: Experiment>() -> Vec<&'static str> {
    E::claims().iter().map(|c| c.sentence).collect()
}

#[cfg(test)]
mod tests {
    use super::Part;

    #[test]
    fn parts_cover_the_range_once() {
        for count in 1..6 {
            let mut all = Vec::new();
            for index in 0..count {
                all.extend(Part::new(index, count).range(17));
            }
            assert_eq!(all, (0..17).collect::<Vec<_>>());
        }
    }
}
