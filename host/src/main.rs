use std::process::ExitCode;

fn main() -> ExitCode {
    karma_host::cli::main()
}
