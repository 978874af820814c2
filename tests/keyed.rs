//! Per-key order: tasks with the same key (`Task::key`) run one at a time, in
//! submission order, while tasks with other keys, or none, run in parallel; a
//! retry holds back the tasks behind it with the same key; whatever ends a
//! keyed task (completion, failure, panic, cancel) lets the next one run, and
//! a stop hands back those still waiting for their key (ARCHITECTURE.md,
//! rules 1 and 2). Paused time where a retry's delay matters.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_workerpool::{
    Cancellation, FnTask, Outcome, OutcomeKind, Pool, StopReason, Submit, Task, TaskContext,
    TaskKey, TaskStatus, TrySubmit,
};
use common::{Lab, Probe, Started, one_retry_after, within_60s};

fn pool_of(workers: usize) -> Pool<Probe> {
    Pool::builder()
        .workers(workers)
        .queue_capacity(16)
        .build()
        .unwrap()
}

fn labels(started: &[Started]) -> Vec<u32> {
    started.iter().map(|s| s.label).collect()
}

/// Lets the pool run whatever is ready, on this thread.
async fn settle() {
    for _ in 0..50 {
        actix_rt::task::yield_now().await;
    }
}

#[actix_rt::test]
async fn tasks_with_the_same_key_run_one_at_a_time_in_submission_order() {
    let mut lab = Lab::new();
    let pool = pool_of(4);
    let (a, release_a) = lab.held(1);
    let (b, release_b) = lab.held(2);
    let a = pool.try_submit(a.keyed(7)).unwrap();
    let b = pool.try_submit(b.keyed(7)).unwrap();
    let c = pool.try_submit(lab.completes(3).keyed(7)).unwrap();
    let other = pool.try_submit(lab.completes(4).keyed(8)).unwrap();
    let unkeyed = pool.try_submit(lab.completes(5)).unwrap();
    assert!(other.await.unwrap().kind() == OutcomeKind::Completed);
    assert!(unkeyed.await.unwrap().kind() == OutcomeKind::Completed);
    settle().await;
    let mut started = labels(&lab.drain_started());
    started.sort();
    assert_eq!(started, [1, 4, 5], "2 and 3 wait for key 7");
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.in_flight, stats.queued), (1, 2));
    assert!(stats.balances(), "{stats:?}");
    assert_eq!(pool.status(c.id()).await.unwrap(), TaskStatus::Queued);

    release_a.release();
    assert!(a.await.unwrap().kind() == OutcomeKind::Completed);
    assert_eq!(lab.started().await.label, 2);
    settle().await;
    assert!(lab.drain_started().is_empty(), "3 waits for 2");
    release_b.release();
    assert!(b.await.unwrap().kind() == OutcomeKind::Completed);
    assert!(c.await.unwrap().kind() == OutcomeKind::Completed);
    assert_eq!(labels(&lab.drain_started()), [3]);
}

#[actix_rt::test]
async fn tasks_with_other_keys_run_in_parallel() {
    let mut lab = Lab::new();
    let pool = pool_of(3);
    let mut held = Vec::new();
    for key in 0..3 {
        let (probe, release) = lab.held(key);
        held.push((
            pool.try_submit(probe.keyed(u64::from(key))).unwrap(),
            release,
        ));
    }
    let mut slots: Vec<usize> = Vec::new();
    for _ in 0..3 {
        slots.push(lab.started().await.worker);
    }
    slots.sort();
    assert_eq!(slots, [0, 1, 2], "all three run at once");
    for (handle, release) in held {
        release.release();
        assert!(handle.await.unwrap().kind() == OutcomeKind::Completed);
    }
}

#[actix_rt::test]
async fn a_retry_holds_back_the_tasks_behind_it_with_the_same_key() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(2)
        .retry(one_retry_after(Duration::from_secs(10)))
        .build()
        .unwrap();
    let failing = pool.try_submit(lab.fails(1).keyed(7)).unwrap();
    let next = pool.try_submit(lab.completes(2).keyed(7)).unwrap();
    assert_eq!(lab.started().await.label, 1);
    // The first attempt failed; its retry waits 10 s, off any worker, and
    // the task behind it waits too, though a worker is free.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(lab.drain_started().is_empty(), "2 ran before 1's retry");
    assert_eq!(
        pool.status(next.id()).await.unwrap(),
        TaskStatus::Queued,
        "2 waits for key 7"
    );
    match failing.await.unwrap() {
        Outcome::Failed { attempts, .. } => assert_eq!(attempts, 2),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(next.await.unwrap().kind() == OutcomeKind::Completed);
    let started: Vec<(u32, u32)> = lab
        .drain_started()
        .iter()
        .map(|s| (s.label, s.attempt))
        .collect();
    assert_eq!(started, [(1, 2), (2, 1)]);
}

