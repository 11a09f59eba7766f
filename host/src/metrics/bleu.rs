//! `bleu`: corpus BLEU as HF `evaluate`'s bleu (13a tokenisation, max order 4, `smooth=True`),
//! which is what KARMA reports.

use std::{collections::HashMap, sync::OnceLock};

use regex::Regex;

use super::{Metric, Sample};

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

/// `max_order` n-grams (default 4); `smooth` adds one to every n-gram count (default, as KARMA
/// calls HF evaluate).
pub struct Bleu {
    pub max_order: usize,
    pub smooth: bool,
}

impl Bleu {
    pub const DEFAULT: Bleu = Bleu { max_order: 4, smooth: true };
}

const BLEU_ARGS: &[super::ArgSpec] = &[
    super::ArgSpec {
        name: "max_order",
        kind: super::ArgKind::Whole { low: 1, high: 9 },
        default: "4",
        description: "longest n-gram counted",
    },
    super::ArgSpec {
        name: "smooth",
        kind: super::ArgKind::Bool,
        default: "true",
        description: "add-one smoothing of n-gram precisions (Lin and Och 2004)",
    },
];

impl Metric for Bleu {
    fn args(&self) -> &'static [super::ArgSpec] {
        BLEU_ARGS
    }
    fn configure(&self, args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(Bleu { max_order: args.whole("max_order") as usize, smooth: args.bool("smooth") })
    }
    fn name(&self) -> &'static str {
        "bleu"
    }
    fn description(&self) -> &'static str {
        "corpus BLEU (13a tokenisation, 4-grams, add-one smoothing)"
    }
    fn is_proportion(&self) -> bool {
        false
    }
    /// `[matches_1..4, possible_1..4, hypothesis_length, reference_length]`. With several
    /// references (as HF evaluate's `compute_bleu`): an n-gram's count is clipped by its largest
    /// count in any reference, and the reference length is the shortest reference's.
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        let hypothesis = tokenize_13a(sample.prediction_text());
        let references: Vec<Vec<String>> = sample.all_references().map(tokenize_13a).collect();
        let max_order = self.max_order;
        let mut stats = vec![0.0; 2 * max_order + 2];
        for order in 1..=max_order {
            let mut reference_counts: HashMap<&[String], usize> = HashMap::new();
            for reference in &references {
                for (ngram, count) in ngram_counts(reference, order) {
                    let merged = reference_counts.entry(ngram).or_insert(0);
                    *merged = (*merged).max(count);
                }
            }
            let matches: usize = ngram_counts(&hypothesis, order)
                .iter()
                .map(|(ngram, count)| (*count).min(reference_counts.get(ngram).copied().unwrap_or(0)))
                .sum();
            stats[order - 1] = matches as f64;
            stats[max_order + order - 1] = hypothesis.len().saturating_sub(order - 1) as f64;
        }
        stats[2 * max_order] = hypothesis.len() as f64;
        stats[2 * max_order + 1] = references.iter().map(Vec::len).min().unwrap_or(0) as f64;
        stats
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        let max_order = self.max_order;
        let total = |index: usize| stats.iter().map(|stat| stat[index]).sum::<f64>();
        let reference_length = total(2 * max_order + 1);
        if reference_length == 0.0 {
            return None;
        }
        // As HF evaluate's compute_bleu: without smoothing, one empty precision makes BLEU 0.
        let precisions: Vec<f64> = (0..max_order)
            .map(|order| {
                let (matches, possible) = (total(order), total(max_order + order));
                if self.smooth {
                    (matches + 1.0) / (possible + 1.0)
                } else if possible > 0.0 {
                    matches / possible
                } else {
                    0.0
                }
            })
            .collect();
        if precisions.iter().any(|precision| *precision <= 0.0) {
            return Some(0.0);
        }
        let log_precisions: f64 =
            precisions.iter().map(|precision| precision.ln()).sum::<f64>() / max_order as f64;
        let ratio = total(2 * max_order) / reference_length;
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
                Bleu::DEFAULT.sample_stats(&Sample::single(
                    Some(prediction),
                    reference,
                    &serde_json::Value::Null,
                ))
            })
            .collect();
        Bleu::DEFAULT.aggregate(&stats.iter().map(Vec::as_slice).collect::<Vec<_>>())
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
