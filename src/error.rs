//! Error types. Every refusal of a task carries the task back.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// [`Pool::try_submit`](crate::Pool::try_submit) refused the task; it comes back inside.
#[derive(Error)]
pub enum TrySubmitError<T> {
    /// The queue holds as many tasks as its capacity allows.
    #[error("the pool's queue is full")]
    Full(T),
    /// The pool is stopping or stopped.
    #[error("the pool is stopped or stopping")]
    Stopped(T),
}

impl<T> TrySubmitError<T> {
    /// The task that was refused.
    pub fn into_inner(self) -> T {
        match self {
            TrySubmitError::Full(task) | TrySubmitError::Stopped(task) => task,
        }
    }
}

// Written by hand so that the task need not be `Debug`.
impl<T> fmt::Debug for TrySubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::Stopped(_) => f.write_str("Stopped(..)"),
        }
    }
}

/// [`Pool::submit`](crate::Pool::submit) refused the task; it comes back
/// inside.
#[derive(Error)]
pub enum SubmitError<T> {
    /// The queue was full, and the pool's overflow policy is
    /// [`Overflow::Reject`](crate::Overflow::Reject): `submit` does not wait.
    #[error("the pool's queue is full")]
    Full(T),
    /// The pool is stopping or stopped.
    #[error("the pool is stopped or stopping")]
    Stopped(T),
}

impl<T> SubmitError<T> {
    /// The task that was refused.
    pub fn into_inner(self) -> T {
        match self {
            SubmitError::Full(task) | SubmitError::Stopped(task) => task,
        }
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubmitError::Full(_) => "Full(..)",
            SubmitError::Stopped(_) => "Stopped(..)",
        })
    }
}

/// [`Pool::submit_timeout`](crate::Pool::submit_timeout) refused the task;
/// it comes back inside.
#[derive(Error)]
pub enum SubmitTimeoutError<T> {
    /// The queue stayed full until the deadline (or, in a pool whose
    /// overflow policy is [`Overflow::Reject`](crate::Overflow::Reject), was
    /// full: nothing waits there).
    #[error("the pool's queue stayed full until the deadline")]
    Timeout(T),
    /// The pool is stopping or stopped (or began to stop while the task
    /// waited for room).
    #[error("the pool is stopped or stopping")]
    Stopped(T),
}

impl<T> SubmitTimeoutError<T> {
    /// The task that was refused.
    pub fn into_inner(self) -> T {
        match self {
            SubmitTimeoutError::Timeout(task) | SubmitTimeoutError::Stopped(task) => task,
        }
    }
}

impl<T> fmt::Debug for SubmitTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SubmitTimeoutError::Stopped(_) => f.write_str("Stopped(..)"),
        }
    }
}

/// A pool setting that [`PoolBuilder::build`](crate::PoolBuilder::build) refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `workers(0)`: a pool needs at least one worker.
    #[error("a pool needs at least one worker")]
    ZeroWorkers,
    /// `workers(n)` with `n` above [`MAX_WORKERS`](crate::MAX_WORKERS).
    #[error("a pool keeps at most {max} workers")]
    TooManyWorkers {
        /// The most a pool keeps.
        max: usize,
    },
    /// `queue_capacity(0)`: the queue must hold at least one task.
    #[error("the queue capacity must be at least 1")]
    ZeroCapacity,
    /// `task_timeout(Duration::ZERO)`: every attempt would time out before it began.
    #[error("the task timeout must be longer than zero")]
    ZeroTimeout,
    /// `restart_limit(_, Duration::ZERO)`: restarts could never be counted
    /// together, so the limit would never apply.
    #[error("the restart window must be longer than zero")]
    ZeroRestartWindow,
    /// `restart_backoff(base, max)` with `base > max`.
    #[error("the restart backoff's base ({base:?}) is longer than its maximum ({max:?})")]
    RestartBackoff {
        /// The delay before a slot's first restart.
        base: Duration,
        /// The cap on the delay.
        max: Duration,
    },
    /// `stuck_grace(Duration::ZERO)`: a worker would count as stuck the
    /// moment its deadline passed, before its own timer could end the attempt.
    #[error("the grace before a worker counts as stuck must be longer than zero")]
    ZeroStuckGrace,
    /// `shutdown_timeout(Duration::ZERO)`: every stop would cut off every
    /// task at once; use `stop` with no deadline, or a short one.
    #[error("the shutdown timeout must be longer than zero")]
    ZeroShutdownTimeout,
    /// `name("")`: a name tells pools apart in logs, spans and metrics; an
    /// empty one would not.
    #[error("a pool's name must not be empty")]
    EmptyName,
    /// `quarantine_after(0)`: a task would be quarantined before it had
    /// crashed anything.
    #[error("a task can be quarantined only after at least one crash")]
    ZeroQuarantine,
    /// `overflow(Overflow::DropOldest)` without a dead-letter sink: the
    /// tasks it evicts would be lost.
    #[error("a pool that evicts queued tasks (Overflow::DropOldest) needs a dead-letter sink")]
    EvictionWithoutDeadLetters,
    /// `arbiters(0)`: workers need at least one arbiter to run on.
    #[error("a pool placed on dedicated arbiters needs at least one")]
    ZeroArbiters,
    /// `arbiters(n)` with `n` above [`MAX_WORKERS`](crate::MAX_WORKERS):
    /// each is a thread, and more than one per worker the pool can ever
    /// have would never run anything.
    #[error("a pool runs on at most {max} dedicated arbiters")]
    TooManyArbiters {
        /// The most dedicated arbiters a pool runs on.
        max: usize,
    },
    /// `build` was called outside a running actix `System`, so there is no
    /// arbiter to start the pool's actors on.
    #[error("no actix arbiter is running on this thread; build the pool inside a System")]
    NoArbiter,
    /// The arbiter given to [`PoolBuilder::arbiter`](crate::PoolBuilder::arbiter)
    /// has stopped: nothing would ever run the pool.
    #[error("the arbiter the pool was to start on has stopped")]
    ArbiterStopped,
}

/// [`Pool::resize`](crate::Pool::resize) refused the new size; the pool
/// keeps the one it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResizeError {
    /// A pool needs at least one worker.
    #[error("a pool needs at least one worker")]
    ZeroWorkers,
    /// More than [`MAX_WORKERS`](crate::MAX_WORKERS).
    #[error("a pool keeps at most {max} workers")]
    TooManyWorkers {
        /// The most a pool keeps.
        max: usize,
    },
    /// The pool is draining, stopping or stopped: its workers are on
    /// their way out.
    #[error("the pool is draining, stopping or stopped")]
    Stopped,
    /// The supervisor is gone (its `System` stopped).
    #[error(transparent)]
    PoolGone(#[from] PoolGone),
}

/// The pool's actors are gone (their `System` or arbiter stopped) and can no
/// longer answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the pool's actors are gone")]
pub struct PoolGone;
