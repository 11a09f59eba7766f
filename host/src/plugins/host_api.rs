//! The host side of the ABI's callbacks: plugin log events re-emitted into our `tracing`
//! subscriber with their original target and the plugin's name.
//!
//! `tracing` needs a `'static` callsite per (target, level). Plugins' targets are only known at
//! run time, so we build callsites on demand and leak them, capped so a misbehaving plugin cannot
//! grow memory without bound.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{ROption, RStr},
};
use karma_plugin_api::abi::{ExtensionRef, HostApi, HostApi_Ref, HostContext, HostContextPtr, LogLevel};
use tracing_core::{
    callsite::{Callsite, Identifier},
    field::{FieldSet, Value},
    metadata::Kind,
    Event, Interest, Level, Metadata,
};

/// Host state behind a plugin's [`HostContextPtr`].
struct PluginLogContext {
    plugin: String,
}

/// Builds the callback table for one plugin, named `plugin` in log output. Lives forever, like
/// the plugin.
pub fn host_api_for(plugin: &str) -> HostApi_Ref {
    let context: &'static PluginLogContext =
        Box::leak(Box::new(PluginLogContext { plugin: plugin.to_owned() }));
    HostApi {
        context: HostContextPtr((context as *const PluginLogContext).cast::<HostContext>()),
        log_enabled,
        log,
        get_extension,
    }
    .leak_into_prefix()
}

fn plugin_name(context: HostContextPtr) -> &'static str {
    // SAFETY: every context we hand out is a leaked `PluginLogContext`.
    unsafe { &(*context.0.cast::<PluginLogContext>()).plugin }
}

fn level(level: LogLevel) -> Level {
    match level {
        LogLevel::ERROR => Level::ERROR,
        LogLevel::WARN => Level::WARN,
        LogLevel::INFO => Level::INFO,
        LogLevel::DEBUG => Level::DEBUG,
        _ => Level::TRACE,
    }
}

extern "C" fn log_enabled(_context: HostContextPtr, log_level: LogLevel, target: RStr<'_>) -> bool {
    let metadata = callsite(target.as_str(), level(log_level)).metadata();
    tracing_core::dispatcher::get_default(|dispatch| dispatch.enabled(metadata))
}

extern "C" fn log(context: HostContextPtr, log_level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
    let callsite = callsite(target.as_str(), level(log_level));
    let metadata = callsite.metadata();
    let fields = metadata.fields();
    let (Some(message_field), Some(plugin_field)) = (fields.field("message"), fields.field("plugin")) else {
        return;
    };
    let message = format_args!("{}", message.as_str());
    let plugin = plugin_name(context);
    let values: [(&tracing_core::field::Field, Option<&dyn Value>); 2] =
        [(&message_field, Some(&message as &dyn Value)), (&plugin_field, Some(&plugin as &dyn Value))];
    let value_set = fields.value_set(&values);
    tracing_core::dispatcher::get_default(|dispatch| {
        if dispatch.enabled(metadata) {
            dispatch.event(&Event::new(metadata, &value_set));
        }
    });
}

extern "C" fn get_extension(_context: HostContextPtr, _id: RStr<'_>) -> ROption<ExtensionRef> {
    // ABI 1.0 defines no host extensions yet.
    ROption::RNone
}

/// A callsite created at run time for one plugin (target, level) pair.
struct DynamicCallsite {
    metadata: OnceLock<Metadata<'static>>,
}

impl Callsite for DynamicCallsite {
    fn set_interest(&self, _interest: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        self.metadata.get().expect("metadata is set before the callsite is registered")
    }
}

/// Distinct (target, level) pairs kept; past this, events share one catch-all target.
const MAX_CALLSITES: usize = 4096;
const OVERFLOW_TARGET: &str = "karma_plugin";

fn callsite(target: &str, level: Level) -> &'static DynamicCallsite {
    static CALLSITES: OnceLock<Mutex<HashMap<(String, Level), &'static DynamicCallsite>>> = OnceLock::new();
    let mut callsites =
        CALLSITES.get_or_init(Default::default).lock().unwrap_or_else(|poison| poison.into_inner());
    let target = if callsites.len() >= MAX_CALLSITES && !callsites.contains_key(&(target.to_owned(), level)) {
        OVERFLOW_TARGET
    } else {
        target
    };
    if let Some(existing) = callsites.get(&(target.to_owned(), level)) {
        return existing;
    }
    let callsite: &'static DynamicCallsite =
        Box::leak(Box::new(DynamicCallsite { metadata: OnceLock::new() }));
    let leaked_target: &'static str = Box::leak(target.to_owned().into_boxed_str());
    let metadata = Metadata::new(
        "plugin event",
        leaked_target,
        level,
        None,
        None,
        None,
        FieldSet::new(&["message", "plugin"], Identifier(callsite)),
        Kind::EVENT,
    );
    let _ = callsite.metadata.set(metadata);
    tracing_core::callsite::register(callsite);
    callsites.insert((target.to_owned(), level), callsite);
    callsite
}
