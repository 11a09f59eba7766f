//! A corpus of files that must be rejected, generated from real plugins, each checked for its
//! exact reason code and message; and proof that none of them stops the good plugin loading.

use std::{os::unix::fs::PermissionsExt, path::Path};

use goblin::elf::{section_header::SHT_DYNSYM, Elf};
use karma_plugin_api::abi::ROOT_SYMBOL;

use crate::harness::{baseline_plugin, fixture, karma_in, Workdir};

fn patched(original: &Path, edits: &[(usize, &[u8])]) -> Vec<u8> {
    let mut bytes = std::fs::read(original).unwrap();
    for (offset, replacement) in edits {
        bytes[*offset..*offset + replacement.len()].copy_from_slice(replacement);
    }
    bytes
}

/// File offset of the `.dynsym` entry of the root symbol.
fn root_symbol_entry(bytes: &[u8]) -> usize {
    let elf = Elf::parse(bytes).unwrap();
    let dynsym = elf.section_headers.iter().find(|section| section.sh_type == SHT_DYNSYM).unwrap();
    let index = elf
        .dynsyms
        .iter()
        .position(|symbol| elf.dynstrtab.get_at(symbol.st_name) == Some(ROOT_SYMBOL))
        .unwrap();
    dynsym.sh_offset as usize + index * dynsym.sh_entsize as usize
}

/// Builds every bad entry in `directory`; returns (file name, expected code, expected reason).
fn build_corpus(work: &Workdir, directory: &Path) -> Vec<(String, &'static str, String)> {
    let plugin = baseline_plugin();
    let original = std::fs::read(&plugin).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(directory.join(name), bytes).unwrap();
    let mut expected = Vec::new();
    let mut expect =
        |name: &str, code: &'static str, reason: String| expected.push((name.to_owned(), code, reason));

    write("empty.so", b"");
    expect("empty.so", "empty_file", "empty file (0 bytes), not a shared library".into());

    write("notes.so", b"these are my notes\nnot a library\n");
    expect(
        "notes.so",
        "not_elf",
        "not a shared library: it is a text file (starts with \"these are my notes\")".into(),
    );

    write("garbage.so", &[0x00, 0x13, 0x37, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x04]);
    expect(
        "garbage.so",
        "not_elf",
        "not a shared library: not an ELF file (first bytes: 00 13 37 ff fe 01 02 03)".into(),
    );

    write("tiny_elf.so", &original[..40]);
    expect("tiny_elf.so", "truncated_elf", "truncated ELF file (40 bytes; the header alone needs 64)".into());

    write("half.so", &original[..original.len() / 2]);
    let elf = Elf::parse(&original).unwrap();
    let headers_end = (elf.header.e_shoff
        + u64::from(elf.header.e_shnum) * u64::from(elf.header.e_shentsize))
    .max(elf.header.e_phoff + u64::from(elf.header.e_phnum) * u64::from(elf.header.e_phentsize));
    expect(
        "half.so",
        "truncated_elf",
        format!(
            "truncated ELF file ({} bytes; its headers say it is at least {headers_end})",
            original.len() / 2
        ),
    );

    write("arm.so", &patched(&plugin, &[(18, &183u16.to_le_bytes())]));
    expect("arm.so", "wrong_architecture", "built for aarch64, this host is x86_64".into());

    write("elf32.so", &patched(&plugin, &[(4, &[1])]));
    expect("elf32.so", "wrong_class", "built for a 32-bit target; this host is 64-bit".into());

    write("exec.so", &patched(&plugin, &[(16, &2u16.to_le_bytes())]));
    expect("exec.so", "executable", "an executable, not a shared library".into());

    std::fs::copy("/proc/self/exe", directory.join("test_binary.so")).unwrap();
    expect("test_binary.so", "executable", "a position-independent executable, not a shared library".into());

    std::fs::create_dir(directory.join("folder.so")).unwrap();
    expect("folder.so", "directory", "is a directory, not a shared library".into());

    std::os::unix::fs::symlink(work.path().join("gone.so"), directory.join("dangling.so")).unwrap();
    expect(
        "dangling.so",
        "dangling_symlink",
        format!(
            "dangling symlink to `{}` (the target does not exist)",
            work.path().join("gone.so").display()
        ),
    );

    std::os::unix::fs::symlink(&plugin, directory.join("link.so")).unwrap();
    expect("link.so", "symlink", format!("symlink to `{}`: plugins must be regular files", plugin.display()));

    write("locked.so", &original);
    std::fs::set_permissions(directory.join("locked.so"), std::fs::Permissions::from_mode(0o000)).unwrap();
    expect("locked.so", "unreadable", "unreadable: its mode grants no read permission".into());

    // A NEEDED entry renamed (same length) to a library no system has.
    let needed_at = original.windows(13).position(|window| window == b"libgcc_s.so.1").unwrap();
    write("needs_lib.so", &patched(&plugin, &[(needed_at, b"libkarma.so.7")]));
    expect("needs_lib.so", "missing_library", "missing library libkarma.so.7".into());

    // The root symbol's value set to an absolute 0: dlsym yields a null pointer.
    let entry = root_symbol_entry(&original);
    write(
        "null_root.so",
        &patched(&plugin, &[(entry + 6, &0xfff1u16.to_le_bytes()), (entry + 8, &0u64.to_le_bytes())]),
    );
    expect("null_root.so", "bad_root_pointer", "its root symbol is a null pointer".into());

    // The root symbol's value moved far past the end of the library's segments.
    write("wild_root.so", &patched(&plugin, &[(entry + 8, &0x7000_0000u64.to_le_bytes())]));
    expect("wild_root.so", "bad_root_pointer", "its root symbol points outside the library".into());

    std::fs::copy(fixture("not-a-plugin"), directory.join("plain_c.so")).unwrap();
    expect("plain_c.so", "not_a_plugin", "not a karma plugin: no root module".into());

    std::fs::copy(fixture("missing-symbol"), directory.join("missing_symbol.so")).unwrap();
    expect(
        "missing_symbol.so",
        "unresolved_symbol",
        "unresolved symbol `karma_fixture_function_nobody_defines`".into(),
    );

    std::fs::copy(fixture("different-abi"), directory.join("abi_v2.so")).unwrap();
    expect("abi_v2.so", "abi_major_mismatch", "built against plugin-api 2.0, this host supports 1.x".into());

    expected
}

