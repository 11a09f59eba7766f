use serde_json::json;

use super::*;
use crate::catalog;

/// A variable no test sets.
const UNSET: &str = "KARMA_OPENAI_COMPAT_UNIT_UNSET";
/// A variable set once by [`with_key`].
const SET: &str = "KARMA_OPENAI_COMPAT_UNIT_KEY";
const SECRET: &str = "sk-unit-test-9f8e7d6c5b4a";

fn with_key() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: set once, before any test reads it, and never changed.
    ONCE.call_once(|| unsafe { std::env::set_var(SET, SECRET) });
}

fn resolve(name: &str, config: serde_json::Value) -> Result<Settings, PluginError> {
    with_key();
    let entry = catalog::entry(name).unwrap();
    let mut merged = catalog::meta(entry).loader_kwargs;
    merged.insert("api_key_env".to_owned(), json!(SET));
    if let serde_json::Value::Object(given) = config {
        merged.extend(given);
    }
    let config: Config = serde_json::from_value(serde_json::Value::Object(merged)).unwrap();
    Settings::resolve(config, entry)
}

fn message(result: Result<Settings, PluginError>) -> String {
    let error = result.unwrap_err();
    assert_eq!(error.code, ErrorCode::INVALID_INPUT, "{}", error.message);
    error.message.to_string()
}

#[test]
fn named_models_get_their_endpoint_model_id_and_price() {
    let settings = resolve("gpt-4o-mini", json!({})).unwrap();
    assert_eq!(settings.url, "https://api.openai.com/v1/chat/completions");
    assert_eq!(settings.model_id, "gpt-4o-mini");
    assert_eq!(settings.sampling.temperature, Some(0.0));
    assert_eq!(settings.sampling.max_tokens, 1024);
    assert_eq!((settings.max_concurrency, settings.attempts), (32, 8));
    assert_eq!(settings.timeout, Duration::from_secs(120));
    assert!(settings.price.is_some());
    let claude = resolve("claude-haiku-4-5", json!({"base_url": "http://127.0.0.1:9/v1/"})).unwrap();
    assert_eq!(claude.url, "http://127.0.0.1:9/v1/messages");
}

#[test]
fn generic_models_need_base_url_and_model_id() {
    let missing = message(resolve("openai-compat/chat", json!({"model_id": "m"})));
    assert!(missing.contains("`base_url`"), "{missing}");
    let missing = message(resolve("anthropic/messages", json!({"base_url": "http://localhost:8000/v1"})));
    assert!(missing.contains("`model_id`"), "{missing}");
    let settings = resolve(
        "openai-compat/chat",
        json!({"base_url": "http://localhost:8000/v1/chat/completions", "model_id": "m"}),
    )
    .unwrap();
    assert_eq!(settings.url, "http://localhost:8000/v1/chat/completions");
    assert_eq!(settings.price, None, "generic models have no list price");
    let priced = resolve(
        "openai-compat/chat",
        json!({"base_url": "http://x", "model_id": "m", "price_per_mtok": {"input": 1.0, "output": 2.0}}),
    )
    .unwrap();
    assert_eq!(priced.price, Some(Price { input: 1.0, output: 2.0 }));
    assert!(message(resolve("openai-compat/chat", json!({"base_url": "ftp://x", "model_id": "m"})))
        .contains("http://"));
}

#[test]
fn an_api_key_in_the_configuration_is_refused_without_echoing_it() {
    let refused = message(resolve("gpt-4o", json!({"api_key": SECRET})));
    assert_eq!(
        refused,
        "`gpt-4o` does not accept `api_key`: the key is read only from the environment variable named by api_key_env"
    );
    let header =
        message(resolve("gpt-4o", json!({"extra_headers": {"Authorization": format!("Bearer {SECRET}")}})));
    assert!(header.contains("api_key_env") && !header.contains(SECRET), "{header}");
}

#[test]
fn an_unset_key_variable_is_named_and_an_empty_one_means_no_key() {
    let unset = message(resolve("gpt-4o", json!({"api_key_env": UNSET})));
    assert_eq!(
        unset,
        format!("environment variable {UNSET} is not set: export it, or set api_key_env to the variable that holds the key")
    );
    let local = resolve(
        "openai-compat/chat",
        json!({"base_url": "http://127.0.0.1:8000/v1", "model_id": "m", "api_key_env": ""}),
    )
    .unwrap();
    assert_eq!((local.key, local.key_env), (None, None));
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let settings = resolve("gpt-4o", json!({})).unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains(SECRET) && debug.contains("<redacted>"), "{debug}");
    assert_eq!(settings.key.as_ref().map(ApiKey::expose), Some(SECRET));
}

#[test]
fn reasoning_models_refuse_sampling_parameters() {
    let o3 = resolve("o3", json!({"reasoning_effort": "high"})).unwrap();
    assert!(o3.reasoning);
    assert_eq!(o3.sampling.max_tokens, 16384);
    assert_eq!((o3.sampling.temperature, o3.sampling.reasoning_effort.as_deref()), (None, Some("high")));
    let refused = message(resolve("gpt-5", json!({"temperature": 0.0, "seed": 1})));
    assert!(refused.contains("reasoning model") && refused.contains("temperature, seed"), "{refused}");
    assert!(message(resolve("gpt-4o", json!({"reasoning_effort": "low"}))).contains("reasoning_effort"));
    assert!(message(resolve("claude-sonnet-4-5", json!({"seed": 3}))).contains("seed"));
}

