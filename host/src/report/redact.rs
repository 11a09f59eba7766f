//! Secrets never reach an output: values under keys that name a credential, and values that look
//! like one, are replaced by `***` in results, samples, dry-run output, logs and error messages.
//!
//! A key names a credential when one of its words is a secret word. Words come from splitting on
//! `_`, `-`, `.` and camelCase, lowercased: `accessToken` is `access token`, `OPENAI_API_KEY` is
//! `openai api key`. Whole words only: `max_tokens` and `author` stay. A key ending in `env`
//! (`api_key_env`) names an environment variable, not its value, and stays visible.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

const SECRET_WORDS: [&str; 15] = [
    "key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "authorization",
    "bearer",
    "credential",
    "credentials",
    "jwt",
    "cookie",
    "passphrase",
];

/// Value prefixes of common credentials: HTTP bearer tokens, OpenAI-style keys, Hugging Face
/// tokens.
const SECRET_PREFIXES: [&str; 3] = ["Bearer ", "sk-", "hf_"];

const MASK: &str = "***";

/// The words of a key name: split on `_`, `-`, `.`, spaces and camelCase (`APIKey` is `api key`),
/// lowercased.
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    for part in key.split(['_', '-', '.', ' ']).filter(|part| !part.is_empty()) {
        let chars: Vec<char> = part.chars().collect();
        let mut current = String::new();
        for (index, &character) in chars.iter().enumerate() {
            let previous = index.checked_sub(1).map(|before| chars[before]);
            let next = chars.get(index + 1);
            let boundary = character.is_uppercase()
                && previous.is_some_and(|previous| {
                    previous.is_lowercase()
                        || previous.is_ascii_digit()
                        || (previous.is_uppercase() && next.is_some_and(|next| next.is_lowercase()))
                });
            if boundary && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            current.extend(character.to_lowercase());
        }
        if !current.is_empty() {
            words.push(current);
        }
    }
    words
}

/// Whether a key names a credential (see the module docs).
pub fn is_secret_key(key: &str) -> bool {
    let words = words(key);
    if words.last().is_some_and(|last| last == "env") {
        return false;
    }
    words.iter().any(|word| SECRET_WORDS.contains(&word.as_str()))
}

fn looks_like_secret(text: &str) -> bool {
    SECRET_PREFIXES.iter().any(|prefix| text.starts_with(prefix))
}

/// A copy of `value` with every secret key's value (except null) and every credential-looking
/// string replaced by `"***"`, at any depth.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = if is_secret_key(key) && !value.is_null() {
                        Value::String(MASK.into())
                    } else {
                        redact(value)
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(text) if looks_like_secret(text) => Value::String(MASK.into()),
        other => other.clone(),
    }
}

/// Credential-looking tokens in free text (a Bearer header, an `sk-` key, an `hf_` token).
static SECRET_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\bBearer\s+[A-Za-z0-9._~+/=-]{6,}|\bsk-[A-Za-z0-9_-]{8,}|\bhf_[A-Za-z0-9]{8,})")
        .expect("valid regex")
});

/// `key = "value"`, `"key": "value"` or `key: 'value'` in free text (a TOML or JSON snippet
/// quoted by a parser's error).
static QUOTED_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?P<key>[A-Za-z][A-Za-z0-9_.-]*)(?P<between>"?\s*[=:]\s*)(?P<quote>["'])(?P<value>[^"'\n]*)["']"#,
    )
    .expect("valid regex")
});

/// `text` with credentials masked: values assigned to secret keys and credential-looking tokens.
/// For messages and log lines, whose structure is unknown.
pub fn redact_text(text: &str) -> String {
    let assigned = QUOTED_ASSIGNMENT.replace_all(text, |captures: &Captures<'_>| {
        if is_secret_key(&captures["key"]) && !captures["value"].is_empty() {
            format!("{}{}{q}{MASK}{q}", &captures["key"], &captures["between"], q = &captures["quote"])
        } else {
            captures[0].to_owned()
        }
    });
    SECRET_TOKEN.replace_all(&assigned, MASK).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn key_spellings() {
        let secret = [
            "api_key",
            "apiKey",
            "APIKey",
            "api-key",
            "API_KEY",
            "OPENAI_API_KEY",
            "openai_key",
            "apikey",
            "key",
            "hf_token",
            "HF-Token",
            "accessToken",
            "access_token",
            "refreshToken",
            "auth",
            "Authorization",
            "auth_header",
            "bearer",
            "bearerToken",
            "client_secret",
            "clientSecret",
            "password",
            "db.password",
            "passwd",
            "pwd",
            "credential",
            "credentials",
            "awsCredentials",
            "jwt",
            "session-cookie",
            "x-api-key",
            "secretKey",
        ];
        for key in secret {
            assert!(is_secret_key(key), "{key} names a credential");
        }
        let visible = [
            "max_tokens",
            "maxTokens",
            "max_new_tokens",
            "author",
            "authors",
            "tokenizer",
            "api_key_env",
            "apiKeyEnv",
            "token_env",
            "keyboard",
            "monkey",
            "temperature",
            "model_path",
            "stop",
            "passage",
        ];
        for key in visible {
            assert!(!is_secret_key(key), "{key} stays visible");
        }
    }

    #[test]
    fn nested_secrets_and_secret_looking_values_are_replaced() {
        let value = json!({
            "api_key": "x1", "nested": {"HF-Token": "hf_x", "temperature": 0.1},
            "list": [{"password": 1}, "sk-abcdef", "Bearer abc"], "max_tokens": 5,
            "headers": {"X-Custom": "Bearer abcdef"}, "token": null, "api_key_env": "OPENAI_API_KEY",
        });
        assert_eq!(
            redact(&value),
            json!({
                "api_key": "***", "nested": {"HF-Token": "***", "temperature": 0.1},
                "list": [{"password": "***"}, "***", "***"], "max_tokens": 5,
                "headers": {"X-Custom": "***"}, "token": null, "api_key_env": "OPENAI_API_KEY",
            })
        );
    }

    #[test]
    fn free_text_is_masked() {
        assert_eq!(
            redact_text(r#"api_key = "abc123" and max_tokens = "5""#),
            r#"api_key = "***" and max_tokens = "5""#
        );
        assert_eq!(redact_text(r#"{"accessToken": "xyz", "a": 1}"#), r#"{"accessToken": "***", "a": 1}"#);
        assert_eq!(
            redact_text(
                "header Authorization: Bearer abcdefgh12 then sk-proj-1234567890 and hf_abcdefghijkl"
            ),
            "header Authorization: *** then *** and ***"
        );
        // Key names alone are not secrets.
        assert_eq!(redact_text("unknown key `hf_token`"), "unknown key `hf_token`");
    }
}
