use std::process::ExitCode;

// An eval allocates a few small strings and JSON values per item; mimalloc's thread-local free
// lists make that a fraction of glibc malloc's cost (about 15% of a warm-cache run's profile).
// Plugins keep their own allocator: everything crossing the ABI frees through its own vtable.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    karma_host::cli::main()
}
