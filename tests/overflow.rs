//! The overflow policy: what a submit to a full queue does. `Block` (the
//! default) waits for room; `Reject` hands the task back at once, from every
//! way of submitting but a batch. Paused time where a wait is measured.

mod common;

use std::time::Duration;

use actix_workerpool::{Overflow, Pool, Submit, SubmitError, SubmitTimeoutError, TrySubmitError};
use common::{Lab, Probe};

/// One worker, busy until released, and a queue of one, full.
async fn full_pool(lab: &mut Lab, overflow: Overflow) -> (Pool<Probe>, common::Release) {
    lab.full_pool(Pool::builder().overflow(overflow)).await
}

#[actix_rt::test]
async fn by_default_submit_waits_for_room() {
    let mut lab = Lab::new();
    let (pool, release) = full_pool(&mut lab, Overflow::Block).await;
    let mut waiting = Box::pin(pool.submit(lab.completes(2)));
    assert!(futures::poll!(waiting.as_mut()).is_pending());
    release.release();
    let handle = waiting.await.expect("accepted once there is room");
    assert_eq!(handle.await.unwrap().output(), Some((2, 0)));
}

#[actix_rt::test]
async fn reject_hands_the_task_back_from_submit_at_once() {
    let mut lab = Lab::new();
    let (pool, _release) = full_pool(&mut lab, Overflow::Reject).await;
    match pool.submit(lab.completes(2)).await {
        Err(SubmitError::Full(task)) => assert_eq!(task.label, 2),
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(matches!(
        pool.try_submit(lab.completes(3)),
        Err(TrySubmitError::Full(_))
    ));
    // Nothing refused was counted.
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.submitted, stats.queued), (2, 1));
}

#[actix_rt::test]
async fn reject_answers_the_submit_message_at_once() {
    let mut lab = Lab::new();
    let (pool, _release) = full_pool(&mut lab, Overflow::Reject).await;
    let answer = pool.addr().send(Submit(lab.completes(2))).await.unwrap();
    match answer {
        Err(SubmitError::Full(task)) => assert_eq!(task.label, 2),
        other => panic!("expected Full, got {other:?}"),
    }
}

#[actix_rt::test]
async fn reject_makes_submit_timeout_give_up_without_waiting() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, _release) = full_pool(&mut lab, Overflow::Reject).await;
    let started = tokio::time::Instant::now();
    let refused = pool
        .submit_timeout(lab.completes(2), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(refused, SubmitTimeoutError::Timeout(_)));
    // The paused clock moves only to timers: no timer ran.
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[actix_rt::test]
async fn a_batch_waits_for_room_whatever_the_policy() {
    let lab = Lab::new();
    let pool = Pool::<Probe>::builder()
        .workers(1)
        .queue_capacity(1)
        .overflow(Overflow::Reject)
        .build()
        .unwrap();
    let outcomes = pool
        .run_all((0..6).map(|n| lab.completes(n)))
        .await
        .unwrap();
    let outputs: Vec<_> = outcomes.into_iter().map(|o| o.output()).collect();
    assert_eq!(outputs, (0..6).map(|n| Some((n, 0))).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn a_rejecting_pool_that_has_stopped_says_stopped() {
    let lab = Lab::new();
    let pool = Pool::<Probe>::builder()
        .overflow(Overflow::Reject)
        .build()
        .unwrap();
    pool.stop().await.unwrap();
    assert!(matches!(
        pool.submit(lab.completes(1)).await,
        Err(SubmitError::Stopped(_))
    ));
}
