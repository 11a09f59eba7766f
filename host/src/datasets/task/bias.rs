//! Bias in multiple choice (AMQA): every question is asked as written, desensitized (no
//! demographic detail), and rewritten for each side of a race, gender and income contrast. A
//! row becomes one item per variant; `--max-samples` counts questions, as the bias metrics do.

use std::borrow::Cow;

use serde_json::json;

use super::{mcq::choice_item, BuildContext, BuildState, TaskFamily, TaskItem, TaskType};
use crate::{
    datasets::{
        extract::Extraction,
        prompt::Template,
        record::{error, id_of, options, required_text, McqRecord, RowError},
        row::RowValue,
    },
    metrics::bias::VARIANTS,
};

/// Rows `{question_id, options: {A..D}, answer_idx, original_question, desensitized_question,
/// adv_question_<variant>...}`.
#[derive(Clone, Copy, Debug)]
pub struct Amqa {
    /// The contrast asked about (`race`, `gender`, `ses`) when the registry entry fixes one;
    /// otherwise the `bias_dimension` argument decides.
    pub dimension: Option<&'static str>,
}

/// The dimension each counterfactual variant belongs to.
fn dimension_of(variant: &str) -> Option<&'static str> {
    match variant {
        "white" | "black" => Some("race"),
        "male" | "female" => Some("gender"),
        "high_income" | "low_income" => Some("ses"),
        _ => None,
    }
}

/// The column holding a variant's text.
fn column(variant: &str) -> Cow<'static, str> {
    match variant {
        "original" => Cow::Borrowed("original_question"),
        "desensitized" => Cow::Borrowed("desensitized_question"),
        other => Cow::Owned(format!("adv_question_{other}")),
    }
}

impl Amqa {
    /// The variants asked: one (`variant` argument), or all, narrowed to a dimension's pair plus
    /// the original and desensitized questions.
    fn variants(&self, context: &BuildContext<'_>) -> Vec<(usize, &'static str)> {
        let dimension = self
            .dimension
            .or_else(|| context.args.get("bias_dimension").and_then(|d| canonical_dimension(d)));
        let only = context.args.get("variant").map(String::as_str).filter(|variant| *variant != "all");
        VARIANTS
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, variant)| only.is_none_or(|only| only == *variant))
            .filter(|(_, variant)| {
                dimension.is_none_or(|dimension| dimension_of(variant).is_none_or(|own| own == dimension))
            })
            .collect()
    }
}

fn canonical_dimension(name: &str) -> Option<&'static str> {
    ["race", "gender", "ses"].into_iter().find(|known| *known == name)
}

impl TaskFamily for Amqa {
    fn task_type(&self) -> TaskType {
        TaskType::McqaBias
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let mut items = Vec::new();
        self.build_into(row, index, context, state, &mut items)?;
        items.into_iter().next().ok_or_else(|| error("original_question", "missing"))
    }

    fn build_into(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
        items: &mut Vec<TaskItem>,
    ) -> Result<(), RowError> {
        let options = options(row.get("options"), "options")?;
        let answer = required_text(row, "answer_idx")?;
        let answer = answer.trim().to_uppercase();
        if !options.iter().any(|(letter, _)| *letter == answer) {
            return Err(error("answer_idx", format!("`{answer}` is not one of the options")));
        }
        let question_id = id_of(row, "question_id", index);
        let mut built = Vec::new();
        for (position, variant) in self.variants(context) {
            let field = column(variant);
            let Some(text) = row.get(&field).and_then(crate::datasets::record::text) else { continue };
            if text.trim().is_empty() {
                continue;
            }
            let record = McqRecord {
                source_id: Cow::Owned(format!("{question_id}:{variant}")),
                question: text,
                context: None,
                options: options.clone(),
                answer: Cow::Borrowed(answer.as_str()),
                group: Some(Cow::Borrowed(variant)),
                system_prompt: None,
            };
            let attributes = [
                ("question_id", json!(question_id)),
                ("variant", json!(variant)),
                ("demographic_category", json!(dimension_of(variant).unwrap_or("none"))),
            ];
            let mut item = choice_item(
                index * 8 + position as u64,
                &record,
                Template::LetterOnly,
                context,
                state,
                &attributes,
            );
            item.key.source_id = format!("{question_id}:{variant}");
            built.push(item);
        }
        if built.is_empty() {
            return Err(error("original_question", "no variant of the question is present"));
        }
        items.extend(built);
        Ok(())
    }

    fn extraction(&self) -> Extraction {
        Extraction::LenientLetter
    }

    fn supports_loglikelihood(&self) -> bool {
        true
    }

    fn local_columns(&self) -> &'static str {
        "AMQA's columns: question_id, options (A-D), answer_idx, original_question, desensitized_question, \
         adv_question_{white,black,male,female,high_income,low_income}"
    }

    fn recognises(&self, _row: &RowValue<'_>) -> bool {
        false
    }
}
