//! The [`Stats`] snapshot and the [`PoolEvent`]s that subscribers receive.

use actix::Message;

use crate::latency::Latency;
use crate::outcome::StopReason;
use crate::task::TaskId;

/// A snapshot of a pool's counters, taken by the supervisor between two messages.
///
/// Every snapshot balances: `submitted == completed + failed + panicked +
/// timed_out + aborted + cancelled + evicted + not_run + queued + in_flight +
/// waiting_retry` (see
/// [`Stats::balances`]), `queued <= queue_capacity` and `in_flight <=
/// workers.len()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks the supervisor has taken on.
    pub submitted: u64,
    /// Tasks that ended [`Completed`](crate::Outcome::Completed).
    pub completed: u64,
    /// Tasks that ended [`Failed`](crate::Outcome::Failed).
    pub failed: u64,
    /// Tasks that ended [`Panicked`](crate::Outcome::Panicked).
    pub panicked: u64,
    /// Tasks that ended [`TimedOut`](crate::Outcome::TimedOut).
    pub timed_out: u64,
    /// Tasks handed back [`NotRun`](crate::Outcome::NotRun).
    pub not_run: u64,
    /// Tasks whose attempt a shutdown's deadline cut off
    /// ([`Aborted`](crate::Outcome::Aborted)).
    pub aborted: u64,
    /// Tasks cancelled ([`Cancelled`](crate::Outcome::Cancelled)).
    pub cancelled: u64,
    /// Tasks evicted from a full queue to make room for newer ones
    /// ([`Evicted`](crate::Outcome::Evicted)).
    pub evicted: u64,
    /// Tasks waiting in the queue for a worker for their first attempt: never
    /// more than the queue's capacity.
    pub queued: usize,
    /// Tasks running on a worker: never more than the slots listed in
    /// [`workers`](Self::workers). (After a shrink, retired workers finish
    /// the task in hand, so for a while this may exceed [`size`](Self::size).)
    pub in_flight: usize,
    /// Tasks between two attempts: waiting out the delay before the next, or
    /// due and waiting for a worker. They hold no place in the queue.
    pub waiting_retry: usize,
    /// Retries scheduled, all tasks together.
    pub retries: u64,
    /// Tasks handed to the dead-letter sink (see
    /// [`PoolBuilder::dead_letters`](crate::PoolBuilder::dead_letters)):
    /// among those that failed, panicked or timed out. Handed
    /// over, not necessarily kept: a stopped sink drops what it is sent.
    pub dead_letters: u64,
    /// Tasks quarantined after crashing too many workers (see
    /// [`PoolBuilder::quarantine_after`](crate::PoolBuilder::quarantine_after)):
    /// among those that panicked.
    pub quarantined: u64,
    /// Worker restarts, all slots together (stuck workers replaced included).
    pub restarts: u64,
    /// Workers found stuck past an attempt's deadline, and replaced (see
    /// [`PoolEvent::WorkerStuck`]).
    pub stuck: u64,
    /// How long tasks waited for their first attempt: from the moment the
    /// pool accepted them (after any wait of `submit` for room in the queue)
    /// to the moment a worker started them. A task counts once, with the
    /// report of its first attempt (or, if the supervisor gave up on that
    /// one's worker as stuck, of its retry); a task whose only attempt was
    /// cut off or given up on does not count. Empty when the pool does not
    /// time its tasks ([`PoolBuilder::latency`](crate::PoolBuilder::latency)).
    ///
    /// Since the pool started (a window of recent tasks is what the
    /// `metrics` feature's histograms are for). Measured in real time, on a
    /// clock that keeps running under tokio's paused time.
    pub waited: Latency,
    /// How long attempts ran, as their workers timed them: one entry per
    /// attempt that a worker reported, whatever its end (an attempt cut
    /// off, or given up on as stuck, is not reported). Since the pool
    /// started, and empty when it does not time its tasks, like
    /// [`waited`](Self::waited).
    pub ran: Latency,
    /// The worker slots the pool keeps in service: the builder's
    /// [`workers`](crate::PoolBuilder::workers), or the last
    /// [`resize`](crate::Pool::resize).
    pub size: usize,
    /// One entry per worker slot, in slot order: the slots in service, and
    /// those retired by a [`resize`](crate::Pool::resize) that are still
    /// quitting or lie between slots in service (retired slots past the
    /// last of those are left out).
    pub workers: Vec<WorkerStats>,
}

