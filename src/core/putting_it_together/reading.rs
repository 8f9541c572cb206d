//! What a run of "Putting it together" shows, in sentences computed from its report: the lesson's
//! prose states no result of its own.

use super::lesson::{candidate_label, CapstoneReport, CurveResult};
use crate::core::horvitz_thompson::estimators::Kind;

fn pct(x: f64) -> String {
    format!("{:.2} %", 100.0 * x)
}

/// A difference in points of CTR, ± 1.96 standard errors.
fn points(x: f64, se: f64) -> String {
    format!("{:+.2} ± {:.2} points", 100.0 * x, 196.0 * se)
}

fn estimator_label(name: &str) -> &'static str {
    Kind::from_name(name).map_or("?", |k| k.label())
}

fn curve<'a>(r: &'a CapstoneReport, name: &str) -> Option<&'a CurveResult> {
    r.main.curves.iter().find(|c| c.name == name)
}

/// The validation loss at the epoch the model kept, and that epoch.
fn kept(c: &CurveResult) -> Option<(f64, usize)> {
    let epoch = c.best_epoch as usize;
    c.validation_loss.get(epoch.checked_sub(1)?).map(|v| (*v, epoch))
}

/// Linear against deep PRR on the validation rows.
pub fn curves(r: &CapstoneReport) -> Vec<String> {
    let (Some(linear), Some(deep)) = (curve(r, "linear-prr"), curve(r, "deep-prr")) else { return Vec::new() };
    let (Some((l, le)), Some((d, de))) = (kept(linear), kept(deep)) else { return Vec::new() };
    let better = if d < l {
        "lower"
    } else if d > l {
        "higher"
    } else {
        "the same"
    };
    let mut out = vec![format!(
        "On the validation rows, the deep tower's best cross-entropy is {d:.4} (epoch {de}), {better} than the linear tower's {l:.4} \
         (epoch {le}); each model keeps its best epoch's parameters."
    )];
    let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
    let train_at_best = deep.train_loss.get(de - 1).copied().unwrap_or(f64::NAN);
    if last(&deep.validation_loss) > d * 1.01 {
        let training = if last(&deep.train_loss) < train_at_best {
            format!("while its training loss goes on falling ({train_at_best:.4} → {:.4})", last(&deep.train_loss))
        } else {
            format!("and its training loss does not fall further ({train_at_best:.4} → {:.4})", last(&deep.train_loss))
        };
        out.push(format!(
            "After epoch {de} the deep tower's validation loss rises again (to {:.4} at the last epoch) {training}: it fits noise of the \
             training clicks that the validation clicks do not share.",
            last(&deep.validation_loss)
        ));
    }
    out
}

/// The A/B test: the deep tower's paired gain, the best deployable candidate, the oracle's lead.
pub fn ab(r: &CapstoneReport) -> Vec<String> {
    let m = &r.main;
    let find = |name: &str| m.candidates.iter().find(|c| c.name == name);
    let mut out = Vec::new();
    let significant = if m.deep_gain.abs() > 1.96 * m.deep_gain_se { "" } else { ", within 1.96 standard errors of 0" };
    out.push(format!("Deep PRR − linear PRR on the same fresh impressions: {}{significant}.", points(m.deep_gain, m.deep_gain_se)));
    if let (Some(best), Some(oracle)) = (find(&m.best_deployable), find("oracle")) {
        out.push(format!(
            "The best deployable candidate is {} at {}; the oracle, which knows the simulator, reaches {}, and the logging policy {}.",
            candidate_label(&best.name),
            pct(best.ab_ctr),
            pct(oracle.ab_ctr),
            find("logging").map_or("–".into(), |c| pct(c.ab_ctr))
        ));
    }
    out
}

