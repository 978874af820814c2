//! Another actor can use a pool through the supervisor's `Addr` and the public
//! messages, the actix way.

mod common;

use actix_workerpool::{GetStats, Pool, Stop, Submit, TrySubmit, TrySubmitError};
use common::Lab;

#[actix_rt::test]
async fn the_public_messages_submit_stop_and_report() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let addr = pool.addr();

    let handle = addr.send(Submit(lab.completes(0))).await.unwrap().unwrap();
    assert_eq!(handle.await.unwrap().output(), Some((0, 0)));

    let (held, release) = lab.held(1);
    addr.send(TrySubmit(held)).await.unwrap().unwrap();
    lab.started().await;
    addr.send(TrySubmit(lab.completes(2)))
        .await
        .unwrap()
        .unwrap();
    match addr.send(TrySubmit(lab.completes(3))).await.unwrap() {
        Err(TrySubmitError::Full(task)) => assert_eq!(task.label, 3),
        other => panic!("expected Full, got {other:?}"),
    }

    let stats = addr.send(GetStats).await.unwrap();
    assert_eq!((stats.submitted, stats.in_flight, stats.queued), (3, 1, 1));

    let stopping = actix_rt::spawn({
        let addr = addr.clone();
        async move { addr.send(Stop).await }
    });
    actix_rt::task::yield_now().await;
    release.release();
    let report = stopping.await.unwrap().unwrap();
    assert_eq!(report.not_run.len(), 1);
    let refused = addr
        .send(Submit(lab.completes(4)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.into_inner().label, 4);
}

#[actix_rt::test]
async fn a_task_sent_as_a_message_keeps_its_place_behind_earlier_submissions() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let (_, release) = lab.occupy(&pool, 0).await;

    let first = pool.try_submit(lab.completes(1)).unwrap();
    let second = pool
        .addr()
        .send(TrySubmit(lab.completes(2)))
        .await
        .unwrap()
        .unwrap();
    let third = pool.try_submit(lab.completes(3)).unwrap();
    release.release();
    for handle in [first, second, third] {
        handle.await.unwrap();
    }

    let order: Vec<u32> = lab.drain_started().iter().map(|s| s.label).collect();
    assert_eq!(order, [1, 2, 3]);
}

/// A `Submit` whose sender stops waiting (here: a timeout around the send)
/// while the queue is full is not accepted later, when room frees up: the
/// message path is cancel safe like `Pool::submit`.
#[actix_rt::test]
async fn a_submit_message_given_up_while_the_queue_is_full_is_never_accepted() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let addr = pool.addr();
    let (_held, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();

    let given_up = addr
        .send(Submit(lab.completes(2)))
        .timeout(std::time::Duration::from_millis(20))
        .await;
    assert!(given_up.is_err(), "the queue was full: the send timed out");

    release.release();
    queued.await.unwrap();
    let report = pool.drain().await.unwrap();
    assert!(report.not_run.is_empty());
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.submitted, 2, "the given-up task was never accepted");
    let ran: Vec<u32> = lab.drain_started().iter().map(|s| s.label).collect();
    assert_eq!(ran, [1]);
}
