//! When to restart a worker slot, and when to give up: OTP's intensity and
//! period (at most `limit` restarts within `within`), and a per-slot backoff
//! that doubles with each consecutive restart, randomised by a jitter so
//! that slots that crash together do not restart together. Pure arithmetic.

use std::collections::VecDeque;
use std::time::Duration;

use actix::clock::Instant;

use crate::retry::Jitter;

/// The restart settings, validated by the builder (`base <= max`, `within > 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RestartPolicy {
    pub(crate) limit: u32,
    pub(crate) within: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) jitter: Jitter,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            limit: 50,
            within: Duration::from_secs(10),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            // Half the backoff at least, so that a crash loop still slows
            // down; the other half spreads slots apart.
            jitter: Jitter::Equal,
        }
    }
}

impl RestartPolicy {
    /// The delay before a slot's `consecutive`-th restart in a row (counting
    /// from 1): `base * 2^(consecutive - 1)`, capped at `max`, never overflowing.
    pub(crate) fn backoff(&self, consecutive: u32) -> Duration {
        let doublings = consecutive.saturating_sub(1).min(31);
        self.backoff_base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }

    /// [`backoff`](Self::backoff), randomised by the jitter with `unit`, a
    /// random number in `[0, 1)`.
    pub(crate) fn delay(&self, consecutive: u32, unit: f64) -> Duration {
        self.jitter.apply(self.backoff(consecutive), unit)
    }
}

/// The restarts of the last `within`, all slots together.
#[derive(Debug, Default)]
pub(crate) struct RestartWindow {
    times: VecDeque<Instant>,
}

impl RestartWindow {
    /// Counts a restart at `now`; `false` once more than `limit` fall within
    /// the window, which means: give up.
    pub(crate) fn allow(&mut self, now: Instant, policy: &RestartPolicy) -> bool {
        if let Some(horizon) = now.checked_sub(policy.within) {
            while self.times.front().is_some_and(|t| *t <= horizon) {
                self.times.pop_front();
            }
        }
        self.times.push_back(now);
        self.times.len() <= policy.limit as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limit: u32, within_ms: u64) -> RestartPolicy {
        RestartPolicy {
            limit,
            within: Duration::from_millis(within_ms),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(300),
            jitter: Jitter::Equal,
        }
    }

    #[test]
    fn the_jitter_keeps_a_delay_within_its_range_of_the_backoff() {
        let p = policy(1, 1);
        for unit in [0.0, 0.25, 0.999, 1.0, f64::NAN, f64::INFINITY, -3.0] {
            let delay = p.delay(3, unit);
            assert!(
                (Duration::from_millis(20)..=Duration::from_millis(40)).contains(&delay),
                "{unit}: {delay:?}"
            );
        }
        assert_eq!(p.delay(3, 0.5), Duration::from_millis(30));
        let exact = RestartPolicy {
            jitter: Jitter::None,
            ..p
        };
        assert_eq!(exact.delay(3, 0.9), Duration::from_millis(40));
    }

    #[test]
    fn backoff_doubles_until_the_cap() {
        let p = policy(1, 1);
        let delays: Vec<u64> = (1..=7).map(|n| p.backoff(n).as_millis() as u64).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn backoff_never_overflows_at_huge_counts() {
        let p = RestartPolicy {
            backoff_base: Duration::from_secs(u64::MAX / 4),
            backoff_max: Duration::MAX,
            ..policy(1, 1)
        };
        assert_eq!(p.backoff(u32::MAX), Duration::MAX);
        assert_eq!(policy(1, 1).backoff(u32::MAX), Duration::from_millis(300));
        assert_eq!(policy(1, 1).backoff(0), Duration::from_millis(10));
    }

    #[test]
    fn a_zero_base_restarts_at_once() {
        let p = RestartPolicy {
            backoff_base: Duration::ZERO,
            ..policy(1, 1)
        };
        assert_eq!(p.backoff(5), Duration::ZERO);
    }

    #[test]
    fn the_window_allows_limit_restarts_then_refuses() {
        let p = policy(2, 1_000);
        let mut window = RestartWindow::default();
        let t0 = Instant::now();
        assert!(window.allow(t0, &p));
        assert!(window.allow(t0 + Duration::from_millis(10), &p));
        assert!(!window.allow(t0 + Duration::from_millis(20), &p));
    }

    #[test]
    fn restarts_older_than_the_window_no_longer_count() {
        let p = policy(2, 1_000);
        let mut window = RestartWindow::default();
        let t0 = Instant::now();
        assert!(window.allow(t0, &p));
        assert!(window.allow(t0 + Duration::from_millis(500), &p));
        // t0 has left the window by now; only the 500 ms one is still counted.
        assert!(window.allow(t0 + Duration::from_millis(1_200), &p));
        assert!(!window.allow(t0 + Duration::from_millis(1_300), &p));
    }

    #[test]
    fn a_zero_limit_gives_up_on_the_first_restart() {
        let mut window = RestartWindow::default();
        assert!(!window.allow(Instant::now(), &policy(0, 1_000)));
    }
}
