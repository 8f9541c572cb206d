//! `exp` over a slice, two lanes at a time, bit for bit libm's `exp`.
//!
//! A softmax over a catalogue is one `exp` per item, and libm's `exp` (the portable one, so that
//! the browser and the CLI agree to the bit) runs one value at a time: in the reward-and-rank
//! lesson's IPS trainings it was a fifth of the run natively. libm's algorithm (FreeBSD's
//! `e_exp.c`) is a handful of IEEE operations after a three-way choice of the reduction k, so it
//! runs unchanged in two f64 lanes, the choice made by masks: the same operations in the same
//! order on each lane, so the same bits. Lanes that libm treats as special (|x| ≥ 708.39…, where
//! it over- or underflows, and NaN) are left to libm itself.
//!
//! The lanes are simd128 in the browser and SSE2 natively (x86-64's baseline); elsewhere plain
//! pairs of f64, which compile to the same scalar operations.

/// libm's constants (`exp.rs`), by their bits as its comments give them.
const LN2HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e);
const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93);
const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c);
const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1);
const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0);

// libm branches on the high word hx of |x|. For non-negative doubles the order of the bits is the
// order of the values, so each test on hx is a comparison of |x| with the smallest double whose
// high word passes it.
/// hx ≥ 0x4086232b: libm's special cases (|x| ≥ 708.39…).
const SPECIAL_FROM: f64 = f64::from_bits(0x4086_232b_0000_0000);
/// hx ≥ 0x3ff0a2b2 (|x| ≥ 1.5 ln 2): k = (int)(x / ln 2 ± ½).
const ROUNDED_K_FROM: f64 = f64::from_bits(0x3ff0_a2b2_0000_0000);
/// hx > 0x3fd62e42 (|x| > ½ ln 2): k = ±1 below [`ROUNDED_K_FROM`].
const UNIT_K_FROM: f64 = f64::from_bits(0x3fd6_2e43_0000_0000);
/// hx > 0x3e300000 (|x| > 2⁻²⁸): below it libm returns 1 + x.
const REDUCED_FROM: f64 = f64::from_bits(0x3e30_0001_0000_0000);
/// 2⁵² + 1023: an integer k added to it leaves k + 1023 in the low bits of the mantissa.
const POW2_MAGIC: f64 = 4_503_599_627_371_519.0;

/// Every element replaced by `libm::exp` of it.
pub fn exp_in_place(xs: &mut [f64]) {
    let mut pairs = xs.chunks_exact_mut(2);
    for pair in &mut pairs {
        let x = Lanes::load(pair);
        match exp_lanes(x) {
            Some(y) => y.store(pair),
            None => pair.iter_mut().for_each(|v| *v = libm::exp(*v)),
        }
    }
    for v in pairs.into_remainder() {
        *v = libm::exp(*v);
    }
}

/// libm's `exp` of both lanes, or None when a lane is one of its special cases.
#[inline(always)]
fn exp_lanes(x: Lanes) -> Option<Lanes> {
    let magnitude = x.abs();
    if !magnitude.all_below(SPECIAL_FROM) {
        return None; // also NaN, which compares false
    }
    let zero = Lanes::splat(0.0);
    // The reduction x = k ln2 + r: libm's three cases, chosen per lane.
    let rounded_k = (Lanes::splat(INVLN2) * x + Lanes::splat(0.5).with_sign_of(x)).trunc();
    let unit_k = Lanes::splat(1.0).with_sign_of(x);
    let k = Lanes::select(magnitude.at_least(ROUNDED_K_FROM), rounded_k, Lanes::select(magnitude.at_least(UNIT_K_FROM), unit_k, zero));
    // With k = 0 these are libm's hi = x, lo = 0 and r = x exactly.
    let hi = x - k * Lanes::splat(LN2HI);
    let lo = k * Lanes::splat(LN2LO);
    let r = hi - lo;
    let rr = r * r;
    let p = Lanes::splat(P1) + rr * (Lanes::splat(P2) + rr * (Lanes::splat(P3) + rr * (Lanes::splat(P4) + rr * Lanes::splat(P5))));
    let c = r - rr * p;
    let y = Lanes::splat(1.0) + ((r * c / (Lanes::splat(2.0) - c) - lo) + hi);
    // scalbn(y, k) is one multiplication by 2^k for k ≥ −1022, which |x| < 708.4 ensures.
    let scaled = y * (k + Lanes::splat(POW2_MAGIC)).low_bits_as_exponent();
    Some(Lanes::select(magnitude.at_least(REDUCED_FROM), scaled, Lanes::splat(1.0) + x))
}

