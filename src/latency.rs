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

    /// How long an attempt that ran from `started` to `ended` took, in
    /// nanoseconds: 0 when not timed, without a look at the clock (whose
    /// scaling is most of the cost).
    #[inline]
    pub(crate) fn ran(self, started: Tick, ended: Tick) -> u64 {
        if self.on {
            nanos_between(started, ended)
        } else {
            0
        }
    }

    /// The timing of a task accepted now.
    #[inline]
    pub(crate) fn accepting(self) -> Timing {
        if self.on {
            Timing::accepted_at(now())
        } else {
            Timing::untimed()
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

/// A task's wait for its first attempt, as it travels with its job, in one
/// word (so that a queued task costs 8 bytes more, not 24): the clock's
/// reading when the task was accepted; once its first attempt has started,
/// the wait in nanoseconds, until it is reported; then nothing. How long an
/// attempt ran goes in the worker's report, not in the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing(u64);

/// The top two bits say what the other 62 hold: about 146 years of
/// nanoseconds, or 48 years of a counter ticking at 3 GHz. Both readings of
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
            let waited = nanos_between(self.0 & VALUE, started & VALUE);
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
    pub(crate) fn new() -> Self {
        Latencies {
            waited: Durations::new(),
            ran: Durations::new(),
        }
    }

    /// Records an attempt's run, and the task's wait if it is reported now
    /// (see [`Timing::take_wait`]), in nanoseconds.
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
        let mut timing = Stopwatch::new(true).accepting();
        assert_eq!(timing.take_wait(), None, "nothing started yet");
        std::thread::sleep(Duration::from_millis(2));
        timing.started(now());
        let waited = timing.take_wait().expect("the first attempt started");
        assert!(waited >= 2_000_000, "{waited} ns");
        timing.started(now());
        assert_eq!(timing.take_wait(), None, "the wait is reported once");
    }

    #[test]
    fn a_wait_not_reported_with_its_attempt_comes_with_the_next() {
        let accepted = now();
        let mut timing = Timing::accepted_at(accepted);
        // The first attempt's report never came (a stuck worker's); the
        // second started much later.
        timing.started(accepted + 1_000);
        timing.started(accepted + 1_000_000_000);
        assert_eq!(
            timing.take_wait(),
            Some(nanos_between(accepted, accepted + 1_000)),
            "the first attempt's wait"
        );
    }

    #[test]
    fn an_untimed_task_tells_no_wait_and_runs_no_time() {
        let stopwatch = Stopwatch::new(false);
        let mut timing = stopwatch.accepting();
        timing.started(stopwatch.now());
        assert_eq!(timing.take_wait(), None);
        assert_eq!(stopwatch.ran(stopwatch.now(), stopwatch.now()), 0);
        assert_eq!(stopwatch.ran(1, 1_000_000_000), 0, "the clock is not asked");
    }

    #[test]
    fn a_run_that_ends_before_it_starts_took_no_time() {
        let (start, end) = (now(), now());
        let stopwatch = Stopwatch::new(true);
        assert_eq!(stopwatch.ran(end.max(start) + 1, start.min(end)), 0);
    }
}
