//! Answer extraction: from a model's free text to a prediction the metrics compare.

/// Extraction rules. Each has an id and a version recorded with cached extractions, so changing
/// a rule re-scores cached outputs instead of serving stale predictions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extraction {
    /// The option letter after `Final Answer:` (see [`mcq_letter`]).
    McqLetter,
    /// The option with the highest log-likelihood (see [`best_scored_option`]).
    LoglikelihoodArgmax,
    /// The whole response, trimmed: free-text answers are scored as written. An empty response
    /// is unparsed.
    FreeText,
    /// For prompts that ask for the letter alone (see [`lenient_letter`]).
    LenientLetter,
    /// A translation, without a leading `Translation:` label (see [`translation`]).
    Translation,
    /// The short free-text answer after the first `Final Answer:` (see [`final_answer_text`]).
    FinalAnswerText,
    /// A calculator's result: a JSON object or a number (see [`calculator_answer`]).
    CalculatorAnswer,
}

impl Extraction {
    pub fn id(self) -> &'static str {
        match self {
            Extraction::McqLetter => "mcq_letter",
            Extraction::LoglikelihoodArgmax => "loglikelihood_argmax",
            Extraction::FreeText => "free_text",
            Extraction::LenientLetter => "mcq_letter_lenient",
            Extraction::Translation => "translation",
            Extraction::FinalAnswerText => "final_answer_text",
            Extraction::CalculatorAnswer => "calculator_answer",
        }
    }

    /// Bump when the rule's behaviour changes.
    pub fn version(self) -> u32 {
        match self {
            Extraction::McqLetter => 1,
            Extraction::LoglikelihoodArgmax => 1,
            Extraction::FreeText => 1,
            Extraction::LenientLetter => 1,
            Extraction::Translation => 1,
            Extraction::FinalAnswerText => 1,
            Extraction::CalculatorAnswer => 1,
        }
    }

    /// The prediction, or `None` when the response cannot be parsed (a wrong answer, counted
    /// as unparsed).
    pub fn apply(self, response: &str, valid_letters: &[String]) -> Option<String> {
        match self {
            Extraction::McqLetter => mcq_letter(response, valid_letters),
            Extraction::LoglikelihoodArgmax => best_scored_option(response, valid_letters),
            Extraction::FreeText => Some(response.trim()).filter(|text| !text.is_empty()).map(str::to_owned),
            Extraction::LenientLetter => lenient_letter(response, valid_letters),
            Extraction::Translation => translation(response),
            Extraction::FinalAnswerText => final_answer_text(response),
            Extraction::CalculatorAnswer => calculator_answer(response),
        }
    }
}

/// KARMA's calculator rule: the last `{...}` object without nesting that parses as JSON
/// (re-serialised), else the whole response as a number, else the last number standing alone
/// (not part of a word such as `CHA2DS2`), else nothing.
pub fn calculator_answer(response: &str) -> Option<String> {
    let mut end = response.len();
    while let Some(close) = response[..end].rfind('}') {
        if let Some(open) = response[..close].rfind(['{', '}']).filter(|at| response.as_bytes()[*at] == b'{')
        {
            if let Ok(value @ serde_json::Value::Object(_)) = serde_json::from_str(&response[open..=close]) {
                return Some(value.to_string());
            }
        }
        end = close;
    }
    let whole = response.trim();
    if whole.parse::<f64>().is_ok_and(f64::is_finite) {
        return Some(whole.to_owned());
    }
    last_standalone_number(response).map(str::to_owned)
}

/// The last `-?digits(.digits)?` not touching a letter, digit or `_` on either side.
fn last_standalone_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let word = |at: Option<char>| at.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut found = None;
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_digit() {
            index += 1;
            continue;
        }
        let mut start = index;
        if start > 0 && bytes[start - 1] == b'-' {
            start -= 1;
        }
        let mut end = index;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end < bytes.len() && bytes[end] == b'.' {
            end += 1;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if !word(before) && !word(after) {
            found = Some(text[start..end].trim_end_matches('.'));
        }
        index = end.max(index + 1);
    }
    found
}

/// The text after the first `Final Answer:` (any case), trimmed of spaces, markdown emphasis and
/// a trailing full stop; `None` without the label or with nothing after it. KARMA's SLAKE rule,
/// which keeps the rest of the response verbatim (`**yes**.` never equals `yes`).
pub fn final_answer_text(response: &str) -> Option<String> {
    let end = find_case_insensitive(response, "final answer:")?;
    let rest = &response[end..];
    let answer = rest.trim().trim_end_matches('.').trim_matches(['*', '_', '`']).trim_end_matches('.').trim();
    (!answer.is_empty()).then(|| answer.to_owned())
}

