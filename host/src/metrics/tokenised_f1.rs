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

/// Which ASCII bytes are word characters (regex `\w` on ASCII), as 0 or 1.
static WORD_BYTES: [u8; 256] = {
    let mut word = [0u8; 256];
    let mut byte = 0;
    while byte < 128 {
        let character = byte as u8;
        if character.is_ascii_alphanumeric() || character == b'_' {
            word[byte] = 1;
        }
        byte += 1;
    }
    word
};

/// The longest token [`short_key`] packs.
const SHORT_TOKEN: usize = 16;

/// `KEEP_BYTES[n]` keeps the low `n` bytes of a `u128`.
static KEEP_BYTES: [u128; SHORT_TOKEN + 1] = {
    let mut masks = [u128::MAX; SHORT_TOKEN + 1];
    let mut length = 0;
    while length < SHORT_TOKEN {
        masks[length] = (1u128 << (8 * length)) - 1;
        length += 1;
    }
    masks
};

/// An ASCII token of up to 16 bytes as one number: its bytes with bit 5 set, zero-padded. On
/// word characters that is an exact case fold (letters lowercased, digits unchanged, `_` to
/// 0x7f, which no other word character becomes), so two tokens are equal ignoring ASCII case
/// exactly when their keys are: no hash, no collision to check.
#[inline(always)]
fn short_key(bytes: &[u8], start: usize, end: usize) -> u128 {
    let length = end - start;
    let mask = KEEP_BYTES[length];
    let loaded = match bytes.get(start..start + SHORT_TOKEN) {
        Some(window) => u128::from_le_bytes(window.try_into().expect("16 bytes")),
        // Near the end of the text: copy what there is.
        None => {
            let mut buffer = [0u8; SHORT_TOKEN];
            buffer[..length].copy_from_slice(&bytes[start..end]);
            u128::from_le_bytes(buffer)
        }
    };
    (loaded | u128::from_le_bytes([0x20; SHORT_TOKEN])) & mask
}

/// Calls `each(key)` with the [`short_key`] of each token of an ASCII text; `false` (having
/// stopped) for non-ASCII text, a token over 16 bytes, or a run of `.`/`\n` between two word
/// characters (deleting it joins the words, which [`cleaned`] handles).
///
/// Token boundaries come from a bit mask of word bytes per 64-byte block, walked set bit by set
/// bit: a branch per byte would mispredict at every word's end.
fn each_short_token(text: &str, mut each: impl FnMut(u128) -> bool) -> bool {
    let bytes = text.as_bytes();
    if !text.is_ascii() {
        return false;
    }
    // Whether the byte before the current block is a word byte, and where its token began.
    let (mut inside, mut start) = (false, 0usize);
    for (block, chunk) in bytes.chunks(64).enumerate() {
        let base = block * 64;
        let words = word_mask(chunk);
        // Bit i: byte i starts or ends a token (differs from the byte before it).
        let mut transitions = words ^ (words << 1 | u64::from(inside));
        if chunk.len() < 64 {
            transitions &= (1u64 << chunk.len()) - 1;
        }
        while transitions != 0 {
            let position = base + transitions.trailing_zeros() as usize;
            transitions &= transitions - 1;
            if !inside {
                start = position;
                inside = true;
                continue;
            }
            inside = false;
            if !short_token(bytes, start, position, &mut each) {
                return false;
            }
        }
    }
    !inside || short_token(bytes, start, bytes.len(), &mut each)
}

/// Bit i set where `chunk[i]` (at most 64 ASCII bytes) is a word byte.
fn word_mask(chunk: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut mask = 0u64;
        let lanes = chunk.chunks_exact(16);
        let tail = lanes.remainder();
        for (lane, bytes) in lanes.enumerate() {
            mask |= u64::from(word_mask_16(bytes.try_into().expect("16 bytes"))) << (16 * lane);
        }
        if !tail.is_empty() {
            // Zeros are not word bytes.
            let mut padded = [0u8; 16];
            padded[..tail.len()].copy_from_slice(tail);
            mask |= u64::from(word_mask_16(&padded)) << (chunk.len() / 16 * 16);
        }
        mask
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        chunk
            .iter()
            .enumerate()
            .fold(0u64, |mask, (index, byte)| mask | u64::from(WORD_BYTES[usize::from(*byte)]) << index)
    }
}

