//! The models this plugin registers: which protocol each speaks, where, with which key, and
//! which generation parameters the API accepts.

use karma_plugin_api::abi::{Modality, ModelMeta, ModelType};
use serde_json::{json, Value};

/// The wire protocol of a model's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI Chat Completions (`POST {base_url}/chat/completions`), also spoken by Gemini's
    /// compatibility endpoint, vLLM, llama.cpp, Ollama, LiteLLM, ...
    OpenAi,
    /// Anthropic Messages (`POST {base_url}/messages`).
    Anthropic,
}

/// One registered model.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Registry name, also the default `model_id`.
    pub name: &'static str,
    pub protocol: Protocol,
    pub description: &'static str,
    /// `None` for the generic models: the user must give one.
    pub base_url: Option<&'static str>,
    pub api_key_env: &'static str,
    /// OpenAI reasoning models (o-series, GPT-5): they take `max_completion_tokens` and refuse
    /// the sampling parameters `temperature`, `top_p` and `seed`.
    pub reasoning: bool,
    /// Whether the API takes `reasoning_effort`.
    pub effort: bool,
    /// Default `max_tokens`. Reasoning and thinking models count hidden reasoning in this limit,
    /// so theirs is generous: tokens are billed as generated, the cap only stops a runaway, and
    /// a cut answer is flagged `truncated`.
    pub max_tokens: u32,
    /// Default `timeout_s`: seconds one HTTP attempt may take. Models that may think through
    /// [`REASONING_TOKENS`] before answering get [`REASONING_TIMEOUT_S`].
    pub timeout_s: u32,
    pub release_date: Option<&'static str>,
    pub reference: Option<&'static str>,
}

impl Entry {
    /// A generic model: `base_url` and `model_id` come from the configuration.
    pub fn is_generic(&self) -> bool {
        self.base_url.is_none()
    }

    /// Whether the API takes `temperature`, `top_p` and `seed`.
    pub fn takes_sampling(&self) -> bool {
        !self.reasoning
    }

    /// Whether the API takes `seed` (Anthropic's does not).
    pub fn takes_seed(&self) -> bool {
        self.takes_sampling() && self.protocol == Protocol::OpenAi
    }

    /// Default `retry_max_s`: twice `timeout_s`, so an attempt that timed out leaves room for
    /// another one (the budget is checked between attempts, never cuts one short).
    pub fn retry_max_s(&self) -> u32 {
        self.timeout_s.saturating_mul(2)
    }

    /// The highest `temperature` the API accepts: 2 for OpenAI's, 1 for Anthropic's.
    pub fn max_temperature(&self) -> f64 {
        match self.protocol {
            Protocol::OpenAi => 2.0,
            Protocol::Anthropic => 1.0,
        }
    }

    /// Whether the API refuses `temperature` and `top_p` set together: Claude 4.5 models (by
    /// name, or a generic Anthropic model whose `model_id` names one).
    pub fn sampling_exclusive(&self, model_id: &str) -> bool {
        if self.protocol != Protocol::Anthropic {
            return false;
        }
        let id = if self.is_generic() { model_id.to_ascii_lowercase() } else { self.name.to_owned() };
        id.contains("claude-") && (id.contains("-4-5") || id.contains("-4.5"))
    }
}

const OPENAI: &str = "https://api.openai.com/v1";
const ANTHROPIC: &str = "https://api.anthropic.com/v1";
const GEMINI: &str = "https://generativelanguage.googleapis.com/v1beta/openai";

/// Default `max_tokens` for chat answers.
const CHAT_TOKENS: u32 = 1024;
/// Default `max_tokens` for models whose hidden reasoning counts in the limit.
pub const REASONING_TOKENS: u32 = 16384;
/// Default `timeout_s` for chat answers.
pub const CHAT_TIMEOUT_S: u32 = 120;
/// Default `timeout_s` for models that may think through [`REASONING_TOKENS`] first: at a few
/// dozen tokens per second that takes minutes.
pub const REASONING_TIMEOUT_S: u32 = 600;

const fn openai_chat(name: &'static str, description: &'static str, date: &'static str) -> Entry {
    Entry {
        name,
        protocol: Protocol::OpenAi,
        description,
        base_url: Some(OPENAI),
        api_key_env: "OPENAI_API_KEY",
        reasoning: false,
        effort: false,
        max_tokens: CHAT_TOKENS,
        timeout_s: CHAT_TIMEOUT_S,
        release_date: Some(date),
        reference: Some("https://platform.openai.com/docs/models"),
    }
}

const fn openai_reasoning(name: &'static str, description: &'static str, date: &'static str) -> Entry {
    Entry {
        reasoning: true,
        effort: true,
        max_tokens: REASONING_TOKENS,
        timeout_s: REASONING_TIMEOUT_S,
        ..openai_chat(name, description, date)
    }
}

