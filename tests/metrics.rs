//! The pool's metrics (feature `metrics`), read from a recorder of the
//! `metrics` facade: what is recorded for a completed, a failed, a panicked
//! and a timed-out task, and the gauges.
//!
//! Each test has a recorder of its own, installed only while its pool is
//! built: the pool registers its metrics then, and records into them after.
#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use actix_workerpool::{FnTask, Outcome, Pool, Task};
use common::{Lab, Probe, one_retry_after, within_60s};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// What a recorder holds: metric name and labels (sorted, `k=v`), and value.
struct Recorded(HashMap<(String, Vec<String>), DebugValue>);

impl Recorded {
    /// Takes everything recorded so far (counters and histograms start again
    /// from nothing after this).
    fn take(snapshotter: &Snapshotter) -> Self {
        let mut all = HashMap::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            labels.sort();
            all.insert((key.name().to_owned(), labels), value);
        }
        Recorded(all)
    }

    fn get(&self, name: &str, labels: &[&str]) -> Option<&DebugValue> {
        let labels = labels.iter().map(|label| label.to_string()).collect();
        self.0.get(&(name.to_owned(), labels))
    }

    fn counter(&self, name: &str, labels: &[&str]) -> u64 {
        match self.get(name, labels) {
            Some(DebugValue::Counter(value)) => *value,
            other => panic!("{name} {labels:?} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[&str]) -> f64 {
        match self.get(name, labels) {
            Some(DebugValue::Gauge(value)) => value.into_inner(),
            other => panic!("{name} {labels:?} is not a gauge: {other:?}"),
        }
    }

    fn histogram(&self, name: &str, labels: &[&str]) -> Vec<f64> {
        match self.get(name, labels) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            other => panic!("{name} {labels:?} is not a histogram: {other:?}"),
        }
    }

    fn finished(&self, pool: &str, outcome: &str) -> u64 {
        let outcome = format!("outcome={outcome}");
        self.counter(
            "workerpool.tasks.finished",
            &[&outcome, &format!("pool={pool}")],
        )
    }
}

/// Builds a pool whose metrics go to a recorder of its own.
fn pool_with_recorder<T: Task>(build: impl FnOnce() -> Pool<T>) -> (Pool<T>, Snapshotter) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let pool = metrics::with_local_recorder(&recorder, build);
    (pool, snapshotter)
}

#[actix_rt::test]
async fn each_outcome_is_counted_under_its_own_label() {
    within_60s(async {
        let lab = Lab::new();
        let (pool, metrics) = pool_with_recorder(|| {
            Pool::<Probe>::builder()
                .name("outcomes")
                .workers(2)
                .restart_backoff(Duration::ZERO, Duration::ZERO)
                .build()
                .unwrap()
        });
        let mut handles = Vec::new();
        for label in 0..3 {
            handles.push(pool.try_submit(lab.completes(label)).unwrap());
        }
        handles.push(pool.try_submit(lab.fails(3)).unwrap());
        handles.push(pool.try_submit(lab.panics(4)).unwrap());
        for handle in handles {
            handle.await.unwrap();
        }
        let stats = pool.stats().await.unwrap();
        let recorded = Recorded::take(&metrics);
        let pool_label = ["pool=outcomes"];
        assert_eq!(
            recorded.counter("workerpool.tasks.submitted", &pool_label),
            5
        );
        assert_eq!(recorded.finished("outcomes", "completed"), 3);
        assert_eq!(recorded.finished("outcomes", "failed"), 1);
        assert_eq!(recorded.finished("outcomes", "panicked"), 1);
        assert_eq!(
            recorded.counter("workerpool.workers.restarted", &pool_label),
            stats.restarts
        );
        assert_eq!(stats.restarts, 1);
        // Nothing left in the pool.
        assert_eq!(recorded.gauge("workerpool.tasks.queued", &pool_label), 0.0);
        assert_eq!(
            recorded.gauge("workerpool.tasks.in_flight", &pool_label),
            0.0
        );
        assert_eq!(recorded.gauge("workerpool.workers.live", &pool_label), 2.0);
        // One wait per task, one run per attempt, in seconds.
        let waits = recorded.histogram("workerpool.task.wait.duration", &pool_label);
        let runs = recorded.histogram("messaging.process.duration", &pool_label);
        assert_eq!((waits.len(), runs.len()), (5, 5));
        assert!(runs.iter().chain(&waits).all(|s| *s >= 0.0 && *s < 60.0));
    })
    .await;
}

#[actix_rt::test]
async fn a_timed_out_task_and_its_retry_are_counted() {
    within_60s(async {
        let (pool, metrics) = pool_with_recorder(|| {
            Pool::builder()
                .name("timeouts")
                .workers(1)
                .task_timeout(Duration::from_millis(20))
                .retry(one_retry_after(Duration::from_millis(1)))
                .build()
                .unwrap()
        });
        let sleeper = FnTask::new((), |()| async {
            actix_rt::time::sleep(Duration::from_secs(30)).await;
            Ok::<(), ()>(())
        });
        let outcome = pool.try_submit(sleeper).unwrap().await.unwrap();
        assert!(matches!(outcome, Outcome::TimedOut { attempts: 2 }));
        pool.stats().await.unwrap();
        let recorded = Recorded::take(&metrics);
        assert_eq!(recorded.finished("timeouts", "timed_out"), 1);
        assert_eq!(
            recorded.counter("workerpool.tasks.retried", &["pool=timeouts"]),
            1
        );
        let runs = recorded.histogram("messaging.process.duration", &["pool=timeouts"]);
        assert_eq!(runs.len(), 2);
        // Each attempt ran until its timeout cut it off.
        assert!(runs.iter().all(|seconds| *seconds >= 0.020), "{runs:?}");
    })
    .await;
}

#[actix_rt::test]
async fn the_gauges_show_tasks_queued_and_running() {
    within_60s(async {
        let mut lab = Lab::new();
        let (pool, metrics) = pool_with_recorder(|| {
            Pool::<Probe>::builder()
                .workers(1)
                .queue_capacity(8)
                .build()
                .unwrap()
        });
        let (running, release) = lab.occupy(&pool, 0).await;
        let queued: Vec<_> = (1..=3)
            .map(|label| pool.try_submit(lab.completes(label)).unwrap())
            .collect();
        pool.stats().await.unwrap();
        // A pool without a name is labelled `default`.
        let recorded = Recorded::take(&metrics);
        let pool_label = ["pool=default"];
        assert_eq!(recorded.gauge("workerpool.tasks.queued", &pool_label), 3.0);
        assert_eq!(
            recorded.gauge("workerpool.tasks.in_flight", &pool_label),
            1.0
        );
        release.release();
        running.await.unwrap();
        for handle in queued {
            handle.await.unwrap();
        }
        pool.stats().await.unwrap();
        let recorded = Recorded::take(&metrics);
        // Counted since the last look: the three that were queued, and the
        // one that was running.
        assert_eq!(recorded.finished("default", "completed"), 4);
        assert_eq!(recorded.gauge("workerpool.tasks.queued", &pool_label), 0.0);
    })
    .await;
}
