//! `numeric_tolerance`: a prediction matches when within `other_args.tolerance` of the
//! reference, also accepting a percentage/fraction confusion (KARMA's rule).

use super::{mean_of_first, Metric, Sample};

fn parse(text: &str) -> Option<f64> {
    text.trim().trim_end_matches('%').trim().parse::<f64>().ok().filter(|value| value.is_finite())
}

/// The number a prediction or reference holds: the text itself, or, for a JSON object, its
/// `primary_field` (KARMA ignores the field, so JSON answers never match), or its only numeric
/// field when none is named.
fn value(text: &str, primary_field: Option<&str>) -> Option<f64> {
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        return parse(trimmed);
    }
    let serde_json::Value::Object(object) = serde_json::from_str::<serde_json::Value>(trimmed).ok()? else {
        return None;
    };
    let number = |value: &serde_json::Value| match value {
        serde_json::Value::Number(number) => number.as_f64(),
        serde_json::Value::String(text) => parse(text),
        _ => None,
    };
    match primary_field {
        Some(field) => object.get(field).and_then(number),
        None => {
            let mut numbers = object.values().filter_map(number);
            let first = numbers.next()?;
            numbers.next().is_none().then_some(first)
        }
    }
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
        "share of numeric predictions within other_args.tolerance of the reference (x100 and /100 also accepted; JSON answers compared on other_args.primary_field)"
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
        let primary_field = sample.other_args.get("primary_field").and_then(serde_json::Value::as_str);
        let matched =
            match (value(sample.prediction_text(), primary_field), value(sample.reference, primary_field)) {
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

    #[test]
    fn json_answers_are_compared_on_their_primary_field() {
        let args = json!({"tolerance": 0.1, "primary_field": "score"});
        assert!(matches(r#"{"score":4,"risk":"high"}"#, r#"{"score": 4.05, "risk": "low"}"#, args.clone()));
        assert!(matches(r#"{"score":"4"}"#, "4", args.clone()));
        assert!(!matches(r#"{"risk":4}"#, "4", args));
        assert!(matches(r#"{"bmi": 22.5}"#, "22.5", json!({})), "the only number, when no field is named");
        assert!(!matches(r#"{"a": 1, "b": 2}"#, "1", json!({})), "ambiguous without a field");
    }
}
