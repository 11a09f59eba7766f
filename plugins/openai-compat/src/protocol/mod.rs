//! The two wire protocols: request bodies and headers from a [`Prompt`], and answers from
//! response bodies.

pub mod anthropic;
pub mod openai;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::{catalog::Protocol, config::Settings, prompt::Prompt};

/// What a successful response says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// As the API says it (`stop`, `length`, `content_filter`, ...), Anthropic's mapped to
    /// OpenAI's words.
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Hidden reasoning tokens, counted in `completion_tokens`.
    pub reasoning_tokens: Option<u64>,
}

/// The JSON request body for `prompt`, with `extra_body` merged over it.
pub fn body(settings: &Settings, prompt: &Prompt<'_>) -> Value {
    let mut body = match settings.protocol {
        Protocol::OpenAi => openai::body(settings, prompt),
        Protocol::Anthropic => anthropic::body(settings, prompt),
    };
    if let Value::Object(map) = &mut body {
        for (key, value) in &settings.extra_body {
            map.insert(key.clone(), value.clone());
        }
    }
    body
}

/// The headers of every request (the key's header included).
pub fn headers(settings: &Settings) -> Vec<(String, String)> {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    match settings.protocol {
        Protocol::OpenAi => {
            if let Some(key) = &settings.key {
                headers.push(("authorization".to_owned(), format!("Bearer {}", key.expose())));
            }
        }
        Protocol::Anthropic => {
            headers.push(("anthropic-version".to_owned(), anthropic::VERSION.to_owned()));
            if let Some(key) = &settings.key {
                headers.push(("x-api-key".to_owned(), key.expose().to_owned()));
            }
        }
    }
    headers.extend(settings.extra_headers.iter().cloned());
    headers
}

/// The answer in a 200 response body, or what is wrong with it.
pub fn parse(protocol: Protocol, body: &[u8]) -> Result<Answer, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("the response is not JSON ({error})"))?;
    if let Some(message) = error_in(&value) {
        return Err(format!("the response is an error: {message}"));
    }
    match protocol {
        Protocol::OpenAi => openai::parse(&value),
        Protocol::Anthropic => anthropic::parse(&value),
    }
}

/// The message of an error body (`{"error": {"message": ...}}` in both protocols, sometimes in
/// a list), else the body's text; at most `limit` characters.
pub fn error_message(body: &[u8], limit: usize) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(value) => error_in(&value).unwrap_or_else(|| value.to_string()),
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    truncate(&text, limit)
}

fn error_in(value: &Value) -> Option<String> {
    let value = match value {
        Value::Array(list) => list.first()?,
        other => other,
    };
    match value.get("error")? {
        Value::String(message) => Some(message.clone()),
        Value::Object(error) => Some(match error.get("message") {
            Some(Value::String(message)) => message.clone(),
            _ => Value::Object(error.clone()).to_string(),
        }),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `text` cut to `limit` characters, marked with an ellipsis when cut.
pub fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `data:<type>;base64,<bytes>`.
fn data_url(media_type: &str, data: &[u8]) -> String {
    let mut url = format!("data:{media_type};base64,");
    base64::engine::general_purpose::STANDARD.encode_string(data, &mut url);
    url
}

fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn count(value: &Value, key: &str) -> Option<u64> {
    value.get(key).and_then(Value::as_u64)
}

fn object(entries: Vec<(&str, Value)>) -> Value {
    Value::Object(entries.into_iter().map(|(key, value)| (key.to_owned(), value)).collect::<Map<_, _>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_found_in_both_shapes_and_cut() {
        let openai = br#"{"error": {"message": "bad model", "type": "invalid_request_error"}}"#;
        assert_eq!(error_message(openai, 100), "bad model");
        let anthropic =
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}}"#;
        assert_eq!(error_message(anthropic, 100), "max_tokens: required");
        let gemini = br#"[{"error": {"code": 400, "message": "API key not valid"}}]"#;
        assert_eq!(error_message(gemini, 100), "API key not valid");
        assert_eq!(error_message(b"<html>gateway</html>", 8), "<html>ga…");
    }

    #[test]
    fn a_200_with_an_error_object_or_bad_json_is_malformed() {
        assert!(parse(Protocol::OpenAi, b"{\"choices\": [").unwrap_err().contains("not JSON"));
        let error = parse(Protocol::OpenAi, br#"{"error": {"message": "overloaded"}}"#).unwrap_err();
        assert!(error.contains("overloaded"), "{error}");
    }
}
