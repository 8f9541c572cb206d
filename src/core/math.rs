//! Transcendental functions through `libm`, so that native and wasm builds agree bit for bit
//! (std's `exp`/`ln` call the platform's C library, which differs between targets).

#[inline]
pub fn exp(x: f64) -> f64 {
    libm::exp(x)
}

#[inline]
pub fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// exp(x_i − max x) / Σ_j exp(x_j − max x), in place: a softmax that does not overflow.
pub fn softmax_in_place(xs: &mut [f64]) {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    xs.iter_mut().for_each(|p| *p -= max);
    // Two lanes at a time, the same bits as `exp` one by one.
    super::exp_lanes::exp_in_place(xs);
    let mut total = 0.0;
    for p in xs.iter() {
        total += *p;
    }
    xs.iter_mut().for_each(|p| *p /= total);
}

/// ln Σ exp(x_i), stable for large x.
pub fn logsumexp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + ln(xs.iter().map(|x| exp(x - max)).sum())
}

#[inline]
pub fn log10(x: f64) -> f64 {
    libm::log10(x)
}

#[inline]
pub fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[inline]
pub fn sq(x: f64) -> f64 {
    x * x
}
