//! The host side of the ABI's callbacks: plugin log events re-emitted into our `tracing`
//! subscriber with their original target and the plugin's name.
//!
//! `tracing` needs a `'static` callsite per (target, level). Plugins' targets are only known at
//! run time, so we build callsites on demand and leak them, capped so a misbehaving plugin cannot
//! grow memory without bound.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{ROption, RStr},
};
use karma_plugin_api::abi::{
    ExtensionRef, HostApi, HostApi_Ref, HostContext, HostContextPtr, LogLevel, ProgressTable,
    PROGRESS_EXTENSION,
};
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

extern "C" fn get_extension(_context: HostContextPtr, id: RStr<'_>) -> ROption<ExtensionRef> {
    static PROGRESS: ProgressTable = ProgressTable { report: report_progress };
    match id.as_str() {
        PROGRESS_EXTENSION => ROption::RSome(ExtensionRef::new(&PROGRESS)),
        _ => ROption::RNone,
    }
}

/// Where plugins' status lines go: `(plugin file name, status)`.
pub type StatusSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

fn status_sink() -> &'static Mutex<Option<StatusSink>> {
    static SINK: OnceLock<Mutex<Option<StatusSink>>> = OnceLock::new();
    SINK.get_or_init(Default::default)
}

/// Sends plugins' status lines (`karma.host.progress/1`) to `sink` (the progress bar), or
/// drops them (`None`). Statuses of plugins in worker processes are not relayed.
pub fn set_status_sink(sink: Option<StatusSink>) {
    *status_sink().lock().unwrap_or_else(|poison| poison.into_inner()) = sink;
}

extern "C" fn report_progress(context: HostContextPtr, status: RStr<'_>) {
    let sink = status_sink().lock().unwrap_or_else(|poison| poison.into_inner()).clone();
    if let Some(sink) = sink {
        sink(plugin_name(context), status.as_str());
    }
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
