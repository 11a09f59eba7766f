//! Metrics: each turns per-sample statistics into a corpus score, and every score carries its
//! sample count, standard error and 95% confidence interval (Wilson for proportions, a seeded
//! bootstrap otherwise).
//!
//! Formulas follow KARMA (karma-features.md §6) so numbers are comparable; where KARMA crashes
//! (empty inputs, zero references) the score is `null` instead.

pub mod args;
mod bleu;
mod chrf;
mod edit_distance;
mod exact_match;
pub mod interval;
mod numeric;
mod porter;
mod rouge;
pub mod stratified;
mod tokenised_f1;

use std::sync::Arc;

use serde::Serialize;

pub use args::{ArgKind, ArgSpec, MetricArgs};

/// What a metric sees of one sample.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// The extracted prediction; `None` when extraction failed (scored as an empty answer).
    pub prediction: Option<&'a str>,
    /// The primary reference (the first of `references`).
    pub reference: &'a str,
    /// Every acceptable reference; metrics that take several (bleu, chrf, exact_match,
    /// tokenised_f1) use them all. Empty means just `reference`.
    pub references: &'a [String],
    /// The item's `other_args` (e.g. `tolerance` for `numeric_tolerance`).
    pub other_args: &'a serde_json::Value,
}

impl<'a> Sample<'a> {
    /// A sample with one reference.
    pub fn single(
        prediction: Option<&'a str>,
        reference: &'a str,
        other_args: &'a serde_json::Value,
    ) -> Self {
        Sample { prediction, reference, references: &[], other_args }
    }

    fn prediction_text(&self) -> &str {
        self.prediction.unwrap_or_default()
    }

    /// Every reference, the primary one first.
    fn all_references(&self) -> impl Iterator<Item = &str> {
        let several = !self.references.is_empty();
        std::iter::once(self.reference)
            .filter(move |_| !several)
            .chain(self.references.iter().map(String::as_str))
    }
}

/// A metric: per-sample sufficient statistics and how they aggregate.
pub trait Metric: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Whether the score is a proportion of per-sample 0/1 outcomes (Wilson interval).
    fn is_proportion(&self) -> bool;
    /// The statistics of one sample (e.g. `[correct]`, or BLEU's n-gram counts).
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64>;
    /// The corpus score from the statistics of some samples; `None` when undefined.
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64>;
    /// Whether `sample_stats` reads `other_args` (parsing it costs; most metrics do not).
    fn needs_other_args(&self) -> bool {
        false
    }
    /// Fields of `other_args` whose values split the samples into groups, each scored on its
    /// own: the metric's breakdown (see [`stratified::strata_keys`]). Empty: the breakdown is by
    /// the dataset's own groups. Only proportions are stratified.
    fn strata(&self) -> Vec<String> {
        Vec::new()
    }
    /// The arguments `--metric-args` may give (none by default).
    fn args(&self) -> &'static [ArgSpec] {
        &[]
    }
    /// An instance with checked arguments (every declared one present).
    fn configure(&self, args: &MetricArgs) -> Arc<dyn Metric>;
}

/// A metric ready to score: the registry's, configured with its arguments.
pub type MetricHandle = Arc<dyn Metric>;

/// The metric `name` configured with `given` arguments (checked: unknown or ill-typed ones are
/// errors).
pub fn configure(
    name: &str,
    given: &std::collections::BTreeMap<String, String>,
) -> Result<MetricHandle, String> {
    let metric = find(name).ok_or_else(|| format!("unknown metric `{name}`"))?;
    let args = MetricArgs::check(metric.name(), metric.args(), given)?;
    Ok(metric.configure(&args))
}

impl std::fmt::Debug for dyn Metric {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The registry, in listing order.
pub fn all() -> &'static [&'static dyn Metric] {
    &[
        &exact_match::ExactMatch::DEFAULT,
        &exact_match::Accuracy,
        &tokenised_f1::TokenisedF1,
        &bleu::Bleu::DEFAULT,
        &chrf::Chrf,
        &edit_distance::Wer,
        &edit_distance::Cer,
        &numeric::NumericTolerance,
        &rouge::Rouge::N(1),
        &rouge::Rouge::N(2),
        &rouge::Rouge::L,
        &rouge::Rouge::LSum,
        &stratified::Stratified::STRATIFIED,
        &stratified::Stratified::GEOGRAPHIC,
        &stratified::Stratified::DEMOGRAPHIC,
    ]
}

/// The metrics a name in a metric list stands for: `rouge` is its four variants.
pub fn expand(name: &str) -> Vec<&str> {
    if name == "rouge" {
        rouge::ROUGE_NAMES.to_vec()
    } else {
        vec![name]
    }
}

