//! A task's life record ([`Job`]) and the caller's end of it ([`TaskHandle`]).
//!
//! The job carries the task together with the channel its outcome goes to, and
//! travels with it: through the supervisor's mailbox and queue, to a worker and
//! back. Whoever drops a job without resolving it (a mailbox dropped when the
//! `System` stops, a worker's future cancelled with its arbiter) resolves it as
//! `NotRun` with the task, so no accepted task can vanish without an outcome.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix::Recipient;
use futures::channel::oneshot;

use crate::error::PoolGone;
use crate::messages::TaskReport;
use crate::outcome::{Outcome, StopReason};
use crate::task::{Task, TaskId};

pub(crate) struct Job<T: Task> {
    id: TaskId,
    attempts: u32,
    /// `Some` until the job is resolved: `Drop` needs to take it out.
    task: Option<T>,
    reply: Option<Reply<T>>,
}

/// Where a job's outcome goes: to a [`TaskHandle`], or as a [`TaskReport`]
/// message to an actor that asked for one.
enum Reply<T: Task> {
    Handle(oneshot::Sender<Outcome<T>>),
    Report(Recipient<TaskReport<T>>),
}

impl<T: Task> Reply<T> {
    fn send(self, id: TaskId, outcome: Outcome<T>) {
        match self {
            // A dropped handle means nobody wants the outcome; that is allowed.
            Reply::Handle(handle) => {
                let _ = handle.send(outcome);
            }
            Reply::Report(recipient) => recipient.do_send(TaskReport::Finished { id, outcome }),
        }
    }
}

impl<T: Task> Job<T> {
    /// A new job and the handle its outcome will reach.
    pub(crate) fn new(id: TaskId, task: T) -> (Self, TaskHandle<T>) {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            id,
            attempts: 0,
            task: Some(task),
            reply: Some(Reply::Handle(reply)),
        };
        (job, TaskHandle { id, rx })
    }

    /// A new job whose outcome goes to `report_to` as a [`TaskReport`].
    pub(crate) fn reporting(id: TaskId, task: T, report_to: Recipient<TaskReport<T>>) -> Self {
        Job {
            id,
            attempts: 0,
            task: Some(task),
            reply: Some(Reply::Report(report_to)),
        }
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The task's own retry policy, if it sets one. The supervisor asks this:
    /// a panic in it counts as no policy of its own, and never reaches the actor.
    pub(crate) fn retry_policy(&self) -> Option<crate::retry::RetryPolicy> {
        let task = self.task.as_ref()?;
        self.ask(|| task.retry_policy()).unwrap_or(None)
    }

    /// Whether the task calls `error` worth another attempt; a panic in it
    /// counts as no.
    pub(crate) fn is_retryable(&self, error: &T::Error) -> bool {
        self.task
            .as_ref()
            .is_some_and(|task| self.ask(|| task.is_retryable(error)).unwrap_or(false))
    }

    /// Runs a question to the task's own code, catching a panic in it.
    fn ask<R>(&self, question: impl FnOnce() -> R) -> Option<R> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(question)) {
            Ok(answer) => Some(answer),
            Err(payload) => {
                let message = crate::worker::panic_message(payload.as_ref());
                log::error!("{}: the task's own code panicked: {message}", self.id);
                None
            }
        }
    }

    /// Counts a new attempt and lends the task out for it.
    pub(crate) fn start_attempt(&mut self) -> (&mut T, u32) {
        self.attempts += 1;
        let task = self
            .task
            .as_mut()
            .expect("a job holds its task until it is resolved");
        (task, self.attempts)
    }

    /// Sends the outcome to the handle, if anyone still holds it.
    pub(crate) fn resolve(mut self, outcome: Outcome<T>) {
        self.task = None;
        if let Some(reply) = self.reply.take() {
            reply.send(self.id, outcome);
        }
    }

    /// Hands the task back unrun.
    pub(crate) fn hand_back(mut self, reason: StopReason) {
        if let Some(task) = self.task.take() {
            self.resolve(Outcome::NotRun { task, reason });
        }
    }
}

// A job is moved, never pinned in place: the task is only borrowed by the future
// of one attempt, which owns the job. The supervisor, an actor, must be `Unpin`,
// and it holds jobs.
impl<T: Task> Unpin for Job<T> {}

impl<T: Task> Drop for Job<T> {
    fn drop(&mut self) {
        if let (Some(task), Some(reply)) = (self.task.take(), self.reply.take()) {
            let reason = StopReason::Dropped;
            reply.send(self.id, Outcome::NotRun { task, reason });
        }
    }
}

/// Resolves to the [`Outcome`] of one accepted task.
///
/// Dropping the handle does not cancel the task: it still runs, and its outcome
/// is counted, only nobody receives it.
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
    rx: oneshot::Receiver<Outcome<T>>,
}

impl<T: Task> TaskHandle<T> {
    /// The id the pool gave this task.
    pub fn id(&self) -> TaskId {
        self.id
    }
}

impl<T: Task> Future for TaskHandle<T> {
    type Output = Result<Outcome<T>, PoolGone>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.map_err(|_| PoolGone))
    }
}

impl<T: Task> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle").field("id", &self.id).finish()
    }
}
