//! `exact_match` and `accuracy`.

use super::{mean_of_first, Metric, Sample};

/// KARMA's `exact_match`: both sides lowercased (not trimmed), equal strings.
pub struct ExactMatch;

impl Metric for ExactMatch {
    fn name(&self) -> &'static str {
        "exact_match"
    }
    fn description(&self) -> &'static str {
        "share of predictions equal to the reference, case-insensitive"
    }
    fn is_proportion(&self) -> bool {
        true
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        vec![f64::from(u8::from(sample.prediction_text().to_lowercase() == sample.reference.to_lowercase()))]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        mean_of_first(stats)
    }
}

/// KARMA's `accuracy`: both sides trimmed, case-sensitive equality.
pub struct Accuracy;

impl Metric for Accuracy {
    fn name(&self) -> &'static str {
        "accuracy"
    }
    fn description(&self) -> &'static str {
        "share of predictions equal to the reference after trimming whitespace, case-sensitive"
    }
    fn is_proportion(&self) -> bool {
        true
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        vec![f64::from(u8::from(sample.prediction_text().trim() == sample.reference.trim()))]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        mean_of_first(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(metric: &dyn Metric, prediction: Option<&str>, reference: &str) -> f64 {
        metric.sample_stats(&Sample { prediction, reference, other_args: &serde_json::Value::Null })[0]
    }

    #[test]
    fn exact_match_ignores_case_not_spaces() {
        assert_eq!(stat(&ExactMatch, Some("b"), "B"), 1.0);
        assert_eq!(stat(&ExactMatch, Some("B "), "B"), 0.0);
        assert_eq!(stat(&ExactMatch, Some("ÉTÉ"), "été"), 1.0);
        assert_eq!(stat(&ExactMatch, None, "B"), 0.0);
        assert_eq!(stat(&ExactMatch, None, ""), 1.0);
    }

    #[test]
    fn accuracy_trims_and_respects_case() {
        assert_eq!(stat(&Accuracy, Some(" B\n"), "B"), 1.0);
        assert_eq!(stat(&Accuracy, Some("b"), "B"), 0.0);
    }
}
