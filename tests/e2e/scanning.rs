use std::time::Instant;

use serde_json::Value;

use crate::harness::{baseline_plugin, fixture, karma, Workdir};

/// `list plugins --format json` with a scan cache of the test's own, at `-vv` (so each
/// scanning child is logged), and `env`.
fn list(work: &Workdir, plugins: &std::path::Path, env: &[(&str, &str)]) -> (Value, String, f64) {
    let cache = work.path().join("scan-cache.json");
    let mut env = env.to_vec();
    let cache = cache.to_str().unwrap().to_owned();
    env.push(("KARMA_SCAN_CACHE", &cache));
    let started = Instant::now();
    let run = karma(
        &["-vv", "--plugins-dir", plugins.to_str().unwrap(), "list", "plugins", "--format", "json"],
        &env,
    );
    let elapsed = started.elapsed().as_secs_f64();
    run.assert_code(0);
    (run.json(), run.stderr, elapsed)
}

fn status_of<'a>(listing: &'a Value, file: &str) -> &'a Value {
    listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|plugin| plugin["path"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("{file} not listed: {listing}"))
}

const CRASHING: &str = "libfixture_crash_on_item.so";
const BASELINE: &str = "libkarma_plugin_baseline.so";

#[test]
fn a_constructor_that_crashes_exits_or_hangs_is_rejected_and_the_others_are_listed() {
    for (mode, code, reason) in [
        ("segfault", "load_crashed", "crashed the scanning process (signal 11, SIGSEGV)"),
        ("abort", "load_crashed", "crashed the scanning process (signal 6, SIGABRT)"),
        ("exit", "load_exited", "ended the scanning process (exit status 0) before it reported anything"),
        ("hang", "load_timeout", "did not finish within 1 s (KARMA_SCAN_TIMEOUT_SECS)"),
    ] {
        let work = Workdir::new();
        let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item"), baseline_plugin()]);
        let env = [("CRASH_ON_ITEM_CONSTRUCTOR", mode), ("KARMA_SCAN_TIMEOUT_SECS", "1")];
        let (listing, _, elapsed) = list(&work, &plugins, &env);
        let rejected = status_of(&listing, CRASHING);
        assert_eq!(rejected["status"], "rejected", "{mode}: {listing}");
        assert_eq!(rejected["code"], code, "{mode}: {listing}");
        assert!(rejected["reason"].as_str().unwrap().contains(reason), "{mode}: {listing}");
        assert_eq!(status_of(&listing, BASELINE)["status"], "loaded", "{mode}");
        assert!(elapsed < 10.0, "{mode}: {elapsed} s");
        // The models of the other plugins can be used as usual.
        let cache = work.path().join("scan-cache.json");
        let models = karma(
            &["--plugins-dir", plugins.to_str().unwrap(), "list", "models", "--format", "json"],
            &[("CRASH_ON_ITEM_CONSTRUCTOR", mode), ("KARMA_SCAN_CACHE", cache.to_str().unwrap())],
        );
        models.assert_code(0);
        assert!(models.stdout.contains("karma/constant") && !models.stdout.contains("fixture/crash-on-item"));
    }
}

#[test]
fn unchanged_plugins_are_listed_from_the_scan_cache_and_a_replaced_file_is_scanned_again() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item"), baseline_plugin()]);
    let crash_env = [("CRASH_ON_ITEM_CONSTRUCTOR", "segfault")];
    let (first, stderr, _) = list(&work, &plugins, &crash_env);
    assert_eq!(stderr.matches("in a scanning process").count(), 2, "{stderr}");
    assert_eq!(status_of(&first, CRASHING)["code"], "load_crashed");

    // Unchanged: no child at all, and the failure is remembered like a success.
    let (second, stderr, _) = list(&work, &plugins, &crash_env);
    assert_eq!(stderr.matches("in a scanning process").count(), 0, "{stderr}");
    assert_eq!(second, first);

    // A file replaced in place (new contents, new mtime) is scanned again, once.
    let crashing = plugins.join(CRASHING);
    std::fs::remove_file(&crashing).unwrap();
    std::fs::copy(fixture("crash-on-item"), &crashing).unwrap();
    let (third, stderr, _) = list(&work, &plugins, &[]);
    assert_eq!(stderr.matches("in a scanning process").count(), 1, "{stderr}");
    assert!(stderr.contains(CRASHING), "{stderr}");
    assert_eq!(status_of(&third, CRASHING)["status"], "loaded");
    let (_, stderr, _) = list(&work, &plugins, &[]);
    assert_eq!(stderr.matches("in a scanning process").count(), 0, "{stderr}");

    // A corrupt cache is ignored and rebuilt.
    std::fs::write(work.path().join("scan-cache.json"), "{ not json").unwrap();
    let (rebuilt, stderr, _) = list(&work, &plugins, &[]);
    assert_eq!(stderr.matches("in a scanning process").count(), 2, "{stderr}");
    assert_eq!(rebuilt, third);
    let stored: Value =
        serde_json::from_slice(&std::fs::read(work.path().join("scan-cache.json")).unwrap()).unwrap();
    let entries = stored["entries"].as_object().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries.values() {
        assert_eq!(entry["sha256"].as_str().unwrap().len(), 64, "{entry}");
    }
}

