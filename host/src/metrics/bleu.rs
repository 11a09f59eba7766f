//! `bleu`: corpus BLEU as HF `evaluate`'s bleu (13a tokenisation, max order 4, `smooth=True`),
//! which is what KARMA reports.

use std::{collections::HashMap, sync::OnceLock};

use regex::Regex;

use super::{Metric, Sample};

const MAX_ORDER: usize = 4;

/// sacrebleu's `13a` tokenizer (mteval-v13a), as used by HF evaluate.
pub fn tokenize_13a(text: &str) -> Vec<String> {
    static RULES: OnceLock<[(Regex, &'static str); 4]> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            // Punctuation and symbols become their own tokens.
            (Regex::new(r"([\{-~\[-` -&\(-\+:-@/])").expect("valid regex"), " $1 "),
            // Period and comma unless preceded by a digit.
            (Regex::new(r"([^0-9])([\.,])").expect("valid regex"), "$1 $2 "),
            // Period and comma unless followed by a digit.
            (Regex::new(r"([\.,])([^0-9])").expect("valid regex"), " $1 $2"),
            // Dash when preceded by a digit.
            (Regex::new(r"([0-9])(-)").expect("valid regex"), "$1 $2 "),
        ]
    });
    let mut line = text.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    let mut line = format!(" {line} ");
    for (pattern, replacement) in rules {
        line = pattern.replace_all(&line, *replacement).into_owned();
    }
    line.split_whitespace().map(str::to_owned).collect()
}

fn ngram_counts(tokens: &[String], order: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if tokens.len() >= order {
        for window in tokens.windows(order) {
            *counts.entry(window).or_insert(0) += 1;
        }
    }
    counts
}

pub struct Bleu;

impl Metric for Bleu {
    fn name(&self) -> &'static str {
        "bleu"
    }
    fn description(&self) -> &'static str {
        "corpus BLEU (13a tokenisation, 4-grams, add-one smoothing)"
    }
    fn is_proportion(&self) -> bool {
        false
    }
    /// `[matches_1..4, possible_1..4, hypothesis_length, reference_length]`.
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        let hypothesis = tokenize_13a(sample.prediction_text());
        let reference = tokenize_13a(sample.reference);
        let mut stats = vec![0.0; 2 * MAX_ORDER + 2];
        for order in 1..=MAX_ORDER {
            let reference_counts = ngram_counts(&reference, order);
            let matches: usize = ngram_counts(&hypothesis, order)
                .iter()
                .map(|(ngram, count)| (*count).min(reference_counts.get(ngram).copied().unwrap_or(0)))
                .sum();
            stats[order - 1] = matches as f64;
            stats[MAX_ORDER + order - 1] = hypothesis.len().saturating_sub(order - 1) as f64;
        }
        stats[2 * MAX_ORDER] = hypothesis.len() as f64;
        stats[2 * MAX_ORDER + 1] = reference.len() as f64;
        stats
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        let total = |index: usize| stats.iter().map(|stat| stat[index]).sum::<f64>();
        let reference_length = total(2 * MAX_ORDER + 1);
        if reference_length == 0.0 {
            return None;
        }
        let log_precisions: f64 = (0..MAX_ORDER)
            .map(|order| ((total(order) + 1.0) / (total(MAX_ORDER + order) + 1.0)).ln())
            .sum::<f64>()
            / MAX_ORDER as f64;
        let ratio = total(2 * MAX_ORDER) / reference_length;
        let brevity_penalty = if ratio > 1.0 {
            1.0
        } else if ratio == 0.0 {
            0.0
        } else {
            (1.0 - 1.0 / ratio).exp()
        };
        Some(brevity_penalty * log_precisions.exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(pairs: &[(&str, &str)]) -> Option<f64> {
        let stats: Vec<Vec<f64>> = pairs
            .iter()
            .map(|(prediction, reference)| {
                Bleu.sample_stats(&Sample {
                    prediction: Some(prediction),
                    reference,
                    other_args: &serde_json::Value::Null,
                })
            })
            .collect();
        Bleu.aggregate(&stats.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }

    #[test]
    fn tokenizer_13a_splits_punctuation_but_not_numbers() {
        assert_eq!(
            tokenize_13a("Hello, world. It costs 3.50-4 $!"),
            ["Hello", ",", "world", ".", "It", "costs", "3.50", "-", "4", "$", "!"]
        );
        assert_eq!(tokenize_13a("a&amp;b"), ["a", "&", "b"]);
    }

    #[test]
    fn hand_computed_bleu() {
        // Identical 4-token sentences: every smoothed precision is (m+1)/(m+1) = 1, BP = 1.
        assert!((corpus(&[("the cat sat down", "the cat sat down")]).unwrap() - 1.0).abs() < 1e-12);
        // "the cat" vs "the cat sat down": matches 2,1,0,0 of possible 2,1,0,0;
        // smoothed precisions 1,1,1,1; BP = exp(1 - 4/2) = e^-1.
        assert!((corpus(&[("the cat", "the cat sat down")]).unwrap() - (-1.0f64).exp()).abs() < 1e-12);
        // "a b c d" vs "a b x d": matches 3,1,0,0 of 4,3,2,1 → (4/5·2/4·1/3·1/2)^(1/4).
        let expected = (0.8f64 * 0.5 * (1.0 / 3.0) * 0.5).powf(0.25);
        assert!((corpus(&[("a b c d", "a b x d")]).unwrap() - expected).abs() < 1e-12);
        assert_eq!(corpus(&[("anything", "")]), None);
        assert_eq!(corpus(&[("", "reference")]), Some(0.0));
    }
}
