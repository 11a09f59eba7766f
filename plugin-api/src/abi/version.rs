//! Version numbers of the ABI and of this crate.

/// Major version of the karma plugin ABI. The host loads a plugin only when the plugin's major
/// equals its own; it is bumped whenever a frozen type changes.
#[cfg(not(feature = "test-different-abi"))]
pub const ABI_MAJOR: u16 = 1;
/// Major version of the karma plugin ABI (test-only build describing an incompatible ABI).
#[cfg(feature = "test-different-abi")]
pub const ABI_MAJOR: u16 = 2;

/// Minor version of the karma plugin ABI: the number of extensions defined so far. A host
/// accepts plugins of any minor within its major, older or newer, because extensions are
/// negotiated by id.
pub const ABI_MINOR: u16 = 0;

/// The ABI version as the `major.minor.0` string abi_stable records in the library header.
///
/// It deliberately differs from the crate version: abi_stable rejects a library whose minor is
/// lower than the host's, which would make every host upgrade break older plugins.
#[cfg(not(feature = "test-different-abi"))]
pub const ABI_VERSION: &str = "1.0.0";
/// The ABI version string (test-only build describing an incompatible ABI).
#[cfg(feature = "test-different-abi")]
pub const ABI_VERSION: &str = "2.0.0";

/// Version of the `karma-plugin-api` crate a plugin was compiled with (for diagnostics).
#[cfg(not(feature = "test-different-abi"))]
pub const PLUGIN_API_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Version of the `karma-plugin-api` crate (test-only build describing an incompatible ABI).
#[cfg(feature = "test-different-abi")]
pub const PLUGIN_API_VERSION: &str = "2.0.0";

/// `rustc --version` of the compiler that built this copy of the crate (and so the plugin).
pub const RUSTC_VERSION: &str = env!("KARMA_PLUGIN_API_RUSTC_VERSION");

/// The name of the symbol every plugin exports: abi_stable's library header, which leads to the
/// [`PluginRoot`](super::PluginRoot).
pub const ROOT_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(super::ROOT_SYMBOL, abi_stable::library::ROOT_MODULE_LOADER_NAME);
    }
}
