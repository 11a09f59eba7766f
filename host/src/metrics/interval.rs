//! Confidence intervals.

/// z for a two-sided 95% interval.
const Z: f64 = 1.959_963_984_540_054;

/// Wilson score interval for `successes` out of `n` (n > 0).
pub fn wilson(successes: f64, n: f64) -> (f64, f64) {
    let p = successes / n;
    let z2 = Z * Z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half_width = Z * ((p * (1.0 - p) / n) + z2 / (4.0 * n * n)).sqrt() / denominator;
    ((centre - half_width).max(0.0), (centre + half_width).min(1.0))
}

/// Result of a bootstrap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bootstrap {
    pub stderr: f64,
    pub low: f64,
    pub high: f64,
}

/// Resamples drawn by [`bootstrap`].
pub const RESAMPLES: usize = 1000;

/// Percentile bootstrap of `aggregate` over `stats`, reproducible from `seed`.
pub fn bootstrap(
    stats: &[&[f64]],
    aggregate: impl Fn(&[&[f64]]) -> Option<f64>,
    seed: u64,
) -> Option<Bootstrap> {
    if stats.is_empty() {
        return None;
    }
    let mut state = seed ^ 0x5851_f42d_4c95_7f2d;
    let mut resample: Vec<&[f64]> = Vec::with_capacity(stats.len());
    let mut values: Vec<f64> = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        resample.clear();
        for _ in 0..stats.len() {
            let index = ((u128::from(splitmix64(&mut state)) * stats.len() as u128) >> 64) as usize;
            resample.push(stats[index]);
        }
        if let Some(value) = aggregate(&resample) {
            values.push(value);
        }
    }
    summarise(values)
}

/// Bootstrap intervals of `width` statistics computed together from one resample of `units`
/// (a metric's headline and its parts): one pass per resample instead of one per statistic.
/// Entry `i` is `None` where statistic `i` was undefined in every resample.
pub fn bootstrap_many<T: Copy>(
    units: &[T],
    width: usize,
    aggregate: impl Fn(&[T]) -> Vec<Option<f64>>,
    seed: u64,
) -> Vec<Option<Bootstrap>> {
    if units.is_empty() || width == 0 {
        return vec![None; width];
    }
    let mut state = seed ^ 0x5851_f42d_4c95_7f2d;
    let mut resample: Vec<T> = Vec::with_capacity(units.len());
    let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(RESAMPLES); width];
    for _ in 0..RESAMPLES {
        resample.clear();
        for _ in 0..units.len() {
            let index = ((u128::from(splitmix64(&mut state)) * units.len() as u128) >> 64) as usize;
            resample.push(units[index]);
        }
        for (slot, value) in values.iter_mut().zip(aggregate(&resample)) {
            if let Some(value) = value {
                slot.push(value);
            }
        }
    }
    values.into_iter().map(summarise).collect()
}

/// The standard error and 95% percentile interval of bootstrap values.
fn summarise(mut values: Vec<f64>) -> Option<Bootstrap> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance =
        values.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / (values.len().max(2) - 1) as f64;
    let percentile =
        |q: f64| values[((q * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)];
    Some(Bootstrap { stderr: variance.sqrt(), low: percentile(0.025), high: percentile(0.975) })
}

/// The next value of a splitmix64 stream.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut mixed = *state;
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_hand_computed_values() {
        // 8/10: centre (0.8 + 0.19208)/1.38415 = 0.71674, half width 0.23669 (computed by hand).
        let (low, high) = wilson(8.0, 10.0);
        assert!((low - 0.490_162).abs() < 1e-5 && (high - 0.943_318).abs() < 1e-5, "{low} {high}");
        let (low, high) = wilson(0.0, 5.0);
        assert_eq!(low, 0.0);
        assert!((high - 0.434_482).abs() < 1e-5, "{high}");
    }

    #[test]
    fn bootstrap_of_a_constant_is_degenerate() {
        let stats = [[0.5], [0.5], [0.5]];
        let views: Vec<&[f64]> = stats.iter().map(|s| s.as_slice()).collect();
        let result =
            bootstrap(&views, |r| Some(r.iter().map(|s| s[0]).sum::<f64>() / r.len() as f64), 1).unwrap();
        assert_eq!((result.low, result.high), (0.5, 0.5));
        assert!(result.stderr.abs() < 1e-12);
    }
}
