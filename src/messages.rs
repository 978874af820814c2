//! The public messages the supervisor answers, for actors that talk to a pool
//! through its `Addr` (see [`Pool::addr`](crate::Pool::addr)).
//!
//! [`Pool`](crate::Pool) wraps each of them in an async method; use whichever
//! reads better where you are.
//!
//! # Examples
//!
//! ```
//! use actix_workerpool::{FnTask, GetStats, Pool, Stop, TrySubmit};
//!
//! # actix_rt::System::new().block_on(async {
//! let pool = Pool::builder().workers(2).build().unwrap();
//! let addr = pool.addr(); // what another actor would hold
//!
//! let task = FnTask::new(20u32, |n| async move { Ok::<_, ()>(n + 1) });
//! let handle = addr.send(TrySubmit(task)).await.unwrap().unwrap();
//! assert_eq!(handle.await.unwrap().output(), Some(21));
//!
//! assert_eq!(addr.send(GetStats).await.unwrap().completed, 1);
//! let report = addr.send(Stop).await.unwrap();
//! assert!(report.not_run.is_empty());
//! # });
//! ```

use std::fmt;

use actix::{Message, Recipient};

use crate::error::{ResizeError, SubmitError, TrySubmitError};
use crate::job::TaskHandle;
use crate::outcome::Outcome;
use crate::outcome::StopReason;
use crate::stats::{PoolEvent, Stats};
use crate::task::{Task, TaskId};

/// Submits a task, waiting for room in the queue; answers with the task's handle.
///
/// The answer comes once the task is accepted, so an actor that awaits it feels
/// the queue's backpressure. A pool that is stopping or stopped refuses the task
/// and hands it back in [`SubmitError`]. The pool's
/// [`Overflow`](crate::Overflow) policy applies as it does to
/// [`Pool::submit`](crate::Pool::submit) (`Reject` answers
/// [`SubmitError::Full`] at once), except that a `Submit` sent with
/// `do_send`, whose refusal nobody could hear, waits for room.
///
/// # Cancel safety
///
/// As [`Pool::submit`](crate::Pool::submit): a sender that stops waiting for
/// the answer (its `send` future dropped, or timed out with
/// `addr.send(..).timeout(..)`) while the queue is full gives the task up: it
/// is dropped, never accepted later. Once accepted, a task runs whether or not
/// anyone still waits for its handle. Sent with `do_send`, nobody waits, and
/// the task is accepted as soon as there is room.
#[derive(Message)]
#[rtype(result = "Result<TaskHandle<T>, SubmitError<T>>")]
pub struct Submit<T: Task>(pub T);

/// Submits a task if the queue has room; otherwise hands it back at once.
#[derive(Message)]
#[rtype(result = "Result<TaskHandle<T>, TrySubmitError<T>>")]
pub struct TrySubmit<T: Task>(pub T);

