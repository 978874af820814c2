//! How long tasks wait and run: the clock that times them and the
//! histograms behind [`Stats::waited`](crate::Stats::waited) and
//! [`Stats::ran`](crate::Stats::ran).
//!
//! Each task is timed three times: when the pool accepts it, when each
//! attempt starts and when each attempt ends (a worker that goes straight on
//! to the next task from the backlog reads the clock once for both). The
//! clock is `quanta`'s raw counter, the CPU's time-stamp counter where it is
//! steady across cores (its monotonic clock otherwise): a read costs a
//! fraction of `Instant::now`, and this is on every task's path. Readings
//! become nanoseconds only when two are subtracted, on the worker.
//! Under tokio's paused time this clock keeps running: it measures real time.

use std::sync::OnceLock;
use std::time::Duration;

use hdrhistogram::Histogram;

/// A raw reading of the clock that times tasks: only differences of two
/// mean anything.
pub(crate) type Tick = u64;

fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Reads the clock that times tasks.
#[inline]
pub(crate) fn now() -> Tick {
    clock().raw()
}

/// Nanoseconds from `start` to `end` (0 if `end` is not later).
#[inline]
fn nanos_between(start: Tick, end: Tick) -> u64 {
    clock().delta_as_nanos(start, end)
}

/// Whether a pool times its tasks ([`PoolBuilder::latency`]), and its
/// readings of the clock: none when it does not.
///
/// [`PoolBuilder::latency`]: crate::PoolBuilder::latency
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopwatch {
    on: bool,
}

impl Stopwatch {
    pub(crate) fn new(on: bool) -> Self {
        Stopwatch { on }
    }

    pub(crate) fn is_on(self) -> bool {
        self.on
    }

    /// A reading of the clock, or 0 when the pool does not time its tasks.
    #[inline]
    pub(crate) fn now(self) -> Tick {
        if self.on { now() } else { 0 }
    }

    /// The timing of a task accepted now.
    #[inline]
    pub(crate) fn accepting(self) -> Timing {
        Timing {
            accepted: self.now(),
            // Untimed, there is no wait to tell.
            waited: if self.on { NOT_STARTED } else { REPORTED },
            ran: 0,
        }
    }
}

/// Makes the clock, so that its calibration (a busy wait of up to a fraction
/// of a second, once in a process, on the thread that builds the first
/// pool) happens as a pool is built, not in a task's time.
pub(crate) fn warm_up() {
    let _ = now();
}

/// The longest time the histograms tell apart: longer ones count as a day.
const LONGEST: Duration = Duration::from_secs(24 * 3600);

/// Percentiles of a set of durations, from a histogram that keeps two
/// significant digits (a reported value is within 1% of the true one).
///
/// `Default` (all zero) until something is recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latency {
    /// How many durations were recorded.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The longest recorded (a day, for anything longer).
    pub max: Duration,
}

/// One histogram of durations, in nanoseconds, since the pool started.
pub(crate) struct Durations(Histogram<u64>);

impl Durations {
    pub(crate) fn new() -> Self {
        // Bounds this constant pair cannot be refused: 1 ns to a day, two digits.
        let longest = LONGEST.as_nanos() as u64;
        Durations(Histogram::new_with_bounds(1, longest, 2).expect("valid histogram bounds"))
    }

    /// Records one duration, a day at most.
    #[cfg(test)]
    fn record(&mut self, duration: Duration) {
        self.record_nanos(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }

    #[inline]
    fn record_nanos(&mut self, nanos: u64) {
        self.0.saturating_record(nanos.max(1));
    }

    pub(crate) fn summary(&self) -> Latency {
        let histogram = &self.0;
        if histogram.is_empty() {
            return Latency::default();
        }
        let at = |quantile: f64| Duration::from_nanos(histogram.value_at_quantile(quantile));
        Latency {
            count: histogram.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: Duration::from_nanos(histogram.max()),
        }
    }
}

/// A task's times, as it travels with its job: when it was accepted, how
/// long it waited for its first attempt, and how long its latest attempt
/// ran. In nanoseconds, to keep every job 16 bytes smaller than `Duration`s
/// would.
#[derive(Clone, Copy)]
pub(crate) struct Timing {
    accepted: Tick,
    /// `NOT_STARTED` until the first attempt starts, then the wait until it
    /// is reported, then `REPORTED`.
    waited: u64,
    ran: u64,
}

const NOT_STARTED: u64 = u64::MAX;
const REPORTED: u64 = u64::MAX - 1;
/// The longest wait a timing keeps (some 584 years): below the markers.
const LONGEST_WAIT: u64 = u64::MAX - 2;

impl Timing {
    #[cfg(test)]
    fn accepted_now() -> Self {
        Stopwatch::new(true).accepting()
    }

