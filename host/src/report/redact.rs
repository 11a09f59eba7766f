//! Secrets never reach an output file: values under keys that look like credentials are
//! replaced.

use serde_json::Value;

const SECRET_WORDS: [&str; 7] =
    ["apikey", "token", "secret", "password", "passwd", "authorization", "credentials"];

/// Whether a key names a credential: one of its `_`/`-`-separated words is a secret word
/// (`hf_token`, `api-key`, `OPENAI_API_KEY`), but `max_tokens` is not.
fn is_secret(key: &str) -> bool {
    let normalised = key.to_lowercase().replace('-', "_");
    let words: Vec<&str> = normalised.split('_').collect();
    words.windows(2).any(|pair| pair == ["api", "key"])
        || words.iter().any(|word| SECRET_WORDS.contains(word) || *word == "credential")
}

/// A copy of `value` with every secret-looking key's value replaced by `"***"`.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = if is_secret(key) && !value.is_null() {
                        Value::String("***".into())
                    } else {
                        redact(value)
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_secrets_are_replaced() {
        let value = json!({"api_key": "sk-1", "nested": {"HF-Token": "hf_x", "temperature": 0.1}, "list": [{"password": 1}], "max_tokens": 5});
        assert_eq!(
            redact(&value),
            json!({"api_key": "***", "nested": {"HF-Token": "***", "temperature": 0.1}, "list": [{"password": "***"}], "max_tokens": 5})
        );
    }
}
