//! Shared by the benchmarks: a release build of the host and plugins, and measured spawning.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

/// Builds `karma-host` and the baseline plugin in release mode; returns `target/release`.
pub fn release_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", "karma-host", "-p", "karma-plugin-baseline"])
        .status()
        .expect("run cargo build --release");
    assert!(status.success(), "release build failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release")
}

/// Runs `program args` to completion and returns (wall time, peak RSS in KiB) via wait4.
pub fn spawn_measured(program: &Path, args: &[&str]) -> (Duration, i64) {
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which `Child` will not wait for again (it is forgotten).
    let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    std::mem::forget(child);
    assert!(waited > 0 && status == 0, "{} {args:?} failed with status {status}", program.display());
    (elapsed, usage.ru_maxrss)
}

/// Whether `cargo bench` (not `cargo test --benches`) is running us.
pub fn benchmarking() -> bool {
    std::env::args().any(|argument| argument == "--bench")
}
