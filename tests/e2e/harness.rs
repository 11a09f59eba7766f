//! Test harness: builds the workspace's plugins and the test-only fixture plugins once per test
//! run, and runs the real `karma-host` binary in temporary directories.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_owned()
}

/// `target/<profile>` of this test run (the test binary lives in its `deps/`).
fn profile_dir() -> PathBuf {
    let executable = std::env::current_exe().expect("test executable path");
    executable.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_owned()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run_build(command: &mut Command, what: &str) {
    let status = command.status().unwrap_or_else(|error| panic!("cannot run cargo to build {what}: {error}"));
    assert!(status.success(), "building {what} failed: {status}");
}

/// Builds `karma-host` and the workspace plugins with the same profile as the tests (a no-op
/// when `cargo test --workspace` already built them), once.
fn workspace_artifacts() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let mut command = cargo();
        command.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "karma-host",
            "-p",
            "karma-plugin-baseline",
            "-p",
            "karma-plugin-candle-llm",
            "-p",
            "karma-plugin-candle-whisper",
            "-p",
            "karma-plugin-openai-compat",
        ]);
        if profile_dir.file_name().is_some_and(|name| name == "release") {
            command.arg("--release");
        }
        run_build(&mut command, "the workspace plugins");
        profile_dir
    })
}

/// The `karma-host` executable.
pub fn host_binary() -> PathBuf {
    workspace_artifacts().join("karma-host")
}

/// The baseline plugin built from the workspace.
pub fn baseline_plugin() -> PathBuf {
    workspace_artifacts().join("libkarma_plugin_baseline.so")
}

/// The HTTP API models plugin (OpenAI, Anthropic, Gemini, OpenAI-compatible servers).
pub fn api_plugin() -> PathBuf {
    workspace_artifacts().join("libkarma_plugin_openai_compat.so")
}

/// The candle LLM plugin built from the workspace.
pub fn candle_plugin() -> PathBuf {
    workspace_artifacts().join("libkarma_plugin_candle_llm.so")
}

/// The candle Whisper (speech recognition) plugin built from the workspace.
pub fn whisper_plugin() -> PathBuf {
    workspace_artifacts().join("libkarma_plugin_candle_whisper.so")
}

/// Builds the fixture plugins (tests/fixtures) into `target/test-fixtures`, once. The
/// different-ABI fixture is built alone: it enables a plugin-api feature that would otherwise be
/// unified into every fixture.
pub fn fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let directory = BUILT.get_or_init(|| {
        let target = profile_dir().parent().expect("target dir").join("test-fixtures");
        let manifest = workspace_root().join("tests/fixtures/Cargo.toml");
        let build = |extra: &[&str]| {
            let mut command = cargo();
            command
                .args(["build", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .args(extra);
            run_build(&mut command, "the fixture plugins");
        };
        build(&["--workspace", "--exclude", "fixture-different-abi"]);
        build(&["-p", "fixture-different-abi"]);
        target.join("debug")
    });
    let path = directory.join(format!("libfixture_{}.so", name.replace('-', "_")));
    assert!(path.is_file(), "fixture {} missing at {}", name, path.display());
    path
}

/// A temporary directory that is removed at the end of the test.
pub struct Workdir {
    directory: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Workdir { directory: tempfile::tempdir().expect("temporary directory") }
    }

    pub fn path(&self) -> &Path {
        self.directory.path()
    }

    /// A fresh subdirectory holding copies of `plugins`.
    pub fn plugins_dir(&self, name: &str, plugins: &[PathBuf]) -> PathBuf {
        let directory = self.path().join(name);
        std::fs::create_dir_all(&directory).expect("create plugin dir");
        for plugin in plugins {
            std::fs::copy(plugin, directory.join(plugin.file_name().expect("file name")))
                .expect("copy plugin");
        }
        directory
    }

    /// Writes `contents` to `name` inside the work dir and returns the path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

/// The result of one `karma-host` run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!("stdout is not JSON ({error}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }

    /// Each stdout line parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout.lines().map(|line| serde_json::from_str(line).expect("JSON line")).collect()
    }

    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `karma-host` with `args`, a clean environment for karma's own variables, and `env`.
pub fn karma(args: &[&str], env: &[(&str, &str)]) -> Run {
    karma_command(args, env, None)
}

/// The command `karma` runs, optionally in `directory`; for tests that need the process itself.
pub fn karma_process(args: &[&str], env: &[(&str, &str)], directory: Option<&Path>) -> Command {
    let mut command = Command::new(host_binary());
    command
        .args(args)
        .env_remove("KARMA_PLUGINS_DIR")
        .env_remove("KARMA_CACHE_PATH")
        .env_remove("RUST_LOG")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_ENDPOINT")
        // Nor a developer's hub token (the gated-repo tests set their own).
        .env_remove("HF_TOKEN")
        .env_remove("HF_TOKEN_PATH")
        // A developer's own configuration file (isolation settings) must not change tests.
        .env_remove("KARMA_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent-karma-test-config")
        // Nor the developer's plugin scan cache.
        .env("KARMA_SCAN_CACHE", profile_dir().join("test-plugin-scan.json"))
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    if let Some(directory) = directory {
        command.current_dir(directory);
    }
    command
}

/// Runs `karma-host` in `directory` (where relative output files land).
pub fn karma_command(args: &[&str], env: &[(&str, &str)], directory: Option<&Path>) -> Run {
    let output: Output = karma_process(args, env, directory).output().expect("run karma-host");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `karma-host --plugins-dir DIR args...`.
pub fn karma_in(plugins_dir: &Path, args: &[&str]) -> Run {
    let mut full = vec!["--plugins-dir", plugins_dir.to_str().expect("utf-8 path")];
    full.extend_from_slice(args);
    karma(&full, &[])
}

/// The file's sha256 as coreutils' `sha256sum` computes it (independent of karma-host's code).
pub fn sha256_file(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().expect("run sha256sum");
    assert!(output.status.success(), "sha256sum failed");
    String::from_utf8_lossy(&output.stdout).split_whitespace().next().expect("a hash").to_owned()
}