/// Looks a metric up by name.
pub fn find(name: &str) -> Option<&'static dyn Metric> {
    all().iter().copied().find(|metric| metric.name() == name)
}

/// A reported score.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Score {
    pub score: Option<f64>,
    pub stderr: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub num_samples: usize,
    /// `wilson` or `bootstrap`.
    pub interval: &'static str,
}

/// Scores `samples` with `metric`. `seed` drives the bootstrap (recorded in the manifest).
pub fn score(metric: &dyn Metric, samples: &[Sample<'_>], seed: u64) -> Score {
    let stats: Vec<Vec<f64>> = samples.iter().map(|sample| metric.sample_stats(sample)).collect();
    let views: Vec<&[f64]> = stats.iter().map(Vec::as_slice).collect();
    score_stats(metric, &views, seed)
}

/// Scores already computed per-sample statistics (what the engine keeps instead of texts, so
/// memory stays small on large datasets).
pub fn score_stats(metric: &dyn Metric, views: &[&[f64]], seed: u64) -> Score {
    let value = if views.is_empty() { None } else { metric.aggregate(views) };
    if metric.is_proportion() {
        let successes = views.iter().map(|stat| stat[0]).sum::<f64>();
        let (stderr, low, high) = match (value, views.len()) {
            (Some(proportion), n) if n > 0 => {
                let (low, high) = interval::wilson(successes, n as f64);
                (Some((proportion * (1.0 - proportion) / n as f64).sqrt()), Some(low), Some(high))
            }
            _ => (None, None, None),
        };
        return Score {
            score: value,
            stderr,
            ci_low: low,
            ci_high: high,
            num_samples: views.len(),
            interval: "wilson",
        };
    }
    let bootstrap =
        value.and_then(|_| interval::bootstrap(views, |resample| metric.aggregate(resample), seed));
    Score {
        score: value,
        stderr: bootstrap.map(|b| b.stderr),
        ci_low: bootstrap.map(|b| b.low),
        ci_high: bootstrap.map(|b| b.high),
        num_samples: views.len(),
        interval: "bootstrap",
    }
}

/// A proportion score from counts alone (Wilson interval): what the engine keeps for
/// proportion metrics, so their memory does not grow with the dataset.
pub fn score_proportion(successes: f64, n: usize) -> Score {
    if n == 0 {
        return Score {
            score: None,
            stderr: None,
            ci_low: None,
            ci_high: None,
            num_samples: 0,
            interval: "wilson",
        };
    }
    let proportion = successes / n as f64;
    let (low, high) = interval::wilson(successes, n as f64);
    Score {
        score: Some(proportion),
        stderr: Some((proportion * (1.0 - proportion) / n as f64).sqrt()),
        ci_low: Some(low),
        ci_high: Some(high),
        num_samples: n,
        interval: "wilson",
    }
}

/// Mean of the first statistic (for per-sample-score metrics).
fn mean_of_first(stats: &[&[f64]]) -> Option<f64> {
    (!stats.is_empty()).then(|| stats.iter().map(|stat| stat[0]).sum::<f64>() / stats.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportion_scores_carry_wilson_intervals() {
        let empty = serde_json::Value::Null;
        let samples: Vec<Sample<'_>> = ["A", "B", "A", "A"]
            .iter()
            .map(|prediction| Sample::single(Some(prediction), "A", &empty))
            .collect();
        let result = score(find("exact_match").unwrap(), &samples, 0);
        assert_eq!(result.score, Some(0.75));
        assert_eq!(result.num_samples, 4);
        assert!((result.stderr.unwrap() - (0.75f64 * 0.25 / 4.0).sqrt()).abs() < 1e-12);
        let (low, high) = (result.ci_low.unwrap(), result.ci_high.unwrap());
        assert!((low - 0.300_641).abs() < 1e-5 && (high - 0.954_414).abs() < 1e-5, "{low} {high}");
    }

    #[test]
    fn no_samples_means_no_score() {
        for metric in all() {
            let result = score(*metric, &[], 0);
            assert_eq!((result.score, result.num_samples), (None, 0), "{}", metric.name());
        }
    }

    #[test]
    fn bootstrap_is_seeded() {
        let empty = serde_json::Value::Null;
        let samples: Vec<Sample<'_>> = ["a b c", "a b", "x", "a"]
            .iter()
            .map(|prediction| Sample::single(Some(prediction), "a b c", &empty))
            .collect();
        let metric = find("tokenised_f1").unwrap();
        assert_eq!(score(metric, &samples, 7), score(metric, &samples, 7));
        assert_ne!(score(metric, &samples, 7).stderr, score(metric, &samples, 8).stderr);
    }
}
