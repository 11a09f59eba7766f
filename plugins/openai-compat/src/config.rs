//! The configuration: the keys a user sets (`--model-args`), checked once at `create` and
//! resolved against the model's catalog entry into [`Settings`].
//!
//! Everything is checked without network I/O, so `--dry-run` reports a bad configuration or a
//! missing key before a single request is sent.

use std::time::Duration;

use karma_plugin_api::abi::{ErrorCode, PluginError};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    catalog::{Entry, Protocol},
    key::ApiKey,
    prices::{self, Price},
};

/// Every key a user can set. The SDK merges the catalog's `loader_kwargs` under the user's
/// keys and rejects keys this struct does not read. No `Debug`: a refused `api_key` value must
/// not be printable.
#[derive(Default, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding the key; `""` sends no key (a local server).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub stop: Option<Vec<String>>,
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    #[serde(default)]
    pub timeout_s: Option<f64>,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Attempts per call, the first included.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Seconds one call may spend on attempts and back-off together.
    #[serde(default)]
    pub retry_max_s: Option<f64>,
    #[serde(default)]
    pub extra_headers: Option<Map<String, Value>>,
    #[serde(default)]
    pub extra_body: Option<Map<String, Value>>,
    #[serde(default)]
    pub price_per_mtok: Option<Price>,
    /// Read only to refuse it with a pointer to `api_key_env`: a configuration is written to
    /// results files, a key must not be.
    #[serde(default)]
    pub api_key: Option<Value>,
}

/// What is sent with every request.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    pub max_tokens: u32,
    pub stop: Vec<String>,
    pub reasoning_effort: Option<String>,
}

/// A validated configuration. `Debug` is safe: the key prints as `<redacted>`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Registry name, for messages.
    pub model: String,
    pub protocol: Protocol,
    /// OpenAI reasoning model: `max_completion_tokens`, no sampling parameters.
    pub reasoning: bool,
    /// The configured `base_url`, without a trailing `/` (never with credentials: refused).
    pub base_url: String,
    /// The endpoint: `{base_url}/chat/completions` or `{base_url}/messages`.
    pub url: String,
    pub model_id: String,
    pub key: Option<ApiKey>,
    /// The variable the key came from (`None`: no key is sent).
    pub key_env: Option<String>,
    pub sampling: Sampling,
    pub extra_headers: Vec<(String, String)>,
    pub extra_body: Map<String, Value>,
    pub timeout: Duration,
    pub max_concurrency: usize,
    pub attempts: u32,
    pub retry_budget: Duration,
    pub price: Option<Price>,
}

const KEY_ONLY_FROM_ENV: &str = "the key is read only from the environment variable named by api_key_env";

/// The most requests one instance keeps in flight.
const MAX_CONCURRENCY: u32 = 1024;

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::INVALID_INPUT, message)
}