/// `impl Trait for Lanes` for each binary operator, applying `f` to the two vectors inside.
macro_rules! binary_ops {
    ($($op:ident::$method:ident => $f:expr),* $(,)?) => {
        $(
            impl std::ops::$op for Lanes {
                type Output = Lanes;
                #[inline(always)]
                fn $method(self, o: Lanes) -> Lanes {
                    Lanes(($f)(self.0, o.0))
                }
            }
        )*
    };
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use std::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct Lanes(v128);

    impl Lanes {
        #[inline(always)]
        pub fn load(pair: &[f64]) -> Lanes {
            Lanes(f64x2(pair[0], pair[1]))
        }
        #[inline(always)]
        pub fn store(self, pair: &mut [f64]) {
            pair[0] = f64x2_extract_lane::<0>(self.0);
            pair[1] = f64x2_extract_lane::<1>(self.0);
        }
        #[inline(always)]
        pub fn splat(v: f64) -> Lanes {
            Lanes(f64x2_splat(v))
        }
        #[inline(always)]
        pub fn abs(self) -> Lanes {
            Lanes(f64x2_abs(self.0))
        }
        #[inline(always)]
        pub fn all_below(self, bound: f64) -> bool {
            i64x2_all_true(f64x2_lt(self.0, f64x2_splat(bound)))
        }
        /// All ones in the lanes ≥ `bound`.
        #[inline(always)]
        pub fn at_least(self, bound: f64) -> Lanes {
            Lanes(f64x2_ge(self.0, f64x2_splat(bound)))
        }
        #[inline(always)]
        pub fn select(mask: Lanes, yes: Lanes, no: Lanes) -> Lanes {
            Lanes(v128_bitselect(yes.0, no.0, mask.0))
        }
        #[inline(always)]
        pub fn with_sign_of(self, sign: Lanes) -> Lanes {
            let sign_bit = f64x2_splat(-0.0);
            Lanes(v128_or(v128_andnot(self.0, sign_bit), v128_and(sign.0, sign_bit)))
        }
        #[inline(always)]
        pub fn trunc(self) -> Lanes {
            Lanes(f64x2_trunc(self.0))
        }
        /// The double 2^n, n being the lane's low 11 bits read as an exponent.
        #[inline(always)]
        pub fn low_bits_as_exponent(self) -> Lanes {
            Lanes(i64x2_shl(self.0, 52))
        }
    }

    binary_ops! {
        Add::add => f64x2_add,
        Sub::sub => f64x2_sub,
        Mul::mul => f64x2_mul,
        Div::div => f64x2_div,
    }
}

#[cfg(target_arch = "x86_64")]
mod lanes {
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub struct Lanes(__m128d);

    // SSE2 is part of x86-64, so these intrinsics are always available.
    impl Lanes {
        #[inline(always)]
        pub fn load(pair: &[f64]) -> Lanes {
            Lanes(unsafe { _mm_set_pd(pair[1], pair[0]) })
        }
        #[inline(always)]
        pub fn store(self, pair: &mut [f64]) {
            let mut out = [0.0; 2];
            unsafe { _mm_storeu_pd(out.as_mut_ptr(), self.0) };
            pair.copy_from_slice(&out);
        }
        #[inline(always)]
        pub fn splat(v: f64) -> Lanes {
            Lanes(unsafe { _mm_set1_pd(v) })
        }
        #[inline(always)]
        pub fn abs(self) -> Lanes {
            Lanes(unsafe { _mm_andnot_pd(_mm_set1_pd(-0.0), self.0) })
        }
        #[inline(always)]
        pub fn all_below(self, bound: f64) -> bool {
            unsafe { _mm_movemask_pd(_mm_cmplt_pd(self.0, _mm_set1_pd(bound))) == 0b11 }
        }
        #[inline(always)]
        pub fn at_least(self, bound: f64) -> Lanes {
            Lanes(unsafe { _mm_cmpge_pd(self.0, _mm_set1_pd(bound)) })
        }
        #[inline(always)]
        pub fn select(mask: Lanes, yes: Lanes, no: Lanes) -> Lanes {
            Lanes(unsafe { _mm_or_pd(_mm_and_pd(mask.0, yes.0), _mm_andnot_pd(mask.0, no.0)) })
        }
        #[inline(always)]
        pub fn with_sign_of(self, sign: Lanes) -> Lanes {
            unsafe {
                let sign_bit = _mm_set1_pd(-0.0);
                Lanes(_mm_or_pd(_mm_andnot_pd(sign_bit, self.0), _mm_and_pd(sign_bit, sign.0)))
            }
        }
        /// Toward zero, for |values| < 2³¹ (the k of a non-special lane is within ±1023).
        #[inline(always)]
        pub fn trunc(self) -> Lanes {
            Lanes(unsafe { _mm_cvtepi32_pd(_mm_cvttpd_epi32(self.0)) })
        }
        #[inline(always)]
        pub fn low_bits_as_exponent(self) -> Lanes {
            Lanes(unsafe { _mm_castsi128_pd(_mm_slli_epi64(_mm_castpd_si128(self.0), 52)) })
        }
    }

    // SSE2 is part of x86-64: these intrinsics are always there.
    binary_ops! {
        Add::add => |a, b| unsafe { _mm_add_pd(a, b) },
        Sub::sub => |a, b| unsafe { _mm_sub_pd(a, b) },
        Mul::mul => |a, b| unsafe { _mm_mul_pd(a, b) },
        Div::div => |a, b| unsafe { _mm_div_pd(a, b) },
    }
}