#[actix_rt::test]
async fn a_panic_or_a_failure_lets_the_next_task_with_the_key_run() {
    let mut lab = Lab::new();
    let pool = pool_of(2);
    let panics = pool.try_submit(lab.panics(1).keyed(7)).unwrap();
    let fails = pool.try_submit(lab.fails(2).keyed(7)).unwrap();
    let completes = pool.try_submit(lab.completes(3).keyed(7)).unwrap();
    assert!(matches!(panics.await.unwrap(), Outcome::Panicked { .. }));
    assert!(matches!(fails.await.unwrap(), Outcome::Failed { .. }));
    assert!(completes.await.unwrap().kind() == OutcomeKind::Completed);
    assert_eq!(labels(&lab.drain_started()), [1, 2, 3]);
}

#[actix_rt::test]
async fn cancelling_a_keyed_task_lets_the_next_one_run_or_takes_it_out_of_the_line() {
    let mut lab = Lab::new();
    let pool = pool_of(2);
    let (a, _release_a) = lab.held(1);
    let a = pool.try_submit(a.keyed(7)).unwrap();
    let b = pool.try_submit(lab.completes(2).keyed(7)).unwrap();
    let c = pool.try_submit(lab.completes(3).keyed(7)).unwrap();
    assert_eq!(lab.started().await.label, 1);

    // Waiting for its key, `b` is queued: taken out, it never runs.
    assert_eq!(b.cancel().await.unwrap(), Cancellation::Queued);
    assert!(matches!(
        b.await.unwrap(),
        Outcome::Cancelled { attempts: 0, .. }
    ));
    // Cancelled while running, `a` gives its key to `c`.
    assert!(a.cancel().await.unwrap().took_effect());
    assert!(c.await.unwrap().kind() == OutcomeKind::Completed);
    assert_eq!(labels(&lab.drain_started()), [3]);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.cancelled, stats.completed), (2, 1));
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn a_stop_hands_back_the_tasks_waiting_for_their_key() {
    let mut lab = Lab::new();
    let pool = pool_of(2);
    let (a, release_a) = lab.held(1);
    let a = pool.try_submit(a.keyed(7)).unwrap();
    let b = pool.try_submit(lab.completes(2).keyed(7)).unwrap();
    let c = pool.try_submit(lab.completes(3).keyed(7)).unwrap();
    assert_eq!(lab.started().await.label, 1);

    let stop = common::stop_later(&pool);
    settle().await;
    release_a.release();
    let report = within_60s(stop).await.unwrap().unwrap();
    assert_eq!(report.not_run, [b.id(), c.id()]);
    assert!(a.await.unwrap().kind() == OutcomeKind::Completed);
    for handle in [b, c] {
        match handle.await.unwrap() {
            Outcome::NotRun { reason, .. } => assert_eq!(reason, StopReason::Stopped),
            other => panic!("expected NotRun, got {other:?}"),
        }
    }
    assert!(lab.drain_started().is_empty(), "nothing ran after the stop");
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.not_run, stats.queued), (2, 0));
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn a_drain_runs_every_keyed_task_in_order() {
    let mut lab = Lab::new();
    let pool = pool_of(2);
    let (a, release_a) = lab.held(1);
    let handles = vec![
        pool.try_submit(a.keyed(7)).unwrap(),
        pool.try_submit(lab.completes(2).keyed(7)).unwrap(),
        pool.try_submit(lab.completes(3).keyed(7)).unwrap(),
    ];
    assert_eq!(lab.started().await.label, 1);
    settle().await;
    assert!(lab.drain_started().is_empty(), "2 and 3 wait for 1");
    let drain = common::drain_later(&pool);
    while !pool.is_closed() {
        actix_rt::task::yield_now().await;
    }
    release_a.release();
    let report = within_60s(drain).await.unwrap().unwrap();
    assert!(report.not_run.is_empty());
    for handle in handles {
        assert!(handle.await.unwrap().kind() == OutcomeKind::Completed);
    }
    assert_eq!(labels(&lab.drain_started()), [2, 3]);
}

#[actix_rt::test]
async fn keyed_tasks_sent_as_messages_keep_their_order() {
    let mut lab = Lab::new();
    let pool = pool_of(3);
    let addr = pool.addr();
    let (a, release_a) = lab.held(1);
    let a = addr.send(TrySubmit(a.keyed(7))).await.unwrap().unwrap();
    let b = addr
        .send(Submit(lab.completes(2).keyed(7)))
        .await
        .unwrap()
        .unwrap();
    let c = pool.submit(lab.completes(3).keyed(7)).await.unwrap();
    assert_eq!(lab.started().await.label, 1);
    settle().await;
    assert!(lab.drain_started().is_empty());
    release_a.release();
    for handle in [a, b, c] {
        assert!(handle.await.unwrap().kind() == OutcomeKind::Completed);
    }
    assert_eq!(labels(&lab.drain_started()), [2, 3]);
}

/// A task whose `key` panics.
struct BadKey;

