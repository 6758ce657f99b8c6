//! cargo-fuzz target `payload_args`: see [`sockio_fuzz::payload_args`]. Built without `--cfg fuzzing` (plain
//! cargo), it replays the files or directories given as arguments through the same function.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sockio_fuzz::payload_args(data));

#[cfg(not(fuzzing))]
fn main() -> std::process::ExitCode {
    sockio_fuzz::replay_main(sockio_fuzz::payload_args)
}
