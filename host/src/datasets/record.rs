//! Rows in the datasets' own schemas (as published on the hub) mapped to MCQ records.

use std::borrow::Cow;

use super::row::RowValue;

/// The row schemas the registry knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// openlifescienceai pubmedqa / medqa / mmlu_*: `{"id", "data": {"Question", "Options",
    /// "Correct Option", "Correct Answer", "Context"}}`.
    OpenLifeScience,
    /// medmcqa: `{"id", "question", "opa".."opd", "cop": 0-3, "subject_name", ...}`.
    MedMcqa,
    /// GBaker/MedQA-USMLE-4-options: `{"question", "options": {..}, "answer_idx", "answer"}`.
    UsmleOptions,
    /// TsinghuaC3I/MedXpertQA Text: `{"id", "question", "options": {"A".."J"}, "label"}`.
    MedXpert,
    /// ekacare/mmlu-medical-mcqs-evaluation-dataset: `{"centerpiece", "options": [..],
    /// "correct_options": [..]}`; the first correct option is a letter, a 0-based index or the
    /// option's text.
    EkaMmlu,
    /// ekacare/indian_drug_mcqa: `{"question", "option_a".."option_e" (absent options null),
    /// "correct_answer": letter}`.
    IndianDrug,
    /// ekacare/Eka_NFI_MCQA: `{"question", "options": JSON text of {letter: text} (empty for a
    /// true/false statement, whose options are `A. True` and `B. False`), "answer": a letter, or
    /// `true`/`false`}`.
    EkaNfi,
    /// An ad-hoc local file: `{"question", "options" (object or list), "answer", "id"?,
    /// "context"?, "system_prompt"?}`.
    LocalMcq,
}

/// One multiple-choice question, normalised; its text borrows from the row.
#[derive(Clone, Debug, PartialEq)]
pub struct McqRecord<'a> {
    /// The dataset's own id (or the row number when it has none).
    pub source_id: Cow<'a, str>,
    pub question: Cow<'a, str>,
    pub context: Option<Cow<'a, str>>,
    /// `(letter, text)` in display order.
    pub options: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The correct letter.
    pub answer: Cow<'a, str>,
    /// Subgroup for per-group breakdowns (medmcqa's `subject_name`).
    pub group: Option<Cow<'a, str>>,
    pub system_prompt: Option<Cow<'a, str>>,
}

/// What is wrong with a row: the field and the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub field: String,
    pub problem: String,
}

pub(crate) fn error(field: &str, problem: impl Into<String>) -> RowError {
    RowError { field: field.to_owned(), problem: problem.into() }
}

pub(crate) fn text<'a>(value: &'a RowValue<'_>) -> Option<Cow<'a, str>> {
    match value {
        RowValue::Text(text) => Some(Cow::Borrowed(text)),
        RowValue::Number(number) => Some(Cow::Owned(number.to_string())),
        RowValue::Bool(flag) => Some(Cow::Owned(flag.to_string())),
        _ => None,
    }
}

pub(crate) fn required_text<'a>(row: &'a RowValue<'_>, field: &str) -> Result<Cow<'a, str>, RowError> {
    match row.get(field) {
        None | Some(RowValue::Null) => Err(error(field, "missing")),
        Some(value) => text(value).ok_or_else(|| error(field, format!("expected text, found {value}"))),
    }
}

pub(crate) fn optional_text<'a>(row: &'a RowValue<'_>, field: &str) -> Option<Cow<'a, str>> {
    row.get(field).and_then(text).filter(|value| !value.is_empty())
}

pub(crate) fn id_of<'a>(row: &'a RowValue<'_>, field: &str, row_number: u64) -> Cow<'a, str> {
    optional_text(row, field).unwrap_or_else(|| Cow::Owned(row_number.to_string()))
}

/// `text` upper-cased, still borrowed when that changes nothing (the usual `A`, `B`).
fn upper(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(text) if text.bytes().all(|byte| byte.is_ascii() && !byte.is_ascii_lowercase()) => {
            Cow::Borrowed(text)
        }
        text => Cow::Owned(text.to_uppercase()),
    }
}

