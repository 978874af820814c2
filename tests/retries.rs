//! ARCHITECTURE.md, The promise, rule 5: retries back off on a timer in the
//! supervisor, never on a worker, and never after the last attempt. Time is
//! paused throughout.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_workerpool::{
    Jitter, Outcome, OutcomeKind, Pool, PoolEvent, RetryPolicy, StopReason, Task, TaskContext,
    TaskId,
};
use common::Events;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Trouble {
    Transient,
    Permanent,
}

/// What one attempt of which task ran where: (label, attempt, worker).
type Runs = Arc<Mutex<Vec<(&'static str, u32, usize)>>>;

/// Fails its first `failures` attempts (in the way `how` says), then succeeds.
struct Flaky {
    label: &'static str,
    failures: u32,
    how: How,
    own_policy: Option<RetryPolicy>,
    /// How long each attempt takes before it ends.
    takes: Duration,
    runs: Runs,
}

#[derive(Clone, Copy)]
enum How {
    Transient,
    Permanent,
    Hangs,
    Panics,
}

impl Flaky {
    fn new(label: &'static str, failures: u32, how: How, runs: &Runs) -> Self {
        Flaky {
            label,
            failures,
            how,
            own_policy: None,
            takes: Duration::ZERO,
            runs: runs.clone(),
        }
    }

    fn taking(mut self, time: Duration) -> Self {
        self.takes = time;
        self
    }
}

impl Task for Flaky {
    type Output = u32;
    type Error = Trouble;
    type State = ();

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<u32, Trouble> {
        self.runs
            .lock()
            .unwrap()
            .push((self.label, cx.attempt(), cx.worker()));
        if !self.takes.is_zero() {
            tokio::time::sleep(self.takes).await;
        }
        if cx.attempt() > self.failures {
            return Ok(cx.attempt());
        }
        match self.how {
            How::Transient => Err(Trouble::Transient),
            How::Permanent => Err(Trouble::Permanent),
            How::Hangs => std::future::pending().await,
            How::Panics => panic!("attempt {} panics", cx.attempt()),
        }
    }

    fn is_retryable(&self, error: &Trouble) -> bool {
        *error == Trouble::Transient
    }

    fn retry_policy(&self) -> Option<RetryPolicy> {
        self.own_policy
    }
}

fn policy(max_attempts: u32, base: Duration) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .base_delay(base)
        .factor(2.0)
        .max_delay(base * 64)
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

fn pool_with(workers: usize, retry: RetryPolicy) -> Pool<Flaky> {
    Pool::builder()
        .workers(workers)
        .retry(retry)
        .build()
        .unwrap()
}

fn retries_of(events: &[PoolEvent], id: TaskId) -> Vec<(u32, Duration)> {
    events
        .iter()
        .filter_map(|e| match e {
            PoolEvent::Retrying {
                task,
                attempt,
                delay,
                ..
            } if *task == id => Some((*attempt, *delay)),
            _ => None,
        })
        .collect()
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

#[actix_rt::test]
async fn a_task_that_fails_k_times_then_succeeds_takes_k_plus_one_attempts() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(1, policy(5, SECOND));
    let outcome = common::outcome_of(&pool, Flaky::new("a", 3, How::Transient, &runs)).await;
    assert!(
        matches!(
            outcome,
            Outcome::Completed {
                output: 4,
                attempts: 4
            }
        ),
        "{outcome:?}"
    );
    let attempts: Vec<u32> = runs.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.retries, stats.completed, stats.failed), (3, 1, 0));
}

