//! The overflow policy: what a submit to a full queue does. `Block` (the
//! default) waits for room; `Reject` hands the task back at once, from every
//! way of submitting but a batch; `DropOldest` accepts at once and evicts
//! the task that waited longest, to the dead-letter sink. Paused time where
//! a wait is measured.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_workerpool::{
    BuildError, DeadLetter, DeadReason, FnTask, Outcome, Overflow, Pool, Submit, SubmitError,
    SubmitTimeoutError, TrySubmitError,
};
use common::{Lab, Probe};
use futures::StreamExt;

/// One worker, busy until released, and a queue of one, full.
async fn full_pool(lab: &mut Lab, overflow: Overflow) -> (Pool<Probe>, common::Release) {
    let pool = Pool::<Probe>::builder()
        .workers(1)
        .queue_capacity(1)
        .overflow(overflow)
        .build()
        .unwrap();
    let (_running, release) = lab.occupy(&pool, 0).await;
    pool.try_submit(lab.completes(1)).unwrap();
    (pool, release)
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

/// A pool of one busy worker and a queue of two, full, that drops the
/// oldest; its dead letters' labels come out of `letters`.
async fn dropping_pool(
    lab: &mut Lab,
) -> (
    Pool<Probe>,
    common::Release,
    futures::channel::mpsc::UnboundedReceiver<(u32, DeadReason)>,
    Vec<actix_workerpool::TaskHandle<Probe>>,
) {
    let (tx, letters) = futures::channel::mpsc::unbounded();
    let pool = Pool::<Probe>::builder()
        .workers(1)
        .queue_capacity(2)
        .overflow(Overflow::DropOldest)
        .dead_letters_with(move |letter: DeadLetter<Probe>| {
            let _ = tx.unbounded_send((letter.task.label, letter.reason));
        })
        .build()
        .unwrap();
    let (_running, release) = lab.occupy(&pool, 0).await;
    let queued = vec![
        pool.try_submit(lab.completes(1)).unwrap(),
        pool.try_submit(lab.completes(2)).unwrap(),
    ];
    (pool, release, letters, queued)
}

#[actix_rt::test]
async fn drop_oldest_evicts_the_task_that_waited_longest_to_the_dead_letters() {
    let mut lab = Lab::new();
    let (pool, release, mut letters, mut queued) = dropping_pool(&mut lab).await;
    let newest = pool.try_submit(lab.completes(3)).expect("accepted at once");
    let second = queued.pop().unwrap();
    let oldest = queued.pop().unwrap();
    assert!(matches!(
        oldest.await.unwrap(),
        Outcome::Evicted { attempts: 0 }
    ));
    assert_eq!(letters.next().await, Some((1, DeadReason::Evicted)));
    release.release();
    assert_eq!(second.await.unwrap().output(), Some((2, 0)));
    assert_eq!(newest.await.unwrap().output(), Some((3, 0)));
    let started: Vec<u32> = lab.drain_started().iter().map(|s| s.label).collect();
    assert_eq!(started, [2, 3], "the evicted task never ran");
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (stats.evicted, stats.completed, stats.dead_letters),
        (1, 3, 1)
    );
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn every_way_of_submitting_evicts_rather_than_waits() {
    let mut lab = Lab::new();
    let (pool, release, mut letters, _queued) = dropping_pool(&mut lab).await;
    let mut accepted = vec![
        pool.submit(lab.completes(3)).await.unwrap(),
        pool.submit_timeout(lab.completes(4), Duration::ZERO)
            .await
            .unwrap(),
    ];
    accepted.push(
        pool.addr()
            .send(Submit(lab.completes(5)))
            .await
            .unwrap()
            .unwrap(),
    );
    accepted.push(
        pool.addr()
            .send(actix_workerpool::TrySubmit(lab.completes(6)))
            .await
            .unwrap()
            .unwrap(),
    );
    let mut evicted = Vec::new();
    for _ in 0..4 {
        evicted.push(letters.next().await.unwrap().0);
    }
    assert_eq!(evicted, [1, 2, 3, 4], "oldest first");
    release.release();
    let mut outputs = Vec::new();
    for handle in accepted {
        outputs.push(handle.await.unwrap().output().map(|(label, _)| label));
    }
    assert_eq!(outputs, [None, None, Some(5), Some(6)]);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.evicted, stats.queued), (4, 0));
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn a_task_waiting_for_a_retry_is_never_evicted() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (tx, mut letters) = futures::channel::mpsc::unbounded();
    let retry = actix_workerpool::RetryPolicy::builder()
        .max_attempts(2)
        .base_delay(Duration::from_secs(10))
        .jitter(actix_workerpool::Jitter::None)
        .build()
        .unwrap();
    let pool = Pool::<Probe>::builder()
        .workers(1)
        .queue_capacity(1)
        .retry(retry)
        .overflow(Overflow::DropOldest)
        .dead_letters_with(move |letter: DeadLetter<Probe>| {
            let _ = tx.unbounded_send(letter.task.label);
        })
        .build()
        .unwrap();
    let failing = pool.submit(lab.fails(1)).await.unwrap();
    lab.started().await;
    let (_running, release) = lab.occupy(&pool, 2).await;
    let queued = pool.try_submit(lab.completes(3)).unwrap();
    // The failed task's retry comes due while the worker is busy: it waits
    // ahead of the queue, without a place.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let newest = pool.try_submit(lab.completes(4)).unwrap();
    assert!(matches!(queued.await.unwrap(), Outcome::Evicted { .. }));
    assert_eq!(letters.next().await, Some(3));
    release.release();
    assert!(matches!(
        failing.await.unwrap(),
        Outcome::Failed { attempts: 2, .. }
    ));
    assert_eq!(newest.await.unwrap().output(), Some((4, 0)));
    assert_eq!(
        letters.next().await,
        Some(1),
        "the failure, after its retry"
    );
}