#[test]
fn plugins_that_other_users_could_have_written_are_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let cache = work.path().join("scan-cache.json");
    let cache = cache.to_str().unwrap();
    let list = |extra: &[&str]| {
        let mut args = vec!["--plugins-dir", plugins.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend(["list", "plugins", "--format", "json"]);
        let run = karma(&args, &[("KARMA_SCAN_CACHE", cache)]);
        run.assert_code(0);
        (run.json(), run.stderr)
    };
    let set_mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };

    set_mode(&plugins, 0o777);
    let (listing, _) = list(&[]);
    let refused = status_of(&listing, BASELINE);
    assert_eq!(refused["code"], "insecure_permissions", "{listing}");
    assert!(
        refused["reason"].as_str().unwrap().contains("is writable by every user (mode 777)"),
        "{listing}"
    );
    assert!(refused["hint"].as_str().unwrap().contains("--allow-insecure-plugins"), "{listing}");
    let (listing, stderr) = list(&["--allow-insecure-plugins"]);
    assert_eq!(status_of(&listing, BASELINE)["status"], "loaded");
    assert!(stderr.contains("loaded anyway (--allow-insecure-plugins)"), "{stderr}");

    // A sticky directory (like /tmp) is fine: others cannot replace the files in it.
    set_mode(&plugins, 0o1777);
    let (listing, stderr) = list(&[]);
    assert_eq!(status_of(&listing, BASELINE)["status"], "loaded", "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");

    // Group-writable only warns; a world-writable file is refused like a directory.
    set_mode(&plugins, 0o775);
    let (listing, stderr) = list(&[]);
    assert_eq!(status_of(&listing, BASELINE)["status"], "loaded");
    assert!(stderr.contains("is group-writable (mode 775)"), "{stderr}");
    set_mode(&plugins, 0o755);
    set_mode(&plugins.join(BASELINE), 0o666);
    let (listing, _) = list(&[]);
    assert_eq!(status_of(&listing, BASELINE)["code"], "insecure_permissions", "{listing}");
    set_mode(&plugins.join(BASELINE), 0o644);

    // Owned by another user (only root can arrange that).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped the other-owner case: it needs root to chown the file");
        return;
    }
    let file = std::ffi::CString::new(plugins.join(BASELINE).to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; 65534 is `nobody`.
    assert_eq!(unsafe { libc::chown(file.as_ptr(), 65534, 65534) }, 0);
    let (listing, _) = list(&[]);
    let refused = status_of(&listing, BASELINE);
    assert_eq!(refused["code"], "insecure_permissions", "{listing}");
    assert!(refused["reason"].as_str().unwrap().contains("is owned by user 65534"), "{listing}");
}

