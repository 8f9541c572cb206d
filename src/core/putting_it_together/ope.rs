//! Off-policy evaluation of the candidates on held-out logs (the Horvitz–Thompson lesson's
//! estimators), and how an A/B test judges the estimators: the rank correlation of their orderings
//! with the A/B ordering, and the CTR lost by shipping each one's favourite.
//!
//! A candidate π that serves one slate S(x) per context (every learned candidate here) has, on a
//! logged row (x, A, c) with logging propensities π₀(A|x) and π₀^{(k)}(a_k|x):
//!
//! w = 1{A = S(x)} / π₀(A|x),   w_k = 1{a_k = S_k(x)} / π₀^{(k)}(a_k|x),
//!
//! so slate IPS is mean(w·r), IIPS mean(Σ_k c_k w_k), the pseudo-inverse mean(r·(Σ_k w_k − (K − 1))),
//! the direct method mean(r̂(x, S(x))) and doubly robust mean(w·(r − r̂(x, A)) + r̂(x, S(x))).

use crate::core::horvitz_thompson::estimators::{Kind, Row};
use crate::core::slate_world::simulate::LoggedRow;

/// The estimators compared, in display order.
pub const ESTIMATORS: [Kind; 5] = [Kind::Ips, Kind::Iips, Kind::Pi, Kind::Dm, Kind::Dr];

/// The estimators' view of a logged row for a candidate that serves `target` to this row's
/// context; `logged_model` = r̂(x, A), `target_model` = r̂(x, S(x)).
pub fn deterministic_row(row: &LoggedRow, target: &[u32], logged_model: f64, target_model: f64) -> Row {
    let reward = f64::from(u8::from(row.reward()));
    let same = row.slate.as_slice() == target;
    let weight = if same { 1.0 / row.slate_propensity } else { 0.0 };
    let mut item_position_term = 0.0;
    let mut position_weights = 0.0;
    for (k, &a) in row.slate.iter().enumerate() {
        if target.get(k) == Some(&a) {
            let w = 1.0 / row.position_propensity[k];
            position_weights += w;
            item_position_term += f64::from(row.clicks[k]) * w;
        }
    }
    Row {
        reward,
        weight,
        item_position_term,
        pseudo_inverse_factor: position_weights - (row.slate.len() as f64 - 1.0),
        model_reward: logged_model,
        model_value: target_model,
    }
}

/// The row for the logging policy itself (π = π₀): every weight is 1; `model_value` is
/// E_{A~π₀} r̂(x, A).
pub fn logging_row(row: &LoggedRow, logged_model: f64, model_value: f64) -> Row {
    let reward = f64::from(u8::from(row.reward()));
    Row {
        reward,
        weight: 1.0,
        item_position_term: row.clicks.iter().map(|c| f64::from(*c)).sum(),
        pseudo_inverse_factor: 1.0,
        model_reward: logged_model,
        model_value,
    }
}

/// Kendall's τ_b between two orderings of the same candidates (ties allowed): None when either
/// has every value tied (no ordering to compare) or a value is not a number.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let n = x.len().min(y.len());
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        for j in i + 1..n {
            let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {
                    ties_x += 1.0;
                    ties_y += 1.0;
                }
                (true, false) => ties_x += 1.0,
                (false, true) => ties_y += 1.0,
                (false, false) if (dx > 0.0) == (dy > 0.0) => concordant += 1.0,
                (false, false) => discordant += 1.0,
            }
        }
    }
    let pairs = (n * n.saturating_sub(1) / 2) as f64;
    let denominator = ((pairs - ties_x) * (pairs - ties_y)).sqrt();
    (denominator > 0.0).then(|| (concordant - discordant) / denominator)
}

/// The candidate an estimator would ship: the largest estimate among the deployable ones (the
/// first on ties).
pub fn shipped(estimates: &[f64], deployable: &[bool]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, v) in estimates.iter().enumerate() {
        if !deployable[i] || !v.is_finite() {
            continue;
        }
        if best.is_none_or(|b| *v > estimates[b]) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::horvitz_thompson::estimators::estimate;

    #[test]
    fn kendall_tau_b_of_known_orderings() {
        assert_eq!(kendall_tau_b(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(kendall_tau_b(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(kendall_tau_b(&[0.0, 0.0, 0.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(kendall_tau_b(&[0.0, f64::NAN, 1.0], &[1.0, 2.0, 3.0]), None);
        // One tie in x: C = 2, D = 0, n0 = 3, n1 = 1 → 2/√(2·3).
        let tau = kendall_tau_b(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((tau - 2.0 / 6f64.sqrt()).abs() < 1e-12, "{tau}");
    }

    #[test]
    fn shipping_skips_what_cannot_ship() {
        assert_eq!(shipped(&[0.9, 0.5, 0.7], &[false, true, true]), Some(2));
        assert_eq!(shipped(&[0.5, 0.5], &[true, true]), Some(0));
        assert_eq!(shipped(&[f64::NAN], &[true]), None);
    }

    /// A deterministic target on rows logged uniformly over 2 items × 2 positions (2 slates, each
    /// π₀ = 1/2, each position marginal 1/2): on the two equally likely rows, slate IPS and IIPS are
    /// exact.
    #[test]
    fn estimators_are_unbiased_on_an_enumerated_log() {
        // Reward: a click on position 1 when item 0 is there (PBM-like, additive: IIPS and PI unbiased).
        let rows: Vec<LoggedRow> = [[0u32, 1], [1, 0]]
            .iter()
            .map(|slate| LoggedRow {
                user: 0,
                slate: slate.to_vec(),
                clicks: vec![u8::from(slate[0] == 0), 0],
                slate_propensity: 0.5,
                position_propensity: vec![0.5, 0.5],
            })
            .collect();
        let target = [0u32, 1];
        let truth = 1.0;
        let out: Vec<Row> = rows.iter().map(|r| deterministic_row(r, &target, 0.3, 0.6)).collect();
        for kind in [Kind::Ips, Kind::Iips] {
            assert!((estimate(kind, f64::INFINITY, &out).value - truth).abs() < 1e-12, "{kind:?}");
        }
        // The pseudo-inverse's Σ_k w_k − (K − 1) assumes positions drawn independently; without
        // replacement it is biased: (1·(2 + 2 − 1) + 0)/2 = 1.5.
        assert!((estimate(Kind::Pi, f64::INFINITY, &out).value - 1.5).abs() < 1e-12);
        assert!((estimate(Kind::Dm, f64::INFINITY, &out).value - 0.6).abs() < 1e-12);
        // DR = DM + mean(w (r − r̂)) = 0.6 + (2·(1 − 0.3) + 0)/2.
        assert!((estimate(Kind::Dr, f64::INFINITY, &out).value - 1.3).abs() < 1e-12);
    }
}
