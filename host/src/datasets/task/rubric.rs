//! Rubric-graded conversations (HealthBench): the model continues a conversation, and a judge
//! model checks its answer against each of the row's rubric criteria (`grading/`). The model
//! never sees the rubric: it is part of the reference.
//!
//! Row schema (HealthBench's): `prompt` (a list of `{role, content}` turns), `rubrics` (a list
//! of `{criterion, points, tags}`), optional `example_tags` (a list of `theme:...` tags) and
//! `prompt_id`.

use std::sync::Arc;

use super::{BuildContext, BuildState, Reference, ScoringKey, TaskFamily, TaskItem, TaskType};
use crate::datasets::{
    extract::Extraction,
    item::{ConversationTurn, Criterion, OwnedItem},
    record::{error, id_of, text, RowError},
    row::RowValue,
};

/// What an answer to a rubric item is graded against.
#[derive(Clone, Debug, PartialEq)]
pub struct RubricReference {
    pub criteria: Vec<Criterion>,
    /// The example's own tags (HealthBench's themes): each gets the example's score.
    pub example_tags: Vec<String>,
}

/// A conversation to continue, graded by a judge against rubric criteria.
#[derive(Clone, Copy, Debug)]
pub struct RubricConversation;

impl TaskFamily for RubricConversation {
    fn task_type(&self) -> TaskType {
        TaskType::RubricEvaluation
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        _state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let conversation = turns(row)?;
        let criteria = criteria(row)?;
        if !criteria.iter().any(|criterion| criterion.points > 0.0) {
            return Err(error("rubrics", "no criterion has positive points: the answer cannot be scored"));
        }
        let example_tags = match row.get("example_tags") {
            None | Some(RowValue::Null) => Vec::new(),
            Some(value) => strings(value).ok_or_else(|| error("example_tags", "expected a list of texts"))?,
        };
        let item = OwnedItem {
            id: index,
            system_prompt: context
                .args
                .get("system_prompt")
                .filter(|prompt| prompt.as_str() != "none")
                .cloned(),
            conversation,
            other_args: "{}".to_owned(),
            ..OwnedItem::default()
        };
        let key = ScoringKey {
            source_id: id_of(row, "prompt_id", index).into_owned(),
            reference: Reference::Rubric(Arc::new(RubricReference { criteria, example_tags })),
            group: None,
        };
        Ok(TaskItem { item, key })
    }

    fn extraction(&self) -> Extraction {
        Extraction::FreeText
    }

    fn grader(&self) -> Option<super::Grader> {
        Some(super::Grader::Rubric)
    }

    fn local_columns(&self) -> &'static str {
        "prompt ([{role, content}]), rubrics ([{criterion, points, tags}]), example_tags, prompt_id"
    }

    fn recognises(&self, row: &RowValue<'_>) -> bool {
        matches!(row.get("prompt"), Some(RowValue::List(_)))
            && matches!(row.get("rubrics"), Some(RowValue::List(_)))
    }
}

fn turns(row: &RowValue<'_>) -> Result<Vec<ConversationTurn>, RowError> {
    let Some(RowValue::List(entries)) = row.get("prompt") else {
        return Err(error("prompt", "expected a list of {role, content} turns"));
    };
    if entries.is_empty() {
        return Err(error("prompt", "the conversation has no turns"));
    }
    entries
        .iter()
        .enumerate()
        .map(|(position, turn)| {
            let field = |name: &str| {
                turn.get(name)
                    .and_then(text)
                    .map(|value| value.into_owned())
                    .ok_or_else(|| error(&format!("prompt[{position}].{name}"), "missing or not text"))
            };
            Ok(ConversationTurn { role: field("role")?, content: field("content")? })
        })
        .collect()
}

fn criteria(row: &RowValue<'_>) -> Result<Vec<Criterion>, RowError> {
    let Some(RowValue::List(entries)) = row.get("rubrics") else {
        return Err(error("rubrics", "expected a list of {criterion, points, tags}"));
    };
    entries
        .iter()
        .enumerate()
        .map(|(position, entry)| {
            let name = |field: &str| format!("rubrics[{position}].{field}");
            let criterion = entry
                .get("criterion")
                .and_then(text)
                .map(|value| value.into_owned())
                .ok_or_else(|| error(&name("criterion"), "missing or not text"))?;
            let points = match entry.get("points") {
                Some(RowValue::Number(number)) => number.as_f64(),
                Some(RowValue::Text(text)) => text.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|points| points.is_finite())
            .ok_or_else(|| error(&name("points"), "missing or not a number"))?;
            let tags = match entry.get("tags") {
                None | Some(RowValue::Null) => Vec::new(),
                Some(value) => {
                    strings(value).ok_or_else(|| error(&name("tags"), "expected a list of texts"))?
                }
            };
            Ok(Criterion { criterion, points, tags })
        })
        .collect()
}

fn strings(value: &RowValue<'_>) -> Option<Vec<String>> {
    match value {
        RowValue::List(items) => items.iter().map(|item| text(item).map(|text| text.into_owned())).collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(row: serde_json::Value) -> Result<TaskItem, RowError> {
        let row = RowValue::from_json(row);
        let args = std::collections::BTreeMap::new();
        let context = BuildContext::for_tests(&args);
        RubricConversation.build(&row, 3, &context, &mut BuildState::default())
    }

    #[test]
    fn a_healthbench_row_becomes_a_conversation_and_a_rubric() {
        let built = build(serde_json::json!({
            "prompt_id": "p1",
            "prompt": [{"role": "user", "content": "I have a headache"}],
            "rubrics": [
                {"criterion": "Asks about red flags", "points": 5, "tags": ["axis:completeness"]},
                {"criterion": "Recommends opioids", "points": -3, "tags": []}
            ],
            "example_tags": ["theme:emergency_referrals"]
        }))
        .unwrap();
        assert_eq!(built.item.conversation[0].content, "I have a headache");
        assert!(built.item.rubric.is_empty(), "the model must not see the rubric");
        assert_eq!(built.key.source_id, "p1");
        let Reference::Rubric(rubric) = &built.key.reference else { panic!("not a rubric") };
        assert_eq!(rubric.criteria[1].points, -3.0);
        assert_eq!(rubric.example_tags, ["theme:emergency_referrals"]);
    }

    #[test]
    fn rows_that_cannot_be_graded_are_bad_rows_naming_the_field() {
        let no_positive = build(serde_json::json!({
            "prompt": [{"role": "user", "content": "q"}],
            "rubrics": [{"criterion": "bad", "points": -1}]
        }));
        assert_eq!(no_positive.unwrap_err().field, "rubrics");
        let bad_turn = build(serde_json::json!({"prompt": [{"role": "user"}], "rubrics": []}));
        assert_eq!(bad_turn.unwrap_err().field, "prompt[0].content");
        let bad_points = build(serde_json::json!({
            "prompt": [{"role": "user", "content": "q"}],
            "rubrics": [{"criterion": "c", "points": "many"}]
        }));
        assert_eq!(bad_points.unwrap_err().field, "rubrics[0].points");
    }
}
