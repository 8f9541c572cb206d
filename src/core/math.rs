//! Transcendental functions from basic arithmetic (`exp`) or through `libm`, so that native and
//! wasm builds agree bit for bit (std's `exp`/`ln` call the platform's C library, which differs
//! between targets).

/// e^x, within about one unit in the last place, from basic arithmetic only (so the same bits
/// natively and in wasm, like `libm`, and about twice as fast as its division-based `exp`, which
/// took 20–33 % of the reward-and-rank and REINFORCE trainings): x = (64 m + j) ln2/64 + r with
/// |r| ≤ ln2/128, so e^x = 2^m · 2^(j/64) · e^r, the 64 values 2^(j/64) correctly rounded in a
/// table (computed to 60 digits), e^r by its Taylor polynomial of degree 5 (truncation below
/// 4e-17). Beyond |x| = 700 (overflow, underflow, ∞, NaN) it is `libm::exp`.
#[inline]
pub fn exp(x: f64) -> f64 {
    if x.is_nan() || x.abs() > 700.0 {
        return libm::exp(x);
    }
    // Adding 1.5 · 2^52 rounds to the nearest integer (ties to even): binary64 with
    // round-to-nearest, as Rust's f64 is on every target, and |x · 64/ln 2| < 2^51.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let k = (x * SIXTY_FOUR_OVER_LN2 + ROUND) - ROUND;
    // LN2_OVER_64_HI has 32 significant bits and |k| < 2^17: k · HI is exact, and so is x − k · HI.
    let r = (x - k * LN2_OVER_64_HI) - k * LN2_OVER_64_LO;
    let k = k as i64;
    let table = f64::from_bits(EXP2_SIXTY_FOURTHS[(k & 63) as usize]);
    let series = r + r * r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0))));
    // 2^m as its bits: |m| ≤ 1010 here, a normal number.
    let scale = f64::from_bits((((k >> 6) + 1023) as u64) << 52);
    (table + table * series) * scale
}

const SIXTY_FOUR_OVER_LN2: f64 = 92.332_482_616_893_66;
/// ln 2 / 64 split in two: HI's last 21 bits are zero, LO is the rest.
const LN2_OVER_64_HI: f64 = f64::from_bits(0x3f86_2e42_fee0_0000);
const LN2_OVER_64_LO: f64 = f64::from_bits(0x3d8a_39ef_3579_3c76);
/// 2^(j/64) for j = 0 … 63, correctly rounded.
#[rustfmt::skip]
const EXP2_SIXTY_FOURTHS: [u64; 64] = [
    0x3ff0000000000000, 0x3ff02c9a3e778061, 0x3ff059b0d3158574, 0x3ff0874518759bc8,
    0x3ff0b5586cf9890f, 0x3ff0e3ec32d3d1a2, 0x3ff11301d0125b51, 0x3ff1429aaea92de0,
    0x3ff172b83c7d517b, 0x3ff1a35beb6fcb75, 0x3ff1d4873168b9aa, 0x3ff2063b88628cd6,
    0x3ff2387a6e756238, 0x3ff26b4565e27cdd, 0x3ff29e9df51fdee1, 0x3ff2d285a6e4030b,
    0x3ff306fe0a31b715, 0x3ff33c08b26416ff, 0x3ff371a7373aa9cb, 0x3ff3a7db34e59ff7,
    0x3ff3dea64c123422, 0x3ff4160a21f72e2a, 0x3ff44e086061892d, 0x3ff486a2b5c13cd0,
    0x3ff4bfdad5362a27, 0x3ff4f9b2769d2ca7, 0x3ff5342b569d4f82, 0x3ff56f4736b527da,
    0x3ff5ab07dd485429, 0x3ff5e76f15ad2148, 0x3ff6247eb03a5585, 0x3ff6623882552225,
    0x3ff6a09e667f3bcd, 0x3ff6dfb23c651a2f, 0x3ff71f75e8ec5f74, 0x3ff75feb564267c9,
    0x3ff7a11473eb0187, 0x3ff7e2f336cf4e62, 0x3ff82589994cce13, 0x3ff868d99b4492ed,
    0x3ff8ace5422aa0db, 0x3ff8f1ae99157736, 0x3ff93737b0cdc5e5, 0x3ff97d829fde4e50,
    0x3ff9c49182a3f090, 0x3ffa0c667b5de565, 0x3ffa5503b23e255d, 0x3ffa9e6b5579fdbf,
    0x3ffae89f995ad3ad, 0x3ffb33a2b84f15fb, 0x3ffb7f76f2fb5e47, 0x3ffbcc1e904bc1d2,
    0x3ffc199bdd85529c, 0x3ffc67f12e57d14b, 0x3ffcb720dcef9069, 0x3ffd072d4a07897c,
    0x3ffd5818dcfba487, 0x3ffda9e603db3285, 0x3ffdfc97337b9b5f, 0x3ffe502ee78b3ff6,
    0x3ffea4afa2a490da, 0x3ffefa1bee615a27, 0x3fff50765b6e4540, 0x3fffa7c1819e90d8,
];

#[inline]
pub fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// exp(x_i − max x) / Σ_j exp(x_j − max x), in place: a softmax that does not overflow.
pub fn softmax_in_place(xs: &mut [f64]) {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for p in xs.iter_mut() {
        *p = exp(*p - max);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Distance in units in the last place between two finite doubles of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn exp_is_within_two_ulps_of_libm_and_one_at_zero() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut worst = 0;
        for i in 0..400_000 {
            let x: f64 = match i % 4 {
                0 => rng.random_range(-700.0..700.0),
                1 => rng.random_range(-20.0..20.0),
                2 => rng.random_range(-1e-3..1e-3),
                // Near the edges of the table's steps, where r is largest.
                _ => (rng.random_range(-5000i32..5000) as f64 + 0.5) * std::f64::consts::LN_2 / 64.0,
            };
            let (ours, reference) = (exp(x), libm::exp(x));
            worst = worst.max(ulps(ours, reference));
            assert!(ulps(ours, reference) <= 2, "exp({x:e}) = {ours:e}, libm {reference:e}");
        }
        assert!(worst >= 1, "the test compares something");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(1.0), std::f64::consts::E);
        // The last values the polynomial serves (beyond, `libm::exp` itself answers).
        for x in [700.0, -700.0, 699.99, -699.99] {
            assert!(ulps(exp(x), libm::exp(x)) <= 2, "{x}");
        }
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
    }

    #[test]
    #[ignore]
    fn exp_speed() {
        let xs: Vec<f64> = (0..1_000_000).map(|i| (i as f64 / 1e6 - 0.5) * 40.0).collect();
        for round in 0..3 {
            let start = std::time::Instant::now();
            let ours: f64 = xs.iter().map(|&x| exp(x)).sum();
            let mid = start.elapsed();
            let reference: f64 = xs.iter().map(|&x| libm::exp(x)).sum();
            let end = start.elapsed() - mid;
            println!("round {round}: ours {mid:?}, libm {end:?} ({ours} {reference})");
        }
    }
}