/// The letter of a model asked for the letter alone, which may still reason or phrase it: the
/// [`mcq_letter`] rule first, then `Final Answer (X)` anywhere, then `the answer is X` /
/// `answer: X` (a capital or bracketed letter), then a last line of at most five characters with one letter in it (`D?`,
/// `(C)`). KARMA's AfriMed-QA cascade goes on to take a letter ending the response or any
/// lone letter near its end, which reads "...the disease." as `E` and "a" as `A`; those steps
/// are left out.
pub fn lenient_letter(response: &str, valid_letters: &[String]) -> Option<String> {
    static LABELLED: std::sync::LazyLock<[regex::Regex; 2]> = std::sync::LazyLock::new(|| {
        [
            regex::Regex::new(r"(?i-u:final\s*answer)\s*[:\-]?\s*[(\[]?\s*([A-Za-z])\s*(?:[)\].:,!?]|\s|$)")
                .expect("a valid pattern"),
            // A capital or a bracketed letter: "the answer is a matter of debate" names none.
            regex::Regex::new(r"(?i-u:answer\s*(?:is|:))\s*(?:\(([a-zA-Z])\)|([A-Z]))(?:[^A-Za-z]|$)")
                .expect("a valid pattern"),
        ]
    });
    let valid = |letter: &str| {
        let upper = letter.to_uppercase();
        valid_letters.contains(&upper).then_some(upper)
    };
    if let Some(letter) = mcq_letter(response, valid_letters) {
        return Some(letter);
    }
    for pattern in LABELLED.iter() {
        let letter = pattern.captures(response).and_then(|found| found.iter().skip(1).flatten().next());
        if let Some(letter) = letter.and_then(|letter| valid(letter.as_str())) {
            return Some(letter);
        }
    }
    let last_line = response.trim().lines().last()?.trim();
    let letters: String = last_line.chars().filter(char::is_ascii_alphabetic).collect();
    (last_line.chars().count() <= 5 && letters.len() == 1).then(|| valid(&letters)).flatten()
}

/// A translation as the model wrote it, trimmed, without one leading label: `Translation:`,
/// `The translation is:`, `In <Language>:` or `<Language> translation:` (any case). Empty is
/// unparsed.
pub fn translation(response: &str) -> Option<String> {
    static LABEL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^(?:(?i-u:translation)|(?i-u:the translation is)|(?i-u:in)\s+\w+|\w+\s+(?i-u:translation))\s*:",
        )
        .expect("a valid pattern")
    });
    let trimmed = response.trim();
    let text = match LABEL.find(trimmed) {
        Some(label) => trimmed[label.end()..].trim(),
        None => trimmed,
    };
    (!text.is_empty()).then(|| text.to_owned())
}

/// The letter with the highest log-probability in a log-likelihood response (a JSON object
/// `{"A": -1.2, "B": -0.3, ...}`, as the engine records it); the first such letter on ties.
pub fn best_scored_option(response: &str, valid_letters: &[String]) -> Option<String> {
    let scores: serde_json::Map<String, serde_json::Value> = serde_json::from_str(response).ok()?;
    let mut best: Option<(&String, f64)> = None;
    for letter in valid_letters {
        let score = scores.get(letter)?.as_f64()?;
        if best.is_none_or(|(_, top)| score > top) {
            best = Some((letter, score));
        }
    }
    best.map(|(letter, _)| letter.clone())
}

/// KARMA's wrapped-letter rule: the text after the first `Final Answer:` (or the whole
/// response), its first non-empty line without markdown emphasis, one `(..)`/`[..]` unwrapped;
/// accepted if it is a valid letter or starts with one followed by `.`, `)`, `:` or a space.
pub fn mcq_letter(response: &str, valid_letters: &[String]) -> Option<String> {
    const MARKER: &str = "final answer:";
    // Searched case-insensitively on the original text: lowercasing can change byte offsets.
    let after = find_case_insensitive(response, MARKER).map_or(response, |end| &response[end..]);
    let line = after.lines().map(str::trim).find(|line| !line.is_empty())?;
    let mut candidate = line.trim_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '_' | '`' | '~'));
    while let Some(end) =
        find_case_insensitive(candidate, MARKER).filter(|_| candidate.to_lowercase().starts_with(MARKER))
    {
        candidate =
            candidate[end..].trim_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '_' | '`' | '~'));
    }
    if let Some(inner) =
        candidate.strip_prefix('(').and_then(|rest| rest.split_once(')')).map(|(inner, _)| inner)
    {
        candidate = inner.trim();
    } else if let Some(inner) =
        candidate.strip_prefix('[').and_then(|rest| rest.split_once(']')).map(|(inner, _)| inner)
    {
        candidate = inner.trim();
    }
    let upper = candidate.to_uppercase();
    if valid_letters.contains(&upper) {
        return Some(upper);
    }
    let mut chars = upper.chars();
    let first = chars.next()?;
    let separator = chars.next()?;
    let letter = first.to_string();
    (matches!(separator, '.' | ')' | ':') || separator.is_whitespace())
        .then_some(letter)
        .filter(|letter| valid_letters.contains(letter))
}

