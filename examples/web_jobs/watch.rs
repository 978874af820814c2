//! What the service keeps from watching its pool: the pool's metrics, in a
//! Prometheus recorder of its own; the latest failures, from the pool's
//! events; and the queue's recent history, sampled every second.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, Context};
use actix_workerpool::{BuildError, Pool, PoolBuilder, PoolEvent};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;

use super::Shared;
use super::job::Job;

/// The pool's name: its metrics carry it as the label `pool`.
pub const POOL_NAME: &str = "jobs";

/// How often the queue depth is sampled for the dashboard's chart.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// How many samples the history keeps: 5 minutes' worth.
pub const HISTORY_SAMPLES: usize = 300;

/// How many of the latest failures the dashboard lists.
pub const FAILURES_KEPT: usize = 20;

/// The histogram buckets for the wait and run durations, in seconds: from
/// half a millisecond to past the longest job. With buckets set, Prometheus
/// gets real histograms (which add up across instances) rather than
/// summaries.
const BUCKETS: [f64; 16] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    90.0,
];

/// Builds the pool from `builder`, named [`POOL_NAME`], with its metrics
/// going to a Prometheus recorder of its own, whose handle renders them.
///
/// The pool registers its metrics as it is built, with the recorder in place
/// then, and records into them from then on. A recorder of its own rather
/// than the global one: the tests build many pools in one process.
pub fn build_pool(builder: PoolBuilder<Job>) -> Result<(Pool<Job>, PrometheusHandle), BuildError> {
    let recorder = PrometheusBuilder::new()
        // `_total` on counters and `_seconds` on durations, as Prometheus'
        // own naming rules (and OpenTelemetry's export to it) have them.
        .with_recommended_naming(true)
        .set_buckets(&BUCKETS)
        .expect("the buckets are not empty")
        .build_recorder();
    let metrics = recorder.handle();
    let pool = metrics::with_local_recorder(&recorder, || builder.name(POOL_NAME).build())?;
    Ok((pool, metrics))
}

/// Milliseconds since the Unix epoch: what the dashboard's clock reads.
fn unix_millis() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |since| since.as_millis() as u64)
}

/// One failed, panicked or timed-out task, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub task: u64,
    pub worker: usize,
    /// `failed`, `panicked` or `timed_out`.
    pub kind: &'static str,
    pub error: String,
    /// When the pool said so, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl Failure {
    /// The failure an event tells of, if it tells of one.
    pub fn from_event(event: PoolEvent, at_ms: u64) -> Option<Failure> {
        let (task, worker, kind, error) = match event {
            PoolEvent::TaskFailed {
                task,
                worker,
                attempts,
                error,
            } => {
                // The event carries the error's `Debug` form; for this
                // service's `String` errors that is a quoted, escaped
                // literal, which reads better unquoted.
                let error = serde_json::from_str::<String>(&error).unwrap_or(error);
                let error = match attempts {
                    1 => error,
                    _ => format!("{error} (after {attempts} attempts)"),
                };
                (task, worker, "failed", error)
            }
            PoolEvent::TaskPanicked {
                task,
                worker,
                message,
            } => (task, worker, "panicked", message),
            PoolEvent::TaskTimedOut {
                task,
                worker,
                attempts,
            } => {
                let error = format!("timed out (attempt {attempts})");
                (task, worker, "timed_out", error)
            }
            _ => return None,
        };
        Some(Failure {
            task: task.as_u64(),
            worker,
            kind,
            error,
            at_ms,
        })
    }
}

/// The latest failures, newest first, at most [`FAILURES_KEPT`].
#[derive(Default)]
pub struct Failures(Mutex<VecDeque<Failure>>);

impl Failures {
    pub fn push(&self, failure: Failure) {
        let mut latest = self.0.lock().unwrap();
        latest.push_front(failure);
        latest.truncate(FAILURES_KEPT);
    }

    pub fn latest(&self) -> Vec<Failure> {
        self.0.lock().unwrap().iter().cloned().collect()
    }
}

/// Subscribes to the pool's events and keeps the failures they tell of.
struct FailureLog(Arc<Failures>);

impl Actor for FailureLog {
    type Context = Context<Self>;
}

impl actix::Handler<PoolEvent> for FailureLog {
    type Result = ();

    fn handle(&mut self, event: PoolEvent, _: &mut Context<Self>) {
        if let Some(failure) = Failure::from_event(event, unix_millis()) {
            self.0.push(failure);
        }
    }
}

/// The failures of `pool` from now on: a [`FailureLog`], subscribed to its
/// events, keeps them.
pub(super) async fn log_failures(pool: &Pool<Job>) -> io::Result<Arc<Failures>> {
    let failures = Arc::new(Failures::default());
    let log = FailureLog(failures.clone()).start();
    pool.subscribe(log.recipient())
        .await
        .map_err(io::Error::other)?;
    Ok(failures)
}

/// One point of the dashboard's chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub at_ms: u64,
    pub queued: usize,
    pub in_flight: usize,
    pub waiting_retry: usize,
}

/// The last [`HISTORY_SAMPLES`] samples, oldest first. The server keeps them,
/// not the page, so that a reload (or a second viewer) sees the same past.
#[derive(Default)]
pub struct History(Mutex<VecDeque<Sample>>);

impl History {
    pub fn push(&self, sample: Sample) {
        let mut samples = self.0.lock().unwrap();
        if samples.len() == HISTORY_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.0.lock().unwrap().iter().copied().collect()
    }
}

/// Samples the pool every [`SAMPLE_EVERY`] for the history, from one period
/// on (the server takes the first itself, see [`take_sample`]), until the
/// server is gone (the routes hold the only strong references) or the pool.
pub(super) async fn sample(shared: Weak<Shared>) {
    let first = actix_rt::time::Instant::now() + SAMPLE_EVERY;
    let mut every = actix_rt::time::interval_at(first, SAMPLE_EVERY);
    // After a stall, one sample, not a burst of them at the same moment.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if !take_sample(&shared).await {
            return;
        }
    }
}

/// Adds one sample of the pool to the history; `false` if the pool is gone.
pub(super) async fn take_sample(shared: &Shared) -> bool {
    let Ok(stats) = shared.pool.stats().await else {
        return false;
    };
    shared.history.push(Sample {
        at_ms: unix_millis(),
        queued: stats.queued,
        in_flight: stats.in_flight,
        waiting_retry: stats.waiting_retry,
    });
    // Histogram entries reach the exporter's buckets at upkeep; between
    // scrapes they would pile up.
    shared.metrics.run_upkeep();
    true
}
