//! Remembers an in-process evaluation that a fatal signal ended (SIGSEGV, SIGABRT, ... almost
//! always plugin code: the host's own code does not fault), so that the next run of the same
//! model can say so and suggest `--isolation worker`.
//!
//! Each in-process run writes `runs/<model>.<pid>.run` beside the cache and removes it when it
//! ends; a handler for the fatal signals writes the signal's number into it (one `write`, which
//! is async-signal-safe) before the signal takes its usual course. A later run reads the files
//! of dead processes, warns about those that hold a signal, and removes them.

use std::{
    io::Write,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::atomic::{AtomicI32, Ordering},
};

/// The open marker of this run, -1 when none.
static MARKER_FD: AtomicI32 = AtomicI32::new(-1);

const FATAL: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT];

/// The handlers that were installed before ours (Rust's stack-overflow reporter among them),
/// restored before the signal is re-raised.
static mut PREVIOUS: [Option<libc::sigaction>; 5] = [None; 5];

extern "C" fn on_fatal(signal: libc::c_int) {
    let fd = MARKER_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let text: [u8; 4] = [b'0' + (signal / 10) as u8, b'0' + (signal % 10) as u8, b'\n', 0];
        // SAFETY: write(2), sigaction(2) and raise(3) are async-signal-safe; the buffer is live.
        unsafe {
            libc::write(fd, text.as_ptr().cast(), 3);
        }
    }
    // SAFETY: as above; PREVIOUS is written only before the handler is installed.
    unsafe {
        let index = FATAL.iter().position(|fatal| *fatal == signal).unwrap_or(0);
        #[allow(static_mut_refs)]
        match &PREVIOUS[index] {
            Some(previous) => libc::sigaction(signal, previous, std::ptr::null_mut()),
            None => {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut())
            }
        };
        // Delivered when this handler returns, under the restored action. A real fault also
        // re-executes its instruction and faults again.
        libc::raise(signal);
    }
}

/// The marker of the run in flight; removed (with its handlers' purpose) when dropped.
pub(super) struct RunMarker {
    path: PathBuf,
    _file: std::fs::File,
}

impl Drop for RunMarker {
    fn drop(&mut self) {
        MARKER_FD.store(-1, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn runs_dir(cache_path: &Path) -> PathBuf {
    cache_path.parent().unwrap_or(Path::new(".")).join("runs")
}

/// A file-name-safe form of a model name.
fn file_stem(model: &str) -> String {
    model.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Warns about earlier in-process runs of `model` that a fatal signal ended, and forgets them.
pub(super) fn report_earlier_crashes(cache_path: &Path, model: &str) {
    let Ok(entries) = std::fs::read_dir(runs_dir(cache_path)) else { return };
    let prefix = format!("{}.", file_stem(model));
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".run")) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if alive {
            continue; // another run of the same model, in flight
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let mut lines = text.lines();
        let started = lines.next().unwrap_or("an unknown time").to_owned();
        if let Some(signal) = lines.next().and_then(|line| line.trim().parse::<i32>().ok()) {
            tracing::warn!(
                "the last in-process run of model `{model}` (pid {pid}, started {started}) was killed by signal \
                 {signal} ({}), most likely from plugin code; `--isolation worker` runs the plugin in a child \
                 process, quarantines the items that crash it and scores the rest",
                crate::plugins::worker::signal_name(signal)
            );
        }
        let _ = std::fs::remove_file(entry.path());
    }
}

/// Starts the marker of this in-process run. Failing to write it only costs the warning.
pub(super) fn start(cache_path: &Path, model: &str) -> Option<RunMarker> {
    let directory = runs_dir(cache_path);
    std::fs::create_dir_all(&directory).ok()?;
    let path = directory.join(format!("{}.{}.run", file_stem(model), std::process::id()));
    let mut file = std::fs::File::create(&path).ok()?;
    writeln!(file, "{}", crate::report::utc_timestamp(std::time::SystemTime::now())).ok()?;
    MARKER_FD.store(file.as_raw_fd(), Ordering::SeqCst);
    install_handlers();
    Some(RunMarker { path, _file: file })
}

fn install_handlers() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        for (index, signal) in FATAL.into_iter().enumerate() {
            // SAFETY: reading an action with a null new one is valid; a zeroed sigaction with a
            // plain handler and an empty mask is valid; the previous action is saved before
            // ours is live, and PREVIOUS is written only here.
            unsafe {
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut previous) != 0 {
                    continue;
                }
                PREVIOUS[index] = Some(previous);
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fatal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                // On the alternate stack Rust sets up, so a stack overflow is recorded too.
                action.sa_flags = libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    });
}
