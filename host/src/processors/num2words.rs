//! English cardinals written exactly as Python's `num2words(n)` (num2words 0.5.14, `lang="en"`) writes
//! them: `21` → `twenty-one`, `100` → `one hundred`, `1234` → `one thousand, two hundred and
//! thirty-four`, `1000001` → `one million and one`.
//!
//! num2words builds the words by merging (text, value) pairs; worked out for English its rules are:
//! below 100, a tens word joined to a unit word by `-`; a hundreds group is `<digit> hundred`, followed
//! by ` and <rest>` when the rest is non-zero; from a thousand up, `<group> <scale>` followed by
//! ` and <rest>` when the rest is below 100, or `, <rest>` otherwise. Scales are thousand, million,
//! billion, … (short scale, `10^(3k)`), up to centillion (10^303). num2words raises `OverflowError`
//! from 10^306 on; [`cardinal`] returns `None` there, so callers keep the digits.

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] =
    ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
/// Prefixes of 10^6 (million) … 10^30 (nonillion).
const LOW_PREFIXES: [&str; 9] = ["m", "b", "tr", "quadr", "quint", "sext", "sept", "oct", "non"];
/// num2words builds 10^33 … 10^300 as `unit + tens` (decillion, undecillion, …, novemnonagintillion).
const UNIT_PREFIXES: [&str; 10] =
    ["", "un", "duo", "tre", "quattuor", "quin", "sex", "sept", "octo", "novem"];
const TEN_PREFIXES: [&str; 9] = [
    "dec",
    "vigint",
    "trigint",
    "quadragint",
    "quinquagint",
    "sexagint",
    "septuagint",
    "octogint",
    "nonagint",
];

/// Numbers with more significant digits than this (≥ 10^306) are too big for num2words.
pub const MAX_DIGITS: usize = 306;

/// The name of 10^(3k), for 1 ≤ k ≤ 101.
fn scale_name(k: usize) -> String {
    match k {
        1 => "thousand".to_string(),
        2..=10 => format!("{}illion", LOW_PREFIXES[k - 2]),
        11..=100 => {
            let i = k - 11;
            format!("{}{}illion", UNIT_PREFIXES[i % 10], TEN_PREFIXES[i / 10])
        }
        _ => "centillion".to_string(),
    }
}

/// Words for 0 ≤ n < 1000.
fn below_thousand(n: usize, out: &mut String) {
    if n < 20 {
        out.push_str(ONES[n]);
    } else if n < 100 {
        out.push_str(TENS[n / 10]);
        if n % 10 != 0 {
            out.push('-');
            out.push_str(ONES[n % 10]);
        }
    } else {
        out.push_str(ONES[(n / 100) % 10]);
        out.push_str(" hundred");
        if n % 100 != 0 {
            out.push_str(" and ");
            below_thousand(n % 100, out);
        }
    }
}

fn value_of(digits: &[u8]) -> usize {
    digits.iter().fold(0, |acc, &d| acc * 10 + usize::from(d))
}

fn strip_zeros(digits: &[u8]) -> &[u8] {
    let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    &digits[first..]
}

/// `digits` is non-empty, has no leading zero and at most [`MAX_DIGITS`] digits.
fn words(digits: &[u8], out: &mut String) {
    if digits.len() <= 3 {
        below_thousand(value_of(digits), out);
        return;
    }
    let k = (digits.len() - 1) / 3;
    let split = digits.len() - 3 * k;
    below_thousand(value_of(&digits[..split]), out);
    out.push(' ');
    out.push_str(&scale_name(k));
    let rest = strip_zeros(&digits[split..]);
    if rest.is_empty() {
        return;
    }
    out.push_str(if rest.len() <= 2 { " and " } else { ", " });
    words(rest, out);
}

/// The English words for the number whose decimal digits (values 0–9, most significant first) are
/// `digits`, as `num2words(int(digits))` writes it; leading zeros are ignored, as `int()` does. `None`
/// for an empty input, a value that is not a digit, or a number of 10^306 or more.
pub fn cardinal(digits: &[u8]) -> Option<String> {
    if digits.is_empty() || digits.iter().any(|&d| d > 9) {
        return None;
    }
    let significant = strip_zeros(digits);
    if significant.is_empty() {
        return Some(ONES[0].to_string());
    }
    if significant.len() > MAX_DIGITS {
        return None;
    }
    let mut out = String::new();
    words(significant, &mut out);
    Some(out)
}

/// [`cardinal`] for a string of ASCII digits.
pub fn cardinal_str(number: &str) -> Option<String> {
    let digits: Option<Vec<u8>> =
        number.chars().map(|c| c.to_digit(10).and_then(|d| u8::try_from(d).ok())).collect();
    cardinal(&digits?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n2w(n: &str) -> String {
        cardinal_str(n).unwrap_or_default()
    }

    #[test]
    fn matches_python_num2words() {
        // Expected values produced by Python `num2words.num2words(int(n))`, num2words 0.5.14.
        let cases = [
            ("0", "zero"),
            ("7", "seven"),
            ("15", "fifteen"),
            ("21", "twenty-one"),
            ("40", "forty"),
            ("99", "ninety-nine"),
            ("100", "one hundred"),
            ("101", "one hundred and one"),
            ("110", "one hundred and ten"),
            ("999", "nine hundred and ninety-nine"),
            ("1000", "one thousand"),
            ("1001", "one thousand and one"),
            ("1010", "one thousand and ten"),
            ("1100", "one thousand, one hundred"),
            ("1234", "one thousand, two hundred and thirty-four"),
            ("2025", "two thousand and twenty-five"),
            ("10000", "ten thousand"),
            ("123456", "one hundred and twenty-three thousand, four hundred and fifty-six"),
            ("1000000", "one million"),
            ("1000001", "one million and one"),
            ("1002000", "one million, two thousand"),
            ("1000000234", "one billion, two hundred and thirty-four"),
            ("1000000000000000", "one quadrillion"),
            (
                "999999999999999",
                "nine hundred and ninety-nine trillion, nine hundred and ninety-nine billion, nine \
                 hundred and ninety-nine million, nine hundred and ninety-nine thousand, nine hundred \
                 and ninety-nine",
            ),
            ("007", "seven"),
            ("000", "zero"),
        ];
        for (n, want) in cases {
            assert_eq!(n2w(n), want, "{n}");
        }
    }

    #[test]
    fn high_scales_match_python() {
        // Python: num2words(10**k) for these exponents.
        let cases = [
            (18, "one quintillion"),
            (30, "one nonillion"),
            (33, "one decillion"),
            (36, "one undecillion"),
            (60, "one novemdecillion"),
            (63, "one vigintillion"),
            (300, "one novemnonagintillion"),
            (303, "one centillion"),
        ];
        for (exp, want) in cases {
            let n = format!("1{}", "0".repeat(exp));
            assert_eq!(n2w(&n), want, "10^{exp}");
        }
        // 10^306 - 1 is the largest value num2words accepts.
        let max = "9".repeat(306);
        assert!(n2w(&max).starts_with("nine hundred and ninety-nine centillion, nine hundred"));
    }

    #[test]
    fn too_big_or_invalid_is_none() {
        assert_eq!(cardinal_str(&format!("1{}", "0".repeat(306))), None);
        assert_eq!(cardinal_str(&"9".repeat(100_000)), None);
        assert_eq!(cardinal_str(""), None);
        assert_eq!(cardinal_str("12a"), None);
        // Leading zeros do not count towards the limit, as with `int()`.
        assert_eq!(cardinal_str(&format!("{}5", "0".repeat(400))).as_deref(), Some("five"));
    }
}
