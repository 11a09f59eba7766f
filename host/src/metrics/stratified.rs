//! `stratified_accuracy`, `geographic_accuracy`, `demographic_accuracy`: accuracy overall and
//! per value of some `other_args` fields (country; whether a question mentions gender or age),
//! with the gap between the best and worst group. KARMA's formula: a prediction is right when
//! it equals the reference exactly.

use std::{collections::BTreeMap, sync::Arc};

use super::{mean_of_first, ArgKind, ArgSpec, Metric, MetricArgs, Sample, Score};

/// Accuracy broken down by `fields` of `other_args`.
pub struct Stratified {
    name: &'static str,
    description: &'static str,
    fields: Fields,
    configurable: bool,
}

enum Fields {
    Fixed(&'static [&'static str]),
    Chosen(Vec<String>),
}

impl Stratified {
    pub const STRATIFIED: Stratified = Stratified {
        name: "stratified_accuracy",
        description:
            "exact-match accuracy, broken down by the other_args fields in stratify_by (default country)",
        fields: Fields::Fixed(&["country"]),
        configurable: true,
    };
    pub const GEOGRAPHIC: Stratified = Stratified {
        name: "geographic_accuracy",
        description: "exact-match accuracy, broken down by country",
        fields: Fields::Fixed(&["country"]),
        configurable: false,
    };
    pub const DEMOGRAPHIC: Stratified = Stratified {
        name: "demographic_accuracy",
        description: "exact-match accuracy, broken down by whether the question mentions gender, and age",
        fields: Fields::Fixed(&["mentions_gender", "mentions_age"]),
        configurable: false,
    };
}

const STRATIFY_ARGS: &[ArgSpec] = &[ArgSpec {
    name: "stratify_by",
    kind: ArgKind::Fields,
    default: "country",
    description: "other_args fields to break accuracy down by, joined with `+` (e.g. country+specialty)",
}];

impl Metric for Stratified {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn is_proportion(&self) -> bool {
        true
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        vec![f64::from(u8::from(sample.prediction_text() == sample.reference))]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        mean_of_first(stats)
    }
    fn needs_other_args(&self) -> bool {
        true
    }
    fn strata(&self) -> Vec<String> {
        match &self.fields {
            Fields::Fixed(fields) => fields.iter().map(|field| (*field).to_owned()).collect(),
            Fields::Chosen(fields) => fields.clone(),
        }
    }
    fn args(&self) -> &'static [ArgSpec] {
        if self.configurable {
            STRATIFY_ARGS
        } else {
            &[]
        }
    }
    fn configure(&self, args: &MetricArgs) -> Arc<dyn Metric> {
        let fields = match &self.fields {
            Fields::Fixed(fields) if !self.configurable => Fields::Fixed(fields),
            _ => Fields::Chosen(args.fields("stratify_by").to_vec()),
        };
        Arc::new(Stratified { fields, ..*self })
    }
}

/// The breakdown keys a sample falls under: `field=value` for each of `fields` it has. A
/// `mentions_*` flag reads as `with_*` or `without_*` (KARMA's labels), whether the data
/// stores it as 1.0/0.0, a boolean or text.
pub fn strata_keys(fields: &[String], other_args: &serde_json::Value) -> Vec<String> {
    fields
        .iter()
        .filter_map(|field| {
            let value = other_args.get(field).filter(|value| !value.is_null())?;
            let text = match value {
                serde_json::Value::String(text) => text.trim().to_owned(),
                other => other.to_string(),
            };
            if text.is_empty() {
                return None;
            }
            let label = match field.strip_prefix("mentions_") {
                Some(subject) => {
                    let yes = matches!(text.to_ascii_lowercase().as_str(), "1" | "1.0" | "true" | "yes");
                    format!("{}_{subject}", if yes { "with" } else { "without" })
                }
                None => text,
            };
            Some(format!("{field}={label}"))
        })
        .collect()
}

/// Per field, the gap between its best and worst group's score (fields with at least two
/// scored groups).
pub fn disparity(fields: &[String], breakdown: &BTreeMap<String, Score>) -> BTreeMap<String, f64> {
    fields
        .iter()
        .filter_map(|field| {
            let prefix = format!("{field}=");
            let scores: Vec<f64> = breakdown
                .iter()
                .filter(|(key, _)| key.starts_with(&prefix))
                .filter_map(|(_, score)| score.score)
                .collect();
            let high = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let low = scores.iter().copied().fold(f64::INFINITY, f64::min);
            (scores.len() >= 2).then(|| (field.clone(), high - low))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_label_flags_and_skip_missing_fields() {
        let fields: Vec<String> = ["country", "mentions_gender", "mentions_age"].map(String::from).to_vec();
        let keys =
            strata_keys(&fields, &json!({"country": "NG", "mentions_gender": 1.0, "mentions_age": false}));
        assert_eq!(keys, ["country=NG", "mentions_gender=with_gender", "mentions_age=without_age"]);
        assert_eq!(
            strata_keys(&fields, &json!({"country": null, "mentions_age": "1"})),
            ["mentions_age=with_age"]
        );
    }

    #[test]
    fn disparity_is_best_minus_worst_group() {
        let score = |value| Score {
            score: Some(value),
            stderr: None,
            ci_low: None,
            ci_high: None,
            num_samples: 1,
            interval: "wilson",
        };
        let breakdown = BTreeMap::from([
            ("country=GH".to_owned(), score(0.25)),
            ("country=NG".to_owned(), score(0.75)),
            ("mentions_age=with_age".to_owned(), score(0.5)),
        ]);
        let fields: Vec<String> = ["country", "mentions_age"].map(String::from).to_vec();
        assert_eq!(disparity(&fields, &breakdown), BTreeMap::from([("country".to_owned(), 0.5)]));
    }

    #[test]
    fn stratify_by_is_an_argument_of_stratified_accuracy_only() {
        let given = BTreeMap::from([("stratify_by".to_owned(), "country+specialty".to_owned())]);
        let args = MetricArgs::check("stratified_accuracy", STRATIFY_ARGS, &given).unwrap();
        assert_eq!(Stratified::STRATIFIED.configure(&args).strata(), ["country", "specialty"]);
        assert!(MetricArgs::check(
            "x",
            STRATIFY_ARGS,
            &BTreeMap::from([("stratify_by".to_owned(), "a b".to_owned())])
        )
        .is_err());
        assert_eq!(
            Stratified::DEMOGRAPHIC.configure(&MetricArgs::default()).strata(),
            ["mentions_gender", "mentions_age"]
        );
    }
}
