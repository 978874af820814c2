//! The reference model: what it knows of every task (its attempts, the one
//! running, the retry it waits for), worker slot (in service or retired),
//! waiting submit and stop call, and which phase the pool is in.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_rt::task::JoinHandle;
use actix_workerpool::{
    Cancellation, OutcomeKind, Pool, PoolGone, Resized, Stats, StopReason, StopReport, SubmitError,
    TaskHandle, TaskId,
};
use futures::channel::oneshot;
use tokio::time::Instant;

use crate::WINDOW;
use crate::commands::{Kind, Setup};
use crate::common::Events;
use crate::probe::Probe;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Draining,
    /// Stopping or stopped: the queue was handed back.
    Stopping,
}

/// When an attempt was seen to start: between `after` and `by`, on `worker`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started {
    pub(crate) worker: usize,
    pub(crate) after: Instant,
    pub(crate) by: Instant,
}

/// A task between two attempts: its `Retrying` event came between `after`
/// and `by`, and it waits `delay` from then, off any worker.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryWait {
    pub(crate) after: Instant,
    pub(crate) by: Instant,
    pub(crate) delay: Duration,
}

impl RetryWait {
    /// The earliest its timer can fire.
    pub(crate) fn earliest(&self) -> Instant {
        self.after + self.delay
    }

    /// The latest its timer can fire (timers fire on the millisecond tick
    /// after their deadline).
    pub(crate) fn latest(&self) -> Instant {
        self.by + self.delay + crate::TICK
    }
}

/// An accepted task.
pub(crate) struct Tracked {
    pub(crate) label: u32,
    pub(crate) kind: Kind,
    /// Its key, if it has one (see `keys.rs`).
    pub(crate) key: Option<u64>,
    pub(crate) runs: Arc<AtomicU32>,
    /// Kept after its outcome has been received (then never polled again):
    /// a task that has ended can still be cancelled by its handle.
    pub(crate) handle: TaskHandle<Probe>,
    /// Attempts begun, from the `TaskStarted` events.
    pub(crate) attempts: u32,
    /// The attempt running now.
    pub(crate) running: Option<Started>,
    /// The last attempt begun (running or not).
    pub(crate) last_start: Option<Started>,
    /// Waiting for its next attempt.
    pub(crate) retry: Option<RetryWait>,
    /// What its terminal event said.
    pub(crate) ended: Option<OutcomeKind>,
    /// Whether it had ended as this step began (see `keys.rs`).
    pub(crate) ended_before_step: bool,
    pub(crate) ended_reason: Option<StopReason>,
    /// What its handle delivered, when it was seen, and a `NotRun`'s reason.
    pub(crate) outcome: Option<(OutcomeKind, Instant)>,
    pub(crate) outcome_reason: Option<StopReason>,
    /// Whether a cancel was asked for it (before its answer came).
    pub(crate) cancel_asked: bool,
    /// The answers of the cancels asked for it, in the order they came.
    pub(crate) cancels: Vec<Cancellation>,
    /// What its `TaskCancelled` event said.
    pub(crate) cancelled: Option<CancelSeen>,
}

impl Tracked {
    pub(crate) fn new(
        label: u32,
        kind: Kind,
        key: Option<u64>,
        runs: Arc<AtomicU32>,
        handle: TaskHandle<Probe>,
    ) -> Self {
        Tracked {
            label,
            kind,
            key,
            runs,
            handle,
            attempts: 0,
            running: None,
            last_start: None,
            retry: None,
            ended: None,
            ended_before_step: false,
            ended_reason: None,
            outcome: None,
            outcome_reason: None,
            cancel_asked: false,
            cancels: Vec::new(),
            cancelled: None,
        }
    }

    /// Whether `run` was called once per attempt seen: always, but for an
    /// attempt cut off by a cancel as it was handed out, before any of its
    /// code ran.
    pub(crate) fn runs_fit(&self) -> bool {
        let runs = self.runs.load(Ordering::SeqCst);
        let cut_off = matches!(self.took_effect(), Some(Cancellation::Running { .. }));
        runs == self.attempts || (cut_off && runs + 1 == self.attempts)
    }

    /// The answer of the cancel that took effect, if one did.
    pub(crate) fn took_effect(&self) -> Option<Cancellation> {
        self.cancels.iter().copied().find(Cancellation::took_effect)
    }
}

/// A task's `TaskCancelled` event: the attempts it named, and the worker
/// whose attempt it ended (`None`: the task waited, for its first attempt or
/// for a retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CancelSeen {
    pub(crate) attempts: u32,
    pub(crate) worker: Option<usize>,
}

/// A spawned `submit` waiting for room.
pub(crate) struct Waiter {
    pub(crate) label: u32,
    pub(crate) kind: Kind,
    pub(crate) key: Option<u64>,
    pub(crate) runs: Arc<AtomicU32>,
    pub(crate) join: JoinHandle<Result<TaskHandle<Probe>, SubmitError<Probe>>>,
}

