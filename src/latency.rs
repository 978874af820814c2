//! How long tasks wait and run: the clock that times them and the
//! histograms behind [`Stats::waited`](crate::Stats::waited) and
//! [`Stats::ran`](crate::Stats::ran).
//!
//! Each task is timed three times: when the pool accepts it, when each
//! attempt starts and when each attempt ends (a worker that goes straight on
//! to the next task from the backlog reads the clock once for both). The
//! clock is `quanta`'s raw counter, the CPU's time-stamp counter where it is
//! steady across cores (its monotonic clock otherwise): a read costs a
//! fraction of `Instant::now`, and this is on every task's path. Durations
//! stay in the counter's ticks all the way into the histograms, which keep
//! ticks: they become nanoseconds only when a snapshot asks for percentiles
//! (and, with the `metrics` feature, as they are recorded there), not once
//! per task on the worker.
//! Under tokio's paused time this clock keeps running: it measures real time.

use std::sync::OnceLock;
use std::time::Duration;

use hdrhistogram::Histogram;

/// A raw reading of the clock that times tasks: only differences of two
/// mean anything.
pub(crate) type Tick = u64;

/// The clock, made (and calibrated: a busy wait of up to a fraction of a
/// second, once in a process) the first time a timed pool is built.
fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Ticks from `start` to `end` (0 if `end` is not later).
#[inline]
fn ticks_between(start: Tick, end: Tick) -> u64 {
    end.saturating_sub(start)
}

/// A span of the clock's ticks as a duration.
pub(crate) fn duration_of(ticks: u64) -> Duration {
    Duration::from_nanos(clock().delta_as_nanos(0, ticks))
}

