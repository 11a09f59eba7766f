//! Translation: a source text translated into a target language, scored against one or several
//! reference translations (BLEU, chrF).

use super::{open_qa::free_text_item, texts, BuildContext, BuildState, TaskFamily, TaskItem, TaskType};
use crate::datasets::{
    extract::Extraction,
    record::{optional_text, required_text, RowError},
    row::RowValue,
};

/// Rows with `source` and `target`; the languages come from the row (`source_language`,
/// `target_language`) or the dataset arguments of the same names.
#[derive(Clone, Copy, Debug)]
pub struct Translation;

impl TaskFamily for Translation {
    fn task_type(&self) -> TaskType {
        TaskType::Translation
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        _state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let source = required_text(row, "source")?;
        let references = texts(row, "target")?;
        let language = |field: &str| {
            optional_text(row, field)
                .map(|text| text.into_owned())
                .or_else(|| context.args.get(field).cloned())
        };
        let (from, to) = (language("source_language"), language("target_language"));
        let input = match context.template_override {
            Some(template) => template.replace("<QUESTION>", &source).replace("<CONTEXT>", ""),
            None => {
                let direction = match (&from, &to) {
                    (Some(from), Some(to)) => format!(" from {from} into {to}"),
                    (None, Some(to)) => format!(" into {to}"),
                    (Some(from), None) => format!(" from {from}"),
                    (None, None) => String::new(),
                };
                format!(
                    "Translate the following text{direction}. Reply with the translation only.\n\n{source}"
                )
            }
        };
        Ok(free_text_item(row, index, input, references))
    }

    fn extraction(&self) -> Extraction {
        Extraction::FreeText
    }

    fn local_columns(&self) -> &'static str {
        "source, target (text, or a list of reference translations); optional id, source_language, target_language, system_prompt, group"
    }

    fn recognises(&self, row: &RowValue<'_>) -> bool {
        row.get("source").is_some() && row.get("target").is_some()
    }
}
