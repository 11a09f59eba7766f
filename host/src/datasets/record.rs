//! Rows in the datasets' own schemas (as published on the hub) mapped to MCQ records.

use serde_json::Value;

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
    /// An ad-hoc local file: `{"question", "options" (object or list), "answer", "id"?,
    /// "context"?, "system_prompt"?}`.
    LocalMcq,
}

/// One multiple-choice question, normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct McqRecord {
    /// The dataset's own id (or the row number when it has none).
    pub source_id: String,
    pub question: String,
    pub context: Option<String>,
    /// `(letter, text)` in display order.
    pub options: Vec<(String, String)>,
    /// The correct letter.
    pub answer: String,
    /// Subgroup for per-group breakdowns (medmcqa's `subject_name`).
    pub group: Option<String>,
    pub system_prompt: Option<String>,
}

/// What is wrong with a row: the field and the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub field: String,
    pub problem: String,
}

fn error(field: &str, problem: impl Into<String>) -> RowError {
    RowError { field: field.to_owned(), problem: problem.into() }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn required_text(row: &Value, field: &str) -> Result<String, RowError> {
    match row.get(field) {
        None | Some(Value::Null) => Err(error(field, "missing")),
        Some(value) => text(value).ok_or_else(|| error(field, format!("expected text, found {value}"))),
    }
}

fn optional_text(row: &Value, field: &str) -> Option<String> {
    row.get(field).and_then(text).filter(|value| !value.is_empty())
}

fn id_of(row: &Value, field: &str, row_number: u64) -> String {
    optional_text(row, field).unwrap_or_else(|| row_number.to_string())
}

/// Options from an object (keys are letters, in order) or a list (lettered A, B, ...).
fn options(value: Option<&Value>, field: &str) -> Result<Vec<(String, String)>, RowError> {
    match value {
        Some(Value::Object(map)) if !map.is_empty() => map
            .iter()
            .map(|(letter, option)| {
                text(option)
                    .map(|option| (letter.trim().to_uppercase(), option))
                    .ok_or_else(|| error(&format!("{field}.{letter}"), "expected text"))
            })
            .collect(),
        Some(Value::Array(list)) if !list.is_empty() => {
            if list.len() > 26 {
                return Err(error(field, "more than 26 options"));
            }
            list.iter()
                .zip('A'..='Z')
                .map(|(option, letter)| {
                    text(option)
                        .map(|option| (letter.to_string(), option))
                        .ok_or_else(|| error(field, "expected text options"))
                })
                .collect()
        }
        Some(Value::String(encoded)) => {
            // CSV cells hold the options as JSON text.
            let parsed: Value =
                serde_json::from_str(encoded).map_err(|_| error(field, "expected an object or a list"))?;
            options(Some(&parsed), field)
        }
        None | Some(Value::Null) => Err(error(field, "missing")),
        Some(_) => Err(error(field, "expected a non-empty object or list")),
    }
}

fn check_answer(answer: String, options: &[(String, String)], field: &str) -> Result<String, RowError> {
    let answer = answer.trim().trim_matches(|c| c == '(' || c == ')').to_uppercase();
    if options.iter().any(|(letter, _)| *letter == answer) {
        Ok(answer)
    } else {
        let letters: Vec<&str> = options.iter().map(|(letter, _)| letter.as_str()).collect();
        Err(error(field, format!("`{answer}` is not one of the options {}", letters.join(", "))))
    }
}

/// A row with `id`, `question` and an `options` object, whose answer letter is in
/// `answer_field` and subgroup, if any, in `group_field`.
fn flat_options_record(
    row: &Value,
    row_number: u64,
    answer_field: &str,
    group_field: Option<&str>,
) -> Result<McqRecord, RowError> {
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
    pub fn record(self, row: &Value, row_number: u64) -> Result<McqRecord, RowError> {
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
                    Some(Value::Array(parts)) => {
                        let parts: Vec<String> = parts.iter().filter_map(text).collect();
                        Some(parts.join("\n")).filter(|joined| !joined.is_empty())
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
                        required_text(row, field).map(|option| (letter.to_owned(), option))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let cop = row
                    .get("cop")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| error("cop", "expected an integer 0-3"))?;
                let answer = ["A", "B", "C", "D"]
                    .get(usize::try_from(cop).map_err(|_| error("cop", format!("{cop} is not in 0-3")))?)
                    .ok_or_else(|| error("cop", format!("{cop} is not in 0-3")))?;
                Ok(McqRecord {
                    source_id: id_of(row, "id", row_number),
                    question: required_text(row, "question")?,
                    context: None,
                    options,
                    answer: (*answer).to_owned(),
                    group: optional_text(row, "subject_name"),
                    system_prompt: None,
                })
            }
            Schema::UsmleOptions => flat_options_record(row, row_number, "answer_idx", None),
            Schema::MedXpert => flat_options_record(row, row_number, "label", Some("body_system")),
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

    #[test]
    fn openlifescience_rows_map_with_context() {
        let row = json!({"id": "q1", "data": {"Question": "Q?", "Options": {"A": "yes", "B": "no", "C": "maybe"},
            "Correct Option": "B", "Correct Answer": "no", "Context": ["one", "two"]}});
        let record = Schema::OpenLifeScience.record(&row, 0).unwrap();
        assert_eq!(record.answer, "B");
        assert_eq!(record.context.as_deref(), Some("one\ntwo"));
        assert_eq!(record.options[2], ("C".to_owned(), "maybe".to_owned()));
    }

    #[test]
    fn medmcqa_cop_maps_to_letters_and_groups_by_subject() {
        let row = json!({"id": "m", "question": "Q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 3, "subject_name": "Anatomy"});
        let record = Schema::MedMcqa.record(&row, 5).unwrap();
        assert_eq!((record.answer.as_str(), record.group.as_deref()), ("D", Some("Anatomy")));
        let bad = json!({"question": "Q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 4});
        assert_eq!(Schema::MedMcqa.record(&bad, 0).unwrap_err(), error("cop", "4 is not in 0-3"));
    }

    #[test]
    fn answers_must_be_an_option() {
        let row = json!({"question": "Q", "options": ["x", "y"], "answer": "C"});
        let problem = Schema::LocalMcq.record(&row, 0).unwrap_err();
        assert_eq!(problem, error("answer", "`C` is not one of the options A, B"));
        let missing =
            Schema::UsmleOptions.record(&json!({"options": {"A": "x"}, "answer_idx": "A"}), 0).unwrap_err();
        assert_eq!(missing, error("question", "missing"));
    }
}
