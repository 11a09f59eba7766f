//! `numeric_tolerance`: a prediction matches when within `other_args.tolerance` of the
//! reference, also accepting a percentage/fraction confusion (KARMA's rule).

use super::{mean_of_first, Metric, Sample};

fn parse(text: &str) -> Option<f64> {
    text.trim().trim_end_matches('%').trim().parse::<f64>().ok().filter(|value| value.is_finite())
}

pub struct NumericTolerance;

impl Metric for NumericTolerance {
    fn configure(&self, _args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(NumericTolerance)
    }
    fn name(&self) -> &'static str {
        "numeric_tolerance"
    }
    fn description(&self) -> &'static str {
        "share of numeric predictions within other_args.tolerance of the reference (x100 and /100 also accepted)"
    }
    fn is_proportion(&self) -> bool {
        true
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        let tolerance = match sample.other_args.get("tolerance") {
            Some(serde_json::Value::Number(number)) => number.as_f64().unwrap_or(0.0),
            Some(serde_json::Value::String(text)) => parse(text).unwrap_or(0.0),
            _ => 0.0,
        };
        let matched = match (parse(sample.prediction_text()), parse(sample.reference)) {
            (Some(predicted), Some(expected)) => {
                (predicted - expected).abs() <= tolerance
                    || (expected != 0.0
                        && ((predicted / 100.0 - expected).abs() <= tolerance
                            || (predicted * 100.0 - expected).abs() <= tolerance))
            }
            _ => false,
        };
        vec![f64::from(u8::from(matched))]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        mean_of_first(stats)
    }
    fn needs_other_args(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn matches(prediction: &str, reference: &str, other_args: serde_json::Value) -> bool {
        NumericTolerance.sample_stats(&Sample::single(Some(prediction), reference, &other_args))[0] == 1.0
    }

    #[test]
    fn tolerance_and_percent_confusion() {
        assert!(matches("10.4", "10", json!({"tolerance": 0.5})));
        assert!(!matches("10.6", "10", json!({"tolerance": "0.5"})));
        assert!(matches("25", "0.25", json!({})), "25 (percent) vs 0.25");
        assert!(matches("0.25", "25", json!({})), "0.25 vs 25 percent");
        assert!(matches("12%", "12", json!(null)));
        assert!(!matches("abc", "1", json!({"tolerance": 100})));
        assert!(!matches("0", "0.5", json!({})), "zero reference guard only applies to scaling");
        assert!(matches("0", "0", json!({})));
    }
}
