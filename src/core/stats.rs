//! Small statistics shared by the lessons: means with standard errors, quantiles, histograms.

use serde::{Deserialize, Serialize};

/// A sample mean with its standard error (√(s²/n)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanSe {
    pub mean: f64,
    pub se: f64,
    pub n: u64,
}

/// Streaming mean and variance (Welford), so that long simulations need no buffers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Running {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Running {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn summary(&self) -> MeanSe {
        let var = if self.n > 1 { self.m2 / (self.n - 1) as f64 } else { 0.0 };
        MeanSe { mean: self.mean, se: (var / self.n.max(1) as f64).sqrt(), n: self.n }
    }
}

/// Mean and standard error of some values, in order (the same bits as pushing them one by one).
pub fn mean_se(values: impl IntoIterator<Item = f64>) -> MeanSe {
    let mut running = Running::default();
    values.into_iter().for_each(|x| running.push(x));
    running.summary()
}

/// Quantile by linear interpolation on a sorted copy (q in [0, 1]).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A histogram with equal-width bins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// bins + 1 edges, increasing.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn of(values: &[f64], bins: u32) -> Histogram {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return Histogram::default();
        }
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let mut hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if hi - lo < 1e-9 {
            // One value only: a single bin of width 1 centred on it.
            hi = lo + 0.5;
            let lo = lo - 0.5;
            return Histogram { edges: vec![lo, hi], counts: vec![finite.len() as u64] };
        }
        let bins = bins.max(1);
        let width = (hi - lo) / bins as f64;
        let edges = (0..=bins).map(|i| lo + width * i as f64).collect();
        let mut counts = vec![0u64; bins as usize];
        for v in finite {
            let b = (((v - lo) / width) as u32).min(bins - 1);
            counts[b as usize] += 1;
        }
        Histogram { edges, counts }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

// A stage result of several lessons (logged CTR, A/B tests).
crate::no_heap_footprint!(MeanSe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_matches_two_pass() {
        let xs = [1.0, 4.0, 2.0, 8.0, 5.0];
        let mut r = Running::default();
        xs.iter().for_each(|x| r.push(*x));
        let s = r.summary();
        assert!((s.mean - 4.0).abs() < 1e-12);
        // sample variance 7.5, se = sqrt(7.5/5)
        assert!((s.se - (7.5f64 / 5.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn histogram_counts_everything() {
        let xs: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let h = Histogram::of(&xs, 7);
        assert_eq!(h.total(), 100);
        assert_eq!(h.edges.len(), 8);
        let one = Histogram::of(&[3.0, 3.0], 10);
        assert_eq!(one.counts, vec![2]);
    }

    #[test]
    fn quantiles() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&xs, 0.5), 2.0);
        assert_eq!(quantile(&xs, 0.125), 0.5);
    }
}
