//! `wer` and `cer`: corpus word and character error rates, Σ(S+D+I) / Σ reference length.

use super::{Metric, Sample};

/// Levenshtein distance between two token sequences, with Myers' bit-parallel algorithm
/// (blocks of 64 source items, one pass over the target): O(|source| / 64 * |target|).
pub fn levenshtein<T: Eq + std::hash::Hash>(source: &[T], target: &[T]) -> usize {
    if source.is_empty() {
        return target.len();
    }
    let blocks = source.len().div_ceil(64);
    // For each distinct item, the bit mask of its positions in `source`, per block.
    let mut positions: std::collections::HashMap<&T, Vec<u64>> = std::collections::HashMap::new();
    for (index, item) in source.iter().enumerate() {
        positions.entry(item).or_insert_with(|| vec![0; blocks])[index / 64] |= 1 << (index % 64);
    }
    let last_bit = 1u64 << ((source.len() - 1) % 64);
    let (mut plus, mut minus) = (vec![u64::MAX; blocks], vec![0u64; blocks]);
    let none = vec![0u64; blocks];
    let mut distance = source.len();
    for item in target {
        let equal = positions.get(item).unwrap_or(&none);
        // The first row grows by one per target item.
        let mut carry: i32 = 1;
        for block in 0..blocks {
            let (pv, mv) = (plus[block], minus[block]);
            let mut eq = equal[block];
            let xv = eq | mv;
            if carry < 0 {
                eq |= 1;
            }
            let xh = ((eq & pv).wrapping_add(pv) ^ pv) | eq;
            let mut ph = mv | !(xh | pv);
            let mut mh = pv & xh;
            let high = if block == blocks - 1 { last_bit } else { 1 << 63 };
            let out = if ph & high != 0 {
                1
            } else if mh & high != 0 {
                -1
            } else {
                0
            };
            ph <<= 1;
            mh <<= 1;
            if carry < 0 {
                mh |= 1;
            } else if carry > 0 {
                ph |= 1;
            }
            plus[block] = mh | !(xv | ph);
            minus[block] = ph & xv;
            carry = out;
        }
        distance = (distance as i64 + i64::from(carry)) as usize;
    }
    distance
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

    /// The textbook dynamic programme, to check the bit-parallel one against.
    fn slow_levenshtein(source: &[u8], target: &[u8]) -> usize {
        let mut previous: Vec<usize> = (0..=target.len()).collect();
        for (i, a) in source.iter().enumerate() {
            let mut current = vec![i + 1; target.len() + 1];
            for (j, b) in target.iter().enumerate() {
                current[j + 1] =
                    (previous[j] + usize::from(a != b)).min(previous[j + 1] + 1).min(current[j] + 1);
            }
            previous = current;
        }
        previous[target.len()]
    }

    #[test]
    fn bit_parallel_distance_equals_the_dynamic_programme() {
        let mut state = 7u64;
        let mut next = |bound: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % bound
        };
        for _ in 0..3000 {
            let (m, n) = (next(200) as usize, next(200) as usize);
            let alphabet = 1 + next(6);
            let source: Vec<u8> = (0..m).map(|_| b'a' + next(alphabet) as u8).collect();
            let target: Vec<u8> = (0..n).map(|_| b'a' + next(alphabet) as u8).collect();
            assert_eq!(levenshtein(&source, &target), slow_levenshtein(&source, &target), "{m}x{n}");
        }
    }

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