const fn anthropic(name: &'static str, description: &'static str, date: &'static str) -> Entry {
    Entry {
        name,
        protocol: Protocol::Anthropic,
        description,
        base_url: Some(ANTHROPIC),
        api_key_env: "ANTHROPIC_API_KEY",
        reasoning: false,
        effort: false,
        max_tokens: CHAT_TOKENS,
        timeout_s: CHAT_TIMEOUT_S,
        release_date: Some(date),
        reference: Some("https://docs.anthropic.com/en/docs/about-claude/models/overview"),
    }
}

const fn gemini(name: &'static str, description: &'static str, date: &'static str) -> Entry {
    Entry {
        name,
        protocol: Protocol::OpenAi,
        description,
        base_url: Some(GEMINI),
        api_key_env: "GEMINI_API_KEY",
        reasoning: false,
        // Gemini 2.5 always thinks; its thinking tokens count in max_tokens.
        effort: true,
        max_tokens: REASONING_TOKENS,
        timeout_s: REASONING_TIMEOUT_S,
        release_date: Some(date),
        reference: Some("https://ai.google.dev/gemini-api/docs/openai"),
    }
}

/// Every registered model.
pub const ENTRIES: &[Entry] = &[
    openai_chat("gpt-4o", "OpenAI GPT-4o (Chat Completions)", "2024-05-13"),
    openai_chat("gpt-4o-mini", "OpenAI GPT-4o mini (Chat Completions)", "2024-07-18"),
    openai_chat("gpt-4.1", "OpenAI GPT-4.1 (Chat Completions)", "2025-04-14"),
    openai_chat("gpt-4.1-mini", "OpenAI GPT-4.1 mini (Chat Completions)", "2025-04-14"),
    openai_reasoning("o3", "OpenAI o3 reasoning model (Chat Completions)", "2025-04-16"),
    openai_reasoning("gpt-5", "OpenAI GPT-5 reasoning model (Chat Completions)", "2025-08-07"),
    openai_reasoning("gpt-5-mini", "OpenAI GPT-5 mini reasoning model (Chat Completions)", "2025-08-07"),
    openai_reasoning("gpt-5-nano", "OpenAI GPT-5 nano reasoning model (Chat Completions)", "2025-08-07"),
    anthropic("claude-sonnet-4-5", "Anthropic Claude Sonnet 4.5 (Messages API)", "2025-09-29"),
    anthropic("claude-haiku-4-5", "Anthropic Claude Haiku 4.5 (Messages API)", "2025-10-15"),
    gemini("gemini-2.5-flash", "Google Gemini 2.5 Flash (OpenAI-compatible endpoint)", "2025-06-17"),
    gemini("gemini-2.5-pro", "Google Gemini 2.5 Pro (OpenAI-compatible endpoint)", "2025-06-17"),
    Entry {
        name: "openai-compat/chat",
        protocol: Protocol::OpenAi,
        description: "Any OpenAI-compatible Chat Completions server (vLLM, llama.cpp, Ollama, LiteLLM, \
                      ...): set base_url and model_id; api_key_env \"\" sends no key",
        base_url: None,
        api_key_env: "OPENAI_API_KEY",
        reasoning: false,
        effort: true,
        max_tokens: CHAT_TOKENS,
        timeout_s: CHAT_TIMEOUT_S,
        release_date: None,
        reference: None,
    },
    Entry {
        name: "anthropic/messages",
        protocol: Protocol::Anthropic,
        description: "Any Anthropic Messages API server: set base_url and model_id; api_key_env \"\" \
                      sends no key",
        base_url: None,
        api_key_env: "ANTHROPIC_API_KEY",
        reasoning: false,
        effort: false,
        max_tokens: CHAT_TOKENS,
        timeout_s: CHAT_TIMEOUT_S,
        release_date: None,
        reference: None,
    },
];

/// The entry registered as `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|entry| entry.name == name)
}

/// Configuration keys that cannot change an answer; the host leaves them out of cache keys.
/// Not `extra_headers`: a header can change the answer (`anthropic-beta`, a gateway's routing
/// header).
pub const CACHE_NEUTRAL_CONFIG: &[&str] =
    &["timeout_s", "max_concurrency", "retries", "retry_max_s", "api_key_env", "price_per_mtok"];

/// Items per `run` the plugin wants: enough to keep `max_concurrency` requests in flight
/// through a batch, few enough that one batch's results are committed to the cache often.
pub const PREFERRED_BATCH_SIZE: u32 = 256;

