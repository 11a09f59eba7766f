//! The dataset registry: every dataset karma-host knows by name, with where it lives, how its
//! rows map to items, how it is prompted, how answers are extracted and which metrics apply.
//!
//! A flat declarative table (style rule 14): one entry per dataset, names and revisions as in
//! KARMA's registry so results are comparable.

mod graded;
mod media;
mod safety;
mod text;

use std::sync::LazyLock;

use super::{
    extract::Extraction,
    prompt::Template,
    record::Schema,
    task::{
        Mcq, OpenQa, RubricConversation, TaskFamily, TaskType, Transcription, Translation, Vqa, VqaPrompt,
    },
};

/// A dataset argument (`--dataset-args ds:key=value`).
#[derive(Clone, Copy, Debug)]
pub struct ArgSpec {
    pub name: &'static str,
    pub required: bool,
    pub default: Option<&'static str>,
    pub description: &'static str,
    /// The values allowed, when the set is closed (empty: any text).
    pub choices: &'static [&'static str],
}

/// Arguments every dataset accepts.
pub const COMMON_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "data_files",
        required: false,
        default: None,
        description: "local file or directory (.jsonl, .json, .csv, .parquet) in the dataset's schema; bypasses the hub",
        choices: &[],
    },
    ArgSpec {
        name: "confinement_instructions",
        required: false,
        default: None,
        description: "replaces the prompt template; `<QUESTION>` (and `<CONTEXT>`) are substituted",
        choices: &[],
    },
];

/// One registered dataset.
#[derive(Clone, Copy, Debug)]
pub struct DatasetDefinition {
    /// Registry name (KARMA's), used in results files.
    pub name: &'static str,
    /// Short names accepted on the command line.
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    /// Hugging Face dataset repository.
    pub repo_id: &'static str,
    /// Dataset config (subset), when the repository has several.
    pub config: Option<&'static str>,
    /// The argument whose value is the config, when the user picks it (`subset`).
    pub config_arg: Option<&'static str>,
    pub split: &'static str,
    /// Pinned hub revision (commit prefix, as pinned by KARMA); `None` follows `main`.
    pub revision: Option<&'static str>,
    /// How its rows become items and references, and how answers are read.
    pub family: &'static dyn TaskFamily,
    pub metrics: &'static [&'static str],
    /// Text processors applied to predictions and references before the metrics (KARMA's
    /// registrations); `--processors` replaces them.
    pub processors: &'static [&'static str],
    /// Arguments beyond [`COMMON_ARGS`].
    pub args: &'static [ArgSpec],
}

impl DatasetDefinition {
    pub fn task_type(&self) -> TaskType {
        self.family.task_type()
    }

    /// Every argument the dataset accepts.
    pub fn all_args(&self) -> impl Iterator<Item = &ArgSpec> {
        COMMON_ARGS.iter().chain(self.args)
    }
}

/// The registry, in listing order: text, then media, then safety and bias, then judge-graded
/// datasets.
pub static DATASETS: LazyLock<Vec<DatasetDefinition>> =
    LazyLock::new(|| [text::DATASETS, media::DATASETS, safety::DATASETS, graded::DATASETS].concat());

/// Named sets of datasets: `--datasets mmlu` evaluates every member.
pub const GROUPS: &[(&str, &str, &[&str])] = &[
    (
        "mmlu",
        "the five medical MMLU subsets (openlifescienceai)",
        &[
            "openlifescienceai/mmlu_professional_medicine",
            "openlifescienceai/mmlu_anatomy",
            "openlifescienceai/mmlu_college_biology",
            "openlifescienceai/mmlu_clinical_knowledge",
            "openlifescienceai/mmlu_college_medicine",
        ],
    ),
    (
        "afrimedqa",
        "AfriMed-QA v2: expert MCQs and consumer queries",
        &["intronhealth/afrimedqa_v2/mcq", "intronhealth/afrimedqa_v2"],
    ),
    (
        "indian-pharmacology",
        "Indian medicines: branded drugs and the National Formulary",
        &["ekacare/indian_drug_mcqa", "ekacare/Eka_NFI_MCQA"],
    ),
];

