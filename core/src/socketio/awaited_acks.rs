//! The acknowledgements a connection awaits from its client: by ack id (to match an answer) and
//! by deadline (the connection's next timer, asked for after every input and command).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytestring::ByteString;

use crate::engineio::Sid;

#[derive(Debug)]
pub(crate) struct AwaitedAck {
    pub namespace: ByteString,
    pub sid: Sid,
    pub deadline: Option<Instant>,
}

/// A BTreeMap rather than a HashMap: half the size in every idle connection, and ack ids grow,
/// so new entries go to the end. The deadlines are indexed apart so the earliest is found
/// without a walk over every ack awaited: the walk cost 21 µs per drive at 10,000 awaited
/// (`cargo bench -p sockio-core --bench acks`).
#[derive(Debug, Default)]
pub(crate) struct AwaitedAcks {
    by_id: BTreeMap<u64, AwaitedAck>,
    /// `(deadline, ack id)` of each ack that has a deadline.
    by_deadline: BTreeSet<(Instant, u64)>,
}

impl AwaitedAcks {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn get(&self, ack_id: u64) -> Option<&AwaitedAck> {
        self.by_id.get(&ack_id)
    }

    pub fn insert(&mut self, ack_id: u64, ack: AwaitedAck) {
        let deadline = ack.deadline;
        // Replacing one only after ack ids wrapped around u64 with the old one still awaited.
        if let Some(replaced) = self.by_id.insert(ack_id, ack)
            && let Some(replaced) = replaced.deadline
        {
            self.by_deadline.remove(&(replaced, ack_id));
        }
        if let Some(deadline) = deadline {
            self.by_deadline.insert((deadline, ack_id));
        }
    }

    pub fn remove(&mut self, ack_id: u64) -> Option<AwaitedAck> {
        let ack = self.by_id.remove(&ack_id)?;
        if let Some(deadline) = ack.deadline {
            self.by_deadline.remove(&(deadline, ack_id));
        }
        Some(ack)
    }

    /// The earliest deadline of an awaited ack.
    #[inline]
    pub fn earliest_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(deadline, _)| *deadline)
    }

    /// Removes the acks whose deadline is at or before `now`, in deadline order (ties by ack
    /// id): a timer that fires late expires several at once, and the application hears them as
    /// they fell due.
    pub fn take_expired(&mut self, now: Instant) -> Vec<(u64, AwaitedAck)> {
        let mut expired = Vec::new();
        while let Some(&(deadline, ack_id)) = self.by_deadline.first()
            && deadline <= now
        {
            self.by_deadline.pop_first();
            if let Some(ack) = self.by_id.remove(&ack_id) {
                expired.push((ack_id, ack));
            }
        }
        expired
    }

    /// Removes the acks that `matches` selects, in ack id order.
    pub fn take_matching(
        &mut self,
        matches: impl Fn(&AwaitedAck) -> bool,
    ) -> Vec<(u64, AwaitedAck)> {
        let ids: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(_, ack)| matches(ack))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| Some((id, self.remove(id)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ack(namespace: &'static str, deadline: Option<Instant>) -> AwaitedAck {
        AwaitedAck {
            namespace: ByteString::from_static(namespace),
            sid: Sid::from("s"),
            deadline,
        }
    }

    #[test]
    fn the_earliest_deadline_follows_inserts_and_removals() {
        let now = sockio_testkit::clock::start();
        let at = |secs| Some(now + Duration::from_secs(secs));
        let mut acks = AwaitedAcks::default();
        assert_eq!(acks.earliest_deadline(), None);
        acks.insert(1, ack("/", at(10)));
        acks.insert(2, ack("/", at(5)));
        acks.insert(3, ack("/", None));
        assert_eq!(acks.earliest_deadline(), at(5));
        assert_eq!(acks.remove(2).and_then(|ack| ack.deadline), at(5));
        assert_eq!(acks.earliest_deadline(), at(10));
        assert!(acks.remove(2).is_none());
        assert_eq!(acks.remove(1).and_then(|ack| ack.deadline), at(10));
        // An ack without a deadline sets none.
        assert_eq!(acks.earliest_deadline(), None);
        assert_eq!(acks.len(), 1);
    }

    #[test]
    fn expired_acks_come_in_deadline_order_then_by_id() {
        let now = sockio_testkit::clock::start();
        let at = |secs| Some(now + Duration::from_secs(secs));
        let mut acks = AwaitedAcks::default();
        acks.insert(1, ack("/", at(3)));
        acks.insert(2, ack("/", at(1)));
        acks.insert(3, ack("/", at(3)));
        acks.insert(4, ack("/", at(9)));
        acks.insert(5, ack("/", None));
        let expired: Vec<u64> = acks
            .take_expired(now + Duration::from_secs(3))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(expired, [2, 1, 3]);
        assert_eq!(acks.earliest_deadline(), at(9));
        assert_eq!(acks.len(), 2);
    }

    #[test]
    fn matching_acks_are_taken_in_id_order() {
        let now = sockio_testkit::clock::start();
        let mut acks = AwaitedAcks::default();
        acks.insert(7, ack("/chat", Some(now)));
        acks.insert(2, ack("/", Some(now)));
        acks.insert(4, ack("/chat", None));
        let taken: Vec<u64> = acks
            .take_matching(|ack| &*ack.namespace == "/chat")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(taken, [4, 7]);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks.earliest_deadline(), Some(now));
    }

    #[test]
    fn a_replaced_id_leaves_no_deadline_behind() {
        let now = sockio_testkit::clock::start();
        let mut acks = AwaitedAcks::default();
        acks.insert(1, ack("/", Some(now)));
        acks.insert(1, ack("/", None));
        assert_eq!(acks.earliest_deadline(), None);
        acks.insert(1, ack("/", Some(now)));
        acks.insert(1, ack("/", Some(now)));
        assert_eq!(acks.remove(1).and_then(|ack| ack.deadline), Some(now));
        assert_eq!(acks.earliest_deadline(), None);
        assert_eq!(acks.len(), 0);
    }
}
