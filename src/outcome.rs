//! How a task ended: [`Outcome`], and why a pool stopped: [`StopReason`].

use std::fmt;
use std::time::Duration;

use crate::task::Task;

/// How an accepted task ended. Every accepted task ends in exactly one outcome.
pub enum Outcome<T: Task> {
    /// `run` returned `Ok`.
    Completed {
        /// What the task produced.
        output: T::Output,
        /// How many attempts it took, counting from 1.
        attempts: u32,
    },
    /// `run` returned `Err` on its last attempt.
    Failed {
        /// The error of the last attempt.
        error: T::Error,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The task's future panicked; the panic was caught on its worker.
    Panicked {
        /// The panic message (`&str` or `String` payloads; a placeholder otherwise).
        message: String,
        /// How many attempts were made, the panicking one included.
        attempts: u32,
    },
    /// An attempt ran past its timeout and was cancelled (its future dropped).
    TimedOut {
        /// How many attempts were made, the one that timed out included.
        attempts: u32,
    },
    /// A shutdown's deadline passed while an attempt ran (see
    /// [`Pool::stop_within`](crate::Pool::stop_within)): the attempt was cut
    /// off (its future dropped, or its blocked thread given up on) and the
    /// task comes back, so that it can be kept for later.
    Aborted {
        /// The task, as its last attempt left it.
        task: T,
        /// How many attempts were made, the one cut off included.
        attempts: u32,
    },
    /// The task was cancelled (see [`TaskHandle::cancel`](crate::TaskHandle::cancel)):
    /// taken out of the queue, or out of its wait for a retry, or its
    /// running attempt cut off (its future dropped). The task comes back.
    Cancelled {
        /// The task, as it was submitted or as its last attempt left it.
        task: T,
        /// How many attempts were made, one cut off by the cancel included.
        attempts: u32,
    },
    /// The queue was full and the pool's overflow policy is
    /// [`Overflow::DropOldest`](crate::Overflow::DropOldest): this task, the
    /// oldest waiting for its first attempt, made room for a newer one. It
    /// never ran; the task went to the pool's dead-letter sink
    /// ([`DeadReason::Evicted`](crate::DeadReason::Evicted)).
    Evicted,
    /// The pool stopped before the task ran to an end; the task comes back
    /// unrun (this time: a task handed back between two attempts has run before).
    NotRun {
        /// The task, as it was submitted (or as its last attempt left it).
        task: T,
        /// Why the pool let go of it.
        reason: StopReason,
        /// How many attempts were made before the pool let go of it: 0 for a
        /// task that never ran, more for one handed back while it waited for
        /// a retry.
        attempts: u32,
    },
}

/// The kind of an [`Outcome`], without what it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// See [`Outcome::Completed`].
    Completed,
    /// See [`Outcome::Failed`].
    Failed,
    /// See [`Outcome::Panicked`].
    Panicked,
    /// See [`Outcome::TimedOut`].
    TimedOut,
    /// See [`Outcome::Aborted`].
    Aborted,
    /// See [`Outcome::Cancelled`].
    Cancelled,
    /// See [`Outcome::Evicted`].
    Evicted,
    /// See [`Outcome::NotRun`].
    NotRun,
}

