//! The API key, kept where it cannot leak.
//!
//! The key is read once, at `create`, from the environment variable the configuration names; it
//! is never a configuration value (configurations are written to results files and logs). The
//! newtype has no `Display`, its `Debug` prints `<redacted>`, and [`ApiKey::scrub`] removes it
//! from any text a server sends back (some APIs echo the key they refused).

use karma_plugin_api::abi::{ErrorCode, PluginError};

/// A secret API key. Only [`ApiKey::expose`] reveals it, for the request header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("<redacted>")
    }
}

impl ApiKey {
    /// Wraps a key given directly (tests, the library API).
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// Reads the key from `variable`. Unset, empty or non-UTF-8 is an `INVALID_INPUT` error
    /// naming the variable (never its value).
    pub fn from_env(variable: &str) -> Result<Self, PluginError> {
        let value = std::env::var_os(variable).unwrap_or_default();
        let key = value.to_str().map(str::trim).unwrap_or_default();
        if key.is_empty() {
            let state = match value.to_str() {
                _ if value.is_empty() => "is not set",
                Some(_) => "is blank",
                None => "is not valid UTF-8",
            };
            return Err(PluginError::new(
                ErrorCode::INVALID_INPUT,
                format!(
                    "environment variable {variable} {state}: export it, or set api_key_env to the \
                     variable that holds the key"
                ),
            ));
        }
        Ok(ApiKey(key.to_owned()))
    }

    /// The key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "<redacted>")
        }
    }
}

/// Scrubs `text` of the key, if there is one.
pub fn scrub(key: Option<&ApiKey>, text: &str) -> String {
    match key {
        Some(key) => key.scrub(text),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("sk-test-SECRET-123");
        assert_eq!(format!("{key:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(key.clone())), "Some(<redacted>)");
        assert_eq!(key.scrub("bad key sk-test-SECRET-123 given"), "bad key <redacted> given");
    }

    #[test]
    fn unset_or_empty_variable_is_named_in_the_error() {
        let error = ApiKey::from_env("KARMA_OPENAI_COMPAT_TEST_SURELY_UNSET").unwrap_err();
        assert_eq!(error.code, ErrorCode::INVALID_INPUT);
        assert_eq!(
            error.message.as_str(),
            "environment variable KARMA_OPENAI_COMPAT_TEST_SURELY_UNSET is not set: export it, or set \
             api_key_env to the variable that holds the key"
        );
    }
}
