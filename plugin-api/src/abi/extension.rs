//! The growth point of a frozen ABI major: capabilities identified by versioned string ids.

use std::ffi::c_void;

use abi_stable::{type_layout::TypeLayout, StableAbi};

/// A capability table handed out by `get_extension("vendor.name/N")`.
///
/// `table` points to a `'static` value whose layout is `layout`; the receiver checks `layout`
/// against the type it expects (with abi_stable's layout checker) before reading `table`.
/// Ids are never reused: a changed table gets a new `/N`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct ExtensionRef {
    /// Layout of the value behind `table`.
    pub layout: &'static TypeLayout,
    /// The extension's `'static` function table.
    pub table: *const c_void,
}

// The table is immutable `'static` data, shared freely between threads.
unsafe impl Send for ExtensionRef {}
unsafe impl Sync for ExtensionRef {}

impl ExtensionRef {
    /// Describes a `'static` table of a [`StableAbi`] type.
    pub fn new<T: StableAbi>(table: &'static T) -> Self {
        ExtensionRef { layout: T::LAYOUT, table: (table as *const T).cast() }
    }
}
