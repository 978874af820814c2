//! ARCHITECTURE.md, The promise, rule 6, the other shutdown: accept nothing
//! new, finish everything.

mod common;

use actix_workerpool::{Outcome, OutcomeKind, Pool, StopReason, TrySubmitError};
use common::Lab;

#[actix_rt::test]
async fn drain_finishes_every_accepted_task() {
    let lab = Lab::new();
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(20)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..20)
        .map(|l| pool.try_submit(lab.completes(l)).unwrap())
        .collect();

    let report = pool.drain().await.unwrap();
    assert_eq!(report.reason, StopReason::Drained);
    assert!(report.not_run.is_empty());
    for (label, handle) in (0..).zip(handles) {
        let (ran, _) = handle
            .await
            .unwrap()
            .output()
            .expect("drained tasks complete");
        assert_eq!(ran, label);
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.submitted, stats.completed), (20, 20));
}

#[actix_rt::test]
async fn nothing_new_gets_in_while_draining() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let (running, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();

    let draining = common::drain_later(&pool);
    while !pool.is_closed() {
        actix_rt::task::yield_now().await;
    }
    match pool.try_submit(lab.completes(2)) {
        Err(TrySubmitError::Stopped(task)) => assert_eq!(task.label, 2),
        other => panic!("expected Stopped, got {other:?}"),
    }
    release.release();
    draining.await.unwrap().unwrap();
    assert_eq!(running.await.unwrap().kind(), OutcomeKind::Completed);
    assert_eq!(queued.await.unwrap().output(), Some((1, 0)));
}

#[actix_rt::test]
async fn a_stop_during_a_drain_hands_back_what_is_still_queued() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let (_, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();

    let draining = common::drain_later(&pool);
    let stopping = common::stop_later(&pool);
    assert!(matches!(queued.await.unwrap(), Outcome::NotRun { .. }));
    release.release();
    let (drained, stopped) = (
        draining.await.unwrap().unwrap(),
        stopping.await.unwrap().unwrap(),
    );
    assert_eq!(drained, stopped);
    assert_eq!(stopped.reason, StopReason::Stopped);
}

#[actix_rt::test]
async fn dropping_the_last_handle_drains_the_pool() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let (running, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();
    let clone = pool.clone();
    drop(pool);
    assert!(!clone.is_closed(), "a clone still holds the pool open");
    drop(clone);

    release.release();
    assert!(running.await.unwrap().output().is_some());
    assert_eq!(
        queued.await.unwrap().output(),
        Some((1, 0)),
        "queued work still runs"
    );
}

#[actix_rt::test]
async fn a_drain_ends_when_its_last_task_panics_while_another_worker_idles() {
    // Paused: should the drain hang, the timeout below fires at once.
    tokio::time::pause();
    let lab = Lab::new();
    let pool = Pool::builder().workers(2).build().unwrap();
    // Both workers are up and idle.
    pool.stats().await.unwrap();
    let handle = pool.try_submit(lab.panics(0)).unwrap();
    let addr = pool.addr();
    // The last handle goes while the task still waits: a drain.
    drop(pool);
    assert_eq!(handle.await.unwrap().kind(), OutcomeKind::Panicked);
    let stopped = actix_rt::time::timeout(
        std::time::Duration::from_secs(30),
        addr.send(actix_workerpool::messages::WhenStopped),
    )
    .await;
    let report = stopped.expect("the drain should end").unwrap();
    assert_eq!(report.reason, StopReason::Drained);
}