#[test]
fn require_trusted_loads_only_pinned_files_and_checks_each_load() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item"), baseline_plugin()]);
    let lock = work.path().join("plugins.lock");
    let cache = work.path().join("scan-cache.json");
    let env = [("KARMA_PLUGINS_LOCK", lock.to_str().unwrap()), ("KARMA_SCAN_CACHE", cache.to_str().unwrap())];
    let dir = plugins.to_str().unwrap();
    let baseline = plugins.join(BASELINE);
    let pinned = karma(&["plugins", "trust", baseline.to_str().unwrap()], &env);
    pinned.assert_code(0);
    let real = baseline.canonicalize().unwrap();
    let hash = crate::harness::sha256_file(&real);
    assert!(
        pinned.stdout.contains(&format!("pinned  {}  sha256 {hash}", real.display())),
        "{}",
        pinned.stdout
    );
    karma(&["plugins", "verify"], &env).assert_code(0);

    let listing =
        karma(&["--require-trusted", "--plugins-dir", dir, "list", "plugins", "--format", "json"], &env);
    let listing = listing.json();
    assert_eq!(status_of(&listing, BASELINE)["status"], "loaded", "{listing}");
    let unpinned = status_of(&listing, CRASHING);
    assert_eq!(unpinned["code"], "untrusted", "{listing}");
    assert!(unpinned["reason"].as_str().unwrap().contains("is not pinned in"), "{listing}");
    // The pinned file is hashed again on every command, but one scanned before with the same
    // hash is listed from the scan cache, with no scanning process.
    let again = karma(
        &["-vv", "--require-trusted", "--plugins-dir", dir, "list", "plugins", "--format", "json"],
        &env,
    );
    assert_eq!(again.stderr.matches("in a scanning process").count(), 0, "{}", again.stderr);
    assert_eq!(status_of(&again.json(), BASELINE)["status"], "loaded");

    // Pinned models evaluate in process and in a worker (which checks the pin itself).
    let data =
        work.write("items.jsonl", "{\"question\": \"q?\", \"options\": [\"a\", \"b\"], \"answer\": \"A\"}\n");
    for isolation in ["in-process", "worker"] {
        let output = work.path().join(format!("results-{isolation}.json"));
        let run = karma(
            &[
                "--require-trusted",
                "--plugins-dir",
                dir,
                "eval",
                "--model",
                "karma/constant",
                "--datasets",
                data.to_str().unwrap(),
                "--isolation",
                isolation,
                "--no-cache",
                "--no-progress",
                "--output",
                output.to_str().unwrap(),
            ],
            &env,
        );
        run.assert_code(0);
    }

    // A changed file is refused with both hashes, and `verify` says so.
    std::fs::remove_file(&baseline).unwrap();
    std::fs::copy(fixture("crash-on-item"), &baseline).unwrap();
    let new_hash = crate::harness::sha256_file(&baseline);
    let listing =
        karma(&["--require-trusted", "--plugins-dir", dir, "list", "plugins", "--format", "json"], &env)
            .json();
    let changed = status_of(&listing, BASELINE);
    assert_eq!(changed["code"], "untrusted");
    assert!(
        changed["reason"].as_str().unwrap().contains(&format!("expected sha256 {hash}, found {new_hash}")),
        "{listing}"
    );
    let verify = karma(&["plugins", "verify"], &env);
    verify.assert_code(1);
    assert!(verify.stdout.contains("changed"), "{}", verify.stdout);
}

#[test]
fn a_plugin_swapped_between_the_scan_and_the_load_is_refused_at_the_load() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item")]);
    let lock = work.path().join("plugins.lock");
    let cache = work.path().join("scan-cache.json");
    let crashing = plugins.join(CRASHING);
    let env = [("KARMA_PLUGINS_LOCK", lock.to_str().unwrap()), ("KARMA_SCAN_CACHE", cache.to_str().unwrap())];
    karma(&["plugins", "trust", crashing.to_str().unwrap()], &env).assert_code(0);
    // While the scan loads it, the plugin's constructor puts another file in its place.
    let other = work.path().join("other.so");
    std::fs::copy(baseline_plugin(), &other).unwrap();
    let swap = format!("{}:{}", other.display(), crashing.display());
    let mut env = env.to_vec();
    env.push(("CRASH_ON_ITEM_SWAP", &swap));
    let data =
        work.write("items.jsonl", "{\"question\": \"q?\", \"options\": [\"a\", \"b\"], \"answer\": \"A\"}\n");
    let output = work.path().join("results.json");
    let run = karma(
        &[
            "--require-trusted",
            "--plugins-dir",
            plugins.to_str().unwrap(),
            "eval",
            "--model",
            "fixture/crash-on-item",
            "--datasets",
            data.to_str().unwrap(),
            "--no-cache",
            "--no-progress",
            "--output",
            output.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!other.exists(), "the constructor swapped the file during the scan");
    run.assert_code(2);
    assert!(run.stderr.contains("it changed since it was pinned: expected sha256"), "{}", run.stderr);
}
