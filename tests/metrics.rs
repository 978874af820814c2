//! The pool's metrics (feature `metrics`), read as Prometheus text from a
//! recorder of the `metrics` facade: what is recorded for a completed, a
//! failed, a panicked and a timed-out task, the gauges, and that every
//! figure shows without anyone asking the pool for `stats()`.
//!
//! Each test has a recorder of its own, installed only while its pool is
//! built: the pool registers its metrics then, and records into them after.
#![cfg(feature = "metrics")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use actix_workerpool::{FnTask, Outcome, Pool, Task, TaskContext};
use common::{Lab, Probe, one_retry_after, within_60s};
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Builds a pool whose metrics go to a Prometheus recorder of its own.
fn pool_with_recorder<T: Task>(build: impl FnOnce() -> Pool<T>) -> (Pool<T>, PrometheusHandle) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let pool = metrics::with_local_recorder(&recorder, build);
    (pool, handle)
}

/// One sample of the rendered text: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// The samples of `name` (as Prometheus spells it) whose labels include all
/// of `labels`.
fn samples(handle: &PrometheusHandle, name: &str, labels: &[(&str, &str)]) -> Vec<Sample> {
    handle
        .render()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, labels) = match series.split_once('{') {
                Some((series_name, rest)) => (series_name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (series_name == name).then(|| {
                let labels = labels
                    .split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                    .collect();
                (labels, value.parse().expect("a number"))
            })
        })
        .filter(|(found, _): &Sample| {
            labels
                .iter()
                .all(|(k, v)| found.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The one sample of `name` with these labels.
fn value(handle: &PrometheusHandle, name: &str, labels: &[(&str, &str)]) -> f64 {
    match samples(handle, name, labels).as_slice() {
        [(_, value)] => *value,
        other => panic!("{name} {labels:?}: {other:?} in\n{}", handle.render()),
    }
}

fn finished(handle: &PrometheusHandle, pool: &str, outcome: &str) -> f64 {
    value(
        handle,
        "workerpool_tasks_finished",
        &[("pool", pool), ("outcome", outcome)],
    )
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
        let pool_label = [("pool", "outcomes")];
        assert_eq!(
            value(&metrics, "workerpool_tasks_submitted", &pool_label),
            5.0
        );
        assert_eq!(finished(&metrics, "outcomes", "completed"), 3.0);
        assert_eq!(finished(&metrics, "outcomes", "failed"), 1.0);
        assert_eq!(finished(&metrics, "outcomes", "panicked"), 1.0);
        assert_eq!(stats.restarts, 1);
        assert_eq!(
            value(&metrics, "workerpool_workers_restarted", &pool_label),
            1.0
        );
        // Nothing left in the pool.
        assert_eq!(value(&metrics, "workerpool_tasks_queued", &pool_label), 0.0);
        assert_eq!(
            value(&metrics, "workerpool_tasks_in_flight", &pool_label),
            0.0
        );
        assert_eq!(value(&metrics, "workerpool_workers_live", &pool_label), 2.0);
        // One wait per task, one run per attempt; the run with OpenTelemetry's
        // attributes.
        let waits = value(
            &metrics,
            "workerpool_tasks_wait_duration_count",
            &pool_label,
        );
        let runs = value(
            &metrics,
            "messaging_process_duration_count",
            &[
                ("pool", "outcomes"),
                ("messaging_system", "actix_workerpool"),
                ("messaging_operation_name", "process"),
            ],
        );
        assert_eq!((waits, runs), (5.0, 5.0));
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
        let pool_label = [("pool", "timeouts")];
        assert_eq!(finished(&metrics, "timeouts", "timed_out"), 1.0);
        assert_eq!(
            value(&metrics, "workerpool_tasks_retried", &pool_label),
            1.0
        );
        let runs = value(&metrics, "messaging_process_duration_count", &pool_label);
        assert_eq!(runs, 2.0);
        // Each attempt ran until its timeout cut it off.
        let total = value(&metrics, "messaging_process_duration_sum", &pool_label);
        // Two clocks (the timer's and the one that times tasks): a margin.
        assert!(total >= 0.039, "{total} s");
    })
    .await;
}

#[actix_rt::test]
async fn submissions_to_a_busy_pool_show_at_once() {
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
        // The only worker is busy: the supervisor has not seen these three,
        // and nobody asked it for stats.
        let none = [];
        assert_eq!(value(&metrics, "workerpool_tasks_submitted", &none), 4.0);
        assert_eq!(value(&metrics, "workerpool_tasks_queued", &none), 3.0);
        assert_eq!(value(&metrics, "workerpool_tasks_in_flight", &none), 1.0);
        // A pool without a name has no `pool` label.
        let (labels, _) = &samples(&metrics, "workerpool_tasks_queued", &none)[0];
        assert!(!labels.contains_key("pool"), "{labels:?}");

        release.release();
        running.await.unwrap();
        for handle in queued {
            handle.await.unwrap();
        }
        let completed = value(
            &metrics,
            "workerpool_tasks_finished",
            &[("outcome", "completed")],
        );
        assert_eq!(completed, 4.0);
        assert_eq!(value(&metrics, "workerpool_tasks_queued", &none), 0.0);
        assert_eq!(value(&metrics, "workerpool_tasks_in_flight", &none), 0.0);
    })
    .await;
}

