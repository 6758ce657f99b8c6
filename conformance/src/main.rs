//! `sockio-conformance serve ...` and `sockio-conformance matrix`; see the library docs.

fn main() -> std::process::ExitCode {
    sockio_conformance::main_with_args(std::env::args_os())
}