/// The defaults of every key this entry accepts (its `loader_kwargs`).
fn loader_kwargs(entry: &Entry) -> serde_json::Map<String, Value> {
    let mut kwargs = json!({
        "base_url": entry.base_url,
        "api_key_env": entry.api_key_env,
        "model_id": if entry.is_generic() { None } else { Some(entry.name) },
        "max_tokens": entry.max_tokens,
        "stop": [],
        "timeout_s": entry.timeout_s,
        "max_concurrency": 32,
        "retries": 8,
        "retry_max_s": entry.retry_max_s(),
        "extra_headers": {},
        "extra_body": {},
        "price_per_mtok": null,
    });
    if entry.takes_sampling() {
        kwargs["temperature"] = json!(0.0);
        kwargs["top_p"] = Value::Null;
    }
    if entry.takes_seed() {
        kwargs["seed"] = Value::Null;
    }
    if entry.effort {
        kwargs["reasoning_effort"] = Value::Null;
    }
    match kwargs {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The metadata of `entry`.
pub fn meta(entry: &Entry) -> ModelMeta {
    let mut meta = ModelMeta::new(entry.name, ModelType::TextGeneration);
    meta.description = Some(entry.description.to_owned());
    meta.modalities = vec![Modality::Text, Modality::Image];
    meta.framework = vec!["HTTP".to_owned()];
    meta.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    meta.languages = vec!["mul".to_owned()];
    if !entry.is_generic() {
        meta.open_weights = Some(false);
        meta.license = Some("proprietary (API terms of service)".to_owned());
    }
    meta.release_date = entry.release_date.map(str::to_owned);
    meta.reference = entry.reference.map(str::to_owned);
    meta.loader_kwargs = loader_kwargs(entry);
    meta.preferred_batch_size = Some(PREFERRED_BATCH_SIZE);
    meta.cache_neutral_config = CACHE_NEUTRAL_CONFIG.iter().map(|key| (*key).to_owned()).collect();
    meta
}

/// The metadata of the model registered as `name` (for the export list and the library API).
pub fn meta_of(name: &str) -> ModelMeta {
    match entry(name) {
        Some(entry) => meta(entry),
        None => ModelMeta::new(name, ModelType::TextGeneration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_metadata_is_complete() {
        for (index, entry) in ENTRIES.iter().enumerate() {
            assert!(ENTRIES[..index].iter().all(|other| other.name != entry.name), "{}", entry.name);
            let meta = meta(entry);
            assert_eq!(meta.preferred_batch_size, Some(256));
            assert_eq!(meta.cache_neutral_config.len(), CACHE_NEUTRAL_CONFIG.len());
            assert_eq!(meta.loader_kwargs["model_id"].is_null(), entry.is_generic());
            assert_eq!(meta.loader_kwargs.contains_key("temperature"), !entry.reasoning, "{}", entry.name);
        }
        assert_eq!(ENTRIES.len(), 14);
    }

    #[test]
    fn reasoning_models_get_room_to_think() {
        let o3 = meta_of("o3");
        assert_eq!(o3.loader_kwargs["max_tokens"], 16384);
        assert!(!o3.loader_kwargs.contains_key("seed"));
        assert_eq!(meta_of("gpt-4o-mini").loader_kwargs["max_tokens"], 1024);
        assert!(!meta_of("claude-haiku-4-5").loader_kwargs.contains_key("seed"));
    }

    #[test]
    fn models_that_think_get_long_timeouts_and_every_retry_budget_outlasts_an_attempt() {
        for entry in ENTRIES {
            let kwargs = meta(entry).loader_kwargs;
            let timeout = kwargs["timeout_s"].as_u64().unwrap();
            let expected = if entry.max_tokens == REASONING_TOKENS { 600 } else { 120 };
            assert_eq!(timeout, expected, "{}", entry.name);
            let budget = kwargs["retry_max_s"].as_u64().unwrap();
            assert!(budget > timeout, "{}: retry_max_s {budget} <= timeout_s {timeout}", entry.name);
        }
        for name in ["o3", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gemini-2.5-flash", "gemini-2.5-pro"] {
            assert_eq!(meta_of(name).loader_kwargs["timeout_s"], 600, "{name}");
        }
        assert_eq!(meta_of("gpt-4o").loader_kwargs["retry_max_s"], 240);
    }

    #[test]
    fn extra_headers_are_part_of_the_cache_key() {
        assert!(!CACHE_NEUTRAL_CONFIG.contains(&"extra_headers"));
        let neutral = meta_of("claude-sonnet-4-5").cache_neutral_config;
        assert!(neutral.iter().all(|key| key != "extra_headers"), "{neutral:?}");
        for key in ["timeout_s", "max_concurrency", "retries", "retry_max_s", "api_key_env", "price_per_mtok"]
        {
            assert!(neutral.iter().any(|neutral| neutral == key), "{key}");
        }
    }

    #[test]
    fn anthropic_limits_follow_the_protocol_and_the_model() {
        let sonnet = entry("claude-sonnet-4-5").unwrap();
        let generic = entry("anthropic/messages").unwrap();
        assert_eq!((sonnet.max_temperature(), entry("gpt-4o").unwrap().max_temperature()), (1.0, 2.0));
        assert!(
            sonnet.sampling_exclusive("ignored") && entry("claude-haiku-4-5").unwrap().sampling_exclusive("")
        );
        assert!(generic.sampling_exclusive("claude-sonnet-4-5-20250929"));
        assert!(!generic.sampling_exclusive("claude-3-5-haiku-latest"));
        assert!(!entry("openai-compat/chat").unwrap().sampling_exclusive("claude-sonnet-4-5"));
    }
}
