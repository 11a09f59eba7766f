//! Model metadata: a tiny frozen descriptor plus an evolvable JSON document.

use abi_stable::{std_types::RString, StableAbi};
use serde::{Deserialize, Serialize};

/// What crosses the boundary for each model a plugin provides. Only the name is frozen; all
/// other metadata is the JSON form of [`ModelMeta`], so it can grow without an ABI change.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ModelDescriptor {
    /// Registry name, `org/model`.
    pub name: RString,
    /// [`ModelMeta`] serialized as JSON.
    pub meta_json: RString,
}

/// The kind of task a model performs (KARMA's `ModelType`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ModelType {
    /// Generates text from text (and possibly other) inputs.
    TextGeneration,
    /// Transcribes speech.
    AudioRecognition,
    /// Produces vector embeddings.
    Embedding,
    /// Generates text from several modalities.
    Multimodal,
}

impl ModelType {
    /// The snake_case name used in listings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelType::TextGeneration => "text_generation",
            ModelType::AudioRecognition => "audio_recognition",
            ModelType::Embedding => "embedding",
            ModelType::Multimodal => "multimodal",
        }
    }
}

/// An input modality a model accepts (KARMA's `ModalityType`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Text input.
    Text,
    /// Encoded images.
    Image,
    /// Encoded audio.
    Audio,
    /// Encoded video.
    Video,
}

impl Modality {
    /// The snake_case name used in listings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Image => "image",
            Modality::Audio => "audio",
            Modality::Video => "video",
        }
    }
}

fn default_modalities() -> Vec<Modality> {
    vec![Modality::Text]
}

fn default_languages() -> Vec<String> {
    vec!["eng-Latn".to_owned()]
}

/// Everything KARMA's `ModelMeta` records about a model, plus what the host needs to drive it.
///
/// Serialized as JSON inside [`ModelDescriptor::meta_json`]. Every field but `name` and
/// `model_type` has a default, and unknown fields are kept in `extra`, so plugins built against
/// a newer SDK still load in an older host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModelMeta {
    /// Registry name, `org/model`; the default hub id or API model id.
    pub name: String,
    /// What the model does.
    pub model_type: ModelType,
    /// One-line description shown in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Input modalities the model accepts.
    #[serde(default = "default_modalities")]
    pub modalities: Vec<Modality>,
    /// Frameworks the implementation uses (e.g. `candle`, `HTTP`).
    #[serde(default)]
    pub framework: Vec<String>,
    /// Default configuration ("loader kwargs"). The model accepts exactly these keys plus
    /// `model_path`; user configuration is merged over them.
    #[serde(default)]
    pub loader_kwargs: serde_json::Map<String, serde_json::Value>,
    /// Number of parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_parameters: Option<u64>,
    /// Approximate memory needed to run, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_usage_mb: Option<u64>,
    /// Languages as BCP-47-like tags (`eng-Latn`).
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
    /// Model version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the model is described (paper, model card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Pinned revision of the weights (hub commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Release date, ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_date: Option<String>,
    /// Licence of the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Whether the weights are openly available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_weights: Option<bool>,
    /// Sample rate expected for audio input, in Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_sample_rate: Option<u32>,
    /// Audio container formats accepted (`wav`, `flac`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_audio_formats: Vec<String>,
    /// Width of the vision encoder's output, for multimodal models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision_encoder_dim: Option<u32>,
    /// Embedding width, for embedding models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_dim: Option<u32>,
    /// Largest batch the model accepts in one `run`; the host splits larger batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_size: Option<u32>,
    /// The batch size the model works best with, used when the user gives no `--batch-size`
    /// (an API model that runs many requests at once wants large batches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_batch_size: Option<u32>,
    /// Configuration keys that cannot change an answer (timeouts, concurrency, thread counts):
    /// the host leaves them out of cache keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_neutral_config: Vec<String>,
    /// Whether the model must see `expected_output` (e.g. an oracle baseline). The host withholds
    /// it otherwise.
    #[serde(default)]
    pub wants_expected_output: bool,
    /// Fields this version of the schema does not know, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ModelMeta {
    /// Metadata with the given name and type and every other field at its default.
    pub fn new(name: impl Into<String>, model_type: ModelType) -> Self {
        ModelMeta {
            name: name.into(),
            model_type,
            description: None,
            modalities: default_modalities(),
            framework: Vec::new(),
            loader_kwargs: serde_json::Map::new(),
            n_parameters: None,
            memory_usage_mb: None,
            languages: default_languages(),
            version: None,
            reference: None,
            revision: None,
            release_date: None,
            license: None,
            open_weights: None,
            audio_sample_rate: None,
            supported_audio_formats: Vec::new(),
            vision_encoder_dim: None,
            embed_dim: None,
            max_batch_size: None,
            preferred_batch_size: None,
            cache_neutral_config: Vec::new(),
            wants_expected_output: false,
            extra: serde_json::Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_json_gets_defaults_and_keeps_unknown_fields() {
        let meta: ModelMeta =
            serde_json::from_str(r#"{"name":"org/m","model_type":"embedding","future_field":{"x":1}}"#)
                .unwrap();
        assert_eq!(meta.modalities, vec![Modality::Text]);
        assert_eq!(meta.languages, vec!["eng-Latn".to_owned()]);
        assert_eq!(meta.extra["future_field"]["x"], 1);
        let back = serde_json::to_value(&meta).unwrap();
        assert_eq!(back["future_field"]["x"], 1);
    }

    #[test]
    fn unknown_model_type_is_rejected() {
        let result: Result<ModelMeta, _> =
            serde_json::from_str(r#"{"name":"org/m","model_type":"telepathy"}"#);
        assert!(result.unwrap_err().to_string().contains("telepathy"));
    }
}