/// The byte offset just past the first case-insensitive (ASCII) occurrence of `needle`.
fn find_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
        .map(|start| start + needle.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calculator_answers_are_json_objects_or_numbers() {
        assert_eq!(
            calculator_answer("Steps... {\"score\": 4, \"risk\": \"high\"} done").as_deref(),
            Some(r#"{"score":4,"risk":"high"}"#)
        );
        assert_eq!(calculator_answer(" 12.5 ").as_deref(), Some("12.5"));
        assert_eq!(calculator_answer("CHA2DS2-VASc is 3, so the score is 3.").as_deref(), Some("3"));
        assert_eq!(calculator_answer("eGFR = -4.25 mL/min").as_deref(), Some("-4.25"));
        assert_eq!(calculator_answer("no number here {not json}"), None);
    }

    #[test]
    fn final_answer_text_takes_the_labelled_answer() {
        assert_eq!(
            final_answer_text("It is on the left.\nFinal Answer: **Left lung**.").as_deref(),
            Some("Left lung")
        );
        assert_eq!(final_answer_text("final answer: yes").as_deref(), Some("yes"));
        assert_eq!(final_answer_text("Final Answer:   "), None);
        assert_eq!(final_answer_text("yes"), None);
    }

    #[test]
    fn best_scored_option_is_the_argmax_first_on_ties() {
        let letters: Vec<String> = ["A", "B", "C"].iter().map(|l| (*l).to_owned()).collect();
        assert_eq!(best_scored_option(r#"{"A":-2.5,"B":-0.5,"C":-1}"#, &letters).as_deref(), Some("B"));
        assert_eq!(best_scored_option(r#"{"A":-1,"B":-1,"C":-3}"#, &letters).as_deref(), Some("A"));
        assert_eq!(best_scored_option(r#"{"A":-1,"B":-1}"#, &letters), None, "a missing option is unparsed");
        assert_eq!(best_scored_option("Final Answer: (A)", &letters), None);
    }

    fn letters() -> Vec<String> {
        ["A", "B", "C", "D"].iter().map(|letter| (*letter).to_owned()).collect()
    }

    #[test]
    fn common_answer_shapes() {
        let cases = [
            ("Reasoning...\nFinal Answer: (B)", Some("B")),
            ("final answer: c", Some("C")),
            ("**Final Answer:** **(D)**", Some("D")),
            ("Final Answer: [A] because", Some("A")),
            ("Final Answer:\n\nB. Pancreas", Some("B")),
            ("Final Answer: Final Answer: (A)", Some("A")),
            ("B) pancreas", Some("B")),
            ("Final Answer: (E)", None),
            ("The answer is B", None),
            ("", None),
            ("Final Answer: ", None),
            ("Final Answer: Ω (A)", None),
        ];
        for (response, expected) in cases {
            assert_eq!(mcq_letter(response, &letters()).as_deref(), expected, "{response:?}");
        }
    }

    #[test]
    fn lenient_letters() {
        let five: Vec<String> = ["A", "B", "C", "D", "E"].iter().map(|l| (*l).to_owned()).collect();
        let cases = [
            ("C", Some("C")),
            ("b", Some("B")),
            ("I think the final answer (D) fits", Some("D")),
            ("Reasoning first.\nThe answer is E.", Some("E")),
            ("Answer: B", Some("B")),
            ("the answer is (b), since", Some("B")),
            ("Malaria is likely.\n(C)", Some("C")),
            ("D?", Some("D")),
            ("It is a disease.", None),
            ("The final answer is a matter of debate", None),
            ("Answer: F", None),
        ];
        for (response, expected) in cases {
            assert_eq!(lenient_letter(response, &five).as_deref(), expected, "{response:?}");
        }
    }

    #[test]
    fn translations_lose_one_label() {
        assert_eq!(translation("  Translation: नमस्ते ").as_deref(), Some("नमस्ते"));
        assert_eq!(translation("In Hindi: नमस्ते").as_deref(), Some("नमस्ते"));
        assert_eq!(translation("tamil translation: வணக்கம்").as_deref(), Some("வணக்கம்"));
        assert_eq!(translation("Translation: Translation: x").as_deref(), Some("Translation: x"));
        assert_eq!(translation("In the morning: x").as_deref(), Some("In the morning: x"));
        assert_eq!(translation(" Translation: "), None);
    }

    #[test]
    fn first_final_answer_wins() {
        assert_eq!(mcq_letter("Final Answer: (A)\nFinal Answer: (B)", &letters()).as_deref(), Some("A"));
    }
}
