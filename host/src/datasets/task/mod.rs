//! Task families: how a row of each family becomes an item for the model and a *reference* to
//! score the answer against. One file per family; a dataset names its family in the registry
//! (`catalog.rs`), and the engine sees only [`TaskItem`]s.
//!
//! Adding a family: a file here implementing [`TaskFamily`], and an entry in `catalog::LOCAL`
//! when local files of that shape should be recognised.

mod afrimedqa;
mod bias;
mod calculator;
mod mcq;
mod open_qa;
mod rubric;
mod safety;
mod transcription;
mod translation;
mod vqa;

use std::{collections::BTreeMap, sync::Arc};

pub use afrimedqa::{AfriMedQaConsumer, AfriMedQaMcq};
pub use bias::Amqa;
pub use calculator::Calculator;
pub use mcq::Mcq;
pub use open_qa::OpenQa;
pub use rubric::{RubricConversation, RubricReference};
pub use safety::{AfriMedQaHarm, Refusal, SafetySet};
pub use transcription::{Transcription, EKA_ATTRIBUTES};
pub use translation::{In22Conv, Translation, IN22_CODES};
pub use vqa::{ImageMcq, Vqa, VqaPrompt};

use karma_plugin_api::abi::Modality;

use super::{extract::Extraction, item::OwnedItem, media::MediaRoot, record::RowError, row::RowValue};

/// KARMA's task types, as results files name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskType {
    /// Multiple-choice question answering.
    Mcqa,
    /// A question answered in free text, scored against reference answers.
    OpenEndedQa,
    /// A text translated, scored against reference translations.
    Translation,
    /// A question about one or more images, answered in a few words.
    Vqa,
    /// A recording transcribed, scored by word and character error rates.
    Transcription,
    /// Prompts a model should decline or answer with care, scored by how it responds.
    SafetyClassification,
    /// Questions rated harmful or safe to answer; the model's verdict is scored.
    HarmDetection,
    /// Multiple choice asked in demographic variants, scored for consistency across them.
    McqaBias,
    /// A clinical calculation, scored within a tolerance.
    Calculator,
    /// A conversation continued by the model, its answer graded by a judge against rubric
    /// criteria.
    RubricEvaluation,
}

impl TaskType {
    pub const ALL: [TaskType; 6] = [
        TaskType::Mcqa,
        TaskType::OpenEndedQa,
        TaskType::Translation,
        TaskType::Vqa,
        TaskType::Transcription,
        TaskType::RubricEvaluation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Mcqa => "mcqa",
            TaskType::OpenEndedQa => "open_ended_qa",
            TaskType::Translation => "translation",
            TaskType::Vqa => "vqa",
            TaskType::Transcription => "transcription",
            TaskType::SafetyClassification => "safety_classification",
            TaskType::HarmDetection => "harm_detection",
            TaskType::McqaBias => "mcqa_bias",
            TaskType::Calculator => "calculator",
            TaskType::RubricEvaluation => "rubric_evaluation",
        }
    }

    pub fn from_name(name: &str) -> Option<TaskType> {
        TaskType::ALL.into_iter().find(|task| task.as_str() == name)
    }
}

/// How the model answers a multiple-choice item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scoring {
    /// The model writes an answer; the dataset's extraction rule reads it.
    Generate,
    /// Each option letter is scored as a continuation of the question (needs the model's
    /// `karma.model.loglikelihood/1` extension); the most likely option is the prediction.
    Loglikelihood,
}

impl Scoring {
    pub fn as_str(self) -> &'static str {
        match self {
            Scoring::Generate => "generate",
            Scoring::Loglikelihood => "loglikelihood",
        }
    }
}

/// What an answer is scored against.
#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    /// The correct option, `letters[answer]`; `letters` are the options in display order
    /// (shared between consecutive items with the same letters, so a choice costs no
    /// allocation of its own).
    Choice { letters: Arc<[String]>, answer: usize },
    /// Acceptable answer texts, the first being the primary one.
    Texts(Vec<String>),
    /// Criteria a judge checks the answer against (no text to compare with).
    Rubric(Arc<RubricReference>),
}

impl Reference {
    /// The text single-reference metrics compare with.
    pub fn primary(&self) -> &str {
        match self {
            Reference::Choice { letters, answer } => {
                letters.get(*answer).map(String::as_str).unwrap_or_default()
            }
            Reference::Texts(texts) => texts.first().map(String::as_str).unwrap_or_default(),
            Reference::Rubric(_) => "",
        }
    }

    /// Every acceptable text; empty for a choice (whose one reference is its letter).
    pub fn texts(&self) -> &[String] {
        match self {
            Reference::Choice { .. } | Reference::Rubric(_) => &[],
            Reference::Texts(texts) => texts,
        }
    }

    /// The option letters; empty for free-text references.
    pub fn letters(&self) -> &[String] {
        match self {
            Reference::Choice { letters, .. } => letters,
            Reference::Texts(_) | Reference::Rubric(_) => &[],
        }
    }

