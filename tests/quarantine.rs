//! Poison tasks are quarantined: a task whose attempts have crashed workers
//! `k` times (`PoolBuilder::quarantine_after`) is not run again, even if its
//! retry policy would allow it; it ends `Panicked`, goes to the dead-letter
//! sink, and so one bad task cannot take the pool down through the restart
//! limit while healthy tasks keep flowing. Paused time.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_workerpool::{
    BuildError, DeadLetter, DeadReason, Jitter, Outcome, Pool, PoolBuilder, PoolEvent, RetryPolicy,
    StopReason, Task, TaskContext,
};
use common::Events;

/// Panics on the attempts its script says, fails on the others until the
/// last, and completes on that one.
struct Scripted {
    label: u32,
    panics_on: &'static [u32],
    completes_on: u32,
}

impl Task for Scripted {
    type Output = u32;
    type Error = String;
    type State = ();

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<u32, String> {
        let attempt = cx.attempt();
        if self.panics_on.contains(&attempt) {
            panic!("task {} crashed on attempt {attempt}", self.label);
        }
        if attempt < self.completes_on {
            return Err(format!("task {} failed on attempt {attempt}", self.label));
        }
        Ok(self.label)
    }
}

const ALWAYS: &[u32] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

fn poison(label: u32) -> Scripted {
    Scripted {
        label,
        panics_on: ALWAYS,
        completes_on: u32::MAX,
    }
}

fn healthy(label: u32) -> Scripted {
    Scripted {
        label,
        panics_on: &[],
        completes_on: 1,
    }
}

/// Ten attempts, panics retried too.
fn builder() -> PoolBuilder<Scripted> {
    let retry = RetryPolicy::builder()
        .max_attempts(10)
        .base_delay(Duration::from_millis(1))
        .jitter(Jitter::None)
        .retry_panics(true)
        .build()
        .unwrap();
    Pool::builder()
        .workers(2)
        .retry(retry)
        .restart_backoff(Duration::ZERO, Duration::ZERO)
}

#[actix_rt::test]
async fn a_task_that_crashed_k_workers_is_not_run_again_and_goes_to_the_dead_letters() {
    tokio::time::pause();
    let letters = Arc::new(Mutex::new(Vec::new()));
    let pool = builder()
        .quarantine_after(3)
        .dead_letters_with({
            let letters = letters.clone();
            move |letter: DeadLetter<Scripted>| {
                letters
                    .lock()
                    .unwrap()
                    .push((letter.task.label, letter.attempts, letter.reason));
            }
        })
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;

    let outcome = common::outcome_of(&pool, poison(1)).await;
    match outcome {
        Outcome::Panicked { message, attempts } => {
            assert_eq!(attempts, 3, "seven attempts were left, none made");
            assert_eq!(message, "task 1 crashed on attempt 3");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    let quarantined = events
        .until(|e| matches!(e, PoolEvent::TaskQuarantined { .. }))
        .await;
    assert!(matches!(
        quarantined,
        PoolEvent::TaskQuarantined { crashes: 3, .. }
    ));
    assert_eq!(
        *letters.lock().unwrap(),
        [(
            1,
            3,
            DeadReason::Quarantined {
                crashes: 3,
                message: "task 1 crashed on attempt 3".to_owned()
            }
        )]
    );
    // Healthy tasks flow on.
    let done = common::outcome_of(&pool, healthy(2)).await;
    assert_eq!(done.output(), Some(2));
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (
            stats.panicked,
            stats.quarantined,
            stats.retries,
            stats.restarts,
            stats.dead_letters
        ),
        (1, 1, 2, 3, 1)
    );
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn one_poison_task_cannot_stop_the_pool_through_the_restart_limit() {
    tokio::time::pause();
    // Four restarts a minute at most: a poison task retried ten times would
    // pass that. Quarantined after three crashes, it does not.
    let pool = builder()
        .restart_limit(4, Duration::from_secs(60))
        .quarantine_after(3)
        .build()
        .unwrap();
    let outcome = common::outcome_of(&pool, poison(1)).await;
    assert!(matches!(outcome, Outcome::Panicked { attempts: 3, .. }));
    for label in 2..6 {
        let done = common::outcome_of(&pool, healthy(label)).await;
        assert_eq!(done.output(), Some(label));
    }
    assert!(!pool.is_closed(), "the pool stopped");

    // The same pool without quarantine gives up.
    let unguarded = builder()
        .restart_limit(4, Duration::from_secs(60))
        .quarantine_after(u32::MAX)
        .build()
        .unwrap();
    let outcome = common::outcome_of(&unguarded, poison(1)).await;
    // Its fifth crash was one restart too many: the pool stopped, and
    // handed the task back before its sixth attempt.
    assert!(matches!(
        outcome,
        Outcome::NotRun {
            attempts: 5,
            reason: StopReason::RestartLimit { .. },
            ..
        }
    ));
    let report = unguarded.stopped().await.unwrap();
    assert!(matches!(report.reason, StopReason::RestartLimit { .. }));
}

#[actix_rt::test]
async fn only_crashes_count_toward_quarantine() {
    tokio::time::pause();
    let pool = builder().quarantine_after(2).build().unwrap();
    // One crash and four failures: never two crashes, so it runs to the end.
    let task = Scripted {
        label: 1,
        panics_on: &[1],
        completes_on: 6,
    };
    let outcome = common::outcome_of(&pool, task).await;
    assert!(matches!(
        outcome,
        Outcome::Completed {
            output: 1,
            attempts: 6
        }
    ));
    assert_eq!(pool.stats().await.unwrap().quarantined, 0);
}

#[actix_rt::test]
async fn a_task_whose_last_allowed_attempt_crashes_simply_ends_panicked() {
    tokio::time::pause();
    let pool = builder().quarantine_after(10).build().unwrap();
    let outcome = common::outcome_of(&pool, poison(1)).await;
    assert!(matches!(outcome, Outcome::Panicked { attempts: 10, .. }));
    assert_eq!(pool.stats().await.unwrap().quarantined, 0);
}

#[actix_rt::test]
async fn a_quarantine_after_zero_crashes_is_refused() {
    let refused = builder().quarantine_after(0).build().unwrap_err();
    assert_eq!(refused, BuildError::ZeroQuarantine);
}

/// Blocks its thread past its timeout on every attempt (a blocking call
/// that never answers in time), for a real moment.
struct Blocks;

impl Task for Blocks {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), ()> {
        std::thread::sleep(Duration::from_millis(150));
        Ok(())
    }

    fn timeout(&self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }
}

#[actix_rt::test]
async fn a_task_whose_workers_keep_getting_stuck_is_quarantined_too() {
    let retry = RetryPolicy::builder()
        .max_attempts(10)
        .base_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let letters = Arc::new(Mutex::new(Vec::new()));
    let pool = Pool::builder()
        .workers(1)
        .arbiters(1)
        .stuck_grace(Duration::from_millis(20))
        .retry(retry)
        .quarantine_after(2)
        .dead_letters_with({
            let letters = letters.clone();
            move |letter: DeadLetter<Blocks>| letters.lock().unwrap().push(letter.reason)
        })
        .build()
        .unwrap();
    let outcome = common::outcome_of(&pool, Blocks).await;
    assert!(
        matches!(outcome, Outcome::TimedOut { attempts: 2 }),
        "{outcome:?}"
    );
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.stuck, stats.quarantined), (2, 1));
    assert!(matches!(
        letters.lock().unwrap().as_slice(),
        [DeadReason::Quarantined { crashes: 2, .. }]
    ));
    assert!(stats.balances(), "{stats:?}");
}
