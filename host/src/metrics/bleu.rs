//! `bleu`: corpus BLEU as HF `evaluate`'s bleu (13a tokenisation, max order 4, `smooth=True`),
//! which is what KARMA reports.

use super::{Metric, Sample};

/// ASCII punctuation and symbols that 13a surrounds with spaces (all but `'`, `,`, `-`, `.`):
/// the regex class `[\{-~\[-` -&\(-\+:-@/]`.
fn spaced_symbol(character: char) -> bool {
    matches!(character, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// sacrebleu's `13a` tokenizer (mteval-v13a), as used by HF evaluate: its four regex
/// substitutions written as scans (each exactly a leftmost, non-overlapping `replace_all`).
pub fn tokenize_13a(text: &str) -> Vec<String> {
    let mut line = text.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    let mut spaced: Vec<char> = Vec::with_capacity(line.len() + 16);
    spaced.push(' ');
    for character in line.chars() {
        if spaced_symbol(character) {
            spaced.extend([' ', character, ' ']);
        } else {
            spaced.push(character);
        }
    }
    spaced.push(' ');
    let period_or_comma = |character: char| character == '.' || character == ',';
    // `([^0-9])([\.,])` -> "$1 $2 ".
    let spaced = scan_pairs(
        &spaced,
        |a, b| !a.is_ascii_digit() && period_or_comma(b),
        |a, b, out| out.extend([a, ' ', b, ' ']),
    );
    // `([\.,])([^0-9])` -> " $1 $2".
    let spaced = scan_pairs(
        &spaced,
        |a, b| period_or_comma(a) && !b.is_ascii_digit(),
        |a, b, out| out.extend([' ', a, ' ', b]),
    );
    // `([0-9])(-)` -> "$1 $2 ".
    let spaced =
        scan_pairs(&spaced, |a, b| a.is_ascii_digit() && b == '-', |a, b, out| out.extend([a, ' ', b, ' ']));
    let text: String = spaced.into_iter().collect();
    text.split_whitespace().map(str::to_owned).collect()
}

/// The hashes of [`tokenize_13a`]'s tokens. ASCII text (nearly all English) takes a byte-wise
/// copy of the same four rules that allocates no string per token.
fn token_hashes_13a(text: &str) -> Vec<u64> {
    if !text.is_ascii() || text.contains('&') || text.contains("<skipped>") || text.contains('\n') {
        return token_hashes(&tokenize_13a(text));
    }
    let bytes = text.as_bytes();
    let mut spaced: Vec<u8> = Vec::with_capacity(bytes.len() * 2 + 2);
    spaced.push(b' ');
    for &byte in bytes {
        if spaced_symbol(char::from(byte)) {
            spaced.extend([b' ', byte, b' ']);
        } else {
            spaced.push(byte);
        }
    }
    spaced.push(b' ');
    let period_or_comma = |byte: u8| byte == b'.' || byte == b',';
    let spaced = scan_byte_pairs(
        &spaced,
        |a, b| !a.is_ascii_digit() && period_or_comma(b),
        |a, b, out| out.extend([a, b' ', b, b' ']),
    );
    let spaced = scan_byte_pairs(
        &spaced,
        |a, b| period_or_comma(a) && !b.is_ascii_digit(),
        |a, b, out| out.extend([b' ', a, b' ', b]),
    );
    let spaced = scan_byte_pairs(
        &spaced,
        |a, b| a.is_ascii_digit() && b == b'-',
        |a, b, out| out.extend([a, b' ', b, b' ']),
    );
    spaced
        .split(|byte| byte.is_ascii_whitespace())
        .filter(|token| !token.is_empty())
        .map(|token| token.iter().fold(0x9e37_79b9_7f4a_7c15, |hash, byte| mix(hash, u64::from(*byte))))
        .collect()
}

/// [`scan_pairs`] on bytes.
fn scan_byte_pairs(
    bytes: &[u8],
    matches: impl Fn(u8, u8) -> bool,
    replace: impl Fn(u8, u8, &mut Vec<u8>),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut index = 0;
    while index < bytes.len() {
        if index + 1 < bytes.len() && matches(bytes[index], bytes[index + 1]) {
            replace(bytes[index], bytes[index + 1], &mut out);
            index += 2;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    out
}

/// Replaces each leftmost, non-overlapping pair of characters that `matches` with `replace`'s
/// output.
fn scan_pairs(
    characters: &[char],
    matches: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char, &mut Vec<char>),
) -> Vec<char> {
    let mut out = Vec::with_capacity(characters.len() + 16);
    let mut index = 0;
    while index < characters.len() {
        if index + 1 < characters.len() && matches(characters[index], characters[index + 1]) {
            replace(characters[index], characters[index + 1], &mut out);
            index += 2;
        } else {
            out.push(characters[index]);
            index += 1;
        }
    }
    out
}

/// One mixing step of a 64-bit hash: n-grams are counted by hash, not by slices of strings.
fn mix(hash: u64, value: u64) -> u64 {
    (hash.rotate_left(5) ^ value).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// Sorted `(n-gram hash, count)` pairs of one order.
fn ngram_counts(tokens: &[u64], order: usize) -> Vec<(u64, usize)> {
    let mut keys: Vec<u64> = tokens
        .windows(order)
        .map(|window| window.iter().fold(order as u64, |hash, token| mix(hash, *token)))
        .collect();
    keys.sort_unstable();
    let mut counts: Vec<(u64, usize)> = Vec::with_capacity(keys.len());
    for key in keys {
        match counts.last_mut() {
            Some((last, count)) if *last == key => *count += 1,
            _ => counts.push((key, 1)),
        }
    }
    counts
}

fn token_hashes(tokens: &[String]) -> Vec<u64> {
    tokens
        .iter()
        .map(|token| token.bytes().fold(0x9e37_79b9_7f4a_7c15, |hash, byte| mix(hash, u64::from(byte))))
        .collect()
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
        let hypothesis = token_hashes_13a(sample.prediction_text());
        let references: Vec<Vec<u64>> = sample.all_references().map(token_hashes_13a).collect();
        let max_order = self.max_order;
        let mut stats = vec![0.0; 2 * max_order + 2];
        for order in 1..=max_order {
            // The largest count of each n-gram in any reference, sorted by hash.
            let mut merged: Vec<(u64, usize)> =
                references.iter().flat_map(|reference| ngram_counts(reference, order)).collect();
            merged.sort_unstable();
            merged.dedup_by(|later, earlier| {
                let same = later.0 == earlier.0;
                if same {
                    earlier.1 = earlier.1.max(later.1);
                }
                same
            });
            let (mut matches, mut r) = (0usize, 0usize);
            for (key, count) in ngram_counts(&hypothesis, order) {
                while r < merged.len() && merged[r].0 < key {
                    r += 1;
                }
                if r < merged.len() && merged[r].0 == key {
                    matches += count.min(merged[r].1);
                }
            }
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
    use regex::Regex;

    use super::*;

    /// The 13a rules as sacrebleu writes them, regexes and all: the scans must equal them.
    fn tokenize_13a_regex(text: &str) -> Vec<String> {
        let rules = [
            (Regex::new(r"([\{-~\[-` -&\(-\+:-@/])").unwrap(), " $1 "),
            (Regex::new(r"([^0-9])([\.,])").unwrap(), "$1 $2 "),
            (Regex::new(r"([\.,])([^0-9])").unwrap(), " $1 $2"),
            (Regex::new(r"([0-9])(-)").unwrap(), "$1 $2 "),
        ];
        let mut line = text.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
        if line.contains('&') {
            line =
                line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
        }
        let mut line = format!(" {line} ");
        for (pattern, replacement) in &rules {
            line = pattern.replace_all(&line, *replacement).into_owned();
        }
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn scanned_13a_equals_the_regex_rules() {
        let pieces = [
            "a",
            "1",
            "2.5",
            ".",
            ",",
            "-",
            "'",
            "(",
            ")",
            "&amp;",
            "x-ray",
            "3-4",
            " ",
            "\n",
            "é",
            "रोगी",
            "$",
            "..",
            ",,",
            "e.g.",
            "9,",
            "<skipped>",
        ];
        let mut state = 3u64;
        for _ in 0..5000 {
            let mut text = String::new();
            for _ in 0..12 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
            }
            let tokens = tokenize_13a(&text);
            assert_eq!(tokens, tokenize_13a_regex(&text), "{text:?}");
            assert_eq!(token_hashes_13a(&text), token_hashes(&tokens), "byte path: {text:?}");
        }
    }

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
