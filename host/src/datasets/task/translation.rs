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

/// `ai4bharat/IN22-Conv`: conversational sentences in 23 languages, one column per language
/// (FLORES-200 codes: `eng_Latn`, `hin_Deva`, ...). The `source_language` and
/// `target_language` arguments take the short codes (`en`, `hi`, ...).
#[derive(Clone, Copy, Debug)]
pub struct In22Conv;

/// Short code, FLORES-200 column, language name.
pub const IN22_LANGUAGES: &[(&str, &str, &str)] = &[
    ("en", "eng_Latn", "English"),
    ("as", "asm_Beng", "Assamese"),
    ("bn", "ben_Beng", "Bengali"),
    ("brx", "brx_Deva", "Bodo"),
    ("doi", "doi_Deva", "Dogri"),
    ("gu", "guj_Gujr", "Gujarati"),
    ("hi", "hin_Deva", "Hindi"),
    ("kn", "kan_Knda", "Kannada"),
    ("kok", "gom_Deva", "Konkani"),
    ("ks", "kas_Arab", "Kashmiri"),
    ("mai", "mai_Deva", "Maithili"),
    ("ml", "mal_Mlym", "Malayalam"),
    ("mni", "mni_Mtei", "Manipuri"),
    ("mr", "mar_Deva", "Marathi"),
    ("ne", "npi_Deva", "Nepali"),
    ("or", "ory_Orya", "Odia"),
    ("pa", "pan_Guru", "Punjabi"),
    ("sa", "san_Deva", "Sanskrit"),
    ("sat", "sat_Olck", "Santali"),
    ("sd", "snd_Deva", "Sindhi"),
    ("ta", "tam_Taml", "Tamil"),
    ("te", "tel_Telu", "Telugu"),
    ("ur", "urd_Arab", "Urdu"),
];

/// The short codes, for the arguments' choices.
pub const IN22_CODES: &[&str] = &[
    "en", "as", "bn", "brx", "doi", "gu", "hi", "kn", "kok", "ks", "mai", "ml", "mni", "mr", "ne", "or",
    "pa", "sa", "sat", "sd", "ta", "te", "ur",
];

fn in22_language(code: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    IN22_LANGUAGES.iter().find(|(short, _, _)| *short == code)
}

impl TaskFamily for In22Conv {
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
        // The arguments were checked against the codes before reading; `en` is the default.
        let language = |arg: &str, default: &str| {
            in22_language(context.args.get(arg).map_or(default, String::as_str)).ok_or_else(|| RowError {
                field: arg.to_owned(),
                problem: "not an IN22 language code".to_owned(),
            })
        };
        let (_, source_column, source_name) = language("source_language", "en")?;
        let (_, target_column, target_name) = language("target_language", "hi")?;
        let source = required_text(row, source_column)?;
        let references = texts(row, target_column)?;
        let input = match context.template_override {
            Some(template) => template.replace("<QUESTION>", &source).replace("<CONTEXT>", ""),
            // KARMA says "English" whatever the source language; ours names it.
            None => format!(
                "Translate the following {source_name} text into {target_name}. Reply with the \
                 translation only, without any other text.\n\n{source}"
            ),
        };
        Ok(free_text_item(row, index, input, references))
    }

    fn extraction(&self) -> Extraction {
        Extraction::Translation
    }

    fn local_columns(&self) -> &'static str {
        "one column per language, named by FLORES-200 code (eng_Latn, hin_Deva, ...); optional id"
    }

    fn recognises(&self, _row: &RowValue<'_>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::datasets::task::{Reference, Scoring};

    #[test]
    fn in22_rows_translate_between_the_chosen_columns() {
        let args = BTreeMap::from([
            ("source_language".to_owned(), "ta".to_owned()),
            ("target_language".to_owned(), "hi".to_owned()),
        ]);
        let context = BuildContext { template_override: None, scoring: Scoring::Generate, args: &args };
        let row = RowValue::from_json(
            json!({"id": 4, "eng_Latn": "Hello", "tam_Taml": "வணக்கம்", "hin_Deva": "नमस्ते"}),
        );
        let built = In22Conv.build(&row, 0, &context, &mut BuildState::default()).unwrap();
        let input = built.item.input.unwrap();
        assert!(input.starts_with("Translate the following Tamil text into Hindi."), "{input}");
        assert!(input.ends_with("\n\nவணக்கம்"), "{input}");
        assert_eq!(built.key.reference, Reference::Texts(vec!["नमस्ते".to_owned()]));
        assert_eq!(built.key.source_id, "4");
        assert_eq!(IN22_CODES.len(), IN22_LANGUAGES.len());
        assert!(IN22_LANGUAGES.iter().zip(IN22_CODES).all(|((code, _, _), short)| code == short));
        let missing = RowValue::from_json(json!({"eng_Latn": "Hello"}));
        assert_eq!(
            In22Conv.build(&missing, 0, &context, &mut BuildState::default()).unwrap_err().field,
            "tam_Taml"
        );
    }
}