/// One worker slot's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Task attempts this slot has run to an end.
    pub tasks_run: u64,
    /// How many times this slot's worker was replaced.
    pub restarts: u64,
    /// How many of those replaced a worker stuck past a deadline.
    pub stuck: u64,
    /// What the slot does now.
    pub state: WorkerState,
}

/// What a worker slot does at the moment of a [`Stats`] snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerState {
    /// Its worker is making its state, and takes tasks once it has.
    Starting,
    /// Its worker waits for a task.
    Idle,
    /// Its worker runs this task.
    Busy {
        /// The task.
        task: TaskId,
    },
    /// Waiting out the restart backoff: a fresh worker starts after it.
    Restarting,
    /// Its worker was told to quit, and finishes this task first, if any.
    Quitting {
        /// The task it finishes.
        task: Option<TaskId>,
    },
    /// No worker, and none coming: the pool is stopping (the slot's worker
    /// has quit) or has stopped.
    #[default]
    Stopped,
    /// Out of service: a [`resize`](crate::Pool::resize) retired the slot,
    /// and its worker has quit. A later resize may bring it back.
    Retired,
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerState::Starting => f.write_str("starting"),
            WorkerState::Idle => f.write_str("idle"),
            WorkerState::Busy { task } => write!(f, "busy with {task}"),
            WorkerState::Restarting => f.write_str("restarting"),
            WorkerState::Quitting { task: Some(task) } => write!(f, "quitting after {task}"),
            WorkerState::Quitting { task: None } => f.write_str("quitting"),
            WorkerState::Stopped => f.write_str("stopped"),
            WorkerState::Retired => f.write_str("retired"),
        }
    }
}

impl Stats {
    /// Tasks that have reached their outcome.
    pub fn finished(&self) -> u64 {
        self.completed
            + self.failed
            + self.panicked
            + self.timed_out
            + self.aborted
            + self.cancelled
            + self.evicted
            + self.not_run
    }

    /// Whether every submitted task is accounted for: finished, queued, in
    /// flight or waiting for a retry.
    pub fn balances(&self) -> bool {
        let unfinished = self.queued + self.in_flight + self.waiting_retry;
        self.submitted == self.finished() + unfinished as u64
    }
}

