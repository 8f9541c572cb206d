//! Sentences of lesson prose that state a result, each with the condition it asserts on the
//! report. A lesson's prose may state an outcome only through a claim listed here (or a reading
//! computed from the report); a test runs every lesson at its defaults and at each preset and
//! checks that every claim holds, and that each claim's sentence is still in the lesson's text.

/// One sentence of a lesson's text and what it asserts about the report.
pub struct Claim<R> {
    /// A verbatim part of the sentence in `lessons/<id>.md`.
    pub sentence: &'static str,
    /// The condition, in words.
    pub asserts: &'static str,
    /// Whether the report bears it out (None: the report has nothing to check it with, e.g. the
    /// sweep it needs is off); Err says how it fails.
    pub check: fn(&R) -> Option<Result<(), String>>,
}

/// A claim's result on one report: the sentence and, when it fails, why.
pub fn failures<R>(claims: &[Claim<R>], report: &R) -> Vec<String> {
    claims
        .iter()
        .filter_map(|c| match (c.check)(report) {
            Some(Err(why)) => Some(format!("“{}” ({}): {why}", c.sentence, c.asserts)),
            _ => None,
        })
        .collect()
}

/// `values` rise (each at least `slack` times the one before it).
pub fn rising(values: &[f64], slack: f64) -> Result<(), String> {
    match values.windows(2).position(|w| w[1] < w[0] * slack) {
        None => Ok(()),
        Some(i) => Err(format!("{:.4} then {:.4} in {values:?}", values[i], values[i + 1])),
    }
}
