//! Forwards the plugin's `tracing` events to the host's subscriber.
//!
//! A cdylib has its own copy of `tracing-core` and so its own global dispatcher: events a plugin
//! emits would vanish. On the first `create`, the SDK installs [`Forwarder`] as the plugin's
//! global subscriber. It asks the host, per callsite, whether the host's filter wants the event
//! (so disabled events are never formatted), and hands enabled events to [`HostApi::log`] with
//! their original target. Spans are not forwarded.

use std::{fmt::Write as _, sync::OnceLock};

use abi_stable::std_types::RStr;
use tracing_core::{
    field::{Field, Visit},
    span, Event, Interest, Level, Metadata, Subscriber,
};

use crate::abi::{HostApi_Ref, LogLevel};

static HOST: OnceLock<HostApi_Ref> = OnceLock::new();

/// Remembers the host's callbacks and routes this plugin's `tracing` events to them. Only the
/// first call has an effect: one process has one host.
pub(crate) fn install(host: HostApi_Ref) {
    if HOST.set(host).is_ok() {
        // Fails only if the plugin installed its own subscriber, which then stays in charge.
        let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(Forwarder));
    }
}

/// The host's callbacks, once a model has been created.
pub(crate) fn host() -> Option<HostApi_Ref> {
    HOST.get().copied()
}

/// Sends one already formatted message to the host, if one is known and wants it.
pub(crate) fn forward(level: LogLevel, target: &str, message: &str) {
    if let Some(host) = HOST.get() {
        let context = host.context();
        if (host.log_enabled())(context, level, RStr::from_str(target)) {
            (host.log())(context, level, RStr::from_str(target), RStr::from_str(message));
        }
    }
}

fn log_level(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::ERROR,
        Level::WARN => LogLevel::WARN,
        Level::INFO => LogLevel::INFO,
        Level::DEBUG => LogLevel::DEBUG,
        _ => LogLevel::TRACE,
    }
}

struct Forwarder;

impl Subscriber for Forwarder {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // The host's filter is fixed for the life of the process, so the answer can be cached
        // per callsite by tracing-core.
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        match HOST.get() {
            Some(host) => (host.log_enabled())(
                host.context(),
                log_level(metadata.level()),
                RStr::from_str(metadata.target()),
            ),
            None => false,
        }
    }

    fn new_span(&self, _attributes: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(host) = HOST.get() else { return };
        let mut text = MessageText::default();
        event.record(&mut text);
        let metadata = event.metadata();
        (host.log())(
            host.context(),
            log_level(metadata.level()),
            RStr::from_str(metadata.target()),
            RStr::from_str(&text.0),
        );
    }

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}

/// Formats an event as `message key=value key2=value2`.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !fields.is_empty() {
                self.0.push_str(&fields);
            }
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}
