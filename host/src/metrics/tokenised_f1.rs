//! `tokenised_f1`: SQuAD-style token overlap F1, averaged over samples.

use super::{mean_of_first, Metric, Sample};

/// Runs of word characters; Unicode-aware, so combining marks stay inside their word. (Tests
/// check the faster character scan against it.)
#[cfg(test)]
static WORD: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"\w+").expect("valid regex"));

/// KARMA's normalisation: `\n` and `.` deleted (so words across a newline merge), lowercased,
/// tokens are runs of word characters. One deliberate difference: Python's `\w` does not match
/// combining marks, so KARMA splits "स्वास्थ्य" at its virama into pieces; here a Devanagari (or
/// any other) word with marks stays one token.
fn cleaned(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for character in text.chars().filter(|c| *c != '\n' && *c != '.') {
        if character.is_ascii() {
            cleaned.push(character.to_ascii_lowercase());
        } else {
            cleaned.extend(character.to_lowercase());
        }
    }
    cleaned
}

/// Whether `character` is a regex `\w` character: ASCII decided inline, anything else by the
/// regex (the rare path for English text).
fn is_word(character: char) -> bool {
    if character.is_ascii() {
        return character.is_ascii_alphanumeric() || character == '_';
    }
    let mut buffer = [0u8; 4];
    WORD_CHARACTER.is_match(character.encode_utf8(&mut buffer))
}

static WORD_CHARACTER: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^\w$").expect("valid regex"));

/// The tokens of an already cleaned text, sorted (so two texts' common tokens are one merge).
fn sorted_tokens(cleaned: &str) -> Vec<&str> {
    let mut tokens: Vec<&str> =
        cleaned.split(|character: char| !is_word(character)).filter(|token| !token.is_empty()).collect();
    tokens.sort_unstable();
    tokens
}

#[cfg(test)]
fn tokens(text: &str) -> Vec<String> {
    let cleaned = cleaned(text);
    let scanned: Vec<String> = cleaned
        .split(|character: char| !is_word(character))
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .collect();
    let matched: Vec<String> = WORD.find_iter(&cleaned).map(|token| token.as_str().to_owned()).collect();
    assert_eq!(scanned, matched, "the scan splits as regex \\w+ does");
    scanned
}

/// An ASCII text's tokens as `(hash of the lowercased token, start, end)`, sorted by hash:
/// tokens found and compared in place, with no lowercased copy. `None` where this does not
/// apply: non-ASCII text, or a run of `.`/`\n` between two word characters (deleting it joins
/// the words, which [`cleaned`] handles).
fn ascii_tokens(text: &str) -> Option<Vec<(u64, u32, u32)>> {
    let mut tokens = Vec::with_capacity(text.len() / 5 + 1);
    each_ascii_token(text, |hash, start, end| {
        tokens.push((hash, start, end));
        true
    })
    .then_some(())?;
    tokens.sort_unstable_by_key(|token| token.0);
    Some(tokens)
}

/// The number of tokens two texts share (as multisets), from [`ascii_tokens`]; `None` if two
/// different tokens share a hash (then the exact path decides).
fn common_ascii(
    (prediction, predicted): (&str, &[(u64, u32, u32)]),
    (reference, expected): (&str, &[(u64, u32, u32)]),
) -> Option<usize> {
    let (mut common, mut p, mut r) = (0usize, 0, 0);
    while p < predicted.len() && r < expected.len() {
        let ((hash_p, start_p, end_p), (hash_r, start_r, end_r)) = (predicted[p], expected[r]);
        match hash_p.cmp(&hash_r) {
            std::cmp::Ordering::Less => p += 1,
            std::cmp::Ordering::Greater => r += 1,
            std::cmp::Ordering::Equal => {
                let same = prediction.as_bytes()[start_p as usize..end_p as usize]
                    .eq_ignore_ascii_case(&reference.as_bytes()[start_r as usize..end_r as usize]);
                if !same {
                    return None;
                }
                common += 1;
                p += 1;
                r += 1;
            }
        }
    }
    Some(common)
}

