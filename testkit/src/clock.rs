//! Where a test's virtual clock starts. The sans-IO core never reads a clock, not even in its own
//! unit tests: they take their first `Instant` from here (the harness's side of the boundary, as
//! `core/tests/support` does) and move time forward by adding durations.

use std::time::Instant;

/// The first instant of a virtual clock; later instants are this plus durations.
pub fn start() -> Instant {
    Instant::now()
}
