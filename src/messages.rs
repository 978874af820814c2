//! The public messages the supervisor answers, for actors that talk to a pool
//! through its `Addr` (see [`Pool::addr`](crate::Pool::addr)).
//!
//! [`Pool`](crate::Pool) wraps each of them in an async method; use whichever
//! reads better where you are.

use actix::{Message, Recipient};

use crate::error::{SubmitError, TrySubmitError};
use crate::job::TaskHandle;
use crate::outcome::StopReason;
use crate::stats::{PoolEvent, Stats};
use crate::task::{Task, TaskId};

/// Submits a task, waiting for room in the queue; answers with the task's handle.
///
/// The answer comes once the task is accepted, so an actor that awaits it feels
/// the queue's backpressure. A pool that is stopping or stopped refuses the task
/// and hands it back in [`SubmitError`].
#[derive(Message)]
#[rtype(result = "Result<TaskHandle<T>, SubmitError<T>>")]
pub struct Submit<T: Task>(pub T);

/// Submits a task if the queue has room; otherwise hands it back at once.
#[derive(Message)]
#[rtype(result = "Result<TaskHandle<T>, TrySubmitError<T>>")]
pub struct TrySubmit<T: Task>(pub T);

/// Stops the pool, the quit channel: every worker finishes the task in hand and
/// stops; every task still queued is handed back through its handle as
/// [`Outcome::NotRun`](crate::Outcome::NotRun).
///
/// Answers once every worker is gone. Idempotent: a later `Stop` (or `Drain`)
/// gets the same report.
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "StopReport")]
pub struct Stop;

/// Drains the pool: accepts nothing new, runs every task already accepted, then
/// stops the workers. Answers once every worker is gone; idempotent.
///
/// A `Stop` sent during a drain turns it into a stop.
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "StopReport")]
pub struct Drain;

/// Answers once the pool has stopped, for whatever reason, without causing a
/// stop: how a watcher learns that the supervisor gave up.
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "StopReport")]
pub struct WhenStopped;

/// Sends every later [`PoolEvent`] to this recipient, until it stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<PoolEvent>);

/// Asks for a [`Stats`] snapshot.
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "Stats")]
pub struct GetStats;

/// How a pool stopped: the answer to [`Stop`] and [`Drain`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopReport {
    /// Why the pool stopped.
    pub reason: StopReason,
    /// The tasks this stop handed back unrun (queued ones first, in queue order,
    /// then those waiting for a retry). Each one went back through its handle as
    /// [`Outcome::NotRun`](crate::Outcome::NotRun).
    pub not_run: Vec<TaskId>,
}