/// F1 from the overlap and the two token counts.
fn f1(common: usize, predicted: usize, expected: usize) -> f64 {
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / predicted as f64;
    let recall = common as f64 / expected as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Calls `each(hash, start, end)` for the tokens of an ASCII text, as [`ascii_tokens`] finds
/// them; `false` (having stopped) where that path does not apply.
fn each_ascii_token(text: &str, mut each: impl FnMut(u64, u32, u32) -> bool) -> bool {
    let bytes = text.as_bytes();
    if !text.is_ascii() || bytes.len() > u32::MAX as usize {
        return false;
    }
    let word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let (mut start, mut hash) = (None, 0u64);
    for (index, &byte) in bytes.iter().enumerate() {
        if word(byte) {
            if start.is_none() {
                start = Some(index);
                hash = 0x9e37_79b9_7f4a_7c15;
            }
            hash = (hash.rotate_left(5) ^ u64::from(byte.to_ascii_lowercase()))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
            continue;
        }
        if let Some(begin) = start.take() {
            if byte == b'.' || byte == b'\n' {
                let next = bytes[index..].iter().find(|byte| **byte != b'.' && **byte != b'\n');
                if next.is_some_and(|next| word(*next)) {
                    return false;
                }
            }
            if !each(hash, begin as u32, index as u32) {
                return false;
            }
        }
    }
    match start {
        Some(begin) => each(hash, begin as u32, bytes.len() as u32),
        None => true,
    }
}

/// Slots of the in-place table (one bit each in a `u64`): references of up to half as many
/// tokens use it (most answers; longer ones take the sorted path).
const SLOTS: usize = 64;

/// [`pair_f1`] for two ASCII texts with a short reference: its tokens counted in a small
/// open-addressing table on the stack, the prediction's looked up, nothing sorted or allocated.
/// `None` where it does not apply or two different tokens share a hash.
fn table_pair_f1(prediction: &str, reference: &str) -> Option<f64> {
    let mut keys = [(0u64, 0u32, 0u32); SLOTS];
    let mut counts = [0u8; SLOTS];
    let mut occupied = 0u64;
    let taken = |occupied: u64, slot: usize| occupied & (1u64 << slot) != 0;
    let (mut expected, mut collided) = (0usize, false);
    let same = |a: (u32, u32), b: (u32, u32), a_text: &str, b_text: &str| {
        a_text.as_bytes()[a.0 as usize..a.1 as usize]
            .eq_ignore_ascii_case(&b_text.as_bytes()[b.0 as usize..b.1 as usize])
    };
    let complete = each_ascii_token(reference, |hash, start, end| {
        expected += 1;
        if expected > SLOTS / 2 {
            return false;
        }
        let mut slot = hash as usize & (SLOTS - 1);
        while taken(occupied, slot) && keys[slot].0 != hash {
            slot = (slot + 1) & (SLOTS - 1);
        }
        if taken(occupied, slot) && !same((keys[slot].1, keys[slot].2), (start, end), reference, reference) {
            collided = true;
            return false;
        }
        keys[slot] = (hash, start, end);
        occupied |= 1u64 << slot;
        counts[slot] += 1;
        true
    });
    if !complete || collided {
        return None;
    }
    let (mut predicted, mut common) = (0usize, 0usize);
    let complete = each_ascii_token(prediction, |hash, start, end| {
        predicted += 1;
        let mut slot = hash as usize & (SLOTS - 1);
        while taken(occupied, slot) {
            if keys[slot].0 == hash {
                if !same((keys[slot].1, keys[slot].2), (start, end), reference, prediction) {
                    collided = true;
                    return false;
                }
                if counts[slot] > 0 {
                    counts[slot] -= 1;
                    common += 1;
                }
                return true;
            }
            slot = (slot + 1) & (SLOTS - 1);
        }
        true
    });
    (complete && !collided).then(|| f1(common, predicted, expected))
}

/// Token-multiset F1 of one pair; 0 when nothing overlaps (including two empty texts). ASCII
/// text is compared in place (a table for short references, sorted hashes for long ones);
/// anything else, or a hash shared by two different tokens, on cleaned copies.
pub fn pair_f1(prediction: &str, reference: &str) -> f64 {
    table_pair_f1(prediction, reference)
        .or_else(|| sorted_pair_f1(prediction, reference))
        .unwrap_or_else(|| exact_pair_f1(prediction, reference))
}

/// [`pair_f1`] by [`ascii_tokens`]' sorted hashes.
fn sorted_pair_f1(prediction: &str, reference: &str) -> Option<f64> {
    let (predicted, expected) = (ascii_tokens(prediction)?, ascii_tokens(reference)?);
    let common = common_ascii((prediction, &predicted), (reference, &expected))?;
    Some(f1(common, predicted.len(), expected.len()))
}

/// [`pair_f1`] on cleaned copies of the texts: any script, any `.`/`\n`.
fn exact_pair_f1(prediction: &str, reference: &str) -> f64 {
    let (prediction, reference) = (cleaned(prediction), cleaned(reference));
    let (predicted, expected) = (sorted_tokens(&prediction), sorted_tokens(&reference));
    // The multiset intersection of two sorted lists.
    let (mut common, mut p, mut r) = (0usize, 0, 0);
    while p < predicted.len() && r < expected.len() {
        match predicted[p].cmp(expected[r]) {
            std::cmp::Ordering::Less => p += 1,
            std::cmp::Ordering::Greater => r += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                p += 1;
                r += 1;
            }
        }
    }
    f1(common, predicted.len(), expected.len())
}