/// The members of group `name`, if it is one.
pub fn group(name: &str) -> Option<&'static [&'static str]> {
    GROUPS.iter().find(|(group, _, _)| group.eq_ignore_ascii_case(name)).map(|(_, _, members)| *members)
}

/// An ad-hoc definition for `--datasets ./file.jsonl`.
const fn local(
    description: &'static str,
    family: &'static dyn TaskFamily,
    metrics: &'static [&'static str],
) -> DatasetDefinition {
    DatasetDefinition {
        name: "local",
        aliases: &[],
        description,
        repo_id: "",
        config: None,
        config_arg: None,
        split: "",
        revision: None,
        family,
        metrics,
        processors: &[],
        args: &[],
    }
}

/// Local files, by the family their columns show (or `--task`), in the order they are tried.
pub const LOCAL: &[DatasetDefinition] = &[
    local(
        "a local MCQ file",
        &Mcq { schema: Schema::LocalMcq, template: Template::MedicalMcq, extraction: Extraction::McqLetter },
        text::MCQ,
    ),
    local("a local translation file", &Translation, &["bleu", "chrf"]),
    local(
        "a local VQA file",
        &Vqa { prompt: VqaPrompt::Plain, extraction: Extraction::FreeText, lowercase_answers: false },
        media::VQA,
    ),
    local(
        "a local speech recognition file",
        &Transcription { audio_field: "audio", attributes: &[] },
        media::ASR,
    ),
    local("a local rubric file (HealthBench's schema)", &RubricConversation, &["rubric_evaluation"]),
    local("a local open-ended QA file", &OpenQa, &["exact_match", "tokenised_f1", "bleu", "rouge"]),
];

/// The local definition for `task`.
pub fn local_for(task: TaskType) -> &'static DatasetDefinition {
    LOCAL.iter().find(|definition| definition.task_type() == task).unwrap_or(&LOCAL[0])
}

/// Finds a dataset by registry name or alias (case-insensitive).
pub fn find(name: &str) -> Option<&'static DatasetDefinition> {
    let wanted = name.to_lowercase();
    DATASETS.iter().find(|definition| {
        definition.name.to_lowercase() == wanted || definition.aliases.iter().any(|alias| *alias == wanted)
    })
}

/// Up to five names close to `name`.
pub fn suggestions(name: &str) -> Vec<&'static str> {
    let wanted = name.to_lowercase();
    let mut scored: Vec<(f64, &'static str)> = DATASETS
        .iter()
        .flat_map(|definition| std::iter::once(definition.name).chain(definition.aliases.iter().copied()))
        .map(|candidate| {
            let lower = candidate.to_lowercase();
            let score = if lower.contains(&wanted) { 1.0 } else { strsim::jaro_winkler(&wanted, &lower) };
            (score, candidate)
        })
        .filter(|(score, _)| *score >= 0.85)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_resolve() {
        assert_eq!(find("pubmedqa").unwrap().name, "openlifescienceai/pubmedqa");
        assert_eq!(find("OpenLifeScienceAI/MedQA").unwrap().name, "openlifescienceai/medqa");
        assert!(find("nope").is_none());
        assert!(suggestions("medmcq").contains(&"medmcqa"));
    }

    #[test]
    fn every_listed_metric_exists() {
        for definition in DATASETS.iter().chain(LOCAL) {
            for metric in definition.metrics.iter().flat_map(|name| crate::metrics::expand(name)) {
                assert!(
                    crate::metrics::find(metric).is_some(),
                    "{}: unknown metric {metric}",
                    definition.name
                );
            }
        }
        for definition in LOCAL {
            assert_eq!(local_for(definition.task_type()).task_type(), definition.task_type());
        }
    }

    #[test]
    fn groups_name_registered_datasets() {
        for (name, _, members) in GROUPS {
            assert!(find(name).is_none(), "group {name} shadows a dataset");
            for member in *members {
                assert!(find(member).is_some(), "{name}: {member}");
            }
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> =
            DATASETS.iter().flat_map(|d| std::iter::once(d.name).chain(d.aliases.iter().copied())).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
