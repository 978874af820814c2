//! ARCHITECTURE.md, The promise, rule 6, the quit channel: the task in hand
//! finishes, the queued ones come back, and nothing more gets in.

mod common;

use actix_workerpool::{Outcome, Pool, StopReason, TrySubmitError};
use common::Lab;

#[actix_rt::test]
async fn stop_lets_the_task_in_hand_finish_and_hands_back_the_queued_ones() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let (running, release) = lab.occupy(&pool, 0).await;
    let queued: Vec<_> = [1, 2]
        .map(|l| pool.try_submit(lab.completes(l)).unwrap())
        .into();
    let queued_ids: Vec<_> = queued.iter().map(|h| h.id()).collect();

    let stopping = common::stop_later(&pool);
    for handle in queued {
        match handle.await.unwrap() {
            Outcome::NotRun {
                task,
                reason,
                attempts,
            } => {
                assert!(task.label == 1 || task.label == 2);
                assert_eq!((reason, attempts), (StopReason::Stopped, 0));
            }
            other => panic!("expected NotRun, got {other:?}"),
        }
    }
    // The stop answers only once the worker has finished task 0 and exited.
    assert!(!stopping.is_finished());
    release.release();
    let report = stopping.await.unwrap().unwrap();
    assert_eq!(report.reason, StopReason::Stopped);
    assert_eq!(report.not_run, queued_ids);
    assert_eq!(running.await.unwrap().output(), Some((0, 0)));
    assert!(
        lab.drain_started().is_empty(),
        "no queued task started after the stop"
    );
}

#[actix_rt::test]
async fn submit_after_stop_returns_the_task() {
    let lab = Lab::new();
    let pool = Pool::builder().workers(2).build().unwrap();
    pool.stop().await.unwrap();
    assert!(pool.is_closed());

    let refused = pool.submit(lab.completes(7)).await.unwrap_err();
    assert_eq!(refused.into_inner().label, 7);
    match pool.try_submit(lab.completes(8)) {
        Err(TrySubmitError::Stopped(task)) => assert_eq!(task.label, 8),
        other => panic!("expected Stopped, got {other:?}"),
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.submitted, 0);
}

#[actix_rt::test]
async fn stop_is_idempotent_and_every_caller_gets_the_same_report() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let (_, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();

    let first = common::stop_later(&pool);
    let second = common::stop_later(&pool);
    queued.await.unwrap();
    release.release();
    let (first, second) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert_eq!(first, second);
    assert_eq!(first.not_run.len(), 1);
    assert_eq!(pool.stop().await.unwrap(), first);
    assert_eq!(pool.drain().await.unwrap(), first);
}

#[actix_rt::test]
async fn stop_with_idle_workers_answers_at_once() {
    let pool = Pool::<common::Probe>::builder().workers(3).build().unwrap();
    let report = pool.stop().await.unwrap();
    assert!(report.not_run.is_empty());
    let stats = pool.stats().await.unwrap();
    assert!(stats.balances());
    assert_eq!((stats.submitted, stats.in_flight), (0, 0));
}
