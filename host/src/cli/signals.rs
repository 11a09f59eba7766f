//! SIGINT, SIGTERM and SIGHUP during an evaluation: the first finishes the batch in flight,
//! commits it and writes partial results marked `interrupted` (exit 128 + the signal); a second
//! signal ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::engine;

/// The first signal received, 0 before any.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

const HANDLED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Only async-signal-safe work here: atomics and `_exit`.
extern "C" fn on_signal(signal: libc::c_int) {
    if engine::INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: `_exit` is async-signal-safe; the second signal means "stop now".
        unsafe { libc::_exit(128 + signal) };
    }
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Installs the handler for the signals above, except those ignored when the process started
/// (`nohup` ignores SIGHUP: logging out must not stop the run).
pub(super) fn install() {
    for signal in HANDLED {
        // SAFETY: reading the current action with a null new action is always valid; a zeroed
        // sigaction with a plain handler, an empty mask and SA_RESTART is a valid argument;
        // `on_signal` only touches atomics and calls `_exit`.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                tracing::warn!(
                    "cannot handle signal {signal}: {}; it would end the run without partial results",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

/// The exit code for a run stopped by a signal: 128 + its number (130 for Ctrl-C).
pub(super) fn exit_code() -> i32 {
    128 + match RECEIVED.load(Ordering::SeqCst) {
        0 => libc::SIGINT,
        signal => signal,
    }
}

/// The signal's name, for the log line.
pub(super) fn name() -> &'static str {
    match RECEIVED.load(Ordering::SeqCst) {
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "SIGINT",
    }
}
