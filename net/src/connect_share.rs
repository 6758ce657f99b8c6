//! How long a connect to one of a host name's addresses may take, when the addresses are tried
//! one after another under one deadline.

use std::time::{Duration, Instant};

/// The time for the next of `untried` addresses (it among them): an equal share of what is left
/// before `deadline`, so one address that drops packets (a broken IPv6 route ahead of a working
/// IPv4 one) cannot take the whole deadline and leave the next untried. `None` once the deadline
/// has passed.
pub fn connect_share(deadline: Instant, now: Instant, untried: usize) -> Option<Duration> {
    let left = deadline.saturating_duration_since(now);
    if left.is_zero() {
        return None;
    }
    let untried = u32::try_from(untried.max(1)).unwrap_or(u32::MAX);
    Some(left / untried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_untried_address_gets_an_equal_share_of_the_time_left() {
        let now = sockio_testkit::clock::start();
        let deadline = now + Duration::from_secs(6);
        assert_eq!(
            connect_share(deadline, now, 3),
            Some(Duration::from_secs(2))
        );
        // The last address gets all that is left.
        assert_eq!(
            connect_share(deadline, now + Duration::from_secs(4), 1),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            connect_share(deadline, now, 0),
            Some(Duration::from_secs(6))
        );
        assert_eq!(connect_share(deadline, deadline, 2), None);
        assert_eq!(
            connect_share(deadline, deadline + Duration::from_secs(1), 1),
            None
        );
    }
}
