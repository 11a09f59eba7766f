//! OpenAI Chat Completions: `POST {base_url}/chat/completions`.
//!
//! Reasoning models (o-series, GPT-5) take `max_completion_tokens` (the hidden reasoning counts
//! in it) and refuse `temperature`, `top_p` and `seed`; the configuration check already refused
//! those, so they are simply never written for them.

use serde_json::{json, Value};

use super::{count, data_url, object, Answer};
use crate::{
    config::Settings,
    prompt::{Message, Prompt, Role},
};

/// The request body.
pub fn body(settings: &Settings, prompt: &Prompt<'_>) -> Value {
    let mut messages = Vec::with_capacity(prompt.messages.len() + 1);
    if let Some(system) = prompt.system_text() {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(prompt.messages.iter().map(message));
    let sampling = &settings.sampling;
    let limit_key = if settings.reasoning { "max_completion_tokens" } else { "max_tokens" };
    let mut fields = vec![
        ("model", json!(settings.model_id)),
        ("messages", Value::Array(messages)),
        (limit_key, json!(sampling.max_tokens)),
    ];
    if !settings.reasoning {
        fields.extend(sampling.temperature.map(|value| ("temperature", json!(value))));
        fields.extend(sampling.top_p.map(|value| ("top_p", json!(value))));
        fields.extend(sampling.seed.map(|value| ("seed", json!(value))));
    }
    if !sampling.stop.is_empty() {
        fields.push(("stop", json!(sampling.stop)));
    }
    fields.extend(sampling.reasoning_effort.as_ref().map(|effort| ("reasoning_effort", json!(effort))));
    object(fields)
}

/// A turn: plain text content, or parts (text first, then images as data URLs).
fn message(message: &Message<'_>) -> Value {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    if message.images.is_empty() {
        return json!({"role": role, "content": message.text.unwrap_or_default()});
    }
    let mut parts = Vec::with_capacity(message.images.len() + 1);
    if let Some(text) = message.text {
        parts.push(json!({"type": "text", "text": text}));
    }
    for image in &message.images {
        parts
            .push(json!({"type": "image_url", "image_url": {"url": data_url(image.media_type, image.data)}}));
    }
    json!({"role": role, "content": parts})
}

/// The first choice's text (`null` content is an empty answer, e.g. cut while reasoning; a list
/// of parts is joined), finish reason and token counts.
pub fn parse(value: &Value) -> Result<Answer, String> {
    let choice = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .ok_or("the response has no `choices`")?;
    let message = choice.get("message").ok_or("the first choice has no `message`")?;
    let text = match message.get("content") {
        None | Some(Value::Null) => match message.get("refusal") {
            Some(Value::String(refusal)) => refusal.clone(),
            _ => String::new(),
        },
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        Some(other) => return Err(format!("the message content is neither text nor parts: {other}")),
    };
    let finish_reason = choice.get("finish_reason").and_then(Value::as_str).map(str::to_owned);
    let usage = value.get("usage").unwrap_or(&Value::Null);
    Ok(Answer {
        text,
        finish_reason,
        prompt_tokens: count(usage, "prompt_tokens"),
        completion_tokens: count(usage, "completion_tokens"),
        reasoning_tokens: usage
            .get("completion_tokens_details")
            .and_then(|details| count(details, "reasoning_tokens")),
    })
}

#[cfg(test)]
#[path = "openai_tests.rs"]
pub(crate) mod tests;
