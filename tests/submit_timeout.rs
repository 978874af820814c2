//! Submitting with a deadline: `Pool::submit_timeout` waits for room in the
//! queue at most that long, then hands the task back in a typed error.
//! Paused time: the waits are the clock's, not the machine's.

mod common;

use std::time::Duration;

use actix_workerpool::{Outcome, Pool, SubmitTimeoutError};
use common::{Lab, Probe};

/// A pool of one worker, busy, with a queue of one, full.
async fn full_pool(lab: &mut Lab) -> (Pool<Probe>, common::Release) {
    lab.full_pool(Pool::builder()).await
}

#[actix_rt::test]
async fn a_task_that_finds_room_is_accepted_at_once() {
    tokio::time::pause();
    let lab = Lab::new();
    let pool = Pool::<Probe>::builder().workers(1).build().unwrap();
    let handle = pool
        .submit_timeout(lab.completes(7), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(handle.await.unwrap().output(), Some((7, 0)));
}

#[actix_rt::test]
async fn a_full_queue_past_the_deadline_hands_the_task_back() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, _release) = full_pool(&mut lab).await;
    let started = tokio::time::Instant::now();
    let refused = pool
        .submit_timeout(lab.completes(2), Duration::from_secs(5))
        .await
        .unwrap_err();
    // The whole deadline, and no longer (the paused clock moves only to
    // timers: these bounds are exact, not the machine's).
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    assert!(matches!(refused, SubmitTimeoutError::Timeout(_)));
    assert_eq!(refused.into_inner().label, 2);
    let stats = pool.stats().await.unwrap();
    // Nothing was admitted: the counters do not know the task.
    assert_eq!((stats.submitted, stats.queued), (2, 1));
}

#[actix_rt::test]
async fn room_that_frees_up_before_the_deadline_takes_the_task() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, release) = full_pool(&mut lab).await;
    actix_rt::spawn(async move {
        actix_rt::time::sleep(Duration::from_secs(1)).await;
        release.release();
    });
    let started = tokio::time::Instant::now();
    let handle = pool
        .submit_timeout(lab.completes(2), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(handle.await.unwrap(), Outcome::Completed { .. }));
}

#[actix_rt::test]
async fn a_stopped_pool_hands_the_task_back_without_waiting() {
    tokio::time::pause();
    let lab = Lab::new();
    let pool = Pool::<Probe>::builder().workers(1).build().unwrap();
    pool.stop().await.unwrap();
    let started = tokio::time::Instant::now();
    let refused = pool
        .submit_timeout(lab.completes(3), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(matches!(refused, SubmitTimeoutError::Stopped(_)));
    assert_eq!(refused.into_inner().label, 3);
}

#[actix_rt::test]
async fn a_pool_that_stops_while_the_task_waits_hands_it_back_as_stopped() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, release) = full_pool(&mut lab).await;
    let stopping = pool.clone();
    actix_rt::spawn(async move {
        actix_rt::time::sleep(Duration::from_secs(1)).await;
        let stop = common::stop_later(&stopping);
        release.release();
        stop.await.unwrap().unwrap();
    });
    let refused = pool
        .submit_timeout(lab.completes(4), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SubmitTimeoutError::Stopped(_)),
        "{refused:?}"
    );
    assert_eq!(refused.into_inner().label, 4);
}

#[actix_rt::test]
async fn the_longest_deadline_is_no_deadline_and_no_panic() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, release) = full_pool(&mut lab).await;
    actix_rt::spawn(async move {
        actix_rt::time::sleep(Duration::from_secs(3600)).await;
        release.release();
    });
    let handle = pool
        .submit_timeout(lab.completes(5), Duration::MAX)
        .await
        .unwrap();
    assert!(matches!(handle.await.unwrap(), Outcome::Completed { .. }));
}
