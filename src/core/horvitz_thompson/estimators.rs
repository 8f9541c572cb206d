//! Off-policy estimators of a target policy's value V(π) = E_x E_{A~π} r(A, x) from logs of π₀.
//!
//! Each logged row n carries the reward r_n (clicks on the slate), the slate importance weight
//! w_n = π(A_n|x_n) / π₀(A_n|x_n), the item-position weights w_{n,k} = π^{(k)}(a_k|x) / π₀^{(k)}(a_k|x)
//! with the per-position clicks c_{n,k}, and a reward model's f̂(A_n, x_n) and E_{A~π} f̂(A, x_n).

use serde::{Deserialize, Serialize};

/// What the estimators need of one logged row (scalars only: the per-position sums are made once).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Row {
    pub reward: f64,
    /// w = π(A|x) / π₀(A|x).
    pub weight: f64,
    /// Σ_k c_k · w_k (the IIPS term).
    pub item_position_term: f64,
    /// Σ_k w_k − (K − 1) (the pseudo-inverse multiplier).
    pub pseudo_inverse_factor: f64,
    /// f̂(A, x) of the reward model.
    pub model_reward: f64,
    /// E_{A~π} f̂(A, x).
    pub model_value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Horvitz–Thompson / slate IPS: mean of w·r. Unbiased where π₀ covers π.
    Ips,
    /// mean of min(w, M)·r: biased down, bounded variance.
    CappedIps,
    /// mean of w·1{w < M}·r: drops the rows with large weights.
    FilteredIps,
    /// Σ w r / Σ w: self-normalised, consistent, small bias.
    Snips,
    /// Σ min(w, M) r / Σ min(w, M): capped and self-normalised (Gilotte et al. 2018).
    Ncis,
    /// Item-position IPS: mean of Σ_k c_k w_k. Unbiased when clicks depend on item and position only.
    Iips,
    /// Pseudo-inverse: mean of r (Σ_k w_k − (K−1)). Unbiased for additive rewards, factored π₀.
    Pi,
    /// Direct method: mean of E_{A~π} f̂(A, x). As good as the reward model.
    Dm,
    /// Doubly robust: mean of w (r − f̂(A, x)) + E_{A~π} f̂(A, x).
    Dr,
}

pub const ALL: [Kind; 9] =
    [Kind::Ips, Kind::CappedIps, Kind::FilteredIps, Kind::Snips, Kind::Ncis, Kind::Iips, Kind::Pi, Kind::Dm, Kind::Dr];

/// URL names and labels, in display order.
pub const CHOICES: &[(&str, &str)] = &[
    ("ips", "HT / slate IPS"),
    ("capped", "capped IPS"),
    ("filtered", "filtered IPS"),
    ("snips", "SNIPS"),
    ("ncis", "NCIS"),
    ("iips", "item-position IPS"),
    ("pi", "pseudo-inverse"),
    ("dm", "direct method"),
    ("dr", "doubly robust"),
];

impl Kind {
    pub fn from_name(name: &str) -> Option<Kind> {
        CHOICES.iter().position(|(n, _)| *n == name).map(|i| ALL[i])
    }

    pub fn name(&self) -> &'static str {
        CHOICES[self.index()].0
    }

    pub fn label(&self) -> &'static str {
        CHOICES[self.index()].1
    }

    pub fn index(&self) -> usize {
        ALL.iter().position(|k| k == self).unwrap()
    }

    /// Whether the estimator reads the cap M (capped IPS, filtered IPS, NCIS).
    pub fn uses_cap(&self) -> bool {
        matches!(self, Kind::CappedIps | Kind::FilteredIps | Kind::Ncis)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    /// Standard error (delta method for the ratio estimators).
    pub se: f64,
    /// Effective sample size (Σw)²/Σw² of the weights the estimator uses; N when it uses none.
    pub ess: f64,
}

