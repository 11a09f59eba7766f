//! Metrics: each turns per-sample statistics into a corpus score, and every score carries its
//! sample count, standard error and 95% confidence interval (Wilson for proportions, a seeded
//! bootstrap otherwise).
//!
//! Formulas follow KARMA (karma-features.md §6) so numbers are comparable; where KARMA crashes
//! (empty inputs, zero references) the score is `null` instead.

pub mod args;
pub mod bias;
mod bleu;
mod chrf;
mod edit_distance;
mod exact_match;
pub mod interval;
mod numeric;
mod porter;
mod rouge;
mod rubric;
pub mod safety;
mod silence;
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
    /// A judge's verdicts on the item's rubric (`rubric_evaluation`), when it was graded.
    pub graded: Option<Graded<'a>>,
}

/// A judge's verdicts on one answer, criterion by criterion.
#[derive(Clone, Copy, Debug)]
pub struct Graded<'a> {
    pub criteria: &'a [crate::datasets::item::Criterion],
    /// Whether each criterion is met, in `criteria` order.
    pub met: &'a [bool],
    pub example_tags: &'a [String],
}

impl<'a> Sample<'a> {
    /// A sample with one reference.
    pub fn single(
        prediction: Option<&'a str>,
        reference: &'a str,
        other_args: &'a serde_json::Value,
    ) -> Self {
        Sample { prediction, reference, references: &[], other_args, graded: None }
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
    /// Whether `sample_stats` reads a judge's grades (`Sample::graded`): only then does a
    /// graded dataset call its judge.
    fn needs_grades(&self) -> bool {
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
    /// Whether samples come in clusters that are not independent (the variants of one
    /// question): `stats[0]` is then the sample's cluster key, the score comes from
    /// [`Metric::aggregate_units`] over whole clusters, and the bootstrap resamples clusters.
    fn clustered(&self) -> bool {
        false
    }
    /// Secondary scores reported as the metric's breakdown, each with its own interval
    /// (bias_consistency's pair consistencies, harm_detection_accuracy's confusion rates).
    fn parts(&self) -> &'static [&'static str] {
        &[]
    }
    /// The headline score followed by each of [`Metric::parts`], from `units`: the samples of
    /// one cluster each (of one sample each for a metric that is not clustered). Only metrics
    /// that are clustered or have parts are asked.
    fn aggregate_units(&self, units: &[&[&[f64]]]) -> Vec<Option<f64>> {
        let flat: Vec<&[f64]> = units.iter().flat_map(|unit| unit.iter().copied()).collect();
        vec![self.aggregate(&flat)]
    }
    /// Statistics of named sub-scores of this sample (`rubric_evaluation`'s tags), each
    /// aggregated like the headline over the samples that have it: the metric's breakdown
    /// when the names are known only from the data.
    fn keyed_stats(&self, _sample: &Sample<'_>) -> Vec<(String, Vec<f64>)> {
        Vec::new()
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
        &bias::BiasConsistency,
        &bias::BiasDisparity,
        &safety::HarmDetection,
        &safety::RefusalRate,
        &silence::SilenceAccuracy,
        &rubric::RubricEvaluation,
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
    if metric.clustered() || !metric.parts().is_empty() {
        return score_with_parts(metric, views, seed).0;
    }
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
    bootstrapped(value, bootstrap, views.len())
}

fn bootstrapped(value: Option<f64>, bootstrap: Option<interval::Bootstrap>, n: usize) -> Score {
    Score {
        score: value,
        stderr: bootstrap.map(|b| b.stderr),
        ci_low: bootstrap.map(|b| b.low),
        ci_high: bootstrap.map(|b| b.high),
        num_samples: n,
        interval: "bootstrap",
    }
}

/// The samples grouped by cluster key (`stats[0]`), clusters in order of first appearance.
pub fn clusters<'a>(views: &[&'a [f64]]) -> Vec<Vec<&'a [f64]>> {
    let mut index: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let mut clusters: Vec<Vec<&[f64]>> = Vec::new();
    for view in views {
        let slot = *index.entry(view[0].to_bits()).or_insert_with(|| {
            clusters.push(Vec::new());
            clusters.len() - 1
        });
        clusters[slot].push(view);
    }
    clusters
}

/// The headline score and each part's (parts with no value are left out), bootstrapped over
/// clusters for a clustered metric and over samples otherwise.
pub fn score_with_parts(
    metric: &dyn Metric,
    views: &[&[f64]],
    seed: u64,
) -> (Score, std::collections::BTreeMap<String, Score>) {
    let grouped;
    let units: Vec<&[&[f64]]> = if metric.clustered() {
        grouped = clusters(views);
        grouped.iter().map(Vec::as_slice).collect()
    } else {
        views.chunks(1).collect()
    };
    let values = if units.is_empty() { Vec::new() } else { metric.aggregate_units(&units) };
    let intervals =
        interval::bootstrap_many(&units, values.len(), |resample| metric.aggregate_units(resample), seed);
    let score_of = |index: usize| {
        let value = values.get(index).copied().flatten();
        bootstrapped(value, value.and(intervals.get(index).copied().flatten()), views.len())
    };
    let parts = metric
        .parts()
        .iter()
        .enumerate()
        .map(|(index, name)| ((*name).to_owned(), score_of(index + 1)))
        .filter(|(_, score)| score.score.is_some())
        .collect();
    (score_of(0), parts)
}

/// A 52-bit hash of `text` that an `f64` statistic holds exactly (cluster keys, answers).
pub fn text_key(text: &str) -> f64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in text.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 12) as f64
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
