//! Static checks on a candidate file, before any of its code can run.
//!
//! `dlopen` runs a library's constructors and gives misleading errors (glibc reports a library
//! for another architecture as "No such file or directory"), so we first read the ELF header and
//! dynamic section ourselves and reject anything that cannot be a plugin for this host.

use std::{fs, io::Read, os::unix::fs::PermissionsExt, path::Path};

use goblin::elf::{dynamic::DF_1_PIE, header, Elf};

use super::rejection::{RejectCode, Rejection};

/// What the static checks learned about a plausible plugin.
#[derive(Debug)]
pub struct ElfSummary {
    /// Libraries listed as `DT_NEEDED`, to name the missing one if `dlopen` fails.
    pub needed: Vec<String>,
}

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const ELF64_HEADER_LEN: usize = 64;

#[cfg(target_arch = "x86_64")]
const HOST_MACHINE: u16 = header::EM_X86_64;
#[cfg(target_arch = "aarch64")]
const HOST_MACHINE: u16 = header::EM_AARCH64;
#[cfg(target_arch = "riscv64")]
const HOST_MACHINE: u16 = header::EM_RISCV;

/// Checks everything that can be checked without loading the file.
pub fn check(path: &Path) -> Result<ElfSummary, Rejection> {
    let reject = |code, reason: String| Rejection::new(path, code, reason);
    let link_metadata = fs::symlink_metadata(path)
        .map_err(|error| reject(RejectCode::Unreadable, format!("cannot inspect the file: {error}")))?;
    let file_type = link_metadata.file_type();
    if file_type.is_symlink() {
        let target = fs::read_link(path).map(|target| target.display().to_string()).unwrap_or_default();
        return Err(if fs::metadata(path).is_err() {
            reject(
                RejectCode::DanglingSymlink,
                format!("dangling symlink to `{target}` (the target does not exist)"),
            )
            .hint("remove the link or restore its target")
        } else {
            reject(RejectCode::Symlink, format!("symlink to `{target}`: plugins must be regular files"))
                .hint("copy the library itself into the plugin directory")
        });
    }
    if file_type.is_dir() {
        return Err(reject(RejectCode::Directory, "is a directory, not a shared library".to_owned()));
    }
    if !file_type.is_file() {
        return Err(reject(RejectCode::NotRegularFile, "not a regular file".to_owned()));
    }
    if link_metadata.permissions().mode() & 0o444 == 0 {
        return Err(reject(
            RejectCode::Unreadable,
            "unreadable: its mode grants no read permission".to_owned(),
        )
        .hint("`chmod a+r` the file"));
    }
    let mut file = fs::File::open(path)
        .map_err(|error| reject(RejectCode::Unreadable, format!("unreadable: {error}")))?;
    let size = link_metadata.len();
    if size == 0 {
        return Err(reject(RejectCode::EmptyFile, "empty file (0 bytes), not a shared library".to_owned()));
    }
    let mut head = Vec::with_capacity(ELF64_HEADER_LEN);
    file.by_ref()
        .take(ELF64_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|error| reject(RejectCode::Unreadable, format!("unreadable: {error}")))?;
    check_header(path, &head, size)?;

    // SAFETY: the map is read-only and lives only during this function. Another process
    // truncating the file meanwhile could fault the read; plugin directories are not expected to
    // be written concurrently with a scan.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|error| reject(RejectCode::Unreadable, format!("cannot map the file: {error}")))?;
    let elf = Elf::parse(&map).map_err(|error| {
        reject(RejectCode::TruncatedElf, format!("truncated or corrupt ELF file ({size} bytes): {error}"))
            .hint("copy the library again; the file is incomplete")
    })?;
    if elf.interpreter.is_some()
        || elf.dynamic.as_ref().is_some_and(|dynamic| dynamic.info.flags_1 & DF_1_PIE != 0)
    {
        return Err(reject(
            RejectCode::Executable,
            "a position-independent executable, not a shared library".to_owned(),
        )
        .hint("build the plugin with `crate-type = [\"cdylib\"]`"));
    }
    let exports_root = elf.dynsyms.iter().any(|symbol| {
        symbol.st_shndx != goblin::elf::section_header::SHN_UNDEF as usize
            && elf.dynstrtab.get_at(symbol.st_name) == Some(karma_plugin_api::abi::ROOT_SYMBOL)
    });
    if !exports_root {
        return Err(reject(RejectCode::NotAPlugin, "not a karma plugin: no root module".to_owned()).hint(
            "a plugin is a `cdylib` crate that calls `karma_plugin_api::export_plugin!`; other libraries do not belong in a plugin directory",
        ));
    }
    Ok(ElfSummary { needed: elf.libraries.iter().map(|name| (*name).to_owned()).collect() })
}