/// How the estimators saw the candidates: matched rows, and the spread of their errors.
pub fn offline(r: &CapstoneReport) -> Vec<String> {
    let m = &r.main;
    let mut out = Vec::new();
    let deterministic: Vec<_> = m.candidates.iter().filter(|c| c.slate_matches.is_some()).collect();
    if !deterministic.is_empty() {
        let matches: u32 = deterministic.iter().filter_map(|c| c.slate_matches).sum();
        let positions: u32 = deterministic.iter().filter_map(|c| c.position_matches).sum();
        out.push(format!(
            "Over the {} candidates that serve one slate per user, {matches} of {} held-out rows show exactly the candidate's slate \
             (slate IPS sees only those), against {positions} matching (row, position) pairs (what IIPS and the pseudo-inverse see).",
            deterministic.len(),
            deterministic.len() as u32 * m.eval_rows
        ));
    }
    // Mean absolute error of each estimator against the A/B CTR, over all candidates.
    let errors: Vec<(String, f64)> = m.candidates[0]
        .estimates
        .iter()
        .enumerate()
        .map(|(e, est)| {
            let mae = m.candidates.iter().map(|c| (c.estimates[e].value - c.ab_ctr).abs()).sum::<f64>() / m.candidates.len() as f64;
            (est.estimator.clone(), mae)
        })
        .collect();
    if let (Some(best), Some(worst)) = (errors.iter().min_by(|a, b| a.1.total_cmp(&b.1)), errors.iter().max_by(|a, b| a.1.total_cmp(&b.1)))
    {
        out.push(format!(
            "Mean distance to the A/B CTR over the candidates: {} is closest ({:.2} points), {} farthest ({:.2} points).",
            estimator_label(&best.0),
            100.0 * best.1,
            estimator_label(&worst.0),
            100.0 * worst.1
        ));
    }
    out
}

/// What each estimator would have shipped.
pub fn shipping(r: &CapstoneReport) -> Vec<String> {
    let m = &r.main;
    let right: Vec<&str> = m
        .judgements
        .iter()
        .filter(|j| j.shipped.as_deref() == Some(m.best_deployable.as_str()))
        .map(|j| estimator_label(&j.estimator))
        .collect();
    let worst = m.judgements.iter().filter(|j| j.ctr_lost.is_some()).max_by(|a, b| a.ctr_lost.unwrap().total_cmp(&b.ctr_lost.unwrap()));
    let mut out = vec![if right.is_empty() {
        format!("No estimator would have shipped the A/B test's best deployable candidate, {}.", candidate_label(&m.best_deployable))
    } else {
        format!(
            "{} of {} estimators would have shipped the A/B test's best deployable candidate, {}: {}.",
            right.len(),
            m.judgements.len(),
            candidate_label(&m.best_deployable),
            right.join(", ")
        )
    }];
    if let Some(w) = worst.filter(|w| w.ctr_lost.unwrap_or(0.0) > 0.0) {
        out.push(format!(
            "The costliest pick is {}'s, {}: {:.2} points of CTR below the best.",
            estimator_label(&w.estimator),
            w.shipped.as_deref().map_or("?", candidate_label),
            100.0 * w.ctr_lost.unwrap_or(0.0)
        ));
    }
    out
}

/// The sweep: the deep tower's gain at both ends.
pub fn sweep(r: &CapstoneReport) -> Vec<String> {
    let (Some(first), Some(last)) = (r.sweep.first(), r.sweep.last()) else { return Vec::new() };
    vec![format!(
        "Deep − linear PRR in the A/B test: {} at λ = {}, {} at λ = {}; the oracle's CTR goes from {} to {}.",
        points(first.gain, first.gain_se),
        first.nonlinearity,
        points(last.gain, last.gain_se),
        last.nonlinearity,
        pct(first.oracle_ctr),
        pct(last.oracle_ctr)
    )]
}

/// What a preview without the serving times says of them.
pub const SERVING_PENDING: &str =
    "This preview leaves out the serving times and how many users the index serves the exact slate; the full report measures them.";

/// The index against the exact scan.
pub fn serving(r: &CapstoneReport) -> Vec<String> {
    let s = &r.main.serving;
    // A preview's serving times are some models' only, or none: nothing to say of them all.
    if r.main.serving_pending {
        return vec![SERVING_PENDING.to_string()];
    }
    if s.is_empty() {
        return Vec::new();
    }
    let exact: f64 = s.iter().map(|x| x.exact_us_per_slate).sum::<f64>() / s.len() as f64;
    let index: f64 = s.iter().map(|x| x.index_us_per_slate).sum::<f64>() / s.len() as f64;
    let worst = s.iter().max_by_key(|x| x.different).expect("not empty");
    let mut out = Vec::new();
    if exact > 0.0 && index > 0.0 {
        out.push(format!(
            "At P = {}, a slate through the index takes {index:.1} µs against {exact:.1} µs for the exact scan (×{:.2}), query tower included.",
            r.items,
            index / exact
        ));
    }
    out.push(if worst.different == 0 {
        format!("The index serves every one of the {} fresh users the exact slate, for every model.", worst.users)
    } else {
        format!(
            "The index serves a slate other than the exact one to {} of the {} fresh users for {} (the most of any model).",
            worst.different,
            worst.users,
            candidate_label(&worst.name)
        )
    });
    out
}
