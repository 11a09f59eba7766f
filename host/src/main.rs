use std::process::ExitCode;

// An eval allocates a few small strings and JSON values per item; mimalloc's thread-local free
// lists make that a fraction of glibc malloc's cost (about 15% of a warm-cache run's profile).
// Plugins keep their own allocator: everything crossing the ABI frees through its own vtable.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs before `main` and before the first Rust allocation: mimalloc reads its options from the
/// environment when it first reserves memory. Committing its arenas eagerly keeps memory
/// resident that is never used: peak RSS of a warm-cache eval was 45 MiB with it and 31 MiB
/// without, `list models` 12.5 and 7 MiB. A value the user set is kept.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

#[cfg(target_os = "linux")]
extern "C" fn configure_allocator() {
    // SAFETY: runs single-threaded before `main`; both strings are NUL-terminated literals.
    unsafe {
        libc::setenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr(), c"0".as_ptr(), 0);
    }
    keep_freed_plugin_memory();
}

/// Plugins allocate through glibc's malloc. Model runtimes free and reallocate the same large
/// activation buffers on every layer, and by default glibc hands blocks over 128 KiB (rising
/// with use, at most 32 MiB) back to the kernel on free, so each reuse faults its pages in
/// again (about 2 µs per 4 KiB page on the 2-core development VM). Whisper-tiny on 12 clips
/// took 316,000 page faults that way and 66,000 with these settings. Freed memory is kept
/// for reuse instead, up to 256 MiB above the heap's top; peak RSS is unchanged, since the
/// blocks are reused rather than added to. A user's `MALLOC_*` environment settings win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_plugin_memory() {
    let names = [c"MALLOC_MMAP_THRESHOLD_", c"MALLOC_TRIM_THRESHOLD_", c"GLIBC_TUNABLES"];
    // SAFETY: NUL-terminated literals; nothing else touches the environment before `main`.
    if names.iter().any(|name| unsafe { !libc::getenv(name.as_ptr()).is_null() }) {
        return;
    }
    // SAFETY: mallopt only sets allocator parameters; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
fn keep_freed_plugin_memory() {}

fn main() -> ExitCode {
    karma_host::cli::main()
}
