//! ARCHITECTURE.md, The promise, rule 2, in numbers: the counters add up at
//! every snapshot.

mod common;

use actix_workerpool::{OutcomeKind, Pool};
use common::Lab;

#[actix_rt::test]
async fn counters_add_up_during_and_after_a_mixed_run() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(10)
        .build()
        .unwrap();

    // A mixed run, every outcome awaited.
    let mixed: Vec<_> = (0..9)
        .map(|label| match label % 3 {
            0 => lab.completes(label),
            1 => lab.fails(label),
            _ => lab.panics(label),
        })
        .collect();
    let kinds: Vec<_> = pool
        .run_all(mixed)
        .await
        .unwrap()
        .iter()
        .map(|o| o.kind())
        .collect();
    let after_run = pool.stats().await.unwrap();
    assert!(after_run.balances(), "{after_run:?}");
    assert_eq!(
        (after_run.completed, after_run.failed, after_run.panicked),
        (3, 3, 3),
        "{kinds:?}"
    );

    // Both workers held, three tasks queued: a snapshot now counts each place.
    let (held_a, release_a) = lab.held(10);
    let (held_b, release_b) = lab.held(11);
    let held = [
        pool.try_submit(held_a).unwrap(),
        pool.try_submit(held_b).unwrap(),
    ];
    lab.drain_started();
    lab.started().await;
    lab.started().await;
    let queued: Vec<_> = (12..15)
        .map(|l| pool.try_submit(lab.completes(l)).unwrap())
        .collect();
    let during = pool.stats().await.unwrap();
    assert_eq!(
        (during.submitted, during.in_flight, during.queued),
        (14, 2, 3)
    );
    assert!(during.balances(), "{during:?}");

    // Stop while both are held: the queued three come back unrun.
    let stopping = common::stop_later(&pool);
    for handle in queued {
        assert_eq!(handle.await.unwrap().kind(), OutcomeKind::NotRun);
    }
    let stopping_now = pool.stats().await.unwrap();
    assert_eq!(
        (
            stopping_now.not_run,
            stopping_now.in_flight,
            stopping_now.queued
        ),
        (3, 2, 0)
    );
    assert!(stopping_now.balances(), "{stopping_now:?}");

    release_a.release();
    release_b.release();
    for handle in held {
        assert_eq!(handle.await.unwrap().kind(), OutcomeKind::Completed);
    }
    let report = stopping.await.unwrap().unwrap();

    let after = pool.stats().await.unwrap();
    assert!(after.balances(), "{after:?}");
    assert_eq!(
        (
            after.submitted,
            after.completed,
            after.failed,
            after.panicked,
            after.not_run
        ),
        (14, 5, 3, 3, 3)
    );
    assert_eq!((after.queued, after.in_flight), (0, 0));
    assert_eq!(report.not_run.len(), 3);
    let runs: u64 = after.workers.iter().map(|w| w.tasks_run).sum();
    assert_eq!(runs, 11);
}
