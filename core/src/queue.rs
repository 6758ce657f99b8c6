//! Queues that give their memory back when they empty.
//!
//! Every connection holds a few event and output queues that are empty nearly all the time. A
//! `VecDeque` keeps the capacity of its first push (four elements of 40 to 150 bytes each) for as
//! long as it lives, which was about 1.8 KiB per idle connection (heaptrack, bench/ANALYSIS.md).
//! Popping through [`pop_front_releasing`] frees that capacity once the queue is empty again, at
//! the price of one allocation per burst of events.

use std::collections::VecDeque;

/// Pops the front element of `queue`, and releases the queue's buffer when that left it empty.
/// Inlined: callers poll their queues until `None`, so most calls find them empty, and a call
/// that is not inlined moves the large `Option<T>` out through memory even then (callgrind: 15
/// calls and 15 `memcpy`s per echo event, bench/ANALYSIS.md).
#[inline]
pub fn pop_front_releasing<T>(queue: &mut VecDeque<T>) -> Option<T> {
    if queue.is_empty() {
        return None;
    }
    let front = queue.pop_front();
    if queue.is_empty() && queue.capacity() > 0 {
        *queue = VecDeque::new();
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_queue_holds_no_buffer_and_order_is_kept() {
        let mut queue = VecDeque::new();
        queue.extend([1, 2, 3]);
        assert_eq!(pop_front_releasing(&mut queue), Some(1));
        assert!(queue.capacity() > 0, "not empty yet");
        assert_eq!(pop_front_releasing(&mut queue), Some(2));
        assert_eq!(pop_front_releasing(&mut queue), Some(3));
        assert_eq!(queue.capacity(), 0);
        assert_eq!(pop_front_releasing(&mut queue), None);
        queue.push_back(4);
        assert_eq!(pop_front_releasing(&mut queue), Some(4));
        assert_eq!(queue.capacity(), 0);
    }
}