/// Option letters for a list: `A`, `B`, ... (at most 26).
const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Options from an object (keys are letters, in order) or a list (lettered A, B, ...).
#[allow(clippy::type_complexity)]
pub(crate) fn options<'a>(
    value: Option<&'a RowValue<'_>>,
    field: &str,
) -> Result<Vec<(Cow<'a, str>, Cow<'a, str>)>, RowError> {
    match value {
        Some(RowValue::Object(entries)) if !entries.is_empty() => entries
            .iter()
            .map(|(letter, option)| {
                text(option)
                    .map(|option| (upper(Cow::Borrowed(letter.trim())), option))
                    .ok_or_else(|| error(&format!("{field}.{letter}"), "expected text"))
            })
            .collect(),
        Some(RowValue::List(list)) if !list.is_empty() => {
            if list.len() > LETTERS.len() {
                return Err(error(field, "more than 26 options"));
            }
            list.iter()
                .enumerate()
                .map(|(index, option)| {
                    text(option)
                        .map(|option| (Cow::Borrowed(&LETTERS[index..index + 1]), option))
                        .ok_or_else(|| error(field, "expected text options"))
                })
                .collect()
        }
        Some(RowValue::Text(encoded)) => {
            // CSV cells hold the options as JSON text.
            let parsed: serde_json::Value =
                serde_json::from_str(encoded).map_err(|_| error(field, "expected an object or a list"))?;
            let parsed = RowValue::from_json(parsed);
            let options = options(Some(&parsed), field)?;
            Ok(options
                .into_iter()
                .map(|(letter, text)| (Cow::Owned(letter.into_owned()), Cow::Owned(text.into_owned())))
                .collect())
        }
        None | Some(RowValue::Null) => Err(error(field, "missing")),
        Some(_) => Err(error(field, "expected a non-empty object or list")),
    }
}

/// The options of a true/false statement.
fn true_false<'a>() -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    vec![(Cow::Borrowed("A"), Cow::Borrowed("True")), (Cow::Borrowed("B"), Cow::Borrowed("False"))]
}

pub(crate) fn check_answer<'a>(
    answer: Cow<'a, str>,
    options: &[(Cow<'_, str>, Cow<'_, str>)],
    field: &str,
) -> Result<Cow<'a, str>, RowError> {
    fn unwrap(text: &str) -> &str {
        text.trim().trim_matches(|c| c == '(' || c == ')')
    }
    let answer = upper(match answer {
        Cow::Borrowed(text) => Cow::Borrowed(unwrap(text)),
        Cow::Owned(text) => Cow::Owned(unwrap(&text).to_owned()),
    });
    if options.iter().any(|(letter, _)| *letter == answer) {
        Ok(answer)
    } else {
        let letters: Vec<&str> = options.iter().map(|(letter, _)| letter.as_ref()).collect();
        Err(error(field, format!("`{answer}` is not one of the options {}", letters.join(", "))))
    }
}

/// A row with `id`, `question` and an `options` object, whose answer letter is in
/// `answer_field` and subgroup, if any, in `group_field`.
fn flat_options_record<'a>(
    row: &'a RowValue<'_>,
    row_number: u64,
    answer_field: &str,
    group_field: Option<&str>,
) -> Result<McqRecord<'a>, RowError> {
    let options = options(row.get("options"), "options")?;
    let answer = check_answer(required_text(row, answer_field)?, &options, answer_field)?;
    Ok(McqRecord {
        source_id: id_of(row, "id", row_number),
        question: required_text(row, "question")?,
        context: None,
        options,
        answer,
        group: group_field.and_then(|field| optional_text(row, field)),
        system_prompt: None,
    })
}

