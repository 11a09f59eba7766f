//! `chrf`: chrF++ as sacrebleu computes it (character 1- to 6-grams without whitespace, word 1-
//! and 2-grams with punctuation split off the ends of words, beta 2), at corpus level: n-gram
//! statistics are summed over the samples, then averaged precisions and recalls give the
//! F-score. Reported on sacrebleu's 0-100 scale. With several references, each sample uses the
//! reference with the best sentence-level score, as sacrebleu does. BLEU is weak on Indic
//! scripts, where one word carries many characters; chrF is the usual complement.

use super::{Metric, Sample};

const CHAR_ORDER: usize = 6;
const WORD_ORDER: usize = 2;
const ORDERS: usize = CHAR_ORDER + WORD_ORDER;
const BETA: f64 = 2.0;

/// Python's `string.punctuation`.
fn is_punctuation(character: char) -> bool {
    character.is_ascii_punctuation()
}

/// sacrebleu's word split: whitespace, then one punctuation mark off the end (or else the start)
/// of each word longer than one character.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for word in text.split_whitespace() {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() == 1 {
            words.push(word.to_owned());
        } else if is_punctuation(chars[chars.len() - 1]) {
            words.push(chars[..chars.len() - 1].iter().collect());
            words.push(chars[chars.len() - 1].to_string());
        } else if is_punctuation(chars[0]) {
            words.push(chars[0].to_string());
            words.push(chars[1..].iter().collect());
        } else {
            words.push(word.to_owned());
        }
    }
    words
}