/// How many of the clock's ticks make `duration`, rounded up (the inverse of
/// [`duration_of`]; the clock scales ticks by a constant factor).
fn ticks_in(duration: Duration) -> u64 {
    const SPAN: u64 = 1 << 40;
    let nanos = u128::from(clock().delta_as_nanos(0, SPAN).max(1));
    let ticks = duration
        .as_nanos()
        .saturating_mul(u128::from(SPAN))
        .div_ceil(nanos);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// Whether a pool times its tasks ([`PoolBuilder::latency`]), and its
/// readings of the clock: none when it does not. Making a timed one makes
/// the clock, so that its calibration happens as the pool is built, not in
/// a task's time.
///
/// [`PoolBuilder::latency`]: crate::PoolBuilder::latency
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopwatch {
    /// The clock, kept at hand: a look in its `OnceLock` per reading is
    /// worth saving on the path every task takes.
    clock: Option<&'static quanta::Clock>,
}

impl Stopwatch {
    pub(crate) fn new(on: bool) -> Self {
        Stopwatch {
            clock: on.then(clock),
        }
    }

    pub(crate) fn is_on(self) -> bool {
        self.clock.is_some()
    }

    /// A reading of the clock, or 0 when the pool does not time its tasks.
    #[inline]
    pub(crate) fn now(self) -> Tick {
        match self.clock {
            Some(clock) => clock.raw(),
            None => 0,
        }
    }

    /// The timing of a task accepted now.
    #[inline]
    pub(crate) fn accepting(self) -> Timing {
        match self.clock {
            Some(clock) => Timing::accepted_at(clock.raw()),
            None => Timing::untimed(),
        }
    }
}

/// How long an attempt that ran from `started` to `ended` took, in the
/// clock's ticks (0 when not timed: both readings are 0 then).
#[inline]
pub(crate) fn ran(started: Tick, ended: Tick) -> u64 {
    ticks_between(started, ended)
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

/// One histogram of durations, in the clock's ticks, since the pool
/// started.
pub(crate) struct Durations(Histogram<u64>);

impl Durations {
    /// For a pool timed with `stopwatch`: from 1 tick to a day's worth, two
    /// digits. An untimed pool records nothing, and leaves the clock alone.
    pub(crate) fn new(stopwatch: Stopwatch) -> Self {
        let longest = if stopwatch.is_on() {
            ticks_in(LONGEST)
        } else {
            u64::try_from(LONGEST.as_nanos()).unwrap_or(u64::MAX)
        };
        // Bounds these cannot be refused: a highest value of 2 or more,
        // two digits.
        let histogram = Histogram::new_with_bounds(1, longest.max(2), 2);
        Durations(histogram.expect("valid histogram bounds"))
    }

    /// Records one duration, a day at most.
    #[cfg(test)]
    fn record(&mut self, duration: Duration) {
        self.record_ticks(ticks_in(duration));
    }

    #[inline]
    fn record_ticks(&mut self, ticks: u64) {
        self.0.saturating_record(ticks.max(1));
    }

    pub(crate) fn summary(&self) -> Latency {
        let histogram = &self.0;
        if histogram.is_empty() {
            return Latency::default();
        }
        let at = |quantile: f64| duration_of(histogram.value_at_quantile(quantile));
        Latency {
            count: histogram.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: duration_of(histogram.max()),
        }
    }
}

/// A task's wait for its first attempt, as it travels with its job, in one
/// word (so that a queued task costs 8 bytes more, not 24): the clock's
/// reading when the task was accepted; once its first attempt has started,
/// the wait in ticks, until it is reported; then nothing. How long an
/// attempt ran goes in the worker's report, not in the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing(u64);

/// The top two bits say what the other 62 hold: 48 years of a counter
/// ticking at 3 GHz, or 146 years of nanoseconds. Both readings of
/// a wait are masked alike, so a counter that did pass 2^62 would give one
/// wait of 0, not a wrong state.
const STATE: u64 = 0b11 << 62;
const ACCEPTED: u64 = 0b00 << 62;
const WAITED: u64 = 0b01 << 62;
const REPORTED: u64 = 0b10 << 62;
const VALUE: u64 = !STATE;

impl Timing {
    fn accepted_at(tick: Tick) -> Self {
        Timing(ACCEPTED | (tick & VALUE))
    }

    /// A task that is not timed: it has no wait to tell.
    fn untimed() -> Self {
        Timing(REPORTED)
    }

    /// Notes that an attempt started at `started`: the first one sets the
    /// wait.
    #[inline]
    pub(crate) fn started(&mut self, started: Tick) {
        if self.0 & STATE == ACCEPTED {
            let waited = ticks_between(self.0 & VALUE, started & VALUE);
            self.0 = WAITED | waited.min(VALUE);
        }
    }

    /// The wait for the first attempt, given once: at the first report
    /// counted after that attempt started. That is the first attempt's own
    /// report, unless the supervisor gave up on it (a stuck worker, whose
    /// late report is not counted); then the task's next reported attempt
    /// brings it.
    #[inline]
    pub(crate) fn take_wait(&mut self) -> Option<u64> {
        if self.0 & STATE != WAITED {
            return None;
        }
        let waited = self.0 & VALUE;
        self.0 = REPORTED;
        Some(waited)
    }
}

/// The pool's two histograms: time waiting for a first attempt, and time
/// running, per attempt.
pub(crate) struct Latencies {
    pub(crate) waited: Durations,
    pub(crate) ran: Durations,
}

impl Latencies {
    pub(crate) fn new(stopwatch: Stopwatch) -> Self {
        Latencies {
            waited: Durations::new(stopwatch),
            ran: Durations::new(stopwatch),
        }
    }

    /// Records an attempt's run, and the task's wait if it is reported now
    /// (see [`Timing::take_wait`]), in ticks.
    #[inline]
    pub(crate) fn record(&mut self, waited: Option<u64>, ran: u64) {
        if let Some(waited) = waited {
            self.waited.record_ticks(waited);
        }
        self.ran.record_ticks(ran);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_histogram_says_zero() {
        let timed = Stopwatch::new(true);
        assert_eq!(Durations::new(timed).summary(), Latency::default());
    }

    #[test]
    fn percentiles_are_within_one_percent() {
        let mut durations = Durations::new(Stopwatch::new(true));
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
        let mut durations = Durations::new(Stopwatch::new(true));
        durations.record(Duration::MAX);
        durations.record(Duration::ZERO);
        let summary = durations.summary();
        assert_eq!(summary.count, 2);
        assert!(summary.max >= LONGEST, "{summary:?}");
        assert!(summary.max <= LONGEST + LONGEST / 100, "{summary:?}");
        // The least: one tick of the clock.
        assert_eq!(summary.p50, duration_of(1));
    }

    #[test]
    fn the_wait_is_taken_at_the_first_attempt_and_reported_once() {
        let stopwatch = Stopwatch::new(true);
        let mut timing = stopwatch.accepting();
        assert_eq!(timing.take_wait(), None, "nothing started yet");
        std::thread::sleep(Duration::from_millis(2));
        timing.started(stopwatch.now());
        let waited = timing.take_wait().expect("the first attempt started");
        assert!(
            duration_of(waited) >= Duration::from_millis(2),
            "{waited} ticks"
        );
        timing.started(stopwatch.now());
        assert_eq!(timing.take_wait(), None, "the wait is reported once");
    }

    #[test]
    fn a_wait_not_reported_with_its_attempt_comes_with_the_next() {
        let accepted = Stopwatch::new(true).now();
        let mut timing = Timing::accepted_at(accepted);
        // The first attempt's report never came (a stuck worker's); the
        // second started much later.
        timing.started(accepted + 1_000);
        timing.started(accepted + 1_000_000_000);
        assert_eq!(timing.take_wait(), Some(1_000), "the first attempt's wait");
    }

    #[test]
    fn an_untimed_task_tells_no_wait_and_runs_no_time() {
        let stopwatch = Stopwatch::new(false);
        let mut timing = stopwatch.accepting();
        timing.started(stopwatch.now());
        assert_eq!(timing.take_wait(), None);
        assert_eq!(ran(stopwatch.now(), stopwatch.now()), 0);
    }

    #[test]
    fn ticks_and_durations_convert_both_ways() {
        let day = ticks_in(LONGEST);
        assert!(duration_of(day) >= LONGEST, "rounded up");
        assert!(duration_of(day) - LONGEST < Duration::from_micros(1));
        assert_eq!(ticks_in(Duration::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn a_run_that_ends_before_it_starts_took_no_time() {
        let stopwatch = Stopwatch::new(true);
        let (start, end) = (stopwatch.now(), stopwatch.now());
        assert_eq!(ran(end.max(start) + 1, start.min(end)), 0);
    }
}
