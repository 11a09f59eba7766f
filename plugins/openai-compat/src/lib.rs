//! Hosted chat models and any OpenAI-compatible server, over HTTP, as a karma-host plugin.
//!
//! OpenAI (GPT-4o, GPT-4.1, o3, GPT-5), Anthropic (Claude 4.5) and Gemini 2.5 by name, plus
//! `openai-compat/chat` and `anthropic/messages` for any server speaking either protocol (vLLM,
//! llama.cpp, Ollama, LiteLLM, a proxy). The data path: [`prompt`] turns an item into a chat,
//! [`protocol`] renders it as a request body, [`pool`] sends a batch's requests concurrently
//! under the [`aimd`] concurrency limit, [`client`] retries each call per [`retry`], and
//! [`model`] reports each answer with its details (finish reason, tokens, [`prices`]-based cost).
//! The key is read from the environment only, and never printed ([`key`]).

pub mod aimd;
pub mod catalog;
pub mod client;
pub mod config;
pub mod key;
pub mod model;
pub mod pool;
pub mod prices;
pub mod prompt;
pub mod protocol;
pub mod retry;

pub use model::ApiModel;

use karma_plugin_api::abi::ModelMeta;

/// A metadata function per registered model, as `export_plugin!` wants them.
macro_rules! metadata {
    ($($function:ident => $name:literal),+ $(,)?) => {
        $(fn $function() -> ModelMeta { catalog::meta_of($name) })+
    };
}

metadata! {
    gpt_4o => "gpt-4o",
    gpt_4o_mini => "gpt-4o-mini",
    gpt_4_1 => "gpt-4.1",
    gpt_4_1_mini => "gpt-4.1-mini",
    o3 => "o3",
    gpt_5 => "gpt-5",
    gpt_5_mini => "gpt-5-mini",
    gpt_5_nano => "gpt-5-nano",
    claude_sonnet_4_5 => "claude-sonnet-4-5",
    claude_haiku_4_5 => "claude-haiku-4-5",
    gemini_2_5_flash => "gemini-2.5-flash",
    gemini_2_5_pro => "gemini-2.5-pro",
    openai_compat_chat => "openai-compat/chat",
    anthropic_messages => "anthropic/messages",
}

karma_plugin_api::export_plugin! {
    ApiModel => gpt_4o,
    ApiModel => gpt_4o_mini,
    ApiModel => gpt_4_1,
    ApiModel => gpt_4_1_mini,
    ApiModel => o3,
    ApiModel => gpt_5,
    ApiModel => gpt_5_mini,
    ApiModel => gpt_5_nano,
    ApiModel => claude_sonnet_4_5,
    ApiModel => claude_haiku_4_5,
    ApiModel => gemini_2_5_flash,
    ApiModel => gemini_2_5_pro,
    ApiModel => openai_compat_chat,
    ApiModel => anthropic_messages,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_catalog_entry_is_exported() {
        assert_eq!(super::catalog::ENTRIES.len(), 14, "update the export list with the catalog");
    }
}
