//! `tokenised_f1`: SQuAD-style token overlap F1, averaged over samples.

use std::collections::HashMap;

use super::{mean_of_first, Metric, Sample};

/// KARMA's normalisation: `\n` and `.` deleted (so words across a newline merge), lowercased,
/// tokens are runs of word characters.
fn tokens(text: &str) -> Vec<String> {
    let cleaned: String = text.chars().filter(|c| *c != '\n' && *c != '.').collect::<String>().to_lowercase();
    cleaned
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Token-multiset F1 of one pair; 0 when nothing overlaps (including two empty texts).
pub fn pair_f1(prediction: &str, reference: &str) -> f64 {
    let predicted = tokens(prediction);
    let expected = tokens(reference);
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for token in &expected {
        *counts.entry(token).or_default() += 1;
    }
    let mut common = 0i64;
    for token in &predicted {
        if let Some(count) = counts.get_mut(token.as_str()) {
            if *count > 0 {
                *count -= 1;
                common += 1;
            }
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / predicted.len() as f64;
    let recall = common as f64 / expected.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

pub struct TokenisedF1;

impl Metric for TokenisedF1 {
    fn name(&self) -> &'static str {
        "tokenised_f1"
    }
    fn description(&self) -> &'static str {
        "mean SQuAD-style token overlap F1 between prediction and reference"
    }
    fn is_proportion(&self) -> bool {
        false
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        vec![pair_f1(sample.prediction_text(), sample.reference)]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        mean_of_first(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_f1() {
        // prediction tokens [the, cat, sat], reference [the, cat]: p = 2/3, r = 1, f1 = 0.8.
        assert!((pair_f1("The cat sat.", "the cat") - 0.8).abs() < 1e-12);
        assert_eq!(pair_f1("", ""), 0.0);
        assert_eq!(pair_f1("dog", "cat"), 0.0);
        // Newlines are deleted, merging words: "heart\nrate" becomes "heartrate".
        assert_eq!(pair_f1("heart\nrate", "heart rate"), 0.0);
        assert!((pair_f1("naïve café", "café") - 2.0 / 3.0).abs() < 1e-12);
        // Repeated tokens count once per occurrence in the reference.
        assert!((pair_f1("a a a", "a") - 0.5).abs() < 1e-12);
    }
}
