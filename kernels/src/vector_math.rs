//! `exp`, the exact (erf) GELU, SiLU and one query's attention over f32 slices, written so the
//! compiler vectorises them.
//!
//! The encoder spends more time in scalar `expf` (the softmax over 1500 keys per query) and
//! scalar `erff` (the GELU after every `fc1`) than in its attention GEMMs. Both functions here
//! are branch-free polynomials that LLVM turns into 8-wide AVX2 code: each slice function is
//! compiled twice, once for AVX2+FMA (chosen at run time) and once for the build's baseline.
//!
//! - `exp`: Cephes' `expf` (range reduction by ln 2, degree-5 polynomial, exponent bits set
//!   directly); within 2 ulp of the correctly rounded value on the range softmax uses.
//! - `erf`: Abramowitz & Stegun 7.1.26, absolute error under 1.5e-7, the formula PyTorch's
//!   vectorised CPU `erf` (and so its float GELU) uses.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that `n * LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this `exp` underflows to 0 (the smallest normal is e^-87.34).
const EXP_MIN: f32 = -87.336_55;
const EXP_MAX: f32 = 88.722_83;
/// 1.5 * 2^23: adding and subtracting it rounds an f32 to the nearest integer.
const ROUNDER: f32 = 12_582_912.0;

#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let clamped = x.clamp(EXP_MIN, EXP_MAX);
    // `shifted`'s low mantissa bits hold round(x / ln 2) as an integer: read it from the bits,
    // since a float-to-int conversion (saturating in Rust) does not vectorise.
    let shifted = clamped * LOG2E + ROUNDER;
    let n = shifted - ROUNDER;
    let exponent = (shifted.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits((exponent.wrapping_add(127) as u32) << 23);
    if x < EXP_MIN {
        0.0
    } else {
        y * scale
    }
}

#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let mut r = 1.061_405_4;
    r = r * t - 1.453_152;
    r = r * t + 1.421_413_8;
    r = r * t - 0.284_496_74;
    r = r * t + 0.254_829_6;
    let y = 1.0 - r * t * exp(-a * a);
    y.copysign(x)
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn silu_mul_all(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "silu_mul: gate and up lengths differ");
    for (gate, up) in gate.iter_mut().zip(up) {
        // exp clamps its argument, so a very negative gate gives x / 3.4e38 (0 to f32's
        // precision) instead of x / inf.
        *gate = *gate / (1.0 + exp(-*gate)) * up;
    }
}

/// Replaces each value by `exp((value - max) * scale)` and returns their sum.
#[inline(always)]
fn exp_shifted_sum(values: &mut [f32], max: f32, scale: f32) -> f32 {
    for value in values.iter_mut() {
        *value = exp((*value - max) * scale);
    }
    lanes_fold(values, 0.0, |a, b| a + b)
}

/// A reduction over eight interleaved partial results, so that it vectorises without
/// reassociating one running value (which the compiler may not do for floats).
#[inline(always)]
fn lanes_fold(values: &[f32], start: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [start; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, value) in lanes.iter_mut().zip(chunk) {
            *lane = f(*lane, *value);
        }
    }
    chunks.remainder().iter().chain(&lanes).fold(start, |a, b| f(a, *b))
}

#[inline(always)]
fn max_of(values: &[f32]) -> f32 {
    lanes_fold(values, f32::NEG_INFINITY, |a, b| if b > a { b } else { a })
}

#[inline(always)]
fn softmax_parts(values: &mut [f32], scale: f32) -> f32 {
    let max = max_of(values);
    exp_shifted_sum(values, max, scale)
}

#[inline(always)]
fn gelu_all(values: &mut [f32]) {
    for value in values {
        *value = gelu(*value);
    }
}

/// `a · b` over eight interleaved partial sums (vectorises; see [`lanes_fold`]).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (mut a_chunks, mut b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    for (a, b) in (&mut a_chunks).zip(&mut b_chunks) {
        for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *lane = a.mul_add(*b, *lane);
        }
    }
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(a, b)| a * b).sum();
    lanes.iter().sum::<f32>() + tail
}

/// Attention of one query row over rows `j` of `keys`/`values` at `j * row_stride` (one head's
/// columns of a `(time, width)` projection): scores, softmax, weighted sum, in two passes
/// that read the keys and then the values front to back.
#[inline(always)]
fn one_query_parts(
    query: &[f32],
    keys: &[f32],
    values: &[f32],
    row_stride: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let width = query.len();
    for (row, score) in scores.iter_mut().enumerate() {
        *score = dot(query, &keys[row * row_stride..][..width]);
    }
    let sum = softmax_parts(scores, scale);
    out.fill(0.0);
    for (row, weight) in scores.iter().enumerate() {
        for (out, value) in out.iter_mut().zip(&values[row * row_stride..][..width]) {
            *out = weight.mul_add(*value, *out);
        }
    }
    let inverse = 1.0 / sum;
    out.iter_mut().for_each(|value| *value *= inverse);
}

