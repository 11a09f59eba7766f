//! Multiple choice: a question with lettered options and one correct letter, in one of the hub
//! schemas `record.rs` knows. Answered by generation (the letter after `Final Answer:`) or by
//! log-likelihood (each letter scored as a continuation).

use std::{borrow::Cow, sync::Arc};

use serde::Serialize;

use super::{BuildContext, BuildState, Reference, Scoring, ScoringKey, TaskFamily, TaskItem, TaskType};
use crate::datasets::{
    extract::Extraction,
    item::OwnedItem,
    prompt::{self, Template},
    record::{McqRecord, RowError, Schema},
    row::RowValue,
};

/// An MCQ dataset: how its rows map to records, how they are prompted and how answers are read.
#[derive(Clone, Copy, Debug)]
pub struct Mcq {
    pub schema: Schema,
    pub template: Template,
    pub extraction: Extraction,
}

impl Mcq {
    /// A dataset answered with `Final Answer: (X)`.
    pub const fn new(schema: Schema, template: Template) -> Mcq {
        Mcq { schema, template, extraction: Extraction::McqLetter }
    }
}

impl TaskFamily for Mcq {
    fn task_type(&self) -> TaskType {
        TaskType::Mcqa
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let record = self.schema.record(row, index)?;
        Ok(choice_item(index, &record, self.template, context, state, &[]))
    }

    fn extraction(&self) -> Extraction {
        self.extraction
    }

    fn supports_loglikelihood(&self) -> bool {
        true
    }

    fn local_columns(&self) -> &'static str {
        "question, options (object letter -> text, or a list), answer (letter); optional id, context, system_prompt, group"
    }

    fn recognises(&self, row: &RowValue<'_>) -> bool {
        row.get("options").is_some()
    }
}

/// The record's letters, sharing the previous item's list when equal (nearly every item of a
/// dataset): no allocation per item for it.
fn shared_letters(last: &mut Option<Arc<[String]>>, record: &McqRecord<'_>) -> Arc<[String]> {
    let same = last.as_ref().is_some_and(|letters| {
        letters.len() == record.options.len()
            && letters.iter().zip(&record.options).all(|(letter, (other, _))| letter == other)
    });
    match (last.as_ref(), same) {
        (Some(letters), true) => Arc::clone(letters),
        _ => {
            let letters: Arc<[String]> =
                record.options.iter().map(|(letter, _)| letter.to_string()).collect();
            *last = Some(Arc::clone(&letters));
            letters
        }
    }
}

/// A multiple-choice item and its key: the rendered prompt (or, for log-likelihood scoring, the
/// context the options continue), options and `attributes` in `other_args`.
pub(super) fn choice_item(
    id: u64,
    record: &McqRecord<'_>,
    template: Template,
    context: &BuildContext<'_>,
    state: &mut BuildState,
    attributes: &[(&'static str, serde_json::Value)],
) -> TaskItem {
    let item = OwnedItem {
        id,
        input: Some(match context.scoring {
            Scoring::Generate => template.render(record, context.template_override),
            Scoring::Loglikelihood => prompt::loglikelihood_context(record),
        }),
        system_prompt: record.system_prompt.as_deref().map(str::to_owned),
        expected_output: Some(record.answer.to_string()),
        other_args: other_args(record, attributes),
        ..OwnedItem::default()
    };
    let key = ScoringKey {
        source_id: record.source_id.to_string(),
        reference: Reference::Choice {
            letters: shared_letters(&mut state.last_letters, record),
            // Records check that the answer is one of their letters.
            answer: record
                .options
                .iter()
                .position(|(letter, _)| *letter == record.answer)
                .unwrap_or_default(),
        },
        group: record.group.as_deref().map(str::to_owned),
    };
    TaskItem { item, key }
}

/// `other_args` in canonical form (keys sorted at every level), so the cache key can hash it as
/// it is: `{"group"?, "options": {letter: text}, ...attributes}`.
fn other_args(record: &McqRecord<'_>, attributes: &[(&'static str, serde_json::Value)]) -> String {
    let mut options: Vec<&(Cow<'_, str>, Cow<'_, str>)> = record.options.iter().collect();
    options.sort_by(|a, b| a.0.cmp(&b.0));
    if !attributes.is_empty() {
        let mut all: std::collections::BTreeMap<&str, serde_json::Value> =
            attributes.iter().map(|(name, value)| (*name, value.clone())).collect();
        let options: serde_json::Map<String, serde_json::Value> =
            options.iter().map(|(letter, text)| (letter.to_string(), text.to_string().into())).collect();
        all.insert("options", options.into());
        if let Some(group) = &record.group {
            all.insert("group", group.to_string().into());
        }
        return serde_json::to_string(&all).unwrap_or_else(|_| "{}".to_owned());
    }
    // Serialized straight from the record (the common case, every item of every MCQ dataset),
    // without building a JSON value first.
    #[derive(Serialize)]
    struct OtherArgs<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'a str>,
        options: Options<'a>,
    }
    struct Options<'a>(Vec<&'a (Cow<'a, str>, Cow<'a, str>)>);
    impl Serialize for Options<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(letter, text)| (letter, text)))
        }
    }
    serde_json::to_string(&OtherArgs { group: record.group.as_deref(), options: Options(options) })
        .unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn consecutive_items_share_equal_letter_lists() {
        let family = Mcq::new(Schema::LocalMcq, Template::MedicalMcq);
        let args = BTreeMap::new();
        let context = BuildContext { template_override: None, scoring: Scoring::Generate, args: &args };
        let mut state = BuildState::default();
        let four =
            RowValue::from_json(json!({"question": "Q", "options": ["w", "x", "y", "z"], "answer": "D"}));
        let two =
            RowValue::from_json(json!({"question": "Q", "options": ["x", "y"], "answer": "A", "group": "g"}));
        let mut build = |row: &RowValue<'_>, index| family.build(row, index, &context, &mut state).unwrap();
        let (first, second, third) = (build(&four, 0), build(&four, 1), build(&two, 2));
        let letters = |item: &TaskItem| match &item.key.reference {
            Reference::Choice { letters, .. } => Arc::clone(letters),
            Reference::Texts(_) | Reference::Rubric(_) => panic!("an MCQ reference is a choice"),
        };
        assert!(Arc::ptr_eq(&letters(&first), &letters(&second)));
        assert_eq!(*letters(&third), ["A".to_owned(), "B".to_owned()]);
        assert_eq!((second.key.source_id.as_str(), second.key.reference.primary()), ("1", "D"));
        assert_eq!(third.key.group.as_deref(), Some("g"));
        assert_eq!(second.key.reference.correct(Some("d")), Some(true));
    }
}