fn check_header(path: &Path, head: &[u8], size: u64) -> Result<(), Rejection> {
    let reject = |code, reason: String| Rejection::new(path, code, reason);
    if head.len() < ELF_MAGIC.len() || &head[..4] != ELF_MAGIC {
        return Err(reject(RejectCode::NotElf, format!("not a shared library: {}", describe_non_elf(head))));
    }
    if head.len() < ELF64_HEADER_LEN {
        return Err(reject(
            RejectCode::TruncatedElf,
            format!("truncated ELF file ({size} bytes; the header alone needs {ELF64_HEADER_LEN})"),
        ));
    }
    match head[header::EI_CLASS] {
        header::ELFCLASS64 => {}
        header::ELFCLASS32 => {
            return Err(reject(
                RejectCode::WrongClass,
                "built for a 32-bit target; this host is 64-bit".to_owned(),
            ))
        }
        other => return Err(reject(RejectCode::WrongClass, format!("invalid ELF class {other}"))),
    }
    if head[header::EI_DATA] != header::ELFDATA2LSB {
        return Err(reject(RejectCode::WrongEndianness, "built for a big-endian target".to_owned()));
    }
    let file_type = u16::from_le_bytes([head[16], head[17]]);
    let machine = u16::from_le_bytes([head[18], head[19]]);
    if machine != HOST_MACHINE {
        return Err(reject(
            RejectCode::WrongArchitecture,
            format!("built for {}, this host is {}", machine_name(machine), machine_name(HOST_MACHINE)),
        )
        .hint(format!("rebuild the plugin for {}", machine_name(HOST_MACHINE))));
    }
    let field = |offset: usize, len: usize| -> u64 {
        head[offset..offset + len].iter().rev().fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
    };
    let table_end =
        |offset: u64, entry_size: u64, count: u64| offset.saturating_add(entry_size.saturating_mul(count));
    let expected = table_end(field(32, 8), field(54, 2), field(56, 2)).max(table_end(
        field(40, 8),
        field(58, 2),
        field(60, 2),
    ));
    if expected > size {
        return Err(reject(
            RejectCode::TruncatedElf,
            format!("truncated ELF file ({size} bytes; its headers say it is at least {expected})"),
        )
        .hint("copy the library again; the file is incomplete"));
    }
    match file_type {
        header::ET_DYN => Ok(()),
        header::ET_EXEC => {
            Err(reject(RejectCode::Executable, "an executable, not a shared library".to_owned())
                .hint("build the plugin with `crate-type = [\"cdylib\"]`"))
        }
        header::ET_REL => {
            Err(reject(RejectCode::NotSharedLibrary, "an object file (.o), not a shared library".to_owned()))
        }
        header::ET_CORE => {
            Err(reject(RejectCode::NotSharedLibrary, "a core dump, not a shared library".to_owned()))
        }
        other => Err(reject(RejectCode::NotSharedLibrary, format!("ELF type {other}, not a shared library"))),
    }
}

fn describe_non_elf(head: &[u8]) -> String {
    let looks_like_text = !head.is_empty()
        && std::str::from_utf8(head)
            .is_ok_and(|text| text.chars().all(|c| !c.is_control() || c.is_whitespace()));
    if looks_like_text {
        let text = String::from_utf8_lossy(head);
        let first_line = text.lines().next().unwrap_or_default();
        let shown: String = first_line.chars().take(24).collect();
        format!("it is a text file (starts with \"{shown}\")")
    } else {
        let bytes: Vec<String> = head.iter().take(8).map(|byte| format!("{byte:02x}")).collect();
        format!("not an ELF file (first bytes: {})", bytes.join(" "))
    }
}

fn machine_name(machine: u16) -> String {
    match machine {
        header::EM_X86_64 => "x86_64".to_owned(),
        header::EM_AARCH64 => "aarch64".to_owned(),
        header::EM_386 => "i386".to_owned(),
        header::EM_ARM => "arm".to_owned(),
        header::EM_RISCV => "riscv".to_owned(),
        header::EM_PPC64 => "powerpc64".to_owned(),
        header::EM_S390 => "s390x".to_owned(),
        other => format!("machine type {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_file_is_named_as_text() {
        let rejection = check_header(Path::new("x.so"), b"hello plugin\n", 13).unwrap_err();
        assert_eq!(rejection.code, RejectCode::NotElf);
        assert!(
            rejection.reason.contains("text file (starts with \"hello plugin\")"),
            "{}",
            rejection.reason
        );
    }

    #[test]
    fn binary_garbage_shows_bytes() {
        let rejection = check_header(Path::new("x.so"), &[0, 1, 2, 0xff], 4).unwrap_err();
        assert!(rejection.reason.contains("first bytes: 00 01 02 ff"), "{}", rejection.reason);
    }

    #[test]
    fn short_elf_is_truncated() {
        let rejection = check_header(Path::new("x.so"), b"\x7fELF\x02\x01", 6).unwrap_err();
        assert_eq!(rejection.code, RejectCode::TruncatedElf);
    }
}