/// Submits a task from an actor that wants its outcome as a message, not a
/// handle to await: fire and report.
///
/// The outcome comes to `report_to` as [`TaskReport::Finished`] (exactly once,
/// like a handle's). A task the pool refuses (queue full, pool stopped) comes
/// back to `report_to` at once as [`TaskReport::Refused`], so the sender can
/// `do_send` this and await nothing. Answers `Some(id)` if the task was
/// accepted, `None` if it was refused.
///
/// # Examples
///
/// ```
/// use actix::prelude::*;
/// use actix_workerpool::{FnTask, Pool, SubmitAndReport, TaskReport};
///
/// type Double = FnTask<u32, fn(u32) -> std::future::Ready<Result<u32, ()>>>;
///
/// /// Hands out work and hears how it went, without awaiting in a handler.
/// struct Dispatcher {
///     pool: Pool<Double>,
/// }
///
/// impl Actor for Dispatcher {
///     type Context = Context<Self>;
///
///     fn started(&mut self, ctx: &mut Context<Self>) {
///         let double: fn(u32) -> _ = |n| std::future::ready(Ok(n * 2));
///         self.pool.addr().do_send(SubmitAndReport {
///             task: FnTask::new(21, double),
///             report_to: ctx.address().recipient(),
///         });
///     }
/// }
///
/// impl Handler<TaskReport<Double>> for Dispatcher {
///     type Result = ();
///
///     fn handle(&mut self, report: TaskReport<Double>, _: &mut Context<Self>) {
///         if let TaskReport::Finished { outcome, .. } = report {
///             assert_eq!(outcome.output(), Some(42));
///             System::current().stop();
///         }
///     }
/// }
///
/// let system = System::new();
/// system.block_on(async {
///     let pool = Pool::builder().workers(2).build().unwrap();
///     Dispatcher { pool }.start();
/// });
/// system.run().unwrap();
/// ```
#[derive(Message)]
#[rtype(result = "Option<TaskId>")]
pub struct SubmitAndReport<T: Task> {
    /// The task.
    pub task: T,
    /// Where its outcome (or its refusal) goes.
    pub report_to: Recipient<TaskReport<T>>,
}

/// What an actor that used [`SubmitAndReport`] hears about its task.
#[derive(Message)]
#[rtype(result = "()")]
pub enum TaskReport<T: Task> {
    /// The task ended: its one outcome.
    Finished {
        /// The id the pool gave the task.
        id: TaskId,
        /// How it ended.
        outcome: Outcome<T>,
    },
    /// The pool did not accept the task; it comes back inside.
    Refused(TrySubmitError<T>),
}

impl<T: Task> fmt::Debug for TaskReport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskReport::Finished { id, outcome } => f
                .debug_struct("Finished")
                .field("id", id)
                .field("outcome", outcome)
                .finish(),
            TaskReport::Refused(error) => f.debug_tuple("Refused").field(error).finish(),
        }
    }
}

/// Asks where a task is: see [`TaskStatus`].
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "TaskStatus")]
pub struct GetStatus(pub TaskId);

/// Where a task is, as far as the supervisor knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Waiting in the queue for a worker.
    Queued,
    /// Running on this worker slot.
    Running {
        /// The slot.
        worker: usize,
    },
    /// Between two attempts: waiting out the delay before the next one, or
    /// due and waiting for a worker.
    WaitingRetry {
        /// Attempts made so far.
        attempts: u32,
    },
    /// The supervisor does not hold it: it has its outcome already, was never
    /// accepted, or (for a moment after `try_submit`) is still on its way to
    /// the supervisor's mailbox.
    Unknown,
}

/// Cancels a task by its id: see [`TaskHandle::cancel`](crate::TaskHandle::cancel),
/// which sends this, and [`Cancellation`] for the answer.
///
/// Idempotent: a second cancel of the same task answers
/// [`Cancellation::Ended`].
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Cancellation")]
pub struct Cancel(pub TaskId);

/// What a cancel did. In the first three cases the task ends
/// [`Outcome::Cancelled`], with the task inside,
/// and the answer comes once it has: its handle is resolved (or its report
/// sent), and its worker, if it had one, has dropped the attempt and goes
/// on to its next task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cancellation {
    /// It waited in the queue for its first attempt, and will never run; its
    /// place in the queue is free.
    Queued,
    /// It waited for a retry after `attempts` attempts, and gets no other.
    WaitingRetry {
        /// Attempts made.
        attempts: u32,
    },
    /// It was running on `worker`: the attempt was cut off (its future
    /// dropped, and not polled again; one handed out but not yet begun never
    /// runs its code), or, if it ended as the cancel came, its retry is not
    /// made.
    ///
    /// A task that blocks its thread cannot be cut off until the thread
    /// comes back: this answer waits for that. If the attempt has a timeout,
    /// the supervisor gives up on it past its deadline (see
    /// [`PoolBuilder::stuck_grace`](crate::PoolBuilder::stuck_grace)): with no
    /// retry left the task ends `TimedOut` and the answer is [`Ended`](Self::Ended);
    /// with one, the retry is taken back and the answer is
    /// [`WaitingRetry`](Self::WaitingRetry), once the thread gives the task back.
    Running {
        /// The worker slot it ran on.
        worker: usize,
        /// Attempts made, the one cut off included (even cut off before
        /// its code began).
        attempts: u32,
    },
    /// It had ended already (or ended as the cancel came) and keeps the
    /// outcome it had: the cancel changed nothing.
    Ended,
    /// The pool never gave out this id.
    Unknown,
}