/// Apply estimator `kind` (cap M where it has one) to `rows`.
pub fn estimate(kind: Kind, cap: f64, rows: &[Row]) -> Estimate {
    estimate_with_prefixes(kind, cap, rows, &[]).0
}

/// Estimator `kind` on all `rows`, and its value on each prefix `rows[..n]`, n in `grid`
/// (increasing, each ≤ the number of rows), in one pass (two for the ratio estimators). The
/// prefixes' values are the running sums at n, so they equal `estimate(kind, cap, &rows[..n])`
/// bit for bit.
pub fn estimate_with_prefixes(kind: Kind, cap: f64, rows: &[Row], grid: &[u32]) -> (Estimate, Vec<f64>) {
    if let Some(result) = weighted(kind, cap, rows, grid) {
        return result;
    }
    let n = rows.len().max(1) as f64;
    let (estimate, prefixes) = match kind {
        Kind::Iips => mean_estimate(rows, grid, |r| r.item_position_term, |_| 1.0),
        Kind::Pi => mean_estimate(rows, grid, |r| r.reward * r.pseudo_inverse_factor, |_| 1.0),
        Kind::Dm => mean_estimate(rows, grid, |r| r.model_value, |_| 1.0),
        Kind::Dr => return mean_estimate(rows, grid, |r| r.weight * (r.reward - r.model_reward) + r.model_value, |r| r.weight),
        Kind::Ips | Kind::CappedIps | Kind::FilteredIps | Kind::Snips | Kind::Ncis => unreachable!("weighted() handles {kind:?}"),
    };
    (Estimate { ess: n, ..estimate }, prefixes)
}

/// What the estimators of the IPS family (HT, capped, filtered, SNIPS, NCIS) read of a row: its
/// slate weight and its reward.
pub trait Weighted {
    fn weight(&self) -> f64;
    fn reward(&self) -> f64;
}

impl Weighted for Row {
    #[inline]
    fn weight(&self) -> f64 {
        self.weight
    }
    #[inline]
    fn reward(&self) -> f64 {
        self.reward
    }
}

/// A row reduced to what the IPS family needs: 9 bytes instead of 48, so that many replications'
/// rows can be kept to re-estimate when the cap M changes.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, packed)]
pub struct Pair {
    weight: f64,
    /// The number of clicks (the reward is a click count, at most the slate size).
    clicks: u8,
}

impl Pair {
    pub fn of(row: &Row) -> Pair {
        let clicks = row.reward as u8;
        assert!(clicks as f64 == row.reward, "a reward is a number of clicks, {} is not", row.reward);
        Pair { weight: row.weight, clicks }
    }
}

impl Weighted for Pair {
    #[inline]
    fn weight(&self) -> f64 {
        self.weight
    }
    #[inline]
    fn reward(&self) -> f64 {
        self.clicks as f64
    }
}

/// [`estimate_with_prefixes`] for the estimators that read only weights and rewards (HT, capped,
/// filtered, SNIPS, NCIS); None for the others. Rows and their [`Pair`]s give the same bits.
pub fn weighted<T: Weighted>(kind: Kind, cap: f64, rows: &[T], grid: &[u32]) -> Option<(Estimate, Vec<f64>)> {
    Some(match kind {
        Kind::Ips => mean_estimate(rows, grid, |r| r.weight() * r.reward(), |r| r.weight()),
        Kind::CappedIps => mean_estimate(rows, grid, |r| r.weight().min(cap) * r.reward(), |r| r.weight().min(cap)),
        Kind::FilteredIps => {
            let keep = |r: &T| if r.weight() < cap { r.weight() } else { 0.0 };
            mean_estimate(rows, grid, |r| keep(r) * r.reward(), keep)
        }
        Kind::Snips => ratio_estimate(rows, grid, |r| r.weight()),
        Kind::Ncis => ratio_estimate(rows, grid, |r| r.weight().min(cap)),
        Kind::Iips | Kind::Pi | Kind::Dm | Kind::Dr => return None,
    })
}

