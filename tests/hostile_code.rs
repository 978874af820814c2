//! User code never takes the pool down: a panic in any code of the user's that
//! the pool calls (not only `Task::run`) is contained and logged, the pool goes
//! on, and the task's outcome still reaches its handle.

mod common;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_workerpool::{Outcome, OutcomeKind, Pool, PoolEvent, Task, TaskContext};
use common::Events;

/// Where a hostile task panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trap {
    None,
    /// `Debug` of the error it fails with.
    ErrorDebug,
    /// `Drop` of the error it fails with.
    ErrorDrop,
    /// `Drop` of the output it returns.
    OutputDrop,
    /// `Drop` of the task itself.
    TaskDrop,
}

struct Hostile {
    trap: Trap,
    fail: bool,
    /// Runs until this is released (or dropped), if set.
    hold: Option<futures::channel::oneshot::Receiver<()>>,
}

struct Fault(Trap);

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == Trap::ErrorDebug {
            panic!("the error's Debug panicked");
        }
        f.write_str("Fault")
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        if self.0 == Trap::ErrorDrop && !std::thread::panicking() {
            panic!("the error's Drop panicked");
        }
    }
}

struct Made(Trap);

impl Drop for Made {
    fn drop(&mut self) {
        if self.0 == Trap::OutputDrop && !std::thread::panicking() {
            panic!("the output's Drop panicked");
        }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if self.trap == Trap::TaskDrop && !std::thread::panicking() {
            panic!("the task's Drop panicked");
        }
    }
}

impl Task for Hostile {
    type Output = Made;
    type Error = Fault;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<Made, Fault> {
        if let Some(hold) = self.hold.take() {
            let _ = hold.await;
        }
        if self.fail {
            Err(Fault(self.trap))
        } else {
            Ok(Made(self.trap))
        }
    }
}

fn hostile(trap: Trap, fail: bool) -> Hostile {
    Hostile {
        trap,
        fail,
        hold: None,
    }
}

/// Submits `task`, and either awaits its outcome (returning its kind) or drops
/// its handle at once (returning `None`), so that the outcome is dropped by
/// the pool rather than by the caller.
async fn submit(pool: &Pool<Hostile>, task: Hostile, keep_handle: bool) -> Option<OutcomeKind> {
    let handle = pool.submit(task).await.expect("the pool accepts the task");
    if !keep_handle {
        drop(handle);
        return None;
    }
    let outcome = handle.await.expect("the outcome reaches the handle");
    let kind = outcome.kind();
    // The caller's own drop of a hostile outcome is the caller's business.
    std::mem::forget(outcome);
    Some(kind)
}

/// After each trap, the pool still answers and still runs tasks.
async fn assert_alive(pool: &Pool<Hostile>, after: Trap) {
    let stats = pool
        .stats()
        .await
        .unwrap_or_else(|_| panic!("after {after:?}: pool gone"));
    assert!(stats.balances(), "after {after:?}: {stats:?}");
    let kind = submit(pool, hostile(Trap::None, false), true).await;
    assert_eq!(kind, Some(OutcomeKind::Completed), "after {after:?}");
}

#[actix_rt::test]
async fn a_panicking_debug_of_an_error_does_not_take_the_pool_down_while_someone_subscribes() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let mut events = Events::subscribe(&pool).await;
    let kind = submit(&pool, hostile(Trap::ErrorDebug, true), true).await;
    assert_eq!(kind, Some(OutcomeKind::Failed));
    match events
        .until(|e| matches!(e, PoolEvent::TaskFailed { .. }))
        .await
    {
        PoolEvent::TaskFailed { error, .. } => assert!(error.contains("panicked"), "{error}"),
        _ => unreachable!(),
    }
    assert_alive(&pool, Trap::ErrorDebug).await;
}

#[actix_rt::test]
async fn panicking_drops_of_a_task_its_output_or_its_error_never_take_the_pool_down() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let _events = Events::subscribe(&pool).await;
    for trap in [Trap::TaskDrop, Trap::OutputDrop, Trap::ErrorDrop] {
        for keep_handle in [true, false] {
            let fail = trap == Trap::ErrorDrop;
            let kind = submit(&pool, hostile(trap, fail), keep_handle).await;
            if keep_handle {
                let expected = if fail {
                    OutcomeKind::Failed
                } else {
                    OutcomeKind::Completed
                };
                assert_eq!(kind, Some(expected), "{trap:?}");
            }
            assert_alive(&pool, trap).await;
        }
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.submitted, stats.completed + stats.failed);
    assert_eq!(stats.panicked, 0, "no task panicked: only code around it");
}

#[actix_rt::test]
async fn a_task_with_a_panicking_drop_handed_back_by_a_stop_still_reaches_its_handle() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let (release, hold) = futures::channel::oneshot::channel::<()>();
    let blocker = pool
        .submit(Hostile {
            trap: Trap::None,
            fail: false,
            hold: Some(hold),
        })
        .await
        .unwrap();
    actix_rt::task::yield_now().await;
    let queued = pool.try_submit(hostile(Trap::TaskDrop, false)).unwrap();
    let unawaited = pool.try_submit(hostile(Trap::TaskDrop, false)).unwrap();
    drop(unawaited);
    let stopping = common::stop_later(&pool);
    actix_rt::task::yield_now().await;
    release.send(()).unwrap();
    let report = stopping.await.unwrap().unwrap();
    assert_eq!(report.not_run.len(), 2, "{report:?}");
    std::mem::forget(blocker.await.unwrap());
    let outcome = queued.await.unwrap();
    assert_eq!(outcome.kind(), OutcomeKind::NotRun);
    std::mem::forget(outcome);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.completed, stats.not_run), (1, 2));
    assert!(stats.balances(), "{stats:?}");
}

/// Worker state whose `Drop` panics: each worker's state is dropped when the
/// worker is replaced or quits.
struct Grumpy(Arc<AtomicUsize>);

impl Drop for Grumpy {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("the worker state's Drop panicked");
    }
}

struct UsesGrumpy {
    panic: bool,
}

impl Task for UsesGrumpy {
    type Output = ();
    type Error = ();
    type State = Grumpy;

    async fn run(&mut self, _: &mut TaskContext<Grumpy>) -> Result<(), ()> {
        if self.panic {
            panic!("the task panicked");
        }
        Ok(())
    }
}

#[actix_rt::test]
async fn a_worker_state_whose_drop_panics_does_not_take_the_pool_down() {
    let drops = Arc::new(AtomicUsize::new(0));
    let made = drops.clone();
    let pool = Pool::builder_with_state(move |_| Ok::<_, String>(Grumpy(made.clone())))
        .workers(1)
        .build()
        .unwrap();
    // The panic replaces the worker, dropping its state.
    let outcome = pool
        .submit(UsesGrumpy { panic: true })
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Panicked { .. }));
    let outcome = pool
        .submit(UsesGrumpy { panic: false })
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
    let report = pool.drain().await.unwrap();
    assert!(report.not_run.is_empty());
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "both workers' states were dropped"
    );
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.completed, stats.panicked, stats.restarts), (1, 1, 1));
}
