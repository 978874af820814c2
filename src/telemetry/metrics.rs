//! The pool's metrics (feature `metrics`), through the `metrics` facade: the
//! application installs a recorder (a Prometheus exporter, say) before it
//! builds its pools, and every pool reports to it, labelled `pool` with its
//! name. The README's "Metrics" table lists them all.
//!
//! Counters and gauges are published from the supervisor's own counts (the
//! ones [`Stats`](crate::Stats) shows), by difference, each time it has read
//! a batch of reports: they cost nothing per task under load, and agree with
//! a snapshot taken at the same moment. The two histograms take one entry
//! per task (and per attempt).

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::latency::Timing;

pub(crate) const SUBMITTED: &str = "workerpool.tasks.submitted";
pub(crate) const FINISHED: &str = "workerpool.tasks.finished";
pub(crate) const RETRIED: &str = "workerpool.tasks.retried";
pub(crate) const RESTARTED: &str = "workerpool.workers.restarted";
pub(crate) const STUCK: &str = "workerpool.workers.stuck";
pub(crate) const QUEUED: &str = "workerpool.tasks.queued";
pub(crate) const IN_FLIGHT: &str = "workerpool.tasks.in_flight";
pub(crate) const WAITING_RETRY: &str = "workerpool.tasks.waiting_retry";
pub(crate) const LIVE: &str = "workerpool.workers.live";
pub(crate) const WAIT_DURATION: &str = "workerpool.task.wait.duration";
/// OpenTelemetry's name for the time a consumer spends processing a message.
pub(crate) const PROCESS_DURATION: &str = "messaging.process.duration";

/// The label value of a pool without a name.
const UNNAMED: &str = "default";

/// The outcomes, in the order of `Tally::finished`, as the `outcome` label says them.
const OUTCOMES: [&str; 6] = [
    "completed",
    "failed",
    "panicked",
    "timed_out",
    "aborted",
    "not_run",
];

/// The supervisor's counts, as the metrics show them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) submitted: u64,
    /// By outcome, in the order of `OUTCOMES`.
    pub(crate) finished: [u64; 6],
    pub(crate) retries: u64,
    pub(crate) restarts: u64,
    pub(crate) stuck: u64,
    pub(crate) queued: usize,
    pub(crate) in_flight: usize,
    pub(crate) waiting_retry: usize,
    pub(crate) live_workers: usize,
}

/// One pool's metric handles, registered once, as the pool starts.
pub(crate) struct PoolMetrics {
    submitted: Counter,
    finished: [Counter; 6],
    retries: Counter,
    restarts: Counter,
    stuck: Counter,
    queued: Gauge,
    in_flight: Gauge,
    waiting_retry: Gauge,
    live_workers: Gauge,
    waited: Histogram,
    ran: Histogram,
    /// What the counters say now.
    published: Tally,
}

impl PoolMetrics {
    /// Registers the pool's metrics with the recorder installed now (none:
    /// they record nothing).
    pub(crate) fn new(name: Option<&str>) -> Self {
        describe();
        let pool = name.unwrap_or(UNNAMED).to_owned();
        let counter = |name: &'static str| metrics::counter!(name, "pool" => pool.clone());
        let gauge = |name: &'static str| metrics::gauge!(name, "pool" => pool.clone());
        let histogram = |name: &'static str| metrics::histogram!(name, "pool" => pool.clone());
        PoolMetrics {
            submitted: counter(SUBMITTED),
            finished: OUTCOMES.map(
                |outcome| metrics::counter!(FINISHED, "pool" => pool.clone(), "outcome" => outcome),
            ),
            retries: counter(RETRIED),
            restarts: counter(RESTARTED),
            stuck: counter(STUCK),
            queued: gauge(QUEUED),
            in_flight: gauge(IN_FLIGHT),
            waiting_retry: gauge(WAITING_RETRY),
            live_workers: gauge(LIVE),
            waited: histogram(WAIT_DURATION),
            ran: histogram(PROCESS_DURATION),
            published: Tally::default(),
        }
    }

    /// Brings the counters and gauges to `now`. Counts only grow, so each
    /// counter goes up by what it lacks.
    pub(crate) fn publish(&mut self, now: Tally) {
        let before = self.published;
        if now == before {
            return;
        }
        let add = |counter: &Counter, now: u64, before: u64| {
            if now > before {
                counter.increment(now - before);
            }
        };
        add(&self.submitted, now.submitted, before.submitted);
        for ((counter, now), before) in self.finished.iter().zip(now.finished).zip(before.finished)
        {
            add(counter, now, before);
        }
        add(&self.retries, now.retries, before.retries);
        add(&self.restarts, now.restarts, before.restarts);
        add(&self.stuck, now.stuck, before.stuck);
        self.queued.set(now.queued as f64);
        self.in_flight.set(now.in_flight as f64);
        self.waiting_retry.set(now.waiting_retry as f64);
        self.live_workers.set(now.live_workers as f64);
        self.published = now;
    }

    /// Records the attempt a worker just reported, and the task's wait if
    /// that attempt was its first.
    #[inline]
    pub(crate) fn attempt(&self, timing: &Timing, first_attempt: bool) {
        let seconds = |nanos: u64| nanos as f64 / 1e9;
        if first_attempt && let Some(waited) = timing.waited_nanos() {
            self.waited.record(seconds(waited));
        }
        self.ran.record(seconds(timing.ran_nanos()));
    }
}

/// Describes every metric to the recorder (a Prometheus exporter prints it
/// as `# HELP`). Each pool does it as it starts: a recorder installed after
/// the first pool still learns them.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(SUBMITTED, Unit::Count, "Tasks the pool has taken on");
    describe_counter!(
        FINISHED,
        Unit::Count,
        "Tasks that reached their outcome, by outcome"
    );
    describe_counter!(RETRIED, Unit::Count, "Retries scheduled");
    describe_counter!(RESTARTED, Unit::Count, "Worker restarts");
    describe_counter!(
        STUCK,
        Unit::Count,
        "Workers found stuck past a deadline and replaced"
    );
    describe_gauge!(
        QUEUED,
        Unit::Count,
        "Tasks waiting in the queue for their first attempt"
    );
    describe_gauge!(IN_FLIGHT, Unit::Count, "Tasks running on a worker");
    describe_gauge!(WAITING_RETRY, Unit::Count, "Tasks between two attempts");
    describe_gauge!(
        LIVE,
        Unit::Count,
        "Worker slots with a worker, or one coming"
    );
    describe_histogram!(
        WAIT_DURATION,
        Unit::Seconds,
        "Time from a task's acceptance to its first attempt's start"
    );
    describe_histogram!(
        PROCESS_DURATION,
        Unit::Seconds,
        "Time one attempt of a task ran"
    );
}
