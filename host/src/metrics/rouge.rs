//! ROUGE as Google's rouge_score computes it with `use_stemmer=True`: `rouge1`, `rouge2`
//! (n-gram overlap), `rougeL` (longest common subsequence) and `rougeLsum` (union LCS over
//! newline-separated sentences), each the F-measure of one pair, averaged over samples. The
//! tokenizer lowercases, keeps runs of `a-z0-9` only (so text in other scripts has no ROUGE
//! tokens, as in rouge_score) and stems words longer than 3 characters with NLTK's Porter
//! stemmer. With several references, the best F-measure counts (rouge_score's `score_multi`).
//!
//! HF `evaluate`'s rouge reports a bootstrap median of these F-measures instead of their mean;
//! KARMA's rouge crashes (a KeyError on its result).

use std::collections::HashMap;

use super::{mean_of_first, porter, Metric, Sample};

/// Which ROUGE variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rouge {
    N(usize),
    L,
    LSum,
}

/// The four names `rouge` stands for in metric lists.
pub const ROUGE_NAMES: [&str; 4] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

fn tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    lower
        .split(|character: char| !(character.is_ascii_lowercase() || character.is_ascii_digit()))
        .filter(|token| !token.is_empty())
        .map(|token| if token.len() > 3 { stem(token) } else { token.to_owned() })
        .collect()
}

/// Stems are remembered per thread (a text's words repeat across a corpus; stemming is most of
/// ROUGE's cost otherwise), up to a bound on memory.
fn stem(token: &str) -> String {
    const REMEMBERED: usize = 200_000;
    thread_local! {
        static STEMS: std::cell::RefCell<HashMap<String, String>> = std::cell::RefCell::new(HashMap::new());
    }
    STEMS.with(|stems| {
        if let Some(stem) = stems.borrow().get(token) {
            return stem.clone();
        }
        let stem = porter::stem(token);
        let mut stems = stems.borrow_mut();
        if stems.len() < REMEMBERED {
            stems.insert(token.to_owned(), stem.clone());
        }
        stem
    })
}

fn f_measure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if tokens.len() >= n {
        for window in tokens.windows(n) {
            *counts.entry(window).or_insert(0) += 1;
        }
    }
    counts
}

fn rouge_n(reference: &[String], prediction: &[String], n: usize) -> f64 {
    let (expected, predicted) = (ngram_counts(reference, n), ngram_counts(prediction, n));
    let overlap: usize =
        expected.iter().map(|(ngram, count)| (*count).min(predicted.get(ngram).copied().unwrap_or(0))).sum();
    let precision = overlap as f64 / predicted.values().sum::<usize>().max(1) as f64;
    let recall = overlap as f64 / expected.values().sum::<usize>().max(1) as f64;
    f_measure(precision, recall)
}

/// The LCS dynamic-programming table of `reference` (rows) against `candidate` (columns).
fn lcs_table(reference: &[String], candidate: &[String]) -> Vec<Vec<usize>> {
    let mut table = vec![vec![0usize; candidate.len() + 1]; reference.len() + 1];
    for i in 1..=reference.len() {
        for j in 1..=candidate.len() {
            table[i][j] = if reference[i - 1] == candidate[j - 1] {
                table[i - 1][j - 1] + 1
            } else {
                table[i - 1][j].max(table[i][j - 1])
            };
        }
    }
    table
}

