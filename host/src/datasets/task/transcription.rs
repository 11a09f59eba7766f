//! Speech recognition: a recording, given to the model as the encoded file (WAV, FLAC, MP3...;
//! the plugin decodes it), and its reference transcript, scored by word and character error
//! rates.

use std::collections::BTreeMap;

use karma_plugin_api::abi::Modality;

use super::{BuildContext, BuildState, Reference, ScoringKey, TaskFamily, TaskItem, TaskType};
use crate::datasets::{
    extract::Extraction,
    item::OwnedItem,
    media::required_media,
    record::{id_of, optional_text, required_text, RowError},
    row::RowValue,
};

/// Rows with an audio column and `text`.
#[derive(Clone, Copy, Debug)]
pub struct Transcription {
    /// The audio column (`audio`; IndicVoices calls it `audio_filepath`).
    pub audio_field: &'static str,
    /// Row columns copied into `other_args` when present (Eka Care's recording context,
    /// concept type and medical entities), as `(column, key)`.
    pub attributes: &'static [(&'static str, &'static str)],
}

/// Eka Care's annotations of a recording.
pub const EKA_ATTRIBUTES: &[(&str, &str)] = &[
    ("recording_context", "recording_context"),
    ("type_concept", "type_concept"),
    ("medical_entities", "entities"),
    ("noise_type", "noise_type"),
];

impl TaskFamily for Transcription {
    fn task_type(&self) -> TaskType {
        TaskType::Transcription
    }

    fn modalities(&self) -> &'static [Modality] {
        &[Modality::Audio]
    }

    fn build(
        &self,
        row: &RowValue<'_>,
        index: u64,
        context: &BuildContext<'_>,
        state: &mut BuildState,
    ) -> Result<TaskItem, RowError> {
        let field = if row.get(self.audio_field).is_some() { self.audio_field } else { "audio" };
        let audio = required_media(row, field, &state.media_root)?;
        let transcript = required_text(row, "text")?.into_owned();
        // The recording's language: the dataset's (its config), else the row's own.
        let language = context
            .args
            .get("language")
            .cloned()
            .or_else(|| optional_text(row, "audio_language").map(|text| text.into_owned()))
            .or_else(|| optional_text(row, "language").map(|text| text.into_owned()));
        let mut other_args: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        if let Some(language) = &language {
            other_args.insert("language", language.clone().into());
        }
        for (column, key) in self.attributes {
            if let Some(value) = row.get(column).filter(|value| !matches!(value, RowValue::Null)) {
                other_args.insert(key, serde_json::to_value(value).unwrap_or_default());
            }
        }
        // Text a speech model continues from (Whisper's initial prompt: spellings, names).
        if let Some(prompt) = optional_text(row, "initial_prompt") {
            other_args.insert("initial_prompt", prompt.into_owned().into());
        }
        let group = optional_text(row, "group").map(|group| group.into_owned());
        if let Some(group) = &group {
            other_args.insert("group", group.clone().into());
        }
        let item = OwnedItem {
            id: index,
            audio: Some(Box::new(audio)),
            system_prompt: optional_text(row, "system_prompt").map(|text| text.into_owned()),
            expected_output: Some(transcript.clone()),
            other_args: serde_json::to_string(&other_args).unwrap_or_else(|_| "{}".to_owned()),
            ..OwnedItem::default()
        };
        let key = ScoringKey {
            source_id: id_of(row, "id", index).into_owned(),
            reference: Reference::Texts(vec![transcript]),
            group,
        };
        Ok(TaskItem { item, key })
    }

    fn extraction(&self) -> Extraction {
        Extraction::FreeText
    }

    fn local_columns(&self) -> &'static str {
        "audio (path relative to the file, base64, data URL, or {bytes, path}), text (the transcript); \
         optional id, language, initial_prompt (text the speech model continues from), group"
    }

    fn recognises(&self, row: &RowValue<'_>) -> bool {
        row.get("audio").is_some() && row.get("text").is_some()
    }
}