#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
mod lanes {
    #[derive(Clone, Copy)]
    pub struct Lanes([f64; 2]);

    fn map(a: Lanes, f: impl Fn(f64) -> f64) -> Lanes {
        Lanes([f(a.0[0]), f(a.0[1])])
    }

    impl Lanes {
        pub fn load(pair: &[f64]) -> Lanes {
            Lanes([pair[0], pair[1]])
        }
        pub fn store(self, pair: &mut [f64]) {
            pair.copy_from_slice(&self.0);
        }
        pub fn splat(v: f64) -> Lanes {
            Lanes([v; 2])
        }
        pub fn abs(self) -> Lanes {
            map(self, f64::abs)
        }
        pub fn all_below(self, bound: f64) -> bool {
            self.0.iter().all(|v| *v < bound)
        }
        pub fn at_least(self, bound: f64) -> Lanes {
            map(self, |v| if v >= bound { f64::from_bits(u64::MAX) } else { 0.0 })
        }
        pub fn select(mask: Lanes, yes: Lanes, no: Lanes) -> Lanes {
            Lanes(std::array::from_fn(|i| if mask.0[i].to_bits() != 0 { yes.0[i] } else { no.0[i] }))
        }
        pub fn with_sign_of(self, sign: Lanes) -> Lanes {
            Lanes([self.0[0].copysign(sign.0[0]), self.0[1].copysign(sign.0[1])])
        }
        pub fn trunc(self) -> Lanes {
            map(self, f64::trunc)
        }
        pub fn low_bits_as_exponent(self) -> Lanes {
            map(self, |v| f64::from_bits(v.to_bits() << 52))
        }
    }

    binary_ops! {
        Add::add => |a: [f64; 2], b: [f64; 2]| [a[0] + b[0], a[1] + b[1]],
        Sub::sub => |a: [f64; 2], b: [f64; 2]| [a[0] - b[0], a[1] - b[1]],
        Mul::mul => |a: [f64; 2], b: [f64; 2]| [a[0] * b[0], a[1] * b[1]],
        Div::div => |a: [f64; 2], b: [f64; 2]| [a[0] / b[0], a[1] / b[1]],
    }
}

use lanes::Lanes;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::{seeded, Stream};
    use rand::RngExt;

    fn assert_libm(values: &[f64]) {
        let mut got = values.to_vec();
        exp_in_place(&mut got);
        for (x, y) in values.iter().zip(&got) {
            let want = libm::exp(*x);
            assert!(
                y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                "exp({x:e} = {:#x}): {y:e}, libm {want:e}",
                x.to_bits()
            );
        }
    }

    #[test]
    #[allow(clippy::excessive_precision)] // libm's thresholds, written as libm writes them
    fn equals_libm_at_every_boundary_of_its_cases() {
        let mut values =
            vec![0.0, -0.0, 1.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MIN_POSITIVE, -f64::MIN_POSITIVE, 5e-324];
        for bound in
            [SPECIAL_FROM, ROUNDED_K_FROM, UNIT_K_FROM, REDUCED_FROM, 709.782712893383973096, 708.39641853226410622, 745.13321910194110842]
        {
            for step in -3i64..=3 {
                let v = f64::from_bits((bound.to_bits() as i64 + step) as u64);
                values.extend([v, -v]);
            }
            // The high word's edges: the largest double below each bound's high word.
            let below = f64::from_bits(bound.to_bits() - 1);
            values.extend([below, -below]);
        }
        // k's every value in the vector path, at and between the reduction's edges.
        for k in -1022..=1022 {
            let x = k as f64 * std::f64::consts::LN_2;
            for step in -2i64..=2 {
                values.push(f64::from_bits((x.to_bits() as i64 + step) as u64));
            }
            values.push(x + 0.5 * std::f64::consts::LN_2);
            values.push(x - 0.5 * std::f64::consts::LN_2);
        }
        assert_libm(&values);
        // Each value in both lanes, and beside a special one.
        for v in values.clone() {
            assert_libm(&[v, 0.25]);
            assert_libm(&[-3.0, v]);
            assert_libm(&[v, f64::NAN, v]);
        }
    }

    #[test]
    fn equals_libm_on_millions_of_random_arguments() {
        let mut rng = seeded(7, Stream::MonteCarlo);
        let mut values: Vec<f64> = Vec::with_capacity(3_000_001);
        for _ in 0..1_000_000 {
            values.push(rng.random_range(-40.0..5.0)); // softmax arguments
            values.push(rng.random_range(-750.0..750.0));
            // Uniform in the exponent: tiny to huge magnitudes, both signs.
            values.push(f64::from_bits(
                (rng.random::<u64>() & 0xbfff_ffff_ffff_ffff) | (0x3000_0000_0000_0000 * u64::from(rng.random::<bool>())),
            ));
        }
        values.push(0.5); // odd length: the last value alone
        assert_libm(&values);
    }
}
