//! AfriMed-QA v2 (`intronhealth/afrimedqa_v2`): one table of pan-African medical questions whose
//! `question_type` and `split` columns say which set a row is in. The expert MCQs are scored
//! by letter with breakdowns by country and by whether a question mentions gender or age; the
//! consumer queries are open questions.

use std::borrow::Cow;

use super::{
    mcq::choice_item, BuildContext, BuildState, Reference, ScoringKey, TaskFamily, TaskItem, TaskType,
};
use crate::datasets::{
    extract::Extraction,
    item::OwnedItem,
    prompt::Template,
    record::{error, id_of, optional_text, options, required_text, McqRecord, RowError},
    row::RowValue,
};

/// The row fields copied into `other_args`, for stratified metrics and the samples file.
const ATTRIBUTES: &[&str] = &["country", "specialty", "tier", "mentions_gender", "mentions_age"];

/// The expert multiple-choice questions of the internal split (`internal_split`, default
/// `test`), optionally of one `specialty`.
#[derive(Clone, Copy, Debug)]
pub struct AfriMedQaMcq;

/// The consumer health queries of the internal split. They have no reference answers: the
/// reference is the question itself, as in KARMA, so text metrics measure how much of the
/// question an answer takes up, not its quality (a judge model grades quality).
#[derive(Clone, Copy, Debug)]
pub struct AfriMedQaConsumer;

fn in_split(row: &RowValue<'_>, context: &BuildContext<'_>) -> bool {
    let wanted = context.args.get("internal_split").map_or("test", String::as_str);
    optional_text(row, "split").is_some_and(|split| split.trim() == wanted)
}

/// `question_type` lower-cased with spaces as underscores (`Consumer Queries` → `consumer_queries`).
fn question_type(row: &RowValue<'_>) -> String {
    optional_text(row, "question_type")
        .map(|kind| kind.trim().to_lowercase().replace(' ', "_"))
        .unwrap_or_default()
}

/// The cleaned question when there is one.
fn question<'a>(row: &'a RowValue<'_>) -> Result<Cow<'a, str>, RowError> {
    match optional_text(row, "question_clean") {
        Some(clean) if !clean.trim().is_empty() => Ok(clean),
        _ => required_text(row, "question"),
    }
}

fn attributes(row: &RowValue<'_>) -> Vec<(&'static str, serde_json::Value)> {
    ATTRIBUTES
        .iter()
        .filter_map(|field| {
            let value = row.get(field).filter(|value| !matches!(value, RowValue::Null))?;
            Some((*field, serde_json::to_value(value).ok()?))
        })
        .collect()
}

impl TaskFamily for AfriMedQaMcq {
    fn task_type(&self) -> TaskType {
        TaskType::Mcqa
    }

    fn admits(&self, row: &RowValue<'_>, context: &BuildContext<'_>) -> bool {
        let specialty = context.args.get("specialty");
        question_type(row) == "mcq"
            && in_split(row, context)
            && optional_text(row, "tier").is_some_and(|tier| tier.trim().eq_ignore_ascii_case("expert"))
            && specialty
                .is_none_or(|wanted| optional_text(row, "specialty").is_some_and(|s| s.trim() == wanted))
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let record = mcq_record(row, index)?;
        Ok(choice_item(index, &record, Template::LetterOnly, context, state, &attributes(row)))
    }

    fn extraction(&self) -> Extraction {
        Extraction::LenientLetter
    }

    fn supports_loglikelihood(&self) -> bool {
        true
    }

    fn local_columns(&self) -> &'static str {
        "AfriMed-QA's own columns (question_type, split, tier, question, answer_options, correct_answer, ...)"
    }

    fn recognises(&self, _row: &RowValue<'_>) -> bool {
        false
    }
}

/// The options, `answer_options` being a JSON object `{"option1": text, ...}` (as text on the
/// hub), in option-number order without `n/a` entries, lettered A, B, ... The answer,
/// `correct_answer`, names an option key (`option3`) or gives the option's text.
fn mcq_record<'a>(row: &'a RowValue<'_>, index: u64) -> Result<McqRecord<'a>, RowError> {
    let mut keyed = options(row.get("answer_options"), "answer_options")?;
    // `option10` after `option9`: by the number in the key, then by the key.
    let number = |key: &str| key.trim_start_matches(|c: char| !c.is_ascii_digit()).parse::<u64>().ok();
    keyed.sort_by(|(a, _), (b, _)| number(a).cmp(&number(b)).then_with(|| a.cmp(b)));
    let answer = required_text(row, "correct_answer")?;
    let answer = answer.trim();
    let mut chosen = None;
    let mut kept = Vec::with_capacity(keyed.len());
    for (key, text) in keyed {
        let listed = !text.trim().is_empty() && !text.trim().eq_ignore_ascii_case("n/a");
        if key.eq_ignore_ascii_case(answer) {
            if !listed {
                return Err(error("correct_answer", format!("`{answer}` names an option that is `n/a`")));
            }
            chosen = Some(kept.len());
        }
        if listed {
            kept.push(text);
        }
    }
    if kept.len() > 26 {
        return Err(error("answer_options", "more than 26 options"));
    }
    let chosen =
        chosen.or_else(|| kept.iter().position(|text| text.trim().eq_ignore_ascii_case(answer))).ok_or_else(
            || error("correct_answer", format!("`{answer}` is neither an option key nor an option's text")),
        )?;
    const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let options: Vec<(Cow<'_, str>, Cow<'_, str>)> = kept
        .into_iter()
        .enumerate()
        .map(|(position, text)| (Cow::Borrowed(&LETTERS[position..position + 1]), text))
        .collect();
    Ok(McqRecord {
        source_id: id_of(row, "sample_id", index),
        question: question(row)?,
        context: None,
        answer: Cow::Borrowed(&LETTERS[chosen..chosen + 1]),
        options,
        group: optional_text(row, "specialty"),
        system_prompt: None,
    })
}

