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
        Outcome::NotRun { task, reason } => {
            assert!(matches!(task, Act::StopMyArbiter));
            assert_eq!(reason, StopReason::Dropped);
        }
        other => panic!("expected NotRun, got {other:?}"),
    }
    events
        .until(|e| {
            matches!(
                e,
                PoolEvent::WorkerRestarted {
                    worker: 0,
                    reason: RestartReason::Lost,
                    ..
                }
            )
        })
        .await;

    // The pool goes on, slot 0 included once its fresh worker is up.
    let mut ran_on = Vec::new();
    while !ran_on.contains(&0) {
        ran_on.push(
            pool.submit(Act::Report)
                .await
                .unwrap()
                .await
                .unwrap()
                .output()
                .unwrap(),
        );
    }
    let stats = pool.stats().await.unwrap();
    assert!(stats.balances(), "{stats:?}");
    assert_eq!(
        (stats.not_run, stats.restarts, stats.workers[0].restarts),
        (1, 1, 1)
    );
    pool.drain().await.unwrap();
}