#[actix_rt::test]
async fn a_pool_that_drops_the_oldest_needs_a_dead_letter_sink() {
    let refused = Pool::<Probe>::builder()
        .overflow(Overflow::DropOldest)
        .build()
        .unwrap_err();
    assert_eq!(refused, BuildError::EvictionWithoutDeadLetters);
}

/// A task that is done at once.
type Done = FnTask<u64, fn(u64) -> std::future::Ready<Result<u64, ()>>>;

/// Submitters outrun workers on two other arbiters: every task ends once,
/// completed or evicted, each evicted one reaches the sink, and no snapshot
/// shows more queued than the capacity.
#[actix_rt::test]
async fn evictions_under_load_lose_nothing_and_keep_the_queue_bounded() {
    const TASKS: u64 = 3_000;
    const CAPACITY: usize = 8;
    let letters = Arc::new(AtomicU64::new(0));
    let pool = Pool::builder()
        .workers(4)
        .arbiters(2)
        .queue_capacity(CAPACITY)
        .overflow(Overflow::DropOldest)
        .dead_letters_with({
            let letters = letters.clone();
            move |_: DeadLetter<Done>| {
                letters.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    let done = |n: u64| std::future::ready(Ok(n));
    let mut handles = Vec::new();
    for n in 0..TASKS {
        let task = FnTask::new(n, done as fn(u64) -> std::future::Ready<Result<u64, ()>>);
        handles.push(pool.try_submit(task).expect("never refused"));
        if n % 100 == 0 {
            let stats = pool.stats().await.unwrap();
            assert!(stats.queued <= CAPACITY, "{stats:?}");
            assert!(stats.balances(), "{stats:?}");
        }
    }
    let (mut completed, mut evicted) = (0, 0);
    for handle in handles {
        match handle.await.unwrap() {
            Outcome::Completed { .. } => completed += 1,
            Outcome::Evicted { attempts: 0 } => evicted += 1,
            other => panic!("{other:?}"),
        }
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!(completed + evicted, TASKS);
    assert_eq!((stats.completed, stats.evicted), (completed, evicted));
    assert_eq!(letters.load(Ordering::Relaxed), evicted);
    assert!(stats.balances(), "{stats:?}");
    eprintln!("{evicted} of {TASKS} evicted");
}