/// Fails its first attempt, and holds its second until released.
struct FailsThenHolds {
    started: mpsc::UnboundedSender<u32>,
    release: Option<oneshot::Receiver<()>>,
}

impl Task for FailsThenHolds {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<(), ()> {
        let _ = self.started.unbounded_send(cx.attempt());
        if cx.attempt() == 1 {
            return Err(());
        }
        if let Some(release) = self.release.take() {
            let _ = release.await;
        }
        Ok(())
    }
}

#[actix_rt::test]
async fn a_retry_that_started_on_its_timer_shows_as_running() {
    within_60s(async {
        let (pool, metrics) = pool_with_recorder(|| {
            Pool::builder()
                .name("retry")
                .workers(1)
                .retry(one_retry_after(Duration::from_millis(20)))
                .build()
                .unwrap()
        });
        let (started, mut starts) = mpsc::unbounded();
        let (release, held) = oneshot::channel();
        let task = FailsThenHolds {
            started,
            release: Some(held),
        };
        let handle = pool.try_submit(task).unwrap();
        assert_eq!(starts.next().await, Some(1));
        // The second attempt starts when the retry's timer fires.
        assert_eq!(starts.next().await, Some(2));
        let pool_label = [("pool", "retry")];
        assert_eq!(
            value(&metrics, "workerpool_tasks_in_flight", &pool_label),
            1.0
        );
        assert_eq!(
            value(&metrics, "workerpool_tasks_waiting_retry", &pool_label),
            0.0
        );
        assert_eq!(
            value(&metrics, "workerpool_tasks_retried", &pool_label),
            1.0
        );
        release.send(()).unwrap();
        assert!(matches!(
            handle.await.unwrap(),
            Outcome::Completed { attempts: 2, .. }
        ));
    })
    .await;
}

#[actix_rt::test]
async fn a_stopped_pool_takes_its_gauges_with_it() {
    within_60s(async {
        let (pool, metrics) = pool_with_recorder(|| {
            Pool::<Probe>::builder()
                .name("gone")
                .workers(3)
                .build()
                .unwrap()
        });
        let pool_label = [("pool", "gone")];
        pool.stats().await.unwrap();
        assert_eq!(value(&metrics, "workerpool_workers_live", &pool_label), 3.0);
        pool.stop().await.unwrap();
        assert_eq!(value(&metrics, "workerpool_workers_live", &pool_label), 0.0);
    })
    .await;
}

#[actix_rt::test]
async fn cancels_dead_letters_and_quarantines_are_counted() {
    within_60s(async {
        let mut lab = Lab::new();
        let retry_panics = actix_workerpool::RetryPolicy::builder()
            .max_attempts(5)
            .base_delay(Duration::from_millis(1))
            .retry_panics(true)
            .build()
            .unwrap();
        let (pool, metrics) = pool_with_recorder(|| {
            Pool::<Probe>::builder()
                .name("letters")
                .workers(1)
                .retry(retry_panics)
                .quarantine_after(2)
                .restart_backoff(Duration::ZERO, Duration::ZERO)
                .dead_letters_with(|_| {})
                .build()
                .unwrap()
        });
        let (running, release) = lab.occupy(&pool, 0).await;
        let queued = pool.try_submit(lab.completes(1)).unwrap();
        assert!(queued.cancel().await.unwrap().took_effect());
        release.release();
        running.await.unwrap();
        // Crashes twice, then is quarantined: one dead letter.
        let outcome = common::outcome_of(&pool, lab.panics(2)).await;
        assert!(matches!(outcome, Outcome::Panicked { attempts: 2, .. }));
        let pool_label = [("pool", "letters")];
        assert_eq!(finished(&metrics, "letters", "cancelled"), 1.0);
        assert_eq!(
            value(&metrics, "workerpool_tasks_quarantined", &pool_label),
            1.0
        );
        assert_eq!(
            value(&metrics, "workerpool_tasks_dead_lettered", &pool_label),
            1.0
        );
    })
    .await;
}

#[actix_rt::test]
async fn an_evicted_task_is_counted_under_its_own_label() {
    within_60s(async {
        let mut lab = Lab::new();
        let (pool, metrics) = pool_with_recorder(|| {
            Pool::<Probe>::builder()
                .name("evicting")
                .workers(1)
                .queue_capacity(1)
                .overflow(actix_workerpool::Overflow::DropOldest)
                .dead_letters_with(|_| {})
                .build()
                .unwrap()
        });
        let (running, release) = lab.occupy(&pool, 0).await;
        let oldest = pool.try_submit(lab.completes(1)).unwrap();
        // The queue is full: task 1 makes room for task 2.
        let newest = pool.submit(lab.completes(2)).await.unwrap();
        assert_eq!(
            oldest.await.unwrap().kind(),
            actix_workerpool::OutcomeKind::Evicted
        );
        release.release();
        running.await.unwrap();
        newest.await.unwrap();
        pool.stats().await.unwrap();
        assert_eq!(finished(&metrics, "evicting", "evicted"), 1.0);
        assert_eq!(finished(&metrics, "evicting", "completed"), 2.0);
        assert_eq!(
            value(
                &metrics,
                "workerpool_tasks_dead_lettered",
                &[("pool", "evicting")]
            ),
            1.0
        );
    })
    .await;
}