/// [`word_mask`] of 16 bytes with SSE2 (part of x86-64 itself, so always present): letters
/// are `(byte | 0x20) - b'a' <= 25`, digits `byte - b'0' <= 9` (unsigned, as min-equals tests).
#[cfg(target_arch = "x86_64")]
fn word_mask_16(bytes: &[u8; 16]) -> u16 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is in the x86-64 baseline; the load reads exactly the 16 bytes of `bytes`.
    unsafe {
        let block = _mm_loadu_si128(bytes.as_ptr().cast());
        let at_most =
            |value: __m128i, limit: i8| _mm_cmpeq_epi8(_mm_min_epu8(value, _mm_set1_epi8(limit)), value);
        let letter =
            at_most(_mm_sub_epi8(_mm_or_si128(block, _mm_set1_epi8(0x20)), _mm_set1_epi8(b'a' as i8)), 25);
        let digit = at_most(_mm_sub_epi8(block, _mm_set1_epi8(b'0' as i8)), 9);
        let underscore = _mm_cmpeq_epi8(block, _mm_set1_epi8(b'_' as i8));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), underscore)) as u16
    }
}

/// One token for [`each_short_token`]: `false` where that path does not apply. (Inlined: as a
/// call per token it was a third of the pair's time.)
#[inline(always)]
fn short_token(bytes: &[u8], start: usize, end: usize, each: &mut impl FnMut(u128) -> bool) -> bool {
    if end - start > SHORT_TOKEN {
        return false;
    }
    if end < bytes.len() && matches!(bytes[end], b'.' | b'\n') {
        let next = bytes[end..].iter().find(|byte| !matches!(byte, b'.' | b'\n'));
        if next.is_some_and(|next| WORD_BYTES[usize::from(*next)] == 1) {
            return false;
        }
    }
    each(short_key(bytes, start, end))
}

/// [`pair_f1`] for two ASCII texts of short tokens with a short reference: its tokens counted
/// in a small open-addressing table on the stack, the prediction's looked up, nothing sorted,
/// hashed for equality or allocated. `None` where it does not apply.
fn table_pair_f1(prediction: &str, reference: &str) -> Option<f64> {
    let mut keys = [0u128; SLOTS];
    let mut counts = [0u8; SLOTS];
    let mut occupied = 0u64;
    let taken = |occupied: u64, slot: usize| occupied & (1u64 << slot) != 0;
    // The top six bits of a multiplicative hash pick the first slot.
    let first_slot =
        |key: u128| ((key as u64 ^ (key >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize;
    let mut expected = 0usize;
    let complete = each_short_token(reference, |key| {
        expected += 1;
        if expected > SLOTS / 2 {
            return false;
        }
        let mut slot = first_slot(key);
        while taken(occupied, slot) && keys[slot] != key {
            slot = (slot + 1) & (SLOTS - 1);
        }
        keys[slot] = key;
        occupied |= 1u64 << slot;
        counts[slot] += 1;
        true
    });
    if !complete {
        return None;
    }
    let (mut predicted, mut common) = (0usize, 0usize);
    let complete = each_short_token(prediction, |key| {
        predicted += 1;
        let mut slot = first_slot(key);
        while taken(occupied, slot) {
            if keys[slot] == key {
                if counts[slot] > 0 {
                    counts[slot] -= 1;
                    common += 1;
                }
                break;
            }
            slot = (slot + 1) & (SLOTS - 1);
        }
        true
    });
    complete.then(|| f1(common, predicted, expected))
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
        // Every other pair from the first sixteen pieces only (the in-place path); the last five
        // send a pair to the cleaned path when they join words or leave ASCII, or to the sorted
        // path with a token too long for a short key.
        let pieces = [
            "Heart",
            "heart",
            " ",
            " ",
            " ",
            " ",
            " ",
            ". ",
            "rate",
            "_x",
            "2",
            ", ",
            "RATE",
            "x ",
            " sixteen_chars_16 ",
            " Sixteen_Chars_16 ",
            "\n",
            "é",
            "a.b",
            " e.g.",
            " seventeen_chars17",
        ];
        let mut state = 11u64;
        let mut fast = 0;
        for round in 0..4000 {
            let pool = if round % 2 == 0 { &pieces[..16] } else { &pieces[..] };
            let mut texts = [String::new(), String::new()];
            for text in &mut texts {
                for _ in 0..8 {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    text.push_str(pool[(state >> 33) as usize % pool.len()]);
                }
            }
            fast += usize::from(table_pair_f1(&texts[0], &texts[1]).is_some());
            let exact = exact_pair_f1(&texts[0], &texts[1]);
            assert_eq!(pair_f1(&texts[0], &texts[1]), exact, "{texts:?}");
            if let Some(sorted) = sorted_pair_f1(&texts[0], &texts[1]) {
                assert_eq!(sorted, exact, "sorted: {texts:?}");
            }
        }
        assert!(fast >= 1500, "the in-place path ran on {fast} pairs");
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
            graded: None,
        };
        assert_eq!(TokenisedF1.sample_stats(&sample), [1.0]);
    }
}
