//! Open-ended question answering: a question (with an optional context) answered in free text,
//! scored against one or several reference answers by text metrics.

use super::{texts, BuildContext, BuildState, Reference, ScoringKey, TaskFamily, TaskItem, TaskType};
use crate::datasets::{
    extract::Extraction,
    item::OwnedItem,
    record::{id_of, optional_text, required_text, RowError},
    row::RowValue,
};

/// Rows with `question` and `answer` (a text or a list of acceptable texts).
#[derive(Clone, Copy, Debug)]
pub struct OpenQa;

impl TaskFamily for OpenQa {
    fn task_type(&self) -> TaskType {
        TaskType::OpenEndedQa
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        _state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let question = required_text(row, "question")?;
        let references = texts(row, "answer")?;
        let passage = optional_text(row, "context");
        let input = match context.template_override {
            Some(template) => template
                .replace("<QUESTION>", &question)
                .replace("<CONTEXT>", passage.as_deref().unwrap_or_default()),
            None => match &passage {
                Some(passage) => format!("Context: {passage}\n\nQuestion: {question}\n\nAnswer concisely."),
                None => format!("Question: {question}\n\nAnswer concisely."),
            },
        };
        Ok(free_text_item(row, index, input, references))
    }

    fn extraction(&self) -> Extraction {
        Extraction::FreeText
    }

    fn local_columns(&self) -> &'static str {
        "question, answer (text, or a list of acceptable texts); optional id, context, system_prompt, group"
    }

    fn recognises(&self, row: &RowValue<'_>) -> bool {
        row.get("question").is_some() && row.get("answer").is_some() && row.get("options").is_none()
    }
}

/// The item and key of a free-text row: `input` for the model, `references` to score against,
/// and the row's optional `id`, `group` and `system_prompt`.
pub(super) fn free_text_item(
    row: &RowValue<'_>,
    index: u64,
    input: String,
    references: Vec<String>,
) -> TaskItem {
    let group = optional_text(row, "group").map(|group| group.into_owned());
    // `{"group": ...}` or `{}`, canonical (the cache key hashes it as written).
    let other_args = match &group {
        Some(group) => serde_json::json!({ "group": group }).to_string(),
        None => "{}".to_owned(),
    };
    let item = OwnedItem {
        id: index,
        input: Some(input),
        system_prompt: optional_text(row, "system_prompt").map(|text| text.into_owned()),
        expected_output: references.first().cloned(),
        other_args,
        ..OwnedItem::default()
    };
    let key = ScoringKey {
        source_id: id_of(row, "id", index).into_owned(),
        reference: Reference::Texts(references),
        group,
    };
    TaskItem { item, key }
}
