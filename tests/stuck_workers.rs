//! ARCHITECTURE.md, The promise, rule 9: deadlines are the supervisor's. A task
//! that blocks its worker's thread past its timeout is ended by the supervisor
//! itself, its slot is reported stuck and gets a fresh worker, and whatever the
//! blocked worker reports later is discarded.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use actix_workerpool::{
    Outcome, Pool, PoolEvent, RestartReason, RetryPolicy, Task, TaskContext, TaskStatus,
};
use common::Events;

/// Blocks its thread on the attempts listed in `blocks_on` until the test
/// lets it go (a blocking call, as far as the pool can tell); other attempts
/// complete at once.
struct Blocker {
    blocks_on: &'static [u32],
    gate: Arc<std::sync::Mutex<mpsc::Receiver<()>>>,
    attempts: Arc<AtomicU32>,
    dropped: Arc<AtomicBool>,
}

impl Task for Blocker {
    type Output = u32;
    type Error = ();
    type State = ();

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<u32, ()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.blocks_on.contains(&cx.attempt()) {
            let _ = self.gate.lock().unwrap().recv();
        }
        Ok(cx.attempt())
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// What the test holds of a blocker: the key to let it go, and what it says.
struct Remote {
    release: mpsc::Sender<()>,
    attempts: Arc<AtomicU32>,
    dropped: Arc<AtomicBool>,
}

fn blocker(blocks_on: &'static [u32]) -> (Blocker, Remote) {
    let (release, gate) = mpsc::channel();
    let attempts = Arc::new(AtomicU32::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let task = Blocker {
        blocks_on,
        gate: Arc::new(std::sync::Mutex::new(gate)),
        attempts: attempts.clone(),
        dropped: dropped.clone(),
    };
    let remote = Remote {
        release,
        attempts,
        dropped,
    };
    (task, remote)
}

fn pool(retry: RetryPolicy) -> Pool<Blocker> {
    Pool::builder()
        .workers(2)
        .arbiters(2)
        .task_timeout(Duration::from_millis(50))
        .stuck_grace(Duration::from_millis(50))
        .retry(retry)
        .build()
        .unwrap()
}

/// Waits (bounded) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never happened: {what}");
}

#[actix_rt::test]
async fn a_task_that_blocks_its_thread_past_its_timeout_ends_timed_out_while_it_still_blocks() {
    common::within_60s(async {
        let pool = pool(RetryPolicy::never());
        let mut events = Events::subscribe(&pool).await;
        let (task, remote) = blocker(&[1]);
        let handle = pool.submit(task).await.unwrap();
        let id = handle.id();

        // The thread is still blocked: only the supervisor can have ended it.
        let outcome = handle.await.unwrap();
        assert!(matches!(outcome, Outcome::TimedOut { attempts: 1 }), "{outcome:?}");
        assert!(!remote.dropped.load(Ordering::SeqCst), "the blocked thread still holds it");
        let stuck = events
            .until(|e| matches!(e, PoolEvent::WorkerStuck { .. }))
            .await;
        let PoolEvent::WorkerStuck { worker, task, attempt } = stuck else {
            unreachable!()
        };
        assert_eq!((task, attempt), (id, 1));
        let restarted = events
            .until(|e| matches!(e, PoolEvent::WorkerRestarted { .. }))
            .await;
        assert!(matches!(
            restarted,
            PoolEvent::WorkerRestarted { worker: w, reason: RestartReason::Stuck, .. } if w == worker
        ));

        // Both slots work while the old thread is blocked: two tasks at once.
        let (a, a_remote) = blocker(&[]);
        let (b, b_remote) = blocker(&[]);
        let (a, b) = (pool.submit(a).await.unwrap(), pool.submit(b).await.unwrap());
        assert!(matches!(a.await.unwrap(), Outcome::Completed { .. }));
        assert!(matches!(b.await.unwrap(), Outcome::Completed { .. }));
        drop((a_remote, b_remote));

        // Its thread comes back with `Ok`: too late, discarded, never booked.
        remote.release.send(()).unwrap();
        until("the late result is handled", || remote.dropped.load(Ordering::SeqCst)).await;
        let stats = pool.stats().await.unwrap();
        assert_eq!(
            (stats.timed_out, stats.completed, stats.stuck, stats.in_flight),
            (1, 2, 1, 0),
            "{stats:?}"
        );
        assert_eq!(stats.workers[worker].stuck, 1);
        assert!(stats.balances(), "{stats:?}");
        assert_eq!(remote.attempts.load(Ordering::SeqCst), 1);
        pool.drain().await.unwrap();
    })
    .await;
}

#[actix_rt::test]
async fn a_stuck_attempt_with_a_retry_left_is_retried_once_its_thread_gives_the_task_back() {
    common::within_60s(async {
        let retry = common::one_retry_after(Duration::from_millis(10));
        let pool = pool(retry);
        let mut events = Events::subscribe(&pool).await;
        let (task, remote) = blocker(&[1]);
        let handle = pool.submit(task).await.unwrap();
        let id = handle.id();
        events
            .until(|e| matches!(e, PoolEvent::WorkerStuck { .. }))
            .await;

        // Owed a retry, which waits for the task to come back.
        let stats = pool.stats().await.unwrap();
        assert_eq!((stats.waiting_retry, stats.in_flight), (1, 0), "{stats:?}");
        assert!(stats.balances(), "{stats:?}");
        assert_eq!(
            pool.status(id).await.unwrap(),
            TaskStatus::WaitingRetry { attempts: 1 }
        );

        remote.release.send(()).unwrap();
        let outcome = handle.await.unwrap();
        assert!(
            matches!(
                outcome,
                Outcome::Completed {
                    output: 2,
                    attempts: 2
                }
            ),
            "{outcome:?}"
        );
        let stats = pool.stats().await.unwrap();
        assert_eq!((stats.completed, stats.timed_out, stats.retries), (1, 0, 1));
        assert!(stats.balances(), "{stats:?}");
        pool.drain().await.unwrap();
    })
    .await;
}

#[actix_rt::test]
async fn a_stop_does_not_wait_for_a_blocked_thread_that_owes_a_retry() {
    common::within_60s(async {
        let retry = RetryPolicy::builder().max_attempts(3).build().unwrap();
        let pool = pool(retry);
        let mut events = Events::subscribe(&pool).await;
        let (task, remote) = blocker(&[1]);
        let handle = pool.submit(task).await.unwrap();
        events
            .until(|e| matches!(e, PoolEvent::WorkerStuck { .. }))
            .await;
        let report = pool.stop().await.unwrap();
        assert!(report.not_run.is_empty());
        assert!(matches!(
            handle.await.unwrap(),
            Outcome::TimedOut { attempts: 1 }
        ));
        let stats = pool.stats().await.unwrap();
        assert_eq!((stats.timed_out, stats.waiting_retry), (1, 0), "{stats:?}");
        assert!(stats.balances(), "{stats:?}");
        remote.release.send(()).unwrap();
    })
    .await;
}

/// A worker on the supervisor's own thread that blocks it: nothing can run
/// until it returns, and then the worker itself finds its deadline passed.
#[actix_rt::test]
async fn a_task_that_blocks_the_supervisors_own_thread_ends_timed_out_when_it_returns() {
    let pool = Pool::builder()
        .workers(1)
        .task_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    let task = actix_workerpool::FnTask::new((), |()| async {
        std::thread::sleep(Duration::from_millis(200));
        Ok::<_, ()>(())
    });
    let outcome = common::outcome_of(&pool, task).await;
    assert!(
        matches!(outcome, Outcome::TimedOut { attempts: 1 }),
        "{outcome:?}"
    );
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.completed, stats.timed_out, stats.stuck), (0, 1, 0));
}

/// A result and the deadline's timer ready in the same turn: the attempt
/// timed out, it did not complete.
#[actix_rt::test]
async fn a_result_ready_together_with_its_deadline_is_never_booked_completed() {
    tokio::time::pause();
    let pool = Pool::builder()
        .workers(1)
        .task_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let task = actix_workerpool::FnTask::new((), |()| async {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, ()>(())
    });
    let outcome = common::outcome_of(&pool, task).await;
    assert!(
        matches!(outcome, Outcome::TimedOut { attempts: 1 }),
        "{outcome:?}"
    );
}
