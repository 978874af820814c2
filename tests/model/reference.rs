//! The reference model: what it knows of every task, worker slot, waiting
//! submit and stop call, and which phase the pool is in.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use actix_rt::task::JoinHandle;
use actix_workerpool::{
    OutcomeKind, Pool, PoolGone, Stats, StopReason, StopReport, SubmitError, TaskHandle, TaskId,
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

/// When a task was seen to start: between `after` and `by`, on `worker`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started {
    pub(crate) worker: usize,
    pub(crate) after: Instant,
    pub(crate) by: Instant,
}

/// An accepted task.
pub(crate) struct Tracked {
    pub(crate) label: u32,
    pub(crate) kind: Kind,
    pub(crate) runs: Arc<AtomicU32>,
    /// `None` once its outcome has been received.
    pub(crate) handle: Option<TaskHandle<Probe>>,
    pub(crate) started: Option<Started>,
    /// What its terminal event said.
    pub(crate) ended: Option<OutcomeKind>,
    pub(crate) ended_reason: Option<StopReason>,
    /// What its handle delivered, when it was seen, and a `NotRun`'s reason.
    pub(crate) outcome: Option<(OutcomeKind, Instant)>,
    pub(crate) outcome_reason: Option<StopReason>,
}

/// A spawned `submit` waiting for room.
pub(crate) struct Waiter {
    pub(crate) label: u32,
    pub(crate) kind: Kind,
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
    pub(crate) last_panic: Option<String>,
}

pub(crate) struct Model {
    pub(crate) setup: Setup,
    pub(crate) pool: Pool<Probe>,
    pub(crate) events: Events,
    pub(crate) tasks: Vec<Tracked>,
    pub(crate) ids: HashMap<TaskId, usize>,
    /// Held tasks (accepted or waiting to be) not yet released, by label.
    pub(crate) holds: Vec<(u32, oneshot::Sender<()>)>,
    pub(crate) released: HashSet<u32>,
    pub(crate) waiting: Vec<Waiter>,
    pub(crate) calls: Vec<Call>,
    pub(crate) slots: Vec<SlotModel>,
    pub(crate) phase: Phase,
    /// The reasons of the `SupervisorStopping` events, in order.
    pub(crate) stopping: Vec<StopReason>,
    /// The tasks handed back, in the order of their events.
    pub(crate) not_run: Vec<TaskId>,
    /// Panics that call for a restart of their worker.
    pub(crate) restarts_due: u64,
    pub(crate) restarts: u64,
    pub(crate) next_label: u32,
    pub(crate) step_start: Instant,
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
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("started", &self.started)
            .field("ended", &self.ended)
            .field("outcome", &self.outcome.map(|o| o.0))
            .finish_non_exhaustive()
    }
}
