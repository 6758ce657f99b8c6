//! cargo-fuzz target `threads_http1`: see [`sockio_fuzz::threads_http1`]. Built without
//! `--cfg fuzzing` (plain cargo), it replays the files or directories given as arguments through
//! the same function.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sockio_fuzz::threads_http1(data));

#[cfg(not(fuzzing))]
fn main() -> std::process::ExitCode {
    sockio_fuzz::replay_main(sockio_fuzz::threads_http1)
}
