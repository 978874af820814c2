//! Shutdown with a deadline: past it, what runs is cut off and comes back
//! `Aborted` (the task inside), what waits comes back `NotRun`, and the stop
//! answers at once, with a report of what finished, what was handed back and
//! what was aborted.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use actix_workerpool::{
    FnTask, GetStats, Outcome, Pool, PoolEvent, StopReason, Task, TaskContext, WhenStopped,
};
use common::{Events, Lab};

const HOUR: Duration = Duration::from_secs(3600);

#[actix_rt::test]
async fn drain_within_hands_back_what_waits_and_aborts_what_runs() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let mut events = Events::subscribe(&pool).await;
    let (running, _never_released) = lab.occupy(&pool, 0).await;
    let waiting = pool.try_submit(lab.completes(1)).unwrap();

    let report = pool.drain_within(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.reason, StopReason::Drained);
    assert_eq!(report.aborted, [running.id()]);
    assert_eq!(report.not_run, [waiting.id()]);
    assert!(report.finished.is_empty());
    match running.await.unwrap() {
        Outcome::Aborted { task, attempts } => assert_eq!((task.label, attempts), (0, 1)),
        other => panic!("expected Aborted, got {other:?}"),
    }
    match waiting.await.unwrap() {
        Outcome::NotRun {
            task,
            reason,
            attempts,
        } => {
            assert_eq!((task.label, attempts), (1, 0));
            let within = Duration::from_secs(30);
            assert_eq!(reason, StopReason::Deadline { within });
        }
        other => panic!("expected NotRun, got {other:?}"),
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.aborted, stats.not_run, stats.in_flight), (1, 1, 0));
    assert!(stats.balances(), "{stats:?}");
    let aborted = events
        .until(|e| matches!(e, PoolEvent::TaskAborted { .. }))
        .await;
    assert!(matches!(aborted, PoolEvent::TaskAborted { worker: 0, .. }));
}

#[actix_rt::test]
async fn a_drain_that_ends_in_time_reports_what_finished_and_aborts_nothing() {
    tokio::time::pause();
    let lab = Lab::new();
    let pool = Pool::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|l| pool.try_submit(lab.completes(l)).unwrap())
        .collect();
    let ids: Vec<_> = handles.iter().map(|h| h.id()).collect();
    let report = pool.drain_within(HOUR).await.unwrap();
    let mut finished = report.finished.clone();
    finished.sort();
    assert_eq!(finished, ids);
    assert!(report.aborted.is_empty() && report.not_run.is_empty());
    for handle in handles {
        assert!(matches!(handle.await.unwrap(), Outcome::Completed { .. }));
    }
}

/// Blocks its thread until the test lets it go.
struct Blocks(std::sync::Mutex<mpsc::Receiver<()>>, u32);

impl Task for Blocks {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), ()> {
        let _ = self.0.lock().unwrap().recv();
        Ok(())
    }
}

#[actix_rt::test]
async fn stop_within_answers_without_waiting_for_a_blocked_thread_which_hands_the_task_back_later()
{
    common::within_60s(async {
        let pool = Pool::builder().workers(1).arbiters(1).build().unwrap();
        let (release, gate) = mpsc::channel();
        let handle = pool
            .submit(Blocks(std::sync::Mutex::new(gate), 7))
            .await
            .unwrap();
        // Running (and blocked) before the stop.
        while pool.stats().await.unwrap().in_flight == 0 {
            actix_rt::task::yield_now().await;
        }

        let report = pool.stop_within(Duration::from_millis(50)).await.unwrap();
        assert_eq!(report.reason, StopReason::Stopped);
        assert_eq!(report.aborted, [handle.id()]);
        let stats = pool.stats().await.unwrap();
        assert_eq!((stats.aborted, stats.in_flight), (1, 0));
        assert!(stats.balances(), "{stats:?}");

        // The thread lets go: the task comes back, whole.
        release.send(()).unwrap();
        match handle.await.unwrap() {
            Outcome::Aborted { task, attempts } => assert_eq!((task.1, attempts), (7, 1)),
            other => panic!("expected Aborted, got {other:?}"),
        }
    })
    .await;
}

#[actix_rt::test]
async fn the_pools_shutdown_timeout_applies_to_the_drain_that_dropping_it_starts() {
    tokio::time::pause();
    let pool = Pool::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let forever = FnTask::new((), |()| std::future::pending::<Result<(), ()>>());
    let handle = pool.submit(forever).await.unwrap();
    actix_rt::task::yield_now().await;
    let addr = pool.addr();
    drop(pool);

    let report = addr.send(WhenStopped).await.unwrap();
    assert_eq!(report.reason, StopReason::Drained);
    assert_eq!(report.aborted, [handle.id()]);
    assert!(matches!(handle.await.unwrap(), Outcome::Aborted { .. }));
    assert_eq!(addr.send(GetStats).await.unwrap().aborted, 1);
}

#[actix_rt::test]
async fn the_earliest_deadline_wins_and_every_caller_gets_the_same_report() {
    tokio::time::pause();
    let pool = Pool::builder().workers(1).build().unwrap();
    let forever = FnTask::new((), |()| std::future::pending::<Result<(), ()>>());
    let handle = pool.submit(forever).await.unwrap();
    actix_rt::task::yield_now().await;
    let started = actix_rt::time::Instant::now();
    let long = {
        let pool = pool.clone();
        actix_rt::spawn(async move { pool.stop_within(HOUR).await })
    };
    actix_rt::task::yield_now().await;
    let short = pool.stop_within(Duration::from_secs(1)).await.unwrap();
    assert!(started.elapsed() < HOUR, "the shorter deadline decided");
    let long = long.await.unwrap().unwrap();
    assert_eq!(short, long);
    assert_eq!(short.aborted, [handle.id()]);
}
