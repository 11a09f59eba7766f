//! Character classes with the meaning Python's `re` and `str` give them, which the KARMA processors
//! rely on: `\s` (`str.isspace`), `\w` (letters, numbers, `_`), `\d` (decimal digits, any script) and
//! jiwer's punctuation (every character whose general category starts with `P`).
//!
//! Non-ASCII characters are classified with the `regex` crate's Unicode tables. The patterns are
//! constants checked by the tests; should one fail to compile anyway, its class is empty (no panic).

use std::sync::LazyLock;

use regex::Regex;

static PUNCTUATION: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A\p{P}\z").ok());
static WORD: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A[\p{L}\p{N}_]\z").ok());
static DECIMAL: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A\p{Nd}\z").ok());

fn in_class(class: &LazyLock<Option<Regex>>, c: char) -> bool {
    let mut buf = [0u8; 4];
    class.as_ref().is_some_and(|re| re.is_match(c.encode_utf8(&mut buf)))
}

/// Python's `str.isspace` (also what `\s` matches): Rust's `White_Space` plus U+001C..U+001F.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `\w` for `str` patterns: general category L* or N*, or `_`.
pub fn is_word(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        in_class(&WORD, c)
    }
}

/// Unicode general category P* (jiwer's `RemovePunctuation` set).
pub fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        // ASCII P* characters; `$+<=>^`|~` are symbols (S*) and are kept, as in jiwer.
        "!\"#%&'()*,-./:;?@[\\]_{}".contains(c)
    } else {
        in_class(&PUNCTUATION, c)
    }
}

/// Python's `\d` for `str` patterns: general category Nd, in any script.
pub fn is_decimal(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        in_class(&DECIMAL, c)
    }
}

/// The value of a decimal digit (as Python's `int()` reads it), `None` for anything else.
///
/// Unicode encodes every set of Nd digits as a contiguous run starting at its zero, so the value is
/// the distance to the start of the run of Nd code points, modulo 10.
pub fn decimal_value(c: char) -> Option<u8> {
    if let Some(d) = c.to_digit(10) {
        return u8::try_from(d).ok();
    }
    if !is_decimal(c) {
        return None;
    }
    let mut code = u32::from(c);
    let mut steps: u32 = 0;
    while let Some(prev) = code.checked_sub(1).and_then(char::from_u32) {
        if !is_decimal(prev) {
            break;
        }
        code -= 1;
        steps += 1;
    }
    u8::try_from(steps % 10).ok()
}

/// Python's `str.strip()`: trims `str.isspace` characters at both ends.
pub fn py_strip(text: &str) -> &str {
    text.trim_matches(is_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_compile() {
        assert!(PUNCTUATION.is_some());
        assert!(WORD.is_some());
        assert!(DECIMAL.is_some());
    }

    #[test]
    fn python_classes() {
        // Expected values from Python 3.11 `unicodedata.category` / `re`.
        for c in ['!', '-', '_', '।', '॥', '“', '¿', '・', '‐'] {
            assert!(is_punctuation(c), "{c:?}");
        }
        for c in ['$', '+', '^', '|', '~', '`', '<', 'a', 'क', '्', '₹', ' '] {
            assert!(!is_punctuation(c), "{c:?}");
        }
        for c in ['a', 'Z', '5', '_', 'क', '५', '²', 'Ⅻ', '中'] {
            assert!(is_word(c), "{c:?}");
        }
        // Devanagari vowel signs, virama and nukta are marks: not word characters in Python.
        for c in ['ा', '्', '़', 'ं', '-', ' '] {
            assert!(!is_word(c), "{c:?}");
        }
        for c in ['\u{1c}', '\u{1f}', '\u{85}', '\u{a0}', '\u{3000}', '\t'] {
            assert!(is_space(c), "{c:?}");
        }
        assert!(!is_space('\u{200b}'));
    }

    #[test]
    fn digit_values() {
        assert_eq!(decimal_value('7'), Some(7));
        assert_eq!(decimal_value('०'), Some(0));
        assert_eq!(decimal_value('९'), Some(9));
        assert_eq!(decimal_value('৩'), Some(3));
        assert_eq!(decimal_value('௮'), Some(8));
        assert_eq!(decimal_value('５'), Some(5));
        // Mathematical digits are five adjacent sets of ten.
        assert_eq!(decimal_value('\u{1D7D8}'), Some(0));
        assert_eq!(decimal_value('\u{1D7FF}'), Some(9));
        assert_eq!(decimal_value('²'), None);
        assert_eq!(decimal_value('a'), None);
    }
}
