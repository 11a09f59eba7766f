//! A work dir for `karma-host eval` runs: plugins, a private cache and HF home, and helpers to
//! read what a run wrote.

use std::path::PathBuf;

use serde_json::Value;

use crate::harness::{karma_command, karma_process, Run, Workdir};

/// A work dir with plugins and a private cache and HF home.
pub struct EvalEnv {
    pub work: Workdir,
    pub plugins: PathBuf,
}

impl EvalEnv {
    pub fn new(plugins: &[PathBuf]) -> Self {
        let work = Workdir::new();
        let plugins = work.plugins_dir("plugins", plugins);
        EvalEnv { work, plugins }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    pub fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<String> {
        let mut args =
            vec!["--plugins-dir".to_owned(), self.plugins.display().to_string(), "eval".to_owned()];
        args.extend([
            "--cache-path".to_owned(),
            self.path("cache.sqlite").display().to_string(),
            "--no-progress".to_owned(),
        ]);
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    }

    pub fn eval(&self, extra: &[&str]) -> Run {
        let args = self.args(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let hf_home = self.path("hf");
        karma_command(&refs, &[("HF_HOME", hf_home.to_str().unwrap())], Some(self.work.path()))
    }

    pub fn results(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.path("results.json")).unwrap()).unwrap()
    }

    pub fn samples(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.path(name))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Committed outputs: merged into `outputs`, or still pending (a run merges at its end).
    /// 0 while the file exists but its tables are still being created.
    pub fn cached_outputs(&self) -> i64 {
        let connection = rusqlite::Connection::open(self.path("cache.sqlite")).unwrap();
        connection
            .query_row(
                "SELECT (SELECT COUNT(*) FROM outputs) + (SELECT COUNT(*) FROM pending_outputs)",
                [],
                |row| row.get(0),
            )
            .unwrap_or(0)
    }
}

/// Starts `karma-host args`, waits until `commits` outputs are in the cache, sends `signal`,
/// and returns how the process ended.
pub fn signal_after_commits(
    env: &EvalEnv,
    args: &[String],
    commits: i64,
    signal: i32,
) -> std::process::ExitStatus {
    signal_after_commits_in(env, args, commits, signal, Target::Process)
}

/// Whom the signal goes to.
pub enum Target {
    Process,
    /// The process's own process group, as a terminal's Ctrl-C; stderr is kept in `stderr.log`.
    Group,
}

/// [`signal_after_commits`], to the process or to its whole process group.
pub fn signal_after_commits_in(
    env: &EvalEnv,
    args: &[String],
    commits: i64,
    signal: i32,
    target: Target,
) -> std::process::ExitStatus {
    use std::os::unix::process::CommandExt;
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = karma_process(&refs, &[], Some(env.work.path()));
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    if let Target::Group = target {
        command.process_group(0).stderr(std::fs::File::create(env.path("stderr.log")).unwrap());
    }
    let mut child = command.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while (!env.path("cache.sqlite").exists() || env.cached_outputs() < commits)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = child.id() as i32;
    // SAFETY: signals the test's own child, or its process group.
    unsafe { libc::kill(if let Target::Group = target { -pid } else { pid }, signal) };
    child.wait().unwrap()
}