/// The next prefix size of `grid` after `j` ones, or none.
fn next_size(grid: &[u32], j: usize) -> usize {
    grid.get(j).map_or(usize::MAX, |&n| n as usize)
}

/// Mean of x_n with its standard error; ESS of the weights. And the mean of each prefix of `grid`.
fn mean_estimate<T>(rows: &[T], grid: &[u32], x: impl Fn(&T) -> f64, weight: impl Fn(&T) -> f64) -> (Estimate, Vec<f64>) {
    let mut prefixes = Vec::with_capacity(grid.len());
    let (mut j, mut next) = (0, next_size(grid, 0));
    while next == 0 {
        prefixes.push(0.0);
        j += 1;
        next = next_size(grid, j);
    }
    let n = rows.len() as f64;
    let (mut sum, mut sum_sq, mut w_sum, mut w_sq) = (0.0, 0.0, 0.0, 0.0);
    for (i, r) in rows.iter().enumerate() {
        let v = x(r);
        sum += v;
        sum_sq += v * v;
        let w = weight(r);
        w_sum += w;
        w_sq += w * w;
        while i + 1 == next {
            prefixes.push(sum / next as f64);
            j += 1;
            next = next_size(grid, j);
        }
    }
    assert_eq!(prefixes.len(), grid.len(), "prefix sizes beyond the rows");
    if rows.is_empty() {
        return (Estimate::default(), prefixes);
    }
    let mean = sum / n;
    let var = if n > 1.0 { ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
    (Estimate { value: mean, se: (var / n).sqrt(), ess: if w_sq > 0.0 { w_sum * w_sum / w_sq } else { 0.0 } }, prefixes)
}

/// Σ w r / Σ w with the delta-method standard error √(Σ w²(r − v)²) / Σ w. And the value of each
/// prefix of `grid`.
fn ratio_estimate<T: Weighted>(rows: &[T], grid: &[u32], weight: impl Fn(&T) -> f64) -> (Estimate, Vec<f64>) {
    let ratio = |num: f64, den: f64| if den <= 0.0 { 0.0 } else { num / den };
    let mut prefixes = Vec::with_capacity(grid.len());
    let (mut j, mut next) = (0, next_size(grid, 0));
    while next == 0 {
        prefixes.push(0.0);
        j += 1;
        next = next_size(grid, j);
    }
    let (mut num, mut den, mut w_sq) = (0.0, 0.0, 0.0);
    for (i, r) in rows.iter().enumerate() {
        let w = weight(r);
        num += w * r.reward();
        den += w;
        w_sq += w * w;
        while i + 1 == next {
            prefixes.push(ratio(num, den));
            j += 1;
            next = next_size(grid, j);
        }
    }
    assert_eq!(prefixes.len(), grid.len(), "prefix sizes beyond the rows");
    if den <= 0.0 {
        return (Estimate { value: 0.0, se: 0.0, ess: 0.0 }, prefixes);
    }
    let value = num / den;
    let spread: f64 = rows.iter().map(|r| crate::core::math::sq(weight(r) * (r.reward() - value))).sum();
    (Estimate { value, se: spread.sqrt() / den, ess: den * den / w_sq }, prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny hand-written log: every estimator recomputed by hand.
    #[test]
    fn hand_computed_values() {
        let rows = [
            Row { reward: 1.0, weight: 2.0, item_position_term: 1.5, pseudo_inverse_factor: 1.2, model_reward: 0.5, model_value: 0.4 },
            Row { reward: 0.0, weight: 0.5, item_position_term: 0.0, pseudo_inverse_factor: 0.7, model_reward: 0.2, model_value: 0.3 },
            Row { reward: 1.0, weight: 10.0, item_position_term: 3.0, pseudo_inverse_factor: 4.0, model_reward: 0.6, model_value: 0.5 },
            Row { reward: 0.0, weight: 1.0, item_position_term: 0.0, pseudo_inverse_factor: 1.0, model_reward: 0.1, model_value: 0.2 },
        ];
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(estimate(Kind::Ips, 0.0, &rows).value, (2.0 + 10.0) / 4.0);
        close(estimate(Kind::CappedIps, 5.0, &rows).value, (2.0 + 5.0) / 4.0);
        close(estimate(Kind::FilteredIps, 5.0, &rows).value, 2.0 / 4.0);
        close(estimate(Kind::Snips, 0.0, &rows).value, 12.0 / 13.5);
        close(estimate(Kind::Ncis, 5.0, &rows).value, 7.0 / 8.5);
        close(estimate(Kind::Iips, 0.0, &rows).value, 4.5 / 4.0);
        close(estimate(Kind::Pi, 0.0, &rows).value, (1.2 + 4.0) / 4.0);
        close(estimate(Kind::Dm, 0.0, &rows).value, 1.4 / 4.0);
        let dr = (2.0 * 0.5 + 0.4) + (0.5 * -0.2 + 0.3) + (10.0 * 0.4 + 0.5) + (1.0 * -0.1 + 0.2);
        close(estimate(Kind::Dr, 0.0, &rows).value, dr / 4.0);
        // IPS: x = [2, 0, 10, 0], mean 3, sample variance (1+9+49+9)/3 = 68/3.
        close(estimate(Kind::Ips, 0.0, &rows).se, (68.0f64 / 3.0 / 4.0).sqrt());
        close(estimate(Kind::Ips, 0.0, &rows).ess, 13.5f64.powi(2) / (4.0 + 0.25 + 100.0 + 1.0));
        for (name, _) in CHOICES {
            assert_eq!(Kind::from_name(name).unwrap().name(), *name);
        }
    }

    /// Rows with weights over many magnitudes (some zero) and click-count rewards.
    fn random_rows(n: usize) -> Vec<Row> {
        let mut rng = crate::core::rng::replication(5, 0);
        (0..n)
            .map(|_| {
                let u = crate::core::rng::uniform(&mut rng);
                let weight = if u < 0.1 { 0.0 } else { crate::core::math::pow(10.0, 8.0 * u - 3.0) };
                let reward = crate::core::rng::index(&mut rng, 3) as f64;
                let v = crate::core::rng::uniform(&mut rng);
                Row {
                    reward,
                    weight,
                    item_position_term: v * weight,
                    pseudo_inverse_factor: weight - v,
                    model_reward: v,
                    model_value: 1.0 - v,
                }
            })
            .collect()
    }

    #[test]
    fn prefixes_and_pairs_give_the_bits_of_separate_estimates() {
        let rows = random_rows(1000);
        let pairs: Vec<Pair> = rows.iter().map(Pair::of).collect();
        let grid = [0, 1, 10, 10, 333, 1000];
        let bits = |e: Estimate| [e.value.to_bits(), e.se.to_bits(), e.ess.to_bits()];
        for kind in ALL {
            for cap in [0.5, 3.0, 1e3, f64::INFINITY] {
                let (full, prefixes) = estimate_with_prefixes(kind, cap, &rows, &grid);
                assert_eq!(bits(full), bits(estimate(kind, cap, &rows)));
                for (&n, value) in grid.iter().zip(&prefixes) {
                    assert_eq!(value.to_bits(), estimate(kind, cap, &rows[..n as usize]).value.to_bits(), "{kind:?} M = {cap} n = {n}");
                }
                if let Some((from_rows, rows_prefixes)) = weighted(kind, cap, &rows, &grid) {
                    let (from_pairs, pairs_prefixes) = weighted(kind, cap, &pairs, &grid).unwrap();
                    assert_eq!(bits(from_pairs), bits(from_rows));
                    let to_bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(to_bits(&pairs_prefixes), to_bits(&rows_prefixes));
                    assert_eq!(bits(from_rows), bits(full));
                }
            }
        }
        assert_eq!(std::mem::size_of::<Pair>(), 9);
    }
}
