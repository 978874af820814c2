//! A panicking task becomes an outcome; it never reaches the caller as a panic.

mod common;

use actix_workerpool::{FnTask, Outcome, Pool, Task, TaskContext};
use common::Lab;

#[actix_rt::test]
async fn a_panic_becomes_the_panicked_outcome_and_the_pool_goes_on() {
    let lab = Lab::new();
    let pool = Pool::builder().workers(2).build().unwrap();
    let outcome = common::outcome_of(&pool, lab.panics(5)).await;
    match outcome {
        Outcome::Panicked { message, attempts } => {
            assert_eq!(message, "probe 5 panicked");
            assert_eq!(attempts, 1);
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    let outcomes = pool
        .run_all((0..4).map(|l| lab.completes(l)))
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Completed { .. }))
    );
    assert_eq!(pool.stats().await.unwrap().panicked, 1);
}

#[actix_rt::test]
async fn a_panic_after_an_await_is_caught_too() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let task = FnTask::new(3u8, |n| async move {
        actix_rt::task::yield_now().await;
        if n == 3 {
            panic!("late panic {n}");
        }
        Ok::<u8, ()>(n)
    });
    let outcome = common::outcome_of(&pool, task).await;
    assert!(matches!(outcome, Outcome::Panicked { ref message, .. } if message == "late panic 3"));
}

/// A task whose `run` panics before it even makes its future.
struct PanicsEagerly;

impl Task for PanicsEagerly {
    type Output = ();
    type Error = ();
    type State = ();

    #[allow(unreachable_code)]
    fn run(&mut self, _: &mut TaskContext<()>) -> impl Future<Output = Result<(), ()>> {
        panic!("no future for you");
        std::future::ready(Ok(()))
    }
}

#[actix_rt::test]
async fn a_panic_while_making_the_future_is_caught() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let outcome = common::outcome_of(&pool, PanicsEagerly).await;
    assert!(
        matches!(outcome, Outcome::Panicked { ref message, .. } if message == "no future for you")
    );
}

#[actix_rt::test]
async fn a_panic_in_a_spawned_task_that_the_task_awaits_is_caught_with_its_message() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let task = FnTask::new((), |()| async {
        let inner = actix_rt::spawn(async { panic!("inner panic") });
        match inner.await {
            Ok(()) => Ok::<(), ()>(()),
            // Carries the spawned task's own panic over to this one.
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        }
    });
    let outcome = common::outcome_of(&pool, task).await;
    assert!(matches!(outcome, Outcome::Panicked { ref message, .. } if message == "inner panic"));
}

/// A task whose own settings panic: the pool must not go down with them.
struct BadSettings;

impl Task for BadSettings {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), ()> {
        Err(())
    }

    fn timeout(&self) -> Option<std::time::Duration> {
        panic!("timeout() panicked")
    }
}

struct BadRetrySettings;

impl Task for BadRetrySettings {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), ()> {
        Err(())
    }

    fn is_retryable(&self, _: &()) -> bool {
        panic!("is_retryable() panicked")
    }

    fn retry_policy(&self) -> Option<actix_workerpool::RetryPolicy> {
        panic!("retry_policy() panicked")
    }
}

#[actix_rt::test]
async fn a_panic_in_the_tasks_own_settings_is_contained() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let outcome = common::outcome_of(&pool, BadSettings).await;
    assert!(
        matches!(outcome, Outcome::Panicked { ref message, .. } if message == "timeout() panicked")
    );

    // Asked by the supervisor itself: a panic there would take the pool down.
    let retry = actix_workerpool::RetryPolicy::builder()
        .max_attempts(3)
        .build()
        .unwrap();
    let pool = Pool::builder().workers(1).retry(retry).build().unwrap();
    let outcome = common::outcome_of(&pool, BadRetrySettings).await;
    assert!(
        matches!(outcome, Outcome::Failed { attempts: 1, .. }),
        "{outcome:?}"
    );
    let again = common::outcome_of(&pool, BadRetrySettings).await;
    assert!(
        matches!(again, Outcome::Failed { .. }),
        "the supervisor is still there"
    );
}
