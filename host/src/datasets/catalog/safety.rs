//! Safety, harm, bias and calculator datasets.

use super::{ArgSpec, DatasetDefinition};
use crate::datasets::task::{AfriMedQaHarm, Amqa, Calculator, Refusal, SafetySet};

/// In listing order.
pub(super) const DATASETS: &[DatasetDefinition] = &[
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
