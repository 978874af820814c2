//! The pool under test, (a): how the scenarios build it and hand it tasks,
//! through its public API only.

use std::convert::Infallible;
use std::future::Future;

use actix_workerpool::{Outcome, Pool, PoolGone, Task, TaskContext, TaskKey};
use futures::FutureExt;

/// The pool under test, as the table names it.
pub const LABEL: crate::report::Label = crate::report::Label {
    tag: "a",
    name: "actix-workerpool",
};

/// A task that does nothing; a unit struct, so that no closure or data is
/// measured, only the pool's own machinery.
pub struct Noop;

impl Task for Noop {
    type Output = ();
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> Result<(), Infallible> {
        Ok(())
    }
}

/// The pool under test, running keyed tasks.
pub const KEYED_LABEL: crate::report::Label = crate::report::Label {
    tag: "a-k",
    name: "actix-workerpool, keyed tasks",
};

/// A no-op task with a key (see `Task::key`): tasks with one key run one at
/// a time, in order.
pub struct KeyedNoop(pub u64);

impl Task for KeyedNoop {
    type Output = ();
    type Error = Infallible;
    type State = ();

    fn key(&self) -> Option<TaskKey> {
        Some(TaskKey::new(self.0))
    }

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Where a pool's workers run.
#[derive(Debug, Clone, Copy)]
pub enum Placement {
    /// On the supervisor's arbiter, the submitter's thread (the default).
    Local,
    /// Spread over this many dedicated arbiters (`.arbiters(n)`).
    Arbiters(usize),
}

/// Whether the pools under test time their tasks (`--untimed`: no).
static TIMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Makes every pool under test started after this untimed
/// (`PoolBuilder::latency(false)`), to show what timing costs.
pub fn untimed() {
    TIMED.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Builds a pool with `workers` workers placed as said, and a queue of
/// `capacity`. Must run inside the actix `System`.
pub fn start<T>(workers: usize, placement: Placement, capacity: usize) -> Pool<T>
where
    T: Task<State = ()>,
{
    let builder = Pool::builder()
        .workers(workers)
        .queue_capacity(capacity)
        .latency(TIMED.load(std::sync::atomic::Ordering::Relaxed));
    let builder = match placement {
        Placement::Local => builder,
        Placement::Arbiters(n) => builder.arbiters(n),
    };
    builder
        .build()
        .expect("inside a running System, with valid settings")
}

/// Submits `task` without waiting and returns a future of whether it
/// completed.
///
/// # Panics
///
/// If the pool refuses the task: the scenarios size every queue so that it
/// never has to.
pub fn try_submit<T: Task>(pool: &Pool<T>, task: T) -> impl Future<Output = bool> + use<T> {
    pool.try_submit(task)
        .unwrap_or_else(|e| panic!("try_submit refused a task: {e}"))
        .map(completed)
}

/// One round trip the way a caller writes it: submit (waiting for room, if
/// there were none), then wait for the outcome. Returns whether it completed.
pub async fn round_trip(pool: &Pool<Noop>) -> bool {
    match pool.submit(Noop).await {
        Ok(handle) => completed(handle.await),
        Err(e) => panic!("submit refused a task: {e}"),
    }
}

fn completed<T: Task>(outcome: Result<Outcome<T>, PoolGone>) -> bool {
    matches!(outcome, Ok(Outcome::Completed { .. }))
}

/// Drains `pool` so that its workers (and any arbiters of its own) stop
/// before the next scenario starts.
pub async fn shut_down<T: Task>(pool: Pool<T>) {
    pool.drain()
        .await
        .expect("the pool's System is still running");
}
