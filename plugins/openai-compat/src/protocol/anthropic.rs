//! Anthropic Messages: `POST {base_url}/messages` with `x-api-key` and `anthropic-version`.
//!
//! `max_tokens` is required, the system prompt is the top-level `system`, images are base64
//! blocks placed before the text of their turn (Anthropic's recommended order), and
//! `stop_reason` is mapped to OpenAI's words so the two protocols report alike.

use serde_json::{json, Value};

use super::{base64, count, object, Answer};
use crate::{
    config::Settings,
    prompt::{Message, Prompt, Role},
};

/// The `anthropic-version` header.
pub const VERSION: &str = "2023-06-01";

/// The request body.
pub fn body(settings: &Settings, prompt: &Prompt<'_>) -> Value {
    let sampling = &settings.sampling;
    let mut fields = vec![
        ("model", json!(settings.model_id)),
        ("max_tokens", json!(sampling.max_tokens)),
        ("messages", Value::Array(prompt.messages.iter().map(message).collect())),
    ];
    fields.extend(prompt.system_text().map(|system| ("system", json!(system))));
    fields.extend(sampling.temperature.map(|value| ("temperature", json!(value))));
    fields.extend(sampling.top_p.map(|value| ("top_p", json!(value))));
    if !sampling.stop.is_empty() {
        fields.push(("stop_sequences", json!(sampling.stop)));
    }
    object(fields)
}

fn message(message: &Message<'_>) -> Value {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    if message.images.is_empty() {
        return json!({"role": role, "content": message.text.unwrap_or_default()});
    }
    let mut blocks: Vec<Value> = message
        .images
        .iter()
        .map(|image| {
            json!({"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": base64(image.data)}})
        })
        .collect();
    if let Some(text) = message.text {
        blocks.push(json!({"type": "text", "text": text}));
    }
    json!({"role": role, "content": blocks})
}

/// `stop_reason` in OpenAI's words: `end_turn` and `stop_sequence` are `stop`, `max_tokens`
/// is `length`, `refusal` is `content_filter`; others as they are.
pub fn finish_reason(stop_reason: &str) -> &str {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "refusal" => "content_filter",
        other => other,
    }
}

/// The text blocks joined, the mapped stop reason, and the token counts (cache reads and writes
/// count as input).
pub fn parse(value: &Value) -> Result<Answer, String> {
    let content =
        value.get("content").and_then(Value::as_array).ok_or("the response has no `content` list")?;
    let text = content
        .iter()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("");
    let usage = value.get("usage").unwrap_or(&Value::Null);
    let input = ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]
        .iter()
        .filter_map(|key| count(usage, key))
        .reduce(|total, tokens| total + tokens);
    Ok(Answer {
        text,
        finish_reason: value
            .get("stop_reason")
            .and_then(Value::as_str)
            .map(|reason| finish_reason(reason).to_owned()),
        prompt_tokens: input,
        completion_tokens: count(usage, "output_tokens"),
        reasoning_tokens: None,
    })
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
