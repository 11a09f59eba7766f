//! Records the rustc that compiles this crate. Every plugin compiles its own copy of
//! `karma-plugin-api`, so the value ends up in the plugin's root module and the host can report
//! which compiler built a plugin (diagnostics only; compatibility is decided by the ABI checks).

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|| "unknown rustc".to_owned());
    println!("cargo:rustc-env=KARMA_PLUGIN_API_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
