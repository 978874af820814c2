//! Where a pool lives and how an application follows its tasks: a pool on an
//! arbiter the application names, and a task's status from queue to outcome.

mod common;

use std::thread::{self, ThreadId};
use std::time::Duration;

use actix_rt::Arbiter;
use actix_workerpool::{FnTask, Outcome, Pool, Task, TaskContext, TaskStatus};
use common::Lab;

struct WhereAmI;

impl Task for WhereAmI {
    type Output = ThreadId;
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<ThreadId, ()> {
        Ok(thread::current().id())
    }
}

#[actix_rt::test]
async fn a_pool_started_on_a_named_arbiter_runs_its_workers_there() {
    let arbiter = Arbiter::new();
    let (tx, rx) = futures::channel::oneshot::channel();
    arbiter.spawn(async move {
        let _ = tx.send(thread::current().id());
    });
    let arbiter_thread = rx.await.unwrap();

    let pool = Pool::builder()
        .workers(2)
        .arbiter(arbiter.handle())
        .build()
        .unwrap();
    let ran_on = common::outcome_of(&pool, WhereAmI).await.output().unwrap();
    assert_eq!(ran_on, arbiter_thread);
    assert_ne!(ran_on, thread::current().id());
    pool.drain().await.unwrap();
    arbiter.stop();
}

#[test]
fn a_pool_can_be_built_from_outside_a_system_when_given_an_arbiter() {
    let system = actix_rt::System::new();
    let arbiter = system.block_on(async { Arbiter::new() });
    // Not inside `block_on`: no current arbiter here, but one is named.
    let pool = Pool::<WhereAmI>::builder()
        .arbiter(arbiter.handle())
        .build()
        .unwrap();
    let outcome = system.block_on(async { common::outcome_of(&pool, WhereAmI).await });
    assert!(matches!(outcome, Outcome::Completed { .. }));
    arbiter.stop();
}

#[actix_rt::test]
async fn status_follows_a_task_from_queue_to_outcome() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let (running, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();

    assert_eq!(
        pool.status(running.id()).await.unwrap(),
        TaskStatus::Running { worker: 0 }
    );
    assert_eq!(pool.status(queued.id()).await.unwrap(), TaskStatus::Queued);
    let (running_id, queued_id) = (running.id(), queued.id());
    release.release();
    running.await.unwrap();
    queued.await.unwrap();
    assert_eq!(pool.status(running_id).await.unwrap(), TaskStatus::Unknown);
    assert_eq!(pool.status(queued_id).await.unwrap(), TaskStatus::Unknown);
    assert_eq!(pool.status(999.into()).await.unwrap(), TaskStatus::Unknown);
}

#[actix_rt::test]
async fn status_shows_a_task_waiting_for_its_retry() {
    tokio::time::pause();
    let retry = common::one_retry_after(Duration::from_secs(10));
    let pool = Pool::builder().workers(1).retry(retry).build().unwrap();
    let flaky = FnTask::new((), |()| async { Err::<(), _>("not yet") });
    let handle = pool.submit(flaky).await.unwrap();
    let id = handle.id();
    // Let the first attempt run and fail (no time passes on the paused clock).
    while pool.stats().await.unwrap().waiting_retry == 0 {
        actix_rt::task::yield_now().await;
    }
    assert_eq!(
        pool.status(id).await.unwrap(),
        TaskStatus::WaitingRetry { attempts: 1 }
    );
    assert!(matches!(
        handle.await.unwrap(),
        Outcome::Failed { attempts: 2, .. }
    ));
}

/// A pool built on an arbiter that has already stopped would have nobody to
/// run it: `build` says so rather than hand out a pool that swallows tasks.
#[actix_rt::test]
async fn building_on_an_arbiter_that_has_stopped_is_refused() {
    let arbiter = Arbiter::new();
    let handle = arbiter.handle();
    arbiter.stop();
    arbiter.join().unwrap();
    let built = Pool::<WhereAmI>::builder().arbiter(handle).build();
    assert_eq!(
        built.unwrap_err(),
        actix_workerpool::BuildError::ArbiterStopped
    );
}

/// A pool whose arbiter stops under it refuses tasks with `Stopped`, and hands
/// back what it held: it never swallows a task, reports `Full` forever, or
/// leaves a submitter waiting.
#[actix_rt::test]
async fn a_pool_whose_arbiter_stopped_refuses_tasks_and_never_hangs() {
    let arbiter = Arbiter::new();
    let pool = Pool::<WhereAmI>::builder()
        .workers(1)
        .queue_capacity(2)
        .arbiter(arbiter.handle())
        .build()
        .unwrap();
    common::outcome_of(&pool, WhereAmI).await;
    arbiter.stop();
    arbiter.join().unwrap();

    for _ in 0..4 {
        match pool.try_submit(WhereAmI) {
            Err(actix_workerpool::TrySubmitError::Stopped(_)) => {}
            Ok(handle) => {
                // Admitted while the supervisor was being dropped: handed back.
                let outcome = handle.await.unwrap();
                assert!(matches!(outcome, Outcome::NotRun { .. }), "{outcome:?}");
            }
            Err(other) => panic!("expected Stopped, got {other:?}"),
        }
    }
    let refused = tokio::time::timeout(Duration::from_secs(10), pool.submit(WhereAmI))
        .await
        .expect("submit never hangs");
    assert!(refused.is_err());
}
