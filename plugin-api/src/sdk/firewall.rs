//! The panic firewall: no panic ever unwinds out of a plugin entry point.
//!
//! Unwinding through `extern "C"` aborts the whole host, so every entry point runs its body
//! under [`guard`], which turns a panic into a [`ErrorCode::PANICKED`] error carrying the panic
//! message and location.

use std::{
    cell::RefCell,
    panic::{self, AssertUnwindSafe},
    sync::Once,
};

use crate::abi::{ErrorCode, LogLevel, PluginError};

thread_local! {
    /// The message of the last panic on this thread, with its location, set by our hook.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL_HOOK: Once = Once::new();

/// Replaces the plugin's panic hook (the plugin has its own copy of std, so the host's hook is
/// untouched): panics are recorded for [`guard`] and forwarded to the host log instead of being
/// printed to stderr.
fn install_hook() {
    INSTALL_HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let message = payload_text(info.payload());
            let text = match info.location() {
                Some(location) => format!("{message} (at {}:{})", location.file(), location.line()),
                None => message,
            };
            super::logging::forward(LogLevel::ERROR, "panic", &format!("plugin panicked: {text}"));
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(text));
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs one entry point's body, converting a panic into a `PANICKED` error that names the entry
/// point.
pub(crate) fn guard<T>(
    entry_point: &str,
    body: impl FnOnce() -> Result<T, PluginError>,
) -> Result<T, PluginError> {
    install_hook();
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let recorded = LAST_PANIC.with(|last| last.borrow_mut().take());
            let text = recorded.unwrap_or_else(|| payload_text(payload.as_ref()));
            // Dropping a payload can itself panic; never let that escape either.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Err(PluginError::new(ErrorCode::PANICKED, format!("panicked in `{entry_point}`: {text}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_panicked_error_with_message() {
        let error = guard::<()>("run", || panic!("boom {}", 42)).unwrap_err();
        assert_eq!(error.code, ErrorCode::PANICKED);
        assert!(error.message.contains("panicked in `run`: boom 42"), "{}", error.message);
        assert!(error.message.contains("firewall.rs"), "{}", error.message);
    }

    #[test]
    fn ordinary_results_pass_through() {
        assert_eq!(guard("load", || Ok(7)), Ok(7));
        let error = PluginError::new(ErrorCode::NOT_FOUND, "missing");
        assert_eq!(guard::<()>("load", || Err(error.clone())), Err(error));
    }
}
