//! When a broker listener tries again: python-socketio's listeners wait 1 s after a failure,
//! doubling up to 60 s, and start over at 1 s once a connection works. Every runtime's Redis
//! and AMQP subscribers follow this one schedule.

use std::time::Duration;

/// The first wait after a failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// A listener's reconnection state.
#[derive(Debug, Clone)]
pub struct Reconnect {
    delay: Duration,
    lost: bool,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            delay: FIRST_DELAY,
            lost: false,
        }
    }
}

impl Reconnect {
    /// A connection works again. `true` when it replaces a lost one (what was published
    /// meanwhile may be missing, which is worth a warning rather than an info line).
    pub fn connected(&mut self) -> bool {
        self.delay = FIRST_DELAY;
        self.lost
    }

    /// How long the next wait will be (for the log line of a failure).
    pub fn retry_in(&self) -> Duration {
        self.delay
    }

    /// An attempt failed or a connection was lost: how long to wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        self.lost = true;
        let delay = self.delay;
        self.delay = (delay * 2).min(MAX_DELAY);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_starts_over_once_connected() {
        let mut reconnect = Reconnect::default();
        assert!(
            !reconnect.connected(),
            "the first connection restores nothing"
        );
        let waits: Vec<u64> = (0..8).map(|_| reconnect.failed().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert!(
            reconnect.connected(),
            "a connection after a failure is a restoration"
        );
        assert_eq!(reconnect.retry_in(), FIRST_DELAY);
        assert_eq!(reconnect.failed(), FIRST_DELAY);
    }
}
