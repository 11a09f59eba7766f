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

/// A whole value that is a credential: a bearer header, or an `sk-`/`hf_` key of realistic
/// length (a path such as `hf_models/llama` is not one).
fn looks_like_secret(text: &str) -> bool {
    if let Some(token) = text.strip_prefix("Bearer ") {
        return !token.trim().is_empty();
    }
    ["sk-", "hf_"].iter().any(|prefix| {
        text.strip_prefix(prefix).is_some_and(|rest| {
            rest.len() >= 16
                && rest.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
        })
    })
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

/// Credential-looking tokens in free text (a bearer header, an `sk-` key, an `hf_` token), after
/// a character that cannot be part of a word or path (`task-sk-...` is not a key).
static SECRET_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?P<before>^|[^A-Za-z0-9_/.-])(?P<token>(?i-u:bearer)\s+[A-Za-z0-9._~+/=-]{16,}|sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{16,})",
    )
    .expect("valid regex")
});

/// `key = "value"`, `"key": 'value'` (quotes paired, escapes honoured), or `key=value` unquoted
/// (as log fields print), with the colour codes a terminal log puts around the `=`.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?P<before>^|[^A-Za-z0-9_.-]|\x1b\[[0-9;]*m)(?P<key>[A-Za-z][A-Za-z0-9_.-]*)"#,
        r#"(?P<between>["']?(?:\x1b\[[0-9;]*m)*\s*(?P<separator>[=:])(?:\x1b\[[0-9;]*m)*\s*)"#,
        r#"(?:"(?P<double>(?:[^"\\\n]|\\.)*)"|'(?P<single>(?:[^'\\\n]|\\.)*)'"#,
        r#"|(?P<bare>(?:(?i-u:basic|bearer|token)\s+)?[^\s,;}"'\x1b]+))"#,
    ))
    .expect("valid regex")
});

/// `text` with credentials masked: values assigned to secret keys and credential-looking tokens.
/// For messages and log lines, whose structure is unknown.
pub fn redact_text(text: &str) -> String {
    let assigned = ASSIGNMENT.replace_all(text, |captures: &Captures<'_>| {
        let whole = captures[0].to_owned();
        if !is_secret_key(&captures["key"]) {
            return whole;
        }
        let value = if let Some(value) = captures.name("double") {
            format!("\"{}\"", if value.as_str().is_empty() { "" } else { MASK })
        } else if let Some(value) = captures.name("single") {
            format!("'{}'", if value.as_str().is_empty() { "" } else { MASK })
        } else if &captures["separator"] == "=" {
            MASK.to_owned()
        } else {
            // `key: word` in prose ("missing key: model_path") is not an assignment.
            return whole;
        };
        format!("{}{}{}{value}", &captures["before"], &captures["key"], &captures["between"])
    });
    SECRET_TOKEN
        .replace_all(&assigned, |captures: &Captures<'_>| format!("{}{MASK}", &captures["before"]))
        .into_owned()
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
            "list": [{"password": 1}, "sk-abcdefghijklmnopqr", "Bearer abc"], "max_tokens": 5,
            "headers": {"X-Custom": "Bearer abcdef"}, "token": null, "api_key_env": "OPENAI_API_KEY",
            "model_path": "hf_models/llama",
        });
        assert_eq!(
            redact(&value),
            json!({
                "api_key": "***", "nested": {"HF-Token": "***", "temperature": 0.1},
                "list": [{"password": "***"}, "***", "***"], "max_tokens": 5,
                "headers": {"X-Custom": "***"}, "token": null, "api_key_env": "OPENAI_API_KEY",
                "model_path": "hf_models/llama",
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
        assert_eq!(redact_text(r#"{"password": "it's-hunter2"}"#), r#"{"password": "***"}"#);
        assert_eq!(redact_text(r#"{"password": "a\"b"} next"#), r#"{"password": "***"} next"#);
        assert_eq!(redact_text("{'password': 'x1'}"), "{'password': '***'}");
        assert_eq!(redact_text("loading api_key=abc123 batch=1"), "loading api_key=*** batch=1");
        assert_eq!(redact_text("auth=Basic dXNlcjpwYXNz rest"), "auth=*** rest");
        assert_eq!(
            redact_text("\x1b[3mtoken\x1b[0m\x1b[2m=\x1b[0mabc123"),
            "\x1b[3mtoken\x1b[0m\x1b[2m=\x1b[0m***"
        );
        let long = "abcdefghijklmnopqrstuvwx";
        assert_eq!(
            redact_text(&format!("header Authorization: bearer {long} then sk-proj-{long} and hf_{long}")),
            "header Authorization: *** then *** and ***"
        );
        // Not secrets: key names, short words, paths, prose.
        for harmless in [
            "unknown key `hf_token`",
            "missing key: model_path",
            "/data/task-sk-medical-qa-and-more-words/x.jsonl",
            "pip install hf_transfer",
            "Bearer authentication failed",
            "hf_models/llama-3-8b-instruct-weights",
        ] {
            assert_eq!(redact_text(harmless), harmless);
        }
    }
}