impl<T: Task> Outcome<T> {
    /// The kind of this outcome.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Completed { .. } => OutcomeKind::Completed,
            Outcome::Failed { .. } => OutcomeKind::Failed,
            Outcome::Panicked { .. } => OutcomeKind::Panicked,
            Outcome::TimedOut { .. } => OutcomeKind::TimedOut,
            Outcome::Aborted { .. } => OutcomeKind::Aborted,
            Outcome::Cancelled { .. } => OutcomeKind::Cancelled,
            Outcome::Evicted => OutcomeKind::Evicted,
            Outcome::NotRun { .. } => OutcomeKind::NotRun,
        }
    }

    /// How many attempts were made (for `NotRun`, before the task was
    /// handed back; none for `Evicted`).
    pub fn attempts(&self) -> u32 {
        match self {
            Outcome::Evicted => 0,
            Outcome::Completed { attempts, .. }
            | Outcome::Failed { attempts, .. }
            | Outcome::Panicked { attempts, .. }
            | Outcome::TimedOut { attempts }
            | Outcome::Aborted { attempts, .. }
            | Outcome::Cancelled { attempts, .. }
            | Outcome::NotRun { attempts, .. } => *attempts,
        }
    }

    /// The output of a completed task, or `None`.
    pub fn output(self) -> Option<T::Output> {
        match self {
            Outcome::Completed { output, .. } => Some(output),
            _ => None,
        }
    }

    /// The task of a `NotRun`, `Aborted` or `Cancelled` outcome (the ones
    /// that hand the task back), or `None`.
    pub fn into_task(self) -> Option<T> {
        match self {
            Outcome::NotRun { task, .. }
            | Outcome::Aborted { task, .. }
            | Outcome::Cancelled { task, .. } => Some(task),
            _ => None,
        }
    }
}

// Written by hand so that neither the task nor its output needs `Debug`.
impl<T: Task> fmt::Debug for Outcome<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed { attempts, .. } => f
                .debug_struct("Completed")
                .field("attempts", attempts)
                .finish_non_exhaustive(),
            Outcome::Failed { error, attempts } => f
                .debug_struct("Failed")
                .field("error", error)
                .field("attempts", attempts)
                .finish(),
            Outcome::Panicked { message, attempts } => f
                .debug_struct("Panicked")
                .field("message", message)
                .field("attempts", attempts)
                .finish(),
            Outcome::TimedOut { attempts } => f
                .debug_struct("TimedOut")
                .field("attempts", attempts)
                .finish(),
            Outcome::Aborted { attempts, .. } => f
                .debug_struct("Aborted")
                .field("attempts", attempts)
                .finish_non_exhaustive(),
            Outcome::Cancelled { attempts, .. } => f
                .debug_struct("Cancelled")
                .field("attempts", attempts)
                .finish_non_exhaustive(),
            Outcome::Evicted => f.write_str("Evicted"),
            Outcome::NotRun {
                reason, attempts, ..
            } => f
                .debug_struct("NotRun")
                .field("reason", reason)
                .field("attempts", attempts)
                .finish_non_exhaustive(),
        }
    }
}

/// Why a pool stopped, or let go of a task without running it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A [`Stop`](crate::Stop) request: queued tasks were handed back.
    Stopped,
    /// A [`Drain`](crate::Drain) request, or the last [`Pool`](crate::Pool)
    /// handle was dropped: every queued task ran first.
    Drained,
    /// More workers had to be restarted within the window than the restart
    /// limit allows (see [`PoolBuilder::restart_limit`](crate::PoolBuilder::restart_limit)):
    /// the supervisor gave up.
    RestartLimit {
        /// The limit that was passed.
        restarts: u32,
        /// The window it counts within.
        within: Duration,
    },
    /// The actor holding the task was dropped before it could finish: the actix
    /// `System` stopped, or the arbiter of the worker running the task did. A task
    /// handed back for this reason may have started running.
    Dropped,
    /// A shutdown's deadline passed (see
    /// [`Pool::drain_within`](crate::Pool::drain_within)) before the task's
    /// turn came: it was handed back unrun.
    Deadline {
        /// The deadline the shutdown was given.
        within: Duration,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Stopped => "stopped on request",
            StopReason::Drained => "drained",
            StopReason::RestartLimit { restarts, within } => {
                return write!(
                    f,
                    "gave up: more than {restarts} worker restarts within {within:?}"
                );
            }
            StopReason::Dropped => "the actor holding it was dropped",
            StopReason::Deadline { within } => {
                return write!(f, "the shutdown's deadline of {within:?} passed");
            }
        })
    }
}
