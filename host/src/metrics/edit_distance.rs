//! `wer` and `cer`: corpus word and character error rates, Σ(S+D+I) / Σ reference length.

use super::{Metric, Sample};

/// Levenshtein distance between two token sequences.
pub fn levenshtein<T: PartialEq>(source: &[T], target: &[T]) -> usize {
    let mut previous: Vec<usize> = (0..=target.len()).collect();
    let mut current = vec![0; target.len() + 1];
    for (i, source_item) in source.iter().enumerate() {
        current[0] = i + 1;
        for (j, target_item) in target.iter().enumerate() {
            let substitution = previous[j] + usize::from(source_item != target_item);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[target.len()]
}

fn ratio(stats: &[&[f64]]) -> Option<f64> {
    let errors: f64 = stats.iter().map(|stat| stat[0]).sum();
    let length: f64 = stats.iter().map(|stat| stat[1]).sum();
    (length > 0.0).then(|| errors / length)
}

/// jiwer's default: whitespace-collapsed, trimmed, split into words.
pub struct Wer;

impl Metric for Wer {
    fn configure(&self, _args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(Wer)
    }
    fn name(&self) -> &'static str {
        "wer"
    }
    fn description(&self) -> &'static str {
        "corpus word error rate: word edits over reference words (lower is better)"
    }
    fn is_proportion(&self) -> bool {
        false
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        let reference: Vec<&str> = sample.reference.split_whitespace().collect();
        let hypothesis: Vec<&str> = sample.prediction_text().split_whitespace().collect();
        vec![levenshtein(&reference, &hypothesis) as f64, reference.len() as f64]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        ratio(stats)
    }
}

/// jiwer's default: trimmed, characters including inner spaces.
pub struct Cer;

impl Metric for Cer {
    fn configure(&self, _args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(Cer)
    }
    fn name(&self) -> &'static str {
        "cer"
    }
    fn description(&self) -> &'static str {
        "corpus character error rate: character edits over reference characters (lower is better)"
    }
    fn is_proportion(&self) -> bool {
        false
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        let reference: Vec<char> = sample.reference.trim().chars().collect();
        let hypothesis: Vec<char> = sample.prediction_text().trim().chars().collect();
        vec![levenshtein(&reference, &hypothesis) as f64, reference.len() as f64]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        ratio(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(metric: &dyn Metric, pairs: &[(&str, &str)]) -> Option<f64> {
        let stats: Vec<Vec<f64>> = pairs
            .iter()
            .map(|(prediction, reference)| {
                metric.sample_stats(&Sample::single(Some(prediction), reference, &serde_json::Value::Null))
            })
            .collect();
        metric.aggregate(&stats.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }

    #[test]
    fn wer_is_corpus_level() {
        // 1 substitution in 3 words + 1 deletion in 2 words = 2 / 5.
        assert_eq!(corpus(&Wer, &[("the cat sit", "the cat sat"), ("hello", "hello world")]), Some(0.4));
        assert_eq!(corpus(&Wer, &[("anything", "")]), None, "zero reference words: undefined");
        assert_eq!(corpus(&Wer, &[("", "two words")]), Some(1.0));
    }

    #[test]
    fn cer_counts_unicode_characters() {
        // "naïve" vs "naive": one substitution over 5 characters.
        assert_eq!(corpus(&Cer, &[("naive", "naïve")]), Some(0.2));
        // Insertions can push the rate above 1.
        assert_eq!(corpus(&Cer, &[("abc", "a")]), Some(2.0));
    }
}
