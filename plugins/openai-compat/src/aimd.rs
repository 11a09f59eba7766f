//! The concurrency limit, adapted to the server's rate limit by AIMD (additive increase,
//! multiplicative decrease), as TCP adapts its window.
//!
//! The limit starts at `max_concurrency`. A 429 halves it (never below 1), but only if the
//! throttled request was sent after the last decrease: requests already in flight when the
//! limit was cut were sent under the old limit, and their 429s say nothing new. So a burst of
//! 429s from one round trip halves the limit once, not down to 1. Each success adds `1/limit`,
//! i.e. the limit grows by one per round trip's worth of successes, back up to
//! `max_concurrency`. One limiter serves every batch of an instance, so what a batch learned
//! carries over to the next.

use std::{
    sync::{Condvar, Mutex, MutexGuard},
    time::Instant,
};

/// A counting semaphore whose size follows AIMD.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    changed: Condvar,
    max: usize,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    /// Successes since the limit last grew.
    successes: usize,
    /// When the limit was last halved.
    last_decrease: Option<Instant>,
}

/// The right to have one request in flight; hand it back with its outcome.
#[derive(Debug)]
#[must_use = "a permit must be returned with its outcome"]
pub struct Permit {
    sent: Instant,
}

/// What became of a request, as far as the limit is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An answer: the server had room.
    Success,
    /// HTTP 429: too many requests.
    Throttled,
    /// Anything else (errors, 5xx): no evidence either way.
    Neutral,
}

impl Limiter {
    /// A limiter starting at `max` (at least 1).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Limiter {
            state: Mutex::new(State { limit: max, in_flight: 0, successes: 0, last_decrease: None }),
            changed: Condvar::new(),
            max,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent counters: keep going.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until fewer than `limit` requests are in flight and takes a slot.
    pub fn acquire(&self) -> Permit {
        let mut state = self.state();
        while state.in_flight >= state.limit {
            state = self.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.in_flight += 1;
        Permit { sent: Instant::now() }
    }

    /// Gives the slot back and adapts the limit to `outcome`.
    pub fn release(&self, permit: Permit, outcome: Outcome) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Success => {
                state.successes += 1;
                if state.successes >= state.limit {
                    state.successes = 0;
                    state.limit = (state.limit + 1).min(self.max);
                }
            }
            Outcome::Throttled => {
                let news = state.last_decrease.is_none_or(|decreased| permit.sent > decreased);
                if news {
                    state.limit = (state.limit / 2).max(1);
                    state.successes = 0;
                    state.last_decrease = Some(Instant::now());
                    tracing::debug!(limit = state.limit, "rate limited (HTTP 429): concurrency halved");
                }
            }
            Outcome::Neutral => {}
        }
        drop(state);
        self.changed.notify_all();
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.state().limit
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// The configured maximum.
    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[test]
    fn a_burst_of_429s_from_one_round_trip_halves_once() {
        let limiter = Limiter::new(32);
        let permits: Vec<Permit> = (0..32).map(|_| limiter.acquire()).collect();
        for permit in permits {
            limiter.release(permit, Outcome::Throttled);
        }
        assert_eq!(limiter.limit(), 16, "all 32 were sent before the first decrease");
        // A request sent after the decrease and throttled halves again.
        std::thread::sleep(Duration::from_millis(2));
        let permit = limiter.acquire();
        limiter.release(permit, Outcome::Throttled);
        assert_eq!(limiter.limit(), 8);
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(1));
            let permit = limiter.acquire();
            limiter.release(permit, Outcome::Throttled);
        }
        assert_eq!(limiter.limit(), 1, "never below 1");
        assert_eq!(limiter.in_flight(), 0);
    }

    #[test]
    fn successes_grow_the_limit_by_one_per_window_up_to_the_maximum() {
        let limiter = Limiter::new(8);
        let permit = limiter.acquire();
        limiter.release(permit, Outcome::Throttled);
        assert_eq!(limiter.limit(), 4);
        for _ in 0..3 {
            let permit = limiter.acquire();
            limiter.release(permit, Outcome::Success);
        }
        assert_eq!(limiter.limit(), 4, "4 successes per step at limit 4");
        let permit = limiter.acquire();
        limiter.release(permit, Outcome::Success);
        assert_eq!(limiter.limit(), 5);
        for _ in 0..1000 {
            let permit = limiter.acquire();
            limiter.release(permit, Outcome::Success);
        }
        assert_eq!(limiter.limit(), 8, "capped at max_concurrency");
        let permit = limiter.acquire();
        limiter.release(permit, Outcome::Neutral);
        assert_eq!(limiter.limit(), 8);
    }

    #[test]
    fn acquire_blocks_at_the_limit_until_a_slot_is_released() {
        let limiter = Arc::new(Limiter::new(2));
        let first = limiter.acquire();
        let _second = limiter.acquire();
        let waiter = {
            let limiter = Arc::clone(&limiter);
            std::thread::spawn(move || {
                let permit = limiter.acquire();
                limiter.release(permit, Outcome::Success);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a third request waits");
        assert_eq!(limiter.in_flight(), 2);
        limiter.release(first, Outcome::Success);
        waiter.join().unwrap();
        assert_eq!(limiter.in_flight(), 1);
    }
}