impl Task for BadKey {
    type Output = u32;
    type Error = ();
    type State = ();

    fn key(&self) -> Option<TaskKey> {
        panic!("no key today")
    }

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<u32, ()> {
        Ok(5)
    }
}

#[actix_rt::test]
async fn a_key_that_panics_is_contained_and_the_task_runs_without_one() {
    let pool = Pool::<BadKey>::builder().workers(1).build().unwrap();
    let outcome = pool.submit(BadKey).await.unwrap().await.unwrap();
    assert_eq!(outcome.output(), Some(5));
    let second = pool.try_submit(BadKey).unwrap().await.unwrap();
    assert_eq!(second.output(), Some(5));
    assert_eq!(pool.stats().await.unwrap().completed, 2);
}

/// Counts tasks of one key running at once, and records their order.
#[derive(Clone, Default)]
struct Witness {
    running: Arc<AtomicBool>,
    overlaps: Arc<AtomicU32>,
    order: Arc<Mutex<Vec<u32>>>,
}

#[actix_rt::test]
async fn keyed_tasks_on_other_arbiters_never_overlap_and_keep_their_order() {
    let pool = Pool::builder()
        .workers(4)
        .arbiters(2)
        .queue_capacity(64)
        .build()
        .unwrap();
    let witnesses: Vec<Witness> = (0..3).map(|_| Witness::default()).collect();
    let mut handles = Vec::new();
    for n in 0..60u32 {
        let key = n % 3;
        let witness = witnesses[key as usize].clone();
        let task = FnTask::new((n, witness), |(n, witness): (u32, Witness)| async move {
            if witness.running.swap(true, Ordering::SeqCst) {
                witness.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            witness.order.lock().unwrap().push(n);
            // Long enough for another worker to start a task meanwhile.
            actix_rt::time::sleep(Duration::from_millis(1)).await;
            witness.running.store(false, Ordering::SeqCst);
            Ok::<_, ()>(n)
        })
        .keyed(u64::from(key));
        handles.push(pool.submit(task).await.unwrap());
    }
    for handle in handles {
        assert!(within_60s(handle).await.unwrap().kind() == OutcomeKind::Completed);
    }
    for (key, witness) in witnesses.iter().enumerate() {
        assert_eq!(
            witness.overlaps.load(Ordering::SeqCst),
            0,
            "key {key} overlapped"
        );
        let order = witness.order.lock().unwrap().clone();
        let expected: Vec<u32> = (0..60).filter(|n| n % 3 == key as u32).collect();
        assert_eq!(order, expected, "key {key} out of order");
    }
}

#[test]
fn hashed_keys_of_equal_values_are_equal() {
    assert_eq!(TaskKey::hashed("account-42"), TaskKey::hashed("account-42"));
    assert_ne!(TaskKey::hashed("account-42"), TaskKey::hashed("account-43"));
    assert_eq!(TaskKey::new(9).as_u64(), 9);
    assert_eq!(TaskKey::from(9u64), TaskKey::new(9));
}

#[actix_rt::test]
async fn a_submit_message_sent_first_keeps_its_turn_before_later_submissions() {
    let mut lab = Lab::new();
    let pool = pool_of(2);
    let addr = pool.addr();
    // Neither answer awaited before the other is sent.
    addr.do_send(Submit(lab.completes(1).keyed(7)));
    let second = pool.try_submit(lab.completes(2).keyed(7)).unwrap();
    let third = addr.send(Submit(lab.completes(3).keyed(7)));
    let fourth = addr.send(TrySubmit(lab.completes(4).keyed(7)));
    let (third, fourth) = futures::join!(third, fourth);
    for handle in [second, third.unwrap().unwrap(), fourth.unwrap().unwrap()] {
        assert!(within_60s(handle).await.unwrap().kind() == OutcomeKind::Completed);
    }
    assert_eq!(labels(&lab.drain_started()), [1, 2, 3, 4]);
}

#[actix_rt::test]
async fn a_keyed_task_does_not_overtake_older_tasks_without_a_key() {
    let mut lab = Lab::new();
    let pool = pool_of(1);
    let (busy, release) = lab.occupy(&pool, 0).await;
    let unkeyed = pool.try_submit(lab.completes(100)).unwrap();
    let keyed: Vec<_> = (1..=5)
        .map(|n| {
            pool.try_submit(lab.completes(n).keyed(u64::from(n)))
                .unwrap()
        })
        .collect();
    let last = pool.try_submit(lab.completes(200)).unwrap();
    release.release();
    for handle in std::iter::once(busy)
        .chain([unkeyed])
        .chain(keyed)
        .chain([last])
    {
        assert!(within_60s(handle).await.unwrap().kind() == OutcomeKind::Completed);
    }
    assert_eq!(
        labels(&lab.drain_started()),
        [100, 1, 2, 3, 4, 5, 200],
        "one worker runs them in submission order"
    );
}
