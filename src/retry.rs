//! [`RetryPolicy`]: how often a failed task is tried again, and how long it
//! waits in between (exponential backoff with a cap and jitter). The arithmetic
//! here is pure: the random part comes in as a number in `[0, 1)`.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// How a retry delay is randomised, as in the AWS Architecture Blog's
/// "Exponential Backoff And Jitter": spreading retries apart stops many tasks
/// that failed together from retrying together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// The delay exactly: `min(cap, base * factor^n)`.
    None,
    /// Anywhere from zero to the delay.
    #[default]
    Full,
    /// Half the delay, plus anywhere from zero to the other half.
    Equal,
}

/// When and how a failed task is tried again.
///
/// Attempt `n + 1` (after `n` failures) waits `min(max_delay, base_delay *
/// factor^(n-1))`, randomised by the [`Jitter`]. The wait happens in the
/// supervisor, on a timer: the worker takes other work meanwhile. There is no
/// wait after the last attempt.
///
/// What retries: any error for which [`Task::is_retryable`](crate::Task::is_retryable)
/// says yes (by default, every error), and timeouts; a panic only with
/// [`retry_panics`](RetryPolicyBuilder::retry_panics).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actix_workerpool::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(4)
///     .base_delay(Duration::from_millis(100))
///     .factor(2.0)
///     .max_delay(Duration::from_secs(5))
///     .jitter(Jitter::Equal)
///     .build()
///     .unwrap();
/// assert_eq!(policy.max_attempts(), 4);
///
/// let refused = RetryPolicy::builder().factor(f64::NAN).build();
/// assert!(refused.is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: Jitter,
    retry_panics: bool,
}

/// Builds a [`RetryPolicy`]; made by [`RetryPolicy::builder`].
///
/// | setting | default | refused |
/// |---|---|---|
/// | `max_attempts` | 3 | 0 |
/// | `base_delay` | 100 ms | longer than `max_delay` |
/// | `factor` | 2.0 | NaN, infinite, below 1 |
/// | `max_delay` | 30 s | |
/// | `jitter` | [`Jitter::Full`] | |
/// | `retry_panics` | false | |
#[derive(Debug, Clone, Copy)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

/// A [`RetryPolicy`] setting that [`RetryPolicyBuilder::build`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum RetryPolicyError {
    /// `max_attempts(0)`: a task gets at least one attempt.
    #[error("a retry policy needs at least one attempt")]
    ZeroAttempts,
    /// The factor is NaN, infinite or below 1 (delays would shrink or be undefined).
    #[error("the backoff factor must be finite and at least 1, not {0}")]
    Factor(f64),
    /// `base_delay` is longer than `max_delay`.
    #[error("the base delay ({base:?}) is longer than the maximum delay ({max:?})")]
    BaseAboveMax {
        /// The base delay.
        base: Duration,
        /// The cap.
        max: Duration,
    },
}

impl RetryPolicy {
    /// A builder, starting from the defaults in its table.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(100),
                factor: 2.0,
                max_delay: Duration::from_secs(30),
                jitter: Jitter::Full,
                retry_panics: false,
            },
        }
    }

    /// One attempt, no retries: the pool's default.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::builder().policy
        }
    }

    /// Attempts a task gets in all, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a panicked attempt is retried.
    pub fn retries_panics(&self) -> bool {
        self.retry_panics
    }

    /// Whether a task that has made `attempts` attempts may make another.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }

    /// The delay before the attempt that follows failure number `failures`
    /// (counting from 1), without jitter: `base * factor^(failures - 1)`,
    /// capped, saturating instead of overflowing.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1);
        let grown =
            self.base_delay.as_secs_f64() * self.factor.powi(exponent.min(i32::MAX as u32) as i32);
        if !grown.is_finite() || grown >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(grown).min(self.max_delay)
        }
    }

    /// [`backoff`](Self::backoff) randomised by the jitter, with `unit` a
    /// random number in `[0, 1)`.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let full = self.backoff(failures);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match self.jitter {
            Jitter::None => full,
            Jitter::Full => full.mul_f64(unit),
            Jitter::Equal => full / 2 + (full / 2).mul_f64(unit),
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::never()
    }
}