#[actix_rt::test]
async fn the_last_failure_is_not_followed_by_a_wait() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(1, policy(3, HOUR));
    let mut events = Events::subscribe(&pool).await;
    let started = actix::clock::Instant::now();
    let handle = pool
        .submit(Flaky::new("a", u32::MAX, How::Transient, &runs))
        .await
        .unwrap();
    let id = handle.id();
    let outcome = handle.await.unwrap();
    let elapsed = actix::clock::Instant::now() - started;
    assert!(matches!(
        outcome,
        Outcome::Failed {
            error: Trouble::Transient,
            attempts: 3
        }
    ));

    // Two waits (1 h, 2 h) between three attempts, and none after the third:
    // the outcome came on the paused clock at 3 h, not 7 h.
    assert_eq!(retries_of(&events.so_far(), id), [(1, HOUR), (2, HOUR * 2)]);
    assert!(elapsed >= HOUR * 3 && elapsed < HOUR * 4, "{elapsed:?}");
    // And the worker is free at once for the next task.
    let next = pool
        .submit(Flaky::new("b", 0, How::Transient, &runs))
        .await
        .unwrap();
    assert!(matches!(
        next.await.unwrap(),
        Outcome::Completed { attempts: 1, .. }
    ));
    assert_eq!(actix::clock::Instant::now() - started, elapsed);
}

#[actix_rt::test]
async fn a_permanent_error_does_not_retry() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(1, policy(5, SECOND));
    let mut events = Events::subscribe(&pool).await;
    let outcome = common::outcome_of(&pool, Flaky::new("a", 1, How::Permanent, &runs)).await;
    assert!(matches!(
        outcome,
        Outcome::Failed {
            error: Trouble::Permanent,
            attempts: 1
        }
    ));
    assert!(
        !events
            .so_far()
            .iter()
            .any(|e| matches!(e, PoolEvent::Retrying { .. }))
    );
    assert_eq!(pool.stats().await.unwrap().retries, 0);
}

#[actix_rt::test]
async fn while_a_task_waits_for_its_retry_its_former_worker_runs_another() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(1, policy(3, SECOND));
    let a = pool
        .try_submit(Flaky::new("a", 1, How::Transient, &runs))
        .unwrap();
    let b = pool
        .try_submit(Flaky::new("b", 0, How::Transient, &runs))
        .unwrap();

    assert!(matches!(
        b.await.unwrap(),
        Outcome::Completed { attempts: 1, .. }
    ));
    let waiting = pool.stats().await.unwrap();
    assert_eq!(
        (waiting.waiting_retry, waiting.in_flight, waiting.queued),
        (1, 0, 0)
    );
    assert!(waiting.balances(), "{waiting:?}");

    assert!(matches!(
        a.await.unwrap(),
        Outcome::Completed { attempts: 2, .. }
    ));
    assert_eq!(
        *runs.lock().unwrap(),
        [("a", 1, 0), ("b", 1, 0), ("a", 2, 0)]
    );
}

#[actix_rt::test]
async fn a_due_retry_goes_before_tasks_submitted_after_it_failed() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(1, policy(3, SECOND));
    let a = pool
        .try_submit(Flaky::new("a", 1, How::Transient, &runs))
        .unwrap();
    // The worker is busy with b when a's retry comes due, and c waits.
    let b = pool
        .try_submit(Flaky::new("b", 0, How::Transient, &runs).taking(10 * SECOND))
        .unwrap();
    let c = pool
        .try_submit(Flaky::new("c", 0, How::Transient, &runs))
        .unwrap();
    for handle in [a, b, c] {
        assert_eq!(handle.await.unwrap().kind(), OutcomeKind::Completed);
    }
    assert_eq!(
        *runs.lock().unwrap(),
        [("a", 1, 0), ("b", 1, 0), ("a", 2, 0), ("c", 1, 0)]
    );
}

#[actix_rt::test]
async fn the_next_attempt_goes_to_whichever_worker_round_robin_picks() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(3, policy(4, SECOND));
    let outcome = common::outcome_of(&pool, Flaky::new("a", 2, How::Transient, &runs)).await;
    assert!(matches!(outcome, Outcome::Completed { attempts: 3, .. }));
    assert_eq!(
        *runs.lock().unwrap(),
        [("a", 1, 0), ("a", 2, 1), ("a", 3, 2)]
    );
}

