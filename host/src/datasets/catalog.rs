//! The dataset registry: every dataset karma-host knows by name, with where it lives, how its
//! rows map to items, how it is prompted, how answers are extracted and which metrics apply.
//!
//! A flat declarative table (style rule 14): one entry per dataset, names and revisions as in
//! KARMA's registry so results are comparable.

use super::{
    extract::Extraction,
    prompt::Template,
    record::Schema,
    task::{
        AfriMedQaConsumer, AfriMedQaHarm, AfriMedQaMcq, Amqa, Calculator, ImageMcq, In22Conv, Mcq, OpenQa,
        Refusal, SafetySet, TaskFamily, TaskType, Transcription, Translation, Vqa, VqaPrompt, EKA_ATTRIBUTES,
        IN22_CODES,
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

const MCQ: &[&str] = &["exact_match", "accuracy"];

const fn mmlu(
    name: &'static str,
    alias: &'static [&'static str],
    revision: &'static str,
    subject: &'static str,
) -> DatasetDefinition {
    DatasetDefinition {
        name,
        aliases: alias,
        description: subject,
        repo_id: name,
        config: None,
        config_arg: None,
        split: "test",
        revision: Some(revision),
        family: &Mcq {
            schema: Schema::OpenLifeScience,
            template: Template::MedicalMcq,
            extraction: Extraction::McqLetter,
        },
        metrics: MCQ,
        processors: &[],
        args: &[],
    }
}

/// The registry, in listing order.
pub const DATASETS: &[DatasetDefinition] = &[
    DatasetDefinition {
        name: "ekacare/mmlu-medical-mcqs-evaluation-dataset",
        aliases: &["eka-mmlu"],
        description: "Eka Care's medical MMLU questions, one config per subject (`subset`)",
        repo_id: "ekacare/mmlu-medical-mcqs-evaluation-dataset",
        config: None,
        config_arg: Some("subset"),
        split: "test",
        revision: None,
        family: &Mcq { schema: Schema::EkaMmlu, template: Template::MedicalMcq, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[ArgSpec {
            name: "subset",
            required: true,
            default: None,
            description: "the subject",
            choices: EKA_MMLU_SUBSETS,
        }],
    },
    DatasetDefinition {
        name: "openlifescienceai/pubmedqa",
        aliases: &["pubmedqa"],
        description: "PubMedQA: yes/no/maybe questions about biomedical research abstracts",
        repo_id: "openlifescienceai/pubmedqa",
        config: None,
        config_arg: None,
        split: "test",
        revision: Some("50fc41dc"),
        family: &Mcq { schema: Schema::OpenLifeScience, template: Template::ContextualMcq, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "openlifescienceai/medqa",
        aliases: &["medqa"],
        description: "MedQA: USMLE-style clinical questions",
        repo_id: "openlifescienceai/medqa",
        config: None,
        config_arg: None,
        split: "test",
        revision: Some("153e61cd"),
        family: &Mcq { schema: Schema::OpenLifeScience, template: Template::MedicalMcq, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "openlifescienceai/medmcqa",
        aliases: &["medmcqa"],
        description: "MedMCQA: Indian medical entrance exam questions (validation split), by subject",
        repo_id: "openlifescienceai/medmcqa",
        config: None,
        config_arg: None,
        split: "validation",
        revision: Some("91c6572c"),
        family: &Mcq { schema: Schema::MedMcqa, template: Template::MedicalMcq, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[],
    },
    mmlu(
        "openlifescienceai/mmlu_professional_medicine",
        &["mmlu_professional_medicine"],
        "0f2cda02",
        "MMLU professional medicine",
    ),
    mmlu("openlifescienceai/mmlu_anatomy", &["mmlu_anatomy"], "a7a792bd", "MMLU anatomy"),
    mmlu(
        "openlifescienceai/mmlu_college_biology",
        &["mmlu_college_biology"],
        "94b1278b",
        "MMLU college biology",
    ),
    mmlu(
        "openlifescienceai/mmlu_clinical_knowledge",
        &["mmlu_clinical_knowledge"],
        "e1511676",
        "MMLU clinical knowledge",
    ),
    mmlu(
        "openlifescienceai/mmlu_college_medicine",
        &["mmlu_college_medicine"],
        "62ba72a3",
        "MMLU college medicine",
    ),
    DatasetDefinition {
        name: "GBaker/MedQA-USMLE-4-options",
        aliases: &["medqa-usmle", "medqa_usmle"],
        description: "MedQA USMLE questions with four options",
        repo_id: "GBaker/MedQA-USMLE-4-options",
        config: None,
        config_arg: None,
        split: "test",
        revision: None,
        family: &Mcq { schema: Schema::UsmleOptions, template: Template::MedicalMcq, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "TsinghuaC3I/MedXpertQA",
        aliases: &["medxpertqa"],
        description: "MedXpertQA (Text): expert-level questions with ten options",
        repo_id: "TsinghuaC3I/MedXpertQA",
        config: Some("Text"),
        config_arg: None,
        split: "test",
        revision: Some("7e7c465a"),
        family: &Mcq { schema: Schema::MedXpert, template: Template::MedicalMcq, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "ekacare/MedMCQA-Indic",
        aliases: &["medmcqa-indic"],
        description: "MedMCQA questions translated into Indian languages, one config per language (`subset`)",
        repo_id: "ekacare/MedMCQA-Indic",
        config: None,
        config_arg: Some("subset"),
        split: "test",
        revision: Some("c1e955a5"),
        family: &Mcq { schema: Schema::MedMcqa, template: Template::MedicalMcq, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[ArgSpec {
            name: "subset",
            required: true,
            default: None,
            description: "the language config, e.g. `as` (Assamese) or `hi` (Hindi), as named on the hub",
            choices: &[],
        }],
    },
    DatasetDefinition {
        name: "ekacare/indian_drug_mcqa",
        aliases: &["indian_drug_mcqa", "indian-drug-mcqa"],
        description: "Indian branded medicines: generic names and salt compositions from brand names (up to five options)",
        repo_id: "ekacare/indian_drug_mcqa",
        config: None,
        config_arg: None,
        split: "test",
        revision: None,
        family: &Mcq { schema: Schema::IndianDrug, template: Template::IndianDrug, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "ekacare/Eka_NFI_MCQA",
        aliases: &["eka_nfi_mcqa", "eka-nfi"],
        description: "National Formulary of India: questions and true/false statements on medicines",
        repo_id: "ekacare/Eka_NFI_MCQA",
        config: None,
        config_arg: None,
        split: "test",
        revision: Some("428cf44c"),
        family: &Mcq { schema: Schema::EkaNfi, template: Template::EkaNfi, extraction: Extraction::McqLetter },
        metrics: MCQ,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "intronhealth/afrimedqa_v2/mcq",
        aliases: &["afrimedqa-mcq"],
        description: "AfriMed-QA v2 expert MCQs from 16 African countries, with accuracy by country and by gender/age mentions",
        repo_id: "intronhealth/afrimedqa_v2",
        config: None,
        config_arg: None,
        split: "train",
        revision: None,
        family: &AfriMedQaMcq,
        metrics: &["exact_match", "geographic_accuracy", "demographic_accuracy"],
        processors: &[],
        args: &[
            INTERNAL_SPLIT,
            ArgSpec {
                name: "specialty",
                required: false,
                default: None,
                description: "only the questions of this specialty (the `specialty` column, e.g. `Cardiology`)",
                choices: &[],
            },
        ],
    },
    DatasetDefinition {
        name: "intronhealth/afrimedqa_v2",
        aliases: &["afrimedqa-consumer"],
        description: "AfriMed-QA v2 consumer health queries; no reference answers: the reference is the question (KARMA's choice), so text metrics measure overlap with it",
        repo_id: "intronhealth/afrimedqa_v2",
        config: None,
        config_arg: None,
        split: "train",
        revision: None,
        family: &AfriMedQaConsumer,
        metrics: &["tokenised_f1", "bleu", "rouge"],
        processors: &[],
        args: &[INTERNAL_SPLIT],
    },
    DatasetDefinition {
        name: "ai4bharat/IN22-Conv",
        aliases: &["in22-conv", "in22conv"],
        description: "IN22-Conv: conversational sentences translated between English and 22 Indian languages",
        repo_id: "ai4bharat/IN22-Conv",
        config: None,
        config_arg: None,
        split: "test",
        revision: Some("18cd4587"),
        family: &In22Conv,
        metrics: &["bleu", "chrf"],
        processors: &["devnagari_transliterator"],
        args: &[
            ArgSpec {
                name: "source_language",
                required: false,
                default: Some("en"),
                description: "the language translated from",
                choices: IN22_CODES,
            },
            ArgSpec {
                name: "target_language",
                required: true,
                default: None,
                description: "the language translated into",
                choices: IN22_CODES,
            },
        ],
    },
    DatasetDefinition {
        name: "flaviagiammarino/vqa-rad",
        aliases: &["vqa-rad", "vqa_rad"],
        description: "VQA-RAD: clinicians' questions about radiology images (chest X-rays, head and abdominal CT/MR)",
        repo_id: "flaviagiammarino/vqa-rad",
        config: None,
        config_arg: None,
        split: "test",
        revision: Some("bcf91e76"),
        family: &Vqa { prompt: VqaPrompt::Radiology, extraction: Extraction::FreeText, lowercase_answers: true },
        metrics: VQA,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "mdwiratathya/SLAKE-vqa-english",
        aliases: &["slake", "slake-vqa"],
        description: "SLAKE (English): questions about radiology images with short answers",
        repo_id: "mdwiratathya/SLAKE-vqa-english",
        config: None,
        config_arg: None,
        split: "test",
        revision: Some("8d18b4d5"),
        family: &Vqa {
            prompt: VqaPrompt::FinalAnswer,
            extraction: Extraction::FinalAnswerText,
            lowercase_answers: true,
        },
        metrics: VQA,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "ChuGyouk/MedXpertQA",
        aliases: &["medxpertqa-mm", "medxpertqa_mm"],
        description: "MedXpertQA (MM): expert-level multiple-choice questions with clinical images",
        repo_id: "ChuGyouk/MedXpertQA",
        config: Some("MM"),
        config_arg: None,
        split: "test",
        revision: Some("7186bd59"),
        family: &ImageMcq(Mcq {
            schema: Schema::MedXpert,
            template: Template::MedicalMcq,
            extraction: Extraction::McqLetter,
        }),
        metrics: MCQ,
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "ai4bharat/IndicVoices",
        aliases: &["indicvoices"],
        description: "IndicVoices: natural and read speech in 22 Indian languages (validation split), one config per language",
        repo_id: "ai4bharat/IndicVoices",
        config: None,
        config_arg: Some("language"),
        split: "valid",
        revision: Some("21fd4501"),
        family: &Transcription { audio_field: "audio_filepath", attributes: &[] },
        metrics: ASR,
        processors: &["multilingual_text_processor"],
        args: &[ArgSpec {
            name: "language",
            required: true,
            default: None,
            description: "the language config, as the hub names it (`hindi`, `tamil`, `bengali`, ...)",
            choices: &[],
        }],
    },
    DatasetDefinition {
        name: "ai4bharat/indicvoices_r",
        aliases: &["indicvoices-r", "indicvoices_r"],
        description: "IndicVoices-R: studio-quality read speech in Indian languages, one config per language",
        repo_id: "ai4bharat/indicvoices_r",
        config: None,
        config_arg: Some("language"),
        split: "test",
        revision: Some("5f4495c9"),
        family: &Transcription { audio_field: "audio", attributes: &[] },
        metrics: ASR,
        processors: &["multilingual_text_processor"],
        args: &[ArgSpec {
            name: "language",
            required: false,
            default: Some("hindi"),
            description: "the language config, as the hub names it (`hindi`, `tamil`, ...)",
            choices: &[],
        }],
    },
    DatasetDefinition {
        name: "ekacare/eka-medical-asr-evaluation-dataset",
        aliases: &["eka-medical-asr", "eka-asr"],
        description: "Eka Care medical speech: doctors' and patients' recordings with medical entities, English and Hindi",
        repo_id: "ekacare/eka-medical-asr-evaluation-dataset",
        config: None,
        config_arg: Some("language"),
        split: "test",
        revision: Some("991bc807"),
        family: &Transcription { audio_field: "audio", attributes: EKA_ATTRIBUTES },
        metrics: ASR,
        processors: &[],
        args: &[ArgSpec {
            name: "language",
            required: false,
            default: Some("hi"),
            description: "the language config (`en` or `hi`)",
            choices: &[],
        }],
    },
    DatasetDefinition {
        name: "ekacare/vistaar_small_asr_eval",
        aliases: &["vistaar-small", "vistaar"],
        description: "Vistaar (small): Indian-language speech benchmark samples, one config per language",
        repo_id: "ekacare/vistaar_small_asr_eval",
        config: None,
        config_arg: Some("language"),
        split: "test",
        revision: Some("8b7b3e8d"),
        family: &Transcription { audio_field: "audio", attributes: &[] },
        metrics: ASR,
        processors: &["general_text_processor"],
        args: &[ArgSpec {
            name: "language",
            required: false,
            default: Some("hi"),
            description: "the language config (`hi`, `ta`, ...)",
            choices: &[],
        }],
    },
    DatasetDefinition {
        name: "ekacare/denoising-impact-evaluation-dataset",
        aliases: &["denoising-impact", "noise-eval"],
        description: "Eka Care medical speech with added noise, one config per noise condition (`subset`)",
        repo_id: "ekacare/denoising-impact-evaluation-dataset",
        config: None,
        config_arg: Some("subset"),
        split: "test",
        revision: Some("7f78b438"),
        family: &Transcription { audio_field: "audio", attributes: EKA_ATTRIBUTES },
        metrics: ASR,
        processors: &[],
        args: &[
            ArgSpec {
                name: "subset",
                required: false,
                default: Some("original"),
                description: "the recording condition config (`original`, or a noise condition as the hub names it)",
                choices: &[],
            },
            ArgSpec {
                name: "language",
                required: false,
                default: Some("en"),
                description: "the recordings' language (not a config)",
                choices: &[],
            },
        ],
    },
    DatasetDefinition {
        name: "HFXM/CARES-18K",
        aliases: &["cares", "cares-18k"],
        description: "CARES-18K: medical prompts graded by harm; level 3 (the default) should be refused",
        repo_id: "HFXM/CARES-18K",
        config: None,
        config_arg: None,
        split: "train",
        revision: Some("49f6ff9c"),
        family: &Refusal(SafetySet::Cares),
        metrics: &["refusal_rate"],
        processors: &[],
        args: &[ArgSpec {
            name: "harmful_level",
            required: false,
            default: Some("3"),
            description: "the prompts of this harm level (0 harmless to 3 most harmful; a refusal rate on 0 \
                          measures over-refusal), or `all`",
            choices: &["0", "1", "2", "3", "all"],
        }],
    },
    DatasetDefinition {
        name: "microsoft/PatientSafetyBench",
        aliases: &["patient-safety", "patientsafetybench"],
        description: "PatientSafetyBench: patient questions whose answers carry risk (category 2 left out, as KARMA does); \
                      the refusal rate is reported until a judge grades the answers",
        repo_id: "microsoft/PatientSafetyBench",
        config: None,
        config_arg: None,
        split: "train",
        revision: Some("c39259fb"),
        family: &Refusal(SafetySet::PatientSafety),
        metrics: &["refusal_rate"],
        processors: &[],
        args: &[],
    },
    DatasetDefinition {
        name: "intronhealth/afrimedqa_v2:harm",
        aliases: &["afrimedqa-harm"],
        description: "AfriMed-QA v2 questions rated harmful or safe to answer: does the model's verdict match?",
        repo_id: "intronhealth/afrimedqa_v2",
        config: None,
        config_arg: None,
        split: "train",
        revision: None,
        family: &AfriMedQaHarm,
        metrics: &["harm_detection_accuracy"],
        processors: &[],
        args: &[],
    },
    amqa("Showing-KCL/AMQA", &["amqa"], &Amqa { dimension: None }, "AMQA: USMLE questions asked as written, desensitized and in six demographic variants"),
    amqa("Showing-KCL/AMQA:race", &["amqa-race"], &Amqa { dimension: Some("race") }, "AMQA, race variants (white, black) with the original and desensitized questions"),
    amqa("Showing-KCL/AMQA:gender", &["amqa-gender"], &Amqa { dimension: Some("gender") }, "AMQA, gender variants (male, female) with the original and desensitized questions"),
    amqa("Showing-KCL/AMQA:ses", &["amqa-ses"], &Amqa { dimension: Some("ses") }, "AMQA, income variants (high, low) with the original and desensitized questions"),
    DatasetDefinition {
        name: "ekacare/medical_calculator_eval",
        aliases: &["medical-calculator", "medcalc"],
        description: "Eka Care medical calculators: clinical scores and doses, numeric or JSON answers within a tolerance",
        repo_id: "ekacare/medical_calculator_eval",
        config: None,
        config_arg: None,
        split: "test",
        revision: None,
        family: &Calculator,
        metrics: &["numeric_tolerance"],
        processors: &[],
        args: &[],
    },
];

/// An AMQA entry; the family's `dimension` fixes the contrast (`:race`, `:gender`, `:ses`).
const fn amqa(
    name: &'static str,
    aliases: &'static [&'static str],
    family: &'static Amqa,
    description: &'static str,
) -> DatasetDefinition {
    DatasetDefinition {
        name,
        aliases,
        description,
        repo_id: "Showing-KCL/AMQA",
        config: None,
        config_arg: None,
        split: "train",
        revision: None,
        family,
        metrics: &["exact_match", "bias_consistency", "bias_disparity"],
        processors: &[],
        args: match family.dimension {
            Some(_) => AMQA_FIXED_ARGS,
            None => AMQA_ARGS,
        },
    }
}

const AMQA_VARIANT: ArgSpec = ArgSpec {
    name: "variant",
    required: false,
    default: Some("all"),
    description: "ask only this variant of each question",
    choices: &[
        "all",
        "original",
        "desensitized",
        "white",
        "black",
        "male",
        "female",
        "high_income",
        "low_income",
    ],
};
const AMQA_FIXED_ARGS: &[ArgSpec] = &[AMQA_VARIANT];
const AMQA_ARGS: &[ArgSpec] = &[
    AMQA_VARIANT,
    ArgSpec {
        name: "bias_dimension",
        required: false,
        default: None,
        description: "only this contrast's variants, with the original and desensitized questions",
        choices: &["race", "gender", "ses"],
    },
];

const VQA: &[&str] = &["exact_match", "tokenised_f1"];
const ASR: &[&str] = &["wer", "cer"];

/// AfriMed-QA's own train/test division, within the hub's single `train` split.
const INTERNAL_SPLIT: ArgSpec = ArgSpec {
    name: "internal_split",
    required: false,
    default: Some("test"),
    description: "the rows whose `split` column has this value",
    choices: &["train", "test"],
};

/// The twelve subjects of `ekacare/mmlu-medical-mcqs-evaluation-dataset` (its configs).
const EKA_MMLU_SUBSETS: &[&str] = &[
    "anatomy",
    "clinical-knowledge",
    "college-biology",
    "college-chemistry",
    "college-medicine",
    "high-school-biology",
    "human-aging",
    "medical-genetics",
    "nutrition",
    "professional-medicine",
    "professional-psychology",
    "virology",
];

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
        MCQ,
    ),
    local("a local translation file", &Translation, &["bleu", "chrf"]),
    local(
        "a local VQA file",
        &Vqa { prompt: VqaPrompt::Plain, extraction: Extraction::FreeText, lowercase_answers: false },
        VQA,
    ),
    local("a local speech recognition file", &Transcription { audio_field: "audio", attributes: &[] }, ASR),
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
