//! A short wait for more work before a pool thread goes to sleep.
//!
//! Work comes in bursts (a client's next event arrives a few microseconds after its
//! acknowledgement went out), and a thread that sleeps on a condition variable costs two system
//! calls and a context switch to wake. Looking again a few times first, spinning and then
//! yielding, finds many of the next jobs awake (the measurement is in bench/ANALYSIS.md, "The
//! threads runtime's hand-overs").

/// Looks before sleeping: the first few spin for 1, 2, 4, ... cycles, the rest yield the core.
const STEPS: u32 = 10;
const SPIN_STEPS: u32 = 6;

/// How far a thread got in its wait for more work.
#[derive(Default)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    /// True once the thread has looked often enough and should sleep.
    pub fn exhausted(&self) -> bool {
        self.step >= STEPS
    }

    /// Waits a little (the caller holds no lock), then lets the caller look again.
    pub fn snooze(&mut self) {
        if self.step < SPIN_STEPS {
            for _ in 0..1u32 << self.step {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        self.step += 1;
    }

    /// Work was found, or the thread slept: the next wait starts over.
    pub fn reset(&mut self) {
        self.step = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_looks_a_bounded_number_of_times_then_sleeps_and_starts_over() {
        let mut backoff = Backoff::default();
        let mut looks = 0;
        while !backoff.exhausted() {
            backoff.snooze();
            looks += 1;
        }
        assert_eq!(looks, STEPS);
        backoff.reset();
        assert!(!backoff.exhausted());
    }
}
