//! The plugin author guide (plugin-api/README.md) is followed literally: its Cargo.toml and
//! lib.rs are extracted, built as a fresh crate, dropped into an empty plugin folder and run.

use std::process::Command;

use crate::harness::{karma_in, workspace_root, Workdir};

/// The contents of the first fenced block with `language` after `marker` in `text`.
fn fenced_block(text: &str, marker: &str, language: &str) -> String {
    let after = &text[text.find(marker).unwrap_or_else(|| panic!("guide has no {marker:?}"))..];
    let fence = format!("```{language}\n");
    let start =
        after.find(&fence).unwrap_or_else(|| panic!("no ```{language} block after {marker:?}")) + fence.len();
    let end = after[start..].find("```").expect("closing fence") + start;
    after[start..end].to_owned()
}

#[test]
fn the_plugin_guide_builds_a_working_plugin() {
    let root = workspace_root();
    let guide = std::fs::read_to_string(root.join("plugin-api/README.md")).unwrap();
    let manifest = fenced_block(&guide, "`Cargo.toml`:", "toml").replace(
        r#"karma-plugin-api = { path = "../karma-host/plugin-api" }"#,
        &format!(r#"karma-plugin-api = {{ path = "{}" }}"#, root.join("plugin-api").display()),
    );
    assert!(manifest.contains(root.to_str().unwrap()), "the guide's dependency line changed:\n{manifest}");
    let source = fenced_block(&guide, "## 2. Write the model", "rust");

    let work = Workdir::new();
    work.write("my-models/Cargo.toml", format!("{manifest}\n[workspace]\n"));
    work.write("my-models/src/lib.rs", source);
    // Same dependency versions as the fixtures, so their compiled dependencies are reused.
    std::fs::copy(root.join("tests/fixtures/Cargo.lock"), work.path().join("my-models/Cargo.lock")).unwrap();
    let target = root.join("target/test-fixtures");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(work.path().join("my-models"))
        .args(["build", "--quiet", "--target-dir"])
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "the guide's plugin does not build");

    let plugins = work.plugins_dir("plugins", &[target.join("debug/libmy_models.so")]);
    let listed = karma_in(&plugins, &["list", "models", "--format", "json"]);
    listed.assert_code(0);
    assert_eq!(listed.json()["models"][0]["name"], "my-org/shout");

    let run = karma_in(
        &plugins,
        &["run", "--model", "my-org/shout", "--input", "hello", "--model-args", r#"{"exclamations": 3}"#],
    );
    run.assert_code(0);
    assert_eq!(run.json_lines()[0]["output"], "HELLO!!!");

    let refused = karma_in(
        &plugins,
        &["run", "--model", "my-org/shout", "--input", "x", "--model-args", r#"{"exclamations": 11}"#],
    );
    refused.assert_code(2);
    assert!(refused.stderr.contains("`exclamations` must be at most 10"), "{}", refused.stderr);
}