impl Cancellation {
    /// Whether the cancel took effect: the task ends
    /// [`Cancelled`](crate::Outcome::Cancelled).
    pub fn took_effect(&self) -> bool {
        matches!(
            self,
            Cancellation::Queued | Cancellation::WaitingRetry { .. } | Cancellation::Running { .. }
        )
    }
}

/// Changes the number of worker slots the pool keeps in service: see
/// [`Pool::resize`](crate::Pool::resize), which sends this.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "Result<Resized, ResizeError>")]
pub struct Resize(pub usize);

/// What a [`Resize`] did: the number of slots in service before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resized {
    /// Slots in service before.
    pub from: usize,
    /// Slots in service from now on.
    pub to: usize,
}

/// Stops the pool, the quit channel: every worker finishes the task in hand and
/// stops; every task still queued is handed back through its handle as
/// [`Outcome::NotRun`].
///
/// Answers once every worker is gone. Idempotent: a later `Stop` (or `Drain`)
/// gets the same report. The pool's
/// [`shutdown_timeout`](crate::PoolBuilder::shutdown_timeout), if it has one,
/// applies as it does to [`StopWithin`].
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "StopReport")]
pub struct Stop;

/// Drains the pool: accepts nothing new, runs every task already accepted, then
/// stops the workers. Answers once every worker is gone; idempotent.
///
/// A `Stop` sent during a drain turns it into a stop. The pool's
/// [`shutdown_timeout`](crate::PoolBuilder::shutdown_timeout), if it has one,
/// applies as it does to [`DrainWithin`].
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "StopReport")]
pub struct Drain;

/// [`Stop`], with a deadline: once it passes, every attempt still running is
/// cut off (its future dropped; a worker whose thread is blocked is given up
/// on), its task comes back as [`Outcome::Aborted`], and the answer comes at
/// once. The report says what finished, what was handed back and what was
/// aborted.
///
/// A deadline shorter than one already running wins; a longer one changes
/// nothing.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "StopReport")]
pub struct StopWithin(pub std::time::Duration);

/// [`Drain`], with a deadline: what has not run by then is handed back
/// ([`Outcome::NotRun`] with [`StopReason::Deadline`]), what is running is cut
/// off as in [`StopWithin`], and the answer comes at once. A drain's deadline
/// is how a service's shutdown fits its service manager's stop timeout.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "StopReport")]
pub struct DrainWithin(pub std::time::Duration);

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

/// How a pool stopped: the answer to [`Stop`] and [`Drain`] (and their
/// deadline forms).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopReport {
    /// Why the pool stopped.
    pub reason: StopReason,
    /// The tasks that ended while the pool stopped (completed, failed,
    /// panicked, timed out or cancelled after the stop or drain began).
    pub finished: Vec<TaskId>,
    /// The tasks this stop handed back unrun (queued ones first, in queue order,
    /// then those waiting for a retry). Each one went back through its handle as
    /// [`Outcome::NotRun`].
    pub not_run: Vec<TaskId>,
    /// The tasks whose attempt a shutdown's deadline cut off. Each one goes
    /// back through its handle as [`Outcome::Aborted`], once its worker lets
    /// go of it: at once for a worker that was waiting, when its thread
    /// returns for one that was blocked.
    pub aborted: Vec<TaskId>,
}
