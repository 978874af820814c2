//! The latency figures in `Stats`: how long tasks waited for their first
//! attempt and how long each attempt ran. Real time, since the clock that
//! times tasks keeps running under tokio's paused time; the assertions are
//! lower bounds that a sleep guarantees, whatever the machine's speed.

mod common;

use std::time::Duration;

use actix_workerpool::{Latency, Outcome, Pool, WorkerState};
use common::{Lab, Probe, one_retry_after, within_60s};

const HOLD: Duration = Duration::from_millis(100);

/// On a pool of one worker: a task held for `HOLD` while a second waits
/// behind it; both complete.
async fn hold_one_with_one_queued(pool: &Pool<Probe>) {
    let mut lab = Lab::new();
    let (long, release) = lab.occupy(pool, 1).await;
    let queued = pool.try_submit(lab.completes(2)).unwrap();
    actix_rt::time::sleep(HOLD).await;
    release.release();
    assert!(matches!(long.await.unwrap(), Outcome::Completed { .. }));
    assert!(matches!(queued.await.unwrap(), Outcome::Completed { .. }));
}

#[actix_rt::test]
async fn a_new_pool_reports_no_latency() {
    let pool = Pool::<Probe>::builder().workers(1).build().unwrap();
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.waited, Latency::default());
    assert_eq!(stats.ran, Latency::default());
}

#[actix_rt::test]
async fn a_task_queued_behind_a_long_one_waits_as_long_as_it_ran() {
    within_60s(async {
        let pool = Pool::<Probe>::builder().workers(1).build().unwrap();
        hold_one_with_one_queued(&pool).await;

        let stats = pool.stats().await.unwrap();
        assert_eq!(stats.waited.count, 2, "{stats:?}");
        assert_eq!(stats.ran.count, 2, "{stats:?}");
        // The held task ran at least as long as it was held, and the queued
        // one waited at least that long for the only worker.
        assert!(stats.ran.max >= HOLD, "{stats:?}");
        assert!(stats.waited.max >= HOLD, "{stats:?}");
        // The queued task started as the held one ended, on the same
        // worker: its run is its own, not the held one's too.
        assert!(stats.ran.p50 < stats.ran.max, "{stats:?}");
        assert!(stats.ran.p99 >= stats.ran.p50);
    })
    .await;
}

#[actix_rt::test]
async fn every_attempt_runs_into_the_figures_but_a_task_waits_once() {
    within_60s(async {
        let lab = Lab::new();
        let pool = Pool::<Probe>::builder()
            .workers(1)
            .retry(one_retry_after(Duration::from_millis(1)))
            .build()
            .unwrap();
        let handle = pool.try_submit(lab.fails(1)).unwrap();
        assert!(matches!(
            handle.await.unwrap(),
            Outcome::Failed { attempts: 2, .. }
        ));
        let stats = pool.stats().await.unwrap();
        assert_eq!(stats.ran.count, 2, "{stats:?}");
        assert_eq!(stats.waited.count, 1, "{stats:?}");
    })
    .await;
}

#[actix_rt::test]
async fn a_panicked_attempt_is_timed_too() {
    within_60s(async {
        let lab = Lab::new();
        let pool = Pool::<Probe>::builder().workers(1).build().unwrap();
        let handle = pool.try_submit(lab.panics(1)).unwrap();
        assert!(matches!(handle.await.unwrap(), Outcome::Panicked { .. }));
        let stats = pool.stats().await.unwrap();
        assert_eq!((stats.waited.count, stats.ran.count), (1, 1), "{stats:?}");
    })
    .await;
}

#[actix_rt::test]
async fn the_snapshot_names_what_each_slot_does() {
    within_60s(async {
        let mut lab = Lab::new();
        let pool = Pool::<Probe>::builder().workers(2).build().unwrap();
        let (held, release) = lab.occupy(&pool, 1).await;
        let stats = pool.stats().await.unwrap();
        let states: Vec<WorkerState> = stats.workers.iter().map(|w| w.state).collect();
        assert_eq!(
            states,
            [WorkerState::Busy { task: held.id() }, WorkerState::Idle]
        );
        release.release();
        held.await.unwrap();
        pool.stop().await.unwrap();
        let stats = pool.stats().await.unwrap();
        assert!(
            stats
                .workers
                .iter()
                .all(|w| w.state == WorkerState::Stopped),
            "{stats:?}"
        );
    })
    .await;
}

#[actix_rt::test]
async fn a_slot_waiting_out_its_restart_backoff_says_restarting() {
    tokio::time::pause();
    let lab = Lab::new();
    let pool = Pool::<Probe>::builder()
        .workers(1)
        .restart_backoff(Duration::from_secs(10), Duration::from_secs(10))
        .build()
        .unwrap();
    let handle = pool.try_submit(lab.panics(1)).unwrap();
    assert!(matches!(handle.await.unwrap(), Outcome::Panicked { .. }));
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.workers[0].state, WorkerState::Restarting);
    actix_rt::time::sleep(Duration::from_secs(11)).await;
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.workers[0].state, WorkerState::Idle);
}

#[actix_rt::test]
async fn an_untimed_pool_reports_no_latency_and_runs_as_usual() {
    within_60s(async {
        let pool = Pool::<Probe>::builder()
            .workers(1)
            .latency(false)
            .build()
            .unwrap();
        hold_one_with_one_queued(&pool).await;
        let stats = pool.stats().await.unwrap();
        assert_eq!(stats.completed, 2);
        assert_eq!(stats.waited, Latency::default());
        assert_eq!(stats.ran, Latency::default());
    })
    .await;
}