/// The two builds of each slice function and the run-time choice between them.
macro_rules! dispatched {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU was just checked for AVX2 and FMA.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

dispatched! {
    /// Turns `scores` into unnormalised softmax weights of `scores * scale` (shifted by the
    /// maximum) and returns their sum: the caller divides once per output row instead.
    pub fn softmax_unnormalised(scores: &mut [f32], scale: f32) -> f32 = softmax_parts;
}

dispatched! {
    /// `x * Φ(x)` in place, Φ the standard normal CDF through [`erf`].
    pub fn gelu_in_place(values: &mut [f32]) = gelu_all;
}

dispatched! {
    /// One query's attention over `scores.len()` key rows into `out` (see `one_query_parts`).
    pub fn one_query_attention(
        query: &[f32],
        keys: &[f32],
        values: &[f32],
        row_stride: usize,
        scale: f32,
        scores: &mut [f32],
        out: &mut [f32]
    ) = one_query_parts;
}

dispatched! {
    /// `gate[i] = silu(gate[i]) * up[i]`, the gated activation of a llama-style MLP, with
    /// `silu(x) = x / (1 + e^-x)`.
    pub fn silu_mul_in_place(gate: &mut [f32], up: &[f32]) = silu_mul_all;
}

/// The portable builds of the dispatched functions, so that tests can compare the two.
pub mod portable {
    pub fn softmax_unnormalised(scores: &mut [f32], scale: f32) -> f32 {
        super::softmax_parts(scores, scale)
    }

    pub fn gelu_in_place(values: &mut [f32]) {
        super::gelu_all(values)
    }

    pub fn silu_mul_in_place(gate: &mut [f32], up: &[f32]) {
        super::silu_mul_all(gate, up)
    }

    pub fn one_query_attention(
        query: &[f32],
        keys: &[f32],
        values: &[f32],
        row_stride: usize,
        scale: f32,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        super::one_query_parts(query, keys, values, row_stride, scale, scores, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        ((a.to_bits() as i64 - b32.to_bits() as i64).abs()) as f64
    }

    #[test]
    fn exp_is_within_two_ulp_of_f64_over_the_softmax_range() {
        let mut worst = 0.0f64;
        for i in 0..=400_000 {
            let x = -87.0 * (i as f32 / 400_000.0);
            worst = worst.max(ulps(exp(x), (x as f64).exp()));
        }
        assert!(worst <= 2.0, "worst {worst} ulp");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert!((exp(10.0) as f64 - 10f64.exp()).abs() / 10f64.exp() < 3e-7);
    }

    fn gelu_f64(x: f64) -> f64 {
        // erf through its Taylor series is plenty for |x| < 6; beyond it Φ is 0 or 1 in f32.
        let z = x / std::f64::consts::SQRT_2;
        let erf = if z.abs() > 4.5 {
            z.signum()
        } else {
            let (mut term, mut sum, mut n) = (z, z, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -z * z / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        };
        0.5 * x * (1.0 + erf)
    }

    #[test]
    fn gelu_matches_the_exact_form_on_every_build() {
        let inputs: Vec<f32> =
            (-20_000..=20_000).map(|i| i as f32 * 5e-4 * 1.0001).chain([0.0, -0.0, 30.0, -30.0]).collect();
        for (name, run) in
            [("dispatched", gelu_in_place as fn(&mut [f32])), ("portable", portable::gelu_in_place)]
        {
            let mut values = inputs.clone();
            run(&mut values);
            for (x, y) in inputs.iter().zip(&values) {
                let expected = gelu_f64(*x as f64);
                // A&S 7.1.26's 1.5e-7 absolute erf error, scaled by x/2, plus f32 rounding.
                let bound = 1e-7 * (x.abs() as f64 + 1.0) + expected.abs() * 2e-7;
                assert!(
                    (*y as f64 - expected).abs() <= bound,
                    "{name}: gelu({x}) = {y}, expected {expected}"
                );
            }
        }
    }

    #[test]
    fn softmax_weights_sum_to_what_it_returns_and_match_f64() {
        // 1500 keys, the encoder's width, plus an odd tail.
        let scores: Vec<f32> = (0..1503).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.37).collect();
        let scale = 0.125;
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let expected: Vec<f64> = scores.iter().map(|s| ((*s as f64 - max) * scale).exp()).collect();
        let total: f64 = expected.iter().sum();
        for (name, run) in [
            ("dispatched", softmax_unnormalised as fn(&mut [f32], f32) -> f32),
            ("portable", portable::softmax_unnormalised),
        ] {
            let mut values = scores.clone();
            let sum = run(&mut values, scale as f32);
            assert!((sum as f64 - total).abs() / total < 1e-6, "{name}: sum {sum} against {total}");
            for (got, want) in values.iter().zip(&expected) {
                assert!((*got as f64 - want).abs() <= want * 3e-7 + 1e-30, "{name}: {got} against {want}");
            }
        }
    }

    #[test]
    fn silu_mul_matches_f64_on_every_build() {
        // 4099 values: an odd tail after the 8-wide chunks, and gates far into both saturations.
        let gate: Vec<f32> = (0..4099).map(|i| (i as f32 - 2049.0) * 0.05).chain([-200.0, 200.0]).collect();
        let up: Vec<f32> = (0..gate.len()).map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.25).collect();
        for (name, run) in [
            ("dispatched", silu_mul_in_place as fn(&mut [f32], &[f32])),
            ("portable", portable::silu_mul_in_place),
        ] {
            let mut values = gate.clone();
            run(&mut values, &up);
            for ((x, u), y) in gate.iter().zip(&up).zip(&values) {
                let (x, u) = (*x as f64, *u as f64);
                let expected = x / (1.0 + (-x).exp()) * u;
                assert!(
                    (*y as f64 - expected).abs() <= expected.abs() * 1e-6 + 1e-30,
                    "{name}: silu({x}) * {u} = {y}, expected {expected}"
                );
            }
        }
    }
}
