//! Callbacks the host provides to a plugin: logging and host-side extensions.

use abi_stable::{
    std_types::{ROption, RStr},
    StableAbi,
};

use super::ExtensionRef;

/// Severity of a forwarded log event (the `tracing` levels). Open set, like [`super::ErrorCode`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LogLevel(pub u8);

impl LogLevel {
    /// `tracing::Level::ERROR`.
    pub const ERROR: LogLevel = LogLevel(1);
    /// `tracing::Level::WARN`.
    pub const WARN: LogLevel = LogLevel(2);
    /// `tracing::Level::INFO`.
    pub const INFO: LogLevel = LogLevel(3);
    /// `tracing::Level::DEBUG`.
    pub const DEBUG: LogLevel = LogLevel(4);
    /// `tracing::Level::TRACE`.
    pub const TRACE: LogLevel = LogLevel(5);
}

/// Opaque host state passed back to every [`HostApi`] callback.
#[repr(C)]
#[derive(StableAbi)]
pub struct HostContext {
    _private: [u8; 0],
}

/// A pointer to the host's [`HostContext`], passed back to every callback.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct HostContextPtr(pub *const HostContext);

// The host guarantees the context is immutable, lives for the whole process and may be used
// from any thread (model instances run on host worker threads).
unsafe impl Send for HostContextPtr {}
unsafe impl Sync for HostContextPtr {}

/// The host's callback table, handed to a plugin in `create`. Frozen for the ABI major (see the
/// module docs); new host services arrive through [`HostApi::get_extension`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostApi_Ref)))]
#[sabi(missing_field(panic))]
pub struct HostApi {
    /// Host state for the callbacks; identifies the plugin the table was made for.
    pub context: HostContextPtr,
    /// Whether an event at `level` with this `target` would be recorded by the host's filter.
    /// Plugins ask before formatting, so disabled events cost nothing.
    pub log_enabled: extern "C" fn(context: HostContextPtr, level: LogLevel, target: RStr<'_>) -> bool,
    /// Records one event: the plugin-side target (module path) and the formatted message with
    /// its fields.
    pub log: extern "C" fn(context: HostContextPtr, level: LogLevel, target: RStr<'_>, message: RStr<'_>),
    /// Host-side capabilities by id; `RNone` when the host does not offer `id`.
    ///
    /// This is the last field of ABI 1: it never moves, and nothing is added below it until the
    /// ABI major changes.
    #[sabi(last_prefix_field)]
    pub get_extension: extern "C" fn(context: HostContextPtr, id: RStr<'_>) -> ROption<ExtensionRef>,
}