    /// Notes an attempt that ran from `started` to `ended`.
    #[inline]
    pub(crate) fn attempt(&mut self, started: Tick, ended: Tick) {
        if self.waited == NOT_STARTED {
            self.waited = nanos_between(self.accepted, started).min(LONGEST_WAIT);
        }
        self.ran = nanos_between(started, ended);
    }

    /// The latest attempt's run, and the wait for the first attempt, which
    /// is given once: at the first report after that attempt started. That
    /// is the first attempt's own report, unless the supervisor gave up on
    /// it (a stuck worker, whose late report is not counted); then the
    /// task's next reported attempt brings it.
    #[inline]
    pub(crate) fn report(&mut self) -> (Option<u64>, u64) {
        let waited = (self.waited <= LONGEST_WAIT).then_some(self.waited);
        if waited.is_some() {
            self.waited = REPORTED;
        }
        (waited, self.ran)
    }
}

/// The pool's two histograms: time waiting for a first attempt, and time
/// running, per attempt.
pub(crate) struct Latencies {
    pub(crate) waited: Durations,
    pub(crate) ran: Durations,
}

impl Latencies {
    pub(crate) fn new() -> Self {
        Latencies {
            waited: Durations::new(),
            ran: Durations::new(),
        }
    }

    /// Records an attempt's run, and the task's wait if it is reported now
    /// (see [`Timing::report`]), in nanoseconds.
    #[inline]
    pub(crate) fn record(&mut self, waited: Option<u64>, ran: u64) {
        if let Some(waited) = waited {
            self.waited.record_nanos(waited);
        }
        self.ran.record_nanos(ran);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_histogram_says_zero() {
        assert_eq!(Durations::new().summary(), Latency::default());
    }

    #[test]
    fn percentiles_are_within_one_percent() {
        let mut durations = Durations::new();
        for millis in 1..=100 {
            durations.record(Duration::from_millis(millis));
        }
        let summary = durations.summary();
        assert_eq!(summary.count, 100);
        let near = |value: Duration, millis: u64| {
            let wanted = Duration::from_millis(millis).as_secs_f64();
            (value.as_secs_f64() - wanted).abs() <= wanted / 100.0
        };
        assert!(near(summary.p50, 50), "{summary:?}");
        assert!(near(summary.p99, 99), "{summary:?}");
        assert!(near(summary.max, 100), "{summary:?}");
    }

    #[test]
    fn durations_past_a_day_count_as_a_day_and_zero_as_the_least() {
        let mut durations = Durations::new();
        durations.record(Duration::MAX);
        durations.record(Duration::ZERO);
        let summary = durations.summary();
        assert_eq!(summary.count, 2);
        assert!(summary.max >= LONGEST && summary.max <= LONGEST + LONGEST / 100);
        assert_eq!(summary.p50, Duration::from_nanos(1));
    }

    #[test]
    fn the_wait_is_taken_at_the_first_attempt_and_reported_once() {
        let mut timing = Timing::accepted_now();
        assert_eq!(timing.report(), (None, 0), "nothing started yet");
        // Real readings, a few milliseconds apart.
        let later = || {
            std::thread::sleep(Duration::from_millis(2));
            now()
        };
        let (first, first_ended) = (later(), later());
        let (second, second_ended) = (later(), later());
        timing.attempt(first, first_ended);
        let (waited, ran) = timing.report();
        let waited = waited.expect("the first attempt started");
        assert!(waited >= 2_000_000, "{waited} ns");
        assert!(ran >= 2_000_000, "{ran} ns");
        timing.attempt(second, second_ended);
        let (again, ran) = timing.report();
        assert_eq!(again, None, "the wait is reported once");
        assert!(ran >= 2_000_000, "{ran} ns");
        // A reading that is not later than the start counts as no time.
        timing.attempt(second_ended, second);
        assert_eq!(timing.report(), (None, 0));
    }

    #[test]
    fn a_wait_not_reported_with_its_attempt_comes_with_the_next() {
        let mut timing = Timing::accepted_now();
        let started = now();
        // The first attempt's report never came (a stuck worker's).
        timing.attempt(started, now());
        timing.attempt(now(), now());
        assert!(timing.report().0.is_some());
    }
}