impl Settings {
    /// Checks `config` for the model `entry` and reads the key from the environment.
    pub fn resolve(config: Config, entry: &Entry) -> Result<Settings, PluginError> {
        let name = entry.name;
        if config.api_key.is_some() {
            return Err(invalid(format!("`{name}` does not accept `api_key`: {KEY_ONLY_FROM_ENV}")));
        }
        let required = |value: Option<String>, default: Option<&str>, key: &str| match value
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
        {
            Some(text) => Ok(text),
            None => default.map(str::to_owned).ok_or_else(|| {
                invalid(format!(
                    "`{name}` needs `{key}` in its configuration (--model-args '{{\"{key}\": ...}}')"
                ))
            }),
        };
        let base_url = required(config.base_url.clone(), entry.base_url, "base_url")?;
        let model_id =
            required(config.model_id.clone(), (!entry.is_generic()).then_some(entry.name), "model_id")?;
        let sampling = sampling(&config_sampling(&config), entry, &model_id)?;
        let url = endpoint(&base_url, entry.protocol)?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        let key_env = match config.api_key_env {
            Some(variable) if variable.trim().is_empty() => None,
            Some(variable) => Some(variable.trim().to_owned()),
            None => Some(entry.api_key_env.to_owned()),
        };
        let timeout_s = positive(config.timeout_s.unwrap_or(f64::from(entry.timeout_s)), "timeout_s")?;
        let retry_max_s = config.retry_max_s.unwrap_or(f64::from(entry.retry_max_s()));
        if !(retry_max_s.is_finite() && retry_max_s >= 0.0) {
            return Err(invalid(format!(
                "`retry_max_s` must be a number of seconds >= 0, got {retry_max_s}"
            )));
        }
        let max_concurrency = config.max_concurrency.unwrap_or(32);
        if !(1..=MAX_CONCURRENCY).contains(&max_concurrency) {
            return Err(invalid(format!(
                "`max_concurrency` must be from 1 to {MAX_CONCURRENCY}, got {max_concurrency}"
            )));
        }
        let attempts = config.retries.unwrap_or(8);
        if attempts == 0 {
            return Err(invalid("`retries` counts attempts, the first included: it must be at least 1"));
        }
        let extra_headers = headers(config.extra_headers.unwrap_or_default())?;
        if let Some(price) = &config.price_per_mtok {
            if ![price.input, price.output].iter().all(|value| value.is_finite() && *value >= 0.0) {
                return Err(invalid("`price_per_mtok` must hold prices >= 0 in USD per million tokens"));
            }
        }
        let price =
            config.price_per_mtok.or_else(|| prices::list_price(name).filter(|_| !entry.is_generic()));
        // Last: a configuration mistake is reported before a missing key.
        let key = key_env.as_deref().map(ApiKey::from_env).transpose()?;
        Ok(Settings {
            model: name.to_owned(),
            protocol: entry.protocol,
            reasoning: entry.reasoning,
            base_url,
            url,
            model_id,
            key,
            key_env,
            sampling,
            extra_headers,
            extra_body: config.extra_body.unwrap_or_default(),
            timeout: Duration::from_secs_f64(timeout_s),
            max_concurrency: max_concurrency as usize,
            attempts,
            retry_budget: Duration::from_secs_f64(retry_max_s.min(86_400.0)),
            price,
        })
    }
}

fn config_sampling(config: &Config) -> Sampling {
    Sampling {
        temperature: config.temperature,
        top_p: config.top_p,
        seed: config.seed,
        max_tokens: config.max_tokens.unwrap_or(0),
        stop: config.stop.clone().unwrap_or_default(),
        reasoning_effort: config.reasoning_effort.clone(),
    }
}

