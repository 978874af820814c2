//! A task's life record ([`Job`]) and the caller's end of it ([`TaskHandle`]).
//!
//! The job owns the task's cell (see [`cell`]), which holds the task and, once
//! the task has ended, its outcome for the handle. The job travels with the
//! task: through the supervisor's inbox and queue, to a worker and back.
//! Whoever drops a job without resolving it (an inbox dropped when the
//! `System` stops, a worker's future cancelled with its arbiter) resolves it as
//! `NotRun` with the task, so no accepted task can vanish without an outcome.

#[allow(unsafe_code)]
mod cell;
mod route;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix::Recipient;

use crate::contain::{contain, drop_contained};
use crate::error::PoolGone;
use crate::gate::Permit;
use crate::latency::{Tick, Timing};
use crate::messages::{Cancel, Cancellation, TaskReport};
use crate::outcome::{Outcome, StopReason};
use crate::supervisor::Turn;
use crate::task::{Task, TaskId, TaskKey};

pub(crate) use route::{OpenRoute, Route};

/// The longest timeout an attempt can have: about a hundred years.
pub(crate) const LONGEST_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) struct Job<T: Task> {
    id: TaskId,
    attempts: u32,
    /// Attempts that crashed their worker (panicked), saturating: a `u16`
    /// keeps the job the size it was.
    crashes: u16,
    /// The supervisor holds a [`Resolver`] for the cell (an attempt with a
    /// deadline), and may end the task through it.
    watched: bool,
    /// The task's place in the queue, until it is booked as running; a retry
    /// waits without one.
    permit: Option<Permit>,
    /// The task, then its outcome; `None` once resolved.
    cell: Option<cell::Writer<T>>,
    /// What few jobs have, behind one pointer: every job travels through
    /// the inbox's slots.
    extras: Option<Box<Extras<T>>>,
    /// When it was accepted, then how long it waited for its first attempt.
    timing: Timing,
}

/// What few jobs have.
struct Extras<T: Task> {
    /// Where the outcome goes instead of the cell, for an actor that asked
    /// for a [`TaskReport`].
    report_to: Option<Recipient<TaskReport<T>>>,
    /// The task's key, asked once, as it was accepted.
    key: Option<TaskKey>,
    /// The key's turn, once the task has it: it ends, and the next task
    /// with the key may go, when the job does, however it ends.
    turn: Option<Turn>,
}

/// Asks the task for its key, once, containing a panic in it.
fn key_of<T: Task>(task: &T) -> Option<TaskKey> {
    contain("Task::key (the task runs without a key)", || task.key()).flatten()
}

/// The extras of a new job, if it has any.
fn extras<T: Task>(
    task: &T,
    report_to: Option<Recipient<TaskReport<T>>>,
) -> Option<Box<Extras<T>>> {
    let key = key_of(task);
    (key.is_some() || report_to.is_some()).then(|| {
        Box::new(Extras {
            report_to,
            key,
            turn: None,
        })
    })
}

impl<T: Task> Job<T> {
    /// A new job, holding the place it was admitted with, and the handle its
    /// outcome will reach; `timing` holds the clock's reading at admission,
    /// `route` leads to the pool's supervisor.
    #[inline]
    pub(crate) fn new(
        id: TaskId,
        permit: Permit,
        task: T,
        timing: Timing,
        route: Route,
    ) -> (Self, TaskHandle<T>) {
        let extras = extras(&task, None);
        let (writer, reader) = cell::new(task);
        let job = Job {
            id,
            attempts: 0,
            crashes: 0,
            watched: false,
            permit: Some(permit),
            cell: Some(writer),
            extras,
            timing,
        };
        (job, TaskHandle { id, reader, route })
    }

    /// A new job whose outcome goes to `report_to` as a [`TaskReport`].
    pub(crate) fn reporting(
        id: TaskId,
        permit: Permit,
        task: T,
        report_to: Recipient<TaskReport<T>>,
        timing: Timing,
    ) -> Self {
        let extras = extras(&task, Some(report_to));
        let (writer, _) = cell::new(task);
        Job {
            id,
            attempts: 0,
            crashes: 0,
            watched: false,
            permit: Some(permit),
            cell: Some(writer),
            extras,
            timing,
        }
    }

