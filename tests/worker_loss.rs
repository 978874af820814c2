//! A worker that disappears without reporting (its arbiter stopped) is noticed
//! and replaced, and the task it held comes back with an outcome.

mod common;

use std::convert::Infallible;

use actix_workerpool::{Outcome, Pool, PoolEvent, RestartReason, StopReason, Task, TaskContext};
use common::Events;

enum Act {
    /// Stops the arbiter it runs on, then waits forever.
    StopMyArbiter,
    Report,
}

/// Fails the test, rather than hanging it, if `work` takes longer than 30 s.
async fn within_30s<F: std::future::Future>(work: F) -> F::Output {
    actix_rt::time::timeout(std::time::Duration::from_secs(30), work)
        .await
        .expect("the pool should have answered long before")
}

impl Task for Act {
    type Output = usize;
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<usize, Infallible> {
        match self {
            Act::StopMyArbiter => {
                actix_rt::Arbiter::current().stop();
                std::future::pending().await
            }
            Act::Report => Ok(cx.worker()),
        }
    }
}

#[actix_rt::test]
async fn a_worker_whose_arbiter_stops_is_replaced_and_its_task_handed_back() {
    let pool = Pool::builder().workers(2).arbiters(2).build().unwrap();
    let mut events = Events::subscribe(&pool).await;

    let lost = pool.submit(Act::StopMyArbiter).await.unwrap();
    match within_30s(lost).await.unwrap() {
        Outcome::NotRun {
            task,
            reason,
            attempts,
        } => {
            assert!(matches!(task, Act::StopMyArbiter));
            assert_eq!(reason, StopReason::Dropped);
            // It was running when its arbiter stopped.
            assert_eq!(attempts, 1);
        }
        other => panic!("expected NotRun, got {other:?}"),
    }
    // Whichever slot was ready first took the task (the two arbiters start
    // their workers in either order); that slot is the one restarted.
    let restarted = within_30s(events.until(|e| {
        matches!(
            e,
            PoolEvent::WorkerRestarted {
                reason: RestartReason::Lost,
                ..
            }
        )
    }))
    .await;
    let PoolEvent::WorkerRestarted {
        worker: lost_slot, ..
    } = restarted
    else {
        unreachable!("matched above")
    };

    // The pool goes on, the lost slot included once its fresh worker is up.
    let mut ran_on = Vec::new();
    while !ran_on.contains(&lost_slot) {
        let outcome = within_30s(common::outcome_of(&pool, Act::Report)).await;
        ran_on.push(outcome.output().unwrap());
        assert!(ran_on.len() < 10_000, "slot {lost_slot} never came back");
    }
    let stats = within_30s(pool.stats()).await.unwrap();
    assert!(stats.balances(), "{stats:?}");
    assert_eq!((stats.not_run, stats.restarts), (1, 1));
    assert_eq!(stats.workers[lost_slot].restarts, 1);
    within_30s(pool.drain()).await.unwrap();
}
