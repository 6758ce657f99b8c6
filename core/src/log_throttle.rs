//! How often a log line that remote input can trigger at will is written.
//!
//! A client sending 10,000 events a handler cannot read made 10,000 warnings: one client could
//! fill the disk and drown every other line. The runtimes give each such line (a handler's
//! panic, arguments that do not fit, a return value that cannot be sent, an emit callback's
//! panic, a raw Engine.IO callback's panic, a broker message ignored) a [`LogThrottle`] of its own: at most
//! [`LINES_PER_WINDOW`] lines per [`WINDOW`], the rest suppressed and counted, and the count
//! given with the next line written. Pure logic: the caller passes the time (the runtimes do it
//! through `sockio_net::throttled_log!`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines written per window, per throttled line.
pub const LINES_PER_WINDOW: u32 = 10;

/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Whether to write a line now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogVerdict {
    /// Write it, saying that `suppressed` lines were left out since the last one written.
    Write { suppressed: u64 },
    /// Leave it out (it is counted).
    Suppress,
}

#[derive(Debug)]
struct Window {
    started: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// The budget of one log line (a `static` at the line's call site).
#[derive(Debug)]
pub struct LogThrottle {
    window: Mutex<Window>,
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new()
    }
}

impl LogThrottle {
    /// A fresh budget: the first [`LINES_PER_WINDOW`] lines are written.
    pub const fn new() -> Self {
        LogThrottle {
            window: Mutex::new(Window {
                started: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether the line that happens at `now` is written. A window starts with the first line
    /// written after the previous one ended, so a line is never left out after a quiet window.
    pub fn admit(&self, now: Instant) -> LogVerdict {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let ended = window
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= WINDOW);
        if ended {
            window.started = Some(now);
            window.written = 0;
        }
        if window.written < LINES_PER_WINDOW {
            window.written += 1;
            LogVerdict::Write {
                suppressed: std::mem::take(&mut window.suppressed),
            }
        } else {
            window.suppressed += 1;
            LogVerdict::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_writes_its_budget_then_counts_what_it_leaves_out() {
        let throttle = LogThrottle::new();
        let start = sockio_testkit::clock::start();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(throttle.admit(start), LogVerdict::Write { suppressed: 0 });
        }
        for n in 1..=25 {
            let at = start + Duration::from_millis(n);
            assert_eq!(throttle.admit(at), LogVerdict::Suppress);
        }
        // The next window's first line says how many were left out, then the count restarts.
        let next = start + WINDOW;
        assert_eq!(throttle.admit(next), LogVerdict::Write { suppressed: 25 });
        assert_eq!(throttle.admit(next), LogVerdict::Write { suppressed: 0 });
    }

    #[test]
    fn a_line_after_a_quiet_spell_is_written() {
        let throttle = LogThrottle::new();
        let start = sockio_testkit::clock::start();
        assert_eq!(throttle.admit(start), LogVerdict::Write { suppressed: 0 });
        let later = start + WINDOW * 100;
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(throttle.admit(later), LogVerdict::Write { suppressed: 0 });
        }
        assert_eq!(throttle.admit(later), LogVerdict::Suppress);
    }

    #[test]
    fn a_clock_read_before_the_window_started_stays_in_it() {
        // Threads read the clock before taking the lock, so times may come slightly out of order.
        let throttle = LogThrottle::new();
        let start = sockio_testkit::clock::start() + Duration::from_secs(1);
        for _ in 0..LINES_PER_WINDOW {
            assert!(matches!(throttle.admit(start), LogVerdict::Write { .. }));
        }
        let earlier = start - Duration::from_millis(5);
        assert_eq!(throttle.admit(earlier), LogVerdict::Suppress);
    }
}
