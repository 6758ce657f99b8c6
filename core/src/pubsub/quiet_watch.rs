//! When a quiet Redis subscription is taken for dead. A subscriber only reads: a connection that
//! died without a word (a NAT or a load balancer dropped it, the host vanished) looks just like a
//! channel nobody publishes on, and the server would stay deaf to every other server. So after
//! [`PING_EVERY`] without traffic the subscriber sends a `PING`; if nothing comes back within
//! [`PING_EVERY`] more, the connection is dead and the runtime reconnects. Anything read resets
//! the watch (a message is as good a sign of life as the ping's answer).
//!
//! Sans-IO: time is an input. The runtime reads from the connection until about
//! [`QuietWatch::poll_timeout`] (it may wake sooner, for its own reasons, or look only at its next
//! periodic wake-up, as the threads runtime's read timeout does), tells
//! the watch about every read that brought bytes ([`QuietWatch::handle_traffic`]), and on a read
//! that timed out asks [`QuietWatch::handle_timeout`] what to do.

use std::time::{Duration, Instant};

/// How long a subscription may be quiet before the subscriber pings, and how long it then waits
/// for any answer before taking the connection for dead: a silently dead connection must not
/// leave the server deaf for longer than twice this.
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// What a subscriber does after a read that brought nothing, as [`QuietWatch::handle_timeout`]
/// decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietCheck {
    /// Quiet, but not for long enough yet: read on.
    Wait,
    /// Quiet for [`PING_EVERY`]: send a ping, then call [`QuietWatch::handle_ping_sent`].
    Ping,
    /// Nothing came for [`PING_EVERY`] after a ping: the connection is dead.
    Dead,
}

/// One subscriber connection's watch for silence.
#[derive(Debug, Clone)]
pub struct QuietWatch {
    /// When the quiet channel is next looked at: a ping then, or, after a ping, the end of the
    /// wait for its answer.
    quiet_until: Instant,
    /// A ping went out and nothing came since.
    pinged: bool,
}

impl QuietWatch {
    /// A watch for a connection that is ready at `now` (subscribed: the confirmation was its
    /// last traffic).
    pub fn new(now: Instant) -> Self {
        QuietWatch {
            quiet_until: now + PING_EVERY,
            pinged: false,
        }
    }

    /// The connection brought bytes at `now` (a message, the ping's answer, anything): it is
    /// alive, and the quiet period starts over.
    pub fn handle_traffic(&mut self, now: Instant) {
        self.pinged = false;
        self.quiet_until = now + PING_EVERY;
    }

    /// The ping [`QuietCheck::Ping`] asked for was written at `now`: its answer (or any
    /// traffic) is awaited until [`PING_EVERY`] later.
    pub fn handle_ping_sent(&mut self, now: Instant) {
        self.pinged = true;
        self.quiet_until = now + PING_EVERY;
    }

    /// A read waited until `now` and brought nothing: what to do. [`QuietCheck::Ping`] is
    /// answered until the runtime reports the ping sent.
    pub fn handle_timeout(&self, now: Instant) -> QuietCheck {
        if now < self.quiet_until {
            QuietCheck::Wait
        } else if self.pinged {
            QuietCheck::Dead
        } else {
            QuietCheck::Ping
        }
    }

    /// The latest moment the runtime's read may wait until before calling
    /// [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Instant {
        self.quiet_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn traffic_resets_the_quiet_period() {
        let start = sockio_testkit::clock::start();
        let mut watch = QuietWatch::new(start);
        assert_eq!(watch.poll_timeout(), start + PING_EVERY);
        let later = start + PING_EVERY - SECOND;
        assert_eq!(watch.handle_timeout(later), QuietCheck::Wait);
        watch.handle_traffic(later);
        assert_eq!(watch.poll_timeout(), later + PING_EVERY);
        assert_eq!(
            watch.handle_timeout(start + PING_EVERY),
            QuietCheck::Wait,
            "quiet for less than PING_EVERY since the traffic"
        );
    }

    #[test]
    fn a_quiet_channel_is_pinged() {
        let start = sockio_testkit::clock::start();
        let mut watch = QuietWatch::new(start);
        let due = watch.poll_timeout();
        assert_eq!(watch.handle_timeout(due), QuietCheck::Ping);
        assert_eq!(
            watch.handle_timeout(due + SECOND),
            QuietCheck::Ping,
            "asked again until the ping is reported sent"
        );
        watch.handle_ping_sent(due + SECOND);
        assert_eq!(watch.poll_timeout(), due + SECOND + PING_EVERY);
        assert_eq!(watch.handle_timeout(due + 2 * SECOND), QuietCheck::Wait);
    }

    #[test]
    fn an_unanswered_ping_means_a_dead_connection() {
        let start = sockio_testkit::clock::start();
        let mut watch = QuietWatch::new(start);
        let due = watch.poll_timeout();
        assert_eq!(watch.handle_timeout(due), QuietCheck::Ping);
        watch.handle_ping_sent(due);
        let answer_due = watch.poll_timeout();
        assert_eq!(answer_due, due + PING_EVERY);
        assert_eq!(watch.handle_timeout(answer_due - SECOND), QuietCheck::Wait);
        assert_eq!(watch.handle_timeout(answer_due), QuietCheck::Dead);
        assert_eq!(watch.handle_timeout(answer_due + SECOND), QuietCheck::Dead);
    }

    #[test]
    fn an_answer_after_the_ping_makes_it_fine_again() {
        let start = sockio_testkit::clock::start();
        let mut watch = QuietWatch::new(start);
        let due = watch.poll_timeout();
        assert_eq!(watch.handle_timeout(due), QuietCheck::Ping);
        watch.handle_ping_sent(due);
        let answered = due + SECOND;
        watch.handle_traffic(answered);
        assert_eq!(watch.poll_timeout(), answered + PING_EVERY);
        assert_eq!(
            watch.handle_timeout(due + PING_EVERY),
            QuietCheck::Wait,
            "the old wait for the answer is over"
        );
        assert_eq!(
            watch.handle_timeout(answered + PING_EVERY),
            QuietCheck::Ping,
            "quiet again: a new ping, not a dead connection"
        );
    }
}