pub struct TokenisedF1;

impl Metric for TokenisedF1 {
    fn configure(&self, _args: &super::MetricArgs) -> std::sync::Arc<dyn Metric> {
        std::sync::Arc::new(TokenisedF1)
    }
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
        // With several references, the best match counts (as SQuAD scores its answers).
        let prediction = sample.prediction_text();
        vec![sample.all_references().map(|reference| pair_f1(prediction, reference)).fold(0.0, f64::max)]
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

    #[test]
    fn the_scan_equals_regex_word_runs() {
        for text in ["naïve café_1 x²y", "रोगी का स्वास्थ्य, ठीक?", "a\u{200d}b ǅx  _", "e.g. 3,5 ½"]
        {
            tokens(text);
        }
    }

    #[test]
    fn the_in_place_path_equals_the_cleaned_one() {
        // Every other pair from the first twelve pieces only (the in-place path); the last four
        // send a pair to the cleaned path when they join words or leave ASCII.
        let pieces = [
            "Heart", "heart", " ", " ", " ", ". ", "rate", "_x", "2", ", ", "RATE", "x ", "\n", "é", "a.b",
            " e.g.",
        ];
        let mut state = 11u64;
        let mut fast = 0;
        for round in 0..4000 {
            let pool = if round % 2 == 0 { &pieces[..12] } else { &pieces[..] };
            let mut texts = [String::new(), String::new()];
            for text in &mut texts {
                for _ in 0..8 {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    text.push_str(pool[(state >> 33) as usize % pool.len()]);
                }
            }
            fast += usize::from(ascii_tokens(&texts[0]).is_some() && ascii_tokens(&texts[1]).is_some());
            let exact = exact_pair_f1(&texts[0], &texts[1]);
            assert_eq!(pair_f1(&texts[0], &texts[1]), exact, "{texts:?}");
            if let Some(sorted) = sorted_pair_f1(&texts[0], &texts[1]) {
                assert_eq!(sorted, exact, "sorted: {texts:?}");
            }
        }
        assert!(fast >= 2000, "the in-place path ran on {fast} pairs");
        // A reference too long for the table takes the sorted path.
        let long: String = (0..100).map(|index| format!("w{} ", index % 7)).collect();
        assert_eq!(table_pair_f1("w1 w2", &long), None);
        assert_eq!(pair_f1("w1 w2", &long), exact_pair_f1("w1 w2", &long));
    }

    #[test]
    fn devanagari_words_stay_whole() {
        // "स्वास्थ्य" (health) has viramas, which Python's `\w` does not match: KARMA splits it.
        assert_eq!(tokens("रोगी का स्वास्थ्य"), ["रोगी", "का", "स्वास्थ्य"]);
        assert_eq!(pair_f1("स्वास्थ्य", "स्वा"), 0.0, "no partial-word match");
    }

    #[test]
    fn the_best_of_several_references_counts() {
        let references = ["the heart".to_owned(), "cardiac muscle".to_owned()];
        let sample = Sample {
            prediction: Some("cardiac muscle"),
            reference: "the heart",
            references: &references,
            other_args: &serde_json::Value::Null,
        };
        assert_eq!(TokenisedF1.sample_stats(&sample), [1.0]);
    }
}
