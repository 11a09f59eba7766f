//! Medical calculators (ekacare/medical_calculator_eval): a clinical scenario whose answer is a
//! number (a score, a dose, a rate) or a JSON object holding it, scored within the row's
//! tolerance.

use std::collections::BTreeMap;

use super::{BuildContext, BuildState, Reference, ScoringKey, TaskFamily, TaskItem, TaskType};
use crate::datasets::{
    extract::Extraction,
    item::OwnedItem,
    record::{error, id_of, optional_text, text, RowError},
    row::RowValue,
};

/// Rows `{question_text, confinement_instruction?, answer, tolerance?, primary_field?}`.
#[derive(Clone, Copy, Debug)]
pub struct Calculator;

const DEFAULT_INSTRUCTION: &str =
    "Work through the calculation, then give the result as a number on the last line of your reply.";

impl TaskFamily for Calculator {
    fn task_type(&self) -> TaskType {
        TaskType::Calculator
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        _state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let question = optional_text(row, "question_text")
            .or_else(|| optional_text(row, "question"))
            .ok_or_else(|| error("question_text", "missing"))?;
        let answer = ["answer", "expected_output"]
            .iter()
            .find_map(|field| row.get(field).filter(|value| !matches!(value, RowValue::Null)))
            .ok_or_else(|| error("answer", "missing"))?;
        // A JSON answer (an object) is kept as JSON text; numbers and text as written.
        let answer = match answer {
            RowValue::Object(_) => answer.to_string(),
            other => text(other).map(|text| text.trim().to_owned()).ok_or_else(|| {
                error("answer", format!("expected a number, text or a JSON object, found {other}"))
            })?,
        };
        let instruction = optional_text(row, "confinement_instruction");
        let input = match context.template_override {
            Some(template) => template.replace("<QUESTION>", &question),
            None => format!("{question}\n{}", instruction.as_deref().unwrap_or(DEFAULT_INSTRUCTION)),
        };
        let mut other_args: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        for name in ["tolerance", "primary_field"] {
            if let Some(value) = row.get(name).filter(|value| !matches!(value, RowValue::Null)) {
                other_args.insert(name, serde_json::to_value(value).unwrap_or_default());
            }
        }
        let group = optional_text(row, "calculator_name")
            .or_else(|| optional_text(row, "calculator"))
            .map(|name| name.into_owned());
        let item = OwnedItem {
            id: index,
            input: Some(input),
            expected_output: Some(answer.clone()),
            other_args: serde_json::to_string(&other_args).unwrap_or_else(|_| "{}".to_owned()),
            ..OwnedItem::default()
        };
        let key = ScoringKey {
            source_id: id_of(row, "id", index).into_owned(),
            reference: Reference::Texts(vec![answer]),
            group,
        };
        Ok(TaskItem { item, key })
    }

    fn extraction(&self) -> Extraction {
        Extraction::CalculatorAnswer
    }

    fn local_columns(&self) -> &'static str {
        "question_text, answer (number or JSON object), tolerance, primary_field (the JSON field that holds \
         the number); optional confinement_instruction, calculator_name"
    }

    fn recognises(&self, _row: &RowValue<'_>) -> bool {
        false
    }
}
