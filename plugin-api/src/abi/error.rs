//! Errors that cross the boundary.

use abi_stable::{std_types::RString, StableAbi};

/// What kind of failure a [`PluginError`] reports. An open set: unknown codes must be treated as
/// [`ErrorCode::INTERNAL`] by receivers.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// The request was malformed: unknown config key, bad value, unsupported input.
    pub const INVALID_INPUT: ErrorCode = ErrorCode(1);
    /// The model cannot do what was asked (a modality or capability it lacks).
    pub const UNSUPPORTED: ErrorCode = ErrorCode(2);
    /// Out of memory, disk, quota or similar.
    pub const RESOURCE_EXHAUSTED: ErrorCode = ErrorCode(3);
    /// A bug or unexpected state inside the plugin.
    pub const INTERNAL: ErrorCode = ErrorCode(4);
    /// The plugin panicked; the message holds the panic payload.
    pub const PANICKED: ErrorCode = ErrorCode(5);
    /// The operation was cancelled.
    pub const CANCELLED: ErrorCode = ErrorCode(6);
    /// A file, model or resource the plugin needs was not found.
    pub const NOT_FOUND: ErrorCode = ErrorCode(7);
    /// `run` was called before a successful `load`.
    pub const NOT_LOADED: ErrorCode = ErrorCode(8);
    /// A service the model calls failed and kept failing (retries exhausted, timeouts): the
    /// item is worth trying again later.
    pub const UNAVAILABLE: ErrorCode = ErrorCode(9);
    /// Credentials were refused (HTTP 401/403). Returned for a whole call: the host stops the
    /// dataset instead of failing every item one by one.
    pub const UNAUTHENTICATED: ErrorCode = ErrorCode(10);

    /// A stable lowercase name for the code, as shown to users and written to results files.
    pub fn name(self) -> &'static str {
        match self {
            Self::INVALID_INPUT => "invalid_input",
            Self::UNSUPPORTED => "unsupported",
            Self::RESOURCE_EXHAUSTED => "resource_exhausted",
            Self::INTERNAL => "internal",
            Self::PANICKED => "panicked",
            Self::CANCELLED => "cancelled",
            Self::NOT_FOUND => "not_found",
            Self::NOT_LOADED => "not_loaded",
            Self::UNAVAILABLE => "unavailable",
            Self::UNAUTHENTICATED => "unauthenticated",
            _ => "unknown",
        }
    }
}

/// An error returned by a plugin entry point, or per item inside a batch.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct PluginError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// A lowercase, human-readable message without trailing period.
    pub message: RString,
    /// Optional structured details as a JSON object, or an empty string.
    pub details_json: RString,
}

impl PluginError {
    /// An error with a code and message and no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        PluginError { code, message: RString::from(message.into()), details_json: RString::new() }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} ({})", self.message, self.code.name())
    }
}

impl std::error::Error for PluginError {}
