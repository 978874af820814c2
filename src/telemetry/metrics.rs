//! The pool's metrics (feature `metrics`), through the `metrics` facade: the
//! application installs a recorder (a Prometheus exporter, say) before it
//! builds its pools, and every pool reports to it, labelled `pool` with its
//! name (a pool without one has no `pool` label). The README's "Metrics"
//! table lists them all.
//!
//! Each figure is recorded where it changes, so that none waits for the
//! supervisor to look:
//! - tasks submitted and queued, by the queue's gate (`gate.rs`), as a task
//!   is admitted and as its place frees up: submissions to a pool whose
//!   workers are all busy reach the supervisor only when a worker is done,
//!   which may be minutes later;
//! - outcomes, retries, restarts and the other gauges, by the supervisor,
//!   which publishes the difference between its own counts and what it
//!   published last, after each batch of reports it reads, after each of its
//!   timers, and on every `stats()`: nothing per task under load, and the
//!   metrics agree with a `Stats` snapshot taken at the same moment;
//! - the two histograms, one entry per task and per attempt, as the
//!   supervisor reads each attempt's end.
//!
//! Gauges move by difference too (never `set`), so that pools that share a
//! label add up, and a pool that goes away takes its share with it.

use metrics::{Counter, Gauge, Histogram, Label, Unit};

pub(crate) const SUBMITTED: &str = "workerpool.tasks.submitted";
pub(crate) const FINISHED: &str = "workerpool.tasks.finished";
pub(crate) const RETRIED: &str = "workerpool.tasks.retried";
pub(crate) const RESTARTED: &str = "workerpool.workers.restarted";
pub(crate) const STUCK: &str = "workerpool.workers.stuck";
pub(crate) const DEAD_LETTERS: &str = "workerpool.tasks.dead_lettered";
pub(crate) const QUARANTINED: &str = "workerpool.tasks.quarantined";
pub(crate) const QUEUED: &str = "workerpool.tasks.queued";
pub(crate) const IN_FLIGHT: &str = "workerpool.tasks.in_flight";
pub(crate) const WAITING_RETRY: &str = "workerpool.tasks.waiting_retry";
pub(crate) const LIVE: &str = "workerpool.workers.live";
pub(crate) const WAIT_DURATION: &str = "workerpool.tasks.wait.duration";
/// OpenTelemetry's name for the time a consumer spends processing a
/// message, with its required attributes (`messaging.system`,
/// `messaging.operation.name`); the conditional `error.type` is left out, so
/// that a failed attempt adds no label of its own.
pub(crate) const PROCESS_DURATION: &str = "messaging.process.duration";

/// The outcomes, in the order of `Tally::finished`, as the `outcome` label says them.
const OUTCOMES: [&str; 8] = [
    "completed",
    "failed",
    "panicked",
    "timed_out",
    "aborted",
    "cancelled",
    "evicted",
    "not_run",
];

/// The labels every metric of a pool carries.
fn pool_labels(name: Option<&str>) -> Vec<Label> {
    name.map(|name| Label::new("pool", name.to_owned()))
        .into_iter()
        .collect()
}

/// Registers a pool's metrics with the recorder installed now (none: they
/// record nothing): the gate's share and the supervisor's.
pub(crate) fn register(name: Option<&str>) -> (Admissions, PoolMetrics) {
    describe();
    let labels = pool_labels(name);
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all = labels.clone();
        all.extend(extra.iter().map(|&(key, value)| Label::new(key, value)));
        all
    };
    let admissions = Admissions {
        submitted: metrics::counter!(SUBMITTED, labels.clone()),
        queued: metrics::gauge!(QUEUED, labels.clone()),
    };
    let process = with(&[
        ("messaging.system", "actix_workerpool"),
        ("messaging.operation.name", "process"),
    ]);
    let pool = PoolMetrics {
        finished: OUTCOMES
            .map(|outcome| metrics::counter!(FINISHED, with(&[("outcome", outcome)]))),
        retries: metrics::counter!(RETRIED, labels.clone()),
        restarts: metrics::counter!(RESTARTED, labels.clone()),
        stuck: metrics::counter!(STUCK, labels.clone()),
        dead_letters: metrics::counter!(DEAD_LETTERS, labels.clone()),
        quarantined: metrics::counter!(QUARANTINED, labels.clone()),
        in_flight: metrics::gauge!(IN_FLIGHT, labels.clone()),
        waiting_retry: metrics::gauge!(WAITING_RETRY, labels.clone()),
        live_workers: metrics::gauge!(LIVE, labels.clone()),
        waited: metrics::histogram!(WAIT_DURATION, labels.clone()),
        ran: metrics::histogram!(PROCESS_DURATION, process),
        published: Tally::default(),
    };
    (admissions, pool)
}

/// What the queue's gate records: every task admitted, and every place in
/// the queue taken and given back (the queued tasks are the places held).
#[derive(Clone)]
pub(crate) struct Admissions {
    submitted: Counter,
    queued: Gauge,
}

impl std::fmt::Debug for Admissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admissions").finish_non_exhaustive()
    }
}

