//! `exact_match` and `accuracy`.

use super::{mean_of_first, Metric, Sample};

/// KARMA's `exact_match`: both sides lowercased (not trimmed), equal strings; with several
/// references, equal to any of them. `ignore_case=false` compares as written.
pub struct ExactMatch {
    pub ignore_case: bool,
}

impl ExactMatch {
    pub const DEFAULT: ExactMatch = ExactMatch { ignore_case: true };
}

const EXACT_MATCH_ARGS: &[super::ArgSpec] = &[super::ArgSpec {
    name: "ignore_case",
    kind: super::ArgKind::Bool,
    default: "true",
    description: "compare lowercased texts (KARMA's rule)",
}];

impl Metric for ExactMatch {
    fn args(&self) -> &'static [super::ArgSpec] {
        EXACT_MATCH_ARGS
    }
    fn configure(&self, args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(ExactMatch { ignore_case: args.bool("ignore_case") })
    }
    fn name(&self) -> &'static str {
        "exact_match"
    }
    fn description(&self) -> &'static str {
        "share of predictions equal to a reference, case-insensitive unless ignore_case=false"
    }
    fn is_proportion(&self) -> bool {
        true
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        let prediction = sample.prediction_text();
        let equal = |reference: &str| match self.ignore_case {
            false => reference == prediction,
            // ASCII (an option letter, most English) compares in place; other text through
            // `to_lowercase`, whose context rules (Greek final sigma) a per-character fold lacks.
            true if prediction.is_ascii() && reference.is_ascii() => {
                reference.eq_ignore_ascii_case(prediction)
            }
            true => reference.to_lowercase() == prediction.to_lowercase(),
        };
        vec![f64::from(u8::from(sample.all_references().any(equal)))]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        mean_of_first(stats)
    }
}

/// KARMA's `accuracy`: both sides trimmed, case-sensitive equality.
pub struct Accuracy;

impl Metric for Accuracy {
    fn configure(&self, _args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(Accuracy)
    }
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
        metric.sample_stats(&Sample::single(prediction, reference, &serde_json::Value::Null))[0]
    }

    #[test]
    fn exact_match_ignores_case_not_spaces() {
        assert_eq!(stat(&ExactMatch::DEFAULT, Some("b"), "B"), 1.0);
        assert_eq!(stat(&ExactMatch::DEFAULT, Some("B "), "B"), 0.0);
        assert_eq!(stat(&ExactMatch::DEFAULT, Some("ÉTÉ"), "été"), 1.0);
        assert_eq!(stat(&ExactMatch::DEFAULT, None, "B"), 0.0);
        assert_eq!(stat(&ExactMatch::DEFAULT, None, ""), 1.0);
    }

    #[test]
    fn accuracy_trims_and_respects_case() {
        assert_eq!(stat(&Accuracy, Some(" B\n"), "B"), 1.0);
        assert_eq!(stat(&Accuracy, Some("b"), "B"), 0.0);
    }
}
