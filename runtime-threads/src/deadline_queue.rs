//! Items kept until a time of their own, taken earliest first (ties in the order they came): the
//! timer thread's connection deadlines, the WebSocket writer pool's retries. A heap, so that
//! taking what is due does not walk what is not, under locks every connection takes.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

pub(crate) struct DeadlineQueue<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    pushed: u64,
}

impl<T> Default for DeadlineQueue<T> {
    fn default() -> Self {
        DeadlineQueue {
            heap: BinaryHeap::new(),
            pushed: 0,
        }
    }
}

struct Entry<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<T> DeadlineQueue<T> {
    pub fn push(&mut self, at: Instant, item: T) {
        self.pushed += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.pushed,
            item,
        }));
    }

    /// The earliest item due at `now`, with its time.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.earliest()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| (entry.at, entry.item))
    }

    pub fn earliest(&self) -> Option<Instant> {
        self.heap.peek().map(|entry| entry.0.at)
    }

    /// The items waiting, stale ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn items_are_taken_when_due_earliest_first_then_in_order_of_arrival() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut queue = DeadlineQueue::default();
        queue.push(now + ms(20), "c");
        queue.push(now + ms(10), "a");
        queue.push(now + ms(30), "d");
        queue.push(now + ms(10), "b");
        assert_eq!(queue.earliest(), Some(now + ms(10)));
        assert_eq!(queue.pop_due(now), None);
        let due: Vec<_> = std::iter::from_fn(|| queue.pop_due(now + ms(20))).collect();
        assert_eq!(
            due,
            [
                (now + ms(10), "a"),
                (now + ms(10), "b"),
                (now + ms(20), "c")
            ]
        );
        assert_eq!(queue.earliest(), Some(now + ms(30)));
        assert_eq!(queue.pop_due(now + ms(60)), Some((now + ms(30), "d")));
        assert_eq!(queue.earliest(), None);
        assert_eq!(queue.len(), 0);
    }
}
