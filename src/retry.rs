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

impl Jitter {
    /// `full` randomised, with `unit` a random number in `[0, 1)`, clamped
    /// into `[0, 1]` (NaN and the infinities count as 0): never above `full`,
    /// and never a panic.
    pub(crate) fn apply(self, full: Duration, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match self {
            Jitter::None => full,
            Jitter::Full => scale(full, unit, full),
            Jitter::Equal => {
                // Capping the random part at `half` keeps the sum at most
                // `full`, so the addition cannot overflow.
                let half = full / 2;
                half + scale(half, unit, half)
            }
        }
    }
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
    /// capped at `max_delay`.
    ///
    /// Never panics, for any `failures` and any policy the builder accepts:
    /// growth that would pass the cap, or overflow `f64` or [`Duration`],
    /// saturates at `max_delay`. A zero base delay stays zero at every count.
    /// The result is `base_delay` itself after 0 or 1 failures, never less
    /// after more, and never shrinks as `failures` grows.
    pub fn backoff(&self, failures: u32) -> Duration {
        let (base, cap) = (self.base_delay, self.max_delay);
        // `0 * factor^n` is zero, but in floating point it is `0 * inf = NaN`
        // once `factor^n` overflows.
        if base.is_zero() {
            return base;
        }
        let growth = growth(self.factor, failures.saturating_sub(1));
        // `growth` is at least 1. At exactly 1, returning `base` itself keeps
        // the nanoseconds that a round trip through `f64` seconds would round off.
        if growth <= 1.0 {
            return base;
        }
        // `max(base)` stops that same rounding from dipping below the base
        // delay, which an earlier count returned unrounded. `try_from` fails
        // only for a product too big for any `Duration` (infinity included),
        // so past every cap.
        Duration::try_from_secs_f64(base.as_secs_f64() * growth)
            .map_or(cap, |grown| grown.max(base).min(cap))
    }

    /// [`backoff`](Self::backoff) randomised by the jitter, with `unit` a
    /// random number in `[0, 1)`: [`Jitter::Full`] gives `backoff * unit`,
    /// [`Jitter::Equal`] `backoff / 2` plus `backoff / 2 * unit`.
    ///
    /// Never panics, for any `failures`, any `unit` and any policy the builder
    /// accepts. `unit` is clamped into `[0, 1]`, and NaN and the infinities
    /// count as 0. The result stays in the jitter's range (so never above
    /// `max_delay`), even where `f64` rounding would go past it.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        self.jitter.apply(self.backoff(failures), unit)
    }
}

/// `factor^exponent` by squaring from the lowest bit, the way `powi`'s
/// runtime usually computes it, but written out because `powi` promises no
/// particular rounding, and this order is what keeps the result from
/// shrinking as `exponent` grows. With `factor >= 1`, `exponent` and
/// `exponent + 1` share every multiplication above their lowest differing
/// bit, and below it the product of the lower squares never passes the next
/// square (rounding is monotone). Overflow gives infinity, never NaN, since
/// every operand is at least 1.
fn growth(factor: f64, exponent: u32) -> f64 {
    let (mut square, mut product, mut rest) = (factor, 1.0, exponent);
    loop {
        if rest & 1 == 1 {
            product *= square;
        }
        rest >>= 1;
        if rest == 0 {
            return product;
        }
        square *= square;
    }
}