    /// Whether `prediction` is right, where that is defined (a choice); `None` for free text,
    /// whose metrics grade it instead.
    pub fn correct(&self, prediction: Option<&str>) -> Option<bool> {
        match self {
            Reference::Choice { .. } => {
                Some(prediction.is_some_and(|letter| letter.eq_ignore_ascii_case(self.primary())))
            }
            Reference::Texts(_) | Reference::Rubric(_) => None,
        }
    }
}

/// What scoring needs of a row once its item is built: it travels with the item to the
/// evaluation; the row's other text stays behind.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoringKey {
    /// The dataset's own id (or the row's position when it has none).
    pub source_id: String,
    pub reference: Reference,
    /// Subgroup for per-group breakdowns.
    pub group: Option<String>,
}

/// A row made ready: the item the model gets and what its answer is scored against.
#[derive(Debug)]
pub struct TaskItem {
    pub item: OwnedItem,
    pub key: ScoringKey,
}

/// What building an item needs besides the row.
pub struct BuildContext<'a> {
    /// `confinement_instructions`, replacing the family's prompt template.
    pub template_override: Option<&'a str>,
    pub scoring: Scoring,
    /// The dataset's validated arguments.
    pub args: &'a BTreeMap<String, String>,
}

impl<'a> BuildContext<'a> {
    /// A context for unit tests of a family: generation, no template override.
    #[cfg(test)]
    pub fn for_tests(args: &'a BTreeMap<String, String>) -> Self {
        BuildContext { template_override: None, scoring: Scoring::Generate, args }
    }
}

/// A grading stage between extraction and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grader {
    /// One judge call per (answer, rubric criterion), simple-evals' HealthBench grader.
    Rubric,
}

/// State a family may keep across the rows of one dataset (reading is sequential).
#[derive(Default)]
pub struct BuildState {
    /// The last MCQ letter list, shared by the next item with the same letters.
    pub last_letters: Option<Arc<[String]>>,
    /// The folder of the file the row was read from: relative media paths start there. Kept
    /// up to date by the reader for families that read media.
    pub media_root: MediaRoot,
}

/// A family of datasets whose rows share a shape and a way of being asked and scored.
pub trait TaskFamily: Sync + std::fmt::Debug {
    fn task_type(&self) -> TaskType;

    /// The input modalities its items carry; a model must accept all of them.
    fn modalities(&self) -> &'static [Modality] {
        &[Modality::Text]
    }

    /// The item and reference of `row`; `index` is its 0-based position (the item id, and the
    /// source id of a row without one).
    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
    ) -> Result<TaskItem, RowError>;

    /// Appends the items of `row` to `items`: one, built by [`TaskFamily::build`], unless the
    /// family expands a row into several (AMQA asks each question in up to eight variants; its
    /// item ids are then `8 * index + variant`). On an error nothing is appended.
    fn build_into(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
        items: &mut Vec<TaskItem>,
    ) -> Result<(), RowError> {
        items.push(self.build(row, index, context, state)?);
        Ok(())
    }

    /// Whether `row` belongs to the evaluated set: a dataset published as one table with a
    /// column saying which subset a row is in (AfriMed-QA) filters here. Rows left out are not
    /// items and do not count toward `--max-samples`.
    fn admits(&self, _row: &RowValue<'_>, _context: &BuildContext<'_>) -> bool {
        true
    }

    /// How answers are read from generated text.
    fn extraction(&self) -> Extraction;

    /// The grading stage its answers go through before the metrics (a judge model), if any.
    fn grader(&self) -> Option<Grader> {
        None
    }

    /// Whether `--scoring loglikelihood` applies (only to option letters today).
    fn supports_loglikelihood(&self) -> bool {
        false
    }

    /// The columns of a local file of this family, for messages and the README.
    fn local_columns(&self) -> &'static str;

    /// Whether a local file's first row has this family's shape.
    fn recognises(&self, row: &RowValue<'_>) -> bool;
}

/// The text of `field`, or a list of texts (several references), trimmed of empty entries.
pub(crate) fn texts(row: &RowValue<'_>, field: &str) -> Result<Vec<String>, RowError> {
    let missing = || RowError { field: field.to_owned(), problem: "missing".to_owned() };
    match row.get(field) {
        None | Some(RowValue::Null) => Err(missing()),
        Some(RowValue::List(items)) => {
            let texts: Vec<String> = items
                .iter()
                .filter_map(|item| super::record::text(item).map(|text| text.into_owned()))
                .filter(|text| !text.trim().is_empty())
                .collect();
            if texts.is_empty() {
                Err(RowError { field: field.to_owned(), problem: "expected at least one text".to_owned() })
            } else {
                Ok(texts)
            }
        }
        Some(value) => {
            let text = super::record::text(value).ok_or_else(|| RowError {
                field: field.to_owned(),
                problem: format!("expected text or a list of texts, found {value}"),
            })?;
            if text.trim().is_empty() {
                return Err(RowError { field: field.to_owned(), problem: "empty".to_owned() });
            }
            Ok(vec![text.into_owned()])
        }
    }
}
