//! The dead-letter sink: where a task that ended without success goes, with
//! its value, so that an application can keep it (a table of failed jobs, a
//! queue for a person to look at) rather than lose it.
//!
//! The handle (or the actor that asked for a report) still gets the task's
//! outcome; the sink gets the task itself, which no outcome of a failure
//! carries. The supervisor sends each letter as the task ends: to an actor
//! with `do_send`, which never waits (a stopped actor's mailbox drops the
//! letter, and the task in it, contained), or to a closure, called on the
//! supervisor's thread, contained, which must not block.

use std::fmt;
use std::sync::Arc;

use actix::{Message, Recipient};

use crate::contain::contain;
use crate::task::{Task, TaskId};

/// A task that ended without success, sent to the pool's dead-letter sink
/// (see [`PoolBuilder::dead_letters`](crate::PoolBuilder::dead_letters)).
#[derive(Message)]
#[rtype(result = "()")]
#[non_exhaustive]
pub struct DeadLetter<T: Task> {
    /// The task's id.
    pub id: TaskId,
    /// The task, as its last attempt left it.
    pub task: T,
    /// Attempts made.
    pub attempts: u32,
    /// Why it ended.
    pub reason: DeadReason,
}

// Written by hand so that the task need not be `Debug`.
impl<T: Task> fmt::Debug for DeadLetter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

/// Why a task became a [`DeadLetter`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadReason {
    /// Its last attempt failed ([`Outcome::Failed`](crate::Outcome::Failed)).
    Failed {
        /// The error, as its `Debug` writes it (the error itself goes to the
        /// handle).
        error: String,
    },
    /// Its last attempt panicked ([`Outcome::Panicked`](crate::Outcome::Panicked)).
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// Its last attempt ran past its timeout ([`Outcome::TimedOut`](crate::Outcome::TimedOut)).
    TimedOut,
    /// It crashed its worker `crashes` times, and was not run again (see
    /// [`PoolBuilder::quarantine_after`](crate::PoolBuilder::quarantine_after));
    /// it ended [`Outcome::Panicked`](crate::Outcome::Panicked).
    Quarantined {
        /// How many of its attempts crashed.
        crashes: u32,
        /// The last panic's message.
        message: String,
    },
    /// It waited for its first attempt in a full queue and made room for a
    /// newer task ([`Outcome::Evicted`](crate::Outcome::Evicted), under
    /// [`Overflow::DropOldest`](crate::Overflow::DropOldest)); it never ran.
    Evicted,
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadReason::Failed { error } => write!(f, "failed: {error}"),
            DeadReason::Panicked { message } => write!(f, "panicked: {message}"),
            DeadReason::TimedOut => f.write_str("timed out"),
            DeadReason::Evicted => f.write_str("evicted from a full queue"),
            DeadReason::Quarantined { crashes, message } => {
                write!(f, "quarantined after {crashes} crashes: {message}")
            }
        }
    }
}

/// Where a pool's dead letters go.
pub(crate) enum Sink<T: Task> {
    Actor(Recipient<DeadLetter<T>>),
    Call(Arc<dyn Fn(DeadLetter<T>) + Send + Sync>),
}

impl<T: Task> Sink<T> {
    /// Sends `letter` on, never waiting; a panic (in the closure, or in the
    /// `Drop` of a letter a stopped actor's mailbox refuses) is contained.
    pub(crate) fn send(&self, letter: DeadLetter<T>) {
        match self {
            Sink::Actor(recipient) => {
                contain("Drop of a dead letter nobody took", || {
                    recipient.do_send(letter);
                });
            }
            Sink::Call(call) => {
                contain("the dead-letter closure", || call(letter));
            }
        }
    }
}
