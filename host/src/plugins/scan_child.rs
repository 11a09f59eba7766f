//! Loading a plugin to read its models runs its code (ELF constructors, the root module's
//! initialiser). The CLI does it in a child process of its own binary (`karma-host
//! scan-plugin PATH`, hidden) with a timeout, so a constructor that segfaults, aborts, exits or
//! hangs rejects that file and nothing else.

use std::{
    io::{Read, Write},
    os::unix::process::{CommandExt, ExitStatusExt},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use karma_plugin_api::abi::ModelMeta;

use super::{
    loader, precheck,
    rejection::{RejectCode, Rejection},
    worker::{signal_name, WORKER_BINARY},
    PluginVersions,
};

/// What loading one file found, in a form that crosses a pipe and sits in the scan cache.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadOutcome {
    Loaded {
        abi_major: u16,
        abi_minor: u16,
        plugin_api_version: String,
        rustc_version: String,
        models: Vec<ModelMeta>,
    },
    Rejected {
        code: String,
        reason: String,
        hint: Option<String>,
        detail: Option<String>,
    },
}

impl LoadOutcome {
    pub fn rejected(rejection: &Rejection) -> Self {
        LoadOutcome::Rejected {
            code: rejection.code.as_str().to_owned(),
            reason: rejection.reason.clone(),
            hint: rejection.hint.clone(),
            detail: rejection.detail.clone(),
        }
    }

    pub fn loaded(library: &loader::LoadedLibrary) -> Self {
        LoadOutcome::Loaded {
            abi_major: library.abi_info.major,
            abi_minor: library.abi_info.minor,
            plugin_api_version: library.abi_info.plugin_api_version.as_str().to_owned(),
            rustc_version: library.abi_info.rustc_version.as_str().to_owned(),
            models: library.models.clone(),
        }
    }

    /// The versions, or the rejection of `path` this outcome describes.
    pub fn into_parts(self, path: &Path) -> Result<(PluginVersions, Vec<ModelMeta>), Rejection> {
        match self {
            LoadOutcome::Loaded { abi_major, abi_minor, plugin_api_version, rustc_version, models } => {
                Ok((PluginVersions { abi_major, abi_minor, plugin_api_version, rustc_version }, models))
            }
            LoadOutcome::Rejected { code, reason, hint, detail } => {
                let code = RejectCode::from_name(&code).unwrap_or(RejectCode::InitFailed);
                Err(Rejection { path: path.to_owned(), code, reason, hint, detail })
            }
        }
    }
}

/// The descriptor number a pinned file has in the scanning child.
const PINNED_FD: i32 = 3;

/// The child's side: check and load `path`, write the outcome as JSON on the original stdout
/// (fd 1 is pointed at stderr first, so the plugin's own prints cannot corrupt it).
pub fn serve(path: &Path, open_as: Option<&Path>) -> anyhow::Result<()> {
    let out = super::worker::serve::take_stdout()?;
    let outcome = match precheck::check(path).and_then(|summary| loader::load_as(path, open_as, &summary)) {
        Ok(library) => LoadOutcome::loaded(&library),
        Err(rejection) => LoadOutcome::rejected(&rejection),
    };
    let mut out = out;
    out.write_all(serde_json::to_string(&outcome)?.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The host's side: load `path` in a child and read what it found; a child that dies, exits
/// without an answer or outlives `timeout` rejects the file with its own code.
/// With `pinned` (a descriptor already hashed), the child loads that descriptor, not the path.
pub fn scan(path: &Path, timeout: Duration, pinned: Option<&std::fs::File>) -> LoadOutcome {
    let rejected = |code: RejectCode, reason: String| {
        LoadOutcome::rejected(&Rejection::new(path, code, reason).hint(
            "the plugin's load-time code (an ELF constructor or its root module) failed; \
             ask its author, or remove the file from the plugin directory",
        ))
    };
    tracing::debug!("loading `{}` in a scanning process", path.display());
    let binary = match WORKER_BINARY.get() {
        Some(binary) => Ok(binary.clone()),
        None => std::env::current_exe(),
    };
    let child = binary.and_then(|binary| {
        let mut command = Command::new(binary);
        command.arg("scan-plugin").arg(path);
        if let Some(file) = pinned {
            let fd = std::os::fd::AsRawFd::as_raw_fd(file);
            command.arg("--open-as").arg(format!("/proc/self/fd/{PINNED_FD}"));
            // SAFETY: only async-signal-safe calls between fork and exec. dup2 onto another
            // number clears close-on-exec; the same number needs it cleared by hand.
            unsafe {
                command.pre_exec(move || {
                    let moved = if fd == PINNED_FD {
                        libc::fcntl(fd, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(fd, PINNED_FD)
                    };
                    if moved < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()
    });
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            return rejected(RejectCode::OpenFailed, format!("cannot start a scanning process: {error}"))
        }
    };
    // Read on a thread: a large answer must not block the child on a full pipe.
    let Some(mut stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return rejected(RejectCode::OpenFailed, "the scanning process has no output pipe".to_owned());
    };
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = reader.join().ok().and_then(Result::ok).unwrap_or_default();
    let Some(status) = status else {
        return rejected(
            RejectCode::LoadTimeout,
            format!(
                "loading it did not finish within {} s (KARMA_SCAN_TIMEOUT_SECS); it was killed",
                timeout.as_secs_f64()
            ),
        );
    };
    if let Some(signal) = status.signal() {
        return rejected(
            RejectCode::LoadCrashed,
            format!("loading it crashed the scanning process (signal {signal}, {})", signal_name(signal)),
        );
    }
    match serde_json::from_str::<LoadOutcome>(&text) {
        Ok(outcome) if status.success() => outcome,
        _ => rejected(
            RejectCode::LoadExited,
            format!(
                "loading it ended the scanning process (exit status {}) before it reported anything",
                status.code().unwrap_or(-1)
            ),
        ),
    }
}