/// Something that happened in a pool, sent to every subscriber
/// (see [`Pool::subscribe`](crate::Pool::subscribe)).
///
/// Events are built only while someone subscribes. They go out with `do_send`,
/// so a slow subscriber never holds up dispatch (its mailbox grows instead), and
/// a subscriber that has stopped is dropped from the list.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
#[non_exhaustive]
pub enum PoolEvent {
    /// A task was handed to a worker for an attempt.
    TaskStarted {
        /// The task.
        task: TaskId,
        /// The worker slot running it.
        worker: usize,
        /// Which attempt, counting from 1.
        attempt: u32,
    },
    /// A task completed.
    TaskCompleted {
        /// The task.
        task: TaskId,
        /// The worker slot that ran it.
        worker: usize,
        /// Attempts it took.
        attempts: u32,
    },
    /// A task failed; `error` is its error's `Debug` form.
    TaskFailed {
        /// The task.
        task: TaskId,
        /// The worker slot that ran it.
        worker: usize,
        /// Attempts made.
        attempts: u32,
        /// The error, as `{:?}` prints it.
        error: String,
    },
    /// A task panicked; its worker is being replaced.
    TaskPanicked {
        /// The task.
        task: TaskId,
        /// The worker slot that ran it.
        worker: usize,
        /// The panic message.
        message: String,
    },
    /// A task's attempt ran past its timeout.
    TaskTimedOut {
        /// The task.
        task: TaskId,
        /// The worker slot that ran it.
        worker: usize,
        /// Attempts made.
        attempts: u32,
    },
    /// An attempt failed (or timed out, or panicked with panics retried), and
    /// the task will be tried again after `delay`, on whichever worker is next.
    Retrying {
        /// The task.
        task: TaskId,
        /// The worker slot the failed attempt ran on.
        worker: usize,
        /// The attempt that failed, counting from 1.
        attempt: u32,
        /// How long the task waits, off any worker, before its next attempt.
        delay: std::time::Duration,
    },
    /// A shutdown's deadline cut off a task's attempt: it ends
    /// [`Aborted`](crate::Outcome::Aborted).
    TaskAborted {
        /// The task.
        task: TaskId,
        /// The worker slot it ran on.
        worker: usize,
    },
    /// A task crashed its worker too many times and is not run again: it
    /// ends [`Panicked`](crate::Outcome::Panicked) (`TaskPanicked` follows).
    TaskQuarantined {
        /// The task.
        task: TaskId,
        /// How many of its attempts crashed.
        crashes: u32,
    },
    /// A task waiting for its first attempt was evicted from the full queue
    /// to make room for a newer one: it ends
    /// [`Evicted`](crate::Outcome::Evicted), and goes to the dead letters.
    TaskEvicted {
        /// The task.
        task: TaskId,
    },
    /// A task was cancelled: it ends [`Cancelled`](crate::Outcome::Cancelled).
    TaskCancelled {
        /// The task.
        task: TaskId,
        /// Attempts made, one cut off by the cancel included.
        attempts: u32,
    },
    /// A worker ran an attempt past its deadline (plus a grace) without a
    /// word: its thread is blocked. The supervisor ended the attempt itself
    /// (`TaskTimedOut`, or a retry once the thread gives the task back) and
    /// put a fresh worker in the slot (`WorkerRestarted` follows).
    WorkerStuck {
        /// The slot.
        worker: usize,
        /// The task it was stuck in.
        task: TaskId,
        /// Which attempt of it.
        attempt: u32,
    },
    /// A task was handed back unrun.
    TaskNotRun {
        /// The task.
        task: TaskId,
        /// Why.
        reason: StopReason,
    },
    /// A worker slot is getting a fresh worker, after `delay`.
    WorkerRestarted {
        /// The slot.
        worker: usize,
        /// Why its worker had to go.
        reason: RestartReason,
        /// This slot's restarts so far, this one included.
        restarts: u64,
        /// How long the slot waits before its fresh worker starts.
        delay: std::time::Duration,
    },
    /// The pool was resized (see [`Pool::resize`](crate::Pool::resize)):
    /// it keeps `to` worker slots in service from now on.
    Resized {
        /// Slots in service before.
        from: usize,
        /// Slots in service from now on.
        to: usize,
    },
    /// A slot retired by a resize has no worker any more: it was idle, or
    /// its worker finished its last task and quit.
    WorkerRetired {
        /// The slot.
        worker: usize,
    },
    /// The supervisor began to stop.
    SupervisorStopping {
        /// Why.
        reason: StopReason,
    },
}

/// Why a worker slot was given a fresh worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestartReason {
    /// A task panicked on it; the message is the panic's.
    Panicked(String),
    /// The worker ended without being asked (its arbiter stopped, say).
    Lost,
    /// Making the worker's state failed or panicked; the text says how.
    StartFailed(String),
    /// It was stuck past an attempt's deadline (see [`PoolEvent::WorkerStuck`]).
    Stuck,
}

impl std::fmt::Display for RestartReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartReason::Panicked(message) => write!(f, "a task panicked: {message}"),
            RestartReason::Lost => f.write_str("the worker stopped unasked"),
            RestartReason::StartFailed(error) => write!(f, "its state failed to start: {error}"),
            RestartReason::Stuck => f.write_str("it was stuck past a deadline"),
        }
    }
}