impl RetryPolicyBuilder {
    /// Attempts in all, the first one included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts;
        self
    }

    /// The delay before the first retry.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.policy.base_delay = delay;
        self
    }

    /// How much each delay grows over the one before (finite, at least 1).
    pub fn factor(mut self, factor: f64) -> Self {
        self.policy.factor = factor;
        self
    }

    /// The longest any delay gets.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.policy.max_delay = delay;
        self
    }

    /// How delays are randomised.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.policy.jitter = jitter;
        self
    }

    /// Whether a panicked attempt is retried (no, by default: a panic is
    /// usually a bug, and the same input tends to panic again).
    pub fn retry_panics(mut self, retry: bool) -> Self {
        self.policy.retry_panics = retry;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A [`RetryPolicyError`] naming the first setting refused.
    pub fn build(self) -> Result<RetryPolicy, RetryPolicyError> {
        let p = self.policy;
        if p.max_attempts == 0 {
            return Err(RetryPolicyError::ZeroAttempts);
        }
        if !p.factor.is_finite() || p.factor < 1.0 {
            return Err(RetryPolicyError::Factor(p.factor));
        }
        if p.base_delay > p.max_delay {
            return Err(RetryPolicyError::BaseAboveMax {
                base: p.base_delay,
                max: p.max_delay,
            });
        }
        Ok(p)
    }
}

impl fmt::Display for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} attempts, {:?} x {} up to {:?}, {:?} jitter",
            self.max_attempts, self.base_delay, self.factor, self.max_delay, self.jitter
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy::builder()
            .max_attempts(10)
            .base_delay(Duration::from_millis(100))
            .factor(2.0)
            .max_delay(Duration::from_secs(2))
            .jitter(jitter)
            .build()
            .unwrap()
    }

    #[test]
    fn delays_grow_by_the_factor_until_the_cap() {
        let p = policy(Jitter::None);
        let ms: Vec<u128> = (1..=7).map(|n| p.delay(n, 0.5).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn invalid_settings_are_refused() {
        let b = RetryPolicy::builder;
        assert_eq!(
            b().max_attempts(0).build(),
            Err(RetryPolicyError::ZeroAttempts)
        );
        for bad in [f64::NAN, f64::INFINITY, -1.0, 0.5] {
            assert!(matches!(
                b().factor(bad).build(),
                Err(RetryPolicyError::Factor(_))
            ));
        }
        let (base, max) = (Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(
            b().base_delay(base).max_delay(max).build(),
            Err(RetryPolicyError::BaseAboveMax { base, max })
        );
        assert!(b().factor(1.0).build().is_ok());
    }

    #[test]
    fn the_last_attempt_allows_no_other() {
        let p = RetryPolicy::builder().max_attempts(3).build().unwrap();
        assert!(p.allows_another(1) && p.allows_another(2));
        assert!(!p.allows_another(3));
        assert!(!RetryPolicy::never().allows_another(1));
    }

    proptest! {
        #[test]
        fn no_overflow_and_never_above_the_cap(
            failures in any::<u32>(),
            factor in 1.0f64..1e6,
            base_ms in 0u64..10_000,
            cap_extra_ms in 0u64..u64::MAX / 2_000_000,
            unit in 0.0f64..1.0,
        ) {
            let max = Duration::from_millis(base_ms + cap_extra_ms);
            let p = RetryPolicy::builder()
                .base_delay(Duration::from_millis(base_ms))
                .max_delay(max)
                .factor(factor)
                .jitter(Jitter::Equal)
                .build()
                .unwrap();
            prop_assert!(p.backoff(failures) <= max);
            prop_assert!(p.delay(failures, unit) <= max);
        }

        #[test]
        fn each_delay_is_at_least_the_one_before(failures in 1u32..200, factor in 1.0f64..10.0) {
            let p = RetryPolicy::builder().factor(factor).build().unwrap();
            prop_assert!(p.backoff(failures + 1) >= p.backoff(failures));
        }

        #[test]
        fn jitter_stays_within_its_bounds(failures in 1u32..64, unit in 0.0f64..1.0) {
            let full = policy(Jitter::None).backoff(failures);
            let full_jitter = policy(Jitter::Full).delay(failures, unit);
            let equal_jitter = policy(Jitter::Equal).delay(failures, unit);
            prop_assert!(full_jitter <= full);
            prop_assert!(equal_jitter >= full / 2 && equal_jitter <= full);
        }
    }
}