#[test]
fn every_bad_file_gets_its_diagnostic_and_the_good_plugin_still_loads() {
    let work = Workdir::new();
    let directory = work.plugins_dir("plugins", &[baseline_plugin()]);
    std::fs::write(directory.join("README.txt"), "ignored: not named *.so").unwrap();
    let expected = build_corpus(&work, &directory);

    let run = karma_in(&directory, &["list", "plugins", "--format", "json"]);
    run.assert_code(0);
    let json = run.json();
    let plugins = json["plugins"].as_array().unwrap();
    assert_eq!(
        plugins.len(),
        expected.len() + 1,
        "every *.so entry and nothing else is reported:\n{}",
        run.stdout
    );
    for (name, code, reason) in &expected {
        let path = directory.join(name);
        let entry = plugins
            .iter()
            .find(|entry| entry["path"] == path.to_str().unwrap())
            .unwrap_or_else(|| panic!("{name} not reported"));
        assert_eq!(entry["status"], "rejected", "{name}");
        assert_eq!(entry["code"], *code, "{name}: {}", entry["reason"]);
        let actual = entry["reason"].as_str().unwrap();
        assert!(
            actual.starts_with(reason.as_str()),
            "{name}: expected reason starting with {reason:?}, got {actual:?}"
        );
    }
    let good = plugins.iter().find(|entry| entry["status"] == "loaded").unwrap();
    assert_eq!(good["path"], directory.join("libkarma_plugin_baseline.so").to_str().unwrap());

    let models = karma_in(&directory, &["list", "models", "--format", "json"]);
    models.assert_code(0);
    assert_eq!(models.json()["models"].as_array().unwrap().len(), 5);
    assert!(
        models.stderr.contains(&format!("{} plugin file(s) rejected", expected.len())),
        "{}",
        models.stderr
    );

    let echo = karma_in(&directory, &["run", "--model", "karma/echo", "--input", "still works"]);
    echo.assert_code(0);
    assert_eq!(echo.json_lines()[0]["output"], "still works");
}

#[test]
fn hints_are_shown_in_the_table() {
    let work = Workdir::new();
    let directory = work.plugins_dir("plugins", &[fixture("different-abi")]);
    let run = karma_in(&directory, &["list", "plugins"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("rejected  ")
            && run.stdout.contains(
                "libfixture_different_abi.so: built against plugin-api 2.0, this host supports 1.x"
            ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("hint: rebuild the plugin against karma-plugin-api 1.x"), "{}", run.stdout);
}