#[test]
fn numbers_out_of_range_are_refused() {
    for (config, key) in [
        (json!({"temperature": 3.0}), "temperature"),
        (json!({"top_p": 0.0}), "top_p"),
        (json!({"timeout_s": 0}), "timeout_s"),
        (json!({"max_concurrency": 0}), "max_concurrency"),
        (json!({"retries": 0}), "retries"),
        (json!({"retry_max_s": -1}), "retry_max_s"),
        (json!({"stop": [""]}), "stop"),
        (json!({"extra_headers": {"bad header": "x"}}), "extra_headers"),
        (json!({"price_per_mtok": {"input": -1.0, "output": 1.0}}), "price_per_mtok"),
    ] {
        let refused = message(resolve("gpt-4o", config));
        assert!(refused.contains(key), "{key}: {refused}");
    }
}

#[test]
fn base_urls_with_credentials_or_a_query_are_refused_without_echoing_them() {
    for (base_url, expected) in [
        ("https://user:tok-secret-1@api.example.com/v1", "must not carry credentials"),
        ("https://tok-secret-1@api.example.com/v1", "must not carry credentials"),
        ("user:tok-secret-1@api.example.com/v1", "must not carry credentials"),
        ("https://api.example.com/v1?key=tok-secret-1", "query parameters are not supported"),
        ("https://api.example.com/v1/?api-version=tok-secret-1", "query parameters are not supported"),
        ("https://api.example.com/v1#tok-secret-1", "fragment"),
    ] {
        let refused = message(resolve("openai-compat/chat", json!({"base_url": base_url, "model_id": "m"})));
        assert!(refused.contains(expected), "{base_url}: {refused}");
        assert!(!refused.contains("tok-secret-1"), "{base_url}: {refused}");
        if expected != "fragment" {
            assert!(refused.contains("api_key_env"), "{refused}");
        }
    }
    // An `@` in the path is no userinfo.
    let path =
        resolve("openai-compat/chat", json!({"base_url": "http://127.0.0.1:8000/v1/@team", "model_id": "m"}));
    assert_eq!(path.unwrap().url, "http://127.0.0.1:8000/v1/@team/chat/completions");
    for bad in ["http:///v1", "http://exa mple.com/v1"] {
        let refused = message(resolve("openai-compat/chat", json!({"base_url": bad, "model_id": "m"})));
        assert!(refused.contains("`base_url`"), "{bad}: {refused}");
    }
    let settings =
        resolve("anthropic/messages", json!({"base_url": "http://localhost:9/v1/", "model_id": "m"}));
    assert_eq!(settings.unwrap().base_url, "http://localhost:9/v1");
}

#[test]
fn anthropic_temperature_is_at_most_1_and_claude_4_5_takes_temperature_or_top_p() {
    let hot = message(resolve("claude-sonnet-4-5", json!({"temperature": 1.5})));
    assert_eq!(hot, "`temperature` must be from 0 to 1 (the Anthropic API's range), got 1.5");
    let generic = json!({"base_url": "http://x", "model_id": "claude-3-5-haiku-latest", "temperature": 1.2});
    assert!(message(resolve("anthropic/messages", generic)).contains("from 0 to 1"));
    assert_eq!(resolve("gpt-4o", json!({"temperature": 1.5})).unwrap().sampling.temperature, Some(1.5));
    assert!(message(resolve("gpt-4o", json!({"temperature": 2.5}))).contains("from 0 to 2, got 2.5"));
    assert_eq!(
        resolve("claude-haiku-4-5", json!({"temperature": 1.0})).unwrap().sampling.temperature,
        Some(1.0)
    );

    // The default temperature (0.0) and top_p together.
    let both = message(resolve("claude-haiku-4-5", json!({"top_p": 0.9})));
    assert!(
        both.contains("`claude-haiku-4-5`")
            && both.contains("`temperature` or `top_p`, not both")
            && both.contains("\"temperature\": null"),
        "{both}"
    );
    let top_p = resolve("claude-sonnet-4-5", json!({"temperature": null, "top_p": 0.9})).unwrap();
    assert_eq!((top_p.sampling.temperature, top_p.sampling.top_p), (None, Some(0.9)));
    let generic = json!({"base_url": "http://x", "model_id": "claude-sonnet-4-5-20250929", "top_p": 0.5});
    assert!(message(resolve("anthropic/messages", generic)).contains("not both"));
    let older = json!({"base_url": "http://x", "model_id": "claude-3-7-sonnet-latest", "top_p": 0.5});
    assert!(resolve("anthropic/messages", older).is_ok(), "older Claude models take both");
    assert!(resolve("gpt-4o", json!({"top_p": 0.5})).is_ok());
}

#[test]
fn thinking_models_default_to_long_timeouts_and_budgets_that_outlast_an_attempt() {
    let o3 = resolve("o3", json!({})).unwrap();
    assert_eq!((o3.timeout, o3.retry_budget), (Duration::from_secs(600), Duration::from_secs(1200)));
    let gemini = resolve("gemini-2.5-pro", json!({})).unwrap();
    assert_eq!(gemini.timeout, Duration::from_secs(600));
    let chat = resolve("gpt-4o", json!({})).unwrap();
    assert_eq!((chat.timeout, chat.retry_budget), (Duration::from_secs(120), Duration::from_secs(240)));
    // Without the catalog's defaults merged in, the entry's apply too.
    let bare = Config { api_key_env: Some(String::new()), ..Config::default() };
    let gpt5 = Settings::resolve(bare, catalog::entry("gpt-5").unwrap()).unwrap();
    assert_eq!((gpt5.timeout, gpt5.retry_budget), (Duration::from_secs(600), Duration::from_secs(1200)));
}