#[actix_rt::test]
async fn stop_during_a_retry_wait_hands_the_task_back() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(1, policy(3, HOUR));
    let mut events = Events::subscribe(&pool).await;
    let handle = pool
        .submit(Flaky::new("a", 1, How::Transient, &runs))
        .await
        .unwrap();
    let id = handle.id();
    events
        .until(|e| matches!(e, PoolEvent::Retrying { .. }))
        .await;

    let report = pool.stop().await.unwrap();
    assert_eq!(report.not_run, [id]);
    match handle.await.unwrap() {
        Outcome::NotRun {
            task,
            reason: StopReason::Stopped,
            attempts,
        } => assert_eq!((task.label, attempts), ("a", 1)),
        other => panic!("expected NotRun, got {other:?}"),
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.waiting_retry, stats.not_run), (0, 1));
    assert!(stats.balances());
    assert_eq!(runs.lock().unwrap().len(), 1, "no attempt after the stop");
}

#[actix_rt::test]
async fn drain_waits_for_a_task_waiting_to_retry() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(2, policy(3, HOUR));
    let mut events = Events::subscribe(&pool).await;
    let handle = pool
        .submit(Flaky::new("a", 1, How::Transient, &runs))
        .await
        .unwrap();
    events
        .until(|e| matches!(e, PoolEvent::Retrying { .. }))
        .await;

    let report = pool.drain().await.unwrap();
    assert!(report.not_run.is_empty());
    assert!(matches!(
        handle.await.unwrap(),
        Outcome::Completed { attempts: 2, .. }
    ));
}

#[actix_rt::test]
async fn a_timed_out_attempt_is_retried_like_an_error() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = Pool::builder()
        .workers(1)
        .task_timeout(SECOND)
        .retry(policy(3, SECOND))
        .build()
        .unwrap();
    let outcome = common::outcome_of(&pool, Flaky::new("a", 1, How::Hangs, &runs)).await;
    assert!(
        matches!(outcome, Outcome::Completed { attempts: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        pool.stats().await.unwrap().timed_out,
        0,
        "only the final outcome counts"
    );
}

#[actix_rt::test]
async fn a_panic_is_retried_only_when_the_policy_says_so() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(2, policy(3, SECOND));
    let outcome = common::outcome_of(&pool, Flaky::new("a", 1, How::Panics, &runs)).await;
    assert!(
        matches!(outcome, Outcome::Panicked { attempts: 1, .. }),
        "{outcome:?}"
    );

    let panics_too = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(SECOND)
        .jitter(Jitter::None)
        .retry_panics(true)
        .build()
        .unwrap();
    let pool = pool_with(2, panics_too);
    let outcome = common::outcome_of(&pool, Flaky::new("b", 1, How::Panics, &runs)).await;
    assert!(
        matches!(outcome, Outcome::Completed { attempts: 2, .. }),
        "{outcome:?}"
    );
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.restarts, stats.retries, stats.panicked), (1, 1, 0));
}

#[actix_rt::test]
async fn a_tasks_own_policy_overrides_the_pools() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(1, RetryPolicy::never());
    let plain = pool
        .submit(Flaky::new("plain", 1, How::Transient, &runs))
        .await
        .unwrap();
    assert!(matches!(
        plain.await.unwrap(),
        Outcome::Failed { attempts: 1, .. }
    ));

    let mut stubborn = Flaky::new("stubborn", 2, How::Transient, &runs);
    stubborn.own_policy = Some(policy(3, SECOND));
    let outcome = common::outcome_of(&pool, stubborn).await;
    assert!(matches!(outcome, Outcome::Completed { attempts: 3, .. }));
}

#[actix_rt::test]
async fn delays_grow_by_the_factor_between_attempts() {
    tokio::time::pause();
    let runs = Runs::default();
    let pool = pool_with(1, policy(5, SECOND));
    let mut events = Events::subscribe(&pool).await;
    let handle = pool
        .submit(Flaky::new("a", 4, How::Transient, &runs))
        .await
        .unwrap();
    let id = handle.id();
    handle.await.unwrap();
    let delays: Vec<u64> = retries_of(&events.so_far(), id)
        .iter()
        .map(|r| r.1.as_secs())
        .collect();
    assert_eq!(delays, [1, 2, 4, 8]);
}