/// The generation parameters, refusing those the model's API does not take (the API would
/// answer every item with HTTP 400).
fn sampling(given: &Sampling, entry: &Entry, model_id: &str) -> Result<Sampling, PluginError> {
    let name = entry.name;
    if !entry.takes_sampling() {
        let set: Vec<&str> = [
            ("temperature", given.temperature.is_some()),
            ("top_p", given.top_p.is_some()),
            ("seed", given.seed.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        if !set.is_empty() {
            return Err(invalid(format!(
                "`{name}` is a reasoning model: its API refuses sampling parameters ({}); remove them",
                set.join(", ")
            )));
        }
    }
    if given.seed.is_some() && !entry.takes_seed() {
        return Err(invalid(format!("`{name}` does not take `seed`: the Anthropic API has no seed")));
    }
    if given.reasoning_effort.is_some() && !entry.effort {
        return Err(invalid(format!("`{name}` does not take `reasoning_effort`")));
    }
    if let Some(effort) = &given.reasoning_effort {
        if effort.trim().is_empty() {
            return Err(invalid("`reasoning_effort` must be a level such as low, medium or high"));
        }
    }
    if let Some(temperature) = given.temperature {
        let max = entry.max_temperature();
        if !(0.0..=max).contains(&temperature) {
            let api = match entry.protocol {
                Protocol::OpenAi => "",
                Protocol::Anthropic => " (the Anthropic API's range)",
            };
            return Err(invalid(format!("`temperature` must be from 0 to {max}{api}, got {temperature}")));
        }
    }
    if let Some(top_p) = given.top_p {
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(invalid(format!("`top_p` must be above 0 and at most 1, got {top_p}")));
        }
    }
    if given.temperature.is_some() && given.top_p.is_some() && entry.sampling_exclusive(model_id) {
        return Err(invalid(format!(
            "`{name}` (`{model_id}`) takes `temperature` or `top_p`, not both: the Anthropic API refuses \
             the two together for Claude 4.5 models; to sample with `top_p`, set \"temperature\": null \
             (it defaults to 0.0)"
        )));
    }
    let max_tokens = if given.max_tokens == 0 { entry.max_tokens } else { given.max_tokens };
    if given.stop.iter().any(String::is_empty) {
        return Err(invalid("`stop` must not contain an empty string"));
    }
    Ok(Sampling { max_tokens, ..given.clone() })
}

fn positive(value: f64, key: &str) -> Result<f64, PluginError> {
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(value)
    } else {
        Err(invalid(format!("`{key}` must be a number of seconds above 0 (at most a day), got {value}")))
    }
}

/// `{base_url}/chat/completions` or `{base_url}/messages`; a base URL that already names the
/// endpoint is taken as is.
///
/// A base URL with credentials (`https://user:token@host/v1`) or a query string (`?key=...`)
/// is refused, without echoing it: it would reach error messages and the results' manifest.
fn endpoint(base_url: &str, protocol: Protocol) -> Result<String, PluginError> {
    let after_scheme = base_url.find("://").map_or(base_url, |at| &base_url[at + 3..]);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(invalid(format!(
            "`base_url` must not carry credentials (`user:password@` before the host): {KEY_ONLY_FROM_ENV}, \
             and the base_url is written to results files"
        )));
    }
    if base_url.contains('?') {
        return Err(invalid(format!(
            "`base_url` must not have a query string (`?...`): query parameters are not supported; \
             {KEY_ONLY_FROM_ENV}"
        )));
    }
    if base_url.contains('#') {
        return Err(invalid("`base_url` must not have a fragment (`#...`)"));
    }
    let lower = base_url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(invalid(format!("`base_url` must start with http:// or https://, got `{base_url}`")));
    }
    let path = match protocol {
        Protocol::OpenAi => "/chat/completions",
        Protocol::Anthropic => "/messages",
    };
    let base = base_url.trim_end_matches('/');
    let url = if base.ends_with(path) { base.to_owned() } else { format!("{base}{path}") };
    match url.parse::<ureq::http::Uri>() {
        Ok(uri) if uri.host().is_some_and(|host| !host.is_empty()) => Ok(url),
        Ok(_) => Err(invalid(format!("`base_url` has no host: `{base_url}`"))),
        Err(error) => Err(invalid(format!("`base_url` is not a valid URL (`{base_url}`): {error}"))),
    }
}

/// Headers that would carry a credential: refused, the key comes only from the environment.
const CREDENTIAL_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"];

fn headers(given: Map<String, Value>) -> Result<Vec<(String, String)>, PluginError> {
    given
        .into_iter()
        .map(|(name, value)| {
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
            if !valid_name {
                return Err(invalid(format!("`extra_headers`: `{name}` is not a valid header name")));
            }
            if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(invalid(format!("`extra_headers` must not set `{name}`: {KEY_ONLY_FROM_ENV}")));
            }
            match value {
                Value::String(text) if !text.contains(['\r', '\n']) => Ok((name, text)),
                _ => {
                    Err(invalid(format!("`extra_headers`: the value of `{name}` must be a one-line string")))
                }
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