impl Schema {
    /// Maps one row; `row_number` is its 0-based position in the source.
    pub fn record<'a>(self, row: &'a RowValue<'_>, row_number: u64) -> Result<McqRecord<'a>, RowError> {
        if !row.is_object() {
            return Err(error("<row>", "expected a JSON object"));
        }
        match self {
            Schema::OpenLifeScience => {
                let data = row
                    .get("data")
                    .filter(|data| data.is_object())
                    .ok_or_else(|| error("data", "missing object"))?;
                let options = options(data.get("Options"), "data.Options")?;
                let answer = check_answer(
                    required_text(data, "Correct Option")
                        .map_err(|e| error(&format!("data.{}", e.field), e.problem))?,
                    &options,
                    "data.Correct Option",
                )?;
                let context = match data.get("Context") {
                    Some(RowValue::List(parts)) => {
                        let parts: Vec<Cow<'_, str>> = parts.iter().filter_map(text).collect();
                        Some(Cow::<str>::Owned(parts.join("\n"))).filter(|joined| !joined.is_empty())
                    }
                    Some(value) => text(value).filter(|joined| !joined.is_empty()),
                    None => None,
                };
                Ok(McqRecord {
                    source_id: id_of(row, "id", row_number),
                    question: required_text(data, "Question")
                        .map_err(|e| error("data.Question", e.problem))?,
                    context,
                    options,
                    answer,
                    group: None,
                    system_prompt: None,
                })
            }
            Schema::MedMcqa => {
                let options = ["opa", "opb", "opc", "opd"]
                    .iter()
                    .zip(["A", "B", "C", "D"])
                    .map(|(field, letter)| {
                        required_text(row, field).map(|option| (Cow::Borrowed(letter), option))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let cop = row
                    .get("cop")
                    .and_then(RowValue::as_i64)
                    .ok_or_else(|| error("cop", "expected an integer 0-3"))?;
                let answer = ["A", "B", "C", "D"]
                    .get(usize::try_from(cop).map_err(|_| error("cop", format!("{cop} is not in 0-3")))?)
                    .ok_or_else(|| error("cop", format!("{cop} is not in 0-3")))?;
                Ok(McqRecord {
                    source_id: id_of(row, "id", row_number),
                    question: required_text(row, "question")?,
                    context: None,
                    options,
                    answer: Cow::Borrowed(answer),
                    group: optional_text(row, "subject_name"),
                    system_prompt: None,
                })
            }
            Schema::UsmleOptions => flat_options_record(row, row_number, "answer_idx", None),
            Schema::MedXpert => flat_options_record(row, row_number, "label", Some("body_system")),
            Schema::EkaMmlu => {
                let options = options(row.get("options"), "options")?;
                let first = match row.get("correct_options") {
                    Some(RowValue::List(correct)) => correct.first(),
                    other => other,
                };
                let first = first
                    .filter(|value| !matches!(value, RowValue::Null))
                    .ok_or_else(|| error("correct_options", "missing"))?;
                let letter = match first {
                    RowValue::Number(number) => number
                        .as_u64()
                        .and_then(|index| options.get(index as usize))
                        .map(|(letter, _)| letter.clone())
                        .ok_or_else(|| {
                            error("correct_options", format!("{number} is not an option index"))
                        })?,
                    value => {
                        let value = text(value).ok_or_else(|| error("correct_options", "expected text"))?;
                        // The option's own text names it as well as its letter does.
                        match options.iter().find(|(_, option)| option.trim() == value.trim()) {
                            Some((letter, _)) => letter.clone(),
                            None => value,
                        }
                    }
                };
                let answer = check_answer(letter, &options, "correct_options")?;
                Ok(McqRecord {
                    source_id: id_of(row, "id", row_number),
                    question: required_text(row, "centerpiece")?,
                    context: None,
                    options,
                    answer,
                    group: None,
                    system_prompt: None,
                })
            }
            Schema::IndianDrug => {
                let options: Vec<_> = ["option_a", "option_b", "option_c", "option_d", "option_e"]
                    .iter()
                    .zip(["A", "B", "C", "D", "E"])
                    .filter_map(|(field, letter)| {
                        optional_text(row, field)
                            .filter(|text| !text.trim().is_empty() && text != "nan")
                            .map(|option| (Cow::Borrowed(letter), option))
                    })
                    .collect();
                if options.is_empty() {
                    return Err(error("option_a", "no options (option_a..option_e are all empty)"));
                }
                let answer = check_answer(required_text(row, "correct_answer")?, &options, "correct_answer")?;
                Ok(McqRecord {
                    source_id: id_of(row, "id", row_number),
                    question: required_text(row, "question")?,
                    context: None,
                    options,
                    answer,
                    group: None,
                    system_prompt: None,
                })
            }
            Schema::EkaNfi => {
                let options = match row.get("options") {
                    None | Some(RowValue::Null) => true_false(),
                    Some(RowValue::Text(text)) if text.trim().is_empty() => true_false(),
                    value => options(value, "options")?,
                };
                let answer = required_text(row, "answer")?;
                let answer = match answer.trim().to_ascii_lowercase().as_str() {
                    "true" => Cow::Borrowed("A"),
                    "false" => Cow::Borrowed("B"),
                    _ => answer,
                };
                let answer = check_answer(answer, &options, "answer")?;
                Ok(McqRecord {
                    source_id: id_of(row, "id", row_number),
                    question: required_text(row, "question")?,
                    context: None,
                    options,
                    answer,
                    group: None,
                    system_prompt: None,
                })
            }
            Schema::LocalMcq => {
                let options = options(row.get("options"), "options")?;
                let answer = check_answer(required_text(row, "answer")?, &options, "answer")?;
                Ok(McqRecord {
                    source_id: id_of(row, "id", row_number),
                    question: required_text(row, "question")?,
                    context: optional_text(row, "context"),
                    options,
                    answer,
                    group: optional_text(row, "group"),
                    system_prompt: optional_text(row, "system_prompt"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(value: serde_json::Value) -> RowValue<'static> {
        RowValue::from_json(value)
    }

    #[test]
    fn openlifescience_rows_map_with_context() {
        let row = row(
            json!({"id": "q1", "data": {"Question": "Q?", "Options": {"A": "yes", "B": "no", "C": "maybe"},
            "Correct Option": "B", "Correct Answer": "no", "Context": ["one", "two"]}}),
        );
        let record = Schema::OpenLifeScience.record(&row, 0).unwrap();
        assert_eq!(record.answer, "B");
        assert_eq!(record.context.as_deref(), Some("one\ntwo"));
        assert_eq!(record.options[2], (Cow::Borrowed("C"), Cow::Borrowed("maybe")));
    }

    #[test]
    fn medmcqa_cop_maps_to_letters_and_groups_by_subject() {
        let good = row(
            json!({"id": "m", "question": "Q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 3, "subject_name": "Anatomy"}),
        );
        let record = Schema::MedMcqa.record(&good, 5).unwrap();
        assert_eq!((record.answer.as_ref(), record.group.as_deref()), ("D", Some("Anatomy")));
        let bad = row(json!({"question": "Q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 4}));
        assert_eq!(Schema::MedMcqa.record(&bad, 0).unwrap_err(), error("cop", "4 is not in 0-3"));
    }

    #[test]
    fn answers_must_be_an_option() {
        let unknown = row(json!({"question": "Q", "options": ["x", "y"], "answer": "C"}));
        let problem = Schema::LocalMcq.record(&unknown, 0).unwrap_err();
        assert_eq!(problem, error("answer", "`C` is not one of the options A, B"));
        let missing = row(json!({"options": {"A": "x"}, "answer_idx": "A"}));
        assert_eq!(Schema::UsmleOptions.record(&missing, 0).unwrap_err(), error("question", "missing"));
        let number = row(json!({"question": ["not", "text"], "options": {"A": "x"}, "answer_idx": "A"}));
        assert_eq!(
            Schema::UsmleOptions.record(&number, 0).unwrap_err(),
            error("question", r#"expected text, found ["not","text"]"#)
        );
    }

    #[test]
    fn letters_and_answers_are_trimmed_and_upper_cased() {
        let spaced =
            row(json!({"question": "Q", "options": {" a ": "x", "b": "y"}, "answer": " (b) ", "id": 7}));
        let record = Schema::LocalMcq.record(&spaced, 0).unwrap();
        let letters: Vec<&str> = record.options.iter().map(|(letter, _)| letter.as_ref()).collect();
        assert_eq!((letters, record.answer.as_ref(), record.source_id.as_ref()), (vec!["A", "B"], "B", "7"));
    }

    #[test]
    fn indian_drug_rows_drop_absent_options_and_keep_letters() {
        let drug = row(json!({"question": "Q", "option_a": "x", "option_b": null, "option_c": "z",
            "option_d": "", "option_e": "w", "correct_answer": "E"}));
        let record = Schema::IndianDrug.record(&drug, 0).unwrap();
        let letters: Vec<&str> = record.options.iter().map(|(letter, _)| letter.as_ref()).collect();
        assert_eq!((letters, record.answer.as_ref()), (vec!["A", "C", "E"], "E"));
        let absent = row(json!({"question": "Q", "option_a": "x", "option_b": null, "correct_answer": "B"}));
        assert_eq!(
            Schema::IndianDrug.record(&absent, 0).unwrap_err(),
            error("correct_answer", "`B` is not one of the options A")
        );
    }

    #[test]
    fn nfi_statements_are_true_or_false() {
        let statement =
            row(json!({"question": "Paracetamol is an NSAID.", "options": "", "answer": "false"}));
        let record = Schema::EkaNfi.record(&statement, 0).unwrap();
        assert_eq!(record.options, true_false());
        assert_eq!(record.answer, "B");
        let choice =
            row(json!({"question": "Q", "options": r#"{"A": "x", "B": "y", "C": "z"}"#, "answer": "C"}));
        let record = Schema::EkaNfi.record(&choice, 0).unwrap();
        assert_eq!((record.options.len(), record.answer.as_ref()), (3, "C"));
    }
}
