//! The bounded queue: `try_submit` hands the task back when full; `submit` waits
//! for room, and is woken (with its task) if the pool stops meanwhile.

mod common;

use actix_workerpool::{Pool, TrySubmitError};
use common::Lab;

#[actix_rt::test]
async fn try_submit_on_a_full_queue_hands_back_the_same_task() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    let (_, release) = lab.occupy(&pool, 0).await;
    pool.try_submit(lab.completes(1)).unwrap();
    pool.try_submit(lab.completes(2)).unwrap();

    match pool.try_submit(lab.completes(3)) {
        Err(TrySubmitError::Full(task)) => assert_eq!(task.label, 3),
        other => panic!("expected Full, got {other:?}"),
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.in_flight, stats.queued), (1, 2));
    release.release();
}

#[actix_rt::test]
async fn a_waiting_submit_proceeds_once_room_frees() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (first, release) = lab.occupy(&pool, 0).await;
    pool.try_submit(lab.completes(1)).unwrap();

    let waiting = actix_rt::spawn({
        let pool = pool.clone();
        let task = lab.completes(2);
        async move { pool.submit(task).await }
    });
    // Nothing can free room while task 0 holds the only worker.
    for _ in 0..10 {
        actix_rt::task::yield_now().await;
    }
    assert!(!waiting.is_finished());
    assert_eq!(pool.stats().await.unwrap().submitted, 2);

    release.release();
    let handle = waiting
        .await
        .unwrap()
        .expect("room freed, so the submit goes through");
    assert_eq!(handle.await.unwrap().output(), Some((2, 0)));
    assert!(first.await.unwrap().output().is_some());
}

#[actix_rt::test]
async fn stop_wakes_a_waiting_submit_and_hands_its_task_back() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (_, release) = lab.occupy(&pool, 0).await;
    pool.try_submit(lab.completes(1)).unwrap();

    let waiting = actix_rt::spawn({
        let pool = pool.clone();
        let task = lab.completes(2);
        async move { pool.submit(task).await }
    });
    actix_rt::task::yield_now().await;

    let stopping = common::stop_later(&pool);
    let refused = waiting
        .await
        .unwrap()
        .expect_err("the pool stopped while it waited");
    assert_eq!(refused.into_inner().label, 2);

    release.release();
    stopping.await.unwrap().unwrap();
}

#[actix_rt::test]
async fn the_capacity_counts_only_waiting_tasks_not_running_ones() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(1)
        .build()
        .unwrap();
    let mut releases = Vec::new();
    for label in 0..2 {
        let (probe, release) = lab.held(label);
        pool.try_submit(probe).unwrap();
        lab.started().await;
        releases.push(release);
    }
    pool.try_submit(lab.completes(2))
        .expect("both workers are busy but the queue is empty");
    assert!(matches!(
        pool.try_submit(lab.completes(3)),
        Err(TrySubmitError::Full(_))
    ));
    releases.into_iter().for_each(common::Release::release);
}