    /// The task's key, if it has one.
    #[inline]
    pub(crate) fn key(&self) -> Option<TaskKey> {
        self.extras.as_ref().and_then(|extras| extras.key)
    }

    /// The task has its key's turn now, until the job ends.
    pub(crate) fn take_turn(&mut self, turn: Turn) {
        if let Some(extras) = &mut self.extras {
            extras.turn = Some(turn);
        }
    }

    /// Takes the job's place in the queue out of it, to be dropped (giving
    /// the place back) once the job is booked as running.
    pub(crate) fn take_permit(&mut self) -> Option<Permit> {
        self.permit.take()
    }

    /// A hold on the task's cell for the supervisor, for an attempt with a
    /// deadline: see [`Resolver`]. `None` once the job is resolved.
    pub(crate) fn resolver(&mut self) -> Option<Resolver<T>> {
        let cell = self.cell.as_ref()?.resolver();
        self.watched = true;
        let report_to = self
            .extras
            .as_ref()
            .and_then(|extras| extras.report_to.as_ref())
            .map(|recipient| (self.id, recipient.clone()));
        Some(Resolver { cell, report_to })
    }

    /// Whether the job holds a place in the queue: it waits for its first
    /// attempt, not for a retry.
    pub(crate) fn holds_place(&self) -> bool {
        self.permit.is_some()
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Counts an attempt that crashed its worker; returns how many have.
    pub(crate) fn crashed(&mut self) -> u32 {
        self.crashes = self.crashes.saturating_add(1);
        u32::from(self.crashes)
    }

    /// The task's wait for its first attempt, in clock ticks, the first
    /// time this is asked after that attempt started (see
    /// [`Timing::take_wait`]).
    #[inline]
    pub(crate) fn take_wait(&mut self) -> Option<u64> {
        self.timing.take_wait()
    }

    /// Notes that an attempt started at `started`, by the worker's clock.
    #[inline]
    pub(crate) fn started_at(&mut self, started: Tick) {
        self.timing.started(started);
    }

    fn task(&self) -> Option<&T> {
        self.cell.as_ref().and_then(cell::Writer::task)
    }

    /// The task's own retry policy, if it sets one. The supervisor asks this:
    /// a panic in it counts as no policy of its own, and never reaches the actor.
    pub(crate) fn retry_policy(&self) -> Option<crate::retry::RetryPolicy> {
        let task = self.task()?;
        self.ask(|| task.retry_policy()).unwrap_or(None)
    }

    /// Whether the task calls `error` worth another attempt; a panic in it
    /// counts as no.
    pub(crate) fn is_retryable(&self, error: &T::Error) -> bool {
        self.task()
            .is_some_and(|task| self.ask(|| task.is_retryable(error)).unwrap_or(false))
    }

    /// Runs a question to the task's own code, catching a panic in it.
    fn ask<R>(&self, question: impl FnOnce() -> R) -> Option<R> {
        contain("a task's own method", question)
    }

    /// How long the next attempt may run: the task's own timeout, or else
    /// the pool's. `Err` with the message if `Task::timeout` panics.
    ///
    /// A timeout longer than [`LONGEST_TIMEOUT`] is none: a deadline that far
    /// off could not be added to a clock reading, and the worker and the
    /// supervisor must agree on which attempts have one.
    pub(crate) fn timeout(
        &self,
        pool_timeout: Option<std::time::Duration>,
    ) -> Result<Option<std::time::Duration>, String> {
        let Some(task) = self.task() else {
            return Ok(None);
        };
        let timeout = crate::contain::catch(|| task.timeout())?.or(pool_timeout);
        Ok(timeout.filter(|timeout| *timeout <= LONGEST_TIMEOUT))
    }

    /// Counts a new attempt and lends the task out for it.
    pub(crate) fn start_attempt(&mut self) -> (&mut T, u32) {
        self.attempts += 1;
        let task = self
            .cell
            .as_mut()
            .and_then(cell::Writer::task_mut)
            .expect("a job holds its task until it is resolved");
        (task, self.attempts)
    }

    /// Sends the outcome to the handle, if anyone still holds it, or to the
    /// actor that asked for a report.
    #[inline]
    pub(crate) fn resolve(mut self, outcome: Outcome<T>) {
        self.send(outcome);
    }

    /// Sends the outcome, as [`resolve`](Self::resolve) does, and gives the
    /// task back rather than drop it: for the dead-letter sink.
    pub(crate) fn resolve_keeping_task(mut self, outcome: Outcome<T>) -> Option<T> {
        let task = self.take_task();
        self.send(outcome);
        task
    }

    /// The task, out of a job whose outcome was given without it (timed
    /// out while its worker's thread was blocked): for the dead-letter sink.
    pub(crate) fn into_task(mut self) -> Option<T> {
        self.take_task()
    }

    /// Every outcome leaves through here, so that a panicking `Drop` of the
    /// user's values (the task, once it has run; an outcome nobody waits for)
    /// is contained, and comes only after the outcome is on its way.
    fn send(&mut self, outcome: Outcome<T>) {
        let Some(mut cell) = self.cell.take() else {
            return;
        };
        match self
            .extras
            .as_mut()
            .and_then(|extras| extras.report_to.take())
        {
            // A dropped handle means nobody wants the outcome; that is
            // allowed. `resolve` drops what it must (the task, once it has
            // run; an outcome nobody waits for), contained, after the
            // outcome is out of the way.
            None => cell.resolve(outcome, self.watched),
            // An actor that has stopped drops the report, and the outcome in it.
            Some(recipient) => {
                let task = cell.take_task();
                let id = self.id;
                // Watched, the supervisor may have ended it (timed out) first.
                if cell.claim() {
                    contain("Drop of an undelivered outcome", move || {
                        recipient.do_send(TaskReport::Finished { id, outcome });
                    });
                } else {
                    drop_contained("Drop of an outcome too late to report", outcome);
                }
                drop_contained("Drop of a task", task);
            }
        }
    }

    /// Takes the task out, to hand it back unrun.
    fn take_task(&mut self) -> Option<T> {
        self.cell.as_mut().and_then(cell::Writer::take_task)
    }

    /// Hands the task back as cut off by a shutdown's deadline.
    pub(crate) fn abort(mut self) {
        if let Some(task) = self.take_task() {
            let attempts = self.attempts;
            self.send(Outcome::Aborted { task, attempts });
        }
    }

    /// Hands the task back as cancelled.
    pub(crate) fn cancel(mut self) {
        if let Some(task) = self.take_task() {
            let attempts = self.attempts;
            self.send(Outcome::Cancelled { task, attempts });
        }
    }

    /// Hands the task back unrun (this time: it may have been tried before).
    pub(crate) fn hand_back(mut self, reason: StopReason) {
        self.give_back(reason);
    }

    fn give_back(&mut self, reason: StopReason) {
        if let Some(task) = self.take_task() {
            let attempts = self.attempts;
            self.send(Outcome::NotRun {
                task,
                reason,
                attempts,
            });
        }
    }
}

impl<T: Task> Drop for Job<T> {
    fn drop(&mut self) {
        self.give_back(StopReason::Dropped);
    }
}

/// Resolves to the [`Outcome`] of one accepted task.
///
/// Dropping the handle does not cancel the task: it still runs, and its outcome
/// is counted, only nobody receives it. [`cancel`](Self::cancel) does.
///
/// # Errors
///
/// [`PoolGone`] only if the task's record vanished without a trace, which the pool
/// never does by itself: even when the actix `System` stops, a task that was not
/// finished comes back as [`Outcome::NotRun`] with [`StopReason::Dropped`].
///
/// # Cancel safety
///
/// Awaiting the handle is cancel safe: drop the future and the outcome is simply
/// not received.
///
/// # Examples
///
/// ```
/// use actix_workerpool::{FnTask, Outcome, Pool};
///
/// # actix_rt::System::new().block_on(async {
/// let pool = Pool::builder().workers(1).build().unwrap();
/// let handle = pool
///     .submit(FnTask::new("x", |_| async { Err::<(), _>("no luck") }))
///     .await
///     .unwrap();
/// let id = handle.id(); // known at once, for logs or a status page
/// match handle.await.unwrap() {
///     Outcome::Failed { error, attempts } => assert_eq!((error, attempts), ("no luck", 1)),
///     other => panic!("{id}: {other:?}"),
/// }
/// # });
/// ```
pub struct TaskHandle<T: Task> {
    id: TaskId,
    reader: cell::Reader<T>,
    route: Route,
}

impl<T: Task> TaskHandle<T> {
    /// The id the pool gave this task.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Cancels the task, wherever it is, and says what that did (see
    /// [`Cancellation`]): a task waiting in the queue or for a retry is
    /// taken out; a running one has its attempt cut off, its future dropped,
    /// and its worker goes on to the next task at once. Either way the task
    /// ends [`Outcome::Cancelled`], with the task inside, which this handle
    /// then resolves to. A task that has ended already keeps its outcome
    /// ([`Cancellation::Ended`]). Idempotent.
    ///
    /// The handle can still be awaited after this, or while it waits: poll
    /// it by reference, `(&mut handle).await`.
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the pool's supervisor is gone (its `System` stopped)
    /// while the task had no outcome yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use actix_workerpool::{Cancellation, FnTask, Outcome, Pool};
    ///
    /// # actix_rt::System::new().block_on(async {
    /// let pool = Pool::builder().workers(1).build().unwrap();
    /// let wait = |secs: u64| {
    ///     FnTask::new(secs, |secs| async move {
    ///         actix_rt::time::sleep(Duration::from_secs(secs)).await;
    ///         Ok::<_, ()>(secs)
    ///     })
    /// };
    /// let _busy = pool.submit(wait(3600)).await.unwrap();
    /// let queued = pool.submit(wait(1)).await.unwrap();
    ///
    /// assert_eq!(queued.cancel().await.unwrap(), Cancellation::Queued);
    /// match queued.await.unwrap() {
    ///     Outcome::Cancelled { task, attempts: 0 } => assert_eq!(*task.data(), 1),
    ///     other => panic!("{other:?}"),
    /// }
    /// # });
    /// ```
    pub async fn cancel(&self) -> Result<Cancellation, PoolGone> {
        if self.reader.has_ended() {
            return Ok(Cancellation::Ended);
        }
        let supervisor = self.route.supervisor().ok_or(PoolGone)?;
        supervisor.send(Cancel(self.id)).await.map_err(|_| PoolGone)
    }
}

impl<T: Task> Future for TaskHandle<T> {
    type Output = Result<Outcome<T>, PoolGone>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.reader.poll(cx).map(|r| r.map_err(|_| PoolGone))
    }
}

impl<T: Task> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle").field("id", &self.id).finish()
    }
}

/// The supervisor's hold on a task whose attempt has a deadline: if the
/// task's worker is stuck past it, the supervisor ends the task as timed out
/// through this, without the task itself (which the blocked thread still
/// holds), so that whoever waits for the outcome is not held up by that
/// thread: its handle, or the actor it reports to.
pub(crate) struct Resolver<T: Task> {
    cell: cell::Resolver<T>,
    report_to: Option<(TaskId, Recipient<TaskReport<T>>)>,
}

impl<T: Task> Resolver<T> {
    /// Ends the task as [`Outcome::TimedOut`] after `attempts`, unless it has
    /// an outcome already; says whether this one did.
    pub(crate) fn time_out(&self, attempts: u32) -> bool {
        if !self.cell.time_out(attempts) {
            return false;
        }
        if let Some((id, recipient)) = &self.report_to {
            let outcome = Outcome::TimedOut { attempts };
            contain("Drop of an undelivered outcome", || {
                recipient.do_send(TaskReport::Finished { id: *id, outcome });
            });
        }
        true
    }
}