/// One mixing step of a 64-bit hash (FxHash's multiplier): n-grams are counted by hash, not by
/// string, so no n-gram is allocated. Two n-grams sharing a hash among a text's few hundred
/// (about 1 in 10^16) would merge their counts.
fn mix(hash: u64, value: u64) -> u64 {
    (hash.rotate_left(5) ^ value).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// Sorted `(n-gram hash, count)` pairs of one order.
type Counts = Vec<(u64, u32)>;

fn counted(mut keys: Vec<u64>) -> Counts {
    keys.sort_unstable();
    let mut counts: Counts = Vec::with_capacity(keys.len());
    for key in keys {
        match counts.last_mut() {
            Some((last, count)) if *last == key => *count += 1,
            _ => counts.push((key, 1)),
        }
    }
    counts
}

/// N-gram counts of every order: characters 1..=6 (whitespace removed), then words 1..=2.
fn ngrams(text: &str) -> Vec<Counts> {
    let characters: Vec<u64> = text
        .chars()
        .filter(|character| !character.is_whitespace())
        .map(|character| character as u64)
        .collect();
    let mut keys: Vec<Vec<u64>> = (0..CHAR_ORDER).map(|_| Vec::with_capacity(characters.len())).collect();
    for start in 0..characters.len() {
        let mut hash = 0u64;
        for (order, character) in characters[start..].iter().take(CHAR_ORDER).enumerate() {
            hash = mix(hash, *character);
            keys[order].push(hash);
        }
    }
    let words: Vec<u64> = words(text)
        .iter()
        .map(|word| word.bytes().fold(0x9e37_79b9_7f4a_7c15, |hash, byte| mix(hash, u64::from(byte))))
        .collect();
    keys.push(words.clone());
    keys.push(words.windows(2).map(|pair| mix(mix(1, pair[0]), pair[1])).collect());
    keys.into_iter().map(counted).collect()
}

/// `[hypothesis n-grams, reference n-grams, matches]` per order, flattened.
fn statistics(hypothesis: &[Counts], reference: &[Counts]) -> Vec<f64> {
    let mut stats = Vec::with_capacity(3 * ORDERS);
    for (hyp, reference) in hypothesis.iter().zip(reference) {
        let total: u32 = hyp.iter().map(|(_, count)| count).sum();
        // Both sorted by hash: one merge finds the shared n-grams.
        let (mut matches, mut h, mut r) = (0u32, 0, 0);
        while h < hyp.len() && r < reference.len() {
            match hyp[h].0.cmp(&reference[r].0) {
                std::cmp::Ordering::Less => h += 1,
                std::cmp::Ordering::Greater => r += 1,
                std::cmp::Ordering::Equal => {
                    matches += hyp[h].1.min(reference[r].1);
                    h += 1;
                    r += 1;
                }
            }
        }
        // sacrebleu counts no hypothesis n-grams of an order the reference has none of.
        stats.push(if reference.is_empty() { 0.0 } else { f64::from(total) });
        stats.push(f64::from(reference.iter().map(|(_, count)| count).sum::<u32>()));
        stats.push(f64::from(matches));
    }
    stats
}

/// The F-score of summed statistics, 0-100.
fn f_score(stats: &[f64]) -> f64 {
    let factor = BETA * BETA;
    let (mut precision, mut recall, mut effective) = (0.0, 0.0, 0usize);
    for order in 0..ORDERS {
        let (hyp, reference, matches) = (stats[3 * order], stats[3 * order + 1], stats[3 * order + 2]);
        if hyp > 0.0 && reference > 0.0 {
            precision += matches / hyp;
            recall += matches / reference;
            effective += 1;
        }
    }
    if effective == 0 {
        return 0.0;
    }
    let (precision, recall) = (precision / effective as f64, recall / effective as f64);
    if precision + recall == 0.0 {
        return 0.0;
    }
    100.0 * (1.0 + factor) * precision * recall / (factor * precision + recall)
}

pub struct Chrf;

impl Metric for Chrf {
    fn configure(&self, _args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(Chrf)
    }
    fn name(&self) -> &'static str {
        "chrf"
    }
    fn description(&self) -> &'static str {
        "corpus chrF++ (character 6-grams and word 2-grams, beta 2) as sacrebleu computes it, 0-100"
    }
    fn is_proportion(&self) -> bool {
        false
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        let hypothesis = ngrams(sample.prediction_text());
        let mut best: Option<(f64, Vec<f64>)> = None;
        for reference in sample.all_references() {
            let stats = statistics(&hypothesis, &ngrams(reference));
            let score = f_score(&stats);
            if best.as_ref().is_none_or(|(top, _)| score > *top) {
                best = Some((score, stats));
            }
        }
        best.map(|(_, stats)| stats).unwrap_or_else(|| vec![0.0; 3 * ORDERS])
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        let mut totals = vec![0.0; 3 * ORDERS];
        for stat in stats {
            for (total, value) in totals.iter_mut().zip(stat.iter()) {
                *total += value;
            }
        }
        // Undefined without any reference n-gram (sacrebleu would say 0).
        (totals.iter().skip(1).step_by(3).sum::<f64>() > 0.0).then(|| f_score(&totals))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Predictions with their references.
    type Pairs<'a> = &'a [(&'a str, &'a [&'a str])];

    fn corpus(pairs: Pairs<'_>) -> Option<f64> {
        let references: Vec<Vec<String>> = pairs
            .iter()
            .map(|(_, references)| references.iter().map(|text| (*text).to_owned()).collect())
            .collect();
        let stats: Vec<Vec<f64>> = pairs
            .iter()
            .zip(&references)
            .map(|((prediction, _), references)| {
                Chrf.sample_stats(&Sample {
                    prediction: Some(prediction),
                    reference: &references[0],
                    references,
                    other_args: &serde_json::Value::Null,
                    graded: None,
                })
            })
            .collect();
        Chrf.aggregate(&stats.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }

    #[test]
    fn words_lose_one_punctuation_mark_at_an_end() {
        assert_eq!(words("a dog ran (fast) x."), ["a", "dog", "ran", "(fast", ")", "x", "."]);
    }

    #[test]
    fn identical_texts_score_100_and_disjoint_ones_0() {
        assert!((corpus(&[("the cat sat", &["the cat sat"])]).unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(corpus(&[("xyz", &["abc"])]), Some(0.0));
        assert_eq!(corpus(&[("xyz", &[""])]), None, "no reference n-grams");
    }

    /// Values printed by sacrebleu 2.6.0, `CHRF(word_order=2).corpus_score(...)`, on the same
    /// texts (`bench/metrics_reference.py` prints them again on a developer machine).
    #[test]
    fn matches_sacrebleu() {
        let cases: [(Pairs<'_>, f64); 3] = [
            (
                &[
                    ("the cat sat on the mat.", &["the cat sat on a mat"]),
                    ("a dog ran (fast)", &["the dog ran fast"]),
                ],
                59.20154519860773,
            ),
            (&[("रोगी को बुखार है।", &["रोगी को तेज़ बुखार है।"])], 61.48880892882133),
            (
                &[("Take two tablets daily.", &["Take 2 tablets every day.", "Take two tablets each day."])],
                62.2869790160407,
            ),
        ];
        for (pairs, expected) in cases {
            let score = corpus(pairs).unwrap();
            assert!((score - expected).abs() < 1e-9, "{pairs:?}: {score} != {expected}");
        }
    }
}