impl Admissions {
    #[inline]
    pub(crate) fn admitted(&self) {
        self.submitted.increment(1);
        self.queued.increment(1.0);
    }

    #[inline]
    pub(crate) fn place_freed(&self) {
        self.queued.decrement(1.0);
    }
}

/// The supervisor's counts, as the metrics show them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// By outcome, in the order of `OUTCOMES`.
    pub(crate) finished: [u64; 8],
    pub(crate) retries: u64,
    pub(crate) restarts: u64,
    pub(crate) stuck: u64,
    pub(crate) dead_letters: u64,
    pub(crate) quarantined: u64,
    pub(crate) in_flight: usize,
    pub(crate) waiting_retry: usize,
    pub(crate) live_workers: usize,
}

/// The supervisor's share of a pool's metrics.
pub(crate) struct PoolMetrics {
    finished: [Counter; 8],
    retries: Counter,
    restarts: Counter,
    stuck: Counter,
    dead_letters: Counter,
    quarantined: Counter,
    in_flight: Gauge,
    waiting_retry: Gauge,
    live_workers: Gauge,
    waited: Histogram,
    ran: Histogram,
    /// What the counters and gauges say now, of this pool.
    published: Tally,
}

impl PoolMetrics {
    /// Brings the counters and gauges to `now`.
    pub(crate) fn publish(&mut self, now: Tally) {
        let before = self.published;
        if now == before {
            return;
        }
        for ((counter, now), before) in self.finished.iter().zip(now.finished).zip(before.finished)
        {
            count(counter, now, before);
        }
        count(&self.retries, now.retries, before.retries);
        count(&self.restarts, now.restarts, before.restarts);
        count(&self.stuck, now.stuck, before.stuck);
        count(&self.dead_letters, now.dead_letters, before.dead_letters);
        count(&self.quarantined, now.quarantined, before.quarantined);
        shift(&self.in_flight, now.in_flight, before.in_flight);
        shift(&self.waiting_retry, now.waiting_retry, before.waiting_retry);
        shift(&self.live_workers, now.live_workers, before.live_workers);
        self.published = now;
    }

    /// Records an attempt's run, and the task's wait if it is reported now.
    #[inline]
    pub(crate) fn attempt(&self, waited_ticks: Option<u64>, ran_ticks: u64) {
        let seconds = |ticks: u64| crate::latency::duration_of(ticks).as_secs_f64();
        if let Some(waited) = waited_ticks {
            self.waited.record(seconds(waited));
        }
        self.ran.record(seconds(ran_ticks));
    }
}

/// A pool that goes away takes its share of the gauges with it (its
/// counters stay: they count what happened).
impl Drop for PoolMetrics {
    fn drop(&mut self) {
        let gone = Tally {
            finished: self.published.finished,
            retries: self.published.retries,
            restarts: self.published.restarts,
            stuck: self.published.stuck,
            dead_letters: self.published.dead_letters,
            quarantined: self.published.quarantined,
            ..Tally::default()
        };
        self.publish(gone);
    }
}

/// Raises `counter` by what it lacks: counts only grow.
fn count(counter: &Counter, now: u64, before: u64) {
    debug_assert!(now >= before, "a count fell from {before} to {now}");
    if now > before {
        counter.increment(now - before);
    }
}

/// Moves `gauge` by the change from `before` to `now`.
fn shift(gauge: &Gauge, now: usize, before: usize) {
    if now > before {
        gauge.increment((now - before) as f64);
    } else if now < before {
        gauge.decrement((before - now) as f64);
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
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Tasks sent to the dead-letter sink"
    );
    describe_counter!(
        QUARANTINED,
        Unit::Count,
        "Tasks not run again after crashing too many workers"
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
        "Time from a task's admission to its first attempt's start"
    );
    describe_histogram!(
        PROCESS_DURATION,
        Unit::Seconds,
        "Time one attempt of a task ran"
    );
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    /// The value of the one series named `name` in the rendered text.
    fn value(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit_once(' '))
            .and_then(|(_, value)| value.parse().ok())
    }

    #[test]
    fn a_pool_that_goes_away_takes_its_gauges_but_not_its_counts() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let (_, mut other) = metrics::with_local_recorder(&recorder, || register(None));
        let (_, mut pool) = metrics::with_local_recorder(&recorder, || register(None));
        let busy = Tally {
            finished: [2, 0, 0, 0, 0, 0, 0, 0],
            in_flight: 1,
            live_workers: 3,
            ..Tally::default()
        };
        other.publish(Tally {
            live_workers: 2,
            ..Tally::default()
        });
        pool.publish(busy);
        let text = handle.render();
        // Two unnamed pools share the series, and add up.
        assert_eq!(value(&text, "workerpool_workers_live"), Some(5.0));
        drop(pool);
        let text = handle.render();
        assert_eq!(value(&text, "workerpool_workers_live"), Some(2.0));
        assert_eq!(value(&text, "workerpool_tasks_in_flight"), Some(0.0));
        assert_eq!(
            value(&text, "workerpool_tasks_finished{outcome=\"completed\"}"),
            Some(2.0)
        );
    }
}