/// A spawned `stop` or `drain`.
pub(crate) struct Call {
    pub(crate) what: &'static str,
    pub(crate) join: JoinHandle<Result<StopReport, PoolGone>>,
    pub(crate) report: Option<StopReport>,
}

/// What the model knows of one worker slot, from the events.
#[derive(Default)]
pub(crate) struct SlotModel {
    pub(crate) busy: Option<TaskId>,
    /// After a restart: the window in which its fresh worker comes back.
    pub(crate) back: Option<(Instant, Instant)>,
    pub(crate) restarts: u64,
    pub(crate) consecutive: u32,
    pub(crate) tasks_run: u64,
    /// The message of the panic its restart must name.
    pub(crate) last_panic: Option<String>,
    /// Taken out of service by a resize: it takes no task from the queue,
    /// and no worker is started in it (see `resize.rs`).
    pub(crate) retired: bool,
    /// Retired, and its worker is gone: its `WorkerRetired` event came.
    pub(crate) gone: bool,
    /// Retired while busy, with workers on other threads: its worker may
    /// have been in the middle of a take from the backlog as it was told to
    /// quit, and then runs that one task too, taken in the same report as
    /// the end of the attempt in hand.
    pub(crate) last_take: bool,
}

/// Whether the supervisor gave up (went past the restart limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GaveUp {
    No,
    Yes,
    /// A panic went past the limit while a stop was asked for: the
    /// supervisor gave up, or was already deciding the stop (and then a
    /// panic calls for no restart at all). Either is right.
    Maybe,
}

/// A panic whose restart must be the very next event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpectRestart {
    pub(crate) worker: usize,
    /// A stop was asked for: the supervisor may be deciding it, and then it
    /// restarts nothing.
    pub(crate) optional: bool,
}

pub(crate) struct Model {
    pub(crate) setup: Setup,
    /// The pool's timeout for every attempt (`None` on dedicated arbiters).
    pub(crate) timeout: Option<Duration>,
    /// Whether workers run on other threads: then settling waits (in real
    /// time, bounded) for them, and the settled checks hold eventually.
    pub(crate) threads: bool,
    pub(crate) pool: Pool<Probe>,
    pub(crate) events: Events,
    pub(crate) tasks: Vec<Tracked>,
    pub(crate) ids: HashMap<TaskId, usize>,
    /// Held tasks (accepted or waiting to be) not yet released, by label.
    pub(crate) holds: Vec<(u32, oneshot::Sender<()>)>,
    /// Held tasks released, by label, and when.
    pub(crate) released: HashMap<u32, Instant>,
    pub(crate) waiting: Vec<Waiter>,
    pub(crate) calls: Vec<Call>,
    pub(crate) slots: Vec<SlotModel>,
    pub(crate) phase: Phase,
    /// A `Stop` was asked for and not yet decided: the supervisor may be
    /// deciding it (dispatching nothing, restarting nothing).
    pub(crate) stop_asked: bool,
    /// The reasons of the `SupervisorStopping` events, in order.
    pub(crate) stopping: Vec<StopReason>,
    /// The tasks handed back, in the order of their events.
    pub(crate) not_run: Vec<TaskId>,
    pub(crate) gave_up: GaveUp,
    pub(crate) expect_restart: Option<ExpectRestart>,
    /// `WorkerRestarted` events seen.
    pub(crate) restarts: u64,
    /// `Retrying` events seen.
    pub(crate) retries: u64,
    /// The pool's size as the last accepted resize set it (the builder's
    /// workers before any).
    pub(crate) size: usize,
    /// Resizes accepted whose `Resized` event has not come yet, in order.
    pub(crate) resizes: VecDeque<Resized>,
    /// A retired slot whose attempt just ended, and which may have taken a
    /// last task in the same report (see `SlotModel::last_take`): only the
    /// very next event may say so.
    pub(crate) take_after: Option<usize>,
    /// `TaskCancelled` events seen.
    pub(crate) cancelled: u64,
    /// The held task released last, by label.
    pub(crate) last_released: Option<u32>,
    pub(crate) next_label: u32,
    pub(crate) step_start: Instant,
    /// When the case began (for `MODEL_TRACE`, which prints every event).
    pub(crate) origin: Instant,
    /// The last snapshot taken, settled or not (counters never go down).
    pub(crate) last: Stats,
    /// The snapshot taken when the pool last settled.
    pub(crate) settled: Stats,
}

impl Model {
    pub(crate) fn is_restart_limit(&self, reason: &StopReason) -> bool {
        *reason
            == StopReason::RestartLimit {
                restarts: self.setup.restart_limit,
                within: WINDOW,
            }
    }

    /// Whether a held task has been released.
    pub(crate) fn is_released(&self, label: u32) -> bool {
        self.released.contains_key(&label)
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("attempts", &self.attempts)
            .field("running", &self.running)
            .field("retry", &self.retry)
            .field("ended", &self.ended)
            .field("outcome", &self.outcome.map(|o| o.0))
            .field("cancels", &self.cancels)
            .finish_non_exhaustive()
    }
}