/// The length of the longest common subsequence, two rows at a time.
fn lcs_length(reference: &[String], candidate: &[String]) -> usize {
    let mut previous = vec![0usize; candidate.len() + 1];
    let mut current = vec![0usize; candidate.len() + 1];
    for item in reference {
        for (j, other) in candidate.iter().enumerate() {
            current[j + 1] = if item == other { previous[j] + 1 } else { previous[j + 1].max(current[j]) };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[candidate.len()]
}

fn rouge_l(reference: &[String], prediction: &[String]) -> f64 {
    if reference.is_empty() || prediction.is_empty() {
        return 0.0;
    }
    let lcs = lcs_length(reference, prediction) as f64;
    f_measure(lcs / prediction.len() as f64, lcs / reference.len() as f64)
}

/// The reference positions of one LCS, found backwards as rouge_score's `_backtrack_norec`
/// does (ties move up a row).
fn lcs_positions(reference: &[String], candidate: &[String]) -> Vec<usize> {
    let table = lcs_table(reference, candidate);
    let (mut i, mut j, mut positions) = (reference.len(), candidate.len(), Vec::new());
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            positions.push(i - 1);
            i -= 1;
            j -= 1;
        } else if table[i][j - 1] > table[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    positions
}

fn sentences(text: &str) -> Vec<Vec<String>> {
    text.split('\n').filter(|sentence| !sentence.is_empty()).map(tokens).collect()
}

fn rouge_lsum(reference: &str, prediction: &str) -> f64 {
    let (references, candidates) = (sentences(reference), sentences(prediction));
    let m: usize = references.iter().map(Vec::len).sum();
    let n: usize = candidates.iter().map(Vec::len).sum();
    if references.is_empty() || candidates.is_empty() || m == 0 || n == 0 {
        return 0.0;
    }
    let mut reference_counts: HashMap<&str, usize> = HashMap::new();
    let mut candidate_counts: HashMap<&str, usize> = HashMap::new();
    for token in references.iter().flatten() {
        *reference_counts.entry(token).or_insert(0) += 1;
    }
    for token in candidates.iter().flatten() {
        *candidate_counts.entry(token).or_insert(0) += 1;
    }
    let mut hits = 0usize;
    for sentence in &references {
        let mut union: Vec<usize> =
            candidates.iter().flat_map(|candidate| lcs_positions(sentence, candidate)).collect();
        union.sort_unstable();
        union.dedup();
        for position in union {
            let token = sentence[position].as_str();
            let (in_candidates, in_references) = (
                candidate_counts.get(token).copied().unwrap_or(0),
                reference_counts.get(token).copied().unwrap_or(0),
            );
            if in_candidates > 0 && in_references > 0 {
                hits += 1;
                *candidate_counts.entry(token).or_insert(0) -= 1;
                *reference_counts.entry(token).or_insert(0) -= 1;
            }
        }
    }
    f_measure(hits as f64 / n as f64, hits as f64 / m as f64)
}

impl Rouge {
    /// The F-measure of one prediction against one reference.
    pub fn pair(self, reference: &str, prediction: &str) -> f64 {
        match self {
            Rouge::N(n) => rouge_n(&tokens(reference), &tokens(prediction), n),
            Rouge::L => rouge_l(&tokens(reference), &tokens(prediction)),
            Rouge::LSum => rouge_lsum(reference, prediction),
        }
    }
}

impl Metric for Rouge {
    fn configure(&self, _args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(*self)
    }
    fn name(&self) -> &'static str {
        match self {
            Rouge::N(1) => "rouge1",
            Rouge::N(_) => "rouge2",
            Rouge::L => "rougeL",
            Rouge::LSum => "rougeLsum",
        }
    }
    fn description(&self) -> &'static str {
        match self {
            Rouge::N(1) => "mean ROUGE-1 F-measure (unigrams, Porter-stemmed), as rouge_score",
            Rouge::N(_) => "mean ROUGE-2 F-measure (bigrams, Porter-stemmed), as rouge_score",
            Rouge::L => "mean ROUGE-L F-measure (longest common subsequence), as rouge_score",
            Rouge::LSum => {
                "mean ROUGE-Lsum F-measure (union LCS over newline-separated sentences), as rouge_score"
            }
        }
    }
    fn is_proportion(&self) -> bool {
        false
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        let prediction = sample.prediction_text();
        vec![sample.all_references().map(|reference| self.pair(reference, prediction)).fold(0.0, f64::max)]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        mean_of_first(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F-measures rouge_score 0.1.2 (`RougeScorer([...], use_stemmer=True).score(target,
    /// prediction)`) gives for these pairs (`bench/metrics_reference.py` prints them again).
    #[test]
    fn matches_rouge_score() {
        let cases: [(&str, &str, [f64; 4]); 3] = [
            (
                "The patient was given medications for hypertension.",
                "Patients are given medication for high blood pressure.",
                [0.5333333333333333, 0.30769230769230765, 0.5333333333333333, 0.5333333333333333],
            ),
            (
                "the cat sat on the mat\nit was happy",
                "a cat sat on a mat\nhappy it was",
                [0.7777777777777778, 0.375, 0.6666666666666666, 0.6666666666666666],
            ),
            // No a-z0-9 tokens: rouge_score scores Devanagari 0 (use chrf for Indic text).
            ("रोगी को बुखार है", "रोगी को बुखार है", [0.0, 0.0, 0.0, 0.0]),
        ];
        for (reference, prediction, expected) in cases {
            for (variant, expected) in
                [Rouge::N(1), Rouge::N(2), Rouge::L, Rouge::LSum].into_iter().zip(expected)
            {
                let score = variant.pair(reference, prediction);
                assert!(
                    (score - expected).abs() < 1e-12,
                    "{}: {reference:?} / {prediction:?}: {score} != {expected}",
                    variant.name()
                );
            }
        }
    }
}