/// `duration * unit` for `unit` in `[0, 1]`, at most `limit`.
/// `Duration::mul_f64` panics here: `Duration::MAX` in `f64` seconds rounds up
/// to 2^64, past `Duration::MAX`. Rounding can also overshoot `duration` by a
/// few nanoseconds, which the `limit` cuts off.
fn scale(duration: Duration, unit: f64, limit: Duration) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * unit)
        .map_or(limit, |scaled| scaled.min(limit))
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

    const JITTERS: [Jitter; 3] = [Jitter::None, Jitter::Full, Jitter::Equal];

    fn build(
        base: Duration,
        max: Duration,
        factor: f64,
        jitter: Jitter,
    ) -> Result<RetryPolicy, RetryPolicyError> {
        RetryPolicy::builder()
            .base_delay(base)
            .max_delay(max)
            .factor(factor)
            .jitter(jitter)
            .build()
    }

    #[test]
    fn a_zero_base_delay_stays_zero_at_every_failure_count() {
        for factor in [2.0, f64::MAX] {
            for max in [Duration::from_secs(30), Duration::MAX] {
                for jitter in JITTERS {
                    let p = build(Duration::ZERO, max, factor, jitter).unwrap();
                    for failures in [1, 2, 64, 1_000, u32::MAX] {
                        assert_eq!(p.backoff(failures), Duration::ZERO, "{p} after {failures}");
                        for unit in [0.0, 0.5, 1.0] {
                            assert_eq!(
                                p.delay(failures, unit),
                                Duration::ZERO,
                                "{p} after {failures}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn full_jitter_under_the_largest_cap_does_not_panic() {
        for base in [Duration::from_secs(1), Duration::MAX] {
            let p = build(base, Duration::MAX, 2.0, Jitter::Full).unwrap();
            for failures in [1, 64, u32::MAX] {
                let delay = p.delay(failures, 1.0);
                assert!(delay <= Duration::MAX);
                assert_eq!(delay, p.backoff(failures), "unit 1.0 gives the whole delay");
            }
        }
    }

    #[test]
    fn jitter_never_rounds_past_the_cap() {
        // 42180217610756076 s is a tie between two `f64`s and rounds up.
        let max = Duration::from_secs(42_180_217_610_756_076);
        for jitter in JITTERS {
            let p = build(Duration::from_secs(1), max, 2.0, jitter).unwrap();
            assert_eq!(p.delay(u32::MAX, 1.0), max, "{p}");
        }
    }

    #[test]
    fn the_first_delay_is_the_base_delay_to_the_nanosecond() {
        // Too many seconds for `f64` to hold the nanoseconds too.
        let base = Duration::new(8_388_608, 6_489_395);
        let p = build(base, Duration::MAX, 1.0, Jitter::None).unwrap();
        for failures in [0, 1, 2, u32::MAX] {
            assert_eq!(p.backoff(failures), base);
        }
    }

    #[test]
    fn a_factor_just_above_one_grows_the_delay_without_ever_shrinking_it() {
        let p = build(
            Duration::from_secs(1),
            Duration::MAX,
            1.0 + f64::EPSILON,
            Jitter::None,
        )
        .unwrap();
        // Around powers of two the product is rounded along different paths.
        for k in 0..32 {
            let edge = 1u32 << k;
            for n in edge.saturating_sub(2)..=edge.saturating_add(2) {
                assert!(p.backoff(n + 1) >= p.backoff(n), "after {n} failures");
            }
        }
        assert!(p.backoff(u32::MAX) > p.backoff(1));
    }

    /// Edge values first, then anything, then the ordinary range.
    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::MAX),
            Just(Duration::from_nanos(1)),
            Just(Duration::from_millis(100)),
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            any::<u64>().prop_map(Duration::from_nanos),
            (0u64..100_000).prop_map(Duration::from_millis),
        ]
    }

    fn any_factor() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(1.0),
            Just(1.0 + f64::EPSILON),
            Just(2.0),
            Just(f64::MAX),
            1.0f64..1e300,
            1.0f64..10.0,
            1.0f64..1.000_001,
        ]
    }

    fn any_unit() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-1.0),
            Just(-0.0),
            Just(f64::MIN_POSITIVE / 2.0),
            Just(1.0),
            Just(2.0),
            any::<f64>(),
            0.0f64..1.0,
        ]
    }

    fn any_failures() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            Just(1),
            Just(u32::MAX - 1),
            Just(u32::MAX),
            any::<u32>(),
            0u32..100,
            // Powers of two and their neighbours, where squaring changes path.
            (0u32..32, 0u32..3).prop_map(|(k, d)| (1u32 << k).wrapping_sub(1).wrapping_add(d)),
        ]
    }

    fn any_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal)]
    }

    /// Any policy the builder accepts: base and cap are drawn independently,
    /// and the tests skip the pairs it refuses.
    fn any_settings() -> impl Strategy<Value = (Duration, Duration, f64, Jitter)> {
        (any_duration(), any_duration(), any_factor(), any_jitter())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1024,
            max_global_rejects: 8192,
            ..ProptestConfig::default()
        })]

        #[test]
        fn backoff_and_delay_never_panic_and_never_pass_the_cap(
            (base, max, factor, jitter) in any_settings(),
            failures in any_failures(),
            unit in any_unit(),
        ) {
            let p = build(base, max, factor, jitter);
            prop_assume!(p.is_ok());
            let p = p.unwrap();
            prop_assert!(p.backoff(failures) <= max);
            prop_assert!(p.delay(failures, unit) <= max);
        }

        #[test]
        fn a_zero_base_delay_gives_zero_whatever_the_rest(
            (_, max, factor, jitter) in any_settings(),
            failures in any_failures(),
            unit in any_unit(),
        ) {
            let p = build(Duration::ZERO, max, factor, jitter).unwrap();
            prop_assert_eq!(p.backoff(failures), Duration::ZERO);
            prop_assert_eq!(p.delay(failures, unit), Duration::ZERO);
        }

        #[test]
        fn backoff_never_shrinks_as_failures_grow(
            (base, max, factor, jitter) in any_settings(),
            failures in any_failures(),
        ) {
            prop_assume!(failures < u32::MAX);
            let p = build(base, max, factor, jitter);
            prop_assume!(p.is_ok());
            let p = p.unwrap();
            prop_assert!(p.backoff(failures + 1) >= p.backoff(failures));
        }

        #[test]
        fn backoff_starts_at_the_base_delay_and_never_goes_below_it(
            (base, max, factor, jitter) in any_settings(),
            failures in any_failures(),
        ) {
            let p = build(base, max, factor, jitter);
            prop_assume!(p.is_ok());
            let p = p.unwrap();
            prop_assert!(p.backoff(failures) >= base);
            prop_assert_eq!(p.backoff(0), base);
            prop_assert_eq!(p.backoff(1), base);
        }

        #[test]
        fn each_jitter_keeps_the_delay_within_its_range(
            (base, max, factor, _) in any_settings(),
            failures in any_failures(),
            unit in any_unit(),
        ) {
            prop_assume!(base <= max);
            let with = |jitter| build(base, max, factor, jitter).unwrap();
            let full = with(Jitter::None).backoff(failures);
            prop_assert_eq!(with(Jitter::None).delay(failures, unit), full);
            prop_assert!(with(Jitter::Full).delay(failures, unit) <= full);
            // No rounding slack: the lower bound is the very `full / 2` the
            // policy adds to.
            let equal = with(Jitter::Equal).delay(failures, unit);
            prop_assert!(equal >= full / 2 && equal <= full, "{:?} not in [{:?}, {:?}]", equal, full / 2, full);
        }
    }
}