impl TaskFamily for AfriMedQaConsumer {
    fn task_type(&self) -> TaskType {
        TaskType::OpenEndedQa
    }

    fn admits(&self, row: &RowValue<'_>, context: &BuildContext<'_>) -> bool {
        question_type(row) == "consumer_queries" && in_split(row, context)
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        _state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let question = question(row)?;
        let scenario = optional_text(row, "prompt").filter(|text| !text.trim().is_empty());
        let input = match context.template_override {
            Some(template) => template
                .replace("<QUESTION>", &question)
                .replace("<CONTEXT>", scenario.as_deref().unwrap_or("No additional context provided.")),
            None => format!(
                "You are a medical assistant answering a health question from a member of the public \
                 in Africa.\n\nClinical context: {}\n\nQuestion: {question}\n\nGive a helpful, accurate \
                 and medically sound answer that a general audience can follow.",
                scenario.as_deref().unwrap_or("none given")
            ),
        };
        let group = optional_text(row, "specialty").map(Cow::into_owned);
        let other_args: std::collections::BTreeMap<&str, serde_json::Value> =
            attributes(row).into_iter().collect();
        let item = OwnedItem {
            id: index,
            input: Some(input),
            expected_output: Some(question.to_string()),
            other_args: serde_json::to_string(&other_args).unwrap_or_else(|_| "{}".to_owned()),
            ..OwnedItem::default()
        };
        let key = ScoringKey {
            source_id: id_of(row, "sample_id", index).into_owned(),
            reference: Reference::Texts(vec![question.into_owned()]),
            group,
        };
        Ok(TaskItem { item, key })
    }

    fn extraction(&self) -> Extraction {
        Extraction::FreeText
    }

    fn local_columns(&self) -> &'static str {
        "AfriMed-QA's own columns (question_type, split, question, prompt, ...)"
    }

    fn recognises(&self, _row: &RowValue<'_>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::datasets::task::Scoring;

    fn row(value: serde_json::Value) -> RowValue<'static> {
        RowValue::from_json(value)
    }

    #[test]
    fn options_are_numbered_without_na_and_answers_follow_them() {
        let question = row(json!({"sample_id": "s1", "question": "Q", "question_clean": "",
            "answer_options": r#"{"option2": "n/a", "option10": "last", "option1": "first", "option3": "third"}"#,
            "correct_answer": "option10", "specialty": "Cardiology", "country": "NG"}));
        let record = mcq_record(&question, 0).unwrap();
        let texts: Vec<&str> = record.options.iter().map(|(_, text)| text.as_ref()).collect();
        assert_eq!(texts, ["first", "third", "last"]);
        assert_eq!((record.answer.as_ref(), record.source_id.as_ref()), ("C", "s1"));
        let by_text =
            row(json!({"question": "Q", "answer_options": r#"{"option1": "Yes", "option2": "No"}"#,
            "correct_answer": " no "}));
        assert_eq!(mcq_record(&by_text, 0).unwrap().answer, "B");
        let na = row(json!({"question": "Q", "answer_options": r#"{"option1": "Yes", "option2": "n/a"}"#,
            "correct_answer": "option2"}));
        assert_eq!(mcq_record(&na, 0).unwrap_err().field, "correct_answer");
    }

    #[test]
    fn filters_pick_the_expert_mcqs_of_the_split_and_specialty() {
        let mut args = BTreeMap::from([("internal_split".to_owned(), "test".to_owned())]);
        let base =
            json!({"question_type": "MCQ", "split": "test", "tier": "expert", "specialty": "Cardiology"});
        let admitted = |args: &BTreeMap<String, String>, changes: serde_json::Value| {
            let mut value = base.clone();
            value.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
            let context = BuildContext { template_override: None, scoring: Scoring::Generate, args };
            AfriMedQaMcq.admits(&row(value), &context)
        };
        assert!(admitted(&args, json!({})));
        assert!(!admitted(&args, json!({"split": "train"})));
        assert!(!admitted(&args, json!({"tier": "crowdsourced"})));
        assert!(!admitted(&args, json!({"question_type": "saq"})));
        args.insert("specialty".to_owned(), "Surgery".to_owned());
        assert!(!admitted(&args, json!({})));
        assert!(admitted(&args, json!({"specialty": "Surgery"})));
    }
}
